/* SPDX-License-Identifier: MIT */
/*
 * azsign_int.h - Azure Storage Shared Key signing, x-ms-date formatting and
 * connection-string parsing (internal).
 *
 * Pure functions over caller storage: nothing here allocates, does I/O, logs
 * or keeps global state. The signing key is one keyed wolfCrypt Hmac embedded
 * in struct lr__az_key; wc_HmacFinal() leaves it keyed, so one key signs
 * request after request with no SetKey per request. The string-to-sign is
 * built in a caller-provided scratch buffer (typically per connection).
 *
 * Canonicalization follows "Authorize with Shared Key"
 * (learn.microsoft.com/rest/api/storageservices/authorize-with-shared-key),
 * TECH-NOTES d):
 *   VERB\n Content-Encoding\n Content-Language\n Content-Length\n Content-MD5\n
 *   Content-Type\n Date\n If-Modified-Since\n If-Match\n If-None-Match\n
 *   If-Unmodified-Since\n Range\n CanonicalizedHeaders CanonicalizedResource
 * Interop note: Azurite 3.35 only left-trims x-ms-* values (no folding, no
 * right trim) and sorts names with localeCompare, so a request signs the same
 * for Azure and Azurite only if its x-ms-* values are already canonical (no
 * leading/trailing/doubled whitespace) and its names avoid '_' (ICU sorts
 * "x-ms-a_b" before "x-ms-a-b", bytewise order the other way round). Every
 * header leasering sends satisfies both.
 *
 * Secrets: struct lr__az_key (derived key state) and struct lr__az_conn
 * (AccountKey, SharedAccessSignature) hold secrets. They are never printed;
 * their deinit functions wipe them with explicit_bzero().
 * Layer: bytes and wolfCrypt only; knows nothing of sockets, HTTP or leases.
 */
#ifndef LR_AZSIGN_INT_H
#define LR_AZSIGN_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

/* options.h must come first: it fixes the layout of struct Hmac. */
#include <wolfssl/options.h>
#include <wolfssl/wolfcrypt/hmac.h>

#define LR_AZ_ACCOUNT_MAX 63    /* account name chars (Azure: 3-24; emulators: more) */
#define LR_AZ_KEY_B64_MAX 256   /* base64 chars of an account key (Azure's are 88) */
#define LR_AZ_KEY_MAX 192       /* decoded key bytes: LR_AZ_KEY_B64_MAX / 4 * 3 */
#define LR_AZ_SAS_MAX 1024      /* SharedAccessSignature query chars */
#define LR_AZ_HOST_MAX 255      /* endpoint host chars (DNS name limit) */
#define LR_AZ_BASE_PATH_MAX 255 /* endpoint base path chars */
#define LR_AZ_ENDPOINT_MAX 512  /* whole blob endpoint URL chars */
#define LR_AZ_MAX_HEADERS 32    /* x-ms-* headers per request */
#define LR_AZ_MAX_QUERY 32      /* query parameters per request */
#define LR_AZ_SIG_LEN 44        /* base64 of a 32-byte HMAC-SHA256 */
#define LR_AZ_SIG_SIZE (LR_AZ_SIG_LEN + 1)
#define LR_AZ_DATE_LEN 29 /* "Sun, 23 Nov 2025 08:00:00 GMT" */
#define LR_AZ_DATE_SIZE (LR_AZ_DATE_LEN + 1)
/* "SharedKey " + account + ":" + signature + NUL */
#define LR_AZ_AUTH_SIZE (10 + LR_AZ_ACCOUNT_MAX + 1 + LR_AZ_SIG_LEN + 1)

/* A byte string given by pointer and length. ptr NULL (or len 0) is empty. */
struct lr__az_str {
    const char *ptr;
    size_t len;
};

/* Initialiser for a string literal: LR_AZ_LIT("PUT"). */
/* clang-format off */
#define LR_AZ_LIT(s) {(s), sizeof(s) - 1}
/* clang-format on */

/* A NUL-terminated string (or NULL, meaning empty) as a struct lr__az_str. */
static inline struct lr__az_str lr__az_str_of(const char *s)
{
    struct lr__az_str r = {s, 0};
    while (s && s[r.len])
        r.len++;
    return r;
}

/* A name/value pair: an x-ms-* header, or a query parameter. */
struct lr__az_pair {
    struct lr__az_str name;
    struct lr__az_str value;
};

