/* SPDX-License-Identifier: MIT */
/*
 * test_lease.c - the lease core on the in-memory backend: acquisition and
 * conflicts, renewal timing and jitter, retries inside validity, jeopardy then
 * loss a guard interval before valid_until when the store stalls or is
 * unreachable, fresh-clock decisions after the holder itself stalled,
 * recovery, release (idempotent, during acquire), release-all, callback
 * order, fencing across holders, argument errors, a steady state that
 * allocates nothing, and who holds a name: manager identities (default
 * HOST:PID), conflicts naming the holder, lr_manager_inspect.
 */
#include <errno.h>
#include <math.h>
#include <unistd.h>

#include <leasering.h>
#include "alloccount.h"
#include "harness.h"
#include "lease_int.h"
#include "mem.h"
#include "recorder.h"

static char store_uri[64];
static int store_seq;

/* A manager on a fresh mem store (or on @uri). */
static struct lr_manager *new_mgr(const char *uri, uint32_t ttl)
{
    struct lr_manager_opts o = {.ttl_ms = ttl, .cbs = &rec_cbs, .max_leases = 2048};
    struct lr_manager *m = NULL;
    if (!uri) {
        snprintf(store_uri, sizeof(store_uri), "mem://t%d", ++store_seq);
        uri = store_uri;
    }
    return lr_manager_new(&m, loop, uri, &o) == 0 ? m : NULL;
}

/* ---- tests ---- */

TEST(acquire_conflict_and_holder)
{
    rec_setup();
    struct lr_manager *a = new_mgr(NULL, 1000), *b = new_mgr(store_uri, 1000);
    CHECK(a && b);
    struct lr_lease la, lb;
    CHECK_OK(lr_lease_init(a, &la, "job-1", NULL));
    CHECK_OK(lr_lease_init(b, &lb, "job-1", NULL));
    CHECK_EQ(lr_lease_state(&la), LR_LEASE_IDLE);
    CHECK_OK(lr_lease_acquire(&la, 1000));
    CHECK_EQ(rec_count(EV_ACQ, &la), 0); /* never inside the call */
    CHECK_ERR(lr_lease_acquire(&la, 1000), -EBUSY);
    run_until(EV_ACQ, 1000);
    CHECK_EQ(rec_count(EV_ACQ, &la), 1);
    CHECK_EQ(lr_lease_state(&la), LR_LEASE_HELD);
    CHECK_EQ(lr_lease_fence(&la), 1);
    uint64_t vu = lr_lease_valid_until(&la);
    uint64_t now = lr_loop_now_ms(loop);
    CHECK(vu > now && vu <= now + 990);
    CHECK_OK(lr_lease_try_acquire(&lb));
    run_until(EV_ACQFAIL, 1000);
    CHECK_ERR(rec_first(EV_ACQFAIL, &lb)->status, LR_ECONFLICT);
    CHECK(!strcmp(lr_lease_holder(&lb), lr_manager_identity(a))); /* who, for people */
    CHECK(lr_lease_holder_ttl_ms(&lb) > 0 && lr_lease_holder_ttl_ms(&lb) <= 1000);
    CHECK_EQ(lr_lease_state(&lb), LR_LEASE_IDLE);
    CHECK_EQ(lr_lease_stats(&lb)->conflicts, 1);
    /* acquire with a timeout keeps retrying until it gives up */
    nev = 0;
    CHECK_OK(lr_lease_acquire(&lb, 200));
    run_until(EV_ACQFAIL, 2000);
    CHECK_ERR(rec_first(EV_ACQFAIL, &lb)->status, LR_ECONFLICT);
    CHECK(lr_lease_stats(&lb)->conflicts >= 2);
    lr_lease_deinit(&la);
    lr_lease_deinit(&lb);
    close_mgr(a);
    close_mgr(b);
}

/* Names live in the manager's arena, in 8-byte units: a deinitialised
 * lease's name goes back to it and the next name of its size is carved from
 * there, so init/deinit cycles do not grow the arena. */
TEST(lease_names_reuse_the_arena)
{
    rec_setup();
    struct lr_manager *m = new_mgr(NULL, 1000);
    CHECK(m);
    static struct lr_lease ls[2000];
    char name[32];
    for (int i = 0; i < 2000; i++) {
        snprintf(name, sizeof(name), "arena-%05d", i); /* 11 bytes + NUL: 16 */
        CHECK_OK(lr_lease_init(m, &ls[i], name, NULL));
    }
    const char *chunk = m->names.chunk;
    size_t used = m->names.used;
    CHECK_EQ(used, 8 + 2000 * 16);
    for (int round = 1; round <= 3; round++) {
        for (int i = 0; i < 2000; i++)
            lr_lease_deinit(&ls[i]);
        CHECK(!strcmp(lr_lease_name(&ls[7]), ""));
        for (int i = 0; i < 2000; i++) {
            snprintf(name, sizeof(name), "round%d-%04d", round, i);
            CHECK_OK(lr_lease_init(m, &ls[i], name, NULL));
        }
    }
    CHECK(m->names.chunk == chunk);
    CHECK_EQ(m->names.used, used); /* every name came from the free list */
    CHECK(!strcmp(lr_lease_name(&ls[1234]), "round3-1234"));
    /* a longer name is another size class: carved fresh */
    lr_lease_deinit(&ls[0]);
    CHECK_OK(lr_lease_init(m, &ls[0], "a-name-of-twenty-bytes", NULL));
    CHECK_EQ(m->names.used, used + 24);
    CHECK(!strcmp(lr_lease_name(&ls[0]), "a-name-of-twenty-bytes"));
    for (int i = 0; i < 2000; i++)
        lr_lease_deinit(&ls[i]);
    close_mgr(m);
}

