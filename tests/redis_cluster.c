/* SPDX-License-Identifier: MIT */
/* redis_cluster.c - see redis_cluster.h. */
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "proc.h"
#include "redis_cluster.h"

#define CREATE_TIMEOUT_MS 60000
#define START_OK_TIMEOUT_MS 30000
#define RESHARD_OK_TIMEOUT_MS 20000
#define RESHARD_WAIT_MS 60000
#define POLL_MS 50
#define ID_LEN 40
#define BUS_WORD 9 /* index of the --cluster-port value among the extra words */
#define BUS_TRIES 3

static const char cli_hint[] = "redis-cli not found: install it with "
                               "`apt-get install redis-tools` (or run scripts/setup)\n";

/* One node's view of the cluster, from its CLUSTER NODES. Indices are into
 * c->node; a node that is not ours (never happens here) maps to -2. */
struct view {
    int16_t owner[RCLUSTER_SLOTS]; /* master serving the slot; -1 unassigned */
    char id[RCLUSTER_MAX][ID_LEN + 1]; /* "" when the node is not listed */
    bool master[RCLUSTER_MAX];
    bool failed[RCLUSTER_MAX]; /* flagged fail or fail? */
    int master_of[RCLUSTER_MAX]; /* for a replica: its master's index; else -1 */
    int nslots[RCLUSTER_MAX];
    int open; /* migrating/importing slot entries */
};

/* Kept static: a view is 33 KiB, and nothing here is thread-safe anyway. */
static struct view views[2];
static char text[65536];

/* The running (or last, unreaped) reshard and its log. */
static pid_t reshard_pid;
static char reshard_log[192];

static int index_of_port(const struct redis_cluster *c, int port)
{
    for (int i = 0; i < c->n; i++)
        if (c->node[i].port == port)
            return i;
    return -2;
}

/* "127.0.0.1:7000@17000[,hostname]" -> 7000, or -1. */
static int addr_port(const char *addr)
{
    const char *colon = strrchr(addr, ':');
    /* the last ':' before '@' (IPv6 literals have more) */
    const char *at = strchr(addr, '@');
    if (at) {
        colon = NULL;
        for (const char *p = addr; p < at; p++)
            if (*p == ':')
                colon = p;
    }
    if (!colon)
        return -1;
    char *end;
    long port = strtol(colon + 1, &end, 10);
    if (end == colon + 1 || port <= 0 || port > 65535)
        return -1;
    return (int)port;
}

/* Record the slot entry @tok ("5", "0-5460", "[5->-id]", "[5-<-id]") of node @idx. */
static int add_slots(struct view *v, int idx, const char *tok)
{
    if (tok[0] == '[') {
        v->open++;
        return 0;
    }
    char *end;
    long lo = strtol(tok, &end, 10), hi = lo;
    if (*end == '-')
        hi = strtol(end + 1, &end, 10);
    if (*end || lo < 0 || hi < lo || hi >= RCLUSTER_SLOTS)
        return -EPROTO;
    for (long s = lo; s <= hi; s++)
        v->owner[s] = (int16_t)idx;
    if (idx >= 0)
        v->nslots[idx] += (int)(hi - lo + 1);
    return 0;
}

/*
 * Fill @v from CLUSTER NODES asked of node @ask. Returns 0; -EHOSTDOWN the
 * node is not running; -EIO redis-cli failed; -EPROTO an unreadable line;
 * -ENOENT no redis-cli.
 */
