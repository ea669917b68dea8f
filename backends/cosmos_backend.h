/* SPDX-License-Identifier: MIT */
/*
 * cosmos_backend.h - pieces of the Cosmos DB backend that tests reach directly
 * (internal): the lease name <-> document id mapping and the connection
 * string parser. Pure functions, no allocation.
 */
#ifndef LR_BACKEND_COSMOS_H
#define LR_BACKEND_COSMOS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "azsign_int.h"

/* Cosmos ids are at most 255 characters. */
#define LR_COSMOS_ID_MAX 255

/*
 * lr__cosmos_id_of - the document id of lease @name (@n bytes) into
 * out[0..cap), NUL-terminated. Bytes A-Z a-z 0-9 '-' '_' '.' stay as they
 * are; every other byte (among them '/', '\\', '?', '#' that Cosmos forbids
 * in ids, '~' itself, spaces, UTF-8) becomes "~XX" (two uppercase hex
 * digits). So ids need no escaping in a URL path, a JSON string or the
 * partition key header, and different names give different ids.
 * Returns: the id's length; -ENAMETOOLONG over LR_COSMOS_ID_MAX or @cap;
 * -EINVAL for an empty name.
 */
int lr__cosmos_id_of(const char *name, size_t n, char *out, size_t cap);

/*
 * lr__cosmos_name_of - the inverse: the lease name of document id @id into
 * out[0..cap), NUL-terminated. Returns its length; -EINVAL when @id is not
 * one lr__cosmos_id_of writes (a bad escape, a byte that should have been
 * escaped, an escape of a byte that should not); -ENAMETOOLONG over @cap.
 */
int lr__cosmos_name_of(const char *id, size_t n, char *out, size_t cap);

/* What a connection string says. */
struct lr__cosmos_conn {
    char host[256];
    uint16_t port;
    bool tls;                        /* https endpoint */
    char key[LR_AZ_KEY_B64_MAX + 1]; /* base64, secret */
};

/*
 * lr__cosmos_conn_parse - parse a COSMOS_CONNECTION_STRING:
 * "AccountEndpoint=https://HOST[:PORT][/];AccountKey=KEY;" with the names in
 * any order and any case, a trailing ';' optional, unknown names ignored.
 * The endpoint scheme (http or https) gives the TLS default; the port
 * defaults to 443 (https) or 80 (http).
 * Returns: 0; -EINVAL with a reason in @why (never containing the key)
 * for a missing or bad part.
 */
int lr__cosmos_conn_parse(struct lr__cosmos_conn *c, const char *s, const char **why);

#endif
