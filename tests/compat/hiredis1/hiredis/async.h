/* SPDX-License-Identifier: MIT */
/*
 * A stand-in for hiredis >= 1.0's async.h (see hiredis.h beside it): the
 * event-library hooks as 1.x declares them, including scheduleTimer, and
 * redisAsyncHandleTimeout. Compile-only.
 */
#ifndef LR_COMPAT_HIREDIS1_ASYNC_H
#define LR_COMPAT_HIREDIS1_ASYNC_H

#include "hiredis.h"

typedef struct redisAsyncContext {
    redisContext c;
    int err;
    char *errstr;
    void *data;
    void (*dataCleanup)(void *privdata);
    struct {
        void *data;
        void (*addRead)(void *privdata);
        void (*delRead)(void *privdata);
        void (*addWrite)(void *privdata);
        void (*delWrite)(void *privdata);
        void (*cleanup)(void *privdata);
        void (*scheduleTimer)(void *privdata, struct timeval tv);
    } ev;
} redisAsyncContext;

void redisAsyncHandleRead(redisAsyncContext *ac);
void redisAsyncHandleWrite(redisAsyncContext *ac);
void redisAsyncHandleTimeout(redisAsyncContext *ac);
int redisAsyncSetTimeout(redisAsyncContext *ac, struct timeval tv);

#endif
