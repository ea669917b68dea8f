/* SPDX-License-Identifier: MIT */
/*
 * echo.h - a blocking TCP peer on a thread, on a free loopback port, for net
 * tests: ECHO returns every byte; CLOSE accepts and closes at once; SILENT
 * accepts and reads nothing.
 */
#ifndef LR_TEST_ECHO_H
#define LR_TEST_ECHO_H

#include <netinet/in.h>
#include <pthread.h>

/* A listening socket on 127.0.0.1 (port chosen by the kernel) whose
 * connections a thread serves: @serve_fn(arg) runs accept() on @listen_fd until
 * it fails, which peer_stop() causes. The base of every fake server here. */
struct tcp_peer {
    int listen_fd;
    struct sockaddr_in addr; /* 127.0.0.1:port */
    pthread_t thread;
};

/* Returns 0 or -errno. */
int peer_start(struct tcp_peer *p, void *(*serve_fn)(void *arg), void *arg);
void peer_stop(struct tcp_peer *p);

enum echo_mode { ECHO_ECHO, ECHO_CLOSE };

struct echo_server {
    struct tcp_peer peer;
    struct sockaddr_in addr; /* = peer.addr, for callers */
    enum echo_mode mode;
    unsigned long long bytes;
};

/* Start listening on 127.0.0.1 (port chosen by the kernel) and serve one
 * connection at a time until echo_stop(). Returns 0 or -errno. */
int echo_start(struct echo_server *s, enum echo_mode mode);
void echo_stop(struct echo_server *s);

/* A free loopback port with nothing listening (for connection-refused). */
int free_port_sockaddr(struct sockaddr_in *out);

#endif
