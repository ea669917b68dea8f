/* SPDX-License-Identifier: MIT */
/*
 * test_azsign.c - Shared Key signing, x-ms-date formatting and connection
 * string parsing. The signatures below were computed independently with
 * Python's hmac/base64 (and the TECH-NOTES d) vector also with
 * `openssl dgst -sha256 -mac HMAC`); each string-to-sign is also compared
 * byte for byte so a canonicalization bug shows where it is.
 */
#include <errno.h>
#include <time.h>

#include "azsign_int.h"
#include "harness.h"

#define DEV_KEY                                                                                    \
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
/* base64 of the bytes 0..63 */
#define SEQ_KEY                                                                                    \
    "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUmJygpKissLS4vMDEyMzQ1Njc4OTo7PD0+Pw=="
#define DATE "Sun, 23 Nov 2025 08:00:00 GMT"
#define KAT_SIG "ssQqXCmx/HrZVLT7tkb7+Lm0jBgo5YdqujFrXT+LN4A="
#define KAT_STS                                                                                    \
    "PUT\n\n\n\n\n\n\n\n\n\n\n\nx-ms-date:" DATE "\nx-ms-lease-action:acquire\n"                   \
    "x-ms-lease-duration:15\nx-ms-proposed-lease-id:3f2504e0-4f89-41d3-9a0c-0305e82c3301\n"        \
    "x-ms-version:2021-12-02\n/devstoreaccount1/devstoreaccount1/leases/job-42\ncomp:lease"

