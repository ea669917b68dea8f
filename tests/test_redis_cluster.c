/* SPDX-License-Identifier: MIT */
/*
 * test_redis_cluster.c - redis+cluster:// against a real Redis Cluster
 * (issue 11), started by each test with tests/redis_cluster.h: 3 masters on
 * free loopback ports (plus a replica each where a master is killed).
 *
 * - 100,000 leases (20,000 under ASan) acquired, renewed over several
 *   periods with none lost, their keys spread over every master (25-42%
 *   each), then released: no lease key left.
 * - Slots resharded twice (redis-cli --cluster reshard: MIGRATE, clients see
 *   ASK/MOVED) while 20,000 leases are held and a second manager tries to
 *   take the same names all along: none lost, never two holders, and after
 *   the release the second manager's fences exceed the first's.
 * - A master killed with SIGKILL, its replica promoted by the cluster: each
 *   lease is renewed on the promoted node or reported lost no later than its
 *   validity, and the second manager never acquires a name while the first
 *   still believes it holds it.
 * - Every seed unreachable: LR_EUNAVAIL with a text naming them; malformed
 *   URIs and ?mode=session are -EINVAL at create.
 *
 * Two managers on the same names: A holds, B tries. The callbacks below check
 * at every event what the other side believes (lr_lease_remaining_ms > 0 is
 * "I hold it"), as test_sentinel.c does.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>

#include <leasering.h>
#include "harness.h"
#include "proc.h"
#include "recorder.h"
#include "redis_cluster.h"

static struct redis_cluster cl;

/* The lease count of a test: @dflt, or LR_CLUSTER_LEASES from the
 * environment (for a quick look while debugging; never lower in CI). */
static int lease_count(int dflt)
{
    const char *e = getenv("LR_CLUSTER_LEASES");
    int n = e ? atoi(e) : 0;
    return n > 0 ? n : dflt;
}

/* ---- two managers on the same names ---- */

struct side {
    struct lr_lease *ls;
    int n;
    uint64_t *fence;        /* last fence acquired per name */
    uint64_t *valid_before; /* lr_lease_valid_until after the last acquire/renew */
    int acquired, conflicts, other_fail, renewed, jeopardy, lost, released;
    int first_fail;         /* first acquire failure other than a conflict */
    int renewed_late;       /* a renewal accepted after its validity */
    int lost_late;          /* a loss reported after its validity */
};

static struct side sa, sb;
/* Losses are timed only while this is set: outside it the test runs
 * redis-cli with the loop stopped, and a lease that runs out meanwhile is
 * reported at the next pass, late by design (lease.h). */
static bool watching;
static int double_held;   /* a name acquired/renewed while the other side believed it held it */
static int fence_back;    /* an acquisition whose fence did not exceed the last one of its name */
static uint64_t *max_fence;

static uint64_t now_ms(void)
{
    return mono_ns() / 1000000u;
}

/* Which side @l belongs to and its index, or NULL. */
static struct side *side_of(const struct lr_lease *l, int *i)
{
    struct side *s = NULL;
    if (sa.ls && l >= sa.ls && l < sa.ls + sa.n)
        s = &sa;
    else if (sb.ls && l >= sb.ls && l < sb.ls + sb.n)
        s = &sb;
    if (s)
        *i = (int)(l - s->ls);
    return s;
}

static struct lr_lease *other_of(const struct side *s, int i)
{
    const struct side *o = s == &sa ? &sb : &sa;
    return o->ls && i < o->n ? &o->ls[i] : NULL;
}

/* Held (acquired or renewed) now: nobody else may believe it holds the name. */
static void check_alone(struct side *s, int i)
{
    struct lr_lease *o = other_of(s, i);
    if (o && lr_lease_remaining_ms(o) > 0) {
        if (double_held++ < 5)
            fprintf(stderr, "%s: held by both managers (the other has %lld ms left)\n",
                    lr_lease_name(&s->ls[i]), (long long)lr_lease_remaining_ms(o));
    }
}

