/* SPDX-License-Identifier: MIT */
/*
 * test_hiredis.c - the hiredis async adapter (leasering/adapters/hiredis.h)
 * against real redis-server processes: 100,000 pipelined SET/GET with every
 * reply checked, SUBSCRIBE receiving published messages, the server killed
 * (disconnect callback, nothing leaked), attach twice refused,
 * redisAsyncDisconnect from inside a reply callback, a context freed while
 * its poll is in flight with the fd number reused at once, and a refused
 * connect. Allocation balance is checked with the process-wide counter on
 * top of ASan's leak check in the sanitizer build.
 */
#include <errno.h>
#include <stdio.h>
#include <sys/epoll.h>
#include <unistd.h>

#include <leasering.h>
#include <leasering/adapters/hiredis.h>

#include "alloccount.h"
#include "harness.h"
#include "proc.h"
#include "redis_server.h"

static struct redis_server srv;
static int srv_up;

static int server(void)
{
    if (srv_up)
        return 0;
    int rc = redis_server_start(&srv, NULL);
    if (rc == 0)
        srv_up = 1;
    return rc;
}

/* ---- running the loop until a condition holds ---- */

struct waiter {
    struct lr_timer t;
    const int *flag;
    int want;
    uint64_t give_up;
    int timed_out;
};

static void waiter_cb(struct lr_timer *t)
{
    struct waiter *w = t->data;
    struct lr_loop *loop = t->loop;
    if (*w->flag >= w->want) {
        lr_loop_stop(loop);
        return;
    }
    if (lr_loop_now_ms(loop) >= w->give_up) {
        w->timed_out = 1;
        lr_loop_stop(loop);
        return;
    }
    lr_timer_start(t, lr_loop_now_ms(loop) + 2);
}

/* Run @loop until *@flag >= @want (checked every 2 ms) or @ms pass; 1 if it held. */
static int run_until(struct lr_loop *loop, const int *flag, int want, int ms)
{
    struct waiter w = {.flag = flag, .want = want};
    lr_timer_init(loop, &w.t, waiter_cb);
    w.t.data = &w;
    lr_loop_update_time(loop);
    w.give_up = lr_loop_now_ms(loop) + (uint64_t)ms;
    lr_timer_start(&w.t, lr_loop_now_ms(loop));
    lr_loop_run(loop);
    lr_timer_stop(&w.t);
    return *flag >= want;
}

/* Run @loop for @ms milliseconds. */
static void run_for(struct lr_loop *loop, int ms)
{
    static const int never = 0;
    run_until(loop, &never, 1, ms);
}

/* ---- connection bookkeeping ---- */

struct conn {
    redisAsyncContext *ac;
    int connected;      /* connect callback ran with REDIS_OK */
    int connect_failed; /* connect callback ran with REDIS_ERR */
    int disconnected;   /* disconnect callback ran */
    int disconnect_status;
};

static void on_connect(const redisAsyncContext *ac, int status)
{
    struct conn *c = ac->data;
    if (status == REDIS_OK)
        c->connected = 1;
    else
        c->connect_failed = 1;
}

static void on_disconnect(const redisAsyncContext *ac, int status)
{
    struct conn *c = ac->data;
    c->disconnected = 1;
    c->disconnect_status = status;
    c->ac = NULL;
}

/* Connect to 127.0.0.1:@port, attach to @loop, set the callbacks. */
static int conn_open(struct conn *c, struct lr_loop *loop, int port)
{
    memset(c, 0, sizeof(*c));
    c->ac = redisAsyncConnect("127.0.0.1", port);
    if (!c->ac)
        return -ENOMEM;
    if (c->ac->err) {
        fprintf(stderr, "redisAsyncConnect: %s\n", c->ac->errstr);
        redisAsyncFree(c->ac);
        c->ac = NULL;
        return -EIO;
    }
    c->ac->data = c;
    int rc = lr_hiredis_attach(loop, c->ac);
    if (rc < 0) {
        redisAsyncFree(c->ac);
        c->ac = NULL;
        return rc;
    }
    redisAsyncSetConnectCallback(c->ac, on_connect);
    redisAsyncSetDisconnectCallback(c->ac, on_disconnect);
    return 0;
}

