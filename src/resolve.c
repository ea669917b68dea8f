/* SPDX-License-Identifier: MIT */
/*
 * resolve.c - host name lookups off the loop thread (see resolve_int.h).
 *
 * The loop and the helper thread share one struct lr__resolve_shared under
 * a mutex: a request (host, port) goes in, a result (address or failure)
 * comes out, and the thread writes the eventfd when a result is ready. The
 * shared part is counted: the resolver holds one reference, the thread one;
 * the last to let go frees it and closes the eventfd. Since that may happen
 * on the helper thread, the shared part comes from libc's malloc, not from
 * the lr_set_allocator hook (a user allocator need not be thread-safe).
 * The loop side allocates nothing per lookup.
 * Layer: the loop's; knows no protocol.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>
#include <arpa/inet.h>

#include "resolve_int.h"

struct lr__resolve_shared {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    pthread_t thread;
    bool started;   /* the helper thread exists */
    int refs;       /* the resolver's and the thread's */
    int efd;
    bool quit;      /* the resolver let go: exit, report nothing */
    bool want;      /* a request waits for the thread */
    bool running;   /* the thread is inside getaddrinfo */
    bool done;      /* a result waits for the loop */
    int gai;        /* getaddrinfo's return */
    int sys_errno;  /* errno, for EAI_SYSTEM */
    char host[256];
    char port[8];
    struct sockaddr_storage addr;
    socklen_t addrlen;
};

static lr__getaddrinfo_fn hook;
static int live; /* shared parts allocated and not yet freed (tests) */

int lr__resolve_live(void)
{
    return __atomic_load_n(&live, __ATOMIC_ACQUIRE);
}

void lr__resolve_set_hook(lr__getaddrinfo_fn fn)
{
    __atomic_store_n(&hook, fn, __ATOMIC_RELEASE);
}

static void shared_destroy(struct lr__resolve_shared *sh)
{
    pthread_mutex_destroy(&sh->mu);
    pthread_cond_destroy(&sh->cv);
    close(sh->efd);
    free(sh);
    __atomic_sub_fetch(&live, 1, __ATOMIC_RELEASE);
}

/* Drop one reference; the caller holds the mutex, which this releases. */
static void shared_put_locked(struct lr__resolve_shared *sh)
{
    bool last = --sh->refs == 0;
    pthread_mutex_unlock(&sh->mu);
    if (last)
        shared_destroy(sh);
}

static void *worker(void *arg)
{
    struct lr__resolve_shared *sh = arg;
    pthread_mutex_lock(&sh->mu);
    for (;;) {
        while (!sh->quit && !sh->want)
            pthread_cond_wait(&sh->cv, &sh->mu);
        if (sh->quit)
            break;
        char host[sizeof(sh->host)], port[sizeof(sh->port)];
        memcpy(host, sh->host, sizeof(host));
        memcpy(port, sh->port, sizeof(port));
        sh->want = false;
        sh->running = true;
        pthread_mutex_unlock(&sh->mu);

        struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                                 .ai_flags = AI_NUMERICSERV};
        struct addrinfo *res = NULL;
        lr__getaddrinfo_fn fn = __atomic_load_n(&hook, __ATOMIC_ACQUIRE);
        errno = 0;
        int g = fn ? fn(host, port, &hints, &res) : getaddrinfo(host, port, &hints, &res);
        int e = errno;

        pthread_mutex_lock(&sh->mu);
        sh->gai = g;
        sh->sys_errno = e;
        sh->addrlen = 0;
        if (g == 0 && res && res->ai_addrlen <= sizeof(sh->addr)) {
            memcpy(&sh->addr, res->ai_addr, res->ai_addrlen);
            sh->addrlen = res->ai_addrlen;
        } else if (g == 0) {
            sh->gai = EAI_FAMILY; /* nothing usable came back */
        }
        if (res)
            freeaddrinfo(res);
        sh->running = false;
        sh->done = true;
        if (!sh->quit) {
            uint64_t one = 1;
            ssize_t w = write(sh->efd, &one, sizeof(one));
            (void)w; /* cannot fail short of a counter overflow: then it is readable anyway */
        }
    }
    shared_put_locked(sh);
    return NULL;
}

