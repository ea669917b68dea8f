/* SPDX-License-Identifier: MIT */
/*
 * test_http.c - the HTTP/1.1 request writer and response parser.
 *
 * Every parse goes through feed(), which copies each chunk to the very end of
 * a mapping followed by a PROT_NONE page (picohttpparser's test.c trick), so
 * any read past the chunk faults at once. feed() calls the parser until it
 * answers -EAGAIN, not merely until the chunk is used up, because an END that
 * consumes no bytes is only collected that way. A parse is rendered to text,
 * one line per token (S status, H header, E headers end, B body, END), with
 * consecutive BODY pieces merged, since the parser may cut a body anywhere.
 * Table entries thus state their whole token stream in one string, and split
 * runs compare with the unsplit run by strcmp. feed() also checks each token
 * against an independent model of the response grammar (order of tokens,
 * status repeated, framing consistent, body bytes counted, BODY zero-copy)
 * and predicts what lr_http_parse_eof() must answer where the input stops.
 * Every table entry, valid or not, is re-run at every split point, at every
 * pair of split points (short inputs), one byte at a time, and truncated at
 * every length.
 */
#include <errno.h>
#include <stdbool.h>

#include "guard.h"
#include "harness.h"
#include "http.h"

/* ---- Rendering a token stream ---- */

struct render {
    char text[1 << 17];
    size_t n;
    int err;      /* first error other than -EAGAIN, or 0 */
    int eof;      /* what lr_http_parse_eof() answered after the input */
    bool pending; /* input ended inside a token */
    bool in_body; /* the last token was BODY: the next BODY extends its line */
    int ntok;
};

static void put(struct render *r, const char *s, size_t n)
{
    guard_put(r->text, sizeof(r->text), &r->n, s, n);
}

static void puts_r(struct render *r, const char *s)
{
    put(r, s, strlen(s));
}

static void put_escaped(struct render *r, const char *s, size_t n)
{
    char tmp[8];
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c < 0x7f && c != '\\') {
            put(r, (const char *)&c, 1);
        } else {
            int k = snprintf(tmp, sizeof(tmp), "\\x%02x", c);
            put(r, tmp, (size_t)k);
        }
    }
}

static void render_tok(struct render *r, const struct lr_http_token *t)
{
    char tmp[96];
    int n;

    if (t->type == LR_HTTP_BODY) {
        if (!r->in_body)
            put(r, "B", 1);
        r->in_body = true;
        put_escaped(r, t->str, t->len);
        r->ntok++;
        return;
    }
    if (r->in_body)
        put(r, "\n", 1);
    r->in_body = false;
    switch (t->type) {
    case LR_HTTP_STATUS:
        n = snprintf(tmp, sizeof(tmp), "S%d %d ", t->minor_version, t->status);
        put(r, tmp, (size_t)n);
        put_escaped(r, t->str, t->len);
        break;
    case LR_HTTP_HEADER:
        put(r, "H", 1);
        put_escaped(r, t->str, t->len);
        put(r, ": ", 2);
        put_escaped(r, t->value, t->value_len);
        break;
    case LR_HTTP_HEADERS_END:
        n = snprintf(tmp, sizeof(tmp), "E ka=%d ch=%d cl=%lld", t->keep_alive, t->chunked,
                     (long long)t->content_length);
        put(r, tmp, (size_t)n);
        break;
    case LR_HTTP_END:
        n = snprintf(tmp, sizeof(tmp), "END ka=%d", t->keep_alive);
        put(r, tmp, (size_t)n);
        break;
    default:
        n = snprintf(tmp, sizeof(tmp), "?%d", t->type);
        put(r, tmp, (size_t)n);
        break;
    }
    put(r, "\n", 1);
    r->ntok++;
}

/* Reports a broken invariant from feed(), which cannot use CHECK. */
#define SANE(cond)                                                                                 \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: invariant %s broken\n", __FILE__, __LINE__, #cond);            \
            return false;                                                                          \
        }                                                                                          \
    } while (0)

/* ---- The model a token stream must follow ---- */

struct model {
    bool head;  /* the parser was initialised for HEAD */
    int phase;  /* 0: between responses, 1: in the head, 2: in the body */
    int status; /* of the current response */
    int minor;
    bool ka; /* keep_alive of HEADERS_END */
    bool chunked;
    bool body_eof; /* the body runs to the close */
    int64_t cl;
    int64_t body;    /* body bytes seen */
    int last_status; /* of the last complete response, 0 if none */
};

static struct lr_http_parser parser;

static bool within(const char *s, size_t n, const char *lo, size_t span)
{
    return s >= lo && s + n <= lo + span;
}

static bool is_ows(char c)
{
    return c == ' ' || c == '\t';
}

/* One token, just returned with @rc for chunk[0..avail). */
static bool check_tok(struct model *m, const struct lr_http_token *t, const char *chunk,
                      size_t avail, int rc)
{
    const struct lr_http_parser *p = &parser;
    bool in_chunk;
    bool in_scratch;

    SANE(rc >= 0 && (size_t)rc <= avail);
    SANE(rc > 0 || t->type == LR_HTTP_END);
    if (t->type != LR_HTTP_STATUS) {
        SANE(t->status == m->status);
        SANE(t->minor_version == m->minor);
    }
    if (t->type != LR_HTTP_HEADER)
        SANE(t->value == NULL && t->value_len == 0);
    if (t->type != LR_HTTP_HEADERS_END && t->type != LR_HTTP_END)
        SANE(!t->keep_alive && !t->chunked && t->content_length == -1);
    switch (t->type) {
    case LR_HTTP_STATUS:
        SANE(m->phase == 0);
        SANE(t->status >= 100 && t->status <= 999);
        SANE(t->minor_version == 0 || t->minor_version == 1);
        SANE(t->str != NULL && t->len <= LR_HTTP_MAX_LINE);
        in_chunk = within(t->str, t->len, chunk, (size_t)rc);
        in_scratch = within(t->str, t->len, p->scratch, sizeof(p->scratch));
        SANE(in_chunk || in_scratch);
        m->phase = 1;
        m->status = t->status;
        m->minor = t->minor_version;
        break;
    case LR_HTTP_HEADER:
        SANE(m->phase == 1);
        SANE(t->str != NULL && t->len >= 1 && t->len <= LR_HTTP_MAX_LINE);
        SANE(t->value != NULL && t->value_len <= LR_HTTP_MAX_LINE);
        SANE(memchr(t->str, ':', t->len) == NULL);
        SANE(t->value_len == 0 || (!is_ows(t->value[0]) && !is_ows(t->value[t->value_len - 1])));
        in_chunk = within(t->str, t->len, chunk, (size_t)rc) &&
                   within(t->value, t->value_len, chunk, (size_t)rc);
        in_scratch = within(t->str, t->len, p->scratch, sizeof(p->scratch)) &&
                     within(t->value, t->value_len, p->scratch, sizeof(p->scratch));
        SANE(in_chunk || in_scratch);
        break;
    case LR_HTTP_HEADERS_END: {
        SANE(m->phase == 1);
        SANE(t->str == NULL && t->len == 0);
        bool no_body = m->head || m->status < 200 || m->status == 204 || m->status == 304;
        SANE(t->content_length >= -1 && t->content_length <= LR_HTTP_MAX_BODY);
        if (no_body)
            SANE(t->content_length == -1 && !t->chunked);
        if (t->chunked)
            SANE(t->content_length == -1);
        m->body_eof = !no_body && !t->chunked && t->content_length == -1;
        if (m->body_eof)
            SANE(!t->keep_alive);
        m->ka = t->keep_alive;
        m->chunked = t->chunked;
        m->cl = t->content_length;
        m->body = 0;
        m->phase = 2;
        break;
    }
    case LR_HTTP_BODY:
        SANE(m->phase == 2);
        SANE(t->len >= 1);
        /* Zero copy: body bytes never go through scratch. */
        SANE(within(t->str, t->len, chunk, (size_t)rc));
        m->body += (int64_t)t->len;
        SANE(m->cl < 0 || m->body <= m->cl);
        break;
    case LR_HTTP_END:
        SANE(m->phase == 2);
        SANE(!m->body_eof);
        SANE(t->str == NULL && t->len == 0);
        SANE(t->keep_alive == m->ka && t->chunked == m->chunked && t->content_length == m->cl);
        SANE(m->cl < 0 || m->body == m->cl);
        m->phase = 0;
        m->last_status = m->status;
        break;
    default:
        SANE(!"unknown token type");
    }
    return true;
}

/* What lr_http_parse_eof must say when the input stops here (no error). */
static int expected_eof(const struct model *m, bool pending)
{
    if (m->phase == 0 && !pending)
        return m->last_status >= 100 && m->last_status < 200 ? -EPROTO : 0;
    if (m->phase == 2 && m->body_eof)
        return 1;
    return -EPROTO;
}

/*
 * Parse msg[0..len) delivered in chunks that end at cuts[0..ncuts) (ascending)
 * and at len, each chunk at the end of the guard page, then signal EOF.
 * Returns false if a token or return value breaks the contract.
 */
static bool feed(const char *msg, size_t len, const size_t *cuts, size_t ncuts, bool head,
                 struct render *r)
{
    struct lr_http_parser *p = &parser;
    struct lr_http_token tok;
    struct model m = {.head = head};
    size_t start = 0;
    size_t tok_end = 0; /* input offset just past the last token */
    int rc = 0;

    lr_http_parser_init(p, head);
    r->n = 0;
    r->text[0] = '\0';
    r->err = 0;
    r->eof = 0;
    r->pending = false;
    r->in_body = false;
    r->ntok = 0;
    for (size_t c = 0; c <= ncuts; c++) {
        size_t stop = c < ncuts ? cuts[c] : len;
        if (stop <= start)
            continue;
        size_t n = stop - start;
        const char *chunk = guard_tail(msg + start, n);
        size_t off = 0;
        for (;;) {
            memset(&tok, 0xa5, sizeof(tok));
            rc = lr_http_parse(p, chunk + off, n - off, &tok);
            if (rc == -EAGAIN)
                break;
            if (rc < 0)
                goto failed;
            if (!check_tok(&m, &tok, chunk + off, n - off, rc))
                return false;
            render_tok(r, &tok);
            off += (size_t)rc;
            tok_end = start + off;
        }
        start = stop;
    }
    r->pending = tok_end < len;
    if (r->pending)
        puts_r(r, "...");
    /* Everything was drained: nothing is due without more bytes. */
    SANE(lr_http_parse(p, NULL, 0, &tok) == -EAGAIN);

