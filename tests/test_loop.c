/* SPDX-License-Identifier: MIT */
/*
 * test_loop.c - the loop on the real clock: timers fire on time and never
 * early, deferred calls run on the next pass, lr_loop_process never blocks,
 * lr_loop_stop from a callback, ten times the ring size of no-ops at once,
 * and a plain epoll loop driving leasering through lr_loop_fd /
 * lr_loop_timeout_ms / lr_loop_process with DEFER_TASKRUN on.
 */
#include <errno.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <leasering.h>
#include "harness.h"
#include "loop_int.h"

static uint64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* ---- timers on the real clock ---- */

#define NREAL 200
static int64_t lateness_ns[NREAL];
static int real_fired;

static void real_cb(struct lr_timer *t)
{
    uint64_t deadline_ns = lr_timer_deadline(t) * 1000000u;
    lateness_ns[real_fired++] = (int64_t)(mono_ns() - deadline_ns);
    if (real_fired == NREAL)
        lr_loop_stop(t->loop);
}

static void run_real_clock(unsigned flags, const char *label)
{
    struct lr_loop_opts o = {.flags = flags};
    struct lr_loop *loop;
    CHECK_OK(lr_loop_new(&loop, &o));
    static struct lr_timer ts[NREAL];
    real_fired = 0;
    uint64_t now = lr_loop_now_ms(loop);
    CHECK(now > 0);
    for (int i = 0; i < NREAL; i++) {
        lr_timer_init(loop, &ts[i], real_cb);
        CHECK_OK(lr_timer_start(&ts[i], now + 2 + (uint64_t)(i * 7 % 300)));
    }
    CHECK_OK(lr_loop_run(loop));
    CHECK_EQ(real_fired, NREAL);
    qsort(lateness_ns, NREAL, sizeof(lateness_ns[0]), cmp_i64);
    printf("     %s: lateness vs deadline: min %.3f ms, p50 %.3f ms, p99 %.3f ms, max %.3f ms\n",
           label, lateness_ns[0] / 1e6, lateness_ns[NREAL / 2] / 1e6,
           lateness_ns[NREAL * 99 / 100] / 1e6, lateness_ns[NREAL - 1] / 1e6);
    CHECK(lateness_ns[0] >= 0); /* never early */
    /* On time: within the deadline's tick in the typical case. The bound on
     * the max is loose only because CI machines are shared. */
    CHECK(lateness_ns[NREAL / 2] < 1000000);
    CHECK(lateness_ns[NREAL - 1] < 50000000);
    lr_loop_free(loop);
}

TEST(real_clock_timers_fire_on_time)
{
    run_real_clock(0, "taskrun flags");
}

TEST(real_clock_timers_fire_on_time_without_taskrun_flags)
{
    run_real_clock(LR_LOOP_NO_TASKRUN_FLAGS, "plain ring");
}

/* ---- timer callbacks acting on timers ---- */

static struct lr_timer ta, tb, tc;
static int fa, fb, fc;
static uint64_t fc_iter[3];

static void cb_a(struct lr_timer *t)
{
    fa++;
    lr_timer_stop(&tb); /* b is due in the same pass: it must not fire */
    (void)t;
}
static void cb_b(struct lr_timer *t)
{
    (void)t;
    fb++;
}
static void cb_c(struct lr_timer *t)
{
    fc_iter[fc] = t->loop->iterations;
    fc++;
    CHECK(!lr_timer_is_active(t));
    if (fc < 3) {
        /* Re-arm with a past deadline: fires next pass, never inside start. */
        CHECK_OK(lr_timer_start(t, lr_loop_now_ms(t->loop) - 5));
        CHECK(lr_timer_is_active(t));
        CHECK_EQ(fc, fc_iter[fc - 1] == t->loop->iterations ? fc : -1);
    } else {
        lr_loop_stop(t->loop);
    }
}

TEST(timer_callbacks_start_and_stop_timers)
{
    struct lr_loop *loop;
    CHECK_OK(lr_loop_new(&loop, NULL));
    lr_timer_init(loop, &ta, cb_a);
    lr_timer_init(loop, &tb, cb_b);
    lr_timer_init(loop, &tc, cb_c);
    struct lr_timer never;
    CHECK_ERR(lr_timer_start(&(struct lr_timer){0}, 5), -EINVAL);
    lr_timer_init(loop, &never, cb_b);
    lr_timer_stop(&never); /* stopping an idle timer is harmless */
    uint64_t now = lr_loop_now_ms(loop);
    fa = fb = fc = 0;
    CHECK_OK(lr_timer_start(&ta, now + 3));
    CHECK_OK(lr_timer_start(&tb, now + 3));
    CHECK_OK(lr_timer_start(&tc, now + 6));
    CHECK_OK(lr_timer_start(&tc, now + 8)); /* re-start moves it */
    CHECK_EQ(lr_timer_deadline(&tc), now + 8);
    CHECK_OK(lr_loop_run(loop));
    CHECK_EQ(fa, 1);
    CHECK_EQ(fb, 0);
    CHECK_EQ(fc, 3);
    /* A timer re-armed in the past never fires inside start, nor again in
     * the same timer phase; a pass has two (before and after reaping), so
     * three firings span at least two passes. */
    CHECK(fc_iter[2] > fc_iter[0]);
    lr_loop_free(loop);
}

