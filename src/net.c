/* SPDX-License-Identifier: MIT */
/*
 * net.c - TCP connections on io_uring (see net_int.h for the contract).
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>
#include <sys/un.h>
#include <unistd.h>

#include <leasering/error.h>
#include "alloc_int.h"
#include "net_int.h"
#include "tls_int.h"

#define CONN_OF(op, field) lr_container_of(op, struct lr__conn, field)

static void flush_run(struct lr__task *t);
static void close_done_run(struct lr__task *t);
static void connect_complete(struct lr__op *op, int res, uint32_t flags);
static void timeout_complete(struct lr__op *op, int res, uint32_t flags);
static void recv_complete(struct lr__op *op, int res, uint32_t flags);
static void send_complete(struct lr__op *op, int res, uint32_t flags);
static void cancel_complete(struct lr__op *op, int res, uint32_t flags);
static void hs_timeout(struct lr_timer *t);

static void op_init(struct lr__op *op, lr__op_fn fn)
{
    op->complete = fn;
    op->inflight = 0;
}

int lr__conn_init(struct lr__conn *c, struct lr_loop *loop, size_t out_cap,
                  const struct lr__conn_cbs *cbs)
{
    if (!loop || !cbs || !out_cap || !cbs->on_connect || !cbs->on_data || !cbs->on_error ||
        !cbs->on_close)
        return -EINVAL;
    memset(c, 0, sizeof(*c));
    c->out = lr__malloc(out_cap);
    if (!c->out)
        return -ENOMEM;
    c->loop = loop;
    c->cbs = cbs;
    c->fd = -1;
    c->out_cap = out_cap;
    op_init(&c->connect_op, connect_complete);
    op_init(&c->timeout_op, timeout_complete);
    op_init(&c->recv_op, recv_complete);
    op_init(&c->send_op, send_complete);
    op_init(&c->cancel_op, cancel_complete);
    lr__task_init(&c->flush_task, flush_run);
    lr__task_init(&c->close_task, close_done_run);
    lr_timer_init(loop, &c->hs_timer, hs_timeout);
    return 0;
}

void lr__conn_set_tls(struct lr__conn *c, struct lr__tls *t)
{
    c->tls = t;
}

void lr__conn_deinit(struct lr__conn *c)
{
    lr_timer_stop(&c->hs_timer);
    lr__task_cancel(&c->flush_task);
    lr__task_cancel(&c->close_task);
    lr__free(c->out);
    c->out = NULL;
}

static uint32_t ops_inflight(const struct lr__conn *c)
{
    return c->connect_op.inflight + c->timeout_op.inflight + c->recv_op.inflight +
           c->send_op.inflight + c->cancel_op.inflight;
}

/* In CLOSING: once the kernel holds nothing of ours, close the fd and report
 * from the deferred phase (never from inside the caller's close call). */
static void maybe_closed(struct lr__conn *c)
{
    if (c->state != LR_CONN_CLOSING || ops_inflight(c))
        return;
    if (c->fd >= 0) {
        close(c->fd);
        c->fd = -1;
    }
    c->state = LR_CONN_IDLE;
    c->tls_handshaking = false;
    lr_timer_stop(&c->hs_timer);
    lr__loop_defer(c->loop, &c->close_task);
}

static void close_done_run(struct lr__task *t)
{
    struct lr__conn *c = lr_container_of(t, struct lr__conn, close_task);
    c->cbs->on_close(c); /* may free c: last use */
}

static void fail(struct lr__conn *c, int err)
{
    if (c->state != LR_CONN_OPEN)
        return;
    c->state = LR_CONN_FAILED;
    c->error = err;
    lr_timer_stop(&c->hs_timer);
    c->cbs->on_error(c, err);
}

