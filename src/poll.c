/* SPDX-License-Identifier: MIT */
/*
 * poll.c - fd readiness watchers (public lr_poll) on one-shot POLL_ADD.
 *
 * Each watcher has at most one POLL_ADD in flight (poll_op) and at most one
 * control request (ctl_op: an ASYNC_CANCEL of the poll, or a poll update
 * that changes the mask in place). Interest changes only record the wanted mask and queue the
 * watcher's sync task; the flush phase turns the difference between the
 * wanted and the armed mask into at most one SQE. A one-shot poll re-armed
 * on each wakeup is level-triggered, which is what hiredis-style readers
 * (one bounded read per event) need. Layer: the loop's; knows no protocol.
 */
#include <errno.h>
#include <poll.h>

#include <leasering/poll.h>
#include "loop_int.h"

enum { P_UNINIT = 0, P_OPEN, P_CLOSING, P_CLOSED };

#define WANTABLE (LR_POLL_IN | LR_POLL_PRI | LR_POLL_OUT | LR_POLL_RDHUP)
#define ALWAYS (LR_POLL_ERR | LR_POLL_HUP | POLLNVAL)

_Static_assert(LR_POLL_IN == POLLIN && LR_POLL_PRI == POLLPRI && LR_POLL_OUT == POLLOUT &&
                   LR_POLL_ERR == POLLERR && LR_POLL_HUP == POLLHUP &&
                   LR_POLL_RDHUP == POLLRDHUP,
               "LR_POLL_* are poll(2)'s bits");

#define from_op(ptr, member) lr_container_of(ptr, struct lr_poll, member)

static void sync_soon(struct lr_poll *p)
{
    lr__loop_want_flush(p->loop, &p->sync);
}

static bool idle(const struct lr_poll *p)
{
    return !p->poll_op.inflight && !p->ctl_op.inflight;
}

/* armed after a control request the kernel refused: no wanted mask equals
 * it, so the next sync sends the remove or the update again. */
#define ARMED_UNKNOWN (~0u)

/* Cancel the poll in flight; false if no SQE could be had.
 * An ASYNC_CANCEL, not a POLL_REMOVE: POLL_REMOVE needs to own the poll,
 * and while a wakeup that did not carry the wanted events (e.g. a signalfd
 * woken by a signal outside its mask) waits for its re-check as deferred
 * task work, it answers -EALREADY and leaves the poll armed -- the re-check
 * then re-arms it and no completion ever comes. A cancel marks the poll
 * cancelled whoever owns it, so the poll completes with -ECANCELED. */
static bool send_remove(struct lr_poll *p)
{
    struct io_uring_sqe *sqe = lr__loop_sqe(p->loop, &p->ctl_op);
    if (!sqe)
        return false;
    io_uring_prep_cancel64(sqe, (uint64_t)(uintptr_t)&p->poll_op, 0);
    io_uring_sqe_set_data(sqe, &p->ctl_op);
    p->removing = 1;
    p->armed = 0;
    return true;
}

/* The flush-phase step: make the kernel's state match p->want. */
static void poll_sync(struct lr__task *t)
{
    struct lr_poll *p = lr_container_of(t, struct lr_poll, sync);
    if (p->state == P_CLOSING) {
        if (idle(p)) {
            p->state = P_CLOSED;
            if (p->close_cb)
                p->close_cb(p); /* may free p: last use */
            return;
        }
        if (p->poll_op.inflight && !p->removing && !p->ctl_op.inflight && !send_remove(p))
            sync_soon(p);
        return; /* the remaining completions queue this task again */
    }
    if (p->state != P_OPEN || p->removing || p->ctl_op.inflight)
        return; /* a completion will queue us again */
    if (!p->poll_op.inflight) {
        if (!p->want)
            return;
        struct io_uring_sqe *sqe = lr__loop_sqe(p->loop, &p->poll_op);
        if (!sqe) {
            p->want = 0;
            p->cb(p, -EAGAIN, 0);
            return;
        }
        io_uring_prep_poll_add(sqe, p->fd, p->want);
        io_uring_sqe_set_data(sqe, &p->poll_op);
        p->armed = p->want;
        return;
    }
    if (p->armed == p->want)
        return;
    if (!p->want) {
        if (!send_remove(p))
            sync_soon(p);
        return;
    }
    /* Change the armed poll's mask in place; the kernel re-checks readiness. */
    struct io_uring_sqe *sqe = lr__loop_sqe(p->loop, &p->ctl_op);
    if (!sqe) {
        sync_soon(p);
        return;
    }
    io_uring_prep_poll_update(sqe, (uint64_t)(uintptr_t)&p->poll_op, 0, p->want,
                              IORING_POLL_UPDATE_EVENTS);
    io_uring_sqe_set_data(sqe, &p->ctl_op);
    p->armed = p->want;
}

