/* SPDX-License-Identifier: MIT */
/* azurite.c - see azurite.h. */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "azurite.h"
#include "proc.h"

#define START_TIMEOUT_MS 30000 /* ready after 0.7-1.8 s on a busy machine */
#define STOP_TIMEOUT_MS 5000
#define PROBE_TIMEOUT_MS 500
#define POLL_MS 20
#define PORT_TRIES 5
#define LOG_TAIL_LINES 20
#define DIR_PREFIX PROC_DIR_PREFIX "azurite-"
#define BIN_REL "node_modules/.bin/azurite-blob"
#define PKG_REL "node_modules/azurite/package.json"

static const char azurite_hint[] =
    "azurite not found: run scripts/setup "
    "(installs azurite " AZURITE_VERSION " with npm into node_modules/)\n";
static const char node_hint[] = "node not found on PATH (azurite-blob is a node script): "
                                "install it with `apt-get install nodejs` (or run scripts/setup)\n";

/* ---- where azurite lives ---- */

int source_root_path(const char *rel, char *buf, size_t cap)
{
    const char *root = getenv("LR_SOURCE_ROOT");
#ifdef LR_SOURCE_ROOT
    if (!root || !root[0])
        root = LR_SOURCE_ROOT;
#endif
    if (!root || !root[0]) {
        fprintf(stderr, "the source root is unknown: set LR_SOURCE_ROOT in the "
                        "environment or build with -DLR_SOURCE_ROOT='\"/path/to/repo\"'\n");
        return -ENOENT;
    }
    int n = snprintf(buf, cap, "%s/%s", root, rel);
    return n < 0 || (size_t)n >= cap ? -ENAMETOOLONG : n;
}

int azurite_bin(char *buf, size_t cap)
{
    return source_root_path(BIN_REL, buf, cap);
}

/* The "version" of node_modules/azurite/package.json next to @bin into @out
 * ("" if unreadable). */
static void installed_version(const char *bin, char *out, size_t cap)
{
    char path[512];
    char buf[8192];
    out[0] = '\0';
    size_t root_len = strlen(bin) - strlen(BIN_REL);
    if (snprintf(path, sizeof(path), "%.*s%s", (int)root_len, bin, PKG_REL) >= (int)sizeof(path))
        return;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return;
    ssize_t n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (n <= 0)
        return;
    buf[n] = '\0';
    const char *p = strstr(buf, "\"version\"");
    if (!p || !(p = strchr(p + 9, '"')))
        return;
    p++;
    size_t len = strcspn(p, "\"\n");
    if (len < cap)
        snprintf(out, cap, "%.*s", (int)len, p);
}

/* 0 if @bin exists, is executable and is the pinned version; else prints why. */
static int check_installed(const char *bin)
{
    if (access(bin, X_OK) < 0) {
        int rc = -errno;
        if (rc == -ENOENT)
            fputs(azurite_hint, stderr);
        else
            fprintf(stderr, "azurite: %s: %s\n", bin, strerror(-rc));
        fprintf(stderr, "  (looked for %s)\n", bin);
        return rc;
    }
    char version[32];
    installed_version(bin, version, sizeof(version));
    if (strcmp(version, AZURITE_VERSION) != 0) {
        fprintf(stderr,
                "azurite: node_modules has azurite '%s', the tests need " AZURITE_VERSION
                ": run scripts/setup\n",
                version);
        return -ENOENT;
    }
    return 0;
}

/* ---- readiness ---- */

/* Sends @req on a fresh connection and reads until @want bytes arrived (or
 * EOF/timeout) into @buf. Returns the byte count, or -1 if it could not send. */
static ssize_t exchange(int port, const void *req, size_t req_len, char *buf, size_t cap,
                        size_t want)
{
    int fd = proc_connect(port, PROBE_TIMEOUT_MS);
    if (fd < 0)
        return -1;
    ssize_t have = -1;
    if (send(fd, req, req_len, MSG_NOSIGNAL) == (ssize_t)req_len) {
        have = 0;
        while ((size_t)have < want && (size_t)have < cap) {
            ssize_t n = recv(fd, buf + have, cap - (size_t)have, 0);
            if (n <= 0)
                break;
            have += n;
        }
    }
    close(fd);
    return have;
}

/* 1 if an unsigned list-containers request gets an HTTP status line (any
 * status: without Authorization Azurite answers 403, which still means up). */
