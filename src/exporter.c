/* SPDX-License-Identifier: MIT */
/*
 * exporter.c - the Prometheus exporter: a bounded HTTP/1.1 server on the loop.
 *
 * Design.
 * - Listening: a blocking-free TCP socket made at lr_exporter_new; one
 *   single-shot IORING_OP_ACCEPT is kept in flight (re-armed from its
 *   completion), so accepting costs no thread and no poll.
 * - Connections: a fixed array of LR_EXPORTER_MAX_CONN slots, each with an
 *   input buffer of LR_EXPORTER_REQ_MAX bytes (made at new) and an output
 *   buffer sized at lr_exporter_add for the managers exported (the metrics
 *   text per manager is bounded: fixed metric set, fixed histogram buckets).
 *   An accept with every slot busy closes the new socket at once: memory
 *   never grows with clients.
 * - Per connection, at most one recv (into the slot's own buffer, not the
 *   loop's provided buffers: a scrape client is slow and must not pin a
 *   shared buffer) or one send is in flight. A request is read until its
 *   head ends ("\r\n\r\n"); a head that fills the buffer is answered 431 and
 *   the connection closed. Requests with a body (Content-Length other than 0,
 *   or Transfer-Encoding) are 400 and close: nothing here takes a body.
 *   Pipelined bytes after a head are kept and parsed after the response.
 * - Request parsing: src/http.c parses *responses* (status lines) only, so
 *   the request line and headers are parsed here, strictly: METHOD SP
 *   origin-form-target SP HTTP/1.x CRLF, header lines "name: value" with a
 *   token name; anything else is 400 and close.
 * - Deadline: each slot has an lr_timer armed at accept and re-armed after
 *   each response is sent; when it fires the connection is closed whatever it
 *   is doing (slowloris, a reader that never drains the response). The loop
 *   never waits on a client: every step is a completion.
 * - Closing: shutdown(2) makes the pending recv/send complete; the fd is
 *   closed and the slot reused once its op has no completion in flight.
 * - Rendering: /metrics is written into the slot's output buffer with no
 *   allocation (fmt.h digits, fixed strings); lr_hist histograms are folded
 *   into fixed Prometheus buckets (seconds). /healthz reads the managers'
 *   lease lists for jeopardy.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stddef.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <leasering/exporter.h>
#include <leasering/lease.h>
#include <leasering/metrics.h>
#include <leasering/timer.h>
#include "alloc_int.h"
#include "exporter_int.h"
#include "fmt.h"
#include "lease_int.h"
#include "loop_int.h"

#define LABEL_MAX 63
/* Output bytes per exported manager plus the fixed part: the fixed metric
 * set renders to ~9 KiB for one manager with every value at its widest,
 * HELP and TYPE lines included (test widest_scrape_fits). */
#define OUT_PER_MANAGER 12288
#define OUT_BASE 4096
#define ACCEPT_RETRY_MS 100

enum { C_FREE, C_READING, C_WRITING, C_CLOSING };

struct conn {
    struct lr_exporter *e;
    int fd;
    int state;
    bool close_after; /* close once the response is sent */
    struct lr__op op; /* the one recv or send in flight */
    struct lr_timer deadline;
    size_t in_len;
    size_t out_len, out_sent;
    char *out;
    char in[LR_EXPORTER_REQ_MAX];
};

struct exported {
    struct lr_manager *m;
    char label[LABEL_MAX + 1];
};

struct lr_exporter {
    struct lr_loop *loop;
    int listen_fd;
    int port;
    bool closing;
    struct lr__op accept_op;
    struct lr__op cancel_op; /* lr_exporter_free's cancel of the accept */
    struct lr_timer accept_retry;
    unsigned nmgr;
    size_t out_cap;
    uint64_t deadline_ms;
    struct exported mgr[LR_EXPORTER_MAX_MANAGERS];
    struct conn conns[LR_EXPORTER_MAX_CONN];
};

static void arm_accept(struct lr_exporter *e);
static void accept_retry_fired(struct lr_timer *t);
static void conn_recv(struct conn *c);

