/* SPDX-License-Identifier: MIT */
/*
 * test_etcd_backend.c - the etcd backend (backends/etcd.c) against a real
 * one-member etcd 3.4 (tests/etcd.[ch]), in both modes: session (the
 * default: one etcd lease per TTL keeps every key) and lease (?mode=lease:
 * one etcd lease per name). Acquire / conflict naming the holder / renew /
 * change / release / inspect, fences strictly increasing, a conflicting
 * acquisition leaving no etcd lease behind, a break that the holder learns
 * at its next renewal while contenders are refused until the tombstone
 * expires (then the fence is higher), validity counted from the first send
 * of a renewal, loss before valid_until when etcd stops, bad URIs, and no
 * allocation while renewing.
 */
#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <netinet/in.h>
#include <pthread.h>
#include <sys/socket.h>

#include "alloccount.h"
#include "certs.h"
#include "echo.h"
#include "etcd.h"
#include "harness.h"
#include "proc.h"
#include "recorder.h"
#include <leasering.h>

static struct etcd ed;

/* Run the loop while @cond holds, @ms at most. */
#define RUN_WHILE(cond, ms)                                                                        \
    for (int w_ = 0; w_ < (ms) / 10 && (cond); w_++)                                              \
    run_until(0, 10)
static char uri[512];

static int start(void)
{
    if (ed.pid)
        return 0;
    return etcd_start(&ed);
}

static const char *ed_uri(const char *mode, const char *extra)
{
    snprintf(uri, sizeof(uri), "etcd://127.0.0.1:%d?mode=%s%s", ed.client_port, mode,
             extra ? extra : "");
    return uri;
}

static struct lr_manager *mgr_ttl(const char *u, const char *identity, uint32_t ttl_ms)
{
    struct lr_manager_opts o = {.ttl_ms = ttl_ms,
                                .cbs = &rec_cbs,
                                .connections = 1,
                                .identity = identity,
                                .margin_ms = 10,
                                .retry_cap_ms = 250,
                                .store_error = rec_store_error};
    struct lr_manager *m = NULL;
    int rc = lr_manager_new(&m, loop, u, &o);
    if (rc < 0)
        fprintf(stderr, "lr_manager_new(%s): %s\n", u, lr_strerror(rc));
    return m;
}

/* etcd's leases now (POST /v3/lease/leases): how many, or -1. */
static int etcd_leases(void)
{
    static char resp[65536];
    if (etcd_post(&ed, "/v3/lease/leases", "{}", resp, sizeof(resp)) != 200)
        return -1;
    int n = 0;
    for (const char *p = resp; (p = strstr(p, "{\"ID\":")); p++)
        n++;
    return n;
}

/* etcd's count of LeaseKeepAlive streams served (GET /metrics:
 * grpc_server_handled_total, code OK), or -1. */
static long long etcd_keepalives(void)
{
    static char buf[1 << 20];
    int fd = proc_connect(ed.client_port, 2000);
    if (fd < 0)
        return -1;
    static const char req[] = "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
    size_t have = 0;
    ssize_t n;
    if (write(fd, req, sizeof(req) - 1) == (ssize_t)sizeof(req) - 1)
        while (have < sizeof(buf) - 1 && (n = read(fd, buf + have, sizeof(buf) - 1 - have)) > 0)
            have += (size_t)n;
    close(fd);
    buf[have] = '\0';
    const char *line = strstr(buf, "grpc_server_handled_total{grpc_code=\"OK\","
                                   "grpc_method=\"LeaseKeepAlive\"");
    const char *sp = line ? strchr(line, ' ') : NULL;
    return sp ? strtoll(sp + 1, NULL, 10) : -1;
}

/* Revoke every etcd lease there is; how many, or -1. */
static int etcd_revoke_all(void)
{
    static char resp[65536];
    char body[64], out[1024];
    if (etcd_post(&ed, "/v3/lease/leases", "{}", resp, sizeof(resp)) != 200)
        return -1;
    int n = 0;
    for (const char *p = resp; (p = strstr(p, "{\"ID\":\"")); p++) {
        long long id = strtoll(p + 7, NULL, 10);
        snprintf(body, sizeof(body), "{\"ID\":\"%lld\"}", id);
        if (etcd_post(&ed, "/v3/lease/revoke", body, out, sizeof(out)) != 200)
            return -1;
        n++;
    }
    return n;
}

