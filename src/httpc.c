/* SPDX-License-Identifier: MIT */
/*
 * httpc.c - the shared HTTP/1.1 client: a bounded keep-alive pool per
 * endpoint, requests embedded in their callers (see httpc_int.h for the
 * contract: ordering chains, the retry rule, limits and error codes).
 * Layer: loop, connections, TLS, HTTP/1.1; nothing of any store.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "alloc_int.h"
#include "httpc_int.h"
#include "tls_int.h"
#include <leasering/error.h>

static const struct lr__conn_cbs net_cbs;

static inline struct lr__httpc_req *req_of(struct lr_list *n)
{
    return lr_container_of(n, struct lr__httpc_req, link);
}

static void want_dispatch(struct lr__httpc *c)
{
    lr__loop_defer(c->loop, &c->dispatch_task);
}

/* @ch's active request is over: its next one, if any, goes in line. */
static void chain_next(struct lr__httpc *c, struct lr__httpc_chain *ch)
{
    if (ch->active || lr_list_is_empty(&ch->pending))
        return;
    struct lr__httpc_req *next =
        lr_container_of(lr_list_pop(&ch->pending), struct lr__httpc_req, chain_link);
    ch->active = true;
    lr_list_unlink(&next->link); /* off the parked list */
    lr_list_push_tail(&c->waiting, &next->link);
    want_dispatch(c);
}

/* @r is over: tell its owner, then let its chain's next request move up. */
static void req_done(struct lr__httpc_req *r, int status)
{
    struct lr__httpc *c = r->client;
    lr_timer_stop(&r->timer);
    lr_list_unlink(&r->link);
    r->conn = NULL;
    r->queued = false;
    struct lr__httpc_chain *ch = r->chain;
    if (ch)
        ch->active = false;
    r->on_done(r, status);
    if (ch)
        chain_next(c, ch);
}

/* Fail everything waiting for a connection (not what is parked behind a
 * chain: that moves up as each chain's active request fails). */
static void fail_waiting(struct lr__httpc *c, int status)
{
    struct lr_list *n;
    while ((n = lr_list_first(&c->waiting)))
        req_done(req_of(n), status);
}

static void resolve_failed(struct lr__httpc *c, int status)
{
    c->unreachable = true;
    if (c->o.on_conn_error) {
        snprintf(c->why, sizeof(c->why), "name not resolved (%s)", lr__resolver_why(&c->res));
        c->o.on_conn_error(c, status, c->why);
    }
    fail_waiting(c, LR_EUNAVAIL);
}

/* Look the host up; true when the address is known at once (numeric). */
static bool lookup(struct lr__httpc *c)
{
    if (c->res.busy)
        return false;
    int rc = lr__resolver_start(&c->res, c->host, c->o.port, &c->addr, &c->addrlen);
    if (rc < 0)
        resolve_failed(c, rc);
    return rc == 1;
}

static void start_connect(struct lr__httpc_conn *hc)
{
    struct lr__httpc *c = hc->client;
    if (!c->addrlen && !lookup(c))
        return; /* stays down until the lookup answers */
    hc->state = LR_HC_CONNECTING;
    hc->served = 0;
    uint64_t to = c->o.timeout_ms < 1000 ? 1000 : c->o.timeout_ms;
    if (lr__conn_connect(&hc->net, (struct sockaddr *)&c->addr, c->addrlen, to) < 0)
        hc->state = LR_HC_DOWN;
}

/* Write @r onto @hc: the caller's head, Content-Length, the blank line, the body. */
static int encode(struct lr__httpc_conn *hc, struct lr__httpc_req *r)
{
    size_t avail;
    char *w = lr__conn_wbuf(&hc->net, &avail);
    int n = r->encode(r, w, avail);
    if (n < 0)
        return n;
    size_t off = (size_t)n;
    if (r->has_body) {
        n = lr_http_write_header_u64(w + off, avail - off, "Content-Length", 14, r->body_len);
        if (n < 0)
            return n;
        off += (size_t)n;
    }
    n = lr_http_write_end(w + off, avail - off);
    if (n < 0)
        return n;
    off += (size_t)n;
    if (r->has_body) {
        if (r->body_len > avail - off)
            return -ENOBUFS;
        if (r->body_len) /* an empty body may have no pointer */
            memcpy(w + off, r->body, r->body_len);
        off += r->body_len;
    }
    lr__conn_commit(&hc->net, off);
    return 0;
}

