/* SPDX-License-Identifier: MIT */
/*
 * test_redis_session.c - Redis session leases (redis://...?mode=session)
 * against real redis-server processes on free loopback ports: many leases
 * kept by O(1) script calls per renewal period (INFO commandstats), what the
 * keys hold, conflicts naming the holder, a session that expires (its leases
 * lost, the names taken over with larger fences), a break delivered through
 * the holder's session (lost at its next session renewal; nobody acquires
 * before the period and the session's TTL), release and re-acquire by
 * another manager, change, and a renewal that times out (jeopardy, not loss).
 * The steady state allocates nothing.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <time.h>

#include "alloccount.h"
#include "harness.h"
#include "lease_int.h"
#include "recorder.h"
#include "redis_server.h"
#include <leasering.h>

static char uri[256];

static const char *session_uri(const struct redis_server *s, const char *prefix)
{
    snprintf(uri, sizeof(uri), "redis://127.0.0.1:%d?prefix=%s&mode=session", s->port, prefix);
    return uri;
}

static struct lr_manager *mgr(const char *u, uint32_t ttl, uint32_t cap)
{
    struct lr_manager_opts o = {
        .ttl_ms = ttl, .cbs = &rec_cbs, .max_leases = cap ? cap : 4096, .margin_ms = 25};
    struct lr_manager *m = NULL;
    int rc = lr_manager_new(&m, loop, u, &o);
    if (rc < 0)
        fprintf(stderr, "lr_manager_new(%s): %s\n", u, lr_strerror(rc));
    return m;
}

/* A redis-server and two session-mode managers on it, A and B. */
struct two {
    struct redis_server s;
    struct lr_manager *a, *b;
};

static bool two_start(struct two *t, const char *prefix, uint32_t ttl)
{
    rec_setup();
    if (redis_server_start(&t->s, NULL) < 0)
        return false;
    t->a = mgr(session_uri(&t->s, prefix), ttl, 0);
    t->b = mgr(uri, ttl, 0);
    return t->a && t->b;
}

static void two_stop(struct two *t)
{
    close_mgr(t->a);
    close_mgr(t->b);
    redis_server_destroy(&t->s);
}

static int cli(const struct redis_server *s, char *out, size_t cap, const char *a0, const char *a1,
               const char *a2)
{
    const char *args[] = {a0, a1, a2, NULL};
    return redis_cli(s, out, cap, args);
}

/* calls= of "cmdstat_evalsha" in INFO commandstats (0 if none yet). */
static long evalsha_calls(const struct redis_server *s)
{
    static char out[16384];
    if (cli(s, out, sizeof(out), "INFO", "commandstats", NULL) < 0)
        return -1;
    const char *p = strstr(out, "cmdstat_evalsha:calls=");
    return p ? atol(p + strlen("cmdstat_evalsha:calls=")) : 0;
}

/* The one session key under @prefix ("" if none, or more than one). */
static void session_key(const struct redis_server *s, const char *prefix, char *key, size_t cap)
{
    char pat[64], out[1024];
    snprintf(pat, sizeof(pat), "%ssession:*", prefix);
    key[0] = '\0';
    if (cli(s, out, sizeof(out), "KEYS", pat, NULL) < 0)
        return;
    char *nl = strchr(out, '\n');
    if (nl)
        *nl = '\0';
    if (!strchr(out, ':') || strstr(out, ":broken"))
        return;
    snprintf(key, cap, "%.200s", out);
}

