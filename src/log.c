/* SPDX-License-Identifier: MIT */
/*
 * log.c - the process's log function and its rate limiter.
 *
 * Every line belongs to a kind: the hash of (level, text), or of (level,
 * "lease lost", reason) for lease losses, whose names differ. A fixed table
 * of kinds (open addressing, KIND_PROBES slots per key, the least recently
 * seen evicted, its count told first) remembers for each the start of its
 * window and how many lines it swallowed since. The first line of a kind
 * goes out; the next ones inside the window are counted; when the window is
 * over (seen by the loop's per-pass tick, the next line of the kind, or
 * lr_log_flush) the count goes out as one line and a new window starts.
 *
 * A budget of lines per window, for all kinds together, bounds what gets
 * through when more kinds than the table holds come at once (each would be
 * new every time): past it, lines are counted and told as one line.
 *
 * Invariants: `open_counts` is the number of kinds whose count is > 0, plus
 * one while the budget's count is (the tick's fast path reads only it); every field of the table
 * and the log function are read and written under `mu`; the log function is called with `mu`
 * released (it may call lr_set_log, or log from another thread). Lines are formatted into stack
 * buffers: nothing here allocates. Layer: below everything; knows no lease, loop or backend.
 */
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "log_int.h"
#include <leasering/error.h>

#define KINDS 64u
#define KIND_PROBES 8u
/* A swallowed line's text in a count line: room left for the count. */
#define COUNTED_TEXT_MAX (LR_LOG_LINE_MAX - 80)

struct kind {
    uint64_t key;      /* 0: a free slot */
    uint64_t start_ns; /* the window's start */
    uint64_t last_ns;  /* the last line of this kind (eviction order) */
    uint64_t count;    /* lines swallowed in this window */
    int level;
    int reason; /* lease lost: the reason */
    bool lost;  /* a lease-lost kind: text holds the first swallowed name */
    char text[LR_LOG_LINE_MAX];
};

/* Up to three lines decided under the lock, handed out after it. */
struct out {
    unsigned n;
    int level[3];
    char line[3][LR_LOG_LINE_MAX];
};

/* Lines told per window, whatever their kind (more kinds at once than the
 * table holds would otherwise each get through): past it, lines are only
 * counted, and the count told as one line when the window ends. */
#define BUDGET 100u
struct budget {
    uint64_t start_ns;
    unsigned told;
    int level;     /* the highest level swallowed */
    uint64_t over; /* lines swallowed past the budget */
};

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static struct kind kinds[KINDS];
static lr_log_fn log_fn;
static void *log_arg;
static _Atomic uint64_t window_ns = (uint64_t)LR_LOG_WINDOW_MS * 1000000u;
static atomic_bool enabled;
static atomic_int level_min = LR_LOG_INFO;
static atomic_uint open_counts;
static struct budget budget;

static uint64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* FNV-1a, 64 bits. */
static uint64_t hash(uint64_t h, const void *p, size_t n)
{
    const unsigned char *s = p;
    for (size_t i = 0; i < n; i++) {
        h ^= s[i];
        h *= 0x100000001b3ull;
    }
    return h;
}

static uint64_t kind_key(int level, const char *tag, const void *p, size_t n)
{
    uint64_t h = hash(0xcbf29ce484222325ull, &level, sizeof(level));
    h = hash(h, tag, strlen(tag) + 1);
    h = hash(h, p, n);
    return h ? h : 1;
}

/* Seconds from @start to @now, rounded, at least 1. */
static unsigned long long window_s(uint64_t start, uint64_t now)
{
    uint64_t s = (now - start + 500000000u) / 1000000000u;
    return s ? s : 1;
}

static uint64_t window(void)
{
    return atomic_load_explicit(&window_ns, memory_order_relaxed);
}

/* The budget's count as a line in @o; a new budget window starts. */
static void tell_over(uint64_t now, struct out *o)
{
    unsigned long long n = budget.over;
    snprintf(o->line[o->n], LR_LOG_LINE_MAX,
             "%llu more log line%s not shown in the last %llu s (more than %u lines)", n,
             n == 1 ? "" : "s", window_s(budget.start_ns, now), BUDGET);
    o->level[o->n++] = budget.level;
    budget.over = 0;
    budget.level = 0;
    budget.start_ns = now;
    budget.told = 0;
    atomic_fetch_sub_explicit(&open_counts, 1, memory_order_relaxed);
}