int lr__conn_connect(struct lr__conn *c, const struct sockaddr *sa, socklen_t salen,
                     uint64_t timeout_ms)
{
    if (c->state != LR_CONN_IDLE || lr_list_is_linked(&c->close_task.link))
        return -EBUSY;
    if (!sa || salen > sizeof(c->addr) ||
        (sa->sa_family != AF_INET && sa->sa_family != AF_INET6 && sa->sa_family != AF_UNIX))
        return -EINVAL;
    bool tcp = sa->sa_family != AF_UNIX;
    int fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
                    tcp ? IPPROTO_TCP : 0);
    if (fd < 0)
        return -errno;
    int one = 1;
    /* Small pipelined requests must not wait for Nagle (TCP only). */
    if (tcp)
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    memcpy(&c->addr, sa, salen);
    c->addrlen = salen;
    c->fd = fd;
    c->error = 0;
    c->connect_res = 0;
    c->timed_out = false;
    c->recv_rearm = false;
    c->out_inflight = 0;
    c->connect_timeout_ms = timeout_ms;

    struct io_uring_sqe *sqe = lr__loop_sqe(c->loop, &c->connect_op);
    if (!sqe) {
        close(fd);
        c->fd = -1;
        return -EBUSY;
    }
    io_uring_prep_connect(sqe, fd, (struct sockaddr *)&c->addr, c->addrlen);
    if (timeout_ms) {
        c->connect_ts.tv_sec = (long long)(timeout_ms / 1000);
        c->connect_ts.tv_nsec = (long long)(timeout_ms % 1000) * 1000000;
        /* The link must directly follow the connect: take the SQE for the
         * timeout without a submit in between. */
        sqe->flags |= IOSQE_IO_LINK;
        struct io_uring_sqe *tsqe = io_uring_get_sqe(&c->loop->ring);
        if (!tsqe) {
            /* SQ full right after the connect: send the connect unlinked and
             * accept no deadline rather than fail. Cannot happen with the
             * submit-on-full in lr__loop_sqe unless the ring has 1 entry. */
            sqe->flags &= (uint8_t)~IOSQE_IO_LINK;
        } else {
            io_uring_prep_link_timeout(tsqe, &c->connect_ts, 0);
            io_uring_sqe_set_data(tsqe, &c->timeout_op);
            c->timeout_op.inflight++;
            c->loop->sqes_queued++;
        }
    }
    c->state = LR_CONN_CONNECTING;
    return 0;
}

static void arm_recv(struct lr__conn *c)
{
    struct io_uring_sqe *sqe = lr__loop_sqe(c->loop, &c->recv_op);
    if (!sqe) {
        fail(c, -EBUSY);
        return;
    }
    io_uring_prep_recv_multishot(sqe, c->fd, NULL, 0, 0);
    sqe->flags |= IOSQE_BUFFER_SELECT;
    sqe->buf_group = LR_BGID;
}

/* Ciphertext arrived (or the handshake starts): advance the handshake, then
 * decrypt and deliver everything readable. Any TLS output goes out in the
 * flush phase. */
static void tls_progress(struct lr__conn *c)
{
    if (c->tls_handshaking) {
        int rc = lr__tls_handshake(c->tls);
        if (rc < 0) {
            fail(c, rc);
            return;
        }
        lr__loop_want_flush(c->loop, &c->flush_task);
        if (!rc)
            return;
        c->tls_handshaking = false;
        c->tls_ever_up = true;
        lr_timer_stop(&c->hs_timer);
        c->cbs->on_connect(c, 0);
    }
    while (c->state == LR_CONN_OPEN) {
        const char *p;
        int n = lr__tls_read(c->tls, &p);
        if (n == 0)
            break;
        if (n < 0) {
            fail(c, n);
            return;
        }
        c->cbs->on_data(c, p, (size_t)n);
    }
    size_t pending;
    lr__tls_txbuf(c->tls, &pending);
    if (pending)
        lr__loop_want_flush(c->loop, &c->flush_task);
}

/* The handshake deadline passed. A TLS server answers a ClientHello within
 * one round trip; a peer that accepted TCP and then said nothing at all is
 * taken for one that does not speak TLS (a plain-text Redis waits silently
 * for a newline that never comes): a definite LR_ETLS, not a reconnect
 * loop. Once a handshake has succeeded on this connection the server is
 * known to speak TLS, and silence is a stall (-ETIMEDOUT: retried). */
static void hs_timeout(struct lr_timer *t)
{
    struct lr__conn *c = lr_container_of(t, struct lr__conn, hs_timer);
    if (!c->tls_heard && !c->tls_ever_up)
        fail(c, lr__tls_no_answer(c->tls, c->connect_timeout_ms));
    else
        fail(c, -ETIMEDOUT);
}