TEST(uris_good_and_bad)
{
    rec_setup();
    CHECK_OK(rec_try_new("etcd://127.0.0.1:2379"));
    CHECK_OK(rec_try_new("etcd://127.0.0.1:2379,127.0.0.1:2380,[::1]:2381?mode=lease&prefix=x/"));
    CHECK_OK(rec_try_new("etcd://h1,h2?mode=session&tls=no"));
    struct {
        const char *uri, *why;
    } bad[] = {
        {"etcd://127.0.0.1:1?mode=both", "mode must be"},
        {"etcd://127.0.0.1:1?tls=maybe", "tls must be"},
        {"etcd://127.0.0.1:1?color=red", "unknown URI parameter"},
        {"etcd://127.0.0.1:1/path", "no path"},
        {"etcd://127.0.0.1:1,", "endpoints"},
        {"etcd://127.0.0.1:1?tls=no&cacert=/x", "cacert"},
        {"etcd://127.0.0.1:99999", NULL},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int rc = rec_try_new(bad[i].uri);
        if (rc != -EINVAL)
            fprintf(stderr, "%s: %d\n", bad[i].uri, rc);
        CHECK_ERR(rc, -EINVAL);
        if (bad[i].why && !strstr(rec_errs, bad[i].why))
            fprintf(stderr, "%s: said \"%s\"\n", bad[i].uri, rec_errs);
        CHECK(!bad[i].why || strstr(rec_errs, bad[i].why));
    }
    char p[300];
    memset(p, 'p', 200);
    p[200] = '\0';
    char u[400];
    snprintf(u, sizeof(u), "etcd://h:1?prefix=%s", p);
    CHECK_ERR(rec_try_new(u), -EINVAL);
}

/* Everything a holder does, in @mode. */
static void lifecycle(const char *mode)
{
    rec_setup();
    CHECK_OK(start());
    bool lease_mode = !strcmp(mode, "lease");
    int leases0 = etcd_leases();
    CHECK(leases0 >= 0);
    struct lr_manager *a = mgr_ttl(ed_uri(mode, NULL), "alpha", 1000);
    struct lr_manager *b = mgr_ttl(ed_uri(mode, NULL), "bravo", 1000);
    CHECK(a && b);
    struct lr_lease la, lb;
    CHECK_OK(lr_lease_init(a, &la, "job/1", NULL));
    CHECK_OK(lr_lease_init(b, &lb, "job/1", NULL));
    CHECK_OK(lr_lease_set_meta(&la, "node", "al\"pha"));
    CHECK_OK(lr_lease_acquire(&la, 5000));
    run_until(EV_ACQ, 5000);
    if (lr_lease_state(&la) != LR_LEASE_HELD)
        fprintf(stderr, "not held: %s (last error %d)\n", rec_errs, lr_lease_last_error(&la));
    CHECK_EQ(lr_lease_state(&la), LR_LEASE_HELD);
    uint64_t f1 = lr_lease_fence(&la);
    CHECK(f1 > 0);
    int leases1 = etcd_leases(); /* + the holder's (or its session's) */
    CHECK(leases1 >= leases0 + 1);
    /* conflict, naming the holder, and no etcd lease left by the attempt */
    CHECK_OK(lr_lease_try_acquire(&lb));
    run_until(EV_ACQFAIL, 5000);
    CHECK_ERR(rec_first(EV_ACQFAIL, &lb)->status, LR_ECONFLICT);
    CHECK(lr_lease_holder(&lb) && !strcmp(lr_lease_holder(&lb), "alpha"));
    /* (session mode: bravo's session lease, kept for its later acquisitions) */
    CHECK_EQ(etcd_leases(), leases1 + (lease_mode ? 0 : 1));
    /* inspect from the other manager */
    CHECK_OK(rec_inspect(b, "job/1", 5000));
    CHECK(rec_insp.held);
    CHECK_EQ(rec_insp.fence, f1);
    CHECK(!strcmp(rec_insp.identity, "alpha"));
    CHECK_EQ(strlen(rec_insp.token), 32);
    CHECK(rec_insp_meta("node") && !strcmp(rec_insp_meta("node"), "al\"pha"));
    /* renewals, by hand and by themselves (a third of 2 s) */
    CHECK_OK(lr_lease_renew(&la));
    run_until(EV_RENEW, 5000);
    CHECK(rec_count(EV_RENEW, &la) >= 1);
    uint64_t rq = lr_manager_stats(a)->renew_requests;
    run_until(0, 800); /* a third of 1 s */
    /* a session's renewals call no per-lease callback: count them */
    if (lease_mode)
        CHECK(rec_count(EV_RENEW, &la) >= 2);
    else
        CHECK(lr_manager_stats(a)->renew_requests >= rq + 2);
    CHECK_EQ(lr_lease_state(&la), LR_LEASE_HELD);
    /* change: a new owner token, still held and renewed, same fence */
    char before[33];
    memcpy(before, rec_insp.token, 33);
    CHECK_OK(lr_lease_change(&la));
    run_until(EV_CHANGED, 5000);
    CHECK_OK(rec_first(EV_CHANGED, &la)->status);
    CHECK_OK(rec_inspect(b, "job/1", 5000));
    CHECK(rec_insp.held && strcmp(rec_insp.token, before) != 0);
    CHECK_EQ(rec_insp.fence, f1);
    int renewed = rec_count(EV_RENEW, &la);
    CHECK_OK(lr_lease_renew(&la));
    for (int w = 0; w < 100 && rec_count(EV_RENEW, &la) == renewed; w++)
        run_until(0, 20);
    CHECK(rec_count(EV_RENEW, &la) > renewed);
    CHECK_EQ(lr_lease_state(&la), LR_LEASE_HELD);
    /* release; the next acquire gets a higher fence at once */
    CHECK_OK(lr_lease_release(&la));
    run_until(EV_REL, 5000);
    CHECK_OK(rec_first(EV_REL, &la)->status);
    if (lease_mode)
        CHECK_EQ(etcd_leases(), leases1 - 1); /* revoked with the key */
    else
        CHECK_EQ(etcd_leases(), leases1 + 1); /* the sessions stay */
    CHECK_OK(lr_lease_acquire(&lb, 5000));
    run_until(EV_ACQ, 5000);
    CHECK_EQ(lr_lease_state(&lb), LR_LEASE_HELD);
    uint64_t f2 = lr_lease_fence(&lb);
    CHECK(f2 > f1);
    /* break from alpha: bravo learns it at its next renewal; nobody gets
     * the name before the tombstone (bravo's TTL 1 s + 1 s) expires */
    CHECK_OK(lr_lease_break(&la, 0));
    run_until(EV_BROKEN, 5000);
    CHECK_OK(rec_first(EV_BROKEN, &la)->status);
    uint64_t broke = mono_ns();
    CHECK_OK(lr_lease_try_acquire(&la));
    run_until(EV_ACQFAIL, 5000);
    CHECK_EQ(lr_lease_state(&la), LR_LEASE_IDLE); /* not while bravo may still hold */
    CHECK_ERR(rec_first(EV_ACQFAIL, &la)->status, LR_ECONFLICT);
    CHECK(lr_lease_holder(&la) && !strcmp(lr_lease_holder(&la), "broken"));
    CHECK_OK(lr_lease_renew(&lb));
    run_until(EV_LOST, 5000);
    CHECK_ERR(rec_first(EV_LOST, &lb)->status, LR_ELOST);
    CHECK_OK(rec_inspect(b, "job/1", 5000));
    CHECK(!rec_insp.held);
    /* still refused while the tombstone stands */
    nev = 0;
    CHECK_OK(lr_lease_try_acquire(&la));
    run_until(EV_ACQFAIL, 5000);
    CHECK_EQ(rec_count(EV_ACQFAIL, &la), 1);
    CHECK_ERR(rec_first(EV_ACQFAIL, &la)->status, LR_ECONFLICT);
    CHECK(mono_ns() - broke < 1000000000ull);
    /* then free: a higher fence */
    CHECK_OK(lr_lease_acquire(&la, 8000));
    run_until(EV_ACQ, 8000);
    CHECK_EQ(lr_lease_state(&la), LR_LEASE_HELD);
    printf("     broken name free again after %llu ms\n",
           (unsigned long long)((mono_ns() - broke) / 1000000u));
    CHECK(mono_ns() - broke >= 1000000000ull); /* bravo's TTL had to pass */
    CHECK(lr_lease_fence(&la) > f2);
    CHECK_OK(lr_lease_release(&la)); /* leave no etcd lease to the next test */
    run_until(EV_REL, 5000);
    lr_lease_deinit(&la);
    lr_lease_deinit(&lb);
    close_mgr(a);
    close_mgr(b);
}

