/* SPDX-License-Identifier: MIT */
/*
 * test_azblob.c - the Azure Blob backend against Azurite 3.35.0 (started on
 * a free loopback port, HTTP and HTTPS): acquire / conflict / renew /
 * release, expiry handing the lease to another manager with a higher fence,
 * two managers competing for 100 names, metadata read back with a plain
 * signed HEAD, a wrong account key, Azurite killed mid-run, keep-alive
 * connections reused across renewals, an acquire whose metadata write is
 * refused giving its lease back at once, tls=yes against plain HTTP
 * failing at once with LR_ETLS, and who holds a name (the identity in the
 * metadata, a conflict naming it, lr_manager_inspect).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <leasering.h>
#include "azsign_int.h"
#include "azurite.h"
#include "certs.h"
#include "harness.h"
#include "http.h"
#include "recorder.h"

#define DEV_KEY "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
#define DEV_KEY_PCT                                                                           \
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq%2FK1SZFPTOtr%2FKBHBeksoGMGw" \
    "%3D%3D"

static char uri[512];

static const char *az_uri(const struct azurite *a, const char *key_pct, const char *container,
                          const char *cacert)
{
    snprintf(uri, sizeof(uri), "azblob://devstoreaccount1:%s@%s:%d/%s?tls=%s%s%s", key_pct,
             a->https ? "localhost" : "127.0.0.1", a->port, container, a->https ? "yes" : "no",
             cacert ? "&cacert=" : "", cacert ? cacert : "");
    return uri;
}

static struct lr_manager *mgr(const char *u, uint32_t conns)
{
    struct lr_manager_opts o = {.ttl_ms = 15000, .cbs = &rec_cbs, .connections = conns,
                                .margin_ms = 25, .request_timeout_ms = 2000};
    struct lr_manager *m = NULL;
    int rc = lr_manager_new(&m, loop, u, &o);
    if (rc < 0)
        fprintf(stderr, "lr_manager_new: %s\n", lr_strerror(rc));
    return m;
}

/* A plain signed GET of CONTAINER/BLOB (0 bytes, so the answer is its
 * headers), with our own blocking socket; fills the value of header @want.
 * Returns the HTTP status or a negative error. */
static int signed_get(const struct azurite *a, const char *container, const char *blob,
                       const char *want, char *val, size_t cap)
{
    struct lr__az_key key;
    int rc = lr__az_key_init(&key, "devstoreaccount1", DEV_KEY);
    if (rc < 0)
        return rc;
    char path[256], res[300], date[LR_AZ_DATE_SIZE], sts[2048], sig[LR_AZ_SIG_SIZE];
    snprintf(path, sizeof(path), "/devstoreaccount1/%s/%s", container, blob);
    snprintf(res, sizeof(res), "/devstoreaccount1%s", path);
    lr__az_date_format(time(NULL), date);
    struct lr__az_pair h[2] = {{LR_AZ_LIT("x-ms-date"), lr__az_str_of(date)},
                               {LR_AZ_LIT("x-ms-version"), LR_AZ_LIT("2021-12-02")}};
    struct lr__az_request req = {.verb = "GET", .headers = h, .nheaders = 2,
                                 .resource = lr__az_str_of(res)};
    rc = lr__az_sign(&key, &req, sts, sizeof(sts), sig);
    lr__az_key_deinit(&key);
    if (rc < 0)
        return rc;
    char msg[1024];
    int n = snprintf(msg, sizeof(msg),
                     "GET %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nx-ms-date: %s\r\n"
                     "x-ms-version: 2021-12-02\r\nAuthorization: SharedKey devstoreaccount1:%s\r\n"
                     "Connection: close\r\n\r\n",
                     path, a->port, date, sig);
    struct sockaddr_in sa;
    azurite_addr(a, &sa);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || write(fd, msg, (size_t)n) != n) {
        close(fd);
        return -errno;
    }
    static char buf[16384];
    size_t have = 0;
    ssize_t r;
    while (have < sizeof(buf) && (r = read(fd, buf + have, sizeof(buf) - have)) > 0)
        have += (size_t)r;
    close(fd);
    struct lr_http_parser p;
    lr_http_parser_init(&p, false);
    struct lr_http_token t;
    size_t off = 0;
    int status = -EPROTO;
    val[0] = '\0';
    while ((rc = lr_http_parse(&p, buf + off, have - off, &t)) >= 0) {
        off += (size_t)rc;
        if (t.type == LR_HTTP_STATUS)
            status = t.status;
        if (t.type == LR_HTTP_HEADER && t.len == strlen(want) &&
            !strncasecmp(t.str, want, t.len) && t.value_len < cap) {
            memcpy(val, t.value, t.value_len);
            val[t.value_len] = '\0';
        }
        if (t.type == LR_HTTP_END)
            break;
    }
    return status;
}

