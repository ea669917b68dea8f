/* SPDX-License-Identifier: MIT */
/*
 * test_cosmos_backend.c - the Cosmos DB backend (backends/cosmos.c) against
 * the emulator @vercel/cosmosdb-server 1.0.1 (tests/cosmos.h; plain HTTP,
 * keep-alive), started on a free loopback port; the database and the
 * container (partitioned on /id) are created here with plain HTTP.
 * Covered: URI parsing (good and bad, a key with '/', raw or
 * percent-encoded, COSMOS_CONNECTION_STRING), the name <-> id mapping,
 * acquire / conflict naming the holder / renew / change / release / break /
 * inspect, fences strictly increasing across release -> acquire and
 * takeover, a takeover only after the holder stopped writing for a full
 * TTL (not before, and soon after), a renewal after the ETag moved (still
 * ours: read and renew; another owner: lost), the document as stored
 * (escaped id, fields, doc_ttl), a server error said, the store killed ->
 * lost no later than valid_until, the gauges, and zero allocations while
 * renewing.
 *
 * What the emulator does not check, so these tests cannot either: the
 * Authorization signature (any header is accepted; test_cosmossign checks
 * the signature against a known answer), document TTLs ("ttl" is stored,
 * never enforced), throttling (no 429 / 449 / 503) and auth refusals (no
 * 401 / 403), consistency levels and session tokens, request charges. Its
 * ETags are bare GUIDs, where Cosmos sends quoted ones (both are sent back
 * as received). A read of a document that does not exist answers 500
 * ("Cannot read properties of undefined"), and so does a create in a
 * container that does not exist, where Cosmos answers 404: so inspecting a
 * name never used and the missing container's message (it names
 * dbs/D/colls/C) are not tested here. The fake-server tests cover the
 * replies it never gives.
 * A missing emulator FAILS (cosmos_start prints the install hint).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "alloccount.h"
#include "cosmos.h"
#include "cosmos_backend.h"
#include "cosmossign_int.h"
#include "harness.h"
#include "proc.h"
#include "recorder.h"
#include "uri_int.h"
#include <leasering.h>

#define KEY                                                                                        \
    "C2y6yDjf5/R+ob0N8A7Cgv30VRDJIWEHLM+4QDU5DE2nQ9nDuVTqobD4b8mGGyPMbIZnqyMsEcaGQy67XIw/Jw=="
#define KEY_PCT                                                                                    \
    "C2y6yDjf5%2FR%2Bob0N8A7Cgv30VRDJIWEHLM%2B4QDU5DE2nQ9nDuVTqobD4b8mGGyPMbIZnqyMsEcaGQy67XIw%2F" \
    "Jw%3D%3D"

static struct cosmos cs;
static char uri[512];

/* Send one request on a fresh connection (partition key @pk if not NULL);
 * the status code, or -1; the answer in @out (if not NULL, 4 KiB). */
static int plain_pk(const char *verb, const char *path, const char *type, const char *link,
                    const char *body, const char *pk, char *out)
{
    struct lr__cosmos_key k;
    char date[LR_AZ_DATE_SIZE], auth[LR_COSMOS_AUTH_SIZE], req[2048], resp[4096];
    if (lr__cosmos_key_init(&k, KEY) < 0)
        return -1;
    int rc = lr__az_date_format(time(NULL), date) < 0 ||
             lr__cosmos_auth(&k, verb, type, link, date, auth, sizeof(auth)) < 0;
    lr__cosmos_key_deinit(&k);
    if (rc)
        return -1;
    int fd = proc_connect(cs.port, 5000);
    if (fd < 0)
        return -1;
    int n = snprintf(req, sizeof(req),
                     "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nx-ms-date: %s\r\n"
                     "x-ms-version: 2018-12-31\r\nAuthorization: %s\r\nConnection: close\r\n"
                     "%s%s%s"
                     "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n%s",
                     verb, path, date, auth, pk ? "x-ms-documentdb-partitionkey: " : "",
                     pk ? pk : "", pk ? "\r\n" : "", strlen(body), body);
    int status = -1;
    size_t have = 0;
    ssize_t got;
    /* until the whole answer is in: the emulator keeps the connection open */
    if (write(fd, req, (size_t)n) == n)
        while (have < sizeof(resp) - 1 &&
               (got = read(fd, resp + have, sizeof(resp) - 1 - have)) > 0) {
            have += (size_t)got;
            resp[have] = '\0';
            const char *end = strstr(resp, "\r\n\r\n"), *cl = strcasestr(resp, "content-length:");
            if (end && cl && cl < end &&
                (size_t)(end + 4 - resp) + strtoul(cl + 15, NULL, 10) <= have)
                break;
        }
    resp[have] = '\0';
    if (have < 12 || sscanf(resp, "HTTP/1.1 %d", &status) != 1)
        status = -1;
    if (out)
        memcpy(out, resp, have + 1);
    close(fd);
    return status;
}

