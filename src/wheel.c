/* SPDX-License-Identifier: MIT */
/*
 * wheel.c - hierarchical timer wheel with a wide lowest level and cascading
 * above it (see wheel_int.h).
 * Layer: knows ticks only; the loop glues it to the clock and callbacks.
 */
#include <assert.h>

#include "list.h"
#include "wheel_int.h"

/* Level 0 is the ring (bits 0..11); level l >= 1 holds bits 12 + 6 (l - 1) up. */
static inline unsigned level_shift(unsigned level)
{
    return level ? LR_WHEEL_RING_BITS + (level - 1) * LR_WHEEL_BITS : 0;
}

static inline unsigned level_bits(unsigned level)
{
    return level ? LR_WHEEL_BITS : LR_WHEEL_RING_BITS;
}

static inline unsigned level_of(uint64_t elapsed, uint64_t deadline)
{
    /* Highest differing bit, with the ring's bits forced so the ring is the floor. */
    uint64_t diff = (elapsed ^ deadline) | (LR_WHEEL_RING - 1);
    unsigned high = (unsigned)(63 - __builtin_clzll(diff));
    return high < LR_WHEEL_RING_BITS ? 0 : 1 + (high - LR_WHEEL_RING_BITS) / LR_WHEEL_BITS;
}

static inline unsigned slot_of(uint64_t deadline, unsigned level)
{
    return (unsigned)(deadline >> level_shift(level)) & ((1u << level_bits(level)) - 1);
}

/* Tick at which slot @slot of @level begins, in the current level block. */
static inline uint64_t slot_start(uint64_t elapsed, unsigned level, unsigned slot)
{
    unsigned shift = level_shift(level);
    unsigned block_bits = shift + level_bits(level);
    uint64_t base = block_bits >= 64 ? 0 : elapsed & ~((UINT64_C(1) << block_bits) - 1);
    return base + ((uint64_t)slot << shift);
}

static inline struct lr_list *slot_list(struct lr__wheel *w, unsigned level, unsigned slot)
{
    return level ? &w->slots[level - 1][slot] : &w->ring[slot];
}

static inline void mark(struct lr__wheel *w, unsigned level, unsigned slot)
{
    if (level) {
        w->occupied[level] |= UINT64_C(1) << slot;
        return;
    }
    w->ring_map[slot / 64] |= UINT64_C(1) << (slot % 64);
    w->ring_words |= UINT64_C(1) << (slot / 64);
}

static inline void unmark(struct lr__wheel *w, unsigned level, unsigned slot)
{
    if (level) {
        w->occupied[level] &= ~(UINT64_C(1) << slot);
        return;
    }
    w->ring_map[slot / 64] &= ~(UINT64_C(1) << (slot % 64));
    if (!w->ring_map[slot / 64])
        w->ring_words &= ~(UINT64_C(1) << (slot / 64));
}

void lr__wheel_init(struct lr__wheel *w, uint64_t now)
{
    w->elapsed = now;
    w->armed = 0;
    w->ring_words = 0;
    lr_list_init(&w->ready);
    for (unsigned i = 0; i < LR_WHEEL_RING / 64; i++)
        w->ring_map[i] = 0;
    for (unsigned s = 0; s < LR_WHEEL_RING; s++) {
        w->ring_count[s] = 0;
        lr_list_init(&w->ring[s]);
    }
    for (unsigned l = 0; l < LR_WHEEL_LEVELS; l++)
        w->occupied[l] = 0;
    for (unsigned l = 0; l < LR_WHEEL_LEVELS - 1; l++)
        for (unsigned s = 0; s < LR_WHEEL_SLOTS; s++)
            lr_list_init(&w->slots[l][s]);
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
    t->slot = (uint16_t)slot;
    t->where = LR_TIMER_IN_SLOT;
    lr_list_push_tail(slot_list(w, level, slot), &t->wheel_link);
    mark(w, level, slot);
    if (!level)
        w->ring_count[slot]++;
}

void lr__wheel_remove(struct lr__wheel *w, struct lr_timer *t)
{
    switch (t->where) {
    case LR_TIMER_IN_SLOT:
        lr_list_unlink(&t->wheel_link);
        if (lr__wheel_in_spliced(w, t))
            break; /* its slot went to a batch whole: counted there */
        if (!t->level)
            w->ring_count[t->slot]--;
        if (lr_list_is_empty(slot_list(w, t->level, t->slot)))
            unmark(w, t->level, t->slot);
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

/* The next occupied slot: its level (LR_WHEEL_LEVELS if none) and *@slot. */
static inline unsigned first_slot(const struct lr__wheel *w, unsigned *slot)
{
    if (w->ring_words) {
        unsigned i = (unsigned)__builtin_ctzll(w->ring_words);
        *slot = i * 64 + (unsigned)__builtin_ctzll(w->ring_map[i]);
        return 0;
    }
    for (unsigned l = 1; l < LR_WHEEL_LEVELS; l++)
        if (w->occupied[l]) {
            *slot = (unsigned)__builtin_ctzll(w->occupied[l]);
            return l;
        }
    return LR_WHEEL_LEVELS;
}

uint64_t lr__wheel_next(const struct lr__wheel *w)
{
    if (!lr_list_is_empty(&w->ready))
        return w->elapsed;
    unsigned s = 0;
    unsigned l = first_slot(w, &s);
    if (l == LR_WHEEL_LEVELS)
        return UINT64_MAX;
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

/* Above the ring: fire what is due, re-place the rest lower down. */
static uint64_t cascade(struct lr__wheel *w, unsigned l, unsigned s, uint64_t start,
                        struct lr_list *batch)
{
    uint64_t fired = 0;
    /* Detach the whole slot first: re-placed timers land on lower levels,
     * never back in this list while we walk it. */
    struct lr_list slot;
    lr_list_init(&slot);
    lr_list_splice_tail(&slot, &w->slots[l - 1][s]);
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
    return fired;
}

uint64_t lr__wheel_advance(struct lr__wheel *w, uint64_t now, struct lr_list *batch)
{
    /* Timers started with a past deadline were due first. */
    uint64_t fired = take_ready(w, batch);

    for (;;) {
        unsigned s = 0;
        unsigned l = first_slot(w, &s);
        if (l == LR_WHEEL_LEVELS)
            break;
        uint64_t start = slot_start(w->elapsed, l, s);
        assert(start > w->elapsed);
        if (start > now)
            break;
        w->elapsed = start;
        unmark(w, l, s);
        if (l) {
            fired += cascade(w, l, s, start, batch);
            continue;
        }
        /* A ring slot holds exactly the timers due at @start: all of it goes,
         * untouched; from now on their deadline <= elapsed says "in a batch". */
        lr_list_splice_tail(batch, &w->ring[s]);
        fired += w->ring_count[s];
        w->armed -= w->ring_count[s];
        w->ring_count[s] = 0;
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
