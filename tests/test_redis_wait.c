/* SPDX-License-Identifier: MIT */
/*
 * test_redis_wait.c - ?wait=N on the Redis backend, against a real primary
 * and a real replica started by the test: acquisitions (and with
 * wait_renew=yes renewals) count as done only once WAIT says N replicas have
 * them. Healthy: every lease confirmed, with far fewer WAITs than leases
 * (one per encode pass), and every lease key already on the replica when the
 * acquired callback runs. Replica stopped (SIGSTOP): an acquisition is not
 * reported held (the ambiguous -ETIMEDOUT, the reason told once through
 * store_error), a held lease's renewals are not confirmed, so it goes to
 * jeopardy and is lost at its validity. Nonsense in the URI is -EINVAL with
 * the reason.
 */
#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

#include <leasering.h>
#include "harness.h"
#include "recorder.h"
#include "redis_server.h"

#define NLEASES 1000

static char uri[512];

static struct lr_manager *mgr(const struct redis_server *s, const char *query, uint32_t ttl,
                              uint32_t max, uint32_t conns)
{
    snprintf(uri, sizeof(uri), "redis://127.0.0.1:%d%s", s->port, query);
    struct lr_manager_opts o = {.ttl_ms = ttl, .cbs = &rec_cbs, .max_leases = max,
                                .margin_ms = 25, .connections = conns,
                                .store_error = rec_store_error};
    struct lr_manager *m = NULL;
    int rc = lr_manager_new(&m, loop, uri, &o);
    if (rc < 0)
        fprintf(stderr, "lr_manager_new(%s): %s\n", uri, lr_strerror(rc));
    return m;
}

/* A primary @p and its replica @r, the link up. */
static int start_pair(struct redis_server *p, struct redis_server *r)
{
    static const char *const fast[] = {"--repl-diskless-sync-delay", "0", NULL};
    int rc = redis_server_start(p, fast);
    if (rc < 0)
        return rc;
    static char port[16];
    snprintf(port, sizeof(port), "%d", p->port);
    static const char *rep[] = {"--replicaof", "127.0.0.1", port, "--repl-diskless-sync-delay",
                                "0", NULL};
    rc = redis_server_start(r, rep);
    return rc < 0 ? rc : redis_replica_link_up(r);
}

/* A fresh record, a primary @p and replica @r in sync, a manager on @p
 * with @query and TTL @ttl, and @l initialised as @name on it; NULL if any
 * step failed (said on stderr). */
static struct lr_manager *pair_with_lease(struct redis_server *p, struct redis_server *r,
                                          const char *query, uint32_t ttl, struct lr_lease *l,
                                          const char *name)
{
    rec_setup();
    rec_errs[0] = '\0';
    int rc = start_pair(p, r);
    struct lr_manager *m = rc < 0 ? NULL : mgr(p, query, ttl, 16, 1);
    if (rc < 0 || !m || (rc = lr_lease_init(m, l, name, NULL)) < 0) {
        fprintf(stderr, "pair_with_lease(%s): %s\n", query, lr_strerror(rc));
        return NULL;
    }
    return m;
}

/* cmdstat_wait calls on @s since its last CONFIG RESETSTAT (0: none). */
static long wait_calls(const struct redis_server *s)
{
    char out[8192];
    const char *args[] = {"INFO", "commandstats", NULL};
    if (redis_cli(s, out, sizeof(out), args) != 0)
        return -1;
    const char *p = strstr(out, "cmdstat_wait:calls=");
    return p ? strtol(p + 19, NULL, 10) : 0;
}

static int count_in(const char *text, const char *what)
{
    int n = 0;
    for (const char *p = text; (p = strstr(p, what)); p++)
        n++;
    return n;
}

