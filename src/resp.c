/* SPDX-License-Identifier: MIT */
/*
 * resp.c - RESP2 command writer and incremental RESP2/RESP3 reply parser
 * (contract in resp.h).
 *
 * The parser is an nginx-style state machine with four states: expecting a
 * type byte, reading a line, holding a finished line that still wants its LF,
 * and reading a bulk payload plus its CRLF. Everything a token needs is either
 * inside the caller's current buffer (then tok->str points there: the common
 * case costs no copy) or was split across calls (then the bytes seen so far
 * wait in p->scratch, which is sized for the largest legal line or payload).
 * Invariants: p->have <= LR_RESP_MAX_STR + 2; p->depth <= LR_RESP_MAX_DEPTH
 * and p->remaining[0..depth) are all > 0; no byte outside buf[0..len) is ever
 * read. Every error is decided by the first offending byte alone, so the
 * result never depends on how the stream was split.
 * Layer: bytes only; knows nothing of sockets, the loop or leases.
 */
#include <errno.h>
#include <limits.h>
#include <string.h>

#include "fmt.h"
#include "resp.h"

enum {
    ST_TYPE = 0, /* expecting a type byte; 0 so that a zeroed parser starts here */
    ST_LINE,     /* reading a line; its first p->have bytes are in scratch */
    ST_LF,       /* the line (p->have bytes in scratch) and its CR are in, LF expected */
    ST_BULK,     /* reading p->bulk_len payload bytes + CRLF; p->have of them in scratch */
};

void lr_resp_parser_init(struct lr_resp_parser *p)
{
    memset(p, 0, sizeof(*p));
}

static inline int fail(struct lr_resp_parser *p, int err)
{
    p->error = err;
    return err;
}

static inline bool is_type(unsigned char c)
{
    switch (c) {
    case LR_RESP_SIMPLE:
    case LR_RESP_ERROR:
    case LR_RESP_INT:
    case LR_RESP_BULK:
    case LR_RESP_ARRAY:
    case LR_RESP_NULL:
    case LR_RESP_BOOL:
    case LR_RESP_DOUBLE:
    case LR_RESP_BIGNUM:
    case LR_RESP_BLOBERR:
    case LR_RESP_VERBATIM:
    case LR_RESP_MAP:
    case LR_RESP_SET:
    case LR_RESP_PUSH:
    case LR_RESP_ATTR:
        return true;
    default:
        return false;
    }
}

/*
 * A RESP integer (also lengths and counts): optional '-', then 1..19 digits,
 * nothing else. 19 digits cannot overflow a uint64_t, so the range check can
 * wait until the end.
 */
static int parse_int(const char *s, size_t n, int64_t *out)
{
    bool neg = false;
    uint64_t v = 0;

    if (n > 0 && s[0] == '-') {
        neg = true;
        s++;
        n--;
    }
    if (n == 0 || n > 19)
        return -EPROTO;
    for (size_t i = 0; i < n; i++) {
        unsigned d = (unsigned)(unsigned char)s[i] - '0';
        if (d > 9)
            return -EPROTO;
        v = v * 10 + d;
    }
    if (neg) {
        if (v > (uint64_t)INT64_MAX + 1)
            return -EPROTO;
        *out = v == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)v;
    } else {
        if (v > (uint64_t)INT64_MAX)
            return -EPROTO;
        *out = (int64_t)v;
    }
    return 0;
}

/* RESP3 big number: optional '-' and at least one digit. */
static bool is_bignum(const char *s, size_t n)
{
    if (n > 0 && s[0] == '-') {
        s++;
        n--;
    }
    if (n == 0)
        return false;
    for (size_t i = 0; i < n; i++) {
        if ((unsigned)(unsigned char)s[i] - '0' > 9)
            return false;
    }
    return true;
}

/*
 * An element at the current depth is complete: count it against every
 * enclosing aggregate it finishes. Returns true when that completes a
 * top-level reply. An attribute that completes is popped without counting as
 * an element of its parent: the element it annotates is still to come.
 */
