/* SPDX-License-Identifier: MIT */
/*
 * leasering/timer.h - caller-owned one-shot timers on the loop's wheel.
 *
 * A struct lr_timer lives wherever the caller wants (embedded in a job record,
 * a lease, a connection); the wheel links it intrusively, so starting and
 * stopping allocate nothing and cost O(1). Deadlines are absolute, in
 * lr_loop_now_ms() units. A timer fires once, within one millisecond tick of
 * its deadline (the wheel cascades, at any range), never early, never twice
 * per start. A deadline already past fires on the next loop iteration, never
 * inside lr_timer_start(). Callbacks may start or stop any timer, their own
 * included, and may free the timer's memory after stopping it.
 */
#ifndef LEASERING_TIMER_H
#define LEASERING_TIMER_H

#include <leasering/common.h>

#ifdef __cplusplus
extern "C" {
#endif

struct lr_loop;
struct lr_timer;

typedef void (*lr_timer_cb)(struct lr_timer *t);

struct lr_timer {
    void *data; /* yours */
    /* private */
    struct lr_list wheel_link; /* in a wheel slot, the wheel's ready list, or an expiry batch */
    uint64_t deadline;
    lr_timer_cb cb;
    struct lr_loop *loop;
    uint8_t level;
    uint8_t where;
    uint8_t urgent; /* runs in a pass's first timer phase, before completions */
    uint16_t slot;
};

/*
 * lr_timer_init - prepare @t for use on @loop with callback @cb. An
 * initialised timer is inactive. Re-initialising an active timer is an error.
 * Allocates: never.  Context: the loop's thread.
 */
LR_API void lr_timer_init(struct lr_loop *loop, struct lr_timer *t, lr_timer_cb cb);

/*
 * lr_timer_start - arm @t to fire once at absolute loop time @deadline_ms.
 * Re-starting an armed timer moves it.
 * Returns: 0, or -EINVAL if @t was never initialised.
 * Allocates: never.  Context: the loop's thread, callbacks included.
 */
LR_API int lr_timer_start(struct lr_timer *t, uint64_t deadline_ms);

/*
 * lr_timer_stop - disarm @t. Idempotent; a stopped timer does not fire, even
 * if it was already due in the current iteration.
 * Allocates: never.  Context: the loop's thread, callbacks included.
 */
LR_API void lr_timer_stop(struct lr_timer *t);

/*
 * lr_timer_is_active - 1 if @t is armed (started and not yet fired or
 * stopped), else 0. Inside its own callback a timer is inactive until
 * started again.  Allocates: never.  Context: the loop's thread.
 */
LR_API int lr_timer_is_active(const struct lr_timer *t);

/* lr_timer_deadline - the deadline @t was last started with. */
LR_API uint64_t lr_timer_deadline(const struct lr_timer *t);

#ifdef __cplusplus
}
#endif
#endif