TEST(renewals_follow_the_schedule_with_jitter)
{
    rec_setup();
    struct lr_manager *m = new_mgr(NULL, 300);
    CHECK(m);
    static struct lr_lease ls[50];
    for (int i = 0; i < 50; i++) {
        char name[16];
        snprintf(name, sizeof(name), "r%d", i);
        CHECK_OK(lr_lease_init(m, &ls[i], name, NULL));
        CHECK_OK(lr_lease_acquire(&ls[i], 1000));
    }
    run_until(0, 1000);
    /* Each renewal is sent 1/3 TTL (100 ms) +- 10% after the previous send,
     * rounded up onto the renewal grid (the default step at this TTL is
     * 11 ms: see renewals_land_on_the_grid_with_room_for_a_retry), so the
     * gap is 90..110 ms plus less than one step. */
    const double q = m->o.renew_coalesce_ms;
    CHECK(q >= 1 && q <= 20);
    double sum = 0, sum2 = 0;
    int n = 0, bad = 0;
    for (int i = 0; i < 50; i++) {
        CHECK_EQ(lr_lease_state(&ls[i]), LR_LEASE_HELD);
        uint64_t prev = rec_first(EV_ACQ, &ls[i])->at_ns;
        for (int k = 0; k < nev; k++) {
            if (evs[k].l != &ls[i] || evs[k].ev != EV_RENEW)
                continue;
            double gap = (double)(evs[k].at_ns - prev) / 1e6;
            prev = evs[k].at_ns;
            if (gap < 89 || gap > 113 + q) /* 90..110 ms + the grid, a tick and a reply */
                bad++;
            sum += gap;
            sum2 += gap * gap;
            n++;
        }
    }
    double mean = sum / n, sd = sqrt(sum2 / n - mean * mean);
    printf("     %d renewals: mean gap %.1f ms, sd %.1f ms, %d outside 89..%.0f ms "
           "(grid %.0f ms)\n",
           n, mean, sd, bad, 113 + q, q);
    CHECK(n >= 50 * 8);
    CHECK(bad <= n / 50); /* a shared machine may stall once or twice */
    CHECK(sd > 2.0);       /* jitter spreads them */
    CHECK(mean > 95 && mean < 107 + q / 2); /* the round-up adds half a step on average */
    CHECK_EQ(rec_count(EV_JEOP, NULL), 0);
    CHECK_EQ(rec_count(EV_LOST, NULL), 0);
    for (int i = 0; i < 50; i++)
        lr_lease_deinit(&ls[i]);
    close_mgr(m);
}

/* What the renewal-grid hook saw: per lease the previous grant's validity,
 * and over all renewals the time left of it when the renewal was sent. */
static struct lr_lease grid_ls[50];
static uint64_t grid_prev_vu[50];
static uint64_t grid_step_ms, grid_need_ms;
static int grid_n, grid_short, grid_off, grid_sched, grid_sched_off;
static double grid_min_room = 1e9;

static void grid_hook(const struct rec *r)
{
    ptrdiff_t i = r->l - grid_ls;
    if (i < 0 || i >= 50 || (r->ev != EV_ACQ && r->ev != EV_RENEW))
        return;
    if (r->ev == EV_RENEW) {
        double sent_ms = (double)r->l->sent_ns / 1e6;
        double room = (double)grid_prev_vu[i] - sent_ms;
        grid_n++;
        grid_short += room < (double)grid_need_ms;
        if (room < grid_min_room)
            grid_min_room = room;
        /* sent when the grid point's timer fired: on it, or a tick or two late
         * (a loaded machine delays some: counted, not judged) */
        grid_off += (uint64_t)sent_ms % grid_step_ms > 2;
    }
    /* the next renewal is scheduled on a grid point: that is the promise,
     * whatever the machine's load does to when the timer runs */
    if (lr_timer_is_active(&r->l->timer)) {
        grid_sched++;
        grid_sched_off += r->l->timer.deadline % grid_step_ms != 0;
    }
    grid_prev_vu[i] = r->l->valid_until;
}

/* The default grid comes from a wake-up budget (20 ms) where validity has
 * room for it and is finer for short TTLs; renewals land on it, and each is
 * sent with room left for a retry: a renewal that waits out the whole
 * request timeout can be sent once more and wait again before validity ends. */
TEST(renewals_land_on_the_grid_with_room_for_a_retry)
{
    rec_setup();
    static const struct {
        uint32_t ttl, step;
    } defaults[] = {{10, 1}, {100, 3}, {300, 11}, {1000, 20}, {3000, 20}, {30000, 20}};
    for (size_t k = 0; k < sizeof(defaults) / sizeof(defaults[0]); k++) {
        struct lr_manager *d = new_mgr(NULL, defaults[k].ttl);
        CHECK(d);
        CHECK_EQ(d->o.renew_coalesce_ms, defaults[k].step);
        close_mgr(d);
    }
    /* an explicit grid is kept, and still refused past the safety checks */
    struct lr_manager_opts o = {.ttl_ms = 3000, .cbs = &rec_cbs, .renew_coalesce_ms = 5};
    struct lr_manager *m = NULL;
    snprintf(store_uri, sizeof(store_uri), "mem://t%d", ++store_seq);
    CHECK_OK(lr_manager_new(&m, loop, store_uri, &o));
    CHECK_EQ(m->o.renew_coalesce_ms, 5);
    close_mgr(m);
    o.renew_coalesce_ms = 301; /* more than ttl/10 */
    CHECK_ERR(lr_manager_new(&m, loop, store_uri, &o), -EINVAL);

    m = new_mgr(NULL, 300);
    CHECK(m);
    grid_n = grid_short = grid_off = grid_sched = grid_sched_off = 0;
    grid_step_ms = m->o.renew_coalesce_ms;
    grid_need_ms = 2 * (uint64_t)m->o.request_timeout_ms;
    rec_hook = grid_hook;
    for (int i = 0; i < 50; i++) {
        char name[16];
        snprintf(name, sizeof(name), "g%d", i);
        CHECK_OK(lr_lease_init(m, &grid_ls[i], name, NULL));
        CHECK_OK(lr_lease_acquire(&grid_ls[i], 1000));
    }
    run_until(0, 1000);
    rec_hook = NULL;
    printf("     %d renewals on a %" PRIu64 " ms grid: %d of %d scheduled off it, %d sent off "
           "it; validity left at the send %.1f ms at least, %d under %" PRIu64
           " ms (two request timeouts)\n",
           grid_n, grid_step_ms, grid_sched_off, grid_sched, grid_off, grid_min_room, grid_short,
           grid_need_ms);
    CHECK(grid_n >= 50 * 8);
    CHECK(grid_sched >= grid_n);
    CHECK_EQ(grid_sched_off, 0);
    CHECK(grid_off <= grid_n / 10);   /* a loaded machine delays some timers */
    CHECK(grid_short <= grid_n / 50);
    CHECK(grid_min_room > 0);         /* never past validity, stalls included */
    CHECK_EQ(rec_count(EV_JEOP, NULL), 0);
    CHECK_EQ(rec_count(EV_LOST, NULL), 0);
    for (int i = 0; i < 50; i++)
        lr_lease_deinit(&grid_ls[i]);
    close_mgr(m);
}

/* Store unreachable: jeopardy once, retries inside validity, lost before
 * valid_until, at valid_until - loss_guard_ms. */
