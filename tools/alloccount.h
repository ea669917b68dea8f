/* SPDX-License-Identifier: MIT */
/*
 * alloccount.h - counts *every* libc allocation call in the process
 * (malloc, calloc, realloc, reallocarray, free, posix_memalign,
 * aligned_alloc, memalign, valloc), from any library or thread, while a
 * window is open. Without sanitizers it interposes the libc symbols; under
 * ASan it installs the sanitizer allocator hooks instead (ASan owns malloc).
 */
#ifndef LR_TEST_ALLOCCOUNT_H
#define LR_TEST_ALLOCCOUNT_H

#include <stdint.h>

struct alloc_counts {
    uint64_t allocs; /* malloc-family calls that returned memory */
    uint64_t frees;  /* free calls with a non-NULL pointer, and reallocs that released a block */
};

/* Start counting from zero. */
void alloccount_begin(void);
/* Stop counting and return what was seen since alloccount_begin(). */
struct alloc_counts alloccount_end(void);
/* 1 if the counter really sees allocations (self-check: a malloc is counted). */
int alloccount_selftest(void);

#endif