/* ---- deferred calls ---- */

static int d1, d2;
static struct lr__task task1, task2;
static uint64_t d1_iter, d2_iter;

static struct lr_loop *dloop;

static void run2b(struct lr__task *t)
{
    (void)t;
    d2++;
    d2_iter = dloop->iterations;
    lr_loop_stop(dloop);
}

static void run1(struct lr__task *t)
{
    (void)t;
    d1++;
    d1_iter = dloop->iterations;
    lr__loop_defer(dloop, &task2); /* queued during the phase: next pass */
    CHECK_EQ(d2, 0);
}

TEST(deferred_calls_run_on_the_next_pass)
{
    CHECK_OK(lr_loop_new(&dloop, NULL));
    d1 = d2 = 0;
    lr__task_init(&task1, run1);
    lr__task_init(&task2, run2b);
    lr__loop_defer(dloop, &task1);
    lr__loop_defer(dloop, &task1); /* idempotent */
    CHECK_EQ(d1, 0);                /* never inline */
    CHECK_EQ(lr_loop_timeout_ms(dloop), 0);
    CHECK_OK(lr_loop_run(dloop));
    CHECK_EQ(d1, 1);
    CHECK_EQ(d2, 1);
    CHECK(d2_iter == d1_iter + 1);
    lr__task_cancel(&task1);
    lr_loop_free(dloop);
}

/* ---- lr_loop_process never blocks; stop from a callback ---- */

static void noop_cb(struct lr_timer *t)
{
    (void)t;
}

TEST(process_never_blocks)
{
    struct lr_loop *loop;
    CHECK_OK(lr_loop_new(&loop, NULL));
    CHECK_EQ(lr_loop_timeout_ms(loop), -1);
    struct lr_timer t;
    lr_timer_init(loop, &t, noop_cb);
    CHECK_OK(lr_timer_start(&t, lr_loop_now_ms(loop) + 10000));
    int to = lr_loop_timeout_ms(loop);
    CHECK(to > 0 && to <= 10000);
    uint64_t t0 = mono_ns();
    for (int i = 0; i < 100; i++)
        CHECK(lr_loop_process(loop) >= 0);
    uint64_t el = mono_ns() - t0;
    printf("     100 idle lr_loop_process calls took %.3f ms\n", el / 1e6);
    CHECK(el < 500000000ull);
    CHECK(lr_timer_is_active(&t));
    /* Between passes the timeout counts from now, not from the last pass:
     * a host that slept for its own reasons must not sleep the time again. */
    CHECK_OK(lr_timer_start(&t, lr_loop_now_ms(loop) + 60));
    CHECK(lr_loop_process(loop) >= 0);
    usleep(80 * 1000);
    CHECK_EQ(lr_loop_timeout_ms(loop), 0);
    lr_loop_free(loop);
}

static void stop_cb(struct lr_timer *t)
{
    lr_loop_stop(t->loop);
}

TEST(stop_from_callback_and_before_run)
{
    struct lr_loop *loop;
    CHECK_OK(lr_loop_new(&loop, NULL));
    struct lr_timer t, far;
    lr_timer_init(loop, &t, stop_cb);
    lr_timer_init(loop, &far, noop_cb);
    CHECK_OK(lr_timer_start(&far, lr_loop_now_ms(loop) + 60000));
    CHECK_OK(lr_timer_start(&t, lr_loop_now_ms(loop) + 5));
    uint64_t t0 = mono_ns();
    CHECK_OK(lr_loop_run(loop));
    CHECK(mono_ns() - t0 < 5000000000ull);
    /* A stop while not running makes the next run return at once. */
    lr_loop_stop(loop);
    CHECK_OK(lr_loop_run(loop));
    lr_loop_free(loop);
}

/* ---- ten times the ring size of no-ops at once ---- */

struct nop_owner {
    struct lr__op op;
    int done;
    int bad;
    struct lr_loop *loop;
    int want;
};

