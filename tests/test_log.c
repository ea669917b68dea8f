/* SPDX-License-Identifier: MIT */
/*
 * test_log.c - the log (leasering/log.h): lines reach the function set with
 * lr_set_log at their level; a storm of identical lines is one line and,
 * when its window is over, one count line (20,000 lines, 20,000 leases lost
 * on mem:// for the same reason, a storm from four threads at once); more
 * kinds than the table holds still lose no count; the level filter; losing
 * and logging 10,000 leases allocates nothing anywhere in the process; the
 * CLI (bench, hold) writes the lines to stderr as text or, with --log-json,
 * as JSON lines that python3's json module parses back to the exact text
 * (quotes, backslash and a control byte in a lease name).
 * Built again with -DLOG_REDIS (suite redis): against a real redis-server,
 * killed and restarted, the log says connected, connection lost, refused
 * while it is down, and reconnected; its persistence warning (appendonly
 * no) comes at warn.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "alloccount.h"
#include "harness.h"
#include "log_int.h"
#include "proc.h"
#include "recorder.h"
#include <leasering.h>
#ifdef LOG_REDIS
#include "redis_server.h"
#endif

/* ---- a log function that keeps the lines (fixed storage: no allocation) ---- */

#define LINES_MAX 256
static pthread_mutex_t lines_mu = PTHREAD_MUTEX_INITIALIZER;
static char lines[LINES_MAX][LR_LOG_LINE_MAX];
static int line_level[LINES_MAX];
static int nlines; /* every call, also those past LINES_MAX */

static void keep_line(void *arg, int level, const char *msg)
{
    (void)arg;
    pthread_mutex_lock(&lines_mu);
    if (nlines < LINES_MAX) {
        snprintf(lines[nlines], sizeof(lines[0]), "%s", msg);
        line_level[nlines] = level;
    }
    nlines++;
    pthread_mutex_unlock(&lines_mu);
}

static void print_lines(void)
{
    for (int i = 0; i < nlines && i < LINES_MAX; i++)
        printf("     [%s] %s\n", lr_log_level_name(line_level[i]), lines[i]);
    if (nlines > LINES_MAX)
        printf("     ... %d lines in all\n", nlines);
}

/* Lines containing @needle. */
static int count_lines(const char *needle)
{
    int n = 0;
    for (int i = 0; i < nlines && i < LINES_MAX; i++)
        n += strstr(lines[i], needle) != NULL;
    return n;
}

static int level_of(const char *needle)
{
    for (int i = 0; i < nlines && i < LINES_MAX; i++)
        if (strstr(lines[i], needle))
            return line_level[i];
    return -1;
}

static void log_setup(uint32_t window_ms)
{
    lr__log_reset();
    lr__log_set_window_ms(window_ms);
    lr_set_log_level(LR_LOG_INFO);
    lr_set_log(keep_line, NULL);
    nlines = 0;
}

#ifndef LOG_REDIS

static const char *find_line(const char *needle)
{
    for (int i = 0; i < nlines && i < LINES_MAX; i++)
        if (strstr(lines[i], needle))
            return lines[i];
    return NULL;
}

/* ---- leases lost in a storm, on mem:// ---- */

static int lost_goal;
static int lost_seen;

static void stop_at_goal(const struct rec *r)
{
    if (r->ev == EV_LOST && ++lost_seen >= lost_goal)
        lr_loop_stop(loop);
}

static struct lr_lease storm[20000];
static int storm_seq;

/* @n leases without automatic renewal, acquired on a fresh mem store: at
 * their TTL every one is lost (LR_EEXPIRED) within a few milliseconds. */
static struct lr_manager *hold_without_renewal(int n, uint32_t ttl_ms)
{
    char uri[32];
    snprintf(uri, sizeof(uri), "mem://log%d", ++storm_seq);
    struct lr_manager_opts o = {.ttl_ms = ttl_ms, .cbs = &rec_cbs, .max_leases = (uint32_t)n};
    struct lr_manager *m = NULL;
    if (lr_manager_new(&m, loop, uri, &o) < 0)
        return NULL;
    struct lr_lease_opts no_renew = {.no_auto_renew = 1};
    for (int i = 0; i < n; i++) {
        char name[32];
        snprintf(name, sizeof(name), "job-%05d", i);
        if (lr_lease_init(m, &storm[i], name, &no_renew) < 0 ||
            lr_lease_acquire(&storm[i], 5000) < 0)
            return NULL;
    }
    return m;
}

