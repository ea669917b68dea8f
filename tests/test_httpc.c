/* SPDX-License-Identifier: MIT */
/*
 * test_httpc.c - the shared HTTP/1.1 client (src/httpc.c) against a fake
 * server on loopback that serves each connection on its own thread, so
 * requests on different connections really run at once. The request path
 * says what to answer:
 *   /len      200, "hello" with Content-Length
 *   /chunked  200, "hello world" in chunks
 *   /big      200, 100 body bytes
 *   /echo     200, the request body back
 *   /slow     like /len after 150 ms
 *   /silent   never answers, nor anything after it on its connection
 *   /drop     closes without answering when it is not the connection's
 *             first request (an idle keep-alive connection the server closed)
 * A query "?chain=K" (K = 1, 2, ...) marks the K-th request of one chain: the
 * server counts an overtaking when it arrives before K-1 was answered.
 * The server answers a connection's requests one by one in order, so requests
 * pipelined by the client are answered in order; it counts a request as
 * pipelined when its bytes had arrived before the previous answer was sent.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "alloccount.h"
#include "certs.h"
#include "echo.h"
#include "harness.h"
#include "httpc_int.h"
#include "tls_int.h"

struct fake {
    struct tcp_peer peer;
    atomic_int connections;
    atomic_int live; /* connection threads still running */
    atomic_int busy; /* requests being served now */
    atomic_int max_busy;
    atomic_int requests;
    atomic_int drops;
    atomic_int overtaken;
    atomic_int pipelined;
    atomic_uint answered_chain; /* bit K: chain request K answered */
    char tags[16];              /* "?tag=X" of each request, in arrival order */
    atomic_int ntags;
};

static struct fake fk;

static void write_all(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w <= 0)
            return;
        p += w;
        n -= (size_t)w;
    }
}

