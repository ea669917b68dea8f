/* SPDX-License-Identifier: MIT */
/* etcd.c - see etcd.h. */
#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "etcd.h"
#include "proc.h"

#define START_TIMEOUT_MS 20000
#define STOP_TIMEOUT_MS 5000
#define PROBE_TIMEOUT_MS 500
#define POLL_MS 20
#define PORT_TRIES 5
#define DIR_PREFIX PROC_DIR_PREFIX "etcd-"

static const char hint[] =
    "etcd not found: install etcd-server (scripts/setup; Debian's etcd 3.4, " ETCD_BIN ")\n";

int etcd_post(const struct etcd *e, const char *path, const char *body, char *out, size_t cap)
{
    char req[1024];
    size_t blen = strlen(body);
    int n = snprintf(req, sizeof(req),
                     "POST %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nConnection: close\r\n"
                     "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n",
                     path, e->client_port, blen);
    if (n < 0 || (size_t)n >= sizeof(req) || cap < 16)
        return -EINVAL;
    int fd = proc_connect(e->client_port, PROBE_TIMEOUT_MS * 4);
    if (fd < 0)
        return -ECONNREFUSED;
    int rc = -EIO;
    if (write(fd, req, (size_t)n) != n || write(fd, body, blen) != (ssize_t)blen)
        goto out;
    size_t got = 0;
    for (;;) {
        if (got + 1 >= cap) {
            rc = -ENOBUFS;
            goto out;
        }
        ssize_t r = read(fd, out + got, cap - 1 - got);
        if (r < 0) {
            rc = errno == EAGAIN ? -ETIMEDOUT : -errno;
            goto out;
        }
        if (r == 0)
            break;
        got += (size_t)r;
    }
    out[got] = '\0';
    int status = 0;
    if (sscanf(out, "HTTP/1.1 %d", &status) == 1)
        rc = status;
out:
    if (rc < 0)
        out[0] = '\0';
    close(fd);
    return rc;
}

static int ready(void *ctx)
{
    char buf[2048];
    return etcd_post(ctx, "/v3/maintenance/status", "{}", buf, sizeof(buf)) == 200;
}

/* @n distinct free ports (binding port 0 twice may give the same one). */
static int pick_ports(int *ports, int n)
{
    for (int i = 0; i < n; i++) {
        int rc, tries = 0;
        bool dup;
        do {
            if ((rc = proc_pick_port(&ports[i])) < 0)
                return rc;
            dup = false;
            for (int j = 0; j < i; j++)
                dup |= ports[j] == ports[i];
        } while (dup && ++tries < PORT_TRIES);
        if (dup)
            return -EADDRINUSE;
    }
    return 0;
}

/*
 * Spawn member @e of the cluster @initial (its --initial-cluster value) on
 * its ports and data dir <dir>/data<data_try>, without waiting. A restart
 * passes the same flags: etcd ignores --initial-cluster* once the data dir
 * has a WAL (which names the cluster and the member).
 */
static int member_spawn(struct etcd *e, const char *initial, const char *heartbeat,
                        const char *election, off_t *from)
{
    char data[176], client[96], peer[48];
    snprintf(data, sizeof(data), "%s/data%d", e->dir, e->data_try);
    int n = snprintf(client, sizeof(client), "http://127.0.0.1:%d", e->client_port);
    if (e->tls_port)
        snprintf(client + n, sizeof(client) - (size_t)n, ",https://127.0.0.1:%d", e->tls_port);
    snprintf(peer, sizeof(peer), "http://127.0.0.1:%d", e->peer_port);
    const char *argv[] = {ETCD_BIN, "--name", e->name, "--data-dir", data,
                          "--listen-client-urls", client, "--advertise-client-urls", client,
                          "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
                          "--initial-cluster", initial, "--initial-cluster-state", "new",
                          "--heartbeat-interval", heartbeat, "--election-timeout", election,
                          "--logger", "zap", "--log-outputs", "stderr",
                          /* TLS on the https client URL only (the last four, or none) */
                          e->tls_port ? "--cert-file" : NULL, e->cert, "--key-file", e->key, NULL};
    int rc = proc_spawn_logged(argv, e->dir, e->logfile, from, &e->pid);
    if (rc == 0)
        proc_track(e->dir, e->pid);
    return rc;
}

static int member_await(struct etcd *e, off_t from)
{
    struct proc_ready r = {ready, e, "address already in use", START_TIMEOUT_MS, POLL_MS};
    return proc_await_ready(&e->pid, e->dir, e->logfile, from, &r);
}

/* Storage and a private dir for member @i ("m<i>"). */
static int member_init(struct etcd *e, int i)
{
    memset(e, 0, sizeof(*e));
    int rc = proc_mkdtemp(e->dir, sizeof(e->dir), DIR_PREFIX);
    if (rc < 0)
        return rc;
    snprintf(e->name, sizeof(e->name), "m%d", i);
    snprintf(e->logfile, sizeof(e->logfile), "%s/etcd.log", e->dir);
    return 0;
}

