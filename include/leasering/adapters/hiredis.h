/* SPDX-License-Identifier: MIT */
/*
 * leasering/adapters/hiredis.h - run a hiredis redisAsyncContext on a
 * leasering loop, in the shape of hiredis's own adapters (adapters/libuv.h,
 * adapters/libevent.h).
 *
 *     redisAsyncContext *ac = redisAsyncConnect("127.0.0.1", 6379);
 *     if (ac->err) { ...; redisAsyncFree(ac); }
 *     int rc = lr_hiredis_attach(loop, ac);     // before the callbacks below
 *     redisAsyncSetConnectCallback(ac, on_connect);
 *     redisAsyncSetDisconnectCallback(ac, on_disconnect);
 *     redisAsyncCommand(ac, on_reply, NULL, "GET %s", "k");
 *     lr_loop_run(loop);                        // or lr_loop_process() from your loop
 *
 * Header-only, on the public fd-watcher API (leasering/poll.h): libleasering
 * itself does not depend on hiredis; include this after hiredis's headers are
 * on your include path and link -lhiredis yourself. Works with hiredis 0.14
 * (Debian 12) and 1.x; the 1.x timer hook is compiled under HIREDIS_MAJOR.
 *
 * How it maps: one lr_poll per context. addRead/delRead set or clear
 * LR_POLL_IN in its interest mask (idempotent, no syscall: the change reaches
 * the kernel in the loop's flush phase). addWrite on a connected context
 * writes optimistically from the loop's next timer phase (a socket with room
 * needs no POLLOUT round trip); only output that did not fit, and the
 * connect, wait for LR_POLL_OUT; delWrite clears both. A ready fd calls
 * redisAsyncHandleRead (readable, error or hang-up) and then, if the context
 * is still alive, redisAsyncHandleWrite (writable). The watcher is
 * level-triggered, which hiredis needs: it reads at most 16 KiB per event.
 * hiredis >= 1.0: scheduleTimer arms an lr_timer that calls
 * redisAsyncHandleTimeout, so redisAsyncSetTimeout and connect timeouts work.
 * hiredis 0.14 has no timeouts at all: lr_hiredis_set_timeout() gives it a
 * reply timeout of ours (and is redisAsyncSetTimeout on 1.x).
 *
 * Lifetime: hiredis frees a context by itself on errors, from inside
 * redisAsyncHandleRead/Write; its cleanup hook then marks our state dead (the
 * poll callback checks after every hiredis call) and closes the watcher, whose
 * memory is released only once the kernel holds no request for it any more.
 * The fd may be closed by hiredis and its number reused at once: our poll is
 * cancelled by identity, never by fd number.
 *
 * Allocates: one small state block per context, in lr_hiredis_attach (with
 * calloc; freed with free after cleanup). Nothing per command or per event.
 * Threading: the loop's thread only, like everything on the loop.
 */
#ifndef LEASERING_ADAPTERS_HIREDIS_H
#define LEASERING_ADAPTERS_HIREDIS_H

#include <errno.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/time.h>

#include <hiredis/async.h>
#include <hiredis/hiredis.h>

#include <leasering/loop.h>
#include <leasering/poll.h>
#include <leasering/timer.h>

#if defined(HIREDIS_MAJOR) && HIREDIS_MAJOR >= 1
#define LR_HIREDIS_HAS_TIMER 1
#else
#define LR_HIREDIS_HAS_TIMER 0
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* Per-context state (private). */
struct lr__hiredis {
    redisAsyncContext *ac; /* NULL once hiredis ran cleanup: the dead flag */
    struct lr_loop *loop;
    struct lr_poll poll;
    unsigned events; /* LR_POLL_IN / LR_POLL_OUT wanted by hiredis */
    struct lr_timer write_now; /* optimistic write in this iteration's timer phase */
    int in_write;              /* inside our redisAsyncHandleWrite call */
#if LR_HIREDIS_HAS_TIMER
    struct lr_timer timer;
#else
    struct lr_timer guard; /* lr_hiredis_set_timeout on hiredis 0.14: ours */
    uint32_t timeout_ms;
#endif
};

#if !LR_HIREDIS_HAS_TIMER
/*
 * hiredis 0.14 has no timeouts: the guard runs while replies are owed and is
 * pushed back on every read. On expiry the socket is shut down and hiredis
 * reads the end of the stream, so it fails the owed callbacks (NULL reply)
 * and calls the disconnect callback with REDIS_ERR.
 */
static inline void lr__hiredis_guard(struct lr__hiredis *a, int progress)
{
    if (!a->timeout_ms || !a->ac)
        return;
    if (!a->ac->replies.head) {
        lr_timer_stop(&a->guard);
        return;
    }
    if (progress || !lr_timer_is_active(&a->guard)) {
        /* From now, not from the start of the pass (or, from host code,
         * the last pass): the timeout must never be cut short. */
        lr_loop_update_time(a->loop);
        (void)lr_timer_start(&a->guard, lr_loop_now_ms(a->loop) + a->timeout_ms);
    }
}

