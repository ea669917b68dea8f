/* SPDX-License-Identifier: MIT */
/*
 * redis_cluster.c - the Redis Cluster topology: the node table, the live
 * slot map, and the control connection that asks a seed (or a known node)
 * for the map (redis_cluster.h says what it promises; the replies are parsed
 * by redis_slotmap.c).
 *
 * Layer: loop, connections, resolver, RESP; no leases.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc_int.h"
#include "backend_int.h"
#include "log_int.h"
#include "net_int.h"
#include "redis_cluster.h"
#include "resolve_int.h"
#include <leasering/error.h>

#define SEEDS_MAX 16
#define CLUSTER_PORT 6379
#define CONTROL_OUT 1024    /* AUTH + one CLUSTER query */
#define REFRESH_GAP_MS 100u /* at most one map query per this */

/* ------------------------------------------------------ the topology */

/* C_OPEN: connected, between queries. C_CLOSING: the connection closes;
 * on_close goes on (a connection is made again only once closed). */
enum cstate { C_IDLE, C_RESOLVING, C_CONNECTING, C_QUERY, C_OPEN, C_CLOSING };

enum { P_AUTH, P_MAP };

struct cnode {
    struct lr__cluster_node_addr a;
    struct sockaddr_storage sa;
    socklen_t salen;
    char name[56]; /* "ip:port" */
};

struct lr__cluster {
    struct lr_manager *m;
    void *owner;
    const struct lr__cluster_cbs *cbs;
    struct lr_loop *loop;
    struct lr__conn net;
    struct lr__resolver res;
    struct lr_timer timer; /* query deadline, or the next query */
    struct lr__task done_task;
    struct lr_resp_parser parser;
    struct lr__slotmap_parser sp;
    enum cstate state;
    uint8_t phase;
    bool want;      /* a map is asked for */
    bool again;     /* asked for while a query was under way: ask once more */
    bool use_slots; /* SHARDS is unknown here: CLUSTER SLOTS */
    bool closing;
    bool drop_quietly;
    unsigned to_close;
    void (*done)(void *arg);
    void *done_arg;
    unsigned cur;    /* candidate: seeds first, then known nodes */
    unsigned failed; /* candidates that failed in a row */
    unsigned attempt;
    uint64_t last_query_ms;
    uint64_t maps;
    unsigned nseeds;
    unsigned nnodes;
    unsigned max_nodes;
    bool has_user;
    bool has_password;
    struct sockaddr_storage sa; /* the candidate's address */
    socklen_t salen;
    char user[128];
    char password[256];
    char endpoint[300]; /* the candidate, for messages */
    struct lr__uri_host seeds[SEEDS_MAX];
    struct cnode nodes[LR__CLUSTER_NODES_MAX];
    uint8_t slots[LR__REDIS_SLOTS]; /* the live map */
    struct lr__slotmap fresh;       /* a map being read */
};

static const struct lr__conn_cbs control_cbs;
static void try_current(struct lr__cluster *cl);

static void say(struct lr__cluster *cl, int status, const char *what, const char *detail)
{
    lr__manager_store_error(cl->m, status, "redis cluster %s: %s%s", cl->endpoint, what, detail);
}

static void resolved(struct lr__resolver *r, int status, const struct sockaddr *sa, socklen_t len);
static void timer_fired(struct lr_timer *t);
static void done_run(struct lr__task *t);

int lr__cluster_new(struct lr__cluster **out, struct lr_manager *m, const struct lr__uri *u,
                    unsigned max_nodes, void *owner, const struct lr__cluster_cbs *cbs)
{
    *out = NULL;
    if (u->path[0] || !u->host[0] || max_nodes == 0 || max_nodes > LR__CLUSTER_NODES_MAX)
        return -EINVAL; /* a path, or no seed */
    struct lr__cluster *cl = lr__calloc(1, sizeof(*cl));
    if (!cl)
        return -ENOMEM;
    int rc = lr__uri_hosts(u, NULL, CLUSTER_PORT, cl->seeds, SEEDS_MAX);
    if (rc < 0) {
        lr__free(cl);
        return rc;
    }
    cl->nseeds = (unsigned)rc;
    cl->m = m;
    cl->owner = owner;
    cl->cbs = cbs;
    cl->loop = lr__manager_loop(m);
    cl->max_nodes = max_nodes;
    cl->has_user = u->has_user;
    cl->has_password = u->has_password;
    snprintf(cl->user, sizeof(cl->user), "%s", u->user);
    snprintf(cl->password, sizeof(cl->password), "%s", u->password);
    memset(cl->slots, LR__CLUSTER_NO_NODE, sizeof(cl->slots));
    lr_timer_init(cl->loop, &cl->timer, timer_fired);
    cl->timer.data = cl;
    lr__task_init(&cl->done_task, done_run);
    cl->res.data = cl;
    rc = lr__resolver_init(&cl->res, cl->loop, resolved);
    if (rc == 0) {
        rc = lr__conn_init(&cl->net, cl->loop, CONTROL_OUT, &control_cbs);
        if (rc < 0)
            lr__resolver_deinit(&cl->res);
    }
    if (rc < 0) {
        lr__free(cl);
        return rc;
    }
    cl->net.data = cl;
    *out = cl;
    return 0;
}

