/* SPDX-License-Identifier: MIT */
/*
 * http.c - HTTP/1.1 request writer and incremental response parser (contract
 * in http.h).
 *
 * The parser is an nginx-style state machine over lines and byte counts. Four
 * states read CRLF-terminated lines (status line, header, chunk size,
 * trailer); the line is found with memchr and handed over zero-copy when it is
 * whole in the caller's buffer, or gathered in p->scratch when a recv split
 * it. Three states count body bytes and hand them out as BODY tokens pointing
 * into the caller's buffer: body bytes are never copied. Two states check the
 * CRLF after chunk data, and ST_END means "the response is complete, END is
 * due": it is the one token that may consume no bytes (see lr_http_parse).
 *
 * Strictness (RFC 9112): a bare LF, obs-fold, a CTL byte in a field, a
 * malformed or conflicting Content-Length, any Transfer-Encoding but a single
 * "chunked", Transfer-Encoding with Content-Length, and Transfer-Encoding in an
 * HTTP/1.0 response (section 6.1: its framing is faulty) are all -EPROTO, so
 * the byte stream is never resynchronised on a guess (request smuggling).
 *
 * Invariants: p->have <= LR_HTTP_MAX_LINE + 2; no byte outside buf[0..len) is
 * ever read. Every error is decided by a whole line or by a fixed byte
 * position, never by where the stream was split, so chunked and unchunked
 * parses of the same bytes give the same tokens and the same error.
 * Layer: bytes only; knows nothing of sockets, TLS or Azure.
 */
#include <errno.h>
#include <limits.h>
#include <string.h>

#include "fmt.h"
#include "http.h"

enum {
    ST_STATUS = 0, /* reading a status line; 0 so that a zeroed parser starts here */
    ST_HEADER,     /* reading a header line, or the blank line that ends the head */
    ST_END,        /* the response is complete: the next call returns END */
    ST_BODY,       /* Content-Length body: p->remaining bytes to go */
    ST_BODY_EOF,   /* body delimited by the end of the connection */
    ST_CHUNK_SIZE, /* reading a chunk-size line */
    ST_CHUNK_DATA, /* p->remaining bytes of chunk data to go */
    ST_CHUNK_CR,   /* the CR after chunk data */
    ST_CHUNK_LF,   /* the LF after chunk data */
    ST_TRAILER,    /* reading a trailer line, or the blank line that ends the message */
};

/* A line and its CRLF fit in scratch; one byte more is over the limit. */
#define LINE_WINDOW (LR_HTTP_MAX_LINE + 2)

/* Character classes (RFC 9110 section 5.6.2 tchar; section 5.5 field-vchar,
 * SP, HTAB and obs-text, i.e. every byte but CTLs other than HTAB). */
enum {
    C_TCHAR = 1,
    C_FIELD = 2,
};

/* clang-format off */
static const uint8_t ctype[256] = {
    0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, /* 0x00: HTAB only */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, /* 0x10 */
    2, 3, 2, 3, 3, 3, 3, 3, 2, 2, 3, 3, 2, 3, 3, 2, /* 0x20:  !"#$%&'()*+,-./ */
    3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 2, 2, 2, 2, 2, 2, /* 0x30: 0-9 :;<=>? */
    2, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, /* 0x40: @A-O */
    3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 2, 2, 2, 3, 3, /* 0x50: P-Z [\]^_ */
    3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, /* 0x60: `a-o */
    3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 2, 3, 2, 3, 0, /* 0x70: p-z {|}~ DEL */
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, /* 0x80-0xff: obs-text */
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
};
/* clang-format on */

static inline bool is_tchar(char c)
{
    return ctype[(unsigned char)c] & C_TCHAR;
}

static inline bool is_ows(char c)
{
    return c == ' ' || c == '\t';
}

/* Every byte of s[0..n) may appear in a field value or reason phrase. */
static bool all_field(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (!(ctype[(unsigned char)s[i]] & C_FIELD))
            return false;
    }
    return true;
}

