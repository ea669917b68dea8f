/* SPDX-License-Identifier: MIT */
/*
 * uri.c - store URI parsing (see uri_int.h). Setup path only; strict: any
 * character out of place is -EINVAL rather than a guess.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "fmt.h"
#include "uri_int.h"

/* Percent-decode s[0..n) into out (cap bytes incl. NUL). NUL bytes are refused. */
static int decode(char *out, size_t cap, const char *s, size_t n)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c == '%') {
            if (i + 2 >= n)
                return -EINVAL;
            int hi = lr__hexval(s[i + 1]), lo = lr__hexval(s[i + 2]);
            if (hi < 0 || lo < 0)
                return -EINVAL;
            c = (char)(hi * 16 + lo);
            if (c == '\0')
                return -EINVAL;
            i += 2;
        }
        if (o + 1 >= cap)
            return -EINVAL;
        out[o++] = c;
    }
    out[o] = '\0';
    return 0;
}

static int parse_query(struct lr__uri *u, const char *q, size_t n)
{
    size_t i = 0;
    while (i < n) {
        size_t end = i;
        while (end < n && q[end] != '&')
            end++;
        if (end > i) {
            const char *eq = memchr(q + i, '=', end - i);
            if (!eq || eq == q + i || u->nparams == LR_URI_MAX_PARAMS)
                return -EINVAL;
            size_t klen = (size_t)(eq - (q + i));
            int rc = decode(u->params[u->nparams].key, sizeof(u->params[0].key), q + i, klen);
            if (rc == 0)
                rc = decode(u->params[u->nparams].value, sizeof(u->params[0].value), eq + 1,
                            (size_t)(q + end - eq - 1));
            if (rc < 0)
                return rc;
            u->nparams++;
        }
        i = end + 1;
    }
    return 0;
}

/* Schemes whose userinfo is a bare base64 key: "cosmos", and a decorator
 * around it ("chaos+cosmos"). */
static bool key_scheme(const char *scheme)
{
    size_t n = strlen(scheme);
    return !strcmp(scheme, "cosmos") || (n > 7 && !strcmp(scheme + n - 7, "+cosmos"));
}

