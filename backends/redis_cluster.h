/* SPDX-License-Identifier: MIT */
/*
 * redis_cluster.h - the Redis Cluster topology for redis+cluster:// (internal):
 * which master serves each of the 16384 slots, learnt from CLUSTER SHARDS
 * (CLUSTER SLOTS on servers that do not know SHARDS), and kept up to date
 * after redirections and failures.
 *
 * Two parts:
 *  - a pure parser (lr__slotmap_*, redis_slotmap.c): the tokens (resp.h) of a CLUSTER SHARDS
 *    or CLUSTER SLOTS reply in, a slot map out (slot -> index into a table
 *    of master addresses). No I/O, no allocation: unit tests and the fuzz
 *    target drive it with bytes.
 *  - the topology (lr__cluster_*): the node table the Redis backend (redis.c)
 *    makes its connections from (at most LR__CLUSTER_NODES_MAX nodes, never
 *    forgotten while the manager lives), the live slot map, and one control
 *    connection that asks a seed for the map -- at start, and again whenever
 *    the backend asks (a MOVED, a lost node connection): at most one query
 *    in flight and at most one every REFRESH_GAP_MS. The seeds of the URI are
 *    asked in turn, then the known nodes (so a seed that died is not the
 *    end), moving on at any failure, each told through store_error.
 * Node addresses come from the cluster's answers as numeric IPs (the "ip"
 * field of SHARDS, the first element of a SLOTS node): a cluster that
 * announces host names only (cluster-preferred-endpoint-type hostname with
 * no IP) is refused with a clear error.
 * Everything runs on the loop thread; memory is allocated by
 * lr__cluster_new only.
 * Layer: the loop, connections, resolver, RESP and the backend interface's
 * error reporting; knows nothing of leases.
 */
#ifndef LR_REDIS_CLUSTER_H
#define LR_REDIS_CLUSTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "redis_slot.h"
#include "resp.h"
#include "uri_int.h"

#define LR__CLUSTER_NODES_MAX 64
#define LR__CLUSTER_NO_NODE 0xffu /* a slot no known master serves */

/* ------------------------------------------------------ the pure parser */

struct lr__cluster_node_addr {
    char ip[46]; /* numeric IPv4 or IPv6, NUL-terminated */
    uint16_t port;
};

/* A slot map: owner[slot] indexes nodes[], or LR__CLUSTER_NO_NODE. */
struct lr__slotmap {
    uint8_t owner[LR__REDIS_SLOTS];
    unsigned nnodes;
    struct lr__cluster_node_addr nodes[LR__CLUSTER_NODES_MAX];
};

/* Parser state; all private. */
struct lr__slotmap_parser {
    struct lr__slotmap *out;
    bool shards; /* CLUSTER SHARDS (else CLUSTER SLOTS) */
    bool started;
    bool done;
    int error;     /* sticky: 0, or the error returned */
    char why[128]; /* the error, as text */
    /* the current shard (SHARDS) or slot range (SLOTS) */
    bool in_group;
    int64_t idx2; /* elements seen at depth 2 */
    uint8_t key2; /* SHARDS: which field the depth-2 value belongs to */
    int64_t idx3; /* SLOTS: elements of the master's node array; SHARDS: slot bounds */
    int64_t range_start;
    int64_t lo, hi; /* SHARDS: marked slots span [lo, hi] */
    bool marked;
    bool have_master; /* the group's master, so far */
    struct lr__cluster_node_addr master;
    /* SHARDS: the node being read */
    bool in_node;
    int64_t idx4;
    uint8_t key4;
    bool n_master;
    bool n_failed;
    bool n_has_ip;
    struct lr__cluster_node_addr n;
    char n_endpoint[46];
};

/* Start parsing a reply to CLUSTER SHARDS (@shards) or CLUSTER SLOTS into
 * @out (cleared here). */
void lr__slotmap_parse_init(struct lr__slotmap_parser *p, struct lr__slotmap *out, bool shards);

