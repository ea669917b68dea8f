/* SPDX-License-Identifier: MIT */
/*
 * chaos.c - the fault-injecting decorator: "chaos+INNER://...?fail=P&..."
 * wraps any other backend and, on the request path, refuses requests, loses
 * replies after the store applied them, and holds results back (delays and
 * stalls). For tests of the core and of programs built on leasering; the
 * semantics users see are documented in include/leasering/backend.h.
 *
 * How it sits between the core and the store. submit() may refuse a request
 * (LR_EUNAVAIL, nothing sent) or pass it to the inner backend. The inner
 * backend's result reaches intercept() (through lr__lease_complete; see
 * backend_int.h), which decides its fate: through at once, replaced by an
 * ambiguous failure, or held in a slot until a timer delivers it with
 * lr__lease_deliver(). A lease whose result is held is found again by the
 * slot index kept in l->req.seq (the inner backend is done with the header),
 * so cancel() drops the slot and the result never reaches the lease.
 *
 * Allocation: at creation only. A lease has at most one request in flight and
 * a manager at most max_leases leases, so max_leases slots (~150 bytes each)
 * always suffice; a free stack hands them out in O(1).
 * Layer: knows the backend interface and the inner backend's ops, no protocol.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <leasering/error.h>
#include "alloc_int.h"
#include "backend_int.h"
#include "chaos.h"
#include "lease_int.h"

#define DAY_MS 86400000u

/* A result held back: the lease it belongs to and a copy of the result. */
struct held {
    struct lr_timer timer; /* when to deliver it; data = the backend */
    struct lr_lease *l;    /* NULL: the slot is free */
    struct lr__result r;   /* r.holder points at holder[] */
    char holder[LR_HOLDER_MAX];
};

struct lr__backend {
    struct lr_manager *m;
    const struct lr__backend_ops *inner_ops;
    struct lr__backend *inner;
    double fail;        /* probability a request fails */
    double stall;       /* probability a result is held stall_ms */
    uint32_t delay_ms;  /* every other result is held this long... */
    uint32_t jitter_ms; /* ...plus uniform [0, jitter_ms] */
    uint32_t stall_ms;
    unsigned kinds;     /* bit (1 << LR_OP_*): request kinds faults apply to */
    uint64_t rng;       /* splitmix64 state */
    uint32_t nslots;
    uint32_t nfree;
    uint32_t *free_slots; /* stack of free indices into slots */
    struct held *slots;
    struct lr__chaos_stats stats;
};

/* ------------------------------------------------------------ randomness */

static uint64_t next_rand(struct lr__backend *b)
{
    uint64_t z = (b->rng += 0x9e3779b97f4a7c15ull); /* splitmix64 */
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* Uniform in [0, 1). */
static double rand01(struct lr__backend *b)
{
    return (double)(next_rand(b) >> 11) / 9007199254740992.0;
}

/* ------------------------------------------------------------ parameters */

static int parse_prob(const char *s, double *out)
{
    if (!((*s >= '0' && *s <= '9') || *s == '.'))
        return -EINVAL; /* no sign, no blanks, no "nan" */
    char *end;
    double v = strtod(s, &end);
    if (*end || !(v >= 0 && v <= 1))
        return -EINVAL;
    *out = v;
    return 0;
}

/* A decimal integer up to @max (digits only: "-1" and "" are refused). */
static int parse_uint(const char *s, uint64_t max, uint64_t *out)
{
    uint64_t v = 0;
    if (!*s)
        return -EINVAL;
    for (; *s; s++) {
        if (*s < '0' || *s > '9')
            return -EINVAL;
        unsigned d = (unsigned)(*s - '0');
        if (v > (max - d) / 10)
            return -EINVAL;
        v = v * 10 + d;
    }
    *out = v;
    return 0;
}

static int parse_ms(const char *s, uint32_t *out)
{
    uint64_t v;
    int rc = parse_uint(s, DAY_MS, &v);
    if (rc == 0)
        *out = (uint32_t)v;
    return rc;
}

/* "acquire,renew,..." into a bit set of request kinds. */
static int parse_kinds(const char *s, unsigned *out)
{
    static const struct {
        const char *name;
        enum lr__req_kind kind;
    } names[] = {{"acquire", LR_OP_ACQUIRE},
                 {"renew", LR_OP_RENEW},
                 {"release", LR_OP_RELEASE},
                 {"break", LR_OP_BREAK},
                 {"change", LR_OP_CHANGE}};
    unsigned kinds = 0;
    while (*s) {
        size_t n = strcspn(s, ",");
        bool found = false;
        for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
            if (strlen(names[i].name) == n && !memcmp(names[i].name, s, n)) {
                kinds |= 1u << names[i].kind;
                found = true;
            }
        }
        if (!found)
            return -EINVAL;
        s += n;
        if (*s == ',' && !*++s)
            return -EINVAL; /* a trailing comma */
    }
    if (!kinds)
        return -EINVAL;
    *out = kinds;
    return 0;
}

