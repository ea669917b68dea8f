/* SPDX-License-Identifier: MIT */
/*
 * test_session.c - the core's store sessions (backend_int.h "Session
 * leases"), driven by hand over leases acquired from the in-memory store:
 * one session renewal keeps every lease on it (no per-lease renewal, no
 * per-lease work), validity read from the session, every lease lost a guard
 * before the session's valid_until when renewals stop, jeopardy and back,
 * the store saying the session is gone, one name lost by a break report, an
 * answer that came after the stop point, callbacks freeing other leases
 * meanwhile, leases leaving on release / deinit / close, and no allocation.
 */
#include <errno.h>
#include <unistd.h>

#include <leasering.h>
#include "alloccount.h"
#include "harness.h"
#include "lease_int.h"
#include "recorder.h"

#define N 64
#define TTL 600
#define GUARD 20

static struct lr_manager *mgr;
static struct lr_lease leases[N];
static struct lr__session sess;
static int store_seq;

static uint64_t loop_ns(void)
{
    lr__loop_clock_update(loop);
    return loop->now_ns;
}

/* A manager on a fresh mem store with N held leases, all put on sess
 * (renewed once, just now). */
static void setup(void)
{
    rec_setup();
    char uri[32];
    snprintf(uri, sizeof(uri), "mem://s%d", ++store_seq);
    struct lr_manager_opts o = {.ttl_ms = TTL, .cbs = &rec_cbs, .loss_guard_ms = GUARD};
    mgr = NULL;
    CHECK_OK(lr_manager_new(&mgr, loop, uri, &o));
    lr__session_init(&sess, mgr, TTL);
    for (int i = 0; i < N; i++) {
        char name[16];
        snprintf(name, sizeof(name), "n%d", i);
        CHECK_OK(lr_lease_init(mgr, &leases[i], name, NULL));
        CHECK_OK(lr_lease_acquire(&leases[i], 1000));
    }
    while (rec_count(EV_ACQ, NULL) < N)
        run_until(EV_ACQ, 50);
    CHECK(lr__session_renewed(&sess, loop_ns()));
    for (int i = 0; i < N; i++)
        lr__session_add(&sess, &leases[i]);
    CHECK_EQ(sess.leases, N);
    nev = 0;
}

static void teardown(void)
{
    for (int i = 0; i < N; i++)
        lr_lease_deinit(&leases[i]);
    CHECK_EQ(sess.leases, 0);
    lr__session_fini(&sess);
    close_mgr(mgr);
}

static int held_count(void)
{
    int n = 0;
    for (int i = 0; i < N; i++)
        n += lr_lease_state(&leases[i]) == LR_LEASE_HELD;
    return n;
}

/* Run the loop for @ms, renewing the session every @every ms (0: never). */
static void run_renewing(uint64_t ms, uint64_t every)
{
    uint64_t end = lr_loop_now_ms(loop) + ms, next = lr_loop_now_ms(loop) + every;
    while (lr_loop_now_ms(loop) < end) {
        run_until(0, 10);
        if (every && lr_loop_now_ms(loop) >= next) {
            lr__session_renewed(&sess, loop_ns());
            next = lr_loop_now_ms(loop) + every;
        }
    }
}

TEST(one_renewal_keeps_every_lease)
{
    setup();
    uint64_t renewals0 = lr_manager_stats(mgr)->renewals;
    uint64_t reqs0 = lr_manager_stats(mgr)->renew_requests;
    run_renewing(3 * TTL, TTL / 3);
    CHECK_EQ(held_count(), N);
    CHECK_EQ(rec_count(EV_LOST, NULL), 0);
    CHECK_EQ(rec_count(EV_RENEW, NULL), 0); /* a session renewal calls no per-lease callback */
    for (int i = 0; i < N; i++) {
        CHECK_EQ(lr_lease_valid_until(&leases[i]), sess.valid_until);
        CHECK_EQ(lr_lease_last_renewed(&leases[i]), sess.last_renewed);
        CHECK_EQ(lr_lease_stats(&leases[i])->renewals, 0); /* nothing renewed it alone */
    }
    const struct lr_manager_stats *st = lr_manager_stats(mgr);
    uint64_t reqs = st->renew_requests - reqs0;
    CHECK(reqs >= 6 && reqs <= 12);
    CHECK_EQ(st->renewals - renewals0, reqs * N); /* each counts once per lease */
    printf("     %llu session renewals kept %d leases for %d ms\n", (unsigned long long)reqs, N,
           3 * TTL);
    teardown();
}

TEST(no_renewal_loses_every_lease_before_valid_until)
{
    setup();
    uint64_t vu = sess.valid_until;
    run_renewing(TTL + 200, 0);
    CHECK_EQ(rec_count(EV_LOST, NULL), N);
    for (int i = 0; i < N; i++) {
        const struct rec *r = rec_first(EV_LOST, &leases[i]);
        CHECK(r);
        CHECK_ERR(r->status, LR_EEXPIRED);
        int64_t late = (int64_t)r->at_ns - (int64_t)(vu * 1000000u);
        CHECK(late < 0 && late >= -(GUARD + 1) * 1000000);
        CHECK_EQ(lr_lease_state(&leases[i]), LR_LEASE_LOST);
        CHECK_EQ(lr_lease_valid_until(&leases[i]), 0);
    }
    CHECK_EQ(sess.leases, 0);
    teardown();
}

