/* SPDX-License-Identifier: MIT */
/*
 * fuzz_resp.c - libFuzzer target for the RESP parser (src/resp.c).
 *
 * Input layout: byte 0 picks how the rest is cut into chunks (whole, or
 * random chunk sizes up to 2, 8, 64, 512 or 5000 bytes), byte 1 seeds the
 * generator that draws the sizes; the remaining bytes are the RESP stream.
 * Each chunk is copied into a heap block of exactly its size, so ASan faults
 * any read past it. The stream is parsed twice: once one byte at a time (the
 * reference) and once in the chosen chunks; the token streams, and the error
 * that ends them, must be identical. Every token is also checked against the
 * contract (bounds, pointer provenance, limits) and against a small
 * independent model of depth and of the last flag. Any violation traps.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "resp.h"

struct rec {
    uint8_t type;
    uint8_t depth;
    bool nil;
    bool last;
    bool has_str;
    int64_t integer;
    size_t off; /* of the string bytes in the arena */
    size_t len;
};

/* The reference run, and the model that checks depth and last. */
struct run {
    struct lr_resp_parser p;
    struct rec *recs;
    size_t nrec;
    char *arena;
    size_t arena_len;
    size_t cap; /* of recs and arena: the body size bounds both */
    int end;    /* 0: ended on a token boundary; -EAGAIN: pending; else the error */
    /* model */
    unsigned sp;
    int64_t remaining[LR_RESP_MAX_DEPTH];
    bool is_attr[LR_RESP_MAX_DEPTH];
};

static bool is_aggregate(uint8_t t)
{
    return t == '*' || t == '%' || t == '~' || t == '>' || t == '|';
}

static bool is_string(uint8_t t)
{
    return t == '+' || t == '-' || t == '$' || t == ',' || t == '(' || t == '!' || t == '=';
}

/* Contract checks on one token just returned for chunk[0..n) with result rc. */
static void check_token(struct run *r, const char *chunk, size_t n, int rc,
                        const struct lr_resp_token *t)
{
    ENSURE(rc > 0 && (size_t)rc <= n);
    ENSURE(t->depth <= LR_RESP_MAX_DEPTH);
    ENSURE(t->len <= LR_RESP_MAX_STR);
    ENSURE((t->str != NULL) == (is_string(t->type) && !t->nil));
    if (t->str) {
        bool in_chunk = t->str >= chunk && t->str + t->len <= chunk + rc;
        bool in_scratch =
            t->str >= r->p.scratch && t->str + t->len <= r->p.scratch + sizeof(r->p.scratch);
        ENSURE(in_chunk || in_scratch);
    } else {
        ENSURE(t->len == 0);
    }
    ENSURE(t->type != '#' || t->integer == 0 || t->integer == 1);

    /* Model: depth is the number of open aggregates; last marks the end of a
     * top-level element that is not an attribute. */
    ENSURE(t->depth == r->sp);
    bool opens = is_aggregate(t->type) && !t->nil && t->integer > 0;
    if (opens) {
        ENSURE(t->integer <= LR_RESP_MAX_ELEMS);
        ENSURE(r->sp < LR_RESP_MAX_DEPTH);
        r->remaining[r->sp] = (t->type == '%' || t->type == '|') ? 2 * t->integer : t->integer;
        r->is_attr[r->sp] = t->type == '|';
        r->sp++;
        ENSURE(!t->last);
        return;
    }
    if (t->type == '|') {
        ENSURE(!t->last);
        return;
    }
    bool last = true;
    while (r->sp > 0) {
        unsigned d = r->sp - 1;
        if (--r->remaining[d] > 0) {
            last = false;
            break;
        }
        r->sp = d;
        if (r->is_attr[d]) {
            last = false;
            break;
        }
    }
    ENSURE(t->last == last);
}

static void record(struct run *r, const struct lr_resp_token *t)
{
    ENSURE(r->nrec < r->cap && r->arena_len + t->len <= r->cap);
    struct rec *c = &r->recs[r->nrec++];
    c->type = t->type;
    c->depth = t->depth;
    c->nil = t->nil;
    c->last = t->last;
    c->integer = t->integer;
    c->has_str = t->str != NULL;
    c->off = r->arena_len;
    c->len = t->len;
    if (t->len > 0)
        memcpy(r->arena + r->arena_len, t->str, t->len);
    r->arena_len += t->len;
}

static void compare(const struct run *ref, size_t k, const struct lr_resp_token *t)
{
    ENSURE(k < ref->nrec);
    const struct rec *c = &ref->recs[k];
    ENSURE(c->type == t->type && c->depth == t->depth && c->nil == t->nil && c->last == t->last &&
           c->integer == t->integer && c->has_str == (t->str != NULL) && c->len == t->len);
    ENSURE(t->len == 0 || !memcmp(ref->arena + c->off, t->str, t->len));
}

static uint32_t rng;

static uint32_t next_rand(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 17;
    rng ^= rng << 5;
    return rng;
}

/*
 * Feed body[0..size) in chunks. chunk_max 0 means one chunk. With @ref NULL,
 * the tokens are recorded into @r; otherwise each is compared with @ref's.
 */
static void parse_stream(struct run *r, const struct run *ref, const uint8_t *body, size_t size,
                         size_t chunk_max)
{
    size_t pos = 0;
    int rc = 0;

    lr_resp_parser_init(&r->p);
    r->sp = 0;
    r->nrec = 0;
    while (pos < size) {
        size_t n = size - pos;
        if (chunk_max > 0) {
            size_t want = 1 + next_rand() % chunk_max;
            if (want < n)
                n = want;
        }
        char *chunk = malloc(n);
        ENSURE(chunk != NULL);
        memcpy(chunk, body + pos, n);
        size_t off = 0;
        while (off < n) {
            struct lr_resp_token t;
            rc = lr_resp_parse(&r->p, chunk + off, n - off, &t);
            if (rc < 0)
                break;
            check_token(r, chunk + off, n - off, rc, &t);
            if (ref)
                compare(ref, r->nrec++, &t);
            else
                record(r, &t);
            off += (size_t)rc;
        }
        free(chunk);
        if (rc < 0 && rc != -EAGAIN) {
            ENSURE(rc == -EPROTO || rc == -EMSGSIZE);
            /* Sticky, for real bytes and for an empty call alike. */
            struct lr_resp_token t;
            static const char ok[] = "+OK\r\n";
            ENSURE(lr_resp_parse(&r->p, ok, 5, &t) == rc);
            ENSURE(lr_resp_parse(&r->p, NULL, 0, &t) == rc);
            break;
        }
        pos += n;
    }
    r->end = rc > 0 ? 0 : rc;
    if (ref) {
        ENSURE(r->nrec == ref->nrec);
        ENSURE(r->end == ref->end);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const size_t chunk_max[] = {0, 2, 8, 64, 512, 5000, 3, 1};
    static struct run ref;
    static struct run cut;

    if (size < 2)
        return 0;
    const uint8_t *body = data + 2;
    size_t body_len = size - 2;
    size_t cap = body_len + 1;

    ref.recs = malloc(cap * sizeof(*ref.recs));
    ref.arena = malloc(cap);
    ENSURE(ref.recs && ref.arena);
    ref.cap = cap;
    ref.arena_len = 0;

    parse_stream(&ref, NULL, body, body_len, 1);
    rng = 0x9e3779b9u ^ ((uint32_t)data[1] << 8) ^ data[0];
    cut.cap = cap;
    parse_stream(&cut, &ref, body, body_len, chunk_max[data[0] % 8]);

    free(ref.recs);
    free(ref.arena);
    return 0;
}