static void on_acquired(struct lr_lease *l)
{
    int i;
    struct side *s = side_of(l, &i);
    if (!s)
        return;
    s->acquired++;
    uint64_t f = lr_lease_fence(l);
    if (f <= max_fence[i])
        fence_back++;
    max_fence[i] = f;
    s->fence[i] = f;
    s->valid_before[i] = lr_lease_valid_until(l);
    check_alone(s, i);
}

static void on_acquire_failed(struct lr_lease *l, int status)
{
    int i;
    struct side *s = side_of(l, &i);
    if (!s)
        return;
    if (status == LR_ECONFLICT) {
        s->conflicts++;
    } else {
        if (!s->other_fail++)
            s->first_fail = status;
    }
}

static void on_renewed(struct lr_lease *l)
{
    int i;
    struct side *s = side_of(l, &i);
    if (!s)
        return;
    s->renewed++;
    if (now_ms() > s->valid_before[i])
        s->renewed_late++;
    s->valid_before[i] = lr_lease_valid_until(l);
    check_alone(s, i);
}

static void on_jeopardy(struct lr_lease *l, int status)
{
    (void)status;
    int i;
    struct side *s = side_of(l, &i);
    if (s)
        s->jeopardy++;
}

static void on_lost(struct lr_lease *l, int reason)
{
    int i;
    struct side *s = side_of(l, &i);
    if (!s)
        return;
    if (s->lost++ < 3)
        fprintf(stderr, "%s lost: %s\n", lr_lease_name(l), lr_strerror(reason));
    uint64_t t = now_ms();
    if (watching && t > s->valid_before[i] && s->lost_late++ < 5)
        fprintf(stderr, "%s (%s) lost %llu ms after its valid_until (%s); %u renewals, the last "
                "%lld ms ago\n",
                lr_lease_name(l), s == &sa ? "A" : "B",
                (unsigned long long)(t - s->valid_before[i]), lr_strerror(reason),
                lr_lease_stats(l)->renewals, (long long)t - (long long)lr_lease_last_renewed(l));
}

static void on_released(struct lr_lease *l, int status)
{
    (void)status;
    int i;
    struct side *s = side_of(l, &i);
    if (s)
        s->released++;
}

static const struct lr_lease_cbs side_cbs = {
    .acquired = on_acquired,
    .acquire_failed = on_acquire_failed,
    .renewed = on_renewed,
    .jeopardy = on_jeopardy,
    .lost = on_lost,
    .released = on_released,
};

/* Fresh sides of @n names each (B only if @with_b). */
static int sides_setup(int n, bool with_b)
{
    memset(&sa, 0, sizeof(sa));
    memset(&sb, 0, sizeof(sb));
    double_held = fence_back = 0;
    sa.n = sb.n = n;
    sa.ls = calloc((size_t)n, sizeof(*sa.ls));
    sa.fence = calloc((size_t)n, sizeof(uint64_t));
    sa.valid_before = calloc((size_t)n, sizeof(uint64_t));
    max_fence = calloc((size_t)n, sizeof(uint64_t));
    if (with_b) {
        sb.ls = calloc((size_t)n, sizeof(*sb.ls));
        sb.fence = calloc((size_t)n, sizeof(uint64_t));
        sb.valid_before = calloc((size_t)n, sizeof(uint64_t));
    }
    bool ok = sa.ls && sa.fence && sa.valid_before && max_fence &&
              (!with_b || (sb.ls && sb.fence && sb.valid_before));
    return ok ? 0 : -ENOMEM;
}

static void side_free(struct side *s)
{
    if (s->ls)
        for (int i = 0; i < s->n; i++)
            lr_lease_deinit(&s->ls[i]);
    free(s->ls);
    free(s->fence);
    free(s->valid_before);
    memset(s, 0, sizeof(*s));
}

static void sides_free(void)
{
    side_free(&sa);
    side_free(&sb);
    free(max_fence);
    max_fence = NULL;
}

/* Init every lease of @s on @m under names "<stem><i>". */
/* 0, or the TTL side_init gives every odd-numbered lease (on both sides). */
static uint32_t short_ttl;