static unsigned depth(const struct lr__httpc *c)
{
    return c->o.pipeline > 1 ? c->o.pipeline : 1;
}

static bool can_take(const struct lr__httpc_conn *hc)
{
    return hc->state == LR_HC_IDLE ||
           (hc->state == LR_HC_BUSY && hc->ninflight < depth(hc->client));
}

static struct lr__httpc_req *oldest(const struct lr__httpc_conn *hc)
{
    struct lr_list *n = lr_list_first(&hc->inflight);
    return n ? req_of(n) : NULL;
}

/* Put @r (the first waiting) on @hc. False when its head does not fit behind
 * the requests already in @hc's output buffer: it stays first in line. */
static bool send_req(struct lr__httpc_conn *hc, struct lr__httpc_req *r)
{
    struct lr__httpc *c = hc->client;
    int rc = encode(hc, r);
    if (rc == -ENOBUFS && hc->ninflight)
        return false;
    lr_list_unlink(&r->link);
    if (rc < 0) {
        req_done(r, rc);
        return true;
    }
    if (!hc->ninflight) { /* the next answer is its */
        hc->got_bytes = false;
        lr_http_parser_init(&hc->parser, r->head);
    }
    lr_list_push_tail(&hc->inflight, &r->link);
    hc->ninflight++;
    hc->state = LR_HC_BUSY;
    r->conn = hc;
    r->sent = true;
    r->resp_len = 0;
    c->requests++;
    return true;
}

static void dispatch(struct lr__httpc *c)
{
    if (c->closing)
        return;
    struct lr_list *n;
    while ((n = lr_list_first(&c->failed))) { /* dropped behind another: report */
        struct lr__httpc_req *r = req_of(n);
        req_done(r, r->fail_status);
        if (c->closing)
            return;
    }
    unsigned connecting = 0;
    for (unsigned i = 0; i < c->o.max_conns && !lr_list_is_empty(&c->waiting); i++) {
        struct lr__httpc_conn *hc = &c->conns[i];
        while (can_take(hc) && (n = lr_list_first(&c->waiting)))
            if (!send_req(hc, req_of(n)))
                break; /* its output buffer is full */
        connecting += hc->state == LR_HC_CONNECTING;
    }
    /* open (on demand) one more connection per pipeline's worth of requests
     * that no connection being opened will take, up to the cap */
    n = c->waiting.next;
    for (unsigned i = 0; i < connecting * depth(c) && n != &c->waiting; i++)
        n = n->next;
    for (unsigned i = 0; i < c->o.max_conns && n != &c->waiting; i++) {
        struct lr__httpc_conn *hc = &c->conns[i];
        if (hc->state != LR_HC_DOWN)
            continue;
        start_connect(hc);
        if (hc->state != LR_HC_CONNECTING)
            break; /* waiting for the lookup, or it failed (and failed what waited) */
        for (unsigned k = 0; k < depth(c) && n != &c->waiting; k++)
            n = n->next;
    }
}

static void dispatch_run(struct lr__task *t)
{
    dispatch(lr_container_of(t, struct lr__httpc, dispatch_task));
}

static void close_conn(struct lr__httpc_conn *hc)
{
    if (hc->state != LR_HC_CLOSING) {
        hc->state = LR_HC_CLOSING;
        lr__conn_close(&hc->net);
    }
}

static bool is_death(int err)
{
    return err == LR_EEOF || err == -ECONNRESET || err == -EPIPE;
}

/* Close @hc (it died with @head_err, or its answer could not be used); what
 * is still in flight there is sent again (the retry rule: first in line, in
 * its order) or reported. @head_err: the oldest request's answer was the one
 * in progress and it gets this error (or the retry); 0: every request left
 * is one whose answer was behind another's. Only the oldest is reported
 * here; the rest from the deferred phase. */
