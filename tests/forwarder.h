/* SPDX-License-Identifier: MIT */
/*
 * forwarder.h - a userspace TCP forwarder on loopback for failover tests: a
 * "virtual IP" that sends each new connection to the current target port.
 * Switching the target leaves open connections where they are (as a moved
 * VIP or DNS name does: clients find out when the old server answers
 * differently or goes away). A thread accepts; each connection gets a thread
 * copying bytes both ways.
 */
#ifndef LR_TEST_FORWARDER_H
#define LR_TEST_FORWARDER_H

#include <pthread.h>

#include "echo.h"

#define FORWARDER_MAX 32 /* connections at once; more are refused (closed) */

struct fwd_link {
    int client;
    int server;
    pthread_t thread;
    int used; /* 0 free, 1 copying, 2 finished (thread to join) */
};

struct forwarder {
    struct tcp_peer peer; /* peer.addr: where clients connect */
    int target_port;      /* 127.0.0.1:target_port, read under mu */
    unsigned long accepted;
    pthread_mutex_t mu;
    struct fwd_link links[FORWARDER_MAX];
};

/* Listen on a free loopback port, forwarding to 127.0.0.1:@target_port.
 * Returns 0 or -errno. */
int forwarder_start(struct forwarder *f, int target_port);
/* New connections go to 127.0.0.1:@port from now on. */
void forwarder_set_target(struct forwarder *f, int port);
/* Connections accepted so far. */
unsigned long forwarder_accepted(struct forwarder *f);
/* Stop accepting, cut every connection, join every thread. */
void forwarder_stop(struct forwarder *f);

#endif