    memset(&tok, 0xa5, sizeof(tok));
    rc = lr_http_parse_eof(p, &tok);
    r->eof = rc;
    SANE(rc == expected_eof(&m, r->pending));
    if (rc == 1) {
        SANE(tok.type == LR_HTTP_END && tok.status == m.status && !tok.keep_alive);
        SANE(tok.str == NULL && tok.len == 0);
        /* The response is finished: a second EOF loses nothing. */
        SANE(lr_http_parse_eof(p, &tok) == 0);
    } else if (rc < 0) {
        SANE(lr_http_parse_eof(p, &tok) == rc);
        SANE(lr_http_parse(p, guard_tail("HTTP/1.1 200 OK\r\n", 17), 17, &tok) == rc);
    } else {
        SANE(lr_http_parse_eof(p, &tok) == 0);
    }
    return true;

failed:
    r->err = rc;
    if (r->in_body)
        put(r, "\n", 1);
    put(r, "!", 1);
    puts_r(r, guard_err_name(rc));
    /* Sticky: neither good bytes, nor an empty call, nor EOF may clear it. */
    SANE(lr_http_parse(p, guard_tail("HTTP/1.1 200 OK\r\n", 17), 17, &tok) == rc);
    SANE(lr_http_parse(p, NULL, 0, &tok) == rc);
    SANE(lr_http_parse_eof(p, &tok) == rc);
    r->eof = rc;
    return true;
}

static struct render whole_r;
static struct render split_r;

/* A render as guard_check_splits compares it. */
static struct guard_view view(const struct render *r)
{
    return (struct guard_view){.text = r->text, .n = r->n, .err = r->err, .pending = r->pending,
                               .eof = r->eof};
}

static bool split_feed(void *ctx, const char *msg, size_t len, const size_t *cuts, size_t ncuts,
                       struct guard_view *out)
{
    if (!feed(msg, len, cuts, ncuts, *(const bool *)ctx, &split_r))
        return false;
    *out = view(&split_r);
    return true;
}

/*
 * The unsplit parse of msg must render as @expect and end with @eof (if
 * @expect is given), and every way of splitting it must render identically;
 * every truncation must render as a prefix of it, ending pending or with the
 * same error (feed() checks the EOF answer of each against the model).
 */
static bool check_msg(const char *msg, size_t len, bool head, const char *expect, int eof)
{
    const struct guard_split g = {
        .feed = split_feed, .pairs_max = 128, .show_eof = true, .ctx = &head};
    if (!feed(msg, len, NULL, 0, head, &whole_r))
        return false;
    if (expect && (strcmp(whole_r.text, expect) != 0 || whole_r.eof != eof)) {
        fprintf(stderr,
                "parse of \"%.60s\":\n  got:    %.600s [eof %d]\n  expect: %.600s [eof %d]\n", msg,
                whole_r.text, whole_r.eof, expect, eof);
        return false;
    }
    struct guard_view whole = view(&whole_r);
    return guard_check_splits(&g, &whole, msg, len);
}

/* ---- The table ---- */

struct tcase {
    bool head;
    const char *msg;
    size_t len;
    const char *expect;
    int eof; /* lr_http_parse_eof() after the whole input */
};

#define C(m, e, eof)                                                                               \
    {                                                                                              \
        false, m, sizeof(m) - 1, e, eof                                                            \
    }
#define CHEAD(m, e, eof)                                                                           \
    {                                                                                              \
        true, m, sizeof(m) - 1, e, eof                                                             \
    }
#define EPROTO_ (-EPROTO)

