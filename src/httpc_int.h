/* SPDX-License-Identifier: MIT */
/*
 * httpc_int.h - the shared HTTP/1.1 client (internal; HTTP stores build on it).
 *
 * One client per endpoint (host, port, plain or TLS). It owns a bounded set of
 * keep-alive connections (lr__conn, TLS through lr__tls as azblob used it),
 * the name lookup, and a queue of requests waiting for a connection. It knows
 * HTTP/1.1 framing (src/http.c writes and parses), not what any store means:
 * the caller writes its own request head (signatures, dates, conditions) and
 * reads the headers it cares about through a callback.
 *
 * Requests. A struct lr__httpc_req is embedded in the caller's object (a lease,
 * a cosmos document step) and reused: the client allocates nothing after
 * lr__httpc_init(). The caller sets before lr__httpc_submit():
 *   encode      writes the request line and headers into the connection's
 *               output buffer, *without* the blank line: the client appends
 *               "Content-Length: N" when has_body, the blank line, and the body.
 *               Called when a connection takes the request (and again for a
 *               retry), so dates and signatures are fresh. Returns the bytes
 *               written or a negative error (-ENOBUFS: does not fit).
 *   body/body_len, has_body   the request body (caller-owned until on_done).
 *   head        the method is HEAD (the answer has no body).
 *   idempotent  the request may be sent again (see retry rule).
 *   on_header   each response header (optional).
 *   resp/resp_cap   where the response body goes, chunked, length-delimited or
 *               running to the close (the connection is not reused then);
 *               a body longer than resp_cap is -EMSGSIZE. resp NULL: the body
 *               is read and dropped (a store that reads headers only, as
 *               azblob, whose error answers carry XML it does not need).
 *   deadline_ms absolute loop time; 0: the client's default (timeout_ms).
 *   chain       ordering (below); NULL: independent.
 *   first       goes to the head of the client's queue, not the tail (the
 *               next step of a sequence, or an undo that must not wait
 *               behind new work); chains still order it.
 * on_done(req, status) is called exactly once per submit: status >= 200 is the
 * HTTP status with resp_len body bytes in resp; negative is an error:
 *   LR_EUNAVAIL   no connection could be made (lookup or connect failed);
 *                 the request was never sent
 *   LR_ETLS       the TLS handshake failed (never sent)
 *   -ETIMEDOUT    the deadline passed; req->sent says whether bytes left
 *                 (then the outcome is unknown; the connection is closed)
 *   LR_EEOF, -ECONNRESET, -EPIPE   the connection died with the request
 *                 sent and no retry allowed: outcome unknown
 *   LR_EBADREPLY  a malformed response (the connection is closed)
 *   -EMSGSIZE     the response body exceeds resp_cap (a clear error: the
 *                 connection is closed, since the rest would be unread)
 *   -ENOBUFS      the head did not fit the output buffer (never sent)
 *   LR_ECLOSED    lr__httpc_close() ran first (lr__httpc_cancel() calls no
 *                 on_done: the caller asked)
 * 1xx responses are skipped. on_done may submit the next request, including
 * the same struct.
 *
 * In flight. Up to max_conns connections per client, each carrying up to
 * pipeline requests at a time (HTTP/1.1 pipelining; default 1). Answers come
 * back in order on a connection, so its oldest request owns the next answer.
 * A server may execute pipelined requests concurrently (Azurite does), so
 * only independent requests share a connection's pipeline: requests of one
 * chain never do (below), and a store whose object issues one request at a
 * time (azblob's slots) is dependent only by construction. Waiting requests
 * fill the first connection that can take them up to the pipeline depth
 * before the next (one send, one segment, one wakeup for several requests;
 * with depth 1 that is one request per idle connection, spread as before);
 * connections open on demand when the open ones are full (or all at once with
 * lr__httpc_warm()) and reopen after the server closes them. A request head
 * that does not fit the connection's output buffer while other requests sit
 * there waits for the next connection or pass (-ENOBUFS only on its own).
 *
 * Ordering. Requests sharing a struct lr__httpc_chain (embedded in the caller,
 * one per lease or document) are dependent: at most one of them is queued or
 * in flight on the client at a time; later ones wait on the chain's own FIFO
 * and enter the client queue, in order, only after the previous one's on_done
 * returned. So a release never overtakes an acquire sent on another
 * connection, and a retried request stays ahead of its successors.
 *
 * Retry rule. A request is sent once more, once, at the head of the queue, on
 * another (or reopened) connection when it is idempotent and the connection
 * died under it before any byte of its answer arrived, and either
 *  - it was the connection's oldest request, the connection had already
 *    carried an earlier request (a keep-alive connection the server may have
 *    closed while idle), and it died with LR_EEOF, -ECONNRESET or -EPIPE; or
 *  - it was pipelined behind another request (RFC 9112 9.3.2: unanswered
 *    pipelined requests are retried), whatever closed the connection: the
 *    server's close, a "Connection: close" answer, or the client closing it
 *    for the request ahead (a deadline, a cancel, a malformed or oversized
 *    answer).
 * Requests retried together keep their order. Anything else is reported:
 * the oldest request with the error; one behind it with LR_EEOF (outcome
 * unknown), from the deferred phase (never inside lr__httpc_cancel()).
 *
 * Limits. max_conns connections; out_cap bytes of output per connection (a
 * head plus body larger than that is -ENOBUFS); response bodies bounded by the
 * caller's resp_cap; header lines, header counts and chunk sizes by http.h.
 *
 * Where the request lives. struct lr_lease is kept small (lease.c asserts
 * its size), so a store does not embed a request in each lease: it keeps a
 * fixed pool of slots, allocated with the backend, each holding one
 * lr__httpc_req and the answer state it parses (status, ETag, error code,
 * a body buffer), at least max_conns of them (2 x max_conns keeps the next
 * request ready when one finishes); a lease waits on the store's own list
 * (lr__reqhdr.link) until a slot is free. A lease has at most one store
 * request in flight, so a lease's steps are already dependent by
 * construction; chains matter where one object issues requests that are
 * not each other's answers (a release queued behind an unanswered acquire).
 *
 * Layer: knows the loop, connections, TLS and HTTP/1.1; knows nothing of
 * Azure, Cosmos, leases or the backend interface.
 */
