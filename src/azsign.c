/* SPDX-License-Identifier: MIT */
/*
 * azsign.c - Azure Shared Key signing, x-ms-date formatting and connection
 * string parsing (see azsign_int.h). No allocation, no I/O, no locale: all
 * case folding and date names are ASCII tables here. Every input is
 * validated before the first byte is written, so an error never leaves a
 * half-built string that could be mistaken for a result.
 */
#include <errno.h>
#include <limits.h>
#include <string.h>

#include "azsign_int.h"

#include <wolfssl/wolfcrypt/coding.h>

/* Azurite's well-known development account (Azurite README, TECH-NOTES d). */
#define DEV_ACCOUNT "devstoreaccount1"
#define DEV_KEY                                                                                    \
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
#define DEV_ENDPOINT "http://127.0.0.1:10000/devstoreaccount1"
#define DEFAULT_SUFFIX "core.windows.net"
#define HMAC_SHA256_LEN 32

/* ---- small ASCII helpers (locale-free on purpose) ---- */

static char lower(char c)
{
    return (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
}

static bool is_alnum(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

static bool is_unreserved(char c)
{
    return is_alnum(c) || c == '-' || c == '.' || c == '_' || c == '~';
}

/* RFC 9110 5.6.2 tchar: what a header field name may contain. */
static bool is_tchar(char c)
{
    return is_alnum(c) || (c && strchr("!#$%&'*+-.^_`|~", c));
}

static bool is_ctl(char c)
{
    unsigned char u = (unsigned char)c;
    return (u < 0x20 && c != '\t') || u == 0x7f;
}

static bool is_space(char c)
{
    return c == ' ' || c == '\t';
}

static bool eq_ci(const char *a, size_t alen, const char *b)
{
    size_t blen = strlen(b);
    if (alen != blen)
        return false;
    for (size_t i = 0; i < alen; i++)
        if (lower(a[i]) != lower(b[i]))
            return false;
    return true;
}

/* A string is usable when its pointer is valid for its length and it holds no
 * control byte: a CR or LF would forge a line of the string-to-sign. */
static bool str_ok(struct lr__az_str s)
{
    if (!s.ptr)
        return s.len == 0;
    for (size_t i = 0; i < s.len; i++)
        if (is_ctl(s.ptr[i]))
            return false;
    return true;
}

/* Bytewise order of the ASCII-lowercased strings. */
static int cmp_lower(struct lr__az_str a, struct lr__az_str b)
{
    size_t n = a.len < b.len ? a.len : b.len;
    for (size_t i = 0; i < n; i++) {
        unsigned char ca = (unsigned char)lower(a.ptr[i]);
        unsigned char cb = (unsigned char)lower(b.ptr[i]);
        if (ca != cb)
            return ca < cb ? -1 : 1;
    }
    return a.len < b.len ? -1 : a.len > b.len;
}

static int cmp_bytes(struct lr__az_str a, struct lr__az_str b)
{
    size_t n = a.len < b.len ? a.len : b.len;
    int c = n ? memcmp(a.ptr, b.ptr, n) : 0;
    if (c)
        return c < 0 ? -1 : 1;
    return a.len < b.len ? -1 : a.len > b.len;
}

/* ---- bounded writer: counts everything, copies only what fits ---- */

struct out {
    char *buf;
    size_t cap;
    size_t len; /* may exceed cap: then the result did not fit */
};

static void put(struct out *o, const char *p, size_t n)
{
    if (n && o->len <= o->cap && n <= o->cap - o->len)
        memcpy(o->buf + o->len, p, n);
    o->len += n;
}

static void put_c(struct out *o, char c)
{
    put(o, &c, 1);
}

static void put_s(struct out *o, struct lr__az_str s)
{
    put(o, s.ptr, s.len);
}

static void put_lower(struct out *o, struct lr__az_str s)
{
    for (size_t i = 0; i < s.len; i++)
        put_c(o, lower(s.ptr[i]));
}

/* Shared Key, Constructing the canonicalized headers string, step 4: runs of
 * whitespace become one space; leading and trailing whitespace goes. */
static void put_folded(struct out *o, struct lr__az_str v)
{
    size_t i = 0;
    bool first = true;
    while (i < v.len) {
        while (i < v.len && is_space(v.ptr[i]))
            i++;
        size_t start = i;
        while (i < v.len && !is_space(v.ptr[i]))
            i++;
        if (i > start) {
            if (!first)
                put_c(o, ' ');
            put(o, v.ptr + start, i - start);
            first = false;
        }
    }
}

static void put_u64(struct out *o, uint64_t v)
{
    char tmp[20];
    size_t n = 0;
    do {
        tmp[sizeof(tmp) - 1 - n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    put(o, tmp + sizeof(tmp) - n, n);
}

/* NUL-terminate a string result; -ENOBUFS (and "" when possible) if it does
 * not fit. */
static int finish_string(struct out *o)
{
    if (o->len >= o->cap || o->len > INT_MAX) {
        if (o->cap)
            o->buf[0] = '\0';
        return -ENOBUFS;
    }
    o->buf[o->len] = '\0';
    return (int)o->len;
}

/* ---- string-to-sign ---- */

static bool header_name_ok(struct lr__az_str n)
{
    if (!n.ptr || n.len <= 5 || !eq_ci(n.ptr, 5, "x-ms-"))
        return false;
    for (size_t i = 0; i < n.len; i++)
        if (!is_tchar(n.ptr[i]))
            return false;
    return true;
}

static bool query_name_ok(struct lr__az_str n)
{
    return n.ptr && n.len && str_ok(n) && !memchr(n.ptr, ':', n.len);
}

/* Insertion sort of idx[0..n) by name (lowercased), then by value. The
 * lists are tiny (<= 32), so this beats anything cleverer. */
static void sort_pairs(uint8_t *idx, size_t n, const struct lr__az_pair *p)
{
    for (size_t i = 0; i < n; i++)
        idx[i] = (uint8_t)i;
    for (size_t i = 1; i < n; i++) {
        uint8_t cur = idx[i];
        size_t j = i;
        while (j > 0) {
            const struct lr__az_pair *a = &p[idx[j - 1]], *b = &p[cur];
            int c = cmp_lower(a->name, b->name);
            if (c == 0)
                c = cmp_bytes(a->value, b->value);
            if (c <= 0)
                break;
            idx[j] = idx[j - 1];
            j--;
        }
        idx[j] = cur;
    }
}

static int check_request(const struct lr__az_request *r, uint8_t *hidx, uint8_t *qidx)
{
    if (!r || !r->verb || !r->verb[0])
        return -EINVAL;
    for (const char *v = r->verb; *v; v++)
        if (*v < 'A' || *v > 'Z')
            return -EINVAL;
    const struct lr__az_str *std[] = {
        &r->content_encoding,
        &r->content_language,
        &r->content_md5,
        &r->content_type,
        &r->date,
        &r->if_modified_since,
        &r->if_match,
        &r->if_none_match,
        &r->if_unmodified_since,
        &r->range,
    };
    for (size_t i = 0; i < sizeof(std) / sizeof(std[0]); i++)
        if (!str_ok(*std[i]))
            return -EINVAL;
    if (!str_ok(r->resource) || r->resource.len == 0 || r->resource.ptr[0] != '/')
        return -EINVAL;
    if (r->nheaders > LR_AZ_MAX_HEADERS || r->nquery > LR_AZ_MAX_QUERY)
        return -E2BIG;
    if ((r->nheaders && !r->headers) || (r->nquery && !r->query))
        return -EINVAL;
    for (size_t i = 0; i < r->nheaders; i++)
        if (!header_name_ok(r->headers[i].name) || !str_ok(r->headers[i].value))
            return -EINVAL;
    for (size_t i = 0; i < r->nquery; i++)
        if (!query_name_ok(r->query[i].name) || !str_ok(r->query[i].value))
            return -EINVAL;
    sort_pairs(hidx, r->nheaders, r->headers);
    /* "Each header may appear only once": a repeat is a caller bug. */
    for (size_t i = 1; i < r->nheaders; i++)
        if (cmp_lower(r->headers[hidx[i - 1]].name, r->headers[hidx[i]].name) == 0)
            return -EINVAL;
    sort_pairs(qidx, r->nquery, r->query);
    return 0;
}

int lr__az_sts_build(const struct lr__az_request *req, char *buf, size_t cap)
{
    uint8_t hidx[LR_AZ_MAX_HEADERS];
    uint8_t qidx[LR_AZ_MAX_QUERY];
    int rc = check_request(req, hidx, qidx);
    if (rc < 0)
        return rc;
    if (!buf)
        cap = 0;
    struct out o = {buf, cap, 0};
    put(&o, req->verb, strlen(req->verb));
    put_c(&o, '\n');
    put_s(&o, req->content_encoding);
    put_c(&o, '\n');
    put_s(&o, req->content_language);
    put_c(&o, '\n');
    /* From version 2015-02-21 a zero Content-Length signs as "". */
    if (req->content_length)
        put_u64(&o, req->content_length);
    put_c(&o, '\n');
    const struct lr__az_str *rest[] = {
        &req->content_md5,         &req->content_type, &req->date,
        &req->if_modified_since,   &req->if_match,     &req->if_none_match,
        &req->if_unmodified_since, &req->range,
    };
    for (size_t i = 0; i < sizeof(rest) / sizeof(rest[0]); i++) {
        put_s(&o, *rest[i]);
        put_c(&o, '\n');
    }
    /* CanonicalizedHeaders: "name:value\n", names lowercased and sorted. */
    for (size_t i = 0; i < req->nheaders; i++) {
        const struct lr__az_pair *h = &req->headers[hidx[i]];
        put_lower(&o, h->name);
        put_c(&o, ':');
        put_folded(&o, h->value);
        put_c(&o, '\n');
    }
    /* CanonicalizedResource: path, then "\nname:v1,v2" per sorted name. */
    put_s(&o, req->resource);
    for (size_t i = 0; i < req->nquery; i++) {
        const struct lr__az_pair *q = &req->query[qidx[i]];
        if (i == 0 || cmp_lower(req->query[qidx[i - 1]].name, q->name) != 0) {
            put_c(&o, '\n');
            put_lower(&o, q->name);
            put_c(&o, ':');
        } else {
            put_c(&o, ',');
        }
        put_s(&o, q->value);
    }
    if (o.len > cap)
        return -ENOBUFS;
    if (o.len > INT_MAX)
        return -EMSGSIZE;
    return (int)o.len;
}

/* ---- key and HMAC ---- */

static bool is_b64(char c)
{
    return is_alnum(c) || c == '+' || c == '/';
}

/* Strict base64 syntax (standard alphabet, '=' only as final padding, length
 * a multiple of 4). Returns the decoded length, or -EINVAL. Needed because
 * Base64_Decode accepts truncated or oddly padded input without error. */
static int b64_decoded_len(const char *s, size_t n)
{
    if (n == 0 || n % 4 != 0)
        return -EINVAL;
    size_t pad = s[n - 1] == '=' ? (s[n - 2] == '=' ? 2 : 1) : 0;
    for (size_t i = 0; i < n - pad; i++)
        if (!is_b64(s[i]))
            return -EINVAL;
    return (int)(n / 4 * 3 - pad);
}

static bool account_ok(const char *a, size_t n)
{
    if (n == 0 || n > LR_AZ_ACCOUNT_MAX)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!is_alnum(a[i]) && a[i] != '-' && a[i] != '_' && a[i] != '.')
            return false;
    return true;
}

int lr__az_key_init_bare(struct lr__az_key *k, const char *key_b64)
{
    if (!k)
        return -EINVAL;
    memset(k, 0, sizeof(*k));
    if (!key_b64)
        return -EINVAL;
    size_t klen = strnlen(key_b64, LR_AZ_KEY_B64_MAX + 1);
    if (klen > LR_AZ_KEY_B64_MAX)
        return -EINVAL;
    int want = b64_decoded_len(key_b64, klen);
    if (want <= 0)
        return -EINVAL;
    /* TECH-NOTES b): Base64_Decode wants room beyond the decoded size (an
     * 88-char key, 64 bytes, fails with 64 and works with 65); give it all. */
    byte raw[LR_AZ_KEY_MAX + 3];
    word32 rawlen = sizeof(raw);
    int rc = -EINVAL;
    if (Base64_Decode((const byte *)key_b64, (word32)klen, raw, &rawlen) != 0 ||
        rawlen != (word32)want)
        goto out;
    rc = -EIO;
    if (wc_HmacInit(&k->hmac, NULL, INVALID_DEVID) != 0)
        goto out;
    if (wc_HmacSetKey(&k->hmac, WC_SHA256, raw, rawlen) != 0) {
        wc_HmacFree(&k->hmac);
        goto out;
    }
    k->keyed = true;
    rc = 0;
out:
    explicit_bzero(raw, sizeof(raw));
    if (rc < 0)
        explicit_bzero(k, sizeof(*k));
    return rc;
}

int lr__az_key_init(struct lr__az_key *k, const char *account, const char *key_b64)
{
    if (!k)
        return -EINVAL;
    memset(k, 0, sizeof(*k));
    size_t alen = account ? strlen(account) : 0;
    if (!account || !account_ok(account, alen))
        return -EINVAL;
    int rc = lr__az_key_init_bare(k, key_b64);
    if (rc < 0)
        return rc;
    memcpy(k->account, account, alen + 1);
    k->account_len = alen;
    return 0;
}

void lr__az_key_deinit(struct lr__az_key *k)
{
    if (!k)
        return;
    if (k->keyed)
        wc_HmacFree(&k->hmac);
    /* The Hmac holds key ^ ipad/opad and the keyed inner state: all secret. */
    explicit_bzero(k, sizeof(*k));
}

/* A failed Update/Final leaves the Hmac mid-message, and signing on from
 * there would give wrong answers forever; retire the key instead. */
static int key_broken(struct lr__az_key *k)
{
    lr__az_key_deinit(k);
    return -EIO;
}

static int hmac_b64(struct lr__az_key *k, const void *msg, size_t len, char sig[LR_AZ_SIG_SIZE])
{
    byte digest[HMAC_SHA256_LEN];
    byte b64[LR_AZ_SIG_SIZE];
    word32 b64len = sizeof(b64);
    if (len > UINT32_MAX)
        return -EMSGSIZE;
    /* wc_HmacFinal re-arms the keyed state (TECH-NOTES b), so the next
     * request needs no SetKey. */
    if (wc_HmacUpdate(&k->hmac, (const byte *)msg, (word32)len) != 0 ||
        wc_HmacFinal(&k->hmac, digest) != 0)
        return key_broken(k);
    /* _NoNl: plain Base64_Encode appends '\n' and needs 45 bytes. */
    if (Base64_Encode_NoNl(digest, sizeof(digest), b64, &b64len) != 0 || b64len != LR_AZ_SIG_LEN)
        return -EIO;
    memcpy(sig, b64, LR_AZ_SIG_LEN);
    sig[LR_AZ_SIG_LEN] = '\0';
    return 0;
}

int lr__az_sign_bytes(struct lr__az_key *k, const void *msg, size_t len, char sig[LR_AZ_SIG_SIZE])
{
    if (!k || !k->keyed || !sig || (!msg && len))
        return -EINVAL;
    return hmac_b64(k, msg, len, sig);
}

int lr__az_sign(struct lr__az_key *k, const struct lr__az_request *req, char *scratch, size_t cap,
                char sig[LR_AZ_SIG_SIZE])
{
    if (!k || !k->keyed || !sig)
        return -EINVAL;
    int n = lr__az_sts_build(req, scratch, cap);
    if (n < 0)
        return n;
    int rc = hmac_b64(k, scratch, (size_t)n, sig);
    return rc < 0 ? rc : n;
}

int lr__az_auth_format(const struct lr__az_key *k, const char *sig, char *out, size_t cap)
{
    if (!k || !k->keyed || k->account_len == 0 || !sig ||
        strnlen(sig, LR_AZ_SIG_SIZE) != LR_AZ_SIG_LEN || (!out && cap))
        return -EINVAL;
    struct out o = {out, cap, 0};
    put(&o, "SharedKey ", 10);
    put(&o, k->account, k->account_len);
    put_c(&o, ':');
    put(&o, sig, LR_AZ_SIG_LEN);
    return finish_string(&o);
}

/* ---- x-ms-date ---- */

#define DATE_MIN (-62167219200LL) /* 0000-01-01T00:00:00Z */
#define DATE_MAX 253402300799LL   /* 9999-12-31T23:59:59Z */

static void digits(char *p, int64_t v, int n)
{
    while (n-- > 0) {
        p[n] = (char)('0' + v % 10);
        v /= 10;
    }
}

int lr__az_date_format(time_t t, char out[LR_AZ_DATE_SIZE])
{
    static const char wdays[7][4] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
    static const char months[12][4] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                       "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    int64_t s = (int64_t)t;
    if (s < DATE_MIN || s > DATE_MAX)
        return -ERANGE;
    int64_t days = s / 86400;
    int64_t sod = s % 86400;
    if (sod < 0) {
        sod += 86400;
        days--;
    }
    int64_t wd = (days + 4) % 7; /* 1970-01-01 was a Thursday */
    if (wd < 0)
        wd += 7;
    /* Days to proleptic Gregorian date, in 400-year eras starting on March 1
     * so that the leap day is last (H. Hinnant, "chrono-Compatible Low-Level
     * Date Algorithms", civil_from_days). */
    int64_t z = days + 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    int64_t day = doy - (153 * mp + 2) / 5 + 1;
    int64_t mon = mp < 10 ? mp + 3 : mp - 9;
    int64_t year = yoe + era * 400 + (mon <= 2);

    /* "Sun, 23 Nov 2025 08:00:00 GMT" */
    memcpy(out, wdays[wd], 3);
    memcpy(out + 3, ", ", 2);
    digits(out + 5, day, 2);
    out[7] = ' ';
    memcpy(out + 8, months[mon - 1], 3);
    out[11] = ' ';
    digits(out + 12, year, 4);
    out[16] = ' ';
    digits(out + 17, sod / 3600, 2);
    out[19] = ':';
    digits(out + 20, sod / 60 % 60, 2);
    out[22] = ':';
    digits(out + 23, sod % 60, 2);
    memcpy(out + 25, " GMT", 5); /* with the NUL */
    return LR_AZ_DATE_LEN;
}

void lr__az_date_cache_init(struct lr__az_date_cache *c)
{
    memset(c, 0, sizeof(*c));
}

const char *lr__az_date_cache_get(struct lr__az_date_cache *c, time_t now)
{
    if (c->valid && c->second == now)
        return c->text;
    if (lr__az_date_format(now, c->text) < 0) {
        c->valid = false;
        return NULL;
    }
    c->second = now;
    c->valid = true;
    return c->text;
}

/* ---- connection string ---- */

struct seg {
    const char *p;
    size_t n;
};

static bool is_trim(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static struct seg trim(const char *p, size_t n)
{
    while (n && is_trim(*p)) {
        p++;
        n--;
    }
    while (n && is_trim(p[n - 1]))
        n--;
    return (struct seg){p, n};
}

static int copy_seg(char *dst, size_t cap, struct seg v)
{
    if (v.n >= cap)
        return -EINVAL;
    memcpy(dst, v.p, v.n);
    dst[v.n] = '\0';
    return 0;
}

/* Host names: letters, digits, '-', '.', and '_' (seen in private DNS). */
static bool host_ok(const char *h, size_t n)
{
    if (n == 0 || n > LR_AZ_HOST_MAX)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!is_alnum(h[i]) && h[i] != '-' && h[i] != '.' && h[i] != '_')
            return false;
    return true;
}

static bool ipv6_ok(const char *h, size_t n)
{
    if (n == 0 || n > LR_AZ_HOST_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = lower(h[i]);
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || c == ':' || c == '.'))
            return false;
    }
    return true;
}

/* RFC 3986 pchar plus '/': what the endpoint's base path may hold as is. */
static bool path_ok(const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!is_unreserved(p[i]) && !strchr("!$&'()*+,;=:@%/", p[i]))
            return false;
    return true;
}

