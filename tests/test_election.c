/* SPDX-License-Identifier: MIT */
/*
 * test_election.c - leader election (election.h) on the in-memory store:
 * exactly one leader among candidates, resign hands over within one retry
 * interval and the resigned election stays out for one TTL, new_leader with
 * the store's holder string, loss reasons told before valid_until, takeover
 * as the dead leader's lease expires, free while leading releases (and from
 * a callback), a manager closed under an election, argument errors, and a
 * steady state that allocates nothing.
 * Each election here has its own manager on one shared mem store, as
 * separate processes would.
 */
#include <errno.h>
#include <stdbool.h>

#include "alloccount.h"
#include "harness.h"
#include "mem.h"
#include "recorder.h"
#include <leasering.h>

#define TTL 400u
#define NE 4
/* What a loaded 2-core machine may add to a deadline: scheduling, a pass. */
#define SLACK 50

enum el_ev { EL_START = 1, EL_STOP, EL_NEW };

struct el_rec {
    enum el_ev ev;
    int who;       /* index into cand[] */
    int64_t value; /* fence, reason */
    uint64_t at_ns;
    uint64_t valid_until; /* EL_STOP: the lease's validity just before */
    char id[LR_HOLDER_MAX + 1];
    char holder[LR_HOLDER_MAX + 1]; /* EL_NEW: lr_lease_holder at the time */
};

static struct el_rec recs[4096];
static int nrec;
static int stop_on;  /* stop the loop at this event (0: never) */
static int stop_who; /* ... of this candidate (-1: any) */

struct cand {
    struct lr_manager *m;
    struct lr_election *e;
    uint64_t vu;        /* last valid_until seen while leading */
    bool free_in_start; /* free itself inside started_leading */
};
static struct cand cand[NE];
static char store[64];
static int store_seq;

static int who_of(struct lr_election *e)
{
    return (int)((struct cand *)lr_election_arg(e) - cand);
}

static struct el_rec *record(enum el_ev ev, struct lr_election *e, int64_t value)
{
    struct el_rec *r = &recs[nrec < 4095 ? nrec++ : nrec];
    memset(r, 0, sizeof(*r));
    r->ev = ev;
    r->who = who_of(e);
    r->value = value;
    r->at_ns = mono_ns();
    if ((int)ev == stop_on && (stop_who < 0 || stop_who == r->who))
        lr_loop_stop(loop);
    return r;
}

static void on_start(struct lr_election *e, uint64_t fence)
{
    struct cand *c = lr_election_arg(e);
    c->vu = lr_lease_valid_until(lr_election_lease(e));
    record(EL_START, e, (int64_t)fence);
    if (c->free_in_start) {
        lr_election_free(e);
        c->e = NULL;
    }
}

static void on_stop(struct lr_election *e, int reason)
{
    struct cand *c = lr_election_arg(e);
    record(EL_STOP, e, reason)->valid_until = c->vu;
}

static void on_new(struct lr_election *e, const char *id)
{
    struct el_rec *r = record(EL_NEW, e, 0);
    snprintf(r->id, sizeof(r->id), "%s", id);
    snprintf(r->holder, sizeof(r->holder), "%s", lr_lease_holder(lr_election_lease(e)));
}

static struct lr_manager *mgr_on(const char *uri, int i)
{
    /* Losses come 50 ms before valid_until (not the default 4): the checks
     * against valid_until then tolerate a loaded machine's late wakeups.
     * Each candidate has an identity of its own, as separate processes
     * would (the default, HOST:PID, is the same for every manager here):
     * followers are told the leader by it. */
    char id[32];
    snprintf(id, sizeof(id), "candidate-%d", i);
    struct lr_manager_opts o = {.ttl_ms = TTL, .loss_guard_ms = 50, .identity = id};
    struct lr_manager *m = NULL;
    return lr_manager_new(&m, loop, uri, &o) == 0 ? m : NULL;
}

/* Fresh store and recorder; candidates 0..n-1 each with a manager, none
 * with an election yet. */
