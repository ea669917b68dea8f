/* SPDX-License-Identifier: MIT */
/*
 * redis.c - the Redis backend: leases as hashes driven by three Lua scripts
 * over pipelined RESP connections.
 *
 * Keys: "<prefix>{<name>}" is a hash {owner, fence, identity, metadata...}
 * with a PEXPIRE (identity: the holder manager's, named by conflicts and read
 * by inspections, inspect_lua; a hash without one is an older leasering's); the name's fencing counter is its slot's, "<prefix>{<tag>}:fence"
 * (INCR, no expiry, so tokens grow strictly across holders), where <tag> is
 * the short tag of the lease key's Redis Cluster slot (redis_slot.h): the
 * counter and the hash are in one slot, so one script may touch both, in
 * Cluster too. One counter per slot rather than per name: names come and go
 * (unique job names) and would each leave a counter behind for ever; per
 * slot, at most 16384 remain, and every acquisition of a name still gets a
 * larger token than all before it (the slot's counter only grows). Counters
 * that expire instead would need renewals to touch a second key, or a
 * promise that no lease is held longer than the expiry (docs/STORES.md).
 *
 * Connections: all leases share N connections (lease i uses connection
 * i mod N by name hash, so one lease's requests stay in order). A request is
 * queued on its connection's encode queue and encoded in the deferred phase
 * of the loop: renewals that fall due in the same iteration go out as one
 * EVALSHA over up to batch_max keys; everything encoded in an iteration
 * leaves in one send. Replies are matched to a FIFO of sent requests by
 * sequence number, so an abandoned request (lease released or lost
 * meanwhile) is simply unlinked and its reply discarded. A full output buffer
 * leaves requests on the encode queue until a send drains it (backpressure,
 * never malloc). A request unanswered within the request timeout kills and
 * reconnects the connection: a pipeline cannot skip a reply. Requests pending
 * on a dead connection complete as ambiguous; ones never sent as
 * LR_EUNAVAIL. Reconnects back off exponentially with full jitter, and each
 * one looks the host up again (off the loop thread, resolve_int.h), so a
 * DNS-based failover is followed. A unix socket (redis:///PATH, unix:///PATH)
 * has nothing to look up: its address is made once, at create.
 *
 * redis+cluster:// (redis_cluster.c keeps the slot map and the node table;
 * this file routes): every node of the map has its own nconns connections,
 * conns[node * per_node + name hash % per_node], made when the node is
 * first named, each with the full handshake. A request carries its slot
 * (CRC16 of "<prefix>{<name>}") in req.batch while unsent, and goes to the
 * connection of the slot's master; with no master known for it (no map yet,
 * a slot nobody serves) or that master's connection down, it waits on the
 * backend's mapwait list for the next map (one is asked for), within the
 * request timeout. The encoder groups batchable requests by slot (a chain
 * per slot over up to GROUP_MAX of them, in one pass): one EVALSHA per
 * slot, never CROSSSLOT. MOVED updates the map, re-queues the request on the
 * new owner and asks for a map; ASK queues it on the target's askq, sent
 * behind ASKING; TRYAGAIN on a batch re-queues its names on the soloq, sent
 * one per command (each then gets a definite answer, or an ASK). All three
 * are definite "not executed" answers, so sending again is safe. A node's
 * connection lost: in-flight requests are ambiguous as always, queued ones
 * go to mapwait, and a map is asked for; a node the map no longer names
 * stops reconnecting until it is named again. Session mode, ?db= and TLS are
 * refused for a cluster.
 *
 * Server errors (the first word of the reply): NOAUTH, WRONGPASS, NOPERM
 * are refused credentials (LR_EAUTH); READONLY and MOVED mean this is not
 * (any longer) the primary -- a failover demoted it -- so the connection is
 * dropped and made again, and what was in flight on it completes as
 * ambiguous, as for a dropped connection; LOADING, BUSY, MASTERDOWN, TRYAGAIN
 * and CLUSTERDOWN are a store that cannot serve right now (LR_EUNAVAIL, for
 * that request only; on redis+cluster MOVED, ASK and TRYAGAIN are followed
 * as above); OOM is a definite refusal (LR_ESTORE). Every
 * connection-level failure and server error is told, with its text, through
 * lr__manager_store_error.
 *
 * On (re)connect: AUTH, SELECT, the store checks, then SCRIPT LOAD of each
 * script; requests are encoded only once the scripts are loaded.
 * Store checks (a fence is only as durable as the store): CONFIG GET
 * maxmemory-policy, CONFIG GET append*, ROLE, answered before the loads. A
 * policy that may evict any key (allkeys-*) could evict a fence counter and
 * let a later holder get a smaller token: refused (LR_ESTORE, the connection
 * is dropped and tried again later) unless ?allow_eviction=yes. A replica
 * (role "slave") is not the primary: dropped and made again, as READONLY. A
 * Sentinel is no data server: LR_ESTORE. Persistence off (appendonly no),
 * a volatile-* policy, or CONFIG GET refused (renamed, ACL) are told once per
 * manager through lr__manager_store_error, text starting "warning:", and do
 * not stop anything. A NOSCRIPT reply (server
 * restart, SCRIPT FLUSH, failover) reloads the scripts on that connection and
 * re-queues the request, transparently.
 * ?wait=N[&wait_ms=T][&wait_renew=yes]: an encode pass that wrote an
 * acquisition (with wait_renew, a renewal or session renewal) ends with one
 * WAIT N T in the same send, and the writes' successes are held until its
 * reply: N replicas or more, they complete as their replies said; fewer, or
 * an error, as ambiguous (-ETIMEDOUT, told once per WAIT through
 * lr__manager_store_error). Details in "replicas confirm" below.
 * Layer: RESP + the backend interface; knows no other backend.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>
#include <arpa/inet.h>

#include <leasering/error.h>
#include "alloc_int.h"
#include "backend_int.h"
#include "lease_int.h"
#include "log_int.h"
#include "net_int.h"
#include "fmt.h"
#include "redis_cluster.h"
#include "redis_scripts.h"
#include "redis_sentinel.h"
#include "redis_slot.h"
#include "resolve_int.h"
#include "resp.h"
#include "tls_int.h"

#define OUT_BYTES (256u * 1024u)
#define PREFIX_MAX 63
#define KEY_MAX (PREFIX_MAX + LR_NAME_MAX + 2 + 6)
#define DEFAULT_PREFIX "lr:"

enum {
    SCRIPT_ACQUIRE,
    SCRIPT_ACQUIRE_BATCH,
    SCRIPT_RENEW,
    SCRIPT_RELEASE,
    SCRIPT_BREAK,
    SCRIPT_CHANGE,
    SCRIPT_ACQUIRE_SESSION,
    SCRIPT_SESSION_RENEW,
    SCRIPT_BREAK_SESSION,
    SCRIPT_INSPECT,
    NSCRIPTS
};

static const struct lr_resp_arg scripts[NSCRIPTS] = {
    {acquire_lua, sizeof(acquire_lua) - 1},
    {acquire_batch_lua, sizeof(acquire_batch_lua) - 1},
    {renew_lua, sizeof(renew_lua) - 1},
    {release_lua, sizeof(release_lua) - 1},
    {break_lua, sizeof(break_lua) - 1},
    {change_lua, sizeof(change_lua) - 1},
    {acquire_session_lua, sizeof(acquire_session_lua) - 1},
    {session_renew_lua, sizeof(session_renew_lua) - 1},
    {break_session_lua, sizeof(break_session_lua) - 1},
    {inspect_lua, sizeof(inspect_lua) - 1},
};

/* Not a status: "drop this connection and make it again" (READONLY, MOVED). */
#define RECONNECT 1

/* lr__reqhdr.batch of a request still on an encode queue (never sent): this
 * bit, and under it the request's cluster slot (0 elsewhere), which the
 * encoder groups by. A sent request's batch index is below it (<= 1024). */
#define UNSENT 0x8000u
#define SLOT_OF(batch) ((batch) & (LR__REDIS_SLOTS - 1))

/* redis+cluster: leases looked at per grouping round of the encoder. */
#define GROUP_MAX 1024u

/* Request kinds beyond the lease ops (lr__reqhdr.kind). */
enum { K_AUTH = 16, K_SELECT, K_LOAD, K_PING, K_SESSION, K_CHK_POLICY, K_CHK_AOF, K_CHK_ROLE,
       K_ROLE, K_WAIT };

static inline bool is_check(uint8_t kind)
{
    return kind >= K_CHK_POLICY && kind <= K_CHK_ROLE;
}

/* A connection-internal request (handshake, script load). */
struct ireq {
    struct lr__reqhdr hdr;
    uint64_t sent_ns;
    uint8_t script; /* K_LOAD: which script */
};

/* One name's answer inside a batched acquire reply: a fence, or a conflict. */
struct slot {
    int64_t value;   /* fence (conflict false), or the holder's PTTL */
    bool conflict;
    bool bad;
    uint8_t holder_len;
    char holder[LR_HOLDER_MAX + 1];
};

/* R_RESOLVING: waiting for the address (the backend's lookup serves every
 * connection that waits); requests queue as in R_CONNECTING. */
enum rstate { R_DOWN, R_RESOLVING, R_CONNECTING, R_HANDSHAKE, R_READY, R_FAILING, R_CLOSING };

/* The reply being assembled from tokens. A new reply clears every field
 * before @holder. */
struct reply {
    bool active;     /* tokens of a reply are arriving */
    bool oob;        /* a RESP3 push: not an answer to anything */
    bool bad;        /* a shape we do not understand */
    bool nil;
    uint8_t type;    /* top-level type (blob errors fold into LR_RESP_ERROR) */
    uint8_t holder_len;
    uint8_t sha_len;
    uint16_t err_len;
    int64_t integer; /* top-level INT, or the array's count */
    int64_t idx;     /* array elements seen */
    int64_t sub;     /* elements seen inside the current element (batched acquire) */
    int64_t pttl;    /* conflict reply */
    struct session *sess; /* a session renewal's reply (K_SESSION) */
    uint8_t chk;          /* a store check's reply: its kind (K_CHK_*), else 0 */
    int64_t more;         /* session renewal: breaks the store has for the session */
    bool overflow;        /* session renewal: a reported break did not fit the table */
    struct lr_lease *insp; /* an inspection's reply: its carrier (while still pending) */
    uint8_t kept;         /* inspection: where the field name of the pair went (KEPT_*) */
    char holder[LR_HOLDER_MAX + 1];
    char err[128];   /* start of an error reply */
    char sha[40];
};

struct rconn {
    struct lr__backend *b;
    struct lr__conn net;
    unsigned idx;
    unsigned node;          /* redis+cluster: the node (index in the cluster's table) */
    enum rstate state;
    bool ever_ready;
    bool loading;           /* a SCRIPT LOAD round is in flight */
    bool redirected;        /* READONLY/MOVED since the last request that succeeded */
    bool said_down;         /* redis+cluster: CLUSTERDOWN told since the last success */
    unsigned attempt;       /* reconnect attempts since the last success */
    int last_error;
    /* Requests wait on an encode queue until the window has room: renewals
     * on renq, served first (a held lease's validity is running), everything
     * else on encq. Both link lr_lease.req.link, with req.batch UNSENT. */
    struct lr_list renq;
    struct lr_list encq;
    struct lr_list pending; /* lr__reqhdr.link, sent, in reply order */
    struct lr_list askq;    /* redis+cluster: lr_lease.req.link, sent next after ASKING */
    struct lr_list soloq;   /* redis+cluster: lr_lease.req.link, each sent alone (TRYAGAIN) */
    uint32_t inflight;      /* lease requests (keys) on pending: at most b->window */
    uint64_t rx_ns;         /* when bytes last arrived */
    uint32_t next_seq;
    uint32_t reply_seq;
    struct lr__task enc_task;
    struct lr_timer timer;  /* request timeout, or reconnect backoff when down */
    struct lr_resp_parser parser;
    struct reply cur;
    struct ireq auth;
    struct ireq select;
    struct ireq load[NSCRIPTS];
    struct ireq chk[3];     /* the store checks: policy, persistence, role */
    /* What the checks found on this connection ("" / -1: not said). */
    char policy[24];        /* maxmemory-policy */
    char fsync[12];         /* appendfsync */
    char role[12];          /* ROLE's first element: master, slave, sentinel */
    char role_of[64];       /* a replica's master, "host:port" */
    int8_t aof;             /* appendonly: 1 yes, 0 no, -1 not said */
    bool cfg_refused;       /* CONFIG GET answered an error (renamed, ACL) */
    char cfg_err[64];       /* its text */
    struct ireq role_q;     /* redis+sentinel: is it the master? */
    /* ?wait=N (see "replicas confirm" below): the WAIT in flight, the leases
     * whose reply came and waits for it (lr_lease.req.link), and whether
     * something written since the last WAIT still needs one. */
    struct ireq wait_q;
    struct lr_list waiting;
    bool wait_due;
    struct lr__tls *tls;    /* rediss:// */
    int8_t vals[1024];      /* per-element results of a batched renewal reply */
    struct slot *slots;     /* b->batch per-name results of a batched acquire reply */
    struct group *grp;      /* redis+cluster: GROUP_MAX, for grouping by slot */
    uint16_t *firsts;       /* redis+cluster: GROUP_MAX, each slot chain's first */
};

/* redis+cluster: one lease of a grouping round, chained to the next lease
 * of its slot in the round (GROUP_END: none). */
#define GROUP_END 0xffffu
struct group {
    struct lr_lease *l;
    uint16_t next;
};

/* redis+cluster: per slot, the chain of the current grouping round (valid
 * while @round is the backend's). */
struct slot_chain {
    uint32_t round;
    uint16_t head;
    uint16_t tail;
};

/* ------------------------------------------------------ session mode
 *
 * With ?mode=session the manager keeps one session per TTL (struct session):
 * a key "<prefix>session:<32 hex>" that only session renewals keep alive
 * (PEXPIRE), and lease hashes that name it and have no TTL of their own, so
 * one session renewal keeps any number of leases. The core still submits a
 * RENEW per lease; here it is served from session renewals instead:
 *  - A RENEW is never answered inside submit(): it goes on the session's
 *    ready list, served in the deferred phase, SERVE_PER_PASS at a time.
 *  - Served, it completes with success from the latest *confirmed* session
 *    renewal if that was sent after the lease's current validity start (the
 *    lease's send time is then stamped with that renewal's send time, so
 *    validity = that send + TTL(1-drift) - margin); otherwise it parks until
 *    the next renewal, which is sent early if none is due in time. Renewals
 *    go out at most about once per renew_fraction of the TTL (1/8 of that
 *    after a failure), and only while some lease waits for one.
 *  - Why success is safe: the lease's last success came from a request sent
 *    at V that left the session key alive until at least V + TTL at the
 *    store; the core accepts a new success only before V + TTL(1-drift), so
 *    the renewal that gives it ran before the key could expire: the session
 *    lived throughout, and no takeover (which needs the key gone) happened.
 *    A session key that expired is never made again under its name: a
 *    session found gone gets a new id (session_lost), and leases whose
 *    validity started before that moment get LR_ELOST.
 *  - Breaks: the break script records the holder's owner token in the
 *    holder session's broken set for one TTL, and every session renewal
 *    meanwhile returns the set. The tokens go into a bounded table (struct
 *    broken_tab), checked whenever a RENEW would complete with success: a
 *    broken lease gets LR_ELOST. We keep tokens rather than an index
 *    name -> lease because the index would need a core hook for every lease
 *    the core forgets (deinit, manager close) and memory per lease, while
 *    breaks are rare operator actions: the table costs nothing per lease and
 *    no core change. An entry stays one TTL after the reply that reported it
 *    arrived: any lease it names had its validity start before that reply,
 *    so it can no longer be renewed after that. Tokens are unique per
 *    acquisition, so a stale entry cannot hit a later holder of the name. A
 *    reply whose breaks do not all fit (table full, or more than
 *    SESSION_REPORT_MAX reported) confirms nothing: losing is safe,
 *    double-holding is not.
 *  - Ambiguous outcomes (timeout, dropped connection) of a session renewal
 *    complete the RENEWs waiting on it with that status: jeopardy, as in
 *    per-lease mode; no break is missed, since the next renewal reports the
 *    set again.
 * Cluster: a session key, its broken set and the lease hashes are in
 * different slots; session mode there needs a session per slot (a key
 * "<prefix>session:{<slot tag>}:<id>" next to the names of that slot), which
 * this file does not do: redis+cluster:// refuses ?mode=session.
 */
#define MAX_SESSIONS 16          /* distinct TTLs per manager in session mode */
#define BROKEN_MAX 4096u         /* broken-token table entries (power of two) */
#define SESSION_REPORT_MAX 1024u /* tokens one renewal reply may carry */
/* RENEWs answered per loop pass: a renewal reply may release a million at
 * once, and answering them in one go would stall the loop for seconds (its
 * replies unread, its connections' request timeouts running). */
#define SERVE_PER_PASS 2048u
#define SESSION_KEY_MAX (PREFIX_MAX + 8 + 32 + 7 + 1)

struct broken {
    uint8_t token[16];
    uint64_t until_ms; /* dropped after this */
    int32_t next;      /* hash chain, -1 ends */
};