static int plain(const char *verb, const char *path, const char *type, const char *link,
                 const char *body)
{
    return plain_pk(verb, path, type, link, body, NULL, NULL);
}

/* The stored document of lease @name (as the backend names it) into @out. */
static int read_doc(const char *name, char *out)
{
    char id[LR_COSMOS_ID_MAX + 1], path[520], link[512], pk[300];
    if (lr__cosmos_id_of(name, strlen(name), id, sizeof(id)) < 0)
        return -1;
    snprintf(link, sizeof(link), "dbs/leasering/colls/leases/docs/%s", id);
    snprintf(path, sizeof(path), "/%s", link);
    snprintf(pk, sizeof(pk), "[\"%s\"]", id);
    return plain_pk("GET", path, "docs", link, "", pk, out);
}

/* The emulator, with database "leasering" and container "leases". */
static int start(void)
{
    if (cs.pid)
        return 0;
    int rc = cosmos_start(&cs);
    if (rc < 0)
        return rc;
    if (plain("POST", "/dbs", "dbs", "", "{\"id\":\"leasering\"}") != 201 ||
        plain("POST", "/dbs/leasering/colls", "colls", "dbs/leasering",
              "{\"id\":\"leases\",\"partitionKey\":{\"paths\":[\"/id\"],\"kind\":\"Hash\"}}") !=
            201)
        return -EIO;
    return 0;
}

static const char *cs_uri(const char *extra)
{
    snprintf(uri, sizeof(uri), "cosmos://%s@127.0.0.1:%d/leasering/leases?tls=no%s", KEY_PCT,
             cs.port, extra ? extra : "");
    return uri;
}

static struct lr_manager *mgr_ttl(const char *u, const char *identity, uint32_t ttl_ms,
                                  uint32_t conns)
{
    struct lr_manager_opts o = {.ttl_ms = ttl_ms,
                                .cbs = &rec_cbs,
                                .connections = conns,
                                .identity = identity,
                                .margin_ms = 10,
                                .retry_cap_ms = 250, /* contenders look often */
                                .store_error = rec_store_error};
    struct lr_manager *m = NULL;
    int rc = lr_manager_new(&m, loop, u, &o);
    if (rc < 0)
        fprintf(stderr, "lr_manager_new(%s): %s\n", u, lr_strerror(rc));
    return m;
}

static struct lr_manager *mgr(const char *u, const char *identity)
{
    return mgr_ttl(u, identity, 5000, 2);
}

TEST(ids_round_trip)
{
    static const char *const names[] = {"job-1", "a/b\\c?d#e", "x~y", "with space",
                                        "ü€",    "A.Z_0-9",    "%41"};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        char id[LR_COSMOS_ID_MAX + 1], back[256];
        int n = lr__cosmos_id_of(names[i], strlen(names[i]), id, sizeof(id));
        CHECK(n > 0);
        CHECK(!strpbrk(id, "/\\?#% \"%"));
        CHECK_EQ(lr__cosmos_name_of(id, (size_t)n, back, sizeof(back)), (int)strlen(names[i]));
        CHECK(!strcmp(back, names[i]));
    }
    char id[LR_COSMOS_ID_MAX + 1], back[64];
    CHECK_EQ(lr__cosmos_id_of("a/b", 3, id, sizeof(id)), 5);
    CHECK(!strcmp(id, "a~2Fb"));
    CHECK_EQ(lr__cosmos_id_of("~", 1, id, sizeof(id)), 3);
    CHECK(!strcmp(id, "~7E"));
    /* only what lr__cosmos_id_of writes is an id */
    CHECK_ERR(lr__cosmos_name_of("a~41", 4, back, sizeof(back)), -EINVAL); /* 'A' never escaped */
    CHECK_ERR(lr__cosmos_name_of("a~2f", 4, back, sizeof(back)), -EINVAL); /* lowercase hex */
    CHECK_ERR(lr__cosmos_name_of("a~2", 3, back, sizeof(back)), -EINVAL);
    CHECK_ERR(lr__cosmos_name_of("a/b", 3, back, sizeof(back)), -EINVAL);
    /* 127 escaped bytes are 381 chars: over Cosmos' 255 */
    char longname[128];
    memset(longname, '/', 127);
    longname[127] = '\0';
    CHECK_ERR(lr__cosmos_id_of(longname, 127, id, sizeof(id)), -ENAMETOOLONG);
    CHECK_ERR(lr__cosmos_id_of("", 0, id, sizeof(id)), -EINVAL);
}

