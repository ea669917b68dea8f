/* SPDX-License-Identifier: MIT */
/*
 * json.c - the JSON pull scanner (see json.h).
 *
 * One pass, no backtracking: every byte is read once by the scanner, and
 * every read is bounded by the input length (there is no NUL sentinel).
 * String contents are walked by one routine, str_walk, used both by the
 * scanner (validate only) and by lr_json_unescape (decode), so the two can
 * never disagree about what a valid string is.
 */
#include "json.h"

#include <errno.h>
#include <string.h>

#include "fmt.h"

static const char *const why_text[] = {
    [LR_JSON_OK] = "ok",
    [LR_JSON_TRUNCATED] = "truncated input",
    [LR_JSON_UNTERMINATED] = "unterminated string",
    [LR_JSON_BAD_ESCAPE] = "bad escape",
    [LR_JSON_BAD_UNICODE] = "bad \\u escape or unpaired surrogate",
    [LR_JSON_CONTROL] = "control byte in string",
    [LR_JSON_BAD_UTF8] = "invalid UTF-8",
    [LR_JSON_LEADING_ZERO] = "leading zero in number",
    [LR_JSON_BAD_NUMBER] = "bad number",
    [LR_JSON_BAD_LITERAL] = "bad literal",
    [LR_JSON_UNEXPECTED] = "unexpected byte",
    [LR_JSON_EXPECTED_NAME] = "expected member name",
    [LR_JSON_EXPECTED_COLON] = "expected ':'",
    [LR_JSON_EXPECTED_COMMA] = "expected ',' or closing bracket",
    [LR_JSON_TRAILING_COMMA] = "trailing comma",
    [LR_JSON_TRAILING_GARBAGE] = "trailing garbage",
    [LR_JSON_EMPTY] = "empty input",
    [LR_JSON_DEPTH] = "depth exceeded",
    [LR_JSON_TOKENS] = "too many tokens",
    [LR_JSON_MISUSE] = "container already closed",
};

const char *lr_json_why_text(enum lr_json_why why)
{
    if ((size_t)why < sizeof(why_text) / sizeof(why_text[0]) && why_text[why])
        return why_text[why];
    return "unknown";
}

void lr_json_init(struct lr_json *j, const char *buf, size_t len, uint32_t max_tokens)
{
    memset(j, 0, sizeof(*j));
    j->buf = buf;
    j->len = len;
    j->max_tokens = max_tokens ? max_tokens : UINT32_MAX;
}

static int fail(struct lr_json *j, enum lr_json_why why, size_t off)
{
    j->err = (why == LR_JSON_DEPTH || why == LR_JSON_TOKENS) ? -EMSGSIZE : -EPROTO;
    j->why = why;
    j->err_off = off;
    return j->err;
}

static void skip_ws(struct lr_json *j)
{
    while (j->pos < j->len) {
        char c = j->buf[j->pos];
        if (c != ' ' && c != '\t' && c != '\n' && c != '\r')
            return;
        j->pos++;
    }
}

/* Four hex digits at s[0..4) (caller checked they exist), or -1. */
static int32_t hex4(const char *s)
{
    int32_t v = 0;
    for (int i = 0; i < 4; i++) {
        int h = lr__hexval(s[i]);
        if (h < 0)
            return -1;
        v = v * 16 + h;
    }
    return v;
}

/* Length of the valid UTF-8 sequence at s[0..avail), 0 if invalid, or
 * avail+1 if it is cut short (RFC 3629 table: no overlongs, no surrogates,
 * nothing above U+10FFFF). */
static size_t utf8_len(const unsigned char *s, size_t avail)
{
    unsigned char c = s[0];
    size_t need;
    unsigned char lo = 0x80;
    unsigned char hi = 0xBF;
    if (c < 0x80)
        return 1;
    if (c >= 0xC2 && c <= 0xDF)
        need = 2;
    else if (c >= 0xE0 && c <= 0xEF) {
        need = 3;
        if (c == 0xE0)
            lo = 0xA0;
        else if (c == 0xED)
            hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        need = 4;
        if (c == 0xF0)
            lo = 0x90;
        else if (c == 0xF4)
            hi = 0x8F;
    } else
        return 0;
    for (size_t i = 1; i < need; i++) {
        if (i >= avail)
            return avail + 1;
        unsigned char b = s[i];
        if (b < (i == 1 ? lo : 0x80) || b > (i == 1 ? hi : 0xBF))
            return 0;
    }
    return need;
}

