/* SPDX-License-Identifier: MIT */
/*
 * test_cluster_client.c - how redis+cluster:// talks to a real 3-master
 * Redis Cluster (tests/redis_cluster.h), beyond the acceptance tests of
 * test_redis_cluster.c:
 * - Renewals stay batched: 3000 leases in 30 slots (names "g<k>}<i>" put the
 *   hash tag "g<k>" in their keys "<prefix>{g<k>}<i>}") are renewed with far
 *   fewer EVALSHA calls than renewals, counted by the masters themselves
 *   (INFO commandstats), and never a CROSSSLOT.
 * - A slot left half migrated by hand (CLUSTER SETSLOT MIGRATING/IMPORTING,
 *   half of its lease keys MIGRATEd): batches over it meet TRYAGAIN and go
 *   out name by name, names whose key moved meet ASK and are renewed on the
 *   importing node behind ASKING (counted there); none is lost or even in
 *   jeopardy. Then the slot is given to the target for good: MOVED, the
 *   map is refreshed, renewals and releases go on there; the log says so
 *   (a warn line: MOVED to the new owner, or the slot map changed).
 * - ?wait=1 with a replica per master: each master WAITs for its own
 *   replica, and every acquired lease's key is on a replica.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "proc.h"
#include "recorder.h"
#include "redis_cluster.h"
#include "redis_slot.h"
#include <leasering.h>

static struct redis_cluster cl;

/* A number from INFO commandstats of node @i: "cmdstat_<cmd>:calls=N". */
static long calls(int i, const char *cmd)
{
    static const char *const args[] = {"INFO", "commandstats", NULL};
    static char out[16384];
    if (redis_cli(&cl.node[i], out, sizeof(out), args) != 0)
        return -1;
    char key[64];
    snprintf(key, sizeof(key), "cmdstat_%s:calls=", cmd);
    const char *p = strstr(out, key);
    return p ? atol(p + strlen(key)) : 0;
}

static long evalsha_calls(void)
{
    long sum = 0;
    for (int i = 0; i < cl.masters; i++)
        sum += calls(i, "evalsha");
    return sum;
}

static struct lr_manager *cluster_mgr(const char *prefix, uint32_t ttl, uint32_t max)
{
    char u[600];
    snprintf(u, sizeof(u), "%s?prefix=%s", cl.uri, prefix);
    struct lr_manager_opts o = {
        .ttl_ms = ttl, .max_leases = max, .cbs = &rec_cbs, .store_error = rec_store_error};
    struct lr_manager *m = NULL;
    return lr_manager_new(&m, loop, u, &o) == 0 ? m : NULL;
}

static void run_until_n(enum ev e, int n, uint64_t ms)
{
    uint64_t end = mono_ns() / 1000000u + ms;
    while (rec_count(e, NULL) < n && mono_ns() / 1000000u < end)
        run_until(0, 20);
}

TEST(renewals_batched_per_slot)
{
    rec_setup();
    rec_errs[0] = '\0';
    CHECK_OK(redis_cluster_start(&cl, 3, 0, NULL));
    enum { GROUPS = 30, PER = 100, N = GROUPS * PER };
    struct lr_manager *m = cluster_mgr("b:", 1000, N);
    CHECK(m != NULL);
    static struct lr_lease ls[N];
    for (int i = 0; i < N; i++) {
        char name[32];
        snprintf(name, sizeof(name), "g%d}%d", i / PER, i % PER);
        CHECK_OK(lr_lease_init(m, &ls[i], name, NULL));
        CHECK_OK(lr_lease_acquire(&ls[i], 10000));
    }
    run_until_n(EV_ACQ, N, 15000);
    CHECK_EQ(rec_count(EV_ACQ, NULL), N);
    long before = evalsha_calls();
    uint64_t keys0 = lr_manager_stats(m)->renew_keys;
    uint64_t reqs0 = lr_manager_stats(m)->renew_requests;
    run_until(0, 3000);
    long evalshas = evalsha_calls() - before;
    uint64_t keys = lr_manager_stats(m)->renew_keys - keys0;
    uint64_t reqs = lr_manager_stats(m)->renew_requests - reqs0;
    printf("     %d leases in %d slots, 3 s: %llu renewals in %llu batches, %ld EVALSHA calls\n", N,
           GROUPS, (unsigned long long)keys, (unsigned long long)reqs, evalshas);
    CHECK_EQ(rec_count(EV_LOST, NULL), 0);
    CHECK_EQ(rec_count(EV_JEOP, NULL), 0);
    CHECK(keys >= 2 * N);              /* TTL 1 s: every lease renewed several times */
    CHECK(reqs * 5 <= keys);           /* at least 5 names per batch on average */
    CHECK(evalshas * 4 <= (long)keys); /* and the masters saw as few calls */
    CHECK(strstr(rec_errs, "CROSSSLOT") == NULL);
    CHECK_EQ(lr_manager_release_all(m), N);
    run_until_n(EV_REL, N, 10000);
    CHECK_EQ(rec_count(EV_REL, NULL), N);
    close_mgr(m);
    redis_cluster_destroy(&cl);
}

