/* SPDX-License-Identifier: MIT */
/*
 * test_chaos.c - the chaos+ decorator on in-memory stores: fail=1 makes every
 * acquisition fail (the "lost reply" half really applied at the store);
 * random failures and delays never make the core report a renewal or a hold
 * past validity; delays show in the renewal latency; a stall longer than the
 * TTL gives jeopardy, then loss before valid_until; a seed repeats the same
 * sequence of faults; a cancelled request's held result never reaches its
 * lease (freed or closed: clean under ASan); the steady state allocates
 * nothing; malformed chaos parameters are -EINVAL.
 * Built a second time with -DCHAOS_REDIS (suite redis): the decorator over a
 * real redis-server.
 */
#include <errno.h>

#include <leasering.h>
#include "alloccount.h"
#include "chaos.h"
#include "harness.h"
#include "lease_int.h"
#include "recorder.h"
#include "redis_server.h"

static char uri[512];
static int store_seq;

/* A manager on "chaos+<inner>?<query>" (@inner NULL: a fresh mem store). */
static struct lr_manager *chaos_mgr(const char *inner, const char *query,
                                    const struct lr_manager_opts *base)
{
    char fresh[32];
    if (!inner) {
        snprintf(fresh, sizeof(fresh), "mem://c%d", ++store_seq);
        inner = fresh;
    }
    snprintf(uri, sizeof(uri), "chaos+%s%s%s", inner, query ? "?" : "", query ? query : "");
    struct lr_manager_opts o = *base;
    o.cbs = &rec_cbs;
    struct lr_manager *m = NULL;
    int rc = lr_manager_new(&m, loop, uri, &o);
    if (rc < 0)
        fprintf(stderr, "lr_manager_new(%s): %s\n", uri, lr_strerror(rc));
    return m;
}

static void init_leases(struct lr_manager *m, struct lr_lease *ls, int n, const char *prefix,
                        const struct lr_lease_opts *lo)
{
    for (int i = 0; i < n; i++) {
        char name[32];
        snprintf(name, sizeof(name), "%s%d", prefix, i);
        if (lr_lease_init(m, &ls[i], name, lo) < 0)
            abort();
    }
}

static bool ambiguous(int status)
{
    return status == -ETIMEDOUT || status == -ECONNRESET;
}

#ifndef CHAOS_REDIS

/* fail=1: every request fails, half refused (never sent), half with the
 * reply lost after the store applied it, which a plain manager on the same
 * store then sees as a conflict. */
TEST(fail_1_every_acquire_fails)
{
    rec_setup();
    struct lr_manager_opts o = {.ttl_ms = 1000, .request_timeout_ms = 40};
    struct lr_manager *m = chaos_mgr(NULL, "fail=1&seed=11", &o);
    CHECK(m);
    char plain_uri[32];
    snprintf(plain_uri, sizeof(plain_uri), "mem://c%d", store_seq);
    struct lr_manager *plain;
    struct lr_manager_opts po = {.ttl_ms = 1000, .cbs = &rec_cbs};
    CHECK_OK(lr_manager_new(&plain, loop, plain_uri, &po));
    static struct lr_lease ls[16], ps[16];
    init_leases(m, ls, 16, "f", NULL);
    init_leases(plain, ps, 16, "f", NULL);
    for (int i = 0; i < 16; i++)
        CHECK_OK(lr_lease_try_acquire(&ls[i]));
    run_until(0, 200);
    CHECK_EQ(rec_count(EV_ACQFAIL, NULL), 16);
    CHECK_EQ(rec_count(EV_ACQ, NULL), 0);
    int refused = 0, lost_reply = 0;
    for (int i = 0; i < 16; i++) {
        int st = rec_first(EV_ACQFAIL, &ls[i])->status;
        CHECK(st == LR_EUNAVAIL || ambiguous(st));
        if (st == LR_EUNAVAIL)
            refused++;
        else
            lost_reply++;
    }
    const struct lr__chaos_stats *cs = lr__chaos_stats(m);
    printf("     16 try-acquires: %d refused, %d replies lost (%llu reset, %llu timed out)\n",
           refused, lost_reply, (unsigned long long)cs->reset,
           (unsigned long long)cs->timed_out);
    CHECK(refused > 0 && lost_reply > 0);
    CHECK_EQ(cs->refused, (uint64_t)refused);
    CHECK_EQ(cs->reset + cs->timed_out, (uint64_t)lost_reply);
    /* the store applied every acquisition whose reply was lost */
    nev = 0;
    for (int i = 0; i < 16; i++)
        CHECK_OK(lr_lease_try_acquire(&ps[i]));
    run_until(0, 100);
    for (int i = 0; i < 16; i++) {
        bool applied = ambiguous(lr_lease_last_error(&ls[i]));
        if (applied)
            CHECK_ERR(rec_first(EV_ACQFAIL, &ps[i])->status, LR_ECONFLICT);
        else
            CHECK(rec_first(EV_ACQ, &ps[i]) != NULL);
    }
    /* retrying with a timeout does not help either */
    nev = 0;
    CHECK_OK(lr_lease_acquire(&ls[0], 300));
    run_until(EV_ACQFAIL, 1000);
    CHECK_EQ(rec_count(EV_ACQFAIL, &ls[0]), 1);
    CHECK(lr__chaos_stats(m)->refused + lr__chaos_stats(m)->reset +
              lr__chaos_stats(m)->timed_out >
          16 + 1);
    for (int i = 0; i < 16; i++) {
        lr_lease_deinit(&ls[i]);
        lr_lease_deinit(&ps[i]);
    }
    close_mgr(m);
    close_mgr(plain);
}

