/* SPDX-License-Identifier: MIT */
/*
 * alloc.c - every leasering allocation goes through lr__malloc/lr__free,
 * which forward to the hook installed with lr_set_allocator() (libc by
 * default). Only setup paths call these.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <leasering/alloc.h>
#include "alloc_int.h"

static void *libc_malloc(size_t size, void *ud)
{
    (void)ud;
    return malloc(size);
}

static void libc_free(void *ptr, void *ud)
{
    (void)ud;
    free(ptr);
}

static lr_malloc_fn cur_malloc = libc_malloc;
static lr_free_fn cur_free = libc_free;
static void *cur_ud;

int lr_set_allocator(lr_malloc_fn malloc_fn, lr_free_fn free_fn, void *ud)
{
    if (!malloc_fn != !free_fn)
        return -EINVAL;
    cur_malloc = malloc_fn ? malloc_fn : libc_malloc;
    cur_free = free_fn ? free_fn : libc_free;
    cur_ud = malloc_fn ? ud : NULL;
    return 0;
}

void *lr__malloc(size_t size)
{
    return cur_malloc(size ? size : 1, cur_ud);
}

void *lr__calloc(size_t n, size_t size)
{
    if (size && n > (size_t)-1 / size)
        return NULL;
    void *p = lr__malloc(n * size);
    if (p)
        memset(p, 0, n * size);
    return p;
}

void lr__free(void *ptr)
{
    if (ptr)
        cur_free(ptr, cur_ud);
}
