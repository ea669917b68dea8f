/* SPDX-License-Identifier: MIT */
/*
 * test_redis.c - leases against real redis-server processes started on free
 * loopback ports: acquire / conflict / release, what the keys hold, two
 * managers competing for 1,000 names (never two holders, fences strictly
 * increasing), SCRIPT FLUSH mid-run, the server killed or stopped mid-run
 * (jeopardy, then lost at valid_until, or held on if it returns in time), AUTH
 * with an ACL user, batched and unbatched renewals, and a steady state of
 * 10,000 leases that allocates nothing.
 */
#include <errno.h>
#include <stdlib.h>

#include <leasering.h>
#include "alloccount.h"
#include "harness.h"
#include "lease_int.h"
#include "recorder.h"
#include "redis_server.h"
#include "redis_slot.h"

static char uri[256];

static const char *server_uri(const struct redis_server *s, const char *userinfo,
                              const char *query)
{
    snprintf(uri, sizeof(uri), "redis://%s%s127.0.0.1:%d%s", userinfo ? userinfo : "",
             userinfo ? "@" : "", s->port, query ? query : "");
    return uri;
}

static struct lr_manager *mgr(const char *u, uint32_t ttl, uint32_t batch, uint32_t cap)
{
    /* margin 25 ms: between a holder's local deadline and the store's expiry
     * there are then 10 + 25 ms, more than a loaded CI machine stalls us */
    struct lr_manager_opts o = {.ttl_ms = ttl, .cbs = &rec_cbs, .batch_max = batch,
                                .max_leases = cap ? cap : 4096, .margin_ms = 25};
    struct lr_manager *m = NULL;
    int rc = lr_manager_new(&m, loop, u, &o);
    if (rc < 0)
        fprintf(stderr, "lr_manager_new(%s): %s\n", u, lr_strerror(rc));
    return m;
}

static int cli(const struct redis_server *s, char *out, size_t cap, const char *a0,
               const char *a1, const char *a2)
{
    const char *args[] = {a0, a1, a2, NULL};
    return redis_cli(s, out, cap, args);
}

static void names(struct lr_manager *m, struct lr_lease *ls, int n, const char *fmt)
{
    for (int i = 0; i < n; i++) {
        char name[32];
        snprintf(name, sizeof(name), fmt, i);
        if (lr_lease_init(m, &ls[i], name, NULL) < 0)
            abort();
    }
}

TEST(acquire_conflict_release_and_the_keys)
{
    rec_setup();
    struct redis_server s;
    CHECK_OK(redis_server_start(&s, NULL));
    struct lr_manager *a = mgr(server_uri(&s, NULL, "?prefix=t:"), 5000, 0, 0);
    struct lr_manager *b = mgr(uri, 5000, 0, 0);
    CHECK(a && b);
    CHECK(!strcmp(lr_manager_backend(a), "redis"));
    struct lr_lease la, lb;
    CHECK_OK(lr_lease_init(a, &la, "job-7", NULL));
    CHECK_OK(lr_lease_init(b, &lb, "job-7", NULL));
    CHECK_OK(lr_lease_set_meta(&la, "node", "alpha"));
    CHECK_OK(lr_lease_acquire(&la, 2000));
    run_until(EV_ACQ, 3000);
    CHECK_EQ(lr_lease_state(&la), LR_LEASE_HELD);
    CHECK_EQ(lr_lease_fence(&la), 1);
    CHECK_OK(lr_lease_try_acquire(&lb));
    run_until(EV_ACQFAIL, 3000);
    CHECK_ERR(rec_first(EV_ACQFAIL, &lb)->status, LR_ECONFLICT);
    int64_t httl = lr_lease_holder_ttl_ms(&lb);
    CHECK(httl > 4000 && httl <= 5000);
    /* the keys, as redis-cli sees them */
    char out[256];
    CHECK_OK(cli(&s, out, sizeof(out), "HGET", "t:{job-7}", "owner"));
    CHECK_EQ(strlen(out), 32);
    CHECK_OK(cli(&s, out, sizeof(out), "HGET", "t:{job-7}", "identity"));
    CHECK(!strcmp(out, lr_manager_identity(a)));
    CHECK(!strcmp(out, lr_lease_holder(&lb))); /* the holder reported, by identity */
    CHECK_OK(cli(&s, out, sizeof(out), "HGET", "t:{job-7}", "fence"));
    CHECK_EQ(atoll(out), 1);
    CHECK_OK(cli(&s, out, sizeof(out), "HGET", "t:{job-7}", "node"));
    CHECK(!strcmp(out, "alpha"));
    char fkey[64];
    fkey[lr__redis_fence_key(fkey, sizeof(fkey) - 1, "t:", 2, "job-7", 5)] = '\0';
    CHECK_OK(cli(&s, out, sizeof(out), "GET", fkey, NULL));
    CHECK_EQ(atoll(out), 1);
    CHECK_OK(cli(&s, out, sizeof(out), "PTTL", "t:{job-7}", NULL));
    CHECK(atoll(out) > 4000 && atoll(out) <= 5000);
    /* release, then the other manager gets fence 2 */
    CHECK_OK(lr_lease_release(&la));
    run_until(EV_REL, 3000);
    CHECK_OK(rec_first(EV_REL, &la)->status);
    CHECK_OK(cli(&s, out, sizeof(out), "EXISTS", "t:{job-7}", NULL));
    CHECK(!strcmp(out, "0"));
    CHECK_OK(lr_lease_try_acquire(&lb));
    run_until(EV_ACQ, 3000);
    CHECK_EQ(lr_lease_fence(&lb), 2);
    CHECK_OK(lr_lease_release(&la)); /* idempotent: not held */
    /* someone deletes the key: the next renewal hears "not yours" */
    CHECK_OK(cli(&s, out, sizeof(out), "DEL", "t:{job-7}", NULL));
    CHECK_OK(lr_lease_renew(&lb));
    run_until(EV_LOST, 3000);
    CHECK_ERR(rec_first(EV_LOST, &lb)->status, LR_ELOST);
    lr_lease_deinit(&la);
    lr_lease_deinit(&lb);
    close_mgr(a);
    close_mgr(b);
    redis_server_destroy(&s);
}