TEST(lease_mode_lifecycle)
{
    lifecycle("lease");
}

/* A renewal is two requests (keep-alive and check); with one connection the
 * second waits for the first's answer. etcd stopped meanwhile delays it:
 * validity must still count from the first send. */
static void validity_from_first_send(const char *mode)
{
    rec_setup();
    CHECK_OK(start());
    struct lr_manager *a = mgr_ttl(ed_uri(mode, NULL), "alpha", 3000);
    CHECK(a);
    struct lr_lease la;
    struct lr_lease_opts lo = {.no_auto_renew = 1};
    char name[32]; /* one per mode: the other mode's key may still be there */
    snprintf(name, sizeof(name), "first-send-%s", mode);
    CHECK_OK(lr_lease_init(a, &la, name, &lo));
    CHECK_OK(lr_lease_acquire(&la, 5000));
    run_until(EV_ACQ, 5000);
    CHECK_EQ(lr_lease_state(&la), LR_LEASE_HELD);
    lr_loop_update_time(loop);
    uint64_t t0 = lr_loop_now_ms(loop);
    rec_errs[0] = '\0';
    CHECK_OK(kill(ed.pid, SIGSTOP));
    CHECK_OK(lr_lease_renew(&la));
    run_until(0, 400);
    CHECK_OK(kill(ed.pid, SIGCONT));
    run_until(EV_RENEW, 3000);
    CHECK_EQ(rec_count(EV_RENEW, &la), 1);
    uint64_t vu = lr_lease_valid_until(&la);
    printf("     valid until t0 + %lld ms (TTL 3000)\n", (long long)(vu - t0));
    if (vu > t0 + 3000)
        fprintf(stderr, "jeopardy %d, store errors: %s\n", rec_count(EV_JEOP, &la), rec_errs);
    /* from the first send: t0 + 3000 x 0.99 - 10 (+ a loop pass); the
     * second went out over 400 ms later */
    CHECK(vu <= t0 + 3000);
    CHECK_OK(lr_lease_release(&la));
    run_until(EV_REL, 3000);
    lr_lease_deinit(&la);
    close_mgr(a);
}

