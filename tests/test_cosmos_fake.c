/* SPDX-License-Identifier: MIT */
/*
 * test_cosmos_fake.c - the Cosmos DB backend against a fake server
 * (fake_cosmos.h), through the public API, for what the emulator
 * (@vercel/cosmosdb-server) cannot show: it checks no signature and never
 * throttles.
 *
 *  - Authorization: every request's header is recomputed by python3 (hmac,
 *    hashlib, base64, urllib.parse: independent of src/cosmossign.c) from the
 *    verb, the path (resource type and link) and x-ms-date it carried, and
 *    must equal it, percent-encoded; x-ms-version is sent; x-ms-date is
 *    RFC 1123 and fresh; the key appears in no request, no log line and no
 *    error text.
 *  - 429 with x-ms-retry-after-ms: retried no sooner than asked, and the
 *    acquire / renewal succeeds; a retry-after beyond the lease's validity:
 *    no request after valid_until, lost no later than valid_until, never
 *    renewed after it. 449 and 503: retried, then success.
 *  - 401 / 403: LR_EAUTH, a handful of requests (no retry storm); 404 on a
 *    create: a definite error whose text names the container.
 *  - malformed answers: a body that is not JSON, one cut short, one over the
 *    bound, a 2xx without etag: clear errors, no crash (see the ASan build).
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <leasering.h>
#include "fake_cosmos.h"
#include "harness.h"
#include "proc.h"
#include "recorder.h"

/* The public key of Microsoft's emulator: it has '/', '+' and '='. */
#define KEY                                                                                        \
    "C2y6yDjf5/R+ob0N8A7Cgv30VRDJIWEHLM+4QDU5DE2nQ9nDuVTqobD4b8mGGyPMbIZnqyMsEcaGQy67XIw/Jw=="
#define KEY_PCT                                                                                    \
    "C2y6yDjf5%2FR%2Bob0N8A7Cgv30VRDJIWEHLM%2B4QDU5DE2nQ9nDuVTqobD4b8mGGyPMbIZnqyMsEcaGQy67XIw%2F" \
    "Jw%3D%3D"
#define CONTAINER "dbs/leasedb/colls/leases"

/* Checks one request's Authorization header. argv: verb, path, x-ms-date,
 * key, the header as sent. Prints "ok" or what it wanted. */
static const char verify_py[] =
    "import sys, hmac, hashlib, base64, urllib.parse\n"
    "verb, path, date, key, got = sys.argv[1:6]\n"
    "parts = path.split('?')[0].strip('/').split('/')\n"
    "if len(parts) % 2:\n"
    "    rtype, link = parts[-1], '/'.join(parts[:-1])\n"
    "else:\n"
    "    rtype, link = parts[-2], '/'.join(parts)\n"
    "link = urllib.parse.unquote(link)\n"
    "sts = verb.lower() + '\\n' + rtype.lower() + '\\n' + link + '\\n' + date.lower() + '\\n\\n'\n"
    "mac = hmac.new(base64.b64decode(key), sts.encode(), hashlib.sha256).digest()\n"
    "want = urllib.parse.quote('type=master&ver=1.0&sig=' + base64.b64encode(mac).decode(), "
    "safe='')\n"
    "print('ok' if got.lower() == want.lower() else 'want ' + want + ' got ' + got)\n";

static struct fake_cosmos fk;
static char logged[1 << 16];
static size_t logged_len;

static void log_sink(void *arg, int level, const char *msg)
{
    (void)arg;
    (void)level;
    int n = snprintf(logged + logged_len, sizeof(logged) - logged_len, "%s\n", msg);
    if (n > 0 && (size_t)n < sizeof(logged) - logged_len)
        logged_len += (size_t)n;
}

