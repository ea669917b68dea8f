/* SPDX-License-Identifier: MIT */
/* certs.c - see certs.h. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "certs.h"

#define OPENSSL_TIMEOUT_MS 10000
#define DIR_PREFIX PROC_DIR_PREFIX "certs-"
#define DAYS "30"

static const char openssl_hint[] = "openssl not found: install it with "
                                   "`apt-get install openssl` (or run scripts/setup)\n";

/* The extensions each certificate gets. A config of our own keeps the result
 * independent of the system's openssl.cnf defaults (v3_ca and friends). */
static const char openssl_cnf[] =
    "# written by leasering tests/certs.c\n"
    "[req]\n"
    "distinguished_name = dn\n"
    "prompt = no\n"
    "[dn]\n"
    "CN = unused\n"
    "[ca_ext]\n"
    "basicConstraints = critical,CA:TRUE\n"
    "keyUsage = critical,keyCertSign,cRLSign\n"
    "subjectKeyIdentifier = hash\n"
    "[server_ext]\n"
    "basicConstraints = critical,CA:FALSE\n"
    "keyUsage = critical,digitalSignature\n"
    "extendedKeyUsage = serverAuth\n"
    "subjectKeyIdentifier = hash\n"
    "authorityKeyIdentifier = keyid\n"
    "subjectAltName = IP:127.0.0.1,DNS:localhost\n"
    "[wrong_ext]\n"
    "basicConstraints = critical,CA:FALSE\n"
    "keyUsage = critical,digitalSignature\n"
    "extendedKeyUsage = serverAuth\n"
    "subjectKeyIdentifier = hash\n"
    "authorityKeyIdentifier = keyid\n"
    "subjectAltName = DNS:wrong.example\n";

/* ---- the certificates ---- */

static int join(char *buf, size_t cap, const char *dir, const char *name)
{
    int n = snprintf(buf, cap, "%s/%s", dir, name);
    return n < 0 || (size_t)n >= cap ? -ENAMETOOLONG : 0;
}

static int write_file(const char *path, const char *text)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return -errno;
    size_t len = strlen(text);
    size_t off = 0;
    int rc = 0;
    while (off < len) {
        ssize_t n = write(fd, text + off, len - off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            rc = -errno;
            break;
        }
        off += (size_t)n;
    }
    if (close(fd) < 0 && rc == 0)
        rc = -errno;
    return rc;
}

/* One openssl run; on failure prints what ran and what it said. */
static int openssl(const char *const *argv)
{
    char out[4096];
    int rc = run_capture(argv, NULL, out, sizeof(out), OPENSSL_TIMEOUT_MS);
    if (rc == -ENOENT) {
        fputs(openssl_hint, stderr);
        return rc;
    }
    if (rc == 0)
        return 0;
    fprintf(stderr, "certs:");
    for (size_t i = 0; argv[i]; i++)
        fprintf(stderr, " %s", argv[i]);
    if (rc < 0)
        fprintf(stderr, "\n  failed: %s\n", strerror(-rc));
    else
        fprintf(stderr, "\n  exited with status %d; its output:\n%s\n", rc, out);
    return rc < 0 ? rc : -EIO;
}

/* A key and a certificate for @cn signed by the CA, with [@ext] of @cnf. */
static int make_server(const struct certs *c, const char *cnf, const char *csr, const char *cn,
                       const char *ext, const char *cert, const char *key, const char *serial)
{
    const char *const req[] = {
        "openssl", "req", "-new", "-config", cnf, "-newkey", "ec", "-pkeyopt",
        "ec_paramgen_curve:P-256", "-nodes", "-keyout", key, "-subj", cn, "-out", csr, NULL,
    };
    const char *const sign[] = {
        "openssl", "x509", "-req", "-in", csr, "-CA", c->ca, "-CAkey", c->ca_key,
        "-set_serial", serial, "-days", DAYS, "-extfile", cnf, "-extensions", ext,
        "-out", cert, NULL,
    };
    int rc = openssl(req);
    if (rc == 0)
        rc = openssl(sign);
    unlink(csr);
    return rc;
}