static void conn_fail(struct lr__httpc_conn *hc, int head_err)
{
    struct lr__httpc *c = hc->client;
    struct lr__httpc_req *head = NULL;
    int head_status = 0;
    struct lr_list *at = c->waiting.next, *n; /* retries go before the old first */
    close_conn(hc);
    if (hc->ninflight)
        hc->failed = true;
    bool first = head_err != 0;
    while ((n = lr_list_pop(&hc->inflight))) {
        struct lr__httpc_req *r = req_of(n);
        hc->ninflight--;
        r->conn = NULL;
        bool retry = first ? hc->served > 0 && !hc->got_bytes && is_death(head_err) : true;
        if (r->idempotent && !r->retried && retry) {
            r->retried = true;
            c->retries++;
            lr_list_push_tail(at, &r->link);
            want_dispatch(c);
        } else if (first) {
            head = r;
            head_status = head_err;
        } else {
            r->fail_status = LR_EEOF; /* it may have been executed: unknown */
            lr_list_push_tail(&c->failed, &r->link);
            want_dispatch(c);
        }
        first = false;
    }
    if (head)
        req_done(head, head_status);
}

/* @r, in flight on its connection, is over there without an answer (its
 * deadline, a cancel): the answer is still owed, so the connection closes,
 * and the requests behind it go by the retry rule. */
static void withdraw(struct lr__httpc_req *r)
{
    struct lr__httpc_conn *hc = r->conn;
    lr_list_unlink(&r->link);
    hc->ninflight--;
    r->conn = NULL;
    hc->failed = true;
    conn_fail(hc, 0);
}

static void req_timer_fired(struct lr_timer *t)
{
    struct lr__httpc_req *r = t->data;
    if (r->conn)
        withdraw(r);
    if (r->chain && lr_list_is_linked(&r->chain_link)) {
        lr_list_unlink(&r->chain_link); /* parked: it never became active */
        lr_list_unlink(&r->link);
        r->queued = false;
        r->conn = NULL;
        r->on_done(r, -ETIMEDOUT);
        return;
    }
    req_done(r, -ETIMEDOUT);
}

/* A whole answer to the oldest request on @hc arrived. */
static void answered(struct lr__httpc_conn *hc, int status, bool keep_alive)
{
    struct lr__httpc_req *r = oldest(hc);
    lr_list_unlink(&r->link);
    hc->ninflight--;
    r->conn = NULL;
    hc->served++;
    struct lr__httpc_req *next = oldest(hc);
    if (!keep_alive) {
        conn_fail(hc, 0); /* what was pipelined behind it: unanswered */
    } else if (next) {
        hc->got_bytes = false;
        lr_http_parser_init(&hc->parser, next->head);
    } else {
        hc->state = LR_HC_IDLE;
    }
    want_dispatch(hc->client);
    req_done(r, status);
}

static void on_data(struct lr__conn *nc, const char *buf, size_t len)
{
    struct lr__httpc_conn *hc = nc->data;
    size_t off = 0;
    /* until the parser wants more bytes: END may consume none */
    for (;;) {
        struct lr__httpc_req *r = oldest(hc);
        if (!r) {
            if (off < len)
                conn_fail(hc, LR_EBADREPLY); /* bytes with no request */
            return;
        }
        struct lr_http_token t;
        int rc = lr_http_parse(&hc->parser, buf + off, len - off, &t);
        if (rc == -EAGAIN)
            return;
        if (rc < 0) {
            conn_fail(hc, rc == -EMSGSIZE ? -EMSGSIZE : LR_EBADREPLY);
            return;
        }
        if (rc > 0)
            hc->got_bytes = true;
        off += (size_t)rc;
        switch (t.type) {
        case LR_HTTP_HEADER:
            if (t.status >= 200 && r->on_header)
                r->on_header(r, t.str, t.len, t.value, t.value_len);
            break;
        case LR_HTTP_BODY:
            if (!r->resp)
                break; /* headers only: the body is read and dropped */
            if (t.len > r->resp_cap - r->resp_len) {
                conn_fail(hc, -EMSGSIZE);
                return;
            }
            if (t.len)
                memcpy(r->resp + r->resp_len, t.str, t.len);
            r->resp_len += t.len;
            break;
        case LR_HTTP_END:
            if (t.status < 200)
                break; /* 1xx: the real answer follows */
            answered(hc, t.status, t.keep_alive);
            if (hc->state != LR_HC_IDLE && hc->state != LR_HC_BUSY)
                return; /* closed (on_done may have cancelled what was behind) */
            break;
        default:
            break;
        }
    }
}

unsigned lr__httpc_up(const struct lr__httpc *c, unsigned *in_flight)
{
    unsigned up = 0, busy = 0;
    for (unsigned i = 0; i < c->o.max_conns; i++) {
        up += c->conns[i].state == LR_HC_IDLE || c->conns[i].state == LR_HC_BUSY;
        busy += c->conns[i].ninflight;
    }
    if (in_flight)
        *in_flight = busy;
    return up;
}

