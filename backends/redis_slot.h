/* SPDX-License-Identifier: MIT */
/*
 * redis_slot.h - Redis Cluster key slots (internal): which of the 16384
 * slots a key lives in, and, for each slot, a short hash tag that lands in
 * it, so a key can be placed beside another on purpose.
 *
 * The slot rule (Redis Cluster specification): if the key has a '{' and a
 * '}' after it with at least one byte between them, only those bytes (from
 * the first '{' to the first '}' after it) are hashed; otherwise the whole
 * key. The hash is CRC16-CCITT in its XMODEM form (polynomial 0x1021,
 * initial value 0, no reflection), and the slot is its low 14 bits.
 *
 * The Redis backend uses both for standalone servers too: the fence counter
 * of a name is one counter per slot, "<prefix>{<tag of the name's slot>}:fence"
 * (redis.c explains why), and Cluster routing needs the slot of each lease.
 * Layer: pure functions; no I/O, no allocation.
 */
#ifndef LR_REDIS_SLOT_H
#define LR_REDIS_SLOT_H

#include <stddef.h>
#include <stdint.h>

#define LR__REDIS_SLOTS 16384u
/* Longest tag lr__redis_slot_tag hands out (bytes, without a NUL). */
#define LR__REDIS_TAG_MAX 4u

/* lr__redis_crc16 - CRC16-XMODEM of @len bytes at @p. */
uint16_t lr__redis_crc16(const void *p, size_t len);

/* lr__redis_slot - the cluster slot of the key @key (@len bytes, any bytes). */
uint16_t lr__redis_slot(const char *key, size_t len);

/*
 * lr__redis_slot_tag - a hash tag for @slot (< LR__REDIS_SLOTS): a string
 * of 1..LR__REDIS_TAG_MAX bytes from [0-9A-Za-z] such that any key
 * containing "{<tag>}" as its first brace pair lives in @slot. The same
 * tag every time and in every process (the shortest such string, first in
 * the order 0-9, A-Z, a-z). The table is built once per process, on first
 * use (thread-safe), in about a millisecond.
 * @len: receives the tag's length.
 * Returns: the tag (not NUL-terminated; static storage).
 */
const char *lr__redis_slot_tag(uint16_t slot, size_t *len);

/*
 * lr__redis_lease_slot - the slot of the lease key "<prefix>{<name>}" for a
 * @prefix without braces (the Redis backend refuses others), without
 * building the key: the tag is @name up to its first '}', or, when that
 * leaves it empty, the whole key.
 */
uint16_t lr__redis_lease_slot(const char *prefix, size_t plen, const char *name, size_t nlen);

/*
 * lr__redis_fence_key - the fence counter key of lease @name under @prefix:
 * "<prefix>{<tag>}:fence", the tag of the slot of the lease key
 * "<prefix>{<name>}" (the Redis backend's layout: one counter per slot).
 * @out/@cap: receives the key (not NUL-terminated); @cap must hold the lease
 *            key too (@plen + @nlen + 2), which is built there first.
 * Returns: its length, or 0 if @cap is too small.
 */
size_t lr__redis_fence_key(char *out, size_t cap, const char *prefix, size_t plen,
                           const char *name, size_t nlen);

#endif
