/* SPDX-License-Identifier: MIT */
/*
 * test_etcd.c - the etcd fixture (tests/etcd.h): a member starts, its v3
 * JSON gateway stores a key and reads it back, and it stops. Keys and
 * values go base64-encoded, as the gateway wants ("leasering" =
 * "bGVhc2VyaW5n", "holder-1" = "aG9sZGVyLTE="). A missing etcd FAILS
 * (etcd_start prints the install hint).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "etcd.h"
#include "harness.h"
#include "proc.h"

#define KEY64 "bGVhc2VyaW5n"
#define VAL64 "aG9sZGVyLTE="

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

TESTS(T(starts_puts_ranges_and_stops))