/* ---- 100,000 pipelined commands ---- */

enum { PIPE_TOTAL = 100000, PIPE_KEYS = PIPE_TOTAL / 2, PIPE_WINDOW = 5000 };

struct pipe_state {
    struct conn c;
    int sent;
    int replies;
    int bad;     /* replies of the wrong type or content */
    int next_ok; /* replies arrive in order: the index we expect next */
    char first_bad[160];
};

static void pipe_send_next(struct pipe_state *ps);

static void pipe_reply(redisAsyncContext *ac, void *r, void *privdata)
{
    struct pipe_state *ps = ac->data;
    redisReply *reply = r;
    int idx = (int)(intptr_t)privdata;
    char want[64];
    int ok;
    if (!reply) {
        ok = 0;
    } else if (idx < PIPE_KEYS) {
        ok = reply->type == REDIS_REPLY_STATUS && reply->len == 2 && !memcmp(reply->str, "OK", 2);
    } else {
        int n = snprintf(want, sizeof(want), "value-%d-%d", idx - PIPE_KEYS, (idx - PIPE_KEYS) * 7);
        ok = reply->type == REDIS_REPLY_STRING && reply->len == (size_t)n && !memcmp(reply->str, want, (size_t)n);
    }
    if (idx != ps->next_ok)
        ok = 0;
    ps->next_ok = idx + 1;
    if (!ok && !ps->bad++)
        snprintf(ps->first_bad, sizeof(ps->first_bad), "reply %d: type %d '%.40s'", idx,
                 reply ? reply->type : -1, reply && reply->str ? reply->str : "(null)");
    ps->replies++;
    pipe_send_next(ps);
}

static void pipe_send_next(struct pipe_state *ps)
{
    while (ps->c.ac && ps->sent < PIPE_TOTAL && ps->sent - ps->replies < PIPE_WINDOW) {
        int i = ps->sent++;
        int rc;
        if (i < PIPE_KEYS)
            rc = redisAsyncCommand(ps->c.ac, pipe_reply, (void *)(intptr_t)i,
                                   "SET pipe:%d value-%d-%d", i, i, i * 7);
        else
            rc = redisAsyncCommand(ps->c.ac, pipe_reply, (void *)(intptr_t)i, "GET pipe:%d",
                                   i - PIPE_KEYS);
        if (rc != REDIS_OK)
            ps->bad++;
    }
}

TEST(hundred_thousand_pipelined_set_get)
{
    CHECK_OK(server());
    struct lr_loop *loop;
    CHECK_OK(lr_loop_new(&loop, NULL));
    static struct pipe_state ps;
    memset(&ps, 0, sizeof(ps));
    CHECK_OK(conn_open(&ps.c, loop, srv.port));
    ps.c.ac->data = &ps; /* struct conn is the first member: callbacks see both */
    pipe_send_next(&ps);
    CHECK(run_until(loop, &ps.replies, PIPE_TOTAL, 60000));
    CHECK(ps.c.connected);
    if (ps.bad)
        fprintf(stderr, "first bad %s\n", ps.first_bad);
    CHECK_EQ(ps.bad, 0);
    CHECK_EQ(ps.replies, PIPE_TOTAL);
    /* The server agrees. */
    char out[64];
    CHECK_OK(redis_cli(&srv, out, sizeof(out), (const char *const[]){"GET", "pipe:49999", NULL}));
    CHECK(!strcmp(out, "value-49999-349993"));
    redisAsyncDisconnect(ps.c.ac);
    CHECK(run_until(loop, &ps.c.disconnected, 1, 5000));
    CHECK_EQ(ps.c.disconnect_status, REDIS_OK);
    run_for(loop, 5); /* the adapter's close completes */
    lr_loop_free(loop);
}

/* ---- SUBSCRIBE ---- */

enum { SUB_MESSAGES = 200 };

struct sub_state {
    struct conn c;
    int subscribed;
    int messages;
    int bad;
};

