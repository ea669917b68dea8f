/* SPDX-License-Identifier: MIT */
/*
 * loop_int.h - the loop's internals, shared with net.c and the tests.
 *
 * Every io_uring request carries, as user_data, a pointer to a struct lr__op
 * embedded in the request's owner; completion dispatch is one indirect call.
 * An op counts its in-flight CQEs (a multishot request keeps one until a CQE
 * without IORING_CQE_F_MORE), so an owner knows when it may be freed.
 */
#ifndef LR_LOOP_INT_H
#define LR_LOOP_INT_H

#include <liburing.h>
#include <stdbool.h>

#include <leasering/loop.h>
#include "list.h"
#include "wheel_int.h"

/* struct lr__op and struct lr__task are defined in <leasering/common.h>,
 * because public caller-owned structs embed them. */
typedef void (*lr__op_fn)(struct lr__op *op, int res, uint32_t cqe_flags);

struct lr_loop {
    struct io_uring ring;
    unsigned ring_flags;      /* the IORING_SETUP_* flags the ring got */
    uint64_t now_ms;          /* cached clock */
    uint64_t now_ns;
    bool stop;
    bool running;
    bool processing;          /* inside lr_loop_process */
    unsigned sqes_queued;     /* prepared since the last submit */
    uint64_t iterations;
    struct lr__wheel wheel;
    struct lr_list deferred;  /* lr__task.link */
    struct lr_list flushq;    /* lr__task.link */
    /* Provided receive buffers (buffer group 0). */
    struct io_uring_buf_ring *br;
    size_t br_bytes;
    char *bufs;
    size_t bufs_bytes;
    unsigned buf_count;
    unsigned buf_size;
    unsigned buf_pending;     /* buffers handed back but not yet published */
    int event_fd;             /* registered with the ring; what lr_loop_fd() returns */
};

#define LR_BGID 0

/* Get an SQE, submitting first if the SQ is full; NULL only if the kernel
 * refuses the submit. The SQE's user_data is set to @op and op->inflight is
 * incremented. */
struct io_uring_sqe *lr__loop_sqe(struct lr_loop *loop, struct lr__op *op);

/* Schedule @t for the next deferred phase (no-op if already scheduled). */
void lr__loop_defer(struct lr_loop *loop, struct lr__task *t);
/* Schedule @t for the next flush phase (no-op if already scheduled). */
void lr__loop_want_flush(struct lr_loop *loop, struct lr__task *t);
/* Unschedule @t; idempotent. */
static inline void lr__task_cancel(struct lr__task *t)
{
    lr_list_unlink(&t->link);
}
static inline void lr__task_init(struct lr__task *t, void (*run)(struct lr__task *t))
{
    lr_list_init(&t->link);
    t->run = run;
}

/*
 * The cached clock, refreshed first when called from outside a loop pass
 * (host code of an embedding program may have slept in its own poll since the
 * last pass: a stale clock would timestamp requests in the past). Inside a
 * pass the per-iteration cache is used as is.
 */
void lr__loop_clock_update(struct lr_loop *loop);
static inline void lr__loop_clock_outside(struct lr_loop *loop)
{
    if (!loop->running && !loop->processing)
        lr__loop_clock_update(loop);
}

/*
 * Mark @t urgent: when a pass begins, the urgent timers that expired before
 * it run first, before any completion is reaped and before every other
 * expired timer (which waits for the pass's second timer phase). The lease
 * core marks its timers so, after a stall, every lease past its validity is
 * declared lost before any reply or other callback of that pass. Set after
 * lr_timer_init.
 */
static inline void lr__timer_set_urgent(struct lr_timer *t)
{
    t->urgent = 1;
}

/* Receive buffer @bid's address; return it to the kernel when done. */
static inline char *lr__loop_buf(struct lr_loop *loop, unsigned bid)
{
    return loop->bufs + (size_t)bid * loop->buf_size;
}
void lr__loop_buf_return(struct lr_loop *loop, unsigned bid);

#endif
