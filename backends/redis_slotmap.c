/* SPDX-License-Identifier: MIT */
/*
 * redis_slotmap.c - the pure part of redis_cluster.h: a CLUSTER SHARDS or
 * CLUSTER SLOTS reply, token by token, into a slot map. Kept apart from the
 * control connection (redis_cluster.c) so that the fuzz target links only
 * this and resp.c.
 *
 * CLUSTER SHARDS (Redis >= 7.0), RESP2 shape: an array of shards, each a
 * flat list of field/value pairs (a map in RESP3) with "slots" -> [start,
 * end, start, end...] and "nodes" -> a list of nodes, each a field/value
 * list with "ip", "port", "endpoint", "role" ("master"/"replica") and
 * "health" ("online"/"failed"/"loading"), among others we skip. The slots
 * arrive before the node that serves them, so a shard's slots are marked
 * first and given to its master when the shard ends (at the next shard or
 * the end of the reply: tokens carry depths, not ends). Only a master not
 * reported "failed" serves; a shard without one leaves its slots unserved
 * (a failover under way: requests for them are unavailable until it ends).
 * CLUSTER SLOTS (every cluster version), for servers that answer SHARDS
 * with "unknown subcommand": an array of [start, end, [ip, port, id, ...],
 * replicas...]; the first node is the master.
 * Layer: tokens in, a map out; no I/O, no allocation.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1 /* memmem */
#endif
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include "redis_cluster.h"

#define MARK 0xfeu /* a slot of the shard being read (owner unknown yet) */

enum { F_OTHER, F_SLOTS, F_NODES, F_IP, F_PORT, F_ENDPOINT, F_ROLE, F_HEALTH };

static int fail(struct lr__slotmap_parser *p, int err, const char *fmt, long a, long b)
{
    if (!p->error) {
        p->error = err;
        snprintf(p->why, sizeof(p->why), fmt, a, b);
    }
    return p->error;
}

void lr__slotmap_parse_init(struct lr__slotmap_parser *p, struct lr__slotmap *out, bool shards)
{
    memset(p, 0, sizeof(*p));
    p->out = out;
    p->shards = shards;
    memset(out->owner, LR__CLUSTER_NO_NODE, sizeof(out->owner));
    out->nnodes = 0;
}

static bool is_str(const struct lr_resp_token *t)
{
    return (t->type == LR_RESP_BULK || t->type == LR_RESP_SIMPLE || t->type == LR_RESP_VERBATIM) &&
           !t->nil;
}

static bool str_eq(const struct lr_resp_token *t, const char *lit)
{
    return is_str(t) && t->len == strlen(lit) && !memcmp(t->str, lit, t->len);
}

bool lr__slotmap_ip(struct lr__cluster_node_addr *a, const char *s, size_t len)
{
    unsigned char buf[sizeof(struct in6_addr)];
    if (len == 0 || len >= sizeof(a->ip))
        return false;
    memcpy(a->ip, s, len);
    a->ip[len] = 0;
    return inet_pton(AF_INET, a->ip, buf) == 1 || inet_pton(AF_INET6, a->ip, buf) == 1;
}

/* The index of @a in @out's node table, added if new; < 0 when full. */
static int node_index(struct lr__slotmap_parser *p, const struct lr__cluster_node_addr *a)
{
    struct lr__slotmap *m = p->out;
    for (unsigned i = 0; i < m->nnodes; i++)
        if (m->nodes[i].port == a->port && !strcmp(m->nodes[i].ip, a->ip))
            return (int)i;
    if (m->nnodes == LR__CLUSTER_NODES_MAX)
        return fail(p, -ENOSPC, "more than %ld masters%.0ld", LR__CLUSTER_NODES_MAX, 0);
    m->nodes[m->nnodes] = *a;
    return (int)m->nnodes++;
}

/* Slots [lo, hi] belong to the group being read. */
static int claim(struct lr__slotmap_parser *p, int64_t lo, int64_t hi)
{
    if (lo < 0 || hi >= (int64_t)LR__REDIS_SLOTS || lo > hi)
        return fail(p, -EPROTO, "slot range %ld-%ld out of bounds", (long)lo, (long)hi);
    for (int64_t s = lo; s <= hi; s++) {
        if (p->out->owner[s] != LR__CLUSTER_NO_NODE)
            return fail(p, -EPROTO, "slot %ld is served twice%.0ld", (long)s, 0);
        p->out->owner[s] = MARK;
    }
    if (!p->marked || lo < p->lo)
        p->lo = lo;
    if (!p->marked || hi > p->hi)
        p->hi = hi;
    p->marked = true;
    return 0;
}