void lr__exporter_set_deadline(struct lr_exporter *e, uint64_t ms)
{
    e->deadline_ms = ms;
}

/* ---- connection life ---- */

static void conn_release_if_idle(struct conn *c)
{
    if (c->state != C_CLOSING || c->op.inflight)
        return;
    close(c->fd);
    c->fd = -1;
    c->state = C_FREE;
}

static void conn_close(struct conn *c)
{
    if (c->state == C_FREE || c->state == C_CLOSING)
        return;
    lr_timer_stop(&c->deadline);
    c->state = C_CLOSING;
    /* Wakes a pending recv/send: it completes, then the slot is released. */
    shutdown(c->fd, SHUT_RDWR);
    conn_release_if_idle(c);
}

static void deadline_fired(struct lr_timer *t)
{
    conn_close(t->data);
}

static void arm_deadline(struct conn *c)
{
    lr_timer_start(&c->deadline, lr_loop_now_ms(c->e->loop) + c->e->deadline_ms);
}

/* ---- output ---- */

struct out {
    char *p, *end;
    bool overflow;
};

static void put(struct out *o, const char *s, size_t n)
{
    if (o->overflow || (size_t)(o->end - o->p) < n) {
        o->overflow = true;
        return;
    }
    memcpy(o->p, s, n);
    o->p += n;
}

static void puts_(struct out *o, const char *s)
{
    put(o, s, strlen(s));
}

static void put_u64(struct out *o, uint64_t v)
{
    unsigned d = lr_u64_digits(v);
    if (o->overflow || (size_t)(o->end - o->p) < d) {
        o->overflow = true;
        return;
    }
    o->p = lr_put_u64(o->p, v, d);
}

/* A microsecond value as seconds with six decimals (no floating point). */
static void put_us_as_s(struct out *o, uint64_t us)
{
    char frac[7];
    uint64_t f = us % 1000000;
    for (int i = 5; i >= 0; i--) {
        frac[i] = (char)('0' + f % 10);
        f /= 10;
    }
    frac[6] = '.';
    put_u64(o, us / 1000000);
    put(o, &frac[6], 1);
    put(o, frac, 6);
}

/* "name" "suffix" {manager="x" -- the caller closes the label set. */
static void series(struct out *o, const char *name, const char *suffix, const struct exported *x)
{
    puts_(o, name);
    puts_(o, suffix);
    puts_(o, "{manager=\"");
    puts_(o, x->label);
    put(o, "\"", 1);
}

/* One sample line: name{manager="x",extra} value. @extra may be NULL. */
static void sample(struct out *o, const char *name, const struct exported *x, const char *extra,
                   uint64_t v)
{
    series(o, name, "", x);
    if (extra) {
        put(o, ",", 1);
        puts_(o, extra);
    }
    put(o, "} ", 2);
    put_u64(o, v);
    put(o, "\n", 1);
}

static void family(struct out *o, const char *name, const char *type, const char *help)
{
    puts_(o, "# HELP ");
    puts_(o, name);
    put(o, " ", 1);
    puts_(o, help);
    puts_(o, "\n# TYPE ");
    puts_(o, name);
    put(o, " ", 1);
    puts_(o, type);
    put(o, "\n", 1);
}

/* Prometheus bucket bounds, microseconds. */
static const uint64_t hist_le_us[] = {100,    250,    500,    1000,    2500,    5000,   10000,
                                      25000,  50000,  100000, 250000,  500000,  1000000,
                                      2500000, 5000000, 10000000};
#define N_LE (sizeof(hist_le_us) / sizeof(hist_le_us[0]))

/* An lr_hist (microseconds) as a Prometheus histogram in seconds. A bucket of
 * the log-linear histogram counts toward the first bound at or above its
 * upper edge, so a cumulative count never includes a value above its bound. */