/* ---- two managers competing for the same names ---- */

#define NAMES 1000
static struct lr_lease comp[2][NAMES];
static struct lr_manager *cm[2];
static int holder[NAMES];        /* 0 none, else manager index + 1 */
static uint64_t last_fence[NAMES];
static uint64_t unseen[NAMES];   /* acquires that failed ambiguously (may have been applied) */
static int overlaps, fence_regressions, handovers;

static int side_of(const struct lr_lease *l, int *idx)
{
    for (int k = 0; k < 2; k++)
        if (l >= comp[k] && l < comp[k] + NAMES) {
            *idx = (int)(l - comp[k]);
            return k;
        }
    abort();
}

static void compete_hook(const struct rec *r)
{
    int i, k = side_of(r->l, &i);
    switch (r->ev) {
    case EV_ACQ:
        if (holder[i])
            overlaps++;
        holder[i] = k + 1;
        if (lr_lease_fence(r->l) <= last_fence[i])
            fence_regressions++;
        last_fence[i] = lr_lease_fence(r->l);
        handovers++;
        /* hold a while, then give it up: release, or stop renewing (expiry) */
        if (rand() % 4 == 0)
            lr_lease_set_auto_renew(r->l, 0);
        break;
    case EV_LOST:
    case EV_REL:
        if (holder[i] == k + 1)
            holder[i] = 0;
        lr_lease_set_auto_renew(r->l, 1);
        lr_lease_acquire(r->l, 5000); /* compete again */
        break;
    case EV_ACQFAIL:
        /* a timed-out acquire may have been applied: a fence nobody saw */
        if (r->status == -ETIMEDOUT || r->status == -ECONNRESET || r->status == LR_EEOF)
            unseen[i]++;
        lr_lease_acquire(r->l, 5000);
        break;
    default:
        break;
    }
}

static void release_some(struct lr_timer *t)
{
    /* every 50 ms, release ~2% of what each side holds. A holder gives the
     * lease up when it *calls* release: from then on it must not use it, and
     * the other side may get it before our released callback runs. */
    for (int k = 0; k < 2; k++)
        for (int i = 0; i < NAMES; i++)
            if (lr_lease_state(&comp[k][i]) == LR_LEASE_HELD && rand() % 50 == 0) {
                if (holder[i] == k + 1)
                    holder[i] = 0;
                lr_lease_release(&comp[k][i]);
            }
    lr_timer_start(t, lr_loop_now_ms(t->loop) + 50);
}

