/* SPDX-License-Identifier: MIT */
/* etcd.c - see etcd.h. */
#include <errno.h>
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

/* Two distinct free ports (binding port 0 twice may give the same one). */
static int pick_ports(struct etcd *e)
{
    int rc = proc_pick_port(&e->client_port);
    for (int i = 0; rc == 0 && i < PORT_TRIES; i++)
        if ((rc = proc_pick_port(&e->peer_port)) == 0 && e->peer_port != e->client_port)
            return 0;
    return rc < 0 ? rc : -EADDRINUSE;
}

int etcd_start(struct etcd *e)
{
    memset(e, 0, sizeof(*e));
    if (access(ETCD_BIN, X_OK) < 0) {
        fputs(hint, stderr);
        return -ENOENT;
    }
    int rc = proc_mkdtemp(e->dir, sizeof(e->dir), DIR_PREFIX);
    if (rc < 0)
        return rc;
    snprintf(e->name, sizeof(e->name), "m0");
    snprintf(e->logfile, sizeof(e->logfile), "%s/etcd.log", e->dir);
    for (int i = 0; i < PORT_TRIES; i++) {
        if ((rc = pick_ports(e)) < 0)
            break;
        /* A fresh data dir per try: one a failed try wrote names old ports. */
        char data[176];
        snprintf(data, sizeof(data), "%s/data%d", e->dir, i);
        char client[48], peer[48], cluster[64];
        snprintf(client, sizeof(client), "http://127.0.0.1:%d", e->client_port);
        snprintf(peer, sizeof(peer), "http://127.0.0.1:%d", e->peer_port);
        snprintf(cluster, sizeof(cluster), "%s=%s", e->name, peer);
        const char *argv[] = {ETCD_BIN, "--name", e->name, "--data-dir", data,
                              "--listen-client-urls", client, "--advertise-client-urls", client,
                              "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
                              "--initial-cluster", cluster, "--initial-cluster-state", "new",
                              "--heartbeat-interval", "10", "--election-timeout", "100",
                              "--logger", "zap", "--log-outputs", "stderr", NULL};
        off_t from;
        if ((rc = proc_spawn_logged(argv, e->dir, e->logfile, &from, &e->pid)) < 0)
            break;
        proc_track(e->dir, e->pid);
        struct proc_ready r = {ready, e, "address already in use", START_TIMEOUT_MS, POLL_MS};
        rc = proc_await_ready(&e->pid, e->dir, e->logfile, from, &r);
        if (rc != -EADDRINUSE)
            break;
    }
    if (rc < 0) {
        proc_log_tail(e->logfile, 20);
        etcd_destroy(e);
    }
    return rc;
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
