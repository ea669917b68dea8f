/* SPDX-License-Identifier: MIT */
/*
 * recorder.h - lease callbacks that record what happened, when (real clock),
 * to which lease, for the lease tests; and loop helpers to run until an event.
 */
#ifndef LR_TEST_RECORDER_H
#define LR_TEST_RECORDER_H

#include <stdint.h>

#include <leasering.h>

enum ev { EV_ACQ = 1, EV_ACQFAIL, EV_RENEW, EV_JEOP, EV_LOST, EV_REL, EV_BROKEN, EV_CHANGED };

struct rec {
    enum ev ev;
    int status;
    uint64_t at_ns; /* CLOCK_MONOTONIC when the callback ran */
    struct lr_lease *l;
};

#define REC_MAX 65536
extern struct rec evs[REC_MAX];
extern int nev;
extern struct lr_loop *loop;           /* the loop the helpers run (rec_setup makes it) */
extern const struct lr_lease_cbs rec_cbs; /* callbacks that record */
/* Called after recording, if set (for tests that react to events). */
extern void (*rec_hook)(const struct rec *r);

uint64_t mono_ns(void);
/* Create the loop once; forget recorded events. */
void rec_setup(void);
int rec_count(enum ev e, const struct lr_lease *l); /* l NULL: any lease */
const struct rec *rec_first(enum ev e, const struct lr_lease *l);
/* Run the loop until event @e (0: none) is recorded or @ms pass. */
void run_until(int e, uint64_t ms);
/* Close @m, run until closed, free it. */
void close_mgr(struct lr_manager *m);

/* lr_manager_inspect's answer, copied (rec_inspect). */
struct rec_insp {
    int done;
    int status;
    int held;
    uint64_t fence;
    int64_t ttl_ms;
    size_t meta_len;
    char holder[LR_IDENTITY_MAX + 1];
    char identity[LR_IDENTITY_MAX + 1];
    char token[33];
    char meta[LR_META_MAX];
};
extern struct rec_insp rec_insp;
/* Inspect @name on @m and run the loop until the answer (into rec_insp) or
 * @ms pass. Returns the answer's status, -EINPROGRESS if none came in time,
 * or lr_manager_inspect's own error. */
int rec_inspect(struct lr_manager *m, const char *name, uint64_t ms);
/* The value of metadata @key in rec_insp, or NULL. */
const char *rec_insp_meta(const char *key);

/* A store_error callback that appends each text and a newline to rec_errs
 * (truncated when full); clear it with rec_errs[0] = '\0'. */
extern char rec_errs[8192];
void rec_store_error(struct lr_manager *m, int status, const char *text, void *arg);
/* lr_manager_new's answer for @uri (TTL 5 s, store errors into rec_errs,
 * cleared first); a manager it made is closed again. */
int rec_try_new(const char *uri);

#endif
