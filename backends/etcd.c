/* SPDX-License-Identifier: MIT */
/*
 * etcd.c - the etcd v3 backend over the JSON gateway (POST /v3/...), on the
 * shared HTTP/1.1 client (src/httpc.c), answers read with the JSON pull
 * scanner. Keys and values travel base64-encoded; int64 fields come as JSON
 * strings; proto3 leaves default values out (no "succeeded" on a failed
 * txn, no "TTL" on an expired keep-alive, no "kvs" when nothing matched).
 *
 * Key = prefix + name (prefix "leasering/" unless ?prefix= says otherwise).
 * Value = a small JSON object: {"owner": 32 hex digits of the holder's
 * token, "identity", "ttl": the holder's TTL in ms, "meta": {pairs}}, or
 * {"broken": true, "identity", "ttl"} for a broken name. The fence is not
 * stored: it is the key's create_revision (cluster-wide, strictly
 * increasing; for a key our txn created it is that txn's revision).
 *
 * Two modes (?mode=):
 *  session (default) -- the manager keeps one etcd lease per distinct TTL
 *    (a struct lr__session each, backend_int.h "Session leases"), granted
 *    with a client-chosen random ID when the first lease of that TTL is
 *    acquired; every key of that TTL is attached to it, so one keep-alive
 *    per renewal interval keeps them all, whatever their number.
 *  lease -- one etcd lease per name, its ID derived from the lease's owner
 *    token (63 of its random bits, nonzero): an acquisition retried after
 *    an ambiguous answer grants the same ID ("lease already exists" is
 *    fine) and finds the key already ours.
 *
 * Requests (each a step of one slot; a renewal is two requests sent in
 * the same loop pass, its validity counted from the first send):
 *   acquire  [lease: grant(ID, ceil(ttl s))] txn: create_revision(key) == 0
 *            -> put(key, value, lease) else range(key). The else branch: the
 *            key already ours (an answer we lost) -> held, fence = its
 *            create_revision; else conflict naming the holder (lease mode:
 *            the granted lease is revoked first, so a refused acquisition
 *            leaves no etcd lease behind).
 *   renew    lease mode: keepalive(ID) + range(key): the keep-alive must
 *            return a TTL and the key must still carry our create_revision,
 *            lease and owner, else LR_ELOST. Session mode: see "Sessions".
 *   release  lease mode: revoke(ID) (deletes the key if it is still on our
 *            lease; a broken key is on the tombstone lease and stays).
 *            Session mode: txn create_revision == fence && lease == session
 *            -> delete(key), else LR_ELOST.
 *   change   txn create_revision == fence && lease == ours -> put(key, the
 *            new owner). Lease mode moves the key to a lease derived from
 *            the new token (granted first) and revokes the old one.
 *   break    see "Breaks" below.
 *   inspect  range(key).
 *
 * Breaks. A plain delete would let a contender take the name at once while
 * the holder still believes it holds it until its next renewal. So a break
 * grants a tombstone lease of TTL' = max(holder's TTL, break period) + 1 s,
 * then txn create_revision == X (the holder's key, just read) -> put(key,
 * {"broken": true}, lease = tombstone) [session mode: and a marker key, see
 * below, on the same tombstone], then a keep-alive of the tombstone, which
 * restarts its TTL' after the txn. Contenders see a broken key as held until
 * etcd deletes it with its lease; the holder's next renewal finds the key
 * not its own (LR_ELOST). Safety: every renewal of the holder reads the key
 * (lease mode) or the markers (session mode) linearizably, so the last
 * renewal that confirmed the holder was sent at t before the break's txn
 * committed, and the holder stops at t + keep < t + ttl. The tombstone lives
 * until at least (keep-alive sent after the txn) + TTL' > t + ttl, so
 * nobody can create the key again before the holder has stopped.
 *
 * Sessions. One lease per TTL, ID random; granted on demand (the grant
 * counts as the session's first renewal, from its send); renewed every
 * renew_fraction x TTL by an own timer with a keep-alive plus a range over
 * the session's marker prefix, both sent in the same pass: validity counts
 * from the first send (lr__session_renewed). No TTL in the keep-alive's
 * answer -> lr__session_lost(LR_ELOST) and the next acquisition grants a new
 * session lease. Timeouts and connection errors -> lr__session_failed and a
 * retry after a backoff, while the session is still valid. A break in
 * session mode also writes the marker key PREFIX "\0broken/" HEX16(L) "/"
 * NAME (L = the broken key's lease: the holder's session) on the tombstone
 * lease; the holder's next renewal finds it and loses that name
 * (lr__session_lose_name). Markers are never deleted by us: they go with
 * the tombstone, together with the broken key, so while a marker exists the
 * name cannot be held again. A lease's own lr_lease_renew is answered by
 * the next session renewal sent after it. A session that kept no lease
 * for a TTL is revoked at its next renewal (the next acquisition of that
 * TTL grants a new one).
 *
 * Errors: every answer is checked (JSON, header revision, base64, sizes) and
 * a bad one is LR_EBADREPLY with a store_error text naming the endpoint.
 * Timeouts and dropped connections are ambiguous, as for every store.
 * Layer: HTTP + the etcd v3 JSON API + the backend interface.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "alloc_int.h"
#include "backend_int.h"
#include "fmt.h"
#include "http.h"
#include "httpc_int.h"
#include "json.h"
#include "lease_int.h"
#include "loop_int.h"
#include "tls_int.h"
#include <leasering/error.h>

#define PREFIX_DEFAULT "leasering/"
#define PREFIX_MAX 128
#define KEY_MAX (PREFIX_MAX + 8 + 17 + 1 + LR_NAME_MAX) /* a marker key is the longest */
#define VALUE_MAX 16384u /* the value JSON: identity and metadata, escaped */
#define B64_LEN(n) (((n) + 2) / 3 * 4)
#define BODY_MAX (2 * B64_LEN(VALUE_MAX) + 4 * B64_LEN(KEY_MAX) + 1024u)
#define SMALL_BODY 1024u
#define RESP_MAX (B64_LEN(VALUE_MAX) + 4096u)
#define SMALL_RESP 2048u
#define MARKER_RESP 65536u /* a session's marker range: keys only */
#define OUT_BYTES (BODY_MAX + 2048u)
#define MAX_EPS 8
#define MAX_SESSIONS 16    /* distinct TTLs in session mode */
#define JSON_TOKENS 4096u
#define MAX_RESTARTS 3     /* a step that went to another endpoint, a regranted session */

enum step {
    S_GRANT = 1, /* lease mode acquire / change: grant(our ID) */
    S_TXN,       /* acquire / change / release txn */
    S_REVOKE,    /* lease mode release; the old lease after a change; a refused acquire's */
    S_RENEW,     /* lease mode renew: keepalive + range, together */
    S_RANGE,     /* break / inspect: read the key */
    S_TGRANT,    /* break: grant the tombstone */
    S_TTXN,      /* break: put the broken value (and marker) on it */
    S_TKEEP,     /* break: restart the tombstone's TTL after the txn */
    S_SGRANT,    /* session: grant */
    S_SKEEP,     /* session: markers range + keepalive, together */
    S_SREVOKE,   /* session: revoke, idle for a TTL */
    S_AUTH,      /* the backend's own: authenticate(user, password) */
};

struct op;

/* One HTTP request of a step. */
struct call {
    struct lr__httpc_req req;
    struct op *op;
    int status;      /* HTTP status, or a negative error */
    const char *path;
    char *body;
    size_t body_cap;
};

/* What an answer said (parse_answer). */
struct answer {
    int64_t revision;  /* header.revision; 0 absent */
    int64_t ttl;       /* TTL (grant, keep-alive); 0 absent */
    bool succeeded;    /* txn */
    bool have_kv;      /* a kv came back (the first one is kept) */
    bool broken;
    int64_t create_rev;
    int64_t kv_lease;
    int64_t kv_ttl_ms; /* the value's "ttl"; 0 absent */
    int code;          /* an error answer's gRPC code */
    uint8_t owner_len;
    uint8_t who_len;
    char owner[32];
    char who[LR_IDENTITY_MAX];
    char msg[96];      /* an error answer's "error" text, printable */
    uint16_t token_len; /* authenticate: the token */
    char token[256];
};

struct sess;

/* One request in flight: a lease's steps (slots), or a session's. */
struct op {
    struct lr__backend *b;
    struct lr_lease *l; /* slot: NULL when free */
    struct sess *s;     /* the session (session mode acquire / renew; a session's own op) */
    enum step step;
    unsigned ncalls, pending;
    bool stamped;       /* the step's first send is stamped */
    bool reauthed;      /* sent again once after a refused token */
    uint8_t restarts;
    uint8_t ep;         /* the endpoint the step went to */
    uint64_t sent_ns;   /* the step's first send (loop clock) */
    uint64_t tomb;      /* break: the tombstone lease */
    int64_t target_rev; /* break: the holder's create_revision */
    int64_t target_lease;
    int64_t holder_ttl_ms;
    struct lr_list auth_link; /* on b->auth_wait: waits for a token */
    struct call c[2];
    struct answer a[2];
    char value[VALUE_MAX];
};

/* A session lease (session mode): one per distinct TTL. */
struct sess {
    struct lr__session s;
    struct lr__backend *b;
    uint32_t ttl_ms;     /* 0: slot unused */
    uint64_t id;         /* the etcd lease; 0: none granted */
    bool busy;           /* its op is in flight */
    uint8_t fails;
    uint64_t idle_since; /* ms: no lease on it since (0: in use) */
    struct lr_list acq;  /* lr_lease.req.link: acquisitions waiting for the grant */
    struct lr_list wait; /* lr_lease.req.link: lr_lease_renew for the next keep-alive */
    struct lr_list ride; /* lr_lease.req.link: ... answered by the one in flight */
    struct lr_timer tick;
    struct op op;
};

