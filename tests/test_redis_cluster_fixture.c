/* SPDX-License-Identifier: MIT */
/*
 * test_redis_cluster_fixture.c - the redis_cluster.h fixture itself, with
 * redis-cli as the only client: 3 masters + 1 replica each come up with
 * every slot covered; CLUSTER KEYSLOT agrees with BACKENDS.md; a reshard
 * moves slots while keys are written (redis-cli -c follows the ASK/MOVED)
 * and loses none; a killed master's replica is promoted; destroy leaves no
 * process and no dir.
 */
#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <unistd.h>

#include "harness.h"
#include "proc.h"
#include "redis_cluster.h"

/* Write keys fx:<from>..fx:<to-1> through node @i with `redis-cli -c` (one
 * process, commands on stdin). Returns how many got OK, or -errno. */
static int write_keys(const struct redis_cluster *c, int i, int from, int to)
{
    static char in[1 << 16], out[1 << 19]; /* each redirect adds a line */
    size_t len = 0;
    for (int k = from; k < to && len + 64 < sizeof(in); k++)
        len += (size_t)snprintf(in + len, sizeof(in) - len, "SET fx:%d v%d\n", k, k);
    char port[16];
    snprintf(port, sizeof(port), "%d", c->node[i].port);
    const char *const argv[] = {"redis-cli", "-c", "-h", "127.0.0.1", "-p", port, NULL};
    int rc = proc_capture(argv, in, out, sizeof(out), 20000, -1);
    if (rc != 0)
        return rc < 0 ? rc : -EIO;
    int ok = 0;
    for (const char *p = out; (p = strstr(p, "OK")); p += 2)
        ok++;
    if (ok != to - from)
        fprintf(stderr, "redis-cli -c: %d of %d SETs answered OK; its output:\n%.2000s\n", ok,
                to - from, out);
    return ok;
}

/* The keys on every live master, summed (DBSIZE). */
static long keys_on_masters(struct redis_cluster *c)
{
    long sum = 0;
    for (int i = 0; i < c->n; i++) {
        if (!c->node[i].pid)
            continue;
        char out[256];
        const char *const role[] = {"ROLE", NULL};
        if (redis_cli(&c->node[i], out, sizeof(out), role) != 0 || strncmp(out, "master", 6))
            continue;
        const char *const dbsize[] = {"DBSIZE", NULL};
        if (redis_cli(&c->node[i], out, sizeof(out), dbsize) != 0)
            return -1;
        sum += atol(out);
    }
    return sum;
}

TEST(three_masters_reshard_failover_destroy)
{
    struct redis_cluster c;
    int rc = redis_cluster_start(&c, 3, 1, NULL);
    CHECK_OK(rc);
    CHECK_EQ(c.n, 6);
    CHECK_EQ(c.masters, 3);
    char want[512];
    snprintf(want, sizeof(want), "redis+cluster://127.0.0.1:%d,127.0.0.1:%d,127.0.0.1:%d",
             c.node[0].port, c.node[1].port, c.node[2].port);
    CHECK(!strcmp(c.uri, want));

    /* the even split redis-cli makes, and BACKENDS.md's hash slot */
    CHECK_EQ(redis_cluster_master_of(&c, 0), 0);
    CHECK_EQ(redis_cluster_master_of(&c, 5461), 1);
    CHECK_EQ(redis_cluster_master_of(&c, 16383), 2);
    CHECK_ERR(redis_cluster_master_of(&c, RCLUSTER_SLOTS), -EINVAL);
    char out[256];
    const char *const keyslot[] = {"CLUSTER", "KEYSLOT", "lease:job1", NULL};
    CHECK_OK(redis_cli(&c.node[0], out, sizeof(out), keyslot));
    CHECK(!strcmp(out, "11848"));
    CHECK_EQ(redis_cluster_master_of(&c, 11848), 2);
    CHECK_EQ(redis_cluster_a_master(&c, -1), 0);
    CHECK_EQ(redis_cluster_a_master(&c, 0), 1);

    /* a reshard while keys are written: none lost, the slots moved */
    CHECK_EQ(write_keys(&c, 0, 0, 2000), 2000);
    pid_t pid = 0;
    CHECK_OK(redis_cluster_reshard(&c, 0, 1, 100, false, &pid));
    CHECK(pid > 0);
    CHECK_ERR(redis_cluster_reshard(&c, 0, 1, 100, false, &pid), -EBUSY);
    int written = 2000, batches = 0;
    while (redis_cluster_reshard_running(pid) && batches < 200) {
        int n = write_keys(&c, batches % 3, written, written + 200);
        CHECK_EQ(n, 200);
        written += n;
        batches++;
    }
    CHECK_OK(redis_cluster_reshard_wait(pid, 60000));
    CHECK_OK(redis_cluster_wait_ok(&c, 20000));
    fprintf(stderr, "reshard of 100 slots: %d key batches written while it ran\n", batches);
    CHECK_EQ(redis_cluster_master_of(&c, 0), 1);
    CHECK_EQ(redis_cluster_master_of(&c, 99), 1);
    CHECK_EQ(redis_cluster_master_of(&c, 100), 0);
    CHECK_EQ(keys_on_masters(&c), written);

    /* and back, blocking */
    CHECK_OK(redis_cluster_reshard(&c, 1, 0, 100, true, NULL));
    CHECK_OK(redis_cluster_wait_ok(&c, 20000));
    CHECK_EQ(keys_on_masters(&c), written);

    /* kill the master of lease:job1's slot: its replica takes over */
    int victim = redis_cluster_master_of(&c, 11848);
    CHECK_EQ(victim, 2);
    uint64_t t0 = proc_now_ms();
    CHECK_OK(redis_cluster_kill_master(&c, victim, 30000));
    fprintf(stderr, "failover took %llu ms\n", (unsigned long long)(proc_now_ms() - t0));
    CHECK_EQ(c.node[victim].pid, 0);
    int promoted = redis_cluster_master_of(&c, 11848);
    CHECK(promoted >= 3);
    CHECK_EQ(redis_cluster_a_master(&c, 0), 1);
    CHECK_EQ(write_keys(&c, 0, written, written + 100), 100);

    /* destroy: no process, no dir */
    pid_t pids[RCLUSTER_MAX];
    char dirs[RCLUSTER_MAX][128];
    int n = c.n;
    for (int i = 0; i < n; i++) {
        pids[i] = c.node[i].pid;
        snprintf(dirs[i], sizeof(dirs[i]), "%s", c.node[i].dir);
    }
    redis_cluster_destroy(&c);
    for (int i = 0; i < n; i++) {
        CHECK(pids[i] == 0 || (kill(pids[i], 0) < 0 && errno == ESRCH));
        CHECK(access(dirs[i], F_OK) < 0);
    }
    redis_cluster_destroy(&c); /* twice is fine */
}

TEST(bad_arguments)
{
    struct redis_cluster c;
    CHECK_ERR(redis_cluster_start(&c, 2, 0, NULL), -EINVAL);
    redis_cluster_destroy(&c);
    CHECK_ERR(redis_cluster_start(&c, 3, 3, NULL), -EINVAL); /* 12 > RCLUSTER_MAX */
    redis_cluster_destroy(&c);
    const char *const many[] = {"a", "b", "c", "d", "e", "f", "g", "h", NULL};
    CHECK_ERR(redis_cluster_start(&c, 3, 0, many), -E2BIG);
    redis_cluster_destroy(&c);
    CHECK_ERR(redis_cluster_reshard_wait(12345, 10), -ECHILD);
}

TESTS(T(bad_arguments), T(three_masters_reshard_failover_destroy))
