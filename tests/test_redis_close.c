/* SPDX-License-Identifier: MIT */
/*
 * test_redis_close.c - lr_manager_close() on a Redis manager completes within
 * a bound whatever the store does: the server paused (SIGSTOP: the kernel
 * still holds the TCP connection) or a silent proxy in between (a partition:
 * nothing answers, nothing is refused). Each is tried with the close issued
 * while a renewal is in flight, while a release is in flight, after the
 * lease was lost, and while a reconnect is stuck in its handshake.
 */
#include <errno.h>
#include <stdlib.h>

#include <leasering.h>
#include "fault/proxy.h"
#include "harness.h"
#include "proc.h"
#include "recorder.h"
#include "redis_server.h"

#define TTL_MS 1500u
#define REQ_TIMEOUT_MS 200u
/* What a close may take: its requests are abandoned, so only the kernel's
 * socket close and the loop's next pass stand between it and done. */
#define CLOSE_BOUND_MS (REQ_TIMEOUT_MS + 100u)

enum fault { PAUSE, SILENCE };
enum when { RENEWING, RELEASING, LOST, RECONNECTING };

static int closed_flag;

static void on_closed(struct lr_manager *m, void *arg)
{
    (void)m;
    (void)arg;
    closed_flag = 1;
    lr_loop_stop(loop);
}

static void never(struct lr_timer *t)
{
    lr_loop_stop(t->loop);
}

/* One scenario: hold a lease on @s (through @p when given), break the store
 * with @f, reach @w, close. Returns how long the close took (ms), or -1 if it
 * did not complete within 10 s. */
static int64_t close_time(struct redis_server *s, struct fproxy *p, enum fault f, enum when w)
{
    rec_setup();
    char u[96];
    snprintf(u, sizeof(u), "redis://127.0.0.1:%d", p ? fproxy_port(p) : s->port);
    struct lr_manager_opts o = {.ttl_ms = TTL_MS, .cbs = &rec_cbs,
                                .request_timeout_ms = REQ_TIMEOUT_MS};
    struct lr_manager *m = NULL;
    if (lr_manager_new(&m, loop, u, &o) < 0)
        return -2;
    static struct lr_lease l;
    static int cases;
    char name[32];
    snprintf(name, sizeof(name), "close:%d", ++cases); /* the last one may still be held */
    if (lr_lease_init(m, &l, name, NULL) < 0 || lr_lease_acquire(&l, 2000) < 0)
        return -2;
    run_until(EV_ACQ, 2000);
    if (lr_lease_state(&l) != LR_LEASE_HELD) {
        printf("     not acquired: state %d, %s\n", (int)lr_lease_state(&l),
               lr_err_name(lr_lease_last_error(&l)));
        return -2;
    }
    if (f == PAUSE)
        redis_server_pause(s);
    else
        fproxy_silence(p, true);
    if (w == RENEWING) {
        /* a renewal is sent (every third of the TTL) and unanswered */
        uint64_t r = lr_manager_stats(m)->renew_requests;
        uint64_t t0 = proc_now_ms();
        while (lr_manager_stats(m)->renew_requests == r && proc_now_ms() - t0 < TTL_MS)
            run_until(0, 10);
        run_until(0, REQ_TIMEOUT_MS / 4);
    } else if (w == RELEASING) {
        lr_lease_release(&l);
        run_until(0, 20); /* the release is sent */
    } else if (w == LOST) {
        run_until(EV_LOST, 2 * TTL_MS);
        if (lr_lease_state(&l) != LR_LEASE_LOST)
            return -3;
    } else {
        /* a renewal times out, the connection is dropped and made again
         * (the kernel still completes TCP handshakes); its handshake goes
         * unanswered */
        uint64_t t0 = proc_now_ms();
        while (!lr_manager_stats(m)->request_timeouts && proc_now_ms() - t0 < 2 * TTL_MS)
            run_until(0, 10);
        if (!lr_manager_stats(m)->request_timeouts)
            return -3;
        run_until(0, 150);
    }
    closed_flag = 0;
    struct lr_timer cap;
    lr_timer_init(loop, &cap, never);
    lr_loop_update_time(loop);
    uint64_t t0 = proc_now_ms();
    lr_timer_start(&cap, lr_loop_now_ms(loop) + 10000);
    lr_manager_close(m, on_closed, NULL);
    lr_loop_run(loop);
    lr_timer_stop(&cap);
    int64_t took = closed_flag ? (int64_t)(proc_now_ms() - t0) : -1;
    printf("     %s, close %s: %lld ms\n", f == PAUSE ? "paused" : "silent proxy",
           w == RENEWING    ? "with a renewal in flight"
           : w == RELEASING ? "with a release in flight"
           : w == LOST      ? "after the lease was lost"
                            : "while reconnecting",
           (long long)took);
    if (f == PAUSE)
        redis_server_resume(s);
    else
        fproxy_silence(p, false);
    if (!closed_flag) {
        /* let it finish against a live store, so the next case starts clean */
        run_until(0, 3000);
        if (!closed_flag)
            return -1; /* it cannot be freed: the test fails and the run ends */
    }
    lr_lease_deinit(&l);
    lr_manager_free(m);
    return took;
}

static void each_moment(enum fault f)
{
    struct redis_server s;
    CHECK_OK(redis_server_start(&s, NULL));
    struct fproxy *p = NULL;
    if (f == SILENCE)
        CHECK_OK(fproxy_start(&p, s.port));
    for (int w = RENEWING; w <= RECONNECTING; w++) {
        int64_t took = close_time(&s, p, f, (enum when)w);
        CHECK(took >= 0);
        CHECK(took <= CLOSE_BOUND_MS);
    }
    fproxy_free(p);
    redis_server_destroy(&s);
}

TEST(close_with_the_server_paused)
{
    each_moment(PAUSE);
}

TEST(close_behind_a_silent_proxy)
{
    each_moment(SILENCE);
}

TESTS(T(close_with_the_server_paused), T(close_behind_a_silent_proxy))