/* uri.c: for cosmos:// the key runs to the first '@', '/' and all. */
TEST(uri_key_runs_to_the_first_at)
{
    struct lr__uri u;
    CHECK_OK(lr__uri_parse(&u, "cosmos://" KEY "@h.example:8081/db/coll?tls=no"));
    CHECK(u.has_password && !u.has_user);
    CHECK(!strcmp(u.password, KEY));
    CHECK(!strcmp(u.host, "h.example"));
    CHECK_EQ(u.port, 8081);
    CHECK(!strcmp(u.path, "db/coll"));
    CHECK(!strcmp(lr__uri_param(&u, "tls"), "no"));
    CHECK_OK(lr__uri_parse(&u, "cosmos://" KEY_PCT "@h/db/coll"));
    CHECK(!strcmp(u.password, KEY));
    CHECK(!strcmp(u.host, "h") && !strcmp(u.path, "db/coll"));
    CHECK_OK(lr__uri_parse(&u, "chaos+cosmos://" KEY "@h/db/coll"));
    CHECK(!strcmp(u.password, KEY) && !strcmp(u.host, "h"));
    CHECK_OK(lr__uri_parse(&u, "cosmos:///db/coll")); /* the connection string form */
    CHECK(!u.has_password && !u.host[0] && !strcmp(u.path, "db/coll"));
    CHECK_ERR(lr__uri_parse(&u, "cosmos://h/db/coll"), -EINVAL); /* no key */
    CHECK_ERR(lr__uri_parse(&u, "cosmos://@h/db/coll"), -EINVAL);
    /* other schemes keep the usual rule */
    CHECK_OK(lr__uri_parse(&u, "redis://u:p@h:1/2"));
    CHECK(!strcmp(u.user, "u") && !strcmp(u.password, "p") && !strcmp(u.path, "2"));
}

TEST(connection_strings)
{
    struct lr__cosmos_conn c;
    const char *why;
    CHECK_OK(lr__cosmos_conn_parse(&c,
                                   "AccountEndpoint=https://acct.documents.azure.com:443/;"
                                   "AccountKey=" KEY ";",
                                   &why));
    CHECK(!strcmp(c.host, "acct.documents.azure.com"));
    CHECK_EQ(c.port, 443);
    CHECK(c.tls);
    CHECK(!strcmp(c.key, KEY));
    /* any order, any case, no trailing ';', unknown names ignored, http */
    CHECK_OK(lr__cosmos_conn_parse(
        &c, "accountkey=" KEY ";Database=x;ACCOUNTENDPOINT=http://127.0.0.1:8081", &why));
    CHECK(!strcmp(c.host, "127.0.0.1"));
    CHECK_EQ(c.port, 8081);
    CHECK(!c.tls);
    CHECK_OK(lr__cosmos_conn_parse(&c, "AccountEndpoint=https://h/;AccountKey=" KEY, &why));
    CHECK_EQ(c.port, 443);
    CHECK_OK(lr__cosmos_conn_parse(&c, "AccountEndpoint=http://[::1]:7/;AccountKey=" KEY, &why));
    CHECK(!strcmp(c.host, "::1"));
    CHECK_EQ(c.port, 7);
    static const char *const bad[] = {
        "",
        "AccountKey=" KEY,
        "AccountEndpoint=https://h/",
        "AccountEndpoint=ftp://h/;AccountKey=" KEY,
        "AccountEndpoint=https://h:99999/;AccountKey=" KEY,
        "AccountEndpoint=https://h/path;AccountKey=" KEY,
        "AccountEndpoint=https:///;AccountKey=" KEY,
        "AccountEndpoint=https://h/;AccountKey=",
        "AccountEndpoint=https://h/;garbage;AccountKey=" KEY,
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        CHECK_ERR(lr__cosmos_conn_parse(&c, bad[i], &why), -EINVAL);
        CHECK(why && !strstr(why, "C2y6"));
    }
}