struct ep {
    struct lr__httpc http;
    bool ok;
    char name[280]; /* host:port for messages */
    uint64_t reconnects_seen;
};

struct lr__backend {
    struct lr_manager *m;
    bool closing;
    bool session_mode;
    bool tls;
    unsigned neps, cur;
    unsigned nslots;
    void (*close_done)(struct lr_manager *m);
    unsigned closed;
    struct lr_list waiting; /* lr_lease.req.link: requests waiting for a slot */
    struct lr__task dispatch_task;
    struct lr__tls_ctx *tls_ctx;
    /* auth (user:password in the URI): a token from /v3/auth/authenticate
     * goes in every request; requests wait while it is being fetched */
    bool auth;
    bool authing;
    uint8_t auth_fails;
    size_t token_len;
    struct lr_list auth_wait; /* op.auth_link */
    struct op *auth_op;
    char user[128];
    char password[256];
    char token[256];
    struct op *slots;
    struct sess *sess;
    size_t prefix_len;
    char prefix[PREFIX_MAX + 1];
    struct ep eps[MAX_EPS];
};

static inline struct lr_lease *lease_of_link(struct lr_list *n)
{
    return lr_container_of(n, struct lr_lease, req.link);
}

static enum lr__req_kind kind_of(const struct lr_lease *l)
{
    return (enum lr__req_kind)l->req.kind;
}

static struct lr_loop *loop_of(const struct lr__backend *b)
{
    return lr__manager_loop(b->m);
}

/* The endpoint @o's step went to, for messages. */
#define op_ep(o) ((o)->b->eps[(o)->ep].name)

/* -------------------------------------------------------------- encoding */

static const char b64_digits[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* Standard base64 of @n bytes into @out (room for B64_LEN(n)); its length. */
static size_t b64_enc(const uint8_t *in, size_t n, char *out)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16;
        if (i + 1 < n)
            v |= (uint32_t)in[i + 1] << 8;
        if (i + 2 < n)
            v |= in[i + 2];
        out[o++] = b64_digits[v >> 18];
        out[o++] = b64_digits[(v >> 12) & 63];
        out[o++] = i + 1 < n ? b64_digits[(v >> 6) & 63] : '=';
        out[o++] = i + 2 < n ? b64_digits[v & 63] : '=';
    }
    return o;
}

static int b64_val(char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    return c == '+' ? 62 : c == '/' ? 63 : -1;
}

/* Strict base64 (padded, standard alphabet) of @n chars into @out.
 * Returns the decoded length, -EPROTO malformed, -ENOBUFS too long. */
static int b64_dec(const char *s, size_t n, uint8_t *out, size_t cap)
{
    if (n % 4)
        return -EPROTO;
    size_t o = 0;
    for (size_t i = 0; i < n; i += 4) {
        int v[4];
        for (int k = 0; k < 4; k++)
            v[k] = b64_val(s[i + k]);
        bool last = i + 4 == n;
        int pad = last && s[i + 3] == '=' ? (s[i + 2] == '=' ? 2 : 1) : 0;
        if (v[0] < 0 || v[1] < 0 || (pad < 2 && v[2] < 0) || (pad < 1 && v[3] < 0))
            return -EPROTO;
        uint32_t x = (uint32_t)v[0] << 18 | (uint32_t)v[1] << 12 |
                     (uint32_t)(pad < 2 ? v[2] : 0) << 6 | (uint32_t)(pad < 1 ? v[3] : 0);
        size_t k = 3u - (size_t)pad;
        if (o + k > cap)
            return -ENOBUFS;
        out[o++] = (uint8_t)(x >> 16);
        if (k > 1)
            out[o++] = (uint8_t)(x >> 8);
        if (k > 2)
            out[o++] = (uint8_t)x;
    }
    return (int)o;
}

/* A bounded writer: every put_* is a no-op once it overflowed. */
struct wr {
    char *p, *end;
    bool over;
};

static void put_raw(struct wr *w, const char *s, size_t n)
{
    if (w->over || (size_t)(w->end - w->p) < n) {
        w->over = true;
        return;
    }
    memcpy(w->p, s, n);
    w->p += n;
}

#define PUT_LIT(w, s) put_raw(w, s, sizeof(s) - 1)

static void put_u64(struct wr *w, uint64_t v)
{
    char d[24];
    unsigned n = lr_u64_digits(v);
    lr_put_u64(d, v, n);
    put_raw(w, d, n);
}

/* "digits" (etcd takes int64 as strings) */
static void put_i64s(struct wr *w, uint64_t v)
{
    PUT_LIT(w, "\"");
    put_u64(w, v);
    PUT_LIT(w, "\"");
}

/* @s as a JSON string, escaped. */
static void put_jstr(struct wr *w, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    PUT_LIT(w, "\"");
    for (size_t i = 0; i < n && !w->over; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\') {
            char e[2] = {'\\', (char)c};
            put_raw(w, e, 2);
        } else if (c < 0x20 || c == 0x7f) {
            char e[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
            put_raw(w, e, 6);
        } else {
            put_raw(w, (const char *)&c, 1);
        }
    }
    PUT_LIT(w, "\"");
}

/* @n bytes as a quoted base64 JSON string. */
static void put_b64(struct wr *w, const void *s, size_t n)
{
    PUT_LIT(w, "\"");
    if (!w->over && (size_t)(w->end - w->p) >= B64_LEN(n))
        w->p += b64_enc(s, n, w->p);
    else
        w->over = true;
    PUT_LIT(w, "\"");
}

/* The key of @name: prefix + name, into @out (KEY_MAX); its length. */
static size_t key_of(const struct lr__backend *b, const char *name, size_t n, char *out)
{
    memcpy(out, b->prefix, b->prefix_len);
    memcpy(out + b->prefix_len, name, n);
    return b->prefix_len + n;
}

static void put_key(struct wr *w, const struct lr__backend *b, const struct lr_lease *l)
{
    char k[KEY_MAX];
    put_b64(w, k, key_of(b, l->name, l->name_len, k));
}

/* The marker of a break of @name held on session lease @lease (see the top):
 * PREFIX "\0broken/" HEX16 "/" NAME; with @name NULL the session's marker
 * prefix only. Its length. */
static size_t marker_of(const struct lr__backend *b, uint64_t lease, const char *name, size_t n,
                        char *out)
{
    static const char hex[] = "0123456789abcdef";
    size_t o = b->prefix_len;
    memcpy(out, b->prefix, o);
    memcpy(out + o, "\0broken/", 8);
    o += 8;
    for (int i = 15; i >= 0; i--)
        out[o++] = hex[(lease >> (4 * i)) & 15];
    out[o++] = '/';
    if (name) {
        memcpy(out + o, name, n);
        o += n;
    }
    return o;
}

/* The etcd lease of a lease-mode holder of @token (see the top). */
static uint64_t id_of_token(const uint8_t token[16])
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | token[i];
    v &= INT64_MAX;
    return v ? v : 1;
}

static uint64_t random_id(struct lr__backend *b)
{
    uint64_t v = lr__manager_rand(b->m) & INT64_MAX;
    return v ? v : 1;
}

/* The etcd lease a held @l is on: lease mode its own, session mode its
 * session's. */
static uint64_t lease_id(const struct op *o, const struct lr_lease *l)
{
    if (o->b->session_mode)
        return o->s ? o->s->id : 0;
    return id_of_token(l->token);
}

/* The value for @l owned by @token (NULL: broken, naming the holder read
 * by the break) into o->value; its length, or -EMSGSIZE. */
static int build_value(struct op *o, const struct lr_lease *l, const uint8_t *token)
{
    struct wr w = {o->value, o->value + sizeof(o->value), false};
    const struct answer *a = &o->a[0];
    if (token) {
        char hex[32];
        lr__hex(token, 16, hex);
        size_t wl;
        const char *who = lr__manager_identity(o->b->m, &wl);
        PUT_LIT(&w, "{\"owner\":");
        put_jstr(&w, hex, 32);
        PUT_LIT(&w, ",\"identity\":");
        put_jstr(&w, who, wl);
        PUT_LIT(&w, ",\"ttl\":");
        put_u64(&w, l->ttl_ms);
        PUT_LIT(&w, ",\"meta\":{");
        for (size_t i = 0; l->meta && i < l->meta_len;) {
            const char *mk = l->meta + i, *mv = mk + strlen(mk) + 1;
            if (i)
                PUT_LIT(&w, ",");
            put_jstr(&w, mk, strlen(mk));
            PUT_LIT(&w, ":");
            put_jstr(&w, mv, strlen(mv));
            i = (size_t)(mv - l->meta) + strlen(mv) + 1;
        }
        PUT_LIT(&w, "}}");
    } else {
        PUT_LIT(&w, "{\"broken\":true,\"identity\":");
        put_jstr(&w, a->who, a->who_len);
        PUT_LIT(&w, ",\"ttl\":");
        put_u64(&w, (uint64_t)o->holder_ttl_ms);
        PUT_LIT(&w, "}");
    }
    if (w.over)
        return -EMSGSIZE;
    return (int)(w.p - o->value);
}

/* ---------------------------------------------------------- request bodies */

/* txn compare entries on @l's key: create_revision == @rev, and, if
 * @lease, lease == @lease. */
