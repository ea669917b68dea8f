/* SPDX-License-Identifier: MIT */
/*
 * test_exporter.c - the metrics exporter over plain sockets: /metrics bytes
 * and counters, /healthz 200 then 503 while a lease is in jeopardy,
 * keep-alive, 404/405, garbage (400 and close), an oversized head (431 and
 * close), a slowloris client closed by the deadline while another is served,
 * more clients than the cap, and scrapes that allocate nothing.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>

#include <leasering.h>
#include "alloccount.h"
#include "exporter_client.h"
#include "exporter_int.h"
#include "exporter_fixture.h"
#include "harness.h"
#include "mem.h"
#include "recorder.h"


static char buf[65536];

static int setup(struct fixture *f)
{
    return fixture_setup(f, 2, 2000);
}

/* GET @path on @fd; the response in buf. */
static size_t get(int fd, const char *path, bool *closed)
{
    char req[256];
    snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: x\r\n\r\n", path);
    if (ec_send(fd, req))
        return 0;
    return ec_read(loop, fd, buf, sizeof buf, 2000, closed);
}

/* Send @req (and @more), expect a response starting with @status, then the
 * server's close. 0 or -1; the response in buf. */
static int answer_then_close(int port, const char *req, const char *more, const char *status)
{
    bool closed;
    int fd = ec_connect(port);
    int ok = fd >= 0 && !ec_send(fd, req) && (!more || !ec_send(fd, more));
    ok = ok && ec_read(loop, fd, buf, sizeof buf, 2000, &closed) &&
         !strncmp(buf, status, strlen(status));
    char tail[256];
    ok = ok && !ec_read(loop, fd, tail, sizeof tail, 2000, &closed) && closed;
    if (fd >= 0)
        close(fd);
    if (!ok)
        fprintf(stderr, "expected %s then close; got: %.200s\n", status, buf);
    return ok ? 0 : -1;
}

TEST(metrics_and_keepalive)
{
    struct fixture f;
    CHECK_OK(setup(&f));
    int fd = ec_connect(f.port);
    CHECK(fd >= 0);
    bool closed;
    get(fd, "/metrics", &closed);
    CHECK(!closed);
    CHECK(!strncmp(buf, "HTTP/1.1 200 OK\r\n", 17));
    CHECK(strstr(buf, "Content-Type: text/plain; version=0.0.4; charset=utf-8\r\n"));
    const char *b = ec_body(buf);
    CHECK(strstr(b, "# TYPE leasering_leases_held gauge\n"));
    CHECK(strstr(b, "\nleasering_leases_held{manager=\"main\"} 2\n"));
    CHECK(strstr(b, "\nleasering_leases{manager=\"main\"} 3\n"));
    CHECK(strstr(b, "\nleasering_acquisitions_total{manager=\"main\"} 2\n"));
    CHECK(strstr(b, "\nleasering_leases_in_jeopardy{manager=\"main\"} 0\n"));
    CHECK(strstr(b, "\nleasering_renew_latency_seconds_bucket{manager=\"main\",le=\"+Inf\"} "));
    CHECK(strstr(b, "\nleasering_timer_lateness_seconds_count{manager=\"main\"} "));
    /* Content-Length matches the body exactly. */
    const char *cl = strstr(buf, "Content-Length: ");
    CHECK(cl && strtoul(cl + 16, NULL, 10) == strlen(b));
    /* The same connection serves a second request. */
    get(fd, "/healthz", &closed);
    CHECK(!closed);
    CHECK(!strncmp(buf, "HTTP/1.1 200 OK\r\n", 17));
    CHECK(!strcmp(ec_body(buf), "{\"status\":\"ok\"}\n"));
    /* Two pipelined requests in one send: two responses. */
    CHECK_OK(ec_send(fd, "GET /healthz HTTP/1.1\r\n\r\nGET /nope HTTP/1.1\r\n\r\n"));
    ec_read(loop, fd, buf, sizeof buf, 2000, &closed);
    CHECK(!strncmp(buf, "HTTP/1.1 200 OK\r\n", 17));
    if (!strstr(buf, "404 Not Found"))
        ec_read(loop, fd, buf, sizeof buf, 2000, &closed);
    CHECK(strstr(buf, "HTTP/1.1 404 Not Found\r\n"));
    close(fd);
    fixture_teardown(&f);
}

