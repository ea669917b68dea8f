/* SPDX-License-Identifier: MIT */
/*
 * election.c - leader election (leasering/election.h) on the public lease
 * API: one embedded lease, one timer, no store protocol.
 *
 * States and the timer's job in each:
 *   WAIT      a candidate between attempts: the timer starts the next one.
 *   TRYING    an attempt (lr_lease_try_acquire) is in flight: its outcome
 *             comes as acquired / acquire_failed; the timer is a watchdog
 *             that notices a lease detached by lr_manager_close (no callback
 *             comes then).
 *   LEADING   the lease is held: renewals are the lease core's; the timer
 *             sits at the validity's stop point, where the lease core has
 *             either renewed (the timer moved on) or reported the loss; if
 *             neither, the manager closed.
 *   RESIGNING the release is in flight; released ends it.
 *   FREEING   lr_election_free was called while leading or resigning: the
 *             memory goes at released (or when the watchdog finds the lease
 *             detached).
 *   STOPPED   the manager closed: nothing more happens.
 * Every user callback is the last thing its caller does, so a callback may
 * resign or free its own election.
 */
#include <errno.h>
#include <stdbool.h>
#include <string.h>
#include <time.h>

#include <leasering/election.h>
#include <leasering/error.h>
#include <leasering/loop.h>

#include "alloc_int.h"
#include "list.h"

enum el_state { EL_WAIT, EL_TRYING, EL_LEADING, EL_RESIGNING, EL_FREEING, EL_STOPPED };

/* Default retry interval: a quarter of the TTL, at most this. */
#define EL_RETRY_CAP_MS 2000u

struct lr_election {
    struct lr_lease lease; /* embedded: the election allocates nothing after new */
    struct lr_timer timer; /* next attempt, or a watchdog (see the states) */
    struct lr_election_cbs cbs;
    struct lr_loop *loop;
    uint64_t rng;
    uint32_t retry_ms;
    uint8_t state;
    char leader[LR_HOLDER_MAX + 1]; /* last identity reported by new_leader */
};

static uint64_t now_ms(const struct lr_election *e)
{
    return lr_loop_now_ms(e->loop);
}

static uint32_t ttl_ms(const struct lr_election *e)
{
    return e->lease.ttl_ms;
}

/* xorshift64: only spreads candidates' attempts apart, needs no quality. */
static uint64_t next_rand(struct lr_election *e)
{
    e->rng ^= e->rng << 13;
    e->rng ^= e->rng >> 7;
    e->rng ^= e->rng << 17;
    return e->rng;
}

/* The next attempt: a wait drawn from [3R/4, R], or the holder's remaining
 * TTL + 1 ms when the store said it and that is sooner. */
static void wait_then_try(struct lr_election *e, int64_t holder_ttl_ms)
{
    uint64_t r = e->retry_ms;
    uint64_t wait = r - r / 4 + (r / 4 ? next_rand(e) % (r / 4 + 1) : 0);
#ifdef LR_PLANT_SLOW_RETRY /* planted bug, the election acceptance test's build only */
    wait = 6ull * ttl_ms(e);
    holder_ttl_ms = -1;
#endif
    if (holder_ttl_ms >= 0 && (uint64_t)holder_ttl_ms + 1 < wait)
        wait = (uint64_t)holder_ttl_ms + 1;
    e->state = EL_WAIT;
    lr_timer_start(&e->timer, now_ms(e) + wait);
}

/* The watchdog while leading: the stop point of the current validity. */
static void arm_stop_watch(struct lr_election *e)
{
    lr_timer_start(&e->timer, now_ms(e) + (uint64_t)lr_lease_remaining_ms(&e->lease));
}

static void finish_free(struct lr_election *e)
{
    lr_timer_stop(&e->timer);
    lr_lease_deinit(&e->lease);
    lr__free(e);
}

/* ------------------------------------------------------- lease callbacks */

static struct lr_election *of(struct lr_lease *l)
{
    return lr_container_of(l, struct lr_election, lease);
}

static void on_acquired(struct lr_lease *l)
{
    struct lr_election *e = of(l);
    e->state = EL_LEADING;
    e->leader[0] = '\0'; /* a later loss reports whoever leads then */
    arm_stop_watch(e);
    if (e->cbs.started_leading)
        e->cbs.started_leading(e, lr_lease_fence(l)); /* may free e: last use */
}

static void on_acquire_failed(struct lr_lease *l, int status)
{
    struct lr_election *e = of(l);
    const char *who = status == LR_ECONFLICT ? lr_lease_holder(l) : "";
    wait_then_try(e, status == LR_ECONFLICT ? lr_lease_holder_ttl_ms(l) : -1);
    if (!*who || !strncmp(who, e->leader, sizeof(e->leader) - 1))
        return;
    size_t n = strlen(who);
    if (n >= sizeof(e->leader))
        n = sizeof(e->leader) - 1;
    memcpy(e->leader, who, n);
    e->leader[n] = '\0';
    if (e->cbs.new_leader)
        e->cbs.new_leader(e, e->leader); /* may free e: last use */
}

static void on_renewed(struct lr_lease *l)
{
    arm_stop_watch(of(l));
}

static void on_lost(struct lr_lease *l, int reason)
{
    struct lr_election *e = of(l);
    wait_then_try(e, -1);
    if (e->cbs.stopped_leading)
        e->cbs.stopped_leading(e, reason); /* may free e: last use */
}

