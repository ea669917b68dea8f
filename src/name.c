/* SPDX-License-Identifier: MIT */
/*
 * name.c - hierarchical lease names (leasering/name.h): join escapes the
 * separator and '\' inside each part; split undoes it and refuses any
 * escape join would not have written.
 */
#include <errno.h>
#include <string.h>

#include <leasering/name.h>

static int bad_sep(char sep)
{
    return sep == '\0' || sep == LR_NAME_ESCAPE;
}

int lr_name_join(char *out, size_t cap, char sep, const char *const *parts, size_t n)
{
    if (!out || !parts || bad_sep(sep))
        return -EINVAL;
    if (cap)
        out[0] = '\0';
    size_t len = 0;
    for (size_t i = 0; i < n; i++) {
        if (!parts[i])
            return -EINVAL;
        len += i > 0;
        for (const char *p = parts[i]; *p; p++)
            len += 1 + (*p == sep || *p == LR_NAME_ESCAPE);
        if (len > LR_NAME_MAX)
            return -ENAMETOOLONG;
    }
    if (len == 0)
        return -EINVAL;
    if (len >= cap)
        return -ENOBUFS;
    char *w = out;
    for (size_t i = 0; i < n; i++) {
        if (i > 0)
            *w++ = sep;
        for (const char *p = parts[i]; *p; p++) {
            if (*p == sep || *p == LR_NAME_ESCAPE)
                *w++ = LR_NAME_ESCAPE;
            *w++ = *p;
        }
    }
    *w = '\0';
    return (int)len;
}

int lr_name_split(const char *name, char sep, char *buf, size_t cap, const char **parts,
                  size_t max_parts)
{
    if (!name || !buf || !parts || bad_sep(sep))
        return -EINVAL;
    size_t len = strnlen(name, LR_NAME_MAX + 1);
    if (len > LR_NAME_MAX)
        return -ENAMETOOLONG;
    if (len == 0)
        return -EINVAL;
    if (max_parts == 0)
        return -E2BIG;
    size_t w = 0, n = 0;
    parts[n++] = buf;
    for (size_t i = 0; i < len; i++) {
        char c = name[i];
        if (c == LR_NAME_ESCAPE) {
            if (i + 1 == len || (name[i + 1] != sep && name[i + 1] != LR_NAME_ESCAPE))
                return -EINVAL;
            c = name[++i];
        } else if (c == sep) {
            if (n == max_parts)
                return -E2BIG;
            if (w >= cap)
                return -ENOBUFS;
            buf[w++] = '\0';
            parts[n++] = buf + w;
            continue;
        }
        if (w >= cap)
            return -ENOBUFS;
        buf[w++] = c;
    }
    if (w >= cap)
        return -ENOBUFS;
    buf[w] = '\0';
    return (int)n;
}
