/* SPDX-License-Identifier: MIT */
/*
 * test_exporter_prom.c - the exporter against the real Prometheus tools
 * (Debian's `prometheus` package): `promtool check metrics` finds nothing to
 * say about a scrape, and a real prometheus server, scraping the exporter
 * every second, answers a query for leasering_leases_held with the held
 * count. A missing promtool or prometheus FAILS with an install hint.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include <leasering.h>
#include "exporter_client.h"
#include "exporter_fixture.h"
#include "harness.h"
#include "proc.h"
#include "recorder.h"

#define HINT "`apt-get install prometheus` (or run scripts/setup)"

static char buf[65536];


/* The fixture with all three held, after some renewals (histogram samples). */
static int setup(struct fixture *f)
{
    if (fixture_setup(f, 3, 5000))
        return -1;
    run_until(0, 2500);
    return 0;
}

/* GET @path from 127.0.0.1:@port on a new connection (closed by us after). */
static int http_get(int port, const char *path)
{
    char req[512];
    bool closed;
    snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
             path);
    int fd = ec_connect(port);
    buf[0] = 0;
    if (fd < 0)
        return -1;
    int rc = ec_send(fd, req) ? -1 : 0;
    if (!rc)
        ec_read(loop, fd, buf, sizeof buf, 3000, &closed);
    close(fd);
    return rc;
}

TEST(promtool_check_metrics)
{
    struct fixture f;
    CHECK_OK(setup(&f));
    CHECK_OK(http_get(f.port, "/metrics"));
    CHECK(!strncmp(buf, "HTTP/1.1 200 OK\r\n", 17));
    CHECK(strstr(ec_body(buf), "leasering_renewals_total{manager=\"main\"} "));
    CHECK(!strstr(ec_body(buf), "leasering_renewals_total{manager=\"main\"} 0\n"));
    static char out[8192];
    const char *argv[] = {"promtool", "check", "metrics", NULL};
    int rc = run_capture(argv, ec_body(buf), out, sizeof out, 20000);
    if (rc == -ENOENT)
        fprintf(stderr, "promtool not found: " HINT "\n");
    if (rc != 0 || out[0])
        fprintf(stderr, "promtool check metrics: exit %d, said:\n%s\n", rc, out);
    CHECK_EQ(rc, 0);
    CHECK_EQ(out[0], 0);
    fixture_teardown(&f);
}

TEST(prometheus_scrapes_and_queries)
{
    struct fixture f;
    CHECK_OK(setup(&f));
    char dir[256], cfg[320], data[320], log[320], listen[64], cfgarg[340], dataarg[340];
    CHECK_OK(proc_mkdtemp(dir, sizeof dir, PROC_DIR_PREFIX "prom-"));
    snprintf(cfg, sizeof cfg, "%s/prometheus.yml", dir);
    snprintf(data, sizeof data, "%s/data", dir);
    snprintf(log, sizeof log, "%s/prometheus.log", dir);
    FILE *fp = fopen(cfg, "w");
    CHECK(fp);
    fprintf(fp,
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
            "scrape_configs:\n  - job_name: leasering\n    static_configs:\n"
            "      - targets: ['127.0.0.1:%d']\n",
            f.port);
    fclose(fp);
    int pport;
    CHECK_OK(proc_pick_port(&pport));
    snprintf(listen, sizeof listen, "--web.listen-address=127.0.0.1:%d", pport);
    snprintf(cfgarg, sizeof cfgarg, "--config.file=%s", cfg);
    snprintf(dataarg, sizeof dataarg, "--storage.tsdb.path=%s", data);
    const char *argv[] = {"prometheus", cfgarg, dataarg, listen, NULL};
    off_t from;
    pid_t pid = 0;
    int rc = proc_spawn_logged(argv, dir, log, &from, &pid);
    if (rc == -ENOENT)
        fprintf(stderr, "prometheus not found: " HINT "\n");
    CHECK_OK(rc);
    proc_track(dir, pid);
    /* Pump our loop (the exporter lives on it) while prometheus starts,
     * scrapes, and the query finds the sample. */
    bool found = false;
    uint64_t t0 = ec_ms();
    while (!found && ec_ms() - t0 < 30000 && !proc_reaped(&pid, dir)) {
        ec_pump(loop, 500);
        if (http_get(pport, "/api/v1/query?query=leasering_leases_held"))
            continue;
        found = strstr(buf, "\"manager\":\"main\"") && strstr(buf, "\"3\"]");
    }
    if (!found) {
        fprintf(stderr, "last answer: %.500s\n", buf);
        proc_log_tail(log, 30);
    }
    CHECK(found);
    CHECK(strstr(buf, "\"__name__\":\"leasering_leases_held\""));
    /* A health check through the same server: up{job="leasering"} is 1. */
    CHECK_OK(http_get(pport, "/api/v1/query?query=up"));
    CHECK(strstr(buf, "\"job\":\"leasering\"") && strstr(buf, "\"1\"]"));
    if (pid)
        proc_stop(&pid, dir, 5000);
    proc_rmtree(dir);
    fixture_teardown(&f);
}

TESTS(T(promtool_check_metrics), T(prometheus_scrapes_and_queries))
