/* SPDX-License-Identifier: MIT */
/*
 * lease.c - the lease core: state machine, renewal schedule, retries, safety.
 *
 * One lr_timer per lease carries its next action: an acquire attempt, a
 * scheduled renewal, a retry, or -- whenever a request is in flight -- the
 * local validity deadline. So "lost" is decided by a timer a guard interval
 * before valid_until, never by waiting for a reply; and every decision about
 * validity reads a fresh clock, since the pass's cached one is stale after a
 * stall. Validity is computed from the time a request was handed to the
 * store's connection (the backend stamps it, lr__lease_sent; submit() stamps
 * the submit time for backends that send at once), which is no later than
 * when the store received it.
 * Layer: knows the wheel and the backend interface; no protocol.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include <leasering/backend.h>
#include <leasering/error.h>
#include "alloc_int.h"
#include "lease_int.h"
#include "log_int.h"

#define DEFAULT_TTL_MS 10000u
#define DEFAULT_MAX_LEASES 1024u
#define DEFAULT_BATCH 64u
/* The default renewal grid (renew_coalesce_ms) aims at this many grid points
 * a second. Each occupied point costs the loop a timer wake-up and, soon
 * after, a reply wake-up, whatever the number of leases: a budget of ~100
 * wake-ups a second. A grid from a share of the TTL (ttl/1000) woke a 3 s
 * lease set 636 times a second, and the wake-ups, not the renewals, were
 * most of the client's CPU (issue 10). */
#define RENEW_GRID_POINTS_PER_SEC 50u
/* Rounding up onto the grid delays a renewal by less than one step, taken
 * from the time it has in hand for retries (validity minus the latest
 * renewal time, jitter included): the default step uses at most this share
 * of it, so short TTLs get a finer grid. */
#define RENEW_GRID_ROOM_SHARE 16u

/* Issue 10: a million leases must fit in ~128 MB plus their names. The lease
 * is not there yet (see docs/BENCHMARKS.md, "Lease struct and wheel at
 * density"); this bound keeps it from growing back. */
_Static_assert(sizeof(void *) != 8 || sizeof(struct lr_lease) <= 248,
               "struct lr_lease grew: see docs/BENCHMARKS.md before adding to it");

/* ---------------------------------------------------------------- helpers */

static uint64_t xoroshiro(uint64_t s[2])
{
    uint64_t s0 = s[0], s1 = s[1], r = s0 + s1;
    s1 ^= s0;
    s[0] = ((s0 << 55) | (s0 >> 9)) ^ s1 ^ (s1 << 14);
    s[1] = (s1 << 36) | (s1 >> 28);
    return r;
}

uint64_t lr__manager_rand(struct lr_manager *m)
{
    return xoroshiro(m->rng);
}

uint64_t lr__manager_backoff(struct lr_manager *m, unsigned n)
{
    uint64_t step = m->o.retry_base_ms;
    for (unsigned i = 0; i < n && step < m->o.retry_cap_ms; i++)
        step *= 2;
    if (step > m->o.retry_cap_ms)
        step = m->o.retry_cap_ms;
    /* Full jitter: uniform in [1, step]. */
    return 1 + lr__manager_rand(m) % (step ? step : 1);
}