static int read_view(struct redis_cluster *c, int ask, struct view *v)
{
    if (!c->node[ask].pid)
        return -EHOSTDOWN;
    static const char *const args[] = {"CLUSTER", "NODES", NULL};
    int rc = redis_cli(&c->node[ask], text, sizeof(text), args);
    if (rc == -ENOENT)
        return rc;
    if (rc != 0)
        return -EIO;
    memset(v, 0, sizeof(*v));
    for (int s = 0; s < RCLUSTER_SLOTS; s++)
        v->owner[s] = -1;
    char master_ids[RCLUSTER_MAX][ID_LEN + 1] = {{0}};
    char *save_line;
    for (char *line = strtok_r(text, "\n", &save_line); line;
         line = strtok_r(NULL, "\n", &save_line)) {
        char *save, *tok[8];
        int k = 0;
        char *t = strtok_r(line, " \r", &save);
        for (; t && k < 8; t = k < 8 ? strtok_r(NULL, " \r", &save) : NULL)
            tok[k++] = t;
        if (k < 8)
            return strncmp(line, "ERR", 3) ? -EPROTO : -EIO;
        int idx = index_of_port(c, addr_port(tok[1]));
        if (idx >= 0) {
            snprintf(v->id[idx], sizeof(v->id[idx]), "%s", tok[0]);
            v->master[idx] = strstr(tok[2], "master") != NULL;
            v->failed[idx] = strstr(tok[2], "fail") != NULL;
            snprintf(master_ids[idx], sizeof(master_ids[idx]), "%s", tok[3]);
        }
        for (t = strtok_r(NULL, " \r", &save); t; t = strtok_r(NULL, " \r", &save))
            if ((rc = add_slots(v, idx, t)) < 0)
                return rc;
    }
    for (int i = 0; i < c->n; i++) {
        v->master_of[i] = -1;
        for (int j = 0; j < c->n && master_ids[i][0] != '-'; j++)
            if (v->id[j][0] && !strcmp(master_ids[i], v->id[j]))
                v->master_of[i] = j;
    }
    return 0;
}

/* The first live node's view, or -EAGAIN. */
static int any_view(struct redis_cluster *c, struct view *v)
{
    for (int i = 0; i < c->n; i++) {
        int rc = read_view(c, i, v);
        if (rc == -ENOENT || rc == 0)
            return rc;
    }
    return -EAGAIN;
}

/* 1 if `INFO @section` of node @i contains @needle, 0 if not, -ENOENT. */
static int info_has(struct redis_cluster *c, int i, const char *const *args, const char *needle)
{
    char out[4096];
    int rc = redis_cli(&c->node[i], out, sizeof(out), args);
    if (rc == -ENOENT)
        return rc;
    return rc == 0 && strstr(out, needle) != NULL;
}

/*
 * One round of the wait_ok checks. Returns 1 ok, 0 not yet (@why says what,
 * for the timeout message), -ENOENT.
 */
static int cluster_ok(struct redis_cluster *c, char *why, size_t cap)
{
    static const char *const info[] = {"CLUSTER", "INFO", NULL};
    int have_first = 0;
    for (int i = 0; i < c->n; i++) {
        if (!c->node[i].pid)
            continue;
        int rc = info_has(c, i, info, "cluster_state:ok");
        if (rc < 0)
            return rc;
        if (!rc) {
            snprintf(why, cap, "node %d (port %d) is not cluster_state:ok", i, c->node[i].port);
            return 0;
        }
        struct view *v = &views[have_first];
        if ((rc = read_view(c, i, v)) == -ENOENT)
            return rc;
        if (rc < 0) {
            snprintf(why, cap, "node %d: CLUSTER NODES failed (%s)", i, strerror(-rc));
            return 0;
        }
        if (v->open) {
            snprintf(why, cap, "node %d sees %d open (migrating/importing) slots", i, v->open);
            return 0;
        }
        for (int s = 0; s < RCLUSTER_SLOTS; s++) {
            int o = v->owner[s];
            if (o < 0 || !c->node[o].pid || v->failed[o]) {
                snprintf(why, cap, "node %d: slot %d is served by %d (%s)", i, s, o,
                         o < 0 ? "nobody" : "a node that is down or flagged fail");
                return 0;
            }
        }
        if (have_first &&
            memcmp(views[0].owner, views[1].owner, sizeof(views[0].owner)) != 0) {
            snprintf(why, cap, "node %d disagrees with the first live node on the slot map", i);
            return 0;
        }
        have_first = 1;
    }
    if (!have_first) {
        snprintf(why, cap, "no node is running");
        return 0;
    }
    return 1;
}

int redis_cluster_wait_ok(struct redis_cluster *c, int timeout_ms)
{
    uint64_t deadline = proc_now_ms() + (uint64_t)(timeout_ms > 0 ? timeout_ms : 0);
    char why[256] = "";
    for (;;) {
        int rc = cluster_ok(c, why, sizeof(why));
        if (rc != 0)
            return rc < 0 ? rc : 0;
        if (proc_now_ms() >= deadline) {
            fprintf(stderr, "redis cluster not ok within %d ms: %s\n", timeout_ms, why);
            return -ETIMEDOUT;
        }
        proc_sleep_ms(POLL_MS);
    }
}

