/* SPDX-License-Identifier: MIT */
/*
 * azblob.c - the Azure Blob backend: native blob leases over the shared
 * HTTP/1.1 client (src/httpc.c: a pool of keep-alive connections, TLS for
 * https endpoints), Shared Key or SAS authorization.
 *
 * A lease named N is the blob CONTAINER/N. Acquire creates the container
 * (once per backend) and the blob when missing (Put Blob, If-None-Match: *;
 * "already exists" is fine -- leasing a missing blob is a 404), then takes
 * the lease with x-ms-proposed-lease-id = our owner token as a GUID, so a
 * retried acquire is idempotent. The fencing token is a counter in the
 * blob's metadata ("fence"), read with HEAD and written under the new lease
 * with If-Match on the ETag: it grows strictly per name across holders.
 * The same write stores "identity" and "owner" (the holder's token): a
 * conflict HEADs the blob to name the holder (S_WHO), and lr_manager_inspect
 * is a HEAD (S_INSPECT) reading the lease state and the metadata.
 * An acquire that fails after its lease step (or with that step unanswered)
 * releases the lease before it reports the failure, so the blob is not left
 * leased to nobody (see fail_request()).
 * Renew and release are single requests. Lease Blob durations are whole
 * seconds from 15 to 60, so the TTL must be one of those.
 *
 * A lease's request holds one slot (PIPELINE + 1 per connection) from its
 * first step to its last; each next step goes first in the client's line,
 * and a step is sent only once the previous one is answered (Azurite answers
 * pipelined requests in order but executes them concurrently, so dependent
 * requests must never be pipelined). Requests of different leases are
 * independent: the client pipelines up to PIPELINE of them on a connection.
 * Renewals waiting for a slot go before acquisitions and the rest (a renewal
 * has its lease's validity running), and only renewals fill the pipelines:
 * the rest hold two slots per connection at most, as before pipelining, so a
 * burst of acquisitions does not queue hundreds of requests at the store
 * ahead of the renewals sent after them. The client reopens idle connections
 * the server closed, and sends a request that met such a closed connection
 * before any answer, or was pipelined behind one that did, once more on a
 * fresh one (every request here is idempotent). A request unanswered within
 * the request timeout closes its connection: ambiguous.
 * Layer: HTTP + Shared Key + the backend interface; no other backend.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "alloc_int.h"
#include "azsign_int.h"
#include "backend_int.h"
#include "fmt.h"
#include "http.h"
#include "httpc_int.h"
#include "lease_int.h"
#include "tls_int.h"
#include <leasering/error.h>

#define OUT_BYTES 16384u
#define MS_VERSION "2021-12-02"
#define PATH_MAX_AZ 1024
#define MAX_META_RETRIES 5
/* Requests pipelined per connection (at most; manager inflight_max caps it).
 * Requests in flight together always belong to different leases (one slot
 * per lease), so they are independent: Azurite, which executes pipelined
 * requests concurrently, may run them in any order. The renewals of one
 * coalescing tick then leave in one send on one connection instead of one
 * send per connection. */
#define PIPELINE 32u
/* Renewal grid points a second (a 100 ms grid, the core's is 20 ms): the
 * renewals of one point leave pipelined in one send, and with TTLs of 15 s
 * and more a renewal delayed by up to 100 ms loses nothing (the core still
 * bounds the step by the room a renewal has for retries). */
#define GRID_POINTS_PER_SEC 10u

/* Steps of a request (lr_lease.req.batch). */
enum step {
    S_CONTAINER = 1,
    S_BLOB,
    S_ACQUIRE,
    S_HEAD,
    S_SETMETA,
    S_RENEW,
    S_RELEASE,
    S_BREAK,
    S_CHANGE,
    S_UNDO,    /* release the lease a failed acquire got; its failure is in req.seq */
    S_WHO,     /* after a conflict: HEAD the blob for the holder's identity */
    S_INSPECT, /* lr_manager_inspect: HEAD the blob (lease state, metadata) */
};
#define STEP_MASK 0x7fff

/* One request in flight: a lease's steps run in the same slot, back to back
 * (each next step goes first in the client's line). There are PIPELINE + 1
 * per connection: the pipelines full, and the next request ready when an
 * answer comes. */
struct slot {
    struct lr__backend *b;
    struct lr__httpc_req req;
    struct lr_lease *l; /* NULL: free */
    bool other;         /* l is not renewing: counts against others_max */
    unsigned meta_tries;
    int status;
    uint64_t fence_seen; /* x-ms-meta-fence of the HEAD answer */
    bool leased;         /* x-ms-lease-state of the HEAD answer: leased or breaking */
    uint8_t who_len;     /* x-ms-meta-identity of the HEAD answer, ... */
    uint8_t owner_len;   /* ... and x-ms-meta-owner (the holder's token) */
    char who[LR_IDENTITY_MAX];
    char owner[32];
    uint8_t etag_len;
    uint8_t code_len;
    char etag[80];
    char code[64]; /* x-ms-error-code */
};

