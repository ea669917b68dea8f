/* SPDX-License-Identifier: MIT */
/*
 * mem.c - the in-memory backend: the lease store's semantics (TTL, owner,
 * fencing counter per name, metadata, conflicts with holder and remaining
 * TTL) in-process, for tests and for programs that want no server.
 *
 * "mem://NAME" names a store shared by every manager in the process that
 * uses the same NAME ("mem://" is the store named ""). Stores and their
 * entries live until the process exits, so fencing counters keep growing
 * across managers. A request is applied to the store in the deferred phase of
 * the loop pass after it was submitted, like a reply from a server; the
 * store's clock is the loop's monotonic clock. A store may be shared by
 * managers on different threads (a mutex guards it).
 *
 * Allocation: a name's entry is allocated the first time it is acquired and
 * kept (its fence counter must survive); metadata copies reuse their block.
 */
#include <errno.h>
#include <pthread.h>
#include <string.h>

#include <leasering/error.h>
#include "alloc_int.h"
#include "backend_int.h"
#include "lease_int.h"
#include "mem.h"

struct mem_entry {
    struct mem_entry *next; /* hash chain */
    uint64_t fence;         /* last fencing token handed out for this name */
    uint64_t expires;       /* loop ms; meaningful while owned */
    bool owned;
    uint8_t owner[16];
    uint16_t meta_len;
    uint16_t meta_cap;
    uint8_t identity_len;   /* the holder manager's identity (0: none) */
    char identity[LR_IDENTITY_MAX];
    char *meta;
    char name[LR_NAME_MAX + 1];
};

struct mem_store {
    struct mem_store *next;
    pthread_mutex_t lock;
    size_t nentries;
    size_t nbuckets; /* power of two */
    struct mem_entry **buckets;
    char name[64];
};

static pthread_mutex_t stores_lock = PTHREAD_MUTEX_INITIALIZER;
static struct mem_store *stores;

struct lr__backend {
    struct lr_manager *m;
    struct mem_store *store;
    struct lr_list pending; /* lr_lease.req.link, in submit order */
    struct lr__task run_task;
    struct lr_timer timeout_timer;
    enum lr__mem_mode mode;
};

static uint64_t hash_name(const char *s)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (; *s; s++)
        h = (h ^ (uint8_t)*s) * 1099511628211ull;
    return h;
}

static struct mem_entry *lookup(struct mem_store *st, const char *name)
{
    struct mem_entry *e = st->buckets[hash_name(name) & (st->nbuckets - 1)];
    while (e && strcmp(e->name, name))
        e = e->next;
    return e;
}

static int grow(struct mem_store *st)
{
    size_t nb = st->nbuckets * 2;
    struct mem_entry **b = lr__calloc(nb, sizeof(*b));
    if (!b)
        return -ENOMEM;
    for (size_t i = 0; i < st->nbuckets; i++) {
        struct mem_entry *e = st->buckets[i];
        while (e) {
            struct mem_entry *next = e->next;
            size_t k = hash_name(e->name) & (nb - 1);
            e->next = b[k];
            b[k] = e;
            e = next;
        }
    }
    lr__free(st->buckets);
    st->buckets = b;
    st->nbuckets = nb;
    return 0;
}

static struct mem_entry *lookup_or_add(struct mem_store *st, const char *name)
{
    struct mem_entry *e = lookup(st, name);
    if (e)
        return e;
    if (st->nentries >= st->nbuckets && grow(st) < 0)
        return NULL;
    e = lr__calloc(1, sizeof(*e));
    if (!e)
        return NULL;
    strcpy(e->name, name); /* bounded: lease names are at most LR_NAME_MAX */
    size_t k = hash_name(name) & (st->nbuckets - 1);
    e->next = st->buckets[k];
    st->buckets[k] = e;
    st->nentries++;
    return e;
}

static struct mem_store *store_get(const char *name)
{
    if (strlen(name) >= sizeof(((struct mem_store *)0)->name))
        return NULL;
    pthread_mutex_lock(&stores_lock);
    struct mem_store *st = stores;
    while (st && strcmp(st->name, name))
        st = st->next;
    if (!st) {
        st = lr__calloc(1, sizeof(*st));
        if (st) {
            st->nbuckets = 64;
            st->buckets = lr__calloc(st->nbuckets, sizeof(*st->buckets));
            if (!st->buckets) {
                lr__free(st);
                st = NULL;
            } else {
                pthread_mutex_init(&st->lock, NULL);
                strcpy(st->name, name);
                st->next = stores;
                stores = st;
            }
        }
    }
    pthread_mutex_unlock(&stores_lock);
    return st;
}

static bool owned_now(const struct mem_entry *e, uint64_t now)
{
    return e->owned && e->expires > now;
}