static struct lr_manager *mgr_ttl(uint32_t ttl_ms)
{
    char uri[512];
    snprintf(uri, sizeof(uri), "cosmos://%s@127.0.0.1:%d/leasedb/leases?tls=no", KEY_PCT,
             fk.port);
    struct lr_manager_opts o = {.ttl_ms = ttl_ms, .cbs = &rec_cbs, .request_timeout_ms = 400};
    struct lr_manager *m = NULL;
    int rc = lr_manager_new(&m, loop, uri, &o);
    if (rc < 0)
        fprintf(stderr, "lr_manager_new: %s\n", lr_strerror(rc));
    return rc == 0 ? m : NULL;
}

/* A manager with leases of @ttl_ms, and lease @l named @name being
 * acquired (timeout @timeout_ms). NULL on failure (said on stderr). */
static struct lr_manager *start_acquire(uint32_t ttl_ms, struct lr_lease *l, const char *name,
                                        uint32_t timeout_ms)
{
    struct lr_manager *m = mgr_ttl(ttl_ms);
    if (!m)
        return NULL;
    int rc = lr_lease_init(m, l, name, NULL);
    if (rc == 0 && (rc = lr_lease_acquire(l, timeout_ms)) < 0)
        lr_lease_deinit(l);
    if (rc < 0) {
        fprintf(stderr, "acquire %s: %s\n", name, lr_strerror(rc));
        close_mgr(m);
        return NULL;
    }
    return m;
}

static bool setup(void)
{
    rec_setup();
    logged_len = 0;
    logged[0] = '\0';
    lr_set_log(log_sink, NULL);
    lr_set_log_level(LR_LOG_DEBUG);
    return fc_start(&fk) == 0;
}

static void teardown(struct lr_manager *m, struct lr_lease *l)
{
    if (l)
        lr_lease_deinit(l);
    if (m)
        close_mgr(m);
    fc_stop(&fk);
    lr_set_log(NULL, NULL);
    lr_set_log_level(LR_LOG_INFO);
}

static uint64_t ms_of(uint64_t ns)
{
    return ns / 1000000u;
}

/* The key, in either spelling, inside @s? */
static bool has_key(const char *s)
{
    return strstr(s, KEY) || strstr(s, KEY_PCT) || strstr(s, "C2y6yDjf5");
}

/* Request @r's Authorization checked by python3 against @key. */
static int verify_auth_key(const struct fc_request *r, const char *key)
{
    char date[64], auth[256], out[1024];
    if (fc_header(r->head, "x-ms-date", date, sizeof(date)) < 0 ||
        fc_header(r->head, "Authorization", auth, sizeof(auth)) < 0) {
        fprintf(stderr, "no x-ms-date or Authorization in:\n%s\n", r->head);
        return -1;
    }
    const char *argv[] = {"python3", "-c", verify_py, r->method, r->path, date, key, auth, NULL};
    int rc = run_capture(argv, NULL, out, sizeof(out), 10000);
    if (rc == -ENOENT)
        fprintf(stderr, "python3 not found: apt-get install python3\n");
    if (rc != 0 || strncmp(out, "ok", 2)) {
        fprintf(stderr, "%s %s: %s (rc %d)\n", r->method, r->path, out, rc);
        return -1;
    }
    return 0;
}

static int verify_auth(const struct fc_request *r)
{
    return verify_auth_key(r, KEY);
}

/* x-ms-date is RFC 1123 ("Tue, 01 Nov 1994 08:12:31 GMT") and within 5 s of now. */
static int date_fresh(const struct fc_request *r)
{
    char date[64];
    struct tm tm = {0};
    if (fc_header(r->head, "x-ms-date", date, sizeof(date)) != 29)
        return -1;
    const char *end = strptime(date, "%a, %d %b %Y %H:%M:%S GMT", &tm);
    if (!end || *end)
        return -1;
    long skew = (long)(timegm(&tm) - time(NULL));
    return skew >= -5 && skew <= 5 ? 0 : -1;
}