int lr__uri_parse(struct lr__uri *u, const char *s)
{
    memset(u, 0, sizeof(*u));
    if (!s)
        return -EINVAL;
    const char *sep = strstr(s, "://");
    if (!sep || sep == s || (size_t)(sep - s) >= sizeof(u->scheme))
        return -EINVAL;
    for (const char *c = s; c < sep; c++) {
        char ch = *c;
        if (!((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '+' || ch == '-' ||
              ch == '.'))
            return -EINVAL;
    }
    memcpy(u->scheme, s, (size_t)(sep - s));
    const char *p = sep + 3;
    size_t rest = strlen(p);
    const char *end = p + rest;
    const char *q = memchr(p, '?', rest);
    const char *auth_end = q ? q : end;
    int rc;
    if (key_scheme(u->scheme) && p < auth_end && *p != '/') {
        /* KEY@HOST: the key runs to the first '@' (base64 has '/', '+' and
         * '=' but never '@'), so it may be written as is or percent-encoded;
         * it is a secret, kept in password. */
        const char *at = memchr(p, '@', (size_t)(auth_end - p));
        if (!at || at == p)
            return -EINVAL;
        u->has_password = true;
        rc = decode(u->password, sizeof(u->password), p, (size_t)(at - p));
        if (rc < 0)
            return rc;
        p = at + 1;
    }
    const char *slash = p < auth_end ? memchr(p, '/', (size_t)(auth_end - p)) : NULL;
    if (slash)
        auth_end = slash;
    /* userinfo: the last '@' in the authority (passwords may contain '@' only encoded) */
    const char *at = NULL;
    for (const char *c = p; c < auth_end && !u->has_password; c++)
        if (*c == '@')
            at = c;
    if (at) {
        const char *colon = memchr(p, ':', (size_t)(at - p));
        const char *uend = colon ? colon : at;
        u->has_user = uend > p;
        rc = decode(u->user, sizeof(u->user), p, (size_t)(uend - p));
        if (rc < 0)
            return rc;
        if (colon) {
            u->has_password = true;
            rc = decode(u->password, sizeof(u->password), colon + 1, (size_t)(at - colon - 1));
            if (rc < 0)
                return rc;
        }
        p = at + 1;
    }
    /* host[:port], IPv6 in brackets */
    const char *hend = auth_end;
    const char *portp = NULL;
    if (p < auth_end && *p == '[') {
        const char *rb = memchr(p, ']', (size_t)(auth_end - p));
        if (!rb)
            return -EINVAL;
        if ((size_t)(rb - p - 1) >= sizeof(u->host))
            return -EINVAL;
        memcpy(u->host, p + 1, (size_t)(rb - p - 1));
        if (rb + 1 < auth_end) {
            if (rb[1] != ':')
                return -EINVAL;
            portp = rb + 2;
        }
    } else if (memchr(p, ',', (size_t)(auth_end - p))) {
        /* "h1:p1,h2:p2": a host list (redis+sentinel), kept whole in host */
        if ((size_t)(auth_end - p) >= sizeof(u->host))
            return -EINVAL;
        for (const char *c = p; c < auth_end; c++)
            if (*c == '%' || *c == '@' || (unsigned char)*c <= ' ')
                return -EINVAL;
        memcpy(u->host, p, (size_t)(auth_end - p));
        hend = portp = NULL;
    } else {
        const char *colon = memchr(p, ':', (size_t)(auth_end - p));
        if (colon) {
            hend = colon;
            portp = colon + 1;
        }
        if ((size_t)(hend - p) >= sizeof(u->host))
            return -EINVAL;
        for (const char *c = p; c < hend; c++)
            if (*c == '%' || *c == '@' || *c == '[' || *c == ']' || (unsigned char)*c <= ' ')
                return -EINVAL;
        memcpy(u->host, p, (size_t)(hend - p));
    }
    if (portp) {
        if (portp >= auth_end || auth_end - portp > 5)
            return -EINVAL;
        unsigned long port = 0;
        for (const char *c = portp; c < auth_end; c++) {
            if (*c < '0' || *c > '9')
                return -EINVAL;
            port = port * 10 + (unsigned long)(*c - '0');
        }
        if (port == 0 || port > 65535)
            return -EINVAL;
        u->port = (uint16_t)port;
        u->has_port = true;
    }
    if (slash) {
        const char *pend = q ? q : end;
        rc = decode(u->path, sizeof(u->path), slash + 1, (size_t)(pend - slash - 1));
        if (rc < 0)
            return rc;
    }
    if (q)
        return parse_query(u, q + 1, (size_t)(end - q - 1));
    return 0;
}

const char *lr__uri_param(const struct lr__uri *u, const char *key)
{
    for (unsigned i = 0; i < u->nparams; i++)
        if (!strcmp(u->params[i].key, key))
            return u->params[i].value;
    return NULL;
}

int lr__uri_port(const char *p, size_t len, uint16_t *port)
{
    unsigned long v = 0;
    if (len == 0 || len > 5)
        return -EINVAL;
    for (size_t i = 0; i < len; i++) {
        if (p[i] < '0' || p[i] > '9')
            return -EINVAL;
        v = v * 10 + (unsigned long)(p[i] - '0');
    }
    if (v == 0 || v > 65535)
        return -EINVAL;
    *port = (uint16_t)v;
    return 0;
}

/* One "host[:port]" or "[v6][:port]" of a host list into @h. */
static int host_entry(struct lr__uri_host *h, const char *p, size_t len, uint16_t dflt_port)
{
    const char *portp = NULL, *name = p;
    size_t nlen = len;
    if (len && p[0] == '[') {
        const char *rb = memchr(p, ']', len);
        if (!rb)
            return -EINVAL;
        name = p + 1;
        nlen = (size_t)(rb - name);
        if (rb + 1 < p + len) {
            if (rb[1] != ':')
                return -EINVAL;
            portp = rb + 2;
        }
    } else {
        const char *colon = memchr(p, ':', len);
        if (colon) {
            nlen = (size_t)(colon - p);
            portp = colon + 1;
        }
    }
    if (nlen == 0 || nlen >= sizeof(h->host))
        return -EINVAL;
    memcpy(h->host, name, nlen);
    h->host[nlen] = 0;
    h->port = dflt_port;
    if (portp)
        return lr__uri_port(portp, (size_t)(p + len - portp), &h->port);
    return 0;
}

int lr__uri_hosts(const struct lr__uri *u, const char *dflt_host, uint16_t dflt_port,
                  struct lr__uri_host *out, unsigned max)
{
    if (!u->host[0] && !dflt_host)
        return -EINVAL;
    if (!strchr(u->host, ',')) { /* one host: the URI split off its port */
        if (!max || strlen(u->host[0] ? u->host : dflt_host) >= sizeof(out->host))
            return -EINVAL;
        strcpy(out->host, u->host[0] ? u->host : dflt_host);
        out->port = u->has_port ? u->port : dflt_port;
        return 1;
    }
    unsigned n = 0;
    for (const char *p = u->host; *p;) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        if (n == max || host_entry(&out[n++], p, len, dflt_port) < 0)
            return -EINVAL;
        p = comma ? comma + 1 : p + len;
        if (comma && !*p)
            return -EINVAL; /* a trailing comma */
    }
    return (int)n;
}