static void end_node(struct lr__slotmap_parser *p)
{
    if (!p->in_node)
        return;
    p->in_node = false;
    if (!p->n_master || p->n_failed || p->have_master)
        return;
    if (!p->n_has_ip && !lr__slotmap_ip(&p->n, p->n_endpoint, strlen(p->n_endpoint))) {
        fail(p, -EPROTO, "a master has no numeric address (host names are not supported)%.0ld%.0ld",
             0, 0);
        return;
    }
    if (p->n.port == 0) {
        fail(p, -EPROTO, "a master has no port%.0ld%.0ld", 0, 0);
        return;
    }
    p->master = p->n;
    p->have_master = true;
}

static void end_group(struct lr__slotmap_parser *p)
{
    end_node(p);
    if (!p->in_group || p->error)
        return;
    p->in_group = false;
    if (!p->shards) {
        if (p->idx2 < 3 || !p->have_master) {
            fail(p, -EPROTO, "a CLUSTER SLOTS entry is not [start, end, [ip, port, ...]]%.0ld%.0ld",
                 0, 0);
            return;
        }
        if (claim(p, p->range_start, p->hi) < 0)
            return;
    }
    if (!p->marked)
        return;
    int idx = p->have_master ? node_index(p, &p->master) : (int)LR__CLUSTER_NO_NODE;
    if (idx < 0)
        return;
    for (int64_t s = p->lo; s <= p->hi; s++)
        if (p->out->owner[s] == MARK)
            p->out->owner[s] = (uint8_t)idx;
}

static void start_group(struct lr__slotmap_parser *p)
{
    p->in_group = true;
    p->idx2 = 0;
    p->key2 = F_OTHER;
    p->idx3 = 0;
    p->marked = false;
    p->have_master = false;
    p->in_node = false;
    memset(&p->master, 0, sizeof(p->master));
}

static void start_node(struct lr__slotmap_parser *p)
{
    p->in_node = true;
    p->idx4 = 0;
    p->key4 = F_OTHER;
    p->n_master = p->n_failed = p->n_has_ip = false;
    memset(&p->n, 0, sizeof(p->n));
    p->n_endpoint[0] = 0;
}

static bool is_agg(const struct lr_resp_token *t)
{
    return (t->type == LR_RESP_ARRAY || t->type == LR_RESP_MAP) && !t->nil;
}

static int port_of(const struct lr_resp_token *t, uint16_t *port)
{
    if (t->type != LR_RESP_INT || t->integer <= 0 || t->integer > 65535)
        return -1;
    *port = (uint16_t)t->integer;
    return 0;
}

/* A depth-2..4 token of a CLUSTER SHARDS reply. */
static void shards_token(struct lr__slotmap_parser *p, const struct lr_resp_token *t)
{
    if (t->depth == 2) {
        end_node(p);
        int64_t e = p->idx2++;
        if (!(e & 1)) { /* a field name */
            p->key2 = str_eq(t, "slots") ? F_SLOTS : str_eq(t, "nodes") ? F_NODES : F_OTHER;
            if (!is_str(t))
                fail(p, -EPROTO, "a shard field name is not a string%.0ld%.0ld", 0, 0);
        } else if ((p->key2 == F_SLOTS || p->key2 == F_NODES) && !is_agg(t)) {
            fail(p, -EPROTO,
                 p->key2 == F_SLOTS ? "a shard's slots are not a list%.0ld%.0ld"
                                    : "a shard's nodes are not a list%.0ld%.0ld",
                 0, 0);
        } else {
            p->idx3 = 0;
        }
        return;
    }
    if ((p->idx2 & 1) || p->idx2 == 0)
        return; /* the last depth-2 element was a field name: nothing nests in one */
    if (t->depth == 3 && p->key2 == F_SLOTS) {
        if (t->type != LR_RESP_INT) {
            fail(p, -EPROTO, "a slot bound is not an integer%.0ld%.0ld", 0, 0);
            return;
        }
        if (!(p->idx3++ & 1))
            p->range_start = t->integer;
        else
            claim(p, p->range_start, t->integer);
        return;
    }
    if (p->key2 != F_NODES)
        return;
    if (t->depth == 3) {
        end_node(p);
        if (!is_agg(t)) {
            fail(p, -EPROTO, "a shard node is not a list of fields%.0ld%.0ld", 0, 0);
            return;
        }
        start_node(p);
        return;
    }
    if (t->depth != 4 || !p->in_node)
        return;
    int64_t e = p->idx4++;
    if (!(e & 1)) {
        p->key4 = str_eq(t, "ip")         ? F_IP
                  : str_eq(t, "port")     ? F_PORT
                  : str_eq(t, "endpoint") ? F_ENDPOINT
                  : str_eq(t, "role")     ? F_ROLE
                  : str_eq(t, "health")   ? F_HEALTH
                                          : F_OTHER;
        return;
    }
    switch (p->key4) {
    case F_IP:
        p->n_has_ip = is_str(t) && lr__slotmap_ip(&p->n, t->str, t->len);
        break;
    case F_ENDPOINT:
        if (is_str(t) && t->len < sizeof(p->n_endpoint)) {
            memcpy(p->n_endpoint, t->str, t->len);
            p->n_endpoint[t->len] = 0;
        }
        break;
    case F_PORT:
        if (port_of(t, &p->n.port) < 0)
            fail(p, -EPROTO, "a node's port is not a port number%.0ld%.0ld", 0, 0);
        break;
    case F_ROLE:
        p->n_master = str_eq(t, "master");
        break;
    case F_HEALTH:
        p->n_failed = str_eq(t, "failed");
        break;
    default:
        break;
    }
}