TEST(authorization_header_is_the_master_key_signature)
{
    CHECK(setup());
    struct lr_lease l;
    struct lr_manager *m = start_acquire(1500, &l, "job-1", 3000);
    CHECK(m);
    run_until(EV_ACQ, 3000);
    CHECK_EQ(rec_count(EV_ACQ, &l), 1);
    run_until(EV_RENEW, 3000);
    CHECK(rec_count(EV_RENEW, &l) >= 1);
    CHECK_OK(lr_lease_release(&l));
    run_until(EV_REL, 3000);
    CHECK_EQ(rec_count(EV_REL, &l), 1);
    int n = fc_count(&fk, NULL);
    CHECK(n >= 3); /* create, replace (renew), replace (release) */
    bool saw_post = false, saw_put = false;
    for (int i = 0; i < n; i++) {
        struct fc_request r;
        CHECK_OK(fc_request(&fk, i, &r));
        char v[64];
        CHECK_OK(verify_auth(&r));
        CHECK(fc_header(r.head, "x-ms-version", v, sizeof(v)) > 0);
        CHECK_OK(date_fresh(&r));
        CHECK(!has_key(r.head) && !has_key(r.body));
        saw_post |= !strcmp(r.method, "POST") && !strcmp(r.path, "/" CONTAINER "/docs");
        saw_put |= !strcmp(r.method, "PUT") && !strcmp(r.path, "/" CONTAINER "/docs/job-1");
    }
    CHECK(saw_post && saw_put);
    CHECK(!has_key(logged));
    teardown(m, &l);
}

/* The checker itself: it gives Microsoft's documented example ("Access
 * control in the Azure Cosmos DB SQL API", "Example Encoding"; lowercase
 * escapes there), and it rejects a wrong signature. */
TEST(the_signature_checker_passes_the_documented_example_only)
{
    static const char doc_key[] = "dsZQi3KtZmCv1ljt3VNWNm7sQUF1y5rJfC6kv5JiwvW0EndXdDku/dkKBp8/"
                                  "ufDToSxLzR4y+O/0H/t4bQtVNw==";
    struct fc_request r = {.method = "GET", .path = "/dbs/ToDoList"};
    snprintf(r.head, sizeof(r.head),
             "GET /dbs/ToDoList HTTP/1.1\r\nx-ms-date: Thu, 27 Apr 2017 00:51:12 GMT\r\n"
             "Authorization: type%%3dmaster%%26ver%%3d1.0%%26sig%%3dc09PEVJrgp2uQRkr934kFbTqhByc7"
             "TVr3OHyqlu%%2bc%%2bc%%3d\r\n\r\n");
    CHECK_OK(verify_auth_key(&r, doc_key));
    snprintf(r.head, sizeof(r.head),
             "GET /dbs/ToDoList HTTP/1.1\r\nx-ms-date: Thu, 27 Apr 2017 00:51:12 GMT\r\n"
             "Authorization: type=master&ver=1.0&sig=c09PEVJrgp2uQRkr934kFbTqhByc7"
             "TVr3OHyqlu+c+c=\r\n\r\n"); /* right signature, not percent-encoded */
    CHECK(verify_auth_key(&r, doc_key) < 0);
    snprintf(r.head, sizeof(r.head),
             "GET /dbs/ToDoList HTTP/1.1\r\nx-ms-date: Thu, 27 Apr 2017 00:51:12 GMT\r\n"
             "Authorization: type%%3Dmaster%%26ver%%3D1.0%%26sig%%3DAAAA\r\n\r\n");
    CHECK(verify_auth_key(&r, doc_key) < 0);
}

static struct fc_rule rule(const char *method, int status, const char *headers, const char *body,
                           int times)
{
    return (struct fc_rule){.method = method, .status = status, .headers = headers,
                            .body = body, .times = times};
}

/* The n-th (0-based) request with @method, or NULL. */
static bool nth(const char *method, int k, struct fc_request *out)
{
    int n = fc_count(&fk, NULL);
    for (int i = 0; i < n; i++) {
        if (fc_request(&fk, i, out) == 0 && !strcmp(out->method, method) && k-- == 0)
            return true;
    }
    return false;
}

