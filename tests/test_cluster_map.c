/* SPDX-License-Identifier: MIT */
/*
 * test_cluster_map.c - the Redis Cluster slot map parser (redis_slotmap.c,
 * declared in redis_cluster.h), no server: CLUSTER SHARDS and CLUSTER SLOTS
 * replies captured from a real Redis 7.0.15 cluster (3 masters, 3
 * replicas), fed whole and cut at every byte; shapes a cluster produces
 * in other states (fragmented slots after a reshard, a failed master, a
 * RESP3 map, announced host names); and a case per error, none of which may
 * crash or leave a half-made map behind an "ok". Also the key slot of the
 * keys the Redis backend routes by.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "../backends/redis_cluster.h" /* not the test fixture tests/redis_cluster.h */
#include "harness.h"
#include "resp.h"
#include "uri_int.h"

/* redis-cli: CLUSTER SHARDS on 127.0.0.1:7201 (raw RESP2 bytes) */
static const char real_shards[] =
    "*3\r\n*4\r\n$5\r\nslots\r\n*2\r\n:0\r\n:5460\r\n$5\r\nnodes\r\n*2\r\n*14\r\n"
    "$2\r\nid\r\n$40\r\n788c31959b297273ab8992964ee1af8dc38f8b3d\r\n$4\r\nport\r\n"
    ":7201\r\n$2\r\nip\r\n$9\r\n127.0.0.1\r\n$8\r\nendpoint\r\n$9\r\n127.0.0.1\r\n"
    "$4\r\nrole\r\n$6\r\nmaster\r\n$18\r\nreplication-offset\r\n:84\r\n$6\r\n"
    "health\r\n$6\r\nonline\r\n*14\r\n$2\r\nid\r\n$40\r\n"
    "a52638782fa48d08b28199bad9cf33ee75cb979d\r\n$4\r\nport\r\n:7205\r\n$2\r\nip\r\n"
    "$9\r\n127.0.0.1\r\n$8\r\nendpoint\r\n$9\r\n127.0.0.1\r\n$4\r\nrole\r\n$7\r\n"
    "replica\r\n$18\r\nreplication-offset\r\n:84\r\n$6\r\nhealth\r\n$6\r\nonline\r\n"
    "*4\r\n$5\r\nslots\r\n*2\r\n:10923\r\n:16383\r\n$5\r\nnodes\r\n*2\r\n*14\r\n"
    "$2\r\nid\r\n$40\r\n9b702987396c93e9e2019fbe5314dfc9a76a40bb\r\n$4\r\nport\r\n"
    ":7203\r\n$2\r\nip\r\n$9\r\n127.0.0.1\r\n$8\r\nendpoint\r\n$9\r\n127.0.0.1\r\n"
    "$4\r\nrole\r\n$6\r\nmaster\r\n$18\r\nreplication-offset\r\n:84\r\n$6\r\n"
    "health\r\n$6\r\nonline\r\n*14\r\n$2\r\nid\r\n$40\r\n"
    "6051d4d5bda3b58a3df8c78e5eefa666f798dc63\r\n$4\r\nport\r\n:7204\r\n$2\r\nip\r\n"
    "$9\r\n127.0.0.1\r\n$8\r\nendpoint\r\n$9\r\n127.0.0.1\r\n$4\r\nrole\r\n$7\r\n"
    "replica\r\n$18\r\nreplication-offset\r\n:84\r\n$6\r\nhealth\r\n$6\r\nonline\r\n"
    "*4\r\n$5\r\nslots\r\n*2\r\n:5461\r\n:10922\r\n$5\r\nnodes\r\n*2\r\n*14\r\n$2\r\n"
    "id\r\n$40\r\n000d3a1f1798ed030a05a0deeca9670290c1009b\r\n$4\r\nport\r\n:7202\r\n"
    "$2\r\nip\r\n$9\r\n127.0.0.1\r\n$8\r\nendpoint\r\n$9\r\n127.0.0.1\r\n$4\r\n"
    "role\r\n$6\r\nmaster\r\n$18\r\nreplication-offset\r\n:84\r\n$6\r\nhealth\r\n"
    "$6\r\nonline\r\n*14\r\n$2\r\nid\r\n$40\r\n"
    "d00c781622d7ab0991597a52411ba2c9cc93f7d3\r\n$4\r\nport\r\n:7206\r\n$2\r\nip\r\n"
    "$9\r\n127.0.0.1\r\n$8\r\nendpoint\r\n$9\r\n127.0.0.1\r\n$4\r\nrole\r\n$7\r\n"
    "replica\r\n$18\r\nreplication-offset\r\n:84\r\n$6\r\nhealth\r\n$6\r\nonline\r\n";

