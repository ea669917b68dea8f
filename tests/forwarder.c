/* SPDX-License-Identifier: MIT */
/* forwarder.c - see forwarder.h. */
#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "forwarder.h"

/* Copy what @from has into @to; false once either side is done. */
static int pump(int from, int to)
{
    char buf[16384];
    ssize_t n = read(from, buf, sizeof(buf));
    if (n <= 0)
        return 0;
    for (ssize_t off = 0; off < n;) {
        ssize_t w = write(to, buf + off, (size_t)(n - off));
        if (w <= 0)
            return 0;
        off += w;
    }
    return 1;
}


static void *copy_both_ways(void *arg)
{
    struct fwd_link *l = arg;
    struct pollfd p[2] = {{.fd = l->client, .events = POLLIN}, {.fd = l->server, .events = POLLIN}};
    for (;;) {
        if (poll(p, 2, -1) < 0 && errno != EINTR)
            break;
        if (p[0].revents && !pump(l->client, l->server))
            break;
        if (p[1].revents && !pump(l->server, l->client))
            break;
    }
    /* one side ended: end the other, as a proxy that holds no state does */
    shutdown(l->client, SHUT_RDWR);
    shutdown(l->server, SHUT_RDWR);
    return NULL;
}

static int connect_target(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* Join and close the links whose copying ended (under mu). */
static void reap(struct forwarder *f, int all)
{
    for (int i = 0; i < FORWARDER_MAX; i++) {
        struct fwd_link *l = &f->links[i];
        if (!l->used)
            continue;
        if (all) {
            shutdown(l->client, SHUT_RDWR);
            shutdown(l->server, SHUT_RDWR);
        } else if (pthread_tryjoin_np(l->thread, NULL) != 0) {
            continue;
        }
        if (all)
            pthread_join(l->thread, NULL);
        close(l->client);
        close(l->server);
        l->used = 0;
    }
}

static void *serve(void *arg)
{
    struct forwarder *f = arg;
    for (;;) {
        int c = accept4(f->peer.listen_fd, NULL, NULL, SOCK_CLOEXEC);
        if (c < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            return NULL; /* the listening socket was shut down */
        }
        pthread_mutex_lock(&f->mu);
        int port = f->target_port;
        f->accepted++;
        reap(f, 0);
        struct fwd_link *l = NULL;
        for (int i = 0; i < FORWARDER_MAX && !l; i++)
            if (!f->links[i].used)
                l = &f->links[i];
        pthread_mutex_unlock(&f->mu);
        int s = l ? connect_target(port) : -1;
        if (s < 0) {
            close(c); /* no target (or no room): the client sees a reset */
            continue;
        }
        pthread_mutex_lock(&f->mu);
        l->client = c;
        l->server = s;
        l->used = 1;
        if (pthread_create(&l->thread, NULL, copy_both_ways, l) != 0) {
            close(c);
            close(s);
            l->used = 0;
        }
        pthread_mutex_unlock(&f->mu);
    }
}

int forwarder_start(struct forwarder *f, int target_port)
{
    memset(f->links, 0, sizeof(f->links));
    f->target_port = target_port;
    f->accepted = 0;
    pthread_mutex_init(&f->mu, NULL);
    return peer_start(&f->peer, serve, f);
}

void forwarder_set_target(struct forwarder *f, int port)
{
    pthread_mutex_lock(&f->mu);
    f->target_port = port;
    pthread_mutex_unlock(&f->mu);
}

unsigned long forwarder_accepted(struct forwarder *f)
{
    pthread_mutex_lock(&f->mu);
    unsigned long n = f->accepted;
    pthread_mutex_unlock(&f->mu);
    return n;
}

void forwarder_stop(struct forwarder *f)
{
    peer_stop(&f->peer);
    pthread_mutex_lock(&f->mu);
    reap(f, 1);
    pthread_mutex_unlock(&f->mu);
    pthread_mutex_destroy(&f->mu);
}
