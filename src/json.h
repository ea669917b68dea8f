/* SPDX-License-Identifier: MIT */
/*
 * json.h - allocation-free JSON (RFC 8259) pull scanner (internal).
 *
 * Pure functions over one complete document in memory (an HTTP body): no
 * I/O, no allocation, no global state. lr_json_next() hands out one token
 * per call: a scalar value, the opening of an object or array, or its end.
 * A value inside an object carries its member name (.key), so members need
 * no token of their own. Strings and numbers are slices into the input:
 * a string without escapes can be used as is; one with escapes (.escaped)
 * goes through lr_json_unescape(). Numbers stay text, so nothing is lost
 * beyond 2^53: lr_json_u64/i64 parse them exactly, and lr_json_i64_str
 * parses the int64 that etcd sends as a JSON string.
 *
 * The scanner validates everything it passes over: grammar, escapes
 * (\uXXXX with surrogate pairs), raw UTF-8, control bytes, number syntax.
 * Limits: nesting depth LR_JSON_MAX_DEPTH and a caller-set count of value
 * tokens. Errors are -EPROTO (malformed) or -EMSGSIZE (a limit), with the
 * byte offset and a reason (lr_json_why_text) kept in the scanner; after an
 * error every call returns the same error.
 *
 * The usual walk (see tests/test_json.c, etcd_range_reply_in_a_few_lines):
 *     struct lr_json j; struct lr_json_tok root, m;
 *     lr_json_init(&j, body, len, 4096);
 *     if (lr_json_next(&j, &root) != 1 || root.type != LR_JSON_OBJECT) ...
 *     while ((rc = lr_json_item(&j, &root, &m)) == 1)
 *         if (lr_json_key_is(&m, "kvs")) ... lr_json_item(&j, &m, &kv) ...
 * lr_json_item skips whatever the caller did not descend into.
 * Layer: bytes only; knows nothing of sockets, HTTP or leases.
 */
#ifndef LR_JSON_H
#define LR_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define LR_JSON_MAX_DEPTH 32 /* nested objects/arrays; the 33rd is -EMSGSIZE */

enum lr_json_type {
    LR_JSON_OBJECT = '{',     /* opens; members follow at depth + 1 */
    LR_JSON_ARRAY = '[',      /* opens; elements follow at depth + 1 */
    LR_JSON_OBJECT_END = '}', /* closes, at the depth of its opening token */
    LR_JSON_ARRAY_END = ']',
    LR_JSON_STRING = '"', /* s/n: the contents without quotes, raw */
    LR_JSON_NUMBER = '0', /* s/n: the number's text as sent */
    LR_JSON_TRUE = 't',
    LR_JSON_FALSE = 'f',
    LR_JSON_NULL = 'n',
};

/* Why a scan failed (lr_json.why); lr_json_why_text() names each. */
enum lr_json_why {
    LR_JSON_OK = 0,
    LR_JSON_TRUNCATED,     /* the input ended inside a value or container */
    LR_JSON_UNTERMINATED,  /* the input ended inside a string */
    LR_JSON_BAD_ESCAPE,    /* \ followed by something else than "\/bfnrtu */
    LR_JSON_BAD_UNICODE,   /* \u not 4 hex digits, or a lone/unpaired surrogate */
    LR_JSON_CONTROL,       /* a raw byte < 0x20 inside a string */
    LR_JSON_BAD_UTF8,      /* invalid, overlong, surrogate or > U+10FFFF UTF-8 */
    LR_JSON_LEADING_ZERO,  /* 01, -01 */
    LR_JSON_BAD_NUMBER,    /* -, 1., .5, 1e, +1 ... */
    LR_JSON_BAD_LITERAL,   /* not exactly true, false or null */
    LR_JSON_UNEXPECTED,    /* a byte that cannot start a value */
    LR_JSON_EXPECTED_NAME, /* an object member without a string name */
    LR_JSON_EXPECTED_COLON,
    LR_JSON_EXPECTED_COMMA,   /* neither ',' nor the closing bracket */
    LR_JSON_TRAILING_COMMA,   /* [1,] {"a":1,} */
    LR_JSON_TRAILING_GARBAGE, /* bytes after the document's value */
    LR_JSON_EMPTY,            /* no value at all */
    LR_JSON_DEPTH,            /* nesting deeper than LR_JSON_MAX_DEPTH (-EMSGSIZE) */
    LR_JSON_TOKENS,           /* more value tokens than the caller's limit (-EMSGSIZE) */
    LR_JSON_MISUSE,           /* lr_json_item on a container that is already closed */
};

