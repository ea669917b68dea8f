/* SPDX-License-Identifier: MIT */
/* alloc_int.h - the internal side of the allocation hook (alloc.h). */
#ifndef LR_ALLOC_INT_H
#define LR_ALLOC_INT_H

#include <stddef.h>

void *lr__malloc(size_t size);
void *lr__calloc(size_t n, size_t size);
void lr__free(void *ptr);

#endif
