/* SPDX-License-Identifier: MIT */
/*
 * bench/wheel.c - ns per timer start, stop and expiry in leasering's wheel
 * with 1e3, 1e5 and 1e6 timers armed, against an indexed binary min-heap (the
 * timer queue a C programmer would reach for: libuv and many servers use
 * one). Both are driven through the same operations on a fake clock, so only
 * the data structures are compared. "restart" moves an armed timer to a new
 * deadline, which is what every lease renewal does. Deadlines are uniform over 10 s, like
 * lease renewals. Each figure is the median of several runs.
 *
 * --renew runs the pattern of leases renewed at density instead (issue 10):
 * N timers embedded in real struct lr_lease records, each re-armed from its
 * own expiry the way the lease core does it -- first at the lease's stop
 * point (the renewal is sent, arm(stop_at)), then, when the "reply" comes
 * after the batch, at TTL/3 +- 10% jitter rounded up to the 20 ms grid
 * (schedule_renewal) -- with the clock jumping from one deadline to the next
 * as the sleeping loop does. Figures: ns per expiry, re-arms included.
 *
 *   bench-wheel [--runs R] [--sizes 1000,100000,1000000]
 *   bench-wheel --renew [--runs R] [--sizes 100000] [--seconds S]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <leasering/lease.h>
#include "list.h"
#include "median.h"
#include "wheel_int.h"

#define SPAN_MS 10000u
#define EXTRA 1000u /* timers started/stopped per round on top of the N armed */

static uint64_t rng = 0x853c49e6748fea9bull;

static uint64_t rnd(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static double now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

/* ---- baseline: indexed binary min-heap ---- */

struct hnode {
    uint64_t deadline;
    size_t index; /* position in the heap array, or SIZE_MAX when idle */
};

struct heap {
    struct hnode **a;
    size_t n;
};

static inline void hswap(struct heap *h, size_t i, size_t j)
{
    struct hnode *t = h->a[i];
    h->a[i] = h->a[j];
    h->a[j] = t;
    h->a[i]->index = i;
    h->a[j]->index = j;
}

static void sift_up(struct heap *h, size_t i)
{
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (h->a[p]->deadline <= h->a[i]->deadline)
            break;
        hswap(h, i, p);
        i = p;
    }
}

static void sift_down(struct heap *h, size_t i)
{
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < h->n && h->a[l]->deadline < h->a[m]->deadline)
            m = l;
        if (r < h->n && h->a[r]->deadline < h->a[m]->deadline)
            m = r;
        if (m == i)
            return;
        hswap(h, i, m);
        i = m;
    }
}

static void heap_insert(struct heap *h, struct hnode *x, uint64_t deadline)
{
    x->deadline = deadline;
    x->index = h->n;
    h->a[h->n++] = x;
    sift_up(h, x->index);
}

static void heap_remove(struct heap *h, struct hnode *x)
{
    size_t i = x->index;
    if (i == SIZE_MAX)
        return;
    h->n--;
    if (i != h->n) {
        h->a[i] = h->a[h->n];
        h->a[i]->index = i;
        sift_down(h, i);
        sift_up(h, i);
    }
    x->index = SIZE_MAX;
}

/* ---- the runs ---- */

struct result {
    double start_ns, stop_ns, restart_ns, expire_ns;
};

#define RESTARTS 1000000u /* re-arms of already-armed timers, as renewals do */

static uint64_t *deadlines; /* the same random deadlines for both structures */

static void make_deadlines(size_t n, uint64_t base)
{
    for (size_t i = 0; i < n; i++)
        deadlines[i] = base + 1 + rnd() % SPAN_MS;
}

static struct result run_wheel(size_t n)
{
    struct result r;
    const uint64_t base = 1u << 20;
    struct lr__wheel *w = malloc(sizeof(*w));
    struct lr_timer *t = calloc(n + EXTRA, sizeof(*t));
    lr__wheel_init(w, base);
    for (size_t i = 0; i < n + EXTRA; i++)
        lr__timer_reset(&t[i]);
    make_deadlines(n + EXTRA, base);
    for (size_t i = 0; i < n; i++)
        lr__wheel_insert(w, &t[i], deadlines[i]);
    /* start/stop EXTRA timers on top of n, for enough rounds to time well */
    size_t rounds = 2000000 / EXTRA;
    double ts = 0, tp = 0;
    for (size_t k = 0; k < rounds; k++) {
        double a = now_ns();
        for (size_t i = n; i < n + EXTRA; i++)
            lr__wheel_insert(w, &t[i], deadlines[i] + k);
        double b = now_ns();
        for (size_t i = n; i < n + EXTRA; i++)
            lr__wheel_remove(w, &t[i]);
        double c = now_ns();
        ts += b - a;
        tp += c - b;
    }
    r.start_ns = ts / (double)(rounds * EXTRA);
    r.stop_ns = tp / (double)(rounds * EXTRA);
    double a0 = now_ns();
    for (size_t k = 0; k < RESTARTS; k++) {
        size_t i = (k * 7919u) % n;
        lr__wheel_insert(w, &t[i], deadlines[i] + (k & 1023));
    }
    r.restart_ns = (now_ns() - a0) / RESTARTS;
    /* expire all n, waking at each next deadline as the loop does */
    struct lr_list batch;
    lr_list_init(&batch);
    size_t fired = 0;
    double a = now_ns();
    while (fired < n) {
        lr__wheel_advance(w, lr__wheel_next(w), &batch);
        while (lr__wheel_batch_pop(&batch))
            fired++;
    }
    r.expire_ns = (now_ns() - a) / (double)n;
    free(t);
    free(w);
    return r;
}