TEST(uris_good_and_bad)
{
    rec_setup();
    CHECK_OK(start());
    char u[512];
    /* the key as is ('/', '+', '=' inside) and percent-encoded */
    snprintf(u, sizeof(u), "cosmos://%s@127.0.0.1:%d/leasering/leases?tls=no", KEY, cs.port);
    CHECK_OK(rec_try_new(u));
    CHECK_OK(rec_try_new(cs_uri(NULL)));
    snprintf(u, sizeof(u), "chaos+cosmos://%s@127.0.0.1:%d/leasering/leases?tls=no&fail=0", KEY,
             cs.port);
    CHECK_OK(rec_try_new(u));
    CHECK_OK(rec_try_new(cs_uri("&doc_ttl=0")));
    CHECK_OK(rec_try_new(cs_uri("&doc_ttl=60")));
    /* the connection string */
    char env[512];
    snprintf(env, sizeof(env), "AccountEndpoint=http://127.0.0.1:%d/;AccountKey=%s;", cs.port, KEY);
    setenv("COSMOS_CONNECTION_STRING", env, 1);
    CHECK_OK(rec_try_new("cosmos:///leasering/leases"));
    setenv("COSMOS_CONNECTION_STRING", "AccountEndpoint=http://127.0.0.1/", 1);
    CHECK_ERR(rec_try_new("cosmos:///leasering/leases"), -EINVAL);
    CHECK(strstr(rec_errs, "no AccountKey"));
    unsetenv("COSMOS_CONNECTION_STRING");
    CHECK_ERR(rec_try_new("cosmos:///leasering/leases"), -EINVAL);
    CHECK(strstr(rec_errs, "COSMOS_CONNECTION_STRING"));
    struct {
        const char *uri, *why;
    } bad[] = {
        {"cosmos://127.0.0.1:1/leasering/leases?tls=no", NULL}, /* no key: URI parse */
        {"cosmos://" KEY "@127.0.0.1:1/leasering?tls=no", "/DATABASE/CONTAINER"},
        {"cosmos://" KEY "@127.0.0.1:1/a/b/c?tls=no", "/DATABASE/CONTAINER"},
        {"cosmos://" KEY "@127.0.0.1:1/le%20asing/leases?tls=no", "names"},
        {"cosmos://" KEY "@127.0.0.1:1/leasering/leases?tls=maybe", "tls must be"},
        {"cosmos://" KEY "@127.0.0.1:1/leasering/leases?tls=no&doc_ttl=-1", "doc_ttl"},
        {"cosmos://" KEY "@127.0.0.1:1/leasering/leases?tls=no&color=red", "unknown URI parameter"},
        {"cosmos://not*base64@127.0.0.1:1/leasering/leases?tls=no", "base64"},
        {"cosmos://" KEY "@/leasering/leases?tls=no", NULL},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int rc = rec_try_new(bad[i].uri);
        if (rc != -EINVAL)
            fprintf(stderr, "%s: %d\n", bad[i].uri, rc);
        CHECK_ERR(rc, -EINVAL);
        if (bad[i].why) {
            if (!strstr(rec_errs, bad[i].why))
                fprintf(stderr, "%s: said \"%s\"\n", bad[i].uri, rec_errs);
            CHECK(strstr(rec_errs, bad[i].why));
        }
        CHECK(!strstr(rec_errs, "C2y6")); /* never the key */
    }
}