static void histogram(struct out *o, const char *name, const struct exported *x,
                      const struct lr_hist *h)
{
    uint64_t cum = 0;
    unsigned b = 0;
    for (unsigned i = 0; i < N_LE; i++) {
        while (b < LR_HIST_BUCKETS && lr_hist_bucket_max(b) <= hist_le_us[i])
            cum += h->buckets[b++];
        series(o, name, "_bucket", x);
        puts_(o, ",le=\"");
        put_us_as_s(o, hist_le_us[i]);
        puts_(o, "\"} ");
        put_u64(o, cum);
        put(o, "\n", 1);
    }
    series(o, name, "_bucket", x);
    puts_(o, ",le=\"+Inf\"} ");
    put_u64(o, h->count);
    put(o, "\n", 1);
    series(o, name, "_sum", x);
    put(o, "} ", 2);
    put_us_as_s(o, h->sum);
    put(o, "\n", 1);
    series(o, name, "_count", x);
    put(o, "} ", 2);
    put_u64(o, h->count);
    put(o, "\n", 1);
}

static uint32_t jeopardy_count(const struct lr_manager *m)
{
    uint32_t n = 0;
    for (const struct lr_list *it = m->leases.next; it != &m->leases; it = it->next) {
        const struct lr_lease *l = lr_container_of(it, struct lr_lease, mgr_link);
        n += l->state == LR_LEASE_JEOPARDY;
    }
    return n;
}

#define EACH_MGR for (unsigned i = 0; i < e->nmgr; i++)
#define ST (&e->mgr[i].m->stats)

/* One value of a labelled family: the label pair and where the counter is. */
struct labelled {
    const char *label;
    size_t off; /* a uint64_t in struct lr_manager_stats */
};
#define LBL(l, field) {l, offsetof(struct lr_manager_stats, field)}

static const struct labelled acquire_fail_reasons[] = {
    LBL("reason=\"conflict\"", acquire_fail_conflict),
    LBL("reason=\"timeout\"", acquire_fail_timeout),
    LBL("reason=\"unavailable\"", acquire_fail_unavail),
    LBL("reason=\"auth\"", acquire_fail_auth),
    LBL("reason=\"other\"", acquire_fail_other),
};

static const struct labelled loss_reasons[] = {
    LBL("reason=\"lost\"", lost_taken),
    LBL("reason=\"expired\"", lost_expired),
    LBL("reason=\"unavailable\"", lost_unavail),
};

static const struct labelled store_error_kinds[] = {
    LBL("kind=\"unreachable\"", store_err_unreachable),
    LBL("kind=\"auth\"", store_err_auth),
    LBL("kind=\"tls\"", store_err_tls),
    LBL("kind=\"timeout\"", store_err_timeout),
    LBL("kind=\"protocol\"", store_err_protocol),
    LBL("kind=\"server\"", store_err_server),
    LBL("kind=\"config\"", store_err_config),
    LBL("kind=\"other\"", store_err_other),
};

/* A counter family with one sample per manager and label value. */
static void labelled_counter(struct lr_exporter *e, struct out *o, const char *name,
                             const char *help, const struct labelled *v, size_t n)
{
    family(o, name, "counter", help);
    EACH_MGR
    for (size_t k = 0; k < n; k++) {
        uint64_t x;
        memcpy(&x, (const char *)ST + v[k].off, sizeof x);
        sample(o, name, &e->mgr[i], v[k].label, x);
    }
}
#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