static int side_init(struct side *s, struct lr_manager *m, const char *stem)
{
    for (int i = 0; i < s->n; i++) {
        char name[32];
        snprintf(name, sizeof(name), "%s%d", stem, i);
        struct lr_lease_opts lo = {.ttl_ms = i % 2 ? short_ttl : 0};
        int rc = lr_lease_init(m, &s->ls[i], name, &lo);
        if (rc < 0)
            return rc;
    }
    return 0;
}

static struct lr_manager *mgr(const char *u, uint32_t ttl, uint32_t cap)
{
    struct lr_manager_opts o = {.ttl_ms = ttl, .cbs = &side_cbs, .max_leases = cap,
                                .margin_ms = 25, .store_error = rec_store_error};
    struct lr_manager *m = NULL;
    int rc = lr_manager_new(&m, loop, u, &o);
    if (rc < 0)
        fprintf(stderr, "lr_manager_new(%s): %s\n", u, lr_strerror(rc));
    return m;
}

/* The cluster's URI with @query appended, in a static buffer. */
static const char *cluster_uri(const char *query)
{
    static char u[600];
    snprintf(u, sizeof(u), "%s%s", cl.uri, query);
    return u;
}

/* Run the loop in short slices until *@count reaches @want, or @ms pass,
 * or (acquiring) every one of @s's acquires has answered one way or the other. */
static void run_until_count(const int *count, int want, uint64_t ms)
{
    uint64_t end = now_ms() + ms;
    const struct side *s = count == &sa.acquired ? &sa : count == &sb.acquired ? &sb : NULL;
    while (*count < want && now_ms() < end &&
           (!s || s->acquired + s->conflicts + s->other_fail < want))
        run_until(0, 50);
}

/* The rival: B tries a window of its idle (or lost) names every 100 ms,
 * going round all of them. */
static struct lr_timer rival_timer;
static int rival_window, rival_next, rival_tries;

static void rival_tick(struct lr_timer *t)
{
    for (int k = 0; k < rival_window; k++) {
        struct lr_lease *l = &sb.ls[rival_next];
        rival_next = (rival_next + 1) % sb.n;
        enum lr_lease_state st = lr_lease_state(l);
        if ((st == LR_LEASE_IDLE || st == LR_LEASE_LOST) && lr_lease_try_acquire(l) == 0)
            rival_tries++;
    }
    lr_timer_start(t, lr_loop_now_ms(t->loop) + 100);
}

/* A 10 ms tick that records the longest gap between its runs: how long the
 * loop itself was held up (told beside late losses). */
static struct lr_timer stall_timer;
static uint64_t stall_last_ns, stall_max_ns, stall_at_ns;

static void stall_tick(struct lr_timer *t)
{
    uint64_t now = mono_ns();
    if (stall_last_ns && now - stall_last_ns > stall_max_ns) {
        stall_max_ns = now - stall_last_ns;
        stall_at_ns = now;
    }
    stall_last_ns = now;
    lr_timer_start(t, lr_loop_now_ms(t->loop) + 10);
}

static void stall_start(void)
{
    stall_last_ns = stall_max_ns = 0;
    lr_timer_init(loop, &stall_timer, stall_tick);
    lr_timer_start(&stall_timer, lr_loop_now_ms(loop));
}

static void rival_start(int window)
{
    rival_window = window < sb.n ? window : sb.n;
    rival_next = rival_tries = 0;
    lr_timer_init(loop, &rival_timer, rival_tick);
    lr_timer_start(&rival_timer, lr_loop_now_ms(loop));
}

/*
 * Managers A and B on the cluster (@query after its URI), @n names each
 * ("n0", "n1"...): A acquires them all, then B tries @window of them every
 * 100 ms and, over the first full round, gets nothing.
 * Returns: 0; -errno / LR_E* from the library; -EPROTO a check failed (said).
 */