static void put_compare(struct wr *w, const struct lr__backend *b, const struct lr_lease *l,
                        uint64_t rev, uint64_t lease)
{
    PUT_LIT(w, "\"compare\":[{\"key\":");
    put_key(w, b, l);
    PUT_LIT(w, ",\"target\":\"CREATE\",\"result\":\"EQUAL\",\"create_revision\":");
    put_i64s(w, rev);
    PUT_LIT(w, "}");
    if (lease) {
        PUT_LIT(w, ",{\"key\":");
        put_key(w, b, l);
        PUT_LIT(w, ",\"target\":\"LEASE\",\"result\":\"EQUAL\",\"lease\":");
        put_i64s(w, lease);
        PUT_LIT(w, "}");
    }
    PUT_LIT(w, "]");
}

/* {"request_put":{"key":K,"value":V,"lease":ID}} with o->value[0..vlen). */
static void put_put(struct wr *w, struct op *o, const char *key, size_t klen, size_t vlen,
                    uint64_t lease)
{
    PUT_LIT(w, "{\"request_put\":{\"key\":");
    put_b64(w, key, klen);
    PUT_LIT(w, ",\"value\":");
    put_b64(w, o->value, vlen);
    PUT_LIT(w, ",\"lease\":");
    put_i64s(w, lease);
    PUT_LIT(w, "}}");
}

static void put_range_op(struct wr *w, const struct lr__backend *b, const struct lr_lease *l)
{
    PUT_LIT(w, "{\"request_range\":{\"key\":");
    put_key(w, b, l);
    PUT_LIT(w, "}}");
}

/* Prepare call @i of @o: @path, body from @w (already written into its
 * buffer). */
static int call_set(struct op *o, unsigned i, const char *path, const struct wr *w)
{
    struct call *c = &o->c[i];
    if (w->over)
        return -EMSGSIZE;
    c->path = path;
    c->req.body = c->body;
    c->req.body_len = (size_t)(w->p - c->body);
    c->req.has_body = true;
    return 0;
}

static struct wr call_wr(struct op *o, unsigned i)
{
    struct wr w = {o->c[i].body, o->c[i].body + o->c[i].body_cap, false};
    return w;
}

/* {"ID":"id"} or {"TTL":"s","ID":"id"} to @path. */
static int body_id(struct op *o, unsigned i, const char *path, uint64_t id, uint32_t ttl_ms)
{
    struct wr w = call_wr(o, i);
    PUT_LIT(&w, "{");
    if (ttl_ms) {
        PUT_LIT(&w, "\"TTL\":");
        put_i64s(&w, (ttl_ms + 999u) / 1000u); /* whole seconds, rounded up */
        PUT_LIT(&w, ",");
    }
    PUT_LIT(&w, "\"ID\":");
    put_i64s(&w, id);
    PUT_LIT(&w, "}");
    return call_set(o, i, path, &w);
}

static int body_range(struct op *o, unsigned i, const struct lr_lease *l)
{
    struct wr w = call_wr(o, i);
    PUT_LIT(&w, "{\"key\":");
    put_key(&w, o->b, l);
    PUT_LIT(&w, "}");
    return call_set(o, i, "/v3/kv/range", &w);
}

/* The session's marker range: keys only. */
static int body_markers(struct op *o, unsigned i, uint64_t lease)
{
    char k[KEY_MAX];
    size_t n = marker_of(o->b, lease, NULL, 0, k);
    struct wr w = call_wr(o, i);
    PUT_LIT(&w, "{\"key\":");
    put_b64(&w, k, n);
    k[n - 1]++; /* '/' + 1: the end of the prefix */
    PUT_LIT(&w, ",\"range_end\":");
    put_b64(&w, k, n);
    PUT_LIT(&w, ",\"keys_only\":true}");
    return call_set(o, i, "/v3/kv/range", &w);
}

/* The txn of an acquire (put on @lease), change (move to @lease, owner
 * next_token) or session release. */
static int body_txn(struct op *o)
{
    struct lr__backend *b = o->b;
    struct lr_lease *l = o->l;
    enum lr__req_kind k = kind_of(l);
    struct wr w = call_wr(o, 0);
    char key[KEY_MAX];
    size_t kl = key_of(b, l->name, l->name_len, key);
    PUT_LIT(&w, "{");
    if (k == LR_OP_ACQUIRE) {
        uint64_t lease = lease_id(o, l);
        int vl = build_value(o, l, l->token);
        if (vl < 0)
            return vl;
        put_compare(&w, b, l, 0, 0);
        PUT_LIT(&w, ",\"success\":[");
        put_put(&w, o, key, kl, (size_t)vl, lease);
    } else if (k == LR_OP_CHANGE) {
        uint64_t lease = b->session_mode ? lease_id(o, l) : id_of_token(l->next_token);
        int vl = build_value(o, l, l->next_token);
        if (vl < 0)
            return vl;
        put_compare(&w, b, l, l->fence, lease_id(o, l));
        PUT_LIT(&w, ",\"success\":[");
        put_put(&w, o, key, kl, (size_t)vl, lease);
    } else { /* session release */
        put_compare(&w, b, l, l->fence, lease_id(o, l));
        PUT_LIT(&w, ",\"success\":[{\"request_delete_range\":{\"key\":");
        put_b64(&w, key, kl);
        PUT_LIT(&w, "}}");
    }
    PUT_LIT(&w, "],\"failure\":[");
    put_range_op(&w, b, l);
    PUT_LIT(&w, "]}");
    return call_set(o, 0, "/v3/kv/txn", &w);
}

/* The break's txn: the holder's key (create_revision target_rev) broken on
 * the tombstone, with the marker of its lease in session mode. */
static int body_break(struct op *o)
{
    struct lr__backend *b = o->b;
    struct lr_lease *l = o->l;
    char key[KEY_MAX];
    size_t kl = key_of(b, l->name, l->name_len, key);
    int vl = build_value(o, l, NULL);
    if (vl < 0)
        return vl;
    struct wr w = call_wr(o, 0);
    PUT_LIT(&w, "{");
    put_compare(&w, b, l, (uint64_t)o->target_rev, 0);
    PUT_LIT(&w, ",\"success\":[");
    put_put(&w, o, key, kl, (size_t)vl, o->tomb);
    if (o->target_lease > 0) {
        char mk[KEY_MAX];
        size_t ml = marker_of(b, (uint64_t)o->target_lease, l->name, l->name_len, mk);
        PUT_LIT(&w, ",");
        put_put(&w, o, mk, ml, 0, o->tomb);
    }
    PUT_LIT(&w, "]}");
    return call_set(o, 0, "/v3/kv/txn", &w);
}

/* ---------------------------------------------------------------- answers */

static void copy_printable(char *out, size_t cap, const char *s, size_t n)
{
    if (n > cap - 1)
        n = cap - 1;
    for (size_t i = 0; i < n; i++)
        out[i] = (s[i] >= 0x20 && s[i] < 0x7f) ? s[i] : '?';
    out[n] = '\0';
}

/* The lease's stored value (decoded) into @a: owner, identity, ttl,
 * broken; metadata into @io when inspecting. */
static int parse_value(struct answer *a, const char *v, size_t n, struct lr__inspect_out *io)
{
    struct lr_json j;
    struct lr_json_tok root, t;
    lr_json_init(&j, v, n, JSON_TOKENS);
    if (lr_json_next(&j, &root) != 1 || root.type != LR_JSON_OBJECT)
        return -EPROTO;
    int rc;
    while ((rc = lr_json_item(&j, &root, &t)) == 1) {
        if (lr_json_key_is(&t, "owner") && t.type == LR_JSON_STRING) {
            if (t.n != 32 || t.escaped)
                return -EPROTO;
            memcpy(a->owner, t.s, 32);
            a->owner_len = 32;
        } else if (lr_json_key_is(&t, "identity") && t.type == LR_JSON_STRING) {
            int wl = lr_json_unescape(t.s, t.n, a->who, sizeof(a->who));
            a->who_len = (uint8_t)(wl > 0 ? wl : 0);
        } else if (lr_json_key_is(&t, "ttl")) {
            if (lr_json_i64(&t, &a->kv_ttl_ms) < 0 || a->kv_ttl_ms < 0)
                return -EPROTO;
        } else if (lr_json_key_is(&t, "broken")) {
            a->broken = t.type == LR_JSON_TRUE;
        } else if (io && lr_json_key_is(&t, "meta") && t.type == LR_JSON_OBJECT) {
            struct lr_json_tok mv;
            while ((rc = lr_json_item(&j, &t, &mv)) == 1) {
                char k[256], val[LR_META_MAX];
                int kl = lr_json_unescape(mv.key, mv.keylen, k, sizeof(k));
                int vl = mv.type == LR_JSON_STRING ? lr_json_unescape(mv.s, mv.n, val, sizeof(val))
                                                   : -1;
                if (kl > 0 && vl >= 0)
                    lr__inspect_add_meta(io, k, (size_t)kl, val, (size_t)vl);
            }
            if (rc < 0)
                return rc;
        }
    }
    return rc;
}

static void lose_marker(struct op *o, const char *key, size_t n);

/* One kv of a range: the first fills @a (the value decoded into o->value);
 * in a session's marker range every key is a break to act on. */