/* the same cluster: CLUSTER SLOTS */
static const char real_slots[] =
    "*3\r\n*4\r\n:0\r\n:5460\r\n*4\r\n$9\r\n127.0.0.1\r\n:7201\r\n$40\r\n"
    "788c31959b297273ab8992964ee1af8dc38f8b3d\r\n*0\r\n*4\r\n$9\r\n127.0.0.1\r\n"
    ":7205\r\n$40\r\na52638782fa48d08b28199bad9cf33ee75cb979d\r\n*0\r\n*4\r\n"
    ":5461\r\n:10922\r\n*4\r\n$9\r\n127.0.0.1\r\n:7202\r\n$40\r\n"
    "000d3a1f1798ed030a05a0deeca9670290c1009b\r\n*0\r\n*4\r\n$9\r\n127.0.0.1\r\n"
    ":7206\r\n$40\r\nd00c781622d7ab0991597a52411ba2c9cc93f7d3\r\n*0\r\n*4\r\n"
    ":10923\r\n:16383\r\n*4\r\n$9\r\n127.0.0.1\r\n:7203\r\n$40\r\n"
    "9b702987396c93e9e2019fbe5314dfc9a76a40bb\r\n*0\r\n*4\r\n$9\r\n127.0.0.1\r\n"
    ":7204\r\n$40\r\n6051d4d5bda3b58a3df8c78e5eefa666f798dc63\r\n*0\r\n";

static struct lr__slotmap map;

static int parse(bool shards, const char *reply, char *why, size_t cap)
{
    return lr__slotmap_parse(&map, shards, reply, strlen(reply), why, cap);
}

/* owner of @slot as "ip:port", or "-" */
static const char *owner(unsigned slot)
{
    static char buf[64];
    uint8_t o = map.owner[slot];
    if (o == LR__CLUSTER_NO_NODE)
        return "-";
    if (o >= map.nnodes)
        return "BAD INDEX";
    snprintf(buf, sizeof(buf), "%s:%u", map.nodes[o].ip, map.nodes[o].port);
    return buf;
}

#define CHECK_OWNER(slot, want) CHECK(!strcmp(owner(slot), want))

/* The three-master layout of the captured replies. */
static void check_real(void)
{
    CHECK_EQ(map.nnodes, 3);
    CHECK_OWNER(0, "127.0.0.1:7201");
    CHECK_OWNER(5460, "127.0.0.1:7201");
    CHECK_OWNER(5461, "127.0.0.1:7202");
    CHECK_OWNER(10922, "127.0.0.1:7202");
    CHECK_OWNER(10923, "127.0.0.1:7203");
    CHECK_OWNER(16383, "127.0.0.1:7203");
    for (unsigned s = 0; s < LR__REDIS_SLOTS; s++)
        CHECK(map.owner[s] < 3); /* every slot served, by a master */
}

TEST(shards_real_cluster)
{
    CHECK_OK(parse(true, real_shards, NULL, 0));
    check_real();
}

TEST(slots_real_cluster)
{
    CHECK_OK(parse(false, real_slots, NULL, 0));
    check_real();
}

/* Token by token, the reply cut in two at every byte: the same map. */
static int parse_cut(bool shards, const char *reply, size_t cut)
{
    static struct lr__slotmap_parser p;
    static struct lr_resp_parser rp;
    lr__slotmap_parse_init(&p, &map, shards);
    lr_resp_parser_init(&rp);
    size_t len = strlen(reply);
    const char *parts[2] = {reply, reply + cut};
    size_t lens[2] = {cut, len - cut};
    int rc = 0;
    for (int i = 0; i < 2 && rc == 0; i++) {
        size_t off = 0;
        while (rc == 0) {
            struct lr_resp_token t;
            int n = lr_resp_parse(&rp, parts[i] + off, lens[i] - off, &t);
            if (n == -EAGAIN)
                break;
            if (n < 0)
                return n;
            off += (size_t)n;
            rc = lr__slotmap_parse_token(&p, &t);
        }
    }
    return rc;
}

TEST(every_cut_gives_the_same_map)
{
    for (int k = 0; k < 2; k++) {
        const char *reply = k ? real_slots : real_shards;
        for (size_t cut = 0; cut <= strlen(reply); cut++) {
            memset(&map, 0xaa, sizeof(map));
            CHECK_EQ(parse_cut(!k, reply, cut), 1);
            check_real();
        }
    }
}