TEST(two_managers_compete_for_1000_names)
{
    rec_setup();
    srand(7);
    struct redis_server s;
    CHECK_OK(redis_server_start(&s, NULL));
    for (int k = 0; k < 2; k++) {
        cm[k] = mgr(server_uri(&s, NULL, NULL), 1000, 0, 0);
        CHECK(cm[k]);
        names(cm[k], comp[k], NAMES, "c%d");
    }
    memset(holder, 0, sizeof(holder));
    memset(last_fence, 0, sizeof(last_fence));
    memset(unseen, 0, sizeof(unseen));
    overlaps = fence_regressions = handovers = 0;
    rec_hook = compete_hook;
    for (int i = 0; i < NAMES; i++)
        for (int k = 0; k < 2; k++)
            CHECK_OK(lr_lease_acquire(&comp[k][i], 5000));
    struct lr_timer churn;
    lr_timer_init(loop, &churn, release_some);
    lr_timer_start(&churn, lr_loop_now_ms(loop) + 50);
    int seconds = getenv("LR_COMPETE_SECONDS") ? atoi(getenv("LR_COMPETE_SECONDS")) : 30;
    run_until(0, (uint64_t)seconds * 1000);
    lr_timer_stop(&churn);
    rec_hook = NULL;
    printf("     %d s: %d acquisitions, %llu renewals, %d overlaps, %d fence regressions, "
           "%d lost\n",
           seconds, handovers,
           (unsigned long long)(lr_manager_stats(cm[0])->renewals +
                                lr_manager_stats(cm[1])->renewals),
           overlaps, fence_regressions, rec_count(EV_LOST, NULL));
    CHECK_EQ(overlaps, 0);
    CHECK_EQ(fence_regressions, 0);
    CHECK(handovers > NAMES * 3);
    /* the store agrees: each fence counter is the last fence handed out --
     * or one more, when the run ended with an acquire of that name in flight
     * (the store may have applied it; its reply was never read) */
    char out[64], key[64], name[16];
    static uint16_t slot_names[LR__REDIS_SLOTS]; /* test names per fence counter (slot) */
    memset(slot_names, 0, sizeof(slot_names));
    for (int i = 0; i < NAMES; i++) {
        size_t n = (size_t)snprintf(key, sizeof(key), "lr:{c%d}", i);
        slot_names[lr__redis_slot(key, n)]++;
    }
    int checked = 0;
    for (int i = 0; i < NAMES; i += 7) {
        /* a counter is shared by the names of its slot: exact only when alone */
        size_t nlen = (size_t)snprintf(name, sizeof(name), "c%d", i);
        size_t klen = lr__redis_fence_key(key, sizeof(key), "lr:", 3, name, nlen);
        key[klen] = '\0';
        if (slot_names[lr__redis_slot(key, klen)] != 1)
            continue;
        checked++;
        CHECK_OK(cli(&s, out, sizeof(out), "GET", key, NULL));
        uint64_t may = unseen[i];
        for (int k = 0; k < 2; k++)
            may += lr_lease_state(&comp[k][i]) == LR_LEASE_ACQUIRING ||
                   lr_lease_state(&comp[k][i]) == LR_LEASE_RELEASING;
        uint64_t got = (uint64_t)atoll(out);
        if (got != last_fence[i])
            printf("     c%d: store fence %llu, last seen %llu, %llu unseen possible\n", i,
                   (unsigned long long)got, (unsigned long long)last_fence[i],
                   (unsigned long long)may);
        CHECK(got >= last_fence[i] && got <= last_fence[i] + may);
    }
    CHECK(checked > 100);
    for (int k = 0; k < 2; k++) {
        for (int i = 0; i < NAMES; i++)
            lr_lease_deinit(&comp[k][i]);
        close_mgr(cm[k]);
    }
    redis_server_destroy(&s);
}

/* ---- SCRIPT FLUSH, kill, stop ---- */

TEST(script_flush_mid_run_reloads_transparently)
{
    rec_setup();
    struct redis_server s;
    CHECK_OK(redis_server_start(&s, NULL));
    struct lr_manager *m = mgr(server_uri(&s, NULL, NULL), 600, 0, 0);
    CHECK(m);
    static struct lr_lease ls[100];
    names(m, ls, 100, "f%d");
    for (int i = 0; i < 100; i++)
        CHECK_OK(lr_lease_acquire(&ls[i], 2000));
    run_until(0, 500);
    CHECK_EQ(rec_count(EV_ACQ, NULL), 100);
    char out[64];
    for (int round = 0; round < 3; round++) {
        CHECK_OK(cli(&s, out, sizeof(out), "SCRIPT", "FLUSH", NULL));
        run_until(0, 400);
    }
    uint64_t r0 = lr_manager_stats(m)->renewals;
    run_until(0, 600);
    CHECK(lr_manager_stats(m)->renewals - r0 >= 100);
    CHECK_EQ(rec_count(EV_JEOP, NULL), 0);
    CHECK_EQ(rec_count(EV_LOST, NULL), 0);
    CHECK_EQ(lr_manager_stats(m)->held, 100);
    for (int i = 0; i < 100; i++)
        lr_lease_deinit(&ls[i]);
    close_mgr(m);
    redis_server_destroy(&s);
}