/* Split c->endpoint ("scheme://host[:port][/path]", no trailing '/'). */
static int split_endpoint(struct lr__az_conn *c)
{
    const char *e = c->endpoint;
    const char *sep = strstr(e, "://");
    if (!sep)
        return -EINVAL;
    size_t slen = (size_t)(sep - e);
    if (eq_ci(e, slen, "https")) {
        c->tls = true;
        c->port = 443;
    } else if (eq_ci(e, slen, "http")) {
        c->port = 80;
    } else {
        return -EINVAL;
    }
    memcpy(c->scheme, c->tls ? "https" : "http", c->tls ? 6 : 5);
    const char *auth = sep + 3;
    const char *path = strchr(auth, '/');
    if (!path)
        path = auth + strlen(auth);
    const char *hend = path;
    const char *portp = NULL;
    if (*auth == '[') {
        const char *rb = memchr(auth, ']', (size_t)(path - auth));
        if (!rb || !ipv6_ok(auth + 1, (size_t)(rb - auth - 1)))
            return -EINVAL;
        if (rb + 1 < path) {
            if (rb[1] != ':')
                return -EINVAL;
            portp = rb + 2;
        }
        memcpy(c->host, auth + 1, (size_t)(rb - auth - 1));
        c->host[rb - auth - 1] = '\0';
    } else {
        const char *colon = memchr(auth, ':', (size_t)(path - auth));
        if (colon) {
            hend = colon;
            portp = colon + 1;
        }
        /* host_ok also refuses userinfo ('@'), '?' and '#'. */
        if (!host_ok(auth, (size_t)(hend - auth)))
            return -EINVAL;
        memcpy(c->host, auth, (size_t)(hend - auth));
        c->host[hend - auth] = '\0';
    }
    if (portp) {
        if (portp == path || path - portp > 5)
            return -EINVAL;
        unsigned long port = 0;
        for (const char *d = portp; d < path; d++) {
            if (*d < '0' || *d > '9')
                return -EINVAL;
            port = port * 10 + (unsigned long)(*d - '0');
        }
        if (port == 0 || port > 65535)
            return -EINVAL;
        c->port = (uint16_t)port;
    }
    size_t plen = strlen(path);
    if (!path_ok(path, plen))
        return -EINVAL;
    return copy_seg(c->base_path, sizeof(c->base_path), (struct seg){path, plen});
}

