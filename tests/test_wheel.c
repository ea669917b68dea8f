/* SPDX-License-Identifier: MIT */
/*
 * test_wheel.c - the timer wheel on a fake clock, checked against a trivial
 * reference (an array of deadlines) over a million random operations, plus
 * targeted cases: far deadlines, exact-tick expiry, removal during a batch.
 */
#include "harness.h"
#include "list.h"
#include "wheel_int.h"

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint64_t rnd(void)
{
    uint64_t x = rng_state;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    rng_state = x;
    return x * 0x2545f4914f6cdd1dull;
}

static uint64_t below(uint64_t n)
{
    return n ? rnd() % n : 0;
}

#define NT 4096
#define DAY_MS (86400000ull)

static struct lr_timer timers[NT];
static struct {
    uint8_t armed;    /* the reference thinks it is armed */
    uint8_t expected; /* due in the batch being checked */
    uint64_t deadline;
    uint64_t due;     /* max(deadline, wheel time when started) */
} ref[NT];

static int idx(const struct lr_timer *t)
{
    return (int)(t - timers);
}

static uint64_t random_deadline(uint64_t now)
{
    switch (below(10)) {
    case 0:
        return now - below(now < 1000 ? now + 1 : 1000); /* past or now */
    case 1:
    case 2:
        return now + 1 + below(64);
    case 3:
    case 4:
        return now + 1 + below(5000);
    case 5:
        return now + below(1000000);
    case 6:
        return now + below(7 * DAY_MS); /* up to a week */
    case 7:
        return now + DAY_MS * (1 + below(60)) + below(1000); /* days to two months */
    case 8:
        return now + below(1ull << 40);
    default:
        return now + below(300);
    }
}

static void ref_start(struct lr__wheel *w, int i, uint64_t deadline)
{
    lr__wheel_insert(w, &timers[i], deadline);
    ref[i].armed = 1;
    ref[i].expected = 0;
    ref[i].deadline = deadline;
    ref[i].due = deadline > w->elapsed ? deadline : w->elapsed;
}

static void ref_stop(struct lr__wheel *w, int i)
{
    lr__wheel_remove(w, &timers[i]);
    ref[i].armed = 0;
    ref[i].expected = 0;
}

TEST(wheel_random_ops_match_reference)
{
    struct lr__wheel *w = malloc(sizeof(*w));
    CHECK(w != NULL);
    uint64_t now = 1000000000ull + below(1u << 30);
    lr__wheel_init(w, now);
    for (int i = 0; i < NT; i++)
        lr__timer_reset(&timers[i]);
    memset(ref, 0, sizeof(ref));

    const long OPS = 1000000;
    uint64_t fired_total = 0, far_fired = 0, batches = 0;
    for (long op = 0; op < OPS; op++) {
        unsigned kind = (unsigned)below(100);
        if (kind < 40) {
            int i = (int)below(NT);
            ref_start(w, i, random_deadline(now));
        } else if (kind < 55) {
            ref_stop(w, (int)below(NT));
        } else {
            uint64_t prev = now;
            unsigned how = (unsigned)below(10);
            if (how < 5)
                now += 1;
            else if (how < 7)
                now += below(200);
            else if (how < 9) {
                uint64_t nx = lr__wheel_next(w);
                if (nx != UINT64_MAX && nx > now)
                    now = nx;
            } else
                now += below(DAY_MS);
            /* The reference: exactly the armed timers due by now. */
            uint64_t want = 0;
            for (int i = 0; i < NT; i++) {
                ref[i].expected = ref[i].armed && ref[i].deadline <= now;
                want += ref[i].expected;
            }
            struct lr_list batch;
            lr_list_init(&batch);
            uint64_t n = lr__wheel_advance(w, now, &batch);
            CHECK_EQ(n, want);
            CHECK_EQ(w->elapsed, now);
            uint64_t last_due = 0;
            struct lr_timer *t;
            while ((t = lr__wheel_batch_pop(&batch))) {
                int i = idx(t);
                CHECK(ref[i].expected);         /* fires once, only when due */
                CHECK(ref[i].deadline <= now);  /* never early */
                CHECK(ref[i].due >= last_due);  /* in deadline order */
                /* never late: due after the previous advance, or started
                 * with a past deadline since then (ready list) */
                CHECK(ref[i].due > prev || ref[i].deadline <= ref[i].due);
                last_due = ref[i].due;
                ref[i].expected = 0;
                ref[i].armed = 0;
                fired_total++;
                if (ref[i].due - (ref[i].due > prev ? prev : ref[i].due) > DAY_MS)
                    far_fired++;
                /* Callbacks act on other timers mid-batch. */
                unsigned act = (unsigned)below(8);
                if (act == 0)
                    ref_stop(w, (int)below(NT));
                else if (act == 1)
                    ref_start(w, (int)below(NT), random_deadline(now));
                else if (act == 2)
                    ref_start(w, i, now - below(3)); /* re-arm self in the past */
            }
            for (int i = 0; i < NT; i++)
                CHECK(!ref[i].expected); /* nothing due was missed */
            batches++;
        }
        if (op % 128 == 0) {
            uint64_t min = UINT64_MAX, armed = 0;
            for (int i = 0; i < NT; i++)
                if (ref[i].armed) {
                    armed++;
                    if (ref[i].due < min)
                        min = ref[i].due;
                }
            CHECK_EQ(w->armed, armed);
            uint64_t nx = lr__wheel_next(w);
            if (armed)
                CHECK(nx <= min && nx >= w->elapsed);
            else
                CHECK(nx == UINT64_MAX);
            for (int i = 0; i < NT; i++)
                CHECK_EQ(lr_timer_is_active(&timers[i]), ref[i].armed);
        }
    }
    printf("     %ld ops, %llu batches, %llu expiries, wheel time advanced %.1f days\n", OPS,
           (unsigned long long)batches, (unsigned long long)fired_total,
           (double)(now - 1000000000ull) / DAY_MS);
    CHECK(fired_total > 100000);
    free(w);
}

