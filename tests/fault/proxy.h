/* SPDX-License-Identifier: MIT */
/*
 * proxy.h - a userspace TCP proxy for fault injection without root: it
 * forwards 127.0.0.1:<its port> to 127.0.0.1:<upstream>, one thread per
 * proxy, and on command goes silent both ways -- it stops accepting, reading
 * and writing, keeps every socket open and sends no RST, so the peers see a
 * partition, not a failure -- then resumes, delivering whatever was held.
 * Re-pointing moves it to another upstream (a promoted replica): new
 * connections go to the new port; the current ones stay on the old one until
 * they are cut (closed, so the client reconnects).
 * A connection whose upstream refuses, or whose other side closes, is closed.
 */
#ifndef LR_TEST_FAULT_PROXY_H
#define LR_TEST_FAULT_PROXY_H

#include <stdbool.h>

struct fproxy;

/* fproxy_start - listen on a free loopback port and forward to @upstream_port.
 * Returns: 0; -errno (socket, bind, thread). */
int fproxy_start(struct fproxy **p, int upstream_port);
/* The port clients connect to. */
int fproxy_port(const struct fproxy *p);
/* fproxy_bytes - bytes it has read so far, both ways: a client with several
 * endpoints, each behind a proxy, talks to the one whose count grows. */
unsigned long fproxy_bytes(const struct fproxy *p);
/* fproxy_silence - @on: go silent both ways (takes effect within ~10 ms);
 * off: resume. */
void fproxy_silence(struct fproxy *p, bool on);
/* fproxy_retarget - forward new connections to @upstream_port. */
void fproxy_retarget(struct fproxy *p, int upstream_port);
/* fproxy_cut - close every current connection (within ~10 ms). */
void fproxy_cut(struct fproxy *p);
/* fproxy_free - stop the thread, close everything, free. NULL is fine. */
void fproxy_free(struct fproxy *p);

#endif
