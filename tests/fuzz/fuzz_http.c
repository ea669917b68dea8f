/* SPDX-License-Identifier: MIT */
/*
 * fuzz_http.c - libFuzzer target for the HTTP response parser (src/http.c).
 *
 * Input layout: byte 0 picks how the rest is cut into chunks (low 3 bits:
 * whole, or random chunk sizes up to 2, 8, 64, 512 or 5000 bytes, 3, or 1)
 * and, in bit 3, whether the parser is told the request was HEAD; byte 1
 * seeds the generator that draws the sizes; the remaining bytes are the
 * response stream. Each chunk is copied into a heap block of exactly its size,
 * so ASan faults any read past it. The stream is parsed twice: once one byte
 * at a time (the reference) and once in the chosen chunks, each time calling
 * the parser until -EAGAIN and then lr_http_parse_eof(). The token streams
 * (with consecutive BODY pieces joined, since pieces may be cut anywhere), the
 * error that ends them and the EOF answer must be identical. Every token is
 * also checked against the contract (bounds, pointer provenance, limits, the
 * byte classes of names and values) and against a small independent model of
 * the response grammar and of what EOF must answer. Any violation traps.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "http.h"

/* One token in canonical form; a run of BODY tokens is one record. */
struct rec {
    uint8_t type;
    int status;
    int minor_version;
    bool keep_alive;
    bool chunked;
    int64_t content_length;
    size_t off; /* of str's bytes in the arena, then value's */
    size_t len;
    size_t value_len;
};

struct run {
    struct lr_http_parser p;
    struct rec *recs;
    size_t nrec;
    char *arena;
    size_t arena_len;
    size_t cap; /* of recs and of arena: bounded by the body size */
    int end;    /* 0 or the error that ended the parse */
    bool pending;
    int eof; /* lr_http_parse_eof() after the last byte */
    /* model */
    bool head;
    int phase; /* 0: between responses, 1: in the head, 2: in the body */
    int status;
    int minor;
    bool ka;
    bool chunked;
    bool body_eof;
    int64_t cl;
    int64_t body;
    int last_status;
    /* framing, from the HEADER tokens alone */
    bool close_opt;
    bool ka_opt;
    bool te;
    int64_t cl_hdr;
};

static bool is_tchar(unsigned char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c != 0 && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

static bool is_field(unsigned char c)
{
    return c == '\t' || (c >= 0x20 && c != 0x7f);
}

static bool is_ows(char c)
{
    return c == ' ' || c == '\t';
}

/* s[0..n) equals the lowercase literal @lit, ignoring ASCII case. */
static bool eq_nocase(const char *s, size_t n, const char *lit)
{
    size_t ln = strlen(lit);
    if (n != ln)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c >= 'A' && c <= 'Z')
            c = (char)(c - 'A' + 'a');
        if (c != lit[i])
            return false;
    }
    return true;
}

/* The model's reading of an accepted framing header. */
static void model_header(struct run *r, const struct lr_http_token *t)
{
    const char *v = t->value;
    size_t n = t->value_len;

    if (eq_nocase(t->str, t->len, "content-length")) {
        int64_t cl = 0;
        for (size_t i = 0; i < n; i++) {
            ENSURE(v[i] >= '0' && v[i] <= '9');
            cl = cl * 10 + (v[i] - '0');
            ENSURE(cl <= LR_HTTP_MAX_BODY);
        }
        ENSURE(n > 0 && (r->cl_hdr < 0 || r->cl_hdr == cl) && !r->te);
        r->cl_hdr = cl;
    } else if (eq_nocase(t->str, t->len, "transfer-encoding")) {
        ENSURE(eq_nocase(v, n, "chunked") && !r->te && r->cl_hdr < 0 && r->minor == 1);
        r->te = true;
    } else if (eq_nocase(t->str, t->len, "connection")) {
        size_t i = 0;
        while (i <= n) {
            size_t j = i;
            while (j < n && v[j] != ',')
                j++;
            size_t a = i;
            size_t b = j;
            while (a < b && is_ows(v[a]))
                a++;
            while (b > a && is_ows(v[b - 1]))
                b--;
            if (eq_nocase(v + a, b - a, "close"))
                r->close_opt = true;
            if (eq_nocase(v + a, b - a, "keep-alive"))
                r->ka_opt = true;
            i = j + 1;
        }
    }
}

static bool within(const char *s, size_t n, const char *lo, size_t span)
{
    return s >= lo && s + n <= lo + span;
}

static bool head_string(const struct run *r, const char *s, size_t n, const char *chunk, int rc)
{
    return s != NULL && n <= LR_HTTP_MAX_LINE &&
           (within(s, n, chunk, (size_t)rc) || within(s, n, r->p.scratch, sizeof(r->p.scratch)));
}