/* Random failures and random delays: renewals fail, leases go into jeopardy
 * and recover, some may be lost, but the core never reports a renewal or a
 * loss after the validity the lease had. */
#define NVAL 40
static struct lr_lease val_ls[NVAL];
static uint64_t val_until[NVAL];
static int val_late;

static void check_validity(const struct rec *r)
{
    if (r->l < val_ls || r->l >= val_ls + NVAL)
        return;
    size_t i = (size_t)(r->l - val_ls);
    if ((r->ev == EV_RENEW || r->ev == EV_LOST) && r->at_ns >= val_until[i] * 1000000u) {
        fprintf(stderr, "%s %s %.3f ms after valid_until\n", lr_lease_name(r->l),
                r->ev == EV_RENEW ? "renewed" : "lost",
                (double)(r->at_ns - val_until[i] * 1000000u) / 1e6);
        val_late++;
    }
    if (r->ev == EV_ACQ || r->ev == EV_RENEW)
        val_until[i] = lr_lease_valid_until(r->l);
}

TEST(random_failures_never_renew_past_validity)
{
    rec_setup();
    /* The loss guard is what a late loop may eat before lost comes after
     * valid_until. At TTL 300 its default is 3 ms, less than an ASan build
     * on a busy 2-core machine is late now and then (seen: lost 0.2-1 ms
     * after valid_until). 20 ms keeps the check about the schedule -- a lost
     * due at valid_until or later still fails it -- not about machine load. */
    struct lr_manager_opts o = {.ttl_ms = 300, .request_timeout_ms = 60, .loss_guard_ms = 20};
    struct lr_manager *m = chaos_mgr(NULL, "fail=0.3&delay_ms=5&jitter_ms=40&seed=3", &o);
    CHECK(m);
    init_leases(m, val_ls, NVAL, "v", NULL);
    val_late = 0;
    rec_hook = check_validity;
    for (int i = 0; i < NVAL; i++)
        CHECK_OK(lr_lease_acquire(&val_ls[i], 2000));
    run_until(0, 2500);
    rec_hook = NULL;
    const struct lr_manager_stats *st = lr_manager_stats(m);
    const struct lr__chaos_stats *cs = lr__chaos_stats(m);
    int recovered = 0;
    for (int i = 0; i < NVAL; i++) {
        const struct rec *j = rec_first(EV_JEOP, &val_ls[i]);
        for (int k = 0; j && k < nev; k++)
            if (evs[k].l == &val_ls[i] && evs[k].ev == EV_RENEW && evs[k].at_ns > j->at_ns) {
                recovered++;
                break;
            }
    }
    printf("     %llu renewals, %llu failed, %d jeopardy, %d recovered, %llu lost; "
           "injected: %llu refused, %llu reset, %llu timed out, %llu delayed\n",
           (unsigned long long)st->renewals, (unsigned long long)st->renew_failures,
           rec_count(EV_JEOP, NULL), recovered, (unsigned long long)st->lost,
           (unsigned long long)cs->refused, (unsigned long long)cs->reset,
           (unsigned long long)cs->timed_out, (unsigned long long)cs->delayed);
    CHECK_EQ(val_late, 0);
    CHECK(rec_count(EV_ACQ, NULL) >= NVAL / 2);
    CHECK(st->renewals > 100);
    CHECK(st->renew_failures > 10);
    CHECK(recovered > 0);
    CHECK(cs->refused > 0 && cs->reset > 0 && cs->timed_out > 0 && cs->delayed > 0);
    for (int i = 0; i < NVAL; i++)
        lr_lease_deinit(&val_ls[i]);
    close_mgr(m);
}