TEST(unreachable_store_retries_then_loses_before_valid_until)
{
    rec_setup();
    struct lr_manager_opts o = {.ttl_ms = 400, .cbs = &rec_cbs, .loss_guard_ms = 20};
    struct lr_manager *m;
    snprintf(store_uri, sizeof(store_uri), "mem://t%d", ++store_seq);
    CHECK_OK(lr_manager_new(&m, loop, store_uri, &o));
    struct lr_lease l;
    CHECK_OK(lr_lease_init(m, &l, "u", NULL));
    CHECK_OK(lr_lease_acquire(&l, 1000));
    run_until(EV_ACQ, 1000);
    CHECK_OK(lr__mem_set_mode(m, LR_MEM_UNAVAIL));
    uint64_t vu = lr_lease_valid_until(&l);
    run_until(EV_LOST, 2000);
    CHECK_EQ(rec_count(EV_JEOP, &l), 1);
    CHECK_ERR(rec_first(EV_JEOP, &l)->status, LR_EUNAVAIL);
    CHECK_EQ(rec_count(EV_LOST, &l), 1);
    CHECK_ERR(rec_first(EV_LOST, &l)->status, LR_EUNAVAIL);
    CHECK(lr_lease_stats(&l)->renew_failures >= 3); /* it kept retrying */
    int64_t late = (int64_t)rec_first(EV_LOST, &l)->at_ns - (int64_t)(vu * 1000000u);
    printf("     lost %.3f ms after valid_until (guard 20 ms), after %u failed renewals\n",
           late / 1e6, lr_lease_stats(&l)->renew_failures);
    CHECK(late >= -21000000); /* not before the guard point (a tick early at most) */
    CHECK(late < 0);          /* and before validity ends: 20 ms of room for noise */
    CHECK_EQ(lr_lease_state(&l), LR_LEASE_LOST);
    CHECK_EQ(lr_lease_valid_until(&l), 0);
    lr_lease_deinit(&l);
    close_mgr(m);
}

/* Store stalls: renewals time out (ambiguous), jeopardy, lost at the default
 * guard point: max(2 ms, 1% of 400 ms) = 4 ms before valid_until. */
TEST(stalled_store_jeopardy_then_lost_before_valid_until)
{
    rec_setup();
    struct lr_manager_opts o = {.ttl_ms = 400, .cbs = &rec_cbs, .request_timeout_ms = 60};
    struct lr_manager *m;
    snprintf(store_uri, sizeof(store_uri), "mem://t%d", ++store_seq);
    CHECK_OK(lr_manager_new(&m, loop, store_uri, &o));
    struct lr_lease l;
    CHECK_OK(lr_lease_init(m, &l, "s", NULL));
    CHECK_OK(lr_lease_acquire(&l, 1000));
    run_until(EV_ACQ, 1000);
    CHECK_OK(lr__mem_set_mode(m, LR_MEM_STALL));
    uint64_t vu = lr_lease_valid_until(&l);
    run_until(EV_LOST, 2000);
    CHECK_EQ(rec_count(EV_JEOP, &l), 1);
    CHECK_ERR(rec_first(EV_JEOP, &l)->status, -ETIMEDOUT);
    CHECK_ERR(rec_first(EV_LOST, &l)->status, LR_EEXPIRED);
    int64_t late = (int64_t)rec_first(EV_LOST, &l)->at_ns - (int64_t)(vu * 1000000u);
    printf("     lost %.3f ms after valid_until (default guard 4 ms)\n", late / 1e6);
    CHECK(late >= -5000000 && late < 5000000); /* at the guard point, plus noise */
    CHECK(rec_first(EV_JEOP, &l)->at_ns < rec_first(EV_LOST, &l)->at_ns);
    lr_lease_deinit(&l);
    close_mgr(m);
}

/* The holder itself stalls: a callback sleeps 1 s while a renewal reply of
 * another lease waits in the same batch. On the stale clock that reply was
 * accepted ("renewed" 700 ms past valid_until); it must be a loss. */
static struct lr_lease *stalled; /* the lease whose renewed callback slept */
static bool stall_armed;
static void sleep_once(const struct rec *r)
{
    if (r->ev == EV_RENEW && stall_armed) {
        stall_armed = false;
        stalled = r->l;
        struct timespec ts = {1, 0};
        nanosleep(&ts, NULL);
    }
}

TEST(reply_handled_after_a_stall_is_a_loss_not_a_renewal)
{
    rec_setup();
    /* no jitter, a coarse grid: both leases renew in one batch */
    struct lr_manager_opts o = {.ttl_ms = 300, .cbs = &rec_cbs, .renew_jitter = 1e-9,
                                .renew_coalesce_ms = 25};
    struct lr_manager *m;
    snprintf(store_uri, sizeof(store_uri), "mem://t%d", ++store_seq);
    CHECK_OK(lr_manager_new(&m, loop, store_uri, &o));
    struct lr_lease a, b;
    CHECK_OK(lr_lease_init(m, &a, "stall-a", NULL));
    CHECK_OK(lr_lease_init(m, &b, "stall-b", NULL));
    CHECK_OK(lr_lease_acquire(&a, 1000));
    CHECK_OK(lr_lease_acquire(&b, 1000));
    run_until(0, 30);
    CHECK_EQ(rec_count(EV_ACQ, NULL), 2);
    nev = 0;
    /* whichever renews first stalls in its callback (the order of two
     * replies in one batch is the store's); the other is the victim */
    stalled = NULL;
    stall_armed = true;
    rec_hook = sleep_once;
    run_until(EV_LOST, 1500);
    rec_hook = NULL;
    CHECK(stalled == &a || stalled == &b); /* one renewed, and slept in its callback */
    struct lr_lease *first = stalled, *victim = stalled == &a ? &b : &a;
    /* the victim's reply was in the same batch (or its timer came after the
     * stall): never a renewal, a loss */
    CHECK_EQ(rec_count(EV_RENEW, first), 1);
    CHECK_EQ(rec_count(EV_RENEW, victim), 0);
    CHECK_EQ(rec_count(EV_LOST, victim), 1);
    CHECK_ERR(rec_first(EV_LOST, victim)->status, LR_EEXPIRED);
    /* the first's own validity ran out during its callback: its lost comes next pass */
    run_until(0, 50);
    CHECK_EQ(rec_count(EV_LOST, first), 1);
    for (int i = 0; i < nev; i++)
        if (evs[i].ev == EV_RENEW)
            CHECK(evs[i].l == first && evs[i].at_ns < rec_first(EV_LOST, victim)->at_ns);
    lr_lease_deinit(&a);
    lr_lease_deinit(&b);
    close_mgr(m);
}