enum {
    K_PROTO,
    K_ACCOUNT,
    K_KEY,
    K_ENDPOINT,
    K_SAS,
    K_SUFFIX,
    K_DEV,
    K_COUNT,
};

static const char *const conn_keys[K_COUNT] = {
    [K_PROTO] = "DefaultEndpointsProtocol",
    [K_ACCOUNT] = "AccountName",
    [K_KEY] = "AccountKey",
    [K_ENDPOINT] = "BlobEndpoint",
    [K_SAS] = "SharedAccessSignature",
    [K_SUFFIX] = "EndpointSuffix",
    [K_DEV] = "UseDevelopmentStorage",
};

/* Split "k=v;k=v;" into the known keys' values; the rest are ignored. */
static int split_settings(const char *s, struct seg *val, unsigned *nsettings)
{
    const char *p = s;
    const char *end = s + strlen(s);
    while (end > p && (end[-1] == ';' || is_trim(end[-1])))
        end--;
    if (end == p)
        return -EINVAL;
    for (;;) {
        const char *semi = memchr(p, ';', (size_t)(end - p));
        const char *send = semi ? semi : end;
        struct seg sg = trim(p, (size_t)(send - p));
        const char *eq = memchr(sg.p, '=', sg.n);
        if (!eq)
            return -EINVAL; /* also the empty segment of ";;" */
        struct seg k = trim(sg.p, (size_t)(eq - sg.p));
        struct seg v = trim(eq + 1, (size_t)(sg.p + sg.n - eq - 1));
        if (k.n == 0 || v.n == 0)
            return -EINVAL;
        for (int i = 0; i < K_COUNT; i++) {
            if (eq_ci(k.p, k.n, conn_keys[i])) {
                if (val[i].p)
                    return -EINVAL;
                val[i] = v;
            }
        }
        (*nsettings)++;
        if (!semi)
            return 0;
        p = semi + 1;
    }
}