TEST(acquire_conflict_renew_change_release_break_inspect)
{
    rec_setup();
    CHECK_OK(start());
    struct lr_manager *a = mgr(cs_uri(NULL), "alpha"), *b = mgr(uri, "bravo");
    CHECK(a && b);
    struct lr_lease la, lb;
    CHECK_OK(lr_lease_init(a, &la, "job/1", NULL)); /* '/' is escaped in the id */
    CHECK_OK(lr_lease_init(b, &lb, "job/1", NULL));
    CHECK_OK(lr_lease_set_meta(&la, "node", "al\"pha"));
    CHECK_OK(lr_lease_acquire(&la, 5000));
    run_until(EV_ACQ, 5000);
    CHECK_EQ(lr_lease_state(&la), LR_LEASE_HELD);
    uint64_t f1 = lr_lease_fence(&la);
    CHECK_EQ(f1, 1);
    /* conflict, naming the holder */
    CHECK_OK(lr_lease_try_acquire(&lb));
    run_until(EV_ACQFAIL, 5000);
    CHECK_ERR(rec_first(EV_ACQFAIL, &lb)->status, LR_ECONFLICT);
    CHECK(lr_lease_holder(&lb) && !strcmp(lr_lease_holder(&lb), "alpha"));
    /* inspect from the other manager */
    CHECK_OK(rec_inspect(b, "job/1", 5000));
    CHECK(rec_insp.held);
    CHECK_EQ(rec_insp.fence, f1);
    CHECK(!strcmp(rec_insp.identity, "alpha"));
    CHECK_EQ(strlen(rec_insp.token), 32);
    CHECK(rec_insp_meta("node") && !strcmp(rec_insp_meta("node"), "al\"pha"));
    /* the document as stored: id escaped, fields, the default doc_ttl */
    static char doc[4096];
    CHECK_EQ(read_doc("job/1", doc), 200);
    CHECK(strstr(doc, "\"id\":\"job~2F1\""));
    CHECK(strstr(doc, "\"fence\":1,"));
    CHECK(strstr(doc, "\"ttlMs\":5000,"));
    CHECK(strstr(doc, "\"identity\":\"alpha\""));
    CHECK(strstr(doc, "\"meta\":{\"node\":\"al\\\"pha\"}"));
    CHECK(strstr(doc, "\"ttl\":86400"));
    /* renew twice, change, renew again: each write moves the ETag */
    CHECK_OK(lr_lease_renew(&la));
    run_until(EV_RENEW, 5000);
    CHECK_OK(lr_lease_renew(&la));
    for (int w = 0; w < 50 && rec_count(EV_RENEW, &la) < 2; w++)
        run_until(0, 20);
    CHECK(rec_count(EV_RENEW, &la) >= 2);
    char before[33];
    memcpy(before, rec_insp.token, 33);
    CHECK_OK(lr_lease_change(&la));
    run_until(EV_CHANGED, 5000);
    CHECK_OK(rec_first(EV_CHANGED, &la)->status);
    CHECK_OK(rec_inspect(b, "job/1", 5000));
    CHECK(strcmp(rec_insp.token, before) != 0);
    int renewed = rec_count(EV_RENEW, &la);
    CHECK_OK(lr_lease_renew(&la));
    run_until(EV_RENEW, 5000);
    CHECK_EQ(rec_count(EV_RENEW, &la), renewed + 1);
    CHECK_EQ(lr_lease_state(&la), LR_LEASE_HELD);
    /* release: the document stays, free, its fence kept */
    CHECK_OK(lr_lease_release(&la));
    run_until(EV_REL, 5000);
    CHECK_OK(rec_first(EV_REL, &la)->status);
    /* the next acquire bumps the fence, at once (free: no wait) */
    uint64_t t0 = mono_ns();
    CHECK_OK(lr_lease_acquire(&lb, 5000));
    run_until(EV_ACQ, 5000);
    CHECK_EQ(lr_lease_state(&lb), LR_LEASE_HELD);
    CHECK(mono_ns() - t0 < 1000000000ull);
    uint64_t f2 = lr_lease_fence(&lb);
    CHECK(f2 > f1);
    CHECK_OK(rec_inspect(a, "job/1", 5000));
    CHECK(rec_insp.held);
    CHECK_EQ(rec_insp.fence, f2);
    CHECK(!strcmp(rec_insp.identity, "bravo"));
    /* break from the first manager: bravo's next renewal is refused */
    CHECK_OK(lr_lease_break(&la, 0));
    run_until(EV_BROKEN, 5000);
    CHECK_OK(rec_first(EV_BROKEN, &la)->status);
    CHECK_OK(lr_lease_renew(&lb));
    run_until(EV_LOST, 5000);
    CHECK_ERR(rec_first(EV_LOST, &lb)->status, LR_ELOST);
    /* a broken lease is not free at once: the holder's TTL must pass */
    CHECK_OK(lr_lease_try_acquire(&la));
    run_until(EV_ACQFAIL, 5000);
    CHECK_ERR(rec_first(EV_ACQFAIL, &la)->status, LR_ECONFLICT);
    CHECK_OK(rec_inspect(a, "job/1", 5000));
    CHECK(!rec_insp.held);
    lr_lease_deinit(&la);
    lr_lease_deinit(&lb);
    close_mgr(a);
    close_mgr(b);
    /* doc_ttl=0: no "ttl" field */
    struct lr_manager *c = mgr(cs_uri("&doc_ttl=0"), "charlie");
    CHECK(c);
    struct lr_lease lc;
    CHECK_OK(lr_lease_init(c, &lc, "no ttl", NULL));
    CHECK_OK(lr_lease_acquire(&lc, 5000));
    run_until(EV_ACQ, 5000);
    CHECK_EQ(lr_lease_state(&lc), LR_LEASE_HELD);
    CHECK_EQ(read_doc("no ttl", doc), 200);
    CHECK(strstr(doc, "\"id\":\"no~20ttl\""));
    CHECK(!strstr(doc, "\"ttl\":"));
    lr_lease_deinit(&lc);
    close_mgr(c);
}