struct lr__backend {
    struct lr_manager *m;
    struct lr__httpc http;
    bool http_ok; /* http was initialised */
    struct lr__az_conn conf;
    struct lr__az_key key;
    bool keyed; /* Shared Key (else SAS, or nothing) */
    bool container_ok;
    bool closing;
    unsigned nslots;
    unsigned others;     /* slots held by what is not a renewal ... */
    unsigned others_max; /* ... at most two per connection */
    void (*close_done)(struct lr_manager *m);
    struct lr_list waiting;  /* lr_lease.req.link: requests waiting for a slot */
    struct lr_list renewing; /* lr_lease.req.link: renewals waiting, served first */
    struct lr__task dispatch_task;
    struct lr__az_date_cache date;
    struct lr__tls_ctx *tls_ctx;
    struct slot *slots;
    uint64_t requests_seen; /* http.requests and .reconnects already counted */
    uint64_t reconnects_seen;
    char container[64];
    char host_header[300]; /* "host:port", formatted once */
    size_t host_len;
};

static inline struct lr_lease *lease_of_link(struct lr_list *n)
{
    return lr_container_of(n, struct lr_lease, req.link);
}

static inline enum step step_of(const struct lr_lease *l)
{
    return (enum step)(l->req.batch & STEP_MASK);
}

/* A new step. */
static void set_step(struct lr_lease *l, enum step s)
{
    l->req.batch = (uint16_t)s;
}

/* Lease ids are our 128-bit owner tokens written as GUIDs. */
static void guid_of(const uint8_t token[16], char out[36])
{
    char hex[32];
    lr__hex(token, 16, hex);
    size_t o = 0;
    for (size_t i = 0; i < 32; i++) {
        if (i == 8 || i == 12 || i == 16 || i == 20)
            out[o++] = '-';
        out[o++] = hex[i];
    }
}

static void complete(struct lr_lease *l, int status, uint64_t fence)
{
    struct lr__result r = {.status = status, .fence = fence, .holder_ttl_ms = -1};
    lr__lease_complete(l, &r);
}

/* HEAD-like steps: answers without a body. */
static bool is_head(enum step s)
{
    return s == S_HEAD || s == S_WHO || s == S_INSPECT;
}

/* Complete @l's request as failed with @status, where no request can be sent
 * any more (the store is unreachable): a lease that was giving back what a
 * failed acquire got reports that acquire's failure instead. */
static void complete_failed(struct lr_lease *l, int status)
{
    complete(l, step_of(l) == S_UNDO ? (int)l->req.seq : status, 0);
}

static void start_step(struct slot *sl, bool first);
static void free_slot(struct slot *sl);

/* @sl's request failed with @status. An
 * acquire that got the lease, or may have got it (the lease request went
 * unanswered), and then failed -- metadata write rejected, the ETag kept
 * moving, the connection died -- would leave the blob leased to nobody for
 * up to 60 s: it releases the lease first (S_UNDO, with the lease id it
 * proposed, in the lease's own request slot: no allocation) and reports
 * @status once the release is answered. Reporting only then is deliberate:
 * a retried acquire (same lease id) sent meanwhile on another connection may
 * be executed after the release -- Azure runs requests on different
 * connections concurrently -- and the release would then drop the lease the
 * retry believes it holds. */
static void fail_request(struct slot *sl, int status, bool maybe_leased)
{
    struct lr_lease *l = sl->l;
    enum step s = step_of(l);
    if (s == S_HEAD || s == S_SETMETA || (s == S_ACQUIRE && maybe_leased)) {
        l->req.seq = (uint32_t)status;
        set_step(l, S_UNDO);
        start_step(sl, true);
        return;
    }
    free_slot(sl);
    complete_failed(l, status);
}

/* ------------------------------------------------------------- requests */

static int header(char **p, char *end, const char *name, const char *v, size_t vlen)
{
    int n = lr_http_write_header(*p, (size_t)(end - *p), name, strlen(name), v, vlen);
    if (n < 0)
        return n;
    *p += n;
    return 0;
}

/* Write the head of the request for the current step of @r's lease into
 * @w (the client adds Content-Length and the blank line). */
