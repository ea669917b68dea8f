/* SPDX-License-Identifier: MIT */
/*
 * test_scale.c - acquisition at scale against real redis-server processes:
 * the batched acquire script (per-name answers, conflicts with their holder,
 * fences strictly increasing per name, idempotent re-acquire by the same
 * owner, TTL groups), and flow control: a flood of acquires through a small
 * window, all acquired, with renewals of held leases going on beside it
 * unharmed, no connection killed for a deep pipeline, and validity counted
 * from each request's real send, not from when it was queued.
 */
#include <errno.h>
#include <stdlib.h>

#include <leasering.h>
#include "harness.h"
#include "lease_int.h"
#include "recorder.h"
#include "redis_scripts.h"
#include "redis_server.h"
#include "redis_slot.h"

static char uri[128];

static const char *server_uri(const struct redis_server *s, const char *query)
{
    snprintf(uri, sizeof(uri), "redis://127.0.0.1:%d%s", s->port, query ? query : "");
    return uri;
}

/* One redis-cli command of up to three words. */
static int cli(const struct redis_server *s, char *out, size_t cap, const char *cmd,
               const char *key, const char *field)
{
    const char *args[] = {cmd, key, field, NULL};
    return redis_cli(s, out, cap, args);
}

/* ---- the batched acquire ---- */

#define NB 300