/* s[0..n) equals the lowercase literal @lit, ignoring ASCII case. Callers pass
 * tchar or field bytes only, and @lit holds letters and '-', so OR-ing 0x20
 * folds exactly the letters (the only other byte it maps to '-' is CR). */
static bool eq_lower(const char *s, size_t n, const char *lit, size_t litn)
{
    if (n != litn)
        return false;
    for (size_t i = 0; i < n; i++) {
        if ((s[i] | 0x20) != lit[i])
            return false;
    }
    return true;
}

#define EQ_LOWER(s, n, lit) eq_lower((s), (n), lit, sizeof(lit) - 1)

static inline int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if ((c | 0x20) >= 'a' && (c | 0x20) <= 'f')
        return (c | 0x20) - 'a' + 10;
    return -1;
}

void lr_http_parser_init(struct lr_http_parser *p, bool head)
{
    memset(p, 0, sizeof(*p));
    p->state = ST_STATUS;
    p->head = head;
    p->content_length = -1;
}

static inline int fail(struct lr_http_parser *p, int err)
{
    p->error = err;
    return err;
}

/* Every token carries the type, the status and version of its response, and
 * neutral values elsewhere; the type-specific fields are set by the caller. */
static inline void tok_start(const struct lr_http_parser *p, struct lr_http_token *tok,
                             uint8_t type)
{
    tok->type = type;
    tok->status = p->status;
    tok->minor_version = p->minor_version;
    tok->str = NULL;
    tok->len = 0;
    tok->value = NULL;
    tok->value_len = 0;
    tok->keep_alive = false;
    tok->chunked = false;
    tok->content_length = -1;
}

/* HEADERS_END and END: the framing decided at the end of the head. */
static inline void tok_framing(const struct lr_http_parser *p, struct lr_http_token *tok,
                               uint8_t type)
{
    tok_start(p, tok, type);
    tok->keep_alive = p->keep_alive;
    tok->chunked = p->chunked;
    tok->content_length = p->content_length;
}

/*
 * Read one CRLF-terminated line from *sp. Returns 1 with *line and *line_len
 * set (into the caller's buffer when the whole line was there, else into
 * scratch), 0 when every byte up to @end was consumed without finishing the
 * line, or a negative error. memchr looks for the LF only: a CR anywhere else
 * in the line is a CTL and is refused by whoever checks the line's bytes. The
 * scan window is the longest legal line plus its CRLF, so an endless line
 * costs at most LINE_WINDOW bytes of scanning and copying.
 */
static int read_line(struct lr_http_parser *p, const char **sp, const char *end, const char **line,
                     size_t *line_len)
{
    const char *s = *sp;
    size_t avail = (size_t)(end - s);
    size_t room = LINE_WINDOW - p->have;
    size_t w = avail < room ? avail : room;
    const char *lf = memchr(s, '\n', w);

    if (lf) {
        size_t k = (size_t)(lf - s);
        char before = k > 0 ? lf[-1] : p->have > 0 ? p->scratch[p->have - 1] : '\0';
        /* A bare LF (RFC 9112 section 2.2 allows refusing it; we do). If it
         * sits where only the CR of a longest legal line could be, the line
         * is too long: the same verdict as when that byte arrives alone. */
        if (before != '\r')
            return p->have + k > LR_HTTP_MAX_LINE ? -EMSGSIZE : -EPROTO;
        *sp = lf + 1;
        if (p->have == 0) {
            *line = s;
            *line_len = k - 1;
        } else {
            memcpy(p->scratch + p->have, s, k);
            *line = p->scratch;
            *line_len = p->have + k - 1;
            p->have = 0;
        }
        return 1;
    }
    memcpy(p->scratch + p->have, s, w);
    p->have += w;
    *sp = s + w;
    /* Byte LR_HTTP_MAX_LINE of a legal line can only be its CR, and the byte
     * after that its LF: refuse as soon as either position says otherwise. */
    if (p->have > LR_HTTP_MAX_LINE &&
        (p->scratch[LR_HTTP_MAX_LINE] != '\r' || p->have == LINE_WINDOW))
        return -EMSGSIZE;
    return 0;
}

