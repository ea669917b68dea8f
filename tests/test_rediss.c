/* SPDX-License-Identifier: MIT */
/*
 * test_rediss.c - rediss:// against TLS-only redis-server processes with a
 * throwaway CA: leases over TLS with the keys checked through redis-cli, a
 * wrong-hostname certificate and an untrusted CA refused (LR_ETLS) at once
 * with the reason in lr_manager_last_error, rediss:// to a plain-text server
 * failing at once with LR_ETLS after a handful of connections, a kill
 * and restart renegotiating TLS while the leases hold on, and renewals over
 * TLS making no allocations (wolfSSL's allocator routed to the pool).
 */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>

#include <leasering.h>
#include "alloccount.h"
#include "certs.h"
#include "harness.h"
#include "recorder.h"
#include "redis_server.h"

static struct certs certs;
static char uri[512];

static const char *tls_uri(const struct redis_server *s, const char *host, bool with_ca)
{
    snprintf(uri, sizeof(uri), "rediss://%s:%d%s%s", host, s->port, with_ca ? "?cacert=" : "",
             with_ca ? certs.ca : "");
    return uri;
}

static struct lr_manager *mgr(const char *u, uint32_t ttl)
{
    struct lr_manager_opts o = {.ttl_ms = ttl, .cbs = &rec_cbs, .max_leases = 4096,
                                .request_timeout_ms = 300};
    struct lr_manager *m = NULL;
    int rc = lr_manager_new(&m, loop, u, &o);
    if (rc < 0)
        fprintf(stderr, "lr_manager_new(%s): %s\n", u, lr_strerror(rc));
    return m;
}

static void drop_certs(void)
{
    certs_destroy(&certs);
}

/* One throwaway CA for the whole run, removed at exit whichever tests ran. */
static int setup_certs(void)
{
    if (certs.ca[0])
        return 0;
    int rc = certs_make(&certs, NULL);
    if (rc == 0)
        atexit(drop_certs);
    return rc;
}

TEST(leases_over_tls)
{
    rec_setup();
    CHECK_OK(setup_certs());
    struct redis_server s;
    CHECK_OK(redis_server_start_tls(&s, certs.server_cert, certs.server_key, certs.ca, NULL));
    struct lr_manager *m = mgr(tls_uri(&s, "localhost", true), 900);
    CHECK(m);
    CHECK(!strcmp(lr_manager_backend(m), "rediss"));
    struct lr_lease l;
    CHECK_OK(lr_lease_init(m, &l, "secure-job", NULL));
    CHECK_OK(lr_lease_acquire(&l, 3000));
    run_until(EV_ACQ, 3000);
    CHECK_EQ(lr_lease_state(&l), LR_LEASE_HELD);
    run_until(0, 1000);
    CHECK(lr_lease_stats(&l)->renewals >= 2);
    CHECK_OK(rec_inspect(m, "secure-job", 3000)); /* who holds it, over TLS */
    CHECK_EQ(rec_insp.held, 1);
    CHECK(!strcmp(rec_insp.holder, lr_manager_identity(m)));
    CHECK(rec_insp.ttl_ms > 0 && rec_insp.ttl_ms <= 900);
    char out[128];
    const char *args[] = {"PTTL", "lr:{secure-job}", NULL};
    CHECK_OK(redis_cli(&s, out, sizeof(out), args));
    CHECK(atoll(out) > 0 && atoll(out) <= 900);
    CHECK_OK(lr_lease_release(&l));
    run_until(EV_REL, 2000);
    CHECK_OK(rec_first(EV_REL, &l)->status);
    lr_lease_deinit(&l);
    close_mgr(m);
    redis_server_destroy(&s);
}

TEST(wrong_hostname_certificate_is_refused)
{
    rec_setup();
    CHECK_OK(setup_certs());
    struct redis_server s;
    CHECK_OK(redis_server_start_tls(&s, certs.wrong_cert, certs.wrong_key, certs.ca, NULL));
    struct lr_manager *m = mgr(tls_uri(&s, "localhost", true), 2000);
    CHECK(m);
    struct lr_lease l;
    CHECK_OK(lr_lease_init(m, &l, "x", NULL));
    CHECK_OK(lr_lease_acquire(&l, 3000)); /* a definite failure does not wait it out */
    run_until(EV_ACQFAIL, 3000);
    CHECK_ERR(rec_first(EV_ACQFAIL, &l)->status, LR_ETLS);
    CHECK(strstr(lr_strerror(LR_ETLS), "certificate") != NULL);
    lr_lease_deinit(&l);
    close_mgr(m);
    redis_server_destroy(&s);
}