TEST(errors)
{
    struct fixture f;
    CHECK_OK(setup(&f));
    bool closed;
    int fd = ec_connect(f.port);
    get(fd, "/other", &closed);
    CHECK(!strncmp(buf, "HTTP/1.1 404 Not Found\r\n", 24));
    CHECK(!closed);
    CHECK_OK(ec_send(fd, "POST /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n"));
    ec_read(loop, fd, buf, sizeof buf, 2000, &closed);
    CHECK(!strncmp(buf, "HTTP/1.1 405 Method Not Allowed\r\n", 33));
    CHECK(strstr(buf, "Allow: GET, HEAD\r\n"));
    /* HEAD: the head alone. */
    CHECK_OK(ec_send(fd, "HEAD /healthz HTTP/1.1\r\n\r\n"));
    size_t n = ec_read(loop, fd, buf, sizeof buf, 300, &closed);
    CHECK(!strncmp(buf, "HTTP/1.1 200 OK\r\n", 17));
    CHECK_EQ(n, (size_t)(strstr(buf, "\r\n\r\n") + 4 - buf));
    close(fd);

    /* Garbage: 400, then the server closes. */
    CHECK_OK(answer_then_close(f.port, "\x01\x02 hello\r\n\r\n", NULL,
                               "HTTP/1.1 400 Bad Request\r\n"));
    CHECK(strstr(buf, "Connection: close\r\n"));
    /* A body is refused. */
    CHECK_OK(answer_then_close(f.port, "GET /metrics HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n",
                               NULL, "HTTP/1.1 400 Bad Request\r\n"));
    /* A head larger than the input buffer: 431 and close. */
    static char pad[LR_EXPORTER_REQ_MAX + 100];
    memset(pad, 'a', sizeof pad - 1);
    CHECK_OK(answer_then_close(f.port, "GET /metrics HTTP/1.1\r\nX-Pad: ", pad,
                               "HTTP/1.1 431 Request Header Fields Too Large\r\n"));
    /* HTTP/1.0 ends the connection after the response. */
    CHECK_OK(answer_then_close(f.port, "GET /healthz HTTP/1.0\r\n\r\n", NULL,
                               "HTTP/1.1 200 OK\r\n"));
    CHECK_OK(answer_then_close(f.port, "GET /healthz HTTP/1.1\r\nConnection: close\r\n\r\n",
                               NULL, "HTTP/1.1 200 OK\r\n"));
    fixture_teardown(&f);
}

TEST(healthz_jeopardy)
{
    struct fixture f;
    CHECK_OK(setup(&f));
    CHECK_OK(lr__mem_set_mode(f.m, LR_MEM_UNAVAIL));
    run_until(EV_JEOP, 3000);
    CHECK(rec_count(EV_JEOP, NULL) > 0);
    int fd = ec_connect(f.port);
    bool closed;
    get(fd, "/healthz", &closed);
    CHECK(!strncmp(buf, "HTTP/1.1 503 Service Unavailable\r\n", 34));
    CHECK(strstr(buf, "Content-Type: application/json\r\n"));
    CHECK(!strcmp(ec_body(buf),
                  "{\"status\":\"unhealthy\",\"manager\":\"main\",\"reason\":\"lease in jeopardy\"}\n"));
    get(fd, "/metrics", &closed);
    CHECK(strstr(ec_body(buf), "\nleasering_leases_in_jeopardy{manager=\"main\"} "));
    CHECK(!strstr(ec_body(buf), "\nleasering_leases_in_jeopardy{manager=\"main\"} 0\n"));
    close(fd);
    CHECK_OK(lr__mem_set_mode(f.m, LR_MEM_NORMAL));
    fixture_teardown(&f);
}