static int make_all(struct certs *c)
{
    char cnf[CERTS_PATH_MAX];
    char csr[CERTS_PATH_MAX];
    int rc;
    if ((rc = join(cnf, sizeof(cnf), c->dir, "openssl.cnf")) < 0 ||
        (rc = join(csr, sizeof(csr), c->dir, "request.csr")) < 0 ||
        (rc = join(c->ca, sizeof(c->ca), c->dir, "ca.pem")) < 0 ||
        (rc = join(c->ca_key, sizeof(c->ca_key), c->dir, "ca.key")) < 0 ||
        (rc = join(c->server_cert, sizeof(c->server_cert), c->dir, "server.pem")) < 0 ||
        (rc = join(c->server_key, sizeof(c->server_key), c->dir, "server.key")) < 0 ||
        (rc = join(c->wrong_cert, sizeof(c->wrong_cert), c->dir, "wrong.pem")) < 0 ||
        (rc = join(c->wrong_key, sizeof(c->wrong_key), c->dir, "wrong.key")) < 0)
        return rc;
    if ((rc = write_file(cnf, openssl_cnf)) < 0)
        return rc;

    /* Random serials: certificates of different runs must never look alike to
     * a client that caches by issuer + serial. */
    char serial_ca[32];
    char serial_server[32];
    char serial_wrong[32];
    unsigned seed = (unsigned)getpid() * 2654435761u ^ (unsigned)proc_now_ms();
    snprintf(serial_ca, sizeof(serial_ca), "%u", 1000u + seed % 1000000u * 3u);
    snprintf(serial_server, sizeof(serial_server), "%u", 1001u + seed % 1000000u * 3u);
    snprintf(serial_wrong, sizeof(serial_wrong), "%u", 1002u + seed % 1000000u * 3u);

    const char *const ca[] = {
        "openssl", "req", "-x509", "-config", cnf, "-extensions", "ca_ext", "-newkey", "ec",
        "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", c->ca_key, "-out", c->ca,
        "-subj", "/CN=leasering test CA", "-days", DAYS, "-set_serial", serial_ca, NULL,
    };
    rc = openssl(ca);
    if (rc == 0)
        rc = make_server(c, cnf, csr, "/CN=127.0.0.1", "server_ext", c->server_cert,
                         c->server_key, serial_server);
    if (rc == 0)
        rc = make_server(c, cnf, csr, "/CN=wrong.example", "wrong_ext", c->wrong_cert,
                         c->wrong_key, serial_wrong);
    unlink(cnf);
    return rc;
}

int certs_make(struct certs *c, const char *dir)
{
    memset(c, 0, sizeof(*c));
    if (dir) {
        /* Absolute paths: servers chdir into their own dirs before reading them. */
        if (mkdir(dir, 0700) < 0 && errno != EEXIST)
            return -errno;
        int rc = proc_abs_path(c->dir, sizeof(c->dir), NULL, dir);
        if (rc < 0) {
            c->dir[0] = '\0';
            return rc;
        }
    } else {
        int rc = proc_mkdtemp(c->dir, sizeof(c->dir), DIR_PREFIX);
        if (rc < 0)
            return rc;
        c->own_dir = 1;
    }
    int rc = make_all(c);
    if (rc < 0 && c->own_dir)
        certs_destroy(c);
    return rc;
}

void certs_destroy(struct certs *c)
{
    if (c->own_dir) {
        proc_rmtree(c->dir);
    } else {
        const char *files[] = {c->ca,          c->ca_key,     c->server_cert,
                               c->server_key,  c->wrong_cert, c->wrong_key};
        for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++)
            if (files[i][0])
                unlink(files[i]);
    }
    memset(c, 0, sizeof(*c));
}
