/* SPDX-License-Identifier: MIT */
/*
 * hiredis1_compile.c - compiles leasering/adapters/hiredis.h against the
 * hiredis 1.x stand-in headers in compat/hiredis1/, so the HIREDIS_MAJOR >= 1
 * branch (scheduleTimer -> lr_timer -> redisAsyncHandleTimeout) is built on
 * every run even though Debian ships hiredis 0.14.1. Compiled, never linked.
 */
#include <leasering/adapters/hiredis.h>

#if !LR_HIREDIS_HAS_TIMER
#error "the hiredis 1.x stand-in must select the timer branch"
#endif

int lr_compat_hiredis1_attach(struct lr_loop *loop, redisAsyncContext *ac);

int lr_compat_hiredis1_attach(struct lr_loop *loop, redisAsyncContext *ac)
{
    int rc = lr_hiredis_attach(loop, ac);
    if (rc == 0)
        ac->ev.scheduleTimer(ac->ev.data, (struct timeval){.tv_sec = 1});
    if (rc == 0)
        rc = lr_hiredis_set_timeout(ac, 1500);
    return rc;
}