static void drop_storm(struct lr_manager *m, int n)
{
    for (int i = 0; i < n; i++)
        lr_lease_deinit(&storm[i]);
    close_mgr(m);
}

/* ---- tests ---- */

TEST(lines_reach_the_log_function_at_their_level)
{
    log_setup(10000);
    lr__log(LR_LOG_WARN, "redis %s: %s", "127.0.0.1:1", "connect: connection refused");
    lr__log_text(LR_LOG_ERROR, "redis 127.0.0.1:1: auth refused: WRONGPASS");
    lr__log(LR_LOG_DEBUG, "not wanted at the default level");
    print_lines();
    CHECK_EQ(nlines, 2);
    CHECK(!strcmp(lines[0], "redis 127.0.0.1:1: connect: connection refused"));
    CHECK_EQ(line_level[0], LR_LOG_WARN);
    CHECK_EQ(line_level[1], LR_LOG_ERROR);
    lr_set_log_level(LR_LOG_ERROR); /* warnings are now dropped, not counted */
    lr__log(LR_LOG_WARN, "a warning below the minimum");
    lr__log_text(LR_LOG_ERROR, "an error");
    lr_set_log_level(LR_LOG_DEBUG);
    lr__log(LR_LOG_DEBUG, "debug now passes");
    lr_log_flush();
    CHECK_EQ(nlines, 4);
    CHECK(!strcmp(lines[2], "an error"));
    CHECK(!strcmp(lines[3], "debug now passes"));
    CHECK(!strcmp(lr_log_level_name(LR_LOG_INFO), "info"));
    CHECK(!strcmp(lr_log_level_name(LR_LOG_WARN + 5), "warn"));
    CHECK(!strcmp(lr_log_level_name(LR_LOG_ERROR), "error"));
    CHECK(!strcmp(lr_log_level_name(0), "debug"));
    lr_set_log(NULL, NULL); /* nowhere: nothing is called */
    lr__log_text(LR_LOG_ERROR, "to nobody");
    CHECK_EQ(nlines, 4);
}

/* 20,000 identical failures: one line, then one count line (from flush). */
TEST(identical_failures_are_one_line_and_a_count)
{
    log_setup(10000);
    for (int i = 0; i < 20000; i++)
        lr__log(LR_LOG_WARN, "redis 127.0.0.1:%d: connect: connection refused", 7);
    lr__log(LR_LOG_WARN, "redis 127.0.0.1:%d: connect: connection refused", 8);  /* another kind */
    lr__log(LR_LOG_ERROR, "redis 127.0.0.1:%d: connect: connection refused", 7); /* level too */
    CHECK_EQ(nlines, 3);
    lr_log_flush();
    lr_log_flush(); /* nothing more to tell */
    print_lines();
    CHECK_EQ(nlines, 4);
    CHECK(!strcmp(lines[3], "redis 127.0.0.1:7: connect: connection refused (repeated 19999 "
                            "times in the last 1 s)"));
    CHECK_EQ(line_level[3], LR_LOG_WARN);
    /* after the count, the storm goes on in a new window: counted again */
    lr__log(LR_LOG_WARN, "redis 127.0.0.1:%d: connect: connection refused", 7);
    CHECK_EQ(nlines, 4);
    lr_log_flush();
    CHECK_EQ(nlines, 5);
    CHECK(strstr(lines[4], "(repeated 1 time in the last 1 s)"));
}

/* A window over: the next line of the kind goes out again (after the count). */
TEST(a_new_window_lets_the_line_out_again)
{
    log_setup(100);
    for (int i = 0; i < 3; i++)
        lr__log_text(LR_LOG_WARN, "redis x: connection lost: the peer closed the connection");
    CHECK_EQ(nlines, 1);
    usleep(150 * 1000);
    lr__log_text(LR_LOG_WARN, "redis x: connection lost: the peer closed the connection");
    print_lines();
    CHECK_EQ(nlines, 3); /* the count of the old window, then the line */
    CHECK(strstr(lines[1], "(repeated 2 times in the last 1 s)"));
    CHECK(!strcmp(lines[2], lines[0]));
}

/* 20,000 leases lost for one reason: "lease job-NNNNN lost", then (the
 * loop's tick, once the window is over) "19999 more leases lost ...". */