TEST(wait_1_confirms_every_acquisition_with_few_waits)
{
    rec_setup();
    rec_errs[0] = '\0';
    struct redis_server p, r;
    CHECK_OK(start_pair(&p, &r));
    char out[256];
    const char *reset[] = {"CONFIG", "RESETSTAT", NULL};
    CHECK_OK(redis_cli(&p, out, sizeof(out), reset));
    struct lr_manager *m = mgr(&p, "?prefix=wt:&wait=1", 10000, NLEASES, 2);
    CHECK(m);
    static struct lr_lease l[NLEASES];
    for (int i = 0; i < NLEASES; i++) {
        char name[32];
        snprintf(name, sizeof(name), "w-%d", i);
        CHECK_OK(lr_lease_init(m, &l[i], name, NULL));
        CHECK_OK(lr_lease_acquire(&l[i], 8000));
    }
    uint64_t t0 = mono_ns();
    while (rec_count(EV_ACQ, NULL) + rec_count(EV_ACQFAIL, NULL) < NLEASES &&
           mono_ns() - t0 < 15000000000ull)
        run_until(0, 20);
    CHECK_EQ(rec_count(EV_ACQFAIL, NULL), 0);
    CHECK_EQ(rec_count(EV_ACQ, NULL), NLEASES);
    /* Confirmed means on the replica now: ask it directly, without waiting
     * (EXISTS over 40 keys at a time: redis_cli takes at most 48 words). */
    int present = 0;
    for (int i = 0; i < NLEASES; i += 40) {
        const char *exists[42] = {"EXISTS"};
        char keys[40][32];
        int k = 0;
        for (; k < 40 && i + k < NLEASES; k++) {
            CHECK_EQ(lr_lease_state(&l[i + k]), LR_LEASE_HELD);
            CHECK(lr_lease_fence(&l[i + k]) > 0);
            snprintf(keys[k], sizeof(keys[k]), "wt:{w-%d}", i + k);
            exists[k + 1] = keys[k];
        }
        exists[k + 1] = NULL;
        CHECK_OK(redis_cli(&r, out, sizeof(out), exists));
        present += atoi(out);
    }
    CHECK_EQ(present, NLEASES);
    /* One WAIT per encode pass and connection, not one per lease. */
    long waits = wait_calls(&p);
    fprintf(stderr, "%d leases confirmed by %ld WAITs\n", NLEASES, waits);
    CHECK(waits > 0);
    CHECK(waits <= NLEASES / 10);
    CHECK_EQ(count_in(rec_errs, "WAIT"), 0);
    for (int i = 0; i < NLEASES; i++)
        lr_lease_deinit(&l[i]);
    close_mgr(m);
    redis_server_destroy(&r);
    redis_server_destroy(&p);
}

TEST(unconfirmed_acquisition_is_not_held)
{
    struct redis_server p, r;
    struct lr_lease l;
    struct lr_manager *m =
        pair_with_lease(&p, &r, "?prefix=wt:&wait=1&wait_ms=200", 2000, &l, "job");
    CHECK(m);
    CHECK_OK(redis_server_pause(&r));
    /* written on the primary, never acknowledged: retried with the same
     * token until the timeout, then given up as ambiguous, never held */
    CHECK_OK(lr_lease_acquire(&l, 700));
    run_until(EV_ACQFAIL, 4000);
    CHECK_EQ(rec_count(EV_ACQ, &l), 0);
    CHECK_EQ(rec_count(EV_ACQFAIL, &l), 1);
    CHECK_ERR(rec_first(EV_ACQFAIL, &l)->status, -ETIMEDOUT);
    CHECK(lr_lease_state(&l) != LR_LEASE_HELD);
    char text[256];
    CHECK_ERR(lr_manager_last_error(m, text, sizeof(text)), -ETIMEDOUT);
    if (!strstr(text, "WAIT: 0 of 1 replicas acknowledged within 200 ms"))
        fprintf(stderr, "last error: %s\nstore errors:\n%s", text, rec_errs);
    CHECK(strstr(text, "WAIT: 0 of 1 replicas acknowledged within 200 ms") != NULL);
    /* the replica back: the same lease object is acquired (once the
     * unconfirmed write under the old token has expired on the primary) */
    CHECK_OK(redis_server_resume(&r));
    CHECK_OK(redis_replica_link_up(&r));
    CHECK_OK(lr_lease_acquire(&l, 6000));
    run_until(EV_ACQ, 8000);
    CHECK_EQ(rec_count(EV_ACQ, &l), 1);
    CHECK_EQ(lr_lease_state(&l), LR_LEASE_HELD);
    CHECK(lr_lease_fence(&l) > 0);
    lr_lease_deinit(&l);
    close_mgr(m);
    redis_server_destroy(&r);
    redis_server_destroy(&p);
}

/* A lease held under @query (wait_renew=yes) is renewed while the replica
 * keeps up; with the replica stopped its renewals are not confirmed, so it
 * goes to jeopardy and is lost at its validity, never renewed. */
