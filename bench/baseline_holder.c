/* SPDX-License-Identifier: MIT */
/*
 * bench/baseline_holder.c - the peer leasering is measured against: a lease
 * holder written the way most hand-rolled ones are, on hiredis async and
 * libevent, with one libevent timer per lease and one EVALSHA per renewal.
 *
 *   bench-baseline-holder --port P --leases N --ttl MS --seconds S [--prefix P]
 *                         [--latency-hist FILE]
 *
 * It speaks leasering's Redis layout and scripts (backends/redis_scripts.h),
 * so the server does the same work per key: lease hash lr:{name} with field
 * owner, fence counter lr:{name}:fence; acquire_lua once per lease (a window
 * of ACQUIRE_WINDOW calls in flight), renew_lua as a batch of one (compare
 * owner, PEXPIRE), release_lua at the end. Each lease re-arms its own timer
 * at TTL/3 with +-10% jitter from the reply to its last renewal.
 *
 * Prints one JSON object on stdout with the field names `leasering bench`
 * uses: counts cover the hold (from the last acquire reply for S seconds);
 * cpu_ns_per_renewal is CLOCK_PROCESS_CPUTIME_ID over the hold / renewals
 * in it; rss_bytes_per_lease is the RSS growth from before the first lease
 * was created until the end of the hold, / N; a lease is lost when a renewal
 * did not succeed before its TTL (counted from the send of the previous
 * successful call) or the store says someone else holds it. renew_latency_us
 * is send to reply of the renewals in the hold; timer_lateness_us is how
 * late libevent ran a renewal timer against the time it was armed for.
 * --latency-hist FILE writes the renew-latency histogram as
 * "upper_bound_us count" lines (non-empty buckets), like `leasering bench`.
 * Exit: 0 all acquired and none lost, 3 otherwise, 2 bad arguments, 1 Redis
 * could not be used.
 */
#include <getopt.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <hiredis/adapters/libevent.h>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>

/* The header defines every script; this program runs three of them. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-const-variable"
#include "redis_scripts.h"
#pragma GCC diagnostic pop

#define ACQUIRE_WINDOW 1024 /* acquires in flight; the rest wait to be sent */
#define RETRY_MS 100        /* after a failed renewal, while validity lasts */

struct lease {
    struct event *timer;
    char *key;
    uint64_t sent_ns;        /* send time of the call in flight */
    uint64_t valid_until_ns; /* send time of the last success + TTL */
    uint64_t due_ns;         /* when the armed timer should fire */
    unsigned held : 1;
    unsigned inflight : 1;
};

/* Latency histogram: 32 sub-buckets per power of two of microseconds, so a
 * quantile is within ~3% and the table stays a few KiB (a sample array would
 * grow RSS by the very thing we measure). */
#define HIST_SUB 32
#define HIST_BUCKETS (64 * HIST_SUB)
struct hist {
    uint64_t count[HIST_BUCKETS];
    uint64_t n;
    uint64_t max;
};

static struct {
    const char *prefix;
    const char *latency_hist;
    int port;
    unsigned long n;
    unsigned long ttl_ms;
    unsigned long seconds;
    char ttl_str[24];
    char token[33];
    char acquire_sha[41];
    char renew_sha[41];
    char release_sha[41];

    struct event_base *base;
    redisAsyncContext *ac;
    struct lease *leases;
    struct event *hold_timer;

    unsigned long next_acquire;
    unsigned long acquires_inflight;
    unsigned long answered;
    unsigned long acquired;
    unsigned long pending; /* every command in flight */
    int holding;
    int stopping;
    int disconnected;
    int conn_error;

    uint64_t acquire_t0_ns, acquire_t1_ns;
    uint64_t hold_t0_ns, hold_t1_ns;
    double cpu0, cpu1;
    long rss_base, rss_end;

