/* SPDX-License-Identifier: MIT */
/*
 * exporter_fixture.h - the exporter tests' fixture: a mem:// manager
 * labelled "main" with three leases, @held of them acquired, exported on a
 * free loopback port, on the recorder's loop.
 */
#ifndef LR_TEST_EXPORTER_FIXTURE_H
#define LR_TEST_EXPORTER_FIXTURE_H

#include <stdio.h>

#include <leasering.h>
#include "recorder.h"

struct fixture {
    struct lr_manager *m;
    struct lr_exporter *e;
    struct lr_lease l[3];
    int port;
};

static inline int fixture_setup(struct fixture *f, int held, uint32_t ttl_ms)
{
    static int seq;
    char uri[32];
    rec_setup();
    snprintf(uri, sizeof uri, "mem://exp%d", ++seq);
    struct lr_manager_opts o = {.ttl_ms = ttl_ms, .cbs = &rec_cbs, .max_leases = 16};
    if (lr_manager_new(&f->m, loop, uri, &o))
        return -1;
    if (lr_exporter_new(&f->e, loop, "127.0.0.1:0") || lr_exporter_add(f->e, f->m, "main"))
        return -1;
    f->port = lr_exporter_port(f->e);
    const char *names[] = {"a", "b", "c"};
    for (int i = 0; i < 3; i++)
        if (lr_lease_init(f->m, &f->l[i], names[i], NULL))
            return -1;
    for (int i = 0; i < held; i++)
        if (lr_lease_acquire(&f->l[i], 1000))
            return -1;
    for (int tries = 0; rec_count(EV_ACQ, NULL) < held && tries < 10; tries++)
        run_until(EV_ACQ, 1000);
    return rec_count(EV_ACQ, NULL) == held ? 0 : -1;
}

static inline void fixture_teardown(struct fixture *f)
{
    lr_exporter_free(f->e);
    for (int i = 0; i < 3; i++)
        lr_lease_deinit(&f->l[i]);
    close_mgr(f->m);
}

#endif