static void sleep_ms(unsigned ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static int held_count(struct lr_lease *ls, int n)
{
    int k = 0;
    for (int i = 0; i < n; i++)
        k += lr_lease_state(&ls[i]) == LR_LEASE_HELD;
    return k;
}

static void acquire_all(struct lr_lease *ls, int n)
{
    for (int i = 0; i < n; i++)
        CHECK_OK(lr_lease_acquire(&ls[i], 5000));
    for (int spin = 0; spin < 100 && rec_count(EV_ACQ, NULL) < n; spin++)
        run_until(0, 50);
}

#define MANY 2000
static struct lr_lease many[MANY];

TEST(many_leases_few_calls_and_the_keys)
{
    rec_setup();
    struct redis_server s;
    CHECK_OK(redis_server_start(&s, NULL));
    struct lr_manager *a = mgr(session_uri(&s, "t:"), 1500, 0);
    CHECK(a);
    for (int i = 0; i < MANY; i++) {
        char name[32];
        snprintf(name, sizeof(name), "job-%d", i);
        CHECK_OK(lr_lease_init(a, &many[i], name, NULL));
    }
    acquire_all(many, MANY);
    CHECK_EQ(rec_count(EV_ACQ, NULL), MANY);
    CHECK_EQ(lr_lease_fence(&many[7]), 1);
    /* the keys: a lease hash names the session and has no TTL of its own */
    char key[256], out[256];
    session_key(&s, "t:", key, sizeof(key));
    CHECK(key[0]);
    CHECK_OK(cli(&s, out, sizeof(out), "HGET", "t:{job-7}", "session"));
    CHECK(!strcmp(out, key));
    CHECK_OK(cli(&s, out, sizeof(out), "PTTL", "t:{job-7}", NULL));
    CHECK_EQ(atoll(out), -1);
    CHECK_OK(cli(&s, out, sizeof(out), "PTTL", key, NULL));
    CHECK(atoll(out) > 0 && atoll(out) <= 1500);
    /* hold for 4 TTLs: every lease renewed several times, by ~1 call/period */
    long before = evalsha_calls(&s);
    uint32_t renewals0 = lr_manager_stats(a)->renewals;
    run_until(0, 1000); /* the first renewals served: the steady state */
    alloccount_begin();
    run_until(0, 5000);
    struct alloc_counts ac = alloccount_end();
    long calls = evalsha_calls(&s) - before;
    uint32_t renewals = lr_manager_stats(a)->renewals - renewals0;
    printf("  %d leases, 6 s at TTL 1.5 s: %u renewals from %ld script calls\n", MANY, renewals,
           calls);
    CHECK_EQ(ac.allocs, 0); /* serving renewals from sessions allocates nothing */
    CHECK_EQ(rec_count(EV_LOST, NULL), 0);
    CHECK_EQ(rec_count(EV_JEOP, NULL), 0);
    CHECK_EQ(held_count(many, MANY), MANY);
    CHECK(renewals >= 4u * MANY);
    /* one renewal period is 500 ms: 12 periods; per-lease mode would make
     * MANY/64 = 32 calls a period, ~380 in all */
    CHECK(calls >= 8 && calls <= 24);
    CHECK_OK(cli(&s, out, sizeof(out), "PTTL", key, NULL));
    CHECK(atoll(out) > 0);
    for (int i = 0; i < MANY; i++)
        lr_lease_deinit(&many[i]);
    close_mgr(a);
    redis_server_destroy(&s);
}

TEST(conflict_reports_the_holder_and_its_session_ttl)
{
    struct two t;
    CHECK(two_start(&t, "c:", 3000));
    struct redis_server *sv = &t.s;
    struct lr_manager *a = t.a, *b = t.b;
    struct lr_lease la, lb;
    CHECK_OK(lr_lease_init(a, &la, "x", NULL));
    CHECK_OK(lr_lease_init(b, &lb, "x", NULL));
    CHECK_OK(lr_lease_acquire(&la, 2000));
    run_until(EV_ACQ, 3000);
    CHECK_EQ(lr_lease_state(&la), LR_LEASE_HELD);
    CHECK_OK(lr_lease_try_acquire(&lb));
    run_until(EV_ACQFAIL, 3000);
    CHECK_ERR(rec_first(EV_ACQFAIL, &lb)->status, LR_ECONFLICT);
    char out[256];
    CHECK_OK(cli(sv, out, sizeof(out), "HGET", "c:{x}", "identity"));
    CHECK(!strcmp(out, lr_lease_holder(&lb))); /* the holder, by identity */
    CHECK(!strcmp(out, lr_manager_identity(a)));
    CHECK(lr_lease_holder_ttl_ms(&lb) > 0 && lr_lease_holder_ttl_ms(&lb) <= 3000);
    /* metadata is not for session mode; an unknown mode is refused */
    struct lr_lease lm;
    CHECK_OK(lr_lease_init(a, &lm, "m", NULL));
    CHECK_OK(lr_lease_set_meta(&lm, "k", "v"));
    CHECK_OK(lr_lease_try_acquire(&lm));
    run_until(EV_ACQFAIL, 3000);
    CHECK_ERR(rec_first(EV_ACQFAIL, &lm)->status, -EINVAL);
    struct lr_manager *bad = NULL;
    snprintf(uri, sizeof(uri), "redis://127.0.0.1:%d?mode=sessions", sv->port);
    CHECK_ERR(lr_manager_new(&bad, loop, uri, NULL), -EINVAL);
    lr_lease_deinit(&lm);
    lr_lease_deinit(&la);
    lr_lease_deinit(&lb);
    two_stop(&t);
}

#define FEW 20
static struct lr_lease fa[FEW], fb[FEW];

static void init_few(struct lr_manager *m, struct lr_lease *ls)
{
    for (int i = 0; i < FEW; i++) {
        char name[32];
        snprintf(name, sizeof(name), "n%d", i);
        CHECK_OK(lr_lease_init(m, &ls[i], name, NULL));
    }
}

TEST(an_expired_session_loses_its_leases_and_others_take_over)
{
    struct two t;
    CHECK(two_start(&t, "e:", 1000));
    struct redis_server *sv = &t.s;
    struct lr_manager *a = t.a, *b = t.b;
    init_few(a, fa);
    init_few(b, fb);
    acquire_all(fa, FEW);
    CHECK_EQ(held_count(fa, FEW), FEW);
    /* 1: the loop is not run past the TTL: the session key expires at the
     * store, A's leases are lost locally, B takes the names over */
    sleep_ms(1300);
    for (int i = 0; i < FEW; i++)
        CHECK_OK(lr_lease_acquire(&fb[i], 3000));
    for (int spin = 0; spin < 60 && rec_count(EV_ACQ, NULL) < 2 * FEW; spin++)
        run_until(0, 50);
    CHECK_EQ(rec_count(EV_LOST, NULL), FEW);
    for (int i = 0; i < FEW; i++) {
        CHECK_EQ(lr_lease_state(&fb[i]), LR_LEASE_HELD);
        CHECK_EQ(lr_lease_fence(&fb[i]), 2); /* takeover bumps the fence */
        int st = rec_first(EV_LOST, &fa[i])->status;
        CHECK(st == LR_EEXPIRED || st == LR_ELOST);
        /* the lost callback came before the other holder's acquired */
        CHECK(rec_first(EV_LOST, &fa[i])->at_ns < rec_first(EV_ACQ, &fb[i])->at_ns);
    }
    /* 2: B's session key is deleted under it: the next session renewal
     * finds it gone and every lease of the session is lost (LR_ELOST) */
    char key[256], out[256];
    session_key(sv, "e:", key, sizeof(key));
    CHECK(key[0]);
    CHECK_OK(cli(sv, out, sizeof(out), "DEL", key, NULL));
    int lost0 = rec_count(EV_LOST, NULL);
    for (int spin = 0; spin < 40 && rec_count(EV_LOST, NULL) < lost0 + FEW; spin++)
        run_until(0, 50);
    for (int i = 0; i < FEW; i++) {
        CHECK_EQ(lr_lease_state(&fb[i]), LR_LEASE_LOST);
        CHECK_ERR(lr_lease_last_error(&fb[i]), LR_ELOST);
    }
    /* A gets the names back at once (B's session is gone), fence 3; B's
     * new session (a new key) then holds nothing of the old one */
    for (int i = 0; i < FEW; i++)
        CHECK_OK(lr_lease_acquire(&fa[i], 3000));
    int acq0 = rec_count(EV_ACQ, NULL);
    for (int spin = 0; spin < 40 && rec_count(EV_ACQ, NULL) < acq0 + FEW; spin++)
        run_until(0, 50);
    for (int i = 0; i < FEW; i++)
        CHECK_EQ(lr_lease_fence(&fa[i]), 3);
    run_until(0, 1500);
    CHECK_EQ(held_count(fa, FEW), FEW);
    for (int i = 0; i < FEW; i++) {
        lr_lease_deinit(&fa[i]);
        lr_lease_deinit(&fb[i]);
    }
    two_stop(&t);
}

TEST(a_break_is_delivered_through_the_session)
{
    struct two t;
    CHECK(two_start(&t, "b:", 3000));
    struct redis_server *sv = &t.s;
    struct lr_manager *a = t.a, *b = t.b;
    struct lr_lease la, keep, lb;
    CHECK_OK(lr_lease_init(a, &la, "x", NULL));
    CHECK_OK(lr_lease_init(a, &keep, "y", NULL)); /* same session, not broken */
    CHECK_OK(lr_lease_init(b, &lb, "x", NULL));
    CHECK_OK(lr_lease_acquire(&la, 2000));
    CHECK_OK(lr_lease_acquire(&keep, 2000));
    for (int spin = 0; spin < 40 && rec_count(EV_ACQ, NULL) < 2; spin++)
        run_until(0, 50);
    run_until(0, 1200); /* a renewal or so in */
    CHECK_EQ(lr_lease_state(&la), LR_LEASE_HELD);
    CHECK_OK(lr_lease_break(&lb, 100));
    run_until(EV_BROKEN, 2000);
    CHECK_OK(rec_first(EV_BROKEN, &lb)->status);
    uint64_t broke = rec_first(EV_BROKEN, &lb)->at_ns;
    char out[256];
    CHECK_OK(cli(sv, out, sizeof(out), "PTTL", "b:{x}", NULL));
    long pttl = atol(out);
    CHECK(pttl > 100 && pttl <= 3000); /* the holder session's TTL, not the period */
    /* nobody acquires while the break lasts */
    CHECK_OK(lr_lease_try_acquire(&lb));
    run_until(EV_ACQFAIL, 2000);
    CHECK_ERR(rec_first(EV_ACQFAIL, &lb)->status, LR_ECONFLICT);
    CHECK(!strcmp(lr_lease_holder(&lb), ""));
    /* B keeps trying; A hears of the break at its next session renewal */
    CHECK_OK(lr_lease_acquire(&lb, 8000));
    run_until(EV_LOST, 3000);
    CHECK(rec_first(EV_LOST, &la));
    CHECK_ERR(rec_first(EV_LOST, &la)->status, LR_ELOST);
    for (int spin = 0; spin < 100 && !rec_first(EV_ACQ, &lb); spin++)
        run_until(0, 50);
    CHECK(rec_first(EV_ACQ, &lb));
    CHECK(rec_first(EV_LOST, &la)->at_ns < rec_first(EV_ACQ, &lb)->at_ns);
    CHECK(rec_first(EV_ACQ, &lb)->at_ns - broke >= (uint64_t)(pttl - 50) * 1000000u);
    CHECK_EQ(lr_lease_fence(&lb), 2);
    /* the other lease of A's session is untouched */
    run_until(0, 1000);
    CHECK_EQ(lr_lease_state(&keep), LR_LEASE_HELD);
    CHECK_EQ(rec_count(EV_LOST, &keep), 0);
    lr_lease_deinit(&la);
    lr_lease_deinit(&keep);
    lr_lease_deinit(&lb);
    two_stop(&t);
}

TEST(release_reacquire_and_change)
{
    struct two t;
    CHECK(two_start(&t, "r:", 1500));
    struct redis_server *sv = &t.s;
    struct lr_manager *a = t.a, *b = t.b;
    struct lr_lease la, lb;
    CHECK_OK(lr_lease_init(a, &la, "x", NULL));
    CHECK_OK(lr_lease_init(b, &lb, "x", NULL));
    CHECK_OK(lr_lease_acquire(&la, 2000));
    run_until(EV_ACQ, 3000);
    char before[64], out[256];
    CHECK_OK(cli(sv, before, sizeof(before), "HGET", "r:{x}", "owner"));
    CHECK_OK(lr_lease_change(&la));
    run_until(EV_CHANGED, 3000);
    CHECK_OK(rec_first(EV_CHANGED, &la)->status);
    CHECK_OK(cli(sv, out, sizeof(out), "HGET", "r:{x}", "owner"));
    CHECK(strcmp(out, before) && strlen(out) == 32);
    run_until(0, 1600); /* renewals go on under the new token */
    CHECK_EQ(lr_lease_state(&la), LR_LEASE_HELD);
    CHECK(lr_lease_stats(&la)->renewals >= 2);
    CHECK_OK(lr_lease_release(&la));
    run_until(EV_REL, 3000);
    CHECK_OK(rec_first(EV_REL, &la)->status);
    CHECK_OK(cli(sv, out, sizeof(out), "EXISTS", "r:{x}", NULL));
    CHECK(!strcmp(out, "0"));
    CHECK_OK(lr_lease_try_acquire(&lb));
    run_until(EV_ACQ, 3000);
    CHECK_EQ(lr_lease_state(&lb), LR_LEASE_HELD);
    CHECK_EQ(lr_lease_fence(&lb), 2);
    CHECK_EQ(rec_count(EV_LOST, NULL), 0);
    lr_lease_deinit(&la);
    lr_lease_deinit(&lb);
    two_stop(&t);
}

TEST(a_renewal_that_times_out_is_jeopardy_not_loss)
{
    rec_setup();
    struct redis_server s;
    CHECK_OK(redis_server_start(&s, NULL));
    /* TTL 4 s: request timeout 1 s, a session renewal every ~1.3 s */
    struct lr_manager *a = mgr(session_uri(&s, "j:"), 4000, 0);
    CHECK(a);
    init_few(a, fa);
    acquire_all(fa, FEW);
    CHECK_EQ(held_count(fa, FEW), FEW);
    run_until(0, 500);
    CHECK_OK(redis_server_pause(&s));
    run_until(EV_JEOP, 3000); /* the renewal sent into the pause times out */
    CHECK(rec_count(EV_JEOP, NULL) > 0);
    CHECK_ERR(rec_first(EV_JEOP, NULL)->status, -ETIMEDOUT);
    CHECK_EQ(rec_count(EV_LOST, NULL), 0);
    CHECK_OK(redis_server_resume(&s));
    run_until(0, 2500);
    CHECK_EQ(rec_count(EV_LOST, NULL), 0);
    CHECK_EQ(held_count(fa, FEW), FEW);
    for (int i = 0; i < FEW; i++)
        lr_lease_deinit(&fa[i]);
    close_mgr(a);
    redis_server_destroy(&s);
}

TESTS(T(many_leases_few_calls_and_the_keys), T(conflict_reports_the_holder_and_its_session_ttl),
      T(an_expired_session_loses_its_leases_and_others_take_over),
      T(a_break_is_delivered_through_the_session), T(release_reacquire_and_change),
      T(a_renewal_that_times_out_is_jeopardy_not_loss))