/* A ring of BROKEN_MAX entries in report order, hashed by token. */
struct broken_tab {
    struct broken *e;
    int32_t *heads; /* BROKEN_MAX buckets */
    uint32_t head;
    uint32_t count;
};

struct session {
    struct lr__backend *b;
    uint32_t ttl_ms;  /* 0: slot unused */
    uint32_t keep_ms; /* lr__validity_keep_ms: validity = send + keep, as the core's */
    unsigned idx;
    bool inflight;           /* @req is on a connection */
    bool retry;              /* the last renewal failed: the next may go early */
    uint64_t lost_before_ms; /* leases whose validity started before this are lost */
    uint64_t confirmed_ns;   /* send time of the latest confirmed renewal, or 0 */
    uint64_t last_sent_ns;   /* of the latest renewal, or 0 */
    struct lr_list parked;   /* lr_lease.req.link: RENEWs waiting for a renewal */
    struct lr_list ready;    /* lr_lease.req.link: RENEWs to serve (deferred phase) */
    struct lr_list failing;  /* lr_lease.req.link: RENEWs to fail with @fail_status */
    int fail_status;
    struct ireq req;       /* the session renewal (K_SESSION) */
    bool wait_held;        /* ?wait_renew: its reply came, the WAIT's has not */
    bool wait_confirm;     /* ... and that reply confirmed the session */
    struct lr_timer timer; /* when to send the next renewal */
    size_t key_len;
    char key[SESSION_KEY_MAX];
};

struct lr__backend {
    struct lr_manager *m;
    struct lr__resolver res;
    struct sockaddr_storage addr; /* the last lookup's answer; a unix socket's path */
    socklen_t addrlen;
    bool unix_sock;               /* redis:///PATH, unix:///PATH: no lookup */
    uint16_t port;
    bool has_user;
    bool has_password;
    bool closing;
    int db;
    size_t prefix_len;
    uint32_t batch;
    uint32_t window; /* keys in flight per connection (lr_manager_opts.inflight_max) */
    unsigned nconns;
    unsigned closed;
    void (*close_done)(struct lr_manager *m);
    struct rconn *conns;
    struct lr__tls_ctx *tls_ctx; /* rediss:// */
    struct lr__sentinel *sent;   /* redis+sentinel://: where the master is */
    /* redis+cluster://: the slot map and node table (redis_cluster.c). The
     * connections of node n are conns[n * per_node ...]; nconns counts
     * those set up (whole nodes), conns has room for max_nodes nodes. */
    struct lr__cluster *cluster;
    const uint8_t *slot_owner;   /* slot -> node, or LR__CLUSTER_NO_NODE */
    unsigned per_node;
    unsigned max_nodes;
    struct slot_chain *chains;   /* LR__REDIS_SLOTS: encode_groups' scratch */
    uint32_t round;
    struct lr_list mapwait;      /* lr_lease.req.link (UNSENT): waiting for a map */
    struct lr_timer map_timer;   /* the oldest of them times out */
    bool session_mode;           /* ?mode=session */
    bool allow_eviction;         /* ?allow_eviction=yes */
    uint32_t wait_n;             /* ?wait=N: replicas that must have a write; 0 off */
    uint32_t wait_ms;            /* ?wait_ms=T: how long WAIT may block */
    bool wait_renew;             /* ?wait_renew=yes: renewals wait for them too */
    bool warned_persistence;     /* the store checks' warnings, once per manager */
    bool warned_policy;
    bool warned_config;
    struct broken_tab broken;    /* session mode */
    struct lr__task serve_task;  /* serves the sessions' ready lists */
    struct session sessions[MAX_SESSIONS];
    char sha[NSCRIPTS][40];
    char prefix[PREFIX_MAX + 1];
    char user[128];
    char password[256];
    char host[256];
    char endpoint[300]; /* "host:port" or the socket's path, for error texts */
    char tls_name[256];
};

static const struct lr__conn_cbs net_cbs;
static void conn_fail(struct rconn *c, int err);
static void wait_send(struct rconn *c);
static struct session *session_find(struct lr__backend *b, uint32_t ttl, bool create);

/* ?wait=N: does a request of @kind write what replicas must confirm? */
static inline bool wait_covers(const struct lr__backend *b, uint8_t kind)
{
    return b->wait_n && (kind == LR_OP_ACQUIRE || (kind == LR_OP_RENEW && b->wait_renew));
}

static inline uint64_t loop_ns(const struct rconn *c)
{
    return c->net.loop->now_ns;
}

static inline uint64_t timeout_ns(const struct rconn *c)
{
    return (uint64_t)lr__manager_opts(c->b->m)->request_timeout_ms * 1000000u;
}

static inline struct lr_lease *lease_of(struct lr__reqhdr *h)
{
    return lr_container_of(h, struct lr_lease, req);
}

static inline struct ireq *ireq_of(struct lr__reqhdr *h)
{
    return lr_container_of(h, struct ireq, hdr);
}

static inline struct lr__reqhdr *hdr_of(struct lr_list *n)
{
    return lr_container_of(n, struct lr__reqhdr, link);
}

static uint64_t sent_ns_of(struct lr__reqhdr *h)
{
    return h->kind >= K_AUTH ? ireq_of(h)->sent_ns : lease_of(h)->sent_ns;
}

/* ------------------------------------------------------------- timers */

/* The oldest request on an encode queue, for timing out requests that wait
 * for a connection to come up (lr_lease.sent_ns is still the submit time). */
static uint64_t queued_since(const struct rconn *c)
{
    uint64_t due = UINT64_MAX;
    const struct lr_list *qs[4] = {&c->renq, &c->encq, &c->askq, &c->soloq};
    for (int i = 0; i < 4; i++) {
        struct lr_list *n = lr_list_first(qs[i]);
        if (n && lease_of(hdr_of(n))->sent_ns < due)
            due = lease_of(hdr_of(n))->sent_ns;
    }
    return due;
}

/* In a live state: the earliest request deadline. A sent request times out
 * a request timeout after its send, and only if nothing at all arrived
 * meanwhile (replies come in order: a connection still delivering them is
 * working through a deep pipeline, not stalled). Queued requests time out
 * only while the connection is not ready; on a ready one they wait for the
 * window, which the replies open. */
static void rearm(struct rconn *c)
{
    if (c->state == R_DOWN || c->state == R_CLOSING || c->state == R_FAILING)
        return;
    uint64_t due = UINT64_MAX;
    struct lr_list *n = lr_list_first(&c->pending);
    if (n) {
        due = sent_ns_of(hdr_of(n));
        if (c->rx_ns > due)
            due = c->rx_ns;
    }
    if (c->state != R_READY) {
        uint64_t q = queued_since(c);
        if (q < due)
            due = q;
    }
    if (due == UINT64_MAX) {
        lr_timer_stop(&c->timer);
        return;
    }
    /* round up: never time a request out early */
    lr_timer_start(&c->timer, (due + timeout_ns(c) + 999999u) / 1000000u);
}

static void complete(struct lr_lease *l, int status)
{
    struct lr__result r = {.status = status, .holder_ttl_ms = -1};
    lr__lease_complete(l, &r);
}

/* Complete every queued (never sent) request with @status. */
static void fail_encq(struct rconn *c, int status)
{
    struct lr_list *n;
    while ((n = lr_list_pop(&c->askq)) || (n = lr_list_pop(&c->soloq)) ||
           (n = lr_list_pop(&c->renq)) || (n = lr_list_pop(&c->encq)))
        complete(lease_of(hdr_of(n)), status);
}

/* Reconnect after exponential backoff with full jitter, never waiting longer
 * than a request timeout: leases in jeopardy cannot afford long gaps. */
static bool node_serves(const struct lr__backend *b, unsigned node);

static void schedule_reconnect(struct rconn *c)
{
    if (c->b->cluster && !node_serves(c->b, c->node)) {
        /* a cluster node the map no longer names (a dead master replaced by
         * its replica, a node emptied by a reshard): stay down until a map
         * or a redirection names it again (wake) */
        c->state = R_DOWN;
        c->attempt = 0;
        return;
    }
    uint64_t delay = lr__manager_backoff(c->b->m, c->attempt);
    uint64_t cap = lr__manager_opts(c->b->m)->request_timeout_ms;
    if (c->attempt < 32)
        c->attempt++;
    c->state = R_DOWN;
    lr_timer_start(&c->timer, lr_loop_now_ms(c->net.loop) + (delay < cap ? delay : cap));
}

/* "redis host:port: <what>" to lr_manager_last_error and store_error. */
static void report(struct lr__backend *b, int status, const char *what, const char *detail)
{
    lr__manager_store_error(b->m, status, "redis %s: %s%s", b->endpoint, what, detail);
}

/* report() for what a connection met: behind redis+cluster, naming its node. */
static void creport(struct rconn *c, int status, const char *what, const char *detail)
{
    struct lr__backend *b = c->b;
    if (b->cluster)
        lr__manager_store_error(b->m, status, "redis cluster node %s: %s%s",
                                lr__cluster_node_name(b->cluster, c->node), what, detail);
    else
        report(b, status, what, detail);
}

/* The log's "connected" / "reconnected" line for @c, once per node: only
 * when none of the node's other connections is up already. */
static void log_up(struct rconn *c)
{
    struct lr__backend *b = c->b;
    if (!lr__log_on(LR_LOG_INFO))
        return;
    for (unsigned i = 0; i < b->nconns; i++)
        if (&b->conns[i] != c && b->conns[i].node == c->node && b->conns[i].state == R_READY)
            return;
    const char *what = c->ever_ready ? "reconnected" : "connected";
    if (b->cluster)
        lr__log(LR_LOG_INFO, "redis cluster node %s: %s",
                lr__cluster_node_name(b->cluster, c->node), what);
    else
        lr__log(LR_LOG_INFO, "redis %s: %s", b->endpoint, what);
}

/* A failure code as text for report(), lowercased like the rest of the line
 * ("connection refused"). */
static const char *err_text(int err, char *buf, size_t cap)
{
    snprintf(buf, cap, "%s", lr_strerror(err));
    if (buf[0] >= 'A' && buf[0] <= 'Z' && buf[1] >= 'a' && buf[1] <= 'z')
        buf[0] = (char)(buf[0] - 'A' + 'a');
    return buf;
}

static void cluster_requeue(struct rconn *c);

/* Connecting did not happen: what was queued cannot be sent; try later. */
static void connect_failed(struct rconn *c, int err)
{
    c->last_error = err;
    c->state = R_DOWN; /* submits now answer LR_EUNAVAIL */
    if (c->b->cluster)
        cluster_requeue(c); /* a new map may send them elsewhere */
    fail_encq(c, LR_EUNAVAIL);
    if (c->state == R_DOWN) /* a callback may have closed the manager */
        schedule_reconnect(c);
}

static void connect_to(struct rconn *c)
{
    struct lr__backend *b = c->b;
    c->state = R_CONNECTING;
    uint32_t to = lr__manager_opts(b->m)->request_timeout_ms;
    struct sockaddr_storage node_sa;
    socklen_t node_len = 0;
    if (b->cluster) /* the node's own address (numeric: the cluster gave it) */
        lr__cluster_node_addr(b->cluster, c->node, &node_sa, &node_len);
    int rc = lr__conn_connect(&c->net,
                              (struct sockaddr *)(b->cluster ? &node_sa : &b->addr),
                              b->cluster ? node_len : b->addrlen, to < 1000 ? 1000 : to);
    if (rc < 0) {
        char t[96];
        creport(c, rc, "connect: ", err_text(rc, t, sizeof(t)));
        connect_failed(c, rc);
    }
}

/* The backend's lookup finished: every connection waiting for it goes on. */
static void resolved(struct lr__resolver *r, int status, const struct sockaddr *sa,
                     socklen_t len)
{
    struct lr__backend *b = r->data;
    if (status == 0) {
        memcpy(&b->addr, sa, len);
        b->addrlen = len;
    } else {
        char t[160];
        snprintf(t, sizeof(t), "name not resolved (%s)", lr__resolver_why(r));
        report(b, status, t, "");
    }
    for (unsigned i = 0; i < b->nconns && !b->closing; i++) {
        struct rconn *c = &b->conns[i];
        if (c->state != R_RESOLVING)
            continue;
        if (status == 0)
            connect_to(c);
        else
            connect_failed(c, status);
    }
}

/* Look the host up again (a failover may have moved the name), then connect. */
static void start_connect(struct rconn *c)
{
    struct lr__backend *b = c->b;
    if (b->unix_sock || b->cluster) { /* a path, or a node's numeric address */
        connect_to(c);
        return;
    }
    c->state = R_RESOLVING;
    if (b->sent) { /* the sentinels say where the master is (redis_sentinel.c) */
        int rc = lr__sentinel_lookup(b->sent, &b->addr, &b->addrlen);
        if (rc == 1)
            connect_to(c);
        else if (rc < 0)
            connect_failed(c, rc);
        return;
    }
    if (b->res.busy)
        return; /* the lookup under way answers this connection too */
    int rc = lr__resolver_start(&b->res, b->host, b->port, &b->addr, &b->addrlen);
    if (rc == 1) {
        connect_to(c);
    } else if (rc < 0) {
        char t[160];
        snprintf(t, sizeof(t), "name not resolved (%s)",
                 lr__resolver_why(&b->res)[0] ? lr__resolver_why(&b->res) : lr_strerror(rc));
        report(b, rc, t, "");
        connect_failed(c, rc);
    }
}

static void timer_fired(struct lr_timer *t)
{
    struct rconn *c = t->data;
    if (c->state == R_DOWN) {
        start_connect(c);
        return;
    }
    uint64_t now = loop_ns(c), limit = timeout_ns(c);
    struct lr_list *n = lr_list_first(&c->pending);
    if (n && sent_ns_of(hdr_of(n)) + limit <= now && c->rx_ns + limit <= now) {
        lr__manager_stats(c->b->m)->request_timeouts++;
        creport(c, -ETIMEDOUT, "no reply within the request timeout; reconnecting", "");
        conn_fail(c, -ETIMEDOUT); /* the pipeline cannot skip a reply */
        return;
    }
    for (int i = 0; i < 4 && c->state != R_READY; i++) {
        struct lr_list *q = i == 0 ? &c->renq : i == 1 ? &c->encq : i == 2 ? &c->askq : &c->soloq;
        while ((n = lr_list_first(q)) && c->state != R_READY) {
            struct lr_lease *l = lease_of(hdr_of(n));
            if (l->sent_ns + limit > now)
                break;
            lr_list_unlink(n);
            complete(l, LR_EUNAVAIL); /* never sent */
        }
    }
    rearm(c);
}

/* ----------------------------------------------------------- encoding */

/* The lease hash "<prefix>{<name>}", or (@fence) the fence counter of the
 * name's slot, "<prefix>{<tag>}:fence" with the tag that lands in that slot
 * (redis_slot.h): one counter per slot, never expiring. */
static size_t key_of(const struct lr__backend *b, const struct lr_lease *l, char *out,
                     bool fence)
{
    if (fence)
        return lr__redis_fence_key(out, KEY_MAX, b->prefix, b->prefix_len, l->name, l->name_len);
    size_t n = b->prefix_len;
    memcpy(out, b->prefix, n);
    out[n++] = '{';
    memcpy(out + n, l->name, l->name_len);
    n += l->name_len;
    out[n++] = '}';
    return n;
}

static void push_pending(struct rconn *c, struct lr__reqhdr *h, uint16_t batch)
{
    h->seq = c->next_seq;
    h->batch = batch;
    h->conn = (uint8_t)c->idx;
    lr_list_push_tail(&c->pending, &h->link);
}

/* @l's request was just written into the output buffer, which leaves in
 * this pass: from now on it is in flight, and its validity and request
 * timeout count from here, not from when it was queued. */
static void lease_sent(struct rconn *c, struct lr_lease *l, uint16_t batch)
{
    push_pending(c, &l->req, batch);
    lr__lease_sent(l, loop_ns(c));
    c->inflight++;
    c->wait_due |= wait_covers(c->b, l->req.kind);
}

/* Encode an internal command; false if it did not fit. */
static bool encode_internal(struct rconn *c, struct ireq *q, uint8_t kind, size_t argc,
                            const struct lr_resp_arg *argv)
{
    size_t avail;
    char *w = lr__conn_wbuf(&c->net, &avail);
    int n = lr_resp_write_cmd(w, avail, argc, argv);
    if (n < 0)
        return false;
    lr__conn_commit(&c->net, (size_t)n);
    q->hdr.kind = kind;
    q->sent_ns = loop_ns(c);
    push_pending(c, &q->hdr, 0);
    c->next_seq++;
    return true;
}

static void encode_loads(struct rconn *c)
{
    static const struct lr_resp_arg script = {"SCRIPT", 6}, load = {"LOAD", 4};
    c->loading = true;
    for (unsigned i = 0; i < NSCRIPTS; i++) {
        struct lr_resp_arg argv[3] = {script, load, scripts[i]};
        c->load[i].script = (uint8_t)i;
        if (!encode_internal(c, &c->load[i], K_LOAD, 3, argv)) {
            conn_fail(c, -ENOBUFS); /* cannot happen: the buffer is far larger */
            return;
        }
    }
}