/*
 * lr__slotmap_parse_token - one token of the reply, in order.
 * Returns: 1 when this token completed the reply and the map in @out is
 * whole; 0 to go on; and, sticky from then on (p->why says what):
 *   -ENOTSUP the server does not know the command (SHARDS before Redis 7:
 *            ask CLUSTER SLOTS instead);
 *   -EREMOTEIO another error reply (e.g. "ERR This instance has cluster
 *            support disabled");
 *   -EPROTO  a reply of a shape or a value we cannot use (slot out of range,
 *            a slot served twice, a master without a numeric address);
 *   -ENOSPC  more than LR__CLUSTER_NODES_MAX masters.
 */
int lr__slotmap_parse_token(struct lr__slotmap_parser *p, const struct lr_resp_token *t);

/* The same over the bytes of one whole reply (tests, fuzzing): 0 and @out
 * filled, one of the errors above, or -EPROTO for bytes that are no RESP or
 * stop short of a whole reply. @why (may be NULL) gets the reason. */
int lr__slotmap_parse(struct lr__slotmap *out, bool shards, const char *buf, size_t len, char *why,
                      size_t why_cap);

/* A numeric IPv4 or IPv6 address (@len bytes at @s) into @a->ip; false if
 * it is none (a host name, "", "?"). */
bool lr__slotmap_ip(struct lr__cluster_node_addr *a, const char *s, size_t len);

/* ------------------------------------------------------ the topology */

struct lr_manager;
struct lr__cluster;

struct lr__cluster_cbs {
    /* Node @idx joined the table (a map or a redirection named it): make
     * its connections. Returns 0, or < 0 (it is then never routed to). */
    int (*node_added)(void *owner, unsigned idx);
    /* A new slot map is in place (also the first one). */
    void (*map_changed)(void *owner);
};

/* Parse the seeds of @u ("h[:p][,h[:p]...]", default port 6379) and
 * prepare, without connecting; @max_nodes (<= LR__CLUSTER_NODES_MAX)
 * bounds the node table. Returns 0, -EINVAL (no seed, a path, a bad host
 * list, more than 16 seeds), -ENOMEM. Allocates. */
int lr__cluster_new(struct lr__cluster **out, struct lr_manager *m, const struct lr__uri *u,
                    unsigned max_nodes, void *owner, const struct lr__cluster_cbs *cbs);

/* The live slot map: node index per slot, or LR__CLUSTER_NO_NODE (no map
 * yet, or no master serves the slot now). Valid as long as @cl lives. */
const uint8_t *lr__cluster_slots(const struct lr__cluster *cl);

/* The address of node @idx, and its "ip:port" for messages. */
void lr__cluster_node_addr(const struct lr__cluster *cl, unsigned idx, struct sockaddr_storage *sa,
                           socklen_t *len);
const char *lr__cluster_node_name(const struct lr__cluster *cl, unsigned idx);

/*
 * lr__cluster_redirect - a MOVED or ASK reply named "ip:port" (@addr,
 * @len bytes) for @slot: the node's index (added to the table, with
 * node_added, if new). With @moved the slot now belongs to it in the map.
 * Returns the index, -EINVAL (not "ip:port" with a numeric ip), -ENOSPC
 * (table full), or what node_added returned.
 */
int lr__cluster_redirect(struct lr__cluster *cl, unsigned slot, const char *addr, size_t len,
                         bool moved);

/* Ask for a fresh map soon (rate-limited; at most one query in flight). */
void lr__cluster_refresh(struct lr__cluster *cl);

/* Maps installed so far (tests), and whether CLUSTER SLOTS replaced SHARDS. */
uint64_t lr__cluster_maps(const struct lr__cluster *cl);
bool lr__cluster_uses_slots(const struct lr__cluster *cl);

/* Stop: no callback after this; @done(@arg) runs from a later loop phase. */
void lr__cluster_close(struct lr__cluster *cl, void (*done)(void *arg), void *arg);

/* Free (after close's @done, or when the loop never ran it). NULL is fine. */
void lr__cluster_free(struct lr__cluster *cl);

#endif