static size_t put_utf8(char *o, uint32_t cp)
{
    if (cp < 0x80) {
        o[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (char)(0xC0 | (cp >> 6));
        o[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (char)(0xE0 | (cp >> 12));
        o[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        o[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    o[0] = (char)(0xF0 | (cp >> 18));
    o[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    o[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    o[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

/* Result of walking string contents. */
struct walk {
    size_t stop; /* offset of the closing quote, or of the bad byte */
    size_t outn; /* bytes written (decode mode) */
    bool escaped;
    enum lr_json_why why; /* LR_JSON_OK, or what is wrong at .stop */
    bool nobufs;          /* decode mode: out[] was too small */
};

/* Walk string contents s[0..n) up to an unescaped '"' (w->stop = its
 * offset) or the end (w->stop = n: unterminated for the scanner, the normal
 * end for a token slice). With @out, decode into out[0..cap). */
static void str_walk(const char *s, size_t n, char *out, size_t cap, struct walk *w)
{
    memset(w, 0, sizeof(*w));
    size_t i = 0;
    while (i < n) {
        unsigned char c = (unsigned char)s[i];
        char tmp[4];
        const char *src = tmp;
        size_t len;
        if (c == '"')
            break;
        if (c < 0x20) {
            w->why = LR_JSON_CONTROL;
            w->stop = i;
            return;
        }
        if (c == '\\') {
            w->escaped = true;
            if (i + 1 >= n) {
                w->why = LR_JSON_UNTERMINATED;
                w->stop = n;
                return;
            }
            char e = s[i + 1];
            const char *from = "\"\\/bfnrt";
            const char *to = "\"\\/\b\f\n\r\t";
            const char *hit = e ? strchr(from, e) : NULL;
            if (hit) {
                tmp[0] = to[hit - from];
                len = 1;
                i += 2;
            } else if (e == 'u') {
                if (i + 6 > n) {
                    /* cut short: unterminated, unless a non-hex digit is already there */
                    w->why = LR_JSON_UNTERMINATED;
                    w->stop = n;
                    for (size_t k = i + 2; k < n; k++)
                        if (lr__hexval(s[k]) < 0) {
                            w->why = LR_JSON_BAD_UNICODE;
                            w->stop = i;
                        }
                    return;
                }
                int32_t cp = hex4(s + i + 2);
                if (cp < 0) {
                    w->why = LR_JSON_BAD_UNICODE;
                    w->stop = i;
                    return;
                }
                size_t used = 6;
                if (cp >= 0xDC00 && cp <= 0xDFFF) {
                    w->why = LR_JSON_BAD_UNICODE;
                    w->stop = i;
                    return;
                }
                if (cp >= 0xD800 && cp <= 0xDBFF) {
                    /* a high surrogate needs \uDC00-\uDFFF right after it */
                    size_t k = i + 6;
                    if (k + 6 > n) {
                        bool could = true; /* could the rest still be \uDCxx? */
                        const char *want = "\\u";
                        for (size_t m = k; m < n && could; m++) {
                            if (m - k < 2)
                                could = s[m] == want[m - k];
                            else
                                could = lr__hexval(s[m]) >= 0;
                        }
                        w->why = could ? LR_JSON_UNTERMINATED : LR_JSON_BAD_UNICODE;
                        w->stop = could ? n : i;
                        return;
                    }
                    int32_t lo = s[k] == '\\' && s[k + 1] == 'u' ? hex4(s + k + 2) : -1;
                    if (lo < 0xDC00 || lo > 0xDFFF) {
                        w->why = LR_JSON_BAD_UNICODE;
                        w->stop = i;
                        return;
                    }
                    cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                    used = 12;
                }
                len = put_utf8(tmp, (uint32_t)cp);
                i += used;
            } else {
                w->why = LR_JSON_BAD_ESCAPE;
                w->stop = i;
                return;
            }
        } else {
            len = utf8_len((const unsigned char *)s + i, n - i);
            if (len == 0) {
                w->why = LR_JSON_BAD_UTF8;
                w->stop = i;
                return;
            }
            if (len > n - i) {
                w->why = LR_JSON_UNTERMINATED;
                w->stop = n;
                return;
            }
            src = s + i;
            i += len;
        }
        if (out) {
            if (len > cap - w->outn) {
                w->nobufs = true;
                w->stop = i;
                return;
            }
            memcpy(out + w->outn, src, len);
        }
        w->outn += len;
    }
    w->stop = i;
}

int lr_json_unescape(const char *s, size_t n, char *out, size_t cap)
{
    struct walk w;
    str_walk(s, n, out, cap, &w);
    if (w.nobufs)
        return -ENOBUFS;
    if (w.why != LR_JSON_OK || w.stop != n)
        return -EPROTO;
    if (w.outn > (size_t)INT32_MAX)
        return -ENOBUFS;
    return (int)w.outn;
}

/* A string at j->pos (the opening quote): its contents into *s and *n. */
static int scan_string(struct lr_json *j, const char **s, size_t *n, bool *escaped)
{
    size_t start = j->pos + 1;
    struct walk w;
    str_walk(j->buf + start, j->len - start, NULL, 0, &w);
    if (w.why != LR_JSON_OK)
        return fail(j, w.why, start + w.stop);
    if (start + w.stop >= j->len)
        return fail(j, LR_JSON_UNTERMINATED, j->len);
    *s = j->buf + start;
    *n = w.stop;
    *escaped = w.escaped;
    j->pos = start + w.stop + 1;
    return 0;
}

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* Digits at j->pos; at least one, else an error at the first non-digit. */
static int scan_digits(struct lr_json *j)
{
    if (j->pos >= j->len)
        return fail(j, LR_JSON_TRUNCATED, j->len);
    if (!is_digit(j->buf[j->pos]))
        return fail(j, LR_JSON_BAD_NUMBER, j->pos);
    while (j->pos < j->len && is_digit(j->buf[j->pos]))
        j->pos++;
    return 0;
}

static int scan_number(struct lr_json *j)
{
    int rc;
    if (j->buf[j->pos] == '-')
        j->pos++;
    if (j->pos >= j->len)
        return fail(j, LR_JSON_TRUNCATED, j->len);
    if (j->buf[j->pos] == '0') {
        j->pos++;
        if (j->pos < j->len && is_digit(j->buf[j->pos]))
            return fail(j, LR_JSON_LEADING_ZERO, j->pos - 1);
    } else if ((rc = scan_digits(j)) < 0)
        return rc;
    if (j->pos < j->len && j->buf[j->pos] == '.') {
        j->pos++;
        if ((rc = scan_digits(j)) < 0)
            return rc;
    }
    if (j->pos < j->len && (j->buf[j->pos] == 'e' || j->buf[j->pos] == 'E')) {
        j->pos++;
        if (j->pos < j->len && (j->buf[j->pos] == '+' || j->buf[j->pos] == '-'))
            j->pos++;
        if ((rc = scan_digits(j)) < 0)
            return rc;
    }
    return 0;
}

static int scan_literal(struct lr_json *j, const char *word)
{
    size_t wl = strlen(word);
    for (size_t i = 0; i < wl; i++) {
        if (j->pos + i >= j->len)
            return fail(j, LR_JSON_TRUNCATED, j->len);
        if (j->buf[j->pos + i] != word[i])
            return fail(j, LR_JSON_BAD_LITERAL, j->pos + i);
    }
    j->pos += wl;
    return 0;
}

/* A value at j->pos (whitespace skipped) into *t. */
static int scan_value(struct lr_json *j, struct lr_json_tok *t)
{
    int rc = 0;
    if (j->pos >= j->len)
        return fail(j, j->depth || j->ntok ? LR_JSON_TRUNCATED : LR_JSON_EMPTY, j->len);
    char c = j->buf[j->pos];
    t->off = j->pos;
    t->depth = j->depth;
    if (j->ntok >= j->max_tokens)
        return fail(j, LR_JSON_TOKENS, j->pos);
    switch (c) {
    case '{':
    case '[':
        if (j->depth >= LR_JSON_MAX_DEPTH)
            return fail(j, LR_JSON_DEPTH, j->pos);
        j->kind[j->depth] = c;
        j->open_id[j->depth] = j->ntok;
        j->depth++;
        j->first = true;
        j->pos++;
        t->type = (uint8_t)c;
        t->id = j->ntok++;
        return 1;
    case '"':
        rc = scan_string(j, &t->s, &t->n, &t->escaped);
        t->type = LR_JSON_STRING;
        break;
    case 't':
        rc = scan_literal(j, "true");
        t->type = LR_JSON_TRUE;
        break;
    case 'f':
        rc = scan_literal(j, "false");
        t->type = LR_JSON_FALSE;
        break;
    case 'n':
        rc = scan_literal(j, "null");
        t->type = LR_JSON_NULL;
        break;
    default:
        if (c == '-' || is_digit(c)) {
            rc = scan_number(j);
            t->type = LR_JSON_NUMBER;
            t->s = j->buf + t->off;
            t->n = j->pos - t->off;
            break;
        }
        return fail(j, LR_JSON_UNEXPECTED, j->pos);
    }
    if (rc < 0)
        return rc;
    t->id = j->ntok++;
    j->first = false;
    if (j->depth == 0)
        j->done = true;
    return 1;
}

int lr_json_next(struct lr_json *j, struct lr_json_tok *t)
{
    memset(t, 0, sizeof(*t));
    if (j->err)
        return j->err;
    skip_ws(j);
    if (j->done) {
        if (j->pos < j->len)
            return fail(j, LR_JSON_TRAILING_GARBAGE, j->pos);
        return 0;
    }
    if (j->depth == 0)
        return scan_value(j, t);
    if (j->pos >= j->len)
        return fail(j, LR_JSON_TRUNCATED, j->len);
    char kind = j->kind[j->depth - 1];
    char close = kind == '{' ? '}' : ']';
    char c = j->buf[j->pos];
    if (c == close) {
        j->depth--;
        t->type = (uint8_t)close;
        t->depth = j->depth;
        t->id = j->open_id[j->depth];
        t->off = j->pos++;
        j->first = false;
        if (j->depth == 0)
            j->done = true;
        return 1;
    }
    if (!j->first) {
        if (c != ',')
            return fail(j, LR_JSON_EXPECTED_COMMA, j->pos);
        j->pos++;
        skip_ws(j);
        if (j->pos >= j->len)
            return fail(j, LR_JSON_TRUNCATED, j->len);
        if (j->buf[j->pos] == close)
            return fail(j, LR_JSON_TRAILING_COMMA, j->pos);
    }
    if (kind == '{') {
        if (j->buf[j->pos] != '"')
            return fail(j, LR_JSON_EXPECTED_NAME, j->pos);
        const char *key;
        size_t keylen;
        bool kesc;
        int rc = scan_string(j, &key, &keylen, &kesc);
        if (rc < 0)
            return rc;
        skip_ws(j);
        if (j->pos >= j->len)
            return fail(j, LR_JSON_TRUNCATED, j->len);
        if (j->buf[j->pos] != ':')
            return fail(j, LR_JSON_EXPECTED_COLON, j->pos);
        j->pos++;
        skip_ws(j);
        rc = scan_value(j, t);
        t->key = key;
        t->keylen = keylen;
        t->key_escaped = kesc;
        return rc;
    }
    return scan_value(j, t);
}

/* Is @t a container this scanner still has open? */
static bool still_open(const struct lr_json *j, const struct lr_json_tok *t)
{
    return (t->type == LR_JSON_OBJECT || t->type == LR_JSON_ARRAY) && j->depth > t->depth &&
           j->open_id[t->depth] == t->id;
}

int lr_json_skip(struct lr_json *j, const struct lr_json_tok *t)
{
    if (j->err)
        return j->err;
    if (!still_open(j, t))
        return 0;
    struct lr_json_tok x;
    while (j->depth > t->depth) {
        int rc = lr_json_next(j, &x);
        if (rc < 0)
            return rc;
    }
    return 0;
}

int lr_json_item(struct lr_json *j, const struct lr_json_tok *parent, struct lr_json_tok *t)
{
    if (j->err)
        return j->err;
    if (!still_open(j, parent)) {
        if (parent->type == LR_JSON_OBJECT || parent->type == LR_JSON_ARRAY)
            return 0;
        return fail(j, LR_JSON_MISUSE, j->pos);
    }
    /* leave whatever the caller did not descend into */
    while (j->depth > parent->depth + 1) {
        int rc = lr_json_next(j, t);
        if (rc < 0)
            return rc;
    }
    int rc = lr_json_next(j, t);
    if (rc < 0)
        return rc;
    if (t->type == LR_JSON_OBJECT_END || t->type == LR_JSON_ARRAY_END)
        return 0;
    return 1;
}

int lr_json_find(struct lr_json *j, const struct lr_json_tok *parent, const char *key,
                 struct lr_json_tok *t)
{
    int rc;
    while ((rc = lr_json_item(j, parent, t)) == 1)
        if (lr_json_key_is(t, key))
            return 1;
    return rc;
}

/* s[0..n) (raw, escaped or not) equals the NUL-terminated @want. */
static bool slice_is(const char *s, size_t n, bool escaped, const char *want)
{
    size_t wl = strlen(want);
    if (!s)
        return false;
    if (!escaped)
        return n == wl && memcmp(s, want, n) == 0;
    char buf[256];
    if (wl > sizeof(buf))
        return false;
    int got = lr_json_unescape(s, n, buf, wl < sizeof(buf) ? wl + 1 : wl);
    return got >= 0 && (size_t)got == wl && memcmp(buf, want, wl) == 0;
}

bool lr_json_key_is(const struct lr_json_tok *t, const char *s)
{
    return slice_is(t->key, t->keylen, t->key_escaped, s);
}

bool lr_json_str_is(const struct lr_json_tok *t, const char *s)
{
    return t->type == LR_JSON_STRING && slice_is(t->s, t->n, t->escaped, s);
}

/* s[0..n) as a JSON integer: -?(0|[1-9][0-9]*), magnitude into *mag. */
static int parse_int(const char *s, size_t n, bool *neg, uint64_t *mag)
{
    size_t i = 0;
    *neg = false;
    *mag = 0;
    if (i < n && s[i] == '-') {
        *neg = true;
        i++;
    }
    if (i >= n || !is_digit(s[i]) || (s[i] == '0' && i + 1 < n))
        return -EINVAL;
    for (; i < n; i++) {
        if (!is_digit(s[i]))
            return -EINVAL;
        unsigned d = (unsigned)(s[i] - '0');
        if (*mag > (UINT64_MAX - d) / 10)
            return -ERANGE;
        *mag = *mag * 10 + d;
    }
    return 0;
}

static int to_i64(bool neg, uint64_t mag, int64_t *out)
{
    if (neg) {
        if (mag > (uint64_t)INT64_MAX + 1)
            return -ERANGE;
        *out = mag == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)mag;
        return 0;
    }
    if (mag > (uint64_t)INT64_MAX)
        return -ERANGE;
    *out = (int64_t)mag;
    return 0;
}

/* @t, of type @type (a STRING without escapes), as a JSON integer. */
static int int_of(const struct lr_json_tok *t, uint8_t type, bool *neg, uint64_t *mag)
{
    if (t->type != type || t->escaped)
        return -EINVAL;
    return parse_int(t->s, t->n, neg, mag);
}

int lr_json_u64(const struct lr_json_tok *t, uint64_t *out)
{
    bool neg;
    uint64_t mag;
    int rc = int_of(t, LR_JSON_NUMBER, &neg, &mag);
    if (rc < 0)
        return rc;
    if (neg && mag != 0)
        return -ERANGE;
    *out = mag;
    return 0;
}

int lr_json_i64(const struct lr_json_tok *t, int64_t *out)
{
    bool neg;
    uint64_t mag;
    int rc = int_of(t, LR_JSON_NUMBER, &neg, &mag);
    return rc < 0 ? rc : to_i64(neg, mag, out);
}

int lr_json_i64_str(const struct lr_json_tok *t, int64_t *out)
{
    bool neg;
    uint64_t mag;
    int rc = int_of(t, LR_JSON_STRING, &neg, &mag);
    return rc < 0 ? rc : to_i64(neg, mag, out);
}