static bool element_done(struct lr_resp_parser *p)
{
    while (p->depth > 0) {
        unsigned d = p->depth - 1u;
        if (--p->remaining[d] > 0)
            return false;
        p->depth = (uint8_t)d;
        if (p->is_attr[d])
            return false;
    }
    return true;
}

static inline void tok_start(const struct lr_resp_parser *p, struct lr_resp_token *tok)
{
    tok->type = p->type;
    tok->depth = p->depth;
    tok->nil = false;
    tok->last = false;
    tok->integer = 0;
    tok->str = NULL;
    tok->len = 0;
}

/*
 * Read one CRLF-terminated line from *sp. Returns 1 with *line and *line_len set
 * (into the caller's buffer when the whole line was there, else into scratch),
 * 0 when every byte up to @end was consumed without finishing the line, or a
 * negative error. The scan window is capped at one byte past the longest legal
 * line, so an endless line is refused after LR_RESP_MAX_STR + 1 bytes and the
 * scan never runs away.
 */
static int read_line(struct lr_resp_parser *p, const char **sp, const char *end, const char **line,
                     size_t *line_len)
{
    const char *s = *sp;

    if (p->state == ST_LF) {
        if (s == end)
            return 0;
        if (*s != '\n')
            return -EPROTO; /* a CR not followed by LF */
        *sp = s + 1;
        *line = p->scratch;
        *line_len = p->have;
        return 1;
    }

    size_t avail = (size_t)(end - s);
    size_t room = LR_RESP_MAX_STR + 1 - p->have;
    size_t n = avail < room ? avail : room;
    const char *q = s;
    const char *qe = s + n;
    while (q < qe && *q != '\r' && *q != '\n')
        q++;
    size_t clen = (size_t)(q - s);

    if (q == qe) {
        if (n == room)
            return -EMSGSIZE; /* byte LR_RESP_MAX_STR + 1 of the line is not its CR */
        memcpy(p->scratch + p->have, s, n);
        p->have += n;
        *sp = qe;
        return 0;
    }
    if (*q == '\n')
        return -EPROTO; /* a bare LF */
    if (q + 1 == end) {
        /* The CR is the last byte we have: keep the line, wait for the LF. */
        memcpy(p->scratch + p->have, s, clen);
        p->have += clen;
        p->state = ST_LF;
        *sp = end;
        return 0;
    }
    if (q[1] != '\n')
        return -EPROTO;
    *sp = q + 2;
    if (p->have == 0) {
        *line = s;
        *line_len = clen;
    } else {
        memcpy(p->scratch + p->have, s, clen);
        *line = p->scratch;
        *line_len = p->have + clen;
    }
    return 1;
}

/*
 * Read the p->bulk_len payload bytes and the CRLF after them. Returns 1 with
 * *str set, 0 when every byte up to @end was consumed, or -EPROTO. The CR and
 * LF are checked as each arrives so that garbage fails at the byte that is
 * wrong, not one byte later.
 */
static int read_bulk(struct lr_resp_parser *p, const char **sp, const char *end, const char **str)
{
    const char *s = *sp;
    size_t blen = (size_t)p->bulk_len;
    size_t avail = (size_t)(end - s);

    if (p->have == 0 && avail >= blen + 2) {
        if (s[blen] != '\r' || s[blen + 1] != '\n')
            return -EPROTO;
        *sp = s + blen + 2;
        *str = s;
        return 1;
    }

    size_t old = p->have;
    size_t need = blen + 2 - old;
    size_t n = avail < need ? avail : need;
    memcpy(p->scratch + old, s, n);
    p->have = old + n;
    *sp = s + n;
    if (old <= blen && p->have > blen && p->scratch[blen] != '\r')
        return -EPROTO;
    if (p->have < blen + 2)
        return 0;
    if (p->scratch[blen + 1] != '\n')
        return -EPROTO;
    *str = p->scratch;
    return 1;
}

/*
 * A line is complete: turn it into a token. Returns 1 with *tok filled, 0
 * when the line was a bulk header (the payload is read next), or a negative
 * error.
 */
