/* SPDX-License-Identifier: MIT */
/*
 * test_etcd_failover.c - the etcd backend's endpoint list on a real
 * three-member cluster (tests/etcd.h): a manager given etcd://m0,m1,m2
 * (each member behind a fault/proxy.h proxy, whose byte count tells which
 * member the manager talks to) holds 20 leases; the member it uses is
 * SIGKILLed; the manager must go on through another member before any
 * lease's validity ends: no lease lost, every one renewed after the kill,
 * the trouble told in the log (a line naming that endpoint). Then the
 * killed member is restarted (a quorum again) and the member the manager
 * moved to is killed: the same again. In session mode (the default) and,
 * in the gcc build only (CI time), lease mode; ~10 s each. A missing etcd
 * FAILS.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "etcd.h"
#include "fault/proxy.h"
#include "harness.h"
#include "proc.h"
#include "recorder.h"
#include <leasering.h>

#define TTL_MS 2000u
#define LEASES 20
#define LINES_MAX 256

static char lines[LINES_MAX][LR_LOG_LINE_MAX];
static int nlines;

static void keep_line(void *arg, int level, const char *msg)
{
    (void)arg;
    (void)level;
    if (nlines < LINES_MAX)
        snprintf(lines[nlines], sizeof(lines[0]), "%s", msg);
    nlines++;
}

/* Log lines since line @from that contain @needle. */
static int lines_with(int from, const char *needle)
{
    int n = 0;
    for (int i = from; i < nlines && i < LINES_MAX; i++)
        n += strstr(lines[i], needle) != NULL;
    return n;
}

static void print_lines(int from)
{
    for (int i = from; i < nlines && i < LINES_MAX; i++)
        printf("     log: %s\n", lines[i]);
}

/* Leases of @ls renewed by a request sent after @t_ms: a renewal sent
 * before it gives validity until at most t_ms + TTL (validity counts from
 * the send, minus drift and margin). Session mode has no renewed callback
 * per lease, so this reads the validity itself. */
static int renewed_after(struct lr_lease *ls, uint64_t t_ms)
{
    int n = 0;
    for (int i = 0; i < LEASES; i++)
        n += lr_lease_valid_until(&ls[i]) > t_ms + TTL_MS;
    return n;
}

static struct fproxy *proxy[3];

/* The member the manager talks to: the one whose proxy carries the most
 * bytes while the loop runs 2/3 TTL (a round of renewals); -1 if none. */
static int member_in_use(void)
{
    unsigned long before[3];
    for (int m = 0; m < 3; m++)
        before[m] = fproxy_bytes(proxy[m]);
    run_until(0, 2 * TTL_MS / 3);
    int best = -1;
    unsigned long most = 0;
    for (int m = 0; m < 3; m++)
        if (fproxy_bytes(proxy[m]) - before[m] > most) {
            most = fproxy_bytes(proxy[m]) - before[m];
            best = m;
        }
    return best;
}

/* Kill member @victim while the manager @m holds @ls through it; 1.5 TTL
 * later nothing may be lost and every lease must have been renewed. */
static bool survives_kill(struct etcd_cluster *c, int victim, struct lr_manager *m,
                          struct lr_lease *ls)
{
    char port[24];
    snprintf(port, sizeof(port), "127.0.0.1:%d", fproxy_port(proxy[victim]));
    int from = nlines;
    const struct lr_manager_stats *st = lr_manager_stats(m);
    uint64_t reconnects = st->reconnects, lost = st->lost;
    uint64_t t = mono_ns() / 1000000u;
    if (etcd_cluster_kill(c, victim) < 0)
        return false;
    run_until(0, 3 * TTL_MS / 2);
    int renewed = renewed_after(ls, t);
    printf("     m%d killed: %d of %d leases renewed after, %" PRIu64 " lost, %" PRIu64
           " reconnects, %d log lines naming it\n",
           victim, renewed, LEASES, st->lost - lost, st->reconnects - reconnects,
           lines_with(from, port));
    print_lines(from);
    return st->lost == lost && renewed == LEASES && st->held == LEASES &&
           lines_with(from, port) > 0;
}

static void failover(const char *mode)
{
    rec_setup();
    struct etcd_cluster c;
    CHECK_OK(etcd_cluster_start(&c, 3));
    char uri[256];
    for (int i = 0; i < 3; i++)
        CHECK_OK(fproxy_start(&proxy[i], c.m[i].client_port));
    snprintf(uri, sizeof(uri), "etcd://127.0.0.1:%d,127.0.0.1:%d,127.0.0.1:%d?prefix=failover/&mode=%s",
             fproxy_port(proxy[0]), fproxy_port(proxy[1]), fproxy_port(proxy[2]), mode);
    nlines = 0;
    lr_set_log_level(LR_LOG_INFO);
    lr_set_log(keep_line, NULL);
    struct lr_manager_opts o = {.ttl_ms = TTL_MS, .cbs = &rec_cbs,
                                .store_error = rec_store_error};
    struct lr_manager *m = NULL;
    CHECK_OK(lr_manager_new(&m, loop, uri, &o));
    static struct lr_lease ls[LEASES];
    for (int i = 0; i < LEASES; i++) {
        char name[16];
        snprintf(name, sizeof(name), "fo%d", i);
        CHECK_OK(lr_lease_init(m, &ls[i], name, NULL));
        CHECK_OK(lr_lease_acquire(&ls[i], 5000));
    }
    run_until(0, TTL_MS / 2);
    CHECK_EQ(lr_manager_stats(m)->held, LEASES);
    int first = member_in_use();
    CHECK(first >= 0);
    CHECK(survives_kill(&c, first, m, ls));
    CHECK_EQ(rec_count(EV_LOST, NULL), 0);
    CHECK_OK(etcd_cluster_restart(&c, first));
    int second = member_in_use();
    CHECK(second >= 0 && second != first);
    CHECK(survives_kill(&c, second, m, ls));
    CHECK_EQ(rec_count(EV_LOST, NULL), 0);
    CHECK_EQ(lr_manager_release_all(m), LEASES);
    run_until(0, 1000);
    CHECK_EQ(rec_count(EV_REL, NULL), LEASES);
    for (int i = 0; i < LEASES; i++)
        lr_lease_deinit(&ls[i]);
    close_mgr(m);
    lr_set_log(NULL, NULL);
    for (int i = 0; i < 3; i++)
        fproxy_free(proxy[i]);
    etcd_cluster_destroy(&c);
}

TEST(failover_keeps_leases_session_mode)
{
    failover("session");
}

TEST(failover_keeps_leases_lease_mode)
{
    if (SANITIZED) {
        printf("     failover_keeps_leases_lease_mode: left to the gcc build (CI time)\n");
        return;
    }
    failover("lease");
}

TESTS(T(failover_keeps_leases_session_mode), T(failover_keeps_leases_lease_mode))
