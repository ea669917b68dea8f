/* SPDX-License-Identifier: MIT */
/*
 * test_redis_checks.c - the store checks the Redis backend makes at connect,
 * against real redis-servers started with the settings under test: an
 * allkeys-* eviction policy is refused (LR_ESTORE, with the reason) unless
 * ?allow_eviction=yes; persistence off and a volatile-* policy are warned
 * about once, through store_error, without stopping anything; CONFIG renamed
 * away is said and not fatal; a replica is not taken for the primary.
 */
#include <errno.h>
#include <stdlib.h>

#include <leasering.h>
#include "harness.h"
#include "recorder.h"
#include "redis_server.h"

static char uri[256];
static struct lr_manager *mgr(const struct redis_server *s, const char *query, uint32_t conns)
{
    snprintf(uri, sizeof(uri), "redis://127.0.0.1:%d%s", s->port, query ? query : "");
    struct lr_manager_opts o = {.ttl_ms = 3000, .cbs = &rec_cbs, .max_leases = 64,
                                .margin_ms = 25, .connections = conns,
                                .store_error = rec_store_error};
    struct lr_manager *m = NULL;
    int rc = lr_manager_new(&m, loop, uri, &o);
    if (rc < 0)
        fprintf(stderr, "lr_manager_new(%s): %s\n", uri, lr_strerror(rc));
    return m;
}

static int count_lines(const char *what)
{
    int n = 0;
    for (const char *p = rec_errs; (p = strstr(p, what)); p++)
        n++;
    return n;
}

/* Init @l as @name on @m and acquire it within @ms: the callback's status
 * (0 held). release() deinitialises it again. */
static int acquire(struct lr_manager *m, struct lr_lease *l, const char *name, uint32_t ms)
{
    if (lr_lease_init(m, l, name, NULL) < 0 || lr_lease_acquire(l, ms) < 0)
        return -EINVAL;
    int before_ok = rec_count(EV_ACQ, l), before_fail = rec_count(EV_ACQFAIL, l);
    uint64_t t0 = mono_ns();
    while (rec_count(EV_ACQ, l) == before_ok && rec_count(EV_ACQFAIL, l) == before_fail &&
           mono_ns() - t0 < (uint64_t)(ms + 3000) * 1000000u)
        run_until(0, 20);
    if (rec_count(EV_ACQ, l) > before_ok)
        return 0;
    if (rec_count(EV_ACQFAIL, l) > before_fail)
        return rec_first(EV_ACQFAIL, l)->status;
    return -ETIMEDOUT;
}

static void release(struct lr_lease *l)
{
    if (lr_lease_state(l) == LR_LEASE_HELD && lr_lease_release(l) == 0)
        run_until(EV_REL, 3000);
    lr_lease_deinit(l);
}

TEST(allkeys_policy_refused_unless_allowed)
{
    rec_setup();
    rec_errs[0] = '\0';
    struct redis_server s;
    const char *const extra[] = {"--maxmemory-policy", "allkeys-lru", NULL};
    CHECK_OK(redis_server_start(&s, extra));
    struct lr_manager *m = mgr(&s, NULL, 1);
    CHECK(m);
    struct lr_lease l;
    CHECK_ERR(acquire(m, &l, "job-1", 2000), LR_ESTORE);
    char text[256];
    CHECK_ERR(lr_manager_last_error(m, text, sizeof(text)), LR_ESTORE);
    if (!strstr(text, "allkeys-lru") || !strstr(text, "allow_eviction=yes"))
        fprintf(stderr, "last error: %s\nstore errors:\n%s", text, rec_errs);
    CHECK(strstr(text, "allkeys-lru") && strstr(text, "allow_eviction=yes"));
    release(&l);
    /* refused at once while the policy stands: no waiting for a timeout */
    uint64_t t0 = mono_ns();
    CHECK_ERR(acquire(m, &l, "job-1", 2000), LR_ESTORE);
    CHECK(mono_ns() - t0 < 1500000000ull);
    release(&l);
    close_mgr(m);
    /* the URI that accepts the risk holds leases there */
    m = mgr(&s, "?allow_eviction=yes", 1);
    CHECK(m);
    CHECK_OK(acquire(m, &l, "job-1", 2000));
    CHECK_EQ(lr_lease_fence(&l), 1);
    release(&l);
    close_mgr(m);
    /* the operator fixes the policy: the refusing manager's reconnect gets through */
    m = mgr(&s, NULL, 1);
    CHECK(m);
    CHECK_ERR(acquire(m, &l, "job-2", 2000), LR_ESTORE);
    release(&l);
    char out[64];
    const char *set[] = {"CONFIG", "SET", "maxmemory-policy", "noeviction", NULL};
    CHECK_OK(redis_cli(&s, out, sizeof(out), set));
    /* refusals stand until the next reconnect (backoff within a request
     * timeout) gets through */
    int rc = LR_ESTORE;
    for (int i = 0; i < 20 && rc == LR_ESTORE; i++) {
        rc = acquire(m, &l, "job-2", 2000);
        if (rc == LR_ESTORE) {
            release(&l);
            run_until(0, 250);
        }
    }
    CHECK_OK(rc);
    release(&l);
    close_mgr(m);
    redis_server_destroy(&s);
}

