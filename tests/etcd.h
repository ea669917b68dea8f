/* SPDX-License-Identifier: MIT */
/*
 * etcd.h - Debian's etcd 3.4 (/usr/bin/etcd, package etcd-server) for
 * integration tests: one member on two free loopback ports (client and
 * peer), its own temp dir, plain HTTP, started and stopped by pid
 * (fork + execv, never a shell).
 *
 * Runs `/usr/bin/etcd --name <name> --data-dir <dir>/data<try>
 *   --listen-client-urls http://127.0.0.1:<client>  (also --advertise-...)
 *   --listen-peer-urls http://127.0.0.1:<peer>      (also --initial-advertise-...)
 *   --initial-cluster <name>=http://127.0.0.1:<peer> --initial-cluster-state new
 *   --heartbeat-interval 10 --election-timeout 100 --logger zap
 *   --log-outputs stderr` with its output in <dir>/etcd.log.
 * The short timings make the single member leader within ~0.2 s (etcd's
 * defaults are 100 ms / 1 s). Ready = the JSON gateway answers
 * `POST /v3/maintenance/status` with HTTP 200 (it answers only once the
 * member serves requests). The member starts empty every time.
 *
 * The interface is per member (struct etcd); struct etcd_cluster below runs
 * three (or up to ETCD_CLUSTER_MAX) of them as one cluster.
 *
 * A missing etcd prints "etcd not found: install etcd-server (scripts/setup)"
 * and returns -ENOENT: callers FAIL on it, never skip. The member dies with
 * the test (PR_SET_PDEATHSIG via proc.c; atexit cleanup of the temp dir).
 * Not thread-safe: use it from the test's main thread.
 */
#ifndef LR_TEST_ETCD_H
#define LR_TEST_ETCD_H

#include <sys/types.h>

#define ETCD_BIN "/usr/bin/etcd"

struct etcd {
    pid_t pid;       /* 0 when not running */
    int client_port; /* http://127.0.0.1:client_port: the v3 JSON gateway and gRPC */
    int peer_port;   /* http://127.0.0.1:peer_port: raft between members */
    char name[16];   /* --name, "m0" */
    char dir[128];   /* private temp dir; data dir <dir>/data0 (data1.. after a port retry) */
    char logfile[160];
    int data_try;    /* which <dir>/data<N> holds its data */
    int frozen;      /* SIGSTOPped by etcd_cluster_freeze */
    char member_id[24]; /* its raft id as the gateway prints it (decimal); "" until known */
    int tls_port;    /* etcd_start_tls: https://127.0.0.1:tls_port, the same gateway over TLS */
    const char *cert, *key; /* etcd_start_tls: its certificate and key (caller's strings) */
};

/*
 * etcd_start - start a one-member etcd on 127.0.0.1 and two free ports
 * (retried up to 5 times when a port is taken meanwhile) and wait until
 * ready (20 s). @e: caller storage, overwritten.
 * Returns: 0; -ENOENT not installed (hint printed); -EIO it exited;
 * -ETIMEDOUT; -EADDRINUSE; other -errno. On failure the log tail is printed
 * and nothing is left running.
 */
int etcd_start(struct etcd *e);

/*
 * etcd_start_tls - etcd_start, and the client API also served over TLS on a
 * third free port (tls_port) with certificate @cert and key @key (paths that
 * must outlive @e, e.g. from certs_make). The plain client port stays (the
 * fixture's readiness check and etcd_post use it). Returns as etcd_start.
 */
int etcd_start_tls(struct etcd *e, const char *cert, const char *key);

/* etcd_stop - SIGTERM, 5 s, SIGKILL; reaps. The data dir stays.
 * Returns 0 or -ETIMEDOUT. */
int etcd_stop(struct etcd *e);

/* etcd_destroy - stop if running and remove the temp dir. Safe twice and on
 * a struct whose start failed. */
void etcd_destroy(struct etcd *e);

/*
 * etcd_post - one request to the JSON gateway on a fresh connection
 * (Connection: close): `POST @path` with @body (application/json), the whole
 * answer (status line, headers, body) into @out (NUL-terminated, truncated
 * to @cap-1 bytes).
 * Returns: the HTTP status (e.g. 200); -ECONNREFUSED; -EIO a short write or
 * no status line; -ENOBUFS @out too small for the answer; other -errno.
 */
int etcd_post(const struct etcd *e, const char *path, const char *body, char *out, size_t cap);