static int parse_settings(struct lr__az_conn *c, const char *s)
{
    struct seg val[K_COUNT] = {{NULL, 0}};
    unsigned nsettings = 0;
    int rc = split_settings(s, val, &nsettings);
    if (rc < 0)
        return rc;
    if (val[K_DEV].p) {
        /* Only "UseDevelopmentStorage=true", alone: a proxy URI or account
         * settings next to it would be silently ignored otherwise. */
        if (!eq_ci(val[K_DEV].p, val[K_DEV].n, "true") || nsettings != 1)
            return -EINVAL;
        memcpy(c->account, DEV_ACCOUNT, sizeof(DEV_ACCOUNT));
        memcpy(c->key, DEV_KEY, sizeof(DEV_KEY));
        memcpy(c->endpoint, DEV_ENDPOINT, sizeof(DEV_ENDPOINT));
        c->dev_storage = true;
        return split_endpoint(c);
    }
    bool tls = true;
    if (val[K_PROTO].p) {
        if (eq_ci(val[K_PROTO].p, val[K_PROTO].n, "http"))
            tls = false;
        else if (!eq_ci(val[K_PROTO].p, val[K_PROTO].n, "https"))
            return -EINVAL;
    }
    if (val[K_ACCOUNT].p) {
        if (!account_ok(val[K_ACCOUNT].p, val[K_ACCOUNT].n))
            return -EINVAL;
        copy_seg(c->account, sizeof(c->account), val[K_ACCOUNT]);
    }
    if (val[K_KEY].p) {
        if (!val[K_ACCOUNT].p || val[K_KEY].n > LR_AZ_KEY_B64_MAX ||
            b64_decoded_len(val[K_KEY].p, val[K_KEY].n) <= 0)
            return -EINVAL;
        copy_seg(c->key, sizeof(c->key), val[K_KEY]);
    }
    if (val[K_SAS].p) {
        struct seg sas = val[K_SAS];
        if (sas.p[0] == '?') {
            sas.p++;
            sas.n--;
        }
        if (sas.n == 0)
            return -EINVAL;
        for (size_t i = 0; i < sas.n; i++)
            if (is_ctl(sas.p[i]) || is_space(sas.p[i]) || sas.p[i] == '#')
                return -EINVAL;
        if (copy_seg(c->sas, sizeof(c->sas), sas) < 0)
            return -EINVAL;
    }
    if (!c->key[0] && !c->sas[0])
        return -EINVAL;
    if (val[K_ENDPOINT].p) {
        struct seg ep = val[K_ENDPOINT];
        while (ep.n && ep.p[ep.n - 1] == '/')
            ep.n--;
        rc = copy_seg(c->endpoint, sizeof(c->endpoint), ep);
        if (rc < 0)
            return rc;
    } else {
        /* <protocol>://<account>.blob.<EndpointSuffix> */
        struct seg sfx =
            val[K_SUFFIX].p ? val[K_SUFFIX] : (struct seg){DEFAULT_SUFFIX, strlen(DEFAULT_SUFFIX)};
        if (!c->account[0] || !host_ok(sfx.p, sfx.n))
            return -EINVAL;
        struct out o = {c->endpoint, sizeof(c->endpoint), 0};
        put(&o, tls ? "https://" : "http://", tls ? 8 : 7);
        put(&o, c->account, strlen(c->account));
        put(&o, ".blob.", 6);
        put(&o, sfx.p, sfx.n);
        if (finish_string(&o) < 0)
            return -EINVAL;
    }
    return split_endpoint(c);
}

