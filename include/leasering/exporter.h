/* SPDX-License-Identifier: MIT */
/*
 * leasering/exporter.h - a Prometheus metrics and health endpoint on the loop.
 *
 * A small HTTP/1.1 server that runs on an lr_loop (accept, recv and send are
 * io_uring requests; nothing blocks) and serves:
 *   GET /metrics  the Prometheus text format, version 0.0.4, every metric
 *                 named leasering_* with a `manager` label per lr_exporter_add
 *   GET /healthz  200 {"status":"ok"} while every manager's store is
 *                 reachable, none has a lease in jeopardy and none is
 *                 closing; else 503 {"status":"unhealthy","manager":"...",
 *                 "reason":"closing"|"store unreachable"|"lease in jeopardy"}
 *                 (the first manager found, reasons in that order; "store
 *                 unreachable" is lr_manager_stats()->store_unreachable)
 * Other paths: 404; other methods: 405; a malformed request: 400 and close;
 * a request head over LR_EXPORTER_REQ_MAX bytes: 431 and close. Keep-alive
 * (HTTP/1.1 default, "Connection: close" honoured; HTTP/1.0 closes).
 *
 * Metrics (label manager="...", from struct lr_manager_stats):
 *   leasering_acquisitions_total
 *   leasering_acquisition_failures_total{reason="conflict"|"timeout"|
 *       "unavailable"|"auth"|"other"}    (acquire_fail_*)
 *   leasering_acquire_conflicts_total    (conflicts: per attempt)
 *   leasering_renewals_total, leasering_renewal_failures_total
 *   leasering_losses_total{reason="lost"|"expired"|"unavailable"} (lost_*)
 *   leasering_releases_total
 *   leasering_leases, leasering_leases_held, leasering_leases_in_jeopardy
 *   leasering_connections_up, leasering_requests_in_flight (gauges)
 *   leasering_store_requests_total, leasering_reconnects_total
 *   leasering_store_errors_total{kind="unreachable"|"auth"|"tls"|"timeout"|
 *       "protocol"|"server"|"config"|"other"}   (store_err_*)
 *   histograms in seconds: leasering_acquire_duration_seconds,
 *   leasering_renew_latency_seconds, leasering_timer_lateness_seconds (from
 *   the manager's lr_hist, folded into fixed buckets 100 us .. 10 s).
 *
 * Bounds: at most LR_EXPORTER_MAX_CONN connections (one more is accepted and
 * closed at once); each has fixed input and output buffers made at
 * lr_exporter_new/lr_exporter_add; a connection that has not completed a
 * request (or drained a response) within LR_EXPORTER_DEADLINE_MS of its
 * accept or of its last response is closed. A scrape allocates nothing.
 */
#ifndef LEASERING_EXPORTER_H
#define LEASERING_EXPORTER_H

#include <leasering/common.h>

#ifdef __cplusplus
extern "C" {
#endif

#define LR_EXPORTER_MAX_CONN 16
#define LR_EXPORTER_REQ_MAX 4096
#define LR_EXPORTER_DEADLINE_MS 10000

struct lr_exporter;
struct lr_loop;
struct lr_manager;

/*
 * lr_exporter_new - listen on @listen ("host:port" with an IPv4 host, or
 * ":port" for every interface; port 0 picks a free one, see
 * lr_exporter_port) and serve on @loop.
 * Returns: 0; -EINVAL (bad address); -ENOMEM; the socket call's -errno.
 * Allocates: yes (the exporter and its connection buffers).
 * Context: the loop's thread.
 */
LR_API int lr_exporter_new(struct lr_exporter **out, struct lr_loop *loop, const char *listen);

/*
 * lr_exporter_add - export @m's counters under label manager="@label"
 * (1..63 bytes of [A-Za-z0-9_.:-]). The manager must outlive the exporter.
 * Call it before clients connect: -EBUSY while a response is being sent.
 * Returns: 0; -EINVAL; -ENOSPC (more than LR_EXPORTER_MAX_MANAGERS);
 * -ENOMEM (output buffers grow here, never per scrape).
 */
#define LR_EXPORTER_MAX_MANAGERS 32
LR_API int lr_exporter_add(struct lr_exporter *e, struct lr_manager *m, const char *label);

/* The bound TCP port (useful after listening on port 0). */
LR_API int lr_exporter_port(const struct lr_exporter *e);

/*
 * lr_exporter_free - close the listener and every connection and free.
 * Runs non-blocking loop passes (lr_loop_process) until the exporter's
 * io_uring requests have completed, so call it from the loop's thread
 * outside any callback.
 */
LR_API void lr_exporter_free(struct lr_exporter *e);

#ifdef __cplusplus
}
#endif
#endif
