/* SPDX-License-Identifier: MIT */
/*
 * leasering/poll.h - watch any file descriptor's readiness on the loop.
 *
 * An lr_poll puts an fd-based library (hiredis, a pipe, a signalfd, a socket
 * someone else reads and writes) on leasering's loop, in the spirit of
 * libuv's uv_poll_t: the struct is the caller's, embedded wherever it likes;
 * starting, changing the mask, stopping and closing allocate nothing.
 *
 * Semantics: level-triggered. While the interest mask is non-empty the
 * callback runs once per loop iteration in which the fd is ready for one of
 * the wanted events, with the events that are ready; whoever does the I/O need
 * not drain the fd (it is re-polled, and fires again if data is still
 * queued). Internally each wakeup is a one-shot IORING_OP_POLL_ADD, re-armed
 * in the flush phase while interest remains, and changed in place with a poll
 * update when the mask changes while armed (multishot poll is edge-triggered
 * and level mode is refused by the kernel, so neither is used). Requests are
 * cancelled by their own identity, never by fd number, so closing the fd and
 * reusing its number right away is safe.
 *
 * Lifetime: the kernel may still hold a poll request after lr_poll_stop().
 * Free the struct (or reuse it) only after lr_poll_close()'s callback has run:
 * it runs once no request for the watcher is in flight any more, on a later
 * loop phase (a pass or two later, whatever the fd does), never inside
 * lr_poll_close(). Closing the fd itself is allowed
 * at any time after lr_poll_stop()/lr_poll_close() (an in-flight poll holds
 * its own file reference and is cancelled by identity).
 *
 * Event bits are poll(2)'s: LR_POLL_IN == POLLIN and so on.
 *
 * Threading: the loop's thread only; callbacks run inside lr_loop_run() or
 * lr_loop_process(), never inside the call that scheduled them.
 */
#ifndef LEASERING_POLL_H
#define LEASERING_POLL_H

#include <leasering/common.h>

#ifdef __cplusplus
extern "C" {
#endif

struct lr_loop;
struct lr_poll;

/* Interest and ready events (the values of poll(2)'s bits). */
enum {
    LR_POLL_IN = 0x001,     /* readable (POLLIN) */
    LR_POLL_PRI = 0x002,    /* urgent data (POLLPRI) */
    LR_POLL_OUT = 0x004,    /* writable (POLLOUT) */
    LR_POLL_ERR = 0x008,    /* error (POLLERR): always reported, never asked for */
    LR_POLL_HUP = 0x010,    /* hang-up (POLLHUP): always reported, never asked for */
    LR_POLL_RDHUP = 0x2000, /* peer shut down writing (POLLRDHUP) */
};

/*
 * The readiness callback. @status is 0 and @events the ready events (a subset
 * of the interest mask, plus LR_POLL_ERR/LR_POLL_HUP), or @status is a
 * negative error from the kernel (e.g. -EBADF: not a pollable fd) and
 * @events 0; after an error the watcher is stopped (start it again to retry).
 * The callback may start, stop or close this or any other watcher.
 */
typedef void (*lr_poll_cb)(struct lr_poll *p, int status, unsigned events);
/* Runs once, after lr_poll_close(), when the struct may be freed. */
typedef void (*lr_poll_close_cb)(struct lr_poll *p);

struct lr_poll {
    void *data; /* yours */
    /* private */
    struct lr__op poll_op; /* the one-shot POLL_ADD */
    struct lr__op ctl_op;  /* its cancel or poll update */
    struct lr__task sync;  /* flush-phase work: arm, update, remove, close callback */
    struct lr_loop *loop;
    lr_poll_cb cb;
    lr_poll_close_cb close_cb;
    int fd;
    unsigned want;  /* interest mask */
    unsigned armed; /* mask of the poll in flight (0: none, or being removed; ~0u: unknown) */
    uint8_t state;
    uint8_t removing; /* a cancel of the poll in flight was sent */
};

/*
 * lr_poll_init - prepare @p to watch @fd on @loop with callback @cb. The
 * watcher starts stopped. @fd stays the caller's: closing it is the caller's
 * business (see Lifetime above).
 * Returns: 0; -EINVAL for a NULL argument or a negative @fd.
 * Allocates: never.  Context: the loop's thread.
 */
LR_API int lr_poll_init(struct lr_loop *loop, struct lr_poll *p, int fd, lr_poll_cb cb);

/*
 * lr_poll_start - set the interest mask to @events (LR_POLL_IN, LR_POLL_OUT,
 * LR_POLL_PRI, LR_POLL_RDHUP), replacing the previous one; 0 stops. Calling
 * it again with another mask changes the mask; with the same mask it does
 * nothing, so it is safe to call from hooks that must be idempotent. The
 * request reaches the kernel in this iteration's flush phase.
 * Returns: 0; -EINVAL unknown bits, or @p is closing or was never initialised.
 * Allocates: never.  Context: the loop's thread, callbacks included.
 */
LR_API int lr_poll_start(struct lr_poll *p, unsigned events);

/*
 * lr_poll_stop - clear the interest mask: no callback runs after this returns,
 * even for a readiness the kernel already reported. Idempotent.
 * Allocates: never.  Context: the loop's thread, callbacks included.
 */
LR_API void lr_poll_stop(struct lr_poll *p);

/*
 * lr_poll_events - the current interest mask (0 when stopped or closing).
 */
LR_API unsigned lr_poll_events(const struct lr_poll *p);

/*
 * lr_poll_close - stop @p for good and call @cb (may be NULL) once nothing of
 * it is in flight in the kernel; from then on (lr_poll_is_closed() says 1)
 * the struct may be freed or initialised again. Never calls @cb from inside
 * lr_poll_close itself. Closing twice is an error.
 * Returns: 0; -EINVAL @p is already closing/closed or was never initialised.
 * Allocates: never.  Context: the loop's thread, callbacks included.
 */
LR_API int lr_poll_close(struct lr_poll *p, lr_poll_close_cb cb);

/*
 * lr_poll_is_closed - 1 once a close has completed (the close callback has
 * run or is running), else 0.
 */
LR_API int lr_poll_is_closed(const struct lr_poll *p);

#ifdef __cplusplus
}
#endif
#endif
