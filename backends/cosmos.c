/* SPDX-License-Identifier: MIT */
/*
 * cosmos.c - the Azure Cosmos DB backend (SQL API, REST): one document per
 * lease name in a container partitioned on /id, written with ETag
 * conditions over the shared HTTP/1.1 client (src/httpc.c), master-key
 * signed (src/cosmossign.c), answers read with the JSON pull scanner.
 *
 * The document (id: lr__cosmos_id_of(name), partition key = id):
 *   {"id", "owner": 32 hex digits of the holder's token, "" = nobody,
 *    "fence": counter, "ttlMs": the holder's lease TTL, "identity",
 *    "broken": true after lr_lease_break, "meta": {user pairs},
 *    "ttl": seconds (Cosmos' own cleanup of abandoned documents)}
 *
 * Cosmos has no lease that expires by itself, and this backend never trusts
 * another machine's clock (the document's _ts is never compared with ours).
 * So expiry is decided by the contenders, as Kubernetes' leader election
 * does with its observed record: a contender may take a held document over
 * only after it has seen the very same ETag for a full ttlMs on its own
 * CLOCK_MONOTONIC, counted from when it *received* the first answer showing
 * that ETag (the holder's write landed before that answer was sent, and the
 * holder counts its validity from before that write, so it has stopped by
 * then; drift as for every store). Any write changes the ETag, so every
 * renewal restarts every contender's count.
 *
 * Steps of a request (one slot, back to back, each next step first in the
 * client's line):
 *   acquire  POST create {owner: us, fence 1} -> 201 held. 409: GET; a free
 *            document (owner "", not broken) or one already ours (an answer
 *            we lost) -> PUT If-Match, fence+1 -> 200 held, 412 conflict;
 *            held by another -> conflict naming its identity, unless the
 *            observation above allows the takeover (PUT, fence+1).
 *   renew / change  PUT If-Match on the ETag of our last write -> 200 (new
 *            ETag). 412: GET -- if the document still names us (an earlier
 *            write of ours whose answer was lost moved the ETag) PUT again,
 *            else LR_ELOST; 404 LR_ELOST.
 *   release  PUT If-Match marking the owner "" with the fence kept, *not* a
 *            delete: a delete would let the next create restart the fence
 *            at 1, and fences must grow strictly per name.
 *   break    GET, then PUT If-Match: owner "", broken, ttlMs = the larger
 *            of the holder's TTL and the break period. The holder's next
 *            renewal fails (LR_ELOST); contenders still wait a full ttlMs of
 *            unchanged ETag, so a break never cuts a lease short.
 *   inspect  GET.
 * Where the holder's last ETag lives: the held table below (keyed by the
 * lease); a lease missing from it (table full) renews by GET + PUT.
 *
 * Errors: 429 waits x-ms-retry-after-ms when that still fits inside the
 * lease's validity (renewals) or the acquire's deadline, else the step fails
 * as LR_EUNAVAIL; either way no new request of this client starts before
 * the time the 429 asked for (the lease core's retries wait behind it); 449 and 503 are retried after a short backoff, at most
 * MAX_RETRIES times; 401/403 are LR_EAUTH; 404 on the create names the
 * missing dbs/D/colls/C (LR_ESTORE, definite). A timeout or a dropped
 * connection is ambiguous, as for azblob.
 * Layer: HTTP + the Cosmos REST API + the backend interface; no other backend.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "alloc_int.h"
#include "azsign_int.h"
#include "backend_int.h"
#include "cosmos_backend.h"
#include "cosmossign_int.h"
#include "fmt.h"
#include "http.h"
#include "httpc_int.h"
#include "json.h"
#include "lease_int.h"
#include "loop_int.h"
#include "tls_int.h"
#include <leasering/error.h>

#define MS_VERSION "2018-12-31" /* x-ms-version, pinned */
#define BODY_MAX 16384u         /* a request body: the document, metadata included */
#define RESP_MAX 16384u         /* an answer's body */
#define OUT_BYTES (BODY_MAX + 4096u)
#define ETAG_MAX 64 /* Cosmos ETags are a quoted GUID (38), the emulator's bare (36) */
#define NAME_MAX_DB 255
#define MAX_RETRIES 3     /* 449 / 503 */
#define MAX_REREADS 2     /* a 412 on our own write: read, write again */
#define MAX_CREATES 3     /* the document vanished between our create and read */
#define JSON_TOKENS 4096u /* a document: its fields and up to LR_META_MAX / 2 metadata pairs */
#define DEFAULT_DOC_TTL 86400u

enum step {
    S_CREATE = 1, /* POST .../docs */
    S_GET,        /* GET the document; what follows depends on the request kind */
    S_PUT,        /* PUT If-Match the document this request writes */
};

/* One request in flight (two per connection): the lease's steps, the
 * answer's headers and the document fields its body carried. */
struct slot {
    struct lr__backend *b;
    struct lr__httpc_req req;
    struct lr_timer retry; /* 429 / 449 / 503: send the step again */
    struct lr_lease *l;    /* NULL: free */
    enum step step;
    int status;
    uint8_t tries;   /* 449 / 503 / 429 retries of this request */
    uint8_t rereads; /* 412 on renew / change / release */
    uint8_t creates;
    uint64_t retry_after_ms; /* x-ms-retry-after-ms; 0 none */
    uint8_t etag_len;        /* the answer's etag header (or a document's _etag) */
    uint8_t cond_len;        /* the ETag a PUT is conditioned on (If-Match) */
    char etag[ETAG_MAX];
    char cond[ETAG_MAX];
    /* the document a GET returned */
    bool doc_broken;
    uint8_t owner_len;
    uint8_t who_len;
    uint64_t fence;
    uint64_t doc_ttl_ms;
    char owner[32];
    char who[LR_IDENTITY_MAX];
    char code[48]; /* an error answer's "code" */
    char body[BODY_MAX];
    char resp[RESP_MAX];
};

/* The ETag of each held lease's last write, keyed by the lease, so that a
 * renewal is one conditional PUT. Sized with the manager (2 x max_leases,
 * open addressing): a held lease has one entry, dropped when it is released
 * or lost; an entry of a lease that went away without telling the backend
 * (lost by expiry, deinit) is reused when its lease pointer comes back, or
 * swept once alive_ms is past (a held lease refreshes it at every write).
 * A lease that finds no room renews by GET + PUT: slower, never unsafe. */
struct held {
    struct lr_lease *l; /* NULL: empty */
    uint64_t alive_ms;  /* loop ms: past this the entry is stale */
    uint8_t token[16];
    uint8_t etag_len;
    char etag[ETAG_MAX];
};

/* What this manager has seen of documents others hold: name (hashed) ->
 * ETag and when the first answer showing it arrived (CLOCK_MONOTONIC ms).
 * Bounded: max_leases rounded up to a power of two (a manager contends for
 * at most max_leases names at once), 4 probes per name; when those are
 * taken the oldest observation is forgotten. Forgetting is always safe: it
 * only makes that contender start counting again, delaying its takeover.
 * Two names whose hashes collide share an entry: also safe, since an ETag
 * belongs to one document, so a shared entry only restarts counts. */
struct obs {
    uint64_t hash; /* 0: empty */
    uint64_t first_ms;
    uint8_t etag_len;
    char etag[ETAG_MAX];
};
#define OBS_PROBES 4