/* Take the chaos parameters out of @u (what stays is the inner backend's);
 * fill @b. A chaos parameter given twice is -EINVAL. */
static int take_params(struct lr__backend *b, struct lr__uri *u, bool *seeded)
{
    enum { P_FAIL, P_DELAY, P_JITTER, P_STALL_MS, P_STALL, P_SEED, P_OPS, P_COUNT };
    static const char *const keys[P_COUNT] = {"fail",  "delay_ms", "jitter_ms", "stall_ms",
                                              "stall", "seed",     "ops"};
    bool seen[P_COUNT] = {false};
    unsigned kept = 0;
    int rc = 0;
    for (unsigned i = 0; i < u->nparams && rc == 0; i++) {
        const char *k = u->params[i].key, *v = u->params[i].value;
        int p = 0;
        while (p < P_COUNT && strcmp(keys[p], k))
            p++;
        if (p == P_COUNT) { /* the inner backend's */
            if (kept != i)
                u->params[kept] = u->params[i];
            kept++;
            continue;
        }
        if (seen[p])
            return -EINVAL;
        seen[p] = true;
        uint64_t seed = 0;
        switch (p) {
        case P_FAIL:
            rc = parse_prob(v, &b->fail);
            break;
        case P_DELAY:
            rc = parse_ms(v, &b->delay_ms);
            break;
        case P_JITTER:
            rc = parse_ms(v, &b->jitter_ms);
            break;
        case P_STALL_MS:
            rc = parse_ms(v, &b->stall_ms);
            break;
        case P_STALL:
            rc = parse_prob(v, &b->stall);
            break;
        case P_SEED:
            rc = parse_uint(v, UINT64_MAX, &seed);
            b->rng = seed;
            break;
        default:
            rc = parse_kinds(v, &b->kinds);
            break;
        }
    }
    if (rc < 0)
        return rc;
    u->nparams = kept;
    if (seen[P_STALL] && !b->stall_ms)
        return -EINVAL; /* a stall probability with nothing to stall */
    if (!seen[P_STALL])
        b->stall = 1;
    if (!seen[P_OPS])
        b->kinds = ~0u;
    *seeded = seen[P_SEED];
    return 0;
}

/* -------------------------------------------------------------- holding */

static void slot_put(struct lr__backend *b, struct held *h)
{
    lr_timer_stop(&h->timer);
    h->l = NULL;
    b->free_slots[b->nfree++] = (uint32_t)(h - b->slots);
}

static void held_fire(struct lr_timer *t)
{
    struct lr__backend *b = t->data;
    struct held *h = lr_container_of(t, struct held, timer);
    struct lr_lease *l = h->l;
    /* Copy out and free the slot first: delivery may submit again. */
    char holder[LR_HOLDER_MAX];
    struct lr__result r = h->r;
    if (r.holder) {
        memcpy(holder, h->holder, r.holder_len);
        r.holder = holder;
    }
    slot_put(b, h);
    b->stats.delivered++;
    lr__lease_deliver(l, &r); /* may free l: last use */
}