#ifndef LR_HTTPC_INT_H
#define LR_HTTPC_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "http.h"
#include "list.h"
#include "net_int.h"
#include "resolve_int.h"
#include <leasering/timer.h>

struct lr__httpc;
struct lr__httpc_req;
struct lr__tls_ctx;

/* Dependent requests: one at a time, in submit order. lr__httpc_chain_init() first. */
struct lr__httpc_chain {
    struct lr_list pending; /* lr__httpc_req.chain_link: waiting behind the active one */
    bool active;            /* one of its requests is queued or in flight */
};

static inline void lr__httpc_chain_init(struct lr__httpc_chain *ch)
{
    lr_list_init(&ch->pending);
    ch->active = false;
}

struct lr__httpc_req {
    /* set by the caller */
    void *data;
    int (*encode)(struct lr__httpc_req *r, char *out, size_t cap);
    void (*on_header)(struct lr__httpc_req *r, const char *name, size_t nlen, const char *value,
                      size_t vlen);
    void (*on_done)(struct lr__httpc_req *r, int status);
    const char *body;
    size_t body_len;
    char *resp;
    size_t resp_cap;
    uint64_t deadline_ms;
    struct lr__httpc_chain *chain;
    bool has_body;
    bool head;
    bool idempotent;
    bool first;
    /* the client's */
    size_t resp_len;
    bool sent;                 /* bytes of it left on a connection */
    bool retried;              /* the one retry is used */
    bool queued;               /* between submit and on_done */
    int fail_status;           /* on the client's failed list: what on_done gets */
    struct lr_list link;       /* client's waiting, parked or failed list, or its
                                * connection's in-flight FIFO */
    struct lr_list chain_link; /* chain->pending */
    struct lr__httpc_conn *conn;
    struct lr__httpc *client;
    struct lr_timer timer; /* the deadline */
};