static void on_released(struct lr_lease *l, int status)
{
    (void)status; /* not given back: the store expires it by its TTL */
    struct lr_election *e = of(l);
    if (e->state == EL_FREEING) {
        finish_free(e);
        return;
    }
    /* Resigned: leave the name to the others for one TTL. */
    e->state = EL_WAIT;
    lr_timer_start(&e->timer, now_ms(e) + ttl_ms(e));
    if (e->cbs.stopped_leading)
        e->cbs.stopped_leading(e, 0); /* may free e: last use */
}

static const struct lr_lease_cbs election_lease_cbs = {
    .acquired = on_acquired,
    .acquire_failed = on_acquire_failed,
    .renewed = on_renewed,
    .lost = on_lost,
    .released = on_released,
};

/* ------------------------------------------------------------- the timer */

static void election_timer(struct lr_timer *t)
{
    struct lr_election *e = lr_container_of(t, struct lr_election, timer);
    enum lr_lease_state ls = lr_lease_state(&e->lease);
    switch (e->state) {
    case EL_WAIT: {
        int rc = lr_lease_try_acquire(&e->lease);
        if (rc == -ECANCELED) {
            e->state = EL_STOPPED;
        } else if (rc < 0) {
            wait_then_try(e, -1);
        } else {
            e->state = EL_TRYING;
            lr_timer_start(t, now_ms(e) + ttl_ms(e));
        }
        break;
    }
    case EL_TRYING:
    case EL_RESIGNING:
    case EL_FREEING:
        /* A request is in flight; its callback ends this state. A lease that
         * reads IDLE without one was detached by lr_manager_close. */
        if (ls != LR_LEASE_IDLE) {
            lr_timer_start(t, now_ms(e) + ttl_ms(e));
        } else if (e->state == EL_FREEING) {
            finish_free(e);
        } else {
            bool resigning = e->state == EL_RESIGNING;
            e->state = EL_STOPPED;
            if (resigning && e->cbs.stopped_leading)
                e->cbs.stopped_leading(e, 0); /* may free e: last use */
        }
        break;
    case EL_LEADING:
        if (lr_lease_remaining_ms(&e->lease) > 0) {
            arm_stop_watch(e);
        } else if (ls == LR_LEASE_HELD || ls == LR_LEASE_JEOPARDY || ls == LR_LEASE_LOST) {
            /* past the stop point; the lost callback comes next pass */
            lr_timer_start(t, now_ms(e) + 1);
        } else {
            e->state = EL_STOPPED;
            if (e->cbs.stopped_leading)
                e->cbs.stopped_leading(e, -ECANCELED); /* may free e: last use */
        }
        break;
    default:
        break;
    }
}

/* ------------------------------------------------------------ public API */

int lr_election_new(struct lr_election **out, struct lr_manager *m, const char *name,
                    const struct lr_election_cbs *cbs)
{
    if (!out)
        return -EINVAL;
    *out = NULL;
    if (!m || !name || !cbs)
        return -EINVAL;
    struct lr_election *e = lr__calloc(1, sizeof(*e));
    if (!e)
        return -ENOMEM;
    struct lr_lease_opts lo = {.cbs = &election_lease_cbs};
    int rc = lr_lease_init(m, &e->lease, name, &lo);
    if (rc < 0) {
        lr__free(e);
        return rc;
    }
    e->cbs = *cbs;
    e->loop = lr_manager_loop(m);
    uint32_t r = ttl_ms(e) / 4;
    e->retry_ms = r > EL_RETRY_CAP_MS ? EL_RETRY_CAP_MS : r ? r : 1;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    e->rng = ((uint64_t)ts.tv_nsec << 20 ^ (uint64_t)(uintptr_t)e) | 1;
    lr_timer_init(e->loop, &e->timer, election_timer);
    /* The first attempt from the timer phase: never inside this call. */
    e->state = EL_WAIT;
    lr_timer_start(&e->timer, now_ms(e));
    *out = e;
    return 0;
}

int lr_election_resign(struct lr_election *e)
{
    if (!e || e->state != EL_LEADING)
        return -EALREADY;
    e->state = EL_RESIGNING;
    lr_timer_start(&e->timer, now_ms(e) + ttl_ms(e));
    lr_lease_release(&e->lease);
    return 0;
}

void lr_election_free(struct lr_election *e)
{
    if (!e || e->state == EL_FREEING)
        return;
    if (e->state != EL_LEADING && e->state != EL_RESIGNING) {
        /* Nothing held. An attempt in flight is abandoned: should it win
         * meanwhile, nobody renews that lease and it ends within a TTL. */
        finish_free(e);
        return;
    }
    /* held or being released: the store answers first */
    e->state = EL_FREEING;
    lr_timer_start(&e->timer, now_ms(e) + ttl_ms(e));
    lr_lease_release(&e->lease);
}

int lr_election_set_retry_ms(struct lr_election *e, uint32_t retry_ms)
{
    if (!e || !retry_ms || retry_ms > 600000)
        return -EINVAL;
    e->retry_ms = retry_ms;
    return 0;
}

uint32_t lr_election_retry_ms(const struct lr_election *e)
{
    return e->retry_ms;
}

int lr_election_is_leader(const struct lr_election *e)
{
    return e->state == EL_LEADING;
}

const struct lr_lease *lr_election_lease(const struct lr_election *e)
{
    return &e->lease;
}

const char *lr_election_leader(const struct lr_election *e)
{
    return e->leader;
}

void *lr_election_arg(const struct lr_election *e)
{
    return e->cbs.arg;
}