int lr__az_conn_parse(struct lr__az_conn *c, const char *s)
{
    if (!c)
        return -EINVAL;
    memset(c, 0, sizeof(*c));
    if (!s)
        return -EINVAL;
    int rc = parse_settings(c, s);
    if (rc < 0)
        explicit_bzero(c, sizeof(*c));
    return rc;
}

void lr__az_conn_deinit(struct lr__az_conn *c)
{
    if (c)
        explicit_bzero(c, sizeof(*c));
}

/* ---- request paths ---- */

static bool container_ok(const char *s)
{
    size_t n = strnlen(s, 64);
    if (n == 0 || n > 63)
        return false;
    for (size_t i = 0; i < n; i++) {
        char ch = s[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '-' ||
              (ch == '$' && i == 0)))
            return false;
    }
    return true;
}

static int put_path(struct out *o, const struct lr__az_conn *c, const char *container,
                    const char *blob)
{
    static const char hex[] = "0123456789ABCDEF";
    if (!c || !container || !container_ok(container))
        return -EINVAL;
    put(o, c->base_path, strlen(c->base_path));
    put_c(o, '/');
    put(o, container, strlen(container));
    if (!blob)
        return 0;
    size_t n = strnlen(blob, 1025);
    if (n == 0 || n > 1024)
        return -EINVAL;
    put_c(o, '/');
    /* Percent-encode all but unreserved and '/': the path we send is the
     * path we sign, so one encoding serves both. */
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)blob[i];
        if (is_unreserved((char)ch) || ch == '/') {
            put_c(o, (char)ch);
        } else {
            char pct[3] = {'%', hex[ch >> 4], hex[ch & 15]};
            put(o, pct, 3);
        }
    }
    return 0;
}

int lr__az_conn_blob_path(const struct lr__az_conn *c, const char *container, const char *blob,
                          char *out, size_t cap)
{
    if (!out && cap)
        return -EINVAL;
    struct out o = {out, cap, 0};
    int rc = put_path(&o, c, container, blob);
    return rc < 0 ? rc : finish_string(&o);
}

int lr__az_conn_blob_resource(const struct lr__az_conn *c, const char *container, const char *blob,
                              char *out, size_t cap)
{
    if (!c || !c->account[0] || (!out && cap))
        return -EINVAL;
    struct out o = {out, cap, 0};
    put_c(&o, '/');
    put(&o, c->account, strlen(c->account));
    int rc = put_path(&o, c, container, blob);
    return rc < 0 ? rc : finish_string(&o);
}