/*
 * One request to sign. Pointers are borrowed for the duration of the call
 * only. Standard headers are signed verbatim; a missing one is empty.
 */
struct lr__az_request {
    const char *verb;        /* "PUT", "GET", "HEAD", "DELETE": A-Z only */
    uint64_t content_length; /* 0 signs as "" (x-ms-version >= 2015-02-21) */
    struct lr__az_str content_encoding;
    struct lr__az_str content_language;
    struct lr__az_str content_md5;
    struct lr__az_str content_type;
    struct lr__az_str date; /* leave empty: we send x-ms-date instead */
    struct lr__az_str if_modified_since;
    struct lr__az_str if_match; /* the ETag exactly as sent, quotes included */
    struct lr__az_str if_none_match;
    struct lr__az_str if_unmodified_since;
    struct lr__az_str range;
    /* x-ms-* headers (x-ms-date included) in any order and any case. Names
     * must start with "x-ms-" and be unique ignoring case. Values are
     * canonicalized: whitespace runs folded to one space, ends trimmed. */
    const struct lr__az_pair *headers;
    size_t nheaders; /* <= LR_AZ_MAX_HEADERS */
    /* "/" + account + the encoded request path exactly as sent, e.g.
     * "/devstoreaccount1/devstoreaccount1/leases/job-42" for Azurite
     * (see lr__az_conn_blob_resource). */
    struct lr__az_str resource;
    /* Query parameters, url-decoded, in any order; names in any case. A name
     * may repeat: its values are sorted and joined with ','. */
    const struct lr__az_pair *query;
    size_t nquery; /* <= LR_AZ_MAX_QUERY */
};

/* A Shared Key: one keyed HMAC-SHA256 and the account it belongs to. */
struct lr__az_key {
    Hmac hmac; /* keyed once at init; secret */
    char account[LR_AZ_ACCOUNT_MAX + 1];
    size_t account_len;
    bool keyed; /* between init and deinit */
};

/*
 * lr__az_key_init - key @k for @account with the base64 account key @key_b64.
 * @k: caller storage; need not be initialised.
 * @account: NUL-terminated account name, 1..LR_AZ_ACCOUNT_MAX chars of
 *   [A-Za-z0-9._-].
 * @key_b64: NUL-terminated base64 account key (standard alphabet, '='
 *   padding, length a multiple of 4, at most LR_AZ_KEY_B64_MAX chars). It is
 *   checked strictly here: wolfCrypt's Base64_Decode silently accepts
 *   truncated input ("abc" decodes to 0 bytes with success).
 * Returns: 0; -EINVAL for a bad account name or a key that is empty, not
 *   strict base64 or too long; -EIO if wolfCrypt refuses to key the HMAC.
 *   On failure @k is wiped and need not be deinitialised.
 * Allocates: never (wolfCrypt's HMAC keeps its state inside @k).
 * Context: setup; any thread that owns @k.
 */
int lr__az_key_init(struct lr__az_key *k, const char *account, const char *key_b64);

/*
 * lr__az_key_init_bare - key @k with @key_b64 alone, no account: for keys
 * that only sign (Cosmos DB master keys, cosmossign_int.h). Key checks,
 * returns and wiping as lr__az_key_init(); lr__az_auth_format() refuses such
 * a key (no account to name).
 * Allocates: never.  Context: setup; any thread that owns @k.
 */
int lr__az_key_init_bare(struct lr__az_key *k, const char *key_b64);

/*
 * lr__az_key_deinit - free @k's HMAC state and wipe all of @k.
 * Safe on a key whose init failed and on a key deinitialised before.
 * Allocates: never.  Context: teardown; the thread that owns @k.
 */
void lr__az_key_deinit(struct lr__az_key *k);

/*
 * lr__az_sts_build - write the canonical string-to-sign of @req into
 * buf[0..cap). The result is not NUL-terminated.
 * @req: the request; validated before anything is written.
 * @buf: scratch, may be NULL when @cap is 0.
 * Returns: the length of the string-to-sign (>= 0), or
 *   -EINVAL: @req is NULL or malformed: verb empty or not A-Z; resource not
 *     starting with '/'; a control byte other than tab in any string (CR/LF
 *     would forge lines); an x-ms-* name not starting with "x-ms-", empty
 *     after the prefix, containing a non-token byte, or repeated (ignoring
 *     case); an empty query parameter name or one with ':'.
 *   -E2BIG: more than LR_AZ_MAX_HEADERS headers or LR_AZ_MAX_QUERY params.
 *   -ENOBUFS: the string does not fit in @cap bytes (buf holds garbage).
 *   -EMSGSIZE: the string is longer than INT_MAX.
 * Allocates: never.  Context: any thread; reentrant.
 */