/* delay_ms=50: every result arrives at least 50 ms after its request. */
TEST(delay_shows_in_latency)
{
    rec_setup();
    struct lr_manager_opts o = {.ttl_ms = 600, .request_timeout_ms = 150};
    struct lr_manager *m = chaos_mgr(NULL, "delay_ms=50", &o);
    CHECK(m);
    static struct lr_lease ls[10];
    init_leases(m, ls, 10, "d", NULL);
    uint64_t t0 = mono_ns();
    for (int i = 0; i < 10; i++)
        CHECK_OK(lr_lease_acquire(&ls[i], 1000));
    run_until(0, 1000);
    for (int i = 0; i < 10; i++) {
        CHECK(rec_first(EV_ACQ, &ls[i]));
        uint64_t took = rec_first(EV_ACQ, &ls[i])->at_ns - t0;
        if (took < 50000000u)
            fprintf(stderr, "acquired after %.3f ms\n", (double)took / 1e6);
        CHECK(took >= 50000000u);
    }
    const struct lr_hist *h = &lr_manager_stats(m)->renew_latency_us;
    printf("     %llu renewals: latency min bucket %llu us, p50 %llu us, max %llu us\n",
           (unsigned long long)h->count, (unsigned long long)lr_hist_quantile(h, 0),
           (unsigned long long)lr_hist_quantile(h, 0.5), (unsigned long long)h->max);
    CHECK(h->count >= 10 * 3);
    CHECK(lr_hist_quantile(h, 0) >= 50000 * 97 / 100); /* the histogram is within 3% */
    CHECK(h->max < 150000);                             /* held, not timed out */
    CHECK_EQ(rec_count(EV_JEOP, NULL), 0);
    CHECK_EQ(rec_count(EV_LOST, NULL), 0);
    CHECK_EQ(lr__chaos_stats(m)->timed_out, 0);
    for (int i = 0; i < 10; i++)
        lr_lease_deinit(&ls[i]);
    close_mgr(m);
}

/* A stall longer than the TTL on renewals only: each renewal times out at
 * the request timeout (jeopardy), retries stall too, and the lease is lost
 * before the valid_until it had when the stall began. */
TEST(stall_longer_than_ttl_loses_before_valid_until)
{
    rec_setup();
    /* a 20 ms guard: "before valid_until" must hold on a loaded machine too
     * (the default 4 ms at this TTL leaves little room for scheduling) */
    struct lr_manager_opts o = {.ttl_ms = 400, .request_timeout_ms = 60, .loss_guard_ms = 20};
    struct lr_manager *m = chaos_mgr(NULL, "stall_ms=1000&ops=renew", &o);
    CHECK(m);
    struct lr_lease l;
    CHECK_OK(lr_lease_init(m, &l, "stall", NULL));
    CHECK_OK(lr_lease_acquire(&l, 1000));
    run_until(EV_ACQ, 1000);
    CHECK_EQ(lr_lease_state(&l), LR_LEASE_HELD);
    uint64_t vu = lr_lease_valid_until(&l);
    run_until(EV_LOST, 2000);
    const struct rec *jeop = rec_first(EV_JEOP, &l), *lost = rec_first(EV_LOST, &l);
    CHECK(jeop && lost);
    CHECK_ERR(jeop->status, -ETIMEDOUT);
    CHECK_ERR(lost->status, LR_EEXPIRED);
    CHECK(jeop->at_ns < lost->at_ns);
    CHECK(lost->at_ns < vu * 1000000u);
    CHECK_EQ(rec_count(EV_RENEW, &l), 0);
    const struct lr__chaos_stats *cs = lr__chaos_stats(m);
    printf("     lost %.3f ms before valid_until; %llu renewals stalled\n",
           (double)(vu * 1000000u - lost->at_ns) / 1e6, (unsigned long long)cs->stalled);
    CHECK(cs->stalled >= 2 && cs->timed_out >= 2);
    lr_lease_deinit(&l);
    close_mgr(m);
}