static int start_one(struct etcd *e, const char *cert, const char *key)
{
    if (access(ETCD_BIN, X_OK) < 0) {
        memset(e, 0, sizeof(*e));
        fputs(hint, stderr);
        return -ENOENT;
    }
    int rc = member_init(e, 0);
    if (rc < 0)
        return rc;
    e->cert = cert;
    e->key = key;
    for (int i = 0; i < PORT_TRIES; i++) {
        int ports[3];
        if ((rc = pick_ports(ports, cert ? 3 : 2)) < 0)
            break;
        e->client_port = ports[0];
        e->peer_port = ports[1];
        e->tls_port = cert ? ports[2] : 0;
        /* A fresh data dir per try: one a failed try wrote names old ports. */
        e->data_try = i;
        char cluster[64];
        snprintf(cluster, sizeof(cluster), "%s=http://127.0.0.1:%d", e->name, e->peer_port);
        off_t from;
        if ((rc = member_spawn(e, cluster, "10", "100", &from)) < 0)
            break;
        rc = member_await(e, from);
        if (rc != -EADDRINUSE)
            break;
    }
    if (rc < 0) {
        proc_log_tail(e->logfile, 20);
        etcd_destroy(e);
    }
    return rc;
}

int etcd_start(struct etcd *e)
{
    return start_one(e, NULL, NULL);
}

int etcd_start_tls(struct etcd *e, const char *cert, const char *key)
{
    return start_one(e, cert, key);
}

int etcd_stop(struct etcd *e)
{
    return proc_stop(&e->pid, e->dir, STOP_TIMEOUT_MS);
}

void etcd_destroy(struct etcd *e)
{
    if (e->pid)
        etcd_stop(e);
    if (e->dir[0])
        proc_rmtree(e->dir);
    e->dir[0] = '\0';
}

/* Copy the JSON string value of "@field" (first occurrence) into @out[24]. */
static int json_field(const char *json, const char *field, char *out)
{
    char pat[40];
    snprintf(pat, sizeof(pat), "\"%s\":\"", field);
    const char *p = strstr(json, pat);
    if (!p)
        return -ENOENT;
    p += strlen(pat);
    size_t n = strcspn(p, "\"");
    if (n == 0 || n >= 24 || p[n] != '"')
        return -EPROTO;
    memcpy(out, p, n);
    out[n] = '\0';
    return 0;
}

int etcd_status(const struct etcd *e, char *self, char *leader)
{
    char resp[2048], id[24], lead[24] = "0";
    int rc = etcd_post(e, "/v3/maintenance/status", "{}", resp, sizeof(resp));
    if (rc < 0)
        return rc;
    if (rc != 200)
        return -EIO;
    const char *body = strstr(resp, "\r\n\r\n");
    if (!body || json_field(body, "member_id", id) < 0)
        return -EPROTO;
    int lr = json_field(body, "leader", lead);
    if (lr == -EPROTO)
        return lr;
    if (self)
        memcpy(self, id, sizeof(id));
    if (leader)
        memcpy(leader, lead, sizeof(lead));
    return 0;
}

/* ---- a cluster ---- */

#define CLUSTER_HEARTBEAT "20"
#define CLUSTER_ELECTION "200"
#define LEADER_TIMEOUT_MS 10000

static int cluster_try(struct etcd_cluster *c, int try)
{
    int ports[2 * ETCD_CLUSTER_MAX];
    int rc = pick_ports(ports, 2 * c->n);
    if (rc < 0)
        return rc;
    size_t off = 0, eoff = 0;
    for (int i = 0; i < c->n; i++) {
        struct etcd *e = &c->m[i];
        e->client_port = ports[2 * i];
        e->peer_port = ports[2 * i + 1];
        e->data_try = try;
        off += (size_t)snprintf(c->initial + off, sizeof(c->initial) - off,
                                "%s%s=http://127.0.0.1:%d", i ? "," : "", e->name, e->peer_port);
        eoff += (size_t)snprintf(c->endpoints + eoff, sizeof(c->endpoints) - eoff,
                                 "%s127.0.0.1:%d", i ? "," : "", e->client_port);
    }
    off_t from[ETCD_CLUSTER_MAX];
    for (int i = 0; i < c->n && rc == 0; i++)
        rc = member_spawn(&c->m[i], c->initial, CLUSTER_HEARTBEAT, CLUSTER_ELECTION, &from[i]);
    /* Each answers once a quorum has formed: all of them must run first. */
    for (int i = 0; i < c->n && rc == 0; i++) {
        rc = member_await(&c->m[i], from[i]);
        if (rc < 0 && rc != -EADDRINUSE)
            proc_log_tail(c->m[i].logfile, 20);
    }
    if (rc < 0) {
        for (int i = 0; i < c->n; i++)
            if (c->m[i].pid)
                proc_kill(&c->m[i].pid, c->m[i].dir);
        return rc;
    }
    if ((rc = etcd_cluster_wait_leader(c, -1, LEADER_TIMEOUT_MS)) < 0)
        return rc;
    for (int i = 0; i < c->n && rc >= 0; i++)
        rc = etcd_status(&c->m[i], c->m[i].member_id, NULL);
    return rc < 0 ? rc : 0;
}

