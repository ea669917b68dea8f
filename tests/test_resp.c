/* SPDX-License-Identifier: MIT */
/*
 * test_resp.c - the RESP writer and parser.
 *
 * Every parse goes through feed(), which copies each chunk to the very end of
 * a mapping followed by a PROT_NONE page (picohttpparser's test.c trick), so
 * any read past the chunk faults at once. A parse is rendered to text (one
 * word per token: type, depth, n for nil, L for last, then =value) so that
 * table entries state their whole expected token stream in one string, and
 * so that split runs can be compared with the unsplit run by strcmp. Every
 * table entry, valid or not, is re-run at every split point, at every pair of
 * split points (short inputs), one byte at a time, and truncated at every
 * length.
 */
#include <errno.h>
#include <stdbool.h>

#include "guard.h"
#include "harness.h"
#include "resp.h"

/* ---- Rendering a token stream ---- */

struct render {
    char text[1 << 17];
    size_t n;
    int err;      /* first error other than -EAGAIN, or 0 */
    bool pending; /* input ended inside a token */
    bool last;    /* the last token completed a reply */
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

static bool has_integer(uint8_t type)
{
    return strchr(":#*%~>|", type) != NULL;
}

static bool has_string(uint8_t type)
{
    return strchr("+-$,(!=", type) != NULL;
}

static void render_tok(struct render *r, const struct lr_resp_token *t)
{
    char tmp[64];
    int n = snprintf(tmp, sizeof(tmp), "%c%u%s%s", t->type, t->depth, t->nil ? "n" : "",
                     t->last ? "L" : "");
    put(r, tmp, (size_t)n);
    if (t->str) {
        put(r, "=", 1);
        for (size_t i = 0; i < t->len; i++) {
            unsigned char c = (unsigned char)t->str[i];
            if (c >= 0x20 && c < 0x7f && c != '\\') {
                put(r, (const char *)&c, 1);
            } else {
                n = snprintf(tmp, sizeof(tmp), "\\x%02x", c);
                put(r, tmp, (size_t)n);
            }
        }
    } else if (has_integer(t->type)) {
        n = snprintf(tmp, sizeof(tmp), "=%lld", (long long)t->integer);
        put(r, tmp, (size_t)n);
    }
    put(r, " ", 1);
    r->last = t->last;
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

static struct lr_resp_parser parser;

/*
 * Parse msg[0..len) delivered in chunks that end at cuts[0..ncuts) (ascending)
 * and at len, each chunk at the end of the guard page. Returns false if a
 * token or return value breaks the contract.
 */
static bool feed(const char *msg, size_t len, const size_t *cuts, size_t ncuts, struct render *r)
{
    struct lr_resp_parser *p = &parser;
    struct lr_resp_token dummy;
    size_t start = 0;
    int rc = 0;

    lr_resp_parser_init(p);
    r->n = 0;
    r->text[0] = '\0';
    r->err = 0;
    r->pending = false;
    r->last = false;
    r->ntok = 0;
    for (size_t c = 0; c <= ncuts; c++) {
        size_t stop = c < ncuts ? cuts[c] : len;
        if (stop <= start)
            continue;
        size_t n = stop - start;
        const char *chunk = guard_tail(msg + start, n);
        size_t off = 0;
        while (off < n) {
            struct lr_resp_token tok;
            memset(&tok, 0xa5, sizeof(tok));
            rc = lr_resp_parse(p, chunk + off, n - off, &tok);
            if (rc == -EAGAIN)
                break;
            if (rc < 0)
                goto failed;
            SANE(rc > 0 && (size_t)rc <= n - off);
            SANE(tok.depth <= LR_RESP_MAX_DEPTH);
            SANE(tok.len <= LR_RESP_MAX_STR);
            SANE((tok.str != NULL) == (has_string(tok.type) && !tok.nil));
            SANE(tok.str != NULL || tok.len == 0);
            SANE(!has_string(tok.type) || tok.integer == 0);
            if (tok.str) {
                bool in_chunk = tok.str >= chunk + off && tok.str + tok.len <= chunk + off + rc;
                bool in_scratch =
                    tok.str >= p->scratch && tok.str + tok.len <= p->scratch + sizeof(p->scratch);
                SANE(in_chunk || in_scratch);
            }
            render_tok(r, &tok);
            off += (size_t)rc;
        }
        start = stop;
    }
    if (rc == -EAGAIN) {
        r->pending = true;
        puts_r(r, "...");
    }
    SANE(lr_resp_parse(p, NULL, 0, &dummy) == -EAGAIN);
    return true;

failed:
    r->err = rc;
    put(r, "!", 1);
    puts_r(r, guard_err_name(rc));
    /* Sticky: neither good bytes nor an empty call may clear it. */
    SANE(lr_resp_parse(p, guard_tail("+OK\r\n", 5), 5, &dummy) == rc);
    SANE(lr_resp_parse(p, NULL, 0, &dummy) == rc);
    return true;
}

static struct render whole_r;
static struct render split_r;

/* A render as guard_check_splits compares it. */
static struct guard_view view(const struct render *r)
{
    return (struct guard_view){.text = r->text, .n = r->n, .err = r->err, .pending = r->pending,
                               .eof = 0};
}

static bool split_feed(void *ctx, const char *msg, size_t len, const size_t *cuts, size_t ncuts,
                       struct guard_view *out)
{
    (void)ctx;
    if (!feed(msg, len, cuts, ncuts, &split_r))
        return false;
    *out = view(&split_r);
    return true;
}

/*
 * The unsplit parse of msg must render as @expect (if given), and every way
 * of splitting it must render identically; every truncation must render as a
 * token-prefix of it, ending pending or with the same error.
 */
static bool check_msg(const char *msg, size_t len, const char *expect)
{
    static const struct guard_split g = {.feed = split_feed, .pairs_max = 48};
    if (!feed(msg, len, NULL, 0, &whole_r))
        return false;
    if (expect && strcmp(whole_r.text, expect) != 0) {
        fprintf(stderr, "parse of \"%.60s\":\n  got:    %.300s\n  expect: %.300s\n", msg,
                whole_r.text, expect);
        return false;
    }
    struct guard_view whole = view(&whole_r);
    return guard_check_splits(&g, &whole, msg, len);
}

/* ---- The table ---- */

struct tcase {
    const char *msg;
    size_t len;
    const char *expect;
};

#define C(m, e)                                                                                    \
    {                                                                                              \
        m, sizeof(m) - 1, e                                                                        \
    }

static const struct tcase cases[] = {
    /* Every type. */
    C("+OK\r\n", "+0L=OK "),
    C("+\r\n", "+0L= "),
    C("-ERR unknown command 'x'\r\n", "-0L=ERR unknown command 'x' "),
    C("-NOSCRIPT No matching script\r\n", "-0L=NOSCRIPT No matching script "),
    C(":0\r\n", ":0L=0 "),
    C(":1000\r\n", ":0L=1000 "),
    C(":-42\r\n", ":0L=-42 "),
    C(":-0\r\n", ":0L=0 "),
    C(":9223372036854775807\r\n", ":0L=9223372036854775807 "),
    C(":-9223372036854775808\r\n", ":0L=-9223372036854775808 "),
    C(":0000000000000000001\r\n", ":0L=1 "),
    C("$3\r\nabc\r\n", "$0L=abc "),
    C("$0\r\n\r\n", "$0L= "),
    C("$-1\r\n", "$0nL "),
    C("$4\r\na\r\nb\r\n", "$0L=a\\x0d\\x0ab "),
    C("$3\r\n\0\xff\\\r\n", "$0L=\\x00\\xff\\x5c "),
    C("$2\r\n\r\n\r\n", "$0L=\\x0d\\x0a "),
    C("*-1\r\n", "*0nL=-1 "),
    C("*0\r\n", "*0L=0 "),
    C("*1\r\n+x\r\n", "*0=1 +1L=x "),
    C("*2\r\n*2\r\n:1\r\n:2\r\n$3\r\nabc\r\n", "*0=2 *1=2 :2=1 :2=2 $1L=abc "),
    C("*2\r\n$3\r\nabc\r\n*2\r\n:1\r\n:2\r\n", "*0=2 $1=abc *1=2 :2=1 :2L=2 "),
    C("*3\r\n$-1\r\n*-1\r\n*0\r\n", "*0=3 $1n *1n=-1 *1L=0 "),
    C("*2\r\n*1\r\n*1\r\n:7\r\n+z\r\n", "*0=2 *1=1 *2=1 :3=7 +1L=z "),
    C("_\r\n", "_0nL "),
    C("#t\r\n", "#0L=1 "),
    C("#f\r\n", "#0L=0 "),
    C(",1.23\r\n", ",0L=1.23 "),
    C(",-inf\r\n", ",0L=-inf "),
    C(",nan\r\n", ",0L=nan "),
    C(",1e300\r\n", ",0L=1e300 "),
    C("(3492890328409238509324850943850943825024385\r\n",
      "(0L=3492890328409238509324850943850943825024385 "),
    C("(-3492890328409238509324850943850943825024385\r\n",
      "(0L=-3492890328409238509324850943850943825024385 "),
    C("(0\r\n", "(0L=0 "),
    C("!21\r\nSYNTAX invalid syntax\r\n", "!0L=SYNTAX invalid syntax "),
    C("!-1\r\n", "!0nL "),
    C("=15\r\ntxt:Some string\r\n", "=0L=txt:Some string "),
    C("=4\r\nmkd:\r\n", "=0L=mkd: "),
    C("%2\r\n+first\r\n:1\r\n+second\r\n:2\r\n", "%0=2 +1=first :1=1 +1=second :1L=2 "),
    C("%0\r\n", "%0L=0 "),
    C("%1\r\n$1\r\nk\r\n*2\r\n:1\r\n:2\r\n", "%0=1 $1=k *1=2 :2=1 :2L=2 "),
    C("~3\r\n+a\r\n+b\r\n+c\r\n", "~0=3 +1=a +1=b +1L=c "),
    C("~0\r\n", "~0L=0 "),
    C(">3\r\n+message\r\n+chan\r\n+hello\r\n", ">0=3 +1=message +1=chan +1L=hello "),
    C(">0\r\n", ">0L=0 "),
    C("*1\r\n>1\r\n:1\r\n", "*0=1 >1=1 :2L=1 "),
    /* Attributes: never the reply themselves; the element after them is. */
    C("|1\r\n+a\r\n+b\r\n:5\r\n", "|0=1 +1=a +1=b :0L=5 "),
    C("|0\r\n:1\r\n", "|0=0 :0L=1 "),
    C("|1\r\n+key-popularity\r\n%2\r\n$1\r\na\r\n,0.1923\r\n$1\r\nb\r\n,0.0012\r\n"
      "*2\r\n:2039123\r\n:9543892\r\n",
      "|0=1 +1=key-popularity %1=2 $2=a ,2=0.1923 $2=b ,2=0.0012 *0=2 :1=2039123 "
      ":1L=9543892 "),
    C("*2\r\n:1\r\n|1\r\n+ttl\r\n:3600\r\n:2\r\n", "*0=2 :1=1 |1=1 +2=ttl :2=3600 :1L=2 "),
    C("|1\r\n|1\r\n+x\r\n+y\r\n+k\r\n+v\r\n+r\r\n", "|0=1 |1=1 +2=x +2=y +1=k +1=v +0L=r "),
    C("|1\r\n+a\r\n*1\r\n:1\r\n*0\r\n", "|0=1 +1=a *1=1 :2=1 *0L=0 "),
    C("|1\r\n+a\r\n+b\r\n|1\r\n+c\r\n+d\r\n_\r\n", "|0=1 +1=a +1=b |0=1 +1=c +1=d _0nL "),
    /* Several replies back to back. */
    C("+OK\r\n:1\r\n$-1\r\n*1\r\n+x\r\n_\r\n", "+0L=OK :0L=1 $0nL *0=1 +1L=x _0nL "),
    C(">2\r\n+a\r\n+b\r\n:3\r\n", ">0=2 +1=a +1L=b :0L=3 "),
    /* Truncated: pending, tokens so far delivered. */
    C("", ""),
    C("+", "..."),
    C("+OK", "..."),
    C("+OK\r", "..."),
    C("*2\r\n:1\r\n", "*0=2 :1=1 "), /* at a token boundary: not pending */
    C("$3\r\nab", "..."),
    C("$3\r\nabc", "..."),
    C("$3\r\nabc\r", "..."),
    C("*1048576\r\n", "*0=1048576 "),
    C("%1048576\r\n", "%0=1048576 "),
    /* Malformed: -EPROTO. */
    C("?", "!EPROTO"),
    C("x\r\n", "!EPROTO"),
    C("\r\n", "!EPROTO"),
    C("\0", "!EPROTO"),
    C("+OK\n", "!EPROTO"),
    C("+O\nK\r\n", "!EPROTO"),
    C("+OK\rX", "!EPROTO"),
    C("+OK\r\r\n", "!EPROTO"),
    C("-ERR\rx\r\n", "!EPROTO"),
    C(":\r\n", "!EPROTO"),
    C(":-\r\n", "!EPROTO"),
    C(":+1\r\n", "!EPROTO"),
    C(": 1\r\n", "!EPROTO"),
    C(":1 \r\n", "!EPROTO"),
    C(":1a\r\n", "!EPROTO"),
    C(":--1\r\n", "!EPROTO"),
    C(":9223372036854775808\r\n", "!EPROTO"),
    C(":-9223372036854775809\r\n", "!EPROTO"),
    C(":18446744073709551616\r\n", "!EPROTO"),
    C(":99999999999999999999\r\n", "!EPROTO"),
    C(":00000000000000000001\r\n", "!EPROTO"),
    C(":1\n", "!EPROTO"),
    C("$\r\n", "!EPROTO"),
    C("$x\r\n", "!EPROTO"),
    C("$-2\r\n", "!EPROTO"),
    C("$-9223372036854775808\r\n", "!EPROTO"),
    C("$99999999999999999999\r\n", "!EPROTO"),
    C("$3\r\nabcd\r\n", "!EPROTO"),
    C("$3\r\nab\r\n", "!EPROTO"),
    C("$3\r\nabc\n\r", "!EPROTO"),
    C("$3\r\nabc\rX", "!EPROTO"),
    C("$3\r\nabc\r\r", "!EPROTO"),
    C("$0\r\nx", "!EPROTO"),
    C("$1\n", "!EPROTO"),
    C("!-2\r\n", "!EPROTO"),
    C("=3\r\nabc\r\n", "!EPROTO"),
    C("=4\r\nabcd\r\n", "!EPROTO"),
    C("=0\r\n\r\n", "!EPROTO"),
    C("#\r\n", "!EPROTO"),
    C("#x\r\n", "!EPROTO"),
    C("#T\r\n", "!EPROTO"),
    C("#tt\r\n", "!EPROTO"),
    C("#1\r\n", "!EPROTO"),
    C("_x\r\n", "!EPROTO"),
    C("_ \r\n", "!EPROTO"),
    C(",\r\n", "!EPROTO"),
    C(",1\n", "!EPROTO"),
    C("(\r\n", "!EPROTO"),
    C("(-\r\n", "!EPROTO"),
    C("(+1\r\n", "!EPROTO"),
    C("(1.5\r\n", "!EPROTO"),
    C("*\r\n", "!EPROTO"),
    C("*x\r\n", "!EPROTO"),
    C("*-2\r\n", "!EPROTO"),
    C("%-1\r\n", "!EPROTO"),
    C("~-1\r\n", "!EPROTO"),
    C(">-1\r\n", "!EPROTO"),
    C("|-1\r\n", "!EPROTO"),
    C("%x\r\n", "!EPROTO"),
    C("*1\r\n?", "*0=1 !EPROTO"),
    C("*2\r\n:1\r\n:x\r\n", "*0=2 :1=1 !EPROTO"),
    C("+OK\r\n+a\n", "+0L=OK !EPROTO"),
    C("|1\r\n+a\r\n", "|0=1 +1=a "),
    /* Limits: -EMSGSIZE. */
    C("$4097\r\n", "!EMSGSIZE"),
    C("!4097\r\n", "!EMSGSIZE"),
    C("=4097\r\n", "!EMSGSIZE"),
    C("$9223372036854775807\r\n", "!EMSGSIZE"),
    C("*1048577\r\n", "!EMSGSIZE"),
    C("%1048577\r\n", "!EMSGSIZE"),
    C("~1048577\r\n", "!EMSGSIZE"),
    C(">1048577\r\n", "!EMSGSIZE"),
    C("|1048577\r\n", "!EMSGSIZE"),
    C("*9223372036854775807\r\n", "!EMSGSIZE"),
    C("*1\r\n$5000\r\n", "*0=1 !EMSGSIZE"),
};

#define NCASES (sizeof(cases) / sizeof(cases[0]))

TEST(table)
{
    for (size_t i = 0; i < NCASES; i++) {
        if (!feed(cases[i].msg, cases[i].len, NULL, 0, &whole_r)) {
            fprintf(stderr, "case %zu\n", i);
            CHECK(0);
        }
        if (strcmp(whole_r.text, cases[i].expect) != 0) {
            fprintf(stderr, "case %zu \"%.60s\":\n  got:    %s\n  expect: %s\n", i, cases[i].msg,
                    whole_r.text, cases[i].expect);
            CHECK(0);
        }
    }
}

TEST(table_every_split)
{
    for (size_t i = 0; i < NCASES; i++) {
        if (!check_msg(cases[i].msg, cases[i].len, cases[i].expect)) {
            fprintf(stderr, "case %zu\n", i);
            CHECK(0);
        }
    }
}

/* All table entries holding whole replies, back to back: one stream of many replies. */
TEST(concatenated_stream_every_split)
{
    static char stream[8192];
    static char expect[16384];
    size_t n = 0;
    size_t en = 0;
    for (size_t i = 0; i < NCASES; i++) {
        const struct tcase *c = &cases[i];
        CHECK(feed(c->msg, c->len, NULL, 0, &whole_r));
        if (whole_r.err || whole_r.pending || !whole_r.last)
            continue;
        CHECK(n + c->len <= sizeof(stream));
        memcpy(stream + n, c->msg, c->len);
        n += c->len;
        size_t el = strlen(c->expect);
        memcpy(expect + en, c->expect, el + 1);
        en += el;
    }
    CHECK(n > 500);
    CHECK(check_msg(stream, n, expect));
}

/* ---- Typed checks that the rendering does not show ---- */

static int parse_one(struct lr_resp_parser *p, const char *s, struct lr_resp_token *tok)
{
    size_t n = strlen(s);
    return lr_resp_parse(p, guard_tail(s, n), n, tok);
}

TEST(token_fields)
{
    struct lr_resp_parser p;
    struct lr_resp_token t;

    lr_resp_parser_init(&p);
    CHECK_EQ(parse_one(&p, ":-9223372036854775808\r\n", &t), 23);
    CHECK_EQ(t.type, LR_RESP_INT);
    CHECK(t.integer == INT64_MIN);
    CHECK(t.last && !t.nil && t.depth == 0 && t.str == NULL);
    CHECK_EQ(parse_one(&p, ":9223372036854775807\r\n", &t), 22);
    CHECK(t.integer == INT64_MAX);
    CHECK_EQ(parse_one(&p, "$-1\r\n", &t), 5);
    CHECK(t.type == LR_RESP_BULK && t.nil && t.last && t.str == NULL && t.len == 0);
    CHECK_EQ(parse_one(&p, "*-1\r\n", &t), 5);
    CHECK(t.type == LR_RESP_ARRAY && t.nil && t.last);
    CHECK_EQ(parse_one(&p, "_\r\n", &t), 3);
    CHECK(t.type == LR_RESP_NULL && t.nil && t.last);
    CHECK_EQ(parse_one(&p, "#t\r\n", &t), 4);
    CHECK(t.type == LR_RESP_BOOL && t.integer == 1);
    CHECK_EQ(parse_one(&p, "%3\r\n", &t), 4);
    CHECK(t.type == LR_RESP_MAP && t.integer == 3 && !t.last && t.depth == 0);
}

/* One token per call: the return value stops at the end of the first token. */
TEST(one_token_per_call)
{
    struct lr_resp_parser p;
    struct lr_resp_token t;
    const char *in = "+OK\r\n:12\r\n*1\r\n$1\r\nx\r\n";
    size_t n = strlen(in);
    const char *b = guard_tail(in, n);

    lr_resp_parser_init(&p);
    CHECK_EQ(lr_resp_parse(&p, b, n, &t), 5);
    CHECK_EQ(lr_resp_parse(&p, b + 5, n - 5, &t), 5);
    CHECK_EQ(t.integer, 12);
    CHECK_EQ(lr_resp_parse(&p, b + 10, n - 10, &t), 4);
    CHECK(t.type == LR_RESP_ARRAY && !t.last);
    CHECK_EQ(lr_resp_parse(&p, b + 14, n - 14, &t), 7);
    CHECK(t.type == LR_RESP_BULK && t.last && t.depth == 1 && t.len == 1 && t.str[0] == 'x');
    CHECK_ERR(lr_resp_parse(&p, b + n, 0, &t), -EAGAIN);
    CHECK_ERR(lr_resp_parse(&p, NULL, 0, &t), -EAGAIN);
}

/* Whole lines and payloads point into the caller's buffer; split ones into scratch. */
TEST(zero_copy_and_scratch)
{
    struct lr_resp_parser p;
    struct lr_resp_token t;
    char a[16];
    char b[16];

    lr_resp_parser_init(&p);
    memcpy(a, "$3\r\nabc\r\n", 9);
    CHECK_EQ(lr_resp_parse(&p, a, 9, &t), 9);
    CHECK(t.str == a + 4 && t.len == 3);

    /* Header in one call, payload whole in the next: still zero-copy. */
    CHECK_ERR(lr_resp_parse(&p, a, 4, &t), -EAGAIN);
    memcpy(b, "abc\r\n", 5);
    CHECK_EQ(lr_resp_parse(&p, b, 5, &t), 5);
    CHECK(t.str == b);

    /* Payload split: copied. */
    CHECK_ERR(lr_resp_parse(&p, a, 5, &t), -EAGAIN);
    memcpy(b, "bc\r\n", 4);
    CHECK_EQ(lr_resp_parse(&p, b, 4, &t), 4);
    CHECK(t.str == p.scratch && t.len == 3 && !memcmp(t.str, "abc", 3));

    /* Payload whole but its CRLF split: copied, since the token ends in the next call. */
    CHECK_ERR(lr_resp_parse(&p, a, 8, &t), -EAGAIN);
    CHECK_EQ(lr_resp_parse(&p, "\n", 1, &t), 1);
    CHECK(t.str == p.scratch && !memcmp(t.str, "abc", 3));

    /* A line after its type byte only: zero-copy. */
    memcpy(a, "+hello\r\n", 8);
    CHECK_ERR(lr_resp_parse(&p, a, 1, &t), -EAGAIN);
    CHECK_EQ(lr_resp_parse(&p, a + 1, 7, &t), 7);
    CHECK(t.str == a + 1 && t.len == 5);

    /* A line whose CR and LF are split: copied. */
    CHECK_ERR(lr_resp_parse(&p, a, 7, &t), -EAGAIN);
    CHECK_EQ(lr_resp_parse(&p, a + 7, 1, &t), 1);
    CHECK(t.str == p.scratch && t.len == 5 && !memcmp(t.str, "hello", 5));

    /* A line split in its middle: copied. */
    CHECK_ERR(lr_resp_parse(&p, a, 3, &t), -EAGAIN);
    CHECK_EQ(lr_resp_parse(&p, a + 3, 5, &t), 5);
    CHECK(t.str == p.scratch && t.len == 5 && !memcmp(t.str, "hello", 5));
}

TEST(errors_are_sticky)
{
    struct lr_resp_parser p;
    struct lr_resp_token t;

    lr_resp_parser_init(&p);
    CHECK_ERR(parse_one(&p, "+OK\n", &t), -EPROTO);
    CHECK_ERR(parse_one(&p, "+OK\r\n", &t), -EPROTO);
    CHECK_ERR(lr_resp_parse(&p, NULL, 0, &t), -EPROTO);
    lr_resp_parser_init(&p);
    CHECK_EQ(parse_one(&p, "+OK\r\n", &t), 5);

    CHECK_ERR(parse_one(&p, "*1048577\r\n", &t), -EMSGSIZE);
    CHECK_ERR(parse_one(&p, "+OK\r\n", &t), -EMSGSIZE);
    CHECK_ERR(parse_one(&p, "+OK\n", &t), -EMSGSIZE);
    CHECK_ERR(lr_resp_parse(&p, NULL, 0, &t), -EMSGSIZE);
    lr_resp_parser_init(&p);
    CHECK_EQ(parse_one(&p, ":1\r\n", &t), 4);
}

/* ---- Limits, with generated inputs ---- */

static char big[3 * LR_RESP_MAX_STR];
static char big_expect[8 * LR_RESP_MAX_STR];

/* "<type>" + n copies of c + tail */
static size_t make_line(char type, size_t n, char c, const char *tail)
{
    big[0] = type;
    memset(big + 1, c, n);
    memcpy(big + 1 + n, tail, strlen(tail));
    return 1 + n + strlen(tail);
}

TEST(line_length_limit)
{
    size_t n = make_line('+', LR_RESP_MAX_STR, 'a', "\r\n");
    snprintf(big_expect, sizeof(big_expect), "+0L=%.*s ", LR_RESP_MAX_STR, big + 1);
    CHECK(check_msg(big, n, big_expect));

    n = make_line('+', LR_RESP_MAX_STR + 1, 'a', "\r\n");
    CHECK(check_msg(big, n, "!EMSGSIZE"));
    /* Refused as soon as the limit is passed, without waiting for a CRLF. */
    n = make_line('+', LR_RESP_MAX_STR + 1, 'a', "");
    CHECK(check_msg(big, n, "!EMSGSIZE"));
    n = make_line('+', LR_RESP_MAX_STR, 'a', "");
    CHECK(check_msg(big, n, "..."));
    n = make_line('+', LR_RESP_MAX_STR, 'a', "\r");
    CHECK(check_msg(big, n, "..."));
    /* A bare LF right after a full-length line is still a framing error. */
    n = make_line('+', LR_RESP_MAX_STR, 'a', "\n");
    CHECK(check_msg(big, n, "!EPROTO"));
    n = make_line('-', LR_RESP_MAX_STR + 1, 'e', "");
    CHECK(check_msg(big, n, "!EMSGSIZE"));
    n = make_line(':', LR_RESP_MAX_STR + 1, '1', "");
    CHECK(check_msg(big, n, "!EMSGSIZE"));
    n = make_line(',', LR_RESP_MAX_STR + 1, '1', "");
    CHECK(check_msg(big, n, "!EMSGSIZE"));
    n = make_line('(', LR_RESP_MAX_STR + 1, '1', "");
    CHECK(check_msg(big, n, "!EMSGSIZE"));
    n = make_line('$', LR_RESP_MAX_STR + 1, '0', "");
    CHECK(check_msg(big, n, "!EMSGSIZE"));
    n = make_line('*', LR_RESP_MAX_STR + 1, '0', "");
    CHECK(check_msg(big, n, "!EMSGSIZE"));
    n = make_line('_', LR_RESP_MAX_STR + 1, ' ', "");
    CHECK(check_msg(big, n, "!EMSGSIZE"));
    /* Long but legal big number. */
    n = make_line('(', LR_RESP_MAX_STR, '7', "\r\n");
    snprintf(big_expect, sizeof(big_expect), "(0L=%.*s ", LR_RESP_MAX_STR, big + 1);
    CHECK(check_msg(big, n, big_expect));
}

TEST(string_length_limit)
{
    int h = snprintf(big, sizeof(big), "$%d\r\n", LR_RESP_MAX_STR);
    memset(big + h, 'b', LR_RESP_MAX_STR);
    memcpy(big + h + LR_RESP_MAX_STR, "\r\n", 2);
    size_t n = (size_t)h + LR_RESP_MAX_STR + 2;
    snprintf(big_expect, sizeof(big_expect), "$0L=%.*s ", LR_RESP_MAX_STR, big + h);
    CHECK(check_msg(big, n, big_expect));

    h = snprintf(big, sizeof(big), "$%d\r\n", LR_RESP_MAX_STR + 1);
    CHECK(check_msg(big, (size_t)h, "!EMSGSIZE"));
    h = snprintf(big, sizeof(big), "!%d\r\n", LR_RESP_MAX_STR + 1);
    CHECK(check_msg(big, (size_t)h, "!EMSGSIZE"));
}

TEST(element_count_limit)
{
    char in[32];
    struct lr_resp_parser p;
    struct lr_resp_token t;
    int n = snprintf(in, sizeof(in), "*%d\r\n", LR_RESP_MAX_ELEMS);

    lr_resp_parser_init(&p);
    CHECK_EQ(lr_resp_parse(&p, in, (size_t)n, &t), n);
    CHECK_EQ(t.integer, LR_RESP_MAX_ELEMS);
    n = snprintf(in, sizeof(in), "*%d\r\n", LR_RESP_MAX_ELEMS + 1);
    lr_resp_parser_init(&p);
    CHECK_ERR(lr_resp_parse(&p, in, (size_t)n, &t), -EMSGSIZE);
    n = snprintf(in, sizeof(in), "%%%d\r\n", LR_RESP_MAX_ELEMS + 1);
    lr_resp_parser_init(&p);
    CHECK_ERR(lr_resp_parse(&p, in, (size_t)n, &t), -EMSGSIZE);
}

/* A large reply: counts are tracked across many elements; only the end is last. */
TEST(many_elements)
{
    size_t n = (size_t)snprintf(big, sizeof(big), "*1000\r\n");
    size_t en = (size_t)snprintf(big_expect, sizeof(big_expect), "*0=1000 ");
    for (int i = 0; i < 1000; i++) {
        n += (size_t)snprintf(big + n, sizeof(big) - n, ":%d\r\n", i - 500);
        en += (size_t)snprintf(big_expect + en, sizeof(big_expect) - en, ":1%s=%d ",
                               i == 999 ? "L" : "", i - 500);
    }
    CHECK(check_msg(big, n, big_expect));
}

/* Builds @levels nested one-element aggregates of @type around @inner. */
static size_t make_nested(int levels, char type, const char *inner, char *expect, size_t cap)
{
    size_t n = 0;
    size_t en = 0;
    for (int d = 0; d < levels; d++) {
        n += (size_t)snprintf(big + n, sizeof(big) - n, "%c1\r\n", type);
        en += (size_t)snprintf(expect + en, cap - en, "%c%d=1 ", type, d);
        if (type == '%') {
            /* The nested map is the value of key "k". */
            n += (size_t)snprintf(big + n, sizeof(big) - n, "+k\r\n");
            en += (size_t)snprintf(expect + en, cap - en, "+%d=k ", d + 1);
        }
    }
    n += (size_t)snprintf(big + n, sizeof(big) - n, "%s", inner);
    return n;
}

TEST(depth_limit)
{
    char tail[64];

    /* LR_RESP_MAX_DEPTH open aggregates: the innermost element sits at that depth. */
    size_t n = make_nested(LR_RESP_MAX_DEPTH, '*', ":1\r\n", big_expect, sizeof(big_expect));
    snprintf(tail, sizeof(tail), ":%dL=1 ", LR_RESP_MAX_DEPTH);
    strcat(big_expect, tail);
    CHECK(check_msg(big, n, big_expect));

    /* An empty aggregate at the deepest level opens nothing, so it is fine. */
    n = make_nested(LR_RESP_MAX_DEPTH, '*', "*0\r\n", big_expect, sizeof(big_expect));
    snprintf(tail, sizeof(tail), "*%dL=0 ", LR_RESP_MAX_DEPTH);
    strcat(big_expect, tail);
    CHECK(check_msg(big, n, big_expect));

    /* One more level is refused. */
    n = make_nested(LR_RESP_MAX_DEPTH, '*', "*1\r\n:1\r\n", big_expect, sizeof(big_expect));
    strcat(big_expect, "!EMSGSIZE");
    CHECK(check_msg(big, n, big_expect));

    /* Maps count too. */
    n = make_nested(LR_RESP_MAX_DEPTH, '%', "%1\r\n", big_expect, sizeof(big_expect));
    strcat(big_expect, "!EMSGSIZE");
    CHECK(check_msg(big, n, big_expect));
}

/* Depth comes back down after deep replies, reply after reply. */
TEST(depth_recovers)
{
    struct lr_resp_parser p;
    struct lr_resp_token t;

    lr_resp_parser_init(&p);
    for (int round = 0; round < 100; round++) {
        size_t n = make_nested(LR_RESP_MAX_DEPTH, '*', ":1\r\n", big_expect, sizeof(big_expect));
        size_t off = 0;
        int tokens = 0;
        while (off < n) {
            int rc = lr_resp_parse(&p, big + off, n - off, &t);
            CHECK(rc > 0);
            off += (size_t)rc;
            tokens++;
        }
        CHECK_EQ(tokens, LR_RESP_MAX_DEPTH + 1);
        CHECK(t.last && t.depth == LR_RESP_MAX_DEPTH);
        CHECK_EQ(p.depth, 0);
    }
}

/* ---- Writer ---- */

#define ARG(s)                                                                                     \
    {                                                                                              \
        s, sizeof(s) - 1                                                                           \
    }

TEST(write_cmd_exact)
{
    static const struct lr_resp_arg argv[] = {ARG("SET"), ARG("key"), ARG("value"), ARG("PX"),
                                              ARG("30000")};
    const char *want = "*5\r\n$3\r\nSET\r\n$3\r\nkey\r\n$5\r\nvalue\r\n$2\r\nPX\r\n$5\r\n30000\r\n";
    size_t wl = strlen(want);

    CHECK_EQ(lr_resp_cmd_size(5, argv), wl);
    char *out = guard_out(wl);
    CHECK_EQ(lr_resp_write_cmd(out, wl, 5, argv), wl);
    CHECK(!memcmp(out, want, wl));
    for (size_t cap = 0; cap < wl; cap++)
        CHECK_ERR(lr_resp_write_cmd(guard_out(cap), cap, 5, argv), -ENOBUFS);

    /* Empty and binary arguments; zero arguments. */
    static const struct lr_resp_arg argv2[] = {ARG("GET"), ARG(""), ARG("a\r\nb\0")};
    const char *want2 = "*3\r\n$3\r\nGET\r\n$0\r\n\r\n$5\r\na\r\nb\0\r\n";
    size_t wl2 = 4 + 9 + 6 + 11;
    char buf[64];
    CHECK_EQ(lr_resp_cmd_size(3, argv2), wl2);
    CHECK_EQ(lr_resp_write_cmd(buf, sizeof(buf), 3, argv2), wl2);
    CHECK(!memcmp(buf, want2, wl2));
    CHECK_EQ(lr_resp_cmd_size(0, NULL), 4);
    CHECK_EQ(lr_resp_write_cmd(buf, sizeof(buf), 0, NULL), 4);
    CHECK(!memcmp(buf, "*0\r\n", 4));
    CHECK_ERR(lr_resp_write_cmd(guard_out(3), 3, 0, NULL), -ENOBUFS);
}

TEST(write_sizes_agree)
{
    static char payload[20000];
    static char out[20100];
    static const size_t lens[] = {0, 1, 9, 10, 11, 99, 100, 101, 999, 1000, 4096, 9999, 10000};
    memset(payload, 'p', sizeof(payload));

    for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
        size_t len = lens[i];
        char hdr[32];
        int h = snprintf(hdr, sizeof(hdr), "$%zu\r\n", len);
        size_t size = lr_resp_bulk_size(len);
        CHECK_EQ(size, (size_t)h + len + 2);
        CHECK_EQ(lr_resp_write_bulk(out, sizeof(out), payload, len), size);
        CHECK(!memcmp(out, hdr, (size_t)h));
        CHECK(!memcmp(out + h, payload, len));
        CHECK(!memcmp(out + h + len, "\r\n", 2));
        for (size_t cap = size > 64 ? size - 64 : 0; cap < size; cap++)
            CHECK_ERR(lr_resp_write_bulk(guard_out(cap), cap, payload, len), -ENOBUFS);
        CHECK_EQ(lr_resp_write_bulk(guard_out(size), size, payload, len), size);

        h = snprintf(hdr, sizeof(hdr), "*%zu\r\n", len);
        size = lr_resp_array_header_size(len);
        CHECK_EQ(size, h);
        CHECK_EQ(lr_resp_write_array_header(guard_out(size), size, len), size);
        CHECK(!memcmp(guard_out(size), hdr, size));
        for (size_t cap = 0; cap < size; cap++)
            CHECK_ERR(lr_resp_write_array_header(guard_out(cap), cap, len), -ENOBUFS);
    }
    CHECK_EQ(lr_resp_array_header_size(SIZE_MAX), 3 + 20);
    CHECK_EQ(lr_resp_bulk_size(SIZE_MAX), SIZE_MAX);
}

TEST(write_bulk_u64)
{
    static const struct {
        uint64_t v;
        const char *want;
    } u[] = {
        {0, "$1\r\n0\r\n"},
        {9, "$1\r\n9\r\n"},
        {10, "$2\r\n10\r\n"},
        {30000, "$5\r\n30000\r\n"},
        {UINT64_MAX, "$20\r\n18446744073709551615\r\n"},
    };
    for (size_t i = 0; i < sizeof(u) / sizeof(u[0]); i++) {
        size_t wl = strlen(u[i].want);
        CHECK_EQ(lr_resp_write_bulk_u64(guard_out(wl), wl, u[i].v), wl);
        CHECK(!memcmp(guard_out(wl), u[i].want, wl));
        for (size_t cap = 0; cap < wl; cap++)
            CHECK_ERR(lr_resp_write_bulk_u64(guard_out(cap), cap, u[i].v), -ENOBUFS);
    }
    /* Every power of ten and its predecessor against printf. */
    uint64_t v = 1;
    for (int k = 0; k < 20; k++, v *= 10) {
        for (uint64_t x = v - 1; x <= v; x++) {
            char want[64];
            char got[64];
            int wl = snprintf(want, sizeof(want), "$%d\r\n%" PRIu64 "\r\n",
                              snprintf(NULL, 0, "%" PRIu64, x), x);
            CHECK_EQ(lr_resp_write_bulk_u64(got, sizeof(got), x), wl);
            CHECK(!memcmp(got, want, (size_t)wl));
        }
    }
}

/* Piecewise writing builds the same bytes as the one-call writer. */
TEST(write_piecewise_equals_cmd)
{
    static const struct lr_resp_arg argv[] = {ARG("PEXPIRE"), ARG("lease:a"), ARG("30000")};
    char one[128];
    char pw[128];
    int n = lr_resp_write_cmd(one, sizeof(one), 3, argv);
    CHECK(n > 0);

    size_t off = 0;
    int rc = lr_resp_write_array_header(pw, sizeof(pw), 3);
    CHECK(rc > 0);
    off += (size_t)rc;
    rc = lr_resp_write_bulk(pw + off, sizeof(pw) - off, "PEXPIRE", 7);
    CHECK(rc > 0);
    off += (size_t)rc;
    rc = lr_resp_write_bulk(pw + off, sizeof(pw) - off, "lease:a", 7);
    CHECK(rc > 0);
    off += (size_t)rc;
    rc = lr_resp_write_bulk_u64(pw + off, sizeof(pw) - off, 30000);
    CHECK(rc > 0);
    off += (size_t)rc;
    CHECK_EQ(off, n);
    CHECK(!memcmp(one, pw, off));
}

/* A written command is a valid RESP array: parse it back. */
TEST(round_trip)
{
    static char longarg[LR_RESP_MAX_STR];
    memset(longarg, 'L', sizeof(longarg));
    const struct lr_resp_arg argv[] = {
        ARG("EVALSHA"), ARG("0123456789abcdef"),    ARG("1"), ARG("k\r\n\0ey"),
        ARG(""),        {longarg, sizeof(longarg)},
    };
    size_t argc = sizeof(argv) / sizeof(argv[0]);
    int n = lr_resp_write_cmd(big, sizeof(big), argc, argv);
    CHECK(n > 0);
    CHECK_EQ((size_t)n, lr_resp_cmd_size(argc, argv));

    struct lr_resp_parser p;
    struct lr_resp_token t;
    lr_resp_parser_init(&p);
    int rc = lr_resp_parse(&p, big, (size_t)n, &t);
    CHECK(rc > 0);
    CHECK(t.type == LR_RESP_ARRAY && t.integer == (int64_t)argc && !t.last && t.depth == 0);
    size_t off = (size_t)rc;
    for (size_t i = 0; i < argc; i++) {
        rc = lr_resp_parse(&p, big + off, (size_t)n - off, &t);
        CHECK(rc > 0);
        off += (size_t)rc;
        CHECK_EQ(t.type, LR_RESP_BULK);
        CHECK_EQ(t.depth, 1);
        CHECK_EQ(t.len, argv[i].len);
        CHECK(t.len == 0 || !memcmp(t.str, argv[i].p, t.len));
        CHECK_EQ(t.last, i == argc - 1);
    }
    CHECK_EQ(off, n);
    CHECK(check_msg(big, (size_t)n, NULL));
}

TESTS(T(table), T(table_every_split), T(concatenated_stream_every_split), T(token_fields),
      T(one_token_per_call), T(zero_copy_and_scratch), T(errors_are_sticky), T(line_length_limit),
      T(string_length_limit), T(element_count_limit), T(many_elements), T(depth_limit),
      T(depth_recovers), T(write_cmd_exact), T(write_sizes_agree), T(write_bulk_u64),
      T(write_piecewise_equals_cmd), T(round_trip))