TEST(batched_acquire_answers_each_name)
{
    rec_setup();
    struct redis_server s;
    CHECK_OK(redis_server_start(&s, NULL));
    /* margin 25 ms, as test_redis.c: room for a loaded CI machine */
    struct lr_manager_opts o = {.ttl_ms = 3000, .cbs = &rec_cbs, .batch_max = 64,
                                .max_leases = 4096, .margin_ms = 25};
    struct lr_manager *a = NULL, *b = NULL;
    CHECK_OK(lr_manager_new(&a, loop, server_uri(&s, NULL), &o));
    CHECK_OK(lr_manager_new(&b, loop, uri, &o));
    static struct lr_lease la[NB], lb[NB];
    for (int i = 0; i < NB; i++) {
        char name[32];
        snprintf(name, sizeof(name), "ba%d", i);
        /* two TTL groups, interleaved: every other name 5 s */
        struct lr_lease_opts lo = {.ttl_ms = i % 2 ? 5000 : 3000};
        CHECK_OK(lr_lease_init(a, &la[i], name, &lo));
        CHECK_OK(lr_lease_init(b, &lb[i], name, NULL));
    }
    CHECK_OK(lr_lease_set_meta(&la[5], "node", "alpha")); /* the single-key path, beside */
    /* b takes every 7th name first */
    int taken = 0;
    for (int i = 0; i < NB; i += 7, taken++)
        CHECK_OK(lr_lease_try_acquire(&lb[i]));
    run_until(0, 300);
    CHECK_EQ(rec_count(EV_ACQ, NULL), taken);
    uint64_t q0 = lr_manager_stats(a)->requests;
    for (int i = 0; i < NB; i++)
        CHECK_OK(lr_lease_try_acquire(&la[i]));
    run_until(0, 500);
    uint64_t requests = lr_manager_stats(a)->requests - q0;
    printf("     %d acquires in %llu requests, %d conflicts\n", NB, (unsigned long long)requests,
           rec_count(EV_ACQFAIL, NULL));
    CHECK(requests <= NB / 32 + 4); /* batched: 64 names a call, two TTL groups */
    char out[256], key[64];
    for (int i = 0; i < NB; i++) {
        snprintf(key, sizeof(key), "lr:{ba%d}", i);
        if (i % 7 == 0) {
            /* answered for this name alone: a conflict naming b (its identity) */
            CHECK(rec_first(EV_ACQFAIL, &la[i]) != NULL);
            CHECK_ERR(rec_first(EV_ACQFAIL, &la[i])->status, LR_ECONFLICT);
            CHECK(!strcmp(lr_lease_holder(&la[i]), lr_manager_identity(b)));
            if (i % 5 == 0) {
                CHECK_OK(cli(&s, out, sizeof(out), "HGET", key, "identity"));
                CHECK(!strcmp(out, lr_lease_holder(&la[i])));
            }
            CHECK(lr_lease_holder_ttl_ms(&la[i]) > 1000 && lr_lease_holder_ttl_ms(&la[i]) <= 3000);
            continue;
        }
        CHECK_EQ(lr_lease_state(&la[i]), LR_LEASE_HELD);
        CHECK_EQ(lr_lease_fence(&la[i]), 1);
        if (i % 10 != 2 || (i + 1) % 7 == 0) /* i + 1 must be a's too */
            continue;
        /* Each name's own TTL group went to the store: names i (3 s) and
         * i + 1 (5 s), acquired in the same pass, read in one call (so a
         * slow redis-cli cannot blur it) lie 2 s apart. */
        char key2[64];
        snprintf(key2, sizeof(key2), "lr:{ba%d}", i + 1);
        const char *both[] = {"EVAL", "return {redis.call('PTTL', KEYS[1]), "
                                      "redis.call('PTTL', KEYS[2])}",
                              "2", key, key2, NULL};
        CHECK_OK(redis_cli(&s, out, sizeof(out), both));
        long long p3 = atoll(out), p5 = atoll(strchr(out, '\n') + 1);
        CHECK(p3 > 0 && p3 <= 3000 && p5 <= 5000);
        CHECK(p5 - p3 > 1900 && p5 - p3 < 2100);
    }
    CHECK_OK(cli(&s, out, sizeof(out), "HGET", "lr:{ba5}", "node"));
    CHECK(!strcmp(out, "alpha"));
    /* hand every name over: b releases, a takes its names; a releases, b
     * takes the rest. Fences grow strictly per name, across holders. */
    uint64_t fa[NB];
    for (int i = 0; i < NB; i++)
        fa[i] = lr_lease_fence(i % 7 ? &la[i] : &lb[i]);
    nev = 0;
    for (int i = 0; i < NB; i++)
        CHECK_OK(lr_lease_release(i % 7 ? &la[i] : &lb[i]));
    run_until(0, 300);
    CHECK_EQ(rec_count(EV_REL, NULL), NB);
    for (int i = 0; i < NB; i++)
        CHECK_OK(lr_lease_try_acquire(i % 7 ? &lb[i] : &la[i]));
    run_until(0, 500);
    CHECK_EQ(rec_count(EV_ACQ, NULL), NB);
    for (int i = 0; i < NB; i++) {
        const struct lr_lease *l = i % 7 ? &lb[i] : &la[i];
        CHECK_EQ(lr_lease_state(l), LR_LEASE_HELD);
        CHECK(lr_lease_fence(l) > fa[i]);
        if (i % 10)
            continue;
        /* the slot's counter: at least this name's fence (names may share a slot) */
        char name[16];
        size_t nlen = (size_t)snprintf(name, sizeof(name), "ba%d", i);
        key[lr__redis_fence_key(key, sizeof(key) - 1, "lr:", 3, name, nlen)] = '\0';
        CHECK_OK(cli(&s, out, sizeof(out), "GET", key, NULL));
        CHECK((uint64_t)atoll(out) >= lr_lease_fence(l));
    }
    for (int i = 0; i < NB; i++) {
        lr_lease_deinit(&la[i]);
        lr_lease_deinit(&lb[i]);
    }
    close_mgr(a);
    close_mgr(b);
    redis_server_destroy(&s);
}

/* The script itself, as a retry would send it: the same owner token twice
 * re-acquires (same fence, counter untouched, TTL refreshed); another token
 * meets {holder, pttl}, the holder named by its identity (ARGV[2]); a name
 * that is free beside them is created. */