TEST(session_mode_lifecycle)
{
    lifecycle("session");
}

TEST(lease_mode_validity_from_the_first_send)
{
    validity_from_first_send("lease");
}

/* etcd stopped: the lease is lost before its validity ends. */
static void stopped_lost_before_valid_until(const char *mode)
{
    rec_setup();
    CHECK_OK(start());
    struct lr_manager *a = mgr_ttl(ed_uri(mode, NULL), "alpha", 1000);
    CHECK(a);
    struct lr_lease la;
    char name[32];
    snprintf(name, sizeof(name), "stopped-%s", mode);
    CHECK_OK(lr_lease_init(a, &la, name, NULL));
    CHECK_OK(lr_lease_acquire(&la, 5000));
    run_until(EV_ACQ, 5000);
    CHECK_EQ(lr_lease_state(&la), LR_LEASE_HELD);
    run_until(0, 200);
    CHECK_OK(kill(ed.pid, SIGSTOP));
    uint64_t vu = 0;
    for (int w = 0; w < 400 && !rec_count(EV_LOST, &la); w++) {
        if (lr_lease_state(&la) == LR_LEASE_HELD || !vu)
            vu = lr_lease_valid_until(&la);
        run_until(EV_LOST, 10);
    }
    CHECK_OK(kill(ed.pid, SIGCONT));
    CHECK_EQ(rec_count(EV_LOST, &la), 1);
    uint64_t lost_ms = rec_first(EV_LOST, &la)->at_ns / 1000000u;
    printf("     lost %lld ms before valid_until\n", (long long)vu - (long long)lost_ms);
    CHECK(lost_ms < vu);
    CHECK(rec_count(EV_JEOP, &la) >= 1);
    lr_lease_deinit(&la);
    close_mgr(a);
}

TEST(session_mode_validity_from_the_first_send)
{
    validity_from_first_send("session");
}

TEST(lease_mode_stopped_store_lost_before_valid_until)
{
    stopped_lost_before_valid_until("lease");
}

/* etcd revokes the lease under a holder: its next renewal says LR_ELOST
 * (session mode: every lease of the session), and a new acquisition works
 * (session mode: on a newly granted session lease). */
static void revoked_lost_then_acquired_again(const char *mode)
{
    rec_setup();
    CHECK_OK(start());
    struct lr_manager *a = mgr_ttl(ed_uri(mode, NULL), "alpha", 3000);
    CHECK(a);
    struct lr_lease ls[3];
    for (int i = 0; i < 3; i++) {
        char name[16];
        snprintf(name, sizeof(name), "revoked%d-%c", i, mode[0]);
        CHECK_OK(lr_lease_init(a, &ls[i], name, NULL));
        CHECK_OK(lr_lease_acquire(&ls[i], 5000));
    }
    RUN_WHILE(lr_manager_stats(a)->held < 3, 3000);
    CHECK_EQ(lr_manager_stats(a)->held, 3);
    CHECK(etcd_revoke_all() >= 1);
    CHECK_OK(lr_lease_renew(&ls[0]));
    RUN_WHILE(rec_count(EV_LOST, &ls[0]) == 0, 3000);
    CHECK_EQ(rec_count(EV_LOST, &ls[0]), 1);
    CHECK_ERR(rec_first(EV_LOST, &ls[0])->status, LR_ELOST);
    if (!strcmp(mode, "session")) { /* the whole session at once */
        CHECK_EQ(rec_count(EV_LOST, NULL), 3);
        CHECK_EQ(lr_manager_stats(a)->held, 0);
    }
    nev = 0;
    CHECK_OK(lr_lease_acquire(&ls[0], 5000));
    run_until(EV_ACQ, 5000);
    CHECK_EQ(lr_lease_state(&ls[0]), LR_LEASE_HELD);
    CHECK_OK(lr_lease_renew(&ls[0]));
    run_until(EV_RENEW, 3000);
    CHECK_EQ(rec_count(EV_RENEW, &ls[0]), 1);
    lr_manager_release_all(a);
    RUN_WHILE(rec_count(EV_REL, NULL) < 1, 3000);
    for (int i = 0; i < 3; i++)
        lr_lease_deinit(&ls[i]);
    close_mgr(a);
}

