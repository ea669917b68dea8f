/* SPDX-License-Identifier: MIT */
/*
 * A stand-in for hiredis >= 1.0's hiredis.h, written from its documented API,
 * with just what leasering/adapters/hiredis.h touches. Debian 12 ships 0.14.1
 * only; this lets the build prove that the adapter's HIREDIS_MAJOR >= 1 part
 * (the scheduleTimer hook) compiles. Never linked, never run.
 */
#ifndef LR_COMPAT_HIREDIS1_H
#define LR_COMPAT_HIREDIS1_H

#include <stddef.h>
#include <sys/time.h>

#define HIREDIS_MAJOR 1
#define HIREDIS_MINOR 2
#define HIREDIS_PATCH 0

#define REDIS_OK 0
#define REDIS_ERR -1
#define REDIS_CONNECTED 0x2

typedef int redisFD; /* hiredis 1.x: the socket type (int on POSIX) */

typedef struct redisContext {
    int err;
    char errstr[128];
    redisFD fd;
    int flags;
} redisContext;

#endif
