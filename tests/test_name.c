/* SPDX-License-Identifier: MIT */
/*
 * test_name.c - hierarchical lease names (leasering/name.h): known
 * encodings, round trips both ways (fixed cases and 200,000 random ones over
 * an alphabet rich in separators and escapes), and every error of join and
 * split, including the LR_NAME_MAX boundary.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <leasering.h>
#include "harness.h"

static char name[LR_NAME_MAX + 1];
static char buf[LR_NAME_MAX + 1];
static const char *got[LR_NAME_MAX + 1];

/* Join @parts with @sep, check the result is @want, split it back and check
 * the parts come back equal. */
static int round_trip(char sep, const char *const *parts, size_t n, const char *want)
{
    int len = lr_name_join(name, sizeof(name), sep, parts, n);
    if (len < 0 || (size_t)len != strlen(name) || (want && strcmp(name, want))) {
        printf("join -> %d \"%s\", want \"%s\"\n", len, name, want ? want : "?");
        return -1;
    }
    int k = lr_name_split(name, sep, buf, sizeof(buf), got, LR_NAME_MAX + 1);
    if (k != (int)n) {
        printf("split \"%s\" -> %d parts, want %zu\n", name, k, n);
        return -1;
    }
    for (size_t i = 0; i < n; i++)
        if (strcmp(got[i], parts[i])) {
            printf("split \"%s\": part %zu \"%s\", want \"%s\"\n", name, i, got[i], parts[i]);
            return -1;
        }
    return 0;
}

TEST(known_encodings_round_trip)
{
    const char *p1[] = {"jobs", "eu-west", "nightly"};
    CHECK_EQ(round_trip('/', p1, 3, "jobs/eu-west/nightly"), 0);
    const char *p2[] = {"a/b", "c\\d"};
    CHECK_EQ(round_trip('/', p2, 2, "a\\/b/c\\\\d"), 0);
    const char *p3[] = {"a", "", "b"};
    CHECK_EQ(round_trip('/', p3, 3, "a//b"), 0);
    const char *p4[] = {"", ""};
    CHECK_EQ(round_trip(':', p4, 2, ":"), 0);
    const char *p5[] = {"x:y", "/", "\\"};
    CHECK_EQ(round_trip(':', p5, 3, "x\\:y:/:\\\\"), 0);
    const char *p6[] = {"solo"};
    CHECK_EQ(round_trip('.', p6, 1, "solo"), 0);
    const char *p7[] = {"\\\\", "//"};
    CHECK_EQ(round_trip('/', p7, 2, "\\\\\\\\/\\/\\/"), 0);
    /* UTF-8 and high bytes pass through as they are */
    const char *p8[] = {"caf\xc3\xa9", "\xff"};
    CHECK_EQ(round_trip('/', p8, 2, "caf\xc3\xa9/\xff"), 0);
}

TEST(longest_name_and_one_past_it)
{
    char part[LR_NAME_MAX + 2];
    memset(part, 'x', LR_NAME_MAX);
    part[LR_NAME_MAX] = '\0';
    const char *one[] = {part};
    CHECK_EQ(lr_name_join(name, sizeof(name), '/', one, 1), LR_NAME_MAX);
    CHECK_EQ(lr_name_split(name, '/', buf, sizeof(buf), got, 1), 1);
    part[LR_NAME_MAX] = 'x';
    part[LR_NAME_MAX + 1] = '\0';
    CHECK_ERR(lr_name_join(name, sizeof(name), '/', one, 1), -ENAMETOOLONG);
    CHECK_EQ(name[0], '\0');
    CHECK_ERR(lr_name_split(part, '/', buf, sizeof(buf), got, 1), -ENAMETOOLONG);

    /* escapes count: 63 separators escaped are 126 bytes, 64 are 128 */
    memset(part, '/', 63);
    part[63] = '\0';
    CHECK_EQ(lr_name_join(name, sizeof(name), '/', one, 1), 126);
    part[63] = '/';
    part[64] = '\0';
    CHECK_ERR(lr_name_join(name, sizeof(name), '/', one, 1), -ENAMETOOLONG);

    /* separators count: 64 one-byte parts are 127 bytes, 65 are 129 */
    const char *many[65];
    for (int i = 0; i < 65; i++)
        many[i] = "p";
    CHECK_EQ(lr_name_join(name, sizeof(name), '/', many, 64), LR_NAME_MAX);
    CHECK_ERR(lr_name_join(name, sizeof(name), '/', many, 65), -ENAMETOOLONG);
    /* 128 empty parts are 127 separators: the most parts a name can have */
    const char *empties[128];
    for (int i = 0; i < 128; i++)
        empties[i] = "";
    CHECK_EQ(round_trip('/', empties, 128, NULL), 0);
}