void lr__cluster_free(struct lr__cluster *cl)
{
    if (!cl)
        return;
    lr_timer_stop(&cl->timer);
    lr__task_cancel(&cl->done_task);
    lr__conn_deinit(&cl->net);
    lr__resolver_deinit(&cl->res);
    explicit_bzero(cl->password, sizeof(cl->password));
    lr__free(cl);
}

const uint8_t *lr__cluster_slots(const struct lr__cluster *cl)
{
    return cl->slots;
}

void lr__cluster_node_addr(const struct lr__cluster *cl, unsigned idx, struct sockaddr_storage *sa,
                           socklen_t *len)
{
    memcpy(sa, &cl->nodes[idx].sa, cl->nodes[idx].salen);
    *len = cl->nodes[idx].salen;
}

const char *lr__cluster_node_name(const struct lr__cluster *cl, unsigned idx)
{
    return cl->nodes[idx].name;
}

uint64_t lr__cluster_maps(const struct lr__cluster *cl)
{
    return cl->maps;
}

bool lr__cluster_uses_slots(const struct lr__cluster *cl)
{
    return cl->use_slots;
}

/* The table index of @a, added (and node_added told) if new: < 0 if the
 * table is full or the backend could not make the node's connections. */
static int find_node(struct lr__cluster *cl, const struct lr__cluster_node_addr *a)
{
    for (unsigned i = 0; i < cl->nnodes; i++)
        if (cl->nodes[i].a.port == a->port && !strcmp(cl->nodes[i].a.ip, a->ip))
            return (int)i;
    if (cl->nnodes == cl->max_nodes)
        return -ENOSPC;
    struct cnode *n = &cl->nodes[cl->nnodes];
    memset(n, 0, sizeof(*n));
    n->a = *a;
    bool is6 = strchr(a->ip, ':') != NULL;
    if (lr__addr_numeric(a->ip, strlen(a->ip), a->port, &n->sa, &n->salen) < 0)
        return -EINVAL;
    snprintf(n->name, sizeof(n->name), "%s%s%s:%u", is6 ? "[" : "", a->ip, is6 ? "]" : "", a->port);
    int rc = cl->cbs->node_added(cl->owner, cl->nnodes);
    if (rc < 0)
        return rc;
    return (int)cl->nnodes++;
}

int lr__cluster_redirect(struct lr__cluster *cl, unsigned slot, const char *addr, size_t len,
                         bool moved)
{
    /* "ip:port", the ip possibly IPv6 (its last colon splits) */
    const char *colon = NULL;
    for (size_t i = 0; i < len; i++)
        if (addr[i] == ':')
            colon = addr + i;
    struct lr__cluster_node_addr a;
    memset(&a, 0, sizeof(a));
    if (!colon || slot >= LR__REDIS_SLOTS ||
        lr__uri_port(colon + 1, (size_t)(addr + len - colon - 1), &a.port) < 0)
        return -EINVAL;
    size_t iplen = (size_t)(colon - addr);
    if (iplen >= 2 && addr[0] == '[' && addr[iplen - 1] == ']') { /* "[v6]:port" too */
        addr++;
        iplen -= 2;
    }
    if (!lr__slotmap_ip(&a, addr, iplen))
        return -EINVAL;
    int idx = find_node(cl, &a);
    if (idx >= 0 && moved && cl->slots[slot] != (uint8_t)idx) {
        /* one line per new owner, whatever the slot: a MOVED storm is one kind */
        lr__log(LR_LOG_WARN, "redis cluster %s: MOVED: slots now served by %s", cl->endpoint,
                lr__cluster_node_name(cl, (unsigned)idx));
        cl->slots[slot] = (uint8_t)idx;
    }
    return idx;
}

/* ----------------------------------------------------- the control round */

static uint64_t now_ms(const struct lr__cluster *cl)
{
    return lr_loop_now_ms(cl->loop);
}

static unsigned candidates(const struct lr__cluster *cl)
{
    return cl->nseeds + cl->nnodes;
}