static int parse_kv(struct op *o, struct answer *a, struct lr_json *j, const struct lr_json_tok *kv,
                    const char **why)
{
    struct lr_json_tok t;
    int rc;
    bool first = !a->have_kv;
    int64_t cr = 0, lease = 0;
    const char *val = NULL;
    size_t vn = 0;
    while ((rc = lr_json_item(j, kv, &t)) == 1) {
        if (lr_json_key_is(&t, "create_revision")) {
            *why = "a kv's create_revision is not an int64 string";
            if (lr_json_i64_str(&t, &cr) < 0)
                return -EPROTO;
        } else if (lr_json_key_is(&t, "lease")) {
            *why = "a kv's lease is not an int64 string";
            if (lr_json_i64_str(&t, &lease) < 0)
                return -EPROTO;
        } else if (lr_json_key_is(&t, "value") && t.type == LR_JSON_STRING) {
            val = t.s;
            vn = t.n;
        } else if (o->step == S_SKEEP && lr_json_key_is(&t, "key") && t.type == LR_JSON_STRING) {
            char k[KEY_MAX];
            int kl = b64_dec(t.s, t.n, (uint8_t *)k, sizeof(k));
            *why = "a marker key is not base64 or too long";
            if (kl < 0)
                return -EPROTO;
            lose_marker(o, k, (size_t)kl);
        }
    }
    if (rc < 0 || !first || o->step == S_SKEEP)
        return rc;
    a->have_kv = true;
    a->create_rev = cr;
    a->kv_lease = lease;
    *why = "a kv without create_revision";
    if (cr <= 0)
        return -EPROTO;
    int n = b64_dec(val ? val : "", vn, (uint8_t *)o->value, sizeof(o->value));
    *why = n == -ENOBUFS ? "a value over the size bound" : "a value that is not base64";
    if (n < 0)
        return -EPROTO;
    struct lr__inspect_out *io = o->l && kind_of(o->l) == LR_OP_INSPECT ? lr__inspect_out(o->l) : NULL;
    *why = "a value that is not a leasering value (JSON object)";
    return parse_value(a, o->value, (size_t)n, io);
}

/* The members of an answer object (the top, a keep-alive's "result", a
 * txn's responses): what @a keeps. */
static int parse_obj(struct op *o, struct answer *a, struct lr_json *j,
                     const struct lr_json_tok *obj, int depth, const char **why)
{
    struct lr_json_tok t;
    int rc;
    while ((rc = lr_json_item(j, obj, &t)) == 1) {
        if (lr_json_key_is(&t, "header") && t.type == LR_JSON_OBJECT && depth <= 1) {
            struct lr_json_tok h;
            while ((rc = lr_json_item(j, &t, &h)) == 1)
                if (lr_json_key_is(&h, "revision")) {
                    *why = "header.revision is not an int64 string";
                    if (lr_json_i64_str(&h, &a->revision) < 0)
                        return -EPROTO;
                }
        } else if (lr_json_key_is(&t, "succeeded")) {
            a->succeeded = t.type == LR_JSON_TRUE;
        } else if (lr_json_key_is(&t, "TTL")) {
            *why = "TTL is not an int64 string";
            if (lr_json_i64_str(&t, &a->ttl) < 0)
                return -EPROTO;
        } else if (lr_json_key_is(&t, "result") && t.type == LR_JSON_OBJECT && !depth) {
            rc = parse_obj(o, a, j, &t, depth + 1, why);
        } else if (lr_json_key_is(&t, "responses") && t.type == LR_JSON_ARRAY && !depth) {
            struct lr_json_tok r, inner;
            while ((rc = lr_json_item(j, &t, &r)) == 1 && r.type == LR_JSON_OBJECT)
                while ((rc = lr_json_item(j, &r, &inner)) == 1)
                    if (lr_json_key_is(&inner, "response_range") &&
                        inner.type == LR_JSON_OBJECT &&
                        (rc = parse_obj(o, a, j, &inner, depth + 2, why)) < 0)
                        return rc;
        } else if (lr_json_key_is(&t, "kvs") && t.type == LR_JSON_ARRAY) {
            struct lr_json_tok kv;
            while ((rc = lr_json_item(j, &t, &kv)) == 1) {
                *why = "a kv is not an object";
                if (kv.type != LR_JSON_OBJECT)
                    return -EPROTO;
                if ((rc = parse_kv(o, a, j, &kv, why)) < 0)
                    return rc;
            }
        } else if (lr_json_key_is(&t, "token") && t.type == LR_JSON_STRING && !depth) {
            *why = "the auth token is over 255 bytes or not printable";
            for (size_t i = 0; i < t.n; i++)
                if (t.s[i] < 0x21 || t.s[i] > 0x7e)
                    return -EPROTO;
            if (t.n >= sizeof(a->token) || t.escaped)
                return -EPROTO;
            memcpy(a->token, t.s, t.n);
            a->token_len = (uint16_t)t.n;
        } else if (lr_json_key_is(&t, "error") && t.type == LR_JSON_STRING && !depth) {
            copy_printable(a->msg, sizeof(a->msg), t.s, t.n);
        } else if (lr_json_key_is(&t, "code") && t.type == LR_JSON_NUMBER && !depth) {
            int64_t c = 0;
            if (lr_json_i64(&t, &c) == 0 && c >= 0 && c < 100)
                a->code = (int)c;
        }
        if (rc < 0)
            return rc;
    }
    return rc;
}

/* Parse call @i's answer into o->a[i]. 0, or -EPROTO with *why. */
static int parse_answer(struct op *o, unsigned i, const char **why)
{
    struct call *c = &o->c[i];
    struct answer *a = &o->a[i];
    memset(a, 0, offsetof(struct answer, owner));
    a->msg[0] = '\0';
    a->token_len = 0;
    struct lr_json j;
    struct lr_json_tok root;
    lr_json_init(&j, c->req.resp, c->req.resp_len, JSON_TOKENS);
    *why = "the answer is not a JSON object";
    if (lr_json_next(&j, &root) != 1 || root.type != LR_JSON_OBJECT)
        return -EPROTO;
    int rc = parse_obj(o, a, &j, &root, 0, why);
    if (rc < 0) {
        if (j.err)
            *why = "the answer is not valid JSON";
        return -EPROTO;
    }
    *why = "the answer has no header.revision";
    if (c->status == 200 && a->revision <= 0)
        return -EPROTO;
    return 0;
}

/* ------------------------------------------------------------ sending */

static void step_done(struct op *o);
static void start_step(struct op *o);
static void dispatch(struct lr__backend *b);
static void sess_kick(struct sess *s);

static bool validity_kind(const struct lr_lease *l)
{
    enum lr__req_kind k = kind_of(l);
    return k == LR_OP_ACQUIRE || k == LR_OP_RENEW || k == LR_OP_CHANGE;
}

static int encode(struct lr__httpc_req *r, char *w, size_t avail)
{
    struct call *c = r->data;
    struct op *o = c->op;
    struct lr__backend *b = o->b;
    char *p = w, *end = w + avail;
    int n = lr_http_write_request_line(p, avail, "POST", 4, c->path, strlen(c->path));
    if (n < 0)
        return n;
    p += n;
    const char *host = b->eps[o->ep].name;
    if ((n = lr_http_write_header(p, (size_t)(end - p), "Host", 4, host, strlen(host))) < 0)
        return n;
    p += n;
    if ((n = lr_http_write_header(p, (size_t)(end - p), "Content-Type", 12, "application/json",
                                  16)) < 0)
        return n;
    p += n;
    if (b->token_len && o->step != S_AUTH) {
        n = lr_http_write_header(p, (size_t)(end - p), "Authorization", 13, b->token, b->token_len);
        if (n < 0)
            return n;
        p += n;
    }
    uint64_t now = loop_of(b)->now_ns;
    if (!o->stamped) { /* the request's first send: validity counts from here */
        o->stamped = true;
        o->sent_ns = now;
        if (o->l && validity_kind(o->l))
            lr__lease_sent(o->l, now);
    }
    lr__manager_stats(b->m)->requests++;
    return (int)(p - w);
}

static void sync_stats(struct lr__backend *b)
{
    for (unsigned i = 0; i < b->neps; i++) {
        struct ep *e = &b->eps[i];
        lr__manager_stats(b->m)->reconnects += e->http.reconnects - e->reconnects_seen;
        e->reconnects_seen = e->http.reconnects;
    }
}

static void on_done(struct lr__httpc_req *r, int status)
{
    struct call *c = r->data;
    struct op *o = c->op;
    sync_stats(o->b);
    c->status = status;
    if (o->b->closing || !o->pending)
        return;
    if (--o->pending == 0)
        step_done(o);
}

/* Send the calls of @o's current step (bodies written). */
static void auth_start(struct lr__backend *b);

static void send_calls(struct op *o)
{
    struct lr__backend *b = o->b;
    if (b->auth && !b->token_len && o->step != S_AUTH) { /* after the token */
        lr_list_push_tail(&b->auth_wait, &o->auth_link);
        auth_start(b);
        return;
    }
    uint64_t dl = lr_loop_now_ms(loop_of(b)) + lr__manager_opts(b->m)->request_timeout_ms;
    o->pending = o->ncalls;
    o->ep = (uint8_t)b->cur;
    for (unsigned i = 0; i < o->ncalls; i++) {
        struct call *c = &o->c[i];
        c->status = 0;
        c->req.deadline_ms = dl;
        c->req.first = true;
        if (lr__httpc_submit(&b->eps[o->ep].http, &c->req) < 0) {
            c->status = LR_EUNAVAIL;
            if (--o->pending == 0) {
                step_done(o);
                return;
            }
        }
    }
}

static void cancel_calls(struct op *o)
{
    lr_list_unlink(&o->auth_link);
    for (unsigned i = 0; i < 2; i++)
        if (o->c[i].req.queued)
            lr__httpc_cancel(&o->c[i].req);
    o->pending = 0;
}

/* --------------------------------------------------------------- results */

static void free_slot(struct op *o)
{
    o->l = NULL;
    o->s = NULL;
    lr__loop_defer(loop_of(o->b), &o->b->dispatch_task);
}

static void complete_lease(struct lr_lease *l, int status, uint64_t fence)
{
    struct lr__result r = {.status = status, .fence = fence, .holder_ttl_ms = -1};
    lr__lease_complete(l, &r);
}

