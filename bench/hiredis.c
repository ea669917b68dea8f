/* SPDX-License-Identifier: MIT */
/*
 * bench/hiredis.c - hiredis async GET throughput and client CPU per command,
 * through leasering's adapter (lr_hiredis_attach on an lr_loop) against
 * hiredis's own libevent adapter (redisLibeventAttach on an event_base), in
 * one process, alternating runs so both see the same machine state.
 *
 *   bench-hiredis --port P [--commands N] [--window W] [--runs R] [--only leasering|libevent]
 *
 * Each run connects a fresh context, sets one key, then keeps W GETs in
 * flight (each reply checked, the next GET sent from its callback) until N
 * replies have arrived, and disconnects. Measured over the GET phase only:
 * wall time and process CPU time (CLOCK_PROCESS_CPUTIME_ID: the redis-server
 * is another process, so this is the client's alone). Prints one JSON object
 * with per-adapter medians and their ratios.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/event.h>
#include <hiredis/adapters/libevent.h>
#include <hiredis/async.h>

#include <leasering.h>
#include <leasering/adapters/hiredis.h>

#include "median.h"

#define VALUE "leasering-bench-value-0123456789"

enum adapter { AD_LR, AD_LIBEVENT };

struct run {
    enum adapter ad;
    redisAsyncContext *ac;
    struct lr_loop *loop;
    struct event_base *base;
    long total;
    long window;
    long sent;
    long replies;
    long bad;
    int set_done;
    int disconnected;
    double t0_wall, t0_cpu, wall, cpu;
};

static double now(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void stop_loop(struct run *r)
{
    if (r->ad == AD_LR)
        lr_loop_stop(r->loop);
    else
        event_base_loopbreak(r->base);
}

static void get_reply(redisAsyncContext *ac, void *reply, void *privdata);

static void send_gets(struct run *r)
{
    while (r->sent < r->total && r->sent - r->replies < r->window) {
        r->sent++;
        if (redisAsyncCommand(r->ac, get_reply, r, "GET bench:k") != REDIS_OK)
            r->bad++;
    }
}

static void get_reply(redisAsyncContext *ac, void *reply, void *privdata)
{
    (void)ac;
    struct run *r = privdata;
    redisReply *rep = reply;
    if (!rep || rep->type != REDIS_REPLY_STRING || rep->len != sizeof(VALUE) - 1 ||
        memcmp(rep->str, VALUE, sizeof(VALUE) - 1))
        r->bad++;
    r->replies++;
    if (r->replies == r->total) {
        r->wall = now(CLOCK_MONOTONIC) - r->t0_wall;
        r->cpu = now(CLOCK_PROCESS_CPUTIME_ID) - r->t0_cpu;
        redisAsyncDisconnect(r->ac);
        return;
    }
    send_gets(r);
}

static void set_reply(redisAsyncContext *ac, void *reply, void *privdata)
{
    (void)ac;
    struct run *r = privdata;
    redisReply *rep = reply;
    if (!rep || rep->type != REDIS_REPLY_STATUS)
        r->bad++;
    r->set_done = 1;
    r->t0_wall = now(CLOCK_MONOTONIC);
    r->t0_cpu = now(CLOCK_PROCESS_CPUTIME_ID);
    send_gets(r);
}

static void on_disconnect(const redisAsyncContext *ac, int status)
{
    struct run *r = ac->data;
    if (status != REDIS_OK)
        r->bad++;
    r->disconnected = 1;
    stop_loop(r);
}

static int one_run(struct run *r, int port)
{
    r->ac = redisAsyncConnect("127.0.0.1", port);
    if (!r->ac || r->ac->err) {
        fprintf(stderr, "bench-hiredis: connect to 127.0.0.1:%d: %s\n", port,
                r->ac ? r->ac->errstr : "out of memory");
        return -1;
    }
    r->ac->data = r;
    int rc = r->ad == AD_LR ? lr_hiredis_attach(r->loop, r->ac)
                            : redisLibeventAttach(r->ac, r->base);
    if (rc != 0) {
        fprintf(stderr, "bench-hiredis: attach failed (%d)\n", rc);
        redisAsyncFree(r->ac);
        return -1;
    }
    redisAsyncSetDisconnectCallback(r->ac, on_disconnect);
    redisAsyncCommand(r->ac, set_reply, r, "SET bench:k %s", VALUE);
    if (r->ad == AD_LR)
        rc = lr_loop_run(r->loop);
    else
        rc = event_base_dispatch(r->base);
    if (rc < 0 || !r->disconnected || r->replies != r->total || r->bad) {
        fprintf(stderr, "bench-hiredis: run failed: %ld/%ld replies, %ld bad\n", r->replies,
                r->total, r->bad);
        return -1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    int port = 0, runs = 5, only = -1;
    long total = 200000, window = 64;
    static const struct option longopts[] = {
        {"port", required_argument, NULL, 'p'},   {"commands", required_argument, NULL, 'n'},
        {"window", required_argument, NULL, 'w'}, {"runs", required_argument, NULL, 'r'},
        {"only", required_argument, NULL, 'o'},   {NULL, 0, NULL, 0}};
    int opt;
    while ((opt = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        if (opt == 'o' && (!strcmp(optarg, "leasering") || !strcmp(optarg, "libevent"))) {
            /* one adapter alone, e.g. under strace -c; the other's figures stay 0 */
            only = !strcmp(optarg, "leasering") ? AD_LR : AD_LIBEVENT;
            continue;
        }
        char *end = NULL;
        long v = optarg ? strtol(optarg, &end, 10) : 0;
        if (!optarg || *end || v <= 0) {
            fprintf(stderr, "usage: %s --port P [--commands N] [--window W] [--runs R] "
                "[--only leasering|libevent]\n", argv[0]);
            return 2;
        }
        if (opt == 'p')
            port = (int)v;
        else if (opt == 'n')
            total = v;
        else if (opt == 'w')
            window = v;
        else
            runs = (int)v;
    }
    if (!port || runs > 99) {
        fprintf(stderr, "usage: %s --port P [--commands N] [--window W] [--runs R<100]\n", argv[0]);
        return 2;
    }
    struct lr_loop *loop;
    int rc = lr_loop_new(&loop, NULL);
    if (rc < 0) {
        fprintf(stderr, "bench-hiredis: lr_loop_new: %s\n", lr_strerror(rc));
        return 1;
    }
    struct event_base *base = event_base_new();
    if (!base) {
        fprintf(stderr, "bench-hiredis: event_base_new failed\n");
        return 1;
    }
    double ops[2][100] = {{0}}, cpu_ns[2][100] = {{0}};
    for (int i = 0; i < runs; i++) {
        for (int k = 0; k < 2; k++) {
            /* Alternate which adapter goes first, so neither always follows the other. */
            enum adapter ad = (enum adapter)((i + k) % 2);
            if (only >= 0 && (int)ad != only)
                continue;
            struct run r = {.ad = ad, .loop = loop, .base = base, .total = total, .window = window};
            if (one_run(&r, port) < 0)
                return 1;
            ops[ad][i] = (double)total / r.wall;
            cpu_ns[ad][i] = r.cpu * 1e9 / (double)total;
        }
    }
    double lr_ops = median(ops[AD_LR], runs), ev_ops = median(ops[AD_LIBEVENT], runs);
    double lr_cpu = median(cpu_ns[AD_LR], runs), ev_cpu = median(cpu_ns[AD_LIBEVENT], runs);
    printf("{\"commands\": %ld, \"window\": %ld, \"runs\": %d,\n"
           " \"leasering\": {\"gets_per_s\": %.0f, \"cpu_ns_per_cmd\": %.0f},\n"
           " \"libevent\": {\"gets_per_s\": %.0f, \"cpu_ns_per_cmd\": %.0f},\n"
           " \"throughput_ratio\": %.3f, \"cpu_ratio\": %.3f}\n",
           total, window, runs, lr_ops, lr_cpu, ev_ops, ev_cpu, lr_ops / ev_ops, lr_cpu / ev_cpu);
    event_base_free(base);
    lr_loop_free(loop);
    return 0;
}