static void set_endpoint(struct lr__cluster *cl)
{
    if (cl->cur < cl->nseeds) {
        const struct lr__uri_host *s = &cl->seeds[cl->cur];
        bool v6 = strchr(s->host, ':') != NULL;
        snprintf(cl->endpoint, sizeof(cl->endpoint), "%s%s%s:%u", v6 ? "[" : "", s->host,
                 v6 ? "]" : "", s->port);
    } else {
        snprintf(cl->endpoint, sizeof(cl->endpoint), "%s", cl->nodes[cl->cur - cl->nseeds].name);
    }
}

/* The next query: at once if the gap since the last allows, else after it. */
static void schedule(struct lr__cluster *cl, uint64_t delay_ms)
{
    uint64_t at = now_ms(cl) + delay_ms;
    if (cl->last_query_ms && at < cl->last_query_ms + REFRESH_GAP_MS)
        at = cl->last_query_ms + REFRESH_GAP_MS;
    if (!lr_timer_is_active(&cl->timer) || lr_timer_deadline(&cl->timer) > at)
        lr_timer_start(&cl->timer, at);
}

/* Close the control connection (if open); the next query reconnects. */
static void drop(struct lr__cluster *cl)
{
    if (cl->state == C_CONNECTING || cl->state == C_QUERY || cl->state == C_OPEN) {
        cl->state = C_CLOSING;
        lr__conn_close(&cl->net);
    } else if (cl->state == C_RESOLVING) {
        cl->state = C_IDLE; /* the lookup's answer will be ignored */
    }
}

/* The candidate failed (already told): the next one, at once within a
 * round, after a backoff between rounds. */
static void candidate_failed(struct lr__cluster *cl)
{
    lr_timer_stop(&cl->timer);
    drop(cl);
    cl->cur = (cl->cur + 1) % candidates(cl);
    set_endpoint(cl);
    uint64_t delay = 0;
    if (++cl->failed >= candidates(cl)) {
        cl->failed = 0;
        delay = lr__manager_backoff(cl->m, cl->attempt);
        uint64_t cap = lr__manager_opts(cl->m)->request_timeout_ms;
        if (delay > cap)
            delay = cap;
        if (cl->attempt < 32)
            cl->attempt++;
    }
    if (cl->want)
        lr_timer_start(&cl->timer, now_ms(cl) + delay);
}

static void query_deadline(struct lr__cluster *cl)
{
    uint64_t to = lr__manager_opts(cl->m)->request_timeout_ms;
    lr_timer_start(&cl->timer, now_ms(cl) + (to < 1000 ? 1000 : to));
}

static void send_query(struct lr__cluster *cl, bool with_auth)
{
    size_t avail;
    char *w = lr__conn_wbuf(&cl->net, &avail);
    size_t used = 0;
    int n;
    cl->phase = P_MAP;
    if (with_auth && cl->has_password) {
        struct lr_resp_arg a[3] = {{"AUTH", 4}};
        size_t argc = 1;
        if (cl->has_user)
            a[argc++] = (struct lr_resp_arg){cl->user, strlen(cl->user)};
        a[argc++] = (struct lr_resp_arg){cl->password, strlen(cl->password)};
        n = lr_resp_write_cmd(w, avail, argc, a);
        if (n < 0)
            goto nobufs;
        used = (size_t)n;
        cl->phase = P_AUTH;
    }
    struct lr_resp_arg q[2] = {{"CLUSTER", 7}, {cl->use_slots ? "SLOTS" : "SHARDS", 0}};
    q[1].len = strlen(q[1].p);
    n = lr_resp_write_cmd(w + used, avail - used, 2, q);
    if (n < 0)
        goto nobufs;
    lr__conn_commit(&cl->net, used + (size_t)n);
    lr__slotmap_parse_init(&cl->sp, &cl->fresh, !cl->use_slots);
    cl->state = C_QUERY;
    cl->last_query_ms = now_ms(cl);
    query_deadline(cl);
    return;
nobufs: /* cannot happen with credentials within the URI's bounds */
    say(cl, -ENOBUFS, "request does not fit", "");
    candidate_failed(cl);
}

static void connect_now(struct lr__cluster *cl)
{
    cl->state = C_CONNECTING;
    uint32_t to = lr__manager_opts(cl->m)->request_timeout_ms;
    int rc =
        lr__conn_connect(&cl->net, (struct sockaddr *)&cl->sa, cl->salen, to < 1000 ? 1000 : to);
    if (rc < 0) {
        cl->state = C_IDLE;
        say(cl, rc, "connect: ", lr_strerror(rc));
        candidate_failed(cl);
        return;
    }
    query_deadline(cl);
}

