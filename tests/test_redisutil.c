/* SPDX-License-Identifier: MIT */
/*
 * test_redisutil.c - self-test of the redis_server.h harness against real
 * redis-server processes: SET/GET/PING through redis_cli, pause stalls replies
 * and resume delivers them, kill refuses connects, restart keeps the port,
 * requirepass and ACL users, two servers at once, servers dying with the test
 * process, and the install hint when redis-server is missing.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "redis_server.h"

static const char ping_req[] = "*1\r\n$4\r\nPING\r\n";

/* A blocking TCP connection to @s; returns the fd or -errno. */
static int raw_connect(const struct redis_server *s)
{
    struct sockaddr_in sa;
    redis_server_addr(s, &sa);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        int rc = -errno;
        close(fd);
        return rc;
    }
    return fd;
}

static int raw_send_ping(int fd)
{
    ssize_t n = send(fd, ping_req, sizeof(ping_req) - 1, MSG_NOSIGNAL);
    return n == (ssize_t)(sizeof(ping_req) - 1) ? 0 : -errno;
}

/* Receive one reply line within @timeout_ms into buf (NUL-terminated).
 * Returns the byte count, -EAGAIN on timeout, -ECONNRESET if the peer closed. */
static int raw_recv_line(int fd, int timeout_ms, char *buf, size_t cap)
{
    struct timeval tv = {.tv_sec = timeout_ms / 1000, .tv_usec = (timeout_ms % 1000) * 1000};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    size_t have = 0;
    while (have < cap - 1 && !memchr(buf, '\n', have)) {
        ssize_t n = recv(fd, buf + have, cap - 1 - have, 0);
        if (n == 0)
            return -ECONNRESET;
        if (n < 0)
            return errno == EWOULDBLOCK ? -EAGAIN : -errno;
        have += (size_t)n;
    }
    buf[have] = '\0';
    return (int)have;
}

static long long elapsed_ms(const struct timespec *since)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (now.tv_sec - since->tv_sec) * 1000LL + (now.tv_nsec - since->tv_nsec) / 1000000;
}

static int cli(const struct redis_server *s, char *out, size_t cap, const char *a0, const char *a1,
               const char *a2)
{
    const char *args[] = {a0, a1, a2, NULL};
    return redis_cli(s, out, cap, args);
}

TEST(set_get_ping)
{
    struct redis_server s;
    char out[256];
    CHECK_EQ(redis_server_start(&s, NULL), 0);
    CHECK(s.pid > 0);
    CHECK(s.port > 0 && s.port != 6379);
    CHECK(strncmp(s.dir, "/tmp/", 5) == 0);
    CHECK_EQ(cli(&s, out, sizeof(out), "SET", "k", "v"), 0);
    CHECK(!strcmp(out, "OK"));
    CHECK_EQ(cli(&s, out, sizeof(out), "GET", "k", NULL), 0);
    CHECK(!strcmp(out, "v"));
    CHECK_EQ(cli(&s, out, sizeof(out), "PING", NULL, NULL), 0);
    CHECK(!strcmp(out, "PONG"));
    /* Output is truncated to cap-1 bytes and NUL-terminated. */
    CHECK_EQ(cli(&s, out, 3, "PING", NULL, NULL), 0);
    CHECK(!strcmp(out, "PO"));
    /* The fixed arguments took effect: no snapshots, our dir. */
    CHECK_EQ(cli(&s, out, sizeof(out), "CONFIG", "GET", "save"), 0);
    CHECK(!strcmp(out, "save\n"));
    CHECK_EQ(cli(&s, out, sizeof(out), "CONFIG", "GET", "dir"), 0);
    CHECK(strstr(out, s.dir) != NULL);
    char dir[sizeof(s.dir)];
    memcpy(dir, s.dir, sizeof(dir));
    pid_t pid = s.pid;
    redis_server_destroy(&s);
    CHECK_EQ(s.pid, 0);
    CHECK(access(dir, F_OK) < 0);
    CHECK(kill(pid, 0) < 0); /* reaped, not a zombie */
}

TEST(pause_stalls_replies_resume_delivers)
{
    struct redis_server s;
    char buf[64];
    CHECK_EQ(redis_server_start(&s, NULL), 0);
    int fd = raw_connect(&s);
    CHECK(fd >= 0);
    CHECK_EQ(redis_server_pause(&s), 0);
    CHECK_EQ(redis_server_pause(&s), 0); /* pausing twice does not hang */
    CHECK_EQ(raw_send_ping(fd), 0);
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    CHECK_EQ(raw_recv_line(fd, 300, buf, sizeof(buf)), -EAGAIN);
    CHECK(elapsed_ms(&t0) >= 250);
    /* The kernel still accepts new connections into the backlog. */
    int fd2 = raw_connect(&s);
    CHECK(fd2 >= 0);
    close(fd2);
    CHECK_EQ(redis_server_resume(&s), 0);
    CHECK(raw_recv_line(fd, 2000, buf, sizeof(buf)) > 0);
    CHECK(!strcmp(buf, "+PONG\r\n"));
    close(fd);
    redis_server_destroy(&s);
}

