/* SPDX-License-Identifier: MIT */
/*
 * leasering/alloc.h - the one allocation hook.
 *
 * Every allocation leasering makes goes through the functions installed here
 * (default: libc malloc/free). leasering allocates only in *_new and setup
 * calls; the steady state (renew, reply, reschedule, callbacks) allocates
 * nothing. Provided-buffer rings are page-aligned and are mapped with mmap,
 * not through this hook. The small state a manager shares with its name
 * resolver's helper thread comes from libc's malloc too: it may be freed on
 * that thread, and the hook need not be thread-safe.
 */
#ifndef LEASERING_ALLOC_H
#define LEASERING_ALLOC_H

#include <leasering/common.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Returns @size bytes aligned for any object, or NULL. */
typedef void *(*lr_malloc_fn)(size_t size, void *ud);
/* Releases memory from the matching lr_malloc_fn; @ptr may be NULL. */
typedef void (*lr_free_fn)(void *ptr, void *ud);

/*
 * lr_set_allocator - route leasering's allocations to @malloc_fn/@free_fn.
 * @ud is passed to both. Passing NULL for both restores libc.
 * Memory allocated before the switch is freed through the allocator that was
 * current when it was allocated only if you switch back first: install the
 * allocator before creating any leasering object.
 * Returns: 0, or -EINVAL if exactly one of the functions is NULL.
 * Allocates: never.  Context: process-wide; call before creating loops.
 */
LR_API int lr_set_allocator(lr_malloc_fn malloc_fn, lr_free_fn free_fn, void *ud);

#ifdef __cplusplus
}
#endif
#endif