static void sub_reply(redisAsyncContext *ac, void *r, void *privdata)
{
    (void)privdata;
    struct sub_state *ss = ac->data;
    redisReply *reply = r;
    if (!reply)
        return; /* unsubscribed at disconnect */
    if (reply->type != REDIS_REPLY_ARRAY || reply->elements != 3 ||
        reply->element[0]->type != REDIS_REPLY_STRING) {
        ss->bad++;
        return;
    }
    const char *kind = reply->element[0]->str;
    if (!strcmp(kind, "subscribe")) {
        ss->subscribed = 1;
    } else if (!strcmp(kind, "message")) {
        char want[32];
        snprintf(want, sizeof(want), "m%d", ss->messages);
        if (strcmp(reply->element[1]->str, "lr-chan") || strcmp(reply->element[2]->str, want))
            ss->bad++;
        ss->messages++;
    } else {
        ss->bad++;
    }
}

static int published;
static void pub_reply(redisAsyncContext *ac, void *r, void *privdata)
{
    (void)ac;
    (void)privdata;
    redisReply *reply = r;
    if (reply && reply->type == REDIS_REPLY_INTEGER && reply->integer == 1)
        published++;
}

TEST(subscribe_receives_published_messages)
{
    CHECK_OK(server());
    struct lr_loop *loop;
    CHECK_OK(lr_loop_new(&loop, NULL));
    static struct sub_state ss;
    memset(&ss, 0, sizeof(ss));
    struct conn pub;
    CHECK_OK(conn_open(&ss.c, loop, srv.port));
    ss.c.ac->data = &ss;
    CHECK_OK(conn_open(&pub, loop, srv.port));
    CHECK_EQ(redisAsyncCommand(ss.c.ac, sub_reply, NULL, "SUBSCRIBE lr-chan"), REDIS_OK);
    CHECK(run_until(loop, &ss.subscribed, 1, 5000));
    published = 0;
    for (int i = 0; i < SUB_MESSAGES; i++)
        CHECK_EQ(redisAsyncCommand(pub.ac, pub_reply, NULL, "PUBLISH lr-chan m%d", i), REDIS_OK);
    CHECK(run_until(loop, &ss.messages, SUB_MESSAGES, 10000));
    CHECK_EQ(published, SUB_MESSAGES);
    CHECK_EQ(ss.bad, 0);
    redisAsyncDisconnect(pub.ac);
    redisAsyncDisconnect(ss.c.ac);
    CHECK(run_until(loop, &pub.disconnected, 1, 5000));
    CHECK(run_until(loop, &ss.c.disconnected, 1, 5000));
    run_for(loop, 5);
    lr_loop_free(loop);
}

/* ---- the server dies ---- */

static int pings;
static void ping_reply(redisAsyncContext *ac, void *r, void *privdata)
{
    (void)ac;
    (void)privdata;
    redisReply *reply = r;
    if (reply && reply->type == REDIS_REPLY_STATUS && !strcmp(reply->str, "PONG"))
        pings++;
}

static int null_replies;
static void count_null(redisAsyncContext *ac, void *r, void *privdata)
{
    (void)ac;
    (void)privdata;
    if (!r)
        null_replies++;
}

TEST(server_killed_fires_disconnect_and_leaks_nothing)
{
    struct redis_server doomed;
    CHECK_OK(redis_server_start(&doomed, NULL));
    struct lr_loop *loop;
    CHECK_OK(lr_loop_new(&loop, NULL));
    CHECK(alloccount_selftest());
    alloccount_begin();
    struct conn c;
    int rc = conn_open(&c, loop, doomed.port);
    pings = 0;
    null_replies = 0;
    if (rc == 0) {
        redisAsyncCommand(c.ac, ping_reply, NULL, "PING");
        run_until(loop, &pings, 1, 5000);
        redis_server_kill(&doomed);
        /* A command in flight when the server is gone gets a NULL reply. */
        redisAsyncCommand(c.ac, count_null, NULL, "PING");
        run_until(loop, &c.disconnected, 1, 5000);
        run_for(loop, 5); /* the adapter state is freed on the poll's last completion */
    }
    struct alloc_counts n = alloccount_end();
    redis_server_destroy(&doomed);
    CHECK_OK(rc);
    CHECK_EQ(pings, 1);
    CHECK(c.disconnected);
    CHECK_EQ(c.disconnect_status, REDIS_ERR);
    CHECK_EQ(null_replies, 1);
    CHECK(n.allocs > 0);
    CHECK_EQ(n.allocs, n.frees); /* the context and our state are gone */
    lr_loop_free(loop);
}