TEST(join_errors)
{
    const char *p[] = {"a", "b"};
    const char *hole[] = {"a", NULL};
    const char *empty[] = {""};
    CHECK_ERR(lr_name_join(NULL, 8, '/', p, 2), -EINVAL);
    CHECK_ERR(lr_name_join(name, sizeof(name), '/', NULL, 2), -EINVAL);
    CHECK_ERR(lr_name_join(name, sizeof(name), '/', hole, 2), -EINVAL);
    CHECK_ERR(lr_name_join(name, sizeof(name), '\0', p, 2), -EINVAL);
    CHECK_ERR(lr_name_join(name, sizeof(name), '\\', p, 2), -EINVAL);
    CHECK_ERR(lr_name_join(name, sizeof(name), '/', p, 0), -EINVAL);
    CHECK_ERR(lr_name_join(name, sizeof(name), '/', empty, 1), -EINVAL);
    /* "a/b" needs 4 bytes with its NUL */
    char small[4];
    CHECK_ERR(lr_name_join(small, 3, '/', p, 2), -ENOBUFS);
    CHECK_EQ(small[0], '\0');
    CHECK_ERR(lr_name_join(small, 0, '/', p, 2), -ENOBUFS);
    CHECK_EQ(lr_name_join(small, 4, '/', p, 2), 3);
    CHECK(strcmp(small, "a/b") == 0);
}

TEST(split_errors)
{
    CHECK_ERR(lr_name_split(NULL, '/', buf, sizeof(buf), got, 4), -EINVAL);
    CHECK_ERR(lr_name_split("a", '/', NULL, sizeof(buf), got, 4), -EINVAL);
    CHECK_ERR(lr_name_split("a", '/', buf, sizeof(buf), NULL, 4), -EINVAL);
    CHECK_ERR(lr_name_split("a", '\0', buf, sizeof(buf), got, 4), -EINVAL);
    CHECK_ERR(lr_name_split("a", '\\', buf, sizeof(buf), got, 4), -EINVAL);
    CHECK_ERR(lr_name_split("", '/', buf, sizeof(buf), got, 4), -EINVAL);
    /* escapes join never writes */
    CHECK_ERR(lr_name_split("a\\", '/', buf, sizeof(buf), got, 4), -EINVAL);
    CHECK_ERR(lr_name_split("a\\b", '/', buf, sizeof(buf), got, 4), -EINVAL);
    CHECK_ERR(lr_name_split("a\\:b", '/', buf, sizeof(buf), got, 4), -EINVAL);
    CHECK_ERR(lr_name_split("\\\\\\", '/', buf, sizeof(buf), got, 4), -EINVAL);
    /* too many parts */
    CHECK_ERR(lr_name_split("a/b/c", '/', buf, sizeof(buf), got, 2), -E2BIG);
    CHECK_ERR(lr_name_split("a", '/', buf, sizeof(buf), got, 0), -E2BIG);
    CHECK_EQ(lr_name_split("a/b/c", '/', buf, sizeof(buf), got, 3), 3);
    CHECK_EQ(lr_name_split("a\\/b/c", '/', buf, sizeof(buf), got, 2), 2);
    /* the buffer: "a/bc" unescapes to "a\0bc\0", 5 bytes */
    char small[5];
    CHECK_ERR(lr_name_split("a/bc", '/', small, 4, got, 4), -ENOBUFS);
    CHECK_EQ(lr_name_split("a/bc", '/', small, 5, got, 4), 2);
    CHECK(strcmp(got[0], "a") == 0 && strcmp(got[1], "bc") == 0);
}

/* xorshift: reproducible without libc's rand state */
static uint64_t rng = 0x9e3779b97f4a7c15u;
static unsigned next(unsigned n)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (unsigned)(rng % n);
}

TEST(random_round_trips_both_ways)
{
    static const char alphabet[] = "ab/:\\.x";
    char store[8][40];
    const char *parts[8];
    int joined = 0, split_ok = 0;
    for (int iter = 0; iter < 100000; iter++) {
        char sep = "/:."[next(3)];
        size_t n = 1 + next(8);
        for (size_t i = 0; i < n; i++) {
            size_t len = next(16);
            for (size_t j = 0; j < len; j++)
                store[i][j] = alphabet[next(sizeof(alphabet) - 1)];
            store[i][len] = '\0';
            parts[i] = store[i];
        }
        int len = lr_name_join(name, sizeof(name), sep, parts, n);
        if (len == -ENAMETOOLONG || len == -EINVAL)
            continue; /* too long, or one empty part */
        CHECK(len > 0);
        joined++;
        CHECK_EQ(round_trip(sep, parts, n, NULL), 0);

        /* any string: split, and if it splits, join gives it back */
        char raw[40];
        size_t rl = 1 + next(sizeof(raw) - 1);
        for (size_t j = 0; j < rl; j++)
            raw[j] = alphabet[next(sizeof(alphabet) - 1)];
        raw[rl] = '\0';
        int k = lr_name_split(raw, sep, buf, sizeof(buf), got, LR_NAME_MAX + 1);
        if (k < 0) {
            CHECK_ERR(k, -EINVAL);
            continue;
        }
        split_ok++;
        CHECK_EQ(lr_name_join(name, sizeof(name), sep, got, (size_t)k), (int)rl);
        CHECK(strcmp(name, raw) == 0);
    }
    printf("%d joined and split back, %d random names split and joined back\n", joined, split_ok);
    CHECK(joined > 50000 && split_ok > 10000);
}

TESTS(T(known_encodings_round_trip), T(longest_name_and_one_past_it), T(join_errors),
      T(split_errors), T(random_round_trips_both_ways))