static const char throttled[] = "{\"code\":\"429\",\"message\":\"Request rate is large\"}";

TEST(throttled_429_waits_retry_after_then_succeeds)
{
    CHECK(setup());
    struct fc_rule r = rule("POST", 429, "x-ms-retry-after-ms: 300\r\n", throttled, 1);
    CHECK_OK(fc_script(&fk, &r));
    r = rule("PUT", 429, "x-ms-retry-after-ms: 250\r\n", throttled, 1);
    CHECK_OK(fc_script(&fk, &r));
    struct lr_lease l;
    struct lr_manager *m = start_acquire(3000, &l, "job-2", 5000);
    CHECK(m);
    run_until(EV_ACQ, 5000);
    CHECK_EQ(rec_count(EV_ACQ, &l), 1);
    struct fc_request a, b;
    CHECK(nth("POST", 0, &a) && nth("POST", 1, &b));
    printf("     create retried after %.3f ms (asked 300)\n", (double)(b.at_ns - a.at_ns) / 1e6);
    CHECK(b.at_ns - a.at_ns >= 300000000u);
    CHECK_OK(lr_lease_renew(&l));
    run_until(EV_RENEW, 3000);
    CHECK_EQ(rec_count(EV_RENEW, &l), 1);
    CHECK(nth("PUT", 0, &a) && nth("PUT", 1, &b));
    printf("     replace retried after %.3f ms (asked 250)\n", (double)(b.at_ns - a.at_ns) / 1e6);
    CHECK(b.at_ns - a.at_ns >= 250000000u);
    CHECK_EQ(rec_count(EV_LOST, &l), 0);
    teardown(m, &l);
}

TEST(throttled_beyond_validity_is_lost_at_valid_until)
{
    CHECK(setup());
    struct lr_lease l;
    struct lr_manager *m = start_acquire(1500, &l, "job-3", 3000);
    CHECK(m);
    run_until(EV_ACQ, 3000);
    CHECK_EQ(rec_count(EV_ACQ, &l), 1);
    /* From now on every replace is throttled for 5 s: longer than the lease. */
    struct fc_rule r = rule("PUT", 429, "x-ms-retry-after-ms: 5000\r\n", throttled, -1);
    CHECK_OK(fc_script(&fk, &r));
    uint64_t vu = lr_lease_valid_until(&l);
    nev = 0;
    run_until(EV_LOST, 4000);
    const struct rec *lost = rec_first(EV_LOST, &l);
    CHECK(lost);
    printf("     lost %+lld ms from valid_until (%s), %d replaces sent\n",
           (long long)ms_of(lost->at_ns) - (long long)vu, lr_err_name(lost->status),
           fc_count(&fk, "PUT"));
    CHECK(ms_of(lost->at_ns) <= vu);
    CHECK_EQ(rec_count(EV_RENEW, &l), 0);
    int n = fc_count(&fk, NULL);
    for (int i = 0; i < n; i++) {
        struct fc_request q;
        CHECK_OK(fc_request(&fk, i, &q));
        CHECK(ms_of(q.at_ns) <= vu); /* nothing retried past validity */
    }
    /* The backend gives the step up at once (the wait does not fit), and
     * the 429 holds every new request of the client until the time it
     * asked for: the lease core's retries of the renewal wait behind it, so
     * the server sees the one throttled replace, not a retry storm. */
    CHECK(fc_count(&fk, "PUT") <= 2);
    /* And nothing later either. */
    int before = fc_count(&fk, "PUT");
    run_until(0, 1000);
    CHECK_EQ(fc_count(&fk, "PUT"), before);
    teardown(m, &l);
}

