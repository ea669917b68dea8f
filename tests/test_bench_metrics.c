/* SPDX-License-Identifier: MIT */
/*
 * test_bench_metrics.c - `leasering bench --metrics HOST:PORT` run as a
 * program against a real redis-server: it prints where it serves (port 0
 * picks one), a plain-socket client scrapes /metrics and /healthz while the
 * bench holds its leases (label manager="redis", every lease held, one
 * connection up), the scrapes cost the steady state no allocation
 * (steady_allocs 0 in the JSON report), the port is closed once bench
 * exits 0, and a bad address is refused with exit 2.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <leasering.h>
#include "harness.h"
#include "proc.h"
#include "redis_server.h"

#ifndef LEASERING_TOOL
#define LEASERING_TOOL "tools/leasering"
#endif

static char resp[64 * 1024];
static char log_text[64 * 1024];

/* GET @path from 127.0.0.1:@port with a blocking socket; the response in
 * resp. Returns the HTTP status, or -1. */
static int http_get(int port, const char *path)
{
    resp[0] = '\0';
    int fd = proc_connect(port, 1000);
    if (fd < 0)
        return -1;
    char req[128];
    int n = snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nConnection: close\r\n\r\n", path);
    size_t len = 0;
    if (send(fd, req, (size_t)n, MSG_NOSIGNAL) == n) {
        ssize_t r;
        while (len + 1 < sizeof resp && (r = recv(fd, resp + len, sizeof resp - 1 - len, 0)) > 0)
            len += (size_t)r;
    }
    resp[len] = '\0';
    close(fd);
    return !strncmp(resp, "HTTP/1.1 ", 9) ? atoi(resp + 9) : -1;
}

/* The value of series @s in resp's body, -1 when absent. */
static long long series(const char *s)
{
    const char *p = strstr(resp, "\r\n\r\n");
    size_t n = strlen(s);
    for (p = p ? p + 4 : resp; (p = strstr(p, s)); p += n)
        if (p[-1] == '\n' && p[n] == ' ')
            return strtoll(p + n + 1, NULL, 10);
    return -1;
}

/* The log so far into log_text. */
static void read_log(const char *path)
{
    log_text[0] = '\0';
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return;
    ssize_t n = read(fd, log_text, sizeof log_text - 1);
    close(fd);
    log_text[n > 0 ? n : 0] = '\0';
}

TEST(bench_serves_metrics_while_it_runs)
{
    struct redis_server s;
    CHECK_OK(redis_server_start(&s, NULL));
    char dir[128], logfile[192], uri[96];
    CHECK_OK(proc_mkdtemp(dir, sizeof dir, PROC_DIR_PREFIX "bench-metrics-"));
    snprintf(logfile, sizeof logfile, "%s/bench.log", dir);
    snprintf(uri, sizeof uri, "redis://127.0.0.1:%d?prefix=bm:", s.port);
    const char *argv[] = {LEASERING_TOOL, "bench", "--backend", uri, "--leases", "50",
                          "--ttl", "2000", "--seconds", "3", "--metrics", "127.0.0.1:0",
                          "--json", NULL};
    off_t from;
    pid_t pid;
    CHECK_OK(proc_spawn_logged(argv, NULL, logfile, &from, &pid));
    proc_track(dir, pid);

    /* Port 0: the port it got is on stderr. */
    int port = 0;
    const char *at = NULL;
    for (uint64_t end = proc_now_ms() + 5000; !at && proc_now_ms() < end; proc_sleep_ms(20)) {
        read_log(logfile);
        at = strstr(log_text, "metrics on http://127.0.0.1:");
    }
    CHECK(at);
    port = atoi(at + strlen("metrics on http://127.0.0.1:"));
    CHECK(port > 0);

    /* Scrape every 100 ms for 2.5 s of the 3 s hold, so scrapes fall inside
     * the steady-state window bench counts allocations in (from half a TTL
     * into the hold to its end). */
    long long held = -1;
    int scrapes = 0, full = 0;
    for (uint64_t end = proc_now_ms() + 2500; proc_now_ms() < end; proc_sleep_ms(100)) {
        CHECK_EQ(http_get(port, "/metrics"), 200);
        scrapes++;
        held = series("leasering_leases_held{manager=\"redis\"}");
        if (held == 50) {
            full++;
            CHECK_EQ(series("leasering_connections_up{manager=\"redis\"}"), 1);
            CHECK_EQ(series("leasering_acquisitions_total{manager=\"redis\"}"), 50);
        }
    }
    printf("%d scrapes, %d with every lease held\n", scrapes, full);
    CHECK(full >= 10);
    CHECK_EQ(http_get(port, "/healthz"), 200);
    CHECK(strstr(resp, "{\"status\":\"ok\"}"));

    int status = 0;
    uint64_t end = proc_now_ms() + 20000;
    while (proc_waitpid(pid, &status, WNOHANG) == 0 && proc_now_ms() < end)
        proc_sleep_ms(50);
    read_log(logfile);
    printf("---- bench log ----\n%s", log_text);
    CHECK(WIFEXITED(status));
    CHECK_EQ(WEXITSTATUS(status), 0);
    /* The scrapes during the hold allocated nothing. */
    const char *sa = strstr(log_text, "\"steady_allocs\":");
    CHECK(sa);
    CHECK_EQ(atoll(sa + strlen("\"steady_allocs\":")), 0);
    /* The exporter went with the bench. */
    CHECK_EQ(http_get(port, "/metrics"), -1);
    proc_rmtree(dir);
    redis_server_destroy(&s);
}

TEST(bad_metrics_address_exits_2)
{
    static const char *const bad[] = {"nonsense", "example.com:80", "127.0.0.1:99999", NULL};
    for (int i = 0; bad[i]; i++) {
        const char *argv[] = {LEASERING_TOOL, "bench", "--backend", "mem://bm", "--leases", "1",
                              "--ttl", "1000", "--seconds", "1", "--metrics", bad[i], NULL};
        int rc = run_capture(argv, NULL, log_text, sizeof log_text, 10000);
        printf("--metrics %s: exit %d: %s", bad[i], rc, log_text);
        CHECK_EQ(rc, 2);
        CHECK(strstr(log_text, "--metrics needs HOST:PORT"));
    }
}

TESTS(T(bench_serves_metrics_while_it_runs), T(bad_metrics_address_exits_2))
