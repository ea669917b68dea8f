/* SPDX-License-Identifier: MIT */
/*
 * test_json.c - the JSON pull scanner (src/json.c).
 *
 * Every scan goes through scan(), which copies the input to the very end of
 * a mapping followed by a PROT_NONE page (tests/guard.h), so any read past
 * the input faults at once. A scan is rendered to text, one word per token
 * (type, then "=value" for strings and numbers, "name:" before a member),
 * so that a table entry states the whole token stream in one string. The
 * vectors are our own, grouped like the JSONTestSuite's categories (y_: must
 * accept, n_: must reject); every valid document is also truncated at every
 * byte, and each truncation must be an error.
 */
#include <errno.h>
#include <stdbool.h>

#include "guard.h"
#include "harness.h"
#include "json.h"

struct render {
    char text[8192];
    size_t n;
    int rc; /* 0 end of document, else the error */
    struct lr_json j;
};

static void put(struct render *r, const char *s, size_t n)
{
    guard_put(r->text, sizeof(r->text), &r->n, s, n);
}

/* Scan in[0..n) (placed before a guard page) to the end or the first error. */
static void scan(const char *in, size_t n, uint32_t max_tokens, struct render *r)
{
    struct lr_json_tok t;
    r->n = 0;
    r->text[0] = '\0';
    lr_json_init(&r->j, guard_tail(in, n), n, max_tokens);
    while ((r->rc = lr_json_next(&r->j, &t)) == 1) {
        if (r->n)
            put(r, " ", 1);
        if (t.key) {
            put(r, t.key, t.keylen);
            put(r, ":", 1);
        }
        char c = (char)t.type;
        put(r, &c, 1);
        if (t.s) {
            put(r, "=", 1);
            put(r, t.s, t.n);
        }
    }
}

static void scan_str(const char *in, struct render *r)
{
    scan(in, strlen(in), 0, r);
}

static struct render R;

/* y_: valid documents and their token streams. */
static const struct {
    const char *in, *want;
} valid[] = {
    {"{}", "{ }"},
    {"[]", "[ ]"},
    {" [ ] ", "[ ]"},
    {"\t\r\n{\n}\r\n", "{ }"},
    {"0", "0=0"},
    {"-0", "0=-0"},
    {"123", "0=123"},
    {"-1.5e+10", "0=-1.5e+10"},
    {"1E-2", "0=1E-2"},
    {"0.0", "0=0.0"},
    {"1e0", "0=1e0"},
    {"\"\"", "\"="},
    {"\"a b\"", "\"=a b"},
    {"true", "t"},
    {"false", "f"},
    {"null", "n"},
    {"[null,true,false]", "[ n t f ]"},
    {"{\"a\":1}", "{ a:0=1 }"},
    {"{\"a\" : [ 1 , \"x\" ] , \"b\":{}}", "{ a:[ 0=1 \"=x ] b:{ } }"},
    {"[[[]]]", "[ [ [ ] ] ]"},
    {"{\"\":0}", "{ :0=0 }"},
    {"{\"a\":1,\"a\":2}", "{ a:0=1 a:0=2 }"}, /* duplicates are the reader's business */
    {"[\"\\\"\\\\\\/\\b\\f\\n\\r\\t\"]", "[ \"=\\\"\\\\\\/\\b\\f\\n\\r\\t ]"},
    {"\"\\u0041\\u00e9\\uD83D\\uDE00\"", "\"=\\u0041\\u00e9\\uD83D\\uDE00"},
    {"\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\"", "\"=\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80"},
    {"\"\xef\xbf\xbf\xf4\x8f\xbf\xbf\"", "\"=\xef\xbf\xbf\xf4\x8f\xbf\xbf"}, /* U+FFFF, U+10FFFF */
    {"\"\x7f\"", "\"=\x7f"},
    {"[1,-2,3.25,4e9]", "[ 0=1 0=-2 0=3.25 0=4e9 ]"},
    {"{\"header\":{\"revision\":\"12\"},\"kvs\":[{\"key\":\"bGVhc2U=\",\"create_revision\":\"5\"}]"
     "}",
     "{ header:{ revision:\"=12 } kvs:[ { key:\"=bGVhc2U= create_revision:\"=5 } ] }"},
};