static bool setup(int n)
{
    rec_setup();
    nrec = 0;
    stop_on = 0;
    stop_who = -1;
    memset(cand, 0, sizeof(cand));
    snprintf(store, sizeof(store), "mem://el%d", ++store_seq);
    for (int i = 0; i < n; i++)
        if (!(cand[i].m = mgr_on(store, i)))
            return false;
    return true;
}

static int join(int i)
{
    struct lr_election_cbs cbs = {.started_leading = on_start,
                                  .stopped_leading = on_stop,
                                  .new_leader = on_new,
                                  .arg = &cand[i]};
    return lr_election_new(&cand[i].e, cand[i].m, "leader", &cbs);
}

/* Run until event @ev of candidate @who (-1 any) or @ms pass; the record or NULL. */
static const struct el_rec *run_to(enum el_ev ev, int who, uint64_t ms)
{
    int from = nrec;
    stop_on = ev;
    stop_who = who;
    run_until(0, ms);
    stop_on = 0;
    for (int i = from; i < nrec; i++)
        if (recs[i].ev == ev && (who < 0 || recs[i].who == who))
            return &recs[i];
    return NULL;
}

static int count(enum el_ev ev, int who)
{
    int n = 0;
    for (int i = 0; i < nrec; i++)
        n += recs[i].ev == ev && (who < 0 || recs[i].who == who);
    return n;
}

static int leaders(int n)
{
    int k = 0;
    for (int i = 0; i < n; i++)
        k += cand[i].e && lr_election_is_leader(cand[i].e);
    return k;
}

static void teardown(int n)
{
    for (int i = 0; i < n; i++) {
        lr_election_free(cand[i].e);
        cand[i].e = NULL;
    }
    run_until(0, 50); /* releases of freed leaders are answered */
    for (int i = 0; i < n; i++)
        if (cand[i].m)
            close_mgr(cand[i].m);
}

/* setup(@n); candidate 0 leads, then candidate 1 joins and hears of it. */
static bool leader_and_follower(int n)
{
    return setup(n) && join(0) == 0 && run_to(EL_START, 0, 1000) && join(1) == 0 &&
           run_to(EL_NEW, 1, 1000);
}

/* ---- tests ---- */

TEST(one_leader_among_candidates)
{
    CHECK(setup(NE));
    for (int i = 0; i < NE; i++)
        CHECK_OK(join(i));
    CHECK_EQ(nrec, 0); /* nothing inside lr_election_new */
    const struct el_rec *s = run_to(EL_START, -1, 1000);
    CHECK(s);
    CHECK_EQ(s->value, 1);
    int leader = s->who;
    /* several TTLs of renewals and attempts: still that one, alone */
    run_until(0, 3 * TTL);
    CHECK_EQ(count(EL_START, -1), 1);
    CHECK_EQ(count(EL_STOP, -1), 0);
    CHECK_EQ(leaders(NE), 1);
    CHECK(lr_election_is_leader(cand[leader].e));
    CHECK(lr_lease_remaining_ms(lr_election_lease(cand[leader].e)) > 0);
    CHECK_EQ(lr_election_leader(cand[leader].e)[0], '\0');
    /* every follower heard of the leader once (its term's identity does not
     * change while it leads), with the holder string of the store */
    for (int i = 0; i < NE; i++) {
        if (i == leader)
            continue;
        CHECK_EQ(count(EL_NEW, i), 1);
        for (int k = 0; k < nrec; k++)
            if (recs[k].ev == EL_NEW && recs[k].who == i) {
                CHECK(recs[k].id[0] != '\0');
                CHECK(!strcmp(recs[k].id, recs[k].holder));
                CHECK(!strcmp(recs[k].id, lr_election_leader(cand[i].e)));
            }
        CHECK_EQ(lr_lease_remaining_ms(lr_election_lease(cand[i].e)), 0);
    }
    teardown(NE);
}