    uint64_t renewals;
    uint64_t renew_failures;
    unsigned long lost;
    struct hist lat;
    struct hist late;
} B;

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static double cpu_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static long rss_bytes(void)
{
    long pages = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (f) {
        if (fscanf(f, "%*s %ld", &pages) != 1)
            pages = 0;
        fclose(f);
    }
    return pages * sysconf(_SC_PAGESIZE);
}

static void hist_add(struct hist *h, uint64_t us)
{
    unsigned idx;
    if (us < HIST_SUB) {
        idx = (unsigned)us;
    } else {
        unsigned msb = 63 - (unsigned)__builtin_clzll(us);
        unsigned shift = msb - 5; /* keep the top 6 bits: 32 sub-buckets */
        idx = (msb - 4) * HIST_SUB + (unsigned)((us >> shift) & (HIST_SUB - 1));
    }
    if (idx >= HIST_BUCKETS)
        idx = HIST_BUCKETS - 1;
    h->count[idx]++;
    h->n++;
    if (us > h->max)
        h->max = us;
}

/* The lowest value of bucket @idx: the inverse of hist_add's mapping. */
static uint64_t hist_value(unsigned idx)
{
    if (idx < HIST_SUB)
        return idx;
    unsigned msb = idx / HIST_SUB + 4;
    return ((uint64_t)(HIST_SUB + idx % HIST_SUB)) << (msb - 5);
}

static uint64_t hist_quantile(const struct hist *h, double q)
{
    if (!h->n)
        return 0;
    uint64_t rank = (uint64_t)(q * (double)h->n);
    uint64_t seen = 0;
    for (unsigned i = 0; i < HIST_BUCKETS; i++) {
        seen += h->count[i];
        if (seen > rank)
            return hist_value(i) < h->max ? hist_value(i) : h->max;
    }
    return h->max;
}

/* TTL/3 with +-10% jitter, so that leases acquired together spread out. */
static struct timeval renew_delay(void)
{
    double ms = (double)B.ttl_ms / 3.0 * (0.9 + 0.2 * drand48());
    struct timeval tv = {
        .tv_sec = (time_t)(ms / 1000.0),
        .tv_usec = (suseconds_t)((ms - (double)(long)(ms / 1000.0) * 1000.0) * 1000.0),
    };
    return tv;
}

static void arm(struct lease *l, struct timeval tv)
{
    l->due_ns = now_ns() + (uint64_t)tv.tv_sec * 1000000000u + (uint64_t)tv.tv_usec * 1000u;
    evtimer_add(l->timer, &tv);
}

static void maybe_finish(void)
{
    if (B.stopping && B.pending == 0 && !B.disconnected)
        redisAsyncDisconnect(B.ac);
}

static void release_reply(redisAsyncContext *ac, void *reply, void *privdata)
{
    (void)ac;
    (void)reply;
    (void)privdata;
    B.pending--;
    maybe_finish();
}

static void release(struct lease *l)
{
    l->held = 0;
    if (redisAsyncCommand(B.ac, release_reply, l, "EVALSHA %s 1 %s %s", B.release_sha, l->key,
                          B.token) == REDIS_OK)
        B.pending++;
}

static void mark_lost(struct lease *l)
{
    l->held = 0;
    B.lost++;
    evtimer_del(l->timer);
}