static int hold_and_rival(const char *query, uint32_t ttl, int n, int window,
                          struct lr_manager **a, struct lr_manager **b)
{
    int rc = sides_setup(n, true);
    if (rc < 0)
        return rc;
    const char *u = cluster_uri(query);
    if (!(*a = mgr(u, ttl, (uint32_t)n)) || !(*b = mgr(u, ttl, (uint32_t)n)))
        return -EINVAL;
    if ((rc = side_init(&sa, *a, "n")) < 0 || (rc = side_init(&sb, *b, "n")) < 0)
        return rc;
    for (int i = 0; i < n; i++)
        if ((rc = lr_lease_acquire(&sa.ls[i], 30000)) < 0)
            return rc;
    run_until_count(&sa.acquired, n, 60000);
    if (sa.acquired != n) {
        fprintf(stderr, "A acquired %d of %d (%d failed, first %s):\n%s", sa.acquired, n,
                sa.other_fail, lr_strerror(sa.first_fail), rec_errs);
        return -EPROTO;
    }
    rival_start(window);
    uint64_t end = now_ms() + 10000;
    while (rival_tries < n && now_ms() < end)
        run_until(0, 100);
    if (rival_tries < n || sb.acquired) {
        fprintf(stderr, "B: %d tries, %d acquired (0 expected)\n", rival_tries, sb.acquired);
        return -EPROTO;
    }
    return 0;
}

/* ---- what the masters hold ---- */

/* Keys matching @pattern on node @i (a SCAN inside one EVAL), or -1. */
static long count_keys(int i, const char *pattern)
{
    static const char script[] =
        "local n, c = 0, '0' repeat "
        "local r = redis.call('SCAN', c, 'MATCH', ARGV[1], 'COUNT', 1000) "
        "c = r[1] n = n + #r[2] until c == '0' return n";
    const char *const args[] = {"EVAL", script, "0", pattern, NULL};
    char out[128];
    if (redis_cli(&cl.node[i], out, sizeof(out), args) != 0 || out[0] < '0' || out[0] > '9') {
        fprintf(stderr, "counting %s on node %d: %s\n", pattern, i, out);
        return -1;
    }
    return atol(out);
}

/* Lease keys "<prefix>{name}" per live master into @per (indexed like
 * cl.node, 0 for non-masters); returns the sum, or -1. */
static long lease_keys(const char *prefix, long per[RCLUSTER_MAX])
{
    char pattern[64];
    snprintf(pattern, sizeof(pattern), "%s{*}", prefix); /* not "<prefix>{name}:fence" */
    long sum = 0;
    for (int i = 0; i < cl.n; i++) {
        per[i] = 0;
        if (!cl.node[i].pid)
            continue;
        char out[64];
        const char *const role[] = {"ROLE", NULL};
        if (redis_cli(&cl.node[i], out, sizeof(out), role) != 0)
            return -1;
        if (strncmp(out, "master", 6))
            continue;
        if ((per[i] = count_keys(i, pattern)) < 0)
            return -1;
        sum += per[i];
    }
    return sum;
}

/* ---- 1: 100,000 leases over every master ---- */

