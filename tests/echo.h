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

enum echo_mode { ECHO_ECHO, ECHO_CLOSE };

struct echo_server {
    int listen_fd;
    struct sockaddr_in addr; /* 127.0.0.1:port */
    enum echo_mode mode;
    pthread_t thread;
    unsigned long long bytes;
};

/* Start listening on 127.0.0.1 (port chosen by the kernel) and serve one
 * connection at a time until echo_stop(). Returns 0 or -errno. */
int echo_start(struct echo_server *s, enum echo_mode mode);
void echo_stop(struct echo_server *s);

/* A free loopback port with nothing listening (for connection-refused). */
int free_port_sockaddr(struct sockaddr_in *out);

#endif