static void finish(struct op *o, int status, uint64_t fence)
{
    struct lr_lease *l = o->l;
    free_slot(o);
    complete_lease(l, status, fence);
}

/* A held name we may not take: conflict, naming the holder @a read. */
static void finish_conflict(struct op *o, const struct answer *a)
{
    char who[LR_IDENTITY_MAX > 32 ? LR_IDENTITY_MAX : 32];
    struct lr__result r = {.status = LR_ECONFLICT, .holder_ttl_ms = -1};
    if (a->broken) {
        memcpy(who, "broken", 6);
        r.holder = who;
        r.holder_len = 6;
    } else if (a->who_len) {
        memcpy(who, a->who, a->who_len);
        r.holder = who;
        r.holder_len = a->who_len;
    } else if (a->owner_len == 32) {
        memcpy(who, a->owner, 32);
        r.holder = who;
        r.holder_len = 32;
    }
    struct lr_lease *l = o->l;
    free_slot(o);
    lr__lease_complete(l, &r);
}

static const char *step_name(enum step s)
{
    switch (s) {
    case S_GRANT:
    case S_TGRANT:
    case S_SGRANT:
        return "lease grant";
    case S_REVOKE:
    case S_SREVOKE:
        return "lease revoke";
    case S_RENEW:
    case S_SKEEP:
        return "keep-alive";
    case S_AUTH:
        return "authenticate";
    case S_RANGE:
        return "range";
    case S_TKEEP:
        return "tombstone keep-alive";
    default:
        return "txn";
    }
}

static bool owner_is(const struct answer *a, const uint8_t token[16])
{
    char hex[32];
    lr__hex(token, 16, hex);
    return a->owner_len == 32 && !memcmp(a->owner, hex, 32);
}

/* The store is not able to serve now (another member may be). */
static bool unavailable(const struct call *c, const struct answer *a)
{
    return c->status == 503 || a->code == 14 || strstr(a->msg, "leader changed") ||
           strstr(a->msg, "no leader") || strstr(a->msg, "request timed out");
}

/* Move to the next endpoint and send @o's step again there; false when
 * there is no other endpoint or the step has been moved often enough. */
static bool fail_over(struct op *o, int status, const char *why)
{
    struct lr__backend *b = o->b;
    lr__manager_store_error(b->m, status, "etcd %s: %s: %s", b->eps[o->ep].name,
                            step_name(o->step), why);
    if (b->neps < 2 || o->restarts >= b->neps + 1)
        return false;
    o->restarts++;
    if (b->cur == o->ep) /* not moved yet by another request that failed there */
        b->cur = (b->cur + 1) % b->neps;
    start_step(o);
    return true;
}

/* Judge the transport and gRPC outcome of every call of the step. 1: the
 * step went to another endpoint (nothing more to do now); 0: every call has
 * an answer, parsed into o->a[]; <0: the step failed with that status
 * (said to store_error). */
static int check_calls(struct op *o)
{
    struct lr__backend *b = o->b;
    for (unsigned i = 0; i < o->ncalls; i++) {
        struct call *c = &o->c[i];
        if (c->status < 0) {
            int st = c->status;
            if (st == -EMSGSIZE) {
                lr__manager_store_error(b->m, LR_EBADREPLY, "etcd %s: %s: answer over %zu bytes",
                                        op_ep(o), step_name(o->step), c->req.resp_cap);
                return c->req.sent ? LR_EBADREPLY : LR_EUNAVAIL;
            }
            if (st == -ECONNREFUSED || st == -ENOBUFS)
                st = LR_EUNAVAIL;
            /* a step is resent elsewhere: every request here is idempotent
             * or answered by reading (see the top), ambiguous ones too */
            if (fail_over(o, st, lr_strerror(st)))
                return 1;
            return st;
        }
        const char *why;
        if (parse_answer(o, i, &why) < 0) {
            lr__manager_store_error(b->m, LR_EBADREPLY, "etcd %s: %s: %s (HTTP %d)", op_ep(o),
                                    step_name(o->step), why, c->status);
            return LR_EBADREPLY;
        }
        if (unavailable(c, &o->a[i])) {
            if (fail_over(o, LR_EUNAVAIL, o->a[i].msg[0] ? o->a[i].msg : "unavailable"))
                return 1;
            return LR_EUNAVAIL;
        }
        if (b->auth && o->step != S_AUTH && !o->reauthed &&
            (strstr(o->a[i].msg, "invalid auth token") || strstr(o->a[i].msg, "user name is empty"))) {
            o->reauthed = true; /* the token expired: a new one, and again */
            b->token_len = 0;
            start_step(o);
            return 1;
        }
        if (c->status == 401 || o->a[i].code == 16 || o->a[i].code == 7 ||
            strstr(o->a[i].msg, "user name is empty")) {
            lr__manager_store_error(b->m, LR_EAUTH, "etcd %s: %s: auth refused: %s", op_ep(o),
                                    step_name(o->step), o->a[i].msg);
            return LR_EAUTH;
        }
    }
    return 0;
}

/* An answer that is an error we have no rule for: LR_ESTORE, said. */
static int store_refused(struct op *o, unsigned i)
{
    struct lr__backend *b = o->b;
    lr__manager_store_error(b->m, LR_ESTORE, "etcd %s: %s refused: HTTP %d code %d %s", op_ep(o),
                            step_name(o->step), o->c[i].status, o->a[i].code, o->a[i].msg);
    return LR_ESTORE;
}

static bool not_found(const struct op *o, unsigned i)
{
    return o->a[i].code == 5 || strstr(o->a[i].msg, "not found");
}

static bool already_exists(const struct op *o, unsigned i)
{
    return o->a[i].code == 9 || strstr(o->a[i].msg, "already exists");
}

static void next_step(struct op *o, enum step s)
{
    o->step = s;
    start_step(o);
}

/* ------------------------------------------------------------ lease steps */

/* The kv @a (a range or a txn's else branch) is @l's own under @token on
 * etcd lease @lease, with @l's fence (0: any fence). */
static bool kv_ours(const struct answer *a, const uint8_t token[16], uint64_t lease, uint64_t fence)
{
    return a->have_kv && !a->broken && owner_is(a, token) && (uint64_t)a->kv_lease == lease &&
           (!fence || (uint64_t)a->create_rev == fence);
}

static void acquired(struct op *o, uint64_t fence)
{
    if (o->b->session_mode)
        lr__session_add(&o->s->s, o->l);
    finish(o, 0, fence);
}

static void sess_requeue(struct sess *s, struct lr_lease *l);

static void txn_done(struct op *o)
{
    struct lr__backend *b = o->b;
    struct lr_lease *l = o->l;
    const struct answer *a = &o->a[0];
    enum lr__req_kind k = kind_of(l);
    if (o->c[0].status != 200) {
        if (not_found(o, 0) && k == LR_OP_ACQUIRE && o->restarts < MAX_RESTARTS) {
            o->restarts++;
            if (b->session_mode) { /* the session lease is gone: a new one */
                struct sess *s = o->s;
                lr__session_lost(&s->s, LR_ELOST);
                s->id = 0;
                free_slot(o);
                sess_requeue(s, l);
                return;
            }
            next_step(o, S_GRANT); /* ours expired meanwhile */
            return;
        }
        if (not_found(o, 0) && k != LR_OP_ACQUIRE) {
            finish(o, LR_ELOST, 0);
            return;
        }
        finish(o, store_refused(o, 0), 0);
        return;
    }
    if (!a->succeeded && !a->have_kv && k != LR_OP_RELEASE) {
        lr__manager_store_error(b->m, LR_EBADREPLY, "etcd %s: txn failed without the key",
                                op_ep(o));
        finish(o, LR_EBADREPLY, 0);
        return;
    }
    switch (k) {
    case LR_OP_ACQUIRE:
        if (a->succeeded) {
            acquired(o, (uint64_t)a->revision);
        } else if (kv_ours(a, l->token, lease_id(o, l), 0)) {
            acquired(o, (uint64_t)a->create_rev); /* an answer we lost */
        } else if (!b->session_mode) { /* no etcd lease left behind */
            o->a[1] = *a; /* the holder, for after the revoke */
            next_step(o, S_REVOKE);
        } else {
            finish_conflict(o, a);
        }
        return;
    case LR_OP_CHANGE: {
        uint64_t lease = b->session_mode ? lease_id(o, l) : id_of_token(l->next_token);
        if (a->succeeded || kv_ours(a, l->next_token, lease, l->fence)) {
            if (b->session_mode) {
                finish(o, 0, 0);
                return;
            }
            next_step(o, S_REVOKE); /* the old lease has nothing on it any more */
            return;
        }
        finish(o, LR_ELOST, 0);
        return;
    }
    default: /* session release */
        finish(o, a->succeeded ? 0 : LR_ELOST, 0);
        return;
    }
}

static void inspect_done(struct op *o)
{
    const struct answer *a = &o->a[0];
    struct lr__inspect_out *io = lr__inspect_out(o->l);
    if (io && a->have_kv && !a->broken && a->owner_len == 32) {
        io->held = 1;
        io->fence = (uint64_t)a->create_rev;
        memcpy(io->identity, a->who, a->who_len);
        io->identity[a->who_len] = '\0';
        memcpy(io->token, a->owner, 32);
        io->token[32] = '\0';
    } else if (io) {
        io->meta_len = 0;
    }
    finish(o, 0, 0);
}