static void renew_reply(redisAsyncContext *ac, void *reply, void *privdata)
{
    (void)ac;
    redisReply *r = reply;
    struct lease *l = privdata;
    uint64_t t = now_ns();
    int counted = B.holding && !B.stopping;

    B.pending--;
    l->inflight = 0;
    if (!l->held) {
        maybe_finish();
        return;
    }
    if (r && r->type == REDIS_REPLY_ARRAY && r->elements == 1 &&
        r->element[0]->type == REDIS_REPLY_INTEGER && r->element[0]->integer == 1) {
        if (t > l->valid_until_ns) {
            mark_lost(l); /* renewed, but after the TTL: another holder could have had it */
        } else {
            l->valid_until_ns = l->sent_ns + B.ttl_ms * 1000000u;
            if (counted) {
                B.renewals++;
                hist_add(&B.lat, (t - l->sent_ns) / 1000u);
            }
            if (!B.stopping)
                arm(l, renew_delay());
        }
    } else if (r && r->type == REDIS_REPLY_ARRAY) {
        if (counted)
            B.renew_failures++;
        mark_lost(l); /* the store says it is not ours */
    } else {
        if (counted)
            B.renew_failures++;
        if (t >= l->valid_until_ns) {
            mark_lost(l);
        } else if (!B.stopping) {
            /* Retry while validity lasts: after RETRY_MS, or sooner near the end. */
            uint64_t left_us = (l->valid_until_ns - t) / 2000u;
            uint64_t us = left_us < RETRY_MS * 1000u ? left_us : RETRY_MS * 1000u;
            arm(l, (struct timeval){.tv_sec = 0, .tv_usec = (suseconds_t)us});
        }
    }
    if (B.stopping && l->held)
        release(l);
    maybe_finish();
}

static void renew_fire(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct lease *l = arg;
    if (!l->held || B.stopping || l->inflight)
        return;
    l->sent_ns = now_ns();
    if (B.holding)
        hist_add(&B.late, l->sent_ns > l->due_ns ? (l->sent_ns - l->due_ns) / 1000u : 0);
    if (redisAsyncCommand(B.ac, renew_reply, l, "EVALSHA %s 1 %s %s %s", B.renew_sha, l->key,
                          B.ttl_str, B.token) != REDIS_OK)
        return;
    l->inflight = 1;
    B.pending++;
}

static void stop_hold(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
    uint64_t t = now_ns();

    B.cpu1 = cpu_s();
    B.hold_t1_ns = t;
    B.rss_end = rss_bytes();
    B.stopping = 1;
    for (unsigned long i = 0; i < B.n; i++) {
        struct lease *l = &B.leases[i];
        evtimer_del(l->timer);
        if (l->held && t > l->valid_until_ns)
            mark_lost(l);
        else if (l->held && !l->inflight)
            release(l);
    }
    maybe_finish();
}

static void start_hold(void)
{
    B.acquire_t1_ns = now_ns();
    B.holding = 1;
    B.hold_t0_ns = B.acquire_t1_ns;
    B.cpu0 = cpu_s();
    struct timeval tv = {.tv_sec = (time_t)B.seconds};
    B.hold_timer = evtimer_new(B.base, stop_hold, NULL);
    evtimer_add(B.hold_timer, &tv);
}

static void send_acquires(void);

static void acquire_reply(redisAsyncContext *ac, void *reply, void *privdata)
{
    (void)ac;
    redisReply *r = reply;
    struct lease *l = privdata;

    B.pending--;
    B.acquires_inflight--;
    B.answered++;
    l->inflight = 0;
    if (r && r->type == REDIS_REPLY_INTEGER) {
        l->held = 1;
        l->valid_until_ns = l->sent_ns + B.ttl_ms * 1000000u;
        B.acquired++;
        arm(l, renew_delay());
    }
    if (B.answered == B.n)
        start_hold();
    else
        send_acquires();
}

static void send_acquires(void)
{
    while (B.next_acquire < B.n && B.acquires_inflight < ACQUIRE_WINDOW) {
        struct lease *l = &B.leases[B.next_acquire++];
        l->sent_ns = now_ns();
        /* ARGV: token, TTL, identity (acquire_lua stores it, as leasering does) */
        if (redisAsyncCommand(B.ac, acquire_reply, l, "EVALSHA %s 2 %s %s:fence %s %s %s",
                              B.acquire_sha, l->key, l->key, B.token, B.ttl_str,
                              "baseline-holder") != REDIS_OK) {
            B.answered++;
            continue;
        }
        l->inflight = 1;
        B.acquires_inflight++;
        B.pending++;
    }
}

static void on_connect(const redisAsyncContext *ac, int status)
{
    (void)ac;
    if (status != REDIS_OK) {
        B.conn_error = 1;
        B.disconnected = 1;
        event_base_loopbreak(B.base);
    }
}