/* State and remaining time read the clock: host code that runs no pass for
 * longer than the TTL never sees HELD, and the late pass reports every lease
 * lost before anything else. */
TEST(state_and_remaining_read_a_fresh_clock)
{
    rec_setup();
    struct lr_manager_opts o = {.ttl_ms = 200, .cbs = &rec_cbs, .loss_guard_ms = 10};
    struct lr_manager *m;
    snprintf(store_uri, sizeof(store_uri), "mem://t%d", ++store_seq);
    CHECK_OK(lr_manager_new(&m, loop, store_uri, &o));
    struct lr_lease l[3];
    for (int i = 0; i < 3; i++) {
        char name[16];
        snprintf(name, sizeof(name), "fresh-%d", i);
        CHECK_OK(lr_lease_init(m, &l[i], name, NULL));
        CHECK_EQ(lr_lease_remaining_ms(&l[i]), 0); /* idle */
        CHECK_OK(lr_lease_acquire(&l[i], 1000));
    }
    run_until(0, 20);
    CHECK_EQ(rec_count(EV_ACQ, NULL), 3);
    int64_t rem = lr_lease_remaining_ms(&l[0]);
    uint64_t vu = lr_lease_valid_until(&l[0]);
    printf("     remaining %lld ms of a 200 ms lease (valid_until - 10 - now)\n", (long long)rem);
    CHECK(rem > 0 && rem <= 200 - 2 - 10); /* 166 ms unless the machine stalled us */
    CHECK((uint64_t)rem + 10 + mono_ns() / 1000000u <= vu + 1);
    CHECK_EQ(lr_lease_state(&l[0]), LR_LEASE_HELD);
    /* no pass for 300 ms: past every validity */
    struct timespec ts = {0, 300 * 1000000};
    nanosleep(&ts, NULL);
    for (int i = 0; i < 3; i++) {
        CHECK_EQ(lr_lease_state(&l[i]), LR_LEASE_LOST);
        CHECK_EQ(lr_lease_remaining_ms(&l[i]), 0);
    }
    nev = 0;
    run_until(0, 30);
    CHECK(nev >= 3);
    for (int i = 0; i < 3; i++) /* the first three events are the losses */
        CHECK_EQ(evs[i].ev, EV_LOST);
    CHECK_EQ(rec_count(EV_RENEW, NULL), 0);
    for (int i = 0; i < 3; i++)
        lr_lease_deinit(&l[i]);
    close_mgr(m);
}

TEST(recovers_when_the_store_returns_in_time)
{
    rec_setup();
    struct lr_manager_opts o = {.ttl_ms = 600, .cbs = &rec_cbs, .request_timeout_ms = 50};
    struct lr_manager *m;
    snprintf(store_uri, sizeof(store_uri), "mem://t%d", ++store_seq);
    CHECK_OK(lr_manager_new(&m, loop, store_uri, &o));
    struct lr_lease l;
    CHECK_OK(lr_lease_init(m, &l, "rec", NULL));
    CHECK_OK(lr_lease_acquire(&l, 1000));
    run_until(EV_ACQ, 1000);
    CHECK_OK(lr__mem_set_mode(m, LR_MEM_STALL));
    run_until(EV_JEOP, 1000);
    CHECK_EQ(lr_lease_state(&l), LR_LEASE_JEOPARDY);
    CHECK_OK(lr__mem_set_mode(m, LR_MEM_NORMAL));
    nev = 0;
    run_until(EV_RENEW, 1000);
    CHECK_EQ(rec_count(EV_RENEW, &l), 1);
    CHECK_EQ(lr_lease_state(&l), LR_LEASE_HELD);
    run_until(0, 500);
    CHECK_EQ(rec_count(EV_LOST, &l), 0);
    lr_lease_deinit(&l);
    close_mgr(m);
}

TEST(release_is_idempotent_and_callbacks_are_ordered)
{
    rec_setup();
    struct lr_manager *m = new_mgr(NULL, 300), *other = new_mgr(store_uri, 300);
    CHECK(m && other);
    struct lr_lease l, o2;
    CHECK_OK(lr_lease_init(m, &l, "rel", NULL));
    CHECK_OK(lr_lease_init(other, &o2, "rel", NULL));
    CHECK_OK(lr_lease_release(&l)); /* idle: nothing to do */
    CHECK_OK(lr_lease_acquire(&l, 1000));
    run_until(EV_ACQ, 1000);
    run_until(0, 250); /* a couple of renewals */
    CHECK_OK(lr_lease_release(&l));
    CHECK_OK(lr_lease_release(&l));
    CHECK_EQ(lr_lease_state(&l), LR_LEASE_RELEASING);
    run_until(EV_REL, 1000);
    run_until(0, 50);
    CHECK_EQ(rec_count(EV_REL, &l), 1);
    CHECK_OK(rec_first(EV_REL, &l)->status);
    CHECK_EQ(lr_lease_state(&l), LR_LEASE_IDLE);
    CHECK_OK(lr_lease_release(&l));
    /* order: acquired, renewed..., released */
    CHECK_EQ(evs[0].ev, EV_ACQ);
    CHECK(rec_count(EV_RENEW, &l) >= 1);
    for (int i = 1; i < nev - 1; i++)
        CHECK_EQ(evs[i].ev, EV_RENEW);
    CHECK_EQ(evs[nev - 1].ev, EV_REL);
    /* the store is free at once: another manager takes it with a higher fence */
    CHECK_OK(lr_lease_try_acquire(&o2));
    run_until(EV_ACQ, 1000);
    CHECK_EQ(lr_lease_state(&o2), LR_LEASE_HELD);
    CHECK_EQ(lr_lease_fence(&o2), 2);
    /* release while acquiring: the acquisition is given back */
    nev = 0;
    CHECK_OK(lr_lease_acquire(&l, 1000));
    CHECK_OK(lr_lease_release(&l));
    run_until(EV_REL, 1000);
    CHECK_EQ(rec_count(EV_ACQ, &l), 0);
    CHECK_EQ(rec_count(EV_ACQFAIL, &l), 0);
    CHECK_EQ(rec_count(EV_REL, &l), 1);
    CHECK_EQ(lr_lease_state(&l), LR_LEASE_IDLE);
    lr_lease_deinit(&l);
    lr_lease_deinit(&o2);
    close_mgr(m);
    close_mgr(other);
}