TEST(lease_loss_storm_is_one_line_and_a_count)
{
    rec_setup();
    enum { N = 20000 };
    struct lr_manager *m = hold_without_renewal(N, 300);
    CHECK(m);
    lost_goal = N;
    lost_seen = 0;
    rec_hook = NULL;
    run_until(0, 100); /* acquired */
    CHECK_EQ(rec_count(EV_ACQ, NULL), N);
    log_setup(1000);
    rec_hook = stop_at_goal;
    uint64_t t0 = mono_ns();
    run_until(0, 3000);
    rec_hook = NULL;
    printf("     %d leases lost in %.0f ms\n", rec_count(EV_LOST, NULL),
           (double)(rec_first(EV_LOST, NULL) ? evs[nev - 1].at_ns - rec_first(EV_LOST, NULL)->at_ns
                                             : 0) /
               1e6);
    CHECK_EQ(rec_count(EV_LOST, NULL), N);
    CHECK_EQ(count_lines("lost"), 1); /* not 20,000 */
    CHECK(find_line("lease job-") && strstr(find_line("lease job-"), " lost: LR_EEXPIRED ("));
    CHECK_EQ(level_of("lost"), LR_LOG_WARN);
    /* the count comes from the loop, within the window (1 s) and a tenth */
    while (count_lines("more leases lost") == 0 && mono_ns() - t0 < 3000000000ull)
        run_until(0, 50);
    print_lines();
    CHECK_EQ(nlines, 2);
    CHECK(strstr(lines[1], "19999 more leases lost: LR_EEXPIRED (lease expired locally before a "
                           "renewal succeeded) in the last "));
    CHECK(strstr(lines[1], " s, first: job-"));
    drop_storm(m, N);
}

/* Losing 10,000 leases, each told to the log (one line and one count, the
 * rest counted), allocates nothing: not leasering, not libc. */
TEST(losing_and_logging_10000_leases_allocates_nothing)
{
    rec_setup();
    enum { N = 10000 };
    struct lr_manager *m = hold_without_renewal(N, 300);
    CHECK(m);
    run_until(0, 100);
    CHECK_EQ(rec_count(EV_ACQ, NULL), N);
    log_setup(1000);
    lost_goal = N;
    lost_seen = 0;
    rec_hook = stop_at_goal;
    uint64_t t0 = mono_ns();
    alloccount_begin();
    run_until(0, 3000);
    rec_hook = NULL;
    /* past the window: the loop tells the count */
    while (count_lines("more leases lost") == 0 && mono_ns() - t0 < 3000000000ull)
        run_until(0, 50);
    struct alloc_counts ac = alloccount_end();
    rec_hook = NULL;
    print_lines();
    printf("     %d lost: %llu allocs, %llu frees\n", rec_count(EV_LOST, NULL),
           (unsigned long long)ac.allocs, (unsigned long long)ac.frees);
    CHECK_EQ(rec_count(EV_LOST, NULL), N);
    CHECK_EQ(count_lines("more leases lost"), 1);
    CHECK_EQ(ac.allocs, 0);
    CHECK_EQ(ac.frees, 0);
    drop_storm(m, N);
}

/* More kinds than the table's 64 slots, 200 of them, five lines each: the
 * output stays bounded (a budget of lines per window), and no line is
 * unaccounted for: each is told, or counted in a count line. */
TEST(more_kinds_than_the_table_stay_bounded_and_counted)
{
    log_setup(10000);
    enum { KINDS_USED = 200, EACH = 5 };
    for (int round = 0; round < EACH; round++)
        for (int k = 0; k < KINDS_USED; k++)
            lr__log(LR_LOG_WARN, "kind %d failed", k);
    lr_log_flush();
    long told = 0, over = 0;
    int firsts = 0;
    for (int i = 0; i < nlines && i < LINES_MAX; i++) {
        const char *p = strstr(lines[i], "(repeated ");
        if (p)
            told += strtol(p + 10, NULL, 10);
        else if (strstr(lines[i], " more log lines not shown in the last "))
            over += strtol(lines[i], NULL, 10);
        else
            firsts++;
    }
    printf("     %d lines: %d first lines, %ld repeats told, %ld past the budget; last: %s\n",
           nlines, firsts, told, over, nlines ? lines[nlines - 1] : "");
    CHECK(nlines <= 101);
    CHECK_EQ(firsts + told + over, KINDS_USED * EACH);
    CHECK(over > 0);
}