/* Every replica (index >= masters at start) says master_link_status:up. */
static int replicas_up(struct redis_cluster *c, int timeout_ms)
{
    static const char *const info[] = {"INFO", "replication", NULL};
    uint64_t deadline = proc_now_ms() + (uint64_t)timeout_ms;
    for (int i = c->masters; i < c->n; i++) {
        for (;;) {
            int rc = info_has(c, i, info, "master_link_status:up");
            if (rc < 0)
                return rc;
            if (rc)
                break;
            if (proc_now_ms() >= deadline) {
                fprintf(stderr, "redis cluster: replica %d (port %d) link not up\n", i,
                        c->node[i].port);
                return -ETIMEDOUT;
            }
            proc_sleep_ms(POLL_MS);
        }
    }
    return 0;
}

static int cluster_create(struct redis_cluster *c, int replicas)
{
    char addrs[RCLUSTER_MAX][32];
    char nrep[16];
    snprintf(nrep, sizeof(nrep), "%d", replicas);
    const char *argv[8 + RCLUSTER_MAX] = {"redis-cli", "--cluster", "create"};
    size_t argc = 3;
    for (int i = 0; i < c->n; i++) {
        snprintf(addrs[i], sizeof(addrs[i]), "127.0.0.1:%d", c->node[i].port);
        argv[argc++] = addrs[i];
    }
    argv[argc++] = "--cluster-replicas";
    argv[argc++] = nrep;
    argv[argc++] = "--cluster-yes";
    argv[argc] = NULL;
    static char out[16384];
    int rc = run_capture(argv, NULL, out, sizeof(out), CREATE_TIMEOUT_MS);
    if (rc == -ENOENT)
        fputs(cli_hint, stderr);
    if (rc < 0)
        return rc;
    /* redis-cli --cluster exits 0 on some failures: look for its verdict */
    if (rc != 0 || !strstr(out, "[OK] All 16384 slots covered")) {
        fprintf(stderr, "redis-cli --cluster create failed (exit %d):\n%s\n", rc, out);
        return -EIO;
    }
    return 0;
}

/* The first @masters nodes must be the masters, serving slots (redis-cli
 * picks masters in argument order when all nodes share one IP). */
static int check_roles(struct redis_cluster *c)
{
    struct view *v = &views[0];
    int rc = any_view(c, v);
    if (rc < 0)
        return rc;
    for (int i = 0; i < c->n; i++) {
        bool want = i < c->masters;
        if (v->master[i] != want || (v->nslots[i] > 0) != want) {
            fprintf(stderr, "redis cluster: node %d (port %d) should %s a master with slots\n", i,
                    c->node[i].port, want ? "be" : "not be");
            return -EIO;
        }
    }
    return 0;
}

/* Start node @i with @words, its --cluster-port a free port of its own;
 * a bus port someone took meanwhile is tried again with a new one. */
static int start_node(struct redis_cluster *c, int i, const char **words)
{
    int rc = -EADDRINUSE;
    for (int tries = 0; tries < BUS_TRIES && (rc == -EADDRINUSE || rc == -EIO); tries++) {
        int bus;
        if ((rc = proc_pick_port(&bus)) < 0)
            continue;
        snprintf(c->bus_port[i], sizeof(c->bus_port[i]), "%d", bus);
        words[BUS_WORD] = c->bus_port[i];
        rc = redis_server_start(&c->node[i], words);
    }
    return rc;
}

