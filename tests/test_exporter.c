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
#include "backend_int.h"
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

/* GET /healthz on a new connection: 0 when it answered @status with @body. */
static int health_is(int port, const char *status, const char *body)
{
    bool closed;
    int fd = ec_connect(port);
    get(fd, "/healthz", &closed);
    close(fd);
    if (!strncmp(buf, status, strlen(status)) && !strcmp(ec_body(buf), body))
        return 0;
    fprintf(stderr, "healthz: expected %s%s; got: %.300s\n", status, body, buf);
    return -1;
}

#define OK_200 "HTTP/1.1 200 OK\r\n"
#define NO_503 "HTTP/1.1 503 Service Unavailable\r\n"
#define UNHEALTHY(why) "{\"status\":\"unhealthy\",\"manager\":\"main\",\"reason\":\"" why "\"}\n"

TEST(healthz_jeopardy_and_unreachable)
{
    struct fixture f;
    CHECK_OK(setup(&f));
    CHECK_OK(health_is(f.port, OK_200, "{\"status\":\"ok\"}\n"));
    /* A store that holds requests: renewals time out, leases in jeopardy,
     * but the store is not said unreachable. */
    CHECK_OK(lr__mem_set_mode(f.m, LR_MEM_STALL));
    run_until(EV_JEOP, 3000);
    CHECK(rec_count(EV_JEOP, NULL) > 0);
    int fd = ec_connect(f.port);
    bool closed;
    get(fd, "/healthz", &closed);
    CHECK(!strncmp(buf, NO_503, 34));
    CHECK(strstr(buf, "Content-Type: application/json\r\n"));
    CHECK(!strcmp(ec_body(buf), UNHEALTHY("lease in jeopardy")));
    get(fd, "/metrics", &closed);
    CHECK(strstr(ec_body(buf), "\nleasering_leases_in_jeopardy{manager=\"main\"} "));
    CHECK(!strstr(ec_body(buf), "\nleasering_leases_in_jeopardy{manager=\"main\"} 0\n"));
    close(fd);
    /* Back to normal: the retries renew, healthy again. */
    CHECK_OK(lr__mem_set_mode(f.m, LR_MEM_NORMAL));
    rec_setup();
    run_until(EV_RENEW, 3000);
    run_until(EV_RENEW, 3000);
    CHECK_OK(health_is(f.port, OK_200, "{\"status\":\"ok\"}\n"));
    /* The store unreachable: 503 at once, before any lease notices. */
    CHECK_OK(lr__mem_set_mode(f.m, LR_MEM_UNAVAIL));
    CHECK_OK(health_is(f.port, NO_503, UNHEALTHY("store unreachable")));
    CHECK_OK(lr__mem_set_mode(f.m, LR_MEM_NORMAL));
    CHECK_OK(health_is(f.port, OK_200, "{\"status\":\"ok\"}\n"));
    fixture_teardown(&f);
}