static void resolved(struct lr__resolver *r, int status, const struct sockaddr *sa, socklen_t len)
{
    struct lr__cluster *cl = r->data;
    if (cl->state != C_RESOLVING || cl->closing)
        return;
    if (status < 0) {
        cl->state = C_IDLE;
        say(cl, status, "name not resolved: ", lr__resolver_why(r));
        candidate_failed(cl);
        return;
    }
    memcpy(&cl->sa, sa, len);
    cl->salen = len;
    connect_now(cl);
}

static void try_current(struct lr__cluster *cl)
{
    if (cl->closing || cl->state != C_IDLE)
        return;
    if (cl->cur >= candidates(cl))
        cl->cur = 0;
    set_endpoint(cl);
    if (cl->cur >= cl->nseeds) { /* a known node: its address is numeric */
        lr__cluster_node_addr(cl, cl->cur - cl->nseeds, &cl->sa, &cl->salen);
        connect_now(cl);
        return;
    }
    if (cl->res.busy) { /* a lookup that timed out still runs: wait for it */
        lr_timer_start(&cl->timer, now_ms(cl) + 10);
        return;
    }
    const struct lr__uri_host *s = &cl->seeds[cl->cur];
    cl->state = C_RESOLVING;
    int rc = lr__resolver_start(&cl->res, s->host, s->port, &cl->sa, &cl->salen);
    if (rc == 1) {
        connect_now(cl);
    } else if (rc < 0) {
        cl->state = C_IDLE;
        say(cl, rc, "name not resolved: ",
            lr__resolver_why(&cl->res)[0] ? lr__resolver_why(&cl->res) : lr_strerror(rc));
        candidate_failed(cl);
    } else {
        query_deadline(cl);
    }
}

static void timer_fired(struct lr_timer *t)
{
    struct lr__cluster *cl = t->data;
    if (cl->closing)
        return;
    if (cl->state == C_IDLE) {
        if (cl->want)
            try_current(cl);
        return;
    }
    if (cl->state == C_OPEN) {
        if (cl->want)
            send_query(cl, false);
        return;
    }
    if (cl->state == C_CLOSING)
        return; /* on_close goes on */
    say(cl, -ETIMEDOUT, "no slot map within the request timeout", "");
    candidate_failed(cl);
}

void lr__cluster_refresh(struct lr__cluster *cl)
{
    if (cl->closing)
        return;
    if (cl->state == C_CLOSING) {
        cl->want = true; /* on_close goes on */
        return;
    }
    if (cl->state == C_QUERY || cl->state == C_CONNECTING || cl->state == C_RESOLVING) {
        cl->again |= cl->state == C_QUERY; /* the answer under way may predate the change */
        cl->want = true;
        return;
    }
    if (cl->want && lr_timer_is_active(&cl->timer))
        return; /* already scheduled (or backing off between rounds) */
    cl->want = true;
    schedule(cl, 0);
}

/* A whole map arrived: adopt it. */
static void install(struct lr__cluster *cl)
{
    uint8_t to[LR__CLUSTER_NODES_MAX];
    bool full = false;
    for (unsigned i = 0; i < cl->fresh.nnodes; i++) {
        int idx = find_node(cl, &cl->fresh.nodes[i]);
        full |= idx < 0;
        to[i] = idx < 0 ? LR__CLUSTER_NO_NODE : (uint8_t)idx;
    }
    unsigned moved = 0;
    for (unsigned s = 0; s < LR__REDIS_SLOTS; s++) {
        uint8_t o = cl->fresh.owner[s];
        uint8_t n = o == LR__CLUSTER_NO_NODE ? o : to[o];
        moved += cl->slots[s] != n;
        cl->slots[s] = n;
    }
    /* A failover or a reshard (a storm of MOVED asks for a new map): the
     * log says so once per map that changed something. */
    if (!cl->maps)
        lr__log(LR_LOG_INFO, "redis cluster %s: slot map: %u masters", cl->endpoint,
                cl->fresh.nnodes);
    else if (moved)
        lr__log(LR_LOG_WARN, "redis cluster %s: slot map changed: %u slots moved, %u masters",
                cl->endpoint, moved, cl->fresh.nnodes);
    if (full) {
        char t[96];
        snprintf(t, sizeof(t),
                 "more than %u masters (or their connections failed): ", cl->max_nodes);
        say(cl, -ENOSPC, t, "the slots of the others are not served");
    }
    cl->maps++;
    cl->failed = 0;
    cl->attempt = 0;
    cl->state = C_OPEN;
    lr_timer_stop(&cl->timer);
    cl->want = cl->again;
    cl->again = false;
    if (cl->want)
        schedule(cl, 0);
    cl->cbs->map_changed(cl->owner); /* may close us: last */
}