TEST(hundred_thousand_leases_spread_over_every_master)
{
    rec_setup();
    rec_errs[0] = '\0';
    const int n = lease_count(SANITIZED ? 20000 : 100000);
    CHECK_OK(redis_cluster_start(&cl, 3, 0, NULL));
    CHECK_OK(sides_setup(n, false));
    struct lr_manager *a = mgr(cluster_uri("?prefix=t1:"), 3000, (uint32_t)n);
    CHECK(a);
    CHECK_OK(side_init(&sa, a, "j"));
    uint64_t t0 = now_ms();
    for (int i = 0; i < n; i++)
        CHECK_OK(lr_lease_acquire(&sa.ls[i], 30000));
    run_until_count(&sa.acquired, n, 60000);
    printf("     %d of %d acquired in %llu ms (%d failed, first %s)\n", sa.acquired, n,
           (unsigned long long)(now_ms() - t0), sa.other_fail + sa.conflicts,
           sa.other_fail ? lr_strerror(sa.first_fail) : "-");
    if (sa.acquired < n)
        fprintf(stderr, "store errors:\n%s", rec_errs);
    CHECK_EQ(sa.acquired, n);
    CHECK_EQ(lr_manager_stats(a)->held, n);

    /* hold over several renewal periods (TTL 3 s: a renewal every ~1 s) */
    int renewed0 = sa.renewed;
    run_until(0, 10000);
    printf("     held 10 s: %d renewals, %d jeopardy, %d lost, %.1f keys per renew batch\n",
           sa.renewed - renewed0, sa.jeopardy, sa.lost,
           lr_manager_stats(a)->renew_requests
               ? (double)lr_manager_stats(a)->renew_keys / lr_manager_stats(a)->renew_requests
               : 0.0);
    CHECK_EQ(sa.lost, 0);
    CHECK_EQ(sa.renewed_late, 0);
    CHECK_EQ(lr_manager_stats(a)->held, n);
    CHECK(sa.renewed - renewed0 >= 5 * n); /* ~9 periods; 5 leaves room for a slow machine */

    /* the keys are on every master, evenly */
    long per[RCLUSTER_MAX];
    CHECK_EQ(lease_keys("t1:", per), n);
    for (int i = 0; i < 3; i++) {
        printf("     master %d holds %ld lease keys (%.1f%%)\n", i, per[i], 100.0 * per[i] / n);
        CHECK(per[i] * 100 >= 25L * n);
        CHECK(per[i] * 100 <= 42L * n);
    }

    /* release: every lease key is gone (the fence counters stay) */
    CHECK_EQ(lr_manager_release_all(a), n);
    run_until_count(&sa.released, n, 30000);
    CHECK_EQ(sa.released, n);
    CHECK_EQ(lease_keys("t1:", per), 0);
    CHECK_EQ(sa.lost, 0);
    sides_free();
    close_mgr(a);
    redis_cluster_destroy(&cl);
}

/* ---- 2: resharding under held leases ---- */

/* Run the loop until reshard @pid is done (the rival keeps trying). */
static int run_through_reshard(pid_t pid, uint64_t ms)
{
    uint64_t end = now_ms() + ms;
    while (redis_cluster_reshard_running(pid) && now_ms() < end)
        run_until(0, 100);
    return redis_cluster_reshard_wait(pid, 1000);
}

static void say_since(const char *what, uint64_t t0)
{
    printf("     %s in %llu ms: A %d renewals, %d jeopardy, %d lost; "
           "B %d tries, %d conflicts, %d acquired\n",
           what, (unsigned long long)(now_ms() - t0), sa.renewed, sa.jeopardy, sa.lost,
           rival_tries, sb.conflicts, sb.acquired);
}

TEST(reshard_while_held_loses_nothing)
{
    rec_setup();
    rec_errs[0] = '\0';
    const int n = lease_count(SANITIZED ? 5000 : 20000);
    CHECK_OK(redis_cluster_start(&cl, 3, 0, NULL));
    struct lr_manager *a = NULL, *b = NULL;
    CHECK_OK(hold_and_rival("?prefix=t2:", 3000, n, n / 10, &a, &b)); /* each name ~1/s */

    /* 2000 slots (with their keys) from master 0 to master 1, then 1000
     * from master 2 to master 0, while A renews and B tries */
    uint64_t t0 = now_ms();
    pid_t pid;
    CHECK_OK(redis_cluster_reshard(&cl, 0, 1, 2000, false, &pid));
    CHECK_OK(run_through_reshard(pid, 120000));
    say_since("2000 slots 0 -> 1", t0);
    CHECK_EQ(redis_cluster_master_of(&cl, 0), 1);
    run_until(0, 1000);
    t0 = now_ms();
    CHECK_OK(redis_cluster_reshard(&cl, 2, 0, 1000, false, &pid));
    CHECK_OK(run_through_reshard(pid, 120000));
    say_since("1000 slots 2 -> 0", t0);
    CHECK_EQ(redis_cluster_master_of(&cl, 10923), 0); /* redis-cli moves the lowest first */
    run_until(0, 4000); /* renewals after the move, against the settled map */
    lr_timer_stop(&rival_timer);
    if (sa.lost || sb.other_fail)
        fputs(rec_errs, stderr);
    CHECK_EQ(sa.lost, 0);
    CHECK_EQ(sa.renewed_late, 0);
    CHECK_EQ(lr_manager_stats(a)->held, n);
    CHECK_EQ(double_held, 0);
    CHECK_EQ(sb.acquired, 0);
    CHECK_EQ(sb.other_fail, 0); /* every try was answered: a conflict */
    CHECK(sb.conflicts >= 2 * n);
    long per[RCLUSTER_MAX];
    CHECK_EQ(lease_keys("t2:", per), n);

    /* A lets go; B takes every name, each with a larger fence than A's */
    CHECK_EQ(lr_manager_release_all(a), n);
    run_until_count(&sa.released, n, 30000);
    CHECK_EQ(sa.released, n);
    sb.conflicts = sb.other_fail = 0; /* run_until_count counts the answers from here */
    for (int i = 0; i < n; i++)
        CHECK_OK(lr_lease_acquire(&sb.ls[i], 30000));
    run_until_count(&sb.acquired, n, 60000);
    CHECK_EQ(sb.acquired, n);
    for (int i = 0; i < n; i++)
        CHECK(sb.fence[i] > sa.fence[i]);
    CHECK_EQ(fence_back, 0);
    CHECK_EQ(double_held, 0);
    CHECK_EQ(lr_manager_release_all(b), n);
    run_until_count(&sb.released, n, 30000);
    sides_free();
    close_mgr(a);
    close_mgr(b);
    redis_cluster_destroy(&cl);
}