TEST(release_all_releases_every_lease)
{
    rec_setup();
    struct lr_manager *m = new_mgr(NULL, 1000), *other = new_mgr(store_uri, 1000);
    CHECK(m && other);
    static struct lr_lease ls[200], os[200];
    for (int i = 0; i < 200; i++) {
        char name[16];
        snprintf(name, sizeof(name), "all%d", i);
        CHECK_OK(lr_lease_init(m, &ls[i], name, NULL));
        CHECK_OK(lr_lease_init(other, &os[i], name, NULL));
        CHECK_OK(lr_lease_acquire(&ls[i], 1000));
    }
    run_until(0, 50);
    CHECK_EQ(rec_count(EV_ACQ, NULL), 200);
    CHECK_EQ(lr_manager_stats(m)->held, 200);
    nev = 0;
    CHECK_EQ(lr_manager_release_all(m), 200);
    run_until(0, 50);
    CHECK_EQ(rec_count(EV_REL, NULL), 200);
    CHECK_EQ(lr_manager_stats(m)->held, 0);
    for (int i = 0; i < 200; i++)
        CHECK_OK(lr_lease_try_acquire(&os[i]));
    nev = 0;
    run_until(0, 50);
    CHECK_EQ(rec_count(EV_ACQ, NULL), 200); /* all free at the store */
    for (int i = 0; i < 200; i++) {
        lr_lease_deinit(&ls[i]);
        lr_lease_deinit(&os[i]);
    }
    close_mgr(m);
    close_mgr(other);
}

/* Without renewal, a lease is lost at valid_until; then another holder gets
 * it, with a strictly greater fence, only after the store's TTL. */
TEST(expiry_then_another_holder_with_a_higher_fence)
{
    rec_setup();
    struct lr_manager *a = new_mgr(NULL, 200), *b = new_mgr(store_uri, 200);
    CHECK(a && b);
    struct lr_lease la, lb;
    struct lr_lease_opts no_renew = {.no_auto_renew = 1};
    CHECK_OK(lr_lease_init(a, &la, "exp", &no_renew));
    CHECK_OK(lr_lease_init(b, &lb, "exp", NULL));
    CHECK_OK(lr_lease_acquire(&la, 1000));
    run_until(EV_ACQ, 1000);
    uint64_t f1 = lr_lease_fence(&la);
    CHECK_OK(lr_lease_acquire(&lb, 2000));
    run_until(EV_ACQ, 2000);
    const struct rec *lost = rec_first(EV_LOST, &la), *got = rec_first(EV_ACQ, &lb);
    CHECK(lost && got);
    CHECK_ERR(lost->status, LR_EEXPIRED);
    CHECK(lost->at_ns < got->at_ns); /* the old holder gave up first */
    CHECK(lr_lease_fence(&lb) > f1);
    lr_lease_deinit(&la);
    lr_lease_deinit(&lb);
    close_mgr(a);
    close_mgr(b);
}

TEST(bad_arguments_are_clear_errors)
{
    rec_setup();
    struct lr_manager *m;
    struct lr_manager_opts o = {.ttl_ms = 5, .max_leases = 2};
    CHECK_ERR(lr_manager_new(&m, loop, "mem://x", &o), -ERANGE);
    o.ttl_ms = 1000;
    CHECK_ERR(lr_manager_new(&m, loop, "nope://x", &o), -EPROTONOSUPPORT);
    CHECK_ERR(lr_manager_new(&m, loop, "not a uri", &o), -EINVAL);
    CHECK_ERR(lr_manager_new(&m, loop, "redis://h:99999", &o), -EINVAL);
    CHECK_ERR(lr_manager_new(&m, loop, "redis://127.0.0.1?bogus=1", &o), -EINVAL);
    CHECK_ERR(lr_manager_new(&m, loop, "redis://user@127.0.0.1", &o), -EINVAL);
    o.renew_fraction = 0.95;
    CHECK_ERR(lr_manager_new(&m, loop, "mem://x", &o), -EINVAL);
    o.renew_fraction = 0;
    o.request_timeout_ms = 900;
    CHECK_ERR(lr_manager_new(&m, loop, "mem://x", &o), -EINVAL);
    o.request_timeout_ms = 0;
    o.loss_guard_ms = 700; /* no room left to renew before the stop point */
    CHECK_ERR(lr_manager_new(&m, loop, "mem://x", &o), -EINVAL);
    o.loss_guard_ms = 0;
    CHECK_OK(lr_manager_new(&m, loop, "mem://x", &o));
    CHECK(!strcmp(lr_manager_backend(m), "mem"));
    struct lr_lease a, b, c;
    char longname[LR_NAME_MAX + 2];
    memset(longname, 'n', sizeof(longname) - 1);
    longname[sizeof(longname) - 1] = '\0';
    CHECK_ERR(lr_lease_init(m, &a, "", NULL), -EINVAL);
    CHECK_ERR(lr_lease_init(m, &a, longname, NULL), -ENAMETOOLONG);
    longname[LR_NAME_MAX] = '\0';
    CHECK_OK(lr_lease_init(m, &a, longname, NULL)); /* exactly the maximum */
    struct lr_lease_opts lo = {.ttl_ms = 1};
    CHECK_ERR(lr_lease_init(m, &b, "b", &lo), -ERANGE);
    CHECK_OK(lr_lease_init(m, &b, "b", NULL));
    CHECK_ERR(lr_lease_init(m, &c, "c", NULL), -ENOSPC); /* capacity 2 */
    CHECK_ERR(lr_lease_renew(&b), -EBUSY);
    CHECK_OK(lr_lease_set_meta(&b, "region", "eu"));
    CHECK_OK(lr_lease_set_meta(&b, "zone", "a"));
    CHECK_OK(lr_lease_set_meta(&b, "region", "us"));
    CHECK(!strcmp(lr_lease_meta(&b, "region"), "us"));
    CHECK_OK(lr_lease_set_meta(&b, "zone", NULL));
    CHECK(lr_lease_meta(&b, "zone") == NULL);
    CHECK_ERR(lr_lease_set_meta(&b, "owner", "x"), -EINVAL);
    CHECK_ERR(lr_lease_set_meta(&b, "", "x"), -EINVAL);
    lr_lease_deinit(&b);
    CHECK_OK(lr_lease_init(m, &c, "c", NULL)); /* capacity is given back */
    lr_lease_deinit(&a);
    lr_lease_deinit(&c);
    close_mgr(m);
}