static inline void lr__hiredis_guard_fired(struct lr_timer *t)
{
    struct lr__hiredis *a = (struct lr__hiredis *)t->data;
    if (!a->ac || !a->ac->replies.head)
        return;
    (void)shutdown(a->poll.fd, SHUT_RDWR);
    redisAsyncHandleRead(a->ac); /* reads EOF: hiredis disconnects and frees */
}
#endif

static inline void lr__hiredis_want(void *privdata, unsigned set, unsigned clear)
{
    struct lr__hiredis *a = (struct lr__hiredis *)privdata;
    if (!a->ac)
        return;
    a->events = (a->events | set) & ~clear;
    (void)lr_poll_start(&a->poll, a->events);
}

static inline void lr__hiredis_add_read(void *privdata)
{
    lr__hiredis_want(privdata, LR_POLL_IN, 0);
}

static inline void lr__hiredis_del_read(void *privdata)
{
    lr__hiredis_want(privdata, 0, LR_POLL_IN);
}

/*
 * New output on a connected socket: write it from the loop's next timer
 * phase (this iteration's, when queued from a reply callback) instead of
 * polling for POLLOUT, which a socket with room always is; that saves a poll
 * round trip per command burst. Only output hiredis could not write at once
 * (it asks again from inside our write call), or the connect (not yet
 * REDIS_CONNECTED), waits for POLLOUT.
 */
static inline void lr__hiredis_add_write(void *privdata)
{
    struct lr__hiredis *a = (struct lr__hiredis *)privdata;
    if (!a->ac)
        return;
#if !LR_HIREDIS_HAS_TIMER
    lr__hiredis_guard(a, 0); /* a command was queued: a reply is owed */
#endif
    if (!a->in_write && (a->ac->c.flags & REDIS_CONNECTED)) {
        if (!lr_timer_is_active(&a->write_now))
            (void)lr_timer_start(&a->write_now, lr_loop_now_ms(a->loop));
        return;
    }
    lr__hiredis_want(privdata, LR_POLL_OUT, 0);
}

static inline void lr__hiredis_del_write(void *privdata)
{
    struct lr__hiredis *a = (struct lr__hiredis *)privdata;
    lr_timer_stop(&a->write_now);
    lr__hiredis_want(privdata, 0, LR_POLL_OUT);
}

/* redisAsyncHandleWrite, marked so that its addWrite means "poll for room". */
static inline void lr__hiredis_write(struct lr__hiredis *a)
{
    a->in_write = 1;
    redisAsyncHandleWrite(a->ac); /* may free the context: a->ac becomes NULL */
    a->in_write = 0;
}

static inline void lr__hiredis_write_now(struct lr_timer *t)
{
    struct lr__hiredis *a = (struct lr__hiredis *)t->data;
    if (a->ac)
        lr__hiredis_write(a);
}

static inline void lr__hiredis_free(struct lr_poll *p)
{
    free(p->data);
}

/* hiredis is about to free the context (and close the fd). */
static inline void lr__hiredis_cleanup(void *privdata)
{
    struct lr__hiredis *a = (struct lr__hiredis *)privdata;
    a->ac->ev.data = NULL;
    a->ac = NULL;
    lr_timer_stop(&a->write_now);
#if LR_HIREDIS_HAS_TIMER
    lr_timer_stop(&a->timer);
#else
    lr_timer_stop(&a->guard);
#endif
    /* Frees @a once no poll request is in flight: never inside this call. */
    (void)lr_poll_close(&a->poll, lr__hiredis_free);
}

static inline void lr__hiredis_ready(struct lr_poll *p, int status, unsigned events)
{
    struct lr__hiredis *a = (struct lr__hiredis *)p->data;
    if (status < 0) {
        /* The poll itself failed (e.g. -EBADF): let hiredis's own read meet
         * the error and disconnect. The watcher is stopped; hiredis's next
         * addRead/addWrite restarts it. */
        a->events = 0;
        events = LR_POLL_IN;
    }
    if (a->ac && (events & (LR_POLL_IN | LR_POLL_ERR | LR_POLL_HUP))) {
        redisAsyncHandleRead(a->ac); /* may free the context: a->ac becomes NULL */
#if !LR_HIREDIS_HAS_TIMER
        if (a->ac)
            lr__hiredis_guard(a, 1);
#endif
    }
    if (a->ac && (events & LR_POLL_OUT))
        lr__hiredis_write(a);
}