/* One lease, requests one at a time: the letters of what each renewal met
 * (R renewed, U refused, T timed out, C reset) after acquiring. */
static void fault_sequence(uint64_t seed, char *out, int n)
{
    char q[64];
    snprintf(q, sizeof(q), "fail=0.5&seed=%llu", (unsigned long long)seed);
    struct lr_manager_opts o = {.ttl_ms = 3000, .request_timeout_ms = 20};
    struct lr_manager *m = chaos_mgr(NULL, q, &o);
    struct lr_lease_opts lo = {.no_auto_renew = 1};
    struct lr_lease l;
    out[0] = '\0';
    if (!m || lr_lease_init(m, &l, "seq", &lo) < 0 || lr_lease_acquire(&l, 3000) < 0)
        return;
    run_until(EV_ACQ, 3000);
    int k = 0;
    for (; k < n && lr_lease_state(&l) != LR_LEASE_LOST; k++) {
        const struct lr_lease_stats *s = lr_lease_stats(&l);
        uint32_t before = s->renewals + s->renew_failures;
        lr_lease_renew(&l);
        for (int w = 0; w < 100 && s->renewals + s->renew_failures == before; w++)
            run_until(0, 2);
        int e = lr_lease_last_error(&l);
        out[k] = e == 0 ? 'R' : e == LR_EUNAVAIL ? 'U' : e == -ETIMEDOUT ? 'T'
                 : e == -ECONNRESET              ? 'C'
                                                 : '?';
    }
    out[k] = '\0';
    lr_lease_deinit(&l);
    close_mgr(m);
}

TEST(same_seed_same_sequence)
{
    rec_setup();
    char a[41], b[41], c[41];
    fault_sequence(7, a, 40);
    fault_sequence(7, b, 40);
    fault_sequence(8, c, 40);
    printf("     seed 7: %s\n     seed 7: %s\n     seed 8: %s\n", a, b, c);
    CHECK_EQ(strlen(a), 40);
    CHECK(!strcmp(a, b));
    CHECK(strcmp(a, c));
    CHECK(strchr(a, 'R') && strchr(a, 'U') && strchr(a, 'T') && strchr(a, 'C'));
    CHECK(!strchr(a, '?'));
}

/* Run the loop until the decorator holds one more result; the count before. */
static uint64_t wait_for_a_hold(const struct lr__chaos_stats *cs)
{
    uint64_t before = cs->delayed;
    for (int w = 0; w < 500 && cs->delayed == before; w++)
        run_until(0, 2);
    return before;
}

/* Results held back when the core lets go of the request: release (the held
 * renewal never arrives), free (no use after free), close (nothing left). */
TEST(cancel_drops_held_results)
{
    rec_setup();
    struct lr_manager_opts o = {.ttl_ms = 900, .request_timeout_ms = 200};
    struct lr_manager *m = chaos_mgr(NULL, "delay_ms=120", &o);
    CHECK(m);
    const struct lr__chaos_stats *cs = lr__chaos_stats(m);
    struct lr_lease a;
    CHECK_OK(lr_lease_init(m, &a, "held-a", NULL));
    CHECK_OK(lr_lease_acquire(&a, 1000));
    run_until(EV_ACQ, 1000);
    /* a renewal's result is held: release now */
    uint64_t delayed = wait_for_a_hold(cs);
    CHECK_EQ(cs->delayed, delayed + 1);
    CHECK_OK(lr_lease_release(&a));
    CHECK_EQ(cs->cancelled, 1);
    run_until(EV_REL, 1000);
    run_until(0, 200);
    CHECK_EQ(rec_count(EV_REL, &a), 1);
    CHECK_EQ(rec_count(EV_RENEW, &a), 0);
    /* an acquisition's result is held: free the lease */
    struct lr_lease *b;
    CHECK_OK(lr_lease_new(m, &b, "held-b", NULL));
    CHECK_OK(lr_lease_acquire(b, 1000));
    CHECK(wait_for_a_hold(cs) < cs->delayed);
    nev = 0;
    lr_lease_free(b);
    CHECK_EQ(cs->cancelled, 2);
    run_until(0, 250);
    CHECK_EQ(nev, 0);
    /* a result is held when the manager closes */
    struct lr_lease c;
    CHECK_OK(lr_lease_init(m, &c, "held-c", NULL));
    CHECK_OK(lr_lease_acquire(&c, 1000));
    CHECK(wait_for_a_hold(cs) < cs->delayed);
    CHECK_EQ(cs->delivered, 2); /* a's acquisition and release; nothing of b */
    nev = 0;
    close_mgr(m);
    run_until(0, 200);
    CHECK_EQ(nev, 0);
    lr_lease_deinit(&c);
}