/* Two strings equal, both printed when not. */
#define CHECK_STR(a, b)                                                                    \
    do {                                                                                   \
        const char *lrt_s = (a), *lrt_t = (b);                                             \
        if (strcmp(lrt_s, lrt_t)) {                                                        \
            fprintf(stderr, "%s:%d: CHECK_STR(%s) failed: \"%s\" != \"%s\"\n", __FILE__,  \
                    __LINE__, #a, lrt_s, lrt_t);                                           \
            lrt_failed_checks++;                                                           \
            return;                                                                        \
        }                                                                                  \
    } while (0)

static char body[65536];

/* Scrape /metrics into body (its body only); body is "" on failure. */
static const char *scrape(int port)
{
    bool closed;
    int fd = ec_connect(port);
    body[0] = '\0';
    if (fd >= 0 && get(fd, "/metrics", &closed) && !strncmp(buf, OK_200, 17))
        snprintf(body, sizeof body, "%s", ec_body(buf));
    if (fd >= 0)
        close(fd);
    return body;
}

/* The value of the series @s (name and labels) in the last scrape, -1 when
 * absent. */
static long long val(const char *s)
{
    return ec_value(body, s);
}

#define M "{manager=\"main\"}"
#define ML(l) "{manager=\"main\"," l "}"

/* Every family of the set, each series present. */
static const char *const every_series[] = {
    "leasering_acquisitions_total" M,
    "leasering_acquisition_failures_total" ML("reason=\"conflict\""),
    "leasering_acquisition_failures_total" ML("reason=\"timeout\""),
    "leasering_acquisition_failures_total" ML("reason=\"unavailable\""),
    "leasering_acquisition_failures_total" ML("reason=\"auth\""),
    "leasering_acquisition_failures_total" ML("reason=\"other\""),
    "leasering_acquire_conflicts_total" M,
    "leasering_renewals_total" M,
    "leasering_renewal_failures_total" M,
    "leasering_losses_total" ML("reason=\"lost\""),
    "leasering_losses_total" ML("reason=\"expired\""),
    "leasering_losses_total" ML("reason=\"unavailable\""),
    "leasering_releases_total" M,
    "leasering_leases" M,
    "leasering_leases_held" M,
    "leasering_leases_in_jeopardy" M,
    "leasering_connections_up" M,
    "leasering_requests_in_flight" M,
    "leasering_store_requests_total" M,
    "leasering_reconnects_total" M,
    "leasering_store_errors_total" ML("kind=\"unreachable\""),
    "leasering_store_errors_total" ML("kind=\"auth\""),
    "leasering_store_errors_total" ML("kind=\"tls\""),
    "leasering_store_errors_total" ML("kind=\"timeout\""),
    "leasering_store_errors_total" ML("kind=\"protocol\""),
    "leasering_store_errors_total" ML("kind=\"server\""),
    "leasering_store_errors_total" ML("kind=\"config\""),
    "leasering_store_errors_total" ML("kind=\"other\""),
    "leasering_acquire_duration_seconds_count" M,
    "leasering_renew_latency_seconds_count" M,
    "leasering_timer_lateness_seconds_count" M,
};

/* The counters of @fam with each label value, as a string "a,b,c" to
 * compare a whole family at once. */
static const char *family_values(const char *fam, const char *const *labels, int n)
{
    static char out[256];
    size_t w = 0;
    for (int i = 0; i < n; i++) {
        char s[200];
        snprintf(s, sizeof s, "%s{manager=\"main\",%s}", fam, labels[i]);
        w += (size_t)snprintf(out + w, sizeof out - w, "%s%lld", i ? "," : "", val(s));
    }
    return out;
}

static const char *const fail_reasons[] = {"reason=\"conflict\"", "reason=\"timeout\"",
                                           "reason=\"unavailable\"", "reason=\"auth\"",
                                           "reason=\"other\""};
static const char *const loss_reasons[] = {"reason=\"lost\"", "reason=\"expired\"",
                                           "reason=\"unavailable\""};
#define FAILS() family_values("leasering_acquisition_failures_total", fail_reasons, 5)
#define LOSSES() family_values("leasering_losses_total", loss_reasons, 3)

/* Acquisition failures and losses, each under its reason, on mem:// driven
 * into each failure; the gauges and the acquire duration with them. */
TEST(counters_by_reason_mem)
{
    struct fixture f;
    CHECK_OK(setup(&f)); /* a, b held; c idle */
    scrape(f.port);
    for (size_t i = 0; i < sizeof every_series / sizeof every_series[0]; i++) {
        if (val(every_series[i]) < 0)
            fprintf(stderr, "missing: %s\n", every_series[i]);
        CHECK(val(every_series[i]) >= 0);
    }
    CHECK_STR(FAILS(), "0,0,0,0,0");
    CHECK_STR(LOSSES(), "0,0,0");
    CHECK_EQ(val("leasering_acquire_duration_seconds_count" M), 2);
    CHECK_EQ(val("leasering_connections_up" M), 1);
    CHECK_EQ(val("leasering_requests_in_flight" M), 0);

    /* Conflict: a second lease on "a" in the same store. */
    struct lr_lease x, y, z;
    CHECK_OK(lr_lease_init(f.m, &x, "a", NULL));
    CHECK_OK(lr_lease_try_acquire(&x));
    run_until(EV_ACQFAIL, 2000);
    scrape(f.port);
    CHECK_STR(FAILS(), "1,0,0,0,0");
    CHECK_EQ(val("leasering_acquire_conflicts_total" M), 1);
    CHECK_EQ(val("leasering_acquire_duration_seconds_count" M), 3);

    /* Lost (the store says someone else's): x breaks a's lease. */
    CHECK_OK(lr_lease_break(&x, 0));
    run_until(EV_LOST, 3000);
    CHECK_EQ(rec_count(EV_LOST, &f.l[0]), 1);
    CHECK_ERR(rec_first(EV_LOST, &f.l[0])->status, LR_ELOST);
    scrape(f.port);
    CHECK_STR(LOSSES(), "1,0,0");

    /* Unreachable: an acquisition fails "unavailable" at once; b, renewing
     * into a store it cannot reach, is lost "unavailable". */
    CHECK_OK(lr__mem_set_mode(f.m, LR_MEM_UNAVAIL));
    CHECK_OK(lr_lease_try_acquire(&f.l[2]));
    run_until(EV_ACQFAIL, 2000);
    scrape(f.port);
    CHECK_STR(FAILS(), "1,0,1,0,0");
    CHECK_EQ(val("leasering_connections_up" M), 0);
    run_until(EV_LOST, 4000);
    CHECK_EQ(rec_count(EV_LOST, &f.l[1]), 1);
    scrape(f.port);
    CHECK_STR(LOSSES(), "1,0,1");
    CHECK_EQ(val("leasering_leases_held" M), 0);

    /* A store that holds requests: an acquisition times out, while it waits
     * it is in flight; y, held, renews into the stall and expires. */
    CHECK_OK(lr__mem_set_mode(f.m, LR_MEM_NORMAL));
    CHECK_OK(lr_lease_init(f.m, &y, "d", NULL));
    CHECK_OK(lr_lease_acquire(&y, 1000));
    run_until(EV_ACQ, 2000);
    CHECK_OK(lr__mem_set_mode(f.m, LR_MEM_STALL));
    CHECK_OK(lr_lease_try_acquire(&f.l[2]));
    run_until(0, 50);
    scrape(f.port);
    CHECK_EQ(val("leasering_requests_in_flight" M), 1);
    CHECK_EQ(val("leasering_connections_up" M), 1);
    run_until(EV_ACQFAIL, 2000);
    scrape(f.port);
    CHECK_STR(FAILS(), "1,1,1,0,0");
    run_until(EV_LOST, 4000);
    CHECK_EQ(rec_count(EV_LOST, &y), 1);
    scrape(f.port);
    CHECK_STR(LOSSES(), "1,1,1");
    CHECK(val("leasering_renewal_failures_total" M) > 0);

    /* A release. */
    CHECK_OK(lr__mem_set_mode(f.m, LR_MEM_NORMAL));
    CHECK_OK(lr_lease_init(f.m, &z, "e", NULL));
    CHECK_OK(lr_lease_acquire(&z, 1000));
    run_until(EV_ACQ, 2000);
    scrape(f.port);
    long long rel = val("leasering_releases_total" M);
    CHECK_EQ(val("leasering_leases_held" M), 1);
    CHECK_OK(lr_lease_release(&z));
    run_until(EV_REL, 2000);
    scrape(f.port);
    CHECK_EQ(val("leasering_releases_total" M), rel + 1);
    CHECK_EQ(val("leasering_leases_held" M), 0);
    CHECK_EQ(val("leasering_acquire_duration_seconds_count" M), 7);
    lr_lease_deinit(&x);
    lr_lease_deinit(&y);
    lr_lease_deinit(&z);
    fixture_teardown(&f);
}

static const char *const error_kinds[] = {
    "kind=\"unreachable\"", "kind=\"auth\"",   "kind=\"tls\"",    "kind=\"timeout\"",
    "kind=\"protocol\"",    "kind=\"server\"", "kind=\"config\"", "kind=\"other\""};
#define ERRORS() family_values("leasering_store_errors_total", error_kinds, 8)

/* Each connection-level failure a backend tells (lr__manager_store_error)
 * counts under its kind, the texts as the backends write them. */
TEST(store_errors_by_kind)
{
    struct fixture f;
    CHECK_OK(setup(&f));
    static const struct {
        int status;
        const char *text;
        const char *after;
    } cases[] = {
        {-ECONNREFUSED, "redis 127.0.0.1:1: connection refused", "1,0,0,0,0,0,0,0"},
        {LR_EEOF, "redis 127.0.0.1:1: connection lost: closed", "2,0,0,0,0,0,0,0"},
        {-EHOSTUNREACH, "azblob x:1: name not resolved (no such host)", "3,0,0,0,0,0,0,0"},
        {LR_EAUTH, "redis 127.0.0.1:1: auth refused: WRONGPASS", "3,1,0,0,0,0,0,0"},
        {LR_ETLS, "rediss h:1: certificate verify failed", "3,1,1,0,0,0,0,0"},
        {-ETIMEDOUT, "redis h:1: no reply within the request timeout", "3,1,1,1,0,0,0,0"},
        {LR_EBADREPLY, "redis h:1: malformed reply; reconnecting", "3,1,1,1,1,0,0,0"},
        {LR_ESTORE, "redis h:1: OOM command not allowed", "3,1,1,1,1,1,0,0"},
        {LR_ESTORE, "redis h:1: warning: appendonly is no", "3,1,1,1,1,1,1,0"},
        {-EINVAL, "redis: wait_ms= must be below the request timeout", "3,1,1,1,1,1,2,0"},
        {LR_ELOST, "redis h:1: session lost", "3,1,1,1,1,1,2,1"},
    };
    scrape(f.port);
    CHECK_STR(ERRORS(), "0,0,0,0,0,0,0,0");
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        lr__manager_store_error(f.m, cases[i].status, "%s", cases[i].text);
        scrape(f.port);
        if (strcmp(ERRORS(), cases[i].after))
            fprintf(stderr, "after \"%s\":\n", cases[i].text);
        CHECK_STR(ERRORS(), cases[i].after);
    }
    fixture_teardown(&f);
}