/* ---- 3: a master killed, its replica promoted ---- */

/* Wait until every replica of master @m has acknowledged all the writes @m
 * had made when we asked (ROLE on @m: "master", offset, then per replica
 * ip, port, acknowledged offset). */
static int replicas_caught_up(int m)
{
    static const char *const role[] = {"ROLE", NULL};
    long long want = -1;
    for (int tries = 0; tries < 250; tries++) {
        char out[1024];
        if (redis_cli(&cl.node[m], out, sizeof(out), role) != 0)
            return -EIO;
        long long off = -1, min_acked = -1;
        int k = 0;
        for (char *save, *line = strtok_r(out, "\n", &save); line;
             line = strtok_r(NULL, "\n", &save), k++) {
            if (k == 1)
                off = atoll(line);
            else if (k >= 4 && (k - 4) % 3 == 0) {
                long long acked = atoll(line);
                if (min_acked < 0 || acked < min_acked)
                    min_acked = acked;
            }
        }
        if (want < 0)
            want = off;
        if (want >= 0 && min_acked >= want)
            return 0;
        proc_sleep_ms(20);
    }
    return -ETIMEDOUT;
}

TEST(master_killed_replica_promoted)
{
    rec_setup();
    rec_errs[0] = '\0';
    const int n = lease_count(SANITIZED ? 600 : 3000);
    int rc = redis_cluster_start(&cl, 3, 1, NULL);
    CHECK_OK(rc);
    /* The failover takes ~2-4 s (redis_cluster.h; 2 s more when the first
     * election fails): at TTL 8 s (even leases) those on the killed master
     * can be renewed on its replica in time; at
     * TTL 1 s (odd leases) they cannot (a node is not even suspected before
     * 1 s of silence), so they are lost, and B takes them once they expire
     * on the promoted replica: the path where two holders would show. */
    struct lr_manager *a = NULL, *b = NULL;
    short_ttl = 1000;
    rc = hold_and_rival("?prefix=t3:", 8000, n, n / 4, &a, &b); /* each name ~2.5/s */
    short_ttl = 0;
    CHECK_OK(rc);

    /* the victim's replica has every lease, then the victim dies; the loop
     * runs on meanwhile (redis_cluster_kill_master would stop it) */
    int victim = redis_cluster_master_of(&cl, 0);
    CHECK(victim >= 0 && victim < 3);
    long per[RCLUSTER_MAX];
    CHECK(lease_keys("t3:", per) == n);
    long on_victim = per[victim];
    CHECK(on_victim > 0);
    /* those redis-cli runs stopped the loop for a while (long under ASan):
     * a TTL 1 s lease may have run out meanwhile, reported late by design
     * (lease.h); let that be told before losses are timed */
    int lost_before = sa.lost;
    run_until(0, 1500);
    CHECK_OK(replicas_caught_up(victim)); /* a few ms: nothing runs out */
    uint64_t reconnects0 = lr_manager_stats(a)->reconnects;
    CHECK_OK(redis_server_kill(&cl.node[victim]));
    uint64_t t_kill = mono_ns();
    /* the loop was stopped for the ROLE checks and the kill: what ran out
     * meanwhile is reported in the first pass, late by design (lease.h);
     * from the second pass on, every loss must come before valid_until */
    run_until(0, 1);
    watching = true;
    stall_start();
    run_until(0, 17000); /* two TTLs: every lease renewed or lost by now */
    lr_timer_stop(&stall_timer);
    watching = false;
    printf("     the loop's longest stall after the kill: %llu ms, ending %llu ms after it\n",
           (unsigned long long)(stall_max_ns / 1000000u),
           (unsigned long long)((stall_at_ns - t_kill) / 1000000u));
    lr_timer_stop(&rival_timer);

    int still = 0, lost = 0;
    for (int i = 0; i < n; i++) {
        enum lr_lease_state st = lr_lease_state(&sa.ls[i]);
        still += st == LR_LEASE_HELD;
        lost += st == LR_LEASE_LOST;
    }
    printf("     after killing master %d (%ld lease keys): A %d jeopardy, %d of %d held, %d lost "
           "(%d late), %d renewed late; B %d tries, %d acquired, %d conflicts, %d other, "
           "%d lost (%d late); A lost %d before the kill; timer lateness max A %llu us, B %llu us\n",
           victim, on_victim, sa.jeopardy, still, n, lost, sa.lost_late, sa.renewed_late,
           rival_tries, sb.acquired, sb.conflicts, sb.other_fail, sb.lost, sb.lost_late,
           lost_before,
           (unsigned long long)lr_manager_stats(a)->timer_lateness_us.max,
           (unsigned long long)lr_manager_stats(b)->timer_lateness_us.max);
    if (getenv("LR_TEST_VERBOSE") || sa.lost_late || double_held)
        fputs(rec_errs, stderr);
    CHECK_EQ(double_held, 0);
    CHECK_EQ(fence_back, 0);
    CHECK_EQ(sa.renewed_late, 0);
    CHECK_EQ(sa.lost_late, 0);
    CHECK_EQ(sb.lost_late, 0);
    CHECK(sa.jeopardy > 0);                 /* the kill was felt... */
    CHECK_EQ(still + lost, n);              /* ...each lease renewed or reported lost */
    CHECK_EQ(sa.lost, lost);
    /* With cluster-require-full-coverage yes (the default) every node
     * answers CLUSTERDOWN from the moment the victim is marked FAIL until
     * its replica is promoted, so leases on every master are at risk, not
     * only the victim's: the short ones die everywhere, and most of the
     * long ones (TTL 8 s) outlive the failover: all of them, unless the
     * failover took most of their validity (a slow machine, an election
     * retried); reported lost then, never late */
    int long_lost = 0;
    for (int i = 0; i < n; i += 2)
        long_lost += lr_lease_state(&sa.ls[i]) == LR_LEASE_LOST;
    printf("     %d of the %d long (TTL 8 s) leases lost\n", long_lost, (n + 1) / 2);
    CHECK(long_lost <= n / 4);
    CHECK(lost > 0);                        /* the short ones died... */
    CHECK(sb.acquired > 0);                 /* ...and B took them, never while A held them */
    CHECK(lr_manager_stats(a)->reconnects > reconnects0 || rec_errs[0]);
    /* the cluster did promote the replica, and it serves the leases */
    CHECK_OK(redis_cluster_wait_ok(&cl, 20000));
    int promoted = redis_cluster_master_of(&cl, 0);
    CHECK(promoted >= 3);
    CHECK(lease_keys("t3:", per) >= still);
    CHECK(per[promoted] > 0);

    CHECK(lr_manager_release_all(a) >= still);
    run_until_count(&sa.released, still, 20000);
    lr_manager_release_all(b);
    run_until(0, 500);
    sides_free();
    close_mgr(a);
    close_mgr(b);
    redis_cluster_destroy(&cl);
}

