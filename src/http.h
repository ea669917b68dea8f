/* SPDX-License-Identifier: MIT */
/*
 * http.h - HTTP/1.1 request writer and incremental response parser (internal).
 *
 * Pure functions over bytes: no I/O, no allocation, no global state. The
 * parser is a resumable state machine: feed it whatever a recv delivered,
 * split at any byte, and it yields one *token* per call:
 *   STATUS        status code, minor version, reason phrase
 *   HEADER        one header: name and value (value with surrounding
 *                 whitespace trimmed; obsolete line folding is -EPROTO)
 *   HEADERS_END   framing decided: keep_alive, chunked, content_length
 *   BODY          a piece of the body (chunked encoding already removed);
 *                 pieces may be any size, including 1 byte
 *   END           the response is complete; the parser is ready for the next
 *                 response on the same connection (call init again only to
 *                 change the HEAD flag)
 * Header names are matched case-insensitively by the caller (names are given
 * as received). Framing (RFC 9112 section 6): a response to HEAD, 1xx, 204 and
 * 304 has no body; otherwise Transfer-Encoding: chunked wins over
 * Content-Length; otherwise Content-Length; otherwise the body runs to the
 * end of the connection (call lr_http_parse_eof at EOF). Conflicting or
 * malformed Content-Length values, Transfer-Encoding other than "chunked"
 * alone, and Content-Length together with chunked are -EPROTO (request
 * smuggling defence). A 1xx response is delivered (STATUS, HEADERs,
 * HEADERS_END, END) and the real response follows on the same stream.
 *
 * Limits: a status line, header line or chunk-size line longer than
 * LR_HTTP_MAX_LINE bytes, more than LR_HTTP_MAX_HEADERS headers, a
 * Content-Length or chunk size above LR_HTTP_MAX_BODY: -EMSGSIZE. Any other
 * malformed byte: -EPROTO. Errors are sticky until lr_http_parser_init().
 * Layer: bytes only; knows nothing of sockets, TLS or Azure.
 */
#ifndef LR_HTTP_H
#define LR_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define LR_HTTP_MAX_LINE 8192
#define LR_HTTP_MAX_HEADERS 100
#define LR_HTTP_MAX_BODY ((int64_t)1 << 40)

enum lr_http_type {
    LR_HTTP_STATUS = 1,
    LR_HTTP_HEADER,
    LR_HTTP_HEADERS_END,
    LR_HTTP_BODY,
    LR_HTTP_END,
};

struct lr_http_token {
    uint8_t type;           /* enum lr_http_type */
    int status;             /* STATUS (and repeated on every later token of the response) */
    int minor_version;      /* STATUS: 0 or 1 */
    const char *str;        /* STATUS: reason; HEADER: name; BODY: data */
    size_t len;
    const char *value;      /* HEADER: value */
    size_t value_len;
    bool keep_alive;        /* HEADERS_END and END: the connection may carry another request */
    bool chunked;           /* HEADERS_END */
    int64_t content_length; /* HEADERS_END: -1 if none (or chunked, or no body) */
};

/* Parser state; all private. Strings in tokens point into the caller's buffer
 * or into @scratch, valid until the next call. */
struct lr_http_parser {
    int state;
    int error;
    bool head;              /* the request was HEAD: no body */
    bool keep_alive;
    bool chunked;
    bool seen_cl;
    bool seen_te;
    bool close_seen;
    int status;
    int minor_version;
    unsigned nheaders;
    int64_t content_length;
    int64_t remaining;      /* body or chunk bytes still expected */
    size_t have;            /* bytes in scratch */
    char scratch[LR_HTTP_MAX_LINE + 2];
};

/* Prepare for a response; @head: the request was HEAD (no body follows). */
void lr_http_parser_init(struct lr_http_parser *p, bool head);

/*
 * lr_http_parse - consume bytes from buf[0..len) until one token is complete.
 * Returns the bytes consumed (>= 0) with *tok filled; -EAGAIN when all @len
 * bytes were consumed without completing a token; -EPROTO; -EMSGSIZE.
 * END consumes no bytes when nothing marks the end of the response (after a
 * Content-Length body, or a response without a body), so callers must call
 * again, with @len 0 if need be, until -EAGAIN -- not stop when their input
 * is used up.
 */
int lr_http_parse(struct lr_http_parser *p, const char *buf, size_t len,
                  struct lr_http_token *tok);

/*
 * lr_http_parse_eof - the peer closed the connection. Returns 1 with an END
 * token when that completes a read-until-close body; 0 when the parser was
 * between responses (nothing lost); -EPROTO when a response was cut short.
 */
int lr_http_parse_eof(struct lr_http_parser *p, struct lr_http_token *tok);

/*
 * Request writer. Each returns the bytes written, -ENOBUFS if it does not fit
 * (nothing written), or -EINVAL for a method, target, name or value that
 * would break the message (CR, LF, NUL; a space in the method or target; a
 * header name that is not an RFC 9110 token).
 *   lr_http_write_request_line: "METHOD TARGET HTTP/1.1\r\n"
 *   lr_http_write_header:       "Name: value\r\n"
 *   lr_http_write_header_u64:   "Name: 123\r\n"
 *   lr_http_write_end:          "\r\n" (then the body, if any, verbatim)
 */
int lr_http_write_request_line(char *out, size_t cap, const char *method, size_t mlen,
                               const char *target, size_t tlen);
int lr_http_write_header(char *out, size_t cap, const char *name, size_t nlen, const char *value,
                         size_t vlen);
int lr_http_write_header_u64(char *out, size_t cap, const char *name, size_t nlen, uint64_t v);
int lr_http_write_end(char *out, size_t cap);

#endif