/* Four threads (as four loops would) in one storm: one line, one count. */
static void *storm_thread(void *arg)
{
    (void)arg;
    for (int i = 0; i < 5000; i++)
        lr__log_lease_lost("job-x", 5, LR_ELOST);
    return NULL;
}

TEST(threads_share_one_limiter)
{
    log_setup(10000);
    pthread_t th[4];
    for (int i = 0; i < 4; i++)
        CHECK_OK(pthread_create(&th[i], NULL, storm_thread, NULL));
    for (int i = 0; i < 4; i++)
        pthread_join(th[i], NULL);
    lr_log_flush();
    print_lines();
    CHECK_EQ(nlines, 2);
    CHECK(!strcmp(lines[0], "lease job-x lost: LR_ELOST (lease lost: the store says it belongs "
                            "to someone else)"));
    CHECK(strstr(lines[1], "19999 more leases lost: LR_ELOST"));
}

#ifndef LEASERING_TOOL
#define LEASERING_TOOL "tools/leasering"
#endif

/* The CLI: leases lost with a name holding '"', '\' and byte 0x01; stderr
 * lines as text, then (--log-json) as JSON lines python3 parses back to the
 * exact text. */
TEST(cli_writes_text_and_json_lines)
{
    static const char script[] =
        "import json, re, sys\n"
        "name = 'q\"b\\\\c\\x01-'\n"
        "text = open(sys.argv[1], encoding='utf-8').read().splitlines()\n"
        "ok = [l for l in text if re.match(r'^\\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\d\\.\\d{3}Z "
        "warn lease ', l)]\n"
        "assert ok, text\n"
        "js = [l for l in open(sys.argv[2], encoding='utf-8').read().splitlines() "
        "if l.startswith('{')]\n"
        "assert js, 'no JSON line'\n"
        "for l in js:\n"
        "    o = json.loads(l)\n"
        "    assert set(o) == {'ts', 'level', 'msg'}, o\n"
        "    assert re.match(r'^\\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\d\\.\\d{3}Z$', o['ts']), "
        "o\n"
        "    assert o['level'] == 'warn', o\n"
        "    print('parsed:', repr(o['msg']))\n"
        "assert any(o['msg'].startswith('lease ' + name) for o in map(json.loads, js)), js\n"
        "print('ok')\n";
    char text_path[] = "/tmp/lr_log_textXXXXXX", json_path[] = "/tmp/lr_log_jsonXXXXXX";
    int tfd = mkstemp(text_path), jfd = mkstemp(json_path);
    CHECK(tfd >= 0 && jfd >= 0);
    const char *prefix = "q\"b\\c\x01-";
    for (int json = 0; json < 2; json++) {
        const char *argv[] = {LEASERING_TOOL,
                              "bench",
                              "--backend",
                              "chaos+mem://cli?fail=1&ops=renew",
                              "--leases",
                              "3",
                              "--ttl",
                              "300",
                              "--seconds",
                              "1",
                              "--prefix",
                              prefix,
                              json ? "--log-json" : NULL,
                              NULL};
        char out[8192];
        int rc = proc_capture(argv, NULL, out, sizeof(out), 30000, json ? jfd : tfd);
        CHECK_EQ(rc, 3); /* leases lost */
    }
    char errs[8192];
    const char *py[] = {"python3", "-c", script, text_path, json_path, NULL};
    int rc = proc_capture(py, NULL, errs, sizeof(errs), 30000, PROC_ERR_CAPTURE);
    printf("%s", errs);
    if (rc == -ENOENT)
        printf("     python3 is missing: apt-get install python3\n");
    unlink(text_path);
    unlink(json_path);
    close(tfd);
    close(jfd);
    CHECK_EQ(rc, 0);
    CHECK(strstr(errs, "ok\n"));
    /* hold logs the same way: a store that refuses connections (port 1) */
    const char *hold[] = {LEASERING_TOOL, "hold", "--backend", "redis://127.0.0.1:1",
                          "--name",       "hl",   "--wait",    "300",
                          "--",           "true", NULL};
    rc = proc_capture(hold, NULL, errs, sizeof(errs), 30000, PROC_ERR_CAPTURE);
    printf("%s", errs);
    CHECK_EQ(rc, 4); /* not acquired */
    CHECK(strstr(errs, "Z warn redis 127.0.0.1:1: connection refused\n"));
}