TEST(resign_hands_over_within_one_retry_interval)
{
    CHECK(leader_and_follower(2));
    uint32_t r = lr_election_retry_ms(cand[1].e);
    CHECK_EQ(r, TTL / 4);
    CHECK_ERR(lr_election_resign(cand[1].e), -EALREADY); /* a follower */
    uint64_t t0 = mono_ns();
    CHECK_OK(lr_election_resign(cand[0].e));
    CHECK_ERR(lr_election_resign(cand[0].e), -EALREADY);
    CHECK(!lr_election_is_leader(cand[0].e));
    CHECK_EQ(count(EL_STOP, 0), 0); /* never inside the call */
    const struct el_rec *st = run_to(EL_STOP, 0, 1000);
    CHECK(st);
    CHECK_EQ(st->value, 0);
    const struct el_rec *s = run_to(EL_START, 1, 2 * r);
    CHECK(s);
    printf("hand-over after resign: %.1f ms (retry interval %u ms)\n",
           (double)(s->at_ns - t0) / 1e6, r);
    CHECK(s->at_ns - t0 <= (uint64_t)(r + SLACK) * 1000000u);
    CHECK_EQ(s->value, 2);
    /* the resigned one stays out for a TTL, then is a candidate again: it
     * hears of the new leader, and leads once that one goes */
    run_until(0, TTL / 2);
    CHECK_EQ(count(EL_NEW, 0), 0);
    run_until(0, TTL);
    CHECK_EQ(count(EL_NEW, 0), 1);
    CHECK_EQ(count(EL_START, 0), 1);
    uint64_t t1 = mono_ns();
    CHECK_OK(lr_election_resign(cand[1].e));
    s = run_to(EL_START, 0, 2 * r);
    CHECK(s);
    CHECK(s->at_ns - t1 <= (uint64_t)(r + SLACK) * 1000000u);
    CHECK_EQ(s->value, 3);
    teardown(2);
}

/* new_leader comes again when the holder changes, not at every conflict. */
TEST(new_leader_when_the_holder_changes)
{
    CHECK(setup(3));
    CHECK_OK(join(0));
    CHECK(run_to(EL_START, 0, 1000));
    CHECK_OK(join(1));
    CHECK_OK(join(2));
    run_until(0, 2 * TTL);
    CHECK_EQ(count(EL_NEW, 1), 1);
    CHECK_EQ(count(EL_NEW, 2), 1);
    char first[LR_HOLDER_MAX + 1];
    snprintf(first, sizeof(first), "%s", lr_election_leader(cand[1].e));
    CHECK_OK(lr_election_resign(cand[0].e));
    const struct el_rec *s = run_to(EL_START, -1, 1000);
    CHECK(s && s->who != 0);
    int follower = 3 - s->who;
    run_until(0, TTL);
    CHECK_EQ(count(EL_NEW, follower), 2);
    CHECK(strcmp(lr_election_leader(cand[follower].e), first) != 0);
    CHECK(!strcmp(lr_election_leader(cand[follower].e),
                  lr_lease_holder(lr_election_lease(cand[follower].e))));
    teardown(3);
}

/* The store stops answering: the leader is told before valid_until, with
 * the lease's reason, and someone leads again once it answers. */
TEST(loss_is_told_before_valid_until)
{
    CHECK(setup(1));
    CHECK_OK(join(0));
    CHECK(run_to(EL_START, 0, 1000));
    CHECK_OK(lr__mem_set_mode(cand[0].m, LR_MEM_STALL));
    const struct el_rec *st = run_to(EL_STOP, 0, 2 * TTL);
    CHECK(st);
    CHECK_ERR(st->value, LR_EEXPIRED);
    CHECK(st->at_ns < st->valid_until * 1000000u);
    CHECK(!lr_election_is_leader(cand[0].e));
    CHECK_ERR(lr_election_resign(cand[0].e), -EALREADY);
    CHECK_OK(lr__mem_set_mode(cand[0].m, LR_MEM_UNAVAIL));
    run_until(0, TTL);
    CHECK_EQ(count(EL_START, 0), 1);
    CHECK_OK(lr__mem_set_mode(cand[0].m, LR_MEM_NORMAL));
    /* its old term may still be at the store for up to a TTL */
    const struct el_rec *s = run_to(EL_START, 0, 2 * TTL);
    CHECK(s);
    CHECK_EQ(s->value, 2);
    /* unreachable while leading: LR_EUNAVAIL */
    CHECK_OK(lr__mem_set_mode(cand[0].m, LR_MEM_UNAVAIL));
    st = run_to(EL_STOP, 0, 2 * TTL);
    CHECK(st);
    CHECK_ERR(st->value, LR_EUNAVAIL);
    CHECK(st->at_ns < st->valid_until * 1000000u);
    CHECK_OK(lr__mem_set_mode(cand[0].m, LR_MEM_NORMAL));
    teardown(1);
}