static const struct tcase cases[] = {
    /* Azurite, acquire: lowercase x-ms-* names, a quoted ETag, an empty body. */
    C("HTTP/1.1 201 Created\r\n"
      "Server: Azurite-Blob/3.35.0\r\n"
      "etag: \"0x1D2E3F4A5B6C7D8\"\r\n"
      "last-modified: Mon, 01 Jul 2024 10:00:00 GMT\r\n"
      "x-ms-lease-id: 6f2a1c3e-8b7d-4e5f-9a0b-1c2d3e4f5a6b\r\n"
      "x-ms-request-id: 9a3b1c2d-0001-4e5f-8a9b-0c1d2e3f4a5b\r\n"
      "x-ms-version: 2025-05-05\r\n"
      "date: Mon, 01 Jul 2024 10:00:00 GMT\r\n"
      "Connection: keep-alive\r\n"
      "Keep-Alive: timeout=5\r\n"
      "Content-Length: 0\r\n"
      "\r\n",
      "S1 201 Created\n"
      "HServer: Azurite-Blob/3.35.0\n"
      "Hetag: \"0x1D2E3F4A5B6C7D8\"\n"
      "Hlast-modified: Mon, 01 Jul 2024 10:00:00 GMT\n"
      "Hx-ms-lease-id: 6f2a1c3e-8b7d-4e5f-9a0b-1c2d3e4f5a6b\n"
      "Hx-ms-request-id: 9a3b1c2d-0001-4e5f-8a9b-0c1d2e3f4a5b\n"
      "Hx-ms-version: 2025-05-05\n"
      "Hdate: Mon, 01 Jul 2024 10:00:00 GMT\n"
      "HConnection: keep-alive\n"
      "HKeep-Alive: timeout=5\n"
      "HContent-Length: 0\n"
      "E ka=1 ch=0 cl=0\n"
      "END ka=1\n",
      0),
    /* Azurite, lease conflict: the long reason, a chunked XML body in two
     * chunks, the first with an extension. */
    C("HTTP/1.1 409 There is already a lease present.\r\n"
      "Server: Azurite-Blob/3.35.0\r\n"
      "x-ms-error-code: LeaseAlreadyPresent\r\n"
      "x-ms-request-id: 9a3b1c2d-0001-4e5f-8a9b-0c1d2e3f4a5b\r\n"
      "content-type: application/xml\r\n"
      "Date: Mon, 01 Jul 2024 10:00:14 GMT\r\n"
      "Connection: keep-alive\r\n"
      "Keep-Alive: timeout=5\r\n"
      "Transfer-Encoding: chunked\r\n"
      "\r\n"
      "26;part=\"head\"\r\n"
      "<?xml version=\"1.0\" encoding=\"utf-8\"?>\r\n"
      "b0\r\n"
      "<Error><Code>LeaseAlreadyPresent</Code><Message>There is already a lease present.\n"
      "RequestId:9a3b1c2d-0001-4e5f-8a9b-0c1d2e3f4a5b\n"
      "Time:2024-07-01T10:00:00.000Z</Message></Error>\r\n"
      "0\r\n"
      "\r\n",
      "S1 409 There is already a lease present.\n"
      "HServer: Azurite-Blob/3.35.0\n"
      "Hx-ms-error-code: LeaseAlreadyPresent\n"
      "Hx-ms-request-id: 9a3b1c2d-0001-4e5f-8a9b-0c1d2e3f4a5b\n"
      "Hcontent-type: application/xml\n"
      "HDate: Mon, 01 Jul 2024 10:00:14 GMT\n"
      "HConnection: keep-alive\n"
      "HKeep-Alive: timeout=5\n"
      "HTransfer-Encoding: chunked\n"
      "E ka=1 ch=1 cl=-1\n"
      "B<?xml version=\"1.0\" encoding=\"utf-8\"?>"
      "<Error><Code>LeaseAlreadyPresent</Code><Message>There is already a lease present.\\x0a"
      "RequestId:9a3b1c2d-0001-4e5f-8a9b-0c1d2e3f4a5b\\x0a"
      "Time:2024-07-01T10:00:00.000Z</Message></Error>\n"
      "END ka=1\n",
      0),
    /* HEAD: Content-Length describes the GET body, which does not follow. */
    CHEAD("HTTP/1.1 200 OK\r\n"
          "Content-Length: 1234\r\n"
          "x-ms-lease-state: leased\r\n"
          "\r\n",
          "S1 200 OK\nHContent-Length: 1234\nHx-ms-lease-state: leased\n"
          "E ka=1 ch=0 cl=-1\nEND ka=1\n",
          0),
    /* HEAD, twice on one connection; chunked framing means no body either. */
    CHEAD("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n"
          "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
          "S1 200 OK\nHContent-Length: 5\nE ka=1 ch=0 cl=-1\nEND ka=1\n"
          "S1 200 OK\nHTransfer-Encoding: chunked\nE ka=1 ch=0 cl=-1\nEND ka=1\n",
          0),
    CHEAD("HTTP/1.0 200 OK\r\n\r\n", "S0 200 OK\nE ka=0 ch=0 cl=-1\nEND ka=0\n", 0),
    /* 204 and 304 have no body whatever the headers say. */
    C("HTTP/1.1 204 No Content\r\nDate: Mon, 01 Jul 2024 10:00:00 GMT\r\n\r\n",
      "S1 204 No Content\nHDate: Mon, 01 Jul 2024 10:00:00 GMT\nE ka=1 ch=0 cl=-1\nEND ka=1\n", 0),
    C("HTTP/1.1 304 Not Modified\r\nETag: \"x\"\r\nContent-Length: 10\r\n\r\n",
      "S1 304 Not Modified\nHETag: \"x\"\nHContent-Length: 10\nE ka=1 ch=0 cl=-1\nEND ka=1\n", 0),
    C("HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n",
      "S1 204 No Content\nHConnection: close\nE ka=0 ch=0 cl=-1\nEND ka=0\n", 0),
    /* 100 Continue, then the real response on the same stream. */
    C("HTTP/1.1 100 Continue\r\n\r\n"
      "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello",
      "S1 100 Continue\nE ka=1 ch=0 cl=-1\nEND ka=1\n"
      "S1 200 OK\nHContent-Length: 5\nE ka=1 ch=0 cl=5\nBhello\nEND ka=1\n",
      0),
    C("HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n"
      "HTTP/1.1 100 Continue\r\n\r\n"
      "HTTP/1.1 204 \r\n\r\n",
      "S1 103 Early Hints\nHLink: </style.css>; rel=preload\nE ka=1 ch=0 cl=-1\nEND ka=1\n"
      "S1 100 Continue\nE ka=1 ch=0 cl=-1\nEND ka=1\n"
      "S1 204 \nE ka=1 ch=0 cl=-1\nEND ka=1\n",
      0),
    /* A 1xx alone: the final response never came. */
    C("HTTP/1.1 100 Continue\r\n\r\n", "S1 100 Continue\nE ka=1 ch=0 cl=-1\nEND ka=1\n", EPROTO_),
    /* HTTP/1.0 without framing: the body runs to the close. */
    C("HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nhello, world\r\n\r\nmore",
      "S0 200 OK\nHContent-Type: text/plain\nE ka=0 ch=0 cl=-1\n"
      "Bhello, world\\x0d\\x0a\\x0d\\x0amore",
      1),
    C("HTTP/1.0 200 OK\r\n\r\n", "S0 200 OK\nE ka=0 ch=0 cl=-1\n", 1),
    C("HTTP/1.1 200\r\n\r\nx", "S1 200 \nE ka=0 ch=0 cl=-1\nBx", 1),
    /* Even keep-alive cannot rescue a body that only the close ends. */
    C("HTTP/1.0 200 OK\r\nConnection: keep-alive\r\n\r\nabc",
      "S0 200 OK\nHConnection: keep-alive\nE ka=0 ch=0 cl=-1\nBabc", 1),
    /* keep_alive: Connection options, case-insensitive, in any list position. */
    C("HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok",
      "S1 200 OK\nHConnection: close\nHContent-Length: 2\nE ka=0 ch=0 cl=2\nBok\nEND ka=0\n", 0),
    C("HTTP/1.1 200 OK\r\nconnection: Upgrade, CLOSE\r\nContent-Length: 0\r\n\r\n",
      "S1 200 OK\nHconnection: Upgrade, CLOSE\nHContent-Length: 0\nE ka=0 ch=0 cl=0\nEND ka=0\n",
      0),
    C("HTTP/1.1 200 OK\r\nConnection: ,, foo ,\tclose\t\r\nContent-Length: 0\r\n\r\n",
      "S1 200 OK\nHConnection: ,, foo ,\\x09close\nHContent-Length: 0\nE ka=0 ch=0 cl=0\n"
      "END ka=0\n",
      0),
    C("HTTP/1.1 200 OK\r\nConnection: closed, keep-alive\r\nContent-Length: 0\r\n\r\n",
      "S1 200 OK\nHConnection: closed, keep-alive\nHContent-Length: 0\nE ka=1 ch=0 cl=0\n"
      "END ka=1\n",
      0),
    C("HTTP/1.1 200 OK\r\nConnection: keep-alive\r\nConnection: close\r\nContent-Length: 0\r\n\r\n",
      "S1 200 OK\nHConnection: keep-alive\nHConnection: close\nHContent-Length: 0\n"
      "E ka=0 ch=0 cl=0\nEND ka=0\n",
      0),
    C("HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\nContent-Length: 2\r\n\r\nhi",
      "S0 200 OK\nHConnection: Keep-Alive\nHContent-Length: 2\nE ka=1 ch=0 cl=2\nBhi\nEND ka=1\n",
      0),
    C("HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nhi",
      "S0 200 OK\nHContent-Length: 2\nE ka=0 ch=0 cl=2\nBhi\nEND ka=0\n", 0),
    C("HTTP/1.0 200 OK\r\nConnection: keep-alive, close\r\nContent-Length: 0\r\n\r\n",
      "S0 200 OK\nHConnection: keep-alive, close\nHContent-Length: 0\nE ka=0 ch=0 cl=0\n"
      "END ka=0\n",
      0),
    /* Two responses back to back (pipelining). */
    C("HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc"
      "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n",
      "S1 200 OK\nHContent-Length: 3\nE ka=1 ch=0 cl=3\nBabc\nEND ka=1\n"
      "S1 404 Not Found\nHContent-Length: 0\nE ka=1 ch=0 cl=0\nEND ka=1\n",
      0),
    C("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\na\r\n0\r\n\r\n"
      "HTTP/1.1 201 Created\r\nContent-Length: 1\r\n\r\nb",
      "S1 200 OK\nHTransfer-Encoding: chunked\nE ka=1 ch=1 cl=-1\nBa\nEND ka=1\n"
      "S1 201 Created\nHContent-Length: 1\nE ka=1 ch=0 cl=1\nBb\nEND ka=1\n",
      0),
    /* Status line: the reason is optional and taken as sent. */
    C("HTTP/1.1 200 \r\nContent-Length: 0\r\n\r\n",
      "S1 200 \nHContent-Length: 0\nE ka=1 ch=0 cl=0\nEND ka=1\n", 0),
    C("HTTP/1.1 999 x  y\t\xff \r\nContent-Length: 0\r\n\r\n",
      "S1 999 x  y\\x09\\xff \nHContent-Length: 0\nE ka=1 ch=0 cl=0\nEND ka=1\n", 0),
    C("HTTP/1.1 101 Switching Protocols\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
      "S1 101 Switching Protocols\nE ka=1 ch=0 cl=-1\nEND ka=1\n"
      "S1 200 OK\nHContent-Length: 0\nE ka=1 ch=0 cl=0\nEND ka=1\n",
      0),
    /* Field values: OWS trimmed, inner whitespace and obs-text kept. */
    C("HTTP/1.1 200 OK\r\nX-A:   a  b \t\r\nX-B:\r\nX-C: \t \r\nX-D:caf\xc3\xa9\r\n"
      "!#$%&'*+-.^_`|~09AZaz:v\r\nContent-Length: 0\r\n\r\n",
      "S1 200 OK\nHX-A: a  b\nHX-B: \nHX-C: \nHX-D: caf\\xc3\\xa9\n"
      "H!#$%&'*+-.^_`|~09AZaz: v\nHContent-Length: 0\nE ka=1 ch=0 cl=0\nEND ka=1\n",
      0),
    C("HTTP/1.1 200 OK\r\nX: a:b: c\r\nContent-Length: 0\r\n\r\n",
      "S1 200 OK\nHX: a:b: c\nHContent-Length: 0\nE ka=1 ch=0 cl=0\nEND ka=1\n", 0),
    /* Content-Length: identical repeats, leading zeros, case of the name. */
    C("HTTP/1.1 200 OK\r\nContent-Length: 3\r\ncontent-length: 3\r\n\r\nabc",
      "S1 200 OK\nHContent-Length: 3\nHcontent-length: 3\nE ka=1 ch=0 cl=3\nBabc\nEND ka=1\n", 0),
    C("HTTP/1.1 200 OK\r\nCONTENT-LENGTH:  0003 \r\n\r\nabc",
      "S1 200 OK\nHCONTENT-LENGTH: 0003\nE ka=1 ch=0 cl=3\nBabc\nEND ka=1\n", 0),
    C("HTTP/1.1 200 OK\r\nContent-Length: 1099511627776\r\n\r\n",
      "S1 200 OK\nHContent-Length: 1099511627776\nE ka=1 ch=0 cl=1099511627776\n", EPROTO_),
    C("HTTP/1.1 200 OK\r\nContent-Length: 00000000000000000000000000000000001\r\n\r\nz",
      "S1 200 OK\nHContent-Length: 00000000000000000000000000000000001\nE ka=1 ch=0 cl=1\n"
      "Bz\nEND ka=1\n",
      0),
    /* A body cut short: its tokens so far, and EOF is an error. */
    C("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhel",
      "S1 200 OK\nHContent-Length: 5\nE ka=1 ch=0 cl=5\nBhel", EPROTO_),
    /* Chunked: hex in either case, leading zeros, extensions with BWS, trailers. */
    C("HTTP/1.1 200 OK\r\ntransfer-encoding: CHUNKED\r\n\r\n"
      "000A\r\n0123456789\r\n"
      "1 ; a=b;c=\"d;e\"\r\nx\r\n"
      "f\t;x\r\nabcdefghijklmno\r\n"
      "0000;last\r\n"
      "X-Trailer: v\r\nServer-Timing: a;dur=1\r\n"
      "\r\n",
      "S1 200 OK\nHtransfer-encoding: CHUNKED\nE ka=1 ch=1 cl=-1\n"
      "B0123456789xabcdefghijklmno\nEND ka=1\n",
      0),
    C("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
      "1\r\na\r\n1\r\n\r\r\n1\r\n\n\r\n2\r\n\r\n\r\n0\r\n\r\n",
      "S1 200 OK\nHTransfer-Encoding: chunked\nE ka=1 ch=1 cl=-1\nBa\\x0d\\x0a\\x0d\\x0a\n"
      "END ka=1\n",
      0),
    C("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n0\r\n\r\n",
      "S1 200 OK\nHTransfer-Encoding: chunked\nHConnection: close\nE ka=0 ch=1 cl=-1\n"
      "END ka=0\n",
      0),
    C("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
      "10000000000\r\n",
      "S1 200 OK\nHTransfer-Encoding: chunked\nE ka=1 ch=1 cl=-1\n...", EPROTO_),
    C("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
      "0000000000000001\r\nx\r\n0\r\n\r\n",
      "S1 200 OK\nHTransfer-Encoding: chunked\nE ka=1 ch=1 cl=-1\nBx\nEND ka=1\n", 0),
    /* A trailer field may name anything; it does not change the framing. */
    C("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
      "0\r\nContent-Length: 5\r\nTransfer-Encoding: gzip\r\n\r\n",
      "S1 200 OK\nHTransfer-Encoding: chunked\nE ka=1 ch=1 cl=-1\nEND ka=1\n", 0),
    /* Truncated heads: pending. */
    C("", "", 0),
    C("H", "...", EPROTO_),
    C("HTTP/1.1 200 OK", "...", EPROTO_),
    C("HTTP/1.1 200 OK\r", "...", EPROTO_),
    C("HTTP/1.1 200 OK\r\n", "S1 200 OK\n", EPROTO_),
    C("HTTP/1.1 200 OK\r\nA: b\r\n\r", "S1 200 OK\nHA: b\n...", EPROTO_),
    C("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab",
      "S1 200 OK\nHTransfer-Encoding: chunked\nE ka=1 ch=1 cl=-1\nBab", EPROTO_),
    C("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nab\r",
      "S1 200 OK\nHTransfer-Encoding: chunked\nE ka=1 ch=1 cl=-1\nBab...", EPROTO_),
    C("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX: y\r\n",
      "S1 200 OK\nHTransfer-Encoding: chunked\nE ka=1 ch=1 cl=-1\n...", EPROTO_),
    C("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\nHTTP/1.1 2",
      "S1 200 OK\nHContent-Length: 0\nE ka=1 ch=0 cl=0\nEND ka=1\n...", EPROTO_),

    /* ---- Malformed: -EPROTO ---- */
    /* Bare LF, anywhere in the head, in chunk framing, in trailers. */
    C("HTTP/1.1 200 OK\n", "!EPROTO", EPROTO_),
    C("HTTP/1.1 200 OK\r\nA: b\n", "S1 200 OK\n!EPROTO", EPROTO_),
    C("HTTP/1.1 200 OK\r\n\n", "S1 200 OK\n!EPROTO", EPROTO_),
    C("HTTP/1.1 200 OK\r\nA: b\r\n\n", "S1 200 OK\nHA: b\n!EPROTO", EPROTO_),
    C("\n", "!EPROTO", EPROTO_),
    C("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\nx\r\n",
      "S1 200 OK\nHTransfer-Encoding: chunked\nE ka=1 ch=1 cl=-1\n!EPROTO", EPROTO_),
    C("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nx\n",
      "S1 200 OK\nHTransfer-Encoding: chunked\nE ka=1 ch=1 cl=-1\nBx\n!EPROTO", EPROTO_),
    C("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX: y\n",
      "S1 200 OK\nHTransfer-Encoding: chunked\nE ka=1 ch=1 cl=-1\n!EPROTO", EPROTO_),
    C("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\n",
      "S1 200 OK\nHTransfer-Encoding: chunked\nE ka=1 ch=1 cl=-1\n!EPROTO", EPROTO_),
    /* A CR that is not followed by LF. */
    C("HTTP/1.1 200 OK\rX\r\n", "!EPROTO", EPROTO_),
    C("HTTP/1.1 200 OK\r\r\n", "!EPROTO", EPROTO_),
    C("HTTP/1.1 200 OK\r\nA: b\rc\r\n", "S1 200 OK\n!EPROTO", EPROTO_),
    C("HTTP/1.1 200 OK\r\n\r\r\n", "S1 200 OK\n!EPROTO", EPROTO_),
    /* Status line. */
    C("\r\nHTTP/1.1 200 OK\r\n", "!EPROTO", EPROTO_),
    C("HTTP/1.2 200 OK\r\n", "!EPROTO", EPROTO_),
    C("HTTP/1.9 200 OK\r\n", "!EPROTO", EPROTO_),
    C("HTTP/2 200 OK\r\n", "!EPROTO", EPROTO_),
    C("HTTP/2.0 200 OK\r\n", "!EPROTO", EPROTO_),
    C("HTTP/0.9 200 OK\r\n", "!EPROTO", EPROTO_),
    C("http/1.1 200 OK\r\n", "!EPROTO", EPROTO_),
    C("HTTP/1.1 20 OK\r\n", "!EPROTO", EPROTO_),
    C("HTTP/1.1 20\r\n", "!EPROTO", EPROTO_),
    C("HTTP/1.1 2000 OK\r\n", "!EPROTO", EPROTO_),
    C("HTTP/1.1 2000\r\n", "!EPROTO", EPROTO_),
    C("HTTP/1.1 099 OK\r\n", "!EPROTO", EPROTO_),
    C("HTTP/1.1 000\r\n", "!EPROTO", EPROTO_),
    C("HTTP/1.1 20x OK\r\n", "!EPROTO", EPROTO_),
    C("HTTP/1.1 -20 OK\r\n", "!EPROTO", EPROTO_),
    C("HTTP/1.1  200 OK\r\n", "!EPROTO", EPROTO_),
    C("HTTP/1.1\t200 OK\r\n", "!EPROTO", EPROTO_),
    C("HTTP/1.1 200\tOK\r\n", "!EPROTO", EPROTO_),
    C("HTTP/1.1 200OK\r\n", "!EPROTO", EPROTO_),
    C("HTTP/1.1 200 O\x01K\r\n", "!EPROTO", EPROTO_),
    C("HTTP/1.1 200 O\x7fK\r\n", "!EPROTO", EPROTO_),
    C("HTTP/1.1 200 OK\0\r\n", "!EPROTO", EPROTO_),
    C("HTTP/1.1\r\n", "!EPROTO", EPROTO_),
    C("HTTP/1.1 \r\n", "!EPROTO", EPROTO_),
    C(" HTTP/1.1 200 OK\r\n", "!EPROTO", EPROTO_),
    C("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\nXTTP/1.1 200 OK\r\n",
      "S1 200 OK\nHContent-Length: 0\nE ka=1 ch=0 cl=0\nEND ka=1\n!EPROTO", EPROTO_),
    /* Field lines: obs-fold, whitespace before the colon, bad names, CTLs. */
    C("HTTP/1.1 200 OK\r\nA: b\r\n c\r\n\r\n", "S1 200 OK\nHA: b\n!EPROTO", EPROTO_),
    C("HTTP/1.1 200 OK\r\nA: b\r\n\tc\r\n\r\n", "S1 200 OK\nHA: b\n!EPROTO", EPROTO_),
    C("HTTP/1.1 200 OK\r\n A: b\r\n\r\n", "S1 200 OK\n!EPROTO", EPROTO_),
    C("HTTP/1.1 200 OK\r\nA : b\r\n\r\n", "S1 200 OK\n!EPROTO", EPROTO_),
    C("HTTP/1.1 200 OK\r\nA\t: b\r\n\r\n", "S1 200 OK\n!EPROTO", EPROTO_),
    C("HTTP/1.1 200 OK\r\n: b\r\n\r\n", "S1 200 OK\n!EPROTO", EPROTO_),
    C("HTTP/1.1 200 OK\r\nA b\r\n\r\n", "S1 200 OK\n!EPROTO", EPROTO_),
    C("HTTP/1.1 200 OK\r\nAb\r\n\r\n", "S1 200 OK\n!EPROTO", EPROTO_),
    C("HTTP/1.1 200 OK\r\nA@: b\r\n\r\n", "S1 200 OK\n!EPROTO", EPROTO_),
    C("HTTP/1.1 200 OK\r\nA(: b\r\n\r\n", "S1 200 OK\n!EPROTO", EPROTO_),
    C("HTTP/1.1 200 OK\r\n\xc3\xa9: b\r\n\r\n", "S1 200 OK\n!EPROTO", EPROTO_),
    C("HTTP/1.1 200 OK\r\nA: b\x01\r\n\r\n", "S1 200 OK\n!EPROTO", EPROTO_),
    C("HTTP/1.1 200 OK\r\nA: b\x1f\r\n\r\n", "S1 200 OK\n!EPROTO", EPROTO_),
    C("HTTP/1.1 200 OK\r\nA: b\x7f\r\n\r\n", "S1 200 OK\n!EPROTO", EPROTO_),
    C("HTTP/1.1 200 OK\r\nA: b\0c\r\n\r\n", "S1 200 OK\n!EPROTO", EPROTO_),
    C("HTTP/1.1 200 OK\r\nA:\x0b b\r\n\r\n", "S1 200 OK\n!EPROTO", EPROTO_),
    /* Content-Length: only digits, one value. */
    C("HTTP/1.1 200 OK\r\nContent-Length: \r\n\r\n", "S1 200 OK\n!EPROTO", EPROTO_),
    C("HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", "S1 200 OK\n!EPROTO", EPROTO_),
    C("HTTP/1.1 200 OK\r\nContent-Length: +1\r\n\r\n", "S1 200 OK\n!EPROTO", EPROTO_),
    C("HTTP/1.1 200 OK\r\nContent-Length: 1a\r\n\r\n", "S1 200 OK\n!EPROTO", EPROTO_),
    C("HTTP/1.1 200 OK\r\nContent-Length: 0x10\r\n\r\n", "S1 200 OK\n!EPROTO", EPROTO_),
    C("HTTP/1.1 200 OK\r\nContent-Length: 5, 5\r\n\r\n", "S1 200 OK\n!EPROTO", EPROTO_),
    C("HTTP/1.1 200 OK\r\nContent-Length: 5,5\r\n\r\n", "S1 200 OK\n!EPROTO", EPROTO_),
    C("HTTP/1.1 200 OK\r\nContent-Length: 5 5\r\n\r\n", "S1 200 OK\n!EPROTO", EPROTO_),
    C("HTTP/1.1 200 OK\r\nContent-Length: 1.0\r\n\r\n", "S1 200 OK\n!EPROTO", EPROTO_),
    C("HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999999x\r\n\r\n", "S1 200 OK\n!EPROTO",
      EPROTO_),
    C("HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd",
      "S1 200 OK\nHContent-Length: 3\n!EPROTO", EPROTO_),
    C("HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 03\r\n\r\nabc",
      "S1 200 OK\nHContent-Length: 3\nHContent-Length: 03\nE ka=1 ch=0 cl=3\nBabc\nEND ka=1\n", 0),
    /* A HEAD or 204 response still has to frame itself sanely. */
    CHEAD("HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n",
          "S1 200 OK\nHContent-Length: 3\n!EPROTO", EPROTO_),
    C("HTTP/1.1 204 No Content\r\nContent-Length: x\r\n\r\n", "S1 204 No Content\n!EPROTO",
      EPROTO_),
    /* Transfer-Encoding: exactly "chunked", alone, never with Content-Length. */
    C("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n", "S1 200 OK\n!EPROTO", EPROTO_),
    C("HTTP/1.1 200 OK\r\nTransfer-Encoding: identity\r\n\r\n", "S1 200 OK\n!EPROTO", EPROTO_),
    C("HTTP/1.1 200 OK\r\nTransfer-Encoding: \r\n\r\n", "S1 200 OK\n!EPROTO", EPROTO_),
    C("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", "S1 200 OK\n!EPROTO", EPROTO_),
    C("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, chunked\r\n\r\n", "S1 200 OK\n!EPROTO",
      EPROTO_),
    C("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked;q=1\r\n\r\n", "S1 200 OK\n!EPROTO", EPROTO_),
    C("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunkedx\r\n\r\n", "S1 200 OK\n!EPROTO", EPROTO_),
    C("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
      "S1 200 OK\nHTransfer-Encoding: chunked\n!EPROTO", EPROTO_),
    C("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n",
      "S1 200 OK\nHTransfer-Encoding: chunked\n!EPROTO", EPROTO_),
    C("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
      "S1 200 OK\nHContent-Length: 5\n!EPROTO", EPROTO_),
    C("HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", "S0 200 OK\n!EPROTO", EPROTO_),
    CHEAD("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
          "S1 200 OK\nHContent-Length: 5\n!EPROTO", EPROTO_),
    /* Chunk framing. */
    C("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n\r\n",
      "S1 200 OK\nHTransfer-Encoding: chunked\nE ka=1 ch=1 cl=-1\n!EPROTO", EPROTO_),
    C("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nx\r\n",
      "S1 200 OK\nHTransfer-Encoding: chunked\nE ka=1 ch=1 cl=-1\n!EPROTO", EPROTO_),
    C("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n-1\r\n",
      "S1 200 OK\nHTransfer-Encoding: chunked\nE ka=1 ch=1 cl=-1\n!EPROTO", EPROTO_),
    C("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0x1\r\n",
      "S1 200 OK\nHTransfer-Encoding: chunked\nE ka=1 ch=1 cl=-1\n!EPROTO", EPROTO_),
    C("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n 1\r\n",
      "S1 200 OK\nHTransfer-Encoding: chunked\nE ka=1 ch=1 cl=-1\n!EPROTO", EPROTO_),
    C("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1 \r\n",
      "S1 200 OK\nHTransfer-Encoding: chunked\nE ka=1 ch=1 cl=-1\n!EPROTO", EPROTO_),
    C("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1x\r\n",
      "S1 200 OK\nHTransfer-Encoding: chunked\nE ka=1 ch=1 cl=-1\n!EPROTO", EPROTO_),
    C("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1;a\x01\r\n",
      "S1 200 OK\nHTransfer-Encoding: chunked\nE ka=1 ch=1 cl=-1\n!EPROTO", EPROTO_),
    C("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1;a\rb\r\n",
      "S1 200 OK\nHTransfer-Encoding: chunked\nE ka=1 ch=1 cl=-1\n!EPROTO", EPROTO_),
    C("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nxy\r\n",
      "S1 200 OK\nHTransfer-Encoding: chunked\nE ka=1 ch=1 cl=-1\nBx\n!EPROTO", EPROTO_),
    C("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nx\rx",
      "S1 200 OK\nHTransfer-Encoding: chunked\nE ka=1 ch=1 cl=-1\nBx\n!EPROTO", EPROTO_),
    C("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nx\r\r\n",
      "S1 200 OK\nHTransfer-Encoding: chunked\nE ka=1 ch=1 cl=-1\nBx\n!EPROTO", EPROTO_),
    C("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nx1\r\n",
      "S1 200 OK\nHTransfer-Encoding: chunked\nE ka=1 ch=1 cl=-1\nBx\n!EPROTO", EPROTO_),
    /* Trailers follow the header rules. */
    C("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX: y\r\n z\r\n\r\n",
      "S1 200 OK\nHTransfer-Encoding: chunked\nE ka=1 ch=1 cl=-1\n!EPROTO", EPROTO_),
    C("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nXy\r\n\r\n",
      "S1 200 OK\nHTransfer-Encoding: chunked\nE ka=1 ch=1 cl=-1\n!EPROTO", EPROTO_),
    C("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX: \x01\r\n\r\n",
      "S1 200 OK\nHTransfer-Encoding: chunked\nE ka=1 ch=1 cl=-1\n!EPROTO", EPROTO_),
    C("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\r\n",
      "S1 200 OK\nHTransfer-Encoding: chunked\nE ka=1 ch=1 cl=-1\n!EPROTO", EPROTO_),

    /* ---- Limits: -EMSGSIZE ---- */
    C("HTTP/1.1 200 OK\r\nContent-Length: 1099511627777\r\n\r\n", "S1 200 OK\n!EMSGSIZE",
      -EMSGSIZE),
    C("HTTP/1.1 200 OK\r\nContent-Length: 18446744073709551616\r\n\r\n", "S1 200 OK\n!EMSGSIZE",
      -EMSGSIZE),
    C("HTTP/1.1 200 OK\r\nContent-Length: 999999999999999999999999999999\r\n\r\n",
      "S1 200 OK\n!EMSGSIZE", -EMSGSIZE),
    CHEAD("HTTP/1.1 200 OK\r\nContent-Length: 1099511627777\r\n\r\n", "S1 200 OK\n!EMSGSIZE",
          -EMSGSIZE),
    C("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n10000000001\r\n",
      "S1 200 OK\nHTransfer-Encoding: chunked\nE ka=1 ch=1 cl=-1\n!EMSGSIZE", -EMSGSIZE),
    C("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffff\r\n",
      "S1 200 OK\nHTransfer-Encoding: chunked\nE ka=1 ch=1 cl=-1\n!EMSGSIZE", -EMSGSIZE),
    C("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n00000000000000001\r\n",
      "S1 200 OK\nHTransfer-Encoding: chunked\nE ka=1 ch=1 cl=-1\n!EMSGSIZE", -EMSGSIZE),
    C("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n00000000000000000x\r\n",
      "S1 200 OK\nHTransfer-Encoding: chunked\nE ka=1 ch=1 cl=-1\n!EMSGSIZE", -EMSGSIZE),
};