static int on_line(struct lr_resp_parser *p, const char *line, size_t n, struct lr_resp_token *tok)
{
    int64_t v = 0;
    int rc;

    switch (p->type) {
    case LR_RESP_SIMPLE:
    case LR_RESP_ERROR:
        break;
    case LR_RESP_DOUBLE:
        /* The float text is passed through as sent; only emptiness is wrong. */
        if (n == 0)
            return -EPROTO;
        break;
    case LR_RESP_BIGNUM:
        if (!is_bignum(line, n))
            return -EPROTO;
        break;
    case LR_RESP_INT:
        rc = parse_int(line, n, &v);
        if (rc < 0)
            return rc;
        tok_start(p, tok);
        tok->integer = v;
        tok->last = element_done(p);
        return 1;
    case LR_RESP_BOOL:
        if (n != 1 || (line[0] != 't' && line[0] != 'f'))
            return -EPROTO;
        tok_start(p, tok);
        tok->integer = line[0] == 't';
        tok->last = element_done(p);
        return 1;
    case LR_RESP_NULL:
        if (n != 0)
            return -EPROTO;
        tok_start(p, tok);
        tok->nil = true;
        tok->last = element_done(p);
        return 1;
    case LR_RESP_BULK:
    case LR_RESP_BLOBERR:
    case LR_RESP_VERBATIM:
        rc = parse_int(line, n, &v);
        if (rc < 0)
            return rc;
        if (v == -1) {
            /* RESP2 nil bulk. Like hiredis, the RESP3 blob types accept it too. */
            tok_start(p, tok);
            tok->nil = true;
            tok->last = element_done(p);
            return 1;
        }
        if (v < -1)
            return -EPROTO;
        if (v > LR_RESP_MAX_STR)
            return -EMSGSIZE;
        p->bulk_len = v;
        p->have = 0;
        p->state = ST_BULK;
        return 0;
    default: /* an aggregate header: * % ~ > | */
        rc = parse_int(line, n, &v);
        if (rc < 0)
            return rc;
        tok_start(p, tok);
        if (v == -1 && p->type == LR_RESP_ARRAY) {
            /* RESP2 nil array; RESP3 has '_' instead and no nil for the others. */
            tok->nil = true;
            tok->integer = -1;
            tok->last = element_done(p);
            return 1;
        }
        if (v < 0)
            return -EPROTO;
        if (v > LR_RESP_MAX_ELEMS)
            return -EMSGSIZE;
        tok->integer = v;
        if (v == 0) {
            /* Empty: complete by itself, except that an attribute never completes
             * an element (the one it annotates follows). */
            if (p->type != LR_RESP_ATTR)
                tok->last = element_done(p);
            return 1;
        }
        if (p->depth == LR_RESP_MAX_DEPTH)
            return -EMSGSIZE;
        /* Maps and attributes count pairs: key and value are both elements. */
        if (p->type == LR_RESP_MAP || p->type == LR_RESP_ATTR)
            v *= 2;
        p->remaining[p->depth] = v;
        p->is_attr[p->depth] = p->type == LR_RESP_ATTR;
        p->depth++;
        return 1;
    }

    /* Line-valued strings: + - , ( */
    tok_start(p, tok);
    tok->str = line;
    tok->len = n;
    tok->last = element_done(p);
    return 1;
}

