/* SPDX-License-Identifier: MIT */
/*
 * leasering/common.h - definitions every public header shares: the symbol
 * export macro and the intrusive link type that caller-owned structs embed.
 * Nothing here allocates or does I/O.
 */
#ifndef LEASERING_COMMON_H
#define LEASERING_COMMON_H

#include <stddef.h>
#include <stdint.h>

#if defined(LR_BUILDING) && defined(__GNUC__)
#define LR_API __attribute__((visibility("default")))
#else
#define LR_API
#endif

/*
 * A node of a circular doubly-linked intrusive list. Public only because
 * caller-owned structs (timers, leases) embed one; its fields are private.
 */
struct lr_list {
    struct lr_list *next;
    struct lr_list *prev;
};

#endif