/* Hold @r for @l until loop time @due. A result held past the request
 * timeout becomes -ETIMEDOUT at that moment, as a real connection's request
 * timeout would make it. */
static void hold(struct lr__backend *b, struct lr_lease *l, const struct lr__result *r,
                 uint64_t due)
{
    uint64_t timeout_ns = (uint64_t)lr__manager_opts(b->m)->request_timeout_ms * 1000000u;
    uint64_t limit = (l->sent_ns + timeout_ns + 999999u) / 1000000u; /* never early */
    struct lr__result timed_out = {.status = -ETIMEDOUT, .holder_ttl_ms = -1};
    if (due > limit) {
        due = limit;
        r = &timed_out;
        b->stats.timed_out++;
    }
    if (!b->nfree) { /* cannot happen: one slot per lease of capacity */
        lr__lease_deliver(l, r);
        return;
    }
    struct held *h = &b->slots[b->free_slots[--b->nfree]];
    h->l = l;
    h->r = *r;
    if (r->holder) {
        h->r.holder_len = r->holder_len < sizeof(h->holder) ? r->holder_len : sizeof(h->holder);
        memcpy(h->holder, r->holder, h->r.holder_len);
        h->r.holder = h->holder;
    }
    l->req.seq = (uint32_t)(h - b->slots);
    lr_timer_start(&h->timer, due); /* a due time already past fires next pass */
}

/* The slot holding @l's result, or NULL if the inner backend has the request. */
static struct held *held_of(struct lr__backend *b, const struct lr_lease *l)
{
    uint32_t i = l->req.seq;
    return i < b->nslots && b->slots[i].l == l ? &b->slots[i] : NULL;
}

/* Faults apply to the lease requests asked for; an inspection
 * (lr_manager_inspect, an operator's read) always passes untouched. */
static bool applies(const struct lr__backend *b, const struct lr_lease *l)
{
    return l->req.kind != LR_OP_INSPECT && (b->kinds & (1u << l->req.kind));
}

/* ----------------------------------------------------------------- ops */

static bool chaos_intercept(struct lr__backend *b, struct lr_lease *l, const struct lr__result *r)
{
    if (!applies(b, l))
        return false;
    /* Half the failures were refused at submit; the other half are decided
     * here, among the requests that were sent, so that in all a fraction
     * fail of the requests fails: (fail/2) / (1 - fail/2). */
    double sent_fail = b->fail < 1 ? (b->fail / 2) / (1 - b->fail / 2) : 1;
    if (b->fail > 0 && rand01(b) < sent_fail) {
        /* The store applied it; the answer is lost. */
        if (next_rand(b) & 1) {
            struct lr__result reset = {.status = -ECONNRESET, .holder_ttl_ms = -1};
            b->stats.reset++;
            lr__lease_deliver(l, &reset); /* may free l: last use */
        } else {
            struct lr__result timed_out = {.status = -ETIMEDOUT, .holder_ttl_ms = -1};
            hold(b, l, &timed_out, UINT64_MAX); /* at the request timeout */
        }
        return true;
    }
    uint64_t ms = b->delay_ms;
    bool stall = b->stall_ms && rand01(b) < b->stall;
    if (stall)
        ms = b->stall_ms;
    else if (b->jitter_ms)
        ms += next_rand(b) % ((uint64_t)b->jitter_ms + 1);
    if (!ms)
        return false;
    if (stall)
        b->stats.stalled++;
    else
        b->stats.delayed++;
    /* Rounded up from the pass's clock in ns: held at least @ms, never less. */
    hold(b, l, r, (lr__manager_loop(b->m)->now_ns + ms * 1000000u + 999999u) / 1000000u);
    return true;
}

