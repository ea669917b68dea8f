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
    /* Appended later: a minor release adds fields only here, at the end
     * (docs/ABI.md); read them through the pointer lr_manager_stats gives. */
    /* acquire_failures by the status acquire_failed got: */
    uint64_t acquire_fail_conflict; /* LR_ECONFLICT: held by someone else */
    uint64_t acquire_fail_timeout;  /* -ETIMEDOUT: no answer within the request timeout */
    uint64_t acquire_fail_unavail;  /* LR_EUNAVAIL, LR_EEOF, a reset: the store not reached */
    uint64_t acquire_fail_auth;     /* LR_EAUTH, LR_ETLS: credentials or certificate refused */
    uint64_t acquire_fail_other;    /* anything else (LR_ESTORE, LR_EBADREPLY, ...) */
    /* lost by the reason the lost callback got: */
    uint64_t lost_taken;   /* LR_ELOST: the store says the lease is someone else's */
    uint64_t lost_expired; /* LR_EEXPIRED: validity ran out, renewals failing or unanswered */
    uint64_t lost_unavail; /* LR_EUNAVAIL: validity ran out, the store unreachable */
    /* Connection-level failures told through lr_manager_last_error and the
     * store_error callback, by kind: */
    uint64_t store_err_unreachable; /* refused, reset, closed, name not resolved, not primary */
    uint64_t store_err_auth;        /* LR_EAUTH */
    uint64_t store_err_tls;         /* LR_ETLS */
    uint64_t store_err_timeout;     /* -ETIMEDOUT: request timeout, WAIT not confirmed */
    uint64_t store_err_protocol;    /* LR_EBADREPLY, -EPROTO: a reply we cannot read */
    uint64_t store_err_server;      /* LR_ESTORE: the store refused (OOM, a Sentinel, ...) */
    uint64_t store_err_config;      /* warnings ("warning: ...") and refused options */
    uint64_t store_err_other;
    /* Gauges from the backend, refreshed by each lr_manager_stats() call: */
    uint32_t connections_up;     /* store connections ready to carry requests */
    uint32_t requests_in_flight; /* lease requests sent to the store and not yet answered */
    uint32_t store_unreachable;  /* 1: no connection up, or the last connect failed */
    uint32_t reserved0;
    struct lr_hist acquire_duration_us; /* lr_lease_acquire to acquired or acquire_failed */
};

/* The manager's statistics; the pointer stays valid for the manager's life.
 * Counters and histograms are updated as things happen (plain increments on
 * the loop thread); the backend gauges (connections_up, requests_in_flight,
 * store_unreachable) are read from the backend by this call, so read the
 * struct right after calling it. Allocates: never.  Context: loop thread. */
LR_API const struct lr_manager_stats *lr_manager_stats(const struct lr_manager *m);

#ifdef __cplusplus
}
#endif
#endif