static int fill_random(uint8_t *p, size_t n)
{
    while (n) {
        ssize_t got = getrandom(p, n, 0);
        if (got < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        p += got;
        n -= (size_t)got;
    }
    return 0;
}

/* A fresh 128-bit owner token, from a getrandom pool refilled 256 bytes at a
 * time (acquire path only, never renew). */
static void new_token(struct lr_manager *m, uint8_t out[16])
{
    if (m->pool_used + 16 > sizeof(m->pool)) {
        if (fill_random(m->pool, sizeof(m->pool)) < 0) {
            /* getrandom cannot fail for this size on Linux >= 3.17 once the
             * pool is initialised; fall back to the generator all the same */
            for (size_t i = 0; i < sizeof(m->pool); i += 8) {
                uint64_t r = lr__manager_rand(m);
                memcpy(m->pool + i, &r, 8);
            }
        }
        m->pool_used = 0;
    }
    memcpy(out, m->pool + m->pool_used, 16);
    m->pool_used += 16;
}

/* The loop's clock; fresh when the API is called from host code between
 * passes (an embedding host may have slept since: see lr__loop_clock_outside). */
static inline uint64_t now_ms(const struct lr_lease *l)
{
    lr__loop_clock_outside(l->mgr->loop);
    return l->mgr->loop->now_ms;
}

static inline uint64_t now_ns(const struct lr_lease *l)
{
    lr__loop_clock_outside(l->mgr->loop);
    return l->mgr->loop->now_ns;
}

/* A fresh reading for decisions about validity: the pass's cached clock is
 * stale after a slow callback or a stall. Refreshes the loop's cache too, so
 * what follows in this pass (send times, next deadlines) is current. */
static inline uint64_t fresh_ms(const struct lr_lease *l)
{
    lr__loop_clock_update(l->mgr->loop);
    return l->mgr->loop->now_ms;
}

static uint64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* How long before valid_until the holder stops: loss_guard_ms, by default the
 * larger of 2 ms and 1% of the lease's TTL. */
static uint64_t guard_for(uint32_t ttl_ms, const struct lr_manager *m)
{
    if (m && m->o.loss_guard_ms)
        return m->o.loss_guard_ms;
    uint64_t g = ttl_ms / 100u;
    return g > 2 ? g : 2;
}

static uint64_t guard_ms(const struct lr_lease *l, const struct lr_manager *m)
{
    return guard_for(l->ttl_ms, m);
}

/* A lease on a store session is valid as long as its session is. */
static inline uint64_t lease_valid_until(const struct lr_lease *l)
{
    return (l->flags & LR_LF_SESSION) ? l->sess->valid_until : l->valid_until;
}

/* The last moment the holder may act: where the lost timer is armed. */
static uint64_t stop_at(const struct lr_lease *l)
{
    uint64_t g = guard_ms(l, l->mgr);
    uint64_t v = lease_valid_until(l);
    return v > g ? v - g : 0;
}

struct lr_loop *lr__manager_loop(const struct lr_manager *m)
{
    return m->loop;
}

const struct lr_manager_opts *lr__manager_opts(const struct lr_manager *m)
{
    return &m->o;
}

struct lr_manager_stats *lr__manager_stats(struct lr_manager *m)
{
    return &m->stats;
}

/* The log level of a store_error text: the store checks' "warning:" texts
 * and connection trouble warn; refused credentials or certificates and a
 * configuration the backend rejects are errors. */
static int store_error_level(int status, const char *text)
{
    if (strstr(text, ": warning: "))
        return LR_LOG_WARN;
    if (status == LR_EAUTH || status == LR_ETLS || status == -EINVAL)
        return LR_LOG_ERROR;
    return LR_LOG_WARN;
}

/* The store_err_* counter a connection-level failure counts under. The
 * backends write warnings as "<endpoint>: warning: ..." (redis.c). */
static uint64_t *store_error_kind(struct lr_manager_stats *s, int status, const char *text)
{
    if (!strncmp(text, "warning:", 8) || strstr(text, ": warning:") || status == -EINVAL)
        return &s->store_err_config;
    switch (status) {
    case LR_EAUTH:
        return &s->store_err_auth;
    case LR_ETLS:
        return &s->store_err_tls;
    case -ETIMEDOUT:
        return &s->store_err_timeout;
    case LR_EBADREPLY:
    case -EPROTO:
    case -EMSGSIZE:
        return &s->store_err_protocol;
    case LR_ESTORE:
        return &s->store_err_server;
    case LR_EUNAVAIL:
    case LR_EEOF:
    case -ECONNREFUSED:
    case -ECONNRESET:
    case -ECONNABORTED:
    case -EHOSTUNREACH:
    case -ENETUNREACH:
    case -EPIPE:
    case -ENOTCONN:
    case -ENOENT: /* a unix socket's path */
        return &s->store_err_unreachable;
    default:
        return &s->store_err_other;
    }
}

void lr__manager_store_error(struct lr_manager *m, int status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(m->err_text, sizeof(m->err_text), fmt, ap);
    va_end(ap);
    m->err_status = status;
    (*store_error_kind(&m->stats, status, m->err_text))++;
    lr__log_text(store_error_level(status, m->err_text), m->err_text);
    if (m->o.store_error)
        m->o.store_error(m, status, m->err_text, m->o.store_error_arg);
}

int lr_manager_last_error(const struct lr_manager *m, char *buf, size_t len)
{
    if (buf && len) {
        size_t n = strlen(m->err_text);
        if (n >= len)
            n = len - 1;
        memcpy(buf, m->err_text, n);
        buf[n] = '\0';
    }
    return m->err_status;
}

void lr__manager_read_gauges(struct lr_manager *m)
{
    struct lr__gauges g = {0};
    if (m->ops->gauges)
        m->ops->gauges(m->be, &g);
    m->stats.connections_up = g.up;
    m->stats.requests_in_flight = g.in_flight;
    m->stats.store_unreachable = g.unreachable;
}

const struct lr_manager_stats *lr_manager_stats(const struct lr_manager *m)
{
    /* The manager is never const in memory (lr_manager_new made it): the
     * const in the signature promises the caller nothing changes it. */
    lr__manager_read_gauges((struct lr_manager *)m);
    return &m->stats;
}

struct lr_loop *lr_manager_loop(const struct lr_manager *m)
{
    return m->loop;
}

static const struct lr_lease_cbs no_cbs;

static inline const struct lr_lease_cbs *cbs(const struct lr_lease *l)
{
    return l->cbs ? l->cbs : &no_cbs;
}

static inline bool held(const struct lr_lease *l)
{
    return l->state == LR_LEASE_HELD || l->state == LR_LEASE_JEOPARDY;
}

static void set_state(struct lr_lease *l, enum lr_lease_state s)
{
    bool was = held(l);
    l->state = (uint8_t)s;
    bool is = held(l);
    if (l->mgr && was != is) {
        if (is)
            l->mgr->stats.held++;
        else
            l->mgr->stats.held--;
    }
}

uint64_t lr__validity_keep_ms(const struct lr_manager_opts *o, uint32_t ttl_ms)
{
    uint64_t keep = (uint64_t)((double)ttl_ms * (1.0 - o->drift));
    return keep > o->margin_ms ? keep - o->margin_ms : 0;
}

/* Validity from the send time of the request that just succeeded. */
static uint64_t validity(const struct lr_lease *l)
{
    return l->sent_ns / 1000000u + lr__validity_keep_ms(&l->mgr->o, l->ttl_ms);
}

static void arm(struct lr_lease *l, uint64_t when, bool due)
{
    if (due)
        l->flags |= LR_LF_DUE;
    else
        l->flags &= (uint16_t)~LR_LF_DUE;
    lr_timer_start(&l->timer, when);
}

/* Abandon the in-flight request, if any. */
static void drop_request(struct lr_lease *l)
{
    if (l->req.kind != LR_OP_NONE) {
        if (l->mgr)
            l->mgr->ops->cancel(l->mgr->be, l);
        l->req.kind = LR_OP_NONE;
    }
}

static int submit(struct lr_lease *l, enum lr__req_kind op)
{
    struct lr_manager *m = l->mgr;
    l->sent_ns = now_ns(l);
    l->req.kind = (uint8_t)op;
    int rc = m->ops->submit(m->be, l);
    if (rc < 0)
        l->req.kind = LR_OP_NONE;
    return rc;
}

/* The next renewal: renew_fraction of the TTL after the send, +- jitter,
 * and always before validity ends. */
static void schedule_renewal(struct lr_lease *l)
{
    const struct lr_manager_opts *o = &l->mgr->o;
    if (l->flags & LR_LF_SESSION) { /* its session's renewals keep it; the session's timer ends it */
        lr_timer_stop(&l->timer);
        return;
    }
    if (l->flags & LR_LF_NO_AUTO) {
        arm(l, stop_at(l), false);
        return;
    }
    double interval = (double)l->ttl_ms * o->renew_fraction;
    double j = interval * o->renew_jitter;
    double r = (double)(lr__manager_rand(l->mgr) >> 11) / 9007199254740992.0; /* [0,1) */
    double at = interval + (2 * r - 1) * j;
    uint64_t when = l->sent_ns / 1000000u + (uint64_t)(at > 1 ? at : 1);
    /* Coalesce onto a shared grid: many renewals per wakeup and per batch,
     * while the jitter still spreads them over the whole interval. */
    uint64_t q = o->renew_coalesce_ms;
    when = (when + q - 1) / q * q;
    uint64_t stop = stop_at(l);
    if (when >= stop)
        when = stop > 1 ? stop - 1 : stop;
    arm(l, when, true);
}

/* ----------------------------------------------------------- name arena */

static char *names_alloc(struct lr__names *a, size_t n)
{
    size_t cls = n / 8; /* n bytes with the NUL: 8 * (cls + 1) */
    size_t size = 8 * (cls + 1);
    char *p = a->free[cls];
    if (p) {
        memcpy(&a->free[cls], p, sizeof(char *));
        return p;
    }
    if (!a->chunk || a->used + size > LR_NAMES_CHUNK) {
        char *c = lr__malloc(LR_NAMES_CHUNK);
        if (!c)
            return NULL;
        memcpy(c, &a->chunk, sizeof(char *));
        a->chunk = c;
        a->used = 8;
    }
    p = a->chunk + a->used;
    a->used += size;
    return p;
}

static void names_put(struct lr__names *a, char *p, size_t n)
{
    size_t cls = n / 8;
    memcpy(p, &a->free[cls], sizeof(char *));
    a->free[cls] = p;
}

static void names_free_all(struct lr__names *a)
{
    while (a->chunk) {
        char *prev;
        memcpy(&prev, a->chunk, sizeof(char *));
        lr__free(a->chunk);
        a->chunk = prev;
    }
}

/* ------------------------------------------------------------ transitions */

/* valid_until and next_token share storage with a conflict's holder report
 * (lr_lease_holder), which matters only while the lease is not held. */
static void set_valid_until(struct lr_lease *l, uint64_t v)
{
    l->flags &= (uint16_t)~(LR_LF_HOLDER | LR_LF_HOLDER_HEX | LR_LF_HOLDER_REF);
    l->valid_until = v;
}

/* Leaving the held states: no validity, but a holder report kept meanwhile
 * (released while acquiring after a conflict) stays readable. */
static void clear_validity(struct lr_lease *l)
{
    if (!(l->flags & LR_LF_HOLDER))
        l->valid_until = 0;
}

/* Off its store session (if on one): from now on its own fields count. */
static void leave_session(struct lr_lease *l)
{
    if (!(l->flags & LR_LF_SESSION))
        return;
    struct lr__session *s = l->sess;
    s->leases--;
    l->flags &= (uint16_t)~LR_LF_SESSION;
    l->last_renewed = s->last_renewed;
    l->valid_until = s->valid_until;
}

static void lose(struct lr_lease *l, int reason)
{
    leave_session(l);
    drop_request(l);
    lr_timer_stop(&l->timer);
    set_state(l, LR_LEASE_LOST);
    clear_validity(l);
    l->last_error = reason;
    l->mgr->stats.lost++;
    if (reason == LR_ELOST)
        l->mgr->stats.lost_taken++;
    else if (reason == LR_EUNAVAIL)
        l->mgr->stats.lost_unavail++;
    else
        l->mgr->stats.lost_expired++;
    lr__log_lease_lost(l->name, l->name_len, reason);
    if (cbs(l)->lost)
        cbs(l)->lost(l, reason); /* may free l: last use */
}

static int expiry_reason(const struct lr_lease *l)
{
    return (l->flags & LR_LF_UNAVAIL) ? LR_EUNAVAIL : LR_EEXPIRED;
}

static void finish_release(struct lr_lease *l, int status)
{
    leave_session(l);
    lr_timer_stop(&l->timer);
    set_state(l, LR_LEASE_IDLE);
    clear_validity(l);
    l->flags &= (uint16_t)~LR_LF_RELEASE_PENDING;
    l->mgr->stats.released++;
    if (status)
        l->last_error = status;
    if (cbs(l)->released)
        cbs(l)->released(l, status); /* may free l: last use */
}

static void start_release(struct lr_lease *l)
{
    drop_request(l);
    set_state(l, LR_LEASE_RELEASING);
    l->flags &= (uint16_t)~LR_LF_RELEASE_PENDING;
    int rc = submit(l, LR_OP_RELEASE);
    if (rc < 0) {
        /* Never call back from inside the caller's call: report next pass. */
        l->last_error = rc;
        arm(l, now_ms(l), false);
    } else {
        lr_timer_stop(&l->timer);
    }
}

/* From lr_lease_acquire to its outcome (acquired or acquire_failed). */
static void acquire_took(struct lr_lease *l)
{
    lr_hist_add(&l->mgr->stats.acquire_duration_us, (now_ns(l) - l->acquire_ns) / 1000u);
}

static void acquire_gave_up(struct lr_lease *l, int status)
{
    struct lr_manager_stats *s = &l->mgr->stats;
    lr_timer_stop(&l->timer);
    set_state(l, LR_LEASE_IDLE);
    l->last_error = status;
    s->acquire_failures++;
    switch (status) {
    case LR_ECONFLICT:
        s->acquire_fail_conflict++;
        break;
    case -ETIMEDOUT:
        s->acquire_fail_timeout++;
        break;
    case LR_EUNAVAIL:
    case LR_EEOF:
    case -ECONNRESET:
        s->acquire_fail_unavail++;
        break;
    case LR_EAUTH:
    case LR_ETLS:
        s->acquire_fail_auth++;
        break;
    default:
        s->acquire_fail_other++;
        break;
    }
    acquire_took(l);
    if (cbs(l)->acquire_failed)
        cbs(l)->acquire_failed(l, status); /* may free l: last use */
}

static bool definite_error(int status)
{
    return status == LR_EAUTH || status == LR_ETLS || status == LR_ESTORE || status == -EINVAL ||
           status == -ENAMETOOLONG || status == -ERANGE || status == -EMSGSIZE;
}

static void attempt_failed(struct lr_lease *l, int status)
{
    struct lr_manager *m = l->mgr;
    if (l->state == LR_LEASE_RELEASING) { /* released while acquiring */
        finish_release(l, 0);
        return;
    }
    l->last_error = status;
    l->attempt = l->attempt < 255 ? (uint8_t)(l->attempt + 1) : 255;
    uint64_t when = now_ms(l) + lr__manager_backoff(m, l->attempt - 1u);
    if ((l->flags & LR_LF_TRY) || definite_error(status) ||
        when >= l->acquire_ns / 1000000u + l->acquire_wait_ms ||
        (m->o.retry_max && l->attempt >= m->o.retry_max)) {
        acquire_gave_up(l, status);
        return;
    }
    arm(l, when, false);
}

static void renew_failed(struct lr_lease *l, int status)
{
    struct lr_manager *m = l->mgr;
    m->stats.renew_failures++;
    l->stats.renew_failures++;
    l->last_error = status;
    if (status == LR_EUNAVAIL)
        l->flags |= LR_LF_UNAVAIL;
    else
        l->flags &= (uint16_t)~LR_LF_UNAVAIL;
    l->attempt = l->attempt < 255 ? (uint8_t)(l->attempt + 1) : 255;
    /* Retry with backoff, always inside validity: a step that would land past
     * it is cut to half the time left, so retries get denser, not rarer, as
     * the deadline nears; the timer at the stop point alone decides loss. */
    uint64_t now = now_ms(l);
    uint64_t stop = stop_at(l);
    uint64_t when = now + lr__manager_backoff(m, l->attempt - 1u);
    if (stop > now && when >= stop - (stop - now) / 2)
        when = now + (stop - now) / 2;
    if ((l->flags & LR_LF_NO_AUTO) || when <= now || when >= stop)
        arm(l, stop, false);
    else
        arm(l, when, false);
    if (l->state == LR_LEASE_HELD) {
        set_state(l, LR_LEASE_JEOPARDY);
        if (cbs(l)->jeopardy)
            cbs(l)->jeopardy(l, status); /* may free l: last use */
    }
}

static void renew_now(struct lr_lease *l)
{
    int rc = submit(l, LR_OP_RENEW);
    if (rc < 0) {
        renew_failed(l, rc);
        return;
    }
    arm(l, stop_at(l), false); /* if no answer in time, the lease is lost then */
}

static void break_done(struct lr_lease *l, int status);
static void inspect_done(struct lr_lease *l, const struct lr__result *r);
static void change_done(struct lr_lease *l, const struct lr__result *r);

static void lease_timer(struct lr_timer *t)
{
    struct lr_lease *l = lr_container_of(t, struct lr_lease, timer);
    struct lr_manager *m = l->mgr;
    switch (l->state) {
    case LR_LEASE_ACQUIRING:
        if (l->req.kind == LR_OP_NONE) {
            int rc = submit(l, LR_OP_ACQUIRE);
            if (rc < 0)
                attempt_failed(l, rc);
        }
        break;
    case LR_LEASE_HELD:
    case LR_LEASE_JEOPARDY:
        if (fresh_ms(l) >= stop_at(l)) {
            lose(l, expiry_reason(l));
            return;
        }
        if (l->flags & LR_LF_DUE) {
            uint64_t late = now_ns(l) - lr_timer_deadline(t) * 1000000u;
            lr_hist_add(&m->stats.timer_lateness_us, late / 1000u);
        }
        if (l->req.kind == LR_OP_NONE && (l->flags & LR_LF_CHANGE)) {
            l->flags &= (uint16_t)~LR_LF_CHANGE;
            int rc = submit(l, LR_OP_CHANGE);
            if (rc < 0) {
                struct lr__result r = {.status = rc, .holder_ttl_ms = -1};
                change_done(l, &r);
                return;
            }
            arm(l, stop_at(l), false);
        } else if (l->req.kind == LR_OP_NONE) {
            renew_now(l);
        } else {
            arm(l, stop_at(l), false);
        }
        break;
    case LR_LEASE_RELEASING:
        if (l->req.kind == LR_OP_NONE)
            finish_release(l, l->last_error);
        break;
    default: /* IDLE or LOST: a break asked for in lr_lease_break */
        if (l->flags & LR_LF_BREAK) {
            l->flags &= (uint16_t)~LR_LF_BREAK;
            int rc = submit(l, LR_OP_BREAK);
            if (rc < 0)
                break_done(l, rc);
        }
        break;
    }
}

/* ------------------------------------------------------- backend results */

static int hex_digit(char c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* A long identity into the manager's holder table: the slot that has it
 * already, else the least recently met one. Returns the slot index. */
static unsigned holder_slot(struct lr_manager *m, const char *text, size_t n)
{
    unsigned pick = 0;
    uint32_t stamp = ++m->holder_stamp;
    for (unsigned i = 0; i < LR_HOLDER_SLOTS; i++) {
        struct lr__holder_slot *h = &m->holders[i];
        if (h->gen && h->len == n && !memcmp(h->text, text, n)) {
            h->used = stamp;
            return i;
        }
        if (h->used < m->holders[pick].used)
            pick = i;
    }
    struct lr__holder_slot *h = &m->holders[pick];
    h->gen++;
    if (!h->gen)
        h->gen = 1; /* 0 marks a slot never used */
    h->used = stamp;
    h->len = (uint8_t)n;
    memcpy(h->text, text, n);
    h->text[n] = '\0';
    return pick;
}

/* A conflict's report, in the storage that is free while the lease is not
 * held: 32 lowercase hex digits (what lr__hex writes as owner) packed to 16
 * bytes; an identity of up to 19 bytes as text; a longer one in the
 * manager's holder table, the lease keeping its slot and generation
 * (holder[0..4]) and its first 14 bytes (holder[5..19]) for when the slot
 * was given to another identity since. */
static void keep_holder(struct lr_lease *l, const struct lr__result *r)
{
    size_t n = r->holder ? r->holder_len : 0;
    bool hex = n == 32;
    for (size_t i = 0; hex && i < n; i++)
        hex = hex_digit(r->holder[i]) >= 0;
    l->flags |= LR_LF_HOLDER;
    l->flags &= (uint16_t)~(LR_LF_HOLDER_HEX | LR_LF_HOLDER_REF);
    if (n > LR_HOLDER_MAX)
        n = LR_HOLDER_MAX;
    if (hex) {
        for (size_t i = 0; i < 16; i++)
            l->holder[i] = (char)(hex_digit(r->holder[2 * i]) << 4 | hex_digit(r->holder[2 * i + 1]));
        l->flags |= LR_LF_HOLDER_HEX;
    } else if (n < sizeof(l->holder)) {
        if (n)
            memcpy(l->holder, r->holder, n);
        l->holder[n] = '\0';
    } else {
        unsigned slot = holder_slot(l->mgr, r->holder, n);
        uint32_t gen = l->mgr->holders[slot].gen;
        memcpy(l->holder, &gen, 4);
        l->holder[4] = (char)slot;
        memcpy(l->holder + 5, r->holder, sizeof(l->holder) - 6);
        l->holder[sizeof(l->holder) - 1] = '\0';
        l->flags |= LR_LF_HOLDER_REF;
    }
    int64_t ttl = r->holder_ttl_ms;
    l->holder_ttl_ms = ttl > INT32_MAX ? INT32_MAX : ttl < -1 ? -1 : (int32_t)ttl;
}

static void acquire_done(struct lr_lease *l, const struct lr__result *r)
{
    struct lr_manager *m = l->mgr;
    if (r->status == 0) {
        l->fence = r->fence;
        set_valid_until(l, (l->flags & LR_LF_SESSION) ? l->sess->valid_until : validity(l));
        if (l->state == LR_LEASE_RELEASING) { /* released while acquiring: give it back */
            start_release(l);
            return;
        }
        if (stop_at(l) <= fresh_ms(l)) {
            /* Answered so late that no validity is left (judged on a fresh
             * clock: this pass may have begun long ago): never "acquired";
             * try again (the store knows our token, so a retry is idempotent). */
            leave_session(l);
            attempt_failed(l, -ETIMEDOUT);
            return;
        }
        set_state(l, LR_LEASE_HELD);
        l->attempt = 0;
        l->last_error = 0;
        l->flags &= (uint16_t)~LR_LF_UNAVAIL;
        if (!(l->flags & LR_LF_SESSION))
            l->last_renewed = now_ms(l);
        l->stats.acquisitions++;
        m->stats.acquired++;
        acquire_took(l);
        schedule_renewal(l);
        if (cbs(l)->acquired)
            cbs(l)->acquired(l); /* may free l: last use */
        return;
    }
    if (r->status == LR_ECONFLICT) {
        keep_holder(l, r);
        l->stats.conflicts++;
        m->stats.conflicts++;
    }
    attempt_failed(l, r->status);
}

static void renew_done(struct lr_lease *l, const struct lr__result *r)
{
    struct lr_manager *m = l->mgr;
    if (r->status == 0) {
        /* On a fresh clock: the lease must still be inside its old validity
         * (else the holder was already past its stop point, whatever the
         * store says now) and the new one must leave time to act. */
        uint64_t now = fresh_ms(l);
#ifdef LR_PLANT_LATE_REPLY /* planted bug, fault suite's test build only (tests/fault) */
        now = 0;
#endif
        if (now >= stop_at(l)) {
            lose(l, LR_EEXPIRED);
            return;
        }
        set_valid_until(l, (l->flags & LR_LF_SESSION) ? l->sess->valid_until : validity(l));
        if (now >= stop_at(l)) {
            lose(l, LR_EEXPIRED);
            return;
        }
        set_state(l, LR_LEASE_HELD);
        l->attempt = 0;
        l->last_error = 0;
        l->flags &= (uint16_t)~LR_LF_UNAVAIL;
        if (!(l->flags & LR_LF_SESSION))
            l->last_renewed = now_ms(l);
        l->stats.renewals++;
        m->stats.renewals++;
        lr_hist_add(&m->stats.renew_latency_us, (now_ns(l) - l->sent_ns) / 1000u);
        schedule_renewal(l);
        if (cbs(l)->renewed)
            cbs(l)->renewed(l); /* may free l: last use */
        return;
    }
    if (r->status == LR_ELOST) {
        lose(l, LR_ELOST);
        return;
    }
    renew_failed(l, r->status);
}

/* ------------------------------------------------------- store sessions */

static void forget(struct lr_lease *l);

/* Run @fn on every lease on @s. Callbacks may free or release any lease,
 * or close the manager: the leases still to visit wait on a private list
 * (an unlink works from there too) and go back one at a time. */
static void session_each(struct lr__session *s, void (*fn)(struct lr_lease *l, int arg), int arg)
{
    struct lr_manager *m = s->mgr;
    struct lr_list todo, *it = m->leases.next;
    lr_list_init(&todo);
    while (it != &m->leases) {
        struct lr_lease *l = lr_container_of(it, struct lr_lease, mgr_link);
        it = it->next;
        if ((l->flags & LR_LF_SESSION) && l->sess == s) {
            lr_list_unlink(&l->mgr_link);
            lr_list_push_tail(&todo, &l->mgr_link);
        }
    }
    struct lr_list *n;
    while ((n = lr_list_pop(&todo))) {
        struct lr_lease *l = lr_container_of(n, struct lr_lease, mgr_link);
        if (m->closing) { /* closed from a callback: these were not on its list */
            forget(l);
            continue;
        }
        lr_list_push_tail(&m->leases, n);
        fn(l, arg); /* may free l */
    }
}

static uint64_t session_stop(const struct lr__session *s)
{
    uint64_t g = guard_for(s->ttl_ms, s->mgr);
    return s->valid_until > g ? s->valid_until - g : 0;
}

static void session_lose_one(struct lr_lease *l, int reason)
{
    if (held(l))
        lose(l, reason);
    else
        leave_session(l); /* releasing: its release goes on on its own */
}

static void session_end(struct lr__session *s, int reason)
{
    lr_timer_stop(&s->timer);
    session_each(s, session_lose_one, reason);
    s->valid_until = 0;
    s->jeopardy = 0;
}

static void session_timer(struct lr_timer *t)
{
    struct lr__session *s = lr_container_of(t, struct lr__session, timer);
    lr__loop_clock_update(s->mgr->loop);
    uint64_t stop = session_stop(s);
    if (s->mgr->loop->now_ms < stop) {
        lr_timer_start(&s->timer, stop);
        return;
    }
    session_end(s, s->jeopardy == LR_EUNAVAIL ? LR_EUNAVAIL : LR_EEXPIRED);
}

void lr__session_init(struct lr__session *s, struct lr_manager *m, uint32_t ttl_ms)
{
    memset(s, 0, sizeof(*s));
    s->mgr = m;
    s->ttl_ms = ttl_ms;
    lr_timer_init(m->loop, &s->timer, session_timer);
    lr__timer_set_urgent(&s->timer); /* losses first in a late pass */
}

void lr__session_fini(struct lr__session *s)
{
    if (!s->mgr)
        return;
    lr_timer_stop(&s->timer);
    if (s->leases && !s->mgr->closing) {
        struct lr_list *it = s->mgr->leases.next;
        while (it != &s->mgr->leases) {
            struct lr_lease *l = lr_container_of(it, struct lr_lease, mgr_link);
            it = it->next;
            if ((l->flags & LR_LF_SESSION) && l->sess == s)
                leave_session(l);
        }
    }
}

void lr__session_add(struct lr__session *s, struct lr_lease *l)
{
    if (l->flags & LR_LF_SESSION)
        leave_session(l);
    l->sess = s;
    l->flags |= LR_LF_SESSION;
    s->leases++;
    if (held(l) && l->req.kind == LR_OP_NONE) /* already held: its own renewals end here */
        lr_timer_stop(&l->timer);
}

static void session_back(struct lr_lease *l, int arg)
{
    (void)arg;
    if (l->state != LR_LEASE_JEOPARDY)
        return;
    set_state(l, LR_LEASE_HELD);
    l->last_error = 0;
    l->flags &= (uint16_t)~LR_LF_UNAVAIL;
    if (cbs(l)->renewed)
        cbs(l)->renewed(l); /* may free l: last use */
}

bool lr__session_renewed(struct lr__session *s, uint64_t sent_ns)
{
    struct lr_manager *m = s->mgr;
    lr__loop_clock_update(m->loop);
    uint64_t now = m->loop->now_ms;
    bool kept = true;
#ifdef LR_PLANT_SESSION_LATE /* planted bug, the etcd fault test's build only */
    now = 0;
#endif
    if (s->leases && s->valid_until && now >= session_stop(s)) {
        /* The answer came after the stop point: the leases were already
         * past it, whatever the store says now. */
        session_end(s, LR_EEXPIRED);
        kept = false;
    }
    s->valid_until = sent_ns / 1000000u + lr__validity_keep_ms(&m->o, s->ttl_ms);
    s->last_renewed = m->loop->now_ms;
    m->stats.renewals += s->leases;
    m->stats.renew_requests++;
    m->stats.renew_keys += s->leases;
    lr_hist_add(&m->stats.renew_latency_us, (m->loop->now_ns - sent_ns) / 1000u);
    uint64_t stop = session_stop(s);
    if (s->mgr->loop->now_ms >= stop) { /* nothing left: the timer ends whatever joins */
        lr_timer_start(&s->timer, m->loop->now_ms);
        return false;
    }
    lr_timer_start(&s->timer, stop);
    if (s->jeopardy) {
        s->jeopardy = 0;
        session_each(s, session_back, 0);
    }
    return kept;
}

static void session_jeopardy(struct lr_lease *l, int status)
{
    l->last_error = status;
    if (status == LR_EUNAVAIL)
        l->flags |= LR_LF_UNAVAIL;
    if (l->state != LR_LEASE_HELD)
        return;
    set_state(l, LR_LEASE_JEOPARDY);
    if (cbs(l)->jeopardy)
        cbs(l)->jeopardy(l, status); /* may free l: last use */
}

void lr__session_failed(struct lr__session *s, int status)
{
    s->mgr->stats.renew_failures++;
    bool first = s->jeopardy == 0;
    s->jeopardy = status ? status : -EIO;
    if (first)
        session_each(s, session_jeopardy, s->jeopardy);
}

void lr__session_lost(struct lr__session *s, int status)
{
    session_end(s, status);
}

bool lr__session_lose_name(struct lr__session *s, const char *name, size_t len, int status)
{
    struct lr_list *it = s->mgr->leases.next;
    while (it != &s->mgr->leases) {
        struct lr_lease *l = lr_container_of(it, struct lr_lease, mgr_link);
        it = it->next;
        if ((l->flags & LR_LF_SESSION) && l->sess == s && l->name_len == len &&
            memcmp(l->name, name, len) == 0) {
            session_lose_one(l, status);
            return true;
        }
    }
    return false;
}

static void break_done(struct lr_lease *l, int status)
{
    if (status)
        l->last_error = status;
    if (cbs(l)->broken)
        cbs(l)->broken(l, status); /* may free l: last use */
}

static void change_done(struct lr_lease *l, const struct lr__result *r)
{
    if (!held(l))
        return;
    bool was_ambiguous = l->flags & LR_LF_CHANGE_AMBIG;
    if (r->status == 0) {
        memcpy(l->token, l->next_token, sizeof(l->token));
        l->flags &= (uint16_t)~LR_LF_CHANGE_AMBIG;
    } else if (r->status == LR_ELOST) {
        lose(l, LR_ELOST); /* the lost callback tells; it may free l */
        return;
    } else if (!definite_error(r->status) && (was_ambiguous || r->status != LR_EUNAVAIL)) {
        /* A timeout or a dropped connection: the store may hold either token
         * now, and a renewal under the wrong one would be refused. Resend the
         * same change (idempotent at the store) until it is definite, inside
         * validity; meanwhile the lease is in jeopardy and renewals wait. */
        l->flags |= LR_LF_CHANGE | LR_LF_CHANGE_AMBIG;
        renew_failed(l, r->status); /* may free l: last use */
        return;
    } else {
        /* Certainly not applied (not sent, or refused): the old token holds. */
        l->last_error = r->status;
    }
    if (fresh_ms(l) >= stop_at(l)) {
        lose(l, expiry_reason(l));
        return;
    }
    /* The timer sat at the stop point while the change was in flight. After
     * an ambiguous change, renewals waited: renew now. */
    if (was_ambiguous && l->state == LR_LEASE_JEOPARDY && !(l->flags & LR_LF_NO_AUTO))
        arm(l, now_ms(l), false);
    else
        schedule_renewal(l);
    if (cbs(l)->changed)
        cbs(l)->changed(l, r->status); /* may free l: last use */
}

void lr__lease_complete(struct lr_lease *l, const struct lr__result *r)
{
    const struct lr_manager *m = l->mgr;
    if (m && m->ops->intercept && m->ops->intercept(m->be, l, r))
        return; /* a decorator took it: lr__lease_deliver follows, or cancel() */
    lr__lease_deliver(l, r);
}

void lr__lease_deliver(struct lr_lease *l, const struct lr__result *r)
{
    enum lr__req_kind op = (enum lr__req_kind)l->req.kind;
    l->req.kind = LR_OP_NONE;
    switch (op) {
    case LR_OP_BREAK:
        break_done(l, r->status);
        break;
    case LR_OP_CHANGE:
        change_done(l, r);
        break;
    case LR_OP_ACQUIRE:
        acquire_done(l, r);
        break;
    case LR_OP_RENEW:
        if (held(l))
            renew_done(l, r);
        break;
    case LR_OP_RELEASE:
        if (l->state == LR_LEASE_RELEASING)
            finish_release(l, r->status == LR_ELOST ? LR_ELOST : r->status);
        break;
    case LR_OP_INSPECT:
        inspect_done(l, r); /* frees l */
        break;
    default:
        break;
    }
}

/* ------------------------------------------------------------- inspect */

/* A name for a lease or an inspection of @m: 1..LR_NAME_MAX bytes (its
 * length in *len), while the manager is open. */
static int name_check(const struct lr_manager *m, const char *name, size_t *len)
{
    if (!m || !name || !*name)
        return -EINVAL;
    *len = strlen(name);
    if (*len > LR_NAME_MAX)
        return -ENAMETOOLONG;
    return m->closing ? -ECANCELED : 0;
}

/* One lr_manager_inspect in flight: a carrier lease (never held, on no list
 * of leases, counted against no capacity) takes the request through the
 * backend like any lease request; the backend fills @out. */
struct lr__inspect {
    struct lr_lease l;
    struct lr_list link; /* on the manager's inspects */
    void (*done)(void *arg, int status, const struct lr_inspect *info);
    void *arg;
    char name[LR_NAME_MAX + 1];
    struct lr__inspect_out out;
};

struct lr__inspect_out *lr__inspect_out(struct lr_lease *l)
{
    if (!l || l->req.kind != LR_OP_INSPECT)
        return NULL;
    return &lr_container_of(l, struct lr__inspect, l)->out;
}

bool lr__inspect_add_meta(struct lr__inspect_out *o, const char *k, size_t kl, const char *v,
                          size_t vl)
{
    if (!kl || memchr(k, 0, kl) || memchr(v, 0, vl) ||
        kl + vl + 2 > sizeof(o->meta) - o->meta_len)
        return false;
    char *p = o->meta + o->meta_len;
    memmove(p, k, kl); /* the Redis reply parser stages the key right there */
    p[kl] = '\0';
    memcpy(p + kl + 1, v, vl);
    p[kl + 1 + vl] = '\0';
    o->meta_len += kl + vl + 2;
    return true;
}

const char *lr__manager_identity(const struct lr_manager *m, size_t *len)
{
    if (len)
        *len = m->identity_len;
    return m->identity;
}

const char *lr_manager_identity(const struct lr_manager *m)
{
    return m->identity;
}

static void inspect_done(struct lr_lease *l, const struct lr__result *r)
{
    struct lr__inspect *in = lr_container_of(l, struct lr__inspect, l);
    lr_list_unlink(&in->link);
    struct lr__inspect_out *o = &in->out;
    struct lr_inspect info = {.name = in->name, .ttl_ms = -1, .holder = "", .identity = "",
                              .token = ""};
    if (r->status == 0 && o->held) {
        o->token[sizeof(o->token) - 1] = '\0';
        o->identity[sizeof(o->identity) - 1] = '\0';
        info.held = 1;
        info.identity = o->identity;
        info.token = o->token;
        info.holder = o->identity[0] ? o->identity : o->token;
        info.fence = o->fence;
        info.ttl_ms = o->ttl_ms;
        info.meta = o->meta_len ? o->meta : NULL;
        info.meta_len = o->meta_len;
    }
    if (in->done)
        in->done(in->arg, r->status, r->status == 0 ? &info : NULL);
    lr__free(in);
}

int lr_manager_inspect(struct lr_manager *m, const char *name,
                       void (*done)(void *arg, int status, const struct lr_inspect *info),
                       void *arg)
{
    size_t n;
    int rc = name_check(m, name, &n);
    if (rc < 0 || !done)
        return rc < 0 ? rc : -EINVAL;
    struct lr__inspect *in = lr__calloc(1, sizeof(*in));
    if (!in)
        return -ENOMEM;
    memcpy(in->name, name, n + 1);
    in->done = done;
    in->arg = arg;
    in->out.ttl_ms = -1;
    struct lr_lease *l = &in->l;
    lr_timer_init(m->loop, &l->timer, lease_timer); /* never armed */
    lr_list_init(&l->req.link);
    lr_list_init(&l->mgr_link);
    l->mgr = m;
    l->ttl_ms = m->o.ttl_ms;
    l->flags = LR_LF_INIT;
    l->name = in->name;
    l->name_len = (uint8_t)n;
    rc = submit(l, LR_OP_INSPECT);
    if (rc < 0) {
        lr__free(in);
        return rc;
    }
    lr_list_push_tail(&m->inspects, &in->link);
    return 0;
}

/* lr_manager_close: every inspection still in flight is abandoned at the
 * store and told -ECANCELED, before the close's own callback. */
static void inspects_cancel(struct lr_manager *m)
{
    for (struct lr_list *n = m->inspects.next; n != &m->inspects; n = n->next) {
        struct lr__inspect *in = lr_container_of(n, struct lr__inspect, link);
        drop_request(&in->l);
    }
}

static void inspects_finish(struct lr_manager *m, bool tell)
{
    struct lr_list *n;
    while ((n = lr_list_pop(&m->inspects))) {
        struct lr__inspect *in = lr_container_of(n, struct lr__inspect, link);
        if (tell)
            in->done(in->arg, -ECANCELED, NULL);
        lr__free(in);
    }
}

/* --------------------------------------------------------------- manager */

static const struct lr__backend_ops *const backends[] = {
    &lr__mem_backend, &lr__redis_backend, &lr__rediss_backend, &lr__azblob_backend, &lr__cosmos_backend, &lr__etcd_backend,
    &lr__chaos_backend, &lr__unix_backend, &lr__redis_sentinel_backend,
    &lr__rediss_sentinel_backend, &lr__redis_cluster_backend};

int lr__backend_find(const char *scheme, const struct lr__backend_ops **ops,
                     const struct lr__backend_ops **store)
{
    const char *plus = strchr(scheme, '+');
    size_t n = plus ? (size_t)(plus - scheme) : strlen(scheme);
    *ops = *store = NULL;
    /* a whole scheme first ("redis+sentinel" is a backend, not a decorator) */
    for (size_t i = 0; i < sizeof(backends) / sizeof(backends[0]); i++)
        if (!backends[i]->decorator && !strcmp(backends[i]->scheme, scheme)) {
            *ops = *store = backends[i];
            return 0;
        }
    for (size_t i = 0; i < sizeof(backends) / sizeof(backends[0]); i++)
        if (strlen(backends[i]->scheme) == n && !memcmp(backends[i]->scheme, scheme, n))
            *ops = backends[i];
    if (!*ops || (plus && !(*ops)->decorator))
        return -EPROTONOSUPPORT;
    if (!(*ops)->decorator) {
        *store = *ops;
        return 0;
    }
    if (!plus) /* "chaos://": wraps nothing */
        return -EINVAL;
    const struct lr__backend_ops *inner, *inner_store;
    int rc = lr__backend_find(plus + 1, &inner, &inner_store);
    if (rc < 0)
        return rc;
    if (inner->decorator) /* one decorator at a time */
        return -EINVAL;
    *store = inner;
    return 0;
}

static int check_opts(struct lr_manager_opts *o, const struct lr__backend_ops *ops)
{
    if (!o->ttl_ms)
        o->ttl_ms = DEFAULT_TTL_MS;
    if (o->renew_fraction == 0)
        o->renew_fraction = 1.0 / 3.0;
    if (o->renew_jitter == 0)
        o->renew_jitter = 0.1;
    if (o->drift == 0)
        o->drift = 0.01;
    if (!o->margin_ms)
        o->margin_ms = 2;
    if (!o->retry_base_ms)
        o->retry_base_ms = 50;
    if (!o->retry_cap_ms)
        o->retry_cap_ms = 2000;
    if (!o->connections)
        o->connections = 1;
    if (!o->max_leases)
        o->max_leases = DEFAULT_MAX_LEASES;
    if (!o->batch_max)
        o->batch_max = DEFAULT_BATCH;
    if (!o->request_timeout_ms) {
        o->request_timeout_ms = o->ttl_ms / 4 < 2000 ? o->ttl_ms / 4 : 2000;
        if (!o->request_timeout_ms)
            o->request_timeout_ms = 1;
    }
    if (!o->inflight_max) {
        uint64_t w = (uint64_t)o->request_timeout_ms * 25u;
        o->inflight_max = w < 4096 ? (uint32_t)w : 4096;
    }
    if (o->ttl_ms < ops->min_ttl_ms || o->ttl_ms > ops->max_ttl_ms)
        return -ERANGE;
    if (!(o->renew_fraction > 0 && o->renew_fraction <= 0.9) ||
        !(o->renew_jitter >= 0 && o->renew_jitter < 1) || !(o->drift >= 0 && o->drift < 0.5) ||
        o->retry_cap_ms < o->retry_base_ms || o->connections > 64 || o->batch_max > 1024 ||
        o->max_leases > (1u << 26) || o->request_timeout_ms >= o->ttl_ms / 2 + 1)
        return -EINVAL;
    /* The first renewal must come before validity ends, with room to retry. */
    double guard = o->loss_guard_ms ? o->loss_guard_ms : (o->ttl_ms / 100 > 2 ? o->ttl_ms / 100 : 2);
    double validity_ms = (double)o->ttl_ms * (1 - o->drift) - o->margin_ms - guard;
    double renew_at = (double)o->ttl_ms * o->renew_fraction * (1 + o->renew_jitter);
    if (!o->renew_coalesce_ms) {
        double step = 1000.0 / (ops->grid_points_per_sec ? ops->grid_points_per_sec
                                                          : RENEW_GRID_POINTS_PER_SEC);
        double room = (validity_ms - renew_at) / RENEW_GRID_ROOM_SHARE;
        if (step > room)
            step = room;
        if (step > o->ttl_ms / 10)
            step = o->ttl_ms / 10;
        o->renew_coalesce_ms = step >= 1 ? (uint32_t)step : 1;
    }
    if (validity_ms <= 0 || renew_at + o->renew_coalesce_ms >= validity_ms ||
        o->renew_coalesce_ms > o->ttl_ms / 10)
        return -EINVAL;
    return 0;
}

/* The manager's identity: @want checked (1..LR_IDENTITY_MAX bytes, no
 * control bytes), or "HOST:PID" with the host name cut so that ":PID" fits. */
static int identity_of(const char *want, char out[LR_IDENTITY_MAX + 1])
{
    if (want) {
        size_t n = strlen(want);
        if (!n || n > LR_IDENTITY_MAX)
            return -EINVAL;
        for (size_t i = 0; i < n; i++)
            if ((unsigned char)want[i] < 0x20 || want[i] == 0x7f)
                return -EINVAL;
        memcpy(out, want, n + 1);
        return 0;
    }
    char host[256], pid[24];
    if (gethostname(host, sizeof(host)) < 0 || !host[0])
        strcpy(host, "localhost");
    host[sizeof(host) - 1] = '\0';
    int pl = snprintf(pid, sizeof(pid), ":%ld", (long)getpid());
    size_t hl = strlen(host), room = LR_IDENTITY_MAX - (size_t)pl;
    if (hl > room)
        hl = room;
    for (size_t i = 0; i < hl; i++) /* a host name has none, but be sure */
        if ((unsigned char)host[i] < 0x20 || host[i] == 0x7f)
            host[i] = '?';
    memcpy(out, host, hl);
    memcpy(out + hl, pid, (size_t)pl + 1);
    return 0;
}

int lr_manager_new(struct lr_manager **out, struct lr_loop *loop, const char *uri,
                   const struct lr_manager_opts *opts)
{
    if (!out || !loop || !uri)
        return -EINVAL;
    *out = NULL;
    struct lr__uri u;
    int rc = lr__uri_parse(&u, uri);
    if (rc < 0)
        return rc;
    const struct lr__backend_ops *ops, *store;
    rc = lr__backend_find(u.scheme, &ops, &store);
    if (rc < 0)
        return rc;
    struct lr_manager_opts o = {0};
    if (opts)
        o = *opts;
    rc = check_opts(&o, store);
    if (rc < 0)
        return rc;
    char id[LR_IDENTITY_MAX + 1];
    rc = identity_of(o.identity, id);
    if (rc < 0)
        return rc;
    struct lr_manager *m = lr__calloc(1, sizeof(*m));
    if (!m)
        return -ENOMEM;
    m->loop = loop;
    m->o = o;
    m->identity_len = (uint8_t)strlen(id);
    memcpy(m->identity, id, (size_t)m->identity_len + 1);
    m->o.identity = m->identity; /* never a pointer into the caller's memory */
    lr_list_init(&m->inspects);
    m->ops = ops;
    m->store = store;
    lr_list_init(&m->leases);
    lr__task_init(&m->close_task, NULL);
    m->pool_used = sizeof(m->pool); /* empty: the first token fills it */
    if (fill_random((uint8_t *)m->rng, sizeof(m->rng)) < 0 || (!m->rng[0] && !m->rng[1]))
        m->rng[0] = 0x9e3779b97f4a7c15ull ^ loop->now_ns;
    rc = ops->create(&m->be, m, &u);
    explicit_bzero(&u, sizeof(u)); /* the URI may carry a password */
    if (rc < 0) {
        lr__free(m);
        return rc;
    }
    *out = m;
    return 0;
}

static void close_done_task(struct lr__task *t)
{
    struct lr_manager *m = lr_container_of(t, struct lr_manager, close_task);
    inspects_finish(m, true);
    if (m->close_cb)
        m->close_cb(m, m->close_arg); /* may free m: last use */
}

static void backend_closed(struct lr_manager *m)
{
    m->close_task.run = close_done_task;
    lr__loop_defer(m->loop, &m->close_task);
}

/* lr_manager_close: @l (off the manager's list) is forgotten. */
static void forget(struct lr_lease *l)
{
    struct lr_manager *m = l->mgr;
    leave_session(l);
    drop_request(l);
    lr_timer_stop(&l->timer);
    set_state(l, LR_LEASE_IDLE);
    lr__free(l->meta); /* what the lease owns goes with the manager */
    l->meta = NULL;
    l->meta_len = 0;
    l->mgr = NULL; /* detached: deinit/free still work, nothing else does */
    m->stats.leases--;
}

int lr_manager_close(struct lr_manager *m, void (*done)(struct lr_manager *m, void *arg), void *arg)
{
    if (m->closing)
        return -EALREADY;
    m->closing = true;
    m->close_cb = done;
    m->close_arg = arg;
    struct lr_list *n;
    while ((n = lr_list_pop(&m->leases)))
        forget(lr_container_of(n, struct lr_lease, mgr_link));
    inspects_cancel(m);
    m->ops->close(m->be, backend_closed);
    return 0;
}

void lr_manager_free(struct lr_manager *m)
{
    if (!m)
        return;
    lr__task_cancel(&m->close_task);
    inspects_finish(m, false);
    m->ops->free(m->be);
    names_free_all(&m->names);
    lr__free(m);
}

int lr_manager_release_all(struct lr_manager *m)
{
    int n = 0;
    struct lr_list *it = m->leases.next;
    while (it != &m->leases) {
        struct lr_lease *l = lr_container_of(it, struct lr_lease, mgr_link);
        it = it->next;
        if (held(l) || l->state == LR_LEASE_ACQUIRING) {
            lr_lease_release(l);
            n++;
        }
    }
    return n;
}

/* ----------------------------------------------------------------- leases */

int lr_lease_init(struct lr_manager *m, struct lr_lease *l, const char *name,
                  const struct lr_lease_opts *opts)
{
    size_t n;
    int rc = l ? name_check(m, name, &n) : -EINVAL;
    if (rc < 0)
        return rc;
    uint32_t ttl = opts && opts->ttl_ms ? opts->ttl_ms : m->o.ttl_ms;
    if (ttl < m->store->min_ttl_ms || ttl > m->store->max_ttl_ms)
        return -ERANGE;
    if (m->stats.leases >= m->o.max_leases)
        return -ENOSPC;
    char *copy = names_alloc(&m->names, n);
    if (!copy)
        return -ENOMEM;
    memcpy(copy, name, n + 1);
    memset(l, 0, sizeof(*l));
    lr_timer_init(m->loop, &l->timer, lease_timer);
    lr__timer_set_urgent(&l->timer); /* losses first in a late pass */
    lr_list_init(&l->req.link);
    l->mgr = m;
    l->cbs = opts && opts->cbs ? opts->cbs : m->o.cbs;
    l->ttl_ms = ttl;
    l->flags = LR_LF_INIT;
    if (opts && opts->no_auto_renew)
        l->flags |= LR_LF_NO_AUTO;
    l->name = copy;
    l->name_len = (uint8_t)n;
    lr_list_push_tail(&m->leases, &l->mgr_link);
    m->stats.leases++;
    return 0;
}

void lr_lease_deinit(struct lr_lease *l)
{
    if (!l || !(l->flags & LR_LF_INIT))
        return;
    leave_session(l);
    drop_request(l);
    lr_timer_stop(&l->timer);
    if (l->mgr) {
        set_state(l, LR_LEASE_IDLE);
        lr_list_unlink(&l->mgr_link);
        l->mgr->stats.leases--;
        names_put(&l->mgr->names, (char *)l->name, l->name_len);
    }
    /* Detached by lr_manager_close, the name stays in the arena until
     * lr_manager_free; either way the lease lets go of it. */
    l->name = "";
    l->name_len = 0;
    lr__free(l->meta);
    l->meta = NULL;
    l->meta_len = 0;
    l->flags = 0;
}

int lr_lease_new(struct lr_manager *m, struct lr_lease **out, const char *name,
                 const struct lr_lease_opts *opts)
{
    if (!out)
        return -EINVAL;
    *out = NULL;
    struct lr_lease *l = lr__malloc(sizeof(*l));
    if (!l)
        return -ENOMEM;
    int rc = lr_lease_init(m, l, name, opts);
    if (rc < 0) {
        lr__free(l);
        return rc;
    }
    l->flags |= LR_LF_OWNED;
    *out = l;
    return 0;
}

void lr_lease_free(struct lr_lease *l)
{
    if (!l)
        return;
    bool owned = l->flags & LR_LF_OWNED;
    lr_lease_deinit(l);
    if (owned)
        lr__free(l);
}

/* Metadata lives in one block "k\0v\0k\0v\0..." of meta_len bytes. */
static const char *meta_find(const struct lr_lease *l, const char *key, size_t *off, size_t *len)
{
    size_t i = 0;
    while (i < l->meta_len) {
        const char *k = l->meta + i;
        size_t kl = strlen(k);
        const char *v = k + kl + 1;
        size_t vl = strlen(v);
        if (!strcmp(k, key)) {
            *off = i;
            *len = kl + vl + 2;
            return v;
        }
        i += kl + vl + 2;
    }
    return NULL;
}

int lr_lease_set_meta(struct lr_lease *l, const char *key, const char *value)
{
    if (!l || !(l->flags & LR_LF_INIT) || !key || !*key)
        return -EINVAL;
    if (l->state != LR_LEASE_IDLE && l->state != LR_LEASE_LOST)
        return -EBUSY;
    /* "owner", "fence" and "identity" are the lease's own fields in the store */
    if (!strcmp(key, "owner") || !strcmp(key, "fence") || !strcmp(key, "identity"))
        return -EINVAL;
    size_t off = 0, old = 0;
    bool found = meta_find(l, key, &off, &old) != NULL;
    size_t add = value ? strlen(key) + strlen(value) + 2 : 0;
    size_t total = l->meta_len - (found ? old : 0) + add;
    if (total > LR_META_MAX)
        return -EMSGSIZE;
    char *nm = total ? lr__malloc(total) : NULL;
    if (total && !nm)
        return -ENOMEM;
    size_t w = 0;
    if (l->meta) {
        memcpy(nm, l->meta, found ? off : l->meta_len);
        w = found ? off : l->meta_len;
        if (found) {
            memcpy(nm + w, l->meta + off + old, l->meta_len - off - old);
            w += l->meta_len - off - old;
        }
    }
    if (value) {
        size_t kl = strlen(key) + 1, vl = strlen(value) + 1;
        memcpy(nm + w, key, kl);
        memcpy(nm + w + kl, value, vl);
        w += kl + vl;
    }
    lr__free(l->meta);
    l->meta = nm;
    l->meta_len = (uint16_t)w;
    return 0;
}

const char *lr_lease_meta(const struct lr_lease *l, const char *key)
{
    size_t off, len;
    return key ? meta_find(l, key, &off, &len) : NULL;
}

int lr_lease_acquire(struct lr_lease *l, uint32_t timeout_ms)
{
    if (!l || !(l->flags & LR_LF_INIT))
        return -EINVAL;
    if (!l->mgr || l->mgr->closing)
        return -ECANCELED;
    if (l->state != LR_LEASE_IDLE && l->state != LR_LEASE_LOST)
        return -EBUSY;
    new_token(l->mgr, l->token);
    set_state(l, LR_LEASE_ACQUIRING);
    l->attempt = 0;
    l->last_error = 0;
    l->flags &= (uint16_t)~(LR_LF_HOLDER | LR_LF_HOLDER_HEX | LR_LF_HOLDER_REF);
    l->flags &= (uint16_t)~(LR_LF_TRY | LR_LF_UNAVAIL | LR_LF_RELEASE_PENDING);
    if (!timeout_ms)
        l->flags |= LR_LF_TRY;
    l->acquire_ns = now_ns(l);
    l->acquire_wait_ms = timeout_ms;
    /* The first attempt goes out from the timer phase: never inside this call,
     * and every acquire of this iteration leaves in one send. */
    arm(l, now_ms(l), false);
    return 0;
}

int lr_lease_try_acquire(struct lr_lease *l)
{
    return lr_lease_acquire(l, 0);
}

int lr_lease_release(struct lr_lease *l)
{
    if (!l || !(l->flags & LR_LF_INIT) || !l->mgr)
        return 0;
    switch (l->state) {
    case LR_LEASE_ACQUIRING:
        set_state(l, LR_LEASE_RELEASING);
        if (l->req.kind == LR_OP_NONE) {
            l->last_error = 0;
            arm(l, now_ms(l), false); /* released callback next pass */
        }
        /* else: the acquire in flight decides (acquire_done / attempt_failed) */
        return 0;
    case LR_LEASE_HELD:
    case LR_LEASE_JEOPARDY:
        start_release(l);
        return 0;
    default:
        return 0;
    }
}

int lr_lease_break(struct lr_lease *l, uint32_t break_period_ms)
{
    if (!l || !(l->flags & LR_LF_INIT))
        return -EINVAL;
    if (!l->mgr || l->mgr->closing)
        return -ECANCELED;
    if ((l->state != LR_LEASE_IDLE && l->state != LR_LEASE_LOST) || l->req.kind != LR_OP_NONE ||
        (l->flags & LR_LF_BREAK))
        return -EBUSY;
    if (break_period_ms > 60000)
        return -ERANGE;
    l->break_ms = break_period_ms;
    l->flags |= LR_LF_BREAK;
    arm(l, now_ms(l), false); /* goes out from the timer phase, never inside this call */
    return 0;
}

int lr_lease_change(struct lr_lease *l)
{
    if (!l || !(l->flags & LR_LF_INIT))
        return -EINVAL;
    if (!held(l) || !l->mgr || l->req.kind != LR_OP_NONE || (l->flags & LR_LF_CHANGE))
        return -EBUSY;
    l->flags &= (uint16_t)~(LR_LF_HOLDER | LR_LF_HOLDER_HEX | LR_LF_HOLDER_REF); /* held: it is stale */
    new_token(l->mgr, l->next_token);
    l->flags |= LR_LF_CHANGE;
    arm(l, now_ms(l), false);
    return 0;
}

int lr_lease_renew(struct lr_lease *l)
{
    if (!l || !(l->flags & LR_LF_INIT))
        return -EINVAL;
    if (!held(l) || !l->mgr)
        return -EBUSY;
    if (l->req.kind == LR_OP_NONE)
        arm(l, now_ms(l), false);
    return 0;
}

void lr_lease_set_auto_renew(struct lr_lease *l, int on)
{
    if (!l || !(l->flags & LR_LF_INIT))
        return;
    if (on)
        l->flags &= (uint16_t)~LR_LF_NO_AUTO;
    else
        l->flags |= LR_LF_NO_AUTO;
    if (l->mgr && held(l) && l->req.kind == LR_OP_NONE && l->valid_until)
        schedule_renewal(l);
}

enum lr_lease_state lr_lease_state(const struct lr_lease *l)
{
    if (held(l) && mono_ms() >= stop_at(l))
        return LR_LEASE_LOST; /* the lost callback comes on the next pass */
    return (enum lr_lease_state)l->state;
}

int64_t lr_lease_remaining_ms(const struct lr_lease *l)
{
    if (!l || !(l->flags & LR_LF_INIT) || !l->mgr || !held(l))
        return 0;
    uint64_t stop = stop_at(l), now = mono_ms();
#ifdef LR_PLANT_STALE_STATE /* planted bug, fault suite's test build only (tests/fault) */
    now = l->mgr->loop->now_ms;
#endif
    return stop > now ? (int64_t)(stop - now) : 0;
}

const char *lr_lease_state_name(enum lr_lease_state s)
{
    static const char *const names[] = {"idle", "acquiring", "held", "jeopardy", "releasing",
                                        "lost"};
    return (unsigned)s < sizeof(names) / sizeof(names[0]) ? names[s] : "invalid";
}

const char *lr_lease_name(const struct lr_lease *l)
{
    return l->name;
}

uint64_t lr_lease_fence(const struct lr_lease *l)
{
    return l->fence;
}

uint64_t lr_lease_valid_until(const struct lr_lease *l)
{
    return held(l) ? lease_valid_until(l) : 0;
}

uint64_t lr_lease_last_renewed(const struct lr_lease *l)
{
    if (l && (l->flags & LR_LF_SESSION))
        return l->sess->last_renewed;
    return l->last_renewed;
}

const char *lr_lease_holder(const struct lr_lease *l)
{
    static _Thread_local char text[33];
    if (!(l->flags & LR_LF_HOLDER))
        return "";
    if (l->flags & LR_LF_HOLDER_REF) {
        uint32_t gen;
        memcpy(&gen, l->holder, 4);
        const struct lr__holder_slot *h =
            l->mgr ? &l->mgr->holders[(uint8_t)l->holder[4] % LR_HOLDER_SLOTS] : NULL;
        return h && h->gen == gen ? h->text : l->holder + 5;
    }
    if (!(l->flags & LR_LF_HOLDER_HEX))
        return l->holder;
    lr__hex((const uint8_t *)l->holder, 16, text);
    text[32] = '\0';
    return text;
}

int64_t lr_lease_holder_ttl_ms(const struct lr_lease *l)
{
    return (l->flags & LR_LF_HOLDER) ? l->holder_ttl_ms : -1;
}

int lr_lease_last_error(const struct lr_lease *l)
{
    return l->last_error;
}

const struct lr_lease_stats *lr_lease_stats(const struct lr_lease *l)
{
    return &l->stats;
}

const char *lr_manager_backend(const struct lr_manager *m)
{
    return m->ops->scheme;
}