static void render_metrics(struct lr_exporter *e, struct out *o)
{
    EACH_MGR lr__manager_read_gauges(e->mgr[i].m);
    family(o, "leasering_acquisitions_total", "counter", "Leases acquired.");
    EACH_MGR sample(o, "leasering_acquisitions_total", &e->mgr[i], NULL, ST->acquired);
    labelled_counter(e, o, "leasering_acquisition_failures_total",
                     "Acquisitions that gave up, by the status acquire_failed got.",
                     acquire_fail_reasons, NELEM(acquire_fail_reasons));
    family(o, "leasering_acquire_conflicts_total", "counter",
           "Acquire attempts answered: held by someone else (an acquire that waits may "
           "count several).");
    EACH_MGR sample(o, "leasering_acquire_conflicts_total", &e->mgr[i], NULL, ST->conflicts);
    family(o, "leasering_renewals_total", "counter", "Successful renewals.");
    EACH_MGR sample(o, "leasering_renewals_total", &e->mgr[i], NULL, ST->renewals);
    family(o, "leasering_renewal_failures_total", "counter", "Renewals that failed or timed out.");
    EACH_MGR sample(o, "leasering_renewal_failures_total", &e->mgr[i], NULL, ST->renew_failures);
    labelled_counter(e, o, "leasering_losses_total",
                     "Leases lost, by reason (lost: the store says someone else's; expired: "
                     "validity ran out; unavailable: ran out with the store unreachable).",
                     loss_reasons, NELEM(loss_reasons));
    family(o, "leasering_releases_total", "counter", "Releases completed.");
    EACH_MGR sample(o, "leasering_releases_total", &e->mgr[i], NULL, ST->released);
    family(o, "leasering_leases", "gauge", "Leases initialised on the manager.");
    EACH_MGR sample(o, "leasering_leases", &e->mgr[i], NULL, ST->leases);
    family(o, "leasering_leases_held", "gauge", "Leases held now (in jeopardy included).");
    EACH_MGR sample(o, "leasering_leases_held", &e->mgr[i], NULL, ST->held);
    family(o, "leasering_leases_in_jeopardy", "gauge",
           "Leases held but with a renewal failed or overdue.");
    EACH_MGR sample(o, "leasering_leases_in_jeopardy", &e->mgr[i], NULL,
                    jeopardy_count(e->mgr[i].m));
    family(o, "leasering_connections_up", "gauge",
           "Store connections ready to carry requests.");
    EACH_MGR sample(o, "leasering_connections_up", &e->mgr[i], NULL, ST->connections_up);
    family(o, "leasering_requests_in_flight", "gauge",
           "Lease requests sent to the store and not yet answered.");
    EACH_MGR sample(o, "leasering_requests_in_flight", &e->mgr[i], NULL,
                    ST->requests_in_flight);
    family(o, "leasering_store_requests_total", "counter",
           "Store requests sent (a batched renewal counts once).");
    EACH_MGR sample(o, "leasering_store_requests_total", &e->mgr[i], NULL, ST->requests);
    family(o, "leasering_reconnects_total", "counter",
           "Store connections re-established after a failure.");
    EACH_MGR sample(o, "leasering_reconnects_total", &e->mgr[i], NULL, ST->reconnects);
    labelled_counter(e, o, "leasering_store_errors_total",
                     "Connection-level store errors (what lr_manager_last_error tells), by kind.",
                     store_error_kinds, NELEM(store_error_kinds));
    family(o, "leasering_acquire_duration_seconds", "histogram",
           "From lr_lease_acquire to acquired or acquire_failed.");
    EACH_MGR histogram(o, "leasering_acquire_duration_seconds", &e->mgr[i],
                       &ST->acquire_duration_us);
    family(o, "leasering_renew_latency_seconds", "histogram",
           "Send to reply of successful renewals.");
    EACH_MGR histogram(o, "leasering_renew_latency_seconds", &e->mgr[i], &ST->renew_latency_us);
    family(o, "leasering_timer_lateness_seconds", "histogram",
           "How late renewal timers fired against their due time.");
    EACH_MGR histogram(o, "leasering_timer_lateness_seconds", &e->mgr[i],
                       &ST->timer_lateness_us);
}

/* 0 and nothing written when healthy, else the reason written to @o. */
static int render_unhealthy(struct lr_exporter *e, struct out *o)
{
    EACH_MGR
    {
        const char *why = NULL;
        lr__manager_read_gauges(e->mgr[i].m);
        if (e->mgr[i].m->closing)
            why = "closing";
        else if (ST->store_unreachable)
            why = "store unreachable";
        else if (jeopardy_count(e->mgr[i].m))
            why = "lease in jeopardy";
        if (!why)
            continue;
        puts_(o, "{\"status\":\"unhealthy\",\"manager\":\"");
        puts_(o, e->mgr[i].label);
        puts_(o, "\",\"reason\":\"");
        puts_(o, why);
        puts_(o, "\"}\n");
        return 1;
    }
    return 0;
}

