/* SPDX-License-Identifier: MIT */
/*
 * fuzz_json.c - libFuzzer target for the JSON pull scanner (src/json.c).
 *
 * The input is one document, in a heap copy of exactly its size (ASan
 * faults a read past it). Pass 1 scans it token by token with lr_json_next:
 * every slice lies inside the input, every string unescapes (the scanner
 * validated it) to at most its raw length, every integer parses exactly the
 * way strtoull does, and an error is one of the documented codes with an
 * offset inside the input. Pass 2 walks the same bytes with the helpers
 * (lr_json_item, descending into every other container and leaving the rest
 * for item to skip): it must end with the same result, the same error at
 * the same offset. Any violation traps.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "json.h"

#define MAX_TOKENS 4096

static const char *base;
static size_t size_in;

static void check_slice(const char *s, size_t n)
{
    ENSURE(s >= base && n <= size_in && (size_t)(s - base) <= size_in - n);
}

static void check_token(const struct lr_json_tok *t, char *out)
{
    ENSURE(t->depth <= LR_JSON_MAX_DEPTH);
    if (t->key) {
        check_slice(t->key, t->keylen);
        int n = lr_json_unescape(t->key, t->keylen, out, size_in + 1);
        ENSURE(n >= 0 && (size_t)n <= t->keylen);
        ENSURE(t->key_escaped || ((size_t)n == t->keylen && !memcmp(out, t->key, t->keylen)));
    }
    if (t->type == LR_JSON_STRING) {
        check_slice(t->s, t->n);
        int n = lr_json_unescape(t->s, t->n, out, size_in + 1);
        ENSURE(n >= 0 && (size_t)n <= t->n);
        int64_t v;
        int rc = lr_json_i64_str(t, &v);
        ENSURE(rc == 0 || rc == -EINVAL || rc == -ERANGE);
    } else if (t->type == LR_JSON_NUMBER) {
        check_slice(t->s, t->n);
        uint64_t u;
        int64_t v;
        int ru = lr_json_u64(t, &u);
        int ri = lr_json_i64(t, &v);
        ENSURE(ru == 0 || ru == -EINVAL || ru == -ERANGE);
        ENSURE(ri == 0 || ri == -EINVAL || ri == -ERANGE);
        ENSURE((ru == -EINVAL) == (ri == -EINVAL));
        if (ru == 0 && ri == 0)
            ENSURE(u == (uint64_t)v);
        if (ru != -EINVAL && t->s[0] != '-') {
            char text[32];
            if (t->n < sizeof(text)) {
                memcpy(text, t->s, t->n);
                text[t->n] = '\0';
                errno = 0;
                unsigned long long want = strtoull(text, NULL, 10);
                ENSURE((ru == -ERANGE) == (errno == ERANGE));
                if (ru == 0)
                    ENSURE(u == want);
            } else
                ENSURE(ru == -ERANGE);
        }
    } else
        ENSURE(!t->s);
}

static int walk(struct lr_json *j, const struct lr_json_tok *parent)
{
    struct lr_json_tok t;
    int rc;
    while ((rc = lr_json_item(j, parent, &t)) == 1)
        if ((t.type == LR_JSON_OBJECT || t.type == LR_JSON_ARRAY) && t.id % 2 == 0)
            if ((rc = walk(j, &t)) < 0)
                return rc;
    return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *buf = malloc(size ? size : 1);
    char *out = malloc(size + 1);
    if (!buf || !out) {
        free(buf);
        free(out);
        return 0;
    }
    memcpy(buf, data, size);
    base = buf;
    size_in = size;

    struct lr_json j1;
    struct lr_json j2;
    struct lr_json_tok t;
    int rc1;
    uint32_t depth = 0;
    lr_json_init(&j1, buf, size, MAX_TOKENS);
    while ((rc1 = lr_json_next(&j1, &t)) == 1) {
        check_token(&t, out);
        if (t.type == LR_JSON_OBJECT || t.type == LR_JSON_ARRAY)
            ENSURE(t.depth == depth++);
        else if (t.type == LR_JSON_OBJECT_END || t.type == LR_JSON_ARRAY_END)
            ENSURE(t.depth == --depth);
        else
            ENSURE(t.depth == depth);
    }
    if (rc1 < 0) {
        ENSURE(rc1 == -EPROTO || rc1 == -EMSGSIZE);
        ENSURE(j1.why != LR_JSON_OK && j1.err_off <= size);
        ENSURE(strcmp(lr_json_why_text(j1.why), "unknown") != 0);
    } else
        ENSURE(depth == 0 && j1.ntok >= 1);

    lr_json_init(&j2, buf, size, MAX_TOKENS);
    int rc2 = lr_json_next(&j2, &t);
    if (rc2 == 1 && (t.type == LR_JSON_OBJECT || t.type == LR_JSON_ARRAY))
        rc2 = walk(&j2, &t);
    if (rc2 >= 0)
        rc2 = lr_json_next(&j2, &t);
    ENSURE(rc2 == rc1);
    if (rc1 < 0)
        ENSURE(j2.why == j1.why && j2.err_off == j1.err_off);
    free(buf);
    free(out);
    return 0;
}
