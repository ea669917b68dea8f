/* SPDX-License-Identifier: MIT */
/*
 * timer.c - the public lr_timer API: glue between caller-owned timers and the
 * loop's wheel (wheel.c). The loop fires expired timers in loop.c.
 */
#include <errno.h>

#include <leasering/timer.h>
#include "loop_int.h"

void lr_timer_init(struct lr_loop *loop, struct lr_timer *t, lr_timer_cb cb)
{
    lr__timer_reset(t);
    t->loop = loop;
    t->cb = cb;
    t->deadline = 0;
    t->urgent = 0;
}

int lr_timer_start(struct lr_timer *t, uint64_t deadline_ms)
{
    if (!t->loop || !t->cb)
        return -EINVAL;
    lr__wheel_insert(&t->loop->wheel, t, deadline_ms);
    return 0;
}

void lr_timer_stop(struct lr_timer *t)
{
    if (t->loop)
        lr__wheel_remove(&t->loop->wheel, t);
}

int lr_timer_is_active(const struct lr_timer *t)
{
    return t->where == LR_TIMER_IN_SLOT || t->where == LR_TIMER_IN_READY ||
           t->where == LR_TIMER_IN_BATCH;
}

uint64_t lr_timer_deadline(const struct lr_timer *t)
{
    return t->deadline;
}
