/* SPDX-License-Identifier: MIT */
/* guard.c - see guard.h. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "guard.h"

static char *guard_base;
static size_t cuts[GUARD_SPAN];

char *guard_tail(const char *src, size_t n)
{
    if (!guard_base) {
        size_t page = (size_t)sysconf(_SC_PAGESIZE);
        char *m = mmap(NULL, GUARD_SPAN + page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                       -1, 0);
        if (m == MAP_FAILED || mprotect(m + GUARD_SPAN, page, PROT_NONE) != 0) {
            perror("guard page");
            exit(1);
        }
        guard_base = m;
    }
    if (n > GUARD_SPAN) {
        fprintf(stderr, "guard_tail: %zu bytes do not fit\n", n);
        exit(1);
    }
    char *dst = guard_base + GUARD_SPAN - n;
    if (n > 0)
        memmove(dst, src, n);
    return dst;
}

char *guard_out(size_t cap)
{
    return guard_tail("", 0) - cap;
}

void guard_put(char *text, size_t cap, size_t *len, const char *s, size_t n)
{
    if (*len + n >= cap) {
        fprintf(stderr, "render overflow\n");
        exit(1);
    }
    memcpy(text + *len, s, n);
    *len += n;
    text[*len] = '\0';
}

const char *guard_err_name(int err)
{
    switch (err) {
    case -EPROTO:
        return "EPROTO";
    case -EMSGSIZE:
        return "EMSGSIZE";
    case -EAGAIN:
        return "EAGAIN";
    default:
        return "UNEXPECTED";
    }
}

static bool same(const struct guard_split *g, const struct guard_view *a,
                 const struct guard_view *b, const char *what, size_t at)
{
    if (a->n == b->n && !memcmp(a->text, b->text, a->n) && a->eof == b->eof)
        return true;
    if (g->show_eof)
        fprintf(stderr, "%s at %zu differs:\n  whole: %.400s [eof %d]\n  split: %.400s [eof %d]\n",
                what, at, a->text, a->eof, b->text, b->eof);
    else
        fprintf(stderr, "%s at %zu differs:\n  whole: %.400s\n  split: %.400s\n", what, at,
                a->text, b->text);
    return false;
}

/* A truncated input's result @t fits @whole: same error, or a prefix. */
static bool truncated_fits(const struct guard_split *g, const struct guard_view *whole,
                           const struct guard_view *t, size_t k)
{
    if (t->err)
        return same(g, whole, t, "truncated", k);
    size_t n = t->n;
    if (t->pending)
        n -= 3; /* "..." */
    if (n <= whole->n && memcmp(t->text, whole->text, n) == 0)
        return true;
    fprintf(stderr, "truncated at %zu is no prefix:\n  whole: %.400s\n  trunc: %.400s\n", k,
            whole->text, t->text);
    return false;
}

bool guard_check_splits(const struct guard_split *g, const struct guard_view *whole,
                        const char *msg, size_t len)
{
    struct guard_view v;
    if (len > GUARD_SPAN) {
        fprintf(stderr, "guard_check_splits: %zu bytes do not fit\n", len);
        exit(1);
    }
    for (size_t i = 1; i < len; i++) {
        cuts[0] = i;
        if (!g->feed(g->ctx, msg, len, cuts, 1, &v) || !same(g, whole, &v, "split", i))
            return false;
    }
    for (size_t i = 1; i < len; i++)
        cuts[i - 1] = i;
    if (len > 1 && (!g->feed(g->ctx, msg, len, cuts, len - 1, &v) ||
                    !same(g, whole, &v, "byte at a time", 0)))
        return false;
    if (len <= g->pairs_max) {
        for (size_t i = 1; i < len; i++) {
            for (size_t j = i + 1; j < len; j++) {
                cuts[0] = i;
                cuts[1] = j;
                if (!g->feed(g->ctx, msg, len, cuts, 2, &v) ||
                    !same(g, whole, &v, "split2", i * 1000 + j))
                    return false;
            }
        }
    }
    for (size_t k = 0; k < len; k++) {
        if (!g->feed(g->ctx, msg, k, NULL, 0, &v) || !truncated_fits(g, whole, &v, k))
            return false;
    }
    return true;
}