/* ---- 4, 5: what is refused ---- */

TEST(unknown_seed_and_bad_uris)
{
    rec_setup();
    rec_errs[0] = '\0';
    int p1, p2;
    CHECK_OK(proc_pick_port(&p1));
    CHECK_OK(proc_pick_port(&p2));
    char u[128];
    snprintf(u, sizeof(u), "redis+cluster://127.0.0.1:%d,127.0.0.1:%d", p1, p2);
    struct lr_manager_opts o = {.ttl_ms = 2000, .cbs = &rec_cbs, .margin_ms = 25,
                                .store_error = rec_store_error};
    struct lr_manager *m = NULL;
    int rc = lr_manager_new(&m, loop, u, &o);
    if (rc == 0) {
        CHECK(!strcmp(lr_manager_backend(m), "redis+cluster"));
        struct lr_lease l;
        CHECK_OK(lr_lease_init(m, &l, "x", NULL));
        CHECK_OK(lr_lease_acquire(&l, 1000));
        run_until(EV_ACQFAIL, 4000);
        CHECK_EQ(rec_count(EV_ACQFAIL, &l), 1);
        CHECK_ERR(rec_first(EV_ACQFAIL, &l)->status, LR_EUNAVAIL);
        char text[512];
        CHECK(lr_manager_last_error(m, text, sizeof(text)) < 0);
        printf("     every seed down: %s\n", text);
        /* both seeds were tried, and the text says so */
        char want[32];
        snprintf(want, sizeof(want), "127.0.0.1:%d", p1);
        CHECK(strstr(rec_errs, want) != NULL);
        snprintf(want, sizeof(want), "127.0.0.1:%d", p2);
        CHECK(strstr(rec_errs, want) != NULL);
        lr_lease_deinit(&l);
        close_mgr(m);
    } else {
        CHECK_ERR(rc, LR_EUNAVAIL); /* a client that asks for the map at create */
    }

    struct lr_manager *bad = NULL;
    static const char *const malformed[] = {
        "redis+cluster://",                        /* no seed */
        "redis+cluster://:7000",                   /* no host */
        "redis+cluster://127.0.0.1:99999",         /* port out of range */
        "redis+cluster://127.0.0.1:0",             /* port 0 */
        "redis+cluster://127.0.0.1:70x0",          /* not a number */
        "redis+cluster://127.0.0.1:7000,",         /* an empty seed */
        "redis+cluster://127.0.0.1:7000,,127.0.0.1:7001",
        "redis+cluster://127.0.0.1:7000?bogus=1",  /* unknown parameter */
        NULL,
    };
    int accepted = 0; /* every one is told, not just the first */
    for (int i = 0; malformed[i]; i++) {
        rc = lr_manager_new(&bad, loop, malformed[i], &o);
        if (rc != -EINVAL) {
            fprintf(stderr, "%s: %s, not -EINVAL\n", malformed[i], lr_strerror(rc));
            accepted++;
        }
        if (rc == 0)
            close_mgr(bad);
    }
    CHECK_EQ(accepted, 0);
}

TEST(session_mode_is_refused_on_cluster)
{
    rec_setup();
    struct lr_manager_opts o = {.ttl_ms = 2000, .cbs = &rec_cbs};
    struct lr_manager *bad = NULL;
    CHECK_ERR(lr_manager_new(&bad, loop, "redis+cluster://127.0.0.1:7000?mode=session", &o),
              -EINVAL);
    CHECK_ERR(lr_manager_new(&bad, loop,
                             "redis+cluster://127.0.0.1:7000,127.0.0.1:7001?prefix=p:&mode=session",
                             &o),
              -EINVAL);
    /* the default mode is accepted with the same seeds (no server needed) */
    struct lr_manager *m = NULL;
    CHECK_OK(lr_manager_new(&m, loop, "redis+cluster://127.0.0.1:7000,127.0.0.1:7001?prefix=p:",
                            &o));
    close_mgr(m);
}

TESTS(T(unknown_seed_and_bad_uris), T(session_mode_is_refused_on_cluster),
      T(hundred_thousand_leases_spread_over_every_master), T(reshard_while_held_loses_nothing),
      T(master_killed_replica_promoted))
