/* SPDX-License-Identifier: MIT */
/*
 * test_cosmossign.c - Cosmos DB master-key authorization, known answers.
 *
 * How each expected value was obtained:
 * - doc_example: Microsoft's "Access control in the Azure Cosmos DB SQL API"
 *   page, table "Example Encoding" (verb GET, type "dbs", link
 *   "dbs/ToDoList", date "Thu, 27 Apr 2017 00:51:12 GMT", the key DOC_KEY,
 *   output "type%3dmaster%26ver%3d1.0%26sig%3dc09PEVJrgp2uQRkr934kFbTqhByc7TVr3OHyqlu%2bc%2bc%3d").
 *   The page prints lowercase hex escapes (.NET HttpUtility.UrlEncode); we
 *   send uppercase (RFC 3986 2.1: escapes are case-insensitive), so the test
 *   compares with the escapes' hex digits uppercased and nothing else.
 *   Cross-checked at authoring time with python3 hmac/base64 over
 *   "get\ndbs\ndbs/ToDoList\nthu, 27 apr 2017 00:51:12 gmt\n\n".
 * - post_vector: python3 -c hmac.new(bytes(range(64)), sts, sha256) and
 *   `printf '<sts>' | openssl dgst -sha256 -mac HMAC -macopt hexkey:000102..3f
 *   -binary | base64`, both giving POST_SIG; urllib.parse.quote(token,
 *   safe='') for the header value.
 * - put_keeps_link_case and empty_link: python3 hmac/base64 as above (put
 *   also with openssl, DOC_KEY's bytes as hexkey).
 */
#include <ctype.h>
#include <errno.h>
#include <string.h>

#include "cosmossign_int.h"
#include "harness.h"

#define DOC_KEY                                                                                    \
    "dsZQi3KtZmCv1ljt3VNWNm7sQUF1y5rJfC6kv5JiwvW0EndXdDku/dkKBp8/ufDToSxLzR4y+O/0H/t4bQtVNw=="
#define DOC_DATE "Thu, 27 Apr 2017 00:51:12 GMT"
#define DOC_OUT                                                                                    \
    "type%3dmaster%26ver%3d1.0%26sig%3dc09PEVJrgp2uQRkr934kFbTqhByc7TVr3OHyqlu%2bc%2bc%3d"
/* base64 of the bytes 0..63 */
#define SEQ_KEY                                                                                    \
    "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUmJygpKissLS4vMDEyMzQ1Njc4OTo7PD0+Pw=="

#define CHECK_STREQ(a, b)                                                                          \
    do {                                                                                           \
        const char *lrt_sa = (a), *lrt_sb = (b);                                                   \
        if (strcmp(lrt_sa, lrt_sb)) {                                                              \
            fprintf(stderr, "%s:%d: CHECK_STREQ failed:\n  got  \"%s\"\n  want \"%s\"\n",          \
                    __FILE__, __LINE__, lrt_sa, lrt_sb);                                           \
            lrt_failed_checks++;                                                                   \
            return;                                                                                \
        }                                                                                          \
    } while (0)

/* @s with the two hex digits after every '%' uppercased. */
static void upper_escapes(char *s)
{
    for (; *s; s++)
        if (*s == '%' && s[1] && s[2]) {
            s[1] = (char)toupper((unsigned char)s[1]);
            s[2] = (char)toupper((unsigned char)s[2]);
            s += 2;
        }
}

TEST(doc_example)
{
    struct lr__cosmos_key k;
    char out[LR_COSMOS_AUTH_SIZE], want[] = DOC_OUT;
    upper_escapes(want);
    CHECK_OK(lr__cosmos_key_init(&k, DOC_KEY));
    CHECK_EQ(lr__cosmos_auth(&k, "GET", "dbs", "dbs/ToDoList", DOC_DATE, out, sizeof(out)),
             (int)strlen(want));
    CHECK_STREQ(out, want);
    /* Same answer from the x-ms-date helper (2017-04-27T00:51:12Z). */
    char date[LR_AZ_DATE_SIZE];
    CHECK_EQ(lr__az_date_format(1493254272, date), LR_AZ_DATE_LEN);
    CHECK_STREQ(date, DOC_DATE);
    CHECK(lr__cosmos_auth(&k, "get", "DBS", "dbs/ToDoList", date, out, sizeof(out)) > 0);
    CHECK_STREQ(out, want);
    lr__cosmos_key_deinit(&k);
}

