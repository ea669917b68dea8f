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

/*
 * An io_uring request's completion hook, embedded in whatever owns the
 * request (its address is the request's user_data). Public only because
 * caller-owned structs (fd watchers) embed one; its fields are private.
 */
struct lr__op {
    void (*complete)(struct lr__op *op, int res, uint32_t cqe_flags);
    uint32_t inflight; /* completions still expected */
};

/* A deferred call queued on the loop. Public for the same reason; private. */
struct lr__task {
    struct lr_list link;
    void (*run)(struct lr__task *t);
};

#endif
