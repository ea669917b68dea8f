/* SPDX-License-Identifier: MIT */
/* lease_int.h - the manager's private state (lease.c; tests). */
#ifndef LR_LEASE_INT_H
#define LR_LEASE_INT_H

#include <leasering/lease.h>
#include <leasering/metrics.h>
#include "backend_int.h"
#include "loop_int.h"

/* lr_lease.flags */
enum {
    LR_LF_INIT = 1u << 0,          /* initialised (guards use of a zeroed struct) */
    LR_LF_OWNED = 1u << 1,         /* memory from lr_lease_new */
    LR_LF_NO_AUTO = 1u << 2,       /* no automatic renewal */
    LR_LF_RELEASE_PENDING = 1u << 3, /* release asked for while acquiring */
    LR_LF_UNAVAIL = 1u << 4,       /* the last failure was "store unreachable" */
    LR_LF_TRY = 1u << 5,           /* acquire: one attempt only */
    LR_LF_DUE = 1u << 6,           /* renewal timer armed for a scheduled renewal */
    LR_LF_BREAK = 1u << 7,         /* lr_lease_break asked for, not yet sent */
    LR_LF_CHANGE = 1u << 8,        /* lr_lease_change asked for, not yet sent */
    LR_LF_CHANGE_AMBIG = 1u << 9,  /* a change may have been applied: resend it
                                    * (the stores accept a change to the token
                                    * that is already current) until definite */
    LR_LF_HOLDER = 1u << 10,       /* holder/holder_ttl_ms hold a conflict's report */
    LR_LF_HOLDER_HEX = 1u << 11,   /* ... with the holder packed from 32 hex digits */
    LR_LF_HOLDER_REF = 1u << 12,   /* ... with the holder in the manager's holder table */
    LR_LF_SESSION = 1u << 13,      /* on a store session (l->sess; backend_int.h) */
};

/* A holder identity too long for the lease (lr_lease_holder): kept in the
 * manager's table, found again by slot and generation. */
struct lr__holder_slot {
    uint32_t gen;    /* bumped whenever the slot gets another identity */
    uint32_t used;   /* stamp of the last conflict that met it (least recent goes first) */
    uint8_t len;
    char text[LR_HOLDER_MAX + 1];
};

/* Lease names, carved from chunks in 8-byte units: a name costs its length
 * rounded up to 8, not LR_NAME_MAX. A deinitialised lease's name goes on the
 * free list of its size class, so leases re-initialised with names of that
 * class reuse it; chunks go back only with the manager. */
#define LR_NAMES_CHUNK 65536u
#define LR_NAMES_CLASSES ((LR_NAME_MAX + 1 + 7) / 8)
struct lr__names {
    char *chunk;                   /* newest chunk; its first 8 bytes link the previous */
    size_t used;                   /* bytes of it carved so far */
    char *free[LR_NAMES_CLASSES];  /* per size class, linked through their first 8 bytes */
};

struct lr_manager {
    struct lr_loop *loop;
    struct lr_manager_opts o;
    const struct lr__backend_ops *ops;
    const struct lr__backend_ops *store; /* ops, or the store a decorator wraps (TTL limits) */
    struct lr__backend *be;
    struct lr_list leases; /* lr_lease.mgr_link */
    bool closing;
    void (*close_cb)(struct lr_manager *m, void *arg);
    void *close_arg;
    struct lr__task close_task;
    uint64_t rng[2];
    unsigned pool_used;
    uint8_t pool[256]; /* getrandom bytes for owner tokens */
    struct lr__names names;
    struct lr_manager_stats stats;
    int err_status;      /* lr_manager_last_error */
    char err_text[160];
    uint8_t identity_len;
    char identity[LR_IDENTITY_MAX + 1]; /* opts.identity points here */
    uint32_t holder_stamp;
    struct lr__holder_slot holders[LR_HOLDER_SLOTS];
    struct lr_list inspects; /* lr__inspect.link: lr_manager_inspect in flight */
};

#endif