#define CHECK_STREQ(a, b)                                                                          \
    do {                                                                                           \
        const char *lrt_sa = (a), *lrt_sb = (b);                                                   \
        if (!lrt_sa || !lrt_sb || strcmp(lrt_sa, lrt_sb)) {                                        \
            fprintf(stderr, "%s:%d: CHECK_STREQ(%s, %s) failed:\n  \"%s\"\n  \"%s\"\n", __FILE__,  \
                    __LINE__, #a, #b, lrt_sa ? lrt_sa : "(null)", lrt_sb ? lrt_sb : "(null)");     \
            lrt_failed_checks++;                                                                   \
            return;                                                                                \
        }                                                                                          \
    } while (0)

/* @buf[0..len) equals the literal @lit (no NUL in buf). */
#define CHECK_MEM(buf, len, lit)                                                                   \
    do {                                                                                           \
        int lrt_len = (len);                                                                       \
        if (lrt_len != (int)(sizeof(lit) - 1) || memcmp((buf), (lit), sizeof(lit) - 1)) {          \
            fprintf(stderr, "%s:%d: CHECK_MEM failed:\n  got  \"%.*s\"\n  want \"%s\"\n",          \
                    __FILE__, __LINE__, lrt_len < 0 ? 0 : lrt_len, (buf), (lit));                  \
            lrt_failed_checks++;                                                                   \
            return;                                                                                \
        }                                                                                          \
    } while (0)

static char scratch[4096];

/* The TECH-NOTES request, headers scrambled and in mixed case. */
static const struct lr__az_pair kat_headers[] = {
    {LR_AZ_LIT("X-MS-Version"), LR_AZ_LIT("2021-12-02")},
    {LR_AZ_LIT("x-ms-Proposed-Lease-Id"), LR_AZ_LIT("3f2504e0-4f89-41d3-9a0c-0305e82c3301")},
    {LR_AZ_LIT("x-ms-lease-duration"), LR_AZ_LIT("15")},
    {LR_AZ_LIT("X-Ms-Date"), LR_AZ_LIT(DATE)},
    {LR_AZ_LIT("x-ms-LEASE-action"), LR_AZ_LIT("acquire")},
};
static const struct lr__az_pair comp_lease[] = {{LR_AZ_LIT("comp"), LR_AZ_LIT("lease")}};

static struct lr__az_request kat_request(void)
{
    struct lr__az_request r = {
        .verb = "PUT",
        .headers = kat_headers,
        .nheaders = 5,
        .resource = LR_AZ_LIT("/devstoreaccount1/devstoreaccount1/leases/job-42"),
        .query = comp_lease,
        .nquery = 1,
    };
    return r;
}

TEST(kat_vector_reproduces)
{
    struct lr__az_key k;
    char sig[LR_AZ_SIG_SIZE];
    struct lr__az_request r = kat_request();
    CHECK_OK(lr__az_key_init(&k, "devstoreaccount1", DEV_KEY));
    int n = lr__az_sign(&k, &r, scratch, sizeof(scratch), sig);
    CHECK_MEM(scratch, n, KAT_STS);
    CHECK_STREQ(sig, KAT_SIG);
    char auth[LR_AZ_AUTH_SIZE];
    CHECK_EQ(lr__az_auth_format(&k, sig, auth, sizeof(auth)), 10 + 16 + 1 + 44);
    CHECK_STREQ(auth, "SharedKey devstoreaccount1:" KAT_SIG);
    /* Byte-exact fit, one short, and nothing. */
    CHECK_EQ(lr__az_auth_format(&k, sig, auth, 72), 71);
    CHECK_ERR(lr__az_auth_format(&k, sig, auth, 71), -ENOBUFS);
    CHECK_STREQ(auth, "");
    CHECK_ERR(lr__az_auth_format(&k, sig, NULL, 0), -ENOBUFS);
    CHECK_ERR(lr__az_auth_format(&k, "short", auth, sizeof(auth)), -EINVAL);
    lr__az_key_deinit(&k);
}

TEST(keyed_hmac_is_reused)
{
    struct lr__az_key k;
    char a[LR_AZ_SIG_SIZE], b[LR_AZ_SIG_SIZE], c[LR_AZ_SIG_SIZE];
    struct lr__az_request r = kat_request();
    CHECK_OK(lr__az_key_init(&k, "devstoreaccount1", DEV_KEY));
    CHECK(lr__az_sign(&k, &r, scratch, sizeof(scratch), a) > 0);
    CHECK(lr__az_sign(&k, &r, scratch, sizeof(scratch), b) > 0);
    CHECK_STREQ(a, KAT_SIG);
    CHECK_STREQ(b, KAT_SIG);
    /* Arbitrary bytes in between, then the vector again. */
    CHECK_OK(lr__az_sign_bytes(&k, "Jefe", 4, c));
    CHECK_OK(lr__az_sign_bytes(&k, NULL, 0, c));
    CHECK_ERR(lr__az_sign_bytes(&k, NULL, 1, c), -EINVAL);
    for (int i = 0; i < 1000; i++)
        CHECK(lr__az_sign(&k, &r, scratch, sizeof(scratch), c) > 0);
    CHECK_STREQ(c, KAT_SIG);
    /* Signing the string-to-sign directly gives the same answer. */
    CHECK_OK(lr__az_sign_bytes(&k, KAT_STS, sizeof(KAT_STS) - 1, c));
    CHECK_STREQ(c, KAT_SIG);
    lr__az_key_deinit(&k);
}

TEST(date_changes_signature)
{
    struct lr__az_key k;
    char sig[LR_AZ_SIG_SIZE];
    struct lr__az_pair h[5];
    memcpy(h, kat_headers, sizeof(h));
    h[3].value = (struct lr__az_str)LR_AZ_LIT("Sun, 23 Nov 2025 08:00:01 GMT");
    struct lr__az_request r = kat_request();
    r.headers = h;
    CHECK_OK(lr__az_key_init(&k, "devstoreaccount1", DEV_KEY));
    CHECK(lr__az_sign(&k, &r, scratch, sizeof(scratch), sig) > 0);
    CHECK(strcmp(sig, KAT_SIG) != 0);
    CHECK_STREQ(sig, "Y/ZalD4aLSzj5bNHmaM9Ig1CaXSUKvKohkT4m0Yfiqc=");
    lr__az_key_deinit(&k);
}

/* A Put Blob with standard headers, folded whitespace and both lengths. */
static const struct lr__az_pair put_headers[] = {
    {LR_AZ_LIT("x-ms-version"), LR_AZ_LIT("2021-12-02")},
    {LR_AZ_LIT("x-ms-meta-Owner"), LR_AZ_LIT("  node   A \t here \t")},
    {LR_AZ_LIT("x-ms-date"), LR_AZ_LIT(DATE)},
    {LR_AZ_LIT("x-ms-blob-type"), LR_AZ_LIT("BlockBlob")},
};

static struct lr__az_request put_request(uint64_t len)
{
    struct lr__az_request r = {
        .verb = "PUT",
        .content_length = len,
        .content_type = LR_AZ_LIT("text/plain; charset=UTF-8"),
        .if_match = LR_AZ_LIT("\"0x8DB\""),
        .headers = put_headers,
        .nheaders = 4,
        .resource = LR_AZ_LIT("/myacct/leases/job-42"),
    };
    return r;
}

TEST(content_length_zero_is_empty)
{
    struct lr__az_key k;
    char sig[LR_AZ_SIG_SIZE];
    CHECK_OK(lr__az_key_init(&k, "myacct", SEQ_KEY));
    struct lr__az_request r = put_request(15);
    int n = lr__az_sign(&k, &r, scratch, sizeof(scratch), sig);
    CHECK_MEM(scratch, n,
              "PUT\n\n\n15\n\ntext/plain; charset=UTF-8\n\n\n\"0x8DB\"\n\n\n\n"
              "x-ms-blob-type:BlockBlob\nx-ms-date:" DATE "\nx-ms-meta-owner:node A here\n"
              "x-ms-version:2021-12-02\n/myacct/leases/job-42");
    CHECK_STREQ(sig, "Ha0W0FUfPWMkQXiRqgvi/AhzZpwjA4nrcDf6XbYH2Z4=");
    r = put_request(0);
    n = lr__az_sign(&k, &r, scratch, sizeof(scratch), sig);
    CHECK_MEM(scratch, n,
              "PUT\n\n\n\n\ntext/plain; charset=UTF-8\n\n\n\"0x8DB\"\n\n\n\n"
              "x-ms-blob-type:BlockBlob\nx-ms-date:" DATE "\nx-ms-meta-owner:node A here\n"
              "x-ms-version:2021-12-02\n/myacct/leases/job-42");
    CHECK_STREQ(sig, "9O/0rD7EyTl7zYUUwd4RTqzJOwF6JxsDITwUnJk84R4=");
    /* The largest length still formats. */
    r = put_request(UINT64_MAX);
    n = lr__az_sts_build(&r, scratch, sizeof(scratch));
    CHECK(n > 0);
    CHECK(memcmp(scratch, "PUT\n\n\n18446744073709551615\n\n", 28) == 0);
    lr__az_key_deinit(&k);
}

TEST(query_sorted_with_repeated_name)
{
    static const struct lr__az_pair h[] = {
        {LR_AZ_LIT("x-ms-version"), LR_AZ_LIT("2021-12-02")},
        {LR_AZ_LIT("x-ms-date"), LR_AZ_LIT(DATE)},
    };
    static const struct lr__az_pair q[] = {
        {LR_AZ_LIT("timeout"), LR_AZ_LIT("20")},
        {LR_AZ_LIT("Include"), LR_AZ_LIT("snapshots")},
        {LR_AZ_LIT("restype"), LR_AZ_LIT("container")},
        {LR_AZ_LIT("include"), LR_AZ_LIT("metadata")},
        {LR_AZ_LIT("COMP"), LR_AZ_LIT("list")},
    };
    struct lr__az_request r = {
        .verb = "GET",
        .headers = h,
        .nheaders = 2,
        .resource = LR_AZ_LIT("/devstoreaccount1/devstoreaccount1/leases"),
        .query = q,
        .nquery = 5,
    };
    struct lr__az_key k;
    char sig[LR_AZ_SIG_SIZE];
    CHECK_OK(lr__az_key_init(&k, "devstoreaccount1", DEV_KEY));
    int n = lr__az_sign(&k, &r, scratch, sizeof(scratch), sig);
    CHECK_MEM(scratch, n,
              "GET\n\n\n\n\n\n\n\n\n\n\n\nx-ms-date:" DATE "\nx-ms-version:2021-12-02\n"
              "/devstoreaccount1/devstoreaccount1/leases\ncomp:list\ninclude:metadata,snapshots\n"
              "restype:container\ntimeout:20");
    CHECK_STREQ(sig, "49mu4mQchFyFdGShpfQNMStVlp1NN8qPzfJqGFJgiGE=");
    lr__az_key_deinit(&k);
}

TEST(header_whitespace_folding)
{
    struct lr__az_pair h[] = {
        {LR_AZ_LIT("x-ms-b"), LR_AZ_LIT("\t x  \t y\tz ")},
        {LR_AZ_LIT("x-ms-a"), LR_AZ_LIT("   ")},
        {LR_AZ_LIT("x-ms-a-b"), LR_AZ_LIT("one")},
        {LR_AZ_LIT("x-ms-c"), {NULL, 0}},
    };
    struct lr__az_request r = {
        .verb = "HEAD",
        .headers = h,
        .nheaders = 4,
        .resource = LR_AZ_LIT("/a/c/b"),
    };
    /* Bytewise order after lowercasing: '-' (0x2d) sorts before letters. */
    int n = lr__az_sts_build(&r, scratch, sizeof(scratch));
    CHECK_MEM(scratch, n,
              "HEAD\n\n\n\n\n\n\n\n\n\n\n\nx-ms-a:\nx-ms-a-b:one\nx-ms-b:x y z\nx-ms-c:\n/a/c/b");
}

TEST(enobufs_at_every_short_size)
{
    struct lr__az_key k;
    char sig[LR_AZ_SIG_SIZE] = "untouched";
    struct lr__az_request r = kat_request();
    CHECK_OK(lr__az_key_init(&k, "devstoreaccount1", DEV_KEY));
    int need = lr__az_sts_build(&r, NULL, 0);
    CHECK_ERR(need, -ENOBUFS);
    need = (int)sizeof(KAT_STS) - 1;
    for (int cap = 0; cap < need; cap++) {
        /* Exactly @cap bytes on the heap, so ASan sees any overrun. */
        char *buf = malloc(cap ? (size_t)cap : 1);
        CHECK(buf);
        int rc = lr__az_sign(&k, &r, cap ? buf : NULL, (size_t)cap, sig);
        free(buf);
        CHECK_ERR(rc, -ENOBUFS);
        CHECK_STREQ(sig, "untouched");
    }
    char *buf = malloc((size_t)need);
    CHECK(buf);
    int rc = lr__az_sign(&k, &r, buf, (size_t)need, sig);
    free(buf);
    CHECK_EQ(rc, need);
    CHECK_STREQ(sig, KAT_SIG);
    lr__az_key_deinit(&k);
}

TEST(e2big_beyond_limits)
{
    static char names[LR_AZ_MAX_HEADERS + 1][16];
    struct lr__az_pair h[LR_AZ_MAX_HEADERS + 1];
    struct lr__az_pair q[LR_AZ_MAX_QUERY + 1];
    for (int i = 0; i <= LR_AZ_MAX_HEADERS; i++) {
        snprintf(names[i], sizeof(names[i]), "x-ms-h%02d", LR_AZ_MAX_HEADERS - i);
        h[i] = (struct lr__az_pair){lr__az_str_of(names[i]), LR_AZ_LIT("v")};
        q[i] = (struct lr__az_pair){LR_AZ_LIT("p"), lr__az_str_of(names[i] + 5)};
    }
    struct lr__az_request r = {
        .verb = "GET",
        .headers = h,
        .nheaders = LR_AZ_MAX_HEADERS,
        .resource = LR_AZ_LIT("/a/c"),
        .query = q,
        .nquery = LR_AZ_MAX_QUERY,
    };
    int n = lr__az_sts_build(&r, scratch, sizeof(scratch));
    CHECK(n > 0);
    /* 32 sorted headers, then one parameter with 32 sorted values. */
    CHECK(memcmp(scratch + 12 + 3, "x-ms-h01:v\nx-ms-h02:v\n", 22) == 0);
    static const char tail[] = "x-ms-h32:v\n/a/c\np:h01,h02,";
    CHECK(memmem(scratch, (size_t)n, tail, sizeof(tail) - 1) != NULL);
    static const char end[] = ",h31,h32";
    CHECK(memcmp(scratch + n - (int)sizeof(end) + 1, end, sizeof(end) - 1) == 0);
    r.nheaders = LR_AZ_MAX_HEADERS + 1;
    CHECK_ERR(lr__az_sts_build(&r, scratch, sizeof(scratch)), -E2BIG);
    r.nheaders = LR_AZ_MAX_HEADERS;
    r.nquery = LR_AZ_MAX_QUERY + 1;
    CHECK_ERR(lr__az_sts_build(&r, scratch, sizeof(scratch)), -E2BIG);
}

TEST(malformed_requests_are_einval)
{
    struct lr__az_request r = kat_request();
    struct lr__az_pair h[5];
    memcpy(h, kat_headers, sizeof(h));
    r.headers = h;
    CHECK_ERR(lr__az_sts_build(NULL, scratch, sizeof(scratch)), -EINVAL);
    r.verb = "put";
    CHECK_ERR(lr__az_sts_build(&r, scratch, sizeof(scratch)), -EINVAL);
    r.verb = "";
    CHECK_ERR(lr__az_sts_build(&r, scratch, sizeof(scratch)), -EINVAL);
    r.verb = "PUT";
    /* A name repeated in another case. */
    h[1].name = (struct lr__az_str)LR_AZ_LIT("x-ms-DATE");
    CHECK_ERR(lr__az_sts_build(&r, scratch, sizeof(scratch)), -EINVAL);
    h[1].name = (struct lr__az_str)LR_AZ_LIT("Content-Type");
    CHECK_ERR(lr__az_sts_build(&r, scratch, sizeof(scratch)), -EINVAL);
    h[1].name = (struct lr__az_str)LR_AZ_LIT("x-ms-");
    CHECK_ERR(lr__az_sts_build(&r, scratch, sizeof(scratch)), -EINVAL);
    h[1].name = (struct lr__az_str)LR_AZ_LIT("x-ms-a:b");
    CHECK_ERR(lr__az_sts_build(&r, scratch, sizeof(scratch)), -EINVAL);
    h[1] = kat_headers[1];
    h[2].value = (struct lr__az_str)LR_AZ_LIT("15\r\nx-ms-lease-id:evil");
    CHECK_ERR(lr__az_sts_build(&r, scratch, sizeof(scratch)), -EINVAL);
    h[2].value = (struct lr__az_str){NULL, 3};
    CHECK_ERR(lr__az_sts_build(&r, scratch, sizeof(scratch)), -EINVAL);
    h[2] = kat_headers[2];
    r.if_match = (struct lr__az_str)LR_AZ_LIT("\"x\"\n");
    CHECK_ERR(lr__az_sts_build(&r, scratch, sizeof(scratch)), -EINVAL);
    r.if_match = (struct lr__az_str){NULL, 0};
    r.resource = (struct lr__az_str)LR_AZ_LIT("devstoreaccount1/leases");
    CHECK_ERR(lr__az_sts_build(&r, scratch, sizeof(scratch)), -EINVAL);
    r.resource = (struct lr__az_str){NULL, 0};
    CHECK_ERR(lr__az_sts_build(&r, scratch, sizeof(scratch)), -EINVAL);
    r = kat_request();
    struct lr__az_pair q[] = {{LR_AZ_LIT(""), LR_AZ_LIT("x")}};
    r.query = q;
    CHECK_ERR(lr__az_sts_build(&r, scratch, sizeof(scratch)), -EINVAL);
    r.query = NULL;
    CHECK_ERR(lr__az_sts_build(&r, scratch, sizeof(scratch)), -EINVAL);
    r.nquery = 0;
    CHECK(lr__az_sts_build(&r, scratch, sizeof(scratch)) > 0);
}

TEST(bad_keys_are_einval)
{
    struct lr__az_key k;
    static const char *const bad[] = {
        "",         "abc",  "Zm9vYg", "Zm9vYg=", "@@@@", "Zm9v YmFy",
        "Zm8=Zm8=", "Z===", "=Zm9",   "Zm9v\n",  "Zm-_", /* url-safe alphabet is not the account
                                                            key's */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        CHECK_ERR(lr__az_key_init(&k, "acct", bad[i]), -EINVAL);
        /* Failed init leaves nothing to free; deinit is still harmless. */
        CHECK(!k.keyed);
        lr__az_key_deinit(&k);
    }
    char longkey[LR_AZ_KEY_B64_MAX + 5];
    memset(longkey, 'A', sizeof(longkey) - 1);
    longkey[sizeof(longkey) - 1] = '\0';
    CHECK_ERR(lr__az_key_init(&k, "acct", longkey), -EINVAL);
    longkey[LR_AZ_KEY_B64_MAX] = '\0';
    CHECK_OK(lr__az_key_init(&k, "acct", longkey));
    lr__az_key_deinit(&k);
    CHECK_ERR(lr__az_key_init(&k, "", DEV_KEY), -EINVAL);
    CHECK_ERR(lr__az_key_init(&k, "a:b", DEV_KEY), -EINVAL);
    CHECK_ERR(lr__az_key_init(&k, "a/b", DEV_KEY), -EINVAL);
    CHECK_ERR(lr__az_key_init(&k, NULL, DEV_KEY), -EINVAL);
    CHECK_ERR(lr__az_key_init(&k, "acct", NULL), -EINVAL);
    CHECK_ERR(lr__az_key_init(NULL, "acct", DEV_KEY), -EINVAL);
    /* Short keys and padded keys are fine. */
    CHECK_OK(lr__az_key_init(&k, "acct", "Zg=="));
    lr__az_key_deinit(&k);
}

TEST(deinit_wipes_and_disarms)
{
    struct lr__az_key k;
    char sig[LR_AZ_SIG_SIZE];
    struct lr__az_request r = kat_request();
    CHECK_OK(lr__az_key_init(&k, "devstoreaccount1", DEV_KEY));
    lr__az_key_deinit(&k);
    const unsigned char *p = (const unsigned char *)&k;
    for (size_t i = 0; i < sizeof(k); i++)
        CHECK_EQ(p[i], 0);
    CHECK_ERR(lr__az_sign(&k, &r, scratch, sizeof(scratch), sig), -EINVAL);
    CHECK_ERR(lr__az_sign_bytes(&k, "x", 1, sig), -EINVAL);
    CHECK_ERR(lr__az_auth_format(&k, KAT_SIG, scratch, sizeof(scratch)), -EINVAL);
    lr__az_key_deinit(&k); /* twice is harmless */
    /* Re-init after deinit works. */
    CHECK_OK(lr__az_key_init(&k, "devstoreaccount1", DEV_KEY));
    CHECK(lr__az_sign(&k, &r, scratch, sizeof(scratch), sig) > 0);
    CHECK_STREQ(sig, KAT_SIG);
    lr__az_key_deinit(&k);
}

TEST(date_known_values)
{
    static const struct {
        long long t;
        const char *s;
    } v[] = {
        {0, "Thu, 01 Jan 1970 00:00:00 GMT"},
        {1763884800, "Sun, 23 Nov 2025 08:00:00 GMT"}, /* date -u -d @1763884800 */
        {951782400, "Tue, 29 Feb 2000 00:00:00 GMT"},
        {1234567890, "Fri, 13 Feb 2009 23:31:30 GMT"},
        {1700000000, "Tue, 14 Nov 2023 22:13:20 GMT"},
        {4102444799, "Thu, 31 Dec 2099 23:59:59 GMT"},
        {-1, "Wed, 31 Dec 1969 23:59:59 GMT"},
        {253402300799, "Fri, 31 Dec 9999 23:59:59 GMT"},
        {-62167219200, "Sat, 01 Jan 0000 00:00:00 GMT"},
    };
    char out[LR_AZ_DATE_SIZE];
    for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
        CHECK_EQ(lr__az_date_format((time_t)v[i].t, out), LR_AZ_DATE_LEN);
        CHECK_STREQ(out, v[i].s);
    }
    CHECK_ERR(lr__az_date_format((time_t)253402300800, out), -ERANGE);
    CHECK_ERR(lr__az_date_format((time_t)-62167219201, out), -ERANGE);
}