TEST(attach_twice_is_refused)
{
    CHECK_OK(server());
    struct lr_loop *loop, *other;
    CHECK_OK(lr_loop_new(&loop, NULL));
    CHECK_OK(lr_loop_new(&other, NULL));
    struct conn c;
    CHECK_OK(conn_open(&c, loop, srv.port));
    void *state = c.ac->ev.data;
    CHECK_ERR(lr_hiredis_attach(loop, c.ac), -EEXIST);
    CHECK_ERR(lr_hiredis_attach(other, c.ac), -EEXIST);
    CHECK(c.ac->ev.data == state); /* left as it was */
    CHECK_ERR(lr_hiredis_attach(NULL, c.ac), -EINVAL);
    CHECK_ERR(lr_hiredis_attach(loop, NULL), -EINVAL);
    /* Still works after the refusals. */
    pings = 0;
    redisAsyncCommand(c.ac, ping_reply, NULL, "PING");
    CHECK(run_until(loop, &pings, 1, 5000));
    redisAsyncDisconnect(c.ac);
    CHECK(run_until(loop, &c.disconnected, 1, 5000));
    run_for(loop, 5);
    lr_loop_free(other);
    lr_loop_free(loop);
}

/* ---- output larger than the socket buffers: the POLLOUT path ---- */

enum { BIG = 8 << 20 };
static char *big_value;
static int big_done, big_ok;

static void big_get(redisAsyncContext *ac, void *r, void *privdata)
{
    (void)ac;
    (void)privdata;
    redisReply *reply = r;
    big_ok = reply && reply->type == REDIS_REPLY_STRING && reply->len == BIG &&
             !memcmp(reply->str, big_value, BIG);
    big_done = 1;
}

/* An 8 MiB SET cannot be written at once: the adapter's optimistic write
 * leaves the rest to POLLOUT, and the value comes back intact. */
TEST(value_larger_than_the_socket_buffers)
{
    CHECK_OK(server());
    struct lr_loop *loop;
    CHECK_OK(lr_loop_new(&loop, NULL));
    big_value = malloc(BIG);
    CHECK(big_value);
    for (size_t i = 0; i < BIG; i++)
        big_value[i] = (char)('a' + (i * 7 + i / 4096) % 26);
    struct conn c;
    CHECK_OK(conn_open(&c, loop, srv.port));
    pings = 0;
    big_done = big_ok = 0;
    redisAsyncCommand(c.ac, ping_reply, NULL, "PING");
    CHECK(run_until(loop, &pings, 1, 5000)); /* connected: writes go the optimistic way */
    CHECK_EQ(redisAsyncCommand(c.ac, NULL, NULL, "SET big %b", big_value, (size_t)BIG), REDIS_OK);
    CHECK_EQ(redisAsyncCommand(c.ac, big_get, NULL, "GET big"), REDIS_OK);
    CHECK(run_until(loop, &big_done, 1, 20000));
    CHECK(big_ok);
    redisAsyncDisconnect(c.ac);
    CHECK(run_until(loop, &c.disconnected, 1, 5000));
    run_for(loop, 5);
    free(big_value);
    lr_loop_free(loop);
}

/* ---- reply timeouts (our guard on hiredis 0.14) ---- */

static int slept;
static void sleep_reply(redisAsyncContext *ac, void *r, void *privdata)
{
    (void)ac;
    (void)privdata;
    redisReply *reply = r;
    if (reply && reply->type == REDIS_REPLY_NIL) /* BLPOP's answer after its wait */
        slept++;
}

/* A paused server owes a reply: after the timeout the owed callback gets a
 * NULL reply and the disconnect callback REDIS_ERR; an idle connection and
 * a slow but answered command do not time out. */