static int encode(struct lr__httpc_req *r, char *w, size_t avail)
{
    struct slot *c = r->data;
    struct lr__backend *b = c->b;
    struct lr_lease *l = c->l;
    enum step s = step_of(l);
    const char *verb = is_head(s) ? "HEAD" : "PUT";
    char path[PATH_MAX_AZ], resource[PATH_MAX_AZ + 80], target[PATH_MAX_AZ + 1200];
    int rc = s == S_CONTAINER
                 ? lr__az_conn_blob_path(&b->conf, b->container, NULL, path, sizeof(path))
                 : lr__az_conn_blob_path(&b->conf, b->container, l->name, path, sizeof(path));
    if (rc < 0)
        return rc;
    /* The canonicalized resource is for Shared Key signing only; a SAS-only
     * configuration (BlobEndpoint + SharedAccessSignature) has no account
     * name to build it from. */
    resource[0] = '\0';
    if (b->keyed) {
        rc = s == S_CONTAINER ? lr__az_conn_blob_resource(&b->conf, b->container, NULL, resource,
                                                          sizeof(resource))
                              : lr__az_conn_blob_resource(&b->conf, b->container, l->name, resource,
                                                          sizeof(resource));
        if (rc < 0)
            return rc;
    }
    struct lr__az_pair query[2];
    size_t nq = 0;
    const char *qs = "";
    if (s == S_CONTAINER) {
        query[nq++] = (struct lr__az_pair){LR_AZ_LIT("restype"), LR_AZ_LIT("container")};
        qs = "?restype=container";
    } else if (s == S_ACQUIRE || s == S_RENEW || s == S_RELEASE || s == S_BREAK || s == S_CHANGE ||
               s == S_UNDO) {
        query[nq++] = (struct lr__az_pair){LR_AZ_LIT("comp"), LR_AZ_LIT("lease")};
        qs = "?comp=lease";
    } else if (s == S_SETMETA) {
        query[nq++] = (struct lr__az_pair){LR_AZ_LIT("comp"), LR_AZ_LIT("metadata")};
        qs = "?comp=metadata";
    }
    size_t plen = strlen(path), qlen = strlen(qs);
    memcpy(target, path, plen);
    memcpy(target + plen, qs, qlen);
    size_t tlen = plen + qlen;
    if (!b->keyed && b->conf.sas[0]) { /* SAS: the token is the query */
        size_t sl = strlen(b->conf.sas);
        if (tlen + 1 + sl >= sizeof(target))
            return -ENAMETOOLONG;
        target[tlen++] = qlen ? '&' : '?';
        memcpy(target + tlen, b->conf.sas, sl);
        tlen += sl;
    }

    /* x-ms-* headers: sent and signed alike */
    const char *date = lr__az_date_cache_get(&b->date, time(NULL));
    if (!date)
        return -ERANGE;
    char guid[36], next_guid[36], dur[8], fence[24], owner[32];
    struct lr__az_pair h[10 + 2 * 32];
    size_t nh = 0;
    h[nh++] = (struct lr__az_pair){LR_AZ_LIT("x-ms-date"), lr__az_str_of(date)};
    h[nh++] = (struct lr__az_pair){LR_AZ_LIT("x-ms-version"), LR_AZ_LIT(MS_VERSION)};
    guid_of(l->token, guid);
    struct lr__az_str g = {guid, 36};
    if (s == S_BREAK) {
        /* Azure breaks after the shorter of this period and the lease's
         * remaining time. Asking 60 s (the most) makes it the remaining time:
         * a break never cuts the holder's lease short (see lr_lease_break). */
        uint32_t secs = 60;
        size_t dl = (size_t)(lr_put_u64(dur, secs, lr_u64_digits(secs)) - dur);
        h[nh++] = (struct lr__az_pair){LR_AZ_LIT("x-ms-lease-action"), LR_AZ_LIT("break")};
        h[nh++] = (struct lr__az_pair){LR_AZ_LIT("x-ms-lease-break-period"), {dur, dl}};
    } else if (s == S_CHANGE) {
        guid_of(l->next_token, next_guid);
        h[nh++] = (struct lr__az_pair){LR_AZ_LIT("x-ms-lease-action"), LR_AZ_LIT("change")};
        h[nh++] = (struct lr__az_pair){LR_AZ_LIT("x-ms-lease-id"), g};
        h[nh++] = (struct lr__az_pair){LR_AZ_LIT("x-ms-proposed-lease-id"), {next_guid, 36}};
    }
    if (s == S_BLOB)
        h[nh++] = (struct lr__az_pair){LR_AZ_LIT("x-ms-blob-type"), LR_AZ_LIT("BlockBlob")};
    if (s == S_ACQUIRE) {
        uint32_t secs = l->ttl_ms / 1000;
        size_t dl = (size_t)(lr_put_u64(dur, secs, lr_u64_digits(secs)) - dur);
        h[nh++] = (struct lr__az_pair){LR_AZ_LIT("x-ms-lease-action"), LR_AZ_LIT("acquire")};
        h[nh++] = (struct lr__az_pair){LR_AZ_LIT("x-ms-lease-duration"), {dur, dl}};
        h[nh++] = (struct lr__az_pair){LR_AZ_LIT("x-ms-proposed-lease-id"), g};
    } else if (s == S_RENEW || s == S_RELEASE || s == S_UNDO) {
        h[nh++] = (struct lr__az_pair){LR_AZ_LIT("x-ms-lease-action"),
                                       s == S_RENEW ? (struct lr__az_str)LR_AZ_LIT("renew")
                                                    : (struct lr__az_str)LR_AZ_LIT("release")};
        h[nh++] = (struct lr__az_pair){LR_AZ_LIT("x-ms-lease-id"), g};
    } else if (s == S_SETMETA) {
        uint64_t next = c->fence_seen + 1;
        size_t fl = (size_t)(lr_put_u64(fence, next, lr_u64_digits(next)) - fence);
        h[nh++] = (struct lr__az_pair){LR_AZ_LIT("x-ms-lease-id"), g};
        h[nh++] = (struct lr__az_pair){LR_AZ_LIT("x-ms-meta-fence"), {fence, fl}};
        /* who holds it, for a conflict's report and lr_manager_inspect */
        size_t il;
        const char *id = lr__manager_identity(b->m, &il);
        lr__hex(l->token, 16, owner);
        h[nh++] = (struct lr__az_pair){LR_AZ_LIT("x-ms-meta-identity"), {id, il}};
        h[nh++] = (struct lr__az_pair){LR_AZ_LIT("x-ms-meta-owner"), {owner, 32}};
    }
    /* user metadata rides on the metadata write, under the lease */
    char mnames[32][80];
    size_t nm = 0;
    for (size_t i = 0; s == S_SETMETA && i < l->meta_len && nm < 32;) {
        const char *k = l->meta + i, *v = k + strlen(k) + 1;
        size_t kl = strlen(k);
        if (kl + 8 >= sizeof(mnames[0]))
            return -EINVAL;
        memcpy(mnames[nm], "x-ms-meta-", 10);
        memcpy(mnames[nm] + 10, k, kl + 1);
        h[nh++] = (struct lr__az_pair){lr__az_str_of(mnames[nm]), lr__az_str_of(v)};
        nm++;
        i = (size_t)(v - l->meta) + strlen(v) + 1;
    }

    char *p = w, *end = w + avail;
    rc = lr_http_write_request_line(p, avail, verb, strlen(verb), target, tlen);
    if (rc < 0)
        return rc;
    p += rc;
    if ((rc = header(&p, end, "Host", b->host_header, b->host_len)) < 0)
        return rc;
    for (size_t i = 0; i < nh; i++) {
        char name[96];
        if (h[i].name.len >= sizeof(name))
            return -EINVAL;
        memcpy(name, h[i].name.ptr, h[i].name.len);
        name[h[i].name.len] = '\0';
        if ((rc = header(&p, end, name, h[i].value.ptr, h[i].value.len)) < 0)
            return rc;
    }
    struct lr__az_str if_match = {0}, if_none = {0};
    if (s == S_BLOB) {
        if_none = (struct lr__az_str)LR_AZ_LIT("*");
        if ((rc = header(&p, end, "If-None-Match", "*", 1)) < 0)
            return rc;
    }
    if (s == S_SETMETA) {
        if_match = (struct lr__az_str){c->etag, c->etag_len};
        if ((rc = header(&p, end, "If-Match", c->etag, c->etag_len)) < 0)
            return rc;
    }
    if (b->keyed) {
        struct lr__az_request req = {
            .verb = verb,
            .if_match = if_match,
            .if_none_match = if_none,
            .headers = h,
            .nheaders = nh,
            .resource = {resource, strlen(resource)},
            .query = query,
            .nquery = nq,
        };
        char scratch[4096], sig[LR_AZ_SIG_SIZE], auth[LR_AZ_AUTH_SIZE];
        if ((rc = lr__az_sign(&b->key, &req, scratch, sizeof(scratch), sig)) < 0)
            return rc;
        if ((rc = lr__az_auth_format(&b->key, sig, auth, sizeof(auth))) < 0)
            return rc;
        if ((rc = header(&p, end, "Authorization", auth, (size_t)rc)) < 0)
            return rc;
    }
    lr__manager_stats(b->m)->requests++; /* a retry is sent again: counted again */
    return (int)(p - w);
}