static void lease_step_done(struct op *o)
{
    struct lr__backend *b = o->b;
    struct lr_lease *l = o->l;
    int rc = check_calls(o);
    if (rc > 0)
        return;
    if (rc < 0) {
        if (o->step == S_REVOKE && kind_of(l) == LR_OP_ACQUIRE) { /* best effort */
            finish_conflict(o, &o->a[1]);
            return;
        }
        if (o->step == S_REVOKE && kind_of(l) == LR_OP_CHANGE) {
            finish(o, 0, 0); /* the old lease expires by itself */
            return;
        }
        finish(o, rc, 0);
        return;
    }
    const struct answer *a = &o->a[0];
    switch (o->step) {
    case S_GRANT:
        if ((o->c[0].status == 200 && a->ttl > 0) || already_exists(o, 0)) {
            next_step(o, S_TXN);
            return;
        }
        if (o->c[0].status == 200) {
            lr__manager_store_error(b->m, LR_EBADREPLY, "etcd %s: lease grant without a TTL",
                                    op_ep(o));
            finish(o, LR_EBADREPLY, 0);
            return;
        }
        finish(o, store_refused(o, 0), 0);
        return;
    case S_TXN:
        txn_done(o);
        return;
    case S_REVOKE:
        if (kind_of(l) == LR_OP_ACQUIRE) {
            finish_conflict(o, &o->a[1]);
        } else if (kind_of(l) == LR_OP_CHANGE) {
            finish(o, 0, 0);
        } else if (o->c[0].status == 200) {
            finish(o, 0, 0);
        } else if (not_found(o, 0)) { /* expired, or our retried revoke went first */
            finish(o, o->c[0].req.retried ? 0 : LR_ELOST, 0);
        } else {
            finish(o, store_refused(o, 0), 0);
        }
        return;
    case S_RENEW: { /* c[0] range, c[1] keep-alive */
        if (o->c[1].status != 200 && !not_found(o, 1)) {
            finish(o, store_refused(o, 1), 0);
            return;
        }
        bool alive = o->c[1].status == 200 && o->a[1].ttl > 0;
        bool ours = o->c[0].status == 200 && kv_ours(a, l->token, lease_id(o, l), l->fence);
        finish(o, alive && ours ? 0 : LR_ELOST, 0);
        return;
    }
    case S_RANGE:
        if (o->c[0].status != 200) {
            finish(o, store_refused(o, 0), 0);
            return;
        }
        if (kind_of(l) == LR_OP_INSPECT) {
            inspect_done(o);
            return;
        }
        if (!a->have_kv || a->broken) { /* nothing to end */
            finish(o, 0, 0);
            return;
        }
        o->target_rev = a->create_rev;
        o->target_lease = a->kv_lease;
        /* the holder's TTL as it wrote it, else the longest any may have */
        o->holder_ttl_ms = a->kv_ttl_ms ? a->kv_ttl_ms : (int64_t)lr__manager_opts(b->m)->ttl_ms;
        if (o->holder_ttl_ms < (int64_t)l->break_ms)
            o->holder_ttl_ms = l->break_ms;
        if (!o->tomb)
            o->tomb = random_id(b);
        next_step(o, S_TGRANT);
        return;
    case S_TGRANT:
        if (o->c[0].status == 200 || already_exists(o, 0)) {
            next_step(o, S_TTXN);
            return;
        }
        finish(o, store_refused(o, 0), 0);
        return;
    case S_TTXN:
        if (o->c[0].status != 200) {
            finish(o, store_refused(o, 0), 0);
            return;
        }
        if (a->succeeded) {
            next_step(o, S_TKEEP);
            return;
        }
        if (o->restarts++ < MAX_RESTARTS) { /* the key changed since we read it */
            next_step(o, S_RANGE);
            return;
        }
        finish(o, LR_ECONFLICT, 0);
        return;
    case S_TKEEP:
        finish(o, 0, 0); /* even without it the tombstone stands TTL' from its grant */
        return;
    default:
        finish(o, LR_EBADREPLY, 0);
        return;
    }
}

/* Write the bodies of @o's step and send them. */
static void start_step(struct op *o)
{
    struct lr__backend *b = o->b;
    struct lr_lease *l = o->l;
    int rc = 0;
    o->ncalls = 1;
    switch (o->step) {
    case S_GRANT:
        rc = body_id(o, 0, "/v3/lease/grant",
                     kind_of(l) == LR_OP_CHANGE ? id_of_token(l->next_token) : id_of_token(l->token),
                     l->ttl_ms);
        break;
    case S_TXN:
        rc = body_txn(o);
        break;
    case S_REVOKE:
        /* a change's old lease: the token moves only when it completes */
        rc = body_id(o, 0, "/v3/lease/revoke", id_of_token(l->token), 0);
        break;
    case S_RENEW:
        o->ncalls = 2;
        rc = body_range(o, 0, l);
        if (!rc)
            rc = body_id(o, 1, "/v3/lease/keepalive", lease_id(o, l), 0);
        break;
    case S_RANGE:
        rc = body_range(o, 0, l);
        break;
    case S_TGRANT:
        rc = body_id(o, 0, "/v3/lease/grant", o->tomb, (uint32_t)o->holder_ttl_ms + 1000u);
        break;
    case S_TTXN:
        rc = body_break(o);
        break;
    case S_TKEEP:
        rc = body_id(o, 0, "/v3/lease/keepalive", o->tomb, 0);
        break;
    case S_SGRANT:
        rc = body_id(o, 0, "/v3/lease/grant", o->s->id, o->s->ttl_ms);
        break;
    case S_AUTH: {
        struct wr w = call_wr(o, 0);
        PUT_LIT(&w, "{\"name\":");
        put_jstr(&w, b->user, strlen(b->user));
        PUT_LIT(&w, ",\"password\":");
        put_jstr(&w, b->password, strlen(b->password));
        PUT_LIT(&w, "}");
        rc = call_set(o, 0, "/v3/auth/authenticate", &w);
        break;
    }
    case S_SREVOKE:
        rc = body_id(o, 0, "/v3/lease/revoke", o->tomb, 0);
        break;
    case S_SKEEP:
        o->ncalls = 2;
        rc = body_markers(o, 0, o->s->id);
        if (!rc)
            rc = body_id(o, 1, "/v3/lease/keepalive", o->s->id, 0);
        break;
    }
    if (rc < 0) { /* metadata too large for one value: never sent */
        lr__manager_store_error(b->m, rc, "etcd %s: %s: request over %u bytes", op_ep(o),
                                step_name(o->step), BODY_MAX);
        if (l)
            finish(o, rc, 0);
        return;
    }
    send_calls(o);
}

/* --------------------------------------------------------------- sessions */

static struct sess *sess_find(struct lr__backend *b, uint32_t ttl_ms, bool create)
{
    struct sess *free_one = NULL;
    for (unsigned i = 0; i < MAX_SESSIONS; i++) {
        struct sess *s = &b->sess[i];
        if (s->ttl_ms == ttl_ms)
            return s;
        if (!s->ttl_ms && !free_one)
            free_one = s;
    }
    if (!create || !free_one)
        return NULL;
    free_one->ttl_ms = ttl_ms;
    lr__session_init(&free_one->s, b->m, ttl_ms);
    return free_one;
}

/* Fail what waits on @s with @status: acquisitions (and renewals). */
static void sess_fail_waiting(struct sess *s, int status, bool renewals)
{
    struct lr_list *n;
    while ((n = lr_list_pop(&s->acq)))
        complete_lease(lease_of_link(n), status, 0);
    while (renewals && (n = lr_list_pop(&s->ride)))
        complete_lease(lease_of_link(n), status, 0);
}

static void sess_start(struct sess *s, enum step step)
{
    s->busy = true;
    s->op.step = step;
    s->op.stamped = false;
    s->op.restarts = 0;
    if (step == S_SKEEP) { /* lr_lease_renew calls from before this send ride on it */
        struct lr_list *n;
        while ((n = lr_list_pop(&s->wait)))
            lr_list_push_tail(&s->ride, n);
    }
    start_step(&s->op);
}

/* @l (an acquisition) waits for @s's lease to be granted. */
static void sess_requeue(struct sess *s, struct lr_lease *l)
{
    lr_list_push_tail(&s->acq, &l->req.link);
    if (!s->busy && !s->id) {
        s->id = random_id(s->b);
        sess_start(s, S_SGRANT);
    }
}

static void sess_tick(struct lr_timer *t)
{
    struct sess *s = t->data;
    if (!s->busy && s->id)
        sess_start(s, S_SKEEP);
}

/* The next keep-alive of @s: renew_fraction x TTL after the last send, or
 * at once when a lr_lease_renew waits. */
static void sess_schedule(struct sess *s)
{
    struct lr__backend *b = s->b;
    uint64_t now = lr_loop_now_ms(loop_of(b));
    uint64_t when = s->op.sent_ns / 1000000u +
                    (uint64_t)((double)s->ttl_ms * lr__manager_opts(b->m)->renew_fraction);
    if (!lr_list_is_empty(&s->wait) || when < now)
        when = now;
    lr_timer_start(&s->tick, when);
}

static void sess_kick(struct sess *s)
{
    if (!s->busy && s->id)
        lr_timer_start(&s->tick, lr_loop_now_ms(loop_of(s->b)));
}

/* A break found by a renewal of this session: lose that name. */
static void lose_marker(struct op *o, const char *key, size_t n)
{
    struct lr__backend *b = o->b;
    size_t head = b->prefix_len + 8 + 17;
    if (!o->s || n <= head || n - head > LR_NAME_MAX)
        return;
    lr__session_lose_name(&o->s->s, key + head, n - head, LR_ELOST);
}

/* A renewal (or grant) of @s failed without a verdict: jeopardy, and a
 * retry after a backoff while it is still valid. */