/* Decimal digits of @v into @out (no NUL); returns the length. */
static size_t u64_format(uint64_t v, char *out)
{
    return (size_t)(lr_put_u64(out, v, lr_u64_digits(v)) - out);
}

static void handshake(struct rconn *c)
{
    struct lr__backend *b = c->b;
    if (b->has_password) {
        struct lr_resp_arg argv[3] = {{"AUTH", 4}};
        size_t argc = 1;
        if (b->has_user)
            argv[argc++] = (struct lr_resp_arg){b->user, strlen(b->user)};
        argv[argc++] = (struct lr_resp_arg){b->password, strlen(b->password)};
        encode_internal(c, &c->auth, K_AUTH, argc, argv);
    }
    if (b->db) {
        char num[24];
        struct lr_resp_arg argv[2] = {{"SELECT", 6}, {num, u64_format((uint64_t)b->db, num)}};
        encode_internal(c, &c->select, K_SELECT, 2, argv);
    }
    if (b->sent) { /* a sentinel's answer may be stale: check before use, before
                   * the store checks (a replica found here asks the sentinels again) */
        static const struct lr_resp_arg role_arg = {"ROLE", 4};
        encode_internal(c, &c->role_q, K_ROLE, 1, &role_arg);
    }
    static const struct lr_resp_arg config = {"CONFIG", 6}, get = {"GET", 3};
    struct lr_resp_arg policy[3] = {config, get, {"maxmemory-policy", 16}};
    struct lr_resp_arg aof[3] = {config, get, {"append*", 7}};
    struct lr_resp_arg role[1] = {{"ROLE", 4}};
    c->policy[0] = c->fsync[0] = c->role[0] = c->role_of[0] = c->cfg_err[0] = '\0';
    c->aof = -1;
    c->cfg_refused = false;
    encode_internal(c, &c->chk[0], K_CHK_POLICY, 3, policy);
    encode_internal(c, &c->chk[1], K_CHK_AOF, 3, aof);
    encode_internal(c, &c->chk[2], K_CHK_ROLE, 1, role);
    encode_loads(c);
}

/* BREAK (key, period), CHANGE (key, token, new token) or INSPECT (key);
 * false if it did not fit. */
static bool encode_other(struct rconn *c, struct lr_lease *l, const char *key, size_t klen)
{
    struct lr__backend *b = c->b;
    bool brk = l->req.kind == LR_OP_BREAK, insp = l->req.kind == LR_OP_INSPECT;
    char tok[32], next[32], num[24];
    int script = insp   ? SCRIPT_INSPECT
                 : !brk ? SCRIPT_CHANGE
                 : b->session_mode ? SCRIPT_BREAK_SESSION
                                   : SCRIPT_BREAK;
    struct lr_resp_arg argv[6] = {{"EVALSHA", 7}, {b->sha[script], 40}, {"1", 1}, {key, klen}};
    size_t argc = 4;
    if (insp) {
        /* the key alone */
    } else if (brk) {
        argv[argc++] = (struct lr_resp_arg){num, u64_format(l->break_ms, num)};
    } else {
        lr__hex(l->token, 16, tok);
        lr__hex(l->next_token, 16, next);
        argv[argc++] = (struct lr_resp_arg){tok, 32};
        argv[argc++] = (struct lr_resp_arg){next, 32};
    }
    size_t avail;
    char *w = lr__conn_wbuf(&c->net, &avail);
    int n = lr_resp_write_cmd(w, avail, argc, argv);
    if (n < 0)
        return false;
    lr__conn_commit(&c->net, (size_t)n);
    lease_sent(c, l, 0);
    c->next_seq++;
    lr__manager_stats(b->m)->requests++;
    return true;
}

/* ACQUIRE with metadata, or RELEASE, of one lease, written in place; false
 * if it did not fit. */
static bool encode_single(struct rconn *c, struct lr_lease *l)
{
    struct lr__backend *b = c->b;
    bool acq = l->req.kind == LR_OP_ACQUIRE;
    char key[KEY_MAX], fkey[KEY_MAX], tok[32];
    size_t klen = key_of(b, l, key, false), flen = acq ? key_of(b, l, fkey, true) : 0;
    size_t nmeta = 0, meta_bytes = 0;
    for (size_t i = 0; acq && i < l->meta_len;) {
        size_t len = strlen(l->meta + i);
        meta_bytes += lr_resp_bulk_size(len);
        nmeta++;
        i += len + 1;
    }
    enum lr__req_kind kind = (enum lr__req_kind)l->req.kind;
    if (kind == LR_OP_BREAK || kind == LR_OP_CHANGE || kind == LR_OP_INSPECT)
        return encode_other(c, l, key, klen);
    size_t idlen;
    const char *id = lr__manager_identity(b->m, &idlen);
    size_t argc = acq ? 8 + nmeta : 5;
    size_t need = lr_resp_array_header_size(argc) + lr_resp_bulk_size(7) + lr_resp_bulk_size(40) +
                  lr_resp_bulk_size(1) + lr_resp_bulk_size(klen) + lr_resp_bulk_size(32);
    if (acq)
        need += lr_resp_bulk_size(flen) + lr_resp_bulk_size(lr_u64_digits(l->ttl_ms)) +
                lr_resp_bulk_size(idlen) + meta_bytes;
    size_t avail;
    char *w = lr__conn_wbuf(&c->net, &avail);
    if (need > avail)
        return false;
    char *p = w, *end = w + avail;
    lr__hex(l->token, 16, tok);
    p += lr_resp_write_array_header(p, (size_t)(end - p), argc);
    p += lr_resp_write_bulk(p, (size_t)(end - p), "EVALSHA", 7);
    p += lr_resp_write_bulk(p, (size_t)(end - p), b->sha[acq ? SCRIPT_ACQUIRE : SCRIPT_RELEASE],
                            40);
    p += lr_resp_write_bulk(p, (size_t)(end - p), acq ? "2" : "1", 1);
    p += lr_resp_write_bulk(p, (size_t)(end - p), key, klen);
    if (acq)
        p += lr_resp_write_bulk(p, (size_t)(end - p), fkey, flen);
    p += lr_resp_write_bulk(p, (size_t)(end - p), tok, 32);
    if (acq) {
        p += lr_resp_write_bulk_u64(p, (size_t)(end - p), l->ttl_ms);
        p += lr_resp_write_bulk(p, (size_t)(end - p), id, idlen);
        for (size_t i = 0; i < l->meta_len;) {
            size_t len = strlen(l->meta + i);
            p += lr_resp_write_bulk(p, (size_t)(end - p), l->meta + i, len);
            i += len + 1;
        }
    }
    lr__conn_commit(&c->net, (size_t)(p - w));
    lease_sent(c, l, 0);
    c->next_seq++;
    lr__manager_stats(b->m)->requests++;
    return true;
}

/* Renewals, and acquisitions without metadata, go out in batches: one
 * EVALSHA over many names sharing a TTL. */
static bool batchable(const struct lr_lease *l)
{
    return l->req.kind == LR_OP_RENEW || (l->req.kind == LR_OP_ACQUIRE && !l->meta_len);
}

/* Bytes one lease adds to a batch, and the batch's fixed part: a renewal
 * adds its key and token, an acquisition its key, fence key and token. */
static size_t batch_item_size(const struct lr__backend *b, const struct lr_lease *l)
{
    size_t key = b->prefix_len + l->name_len + 2;
    size_t n = lr_resp_bulk_size(key) + lr_resp_bulk_size(32);
    if (l->req.kind == LR_OP_ACQUIRE)
        n += lr_resp_bulk_size(b->prefix_len + 2 + LR__REDIS_TAG_MAX + 6);
    return n;
}

static size_t batch_head_size(const struct lr__backend *b, bool acq, size_t count, uint32_t ttl)
{
    /* session mode: an acquisition batch starts with the session key */
    size_t sess = acq && b->session_mode ? 1 : 0;
    /* an acquisition batch carries the manager's identity once, after the TTL */
    size_t idlen = 0;
    if (acq)
        lr__manager_identity(b->m, &idlen);
    size_t id = acq ? lr_resp_bulk_size(idlen) : 0;
    return lr_resp_array_header_size(4 + sess + acq + (acq ? 3 : 2) * count) +
           lr_resp_bulk_size(7) + lr_resp_bulk_size(40) +
           lr_resp_bulk_size(lr_u64_digits((acq ? 2 : 1) * count + sess)) +
           lr_resp_bulk_size(lr_u64_digits(ttl)) + id +
           (sess ? lr_resp_bulk_size(SESSION_KEY_MAX) : 0);
}

/* One EVALSHA over every lease on @batch, all of one kind (renew, or acquire
 * without metadata) and one TTL @ttl (the caller checked it fits): the keys
 * (an acquisition's hash and fence counter), then the TTL once, then a
 * token per lease. */
static void encode_batch(struct rconn *c, bool acq, struct lr_list *batch, size_t count,
                         uint32_t ttl)
{
    struct lr__backend *b = c->b;
    size_t avail;
    char *w = lr__conn_wbuf(&c->net, &avail);
    char *p = w, *end = w + avail;
    char num[24], key[KEY_MAX], tok[32];
    /* session mode: acquisitions run acquire_session_lua, KEYS[1] the session */
    const struct session *sess = acq && b->session_mode ? session_find(c->b, ttl, false) : NULL;
    size_t nsess = sess ? 1 : 0;
    int script = sess ? SCRIPT_ACQUIRE_SESSION : acq ? SCRIPT_ACQUIRE_BATCH : SCRIPT_RENEW;
    p += lr_resp_write_array_header(p, (size_t)(end - p),
                                    4 + nsess + acq + (acq ? 3 : 2) * count);
    p += lr_resp_write_bulk(p, (size_t)(end - p), "EVALSHA", 7);
    p += lr_resp_write_bulk(p, (size_t)(end - p), b->sha[script], 40);
    p += lr_resp_write_bulk(p, (size_t)(end - p), num,
                            u64_format((acq ? 2 : 1) * count + nsess, num));
    if (sess)
        p += lr_resp_write_bulk(p, (size_t)(end - p), sess->key, sess->key_len);
    for (struct lr_list *n = batch->next; n != batch; n = n->next) {
        struct lr_lease *l = lease_of(hdr_of(n));
        p += lr_resp_write_bulk(p, (size_t)(end - p), key, key_of(b, l, key, false));
        if (acq)
            p += lr_resp_write_bulk(p, (size_t)(end - p), key, key_of(b, l, key, true));
    }
    p += lr_resp_write_bulk_u64(p, (size_t)(end - p), ttl);
    if (acq) {
        size_t idlen;
        const char *id = lr__manager_identity(b->m, &idlen);
        p += lr_resp_write_bulk(p, (size_t)(end - p), id, idlen);
    }
    uint16_t i = 0;
    struct lr_list *n;
    while ((n = lr_list_pop(batch))) {
        struct lr_lease *l = lease_of(hdr_of(n));
        lr__hex(l->token, 16, tok);
        p += lr_resp_write_bulk(p, (size_t)(end - p), tok, 32);
        lease_sent(c, l, i++);
    }
    lr__conn_commit(&c->net, (size_t)(p - w));
    c->next_seq++;
    lr__manager_stats(b->m)->requests++;
    lr__manager_stats(b->m)->renew_requests += !acq;
    lr__manager_stats(b->m)->renew_keys += acq ? 0 : count;
}

/* Heapsort of @g[0..n) by key: in place and allocation-free (glibc's
 * qsort may malloc a merge buffer), O(n log n) at worst. */
/* redis+cluster: a batch may only name keys of one slot (else CROSSSLOT).
 * Take the batchable requests at the head of @q (up to the window's room
 * and GROUP_MAX), chain them per slot in first-seen order (the backend's
 * slot table, stamped with a round number so that nothing is cleared: O(n),
 * where a sort cost O(n log n) for groups that are mostly single names), and
 * send each slot's chain as one EVALSHA per kind and TTL (up to b->batch
 * names; names of another kind or TTL wait on @q for the next round).
 * Requests stay on @q until encoded, so when the output buffer fills the
 * rest simply wait there for on_drain. Returns false when it stopped for
 * lack of room. */
static bool encode_groups(struct rconn *c, struct lr_list *q)
{
    struct lr__backend *b = c->b;
    uint32_t room = b->window - c->inflight;
    size_t most = room < GROUP_MAX ? room : GROUP_MAX, k = 0, nfirst = 0;
    if (++b->round == 0) { /* wrapped: stamps of 4 billion rounds ago could match */
        memset(b->chains, 0, LR__REDIS_SLOTS * sizeof(*b->chains));
        b->round = 1;
    }
    for (struct lr_list *n = q->next; n != q && k < most; n = n->next) {
        struct lr_lease *l = lease_of(hdr_of(n));
        if (!batchable(l))
            break;
        struct slot_chain *ch = &b->chains[SLOT_OF(l->req.batch)];
        c->grp[k].l = l;
        c->grp[k].next = GROUP_END;
        if (ch->round != b->round) {
            ch->round = b->round;
            ch->head = (uint16_t)k;
            c->firsts[nfirst++] = (uint16_t)k;
        } else {
            c->grp[ch->tail].next = (uint16_t)k;
        }
        ch->tail = (uint16_t)k++;
    }
    for (size_t f = 0; f < nfirst; f++) {
        const struct lr_lease *first = c->grp[c->firsts[f]].l;
        bool acq = first->req.kind == LR_OP_ACQUIRE;
        uint32_t ttl = first->ttl_ms;
        size_t avail, items = 0, count = 0;
        lr__conn_wbuf(&c->net, &avail);
        struct lr_list batch;
        lr_list_init(&batch);
        for (uint16_t x = c->firsts[f]; x != GROUP_END && count < b->batch; x = c->grp[x].next) {
            struct lr_lease *l = c->grp[x].l;
            if ((l->req.kind == LR_OP_ACQUIRE) != acq || l->ttl_ms != ttl)
                continue; /* another kind or TTL: a batch of its own, next round */
            size_t add = batch_item_size(b, l);
            if (batch_head_size(b, acq, count + 1, ttl) + items + add > avail)
                break;
            items += add;
            count++;
            lr_list_unlink(&l->req.link);
            lr_list_push_tail(&batch, &l->req.link);
        }
        if (!count) {
            /* output full: on_drain resumes; what was taken goes back in front */
            return false;
        }
        encode_batch(c, acq, &batch, count, ttl);
    }
    return true;
}

/* redis+cluster: requests sent one per command, from @q. With @asking
 * (the askq: an ASK redirection sent them here) each goes right behind an
 * ASKING, which lets the importing node serve the slot for the next command
 * only; ASKING's "+OK" has no owner on the pending FIFO and is dropped like
 * an abandoned request's reply. Without (the soloq: a batch met TRYAGAIN,
 * its slot half migrated), each name alone gets a definite answer: done
 * here, or ASK to where its key already is. Returns false when it stopped
 * for lack of room. */
static bool encode_alone(struct rconn *c, struct lr_list *q, bool asking)
{
    static const struct lr_resp_arg asking_cmd = {"ASKING", 6};
    struct lr__backend *b = c->b;
    struct lr_list *n;
    while ((n = lr_list_first(q))) {
        if (c->inflight >= b->window)
            return false;
        struct lr_lease *l = lease_of(hdr_of(n));
        size_t avail, mark = c->net.out_len;
        char *w = lr__conn_wbuf(&c->net, &avail);
        int len = asking ? lr_resp_write_cmd(w, avail, 1, &asking_cmd) : 0;
        if (len < 0)
            return false;
        lr__conn_commit(&c->net, (size_t)len);
        c->next_seq += asking;
        lr_list_unlink(n);
        bool acq = l->req.kind == LR_OP_ACQUIRE, ok;
        if (batchable(l)) {
            ok = batch_head_size(b, acq, 1, l->ttl_ms) + batch_item_size(b, l) <=
                 avail - (size_t)len;
            if (ok) {
                struct lr_list one;
                lr_list_init(&one);
                lr_list_push_tail(&one, n);
                encode_batch(c, acq, &one, 1, l->ttl_ms);
            }
        } else {
            ok = encode_single(c, l);
        }
        if (!ok) {
            /* take the ASKING back (nothing of it left yet: the flush runs
             * after this phase): it must lead its own request */
            c->net.out_len = mark;
            c->next_seq -= asking;
            lr_list_push_tail(q->next, n); /* back in front */
            return false;
        }
    }
    return true;
}

/* Encode from the head of @q while the window and the output buffer have
 * room: batchable requests of one kind and TTL become one EVALSHA each (up to
 * b->batch names), the rest one command each. Touches what it sends and at
 * most a batch's worth more. Returns false when it stopped for lack of room. */