TEST(failure_is_jeopardy_and_a_renewal_ends_it)
{
    setup();
    lr__session_failed(&sess, LR_EUNAVAIL);
    lr__session_failed(&sess, LR_EUNAVAIL); /* a second failure tells nobody again */
    CHECK_EQ(rec_count(EV_JEOP, NULL), N);
    CHECK_ERR(rec_first(EV_JEOP, &leases[0])->status, LR_EUNAVAIL);
    CHECK_EQ(lr_lease_state(&leases[3]), LR_LEASE_JEOPARDY);
    CHECK(lr__session_renewed(&sess, loop_ns()));
    CHECK_EQ(rec_count(EV_RENEW, NULL), N);
    CHECK_EQ(held_count(), N);
    /* jeopardy that runs out: lost as unavailable */
    lr__session_failed(&sess, LR_EUNAVAIL);
    run_renewing(TTL + 200, 0);
    CHECK_EQ(rec_count(EV_LOST, NULL), N);
    CHECK_ERR(rec_first(EV_LOST, &leases[5])->status, LR_EUNAVAIL);
    teardown();
}

TEST(store_says_gone_loses_all_and_a_break_one)
{
    setup();
    CHECK(lr__session_lose_name(&sess, "n7", 2, LR_ELOST));
    CHECK(!lr__session_lose_name(&sess, "n7", 2, LR_ELOST)); /* not on it any more */
    CHECK(!lr__session_lose_name(&sess, "n", 1, LR_ELOST));
    CHECK_EQ(rec_count(EV_LOST, NULL), 1);
    CHECK_ERR(rec_first(EV_LOST, &leases[7])->status, LR_ELOST);
    CHECK_EQ(sess.leases, N - 1);
    lr__session_lost(&sess, LR_ELOST);
    CHECK_EQ(rec_count(EV_LOST, NULL), N);
    CHECK_ERR(rec_first(EV_LOST, &leases[9])->status, LR_ELOST);
    CHECK_EQ(sess.leases, 0);
    CHECK_EQ(sess.valid_until, 0);
    teardown();
}

/* The holder stalled past the stop point and then read a renewal's answer:
 * that renewal keeps nothing (judged on a fresh clock). */
TEST(an_answer_after_the_stop_point_renews_nothing)
{
    setup();
    uint64_t sent = loop_ns();
    usleep((TTL + 50) * 1000); /* the loop does not run: nobody noticed yet */
    CHECK(!lr__session_renewed(&sess, sent));
    CHECK_EQ(rec_count(EV_LOST, NULL), N);
    CHECK_ERR(rec_first(EV_LOST, &leases[0])->status, LR_EEXPIRED);
    teardown();
}

static int freed_by_hook;
static void free_others(const struct rec *r)
{
    if (r->ev != EV_LOST || r->l != &leases[0] || freed_by_hook)
        return;
    freed_by_hook = 1;
    for (int i = 1; i < N; i += 2)
        lr_lease_deinit(&leases[i]); /* leases the session still has to visit */
}

TEST(callbacks_may_deinit_other_leases_of_the_session)
{
    setup();
    freed_by_hook = 0;
    rec_hook = free_others;
    lr__session_lost(&sess, LR_ELOST);
    rec_hook = NULL;
    CHECK_EQ(freed_by_hook, 1);
    CHECK_EQ(rec_count(EV_LOST, NULL), N / 2);
    CHECK_EQ(sess.leases, 0);
    teardown();
}

TEST(release_deinit_and_close_leave_the_session)
{
    setup();
    CHECK_OK(lr_lease_release(&leases[0]));
    run_until(EV_REL, 1000);
    CHECK_EQ(rec_count(EV_REL, &leases[0]), 1);
    CHECK_EQ(sess.leases, N - 1);
    lr_lease_deinit(&leases[1]);
    CHECK_EQ(sess.leases, N - 2);
    /* a released lease acquired again is not on the session until a backend puts it there */
    CHECK_OK(lr_lease_acquire(&leases[0], 1000));
    run_until(EV_ACQ, 1000);
    CHECK_EQ(lr_lease_state(&leases[0]), LR_LEASE_HELD);
    CHECK_EQ(sess.leases, N - 2);
    CHECK(!(leases[0].flags & LR_LF_SESSION));
    /* closing the manager forgets the leases: they leave the session */
    struct lr_manager *m = mgr;
    CHECK_OK(lr_manager_close(m, NULL, NULL));
    CHECK_EQ(sess.leases, 0);
    lr__session_fini(&sess);
    run_until(0, 50);
    for (int i = 0; i < N; i++)
        lr_lease_deinit(&leases[i]);
    lr_manager_free(m);
}

TEST(session_renewals_allocate_nothing)
{
    setup();
    CHECK(alloccount_selftest());
    alloccount_begin();
    for (int i = 0; i < 100; i++)
        lr__session_renewed(&sess, loop_ns());
    lr__session_failed(&sess, -ETIMEDOUT);
    lr__session_renewed(&sess, loop_ns());
    run_renewing(200, 50);
    struct alloc_counts c = alloccount_end();
    CHECK_EQ(c.allocs, 0);
    teardown();
}

TESTS(T(one_renewal_keeps_every_lease), T(no_renewal_loses_every_lease_before_valid_until),
      T(failure_is_jeopardy_and_a_renewal_ends_it), T(store_says_gone_loses_all_and_a_break_one),
      T(an_answer_after_the_stop_point_renews_nothing),
      T(callbacks_may_deinit_other_leases_of_the_session),
      T(release_deinit_and_close_leave_the_session), T(session_renewals_allocate_nothing))
