/* SPDX-License-Identifier: MIT */
/* redis_server.c - see redis_server.h. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <poll.h>
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

#include "redis_server.h"

#define START_TIMEOUT_MS 10000
#define STOP_TIMEOUT_MS 5000
#define CLI_TIMEOUT_MS 10000
#define PROBE_TIMEOUT_MS 200
#define PROBE_CLI_TIMEOUT_MS 2000
#define PORT_TRIES 5
#define LOG_TAIL_LINES 20
#define SYSTEM_REDIS_PORT 6379 /* Debian's own redis-server may live here: never touch it */
#define DIR_PREFIX "/tmp/leasering-redis-"
#define MAX_TRACKED 64

static const char server_hint[] = "redis-server not found: install it with "
                                  "`apt-get install redis-server` (or run scripts/setup)\n";
static const char cli_hint[] = "redis-cli not found: install it with "
                               "`apt-get install redis-tools` (or run scripts/setup)\n";

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

/* ---- cleanup at exit ----
 * A failed CHECK returns from the test without redis_server_destroy, and the
 * struct (often on the stack) is gone by then. This table keeps copies of
 * pid and dir so the exit hook can still kill and remove them. Crashes skip
 * atexit; PR_SET_PDEATHSIG still kills the servers then, only dirs remain. */

struct tracked {
    pid_t pid;
    char dir[sizeof(((struct redis_server *)0)->dir)];
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

static pid_t waitpid_eintr(pid_t pid, int *status, int flags)
{
    pid_t r;
    do
        r = waitpid(pid, status, flags);
    while (r < 0 && errno == EINTR);
    return r;
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

/* Record s->pid for s->dir. A full table only loses the exit-time cleanup. */
static void track(const struct redis_server *s)
{
    if (!exit_hook_armed) {
        exit_hook_armed = 1;
        atexit(cleanup_at_exit);
    }
    struct tracked *t = find_tracked(s->dir);
    if (!t)
        return;
    t->pid = s->pid;
    snprintf(t->dir, sizeof(t->dir), "%s", s->dir);
}

static void forget(const struct redis_server *s)
{
    struct tracked *t = find_tracked(s->dir);
    if (t && t->dir[0])
        memset(t, 0, sizeof(*t));
}

/* ---- spawning ---- */

static int set_cloexec_from(int first)
{
#ifdef CLOSE_RANGE_CLOEXEC
    if (close_range((unsigned)first, ~0u, CLOSE_RANGE_CLOEXEC) == 0)
        return 0;
#endif
    long max = sysconf(_SC_OPEN_MAX);
    if (max < 0 || max > 65536)
        max = 65536;
    for (int fd = first; fd < max; fd++)
        fcntl(fd, F_SETFD, FD_CLOEXEC); /* EBADF for closed fds: fine */
    return 0;
}

/* Between fork and exec: async-signal-safe calls only (the parent may have
 * threads holding malloc or stdio locks). Reports failure as an errno on
 * @err_fd, which exec closes on success. */
static _Noreturn void child_exec(const char *const *argv, int out_fd, int err_fd_target, int err_fd,
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
    int null_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (null_fd < 0 || dup2(null_fd, STDIN_FILENO) < 0)
        goto fail;
    if (out_fd >= 0 && dup2(out_fd, STDOUT_FILENO) < 0)
        goto fail;
    if (err_fd_target >= 0 && dup2(err_fd_target, STDERR_FILENO) < 0)
        goto fail;
    set_cloexec_from(STDERR_FILENO + 1);
    execvp(argv[0], (char *const *)argv);
fail:
    err = errno;
    while (write(err_fd, &err, sizeof(err)) < 0 && errno == EINTR)
        ;
    _exit(127);
}

/* fork + execvp @argv with stdin from /dev/null, stdout to @out_fd and
 * stderr to @err_fd (-1: inherit). Returns 0 with *pid set once exec has
 * succeeded, or -errno (-ENOENT: no such program on PATH). */
static int spawn(const char *const *argv, int out_fd, int err_fd, pid_t *pid)
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
        child_exec(argv, out_fd, err_fd, ep[1], parent);
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

/* ---- the server ---- */

static int pick_port(int *port)
{
    for (int i = 0; i < 8; i++) {
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
        close(fd); /* free again; the server binds it next (a race we retry) */
        if (rc < 0)
            return rc;
        *port = ntohs(sa.sin_port);
        if (*port != SYSTEM_REDIS_PORT)
            return 0;
    }
    return -EADDRINUSE;
}

/* 1 if a RESP PING on a fresh connection is answered +PONG or -NOAUTH. */
static int probe(int port)
{
    int up = 0;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return 0;
    struct timeval tv = {.tv_sec = 0, .tv_usec = PROBE_TIMEOUT_MS * 1000};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    static const char ping[] = "*1\r\n$4\r\nPING\r\n";
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
        send(fd, ping, sizeof(ping) - 1, MSG_NOSIGNAL) != (ssize_t)(sizeof(ping) - 1))
        goto out;
    char buf[128];
    size_t have = 0;
    while (have < sizeof(buf) - 1 && !memchr(buf, '\n', have)) {
        ssize_t n = recv(fd, buf + have, sizeof(buf) - 1 - have, 0);
        if (n <= 0)
            break;
        have += (size_t)n;
    }
    buf[have] = '\0';
    up = !strncmp(buf, "+PONG", 5) || !strncmp(buf, "-NOAUTH", 7);
out:
    close(fd);
    return up;
}

static int is_tls(const struct redis_server *s)
{
    return s->tls_ca[0] != '\0';
}

static int cli_run(const struct redis_server *s, char *out, size_t cap, const char *const *args,
                   int timeout_ms, int quiet);

/* TLS-only server: 1 if the port accepts and then redis-cli --tls PING gets
 * PONG or NOAUTH; 0 not yet; -ENOENT no redis-cli (hint printed). The
 * connect first keeps redis-cli runs (~5 ms each) to the last moments of
 * startup. */
static int probe_tls(const struct redis_server *s)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return 0;
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)s->port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int accepted = connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
    close(fd);
    if (!accepted)
        return 0;
    static const char *const ping[] = {"PING", NULL};
    char out[128];
    int rc = cli_run(s, out, sizeof(out), ping, PROBE_CLI_TIMEOUT_MS, 1);
    if (rc == -ENOENT)
        return -ENOENT;
    return rc == 0 && (!strcmp(out, "PONG") || !strncmp(out, "NOAUTH", 6));
}

