/* SPDX-License-Identifier: MIT */
/*
 * backend_int.h - the interface between the lease core and a store backend.
 *
 * The core hands a backend one request per lease at a time (the kind is in
 * l->req.kind) and gets exactly one lr__lease_complete() back, from a later
 * loop phase, never from inside submit(). A backend may refuse a request
 * synchronously (submit returns < 0, typically LR_EUNAVAIL while it is
 * reconnecting); then no completion follows. cancel() abandons the lease's
 * request: no completion follows, and the backend must stop touching the
 * lease (a pipelined reply that still arrives is discarded).
 *
 * Result codes: 0; LR_ECONFLICT (acquire: someone else holds it; holder and
 * holder_ttl_ms when the store says); LR_ELOST (renew/release/change: not
 * ours);
 * ambiguous transport outcomes -ETIMEDOUT, -ECONNRESET, LR_EEOF (the store may
 * have applied it); LR_EUNAVAIL (certainly not sent); LR_EAUTH; LR_EBADREPLY.
 * Decorators. A backend marked `decorator` is named "NAME+INNER://..." and
 * wraps the backend INNER (never another decorator): the core calls the
 * decorator's ops, which forward to INNER's ops on an INNER backend the
 * decorator created itself (lr__backend_find gives INNER's ops). The inner
 * backend completes requests with lr__lease_complete() as always; that call
 * first offers the result to the manager's ops->intercept (the only hook the
 * core has for this). intercept() returns false to let the core handle the
 * result at once, or true when it took the result: it then owns the lease's
 * request until it hands a result on with lr__lease_deliver(), from a later
 * loop phase (a timer), or until the core calls cancel(), after which it must
 * never deliver. While it holds a result the inner backend is done with the
 * lease, so the decorator may use l->req.link and l->req.seq itself.
 * Layer: backends know the core's lease fields they encode (name, token, ttl,
 * meta) and this interface; never each other (a decorator knows only the
 * inner backend's ops).
 */
#ifndef LR_BACKEND_INT_H
#define LR_BACKEND_INT_H

#include <leasering/lease.h>
#include "uri_int.h"

enum lr__req_kind {
    LR_OP_NONE = 0,
    LR_OP_ACQUIRE,
    LR_OP_RENEW,
    LR_OP_RELEASE,
    LR_OP_BREAK,  /* end whoever's lease is on the name, within l->break_ms */
    LR_OP_CHANGE, /* held by l->token: make l->next_token the owner */
    LR_OP_INSPECT, /* read who holds l->name into lr__inspect_out(l); no lease:
                    * l is the carrier of lr_manager_inspect (never held) */
};

/* What an LR_OP_INSPECT fills before it completes with status 0 (it starts
 * zeroed, ttl_ms -1). Strings are NUL-terminated; @meta holds "key\0value\0"
 * pairs, leasering's own fields (owner, fence, identity, session) excluded;
 * pairs that do not fit are left out. */
struct lr__inspect_out {
    int held;
    uint64_t fence;
    int64_t ttl_ms;
    size_t meta_len;
    char token[33];
    char identity[LR_IDENTITY_MAX + 1];
    char meta[LR_META_MAX];
};

/* The record of @l's LR_OP_INSPECT request (NULL for any other lease). */
struct lr__inspect_out *lr__inspect_out(struct lr_lease *l);
/* Add one metadata pair to @o; false (nothing added) if it does not fit. */
bool lr__inspect_add_meta(struct lr__inspect_out *o, const char *k, size_t kl, const char *v,
                          size_t vl);
/* The manager's identity (lr_manager_opts.identity), and its length. */
const char *lr__manager_identity(const struct lr_manager *m, size_t *len);

struct lr__result {
    int status;
    uint64_t fence;        /* acquire success */
    const char *holder;    /* conflict: the holder's identity, or its owner token when the
                            * store has no identity for it (not NUL-terminated), or NULL */
    size_t holder_len;
    int64_t holder_ttl_ms; /* conflict: remaining TTL, or -1 */
};

struct lr__backend;

/* What a backend's gauges() reports. */
struct lr__gauges {
    uint32_t up;        /* connections ready to carry requests */
    uint32_t in_flight; /* lease requests sent and not yet answered */
    bool unreachable;   /* no connection up that should be, or the last connect failed */
};