/* ---------------------------------------------------------------- slots */

static void dispatch(struct lr__backend *b);

/* Keep the manager's counters in step with the client's. */
static void sync_stats(struct lr__backend *b)
{
    lr__manager_stats(b->m)->reconnects += b->http.reconnects - b->reconnects_seen;
    b->reconnects_seen = b->http.reconnects;
}

/* Send the current step of @sl's lease; @first: ahead of what waits (the
 * next step of a sequence, an undo). */
static void start_step(struct slot *sl, bool first)
{
    struct lr_lease *l = sl->l;
    struct lr__backend *b = sl->b;
    sl->status = 0;
    sl->code_len = sl->etag_len = 0;
    sl->who_len = sl->owner_len = 0;
    sl->leased = false;
    if (is_head(step_of(l)))
        sl->fence_seen = 0; /* a blob never fenced has no counter yet */
    sl->req.head = is_head(step_of(l));
    sl->req.has_body = !sl->req.head; /* Content-Length: 0 */
    sl->req.first = first;
    sl->req.deadline_ms =
        lr_loop_now_ms(lr__manager_loop(b->m)) + lr__manager_opts(b->m)->request_timeout_ms;
    if (lr__httpc_submit(&b->http, &sl->req) < 0) {
        free_slot(sl);
        complete_failed(l, LR_EUNAVAIL);
    }
}