/* May a line standing for @lines lines at @level go out now? If not, they
 * join the budget's count. (A budget window that ended unseen by a tick
 * tells its count in @o first.) */
static bool budget_take(uint64_t now, uint64_t lines, int level, struct out *o)
{
    if (now - budget.start_ns >= window()) {
        if (budget.over)
            tell_over(now, o);
        budget.start_ns = now;
        budget.told = 0;
    }
    if (budget.told < BUDGET) {
        budget.told++;
        return true;
    }
    if (budget.over == 0)
        atomic_fetch_add_explicit(&open_counts, 1, memory_order_relaxed);
    budget.over += lines;
    if (level > budget.level)
        budget.level = level;
    return false;
}

/* @k's count as a line in @o (or, past the budget, into the budget's
 * count); the count is then closed. */
static void tell_count(struct kind *k, uint64_t now, struct out *o)
{
    unsigned long long n = k->count, secs = window_s(k->start_ns, now);
    k->count = 0;
    atomic_fetch_sub_explicit(&open_counts, 1, memory_order_relaxed);
    if (!budget_take(now, n, k->level, o))
        return;
    char *line = o->line[o->n];
    o->level[o->n++] = k->level;
    if (k->lost)
        snprintf(line, LR_LOG_LINE_MAX,
                 "%llu more lease%s lost: %s (%s) in the last %llu s, first: %.*s", n,
                 n == 1 ? "" : "s", lr_err_name(k->reason), lr_strerror(k->reason), secs,
                 COUNTED_TEXT_MAX - 160, k->text);
    else
        snprintf(line, LR_LOG_LINE_MAX, "%.*s (repeated %llu time%s in the last %llu s)",
                 COUNTED_TEXT_MAX, k->text, n, n == 1 ? "" : "s", secs);
}

/* The slot of @key: its own, a free one, or the least recently seen of its
 * probe run (whose open count goes to @o first). */
static struct kind *slot_of(uint64_t key, uint64_t now, struct out *o, bool *fresh)
{
    struct kind *victim = NULL;
    for (unsigned i = 0; i < KIND_PROBES; i++) {
        struct kind *k = &kinds[(key + i) % KINDS];
        if (k->key == key) {
            *fresh = false;
            return k;
        }
        if (!k->key) {
            victim = k;
            break;
        }
        if (!victim || k->last_ns < victim->last_ns)
            victim = k;
    }
    if (victim->key && victim->count)
        tell_count(victim, now, o);
    memset(victim, 0, offsetof(struct kind, text));
    victim->key = key;
    victim->start_ns = now;
    *fresh = true;
    return victim;
}

/* A line of kind @k (@fresh: new in the table) arrives at @now: true when it
 * goes out (after the count of a window that ended unseen, put in @o), false
 * when it is counted (by its kind, or past the budget). */
static bool admit(struct kind *k, bool fresh, uint64_t now, struct out *o)
{
    k->last_ns = now;
    if (!fresh && now - k->start_ns < window()) {
        if (k->count++ == 0)
            atomic_fetch_add_explicit(&open_counts, 1, memory_order_relaxed);
        return false;
    }
    if (!fresh && k->count) /* the window ended unseen by a tick */
        tell_count(k, now, o);
    k->start_ns = now;
    return budget_take(now, 1, k->level, o);
}

/* Release `mu` and hand @o's lines to the log function (read under it). */
static void unlock_and_emit(const struct out *o)
{
    lr_log_fn fn = log_fn;
    void *arg = log_arg;
    pthread_mutex_unlock(&mu);
    for (unsigned i = 0; i < o->n && fn; i++)
        fn(arg, o->level[i], o->line[i]);
}

/* Lock `mu` and find the kind @key, at @level, for a line arriving now
 * (*@now); @o starts empty. *@fresh: the kind is new in the table. */
static struct kind *lock_kind(uint64_t key, int level, struct out *o, bool *fresh, uint64_t *now)
{
    o->n = 0;
    pthread_mutex_lock(&mu);
    *now = mono_ns(); /* under the lock: windows never start after "now" */
    struct kind *k = slot_of(key, *now, o, fresh);
    if (*fresh)
        k->level = level;
    return k;
}

bool lr__log_on(int level)
{
    return atomic_load_explicit(&enabled, memory_order_relaxed) &&
           level >= atomic_load_explicit(&level_min, memory_order_relaxed);
}

