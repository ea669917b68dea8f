/* SPDX-License-Identifier: MIT */
/*
 * proxy.c - the fault suite's TCP proxy (proxy.h). One thread polls the
 * listening socket and every connection pair; commands reach it through
 * atomics it reads each round (at most every 10 ms), so silencing needs no
 * lock and no wakeup. While silent the thread only sleeps: the kernel keeps
 * accepting handshakes into the backlog and queueing bytes in the socket
 * buffers, which is what a peer behind a black hole sees.
 */
#include "proxy.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAX_PAIRS 32
#define BUF 65536

struct pipe_buf {
    size_t off, len;
    char data[BUF];
};

struct pair {
    int cfd, sfd;            /* -1 when the slot is free */
    struct pipe_buf c2s, s2c;
};

struct fproxy {
    pthread_t thread;
    int lfd, port;
    atomic_int upstream;
    atomic_bool silent, quit;
    atomic_uint cut;         /* bumped by fproxy_cut */
    atomic_ulong bytes;      /* read from either side, for fproxy_bytes */
    unsigned cut_seen;
    struct pair pairs[MAX_PAIRS];
};

static void addr_of(int port, struct sockaddr_in *a)
{
    memset(a, 0, sizeof(*a));
    a->sin_family = AF_INET;
    a->sin_port = htons((uint16_t)port);
    a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
}

static void set_nonblock(int fd)
{
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
}

static void close_pair(struct pair *q)
{
    if (q->cfd >= 0)
        close(q->cfd);
    if (q->sfd >= 0)
        close(q->sfd);
    q->cfd = q->sfd = -1;
    q->c2s.off = q->c2s.len = q->s2c.off = q->s2c.len = 0;
}

static void accept_one(struct fproxy *p)
{
    int cfd = accept4(p->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (cfd < 0)
        return;
    struct pair *q = NULL;
    for (int i = 0; i < MAX_PAIRS && !q; i++)
        if (p->pairs[i].cfd < 0)
            q = &p->pairs[i];
    int sfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a;
    addr_of(atomic_load(&p->upstream), &a);
    /* loopback: a blocking connect is answered at once (or refused) */
    if (!q || sfd < 0 || connect(sfd, (struct sockaddr *)&a, sizeof(a)) < 0) {
        if (sfd >= 0)
            close(sfd);
        close(cfd);
        return;
    }
    int one = 1;
    setsockopt(sfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    setsockopt(cfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    set_nonblock(sfd);
    q->cfd = cfd;
    q->sfd = sfd;
}

/* Move bytes: read @from into @b when it is empty and readable, then write
 * what @b holds to @to (non-blocking: a full socket takes what it can).
 * Returns false when the connection is over (EOF or error on either side). */
static bool pump(struct fproxy *p, int from, int to, struct pipe_buf *b, short rev_from)
{
    if (b->len == 0 && (rev_from & (POLLIN | POLLHUP | POLLERR))) {
        ssize_t n = read(from, b->data, sizeof(b->data));
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
            return false;
        if (n > 0) {
            b->off = 0;
            b->len = (size_t)n;
            atomic_fetch_add(&p->bytes, (unsigned long)n);
        }
    }
    if (b->len) {
        ssize_t n = write(to, b->data + b->off, b->len);
        if (n < 0 && errno != EAGAIN && errno != EINTR)
            return false;
        if (n > 0) {
            b->off += (size_t)n;
            b->len -= (size_t)n;
        }
    }
    return true;
}

static void *run(void *arg)
{
    struct fproxy *p = arg;
    struct pollfd fds[1 + 2 * MAX_PAIRS];
    while (!atomic_load(&p->quit)) {
        unsigned cut = atomic_load(&p->cut);
        if (cut != p->cut_seen) {
            p->cut_seen = cut;
            for (int i = 0; i < MAX_PAIRS; i++)
                close_pair(&p->pairs[i]);
        }
        if (atomic_load(&p->silent)) {
            poll(NULL, 0, 5);
            continue;
        }
        int n = 0;
        fds[n++] = (struct pollfd){.fd = p->lfd, .events = POLLIN};
        for (int i = 0; i < MAX_PAIRS; i++) {
            struct pair *q = &p->pairs[i];
            if (q->cfd < 0) {
                fds[n++] = (struct pollfd){.fd = -1};
                fds[n++] = (struct pollfd){.fd = -1};
                continue;
            }
            fds[n++] = (struct pollfd){.fd = q->cfd,
                                       .events = (short)((q->c2s.len ? 0 : POLLIN) |
                                                         (q->s2c.len ? POLLOUT : 0))};
            fds[n++] = (struct pollfd){.fd = q->sfd,
                                       .events = (short)((q->s2c.len ? 0 : POLLIN) |
                                                         (q->c2s.len ? POLLOUT : 0))};
        }
        if (poll(fds, (nfds_t)n, 10) <= 0)
            continue;
        if (atomic_load(&p->silent))
            continue; /* went silent while we waited: touch nothing */
        if (fds[0].revents & POLLIN)
            accept_one(p);
        for (int i = 0; i < MAX_PAIRS; i++) {
            struct pair *q = &p->pairs[i];
            struct pollfd *c = &fds[1 + 2 * i], *s = &fds[2 + 2 * i];
            if (q->cfd < 0 || c->fd < 0)
                continue;
            if (!pump(p, q->cfd, q->sfd, &q->c2s, c->revents) ||
                !pump(p, q->sfd, q->cfd, &q->s2c, s->revents))
                close_pair(q);
        }
    }
    for (int i = 0; i < MAX_PAIRS; i++)
        close_pair(&p->pairs[i]);
    return NULL;
}

int fproxy_start(struct fproxy **out, int upstream_port)
{
    struct fproxy *p = calloc(1, sizeof(*p));
    if (!p)
        return -ENOMEM;
    for (int i = 0; i < MAX_PAIRS; i++)
        p->pairs[i].cfd = p->pairs[i].sfd = -1;
    atomic_init(&p->upstream, upstream_port);
    atomic_init(&p->silent, false);
    atomic_init(&p->quit, false);
    atomic_init(&p->cut, 0);
    atomic_init(&p->bytes, 0);
    p->lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    struct sockaddr_in a;
    addr_of(0, &a);
    socklen_t len = sizeof(a);
    int rc = 0;
    if (p->lfd < 0 || bind(p->lfd, (struct sockaddr *)&a, sizeof(a)) < 0 ||
        listen(p->lfd, 64) < 0 || getsockname(p->lfd, (struct sockaddr *)&a, &len) < 0)
        rc = -errno;
    if (rc == 0) {
        p->port = ntohs(a.sin_port);
        rc = -pthread_create(&p->thread, NULL, run, p);
    }
    if (rc < 0) {
        if (p->lfd >= 0)
            close(p->lfd);
        free(p);
        return rc;
    }
    *out = p;
    return 0;
}

int fproxy_port(const struct fproxy *p)
{
    return p->port;
}

unsigned long fproxy_bytes(const struct fproxy *p)
{
    return atomic_load(&((struct fproxy *)p)->bytes);
}

void fproxy_silence(struct fproxy *p, bool on)
{
    atomic_store(&p->silent, on);
}

void fproxy_retarget(struct fproxy *p, int upstream_port)
{
    atomic_store(&p->upstream, upstream_port);
}

void fproxy_cut(struct fproxy *p)
{
    atomic_fetch_add(&p->cut, 1);
}

void fproxy_free(struct fproxy *p)
{
    if (!p)
        return;
    atomic_store(&p->quit, true);
    pthread_join(p->thread, NULL);
    close(p->lfd);
    free(p);
}
