/* SPDX-License-Identifier: MIT */
/*
 * fuzz_slotmap.c - libFuzzer target for the Redis Cluster slot map parser
 * (backends/redis_slotmap.c): a CLUSTER SHARDS or CLUSTER SLOTS reply
 * from a server we do not control becomes the table we route by.
 *
 * Input layout: byte 0's low bit picks SHARDS (1) or SLOTS (0); the rest is
 * the reply. It is copied into a heap block of exactly its size (ASan faults
 * any read past it) and parsed. Checked: the result is 0 or one of the
 * documented errors with a reason; on success every slot's owner is a node
 * of the table or "none", the table is within its bound and each node has a
 * NUL-terminated numeric address and a port. Any violation traps.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "redis_cluster.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct lr__slotmap map;
    if (size < 1)
        return 0;
    bool shards = data[0] & 1;
    size_t len = size - 1;
    char *buf = malloc(len ? len : 1);
    ENSURE(buf);
    memcpy(buf, data + 1, len);
    char why[128];
    memset(why, 'x', sizeof(why));
    int rc = lr__slotmap_parse(&map, shards, buf, len, why, sizeof(why));
    free(buf);
    ENSURE(memchr(why, 0, sizeof(why)) != NULL);
    ENSURE(rc == 0 || rc == -ENOTSUP || rc == -EREMOTEIO || rc == -EPROTO || rc == -ENOSPC);
    if (rc < 0) {
        ENSURE(why[0] != 0);
        return 0;
    }
    ENSURE(map.nnodes <= LR__CLUSTER_NODES_MAX);
    for (unsigned i = 0; i < map.nnodes; i++) {
        ENSURE(memchr(map.nodes[i].ip, 0, sizeof(map.nodes[i].ip)) != NULL);
        ENSURE(lr__slotmap_ip(&map.nodes[i], map.nodes[i].ip, strlen(map.nodes[i].ip)));
        ENSURE(map.nodes[i].port != 0);
    }
    for (unsigned s = 0; s < LR__REDIS_SLOTS; s++)
        ENSURE(map.owner[s] == LR__CLUSTER_NO_NODE || map.owner[s] < map.nnodes);
    return 0;
}