TEST(lease_mode_revoked_lost_then_acquired_again)
{
    revoked_lost_then_acquired_again("lease");
}

TEST(session_mode_revoked_lost_then_acquired_again)
{
    revoked_lost_then_acquired_again("session");
}

/* Is etcd lease @id (decimal) alive? 1, 0, or -1. */
static int etcd_lease_alive(const char *id)
{
    char body[64], resp[2048];
    snprintf(body, sizeof(body), "{\"ID\":\"%s\"}", id);
    if (etcd_post(&ed, "/v3/lease/timetolive", body, resp, sizeof(resp)) != 200)
        return -1;
    return strstr(resp, "\"TTL\":\"-1\"") ? 0 : 1;
}

/* A session that keeps no lease for a TTL is revoked; the next acquisition
 * grants a new one. */
TEST(session_idle_for_a_ttl_is_revoked)
{
    rec_setup();
    CHECK_OK(start());
    static char before[65536], after[65536];
    CHECK_EQ(etcd_post(&ed, "/v3/lease/leases", "{}", before, sizeof(before)), 200);
    struct lr_manager *a = mgr_ttl(ed_uri("session", NULL), "alpha", 1000);
    CHECK(a);
    struct lr_lease la;
    CHECK_OK(lr_lease_init(a, &la, "idle", NULL));
    CHECK_OK(lr_lease_acquire(&la, 5000));
    run_until(EV_ACQ, 5000);
    CHECK_EQ(lr_lease_state(&la), LR_LEASE_HELD);
    CHECK_EQ(etcd_post(&ed, "/v3/lease/leases", "{}", after, sizeof(after)), 200);
    char id[40] = "";
    for (const char *p = after; (p = strstr(p, "{\"ID\":\"")); p++) { /* the new one */
        const char *q = strchr(p + 7, '"');
        char cand[40];
        snprintf(cand, sizeof(cand), "%.*s", (int)(q - p - 7), p + 7);
        char quoted[48];
        snprintf(quoted, sizeof(quoted), "\"%s\"", cand);
        if (!strstr(before, quoted))
            snprintf(id, sizeof(id), "%s", cand);
    }
    CHECK(id[0]);
    CHECK_OK(lr_lease_release(&la));
    run_until(EV_REL, 3000);
    CHECK_EQ(etcd_lease_alive(id), 1); /* not at once */
    RUN_WHILE(etcd_lease_alive(id) == 1, 3000);
    CHECK_EQ(etcd_lease_alive(id), 0);
    nev = 0;
    CHECK_OK(lr_lease_acquire(&la, 5000));
    run_until(EV_ACQ, 5000);
    CHECK_EQ(lr_lease_state(&la), LR_LEASE_HELD);
    CHECK_OK(lr_lease_release(&la));
    run_until(EV_REL, 3000);
    lr_lease_deinit(&la);
    close_mgr(a);
}

static void renewing_allocates_nothing(const char *mode)
{
    rec_setup();
    CHECK_OK(start());
    struct lr_manager *m = mgr_ttl(ed_uri(mode, NULL), "alpha", 1500);
    CHECK(m);
    static struct lr_lease ls[20];
    for (int i = 0; i < 20; i++) {
        char name[16];
        snprintf(name, sizeof(name), "alloc%d-%c", i, mode[0]);
        CHECK_OK(lr_lease_init(m, &ls[i], name, NULL));
        CHECK_OK(lr_lease_set_meta(&ls[i], "k", "v"));
        CHECK_OK(lr_lease_acquire(&ls[i], 5000));
    }
    RUN_WHILE(lr_manager_stats(m)->held < 20, 3000);
    CHECK_EQ(lr_manager_stats(m)->held, 20);
    run_until(0, 600); /* a first round of renewals */
    uint64_t r0 = lr_manager_stats(m)->renewals;
    alloccount_begin();
    run_until(0, 1000);
    struct alloc_counts ac = alloccount_end();
    uint64_t r = lr_manager_stats(m)->renewals - r0;
    printf("     %llu renewals, %llu allocations\n", (unsigned long long)r,
           (unsigned long long)ac.allocs);
    CHECK(r >= 20);
    CHECK_EQ(ac.allocs, 0);
    const struct lr_manager_stats *st = lr_manager_stats(m);
    CHECK(st->connections_up >= 1);
    CHECK_EQ(st->store_unreachable, 0);
    CHECK_EQ(rec_count(EV_JEOP, NULL), 0);
    CHECK_EQ(lr_manager_release_all(m), 20);
    RUN_WHILE(rec_count(EV_REL, NULL) < 20, 3000);
    CHECK_EQ(rec_count(EV_REL, NULL), 20);
    for (int i = 0; i < 20; i++)
        lr_lease_deinit(&ls[i]);
    close_mgr(m);
}