struct lr__backend {
    struct lr_manager *m;
    struct lr__httpc http;
    bool http_ok;
    bool keyed;
    bool closing;
    bool tls;
    uint16_t port;
    unsigned nslots;
    uint32_t doc_ttl_s; /* 0: no "ttl" field */
    void (*close_done)(struct lr_manager *m);
    struct lr_list waiting; /* lr_lease.req.link: requests waiting for a slot */
    struct lr__task dispatch_task;
    /* A 429 throttles the whole client: no new request starts before
     * throttled_until (CLOCK_MONOTONIC ms, rounded up), whatever lease it
     * is for, so a lease core retrying a renewal that could not wait does
     * not hammer a server that asked for quiet. Requests already in a slot
     * keep their own retry timers. */
    uint64_t throttled_until;
    struct lr_timer throttle;
    struct lr__az_date_cache date;
    struct lr__cosmos_key key;
    struct lr__tls_ctx *tls_ctx;
    struct slot *slots;
    struct held *held;
    uint32_t held_mask;
    uint32_t held_count;
    struct obs *obs;
    uint32_t obs_mask;
    uint64_t reconnects_seen;
    char host[256];
    char db[NAME_MAX_DB + 1];
    char coll[NAME_MAX_DB + 1];
    char coll_link[2 * NAME_MAX_DB + 16]; /* "dbs/D/colls/C" */
    size_t coll_link_len;
    char host_header[300];
    size_t host_len;
};

static inline struct lr_lease *lease_of_link(struct lr_list *n)
{
    return lr_container_of(n, struct lr_lease, req.link);
}

static enum lr__req_kind kind_of(const struct lr_lease *l)
{
    return (enum lr__req_kind)l->req.kind;
}

/* CLOCK_MONOTONIC in ms, read now (the loop's cached clock may be older
 * than the answer being timed: an older "first seen" would shorten the
 * wait, so observations never use it). */
static uint64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* ------------------------------------------------------------ ids, strings */

static bool id_plain(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '_' || c == '.';
}

int lr__cosmos_id_of(const char *name, size_t n, char *out, size_t cap)
{
    static const char hex[] = "0123456789ABCDEF";
    if (!n)
        return -EINVAL;
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)name[i];
        size_t need = id_plain(c) ? 1 : 3;
        if (o + need > LR_COSMOS_ID_MAX || o + need + 1 > cap)
            return -ENAMETOOLONG;
        if (need == 1) {
            out[o++] = (char)c;
        } else {
            out[o++] = '~';
            out[o++] = hex[c >> 4];
            out[o++] = hex[c & 15];
        }
    }
    out[o] = '\0';
    return (int)o;
}

int lr__cosmos_name_of(const char *id, size_t n, char *out, size_t cap)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)id[i];
        if (c == '~') {
            int hi = i + 2 < n ? lr__hexval(id[i + 1]) : -1;
            int lo = i + 2 < n ? lr__hexval(id[i + 2]) : -1;
            if (hi < 0 || lo < 0 || (id[i + 1] >= 'a' && id[i + 1] <= 'f') ||
                (id[i + 2] >= 'a' && id[i + 2] <= 'f'))
                return -EINVAL;
            c = (unsigned char)(hi * 16 + lo);
            if (id_plain(c))
                return -EINVAL; /* never escaped by lr__cosmos_id_of */
            i += 2;
        } else if (!id_plain(c)) {
            return -EINVAL;
        }
        if (o + 1 >= cap)
            return -ENAMETOOLONG;
        out[o++] = (char)c;
    }
    out[o] = '\0';
    return (int)o;
}

/* Append @s (@n bytes) to the body as a JSON string, escaping '"', '\\'
 * and control bytes. Returns 0 or -ENOBUFS. */
static int put_json_str(char **p, char *end, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    char *q = *p;
    if (q >= end)
        return -ENOBUFS;
    *q++ = '"';
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (end - q < 7)
            return -ENOBUFS;
        if (c == '"' || c == '\\') {
            *q++ = '\\';
            *q++ = (char)c;
        } else if (c < 0x20 || c == 0x7f) {
            memcpy(q, "\\u00", 4);
            q[4] = hex[c >> 4];
            q[5] = hex[c & 15];
            q += 6;
        } else {
            *q++ = (char)c;
        }
    }
    if (q >= end)
        return -ENOBUFS;
    *q++ = '"';
    *p = q;
    return 0;
}

static int put_raw(char **p, char *end, const char *s, size_t n)
{
    if ((size_t)(end - *p) < n)
        return -ENOBUFS;
    memcpy(*p, s, n);
    *p += n;
    return 0;
}

#define PUT_LIT(p, end, s) put_raw(p, end, s, sizeof(s) - 1)

static int put_u64(char **p, char *end, uint64_t v)
{
    unsigned d = lr_u64_digits(v);
    if ((size_t)(end - *p) < d)
        return -ENOBUFS;
    *p = lr_put_u64(*p, v, d);
    return 0;
}

static uint64_t fnv1a(const char *s, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)s[i]) * 0x100000001b3ull;
    return h ? h : 1;
}

/* ------------------------------------------------------------ held table */

static uint32_t ptr_hash(const struct lr_lease *l)
{
    uint64_t x = (uint64_t)(uintptr_t)l;
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    return (uint32_t)x;
}

static struct held *held_find(struct lr__backend *b, const struct lr_lease *l)
{
    for (uint32_t i = ptr_hash(l) & b->held_mask, k = 0; k <= b->held_mask;
         i = (i + 1) & b->held_mask, k++) {
        struct held *h = &b->held[i];
        if (!h->l)
            return NULL;
        if (h->l == l)
            return h;
    }
    return NULL;
}

/* Remove @h, shifting the entries of its probe run back (no tombstones). */
static void held_remove(struct lr__backend *b, struct held *h)
{
    uint32_t i = (uint32_t)(h - b->held);
    b->held[i].l = NULL;
    b->held_count--;
    for (uint32_t j = (i + 1) & b->held_mask; b->held[j].l; j = (j + 1) & b->held_mask) {
        uint32_t home = ptr_hash(b->held[j].l) & b->held_mask;
        /* move j to i when its home is not in (i, j] */
        bool between = i <= j ? (home > i && home <= j) : (home > i || home <= j);
        if (!between) {
            b->held[i] = b->held[j];
            b->held[j].l = NULL;
            i = j;
        }
    }
}

/* Drop entries whose leases stopped writing long ago (see struct held). */
static void held_sweep(struct lr__backend *b, uint64_t now)
{
    for (uint32_t i = 0; i <= b->held_mask; i++)
        while (b->held[i].l && b->held[i].alive_ms < now)
            held_remove(b, &b->held[i]);
}

/* Record @etag as @l's, under @token. No room: nothing is kept (the next
 * renewal reads the document first). */
static void held_put(struct lr__backend *b, struct lr_lease *l, const uint8_t token[16],
                     const char *etag, size_t elen)
{
    uint64_t now = lr_loop_now_ms(lr__manager_loop(b->m));
    struct held *h = held_find(b, l);
    if (!h) {
        uint32_t most = (b->held_mask + 1) / 4 * 3; /* keep probe runs short */
        if (b->held_count + 1 > most)
            held_sweep(b, now);
        if (b->held_count + 1 > most)
            return; /* still full */
        uint32_t i = ptr_hash(l) & b->held_mask;
        while (b->held[i].l)
            i = (i + 1) & b->held_mask;
        h = &b->held[i];
        h->l = l;
        b->held_count++;
    }
    memcpy(h->token, token, 16);
    memcpy(h->etag, etag, elen);
    h->etag_len = (uint8_t)elen;
    h->alive_ms = now + 2u * l->ttl_ms;
}