static void sess_failed(struct sess *s, int status)
{
    struct lr__backend *b = s->b;
    struct lr_list *n;
    while ((n = lr_list_pop(&s->ride))) /* ride on the retry */
        lr_list_push_tail(&s->wait, n);
    lr__session_failed(&s->s, status);
    uint64_t now = lr_loop_now_ms(loop_of(b));
    uint64_t when = now + lr__manager_backoff(b->m, s->fails < 10 ? s->fails : 10);
    s->fails++;
    if (s->s.valid_until > now + 1) { /* retry while valid, the last just before the end */
        lr_timer_start(&s->tick, when < s->s.valid_until ? when : s->s.valid_until - 1);
        return;
    }
    /* Validity is over (the core lost its leases at the stop point): forget
     * this etcd lease; the next acquisition grants a new one. */
    s->id = 0;
    while ((n = lr_list_pop(&s->wait)))
        complete_lease(lease_of_link(n), status, 0);
}

/* True once @s has kept no lease, and no acquisition has used it, for a
 * whole TTL (measured at its renewals). */
static bool sess_idle(struct sess *s)
{
    struct lr__backend *b = s->b;
    bool used = s->s.leases || !lr_list_is_empty(&s->acq) || !lr_list_is_empty(&s->wait);
    for (unsigned i = 0; i < b->nslots && !used; i++)
        used = b->slots[i].l && b->slots[i].s == s;
    uint64_t now = lr_loop_now_ms(loop_of(b));
    if (used) {
        s->idle_since = 0;
        return false;
    }
    if (!s->idle_since)
        s->idle_since = now;
    return now - s->idle_since >= s->ttl_ms;
}

static void sess_step_done(struct sess *s)
{
    struct lr__backend *b = s->b;
    struct op *o = &s->op;
    s->busy = false;
    int rc = check_calls(o);
    if (rc > 0) {
        s->busy = true;
        return;
    }
    if (o->step == S_SREVOKE) { /* idle, revoked (whatever the answer: it expires anyway) */
        if (!lr_list_is_empty(&s->acq)) {
            s->id = random_id(b);
            sess_start(s, S_SGRANT);
        }
        return;
    }
    if (o->step == S_SGRANT) {
        /* "already exists": our grant, resent after its answer was lost (a
         * random 63-bit ID is nobody else's) */
        if (rc == 0 && ((o->c[0].status == 200 && o->a[0].ttl > 0) || already_exists(o, 0))) {
            s->fails = 0;
            lr__session_renewed(&s->s, o->sent_ns);
            struct lr_list *n;
            while ((n = lr_list_pop(&s->acq)))
                lr_list_push_tail(&b->waiting, n);
            lr__loop_defer(loop_of(b), &b->dispatch_task);
            sess_schedule(s);
            return;
        }
        s->id = 0;
        sess_fail_waiting(s, rc < 0 ? rc : rc == 0 && o->c[0].status != 200 ? store_refused(o, 0)
                                                                         : LR_EBADREPLY,
                          false);
        return;
    }
    /* S_SKEEP: c[0] the markers (acted on while parsing), c[1] the keep-alive */
    if (rc < 0 || (o->c[1].status != 200 && !not_found(o, 1)) || o->c[0].status != 200) {
        if (!rc)
            rc = o->c[0].status != 200 ? store_refused(o, 0) : store_refused(o, 1);
        sess_failed(s, rc);
        return;
    }
    struct lr_list *n;
    if (o->c[1].status != 200 || o->a[1].ttl <= 0) { /* the session lease is gone */
        lr__manager_store_error(b->m, LR_ELOST, "etcd %s: session lease %llx expired", op_ep(o),
                                (unsigned long long)s->id);
        lr__session_lost(&s->s, LR_ELOST);
        s->id = 0;
        while ((n = lr_list_pop(&s->ride)))
            complete_lease(lease_of_link(n), LR_ELOST, 0);
        while ((n = lr_list_pop(&s->wait)))
            complete_lease(lease_of_link(n), LR_ELOST, 0);
        if (!lr_list_is_empty(&s->acq)) {
            s->id = random_id(b);
            sess_start(s, S_SGRANT);
        }
        return;
    }
    s->fails = 0;
    lr__session_renewed(&s->s, o->sent_ns);
    while ((n = lr_list_pop(&s->ride)))
        complete_lease(lease_of_link(n), 0, 0);
    if (sess_idle(s)) { /* a TTL without leases: revoke it, grant anew when needed */
        o->tomb = s->id;
        s->id = 0;
        s->idle_since = 0;
        sess_start(s, S_SREVOKE);
        return;
    }
    sess_schedule(s);
}

/* ------------------------------------------------------------------- auth */

static void auth_start(struct lr__backend *b)
{
    if (b->authing || b->closing)
        return;
    b->authing = true;
    b->auth_op->restarts = 0;
    b->auth_op->stamped = false;
    b->auth_op->step = S_AUTH;
    start_step(b->auth_op);
}

static void auth_done(struct lr__backend *b)
{
    struct op *o = b->auth_op;
    int rc = check_calls(o);
    if (rc > 0)
        return; /* sent to another endpoint */
    b->authing = false;
    struct lr_list *n;
    if (rc == 0 && o->c[0].status == 200 && o->a[0].token_len) {
        memcpy(b->token, o->a[0].token, o->a[0].token_len);
        b->token_len = o->a[0].token_len;
        b->auth_fails = 0;
        while ((n = lr_list_pop(&b->auth_wait)))
            send_calls(lr_container_of(n, struct op, auth_link));
        return;
    }
    if (rc == 0) {
        lr__manager_store_error(b->m, LR_EAUTH, "etcd %s: authentication of user %s refused: %s",
                                op_ep(o), b->user, o->a[0].msg);
        rc = LR_EAUTH;
    }
    b->auth_fails++;
    while ((n = lr_list_pop(&b->auth_wait))) { /* each step fails with it */
        struct op *w = lr_container_of(n, struct op, auth_link);
        for (unsigned i = 0; i < w->ncalls; i++)
            w->c[i].status = rc;
        w->restarts = MAX_EPS + 1; /* no failover for this */
        w->pending = 0;
        step_done(w);
    }
}

static void step_done(struct op *o)
{
    if (o == o->b->auth_op)
        auth_done(o->b);
    else if (o->l)
        lease_step_done(o);
    else if (o->s && o == &o->s->op)
        sess_step_done(o->s);
}

/* ---------------------------------------------------------------- dispatch */

static void dispatch_run(struct lr__task *t)
{
    dispatch(lr_container_of(t, struct lr__backend, dispatch_task));
}

/* The first step of @l's request in slot @o; false when it went elsewhere
 * (an acquisition waiting for its session's grant). */
static bool first_step(struct lr__backend *b, struct op *o, struct lr_lease *l)
{
    enum lr__req_kind k = kind_of(l);
    o->s = NULL;
    if (b->session_mode && (k == LR_OP_ACQUIRE || k == LR_OP_CHANGE || k == LR_OP_RELEASE)) {
        struct sess *s = sess_find(b, l->ttl_ms, k == LR_OP_ACQUIRE);
        if (!s) {
            complete_lease(l, k == LR_OP_ACQUIRE ? -ENOSPC : LR_ELOST, 0);
            return false;
        }
        if (!s->id || (s->busy && s->op.step == S_SGRANT)) {
            if (k != LR_OP_ACQUIRE) {
                complete_lease(l, LR_ELOST, 0);
                return false;
            }
            sess_requeue(s, l);
            return false;
        }
        o->s = s;
        o->step = S_TXN;
        return true;
    }
    switch (k) {
    case LR_OP_ACQUIRE:
    case LR_OP_CHANGE:
        o->step = S_GRANT;
        break;
    case LR_OP_RELEASE:
        o->step = S_REVOKE;
        break;
    case LR_OP_RENEW:
        o->step = S_RENEW;
        break;
    default:
        o->step = S_RANGE;
        break;
    }
    return true;
}

static void dispatch(struct lr__backend *b)
{
    if (b->closing)
        return;
    for (unsigned i = 0; i < b->nslots && !lr_list_is_empty(&b->waiting); i++) {
        struct op *o = &b->slots[i];
        while (!o->l && !lr_list_is_empty(&b->waiting)) {
            struct lr_lease *l = lease_of_link(lr_list_pop(&b->waiting));
            o->restarts = 0;
            o->stamped = false;
            o->tomb = 0;
            if (!first_step(b, o, l))
                continue; /* it went elsewhere: the slot takes the next one */
            o->l = l;
            start_step(o);
        }
    }
}

/* --------------------------------------------------------------- configure */

static int config_error(struct lr__backend *b, const char *why)
{
    lr__manager_store_error(b->m, -EINVAL, "etcd: %s", why);
    return -EINVAL;
}

/* etcd://[user:password@]host:port[,host:port...][?prefix=P&tls=yes|no
 * &cacert=FILE&mode=session|lease] */