static struct azurite az;

static int start_http(void)
{
    return az.pid ? 0 : azurite_start(&az, NULL, NULL, NULL);
}

/* Two managers on container "leases" of the shared HTTP Azurite. */
static int two_managers(struct lr_manager **a, struct lr_manager **b)
{
    int rc = start_http();
    if (rc < 0)
        return rc;
    *a = mgr(az_uri(&az, DEV_KEY_PCT, "leases", NULL), 1);
    *b = mgr(uri, 1);
    return *a && *b ? 0 : -EINVAL;
}

TEST(acquire_conflict_renew_release_and_metadata)
{
    rec_setup();
    struct lr_manager *a, *b;
    CHECK_OK(two_managers(&a, &b));
    struct lr_lease la, lb;
    CHECK_OK(lr_lease_init(a, &la, "job-1", NULL));
    CHECK_OK(lr_lease_init(b, &lb, "job-1", NULL));
    CHECK_OK(lr_lease_set_meta(&la, "node", "alpha"));
    CHECK_OK(lr_lease_acquire(&la, 5000));
    run_until(EV_ACQ, 5000);
    CHECK_EQ(lr_lease_state(&la), LR_LEASE_HELD);
    uint64_t f1 = lr_lease_fence(&la);
    CHECK(f1 >= 1);
    char val[128];
    CHECK_EQ(signed_get(&az, "leases", "job-1", "x-ms-meta-node", val, sizeof(val)), 200);
    CHECK(!strcmp(val, "alpha"));
    CHECK_EQ(signed_get(&az, "leases", "job-1", "x-ms-meta-fence", val, sizeof(val)), 200);
    CHECK_EQ(strtoull(val, NULL, 10), f1);
    CHECK_EQ(signed_get(&az, "leases", "job-1", "x-ms-lease-state", val, sizeof(val)), 200);
    CHECK(!strcmp(val, "leased"));
    CHECK_OK(lr_lease_try_acquire(&lb));
    run_until(EV_ACQFAIL, 5000);
    CHECK_ERR(rec_first(EV_ACQFAIL, &lb)->status, LR_ECONFLICT);
    CHECK_OK(lr_lease_renew(&la));
    run_until(EV_RENEW, 5000);
    CHECK_EQ(rec_count(EV_RENEW, &la), 1);
    CHECK_OK(lr_lease_release(&la));
    run_until(EV_REL, 5000);
    CHECK_OK(rec_first(EV_REL, &la)->status);
    CHECK_EQ(signed_get(&az, "leases", "job-1", "x-ms-lease-state", val, sizeof(val)), 200);
    CHECK(!strcmp(val, "available"));
    CHECK_OK(lr_lease_try_acquire(&lb));
    run_until(EV_ACQ, 5000);
    CHECK_EQ(lr_lease_state(&lb), LR_LEASE_HELD);
    CHECK(lr_lease_fence(&lb) > f1);
    lr_lease_deinit(&la);
    lr_lease_deinit(&lb);
    close_mgr(a);
    close_mgr(b);
}

TEST(wrong_key_is_an_authentication_error)
{
    rec_setup();
    CHECK_OK(start_http());
    /* a valid base64 key that is not the account's */
    struct lr_manager *m = mgr(az_uri(&az, "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA%3D", "leases", NULL), 1);
    CHECK(m);
    struct lr_lease l;
    CHECK_OK(lr_lease_init(m, &l, "job-2", NULL));
    CHECK_OK(lr_lease_acquire(&l, 5000));
    run_until(EV_ACQFAIL, 5000);
    CHECK_ERR(rec_first(EV_ACQFAIL, &l)->status, LR_EAUTH);
    /* said, naming the store's code (store_error, last error, the log) */
    char why[160];
    CHECK_ERR(lr_manager_last_error(m, why, sizeof(why)), LR_EAUTH);
    printf("     %s\n", why);
    CHECK(strstr(why, ": auth refused: 403 A") != NULL); /* Azurite: AuthorizationFailure */
    lr_lease_deinit(&l);
    close_mgr(m);
    struct lr_manager *bad;
    struct lr_manager_opts o = {.ttl_ms = 15500};
    CHECK_ERR(lr_manager_new(&bad, loop, az_uri(&az, DEV_KEY_PCT, "leases", NULL), &o), -ERANGE);
    o.ttl_ms = 61000;
    CHECK_ERR(lr_manager_new(&bad, loop, uri, &o), -ERANGE);
    o.ttl_ms = 15000; /* container names: 3-63 of a-z 0-9 '-' */
    CHECK_ERR(lr_manager_new(&bad, loop, az_uri(&az, DEV_KEY_PCT, "b1", NULL), &o), -EINVAL);
    CHECK_ERR(lr_manager_new(&bad, loop, az_uri(&az, DEV_KEY_PCT, "Caps", NULL), &o), -EINVAL);
    CHECK_ERR(lr_manager_new(&bad, loop, az_uri(&az, DEV_KEY_PCT, "a--b", NULL), &o), -EINVAL);
}