/* Overwrite lease @name's document with @owner as its owner (no If-Match). */
static int overwrite(const char *name, const char *owner)
{
    char id[LR_COSMOS_ID_MAX + 1], path[520], link[512], pk[300], body[512];
    if (lr__cosmos_id_of(name, strlen(name), id, sizeof(id)) < 0)
        return -1;
    snprintf(link, sizeof(link), "dbs/leasering/colls/leases/docs/%s", id);
    snprintf(path, sizeof(path), "/%s", link);
    snprintf(pk, sizeof(pk), "[\"%s\"]", id);
    snprintf(body, sizeof(body),
             "{\"id\":\"%s\",\"owner\":\"%s\",\"fence\":1,\"ttlMs\":5000,"
             "\"identity\":\"someone\",\"broken\":false,\"meta\":{}}",
             id, owner);
    return plain_pk("PUT", path, "docs", link, body, pk, NULL);
}

/* The ETag moved under a holder: by a write naming it still (as its own
 * write whose answer was lost would), the renewal reads and goes on; by a
 * write naming another owner, the lease is lost. */
TEST(renew_after_the_etag_moved)
{
    rec_setup();
    CHECK_OK(start());
    struct lr_manager *m = mgr(cs_uri(NULL), "alpha");
    CHECK(m);
    struct lr_lease l;
    struct lr_lease_opts manual = {.no_auto_renew = 1};
    CHECK_OK(lr_lease_init(m, &l, "moved", &manual));
    CHECK_OK(lr_lease_acquire(&l, 5000));
    run_until(EV_ACQ, 5000);
    CHECK_OK(rec_inspect(m, "moved", 5000));
    char token[33];
    memcpy(token, rec_insp.token, sizeof(token));
    CHECK_EQ(overwrite("moved", token), 200);
    CHECK_OK(lr_lease_renew(&l));
    run_until(EV_RENEW, 5000);
    CHECK_EQ(rec_count(EV_RENEW, &l), 1);
    CHECK_EQ(lr_lease_state(&l), LR_LEASE_HELD);
    CHECK_EQ(overwrite("moved", "0123456789abcdef0123456789abcdef"), 200);
    CHECK_OK(lr_lease_renew(&l));
    run_until(EV_LOST, 5000);
    CHECK_ERR(rec_first(EV_LOST, &l)->status, LR_ELOST);
    lr_lease_deinit(&l);
    close_mgr(m);
}