/*
 * etcd_status - POST /v3/maintenance/status to @e: the member's own raft id
 * (header.member_id) and the id of the leader it knows ("leader"; "0" or
 * absent when it knows none), as decimal strings.
 * @self/@leader: caller buffers of at least 24 bytes; either may be NULL.
 * Returns: 0; -ECONNREFUSED; -ETIMEDOUT; -EPROTO an answer without
 * member_id; -EIO a status other than 200; other -errno.
 */
int etcd_status(const struct etcd *e, char *self, char *leader);

/* ---- a cluster ---- */

#define ETCD_CLUSTER_MAX 5

/*
 * A cluster of @n members m0..m<n-1>, all on 127.0.0.1, each a struct etcd
 * with its own free client and peer ports and its own temp dir, started with
 * a static `--initial-cluster m0=http://127.0.0.1:<peer0>,m1=...` and
 * `--initial-cluster-state new`, and raft timings --heartbeat-interval 20
 * --election-timeout 200 (10x: a loaded 2-core machine running sanitizer
 * builds beside it must not see spurious elections every second; a killed
 * leader is replaced in ~0.3-0.6 s). Peer traffic goes member to member
 * directly: to cut a member off from the others, freeze it (SIGSTOP: its
 * sockets stay open and silent, which is what a partition looks like to its
 * peers and clients); to cut one client off, put tests/fault/proxy.h in
 * front of its client port.
 * Minimum lease TTL with these timings: 1 s (etcd: 1.5 election timeouts,
 * rounded up to a second).
 */
struct etcd_cluster {
    int n;
    struct etcd m[ETCD_CLUSTER_MAX];
    char initial[ETCD_CLUSTER_MAX * 48];  /* the --initial-cluster value */
    char endpoints[ETCD_CLUSTER_MAX * 24]; /* "127.0.0.1:<client0>,127.0.0.1:<client1>,..." */
};

/*
 * etcd_cluster_start - start @n members as above (all spawned, then each
 * waited for: a member answers only once the cluster has a quorum), then
 * wait until they agree on a leader (etcd_cluster_wait_leader) and record
 * every member's id. Ports taken meanwhile: everything is stopped and
 * started again on new ports and fresh data dirs (up to 5 times).
 * @c: caller storage, overwritten. @n: 1..ETCD_CLUSTER_MAX.
 * Returns: 0; -ENOENT etcd not installed (hint printed); -EINVAL bad @n;
 * -EIO a member exited; -ETIMEDOUT; -EADDRINUSE; other -errno. On failure
 * the log tails are printed and nothing is left running.
 */
int etcd_cluster_start(struct etcd_cluster *c, int n);

/*
 * etcd_cluster_leader - ask every running, not frozen member for the
 * leader; the index of the member all of them name, when that member runs.
 * Returns: 0..n-1; -EAGAIN no leader, or they disagree (an election is
 * going on); -ENOTCONN no member answered.
 */
int etcd_cluster_leader(const struct etcd_cluster *c);

/*
 * etcd_cluster_wait_leader - poll etcd_cluster_leader every 20 ms until it
 * names a member other than @not (-1: any) or @timeout_ms passes.
 * Returns: the leader's index; -ETIMEDOUT (what the members answered last is
 * printed).
 */
int etcd_cluster_wait_leader(const struct etcd_cluster *c, int not, int timeout_ms);

/* etcd_cluster_kill - SIGKILL member @i and reap it (its data dir stays).
 * Returns: 0; -ESRCH it was not running; -EINVAL bad @i. */
int etcd_cluster_kill(struct etcd_cluster *c, int i);

/*
 * etcd_cluster_restart - start member @i again on its ports and data dir
 * (etcd then ignores the initial-cluster flags and rejoins from its WAL) and
 * wait until it answers (20 s; it answers once it has caught up with the
 * leader).
 * Returns: 0; -EBUSY it runs; -EINVAL bad @i; -EIO it exited (a port taken
 * meanwhile: its log tail is printed); -ETIMEDOUT; other -errno.
 */
int etcd_cluster_restart(struct etcd_cluster *c, int i);

/* etcd_cluster_freeze - SIGSTOP (@on) or SIGCONT member @i: a partition of
 * that member from everyone, as its peers and clients see it.
 * Returns: 0; -ESRCH not running; -EINVAL bad @i. */
int etcd_cluster_freeze(struct etcd_cluster *c, int i, int on);

/* etcd_cluster_destroy - stop every member (SIGCONT first) and remove the
 * dirs. Safe twice and after a failed start. */
void etcd_cluster_destroy(struct etcd_cluster *c);

#endif