int redis_cluster_start(struct redis_cluster *c, int masters, int replicas_per_master,
                        const char *const *extra)
{
    memset(c, 0, sizeof(*c));
    if (masters < 3 || replicas_per_master < 0 ||
        masters * (1 + replicas_per_master) > RCLUSTER_MAX)
        return -EINVAL;
    const char *words[REDIS_SERVER_MAX_EXTRA + 1] = {
        "--cluster-enabled",      "yes", "--cluster-config-file",     "nodes.conf",
        "--cluster-node-timeout", "1000", "--repl-diskless-sync-delay", "0",
        "--cluster-port",         NULL, /* per node: words[BUS_WORD] */
    };
    size_t nw = BUS_WORD + 1;
    for (size_t i = 0; extra && extra[i]; i++) {
        if (i == RCLUSTER_MAX_EXTRA)
            return -E2BIG;
        words[nw++] = extra[i];
    }
    words[nw] = NULL;
    int total = masters * (1 + replicas_per_master);
    int rc = 0;
    /* On a loaded machine a master may miss its 1 s node timeout while the
     * cluster forms, and its replica takes over: the roles the tests rely
     * on (the first @masters nodes are the masters) are then wrong. That is
     * the machine, not the code under test: start the whole cluster again,
     * twice at most. */
    for (int attempt = 0; attempt < 3; attempt++) {
        memset(c, 0, sizeof(*c));
        c->masters = masters;
        rc = 0;
        for (int i = 0; i < total && rc == 0; i++) {
            if ((rc = start_node(c, i, words)) == 0)
                c->n++;
        }
        if (rc == 0)
            rc = cluster_create(c, replicas_per_master);
        if (rc == 0)
            rc = redis_cluster_wait_ok(c, START_OK_TIMEOUT_MS);
        if (rc == 0)
            rc = check_roles(c);
        if (rc == 0)
            rc = replicas_up(c, START_OK_TIMEOUT_MS);
        if (rc == 0)
            break;
        redis_cluster_destroy(c);
        if (rc != -EIO)
            return rc;
        fprintf(stderr, "redis cluster: starting again (attempt %d of 3)\n", attempt + 2);
    }
    if (rc < 0)
        return rc;
    size_t len = (size_t)snprintf(c->uri, sizeof(c->uri), "redis+cluster://");
    for (int i = 0; i < masters; i++)
        len += (size_t)snprintf(c->uri + len, sizeof(c->uri) - len, "%s127.0.0.1:%d",
                                i ? "," : "", c->node[i].port);
    return 0;
}

int redis_cluster_master_of(struct redis_cluster *c, int slot)
{
    if (slot < 0 || slot >= RCLUSTER_SLOTS)
        return -EINVAL;
    for (int i = 0; i < c->n; i++) {
        struct view *v = &views[0];
        int rc = read_view(c, i, v);
        if (rc == -ENOENT)
            return rc;
        if (rc < 0)
            continue;
        int o = v->owner[slot];
        if (o >= 0 && c->node[o].pid)
            return o;
    }
    return -EAGAIN;
}

int redis_cluster_a_master(struct redis_cluster *c, int not)
{
    struct view *v = &views[0];
    int rc = any_view(c, v);
    if (rc < 0)
        return rc;
    for (int i = 0; i < c->n; i++)
        if (i != not && c->node[i].pid && v->master[i] && !v->failed[i] && v->nslots[i] > 0)
            return i;
    return -ESRCH;
}

int redis_cluster_reshard_wait(pid_t pid, int timeout_ms)
{
    if (pid <= 0 || pid != reshard_pid)
        return -ECHILD;
    uint64_t deadline = proc_now_ms() + (uint64_t)(timeout_ms > 0 ? timeout_ms : 0);
    int status = 0;
    for (;;) {
        pid_t r = proc_waitpid(pid, &status, WNOHANG);
        if (r == pid)
            break;
        if (r < 0) {
            reshard_pid = 0;
            return -ECHILD;
        }
        if (proc_now_ms() >= deadline) {
            proc_kill(&reshard_pid, NULL);
            fprintf(stderr, "redis-cli --cluster reshard still ran after %d ms (killed); log %s:\n",
                    timeout_ms, reshard_log);
            proc_log_tail(reshard_log, 20);
            return -ETIMEDOUT;
        }
        proc_sleep_ms(20);
    }
    reshard_pid = 0;
    /* redis-cli --cluster exits 1 on "[ERR]" but 0 on some warnings: both checked */
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0 ||
        proc_log_contains(reshard_log, 0, "[ERR]")) {
        fprintf(stderr, "redis-cli --cluster reshard failed (status 0x%x); last lines of %s:\n",
                status, reshard_log);
        proc_log_tail(reshard_log, 20);
        return -EIO;
    }
    return 0;
}

