/* SPDX-License-Identifier: MIT */
/*
 * cosmossign.c - Cosmos DB master-key authorization (see cosmossign_int.h).
 * The HMAC key and base64 come from azsign.c; this file only builds the
 * Cosmos string-to-sign and percent-encodes the token. Every input is
 * checked before the first byte is written.
 */
#include <errno.h>
#include <string.h>

#include "cosmossign_int.h"

static bool is_letter(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static char lower(char c)
{
    return (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
}

/* 1..max letters. */
static bool word_ok(const char *s, size_t max)
{
    size_t n = s ? strnlen(s, max + 1) : 0;
    if (n == 0 || n > max)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!is_letter(s[i]))
            return false;
    return true;
}

/* No control byte (a CR or LF would forge a line of the string-to-sign). */
static bool text_ok(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
            return false;
    return true;
}

int lr__cosmos_key_init(struct lr__cosmos_key *k, const char *key_b64)
{
    if (!k)
        return -EINVAL;
    return lr__az_key_init_bare(&k->az, key_b64);
}

void lr__cosmos_key_deinit(struct lr__cosmos_key *k)
{
    if (k)
        lr__az_key_deinit(&k->az);
}

int lr__cosmos_sts_build(const char *verb, const char *type, const char *link, const char *date,
                         char *buf, size_t cap)
{
    if (!word_ok(verb, LR_COSMOS_VERB_MAX) || !word_ok(type, LR_COSMOS_TYPE_MAX) || !link ||
        !date || (!buf && cap))
        return -EINVAL;
    size_t vlen = strlen(verb), tlen = strlen(type);
    size_t llen = strnlen(link, LR_COSMOS_LINK_MAX + 1);
    size_t dlen = strnlen(date, LR_AZ_DATE_LEN + 1);
    if (llen > LR_COSMOS_LINK_MAX || (llen && link[0] == '/') || !text_ok(link, llen) ||
        dlen != LR_AZ_DATE_LEN || !text_ok(date, dlen))
        return -EINVAL;
    size_t n = vlen + tlen + llen + dlen + 5;
    if (n > cap)
        return -ENOSPC;
    char *p = buf;
    for (size_t i = 0; i < vlen; i++)
        *p++ = lower(verb[i]);
    *p++ = '\n';
    for (size_t i = 0; i < tlen; i++)
        *p++ = lower(type[i]);
    *p++ = '\n';
    memcpy(p, link, llen); /* case kept: ids are case-sensitive */
    p += llen;
    *p++ = '\n';
    for (size_t i = 0; i < dlen; i++)
        *p++ = lower(date[i]);
    *p++ = '\n';
    *p++ = '\n'; /* the documented trailing empty field */
    return (int)n;
}

static bool unreserved(char c)
{
    return is_letter(c) || (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' || c == '~';
}

int lr__cosmos_auth(struct lr__cosmos_key *k, const char *verb, const char *type, const char *link,
                    const char *date, char *out, size_t cap)
{
    if (!k || !k->az.keyed || (!out && cap))
        return -EINVAL;
    char sts[LR_COSMOS_STS_MAX];
    int n = lr__cosmos_sts_build(verb, type, link, date, sts, sizeof(sts));
    if (n < 0)
        return n;
    char sig[LR_AZ_SIG_SIZE];
    int rc = lr__az_sign_bytes(&k->az, sts, (size_t)n, sig);
    if (rc < 0)
        return rc;
    static const char hex[] = "0123456789ABCDEF";
    static const char prefix[] = "type=master&ver=1.0&sig=";
    char tok[sizeof(prefix) - 1 + LR_AZ_SIG_LEN + 1];
    memcpy(tok, prefix, sizeof(prefix) - 1);
    memcpy(tok + sizeof(prefix) - 1, sig, LR_AZ_SIG_SIZE);
    size_t o = 0;
    for (const char *s = tok; *s; s++) {
        size_t need = unreserved(*s) ? 1 : 3;
        if (o + need + 1 > cap) {
            if (cap)
                out[0] = '\0';
            return -ENOSPC;
        }
        if (need == 1) {
            out[o++] = *s;
        } else {
            out[o++] = '%';
            out[o++] = hex[(unsigned char)*s >> 4];
            out[o++] = hex[(unsigned char)*s & 15];
        }
    }
    out[o] = '\0';
    return (int)o;
}