TEST(batched_acquire_script_is_idempotent_per_name)
{
    struct redis_server s;
    CHECK_OK(redis_server_start(&s, NULL));
    static const char tok_a[] = "0123456789abcdef0123456789abcdef";
    static const char tok_b[] = "fedcba9876543210fedcba9876543210";
    char out[512];
    const char *first[] = {"EVAL", acquire_batch_lua, "4", "i:{x}", "i:{x}:fence", "i:{y}",
                           "i:{y}:fence", "7000", "id-a", tok_a, tok_a, NULL};
    CHECK_OK(redis_cli(&s, out, sizeof(out), first));
    CHECK(!strcmp(out, "1\n1"));
    /* again with the same token: the same fences, no INCR */
    CHECK_OK(redis_cli(&s, out, sizeof(out), first));
    CHECK(!strcmp(out, "1\n1"));
    CHECK_OK(cli(&s, out, sizeof(out), "GET", "i:{x}:fence", NULL));
    CHECK(!strcmp(out, "1"));
    CHECK_OK(cli(&s, out, sizeof(out), "PTTL", "i:{x}", NULL));
    CHECK(atoll(out) > 6000 && atoll(out) <= 7000);
    /* another owner: x answers who holds it; z (free) is created */
    const char *other[] = {"EVAL", acquire_batch_lua, "4", "i:{x}", "i:{x}:fence", "i:{z}",
                           "i:{z}:fence", "7000", "id-b", tok_b, tok_b, NULL};
    CHECK_OK(redis_cli(&s, out, sizeof(out), other));
    char *nl = strchr(out, '\n');
    CHECK(nl != NULL);
    *nl = '\0';
    CHECK(!strcmp(out, "id-a")); /* x: {holder (its identity), pttl, ...} */
    long long pttl = atoll(nl + 1);
    CHECK(pttl > 5000 && pttl <= 7000);
    CHECK(!strcmp(strchr(nl + 1, '\n') + 1, "1")); /* z: fence 1 */
    /* x freed: the next holder gets fence 2 */
    CHECK_OK(cli(&s, out, sizeof(out), "DEL", "i:{x}", NULL));
    const char *again[] = {"EVAL", acquire_batch_lua, "2", "i:{x}", "i:{x}:fence", "7000",
                           "id-b", tok_b, NULL};
    CHECK_OK(redis_cli(&s, out, sizeof(out), again));
    CHECK(!strcmp(out, "2"));
    redis_server_destroy(&s);
}

/* ---- flow control ---- */

static unsigned long f_acquired, f_failed, f_lost, f_jeop;
static uint64_t f_last_ns;
static struct lr_lease *f_last;

static void f_on_acquired(struct lr_lease *l)
{
    f_acquired++;
    f_last_ns = mono_ns();
    f_last = l;
}

static void f_on_acquire_failed(struct lr_lease *l, int status)
{
    (void)l;
    if (!f_failed++)
        fprintf(stderr, "first acquire failure: %s\n", lr_strerror(status));
}

static void f_on_lost(struct lr_lease *l, int reason)
{
    (void)l;
    if (!f_lost++)
        fprintf(stderr, "first loss: %s\n", lr_strerror(reason));
}

static void f_on_jeopardy(struct lr_lease *l, int status)
{
    (void)l;
    if (!f_jeop++)
        fprintf(stderr, "first jeopardy: %s\n", lr_strerror(status));
}

static const struct lr_lease_cbs f_cbs = {
    .acquired = f_on_acquired,
    .acquire_failed = f_on_acquire_failed,
    .lost = f_on_lost,
    .jeopardy = f_on_jeopardy,
};

/* 200,000 acquires at once (50,000 under the sanitizers) through a window
 * of 512 keys, on the connection where 2,000 leases with a 1 s TTL are
 * renewing every ~330 ms, with a request timeout (500 ms) far shorter than
 * the flood takes: everything is acquired, no renewal fails, nothing is
 * lost, no connection is killed, and the last lease's validity runs from
 * its own send, long after it was queued. */