int etcd_cluster_start(struct etcd_cluster *c, int n)
{
    memset(c, 0, sizeof(*c));
    if (n < 1 || n > ETCD_CLUSTER_MAX)
        return -EINVAL;
    if (access(ETCD_BIN, X_OK) < 0) {
        fputs(hint, stderr);
        return -ENOENT;
    }
    c->n = n;
    int rc = 0;
    for (int i = 0; i < n && rc == 0; i++)
        rc = member_init(&c->m[i], i);
    for (int try = 0; rc == 0 && try < PORT_TRIES; try++)
        if ((rc = cluster_try(c, try)) != -EADDRINUSE)
            break;
    if (rc < 0)
        etcd_cluster_destroy(c);
    return rc;
}

static bool runs(const struct etcd *e)
{
    return e->pid > 0 && !e->frozen;
}

/* The leader's index from what @c's members answer; @said (n x 24 bytes,
 * or NULL) gets each member's answer for a report. */
static int leader_of(const struct etcd_cluster *c, char (*said)[24])
{
    char first[24] = "";
    int answered = 0;
    bool agree = true;
    for (int i = 0; i < c->n; i++) {
        char lead[24] = "-";
        if (runs(&c->m[i]) && etcd_status(&c->m[i], NULL, lead) == 0) {
            if (!answered++)
                memcpy(first, lead, sizeof(first));
            else
                agree &= strcmp(first, lead) == 0;
        }
        if (said)
            memcpy(said[i], lead, sizeof(lead));
    }
    if (!answered)
        return -ENOTCONN;
    if (!agree || !strcmp(first, "0"))
        return -EAGAIN;
    for (int i = 0; i < c->n; i++)
        if (runs(&c->m[i]) && !strcmp(c->m[i].member_id, first))
            return i;
    /* Not known yet (at start), or a member that does not run. */
    for (int i = 0; i < c->n; i++) {
        char self[24];
        if (runs(&c->m[i]) && etcd_status(&c->m[i], self, NULL) == 0 && !strcmp(self, first))
            return i;
    }
    return -EAGAIN;
}

int etcd_cluster_leader(const struct etcd_cluster *c)
{
    return leader_of(c, NULL);
}

int etcd_cluster_wait_leader(const struct etcd_cluster *c, int not, int timeout_ms)
{
    uint64_t deadline = proc_now_ms() + (uint64_t)timeout_ms;
    char said[ETCD_CLUSTER_MAX][24];
    for (;;) {
        int l = leader_of(c, said);
        if (l >= 0 && l != not)
            return l;
        if (proc_now_ms() >= deadline)
            break;
        proc_sleep_ms(POLL_MS);
    }
    fprintf(stderr, "etcd cluster: no leader within %d ms; members name:", timeout_ms);
    for (int i = 0; i < c->n; i++)
        fprintf(stderr, " %s(%s)=%s", c->m[i].name, c->m[i].member_id, said[i]);
    fputc('\n', stderr);
    return -ETIMEDOUT;
}

int etcd_cluster_kill(struct etcd_cluster *c, int i)
{
    if (i < 0 || i >= c->n)
        return -EINVAL;
    c->m[i].frozen = 0;
    return proc_kill(&c->m[i].pid, c->m[i].dir);
}

int etcd_cluster_restart(struct etcd_cluster *c, int i)
{
    if (i < 0 || i >= c->n)
        return -EINVAL;
    struct etcd *e = &c->m[i];
    if (e->pid)
        return -EBUSY;
    off_t from;
    int rc = member_spawn(e, c->initial, CLUSTER_HEARTBEAT, CLUSTER_ELECTION, &from);
    if (rc == 0)
        rc = member_await(e, from);
    if (rc < 0)
        proc_log_tail(e->logfile, 20);
    return rc == -EADDRINUSE ? -EIO : rc;
}

int etcd_cluster_freeze(struct etcd_cluster *c, int i, int on)
{
    if (i < 0 || i >= c->n)
        return -EINVAL;
    if (!c->m[i].pid)
        return -ESRCH;
    if (kill(c->m[i].pid, on ? SIGSTOP : SIGCONT) < 0)
        return -errno;
    c->m[i].frozen = on;
    return 0;
}

void etcd_cluster_destroy(struct etcd_cluster *c)
{
    for (int i = 0; i < c->n && i < ETCD_CLUSTER_MAX; i++) {
        c->m[i].frozen = 0;
        etcd_destroy(&c->m[i]); /* proc_stop sends SIGCONT too */
    }
    c->n = 0;
}
