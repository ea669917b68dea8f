/* SPDX-License-Identifier: MIT */
/*
 * uri_int.h - a store URI split into parts (internal).
 *   scheme://[user[:password]@]host[:port][/path][?key=value&...]
 * Userinfo, path and query values are percent-decoded; an IPv6 host is given
 * in brackets. Fixed-size fields: a part that does not fit is -EINVAL.
 */
#ifndef LR_URI_INT_H
#define LR_URI_INT_H

#include <stdbool.h>
#include <stdint.h>

#define LR_URI_MAX_PARAMS 16 /* a decorator's parameters ride along the store's */

struct lr__uri {
    char scheme[16];
    char user[128];
    char password[256];
    char host[256];
    char path[256]; /* without the leading '/' */
    uint16_t port;
    bool has_user;
    bool has_password;
    bool has_port;
    unsigned nparams;
    struct {
        char key[32];
        char value[256];
    } params[LR_URI_MAX_PARAMS];
};

/* Returns 0, or -EINVAL for a malformed URI or a part that is too long. */
int lr__uri_parse(struct lr__uri *u, const char *s);
/* The value of query parameter @key, or NULL. */
const char *lr__uri_param(const struct lr__uri *u, const char *key);

#endif