enum lr__httpc_cstate { LR_HC_DOWN, LR_HC_CONNECTING, LR_HC_IDLE, LR_HC_BUSY, LR_HC_CLOSING };

struct lr__httpc_conn {
    struct lr__httpc *client;
    struct lr__conn net;
    struct lr__tls *tls;
    enum lr__httpc_cstate state;
    struct lr_list inflight; /* lr__httpc_req.link: sent, oldest (the next answer's) first */
    unsigned ninflight;
    struct lr_http_parser parser; /* for the oldest request's answer */
    unsigned served;              /* answers completed since it opened */
    bool got_bytes;               /* part of the oldest request's answer arrived */
    bool failed;                  /* the next open counts as a reconnect */
};

struct lr__httpc_opts {
    const char *host; /* copied; "" is 127.0.0.1 */
    unsigned port;
    unsigned max_conns;          /* >= 1 */
    unsigned pipeline;           /* requests in flight per connection; 0 or 1: one */
    size_t out_cap;              /* per connection output buffer */
    uint64_t timeout_ms;         /* default deadline, and connect timeout (>= 1 s) */
    struct lr__tls_ctx *tls_ctx; /* NULL: plain TCP; else TLS naming tls_host */
    const char *tls_host;
    /* the lookup, a connect or a TLS handshake failed (optional): for the
     * owner's log; @err as on_done, @why a text
     * ("connect: <reason>", "name not resolved (<reason>)", the TLS error) */
    void (*on_conn_error)(struct lr__httpc *c, int err, const char *why);
};

struct lr__httpc {
    void *data; /* the owner's */
    struct lr_loop *loop;
    struct lr__httpc_opts o;
    char host[256];
    struct lr__resolver res;
    struct sockaddr_storage addr;
    socklen_t addrlen;
    struct lr__httpc_conn *conns;
    struct lr_list waiting; /* lr__httpc_req.link: ready for a connection */
    struct lr_list parked;  /* lr__httpc_req.link: behind their chain's active request */
    struct lr_list failed;  /* lr__httpc_req.link: on_done(fail_status) in the deferred phase */
    struct lr__task dispatch_task;
    bool closing;
    bool warm;
    unsigned closed;
    void (*close_done)(struct lr__httpc *c);
    bool unreachable;    /* the last lookup or connect failed (until one succeeds) */
    char why[160];       /* on_conn_error's text */
    uint64_t requests;   /* sent, retries included */
    uint64_t reconnects; /* opens after a failure */
    uint64_t retries;
};

/* Allocates the connections and their buffers (and TLS sessions).
 * Returns 0, -EINVAL, -ENOMEM. */
int lr__httpc_init(struct lr__httpc *c, struct lr_loop *loop, const struct lr__httpc_opts *o);
/* Open every connection now (they otherwise open on demand). */
void lr__httpc_warm(struct lr__httpc *c);
/* Queue @r (see above). Returns 0, or -EBUSY (already queued), -ESHUTDOWN (closing). */
int lr__httpc_submit(struct lr__httpc *c, struct lr__httpc_req *r);
/* Withdraw @r without on_done; if it was in flight its connection is closed
 * (the answer is still owed there). The chain's next request moves up. */
void lr__httpc_cancel(struct lr__httpc_req *r);
/* Connections up (idle or busy); *@in_flight (if set): requests sent and
 * unanswered. For gauges. */
unsigned lr__httpc_up(const struct lr__httpc *c, unsigned *in_flight);
/* Fail what waits with LR_ECLOSED, close everything; @done from the deferred
 * phase, after which lr__httpc_deinit() may run. */
void lr__httpc_close(struct lr__httpc *c, void (*done)(struct lr__httpc *c));
/* Free the connections (never opened, or closed with done delivered). */
void lr__httpc_deinit(struct lr__httpc *c);

#endif