TEST(slowloris_and_cap)
{
    struct fixture f;
    CHECK_OK(setup(&f));
    lr__exporter_set_deadline(f.e, 1500);
    bool closed;
    /* One byte every 200 ms: never a complete head before the deadline. */
    int slow = ec_connect(f.port);
    const char *req = "GET /metrics HTTP/1.1\r\nHost: slow\r\n\r\n";
    uint64_t t0 = ec_ms();
    size_t sent = 0;
    bool slow_closed = false;
    while (ec_ms() - t0 < 4000 && !slow_closed) {
        if (sent < strlen(req) && send(slow, req + sent, 1, MSG_NOSIGNAL) == 1)
            sent++;
        /* Meanwhile another client is served at once. */
        int fd = ec_connect(f.port);
        uint64_t s0 = ec_ms();
        get(fd, "/healthz", &closed);
        CHECK(!strncmp(buf, "HTTP/1.1 200 OK\r\n", 17));
        CHECK(ec_ms() - s0 < 500);
        close(fd);
        char c;
        ec_pump(loop, 200);
        ssize_t r = recv(slow, &c, 1, MSG_DONTWAIT);
        slow_closed = r == 0 || (r < 0 && errno != EAGAIN);
    }
    CHECK(slow_closed);
    uint64_t took = ec_ms() - t0;
    CHECK(took >= 1400 && took < 3000);
    close(slow);

    /* Twice the cap: the extra ones are closed at once, the first cap
     * connections still work, and nothing is allocated meanwhile. */
    int fds[2 * LR_EXPORTER_MAX_CONN];
    alloccount_begin();
    for (int i = 0; i < 2 * LR_EXPORTER_MAX_CONN; i++) {
        fds[i] = ec_connect(f.port);
        ec_pump(loop, 5);
    }
    int refused = 0;
    for (int i = LR_EXPORTER_MAX_CONN; i < 2 * LR_EXPORTER_MAX_CONN; i++) {
        ec_read(loop, fds[i], buf, sizeof buf, 500, &closed);
        refused += closed;
    }
    struct alloc_counts ac = alloccount_end();
    CHECK_EQ(refused, LR_EXPORTER_MAX_CONN);
    CHECK_EQ(ac.allocs, 0);
    for (int i = 0; i < LR_EXPORTER_MAX_CONN; i++) {
        get(fds[i], "/healthz", &closed);
        CHECK(!strncmp(buf, "HTTP/1.1 200 OK\r\n", 17));
    }
    for (int i = 0; i < 2 * LR_EXPORTER_MAX_CONN; i++)
        close(fds[i]);
    fixture_teardown(&f);
}

TEST(scrapes_allocate_nothing)
{
    struct fixture f;
    CHECK_OK(setup(&f));
    CHECK(alloccount_selftest());
    int fd = ec_connect(f.port);
    bool closed;
    get(fd, "/metrics", &closed); /* warm up */
    alloccount_begin();
    for (int i = 0; i < 50; i++) {
        get(fd, i % 2 ? "/metrics" : "/healthz", &closed);
        CHECK(!strncmp(buf, "HTTP/1.1 200 OK\r\n", 17));
    }
    struct alloc_counts ac = alloccount_end();
    CHECK_EQ(ac.allocs, 0);
    close(fd);
    fixture_teardown(&f);
}

/* Completions reaped while pumping the loop for @ms. */
static int reaped_during(unsigned ms)
{
    int n = 0;
    uint64_t end = ec_ms() + ms;
    while (ec_ms() < end) {
        n += lr_loop_process(loop);
        poll(NULL, 0, 1);
    }
    return n;
}

TEST(accept_out_of_fds)
{
    struct fixture f;
    CHECK_OK(setup(&f));
    struct rlimit old, low;
    CHECK_OK(getrlimit(RLIMIT_NOFILE, &old));
    /* Room for exactly one more fd: the client's socket. */
    int probe = dup(0);
    CHECK(probe >= 0);
    close(probe);
    low = old;
    low.rlim_cur = (rlim_t)probe + 1;
    CHECK_OK(setrlimit(RLIMIT_NOFILE, &low));
    int fd = ec_connect(f.port);
    int n = reaped_during(600);
    CHECK_OK(setrlimit(RLIMIT_NOFILE, &old));
    CHECK(fd >= 0);
    /* The accept failed with -EMFILE and was retried every 100 ms, not spun. */
    CHECK(n >= 2 && n <= 10);
    bool closed;
    get(fd, "/healthz", &closed);
    CHECK(!strncmp(buf, "HTTP/1.1 200 OK\r\n", 17));
    close(fd);
    fixture_teardown(&f);
}

TEST(bad_arguments)
{
    rec_setup();
    struct lr_exporter *e;
    CHECK_ERR(lr_exporter_new(&e, loop, "nonsense"), -EINVAL);
    CHECK_ERR(lr_exporter_new(&e, loop, "127.0.0.1:99999"), -EINVAL);
    CHECK_ERR(lr_exporter_new(&e, loop, "example.com:80"), -EINVAL);
    CHECK_OK(lr_exporter_new(&e, loop, ":0"));
    CHECK_ERR(lr_exporter_add(e, NULL, "x"), -EINVAL);
    lr_exporter_free(e);
}

TESTS(T(metrics_and_keepalive), T(errors), T(healthz_jeopardy), T(slowloris_and_cap),
      T(scrapes_allocate_nothing), T(accept_out_of_fds), T(bad_arguments))