/* Reap @s if it has exited; returns 1 if it is gone. */
static int reaped(struct redis_server *s)
{
    pid_t r = waitpid_eintr(s->pid, NULL, WNOHANG);
    if (r == 0)
        return 0;
    s->pid = 0; /* r == pid, or ECHILD: someone else reaped it */
    track(s);
    return 1;
}

static void kill_and_reap(struct redis_server *s)
{
    if (!s->pid)
        return;
    kill(s->pid, SIGKILL);
    waitpid_eintr(s->pid, NULL, 0);
    s->pid = 0;
    track(s);
}

static off_t file_size(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? st.st_size : 0;
}

/* 1 if the log, from byte @from on, contains @needle. */
static int log_contains(const struct redis_server *s, off_t from, const char *needle)
{
    char buf[16384];
    int fd = open(s->logfile, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    ssize_t n = pread(fd, buf, sizeof(buf) - 1, from);
    close(fd);
    if (n <= 0)
        return 0;
    buf[n] = '\0';
    return strstr(buf, needle) != NULL;
}

static void print_log_tail(const struct redis_server *s, const char *what, int rc)
{
    const char *why = rc == -EIO         ? "it exited during startup"
                      : rc == -ETIMEDOUT ? "no PING answer within 10 s"
                                         : strerror(-rc);
    fprintf(stderr, "redis-server on 127.0.0.1:%d %s: %s; last %d lines of %s:\n", s->port, what,
            why, LOG_TAIL_LINES, s->logfile);
    char buf[16384];
    int fd = open(s->logfile, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        fprintf(stderr, "  (no log: %s)\n", strerror(errno));
        return;
    }
    off_t size = file_size(s->logfile);
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

/* One spawn on s->port, then wait until it answers. On failure the process
 * is reaped. -EIO: it exited (-EADDRINUSE if its log says the port was taken). */
static int launch(struct redis_server *s)
{
    char port[16];
    snprintf(port, sizeof(port), "%d", s->port);
    const char *tcp_port = is_tls(s) ? "0" : port; /* TLS-only: no plain TCP */
    const char *argv[32 + REDIS_SERVER_MAX_EXTRA] = {
        "redis-server", "--save", "",       "--appendonly", "no",       "--dir",       s->dir,
        "--bind",       "127.0.0.1", "--port", tcp_port,     "--logfile", s->logfile, "--daemonize",
        "no",
    };
    size_t argc = 0;
    while (argv[argc])
        argc++;
    if (is_tls(s)) {
        const char *const tls[] = {
            "--tls-port",         port,       "--tls-cert-file",    s->tls_cert,
            "--tls-key-file",     s->tls_key, "--tls-ca-cert-file", s->tls_ca,
            "--tls-auth-clients", "no",       NULL,
        };
        for (size_t i = 0; tls[i]; i++)
            argv[argc++] = tls[i];
    }
    for (size_t i = 0; s->extra[i]; i++)
        argv[argc++] = s->extra[i];
    argv[argc] = NULL;

    int log_fd = open(s->logfile, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (log_fd < 0)
        return -errno;
    off_t log_from = file_size(s->logfile);
    int rc = spawn(argv, log_fd, log_fd, &s->pid);
    close(log_fd);
    if (rc == -ENOENT)
        fputs(server_hint, stderr);
    if (rc < 0)
        return rc;
    track(s);

    uint64_t deadline = now_ms() + START_TIMEOUT_MS;
    for (;;) {
        if (reaped(s)) {
            rc = -EIO;
            break;
        }
        int up = is_tls(s) ? probe_tls(s) : probe(s->port);
        if (up < 0) {
            rc = up;
            break;
        }
        if (up) {
            /* Something answered; make sure it was ours, not a port thief. */
            if (!reaped(s))
                return 0;
            rc = -EIO;
            break;
        }
        if (now_ms() >= deadline) {
            rc = -ETIMEDOUT;
            break;
        }
        sleep_ms(10);
    }
    kill_and_reap(s);
    if (rc == -EIO && log_contains(s, log_from, "Address already in use"))
        rc = -EADDRINUSE;
    return rc;
}

/* redis_server_start after the memset (TLS fields already set). */
static int start(struct redis_server *s, const char *const *extra)
{
    for (size_t i = 0; extra && extra[i]; i++) {
        if (i == REDIS_SERVER_MAX_EXTRA)
            return -E2BIG;
        s->extra[i] = extra[i];
    }
    snprintf(s->dir, sizeof(s->dir), "%sXXXXXX", DIR_PREFIX);
    if (!mkdtemp(s->dir)) {
        int rc = -errno;
        s->dir[0] = '\0';
        return rc;
    }
    snprintf(s->logfile, sizeof(s->logfile), "%s/redis.log", s->dir);
    track(s);

    int rc = -EADDRINUSE;
    for (int i = 0; i < PORT_TRIES && rc == -EADDRINUSE; i++) {
        rc = pick_port(&s->port);
        if (rc == 0)
            rc = launch(s);
    }
    if (rc < 0) {
        if (rc != -ENOENT)
            print_log_tail(s, "did not start", rc);
        redis_server_destroy(s);
    }
    return rc;
}

int redis_server_start(struct redis_server *s, const char *const *extra)
{
    memset(s, 0, sizeof(*s));
    return start(s, extra);
}

/* realpath of @path into @out (the server runs in its own dir, so a relative
 * path would not resolve there); prints why on failure. */
static int tls_path(char *out, size_t cap, const char *what, const char *path)
{
    char buf[PATH_MAX];
    if (!path)
        return -EINVAL;
    if (!realpath(path, buf)) {
        int rc = -errno;
        fprintf(stderr, "redis-server TLS %s %s: %s\n", what, path, strerror(-rc));
        return rc;
    }
    if (snprintf(out, cap, "%s", buf) >= (int)cap)
        return -ENAMETOOLONG;
    return 0;
}

int redis_server_start_tls(struct redis_server *s, const char *cert, const char *key,
                           const char *ca, const char *const *extra)
{
    memset(s, 0, sizeof(*s));
    int rc;
    if ((rc = tls_path(s->tls_cert, sizeof(s->tls_cert), "certificate", cert)) < 0 ||
        (rc = tls_path(s->tls_key, sizeof(s->tls_key), "key", key)) < 0 ||
        (rc = tls_path(s->tls_ca, sizeof(s->tls_ca), "CA", ca)) < 0) {
        memset(s, 0, sizeof(*s));
        return rc;
    }
    return start(s, extra);
}

int redis_server_restart(struct redis_server *s)
{
    if (s->pid)
        return -EBUSY;
    if (!s->port || !s->dir[0])
        return -EINVAL;
    int rc = launch(s);
    if (rc < 0 && rc != -ENOENT)
        print_log_tail(s, "did not restart", rc);
    return rc;
}

int redis_server_stop(struct redis_server *s)
{
    if (!s->pid)
        return 0;
    kill(s->pid, SIGTERM);
    kill(s->pid, SIGCONT); /* a paused server handles SIGTERM only once continued */
    uint64_t deadline = now_ms() + STOP_TIMEOUT_MS;
    while (!reaped(s)) {
        if (now_ms() >= deadline) {
            kill_and_reap(s);
            return -ETIMEDOUT;
        }
        sleep_ms(5);
    }
    return 0;
}

int redis_server_kill(struct redis_server *s)
{
    if (!s->pid)
        return -ESRCH;
    kill_and_reap(s);
    return 0;
}

/* The state letter of /proc/<pid>/stat ('T' stopped, 'Z' zombie, ...), or 0. */
static char proc_state(pid_t pid)
{
    char path[64];
    char buf[512];
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    ssize_t n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (n <= 0)
        return 0;
    buf[n] = '\0';
    const char *p = strrchr(buf, ')'); /* comm may contain spaces and parens */
    return p && p[1] == ' ' ? p[2] : 0;
}

/* Polls /proc rather than waitpid(WUNTRACED): pausing twice must not block
 * waiting for a stop report that never comes. */
static int wait_stopped(struct redis_server *s, int stopped)
{
    uint64_t deadline = now_ms() + 2000;
    for (;;) {
        char st = proc_state(s->pid);
        if (st == 0 || st == 'Z' || st == 'X') {
            kill_and_reap(s);
            return -ESRCH;
        }
        if ((st == 'T') == stopped)
            return 0;
        if (now_ms() >= deadline)
            return -ETIMEDOUT;
        sleep_ms(1);
    }
}

int redis_server_pause(struct redis_server *s)
{
    if (!s->pid)
        return -ESRCH;
    if (kill(s->pid, SIGSTOP) < 0)
        return -errno;
    return wait_stopped(s, 1);
}

int redis_server_resume(struct redis_server *s)
{
    if (!s->pid)
        return -ESRCH;
    if (kill(s->pid, SIGCONT) < 0)
        return -errno;
    return wait_stopped(s, 0);
}

void redis_server_destroy(struct redis_server *s)
{
    redis_server_stop(s);
    if (s->dir[0]) {
        remove_tree(s->dir);
        forget(s);
        s->dir[0] = '\0';
    }
}

void redis_server_addr(const struct redis_server *s, struct sockaddr_in *out)
{
    memset(out, 0, sizeof(*out));
    out->sin_family = AF_INET;
    out->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    out->sin_port = htons((uint16_t)s->port);
}

/* ---- redis-cli ---- */

static char cli_user[256];
static char cli_pass[256];
static int cli_has_user;
static int cli_has_pass;

void redis_cli_auth(const char *user, const char *pass)
{
    cli_has_user = user != NULL;
    cli_has_pass = pass != NULL;
    snprintf(cli_user, sizeof(cli_user), "%s", user ? user : "");
    snprintf(cli_pass, sizeof(cli_pass), "%s", pass ? pass : "");
}

#define CLI_MAX_ARGS 48

/* redis_cli with a timeout, and stderr to /dev/null when @quiet (probes). */
static int cli_run(const struct redis_server *s, char *out, size_t cap, const char *const *args,
                   int timeout_ms, int quiet)
{
    if (!s || !out || !cap || !args)
        return -EINVAL;
    out[0] = '\0';
    char port[16];
    snprintf(port, sizeof(port), "%d", s->port);
    const char *argv[15 + CLI_MAX_ARGS + 1] = {"redis-cli", "-h", "127.0.0.1", "-p", port};
    size_t argc = 5;
    if (is_tls(s)) {
        argv[argc++] = "--tls";
        argv[argc++] = "--cacert";
        argv[argc++] = s->tls_ca;
    }
    if (cli_has_user) {
        argv[argc++] = "--user";
        argv[argc++] = cli_user;
    }
    if (cli_has_pass) {
        argv[argc++] = "--pass";
        argv[argc++] = cli_pass;
    }
    argv[argc++] = "--no-auth-warning";
    for (size_t i = 0; args[i]; i++) {
        if (i == CLI_MAX_ARGS)
            return -E2BIG;
        argv[argc++] = args[i];
    }
    argv[argc] = NULL;

    int p[2];
    if (pipe2(p, O_CLOEXEC) < 0)
        return -errno;
    int err_fd = -1;
    if (quiet && (err_fd = open("/dev/null", O_WRONLY | O_CLOEXEC)) < 0) {
        int rc = -errno;
        close(p[0]);
        close(p[1]);
        return rc;
    }
    pid_t pid;
    int rc = spawn(argv, p[1], err_fd, &pid);
    close(p[1]);
    if (err_fd >= 0)
        close(err_fd);
    if (rc < 0) {
        close(p[0]);
        if (rc == -ENOENT)
            fputs(cli_hint, stderr);
        return rc;
    }

    /* Read to EOF, keeping what fits and draining the rest so the child
     * never blocks on a full pipe. */
    size_t have = 0;
    uint64_t deadline = now_ms() + (uint64_t)timeout_ms;
    rc = 0;
    for (;;) {
        uint64_t now = now_ms();
        if (now >= deadline) {
            rc = -ETIMEDOUT;
            break;
        }
        struct pollfd pfd = {.fd = p[0], .events = POLLIN};
        int pr = poll(&pfd, 1, (int)(deadline - now));
        if (pr < 0 && errno == EINTR)
            continue;
        if (pr < 0) {
            rc = -errno;
            break;
        }
        if (pr == 0)
            continue; /* the deadline check above ends it */
        char buf[4096];
        ssize_t n = read(p[0], buf, sizeof(buf));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            rc = -errno;
            break;
        }
        if (n == 0)
            break;
        size_t take = (size_t)n;
        if (take > cap - 1 - have)
            take = cap - 1 - have;
        memcpy(out + have, buf, take);
        have += take;
    }
    close(p[0]);
    out[have] = '\0';
    if (have && out[have - 1] == '\n')
        out[--have] = '\0';
    if (rc < 0)
        kill(pid, SIGKILL);
    int status;
    if (waitpid_eintr(pid, &status, 0) < 0 && rc == 0)
        rc = -errno;
    if (rc < 0)
        return rc;
    if (WIFEXITED(status))
        return WEXITSTATUS(status);
    return 128 + WTERMSIG(status);
}

int redis_cli(const struct redis_server *s, char *out, size_t cap, const char *const *args)
{
    return cli_run(s, out, cap, args, CLI_TIMEOUT_MS, 0);
}