TEST(session_mode_stopped_store_lost_before_valid_until)
{
    stopped_lost_before_valid_until("session");
}

TEST(lease_mode_renewing_allocates_nothing)
{
    renewing_allocates_nothing("lease");
}

TEST(session_mode_renewing_allocates_nothing)
{
    renewing_allocates_nothing("session");
}

/* Session mode: the keep-alives over a hold do not depend on how many
 * leases the session keeps (@n leases held 1.5 s, TTL 1 s: one every 1/3 s). */
static void keepalives_for(int n, uint64_t *mgr_count, long long *etcd_count)
{
    static struct lr_lease ls[500];
    nev = 0;
    struct lr_manager *m = mgr_ttl(ed_uri("session", NULL), "alpha", 1000);
    if (!m)
        return;
    for (int i = 0; i < n; i++) {
        char name[16];
        snprintf(name, sizeof(name), "ka%d", i);
        lr_lease_init(m, &ls[i], name, NULL);
        lr_lease_acquire(&ls[i], 5000);
    }
    RUN_WHILE(lr_manager_stats(m)->held < (uint64_t)n, 5000);
    uint64_t r0 = lr_manager_stats(m)->renew_requests;
    long long e0 = etcd_keepalives();
    run_until(0, 1500);
    *mgr_count = lr_manager_stats(m)->renew_requests - r0;
    *etcd_count = etcd_keepalives() - e0;
    if (lr_manager_stats(m)->held != (uint64_t)n)
        *mgr_count = 0; /* not all held: fails the comparison */
    int nrel = lr_manager_release_all(m);
    RUN_WHILE(rec_count(EV_REL, NULL) < nrel, 5000);
    for (int i = 0; i < n; i++)
        lr_lease_deinit(&ls[i]);
    close_mgr(m);
}

TEST(session_keepalives_independent_of_the_lease_count)
{
    if (SANITIZED) { /* it counts requests, not memory: the gcc build's (CI time) */
        printf("     left to the unsanitized build\n");
        return;
    }
    rec_setup();
    CHECK_OK(start());
    uint64_t m10 = 0, m500 = 0;
    long long e10 = 0, e500 = 0;
    keepalives_for(10, &m10, &e10);
    keepalives_for(500, &m500, &e500);
    printf("     keep-alives in 1.5 s: 10 leases %llu (etcd %lld), 500 leases %llu (etcd %lld)\n",
           (unsigned long long)m10, e10, (unsigned long long)m500, e500);
    CHECK(m10 >= 3 && m500 >= 3); /* every 1/3 s */
    CHECK(m500 <= m10 + 1 && m10 <= m500 + 1);
    CHECK(e10 >= 3 && e500 >= 3);
    CHECK(e500 <= e10 + 1 && e10 <= e500 + 1);
}

/* Two endpoints, the first refusing connections: requests go to the next. */
TEST(fails_over_to_the_next_endpoint)
{
    rec_setup();
    CHECK_OK(start());
    int dead = 0;
    CHECK_OK(proc_pick_port(&dead)); /* nobody listens there */
    char u[256];
    snprintf(u, sizeof(u), "etcd://127.0.0.1:%d,127.0.0.1:%d?mode=lease", dead, ed.client_port);
    struct lr_manager *a = mgr_ttl(u, "alpha", 2000);
    CHECK(a);
    rec_errs[0] = '\0';
    struct lr_lease la;
    CHECK_OK(lr_lease_init(a, &la, "failover", NULL));
    CHECK_OK(lr_lease_acquire(&la, 5000));
    run_until(EV_ACQ, 5000);
    CHECK_EQ(lr_lease_state(&la), LR_LEASE_HELD);
    char dead_ep[64];
    snprintf(dead_ep, sizeof(dead_ep), "etcd 127.0.0.1:%d", dead);
    CHECK(strstr(rec_errs, dead_ep)); /* said, naming the endpoint */
    CHECK_OK(lr_lease_renew(&la));
    run_until(EV_RENEW, 3000);
    CHECK_EQ(rec_count(EV_RENEW, &la), 1);
    CHECK_OK(lr_lease_release(&la));
    run_until(EV_REL, 3000);
    CHECK_OK(rec_first(EV_REL, &la)->status);
    lr_lease_deinit(&la);
    close_mgr(a);
}

/* etcd with auth on (last: the fixture keeps it): user:password gets a
 * token; no or wrong credentials are LR_EAUTH, and no text names the
 * password. */