/* Write status line and headers, then the body made by @body (rendered in
 * place after a fixed-width Content-Length field, then the field filled). */
static void respond(struct conn *c, int status, const char *ctype,
                    void (*body)(struct lr_exporter *e, struct out *o, int *status),
                    const char *fixed_body)
{
    struct out o = {c->out, c->out + c->e->out_cap, false};
    static const char *const reasons[] = {[200] = "OK",
                                          [400] = "Bad Request",
                                          [404] = "Not Found",
                                          [405] = "Method Not Allowed",
                                          [431] = "Request Header Fields Too Large",
                                          [500] = "Internal Server Error",
                                          [503] = "Service Unavailable"};
    /* The status may change while rendering (healthz), so the head is written
     * after the body: render the body at a fixed offset first. */
    char *body_at = c->out + 256;
    struct out b = {body_at, c->out + c->e->out_cap, false};
    if (body)
        body(c->e, &b, &status);
    else
        puts_(&b, fixed_body);
    if (b.overflow) {
        status = 500;
        b.p = body_at;
        b.overflow = false;
        puts_(&b, "response too large\n");
    }
    size_t blen = (size_t)(b.p - body_at);
    puts_(&o, "HTTP/1.1 ");
    put_u64(&o, (uint64_t)status);
    put(&o, " ", 1);
    puts_(&o, reasons[status]);
    puts_(&o, "\r\nContent-Type: ");
    puts_(&o, ctype);
    puts_(&o, "\r\nContent-Length: ");
    put_u64(&o, blen);
    if (status == 405)
        puts_(&o, "\r\nAllow: GET, HEAD");
    if (c->close_after)
        puts_(&o, "\r\nConnection: close");
    puts_(&o, "\r\n\r\n");
    /* The head is < 256 bytes; slide the body down to follow it. */
    memmove(o.p, body_at, blen);
    c->out_len = (size_t)(o.p - c->out) + blen;
    c->out_sent = 0;
}

static void body_metrics(struct lr_exporter *e, struct out *o, int *status)
{
    (void)status;
    render_metrics(e, o);
}

static void body_health(struct lr_exporter *e, struct out *o, int *status)
{
    if (render_unhealthy(e, o))
        *status = 503;
    else
        puts_(o, "{\"status\":\"ok\"}\n");
}

#define TEXT "text/plain; charset=utf-8"
#define PROM "text/plain; version=0.0.4; charset=utf-8"
#define JSON "application/json"

/* ---- request parsing ---- */

static bool tchar(char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
           (ch && strchr("!#$%&'*+-.^_`|~", ch));
}

static bool eq_ci(const char *a, size_t n, const char *lit)
{
    return strlen(lit) == n && !strncasecmp(a, lit, n);
}

