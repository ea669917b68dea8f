/* SPDX-License-Identifier: MIT */
/* recorder.c - see recorder.h. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "recorder.h"

struct rec evs[REC_MAX];
int nev;
struct lr_loop *loop;
void (*rec_hook)(const struct rec *r);
static int stop_on;

uint64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void record(struct lr_lease *l, enum ev e, int status)
{
    struct rec r = {e, status, mono_ns(), l};
    if (nev < REC_MAX)
        evs[nev++] = r;
    if (rec_hook)
        rec_hook(&r);
    if (stop_on == (int)e)
        lr_loop_stop(loop);
}

static void cb_acq(struct lr_lease *l)
{
    record(l, EV_ACQ, 0);
}
static void cb_acqfail(struct lr_lease *l, int s)
{
    record(l, EV_ACQFAIL, s);
}
static void cb_renew(struct lr_lease *l)
{
    record(l, EV_RENEW, 0);
}
static void cb_jeop(struct lr_lease *l, int s)
{
    record(l, EV_JEOP, s);
}
static void cb_lost(struct lr_lease *l, int s)
{
    record(l, EV_LOST, s);
}
static void cb_rel(struct lr_lease *l, int s)
{
    record(l, EV_REL, s);
}

static void cb_broken(struct lr_lease *l, int s)
{
    record(l, EV_BROKEN, s);
}
static void cb_changed(struct lr_lease *l, int s)
{
    record(l, EV_CHANGED, s);
}

const struct lr_lease_cbs rec_cbs = {cb_acq,  cb_acqfail, cb_renew,  cb_jeop,
                                     cb_lost, cb_rel,     cb_broken, cb_changed};

void rec_setup(void)
{
    nev = 0;
    rec_hook = NULL;
    if (!loop)
        lr_loop_new(&loop, NULL);
}

int rec_count(enum ev e, const struct lr_lease *l)
{
    int n = 0;
    for (int i = 0; i < nev; i++)
        n += evs[i].ev == e && (!l || evs[i].l == l);
    return n;
}

const struct rec *rec_first(enum ev e, const struct lr_lease *l)
{
    for (int i = 0; i < nev; i++)
        if (evs[i].ev == e && (!l || evs[i].l == l))
            return &evs[i];
    return NULL;
}

static void stop_cb(struct lr_timer *t)
{
    lr_loop_stop(t->loop);
}

void run_until(int e, uint64_t ms)
{
    struct lr_timer t;
    lr_timer_init(loop, &t, stop_cb);
    lr_loop_update_time(loop);
    lr_timer_start(&t, lr_loop_now_ms(loop) + ms);
    stop_on = e;
    lr_loop_run(loop);
    stop_on = 0;
    lr_timer_stop(&t);
}

static void closed(struct lr_manager *m, void *arg)
{
    (void)arg;
    lr_manager_free(m);
    lr_loop_stop(loop);
}

void close_mgr(struct lr_manager *m)
{
    lr_manager_close(m, closed, NULL);
    lr_loop_run(loop);
}

char rec_errs[8192];

void rec_store_error(struct lr_manager *m, int status, const char *text, void *arg)
{
    (void)m;
    (void)status;
    (void)arg;
    size_t n = strlen(rec_errs);
    snprintf(rec_errs + n, sizeof(rec_errs) - n, "%s\n", text);
}

int rec_try_new(const char *uri)
{
    struct lr_manager_opts o = {.ttl_ms = 5000, .store_error = rec_store_error};
    struct lr_manager *m = NULL;
    rec_errs[0] = '\0';
    int rc = lr_manager_new(&m, loop, uri, &o);
    if (m)
        close_mgr(m);
    return rc;
}

struct rec_insp rec_insp;

static void copy_text(char *dst, size_t cap, const char *src)
{
    snprintf(dst, cap, "%s", src);
}

static void inspected(void *arg, int status, const struct lr_inspect *info)
{
    (void)arg;
    rec_insp.done = 1;
    rec_insp.status = status;
    if (status == 0) {
        rec_insp.held = info->held;
        rec_insp.fence = info->fence;
        rec_insp.ttl_ms = info->ttl_ms;
        copy_text(rec_insp.holder, sizeof(rec_insp.holder), info->holder);
        copy_text(rec_insp.identity, sizeof(rec_insp.identity), info->identity);
        copy_text(rec_insp.token, sizeof(rec_insp.token), info->token);
        rec_insp.meta_len = info->meta_len < sizeof(rec_insp.meta) ? info->meta_len : 0;
        if (rec_insp.meta_len)
            memcpy(rec_insp.meta, info->meta, rec_insp.meta_len);
    }
    lr_loop_stop(loop);
}

int rec_inspect(struct lr_manager *m, const char *name, uint64_t ms)
{
    memset(&rec_insp, 0, sizeof(rec_insp));
    int rc = lr_manager_inspect(m, name, inspected, NULL);
    if (rc < 0)
        return rc;
    struct lr_timer t;
    lr_timer_init(loop, &t, stop_cb);
    lr_loop_update_time(loop);
    lr_timer_start(&t, lr_loop_now_ms(loop) + ms);
    while (!rec_insp.done && lr_timer_is_active(&t))
        lr_loop_run(loop);
    lr_timer_stop(&t);
    return rec_insp.done ? rec_insp.status : -EINPROGRESS;
}

const char *rec_insp_meta(const char *key)
{
    for (size_t off = 0; off < rec_insp.meta_len;) {
        const char *k = rec_insp.meta + off, *v = k + strlen(k) + 1;
        if (!strcmp(k, key))
            return v;
        off = (size_t)(v - rec_insp.meta) + strlen(v) + 1;
    }
    return NULL;
}
