/* SPDX-License-Identifier: MIT */
/*
 * common.h - the lease side of the three embedding examples (epoll.c,
 * libuv.c, libevent.c): command line, the leasering callbacks that print one
 * line per event, and the shutdown sequence (release every lease, wait for
 * the released callbacks, close the manager). Nothing here knows the host
 * loop; each example does its own watching, timing and lr_loop_process().
 *
 *     <prog> URI RUN_MS [PREFIX]
 *
 * holds PREFIX "a", "b" and "c" on URI (e.g. redis://127.0.0.1:6379) with a
 * 1 s TTL, so renewals come about every 333 ms, releases them after RUN_MS
 * and exits 0. Output, one flushed line per event:
 *
 *     acquired NAME fence N
 *     renewed NAME
 *     jeopardy NAME REASON      (a renewal failed or is late; still held)
 *     released NAME
 *     lost NAME REASON
 *     done renewed=N
 *
 * REASON is lr_err_name()'s symbol (LR_EEXPIRED, ...). A failed acquire, a
 * lost lease or any leasering error prints a message on stderr, releases
 * what is held, and makes the exit status 1 (2 for a bad command line).
 */
#ifndef LEASERING_EXAMPLES_COMMON_H
#define LEASERING_EXAMPLES_COMMON_H

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <leasering.h>

#define EXAMPLE_LEASES 3
#define EXAMPLE_TTL_MS 1000     /* renew_fraction defaults to 1/3: a renewal every ~333 ms */
#define EXAMPLE_ACQUIRE_MS 5000 /* keep retrying a name someone else holds this long */

struct example {
    const char *prog;
    const char *uri;
    unsigned run_ms;
    char names[EXAMPLE_LEASES][LR_NAME_MAX + 1];
    struct lr_loop *loop;
    struct lr_manager *mgr;
    struct lr_lease leases[EXAMPLE_LEASES];
    unsigned long renewed;
    int stopping; /* lr_manager_release_all() was called */
    int closing;  /* lr_manager_close() was called */
    int finished; /* the manager is closed and freed: stop the host loop */
    int status;   /* exit status */
};

static void example_stop(struct example *ex);

static void example_fail(struct example *ex, const char *what, const char *name, int err)
{
    fprintf(stderr, "%s: %s %s: %s\n", ex->prog, what, name, lr_strerror(err));
    ex->status = 1;
    example_stop(ex);
}

/* A leasering call that cannot fail short of a broken ring: give up at once. */
static void example_fatal(struct example *ex, const char *what, int err)
{
    fprintf(stderr, "%s: %s: %s\n", ex->prog, what, lr_strerror(err));
    exit(1);
}

/* ---- the manager's callbacks: they run inside lr_loop_process() ---- */

static void closed(struct lr_manager *m, void *arg)
{
    struct example *ex = arg;
    lr_manager_free(m);
    ex->mgr = NULL;
    ex->finished = 1;
}

/* Close the manager once nothing is being released any more. */
static void close_when_released(struct example *ex)
{
    if (!ex->stopping || ex->closing)
        return;
    for (int i = 0; i < EXAMPLE_LEASES; i++)
        if (lr_lease_state(&ex->leases[i]) == LR_LEASE_RELEASING)
            return;
    ex->closing = 1;
    int rc = lr_manager_close(ex->mgr, closed, ex);
    if (rc < 0)
        example_fatal(ex, "lr_manager_close", rc);
}

static void acquired(struct lr_lease *l)
{
    printf("acquired %s fence %llu\n", lr_lease_name(l), (unsigned long long)lr_lease_fence(l));
}

static void acquire_failed(struct lr_lease *l, int status)
{
    example_fail(l->data, "cannot acquire", lr_lease_name(l), status);
}

static void renewed(struct lr_lease *l)
{
    struct example *ex = l->data;
    ex->renewed++;
    printf("renewed %s\n", lr_lease_name(l));
}

static void jeopardy(struct lr_lease *l, int status)
{
    printf("jeopardy %s %s\n", lr_lease_name(l), lr_err_name(status));
}

static void lost(struct lr_lease *l, int reason)
{
    printf("lost %s %s\n", lr_lease_name(l), lr_err_name(reason));
    example_fail(l->data, "lost", lr_lease_name(l), reason);
}