/* Parse the head in c->in[0..hlen) and write the response. */
static void handle_request(struct conn *c, size_t hlen)
{
    const char *p = c->in, *end = c->in + hlen;
    const char *m = p;
    while (p < end && tchar(*p))
        p++;
    size_t mlen = (size_t)(p - m);
    if (!mlen || p >= end || *p++ != ' ')
        goto bad;
    const char *t = p;
    while (p < end && *p > ' ' && *p != 0x7f)
        p++;
    size_t tlen = (size_t)(p - t);
    if (!tlen || *t != '/' || p >= end || *p++ != ' ')
        goto bad;
    if (end - p < 10 || memcmp(p, "HTTP/1.", 7) || (p[7] != '0' && p[7] != '1') || p[8] != '\r' ||
        p[9] != '\n')
        goto bad;
    bool http10 = p[7] == '0';
    c->close_after = http10;
    p += 10;
    /* Headers up to the empty line. */
    while (!(end - p >= 2 && p[0] == '\r' && p[1] == '\n')) {
        const char *n = p;
        while (p < end && tchar(*p))
            p++;
        size_t nlen = (size_t)(p - n);
        if (!nlen || p >= end || *p++ != ':')
            goto bad;
        while (p < end && (*p == ' ' || *p == '\t'))
            p++;
        const char *v = p;
        while (p < end && *p != '\r' && *p != '\n' && *p)
            p++;
        if (end - p < 2 || p[0] != '\r' || p[1] != '\n')
            goto bad;
        size_t vlen = (size_t)(p - v);
        while (vlen && (v[vlen - 1] == ' ' || v[vlen - 1] == '\t'))
            vlen--;
        p += 2;
        if (eq_ci(n, nlen, "connection")) {
            if (eq_ci(v, vlen, "close"))
                c->close_after = true;
            else if (eq_ci(v, vlen, "keep-alive"))
                c->close_after = false;
        } else if (eq_ci(n, nlen, "transfer-encoding")) {
            goto bad; /* no request here has a body */
        } else if (eq_ci(n, nlen, "content-length")) {
            if (!eq_ci(v, vlen, "0"))
                goto bad;
        }
    }
    bool head = mlen == 4 && !memcmp(m, "HEAD", 4);
    bool get = mlen == 3 && !memcmp(m, "GET", 3);
    /* The path, without a query string. */
    const char *q = memchr(t, '?', tlen);
    size_t plen = q ? (size_t)(q - t) : tlen;
    bool is_metrics = plen == 8 && !memcmp(t, "/metrics", 8);
    bool is_health = plen == 8 && !memcmp(t, "/healthz", 8);
    if (!is_metrics && !is_health)
        respond(c, 404, TEXT, NULL, "not found\n");
    else if (!get && !head)
        respond(c, 405, TEXT, NULL, "method not allowed\n");
    else if (is_metrics)
        respond(c, 200, PROM, body_metrics, NULL);
    else
        respond(c, 200, JSON, body_health, NULL);
    if (head) { /* the same head, no body */
        const char *h = memmem(c->out, c->out_len, "\r\n\r\n", 4);
        c->out_len = (size_t)(h + 4 - c->out);
    }
    return;
bad:
    c->close_after = true;
    respond(c, 400, TEXT, NULL, "bad request\n");
}

/* ---- I/O ---- */

static void conn_send(struct conn *c)
{
    struct io_uring_sqe *sqe = lr__loop_sqe(c->e->loop, &c->op);
    if (!sqe) {
        conn_close(c);
        return;
    }
    c->state = C_WRITING;
    io_uring_prep_send(sqe, c->fd, c->out + c->out_sent, c->out_len - c->out_sent,
                       MSG_NOSIGNAL);
}

/* Look for a complete head in the input; answer it, or read more. */
static void conn_process(struct conn *c)
{
    const char *h = memmem(c->in, c->in_len, "\r\n\r\n", 4);
    if (!h) {
        if (c->in_len == sizeof c->in) {
            c->close_after = true;
            respond(c, 431, TEXT, NULL, "request header too large\n");
            c->in_len = 0;
            conn_send(c);
            return;
        }
        conn_recv(c);
        return;
    }
    size_t hlen = (size_t)(h + 4 - c->in);
    handle_request(c, hlen);
    /* Keep pipelined bytes for the next request. */
    memmove(c->in, c->in + hlen, c->in_len - hlen);
    c->in_len -= hlen;
    conn_send(c);
}

static void conn_recv(struct conn *c)
{
    struct io_uring_sqe *sqe = lr__loop_sqe(c->e->loop, &c->op);
    if (!sqe) {
        conn_close(c);
        return;
    }
    c->state = C_READING;
    io_uring_prep_recv(sqe, c->fd, c->in + c->in_len, sizeof c->in - c->in_len, 0);
}

