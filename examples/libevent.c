/* SPDX-License-Identifier: MIT */
/*
 * libevent.c - leasering inside a libevent loop.
 *
 *     example-libevent redis://127.0.0.1:6379 2500 ex1-
 *
 * event_base_dispatch() is the only loop that sleeps. leasering is driven by
 * two events: EV_READ|EV_PERSIST on lr_loop_fd() and a timer (evtimer) armed
 * from lr_loop_timeout_ms(). Either one calls lr_loop_process(), and the
 * timer is re-armed after every call. A second timer is the host's own work:
 * after RUN_MS it starts the shutdown (common.h); when the manager has closed,
 * the loop is broken and the events freed.
 */
#include <event2/event.h>

#include "common.h"

struct host {
    struct example ex;
    struct event_base *base;
    struct event *fd_watch; /* lr_loop_fd() readable */
    struct event *timeout;  /* lr_loop_timeout_ms() expired */
    struct event *run_timer;
};

/* Arm the timer for leasering's next deadline (-1: none). */
static void rearm(struct host *h)
{
    int ms = lr_loop_timeout_ms(h->ex.loop);
    if (ms < 0) {
        evtimer_del(h->timeout);
        return;
    }
    struct timeval tv = {.tv_sec = ms / 1000, .tv_usec = ms % 1000 * 1000};
    /* libevent's clock is cached while callbacks run: do not fire early */
    event_base_update_cache_time(h->base);
    evtimer_add(h->timeout, &tv);
}

static void process(struct host *h)
{
    int rc = lr_loop_process(h->ex.loop);
    if (rc < 0)
        example_fatal(&h->ex, "lr_loop_process", rc);
    if (h->ex.finished) {
        event_base_loopbreak(h->base); /* the manager is closed */
        return;
    }
    rearm(h);
}

static void on_readable(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    process(arg); /* one wakeup may stand for many completions */
}

static void on_timeout(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    process(arg);
}

static void on_run_over(evutil_socket_t fd, short what, void *arg)
{
    struct host *h = arg;
    (void)fd;
    (void)what;
    example_stop(&h->ex); /* host code calling leasering between passes */
    rearm(h); /* our call queued work: lr_loop_timeout_ms() is now 0 */
}

int main(int argc, char **argv)
{
    static struct host h;
    if (example_parse(&h.ex, argc, argv) < 0)
        return 2;
    if (example_start(&h.ex) < 0)
        return 1;

    struct timeval run = {.tv_sec = h.ex.run_ms / 1000, .tv_usec = h.ex.run_ms % 1000 * 1000};
    h.base = event_base_new();
    if (h.base) {
        /* lr_loop_fd() first: the eventfd is only signalled once it was asked for. */
        h.fd_watch =
            event_new(h.base, lr_loop_fd(h.ex.loop), EV_READ | EV_PERSIST, on_readable, &h);
        h.timeout = evtimer_new(h.base, on_timeout, &h);
        h.run_timer = evtimer_new(h.base, on_run_over, &h);
    }
    if (!h.base || !h.fd_watch || !h.timeout || !h.run_timer || event_add(h.fd_watch, NULL) < 0 ||
        evtimer_add(h.run_timer, &run) < 0) {
        fprintf(stderr, "%s: libevent setup failed\n", h.ex.prog);
        return 1;
    }
    rearm(&h); /* the acquires are queued: the timer fires at once */

    if (event_base_dispatch(h.base) < 0) {
        fprintf(stderr, "%s: event_base_dispatch failed\n", h.ex.prog);
        return 1;
    }
    event_free(h.fd_watch);
    event_free(h.timeout);
    event_free(h.run_timer);
    event_base_free(h.base);
    return example_finish(&h.ex);
}