/* A shard after a reshard: several ranges, the master listed after a
 * replica, and a failed old master (health "failed") that must not serve. */
TEST(shards_fragmented_and_failed_master)
{
    const char *r = "*2\r\n"
                    /* shard 1: slots 0-99, 200-299; replica, failed master, online master */
                    "*4\r\n$5\r\nslots\r\n*4\r\n:0\r\n:99\r\n:200\r\n:299\r\n$5\r\nnodes\r\n*3\r\n"
                    "*6\r\n$4\r\nport\r\n:7301\r\n$2\r\nip\r\n$8\r\n10.0.0.1\r\n"
                    "$4\r\nrole\r\n$7\r\nreplica\r\n"
                    "*8\r\n$4\r\nport\r\n:7302\r\n$2\r\nip\r\n$8\r\n10.0.0.2\r\n"
                    "$4\r\nrole\r\n$6\r\nmaster\r\n$6\r\nhealth\r\n$6\r\nfailed\r\n"
                    "*8\r\n$4\r\nrole\r\n$6\r\nmaster\r\n$6\r\nhealth\r\n$6\r\nonline\r\n"
                    "$2\r\nip\r\n$3\r\n::1\r\n$4\r\nport\r\n:7303\r\n"
                    /* shard 2: its only master failed: slots 100-199 unserved */
                    "*4\r\n$5\r\nslots\r\n*2\r\n:100\r\n:199\r\n$5\r\nnodes\r\n*1\r\n"
                    "*8\r\n$4\r\nport\r\n:7304\r\n$2\r\nip\r\n$8\r\n10.0.0.4\r\n"
                    "$4\r\nrole\r\n$6\r\nmaster\r\n$6\r\nhealth\r\n$6\r\nfailed\r\n";
    CHECK_OK(parse(true, r, NULL, 0));
    CHECK_EQ(map.nnodes, 1);
    CHECK_OWNER(0, "::1:7303");
    CHECK_OWNER(99, "::1:7303");
    CHECK_OWNER(100, "-");
    CHECK_OWNER(199, "-");
    CHECK_OWNER(200, "::1:7303");
    CHECK_OWNER(299, "::1:7303");
    CHECK_OWNER(300, "-");
    CHECK_OWNER(16383, "-");
}

/* RESP3 (HELLO 3): shards and nodes are maps; the endpoint stands in for an
 * empty ip; fields we do not know (with nested values) are skipped. */
TEST(shards_resp3_maps)
{
    const char *r = "*1\r\n%3\r\n$5\r\nextra\r\n*1\r\n*1\r\n:1\r\n"
                    "$5\r\nnodes\r\n*1\r\n%4\r\n$2\r\nip\r\n$0\r\n\r\n$8\r\nendpoint\r\n"
                    "$9\r\n127.0.0.9\r\n$4\r\nport\r\n:6379\r\n$4\r\nrole\r\n$6\r\nmaster\r\n"
                    "$5\r\nslots\r\n*2\r\n:5\r\n:5\r\n";
    CHECK_OK(parse(true, r, NULL, 0));
    CHECK_EQ(map.nnodes, 1);
    CHECK_OWNER(5, "127.0.0.9:6379");
    CHECK_OWNER(4, "-");
    CHECK_OWNER(6, "-");
}

TEST(empty_cluster)
{
    CHECK_OK(parse(true, "*0\r\n", NULL, 0));
    CHECK_EQ(map.nnodes, 0);
    CHECK_OK(parse(false, "*0\r\n", NULL, 0));
    CHECK_OWNER(0, "-");
}

/* Each error: its code, a reason, and no crash. */
static void expect_error(bool shards, const char *reply, int err, const char *in_why)
{
    char why[160] = "";
    int rc = parse(shards, reply, why, sizeof(why));
    if (rc != err || !strstr(why, in_why))
        fprintf(stderr, "reply %.60s...: %d (%s) \"%s\"; wanted %d \"%s\"\n", reply, rc,
                lr_err_name(rc), why, err, in_why);
    lrt_failed_checks += rc != err || !strstr(why, in_why);
}