TEST(retry_with_449_and_unavailable_503_are_retried)
{
    CHECK(setup());
    struct fc_rule r = rule("POST", 449, NULL, "{\"code\":\"RetryWith\"}", 1);
    CHECK_OK(fc_script(&fk, &r));
    r = rule("POST", 503, NULL, "{\"code\":\"ServiceUnavailable\"}", 1);
    CHECK_OK(fc_script(&fk, &r));
    r = rule("PUT", 503, NULL, "{\"code\":\"ServiceUnavailable\"}", 1);
    CHECK_OK(fc_script(&fk, &r));
    r = rule("PUT", 449, NULL, "{\"code\":\"RetryWith\"}", 1);
    CHECK_OK(fc_script(&fk, &r));
    struct lr_lease l;
    struct lr_manager *m = start_acquire(3000, &l, "job-4", 5000);
    CHECK(m);
    run_until(EV_ACQ, 5000);
    CHECK_EQ(rec_count(EV_ACQ, &l), 1);
    CHECK_EQ(fc_count(&fk, "POST"), 3);
    CHECK_OK(lr_lease_renew(&l));
    run_until(EV_RENEW, 3000);
    CHECK_EQ(rec_count(EV_RENEW, &l), 1);
    CHECK_EQ(fc_count(&fk, "PUT"), 3);
    teardown(m, &l);
}

/* @status on every create: LR_EAUTH, a handful of requests, no key in texts. */
static void refused(int status)
{
    CHECK(setup());
    struct fc_rule r = rule(NULL, status, NULL,
                            "{\"code\":\"Unauthorized\",\"message\":\"The input authorization "
                            "token can't serve the request.\"}",
                            -1);
    CHECK_OK(fc_script(&fk, &r));
    struct lr_lease l;
    struct lr_manager *m = start_acquire(3000, &l, "job-5", 3000);
    CHECK(m);
    run_until(EV_ACQFAIL, 4000);
    const struct rec *f = rec_first(EV_ACQFAIL, &l);
    CHECK(f);
    CHECK_ERR(f->status, LR_EAUTH);
    char text[512] = "";
    lr_manager_last_error(m, text, sizeof(text));
    printf("     %d: %s after %d requests; last error \"%s\"\n", status, lr_err_name(f->status),
           fc_count(&fk, NULL), text);
    CHECK(fc_count(&fk, NULL) <= 3);
    run_until(0, 500); /* and no storm afterwards */
    CHECK(fc_count(&fk, NULL) <= 3);
    CHECK(!has_key(text) && !has_key(logged));
    teardown(m, &l);
}

TEST(unauthorized_401_is_definite)
{
    refused(401);
}

TEST(forbidden_403_is_definite)
{
    refused(403);
}

TEST(create_404_names_the_container)
{
    CHECK(setup());
    struct fc_rule r = rule("POST", 404, NULL,
                            "{\"code\":\"NotFound\",\"message\":\"Resource Not Found\"}", -1);
    CHECK_OK(fc_script(&fk, &r));
    uint64_t t0 = mono_ns();
    struct lr_lease l;
    struct lr_manager *m = start_acquire(3000, &l, "job-6", 5000);
    CHECK(m);
    run_until(EV_ACQFAIL, 6000);
    const struct rec *f = rec_first(EV_ACQFAIL, &l);
    CHECK(f);
    char text[512] = "";
    lr_manager_last_error(m, text, sizeof(text));
    printf("     %s after %.0f ms, %d creates; \"%s\"\n", lr_err_name(f->status),
           (double)(f->at_ns - t0) / 1e6, fc_count(&fk, "POST"), text);
    CHECK(f->status != -ETIMEDOUT && f->status != LR_ECONFLICT && f->status < 0);
    CHECK(f->at_ns - t0 < 2000000000u); /* definite: not waited out */
    CHECK(strstr(text, CONTAINER) || strstr(logged, CONTAINER));
    teardown(m, &l);
}

/* The acquire of a name held by someone else reads the document (GET); here
 * that read is answered by @r. Returns the acquire's failure status. */