/* Refusals, lost replies, delays and their timers allocate nothing. */
TEST(steady_state_allocates_nothing)
{
    rec_setup();
    struct lr_manager_opts o = {.ttl_ms = 300, .request_timeout_ms = 60, .max_leases = 500};
    struct lr_manager *m = chaos_mgr(NULL, "fail=0.1&delay_ms=2&jitter_ms=20&seed=5", &o);
    CHECK(m);
    static struct lr_lease ls[500];
    init_leases(m, ls, 500, "z", NULL);
    for (int i = 0; i < 500; i++)
        CHECK_OK(lr_lease_acquire(&ls[i], 1000));
    run_until(0, 400);
    const struct lr__chaos_stats *cs = lr__chaos_stats(m);
    uint64_t r0 = lr_manager_stats(m)->renewals, f0 = cs->refused + cs->reset + cs->timed_out;
    alloccount_begin();
    run_until(0, 600);
    struct alloc_counts ac = alloccount_end();
    uint64_t renewals = lr_manager_stats(m)->renewals - r0;
    uint64_t faults = cs->refused + cs->reset + cs->timed_out - f0;
    printf("     %llu renewals, %llu faults: %llu allocs, %llu frees\n",
           (unsigned long long)renewals, (unsigned long long)faults,
           (unsigned long long)ac.allocs, (unsigned long long)ac.frees);
    CHECK(renewals >= 500 * 3);
    CHECK(faults > 0);
    CHECK_EQ(ac.allocs, 0);
    CHECK_EQ(ac.frees, 0);
    for (int i = 0; i < 500; i++)
        lr_lease_deinit(&ls[i]);
    close_mgr(m);
}

TEST(bad_parameters_are_einval)
{
    rec_setup();
    struct lr_manager_opts o = {.ttl_ms = 1000};
    struct lr_manager *m;
    static const char *const bad[] = {
        "chaos+mem://x?fail=2",
        "chaos+mem://x?fail=-0.1",
        "chaos+mem://x?fail=nan",
        "chaos+mem://x?fail=",
        "chaos+mem://x?fail=0.5x",
        "chaos+mem://x?delay_ms=-1",
        "chaos+mem://x?delay_ms=1.5",
        "chaos+mem://x?delay_ms=86400001",
        "chaos+mem://x?stall=0.5",
        "chaos+mem://x?seed=18446744073709551616",
        "chaos+mem://x?ops=renew,bogus",
        "chaos+mem://x?ops=renew,",
        "chaos+mem://x?ops=",
        "chaos+mem://x?fail=0.1&fail=0.2",
        "chaos+mem://x?fail=0.1&stal_ms=5", /* not chaos's, and not mem's */
        "chaos+chaos+mem://x",
        "chaos://x",
        "chaos+redis://127.0.0.1?fail=0.1&bogus=1",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int rc = lr_manager_new(&m, loop, bad[i], &o);
        if (rc != -EINVAL)
            fprintf(stderr, "%s\n", bad[i]);
        CHECK_ERR(rc, -EINVAL);
    }
    CHECK_ERR(lr_manager_new(&m, loop, "chaos+nope://x", &o), -EPROTONOSUPPORT);
    CHECK_ERR(lr_manager_new(&m, loop, "mem+chaos://x", &o), -EPROTONOSUPPORT);
    o.ttl_ms = 5; /* the inner store's limits apply */
    CHECK_ERR(lr_manager_new(&m, loop, "chaos+mem://x", &o), -ERANGE);
    o.ttl_ms = 1000;
    CHECK_OK(lr_manager_new(&m, loop,
                            "chaos+mem://x?fail=0.25&delay_ms=10&jitter_ms=5&stall_ms=500&"
                            "stall=0.1&seed=18446744073709551615&ops=renew,release,change",
                            &o));
    CHECK(!strcmp(lr_manager_backend(m), "chaos"));
    CHECK(lr__chaos_stats(m) != NULL);
    struct lr_lease l;
    struct lr_lease_opts lo = {.ttl_ms = 1};
    CHECK_ERR(lr_lease_init(m, &l, "l", &lo), -ERANGE);
    close_mgr(m);
    CHECK_OK(lr_manager_new(&m, loop, "mem://x", &o));
    CHECK(lr__chaos_stats(m) == NULL);
    close_mgr(m);
}