/* ---- two managers competing ---- */

#define NAMES 100
static struct lr_lease comp[2][NAMES];
static int holder[NAMES], overlaps, regressions, handovers;
static uint64_t last_fence[NAMES];

static void compete_hook(const struct rec *r)
{
    int k = r->l >= comp[1] && r->l < comp[1] + NAMES;
    int i = (int)(r->l - comp[k]);
    if (r->ev == EV_ACQ) {
        overlaps += holder[i] != 0;
        holder[i] = k + 1;
        regressions += lr_lease_fence(r->l) <= last_fence[i];
        last_fence[i] = lr_lease_fence(r->l);
        handovers++;
    } else if (r->ev == EV_LOST || r->ev == EV_REL || r->ev == EV_ACQFAIL) {
        if (r->ev != EV_ACQFAIL && holder[i] == k + 1)
            holder[i] = 0;
        lr_lease_acquire(r->l, 20000);
    }
}

static void release_some(struct lr_timer *t)
{
    for (int k = 0; k < 2; k++)
        for (int i = 0; i < NAMES; i++)
            if (lr_lease_state(&comp[k][i]) == LR_LEASE_HELD && rand() % 8 == 0) {
                if (holder[i] == k + 1)
                    holder[i] = 0; /* given up from the moment release is called */
                lr_lease_release(&comp[k][i]);
            }
    lr_timer_start(t, lr_loop_now_ms(t->loop) + 200);
}

TEST(two_managers_compete_for_100_names)
{
    rec_setup();
    srand(11);
    CHECK_OK(start_http());
    struct lr_manager *m[2];
    for (int k = 0; k < 2; k++) {
        m[k] = mgr(az_uri(&az, DEV_KEY_PCT, "compete", NULL), 4);
        CHECK(m[k]);
        for (int i = 0; i < NAMES; i++) {
            char name[16];
            snprintf(name, sizeof(name), "n%d", i);
            CHECK_OK(lr_lease_init(m[k], &comp[k][i], name, NULL));
        }
    }
    memset(holder, 0, sizeof(holder));
    memset(last_fence, 0, sizeof(last_fence));
    overlaps = regressions = handovers = 0;
    rec_hook = compete_hook;
    for (int i = 0; i < NAMES; i++)
        for (int k = 0; k < 2; k++)
            CHECK_OK(lr_lease_acquire(&comp[k][i], 20000));
    struct lr_timer churn;
    lr_timer_init(loop, &churn, release_some);
    lr_timer_start(&churn, lr_loop_now_ms(loop) + 200);
    run_until(0, 10000);
    lr_timer_stop(&churn);
    rec_hook = NULL;
    printf("     10 s: %d acquisitions, %d overlaps, %d fence regressions\n", handovers, overlaps,
           regressions);
    CHECK_EQ(overlaps, 0);
    CHECK_EQ(regressions, 0);
    CHECK(handovers > NAMES * 2);
    for (int k = 0; k < 2; k++) {
        for (int i = 0; i < NAMES; i++)
            lr_lease_deinit(&comp[k][i]);
        close_mgr(m[k]);
    }
}

/* Count established TCP connections to Azurite's port (ss, from iproute2). */
static int connections_to(int port)
{
    char filter[64], out[8192];
    snprintf(filter, sizeof(filter), "( dport = :%d )", port);
    const char *argv[] = {"ss", "-Htn", "state", "established", filter, NULL};
    if (run_capture(argv, NULL, out, sizeof(out), 5000) != 0)
        return -1;
    int n = 0;
    for (char *p = out; *p; p++)
        n += *p == '\n';
    return n;
}

