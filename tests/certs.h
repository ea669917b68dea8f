/* SPDX-License-Identifier: MIT */
/*
 * certs.h - throwaway TLS material for tests, made with the `openssl` command
 * line tool (fork + execvp, never a shell). It includes proc.h for
 * run_capture, the small "run a tool and capture its output" helper it is
 * built on, which tests also use for `openssl verify`, `openssl s_client` and
 * the like.
 *
 * certs_make writes, in one directory:
 *   ca.pem, ca.key          a CA: self-signed, basicConstraints CA:TRUE,
 *                           keyUsage keyCertSign
 *   server.pem, server.key  a server certificate signed by the CA for
 *                           subjectAltName IP:127.0.0.1, DNS:localhost
 *   wrong.pem, wrong.key    a server certificate signed by the same CA for
 *                           DNS:wrong.example ONLY (CN wrong.example, no IP
 *                           SAN): a chain that verifies, with a name that
 *                           must not, for hostname-verification tests
 * All keys are EC P-256 (unencrypted PKCS#8 PEM), all certificates X.509 v3
 * valid from now for 30 days; server certificates carry extendedKeyUsage
 * serverAuth. Takes ~60 ms (5 openssl runs). Every run makes a fresh CA, so
 * certificates of two certs_make calls never verify against each other.
 *
 * A missing openssl prints an install hint and returns -ENOENT: callers treat
 * that as a test FAILURE, never a skip (STYLE.md 8).
 *
 * Children die with the thread that started them (PR_SET_PDEATHSIG), inherit
 * no fds beyond 0-2, and are killed after 10 s. An atexit hook removes temp
 * dirs a failed CHECK left behind. Not thread-safe: use from the main thread.
 */
#ifndef LR_TEST_CERTS_H
#define LR_TEST_CERTS_H

#include <stddef.h>

#include "proc.h" /* run_capture */

#define CERTS_PATH_MAX 256

struct certs {
    char dir[CERTS_PATH_MAX - 16]; /* where the files are */
    int own_dir;                   /* 1: certs_make created dir (mkdtemp), certs_destroy removes it */
    char ca[CERTS_PATH_MAX];          /* <dir>/ca.pem */
    char ca_key[CERTS_PATH_MAX];      /* <dir>/ca.key */
    char server_cert[CERTS_PATH_MAX]; /* <dir>/server.pem: 127.0.0.1 + localhost */
    char server_key[CERTS_PATH_MAX];  /* <dir>/server.key */
    char wrong_cert[CERTS_PATH_MAX];  /* <dir>/wrong.pem: wrong.example only */
    char wrong_key[CERTS_PATH_MAX];   /* <dir>/wrong.key */
};

/*
 * certs_make - make a CA and two server certificates signed by it (above).
 * @c: caller storage; overwritten (need not be initialised).
 * @dir: directory to write into (created with mode 0700 if missing; existing
 *       files of the same names are replaced), or NULL for a private temp dir
 *       /tmp/leasering-certs-XXXXXX that certs_destroy removes. The paths in
 *       @c are absolute either way (servers chdir before reading them).
 * Returns: 0; -ENOENT openssl is not installed (a hint is printed); -EIO an
 * openssl run failed (its command line and output are printed); -ETIMEDOUT
 * an openssl run took over 10 s; -ENAMETOOLONG @dir is too long; other
 * -errno. On failure nothing is left behind in a temp dir (a given @dir keeps
 * whatever was written) and certs_destroy is still safe to call.
 */
int certs_make(struct certs *c, const char *dir);

/* certs_destroy - remove the files certs_make wrote (and the dir, if it made
 * it). Safe on a struct whose certs_make failed, and twice. */
void certs_destroy(struct certs *c);

#endif