static struct result run_heap(size_t n)
{
    struct result r;
    const uint64_t base = 1u << 20;
    struct heap h = {.a = malloc((n + EXTRA) * sizeof(struct hnode *)), .n = 0};
    struct hnode *t = calloc(n + EXTRA, sizeof(*t));
    for (size_t i = 0; i < n + EXTRA; i++)
        t[i].index = SIZE_MAX;
    make_deadlines(n + EXTRA, base);
    for (size_t i = 0; i < n; i++)
        heap_insert(&h, &t[i], deadlines[i]);
    size_t rounds = 2000000 / EXTRA;
    double ts = 0, tp = 0;
    for (size_t k = 0; k < rounds; k++) {
        double a = now_ns();
        for (size_t i = n; i < n + EXTRA; i++)
            heap_insert(&h, &t[i], deadlines[i] + k);
        double b = now_ns();
        for (size_t i = n; i < n + EXTRA; i++)
            heap_remove(&h, &t[i]);
        double c = now_ns();
        ts += b - a;
        tp += c - b;
    }
    r.start_ns = ts / (double)(rounds * EXTRA);
    r.stop_ns = tp / (double)(rounds * EXTRA);
    double a0 = now_ns();
    for (size_t k = 0; k < RESTARTS; k++) {
        size_t i = (k * 7919u) % n;
        heap_remove(&h, &t[i]);
        heap_insert(&h, &t[i], deadlines[i] + (k & 1023));
    }
    r.restart_ns = (now_ns() - a0) / RESTARTS;
    size_t fired = 0;
    double a = now_ns();
    while (fired < n) {
        uint64_t now = h.a[0]->deadline;
        while (h.n && h.a[0]->deadline <= now) {
            heap_remove(&h, h.a[0]);
            fired++;
        }
    }
    r.expire_ns = (now_ns() - a) / (double)n;
    free(t);
    free(h.a);
    return r;
}

/* ---- the renewal pattern (--renew) ---- */

#define RENEW_TTL_MS 3000u
#define RENEW_GRID_MS 20u
#define RENEW_STOP_MS (RENEW_TTL_MS * 97u / 100u) /* validity less drift and guard */

/* TTL/3 after @from, +- 10%, rounded up onto the grid (schedule_renewal). */
static uint64_t renew_deadline(uint64_t from)
{
    uint64_t interval = RENEW_TTL_MS / 3u, j = interval / 10u;
    uint64_t when = from + interval - j + rnd() % (2 * j + 1);
    return (when + RENEW_GRID_MS - 1) / RENEW_GRID_MS * RENEW_GRID_MS;
}

/* ns per expiry over @seconds of simulated time; *@expiries gets the count. */
static double run_renew(size_t n, unsigned seconds, uint64_t *expiries)
{
    const uint64_t base = 1u << 20;
    struct lr__wheel *w = malloc(sizeof(*w));
    struct lr_lease *l = calloc(n, sizeof(*l));
    struct lr_timer **sent = malloc(n * sizeof(*sent));
    if (!w || !l || !sent)
        exit(1);
    lr__wheel_init(w, base);
    /* acquired over the first renew interval, as a ramp-up leaves them */
    for (size_t i = 0; i < n; i++) {
        lr__timer_reset(&l[i].timer);
        lr__wheel_insert(w, &l[i].timer, renew_deadline(base - rnd() % (RENEW_TTL_MS / 3u)));
    }
    struct lr_list batch;
    lr_list_init(&batch);
    uint64_t fired = 0, end = base + (uint64_t)seconds * 1000u;
    double a = now_ns();
    for (;;) {
        uint64_t now = lr__wheel_next(w);
        if (now > end)
            break;
        lr__wheel_advance(w, now, &batch);
        size_t k = 0;
        struct lr_timer *t;
        while ((t = lr__wheel_batch_pop(&batch))) {
            lr__wheel_insert(w, t, now + RENEW_STOP_MS); /* sent: lost if no reply */
            sent[k++] = t;
        }
        for (size_t i = 0; i < k; i++) /* the replies */
            lr__wheel_insert(w, sent[i], renew_deadline(now));
        fired += k;
    }
    double ns = (now_ns() - a) / (double)(fired ? fired : 1);
    *expiries = fired;
    free(sent);
    free(l);
    free(w);
    return ns;
}