int lr__resolver_init(struct lr__resolver *r, struct lr_loop *loop, lr__resolve_cb cb)
{
    void *data = r->data;
    memset(r, 0, sizeof(*r));
    r->data = data;
    r->loop = loop;
    r->cb = cb;
    lr__task_init(&r->close_task, NULL);
    struct lr__resolve_shared *sh = calloc(1, sizeof(*sh));
    if (!sh)
        return -ENOMEM;
    sh->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (sh->efd < 0) {
        int rc = -errno;
        free(sh);
        return rc;
    }
    pthread_mutex_init(&sh->mu, NULL);
    pthread_cond_init(&sh->cv, NULL);
    sh->refs = 1;
    __atomic_add_fetch(&live, 1, __ATOMIC_RELEASE);
    r->sh = sh;
    return 0;
}

/* The text of a failed lookup, on the loop thread (gai_strerror is static). */
static int failure(struct lr__resolver *r, int gai, int sys_errno)
{
    if (gai == EAI_SYSTEM) {
        snprintf(r->why, sizeof(r->why), "%s", strerror(sys_errno ? sys_errno : EIO));
        return sys_errno ? -sys_errno : -EIO;
    }
    snprintf(r->why, sizeof(r->why), "%s", gai_strerror(gai));
    return gai == EAI_MEMORY ? -ENOMEM : -EHOSTUNREACH;
}

static void readable(struct lr_poll *p, int status, unsigned events)
{
    (void)events;
    struct lr__resolver *r = lr_container_of(p, struct lr__resolver, poll);
    uint64_t n;
    ssize_t got = read(r->sh->efd, &n, sizeof(n));
    (void)got; /* EAGAIN: a stale wakeup; done below says whether a result is in */
    struct lr__resolve_shared *sh = r->sh;
    pthread_mutex_lock(&sh->mu);
    bool done = sh->done;
    sh->done = false;
    int gai = sh->gai, e = sh->sys_errno;
    struct sockaddr_storage addr = sh->addr;
    socklen_t len = sh->addrlen;
    pthread_mutex_unlock(&sh->mu);
    if (status < 0 && !done) {
        /* the poll itself failed (cannot happen on an eventfd): say so rather
         * than leave the owner waiting */
        lr_poll_stop(p);
        r->busy = false;
        snprintf(r->why, sizeof(r->why), "watching the resolver failed: %s",
                 strerror(-status));
        r->cb(r, status, NULL, 0); /* may close r: last use */
        return;
    }
    if (!done)
        return;
    lr_poll_stop(p);
    r->busy = false;
    if (gai != 0) {
        int rc = failure(r, gai, e);
        r->cb(r, rc, NULL, 0); /* may close r: last use */
        return;
    }
    r->why[0] = '\0';
    r->cb(r, 0, (const struct sockaddr *)&addr, len); /* may close r: last use */
}

