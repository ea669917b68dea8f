/* SPDX-License-Identifier: MIT */
/*
 * azurite.h - a real Azurite blob service (the Azure Storage emulator, npm
 * package azurite 3.35.0) for integration tests, on its own free loopback
 * port, started and stopped by pid (fork + execv, never a shell).
 *
 * Which Azurite: <source root>/node_modules/.bin/azurite-blob, the copy
 * scripts/setup installs with `npm ci` from the repo's package-lock.json. The
 * source root is the environment variable LR_SOURCE_ROOT when it is set and
 * non-empty, else the compile-time macro LR_SOURCE_ROOT (a string literal;
 * tests/meson.build defines it as meson.project_source_root() for the test
 * helper library, and a hand build passes -DLR_SOURCE_ROOT='"/path/to/repo"').
 * A global azurite on PATH is never used: its version is not pinned.
 *
 * Command line: azurite-blob --blobHost 127.0.0.1 --blobPort <p>
 *   --inMemoryPersistence --disableTelemetry --silent [--cert C --key K] <extra...>
 * --disableTelemetry is essential: without it Azurite phones home to
 * applicationinsights.azure.com. The server runs in a private temp dir
 * (/tmp/leasering-azurite-XXXXXX, its cwd) and writes its stdout/stderr to
 * <dir>/azurite.log. Ports 10000-10002 (Azurite's defaults, someone may run
 * one) and 6379 are never used. The child inherits our environment, so a test
 * may setenv("AZURITE_ACCOUNTS", ...) before starting (then devstoreaccount1
 * no longer exists unless listed).
 *
 * Ready means both of:
 *  - its log says "successfully listens on http(s)://127.0.0.1:<port>": proves
 *    the listener on the port is this process, not someone who took the port
 *    while Azurite spent its ~0.7 s initialising (it binds last);
 *  - a fresh connection gets a protocol answer: over HTTP, an unsigned
 *    `GET /devstoreaccount1?comp=list` answered with any HTTP status line
 *    (403 here: no Authorization); over HTTPS, a fixed TLS 1.2 ClientHello
 *    answered with any TLS record (ServerHello or alert). That needs no TLS
 *    library and no openssl process per poll, and it shows node's TLS server
 *    is processing connections. Observed 0.45-1.1 s after the spawn here
 *    (BACKENDS.md saw up to 1.8 s on a busy machine).
 *
 * Servers never outlive the test: PR_SET_PDEATHSIG = SIGKILL in the child (it
 * dies with the *thread* that started it: use the main thread), and an atexit
 * hook kills any server still running and removes temp dirs a failed CHECK
 * left behind. Children inherit no fds beyond 0-2 (stdin is /dev/null).
 *
 * A missing azurite-blob prints "azurite not found: run scripts/setup
 * (installs azurite 3.35.0 with npm into node_modules/)" and returns -ENOENT
 * (a missing node prints its own hint, also -ENOENT): callers treat that as a
 * test FAILURE, never a skip (STYLE.md 8).
 *
 * In-memory means every start (and restart) begins with an empty account.
 * None of this is thread-safe: use it from the test's main thread.
 */
#ifndef LR_TEST_AZURITE_H
#define LR_TEST_AZURITE_H

#include <netinet/in.h>
#include <stddef.h>
#include <sys/types.h>

#define AZURITE_VERSION "3.35.0"
/* Azurite's well-known development account (path-style URLs: /<account>/<container>/<blob>). */
#define AZURITE_ACCOUNT "devstoreaccount1"
#define AZURITE_KEY                                                                        \
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
#define AZURITE_MAX_EXTRA 15 /* extra argv words per server */

struct azurite {
    pid_t pid;         /* 0 when not running */
    int port;          /* 127.0.0.1:port, kept across stop/kill/restart */
    int https;         /* 1: started with a certificate */
    char dir[128];     /* private temp dir (cwd of the server), removed by azurite_destroy */
    char logfile[160]; /* <dir>/azurite.log: its stdout and stderr */
    char cert[256];    /* --cert / --key when https (copied) */
    char key[256];
    const char *extra[AZURITE_MAX_EXTRA + 1]; /* NULL-terminated copy of the pointers
                                                 (caller keeps strings alive until destroy) */
};