TEST(untrusted_ca_is_refused_and_skip_verify_must_be_spelled_out)
{
    rec_setup();
    CHECK_OK(setup_certs());
    struct redis_server s;
    CHECK_OK(redis_server_start_tls(&s, certs.server_cert, certs.server_key, certs.ca, NULL));
    /* no cacert: the system store does not know our throwaway CA */
    struct lr_manager *m = mgr(tls_uri(&s, "localhost", false), 2000);
    CHECK(m);
    struct lr_lease l;
    CHECK_OK(lr_lease_init(m, &l, "x", NULL));
    CHECK_OK(lr_lease_try_acquire(&l));
    run_until(EV_ACQFAIL, 3000);
    CHECK_ERR(rec_first(EV_ACQFAIL, &l)->status, LR_ETLS);
    lr_lease_deinit(&l);
    close_mgr(m);
    /* only the exact opt-out disables verification */
    struct lr_manager *bad;
    struct lr_manager_opts o = {.ttl_ms = 2000};
    snprintf(uri, sizeof(uri), "rediss://localhost:%d?insecure_skip_verify=1", s.port);
    CHECK_ERR(lr_manager_new(&bad, loop, uri, &o), -EINVAL);
    snprintf(uri, sizeof(uri), "redis://localhost:%d?cacert=/x", s.port);
    CHECK_ERR(lr_manager_new(&bad, loop, uri, &o), -EINVAL); /* TLS options need rediss */
    snprintf(uri, sizeof(uri), "rediss://localhost:%d?cacert=/nonexistent.pem", s.port);
    CHECK_ERR(lr_manager_new(&bad, loop, uri, &o), -EINVAL);
    snprintf(uri, sizeof(uri), "rediss://localhost:%d?insecure_skip_verify=yes", s.port);
    rec_setup();
    m = mgr(uri, 2000);
    CHECK(m);
    CHECK_OK(lr_lease_init(m, &l, "y", NULL));
    CHECK_OK(lr_lease_try_acquire(&l));
    run_until(EV_ACQ, 3000);
    CHECK_EQ(lr_lease_state(&l), LR_LEASE_HELD);
    lr_lease_deinit(&l);
    close_mgr(m);
    redis_server_destroy(&s);
}

/* INFO stats total_connections_received of @s, or -1. */
static long long connections_received(const struct redis_server *s)
{
    static char out[8192];
    const char *args[] = {"INFO", "stats", NULL};
    if (redis_cli(s, out, sizeof(out), args) != 0)
        return -1;
    const char *p = strstr(out, "total_connections_received:");
    return p ? atoll(p + strlen("total_connections_received:")) : -1;
}

/* Acquire with a long deadline on @u and expect a definite LR_ETLS at once,
 * with the cause in lr_manager_last_error. Returns the manager's text. */
static void expect_tls_failure_at_once(const char *u, const char *why, char *text, size_t cap)
{
    struct lr_manager *m = mgr(u, 2000);
    CHECK(m);
    struct lr_lease l;
    CHECK_OK(lr_lease_init(m, &l, "x", NULL));
    uint64_t t0 = mono_ns();
    CHECK_OK(lr_lease_acquire(&l, 20000)); /* a definite failure does not wait it out */
    run_until(EV_ACQFAIL, 5000);
    CHECK(rec_first(EV_ACQFAIL, &l) != NULL);
    uint64_t took_ms = (rec_first(EV_ACQFAIL, &l)->at_ns - t0) / 1000000u;
    printf("     %s: acquire_failed after %llu ms: %s\n", why, (unsigned long long)took_ms,
           lr_err_name(rec_first(EV_ACQFAIL, &l)->status));
    CHECK_ERR(rec_first(EV_ACQFAIL, &l)->status, LR_ETLS);
    CHECK(took_ms < 1500); /* the handshake deadline: max(1 s, request timeout) */
    CHECK_ERR(lr_manager_last_error(m, text, cap), LR_ETLS);
    printf("     last error: %s\n", text);
    CHECK(strstr(text, "TLS") != NULL);
    /* a new attempt is refused at once too, without reconnecting in a loop */
    nev = 0;
    CHECK_OK(lr_lease_try_acquire(&l));
    run_until(EV_ACQFAIL, 3000);
    CHECK_ERR(rec_first(EV_ACQFAIL, &l)->status, LR_ETLS);
    lr_lease_deinit(&l);
    close_mgr(m);
}