TEST(string_to_sign_layout)
{
    char sts[LR_COSMOS_STS_MAX];
    static const char want[] = "get\ndbs\ndbs/ToDoList\nthu, 27 apr 2017 00:51:12 gmt\n\n";
    int n = lr__cosmos_sts_build("GET", "dbs", "dbs/ToDoList", DOC_DATE, sts, sizeof(sts));
    CHECK_EQ(n, (int)sizeof(want) - 1);
    CHECK(memcmp(sts, want, sizeof(want) - 1) == 0);
}

TEST(post_vector)
{
    struct lr__cosmos_key k;
    char out[LR_COSMOS_AUTH_SIZE];
    CHECK_OK(lr__cosmos_key_init(&k, SEQ_KEY));
    CHECK(lr__cosmos_auth(&k, "POST", "docs", "dbs/leasering/colls/leases",
                          "Tue, 01 Nov 1994 08:12:31 GMT", out, sizeof(out)) > 0);
    CHECK_STREQ(
        out, "type%3Dmaster%26ver%3D1.0%26sig%3D1px0v9uZj5ajW1KfsQkQ8MZmCD65pYGM%2BYelYtruKrc%3D");
    lr__cosmos_key_deinit(&k);
}

TEST(put_keeps_link_case)
{
    struct lr__cosmos_key k;
    char out[LR_COSMOS_AUTH_SIZE], other[LR_COSMOS_AUTH_SIZE];
    const char *date = "Mon, 30 Nov 2026 09:00:00 GMT";
    CHECK_OK(lr__cosmos_key_init(&k, DOC_KEY));
    CHECK(lr__cosmos_auth(&k, "PUT", "docs", "dbs/leasering/colls/leases/docs/Job-7", date, out,
                          sizeof(out)) > 0);
    CHECK_STREQ(out,
                "type%3Dmaster%26ver%3D1.0%26sig%3DnQrFIBBh0lK86wqkpqLYcR6z1ku2ZukzbQCHuW90jME%3D");
    CHECK(lr__cosmos_auth(&k, "PUT", "docs", "dbs/leasering/colls/leases/docs/job-7", date, other,
                          sizeof(other)) > 0);
    CHECK(strcmp(out, other) != 0);
    lr__cosmos_key_deinit(&k);
}

TEST(empty_link)
{
    struct lr__cosmos_key k;
    char out[LR_COSMOS_AUTH_SIZE];
    CHECK_OK(lr__cosmos_key_init(&k, DOC_KEY));
    CHECK(lr__cosmos_auth(&k, "GET", "dbs", "", DOC_DATE, out, sizeof(out)) > 0);
    CHECK_STREQ(out,
                "type%3Dmaster%26ver%3D1.0%26sig%3DoMt68ghyVEcS70kOZOWyTYEgUkWNd441wEjKJu6kvcA%3D");
    lr__cosmos_key_deinit(&k);
}

TEST(enospc_at_every_short_size)
{
    struct lr__cosmos_key k;
    char out[LR_COSMOS_AUTH_SIZE], sts[LR_COSMOS_STS_MAX];
    CHECK_OK(lr__cosmos_key_init(&k, DOC_KEY));
    int full = lr__cosmos_auth(&k, "GET", "dbs", "dbs/ToDoList", DOC_DATE, out, sizeof(out));
    CHECK(full > 0);
    for (int cap = 0; cap <= full; cap++) {
        char small[LR_COSMOS_AUTH_SIZE];
        memset(small, 'x', sizeof(small));
        CHECK_ERR(lr__cosmos_auth(&k, "GET", "dbs", "dbs/ToDoList", DOC_DATE, small, (size_t)cap),
                  -ENOSPC);
        if (cap > 0)
            CHECK_EQ(small[0], '\0');
    }
    int n = lr__cosmos_sts_build("GET", "dbs", "dbs/ToDoList", DOC_DATE, sts, sizeof(sts));
    CHECK(n > 0);
    for (int cap = 0; cap < n; cap++)
        CHECK_ERR(lr__cosmos_sts_build("GET", "dbs", "dbs/ToDoList", DOC_DATE, sts, (size_t)cap),
                  -ENOSPC);
    lr__cosmos_key_deinit(&k);
}

