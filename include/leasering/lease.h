/* SPDX-License-Identifier: MIT */
/*
 * leasering/lease.h - distributed leases held and renewed from one loop.
 *
 * A manager binds a loop to a lease store (a backend made from a URI:
 * "mem://", "redis://..."; see backend.h). Leases are caller-owned structs
 * (embed them in your job records) or made by lr_lease_new(); either way the
 * manager counts them against its fixed capacity.
 *
 * The safety rule. A lease's local validity runs from the moment its
 * acquire/renew request was *sent*:
 *     valid_until = sent_at + ttl * (1 - drift) - margin      (monotonic ms)
 * The store counts the TTL from when it *received* the request, so as long as
 * clock rates differ by less than @drift nobody else can take the lease
 * before valid_until. What is guaranteed, exactly:
 *  - The lost callback is timed for valid_until - loss_guard_ms, so while the
 *    loop runs on time it comes *before* valid_until, by a timer, even if the
 *    network is silent. Whenever a pass starts late (a slow callback, SIGSTOP,
 *    CPU throttling, a host that did not call lr_loop_process), every lease
 *    whose guard point has passed is reported lost before any reply of that
 *    pass is looked at.
 *  - Every decision about validity reads a fresh CLOCK_MONOTONIC: a reply is
 *    accepted as "renewed"/"acquired" only if, when it is handled, the lease
 *    is still inside valid_until - loss_guard_ms and the new validity is in
 *    the future; otherwise the lease is lost (LR_EEXPIRED).
 *  - lr_lease_state() and lr_lease_remaining_ms() read the clock themselves:
 *    they never report a lease as held past valid_until - loss_guard_ms, even
 *    to host code that has not run a pass for a long time.
 * What no library can promise: a process frozen between its check and its
 * action (stopped after lr_lease_remaining_ms() said 500 ms, resumed a minute
 * later) acts late. So: check lr_lease_remaining_ms() right before touching
 * the guarded resource, keep the action shorter than what it returned, and
 * pass lr_lease_fence() to the resource so that it can refuse a stale holder.
 *
 * States: IDLE -> ACQUIRING -> HELD <-> JEOPARDY -> LOST, and RELEASING -> IDLE.
 * JEOPARDY means a renewal failed or is overdue: the lease is still held, the
 * holder should prepare to stop. A timeout or a dropped connection is
 * ambiguous (the store may have applied the request) and is never read as
 * "lost": only the store's definite "not yours" (LR_ELOST) or the local
 * deadline (LR_EEXPIRED, or LR_EUNAVAIL when the store could not be reached
 * at all) makes a lease lost.
 *
 * Every acquisition carries a fencing token that grows strictly per name
 * across holders: pass it to the resources the lease guards.
 *
 * Session leases (stores whose one renewal keeps many leases: etcd's
 * default mode, see backend.h): the store session is renewed instead of each
 * lease, so a lease on a session has no renewal of its own. Its validity,
 * lr_lease_valid_until() and lr_lease_last_renewed() are the session's; all
 * leases of a session go to jeopardy, back, or are lost together (each with
 * its own callback); a session renewal calls no `renewed` callback (only the
 * end of a jeopardy and lr_lease_renew() do) and counts one renewal per lease
 * in the manager's stats (lr_manager_stats: renewals; renew_requests counts
 * the session renewals), not in lr_lease_stats(); lr_lease_set_auto_renew()
 * does not stop the session's renewals. Everything else (acquire, release,
 * change, break, fencing, the guarantees above) is as for any lease.
 *
 * Callbacks run on the loop thread, never inside the call that caused them.
 * A callback may call any function here on any lease, including releasing,
 * re-acquiring or deinitialising its own lease.
 *
 * Allocation: lr_manager_new, lr_lease_init (a name arena chunk now and
 * then), lr_lease_new, lr_lease_set_meta and lr_manager_inspect (an
 * operator's read, one block per inspection) allocate; acquire, renew,
 * release, reply handling, rescheduling and callbacks never do.
 */
#ifndef LEASERING_LEASE_H
#define LEASERING_LEASE_H

#include <leasering/common.h>
#include <leasering/timer.h>