/* n_: invalid documents, the reason and where. */
static const struct {
    const char *in;
    size_t len; /* 0: strlen */
    enum lr_json_why why;
    size_t off;
} invalid[] = {
    {"", 0, LR_JSON_EMPTY, 0},
    {"  ", 0, LR_JSON_EMPTY, 2},
    {"[", 0, LR_JSON_TRUNCATED, 1},
    {"{\"a\"", 0, LR_JSON_TRUNCATED, 4},
    {"{\"a\":", 0, LR_JSON_TRUNCATED, 5},
    {"[1", 0, LR_JSON_TRUNCATED, 2},
    {"[1,", 0, LR_JSON_TRUNCATED, 3},
    {"\"abc", 0, LR_JSON_UNTERMINATED, 4},
    {"\"a\\", 0, LR_JSON_UNTERMINATED, 3},
    {"\"\\u00", 0, LR_JSON_UNTERMINATED, 5},
    {"\"\\x\"", 0, LR_JSON_BAD_ESCAPE, 1},
    {"\"\\'\"", 0, LR_JSON_BAD_ESCAPE, 1},
    {"\"\\u12G4\"", 0, LR_JSON_BAD_UNICODE, 1},
    {"\"\\uDE00\"", 0, LR_JSON_BAD_UNICODE, 1},        /* lone low surrogate */
    {"\"\\uD83D\"", 0, LR_JSON_BAD_UNICODE, 1},        /* lone high surrogate */
    {"\"\\uD83Dabcdefg\"", 0, LR_JSON_BAD_UNICODE, 1}, /* high, then no \u */
    {"\"\\uD83D\\u0041\"", 0, LR_JSON_BAD_UNICODE, 1}, /* high, then not a low */
    {"\"a\tb\"", 0, LR_JSON_CONTROL, 2},
    {"\"a\nb\"", 0, LR_JSON_CONTROL, 2},
    {"\"\0\"", 3, LR_JSON_CONTROL, 1},
    {"\"\x80\"", 0, LR_JSON_BAD_UTF8, 1},             /* lone continuation */
    {"\"\xc0\xaf\"", 0, LR_JSON_BAD_UTF8, 1},         /* overlong '/' */
    {"\"\xe0\x80\xaf\"", 0, LR_JSON_BAD_UTF8, 1},     /* overlong, 3 bytes */
    {"\"\xed\xa0\x80\"", 0, LR_JSON_BAD_UTF8, 1},     /* encoded surrogate */
    {"\"\xf4\x90\x80\x80\"", 0, LR_JSON_BAD_UTF8, 1}, /* > U+10FFFF */
    {"\"\xff\"", 0, LR_JSON_BAD_UTF8, 1},
    {"\"\xc3\"", 0, LR_JSON_BAD_UTF8, 1}, /* cut sequence, then '"' */
    {"\"\xc3", 0, LR_JSON_UNTERMINATED, 2},
    {"01", 0, LR_JSON_LEADING_ZERO, 0},
    {"[-012]", 0, LR_JSON_LEADING_ZERO, 2},
    {"-", 0, LR_JSON_TRUNCATED, 1},
    {"-a", 0, LR_JSON_BAD_NUMBER, 1},
    {"1.", 0, LR_JSON_TRUNCATED, 2},
    {"[1.]", 0, LR_JSON_BAD_NUMBER, 3},
    {"[1e]", 0, LR_JSON_BAD_NUMBER, 3},
    {"[1e+]", 0, LR_JSON_BAD_NUMBER, 4},
    {".5", 0, LR_JSON_UNEXPECTED, 0},
    {"+1", 0, LR_JSON_UNEXPECTED, 0},
    {"[NaN]", 0, LR_JSON_UNEXPECTED, 1},
    {"[Infinity]", 0, LR_JSON_UNEXPECTED, 1},
    {"0x10", 0, LR_JSON_TRAILING_GARBAGE, 1},
    {"tru", 0, LR_JSON_TRUNCATED, 3},
    {"trUe", 0, LR_JSON_BAD_LITERAL, 2},
    {"nul1", 0, LR_JSON_BAD_LITERAL, 3},
    {"[truex]", 0, LR_JSON_EXPECTED_COMMA, 5},
    {"True", 0, LR_JSON_UNEXPECTED, 0},
    {"{a:1}", 0, LR_JSON_EXPECTED_NAME, 1},
    {"{'a':1}", 0, LR_JSON_EXPECTED_NAME, 1},
    {"{1:1}", 0, LR_JSON_EXPECTED_NAME, 1},
    {"{\"a\" 1}", 0, LR_JSON_EXPECTED_COLON, 5},
    {"{\"a\":1 \"b\":2}", 0, LR_JSON_EXPECTED_COMMA, 7},
    {"[1 2]", 0, LR_JSON_EXPECTED_COMMA, 3},
    {"[1,]", 0, LR_JSON_TRAILING_COMMA, 3},
    {"{\"a\":1,}", 0, LR_JSON_TRAILING_COMMA, 7},
    {"[,1]", 0, LR_JSON_UNEXPECTED, 1},
    {"[1,,2]", 0, LR_JSON_UNEXPECTED, 3},
    {"[}", 0, LR_JSON_UNEXPECTED, 1},
    {"{]", 0, LR_JSON_EXPECTED_NAME, 1},
    {"[1]]", 0, LR_JSON_TRAILING_GARBAGE, 3},
    {"{} {}", 0, LR_JSON_TRAILING_GARBAGE, 3},
    {"1 2", 0, LR_JSON_TRAILING_GARBAGE, 2},
    {"\"a\"x", 0, LR_JSON_TRAILING_GARBAGE, 3},
    {"[1]\0", 4, LR_JSON_TRAILING_GARBAGE, 3},
    {"\xef\xbb\xbf{}", 0, LR_JSON_UNEXPECTED, 0}, /* a BOM is not JSON */
    {"[\x0c]", 0, LR_JSON_UNEXPECTED, 1},         /* form feed is not whitespace */
    {"/* c */ {}", 0, LR_JSON_UNEXPECTED, 0},
};