TESTS(T(bad_parameters_are_einval), T(fail_1_every_acquire_fails),
      T(random_failures_never_renew_past_validity), T(delay_shows_in_latency),
      T(stall_longer_than_ttl_loses_before_valid_until), T(same_seed_same_sequence),
      T(cancel_drops_held_results), T(steady_state_allocates_nothing))

#else /* CHAOS_REDIS */

/* Over a real redis-server: delays show in the renewal latency, and with
 * fail=1 the acquisitions whose replies were lost really hold the key. */
TEST(chaos_over_redis)
{
    rec_setup();
    struct redis_server s;
    CHECK_OK(redis_server_start(&s, NULL));
    char inner[64], plain_uri[96];
    snprintf(inner, sizeof(inner), "redis://127.0.0.1:%d", s.port);
    snprintf(plain_uri, sizeof(plain_uri), "%s?prefix=chaos:", inner);
    struct lr_manager_opts o = {.ttl_ms = 1000, .request_timeout_ms = 150, .margin_ms = 25};
    struct lr_manager *bad = chaos_mgr(inner, "prefix=chaos:&fail=1&seed=9", &o);
    struct lr_manager *slow = chaos_mgr(inner, "prefix=chaos:&delay_ms=30", &o);
    struct lr_manager *plain;
    struct lr_manager_opts po = o;
    po.cbs = &rec_cbs;
    CHECK(slow && bad);
    CHECK_OK(lr_manager_new(&plain, loop, plain_uri, &po));
    static struct lr_lease sl[8], bl[8], pl[8];
    init_leases(bad, bl, 8, "bad", NULL);
    init_leases(plain, pl, 8, "bad", NULL);
    init_leases(slow, sl, 8, "slow", NULL);
    /* fail=1: the acquisitions whose replies were lost hold the key */
    for (int i = 0; i < 8; i++)
        CHECK_OK(lr_lease_try_acquire(&bl[i]));
    run_until(0, 250);
    CHECK_EQ(rec_count(EV_ACQFAIL, NULL), 8);
    int applied = 0;
    for (int i = 0; i < 8; i++) {
        int st = rec_first(EV_ACQFAIL, &bl[i])->status;
        CHECK(st == LR_EUNAVAIL || ambiguous(st));
        applied += ambiguous(st);
    }
    nev = 0;
    for (int i = 0; i < 8; i++)
        CHECK_OK(lr_lease_try_acquire(&pl[i]));
    run_until(0, 200);
    for (int i = 0; i < 8; i++) {
        if (ambiguous(lr_lease_last_error(&bl[i])))
            CHECK_ERR(rec_first(EV_ACQFAIL, &pl[i])->status, LR_ECONFLICT);
        else
            CHECK(rec_first(EV_ACQ, &pl[i]) != NULL);
    }
    printf("     fail=1: %d of 8 acquisitions applied in Redis with the reply lost\n", applied);
    CHECK(applied > 0 && applied < 8);
    /* delay_ms=30: every renewal takes at least that long */
    nev = 0;
    for (int i = 0; i < 8; i++)
        CHECK_OK(lr_lease_acquire(&sl[i], 2000));
    run_until(0, 1000);
    const struct lr_hist *h = &lr_manager_stats(slow)->renew_latency_us;
    printf("     %llu renewals through chaos, latency min bucket %llu us, max %llu us\n",
           (unsigned long long)h->count, (unsigned long long)lr_hist_quantile(h, 0),
           (unsigned long long)h->max);
    CHECK_EQ(rec_count(EV_ACQ, NULL), 8);
    CHECK(h->count >= 8);
    CHECK(lr_hist_quantile(h, 0) >= 30000 * 97 / 100);
    CHECK_EQ(rec_count(EV_JEOP, NULL), 0);
    for (int i = 0; i < 8; i++) {
        lr_lease_deinit(&sl[i]);
        lr_lease_deinit(&bl[i]);
        lr_lease_deinit(&pl[i]);
    }
    close_mgr(slow);
    close_mgr(bad);
    close_mgr(plain);
    redis_server_destroy(&s);
}

TESTS(T(chaos_over_redis))

#endif
