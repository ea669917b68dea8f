/* SPDX-License-Identifier: MIT */
/*
 * test_hold.c - the built `leasering hold` run as a program against a real
 * redis-server:
 *  - the command sees LEASERING_NAME/LEASERING_FENCE, outlives several
 *    renewal periods, hold exits with its status, and the name is free at
 *    once afterwards (happy_path);
 *  - --wait on a held name: exit 4 and a message when it runs out, the lease
 *    once the holder's TTL ends when it does not (wait_for_name);
 *  - the store partitioned (a silent proxy between hold and redis-server):
 *    a command that ignores SIGTERM is SIGKILLed and seen dead (a thread
 *    polling a pidfd of our own) well before the valid_until hold logs, and
 *    before a second holder, connected straight to redis and retrying every
 *    ~20 ms, acquires the name; hold exits 3 naming the cause
 *    (killed_before_valid_until);
 *  - kill -9 of hold: the command dies too (parent_killed);
 *  - SIGTERM to hold reaches the command; hold exits with its status and
 *    the name is free at once (sigterm_forwarded).
 *  - the arguments: --opt=value, missing flags named, the command after
 *    "--", `leasering help hold` (arguments).
 * The second holder is a manager in this process.
 */
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <leasering.h>
#include "fault/proxy.h"
#include "harness.h"
#include "proc.h"
#include "redis_server.h"

#ifndef LEASERING_TOOL
#define LEASERING_TOOL "tools/leasering"
#endif

static char out[64 * 1024];

/* ---- a second holder in this process ---- */

struct other {
    struct lr_loop *loop;
    struct lr_manager *m;
    struct lr_lease l;
    int outcome; /* 1 acquired, -1 failed */
    uint64_t at; /* proc_now_ms() of the outcome */
};

static void other_acquired(struct lr_lease *l)
{
    struct other *o = l->data;
    o->outcome = 1;
    o->at = proc_now_ms();
    lr_loop_stop(o->loop);
}

static void other_failed(struct lr_lease *l, int status)
{
    (void)status;
    struct other *o = l->data;
    o->outcome = -1;
    o->at = proc_now_ms();
    lr_loop_stop(o->loop);
}

static void other_closed(struct lr_manager *m, void *arg)
{
    (void)m;
    lr_loop_stop(((struct other *)arg)->loop);
}

static void other_timeout(struct lr_timer *t)
{
    lr_loop_stop(t->loop);
}

/* Try to acquire @name for up to @timeout_ms (0: one attempt) with TTL
 * @ttl_ms. Returns 1 acquired (o->at says when), -1 refused, 0 no answer. */
static int other_acquire(struct other *o, const char *uri, const char *name, uint32_t ttl_ms,
                         uint32_t timeout_ms)
{
    static const struct lr_lease_cbs cbs = {.acquired = other_acquired,
                                            .acquire_failed = other_failed};
    /* retries every 10-20 ms: the acquire comes close after the name frees */
    struct lr_manager_opts mo = {
        .ttl_ms = ttl_ms, .cbs = &cbs, .retry_base_ms = 10, .retry_cap_ms = 20};
    memset(o, 0, sizeof(*o));
    if (lr_loop_new(&o->loop, NULL) < 0 || lr_manager_new(&o->m, o->loop, uri, &mo) < 0 ||
        lr_lease_init(o->m, &o->l, name, NULL) < 0)
        return 0;
    o->l.data = o;
    struct lr_timer t;
    lr_timer_init(o->loop, &t, other_timeout);
    lr_lease_acquire(&o->l, timeout_ms);
    lr_timer_start(&t, lr_loop_now_ms(o->loop) + timeout_ms + 5000);
    lr_loop_run(o->loop);
    lr_timer_stop(&t);
    return o->outcome;
}

/* Forget the lease (it expires at the store) and free everything. */
static void other_free(struct other *o)
{
    lr_manager_close(o->m, other_closed, o);
    lr_loop_run(o->loop);
    lr_lease_deinit(&o->l);
    lr_manager_free(o->m);
    lr_loop_free(o->loop);
}

/* ---- running hold ---- */

static void uri_of(const struct redis_server *s, char *uri, size_t cap)
{
    snprintf(uri, cap, "redis://127.0.0.1:%d", s->port);
}