/* Renewals, replies, rescheduling and callbacks allocate nothing. */
TEST(steady_state_renewals_allocate_nothing)
{
    rec_setup();
    struct lr_manager *m = new_mgr(NULL, 150);
    CHECK(m);
    static struct lr_lease ls[1000];
    for (int i = 0; i < 1000; i++) {
        char name[16];
        snprintf(name, sizeof(name), "z%d", i);
        CHECK_OK(lr_lease_init(m, &ls[i], name, NULL));
        CHECK_OK(lr_lease_acquire(&ls[i], 1000));
    }
    run_until(0, 200); /* acquired, first renewals done */
    uint64_t r0 = lr_manager_stats(m)->renewals;
    alloccount_begin();
    run_until(0, 400);
    struct alloc_counts ac = alloccount_end();
    uint64_t renewals = lr_manager_stats(m)->renewals - r0;
    printf("     %llu renewals of 1000 leases: %llu allocs, %llu frees\n",
           (unsigned long long)renewals, (unsigned long long)ac.allocs,
           (unsigned long long)ac.frees);
    CHECK(renewals >= 1000 * 5);
    CHECK_EQ(ac.allocs, 0);
    CHECK_EQ(ac.frees, 0);
    for (int i = 0; i < 1000; i++)
        lr_lease_deinit(&ls[i]);
    close_mgr(m);
}

/* Break evicts the holder (its next renewal hears LR_ELOST), nobody gets the
 * name before the period ends; change keeps the lease under a new token. */
TEST(break_and_change)
{
    rec_setup();
    struct lr_manager *a = new_mgr(NULL, 900), *b = new_mgr(store_uri, 900);
    CHECK(a && b);
    struct lr_lease la, lb, lc;
    CHECK_OK(lr_lease_init(a, &la, "bc", NULL));
    CHECK_OK(lr_lease_init(b, &lb, "bc", NULL));
    CHECK_OK(lr_lease_init(a, &lc, "ch", NULL));
    CHECK_ERR(lr_lease_change(&lc), -EBUSY); /* not held */
    CHECK_OK(lr_lease_break(&lb, 0));        /* nothing held: fine */
    run_until(EV_BROKEN, 1000);
    CHECK_OK(rec_first(EV_BROKEN, &lb)->status);
    CHECK_OK(lr_lease_acquire(&la, 1000));
    CHECK_OK(lr_lease_acquire(&lc, 1000));
    run_until(0, 100);
    CHECK_EQ(lr_lease_state(&la), LR_LEASE_HELD);
    CHECK_ERR(lr_lease_break(&la, 100), -EBUSY);    /* the holder itself: release instead */
    CHECK_ERR(lr_lease_break(&lb, 61000), -ERANGE);
    uint64_t f1 = lr_lease_fence(&la);
    nev = 0;
    uint64_t t0 = mono_ns();
    CHECK_OK(lr_lease_break(&lb, 400));
    run_until(EV_BROKEN, 1000);
    CHECK_OK(rec_first(EV_BROKEN, &lb)->status);
    CHECK_OK(lr_lease_try_acquire(&lb)); /* inside the break period: refused */
    run_until(EV_ACQFAIL, 1000);
    CHECK_ERR(rec_first(EV_ACQFAIL, &lb)->status, LR_ECONFLICT);
    run_until(EV_LOST, 1000); /* the holder's next renewal is refused */
    CHECK_ERR(rec_first(EV_LOST, &la)->status, LR_ELOST);
    CHECK_OK(lr_lease_acquire(&lb, 2000));
    run_until(EV_ACQ, 2000);
    CHECK(rec_first(EV_ACQ, &lb) != NULL); /* a clean failure, not a NULL dereference */
    CHECK(rec_first(EV_ACQ, &lb)->at_ns - t0 >= 400000000ull); /* not before the period */
    CHECK(lr_lease_fence(&lb) > f1);
    /* change: lc keeps renewing under its new token */
    nev = 0;
    CHECK_OK(lr_lease_change(&lc));
    CHECK_ERR(lr_lease_change(&lc), -EBUSY); /* one at a time */
    run_until(EV_CHANGED, 1000);
    CHECK_OK(rec_first(EV_CHANGED, &lc)->status);
    run_until(0, 800);
    CHECK(rec_count(EV_RENEW, &lc) >= 2);
    CHECK_EQ(rec_count(EV_LOST, &lc), 0);
    CHECK_EQ(lr_lease_state(&lc), LR_LEASE_HELD);
    lr_lease_deinit(&la);
    lr_lease_deinit(&lb);
    lr_lease_deinit(&lc);
    close_mgr(a);
    close_mgr(b);
}

/* A change whose reply is lost (applied at the store, reported -ETIMEDOUT) is
 * sent again until definite; the lease keeps renewing under the new token.
 * Before: the old token was kept, the next renewal was refused, lost. */
TEST(ambiguous_change_is_retried_not_lost)
{
    rec_setup();
    struct lr_manager *m = new_mgr(NULL, 900);
    CHECK(m);
    struct lr_lease l;
    CHECK_OK(lr_lease_init(m, &l, "amb", NULL));
    CHECK_OK(lr_lease_acquire(&l, 1000));
    run_until(EV_ACQ, 1000);
    nev = 0;
    CHECK_OK(lr__mem_set_mode(m, LR_MEM_LOSE_REPLY));
    CHECK_OK(lr_lease_change(&l));
    run_until(EV_JEOP, 1000); /* applied, but the reply was "lost" */
    CHECK_ERR(rec_first(EV_JEOP, &l)->status, -ETIMEDOUT);
    CHECK_EQ(rec_count(EV_CHANGED, &l), 0);        /* not reported as failed */
    CHECK_ERR(lr_lease_change(&l), -EBUSY);         /* still under way */
    CHECK_OK(lr__mem_set_mode(m, LR_MEM_NORMAL));
    run_until(EV_CHANGED, 1000);
    CHECK_OK(rec_first(EV_CHANGED, &l)->status);
    run_until(0, 900); /* renewals under the new token go on */
    CHECK(rec_count(EV_RENEW, &l) >= 2);
    CHECK_EQ(rec_count(EV_LOST, &l), 0);
    CHECK_EQ(lr_lease_state(&l), LR_LEASE_HELD);
    lr_lease_deinit(&l);
    close_mgr(m);
}

/* Break with period 0 while someone holds the name: the holder loses at its
 * next renewal, and nobody acquires before the holder's validity ends. */