/*
 * Status line (RFC 9112 section 4): "HTTP/1.x SP 3DIGIT SP reason". The SP
 * before an empty reason is optional because real servers omit it.
 */
static int on_status(struct lr_http_parser *p, const char *line, size_t n,
                     struct lr_http_token *tok)
{
    if (n < 12 || memcmp(line, "HTTP/1.", 7) != 0 || (line[7] != '0' && line[7] != '1') ||
        line[8] != ' ')
        return -EPROTO;
    int status = 0;
    for (size_t i = 9; i < 12; i++) {
        unsigned d = (unsigned)(unsigned char)line[i] - '0';
        if (d > 9)
            return -EPROTO;
        status = status * 10 + (int)d;
    }
    if (status < 100)
        return -EPROTO;
    const char *reason = line + 12;
    size_t rlen = 0;
    if (n > 12) {
        if (line[12] != ' ')
            return -EPROTO;
        reason = line + 13;
        rlen = n - 13;
        if (!all_field(reason, rlen))
            return -EPROTO;
    }

    /* A new response: forget everything about the previous one. */
    p->status = status;
    p->minor_version = line[7] - '0';
    p->keep_alive = false;
    p->chunked = false;
    p->seen_cl = false;
    p->seen_te = false;
    p->close_seen = false;
    p->nheaders = 0;
    p->content_length = -1;
    p->remaining = 0;
    p->state = ST_HEADER;

    tok_start(p, tok, LR_HTTP_STATUS);
    tok->str = reason;
    tok->len = rlen;
    return 1;
}

/*
 * A field line (RFC 9112 section 5): token ':' OWS value OWS. No whitespace
 * may precede the colon, and a line starting with whitespace (obs-fold, or a
 * name preceded by space) fails the token check. Shared by headers and
 * trailers, which also share the LR_HTTP_MAX_HEADERS budget.
 */
static int split_field(struct lr_http_parser *p, const char *line, size_t n, size_t *name_len,
                       const char **value, size_t *value_len)
{
    if (++p->nheaders > LR_HTTP_MAX_HEADERS)
        return -EMSGSIZE;
    size_t i = 0;
    while (i < n && is_tchar(line[i]))
        i++;
    if (i == 0 || i == n || line[i] != ':')
        return -EPROTO;
    *name_len = i;
    const char *v = line + i + 1;
    const char *ve = line + n;
    if (!all_field(v, (size_t)(ve - v)))
        return -EPROTO;
    while (v < ve && is_ows(*v))
        v++;
    while (ve > v && is_ows(ve[-1]))
        ve--;
    *value = v;
    *value_len = (size_t)(ve - v);
    return 0;
}

/* Content-Length (RFC 9110 section 8.6): 1*DIGIT, nothing else, so a list
 * such as "5, 5" is refused too. Every byte is checked before the size, so a
 * long malformed value is -EPROTO whatever its magnitude. */
static int parse_content_length(const char *s, size_t n, int64_t *out)
{
    uint64_t v = 0;
    bool big = false;

    if (n == 0)
        return -EPROTO;
    for (size_t i = 0; i < n; i++) {
        unsigned d = (unsigned)(unsigned char)s[i] - '0';
        if (d > 9)
            return -EPROTO;
        if (!big) {
            v = v * 10 + d;
            big = v > (uint64_t)LR_HTTP_MAX_BODY; /* stop before v can wrap */
        }
    }
    if (big)
        return -EMSGSIZE;
    *out = (int64_t)v;
    return 0;
}

/* Connection (RFC 9110 section 7.6.1): a comma list of options; only "close"
 * and "keep-alive" matter here. Empty list elements are allowed. */
static void scan_connection(struct lr_http_parser *p, const char *s, size_t n)
{
    const char *e = s + n;
    while (s < e) {
        const char *c = memchr(s, ',', (size_t)(e - s));
        const char *te = c ? c : e;
        const char *ts = s;
        while (ts < te && is_ows(*ts))
            ts++;
        while (te > ts && is_ows(te[-1]))
            te--;
        size_t tn = (size_t)(te - ts);
        if (EQ_LOWER(ts, tn, "close"))
            p->close_seen = true;
        else if (EQ_LOWER(ts, tn, "keep-alive"))
            p->keep_alive = true; /* until the head ends: the option was seen */
        s = c ? c + 1 : e;
    }
}