#define NCASES (sizeof(cases) / sizeof(cases[0]))

TEST(table)
{
    for (size_t i = 0; i < NCASES; i++) {
        const struct tcase *c = &cases[i];
        if (!feed(c->msg, c->len, NULL, 0, c->head, &whole_r)) {
            fprintf(stderr, "case %zu\n", i);
            CHECK(0);
        }
        if (strcmp(whole_r.text, c->expect) != 0 || whole_r.eof != c->eof) {
            fprintf(stderr, "case %zu \"%.60s\":\n  got:    %s [eof %d]\n  expect: %s [eof %d]\n",
                    i, c->msg, whole_r.text, whole_r.eof, c->expect, c->eof);
            CHECK(0);
        }
    }
}

TEST(table_every_split)
{
    for (size_t i = 0; i < NCASES; i++) {
        const struct tcase *c = &cases[i];
        if (!check_msg(c->msg, c->len, c->head, c->expect, c->eof)) {
            fprintf(stderr, "case %zu\n", i);
            CHECK(0);
        }
    }
}

/* All complete non-HEAD table responses back to back: one keep-alive stream. */
TEST(concatenated_stream_every_split)
{
    static char stream[16384];
    static char expect[32768];
    size_t n = 0;
    size_t en = 0;
    int used = 0;
    for (size_t i = 0; i < NCASES; i++) {
        const struct tcase *c = &cases[i];
        if (c->head || c->eof != 0 || c->len == 0)
            continue;
        CHECK(n + c->len <= sizeof(stream));
        memcpy(stream + n, c->msg, c->len);
        n += c->len;
        size_t el = strlen(c->expect);
        CHECK(en + el < sizeof(expect));
        memcpy(expect + en, c->expect, el + 1);
        en += el;
        used++;
    }
    CHECK(used >= 20);
    /* Every split point and every truncation; pairs are too many here. */
    CHECK(check_msg(stream, n, false, expect, 0));
}

