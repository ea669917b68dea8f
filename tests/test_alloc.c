/* SPDX-License-Identifier: MIT */
/*
 * test_alloc.c - the steady state allocates nothing: a loop with 100,000
 * armed timers (firing and re-arming all the time) and an echo connection
 * ping-ponging runs 1,000 iterations after warm-up with zero libc
 * allocations anywhere in the process. Also: the allocation hook sees every
 * allocation leasering itself makes.
 */
#include <errno.h>

#include <leasering.h>
#include "alloccount.h"
#include "echo.h"
#include "harness.h"
#include "net_int.h"

TEST(counter_sees_libc_allocations)
{
    /* Without this the zero below could be a counter that counts nothing. */
    CHECK(alloccount_selftest());
}

struct hook_counts {
    size_t mallocs;
    size_t frees;
};

static void *hook_malloc(size_t n, void *ud)
{
    ((struct hook_counts *)ud)->mallocs++;
    return malloc(n);
}

static void hook_free(void *p, void *ud)
{
    ((struct hook_counts *)ud)->frees++;
    free(p);
}

TEST(allocator_hook_sees_our_allocations)
{
    struct hook_counts hc = {0};
    CHECK_ERR(lr_set_allocator(hook_malloc, NULL, NULL), -EINVAL);
    CHECK_OK(lr_set_allocator(hook_malloc, hook_free, &hc));
    struct lr_loop *loop;
    CHECK_OK(lr_loop_new(&loop, NULL));
    CHECK(hc.mallocs >= 1);
    lr_loop_free(loop);
    CHECK_EQ(hc.frees, hc.mallocs);
    CHECK_OK(lr_set_allocator(NULL, NULL, NULL));
}

#define NTIMERS 100000
#define WARMUP 200
#define MEASURE 1000

static struct lr_timer timers[NTIMERS];
static uint64_t fired;
static uint64_t seed = 88172645463325252ull;

static void timer_cb(struct lr_timer *t)
{
    fired++;
    seed ^= seed << 13;
    seed ^= seed >> 7;
    seed ^= seed << 17;
    /* Re-arm 1..400 ms out: thousands expire and reschedule every second. */
    lr_timer_start(t, lr_loop_now_ms(t->loop) + 1 + seed % 400);
}

struct pinger {
    struct lr__conn conn;
    struct lr_loop *loop;
    uint64_t start_iter;
    uint64_t stop_after;
    uint64_t pongs;
    int err;
    char msg[64];
};

static void p_send(struct pinger *p)
{
    if (lr__conn_write(&p->conn, p->msg, sizeof(p->msg)) < 0)
        p->err = -ENOBUFS;
}

static void p_connect(struct lr__conn *c, int status)
{
    struct pinger *p = c->data;
    p->err = status;
    if (status == 0)
        p_send(p);
    else
        lr_loop_stop(c->loop);
}

static size_t pending;

static void p_data(struct lr__conn *c, const char *buf, size_t len)
{
    struct pinger *p = c->data;
    (void)buf;
    pending += len;
    while (pending >= sizeof(p->msg)) {
        pending -= sizeof(p->msg);
        p->pongs++;
        p_send(p); /* keep one ping in flight across runs */
        if (c->loop->iterations - p->start_iter >= p->stop_after)
            lr_loop_stop(c->loop);
    }
}

static void p_error(struct lr__conn *c, int err)
{
    ((struct pinger *)c->data)->err = err;
    lr_loop_stop(c->loop);
}

static void p_close(struct lr__conn *c)
{
    lr_loop_stop(c->loop);
}

static const struct lr__conn_cbs pcbs = {
    .on_connect = p_connect, .on_data = p_data, .on_error = p_error, .on_close = p_close};

TEST(steady_state_allocates_nothing)
{
    struct echo_server es;
    CHECK_OK(echo_start(&es, ECHO_ECHO));
    struct lr_loop *loop;
    CHECK_OK(lr_loop_new(&loop, NULL));
    uint64_t now = lr_loop_now_ms(loop);
    for (int i = 0; i < NTIMERS; i++) {
        lr_timer_init(loop, &timers[i], timer_cb);
        /* Spread from 1 ms to ~2 days, so every wheel level is populated. */
        uint64_t off = i % 10 ? 1 + (uint64_t)i % 400 : (uint64_t)i * 1777u;
        CHECK_OK(lr_timer_start(&timers[i], now + off));
    }
    static struct pinger p;
    memset(&p, 0, sizeof(p));
    memset(p.msg, 'x', sizeof(p.msg));
    CHECK_OK(lr__conn_init(&p.conn, loop, 4096, &pcbs));
    p.conn.data = &p;
    p.loop = loop;
    CHECK_OK(lr__conn_connect(&p.conn, (struct sockaddr *)&es.addr, sizeof(es.addr), 2000));

    /* Warm-up: connect, first recv buffers, first timer cascades. */
    p.start_iter = loop->iterations;
    p.stop_after = WARMUP;
    CHECK_OK(lr_loop_run(loop));
    CHECK_OK(p.err);

    p.start_iter = loop->iterations;
    p.stop_after = MEASURE;
    uint64_t fired0 = fired, pongs0 = p.pongs;
    alloccount_begin();
    int rc = lr_loop_run(loop);
    struct alloc_counts ac = alloccount_end();
    CHECK_OK(rc);
    CHECK_OK(p.err);
    uint64_t iters = loop->iterations - p.start_iter;
    printf("     %llu iterations, %llu timer expiries, %llu echo round trips: %llu allocs, "
           "%llu frees\n",
           (unsigned long long)iters, (unsigned long long)(fired - fired0),
           (unsigned long long)(p.pongs - pongs0), (unsigned long long)ac.allocs,
           (unsigned long long)ac.frees);
    CHECK(iters >= MEASURE);
    CHECK(fired - fired0 > 1000);       /* timers really fired and re-armed */
    CHECK(p.pongs - pongs0 >= 100); /* the connection really carried traffic */
    CHECK_EQ(ac.allocs, 0);
    CHECK_EQ(ac.frees, 0);

    lr__conn_close(&p.conn);
    CHECK_OK(lr_loop_run(loop));
    lr__conn_deinit(&p.conn);
    lr_loop_free(loop);
    echo_stop(&es);
}

TESTS(T(counter_sees_libc_allocations), T(allocator_hook_sees_our_allocations),
      T(steady_state_allocates_nothing))
