/* SPDX-License-Identifier: MIT */
/*
 * net_int.h - TCP connections on the loop (internal; backends build on it).
 *
 * A connection is caller-owned and reusable: init once (allocates its fixed
 * output buffer), then connect / close / connect again, deinit at the end.
 * Connect is an io_uring connect with a linked timeout; receiving is one
 * multishot recv into the loop's provided buffers (re-armed after -ENOBUFS
 * once buffers are back); everything written during one iteration leaves in
 * one send from the flush phase. Errors reach on_error once, after which the
 * connection is dead until closed. Close cancels in-flight requests, waits for
 * their last completions, closes the fd, then calls on_close from the
 * deferred phase: only then may the owner free or reconnect it.
 * Layer: knows the loop; knows nothing of RESP, HTTP or leases.
 */
#ifndef LR_NET_INT_H
#define LR_NET_INT_H

#include <netinet/in.h>
#include <sys/socket.h>

#include "loop_int.h"

struct lr__conn;
struct lr__tls;

struct lr__conn_cbs {
    /* Connect finished: 0, or -ETIMEDOUT, -ECONNREFUSED, ... (fd closed). */
    void (*on_connect)(struct lr__conn *c, int status);
    /* Bytes arrived. @buf is valid only during the call. */
    void (*on_data)(struct lr__conn *c, const char *buf, size_t len);
    /* Output space was freed by a completed send (optional). */
    void (*on_drain)(struct lr__conn *c);
    /* The connection failed: LR_EEOF for a peer close, else -ECONNRESET,
     * -EPIPE, ... Called once; the connection must then be closed. */
    void (*on_error)(struct lr__conn *c, int err);
    /* lr__conn_close() finished; the connection may be reused or freed. */
    void (*on_close)(struct lr__conn *c);
};

enum lr__conn_state {
    LR_CONN_IDLE = 0,
    LR_CONN_CONNECTING,
    LR_CONN_OPEN,
    LR_CONN_FAILED,
    LR_CONN_CLOSING,
};

struct lr__conn {
    void *data; /* the owner's */
    struct lr_loop *loop;
    const struct lr__conn_cbs *cbs;
    int fd;
    enum lr__conn_state state;
    int error;
    struct lr__op connect_op;
    struct lr__op timeout_op;
    struct lr__op recv_op;
    struct lr__op send_op;
    struct lr__op cancel_op;
    struct __kernel_timespec connect_ts;
    int connect_res;
    bool timed_out;
    bool recv_rearm;
    struct sockaddr_storage addr;
    socklen_t addrlen;
    char *out;            /* [0, out_inflight) is being sent; [out_inflight, out_len) waits */
    size_t out_len;
    size_t out_cap;
    size_t out_inflight;
    struct lr__task flush_task;
    struct lr__task close_task;
    struct lr__tls *tls;      /* NULL: plain TCP; else out[] is plaintext */
    bool tls_handshaking;     /* TCP is up, TLS is not yet: on_connect waits */
    bool tls_heard;           /* the peer sent bytes during this handshake */
    bool tls_ever_up;         /* a handshake on this connection once completed */
    uint64_t connect_timeout_ms;
    struct lr_timer hs_timer; /* TLS handshake deadline */
    uint64_t bytes_in;
    uint64_t bytes_out;
    uint64_t sends;
};

/* Returns 0, -EINVAL, or -ENOMEM. Allocates the output buffer. */
int lr__conn_init(struct lr__conn *c, struct lr_loop *loop, size_t out_cap,
                  const struct lr__conn_cbs *cbs);
/* Frees the output buffer. The connection must be idle (never connected, or
 * closed with on_close delivered). */
void lr__conn_deinit(struct lr__conn *c);

/* Start connecting to @sa (AF_INET, AF_INET6: TCP; AF_UNIX: a stream socket
 * at a path); on_connect follows. @timeout_ms 0 means none.
 * Returns 0, -EINVAL (bad address), -EBUSY (not idle), or socket()'s error. */
int lr__conn_connect(struct lr__conn *c, const struct sockaddr *sa, socklen_t salen,
                     uint64_t timeout_ms);

/* Free space at the end of the output buffer, for encoders that write in place. */
static inline char *lr__conn_wbuf(struct lr__conn *c, size_t *avail)
{
    *avail = c->out_cap - c->out_len;
    return c->out + c->out_len;
}
/* Commit @n bytes written at lr__conn_wbuf(); they leave in this iteration's flush. */
void lr__conn_commit(struct lr__conn *c, size_t n);
/* Copy and commit; -ENOBUFS if it does not fit (nothing is written). */
int lr__conn_write(struct lr__conn *c, const void *p, size_t n);

/* Run TLS over this connection from the next connect on (the session is the
 * caller's: it outlives connects, and the caller frees it after deinit). */
void lr__conn_set_tls(struct lr__conn *c, struct lr__tls *t);

/* Begin closing; on_close follows from the deferred phase. Idempotent. */
void lr__conn_close(struct lr__conn *c);

/* The port of the address last connected to (host order), for messages
 * (TCP addresses only). */
static inline unsigned lr__conn_port(const struct lr__conn *c)
{
    /* sin_port and sin6_port sit at the same offset */
    return ntohs(((const struct sockaddr_in *)&c->addr)->sin_port);
}

static inline bool lr__conn_is_open(const struct lr__conn *c)
{
    return c->state == LR_CONN_OPEN;
}

#endif
