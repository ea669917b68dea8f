/* SPDX-License-Identifier: MIT */
/*
 * cosmossign_int.h - Azure Cosmos DB master-key authorization (internal).
 *
 * The rules, from "Access control in the Azure Cosmos DB SQL API"
 * (learn.microsoft.com/rest/api/cosmos-db/access-control-on-cosmosdb-resources):
 *   StringToSign = lower(verb) + "\n" + lower(resourceType) + "\n" +
 *                  resourceLink + "\n" + lower(date) + "\n" + "" + "\n"
 *   sig = base64(HMAC-SHA256(base64decode(masterKey), StringToSign))
 *   Authorization = urlencode("type=master&ver=1.0&sig=" + sig)
 * resourceLink keeps its case ("dbs/MyDatabase/colls/MyCollection", no
 * leading '/'); the date is the RFC 1123 text sent as x-ms-date
 * ("Tue, 01 Nov 1994 08:12:31 GMT", lowercased only inside the signature);
 * the string ends with two newlines (the last field is the empty string).
 * The whole token is percent-encoded, so '=', '&', '+' and '/' travel as
 * %3D, %26, %2B and %2F. Microsoft's example prints lowercase hex (%3d, from
 * .NET's HttpUtility.UrlEncode); its Node.js sample (encodeURIComponent)
 * prints uppercase. Percent escapes are case-insensitive (RFC 3986 2.1);
 * we send uppercase.
 *
 * The x-ms-date text: lr__az_date_format() / lr__az_date_cache_get() in
 * azsign_int.h (the same RFC 1123 form Azure Storage uses).
 *
 * Key handling is azsign's: struct lr__az_key keyed by lr__az_key_init_bare(), so
 * the key is decoded strictly, lives only inside wolfCrypt's Hmac state, and
 * is wiped by lr__cosmos_key_deinit(). Nothing here logs or prints a key.
 * Pure functions over caller storage: no allocation, no I/O, no locale.
 */
#ifndef LR_COSMOSSIGN_INT_H
#define LR_COSMOSSIGN_INT_H

#include <stddef.h>

#include "azsign_int.h"

#define LR_COSMOS_VERB_MAX 7    /* "DELETE", "OPTIONS" */
#define LR_COSMOS_TYPE_MAX 31   /* "dbs", "colls", "docs", "pkranges", ... */
#define LR_COSMOS_LINK_MAX 1024 /* resource link chars (ids are <= 255 each) */
/* StringToSign: verb \n type \n link \n date \n \n */
#define LR_COSMOS_STS_MAX                                                                          \
    (LR_COSMOS_VERB_MAX + LR_COSMOS_TYPE_MAX + LR_COSMOS_LINK_MAX + LR_AZ_DATE_LEN + 5)
/* "type%3Dmaster%26ver%3D1.0%26sig%3D" + a signature whose 44 chars may all
 * need escaping + NUL. */
#define LR_COSMOS_AUTH_SIZE (34 + 3 * LR_AZ_SIG_LEN + 1)

/* A Cosmos DB master key (primary or secondary, read-write or read-only). */
struct lr__cosmos_key {
    struct lr__az_key az; /* keyed without an account; secret */
};

/*
 * lr__cosmos_key_init - key @k with the base64 master key @key_b64.
 * @key_b64: strict base64 (standard alphabet, '=' padding, length a
 *   multiple of 4), at most LR_AZ_KEY_B64_MAX chars.
 * Returns: 0; -EINVAL for NULL, an empty key, bad base64 or one too long;
 *   -EIO if wolfCrypt refuses to key the HMAC. On failure @k is wiped.
 * Allocates: never.  Context: setup; the thread that owns @k.
 */
int lr__cosmos_key_init(struct lr__cosmos_key *k, const char *key_b64);

/*
 * lr__cosmos_key_deinit - free and wipe @k (explicit_bzero). Safe twice and
 * after a failed init.  Allocates: never.
 */
void lr__cosmos_key_deinit(struct lr__cosmos_key *k);

/*
 * lr__cosmos_sts_build - write the string-to-sign into buf[0..cap), not
 * NUL-terminated.
 * @verb: 1..LR_COSMOS_VERB_MAX letters ("GET", "post": any case).
 * @type: the resource type, 1..LR_COSMOS_TYPE_MAX letters ("docs").
 * @link: the resource link, 0..LR_COSMOS_LINK_MAX bytes, case kept, no
 *   leading '/', no control bytes ("" for the account's dbs feed).
 * @date: the x-ms-date text, exactly LR_AZ_DATE_LEN printable chars.
 * Returns: the length (>= 0); -EINVAL for NULL or malformed input (checked
 *   before anything is written); -ENOSPC if it does not fit in @cap
 *   (LR_COSMOS_STS_MAX always suffices).
 * Allocates: never.  Context: any thread; reentrant.
 */
int lr__cosmos_sts_build(const char *verb, const char *type, const char *link, const char *date,
                         char *buf, size_t cap);

/*
 * lr__cosmos_auth - write the Authorization header value (the percent-encoded
 * "type=master&ver=1.0&sig=<base64 HMAC-SHA256>") and a NUL into
 * out[0..cap).
 * Arguments as for lr__cosmos_sts_build(); @cap: LR_COSMOS_AUTH_SIZE always
 * suffices.
 * Returns: the value's length without the NUL; -EINVAL for malformed input
 *   or a key not initialised; -ENOSPC if @out is too small (left "" when
 *   cap > 0); -EIO if wolfCrypt fails (then @k is deinitialised, as in
 *   lr__az_sign_bytes()).
 * Allocates: never (the string-to-sign is built on the stack).
 * Context: the thread that owns @k.
 */
int lr__cosmos_auth(struct lr__cosmos_key *k, const char *verb, const char *type, const char *link,
                    const char *date, char *out, size_t cap);

#endif