TEST(keep_alive_connections_are_reused)
{
    rec_setup();
    CHECK_OK(start_http());
    struct lr_manager *m = mgr(az_uri(&az, DEV_KEY_PCT, "keep", NULL), 2);
    CHECK(m);
    static struct lr_lease ls[40];
    for (int i = 0; i < 40; i++) {
        char name[16];
        snprintf(name, sizeof(name), "k%d", i);
        CHECK_OK(lr_lease_init(m, &ls[i], name, NULL));
        CHECK_OK(lr_lease_acquire(&ls[i], 10000));
    }
    run_until(0, 2000);
    CHECK_EQ(lr_manager_stats(m)->held, 40);
    int most = 0;
    for (int s = 0; s < 6; s++) {
        run_until(0, 2000);
        int n = connections_to(az.port);
        CHECK(n >= 0);
        if (n > most)
            most = n;
    }
    printf("     %llu renewals over at most %d connections\n",
           (unsigned long long)lr_manager_stats(m)->renewals, most);
    CHECK(lr_manager_stats(m)->renewals >= 40 * 2);
    CHECK(most <= 2);
    CHECK_EQ(rec_count(EV_JEOP, NULL), 0);
    /* release-all gives every one back */
    CHECK_EQ(lr_manager_release_all(m), 40);
    run_until(0, 3000);
    CHECK_EQ(rec_count(EV_REL, NULL), 40);
    char val[64];
    CHECK_EQ(signed_get(&az, "keep", "k7", "x-ms-lease-state", val, sizeof(val)), 200);
    CHECK(!strcmp(val, "available"));
    for (int i = 0; i < 40; i++)
        lr_lease_deinit(&ls[i]);
    close_mgr(m);
}

TEST(expiry_hands_over_and_killed_store_loses_at_valid_until)
{
    rec_setup();
    CHECK_OK(start_http());
    struct lr_manager *a = mgr(az_uri(&az, DEV_KEY_PCT, "expiry", NULL), 1);
    struct lr_manager *b = mgr(uri, 1);
    CHECK(a && b);
    struct lr_lease la, lb, lk;
    struct lr_lease_opts no_renew = {.no_auto_renew = 1};
    CHECK_OK(lr_lease_init(a, &la, "e", &no_renew));
    CHECK_OK(lr_lease_init(b, &lb, "e", NULL));
    CHECK_OK(lr_lease_init(b, &lk, "k", NULL));
    CHECK_OK(lr_lease_acquire(&la, 5000));
    run_until(EV_ACQ, 5000);
    CHECK_OK(lr_lease_acquire(&lk, 5000));
    run_until(EV_ACQ, 5000);
    uint64_t f1 = lr_lease_fence(&la);
    if (SANITIZED) {
        /* The hand-over waits out Azure's 15 s in real time and checks
         * timing, not memory: the gcc build runs it (.ci/run runs both);
         * the sanitizer build goes on to the killed store at once. */
        printf("     hand-over after expiry: in the gcc build (19 s of waiting)\n");
    } else {
        CHECK_OK(lr_lease_acquire(&lb, 30000));
        /* la expires (no renewal); lb gets it once the store's 15 s have
         * passed, at its next retry (backoff at most 2 s) */
        run_until(0, 19000);
        const struct rec *lost = rec_first(EV_LOST, &la), *got = rec_first(EV_ACQ, &lb);
        CHECK(lost && got);
        CHECK_ERR(lost->status, LR_EEXPIRED);
        CHECK(lost->at_ns < got->at_ns);
        CHECK(lr_lease_fence(&lb) > f1);
    }
    /* now kill the store: lk (renewing) goes into jeopardy, then is lost at valid_until */
    uint64_t vu = lr_lease_valid_until(&lk);
    CHECK(vu > 0);
    CHECK_OK(azurite_kill(&az));
    /* the whole window: lb (also held, also renewing) may be lost first */
    run_until(0, 16000);
    const struct rec *j = rec_first(EV_JEOP, &lk), *l = rec_first(EV_LOST, &lk);
    CHECK(j && l);
    CHECK(j->at_ns < l->at_ns);
    CHECK(lr_lease_valid_until(&lk) == 0);
    int64_t late = (int64_t)l->at_ns - (int64_t)(vu * 1000000u);
    printf("     lost %s %.1f ms after valid_until (guard 150 ms)\n", lr_err_name(l->status),
           late / 1e6);
    CHECK(late >= -151000000 && late < 0); /* at valid_until - 1% of 15 s: before it */
    lr_lease_deinit(&la);
    lr_lease_deinit(&lb);
    lr_lease_deinit(&lk);
    close_mgr(a);
    close_mgr(b);
    azurite_destroy(&az);
}