static void free_slot(struct slot *sl)
{
    if (sl->l && sl->other)
        sl->b->others--;
    sl->other = false;
    sl->l = NULL;
    lr__loop_defer(lr__manager_loop(sl->b->m), &sl->b->dispatch_task);
}

static void dispatch_run(struct lr__task *t)
{
    dispatch(lr_container_of(t, struct lr__backend, dispatch_task));
}

static void dispatch(struct lr__backend *b)
{
    if (b->closing)
        return;
    for (unsigned i = 0; i < b->nslots; i++) {
        struct slot *sl = &b->slots[i];
        if (sl->l)
            continue;
        /* Renewals may fill every pipeline; the rest (acquisitions: four
         * steps each, bursts of thousands) keep two per connection, so that
         * the store's own queue stays short and a renewal sent behind them
         * is not held up past its request timeout by a burst. */
        struct lr_list *n = lr_list_pop(&b->renewing);
        sl->other = !n && b->others < b->others_max && (n = lr_list_pop(&b->waiting));
        if (!n)
            break;
        b->others += sl->other;
        sl->l = lease_of_link(n);
        sl->meta_tries = 0;
        start_step(sl, false);
    }
}

/* --------------------------------------------------------------- answers */

static bool code_is(const struct slot *c, const char *s)
{
    return c->code_len == strlen(s) && !memcmp(c->code, s, c->code_len);
}

/* A whole answer for @c->cur arrived: map it, and go on or complete. */
static void answered(struct slot *c)
{
    struct lr_lease *l = c->l;
    struct lr__backend *b = c->b;
    int st = c->status;
    enum step s = step_of(l);
    int fail = 0;
    if (s == S_UNDO) { /* whatever the answer: the lease is given back or was not ours */
        free_slot(c);
        complete(l, (int)l->req.seq, 0);
        return;
    }
    if (s == S_WHO) {
        /* The conflict stands whatever this says: the holder's identity,
         * else its token, from the metadata its acquisition wrote (a holder
         * still between its lease and its metadata write shows the previous
         * holder's); nothing when the HEAD failed. */
        struct lr__result r = {.status = LR_ECONFLICT, .holder_ttl_ms = -1};
        if (st == 200 && c->who_len) {
            r.holder = c->who;
            r.holder_len = c->who_len;
        } else if (st == 200 && c->owner_len == 32) {
            r.holder = c->owner;
            r.holder_len = 32;
        }
        char who[LR_IDENTITY_MAX];
        if (r.holder) { /* the connection's buffer is reused once it is free */
            memcpy(who, r.holder, r.holder_len);
            r.holder = who;
        }
        free_slot(c);
        lr__lease_complete(l, &r);
        return;
    }
    if (s == S_INSPECT && (st == 200 || st == 404)) {
        struct lr__inspect_out *o = lr__inspect_out(l);
        if (o && st == 200 && c->leased) {
            o->held = 1;
            o->fence = c->fence_seen;
            memcpy(o->identity, c->who, c->who_len);
            o->identity[c->who_len] = '\0';
            memcpy(o->token, c->owner, c->owner_len);
            o->token[c->owner_len] = '\0';
        } else if (o) {
            o->meta_len = 0; /* free: metadata of a past holder is not reported */
        }
        free_slot(c);
        complete(l, 0, 0); /* 404: no blob (or container), nothing held */
        return;
    }
    if (st == 403) {
        fail = LR_EAUTH;
        lr__manager_store_error(b->m, LR_EAUTH, "azblob %s: auth refused: 403 %.*s", b->host_header,
                                (int)c->code_len, c->code);
    } else if (st == 400)
        fail = -EINVAL; /* a request the service calls malformed: retrying cannot help */
    else if (st >= 500)
        fail = LR_EUNAVAIL;
    if (!fail) {
        switch (s) {
        case S_CONTAINER:
            if (st == 201 || st == 409) {
                b->container_ok = true;
                set_step(l, S_BLOB);
                start_step(c, true);
                return;
            }
            break;
        case S_BLOB:
            if (st == 201 || st == 409 || st == 412) { /* created, or there already */
                set_step(l, S_ACQUIRE);
                start_step(c, true);
                return;
            }
            break;
        case S_ACQUIRE:
            if (st == 201 || st == 200) {
                set_step(l, S_HEAD);
                start_step(c, true);
                return;
            }
            if (st == 409) { /* LeaseAlreadyPresent, or breaking: ask who */
                set_step(l, S_WHO);
                start_step(c, true);
                return;
            }
            if (st == 404 && (code_is(c, "BlobNotFound") || code_is(c, "ContainerNotFound"))) {
                b->container_ok = !code_is(c, "ContainerNotFound");
                set_step(l, b->container_ok ? S_BLOB : S_CONTAINER);
                start_step(c, true);
                return;
            }
            break;
        case S_HEAD:
            if (st == 200) {
                set_step(l, S_SETMETA);
                start_step(c, true);
                return;
            }
            break;
        case S_SETMETA:
            if (st == 200) {
                uint64_t f = c->fence_seen + 1;
                free_slot(c);
                complete(l, 0, f);
                return;
            }
            if (st == 412 && ++c->meta_tries < MAX_META_RETRIES) { /* the ETag moved */
                set_step(l, S_HEAD);
                start_step(c, true);
                return;
            }
            if (st == 412 && (code_is(c, "LeaseIdMismatchWithBlobOperation") ||
                              code_is(c, "LeaseNotPresentWithBlobOperation"))) {
                fail = LR_ECONFLICT; /* our lease went meanwhile */
                break;
            }
            break;
        case S_BREAK:
            /* 202: breaking; 404/409: no blob or no lease, nothing to break */
            if (st == 202 || st == 404 ||
                (st == 409 && code_is(c, "LeaseNotPresentWithLeaseOperation"))) {
                free_slot(c);
                complete(l, 0, 0);
                return;
            }
            break;
        case S_RENEW:
        case S_RELEASE:
        case S_CHANGE:
            if (st == 200) {
                free_slot(c);
                complete(l, 0, 0);
                return;
            }
            if (st == 409 || st == 404) {
                fail = LR_ELOST; /* LeaseIdMismatch / LeaseNotPresent / LeaseIsBroken */
                break;
            }
            break;
        case S_UNDO: /* answered above */
        case S_WHO:
        case S_INSPECT:
            break;
        }
    }
    fail_request(c, fail ? fail : LR_EBADREPLY, false);
}