/* Contract and model checks on one token just returned for chunk[0..avail). */
static void check_token(struct run *r, const char *chunk, size_t avail, int rc,
                        const struct lr_http_token *t)
{
    ENSURE(rc >= 0 && (size_t)rc <= avail);
    ENSURE(rc > 0 || t->type == LR_HTTP_END);
    if (t->type != LR_HTTP_STATUS)
        ENSURE(t->status == r->status && t->minor_version == r->minor);
    if (t->type != LR_HTTP_HEADER)
        ENSURE(t->value == NULL && t->value_len == 0);
    if (t->type != LR_HTTP_HEADERS_END && t->type != LR_HTTP_END)
        ENSURE(!t->keep_alive && !t->chunked && t->content_length == -1);

    switch (t->type) {
    case LR_HTTP_STATUS:
        ENSURE(r->phase == 0);
        ENSURE(t->status >= 100 && t->status <= 999);
        ENSURE(t->minor_version == 0 || t->minor_version == 1);
        ENSURE(head_string(r, t->str, t->len, chunk, rc));
        for (size_t i = 0; i < t->len; i++)
            ENSURE(is_field((unsigned char)t->str[i]));
        r->phase = 1;
        r->status = t->status;
        r->minor = t->minor_version;
        r->close_opt = false;
        r->ka_opt = false;
        r->te = false;
        r->cl_hdr = -1;
        break;
    case LR_HTTP_HEADER:
        ENSURE(r->phase == 1);
        ENSURE(t->len >= 1 && head_string(r, t->str, t->len, chunk, rc));
        ENSURE(head_string(r, t->value, t->value_len, chunk, rc));
        for (size_t i = 0; i < t->len; i++)
            ENSURE(is_tchar((unsigned char)t->str[i]));
        for (size_t i = 0; i < t->value_len; i++)
            ENSURE(is_field((unsigned char)t->value[i]));
        ENSURE(t->value_len == 0 || (!is_ows(t->value[0]) && !is_ows(t->value[t->value_len - 1])));
        model_header(r, t);
        break;
    case LR_HTTP_HEADERS_END: {
        ENSURE(r->phase == 1);
        ENSURE(t->str == NULL && t->len == 0);
        bool no_body = r->head || r->status < 200 || r->status == 204 || r->status == 304;
        ENSURE(t->chunked == (!no_body && r->te));
        ENSURE(t->content_length == (no_body || r->te ? -1 : r->cl_hdr));
        r->body_eof = !no_body && !r->te && r->cl_hdr < 0;
        bool ka = r->minor == 1 ? !r->close_opt : r->ka_opt && !r->close_opt;
        ENSURE(t->keep_alive == (ka && !r->body_eof));
        r->ka = t->keep_alive;
        r->chunked = t->chunked;
        r->cl = t->content_length;
        r->body = 0;
        r->phase = 2;
        break;
    }
    case LR_HTTP_BODY:
        ENSURE(r->phase == 2);
        ENSURE(t->str != NULL && t->len >= 1);
        ENSURE(within(t->str, t->len, chunk, (size_t)rc)); /* zero copy, never scratch */
        r->body += (int64_t)t->len;
        ENSURE(r->cl < 0 || r->body <= r->cl);
        break;
    case LR_HTTP_END:
        ENSURE(r->phase == 2 && !r->body_eof);
        ENSURE(t->str == NULL && t->len == 0);
        ENSURE(t->keep_alive == r->ka && t->chunked == r->chunked && t->content_length == r->cl);
        ENSURE(r->cl < 0 || r->body == r->cl);
        r->phase = 0;
        r->last_status = r->status;
        break;
    default:
        ENSURE(0);
    }
}

static void record(struct run *r, const struct lr_http_token *t)
{
    size_t need = t->len + t->value_len;
    ENSURE(r->arena_len + need <= r->cap);
    if (t->type == LR_HTTP_BODY && r->nrec > 0 && r->recs[r->nrec - 1].type == LR_HTTP_BODY) {
        memcpy(r->arena + r->arena_len, t->str, t->len);
        r->arena_len += t->len;
        r->recs[r->nrec - 1].len += t->len;
        return;
    }
    ENSURE(r->nrec < r->cap);
    struct rec *c = &r->recs[r->nrec++];
    c->type = t->type;
    c->status = t->status;
    c->minor_version = t->minor_version;
    c->keep_alive = t->keep_alive;
    c->chunked = t->chunked;
    c->content_length = t->content_length;
    c->off = r->arena_len;
    c->len = t->len;
    c->value_len = t->value_len;
    if (t->len > 0)
        memcpy(r->arena + r->arena_len, t->str, t->len);
    r->arena_len += t->len;
    if (t->value_len > 0)
        memcpy(r->arena + r->arena_len, t->value, t->value_len);
    r->arena_len += t->value_len;
}

