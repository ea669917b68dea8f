/* SPDX-License-Identifier: MIT */
/*
 * alloccount.c - see alloccount.h. The interposer forwards to glibc's
 * __libc_* entry points, so it needs no dlsym bootstrap.
 */
#include <stdatomic.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "alloccount.h"

static atomic_int counting;
static atomic_uint_fast64_t n_allocs;
static atomic_uint_fast64_t n_frees;

static inline void count_alloc(void)
{
    if (atomic_load_explicit(&counting, memory_order_relaxed))
        atomic_fetch_add_explicit(&n_allocs, 1, memory_order_relaxed);
}

static inline void count_free(const void *p)
{
    if (p && atomic_load_explicit(&counting, memory_order_relaxed))
        atomic_fetch_add_explicit(&n_frees, 1, memory_order_relaxed);
}

#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define LRT_ASAN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__)
#define LRT_ASAN 1
#endif

#ifdef LRT_ASAN
/* Declared here because gcc ships no sanitizer headers; the function is part
 * of the sanitizer runtime's public interface in gcc and clang alike. */
int __sanitizer_install_malloc_and_free_hooks(void (*malloc_hook)(const volatile void *, size_t),
                                              void (*free_hook)(const volatile void *));

static void hook_malloc(const volatile void *p, size_t size)
{
    (void)p;
    (void)size;
    count_alloc();
}

static void hook_free(const volatile void *p)
{
    count_free((const void *)p);
}

__attribute__((constructor)) static void install_hooks(void)
{
    __sanitizer_install_malloc_and_free_hooks(hook_malloc, hook_free);
}
#else
/* Interposers must be in the dynamic symbol table, whatever -fvisibility says,
 * or calls from libc and other libraries bypass them. */
#define INTERPOSE __attribute__((visibility("default")))
extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void __libc_free(void *);
extern void *__libc_memalign(size_t, size_t);
extern void *__libc_valloc(size_t);

INTERPOSE void *malloc(size_t n)
{
    count_alloc();
    return __libc_malloc(n);
}

INTERPOSE void *calloc(size_t n, size_t m)
{
    count_alloc();
    return __libc_calloc(n, m);
}

/* A realloc that moved or released the old block counts as an allocation
 * plus a free, as the sanitizer hooks see it, so allocs == frees still means
 * "nothing outstanding". */
static void *counted_realloc(void *p, size_t n)
{
    void *r = __libc_realloc(p, n);
    if (r)
        count_alloc();
    if (p && (r || n == 0))
        count_free(p);
    return r;
}

INTERPOSE void *realloc(void *p, size_t n)
{
    return counted_realloc(p, n);
}

INTERPOSE void *reallocarray(void *p, size_t n, size_t m)
{
    if (m && n > SIZE_MAX / m)
        return NULL;
    return counted_realloc(p, n * m);
}

INTERPOSE void free(void *p)
{
    count_free(p);
    __libc_free(p);
}

INTERPOSE int posix_memalign(void **out, size_t align, size_t n)
{
    if (align < sizeof(void *) || (align & (align - 1)))
        return 22; /* EINVAL */
    count_alloc();
    void *p = __libc_memalign(align, n);
    if (!p)
        return 12; /* ENOMEM */
    *out = p;
    return 0;
}

INTERPOSE void *aligned_alloc(size_t align, size_t n)
{
    count_alloc();
    return __libc_memalign(align, n);
}

void *memalign(size_t align, size_t n);
void *valloc(size_t n);
INTERPOSE void *memalign(size_t align, size_t n)
{
    count_alloc();
    return __libc_memalign(align, n);
}

INTERPOSE void *valloc(size_t n)
{
    count_alloc();
    return __libc_valloc(n);
}
#endif

void alloccount_begin(void)
{
    atomic_store(&n_allocs, 0);
    atomic_store(&n_frees, 0);
    atomic_store(&counting, 1);
}

struct alloc_counts alloccount_end(void)
{
    atomic_store(&counting, 0);
    struct alloc_counts c = {atomic_load(&n_allocs), atomic_load(&n_frees)};
    return c;
}

int alloccount_selftest(void)
{
    alloccount_begin();
    /* volatile pointer: the compiler may not elide the pair */
    void *volatile p = malloc(64);
    free(p);
    char *volatile s = strdup("x");
    free(s);
    struct alloc_counts c = alloccount_end();
    return c.allocs == 2 && c.frees == 2;
}