static uint64_t parse_u64(const char *s, size_t n)
{
    uint64_t v = 0;
    for (size_t i = 0; i < n && s[i] >= '0' && s[i] <= '9' && v < UINT64_MAX / 10; i++)
        v = v * 10 + (uint64_t)(s[i] - '0');
    return v;
}

static bool name_is(const struct lr_http_token *t, const char *s)
{
    return t->len == strlen(s) && !strncasecmp(t->str, s, t->len);
}

static void on_header(struct lr__httpc_req *r, const char *name, size_t nlen, const char *value,
                      size_t vlen)
{
    struct slot *c = r->data;
    struct lr_http_token tk = {.str = name, .len = nlen};
    const struct lr_http_token *t = &tk;
    if (name_is(t, "x-ms-error-code") && vlen < sizeof(c->code)) {
        memcpy(c->code, value, vlen);
        c->code_len = (uint8_t)vlen;
    } else if (name_is(t, "etag") && vlen < sizeof(c->etag)) {
        memcpy(c->etag, value, vlen);
        c->etag_len = (uint8_t)vlen;
    } else if (name_is(t, "x-ms-meta-fence")) {
        c->fence_seen = parse_u64(value, vlen);
    } else if (name_is(t, "x-ms-meta-identity")) {
        c->who_len = (uint8_t)(vlen < sizeof(c->who) ? vlen : sizeof(c->who));
        memcpy(c->who, value, c->who_len);
    } else if (name_is(t, "x-ms-meta-owner")) {
        c->owner_len = (uint8_t)(vlen == 32 ? 32 : 0);
        memcpy(c->owner, value, c->owner_len);
    } else if (name_is(t, "x-ms-lease-state")) {
        c->leased = (vlen == 6 && !strncasecmp(value, "leased", 6)) ||
                    (vlen == 8 && !strncasecmp(value, "breaking", 8));
    } else if (step_of(c->l) == S_INSPECT && nlen > 10 && !strncasecmp(name, "x-ms-meta-", 10)) {
        /* the lease's own metadata (fence, identity, owner: above) */
        struct lr__inspect_out *o = lr__inspect_out(c->l);
        if (o)
            lr__inspect_add_meta(o, name + 10, nlen - 10, value, vlen);
    }
}

/* The client is done with @r: an answer (status >= 200) or a failure. */
static void on_done(struct lr__httpc_req *r, int status)
{
    struct slot *c = r->data;
    struct lr__backend *b = c->b;
    sync_stats(b);
    if (b->closing || !c->l)
        return; /* the core no longer waits for it */
    if (status >= 200) {
        c->status = status;
        answered(c);
        return;
    }
    if (!r->sent && (status == LR_EUNAVAIL || status == LR_ETLS)) {
        struct lr_lease *l = c->l;
        free_slot(c); /* the store is unreachable: nothing was sent */
        complete_failed(l, status);
        struct lr_list *n;
        while (!lr__httpc_up(&b->http, NULL) &&
               ((n = lr_list_pop(&b->renewing)) || (n = lr_list_pop(&b->waiting))))
            complete_failed(lease_of_link(n), status); /* nor will what waits for a slot */
        return;
    }
    /* -ENOBUFS / -EINVAL: the request could not be written */
    if (!r->sent && (status == -ENOBUFS || status == -EINVAL || status == -ENAMETOOLONG)) {
        fail_request(c, status == -ENOBUFS ? LR_EUNAVAIL : -EINVAL, false);
        return;
    }
    fail_request(c, status == -ECONNREFUSED ? LR_EUNAVAIL : status, r->sent);
}