int lr__az_sts_build(const struct lr__az_request *req, char *buf, size_t cap);

/*
 * lr__az_sign - sign @req with @k: build its string-to-sign in
 * scratch[0..cap), HMAC-SHA256 it, base64 the digest into @sig.
 * @sig: receives LR_AZ_SIG_LEN base64 chars and a NUL; untouched on error.
 * Returns: the string-to-sign length (>= 0, the text is left in @scratch), or
 *   any error of lr__az_sts_build(); -EINVAL also if @k is not initialised;
 *   -EIO if wolfCrypt fails. A failed HMAC update leaves no way back to a
 *   clean keyed state, so after -EIO @k is deinitialised (later calls give
 *   -EINVAL); init it again.
 * Allocates: never.  Context: the thread that owns @k (the keyed Hmac is
 *   mutable state; one key must not sign on two threads at once).
 */
int lr__az_sign(struct lr__az_key *k, const struct lr__az_request *req, char *scratch, size_t cap,
                char sig[LR_AZ_SIG_SIZE]);

/*
 * lr__az_sign_bytes - base64(HMAC-SHA256(key, msg[0..len))) into @sig, for
 * strings built elsewhere (e.g. a service SAS string-to-sign).
 * Returns: 0; -EINVAL if @k is not initialised or @msg is NULL with len > 0;
 *   -EMSGSIZE if @len exceeds UINT32_MAX; -EIO if wolfCrypt fails (as for
 *   lr__az_sign(), @k is then deinitialised).
 * Allocates: never.  Context: the thread that owns @k.
 */
int lr__az_sign_bytes(struct lr__az_key *k, const void *msg, size_t len, char sig[LR_AZ_SIG_SIZE]);

/*
 * lr__az_auth_format - write the Authorization header value
 * "SharedKey <account>:<sig>" and a NUL into out[0..cap).
 * @sig: a signature from lr__az_sign(), LR_AZ_SIG_LEN chars.
 * @cap: LR_AZ_AUTH_SIZE always suffices.
 * Returns: the value's length without the NUL; -EINVAL if @k is not
 *   initialised or has no account (lr__az_key_init_bare), or @sig is not LR_AZ_SIG_LEN chars;
 * -ENOBUFS if it does not fit (a too-small @out is left an empty string when cap > 0). Allocates:
 * never.  Context: any thread.
 */
int lr__az_auth_format(const struct lr__az_key *k, const char *sig, char *out, size_t cap);

/*
 * lr__az_date_format - format @t as an RFC 1123 date, the x-ms-date form
 * "Sun, 23 Nov 2025 08:00:00 GMT", into @out with a NUL. Locale-free (day and
 * month names are hand-formatted) and time-zone-free (no gmtime, which may
 * read /etc/localtime on first use).
 * Returns: LR_AZ_DATE_LEN; -ERANGE if @t falls outside years 0000..9999.
 * Allocates: never.  Context: any thread.
 */
int lr__az_date_format(time_t t, char out[LR_AZ_DATE_SIZE]);

/* The last formatted x-ms-date, so that a busy loop formats once a second. */
struct lr__az_date_cache {
    time_t second; /* the second text[] shows, if valid */
    bool valid;
    char text[LR_AZ_DATE_SIZE];
};

/*
 * lr__az_date_cache_init - empty @c.
 * Allocates: never.  Context: any thread that owns @c.
 */
void lr__az_date_cache_init(struct lr__az_date_cache *c);

/*
 * lr__az_date_cache_get - the x-ms-date text for @now, reformatted only when
 * @now differs from the cached second (forwards or backwards).
 * Returns: a pointer into @c (valid until the next call with another second),
 *   or NULL if @now is out of lr__az_date_format()'s range.
 * Allocates: never.  Context: the thread that owns @c (the loop thread).
 */
const char *lr__az_date_cache_get(struct lr__az_date_cache *c, time_t now);

/*
 * A parsed AZURE_STORAGE_CONNECTION_STRING. All fields are NUL-terminated.
 * key[] and sas[] are secrets: wipe with lr__az_conn_deinit().
 */