static void held_drop(struct lr__backend *b, const struct lr_lease *l)
{
    struct held *h = held_find(b, l);
    if (h)
        held_remove(b, h);
}

/* ------------------------------------------------------------ observations */

static struct obs *obs_slot(struct lr__backend *b, uint64_t hash, bool insert)
{
    struct obs *oldest = NULL;
    for (uint32_t k = 0; k < OBS_PROBES; k++) {
        struct obs *o = &b->obs[(hash + k) & b->obs_mask];
        if (o->hash == hash)
            return o;
        if (!oldest || !o->hash || (oldest->hash && o->first_ms < oldest->first_ms))
            oldest = o;
    }
    if (!insert)
        return NULL;
    oldest->hash = hash; /* forgotten: see struct obs */
    oldest->etag_len = 0;
    return oldest;
}

static void obs_forget(struct lr__backend *b, const char *name, size_t n)
{
    struct obs *o = obs_slot(b, fnv1a(name, n), false);
    if (o)
        o->hash = 0;
}

/* A GET of @name just showed ETag @etag held by someone else: true when this
 * manager has seen exactly that ETag for @ttl_ms or longer (see the top). */
static bool obs_expired(struct lr__backend *b, const char *name, size_t n, const char *etag,
                        size_t elen, uint64_t ttl_ms, uint64_t now)
{
    struct obs *o = obs_slot(b, fnv1a(name, n), true);
#ifdef LR_PLANT_COSMOS_NO_WAIT /* planted bug, only in the library copy tests/test_cosmos_fault.c
                                * links its planted holder with: takeover without the wait */
    ttl_ms = 0;
#endif
    if (o->etag_len == elen && elen && !memcmp(o->etag, etag, elen))
        return now >= o->first_ms && now - o->first_ms >= ttl_ms;
    memcpy(o->etag, etag, elen);
    o->etag_len = (uint8_t)elen;
    o->first_ms = now;
    return false;
}

/* -------------------------------------------------------------- requests */

static int header(char **p, char *end, const char *name, const char *v, size_t vlen)
{
    int n = lr_http_write_header(*p, (size_t)(end - *p), name, strlen(name), v, vlen);
    if (n < 0)
        return n;
    *p += n;
    return 0;
}

static bool owner_is(const struct slot *c, const uint8_t token[16])
{
    char hex[32];
    lr__hex(token, 16, hex);
    return c->owner_len == 32 && !memcmp(c->owner, hex, 32);
}

/* The document this PUT (or the create) writes, into c->body. */
static int build_doc(struct slot *c, const char *id, size_t idlen)
{
    struct lr__backend *b = c->b;
    struct lr_lease *l = c->l;
    enum lr__req_kind k = kind_of(l);
    char *p = c->body, *end = c->body + sizeof(c->body);
    char owner[32];
    size_t owner_len = 32;
    uint64_t fence = l->fence, ttl = l->ttl_ms;
    const char *who = NULL;
    size_t wl = 0;
    bool broken = false, meta = true;
    switch (k) {
    case LR_OP_ACQUIRE:
        lr__hex(l->token, 16, owner);
        fence = c->step == S_CREATE ? 1 : c->fence + 1;
        break;
    case LR_OP_RENEW:
        lr__hex(l->token, 16, owner);
        break;
    case LR_OP_CHANGE:
        lr__hex(l->next_token, 16, owner);
        break;
    case LR_OP_RELEASE: /* free, the fence kept: see the top */
        owner_len = 0;
        meta = false;
        wl = 0;
        who = "";
        break;
    case LR_OP_BREAK: /* the holder's identity kept, for the record */
        owner_len = 0;
        broken = true;
        meta = false;
        fence = c->fence;
        ttl = c->doc_ttl_ms > l->break_ms ? c->doc_ttl_ms : l->break_ms;
        who = c->who;
        wl = c->who_len;
        break;
    default:
        return -EINVAL;
    }
    if (!who)
        who = lr__manager_identity(b->m, &wl);
    int rc = PUT_LIT(&p, end, "{\"id\":\"");
    if (!rc)
        rc = put_raw(&p, end, id, idlen);
    if (!rc)
        rc = PUT_LIT(&p, end, "\",\"owner\":");
    if (!rc)
        rc = put_json_str(&p, end, owner, owner_len);
    if (!rc)
        rc = PUT_LIT(&p, end, ",\"fence\":");
    if (!rc)
        rc = put_u64(&p, end, fence);
    if (!rc)
        rc = PUT_LIT(&p, end, ",\"ttlMs\":");
    if (!rc)
        rc = put_u64(&p, end, ttl);
    if (!rc)
        rc = PUT_LIT(&p, end, ",\"identity\":");
    if (!rc)
        rc = put_json_str(&p, end, who, wl);
    if (!rc)
        rc = broken ? PUT_LIT(&p, end, ",\"broken\":true") : PUT_LIT(&p, end, ",\"broken\":false");
    if (!rc)
        rc = PUT_LIT(&p, end, ",\"meta\":{");
    for (size_t i = 0; !rc && meta && l->meta && i < l->meta_len;) {
        const char *mk = l->meta + i, *mv = mk + strlen(mk) + 1;
        if (i && (rc = PUT_LIT(&p, end, ",")) < 0)
            break;
        rc = put_json_str(&p, end, mk, strlen(mk));
        if (!rc)
            rc = PUT_LIT(&p, end, ":");
        if (!rc)
            rc = put_json_str(&p, end, mv, strlen(mv));
        i = (size_t)(mv - l->meta) + strlen(mv) + 1;
    }
    if (!rc)
        rc = PUT_LIT(&p, end, "}");
    if (!rc && b->doc_ttl_s) {
        rc = PUT_LIT(&p, end, ",\"ttl\":");
        if (!rc)
            rc = put_u64(&p, end, b->doc_ttl_s);
    }
    if (!rc)
        rc = PUT_LIT(&p, end, "}");
    if (rc < 0)
        return -EMSGSIZE; /* metadata too large for one document write */
    c->req.body = c->body;
    c->req.body_len = (size_t)(p - c->body);
    return 0;
}

/* The head of the request for @c's current step (the client appends
 * Content-Length, the blank line and the body). */
