/* SPDX-License-Identifier: MIT */
/*
 * error.c - lr_strerror() and lr_err_name(): static strings for our LR_E*
 * codes and for negated errno values. Never allocates.
 */
#include <errno.h>
#include <string.h>

#include <leasering/error.h>

struct lr_errdesc {
    int code;
    const char *name;
    const char *text;
};

static const struct lr_errdesc lr_errors[] = {
    {LR_ELOST, "LR_ELOST", "lease lost: the store says it belongs to someone else"},
    {LR_EEXPIRED, "LR_EEXPIRED", "lease expired locally before a renewal succeeded"},
    {LR_EBADREPLY, "LR_EBADREPLY", "the store sent a well-formed but unexpected reply"},
    {LR_EEOF, "LR_EEOF", "the peer closed the connection"},
    {LR_ECONFLICT, "LR_ECONFLICT", "the lease is held by someone else"},
    {LR_EUNAVAIL, "LR_EUNAVAIL", "the store is unavailable"},
    {LR_ECLOSED, "LR_ECLOSED", "closed before the operation completed"},
    {LR_EAUTH, "LR_EAUTH", "the store refused the credentials"},
    {LR_ETLS, "LR_ETLS", "TLS handshake or certificate verification failed"},
    {LR_ESTORE, "LR_ESTORE", "the store refused the request (server error)"},
};

/* One lookup for both the text and the name of a code. */
static const char *describe(int err, int want_name)
{
    if (err == 0)
        return want_name ? "OK" : "success";
    for (size_t i = 0; i < sizeof(lr_errors) / sizeof(lr_errors[0]); i++)
        if (lr_errors[i].code == err)
            return want_name ? lr_errors[i].name : lr_errors[i].text;
    if (err < 0 && err > LR_ERANGE_FIRST) {
        const char *s = want_name ? strerrorname_np(-err) : strerrordesc_np(-err);
        if (s)
            return s;
    }
    return want_name ? "UNKNOWN" : "unknown error";
}

const char *lr_strerror(int err)
{
    return describe(err, 0);
}

const char *lr_err_name(int err)
{
    return describe(err, 1);
}