struct lr__az_conn {
    char account[LR_AZ_ACCOUNT_MAX + 1];     /* "" only for SAS + BlobEndpoint, no AccountName */
    char key[LR_AZ_KEY_B64_MAX + 1];         /* base64 AccountKey (strictly checked), or "" */
    char sas[LR_AZ_SAS_MAX + 1];             /* SharedAccessSignature without '?', or "" */
    char endpoint[LR_AZ_ENDPOINT_MAX + 1];   /* blob endpoint as given or derived, no final '/' */
    char scheme[6];                          /* "http" or "https" (lowercase) */
    char host[LR_AZ_HOST_MAX + 1];           /* IPv6 literals without their brackets */
    char base_path[LR_AZ_BASE_PATH_MAX + 1]; /* "" (Azure) or "/devstoreaccount1" (path style) */
    uint16_t port;                           /* explicit, or 80 / 443 */
    bool tls;                                /* scheme is https */
    bool dev_storage;                        /* from UseDevelopmentStorage=true */
};

/*
 * lr__az_conn_parse - parse connection string @s into @c.
 * Syntax: "Key=Value;Key=Value;..." with keys matched ignoring case, the
 * value being everything after the first '=' (base64 keys end in "=="),
 * spaces and tabs around keys and values ignored, and trailing ';' allowed.
 * Known keys: DefaultEndpointsProtocol (http|https, default https),
 * AccountName, AccountKey, BlobEndpoint, SharedAccessSignature,
 * EndpointSuffix (default core.windows.net), UseDevelopmentStorage. Other
 * keys (QueueEndpoint, TableEndpoint, ...) are ignored. Without BlobEndpoint
 * the endpoint is <protocol>://<account>.blob.<suffix>.
 * "UseDevelopmentStorage=true" must stand alone and means Azurite's defaults:
 * account devstoreaccount1, the well-known devstore key, blob endpoint
 * http://127.0.0.1:10000/devstoreaccount1.
 * Returns: 0; -EINVAL for NULL or empty input, a segment without '=', an
 *   empty key or value, an empty segment before the end, a known key given
 *   twice, a value too long for its field, an unusable value (protocol not
 *   http/https, bad account name, key not strict base64, SAS or endpoint with
 *   a space or control byte, endpoint with userinfo, query, fragment, bad
 *   port or empty host), UseDevelopmentStorage not "true" or combined with
 *   other keys, AccountKey without AccountName, neither AccountKey nor
 *   SharedAccessSignature, or no BlobEndpoint and no AccountName. On failure
 *   @c is wiped.
 * Allocates: never.  Context: setup; any thread.
 */
int lr__az_conn_parse(struct lr__az_conn *c, const char *s);

/*
 * lr__az_conn_deinit - wipe @c, secrets included (explicit_bzero).
 * Allocates: never.  Context: any thread that owns @c.
 */
void lr__az_conn_deinit(struct lr__az_conn *c);

/*
 * lr__az_conn_blob_path - write the request path (the URL path, no query) for
 * @container and @blob: base_path + "/" + container [+ "/" + encoded blob],
 * and a NUL, into out[0..cap). Path-style endpoints keep their account
 * segment: "/devstoreaccount1/leases/job-42" for Azurite.
 * @container: 1..63 chars of [a-z0-9-], or a name starting with '$' ("$root").
 * @blob: NULL for the container itself; else 1..1024 bytes, percent-encoded
 *   here except for unreserved characters and '/'.
 * Returns: the path length without the NUL; -EINVAL for a bad name;
 *   -ENOBUFS if it does not fit.
 * Allocates: never.  Context: any thread.
 */
int lr__az_conn_blob_path(const struct lr__az_conn *c, const char *container, const char *blob,
                          char *out, size_t cap);

/*
 * lr__az_conn_blob_resource - write the CanonicalizedResource path for
 * @container and @blob: "/" + account + the lr__az_conn_blob_path() path,
 * and a NUL. Azure and Azurite both sign "/" + account + the path as sent, so
 * path-style endpoints repeat the account:
 * "/devstoreaccount1/devstoreaccount1/leases/job-42" (Azurite's
 * authenticationPath is req.path), "/myacct/leases/job-42" for Azure.
 * Returns: the length without the NUL; -EINVAL for a bad name or when @c has
 *   no account (SAS-only); -ENOBUFS if it does not fit.
 * Allocates: never.  Context: any thread.
 */
int lr__az_conn_blob_resource(const struct lr__az_conn *c, const char *container, const char *blob,
                              char *out, size_t cap);

#endif