static int chaos_submit(struct lr__backend *b, struct lr_lease *l)
{
    if (b->fail > 0 && applies(b, l) && rand01(b) < b->fail / 2) {
        b->stats.refused++;
        return LR_EUNAVAIL; /* never sent */
    }
    return b->inner_ops->submit(b->inner, l);
}

static void chaos_cancel(struct lr__backend *b, struct lr_lease *l)
{
    struct held *h = held_of(b, l);
    if (h) {
        slot_put(b, h); /* the result never reaches the lease */
        b->stats.cancelled++;
    } else {
        b->inner_ops->cancel(b->inner, l);
    }
}

static void chaos_close(struct lr__backend *b, void (*done)(struct lr_manager *m))
{
    /* The core cancelled every lease's request already; abandon anything
     * left all the same, so no timer of ours outlives the close. */
    for (uint32_t i = 0; i < b->nslots; i++)
        if (b->slots[i].l)
            slot_put(b, &b->slots[i]);
    b->inner_ops->close(b->inner, done);
}

static void chaos_free(struct lr__backend *b)
{
    if (!b)
        return;
    for (uint32_t i = 0; i < b->nslots; i++)
        lr_timer_stop(&b->slots[i].timer);
    if (b->inner)
        b->inner_ops->free(b->inner);
    lr__free(b->slots);
    lr__free(b->free_slots);
    lr__free(b);
}

static int chaos_create(struct lr__backend **out, struct lr_manager *m, const struct lr__uri *u)
{
    const struct lr__backend_ops *ops, *inner_ops;
    int rc = lr__backend_find(u->scheme, &ops, &inner_ops);
    if (rc < 0)
        return rc;
    struct lr__backend *b = lr__calloc(1, sizeof(*b));
    if (!b)
        return -ENOMEM;
    b->m = m;
    b->inner_ops = inner_ops;
    struct lr__uri iu = *u;
    bool seeded = false;
    rc = take_params(b, &iu, &seeded);
    if (rc == 0) {
        if (!seeded)
            b->rng = lr__manager_rand(m);
        uint32_t n = lr__manager_opts(m)->max_leases;
        b->slots = lr__calloc(n, sizeof(*b->slots));
        b->free_slots = lr__calloc(n, sizeof(*b->free_slots));
        if (!b->slots || !b->free_slots)
            rc = -ENOMEM;
        else
            b->nslots = n;
    }
    if (rc == 0) {
        for (uint32_t i = 0; i < b->nslots; i++) {
            lr_timer_init(lr__manager_loop(m), &b->slots[i].timer, held_fire);
            b->slots[i].timer.data = b;
            b->free_slots[i] = b->nslots - 1 - i; /* slot 0 first */
        }
        b->nfree = b->nslots;
        strcpy(iu.scheme, inner_ops->scheme);
        rc = inner_ops->create(&b->inner, m, &iu);
    }
    explicit_bzero(&iu, sizeof(iu)); /* it may carry a password */
    if (rc < 0) {
        b->inner = NULL;
        chaos_free(b);
        return rc;
    }
    *out = b;
    return 0;
}

static void chaos_gauges(struct lr__backend *b, struct lr__gauges *g)
{
    if (b->inner_ops->gauges)
        b->inner_ops->gauges(b->inner, g);
    g->in_flight += b->nslots - b->nfree; /* answered, but held back from the lease */
}

const struct lr__chaos_stats *lr__chaos_stats(const struct lr_manager *m)
{
    return m->ops == &lr__chaos_backend ? &m->be->stats : NULL;
}

const struct lr__backend_ops lr__chaos_backend = {
    .scheme = "chaos",
    .decorator = true,
    .create = chaos_create,
    .submit = chaos_submit,
    .cancel = chaos_cancel,
    .close = chaos_close,
    .free = chaos_free,
    .intercept = chaos_intercept,
    .gauges = chaos_gauges,
};