static bool any_up(const struct lr__httpc *c)
{
    return lr__httpc_up(c, NULL) > 0;
}

static void on_connect(struct lr__conn *nc, int status)
{
    struct lr__httpc_conn *hc = nc->data;
    struct lr__httpc *c = hc->client;
    if (hc->state == LR_HC_CLOSING)
        return;
    if (status < 0) {
        hc->state = LR_HC_DOWN;
        hc->failed = true;
        c->unreachable = true;
        c->addrlen = 0;                              /* look the name up again: it may have moved */
        if (status != LR_ETLS && c->o.on_conn_error) /* on_error said why already */
        {
            snprintf(c->why, sizeof(c->why), "connect: %s", lr_strerror(status));
            c->o.on_conn_error(c, status, c->why);
        }
        if (!any_up(c)) /* the endpoint is unreachable: fail what waits */
            fail_waiting(c, status == LR_ETLS ? LR_ETLS : LR_EUNAVAIL);
        return;
    }
    hc->state = LR_HC_IDLE;
    c->unreachable = false;
    if (hc->failed)
        c->reconnects++;
    hc->failed = false;
    dispatch(c);
}

static void on_error(struct lr__conn *nc, int err)
{
    struct lr__httpc_conn *hc = nc->data;
    struct lr__httpc *c = hc->client;
    if (err == LR_ETLS && c->o.on_conn_error)
        c->o.on_conn_error(c, err, lr__tls_error_text(hc->tls));
    if (hc->state == LR_HC_CONNECTING) { /* the TLS handshake failed */
        hc->failed = true;
        c->unreachable = true;
        close_conn(hc);
        if (!any_up(c))
            fail_waiting(c, err == LR_ETLS ? LR_ETLS : LR_EUNAVAIL);
        return;
    }
    struct lr_http_token t;
    if (err == LR_EEOF && hc->ninflight && lr_http_parse_eof(&hc->parser, &t) == 1 &&
        t.status >= 200) {
        answered(hc, t.status, false); /* a body that runs to the close */
        return;
    }
    conn_fail(hc, err);
}

static void closed_one(struct lr__httpc *c)
{
    if (++c->closed == c->o.max_conns + 1)
        c->close_done(c);
}

static void on_close(struct lr__conn *nc)
{
    struct lr__httpc_conn *hc = nc->data;
    if (hc->client->closing) {
        closed_one(hc->client);
        return;
    }
    hc->state = LR_HC_DOWN;
    want_dispatch(hc->client); /* reopen if requests wait */
}

static const struct lr__conn_cbs net_cbs = {
    .on_connect = on_connect,
    .on_data = on_data,
    .on_error = on_error,
    .on_close = on_close,
};

static void resolved(struct lr__resolver *rs, int status, const struct sockaddr *sa, socklen_t len)
{
    struct lr__httpc *c = rs->data;
    if (status < 0) {
        resolve_failed(c, status);
        return;
    }
    memcpy(&c->addr, sa, len);
    c->addrlen = len;
    if (c->warm)
        lr__httpc_warm(c);
    dispatch(c);
}

static void resolver_closed(struct lr__resolver *rs)
{
    closed_one(rs->data);
}

int lr__httpc_init(struct lr__httpc *c, struct lr_loop *loop, const struct lr__httpc_opts *o)
{
    void *data = c->data;
    memset(c, 0, sizeof(*c));
    c->data = data;
    if (!o->max_conns || !o->out_cap || !o->host || strlen(o->host) >= sizeof(c->host))
        return -EINVAL;
    c->loop = loop;
    c->o = *o;
    strcpy(c->host, o->host);
    c->o.host = c->host;
    lr_list_init(&c->waiting);
    lr_list_init(&c->parked);
    lr_list_init(&c->failed);
    lr__task_init(&c->dispatch_task, dispatch_run);
    c->res.data = c;
    int rc = lr__resolver_init(&c->res, loop, resolved);
    if (rc < 0)
        return rc;
    if (!(c->conns = lr__calloc(o->max_conns, sizeof(*c->conns))))
        rc = -ENOMEM;
    for (unsigned i = 0; rc == 0 && i < o->max_conns; i++) {
        struct lr__httpc_conn *hc = &c->conns[i];
        hc->client = c;
        lr_list_init(&hc->inflight);
        rc = lr__conn_init(&hc->net, loop, o->out_cap, &net_cbs);
        hc->net.data = hc;
        if (rc == 0 && o->tls_ctx)
            rc = lr__tls_new(&hc->tls, o->tls_ctx, o->tls_host ? o->tls_host : c->host);
        if (rc == 0 && hc->tls)
            lr__conn_set_tls(&hc->net, hc->tls);
    }
    if (rc < 0)
        lr__httpc_deinit(c);
    return rc;
}