/* What lr_http_parse_eof must say when the input stops with no error. */
static int expected_eof(const struct run *r)
{
    if (r->phase == 0 && !r->pending)
        return r->last_status >= 100 && r->last_status < 200 ? -EPROTO : 0;
    if (r->phase == 2 && r->body_eof)
        return 1;
    return -EPROTO;
}

static uint32_t rng;

static uint32_t next_rand(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 17;
    rng ^= rng << 5;
    return rng;
}

static const char good[] = "HTTP/1.1 200 OK\r\n";

/* Feed body[0..size) in chunks (chunk_max 0: one chunk), then signal EOF. */
static void parse_stream(struct run *r, const uint8_t *body, size_t size, size_t chunk_max,
                         bool head)
{
    struct lr_http_token t;
    size_t pos = 0;
    size_t tok_end = 0;
    int rc = 0;

    lr_http_parser_init(&r->p, head);
    r->nrec = 0;
    r->arena_len = 0;
    r->end = 0;
    r->pending = false;
    r->head = head;
    r->phase = 0;
    r->status = 0;
    r->minor = 0;
    r->last_status = 0;
    r->cl = -1;
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
        int zeros = 0;
        for (;;) {
            memset(&t, 0xa5, sizeof(t));
            rc = lr_http_parse(&r->p, chunk + off, n - off, &t);
            if (rc < 0)
                break;
            check_token(r, chunk + off, n - off, rc, &t);
            record(r, &t);
            /* Only END may take no bytes, and never twice in a row. */
            zeros = rc == 0 ? zeros + 1 : 0;
            ENSURE(zeros <= 1);
            off += (size_t)rc;
            tok_end = pos + off;
        }
        free(chunk);
        if (rc != -EAGAIN) {
            ENSURE(rc == -EPROTO || rc == -EMSGSIZE);
            /* Sticky, for real bytes, an empty call and EOF alike. */
            ENSURE(lr_http_parse(&r->p, good, sizeof(good) - 1, &t) == rc);
            ENSURE(lr_http_parse(&r->p, NULL, 0, &t) == rc);
            ENSURE(lr_http_parse_eof(&r->p, &t) == rc);
            r->end = rc;
            r->eof = rc;
            return;
        }
        pos += n;
    }
    r->pending = tok_end < size;
    ENSURE(lr_http_parse(&r->p, NULL, 0, &t) == -EAGAIN);
    memset(&t, 0xa5, sizeof(t));
    r->eof = lr_http_parse_eof(&r->p, &t);
    ENSURE(r->eof == expected_eof(r));
    if (r->eof == 1) {
        ENSURE(t.type == LR_HTTP_END && t.status == r->status && !t.keep_alive);
        ENSURE(t.str == NULL && t.len == 0);
        ENSURE(lr_http_parse_eof(&r->p, &t) == 0);
    } else if (r->eof < 0) {
        ENSURE(lr_http_parse_eof(&r->p, &t) == r->eof);
        ENSURE(lr_http_parse(&r->p, good, sizeof(good) - 1, &t) == r->eof);
    } else {
        ENSURE(lr_http_parse_eof(&r->p, &t) == 0);
    }
}

static void compare(const struct run *a, const struct run *b)
{
    ENSURE(a->nrec == b->nrec && a->arena_len == b->arena_len);
    ENSURE(a->end == b->end && a->pending == b->pending && a->eof == b->eof);
    for (size_t i = 0; i < a->nrec; i++) {
        const struct rec *x = &a->recs[i];
        const struct rec *y = &b->recs[i];
        ENSURE(x->type == y->type && x->status == y->status &&
               x->minor_version == y->minor_version && x->keep_alive == y->keep_alive &&
               x->chunked == y->chunked && x->content_length == y->content_length &&
               x->off == y->off && x->len == y->len && x->value_len == y->value_len);
    }
    ENSURE(a->arena_len == 0 || !memcmp(a->arena, b->arena, a->arena_len));
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
    bool head = (data[0] >> 3) & 1;
    /* Each record but END takes at least one byte, and END follows another
     * token: 2 * len + 2 records; the arena holds at most every byte once. */
    size_t cap = 2 * body_len + 2;

    ref.recs = malloc(cap * sizeof(*ref.recs));
    ref.arena = malloc(cap);
    cut.recs = malloc(cap * sizeof(*cut.recs));
    cut.arena = malloc(cap);
    ENSURE(ref.recs && ref.arena && cut.recs && cut.arena);
    ref.cap = cap;
    cut.cap = cap;

    parse_stream(&ref, body, body_len, 1, head);
    rng = 0x9e3779b9u ^ ((uint32_t)data[1] << 8) ^ data[0];
    parse_stream(&cut, body, body_len, chunk_max[data[0] % 8], head);
    compare(&ref, &cut);

    free(ref.recs);
    free(ref.arena);
    free(cut.recs);
    free(cut.arena);
    return 0;
}