#ifdef __cplusplus
extern "C" {
#endif

struct lr_loop;
struct lr_manager;
struct lr_lease;

/* Longest lease name, in bytes, excluding the terminating NUL. */
#define LR_NAME_MAX 127
/* Longest holder a backend reports from a conflict reply: the holder's
 * identity, or its 32-hex-digit owner token when the store has no identity
 * for it (a value written by an older leasering, or by another program). */
#define LR_HOLDER_MAX 47
/* Longest manager identity (lr_manager_opts.identity), in bytes, excluding
 * the terminating NUL: what a conflict can report whole. */
#define LR_IDENTITY_MAX LR_HOLDER_MAX

enum lr_lease_state {
    LR_LEASE_IDLE = 0,  /* not held: never acquired, released, or acquire failed */
    LR_LEASE_ACQUIRING, /* acquire attempts under way */
    LR_LEASE_HELD,      /* held, renewals on schedule */
    LR_LEASE_JEOPARDY,  /* held, but a renewal failed or is overdue */
    LR_LEASE_RELEASING, /* release sent, waiting for the store */
    LR_LEASE_LOST,      /* lost (terminal until acquired again) */
};

/*
 * What the manager tells you. Every member is optional (NULL = not told).
 * @status and @reason are 0 or a negative code (lr_strerror()).
 */
struct lr_lease_cbs {
    /* The lease is held; lr_lease_fence() is its new fencing token. */
    void (*acquired)(struct lr_lease *l);
    /* Acquire gave up: LR_ECONFLICT (held by someone else; see lr_lease_holder),
     * -ETIMEDOUT, LR_EUNAVAIL (store unreachable), LR_EAUTH, LR_EBADREPLY, ... */
    void (*acquire_failed)(struct lr_lease *l, int status);
    /* A renewal succeeded (also after jeopardy: the lease is safe again). */
    void (*renewed)(struct lr_lease *l);
    /* A renewal failed or is overdue; the lease is still held until
     * lr_lease_valid_until(). @status says why (-ETIMEDOUT, LR_EUNAVAIL, ...). */
    void (*jeopardy)(struct lr_lease *l, int status);
    /* The lease is lost: LR_ELOST (the store says someone else holds it),
     * LR_EEXPIRED (local validity ran out before a renewal succeeded), or
     * LR_EUNAVAIL (it ran out while the store could not be reached). Stop
     * using the guarded resource before returning. */
    void (*lost)(struct lr_lease *l, int reason);
    /* A release finished: 0, or LR_ELOST if the store said it was no longer
     * ours, or a transport error (the store will expire it by its TTL). */
    void (*released)(struct lr_lease *l, int status);
    /* lr_lease_break() finished: 0 (whatever lease was on the name ends
     * within the break period; 0 also when there was none), or an error. */
    void (*broken)(struct lr_lease *l, int status);
    /* lr_lease_change() finished: 0 (the lease is held under a new owner
     * token from now on) or an error that certainly did not apply it (not
     * sent, refused: the old token still holds). Ambiguous outcomes are
     * retried, not reported (see lr_lease_change).
     * If the store says the lease is not ours any more, the lease is lost
     * instead: the lost callback (LR_ELOST) comes, not this one. */
    void (*changed)(struct lr_lease *l, int status);
};

struct lr_manager_opts {
    uint32_t ttl_ms;             /* default lease TTL; default 10000 */
    double renew_fraction;       /* renew this far into the TTL after a send; default 1/3 */
    double renew_jitter;         /* +- this fraction of the renew interval, per lease; default 0.1 */
    double drift;                /* allowed clock-rate difference; default 0.01 */
    uint32_t margin_ms;          /* subtracted from validity; default 2 */
    uint32_t retry_base_ms;      /* first backoff step; default 50 */
    uint32_t retry_cap_ms;       /* largest backoff step; default 2000 */
    uint32_t retry_max;          /* acquire attempts at most (0 = until the timeout) */
    uint32_t request_timeout_ms; /* a request unanswered this long after its send, with
                                  * nothing at all heard from the store meanwhile, kills
                                  * its connection; default min(2000, ttl/4) */
    uint32_t connections;        /* connections per endpoint; default 1 */
    uint32_t max_leases;         /* capacity, fixed at creation; default 1024 */
    uint32_t batch_max;          /* renewals, or acquisitions without metadata, per batched
                                  * request (1 = no batching); default 64 */
    uint32_t renew_coalesce_ms;  /* renewal times are rounded up to a multiple of this, so
                                  * renewals share wakeups and batches; default 20 ms (a
                                  * budget of ~50 grid points, ~100 loop wake-ups a
                                  * second, whatever the lease count; azblob: 100 ms,
                                  * its renewals share sends, not requests), less when that
                                  * would take over 1/16 of the time a renewal has in
                                  * hand for retries (short TTLs), at least 1. Never
                                  * delays past validity; at most ttl/10. */
    uint32_t inflight_max;       /* flow control: lease requests (a batch counts each name)
                                  * in flight per connection; the rest wait in the process,
                                  * renewals first, and their validity counts from their
                                  * send, not from the wait. Default the smaller of 4096
                                  * and request_timeout_ms * 25 (a store answering a key in
                                  * 10 us then queues them for at most a quarter of the
                                  * request timeout) */
    uint32_t loss_guard_ms;      /* lost fires this long before valid_until, and
                                  * lr_lease_remaining_ms() counts down to it; default
                                  * the larger of 2 ms and 1% of the lease's TTL */
    const struct lr_lease_cbs *cbs; /* default callbacks for leases that set none */
    /* Told once per connection-level failure (refused, name not resolved,
     * TLS alert, authentication refused, server error...), with a one-line
     * text naming the endpoint and the cause, on the loop thread. Leases each
     * see only their own status (often LR_EUNAVAIL); this says why. Optional.
     * The same text also goes to the log function (lr_set_log, log.h). */
    void (*store_error)(struct lr_manager *m, int status, const char *text, void *arg);
    void *store_error_arg;
    /* Who this manager is, for people: stored with every lease it acquires
     * (Redis: the hash field "identity"; Azure Blob: the blob metadata
     * "identity"; mem://: its table), reported to a manager that meets the
     * lease held (lr_lease_holder) and by lr_manager_inspect. Copied at
     * lr_manager_new. 1..LR_IDENTITY_MAX bytes, no control bytes (below
     * 0x20, 0x7f): -EINVAL otherwise. NULL: "HOST:PID" from gethostname()
     * and getpid() (the host name cut so that ":PID" fits). */
    const char *identity;
};

/* Per-lease counters (lr_lease_stats()). */
struct lr_lease_stats {
    uint32_t acquisitions;   /* successful acquires */
    uint32_t renewals;       /* successful renewals */
    uint32_t renew_failures; /* failed or timed-out renewals */
    uint32_t conflicts;      /* acquire attempts answered "held by someone else" */
};

/* Per-lease options (lr_lease_init). Zero-initialise. */
struct lr_lease_opts {
    uint32_t ttl_ms;               /* 0: the manager's */
    const struct lr_lease_cbs *cbs; /* NULL: the manager's */
    int no_auto_renew;             /* 1: never renew by itself (lr_lease_renew only) */
};

/* Private: the header every store request carries (pipelines link it). */
struct lr__session; /* backend_int.h */

struct lr__reqhdr {
    struct lr_list link; /* on a connection's encode queue or pending FIFO */
    uint32_t seq;        /* pipeline sequence the reply will carry */
    uint16_t batch;      /* index inside a batched request */
    uint8_t kind;        /* what is in flight */
    uint8_t conn;        /* which connection */
};

/*
 * Caller-embeddable; everything after @data is private. Kept small because a
 * process may hold a million of these (the _Static_assert in lease.c bounds
 * it): the name lives in the manager's name arena, and fields that only
 * matter in some states share storage. Lists the lease is on: @timer on the
 * loop's wheel, @req on one connection's queues, @mgr_link on its manager's
 * list of leases.
 */
struct lr_lease {
    void *data; /* yours */
    /* private: everything below. What renewals touch comes first. */
    struct lr_timer timer;        /* next action: renew, retry, attempt, or expiry */
    struct lr__reqhdr req;        /* the one store request this lease may have in flight */
    struct lr_manager *mgr;
    const struct lr_lease_cbs *cbs;
    const char *name;             /* NUL-terminated, in the manager's name arena */
    uint64_t sent_ns;             /* when the in-flight request was handed to the store's
                                   * connection (lr__lease_sent), or submitted */
    uint32_t ttl_ms;
    uint16_t flags;
    uint8_t state;
    uint8_t name_len;
    union {
        struct {                  /* meaningful while held */
            uint64_t valid_until; /* ms */
            uint8_t next_token[16]; /* lr_lease_change: the token being installed */
        };
        struct {                  /* meaningful while not held, after a conflict */
            char holder[20];      /* 32 hex digits packed to 16 bytes, or text */
            int32_t holder_ttl_ms;
        };
    };
    uint8_t token[16];            /* owner token of the current acquisition */
    union {
        uint64_t last_renewed;    /* ms */
        struct lr__session *sess; /* with LR_LF_SESSION: the store session keeping it,
                                   * whose last_renewed is the lease's */
    };
    struct lr_lease_stats stats;
    int32_t last_error;
    uint16_t meta_len;
    uint8_t attempt;
    /* cold: */
    struct lr_list mgr_link;      /* on the manager's list of leases */
    char *meta;                   /* "key\0value\0..." (lr_lease_set_meta) */
    uint64_t fence;
    uint64_t acquire_ns;          /* when lr_lease_acquire was called (loop clock) */
    uint32_t break_ms;            /* lr_lease_break: the break period asked for */
    uint32_t acquire_wait_ms;     /* its timeout: it gives up acquire_wait_ms after */
};

/*
 * lr_manager_new - create a manager on @loop for the store named by @uri.
 * URIs: "mem://[name]" (in-process store shared by every manager in the
 * process that uses the same name), "redis://[user[:password]@]host[:port][/db][?prefix=P]",
 * and the others in backend.h, among them "chaos+URI" (faults for tests).
 * Connections to the store start at once (asynchronously). A host name is
 * looked up off the loop thread, again at every reconnect (so a DNS-based
 * failover is followed); a numeric address is used as is. A name that does
 * not resolve is not an error here: requests complete with LR_EUNAVAIL and
 * lr_manager_last_error() / the store_error callback say "name not resolved".
 * Returns: 0; -EINVAL for a NULL argument or an option out of range (TTL too
 * short or long for the backend, renew_fraction not in (0, 0.9], drift not in
 * [0, 0.5), request timeout not below ttl/2, ...); -EPROTONOSUPPORT for an
 * unknown scheme; -EINVAL for a malformed URI; -ENOMEM; an eventfd() error
 * (the resolver's).
 * Allocates: yes.  Context: the loop's thread.
 */
LR_API int lr_manager_new(struct lr_manager **m, struct lr_loop *loop, const char *uri,
                          const struct lr_manager_opts *opts);

/*
 * lr_manager_close - stop using the store: every lease is forgotten (timers
 * stopped, requests abandoned, no more callbacks; held leases simply expire
 * at the store -- call lr_manager_release_all() first and wait for the
 * released callbacks to give them back), connections are closed, then
 * @done(m, arg) is called from the loop. The close never waits for the
 * store: nothing is asked of it and what is in flight is cancelled, so @done
 * comes within a few loop passes even when the store stopped answering
 * (paused, partitioned; tests/test_redis_close.c holds Redis to 300 ms).
 * Free the manager in or after @done.
 * What leases own is freed here (their metadata); the lease structs stay
 * yours: caller-owned ones need nothing more (lr_lease_deinit is allowed and
 * harmless), ones from lr_lease_new still need lr_lease_free. Called from
 * host code between passes of an embedded loop, the close completes on the
 * following lr_loop_process calls (lr_loop_timeout_ms() says 0 until its
 * requests reach the kernel).
 * Returns: 0, or -EALREADY if already closing.  Context: the loop's thread.
 */
LR_API int lr_manager_close(struct lr_manager *m, void (*done)(struct lr_manager *m, void *arg),
                            void *arg);

/* lr_manager_free - free a manager after its close completed (or that never
 * connected anything: a manager whose lr_manager_new failed is never returned). */
LR_API void lr_manager_free(struct lr_manager *m);

/*
 * lr_manager_release_all - release every held (or being acquired) lease in one
 * pipelined batch, for shutdown. Each gets its released callback.
 * Returns: the number of leases being released.  Allocates: never.
 */
LR_API int lr_manager_release_all(struct lr_manager *m);

/*
 * lr_manager_last_error - the last connection-level failure the store met
 * (see lr_manager_opts.store_error): returns its status (0 if none yet) and
 * copies its text into @buf (NUL-terminated, truncated to @len; may be NULL).
 */
LR_API int lr_manager_last_error(const struct lr_manager *m, char *buf, size_t len);

/* What lr_manager_inspect found for a name, valid during its callback only. */
struct lr_inspect {
    const char *name;      /* the name asked about */
    int held;              /* 1: someone holds it (or held it and a break is running
                            * out); 0: free -- nothing below is set */
    const char *holder;    /* the identity if the store has one, else the token */
    const char *identity;  /* the holder's identity ("" if the store has none: a
                            * lease written by an older leasering) */
    const char *token;     /* the holder's owner token, 32 hex digits ("" if the
                            * store does not say; a broken lease's is "") */
    uint64_t fence;        /* the fencing token of the holder's acquisition (0 if
                            * the store does not say) */
    int64_t ttl_ms;        /* remaining TTL as the store counts it, or -1 when the
                            * store does not say (Azure Blob never does) */
    const char *meta;      /* the lease's metadata, "key\0value\0" pairs... */
    size_t meta_len;       /* ...of this many bytes in all (0: none) */
};

/*
 * lr_manager_inspect - read, from the store, who holds @name (1..LR_NAME_MAX
 * bytes), without taking it: held or free, the holder's identity and owner
 * token, the fence, the remaining TTL and the metadata. The answer arrives
 * as @done(@arg, status, info) on the loop thread, never inside this call:
 * status 0 with @info filled (info->held says free or held), or an error
 * with @info NULL: LR_EUNAVAIL (store unreachable), -ETIMEDOUT,
 * -ECONNRESET, LR_EEOF, LR_EAUTH, LR_ESTORE, LR_EBADREPLY, -ECANCELED (the
 * manager was closed first: @done comes before the close's own callback).
 * It is one read of the store, not a lease: it needs no capacity
 * (max_leases), and a chaos+ decorator passes it through untouched. Redis
 * (every form: unix, rediss, sentinel, cluster -- routed by the name's
 * slot): one script call reading the lease hash and its PTTL (in session
 * mode, the PTTL of the holder's session; a name whose session is gone is
 * free). Azure Blob: one HEAD of the blob (lease state and metadata).
 * Returns: 0; -EINVAL (NULL argument, empty name); -ENAMETOOLONG;
 * -ECANCELED (manager closing); -ENOMEM; a store's synchronous refusal
 * (LR_EUNAVAIL).
 * Allocates: yes, one block of about 4.5 KiB per inspection in flight, freed
 * after @done returns (an operator path, not the renewal path).
 * Context: the loop's thread, callbacks included.
 */
LR_API int lr_manager_inspect(struct lr_manager *m, const char *name,
                              void (*done)(void *arg, int status, const struct lr_inspect *info),
                              void *arg);

/* The identity @m stores with its leases (lr_manager_opts.identity). */
LR_API const char *lr_manager_identity(const struct lr_manager *m);

/* The loop a manager runs on. */
LR_API struct lr_loop *lr_manager_loop(const struct lr_manager *m);

/*
 * lr_lease_init - prepare caller-owned @l, named @name (copied; 1..LR_NAME_MAX
 * bytes), for use with @m. The lease starts IDLE. The copy of the name goes
 * to the manager's name arena (its length rounded up to 8 bytes; a name freed
 * by lr_lease_deinit is reused by a later name of the same rounded length).
 * Returns: 0; -EINVAL (NULL argument, empty name), -ENAMETOOLONG (name too
 * long), -ERANGE (TTL out of range for the backend), -ENOSPC (the manager's
 * capacity is used up), -ENOMEM.
 * Allocates: a 64 KiB arena chunk when the current one is full (setup: never
 * on the renewal path).  Context: the loop's thread.
 */
LR_API int lr_lease_init(struct lr_manager *m, struct lr_lease *l, const char *name,
                         const struct lr_lease_opts *opts);

/*
 * lr_lease_deinit - forget @l: its timer stops, an in-flight request is
 * abandoned, no more callbacks; metadata is freed, the name goes back to
 * the manager's arena (lr_lease_name() reads "" from then on). A held lease is NOT
 * released (it expires at the store): release it first if you can wait.
 * Allocates: never.  Context: the loop's thread, callbacks included.
 */
LR_API void lr_lease_deinit(struct lr_lease *l);

/* lr_lease_new / lr_lease_free - lr_lease_init / lr_lease_deinit on memory the
 * library allocates. Same returns as lr_lease_init, plus -ENOMEM. */
LR_API int lr_lease_new(struct lr_manager *m, struct lr_lease **l, const char *name,
                        const struct lr_lease_opts *opts);
LR_API void lr_lease_free(struct lr_lease *l);

/*
 * lr_lease_set_meta - attach key/value metadata, written to the store with the
 * next acquisition. Setting an existing key replaces its value; value NULL
 * removes it. At most LR_META_MAX bytes in all (keys + values + 2 per pair).
 * Returns: 0; -EINVAL (empty key; "owner", "fence" or "identity", the
 * store's own fields; a key or value with a NUL or not valid for the
 * store); -EMSGSIZE (too large); -EBUSY (the lease is not idle);
 * -ENOMEM.  Allocates: yes (the metadata block).
 */
#define LR_META_MAX 4096
LR_API int lr_lease_set_meta(struct lr_lease *l, const char *key, const char *value);
/* The value of metadata @key, or NULL. */
LR_API const char *lr_lease_meta(const struct lr_lease *l, const char *key);

/*
 * lr_lease_acquire - acquire @l, retrying with exponential backoff and full
 * jitter while the store answers "held by someone else" or is unavailable,
 * until @timeout_ms passes (0: one attempt, like lr_lease_try_acquire).
 * The outcome arrives as the acquired or acquire_failed callback.
 * Returns: 0; -EBUSY if the lease is not IDLE or LOST; -ECANCELED if the
 * manager is closing.  Allocates: never.
 */
LR_API int lr_lease_acquire(struct lr_lease *l, uint32_t timeout_ms);
/* lr_lease_try_acquire - one attempt; same as lr_lease_acquire(l, 0). */
LR_API int lr_lease_try_acquire(struct lr_lease *l);

/*
 * lr_lease_release - give @l back. Idempotent: 0 with nothing to do when the
 * lease is IDLE, LOST or already RELEASING. While ACQUIRING, the acquisition
 * is abandoned (and given back if it succeeds meanwhile). The released
 * callback follows whenever a release was started.
 * Returns: 0.  Allocates: never.
 */
LR_API int lr_lease_release(struct lr_lease *l);

/*
 * lr_lease_renew - renew now instead of on schedule.
 * Returns: 0 (also when a renewal is already in flight); -EBUSY if the lease
 * is not HELD or in JEOPARDY.  Allocates: never.
 */
LR_API int lr_lease_renew(struct lr_lease *l);

/*
 * lr_lease_break - end the lease on @l's name, whoever holds it, as an
 * operator would to evict a stuck holder. The holder's next renewal is
 * refused (it loses with LR_ELOST). Nobody can acquire the name before the
 * later of @break_period_ms and the holder's remaining TTL at the store: a
 * break never cuts a lease short, since its holder may still be acting on it
 * until that TTL ends (so period 0 means "as soon as the holder's TTL
 * allows", never "at once"). @l need not hold the lease (it usually does
 * not) and must be IDLE or LOST. The outcome arrives as the broken callback.
 * Azure: the break ends with the holder's remaining lease time (Azure never
 * holds a break longer than the lease it breaks, so a longer period is not
 * kept there).
 * Returns: 0; -EBUSY (@l is acquiring, held or releasing); -ERANGE (period
 * above 60 s); -ECANCELED (manager closing).  Allocates: never.
 */
LR_API int lr_lease_break(struct lr_lease *l, uint32_t break_period_ms);

/*
 * lr_lease_change - keep holding @l under a fresh owner token (for handing a
 * lease to another component of the same holder, or rotating a token that
 * may have leaked). The fencing token does not change. The outcome arrives
 * as the changed callback; renewals continue meanwhile. An ambiguous outcome
 * (timeout, dropped connection: the store may have applied it) is not
 * reported: the same change is sent again -- the stores accept a change to
 * the token that is already current -- until it is definite, while the lease
 * is in jeopardy and renewals wait; if validity runs out first, the lease is
 * lost. changed(l, status != 0) therefore means "certainly not applied".
 * Returns: 0; -EBUSY (not HELD, or another request of @l is in flight).
 * Allocates: never.
 */
LR_API int lr_lease_change(struct lr_lease *l);

/* lr_lease_set_auto_renew - turn automatic renewal on (default) or off. With
 * it off the lease is lost at valid_until unless you call lr_lease_renew. */
LR_API void lr_lease_set_auto_renew(struct lr_lease *l, int on);

/* The lease's state. Reads the clock: a lease that is HELD or in JEOPARDY by
 * the last pass but past valid_until - loss_guard_ms now reads as LOST (the
 * lost callback follows on the next pass). */
LR_API enum lr_lease_state lr_lease_state(const struct lr_lease *l);
LR_API const char *lr_lease_state_name(enum lr_lease_state s);
/* The lease's name: valid until lr_lease_deinit, and for a lease detached by
 * lr_manager_close, until lr_manager_free (the manager's arena holds it). */
LR_API const char *lr_lease_name(const struct lr_lease *l);
/* Fencing token of the current (or last) acquisition; 0 before the first. */
LR_API uint64_t lr_lease_fence(const struct lr_lease *l);
/* Local validity deadline (lr_loop_now_ms units); 0 when not held. */
LR_API uint64_t lr_lease_valid_until(const struct lr_lease *l);
/*
 * lr_lease_remaining_ms - from a fresh CLOCK_MONOTONIC reading, how many
 * milliseconds the holder may still act on @l: valid_until - loss_guard - now,
 * and 0 when the lease is not held or that point has passed. Call it right
 * before each touch of the guarded resource (and pass lr_lease_fence() along):
 *     if (lr_lease_remaining_ms(l) > expected_work_ms) do_work(lr_lease_fence(l));
 * Allocates: never.  Context: any time on the loop's thread, callbacks included.
 */
LR_API int64_t lr_lease_remaining_ms(const struct lr_lease *l);
/* Loop time of the last successful acquire or renewal; 0 if none. */
LR_API uint64_t lr_lease_last_renewed(const struct lr_lease *l);
/* After a conflict: who holds it, as the store says: the holder manager's
 * identity (lr_manager_opts.identity), or its 32-hex-digit owner token when
 * the store keeps no identity for it (a lease written by an older leasering);
 * "" if the store did not say (Azure Blob when the blob's metadata could not
 * be read), or no conflict was met since the lease was last held or
 * lr_lease_acquire was last called. The report shares storage with fields
 * that matter only while the lease is held: a token or an identity of up to
 * 19 bytes is kept in the lease; a longer identity in a table of the
 * manager's (LR_HOLDER_SLOTS identities, the least recently met replaced
 * first), and when it was replaced since (more distinct long identities met
 * than fit), its first 14 bytes are returned. The string is valid until
 * the next lr_lease_holder call on this thread or the next change to @l,
 * whichever comes first: copy it to keep it. */
#define LR_HOLDER_SLOTS 32
LR_API const char *lr_lease_holder(const struct lr_lease *l);
/* After a conflict (as for lr_lease_holder): the holder's remaining TTL in ms
 * as the store says, at most INT32_MAX, or -1. */
LR_API int64_t lr_lease_holder_ttl_ms(const struct lr_lease *l);
/* The last error this lease met (0 if none). */
LR_API int lr_lease_last_error(const struct lr_lease *l);
LR_API const struct lr_lease_stats *lr_lease_stats(const struct lr_lease *l);

#ifdef __cplusplus
}
#endif
#endif