static bool encode_queue(struct rconn *c, struct lr_list *q)
{
    struct lr__backend *b = c->b;
    struct lr_list *n;
    while ((n = lr_list_first(q))) {
        if (c->inflight >= b->window)
            return false; /* replies reopen it (reply_done) */
        struct lr_lease *l = lease_of(hdr_of(n));
        if (!batchable(l)) {
            lr_list_unlink(n);
            if (!encode_single(c, l)) {
                lr_list_push_tail(q->next, n); /* back in front, until on_drain */
                return false;
            }
            continue;
        }
        if (b->cluster) { /* one EVALSHA per slot: keys of one slot only */
            if (!encode_groups(c, q))
                return false;
            continue;
        }
        bool acq = l->req.kind == LR_OP_ACQUIRE;
        uint32_t ttl = l->ttl_ms;
        uint32_t room = b->window - c->inflight;
        uint32_t most = room < b->batch ? room : b->batch;
        struct lr_list batch;
        lr_list_init(&batch);
        size_t count = 0, items = 0, skipped = 0, avail;
        lr__conn_wbuf(&c->net, &avail);
        /* Requests of another kind or TTL are stepped over (they start a
         * batch of their own next), but only a batch's worth of them, so
         * that the look-ahead stays bounded. */
        for (n = q->next; n != q && count < most;) {
            struct lr_list *next = n->next;
            l = lease_of(hdr_of(n));
            if (!batchable(l) || (l->req.kind == LR_OP_ACQUIRE) != acq || l->ttl_ms != ttl) {
                if (++skipped > b->batch)
                    break;
                n = next;
                continue;
            }
            size_t add = batch_item_size(b, l);
            if (batch_head_size(b, acq, count + 1, ttl) + items + add > avail)
                break;
            lr_list_unlink(n);
            lr_list_push_tail(&batch, n);
            count++;
            items += add;
            n = next;
        }
        if (!count)
            return false; /* output full: on_drain resumes */
        encode_batch(c, acq, &batch, count, ttl);
    }
    return true;
}

static void encode_run(struct lr__task *t)
{
    struct rconn *c = lr_container_of(t, struct rconn, enc_task);
    if (c->state != R_READY || c->loading)
        return;
    /* Renewals first: they keep held leases. Acquisitions and the rest take
     * the room left, so a flood of acquires cannot starve renewals. */
    if ((lr_list_is_empty(&c->askq) || encode_alone(c, &c->askq, true)) &&
        (lr_list_is_empty(&c->soloq) || encode_alone(c, &c->soloq, false)) &&
        encode_queue(c, &c->renq))
        encode_queue(c, &c->encq);
    wait_send(c); /* one WAIT after what this pass wrote, in the same send */
    rearm(c);
}

static void schedule_encode(struct rconn *c)
{
    if (c->state == R_READY && !c->loading &&
        (c->wait_due || (c->inflight < c->b->window &&
                         (!lr_list_is_empty(&c->renq) || !lr_list_is_empty(&c->encq) ||
                          !lr_list_is_empty(&c->askq) || !lr_list_is_empty(&c->soloq)))))
        lr__loop_defer(c->net.loop, &c->enc_task);
}

/* ------------------------------------------------------ session mode */

static int error_status(const struct reply *r);
static bool is_noscript(const struct reply *r);

static uint32_t broken_bucket(const uint8_t token[16])
{
    uint32_t h;
    memcpy(&h, token, sizeof(h)); /* tokens are random */
    return h & (BROKEN_MAX - 1);
}

static int32_t broken_find(const struct broken_tab *t, const uint8_t token[16])
{
    if (!t->count)
        return -1;
    for (int32_t i = t->heads[broken_bucket(token)]; i >= 0; i = t->e[i].next)
        if (!memcmp(t->e[i].token, token, 16))
            return i;
    return -1;
}

/* Drop the entries, oldest first, whose time is up. */
static void broken_expire(struct broken_tab *t, uint64_t now_ms)
{
    while (t->count && t->e[t->head].until_ms <= now_ms) {
        int32_t i = (int32_t)t->head;
        int32_t *p = &t->heads[broken_bucket(t->e[i].token)];
        while (*p != i)
            p = &t->e[*p].next;
        *p = t->e[i].next;
        t->head = (t->head + 1) & (BROKEN_MAX - 1);
        t->count--;
    }
}

/* Remember @token until @until_ms; false if the table is full. */
static bool broken_add(struct broken_tab *t, const uint8_t token[16], uint64_t until_ms)
{
    int32_t i = broken_find(t, token);
    if (i >= 0) {
        if (t->e[i].until_ms < until_ms)
            t->e[i].until_ms = until_ms;
        return true;
    }
    if (t->count == BROKEN_MAX)
        return false;
    i = (int32_t)((t->head + t->count) & (BROKEN_MAX - 1));
    memcpy(t->e[i].token, token, 16);
    t->e[i].until_ms = until_ms;
    uint32_t bk = broken_bucket(token);
    t->e[i].next = t->heads[bk];
    t->heads[bk] = i;
    t->count++;
    return true;
}

static int hexval(char ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    return -1;
}

