/* SPDX-License-Identifier: MIT */
/*
 * bench/median.h - the median the C benchmarks report (bench-wheel,
 * bench-hiredis). Sorts @v in place.
 */
#ifndef LR_BENCH_MEDIAN_H
#define LR_BENCH_MEDIAN_H

#include <stdlib.h>

static inline int lr_bench_cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static inline double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof(*v), lr_bench_cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

#endif