/* Hold 20 leases; break the server with @fault; restore it after @down_ms
 * (0: never). Returns through the recorder. */
enum fault { KILL, STOP };

static void outage(struct redis_server *s, enum fault f, uint32_t ttl, uint64_t down_ms,
                   struct lr_lease *ls, struct lr_manager **mp)
{
    struct lr_manager_opts o = {.ttl_ms = ttl, .cbs = &rec_cbs, .request_timeout_ms = 200};
    struct lr_manager *m = NULL;
    if (lr_manager_new(&m, loop, server_uri(s, NULL, NULL), &o) < 0)
        abort();
    *mp = m;
    names(m, ls, 20, "o%d");
    for (int i = 0; i < 20; i++)
        lr_lease_acquire(&ls[i], 2000);
    run_until(0, 300);
    if (f == KILL)
        redis_server_kill(s);
    else
        redis_server_pause(s);
    run_until(EV_JEOP, ttl);
    if (down_ms) {
        run_until(0, down_ms);
        if (f == KILL)
            redis_server_restart(s);
        else
            redis_server_resume(s);
    }
}

static void check_lost_at_valid_until(struct lr_lease *ls, const uint64_t *vu, int reason)
{
    for (int i = 0; i < 20; i++) {
        const struct rec *r = rec_first(EV_LOST, &ls[i]);
        CHECK(r != NULL);
        if (reason)
            CHECK_ERR(r->status, reason);
        /* lost at valid_until - loss_guard (TTL 1.5 s: the default guard
         * is 15 ms), a tick early at most, never late by more than noise */
        int64_t late = (int64_t)r->at_ns - (int64_t)(vu[i] * 1000000u);
        CHECK(late >= -16000000 && late < 20000000);
    }
}

TEST(server_killed_jeopardy_then_lost_at_valid_until)
{
    rec_setup();
    struct redis_server s;
    CHECK_OK(redis_server_start(&s, NULL));
    static struct lr_lease ls[20];
    struct lr_manager *m;
    outage(&s, KILL, 1500, 0, ls, &m);
    uint64_t vu[20];
    for (int i = 0; i < 20; i++)
        vu[i] = lr_lease_valid_until(&ls[i]);
    run_until(0, 1600);
    CHECK_EQ(rec_count(EV_JEOP, NULL), 20); /* each warned once... */
    CHECK_EQ(rec_count(EV_LOST, NULL), 20); /* ...then lost at its own deadline */
    for (int i = 0; i < 20; i++)
        CHECK(rec_first(EV_JEOP, &ls[i])->at_ns < rec_first(EV_LOST, &ls[i])->at_ns);
    check_lost_at_valid_until(ls, vu, LR_EUNAVAIL);
    for (int i = 0; i < 20; i++)
        lr_lease_deinit(&ls[i]);
    close_mgr(m);
    redis_server_destroy(&s);
}

TEST(server_killed_and_back_in_time_holds_on)
{
    rec_setup();
    /* AOF with fsync always: the keys and their TTLs survive a kill -9 */
    static const char *const aof[] = {"--appendonly", "yes", "--appendfsync", "always", NULL};
    struct redis_server s;
    CHECK_OK(redis_server_start(&s, aof));
    static struct lr_lease ls[20];
    struct lr_manager *m;
    outage(&s, KILL, 3000, 300, ls, &m);
    run_until(0, 2500);
    for (int i = 0; i < nev; i++)
        if (evs[i].ev == EV_LOST)
            printf("     %s %s at +%.1f ms (failures %u, reconnects %llu)\n",
                   evs[i].ev == EV_LOST ? "lost" : "jeopardy", lr_err_name(evs[i].status),
                   (evs[i].at_ns - evs[0].at_ns) / 1e6, lr_lease_stats(evs[i].l)->renew_failures,
                   (unsigned long long)lr_manager_stats(m)->reconnects);
    CHECK_EQ(rec_count(EV_LOST, NULL), 0);
    for (int i = 0; i < 20; i++) {
        CHECK_EQ(lr_lease_state(&ls[i]), LR_LEASE_HELD);
        CHECK(lr_lease_stats(&ls[i])->renewals >= 2);
    }
    CHECK(lr_manager_stats(m)->reconnects >= 1);
    for (int i = 0; i < 20; i++)
        lr_lease_deinit(&ls[i]);
    close_mgr(m);
    redis_server_destroy(&s);
}