TEST(auth_user_password)
{
    rec_setup();
    CHECK_OK(start());
    char resp[4096];
    CHECK_EQ(etcd_post(&ed, "/v3/auth/role/add", "{\"name\":\"root\"}", resp, sizeof(resp)), 200);
    CHECK_EQ(etcd_post(&ed, "/v3/auth/user/add", "{\"name\":\"root\",\"password\":\"s3cret\"}",
                       resp, sizeof(resp)),
             200);
    CHECK_EQ(etcd_post(&ed, "/v3/auth/user/grant", "{\"user\":\"root\",\"role\":\"root\"}", resp,
                       sizeof(resp)),
             200);
    CHECK_EQ(etcd_post(&ed, "/v3/auth/enable", "{}", resp, sizeof(resp)), 200);
    const char *modes[] = {"lease", "session"};
    for (int i = 0; i < 2; i++) {
        char u[256];
        snprintf(u, sizeof(u), "etcd://root:s3cret@127.0.0.1:%d?mode=%s", ed.client_port,
                 modes[i]);
        struct lr_manager *a = mgr_ttl(u, "alpha", 2000);
        CHECK(a);
        struct lr_lease la;
        nev = 0;
        CHECK_OK(lr_lease_init(a, &la, "authed", NULL));
        CHECK_OK(lr_lease_acquire(&la, 5000));
        run_until(EV_ACQ, 5000);
        if (lr_lease_state(&la) != LR_LEASE_HELD)
            fprintf(stderr, "%s: %s\n", modes[i], rec_errs);
        CHECK_EQ(lr_lease_state(&la), LR_LEASE_HELD);
        CHECK_OK(lr_lease_renew(&la));
        run_until(EV_RENEW, 3000);
        CHECK_EQ(rec_count(EV_RENEW, &la), 1);
        CHECK_OK(lr_lease_release(&la));
        run_until(EV_REL, 3000);
        CHECK_OK(rec_first(EV_REL, &la)->status);
        lr_lease_deinit(&la);
        close_mgr(a);
    }
    const char *bad[] = {"etcd://root:wrong@127.0.0.1:%d?mode=lease", "etcd://127.0.0.1:%d?mode=lease"};
    for (int i = 0; i < 2; i++) {
        char u[256];
        snprintf(u, sizeof(u), bad[i], ed.client_port);
        rec_errs[0] = '\0';
        nev = 0;
        struct lr_manager *a = mgr_ttl(u, "alpha", 2000);
        CHECK(a);
        struct lr_lease la;
        CHECK_OK(lr_lease_init(a, &la, "authed", NULL));
        CHECK_OK(lr_lease_try_acquire(&la));
        run_until(EV_ACQFAIL, 5000);
        CHECK_EQ(rec_count(EV_ACQFAIL, &la), 1);
        CHECK_ERR(rec_first(EV_ACQFAIL, &la)->status, LR_EAUTH);
        CHECK(!strstr(rec_errs, "wrong") && !strstr(rec_errs, "s3cret"));
        lr_lease_deinit(&la);
        close_mgr(a);
    }
}

/* A fake gateway answering every request with fake_body (HTTP 200). */
static const char *fake_body;

static void *fake_serve(void *arg)
{
    struct tcp_peer *p = arg;
    int fd;
    while ((fd = accept(p->listen_fd, NULL, NULL)) >= 0) {
        char buf[65536], out[4096];
        size_t have = 0;
        ssize_t n;
        while ((n = read(fd, buf + have, sizeof(buf) - 1 - have)) > 0) {
            have += (size_t)n;
            buf[have] = '\0';
            char *end = strstr(buf, "\r\n\r\n"), *cl = strcasestr(buf, "content-length:");
            if (!end || !cl)
                continue;
            size_t need = (size_t)(end + 4 - buf) + strtoul(cl + 15, NULL, 10);
            if (have < need)
                continue;
            int m = snprintf(out, sizeof(out),
                             "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                             "Content-Length: %zu\r\n\r\n%s",
                             strlen(fake_body), fake_body);
            if (write(fd, out, (size_t)m) != m)
                break;
            memmove(buf, buf + need, have - need);
            have -= need;
        }
        close(fd);
    }
    return NULL;
}