static void nop_complete(struct lr__op *op, int res, uint32_t flags)
{
    struct nop_owner *o = lr_container_of(op, struct nop_owner, op);
    (void)flags;
    if (res != 0)
        o->bad++;
    if (++o->done == o->want)
        lr_loop_stop(o->loop);
}

TEST(ten_times_ring_size_of_nops)
{
    struct lr_loop_opts opts = {.ring_entries = 64};
    struct lr_loop *loop;
    CHECK_OK(lr_loop_new(&loop, &opts));
    struct nop_owner o = {.op = {.complete = nop_complete}, .loop = loop, .want = 640};
    for (int i = 0; i < o.want; i++) {
        struct io_uring_sqe *sqe = lr__loop_sqe(loop, &o.op);
        CHECK(sqe != NULL);
        io_uring_prep_nop(sqe);
        io_uring_sqe_set_data(sqe, &o.op);
    }
    CHECK_EQ(o.op.inflight, 640);
    CHECK_OK(lr_loop_run(loop));
    CHECK_EQ(o.done, 640);
    CHECK_EQ(o.bad, 0);
    CHECK_EQ(o.op.inflight, 0);
    lr_loop_free(loop);
}

/* ---- a plain epoll loop drives leasering ---- */

struct recv_owner {
    struct lr__op op;
    char buf[16];
    int res;
    int done;
};

static void recv_done(struct lr__op *op, int res, uint32_t flags)
{
    struct recv_owner *r = lr_container_of(op, struct recv_owner, op);
    (void)flags;
    r->res = res;
    r->done = 1;
}

static int sp[2];
static int ticks;
static struct lr_timer writer, ticker;

static void writer_cb(struct lr_timer *t)
{
    (void)t;
    CHECK(write(sp[1], "ping", 4) == 4);
}

static void ticker_cb(struct lr_timer *t)
{
    if (++ticks < 5)
        lr_timer_start(t, lr_loop_now_ms(t->loop) + 3);
}

TEST(epoll_drives_the_loop_with_defer_taskrun)
{
    struct lr_loop *loop;
    CHECK_OK(lr_loop_new(&loop, NULL));
    CHECK(loop->ring_flags & IORING_SETUP_DEFER_TASKRUN);
    CHECK_OK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp));
    struct recv_owner r = {.op = {.complete = recv_done}};
    struct io_uring_sqe *sqe = lr__loop_sqe(loop, &r.op);
    CHECK(sqe != NULL);
    io_uring_prep_recv(sqe, sp[0], r.buf, sizeof(r.buf), 0);
    io_uring_sqe_set_data(sqe, &r.op);
    ticks = 0;
    lr_timer_init(loop, &writer, writer_cb);
    lr_timer_init(loop, &ticker, ticker_cb);
    CHECK_OK(lr_timer_start(&writer, lr_loop_now_ms(loop) + 30));
    CHECK_OK(lr_timer_start(&ticker, lr_loop_now_ms(loop) + 3));
    CHECK(lr_loop_process(loop) >= 0); /* submits the recv */

    int ep = epoll_create1(EPOLL_CLOEXEC);
    CHECK(ep >= 0);
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = lr_loop_fd(loop)};
    CHECK_OK(epoll_ctl(ep, EPOLL_CTL_ADD, lr_loop_fd(loop), &ev));
    int fd_wakeups = 0, timeouts = 0;
    uint64_t t0 = mono_ns();
    while ((!r.done || ticks < 5) && mono_ns() - t0 < 5000000000ull) {
        struct epoll_event got;
        int n = epoll_wait(ep, &got, 1, lr_loop_timeout_ms(loop));
        CHECK(n >= 0 || errno == EINTR);
        if (n > 0)
            fd_wakeups++;
        else
            timeouts++;
        CHECK(lr_loop_process(loop) >= 0);
    }
    printf("     epoll: %d ring-fd wakeups, %d timeouts\n", fd_wakeups, timeouts);
    CHECK(r.done);
    CHECK_EQ(r.res, 4);
    CHECK(!memcmp(r.buf, "ping", 4));
    CHECK_EQ(ticks, 5);
    CHECK(fd_wakeups >= 1); /* the completion woke epoll through the ring fd */
    CHECK(timeouts >= 4);   /* the timers woke it through lr_loop_timeout_ms */

    /* After a pass that took everything, the fd is quiet: no empty wakeup
     * left behind by the pass's own collecting of deferred work. */
    struct recv_owner r2 = {.op = {.complete = recv_done}};
    sqe = lr__loop_sqe(loop, &r2.op);
    CHECK(sqe != NULL);
    io_uring_prep_recv(sqe, sp[0], r2.buf, sizeof(r2.buf), 0);
    io_uring_sqe_set_data(sqe, &r2.op);
    CHECK(lr_loop_process(loop) >= 0); /* submits it */
    CHECK_EQ(write(sp[1], "pong", 4), 4);
    struct epoll_event got;
    CHECK_EQ(epoll_wait(ep, &got, 1, 2000), 1); /* the completion wakes us */
    CHECK(lr_loop_process(loop) >= 1);
    CHECK(r2.done);
    CHECK_EQ(epoll_wait(ep, &got, 1, 0), 0); /* and nothing is left over */
    close(ep);
    close(sp[0]);
    close(sp[1]);
    lr_loop_free(loop);
}