/* 32 lowercase hex digits (lr__hex of a token) back to 16 bytes. */
static bool unhex_token(const char *in, size_t len, uint8_t out[16])
{
    if (len != 32)
        return false;
    for (size_t i = 0; i < 16; i++) {
        int hi = hexval(in[2 * i]), lo = hexval(in[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return false;
        out[i] = (uint8_t)(hi << 4 | lo);
    }
    return true;
}

/* A fresh random session id, so a session found gone is never revived. */
static void session_new_id(struct session *s)
{
    struct lr__backend *b = s->b;
    uint8_t id[16];
    uint64_t r[2] = {lr__manager_rand(b->m), lr__manager_rand(b->m)};
    memcpy(id, r, sizeof(id));
    memcpy(s->key, b->prefix, b->prefix_len);
    memcpy(s->key + b->prefix_len, "session:", 8);
    lr__hex(id, 16, s->key + b->prefix_len + 8);
    s->key_len = b->prefix_len + 8 + 32;
}

/* The session of TTL @ttl; with @create, made when missing (NULL if all
 * MAX_SESSIONS are used). */
static struct session *session_find(struct lr__backend *b, uint32_t ttl, bool create)
{
    for (unsigned i = 0; i < MAX_SESSIONS; i++) {
        struct session *s = &b->sessions[i];
        if (s->ttl_ms == ttl)
            return s;
        if (!s->ttl_ms) {
            if (!create)
                return NULL;
            s->keep_ms = (uint32_t)lr__validity_keep_ms(lr__manager_opts(b->m), ttl);
            s->ttl_ms = ttl;
            session_new_id(s);
            return s;
        }
    }
    return NULL;
}

/* Where @l's current validity started (ms; the send that gave it). */
static uint64_t validity_start(const struct session *s, const struct lr_lease *l)
{
    return l->valid_until > s->keep_ms ? l->valid_until - s->keep_ms : 0;
}

static uint64_t session_period_ms(const struct session *s)
{
    uint64_t p = (uint64_t)((double)s->ttl_ms * lr__manager_opts(s->b->m)->renew_fraction);
    return p ? p : 1;
}

/* A lease whose validity started at @v waits: make sure a renewal goes out
 * in time for it, but no sooner than the rate limit allows. */
static void session_kick(struct session *s, uint64_t v)
{
    if (s->inflight)
        return; /* its reply serves what it can and kicks again */
    struct lr__backend *b = s->b;
    const struct lr_manager_opts *o = lr__manager_opts(b->m);
    uint64_t now = lr_loop_now_ms(lr__manager_loop(b->m));
    uint64_t period = session_period_ms(s), gap = period / 8 ? period / 8 : 1;
    uint64_t guard = o->loss_guard_ms      ? o->loss_guard_ms
                     : s->ttl_ms / 100 > 2 ? s->ttl_ms / 100
                                           : 2;
    uint64_t last = s->last_sent_ns / 1000000u;
    uint64_t due = s->last_sent_ns ? last + (s->retry ? gap : period) : now;
    /* the latest send that still answers before the lease's stop point */
    uint64_t room =
        s->keep_ms > guard + o->request_timeout_ms ? s->keep_ms - guard - o->request_timeout_ms : 0;
    uint64_t latest = v + room;
    if (due > latest)
        due = latest > last + gap ? latest : last + gap;
    if (due < now)
        due = now;
    if (!lr_timer_is_active(&s->timer) || lr_timer_deadline(&s->timer) > due)
        lr_timer_start(&s->timer, due);
}

/* Answer @l's RENEW from what the session knows, or park it. */
static void session_serve(struct session *s, struct lr_lease *l)
{
    uint64_t v = validity_start(s, l);
#ifndef LR_PLANT_SKIP_BROKEN /* planted bug, for checking that the tests see it */
    bool broken = broken_find(&s->b->broken, l->token) >= 0;
#else
    bool broken = false;
#endif
    if (v < s->lost_before_ms || broken) {
        complete(l, LR_ELOST);
        return;
    }
    if (s->confirmed_ns && s->confirmed_ns / 1000000u > v) {
        /* sent strictly after the validity start (a later millisecond) */
        lr__lease_sent(l, s->confirmed_ns);
        complete(l, 0);
        return;
    }
    lr_list_push_tail(&s->parked, &l->req.link);
    session_kick(s, v);
}

/* Answer what waits on the sessions' failing and ready lists, at most
 * SERVE_PER_PASS RENEWs a pass; the rest in the next pass. Each lease is
 * taken off its list before its callback, which may release, deinitialise
 * or renew any lease. */
static void serve_run(struct lr__task *t)
{
    struct lr__backend *b = lr_container_of(t, struct lr__backend, serve_task);
    struct lr_loop *loop = lr__manager_loop(b->m);
    broken_expire(&b->broken, lr_loop_now_ms(loop));
    unsigned budget = SERVE_PER_PASS;
    for (unsigned i = 0; i < MAX_SESSIONS && budget && !b->closing; i++) {
        struct session *s = &b->sessions[i];
        struct lr_list *n;
        for (; budget && (n = lr_list_pop(&s->failing)); budget--) {
            struct lr_lease *l = lease_of(hdr_of(n));
            complete(l, validity_start(s, l) < s->lost_before_ms ? LR_ELOST : s->fail_status);
        }
        for (; budget && (n = lr_list_pop(&s->ready)); budget--)
            session_serve(s, lease_of(hdr_of(n)));
    }
    for (unsigned i = 0; i < MAX_SESSIONS && !b->closing; i++)
        if (!lr_list_is_empty(&b->sessions[i].failing) || !lr_list_is_empty(&b->sessions[i].ready))
            lr__loop_defer(loop, &b->serve_task);
}

/* Complete every parked RENEW with @status (the renewal they waited for
 * failed, or the session is gone), from the deferred phase. */
static void session_fail_parked(struct session *s, int status)
{
    s->fail_status = status;
    lr_list_splice_tail(&s->failing, &s->parked);
    lr__loop_defer(lr__manager_loop(s->b->m), &s->b->serve_task);
}

/* The renewal in flight failed without a definite answer (or was refused):
 * what waited for it is in jeopardy; the core retries, and the next renewal
 * may go early. */
static void session_failed(struct session *s, int status)
{
    s->inflight = false;
    s->retry = true;
    session_fail_parked(s, status);
}

/* The session key is gone: every lease of the session is lost, and the
 * session goes on under a new id (the old key must never come back while
 * lease hashes name it: they would be held by nobody, for ever). */
static void session_lost(struct session *s)
{
    struct lr__backend *b = s->b;
    s->inflight = false;
    s->retry = false;
    s->confirmed_ns = 0;
    s->last_sent_ns = 0;
    s->lost_before_ms = lr_loop_now_ms(lr__manager_loop(b->m)) + 1;
    char t[SESSION_KEY_MAX + 64];
    snprintf(t, sizeof(t), "session %.*s expired; its leases are lost", (int)s->key_len, s->key);
    report(b, LR_ELOST, t, "");
    session_new_id(s);
    session_fail_parked(s, LR_ELOST);
}

static void session_send(struct session *s, struct rconn *c)
{
    struct lr__backend *b = s->b;
    char bkey[SESSION_KEY_MAX], num[24], cap[24];
    memcpy(bkey, s->key, s->key_len);
    memcpy(bkey + s->key_len, ":broken", 7);
    struct lr_resp_arg argv[7] = {{"EVALSHA", 7},
                                  {b->sha[SCRIPT_SESSION_RENEW], 40},
                                  {"2", 1},
                                  {s->key, s->key_len},
                                  {bkey, s->key_len + 7},
                                  {num, u64_format(s->ttl_ms, num)},
                                  {cap, u64_format(SESSION_REPORT_MAX, cap)}};
    if (!encode_internal(c, &s->req, K_SESSION, 7, argv)) {
        /* the output buffer is full: try again when it has drained a bit */
        lr_timer_start(&s->timer, lr_loop_now_ms(c->net.loop) + 1);
        return;
    }
    s->inflight = true;
    s->last_sent_ns = s->req.sent_ns;
    lr__manager_stats(b->m)->requests++;
    c->wait_due |= b->wait_renew;
    wait_send(c);
    rearm(c);
}

static void session_timer(struct lr_timer *t)
{
    struct session *s = t->data;
    struct lr__backend *b = s->b;
    if (s->inflight || lr_list_is_empty(&s->parked) || b->closing)
        return; /* renewals go out only for leases that wait for one */
    struct rconn *c = &b->conns[s->idx % b->nconns];
    if (c->state == R_READY && !c->loading) {
        session_send(s, c);
    } else if (c->state == R_DOWN || c->state == R_FAILING) {
        bool definite = c->last_error == LR_EAUTH || c->last_error == LR_ETLS ||
                        c->last_error == LR_ESTORE;
        session_failed(s, definite ? c->last_error : LR_EUNAVAIL); /* never sent */
    } else {
        lr_timer_start(&s->timer, lr_loop_now_ms(c->net.loop) + 10); /* coming up */
    }
}

/* One element of a session renewal's reply: {1, count, token...}. */
static void session_token(struct rconn *c, struct reply *r, const struct lr_resp_token *t)
{
    int64_t i = r->idx++;
    uint8_t tok[16];
    if (i == 0) {
        if (t->type != LR_RESP_INT || t->integer != 1)
            r->bad = true;
    } else if (i == 1) {
        if (t->type != LR_RESP_INT || t->integer < 0)
            r->bad = true;
        else
            r->more = t->integer;
    } else if (t->type == LR_RESP_BULK && !t->nil && unhex_token(t->str, t->len, tok)) {
        uint64_t now = lr_loop_now_ms(c->net.loop);
        if (!broken_add(&c->b->broken, tok, now + r->sess->ttl_ms))
            r->overflow = true;
    } else {
        r->bad = true;
    }
}

/* An acquisition sent under a session found gone since: its leases are
 * lost, so do not start one. Not applied as far as we are concerned: the
 * core retries, and the same token re-acquires idempotently under the new
 * session (same fence) unless someone took it. */
static bool session_gone_since_sent(struct lr__backend *b, const struct lr_lease *l)
{
    const struct session *ss = b->session_mode ? session_find(b, l->ttl_ms, false) : NULL;
    return ss && l->sent_ns / 1000000u < ss->lost_before_ms;
}

/* A session renewal succeeded (@confirm: and confirms the session's leases):
 * serve what waited for it. */
static void session_accept(struct session *s, bool confirm)
{
    s->inflight = false;
    s->retry = !confirm;
    if (confirm)
        s->confirmed_ns = s->req.sent_ns;
    lr_list_splice_tail(&s->ready, &s->parked);
    lr__loop_defer(lr__manager_loop(s->b->m), &s->b->serve_task);
}

static void session_reply(struct rconn *c, struct session *s, const struct reply *r)
{
    s->inflight = false;
    if (r->type == LR_RESP_ERROR) {
        if (is_noscript(r)) { /* not applied: reload, then send again */
            if (!c->loading)
                encode_loads(c);
            lr_timer_start(&s->timer, lr_loop_now_ms(c->net.loop));
            return;
        }
        int st = error_status(r);
        if (st == RECONNECT) {
            session_failed(s, -ECONNRESET);
            c->redirected = true;
            conn_fail(c, -ECONNRESET);
            return;
        }
        session_failed(s, st);
        return;
    }
    if (r->type == LR_RESP_INT && !r->bad && r->integer == 0) {
        session_lost(s);
        return;
    }
    if (r->bad || r->type != LR_RESP_ARRAY || r->idx < 2) {
        session_failed(s, LR_EBADREPLY);
        return;
    }
    /* Confirmed only when every break the store has for the session is in
     * the table: a lease missing from it might be one of those. */
    bool confirm = !r->overflow && r->more <= r->idx - 2;
    c->redirected = false;
    if (s->b->wait_renew) { /* the WAIT after it decides (wait_reply) */
        s->inflight = true;
        s->wait_held = true;
        s->wait_confirm = confirm;
        return;
    }
    session_accept(s, confirm);
}

static void session_submit(struct lr__backend *b, struct session *s, struct lr_lease *l)
{
    l->req.batch = UNSENT;
    l->req.conn = (uint8_t)(s->idx % b->nconns);
    lr_list_push_tail(&s->ready, &l->req.link);
    lr__loop_defer(lr__manager_loop(b->m), &b->serve_task);
}

/* ------------------------------------------- ?wait=N: replicas confirm
 *
 * An encode pass that wrote an acquisition (or, with ?wait_renew=yes, a
 * renewal or session renewal) ends with one WAIT N T on that connection, in
 * the same send; at most one WAIT is in flight per connection, and what is
 * written meanwhile gets the next one, sent when the first is answered (an
 * output buffer too full for it: when it drains). Replies come in send
 * order, so when a WAIT answers, every write whose reply came before it was
 * sent before it: the WAIT's count covers them all. Such a write's success
 * is therefore held on c->waiting until then -- the lease stays counted in
 * the window and cancel() still just unlinks it -- and its fence is kept in
 * the lease's own request header (req.seq and req.batch, free once the
 * reply came), so holding costs no memory. N or more replicas: the holds
 * complete as their replies said. Fewer, or an error: they complete as
 * ambiguous (-ETIMEDOUT: written on the primary, maybe not on a replica a
 * failover would promote), as a request whose connection dropped (READONLY
 * or MOVED: the connection is dropped, and they complete with it); the core
 * retries an acquisition with the same token (idempotent) and puts a
 * renewal's lease in jeopardy. Failures that wrote nothing (a conflict, a
 * renewal found not ours) complete at once. WAIT blocks the connection on
 * the server for up to T ms while replicas lag: requests behind it, renewals
 * included, wait that long too. */

/* Fences up to here fit the request header (batch must never read UNSENT). */
#define WAIT_FENCE_MAX ((uint64_t)(UNSENT - 1) << 32 | 0xffffffffu)

/* A lease's reply @res came: hold it for the WAIT (true), or not. */
static bool wait_park(struct rconn *c, struct lr_lease *l, struct lr__result *res)
{
    if (res->status != 0 || !wait_covers(c->b, l->req.kind))
        return false;
    if (l->req.kind == LR_OP_ACQUIRE && res->fence > WAIT_FENCE_MAX) {
        report(c->b, LR_EBADREPLY, "fence beyond 2^48 cannot wait for replicas", "");
        res->status = LR_EBADREPLY;
        return false;
    }
    l->req.seq = (uint32_t)res->fence;
    l->req.batch = (uint16_t)(res->fence >> 32);
    lr_list_push_tail(&c->waiting, &l->req.link);
    c->inflight++; /* still in flight until the WAIT answers */
    return true;
}

static void wait_send(struct rconn *c)
{
    struct lr__backend *b = c->b;
    if (!c->wait_due || c->state != R_READY || lr_list_is_linked(&c->wait_q.hdr.link))
        return;
    char n[12], t[12];
    struct lr_resp_arg argv[3] = {
        {"WAIT", 4}, {n, u64_format(b->wait_n, n)}, {t, u64_format(b->wait_ms, t)}};
    if (!encode_internal(c, &c->wait_q, K_WAIT, 3, argv))
        return; /* the output buffer is full: on_drain comes back here */
    c->wait_due = false;
    lr__manager_stats(b->m)->requests++;
}

/* Complete what waited for the WAIT: as its reply said (@status 0), or with
 * @status. Sessions held for it are served or failed alike. */
static void wait_finish(struct rconn *c, int status)
{
    struct lr__backend *b = c->b;
    for (unsigned i = 0; i < MAX_SESSIONS; i++) {
        struct session *s = &b->sessions[i];
        if (!s->wait_held || s->idx % b->nconns != c->idx)
            continue;
        s->wait_held = false;
        if (status == 0)
            session_accept(s, s->wait_confirm);
        else
            session_failed(s, status);
    }
    struct lr_list *n;
    while ((n = lr_list_pop(&c->waiting))) {
        struct lr_lease *l = lease_of(hdr_of(n));
        struct lr__result res = {.status = status, .holder_ttl_ms = -1};
        if (status == 0 && l->req.kind == LR_OP_ACQUIRE) {
            res.fence = (uint64_t)l->req.batch << 32 | l->req.seq;
            if (session_gone_since_sent(b, l)) /* while the WAIT ran */
                res.status = LR_EUNAVAIL;
        }
        c->inflight--;
        lr__lease_complete(l, &res); /* may close the manager: closing resets the list */
    }
}

/* The connection failed: what waited for a WAIT is as ambiguous as what was
 * in flight. */
static void wait_fail(struct rconn *c, int status)
{
    c->wait_due = false;
    wait_finish(c, status);
}

static void wait_reply(struct rconn *c, const struct reply *r)
{
    struct lr__backend *b = c->b;
    int status = 0;
    /* Whatever the reason, the writes were made and not confirmed: ambiguous
     * (never LR_EUNAVAIL, which says "not sent"). */
    if (r->type == LR_RESP_ERROR) { /* reply_done told the server's words */
        if (error_status(r) == RECONNECT) {
            c->redirected = true;
            conn_fail(c, -ECONNRESET);
            return;
        }
        report(b, -ETIMEDOUT, "WAIT refused; writes not confirmed", "");
        status = -ETIMEDOUT;
    } else if (r->type != LR_RESP_INT || r->bad) {
        report(b, LR_EBADREPLY, "WAIT: not an integer reply; writes not confirmed", "");
        status = -ETIMEDOUT;
    } else if (r->integer < (int64_t)b->wait_n) {
        char t[128];
        snprintf(t, sizeof(t),
                 "WAIT: %lld of %u replicas acknowledged within %u ms; writes not confirmed",
                 (long long)r->integer, b->wait_n, b->wait_ms);
        report(b, -ETIMEDOUT, t, "");
        status = -ETIMEDOUT;
    }
    wait_finish(c, status);
}

/* ------------------------------------------------------------ replies */

/* Does the error reply start with @word, as a whole word? */
static bool err_is(const struct reply *r, const char *word)
{
    size_t n = strlen(word);
    return r->err_len >= n && !memcmp(r->err, word, n) && (r->err_len == n || r->err[n] == ' ');
}

/* What a server error means for its request (see the top of the file). */
static int error_status(const struct reply *r)
{
    static const char *const auth[] = {"NOAUTH", "WRONGPASS", "NOPERM", "ERR invalid password",
                                       "ERR AUTH"};
    static const char *const unavail[] = {"LOADING", "BUSY", "MASTERDOWN", "TRYAGAIN",
                                          "CLUSTERDOWN"};
    for (size_t i = 0; i < sizeof(auth) / sizeof(auth[0]); i++)
        if (r->err_len >= strlen(auth[i]) && !memcmp(r->err, auth[i], strlen(auth[i])))
            return LR_EAUTH;
    if (err_is(r, "READONLY") || err_is(r, "MOVED"))
        return RECONNECT; /* standalone: not the primary any more */
    for (size_t i = 0; i < sizeof(unavail) / sizeof(unavail[0]); i++)
        if (err_is(r, unavail[i]))
            return LR_EUNAVAIL;
    if (err_is(r, "OOM"))
        return LR_ESTORE;
    return LR_EBADREPLY;
}

/* Tell the store_error callback about a server error, once per reply. */
static void report_reply_error(struct rconn *c, const struct reply *r, int status)
{
    char t[sizeof(r->err) + 32];
    int n = r->err_len;
    /* a script's error ends with where in the script it happened: noise here */
    const char *where = memmem(r->err, (size_t)n, " script: ", 9);
    if (where)
        n = (int)(where - r->err);
    while (n && (r->err[n - 1] == '\r' || r->err[n - 1] == '\n'))
        n--;
    snprintf(t, sizeof(t), "%s%.*s%s", status == LR_EAUTH ? "auth refused: " : "", n, r->err,
             status == RECONNECT ? "; reconnecting" : "");
    creport(c, status == RECONNECT ? -ECONNRESET : status, t, "");
}

static bool is_noscript(const struct reply *r)
{
    return r->err_len >= 8 && !memcmp(r->err, "NOSCRIPT", 8);
}

static uint16_t lease_slot(const struct lr__backend *b, const struct lr_lease *l);
static bool cluster_redirect(struct rconn *c, struct lr_lease *l, const struct reply *r);

/* A NOSCRIPT answer: reload on this connection and send the request again. */
static void requeue(struct rconn *c, struct lr_lease *l)
{
    l->req.batch = (uint16_t)(UNSENT | (c->b->cluster ? lease_slot(c->b, l) : 0));
    lr_list_push_tail(l->req.kind == LR_OP_RENEW ? &c->renq : &c->encq, &l->req.link);
    if (!c->loading)
        encode_loads(c);
}

/* Copy a token's string into @dst (NUL-terminated, truncated to @cap). */
static void copy_str(char *dst, size_t cap, const struct lr_resp_token *t)
{
    size_t n = t->len < cap - 1 ? t->len : cap - 1;
    memcpy(dst, t->str, n);
    dst[n] = '\0';
}

/* One element of a store check's reply. CONFIG GET (RESP2): name, value,
 * name, value... ROLE: {"master", offset, [replicas]} or {"slave", host,
 * port, state, offset} or {"sentinel", [names]}. Nested elements are
 * skipped; anything else unexpected is ignored (the check then says less). */
static void check_token(struct rconn *c, struct reply *r, const struct lr_resp_token *t)
{
    if (t->depth != 1)
        return;
    int64_t i = r->idx++;
    bool str = (t->type == LR_RESP_BULK || t->type == LR_RESP_SIMPLE) && !t->nil;
    if (r->chk == K_CHK_ROLE) {
        if (i == 0 && str) {
            copy_str(c->role, sizeof(c->role), t);
        } else if (i == 1 && str && !strcmp(c->role, "slave")) {
            copy_str(c->role_of, sizeof(c->role_of) - 8, t);
        } else if (i == 2 && t->type == LR_RESP_INT && !strcmp(c->role, "slave")) {
            size_t n = strlen(c->role_of);
            snprintf(c->role_of + n, sizeof(c->role_of) - n, ":%u", (unsigned)t->integer & 0xffff);
        }
        return;
    }
    if (!(i & 1)) { /* a parameter's name: kept until its value */
        if (str) {
            size_t n = t->len < LR_HOLDER_MAX ? t->len : LR_HOLDER_MAX;
            memcpy(r->holder, t->str, n);
            r->holder_len = (uint8_t)n;
        } else {
            r->holder_len = 0;
        }
        return;
    }
    if (!str)
        return;
#define NAME_IS(lit) (r->holder_len == sizeof(lit) - 1 && !memcmp(r->holder, lit, sizeof(lit) - 1))
    if (NAME_IS("maxmemory-policy"))
        copy_str(c->policy, sizeof(c->policy), t);
    else if (NAME_IS("appendonly"))
        c->aof = t->len == 3 && !memcmp(t->str, "yes", 3);
    else if (NAME_IS("appendfsync"))
        copy_str(c->fsync, sizeof(c->fsync), t);
#undef NAME_IS
}

/* Every check answered (ROLE comes last): go on, warn, or refuse. */
static void check_verdict(struct rconn *c)
{
    struct lr__backend *b = c->b;
    char t[256];
    if (!strcmp(c->role, "slave")) {
        /* a replica does not keep what we write for the primary: as READONLY */
        snprintf(t, sizeof(t), "is a replica (of %s), not the primary; reconnecting",
                 c->role_of[0] ? c->role_of : "?");
        creport(c, LR_EUNAVAIL, t, "");
        c->redirected = true;
        conn_fail(c, LR_EUNAVAIL);
        return;
    }
    if (!strcmp(c->role, "sentinel")) {
        creport(c, LR_ESTORE, "is a Sentinel, not a data server", "");
        conn_fail(c, LR_ESTORE);
        return;
    }
    if (!strncmp(c->policy, "allkeys-", 8) && !b->allow_eviction) {
        snprintf(t, sizeof(t),
                 "maxmemory-policy %s can evict fence counters (tokens could repeat); refused: "
                 "use noeviction or allow_eviction=yes",
                 c->policy);
        creport(c, LR_ESTORE, t, "");
        conn_fail(c, LR_ESTORE);
        return;
    }
    if (c->cfg_refused && !b->warned_config) {
        b->warned_config = true;
        snprintf(t, sizeof(t),
                 "warning: CONFIG GET refused (%s): eviction and persistence not checked",
                 c->cfg_err);
        creport(c, LR_ESTORE, t, "");
    }
    if (!strncmp(c->policy, "volatile-", 9) && !b->allow_eviction && !b->warned_policy) {
        b->warned_policy = true;
        snprintf(t, sizeof(t),
                 "warning: maxmemory-policy %s can evict lease keys early (two holders; "
                 "fences still grow)",
                 c->policy);
        creport(c, LR_ESTORE, t, "");
    }
    if (c->aof == 0 && !b->warned_persistence) {
        b->warned_persistence = true;
        creport(c, LR_ESTORE,
               "warning: appendonly is no: a restart loses fence counters; tokens may repeat",
               "");
    }
}

/* An error, or a reply of another shape (a proxy or a look-alike server),
 * checks nothing and stops nothing: the verdict then warns that CONFIG GET
 * was refused, and an unknown role is taken as a primary (a write to a
 * replica still meets READONLY). */
static void check_reply(struct rconn *c, struct ireq *q, const struct reply *r)
{
    if ((r->type == LR_RESP_ERROR || r->type != LR_RESP_ARRAY) && q->hdr.kind != K_CHK_ROLE &&
        !c->cfg_refused) {
        int n = r->type == LR_RESP_ERROR ? r->err_len : 0;
        while (n && (r->err[n - 1] == '\r' || r->err[n - 1] == '\n'))
            n--;
        snprintf(c->cfg_err, sizeof(c->cfg_err), "%.*s", n, n ? r->err : "not an array");
        c->cfg_refused = true;
    }
    if (q->hdr.kind == K_CHK_ROLE)
        check_verdict(c);
}

static void internal_reply(struct rconn *c, struct ireq *q, const struct reply *r)
{
    struct lr__backend *b = c->b;
    if (is_check(q->hdr.kind)) {
        check_reply(c, q, r);
        return;
    }
    if (q->hdr.kind == K_SESSION) {
        session_reply(c, lr_container_of(q, struct session, req), r);
        return;
    }
    if (q->hdr.kind == K_WAIT) {
        wait_reply(c, r);
        return;
    }
    if (r->type == LR_RESP_ERROR) {
        /* the handshake failed: refused credentials stay definite; anything
         * else (a loading or demoted server) is tried again on a new connection */
        int st = error_status(r);
        conn_fail(c, st == LR_EAUTH ? LR_EAUTH : st == RECONNECT ? -ECONNRESET : LR_EUNAVAIL);
        return;
    }
    switch (q->hdr.kind) {
    case K_AUTH:
    case K_SELECT:
        if (r->type != LR_RESP_SIMPLE)
            conn_fail(c, LR_EBADREPLY);
        return;
    case K_ROLE: /* ["master", offset, replicas] (on_token kept element 0 in holder) */
        if (r->type != LR_RESP_ARRAY || r->holder_len != 6 || memcmp(r->holder, "master", 6)) {
            report(b, -ECONNRESET, "ROLE: not a master (a stale sentinel answer); ",
                   "asking the sentinels again");
            lr__sentinel_stale(b->sent);
            conn_fail(c, -ECONNRESET);
        }
        return;
    case K_LOAD:
        if (r->type != LR_RESP_BULK || r->nil || r->sha_len != 40) {
            conn_fail(c, LR_EBADREPLY);
            return;
        }
        memcpy(b->sha[q->script], r->sha, 40);
        if (q->script == NSCRIPTS - 1) {
            c->loading = false;
            if (c->state == R_HANDSHAKE) {
                c->state = R_READY;
                log_up(c);
                if (c->ever_ready)
                    lr__manager_stats(b->m)->reconnects++;
                c->ever_ready = true;
                if (!c->redirected) /* a replica answers the handshake too */
                    c->attempt = 0;
                c->last_error = 0;
            }
            schedule_encode(c);
        }
        return;
    default:
        return;
    }
}

static void lease_reply(struct rconn *c, struct lr_lease *l, const struct reply *r)
{
    struct lr__result res = {.holder_ttl_ms = -1};
    if (r->type == LR_RESP_ERROR) {
        if (is_noscript(r)) {
            requeue(c, l);
            return;
        }
        if (c->b->cluster && cluster_redirect(c, l, r))
            return;
        res.status = error_status(r);
        if (res.status == RECONNECT) {
            /* A demoted primary: nothing more on this connection is worth
             * sending. This request fails with the rest of the pipeline, as
             * ambiguous (the core retries within validity). */
            lr_list_push_tail(c->pending.next, &l->req.link); /* to the front */
            c->inflight++;
            c->redirected = true; /* back off until a request succeeds again */
            conn_fail(c, -ECONNRESET);
            return;
        }
    } else if (r->bad) {
        res.status = LR_EBADREPLY;
    } else if (l->req.kind == LR_OP_ACQUIRE && !l->meta_len) {
        /* batched: this name's element of the reply */
        const struct slot *s = l->req.batch < r->idx && r->type == LR_RESP_ARRAY &&
                                       l->req.batch < c->b->batch
                                   ? &c->slots[l->req.batch]
                                   : NULL;
        if (!s || s->bad) {
            res.status = LR_EBADREPLY;
        } else if (s->conflict) {
            res.status = LR_ECONFLICT;
            res.holder = s->holder;
            res.holder_len = s->holder_len;
            res.holder_ttl_ms = s->value;
        } else {
            res.fence = (uint64_t)s->value;
            if (session_gone_since_sent(c->b, l))
                res.status = LR_EUNAVAIL;
        }
    } else if (l->req.kind == LR_OP_ACQUIRE) {
        if (r->type == LR_RESP_INT && r->integer > 0) {
            res.fence = (uint64_t)r->integer;
        } else if (r->type == LR_RESP_ARRAY && r->integer == 2 && r->idx == 2) {
            res.status = LR_ECONFLICT;
            res.holder = r->holder;
            res.holder_len = r->holder_len;
            res.holder_ttl_ms = r->pttl;
        } else {
            res.status = LR_EBADREPLY;
        }
    } else if (l->req.kind == LR_OP_RENEW) {
        int8_t v = l->req.batch < r->idx ? c->vals[l->req.batch] : -1;
        res.status = v == 1 ? 0 : v == 0 ? LR_ELOST : LR_EBADREPLY;
    } else if (l->req.kind == LR_OP_BREAK) {
        res.status = r->type == LR_RESP_INT ? 0 : LR_EBADREPLY; /* 0: nothing was held */
    } else if (l->req.kind == LR_OP_INSPECT) {
        /* filled token by token (inspect_token): {-2}, or pttl and pairs */
        res.status = r->type == LR_RESP_ARRAY && r->idx >= 1 && r->idx % 2 == 1 ? 0
                                                                                : LR_EBADREPLY;
    } else { /* release, change */
        if (r->type == LR_RESP_INT && (r->integer == 0 || r->integer == 1))
            res.status = r->integer ? 0 : LR_ELOST;
        else
            res.status = LR_EBADREPLY;
    }
    if (res.status == 0)
        c->redirected = c->said_down = false;
    if (wait_park(c, l, &res))
        return; /* a write: done once replicas have it */
    lr__lease_complete(l, &res);
}

/* A whole reply arrived: hand it to every request that carries its sequence. */
static void reply_done(struct rconn *c)
{
    struct reply *r = &c->cur;
    r->active = false;
    if (r->oob)
        return;
    uint32_t seq = c->reply_seq++;
    /* Checks say it their way; a cluster's redirections are routine, and
     * CLUSTERDOWN, which every request meets while a failover runs, is told
     * once per connection until a request succeeds again (not once per
     * reply: hundreds a pass). */
    bool down = c->b->cluster && err_is(r, "CLUSTERDOWN");
    if (r->type == LR_RESP_ERROR && !is_noscript(r) && !r->chk && !(down && c->said_down) &&
        !(c->b->cluster && (err_is(r, "MOVED") || err_is(r, "ASK") || err_is(r, "TRYAGAIN"))))
        report_reply_error(c, r, error_status(r));
    c->said_down |= down;
    struct lr_list *n;
    while ((n = lr_list_first(&c->pending))) {
        struct lr__reqhdr *h = lr_container_of(n, struct lr__reqhdr, link);
        if (h->seq != seq)
            break; /* the owner of this reply was abandoned */
        lr_list_unlink(n);
        if (h->kind >= K_AUTH) {
            internal_reply(c, ireq_of(h), r);
        } else {
            c->inflight--;
            lease_reply(c, lease_of(h), r);
        }
        if (c->state != R_READY && c->state != R_HANDSHAKE)
            return; /* the connection failed under us */
    }
    schedule_encode(c); /* the window may have room again */
    rearm(c);
}

/* An inspection's reply: where the field name of the current pair went. */
enum { KEPT_META = 1, KEPT_SCRATCH, KEPT_NONE };

static bool field_is(const char *k, size_t kl, const char *lit)
{
    return kl == strlen(lit) && !memcmp(k, lit, kl);
}

/* The carrier of the inspection this reply answers, or NULL if it was
 * abandoned meanwhile (its tokens are then dropped with the reply). */
static struct lr__inspect_out *inspect_target(struct rconn *c, struct reply *r)
{
    struct lr_list *head = lr_list_first(&c->pending);
    if (!r->insp || head != &r->insp->req.link || hdr_of(head)->seq != c->reply_seq)
        return NULL;
    return lr__inspect_out(r->insp);
}

/* One element of inspect_lua's reply: {-2} (free), or {pttl, field, value,
 * ...}. A field name is kept where its pair would go in the metadata (or,
 * if that is full, in r->err, so that leasering's own fields are still
 * seen) until its value comes. */
static void inspect_token(struct rconn *c, struct reply *r, const struct lr_resp_token *t)
{
    struct lr__inspect_out *o = inspect_target(c, r);
    int64_t i = r->idx++;
    if (!o)
        return;
    if (t->depth != 1 || r->type != LR_RESP_ARRAY) {
        r->bad = true;
        return;
    }
    if (i == 0) {
        if (t->type != LR_RESP_INT || t->integer < -2)
            r->bad = true;
        else if (t->integer != -2) {
            o->held = 1;
            o->ttl_ms = t->integer;
        }
        return;
    }
    if (t->type != LR_RESP_BULK || t->nil) {
        r->bad = true;
        return;
    }
    size_t room = sizeof(o->meta) - o->meta_len;
    if (i % 2 == 1) { /* a field name */
        r->sub = (int64_t)t->len;
        if (t->len + 1 < room) {
            memcpy(o->meta + o->meta_len, t->str, t->len);
            r->kept = KEPT_META;
        } else if (t->len < sizeof(r->err)) {
            memcpy(r->err, t->str, t->len);
            r->kept = KEPT_SCRATCH;
        } else {
            r->kept = KEPT_NONE; /* a long user field that does not fit: left out */
        }
        return;
    }
    size_t kl = (size_t)r->sub;
    const char *k = r->kept == KEPT_META ? o->meta + o->meta_len : r->err;
    if (r->kept == KEPT_NONE)
        return;
    if (field_is(k, kl, "owner")) {
        size_t n = t->len < 32 ? t->len : 32;
        memcpy(o->token, t->str, n);
        o->token[n] = '\0';
    } else if (field_is(k, kl, "fence")) {
        uint64_t f = 0;
        for (size_t j = 0; j < t->len && t->str[j] >= '0' && t->str[j] <= '9'; j++)
            f = f * 10 + (uint64_t)(t->str[j] - '0');
        o->fence = f;
    } else if (field_is(k, kl, "identity")) {
        size_t n = t->len < LR_IDENTITY_MAX ? t->len : LR_IDENTITY_MAX;
        memcpy(o->identity, t->str, n);
        o->identity[n] = '\0';
    } else if (field_is(k, kl, "session")) {
        /* the holder's session key: not metadata */
    } else if (r->kept == KEPT_META) {
        lr__inspect_add_meta(o, o->meta + o->meta_len, kl, t->str, t->len);
    }
}

static void copy_prefix(char *dst, size_t cap, uint16_t *len, const struct lr_resp_token *t)
{
    size_t n = t->len < cap ? t->len : cap;
    memcpy(dst, t->str, n);
    *len = (uint16_t)n;
}

static void on_token(struct rconn *c, const struct lr_resp_token *t)
{
    struct reply *r = &c->cur;
    if (!r->active) {
        memset(r, 0, offsetof(struct reply, holder));
        r->sha_len = 0;
        r->active = true;
        r->type = t->type;
        r->nil = t->nil;
        r->integer = t->integer;
        r->pttl = -1;
        r->oob = t->type == LR_RESP_PUSH;
        struct lr_list *head = lr_list_first(&c->pending);
        if (head && !r->oob && hdr_of(head)->seq == c->reply_seq && hdr_of(head)->kind == K_SESSION)
            r->sess = lr_container_of(ireq_of(hdr_of(head)), struct session, req);
        if (head && !r->oob && hdr_of(head)->seq == c->reply_seq && is_check(hdr_of(head)->kind))
            r->chk = hdr_of(head)->kind;
        if (head && !r->oob && hdr_of(head)->seq == c->reply_seq &&
            hdr_of(head)->kind == LR_OP_INSPECT) {
            r->insp = lease_of(hdr_of(head));
            struct lr__inspect_out *o = lr__inspect_out(r->insp);
            o->held = 0;
            o->fence = 0;
            o->ttl_ms = -1;
            o->meta_len = 0;
            o->token[0] = o->identity[0] = '\0';
        }
        if (t->type == LR_RESP_ERROR || t->type == LR_RESP_BLOBERR) {
            r->type = LR_RESP_ERROR;
            copy_prefix(r->err, sizeof(r->err), &r->err_len, t);
        } else if (t->type == LR_RESP_BULK && !t->nil && t->len == 40) {
            memcpy(r->sha, t->str, 40);
            r->sha_len = 40;
        } else if (t->type == LR_RESP_ATTR) {
            r->bad = true; /* RESP2 servers never send attributes */
        }
    } else if (r->chk) {
        if (r->type == LR_RESP_ARRAY)
            check_token(c, r, t);
    } else if (r->sess) {
        if (t->depth == 1 && r->type == LR_RESP_ARRAY)
            session_token(c, r, t);
        else
            r->bad = true;
    } else if (r->insp) {
        inspect_token(c, r, t);
    } else if (t->depth == 2 && r->type == LR_RESP_ARRAY && r->idx > 0) {
        /* inside element idx-1 of a batched acquire reply: {holder, pttl} */
        int64_t i = r->idx - 1, k = r->sub++;
        struct slot *s = i < (int64_t)c->b->batch ? &c->slots[i] : NULL;
        if (!s) {
            r->bad = true;
        } else if (k == 0 && t->type == LR_RESP_BULK && !t->nil) {
            size_t n = t->len < LR_HOLDER_MAX ? t->len : LR_HOLDER_MAX;
            memcpy(s->holder, t->str, n);
            s->holder_len = (uint8_t)n;
        } else if (k == 1 && t->type == LR_RESP_INT) {
            s->value = t->integer;
        } else {
            s->bad = true;
        }
    } else if (t->depth == 1 && r->type == LR_RESP_ARRAY) {
        int64_t i = r->idx++;
        struct slot *s = i < (int64_t)c->b->batch ? &c->slots[i] : NULL;
        if (s) {
            s->conflict = t->type == LR_RESP_ARRAY;
            s->bad = !(t->type == LR_RESP_INT && t->integer > 0) &&
                     !(s->conflict && t->integer == 2);
            s->value = t->type == LR_RESP_INT ? t->integer : -1;
            s->holder_len = 0;
            r->sub = 0;
        }
        if (t->type == LR_RESP_INT) {
            if (i < (int64_t)sizeof(c->vals))
                c->vals[i] = t->integer == 1 ? 1 : t->integer == 0 ? 0 : -1;
            if (i == 1)
                r->pttl = t->integer;
        } else if (t->type == LR_RESP_BULK && !t->nil && i == 0) {
            size_t n = t->len < LR_HOLDER_MAX ? t->len : LR_HOLDER_MAX;
            memcpy(r->holder, t->str, n);
            r->holder_len = (uint8_t)n;
            if (i < (int64_t)sizeof(c->vals))
                c->vals[i] = -1;
        } else if (i < (int64_t)sizeof(c->vals)) {
            c->vals[i] = -1;
        }
    } else {
        r->bad = true;
    }
    if (t->last)
        reply_done(c);
}

static void on_data(struct lr__conn *nc, const char *buf, size_t len)
{
    struct rconn *c = nc->data;
    size_t off = 0;
    c->rx_ns = loop_ns(c);
    while (off < len && (c->state == R_READY || c->state == R_HANDSHAKE)) {
        struct lr_resp_token t;
        int rc = lr_resp_parse(&c->parser, buf + off, len - off, &t);
        if (rc == -EAGAIN)
            return;
        if (rc < 0) {
            creport(c, LR_EBADREPLY, "malformed reply; reconnecting", "");
            conn_fail(c, LR_EBADREPLY); /* a broken stream cannot be resynchronised */
            return;
        }
        off += (size_t)rc;
        on_token(c, &t);
    }
}

/* ---------------------------------------------------- connection life */

static void conn_fail(struct rconn *c, int err)
{
    if (c->state == R_FAILING || c->state == R_CLOSING || c->state == R_DOWN)
        return;
    c->state = R_FAILING; /* submits now answer LR_EUNAVAIL */
    c->last_error = err;
    c->loading = false;
    lr_timer_stop(&c->timer);
    lr__task_cancel(&c->enc_task);
    /* Sent requests are ambiguous: the server may have applied them. Refused
     * credentials or certificates are definite, for queued requests too. */
    bool definite = err == LR_EAUTH || err == LR_ETLS || err == LR_ESTORE;
    int ambiguous = err;
    struct lr_list *n;
    wait_fail(c, ambiguous); /* written, answered, not confirmed: as in flight */
    c->inflight = 0;
    while ((n = lr_list_pop(&c->pending))) {
        struct lr__reqhdr *h = lr_container_of(n, struct lr__reqhdr, link);
        if (h->kind < K_AUTH)
            complete(lease_of(h), ambiguous);
        else if (h->kind == K_SESSION)
            session_failed(lr_container_of(ireq_of(h), struct session, req), ambiguous);
    }
    if (c->b->cluster && !definite)
        cluster_requeue(c); /* unsent: they go where the next map says */
    fail_encq(c, definite ? err : LR_EUNAVAIL);
    lr__conn_close(&c->net);
}

static void on_connect(struct lr__conn *nc, int status)
{
    struct rconn *c = nc->data;
    if (c->state == R_CLOSING)
        return;
    if (status < 0) {
        char t[96];
        creport(c, status, err_text(status, t, sizeof(t)), "");
        connect_failed(c, status);
        return;
    }
    c->state = R_HANDSHAKE;
    c->said_down = false;
    lr_resp_parser_init(&c->parser);
    c->cur.active = false;
    c->next_seq = c->reply_seq = 0;
    c->inflight = 0;
    handshake(c);
    rearm(c);
}

static void on_drain(struct lr__conn *nc)
{
    schedule_encode(nc->data);
}

static void on_error(struct lr__conn *nc, int err)
{
    struct rconn *c = nc->data;
    char t[96];
    if (err == LR_ETLS) /* the lease sees only LR_ETLS: say why, once per failure */
        lr__manager_store_error(c->b->m, err, "rediss %s:%u: %s", lr__tls_host(c->tls),
                                lr__conn_port(nc), lr__tls_error_text(c->tls));
    else if (c->state != R_CLOSING) /* also while connecting: a TLS handshake cut short */
        creport(c, err, c->state == R_CONNECTING ? "connect: " : "connection lost: ",
               err_text(err, t, sizeof(t)));
    conn_fail(c, err);
}

/* Closing: one more connection (or the resolver) is done; the last tells the core. */
static void closed_one(struct lr__backend *b)
{
    if (++b->closed == b->nconns + 1 + (b->sent != NULL) + (b->cluster != NULL))
        b->close_done(b->m);
}

static void on_close(struct lr__conn *nc)
{
    struct rconn *c = nc->data;
    struct lr__backend *b = c->b;
    if (b->cluster && !b->closing && node_serves(b, c->node))
        lr__cluster_refresh(b->cluster); /* a failover may have moved its slots */
    if (b->closing) {
        closed_one(b);
        return;
    }
    schedule_reconnect(c);
}

static void resolver_closed(struct lr__resolver *r)
{
    closed_one(r->data);
}

/* ------------------------------------ redis+sentinel (redis_sentinel.c) */

static void sentinel_closed(void *arg)
{
    closed_one(arg);
}

/* Error texts name the master's address once the sentinels gave one. */
static void endpoint_of(struct lr__backend *b, const struct sockaddr *sa)
{
    char ip[64] = "?";
    unsigned port = 0;
    if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)sa;
        inet_ntop(AF_INET6, &a->sin6_addr, ip, sizeof(ip));
        port = ntohs(a->sin6_port);
    } else {
        const struct sockaddr_in *a = (const struct sockaddr_in *)sa;
        inet_ntop(AF_INET, &a->sin_addr, ip, sizeof(ip));
        port = ntohs(a->sin_port);
    }
    snprintf(b->endpoint, sizeof(b->endpoint), "%s%s%s:%u (master %s)",
             sa->sa_family == AF_INET6 ? "[" : "", ip, sa->sa_family == AF_INET6 ? "]" : "",
             port, lr__sentinel_master(b->sent));
}