static int encode(struct lr__httpc_req *r, char *w, size_t avail)
{
    struct slot *c = r->data;
    struct lr__backend *b = c->b;
    struct lr_lease *l = c->l;
    char id[LR_COSMOS_ID_MAX + 1];
    int idlen = lr__cosmos_id_of(l->name, l->name_len, id, sizeof(id));
    if (idlen < 0)
        return idlen;
    const char *verb = c->step == S_CREATE ? "POST" : c->step == S_GET ? "GET" : "PUT";
    /* resource link (signed) and path: the collection's docs feed for a
     * create, the document otherwise */
    char link[sizeof(b->coll_link) + 8 + LR_COSMOS_ID_MAX], path[sizeof(link) + 8];
    size_t ll = b->coll_link_len;
    memcpy(link, b->coll_link, ll);
    link[ll] = '\0';
    if (c->step != S_CREATE) {
        memcpy(link + ll, "/docs/", 6);
        memcpy(link + ll + 6, id, (size_t)idlen + 1);
        ll += 6 + (size_t)idlen;
    }
    int pl = snprintf(path, sizeof(path), "/%s%s", link, c->step == S_CREATE ? "/docs" : "");
    if (pl < 0 || (size_t)pl >= sizeof(path))
        return -ENAMETOOLONG;
    const char *date = lr__az_date_cache_get(&b->date, time(NULL));
    if (!date)
        return -ERANGE;
    char auth[LR_COSMOS_AUTH_SIZE];
    int rc = lr__cosmos_auth(&b->key, verb, "docs", link, date, auth, sizeof(auth));
    if (rc < 0)
        return rc;
    char pk[LR_COSMOS_ID_MAX + 8];
    int pkl = snprintf(pk, sizeof(pk), "[\"%s\"]", id); /* the id needs no JSON escape */
    char *p = w, *end = w + avail;
    rc = lr_http_write_request_line(p, avail, verb, strlen(verb), path, (size_t)pl);
    if (rc < 0)
        return rc;
    p += rc;
    if ((rc = header(&p, end, "Host", b->host_header, b->host_len)) < 0 ||
        (rc = header(&p, end, "x-ms-date", date, strlen(date))) < 0 ||
        (rc = header(&p, end, "x-ms-version", MS_VERSION, sizeof(MS_VERSION) - 1)) < 0 ||
        (rc = header(&p, end, "Authorization", auth, strlen(auth))) < 0 ||
        (rc = header(&p, end, "x-ms-documentdb-partitionkey", pk, (size_t)pkl)) < 0)
        return rc;
    if (c->step != S_GET && (rc = header(&p, end, "Content-Type", "application/json", 16)) < 0)
        return rc;
    if (c->step == S_PUT && (rc = header(&p, end, "If-Match", c->cond, c->cond_len)) < 0)
        return rc;
    /* a write that (re)starts the lease's validity: it counts from here
     * (backend_int.h), whatever steps came before in this request */
    enum lr__req_kind k = kind_of(l);
    if (c->step != S_GET && (k == LR_OP_ACQUIRE || k == LR_OP_RENEW || k == LR_OP_CHANGE))
        lr__lease_sent(l, lr__manager_loop(b->m)->now_ns);
    lr__manager_stats(b->m)->requests++; /* a retry is sent again: counted again */
    return (int)(p - w);
}

/* ----------------------------------------------------------------- slots */

static void dispatch(struct lr__backend *b);
static void complete(struct lr_lease *l, int status, uint64_t fence);

static void sync_stats(struct lr__backend *b)
{
    lr__manager_stats(b->m)->reconnects += b->http.reconnects - b->reconnects_seen;
    b->reconnects_seen = b->http.reconnects;
}

static void free_slot(struct slot *sl)
{
    lr_timer_stop(&sl->retry);
    sl->l = NULL;
    lr__loop_defer(lr__manager_loop(sl->b->m), &sl->b->dispatch_task);
}

static void finish(struct slot *sl, int status, uint64_t fence)
{
    struct lr_lease *l = sl->l;
    free_slot(sl);
    complete(l, status, fence);
}

/* Send @sl's current step; @first: ahead of what waits. */
static void start_step(struct slot *sl, bool first)
{
    struct lr__backend *b = sl->b;
    struct lr_lease *l = sl->l;
    sl->status = 0;
    sl->retry_after_ms = 0;
    sl->code[0] = '\0';
    sl->etag_len = 0;
    if (sl->step == S_GET) {
        sl->owner_len = sl->who_len = 0;
        sl->doc_broken = false;
        sl->fence = sl->doc_ttl_ms = 0;
    }
    sl->req.has_body = sl->step != S_GET;
    sl->req.body = NULL;
    sl->req.body_len = 0;
    if (sl->req.has_body) {
        char id[LR_COSMOS_ID_MAX + 1];
        int n = lr__cosmos_id_of(l->name, l->name_len, id, sizeof(id));
        int rc = n < 0 ? n : build_doc(sl, id, (size_t)n);
        if (rc < 0) {
            finish(sl, rc, 0);
            return;
        }
    }
    sl->req.first = first;
    sl->req.deadline_ms =
        lr_loop_now_ms(lr__manager_loop(b->m)) + lr__manager_opts(b->m)->request_timeout_ms;
    if (lr__httpc_submit(&b->http, &sl->req) < 0)
        finish(sl, LR_EUNAVAIL, 0);
}

static void retry_fire(struct lr_timer *t)
{
    struct slot *sl = t->data;
    if (sl->l)
        start_step(sl, true);
}

static void dispatch_run(struct lr__task *t)
{
    dispatch(lr_container_of(t, struct lr__backend, dispatch_task));
}

static void throttle_fire(struct lr_timer *t)
{
    dispatch(t->data);
}

/* The step a request starts with. */
static enum step first_step(struct lr__backend *b, struct lr_lease *l, struct slot *sl)
{
    switch (kind_of(l)) {
    case LR_OP_ACQUIRE:
        return S_CREATE;
    case LR_OP_RENEW:
    case LR_OP_CHANGE:
    case LR_OP_RELEASE: {
        struct held *h = held_find(b, l);
        if (h && !memcmp(h->token, l->token, 16)) {
            memcpy(sl->cond, h->etag, h->etag_len);
            sl->cond_len = h->etag_len;
            return S_PUT;
        }
        return S_GET; /* not in the table: read whether it is still ours */
    }
    default:
        return S_GET; /* break, inspect */
    }
}

static void dispatch(struct lr__backend *b)
{
    if (b->closing)
        return;
    if (b->throttled_until && !lr_list_is_empty(&b->waiting)) {
        if (mono_ms() < b->throttled_until) {
            lr_timer_start(&b->throttle, b->throttled_until);
            return;
        }
        b->throttled_until = 0;
    }
    for (unsigned i = 0; i < b->nslots && !lr_list_is_empty(&b->waiting); i++) {
        struct slot *sl = &b->slots[i];
        if (sl->l)
            continue;
        sl->l = lease_of_link(lr_list_pop(&b->waiting));
        sl->tries = sl->rereads = sl->creates = 0;
        sl->cond_len = 0;
        sl->step = first_step(b, sl->l, sl);
        start_step(sl, false);
    }
}

/* --------------------------------------------------------------- answers */

static void complete(struct lr_lease *l, int status, uint64_t fence)
{
    struct lr__result r = {.status = status, .fence = fence, .holder_ttl_ms = -1};
    lr__lease_complete(l, &r);
}

/* The last moment a retry of @l's request may be sent (loop ms). */
static uint64_t retry_limit(struct lr__backend *b, const struct lr_lease *l)
{
    uint64_t now = lr_loop_now_ms(lr__manager_loop(b->m));
    switch (kind_of(l)) {
    case LR_OP_ACQUIRE:
        return l->acquire_ns / 1000000u + l->acquire_wait_ms;
    case LR_OP_RENEW:
    case LR_OP_CHANGE:
    case LR_OP_RELEASE:
        if (l->valid_until)
            return l->valid_until;
        return now;
    default:
        return now + lr__manager_opts(b->m)->request_timeout_ms;
    }
}

/* 429 / 449 / 503: send the step again after @wait_ms when that is still of
 * use, else fail it as unavailable. */