static void poll_complete(struct lr__op *op, int res, uint32_t flags)
{
    (void)flags;
    struct lr_poll *p = from_op(op, poll_op);
    p->armed = 0;
    p->removing = 0;
    if (p->state != P_OPEN) {
        sync_soon(p); /* closing: perhaps idle now */
        return;
    }
    if (res == -ECANCELED) {
        if (p->want)
            sync_soon(p);
        return;
    }
    if (res < 0) {
        if (!p->want)
            return;
        p->want = 0;
        p->cb(p, res, 0);
        return;
    }
    unsigned ready = (unsigned)res & (p->want | ALWAYS);
    if (ready)
        p->cb(p, 0, ready); /* may stop or close p; p stays valid until the close callback */
    if (p->state == P_OPEN && p->want)
        sync_soon(p);
}

static void ctl_complete(struct lr__op *op, int res, uint32_t flags)
{
    (void)flags;
    struct lr_poll *p = from_op(op, ctl_op);
    /* -ENOENT: the poll completed first (its completion resets the state).
     * Any other failure (an update answered -EALREADY while a wakeup is
     * being re-checked) changed nothing: the poll is still armed as it was,
     * so the next sync tries again, after the loop ran that re-check. */
    if (res < 0 && res != -ENOENT && p->poll_op.inflight) {
        p->removing = 0;
        p->armed = ARMED_UNKNOWN;
    }
    if (p->state == P_CLOSING || p->armed != p->want)
        sync_soon(p);
}

int lr_poll_init(struct lr_loop *loop, struct lr_poll *p, int fd, lr_poll_cb cb)
{
    if (!loop || !p || !cb || fd < 0)
        return -EINVAL;
    p->poll_op.complete = poll_complete;
    p->poll_op.inflight = 0;
    p->ctl_op.complete = ctl_complete;
    p->ctl_op.inflight = 0;
    lr__task_init(&p->sync, poll_sync);
    p->loop = loop;
    p->cb = cb;
    p->close_cb = NULL;
    p->fd = fd;
    p->want = 0;
    p->armed = 0;
    p->removing = 0;
    p->state = P_OPEN;
    return 0;
}

int lr_poll_start(struct lr_poll *p, unsigned events)
{
    if (!p || p->state != P_OPEN || (events & ~(unsigned)WANTABLE))
        return -EINVAL;
    if (events == p->want)
        return 0;
    p->want = events;
    sync_soon(p);
    return 0;
}

void lr_poll_stop(struct lr_poll *p)
{
    if (p && p->state == P_OPEN && p->want) {
        p->want = 0;
        sync_soon(p);
    }
}

unsigned lr_poll_events(const struct lr_poll *p)
{
    return p && p->state == P_OPEN ? p->want : 0;
}

int lr_poll_close(struct lr_poll *p, lr_poll_close_cb cb)
{
    if (!p || p->state != P_OPEN)
        return -EINVAL;
    p->want = 0;
    p->state = P_CLOSING;
    p->close_cb = cb;
    sync_soon(p);
    return 0;
}

int lr_poll_is_closed(const struct lr_poll *p)
{
    return p && p->state == P_CLOSED;
}
