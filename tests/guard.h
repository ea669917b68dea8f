/* SPDX-License-Identifier: MIT */
/*
 * guard.h - guard-page buffers and the split driver shared by the parser
 * tests (test_resp.c, test_http.c).
 *
 * guard_tail copies input to the very end of a mapping followed by a
 * PROT_NONE page (picohttpparser's test.c trick), so any read past the input
 * faults at once; guard_out hands out writer buffers placed the same way.
 * guard_check_splits re-runs a parse at every split point, at every pair of
 * split points (short inputs), one byte at a time, and truncated at every
 * length, comparing each run with the unsplit one through the test's own
 * callbacks. Failures go to stderr; errors that are the test's fault (no
 * mapping, input too long) exit(1). Not thread-safe.
 */
#ifndef LR_TEST_GUARD_H
#define LR_TEST_GUARD_H

#include <stdbool.h>
#include <stddef.h>

#define GUARD_SPAN (64 * 1024) /* usable bytes before the PROT_NONE page */

/* guard_tail - copy src[0..n) so that it ends exactly where the inaccessible
 * page begins, and return the copy. n > GUARD_SPAN exits. */
char *guard_tail(const char *src, size_t n);

/* guard_out - out[0..cap) placed at the end of the guard page: a write past
 * cap faults. */
char *guard_out(size_t cap);

/* guard_put - append s[0..n) to text[0..*len) (capacity @cap, kept
 * NUL-terminated); overflow exits. */
void guard_put(char *text, size_t cap, size_t *len, const char *s, size_t n);

/* guard_err_name - "EPROTO", "EMSGSIZE" or "EAGAIN" for a parser's -errno,
 * else "UNEXPECTED". */
const char *guard_err_name(int err);

/* One parse's result, as guard_check_splits compares it. */
struct guard_view {
    const char *text; /* the rendered token stream, NUL-terminated */
    size_t n;         /* strlen(text) */
    int err;          /* the error that ended the parse, or 0 */
    bool pending;     /* the input ended inside a token: text ends in "..." */
    int eof;          /* what an end-of-input call answered (0 if the parser has none) */
};

/* What guard_check_splits needs from a test: */
struct guard_split {
    /* Parse msg[0..len) delivered in chunks that end at cuts[0..ncuts)
     * (ascending) and at len, each chunk through guard_tail, into the test's
     * scratch result, and describe that in *@out. false: the parse broke the
     * contract (the test has printed why). */
    bool (*feed)(void *ctx, const char *msg, size_t len, const size_t *cuts, size_t ncuts,
                 struct guard_view *out);
    size_t pairs_max; /* every pair of split points only for len <= pairs_max */
    bool show_eof;    /* print the eof answers in messages */
    void *ctx;
};

/*
 * guard_check_splits - check @whole, the result of the unsplit parse of
 * msg[0..len), against every single split, one byte at a time, every pair of
 * splits (len <= g->pairs_max) and every truncation. Split runs must give the
 * same text, error and eof answer; a truncation must end with the same error,
 * or render as a prefix of @whole (less its "..." when pending). @whole must
 * not point into the storage g->feed overwrites.
 * Returns: true if all agree; else prints the first difference and returns false.
 */
bool guard_check_splits(const struct guard_split *g, const struct guard_view *whole,
                        const char *msg, size_t len);

#endif
