/* SPDX-License-Identifier: MIT */
/*
 * redis_sentinel.h - finding a Redis master through Redis Sentinel, and
 * following it when the sentinels fail it over (redis+sentinel://, internal).
 *
 * One connection to one sentinel at a time (the sentinels are tried in the
 * order given, moving to the next on any failure): it asks
 * SENTINEL GET-MASTER-ADDR-BY-NAME and then stays subscribed to
 * +switch-master, so the backend hears of a failover before its first
 * failed request. The Redis backend (redis.c) asks lr__sentinel_lookup()
 * where it replaces a host lookup, and is called back through
 * lr__sentinel_cbs. Everything runs on the loop thread; memory is allocated
 * by lr__sentinel_new only.
 * Layer: the loop, connections, RESP and the backend interface's error
 * reporting; knows nothing of leases.
 */
#ifndef LR_REDIS_SENTINEL_H
#define LR_REDIS_SENTINEL_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "uri_int.h"

struct lr_manager;
struct lr__sentinel;
struct lr__tls_ctx;

struct lr__sentinel_cbs {
    /* The answer to lr__sentinel_lookup: 0 and the master's address, or
     * LR_EUNAVAIL when no sentinel answered (the reason went to store_error). */
    void (*found)(void *owner, int status, const struct sockaddr *sa, socklen_t len);
    /* +switch-master for our master (or a new answer that differs from the
     * last one): the master is now at @sa; drop the data connections. */
    void (*moved)(void *owner, const struct sockaddr *sa, socklen_t len);
};

/* The query parameters the sentinel part owns (for the backend's check of
 * unknown parameters). */
bool lr__sentinel_param(const char *key);

/* Parse @u (hosts "h[:p][,h[:p]...]", default port 26379; path = master
 * name; sentinel_user / sentinel_password parameters) and prepare, without
 * connecting (plain TCP to the sentinels unless lr__sentinel_tls follows).
 * Returns 0, -EINVAL (no master name, too many sentinels, bad host:port),
 * -ENOMEM. Allocates. */
int lr__sentinel_new(struct lr__sentinel **out, struct lr_manager *m, const struct lr__uri *u,
                     void *owner, const struct lr__sentinel_cbs *cbs);

/* Speak TLS to the sentinels, with @ctx's verification settings; each
 * sentinel's certificate is checked against its host as written in the URI.
 * Call before the first lookup. Returns 0, -ENOMEM. Allocates. */
int lr__sentinel_tls(struct lr__sentinel *s, struct lr__tls_ctx *ctx);

/* Where is the master? 1: an answer fresh enough (under half a second old,
 * or from +switch-master) is copied to @sa/@len at once; 0: found() follows
 * from a later loop phase. */
int lr__sentinel_lookup(struct lr__sentinel *s, struct sockaddr_storage *sa, socklen_t *len);

/* The last answer turned out wrong (ROLE said replica): never reuse it. */
void lr__sentinel_stale(struct lr__sentinel *s);

/* The master's name, for error texts. */
const char *lr__sentinel_master(const struct lr__sentinel *s);

/* How many times a +switch-master message made us drop the data
 * connections (tests). */
uint64_t lr__sentinel_switches(const struct lr__sentinel *s);

/* Stop: no callback after this; @done(@arg) runs from a later loop phase. */
void lr__sentinel_close(struct lr__sentinel *s, void (*done)(void *arg), void *arg);

/* Free (after close's @done, or when the loop never ran it). NULL is fine. */
void lr__sentinel_free(struct lr__sentinel *s);

#endif