TEST(leases_over_https)
{
    rec_setup();
    struct certs c;
    CHECK_OK(certs_make(&c, NULL));
    struct azurite s;
    CHECK_OK(azurite_start(&s, c.server_cert, c.server_key, NULL));
    struct lr_manager *m = mgr(az_uri(&s, DEV_KEY_PCT, "secure", c.ca), 2);
    CHECK(m);
    struct lr_lease l;
    CHECK_OK(lr_lease_init(m, &l, "tls-job", NULL));
    CHECK_OK(lr_lease_acquire(&l, 10000));
    run_until(EV_ACQ, 10000);
    CHECK_EQ(lr_lease_state(&l), LR_LEASE_HELD);
    CHECK_OK(lr_lease_renew(&l));
    run_until(EV_RENEW, 5000);
    CHECK_OK(lr_lease_release(&l));
    run_until(EV_REL, 5000);
    CHECK_OK(rec_first(EV_REL, &l)->status);
    lr_lease_deinit(&l);
    close_mgr(m);
    /* the wrong CA is refused */
    rec_setup();
    m = mgr(az_uri(&s, DEV_KEY_PCT, "secure", NULL), 1);
    CHECK(m);
    CHECK_OK(lr_lease_init(m, &l, "tls-job", NULL));
    CHECK_OK(lr_lease_try_acquire(&l));
    run_until(EV_ACQFAIL, 10000);
    CHECK_ERR(rec_first(EV_ACQFAIL, &l)->status, LR_ETLS);
    lr_lease_deinit(&l);
    close_mgr(m);
    azurite_destroy(&s);
    certs_destroy(&c);
}


/* tls=yes to a plain-HTTP Azurite: it answers our ClientHello with an HTTP
 * 400, which is not TLS. A definite LR_ETLS at once, with the reason. */
TEST(https_to_a_plain_http_endpoint_fails_at_once)
{
    rec_setup();
    CHECK_OK(start_http());
    snprintf(uri, sizeof(uri), "azblob://devstoreaccount1:%s@localhost:%d/leases?tls=yes",
             DEV_KEY_PCT, az.port);
    struct lr_manager *m = mgr(uri, 1);
    CHECK(m);
    struct lr_lease l;
    CHECK_OK(lr_lease_init(m, &l, "tls-job", NULL));
    uint64_t t0 = mono_ns();
    CHECK_OK(lr_lease_acquire(&l, 20000));
    run_until(EV_ACQFAIL, 5000);
    CHECK(rec_first(EV_ACQFAIL, &l) != NULL);
    CHECK_ERR(rec_first(EV_ACQFAIL, &l)->status, LR_ETLS);
    CHECK((rec_first(EV_ACQFAIL, &l)->at_ns - t0) / 1000000u < 1000);
    char text[200];
    CHECK_ERR(lr_manager_last_error(m, text, sizeof(text)), LR_ETLS);
    printf("     last error: %s\n", text);
    CHECK(strstr(text, "azblob localhost:") && strstr(text, "TLS handshake failed"));
    lr_lease_deinit(&l);
    close_mgr(m);
}

/* An acquire whose lease step succeeded but whose metadata write Azurite
 * rejects (400 InvalidMetadata: a name that is not a C# identifier) fails
 * -- and gives the lease back first, so another manager takes the name at
 * once instead of after the 15 s lease. */
TEST(acquire_failing_after_the_lease_step_releases_the_blob)
{
    rec_setup();
    struct lr_manager *a, *b;
    CHECK_OK(two_managers(&a, &b));
    struct lr_lease la, lb;
    CHECK_OK(lr_lease_init(a, &la, "half-job", NULL));
    CHECK_OK(lr_lease_set_meta(&la, "bad-name", "x"));
    CHECK_OK(lr_lease_init(b, &lb, "half-job", NULL));
    CHECK_OK(lr_lease_acquire(&la, 5000));
    run_until(EV_ACQFAIL, 5000);
    CHECK(rec_first(EV_ACQFAIL, &la) != NULL);
    CHECK_ERR(rec_first(EV_ACQFAIL, &la)->status, -EINVAL); /* definite: no retry */
    char val[64];
    CHECK_EQ(signed_get(&az, "leases", "half-job", "x-ms-lease-state", val, sizeof(val)), 200);
    printf("     lease state after the failed acquire: %s\n", val);
    CHECK(!strcmp(val, "available"));
    uint64_t t0 = mono_ns();
    CHECK_OK(lr_lease_try_acquire(&lb)); /* one attempt: a leftover lease would be a conflict */
    run_until(EV_ACQ, 3000);
    CHECK_EQ(lr_lease_state(&lb), LR_LEASE_HELD);
    CHECK((mono_ns() - t0) / 1000000u < 1000);
    lr_lease_deinit(&la);
    lr_lease_deinit(&lb);
    close_mgr(a);
    close_mgr(b);
}