TEST(valid_documents_scan_to_their_tokens)
{
    for (size_t i = 0; i < sizeof(valid) / sizeof(valid[0]); i++) {
        scan_str(valid[i].in, &R);
        if (R.rc != 0 || strcmp(R.text, valid[i].want) != 0)
            fprintf(stderr, "input %s: rc %d (%s at %zu), got '%s', want '%s'\n", valid[i].in, R.rc,
                    lr_json_why_text(R.j.why), R.j.err_off, R.text, valid[i].want);
        CHECK_EQ(R.rc, 0);
        CHECK(strcmp(R.text, valid[i].want) == 0);
        /* the end stays the end */
        struct lr_json_tok t;
        CHECK_EQ(lr_json_next(&R.j, &t), 0);
    }
}

TEST(invalid_documents_say_what_and_where)
{
    for (size_t i = 0; i < sizeof(invalid) / sizeof(invalid[0]); i++) {
        size_t n = invalid[i].len ? invalid[i].len : strlen(invalid[i].in);
        scan(invalid[i].in, n, 0, &R);
        if (R.j.why != invalid[i].why || R.j.err_off != invalid[i].off)
            fprintf(stderr, "case %zu '%s': got %s at %zu, want %s at %zu\n", i, invalid[i].in,
                    lr_json_why_text(R.j.why), R.j.err_off, lr_json_why_text(invalid[i].why),
                    invalid[i].off);
        CHECK_ERR(R.rc, -EPROTO);
        CHECK_EQ(R.j.why, invalid[i].why);
        CHECK_EQ(R.j.err_off, invalid[i].off);
        CHECK(R.j.err_off <= n);
        /* an error sticks */
        struct lr_json_tok t;
        CHECK_ERR(lr_json_next(&R.j, &t), -EPROTO);
    }
}

TEST(every_truncation_is_an_error_without_over_read)
{
    for (size_t i = 0; i < sizeof(valid) / sizeof(valid[0]); i++) {
        const char *in = valid[i].in;
        size_t n = strlen(in);
        /* a number cut short is still a number; everything else is not */
        char first = 0;
        for (size_t k = 0; k < n && !first; k++)
            if (!strchr(" \t\r\n", in[k]))
                first = in[k];
        bool number = first == '-' || (first >= '0' && first <= '9');
        size_t lastbyte = n;
        while (lastbyte > 0 && strchr(" \t\r\n", in[lastbyte - 1]))
            lastbyte--;
        for (size_t k = 0; k < lastbyte; k++) {
            scan(in, k, 0, &R);
            if (number && R.rc == 0)
                continue;
            if (R.rc == 0)
                fprintf(stderr, "'%s' cut at %zu scanned as valid\n", in, k);
            CHECK_ERR(R.rc, -EPROTO);
            CHECK(R.j.err_off <= k);
        }
    }
}