/* Apply one request to the store; fills @r. Called with the store locked. */
static void apply(struct mem_store *st, struct lr_lease *l, uint64_t now, struct lr__result *r,
                  char holder[LR_HOLDER_MAX])
{
    r->status = 0;
    struct mem_entry *e;
    switch ((enum lr__req_kind)l->req.kind) {
    case LR_OP_ACQUIRE:
        e = lookup_or_add(st, l->name);
        if (!e) {
            r->status = -ENOMEM;
            return;
        }
        if (owned_now(e, now) && memcmp(e->owner, l->token, 16)) {
            /* who: the holder's identity, else (none recorded) its token */
            r->status = LR_ECONFLICT;
            if (e->identity_len) {
                memcpy(holder, e->identity, e->identity_len);
                r->holder_len = e->identity_len;
            } else {
                lr__hex(e->owner, 16, holder);
                r->holder_len = 32;
            }
            r->holder = holder;
            r->holder_ttl_ms = (int64_t)(e->expires - now);
            return;
        }
        if (!owned_now(e, now)) { /* a new holder: a new fencing token */
            e->fence++;
            memcpy(e->owner, l->token, 16);
            e->owned = true;
            size_t il;
            const char *id = lr__manager_identity(l->mgr, &il);
            memcpy(e->identity, id, il);
            e->identity_len = (uint8_t)il;
            if (l->meta_len > e->meta_cap) {
                char *nm = lr__malloc(l->meta_len);
                if (!nm) {
                    e->owned = false;
                    r->status = -ENOMEM;
                    return;
                }
                lr__free(e->meta);
                e->meta = nm;
                e->meta_cap = l->meta_len;
            }
            if (l->meta_len)
                memcpy(e->meta, l->meta, l->meta_len);
            e->meta_len = l->meta_len;
        }
        e->expires = now + l->ttl_ms;
        r->fence = e->fence;
        return;
    case LR_OP_RENEW:
        e = lookup(st, l->name);
        if (!e || !owned_now(e, now) || memcmp(e->owner, l->token, 16)) {
            r->status = LR_ELOST;
            return;
        }
        e->expires = now + l->ttl_ms;
        return;
    case LR_OP_RELEASE:
        e = lookup(st, l->name);
        if (!e || !owned_now(e, now) || memcmp(e->owner, l->token, 16)) {
            r->status = LR_ELOST;
            return;
        }
        e->owned = false;
        return;
    case LR_OP_BREAK:
        /* Whoever holds it: an all-zero owner matches no token, so renewals
         * are refused and acquisitions conflict until the later of the period
         * and the holder's TTL (never sooner: the holder may still believe it
         * holds until its TTL runs out). */
        e = lookup(st, l->name);
        if (!e || !owned_now(e, now))
            return;
        memset(e->owner, 0, sizeof(e->owner));
        e->identity_len = 0; /* nobody's now: a conflict names the blank owner */
        if (e->expires < now + l->break_ms)
            e->expires = now + l->break_ms;
        return;
    case LR_OP_CHANGE:
        /* Idempotent: a retry of a change that was applied succeeds. */
        e = lookup(st, l->name);
        if (!e || !owned_now(e, now) ||
            (memcmp(e->owner, l->token, 16) && memcmp(e->owner, l->next_token, 16))) {
            r->status = LR_ELOST;
            return;
        }
        memcpy(e->owner, l->next_token, 16);
        return;
    case LR_OP_INSPECT: {
        struct lr__inspect_out *o = lr__inspect_out(l);
        e = lookup(st, l->name);
        if (!o || !e || !owned_now(e, now))
            return; /* free */
        o->held = 1;
        lr__hex(e->owner, 16, o->token);
        o->token[32] = '\0';
        memcpy(o->identity, e->identity, e->identity_len);
        o->identity[e->identity_len] = '\0';
        o->fence = e->fence;
        o->ttl_ms = (int64_t)(e->expires - now);
        for (size_t i = 0; i < e->meta_len;) {
            const char *k = e->meta + i, *v = k + strlen(k) + 1;
            size_t kl = strlen(k), vl = strlen(v);
            lr__inspect_add_meta(o, k, kl, v, vl);
            i += kl + vl + 2;
        }
        return;
    }
    default:
        r->status = -EINVAL;
        return;
    }
}

static void arm_timeout(struct lr__backend *b)
{
    struct lr_list *n = lr_list_first(&b->pending);
    if (!n || b->mode != LR_MEM_STALL) {
        lr_timer_stop(&b->timeout_timer);
        return;
    }
    struct lr_lease *l = lr_container_of(n, struct lr_lease, req.link);
    uint64_t due = l->sent_ns / 1000000u + lr__manager_opts(b->m)->request_timeout_ms;
    lr_timer_start(&b->timeout_timer, due);
}

