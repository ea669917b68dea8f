/* SPDX-License-Identifier: MIT */
/* chaos.h - what the chaos decorator injected, for the tests (internal). */
#ifndef LR_BACKEND_CHAOS_H
#define LR_BACKEND_CHAOS_H

#include <stdint.h>

struct lr_manager;

struct lr__chaos_stats {
    uint64_t refused;   /* requests refused at submit (LR_EUNAVAIL, not sent) */
    uint64_t reset;     /* results replaced by -ECONNRESET after the store applied them */
    uint64_t timed_out; /* results delivered as -ETIMEDOUT at the request timeout: replies
                         * lost after the store applied them, and holds that ran past it */
    uint64_t delayed;   /* results held delay_ms (+ jitter) */
    uint64_t stalled;   /* results held stall_ms */
    uint64_t delivered; /* held results handed to their lease */
    uint64_t cancelled; /* held results dropped because the core cancelled the request */
};

/* @m's counters, or NULL if @m does not use a chaos+ URI. */
const struct lr__chaos_stats *lr__chaos_stats(const struct lr_manager *m);

#endif