void lr__httpc_warm(struct lr__httpc *c)
{
    c->warm = true;
    for (unsigned i = 0; i < c->o.max_conns && !c->closing; i++)
        if (c->conns[i].state == LR_HC_DOWN)
            start_connect(&c->conns[i]);
}

int lr__httpc_submit(struct lr__httpc *c, struct lr__httpc_req *r)
{
    if (c->closing)
        return -ESHUTDOWN;
    if (r->queued)
        return -EBUSY;
    r->client = c;
    r->queued = true;
    r->sent = false;
    r->retried = false;
    r->resp_len = 0;
    r->conn = NULL;
    lr_list_init(&r->link);
    lr_list_init(&r->chain_link);
    lr_timer_init(c->loop, &r->timer, req_timer_fired);
    r->timer.data = r;
    lr_timer_start(&r->timer,
                   r->deadline_ms ? r->deadline_ms : lr_loop_now_ms(c->loop) + c->o.timeout_ms);
    struct lr__httpc_chain *ch = r->chain;
    if (ch && (ch->active || !lr_list_is_empty(&ch->pending))) {
        lr_list_push_tail(&ch->pending, &r->chain_link);
        lr_list_push_tail(&c->parked, &r->link);
        return 0;
    }
    if (ch)
        ch->active = true;
    lr_list_push_tail(r->first ? c->waiting.next : &c->waiting, &r->link);
    want_dispatch(c);
    return 0;
}

void lr__httpc_cancel(struct lr__httpc_req *r)
{
    if (!r->queued)
        return;
    struct lr__httpc *c = r->client;
    lr_timer_stop(&r->timer);
    r->queued = false;
    if (r->conn)
        withdraw(r); /* the answer is still owed there */
    lr_list_unlink(&r->link);
    struct lr__httpc_chain *ch = r->chain;
    if (ch && lr_list_is_linked(&r->chain_link)) {
        lr_list_unlink(&r->chain_link);
        return; /* it was parked: the active one is unchanged */
    }
    if (ch) {
        ch->active = false;
        chain_next(c, ch);
    }
}

void lr__httpc_close(struct lr__httpc *c, void (*done)(struct lr__httpc *c))
{
    c->closing = true;
    c->close_done = done;
    c->closed = 0;
    lr__task_cancel(&c->dispatch_task);
    for (unsigned i = 0; i < c->o.max_conns; i++) {
        struct lr__httpc_conn *hc = &c->conns[i];
        hc->state = LR_HC_CLOSING;
        lr__conn_close(&hc->net);
        struct lr_list *n;
        while ((n = lr_list_first(&hc->inflight))) {
            req_of(n)->conn = NULL;
            hc->ninflight--;
            req_done(req_of(n), LR_ECLOSED);
        }
    }
    struct lr_list *n;
    while ((n = lr_list_first(&c->failed)))
        req_done(req_of(n), req_of(n)->fail_status);
    while ((n = lr_list_first(&c->waiting)) || (n = lr_list_first(&c->parked))) {
        struct lr__httpc_req *r = req_of(n);
        lr_list_unlink(&r->chain_link);
        req_done(r, LR_ECLOSED);
    }
    lr__resolver_close(&c->res, resolver_closed);
}

void lr__httpc_deinit(struct lr__httpc *c)
{
    for (unsigned i = 0; c->conns && i < c->o.max_conns; i++) {
        struct lr__httpc_conn *hc = &c->conns[i];
        if (hc->net.out)
            lr__conn_deinit(&hc->net);
        lr__tls_free(hc->tls);
    }
    lr__task_cancel(&c->dispatch_task);
    lr__free(c->conns);
    c->conns = NULL;
    lr__resolver_deinit(&c->res);
}