int lr__addr_numeric(const char *ip, size_t len, uint16_t port, struct sockaddr_storage *out,
                     socklen_t *outlen)
{
    char buf[64];
    if (len == 0 || len >= sizeof(buf))
        return -EINVAL;
    memcpy(buf, ip, len);
    buf[len] = 0;
    memset(out, 0, sizeof(*out));
    struct sockaddr_in *v4 = (struct sockaddr_in *)out;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)out;
    if (inet_pton(AF_INET, buf, &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons(port);
        *outlen = sizeof(*v4);
        return 0;
    }
    if (inet_pton(AF_INET6, buf, &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons(port);
        *outlen = sizeof(*v6);
        return 0;
    }
    return -EINVAL;
}

static int port_text(unsigned port, char out[8])
{
    int n = snprintf(out, 8, "%u", port);
    return n > 0 && n < 8 ? 0 : -EINVAL;
}

int lr__resolver_start(struct lr__resolver *r, const char *host, unsigned port,
                       struct sockaddr_storage *out, socklen_t *outlen)
{
    if (r->closing || !r->sh)
        return -EINVAL;
    if (r->busy)
        return -EBUSY;
    if (!host[0])
        host = "127.0.0.1";
    char ptext[8];
    if (port_text(port, ptext) < 0)
        return -EINVAL;
    size_t hl = strlen(host);
    if (hl >= sizeof(r->sh->host))
        return -ENAMETOOLONG;

    /* A numeric address never touches DNS: convert it here. */
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_NUMERICHOST | AI_NUMERICSERV};
    struct addrinfo *res = NULL;
    int g = getaddrinfo(host, ptext, &hints, &res);
    if (g == 0) {
        int rc = res->ai_addrlen <= sizeof(*out) ? 1 : -EAFNOSUPPORT;
        if (rc == 1) {
            memcpy(out, res->ai_addr, res->ai_addrlen);
            *outlen = res->ai_addrlen;
        }
        freeaddrinfo(res);
        return rc;
    }
    if (g != EAI_NONAME)
        return failure(r, g, errno);

    /* A name: ask the helper thread. */
    struct lr__resolve_shared *sh = r->sh;
    if (!r->poll_inited) {
        int rc = lr_poll_init(r->loop, &r->poll, sh->efd, readable);
        if (rc < 0)
            return rc;
        r->poll_inited = true;
    }
    pthread_mutex_lock(&sh->mu);
    if (!sh->started) {
        /* The helper takes no signals: they stay the application's threads' */
        sigset_t all, old;
        sigfillset(&all);
        pthread_sigmask(SIG_SETMASK, &all, &old);
        int rc = pthread_create(&sh->thread, NULL, worker, sh);
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        if (rc != 0) {
            pthread_mutex_unlock(&sh->mu);
            snprintf(r->why, sizeof(r->why), "no resolver thread: %s", strerror(rc));
            return -rc;
        }
        sh->started = true;
        sh->refs++;
    }
    memcpy(sh->host, host, hl + 1);
    memcpy(sh->port, ptext, sizeof(ptext));
    sh->want = true;
    sh->done = false;
    pthread_cond_signal(&sh->cv);
    pthread_mutex_unlock(&sh->mu);
    r->busy = true;
    lr_poll_start(&r->poll, LR_POLL_IN);
    return 0;
}

/* Let go of the shared part. An idle thread is told to exit and joined (it
 * only has to wake up); one inside getaddrinfo is detached and frees the
 * shared part itself when the lookup returns. */
static void let_go(struct lr__resolver *r)
{
    struct lr__resolve_shared *sh = r->sh;
    if (!sh)
        return;
    r->sh = NULL;
    pthread_mutex_lock(&sh->mu);
    sh->quit = true;
    pthread_cond_signal(&sh->cv);
    if (sh->started && !sh->running) {
        pthread_t t = sh->thread;
        pthread_mutex_unlock(&sh->mu);
        pthread_join(t, NULL); /* the thread dropped its reference: ours is the last */
        pthread_mutex_lock(&sh->mu);
    } else if (sh->started) {
        pthread_detach(sh->thread);
    }
    shared_put_locked(sh);
}

static void closed_poll(struct lr_poll *p)
{
    struct lr__resolver *r = lr_container_of(p, struct lr__resolver, poll);
    r->poll_inited = false;
    if (r->close_cb)
        r->close_cb(r); /* may free r: last use */
}

static void closed_task(struct lr__task *t)
{
    struct lr__resolver *r = lr_container_of(t, struct lr__resolver, close_task);
    if (r->close_cb)
        r->close_cb(r); /* may free r: last use */
}

void lr__resolver_close(struct lr__resolver *r, void (*close_cb)(struct lr__resolver *r))
{
    if (r->closing)
        return;
    r->closing = true;
    r->busy = false;
    r->close_cb = close_cb;
    /* Before let_go, which may close the eventfd: the poll request holds its
     * own file reference and is cancelled by identity. */
    if (r->poll_inited)
        lr_poll_close(&r->poll, closed_poll);
    let_go(r);
    if (!r->poll_inited) {
        r->close_task.run = closed_task;
        lr__loop_defer(r->loop, &r->close_task);
    }
}

void lr__resolver_deinit(struct lr__resolver *r)
{
    lr__task_cancel(&r->close_task);
    let_go(r);
}