void lr__log_text(int level, const char *text)
{
    if (!lr__log_on(level))
        return;
    size_t len = strnlen(text, LR_LOG_LINE_MAX - 1);
    struct out o;
    bool fresh;
    uint64_t now;
    struct kind *k = lock_kind(kind_key(level, "", text, len), level, &o, &fresh, &now);
    if (fresh) {
        memcpy(k->text, text, len);
        k->text[len] = '\0';
    }
    if (admit(k, fresh, now, &o)) {
        memcpy(o.line[o.n], text, len);
        o.line[o.n][len] = '\0';
        o.level[o.n++] = level;
    }
    unlock_and_emit(&o);
}

void lr__log(int level, const char *fmt, ...)
{
    if (!lr__log_on(level))
        return;
    char line[LR_LOG_LINE_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    lr__log_text(level, line);
}

void lr__log_lease_lost(const char *name, size_t len, int reason)
{
    if (!lr__log_on(LR_LOG_WARN))
        return;
    if (len > COUNTED_TEXT_MAX - 160)
        len = COUNTED_TEXT_MAX - 160;
    struct out o;
    bool fresh;
    uint64_t now;
    struct kind *k = lock_kind(kind_key(LR_LOG_WARN, "lease lost", &reason, sizeof(reason)),
                               LR_LOG_WARN, &o, &fresh, &now);
    if (fresh) {
        k->lost = true;
        k->reason = reason;
    }
    if (admit(k, fresh, now, &o)) {
        snprintf(o.line[o.n], LR_LOG_LINE_MAX, "lease %.*s lost: %s (%s)", (int)len, name,
                 lr_err_name(reason), lr_strerror(reason));
        o.level[o.n++] = LR_LOG_WARN;
    } else if (k->count == 1) { /* the first one swallowed names the storm */
        memcpy(k->text, name, len);
        k->text[len] = '\0';
    }
    unlock_and_emit(&o);
}

/* Tell open counts, each as its own line: those whose window is over, or
 * (@all) every one; the budget's last. A told count starts a new window, so
 * a storm that goes on gives one count line per window. */
static void tell_due(bool all)
{
    for (unsigned i = 0; i <= KINDS; i++) {
        struct out o;
        o.n = 0;
        pthread_mutex_lock(&mu);
        uint64_t now = mono_ns();
        struct kind *k = &kinds[i < KINDS ? i : 0];
        if (i == KINDS) {
            if (budget.over && (all || now - budget.start_ns >= window()))
                tell_over(now, &o);
        } else if (k->key && k->count && (all || now - k->start_ns >= window())) {
            tell_count(k, now, &o);
            k->start_ns = now;
        }
        unlock_and_emit(&o);
    }
}

void lr__log_tick(void)
{
    if (atomic_load_explicit(&open_counts, memory_order_relaxed) == 0)
        return;
    /* A pass every millisecond would scan the table every millisecond
     * during a storm: look once per tenth of a window at most. */
    static _Atomic uint64_t next_look;
    uint64_t now = mono_ns();
    if (now < atomic_load_explicit(&next_look, memory_order_relaxed))
        return;
    atomic_store_explicit(&next_look, now + window() / 10, memory_order_relaxed);
    tell_due(false);
}

void lr_log_flush(void)
{
    if (atomic_load_explicit(&open_counts, memory_order_relaxed))
        tell_due(true);
}

void lr_set_log(void (*fn)(void *arg, int level, const char *msg), void *arg)
{
    pthread_mutex_lock(&mu);
    log_fn = fn;
    log_arg = fn ? arg : NULL;
    atomic_store_explicit(&enabled, fn != NULL, memory_order_relaxed);
    pthread_mutex_unlock(&mu);
}

void lr_set_log_level(int min_level)
{
    atomic_store_explicit(&level_min, min_level, memory_order_relaxed);
}

const char *lr_log_level_name(int level)
{
    if (level >= LR_LOG_ERROR)
        return "error";
    if (level >= LR_LOG_WARN)
        return "warn";
    if (level >= LR_LOG_INFO)
        return "info";
    return "debug";
}

void lr__log_set_window_ms(uint32_t ms)
{
    atomic_store_explicit(&window_ns, (uint64_t)ms * 1000000u, memory_order_relaxed);
}

void lr__log_reset(void)
{
    pthread_mutex_lock(&mu);
    memset(kinds, 0, sizeof(kinds));
    memset(&budget, 0, sizeof(budget));
    atomic_store_explicit(&open_counts, 0, memory_order_relaxed);
    pthread_mutex_unlock(&mu);
}