static void conn_complete(struct lr__op *op, int res, uint32_t flags)
{
    (void)flags;
    struct conn *c = lr_container_of(op, struct conn, op);
    if (c->state == C_CLOSING) {
        conn_release_if_idle(c);
        return;
    }
    if (res <= 0) { /* EOF or error */
        conn_close(c);
        conn_release_if_idle(c);
        return;
    }
    if (c->state == C_READING) {
        c->in_len += (size_t)res;
        conn_process(c);
        return;
    }
    c->out_sent += (size_t)res;
    if (c->out_sent < c->out_len) {
        conn_send(c);
        return;
    }
    if (c->close_after) {
        conn_close(c);
        conn_release_if_idle(c);
        return;
    }
    arm_deadline(c);
    conn_process(c);
}

static void accept_complete(struct lr__op *op, int res, uint32_t flags)
{
    (void)flags;
    struct lr_exporter *e = lr_container_of(op, struct lr_exporter, accept_op);
    if (e->closing) {
        if (res >= 0)
            close(res);
        return;
    }
    if (res >= 0) {
        struct conn *c = NULL;
        for (unsigned i = 0; i < LR_EXPORTER_MAX_CONN; i++)
            if (e->conns[i].state == C_FREE) {
                c = &e->conns[i];
                break;
            }
        if (!c) {
            close(res); /* over the cap: refused */
        } else {
            c->fd = res;
            c->in_len = 0;
            c->close_after = false;
            arm_deadline(c);
            conn_recv(c);
        }
    }
    /* A peer that gave up before the accept (-ECONNABORTED) costs nothing;
     * other errors (-EMFILE, -ENOBUFS) would repeat at once, so the next
     * accept waits a little rather than spin the loop. */
    if (res >= 0 || res == -ECONNABORTED || res == -EINTR)
        arm_accept(e);
    else
        lr_timer_start(&e->accept_retry, lr_loop_now_ms(e->loop) + ACCEPT_RETRY_MS);
}

static void accept_retry_fired(struct lr_timer *t)
{
    arm_accept(t->data);
}

static void arm_accept(struct lr_exporter *e)
{
    struct io_uring_sqe *sqe = lr__loop_sqe(e->loop, &e->accept_op);
    if (sqe)
        io_uring_prep_accept(sqe, e->listen_fd, NULL, NULL, SOCK_CLOEXEC);
}

static void cancel_complete(struct lr__op *op, int res, uint32_t flags)
{
    (void)op, (void)res, (void)flags;
}

/* ---- API ---- */

static int parse_listen(const char *s, struct sockaddr_in *sa)
{
    const char *colon = s ? strrchr(s, ':') : NULL;
    if (!colon)
        return -EINVAL;
    char host[64];
    size_t hl = (size_t)(colon - s);
    if (hl >= sizeof host)
        return -EINVAL;
    memcpy(host, s, hl);
    host[hl] = 0;
    char *endp;
    unsigned long port = strtoul(colon + 1, &endp, 10);
    if (!colon[1] || *endp || port > 65535)
        return -EINVAL;
    memset(sa, 0, sizeof *sa);
    sa->sin_family = AF_INET;
    sa->sin_port = htons((uint16_t)port);
    if (!hl || !strcmp(host, "0.0.0.0"))
        sa->sin_addr.s_addr = htonl(INADDR_ANY);
    else if (!strcmp(host, "localhost"))
        sa->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    else if (inet_pton(AF_INET, host, &sa->sin_addr) != 1)
        return -EINVAL;
    return 0;
}