/* A leader that vanishes without releasing (its manager closed: the lease
 * stays at the store until its TTL ends). The follower, even with a retry
 * interval far longer than the TTL, attempts as the holder's remaining TTL
 * runs out, and takes over within a TTL (+ slack) of the leader's last
 * renewal. */
TEST(takeover_as_the_dead_leaders_lease_expires)
{
    CHECK(leader_and_follower(2));
    CHECK_OK(lr_election_set_retry_ms(cand[1].e, 20 * TTL));
    uint64_t renewed_ms = lr_lease_last_renewed(lr_election_lease(cand[0].e));
    lr_election_free(cand[0].e); /* releases ... */
    cand[0].e = NULL;
    close_mgr(cand[0].m); /* ... which the close drops, at once */
    cand[0].m = NULL;
    const struct el_rec *s = run_to(EL_START, 1, 3 * TTL);
    CHECK(s);
    double after = (double)s->at_ns / 1e6 - (double)renewed_ms;
    printf("takeover %.1f ms after the dead leader's last renewal (TTL %u)\n", after, TTL);
    CHECK(after >= TTL - 5 && after <= TTL + SLACK);
    teardown(2);
}

TEST(free_while_leading_releases)
{
    CHECK(leader_and_follower(2));
    uint64_t t0 = mono_ns();
    lr_election_free(cand[0].e);
    cand[0].e = NULL;
    const struct el_rec *s = run_to(EL_START, 1, 1000);
    CHECK(s);
    CHECK(s->at_ns - t0 <= (uint64_t)(TTL / 4 + SLACK) * 1000000u); /* released, not expired */
    CHECK_EQ(count(EL_STOP, 0), 0);                              /* nothing after free */
    /* freed from inside its own callback, while leading */
    cand[2].m = mgr_on(store, 2);
    CHECK(cand[2].m);
    cand[2].free_in_start = true;
    CHECK_OK(join(2));
    lr_election_free(cand[1].e);
    cand[1].e = NULL;
    CHECK(run_to(EL_START, 2, 1000));
    CHECK(!cand[2].e);
    run_until(0, 50); /* its release is answered and its memory freed (ASan checks) */
    /* a candidate freed while its attempt is in flight */
    CHECK_OK(join(1));
    run_until(0, 0);
    lr_election_free(cand[1].e);
    cand[1].e = NULL;
    run_until(0, 50);
    teardown(3);
}

/* The manager closed under a leading election (the lease is forgotten
 * without callbacks): stopped_leading(-ECANCELED) by its validity's stop
 * point; a candidate just stops. Both can be freed afterwards. */
TEST(manager_closed_under_the_election)
{
    CHECK(leader_and_follower(2));
    uint64_t stop_point_ms =
        mono_ns() / 1000000u + (uint64_t)lr_lease_remaining_ms(lr_election_lease(cand[0].e));
    close_mgr(cand[0].m);
    close_mgr(cand[1].m);
    cand[0].m = cand[1].m = NULL;
    const struct el_rec *st = run_to(EL_STOP, 0, 2 * TTL);
    CHECK(st);
    CHECK_ERR(st->value, -ECANCELED);
    CHECK(st->at_ns <= (stop_point_ms + 10) * 1000000u);
    CHECK(!lr_election_is_leader(cand[0].e));
    CHECK_ERR(lr_election_resign(cand[0].e), -EALREADY);
    run_until(0, TTL);
    CHECK_EQ(count(EL_START, -1), 1);
    CHECK_EQ(count(EL_STOP, -1), 1);
    teardown(2);
}