/* The headers the parser itself acts on; all are also passed to the caller. */
static int framing_header(struct lr_http_parser *p, const char *name, size_t nlen, const char *v,
                          size_t vlen)
{
    if (EQ_LOWER(name, nlen, "content-length")) {
        int64_t cl = 0;
        int rc = parse_content_length(v, vlen, &cl);
        if (rc < 0)
            return rc;
        /* RFC 9112 section 6.3: differing values, or Transfer-Encoding as
         * well, make the framing ambiguous. Identical repeats are harmless. */
        if ((p->seen_cl && cl != p->content_length) || p->seen_te)
            return -EPROTO;
        p->seen_cl = true;
        p->content_length = cl;
    } else if (EQ_LOWER(name, nlen, "transfer-encoding")) {
        /* Only "chunked" alone: a second Transfer-Encoding line extends the
         * list, and HTTP/1.0 has no transfer codings (RFC 9112 section 6.1). */
        if (p->seen_te || p->seen_cl || p->minor_version == 0 || !EQ_LOWER(v, vlen, "chunked"))
            return -EPROTO;
        p->seen_te = true;
    } else if (EQ_LOWER(name, nlen, "connection")) {
        scan_connection(p, v, vlen);
    }
    return 0;
}

/* The blank line after the headers: decide the framing (RFC 9112 section 6.3). */
static void on_headers_end(struct lr_http_parser *p, struct lr_http_token *tok)
{
    bool keep_alive = p->minor_version == 1 ? !p->close_seen : p->keep_alive && !p->close_seen;
    bool no_body = p->head || p->status < 200 || p->status == 204 || p->status == 304;

    p->chunked = false;
    if (no_body) {
        p->content_length = -1;
        p->state = ST_END;
    } else if (p->seen_te) {
        p->chunked = true;
        p->content_length = -1;
        p->state = ST_CHUNK_SIZE;
    } else if (p->seen_cl) {
        p->remaining = p->content_length;
        p->state = p->content_length > 0 ? ST_BODY : ST_END;
    } else {
        keep_alive = false; /* only the close can end the body */
        p->content_length = -1;
        p->state = ST_BODY_EOF;
    }
    p->keep_alive = keep_alive;
    tok_framing(p, tok, LR_HTTP_HEADERS_END);
}

/*
 * chunk-size [ chunk-ext ] (RFC 9112 section 7.1): 1..16 hex digits, then
 * either nothing or BWS ';' and extensions, which are skipped (their bytes
 * must still be field bytes). A size line with no ';' has no whitespace.
 */
static int on_chunk_size(struct lr_http_parser *p, const char *line, size_t n)
{
    uint64_t v = 0;
    size_t i = 0;
    int d;

    while (i < n && (d = hexval(line[i])) >= 0) {
        if (i == 16)
            return -EMSGSIZE;
        v = v * 16 + (unsigned)d;
        i++;
    }
    if (i == 0)
        return -EPROTO;
    if (v > (uint64_t)LR_HTTP_MAX_BODY)
        return -EMSGSIZE;
    if (i < n) {
        while (i < n && is_ows(line[i]))
            i++;
        if (i == n || line[i] != ';' || !all_field(line + i + 1, n - i - 1))
            return -EPROTO;
    }
    if (v == 0) {
        p->state = ST_TRAILER;
    } else {
        p->remaining = (int64_t)v;
        p->state = ST_CHUNK_DATA;
    }
    return 0;
}

/* A complete line in a line state. Returns 1 with *tok filled, 0 when the line
 * produced no token (chunk size, trailer field), or a negative error. */