/* The answer to lr__sentinel_lookup: connect every waiting connection. */
static void sentinel_found(void *owner, int status, const struct sockaddr *sa, socklen_t len)
{
    struct lr__backend *b = owner;
    if (status == 0) {
        endpoint_of(b, sa);
        resolved(&b->res, 0, sa, len);
        return;
    }
    for (unsigned i = 0; i < b->nconns && !b->closing; i++)
        if (b->conns[i].state == R_RESOLVING)
            connect_failed(&b->conns[i], status); /* the sentinel said why */
}

/* +switch-master: drop every data connection now; each reconnects to the new
 * master (what was in flight completes as ambiguous, as on any drop). */
static void sentinel_moved(void *owner, const struct sockaddr *sa, socklen_t len)
{
    struct lr__backend *b = owner;
    memcpy(&b->addr, sa, len);
    b->addrlen = len;
    endpoint_of(b, sa);
    for (unsigned i = 0; i < b->nconns && !b->closing; i++) {
        struct rconn *c = &b->conns[i];
        if (c->state == R_CONNECTING || c->state == R_HANDSHAKE || c->state == R_READY)
            conn_fail(c, -ECONNRESET);
    }
}

static const struct lr__sentinel_cbs sentinel_cbs = {
    .found = sentinel_found,
    .moved = sentinel_moved,
};

/* ------------------------------------- redis+cluster (redis_cluster.c) */

static uint64_t name_hash(const struct lr_lease *l);
static int conn_setup(struct lr__backend *b, unsigned i, const char *tls_name);

/* Does the map give @node any slot? (Failure paths only: a scan.) */
static bool node_serves(const struct lr__backend *b, unsigned node)
{
    return memchr(b->slot_owner, (int)node, LR__REDIS_SLOTS) != NULL;
}