TEST(numbers_beyond_2_53_stay_exact)
{
    static const struct {
        const char *in;
        int u_rc;
        uint64_t u;
        int i_rc;
        int64_t i;
    } cases[] = {
        {"9007199254740993", 0, 9007199254740993ULL, 0, 9007199254740993LL},
        {"9223372036854775807", 0, 9223372036854775807ULL, 0, INT64_MAX},
        {"9223372036854775808", 0, 9223372036854775808ULL, -ERANGE, 0},
        {"-9223372036854775808", -ERANGE, 0, 0, INT64_MIN},
        {"-9223372036854775809", -ERANGE, 0, -ERANGE, 0},
        {"18446744073709551615", 0, UINT64_MAX, -ERANGE, 0},
        {"18446744073709551616", -ERANGE, 0, -ERANGE, 0},
        {"99999999999999999999999", -ERANGE, 0, -ERANGE, 0},
        {"0", 0, 0, 0, 0},
        {"-0", 0, 0, 0, 0},
        {"-1", -ERANGE, 0, 0, -1},
        {"1.0", -EINVAL, 0, -EINVAL, 0},
        {"1e3", -EINVAL, 0, -EINVAL, 0},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct lr_json_tok t;
        lr_json_init(&R.j, guard_tail(cases[i].in, strlen(cases[i].in)), strlen(cases[i].in), 0);
        CHECK_EQ(lr_json_next(&R.j, &t), 1);
        CHECK_EQ(t.type, LR_JSON_NUMBER);
        uint64_t u = 7;
        int64_t v = 7;
        CHECK_ERR(lr_json_u64(&t, &u), cases[i].u_rc);
        if (!cases[i].u_rc)
            CHECK(u == cases[i].u);
        CHECK_ERR(lr_json_i64(&t, &v), cases[i].i_rc);
        if (!cases[i].i_rc)
            CHECK(v == cases[i].i);
        /* the same text as an etcd-style string */
        char quoted[64];
        snprintf(quoted, sizeof(quoted), "\"%s\"", cases[i].in);
        lr_json_init(&R.j, guard_tail(quoted, strlen(quoted)), strlen(quoted), 0);
        CHECK_EQ(lr_json_next(&R.j, &t), 1);
        CHECK_ERR(lr_json_i64_str(&t, &v), cases[i].i_rc);
        if (!cases[i].i_rc)
            CHECK(v == cases[i].i);
        CHECK_ERR(lr_json_i64(&t, &v), -EINVAL); /* a string is not a NUMBER */
    }
    static const char *const bad_str[] = {"\"\"",   "\"-\"",  "\"012\"",      "\" 1\"",
                                          "\"1 \"", "\"+1\"", "\"1\\u0030\"", "\"0x1\""};
    for (size_t i = 0; i < sizeof(bad_str) / sizeof(bad_str[0]); i++) {
        struct lr_json_tok t;
        int64_t v;
        lr_json_init(&R.j, guard_tail(bad_str[i], strlen(bad_str[i])), strlen(bad_str[i]), 0);
        CHECK_EQ(lr_json_next(&R.j, &t), 1);
        CHECK_ERR(lr_json_i64_str(&t, &v), -EINVAL);
    }
}

TEST(unescape_decodes_into_a_bounded_buffer)
{
    static const struct {
        const char *in, *want;
    } cases[] = {
        {"plain", "plain"},
        {"a\\nb\\t\\\"\\\\\\/", "a\nb\t\"\\/"},
        {"\\u0041\\u00e9\\u20AC", "A\xc3\xa9\xe2\x82\xac"},
        {"\\uD83D\\uDE00!", "\xf0\x9f\x98\x80!"},
        {"\\uDBFF\\uDFFF", "\xf4\x8f\xbf\xbf"},
        {"\\u0000", ""}, /* NUL decodes to one byte 0: checked by length below */
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const char *in = cases[i].in; /* guard_out shares guard_tail's page */
        size_t wl = strlen(cases[i].want) + (i == 5);
        char *out = guard_out(wl);
        CHECK_EQ(lr_json_unescape(in, strlen(cases[i].in), out, wl), (int)wl);
        CHECK(memcmp(out, cases[i].want, wl) == 0);
        /* one byte short: -ENOBUFS, and no write past the cap (guard page) */
        if (wl > 0) {
            out = guard_out(wl - 1);
            CHECK_ERR(lr_json_unescape(in, strlen(cases[i].in), out, wl - 1), -ENOBUFS);
        }
    }
    static const char *const bad[] = {
        "\\",   "\\x",  "\\u12", "\\uD800",     "\\uDC00", "\\uD800\\u0041",
        "a\"b", "\x01", "\xc3",  "\xed\xbf\xbf"};
    char out[64];
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        CHECK_ERR(
            lr_json_unescape(guard_tail(bad[i], strlen(bad[i])), strlen(bad[i]), out, sizeof(out)),
            -EPROTO);
}