static int probe_http(int port)
{
    char req[160];
    int len = snprintf(req, sizeof(req),
                       "GET /" AZURITE_ACCOUNT "?comp=list HTTP/1.1\r\n"
                       "Host: 127.0.0.1:%d\r\nConnection: close\r\n\r\n",
                       port);
    char buf[64];
    ssize_t n = exchange(port, req, (size_t)len, buf, sizeof(buf), 12);
    return n >= 12 && !memcmp(buf, "HTTP/1.", 7) && buf[8] == ' ';
}

/* A TLS 1.2 ClientHello any current server can answer: ECDHE + AES-128-GCM
 * with ECDSA or RSA certificates, groups P-256 and X25519. */
static const unsigned char client_hello[] = {
    0x16, 0x03, 0x01, 0x00, 0x4d, /* record: handshake, 77 bytes */
    0x01, 0x00, 0x00, 0x49,       /* ClientHello, 73 bytes */
    0x03, 0x03,                   /* TLS 1.2 */
    0x6c, 0x65, 0x61, 0x73, 0x65, 0x72, 0x69, 0x6e, 0x67, 0x2d, 0x70, 0x72,
    0x6f, 0x62, 0x65, 0x2d, 0x72, 0x61, 0x6e, 0x64, 0x6f, 0x6d, 0x2d, 0x33,
    0x32, 0x2d, 0x62, 0x79, 0x74, 0x65, 0x73, 0x21, 0x00, /* no session id */
    0x00, 0x04, 0xc0, 0x2b, 0xc0, 0x2f,                   /* ECDHE-ECDSA/RSA-AES128-GCM-SHA256 */
    0x01, 0x00,                                           /* null compression only */
    0x00, 0x1c,                                           /* extensions, 28 bytes */
    0x00, 0x0a, 0x00, 0x06, 0x00, 0x04, 0x00, 0x17, 0x00, 0x1d,             /* supported_groups */
    0x00, 0x0b, 0x00, 0x02, 0x01, 0x00,                                     /* ec_point_formats */
    0x00, 0x0d, 0x00, 0x08, 0x00, 0x06, 0x04, 0x03, 0x08, 0x04, 0x04, 0x01, /* sig algs */
};

/* 1 if our ClientHello gets a TLS record back: handshake (ServerHello) or alert. */
static int probe_tls(int port)
{
    char buf[5];
    ssize_t n = exchange(port, client_hello, sizeof(client_hello), buf, sizeof(buf), 3);
    return n >= 3 && (buf[0] == 0x16 || buf[0] == 0x15) && buf[1] == 0x03;
}

/* ---- the server ---- */

static void print_log_tail(const struct azurite *a, const char *what, int rc)
{
    const char *why = rc == -EIO         ? "it exited during startup"
                      : rc == -ETIMEDOUT ? "not ready within 30 s"
                                         : strerror(-rc);
    fprintf(stderr, "azurite on %s://127.0.0.1:%d %s: %s; last %d lines of %s:\n",
            a->https ? "https" : "http", a->port, what, why, LOG_TAIL_LINES, a->logfile);
    proc_log_tail(a->logfile, LOG_TAIL_LINES);
}

struct ready_ctx {
    const struct azurite *a;
    const char *listening; /* the log line that says it listens on our port */
    off_t log_from;
};

/* Ready: the log says it listens, and the port gives a protocol answer. */
static int is_ready(void *arg)
{
    const struct ready_ctx *c = arg;
    const struct azurite *a = c->a;
    return proc_log_contains(a->logfile, c->log_from, c->listening) &&
           (a->https ? probe_tls(a->port) : probe_http(a->port));
}

/* One spawn on a->port, then wait until it is ready. On failure the process
 * is reaped. -EIO: it exited (-EADDRINUSE if its log says the port was taken). */