/* Start hold in the background, stdout and stderr to @logfile. */
static pid_t spawn_hold(const char *const *argv, const char *logfile)
{
    int fd = open(logfile, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return -1;
    pid_t pid = 0;
    int rc = proc_spawn(argv, NULL, -1, fd, fd, &pid);
    close(fd);
    return rc < 0 ? -1 : pid;
}

static void slurp(const char *path)
{
    out[0] = '\0';
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return;
    ssize_t n = read(fd, out, sizeof(out) - 1);
    close(fd);
    out[n > 0 ? n : 0] = '\0';
}

/* The pid the command wrote to @path (0 if none within 10 s). */
static pid_t await_pid(const char *path)
{
    uint64_t t0 = proc_now_ms();
    while (proc_now_ms() - t0 < 10000) {
        slurp(path);
        if (strchr(out, '\n'))
            return (pid_t)atoi(out);
        proc_sleep_ms(10);
    }
    return 0;
}

/* Wait up to @ms for process @pidfd to exit. Returns proc_now_ms() when it
 * was seen dead, or 0. */
static uint64_t await_death(int pidfd, int ms)
{
    struct pollfd p = {.fd = pidfd, .events = POLLIN};
    int n = poll(&p, 1, ms);
    return n == 1 ? proc_now_ms() : 0;
}

/* Wait up to @ms for hold (@pid) to exit; SIGKILL it after that. Returns
 * its wait status, or -1 when it had to be killed. */
static int await_exit(pid_t pid, int ms)
{
    uint64_t t0 = proc_now_ms();
    int st = 0;
    while (proc_now_ms() - t0 < (uint64_t)ms) {
        if (proc_waitpid(pid, &st, WNOHANG) == pid)
            return st;
        proc_sleep_ms(10);
    }
    proc_kill(&pid, NULL);
    return -1;
}

/* A child that writes its pid to @pidfile first (sh -c SCRIPT). */
#define PIDFILE_SCRIPT(rest) "echo $$ > \"$0\"; " rest

TEST(happy_path)
{
    struct redis_server s;
    CHECK_EQ(redis_server_start(&s, NULL), 0);
    char uri[64];
    uri_of(&s, uri, sizeof(uri));
    /* TTL 1000: renewals every ~333 ms, the command runs 2 s */
    const char *argv[] = {LEASERING_TOOL, "hold", "--backend", uri, "--name", "hp:1", "--ttl",
                          "1000", "--", "sh", "-c",
                          "echo \"name=$LEASERING_NAME fence=$LEASERING_FENCE\"; sleep 2; exit 7",
                          NULL};
    uint64_t t0 = proc_now_ms();
    int rc = run_capture(argv, NULL, out, sizeof(out), 20000);
    uint64_t took = proc_now_ms() - t0;
    printf("---- hold: exit %d after %llu ms ----\n%s", rc, (unsigned long long)took, out);
    CHECK_EQ(rc, 7);
    CHECK(took >= 2000);
    CHECK(strstr(out, "name=hp:1 fence=1\n"));
    /* released: one attempt gets it */
    struct other o;
    CHECK_EQ(other_acquire(&o, uri, "hp:1", 10000, 0), 1);
    CHECK_EQ(lr_lease_fence(&o.l), 2);
    other_free(&o);
    redis_server_destroy(&s);
}

TEST(wait_for_name)
{
    struct redis_server s;
    CHECK_EQ(redis_server_start(&s, NULL), 0);
    char uri[64];
    uri_of(&s, uri, sizeof(uri));
    /* held for 1.5 s and never renewed (this loop does not run meanwhile) */
    struct other o;
    CHECK_EQ(other_acquire(&o, uri, "hw:1", 1500, 0), 1);
    uint64_t held_at = o.at;
    const char *argv[] = {LEASERING_TOOL, "hold", "--backend", uri, "--name", "hw:1", "--wait",
                          "300", "--", "sh", "-c", "echo ran", NULL};
    int rc = run_capture(argv, NULL, out, sizeof(out), 20000);
    printf("---- hold --wait 300: exit %d ----\n%s", rc, out);
    CHECK_EQ(rc, 4);
    CHECK(strstr(out, "leasering hold: hw:1 not acquired within 300 ms"));
    CHECK(!strstr(out, "ran\n"));
    argv[7] = "10000";
    rc = run_capture(argv, NULL, out, sizeof(out), 20000);
    printf("---- hold --wait 10000: exit %d after %llu ms ----\n%s", rc,
           (unsigned long long)(proc_now_ms() - held_at), out);
    CHECK_EQ(rc, 0);
    CHECK(strstr(out, "ran\n"));
    CHECK(proc_now_ms() - held_at >= 1400); /* it did wait for the TTL */
    other_free(&o);
    redis_server_destroy(&s);
}

/* The command's death as seen from outside hold: a thread polls a pidfd of
 * our own and notes the time (CLOCK_MONOTONIC ms) it became readable -- no
 * earlier than the death, so a check against it cannot pass by luck. */
struct death_watch {
    pthread_t thread;
    int pidfd;
    _Atomic uint64_t at; /* 0 until seen dead */
};

static void *death_watch_run(void *arg)
{
    struct death_watch *d = arg;
    struct pollfd p = {.fd = d->pidfd, .events = POLLIN};
    if (poll(&p, 1, 20000) == 1)
        atomic_store(&d->at, proc_now_ms());
    return NULL;
}

TEST(killed_before_valid_until)
{
    struct redis_server s;
    CHECK_EQ(redis_server_start(&s, NULL), 0);
    struct fproxy *px = NULL;
    CHECK_OK(fproxy_start(&px, s.port));
    char via[64], direct[64], log[256], pidfile[256];
    snprintf(via, sizeof(via), "redis://127.0.0.1:%d", fproxy_port(px));
    uri_of(&s, direct, sizeof(direct));
    snprintf(log, sizeof(log), "%s/hold.log", s.dir);
    snprintf(pidfile, sizeof(pidfile), "%s/child.pid", s.dir);
    /* hold reaches the store through the proxy. The command ignores SIGTERM
     * (and so do the sleeps it runs): only the SIGKILL ends it. TTL 1500,
     * grace 500: SIGKILL 250 ms before the end. */
    const char *argv[] = {LEASERING_TOOL, "hold", "--backend", via, "--name", "kv:1", "--ttl",
                          "1500", "--", "sh", "-c",
                          PIDFILE_SCRIPT("trap '' TERM; while :; do sleep 0.05; done"), pidfile,
                          NULL};
    pid_t hold = spawn_hold(argv, log);
    CHECK(hold > 0);
    pid_t child = await_pid(pidfile);
    CHECK(child > 0);
    struct death_watch dw = {.pidfd = (int)syscall(SYS_pidfd_open, child, 0)};
    CHECK(dw.pidfd >= 0);
    CHECK_EQ(await_death(dw.pidfd, 1200), 0); /* outlives a few renewals */
    CHECK_EQ(pthread_create(&dw.thread, NULL, death_watch_run, &dw), 0);
    /* the partition: hold's store stops answering, nothing is refused */
    fproxy_silence(px, true);
    uint64_t silenced = proc_now_ms();
    /* the next holder, straight to redis, tries every ~20 ms from now on */
    struct other o;
    int got = other_acquire(&o, direct, "kv:1", 10000, 10000);
    pthread_join(dw.thread, NULL);
    close(dw.pidfd);
    uint64_t dead = atomic_load(&dw.at);
    int st = await_exit(hold, 10000);
    slurp(log);
    printf("---- hold: status 0x%x; silenced at %llu, child seen dead at %llu, next holder "
           "acquired at %llu ----\n%s",
           st, (unsigned long long)silenced, (unsigned long long)dead,
           (unsigned long long)o.at, out);
    CHECK_EQ(got, 1);
    CHECK(dead > 0);
    /* the rule: dead before anyone else holds the name */
    CHECK(dead < o.at);
    CHECK(st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 3);
    CHECK(strstr(out, "leasering hold: renewals of lease kv:1 failed"));
    CHECK(strstr(out, "then SIGKILL"));
    const char *v = strstr(out, "valid until ");
    CHECK(v);
    uint64_t valid_until = v ? strtoull(v + 12, NULL, 10) : 0;
    /* dead with room to spare: the kill did not wait for the lost callback */
    CHECK(dead + 100 <= valid_until);
    CHECK(valid_until <= o.at);
    other_free(&o);
    fproxy_free(px);
    redis_server_destroy(&s);
}

TEST(parent_killed)
{
    struct redis_server s;
    CHECK_EQ(redis_server_start(&s, NULL), 0);
    char uri[64], log[256], pidfile[256];
    uri_of(&s, uri, sizeof(uri));
    snprintf(log, sizeof(log), "%s/hold.log", s.dir);
    snprintf(pidfile, sizeof(pidfile), "%s/child.pid", s.dir);
    const char *argv[] = {LEASERING_TOOL, "hold", "--backend", uri, "--name", "pk:1", "--ttl",
                          "5000", "--", "sh", "-c", PIDFILE_SCRIPT("exec sleep 100"), pidfile,
                          NULL};
    pid_t hold = spawn_hold(argv, log);
    CHECK(hold > 0);
    pid_t child = await_pid(pidfile);
    CHECK(child > 0);
    int pidfd = (int)syscall(SYS_pidfd_open, child, 0);
    CHECK(pidfd >= 0);
    CHECK_OK(proc_kill(&hold, NULL));
    /* long before the 5 s lease could run out */
    CHECK(await_death(pidfd, 1000) > 0);
    close(pidfd);
    redis_server_destroy(&s);
}

TEST(sigterm_forwarded)
{
    struct redis_server s;
    CHECK_EQ(redis_server_start(&s, NULL), 0);
    char uri[64], log[256], pidfile[256];
    uri_of(&s, uri, sizeof(uri));
    snprintf(log, sizeof(log), "%s/hold.log", s.dir);
    snprintf(pidfile, sizeof(pidfile), "%s/child.pid", s.dir);
    const char *argv[] = {LEASERING_TOOL, "hold", "--backend", uri, "--name", "st:1", "--ttl",
                          "5000", "--", "sh", "-c",
                          PIDFILE_SCRIPT("trap 'exit 5' TERM; while :; do sleep 0.05; done"),
                          pidfile, NULL};
    pid_t hold = spawn_hold(argv, log);
    CHECK(hold > 0);
    CHECK(await_pid(pidfile) > 0);
    CHECK_EQ(kill(hold, SIGTERM), 0);
    int st = await_exit(hold, 5000);
    slurp(log);
    printf("---- hold: status 0x%x ----\n%s", st, out);
    CHECK(st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 5);
    struct other o;
    CHECK_EQ(other_acquire(&o, uri, "st:1", 10000, 0), 1);
    other_free(&o);
    redis_server_destroy(&s);
}

/* hold's options go through the tool's one option table: --opt=value,
 * each missing flag named, the command after "--", help hold. */
TEST(arguments)
{
    const char *bare[] = {LEASERING_TOOL, "hold", NULL};
    CHECK_EQ(run_capture(bare, NULL, out, sizeof(out), 10000), 2);
    CHECK(strstr(out, "leasering hold: --backend is required"));
    CHECK(strstr(out, "leasering hold: --name is required"));
    const char *nocmd[] = {LEASERING_TOOL, "hold", "--backend=mem://a", "--name=x", NULL};
    CHECK_EQ(run_capture(nocmd, NULL, out, sizeof(out), 10000), 2);
    CHECK(strstr(out, "leasering hold: no command"));
    const char *bad[] = {LEASERING_TOOL, "hold", "--backend=mem://a", "--name=x", "--ttl=9x",
                         "--", "true", NULL};
    CHECK_EQ(run_capture(bad, NULL, out, sizeof(out), 10000), 2);
    CHECK(strstr(out, "leasering hold: --ttl needs a whole number"));
    const char *unknown[] = {LEASERING_TOOL, "hold", "--backend=mem://a", "--name=x",
                             "--seconds=1", "--", "true", NULL};
    CHECK_EQ(run_capture(unknown, NULL, out, sizeof(out), 10000), 2);
    CHECK(strstr(out, "leasering hold: unknown option '--seconds'"));
    /* both spellings; options after "--" belong to the command */
    const char *ok[] = {LEASERING_TOOL, "hold", "--backend=mem://a", "--name", "x", "--wait=0",
                        "--ttl=2000", "--grace", "600", "--", "sh", "-c",
                        "echo \"$LEASERING_NAME $1\"; exit 6", "sh", "--name=y", NULL};
    CHECK_EQ(run_capture(ok, NULL, out, sizeof(out), 10000), 6);
    CHECK(strstr(out, "x --name=y\n"));
    const char *help[] = {LEASERING_TOOL, "help", "hold", NULL};
    CHECK_EQ(run_capture(help, NULL, out, sizeof(out), 10000), 0);
    CHECK(strstr(out, "usage: leasering hold --backend URI --name NAME [--ttl MS] [--wait MS] "
                      "[--grace MS]"));
    CHECK(strstr(out, "redis+cluster://"));
    const char *top[] = {LEASERING_TOOL, "help", NULL};
    CHECK_EQ(run_capture(top, NULL, out, sizeof(out), 10000), 0);
    CHECK(strstr(out, "  hold "));
}

TESTS(T(arguments), T(happy_path), T(wait_for_name), T(killed_before_valid_until), T(parent_killed),
      T(sigterm_forwarded))
