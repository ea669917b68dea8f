/* SPDX-License-Identifier: MIT */
/*
 * resp.h - RESP2 writer and incremental RESP2/RESP3 parser (internal).
 *
 * Pure functions over bytes: no I/O, no allocation, no global state. The
 * parser is a resumable state machine (nginx-style): feed it whatever a recv
 * delivered, split at any byte, and it yields one *token* per call. A reply is
 * a sequence of tokens: a scalar is one token; an aggregate (array, map, set,
 * push, attribute) is a header token carrying its element count followed by
 * its elements' tokens at depth + 1. The token that completes a top-level
 * reply has .last set. Attributes ('|') are delivered as tokens too but do not
 * count as the reply (the reply that follows them does).
 *
 * Limits (a server can force nothing beyond them): nesting depth
 * LR_RESP_MAX_DEPTH, aggregate element count LR_RESP_MAX_ELEMS, string
 * length LR_RESP_MAX_STR (simple strings, errors, bulk strings, numbers:
 * longer ones are -EMSGSIZE). Any malformed byte is -EPROTO. After an error
 * the parser stays failed (every later call returns the same error) until
 * lr_resp_parser_init() is called again: a byte stream with an error in it
 * cannot be resynchronised.
 * Layer: bytes only; knows nothing of sockets or leases.
 */
#ifndef LR_RESP_H
#define LR_RESP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define LR_RESP_MAX_DEPTH 16
#define LR_RESP_MAX_ELEMS (1 << 20)
#define LR_RESP_MAX_STR 4096

enum lr_resp_type {
    LR_RESP_SIMPLE = '+',   /* str/len */
    LR_RESP_ERROR = '-',    /* str/len (e.g. "NOSCRIPT No matching script") */
    LR_RESP_INT = ':',      /* integer */
    LR_RESP_BULK = '$',     /* str/len, or nil */
    LR_RESP_ARRAY = '*',    /* integer = element count, or nil */
    /* RESP3 */
    LR_RESP_NULL = '_',     /* nil */
    LR_RESP_BOOL = '#',     /* integer = 0 or 1 */
    LR_RESP_DOUBLE = ',',   /* str/len as sent ("1.5", "inf", "-nan") */
    LR_RESP_BIGNUM = '(',   /* str/len: optional '-' and digits */
    LR_RESP_BLOBERR = '!',  /* str/len */
    LR_RESP_VERBATIM = '=', /* str/len including the "txt:" prefix */
    LR_RESP_MAP = '%',      /* integer = number of pairs; 2x that many elements follow */
    LR_RESP_SET = '~',      /* integer = element count */
    LR_RESP_PUSH = '>',     /* integer = element count; out-of-band at top level */
    LR_RESP_ATTR = '|',     /* integer = number of pairs; precedes the element it annotates */
};

struct lr_resp_token {
    uint8_t type;     /* enum lr_resp_type */
    uint8_t depth;    /* 0 for a top-level token */
    bool nil;         /* $-1, *-1 or _ */
    bool last;        /* this token completes a top-level reply */
    int64_t integer;  /* INT, BOOL, and the count of aggregates */
    const char *str;  /* string types: points into the caller's buffer or the parser's */
    size_t len;       /*   scratch; valid until the next call. Not NUL-terminated. */
};

/* Parser state. Zero-initialised by lr_resp_parser_init(); all private. */
struct lr_resp_parser {
    int state;
    int error;                               /* sticky error, 0 if none */
    uint8_t type;                            /* type byte of the token being read */
    uint8_t depth;                           /* current nesting depth */
    int64_t remaining[LR_RESP_MAX_DEPTH];    /* elements still expected per open aggregate */
    uint8_t is_attr[LR_RESP_MAX_DEPTH];      /* the open aggregate at this depth is an attribute */
    int64_t bulk_len;                        /* bytes of bulk payload expected */
    size_t have;                             /* bytes accumulated in scratch */
    char scratch[LR_RESP_MAX_STR + 2];       /* a line or bulk split across calls */
};

void lr_resp_parser_init(struct lr_resp_parser *p);

/*
 * lr_resp_parse - consume bytes from buf[0..len) until one token is complete.
 * Returns: the number of bytes consumed (> 0) with *tok filled;
 *   -EAGAIN: all @len bytes were consumed (buffered as needed), no token yet;
 *   -EPROTO: malformed input; -EMSGSIZE: a limit was exceeded.
 * @len may be 0 (returns -EAGAIN unless the parser has failed).
 */
int lr_resp_parse(struct lr_resp_parser *p, const char *buf, size_t len,
                  struct lr_resp_token *tok);

/* One argument of a command: bytes and length. */
struct lr_resp_arg {
    const char *p;
    size_t len;
};

/* Bytes needed to encode a command of @argc arguments (array of bulk strings). */
size_t lr_resp_cmd_size(size_t argc, const struct lr_resp_arg *argv);

/*
 * lr_resp_write_cmd - encode a command as a RESP array of bulk strings into
 * out[0..cap). Returns the bytes written, or -ENOBUFS if it does not fit (the
 * buffer may then hold a partial command: do not commit it).
 */
int lr_resp_write_cmd(char *out, size_t cap, size_t argc, const struct lr_resp_arg *argv);

/* Piecewise writers for commands built in place (a batched renew writes its
 * header, then each key, then each argument). Each returns the bytes written
 * or -ENOBUFS (nothing usable written). */
int lr_resp_write_array_header(char *out, size_t cap, size_t n);
int lr_resp_write_bulk(char *out, size_t cap, const char *p, size_t len);
int lr_resp_write_bulk_u64(char *out, size_t cap, uint64_t v); /* decimal, as a bulk string */
/* Size of a bulk string of @len payload bytes, and of an array header. */
size_t lr_resp_bulk_size(size_t len);
size_t lr_resp_array_header_size(size_t n);

#endif