TEST(depth_at_the_limit_and_one_past)
{
    char doc[2 * LR_JSON_MAX_DEPTH + 4];
    for (int depth = LR_JSON_MAX_DEPTH; depth <= LR_JSON_MAX_DEPTH + 1; depth++) {
        size_t n = 0;
        for (int i = 0; i < depth; i++)
            doc[n++] = '[';
        for (int i = 0; i < depth; i++)
            doc[n++] = ']';
        scan(doc, n, 0, &R);
        if (depth == LR_JSON_MAX_DEPTH) {
            CHECK_EQ(R.rc, 0);
        } else {
            CHECK_ERR(R.rc, -EMSGSIZE);
            CHECK_EQ(R.j.why, LR_JSON_DEPTH);
            CHECK_EQ(R.j.err_off, LR_JSON_MAX_DEPTH);
        }
    }
    /* objects count the same */
    char obj[8 * LR_JSON_MAX_DEPTH + 8];
    size_t n = 0;
    for (int i = 0; i <= LR_JSON_MAX_DEPTH; i++)
        n += (size_t)snprintf(obj + n, sizeof(obj) - n, "{\"a\":");
    n += (size_t)snprintf(obj + n, sizeof(obj) - n, "1");
    for (int i = 0; i <= LR_JSON_MAX_DEPTH; i++)
        obj[n++] = '}';
    scan(obj, n, 0, &R);
    CHECK_ERR(R.rc, -EMSGSIZE);
    CHECK_EQ(R.j.why, LR_JSON_DEPTH);
}

TEST(token_limit_is_the_callers)
{
    const char *doc = "{\"a\":[1,2],\"b\":null}"; /* 5 value tokens */
    scan(doc, strlen(doc), 5, &R);
    CHECK_EQ(R.rc, 0);
    scan(doc, strlen(doc), 4, &R);
    CHECK_ERR(R.rc, -EMSGSIZE);
    CHECK_EQ(R.j.why, LR_JSON_TOKENS);
    CHECK_EQ(R.j.err_off, 15); /* the null */
    CHECK(strcmp(lr_json_why_text(R.j.why), "too many tokens") == 0);
}

TEST(etcd_range_reply_in_a_few_lines)
{
    const char *body = "{\"header\":{\"cluster_id\":\"14841639068965178418\",\"revision\":\"12\","
                       "\"raft_term\":\"2\"},\"kvs\":[{\"key\":\"bGVhc2UvYQ==\","
                       "\"create_revision\":\"5\",\"mod_revision\":\"9\",\"version\":\"3\","
                       "\"value\":\"eA==\",\"lease\":\"7587862082837413902\"},"
                       "{\"key\":\"bGVhc2UvYg==\",\"create_revision\":\"6\"}],\"count\":\"2\"}";
    struct lr_json j;
    struct lr_json_tok root, m, kv, f; /* the document, a member, a kv, a field */
    int64_t revision = 0;
    int64_t create[2] = {0};
    int64_t lease = 0;
    int nkv = 0;
    int rc;
    lr_json_init(&j, guard_tail(body, strlen(body)), strlen(body), 256);
    CHECK_EQ(lr_json_next(&j, &root), 1);
    while ((rc = lr_json_item(&j, &root, &m)) == 1) {
        if (lr_json_key_is(&m, "header") && lr_json_find(&j, &m, "revision", &f) == 1)
            CHECK_OK(lr_json_i64_str(&f, &revision));
        else if (lr_json_key_is(&m, "kvs"))
            while (lr_json_item(&j, &m, &kv) == 1 && nkv < 2) {
                while (lr_json_item(&j, &kv, &f) == 1)
                    if (lr_json_key_is(&f, "create_revision"))
                        CHECK_OK(lr_json_i64_str(&f, &create[nkv]));
                    else if (lr_json_key_is(&f, "lease"))
                        CHECK_OK(lr_json_i64_str(&f, &lease));
                nkv++;
            }
    }
    CHECK_EQ(rc, 0);
    CHECK_EQ(lr_json_next(&j, &f), 0); /* nothing after the document */
    CHECK_EQ(revision, 12);
    CHECK_EQ(nkv, 2);
    CHECK_EQ(create[0], 5);
    CHECK_EQ(create[1], 6);
    CHECK(lease == 7587862082837413902LL); /* > 2^53: exact */
}