TEST(persistence_off_is_warned_once)
{
    rec_setup();
    rec_errs[0] = '\0';
    struct redis_server s;
    CHECK_OK(redis_server_start(&s, NULL)); /* the harness runs --appendonly no */
    struct lr_manager *m = mgr(&s, NULL, 3);
    CHECK(m);
    struct lr_lease l[3];
    static const char *const names[] = {"a", "b", "c"};
    for (int i = 0; i < 3; i++)
        CHECK_OK(acquire(m, &l[i], names[i], 2000));
    CHECK_EQ(count_lines("warning: appendonly is no"), 1); /* 3 connections, one warning */
    for (int i = 0; i < 3; i++)
        release(&l[i]);
    close_mgr(m);
    redis_server_destroy(&s);
    /* AOF on, fsync always: nothing to say */
    rec_errs[0] = '\0';
    const char *const aof[] = {"--appendonly", "yes", "--appendfsync", "always", NULL};
    CHECK_OK(redis_server_start(&s, aof));
    m = mgr(&s, NULL, 1);
    CHECK(m);
    CHECK_OK(acquire(m, &l[0], "a", 2000));
    CHECK_EQ(count_lines("warning"), 0);
    release(&l[0]);
    close_mgr(m);
    redis_server_destroy(&s);
}

TEST(volatile_policy_and_renamed_config_are_said)
{
    rec_setup();
    rec_errs[0] = '\0';
    struct redis_server s;
    const char *const vol[] = {"--maxmemory-policy", "volatile-lru", NULL};
    CHECK_OK(redis_server_start(&s, vol));
    struct lr_manager *m = mgr(&s, NULL, 1);
    CHECK(m);
    struct lr_lease l;
    CHECK_OK(acquire(m, &l, "v", 2000));
    CHECK_EQ(count_lines("warning: maxmemory-policy volatile-lru"), 1);
    release(&l);
    close_mgr(m);
    redis_server_destroy(&s);
    /* CONFIG renamed away: said, not fatal */
    rec_errs[0] = '\0';
    const char *const ren[] = {"--rename-command", "CONFIG", "", NULL};
    CHECK_OK(redis_server_start(&s, ren));
    m = mgr(&s, NULL, 1);
    CHECK(m);
    CHECK_OK(acquire(m, &l, "r", 2000));
    CHECK_EQ(count_lines("warning: CONFIG GET refused (ERR unknown command"), 1);
    release(&l);
    close_mgr(m);
    redis_server_destroy(&s);
}

TEST(a_replica_is_not_the_primary)
{
    rec_setup();
    rec_errs[0] = '\0';
    struct redis_server p, r;
    const char *const fast[] = {"--repl-diskless-sync-delay", "0", NULL};
    CHECK_OK(redis_server_start(&p, fast));
    char port[16];
    snprintf(port, sizeof(port), "%d", p.port);
    const char *const rep[] = {"--replicaof", "127.0.0.1", port, NULL};
    CHECK_OK(redis_server_start(&r, rep));
    struct lr_manager *m = mgr(&r, NULL, 1);
    CHECK(m);
    struct lr_lease l;
    CHECK_ERR(acquire(m, &l, "job", 800), LR_EUNAVAIL);
    char want[64];
    snprintf(want, sizeof(want), "is a replica (of 127.0.0.1:%d)", p.port);
    if (!strstr(rec_errs, want))
        fprintf(stderr, "store errors:\n%s", rec_errs);
    CHECK(strstr(rec_errs, want) != NULL);
    release(&l);
    close_mgr(m);
    m = mgr(&p, NULL, 1);
    CHECK(m);
    CHECK_OK(acquire(m, &l, "job", 2000));
    release(&l);
    close_mgr(m);
    redis_server_destroy(&r);
    redis_server_destroy(&p);
}

TESTS(T(allkeys_policy_refused_unless_allowed), T(persistence_off_is_warned_once),
      T(volatile_policy_and_renamed_config_are_said), T(a_replica_is_not_the_primary))