TESTS(T(lines_reach_the_log_function_at_their_level),
      T(identical_failures_are_one_line_and_a_count), T(a_new_window_lets_the_line_out_again),
      T(lease_loss_storm_is_one_line_and_a_count),
      T(losing_and_logging_10000_leases_allocates_nothing),
      T(more_kinds_than_the_table_stay_bounded_and_counted), T(threads_share_one_limiter),
      T(cli_writes_text_and_json_lines))

#else

/* A redis-server started for the test, a manager on it with @conns
 * connections, and lease @name acquired on it. Returns 0, or why not. */
static int hold_on_redis(struct redis_server *s, struct lr_manager **m, struct lr_lease *l,
                         const char *name, uint32_t conns)
{
    int rc = redis_server_start(s, NULL);
    if (rc < 0)
        return rc;
    char uri[64];
    snprintf(uri, sizeof(uri), "redis://127.0.0.1:%d", s->port);
    struct lr_manager_opts o = {
        .ttl_ms = 10000, .cbs = &rec_cbs, .connections = conns, .request_timeout_ms = 500};
    if ((rc = lr_manager_new(m, loop, uri, &o)) < 0 ||
        (rc = lr_lease_init(*m, l, name, NULL)) < 0 || (rc = lr_lease_acquire(l, 5000)) < 0)
        return rc;
    run_until(EV_ACQ, 5000);
    return rec_count(EV_ACQ, l) == 1 ? 0 : -ETIMEDOUT;
}

/* A real redis-server killed and restarted: connected, connection lost,
 * refused while down, reconnected. The lease rides it out (TTL 10 s). */
TEST(reconnect_logs_down_and_up)
{
    rec_setup();
    log_setup(10000);
    struct redis_server s;
    struct lr_manager *m;
    struct lr_lease l;
    CHECK_OK(hold_on_redis(&s, &m, &l, "rc", 2));
    char up[96];
    snprintf(up, sizeof(up), "redis 127.0.0.1:%d: connected", s.port);
    CHECK_EQ(count_lines(up), 1); /* two connections, one line */
    CHECK_EQ(level_of(up), LR_LOG_INFO);
    CHECK_OK(redis_server_kill(&s));
    run_until(0, 1500); /* lost, then refused on reconnect */
    int down = count_lines(": connection lost: ");
    int refused = count_lines(": connection refused");
    CHECK_OK(redis_server_restart(&s));
    char again[96];
    snprintf(again, sizeof(again), "redis 127.0.0.1:%d: reconnected", s.port);
    uint64_t t0 = mono_ns();
    while (!count_lines(again) && mono_ns() - t0 < 5000000000ull)
        run_until(0, 100);
    print_lines();
    CHECK(down >= 1);
    CHECK_EQ(level_of(": connection lost: "), LR_LOG_WARN);
    CHECK(refused >= 1);
    CHECK_EQ(level_of(": connection refused"), LR_LOG_WARN);
    CHECK_EQ(count_lines(again), 1);
    CHECK_EQ(level_of(again), LR_LOG_INFO);
    CHECK_EQ(rec_count(EV_LOST, &l), 0);
    lr_lease_deinit(&l);
    close_mgr(m);
    redis_server_destroy(&s);
}

/* The harness runs redis-server with --save '' --appendonly no: the store
 * checks warn that a restart loses fence counters, at warn, once. */
TEST(persistence_warning_logs_at_warn)
{
    rec_setup();
    log_setup(10000);
    struct redis_server s;
    struct lr_manager *m;
    struct lr_lease l;
    CHECK_OK(hold_on_redis(&s, &m, &l, "pw", 3));
    lr_log_flush();
    print_lines();
    CHECK_EQ(count_lines("warning: appendonly is no"), 1);
    CHECK_EQ(level_of("warning: appendonly is no"), LR_LOG_WARN);
    CHECK_EQ(count_lines("repeated"), 0); /* told once, not once per connection */
    lr_lease_deinit(&l);
    close_mgr(m);
    redis_server_destroy(&s);
}

TESTS(T(reconnect_logs_down_and_up), T(persistence_warning_logs_at_warn))

#endif