/* The same through the chaos decorator: acquisitions whose requests are
 * refused or lose their reply fail as unavailable or timeout, renewals
 * held past the TTL expire the lease, and the inner store's gauges show
 * through (a held result is still in flight for the lease). */
TEST(counters_by_reason_chaos)
{
    rec_setup();
    struct lr_manager *m;
    struct lr_exporter *e;
    struct lr_manager_opts o = {.ttl_ms = 2000, .cbs = &rec_cbs, .max_leases = 32};
    CHECK_OK(lr_manager_new(&m, loop, "chaos+mem://expchaos?fail=1&ops=acquire&seed=7", &o));
    CHECK_OK(lr_exporter_new(&e, loop, "127.0.0.1:0"));
    CHECK_OK(lr_exporter_add(e, m, "main"));
    int port = lr_exporter_port(e);
    struct lr_lease l[24];
    for (int i = 0; i < 24; i++) {
        char name[8];
        snprintf(name, sizeof name, "n%d", i);
        CHECK_OK(lr_lease_init(m, &l[i], name, NULL));
        CHECK_OK(lr_lease_try_acquire(&l[i]));
    }
    for (int i = 0; i < 10 && rec_count(EV_ACQFAIL, NULL) < 24; i++)
        run_until(EV_ACQFAIL, 1500);
    CHECK_EQ(rec_count(EV_ACQFAIL, NULL), 24);
    scrape(port);
    long long to = val("leasering_acquisition_failures_total" ML("reason=\"timeout\"")),
              un = val("leasering_acquisition_failures_total" ML("reason=\"unavailable\""));
    CHECK(to > 0 && un > 0);
    CHECK_EQ(to + un, 24);
    CHECK_EQ(val("leasering_acquire_duration_seconds_count" M), 24);
    CHECK_EQ(val("leasering_connections_up" M), 1);
    for (int i = 0; i < 24; i++)
        lr_lease_deinit(&l[i]);
    lr_exporter_free(e);
    close_mgr(m);

    /* Renewals held 5 s (past the TTL): in flight meanwhile, then expired. */
    rec_setup();
    CHECK_OK(lr_manager_new(&m, loop, "chaos+mem://expchaos?stall_ms=5000&ops=renew", &o));
    CHECK_OK(lr_exporter_new(&e, loop, "127.0.0.1:0"));
    CHECK_OK(lr_exporter_add(e, m, "main"));
    port = lr_exporter_port(e);
    CHECK_OK(lr_lease_init(m, &l[0], "held", NULL));
    CHECK_OK(lr_lease_acquire(&l[0], 1000));
    run_until(EV_ACQ, 2000);
    run_until(EV_JEOP, 3000);
    /* Retries go out after a short backoff, each held until it times out:
     * mostly one in flight, never more. */
    long long most = 0;
    for (int i = 0; i < 10; i++) {
        run_until(0, 40);
        scrape(port);
        long long n = val("leasering_requests_in_flight" M);
        CHECK(n == 0 || n == 1);
        most = n > most ? n : most;
    }
    CHECK_EQ(most, 1);
    CHECK_EQ(val("leasering_leases_in_jeopardy" M), 1);
    run_until(EV_LOST, 4000);
    CHECK_EQ(rec_count(EV_LOST, &l[0]), 1);
    scrape(port);
    CHECK_STR(LOSSES(), "0,1,0");
    lr_lease_deinit(&l[0]);
    lr_exporter_free(e);
    close_mgr(m);
}

/* The largest /metrics one manager can give -- every counter and histogram
 * value at its widest -- fits the output buffer sized at lr_exporter_add
 * (else 500 "response too large"). */
TEST(widest_scrape_fits)
{
    struct fixture f;
    CHECK_OK(setup(&f));
    struct lr_manager_stats *st = lr__manager_stats(f.m);
    static struct lr_manager_stats saved;
    saved = *st;
    memset(st, 0xff, sizeof *st);
    st->leases = saved.leases; /* the core's own bookkeeping */
    st->held = saved.held;
    scrape(f.port);
    *st = saved;
    CHECK(!strncmp(buf, OK_200, 17));
    CHECK(strstr(body, "\nleasering_renewals_total" M " 18446744073709551615\n"));
    fprintf(stderr, "widest /metrics for one manager: %zu bytes\n", strlen(body));
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

TESTS(T(metrics_and_keepalive), T(errors), T(healthz_jeopardy_and_unreachable), T(counters_by_reason_mem),
      T(store_errors_by_kind), T(counters_by_reason_chaos), T(widest_scrape_fits),
      T(slowloris_and_cap),
      T(scrapes_allocate_nothing), T(accept_out_of_fds), T(bad_arguments))