/* ---- Typed checks that the rendering does not show ---- */

static int parse_str(struct lr_http_parser *p, const char *s, struct lr_http_token *tok)
{
    size_t n = strlen(s);
    return lr_http_parse(p, guard_tail(s, n), n, tok);
}

TEST(token_fields)
{
    struct lr_http_parser p;
    struct lr_http_token t;
    const char *in = "HTTP/1.0 201 Created\r\nETag: \"0x1\"\r\nConnection: keep-alive\r\n"
                     "Content-Length: 2\r\n\r\nok";
    size_t n = strlen(in);
    const char *b = guard_tail(in, n);
    size_t off = 0;
    int rc;

    lr_http_parser_init(&p, false);
    rc = lr_http_parse(&p, b, n, &t);
    CHECK_EQ(rc, 22);
    CHECK(t.type == LR_HTTP_STATUS && t.status == 201 && t.minor_version == 0);
    CHECK(t.str == b + 13 && t.len == 7 && !memcmp(t.str, "Created", 7));
    off += (size_t)rc;
    rc = lr_http_parse(&p, b + off, n - off, &t);
    CHECK_EQ(rc, 13);
    CHECK(t.type == LR_HTTP_HEADER && t.status == 201 && t.minor_version == 0);
    CHECK(t.str == b + off && t.len == 4 && t.value == b + off + 6 && t.value_len == 5);
    off += (size_t)rc;
    rc = lr_http_parse(&p, b + off, n - off, &t);
    CHECK_EQ(rc, 24);
    off += (size_t)rc;
    rc = lr_http_parse(&p, b + off, n - off, &t);
    CHECK_EQ(rc, 19);
    off += (size_t)rc;
    rc = lr_http_parse(&p, b + off, n - off, &t);
    CHECK_EQ(rc, 2);
    CHECK(t.type == LR_HTTP_HEADERS_END && t.status == 201 && t.keep_alive && !t.chunked);
    CHECK_EQ(t.content_length, 2);
    CHECK(t.str == NULL && t.len == 0 && t.value == NULL);
    off += (size_t)rc;
    rc = lr_http_parse(&p, b + off, n - off, &t);
    CHECK_EQ(rc, 2);
    CHECK(t.type == LR_HTTP_BODY && t.str == b + off && t.len == 2 && t.status == 201);
    CHECK(!t.keep_alive && t.content_length == -1);
    off += (size_t)rc;
    CHECK_EQ(off, n);
    /* The body ended with the buffer: END is still due and costs no bytes. */
    rc = lr_http_parse(&p, b + off, 0, &t);
    CHECK_EQ(rc, 0);
    CHECK(t.type == LR_HTTP_END && t.status == 201 && t.keep_alive && t.content_length == 2);
    CHECK_ERR(lr_http_parse(&p, b + off, 0, &t), -EAGAIN);
    CHECK_ERR(lr_http_parse(&p, NULL, 0, &t), -EAGAIN);
    CHECK_EQ(lr_http_parse_eof(&p, &t), 0);
}

/* One token per call; END that needs no bytes comes with 0, even for NULL. */
TEST(end_consumes_nothing)
{
    struct lr_http_parser p;
    struct lr_http_token t;
    const char *in = "HTTP/1.1 204 No Content\r\n\r\nHTTP/1.1 200 OK\r\n";
    size_t n = strlen(in);
    const char *b = guard_tail(in, n);

    lr_http_parser_init(&p, false);
    CHECK_EQ(lr_http_parse(&p, b, n, &t), 25);
    CHECK_EQ(lr_http_parse(&p, b + 25, n - 25, &t), 2);
    CHECK_EQ(t.type, LR_HTTP_HEADERS_END);
    /* Bytes of the next response are there, but END is the next token. */
    CHECK_EQ(lr_http_parse(&p, b + 27, n - 27, &t), 0);
    CHECK_EQ(t.type, LR_HTTP_END);
    CHECK_EQ(lr_http_parse(&p, b + 27, n - 27, &t), (int)(n - 27));
    CHECK(t.type == LR_HTTP_STATUS && t.status == 200);

    lr_http_parser_init(&p, false);
    CHECK_EQ(parse_str(&p, "HTTP/1.1 204 No Content\r\n", &t), 25);
    CHECK_EQ(parse_str(&p, "\r\n", &t), 2);
    CHECK_EQ(lr_http_parse(&p, NULL, 0, &t), 0);
    CHECK(t.type == LR_HTTP_END && t.status == 204 && t.keep_alive);
    CHECK_ERR(lr_http_parse(&p, NULL, 0, &t), -EAGAIN);

    /* END after chunked consumes the final CRLF. */
    lr_http_parser_init(&p, false);
    CHECK_EQ(parse_str(&p, "HTTP/1.1 200 OK\r\n", &t), 17);
    CHECK_EQ(parse_str(&p, "Transfer-Encoding: chunked\r\n", &t), 28);
    CHECK_EQ(parse_str(&p, "\r\n", &t), 2);
    CHECK_EQ(parse_str(&p, "0\r\n\r\nHTTP", &t), 5);
    CHECK(t.type == LR_HTTP_END && t.chunked && t.keep_alive);
}