static int configure(struct lr__backend *b, const struct lr__uri *u, struct lr__uri_host *hosts,
                     int *nhosts)
{
    static const char *const known[] = {"prefix", "tls", "cacert", "mode"};
    for (unsigned i = 0; i < u->nparams; i++) {
        bool ok = false;
        for (size_t k = 0; k < sizeof(known) / sizeof(known[0]); k++)
            ok |= !strcmp(u->params[i].key, known[k]);
        if (!ok)
            return config_error(b, "unknown URI parameter (known: prefix, tls, cacert, mode)");
    }
    if (u->path[0])
        return config_error(b, "no path: the key prefix is ?prefix=");
    if (u->has_user || u->has_password) {
        if (!u->has_user || !u->user[0] || !u->has_password)
            return config_error(b, "auth needs user:password@");
        b->auth = true;
        snprintf(b->user, sizeof(b->user), "%s", u->user);
        snprintf(b->password, sizeof(b->password), "%s", u->password);
    }
    const char *mode = lr__uri_param(u, "mode");
    if (mode && strcmp(mode, "session") && strcmp(mode, "lease"))
        return config_error(b, "mode must be session or lease");
    b->session_mode = !mode || !strcmp(mode, "session");
    const char *tls = lr__uri_param(u, "tls");
    if (tls && strcmp(tls, "yes") && strcmp(tls, "no"))
        return config_error(b, "tls must be yes or no");
    b->tls = (tls && !strcmp(tls, "yes")) || (!tls && lr__uri_param(u, "cacert"));
    if (lr__uri_param(u, "cacert") && !b->tls)
        return config_error(b, "cacert= with tls=no");
    const char *prefix = lr__uri_param(u, "prefix");
    if (!prefix)
        prefix = PREFIX_DEFAULT;
    b->prefix_len = strlen(prefix);
    if (b->prefix_len > PREFIX_MAX)
        return config_error(b, "prefix longer than 128 bytes");
    memcpy(b->prefix, prefix, b->prefix_len + 1);
    int n = lr__uri_hosts(u, NULL, 2379, hosts, MAX_EPS);
    if (n < 0)
        return config_error(b, "endpoints: host:port[,host:port...] (at most 8)");
    *nhosts = n;
    return 0;
}

/* ---------------------------------------------------------------- backend */

static void on_conn_error(struct lr__httpc *h, int err, const char *why)
{
    struct lr__backend *b = h->data;
    struct ep *e = lr_container_of(h, struct ep, http);
    lr__manager_store_error(b->m, err, "etcd %s: %s", e->name, why);
}

static void op_free(struct op *o)
{
    for (unsigned i = 0; i < 2; i++) {
        lr__free(o->c[i].body);
        lr__free(o->c[i].req.resp);
    }
}

static int op_init(struct lr__backend *b, struct op *o, size_t resp0)
{
    o->b = b;
    lr_list_init(&o->auth_link);
    size_t body[2] = {BODY_MAX, SMALL_BODY}, resp[2] = {resp0, SMALL_RESP};
    for (unsigned i = 0; i < 2; i++) {
        struct call *c = &o->c[i];
        c->op = o;
        c->body = lr__malloc(body[i]);
        c->body_cap = body[i];
        c->req.data = c;
        c->req.encode = encode;
        c->req.on_done = on_done;
        c->req.resp = lr__malloc(resp[i]);
        c->req.resp_cap = resp[i];
        c->req.idempotent = true; /* see the top: resent, each is idempotent or read back */
        if (!c->body || !c->req.resp)
            return -ENOMEM;
    }
    return 0;
}

static void backend_free(struct lr__backend *b)
{
    if (!b)
        return;
    for (unsigned i = 0; i < b->neps; i++)
        if (b->eps[i].ok)
            lr__httpc_deinit(&b->eps[i].http);
    lr__task_cancel(&b->dispatch_task);
    if (b->sess)
        for (unsigned i = 0; i < MAX_SESSIONS; i++) {
            struct sess *s = &b->sess[i];
            lr_timer_stop(&s->tick);
            if (s->ttl_ms)
                lr__session_fini(&s->s);
            op_free(&s->op);
        }
    if (b->slots)
        for (unsigned i = 0; i < b->nslots; i++)
            op_free(&b->slots[i]);
    if (b->auth_op)
        op_free(b->auth_op);
    lr__free(b->auth_op);
    explicit_bzero(b->password, sizeof(b->password));
    explicit_bzero(b->token, sizeof(b->token));
    lr__free(b->slots);
    lr__free(b->sess);
    lr__tls_ctx_free(b->tls_ctx);
    lr__free(b);
}

static int etcd_create(struct lr__backend **out, struct lr_manager *m, const struct lr__uri *u)
{
    const struct lr_manager_opts *o = lr__manager_opts(m);
    struct lr__backend *b = lr__calloc(1, sizeof(*b));
    if (!b)
        return -ENOMEM;
    b->m = m;
    lr_list_init(&b->waiting);
    lr_list_init(&b->auth_wait);
    lr__task_init(&b->dispatch_task, dispatch_run);
    struct lr__uri_host hosts[MAX_EPS];
    int nh = 0;
    int rc = configure(b, u, hosts, &nh);
    if (rc == 0 && b->tls) {
        struct lr__tls_opts to = {.ca_file = lr__uri_param(u, "cacert")};
        rc = lr__tls_ctx_new(&b->tls_ctx, &to);
    }
    b->nslots = 2 * o->connections;
    if (rc == 0) {
        b->slots = lr__calloc(b->nslots, sizeof(*b->slots));
        b->sess = lr__calloc(MAX_SESSIONS, sizeof(*b->sess));
        b->auth_op = lr__calloc(1, sizeof(*b->auth_op));
        if (!b->slots || !b->sess || !b->auth_op)
            rc = -ENOMEM;
    }
    if (rc == 0)
        rc = op_init(b, b->auth_op, SMALL_RESP);
    for (unsigned i = 0; rc == 0 && i < b->nslots; i++)
        rc = op_init(b, &b->slots[i], RESP_MAX);
    for (unsigned i = 0; rc == 0 && i < MAX_SESSIONS; i++) {
        struct sess *s = &b->sess[i];
        s->b = b;
        s->op.s = s;
        lr_list_init(&s->acq);
        lr_list_init(&s->wait);
        lr_list_init(&s->ride);
        lr_timer_init(lr__manager_loop(m), &s->tick, sess_tick);
        s->tick.data = s;
        rc = op_init(b, &s->op, MARKER_RESP);
    }
    for (int i = 0; rc == 0 && i < nh; i++) {
        struct ep *e = &b->eps[i];
        bool v6 = strchr(hosts[i].host, ':') != NULL;
        snprintf(e->name, sizeof(e->name), v6 ? "[%s]:%u" : "%s:%u", hosts[i].host, hosts[i].port);
        struct lr__httpc_opts ho = {.host = hosts[i].host,
                                    .port = hosts[i].port,
                                    .max_conns = o->connections,
                                    .out_cap = OUT_BYTES,
                                    .timeout_ms = o->request_timeout_ms,
                                    .tls_ctx = b->tls_ctx,
                                    .tls_host = hosts[i].host,
                                    .on_conn_error = on_conn_error};
        e->http.data = b;
        rc = lr__httpc_init(&e->http, lr__manager_loop(m), &ho);
        e->ok = rc == 0;
        b->neps = (unsigned)i + 1;
    }
    if (rc < 0) {
        backend_free(b);
        return rc;
    }
    lr__httpc_warm(&b->eps[0].http);
    *out = b;
    return 0;
}

static int etcd_submit(struct lr__backend *b, struct lr_lease *l)
{
    if (l->name_len + b->prefix_len + 8 + 17 > KEY_MAX)
        return -ENAMETOOLONG;
    switch (kind_of(l)) {
    case LR_OP_RENEW:
        if (b->session_mode) { /* answered by the next session keep-alive */
            struct sess *s = sess_find(b, l->ttl_ms, false);
            if (!s || !s->id)
                return LR_EUNAVAIL;
            lr_list_push_tail(&s->wait, &l->req.link);
            sess_kick(s);
            return 0;
        }
        break;
    case LR_OP_ACQUIRE:
    case LR_OP_RELEASE:
    case LR_OP_BREAK:
    case LR_OP_CHANGE:
    case LR_OP_INSPECT:
        break;
    default:
        return -EINVAL;
    }
    lr_list_push_tail(&b->waiting, &l->req.link);
    lr__loop_defer(lr__manager_loop(b->m), &b->dispatch_task);
    return 0;
}

static void etcd_cancel(struct lr__backend *b, struct lr_lease *l)
{
    lr_list_unlink(&l->req.link);
    for (unsigned i = 0; i < b->nslots; i++)
        if (b->slots[i].l == l) {
            cancel_calls(&b->slots[i]);
            free_slot(&b->slots[i]);
        }
}

static void http_closed(struct lr__httpc *h)
{
    struct lr__backend *b = h->data;
    if (++b->closed == b->neps)
        b->close_done(b->m);
}

/* Empty @head, leaving each node unlinked (a later unlink is harmless). */
static void drain(struct lr_list *head)
{
    while (lr_list_pop(head))
        ;
}

static void etcd_close(struct lr__backend *b, void (*done)(struct lr_manager *m))
{
    b->closing = true;
    b->close_done = done;
    lr__task_cancel(&b->dispatch_task);
    for (unsigned i = 0; i < MAX_SESSIONS; i++) {
        struct sess *s = &b->sess[i];
        lr_timer_stop(&s->tick);
        drain(&s->acq);
        drain(&s->wait);
        drain(&s->ride);
    }
    drain(&b->waiting);
    drain(&b->auth_wait);
    for (unsigned i = 0; i < b->neps; i++)
        lr__httpc_close(&b->eps[i].http, http_closed);
}

static void etcd_gauges(struct lr__backend *b, struct lr__gauges *g)
{
    for (unsigned i = 0; i < b->neps; i++) {
        unsigned busy = 0;
        g->up += lr__httpc_up(&b->eps[i].http, &busy);
        g->in_flight += busy;
    }
    g->unreachable = b->eps[b->cur].http.unreachable;
}

/* etcd grants whole seconds: 1 s is its floor (and a short TTL costs a
 * keep-alive per third of it); at most an hour. */
const struct lr__backend_ops lr__etcd_backend = {
    .scheme = "etcd",
    .min_ttl_ms = 1000,
    .max_ttl_ms = 3600000,
    .create = etcd_create,
    .submit = etcd_submit,
    .cancel = etcd_cancel,
    .close = etcd_close,
    .free = backend_free,
    .gauges = etcd_gauges,
};