static void connect_finished(struct lr__conn *c)
{
    if (c->connect_op.inflight || c->timeout_op.inflight)
        return;
    if (c->state == LR_CONN_CLOSING) {
        maybe_closed(c);
        return;
    }
    int res = c->connect_res;
    if (res == -ECANCELED && c->timed_out)
        res = -ETIMEDOUT;
    if (res < 0) {
        close(c->fd);
        c->fd = -1;
        c->state = LR_CONN_IDLE;
        c->cbs->on_connect(c, res);
        return;
    }
    c->state = LR_CONN_OPEN;
    arm_recv(c);
    if (c->tls) {
        /* TCP is up; the connection is "connected" once TLS is. */
        c->tls_handshaking = true;
        c->tls_heard = false;
        if (lr__tls_reset(c->tls) < 0) {
            fail(c, LR_ETLS);
            return;
        }
        if (c->connect_timeout_ms)
            lr_timer_start(&c->hs_timer, lr_loop_now_ms(c->loop) + c->connect_timeout_ms);
        tls_progress(c);
        return;
    }
    if (c->out_len)
        lr__loop_want_flush(c->loop, &c->flush_task);
    c->cbs->on_connect(c, 0);
}

static void connect_complete(struct lr__op *op, int res, uint32_t flags)
{
    (void)flags;
    struct lr__conn *c = CONN_OF(op, connect_op);
    c->connect_res = res;
    connect_finished(c);
}

static void timeout_complete(struct lr__op *op, int res, uint32_t flags)
{
    (void)flags;
    struct lr__conn *c = CONN_OF(op, timeout_op);
    if (res == -ETIME)
        c->timed_out = true;
    connect_finished(c);
}

static void recv_complete(struct lr__op *op, int res, uint32_t flags)
{
    struct lr__conn *c = CONN_OF(op, recv_op);
    if (flags & IORING_CQE_F_BUFFER) {
        unsigned bid = flags >> IORING_CQE_BUFFER_SHIFT;
        if (res > 0 && c->state == LR_CONN_OPEN) {
            c->bytes_in += (uint64_t)res;
            if (!c->tls) {
                c->cbs->on_data(c, lr__loop_buf(c->loop, bid), (size_t)res);
            } else {
                c->tls_heard = true;
                if (lr__tls_feed(c->tls, lr__loop_buf(c->loop, bid), (size_t)res) < 0)
                    fail(c, LR_ETLS);
                else
                    tls_progress(c);
            }
        }
        lr__loop_buf_return(c->loop, bid);
    }
    if (c->state == LR_CONN_CLOSING) {
        maybe_closed(c);
        return;
    }
    if (res == 0) {
        fail(c, LR_EEOF);
    } else if (res == -ENOBUFS) {
        /* Every buffer was in use; the flush phase re-arms once they are back. */
        c->recv_rearm = true;
        lr__loop_want_flush(c->loop, &c->flush_task);
    } else if (res < 0) {
        fail(c, res);
    } else if (!(flags & IORING_CQE_F_MORE) && c->state == LR_CONN_OPEN) {
        arm_recv(c); /* the kernel ended the multishot; keep reading */
    }
}

static void send_buf(struct lr__conn *c, const char *p, size_t len, int flags)
{
    struct io_uring_sqe *sqe = lr__loop_sqe(c->loop, &c->send_op);
    if (!sqe) {
        fail(c, -EBUSY);
        return;
    }
    c->out_inflight = len;
    c->sends++;
    io_uring_prep_send(sqe, c->fd, p, len, MSG_NOSIGNAL | flags);
}

/* TLS: encrypt what the owner wrote (whole records while they fit), then
 * send the ciphertext. Freed plaintext space is reported through on_drain. */
static void flush_tls(struct lr__conn *c)
{
    size_t off = 0;
    while (!c->tls_handshaking && off < c->out_len) {
        int n = lr__tls_write(c->tls, c->out + off, c->out_len - off);
        if (n < 0) {
            fail(c, n);
            return;
        }
        if (!n)
            break;
        off += (size_t)n;
    }
    if (off) {
        memmove(c->out, c->out + off, c->out_len - off);
        c->out_len -= off;
    }
    size_t len;
    char *tx = lr__tls_txbuf(c->tls, &len);
    if (len && !c->send_op.inflight)
        send_buf(c, tx, len, 0);
    if (off && c->cbs->on_drain && c->state == LR_CONN_OPEN)
        c->cbs->on_drain(c);
}

