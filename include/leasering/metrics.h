/* SPDX-License-Identifier: MIT */
/*
 * leasering/metrics.h - counters and fixed-size latency histograms.
 *
 * Histograms are log-linear (32 sub-buckets per power of two, so a quantile
 * is within ~3% of the true value), fixed in size, and never allocate.
 */
#ifndef LEASERING_METRICS_H
#define LEASERING_METRICS_H

#include <leasering/common.h>

#ifdef __cplusplus
extern "C" {
#endif

#define LR_HIST_SUB_BITS 5
#define LR_HIST_BUCKETS ((64 - LR_HIST_SUB_BITS) << LR_HIST_SUB_BITS)

struct lr_hist {
    uint64_t count;
    uint64_t sum;
    uint64_t max;
    uint32_t buckets[LR_HIST_BUCKETS];
};

/* Record @v. Allocates: never. */
LR_API void lr_hist_add(struct lr_hist *h, uint64_t v);
/* The value below which a fraction @q (0..1) of the recorded values lie
 * (the bucket's upper bound, never above the recorded max); 0 if empty. */
LR_API uint64_t lr_hist_quantile(const struct lr_hist *h, double q);
LR_API void lr_hist_reset(struct lr_hist *h);
/* The largest value that lands in bucket @b (0 <= b < LR_HIST_BUCKETS), to
 * print a histogram as "upper bound, count" pairs. Allocates: never. */
LR_API uint64_t lr_hist_bucket_max(unsigned b);

struct lr_manager;

/* A manager's running totals (lr_manager_stats()). */
struct lr_manager_stats {
    uint64_t acquired;         /* successful acquisitions */
    uint64_t acquire_failures; /* acquires that gave up */
    uint64_t conflicts;        /* attempts answered "held by someone else" */
    uint64_t renewals;         /* successful renewals */
    uint64_t renew_failures;   /* renewals that failed or timed out */
    uint64_t lost;             /* leases lost */
    uint64_t released;         /* releases completed */
    uint64_t requests;         /* store requests sent (a batched renewal counts once) */
    uint64_t renew_requests;   /* batched renewal requests sent (one EVALSHA each) */
    uint64_t renew_keys;       /* leases those carried: / renew_requests = keys per batch */
    uint64_t reconnects;       /* connections re-established after a failure */
    uint64_t request_timeouts; /* connections killed: a request unanswered and the store
                                * silent for a whole request timeout */
    uint32_t leases;           /* leases initialised on the manager */
    uint32_t held;             /* leases HELD or in JEOPARDY now */
    struct lr_hist renew_latency_us;  /* send to reply of successful renewals */
    struct lr_hist timer_lateness_us; /* how late renewal timers fired against their due time */
};

/* The manager's statistics; the pointer stays valid for the manager's life. */
LR_API const struct lr_manager_stats *lr_manager_stats(const struct lr_manager *m);

#ifdef __cplusplus
}
#endif
#endif