/* Credentials and endpoint from AZURE_STORAGE_CONNECTION_STRING. */
TEST(connection_string_configures_the_backend)
{
    rec_setup();
    CHECK_OK(start_http());
    char cs[512];
    snprintf(cs, sizeof(cs),
             "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=%s;"
             "BlobEndpoint=http://127.0.0.1:%d/devstoreaccount1;",
             DEV_KEY, az.port);
    CHECK_OK(setenv("AZURE_STORAGE_CONNECTION_STRING", cs, 1));
    struct lr_manager *m = mgr("azblob:///from-env", 1);
    CHECK(m);
    struct lr_lease l;
    CHECK_OK(lr_lease_init(m, &l, "cs-job", NULL));
    CHECK_OK(lr_lease_acquire(&l, 5000));
    run_until(EV_ACQ, 5000);
    CHECK_EQ(lr_lease_state(&l), LR_LEASE_HELD);
    char val[64];
    CHECK_EQ(signed_get(&az, "from-env", "cs-job", "x-ms-lease-state", val, sizeof(val)), 200);
    CHECK(!strcmp(val, "leased"));
    lr_lease_deinit(&l);
    close_mgr(m);
    unsetenv("AZURE_STORAGE_CONNECTION_STRING");
    struct lr_manager *bad;
    struct lr_manager_opts o = {.ttl_ms = 15000};
    CHECK_ERR(lr_manager_new(&bad, loop, "azblob:///from-env", &o), -EINVAL); /* no string */
}

/* An account SAS for devstoreaccount1 (sv=2019-12-12: the string-to-sign
 * without the encryption-scope line), blob service, service/container/object
 * resources, @perms, valid until 2099; "sig" percent-encoded. A non-NULL
 * @tamper replaces the signature. */
static int account_sas(char *out, size_t cap, const char *perms, const char *tamper)
{
    static const char sv[] = "2019-12-12", se[] = "2099-01-01T00:00:00Z";
    char sts[256], sig[LR_AZ_SIG_SIZE];
    int n = snprintf(sts, sizeof(sts), "devstoreaccount1\n%s\nb\nsco\n\n%s\n\nhttps,http\n%s\n",
                     perms, se, sv);
    struct lr__az_key key;
    int rc = lr__az_key_init(&key, "devstoreaccount1", DEV_KEY);
    if (rc == 0)
        rc = lr__az_sign_bytes(&key, sts, (size_t)n, sig);
    lr__az_key_deinit(&key);
    if (rc < 0)
        return rc;
    const char *raw = tamper ? tamper : sig;
    char enc[3 * LR_AZ_SIG_SIZE];
    size_t e = 0;
    for (const char *c = raw; *c; c++) {
        if (*c == '+' || *c == '/' || *c == '=')
            e += (size_t)snprintf(enc + e, sizeof(enc) - e, "%%%02X", (unsigned char)*c);
        else
            enc[e++] = *c;
    }
    enc[e] = '\0';
    n = snprintf(out, cap, "sv=%s&ss=b&srt=sco&sp=%s&se=%s&spr=https,http&sig=%s", sv, perms,
                 "2099-01-01T00%3A00%3A00Z", enc);
    return n > 0 && (size_t)n < cap ? 0 : -ENOBUFS;
}

/* SAS instead of Shared Key, from a connection string without an account
 * key: leases work; a SAS with a wrong signature, or without write
 * permission, is an authentication error. */