TEST(break_zero_waits_out_the_holder)
{
    rec_setup();
    struct lr_manager *a = new_mgr(NULL, 900), *b = new_mgr(store_uri, 900);
    CHECK(a && b);
    struct lr_lease la, lb;
    CHECK_OK(lr_lease_init(a, &la, "b0", NULL));
    CHECK_OK(lr_lease_init(b, &lb, "b0", NULL));
    CHECK_OK(lr_lease_acquire(&la, 1000));
    run_until(EV_ACQ, 1000);
    nev = 0;
    uint64_t vu = lr_lease_valid_until(&la);
    CHECK_OK(lr_lease_break(&lb, 0));
    run_until(EV_BROKEN, 1000);
    CHECK_OK(rec_first(EV_BROKEN, &lb)->status);
    CHECK_OK(lr_lease_acquire(&lb, 3000));
    run_until(EV_ACQ, 3000);
    CHECK_EQ(rec_count(EV_ACQ, &lb), 1);
    CHECK_EQ(rec_count(EV_LOST, &la), 1);
    CHECK_ERR(rec_first(EV_LOST, &la)->status, LR_ELOST);
    printf("     acquired %.1f ms after the old holder's valid_until\n",
           ((double)rec_first(EV_ACQ, &lb)->at_ns - (double)vu * 1e6) / 1e6);
    CHECK(rec_first(EV_ACQ, &lb)->at_ns >= vu * 1000000u);
    lr_lease_deinit(&la);
    lr_lease_deinit(&lb);
    close_mgr(a);
    close_mgr(b);
}

/* Closing the manager frees what its leases own (metadata) even when the
 * caller never deinitialises them; LeakSanitizer (asan build) checks. */
static uint64_t frees_at_close(int with_meta, struct lr_lease *l)
{
    struct lr_manager *m = new_mgr(NULL, 900);
    if (!m)
        return 0;
    for (int i = 0; i < 4; i++) {
        char name[8];
        snprintf(name, sizeof(name), "m%d", i);
        if (lr_lease_init(m, &l[i], name, NULL) < 0 ||
            (with_meta && lr_lease_set_meta(&l[i], "region", "eu-west") < 0))
            return 0;
    }
    alloccount_begin();
    close_mgr(m); /* no lr_lease_deinit */
    return alloccount_end().frees;
}

TEST(close_frees_what_leases_own)
{
    rec_setup();
    static struct lr_lease l[4];
    uint64_t plain = frees_at_close(0, l);
    uint64_t meta = frees_at_close(1, l);
    printf("     close frees %llu blocks, %llu with metadata on 4 leases\n",
           (unsigned long long)plain, (unsigned long long)meta);
    CHECK_EQ(meta, plain + 4);
    CHECK(lr_lease_meta(&l[0], "region") == NULL);
    lr_lease_deinit(&l[0]); /* allowed after close, and harmless */
}

static struct lr_manager *id_mgr(const char *uri, uint32_t ttl, const char *identity, int *rc)
{
    struct lr_manager_opts o = {.ttl_ms = ttl, .cbs = &rec_cbs, .identity = identity};
    struct lr_manager *m = NULL;
    *rc = lr_manager_new(&m, loop, uri, &o);
    return m;
}

TEST(identity_default_and_checks)
{
    rec_setup();
    int rc;
    struct lr_manager *m = id_mgr("mem://id0", 1000, NULL, &rc);
    CHECK_OK(rc);
    char want[300], host[256];
    CHECK_OK(gethostname(host, sizeof(host)));
    snprintf(want, sizeof(want), "%.200s:%ld", host, (long)getpid());
    CHECK(!strcmp(lr_manager_identity(m), want)); /* HOST:PID */
    close_mgr(m);
    char id[LR_IDENTITY_MAX + 2];
    memset(id, 'x', sizeof(id) - 1);
    id[sizeof(id) - 1] = '\0';
    CHECK(!id_mgr("mem://id0", 1000, id, &rc)); /* one byte too many */
    CHECK_ERR(rc, -EINVAL);
    CHECK(!id_mgr("mem://id0", 1000, "", &rc));
    CHECK_ERR(rc, -EINVAL);
    CHECK(!id_mgr("mem://id0", 1000, "tab\there", &rc));
    CHECK_ERR(rc, -EINVAL);
    CHECK(!id_mgr("mem://id0", 1000, "del\x7f", &rc));
    CHECK_ERR(rc, -EINVAL);
    id[LR_IDENTITY_MAX] = '\0'; /* LR_IDENTITY_MAX bytes: fine, and copied */
    m = id_mgr("mem://id0", 1000, id, &rc);
    CHECK_OK(rc);
    id[0] = 'y';
    CHECK_EQ(lr_manager_identity(m)[0], 'x');
    CHECK_EQ(strlen(lr_manager_identity(m)), LR_IDENTITY_MAX);
    struct lr_lease l;
    CHECK_OK(lr_lease_init(m, &l, "j", NULL));
    CHECK_ERR(lr_lease_set_meta(&l, "identity", "me"), -EINVAL); /* the store's own field */
    lr_lease_deinit(&l);
    close_mgr(m);
}

/* A conflict names the holder by identity, short or long (the manager's
 * holder table), and an identity replaced in that table since still
 * gives its first 14 bytes. */
TEST(conflict_reports_the_holders_identity)
{
    rec_setup();
    int rc;
    static const char *const ids[] = {"short-one", "a-rather-long-identity.example.org:4242"};
    struct lr_manager *b = id_mgr("mem://id1", 1000, "the-other", &rc);
    CHECK_OK(rc);
    for (int i = 0; i < 2; i++) {
        struct lr_manager *a = id_mgr("mem://id1", 1000, ids[i], &rc);
        CHECK_OK(rc);
        struct lr_lease la, lb;
        const char *name = i ? "job1" : "job0";
        CHECK_OK(lr_lease_init(a, &la, name, NULL));
        CHECK_OK(lr_lease_init(b, &lb, name, NULL));
        CHECK_OK(lr_lease_acquire(&la, 1000));
        run_until(EV_ACQ, 1000);
        CHECK_OK(lr_lease_try_acquire(&lb));
        run_until(EV_ACQFAIL, 1000);
        CHECK_ERR(rec_first(EV_ACQFAIL, &lb)->status, LR_ECONFLICT);
        CHECK(!strcmp(lr_lease_holder(&lb), ids[i]));
        if (i == 1) {
            /* more distinct long identities than the table keeps */
            for (int k = 0; k < LR_HOLDER_SLOTS; k++) {
                char other[64];
                snprintf(other, sizeof(other), "another-long-holder-number-%d", k);
                struct lr__result r = {.status = LR_ECONFLICT, .holder = other,
                                       .holder_len = strlen(other), .holder_ttl_ms = -1};
                struct lr_lease lc;
                CHECK_OK(lr_lease_init(b, &lc, "other", NULL));
                CHECK_OK(lr_lease_try_acquire(&lc));
                lc.req.kind = LR_OP_ACQUIRE; /* as if sent, and answered so */
                lr__lease_deliver(&lc, &r);
                CHECK(!strcmp(lr_lease_holder(&lc), other));
                lr_lease_deinit(&lc);
            }
            CHECK(!strcmp(lr_lease_holder(&lb), "a-rather-long-")); /* its first 14 bytes */
        }
        lr_lease_deinit(&la);
        lr_lease_deinit(&lb);
        close_mgr(a);
    }
    close_mgr(b);
}

