/* SPDX-License-Identifier: MIT */
/* echo.c - see echo.h. */
#include <arpa/inet.h>
#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "echo.h"

static void *serve(void *arg)
{
    struct echo_server *s = arg;
    static __thread char buf[65536];
    for (;;) {
        int fd = accept(s->peer.listen_fd, NULL, NULL);
        if (fd < 0)
            return NULL; /* listen socket shut down */
        if (s->mode == ECHO_CLOSE) {
            close(fd);
            continue;
        }
        for (;;) {
            ssize_t n = read(fd, buf, sizeof(buf));
            if (n <= 0)
                break;
            s->bytes += (unsigned long long)n;
            for (ssize_t off = 0; off < n;) {
                ssize_t w = write(fd, buf + off, (size_t)(n - off));
                if (w <= 0)
                    goto done;
                off += w;
            }
        }
    done:
        close(fd);
    }
}

static int bind_loopback(int fd, struct sockaddr_in *out)
{
    memset(out, 0, sizeof(*out));
    out->sin_family = AF_INET;
    out->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    out->sin_port = 0;
    if (bind(fd, (struct sockaddr *)out, sizeof(*out)) < 0)
        return -errno;
    socklen_t len = sizeof(*out);
    if (getsockname(fd, (struct sockaddr *)out, &len) < 0)
        return -errno;
    return 0;
}

int peer_start(struct tcp_peer *p, void *(*serve_fn)(void *arg), void *arg)
{
    memset(p, 0, sizeof(*p));
    p->listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (p->listen_fd < 0)
        return -errno;
    int rc = bind_loopback(p->listen_fd, &p->addr);
    if (rc == 0 && listen(p->listen_fd, 16) < 0)
        rc = -errno;
    if (rc == 0)
        rc = -pthread_create(&p->thread, NULL, serve_fn, arg);
    if (rc < 0)
        close(p->listen_fd);
    return rc;
}

void peer_stop(struct tcp_peer *p)
{
    shutdown(p->listen_fd, SHUT_RDWR);
    pthread_join(p->thread, NULL);
    close(p->listen_fd);
}

int echo_start(struct echo_server *s, enum echo_mode mode)
{
    memset(s, 0, sizeof(*s));
    s->mode = mode;
    int rc = peer_start(&s->peer, serve, s);
    s->addr = s->peer.addr;
    return rc;
}

void echo_stop(struct echo_server *s)
{
    peer_stop(&s->peer);
}

int free_port_sockaddr(struct sockaddr_in *out)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    int rc = bind_loopback(fd, out);
    close(fd); /* the port is now free and nobody listens on it */
    return rc;
}
