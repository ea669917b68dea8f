/* SPDX-License-Identifier: MIT */
/*
 * uri_int.h - a store URI split into parts (internal).
 *   scheme://[user[:password]@]host[:port][/path][?key=value&...]
 * Userinfo, path and query values are percent-decoded; an IPv6 host is given
 * in brackets. Fixed-size fields: a part that does not fit is -EINVAL.
 * cosmos://KEY@host/... (and chaos+cosmos): the userinfo is a base64 key,
 * which may hold '/': it runs from "//" to the first '@' and lands in
 * password (has_user false); a URI with an authority but no '@' is -EINVAL.
 */
#ifndef LR_URI_INT_H
#define LR_URI_INT_H

#include <stdbool.h>
#include <stddef.h>
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

/* A decimal port 1..65535 of @len bytes at @p into *@port: 0, or -EINVAL. */
int lr__uri_port(const char *p, size_t len, uint16_t *port);

/* One entry of a host list. */
struct lr__uri_host {
    char host[256]; /* no brackets around an IPv6 address */
    uint16_t port;
};

/* The hosts of @u: the list "h1[:p1],[v6][:p2],..." that lr__uri_parse keeps
 * whole in host (redis+sentinel, redis+cluster), or the single host and its
 * port; @dflt_port where an entry gives none, @dflt_host when the URI has no
 * host (NULL: a host is required). At most @max into @out.
 * Returns: the number of hosts (>= 1), or -EINVAL (no host, an empty entry or
 * a trailing comma, a bad port, more than @max). */
int lr__uri_hosts(const struct lr__uri *u, const char *dflt_host, uint16_t dflt_port,
                  struct lr__uri_host *out, unsigned max);

#endif
