/* SPDX-License-Identifier: MIT */
/*
 * test_etcd.c - the etcd fixture (tests/etcd.h): a member starts, its v3
 * JSON gateway stores a key and reads it back, and it stops. Keys and
 * values go base64-encoded, as the gateway wants ("leasering" =
 * "bGVhc2VyaW5n", "holder-1" = "aG9sZGVyLTE=", "holder-2" = "aG9sZGVyLTI=",
 * "holder-3" = "aG9sZGVyLTM="). A missing etcd FAILS (etcd_start prints
 * the install hint).
 *
 * The three-member cluster (etcd_cluster_*): a put on one member is read on
 * another; the leader SIGKILLed, the others elect a new one and take writes,
 * the dead one restarts from its data dir and reads what it missed; the
 * leader frozen (SIGSTOP, a partition as its peers see it), the same.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "etcd.h"
#include "harness.h"
#include "proc.h"

#define KEY64 "bGVhc2VyaW5n"
#define VAL64 "aG9sZGVyLTE="
#define VAL2 "aG9sZGVyLTI="
#define VAL3 "aG9sZGVyLTM="
#define ELECTION_MS 5000 /* generous: a loaded 2-core machine */

/* A request to member @e, asked again for up to 2 s while it answers 503:
 * right after an election a member may say "leader changed" or have no
 * leader yet for a moment. (A put twice of one value is harmless.) */
static int post(const struct etcd *e, const char *path, const char *body, char *resp, size_t cap)
{
    uint64_t until = proc_now_ms() + 2000;
    int rc;
    while ((rc = etcd_post(e, path, body, resp, cap)) == 503 && proc_now_ms() < until)
        proc_sleep_ms(50);
    return rc;
}

/* Put KEY64=@val64 through member @e; 200 or what etcd_post said. */
static int put(const struct etcd *e, const char *val64)
{
    char body[128], resp[2048];
    snprintf(body, sizeof(body), "{\"key\":\"" KEY64 "\",\"value\":\"%s\"}", val64);
    int rc = post(e, "/v3/kv/put", body, resp, sizeof(resp));
    if (rc != 200)
        fprintf(stderr, "put on %s: %d %s\n", e->name, rc, resp);
    return rc;
}

/* 1 if a range of KEY64 on member @e answers the value @val64. */
static int sees(const struct etcd *e, const char *val64)
{
    char resp[2048], want[64];
    int rc = post(e, "/v3/kv/range", "{\"key\":\"" KEY64 "\"}", resp, sizeof(resp));
    snprintf(want, sizeof(want), "\"value\":\"%s\"", val64);
    if (rc == 200 && strstr(resp, want))
        return 1;
    fprintf(stderr, "range on %s (want %s): %d %s\n", e->name, val64, rc, resp);
    return 0;
}

TEST(starts_puts_ranges_and_stops)
{
    struct etcd e;
    char resp[4096];
    CHECK_OK(etcd_start(&e));
    CHECK(e.client_port != e.peer_port);
    /* Nothing there yet: the range answers without "kvs". */
    CHECK_EQ(etcd_post(&e, "/v3/kv/range", "{\"key\":\"" KEY64 "\"}", resp, sizeof(resp)), 200);
    CHECK(strstr(resp, "\"kvs\"") == NULL);
    CHECK_EQ(etcd_post(&e, "/v3/kv/put", "{\"key\":\"" KEY64 "\",\"value\":\"" VAL64 "\"}", resp,
                       sizeof(resp)),
             200);
    CHECK_EQ(etcd_post(&e, "/v3/kv/range", "{\"key\":\"" KEY64 "\"}", resp, sizeof(resp)), 200);
    if (!strstr(resp, "\"key\":\"" KEY64 "\"") || !strstr(resp, "\"value\":\"" VAL64 "\""))
        fprintf(stderr, "range answered: %s\n", resp);
    CHECK(strstr(resp, "\"key\":\"" KEY64 "\"") != NULL);
    CHECK(strstr(resp, "\"value\":\"" VAL64 "\"") != NULL);
    CHECK_OK(etcd_stop(&e));
    CHECK(proc_connect(e.client_port, 500) < 0);
    CHECK_ERR(etcd_post(&e, "/v3/kv/range", "{}", resp, sizeof(resp)), -ECONNREFUSED);
    etcd_destroy(&e);
    etcd_destroy(&e); /* safe twice */
}

TEST(cluster_elects_after_kill_and_freeze)
{
    struct etcd_cluster c;
    CHECK_OK(etcd_cluster_start(&c, 3));
    char want[32];
    snprintf(want, sizeof(want), "127.0.0.1:%d,", c.m[0].client_port);
    CHECK(strncmp(c.endpoints, want, strlen(want)) == 0);
    for (int i = 0; i < 3; i++)
        CHECK(c.m[i].member_id[0] != '\0');
    CHECK(strcmp(c.m[0].member_id, c.m[1].member_id) != 0);
    int l = etcd_cluster_leader(&c);
    CHECK(l >= 0 && l < 3);
    CHECK_EQ(put(&c.m[0], VAL64), 200);
    CHECK(sees(&c.m[2], VAL64));

    /* The leader dies: the two others elect one of them and take writes. */
    uint64_t t = proc_now_ms();
    CHECK_OK(etcd_cluster_kill(&c, l));
    int l2 = etcd_cluster_wait_leader(&c, l, ELECTION_MS);
    CHECK(l2 >= 0 && l2 != l);
    printf("leader m%d killed: m%d leads after %" PRIu64 " ms\n", l, l2, proc_now_ms() - t);
    int a = (l + 1) % 3, b = (l + 2) % 3;
    CHECK_EQ(put(&c.m[a], VAL2), 200);
    CHECK(sees(&c.m[b], VAL2));
    char resp[256];
    CHECK_ERR(etcd_post(&c.m[l], "/v3/kv/range", "{}", resp, sizeof(resp)), -ECONNREFUSED);
    CHECK_ERR(etcd_cluster_kill(&c, l), -ESRCH);
    /* It comes back from its data dir and catches up. */
    CHECK_OK(etcd_cluster_restart(&c, l));
    CHECK_ERR(etcd_cluster_restart(&c, l), -EBUSY);
    CHECK(sees(&c.m[l], VAL2));
    CHECK(etcd_cluster_wait_leader(&c, -1, ELECTION_MS) >= 0);

    /* The leader frozen: the others cannot tell it from a partition. */
    l = etcd_cluster_leader(&c);
    CHECK(l >= 0);
    t = proc_now_ms();
    CHECK_OK(etcd_cluster_freeze(&c, l, 1));
    l2 = etcd_cluster_wait_leader(&c, l, ELECTION_MS);
    CHECK(l2 >= 0 && l2 != l);
    printf("leader m%d frozen: m%d leads after %" PRIu64 " ms\n", l, l2, proc_now_ms() - t);
    a = (l + 1) % 3;
    b = (l + 2) % 3;
    CHECK_EQ(put(&c.m[a], VAL3), 200);
    CHECK(sees(&c.m[b], VAL3));
    CHECK_OK(etcd_cluster_freeze(&c, l, 0));
    /* Thawed, it learns the new term and follows. */
    CHECK(etcd_cluster_wait_leader(&c, -1, ELECTION_MS) >= 0);
    CHECK(sees(&c.m[l], VAL3));
    etcd_cluster_destroy(&c);
    etcd_cluster_destroy(&c); /* safe twice */
    CHECK(proc_connect(c.m[0].client_port, 500) < 0);
}

TESTS(T(starts_puts_ranges_and_stops), T(cluster_elects_after_kill_and_freeze))
