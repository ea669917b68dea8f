/* SPDX-License-Identifier: MIT */
/*
 * wheel_int.h - hierarchical timer wheel (internal).
 *
 * Time is in ticks (1 tick = 1 ms in the loop). The lowest level is a ring of
 * 4096 one-tick slots; nine levels of 64 slots above it, each 64 times
 * coarser, cover the rest of the 64-bit range, so no deadline ever needs
 * re-arming. A timer sits at the level of the highest bit in which its
 * deadline differs from the wheel's current time (the ring when they differ
 * only in the low 12 bits), in the slot named by that level's bits; every
 * occupied slot on a level therefore lies strictly after the current one,
 * and the next slot to process is the lowest set bit of the lowest non-empty
 * level's occupancy bitmap (two words deep for the ring). Processing a slot
 * above the ring cascades its timers down, so a timer expires exactly at its
 * deadline tick whatever its range.
 *
 * The ring is wide so that timers a few seconds out -- lease renewals and
 * loss deadlines at TTLs of seconds -- go straight to the slot they fire
 * from, and a due ring slot goes to the expiry batch whole, by one splice:
 * such a timer is touched when it is started, stopped and fired, never in
 * between (issue 10: at 100,000 leases the per-timer walks of cascades and
 * expiries were cache misses in cold lease structs). A timer of a spliced
 * slot still says LR_TIMER_IN_SLOT; its deadline at or before the wheel's
 * time is what tells that it is in a batch. The wheel knows nothing of the
 * ring or the clock.
 */
#ifndef LR_WHEEL_INT_H
#define LR_WHEEL_INT_H

#include <stdint.h>
#include <leasering/timer.h>

#define LR_WHEEL_RING_BITS 12
#define LR_WHEEL_RING (1u << LR_WHEEL_RING_BITS)
#define LR_WHEEL_BITS 6
#define LR_WHEEL_SLOTS (1u << LR_WHEEL_BITS)
#define LR_WHEEL_LEVELS 10 /* the ring + 9 levels: 12 + 9 * 6 = 66 bits >= 64 */

/* Values of lr_timer.where. */
enum { LR_TIMER_IDLE = 0, LR_TIMER_IN_SLOT, LR_TIMER_IN_READY, LR_TIMER_IN_BATCH };

struct lr__wheel {
    uint64_t elapsed;                            /* the wheel's current tick */
    uint64_t ring_words;                         /* bit i set <=> ring_map[i] != 0 */
    uint64_t ring_map[LR_WHEEL_RING / 64];       /* bit s set <=> ring[s] non-empty */
    uint64_t occupied[LR_WHEEL_LEVELS];          /* levels 1..: bit s <=> slots[l - 1][s] */
    struct lr_list ready;                        /* started with deadline <= elapsed */
    uint64_t armed;                              /* timers in slots or ready */
    uint32_t ring_count[LR_WHEEL_RING];          /* timers in each ring slot */
    struct lr_list ring[LR_WHEEL_RING];
    struct lr_list slots[LR_WHEEL_LEVELS - 1][LR_WHEEL_SLOTS];
};

void lr__wheel_init(struct lr__wheel *w, uint64_t now);

/* Prepare a timer for use with a wheel (sets it idle). */
void lr__timer_reset(struct lr_timer *t);

/* Arm @t at @deadline (moves it if armed). Never expires it inline: a past
 * deadline goes to the ready list, collected by the next advance. */
void lr__wheel_insert(struct lr__wheel *w, struct lr_timer *t, uint64_t deadline);

/* Disarm @t wherever it is (slot, ready list, or an expiry batch). */
void lr__wheel_remove(struct lr__wheel *w, struct lr_timer *t);

/* The earliest tick at which lr__wheel_advance() has work: elapsed if timers
 * are ready, the start of the next occupied slot otherwise (never after the
 * earliest deadline), or UINT64_MAX if nothing is armed. */
uint64_t lr__wheel_next(const struct lr__wheel *w);

/* Move time forward to @now (no-op if @now <= elapsed) and append every timer
 * with deadline <= @now to @batch in deadline order. The caller pops them
 * from @batch and fires them; a timer removed or re-armed meanwhile leaves
 * the batch. Returns the number appended. */
uint64_t lr__wheel_advance(struct lr__wheel *w, uint64_t now, struct lr_list *batch);

/* Pop the next timer of a batch and mark it idle, or NULL. */
struct lr_timer *lr__wheel_batch_pop(struct lr_list *batch);

/* Whether @t, marked LR_TIMER_IN_SLOT, sits in a ring slot already spliced
 * into an expiry batch. */
static inline int lr__wheel_in_spliced(const struct lr__wheel *w, const struct lr_timer *t)
{
    return t->level == 0 && t->deadline <= w->elapsed;
}

#endif