TEST(server_stopped_jeopardy_then_lost_at_valid_until)
{
    rec_setup();
    struct redis_server s;
    CHECK_OK(redis_server_start(&s, NULL));
    static struct lr_lease ls[20];
    struct lr_manager *m;
    outage(&s, STOP, 1500, 0, ls, &m);
    uint64_t vu[20];
    for (int i = 0; i < 20; i++)
        vu[i] = lr_lease_valid_until(&ls[i]);
    CHECK_ERR(rec_first(EV_JEOP, NULL)->status, -ETIMEDOUT);
    run_until(0, 1600);
    CHECK_EQ(rec_count(EV_JEOP, NULL), 20);
    CHECK_EQ(rec_count(EV_LOST, NULL), 20);
    /* Renewals sent into the stall time out (ambiguous); the ones queued while
     * the reconnect's handshake stalls are never sent: the reason is
     * "expired" or "unavailable" depending on which came last. */
    for (int i = 0; i < 20; i++) {
        int why = rec_first(EV_LOST, &ls[i])->status;
        CHECK(why == LR_EEXPIRED || why == LR_EUNAVAIL);
    }
    check_lost_at_valid_until(ls, vu, 0);
    redis_server_resume(&s);
    for (int i = 0; i < 20; i++)
        lr_lease_deinit(&ls[i]);
    close_mgr(m);
    redis_server_destroy(&s);
}

TEST(server_stopped_and_back_in_time_holds_on)
{
    rec_setup();
    struct redis_server s;
    CHECK_OK(redis_server_start(&s, NULL));
    static struct lr_lease ls[20];
    struct lr_manager *m;
    outage(&s, STOP, 3000, 300, ls, &m);
    run_until(0, 2500);
    CHECK_EQ(rec_count(EV_LOST, NULL), 0);
    for (int i = 0; i < 20; i++)
        CHECK_EQ(lr_lease_state(&ls[i]), LR_LEASE_HELD);
    for (int i = 0; i < 20; i++)
        lr_lease_deinit(&ls[i]);
    close_mgr(m);
    redis_server_destroy(&s);
}

/* ---- AUTH ---- */

TEST(auth_with_an_acl_user)
{
    rec_setup();
    static const char *const acl[] = {"--user", "alice", "on", ">s3cret", "~*", "+@all",
                                      "--user", "default", "off", NULL};
    struct redis_server s;
    CHECK_OK(redis_server_start(&s, acl));
    struct lr_manager *good = mgr(server_uri(&s, "alice:s3cret", "/3"), 2000, 0, 0);
    struct lr_manager *bad = mgr(server_uri(&s, "alice:wrong", NULL), 2000, 0, 0);
    struct lr_manager *none = mgr(server_uri(&s, NULL, NULL), 2000, 0, 0);
    CHECK(good && bad && none);
    struct lr_lease lg, lb, ln;
    CHECK_OK(lr_lease_init(good, &lg, "secure", NULL));
    CHECK_OK(lr_lease_init(bad, &lb, "secure", NULL));
    CHECK_OK(lr_lease_init(none, &ln, "secure", NULL));
    CHECK_OK(lr_lease_acquire(&lg, 2000));
    CHECK_OK(lr_lease_acquire(&lb, 2000));
    CHECK_OK(lr_lease_acquire(&ln, 2000));
    run_until(0, 1500);
    CHECK_EQ(lr_lease_state(&lg), LR_LEASE_HELD);
    CHECK_ERR(rec_first(EV_ACQFAIL, &lb)->status, LR_EAUTH);
    CHECK_ERR(rec_first(EV_ACQFAIL, &ln)->status, LR_EAUTH);
    char out[64];
    redis_cli_auth("alice", "s3cret");
    const char *args[] = {"-n", "3", "EXISTS", "lr:{secure}", NULL};
    CHECK_OK(redis_cli(&s, out, sizeof(out), args));
    CHECK(!strcmp(out, "1")); /* in database 3, as the URI said */
    redis_cli_auth(NULL, NULL);
    lr_lease_deinit(&lg);
    lr_lease_deinit(&lb);
    lr_lease_deinit(&ln);
    close_mgr(good);
    close_mgr(bad);
    close_mgr(none);
    redis_server_destroy(&s);
}

/* ---- batching ---- */

