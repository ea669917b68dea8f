/* SPDX-License-Identifier: MIT */
/*
 * leasering/election.h - leader election on one lease name.
 *
 * Every process (or component) that wants to lead creates an election on the
 * same name; at most one of them leads at a time, the others are candidates
 * that keep trying. An election is a lease (lease.h) plus a retry schedule:
 * it knows no store protocol and promises exactly what the lease core
 * promises, nothing more.
 *
 * Guarantees, and what they rest on:
 *  - At most one leader per name: leading is holding the lease. A leader is
 *    told stopped_leading *before* its lease's valid_until, by a timer, even
 *    when the network is silent (the lease core's loss rule); it must stop
 *    acting before the callback returns. As with any lease, check
 *    lr_lease_remaining_ms(lr_election_lease(e)) right before each act and
 *    pass the fence from started_leading to the resources you guard: a
 *    process frozen between the check and the act is what fences are for.
 *  - Fences grow strictly with every new leadership term (the store's fence
 *    counter; a term is one acquisition).
 *  - Candidates keep trying, one attempt (lr_lease_try_acquire) per retry
 *    interval R = min(ttl / 4, 2000 ms) (at least 1 ms; the manager's ttl_ms;
 *    lr_election_set_retry_ms overrides it), each wait drawn uniformly from
 *    [3R/4, R] so candidates do not attempt in step. After a conflict whose
 *    reply says the holder's remaining TTL h, and h is shorter than the wait,
 *    the next attempt comes h + 1 ms later instead: it lands as the lease
 *    expires. Store errors (unreachable, timeouts) are retried at the same
 *    interval.
 *  - Hand-over: when a leader dies or is cut off, its lease ends at the store
 *    at most one TTL after its last renewal, and a candidate's next attempt
 *    comes within R after that: a new leader within TTL + R (plus a round
 *    trip) of the fault. When a leader resigns, its lease is released at
 *    once, so the next attempt of any candidate wins: hand-over within R.
 *  - Callbacks run on the loop's thread, never inside the call that caused
 *    them, and a callback may call any function here (resign, free) on its
 *    own election.
 *
 * Identity: followers learn who leads from the store's answer to their
 * attempts: after a conflict, lr_lease_holder() of the election's lease, and
 * new_leader is called whenever that string differs from the last one
 * reported (it is passed on as the store gave it, never built here: the
 * manager's identity where the store keeps one, else the leader's owner
 * token, which is new at every term). "" (the store did not say) is not
 * reported. After losing, a candidate may hear its own expired term named
 * for up to one TTL.
 *
 * Allocation: lr_election_new allocates the election, with its lease
 * embedded (and lr_lease_init may take an arena chunk); nothing else does.
 */
#ifndef LEASERING_ELECTION_H
#define LEASERING_ELECTION_H

#include <leasering/common.h>
#include <leasering/lease.h>

#ifdef __cplusplus
extern "C" {
#endif

struct lr_election;

/*
 * What the election tells you. Every member is optional (NULL = not told).
 * @arg is yours: lr_election_arg() returns it.
 */
struct lr_election_cbs {
    /* This election leads from now on; @fence is its term's fencing token
     * (also lr_lease_fence(lr_election_lease(e))). */
    void (*started_leading)(struct lr_election *e, uint64_t fence);
    /* It no longer leads; stop acting as leader before returning. @reason:
     * the lease's lost reason (LR_ELOST: the store gave the name to someone
     * else; LR_EEXPIRED / LR_EUNAVAIL: validity ran out before a renewal
     * succeeded), told before valid_until; 0 after lr_election_resign (once
     * the release is answered); -ECANCELED when the manager was closed under
     * a leading election (the close forgets the lease without a callback:
     * the election's own timer notices at the stop point of the validity,
     * where the lease core would have reported a loss). */
    void (*stopped_leading)(struct lr_election *e, int reason);
    /* A follower learned who leads: @identity is lr_lease_holder()'s string
     * after a conflict, valid during the call only (copy it to keep it). */
    void (*new_leader)(struct lr_election *e, const char *identity);
    void *arg;
};

/*
 * lr_election_new - become a candidate for leading @name (1..LR_NAME_MAX
 * bytes) on @m's store, with the manager's TTL. The first attempt goes out
 * on the next loop pass. @cbs is copied (it may live on the stack).
 * Returns: 0; -EINVAL (NULL argument); lr_lease_init's errors
 * (-ENAMETOOLONG, -ENOSPC, -ERANGE, -ECANCELED if @m is closing, -ENOMEM).
 * Allocates: yes (setup).  Context: the loop's thread.
 */
LR_API int lr_election_new(struct lr_election **out, struct lr_manager *m, const char *name,
                           const struct lr_election_cbs *cbs);

/*
 * lr_election_resign - step down: the lease is released at once, so another
 * candidate's next attempt (within its retry interval) wins. stopped_leading
 * (e, 0) follows when the release is answered; stop acting as leader now.
 * A resigned election stays a candidate, but it makes no attempt for one
 * TTL after the release, so that the others take over first; if nobody
 * does, it leads again after that. To leave for good, lr_election_free.
 * Returns: 0; -EALREADY when not leading (a candidate, already resigning,
 * or stopped after its manager closed).
 * Allocates: never.  Context: the loop's thread, callbacks included.
 */
LR_API int lr_election_resign(struct lr_election *e);

/*
 * lr_election_free - stop being a candidate, and free @e. No callback of @e
 * runs after this call. A leading (or resigning) election releases its lease
 * first: the memory goes when the store has answered, on the loop, which
 * must keep running for that (if the manager is closed meanwhile, the release
 * is dropped and the memory goes one TTL later, on the loop). A candidate is
 * freed at once; an attempt of it in flight is abandoned (should it win,
 * that lease is never renewed and ends at the store within one TTL). For a
 * shutdown that waits for the hand-over: lr_election_resign, wait for
 * stopped_leading(e, 0), then free (at once: it no longer leads). Free
 * elections before freeing their manager. NULL is a no-op; freeing twice is
 * a bug.
 * Allocates: never.  Context: the loop's thread, callbacks included.
 */
LR_API void lr_election_free(struct lr_election *e);

/*
 * lr_election_set_retry_ms - the candidate's retry interval R (see above),
 * from the next wait on.
 * Returns: 0; -EINVAL (0, or above 600000).
 */
LR_API int lr_election_set_retry_ms(struct lr_election *e, uint32_t retry_ms);
/* The retry interval R in use, in ms. */
LR_API uint32_t lr_election_retry_ms(const struct lr_election *e);

/* 1 while @e leads (between started_leading and stopped_leading), else 0.
 * Before acting, ask lr_lease_remaining_ms() as well: it reads the clock. */
LR_API int lr_election_is_leader(const struct lr_election *e);

/* The election's lease, for lr_lease_remaining_ms(), lr_lease_fence(),
 * lr_lease_valid_until(), lr_lease_name() and the stats. Do not change it. */
LR_API const struct lr_lease *lr_election_lease(const struct lr_election *e);

/* The last identity new_leader reported ("" if none yet, and from each
 * started_leading on). Valid until the next new_leader of @e. */
LR_API const char *lr_election_leader(const struct lr_election *e);

/* The arg of the callbacks given to lr_election_new. */
LR_API void *lr_election_arg(const struct lr_election *e);

#ifdef __cplusplus
}
#endif
#endif