TEST(sas_from_the_connection_string)
{
    rec_setup();
    CHECK_OK(start_http());
    char sas[512], cs[1024];
    struct {
        const char *perms, *tamper;
        int want; /* 0: held; else the acquire_failed status */
    } cases[] = {
        {"rwdlacup", NULL, 0},
        {"rwdlacup", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=", LR_EAUTH},
        {"rl", NULL, LR_EAUTH},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        rec_setup();
        CHECK_OK(account_sas(sas, sizeof(sas), cases[i].perms, cases[i].tamper));
        snprintf(cs, sizeof(cs),
                 "BlobEndpoint=http://127.0.0.1:%d/devstoreaccount1;SharedAccessSignature=%s",
                 az.port, sas);
        CHECK_OK(setenv("AZURE_STORAGE_CONNECTION_STRING", cs, 1));
        struct lr_manager *m = mgr("azblob:///sas-box", 1);
        unsetenv("AZURE_STORAGE_CONNECTION_STRING");
        CHECK(m);
        struct lr_lease l;
        CHECK_OK(lr_lease_init(m, &l, "sas-job", NULL));
        CHECK_OK(lr_lease_acquire(&l, cases[i].want ? 0 : 5000));
        run_until(cases[i].want ? EV_ACQFAIL : EV_ACQ, 5000);
        if (cases[i].want) {
            CHECK(rec_first(EV_ACQFAIL, &l) != NULL);
            CHECK_ERR(rec_first(EV_ACQFAIL, &l)->status, cases[i].want);
        } else {
            const struct rec *f = rec_first(EV_ACQFAIL, &l);
            if (f)
                fprintf(stderr, "SAS acquire failed: %s\n", lr_err_name(f->status));
            CHECK_EQ(lr_lease_state(&l), LR_LEASE_HELD);
            char val[64];
            CHECK_EQ(signed_get(&az, "sas-box", "sas-job", "x-ms-lease-state", val, sizeof(val)),
                     200);
            CHECK(!strcmp(val, "leased"));
            CHECK_OK(lr_lease_renew(&l));
            run_until(EV_RENEW, 5000);
            CHECK_EQ(rec_count(EV_RENEW, &l), 1);
            CHECK_OK(lr_lease_release(&l));
            run_until(EV_REL, 5000);
            CHECK_OK(rec_first(EV_REL, &l)->status);
            CHECK_EQ(signed_get(&az, "sas-box", "sas-job", "x-ms-lease-state", val, sizeof(val)),
                     200);
            CHECK(!strcmp(val, "available"));
        }
        lr_lease_deinit(&l);
        close_mgr(m);
    }
}

/* Renewals 5 s apart after long idle gaps on the same pooled connection.
 * (Asked to close idle connections after 1 s, Azurite 3.35 kept this one
 * open in our runs, so this does not prove the reopen-after-server-close
 * path; it proves idle gaps do no harm.) */
TEST(renewals_across_idle_gaps)
{
    rec_setup();
    static const char *const short_keepalive[] = {"--blobKeepAliveTimeout", "1", NULL};
    struct azurite s;
    CHECK_OK(azurite_start(&s, NULL, NULL, short_keepalive));
    struct lr_manager *m = mgr(az_uri(&s, DEV_KEY_PCT, "idle", NULL), 1);
    CHECK(m);
    struct lr_lease l;
    CHECK_OK(lr_lease_init(m, &l, "sleepy", NULL));
    CHECK_OK(lr_lease_acquire(&l, 5000));
    run_until(EV_ACQ, 5000);
    run_until(0, 11500); /* two renewals, each after ~5 s of silence */
    CHECK(lr_lease_stats(&l)->renewals >= 2);
    CHECK_EQ(rec_count(EV_JEOP, &l), 0);
    CHECK_EQ(lr_lease_state(&l), LR_LEASE_HELD);
    lr_lease_deinit(&l);
    close_mgr(m);
    azurite_destroy(&s);
}

TEST(break_and_change)
{
    rec_setup();
    CHECK_OK(start_http());
    struct lr_manager *a = mgr(az_uri(&az, DEV_KEY_PCT, "brk", NULL), 1);
    struct lr_manager *b = mgr(uri, 1);
    CHECK(a && b);
    struct lr_lease la, lb;
    CHECK_OK(lr_lease_init(a, &la, "job", NULL));
    CHECK_OK(lr_lease_init(b, &lb, "job", NULL));
    CHECK_OK(lr_lease_acquire(&la, 5000));
    run_until(EV_ACQ, 5000);
    CHECK_OK(lr_lease_change(&la));
    run_until(EV_CHANGED, 5000);
    CHECK_OK(rec_first(EV_CHANGED, &la)->status);
    CHECK_OK(lr_lease_renew(&la)); /* renewing under the new lease id works */
    run_until(EV_RENEW, 5000);
    CHECK_EQ(rec_count(EV_RENEW, &la), 1);
    uint64_t f1 = lr_lease_fence(&la);
    uint64_t t0 = mono_ns();
    uint64_t vu = lr_lease_valid_until(&la);
    CHECK_OK(lr_lease_break(&lb, 1000));
    run_until(EV_BROKEN, 5000);
    CHECK_OK(rec_first(EV_BROKEN, &lb)->status);
    char val[64];
    CHECK_EQ(signed_get(&az, "brk", "job", "x-ms-lease-state", val, sizeof(val)), 200);
    CHECK(!strcmp(val, "breaking") || !strcmp(val, "broken"));
    CHECK_OK(lr_lease_renew(&la)); /* LeaseIsBrokenAndCannotBeRenewed */
    run_until(EV_LOST, 5000);
    CHECK_ERR(rec_first(EV_LOST, &la)->status, LR_ELOST);
    /* a break never cuts the holder's lease short: nobody acquires before
     * the old holder's validity (15 s from its last renewal) has ended */
    CHECK_OK(lr_lease_acquire(&lb, 20000));
    run_until(EV_ACQ, 20000);
    CHECK(rec_first(EV_ACQ, &lb) != NULL);
    CHECK(rec_first(EV_ACQ, &lb)->at_ns - t0 >= 1000000000ull);
    CHECK(rec_first(EV_ACQ, &lb)->at_ns >= vu * 1000000u);
    CHECK(lr_lease_fence(&lb) > f1);
    lr_lease_deinit(&la);
    lr_lease_deinit(&lb);
    close_mgr(a);
    close_mgr(b);
}

/* Who holds it: the identity and token in the blob's metadata, a conflict
 * naming the holder (a HEAD after the 409), lr_manager_inspect on a free
 * name, a missing container, a held one with metadata, a released one and
 * an expired one (Azure does not say the TTL: -1). */
TEST(identity_conflict_and_inspect)
{
    rec_setup();
    CHECK_OK(start_http());
    struct lr_manager_opts o = {.ttl_ms = 15000, .cbs = &rec_cbs, .identity = "az-holder:1"};
    struct lr_manager *a = NULL, *b = mgr(az_uri(&az, DEV_KEY_PCT, "leases", NULL), 1);
    CHECK_OK(lr_manager_new(&a, loop, uri, &o));
    CHECK(b);
    CHECK_OK(rec_inspect(b, "insp-free", 5000));
    CHECK_EQ(rec_insp.held, 0);
    struct lr_manager *none = mgr(az_uri(&az, DEV_KEY_PCT, "no-such-container", NULL), 1);
    CHECK(none);
    CHECK_OK(rec_inspect(none, "x", 5000)); /* 404 ContainerNotFound: free */
    CHECK_EQ(rec_insp.held, 0);
    close_mgr(none);
    struct lr_lease la, lb;
    CHECK_OK(lr_lease_init(a, &la, "insp-1", NULL));
    CHECK_OK(lr_lease_init(b, &lb, "insp-1", NULL));
    CHECK_OK(lr_lease_set_meta(&la, "node", "alpha"));
    CHECK_OK(lr_lease_acquire(&la, 5000));
    run_until(EV_ACQ, 5000);
    CHECK_EQ(lr_lease_state(&la), LR_LEASE_HELD);
    char val[128];
    CHECK_EQ(signed_get(&az, "leases", "insp-1", "x-ms-meta-identity", val, sizeof(val)), 200);
    CHECK(!strcmp(val, "az-holder:1"));
    CHECK_OK(rec_inspect(b, "insp-1", 5000));
    CHECK_EQ(rec_insp.held, 1);
    CHECK(!strcmp(rec_insp.holder, "az-holder:1"));
    CHECK(!strcmp(rec_insp.identity, "az-holder:1"));
    CHECK_EQ(signed_get(&az, "leases", "insp-1", "x-ms-meta-owner", val, sizeof(val)), 200);
    CHECK_EQ(strlen(val), 32);
    CHECK(!strcmp(rec_insp.token, val));
    CHECK_EQ(rec_insp.fence, lr_lease_fence(&la));
    CHECK_EQ(rec_insp.ttl_ms, -1);
    CHECK(rec_insp_meta("node") && !strcmp(rec_insp_meta("node"), "alpha"));
    CHECK(!rec_insp_meta("fence") && !rec_insp_meta("identity") && !rec_insp_meta("owner"));
    /* a conflict names the holder */
    CHECK_OK(lr_lease_try_acquire(&lb));
    run_until(EV_ACQFAIL, 5000);
    CHECK_ERR(rec_first(EV_ACQFAIL, &lb)->status, LR_ECONFLICT);
    CHECK(!strcmp(lr_lease_holder(&lb), "az-holder:1"));
    /* released: free, and the past holder's metadata is not reported */
    CHECK_OK(lr_lease_release(&la));
    run_until(EV_REL, 5000);
    CHECK_OK(rec_inspect(b, "insp-1", 5000));
    CHECK_EQ(rec_insp.held, 0);
    CHECK_EQ(rec_insp.meta_len, 0);
    /* expired: forgotten without a release, free once Azure's 15 s ran out */
    CHECK_OK(lr_lease_acquire(&la, 5000));
    run_until(EV_ACQ, 5000);
    lr_lease_deinit(&la);
    CHECK_OK(rec_inspect(b, "insp-1", 5000));
    CHECK_EQ(rec_insp.held, 1);
    run_until(0, 15500);
    CHECK_OK(rec_inspect(b, "insp-1", 5000));
    CHECK_EQ(rec_insp.held, 0);
    lr_lease_deinit(&lb);
    close_mgr(a);
    close_mgr(b);
}

TESTS(T(acquire_conflict_renew_release_and_metadata), T(identity_conflict_and_inspect),
      T(https_to_a_plain_http_endpoint_fails_at_once),
      T(acquire_failing_after_the_lease_step_releases_the_blob), T(sas_from_the_connection_string),
      T(break_and_change), T(wrong_key_is_an_authentication_error),
      T(connection_string_configures_the_backend),
      T(renewals_across_idle_gaps),
      T(two_managers_compete_for_100_names), T(keep_alive_connections_are_reused),
      T(expiry_hands_over_and_killed_store_loses_at_valid_until), T(leases_over_https))