static int on_line(struct lr_http_parser *p, const char *line, size_t n, struct lr_http_token *tok)
{
    size_t nlen = 0;
    const char *v = NULL;
    size_t vlen = 0;
    int rc;

    switch (p->state) {
    case ST_STATUS:
        return on_status(p, line, n, tok);
    case ST_HEADER:
        if (n == 0) {
            on_headers_end(p, tok);
            return 1;
        }
        rc = split_field(p, line, n, &nlen, &v, &vlen);
        if (rc == 0)
            rc = framing_header(p, line, nlen, v, vlen);
        if (rc < 0)
            return rc;
        tok_start(p, tok, LR_HTTP_HEADER);
        tok->str = line;
        tok->len = nlen;
        tok->value = v;
        tok->value_len = vlen;
        return 1;
    case ST_CHUNK_SIZE:
        return on_chunk_size(p, line, n);
    default: /* ST_TRAILER: fields are checked, then dropped; a blank line ends it all */
        if (n == 0) {
            p->state = ST_STATUS;
            tok_framing(p, tok, LR_HTTP_END);
            return 1;
        }
        rc = split_field(p, line, n, &nlen, &v, &vlen);
        return rc < 0 ? rc : 0;
    }
}

/*
 * END consumes no bytes when the response ended with its last body byte or
 * with its head (Content-Length, or no body at all): then this returns 0 with
 * an END token, and it does so even for len == 0. So a caller must keep
 * calling until -EAGAIN, not merely until its buffer is used up, or it would
 * miss the END of a keep-alive response whose last byte ended a recv.
 */
int lr_http_parse(struct lr_http_parser *p, const char *buf, size_t len, struct lr_http_token *tok)
{
    if (p->error)
        return p->error;
    if (p->state == ST_END) {
        p->state = ST_STATUS;
        tok_framing(p, tok, LR_HTTP_END);
        return 0;
    }
    /* Also keeps NULL + 0 out of the pointer arithmetic below. */
    if (len == 0)
        return -EAGAIN;
    /* The count must fit the return value. No state can swallow INT_MAX bytes
     * without a token (lines are bounded, and so are the lines between
     * tokens), so a clipped buffer still ends in a token or an error. */
    if (len > INT_MAX)
        len = INT_MAX;

    const char *s = buf;
    const char *end = buf + len;

    for (;;) {
        const char *line = NULL;
        size_t line_len = 0;
        size_t n = 0;
        int rc;

        switch (p->state) {
        case ST_STATUS:
        case ST_HEADER:
        case ST_CHUNK_SIZE:
        case ST_TRAILER:
            rc = read_line(p, &s, end, &line, &line_len);
            if (rc == 0)
                return -EAGAIN; /* read_line consumed everything */
            if (rc > 0)
                rc = on_line(p, line, line_len, tok);
            if (rc < 0)
                return fail(p, rc);
            if (rc > 0)
                return (int)(s - buf);
            break;
        case ST_BODY_EOF:
            tok_start(p, tok, LR_HTTP_BODY);
            tok->str = s;
            tok->len = (size_t)(end - s);
            return (int)(end - buf);
        case ST_BODY:
        case ST_CHUNK_DATA:
            n = (size_t)(end - s);
            if ((uint64_t)n > (uint64_t)p->remaining)
                n = (size_t)p->remaining;
            tok_start(p, tok, LR_HTTP_BODY);
            tok->str = s;
            tok->len = n;
            s += n;
            p->remaining -= (int64_t)n;
            if (p->remaining == 0)
                p->state = p->state == ST_BODY ? ST_END : ST_CHUNK_CR;
            return (int)(s - buf);
        case ST_CHUNK_CR:
            if (*s++ != '\r')
                return fail(p, -EPROTO);
            p->state = ST_CHUNK_LF;
            break;
        case ST_CHUNK_LF:
            if (*s++ != '\n')
                return fail(p, -EPROTO);
            p->state = ST_CHUNK_SIZE;
            break;
        default:
            return fail(p, -EPROTO); /* unreachable: ST_END is handled on entry */
        }
        if (s == end)
            return -EAGAIN;
    }
}