TEST(inspect_free_held_other_and_expired)
{
    rec_setup();
    int rc;
    struct lr_manager *a = id_mgr("mem://id2", 1000, "worker-a", &rc);
    CHECK_OK(rc);
    struct lr_manager *b = id_mgr("mem://id2", 1000, NULL, &rc);
    CHECK_OK(rc);
    /* free: never held */
    CHECK_OK(rec_inspect(b, "job", 1000));
    CHECK_EQ(rec_insp.held, 0);
    CHECK_EQ(rec_insp.meta_len, 0);
    /* held by another manager, with metadata */
    struct lr_lease la;
    CHECK_OK(lr_lease_init(a, &la, "job", NULL));
    CHECK_OK(lr_lease_set_meta(&la, "node", "alpha"));
    CHECK_OK(lr_lease_set_meta(&la, "pid", "77"));
    CHECK_OK(lr_lease_acquire(&la, 1000));
    run_until(EV_ACQ, 1000);
    CHECK_OK(rec_inspect(b, "job", 1000));
    CHECK_EQ(rec_insp.held, 1);
    CHECK(!strcmp(rec_insp.holder, "worker-a"));
    CHECK(!strcmp(rec_insp.identity, "worker-a"));
    char tok[33];
    lr__hex(la.token, 16, tok);
    tok[32] = '\0';
    CHECK(!strcmp(rec_insp.token, tok));
    CHECK_EQ(rec_insp.fence, lr_lease_fence(&la));
    CHECK(rec_insp.ttl_ms > 0 && rec_insp.ttl_ms <= 1000);
    CHECK(rec_insp_meta("node") && !strcmp(rec_insp_meta("node"), "alpha"));
    CHECK(rec_insp_meta("pid") && !strcmp(rec_insp_meta("pid"), "77"));
    /* the holder inspects its own name too; names are not leases */
    uint32_t leases = lr_manager_stats(a)->leases;
    CHECK_OK(rec_inspect(a, "job", 1000));
    CHECK(!strcmp(rec_insp.holder, "worker-a"));
    CHECK_EQ(lr_manager_stats(a)->leases, leases);
    /* expired: forgotten without a release, the store lets it run out */
    lr_lease_deinit(&la);
    CHECK_OK(rec_inspect(b, "job", 1000));
    CHECK_EQ(rec_insp.held, 1);
    run_until(0, (uint64_t)rec_insp.ttl_ms + 20);
    CHECK_OK(rec_inspect(b, "job", 1000));
    CHECK_EQ(rec_insp.held, 0);
    CHECK(!strcmp(rec_insp.holder, ""));
    CHECK_EQ(rec_insp.meta_len, 0);
    /* arguments */
    CHECK_ERR(lr_manager_inspect(b, "", NULL, NULL), -EINVAL);
    char longname[LR_NAME_MAX + 2];
    memset(longname, 'n', sizeof(longname) - 1);
    longname[sizeof(longname) - 1] = '\0';
    CHECK_ERR(rec_inspect(b, longname, 100), -ENAMETOOLONG);
    close_mgr(a);
    close_mgr(b);
}

static int cancelled_status = 1;
static void note_cancel(void *arg, int status, const struct lr_inspect *info)
{
    (void)arg;
    cancelled_status = info ? 99 : status;
}

TEST(inspect_passes_chaos_and_close_cancels_it)
{
    rec_setup();
    int rc;
    struct lr_manager *a = id_mgr("mem://id3", 1000, "holder-3", &rc);
    CHECK_OK(rc);
    /* every lease request refused: an inspection still passes */
    struct lr_manager *c = id_mgr("chaos+mem://id3?fail=1", 1000, NULL, &rc);
    CHECK_OK(rc);
    struct lr_lease la, lc;
    CHECK_OK(lr_lease_init(a, &la, "job", NULL));
    CHECK_OK(lr_lease_acquire(&la, 1000));
    run_until(EV_ACQ, 1000);
    CHECK_OK(lr_lease_init(c, &lc, "job", NULL));
    CHECK_OK(lr_lease_try_acquire(&lc));
    run_until(EV_ACQFAIL, 1000);
    CHECK(rec_first(EV_ACQFAIL, &lc)->status != 0); /* refused, or its reply lost */
    CHECK_OK(rec_inspect(c, "job", 1000));
    CHECK(!strcmp(rec_insp.holder, "holder-3"));
    lr_lease_deinit(&lc);
    close_mgr(c);
    /* a stalled store: the close answers the inspection -ECANCELED, once */
    CHECK_OK(lr__mem_set_mode(a, LR_MEM_STALL));
    CHECK_OK(lr_manager_inspect(a, "job", note_cancel, NULL));
    run_until(0, 20);
    CHECK_EQ(cancelled_status, 1); /* not answered yet */
    lr_lease_deinit(&la);
    close_mgr(a);
    CHECK_ERR(cancelled_status, -ECANCELED);
}

TESTS(T(acquire_conflict_and_holder), T(identity_default_and_checks),
      T(conflict_reports_the_holders_identity), T(inspect_free_held_other_and_expired),
      T(inspect_passes_chaos_and_close_cancels_it), T(break_and_change), T(ambiguous_change_is_retried_not_lost),
      T(break_zero_waits_out_the_holder), T(close_frees_what_leases_own), T(lease_names_reuse_the_arena),
      T(renewals_follow_the_schedule_with_jitter),
      T(renewals_land_on_the_grid_with_room_for_a_retry),
      T(unreachable_store_retries_then_loses_before_valid_until),
      T(stalled_store_jeopardy_then_lost_before_valid_until),
      T(reply_handled_after_a_stall_is_a_loss_not_a_renewal),
      T(state_and_remaining_read_a_fresh_clock),
      T(recovers_when_the_store_returns_in_time),
      T(release_is_idempotent_and_callbacks_are_ordered), T(release_all_releases_every_lease),
      T(expiry_then_another_holder_with_a_higher_fence), T(bad_arguments_are_clear_errors),
      T(steady_state_renewals_allocate_nothing))