/* CLUSTER MYID of node @i into @id (41 bytes). */
static int myid(int i, char *id)
{
    static const char *const args[] = {"CLUSTER", "MYID", NULL};
    char out[128];
    if (redis_cli(&cl.node[i], out, sizeof(out), args) != 0 || strlen(out) != 40)
        return -EIO;
    memcpy(id, out, 41);
    return 0;
}

static int cli(int i, const char *const *args, const char *want)
{
    char out[512];
    int rc = redis_cli(&cl.node[i], out, sizeof(out), args);
    if (rc != 0 || (want && strcmp(out, want))) {
        fprintf(stderr, "node %d: %s %s...: \"%s\"\n", i, args[0], args[1], out);
        return -EIO;
    }
    return 0;
}

/* MIGRATE the lease keys "a:{m}<i>}" for i in [from, to) from node @src to @dst. */
static int migrate(int src, int dst, int from, int to)
{
    static char keys[64][32];
    const char *args[80] = {"MIGRATE", "127.0.0.1", NULL, "", "0", "5000", "KEYS"};
    char port[8];
    snprintf(port, sizeof(port), "%d", cl.node[dst].port);
    args[2] = port;
    int n = 7;
    for (int i = from; i < to; i++) {
        snprintf(keys[i - from], sizeof(keys[0]), "a:{m}%d}", i);
        args[n++] = keys[i - from];
    }
    args[n] = NULL;
    return cli(src, args, "OK");
}

/* Log lines at warn, appended to warn_log (see lr_set_log). */
static char warn_log[4096];

static void keep_warn(void *arg, int level, const char *msg)
{
    (void)arg;
    size_t n = strlen(warn_log);
    if (level >= LR_LOG_WARN)
        snprintf(warn_log + n, sizeof(warn_log) - n, "%s\n", msg);
}

