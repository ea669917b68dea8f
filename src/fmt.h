/* SPDX-License-Identifier: MIT */
/*
 * fmt.h - decimal formatting for the protocol writers, without stdio (the
 * writers run on every renewal and must not call a formatting library), and
 * the hex digit the URI and JSON decoders share.
 */
#ifndef LR_FMT_H
#define LR_FMT_H

#include <stdint.h>

/* The value of hex digit @c, or -1. */
static inline int lr__hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Number of decimal digits of @v (1 for 0). */
static inline unsigned lr_u64_digits(uint64_t v)
{
    unsigned n = 1;
    while (v >= 10) {
        v /= 10;
        n++;
    }
    return n;
}

/* Decimal digits of @v into q[0..digits), written from the end; returns
 * q + digits. @digits must be lr_u64_digits(v). */
static inline char *lr_put_u64(char *q, uint64_t v, unsigned digits)
{
    char *e = q + digits;
    do {
        *--e = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    return q + digits;
}

#endif