static int launch(struct azurite *a)
{
    char bin[512];
    int rc = azurite_bin(bin, sizeof(bin));
    if (rc < 0)
        return rc;
    if ((rc = check_installed(bin)) < 0)
        return rc;

    char port[16];
    snprintf(port, sizeof(port), "%d", a->port);
    const char *argv[16 + AZURITE_MAX_EXTRA] = {
        bin,
        "--blobHost",
        "127.0.0.1",
        "--blobPort",
        port,
        "--inMemoryPersistence",
        "--disableTelemetry",
        "--silent",
    };
    size_t argc = 0;
    while (argv[argc])
        argc++;
    if (a->https) {
        argv[argc++] = "--cert";
        argv[argc++] = a->cert;
        argv[argc++] = "--key";
        argv[argc++] = a->key;
    }
    for (size_t i = 0; a->extra[i]; i++)
        argv[argc++] = a->extra[i];
    argv[argc] = NULL;

    char listening[96];
    snprintf(listening, sizeof(listening), "successfully listens on %s://127.0.0.1:%d",
             a->https ? "https" : "http", a->port);

    off_t log_from;
    rc = proc_spawn_logged(argv, a->dir, a->logfile, &log_from, &a->pid);
    if (rc == -ENOENT)
        fputs(node_hint, stderr); /* the script exists (checked above): its interpreter does not */
    if (rc < 0)
        return rc;
    proc_track(a->dir, a->pid);

    struct ready_ctx ctx = {.a = a, .listening = listening, .log_from = log_from};
    const struct proc_ready ready = {
        .ready = is_ready,
        .ctx = &ctx,
        .in_use = "EADDRINUSE",
        .timeout_ms = START_TIMEOUT_MS,
        .poll_ms = POLL_MS,
    };
    return proc_await_ready(&a->pid, a->dir, a->logfile, log_from, &ready);
}

/* 1 if @word would override an option we set: a second --blobPort wins, and
 * a bad one silently falls back to the default port 10000 (seen with 3.35.0). */
static int overrides_fixed(const char *word)
{
    static const char *const fixed[] = {"--blobHost", "--blobPort", "--cert", "--key",
                                        "--location", "-l",         NULL};
    for (size_t i = 0; fixed[i]; i++) {
        size_t len = strlen(fixed[i]);
        if (!strncmp(word, fixed[i], len) && (word[len] == '\0' || word[len] == '='))
            return 1;
    }
    return 0;
}

int azurite_start(struct azurite *a, const char *cert, const char *key, const char *const *extra)
{
    memset(a, 0, sizeof(*a));
    if ((cert == NULL) != (key == NULL))
        return -EINVAL;
    for (size_t i = 0; extra && extra[i]; i++) {
        if (i == AZURITE_MAX_EXTRA)
            return -E2BIG;
        if (overrides_fixed(extra[i])) {
            fprintf(stderr, "azurite: extra argument %s would override a fixed one\n", extra[i]);
            return -EINVAL;
        }
        a->extra[i] = extra[i];
    }
    if (cert) {
        int rc;
        if ((rc = proc_abs_path(a->cert, sizeof(a->cert), "azurite: certificate", cert)) < 0 ||
            (rc = proc_abs_path(a->key, sizeof(a->key), "azurite: key", key)) < 0) {
            memset(a, 0, sizeof(*a));
            return rc;
        }
        a->https = 1;
    }
    int rc = proc_mkdtemp(a->dir, sizeof(a->dir), DIR_PREFIX);
    if (rc < 0)
        return rc;
    snprintf(a->logfile, sizeof(a->logfile), "%s/azurite.log", a->dir);

    rc = -EADDRINUSE;
    for (int i = 0; i < PORT_TRIES && rc == -EADDRINUSE; i++) {
        rc = proc_pick_port(&a->port);
        if (rc == 0)
            rc = launch(a);
    }
    if (rc < 0) {
        if (rc != -ENOENT)
            print_log_tail(a, "did not start", rc);
        azurite_destroy(a);
    }
    return rc;
}

int azurite_restart(struct azurite *a)
{
    if (a->pid)
        return -EBUSY;
    if (!a->port || !a->dir[0])
        return -EINVAL;
    int rc = launch(a);
    if (rc < 0 && rc != -ENOENT)
        print_log_tail(a, "did not restart", rc);
    return rc;
}

int azurite_stop(struct azurite *a)
{
    return proc_stop(&a->pid, a->dir, STOP_TIMEOUT_MS);
}

int azurite_kill(struct azurite *a)
{
    return proc_kill(&a->pid, a->dir);
}

void azurite_destroy(struct azurite *a)
{
    azurite_stop(a);
    if (a->dir[0]) {
        proc_rmtree(a->dir);
        a->dir[0] = '\0';
    }
}

void azurite_addr(const struct azurite *a, struct sockaddr_in *out)
{
    proc_loopback_addr(a->port, out);
}

int azurite_url(const struct azurite *a, char *buf, size_t cap)
{
    int n = snprintf(buf, cap, "%s://127.0.0.1:%d/" AZURITE_ACCOUNT, a->https ? "https" : "http",
                     a->port);
    return n < 0 || (size_t)n >= cap ? -ENAMETOOLONG : n;
}
