/* SPDX-License-Identifier: MIT */
/* azurite.c - see azurite.h. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "azurite.h"

#define START_TIMEOUT_MS 30000 /* ready after 0.7-1.8 s on a busy machine */
#define STOP_TIMEOUT_MS 5000
#define PROBE_TIMEOUT_MS 500
#define POLL_MS 20
#define PORT_TRIES 5
#define LOG_TAIL_LINES 20
#define DIR_PREFIX "/tmp/leasering-azurite-"
#define MAX_TRACKED 16
#define BIN_REL "node_modules/.bin/azurite-blob"
#define PKG_REL "node_modules/azurite/package.json"

static const char azurite_hint[] = "azurite not found: run scripts/setup "
                                   "(installs azurite " AZURITE_VERSION
                                   " with npm into node_modules/)\n";
static const char node_hint[] = "node not found on PATH (azurite-blob is a node script): "
                                "install it with `apt-get install nodejs` (or run scripts/setup)\n";

/* ---- time ---- */

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void sleep_ms(unsigned ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

static pid_t waitpid_eintr(pid_t pid, int *status, int flags)
{
    pid_t r;
    do
        r = waitpid(pid, status, flags);
    while (r < 0 && errno == EINTR);
    return r;
}

/* ---- cleanup at exit ----
 * A failed CHECK returns from the test without azurite_destroy, and the
 * struct is gone by then: keep copies of pid and dir for the exit hook.
 * Crashes skip atexit; PR_SET_PDEATHSIG still kills the servers then. */

struct tracked {
    pid_t pid;
    char dir[sizeof(((struct azurite *)0)->dir)];
};

static struct tracked tracked[MAX_TRACKED];
static int exit_hook_armed;

static int remove_entry(const char *path, const struct stat *sb, int type, struct FTW *ftw)
{
    (void)sb;
    (void)type;
    (void)ftw;
    remove(path);
    return 0; /* keep going: remove as much as possible */
}

static void remove_tree(const char *dir)
{
    /* Only ever our own mkdtemp dirs, even if a struct holds garbage. */
    if (strncmp(dir, DIR_PREFIX, strlen(DIR_PREFIX)) != 0 || strstr(dir, ".."))
        return;
    nftw(dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static void cleanup_at_exit(void)
{
    for (int i = 0; i < MAX_TRACKED; i++) {
        struct tracked *t = &tracked[i];
        if (t->pid > 0) {
            kill(t->pid, SIGKILL);
            waitpid_eintr(t->pid, NULL, 0);
        }
        if (t->dir[0])
            remove_tree(t->dir);
        memset(t, 0, sizeof(*t));
    }
}

static struct tracked *find_tracked(const char *dir)
{
    struct tracked *free_slot = NULL;
    for (int i = 0; i < MAX_TRACKED; i++) {
        if (!strcmp(tracked[i].dir, dir))
            return &tracked[i];
        if (!free_slot && !tracked[i].dir[0])
            free_slot = &tracked[i];
    }
    return free_slot;
}

/* Record a->pid for a->dir. A full table only loses the exit-time cleanup. */
static void track(const struct azurite *a)
{
    if (!exit_hook_armed) {
        exit_hook_armed = 1;
        atexit(cleanup_at_exit);
    }
    struct tracked *t = find_tracked(a->dir);
    if (!t)
        return;
    t->pid = a->pid;
    snprintf(t->dir, sizeof(t->dir), "%s", a->dir);
}

static void forget(const struct azurite *a)
{
    struct tracked *t = find_tracked(a->dir);
    if (t && t->dir[0])
        memset(t, 0, sizeof(*t));
}

/* ---- where azurite lives ---- */

int azurite_bin(char *buf, size_t cap)
{
    const char *root = getenv("LR_SOURCE_ROOT");
#ifdef LR_SOURCE_ROOT
    if (!root || !root[0])
        root = LR_SOURCE_ROOT;
#endif
    if (!root || !root[0]) {
        fprintf(stderr, "azurite: the source root is unknown: set LR_SOURCE_ROOT in the "
                        "environment or build with -DLR_SOURCE_ROOT='\"/path/to/repo\"'\n");
        return -ENOENT;
    }
    int n = snprintf(buf, cap, "%s/%s", root, BIN_REL);
    return n < 0 || (size_t)n >= cap ? -ENAMETOOLONG : n;
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

/* ---- spawning ---- */

static void set_cloexec_from(int first)
{
#ifdef CLOSE_RANGE_CLOEXEC
    if (close_range((unsigned)first, ~0u, CLOSE_RANGE_CLOEXEC) == 0)
        return;
#endif
    long max = sysconf(_SC_OPEN_MAX);
    if (max < 0 || max > 65536)
        max = 65536;
    for (int fd = first; fd < max; fd++)
        fcntl(fd, F_SETFD, FD_CLOEXEC); /* EBADF for closed fds: fine */
}

/* Between fork and exec: async-signal-safe calls only. Reports failure as an
 * errno on @err_fd, which exec closes on success. */
static _Noreturn void child_exec(const char *const *argv, const char *dir, int log_fd, int err_fd,
                                 pid_t parent)
{
    int err;
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    struct sigaction dfl = {.sa_handler = SIG_DFL};
    sigaction(SIGPIPE, &dfl, NULL);
    /* Die with the thread that forked us, even on its crash; if it already
     * died before prctl, we were reparented and must not run at all. */
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0)
        goto fail;
    if (getppid() != parent) {
        errno = ESRCH;
        goto fail;
    }
    if (chdir(dir) < 0)
        goto fail;
    int null_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (null_fd < 0 || dup2(null_fd, STDIN_FILENO) < 0)
        goto fail;
    if (dup2(log_fd, STDOUT_FILENO) < 0 || dup2(log_fd, STDERR_FILENO) < 0)
        goto fail;
    set_cloexec_from(STDERR_FILENO + 1);
    execv(argv[0], (char *const *)argv);
fail:
    err = errno;
    while (write(err_fd, &err, sizeof(err)) < 0 && errno == EINTR)
        ;
    _exit(127);
}

/* fork + execv; 0 with *pid set once exec succeeded, or -errno. */
static int spawn(const char *const *argv, const char *dir, int log_fd, pid_t *pid)
{
    int ep[2];
    if (pipe2(ep, O_CLOEXEC) < 0)
        return -errno;
    pid_t parent = getpid();
    pid_t child = fork();
    if (child < 0) {
        int rc = -errno;
        close(ep[0]);
        close(ep[1]);
        return rc;
    }
    if (child == 0)
        child_exec(argv, dir, log_fd, ep[1], parent);
    close(ep[1]);
    int err = 0;
    ssize_t n;
    do
        n = read(ep[0], &err, sizeof(err));
    while (n < 0 && errno == EINTR);
    close(ep[0]);
    if (n == (ssize_t)sizeof(err)) {
        waitpid_eintr(child, NULL, 0);
        return err > 0 ? -err : -EIO;
    }
    *pid = child; /* EOF: exec closed the pipe */
    return 0;
}

/* ---- readiness ---- */

static int pick_port(int *port)
{
    for (int i = 0; i < 16; i++) {
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
            return -errno;
        struct sockaddr_in sa = {.sin_family = AF_INET};
        sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        socklen_t len = sizeof(sa);
        int rc = 0;
        if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
            getsockname(fd, (struct sockaddr *)&sa, &len) < 0)
            rc = -errno;
        close(fd); /* free again; Azurite binds it next (a race we retry) */
        if (rc < 0)
            return rc;
        *port = ntohs(sa.sin_port);
        /* Azurite's default ports (someone may run one) and a system redis. */
        if ((*port < 10000 || *port > 10002) && *port != 6379)
            return 0;
    }
    return -EADDRINUSE;
}

static int connect_port(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    struct timeval tv = {.tv_sec = 0, .tv_usec = PROBE_TIMEOUT_MS * 1000};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* Sends @req on a fresh connection and reads until @want bytes arrived (or
 * EOF/timeout) into @buf. Returns the byte count, or -1 if it could not send. */
static ssize_t exchange(int port, const void *req, size_t req_len, char *buf, size_t cap,
                        size_t want)
{
    int fd = connect_port(port);
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
    0x6c, 0x65, 0x61, 0x73, 0x65, 0x72, 0x69, 0x6e, 0x67, 0x2d, 0x70, 0x72, 0x6f, 0x62, 0x65, 0x2d,
    0x72, 0x61, 0x6e, 0x64, 0x6f, 0x6d, 0x2d, 0x33, 0x32, 0x2d, 0x62, 0x79, 0x74, 0x65, 0x73, 0x21,
    0x00,                               /* no session id */
    0x00, 0x04, 0xc0, 0x2b, 0xc0, 0x2f, /* ECDHE-ECDSA/RSA-AES128-GCM-SHA256 */
    0x01, 0x00,                         /* null compression only */
    0x00, 0x1c,                         /* extensions, 28 bytes */
    0x00, 0x0a, 0x00, 0x06, 0x00, 0x04, 0x00, 0x17, 0x00, 0x1d, /* supported_groups */
    0x00, 0x0b, 0x00, 0x02, 0x01, 0x00,                         /* ec_point_formats */
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

/* Reap @a if it has exited; returns 1 if it is gone. */
static int reaped(struct azurite *a)
{
    pid_t r = waitpid_eintr(a->pid, NULL, WNOHANG);
    if (r == 0)
        return 0;
    a->pid = 0; /* r == pid, or ECHILD: someone else reaped it */
    track(a);
    return 1;
}

static void kill_and_reap(struct azurite *a)
{
    if (!a->pid)
        return;
    kill(a->pid, SIGKILL);
    waitpid_eintr(a->pid, NULL, 0);
    a->pid = 0;
    track(a);
}

static off_t file_size(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? st.st_size : 0;
}

/* 1 if the log, from byte @from on, contains @needle not followed by a digit
 * (so ":1234" does not match ":12345"). */
static int log_contains(const struct azurite *a, off_t from, const char *needle)
{
    char buf[16384];
    int fd = open(a->logfile, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    ssize_t n = pread(fd, buf, sizeof(buf) - 1, from);
    close(fd);
    if (n <= 0)
        return 0;
    buf[n] = '\0';
    size_t len = strlen(needle);
    for (const char *p = buf; (p = strstr(p, needle)) != NULL; p++)
        if (p[len] < '0' || p[len] > '9')
            return 1;
    return 0;
}

static void print_log_tail(const struct azurite *a, const char *what, int rc)
{
    const char *why = rc == -EIO         ? "it exited during startup"
                      : rc == -ETIMEDOUT ? "not ready within 30 s"
                                         : strerror(-rc);
    fprintf(stderr, "azurite on %s://127.0.0.1:%d %s: %s; last %d lines of %s:\n",
            a->https ? "https" : "http", a->port, what, why, LOG_TAIL_LINES, a->logfile);
    char buf[16384];
    int fd = open(a->logfile, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        fprintf(stderr, "  (no log: %s)\n", strerror(errno));
        return;
    }
    off_t size = file_size(a->logfile);
    off_t from = size > (off_t)sizeof(buf) ? size - (off_t)sizeof(buf) : 0;
    ssize_t n = pread(fd, buf, sizeof(buf), from);
    close(fd);
    if (n <= 0) {
        fprintf(stderr, "  (log is empty)\n");
        return;
    }
    size_t start = (size_t)n;
    if (buf[start - 1] == '\n')
        start--; /* the final newline ends the last line, it does not start one */
    for (int lines = 0; start > 0; start--)
        if (buf[start - 1] == '\n' && ++lines == LOG_TAIL_LINES)
            break;
    fwrite(buf + start, 1, (size_t)n - start, stderr);
    if (buf[n - 1] != '\n')
        fputc('\n', stderr);
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
        bin, "--blobHost", "127.0.0.1", "--blobPort", port, "--inMemoryPersistence",
        "--disableTelemetry", "--silent",
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

    int log_fd = open(a->logfile, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (log_fd < 0)
        return -errno;
    off_t log_from = file_size(a->logfile);
    rc = spawn(argv, a->dir, log_fd, &a->pid);
    close(log_fd);
    if (rc == -ENOENT)
        fputs(node_hint, stderr); /* the script exists (checked above): its interpreter does not */
    if (rc < 0)
        return rc;
    track(a);

    uint64_t deadline = now_ms() + START_TIMEOUT_MS;
    for (;;) {
        if (reaped(a)) {
            rc = -EIO;
            break;
        }
        if (log_contains(a, log_from, listening) &&
            (a->https ? probe_tls(a->port) : probe_http(a->port))) {
            if (!reaped(a))
                return 0;
            rc = -EIO;
            break;
        }
        if (now_ms() >= deadline) {
            rc = -ETIMEDOUT;
            break;
        }
        sleep_ms(POLL_MS);
    }
    kill_and_reap(a);
    if (rc == -EIO && log_contains(a, log_from, "EADDRINUSE"))
        rc = -EADDRINUSE;
    return rc;
}

/* 1 if @word would override an option we set: a second --blobPort wins, and
 * a bad one silently falls back to the default port 10000 (seen with 3.35.0). */
static int overrides_fixed(const char *word)
{
    static const char *const fixed[] = {"--blobHost", "--blobPort", "--cert", "--key",
                                        "--location", "-l", NULL};
    for (size_t i = 0; fixed[i]; i++) {
        size_t len = strlen(fixed[i]);
        if (!strncmp(word, fixed[i], len) && (word[len] == '\0' || word[len] == '='))
            return 1;
    }
    return 0;
}

/* realpath of @path into @out: Azurite runs in its own dir, where a relative
 * path would not resolve. Prints why on failure. */
static int abs_path(char *out, size_t cap, const char *what, const char *path)
{
    char buf[PATH_MAX];
    if (!realpath(path, buf)) {
        int rc = -errno;
        fprintf(stderr, "azurite: %s %s: %s\n", what, path, strerror(-rc));
        return rc;
    }
    return snprintf(out, cap, "%s", buf) >= (int)cap ? -ENAMETOOLONG : 0;
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
        if ((rc = abs_path(a->cert, sizeof(a->cert), "certificate", cert)) < 0 ||
            (rc = abs_path(a->key, sizeof(a->key), "key", key)) < 0) {
            memset(a, 0, sizeof(*a));
            return rc;
        }
        a->https = 1;
    }
    snprintf(a->dir, sizeof(a->dir), "%sXXXXXX", DIR_PREFIX);
    if (!mkdtemp(a->dir)) {
        int rc = -errno;
        a->dir[0] = '\0';
        return rc;
    }
    snprintf(a->logfile, sizeof(a->logfile), "%s/azurite.log", a->dir);
    track(a);

    int rc = -EADDRINUSE;
    for (int i = 0; i < PORT_TRIES && rc == -EADDRINUSE; i++) {
        rc = pick_port(&a->port);
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
    if (!a->pid)
        return 0;
    kill(a->pid, SIGTERM);
    kill(a->pid, SIGCONT); /* a stopped process handles SIGTERM only once continued */
    uint64_t deadline = now_ms() + STOP_TIMEOUT_MS;
    while (!reaped(a)) {
        if (now_ms() >= deadline) {
            kill_and_reap(a);
            return -ETIMEDOUT;
        }
        sleep_ms(5);
    }
    return 0;
}

int azurite_kill(struct azurite *a)
{
    if (!a->pid)
        return -ESRCH;
    kill_and_reap(a);
    return 0;
}

void azurite_destroy(struct azurite *a)
{
    azurite_stop(a);
    if (a->dir[0]) {
        remove_tree(a->dir);
        forget(a);
        a->dir[0] = '\0';
    }
}

void azurite_addr(const struct azurite *a, struct sockaddr_in *out)
{
    memset(out, 0, sizeof(*out));
    out->sin_family = AF_INET;
    out->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    out->sin_port = htons((uint16_t)a->port);
}

int azurite_url(const struct azurite *a, char *buf, size_t cap)
{
    int n = snprintf(buf, cap, "%s://127.0.0.1:%d/" AZURITE_ACCOUNT, a->https ? "https" : "http",
                     a->port);
    return n < 0 || (size_t)n >= cap ? -ENAMETOOLONG : n;
}