TEST(bad_keys_are_einval)
{
    static const char *const bad[] = {"", "abc", "ab=c", "a b=", "====", "Zg=", "Z!==", NULL};
    struct lr__cosmos_key k;
    for (size_t i = 0; bad[i]; i++) {
        CHECK_ERR(lr__cosmos_key_init(&k, bad[i]), -EINVAL);
        CHECK(!k.az.keyed);
    }
    CHECK_ERR(lr__cosmos_key_init(&k, NULL), -EINVAL);
    CHECK_ERR(lr__cosmos_key_init(NULL, DOC_KEY), -EINVAL);
    /* Not keyed: auth refuses. */
    char out[LR_COSMOS_AUTH_SIZE];
    CHECK_ERR(lr__cosmos_auth(&k, "GET", "dbs", "", DOC_DATE, out, sizeof(out)), -EINVAL);
    /* An account-less key cannot make an Azure Storage SharedKey header. */
    CHECK_OK(lr__cosmos_key_init(&k, DOC_KEY));
    char sig[LR_AZ_SIG_SIZE] = "c09PEVJrgp2uQRkr934kFbTqhByc7TVr3OHyqlu+c+c=";
    char az[LR_AZ_AUTH_SIZE];
    CHECK_ERR(lr__az_auth_format(&k.az, sig, az, sizeof(az)), -EINVAL);
    lr__cosmos_key_deinit(&k);
    lr__cosmos_key_deinit(&k);
    const unsigned char *p = (const unsigned char *)&k;
    for (size_t j = 0; j < sizeof(k); j++)
        CHECK_EQ(p[j], 0);
}

TEST(malformed_input_is_einval)
{
    char sts[LR_COSMOS_STS_MAX];
    static char longlink[LR_COSMOS_LINK_MAX + 2];
    memset(longlink, 'a', sizeof(longlink) - 1);
#define BAD(v, t, l, d) CHECK_ERR(lr__cosmos_sts_build(v, t, l, d, sts, sizeof(sts)), -EINVAL)
    BAD(NULL, "dbs", "", DOC_DATE);
    BAD("", "dbs", "", DOC_DATE);
    BAD("G ET", "dbs", "", DOC_DATE);
    BAD("OPTIONSX", "dbs", "", DOC_DATE);
    BAD("GET", NULL, "", DOC_DATE);
    BAD("GET", "", "", DOC_DATE);
    BAD("GET", "d/s", "", DOC_DATE);
    BAD("GET", "dbs", NULL, DOC_DATE);
    BAD("GET", "dbs", "/dbs/x", DOC_DATE);
    BAD("GET", "dbs", "dbs/x\ny", DOC_DATE);
    BAD("GET", "dbs", longlink, DOC_DATE);
    BAD("GET", "dbs", "dbs/x", NULL);
    BAD("GET", "dbs", "dbs/x", "Thu, 27 Apr 2017");
    BAD("GET", "dbs", "dbs/x", "Thu, 27 Apr 2017 00:51:12 GMT ");
    BAD("GET", "dbs", "dbs/x", "Thu, 27 Apr 2017 00:51:12\nGMT");
#undef BAD
    /* The longest link fits the documented bound. */
    longlink[LR_COSMOS_LINK_MAX] = '\0';
    CHECK(lr__cosmos_sts_build("DELETE", "attachments", longlink, DOC_DATE, sts, sizeof(sts)) > 0);
}

TESTS(T(doc_example), T(string_to_sign_layout), T(post_vector), T(put_keeps_link_case),
      T(empty_link), T(enospc_at_every_short_size), T(bad_keys_are_einval),
      T(malformed_input_is_einval))