int lr_resp_parse(struct lr_resp_parser *p, const char *buf, size_t len, struct lr_resp_token *tok)
{
    if (p->error)
        return p->error;
    /* Also keeps NULL + 0 out of the pointer arithmetic below. */
    if (len == 0)
        return -EAGAIN;

    const char *s = buf;
    const char *end = buf + len;
    int rc;

    for (;;) {
        if (p->state == ST_BULK) {
            const char *str = NULL;
            rc = read_bulk(p, &s, end, &str);
            if (rc > 0) {
                size_t blen = (size_t)p->bulk_len;
                /* RESP3 verbatim string: a 3-byte format, ':', then the text. */
                if (p->type == LR_RESP_VERBATIM && (blen < 4 || str[3] != ':'))
                    return fail(p, -EPROTO);
                tok_start(p, tok);
                tok->str = str;
                tok->len = blen;
                tok->last = element_done(p);
            }
        } else {
            const char *line = NULL;
            size_t line_len = 0;
            if (p->state == ST_TYPE) {
                if (!is_type((unsigned char)*s))
                    return fail(p, -EPROTO);
                p->type = (uint8_t)*s++;
                p->have = 0;
                p->state = ST_LINE;
            }
            rc = read_line(p, &s, end, &line, &line_len);
            if (rc > 0)
                rc = on_line(p, line, line_len, tok);
            else if (rc == 0)
                return -EAGAIN; /* read_line consumed everything */
        }
        if (rc < 0)
            return fail(p, rc);
        if (rc > 0) {
            p->state = ST_TYPE;
            return (int)(s - buf);
        }
        /* rc == 0: a bulk header was read (go on with its payload) or the
         * payload is still incomplete with every byte consumed. */
        if (s == end)
            return -EAGAIN;
    }
}

/* ---- Writer ---- */

/* "<c><n>\r\n": the header of an array or of a bulk string. */
static inline char *put_header(char *q, char c, uint64_t n)
{
    *q++ = c;
    q = lr_put_u64(q, n, lr_u64_digits(n));
    *q++ = '\r';
    *q++ = '\n';
    return q;
}

static inline char *put_bulk(char *q, const char *p, size_t len)
{
    q = put_header(q, '$', len);
    if (len > 0)
        memcpy(q, p, len);
    q += len;
    *q++ = '\r';
    *q++ = '\n';
    return q;
}

size_t lr_resp_bulk_size(size_t len)
{
    /* '$', digits, CRLF, payload, CRLF; saturates instead of wrapping. */
    if (len > SIZE_MAX - 32)
        return SIZE_MAX;
    return 1 + lr_u64_digits(len) + 2 + len + 2;
}

size_t lr_resp_array_header_size(size_t n)
{
    return 1 + lr_u64_digits(n) + 2;
}

size_t lr_resp_cmd_size(size_t argc, const struct lr_resp_arg *argv)
{
    size_t total = lr_resp_array_header_size(argc);
    for (size_t i = 0; i < argc; i++) {
        size_t b = lr_resp_bulk_size(argv[i].len);
        if (b > SIZE_MAX - total)
            return SIZE_MAX;
        total += b;
    }
    return total;
}

/* The result must fit the int return value as well as the buffer. */
static inline bool fits(size_t size, size_t cap)
{
    return size <= cap && size <= (size_t)INT_MAX;
}

int lr_resp_write_cmd(char *out, size_t cap, size_t argc, const struct lr_resp_arg *argv)
{
    size_t total = lr_resp_cmd_size(argc, argv);
    if (!fits(total, cap))
        return -ENOBUFS;
    char *q = put_header(out, '*', argc);
    for (size_t i = 0; i < argc; i++)
        q = put_bulk(q, argv[i].p, argv[i].len);
    return (int)(q - out);
}

int lr_resp_write_array_header(char *out, size_t cap, size_t n)
{
    size_t size = lr_resp_array_header_size(n);
    if (!fits(size, cap))
        return -ENOBUFS;
    put_header(out, '*', n);
    return (int)size;
}

int lr_resp_write_bulk(char *out, size_t cap, const char *p, size_t len)
{
    size_t size = lr_resp_bulk_size(len);
    if (!fits(size, cap))
        return -ENOBUFS;
    put_bulk(out, p, len);
    return (int)size;
}

int lr_resp_write_bulk_u64(char *out, size_t cap, uint64_t v)
{
    unsigned d = lr_u64_digits(v);
    size_t size = lr_resp_bulk_size(d);
    if (!fits(size, cap))
        return -ENOBUFS;
    char *q = put_header(out, '$', d);
    q = lr_put_u64(q, v, d);
    *q++ = '\r';
    *q = '\n';
    return (int)size;
}