/* Cosmos answers a create in a missing container with 404, which the
 * backend reports naming dbs/D/colls/C (the fake-server tests check that);
 * the emulator answers 500. What is checked here: a server error fails the
 * attempt as unavailable, and its text reaches lr_manager_last_error. */
TEST(server_error_is_unavailable_and_said)
{
    rec_setup();
    CHECK_OK(start());
    snprintf(uri, sizeof(uri), "cosmos://%s@127.0.0.1:%d/leasering/nothere?tls=no", KEY_PCT,
             cs.port);
    struct lr_manager *m = mgr(uri, "alpha");
    CHECK(m);
    struct lr_lease l;
    CHECK_OK(lr_lease_init(m, &l, "x", NULL));
    CHECK_OK(lr_lease_try_acquire(&l));
    run_until(EV_ACQFAIL, 5000);
    CHECK_ERR(rec_first(EV_ACQFAIL, &l)->status, LR_EUNAVAIL);
    char why[256];
    CHECK_ERR(lr_manager_last_error(m, why, sizeof(why)), LR_EUNAVAIL);
    printf("     %s\n", why);
    CHECK(strstr(why, "server error 500 Cannot read properties")); /* the emulator's message */
    lr_lease_deinit(&l);
    close_mgr(m);
}

/* ---- takeover after a full TTL of silence ---- */

#define TTL_MS 3000u

TEST(takeover_only_after_a_full_ttl_and_fence_grows)
{
    rec_setup();
    CHECK_OK(start());
    struct lr_manager *a = mgr_ttl(cs_uri(NULL), "alpha", TTL_MS, 1);
    struct lr_manager *b = mgr_ttl(uri, "bravo", TTL_MS, 1);
    CHECK(a && b);
    struct lr_lease la, lb;
    struct lr_lease_opts manual = {.no_auto_renew = 1};
    CHECK_OK(lr_lease_init(a, &la, "t", &manual));
    CHECK_OK(lr_lease_init(b, &lb, "t", NULL));
    CHECK_OK(lr_lease_acquire(&la, 5000));
    run_until(EV_ACQ, 5000);
    uint64_t f1 = lr_lease_fence(&la);
    /* bravo keeps trying while alpha renews by hand, twice, 1 s apart */
    CHECK_OK(lr_lease_acquire(&lb, 30000));
    uint64_t last = 0;
    for (int i = 0; i < 2; i++) {
        run_until(0, 1000);
        int n = rec_count(EV_RENEW, &la);
        CHECK_OK(lr_lease_renew(&la));
        for (int w = 0; w < 50 && rec_count(EV_RENEW, &la) == n; w++)
            run_until(0, 20);
        CHECK_EQ(rec_count(EV_RENEW, &la), n + 1); /* bravo must not have taken it */
        for (int k = 0; k < nev; k++)
            if (evs[k].ev == EV_RENEW && evs[k].l == &la)
                last = evs[k].at_ns;
    }
    CHECK(!rec_first(EV_ACQ, &lb));
    CHECK_EQ(lr_lease_state(&lb), LR_LEASE_ACQUIRING);
    CHECK(!strcmp(lr_lease_holder(&lb), "alpha")); /* its conflicts named alpha */
    /* alpha stops writing; it loses by expiry on its own */
    run_until(EV_ACQ, 10000);
    const struct rec *got = rec_first(EV_ACQ, &lb), *lost = rec_first(EV_LOST, &la);
    CHECK(got && lost);
    double after = (double)(got->at_ns - last) / 1e6;
    printf("     taken over %.0f ms after alpha's last renewal was answered (TTL %u ms)\n", after,
           TTL_MS);
    /* not before a full TTL after the last write (answered a few ms after it
     * landed), and soon after (the acquire retries at least every 250 ms) */
    CHECK(after >= TTL_MS - 50);
    CHECK(after <= TTL_MS + 1000);
    CHECK(lost->at_ns < got->at_ns);
    CHECK(lr_lease_fence(&lb) > f1);
    lr_lease_deinit(&la);
    lr_lease_deinit(&lb);
    close_mgr(a);
    close_mgr(b);
}

/* The latest valid_until the lease had, after each renewal (loop ms). */
static uint64_t vu_max;

