/* SPDX-License-Identifier: MIT */
/*
 * test_redis_slot.c - Redis Cluster key slots and per-slot hash tags
 * (backends/redis_slot.h). Known answers from the Redis Cluster
 * specification and the CLUSTER KEYSLOT documentation, one measured on a
 * real cluster (BACKENDS.md), the hash-tag rules of the specification, and
 * every one of the 16384 tags checked against the slot function.
 */
#include <string.h>

#include "harness.h"
#include "redis_slot.h"

static uint16_t slot_of(const char *key)
{
    return lr__redis_slot(key, strlen(key));
}

TEST(crc16_known_answers)
{
    /* the specification's check value for CRC16-XMODEM */
    CHECK_EQ(lr__redis_crc16("123456789", 9), 0x31C3);
    CHECK_EQ(lr__redis_crc16("", 0), 0);
}

TEST(slots_known_answers)
{
    CHECK_EQ(slot_of("somekey"), 11058);       /* CLUSTER KEYSLOT documentation */
    CHECK_EQ(slot_of("foo{hash_tag}"), 2515);  /* same page */
    CHECK_EQ(slot_of("lease:job1"), 11848);    /* measured, BACKENDS.md section 4 */
    CHECK_EQ(slot_of("123456789"), 0x31C3 & 16383);
}

TEST(hash_tag_rules)
{
    /* only the tag is hashed */
    CHECK_EQ(slot_of("{user1000}.following"), slot_of("user1000"));
    CHECK_EQ(slot_of("{user1000}.followers"), slot_of("{user1000}.following"));
    /* the first '{' and the first '}' after it */
    CHECK_EQ(slot_of("foo{{bar}}zap"), slot_of("{bar"));
    CHECK_EQ(slot_of("foo{bar}{zap}"), slot_of("bar"));
    /* an empty tag, or no '}' after the '{': the whole key */
    CHECK_EQ(slot_of("foo{}{bar}"), lr__redis_crc16("foo{}{bar}", 10) & 16383);
    CHECK_EQ(slot_of("foo{bar"), lr__redis_crc16("foo{bar", 7) & 16383);
    CHECK_EQ(slot_of("foo}bar{"), lr__redis_crc16("foo}bar{", 8) & 16383);
    /* binary bytes are hashed as they are, NUL included */
    CHECK_EQ(lr__redis_slot("a\0{b}", 5), slot_of("b"));
}

TEST(every_slot_has_a_short_tag_that_lands_in_it)
{
    size_t longest = 0;
    for (unsigned s = 0; s < LR__REDIS_SLOTS; s++) {
        size_t len = 0;
        const char *tag = lr__redis_slot_tag((uint16_t)s, &len);
        CHECK(len >= 1 && len <= LR__REDIS_TAG_MAX);
        for (size_t i = 0; i < len; i++)
            CHECK(strchr("{}", tag[i]) == NULL && tag[i] > ' ');
        char key[32] = "lr:{";
        memcpy(key + 4, tag, len);
        memcpy(key + 4 + len, "}:fence", 8);
        CHECK_EQ(slot_of(key), s);
        if (len > longest)
            longest = len;
    }
    CHECK(longest <= 3); /* see tags_init: length 4 is a net, not expected */
    /* the same answer every time */
    size_t a, b;
    const char *t1 = lr__redis_slot_tag(11848, &a);
    const char *t2 = lr__redis_slot_tag(11848, &b);
    CHECK(t1 == t2 && a == b);
}

/* The fence counter of a name lives in the slot of the name's lease key,
 * so a Lua script may touch both, in Cluster too. */
TEST(fence_key_shares_the_lease_slot)
{
    char lease[128], fence[128], name[64];
    for (int i = 0; i < 100000; i++) {
        size_t nlen = (size_t)snprintf(name, sizeof(name), i % 3 ? "job-%d" : "x}%d{y", i);
        size_t llen = (size_t)snprintf(lease, sizeof(lease), "lr:{%s}", name);
        size_t flen = lr__redis_fence_key(fence, sizeof(fence), "lr:", 3, name, nlen);
        CHECK(flen > 0 && flen <= 3 + 2 + LR__REDIS_TAG_MAX + 6);
        CHECK(!memcmp(fence, "lr:{", 4) && !memcmp(fence + flen - 7, "}:fence", 7));
        CHECK_EQ(lr__redis_slot(fence, flen), lr__redis_slot(lease, llen));
    }
    /* too small a buffer: 0, nothing written past it */
    CHECK_EQ(lr__redis_fence_key(fence, 8, "lr:", 3, "job-1", 5), 0);
}

/* The backend's shortcut for a lease key's slot agrees with the slot of
 * the whole key, braces in the name included. */
TEST(lease_slot_shortcut_agrees_with_the_key)
{
    static const char *const names[] = {"job-1", "}x", "x}y", "{a}", "a{b}c", "}", "}}", "{}",
                                        "x{", "lease:job1", "\xff\x00z"};
    char key[64];
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        size_t nlen = strlen(names[i]);
        size_t klen = (size_t)snprintf(key, sizeof(key), "lr:{%s}", names[i]);
        CHECK_EQ(lr__redis_lease_slot("lr:", 3, names[i], nlen), lr__redis_slot(key, klen));
    }
    for (int i = 0; i < 100000; i++) {
        char name[32];
        size_t nlen = (size_t)snprintf(name, sizeof(name), i % 5 ? "n%d" : "}%d}", i);
        size_t klen = (size_t)snprintf(key, sizeof(key), "pre:{%s}", name);
        CHECK_EQ(lr__redis_lease_slot("pre:", 4, name, nlen), lr__redis_slot(key, klen));
    }
}

TESTS(T(fence_key_shares_the_lease_slot), T(lease_slot_shortcut_agrees_with_the_key), T(crc16_known_answers), T(slots_known_answers), T(hash_tag_rules),
      T(every_slot_has_a_short_tag_that_lands_in_it))