static int conflict_then(const struct fc_rule *r, char *text, size_t cap)
{
    struct fc_rule c = rule("POST", 409, NULL,
                            "{\"code\":\"Conflict\",\"message\":\"Resource with specified id or "
                            "name already exists.\"}",
                            -1);
    if (fc_script(&fk, &c) < 0 || fc_script(&fk, r) < 0)
        return 1;
    struct lr_lease l;
    struct lr_manager *m = start_acquire(3000, &l, "job-7", 1500);
    if (!m)
        return 1;
    run_until(EV_ACQFAIL, 4000);
    const struct rec *f = rec_first(EV_ACQFAIL, &l);
    int st = f ? f->status : 1;
    text[0] = '\0';
    lr_manager_last_error(m, text, cap);
    printf("     %s (%s) after %d reads; \"%s\"\n", lr_err_name(st), lr_strerror(st),
           fc_count(&fk, "GET"), text);
    lr_lease_deinit(&l);
    close_mgr(m);
    return st;
}

static char big[1 << 20];

TEST(malformed_answers_are_clear_errors)
{
    char text[512];
    const char *doc = "{\"id\":\"job-7\",\"owner\":\"0123456789abcdef0123456789abcdef\","
                      "\"fence\":3,\"ttlMs\":3000,\"identity\":\"other\"}";
    struct {
        const char *what;
        struct fc_rule r;
        const char *said; /* in the store error text (NULL: a connection error, no text) */
    } cases[] = {
        {"not JSON", rule("GET", 200, NULL, "<html>gateway error</html>", -1), "JSON"},
        {"cut short", {.method = "GET", .status = 200, .body = doc, .cut = FC_TRUNCATE,
                       .times = -1}, NULL},
        {"over the bound", {.method = "GET", .status = 200, .body = big,
                            .body_len = sizeof(big), .times = -1}, "over"},
        {"no etag", {.method = "GET", .status = 200, .body = doc, .no_etag = true,
                     .times = -1}, "etag"},
        {"fence not a number", rule("GET", 200, NULL,
                                    "{\"id\":\"job-7\",\"owner\":\"\",\"fence\":\"three\"}", -1),
         "fence"},
    };
    memset(big, ' ', sizeof(big));
    big[0] = '{';
    big[sizeof(big) - 1] = '}';
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        printf("     %s:", cases[i].what);
        CHECK(setup());
        int st = conflict_then(&cases[i].r, text, sizeof(text));
        CHECK(st < 0);
        /* not taken for a held lease (that needs a valid document) */
        CHECK(st != LR_ECONFLICT && st != 1);
        CHECK(!cases[i].said || strstr(text, cases[i].said));
        teardown(NULL, NULL);
    }
    /* A create answered 201 without an etag cannot be renewed: an error. */
    CHECK(setup());
    struct fc_rule r = {.method = "POST", .status = 201, .body = "{\"id\":\"job-8\"}",
                        .no_etag = true, .times = -1};
    CHECK_OK(fc_script(&fk, &r));
    struct lr_lease l;
    struct lr_manager *m = start_acquire(3000, &l, "job-8", 1500);
    CHECK(m);
    run_until(EV_ACQFAIL, 3000);
    const struct rec *f = rec_first(EV_ACQFAIL, &l);
    CHECK(f);
    printf("     201 without etag: %s\n", lr_err_name(f->status));
    CHECK_EQ(rec_count(EV_ACQ, &l), 0);
    teardown(m, &l);
}

TESTS(T(the_signature_checker_passes_the_documented_example_only),
      T(authorization_header_is_the_master_key_signature),
      T(throttled_429_waits_retry_after_then_succeeds),
      T(throttled_beyond_validity_is_lost_at_valid_until),
      T(retry_with_449_and_unavailable_503_are_retried), T(unauthorized_401_is_definite),
      T(forbidden_403_is_definite), T(create_404_names_the_container),
      T(malformed_answers_are_clear_errors))