static void released(struct lr_lease *l, int status)
{
    struct example *ex = l->data;
    if (status == 0)
        printf("released %s\n", lr_lease_name(l));
    else
        example_fail(ex, "release failed for", lr_lease_name(l), status);
    close_when_released(ex);
}

/* ---- called by the host loop ---- */

/*
 * Release every lease (once); the manager is closed when the last released
 * callback has come, and ex->finished is set inside a later lr_loop_process().
 * Called from the host's RUN_MS timer and on failures. A host calling it
 * from outside a leasering callback re-reads lr_loop_timeout_ms() afterwards:
 * it queues work, so the timeout is then 0.
 */
static void example_stop(struct example *ex)
{
    if (ex->stopping)
        return;
    ex->stopping = 1;
    for (int i = 0; i < EXAMPLE_LEASES; i++) {
        if (lr_lease_state(&ex->leases[i]) == LR_LEASE_ACQUIRING) {
            fprintf(stderr, "%s: %s: not acquired yet, giving up\n", ex->prog, ex->names[i]);
            ex->status = 1;
        }
    }
    lr_manager_release_all(ex->mgr);
    close_when_released(ex);
}

/* Parse the command line. Returns 0, or prints usage and returns -1. */
static int example_parse(struct example *ex, int argc, char **argv)
{
    memset(ex, 0, sizeof(*ex));
    ex->prog = argv[0];
    setvbuf(stdout, NULL, _IOLBF, 0); /* one line per event, as it happens */
    const char *prefix = argc > 3 ? argv[3] : "example-";
    char *end = NULL;
    unsigned long ms = argc > 2 ? strtoul(argv[2], &end, 10) : 0;
    if (argc < 3 || argc > 4 || !*argv[1] || end == argv[2] || *end || ms == 0 || ms > INT_MAX ||
        !*prefix || strlen(prefix) >= LR_NAME_MAX) {
        fprintf(stderr,
                "usage: %s URI RUN_MS [PREFIX]\n"
                "  e.g. %s redis://127.0.0.1:6379 2500 ex1-\n",
                ex->prog, ex->prog);
        return -1;
    }
    ex->uri = argv[1];
    ex->run_ms = (unsigned)ms;
    for (int i = 0; i < EXAMPLE_LEASES; i++)
        snprintf(ex->names[i], sizeof(ex->names[i]), "%s%c", prefix, 'a' + i);
    return 0;
}

/*
 * Create the loop and the manager and start acquiring. Nothing runs yet: the
 * first acquire requests leave from the first lr_loop_process().
 * Returns: 0 (the host loop must now run until ex->finished, even if ex->status
 * is already 1), or -1 after printing why (nothing to clean up).
 */
static int example_start(struct example *ex)
{
    static const struct lr_lease_cbs cbs = {
        .acquired = acquired,
        .acquire_failed = acquire_failed,
        .renewed = renewed,
        .jeopardy = jeopardy,
        .lost = lost,
        .released = released,
    };
    /* A request timeout of 400 ms (default ttl/4) rides out a loaded machine. */
    struct lr_manager_opts opts = {.ttl_ms = EXAMPLE_TTL_MS, .request_timeout_ms = 400, .cbs = &cbs};
    int rc = lr_loop_new(&ex->loop, NULL);
    if (rc < 0) {
        fprintf(stderr, "%s: lr_loop_new: %s\n", ex->prog, lr_strerror(rc));
        return -1;
    }
    rc = lr_manager_new(&ex->mgr, ex->loop, ex->uri, &opts);
    if (rc < 0) {
        fprintf(stderr, "%s: lr_manager_new %s: %s\n", ex->prog, ex->uri, lr_strerror(rc));
        lr_loop_free(ex->loop);
        return -1;
    }
    for (int i = 0; i < EXAMPLE_LEASES; i++) {
        struct lr_lease *l = &ex->leases[i];
        rc = lr_lease_init(ex->mgr, l, ex->names[i], NULL);
        if (rc == 0) {
            l->data = ex;
            rc = lr_lease_acquire(l, EXAMPLE_ACQUIRE_MS);
        }
        if (rc < 0) {
            example_fail(ex, "cannot start acquiring", ex->names[i], rc);
            break;
        }
    }
    return 0;
}

/* After the host loop has stopped watching lr_loop_fd(): free the loop. */
static int example_finish(struct example *ex)
{
    lr_loop_free(ex->loop);
    printf("done renewed=%lu\n", ex->renewed);
    return ex->status;
}

#endif