static void *serve_conn(void *arg)
{
    int fd = (int)(intptr_t)arg;
    char buf[16384];
    size_t have = 0;
    int served = 0;
    for (;;) {
        char *end = have ? memmem(buf, have, "\r\n\r\n", 4) : NULL;
        size_t body = 0;
        if (end) {
            const char *cl = memmem(buf, (size_t)(end - buf), "Content-Length: ", 16);
            if (cl)
                body = (size_t)strtoul(cl + 16, NULL, 10);
        }
        size_t head = end ? (size_t)(end + 4 - buf) : 0;
        if (!end || have < head + body) {
            ssize_t n = read(fd, buf + have, sizeof(buf) - 1 - have);
            if (n <= 0)
                break;
            have += (size_t)n;
            continue;
        }
        atomic_fetch_add(&fk.requests, 1);
        int b = atomic_fetch_add(&fk.busy, 1) + 1;
        int m = atomic_load(&fk.max_busy);
        while (b > m && !atomic_compare_exchange_weak(&fk.max_busy, &m, b))
            ;
        const char *path = strchr(buf, ' ') + 1;
        int chain = 0;
        const char *q = strstr(path, "?chain=");
        if (q && q < end)
            chain = atoi(q + 7);
        const char *tag = strstr(path, "?tag=");
        if (tag && tag < end) {
            int i = atomic_fetch_add(&fk.ntags, 1);
            if (i < (int)sizeof(fk.tags) - 1)
                fk.tags[i] = tag[5];
        }
        if (chain > 1) {
            unsigned want = ((1u << chain) - 1) & ~1u;
            if ((atomic_load(&fk.answered_chain) & want) != want)
                atomic_fetch_add(&fk.overtaken, 1);
        }
        char out[512];
        int n = 0;
        bool quit = false;
        if (!strncmp(path, "/chunked", 8)) {
            n = snprintf(out, sizeof(out),
                         "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                         "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n");
        } else if (!strncmp(path, "/big", 4)) {
            n = snprintf(out, sizeof(out), "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n");
            memset(out + n, 'x', 100);
            n += 100;
        } else if (!strncmp(path, "/echo", 5)) {
            n = snprintf(out, sizeof(out), "HTTP/1.1 200 OK\r\nContent-Length: %zu\r\n\r\n%.*s",
                         body, (int)body, buf + head);
        } else if (!strncmp(path, "/silent", 7)) {
            atomic_fetch_sub(&fk.busy, 1);
            while (read(fd, buf, sizeof(buf)) > 0)
                ; /* no answer: nothing after it is answered either */
            break;
        } else if (!strncmp(path, "/drop", 5) && served > 0) {
            atomic_fetch_add(&fk.drops, 1);
            quit = true;
        } else {
            if (!strncmp(path, "/slow", 5))
                usleep(150 * 1000);
            n = snprintf(out, sizeof(out),
                         "HTTP/1.1 200 OK\r\nX-Test: yes\r\n"
                         "Content-Length: 5\r\n\r\nhello");
        }
        atomic_fetch_sub(&fk.busy, 1);
        if (quit)
            break;
        if (chain)
            atomic_fetch_or(&fk.answered_chain, 1u << chain);
        write_all(fd, out, (size_t)n);
        served++;
        if (have > head + body)
            atomic_fetch_add(&fk.pipelined, 1); /* the next one came before this answer */
        memmove(buf, buf + head + body, have - head - body);
        have -= head + body;
    }
    close(fd);
    atomic_fetch_sub(&fk.live, 1);
    return NULL;
}

static void *serve(void *arg)
{
    (void)arg;
    for (;;) {
        int fd = accept(fk.peer.listen_fd, NULL, NULL);
        if (fd < 0)
            return NULL;
        atomic_fetch_add(&fk.connections, 1);
        atomic_fetch_add(&fk.live, 1);
        pthread_t t;
        if (pthread_create(&t, NULL, serve_conn, (void *)(intptr_t)fd) == 0)
            pthread_detach(t);
        else
            close(fd);
    }
}

static int fake_start(void)
{
    memset(&fk, 0, sizeof(fk));
    return peer_start(&fk.peer, serve, NULL);
}

static void fake_stop(void)
{
    peer_stop(&fk.peer);
    for (int i = 0; i < 200 && atomic_load(&fk.live) > 0; i++)
        usleep(10 * 1000); /* the client closed its connections: threads end */
}

/* ------------------------------------------------------------ the client side */

struct call {
    struct lr__httpc_req req;
    const char *target;
    int status; /* 1: not done yet */
    bool saw_header;
    struct call *watch; /* on_done notes whether this one was sent by then */
    bool watch_sent;
    char resp[64];
};

static struct lr_loop *loop;
static struct lr__httpc client;
static int pending;
static bool client_closed;

static int encode(struct lr__httpc_req *r, char *out, size_t cap)
{
    struct call *c = r->data;
    int a = lr_http_write_request_line(out, cap, r->head ? "HEAD" : "GET", r->head ? 4 : 3,
                                       c->target, strlen(c->target));
    if (a < 0)
        return a;
    int b = lr_http_write_header(out + a, cap - (size_t)a, "Host", 4, "fake", 4);
    return b < 0 ? b : a + b;
}

static void on_header(struct lr__httpc_req *r, const char *name, size_t nlen, const char *v,
                      size_t vlen)
{
    (void)v;
    (void)vlen;
    struct call *c = r->data;
    c->saw_header |= nlen == 6 && !strncasecmp(name, "X-Test", 6);
}

static void on_done(struct lr__httpc_req *r, int status)
{
    struct call *c = r->data;
    c->status = status;
    if (c->watch)
        c->watch_sent = c->watch->req.sent;
    if (--pending == 0)
        lr_loop_stop(loop);
}

static void call_init(struct call *c, const char *target)
{
    memset(c, 0, sizeof(*c));
    c->target = target;
    c->status = 1;
    c->req.data = c;
    c->req.encode = encode;
    c->req.on_header = on_header;
    c->req.on_done = on_done;
    c->req.resp = c->resp;
    c->req.resp_cap = sizeof(c->resp);
    c->req.idempotent = true;
}

static struct lr_timer guard;
static void guard_fired(struct lr_timer *t)
{
    (void)t;
    lr_loop_stop(loop);
}

static int setup_pipelined(unsigned conns, unsigned pipeline)
{
    int rc = fake_start();
    if (rc < 0)
        return rc;
    struct lr_loop_opts lo = {0};
    if ((rc = lr_loop_new(&loop, &lo)) < 0)
        return rc;
    char host[32];
    inet_ntop(AF_INET, &fk.peer.addr.sin_addr, host, sizeof(host));
    struct lr__httpc_opts o = {.host = host,
                               .port = ntohs(fk.peer.addr.sin_port),
                               .max_conns = conns,
                               .pipeline = pipeline,
                               .out_cap = 4096,
                               .timeout_ms = 3000};
    memset(&client, 0, sizeof(client));
    client_closed = false;
    lr_timer_init(loop, &guard, guard_fired);
    return lr__httpc_init(&client, loop, &o);
}

static int setup(unsigned conns)
{
    return setup_pipelined(conns, 0);
}

/* Run until every submitted call is done (or 5 s pass). */
static void run(void)
{
    lr_timer_start(&guard, lr_loop_now_ms(loop) + 5000);
    lr_loop_run(loop);
    lr_timer_stop(&guard);
}

static void submit(struct call *c)
{
    pending++;
    if (lr__httpc_submit(&client, &c->req) < 0)
        pending--;
}

static void closed(struct lr__httpc *c)
{
    (void)c;
    client_closed = true;
    lr_loop_stop(loop);
}

/* Wait (up to 5 s) for a close already begun, then free the client. */
static void wait_closed(void)
{
    lr_timer_start(&guard, lr_loop_now_ms(loop) + 5000);
    while (!client_closed && lr_timer_is_active(&guard))
        lr_loop_run(loop);
    lr_timer_stop(&guard);
    lr__httpc_deinit(&client);
}

static void teardown(void)
{
    client_closed = false;
    lr__httpc_close(&client, closed);
    wait_closed();
    lr_loop_free(loop);
    fake_stop();
}

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

TEST(keep_alive_reuse_and_bodies)
{
    CHECK_OK(setup(2));
    static struct call c[4];
    const char *targets[] = {"/len", "/chunked", "/echo", "/len"};
    for (int i = 0; i < 4; i++) {
        call_init(&c[i], targets[i]);
        if (i == 2) {
            c[i].req.body = "abc=123";
            c[i].req.body_len = 7;
            c[i].req.has_body = true;
        }
        submit(&c[i]);
        run(); /* one after another: one connection is enough */
        CHECK_EQ(c[i].status, 200);
    }
    CHECK(c[0].saw_header);
    CHECK_EQ(c[0].req.resp_len, 5u);
    CHECK(!memcmp(c[0].resp, "hello", 5));
    CHECK_EQ(c[1].req.resp_len, 11u);
    CHECK(!memcmp(c[1].resp, "hello world", 11));
    CHECK_EQ(c[2].req.resp_len, 7u);
    CHECK(!memcmp(c[2].resp, "abc=123", 7));
    CHECK_EQ(atomic_load(&fk.connections), 1);
    teardown();
}

TEST(requests_spread_over_capped_connections)
{
    CHECK_OK(setup(3));
    static struct call c[9];
    uint64_t t0 = now_ms();
    for (int i = 0; i < 9; i++) {
        call_init(&c[i], "/slow");
        submit(&c[i]);
    }
    run();
    uint64_t took = now_ms() - t0;
    for (int i = 0; i < 9; i++)
        CHECK_EQ(c[i].status, 200);
    CHECK_EQ(atomic_load(&fk.connections), 3); /* the cap */
    CHECK_EQ(atomic_load(&fk.max_busy), 3);    /* all in flight at once */
    CHECK(took < 9 * 150);                     /* not one after another */
    teardown();
}

TEST(dependent_requests_never_overtake)
{
    CHECK_OK(setup(3));
    static struct call c[3];
    static struct lr__httpc_chain chain;
    lr__httpc_chain_init(&chain);
    const char *targets[] = {"/slow?chain=1", "/len?chain=2", "/len?chain=3"};
    for (int i = 0; i < 3; i++) {
        call_init(&c[i], targets[i]);
        c[i].req.chain = &chain;
        submit(&c[i]);
    }
    run();
    for (int i = 0; i < 3; i++)
        CHECK_EQ(c[i].status, 200);
    CHECK_EQ(atomic_load(&fk.overtaken), 0);
    CHECK(!chain.active);
    teardown();
}

static void run_for(uint64_t ms);

/* A request marked first overtakes what waits (not what is in flight). */
TEST(first_goes_to_the_head)
{
    CHECK_OK(setup(1));
    static struct call c[4];
    const char *targets[] = {"/slow?tag=a", "/len?tag=b", "/len?tag=c", "/len?tag=d"};
    for (int i = 0; i < 4; i++) {
        call_init(&c[i], targets[i]);
        c[i].req.first = i == 3;
        submit(&c[i]);
        if (i == 0)
            run_for(50); /* a in flight: the others wait */
    }
    run();
    for (int i = 0; i < 4; i++)
        CHECK_EQ(c[i].status, 200);
    CHECK(!strcmp(fk.tags, "adbc"));
    teardown();
}

/* Nothing listens: the request fails as not sent and the client says the
 * endpoint is unreachable, until a connection succeeds. */
TEST(unreachable)
{
    CHECK_OK(setup(2));
    static struct call c;
    struct sockaddr_in none;
    CHECK_OK(free_port_sockaddr(&none));
    client.o.port = ntohs(none.sin_port);
    call_init(&c, "/len");
    submit(&c);
    run();
    CHECK_ERR(c.status, LR_EUNAVAIL);
    CHECK(!c.req.sent);
    CHECK(client.unreachable);
    CHECK_EQ(lr__httpc_up(&client, NULL), 0u);
    client.o.port = ntohs(fk.peer.addr.sin_port);
    call_init(&c, "/len");
    submit(&c);
    run();
    CHECK_EQ(c.status, 200);
    CHECK(!client.unreachable);
    CHECK_EQ(lr__httpc_up(&client, NULL), 1u);
    teardown();
}

TEST(body_over_limit_is_an_error)
{
    CHECK_OK(setup(1));
    static struct call c[2];
    call_init(&c[0], "/big"); /* 100 bytes into 64 */
    submit(&c[0]);
    run();
    CHECK_ERR(c[0].status, -EMSGSIZE);
    call_init(&c[1], "/len"); /* the client goes on, on a fresh connection */
    submit(&c[1]);
    run();
    CHECK_EQ(c[1].status, 200);
    call_init(&c[1], "/big"); /* no buffer: headers only, the body is dropped */
    c[1].req.resp = NULL;
    c[1].req.resp_cap = 0;
    submit(&c[1]);
    run();
    CHECK_EQ(c[1].status, 200);
    CHECK_EQ(c[1].req.resp_len, 0u);
    teardown();
}

/* Run the loop for @ms (requests go out meanwhile). */
static void run_for(uint64_t ms)
{
    lr_timer_start(&guard, lr_loop_now_ms(loop) + ms);
    lr_loop_run(loop);
}

TEST(cancel_and_close)
{
    CHECK_OK(setup(1));
    static struct call c[4];
    for (int i = 0; i < 3; i++) {
        call_init(&c[i], "/slow");
        submit(&c[i]);
    }
    run_for(50); /* c[0] in flight, c[1] and c[2] waiting */
    CHECK(c[0].req.sent && !c[1].req.sent);
    lr__httpc_cancel(&c[0].req); /* its connection closes: the answer is owed there */
    lr__httpc_cancel(&c[1].req);
    pending -= 2;
    run();
    CHECK_EQ(c[0].status, 1); /* cancelled: no on_done */
    CHECK_EQ(c[1].status, 1);
    CHECK_EQ(c[2].status, 200);
    CHECK_EQ(atomic_load(&fk.connections), 2);
    call_init(&c[3], "/silent");
    submit(&c[3]);
    call_init(&c[1], "/len");
    submit(&c[1]);
    run_for(50);
    client_closed = false;
    lr__httpc_close(&client, closed);
    CHECK_ERR(c[3].status, LR_ECLOSED); /* in flight */
    CHECK_ERR(c[1].status, LR_ECLOSED); /* waiting */
    pending = 0;
    wait_closed();
    CHECK(client_closed);
    lr_loop_free(loop);
    fake_stop();
}

TEST(deadline)
{
    CHECK_OK(setup(1));
    static struct call c;
    call_init(&c, "/silent");
    c.req.deadline_ms = lr_loop_now_ms(loop) + 300;
    submit(&c);
    run();
    CHECK_ERR(c.status, -ETIMEDOUT);
    CHECK(c.req.sent);
    teardown();
}

/* The second request meets a connection the server closes: sent again once
 * when idempotent, reported when not. */
static struct call rc_calls[2];
static void retry_case(bool idempotent)
{
    struct call *c = rc_calls;
    call_init(&c[0], "/len");
    submit(&c[0]);
    run();
    call_init(&c[1], "/drop");
    c[1].req.idempotent = idempotent;
    submit(&c[1]);
    run();
}

TEST(retry_once_on_server_closed_connection)
{
    CHECK_OK(setup(1));
    retry_case(true);
    CHECK_EQ(atomic_load(&fk.drops), 1);
    CHECK_EQ(client.retries, 1u);
    CHECK_EQ(atomic_load(&fk.connections), 2);
    CHECK_EQ(rc_calls[1].status, 200);
    teardown();

    CHECK_OK(setup(1));
    retry_case(false);
    CHECK_EQ(atomic_load(&fk.drops), 1);
    CHECK_EQ(client.retries, 0u);
    CHECK(rc_calls[1].status < 0); /* LR_EEOF or -ECONNRESET: outcome unknown */
    CHECK(rc_calls[1].req.sent);
    teardown();
}

/* Four requests leave together on one connection and each gets its own
 * answer, in order; a chain's next request is not pipelined behind the
 * one before it. */
TEST(pipelined_answers_matched_in_order)
{
    CHECK_OK(setup_pipelined(2, 4));
    static struct call c[6];
    static char bodies[4][8];
    static struct lr__httpc_chain chain;
    lr__httpc_chain_init(&chain);
    for (int i = 0; i < 4; i++) {
        call_init(&c[i], "/echo");
        snprintf(bodies[i], sizeof(bodies[i]), "body-%d", i);
        c[i].req.body = bodies[i];
        c[i].req.body_len = strlen(bodies[i]);
        c[i].req.has_body = true;
        submit(&c[i]);
    }
    run();
    for (int i = 0; i < 4; i++) {
        CHECK_EQ(c[i].status, 200);
        CHECK_EQ(c[i].req.resp_len, strlen(bodies[i]));
        CHECK(!memcmp(c[i].resp, bodies[i], c[i].req.resp_len));
    }
    CHECK_EQ(atomic_load(&fk.connections), 1); /* one filled before the next opens */
    CHECK(atomic_load(&fk.pipelined) >= 1);
    call_init(&c[4], "/slow?chain=1");
    call_init(&c[5], "/len?chain=2");
    c[4].req.chain = c[5].req.chain = &chain;
    c[4].watch = &c[5];
    submit(&c[4]);
    submit(&c[5]);
    run();
    CHECK_EQ(c[4].status, 200);
    CHECK_EQ(c[5].status, 200);
    CHECK(!c[4].watch_sent); /* not sent before the one it depends on was answered */
    CHECK_EQ(atomic_load(&fk.overtaken), 0);
    teardown();
}

/* The server closes a connection with three requests pipelined on it: the
 * oldest (a keep-alive connection closed under it) and an idempotent one
 * behind it are sent again, in order; one that is not idempotent is
 * reported as of unknown outcome. */
TEST(connection_dies_with_three_pipelined)
{
    CHECK_OK(setup_pipelined(1, 4));
    static struct call c[4];
    const char *targets[] = {"/len?tag=a", "/drop?tag=b", "/len?tag=c", "/len?tag=d"};
    for (int i = 0; i < 4; i++) {
        call_init(&c[i], targets[i]);
        c[i].req.idempotent = i != 2;
        submit(&c[i]);
    }
    run();
    CHECK_EQ(c[0].status, 200);
    CHECK_EQ(c[1].status, 200); /* retried: first on the new connection */
    CHECK_ERR(c[2].status, LR_EEOF);
    CHECK(c[2].req.sent);
    CHECK_EQ(c[3].status, 200);
    CHECK_EQ(atomic_load(&fk.drops), 1);
    CHECK_EQ(client.retries, 2u);
    CHECK_EQ(atomic_load(&fk.connections), 2);
    CHECK(!strcmp(fk.tags, "abbd")); /* b again before d: their order kept */
    teardown();
}

/* The oldest request's deadline passes with two behind it: the connection
 * closes (its answer is owed there), the idempotent one is sent again, the
 * other reported; a cancel does the same without calling anything back
 * inside lr__httpc_cancel(). */
TEST(pipelined_behind_a_timeout_or_cancel)
{
    CHECK_OK(setup_pipelined(1, 4));
    static struct call c[3];
    const char *targets[] = {"/silent", "/len", "/len"};
    for (int i = 0; i < 3; i++) {
        call_init(&c[i], targets[i]);
        c[i].req.idempotent = i != 2;
        if (i == 0)
            c[i].req.deadline_ms = lr_loop_now_ms(loop) + 300;
        submit(&c[i]);
    }
    run();
    CHECK_ERR(c[0].status, -ETIMEDOUT);
    CHECK_EQ(c[1].status, 200);
    CHECK_ERR(c[2].status, LR_EEOF);
    CHECK_EQ(client.retries, 1u);

    for (int i = 0; i < 3; i++) {
        call_init(&c[i], targets[i]);
        c[i].req.idempotent = i != 2;
        submit(&c[i]);
    }
    run_for(100); /* all three in flight */
    CHECK(c[2].req.sent);
    lr__httpc_cancel(&c[0].req);
    pending--;
    CHECK_EQ(c[1].status, 1); /* nothing called back inside the cancel */
    CHECK_EQ(c[2].status, 1);
    run();
    CHECK_EQ(c[0].status, 1);
    CHECK_EQ(c[1].status, 200);
    CHECK_ERR(c[2].status, LR_EEOF);
    teardown();
}

TEST(no_allocation_in_steady_state)
{
    CHECK_OK(setup(2));
    static struct call c[2];
    for (int round = 0; round < 60; round++) {
        if (round == 10)
            alloccount_begin(); /* connections open and warm */
        for (int i = 0; i < 2; i++) {
            call_init(&c[i], i ? "/chunked" : "/len");
            submit(&c[i]);
        }
        run();
        CHECK_EQ(c[0].status, 200);
        CHECK_EQ(c[1].status, 200);
    }
    struct alloc_counts ac = alloccount_end();
    CHECK_EQ(ac.allocs, 0u);
    teardown();
}

/* TLS through lr__tls, against `openssl s_server -www` (an HTTP/1.0 status
 * page, the body read to the close): the certificate verifies against the
 * test CA for 127.0.0.1, and a client naming another host is refused. */
TEST(tls_through_wolfssl)
{
    static struct certs ce;
    CHECK_OK(certs_make(&ce, NULL));
    int port = 0;
    CHECK_OK(proc_pick_port(&port));
    char ports[16];
    snprintf(ports, sizeof(ports), "%d", port);
    const char *argv[] = {"openssl", "s_server",    "-accept", ports,    "-cert", ce.server_cert,
                          "-key",    ce.server_key, "-www",    "-quiet", NULL};
    pid_t pid = 0;
    off_t from = 0;
    CHECK_OK(proc_spawn_logged(argv, NULL, "/dev/null", &from, &pid));
    int fd = -1;
    for (int i = 0; i < 100 && fd < 0; i++) {
        if ((fd = proc_connect(port, 1000)) < 0)
            proc_sleep_ms(50);
    }
    CHECK(fd >= 0);
    close(fd);
    struct lr_loop_opts lo = {0};
    CHECK_OK(lr_loop_new(&loop, &lo));
    lr_timer_init(loop, &guard, guard_fired);
    struct lr__tls_ctx *ctx = NULL;
    struct lr__tls_opts to = {.ca_file = ce.ca};
    CHECK_OK(lr__tls_ctx_new(&ctx, &to));
    static struct call c;
    const char *names[] = {"127.0.0.1", "wrong.example"};
    for (int i = 0; i < 2; i++) {
        struct lr__httpc_opts o = {.host = "127.0.0.1",
                                   .port = (unsigned)port,
                                   .max_conns = 1,
                                   .out_cap = 4096,
                                   .timeout_ms = 3000,
                                   .tls_ctx = ctx,
                                   .tls_host = names[i]};
        memset(&client, 0, sizeof(client));
        CHECK_OK(lr__httpc_init(&client, loop, &o));
        call_init(&c, "/");
        c.req.resp = NULL; /* the status page: read and dropped */
        submit(&c);
        run();
        if (i == 0)
            CHECK_EQ(c.status, 200);
        else
            CHECK_ERR(c.status, LR_ETLS);
        client_closed = false;
        lr__httpc_close(&client, closed);
        wait_closed();
    }
    lr__tls_ctx_free(ctx);
    lr_loop_free(loop);
    proc_kill(&pid, NULL);
    certs_destroy(&ce);
}

TESTS(T(keep_alive_reuse_and_bodies), T(requests_spread_over_capped_connections),
      T(dependent_requests_never_overtake), T(first_goes_to_the_head), T(unreachable),
      T(body_over_limit_is_an_error), T(cancel_and_close), T(deadline),
      T(retry_once_on_server_closed_connection), T(pipelined_answers_matched_in_order),
      T(connection_dies_with_three_pipelined), T(pipelined_behind_a_timeout_or_cancel),
      T(no_allocation_in_steady_state), T(tls_through_wolfssl))