TEST(batched_and_unbatched_renewals_agree)
{
    rec_setup();
    struct redis_server s;
    CHECK_OK(redis_server_start(&s, NULL));
    static struct lr_lease lb[500], lu[500];
    struct lr_manager *mb = mgr(server_uri(&s, NULL, "?prefix=b:"), 600, 64, 0);
    struct lr_manager *mu = mgr(server_uri(&s, NULL, "?prefix=u:"), 600, 1, 0);
    CHECK(mb && mu);
    names(mb, lb, 500, "n%d");
    names(mu, lu, 500, "n%d");
    for (int i = 0; i < 500; i++) {
        CHECK_OK(lr_lease_acquire(&lb[i], 2000));
        CHECK_OK(lr_lease_acquire(&lu[i], 2000));
    }
    run_until(0, 300);
    uint64_t rb0 = lr_manager_stats(mb)->renewals, qb0 = lr_manager_stats(mb)->requests;
    uint64_t ru0 = lr_manager_stats(mu)->renewals, qu0 = lr_manager_stats(mu)->requests;
    run_until(0, 2000);
    uint64_t rb = lr_manager_stats(mb)->renewals - rb0, qb = lr_manager_stats(mb)->requests - qb0;
    uint64_t ru = lr_manager_stats(mu)->renewals - ru0, qu = lr_manager_stats(mu)->requests - qu0;
    printf("     batched: %llu renewals in %llu requests; unbatched: %llu in %llu\n",
           (unsigned long long)rb, (unsigned long long)qb, (unsigned long long)ru,
           (unsigned long long)qu);
    CHECK(rb >= 500 * 8 && ru >= 500 * 8);
    CHECK(rb * 10 >= ru * 9 && ru * 10 >= rb * 9); /* the same work */
    /* one request each: requests are counted when sent and renewals when
     * answered, so the two differ by what is in flight at the samples: a
     * few grid points' worth (500 renewals every ~200 ms, rounded up onto
     * the renew_coalesce_ms grid: ~50 a point on the default 20 ms grid) */
    uint64_t in_flight = 20 + 3 * 500 * (uint64_t)mu->o.renew_coalesce_ms / 200;
    CHECK(qu + in_flight >= ru && qu <= ru + in_flight);
    CHECK(qb * 2 < rb);                             /* several per request */
    CHECK_EQ(rec_count(EV_JEOP, NULL), 0);
    CHECK_EQ(rec_count(EV_LOST, NULL), 0);
    /* and the store holds both sets with live TTLs */
    char out[64];
    CHECK_OK(cli(&s, out, sizeof(out), "PTTL", "b:{n123}", NULL));
    CHECK(atoll(out) > 0);
    CHECK_OK(cli(&s, out, sizeof(out), "PTTL", "u:{n123}", NULL));
    CHECK(atoll(out) > 0);
    for (int i = 0; i < 500; i++) {
        lr_lease_deinit(&lb[i]);
        lr_lease_deinit(&lu[i]);
    }
    close_mgr(mb);
    close_mgr(mu);
    redis_server_destroy(&s);
}

/* ---- zero allocation at 10,000 leases ---- */

TEST(ten_thousand_leases_renew_without_allocating)
{
    rec_setup();
    struct redis_server s;
    CHECK_OK(redis_server_start(&s, NULL));
    struct lr_manager *m = mgr(server_uri(&s, NULL, NULL), 900, 0, 10000);
    CHECK(m);
    static struct lr_lease ls[10000];
    names(m, ls, 10000, "z%d");
    for (int i = 0; i < 10000; i++)
        CHECK_OK(lr_lease_acquire(&ls[i], 3000));
    run_until(0, 1500); /* acquired, and a first full renewal cycle (300 ms) done */
    CHECK_EQ(lr_manager_stats(m)->held, 10000);
    uint64_t r0 = lr_manager_stats(m)->renewals;
    alloccount_begin();
    run_until(0, 1500); /* about five more cycles */
    struct alloc_counts ac = alloccount_end();
    uint64_t n = lr_manager_stats(m)->renewals - r0;
    printf("     %llu renewals of 10000 leases: %llu allocs, %llu frees\n",
           (unsigned long long)n, (unsigned long long)ac.allocs, (unsigned long long)ac.frees);
    CHECK(n >= 10000 * 4);
    CHECK_EQ(ac.allocs, 0);
    CHECK_EQ(ac.frees, 0);
    /* release-all leaves in a handful of sends, not 10,000 */
    nev = 0;
    CHECK_EQ(lr_manager_release_all(m), 10000);
    run_until(0, 1000);
    CHECK_EQ(rec_count(EV_REL, NULL), 10000);
    char out[64];
    CHECK_OK(cli(&s, out, sizeof(out), "DBSIZE", NULL, NULL));
    /* only the fence counters are left: one per slot the names fall in */
    static bool used[LR__REDIS_SLOTS];
    memset(used, 0, sizeof(used));
    long slots = 0;
    for (int i = 0; i < 10000; i++) {
        char key[32];
        size_t klen = (size_t)snprintf(key, sizeof(key), "lr:{z%d}", i);
        uint16_t slot = lr__redis_slot(key, klen);
        slots += !used[slot];
        used[slot] = true;
    }
    CHECK_EQ(atoll(out), slots);
    CHECK(slots < 10000);
    for (int i = 0; i < 10000; i++)
        lr_lease_deinit(&ls[i]);
    close_mgr(m);
    redis_server_destroy(&s);
}

