/* SPDX-License-Identifier: MIT */
/* redis_server.c - see redis_server.h. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "proc.h"
#include "redis_server.h"

#define START_TIMEOUT_MS 10000
#define STOP_TIMEOUT_MS 5000
#define CLI_TIMEOUT_MS 10000
#define PROBE_TIMEOUT_MS 200
#define PROBE_CLI_TIMEOUT_MS 2000
#define PORT_TRIES 5
#define LOG_TAIL_LINES 20
#define DIR_PREFIX PROC_DIR_PREFIX "redis-"

static const char server_hint[] = "redis-server not found: install it with "
                                  "`apt-get install redis-server` (or run scripts/setup)\n";
static const char cli_hint[] = "redis-cli not found: install it with "
                               "`apt-get install redis-tools` (or run scripts/setup)\n";

/* ---- the server ---- */

/* A connected unix stream socket to @path, or -1. */
static int connect_unix(const char *path)
{
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof(sun.sun_path))
        return -1;
    strcpy(sun.sun_path, path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    struct timeval tv = {.tv_sec = 0, .tv_usec = PROBE_TIMEOUT_MS * 1000};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* 1 if a RESP PING on a fresh connection (TCP to @port, or the unix socket
 * @sock when it is not empty) is answered +PONG or -NOAUTH. */
static int probe(int port, const char *sock)
{
    int up = 0;
    int fd = sock[0] ? connect_unix(sock) : proc_connect(port, PROBE_TIMEOUT_MS);
    if (fd < 0)
        return 0;
    static const char ping[] = "*1\r\n$4\r\nPING\r\n";
    if (send(fd, ping, sizeof(ping) - 1, MSG_NOSIGNAL) != (ssize_t)(sizeof(ping) - 1))
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
    int fd = proc_connect(s->port, 0);
    if (fd < 0)
        return 0;
    close(fd);
    static const char *const ping[] = {"PING", NULL};
    char out[128];
    int rc = cli_run(s, out, sizeof(out), ping, PROBE_CLI_TIMEOUT_MS, 1);
    if (rc == -ENOENT)
        return -ENOENT;
    return rc == 0 && (!strcmp(out, "PONG") || !strncmp(out, "NOAUTH", 6));
}

static void print_log_tail(const struct redis_server *s, const char *what, int rc)
{
    const char *why = rc == -EIO         ? "it exited during startup"
                      : rc == -ETIMEDOUT ? "no PING answer within 10 s"
                                         : strerror(-rc);
    fprintf(stderr, "redis-server on 127.0.0.1:%d %s: %s; last %d lines of %s:\n", s->port, what,
            why, LOG_TAIL_LINES, s->logfile);
    proc_log_tail(s->logfile, LOG_TAIL_LINES);
}

static int ready_tcp(void *ctx)
{
    const struct redis_server *s = ctx;
    return probe(s->port, s->sock);
}

static int ready_tls(void *ctx)
{
    return probe_tls(ctx);
}

/* One spawn on s->port, then wait until it answers. On failure the process
 * is reaped. -EIO: it exited (-EADDRINUSE if its log says the port was taken). */
static int launch(struct redis_server *s)
{
    char port[16];
    snprintf(port, sizeof(port), "%d", s->port);
    /* TLS-only or unix-socket-only: no plain TCP */
    const char *tcp_port = is_tls(s) || s->sock[0] ? "0" : port;
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
    if (s->sock[0]) {
        argv[argc++] = "--unixsocket";
        argv[argc++] = s->sock;
        argv[argc++] = "--unixsocketperm";
        argv[argc++] = "700";
    }
    for (size_t i = 0; s->extra[i]; i++)
        argv[argc++] = s->extra[i];
    argv[argc] = NULL;

    off_t log_from;
    int rc = proc_spawn_logged(argv, NULL, s->logfile, &log_from, &s->pid);
    if (rc == -ENOENT)
        fputs(server_hint, stderr);
    if (rc < 0)
        return rc;
    proc_track(s->dir, s->pid);

    const struct proc_ready ready = {
        .ready = is_tls(s) ? ready_tls : ready_tcp,
        .ctx = s,
        .in_use = "Address already in use",
        .timeout_ms = START_TIMEOUT_MS,
        .poll_ms = 10,
    };
    return proc_await_ready(&s->pid, s->dir, s->logfile, log_from, &ready);
}

/* redis_server_start after the memset (TLS fields already set). */
static int start(struct redis_server *s, const char *const *extra, int unix_sock)
{
    for (size_t i = 0; extra && extra[i]; i++) {
        if (i == REDIS_SERVER_MAX_EXTRA)
            return -E2BIG;
        s->extra[i] = extra[i];
    }
    int rc = proc_mkdtemp(s->dir, sizeof(s->dir), DIR_PREFIX);
    if (rc < 0)
        return rc;
    snprintf(s->logfile, sizeof(s->logfile), "%s/redis.log", s->dir);
    if (unix_sock)
        snprintf(s->sock, sizeof(s->sock), "%s/redis.sock", s->dir);

    rc = -EADDRINUSE;
    for (int i = 0; i < PORT_TRIES && rc == -EADDRINUSE; i++) {
        rc = unix_sock ? 0 : proc_pick_port(&s->port);
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
    return start(s, extra, 0);
}

int redis_server_start_unix(struct redis_server *s, const char *const *extra)
{
    memset(s, 0, sizeof(*s));
    return start(s, extra, 1);
}

int redis_server_start_tls(struct redis_server *s, const char *cert, const char *key,
                           const char *ca, const char *const *extra)
{
    memset(s, 0, sizeof(*s));
    int rc;
    if ((rc = proc_abs_path(s->tls_cert, sizeof(s->tls_cert), "redis-server TLS certificate",
                            cert)) < 0 ||
        (rc = proc_abs_path(s->tls_key, sizeof(s->tls_key), "redis-server TLS key", key)) < 0 ||
        (rc = proc_abs_path(s->tls_ca, sizeof(s->tls_ca), "redis-server TLS CA", ca)) < 0) {
        memset(s, 0, sizeof(*s));
        return rc;
    }
    return start(s, extra, 0);
}

int redis_server_restart(struct redis_server *s)
{
    if (s->pid)
        return -EBUSY;
    if ((!s->port && !s->sock[0]) || !s->dir[0])
        return -EINVAL;
    int rc = launch(s);
    if (rc < 0 && rc != -ENOENT)
        print_log_tail(s, "did not restart", rc);
    return rc;
}

int redis_server_stop(struct redis_server *s)
{
    return proc_stop(&s->pid, s->dir, STOP_TIMEOUT_MS);
}

int redis_server_kill(struct redis_server *s)
{
    return proc_kill(&s->pid, s->dir);
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
    uint64_t deadline = proc_now_ms() + 2000;
    for (;;) {
        char st = proc_state(s->pid);
        if (st == 0 || st == 'Z' || st == 'X') {
            proc_kill(&s->pid, s->dir);
            return -ESRCH;
        }
        if ((st == 'T') == stopped)
            return 0;
        if (proc_now_ms() >= deadline)
            return -ETIMEDOUT;
        proc_sleep_ms(1);
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
        proc_rmtree(s->dir);
        s->dir[0] = '\0';
    }
}

void redis_server_addr(const struct redis_server *s, struct sockaddr_in *out)
{
    proc_loopback_addr(s->port, out);
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
    if (s->sock[0]) {
        argv[1] = "-s";
        argv[2] = s->sock;
        argc = 3;
    }
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

    int err_fd = -1;
    if (quiet && (err_fd = open("/dev/null", O_WRONLY | O_CLOEXEC)) < 0)
        return -errno;
    int rc = proc_capture(argv, NULL, out, cap, timeout_ms, err_fd);
    if (err_fd >= 0)
        close(err_fd);
    if (rc == -ENOENT)
        fputs(cli_hint, stderr);
    size_t have = strlen(out);
    if (have && out[have - 1] == '\n')
        out[--have] = '\0';
    return rc;
}

int redis_cli(const struct redis_server *s, char *out, size_t cap, const char *const *args)
{
    return cli_run(s, out, cap, args, CLI_TIMEOUT_MS, 0);
}

int redis_replica_link_up(const struct redis_server *r)
{
    for (int i = 0; i < 200; i++) {
        char out[4096];
        const char *args[] = {"INFO", "replication", NULL};
        int rc = redis_cli(r, out, sizeof(out), args);
        if (rc == -ENOENT)
            return rc;
        if (rc == 0 && strstr(out, "master_link_status:up"))
            return 0;
        usleep(50000);
    }
    return -ETIMEDOUT;
}