/* A connection left down by schedule_reconnect (no retry armed) is needed
 * again: connect now. */
static void wake(struct rconn *c)
{
    if (c->state == R_DOWN && !lr_timer_is_active(&c->timer) && !c->b->closing)
        start_connect(c);
}

static uint16_t lease_slot(const struct lr__backend *b, const struct lr_lease *l)
{
    return lr__redis_lease_slot(b->prefix, b->prefix_len, l->name, l->name_len);
}

/* The connection of node @node that serves @l (by name hash, as standalone). */
static struct rconn *node_conn(struct lr__backend *b, unsigned node, const struct lr_lease *l)
{
    unsigned k = b->per_node == 1 ? 0 : (unsigned)(name_hash(l) % b->per_node);
    return &b->conns[node * b->per_node + k];
}

/* Which queue of a connection enqueue() uses. */
enum { ENQ_BATCHED, ENQ_ASK, ENQ_ALONE };

/* Queue @l (req.batch already UNSENT | slot) on @c: its renewal or other
 * queue, or (@how) its ASK or send-alone queue. Returns 0, or what submit
 * answers for a connection that cannot take it now. */
static int enqueue(struct rconn *c, struct lr_lease *l, int how)
{
    /* Refused certificates or credentials stay refused until a connection
     * gets through again: answer at once rather than queue the request
     * behind a reconnect that will most likely meet the same refusal (and
     * let it time out as "unavailable" first). */
    if (c->state != R_READY &&
        (c->last_error == LR_EAUTH || c->last_error == LR_ETLS || c->last_error == LR_ESTORE))
        return c->last_error;
    switch (c->state) {
    case R_READY:
    case R_HANDSHAKE:
    case R_RESOLVING:
    case R_CONNECTING:
        lr_list_push_tail(how == ENQ_ASK                ? &c->askq
                          : how == ENQ_ALONE            ? &c->soloq
                          : l->req.kind == LR_OP_RENEW ? &c->renq
                                                       : &c->encq,
                          &l->req.link);
        l->req.conn = (uint8_t)c->idx;
        if (c->state == R_READY) {
            schedule_encode(c);
            if (!lr_timer_is_active(&c->timer))
                rearm(c);
        } else {
            rearm(c);
        }
        return 0;
    default:
        return LR_EUNAVAIL;
    }
}

/* The oldest request waiting for a map times out a request timeout after
 * its submit (or last send), as one queued on a connection that is down. */
static void map_timer_arm(struct lr__backend *b, uint64_t since_ns)
{
    uint64_t due = (since_ns + (uint64_t)lr__manager_opts(b->m)->request_timeout_ms * 1000000u +
                    999999u) / 1000000u;
    if (!lr_timer_is_active(&b->map_timer) || lr_timer_deadline(&b->map_timer) > due)
        lr_timer_start(&b->map_timer, due);
}

/* @l waits until a map says which node serves its slot. */
static void map_wait(struct lr__backend *b, struct lr_lease *l)
{
    lr_list_push_tail(&b->mapwait, &l->req.link);
    map_timer_arm(b, l->sent_ns);
}

static void map_timer_fired(struct lr_timer *t)
{
    struct lr__backend *b = t->data;
    uint64_t now = lr__manager_loop(b->m)->now_ns;
    uint64_t limit = (uint64_t)lr__manager_opts(b->m)->request_timeout_ms * 1000000u;
    struct lr_list expired;
    lr_list_init(&expired);
    uint64_t next = UINT64_MAX;
    for (struct lr_list *n = b->mapwait.next; n != &b->mapwait;) {
        struct lr_list *after = n->next;
        struct lr_lease *l = lease_of(hdr_of(n));
        if (l->sent_ns + limit <= now) {
            lr_list_unlink(n);
            lr_list_push_tail(&expired, n);
        } else if (l->sent_ns < next) {
            next = l->sent_ns;
        }
        n = after;
    }
    if (next != UINT64_MAX)
        map_timer_arm(b, next);
    struct lr_list *n;
    while (!b->closing && (n = lr_list_pop(&expired)))
        complete(lease_of(hdr_of(n)), LR_EUNAVAIL); /* never sent */
}

/* Where the map sends @l now: its connection, or NULL (no master serves
 * the slot, or its node's connections could not be made). */
static struct rconn *route(struct lr__backend *b, struct lr_lease *l)
{
    uint8_t node = b->slot_owner[SLOT_OF(l->req.batch)];
    if (node == LR__CLUSTER_NO_NODE || (unsigned)node * b->per_node >= b->nconns)
        return NULL;
    return node_conn(b, node, l);
}

static int cluster_submit(struct lr__backend *b, struct lr_lease *l)
{
    l->req.batch = (uint16_t)(UNSENT | lease_slot(b, l));
    struct rconn *c = route(b, l);
    if (c)
        wake(c);
    if (c && (c->state != R_DOWN && c->state != R_FAILING))
        return enqueue(c, l, ENQ_BATCHED);
    /* no map yet, a slot nobody serves, or its node is down (a failover
     * may be under way): wait for a fresh map, within the request timeout */
    if (c && (c->last_error == LR_EAUTH || c->last_error == LR_ETLS ||
              c->last_error == LR_ESTORE))
        return c->last_error;
    lr__cluster_refresh(b->cluster);
    map_wait(b, l);
    return 0;
}

/* A connection failed (or never came up): what it had not sent yet waits
 * for the next map (a failover moves the slots of a dead master to its
 * promoted replica), and a map is asked for. */
static void cluster_requeue(struct rconn *c)
{
    struct lr__backend *b = c->b;
    struct lr_list *n;
    while ((n = lr_list_pop(&c->askq)) || (n = lr_list_pop(&c->soloq)) ||
           (n = lr_list_pop(&c->renq)) || (n = lr_list_pop(&c->encq)))
        map_wait(b, lease_of(hdr_of(n)));
    lr__cluster_refresh(b->cluster);
}

/* A new map: the requests waiting for one go where it says (or complete
 * as unavailable: nobody serves their slot, or its node is still down). */
static void cluster_map_changed(void *owner)
{
    struct lr__backend *b = owner;
    struct lr_list todo;
    lr_list_init(&todo);
    lr_list_splice_tail(&todo, &b->mapwait);
    lr_timer_stop(&b->map_timer);
    struct lr_list *n;
    while (!b->closing && (n = lr_list_pop(&todo))) {
        struct lr_lease *l = lease_of(hdr_of(n));
        struct rconn *c = route(b, l);
        if (c)
            wake(c);
        int rc = c ? enqueue(c, l, ENQ_BATCHED) : LR_EUNAVAIL;
        if (rc < 0)
            complete(l, rc); /* may close the manager: checked above */
    }
}

/* MOVED <slot> <ip:port>: the slot has a new owner for good (update the
 * map, send there, and ask for a whole new map: a reshard or a failover
 * moves more than one slot). ASK <slot> <ip:port>: the slot is migrating
 * and this key is already at the target: send it there once, behind
 * ASKING; the map stays. Both are definite "not executed" answers, so
 * sending again is safe. Returns false for any other error. */
static bool cluster_redirect(struct rconn *c, struct lr_lease *l, const struct reply *r)
{
    struct lr__backend *b = c->b;
    bool moved = err_is(r, "MOVED");
    if (err_is(r, "TRYAGAIN")) {
        /* A batch over a slot being migrated, its keys partly moved: each
         * name alone gets a definite answer. A request alone already:
         * unavailable for now (the core retries within validity). */
        struct lr_list *next = lr_list_first(&c->pending);
        if (l->req.batch == 0 && !(next && hdr_of(next)->seq == l->req.seq))
            return false;
        l->req.batch = (uint16_t)(UNSENT | lease_slot(b, l));
        int rc = enqueue(c, l, ENQ_ALONE);
        if (rc < 0)
            complete(l, rc);
        return true;
    }
    if (!moved && !err_is(r, "ASK")) {
        if (err_is(r, "CLUSTERDOWN"))
            lr__cluster_refresh(b->cluster);
        return false;
    }
    size_t i = moved ? 6 : 4, end = r->err_len;
    while (end > i && (r->err[end - 1] == '\r' || r->err[end - 1] == '\n'))
        end--;
    unsigned slot = 0;
    size_t digits = 0;
    for (; i < end && r->err[i] >= '0' && r->err[i] <= '9' && digits < 6; i++, digits++)
        slot = slot * 10 + (unsigned)(r->err[i] - '0');
    int node = -EINVAL;
    if (digits && i < end && r->err[i] == ' ')
        node = lr__cluster_redirect(b->cluster, slot, r->err + i + 1, end - i - 1, moved);
    if (moved)
        lr__cluster_refresh(b->cluster);
    int rc = LR_EUNAVAIL;
    if (node < 0) {
        char t[sizeof(r->err) + 64];
        snprintf(t, sizeof(t), "cannot follow \"%.*s\": %s", (int)end, r->err,
                 node == -ENOSPC ? "node table full" : "not <slot> <ip>:<port>");
        creport(c, LR_EBADREPLY, t, "");
    } else {
        l->req.batch = (uint16_t)(UNSENT | lease_slot(b, l));
        struct rconn *t = node_conn(b, (unsigned)node, l);
        wake(t);
        rc = enqueue(t, l, moved ? ENQ_BATCHED : ENQ_ASK);
    }
    if (rc < 0)
        complete(l, rc);
    return true;
}

/* A node joined the cluster's table: make its connections and connect. */
static int cluster_node_added(void *owner, unsigned node)
{
    struct lr__backend *b = owner;
    unsigned first = node * b->per_node;
    for (unsigned i = first; i < first + b->per_node; i++) {
        int rc = conn_setup(b, i, b->tls_name);
        if (rc < 0) {
            char t[96];
            snprintf(t, sizeof(t), "cannot make connections for node %s: ",
                     lr__cluster_node_name(b->cluster, node));
            report(b, rc, t, lr_strerror(rc));
            return rc; /* the parts made are freed with the backend */
        }
    }
    b->nconns = first + b->per_node;
    for (unsigned i = first; i < b->nconns && !b->closing; i++)
        start_connect(&b->conns[i]);
    return 0;
}

static void cluster_closed(void *arg)
{
    closed_one(arg);
}

static const struct lr__cluster_cbs cluster_cbs = {
    .node_added = cluster_node_added,
    .map_changed = cluster_map_changed,
};

static const struct lr__conn_cbs net_cbs = {
    .on_connect = on_connect,
    .on_data = on_data,
    .on_drain = on_drain,
    .on_error = on_error,
    .on_close = on_close,
};

/* ------------------------------------------------------ backend ops */

static void backend_free(struct lr__backend *b)
{
    if (!b)
        return;
    unsigned cap = b->cluster ? b->max_nodes * b->per_node : b->nconns;
    lr_timer_stop(&b->map_timer);
    for (unsigned i = 0; b->conns && i < cap; i++) {
        if (!b->conns[i].b)
            continue; /* creation failed before this connection was set up */
        lr__free(b->conns[i].grp);
        lr__free(b->conns[i].firsts);
        lr_timer_stop(&b->conns[i].timer);
        lr__task_cancel(&b->conns[i].enc_task);
        if (b->conns[i].net.out)
            lr__conn_deinit(&b->conns[i].net);
        lr__tls_free(b->conns[i].tls);
        lr__free(b->conns[i].slots);
    }
    for (unsigned i = 0; i < MAX_SESSIONS; i++)
        if (b->sessions[i].b)
            lr_timer_stop(&b->sessions[i].timer);
    lr__task_cancel(&b->serve_task);
    lr__free(b->broken.e);
    lr__free(b->broken.heads);
    lr__free(b->chains);
    lr__free(b->conns);
    lr__tls_ctx_free(b->tls_ctx);
    lr__sentinel_free(b->sent);
    lr__cluster_free(b->cluster);
    lr__resolver_deinit(&b->res);
    explicit_bzero(b->password, sizeof(b->password));
    lr__free(b);
}

static int parse_db(const char *s, int *db)
{
    if (!*s) {
        *db = 0;
        return 0;
    }
    long v = 0;
    for (const char *p = s; *p; p++) {
        if (*p < '0' || *p > '9' || p - s > 4)
            return -EINVAL;
        v = v * 10 + (*p - '0');
    }
    *db = (int)v;
    return 0;
}

/* Make connection @i (not connecting yet). Allocates (setup, or a cluster
 * node's first sight). On failure what was made is freed by backend_free. */
static int conn_setup(struct lr__backend *b, unsigned i, const char *tls_name)
{
    struct lr_loop *loop = lr__manager_loop(b->m);
    struct rconn *c = &b->conns[i];
    if (c->b) { /* a cluster node whose setup failed halfway: start over */
        lr__free(c->slots);
        lr__free(c->grp);
        lr__free(c->firsts);
        if (c->net.out)
            lr__conn_deinit(&c->net);
        lr__tls_free(c->tls);
        memset(c, 0, sizeof(*c));
    }
    c->b = b;
    c->idx = i;
    c->state = R_DOWN;
    lr_list_init(&c->renq);
    lr_list_init(&c->encq);
    lr_list_init(&c->askq);
    lr_list_init(&c->soloq);
    lr_list_init(&c->pending);
    lr__task_init(&c->enc_task, encode_run);
    lr_timer_init(loop, &c->timer, timer_fired);
    c->timer.data = c;
    lr_list_init(&c->auth.hdr.link);
    lr_list_init(&c->select.hdr.link);
    for (unsigned k = 0; k < 3; k++)
        lr_list_init(&c->chk[k].hdr.link);
    lr_list_init(&c->role_q.hdr.link);
    lr_list_init(&c->wait_q.hdr.link);
    lr_list_init(&c->waiting);
    for (unsigned s = 0; s < NSCRIPTS; s++)
        lr_list_init(&c->load[s].hdr.link);
    c->slots = lr__calloc(b->batch, sizeof(*c->slots));
    if (!c->slots)
        return -ENOMEM;
    if (b->cluster) {
        c->node = i / b->per_node;
        c->grp = lr__calloc(GROUP_MAX, sizeof(*c->grp));
        c->firsts = lr__calloc(GROUP_MAX, sizeof(*c->firsts));
        if (!c->grp || !c->firsts)
            return -ENOMEM;
    }
    int rc = lr__conn_init(&c->net, loop, OUT_BYTES, &net_cbs);
    if (rc == 0 && b->tls_ctx)
        rc = lr__tls_new(&c->tls, b->tls_ctx, tls_name);
    if (rc < 0)
        return rc;
    c->net.data = c;
    if (b->tls_ctx)
        lr__conn_set_tls(&c->net, c->tls);
    return 0;
}

/* A decimal number 1..@max, all of @s; 0 if it is not one. */
static uint32_t parse_count(const char *s, uint32_t max)
{
    uint64_t v = 0;
    for (const char *p = s; *p; p++) {
        if (*p < '0' || *p > '9' || v > max)
            return 0;
        v = v * 10 + (uint64_t)(*p - '0');
    }
    return v <= max ? (uint32_t)v : 0;
}

/* ?wait=N&wait_ms=T&wait_renew=yes|no. N 0..WAIT_N_MAX (0: off); T 1 ms to
 * below the request timeout (a WAIT that blocks longer would time the whole
 * connection out), default the smaller of 1000 ms and half the request
 * timeout. The reason for -EINVAL goes to store_error. */
#define WAIT_N_MAX 1000u
static int parse_wait(struct lr_manager *m, const struct lr__uri *u, uint32_t *n, uint32_t *ms,
                      bool *renew)
{
    uint32_t rt = lr__manager_opts(m)->request_timeout_ms;
    const char *pn = lr__uri_param(u, "wait"), *pt = lr__uri_param(u, "wait_ms");
    const char *pr = lr__uri_param(u, "wait_renew");
    *n = pn && strcmp(pn, "0") ? parse_count(pn, WAIT_N_MAX) : 0;
    *ms = rt / 2 < 1000 ? (rt / 2 ? rt / 2 : 1) : 1000;
    *renew = pr && !strcmp(pr, "yes");
    const char *why = NULL;
    for (unsigned i = 0; i < u->nparams; i++)
        if (!strncmp(u->params[i].key, "wait", 4) && strcmp(u->params[i].key, "wait") &&
            strcmp(u->params[i].key, "wait_ms") && strcmp(u->params[i].key, "wait_renew"))
            return -EINVAL; /* an unknown parameter, as any other */
    if (pn && strcmp(pn, "0") && !*n)
        why = "wait= must be a number of replicas, 0 (off) to 1000";
    else if (pt && !*n)
        why = "wait_ms= needs wait=N (N >= 1)";
    else if (pt && !(*ms = parse_count(pt, UINT32_MAX / 2)))
        why = "wait_ms= must be a number of milliseconds, at least 1";
    else if (*n && *ms >= rt)
        why = "wait_ms= must be below the request timeout (request_timeout_ms)";
    else if (pr && strcmp(pr, "yes") && strcmp(pr, "no"))
        why = "wait_renew= must be yes or no";
    else if (*renew && !*n)
        why = "wait_renew=yes needs wait=N (N >= 1)";
    if (!why)
        return 0;
    lr__manager_store_error(m, -EINVAL, "redis: %s", why);
    return -EINVAL;
}

