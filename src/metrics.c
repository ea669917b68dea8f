/* SPDX-License-Identifier: MIT */
/*
 * metrics.c - log-linear histograms. A value v < 2^SUB lands in bucket v;
 * above that, in (exponent - SUB + 1) * 2^SUB + the SUB bits below the
 * leading one: 32 buckets per doubling, relative error under 1/32.
 */
#include <string.h>

#include <leasering/metrics.h>

#define SUB LR_HIST_SUB_BITS

static unsigned bucket_of(uint64_t v)
{
    if (v < (1u << SUB))
        return (unsigned)v;
    unsigned e = 63u - (unsigned)__builtin_clzll(v); /* e >= SUB */
    unsigned sub = (unsigned)(v >> (e - SUB)) & ((1u << SUB) - 1);
    return ((e - SUB + 1) << SUB) + sub;
}

/* Largest value that lands in bucket @b. */
static uint64_t bucket_top(unsigned b)
{
    if (b < (1u << SUB))
        return b;
    unsigned e = (b >> SUB) + SUB - 1;
    uint64_t sub = b & ((1u << SUB) - 1);
    uint64_t low = ((uint64_t)1 << e) | (sub << (e - SUB));
    return low + (((uint64_t)1 << (e - SUB)) - 1);
}

void lr_hist_add(struct lr_hist *h, uint64_t v)
{
    unsigned b = bucket_of(v);
    if (b >= LR_HIST_BUCKETS)
        b = LR_HIST_BUCKETS - 1;
    h->buckets[b]++;
    h->count++;
    h->sum += v;
    if (v > h->max)
        h->max = v;
}

uint64_t lr_hist_quantile(const struct lr_hist *h, double q)
{
    if (!h->count)
        return 0;
    if (q <= 0)
        q = 0;
    if (q >= 1)
        return h->max;
    uint64_t want = (uint64_t)(q * (double)h->count) + 1;
    uint64_t seen = 0;
    for (unsigned b = 0; b < LR_HIST_BUCKETS; b++) {
        seen += h->buckets[b];
        if (seen >= want) {
            uint64_t top = bucket_top(b);
            return top < h->max ? top : h->max;
        }
    }
    return h->max;
}

uint64_t lr_hist_bucket_max(unsigned b)
{
    return bucket_top(b < LR_HIST_BUCKETS ? b : LR_HIST_BUCKETS - 1);
}

void lr_hist_reset(struct lr_hist *h)
{
    memset(h, 0, sizeof(*h));
}
