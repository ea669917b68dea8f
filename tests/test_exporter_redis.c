/* SPDX-License-Identifier: MIT */
/*
 * test_exporter_redis.c - the exporter over a real redis-server: /healthz
 * 200 while connected, 503 "store unreachable" once the server is killed,
 * 200 again after it is restarted and the connections come back; the
 * connection gauges, reconnects and store errors by kind move with it; a
 * refused password counts as an auth failure of the acquisition and of the
 * store. Scrapes that read the redis gauges allocate nothing.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include <leasering.h>
#include "alloccount.h"
#include "exporter_client.h"
#include "harness.h"
#include "recorder.h"
#include "redis_server.h"

static char buf[65536];

/* GET @path on a new connection, pumping the loop; the response in buf. */
static int get(int port, const char *path)
{
    bool closed;
    char req[128];
    buf[0] = '\0';
    int fd = ec_connect(port);
    snprintf(req, sizeof req, "GET %s HTTP/1.1\r\n\r\n", path);
    int ok = fd >= 0 && !ec_send(fd, req) && ec_read(loop, fd, buf, sizeof buf, 2000, &closed);
    if (fd >= 0)
        close(fd);
    return ok ? 0 : -1;
}

/* The value of series @s in the last /metrics in buf, -1 when absent. */
static long long val(const char *s)
{
    return ec_value(ec_body(buf), s);
}

#define OK_200 "HTTP/1.1 200 OK\r\n"
#define NO_503 "HTTP/1.1 503 Service Unavailable\r\n"
#define HEALTHY "{\"status\":\"ok\"}\n"
#define UNREACHABLE                                                                        \
    "{\"status\":\"unhealthy\",\"manager\":\"main\",\"reason\":\"store unreachable\"}\n"
#define M "{manager=\"main\"}"
#define ML(l) "{manager=\"main\"," l "}"

/* Pump the loop until /healthz answers @status with @body, or @ms pass. */
static int wait_health(int port, const char *status, const char *body, unsigned ms)
{
    uint64_t end = ec_ms() + ms;
    do {
        if (!get(port, "/healthz") && !strncmp(buf, status, strlen(status)) &&
            !strcmp(ec_body(buf), body))
            return 0;
        ec_pump(loop, 50);
    } while (ec_ms() < end);
    fprintf(stderr, "healthz: waited for %s%s; last: %.300s\n", status, body, buf);
    return -1;
}

TEST(healthz_follows_the_store)
{
    rec_setup();
    struct redis_server s;
    int rc = redis_server_start(&s, NULL);
    CHECK_OK(rc);
    char uri[96];
    snprintf(uri, sizeof uri, "redis://127.0.0.1:%d?prefix=exp:", s.port);
    struct lr_manager *m;
    struct lr_exporter *e;
    struct lr_manager_opts o = {.ttl_ms = 3000, .cbs = &rec_cbs, .connections = 2};
    CHECK_OK(lr_manager_new(&m, loop, uri, &o));
    CHECK_OK(lr_exporter_new(&e, loop, "127.0.0.1:0"));
    CHECK_OK(lr_exporter_add(e, m, "main"));
    int port = lr_exporter_port(e);
    struct lr_lease l[3];
    const char *names[] = {"a", "b", "c"};
    for (int i = 0; i < 3; i++) {
        CHECK_OK(lr_lease_init(m, &l[i], names[i], NULL));
        CHECK_OK(lr_lease_acquire(&l[i], 2000));
    }
    for (int i = 0; i < 10 && rec_count(EV_ACQ, NULL) < 3; i++)
        run_until(EV_ACQ, 1000);
    CHECK_EQ(rec_count(EV_ACQ, NULL), 3);

    /* Connected: healthy, both connections up. */
    CHECK_OK(wait_health(port, OK_200, HEALTHY, 2000));
    CHECK_OK(get(port, "/metrics"));
    CHECK_EQ(val("leasering_connections_up" M), 2);
    CHECK_EQ(val("leasering_leases_held" M), 3);
    CHECK_EQ(val("leasering_reconnects_total" M), 0);
    CHECK_EQ(val("leasering_requests_in_flight" M), 0);
    /* The test server runs without appendonly: a warning, kind config. */
    CHECK(val("leasering_store_errors_total" ML("kind=\"config\"")) >= 1);
    CHECK_EQ(val("leasering_store_errors_total" ML("kind=\"unreachable\"")), 0);
    /* Scrapes read the redis connections' gauges and allocate nothing. */
    CHECK(alloccount_selftest());
    alloccount_begin();
    for (int i = 0; i < 20; i++)
        CHECK_OK(get(port, i % 2 ? "/metrics" : "/healthz"));
    struct alloc_counts ac = alloccount_end();
    CHECK_EQ(ac.allocs, 0);

    /* Killed: unreachable at once (no lease has to notice first). */
    CHECK_OK(redis_server_kill(&s));
    CHECK_OK(wait_health(port, NO_503, UNREACHABLE, 2000));
    CHECK_OK(get(port, "/metrics"));
    CHECK_EQ(val("leasering_connections_up" M), 0);
    CHECK(val("leasering_store_errors_total" ML("kind=\"unreachable\"")) >= 1);

    /* Restarted (empty: no persistence): the connections come back, the
     * renewals hear "not yours", and health returns. */
    CHECK_OK(redis_server_restart(&s));
    CHECK_OK(wait_health(port, OK_200, HEALTHY, 8000));
    CHECK_OK(get(port, "/metrics"));
    CHECK_EQ(val("leasering_connections_up" M), 2);
    CHECK(val("leasering_reconnects_total" M) >= 2);

    for (int i = 0; i < 3; i++)
        lr_lease_deinit(&l[i]);
    lr_exporter_free(e);
    close_mgr(m);
    redis_server_destroy(&s);
}

TEST(auth_refused)
{
    rec_setup();
    struct redis_server s;
    const char *const extra[] = {"--requirepass", "right", NULL};
    CHECK_OK(redis_server_start(&s, extra));
    char uri[96];
    snprintf(uri, sizeof uri, "redis://:wrong@127.0.0.1:%d?prefix=exp:", s.port);
    struct lr_manager *m;
    struct lr_exporter *e;
    struct lr_manager_opts o = {.ttl_ms = 3000, .cbs = &rec_cbs};
    CHECK_OK(lr_manager_new(&m, loop, uri, &o));
    CHECK_OK(lr_exporter_new(&e, loop, "127.0.0.1:0"));
    CHECK_OK(lr_exporter_add(e, m, "main"));
    int port = lr_exporter_port(e);
    struct lr_lease l;
    CHECK_OK(lr_lease_init(m, &l, "a", NULL));
    CHECK_OK(lr_lease_acquire(&l, 2000));
    run_until(EV_ACQFAIL, 3000);
    CHECK_EQ(rec_count(EV_ACQFAIL, &l), 1);
    CHECK_ERR(rec_first(EV_ACQFAIL, &l)->status, LR_EAUTH);
    CHECK_OK(get(port, "/metrics"));
    CHECK_EQ(val("leasering_acquisition_failures_total" ML("reason=\"auth\"")), 1);
    CHECK(val("leasering_store_errors_total" ML("kind=\"auth\"")) >= 1);
    CHECK_EQ(val("leasering_connections_up" M), 0);
    CHECK_OK(wait_health(port, NO_503, UNREACHABLE, 1000));
    lr_lease_deinit(&l);
    lr_exporter_free(e);
    close_mgr(m);
    redis_server_destroy(&s);
}

TESTS(T(healthz_follows_the_store), T(auth_refused))