static void flush_run(struct lr__task *t)
{
    struct lr__conn *c = lr_container_of(t, struct lr__conn, flush_task);
    if (c->state != LR_CONN_OPEN)
        return;
    if (c->recv_rearm && !c->recv_op.inflight) {
        c->recv_rearm = false;
        arm_recv(c);
    }
    if (c->tls)
        flush_tls(c);
    else if (c->out_len && !c->send_op.inflight)
        send_buf(c, c->out, c->out_len, 0);
}

static void send_complete(struct lr__op *op, int res, uint32_t flags)
{
    (void)flags;
    struct lr__conn *c = CONN_OF(op, send_op);
    if (c->state == LR_CONN_CLOSING) { /* close already discarded the output */
        c->out_inflight = 0;
        maybe_closed(c);
        return;
    }
    size_t sent = res > 0 ? (size_t)res : 0;
    if (sent > c->out_inflight) /* cannot happen; never trust a count blindly */
        sent = c->out_inflight;
    if (c->tls) {
        lr__tls_sent(c->tls, sent);
        c->bytes_out += sent;
        c->out_inflight = 0;
        size_t more;
        lr__tls_txbuf(c->tls, &more);
        if (res < 0)
            fail(c, res == -EPIPE ? -ECONNRESET : res);
        else if (more || c->out_len)
            lr__loop_want_flush(c->loop, &c->flush_task);
        return;
    }
    if (sent) {
        memmove(c->out, c->out + sent, c->out_len - sent);
        c->out_len -= sent;
        c->bytes_out += sent;
    }
    c->out_inflight = 0;
    if (res < 0) {
        fail(c, res == -EPIPE ? -ECONNRESET : res);
        return;
    }
    if (c->out_len)
        lr__loop_want_flush(c->loop, &c->flush_task); /* partial send: the rest next */
    if (sent && c->cbs->on_drain && c->state == LR_CONN_OPEN)
        c->cbs->on_drain(c);
}

void lr__conn_commit(struct lr__conn *c, size_t n)
{
    if (n > c->out_cap - c->out_len)
        n = c->out_cap - c->out_len;
    c->out_len += n;
    if (n && c->state == LR_CONN_OPEN)
        lr__loop_want_flush(c->loop, &c->flush_task);
}

int lr__conn_write(struct lr__conn *c, const void *p, size_t n)
{
    size_t avail;
    char *w = lr__conn_wbuf(c, &avail);
    if (n > avail)
        return -ENOBUFS;
    memcpy(w, p, n);
    lr__conn_commit(c, n);
    return 0;
}

static void cancel_complete(struct lr__op *op, int res, uint32_t flags)
{
    (void)res;
    (void)flags;
    maybe_closed(CONN_OF(op, cancel_op));
}

static void cancel_op(struct lr__conn *c, struct lr__op *target)
{
    if (!target->inflight)
        return;
    struct io_uring_sqe *sqe = lr__loop_sqe(c->loop, &c->cancel_op);
    if (!sqe) {
        /* Cannot cancel: shutting the socket down completes recv and send. */
        shutdown(c->fd, SHUT_RDWR);
        return;
    }
    io_uring_prep_cancel64(sqe, (uint64_t)(uintptr_t)target, 0);
}

void lr__conn_close(struct lr__conn *c)
{
    if (c->state == LR_CONN_CLOSING)
        return;
    if (c->state == LR_CONN_IDLE) {
        if (!lr_list_is_linked(&c->close_task.link))
            lr__loop_defer(c->loop, &c->close_task);
        return;
    }
    bool tls_up = c->tls && c->state == LR_CONN_OPEN && !c->tls_handshaking;
    c->state = LR_CONN_CLOSING;
    lr__task_cancel(&c->flush_task);
    lr_timer_stop(&c->hs_timer);
    c->tls_handshaking = false;
    c->out_len = 0; /* unsent output is dropped; an in-flight send keeps its bytes */
    cancel_op(c, &c->connect_op);
    cancel_op(c, &c->recv_op);
    if (c->send_op.inflight) {
        cancel_op(c, &c->send_op); /* it may be stuck behind a stalled peer */
    } else if (tls_up) {
        /* close_notify, best effort: MSG_DONTWAIT, so a stalled peer cannot
         * hold the close up */
        size_t len;
        lr__tls_shutdown(c->tls);
        char *tx = lr__tls_txbuf(c->tls, &len);
        if (len)
            send_buf(c, tx, len, MSG_DONTWAIT);
    }
    maybe_closed(c);
}