TEST(kill_refuses_connects_restart_keeps_port)
{
    struct redis_server s;
    char out[64];
    CHECK_EQ(redis_server_start(&s, NULL), 0);
    int port = s.port;
    CHECK_EQ(cli(&s, out, sizeof(out), "SET", "k", "v"), 0);
    CHECK_EQ(redis_server_kill(&s), 0);
    CHECK_EQ(s.pid, 0);
    CHECK_EQ(redis_server_kill(&s), -ESRCH);
    CHECK_EQ(raw_connect(&s), -ECONNREFUSED);
    CHECK_EQ(redis_server_restart(&s), 0);
    CHECK_EQ(redis_server_restart(&s), -EBUSY);
    CHECK_EQ(s.port, port);
    CHECK_EQ(cli(&s, out, sizeof(out), "PING", NULL, NULL), 0);
    CHECK(!strcmp(out, "PONG"));
    CHECK_EQ(cli(&s, out, sizeof(out), "GET", "k", NULL), 0);
    CHECK(!strcmp(out, "")); /* nothing persisted: a nil prints as an empty line */
    redis_server_destroy(&s);
}

TEST(stop_is_graceful_even_when_paused)
{
    struct redis_server s;
    char out[64];
    CHECK_EQ(redis_server_start(&s, NULL), 0);
    CHECK_EQ(redis_server_pause(&s), 0);
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    CHECK_EQ(redis_server_stop(&s), 0); /* SIGTERM handled, no SIGKILL needed */
    CHECK(elapsed_ms(&t0) < 4000);
    CHECK_EQ(s.pid, 0);
    CHECK_EQ(redis_server_stop(&s), 0);
    CHECK_EQ(redis_server_pause(&s), -ESRCH);
    CHECK_EQ(redis_server_resume(&s), -ESRCH);
    CHECK_EQ(raw_connect(&s), -ECONNREFUSED);
    CHECK_EQ(redis_server_restart(&s), 0);
    CHECK_EQ(cli(&s, out, sizeof(out), "PING", NULL, NULL), 0);
    CHECK(!strcmp(out, "PONG"));
    redis_server_destroy(&s);
}

TEST(requirepass)
{
    static const char *const extra[] = {"--requirepass", "pw", NULL};
    struct redis_server s;
    char out[128];
    CHECK_EQ(redis_server_start(&s, extra), 0); /* -NOAUTH counts as up */
    CHECK_EQ(cli(&s, out, sizeof(out), "PING", NULL, NULL), 0);
    CHECK(!strncmp(out, "NOAUTH", 6));
    redis_cli_auth(NULL, "pw");
    int rc = cli(&s, out, sizeof(out), "PING", NULL, NULL);
    redis_cli_auth(NULL, NULL);
    CHECK_EQ(rc, 0);
    CHECK(!strcmp(out, "PONG"));
    redis_server_destroy(&s);
}

TEST(acl_user_on_the_command_line)
{
    static const char *const extra[] = {"--user", "alice", "on", ">secret", "~*", "+@all", NULL};
    struct redis_server s;
    char out[128];
    CHECK_EQ(redis_server_start(&s, extra), 0);
    redis_cli_auth("alice", "secret");
    int rc = cli(&s, out, sizeof(out), "ACL", "WHOAMI", NULL);
    redis_cli_auth(NULL, NULL);
    CHECK_EQ(rc, 0);
    CHECK(!strcmp(out, "alice"));
    CHECK_EQ(cli(&s, out, sizeof(out), "ACL", "WHOAMI", NULL), 0);
    CHECK(!strcmp(out, "default"));
    redis_server_destroy(&s);
}

TEST(two_servers_at_once)
{
    struct redis_server a, b;
    char out[64];
    CHECK_EQ(redis_server_start(&a, NULL), 0);
    CHECK_EQ(redis_server_start(&b, NULL), 0);
    CHECK(a.port != b.port);
    CHECK(strcmp(a.dir, b.dir) != 0);
    CHECK_EQ(cli(&a, out, sizeof(out), "SET", "who", "a"), 0);
    CHECK_EQ(cli(&b, out, sizeof(out), "SET", "who", "b"), 0);
    CHECK_EQ(cli(&a, out, sizeof(out), "GET", "who", NULL), 0);
    CHECK(!strcmp(out, "a"));
    CHECK_EQ(cli(&b, out, sizeof(out), "GET", "who", NULL), 0);
    CHECK(!strcmp(out, "b"));
    printf("     ports %d and %d\n", a.port, b.port);
    redis_server_destroy(&a);
    redis_server_destroy(&b);
}

