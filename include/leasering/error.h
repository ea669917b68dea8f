/* SPDX-License-Identifier: MIT */
/*
 * leasering/error.h - error codes.
 *
 * Every fallible call returns 0 (or a count) on success and a negative code on
 * failure: a negated errno where the meaning fits (-EINVAL, -ENOBUFS, -EPROTO,
 * -ETIMEDOUT, -ECANCELED, ...), or one of the LR_E* codes below, which sit in
 * the reserved range -4000..-4095, below any errno. Completion results from
 * the kernel are passed through unchanged. errno is never set or read as API.
 */
#ifndef LEASERING_ERROR_H
#define LEASERING_ERROR_H

#include <leasering/common.h>

#ifdef __cplusplus
extern "C" {
#endif

enum {
    LR_ERANGE_FIRST = -4000, /* no code; marks the start of our range */
    LR_ELOST = -4001,        /* the store says the lease belongs to someone else */
    LR_EEXPIRED = -4002,     /* local validity ran out before a renewal succeeded */
    LR_EBADREPLY = -4003,    /* well-formed reply with an unexpected meaning */
    LR_EEOF = -4004,         /* the peer closed the connection */
    LR_ECONFLICT = -4005,    /* the lease is held by someone else */
    LR_EUNAVAIL = -4006,     /* the store could not be reached */
    LR_ECLOSED = -4007,      /* the object was closed before the operation completed */
    LR_EAUTH = -4008,        /* the store refused our credentials */
    LR_ETLS = -4009,         /* TLS handshake or certificate verification failed */
    LR_ESTORE = -4010,       /* the store refused the request (server error); the text of
                              * the refusal is in lr_manager_last_error() */
    LR_ERANGE_LAST = -4095,  /* no code; marks the end of our range */
};

/*
 * lr_strerror - a human-readable description of @err.
 * @err: a negative code from any leasering call (LR_E* or a negated errno).
 * Returns: a static string, never NULL ("unknown error -N" style text is
 * returned as a generic string for codes nobody defines).
 * Allocates: never.  Context: any thread.
 */
LR_API const char *lr_strerror(int err);

/*
 * lr_err_name - the symbolic name of @err ("LR_ELOST", "ETIMEDOUT", ...).
 * Returns: a static string, "UNKNOWN" for undefined codes.
 * Allocates: never.  Context: any thread.
 */
LR_API const char *lr_err_name(int err);

#ifdef __cplusplus
}
#endif
#endif