/* Against gmtime_r (C locale names) over 1901..2200, day and second edges. */
TEST(date_matches_gmtime)
{
    static const char wd[7][4] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
    static const char mo[12][4] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                   "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    char out[LR_AZ_DATE_SIZE], want[64];
    uint64_t x = 0x9e3779b97f4a7c15ull;
    for (long long t = -2177452800LL; t < 7258118400LL; t += 86399 + (long long)(x % 3)) {
        x = x * 6364136223846793005ull + 1442695040888963407ull;
        time_t tt = (time_t)t;
        struct tm tm;
        CHECK(gmtime_r(&tt, &tm));
        snprintf(want, sizeof(want), "%s, %02d %s %04d %02d:%02d:%02d GMT", wd[tm.tm_wday],
                 tm.tm_mday, mo[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
        CHECK_EQ(lr__az_date_format(tt, out), LR_AZ_DATE_LEN);
        CHECK_STREQ(out, want);
    }
}

TEST(date_cache_formats_once_per_second)
{
    struct lr__az_date_cache c;
    lr__az_date_cache_init(&c);
    const char *a = lr__az_date_cache_get(&c, (time_t)1763884800);
    CHECK_STREQ(a, DATE);
    /* Poison the cache: the same second must not reformat. */
    c.text[0] = 'X';
    const char *b = lr__az_date_cache_get(&c, (time_t)1763884800);
    CHECK(b == a);
    CHECK_STREQ(b, "Xun, 23 Nov 2025 08:00:00 GMT");
    /* A new second reformats, forwards and backwards. */
    CHECK_STREQ(lr__az_date_cache_get(&c, (time_t)1763884801), "Sun, 23 Nov 2025 08:00:01 GMT");
    c.text[0] = 'X';
    CHECK_STREQ(lr__az_date_cache_get(&c, (time_t)1763884800), DATE);
    CHECK(lr__az_date_cache_get(&c, (time_t)253402300800) == NULL);
    CHECK_STREQ(lr__az_date_cache_get(&c, (time_t)0), "Thu, 01 Jan 1970 00:00:00 GMT");
    /* Zero-initialised cache with now == 0 still formats. */
    lr__az_date_cache_init(&c);
    CHECK_STREQ(lr__az_date_cache_get(&c, (time_t)0), "Thu, 01 Jan 1970 00:00:00 GMT");
}

/* The Azurite string: parse, build the path and resource, sign: the KAT. */
TEST(conn_azurite_end_to_end)
{
    struct lr__az_conn c;
    CHECK_OK(lr__az_conn_parse(&c, "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;"
                                   "AccountKey=" DEV_KEY ";"
                                   "BlobEndpoint=http://127.0.0.1:10100/devstoreaccount1;"));
    CHECK_STREQ(c.account, "devstoreaccount1");
    CHECK_STREQ(c.key, DEV_KEY);
    CHECK_STREQ(c.sas, "");
    CHECK_STREQ(c.endpoint, "http://127.0.0.1:10100/devstoreaccount1");
    CHECK_STREQ(c.scheme, "http");
    CHECK_STREQ(c.host, "127.0.0.1");
    CHECK_EQ(c.port, 10100);
    CHECK_STREQ(c.base_path, "/devstoreaccount1");
    CHECK(!c.tls);
    CHECK(!c.dev_storage);
    char path[256], res[256];
    CHECK_EQ(lr__az_conn_blob_path(&c, "leases", "job-42", path, sizeof(path)), 31);
    CHECK_STREQ(path, "/devstoreaccount1/leases/job-42");
    int n = lr__az_conn_blob_resource(&c, "leases", "job-42", res, sizeof(res));
    CHECK_EQ(n, 48);
    CHECK_STREQ(res, "/devstoreaccount1/devstoreaccount1/leases/job-42");
    struct lr__az_key k;
    char sig[LR_AZ_SIG_SIZE];
    CHECK_OK(lr__az_key_init(&k, c.account, c.key));
    struct lr__az_request r = kat_request();
    r.resource = (struct lr__az_str){res, (size_t)n};
    CHECK(lr__az_sign(&k, &r, scratch, sizeof(scratch), sig) > 0);
    CHECK_STREQ(sig, KAT_SIG);
    lr__az_key_deinit(&k);
    /* Container path, encoding, names, and buffer limits. */
    CHECK_EQ(lr__az_conn_blob_path(&c, "leases", NULL, path, sizeof(path)), 24);
    CHECK_STREQ(path, "/devstoreaccount1/leases");
    CHECK(lr__az_conn_blob_path(&c, "leases", "a b/ü%.x~", path, sizeof(path)) > 0);
    CHECK_STREQ(path, "/devstoreaccount1/leases/a%20b/%C3%BC%25.x~");
    CHECK_EQ(lr__az_conn_blob_path(&c, "$root", "x", path, sizeof(path)), 25);
    CHECK_ERR(lr__az_conn_blob_path(&c, "Leases", "x", path, sizeof(path)), -EINVAL);
    CHECK_ERR(lr__az_conn_blob_path(&c, "", "x", path, sizeof(path)), -EINVAL);
    CHECK_ERR(lr__az_conn_blob_path(&c, "a/b", "x", path, sizeof(path)), -EINVAL);
    CHECK_ERR(lr__az_conn_blob_path(&c, "leases", "", path, sizeof(path)), -EINVAL);
    CHECK_ERR(lr__az_conn_blob_path(&c, "leases", "job-42", path, 31), -ENOBUFS);
    CHECK_STREQ(path, "");
    CHECK_EQ(lr__az_conn_blob_path(&c, "leases", "job-42", path, 32), 31);
    CHECK_ERR(lr__az_conn_blob_resource(&c, "leases", "job-42", res, 48), -ENOBUFS);
    lr__az_conn_deinit(&c);
    const unsigned char *p = (const unsigned char *)&c;
    for (size_t i = 0; i < sizeof(c); i++)
        CHECK_EQ(p[i], 0);
}

TEST(conn_development_storage)
{
    struct lr__az_conn c;
    static const char *const ok[] = {"UseDevelopmentStorage=true", "usedevelopmentstorage=TRUE;",
                                     "  UseDevelopmentStorage = true ;; "};
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        CHECK_OK(lr__az_conn_parse(&c, ok[i]));
        CHECK(c.dev_storage);
        CHECK_STREQ(c.account, "devstoreaccount1");
        CHECK_STREQ(c.key, DEV_KEY);
        CHECK_STREQ(c.endpoint, "http://127.0.0.1:10000/devstoreaccount1");
        CHECK_STREQ(c.host, "127.0.0.1");
        CHECK_EQ(c.port, 10000);
        CHECK_STREQ(c.base_path, "/devstoreaccount1");
        CHECK(!c.tls);
        lr__az_conn_deinit(&c);
    }
    CHECK_ERR(lr__az_conn_parse(&c, "UseDevelopmentStorage=false"), -EINVAL);
    CHECK_ERR(lr__az_conn_parse(&c, "UseDevelopmentStorage=true;AccountName=x"), -EINVAL);
    CHECK_ERR(lr__az_conn_parse(&c, "UseDevelopmentStorage=true;"
                                    "DevelopmentStorageProxyUri=http://127.0.0.1"),
              -EINVAL);
}

TEST(conn_real_azure_derives_endpoint)
{
    struct lr__az_conn c;
    CHECK_OK(lr__az_conn_parse(&c, "DefaultEndpointsProtocol=https;AccountName=myacct;"
                                   "AccountKey=" SEQ_KEY ";EndpointSuffix=core.windows.net"));
    CHECK_STREQ(c.endpoint, "https://myacct.blob.core.windows.net");
    CHECK_STREQ(c.scheme, "https");
    CHECK_STREQ(c.host, "myacct.blob.core.windows.net");
    CHECK_EQ(c.port, 443);
    CHECK_STREQ(c.base_path, "");
    CHECK(c.tls);
    char res[128];
    CHECK(lr__az_conn_blob_resource(&c, "leases", "job-42", res, sizeof(res)) > 0);
    CHECK_STREQ(res, "/myacct/leases/job-42");
    CHECK(lr__az_conn_blob_path(&c, "leases", "job-42", res, sizeof(res)) > 0);
    CHECK_STREQ(res, "/leases/job-42");
    /* Defaults: https and core.windows.net; other services' keys ignored. */
    CHECK_OK(lr__az_conn_parse(&c, "AccountName=myacct;AccountKey=" SEQ_KEY
                                   ";QueueEndpoint=https://q.example;TableEndpoint=x"));
    CHECK_STREQ(c.endpoint, "https://myacct.blob.core.windows.net");
    CHECK_OK(lr__az_conn_parse(&c, "DefaultEndpointsProtocol=http;AccountName=myacct;"
                                   "AccountKey=" SEQ_KEY ";EndpointSuffix=core.chinacloudapi.cn"));
    CHECK_STREQ(c.endpoint, "http://myacct.blob.core.chinacloudapi.cn");
    CHECK_EQ(c.port, 80);
    CHECK(!c.tls);
    /* Explicit endpoints: port, trailing '/', IPv6, case of the scheme. */
    CHECK_OK(lr__az_conn_parse(&c, "AccountName=a;AccountKey=Zg==;"
                                   "BlobEndpoint=HTTPS://localhost:10101/devstoreaccount1/"));
    CHECK_STREQ(c.endpoint, "HTTPS://localhost:10101/devstoreaccount1");
    CHECK_STREQ(c.scheme, "https");
    CHECK_EQ(c.port, 10101);
    CHECK_STREQ(c.base_path, "/devstoreaccount1");
    CHECK_OK(lr__az_conn_parse(&c, "AccountName=a;AccountKey=Zg==;"
                                   "BlobEndpoint=http://[::1]:7/x/y"));
    CHECK_STREQ(c.host, "::1");
    CHECK_EQ(c.port, 7);
    CHECK_STREQ(c.base_path, "/x/y");
    CHECK_OK(lr__az_conn_parse(&c, "AccountName=a;AccountKey=Zg==;BlobEndpoint=http://h/"));
    CHECK_STREQ(c.base_path, "");
    CHECK_EQ(c.port, 80);
    lr__az_conn_deinit(&c);
}

TEST(conn_sas_only)
{
    struct lr__az_conn c;
    CHECK_OK(lr__az_conn_parse(&c, "BlobEndpoint=https://myacct.blob.core.windows.net/;"
                                   "SharedAccessSignature=?sv=2021-12-02&ss=b&srt=sco&sp=rwdlac"
                                   "&se=2026-01-01T00:00:00Z&sig=abc%2Bdef%3D"));
    CHECK_STREQ(c.sas, "sv=2021-12-02&ss=b&srt=sco&sp=rwdlac&se=2026-01-01T00:00:00Z"
                       "&sig=abc%2Bdef%3D");
    CHECK_STREQ(c.key, "");
    CHECK_STREQ(c.account, "");
    CHECK_STREQ(c.host, "myacct.blob.core.windows.net");
    char buf[64];
    CHECK(lr__az_conn_blob_path(&c, "leases", "j", buf, sizeof(buf)) > 0);
    CHECK_STREQ(buf, "/leases/j");
    /* No account: there is nothing to sign a Shared Key resource with. */
    CHECK_ERR(lr__az_conn_blob_resource(&c, "leases", "j", buf, sizeof(buf)), -EINVAL);
    /* With AccountName, the endpoint is derived; '=' inside values is kept. */
    CHECK_OK(lr__az_conn_parse(&c, "AccountName=myacct;SharedAccessSignature=sv=1&sig=a=="));
    CHECK_STREQ(c.sas, "sv=1&sig=a==");
    CHECK_STREQ(c.endpoint, "https://myacct.blob.core.windows.net");
    lr__az_conn_deinit(&c);
}

TEST(conn_keys_ignore_case)
{
    struct lr__az_conn c;
    CHECK_OK(lr__az_conn_parse(&c, "defaultendpointsprotocol=HTTP;ACCOUNTNAME=devstoreaccount1;"
                                   "accountKEY=" DEV_KEY ";blobendpoint=http://127.0.0.1:10000/"
                                   "devstoreaccount1"));
    CHECK_STREQ(c.account, "devstoreaccount1");
    CHECK_STREQ(c.key, DEV_KEY); /* its "==" survived the split at the first '=' */
    CHECK_EQ(c.port, 10000);
    CHECK(!c.tls);
    lr__az_conn_deinit(&c);
}

TEST(conn_malformed_is_einval)
{
    char longname[LR_AZ_ACCOUNT_MAX + 40];
    char longsas[LR_AZ_SAS_MAX + 64];
    char longkey[LR_AZ_KEY_B64_MAX + 64];
    char longep[LR_AZ_ENDPOINT_MAX + 64];
    snprintf(longname, sizeof(longname), "AccountName=%0*d;AccountKey=Zg==", LR_AZ_ACCOUNT_MAX + 1,
             7);
    memset(longsas, 0, sizeof(longsas));
    snprintf(longsas, sizeof(longsas), "AccountName=a;SharedAccessSignature=");
    memset(longsas + strlen(longsas), 's', LR_AZ_SAS_MAX + 1);
    memset(longkey, 0, sizeof(longkey));
    snprintf(longkey, sizeof(longkey), "AccountName=a;AccountKey=");
    memset(longkey + strlen(longkey), 'A', LR_AZ_KEY_B64_MAX + 4);
    memset(longep, 0, sizeof(longep));
    snprintf(longep, sizeof(longep), "AccountName=a;AccountKey=Zg==;BlobEndpoint=http://h/");
    memset(longep + strlen(longep), 'p', LR_AZ_ENDPOINT_MAX);
    const char *const bad[] = {
        "",
        " ; ;",
        "AccountName",                                 /* missing '=' */
        "AccountName=a;AccountKey",                    /* missing '=' */
        "=x;AccountName=a;AccountKey=Zg==",            /* empty key */
        " =x;AccountName=a;AccountKey=Zg==",           /* empty key */
        "AccountName=;AccountKey=Zg==",                /* empty value */
        "AccountName=a;;AccountKey=Zg==",              /* empty segment */
        "AccountName=a",                               /* no key material */
        "AccountName=a;BlobEndpoint=http://h",         /* no key material */
        "AccountKey=Zg==;BlobEndpoint=http://h",       /* key without account */
        "SharedAccessSignature=sv=1",                  /* no endpoint, no account */
        "AccountName=a;AccountName=b;AccountKey=Zg==", /* repeated */
        "AccountName=a;accountname=a;AccountKey=Zg==", /* repeated ignoring case */
        "AccountName=a;AccountKey=Zg=",                /* not base64 */
        "AccountName=a;AccountKey=abc",                /* not base64 */
        "AccountName=a b;AccountKey=Zg==",             /* bad account */
        "AccountName=a;AccountKey=Zg==;DefaultEndpointsProtocol=ftp",
        "AccountName=a;AccountKey=Zg==;BlobEndpoint=ftp://h",
        "AccountName=a;AccountKey=Zg==;BlobEndpoint=h:80",
        "AccountName=a;AccountKey=Zg==;BlobEndpoint=http://",
        "AccountName=a;AccountKey=Zg==;BlobEndpoint=http://h:0",
        "AccountName=a;AccountKey=Zg==;BlobEndpoint=http://h:65536",
        "AccountName=a;AccountKey=Zg==;BlobEndpoint=http://h:",
        "AccountName=a;AccountKey=Zg==;BlobEndpoint=http://h:8x",
        "AccountName=a;AccountKey=Zg==;BlobEndpoint=http://u@h",
        "AccountName=a;AccountKey=Zg==;BlobEndpoint=http://h/p?q=1",
        "AccountName=a;AccountKey=Zg==;BlobEndpoint=http://h/p#f",
        "AccountName=a;AccountKey=Zg==;BlobEndpoint=http://h/a b",
        "AccountName=a;AccountKey=Zg==;BlobEndpoint=http://[::1",
        "AccountName=a;AccountKey=Zg==;BlobEndpoint=http://[::1]x",
        "AccountName=a;AccountKey=Zg==;EndpointSuffix=bad/suffix",
        "AccountName=a;SharedAccessSignature=?",
        "AccountName=a;SharedAccessSignature=sv=1 &sig=x",
        "AccountName=a;AccountKey=Zg==\x01",
        longname, /* too long */
        longsas,
        longkey,
        longep,
    };
    struct lr__az_conn c;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        memset(&c, 0x5a, sizeof(c));
        int rc = lr__az_conn_parse(&c, bad[i]);
        if (rc != -EINVAL)
            fprintf(stderr, "case %zu: \"%.80s\"\n", i, bad[i]);
        CHECK_ERR(rc, -EINVAL);
        /* A failed parse leaves nothing behind, secrets included. */
        const unsigned char *p = (const unsigned char *)&c;
        for (size_t j = 0; j < sizeof(c); j++)
            CHECK_EQ(p[j], 0);
    }
    CHECK_ERR(lr__az_conn_parse(&c, NULL), -EINVAL);
    CHECK_ERR(lr__az_conn_parse(NULL, "UseDevelopmentStorage=true"), -EINVAL);
    /* The longest values that fit are fine. */
    snprintf(longname, sizeof(longname), "AccountName=%0*d;AccountKey=Zg==", LR_AZ_ACCOUNT_MAX, 7);
    CHECK_OK(lr__az_conn_parse(&c, longname));
    CHECK_EQ(strlen(c.account), LR_AZ_ACCOUNT_MAX);
    longsas[strlen(longsas) - 1] = '\0';
    CHECK_OK(lr__az_conn_parse(&c, longsas));
    CHECK_EQ(strlen(c.sas), LR_AZ_SAS_MAX);
    longkey[strlen(longkey) - 4] = '\0';
    CHECK_OK(lr__az_conn_parse(&c, longkey));
    CHECK_EQ(strlen(c.key), LR_AZ_KEY_B64_MAX);
    lr__az_conn_deinit(&c);
}

TESTS(T(kat_vector_reproduces), T(keyed_hmac_is_reused), T(date_changes_signature),
      T(content_length_zero_is_empty), T(query_sorted_with_repeated_name),
      T(header_whitespace_folding), T(enobufs_at_every_short_size), T(e2big_beyond_limits),
      T(malformed_requests_are_einval), T(bad_keys_are_einval), T(deinit_wipes_and_disarms),
      T(date_known_values), T(date_matches_gmtime), T(date_cache_formats_once_per_second),
      T(conn_azurite_end_to_end), T(conn_development_storage), T(conn_real_azure_derives_endpoint),
      T(conn_sas_only), T(conn_keys_ignore_case), T(conn_malformed_is_einval))