TEST(arguments)
{
    CHECK(setup(1));
    struct lr_election_cbs cbs = {0};
    struct lr_election *e = (struct lr_election *)&cbs;
    CHECK_ERR(lr_election_new(&e, NULL, "x", &cbs), -EINVAL);
    CHECK(e == NULL);
    CHECK_ERR(lr_election_new(&e, cand[0].m, NULL, &cbs), -EINVAL);
    CHECK_ERR(lr_election_new(&e, cand[0].m, "x", NULL), -EINVAL);
    CHECK_ERR(lr_election_new(NULL, cand[0].m, "x", &cbs), -EINVAL);
    CHECK_ERR(lr_election_new(&e, cand[0].m, "", &cbs), -EINVAL);
    char longname[LR_NAME_MAX + 2];
    memset(longname, 'n', sizeof(longname) - 1);
    longname[sizeof(longname) - 1] = '\0';
    CHECK_ERR(lr_election_new(&e, cand[0].m, longname, &cbs), -ENAMETOOLONG);
    CHECK_ERR(lr_election_resign(NULL), -EALREADY);
    lr_election_free(NULL);
    CHECK_OK(lr_election_new(&e, cand[0].m, "x", &cbs)); /* no callbacks at all: fine */
    CHECK_ERR(lr_election_set_retry_ms(e, 0), -EINVAL);
    CHECK_ERR(lr_election_set_retry_ms(e, 600001), -EINVAL);
    CHECK_OK(lr_election_set_retry_ms(e, 7));
    CHECK_EQ(lr_election_retry_ms(e), 7);
    CHECK(lr_election_arg(e) == NULL);
    CHECK(!strcmp(lr_lease_name(lr_election_lease(e)), "x"));
    run_until(0, 50);
    CHECK(lr_election_is_leader(e));
    lr_election_free(e);
    run_until(0, 20);
    /* the default retry interval: a quarter of the TTL, at most 2 s */
    struct lr_manager_opts o = {.ttl_ms = 60000};
    struct lr_manager *m = NULL;
    CHECK_OK(lr_manager_new(&m, loop, store, &o));
    CHECK_OK(lr_election_new(&e, m, "y", &cbs));
    CHECK_EQ(lr_election_retry_ms(e), 2000);
    lr_election_free(e);
    run_until(0, 20);
    close_mgr(m);
    CHECK_OK(lr_manager_close(cand[0].m, NULL, NULL));
    CHECK_ERR(lr_election_new(&e, cand[0].m, "z", &cbs), -ECANCELED);
    run_until(0, 20);
    lr_manager_free(cand[0].m);
}

/* Leader renewing, followers attempting and hearing of it, a loss and a
 * re-election: none of it allocates. */
TEST(steady_state_allocates_nothing)
{
    CHECK(alloccount_selftest());
    CHECK(setup(3));
    for (int i = 0; i < 3; i++)
        CHECK_OK(join(i));
    CHECK(run_to(EL_START, -1, 1000));
    run_until(0, 50);
    alloccount_begin();
    run_until(0, 2 * TTL);
    int leader = -1;
    for (int i = 0; i < 3; i++)
        if (lr_election_is_leader(cand[i].e))
            leader = i;
    int rc = leader >= 0 ? lr_election_resign(cand[leader].e) : -1;
    run_until(0, 2 * TTL);
    struct alloc_counts c = alloccount_end();
    CHECK_OK(rc);
    CHECK_EQ(c.allocs, 0);
    CHECK(count(EL_START, -1) >= 2);
    teardown(3);
}

TESTS(T(one_leader_among_candidates), T(resign_hands_over_within_one_retry_interval),
      T(new_leader_when_the_holder_changes), T(loss_is_told_before_valid_until),
      T(takeover_as_the_dead_leaders_lease_expires), T(free_while_leading_releases),
      T(manager_closed_under_the_election), T(arguments), T(steady_state_allocates_nothing))
