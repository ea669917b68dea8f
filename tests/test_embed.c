/* SPDX-License-Identifier: MIT */
/*
 * test_embed.c - a manager driven by a plain epoll loop (lr_loop_fd /
 * lr_loop_timeout_ms / lr_loop_process, never lr_loop_run) against a real
 * redis-server, closed from host code between passes: while connected, and
 * after the server died (reconnect pending). The close must finish on the
 * following passes. On the old loop, the close's cancel requests were queued
 * but not submitted, lr_loop_timeout_ms() said -1 and the fd stayed quiet:
 * a program shutting down after an outage hung forever.
 */
#include <errno.h>
#include <sys/epoll.h>
#include <unistd.h>

#include <leasering.h>
#include "harness.h"
#include "recorder.h"
#include "redis_server.h"

#define NLEASES 50

static int closed_calls;

static void on_closed(struct lr_manager *m, void *arg)
{
    (void)arg;
    closed_calls++;
    lr_manager_free(m);
}

/* One host iteration: sleep in epoll as the library says, then one pass.
 * Returns the timeout epoll was given. */
static int host_pass(int ep, struct lr_loop *lp)
{
    int timeout = lr_loop_timeout_ms(lp);
    struct epoll_event got;
    /* -1 means "sleep until the fd says so": give it 2 s, which fails the test */
    int n = epoll_wait(ep, &got, 1, timeout < 0 || timeout > 2000 ? 2000 : timeout);
    (void)n;
    lr_loop_process(lp);
    return timeout;
}

/* Run host passes until @cond or @ms pass. */
#define HOST_UNTIL(cond, ms)                                                                \
    do {                                                                                    \
        uint64_t t0_ = mono_ns();                                                           \
        while (!(cond) && mono_ns() - t0_ < (uint64_t)(ms) * 1000000u)                      \
            host_pass(ep, loop);                                                            \
    } while (0)

static void close_embedded(int kill_first)
{
    rec_setup();
    struct redis_server s;
    int rc = redis_server_start(&s, NULL);
    CHECK_OK(rc);
    char uri[128];
    snprintf(uri, sizeof(uri), "redis://127.0.0.1:%d?prefix=embed:", s.port);
    struct lr_manager_opts o = {.ttl_ms = 3000, .cbs = &rec_cbs, .max_leases = NLEASES};
    struct lr_manager *m;
    CHECK_OK(lr_manager_new(&m, loop, uri, &o));
    static struct lr_lease ls[NLEASES];
    for (int i = 0; i < NLEASES; i++) {
        char name[16];
        snprintf(name, sizeof(name), "e%d", i);
        CHECK_OK(lr_lease_init(m, &ls[i], name, NULL));
        CHECK_OK(lr_lease_acquire(&ls[i], 2000));
    }
    int ep = epoll_create1(EPOLL_CLOEXEC);
    CHECK(ep >= 0);
    struct epoll_event ev = {.events = EPOLLIN};
    CHECK_OK(epoll_ctl(ep, EPOLL_CTL_ADD, lr_loop_fd(loop), &ev));
    HOST_UNTIL(rec_count(EV_ACQ, NULL) == NLEASES, 3000);
    CHECK_EQ(rec_count(EV_ACQ, NULL), NLEASES);
    if (kill_first) {
        CHECK_OK(redis_server_kill(&s));
        /* renewals fail, the connection is reconnecting */
        HOST_UNTIL(rec_count(EV_JEOP, NULL) > 0, 3000);
        CHECK(rec_count(EV_JEOP, NULL) > 0);
        HOST_UNTIL(0, 300);
    } else {
        /* requests in flight at the moment of the close */
        lr_lease_renew(&ls[0]);
        lr_loop_process(loop);
    }
    closed_calls = 0;
    CHECK_OK(lr_manager_close(m, on_closed, NULL)); /* host code, between passes */
    int first_timeout = lr_loop_timeout_ms(loop);
    uint64_t t0 = mono_ns();
    HOST_UNTIL(closed_calls, 3000);
    double took = (double)(mono_ns() - t0) / 1e6;
    printf("     %s: lr_loop_timeout_ms right after close %d; closed after %.1f ms\n",
           kill_first ? "after an outage" : "connected", first_timeout, took);
    CHECK_EQ(closed_calls, 1);
    CHECK(first_timeout == 0);
    CHECK(took < 1000);
    close(ep);
    redis_server_destroy(&s);
}

TEST(close_between_passes_while_connected)
{
    close_embedded(0);
}

TEST(close_between_passes_after_an_outage)
{
    close_embedded(1);
}

TESTS(T(close_between_passes_while_connected), T(close_between_passes_after_an_outage))