struct lr__backend_ops {
    const char *scheme;
    bool decorator;      /* "scheme+INNER://": wraps another backend */
    uint32_t min_ttl_ms; /* a decorator's are unused: the inner backend's apply */
    uint32_t max_ttl_ms;
    /* Renewal grid points a second when the user sets no renew_coalesce_ms
     * (0: the core's default, 50). A store that sends one request per
     * renewal pays a send and a wakeup per grid point and connection, so it
     * may ask for a coarser grid: more renewals per point share them. */
    uint32_t grid_points_per_sec;
    /* Setup: may allocate, resolve, start connecting. */
    int (*create)(struct lr__backend **out, struct lr_manager *m, const struct lr__uri *uri);
    int (*submit)(struct lr__backend *b, struct lr_lease *l);
    void (*cancel)(struct lr__backend *b, struct lr_lease *l);
    /* Close connections; call done(m) from the loop when nothing is in flight. */
    void (*close)(struct lr__backend *b, void (*done)(struct lr_manager *m));
    void (*free)(struct lr__backend *b);
    /* Optional (decorators): see every result before the core; true = taken. */
    bool (*intercept)(struct lr__backend *b, struct lr_lease *l, const struct lr__result *r);
    /* The connections now, for lr_manager_stats and /healthz: read from the
     * backend's own state (no counter to keep in step), O(connections),
     * allocates nothing. A backend without it reports nothing (all 0). */
    void (*gauges)(struct lr__backend *b, struct lr__gauges *g);
};

extern const struct lr__backend_ops lr__mem_backend;
extern const struct lr__backend_ops lr__redis_backend;
extern const struct lr__backend_ops lr__rediss_backend;
extern const struct lr__backend_ops lr__unix_backend;
extern const struct lr__backend_ops lr__redis_sentinel_backend;
extern const struct lr__backend_ops lr__rediss_sentinel_backend;
extern const struct lr__backend_ops lr__redis_cluster_backend;
extern const struct lr__backend_ops lr__azblob_backend;
extern const struct lr__backend_ops lr__cosmos_backend;
extern const struct lr__backend_ops lr__etcd_backend;
extern const struct lr__backend_ops lr__chaos_backend;

/* The backend for URI scheme @scheme (a decorator's: "chaos+redis") in *ops,
 * and in *store the one that talks to the store (the same, or the wrapped one).
 * Returns 0; -EPROTONOSUPPORT unknown scheme; -EINVAL a decorator wrapping
 * nothing or another decorator. */
int lr__backend_find(const char *scheme, const struct lr__backend_ops **ops,
                     const struct lr__backend_ops **store);

/* A backend that keeps requests waiting locally (flow control: a bounded
 * window in flight per connection) calls this when it actually hands @l's
 * request to the connection -- encodes it into the output buffer that leaves
 * in this loop pass -- with the loop's clock then (@now_ns, never later than
 * the real send). Validity, the renewal latency and the request timeout
 * count from this moment, so waiting behind the window costs the lease no
 * validity. submit() stamps the submit time first, which is right as is for
 * a backend that sends what it is given at once. */
static inline void lr__lease_sent(struct lr_lease *l, uint64_t now_ns)
{
    l->sent_ns = now_ns;
}

/* Core entry points for backends. */
void lr__lease_complete(struct lr_lease *l, const struct lr__result *r);
/* For decorators: hand a result to the core, bypassing intercept(). @r and
 * what it points to need live only during the call. */
void lr__lease_deliver(struct lr_lease *l, const struct lr__result *r);
struct lr_loop *lr__manager_loop(const struct lr_manager *m);
const struct lr_manager_opts *lr__manager_opts(const struct lr_manager *m);
/* How long a success keeps a lease of @ttl_ms valid, from the send of the
 * request that got it: ttl * (1 - drift) - margin (ms, not below 0). The one
 * formula: the core's validity and a backend that serves many leases from
 * one request (Redis sessions) must agree on it. */
uint64_t lr__validity_keep_ms(const struct lr_manager_opts *o, uint32_t ttl_ms);
struct lr_manager_stats *lr__manager_stats(struct lr_manager *m);
/* Refresh the stats' backend gauges (connections_up, ...) from ops->gauges. */
void lr__manager_read_gauges(struct lr_manager *m);
/* A connection-level failure, for lr_manager_last_error and the store_error
 * callback: @status (negative) and a printf-style one-line text naming the
 * endpoint and the cause (never a secret). Allocates nothing. */
