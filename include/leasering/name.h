/* SPDX-License-Identifier: MIT */
/*
 * leasering/name.h - hierarchical lease names: parts joined with a separator
 * ("jobs/eu-west/nightly"), the separator and the escape character '\'
 * escaped with '\' inside a part, so any parts come back whole. The result
 * is a lease name like any other (1..LR_NAME_MAX bytes, lr_lease_init).
 *
 *   parts {"a/b", "c\d"}, sep '/'  <->  "a\/b/c\\d"
 *
 * Encoding is one-to-one: lr_name_split accepts exactly what lr_name_join
 * can produce (a '\' before anything but the separator or '\', or at the
 * end, is -EINVAL), so join(split(name)) == name and split(join(parts)) ==
 * parts. Empty parts are allowed ("a//b" is {"a", "", "b"}); an empty name
 * is not (zero parts and one empty part would both give it).
 * Neither function allocates; both are safe from any thread.
 */
#ifndef LEASERING_NAME_H
#define LEASERING_NAME_H

#include <stddef.h>

#include <leasering/common.h>
#include <leasering/lease.h> /* LR_NAME_MAX */

#ifdef __cplusplus
extern "C" {
#endif

/* The escape character inside parts. */
#define LR_NAME_ESCAPE '\\'

/*
 * lr_name_join - write @parts[0..n-1], each escaped, separated by @sep, to
 * @out (NUL-terminated; @cap bytes; LR_NAME_MAX + 1 always suffices).
 * Returns: the name's length (1..LR_NAME_MAX); -EINVAL: @out or @parts NULL,
 * a NULL part, @sep is '\0' or '\', or the name would be empty (n == 0, or
 * one empty part); -ENAMETOOLONG: the escaped name is longer than
 * LR_NAME_MAX; -ENOBUFS: it fits LR_NAME_MAX but not @cap. On error @out
 * holds "" (when @cap > 0).
 */
LR_API int lr_name_join(char *out, size_t cap, char sep, const char *const *parts, size_t n);

/*
 * lr_name_split - the inverse: split @name at unescaped @sep, unescape each
 * part into @buf (@cap bytes, parts NUL-terminated one after another;
 * LR_NAME_MAX + 1 bytes always suffice) and point @parts[i] at part i.
 * Returns: the number of parts (>= 1); -EINVAL: a NULL argument, @sep is
 * '\0' or '\', @name is empty, or a bad escape (a '\' at the end or before
 * anything but @sep and '\'); -ENAMETOOLONG: @name is longer than
 * LR_NAME_MAX; -E2BIG: more than @max_parts parts; -ENOBUFS: @buf too small.
 */
LR_API int lr_name_split(const char *name, char sep, char *buf, size_t cap, const char **parts,
                         size_t max_parts);

#ifdef __cplusplus
}
#endif

#endif