static void on_disconnect(const redisAsyncContext *ac, int status)
{
    (void)ac;
    B.disconnected = 1;
    if (status != REDIS_OK || !B.stopping)
        B.conn_error = 1;
    event_base_loopbreak(B.base);
}

/* SCRIPT LOAD on a blocking connection before the measured part starts. */
static int load_script(redisContext *c, const char *text, char sha[41])
{
    redisReply *r = redisCommand(c, "SCRIPT LOAD %s", text);
    int ok = r && r->type == REDIS_REPLY_STRING && r->len == 40;
    if (ok)
        memcpy(sha, r->str, 41);
    freeReplyObject(r);
    return ok ? 0 : -1;
}

static int parse_ul(const char *s, unsigned long min, unsigned long max, unsigned long *out)
{
    char *end;
    unsigned long v = strtoul(s, &end, 10);
    if (!*s || *end || v < min || v > max)
        return -1;
    *out = v;
    return 0;
}

static void usage(void)
{
    fprintf(stderr, "usage: bench-baseline-holder --port P --leases N --ttl MS --seconds S "
                    "[--prefix P] [--latency-hist FILE]\n");
}

/* @h as "upper_bound_us count" lines, non-empty buckets only. */
static int write_hist(const char *path, const struct hist *h)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return -1;
    for (unsigned i = 0; i < HIST_BUCKETS; i++)
        if (h->count[i])
            fprintf(f, "%" PRIu64 " %" PRIu64 "\n",
                    i + 1 < HIST_BUCKETS ? hist_value(i + 1) - 1 : h->max, h->count[i]);
    return fclose(f);
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"port", required_argument, NULL, 'p'},
        {"leases", required_argument, NULL, 'n'},
        {"ttl", required_argument, NULL, 't'},
        {"seconds", required_argument, NULL, 's'},
        {"prefix", required_argument, NULL, 'x'},
        {"latency-hist", required_argument, NULL, 'l'},
        {NULL, 0, NULL, 0},
    };
    unsigned long port = 0;
    int c;

    B.prefix = "bench:";
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        int bad = 0;
        switch (c) {
        case 'p':
            bad = parse_ul(optarg, 1, 65535, &port);
            break;
        case 'n':
            bad = parse_ul(optarg, 1, 100000000, &B.n);
            break;
        case 't':
            bad = parse_ul(optarg, 3, 86400000, &B.ttl_ms);
            break;
        case 's':
            bad = parse_ul(optarg, 1, 86400, &B.seconds);
            break;
        case 'x':
            B.prefix = optarg;
            break;
        case 'l':
            B.latency_hist = optarg;
            break;
        default:
            bad = 1;
        }
        if (bad) {
            usage();
            return 2;
        }
    }
    if (!port || !B.n || !B.ttl_ms || !B.seconds || optind != argc) {
        usage();
        return 2;
    }
    B.port = (int)port;
    snprintf(B.ttl_str, sizeof(B.ttl_str), "%lu", B.ttl_ms);
    srand48((long)now_ns() ^ (long)getpid());
    for (int i = 0; i < 32; i++)
        B.token[i] = "0123456789abcdef"[lrand48() & 15];

    redisContext *sc = redisConnect("127.0.0.1", B.port);
    if (!sc || sc->err || load_script(sc, acquire_lua, B.acquire_sha) ||
        load_script(sc, renew_lua, B.renew_sha) || load_script(sc, release_lua, B.release_sha)) {
        fprintf(stderr, "baseline: cannot use redis on 127.0.0.1:%d: %s\n", B.port,
                sc ? sc->errstr : "out of memory");
        redisFree(sc);
        return 1;
    }
    redisFree(sc);

    B.base = event_base_new();
    B.ac = redisAsyncConnect("127.0.0.1", B.port);
    if (!B.base || !B.ac || B.ac->err) {
        fprintf(stderr, "baseline: cannot connect: %s\n", B.ac ? B.ac->errstr : "out of memory");
        return 1;
    }
    redisLibeventAttach(B.ac, B.base);
    redisAsyncSetConnectCallback(B.ac, on_connect);
    redisAsyncSetDisconnectCallback(B.ac, on_disconnect);

    /* Everything per lease is made from here on, the way a holder would make
     * it when asked for a lease: the struct, its key string, its timer. */
    B.rss_base = rss_bytes();
    B.leases = calloc(B.n, sizeof(*B.leases));
    if (!B.leases) {
        fprintf(stderr, "baseline: out of memory\n");
        return 1;
    }
    for (unsigned long i = 0; i < B.n; i++) {
        struct lease *l = &B.leases[i];
        if (asprintf(&l->key, "lr:{%s%lu}", B.prefix, i) < 0 ||
            !(l->timer = evtimer_new(B.base, renew_fire, l))) {
            fprintf(stderr, "baseline: out of memory\n");
            return 1;
        }
    }

    B.acquire_t0_ns = now_ns();
    send_acquires();
    event_base_dispatch(B.base);

    if (!B.holding || !B.stopping) {
        fprintf(stderr, "baseline: connection lost before the hold ended\n");
        return 1;
    }
    double hold_s = (double)(B.hold_t1_ns - B.hold_t0_ns) * 1e-9;
    double cpu = B.cpu1 - B.cpu0;
    printf("{\"backend\":\"baseline-hiredis-libevent\",\"leases\":%lu,\"ttl_ms\":%lu,"
           "\"seconds\":%lu,\"acquired\":%lu,\"not_acquired\":%lu,\"acquire_seconds\":%.3f,"
           "\"renewals\":%" PRIu64 ",\"renewals_per_sec\":%.1f,\"renew_failures\":%" PRIu64 ","
           "\"lost\":%lu,\"renew_latency_us\":{\"p50\":%" PRIu64 ",\"p99\":%" PRIu64
           ",\"p999\":%" PRIu64 ",\"max\":%" PRIu64 "},\"timer_lateness_us\":{\"p50\":%" PRIu64
           ",\"p99\":%" PRIu64 ",\"max\":%" PRIu64 "},\"cpu_s\":%.3f,"
           "\"cpu_ns_per_renewal\":%.1f,\"rss_bytes\":%ld,\"rss_bytes_per_lease\":%.1f,"
           "\"renew_requests\":%" PRIu64 ",\"renew_keys_per_request\":1.00}\n",
           B.n, B.ttl_ms, B.seconds, B.acquired, B.n - B.acquired,
           (double)(B.acquire_t1_ns - B.acquire_t0_ns) * 1e-9, B.renewals,
           hold_s > 0 ? (double)B.renewals / hold_s : 0.0, B.renew_failures, B.lost,
           hist_quantile(&B.lat, 0.5), hist_quantile(&B.lat, 0.99), hist_quantile(&B.lat, 0.999),
           B.lat.max, hist_quantile(&B.late, 0.5), hist_quantile(&B.late, 0.99), B.late.max, cpu,
           B.renewals ? cpu * 1e9 / (double)B.renewals : 0.0, B.rss_end,
           (double)(B.rss_end - B.rss_base) / (double)B.n, B.renewals);
    fflush(stdout);
    if (B.latency_hist && write_hist(B.latency_hist, &B.lat) != 0) {
        fprintf(stderr, "baseline: cannot write --latency-hist %s\n", B.latency_hist);
        return 1;
    }

    for (unsigned long i = 0; i < B.n; i++) {
        event_free(B.leases[i].timer);
        free(B.leases[i].key);
    }
    free(B.leases);
    event_free(B.hold_timer);
    event_base_free(B.base);
    if (B.acquired < B.n || B.lost) {
        fprintf(stderr, "baseline: %lu not acquired, %lu lost\n", B.n - B.acquired, B.lost);
        return 3;
    }
    return 0;
}
