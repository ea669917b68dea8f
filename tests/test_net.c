/* SPDX-License-Identifier: MIT */
/*
 * test_net.c - TCP connections on the loop against peers the test makes:
 * 1 MiB through an echo server compared byte for byte, connection refused,
 * peer close, connect timeout, close with requests in flight and reconnect.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <leasering.h>
#include "echo.h"
#include "harness.h"
#include "net_int.h"

struct client {
    struct lr__conn conn;
    int connect_status;
    int connected;
    int error;
    int closed;
    size_t sent;
    size_t received;
    size_t total;
    unsigned char *expect;
    int mismatch;
    int drains;
};

static void fill(struct client *cl)
{
    while (cl->sent < cl->total) {
        size_t avail;
        char *w = lr__conn_wbuf(&cl->conn, &avail);
        if (!avail)
            return; /* backpressure: on_drain continues */
        size_t n = cl->total - cl->sent;
        if (n > avail)
            n = avail;
        memcpy(w, cl->expect + cl->sent, n);
        lr__conn_commit(&cl->conn, n);
        cl->sent += n;
    }
}

static void on_connect(struct lr__conn *c, int status)
{
    struct client *cl = c->data;
    cl->connect_status = status;
    cl->connected = 1;
    if (status == 0 && cl->total)
        fill(cl);
    if (status < 0)
        lr_loop_stop(c->loop);
}

static void on_data(struct lr__conn *c, const char *buf, size_t len)
{
    struct client *cl = c->data;
    if (cl->received + len > cl->total || memcmp(cl->expect + cl->received, buf, len))
        cl->mismatch = 1;
    cl->received += len;
    if (cl->received >= cl->total)
        lr_loop_stop(c->loop);
}

static void on_drain(struct lr__conn *c)
{
    struct client *cl = c->data;
    cl->drains++;
    fill(cl);
}

static void on_error(struct lr__conn *c, int err)
{
    struct client *cl = c->data;
    cl->error = err;
    lr_loop_stop(c->loop);
}

static void on_close(struct lr__conn *c)
{
    struct client *cl = c->data;
    cl->closed++;
    lr_loop_stop(c->loop);
}

static const struct lr__conn_cbs cbs = {
    .on_connect = on_connect,
    .on_data = on_data,
    .on_drain = on_drain,
    .on_error = on_error,
    .on_close = on_close,
};

static int client_init(struct client *cl, struct lr_loop *loop, size_t out_cap)
{
    int rc = lr__conn_init(&cl->conn, loop, out_cap, &cbs);
    cl->conn.data = cl;
    return rc;
}

static struct lr_loop *new_loop(void)
{
    struct lr_loop *loop = NULL;
    /* Small receive buffers so 1 MiB crosses many of them. */
    struct lr_loop_opts o = {.buf_count = 16, .buf_size = 4096};
    if (lr_loop_new(&loop, &o) < 0)
        return NULL;
    return loop;
}

TEST(one_mib_through_echo)
{
    struct echo_server es;
    CHECK_OK(echo_start(&es, ECHO_ECHO));
    struct lr_loop *loop = new_loop();
    CHECK(loop != NULL);
    static struct client cl;
    memset(&cl, 0, sizeof(cl));
    cl.total = 1 << 20;
    cl.expect = malloc(cl.total);
    CHECK(cl.expect != NULL);
    for (size_t i = 0; i < cl.total; i++)
        cl.expect[i] = (unsigned char)(i * 131 + (i >> 9));
    CHECK_OK(client_init(&cl, loop, 32768));
    CHECK_OK(lr__conn_connect(&cl.conn, (struct sockaddr *)&es.addr, sizeof(es.addr), 2000));
    CHECK_ERR(lr__conn_connect(&cl.conn, (struct sockaddr *)&es.addr, sizeof(es.addr), 0),
              -EBUSY);
    CHECK_OK(lr_loop_run(loop));
    CHECK_OK(cl.connect_status);
    CHECK_OK(cl.error);
    CHECK_EQ(cl.received, cl.total);
    CHECK_EQ(cl.mismatch, 0);
    CHECK(cl.drains > 0); /* 1 MiB through a 32 KiB buffer needed backpressure */
    printf("     1 MiB echoed: %llu sends, %d drains\n", (unsigned long long)cl.conn.sends,
           cl.drains);
    lr__conn_close(&cl.conn);
    CHECK_EQ(cl.closed, 0); /* never inline */
    CHECK_OK(lr_loop_run(loop));
    CHECK_EQ(cl.closed, 1);
    CHECK_EQ(cl.conn.fd, -1);
    lr__conn_deinit(&cl.conn);
    lr_loop_free(loop);
    free(cl.expect);
    echo_stop(&es);
}