static int redis_create(struct lr__backend **out, struct lr_manager *m, const struct lr__uri *u)
{
    const struct lr_manager_opts *o = lr__manager_opts(m);
    int rc;
    bool tls = !strncmp(u->scheme, "rediss", 6);
    bool sentinel = strstr(u->scheme, "+sentinel") != NULL;
    bool cluster = strstr(u->scheme, "+cluster") != NULL;
    static const char *const tls_params[] = {"cacert", "cert", "key", "insecure_skip_verify",
                                             "tls_name"};
    for (unsigned i = 0; i < u->nparams; i++) {
        bool known = !strcmp(u->params[i].key, "prefix") || !strcmp(u->params[i].key, "mode") ||
                     !strcmp(u->params[i].key, "db") ||
                     !strcmp(u->params[i].key, "allow_eviction") ||
                     !strncmp(u->params[i].key, "wait", 4);
        known |= sentinel && lr__sentinel_param(u->params[i].key);
        known &= sentinel || strcmp(u->params[i].key, "tls_name");
        known &= !cluster || strcmp(u->params[i].key, "db"); /* a cluster has database 0 only */
        for (size_t k = 0; tls && k < sizeof(tls_params) / sizeof(tls_params[0]); k++)
            known |= !strcmp(u->params[i].key, tls_params[k]);
        if (!known)
            return -EINVAL; /* unknown parameters are refused, not ignored */
    }
    const char *skip = lr__uri_param(u, "insecure_skip_verify");
    if (skip && strcmp(skip, "yes"))
        return -EINVAL;
    if (u->has_user && !u->has_password)
        return -EINVAL; /* an ACL user needs a password */
    const char *mode = lr__uri_param(u, "mode");
    if (mode && strcmp(mode, "session") && strcmp(mode, "lease"))
        return -EINVAL;
    /* redis+cluster: session mode would need a session key per slot (the
     * session renewal names the session key and the lease hashes share
     * nothing with it), which this backend does not do: refused; so are a
     * database (a cluster has only 0) and a path. */
    if (cluster && ((mode && !strcmp(mode, "session")) || u->path[0] || tls))
        return -EINVAL;
    /* A unix socket: unix:///PATH, or redis:///PATH (no host, a path). The
     * database is then only ?db=N; TLS is not offered over a socket. */
    bool unix_sock = !cluster && (!strcmp(u->scheme, "unix") || (!u->host[0] && u->path[0]));
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    if (unix_sock) {
        if (tls || u->host[0] || u->has_port || !u->path[0])
            return -EINVAL;
        if (strlen(u->path) + 2 > sizeof(sun.sun_path))
            return -ENAMETOOLONG;
        sun.sun_path[0] = '/';
        memcpy(sun.sun_path + 1, u->path, strlen(u->path) + 1);
    }
    const char *stls = lr__uri_param(u, "sentinel_tls"); /* rediss+sentinel only */
    if (stls && (!tls || (strcmp(stls, "yes") && strcmp(stls, "no"))))
        return -EINVAL;
    const char *evict = lr__uri_param(u, "allow_eviction");
    if (evict && strcmp(evict, "yes") && strcmp(evict, "no"))
        return -EINVAL;
    const char *dbp = lr__uri_param(u, "db");
    if (dbp && (!dbp[0] || (!unix_sock && !sentinel && u->path[0])))
        return -EINVAL; /* empty, or given twice (/DB and ?db=) */
    uint32_t wait_n, wait_ms;
    bool wait_renew;
    rc = parse_wait(m, u, &wait_n, &wait_ms, &wait_renew);
    if (rc < 0)
        return rc;
    struct lr__backend *b = lr__calloc(1, sizeof(*b));
    if (!b)
        return -ENOMEM;
    b->m = m;
    lr_list_init(&b->mapwait);
    lr_timer_init(lr__manager_loop(m), &b->map_timer, map_timer_fired);
    b->map_timer.data = b;
    b->wait_n = wait_n;
    b->wait_ms = wait_ms;
    b->wait_renew = wait_renew;
    b->session_mode = mode && !strcmp(mode, "session");
    b->allow_eviction = evict && !strcmp(evict, "yes");
    lr__task_init(&b->serve_task, serve_run);
    struct lr_loop *sloop = lr__manager_loop(m);
    for (unsigned i = 0; i < MAX_SESSIONS; i++) {
        struct session *s = &b->sessions[i];
        s->b = b;
        s->idx = i;
        lr_list_init(&s->parked);
        lr_list_init(&s->ready);
        lr_list_init(&s->failing);
        lr_list_init(&s->req.hdr.link);
        lr_timer_init(sloop, &s->timer, session_timer);
        s->timer.data = s;
    }
    if (b->session_mode) {
        b->broken.e = lr__calloc(BROKEN_MAX, sizeof(*b->broken.e));
        b->broken.heads = lr__malloc(BROKEN_MAX * sizeof(*b->broken.heads));
        if (!b->broken.e || !b->broken.heads) {
            lr__free(b->broken.e);
            lr__free(b->broken.heads);
            lr__free(b);
            return -ENOMEM;
        }
        memset(b->broken.heads, 0xff, BROKEN_MAX * sizeof(*b->broken.heads)); /* all -1 */
    }
    b->res.data = b;
    rc = lr__resolver_init(&b->res, lr__manager_loop(m), resolved);
    if (rc < 0) {
        lr__free(b->broken.e);
        lr__free(b->broken.heads);
        lr__free(b);
        return rc;
    }
    if (cluster) {
        /* req.conn is 8 bits: every node's connections together stay below 256 */
        b->per_node = o->connections;
        b->max_nodes = 256 / b->per_node < LR__CLUSTER_NODES_MAX ? 256 / b->per_node
                                                                   : LR__CLUSTER_NODES_MAX;
        rc = lr__cluster_new(&b->cluster, m, u, b->max_nodes, b, &cluster_cbs);
        if (rc == 0) {
            b->slot_owner = lr__cluster_slots(b->cluster);
            b->chains = lr__calloc(LR__REDIS_SLOTS, sizeof(*b->chains));
            if (!b->chains)
                rc = -ENOMEM;
        }
    } else if (sentinel) { /* the path is the master's name; the database a parameter */
        const char *db = lr__uri_param(u, "db");
        rc = parse_db(db ? db : "", &b->db);
        if (rc == 0)
            rc = lr__sentinel_new(&b->sent, m, u, b, &sentinel_cbs);
    } else {
        rc = parse_db(dbp ? dbp : unix_sock ? "" : u->path, &b->db);
    }
    const char *prefix = lr__uri_param(u, "prefix");
    if (!prefix)
        prefix = DEFAULT_PREFIX;
    /* no braces: the hash tag of every key must be the one key_of() puts in */
    if (rc == 0 && (strlen(prefix) > PREFIX_MAX || strpbrk(prefix, "{}")))
        rc = -EINVAL;
    if (rc < 0) {
        backend_free(b);
        return rc;
    }
    /* The host is looked up when connecting (asynchronously unless numeric):
     * a name that does not resolve is a store error, not a creation error. */
    snprintf(b->host, sizeof(b->host), "%s", u->host[0] ? u->host : "127.0.0.1");
    b->port = u->has_port ? u->port : 6379;
    bool v6 = strchr(b->host, ':') != NULL;
    snprintf(b->endpoint, sizeof(b->endpoint), "%s%s%s:%u", v6 ? "[" : "", b->host, v6 ? "]" : "",
             b->port);
    if (unix_sock) {
        b->unix_sock = true;
        memcpy(&b->addr, &sun, sizeof(sun));
        b->addrlen = (socklen_t)sizeof(sun);
        snprintf(b->endpoint, sizeof(b->endpoint), "%s", sun.sun_path);
    }
    if (b->sent)
        snprintf(b->endpoint, sizeof(b->endpoint), "master %s", lr__sentinel_master(b->sent));
    if (b->cluster)
        snprintf(b->endpoint, sizeof(b->endpoint), "cluster %s", b->host);
    /* TLS names the host; behind sentinels, tls_name= or the first sentinel's host */
    char tls_name[256];
    snprintf(tls_name, sizeof(tls_name), "%s", u->host[0] ? u->host : "127.0.0.1");
    tls_name[strcspn(tls_name, ",")] = 0;
    if (strchr(u->host, ',')) { /* a list keeps "host:port" (or "[v6]:port") whole */
        if (tls_name[0] == '[') {
            size_t end = strcspn(tls_name, "]");
            memmove(tls_name, tls_name + 1, end > 0 ? end - 1 : 0);
            tls_name[end > 0 ? end - 1 : 0] = 0;
        } else {
            tls_name[strcspn(tls_name, ":")] = 0;
        }
    }
    if (lr__uri_param(u, "tls_name"))
        snprintf(tls_name, sizeof(tls_name), "%s", lr__uri_param(u, "tls_name"));
    strcpy(b->prefix, prefix);
    b->prefix_len = strlen(prefix);
    snprintf(b->tls_name, sizeof(b->tls_name), "%s", tls_name);
    b->has_user = u->has_user;
    b->has_password = u->has_password;
    strcpy(b->user, u->user);
    strcpy(b->password, u->password);
    b->batch = o->batch_max < sizeof(((struct rconn *)0)->vals) ? o->batch_max
                                                                 : sizeof(((struct rconn *)0)->vals);
    b->window = o->inflight_max;
    b->nconns = b->cluster ? 0 : o->connections; /* a cluster's grow with its nodes */
    b->conns = lr__calloc(b->cluster ? b->max_nodes * b->per_node : b->nconns,
                          sizeof(*b->conns));
    if (!b->conns) {
        backend_free(b);
        return -ENOMEM;
    }
    if (tls) {
        struct lr__tls_opts to = {
            .ca_file = lr__uri_param(u, "cacert"),
            .cert_file = lr__uri_param(u, "cert"),
            .key_file = lr__uri_param(u, "key"),
            .insecure_skip_verify = skip != NULL,
        };
        rc = lr__tls_ctx_new(&b->tls_ctx, &to);
        /* the sentinels too, unless ?sentinel_tls=no */
        if (rc == 0 && b->sent && !(stls && !strcmp(stls, "no")))
            rc = lr__sentinel_tls(b->sent, b->tls_ctx);
        if (rc < 0) {
            backend_free(b);
            return rc;
        }
    }
    if (b->cluster) { /* connections come with the nodes the map names */
        lr__cluster_refresh(b->cluster);
        *out = b;
        return 0;
    }
    for (unsigned i = 0; i < b->nconns; i++) {
        rc = conn_setup(b, i, tls_name);
        if (rc < 0) {
            backend_free(b);
            return rc;
        }
    }
    for (unsigned i = 0; i < b->nconns; i++)
        start_connect(&b->conns[i]);
    *out = b;
    return 0;
}

static uint64_t name_hash(const struct lr_lease *l)
{
    uint64_t h = 1469598103934665603ull;
    for (unsigned i = 0; i < l->name_len; i++)
        h = (h ^ (uint8_t)l->name[i]) * 1099511628211ull;
    return h;
}

static int redis_submit(struct lr__backend *b, struct lr_lease *l)
{
    if (b->session_mode) {
        /* one session per TTL: made with the first acquisition of a TTL */
        struct session *s = session_find(b, l->ttl_ms, l->req.kind == LR_OP_ACQUIRE);
        if (l->req.kind == LR_OP_ACQUIRE && (!s || l->meta_len))
            return !s ? -ENOSPC : -EINVAL; /* no metadata in session mode */
        if (l->req.kind == LR_OP_RENEW) {
            if (!s)
                return LR_EBADREPLY; /* cannot happen: a held lease has its session */
            session_submit(b, s, l);
            return 0;
        }
    }
    if (b->cluster)
        return cluster_submit(b, l);
    l->req.batch = UNSENT;
    return enqueue(&b->conns[b->nconns == 1 ? 0 : name_hash(l) % b->nconns], l, ENQ_BATCHED);
}

static void redis_cancel(struct lr__backend *b, struct lr_lease *l)
{
    /* Off an encode queue or the pending FIFO alike: a reply that still
     * comes finds no owner with its sequence and is dropped. */
    if (lr_list_is_linked(&l->req.link) && !(l->req.batch & UNSENT))
        b->conns[l->req.conn].inflight--;
    lr_list_unlink(&l->req.link);
}

static void redis_close(struct lr__backend *b, void (*done)(struct lr_manager *m))
{
    b->closing = true;
    b->close_done = done;
    b->closed = 0;
    for (unsigned i = 0; i < b->nconns; i++) {
        struct rconn *c = &b->conns[i];
        c->state = R_CLOSING;
        lr_timer_stop(&c->timer);
        lr__task_cancel(&c->enc_task);
        lr_list_init(&c->renq); /* the core detached every lease already */
        lr_list_init(&c->encq);
        lr_list_init(&c->askq);
        lr_list_init(&c->soloq);
        lr_list_init(&c->pending);
        lr_list_init(&c->waiting);
        c->wait_due = false;
        c->inflight = 0;
        lr__conn_close(&c->net);
    }
    for (unsigned i = 0; i < MAX_SESSIONS; i++) {
        struct session *s = &b->sessions[i];
        lr_timer_stop(&s->timer);
        lr_list_init(&s->parked); /* the core detached every lease already */
        lr_list_init(&s->ready);
        lr_list_init(&s->failing);
        lr_list_init(&s->req.hdr.link);
        s->inflight = false;
        s->wait_held = false;
    }
    lr__task_cancel(&b->serve_task);
    if (b->sent)
        lr__sentinel_close(b->sent, sentinel_closed, b);
    if (b->cluster) {
        lr_timer_stop(&b->map_timer);
        lr_list_init(&b->mapwait); /* the core detached every lease already */
        lr__cluster_close(b->cluster, cluster_closed, b);
    }
    lr__resolver_close(&b->res, resolver_closed);
}

/* Data connections only (a Sentinel's or the cluster's control connection
 * carries no lease). Behind redis+cluster only the nodes the map names
 * count: one it no longer names stays down on purpose (schedule_reconnect).
 * A connection not ready -- down, connecting, in its handshake -- leaves the
 * leases hashed to it without a store: unreachable. */
static void redis_gauges(struct lr__backend *b, struct lr__gauges *g)
{
    unsigned expected = 0;
    bool serves = true;
    for (unsigned i = 0; i < b->nconns; i++) {
        const struct rconn *c = &b->conns[i];
        if (b->cluster && i % b->per_node == 0)
            serves = node_serves(b, c->node);
        if (!serves)
            continue;
        expected++;
        g->up += c->state == R_READY;
        g->in_flight += c->inflight;
    }
    g->unreachable = !expected || g->up < expected;
}

const struct lr__backend_ops lr__redis_backend = {
    .scheme = "redis",
    .min_ttl_ms = 10,
    .max_ttl_ms = 30u * 86400u * 1000u,
    .create = redis_create,
    .submit = redis_submit,
    .cancel = redis_cancel,
    .close = redis_close,
    .free = backend_free,
    .gauges = redis_gauges,
};

/* unix:///PATH: the same backend over a unix socket (redis:///PATH too). */
const struct lr__backend_ops lr__unix_backend = {
    .scheme = "unix",
    .min_ttl_ms = 10,
    .max_ttl_ms = 30u * 86400u * 1000u,
    .create = redis_create,
    .submit = redis_submit,
    .cancel = redis_cancel,
    .close = redis_close,
    .free = backend_free,
    .gauges = redis_gauges,
};

/* rediss://: the same backend over TLS. */
const struct lr__backend_ops lr__rediss_backend = {
    .scheme = "rediss",
    .min_ttl_ms = 10,
    .max_ttl_ms = 30u * 86400u * 1000u,
    .create = redis_create,
    .submit = redis_submit,
    .cancel = redis_cancel,
    .close = redis_close,
    .free = backend_free,
    .gauges = redis_gauges,
};

/* redis+sentinel:// and rediss+sentinel://: the master comes from Redis
 * Sentinel and is followed across failovers (redis_sentinel.c). */
const struct lr__backend_ops lr__redis_sentinel_backend = {
    .scheme = "redis+sentinel",
    .min_ttl_ms = 10,
    .max_ttl_ms = 30u * 86400u * 1000u,
    .create = redis_create,
    .submit = redis_submit,
    .cancel = redis_cancel,
    .close = redis_close,
    .free = backend_free,
    .gauges = redis_gauges,
};

/* redis+cluster://: slots routed to the masters of a Redis Cluster
 * (redis_cluster.c). No TLS variant (rediss+cluster is not offered). */
const struct lr__backend_ops lr__redis_cluster_backend = {
    .scheme = "redis+cluster",
    .min_ttl_ms = 10,
    .max_ttl_ms = 30u * 86400u * 1000u,
    .create = redis_create,
    .submit = redis_submit,
    .cancel = redis_cancel,
    .close = redis_close,
    .free = backend_free,
    .gauges = redis_gauges,
};

const struct lr__backend_ops lr__rediss_sentinel_backend = {
    .scheme = "rediss+sentinel",
    .min_ttl_ms = 10,
    .max_ttl_ms = 30u * 86400u * 1000u,
    .create = redis_create,
    .submit = redis_submit,
    .cancel = redis_cancel,
    .close = redis_close,
    .free = backend_free,
    .gauges = redis_gauges,
};