static void retry_later(struct slot *c, uint64_t wait_ms)
{
    struct lr__backend *b = c->b;
    /* Counted from a fresh clock, rounded up: the loop's cached one is floored
     * to the ms and as old as this pass, so from it the retry could go out up
     * to a pass sooner than the server asked (x-ms-retry-after-ms). */
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    uint64_t now_ceil = (uint64_t)ts.tv_sec * 1000u + ((uint64_t)ts.tv_nsec + 999999u) / 1000000u;
    uint64_t when = now_ceil + wait_ms;
    if (c->status == 429 && when > b->throttled_until)
        b->throttled_until = when;
    if (++c->tries > MAX_RETRIES + (c->status == 429 ? 2 : 0) || when >= retry_limit(b, c->l)) {
        finish(c, LR_EUNAVAIL, 0);
        return;
    }
    lr_timer_start(&c->retry, when);
}

/* Parse a document answer (GET 200) into @c. On failure *@why says what was
 * wrong with it, for the store error text. */
static int parse_doc(struct slot *c, const char **why)
{
    struct lr_json j;
    struct lr_json_tok root, t;
    lr_json_init(&j, c->resp, c->req.resp_len, JSON_TOKENS);
    int rc = lr_json_next(&j, &root);
    *why = "the answer is not a JSON object";
    if (rc != 1 || root.type != LR_JSON_OBJECT)
        return -EPROTO;
    bool got_owner = false, got_fence = false;
    char etag[ETAG_MAX];
    size_t etag_len = 0;
    struct lr__inspect_out *io = kind_of(c->l) == LR_OP_INSPECT ? lr__inspect_out(c->l) : NULL;
    while ((rc = lr_json_item(&j, &root, &t)) == 1) {
        if (lr_json_key_is(&t, "owner") && t.type == LR_JSON_STRING) {
            *why = "the document's owner is not a token";
            if (t.n != 0 && t.n != 32)
                return -EPROTO;
            memcpy(c->owner, t.s, t.n);
            c->owner_len = (uint8_t)t.n;
            got_owner = true;
        } else if (lr_json_key_is(&t, "fence")) {
            *why = "the document's fence is not a number";
            if (lr_json_u64(&t, &c->fence) < 0)
                return -EPROTO;
            got_fence = true;
        } else if (lr_json_key_is(&t, "ttlMs")) {
            *why = "the document's ttlMs is not a number";
            if (lr_json_u64(&t, &c->doc_ttl_ms) < 0)
                return -EPROTO;
        } else if (lr_json_key_is(&t, "broken")) {
            c->doc_broken = t.type == LR_JSON_TRUE;
        } else if (lr_json_key_is(&t, "identity") && t.type == LR_JSON_STRING) {
            int n = lr_json_unescape(t.s, t.n, c->who, sizeof(c->who));
            c->who_len = (uint8_t)(n > 0 ? n : 0);
        } else if (lr_json_key_is(&t, "_etag") && t.type == LR_JSON_STRING && t.n < ETAG_MAX &&
                   !t.escaped) {
            memcpy(etag, t.s, t.n);
            etag_len = t.n;
        } else if (io && lr_json_key_is(&t, "meta") && t.type == LR_JSON_OBJECT) {
            struct lr_json_tok mv;
            while ((rc = lr_json_item(&j, &t, &mv)) == 1) {
                char k[256], v[LR_META_MAX];
                int kl = lr_json_unescape(mv.key, mv.keylen, k, sizeof(k));
                int vl =
                    mv.type == LR_JSON_STRING ? lr_json_unescape(mv.s, mv.n, v, sizeof(v)) : -1;
                if (kl > 0 && vl >= 0)
                    lr__inspect_add_meta(io, k, (size_t)kl, v, (size_t)vl);
            }
            if (rc < 0)
                break;
        }
    }
    *why = "the answer is not valid JSON";
    if (rc < 0)
        return rc;
    *why = "the document is not a lease document (no owner or no fence)";
    if (!got_owner || !got_fence)
        return -EPROTO;
    if (!c->etag_len && etag_len) { /* no etag header: the body's */
        memcpy(c->etag, etag, etag_len);
        c->etag_len = (uint8_t)etag_len;
    }
    *why = "the document came without an etag (header or _etag)";
    return c->etag_len ? 0 : -EPROTO;
}

/* An error answer's "code" (else its "message", cut), for messages:
 * printable ASCII only. */
static void parse_code(struct slot *c)
{
    struct lr_json j;
    struct lr_json_tok root, t;
    lr_json_init(&j, c->resp, c->req.resp_len, 64);
    if (lr_json_next(&j, &root) != 1 || root.type != LR_JSON_OBJECT)
        return;
    while (lr_json_item(&j, &root, &t) == 1) {
        bool code = lr_json_key_is(&t, "code");
        if ((!code && !lr_json_key_is(&t, "message")) || t.type != LR_JSON_STRING ||
            (!code && c->code[0]))
            continue;
        size_t n = t.n < sizeof(c->code) - 1 ? t.n : sizeof(c->code) - 1;
        for (size_t i = 0; i < n; i++)
            c->code[i] = (t.s[i] >= 0x20 && t.s[i] < 0x7f) ? t.s[i] : '?';
        c->code[n] = '\0';
        if (code)
            return;
    }
}

static void bad_reply(struct slot *c, const char *why)
{
    struct lr__backend *b = c->b;
    lr__manager_store_error(b->m, LR_EBADREPLY, "cosmos %s: %s (HTTP %d, %s)", b->host_header, why,
                            c->status,
                            c->step == S_CREATE ? "create"
                            : c->step == S_GET  ? "read"
                                                : "replace");
    finish(c, LR_EBADREPLY, 0);
}

/* A held document we may not take: conflict, naming the holder. */
static void conflict(struct slot *c)
{
    struct lr__result r = {.status = LR_ECONFLICT, .holder_ttl_ms = -1};
    char who[LR_IDENTITY_MAX > 32 ? LR_IDENTITY_MAX : 32];
    if (c->who_len) {
        memcpy(who, c->who, c->who_len);
        r.holder = who;
        r.holder_len = c->who_len;
    } else if (c->owner_len == 32) {
        memcpy(who, c->owner, 32);
        r.holder = who;
        r.holder_len = 32;
    }
    struct lr_lease *l = c->l;
    free_slot(c);
    lr__lease_complete(l, &r);
}

/* After a GET: write the document, If-Match the ETag the GET showed. */
static void to_put(struct slot *c)
{
    memcpy(c->cond, c->etag, c->etag_len);
    c->cond_len = c->etag_len;
    c->step = S_PUT;
    start_step(c, true);
}

/* GET 200 for an acquire: take it, or conflict. */
static void acquire_read(struct slot *c)
{
    struct lr__backend *b = c->b;
    struct lr_lease *l = c->l;
    bool free_doc = !c->owner_len && !c->doc_broken;
    if (free_doc || owner_is(c, l->token) ||
        obs_expired(b, l->name, l->name_len, c->etag, c->etag_len,
                    c->doc_ttl_ms ? c->doc_ttl_ms : l->ttl_ms, mono_ms())) {
        to_put(c); /* If-Match the ETag just read */
        return;
    }
    conflict(c);
}

/* GET 200 for a renew / change / release: still ours? */
static void own_read(struct slot *c)
{
    struct lr_lease *l = c->l;
    bool ours = owner_is(c, l->token) || (kind_of(l) == LR_OP_CHANGE && owner_is(c, l->next_token));
    if (!ours || c->doc_broken) {
        held_drop(c->b, l);
        finish(c, LR_ELOST, 0);
        return;
    }
    to_put(c);
}