TEST(half_migrated_slot_ask_and_tryagain)
{
    rec_setup();
    rec_errs[0] = '\0';
    CHECK_OK(redis_cluster_start(&cl, 3, 0, NULL));
    enum { N = 40 };
    struct lr_manager *m = cluster_mgr("a:", 2000, N);
    CHECK(m != NULL);
    static struct lr_lease ls[N];
    for (int i = 0; i < N; i++) {
        char name[32];
        snprintf(name, sizeof(name), "m}%d", i); /* key "a:{m}<i>}": slot of "m" */
        CHECK_OK(lr_lease_init(m, &ls[i], name, NULL));
        CHECK_OK(lr_lease_acquire(&ls[i], 10000));
    }
    run_until_n(EV_ACQ, N, 10000);
    CHECK_EQ(rec_count(EV_ACQ, NULL), N);

    int slot = lr__redis_slot("m", 1);
    int src = redis_cluster_master_of(&cl, slot);
    CHECK(src >= 0);
    int dst = (src + 1) % 3;
    char sid[41], did[41], s_slot[8];
    CHECK_OK(myid(src, sid));
    CHECK_OK(myid(dst, did));
    snprintf(s_slot, sizeof(s_slot), "%d", slot);
    const char *imp[] = {"CLUSTER", "SETSLOT", s_slot, "IMPORTING", sid, NULL};
    const char *mig[] = {"CLUSTER", "SETSLOT", s_slot, "MIGRATING", did, NULL};
    CHECK_OK(cli(dst, imp, "OK"));
    CHECK_OK(cli(src, mig, "OK"));
    CHECK_OK(migrate(src, dst, 0, N / 2));
    long asking0 = calls(dst, "asking");
    uint32_t renewed0[N];
    for (int i = 0; i < N; i++)
        renewed0[i] = lr_lease_stats(&ls[i])->renewals;

    run_until(0, 3000); /* about four renewals each, half of them through ASK */
    long asking = calls(dst, "asking") - asking0;
    printf("     slot %d half migrated: %ld ASKING on the importing node\n", slot, asking);
    CHECK_EQ(rec_count(EV_LOST, NULL), 0);
    CHECK_EQ(rec_count(EV_JEOP, NULL), 0);
    for (int i = 0; i < N; i++)
        CHECK(lr_lease_stats(&ls[i])->renewals >= renewed0[i] + 2);
    CHECK(asking >= N / 2);

    /* the rest of the keys, then the slot is the target's for good */
    CHECK_OK(migrate(src, dst, N / 2, N));
    const char *node_cmd[] = {"CLUSTER", "SETSLOT", s_slot, "NODE", did, NULL};
    CHECK_OK(cli(dst, node_cmd, "OK"));
    CHECK_OK(cli(src, node_cmd, "OK"));
    CHECK_OK(cli((dst + 1) % 3, node_cmd, "OK"));
    for (int i = 0; i < N; i++)
        renewed0[i] = lr_lease_stats(&ls[i])->renewals;
    warn_log[0] = '\0';
    lr_set_log(keep_warn, NULL);
    run_until(0, 2000);
    lr_set_log(NULL, NULL);
    printf("%s", warn_log);
    CHECK(strstr(warn_log, ": MOVED: slots now served by ") ||
          strstr(warn_log, ": slot map changed: "));
    CHECK_EQ(rec_count(EV_LOST, NULL), 0);
    CHECK_EQ(rec_count(EV_JEOP, NULL), 0);
    for (int i = 0; i < N; i++)
        CHECK(lr_lease_stats(&ls[i])->renewals >= renewed0[i] + 1);
    CHECK_EQ(lr_manager_release_all(m), N);
    run_until_n(EV_REL, N, 5000);
    CHECK_EQ(rec_count(EV_REL, NULL), N);
    for (int i = 0; i < nev; i++)
        if (evs[i].ev == EV_REL)
            CHECK_OK(evs[i].status); /* found and deleted on the new owner */
    close_mgr(m);
    redis_cluster_destroy(&cl);
}

/* ?wait=1 on a cluster with a replica per master: every master that took
 * acquisitions sends WAIT to its own replica, and each acquired lease's key
 * is on that replica by then. */
TEST(wait_for_each_masters_replica)
{
    rec_setup();
    rec_errs[0] = '\0';
    CHECK_OK(redis_cluster_start(&cl, 3, 1, NULL));
    enum { N = 300 };
    struct lr_manager *m = cluster_mgr("w:&wait=1", 5000, N);
    CHECK(m != NULL);
    static struct lr_lease ls[N];
    for (int i = 0; i < N; i++) {
        char name[32];
        snprintf(name, sizeof(name), "w%d", i);
        CHECK_OK(lr_lease_init(m, &ls[i], name, NULL));
        CHECK_OK(lr_lease_acquire(&ls[i], 10000));
    }
    run_until_n(EV_ACQ, N, 10000);
    CHECK_EQ(rec_count(EV_ACQ, NULL), N);
    long waits = 0;
    for (int i = 0; i < cl.masters; i++) {
        long w = calls(i, "wait");
        CHECK(w >= 1); /* every master holds some of the names */
        waits += w;
    }
    printf("     %d acquisitions confirmed by %ld WAITs over 3 masters\n", N, waits);
    /* each lease key is on the replica of its master already */
    long on_replicas = 0;
    for (int i = cl.masters; i < cl.n; i++) {
        static const char *const args[] = {"EVAL",
                                           "local n, c = 0, '0' repeat local r = "
                                           "redis.call('SCAN', c, 'MATCH', 'w:{w*}', 'COUNT', "
                                           "1000) c = r[1] n = n + #r[2] until c == '0' return n",
                                           "0", NULL};
        char out[64];
        CHECK_EQ(redis_cli(&cl.node[i], out, sizeof(out), args), 0);
        on_replicas += atol(out);
    }
    CHECK_EQ(on_replicas, N);
    CHECK_EQ(lr_manager_release_all(m), N);
    run_until_n(EV_REL, N, 10000);
    close_mgr(m);
    redis_cluster_destroy(&cl);
}

TESTS(T(renewals_batched_per_slot), T(half_migrated_slot_ask_and_tryagain),
      T(wait_for_each_masters_replica))
