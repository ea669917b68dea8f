/* SPDX-License-Identifier: MIT */
/*
 * leasering/loop.h - the event loop: one io_uring, one thread.
 *
 * A loop owns an io_uring instance, a timer wheel and a ring of provided
 * receive buffers. Every iteration runs fixed phases: reap completions, run
 * expired timers, run deferred calls, flush connection output, then submit
 * and wait until the next timer deadline.
 *
 * Threading: a loop is used only by the thread that created it (the ring is
 * created with IORING_SETUP_SINGLE_ISSUER when the kernel supports it).
 * Callbacks run on that thread, from lr_loop_run() or lr_loop_process(),
 * never from inside the call that scheduled them.
 *
 * Embedding in a foreign event loop (epoll, libuv, libevent): watch
 * lr_loop_fd() for readability, arm a timer for lr_loop_timeout_ms(), and call
 * lr_loop_process() whenever either fires. Readiness is level-like: one wakeup
 * may stand for many completions, so always process until the call returns.
 */
#ifndef LEASERING_LOOP_H
#define LEASERING_LOOP_H

#include <leasering/common.h>

#ifdef __cplusplus
extern "C" {
#endif

struct lr_loop;

/* Loop creation flags (lr_loop_opts.flags). */
enum {
    /* Do not ask for SINGLE_ISSUER/DEFER_TASKRUN/COOP_TASKRUN even when the
     * kernel has them (for comparisons and tests of the fallback path). */
    LR_LOOP_NO_TASKRUN_FLAGS = 1u << 0,
};

/*
 * Options for lr_loop_new(). Zero-initialise and set what you need; a zero
 * field means "the default".
 */
struct lr_loop_opts {
    unsigned ring_entries; /* submission queue size, power of two; default 1024, max 32768 */
    unsigned buf_count;    /* provided receive buffers, power of two; default 64, max 32768 */
    unsigned buf_size;     /* bytes per receive buffer; default 16384, max 1 MiB */
    unsigned flags;        /* LR_LOOP_* flags */
};

/*
 * lr_loop_new - create a loop.
 * @loop: receives the new loop.
 * @opts: options, or NULL for the defaults.
 * Returns: 0; -EINVAL for an option out of range; -ENOMEM; or the kernel's
 * error from io_uring setup or buffer-ring registration (e.g. -ENOSYS, -EPERM).
 * Allocates: yes (the loop, the ring, the receive buffers).  Context: any
 * thread; the loop is then bound to that thread.
 */
LR_API int lr_loop_new(struct lr_loop **loop, const struct lr_loop_opts *opts);

/*
 * lr_loop_free - destroy a loop. Every connection and fd watcher (lr_poll)
 * must be closed and every close callback delivered first; armed timers are
 * simply forgotten.
 * Allocates: never.  Context: the loop's thread, not from a callback.
 */
LR_API void lr_loop_free(struct lr_loop *loop);

/*
 * lr_loop_run - run iterations until lr_loop_stop() is called.
 * Returns: 0 after a stop (the stop request is then cleared, so the loop can
 * be run again), or a negative error if the ring failed.
 * Allocates: never.  Context: the loop's thread, not from a callback.
 */
LR_API int lr_loop_run(struct lr_loop *loop);

/*
 * lr_loop_stop - make lr_loop_run() return after the current iteration.
 * If called while the loop is not running, the next lr_loop_run() returns
 * at once.  Allocates: never.  Context: the loop's thread, callbacks included.
 */
LR_API void lr_loop_stop(struct lr_loop *loop);

/*
 * lr_loop_now_ms - the loop's monotonic clock in milliseconds (CLOCK_MONOTONIC),
 * cached once per iteration; valid right after lr_loop_new(). Timer deadlines
 * are expressed in this unit. Between passes (host code of an embedding
 * program) the cache is as old as the last pass; leasering's own lease calls
 * refresh it themselves when made there, and lr_loop_timeout_ms() measures
 * from the current time, so only code that computes deadlines from this
 * value needs lr_loop_update_time() first.
 * Allocates: never.  Context: the loop's thread.
 */
LR_API uint64_t lr_loop_now_ms(const struct lr_loop *loop);

/*
 * lr_loop_update_time - refresh the cached clock now (for callers that do long
 * work inside a callback and want lr_loop_now_ms() to be current).
 * Allocates: never.  Context: the loop's thread.
 */
LR_API void lr_loop_update_time(struct lr_loop *loop);

/*
 * lr_loop_fd - a file descriptor that is readable when completions or
 * deferred kernel task work wait on the ring; watch it level-triggered for
 * EPOLLIN and call lr_loop_process() when it fires. It is an eventfd
 * registered with the ring, not the ring fd itself: under DEFER_TASKRUN a
 * sleeping epoll on the ring fd is not woken for deferred work. The eventfd
 * is signalled only after the first call to this function, so call it before
 * adding the fd to your poller. The fd belongs to the loop; do not close it.
 * Allocates: never.  Context: the loop's thread (the value never changes).
 */
LR_API int lr_loop_fd(const struct lr_loop *loop);

/*
 * lr_loop_timeout_ms - milliseconds until the loop next needs
 * lr_loop_process() for its own timers: 0 if work is ready now, -1 if no timer
 * is armed. Measured from the current time (not the cached clock), so a host
 * may ask again after any wakeup of its own. Never later than the earliest
 * timer deadline; it may be earlier (the wheel wakes up to move far timers
 * down a level).
 * Allocates: never.  Context: the loop's thread.
 */
LR_API int lr_loop_timeout_ms(const struct lr_loop *loop);

/*
 * lr_loop_process - one non-blocking pass for a foreign event loop: run the
 * kernel's deferred work, reap every completion, run expired timers and
 * deferred calls, flush output and submit. Never blocks.
 * Returns: the number of completions reaped (>= 0), or a negative error if the
 * ring failed.
 * Allocates: never.  Context: the loop's thread, not from a callback.
 */
LR_API int lr_loop_process(struct lr_loop *loop);

#ifdef __cplusplus
}
#endif
#endif