/* Two names whose keys share a slot share its fence counter: each
 * acquisition of either gets a larger token than every earlier one of both,
 * so tokens still grow strictly per name. A prefix with a brace would move
 * the hash tag: refused. */
TEST(names_of_one_slot_share_a_growing_fence)
{
    rec_setup();
    struct redis_server s;
    CHECK_OK(redis_server_start(&s, NULL));
    /* find a second name in the slot of "job-a" */
    char key[64], other[16] = "";
    uint16_t want = lr__redis_slot("lr:{job-a}", 10);
    for (int i = 0; i < 1000000 && !other[0]; i++) {
        size_t n = (size_t)snprintf(key, sizeof(key), "lr:{s%d}", i);
        if (lr__redis_slot(key, n) == want)
            snprintf(other, sizeof(other), "s%d", i);
    }
    CHECK(other[0]);
    struct lr_manager *m = mgr(server_uri(&s, NULL, NULL), 5000, 0, 0);
    CHECK(m);
    struct lr_lease a, b;
    CHECK_OK(lr_lease_init(m, &a, "job-a", NULL));
    CHECK_OK(lr_lease_init(m, &b, other, NULL));
    uint64_t last = 0;
    for (int round = 0; round < 3; round++) {
        struct lr_lease *order[2] = {round % 2 ? &b : &a, round % 2 ? &a : &b};
        for (int k = 0; k < 2; k++) {
            nev = 0;
            CHECK_OK(lr_lease_try_acquire(order[k]));
            run_until(EV_ACQ, 2000);
            CHECK_EQ(lr_lease_state(order[k]), LR_LEASE_HELD);
            CHECK(lr_lease_fence(order[k]) > last);
            last = lr_lease_fence(order[k]);
        }
        for (int k = 0; k < 2; k++) {
            nev = 0;
            CHECK_OK(lr_lease_release(order[k]));
            run_until(EV_REL, 2000);
        }
    }
    char out[64];
    CHECK_OK(cli(&s, out, sizeof(out), "DBSIZE", NULL, NULL));
    CHECK_EQ(atoll(out), 1); /* the one counter of the slot */
    key[lr__redis_fence_key(key, sizeof(key) - 1, "lr:", 3, other, strlen(other))] = '\0';
    CHECK_OK(cli(&s, out, sizeof(out), "GET", key, NULL));
    CHECK_EQ((uint64_t)atoll(out), last);
    lr_lease_deinit(&a);
    lr_lease_deinit(&b);
    close_mgr(m);
    struct lr_manager *bad = NULL;
    struct lr_manager_opts o = {.ttl_ms = 1000, .cbs = &rec_cbs};
    CHECK_ERR(lr_manager_new(&bad, loop, server_uri(&s, NULL, "?prefix=a{b}:"), &o), -EINVAL);
    CHECK_ERR(lr_manager_new(&bad, loop, server_uri(&s, NULL, "?prefix=a}"), &o), -EINVAL);
    redis_server_destroy(&s);
}