void lr__manager_store_error(struct lr_manager *m, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Uniform random 64 bits from the manager's generator (not for secrets). */
uint64_t lr__manager_rand(struct lr_manager *m);
/* Milliseconds of exponential backoff with full jitter for attempt @n (0-based). */
uint64_t lr__manager_backoff(struct lr_manager *m, unsigned n);

/*
 * Session leases: one store-side renewal keeps many leases (etcd's leases,
 * where one keep-alive keeps every key attached to it). The backend embeds
 * a struct lr__session per store session and drives it: it sends the
 * session's renewals on its own schedule (the core arms no renewal timer
 * for a lease on a session), and reports each outcome here. The core reads
 * a session lease's validity from its session (lr_lease_valid_until,
 * lr_lease_state, lr_lease_remaining_ms, the stop point), so a renewal costs
 * O(1) whatever the number of leases on it; it ends every lease of the
 * session at once when the session's validity runs out (the session's own
 * urgent timer at its stop point) or the backend says the session is gone.
 *
 * Order for an acquisition: the backend puts a lease on its session with
 * lr__session_add() just before lr__lease_complete() of a successful
 * LR_OP_ACQUIRE; the lease's validity is then the session's (which counts
 * from a renewal sent before the acquisition, so it is never longer than the
 * acquisition's own). A lease leaves its session when it is lost, released,
 * deinitialised, or its acquisition is judged too late. Per-lease requests
 * (LR_OP_RENEW from lr_lease_renew, RELEASE, CHANGE, BREAK, INSPECT) still go
 * through submit(); a backend answers a session lease's LR_OP_RENEW from a
 * session renewal sent after the request (calling lr__session_renewed first).
 */
struct lr__session {
    struct lr_timer timer;  /* the stop point: every lease on it is lost there */
    struct lr_manager *mgr;
    uint64_t valid_until;   /* ms, loop clock; 0 before the first renewal */
    uint64_t last_renewed;  /* ms, when the last renewal was answered */
    uint32_t ttl_ms;        /* the store-side TTL the session is renewed with */
    uint32_t leases;        /* leases on it now */
    int32_t jeopardy;       /* 0, or the status of the failure that put it in jeopardy */
};

/* Prepare @s for leases of @ttl_ms on @m (no validity yet). */
void lr__session_init(struct lr__session *s, struct lr_manager *m, uint32_t ttl_ms);
/* Stop @s's timer; leases still on it leave it silently (they are being
 * forgotten: lr_manager_close, or the backend is freed). */
void lr__session_fini(struct lr__session *s);
/* A renewal of @s that the store confirmed, whose first request was sent at
 * @sent_ns (loop clock): every lease on it is valid until sent + the keep
 * (lr__validity_keep_ms). Judged on a fresh clock: an answer that comes
 * after the old stop point renews nothing -- the leases on it are lost
 * (LR_EEXPIRED), the session stays usable for new leases with the new
 * validity -- and the call returns false. Ends a jeopardy (leases back to
 * held). Counts one renewal per lease on it in the manager's stats. */
bool lr__session_renewed(struct lr__session *s, uint64_t sent_ns);
/* A renewal of @s failed without a verdict (timeout, connection lost,
 * store unavailable: @status): the leases on it go to jeopardy (their
 * jeopardy callbacks) and stay valid until the session's validity ends. */
void lr__session_failed(struct lr__session *s, int status);
/* The store says the session is gone (@status, normally LR_ELOST): every
 * lease on it is lost now, and its validity is cleared. */
void lr__session_lost(struct lr__session *s, int status);
/* Put @l (its acquisition succeeded, not completed yet) on @s. */
void lr__session_add(struct lr__session *s, struct lr_lease *l);
/* The held lease named @name (@len bytes) on @s is not ours any more (a
 * break reported by the store): lose it with @status. O(leases of the
 * manager); false when no lease of that name is on @s. */
bool lr__session_lose_name(struct lr__session *s, const char *name, size_t len, int status);

/* Lowercase hex of @n bytes into @out (2n chars, no NUL). */
static inline void lr__hex(const uint8_t *in, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 15];
    }
}

#endif