TEST(connection_refused_is_a_clear_code)
{
    struct sockaddr_in sa;
    CHECK_OK(free_port_sockaddr(&sa));
    struct lr_loop *loop = new_loop();
    CHECK(loop != NULL);
    struct client cl = {0};
    CHECK_OK(client_init(&cl, loop, 1024));
    CHECK_OK(lr__conn_connect(&cl.conn, (struct sockaddr *)&sa, sizeof(sa), 2000));
    CHECK_OK(lr_loop_run(loop));
    CHECK_ERR(cl.connect_status, -ECONNREFUSED);
    CHECK_EQ(cl.conn.state, LR_CONN_IDLE);
    /* A unix socket path that does not exist: ENOENT through the callback. */
    struct sockaddr_un sun = {.sun_family = AF_UNIX, .sun_path = "/tmp/leasering-none/r.sock"};
    CHECK_OK(lr__conn_connect(&cl.conn, (struct sockaddr *)&sun, sizeof(sun), 2000));
    CHECK_OK(lr_loop_run(loop));
    CHECK_ERR(cl.connect_status, -ENOENT);
    CHECK_EQ(cl.conn.state, LR_CONN_IDLE);
    /* A bad address is refused synchronously, without a callback. */
    struct sockaddr bad = {.sa_family = AF_PACKET};
    CHECK_ERR(lr__conn_connect(&cl.conn, &bad, sizeof(bad), 0), -EINVAL);
    lr__conn_deinit(&cl.conn);
    lr_loop_free(loop);
}

TEST(peer_close_is_eof)
{
    struct echo_server es;
    CHECK_OK(echo_start(&es, ECHO_CLOSE));
    struct lr_loop *loop = new_loop();
    CHECK(loop != NULL);
    struct client cl = {0};
    CHECK_OK(client_init(&cl, loop, 1024));
    CHECK_OK(lr__conn_connect(&cl.conn, (struct sockaddr *)&es.addr, sizeof(es.addr), 2000));
    CHECK_OK(lr_loop_run(loop));
    CHECK_OK(cl.connect_status);
    CHECK_ERR(cl.error, LR_EEOF);
    CHECK(strstr(lr_strerror(cl.error), "closed") != NULL);
    lr__conn_close(&cl.conn);
    CHECK_OK(lr_loop_run(loop));
    CHECK_EQ(cl.closed, 1);
    lr__conn_deinit(&cl.conn);
    lr_loop_free(loop);
    echo_stop(&es);
}

TEST(connect_timeout_when_syns_are_dropped)
{
    /* A listener that never accepts, with its backlog filled: the kernel
     * drops further SYNs, so a connect hangs until our deadline. */
    int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    CHECK_OK(bind(lfd, (struct sockaddr *)&sa, sizeof(sa)));
    socklen_t sl = sizeof(sa);
    CHECK_OK(getsockname(lfd, (struct sockaddr *)&sa, &sl));
    CHECK_OK(listen(lfd, 0));
    int fillers[4];
    for (int i = 0; i < 4; i++) {
        fillers[i] = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        connect(fillers[i], (struct sockaddr *)&sa, sizeof(sa));
    }
    usleep(20000);
    struct lr_loop *loop = new_loop();
    CHECK(loop != NULL);
    struct client cl = {0};
    CHECK_OK(client_init(&cl, loop, 1024));
    uint64_t t0 = lr_loop_now_ms(loop);
    CHECK_OK(lr__conn_connect(&cl.conn, (struct sockaddr *)&sa, sizeof(sa), 150));
    CHECK_OK(lr_loop_run(loop));
    uint64_t took = lr_loop_now_ms(loop) - t0;
    printf("     connect gave %s after %llu ms (deadline 150 ms)\n",
           lr_err_name(cl.connect_status), (unsigned long long)took);
    CHECK_ERR(cl.connect_status, -ETIMEDOUT);
    CHECK(took >= 150 && took < 3000);
    lr__conn_deinit(&cl.conn);
    lr_loop_free(loop);
    for (int i = 0; i < 4; i++)
        close(fillers[i]);
    close(lfd);
}

TEST(close_with_recv_in_flight_then_reconnect)
{
    struct echo_server es;
    CHECK_OK(echo_start(&es, ECHO_ECHO));
    struct lr_loop *loop = new_loop();
    CHECK(loop != NULL);
    static struct client cl;
    memset(&cl, 0, sizeof(cl));
    CHECK_OK(client_init(&cl, loop, 1024));
    for (int round = 0; round < 3; round++) {
        cl.connected = 0;
        cl.closed = 0;
        CHECK_OK(lr__conn_connect(&cl.conn, (struct sockaddr *)&es.addr, sizeof(es.addr), 2000));
        /* Written before the connect completes: leaves once it is open. */
        cl.total = 5;
        cl.sent = 5; /* written by hand below, not by fill() */
        cl.received = 0;
        cl.expect = (unsigned char *)"hello";
        CHECK_OK(lr__conn_write(&cl.conn, "hello", 5));
        CHECK_OK(lr_loop_run(loop));
        CHECK_EQ(cl.received, 5);
        CHECK_EQ(cl.mismatch, 0);
        CHECK(cl.conn.recv_op.inflight == 1); /* the multishot recv is armed */
        lr__conn_close(&cl.conn);
        lr__conn_close(&cl.conn); /* idempotent */
        CHECK_OK(lr_loop_run(loop));
        CHECK_EQ(cl.closed, 1);
        CHECK_EQ(cl.conn.recv_op.inflight, 0);
        CHECK_EQ(cl.conn.fd, -1);
    }
    CHECK_ERR(lr__conn_write(&cl.conn, cl.conn.out, 2048), -ENOBUFS);
    lr__conn_deinit(&cl.conn);
    lr_loop_free(loop);
    echo_stop(&es);
}

TESTS(T(one_mib_through_echo), T(connection_refused_is_a_clear_code), T(peer_close_is_eof),
      T(connect_timeout_when_syns_are_dropped), T(close_with_recv_in_flight_then_reconnect))