int lr_http_parse_eof(struct lr_http_parser *p, struct lr_http_token *tok)
{
    if (p->error)
        return p->error;
    switch (p->state) {
    case ST_STATUS:
        /* Nothing is lost between responses, unless the last one was 1xx:
         * then the final response to the request never came. */
        if (p->have == 0 && (p->status == 0 || p->status >= 200))
            return 0;
        return fail(p, -EPROTO);
    case ST_BODY_EOF:
    case ST_END:
        /* The body ran to the close, or an END not yet collected is due: the
         * response is whole, but the connection carries nothing more. */
        p->state = ST_STATUS;
        p->keep_alive = false;
        tok_framing(p, tok, LR_HTTP_END);
        return 1;
    default:
        return fail(p, -EPROTO);
    }
}

/* ---- Writer ---- */

static inline char *put(char *q, const char *s, size_t n)
{
    if (n > 0)
        memcpy(q, s, n);
    return q + n;
}

/* The result must fit the int return value as well as the buffer. */
static inline bool fits(size_t size, size_t cap)
{
    return size <= cap && size <= (size_t)INT_MAX;
}

/* A non-empty RFC 9110 token (method, field name). */
static bool is_token(const char *s, size_t n)
{
    if (n == 0)
        return false;
    for (size_t i = 0; i < n; i++) {
        if (!is_tchar(s[i]))
            return false;
    }
    return true;
}

/* A request target: non-empty, no CTL and no space, so that nothing in it can
 * end the request line or be taken for a separator by a lenient server. */
static bool is_target(const char *s, size_t n)
{
    if (n == 0)
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c <= ' ' || c == 0x7f)
            return false;
    }
    return true;
}

int lr_http_write_request_line(char *out, size_t cap, const char *method, size_t mlen,
                               const char *target, size_t tlen)
{
    static const char version[] = " HTTP/1.1\r\n";

    if (!is_token(method, mlen) || !is_target(target, tlen))
        return -EINVAL;
    /* Each length is below cap or the call fails, so the sum cannot wrap
     * unless the buffer itself is absurd; check anyway. */
    if (mlen > SIZE_MAX / 4 || tlen > SIZE_MAX / 4)
        return -ENOBUFS;
    size_t size = mlen + 1 + tlen + sizeof(version) - 1;
    if (!fits(size, cap))
        return -ENOBUFS;
    char *q = put(out, method, mlen);
    *q++ = ' ';
    q = put(q, target, tlen);
    put(q, version, sizeof(version) - 1);
    return (int)size;
}

int lr_http_write_header(char *out, size_t cap, const char *name, size_t nlen, const char *value,
                         size_t vlen)
{
    /* A field value may hold HTAB, SP, visible ASCII and obs-text; any other
     * CTL (CR, LF and NUL above all) would end or corrupt the header. */
    if (!is_token(name, nlen) || !all_field(value, vlen))
        return -EINVAL;
    if (nlen > SIZE_MAX / 4 || vlen > SIZE_MAX / 4)
        return -ENOBUFS;
    size_t size = nlen + 2 + vlen + 2;
    if (!fits(size, cap))
        return -ENOBUFS;
    char *q = put(out, name, nlen);
    *q++ = ':';
    *q++ = ' ';
    q = put(q, value, vlen);
    *q++ = '\r';
    *q = '\n';
    return (int)size;
}

int lr_http_write_header_u64(char *out, size_t cap, const char *name, size_t nlen, uint64_t v)
{
    if (!is_token(name, nlen))
        return -EINVAL;
    if (nlen > SIZE_MAX / 4)
        return -ENOBUFS;
    unsigned d = lr_u64_digits(v);
    size_t size = nlen + 2 + d + 2;
    if (!fits(size, cap))
        return -ENOBUFS;
    char *q = put(out, name, nlen);
    *q++ = ':';
    *q++ = ' ';
    q = lr_put_u64(q, v, d);
    *q++ = '\r';
    *q = '\n';
    return (int)size;
}

int lr_http_write_end(char *out, size_t cap)
{
    if (cap < 2)
        return -ENOBUFS;
    out[0] = '\r';
    out[1] = '\n';
    return 2;
}