static void on_conn_error(struct lr__httpc *h, int err, const char *why)
{
    struct lr__backend *b = h->data;
    lr__manager_store_error(b->m, err, "azblob %s: %s", b->host_header, why);
}

/* ------------------------------------------------------------- backend */

static void backend_free(struct lr__backend *b)
{
    if (!b)
        return;
    if (b->http_ok)
        lr__httpc_deinit(&b->http);
    lr__task_cancel(&b->dispatch_task);
    lr__free(b->slots);
    lr__tls_ctx_free(b->tls_ctx);
    if (b->keyed)
        lr__az_key_deinit(&b->key);
    lr__az_conn_deinit(&b->conf);
    lr__free(b);
}

static bool is_local(const char *host)
{
    unsigned char a[16];
    return !strcmp(host, "localhost") || inet_pton(AF_INET, host, a) == 1 ||
           inet_pton(AF_INET6, host, a) == 1;
}

/* azblob://[ACCOUNT:KEY@]HOST[:PORT]/CONTAINER[?tls=no][&cacert=F]...
 * or azblob:///CONTAINER with AZURE_STORAGE_CONNECTION_STRING. */
static int configure(struct lr__backend *b, const struct lr__uri *u, const char **skip)
{
    static const char *const known[] = {"tls", "cacert", "insecure_skip_verify", "path_style"};
    for (unsigned i = 0; i < u->nparams; i++) {
        bool ok = false;
        for (size_t k = 0; k < sizeof(known) / sizeof(known[0]); k++)
            ok |= !strcmp(u->params[i].key, known[k]);
        if (!ok)
            return -EINVAL;
    }
    /* exactly one path segment: the container, named as Azure requires
     * (3-63 of a-z 0-9 '-', starting and ending with a letter or digit, no
     * "--"), so a bad name is an error here, not a 400 on every request */
    size_t cl = strlen(u->path);
    if (cl < 3 || cl > 63 || u->path[0] == '-' || u->path[cl - 1] == '-' || strstr(u->path, "--"))
        return -EINVAL;
    for (size_t i = 0; i < cl; i++) {
        char ch = u->path[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '-'))
            return -EINVAL;
    }
    strcpy(b->container, u->path);
    *skip = lr__uri_param(u, "insecure_skip_verify");
    if (*skip && strcmp(*skip, "yes"))
        return -EINVAL;
    if (!u->host[0]) {
        const char *cs = getenv("AZURE_STORAGE_CONNECTION_STRING");
        if (!cs)
            return -EINVAL;
        return lr__az_conn_parse(&b->conf, cs);
    }
    if (!u->has_user || !u->has_password)
        return -EINVAL; /* ACCOUNT:KEY@ (percent-encoded) */
    const char *tls = lr__uri_param(u, "tls"), *ps = lr__uri_param(u, "path_style");
    if ((tls && strcmp(tls, "yes") && strcmp(tls, "no")) ||
        (ps && strcmp(ps, "yes") && strcmp(ps, "no")))
        return -EINVAL;
    bool https = !tls || !strcmp(tls, "yes");
    bool path_style = ps ? !strcmp(ps, "yes") : is_local(u->host);
    struct lr__az_conn *c = &b->conf;
    if (strlen(u->user) >= sizeof(c->account) || strlen(u->password) >= sizeof(c->key) ||
        strlen(u->host) >= sizeof(c->host))
        return -EINVAL;
    strcpy(c->account, u->user);
    strcpy(c->key, u->password);
    strcpy(c->scheme, https ? "https" : "http");
    strcpy(c->host, u->host);
    c->port = u->has_port ? u->port : https ? 443 : 80;
    c->tls = https;
    if (path_style)
        snprintf(c->base_path, sizeof(c->base_path), "/%s", c->account);
    return 0;
}