TEST(restart_on_a_taken_port_is_eaddrinuse)
{
    struct redis_server s;
    char out[64];
    CHECK_EQ(redis_server_start(&s, NULL), 0);
    CHECK_EQ(redis_server_kill(&s), 0);
    struct sockaddr_in sa;
    redis_server_addr(&s, &sa);
    int thief = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    CHECK(thief >= 0);
    CHECK_EQ(bind(thief, (struct sockaddr *)&sa, sizeof(sa)), 0);
    CHECK_EQ(listen(thief, 1), 0);
    int rc = redis_server_restart(&s);
    printf("     (the log tail above, \"Address already in use\", is expected)\n");
    close(thief);
    CHECK_EQ(rc, -EADDRINUSE);
    CHECK_EQ(s.pid, 0);
    CHECK_EQ(redis_server_restart(&s), 0);
    CHECK_EQ(cli(&s, out, sizeof(out), "PING", NULL, NULL), 0);
    CHECK(!strcmp(out, "PONG"));
    redis_server_destroy(&s);
}

TEST(bad_arguments_fail_fast_with_the_log)
{
    static const char *const extra[] = {"--no-such-option", "x", NULL};
    struct redis_server s;
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    int rc = redis_server_start(&s, extra);
    printf("     (the log tail above, \"Bad directive\", is expected)\n");
    CHECK_EQ(rc, -EIO);
    CHECK(elapsed_ms(&t0) < 5000);
    CHECK_EQ(s.pid, 0);
    CHECK_EQ(s.dir[0], '\0');
}

TEST(server_dies_with_the_test_process)
{
    /* A child "test process" starts a server and dies without cleaning up,
     * as a crash would (_exit: no atexit). PR_SET_PDEATHSIG must kill it. */
    int p[2];
    CHECK_EQ(pipe(p), 0);
    pid_t child = fork();
    CHECK(child >= 0);
    if (child == 0) {
        struct redis_server s;
        close(p[0]);
        if (redis_server_start(&s, NULL) == 0 && write(p[1], &s, sizeof(s)) == (ssize_t)sizeof(s))
            _exit(0);
        _exit(1);
    }
    close(p[1]);
    struct redis_server s;
    ssize_t n = read(p[0], &s, sizeof(s));
    close(p[0]);
    int status;
    CHECK_EQ(waitpid(child, &status, 0), child);
    CHECK_EQ(n, (ssize_t)sizeof(s));
    int gone = 0;
    for (int i = 0; i < 200 && !gone; i++) {
        gone = raw_connect(&s) == -ECONNREFUSED;
        if (!gone)
            usleep(10000);
    }
    s.pid = 0; /* not our child; destroy only removes the dir it left */
    redis_server_destroy(&s);
    CHECK(gone);
    CHECK(access(s.logfile, F_OK) < 0);
}

TEST(missing_redis_server_is_enoent_with_hint)
{
    const char *path = getenv("PATH");
    char saved[4096];
    snprintf(saved, sizeof(saved), "%s", path ? path : "");
    setenv("PATH", "/nonexistent", 1);
    struct redis_server s;
    char out[16];
    int rc = redis_server_start(&s, NULL);
    int cli_rc = cli(&s, out, sizeof(out), "PING", NULL, NULL);
    setenv("PATH", saved, 1);
    printf("     (the two \"not found\" hints above are expected)\n");
    CHECK_EQ(rc, -ENOENT);
    CHECK_EQ(s.pid, 0);
    CHECK_EQ(s.dir[0], '\0'); /* nothing left behind */
    CHECK_EQ(cli_rc, -ENOENT);
}

TEST(too_many_extra_args)
{
    static const char *const extra[] = {"a", "b", "c", "d", "e", "f", "g", "h", "i",
                                        "j", "k", "l", "m", "n", "o", "p", NULL};
    struct redis_server s;
    CHECK_EQ(redis_server_start(&s, extra), -E2BIG);
    redis_server_destroy(&s);
}

TESTS(T(set_get_ping), T(pause_stalls_replies_resume_delivers),
      T(kill_refuses_connects_restart_keeps_port), T(stop_is_graceful_even_when_paused),
      T(restart_on_a_taken_port_is_eaddrinuse), T(bad_arguments_fail_fast_with_the_log),
      T(requirepass), T(acl_user_on_the_command_line), T(two_servers_at_once),
      T(server_dies_with_the_test_process), T(missing_redis_server_is_enoent_with_hint),
      T(too_many_extra_args))