TEST(reply_timeout_fails_a_stalled_connection)
{
    struct redis_server stalled;
    CHECK_OK(redis_server_start(&stalled, NULL));
    struct lr_loop *loop;
    CHECK_OK(lr_loop_new(&loop, NULL));
    struct conn c;
    CHECK_OK(conn_open(&c, loop, stalled.port));
    CHECK_OK(lr_hiredis_set_timeout(c.ac, 400));
    pings = slept = null_replies = 0;
    redisAsyncCommand(c.ac, ping_reply, NULL, "PING");
    CHECK(run_until(loop, &pings, 1, 5000));
    run_for(loop, 900); /* idle: nothing owed, no timeout */
    CHECK(!c.disconnected);
    redisAsyncCommand(c.ac, sleep_reply, NULL, "BLPOP lr-nothing 0.25"); /* slow, answered */
    CHECK(run_until(loop, &slept, 1, 5000));
    CHECK(!c.disconnected);
    CHECK_OK(redis_server_pause(&stalled));
    uint64_t t0 = proc_now_ms();
    redisAsyncCommand(c.ac, count_null, NULL, "PING");
    CHECK(run_until(loop, &c.disconnected, 1, 5000));
    uint64_t took = proc_now_ms() - t0;
    redis_server_resume(&stalled);
    CHECK_EQ(c.disconnect_status, REDIS_ERR);
    CHECK_EQ(null_replies, 1);
    printf("     failed after %llu ms (timeout 400 ms)\n", (unsigned long long)took);
    CHECK(took >= 400 && took < 2000);
    run_for(loop, 5);
    redis_server_destroy(&stalled);
    /* Only contexts attached here take a timeout. */
    CHECK_ERR(lr_hiredis_set_timeout(NULL, 100), -EINVAL);
    redisAsyncContext *loose = redisAsyncConnect("127.0.0.1", srv_up ? srv.port : 1);
    CHECK(loose);
    CHECK_ERR(lr_hiredis_set_timeout(loose, 100), -EINVAL);
    redisAsyncFree(loose);
    lr_loop_free(loop);
}

/* ---- redisAsyncDisconnect inside a reply callback ---- */

static int after_disconnect_replies;
static void disconnect_in_reply(redisAsyncContext *ac, void *r, void *privdata)
{
    (void)privdata;
    redisReply *reply = r;
    if (reply && reply->type == REDIS_REPLY_STATUS)
        pings++;
    redisAsyncDisconnect(ac);
}

static void later_reply(redisAsyncContext *ac, void *r, void *privdata)
{
    (void)ac;
    (void)privdata;
    redisReply *reply = r;
    if (reply && reply->type == REDIS_REPLY_STATUS && !strcmp(reply->str, "PONG"))
        after_disconnect_replies++;
}

TEST(disconnect_from_inside_a_reply_callback)
{
    CHECK_OK(server());
    struct lr_loop *loop;
    CHECK_OK(lr_loop_new(&loop, NULL));
    struct conn c;
    CHECK_OK(conn_open(&c, loop, srv.port));
    pings = 0;
    after_disconnect_replies = 0;
    CHECK_EQ(redisAsyncCommand(c.ac, disconnect_in_reply, NULL, "PING"), REDIS_OK);
    for (int i = 0; i < 3; i++)
        CHECK_EQ(redisAsyncCommand(c.ac, later_reply, NULL, "PING"), REDIS_OK);
    CHECK(run_until(loop, &c.disconnected, 1, 5000));
    CHECK_EQ(pings, 1);
    CHECK_EQ(after_disconnect_replies, 3); /* pending replies still arrive first */
    CHECK_EQ(c.disconnect_status, REDIS_OK);
    run_for(loop, 5);
    lr_loop_free(loop);
}

/* ---- freed with a poll in flight; fd number reused at once ---- */