static int azblob_create(struct lr__backend **out, struct lr_manager *m, const struct lr__uri *u)
{
    const struct lr_manager_opts *o = lr__manager_opts(m);
    if (o->ttl_ms % 1000)
        return -ERANGE; /* Lease Blob durations are whole seconds */
    struct lr__backend *b = lr__calloc(1, sizeof(*b));
    if (!b)
        return -ENOMEM;
    b->m = m;
    lr_list_init(&b->waiting);
    lr_list_init(&b->renewing);
    lr__task_init(&b->dispatch_task, dispatch_run);
    lr__az_date_cache_init(&b->date);
    const char *skip = NULL;
    int rc = configure(b, u, &skip);
    if (rc == 0 && b->conf.key[0]) {
        rc = lr__az_key_init(&b->key, b->conf.account, b->conf.key);
        b->keyed = rc == 0;
    }
    if (rc == 0) {
        int hl =
            snprintf(b->host_header, sizeof(b->host_header), "%s:%u", b->conf.host, b->conf.port);
        b->host_len = hl > 0 && (size_t)hl < sizeof(b->host_header) ? (size_t)hl : 0;
    }
    if (rc == 0 && b->conf.tls) {
        struct lr__tls_opts to = {.ca_file = lr__uri_param(u, "cacert"),
                                  .insecure_skip_verify = skip != NULL};
        rc = lr__tls_ctx_new(&b->tls_ctx, &to);
    }
    unsigned depth = o->inflight_max && o->inflight_max < PIPELINE ? o->inflight_max : PIPELINE;
    b->nslots = (depth + 1) * o->connections; /* the pipelines full, and one ready each */
    b->others_max = 2 * o->connections;
    if (rc == 0 && !(b->slots = lr__calloc(b->nslots, sizeof(*b->slots))))
        rc = -ENOMEM;
    for (unsigned i = 0; rc == 0 && i < b->nslots; i++) {
        struct slot *sl = &b->slots[i];
        sl->b = b;
        sl->req.data = sl;
        sl->req.encode = encode;
        sl->req.on_header = on_header;
        sl->req.on_done = on_done;
        sl->req.idempotent = true; /* every request here is (lease ids are ours) */
    }
    if (rc == 0) {
        struct lr__httpc_opts ho = {.host = b->conf.host,
                                    .port = b->conf.port,
                                    .max_conns = o->connections,
                                    .pipeline = depth,
                                    .out_cap = OUT_BYTES,
                                    .timeout_ms = o->request_timeout_ms,
                                    .tls_ctx = b->tls_ctx,
                                    .tls_host = b->conf.host,
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

static int azblob_submit(struct lr__backend *b, struct lr_lease *l)
{
    if (l->ttl_ms % 1000)
        return -ERANGE;
    switch ((enum lr__req_kind)l->req.kind) {
    case LR_OP_ACQUIRE:
        l->req.batch = b->container_ok ? S_BLOB : S_CONTAINER;
        break;
    case LR_OP_RENEW:
        l->req.batch = S_RENEW;
        break;
    case LR_OP_RELEASE:
        l->req.batch = S_RELEASE;
        break;
    case LR_OP_BREAK:
        if (l->break_ms > 60000)
            return -ERANGE;
        l->req.batch = S_BREAK;
        break;
    case LR_OP_CHANGE:
        l->req.batch = S_CHANGE;
        break;
    case LR_OP_INSPECT:
        l->req.batch = S_INSPECT;
        break;
    default:
        return -EINVAL;
    }
    /* a renewal does not wait behind acquisitions: its lease's validity runs */
    lr_list_push_tail(l->req.kind == LR_OP_RENEW ? &b->renewing : &b->waiting, &l->req.link);
    lr__loop_defer(lr__manager_loop(b->m), &b->dispatch_task);
    return 0;
}

static void azblob_cancel(struct lr__backend *b, struct lr_lease *l)
{
    lr_list_unlink(&l->req.link);
    for (unsigned i = 0; i < b->nslots; i++)
        if (b->slots[i].l == l) {
            /* an answer still owed closes its connection (the client's cancel) */
            lr__httpc_cancel(&b->slots[i].req);
            free_slot(&b->slots[i]);
        }
}

static void http_closed(struct lr__httpc *h)
{
    struct lr__backend *b = h->data;
    b->close_done(b->m);
}

static void azblob_close(struct lr__backend *b, void (*done)(struct lr_manager *m))
{
    b->closing = true;
    b->close_done = done;
    lr__task_cancel(&b->dispatch_task);
    lr_list_init(&b->waiting);
    lr_list_init(&b->renewing);
    lr__httpc_close(&b->http, http_closed);
}

/* Connections open on demand and the server may close idle ones, so a
 * connection down is no failure; the last connect attempt failing is. */
static void azblob_gauges(struct lr__backend *b, struct lr__gauges *g)
{
    unsigned busy = 0;
    g->up += lr__httpc_up(&b->http, &busy);
    g->in_flight += busy;
    g->unreachable = b->http.unreachable;
}

const struct lr__backend_ops lr__azblob_backend = {
    .scheme = "azblob",
    .min_ttl_ms = 15000,
    .max_ttl_ms = 60000,
    .grid_points_per_sec = GRID_POINTS_PER_SEC,
    .create = azblob_create,
    .submit = azblob_submit,
    .cancel = azblob_cancel,
    .close = azblob_close,
    .free = backend_free,
    .gauges = azblob_gauges,
};