TEST(break_and_change)
{
    rec_setup();
    struct redis_server s;
    CHECK_OK(redis_server_start(&s, NULL));
    struct lr_manager *a = mgr(server_uri(&s, NULL, NULL), 900, 0, 0);
    struct lr_manager *b = mgr(uri, 900, 0, 0);
    CHECK(a && b);
    struct lr_lease la, lb;
    CHECK_OK(lr_lease_init(a, &la, "brk", NULL));
    CHECK_OK(lr_lease_init(b, &lb, "brk", NULL));
    CHECK_OK(lr_lease_acquire(&la, 2000));
    run_until(EV_ACQ, 2000);
    char before[64], after[64];
    CHECK_OK(cli(&s, before, sizeof(before), "HGET", "lr:{brk}", "owner"));
    CHECK_OK(lr_lease_change(&la));
    run_until(EV_CHANGED, 2000);
    CHECK_OK(rec_first(EV_CHANGED, &la)->status);
    CHECK_OK(cli(&s, after, sizeof(after), "HGET", "lr:{brk}", "owner"));
    CHECK_EQ(strlen(after), 32);
    CHECK(strcmp(before, after) != 0); /* the store holds the new token */
    run_until(0, 700);
    CHECK(rec_count(EV_RENEW, &la) >= 2); /* renewals go on under it */
    uint64_t f1 = lr_lease_fence(&la);
    uint64_t t0 = mono_ns();
    uint64_t vu = lr_lease_valid_until(&la);
    CHECK_OK(lr_lease_break(&lb, 500));
    run_until(EV_BROKEN, 2000);
    CHECK_OK(rec_first(EV_BROKEN, &lb)->status);
    char out[64];
    CHECK_OK(cli(&s, out, sizeof(out), "HGET", "lr:{brk}", "owner"));
    CHECK(!strcmp(out, ""));
    CHECK_OK(cli(&s, out, sizeof(out), "PTTL", "lr:{brk}", NULL));
    CHECK(atoll(out) > 300 && atoll(out) <= 900); /* the later of period and TTL, less the cli time */
    run_until(EV_LOST, 1000);
    CHECK_ERR(rec_first(EV_LOST, &la)->status, LR_ELOST);
    CHECK_OK(lr_lease_acquire(&lb, 3000));
    run_until(EV_ACQ, 3000);
    CHECK(rec_first(EV_ACQ, &lb) != NULL);
    CHECK(rec_first(EV_ACQ, &lb)->at_ns - t0 >= 500000000ull);
    CHECK(rec_first(EV_ACQ, &lb)->at_ns >= vu * 1000000u); /* not before la's validity ended */
    CHECK(lr_lease_fence(&lb) > f1);
    /* period 0 keeps the holder's TTL (it deleted the key at once before) */
    nev = 0;
    vu = lr_lease_valid_until(&lb);
    CHECK_OK(lr_lease_break(&la, 0));
    run_until(EV_BROKEN, 2000);
    CHECK_OK(rec_first(EV_BROKEN, &la)->status);
    CHECK_OK(cli(&s, out, sizeof(out), "PTTL", "lr:{brk}", NULL));
    CHECK(atoll(out) > 0);
    CHECK_OK(lr_lease_acquire(&la, 3000));
    run_until(EV_ACQ, 3000);
    CHECK(rec_first(EV_LOST, &lb) != NULL);
    CHECK(rec_first(EV_ACQ, &la) != NULL);
    CHECK(rec_first(EV_ACQ, &la)->at_ns >= vu * 1000000u);
    lr_lease_deinit(&la);
    lr_lease_deinit(&lb);
    close_mgr(a);
    close_mgr(b);
    redis_server_destroy(&s);
}

/* An embedding host sleeps in its own poll longer than the request timeout,
 * then releases: the request must be stamped with the time of the call, not
 * the loop's last pass (it used to fail at once as "never sent"). */
TEST(release_after_the_host_slept)
{
    rec_setup();
    struct redis_server s;
    CHECK_OK(redis_server_start(&s, NULL));
    struct lr_manager *m = mgr(server_uri(&s, NULL, NULL), 1000, 0, 0);
    CHECK(m);
    struct lr_lease l;
    CHECK_OK(lr_lease_init(m, &l, "slept", NULL));
    CHECK_OK(lr_lease_acquire(&l, 2000));
    run_until(EV_ACQ, 2000);
    CHECK(rec_first(EV_ACQ, &l) != NULL);
    /* No pass for 320 ms: more than the 250 ms request timeout, less than
     * the validity (about 1000 - 10 - 25 ms). */
    usleep(320 * 1000);
    CHECK_OK(lr_lease_release(&l));
    run_until(EV_REL, 2000);
    CHECK(rec_first(EV_REL, &l) != NULL);
    CHECK_OK(rec_first(EV_REL, &l)->status);
    CHECK_EQ(rec_count(EV_LOST, &l), 0);
    char out[64];
    CHECK_OK(cli(&s, out, sizeof(out), "EXISTS", "lr:{slept}", NULL));
    CHECK(!strcmp(out, "0"));
    lr_lease_deinit(&l);
    close_mgr(m);
    redis_server_destroy(&s);
}

TESTS(T(acquire_conflict_release_and_the_keys), T(break_and_change), T(release_after_the_host_slept), T(two_managers_compete_for_1000_names),
      T(script_flush_mid_run_reloads_transparently),
      T(server_killed_jeopardy_then_lost_at_valid_until),
      T(server_killed_and_back_in_time_holds_on),
      T(server_stopped_jeopardy_then_lost_at_valid_until),
      T(server_stopped_and_back_in_time_holds_on), T(auth_with_an_acl_user),
      T(batched_and_unbatched_renewals_agree), T(ten_thousand_leases_renew_without_allocating),
      T(names_of_one_slot_share_a_growing_fence))