struct lr_json_tok {
    uint8_t type;     /* enum lr_json_type */
    uint8_t depth;    /* 0 for the document's value */
    bool escaped;     /* STRING: s/n contain backslash escapes */
    bool key_escaped; /* key contains backslash escapes */
    uint32_t id;      /* ordinal of the value token (ends share their opener's) */
    const char *s;    /* STRING/NUMBER: slice into the input; else NULL */
    size_t n;
    const char *key; /* member name (raw, no quotes) inside an object; else NULL */
    size_t keylen;
    size_t off; /* byte offset of the token in the input */
};

struct lr_json {
    const char *buf;
    size_t len;
    size_t pos;
    uint32_t max_tokens;
    uint32_t ntok;
    uint8_t depth;                       /* open containers */
    bool first;                          /* the innermost container has just opened */
    bool done;                           /* the document's value is complete */
    char kind[LR_JSON_MAX_DEPTH];        /* '{' or '[' per open container */
    uint32_t open_id[LR_JSON_MAX_DEPTH]; /* the opening token's id */
    int err;                             /* 0, -EPROTO or -EMSGSIZE */
    enum lr_json_why why;
    size_t err_off; /* where: a byte offset into the input */
};

/* lr_json_init - scan buf[0..len) (need not be NUL-terminated), allowing at
 * most max_tokens value tokens (0 = no limit but the input's size). */
void lr_json_init(struct lr_json *j, const char *buf, size_t len, uint32_t max_tokens);

/* lr_json_next - the next token into *t.
 * Returns: 1 token; 0 end of document (only whitespace followed the value);
 * -EPROTO / -EMSGSIZE (j->why, j->err_off say what and where). */
int lr_json_next(struct lr_json *j, struct lr_json_tok *t);

/* lr_json_item - the next member/element of @parent (an OBJECT or ARRAY
 * token this scanner handed out and has not closed yet) into *t, first
 * skipping whatever is left of the previous one.
 * Returns: 1 item; 0 @parent has ended (its end token consumed); <0 error. */
int lr_json_item(struct lr_json *j, const struct lr_json_tok *parent, struct lr_json_tok *t);

/* lr_json_find - lr_json_item until a member named @key (forward only:
 * members before it are skipped for good). 1 found; 0 not in the rest of
 * @parent (now closed); <0 error. */
int lr_json_find(struct lr_json *j, const struct lr_json_tok *parent, const char *key,
                 struct lr_json_tok *t);

/* lr_json_skip - consume the rest of @t's subtree if @t opened a container
 * that is still open; no-op for scalars. 0 or <0 error. */
int lr_json_skip(struct lr_json *j, const struct lr_json_tok *t);

/* lr_json_key_is / lr_json_str_is - the member name / STRING value equals
 * the NUL-terminated @s once unescaped (an escaped one is decoded on the
 * stack, so @s longer than 256 bytes never matches an escaped name). */
bool lr_json_key_is(const struct lr_json_tok *t, const char *s);
bool lr_json_str_is(const struct lr_json_tok *t, const char *s);

/* lr_json_unescape - decode a string slice (a token's s/n or key/keylen)
 * into out[0..cap) as UTF-8, not NUL-terminated. Validates like the scanner.
 * Returns: the length; -ENOBUFS if it does not fit; -EPROTO if malformed. */
int lr_json_unescape(const char *s, size_t n, char *out, size_t cap);

/* lr_json_u64 / lr_json_i64 - a NUMBER token that is an integer (no
 * fraction, no exponent), exactly. -EINVAL: not an integer NUMBER; -ERANGE:
 * out of range (for u64: any negative but -0). lr_json_i64_str - the same
 * for a STRING token holding an integer in JSON syntax ("12", "-5"): how
 * etcd sends int64. */
int lr_json_u64(const struct lr_json_tok *t, uint64_t *out);
int lr_json_i64(const struct lr_json_tok *t, int64_t *out);
int lr_json_i64_str(const struct lr_json_tok *t, int64_t *out);

/* lr_json_why_text - a short reason ("unterminated string"). */
const char *lr_json_why_text(enum lr_json_why why);

#endif