TEST(errors)
{
    int before = lrt_failed_checks;
    /* Redis 6 has no SHARDS: the caller asks CLUSTER SLOTS */
    expect_error(true,
                 "-ERR Unknown subcommand or wrong number of arguments for 'SHARDS'. Try CLUSTER "
                 "HELP.\r\n",
                 -ENOTSUP, "Unknown subcommand");
    expect_error(true, "-ERR unknown subcommand 'SHARDS'. Try CLUSTER HELP.\r\n", -ENOTSUP,
                 "unknown");
    expect_error(false, "-ERR This instance has cluster support disabled\r\n", -EREMOTEIO,
                 "cluster support disabled");
    expect_error(true, "+OK\r\n", -EPROTO, "not a list");
    expect_error(true, "*-1\r\n", -EPROTO, "not a list");
    expect_error(true, "*1\r\n:1\r\n", -EPROTO, "entry is not a list");
    expect_error(false, "*1\r\n*3\r\n:0\r\n:10\r\n:1\r\n", -EPROTO, "master is not a list");
    expect_error(false, "*1\r\n*2\r\n:0\r\n:10\r\n", -EPROTO, "not [start, end");
    expect_error(false, "*1\r\n*3\r\n$1\r\n0\r\n:10\r\n*2\r\n$3\r\n::1\r\n:1\r\n", -EPROTO,
                 "not an integer");
    expect_error(false, "*1\r\n*3\r\n:0\r\n:16384\r\n*2\r\n$3\r\n::1\r\n:1\r\n", -EPROTO,
                 "out of bounds");
    expect_error(false, "*1\r\n*3\r\n:9\r\n:8\r\n*2\r\n$3\r\n::1\r\n:1\r\n", -EPROTO,
                 "out of bounds");
    expect_error(false, "*1\r\n*3\r\n:0\r\n:1\r\n*2\r\n$3\r\n::1\r\n:0\r\n", -EPROTO, "port");
    expect_error(false, "*1\r\n*3\r\n:0\r\n:1\r\n*2\r\n$3\r\n::1\r\n:65536\r\n", -EPROTO, "port");
    expect_error(false, "*1\r\n*3\r\n:0\r\n:1\r\n*2\r\n$13\r\nredis-1.local\r\n:1\r\n", -EPROTO,
                 "host names");
    expect_error(false, "*1\r\n*3\r\n:0\r\n:1\r\n*2\r\n$0\r\n\r\n:1\r\n", -EPROTO, "numeric");
    expect_error(false,
                 "*2\r\n*3\r\n:0\r\n:10\r\n*2\r\n$3\r\n::1\r\n:1\r\n"
                 "*3\r\n:10\r\n:20\r\n*2\r\n$3\r\n::1\r\n:2\r\n",
                 -EPROTO, "slot 10 is served twice");
    expect_error(true, "*1\r\n*2\r\n$5\r\nslots\r\n:1\r\n", -EPROTO, "slots are not a list");
    expect_error(true, "*1\r\n*2\r\n$5\r\nnodes\r\n$1\r\nx\r\n", -EPROTO, "nodes are not");
    expect_error(true, "*1\r\n*2\r\n:5\r\n:1\r\n", -EPROTO, "field name");
    expect_error(true, "*1\r\n*2\r\n$5\r\nnodes\r\n*1\r\n:1\r\n", -EPROTO, "node is not");
    expect_error(true, "*1\r\n*2\r\n$5\r\nslots\r\n*1\r\n$1\r\n1\r\n", -EPROTO, "not an integer");
    expect_error(true,
                 "*1\r\n*4\r\n$5\r\nslots\r\n*2\r\n:0\r\n:1\r\n$5\r\nnodes\r\n*1\r\n"
                 "*4\r\n$4\r\nrole\r\n$6\r\nmaster\r\n$8\r\nendpoint\r\n$4\r\nhost\r\n",
                 -EPROTO, "host names");
    expect_error(true,
                 "*1\r\n*4\r\n$5\r\nslots\r\n*2\r\n:0\r\n:1\r\n$5\r\nnodes\r\n*1\r\n"
                 "*4\r\n$4\r\nrole\r\n$6\r\nmaster\r\n$2\r\nip\r\n$3\r\n::1\r\n",
                 -EPROTO, "no port");
    expect_error(true, "*1\r\n*4\r\n$5\r\nslots\r\n*2\r\n:0\r\n", -EPROTO, "stops short");
    expect_error(true, "*0\r\n*0\r\n", -EPROTO, "after the reply");
    expect_error(true, "*1\r\n\x01\r\n", -EPROTO, "not RESP");
    CHECK_EQ(lrt_failed_checks, before);
}