static void renewals_unconfirmed(const char *query)
{
    struct redis_server p, r;
    struct lr_lease l;
    struct lr_manager *m = pair_with_lease(&p, &r, query, 1000, &l, "renewed");
    CHECK(m);
    CHECK_OK(lr_lease_acquire(&l, 2000));
    run_until(EV_ACQ, 3000);
    CHECK_EQ(lr_lease_state(&l), LR_LEASE_HELD);
    /* healthy: renewals are confirmed */
    uint64_t t0 = mono_ns();
    while (rec_count(EV_RENEW, &l) < 2 && mono_ns() - t0 < 3000000000ull)
        run_until(EV_RENEW, 100);
    CHECK(rec_count(EV_RENEW, &l) >= 2);
    CHECK_EQ(rec_count(EV_JEOP, &l), 0);
    int renewed = rec_count(EV_RENEW, &l);
    CHECK_OK(redis_server_pause(&r));
    run_until(EV_LOST, 3000);
    CHECK_OK(redis_server_resume(&r));
    /* every renewal meanwhile reached the primary, none was confirmed */
    CHECK_EQ(rec_count(EV_RENEW, &l), renewed);
    CHECK(rec_count(EV_JEOP, &l) >= 1);
    CHECK_ERR(rec_first(EV_JEOP, &l)->status, -ETIMEDOUT);
    CHECK_EQ(rec_count(EV_LOST, &l), 1);
    CHECK_ERR(rec_first(EV_LOST, &l)->status, LR_EEXPIRED);
    CHECK(lr_lease_state(&l) != LR_LEASE_HELD);
    CHECK(strstr(rec_errs, "WAIT: 0 of 1 replicas acknowledged within 100 ms") != NULL);
    lr_lease_deinit(&l);
    close_mgr(m);
    redis_server_destroy(&r);
    redis_server_destroy(&p);
}

TEST(wait_renew_unconfirmed_renewals_lose_the_lease)
{
    renewals_unconfirmed("?prefix=wt:&wait=1&wait_ms=100&wait_renew=yes");
}

/* The same in session mode: the session renewal is what WAIT confirms. */
TEST(wait_renew_session_mode_unconfirmed_session_loses_its_leases)
{
    renewals_unconfirmed("?prefix=wt:&mode=session&wait=1&wait_ms=100&wait_renew=yes");
}

/* The primary dies while an acquisition's reply has come and its WAIT's has
 * not: the acquisition completes as ambiguous, with the connection. */
TEST(connection_lost_while_waiting_is_ambiguous)
{
    struct redis_server p, r;
    struct lr_lease l;
    struct lr_manager *m =
        pair_with_lease(&p, &r, "?prefix=wt:&wait=1&wait_ms=400", 2000, &l, "dropped");
    CHECK(m);
    CHECK_OK(redis_server_pause(&r));
    CHECK_OK(lr_lease_try_acquire(&l));
    run_until(0, 150); /* the script's reply is in, WAIT blocks for 400 ms */
    CHECK_EQ(rec_count(EV_ACQFAIL, &l), 0);
    CHECK_OK(redis_server_kill(&p));
    run_until(EV_ACQFAIL, 2000);
    CHECK_EQ(rec_count(EV_ACQ, &l), 0);
    CHECK_EQ(rec_count(EV_ACQFAIL, &l), 1);
    int st = rec_first(EV_ACQFAIL, &l)->status;
    if (st != -ECONNRESET && st != LR_EEOF)
        fprintf(stderr, "status %s; store errors:\n%s", lr_strerror(st), rec_errs);
    CHECK(st == -ECONNRESET || st == LR_EEOF);
    CHECK(strstr(rec_errs, "WAIT:") == NULL); /* the WAIT never answered */
    lr_lease_deinit(&l);
    close_mgr(m);
    redis_server_resume(&r);
    redis_server_destroy(&r);
    redis_server_destroy(&p);
}

/* @s without the replicas WAIT asks for, or with WAIT refused: an
 * acquisition is never held, and store_error says @why. */
static void never_held(const struct redis_server *s, const char *why)
{
    rec_setup();
    rec_errs[0] = '\0';
    struct lr_manager *m = mgr(s, "?prefix=wt:&wait=1&wait_ms=50", 2000, 16, 1);
    CHECK(m);
    struct lr_lease l;
    CHECK_OK(lr_lease_init(m, &l, "alone", NULL));
    CHECK_OK(lr_lease_try_acquire(&l));
    run_until(EV_ACQFAIL, 3000);
    CHECK_EQ(rec_count(EV_ACQ, &l), 0);
    CHECK_EQ(rec_count(EV_ACQFAIL, &l), 1);
    CHECK_ERR(rec_first(EV_ACQFAIL, &l)->status, -ETIMEDOUT);
    if (!strstr(rec_errs, why))
        fprintf(stderr, "store errors:\n%s", rec_errs);
    CHECK(strstr(rec_errs, why) != NULL);
    lr_lease_deinit(&l);
    close_mgr(m);
}