TEST(rediss_to_a_plain_server_fails_at_once)
{
    rec_setup();
    CHECK_OK(setup_certs());
    struct redis_server s;
    CHECK_OK(redis_server_start(&s, NULL));
    long long before = connections_received(&s);
    CHECK(before >= 0);
    char text[200] = "";
    snprintf(uri, sizeof(uri), "rediss://localhost:%d?cacert=%s", s.port, certs.ca);
    expect_tls_failure_at_once(uri, "plain-text server", text, sizeof(text));
    CHECK(strstr(text, "handshake") != NULL);
    long long conns = connections_received(&s) - before - 1; /* minus our INFO */
    printf("     %lld connections\n", conns);
    CHECK(conns >= 1 && conns <= 3);
    redis_server_destroy(&s);
}

TEST(certificate_that_fails_verification_fails_at_once)
{
    rec_setup();
    CHECK_OK(setup_certs());
    struct redis_server s;
    CHECK_OK(redis_server_start_tls(&s, certs.wrong_cert, certs.wrong_key, certs.ca, NULL));
    char text[200] = "";
    expect_tls_failure_at_once(tls_uri(&s, "localhost", true), "wrong name", text, sizeof(text));
    redis_server_destroy(&s);
    CHECK_OK(redis_server_start_tls(&s, certs.server_cert, certs.server_key, certs.ca, NULL));
    rec_setup();
    expect_tls_failure_at_once(tls_uri(&s, "localhost", false), "unknown CA", text, sizeof(text));
    redis_server_destroy(&s);
}

TEST(kill_and_restart_renegotiates_and_holds_on)
{
    rec_setup();
    CHECK_OK(setup_certs());
    static const char *const aof[] = {"--appendonly", "yes", "--appendfsync", "always", NULL};
    struct redis_server s;
    CHECK_OK(redis_server_start_tls(&s, certs.server_cert, certs.server_key, certs.ca, aof));
    struct lr_manager *m = mgr(tls_uri(&s, "localhost", true), 3000);
    CHECK(m);
    static struct lr_lease ls[20];
    for (int i = 0; i < 20; i++) {
        char name[16];
        snprintf(name, sizeof(name), "k%d", i);
        CHECK_OK(lr_lease_init(m, &ls[i], name, NULL));
        CHECK_OK(lr_lease_acquire(&ls[i], 3000));
    }
    run_until(0, 500);
    CHECK_EQ(lr_manager_stats(m)->held, 20);
    CHECK_OK(redis_server_kill(&s));
    run_until(0, 300);
    CHECK_OK(redis_server_restart(&s));
    run_until(0, 2500);
    CHECK_EQ(rec_count(EV_LOST, NULL), 0);
    CHECK_EQ(lr_manager_stats(m)->held, 20);
    CHECK(lr_manager_stats(m)->reconnects >= 1);
    for (int i = 0; i < 20; i++)
        lr_lease_deinit(&ls[i]);
    close_mgr(m);
    redis_server_destroy(&s);
}

TEST(renewals_over_tls_allocate_nothing)
{
    rec_setup();
    CHECK_OK(setup_certs());
    struct redis_server s;
    CHECK_OK(redis_server_start_tls(&s, certs.server_cert, certs.server_key, certs.ca, NULL));
    struct lr_manager *m = mgr(tls_uri(&s, "localhost", true), 600);
    CHECK(m);
    static struct lr_lease ls[2000];
    for (int i = 0; i < 2000; i++) {
        char name[16];
        snprintf(name, sizeof(name), "z%d", i);
        CHECK_OK(lr_lease_init(m, &ls[i], name, NULL));
        CHECK_OK(lr_lease_acquire(&ls[i], 3000));
    }
    run_until(0, 800); /* acquired, and a first renewal cycle (200 ms) done */
    CHECK_EQ(lr_manager_stats(m)->held, 2000);
    uint64_t r0 = lr_manager_stats(m)->renewals;
    alloccount_begin();
    run_until(0, 1200);
    struct alloc_counts ac = alloccount_end();
    uint64_t n = lr_manager_stats(m)->renewals - r0;
    printf("     %llu renewals over TLS: %llu allocs, %llu frees\n", (unsigned long long)n,
           (unsigned long long)ac.allocs, (unsigned long long)ac.frees);
    CHECK(n >= 2000 * 4);
    CHECK_EQ(ac.allocs, 0);
    CHECK_EQ(ac.frees, 0);
    for (int i = 0; i < 2000; i++)
        lr_lease_deinit(&ls[i]);
    close_mgr(m);
    redis_server_destroy(&s);
}

TESTS(T(leases_over_tls), T(wrong_hostname_certificate_is_refused),
      T(untrusted_ca_is_refused_and_skip_verify_must_be_spelled_out),
      T(rediss_to_a_plain_server_fails_at_once),
      T(certificate_that_fails_verification_fails_at_once),
      T(kill_and_restart_renegotiates_and_holds_on), T(renewals_over_tls_allocate_nothing))