/* Bad answers are LR_EBADREPLY with a text saying what was wrong. */
TEST(bad_answers_are_clear_errors)
{
    rec_setup();
    static struct tcp_peer peer;
    CHECK_OK(peer_start(&peer, fake_serve, &peer));
    char u[128];
    snprintf(u, sizeof(u), "etcd://127.0.0.1:%d", ntohs(peer.addr.sin_port));
    struct {
        const char *body, *why;
    } cases[] = {
        {"hello", "not a JSON object"},
        {"{\"kvs\":[]", "not valid JSON"},
        {"{\"kvs\":[]}", "no header.revision"},
        {"{\"header\":{\"revision\":7}}", "revision is not an int64 string"},
        {"{\"header\":{\"revision\":\"7\"},\"kvs\":[{\"create_revision\":\"3\","
         "\"value\":\"!!!!\"}]}",
         "not base64"},
        {"{\"header\":{\"revision\":\"7\"},\"kvs\":[{\"create_revision\":\"3\","
         "\"value\":\"aGVsbG8=\"}]}",
         "not a leasering value"},
        {"{\"header\":{\"revision\":\"7\"},\"kvs\":[{\"value\":\"e30=\"}]}",
         "without create_revision"},
    };
    struct lr_manager *m = mgr_ttl(u, "alpha", 2000);
    CHECK(m);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        fake_body = cases[i].body;
        rec_errs[0] = '\0';
        int rc = rec_inspect(m, "x", 3000);
        if (rc != LR_EBADREPLY || !strstr(rec_errs, cases[i].why))
            fprintf(stderr, "%s: %d \"%s\"\n", cases[i].body, rc, rec_errs);
        CHECK_ERR(rc, LR_EBADREPLY);
        CHECK(strstr(rec_errs, cases[i].why));
        char ep[64];
        snprintf(ep, sizeof(ep), "etcd 127.0.0.1:%d", ntohs(peer.addr.sin_port));
        CHECK(strstr(rec_errs, ep)); /* naming the endpoint */
    }
    /* a range answer without kvs: free */
    fake_body = "{\"header\":{\"revision\":\"7\"}}";
    CHECK_OK(rec_inspect(m, "x", 3000));
    CHECK(!rec_insp.held);
    close_mgr(m);
    peer_stop(&peer);
}

TEST(teardown)
{
    etcd_destroy(&ed);
}

/* TLS: the gateway over https, verified against the test CA; renewals go
 * on over it. A client that trusts another CA fails the handshake: the
 * acquisition gives up with LR_ETLS and the store error says so. */
TEST(leases_over_tls)
{
    rec_setup();
    struct certs c, other;
    CHECK_OK(certs_make(&c, NULL));
    CHECK_OK(certs_make(&other, NULL));
    struct etcd te;
    CHECK_OK(etcd_start_tls(&te, c.server_cert, c.server_key));
    char u[600];
    snprintf(u, sizeof(u), "etcd://127.0.0.1:%d?tls=yes&cacert=%s", te.tls_port, c.ca);
    struct lr_manager *a = mgr_ttl(u, "alpha", 1000);
    CHECK(a);
    struct lr_lease la;
    CHECK_OK(lr_lease_init(a, &la, "tls-1", NULL));
    CHECK_OK(lr_lease_acquire(&la, 5000));
    run_until(EV_ACQ, 5000);
    CHECK_EQ(lr_lease_state(&la), LR_LEASE_HELD);
    uint64_t r0 = lr_manager_stats(a)->renew_requests;
    run_until(0, 1500); /* session renewals every ~333 ms, over TLS */
    CHECK(lr_manager_stats(a)->renew_requests >= r0 + 2);
    CHECK_EQ(lr_lease_state(&la), LR_LEASE_HELD);
    CHECK_EQ(rec_count(EV_JEOP, &la), 0);
    CHECK_OK(lr_lease_release(&la));
    run_until(EV_REL, 3000);
    CHECK(rec_first(EV_REL, &la));
    CHECK_OK(rec_first(EV_REL, &la)->status);
    lr_lease_deinit(&la);
    close_mgr(a);

    snprintf(u, sizeof(u), "etcd://127.0.0.1:%d?tls=yes&cacert=%s", te.tls_port, other.ca);
    rec_errs[0] = '\0';
    struct lr_manager *b = mgr_ttl(u, "bravo", 1000);
    CHECK(b);
    struct lr_lease lb;
    CHECK_OK(lr_lease_init(b, &lb, "tls-2", NULL));
    CHECK_OK(lr_lease_acquire(&lb, 1500));
    run_until(EV_ACQFAIL, 5000);
    const struct rec *f = rec_first(EV_ACQFAIL, &lb);
    CHECK(f);
    printf("     untrusted CA: %s; store error: %s", lr_err_name(f->status), rec_errs);
    CHECK_ERR(f->status, LR_ETLS);
    CHECK(strstr(rec_errs, "127.0.0.1") != NULL);
    lr_lease_deinit(&lb);
    close_mgr(b);
    etcd_destroy(&te);
    certs_destroy(&c);
    certs_destroy(&other);
}

TESTS(T(uris_good_and_bad), T(leases_over_tls), T(lease_mode_lifecycle), T(session_mode_lifecycle),
      T(lease_mode_validity_from_the_first_send), T(session_mode_validity_from_the_first_send),
      T(lease_mode_stopped_store_lost_before_valid_until),
      T(session_mode_stopped_store_lost_before_valid_until),
      T(lease_mode_revoked_lost_then_acquired_again),
      T(session_mode_revoked_lost_then_acquired_again), T(lease_mode_renewing_allocates_nothing), T(session_mode_renewing_allocates_nothing),
      T(session_keepalives_independent_of_the_lease_count), T(session_idle_for_a_ttl_is_revoked), T(fails_over_to_the_next_endpoint),
      T(auth_user_password), T(bad_answers_are_clear_errors), T(teardown))