#if LR_HIREDIS_HAS_TIMER
static inline void lr__hiredis_timeout(struct lr_timer *t)
{
    struct lr__hiredis *a = (struct lr__hiredis *)t->data;
    if (a->ac)
        redisAsyncHandleTimeout(a->ac);
}

static inline void lr__hiredis_schedule_timer(void *privdata, struct timeval tv)
{
    struct lr__hiredis *a = (struct lr__hiredis *)privdata;
    if (!a->ac)
        return;
    uint64_t ms = (uint64_t)tv.tv_sec * 1000u + ((uint64_t)tv.tv_usec + 999u) / 1000u;
    lr_loop_update_time(a->loop);
    (void)lr_timer_start(&a->timer, lr_loop_now_ms(a->loop) + ms);
}
#endif

/*
 * lr_hiredis_attach - drive @ac's I/O (and, with hiredis >= 1.0, its timers)
 * from @loop. Call it right after redisAsyncConnect*, before
 * redisAsyncSetConnectCallback and before the first command.
 * Returns: 0; -EINVAL a NULL argument; -EEXIST @ac is already attached (to
 * this or any other event library); -EBADF @ac has no socket (its connect
 * failed at once: see ac->err, and redisAsyncFree it yourself); -ENOMEM.
 * On failure @ac is left exactly as it was.
 * Allocates: once (the adapter state).  Context: the loop's thread.
 */
static inline int lr_hiredis_attach(struct lr_loop *loop, redisAsyncContext *ac)
{
    if (!loop || !ac)
        return -EINVAL;
    if (ac->ev.data != NULL)
        return -EEXIST;
    int fd = (int)ac->c.fd;
    if (fd < 0)
        return -EBADF;
    struct lr__hiredis *a = (struct lr__hiredis *)calloc(1, sizeof(*a));
    if (!a)
        return -ENOMEM;
    int rc = lr_poll_init(loop, &a->poll, fd, lr__hiredis_ready);
    if (rc < 0) {
        free(a);
        return rc;
    }
    a->poll.data = a;
    a->ac = ac;
    a->loop = loop;
    lr_timer_init(loop, &a->write_now, lr__hiredis_write_now);
    a->write_now.data = a;
#if LR_HIREDIS_HAS_TIMER
    lr_timer_init(loop, &a->timer, lr__hiredis_timeout);
    a->timer.data = a;
#else
    lr_timer_init(loop, &a->guard, lr__hiredis_guard_fired);
    a->guard.data = a;
#endif
    /* Publish the hooks only now that nothing can fail any more. */
    ac->ev.addRead = lr__hiredis_add_read;
    ac->ev.delRead = lr__hiredis_del_read;
    ac->ev.addWrite = lr__hiredis_add_write;
    ac->ev.delWrite = lr__hiredis_del_write;
    ac->ev.cleanup = lr__hiredis_cleanup;
#if LR_HIREDIS_HAS_TIMER
    ac->ev.scheduleTimer = lr__hiredis_schedule_timer;
#endif
    ac->ev.data = a;
    return 0;
}

/*
 * lr_hiredis_set_timeout - fail the connection when a reply is owed and
 * nothing has been read for @ms milliseconds (0: no timeout, the default;
 * on hiredis 1.x the value is handed to hiredis as it is).
 * hiredis >= 1.0: this is redisAsyncSetTimeout (hiredis's own command
 * timeout, run by our scheduleTimer hook). hiredis 0.14, which has none:
 * the adapter's own guard; on expiry it shuts the socket down, so hiredis
 * calls every owed callback with a NULL reply and the disconnect callback
 * with REDIS_ERR (ac->errstr then names a closed connection, not a timeout).
 * Only replies are timed: an idle connection or a subscriber waiting for
 * messages never times out, and 0.14 has no connect timeout.
 * Returns: 0; -EINVAL @ac is NULL or not attached with lr_hiredis_attach;
 * -ENOMEM hiredis >= 1.0 could not store the timeout.
 * Allocates: never on 0.14.  Context: the loop's thread.
 */
static inline int lr_hiredis_set_timeout(redisAsyncContext *ac, uint32_t ms)
{
    if (!ac || ac->ev.cleanup != lr__hiredis_cleanup || !ac->ev.data)
        return -EINVAL;
#if LR_HIREDIS_HAS_TIMER
    struct timeval tv;
    tv.tv_sec = (time_t)(ms / 1000u);
    tv.tv_usec = (suseconds_t)((ms % 1000u) * 1000u);
    return redisAsyncSetTimeout(ac, tv) == REDIS_OK ? 0 : -ENOMEM;
#else
    struct lr__hiredis *a = (struct lr__hiredis *)ac->ev.data;
    a->timeout_ms = ms;
    if (!ms)
        lr_timer_stop(&a->guard);
    else
        lr__hiredis_guard(a, 1);
    return 0;
#endif
}

#ifdef __cplusplus
}
#endif
#endif