TEST(bad_options_are_refused)
{
    struct lr_loop *loop = (struct lr_loop *)1;
    struct lr_loop_opts o = {.ring_entries = 100};
    CHECK_ERR(lr_loop_new(&loop, &o), -EINVAL);
    CHECK(loop == NULL);
    o = (struct lr_loop_opts){.buf_count = 3};
    CHECK_ERR(lr_loop_new(&loop, &o), -EINVAL);
    o = (struct lr_loop_opts){.buf_size = 1u << 21};
    CHECK_ERR(lr_loop_new(&loop, &o), -EINVAL);
    o = (struct lr_loop_opts){.flags = 1u << 7};
    CHECK_ERR(lr_loop_new(&loop, &o), -EINVAL);
    CHECK_ERR(lr_loop_new(NULL, NULL), -EINVAL);
    CHECK(!strcmp(lr_err_name(LR_ELOST), "LR_ELOST"));
    CHECK(!strcmp(lr_err_name(-ETIMEDOUT), "ETIMEDOUT"));
    CHECK(strstr(lr_strerror(-ECONNREFUSED), "refused") != NULL);
    CHECK(!strcmp(lr_strerror(-4050), "unknown error"));
}

/* A pass that begins late runs the urgent timers that expired before it
 * first, then looks at completions, then runs the other expired timers: after
 * a stall, a lease past its validity is declared lost before any reply or
 * other timer callback of that pass. */
static int order[4], norder;
static void nop_done(struct lr__op *op, int res, uint32_t flags)
{
    (void)op;
    (void)res;
    (void)flags;
    order[norder++] = 2;
}
static void due_cb(struct lr_timer *t)
{
    order[norder++] = t->urgent ? 1 : 3;
}
TEST(late_pass_runs_expired_timers_before_completions)
{
    for (int mode = 0; mode < 2; mode++) { /* lr_loop_process, then lr_loop_run */
        struct lr_loop *loop;
        CHECK_OK(lr_loop_new(&loop, NULL));
        struct lr_timer plain, due;
        lr_timer_init(loop, &plain, due_cb); /* armed first, due first */
        lr_timer_init(loop, &due, due_cb);
        lr__timer_set_urgent(&due);
        CHECK_OK(lr_timer_start(&plain, lr_loop_now_ms(loop) + 4));
        struct lr__op n = {.complete = nop_done};
        struct io_uring_sqe *sqe = lr__loop_sqe(loop, &n);
        CHECK(sqe != NULL);
        io_uring_prep_nop(sqe);
        io_uring_sqe_set_data(sqe, &n);
        CHECK_OK(lr_timer_start(&due, lr_loop_now_ms(loop) + 5));
        norder = 0;
        CHECK_OK(io_uring_submit(&loop->ring) == 1 ? 0 : -1);
        loop->sqes_queued = 0;
        struct timespec ts = {0, 30 * 1000000}; /* the stall: both are due now */
        nanosleep(&ts, NULL);
        if (mode == 0) {
            CHECK(lr_loop_process(loop) >= 0);
        } else {
            struct lr_timer stop;
            lr_timer_init(loop, &stop, stop_cb);
            CHECK_OK(lr_timer_start(&stop, lr_timer_deadline(&due)));
            CHECK_OK(lr_loop_run(loop)); /* one pass: it stops in its timer phase */
        }
        CHECK_EQ(norder, 3);
        CHECK_EQ(order[0], 1); /* the expired urgent timer first */
        CHECK_EQ(order[1], 2); /* then the completion that was waiting */
        CHECK_EQ(order[2], 3); /* then the other timer, though it was due earlier */
        lr_loop_free(loop);
    }
}

TESTS(T(late_pass_runs_expired_timers_before_completions), T(real_clock_timers_fire_on_time), T(real_clock_timers_fire_on_time_without_taskrun_flags),
      T(timer_callbacks_start_and_stop_timers), T(deferred_calls_run_on_the_next_pass),
      T(process_never_blocks), T(stop_from_callback_and_before_run),
      T(ten_times_ring_size_of_nops), T(epoll_drives_the_loop_with_defer_taskrun),
      T(bad_options_are_refused))
