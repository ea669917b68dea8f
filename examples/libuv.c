/* SPDX-License-Identifier: MIT */
/*
 * libuv.c - leasering inside a libuv loop.
 *
 *     example-libuv redis://127.0.0.1:6379 2500 ex1-
 *
 * uv_run() is the only loop that sleeps. leasering is driven by two handles:
 * a uv_poll_t on lr_loop_fd() (UV_READABLE) and a uv_timer_t armed from
 * lr_loop_timeout_ms(). Either one calls lr_loop_process(), and the timer is
 * re-armed after every call. A second timer is the host's own work: after
 * RUN_MS it starts the shutdown (common.h); when the manager has closed, the
 * handles are closed and uv_run() returns.
 */
#include <uv.h>

#include "common.h"

struct host {
    struct example ex;
    uv_loop_t uv;
    uv_poll_t fd_watch; /* lr_loop_fd() readable */
    uv_timer_t timeout; /* lr_loop_timeout_ms() expired */
    uv_timer_t run_timer;
};

static void on_timeout(uv_timer_t *t);

/* Arm the timer for leasering's next deadline (-1: none). */
static void rearm(struct host *h)
{
    int ms = lr_loop_timeout_ms(h->ex.loop);
    if (ms < 0) {
        uv_timer_stop(&h->timeout);
        return;
    }
    uv_update_time(&h->uv); /* libuv's clock is cached per iteration: do not fire early */
    uv_timer_start(&h->timeout, on_timeout, (uint64_t)ms, 0);
}

static void process(struct host *h)
{
    int rc = lr_loop_process(h->ex.loop);
    if (rc < 0)
        example_fatal(&h->ex, "lr_loop_process", rc);
    if (h->ex.finished) {
        /* The manager is closed: with these closed, uv_run() returns. */
        uv_close((uv_handle_t *)&h->fd_watch, NULL);
        uv_close((uv_handle_t *)&h->timeout, NULL);
        uv_close((uv_handle_t *)&h->run_timer, NULL);
        return;
    }
    rearm(h);
}

static void on_readable(uv_poll_t *p, int status, int events)
{
    struct host *h = p->data;
    (void)events;
    if (status < 0) {
        fprintf(stderr, "%s: uv_poll: %s\n", h->ex.prog, uv_strerror(status));
        exit(1);
    }
    process(h); /* one wakeup may stand for many completions */
}

static void on_timeout(uv_timer_t *t)
{
    process(t->data);
}

static void on_run_over(uv_timer_t *t)
{
    struct host *h = t->data;
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

    int rc = uv_loop_init(&h.uv);
    /* lr_loop_fd() first: the eventfd is only signalled once it was asked for. */
    if (rc == 0)
        rc = uv_poll_init(&h.uv, &h.fd_watch, lr_loop_fd(h.ex.loop));
    if (rc == 0)
        rc = uv_poll_start(&h.fd_watch, UV_READABLE, on_readable);
    if (rc == 0)
        rc = uv_timer_init(&h.uv, &h.timeout);
    if (rc == 0)
        rc = uv_timer_init(&h.uv, &h.run_timer);
    if (rc == 0)
        rc = uv_timer_start(&h.run_timer, on_run_over, h.ex.run_ms, 0);
    if (rc < 0) {
        fprintf(stderr, "%s: libuv: %s\n", h.ex.prog, uv_strerror(rc));
        return 1;
    }
    h.fd_watch.data = h.timeout.data = h.run_timer.data = &h;
    rearm(&h); /* the acquires are queued: the timer fires at once */

    rc = uv_run(&h.uv, UV_RUN_DEFAULT);
    if (rc != 0 || uv_loop_close(&h.uv) != 0) {
        fprintf(stderr, "%s: uv_run: handles left open\n", h.ex.prog);
        return 1;
    }
    return example_finish(&h.ex);
}