static int main_renew(int runs, const size_t *sizes, int nsizes, unsigned seconds)
{
    printf("renewal pattern: TTL %u ms, re-armed at TTL/3 +- 10%% on a %u ms grid, timers in "
           "%zu-byte leases, %u s simulated, median of %d runs\n",
           RENEW_TTL_MS, RENEW_GRID_MS, sizeof(struct lr_lease), seconds, runs);
    printf("%-9s %12s %10s\n", "leases", "expiries", "ns/expiry");
    for (int s = 0; s < nsizes; s++) {
        double v[99];
        uint64_t count = 0;
        for (int k = 0; k < runs; k++)
            v[k] = run_renew(sizes[s], seconds, &count);
        printf("%-9zu %12llu %10.1f\n", sizes[s], (unsigned long long)count, median(v, runs));
    }
    return 0;
}

int main(int argc, char **argv)
{
    int runs = 5;
    size_t sizes[8] = {1000, 100000, 1000000};
    int nsizes = 3;
    int renew = 0;
    unsigned seconds = 30;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--renew")) {
            renew = 1;
        } else if (!strcmp(argv[i], "--seconds") && i + 1 < argc) {
            seconds = (unsigned)atoi(argv[++i]);
        } else if (!strcmp(argv[i], "--runs") && i + 1 < argc) {
            runs = atoi(argv[++i]);
        } else if (!strcmp(argv[i], "--sizes") && i + 1 < argc) {
            nsizes = 0;
            for (char *s = strtok(argv[++i], ","); s && nsizes < 8; s = strtok(NULL, ","))
                sizes[nsizes++] = strtoull(s, NULL, 10);
        } else {
            fprintf(stderr, "usage: %s [--renew [--seconds S]] [--runs R] [--sizes N,N,...]\n",
                    argv[0]);
            return 2;
        }
    }
    if (runs < 1 || runs > 99 || nsizes < 1 || seconds < 1) {
        fprintf(stderr, "bench-wheel: --runs must be 1..99, --sizes non-empty, --seconds >= 1\n");
        return 2;
    }
    if (renew)
        return main_renew(runs, sizes, nsizes, seconds);
    size_t maxn = 0;
    for (int s = 0; s < nsizes; s++)
        if (sizes[s] > maxn)
            maxn = sizes[s];
    deadlines = malloc((maxn + EXTRA) * sizeof(*deadlines));
    if (!deadlines)
        return 1;
    printf("timer queue, ns per operation, median of %d runs (deadlines uniform over %u ms)\n",
           runs, SPAN_MS);
    printf("%-9s %-6s %8s %8s %8s %8s\n", "armed", "queue", "start", "stop", "restart",
           "expiry");
    for (int s = 0; s < nsizes; s++) {
        double ws[99], wp[99], wr[99], we[99], hs[99], hp[99], hr[99], he[99];
        for (int k = 0; k < runs; k++) {
            /* alternate so drift on a shared machine hits both alike */
            struct result w = run_wheel(sizes[s]);
            struct result h = run_heap(sizes[s]);
            ws[k] = w.start_ns, wp[k] = w.stop_ns, wr[k] = w.restart_ns, we[k] = w.expire_ns;
            hs[k] = h.start_ns, hp[k] = h.stop_ns, hr[k] = h.restart_ns, he[k] = h.expire_ns;
        }
        double mws = median(ws, runs), mwp = median(wp, runs), mwr = median(wr, runs);
        double mwe = median(we, runs);
        double mhs = median(hs, runs), mhp = median(hp, runs), mhr = median(hr, runs);
        double mhe = median(he, runs);
        printf("%-9zu %-6s %8.1f %8.1f %8.1f %8.1f\n", sizes[s], "wheel", mws, mwp, mwr, mwe);
        printf("%-9zu %-6s %8.1f %8.1f %8.1f %8.1f\n", sizes[s], "heap", mhs, mhp, mhr, mhe);
        printf("%-9zu %-6s %7.1fx %7.1fx %7.1fx %7.1fx\n", sizes[s], "heap/w", mhs / mws,
               mhp / mwp, mhr / mwr, mhe / mwe);
    }
    free(deadlines);
    return 0;
}