TEST(cosmos_document_and_skipping)
{
    const char *body = "{\"id\":\"lease\\/a\",\"owner\":\"tok\",\"meta\":{\"x\":[1,{\"y\":[]}]},"
                       "\"fence\":9007199254740993,\"ttl\":15,\"_etag\":\"\\\"0000-01\\\"\","
                       "\"_ts\":1764495000}";
    struct lr_json j;
    struct lr_json_tok root, f, meta;
    lr_json_init(&j, guard_tail(body, strlen(body)), strlen(body), 64);
    CHECK_EQ(lr_json_next(&j, &root), 1);
    CHECK_EQ(lr_json_find(&j, &root, "id", &f), 1);
    CHECK(f.escaped);
    CHECK(lr_json_str_is(&f, "lease/a"));
    CHECK(!lr_json_str_is(&f, "lease/"));
    CHECK_EQ(lr_json_find(&j, &root, "meta", &meta), 1);
    CHECK_EQ(meta.type, LR_JSON_OBJECT);
    CHECK_EQ(lr_json_next(&j, &f), 1); /* step into meta, then let find skip the rest */
    CHECK_EQ(f.type, LR_JSON_ARRAY);
    uint64_t fence = 0;
    uint64_t ts = 0;
    CHECK_EQ(lr_json_find(&j, &root, "fence", &f), 1);
    CHECK_OK(lr_json_u64(&f, &fence));
    CHECK(fence == 9007199254740993ULL);
    CHECK_EQ(lr_json_find(&j, &root, "_etag", &f), 1);
    char etag[32];
    int n = lr_json_unescape(f.s, f.n, etag, sizeof(etag));
    CHECK_EQ(n, 9);
    CHECK(memcmp(etag, "\"0000-01\"", 9) == 0);
    CHECK_EQ(lr_json_find(&j, &root, "_ts", &f), 1);
    CHECK_OK(lr_json_u64(&f, &ts));
    CHECK(ts == 1764495000);
    CHECK_EQ(lr_json_find(&j, &root, "absent", &f), 0); /* root closed */
    CHECK_EQ(lr_json_item(&j, &root, &f), 0);
    CHECK_EQ(lr_json_item(&j, &meta, &f), 0);     /* closed long ago */
    CHECK_ERR(lr_json_item(&j, &f, &f), -EPROTO); /* not a container */
    CHECK_EQ(j.why, LR_JSON_MISUSE);

    /* skip consumes a subtree and nothing more */
    const char *arr = "[[1,[2,3]],{\"k\":{}},4]";
    lr_json_init(&j, guard_tail(arr, strlen(arr)), strlen(arr), 0);
    CHECK_EQ(lr_json_next(&j, &root), 1);
    CHECK_EQ(lr_json_item(&j, &root, &f), 1);
    CHECK_OK(lr_json_skip(&j, &f));
    CHECK_EQ(lr_json_item(&j, &root, &f), 1);
    CHECK_EQ(f.type, LR_JSON_OBJECT);
    CHECK_OK(lr_json_skip(&j, &f));
    CHECK_OK(lr_json_skip(&j, &f)); /* twice: no-op */
    CHECK_EQ(lr_json_item(&j, &root, &f), 1);
    CHECK(f.n == 1 && f.s[0] == '4');
    CHECK_EQ(lr_json_item(&j, &root, &f), 0);
    CHECK_EQ(lr_json_next(&j, &f), 0);

    /* errors come through the helpers too */
    const char *broken = "{\"a\":[1,2 3]}";
    lr_json_init(&j, guard_tail(broken, strlen(broken)), strlen(broken), 0);
    CHECK_EQ(lr_json_next(&j, &root), 1);
    CHECK_ERR(lr_json_find(&j, &root, "b", &f), -EPROTO);
    CHECK_EQ(j.why, LR_JSON_EXPECTED_COMMA);
    CHECK_EQ(j.err_off, 10);
}

TESTS(T(valid_documents_scan_to_their_tokens), T(invalid_documents_say_what_and_where),
      T(every_truncation_is_an_error_without_over_read), T(numbers_beyond_2_53_stay_exact),
      T(unescape_decodes_into_a_bounded_buffer), T(depth_at_the_limit_and_one_past),
      T(token_limit_is_the_callers), T(etcd_range_reply_in_a_few_lines),
      T(cosmos_document_and_skipping))
