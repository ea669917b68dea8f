/* SPDX-License-Identifier: MIT */
/*
 * redis_cluster.h - a real Redis Cluster for integration tests: N masters
 * (plus R replicas each) started as redis_server.h processes on free
 * loopback ports, joined with `redis-cli --cluster create`, and the moves a
 * test needs: ask who serves a slot, reshard slots (with live key migration,
 * so clients see ASK/MOVED), kill a master and wait for its replica's
 * promotion.
 *
 * Every node runs `redis-server <redis_server_start's fixed words>
 * --cluster-enabled yes --cluster-config-file nodes.conf
 * --cluster-node-timeout 1000 --repl-diskless-sync-delay 0
 * --cluster-port <B> <extra...>`, B a second free port: the default bus
 * port (port + 10000) does not exist above 55535, where free ports often are.
 * nodes.conf lands in the node's private dir (redis chdirs into --dir).
 * With a node timeout of 1000 ms a killed master is marked FAIL after about
 * 1-2 s and its replica wins the election some 0.5-1.5 s later (its delay is
 * 500 ms + random 0-500 ms + 1 s per rank), so a failover takes ~2-4 s on
 * loopback: lease tests want TTLs of several seconds to see renewals survive
 * it. Note redis_server_start's fixed words include --save '' and
 * --appendonly no: a restarted node comes back empty (a restarted killed
 * master is not what these helpers do).
 *
 * Who serves which slot is read from CLUSTER NODES (one line per node, slot
 * ranges at the end; the same map as CLUSTER SHARDS/SLOTS but one line per
 * node, which redis-cli prints as plain text). Open slots ("[5->-id]",
 * "[5-<-id]") are what a running reshard leaves; redis_cluster_wait_ok
 * waits until there are none.
 *
 * A missing redis-server or redis-cli prints an install hint and returns
 * -ENOENT: a test FAILURE, never a skip. Nothing here is thread-safe: use it
 * from the test's main thread (the servers die with the thread that started
 * them, see redis_server.h).
 */
#ifndef LR_TEST_REDIS_CLUSTER_H
#define LR_TEST_REDIS_CLUSTER_H

#include <stdbool.h>
#include <sys/types.h>

#include "redis_server.h"

#define RCLUSTER_MAX 9
#define RCLUSTER_SLOTS 16384
#define RCLUSTER_NODE_TIMEOUT_MS 1000 /* --cluster-node-timeout of every node */
#define RCLUSTER_MAX_EXTRA 5 /* extra words per node (REDIS_SERVER_MAX_EXTRA minus ours) */

struct redis_cluster {
    int n;                                  /* nodes started */
    int masters;                            /* the first @masters nodes start as masters */
    struct redis_server node[RCLUSTER_MAX]; /* tests/redis_server.h */
    char uri[512]; /* "redis+cluster://127.0.0.1:P0,127.0.0.1:P1,127.0.0.1:P2" (the masters) */
    /* private: each node's --cluster-port word (kept alive for restarts) */
    char bus_port[RCLUSTER_MAX][8];
};

/*
 * redis_cluster_start - start @masters * (1 + @replicas_per_master) nodes as
 * above, then `redis-cli --cluster create <every node> --cluster-replicas R
 * --cluster-yes` (the first @masters nodes become the masters, each with an
 * even share of the 16384 slots), then wait until every node says
 * cluster_state:ok, all nodes agree who serves each of the 16384 slots, and
 * every replica reports master_link_status:up.
 * @c: caller storage, overwritten. c->uri names the masters.
 * @masters: 3..RCLUSTER_MAX (redis-cli refuses fewer than 3 masters).
 * @extra: NULL-terminated extra words for every node (at most
 *         RCLUSTER_MAX_EXTRA; the strings must live until destroy), or NULL.
 * Returns: 0; -ENOENT redis-server or redis-cli missing (hint printed);
 * -EINVAL bad counts; -E2BIG too many extra words; -EIO `--cluster create`
 * failed (its output is printed); -ETIMEDOUT not ok within 30 s; otherwise as
 * redis_server_start. On failure everything started is stopped again
 * (redis_cluster_destroy is still safe to call).
 */
int redis_cluster_start(struct redis_cluster *c, int masters, int replicas_per_master,
                        const char *const *extra);

/*
 * redis_cluster_wait_ok - wait until every live node (pid != 0) says
 * cluster_state:ok, has all 16384 slots assigned to a live master not
 * flagged fail, has no open (migrating/importing) slot, and agrees with the
 * others on who serves every slot.
 * Returns: 0; -ETIMEDOUT (what was still wrong is printed); -ENOENT no redis-cli.
 */
int redis_cluster_wait_ok(struct redis_cluster *c, int timeout_ms);

/*
 * redis_cluster_master_of - index in c->node of the master that serves
 * @slot, in the view of the first live node whose answer names a live node.
 * Returns: the index; -EINVAL @slot out of range; -EAGAIN no live node names
 * a live owner (mid-failover: redis_cluster_wait_ok first).
 */
int redis_cluster_master_of(struct redis_cluster *c, int slot);

/*
 * redis_cluster_a_master - index of a live master that serves at least one
 * slot, other than @not (-1: any); the lowest such index.
 * Returns: the index; -ESRCH none; -EAGAIN no live node answered.
 */
int redis_cluster_a_master(struct redis_cluster *c, int not);

/*
 * redis_cluster_reshard - move @nslots slots from master @from to master @to
 * with `redis-cli --cluster reshard 127.0.0.1:<from> --cluster-from <id>
 * --cluster-to <id> --cluster-slots N --cluster-yes`, which migrates the
 * keys with MIGRATE (clients see ASK/MOVED while it runs). Waits for
 * redis_cluster_wait_ok (20 s) first, since redis-cli refuses a cluster whose
 * nodes disagree. The child's output goes to <node[from].dir>/reshard.log.
 * @wait: true: wait for it (60 s) like redis_cluster_reshard_wait; false:
 *        return at once with its pid in *@pid (@pid may be NULL with @wait).
 * Only one reshard may run at a time (redis_cluster_destroy kills it).
 * Returns: 0; -EINVAL bad indices or @nslots; -EBUSY one still runs;
 * -ENOENT no redis-cli; as redis_cluster_reshard_wait with @wait.
 */
int redis_cluster_reshard(struct redis_cluster *c, int from, int to, int nslots, bool wait,
                          pid_t *pid);

/*
 * redis_cluster_reshard_wait - wait for the reshard child @pid.
 * Returns: 0 it exited 0; -EIO it failed (the tail of its log is printed);
 * -ETIMEDOUT not done within @timeout_ms (it is killed); -ECHILD not ours.
 */
int redis_cluster_reshard_wait(pid_t pid, int timeout_ms);

/* redis_cluster_reshard_running - true while the reshard child @pid has not
 * exited (it is left unreaped for redis_cluster_reshard_wait). */
bool redis_cluster_reshard_running(pid_t pid);

/*
 * redis_cluster_kill_master - SIGKILL master @idx, then wait until one of its
 * replicas serves slots as a master and redis_cluster_wait_ok holds again
 * (the killed node stays down: c->node[idx].pid == 0).
 * Returns: 0; -EINVAL @idx is not a live master serving slots; -ENODEV it
 * has no live replica; -ETIMEDOUT no promotion within @timeout_ms.
 */
int redis_cluster_kill_master(struct redis_cluster *c, int idx, int timeout_ms);

/* redis_cluster_destroy - kill a running reshard, stop every node, remove
 * their dirs. Safe after a failed start and twice. */
void redis_cluster_destroy(struct redis_cluster *c);

#endif