/* More masters than the table holds: -ENOSPC, said so. */
TEST(too_many_masters)
{
    static char r[LR__CLUSTER_NODES_MAX * 80 + 64];
    size_t n = (size_t)sprintf(r, "*%u\r\n", LR__CLUSTER_NODES_MAX + 1);
    for (unsigned i = 0; i <= LR__CLUSTER_NODES_MAX; i++)
        n += (size_t)sprintf(r + n, "*3\r\n:%u\r\n:%u\r\n*2\r\n$9\r\n127.0.0.1\r\n:%u\r\n", i, i,
                             7000 + i);
    char why[160];
    CHECK_ERR(parse(false, r, why, sizeof(why)), -ENOSPC);
    CHECK(strstr(why, "more than 64 masters") != NULL);
    /* exactly the limit is fine */
    n = (size_t)sprintf(r, "*%u\r\n", LR__CLUSTER_NODES_MAX);
    for (unsigned i = 0; i < LR__CLUSTER_NODES_MAX; i++)
        n += (size_t)sprintf(r + n, "*3\r\n:%u\r\n:%u\r\n*2\r\n$9\r\n127.0.0.1\r\n:%u\r\n", i, i,
                             7000 + i);
    CHECK_OK(parse(false, r, NULL, 0));
    CHECK_EQ(map.nnodes, LR__CLUSTER_NODES_MAX);
    CHECK_OWNER(63, "127.0.0.1:7063");
}

/* The backend routes by the slot of the whole key "<prefix>{<name>}": the
 * name's slot, whatever the prefix (the hash tag wins), so a lease and its
 * fence counter, tagged alike, share a node. */
TEST(lease_keys_route_by_name)
{
    CHECK_EQ(lr__redis_slot("lr:{job1}", 9), lr__redis_slot("job1", 4));
    CHECK_EQ(lr__redis_slot("other:prefix:{job1}", 19), lr__redis_slot("job1", 4));
    CHECK_EQ(lr__redis_slot("lr:{somekey}", 12), 11058); /* CLUSTER KEYSLOT somekey */
    CHECK_EQ(lr__redis_slot("lr:{job1}", 9), lr__redis_slot("lr:{job1}:fence", 15));
}

/* Seed lists (lr__uri_hosts, shared with redis+sentinel): entries, default
 * port, IPv6 in brackets, and each malformed form refused. */
static int hosts(const char *uri, const char *dflt_host, struct lr__uri_host *out)
{
    struct lr__uri u;
    int rc = lr__uri_parse(&u, uri);
    return rc < 0 ? rc : lr__uri_hosts(&u, dflt_host, 6379, out, 3);
}

TEST(seed_lists)
{
    struct lr__uri_host h[3];
    CHECK_EQ(hosts("redis+cluster://a:7000,[::1]:7001,b", NULL, h), 3);
    CHECK(!strcmp(h[0].host, "a") && h[0].port == 7000);
    CHECK(!strcmp(h[1].host, "::1") && h[1].port == 7001);
    CHECK(!strcmp(h[2].host, "b") && h[2].port == 6379);
    CHECK_EQ(hosts("redis+cluster://[::1]:7002", NULL, h), 1);
    CHECK(!strcmp(h[0].host, "::1") && h[0].port == 7002);
    CHECK_EQ(hosts("redis+cluster://[::1]", NULL, h), 1);
    CHECK(!strcmp(h[0].host, "::1") && h[0].port == 6379);
    CHECK_EQ(hosts("redis+sentinel:///m", "127.0.0.1", h), 1); /* the default host */
    CHECK(!strcmp(h[0].host, "127.0.0.1"));
    CHECK_ERR(hosts("redis+cluster://", NULL, h), -EINVAL);
    CHECK_ERR(hosts("redis+cluster://:7000", NULL, h), -EINVAL);
    CHECK_ERR(hosts("redis+cluster://a:1,", NULL, h), -EINVAL);
    CHECK_ERR(hosts("redis+cluster://a:1,,b:2", NULL, h), -EINVAL);
    CHECK_ERR(hosts("redis+cluster://a:1,b:0", NULL, h), -EINVAL);
    CHECK_ERR(hosts("redis+cluster://a:1,b:65536", NULL, h), -EINVAL);
    CHECK_ERR(hosts("redis+cluster://a:1,b:7x", NULL, h), -EINVAL);
    CHECK_ERR(hosts("redis+cluster://a:1,[::1:2", NULL, h), -EINVAL);
    CHECK_ERR(hosts("redis+cluster://a,b,c,d", NULL, h), -EINVAL); /* more than 3 */
}

TESTS(T(seed_lists), T(shards_real_cluster), T(slots_real_cluster), T(every_cut_gives_the_same_map),
      T(shards_fragmented_and_failed_master), T(shards_resp3_maps), T(empty_cluster), T(errors),
      T(too_many_masters), T(lease_keys_route_by_name))