static void on_token(struct lr__cluster *cl, const struct lr_resp_token *t)
{
    if (cl->phase == P_AUTH) {
        if (!t->last)
            return; /* AUTH answers a scalar; anything longer fails below */
        cl->phase = P_MAP;
        if (t->type == LR_RESP_ERROR || t->type == LR_RESP_BLOBERR) {
            char e[128];
            snprintf(e, sizeof(e), "%.*s", (int)(t->len < 100 ? t->len : 100), t->str);
            say(cl, LR_EAUTH, "auth refused: ", e);
            candidate_failed(cl);
        } else if (t->type != LR_RESP_SIMPLE) {
            say(cl, LR_EBADREPLY, "AUTH answered with no status", "");
            candidate_failed(cl);
        }
        return;
    }
    int rc = lr__slotmap_parse_token(&cl->sp, t);
    if (rc == 0)
        return;
    if (rc == 1) {
        install(cl);
        return;
    }
    if (rc == -ENOTSUP && !cl->use_slots) { /* before Redis 7: CLUSTER SLOTS */
        cl->use_slots = true;
        send_query(cl, false);
        return;
    }
    say(cl, rc == -EREMOTEIO ? LR_EUNAVAIL : LR_EBADREPLY,
        rc == -EREMOTEIO ? "CLUSTER refused: " : "unusable slot map: ", cl->sp.why);
    candidate_failed(cl);
}

static void on_connect(struct lr__conn *nc, int status)
{
    struct lr__cluster *cl = nc->data;
    if (cl->closing || cl->state != C_CONNECTING)
        return;
    if (status < 0) {
        cl->state = C_IDLE;
        say(cl, status, "connect: ", lr_strerror(status));
        candidate_failed(cl);
        return;
    }
    lr_resp_parser_init(&cl->parser);
    send_query(cl, true);
}

static void on_data(struct lr__conn *nc, const char *buf, size_t len)
{
    struct lr__cluster *cl = nc->data;
    size_t off = 0;
    while (off < len && cl->state == C_QUERY) {
        struct lr_resp_token t;
        int rc = lr_resp_parse(&cl->parser, buf + off, len - off, &t);
        if (rc == -EAGAIN)
            return;
        if (rc < 0) {
            say(cl, LR_EBADREPLY, "malformed reply", "");
            candidate_failed(cl);
            return;
        }
        off += (size_t)rc;
        on_token(cl, &t);
    }
    if (off < len && cl->state == C_OPEN) { /* nothing asked: a stray reply */
        say(cl, LR_EBADREPLY, "a reply nobody asked for", "");
        drop(cl);
    }
}

static void on_error(struct lr__conn *nc, int err)
{
    struct lr__cluster *cl = nc->data;
    if (cl->closing || cl->state == C_IDLE || cl->state == C_CLOSING) {
        lr__conn_close(nc);
        return;
    }
    if (cl->state == C_OPEN) { /* idle between queries: the next one reconnects */
        drop(cl);
        return;
    }
    say(cl, err, "connection lost: ", lr_strerror(err));
    candidate_failed(cl);
}

static void closed_part(struct lr__cluster *cl)
{
    if (--cl->to_close == 0)
        lr__loop_defer(cl->loop, &cl->done_task);
}

static void on_close(struct lr__conn *nc)
{
    struct lr__cluster *cl = nc->data;
    if (cl->closing) {
        closed_part(cl);
        return;
    }
    cl->state = C_IDLE;
    if (cl->want && !lr_timer_is_active(&cl->timer))
        schedule(cl, 0);
}

static const struct lr__conn_cbs control_cbs = {
    .on_connect = on_connect,
    .on_data = on_data,
    .on_error = on_error,
    .on_close = on_close,
};

static void resolver_closed(struct lr__resolver *r)
{
    closed_part(r->data);
}

static void done_run(struct lr__task *t)
{
    struct lr__cluster *cl = lr_container_of(t, struct lr__cluster, done_task);
    cl->done(cl->done_arg);
}

void lr__cluster_close(struct lr__cluster *cl, void (*done)(void *arg), void *arg)
{
    cl->closing = true;
    cl->want = false;
    cl->done = done;
    cl->done_arg = arg;
    cl->to_close = 2;
    lr_timer_stop(&cl->timer);
    lr__conn_close(&cl->net);
    lr__resolver_close(&cl->res, resolver_closed);
}
