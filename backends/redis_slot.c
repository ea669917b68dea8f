/* SPDX-License-Identifier: MIT */
/*
 * redis_slot.c - Redis Cluster key slots and per-slot hash tags; see
 * redis_slot.h.
 */
#include <pthread.h>
#include <string.h>

#include "redis_slot.h"

static uint16_t crc_table[256];
static char tags[LR__REDIS_SLOTS][LR__REDIS_TAG_MAX];
static uint8_t tag_len[LR__REDIS_SLOTS];
static pthread_once_t crc_once = PTHREAD_ONCE_INIT;
static pthread_once_t tags_once = PTHREAD_ONCE_INIT;

static const char alphabet[] = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
#define ALPHA (sizeof(alphabet) - 1)

static void crc_init(void)
{
    for (unsigned i = 0; i < 256; i++) {
        uint16_t c = (uint16_t)(i << 8);
        for (int bit = 0; bit < 8; bit++)
            c = (uint16_t)((c & 0x8000) ? (c << 1) ^ 0x1021 : c << 1);
        crc_table[i] = c;
    }
}

static uint16_t crc_update(uint16_t crc, const void *p, size_t len)
{
    pthread_once(&crc_once, crc_init);
    const uint8_t *b = p;
    for (size_t i = 0; i < len; i++)
        crc = (uint16_t)((crc << 8) ^ crc_table[((crc >> 8) ^ b[i]) & 0xff]);
    return crc;
}

uint16_t lr__redis_crc16(const void *p, size_t len)
{
    return crc_update(0, p, len);
}

uint16_t lr__redis_slot(const char *key, size_t len)
{
    const char *open = memchr(key, '{', len);
    if (open) {
        size_t start = (size_t)(open - key) + 1;
        const char *close = memchr(key + start, '}', len - start);
        if (close && close > key + start)
            return lr__redis_crc16(key + start, (size_t)(close - key) - start) &
                   (LR__REDIS_SLOTS - 1);
    }
    return lr__redis_crc16(key, len) & (LR__REDIS_SLOTS - 1);
}

/* Every string of 1, 2, 3, then 4 letters of the alphabet, in order, until
 * each slot has one: 62^3 = 238,328 strings of up to 3 letters leave a slot
 * without a tag with probability (1 - 1/16384)^238328 ~ 5e-7 each, so
 * length 4 is a safety net that is practically never walked far. */
static void tags_init(void)
{
    unsigned left = LR__REDIS_SLOTS;
    char s[LR__REDIS_TAG_MAX];
    for (unsigned len = 1; len <= LR__REDIS_TAG_MAX && left; len++) {
        unsigned long total = 1;
        for (unsigned i = 0; i < len; i++)
            total *= ALPHA;
        for (unsigned long n = 0; n < total && left; n++) {
            unsigned long v = n;
            for (unsigned i = len; i-- > 0;) {
                s[i] = alphabet[v % ALPHA];
                v /= ALPHA;
            }
            uint16_t slot = lr__redis_crc16(s, len) & (LR__REDIS_SLOTS - 1);
            if (tag_len[slot])
                continue;
            memcpy(tags[slot], s, len);
            tag_len[slot] = (uint8_t)len;
            left--;
        }
    }
}

const char *lr__redis_slot_tag(uint16_t slot, size_t *len)
{
    pthread_once(&tags_once, tags_init);
    slot &= LR__REDIS_SLOTS - 1;
    *len = tag_len[slot];
    return tags[slot];
}

uint16_t lr__redis_lease_slot(const char *prefix, size_t plen, const char *name, size_t nlen)
{
    const char *close = memchr(name, '}', nlen);
    size_t tag = close ? (size_t)(close - name) : nlen;
    if (tag)
        return lr__redis_crc16(name, tag) & (LR__REDIS_SLOTS - 1);
    /* "<prefix>{}...": an empty tag, so the whole key is hashed */
    uint16_t crc = crc_update(0, prefix, plen);
    crc = crc_update(crc, "{", 1);
    crc = crc_update(crc, name, nlen);
    return crc_update(crc, "}", 1) & (LR__REDIS_SLOTS - 1);
}

size_t lr__redis_fence_key(char *out, size_t cap, const char *prefix, size_t plen,
                           const char *name, size_t nlen)
{
    if (cap < plen + nlen + 2 || cap < plen + 2 + LR__REDIS_TAG_MAX + 6)
        return 0;
    memcpy(out, prefix, plen);
    out[plen] = '{';
    memcpy(out + plen + 1, name, nlen);
    out[plen + 1 + nlen] = '}';
    size_t tlen;
    const char *tag = lr__redis_slot_tag(lr__redis_slot(out, plen + nlen + 2), &tlen);
    memcpy(out + plen + 1, tag, tlen);
    memcpy(out + plen + 1 + tlen, "}:fence", 7);
    return plen + 1 + tlen + 7;
}