/* A depth-2..3 token of a CLUSTER SLOTS reply. */
static void slots_token(struct lr__slotmap_parser *p, const struct lr_resp_token *t)
{
    if (t->depth == 2) {
        int64_t e = p->idx2++;
        if (e < 2 && t->type != LR_RESP_INT)
            fail(p, -EPROTO, "a slot bound is not an integer%.0ld%.0ld", 0, 0);
        else if (e == 0)
            p->range_start = t->integer;
        else if (e == 1)
            p->hi = t->integer;
        else if (e == 2 && !is_agg(t))
            fail(p, -EPROTO, "a slot range's master is not a list%.0ld%.0ld", 0, 0);
        p->idx3 = 0;
        return;
    }
    if (t->depth != 3 || p->idx2 != 3)
        return; /* replicas, and whatever nests deeper */
    int64_t k = p->idx3++;
    if (k == 0) {
        if (!is_str(t) || !lr__slotmap_ip(&p->master, t->str, t->len))
            fail(p, -EPROTO,
                 "a master has no numeric address (host names are not supported)%.0ld%.0ld", 0, 0);
    } else if (k == 1) {
        if (port_of(t, &p->master.port) < 0)
            fail(p, -EPROTO, "a master's port is not a port number%.0ld%.0ld", 0, 0);
        else
            p->have_master = true;
    }
}

int lr__slotmap_parse_token(struct lr__slotmap_parser *p, const struct lr_resp_token *t)
{
    if (p->error)
        return p->error;
    if (p->done)
        return fail(p, -EPROTO, "more than one reply%.0ld%.0ld", 0, 0);
    if (!p->started) {
        p->started = true;
        if (t->type == LR_RESP_ERROR || t->type == LR_RESP_BLOBERR) {
            int n = (int)(t->len < 100 ? t->len : 100);
            /* "ERR unknown subcommand 'SHARDS'..." (Redis 6: "ERR Unknown subcommand") */
            bool unknown = n >= 11 && (memmem(t->str, (size_t)n, "nknown subcommand", 17) ||
                                       memmem(t->str, (size_t)n, "nknown command", 14));
            p->error = unknown ? -ENOTSUP : -EREMOTEIO;
            /* the server's words, printable (they go into a log line) */
            for (int i = 0; i < n; i++)
                p->why[i] = t->str[i] >= ' ' && t->str[i] < 127 ? t->str[i] : '?';
            p->why[n] = 0;
            if (!n)
                snprintf(p->why, sizeof(p->why), "an empty error reply");
            return p->error;
        }
        if (t->type != LR_RESP_ARRAY || t->nil)
            return fail(p, -EPROTO, "the reply is not a list%.0ld%.0ld", 0, 0);
    } else if (t->depth == 0) {
        return fail(p, -EPROTO, "a reply inside the reply%.0ld%.0ld", 0, 0);
    } else if (t->depth == 1) {
        end_group(p);
        if (!p->error && !(p->shards ? is_agg(t) : t->type == LR_RESP_ARRAY && !t->nil))
            fail(p, -EPROTO, "an entry is not a list%.0ld%.0ld", 0, 0);
        start_group(p);
    } else if (p->shards) {
        shards_token(p, t);
    } else {
        slots_token(p, t);
    }
    if (p->error)
        return p->error;
    if (!t->last)
        return 0;
    end_group(p);
    if (p->error)
        return p->error;
    p->done = true;
    return 1;
}

int lr__slotmap_parse(struct lr__slotmap *out, bool shards, const char *buf, size_t len, char *why,
                      size_t why_cap)
{
    static __thread struct lr__slotmap_parser p;
    static __thread struct lr_resp_parser rp;
    lr__slotmap_parse_init(&p, out, shards);
    lr_resp_parser_init(&rp);
    size_t off = 0;
    int rc = 0;
    while (rc == 0) {
        struct lr_resp_token t;
        int n = lr_resp_parse(&rp, buf + off, len - off, &t);
        if (n < 0) {
            rc =
                fail(&p, -EPROTO,
                     n == -EAGAIN ? "the reply stops short%.0ld%.0ld" : "not RESP%.0ld%.0ld", 0, 0);
            break;
        }
        off += (size_t)n;
        rc = lr__slotmap_parse_token(&p, &t);
    }
    if (rc == 1 && off != len)
        rc = fail(&p, -EPROTO, "bytes after the reply%.0ld%.0ld", 0, 0);
    if (why && why_cap)
        snprintf(why, why_cap, "%s", rc < 0 ? p.why : "");
    return rc < 0 ? rc : 0;
}