TEST(a_flood_of_acquires_through_a_small_window)
{
    rec_setup();
    struct redis_server s;
    CHECK_OK(redis_server_start(&s, NULL));
    const unsigned long n = SANITIZED ? 50000 : 200000, hot = 2000;
    struct lr_manager_opts o = {.ttl_ms = 10000, .cbs = &f_cbs, .max_leases = n + hot,
                                .margin_ms = 25, .request_timeout_ms = 500,
                                .inflight_max = 512};
    struct lr_manager *m = NULL;
    CHECK_OK(lr_manager_new(&m, loop, server_uri(&s, NULL), &o));
    struct lr_lease *ls = calloc(n + hot, sizeof(*ls));
    CHECK(ls != NULL);
    struct lr_lease_opts short_ttl = {.ttl_ms = 1000};
    for (unsigned long i = 0; i < n + hot; i++) {
        char name[32];
        snprintf(name, sizeof(name), "fl%lu", i);
        CHECK_OK(lr_lease_init(m, &ls[i], name, i < hot ? &short_ttl : NULL));
    }
    f_acquired = f_failed = f_lost = f_jeop = 0;
    for (unsigned long i = 0; i < hot; i++)
        CHECK_OK(lr_lease_acquire(&ls[i], 5000));
    run_until(0, 500);
    CHECK_EQ(f_acquired, hot);
    const struct lr_manager_stats *st = lr_manager_stats(m);
    uint64_t r0 = st->renewals;
    /* the flood */
    lr_loop_update_time(loop);
    uint64_t t0 = mono_ns();
    for (unsigned long i = hot; i < n + hot; i++)
        CHECK_OK(lr_lease_acquire(&ls[i], 30000));
    while (f_acquired + f_failed < n + hot && mono_ns() - t0 < 40000000000ull)
        run_until(0, 50);
    double took = (double)(f_last_ns - t0) / 1e9;
    uint64_t flood_renewals = st->renewals - r0;
    /* The last lease waited behind the window for most of the flood, yet
     * its validity counts from its send: the send was stamped late in the
     * flood (the window lets it go only once nearly all before it were
     * answered), no later than its answer, and validity follows from it.
     * Checked now, before its first renewal stamps a new send. */
    CHECK(f_last != NULL);
    uint64_t sent_ms = f_last->sent_ns / 1000000u;
    uint64_t keep = (uint64_t)(10000 * (1.0 - 0.01)) - 25;
    CHECK_EQ(lr_lease_valid_until(f_last), sent_ms + keep);
    CHECK(f_last->sent_ns <= f_last_ns);
    CHECK(f_last->sent_ns >= t0 + (f_last_ns - t0) / 2);
    /* and hold a while: every flood lease renews once (at ~3.3 s) */
    run_until(0, 4000);
    printf("     %lu acquired in %.2f s (%lu failed) beside %llu renewals during it; then "
           "%llu renewals, %llu renew failures, %lu lost, %llu request timeouts, "
           "%llu reconnects, %llu requests\n",
           f_acquired - hot, took, f_failed, (unsigned long long)flood_renewals,
           (unsigned long long)(st->renewals - r0), (unsigned long long)st->renew_failures,
           f_lost, (unsigned long long)st->request_timeouts,
           (unsigned long long)st->reconnects, (unsigned long long)st->requests);
    CHECK_EQ(f_acquired, n + hot);
    CHECK_EQ(f_failed, 0);
    CHECK_EQ(st->renew_failures, 0);
    CHECK_EQ(f_jeop, 0);
    CHECK_EQ(f_lost, 0);
    CHECK_EQ(st->request_timeouts, 0);
    CHECK_EQ(st->reconnects, 0);
    CHECK_EQ(st->held, n + hot);
    /* the hot leases kept renewing through the flood (one every ~330 ms) */
    CHECK(took < 1.0 || flood_renewals >= hot * (uint64_t)(took * 2));
    for (unsigned long i = 0; i < n + hot; i++)
        lr_lease_deinit(&ls[i]);
    free(ls);
    close_mgr(m);
    redis_server_destroy(&s);
}

TESTS(T(batched_acquire_answers_each_name), T(batched_acquire_script_is_idempotent_per_name),
      T(a_flood_of_acquires_through_a_small_window))