/* Whole lines point into the caller's buffer; split ones into scratch; the
 * body always into the caller's buffer. */
TEST(zero_copy_and_scratch)
{
    struct lr_http_parser p;
    struct lr_http_token t;
    char a[64];
    char b[64];

    lr_http_parser_init(&p, false);
    memcpy(a, "HTTP/1.1 200 OK\r\n", 17);
    CHECK_EQ(lr_http_parse(&p, a, 17, &t), 17);
    CHECK(t.str == a + 13 && t.len == 2);

    /* A header split in its middle: name and value both in scratch. */
    memcpy(a, "X-Name: val\r\n", 13);
    CHECK_ERR(lr_http_parse(&p, a, 5, &t), -EAGAIN);
    memcpy(b, a + 5, 8);
    memset(a, '#', 13); /* the first part is gone: the token must not use it */
    CHECK_EQ(lr_http_parse(&p, b, 8, &t), 8);
    CHECK(t.str == p.scratch && t.len == 6 && !memcmp(t.str, "X-Name", 6));
    CHECK(t.value == p.scratch + 8 && t.value_len == 3 && !memcmp(t.value, "val", 3));

    /* CR and LF split: scratch. */
    memcpy(a, "Y: 1\r\n", 6);
    CHECK_ERR(lr_http_parse(&p, a, 5, &t), -EAGAIN);
    CHECK_EQ(lr_http_parse(&p, a + 5, 1, &t), 1);
    CHECK(t.str == p.scratch && t.len == 1 && t.value == p.scratch + 3 && t.value[0] == '1');

    /* A header whole after a split one: zero copy again. */
    memcpy(a, "Content-Length: 6\r\n\r\nabcdef", 27);
    CHECK_EQ(lr_http_parse(&p, a, 27, &t), 19);
    CHECK(t.str == a && t.value == a + 16);
    CHECK_EQ(lr_http_parse(&p, a + 19, 8, &t), 2);
    CHECK_EQ(t.type, LR_HTTP_HEADERS_END);
    /* Body pieces as they come. */
    CHECK_EQ(lr_http_parse(&p, a + 21, 1, &t), 1);
    CHECK(t.type == LR_HTTP_BODY && t.str == a + 21 && t.len == 1);
    CHECK_EQ(lr_http_parse(&p, a + 22, 5, &t), 5);
    CHECK(t.type == LR_HTTP_BODY && t.str == a + 22 && t.len == 5);
    CHECK_EQ(lr_http_parse(&p, a + 27, 0, &t), 0);
    CHECK_EQ(t.type, LR_HTTP_END);

    /* Chunk data: the size line and the data in one call, data pointed to. */
    lr_http_parser_init(&p, false);
    CHECK_EQ(parse_str(&p, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n", &t), 17);
    memcpy(a, "Transfer-Encoding: chunked\r\n\r\n3\r\nxyz\r\n", 38);
    CHECK_EQ(lr_http_parse(&p, a, 38, &t), 28);
    CHECK_EQ(lr_http_parse(&p, a + 28, 10, &t), 2);
    CHECK_EQ(lr_http_parse(&p, a + 30, 8, &t), 6);
    CHECK(t.type == LR_HTTP_BODY && t.str == a + 33 && t.len == 3);
    CHECK_ERR(lr_http_parse(&p, a + 36, 2, &t), -EAGAIN);
}

TEST(parse_eof)
{
    struct lr_http_parser p;
    struct lr_http_token t;

    /* Fresh, and between responses: nothing lost. */
    lr_http_parser_init(&p, false);
    CHECK_EQ(lr_http_parse_eof(&p, &t), 0);
    CHECK_EQ(lr_http_parse_eof(&p, &t), 0);

    /* An END still due (never collected) is delivered by EOF, with keep_alive off. */
    lr_http_parser_init(&p, false);
    CHECK_EQ(parse_str(&p, "HTTP/1.1 200 OK\r\n", &t), 17);
    CHECK_EQ(parse_str(&p, "Content-Length: 1\r\n\r\nx", &t), 19);
    CHECK_EQ(parse_str(&p, "\r\nx", &t), 2);
    CHECK_EQ(parse_str(&p, "x", &t), 1);
    CHECK_EQ(lr_http_parse_eof(&p, &t), 1);
    CHECK(t.type == LR_HTTP_END && t.status == 200 && !t.keep_alive);
    CHECK_EQ(lr_http_parse_eof(&p, &t), 0);
    /* The parser can go on (if the caller so wishes). */
    CHECK_EQ(parse_str(&p, "HTTP/1.1 204 No Content\r\n", &t), 25);

    /* Read-until-close: EOF is the END. */
    lr_http_parser_init(&p, false);
    CHECK_EQ(parse_str(&p, "HTTP/1.1 200 OK\r\n", &t), 17);
    CHECK_EQ(parse_str(&p, "\r\n", &t), 2);
    CHECK(t.type == LR_HTTP_HEADERS_END && !t.keep_alive && t.content_length == -1);
    CHECK_EQ(lr_http_parse_eof(&p, &t), 1);
    CHECK(t.type == LR_HTTP_END && !t.keep_alive && t.status == 200);

    /* Cut short: in the status line, the head, a body, a chunk; sticky. */
    static const char *const cut[] = {
        "H",
        "HTTP/1.1 200 OK\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\n",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nx",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n",
        "HTTP/1.1 100 Continue\r\n\r\n",
    };
    for (size_t i = 0; i < sizeof(cut) / sizeof(cut[0]); i++) {
        lr_http_parser_init(&p, false);
        const char *b = guard_tail(cut[i], strlen(cut[i]));
        size_t n = strlen(cut[i]);
        size_t off = 0;
        int rc;
        while ((rc = lr_http_parse(&p, b + off, n - off, &t)) >= 0)
            off += (size_t)rc;
        CHECK_ERR(rc, -EAGAIN);
        CHECK_ERR(lr_http_parse_eof(&p, &t), -EPROTO);
        CHECK_ERR(lr_http_parse_eof(&p, &t), -EPROTO);
        CHECK_ERR(parse_str(&p, "HTTP/1.1 200 OK\r\n", &t), -EPROTO);
    }

    /* A parse error stays the answer of EOF as well. */
    lr_http_parser_init(&p, false);
    CHECK_ERR(parse_str(&p, "HTTP/1.1 200 OK\r\nContent-Length: 1099511627777\r\n", &t), 17);
    CHECK_ERR(parse_str(&p, "Content-Length: 1099511627777\r\n", &t), -EMSGSIZE);
    CHECK_ERR(lr_http_parse_eof(&p, &t), -EMSGSIZE);
}

TEST(errors_are_sticky)
{
    struct lr_http_parser p;
    struct lr_http_token t;

    lr_http_parser_init(&p, false);
    CHECK_ERR(parse_str(&p, "HTTP/1.1 200 OK\n", &t), -EPROTO);
    CHECK_ERR(parse_str(&p, "HTTP/1.1 200 OK\r\n", &t), -EPROTO);
    CHECK_ERR(lr_http_parse(&p, NULL, 0, &t), -EPROTO);
    CHECK_ERR(lr_http_parse_eof(&p, &t), -EPROTO);
    lr_http_parser_init(&p, false);
    CHECK_EQ(parse_str(&p, "HTTP/1.1 200 OK\r\n", &t), 17);

    CHECK_ERR(parse_str(&p, "Content-Length: 99999999999999\r\n", &t), -EMSGSIZE);
    CHECK_ERR(parse_str(&p, "Content-Length: 1\r\n", &t), -EMSGSIZE);
    CHECK_ERR(parse_str(&p, "\n", &t), -EMSGSIZE);
    CHECK_ERR(lr_http_parse(&p, NULL, 0, &t), -EMSGSIZE);
    CHECK_ERR(lr_http_parse_eof(&p, &t), -EMSGSIZE);
    lr_http_parser_init(&p, false);
    CHECK_EQ(parse_str(&p, "HTTP/1.1 200 OK\r\n", &t), 17);

    /* An error inside a body stays too. */
    CHECK_EQ(parse_str(&p, "Transfer-Encoding: chunked\r\n", &t), 28);
    CHECK_EQ(parse_str(&p, "\r\n", &t), 2);
    CHECK_EQ(parse_str(&p, "1\r\nab", &t), 4);
    CHECK_ERR(parse_str(&p, "b\r\n", &t), -EPROTO);
    CHECK_ERR(parse_str(&p, "\r\n", &t), -EPROTO);
}

/* The HEAD flag lasts across responses until init changes it. */
TEST(head_flag)
{
    struct lr_http_parser p;
    struct lr_http_token t;
    const char *resp = "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\n";

    lr_http_parser_init(&p, true);
    for (int round = 0; round < 3; round++) {
        CHECK_EQ(parse_str(&p, resp, &t), 17);
        CHECK_EQ(parse_str(&p, resp + 17, &t), 19);
        CHECK_EQ(parse_str(&p, resp + 36, &t), 2);
        CHECK(t.type == LR_HTTP_HEADERS_END && t.content_length == -1 && t.keep_alive);
        CHECK_EQ(lr_http_parse(&p, NULL, 0, &t), 0);
        CHECK_EQ(t.type, LR_HTTP_END);
    }
    lr_http_parser_init(&p, false);
    CHECK_EQ(parse_str(&p, resp, &t), 17);
    CHECK_EQ(parse_str(&p, resp + 17, &t), 19);
    CHECK_EQ(parse_str(&p, resp + 36, &t), 2);
    CHECK(t.type == LR_HTTP_HEADERS_END && t.content_length == 3);
}

/* ---- Limits, with generated inputs ---- */

static char big[4 * LR_HTTP_MAX_LINE];
static char big_expect[8 * LR_HTTP_MAX_LINE];

/* @prefix, then @n copies of @c, then @tail. */
static size_t make(const char *prefix, size_t n, char c, const char *tail)
{
    size_t pl = strlen(prefix);
    size_t tl = strlen(tail);
    memcpy(big, prefix, pl);
    memset(big + pl, c, n);
    memcpy(big + pl + n, tail, tl);
    return pl + n + tl;
}

#define STATUS_PREFIX "HTTP/1.1 200 "
#define CHUNKED_HEAD "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
#define CHUNKED_EXPECT "S1 200 OK\nHTransfer-Encoding: chunked\nE ka=1 ch=1 cl=-1\n"

TEST(line_length_limit)
{
    const size_t sp = strlen(STATUS_PREFIX);
    const size_t max = LR_HTTP_MAX_LINE;
    size_t n;

    /* Status line of exactly LR_HTTP_MAX_LINE bytes. */
    n = make(STATUS_PREFIX, max - sp, 'r', "\r\nContent-Length: 0\r\n\r\n");
    snprintf(big_expect, sizeof(big_expect),
             "S1 200 %.*s\nHContent-Length: 0\nE ka=1 ch=0 cl=0\nEND ka=1\n", (int)(max - sp),
             big + sp);
    CHECK(check_msg(big, n, false, big_expect, 0));
    /* One more: refused, with or without a CRLF, without waiting for one. */
    n = make(STATUS_PREFIX, max - sp + 1, 'r', "\r\n");
    CHECK(check_msg(big, n, false, "!EMSGSIZE", -EMSGSIZE));
    n = make(STATUS_PREFIX, max - sp + 1, 'r', "");
    CHECK(check_msg(big, n, false, "!EMSGSIZE", -EMSGSIZE));
    n = make(STATUS_PREFIX, max - sp + 1, 'r', "\n");
    CHECK(check_msg(big, n, false, "!EMSGSIZE", -EMSGSIZE));
    n = make(STATUS_PREFIX, max - sp + 1, 'r', "\r");
    CHECK(check_msg(big, n, false, "!EMSGSIZE", -EMSGSIZE));
    /* Exactly the limit: pending until the CRLF. */
    n = make(STATUS_PREFIX, max - sp, 'r', "");
    CHECK(check_msg(big, n, false, "...", -EPROTO));
    n = make(STATUS_PREFIX, max - sp, 'r', "\r");
    CHECK(check_msg(big, n, false, "...", -EPROTO));
    /* The limit, then CR and no LF: the line did not end in time. */
    n = make(STATUS_PREFIX, max - sp, 'r', "\rx");
    CHECK(check_msg(big, n, false, "!EMSGSIZE", -EMSGSIZE));
    /* A bare LF right after a full-length line is a framing error. */
    n = make(STATUS_PREFIX, max - sp, 'r', "\n");
    CHECK(check_msg(big, n, false, "!EPROTO", -EPROTO));
    /* An endless line of garbage is refused at the limit too. */
    n = make("", 3 * max, 'x', "");
    CHECK(check_msg(big, n, false, "!EMSGSIZE", -EMSGSIZE));

    /* Header line of exactly the limit, and one more. */
    const char *hp = "HTTP/1.1 200 OK\r\nX: ";
    size_t hl = strlen(hp) - 17;
    n = make(hp, max - hl, 'v', "\r\nContent-Length: 0\r\n\r\n");
    snprintf(big_expect, sizeof(big_expect),
             "S1 200 OK\nHX: %.*s\nHContent-Length: 0\nE ka=1 ch=0 cl=0\nEND ka=1\n",
             (int)(max - hl), big + strlen(hp));
    CHECK(check_msg(big, n, false, big_expect, 0));
    n = make(hp, max - hl + 1, 'v', "\r\n\r\n");
    CHECK(check_msg(big, n, false, "S1 200 OK\n!EMSGSIZE", -EMSGSIZE));
    n = make(hp, max - hl + 1, 'v', "");
    CHECK(check_msg(big, n, false, "S1 200 OK\n!EMSGSIZE", -EMSGSIZE));
    /* Trailing whitespace counts toward the line although it is trimmed. */
    n = make(hp, max - hl - 1, 'v', "  \r\n\r\n");
    CHECK(check_msg(big, n, false, "S1 200 OK\n!EMSGSIZE", -EMSGSIZE));

    /* Chunk-size line: extensions are bounded by the line limit. */
    n = make(CHUNKED_HEAD "1;", max - 2, 'e', "\r\nx\r\n0\r\n\r\n");
    CHECK(check_msg(big, n, false, CHUNKED_EXPECT "Bx\nEND ka=1\n", 0));
    n = make(CHUNKED_HEAD "1;", max - 1, 'e', "\r\nx\r\n0\r\n\r\n");
    CHECK(check_msg(big, n, false, CHUNKED_EXPECT "!EMSGSIZE", -EMSGSIZE));

    /* Trailer line. */
    n = make(CHUNKED_HEAD "0\r\nT:", max - 2, 't', "\r\n\r\n");
    CHECK(check_msg(big, n, false, CHUNKED_EXPECT "END ka=1\n", 0));
    n = make(CHUNKED_HEAD "0\r\nT:", max - 1, 't', "\r\n\r\n");
    CHECK(check_msg(big, n, false, CHUNKED_EXPECT "!EMSGSIZE", -EMSGSIZE));
}

/* n header lines "Hk: v" (k = 0..n-1), after @first if given. */
static size_t make_headers(size_t pos, int n, const char *first)
{
    if (first) {
        memcpy(big + pos, first, strlen(first));
        pos += strlen(first);
    }
    for (int k = 0; k < n; k++)
        pos += (size_t)snprintf(big + pos, sizeof(big) - pos, "H%d: v\r\n", k);
    return pos;
}

TEST(header_count_limit)
{
    size_t n;
    size_t en;

    /* LR_HTTP_MAX_HEADERS headers are fine. */
    n = (size_t)snprintf(big, sizeof(big), "HTTP/1.1 200 OK\r\n");
    n = make_headers(n, LR_HTTP_MAX_HEADERS - 1, "Content-Length: 0\r\n");
    n += (size_t)snprintf(big + n, sizeof(big) - n, "\r\n");
    en = (size_t)snprintf(big_expect, sizeof(big_expect), "S1 200 OK\nHContent-Length: 0\n");
    for (int k = 0; k < LR_HTTP_MAX_HEADERS - 1; k++)
        en += (size_t)snprintf(big_expect + en, sizeof(big_expect) - en, "HH%d: v\n", k);
    snprintf(big_expect + en, sizeof(big_expect) - en, "E ka=1 ch=0 cl=0\nEND ka=1\n");
    CHECK(check_msg(big, n, false, big_expect, 0));

    /* One more is refused. */
    n = (size_t)snprintf(big, sizeof(big), "HTTP/1.1 200 OK\r\n");
    n = make_headers(n, LR_HTTP_MAX_HEADERS + 1, NULL);
    en = (size_t)snprintf(big_expect, sizeof(big_expect), "S1 200 OK\n");
    for (int k = 0; k < LR_HTTP_MAX_HEADERS; k++)
        en += (size_t)snprintf(big_expect + en, sizeof(big_expect) - en, "HH%d: v\n", k);
    snprintf(big_expect + en, sizeof(big_expect) - en, "!EMSGSIZE");
    CHECK(check_msg(big, n, false, big_expect, -EMSGSIZE));

    /* Trailers share the budget: 99 headers + 1 trailer fit, + 2 do not. */
    for (int extra = 1; extra <= 2; extra++) {
        n = (size_t)snprintf(big, sizeof(big), "HTTP/1.1 200 OK\r\n");
        n = make_headers(n, LR_HTTP_MAX_HEADERS - 1 - 1, "Transfer-Encoding: chunked\r\n");
        n += (size_t)snprintf(big + n, sizeof(big) - n, "\r\n1\r\nz\r\n0\r\n");
        for (int k = 0; k < extra; k++)
            n += (size_t)snprintf(big + n, sizeof(big) - n, "T%d: t\r\n", k);
        n += (size_t)snprintf(big + n, sizeof(big) - n, "\r\n");
        en = (size_t)snprintf(big_expect, sizeof(big_expect),
                              "S1 200 OK\nHTransfer-Encoding: chunked\n");
        for (int k = 0; k < LR_HTTP_MAX_HEADERS - 2; k++)
            en += (size_t)snprintf(big_expect + en, sizeof(big_expect) - en, "HH%d: v\n", k);
        snprintf(big_expect + en, sizeof(big_expect) - en, "E ka=1 ch=1 cl=-1\nBz\n%s",
                 extra == 1 ? "END ka=1\n" : "!EMSGSIZE");
        CHECK(check_msg(big, n, false, big_expect, extra == 1 ? 0 : -EMSGSIZE));
    }

    /* The count starts again with each response. */
    struct lr_http_parser p;
    struct lr_http_token t;
    n = (size_t)snprintf(big, sizeof(big), "HTTP/1.1 200 OK\r\n");
    n = make_headers(n, LR_HTTP_MAX_HEADERS - 1, "Content-Length: 0\r\n");
    n += (size_t)snprintf(big + n, sizeof(big) - n, "\r\n");
    lr_http_parser_init(&p, false);
    for (int round = 0; round < 5; round++) {
        size_t off = 0;
        int rc;
        int tokens = 0;
        while ((rc = lr_http_parse(&p, big + off, n - off, &t)) >= 0) {
            off += (size_t)rc;
            tokens++;
        }
        CHECK_ERR(rc, -EAGAIN);
        CHECK_EQ(off, n);
        CHECK_EQ(tokens, 1 + LR_HTTP_MAX_HEADERS + 2);
        CHECK_EQ(t.type, LR_HTTP_END);
    }
}

/* A large body in random pieces: every byte delivered once, in place. */
TEST(large_body_in_pieces)
{
    static char msg[300000];
    const size_t body = 250000;
    size_t h =
        (size_t)snprintf(msg, sizeof(msg), "HTTP/1.1 200 OK\r\nContent-Length: %zu\r\n\r\n", body);
    for (size_t i = 0; i < body; i++)
        msg[h + i] = (char)(i * 7 + (i >> 8));
    size_t n = h + body;
    memcpy(msg + n, "HTTP/1.1 204 No Content\r\n\r\n", 27);
    n += 27;

    uint32_t rng = 12345;
    for (int round = 0; round < 20; round++) {
        struct lr_http_parser p;
        struct lr_http_token t;
        size_t pos = 0;
        size_t got = 0;
        int ends = 0;
        lr_http_parser_init(&p, false);
        while (pos < n) {
            rng = rng * 1103515245u + 12345u;
            size_t want = 1 + (rng >> 8) % (round < 10 ? 64 : 40000);
            size_t len = want < n - pos ? want : n - pos;
            const char *chunk = guard_tail(msg + pos, len);
            size_t off = 0;
            int rc;
            while ((rc = lr_http_parse(&p, chunk + off, len - off, &t)) >= 0) {
                if (t.type == LR_HTTP_BODY) {
                    CHECK(t.str == chunk + off + rc - t.len);
                    CHECK(!memcmp(t.str, msg + h + got, t.len));
                    got += t.len;
                }
                ends += t.type == LR_HTTP_END;
                off += (size_t)rc;
            }
            CHECK_ERR(rc, -EAGAIN);
            pos += len;
        }
        CHECK_EQ(got, body);
        CHECK_EQ(ends, 2);
        CHECK_EQ(lr_http_parse_eof(&p, &t), 0);
    }
}

/* ---- Writer ---- */

/* The buffer still holds its fill pattern: a failed call wrote nothing. */
static bool untouched(const char *out, size_t cap)
{
    for (size_t i = 0; i < cap; i++) {
        if (out[i] != '@')
            return false;
    }
    return true;
}

static char *fresh_out(size_t cap)
{
    char *out = guard_out(cap);
    memset(out, '@', cap);
    return out;
}

#define S(s) s, sizeof(s) - 1

/* A writer argument: bytes and length (which may cover NULs). */
struct bytes {
    const char *s;
    size_t n;
};

TEST(write_request_line)
{
    const char *want = "PUT /devstoreaccount1/leases/b1?comp=lease HTTP/1.1\r\n";
    size_t wl = strlen(want);
    char *out = fresh_out(wl);

    CHECK_EQ(
        lr_http_write_request_line(out, wl, S("PUT"), S("/devstoreaccount1/leases/b1?comp=lease")),
        wl);
    CHECK(!memcmp(out, want, wl));
    for (size_t cap = 0; cap < wl; cap++) {
        out = fresh_out(cap);
        CHECK_ERR(lr_http_write_request_line(out, cap, S("PUT"),
                                             S("/devstoreaccount1/leases/b1?comp=lease")),
                  -ENOBUFS);
        CHECK(untouched(out, cap));
    }
    /* Extension methods are tokens too; the target may be "*" or absolute. */
    char buf[128];
    CHECK_EQ(lr_http_write_request_line(buf, sizeof(buf), S("OPTIONS"), S("*")), 20);
    CHECK(!memcmp(buf, "OPTIONS * HTTP/1.1\r\n", 20));
    CHECK_EQ(lr_http_write_request_line(buf, sizeof(buf), S("M-SEARCH"), S("http://h/p")), 30);
    CHECK(!memcmp(buf, "M-SEARCH http://h/p HTTP/1.1\r\n", 30));

    /* Anything that could end the line or split it differently. */
    static const struct bytes bad_method[] = {
        {S("")},      {S("P UT")}, {S("PUT ")}, {S("PUT\r")},    {S("PUT\n")},       {S("P\0T")},
        {S("PUT\t")}, {S("GET/")}, {S("P:T")},  {S("\xc3\xa9")}, {S("PUT\r\nX: y")},
    };
    static const struct bytes bad_target[] = {
        {S("")},      {S("/a b")},  {S("/a\r")},
        {S("/a\n")},  {S("/a\0b")}, {S("/a\tb")},
        {S("/\x7f")}, {S("/\x01")}, {S("/ HTTP/1.1\r\nX: y\r\n")},
    };
    for (size_t i = 0; i < sizeof(bad_method) / sizeof(bad_method[0]); i++) {
        out = fresh_out(sizeof(buf));
        CHECK_ERR(
            lr_http_write_request_line(out, sizeof(buf), bad_method[i].s, bad_method[i].n, S("/")),
            -EINVAL);
        CHECK(untouched(out, sizeof(buf)));
    }
    for (size_t i = 0; i < sizeof(bad_target) / sizeof(bad_target[0]); i++) {
        out = fresh_out(sizeof(buf));
        CHECK_ERR(lr_http_write_request_line(out, sizeof(buf), S("GET"), bad_target[i].s,
                                             bad_target[i].n),
                  -EINVAL);
        CHECK(untouched(out, sizeof(buf)));
    }
    /* obs-text in a target does not break the message. */
    CHECK_EQ(lr_http_write_request_line(buf, sizeof(buf), S("GET"), S("/\xc3\xa9")), 18);
}

TEST(write_header)
{
    const char *want = "x-ms-lease-action: acquire\r\n";
    size_t wl = strlen(want);
    char *out = fresh_out(wl);

    CHECK_EQ(lr_http_write_header(out, wl, S("x-ms-lease-action"), S("acquire")), wl);
    CHECK(!memcmp(out, want, wl));
    for (size_t cap = 0; cap < wl; cap++) {
        out = fresh_out(cap);
        CHECK_ERR(lr_http_write_header(out, cap, S("x-ms-lease-action"), S("acquire")), -ENOBUFS);
        CHECK(untouched(out, cap));
    }

    char buf[128];
    /* Empty value; quoted ETag; HTAB, inner spaces and obs-text are kept. */
    CHECK_EQ(lr_http_write_header(buf, sizeof(buf), S("X-Empty"), NULL, 0), 11);
    CHECK(!memcmp(buf, "X-Empty: \r\n", 11));
    CHECK_EQ(lr_http_write_header(buf, sizeof(buf), S("If-Match"), S("\"0x1D2E\"")), 20);
    CHECK(!memcmp(buf, "If-Match: \"0x1D2E\"\r\n", 20));
    CHECK_EQ(lr_http_write_header(buf, sizeof(buf), S("X"), S("a\tb  c\xff")), 12);
    CHECK(!memcmp(buf, "X: a\tb  c\xff\r\n", 12));

    static const struct bytes bad_name[] = {
        {S("")},    {S("X Y")}, {S("X:")}, {S("X\r")},      {S("X\n")},       {S("X\0")},
        {S("X\t")}, {S(" X")},  {S("X(")}, {S("\xc3\xa9")}, {S("X: a\r\nY")},
    };
    static const struct bytes bad_value[] = {
        {S("a\rb")},
        {S("a\nb")},
        {S("a\0b")},
        {S("\r\n")},
        {S("a\x01")},
        {S("a\x7f")},
        {S("v\r\nX-Injected: 1")},
    };
    for (size_t i = 0; i < sizeof(bad_name) / sizeof(bad_name[0]); i++) {
        out = fresh_out(sizeof(buf));
        CHECK_ERR(lr_http_write_header(out, sizeof(buf), bad_name[i].s, bad_name[i].n, S("v")),
                  -EINVAL);
        CHECK(untouched(out, sizeof(buf)));
        out = fresh_out(sizeof(buf));
        CHECK_ERR(lr_http_write_header_u64(out, sizeof(buf), bad_name[i].s, bad_name[i].n, 1),
                  -EINVAL);
        CHECK(untouched(out, sizeof(buf)));
    }
    for (size_t i = 0; i < sizeof(bad_value) / sizeof(bad_value[0]); i++) {
        out = fresh_out(sizeof(buf));
        CHECK_ERR(lr_http_write_header(out, sizeof(buf), S("X"), bad_value[i].s, bad_value[i].n),
                  -EINVAL);
        CHECK(untouched(out, sizeof(buf)));
    }
}

TEST(write_header_u64)
{
    static const struct {
        uint64_t v;
        const char *want;
    } u[] = {
        {0, "Content-Length: 0\r\n"},
        {9, "Content-Length: 9\r\n"},
        {10, "Content-Length: 10\r\n"},
        {30000, "Content-Length: 30000\r\n"},
        {UINT64_MAX, "Content-Length: 18446744073709551615\r\n"},
    };
    for (size_t i = 0; i < sizeof(u) / sizeof(u[0]); i++) {
        size_t wl = strlen(u[i].want);
        char *out = fresh_out(wl);
        CHECK_EQ(lr_http_write_header_u64(out, wl, S("Content-Length"), u[i].v), wl);
        CHECK(!memcmp(out, u[i].want, wl));
        for (size_t cap = 0; cap < wl; cap++) {
            out = fresh_out(cap);
            CHECK_ERR(lr_http_write_header_u64(out, cap, S("Content-Length"), u[i].v), -ENOBUFS);
            CHECK(untouched(out, cap));
        }
    }
    /* Every power of ten and its predecessor against printf. */
    uint64_t v = 1;
    for (int k = 0; k < 20; k++, v *= 10) {
        for (uint64_t x = v - 1; x <= v; x++) {
            char want[64];
            char got[64];
            int wl = snprintf(want, sizeof(want), "x-ms-lease-duration: %" PRIu64 "\r\n", x);
            CHECK_EQ(lr_http_write_header_u64(got, sizeof(got), S("x-ms-lease-duration"), x), wl);
            CHECK(!memcmp(got, want, (size_t)wl));
        }
    }
}

TEST(write_end)
{
    char *out = fresh_out(2);
    CHECK_EQ(lr_http_write_end(out, 2), 2);
    CHECK(!memcmp(out, "\r\n", 2));
    for (size_t cap = 0; cap < 2; cap++) {
        out = fresh_out(cap);
        CHECK_ERR(lr_http_write_end(out, cap), -ENOBUFS);
        CHECK(untouched(out, cap));
    }
}

/* A whole request built piecewise, as the Azure backend will. */
TEST(write_request)
{
    const char *want = "PUT /devstoreaccount1/leases/b1?comp=lease HTTP/1.1\r\n"
                       "Host: 127.0.0.1:10000\r\n"
                       "x-ms-lease-action: acquire\r\n"
                       "x-ms-lease-duration: 15\r\n"
                       "Content-Length: 0\r\n"
                       "\r\n";
    char buf[256];
    size_t off = 0;
    int rc;

    rc = lr_http_write_request_line(buf, sizeof(buf), S("PUT"),
                                    S("/devstoreaccount1/leases/b1?comp=lease"));
    CHECK(rc > 0);
    off += (size_t)rc;
    rc = lr_http_write_header(buf + off, sizeof(buf) - off, S("Host"), S("127.0.0.1:10000"));
    CHECK(rc > 0);
    off += (size_t)rc;
    rc = lr_http_write_header(buf + off, sizeof(buf) - off, S("x-ms-lease-action"), S("acquire"));
    CHECK(rc > 0);
    off += (size_t)rc;
    rc = lr_http_write_header_u64(buf + off, sizeof(buf) - off, S("x-ms-lease-duration"), 15);
    CHECK(rc > 0);
    off += (size_t)rc;
    rc = lr_http_write_header_u64(buf + off, sizeof(buf) - off, S("Content-Length"), 0);
    CHECK(rc > 0);
    off += (size_t)rc;
    rc = lr_http_write_end(buf + off, sizeof(buf) - off);
    CHECK_EQ(rc, 2);
    off += 2;
    CHECK_EQ(off, strlen(want));
    CHECK(!memcmp(buf, want, off));
}

TESTS(T(table), T(table_every_split), T(concatenated_stream_every_split), T(token_fields),
      T(end_consumes_nothing), T(zero_copy_and_scratch), T(parse_eof), T(errors_are_sticky),
      T(head_flag), T(line_length_limit), T(header_count_limit), T(large_body_in_pieces),
      T(write_request_line), T(write_header), T(write_header_u64), T(write_end), T(write_request))