bool redis_cluster_reshard_running(pid_t pid)
{
    siginfo_t si = {0};
    return pid > 0 &&
           waitid(P_PID, (id_t)pid, &si, WEXITED | WNOHANG | WNOWAIT) == 0 && si.si_pid == 0;
}

int redis_cluster_reshard(struct redis_cluster *c, int from, int to, int nslots, bool wait,
                          pid_t *pid)
{
    if (from < 0 || from >= c->n || to < 0 || to >= c->n || from == to || nslots <= 0 ||
        nslots >= RCLUSTER_SLOTS || (!wait && !pid))
        return -EINVAL;
    if (reshard_pid && !proc_reaped(&reshard_pid, NULL))
        return -EBUSY;
    int rc = redis_cluster_wait_ok(c, RESHARD_OK_TIMEOUT_MS);
    if (rc < 0)
        return rc;
    struct view *v = &views[0];
    if ((rc = read_view(c, from, v)) < 0)
        return rc;
    if (!v->master[from] || !v->master[to] || !v->id[from][0] || !v->id[to][0])
        return -EINVAL;
    char addr[32], n[16];
    snprintf(addr, sizeof(addr), "127.0.0.1:%d", c->node[from].port);
    snprintf(n, sizeof(n), "%d", nslots);
    const char *const argv[] = {
        "redis-cli",      "--cluster", "reshard",        addr,          "--cluster-from",
        v->id[from],      "--cluster-to", v->id[to],     "--cluster-slots", n,
        "--cluster-yes",  NULL,
    };
    snprintf(reshard_log, sizeof(reshard_log), "%s/reshard.log", c->node[from].dir);
    remove(reshard_log); /* reshard_wait reads it from the start */
    off_t from_off;
    rc = proc_spawn_logged(argv, NULL, reshard_log, &from_off, &reshard_pid);
    if (rc == -ENOENT)
        fputs(cli_hint, stderr);
    if (rc < 0) {
        reshard_pid = 0;
        return rc;
    }
    if (pid)
        *pid = reshard_pid;
    return wait ? redis_cluster_reshard_wait(reshard_pid, RESHARD_WAIT_MS) : 0;
}

int redis_cluster_kill_master(struct redis_cluster *c, int idx, int timeout_ms)
{
    if (idx < 0 || idx >= c->n || !c->node[idx].pid)
        return -EINVAL;
    struct view *v = &views[0];
    int rc = read_view(c, idx, v);
    if (rc < 0)
        return rc;
    if (!v->master[idx] || v->nslots[idx] == 0)
        return -EINVAL;
    bool replica[RCLUSTER_MAX] = {0};
    int nrep = 0;
    for (int i = 0; i < c->n; i++)
        if (v->master_of[i] == idx && c->node[i].pid) {
            replica[i] = true;
            nrep++;
        }
    if (!nrep)
        return -ENODEV;
    redis_server_kill(&c->node[idx]);
    uint64_t start = proc_now_ms();
    uint64_t deadline = start + (uint64_t)(timeout_ms > 0 ? timeout_ms : 0);
    for (;;) {
        for (int i = 0; i < c->n; i++) {
            if (!replica[i] || !c->node[i].pid)
                continue;
            if ((rc = read_view(c, i, v)) == -ENOENT)
                return rc;
            if (rc == 0 && v->master[i] && v->nslots[i] > 0) {
                uint64_t now = proc_now_ms();
                int left = now < deadline ? (int)(deadline - now) : 0;
                return redis_cluster_wait_ok(c, left);
            }
        }
        if (proc_now_ms() >= deadline) {
            fprintf(stderr, "redis cluster: no replica of node %d promoted within %d ms\n", idx,
                    timeout_ms);
            return -ETIMEDOUT;
        }
        proc_sleep_ms(POLL_MS);
    }
}

void redis_cluster_destroy(struct redis_cluster *c)
{
    if (reshard_pid)
        proc_kill(&reshard_pid, NULL);
    for (int i = 0; i < c->n && i < RCLUSTER_MAX; i++)
        redis_server_destroy(&c->node[i]);
    c->n = 0;
}