static void inspect_read(struct slot *c)
{
    struct lr__inspect_out *o = lr__inspect_out(c->l);
    if (o && c->owner_len == 32 && !c->doc_broken) {
        o->held = 1;
        o->fence = c->fence;
        memcpy(o->identity, c->who, c->who_len);
        o->identity[c->who_len] = '\0';
        memcpy(o->token, c->owner, 32);
        o->token[32] = '\0';
    } else if (o) {
        o->meta_len = 0; /* free: a past holder's metadata is not reported */
    }
    finish(c, 0, 0);
}

/* A write (create / PUT) succeeded: the ETag is the new state's. */
static void written(struct slot *c)
{
    struct lr__backend *b = c->b;
    struct lr_lease *l = c->l;
    enum lr__req_kind k = kind_of(l);
    if (!c->etag_len && k != LR_OP_RELEASE && k != LR_OP_BREAK) {
        bad_reply(c, "no etag on a successful write");
        return;
    }
    switch (k) {
    case LR_OP_ACQUIRE: {
        uint64_t fence = c->step == S_CREATE ? 1 : c->fence + 1;
        held_put(b, l, l->token, c->etag, c->etag_len);
        obs_forget(b, l->name, l->name_len);
        finish(c, 0, fence);
        return;
    }
    case LR_OP_RENEW:
        held_put(b, l, l->token, c->etag, c->etag_len);
        finish(c, 0, 0);
        return;
    case LR_OP_CHANGE:
        held_put(b, l, l->next_token, c->etag, c->etag_len);
        finish(c, 0, 0);
        return;
    case LR_OP_RELEASE:
        held_drop(b, l);
        finish(c, 0, 0);
        return;
    default: /* break */
        finish(c, 0, 0);
        return;
    }
}

/* A whole answer for @c's step arrived. */
static void answered(struct slot *c)
{
    struct lr__backend *b = c->b;
    struct lr_lease *l = c->l;
    int st = c->status;
    enum lr__req_kind k = kind_of(l);
    if (st >= 400 && c->req.resp_len)
        parse_code(c);
    if (st == 429) {
        /* throttled: the server says when (x-ms-retry-after-ms) */
        retry_later(c, c->retry_after_ms ? c->retry_after_ms : 100);
        return;
    }
    if (st == 449 || st == 503) { /* retry with: transient, not applied */
        retry_later(c, lr__manager_backoff(b->m, c->tries));
        return;
    }
    if (st == 401 || st == 403) {
        lr__manager_store_error(b->m, LR_EAUTH, "cosmos %s: auth refused: %d %s", b->host_header,
                                st, c->code);
        finish(c, LR_EAUTH, 0); /* definite; a renewal stays held until validity ends */
        return;
    }
    if (st >= 500) {
        lr__manager_store_error(b->m, LR_EUNAVAIL, "cosmos %s: server error %d %s", b->host_header,
                                st, c->code);
        finish(c, LR_EUNAVAIL, 0);
        return;
    }
    switch (c->step) {
    case S_CREATE:
        if (st == 201 || st == 200) {
            written(c);
            return;
        }
        if (st == 409) { /* the document exists: read it */
            c->step = S_GET;
            start_step(c, true);
            return;
        }
        if (st == 404) { /* a create's 404: the database or the collection is missing */
            lr__manager_store_error(b->m, LR_ESTORE, "cosmos %s: %s not found (404 %s)",
                                    b->host_header, b->coll_link, c->code);
            finish(c, LR_ESTORE, 0);
            return;
        }
        break;
    case S_GET:
        if (st == 200) {
            const char *why;
            int rc = parse_doc(c, &why);
            if (rc < 0) {
                bad_reply(c, why);
                return;
            }
            switch (k) {
            case LR_OP_ACQUIRE:
                acquire_read(c);
                return;
            case LR_OP_INSPECT:
                inspect_read(c);
                return;
            case LR_OP_BREAK:
                if (!c->owner_len) { /* free or broken already: nothing to end */
                    finish(c, 0, 0);
                    return;
                }
                to_put(c);
                return;
            default:
                own_read(c);
                return;
            }
        }
        if (st == 404) {
            if (k == LR_OP_ACQUIRE && ++c->creates < MAX_CREATES) { /* gone meanwhile */
                c->step = S_CREATE;
                start_step(c, true);
                return;
            }
            if (k == LR_OP_INSPECT || k == LR_OP_BREAK) { /* nothing held */
                finish(c, 0, 0);
                return;
            }
            if (k == LR_OP_ACQUIRE) {
                finish(c, LR_ECONFLICT, 0);
                return;
            }
            held_drop(b, l);
            finish(c, LR_ELOST, 0);
            return;
        }
        break;
    case S_PUT:
        if (st == 200) {
            written(c);
            return;
        }
        if (st == 412 || st == 404) {
            if (k == LR_OP_ACQUIRE) { /* someone wrote first */
                finish(c, LR_ECONFLICT, 0);
                return;
            }
            if (k == LR_OP_BREAK && st == 412 && ++c->rereads <= MAX_REREADS) {
                c->step = S_GET;
                start_step(c, true);
                return;
            }
            if (k == LR_OP_BREAK) {
                finish(c, st == 404 ? 0 : LR_ECONFLICT, 0);
                return;
            }
            /* renew / change / release: an earlier write of ours (its answer
             * lost) may have moved the ETag: read whether it is still ours */
            if (st == 412 && ++c->rereads <= MAX_REREADS) {
                c->step = S_GET;
                start_step(c, true);
                return;
            }
            held_drop(b, l);
            finish(c, LR_ELOST, 0);
            return;
        }
        break;
    }
    if (st == 400) {
        lr__manager_store_error(b->m, -EINVAL, "cosmos %s: request refused: 400 %s", b->host_header,
                                c->code);
        finish(c, -EINVAL, 0);
        return;
    }
    bad_reply(c, "unexpected status");
}

static uint64_t parse_u64(const char *s, size_t n)
{
    uint64_t v = 0;
    for (size_t i = 0; i < n && s[i] >= '0' && s[i] <= '9' && v < UINT64_MAX / 10; i++)
        v = v * 10 + (uint64_t)(s[i] - '0');
    return v;
}

static bool name_is(const char *name, size_t nlen, const char *s)
{
    return nlen == strlen(s) && !strncasecmp(name, s, nlen);
}

static void on_header(struct lr__httpc_req *r, const char *name, size_t nlen, const char *value,
                      size_t vlen)
{
    struct slot *c = r->data;
    if (name_is(name, nlen, "etag") && vlen && vlen < ETAG_MAX) {
        memcpy(c->etag, value, vlen);
        c->etag_len = (uint8_t)vlen;
    } else if (name_is(name, nlen, "x-ms-retry-after-ms")) {
        c->retry_after_ms = parse_u64(value, vlen);
    }
}

static void on_done(struct lr__httpc_req *r, int status)
{
    struct slot *c = r->data;
    struct lr__backend *b = c->b;
    sync_stats(b);
    if (b->closing || !c->l)
        return;
    if (status >= 200) {
        c->status = status;
        answered(c);
        return;
    }
    if (status == -EMSGSIZE) {
        lr__manager_store_error(b->m, LR_EBADREPLY, "cosmos %s: answer body over %u bytes",
                                b->host_header, RESP_MAX);
        finish(c, r->sent ? LR_EBADREPLY : LR_EUNAVAIL, 0);
        return;
    }
    if (!r->sent && (status == LR_EUNAVAIL || status == LR_ETLS)) {
        finish(c, status, 0); /* unreachable: nothing was sent */
        struct lr_list *n;
        while (!lr__httpc_up(&b->http, NULL) && (n = lr_list_pop(&b->waiting)))
            complete(lease_of_link(n), status, 0); /* nor will what waits for a slot */
        return;
    }
    if (!r->sent && (status == -ENOBUFS || status == -EINVAL || status == -ENAMETOOLONG)) {
        finish(c, status == -ENOBUFS ? LR_EUNAVAIL : status, 0);
        return;
    }
    finish(c, status == -ECONNREFUSED ? LR_EUNAVAIL : status, 0);
}

