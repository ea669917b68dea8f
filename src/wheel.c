/* SPDX-License-Identifier: MIT */
/*
 * wheel.c - hierarchical timer wheel with cascading (see wheel_int.h).
 * Layer: knows ticks only; the loop glues it to the clock and callbacks.
 */
#include <assert.h>

#include "list.h"
#include "wheel_int.h"

static inline unsigned level_of(uint64_t elapsed, uint64_t deadline)
{
    /* Highest differing bit, with bits 0..5 forced so level 0 is the floor. */
    uint64_t diff = (elapsed ^ deadline) | (LR_WHEEL_SLOTS - 1);
    return (unsigned)(63 - __builtin_clzll(diff)) / LR_WHEEL_BITS;
}

static inline unsigned slot_of(uint64_t deadline, unsigned level)
{
    return (unsigned)(deadline >> (level * LR_WHEEL_BITS)) & (LR_WHEEL_SLOTS - 1);
}

/* Tick at which slot @slot of @level begins, in the current level block. */
static inline uint64_t slot_start(uint64_t elapsed, unsigned level, unsigned slot)
{
    unsigned shift = level * LR_WHEEL_BITS;
    unsigned block_bits = shift + LR_WHEEL_BITS;
    uint64_t base = block_bits >= 64 ? 0 : elapsed & ~((UINT64_C(1) << block_bits) - 1);
    return base + ((uint64_t)slot << shift);
}

void lr__wheel_init(struct lr__wheel *w, uint64_t now)
{
    w->elapsed = now;
    w->armed = 0;
    lr_list_init(&w->ready);
    for (unsigned l = 0; l < LR_WHEEL_LEVELS; l++) {
        w->occupied[l] = 0;
        for (unsigned s = 0; s < LR_WHEEL_SLOTS; s++)
            lr_list_init(&w->slots[l][s]);
    }
}

void lr__timer_reset(struct lr_timer *t)
{
    lr_list_init(&t->wheel_link);
    t->where = LR_TIMER_IDLE;
    t->level = 0;
    t->slot = 0;
}

static void place(struct lr__wheel *w, struct lr_timer *t)
{
    unsigned level = level_of(w->elapsed, t->deadline);
    unsigned slot = slot_of(t->deadline, level);
    t->level = (uint8_t)level;
    t->slot = (uint8_t)slot;
    t->where = LR_TIMER_IN_SLOT;
    lr_list_push_tail(&w->slots[level][slot], &t->wheel_link);
    w->occupied[level] |= UINT64_C(1) << slot;
}

void lr__wheel_remove(struct lr__wheel *w, struct lr_timer *t)
{
    switch (t->where) {
    case LR_TIMER_IN_SLOT:
        lr_list_unlink(&t->wheel_link);
        if (lr_list_is_empty(&w->slots[t->level][t->slot]))
            w->occupied[t->level] &= ~(UINT64_C(1) << t->slot);
        w->armed--;
        break;
    case LR_TIMER_IN_READY:
        w->armed--;
        /* fallthrough */
    case LR_TIMER_IN_BATCH:
        lr_list_unlink(&t->wheel_link);
        break;
    default:
        break;
    }
    t->where = LR_TIMER_IDLE;
}

void lr__wheel_insert(struct lr__wheel *w, struct lr_timer *t, uint64_t deadline)
{
    lr__wheel_remove(w, t);
    t->deadline = deadline;
    w->armed++;
    if (deadline <= w->elapsed) {
        t->where = LR_TIMER_IN_READY;
        lr_list_push_tail(&w->ready, &t->wheel_link);
        return;
    }
    place(w, t);
}

/* Lowest non-empty level, or LR_WHEEL_LEVELS. */
static inline unsigned first_level(const struct lr__wheel *w)
{
    for (unsigned l = 0; l < LR_WHEEL_LEVELS; l++)
        if (w->occupied[l])
            return l;
    return LR_WHEEL_LEVELS;
}

uint64_t lr__wheel_next(const struct lr__wheel *w)
{
    if (!lr_list_is_empty(&w->ready))
        return w->elapsed;
    unsigned l = first_level(w);
    if (l == LR_WHEEL_LEVELS)
        return UINT64_MAX;
    unsigned s = (unsigned)__builtin_ctzll(w->occupied[l]);
    return slot_start(w->elapsed, l, s);
}

static uint64_t take_ready(struct lr__wheel *w, struct lr_list *batch)
{
    uint64_t n = 0;
    struct lr_list *node;
    while ((node = lr_list_pop(&w->ready))) {
        struct lr_timer *t = lr_container_of(node, struct lr_timer, wheel_link);
        t->where = LR_TIMER_IN_BATCH;
        lr_list_push_tail(batch, node);
        w->armed--;
        n++;
    }
    return n;
}

uint64_t lr__wheel_advance(struct lr__wheel *w, uint64_t now, struct lr_list *batch)
{
    /* Timers started with a past deadline were due first. */
    uint64_t fired = take_ready(w, batch);

    for (;;) {
        unsigned l = first_level(w);
        if (l == LR_WHEEL_LEVELS)
            break;
        unsigned s = (unsigned)__builtin_ctzll(w->occupied[l]);
        uint64_t start = slot_start(w->elapsed, l, s);
        assert(start > w->elapsed);
        if (start > now)
            break;
        w->elapsed = start;
        w->occupied[l] &= ~(UINT64_C(1) << s);
        /* Detach the whole slot first: re-placed timers land on lower levels,
         * never back in this list while we walk it. */
        struct lr_list slot;
        lr_list_init(&slot);
        lr_list_splice_tail(&slot, &w->slots[l][s]);
        struct lr_list *node;
        while ((node = lr_list_pop(&slot))) {
            struct lr_timer *t = lr_container_of(node, struct lr_timer, wheel_link);
            if (t->deadline <= start) {
                t->where = LR_TIMER_IN_BATCH;
                lr_list_push_tail(batch, node);
                w->armed--;
                fired++;
            } else {
                place(w, t);
            }
        }
    }
    if (now > w->elapsed)
        w->elapsed = now;
    return fired;
}

struct lr_timer *lr__wheel_batch_pop(struct lr_list *batch)
{
    struct lr_list *node = lr_list_pop(batch);
    if (!node)
        return NULL;
    struct lr_timer *t = lr_container_of(node, struct lr_timer, wheel_link);
    t->where = LR_TIMER_IDLE;
    return t;
}
