/* SPDX-License-Identifier: MIT */
/*
 * fuzz_name.c - libFuzzer target for hierarchical lease names
 * (src/name.c, leasering/name.h).
 *
 * Input layout: byte 0 picks the separator (its value, or '/' when it is
 * NUL or '\'); the rest is used twice. As a name (up to its first NUL): it
 * is split; the result is a part count or a documented error, and a name
 * that splits joins back to itself byte for byte. As parts (NUL-separated,
 * at most 64): they are joined; the result is a length or a documented
 * error, and a joined name splits back into the same parts. Any violation
 * traps.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <leasering/name.h>

#include "fuzz.h"

#define MAX_PARTS 64

static void name_splits_and_joins_back(const char *name, char sep)
{
    char buf[LR_NAME_MAX + 1], again[LR_NAME_MAX + 1];
    const char *parts[LR_NAME_MAX + 1];
    int k = lr_name_split(name, sep, buf, sizeof(buf), parts, LR_NAME_MAX + 1);
    if (k < 0) {
        ENSURE(k == -EINVAL || k == -ENAMETOOLONG);
        return;
    }
    ENSURE(k >= 1);
    int len = lr_name_join(again, sizeof(again), sep, parts, (size_t)k);
    ENSURE(len >= 1 && (size_t)len == strlen(name));
    ENSURE(strcmp(again, name) == 0);
}

static void parts_join_and_split_back(const char *const *parts, size_t n, char sep)
{
    char name[LR_NAME_MAX + 1], buf[LR_NAME_MAX + 1];
    const char *got[MAX_PARTS];
    int len = lr_name_join(name, sizeof(name), sep, parts, n);
    if (len < 0) {
        ENSURE(len == -EINVAL || len == -ENAMETOOLONG);
        ENSURE(name[0] == '\0');
        return;
    }
    ENSURE(len >= 1 && len <= LR_NAME_MAX && (size_t)len == strlen(name));
    int k = lr_name_split(name, sep, buf, sizeof(buf), got, MAX_PARTS);
    ENSURE(k == (int)n);
    for (size_t i = 0; i < n; i++)
        ENSURE(strcmp(got[i], parts[i]) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    char sep = (char)data[0];
    if (sep == '\0' || sep == LR_NAME_ESCAPE)
        sep = '/';
    /* a heap copy of exactly the rest plus a NUL: ASan faults a read past it */
    size_t n = size - 1;
    char *text = malloc(n + 1);
    if (!text)
        return 0;
    memcpy(text, data + 1, n);
    text[n] = '\0';

    name_splits_and_joins_back(text, sep);

    const char *parts[MAX_PARTS];
    size_t np = 0;
    for (size_t at = 0; at <= n && np < MAX_PARTS; at += strlen(text + at) + 1)
        parts[np++] = text + at;
    parts_join_and_split_back(parts, np, sep);
    free(text);
    return 0;
}