static void on_conn_error(struct lr__httpc *h, int err, const char *why)
{
    struct lr__backend *b = h->data;
    lr__manager_store_error(b->m, err, "cosmos %s: %s", b->host_header, why);
}

/* ------------------------------------------------------------- configure */

int lr__cosmos_conn_parse(struct lr__cosmos_conn *c, const char *s, const char **why)
{
    memset(c, 0, sizeof(*c));
    bool have_ep = false, have_key = false;
    *why = "empty connection string";
    while (s && *s) {
        const char *semi = strchr(s, ';');
        size_t n = semi ? (size_t)(semi - s) : strlen(s);
        const char *eq = memchr(s, '=', n);
        if (n && !eq) {
            *why = "a part of the connection string without '='";
            return -EINVAL;
        }
        if (n) {
            size_t kl = (size_t)(eq - s), vl = n - kl - 1;
            const char *v = eq + 1;
            if (kl == 15 && !strncasecmp(s, "AccountEndpoint", 15)) {
                const char *h;
                if (vl > 8 && !strncasecmp(v, "https://", 8)) {
                    c->tls = true;
                    h = v + 8;
                } else if (vl > 7 && !strncasecmp(v, "http://", 7)) {
                    h = v + 7;
                } else {
                    *why = "AccountEndpoint is not an http:// or https:// URL";
                    return -EINVAL;
                }
                const char *hend = v + vl, *slash = memchr(h, '/', (size_t)(hend - h));
                if (slash) {
                    for (const char *x = slash; x < hend; x++)
                        if (*x != '/') {
                            *why = "AccountEndpoint has a path";
                            return -EINVAL;
                        }
                    hend = slash;
                }
                const char *colon = NULL;
                if (h < hend && *h == '[') { /* [v6]:port */
                    const char *rb = memchr(h, ']', (size_t)(hend - h));
                    if (!rb) {
                        *why = "AccountEndpoint has a bad host";
                        return -EINVAL;
                    }
                    colon = rb + 1 < hend && rb[1] == ':' ? rb + 1 : NULL;
                    if (rb + 1 < hend && !colon) {
                        *why = "AccountEndpoint has a bad host";
                        return -EINVAL;
                    }
                } else {
                    colon = memchr(h, ':', (size_t)(hend - h));
                }
                const char *hstop = colon ? colon : hend;
                if (h < hstop && *h == '[') {
                    h++;
                    hstop--;
                }
                if (hstop <= h || (size_t)(hstop - h) >= sizeof(c->host)) {
                    *why = "AccountEndpoint has no host";
                    return -EINVAL;
                }
                memcpy(c->host, h, (size_t)(hstop - h));
                c->host[hstop - h] = '\0';
                c->port = c->tls ? 443 : 80;
                if (colon && lr__uri_port(colon + 1, (size_t)(hend - colon - 1), &c->port) < 0) {
                    *why = "AccountEndpoint has a bad port";
                    return -EINVAL;
                }
                have_ep = true;
            } else if (kl == 10 && !strncasecmp(s, "AccountKey", 10)) {
                if (!vl || vl >= sizeof(c->key)) {
                    *why = "AccountKey is empty or too long";
                    return -EINVAL;
                }
                memcpy(c->key, v, vl);
                c->key[vl] = '\0';
                have_key = true;
            }
        }
        s = semi ? semi + 1 : NULL;
    }
    if (!have_ep || !have_key) {
        *why = have_ep ? "no AccountKey in the connection string"
                       : "no AccountEndpoint in the connection string";
        explicit_bzero(c->key, sizeof(c->key));
        return -EINVAL;
    }
    return 0;
}

static bool name_ok(const char *s)
{
    size_t n = strlen(s);
    if (!n || n > NAME_MAX_DB)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!id_plain((unsigned char)s[i]))
            return false;
    return true;
}

/* Report a configuration error (the manager is not returned: the text goes
 * to the log and the store_error callback). Never names the key. */
static int config_error(struct lr__backend *b, const char *why)
{
    lr__manager_store_error(b->m, -EINVAL, "cosmos: %s", why);
    return -EINVAL;
}

/* cosmos://KEY@HOST[:PORT]/DATABASE/CONTAINER[?tls=yes|no&cacert=F&doc_ttl=S
 * &insecure_skip_verify=yes], or cosmos:///DATABASE/CONTAINER with
 * COSMOS_CONNECTION_STRING. */
static int configure(struct lr__backend *b, const struct lr__uri *u, char *key, size_t keycap,
                     const char **skip)
{
    static const char *const known[] = {"tls", "cacert", "insecure_skip_verify", "doc_ttl"};
    for (unsigned i = 0; i < u->nparams; i++) {
        bool ok = false;
        for (size_t k = 0; k < sizeof(known) / sizeof(known[0]); k++)
            ok |= !strcmp(u->params[i].key, known[k]);
        if (!ok)
            return config_error(b, "unknown URI parameter (known: tls, cacert, "
                                   "insecure_skip_verify, doc_ttl)");
    }
    const char *slash = strchr(u->path, '/');
    if (!slash || strchr(slash + 1, '/'))
        return config_error(b, "the path must be /DATABASE/CONTAINER");
    size_t dl = (size_t)(slash - u->path);
    if (dl > NAME_MAX_DB)
        return config_error(b, "database name too long");
    memcpy(b->db, u->path, dl);
    b->db[dl] = '\0';
    snprintf(b->coll, sizeof(b->coll), "%s", slash + 1);
    if (!name_ok(b->db) || !name_ok(b->coll))
        return config_error(b, "database and container names: 1-255 of A-Z a-z 0-9 - _ .");
    b->coll_link_len =
        (size_t)snprintf(b->coll_link, sizeof(b->coll_link), "dbs/%s/colls/%s", b->db, b->coll);
    const char *ttl = lr__uri_param(u, "doc_ttl");
    b->doc_ttl_s = DEFAULT_DOC_TTL;
    if (ttl) {
        char *e;
        unsigned long v = strtoul(ttl, &e, 10);
        if (!*ttl || *e || v > 2147483647ul || (ttl[0] < '0' || ttl[0] > '9'))
            return config_error(b, "doc_ttl must be 0 or a number of seconds");
        b->doc_ttl_s = (uint32_t)v;
    }
    *skip = lr__uri_param(u, "insecure_skip_verify");
    if (*skip && strcmp(*skip, "yes"))
        return config_error(b, "insecure_skip_verify takes only yes");
    const char *tls = lr__uri_param(u, "tls");
    if (tls && strcmp(tls, "yes") && strcmp(tls, "no"))
        return config_error(b, "tls must be yes or no");
    if (!u->host[0]) {
        if (u->has_password || u->has_user)
            return config_error(b, "a key without a host");
        const char *cs = getenv("COSMOS_CONNECTION_STRING");
        if (!cs)
            return config_error(b, "cosmos:///DATABASE/CONTAINER needs COSMOS_CONNECTION_STRING");
        struct lr__cosmos_conn cc;
        const char *why;
        int rc = lr__cosmos_conn_parse(&cc, cs, &why);
        if (rc < 0)
            return config_error(b, why);
        snprintf(b->host, sizeof(b->host), "%s", cc.host);
        b->port = cc.port;
        b->tls = tls ? !strcmp(tls, "yes") : cc.tls;
        snprintf(key, keycap, "%s", cc.key);
        explicit_bzero(&cc, sizeof(cc));
        return 0;
    }
    if (!u->has_password || !u->password[0])
        return config_error(b, "cosmos://KEY@HOST/... needs the account key");
    /* tls: on unless asked off (the emulator is plain HTTP: tls=no) */
    b->tls = !tls || !strcmp(tls, "yes");
    snprintf(b->host, sizeof(b->host), "%s", u->host);
    b->port = u->has_port ? u->port : b->tls ? 443 : 80;
    if (strlen(u->password) >= keycap)
        return config_error(b, "account key too long");
    snprintf(key, keycap, "%s", u->password);
    return 0;
}