int lr_exporter_new(struct lr_exporter **out, struct lr_loop *loop, const char *addr)
{
    struct sockaddr_in sa;
    if (!out || !loop || parse_listen(addr, &sa))
        return -EINVAL;
    struct lr_exporter *e = lr__calloc(1, sizeof *e);
    if (!e)
        return -ENOMEM;
    e->loop = loop;
    e->deadline_ms = LR_EXPORTER_DEADLINE_MS;
    e->out_cap = OUT_BASE;
    e->accept_op.complete = accept_complete;
    e->cancel_op.complete = cancel_complete;
    lr_timer_init(loop, &e->accept_retry, accept_retry_fired);
    e->accept_retry.data = e;
    int rc = 0;
    for (unsigned i = 0; i < LR_EXPORTER_MAX_CONN; i++) {
        struct conn *c = &e->conns[i];
        c->e = e;
        c->fd = -1;
        c->op.complete = conn_complete;
        lr_timer_init(loop, &c->deadline, deadline_fired);
        c->deadline.data = c;
        c->out = lr__malloc(e->out_cap);
        if (!c->out)
            rc = -ENOMEM;
    }
    e->listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (!rc && e->listen_fd < 0)
        rc = -errno;
    int one = 1;
    socklen_t sl = sizeof sa;
    if (!rc && (setsockopt(e->listen_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) ||
                bind(e->listen_fd, (struct sockaddr *)&sa, sizeof sa) ||
                listen(e->listen_fd, 64) ||
                getsockname(e->listen_fd, (struct sockaddr *)&sa, &sl)))
        rc = -errno;
    if (rc) {
        if (e->listen_fd >= 0)
            close(e->listen_fd);
        for (unsigned i = 0; i < LR_EXPORTER_MAX_CONN; i++)
            lr__free(e->conns[i].out);
        lr__free(e);
        return rc;
    }
    e->port = ntohs(sa.sin_port);
    arm_accept(e);
    *out = e;
    return 0;
}

int lr_exporter_add(struct lr_exporter *e, struct lr_manager *m, const char *label)
{
    if (!e || !m || !label)
        return -EINVAL;
    size_t n = strlen(label);
    if (!n || n > LABEL_MAX)
        return -EINVAL;
    for (size_t i = 0; i < n; i++)
        if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.:-",
                    label[i]))
            return -EINVAL;
    if (e->nmgr == LR_EXPORTER_MAX_MANAGERS)
        return -ENOSPC;
    /* Every slot's output buffer grows now, so a scrape never allocates; a
     * buffer the kernel may be sending from cannot be replaced. */
    for (unsigned i = 0; i < LR_EXPORTER_MAX_CONN; i++)
        if (e->conns[i].state == C_WRITING)
            return -EBUSY;
    size_t cap = OUT_BASE + (size_t)(e->nmgr + 1) * OUT_PER_MANAGER;
    char *nb[LR_EXPORTER_MAX_CONN];
    for (unsigned i = 0; i < LR_EXPORTER_MAX_CONN; i++) {
        nb[i] = lr__malloc(cap);
        if (!nb[i]) {
            while (i)
                lr__free(nb[--i]);
            return -ENOMEM;
        }
    }
    for (unsigned i = 0; i < LR_EXPORTER_MAX_CONN; i++) {
        lr__free(e->conns[i].out);
        e->conns[i].out = nb[i];
    }
    e->out_cap = cap;
    e->mgr[e->nmgr].m = m;
    memcpy(e->mgr[e->nmgr].label, label, n + 1);
    e->nmgr++;
    return 0;
}

int lr_exporter_port(const struct lr_exporter *e)
{
    return e->port;
}

void lr_exporter_free(struct lr_exporter *e)
{
    if (!e)
        return;
    e->closing = true;
    lr_timer_stop(&e->accept_retry);
    if (e->accept_op.inflight) {
        struct io_uring_sqe *sqe = lr__loop_sqe(e->loop, &e->cancel_op);
        if (sqe)
            io_uring_prep_cancel64(sqe, (uint64_t)(uintptr_t)&e->accept_op, 0);
    }
    for (unsigned i = 0; i < LR_EXPORTER_MAX_CONN; i++)
        conn_close(&e->conns[i]);
    for (;;) {
        bool busy = e->accept_op.inflight || e->cancel_op.inflight;
        for (unsigned i = 0; i < LR_EXPORTER_MAX_CONN; i++)
            busy |= e->conns[i].op.inflight != 0;
        if (!busy)
            break;
        if (lr_loop_process(e->loop) < 0)
            break;
    }
    close(e->listen_fd);
    for (unsigned i = 0; i < LR_EXPORTER_MAX_CONN; i++)
        lr__free(e->conns[i].out);
    lr__free(e);
}