static void run(struct lr__task *t)
{
    struct lr__backend *b = lr_container_of(t, struct lr__backend, run_task);
    if (b->mode == LR_MEM_STALL)
        return;
    struct lr_list batch;
    lr_list_init(&batch);
    lr_list_splice_tail(&batch, &b->pending);
    uint64_t now = lr_loop_now_ms(lr__manager_loop(b->m));
    struct lr_list *n;
    while ((n = lr_list_pop(&batch))) {
        struct lr_lease *l = lr_container_of(n, struct lr_lease, req.link);
        struct lr__result r = {.holder_ttl_ms = -1};
        char holder[LR_HOLDER_MAX];
        pthread_mutex_lock(&b->store->lock);
        apply(b->store, l, now, &r, holder);
        pthread_mutex_unlock(&b->store->lock);
        if (b->mode == LR_MEM_LOSE_REPLY)
            r = (struct lr__result){.status = -ETIMEDOUT, .holder_ttl_ms = -1};
        lr__manager_stats(b->m)->requests++;
        lr__lease_complete(l, &r); /* may submit, cancel or free leases */
    }
}

static void timeout_fired(struct lr_timer *t)
{
    struct lr__backend *b = t->data;
    uint64_t now = lr_loop_now_ms(lr__manager_loop(b->m));
    uint64_t limit = lr__manager_opts(b->m)->request_timeout_ms;
    struct lr_list *n;
    while ((n = lr_list_first(&b->pending))) {
        struct lr_lease *l = lr_container_of(n, struct lr_lease, req.link);
        if (l->sent_ns / 1000000u + limit > now)
            break;
        lr_list_unlink(n);
        struct lr__result r = {.status = -ETIMEDOUT, .holder_ttl_ms = -1};
        lr__lease_complete(l, &r);
    }
    arm_timeout(b);
}

static int mem_create(struct lr__backend **out, struct lr_manager *m, const struct lr__uri *u)
{
    if (u->has_user || u->has_port || u->path[0] || u->nparams)
        return -EINVAL;
    struct lr__backend *b = lr__calloc(1, sizeof(*b));
    if (!b)
        return -ENOMEM;
    b->store = store_get(u->host);
    if (!b->store) {
        lr__free(b);
        return -ENOMEM;
    }
    b->m = m;
    lr_list_init(&b->pending);
    lr__task_init(&b->run_task, run);
    lr_timer_init(lr__manager_loop(m), &b->timeout_timer, timeout_fired);
    b->timeout_timer.data = b;
    *out = b;
    return 0;
}

static int mem_submit(struct lr__backend *b, struct lr_lease *l)
{
    if (b->mode == LR_MEM_UNAVAIL)
        return LR_EUNAVAIL;
    lr_list_push_tail(&b->pending, &l->req.link);
    if (b->mode == LR_MEM_STALL) {
        if (!lr_timer_is_active(&b->timeout_timer))
            arm_timeout(b);
        return 0;
    }
    lr__loop_defer(lr__manager_loop(b->m), &b->run_task);
    return 0;
}

static void mem_cancel(struct lr__backend *b, struct lr_lease *l)
{
    (void)b;
    lr_list_unlink(&l->req.link);
}

static void mem_close(struct lr__backend *b, void (*done)(struct lr_manager *m))
{
    lr_list_init(&b->pending); /* the core detached every lease already */
    lr__task_cancel(&b->run_task);
    lr_timer_stop(&b->timeout_timer);
    done(b->m);
}

static void mem_free(struct lr__backend *b)
{
    if (!b)
        return;
    lr__task_cancel(&b->run_task);
    lr_timer_stop(&b->timeout_timer);
    lr__free(b);
}

int lr__mem_set_mode(struct lr_manager *m, enum lr__mem_mode mode)
{
    if (m->ops != &lr__mem_backend)
        return -EINVAL;
    struct lr__backend *b = m->be;
    b->mode = mode;
    arm_timeout(b);
    if (mode == LR_MEM_NORMAL && !lr_list_is_empty(&b->pending))
        lr__loop_defer(m->loop, &b->run_task);
    return 0;
}

/* No connection: "up" unless set unreachable (LR_MEM_UNAVAIL); in flight
 * are the requests not yet applied (a stalled store keeps them). */
static void mem_gauges(struct lr__backend *b, struct lr__gauges *g)
{
    g->unreachable = b->mode == LR_MEM_UNAVAIL;
    g->up = !g->unreachable;
    g->in_flight = 0;
    for (struct lr_list *n = b->pending.next; n != &b->pending; n = n->next)
        g->in_flight++;
}

const struct lr__backend_ops lr__mem_backend = {
    .scheme = "mem",
    .min_ttl_ms = 10,
    .max_ttl_ms = 30u * 86400u * 1000u,
    .create = mem_create,
    .submit = mem_submit,
    .cancel = mem_cancel,
    .close = mem_close,
    .free = mem_free,
    .gauges = mem_gauges,
};
