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
 * The interface is per member (struct etcd) so that a cluster can be built
 * on it: several struct etcd with the same initial cluster string, each
 * with its own ports and dir. Only the single member exists now.
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

#endif