TEST(no_replica_or_wait_refused_is_never_held)
{
    rec_setup();
    struct redis_server s;
    CHECK_OK(redis_server_start(&s, NULL));
    never_held(&s, "WAIT: 0 of 1 replicas acknowledged within 50 ms");
    redis_server_destroy(&s);
    const char *const renamed[] = {"--rename-command", "WAIT", "", NULL};
    CHECK_OK(redis_server_start(&s, renamed));
    never_held(&s, "WAIT refused; writes not confirmed");
    redis_server_destroy(&s);
}

/* lr_manager_new's answer for @query on a server that is not there (nothing
 * is sent before the URI is accepted). */
static int create(const char *base, const char *query)
{
    snprintf(uri, sizeof(uri), "%s%s", base, query);
    struct lr_manager_opts o = {.ttl_ms = 4000, .cbs = &rec_cbs, .max_leases = 4,
                                .request_timeout_ms = 1000, .store_error = rec_store_error};
    struct lr_manager *m = NULL;
    int rc = lr_manager_new(&m, loop, uri, &o);
    if (m)
        close_mgr(m);
    return rc;
}

TEST(bad_wait_values_are_refused_with_the_reason)
{
    rec_setup();
    static const struct {
        const char *query;
        const char *why; /* in store_error's text */
    } bad[] = {
        {"?wait=-1", "wait= must be a number of replicas"},
        {"?wait=abc", "wait= must be a number of replicas"},
        {"?wait=", "wait= must be a number of replicas"},
        {"?wait=1001", "wait= must be a number of replicas"},
        {"?wait=1&wait_ms=0", "wait_ms= must be a number of milliseconds"},
        {"?wait=1&wait_ms=1x", "wait_ms= must be a number of milliseconds"},
        {"?wait=1&wait_ms=1000", "below the request timeout"},
        {"?wait=1&wait_ms=99999999999", "wait_ms= must be a number of milliseconds"},
        {"?wait_ms=100", "wait_ms= needs wait=N"},
        {"?wait=0&wait_ms=100", "wait_ms= needs wait=N"},
        {"?wait=1&wait_renew=maybe", "wait_renew= must be yes or no"},
        {"?wait_renew=yes", "wait_renew=yes needs wait=N"},
        {"?waitx=1", NULL}, /* unknown parameter: refused, as any other */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        rec_errs[0] = '\0';
        int rc = create("redis://127.0.0.1:1", bad[i].query);
        if (rc != -EINVAL || (bad[i].why && !strstr(rec_errs, bad[i].why)))
            fprintf(stderr, "%s: %s; store errors: %s\n", bad[i].query, lr_strerror(rc), rec_errs);
        CHECK_ERR(rc, -EINVAL);
        CHECK(!bad[i].why || strstr(rec_errs, bad[i].why) != NULL);
    }
    /* accepted on every form of the Redis backend */
    static const char *const good[][2] = {
        {"redis://127.0.0.1:1", "?wait=0"},
        {"redis://127.0.0.1:1", "?wait=2&wait_ms=999&wait_renew=no"},
        {"rediss://127.0.0.1:1", "?wait=1&wait_renew=yes"},
        {"unix:///tmp/lr-no-such.sock", "?wait=1&wait_ms=50"},
        {"redis+sentinel://127.0.0.1:1/mymaster", "?wait=1&wait_ms=300&wait_renew=yes"},
        {"redis://127.0.0.1:1", "?mode=session&wait=1"},
    };
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        int rc = create(good[i][0], good[i][1]);
        if (rc != 0)
            fprintf(stderr, "%s%s: %s\n", good[i][0], good[i][1], lr_strerror(rc));
        CHECK_OK(rc);
    }
}

TESTS(T(wait_1_confirms_every_acquisition_with_few_waits), T(unconfirmed_acquisition_is_not_held),
      T(wait_renew_unconfirmed_renewals_lose_the_lease),
      T(wait_renew_session_mode_unconfirmed_session_loses_its_leases),
      T(connection_lost_while_waiting_is_ambiguous), T(no_replica_or_wait_refused_is_never_held),
      T(bad_wait_values_are_refused_with_the_reason))