TEST(free_with_poll_in_flight_then_fd_reused)
{
    CHECK_OK(server());
    struct lr_loop *loop;
    CHECK_OK(lr_loop_new(&loop, NULL));
    CHECK(alloccount_selftest());
    alloccount_begin();
    struct conn a, b;
    int rc = conn_open(&a, loop, srv.port);
    int fd_a = -1, fd_b = -2, connected_a = 0;
    pings = 0;
    if (rc == 0) {
        redisAsyncCommand(a.ac, ping_reply, NULL, "PING");
        run_until(loop, &pings, 1, 5000);
        connected_a = a.connected;
        run_for(loop, 3); /* idle: a read poll is armed in the kernel */
        fd_a = a.ac->c.fd;
        /* Outside any callback: cleanup runs with the poll in flight and
         * hiredis closes the fd right after. */
        redisAsyncFree(a.ac);
        rc = conn_open(&b, loop, srv.port);
    }
    if (rc == 0) {
        fd_b = b.ac->c.fd;
        redisAsyncCommand(b.ac, ping_reply, NULL, "PING");
        run_until(loop, &pings, 2, 5000);
        redisAsyncDisconnect(b.ac);
        run_until(loop, &b.disconnected, 1, 5000);
        run_for(loop, 5);
    }
    struct alloc_counts n = alloccount_end();
    CHECK_OK(rc);
    CHECK(connected_a);
    CHECK(a.disconnected); /* redisAsyncFree calls the disconnect callback */
    CHECK_EQ(fd_b, fd_a);  /* the number was reused */
    CHECK_EQ(pings, 2);
    CHECK(b.disconnected);
    CHECK_EQ(n.allocs, n.frees);
    lr_loop_free(loop);
}

TEST(refused_connect_reports_and_frees)
{
    int port;
    CHECK_OK(proc_pick_port(&port)); /* nobody listens there */
    struct lr_loop *loop;
    CHECK_OK(lr_loop_new(&loop, NULL));
    struct conn c;
    CHECK_OK(conn_open(&c, loop, port));
    CHECK(run_until(loop, &c.connect_failed, 1, 5000));
    CHECK(!c.connected);
    run_for(loop, 5);
    lr_loop_free(loop);
}

/* The adapter on a loop that is itself embedded: leasering's loop driven
 * only by a plain epoll on lr_loop_fd() + lr_loop_timeout_ms() +
 * lr_loop_process(), as a program with its own main loop would. Poll
 * completions must wake the host through the eventfd. */
TEST(pipelined_through_an_embedded_loop)
{
    CHECK_OK(server());
    struct lr_loop *loop;
    CHECK_OK(lr_loop_new(&loop, NULL));
    int lfd = lr_loop_fd(loop);
    int ep = epoll_create1(EPOLL_CLOEXEC);
    CHECK(ep >= 0);
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = lfd};
    CHECK_OK(epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev));
    static struct pipe_state ps;
    memset(&ps, 0, sizeof(ps));
    CHECK_OK(conn_open(&ps.c, loop, srv.port));
    ps.c.ac->data = &ps;
    pipe_send_next(&ps);
    uint64_t give_up = proc_now_ms() + 60000;
    int wakeups = 0;
    while (!ps.c.disconnected && proc_now_ms() < give_up) {
        struct epoll_event out;
        /* Capped, so a broken wakeup shows as a crawl to the 60 s limit,
         * not as a hang. */
        int to = lr_loop_timeout_ms(loop);
        int n = epoll_wait(ep, &out, 1, to < 0 || to > 2000 ? 2000 : to);
        wakeups += n > 0;
        CHECK(lr_loop_process(loop) >= 0);
        if (ps.replies == PIPE_TOTAL && ps.c.ac && !ps.c.disconnected)
            redisAsyncDisconnect(ps.c.ac);
    }
    if (ps.bad)
        fprintf(stderr, "first bad %s\n", ps.first_bad);
    CHECK_EQ(ps.replies, PIPE_TOTAL);
    CHECK_EQ(ps.bad, 0);
    CHECK(ps.c.disconnected);
    CHECK_EQ(ps.c.disconnect_status, REDIS_OK);
    CHECK(wakeups > 0);
    for (int i = 0; i < 5; i++) /* the adapter's close completes */
        lr_loop_process(loop);
    close(ep);
    lr_loop_free(loop);
}

static void teardown(void)
{
    if (srv_up)
        redis_server_destroy(&srv);
}

TESTS(T(hundred_thousand_pipelined_set_get), T(value_larger_than_the_socket_buffers),
      T(subscribe_receives_published_messages),
      T(server_killed_fires_disconnect_and_leaks_nothing), T(attach_twice_is_refused),
      T(disconnect_from_inside_a_reply_callback), T(free_with_poll_in_flight_then_fd_reused),
      T(refused_connect_reports_and_frees), T(pipelined_through_an_embedded_loop),
      T(reply_timeout_fails_a_stalled_connection),
      {"teardown", teardown})