/*
 * azurite_start - start azurite-blob on 127.0.0.1 and a free port; wait until ready.
 * @a: caller storage; overwritten (need not be initialised).
 * @cert/@key: PEM certificate and key for HTTPS (e.g. certs.h's server_cert
 *             and server_key), or both NULL for plain HTTP.
 * @extra: NULL-terminated extra argv words, or NULL; e.g.
 *         {"--blobKeepAliveTimeout", "1", NULL} or {"--skipApiVersionCheck", NULL}.
 *         The pointers are copied, the strings are not. Words that would
 *         override --blobHost, --blobPort, --cert, --key or add --location/-l
 *         are refused (a bad second --blobPort makes Azurite fall back to
 *         its default port 10000).
 * The port comes from binding port 0; if Azurite then reports EADDRINUSE
 * (someone took it meanwhile), a new port is tried (up to 5 times).
 * Returns: 0; -ENOENT azurite-blob or node is missing (a hint is printed);
 * -EINVAL only one of @cert/@key, or a refused extra word; -E2BIG more than AZURITE_MAX_EXTRA extra
 * words; -ENAMETOOLONG a path does not fit; -EADDRINUSE every port try lost
 * a race; -EIO it exited during startup (bad arguments? unreadable cert?);
 * -ETIMEDOUT not ready within 30 s; other -errno from mkdtemp/fork/pipe.
 * On every failure after the fork the last 20 log lines go to stderr, the
 * process is reaped and the temp dir removed (a->pid == 0).
 */
int azurite_start(struct azurite *a, const char *cert, const char *key, const char *const *extra);

/*
 * azurite_restart - start again on the same port with the same arguments
 * (after stop or kill), with empty storage; waits until ready as above.
 * Returns: 0; -EBUSY still running; -EADDRINUSE someone else took the port;
 * otherwise as azurite_start (no port retry: the port is fixed).
 */
int azurite_restart(struct azurite *a);

/*
 * azurite_stop - SIGTERM, wait up to 5 s for it to exit, then SIGKILL.
 * Always reaps; a->pid = 0.
 * Returns: 0 (also when not running); -ETIMEDOUT it needed the SIGKILL.
 */
int azurite_stop(struct azurite *a);

/*
 * azurite_kill - SIGKILL and reap: a crash, e.g. "Azurite killed mid-run".
 * The port refuses connections once this returns. a->pid = 0.
 * Returns: 0; -ESRCH not running.
 */
int azurite_kill(struct azurite *a);

/* azurite_destroy - stop if running and remove the temp dir with all its
 * contents. Safe on a struct whose start failed, and twice. */
void azurite_destroy(struct azurite *a);

/* azurite_addr - the server's address (127.0.0.1:port) for direct connects. */
void azurite_addr(const struct azurite *a, struct sockaddr_in *out);

/*
 * azurite_url - "http://127.0.0.1:<port>/devstoreaccount1" (https:// when
 * started with a certificate) into @buf.
 * Returns: the length; -ENAMETOOLONG @cap too small.
 */
int azurite_url(const struct azurite *a, char *buf, size_t cap);

/*
 * azurite_bin - the azurite-blob path this helper runs (see the top of this
 * file), into @buf; it need not exist.
 * Returns: the length; -ENOENT neither $LR_SOURCE_ROOT nor the macro is set
 * (a message is printed); -ENAMETOOLONG @cap too small.
 */
int azurite_bin(char *buf, size_t cap);

/*
 * source_root_path - <source root>/@rel into @buf, the source root found as
 * described at the top of this file (also used by cosmos.c).
 * Returns: the length; -ENOENT no source root known (a message is printed);
 * -ENAMETOOLONG @cap too small.
 */
int source_root_path(const char *rel, char *buf, size_t cap);

#endif