/* A timer at any range fires exactly at its deadline tick, not a tick early. */
TEST(wheel_far_deadlines_fire_on_their_tick)
{
    static struct lr__wheel w;
    const uint64_t start = 123456789;
    const uint64_t offsets[] = {1, 63, 64, 65, 4095, 4096, 4097, 262143, DAY_MS, 7 * DAY_MS,
                                30 * DAY_MS + 17, 365 * DAY_MS + 3, 1ull << 40, 1ull << 52,
                                (1ull << 62) + 12345};
    for (size_t k = 0; k < sizeof(offsets) / sizeof(offsets[0]); k++) {
        lr__wheel_init(&w, start);
        struct lr_timer t;
        lr__timer_reset(&t);
        uint64_t dl = start + offsets[k];
        lr__wheel_insert(&w, &t, dl);
        struct lr_list batch;
        lr_list_init(&batch);
        /* Walk the wheel's own wake-ups up to one tick before the deadline. */
        int wakeups = 0;
        for (;;) {
            uint64_t nx = lr__wheel_next(&w);
            CHECK(nx <= dl);
            if (nx >= dl - 1)
                break;
            CHECK_EQ(lr__wheel_advance(&w, nx, &batch), 0);
            wakeups++;
            CHECK(wakeups < 100);
        }
        CHECK_EQ(lr__wheel_advance(&w, dl - 1, &batch), 0);
        CHECK(lr_timer_is_active(&t));
        CHECK_EQ(lr__wheel_next(&w), dl);
        CHECK_EQ(lr__wheel_advance(&w, dl, &batch), 1);
        CHECK(lr__wheel_batch_pop(&batch) == &t);
        CHECK(!lr_timer_is_active(&t));
    }
    /* The very end of the clock. */
    lr__wheel_init(&w, 5);
    struct lr_timer t;
    lr__timer_reset(&t);
    lr__wheel_insert(&w, &t, UINT64_MAX - 1);
    struct lr_list batch;
    lr_list_init(&batch);
    CHECK_EQ(lr__wheel_advance(&w, UINT64_MAX - 2, &batch), 0);
    CHECK_EQ(lr__wheel_advance(&w, UINT64_MAX - 1, &batch), 1);
}

/* A stopped timer leaves a batch; a past deadline waits for the next advance. */
TEST(wheel_stop_in_batch_and_past_deadline)
{
    static struct lr__wheel w;
    struct lr_timer a, b, c;
    lr__wheel_init(&w, 100);
    lr__timer_reset(&a);
    lr__timer_reset(&b);
    lr__timer_reset(&c);
    lr__wheel_insert(&w, &a, 150);
    lr__wheel_insert(&w, &b, 150);
    struct lr_list batch;
    lr_list_init(&batch);
    CHECK_EQ(lr__wheel_advance(&w, 150, &batch), 2);
    struct lr_timer *first = lr__wheel_batch_pop(&batch);
    CHECK(first == &a);
    lr__wheel_remove(&w, &b); /* "callback" of a stops b */
    CHECK(lr__wheel_batch_pop(&batch) == NULL);
    /* Started with a deadline in the past: not expired by the insert itself. */
    lr__wheel_insert(&w, &c, 10);
    CHECK(lr_timer_is_active(&c));
    CHECK_EQ(lr__wheel_next(&w), 150);
    CHECK_EQ(lr__wheel_advance(&w, 150, &batch), 1);
    CHECK(lr__wheel_batch_pop(&batch) == &c);
    CHECK_EQ(w.armed, 0);
    /* Removing twice is harmless. */
    lr__wheel_remove(&w, &c);
    lr__wheel_remove(&w, &c);
    CHECK_EQ(w.armed, 0);
}

TESTS(T(wheel_random_ops_match_reference), T(wheel_far_deadlines_fire_on_their_tick),
      T(wheel_stop_in_batch_and_past_deadline))