/* ---------------------------------------------------------------- backend */

static void backend_free(struct lr__backend *b)
{
    if (!b)
        return;
    if (b->http_ok)
        lr__httpc_deinit(&b->http);
    lr__task_cancel(&b->dispatch_task);
    lr_timer_stop(&b->throttle);
    if (b->slots)
        for (unsigned i = 0; i < b->nslots; i++)
            lr_timer_stop(&b->slots[i].retry);
    lr__free(b->slots);
    lr__free(b->held);
    lr__free(b->obs);
    lr__tls_ctx_free(b->tls_ctx);
    if (b->keyed)
        lr__cosmos_key_deinit(&b->key);
    lr__free(b);
}

static uint32_t pow2_at_least(uint64_t n)
{
    uint32_t p = 64;
    while (p < n && p < (1u << 30))
        p <<= 1;
    return p;
}

static int cosmos_create(struct lr__backend **out, struct lr_manager *m, const struct lr__uri *u)
{
    const struct lr_manager_opts *o = lr__manager_opts(m);
    struct lr__backend *b = lr__calloc(1, sizeof(*b));
    if (!b)
        return -ENOMEM;
    b->m = m;
    lr_list_init(&b->waiting);
    lr__task_init(&b->dispatch_task, dispatch_run);
    lr_timer_init(lr__manager_loop(m), &b->throttle, throttle_fire);
    b->throttle.data = b;
    lr__az_date_cache_init(&b->date);
    char key[LR_AZ_KEY_B64_MAX + 1] = "";
    const char *skip = NULL;
    int rc = configure(b, u, key, sizeof(key), &skip);
    if (rc == 0) {
        rc = lr__cosmos_key_init(&b->key, key);
        b->keyed = rc == 0;
        if (rc == -EINVAL)
            rc = config_error(b, "the account key is not valid base64");
    }
    explicit_bzero(key, sizeof(key));
    if (rc == 0) {
        bool v6 = strchr(b->host, ':') != NULL;
        int hl = snprintf(b->host_header, sizeof(b->host_header), v6 ? "[%s]:%u" : "%s:%u", b->host,
                          b->port);
        b->host_len = hl > 0 && (size_t)hl < sizeof(b->host_header) ? (size_t)hl : 0;
    }
    if (rc == 0 && b->tls) {
        struct lr__tls_opts to = {.ca_file = lr__uri_param(u, "cacert"),
                                  .insecure_skip_verify = skip != NULL};
        rc = lr__tls_ctx_new(&b->tls_ctx, &to);
    }
    b->nslots = 2 * o->connections;
    uint32_t nheld = pow2_at_least(2ull * o->max_leases);
    uint32_t nobs = pow2_at_least(o->max_leases);
    if (rc == 0) {
        b->slots = lr__calloc(b->nslots, sizeof(*b->slots));
        b->held = lr__calloc(nheld, sizeof(*b->held));
        b->obs = lr__calloc(nobs, sizeof(*b->obs));
        if (!b->slots || !b->held || !b->obs)
            rc = -ENOMEM;
        b->held_mask = nheld - 1;
        b->obs_mask = nobs - 1;
    }
    for (unsigned i = 0; rc == 0 && i < b->nslots; i++) {
        struct slot *sl = &b->slots[i];
        sl->b = b;
        sl->req.data = sl;
        sl->req.encode = encode;
        sl->req.on_header = on_header;
        sl->req.on_done = on_done;
        sl->req.resp = sl->resp;
        sl->req.resp_cap = sizeof(sl->resp);
        /* every step may go again on a fresh connection: a repeated create
         * meets 409 and reads, a repeated PUT meets 412 and reads */
        sl->req.idempotent = true;
        lr_timer_init(lr__manager_loop(m), &sl->retry, retry_fire);
        sl->retry.data = sl;
    }
    if (rc == 0) {
        struct lr__httpc_opts ho = {.host = b->host,
                                    .port = b->port,
                                    .max_conns = o->connections,
                                    .out_cap = OUT_BYTES,
                                    .timeout_ms = o->request_timeout_ms,
                                    .tls_ctx = b->tls_ctx,
                                    .tls_host = b->host,
                                    .on_conn_error = on_conn_error};
        b->http.data = b;
        rc = lr__httpc_init(&b->http, lr__manager_loop(m), &ho);
        b->http_ok = rc == 0;
    }
    if (rc < 0) {
        backend_free(b);
        return rc;
    }
    lr__httpc_warm(&b->http);
    *out = b;
    return 0;
}

static int cosmos_submit(struct lr__backend *b, struct lr_lease *l)
{
    char id[LR_COSMOS_ID_MAX + 1];
    int rc = lr__cosmos_id_of(l->name, l->name_len, id, sizeof(id));
    if (rc < 0)
        return rc;
    switch (kind_of(l)) {
    case LR_OP_ACQUIRE:
    case LR_OP_RENEW:
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

static void cosmos_cancel(struct lr__backend *b, struct lr_lease *l)
{
    lr_list_unlink(&l->req.link);
    for (unsigned i = 0; i < b->nslots; i++)
        if (b->slots[i].l == l) {
            lr__httpc_cancel(&b->slots[i].req);
            free_slot(&b->slots[i]);
        }
}

static void http_closed(struct lr__httpc *h)
{
    struct lr__backend *b = h->data;
    b->close_done(b->m);
}

static void cosmos_close(struct lr__backend *b, void (*done)(struct lr_manager *m))
{
    b->closing = true;
    b->close_done = done;
    lr__task_cancel(&b->dispatch_task);
    lr_timer_stop(&b->throttle);
    for (unsigned i = 0; i < b->nslots; i++)
        lr_timer_stop(&b->slots[i].retry);
    lr_list_init(&b->waiting);
    lr__httpc_close(&b->http, http_closed);
}

static void cosmos_gauges(struct lr__backend *b, struct lr__gauges *g)
{
    unsigned busy = 0;
    g->up += lr__httpc_up(&b->http, &busy);
    g->in_flight += busy;
    g->unreachable = b->http.unreachable;
}

/* Cosmos imposes no TTL range: any the core accepts, from 1 s (a takeover
 * waits a full TTL of unchanged ETag, so very short ones mostly add load). */
const struct lr__backend_ops lr__cosmos_backend = {
    .scheme = "cosmos",
    .min_ttl_ms = 1000,
    .max_ttl_ms = 3600000,
    .create = cosmos_create,
    .submit = cosmos_submit,
    .cancel = cosmos_cancel,
    .close = cosmos_close,
    .free = backend_free,
    .gauges = cosmos_gauges,
};