static void vu_hook(const struct rec *r)
{
    if ((r->ev == EV_ACQ || r->ev == EV_RENEW) && lr_lease_valid_until(r->l) > vu_max)
        vu_max = lr_lease_valid_until(r->l);
}

TEST(store_killed_lost_by_valid_until)
{
    rec_setup();
    CHECK_OK(start());
    struct lr_manager *m = mgr_ttl(cs_uri(NULL), "alpha", TTL_MS, 2);
    CHECK(m);
    struct lr_lease l;
    CHECK_OK(lr_lease_init(m, &l, "k", NULL));
    vu_max = 0;
    rec_hook = vu_hook;
    CHECK_OK(lr_lease_acquire(&l, 5000));
    run_until(EV_ACQ, 5000);
    run_until(EV_RENEW, 5000); /* renewing on schedule */
    CHECK_EQ(lr_lease_state(&l), LR_LEASE_HELD);
    CHECK_OK(cosmos_stop(&cs));
    run_until(EV_LOST, TTL_MS + 2000);
    rec_hook = NULL;
    const struct rec *j = rec_first(EV_JEOP, &l), *lost = rec_first(EV_LOST, &l);
    CHECK(j && lost);
    CHECK(j->at_ns < lost->at_ns);
    /* against the last validity any renewal gave it (one answered just
     * before the stop may have moved it) */
    int64_t late = (int64_t)lost->at_ns - (int64_t)(vu_max * 1000000u);
    printf("     lost %s %.1f ms after valid_until\n", lr_err_name(lost->status), late / 1e6);
    CHECK(late < 0);
    CHECK(lr_lease_valid_until(&l) == 0);
    CHECK_EQ(lr_manager_stats(m)->store_unreachable, 1);
    CHECK_EQ(lr_manager_stats(m)->connections_up, 0);
    lr_lease_deinit(&l);
    close_mgr(m);
    cosmos_destroy(&cs);
}

TEST(renewing_allocates_nothing)
{
    rec_setup();
    CHECK_OK(start());
    struct lr_manager *m = mgr_ttl(cs_uri(NULL), "alpha", 2000, 2);
    CHECK(m);
    static struct lr_lease ls[20];
    for (int i = 0; i < 20; i++) {
        char name[16];
        snprintf(name, sizeof(name), "alloc%d", i);
        CHECK_OK(lr_lease_init(m, &ls[i], name, NULL));
        CHECK_OK(lr_lease_set_meta(&ls[i], "k", "v"));
        CHECK_OK(lr_lease_acquire(&ls[i], 5000));
    }
    run_until(0, 1500); /* acquired, and a first round of renewals */
    CHECK_EQ(lr_manager_stats(m)->held, 20);
    uint64_t r0 = lr_manager_stats(m)->renewals;
    alloccount_begin();
    run_until(0, 3000);
    struct alloc_counts ac = alloccount_end();
    uint64_t r = lr_manager_stats(m)->renewals - r0;
    printf("     %llu renewals, %llu allocations\n", (unsigned long long)r,
           (unsigned long long)ac.allocs);
    CHECK(r >= 40);
    CHECK_EQ(ac.allocs, 0);
    /* the gauges: both pooled connections up, the store reachable */
    const struct lr_manager_stats *st = lr_manager_stats(m);
    CHECK_EQ(st->connections_up, 2);
    CHECK(st->requests_in_flight <= 2);
    CHECK_EQ(st->store_unreachable, 0);
    CHECK_EQ(rec_count(EV_JEOP, NULL), 0);
    CHECK_EQ(lr_manager_release_all(m), 20);
    run_until(0, 2000);
    CHECK_EQ(rec_count(EV_REL, NULL), 20);
    for (int i = 0; i < 20; i++)
        lr_lease_deinit(&ls[i]);
    close_mgr(m);
}

TESTS(T(ids_round_trip), T(uri_key_runs_to_the_first_at), T(connection_strings),
      T(uris_good_and_bad), T(acquire_conflict_renew_change_release_break_inspect),
      T(renew_after_the_etag_moved), T(server_error_is_unavailable_and_said),
      T(takeover_only_after_a_full_ttl_and_fence_grows), T(renewing_allocates_nothing),
      T(store_killed_lost_by_valid_until))
