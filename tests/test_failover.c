/* SPDX-License-Identifier: MIT */
/*
 * test_failover.c - what a Redis holder does when the store changes under
 * it (issue 9: a holder never acts on a lease that may have passed on).
 *
 * A real replica promoted mid-run behind a forwarder (a "virtual IP"): the
 * old primary answers READONLY, the client reconnects and the leases keep
 * renewing, none lost, none renewed past its validity. Server errors that
 * mean "not now" (LOADING, BUSY, MASTERDOWN, TRYAGAIN, CLUSTERDOWN, from a
 * fake server: a real one cannot easily be made to say them on demand) fail
 * only their request with LR_EUNAVAIL, retried; MOVED reconnects; a real
 * redis-server out of memory refuses an acquire with LR_ESTORE and its text.
 * Name resolution: an unresolvable host costs lr_manager_new nothing and
 * shows up as LR_EUNAVAIL plus "name not resolved"; a slow lookup never
 * stalls the loop; a manager closed during a lookup leaks nothing.
 */
#include <errno.h>
#include <netdb.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include <leasering.h>
#include "resolve_int.h" /* before recorder.h: its global "loop" */
#include "echo.h"
#include "forwarder.h"
#include "harness.h"
#include "recorder.h"
#include "redis_scripts.h"
#include "redis_server.h"

static char uri[256];
static char errs[8192]; /* every store_error text, one per line */

static void on_store_error(struct lr_manager *m, int status, const char *text, void *arg)
{
    (void)m;
    (void)arg;
    (void)status;
    size_t n = strlen(errs);
    snprintf(errs + n, sizeof(errs) - n, "%s\n", text);
}

static struct lr_manager *mgr(const char *u, uint32_t ttl, uint32_t cap)
{
    struct lr_manager_opts o = {.ttl_ms = ttl, .cbs = &rec_cbs, .max_leases = cap ? cap : 16,
                                .margin_ms = 25, .store_error = on_store_error};
    struct lr_manager *m = NULL;
    int rc = lr_manager_new(&m, loop, u, &o);
    if (rc < 0)
        fprintf(stderr, "lr_manager_new(%s): %s\n", u, lr_strerror(rc));
    return m;
}

static const char *uri_port(const char *host, int port)
{
    snprintf(uri, sizeof(uri), "redis://%s:%d", host, port);
    return uri;
}

/* Leases @prefix0.. @prefix<n-1> on @m; 0 or the first error. */
static int init_leases(struct lr_manager *m, struct lr_lease *ls, int n, const char *prefix)
{
    for (int i = 0; i < n; i++) {
        char name[32];
        snprintf(name, sizeof(name), "%s%d", prefix, i);
        int rc = lr_lease_init(m, &ls[i], name, NULL);
        if (rc < 0)
            return rc;
    }
    return 0;
}

static int last_error_has(struct lr_manager *m, const char *word)
{
    char text[256];
    lr_manager_last_error(m, text, sizeof(text));
    return strstr(text, word) != NULL;
}

/* ---- a real replica promoted mid-run ---- */

#define NFAIL 200
static struct lr_lease fl[NFAIL];
static uint64_t fl_valid[NFAIL]; /* valid_until before the latest event */
static int renewed_late;         /* renewals accepted after their validity */
static int readonly_seen;        /* last_error said READONLY while it was told */
static struct lr_manager *fail_m;

static void failover_hook(const struct rec *r)
{
    int i = (int)(r->l - fl);
    if (i < 0 || i >= NFAIL)
        return;
    if (r->ev == EV_RENEW && r->at_ns / 1000000u > fl_valid[i])
        renewed_late++;
    if (r->ev == EV_ACQ || r->ev == EV_RENEW)
        fl_valid[i] = lr_lease_valid_until(r->l);
}

static void failover_store_error(struct lr_manager *m, int status, const char *text, void *arg)
{
    on_store_error(m, status, text, arg);
    if (strstr(text, "READONLY") && last_error_has(m, "READONLY"))
        readonly_seen++;
}

/* A DNS that answers 127.0.0.1:dns_port whatever the name and port asked. */
static int dns_port;
static int dns_lookups;

static int moving_getaddrinfo(const char *host, const char *port, const struct addrinfo *hints,
                              struct addrinfo **res)
{
    (void)host;
    (void)port;
    char p[16];
    snprintf(p, sizeof(p), "%d", __atomic_load_n(&dns_port, __ATOMIC_ACQUIRE));
    __atomic_add_fetch(&dns_lookups, 1, __ATOMIC_RELAXED);
    return getaddrinfo("127.0.0.1", p, hints, res);
}

/* The failover, behind a forwarder (a virtual IP that moves) or behind a
 * name whose DNS answer moves. */
static void promote_mid_run(bool by_dns)
{
    rec_setup();
    errs[0] = '\0';
    struct redis_server p, r;
    CHECK_OK(redis_server_start(&p, NULL));
    char pport[16], rport[16];
    snprintf(pport, sizeof(pport), "%d", p.port);
    const char *const as_replica[] = {"--replicaof", "127.0.0.1", pport, NULL};
    CHECK_OK(redis_server_start(&r, as_replica));
    snprintf(rport, sizeof(rport), "%d", r.port);
    CHECK_OK(redis_replica_link_up(&r));
    struct forwarder vip;
    CHECK_OK(forwarder_start(&vip, p.port));

    struct lr_manager_opts o = {.ttl_ms = 2000, .cbs = &rec_cbs, .max_leases = NFAIL,
                                .margin_ms = 25, .store_error = failover_store_error};
    if (by_dns) {
        __atomic_store_n(&dns_port, p.port, __ATOMIC_RELEASE);
        dns_lookups = 0;
        lr__resolve_set_hook(moving_getaddrinfo);
        CHECK_OK(lr_manager_new(&fail_m, loop, uri_port("primary.example", 1), &o));
    } else {
        CHECK_OK(lr_manager_new(&fail_m, loop,
                                uri_port("127.0.0.1", ntohs(vip.peer.addr.sin_port)), &o));
    }
    CHECK_OK(init_leases(fail_m, fl, NFAIL, "f"));
    renewed_late = readonly_seen = 0;
    rec_hook = failover_hook;
    for (int i = 0; i < NFAIL; i++)
        CHECK_OK(lr_lease_acquire(&fl[i], 3000));
    run_until(0, 1000);
    CHECK_EQ(lr_manager_stats(fail_m)->held, NFAIL);
    unsigned long accepted = forwarder_accepted(&vip);

    /* A controlled failover: the replica has everything, then it is promoted,
     * the old primary follows it, and the virtual IP moves. */
    char out[256];
    const char *wait_args[] = {"WAIT", "1", "1000", NULL};
    CHECK_OK(redis_cli(&p, out, sizeof(out), wait_args));
    CHECK(!strcmp(out, "1"));
    const char *promote[] = {"REPLICAOF", "NO", "ONE", NULL};
    CHECK_OK(redis_cli(&r, out, sizeof(out), promote));
    const char *demote[] = {"REPLICAOF", "127.0.0.1", rport, NULL};
    CHECK_OK(redis_cli(&p, out, sizeof(out), demote));
    if (by_dns)
        __atomic_store_n(&dns_port, r.port, __ATOMIC_RELEASE);
    else
        forwarder_set_target(&vip, r.port);
    const char *set_args[] = {"SET", "probe", "x", NULL};
    CHECK_OK(redis_cli(&p, out, sizeof(out), set_args));
    CHECK(!strncmp(out, "READONLY", 8)); /* the old primary refuses writes now */

    uint64_t r0 = lr_manager_stats(fail_m)->renewals;
    run_until(0, 4000); /* two TTLs */
    printf("     %llu renewals after the failover, %llu reconnects; errors told:\n%s",
           (unsigned long long)(lr_manager_stats(fail_m)->renewals - r0),
           (unsigned long long)lr_manager_stats(fail_m)->reconnects, errs);
    CHECK(readonly_seen >= 1);          /* the client saw READONLY, and said so */
    if (by_dns) /* and reconnected, asking the DNS again */
        CHECK(__atomic_load_n(&dns_lookups, __ATOMIC_RELAXED) >= 2);
    else
        CHECK(forwarder_accepted(&vip) > accepted); /* and reconnected */
    CHECK(lr_manager_stats(fail_m)->reconnects >= 1);
    CHECK_EQ(rec_count(EV_LOST, NULL), 0);
    CHECK_EQ(renewed_late, 0);
    CHECK_EQ(lr_manager_stats(fail_m)->held, NFAIL);
    CHECK(lr_manager_stats(fail_m)->renewals - r0 >= 2 * NFAIL);
    /* the keys live on the new primary */
    const char *owner_args[] = {"HGET", "lr:{f7}", "owner", NULL};
    CHECK_OK(redis_cli(&r, out, sizeof(out), owner_args));
    CHECK_EQ(strlen(out), 32);
    rec_hook = NULL;
    for (int i = 0; i < NFAIL; i++)
        lr_lease_deinit(&fl[i]);
    close_mgr(fail_m);
    lr__resolve_set_hook(NULL);
    forwarder_stop(&vip);
    redis_server_destroy(&p);
    redis_server_destroy(&r);
}

TEST(replica_promoted_mid_run_leases_keep_renewing)
{
    promote_mid_run(false);
}

TEST(name_moved_to_the_promoted_replica_leases_keep_renewing)
{
    promote_mid_run(true);
}

/* A store that stays a replica (a misconfigured address, or a failover
 * that never comes): every try meets READONLY. The client reconnects, but
 * backs off between tries instead of reconnecting as fast as it can. */
TEST(a_replica_that_stays_one_is_not_hammered)
{
    rec_setup();
    errs[0] = '\0';
    struct redis_server p, r;
    CHECK_OK(redis_server_start(&p, NULL));
    char pport[16];
    snprintf(pport, sizeof(pport), "%d", p.port);
    const char *const as_replica[] = {"--replicaof", "127.0.0.1", pport, NULL};
    CHECK_OK(redis_server_start(&r, as_replica));
    CHECK_OK(redis_replica_link_up(&r));
    struct forwarder vip;
    CHECK_OK(forwarder_start(&vip, r.port));
    struct lr_manager *m = mgr(uri_port("127.0.0.1", ntohs(vip.peer.addr.sin_port)), 2000, 64);
    CHECK(m);
    static struct lr_lease ls[64]; /* retries from many leases keep requests coming */
    CHECK_OK(init_leases(m, ls, 64, "rep"));
    for (int i = 0; i < 64; i++)
        CHECK_OK(lr_lease_acquire(&ls[i], 2000));
    run_until(0, 2100);
    unsigned long conns = forwarder_accepted(&vip);
    printf("     %lu connections in 2 s\n", conns);
    CHECK_EQ(rec_count(EV_ACQFAIL, NULL), 64);
    CHECK(last_error_has(m, "is a replica")); /* the ROLE check at connect */
    CHECK(conns >= 3);  /* it kept trying... */
    CHECK(conns <= 30); /* ...with backoff (without it: about 60) */
    for (int i = 0; i < 64; i++)
        lr_lease_deinit(&ls[i]);
    close_mgr(m);
    forwarder_stop(&vip);
    redis_server_destroy(&p);
    redis_server_destroy(&r);
}

/* ---- the change script, sent twice ---- */

TEST(change_script_is_idempotent)
{
    struct redis_server s;
    CHECK_OK(redis_server_start(&s, NULL));
    const char *t1 = "11111111111111111111111111111111", *t2 = "22222222222222222222222222222222",
               *t3 = "33333333333333333333333333333333";
    char out[256];
    const char *set_owner[] = {"HSET", "lr:{c}", "owner", t1, NULL};
    CHECK_OK(redis_cli(&s, out, sizeof(out), set_owner));
    const char *change[] = {"EVAL", change_lua, "1", "lr:{c}", t1, t2, NULL};
    const char *get_owner[] = {"HGET", "lr:{c}", "owner", NULL};
    CHECK_OK(redis_cli(&s, out, sizeof(out), change));
    CHECK(!strcmp(out, "1"));
    CHECK_OK(redis_cli(&s, out, sizeof(out), get_owner));
    CHECK(!strcmp(out, t2));
    /* the same change again (its first answer was lost): still "changed" */
    CHECK_OK(redis_cli(&s, out, sizeof(out), change));
    CHECK(!strcmp(out, "1"));
    CHECK_OK(redis_cli(&s, out, sizeof(out), get_owner));
    CHECK(!strcmp(out, t2));
    /* someone else's lease is not ours, whichever token we name */
    set_owner[3] = t3;
    CHECK_OK(redis_cli(&s, out, sizeof(out), set_owner));
    CHECK_OK(redis_cli(&s, out, sizeof(out), change));
    CHECK(!strcmp(out, "0"));
    CHECK_OK(redis_cli(&s, out, sizeof(out), get_owner));
    CHECK(!strcmp(out, t3));
    redis_server_destroy(&s);
}

/* ---- server errors from a fake Redis ---- */

/* Answers SCRIPT LOAD with a sha that numbers the script (0 acquire, 1
 * renew, 2 release, ...), EVALSHA with the error in @err if one is set,
 * else with success in the shape the script would give, anything else +OK. */
struct fake_redis {
    struct tcp_peer peer;
    const char *err; /* "-LOADING ...\r\n" or NULL; atomic */
    int conns;       /* connections accepted; atomic */
};

static void fake_set_err(struct fake_redis *f, const char *e)
{
    __atomic_store_n(&f->err, e, __ATOMIC_RELEASE);
}

static int write_all(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* One RESP command in @b[0..len): its argument count and the first three
 * arguments (pointer, length). Returns the bytes it took, 0 if incomplete. */
static size_t parse_cmd(const char *b, size_t len, const char *arg[3], size_t alen[3])
{
    const char *p = b, *end = b + len;
    if (p >= end || *p != '*')
        return 0;
    char *e;
    long n = strtol(p + 1, &e, 10);
    if (e + 2 > end)
        return 0;
    p = e + 2;
    for (long i = 0; i < n; i++) {
        if (p >= end || *p != '$')
            return 0;
        long l = strtol(p + 1, &e, 10);
        if (e + 2 + l + 2 > end)
            return 0;
        p = e + 2;
        if (i < 3) {
            arg[i] = p;
            alen[i] = (size_t)l;
        }
        p += l + 2;
    }
    return (size_t)(p - b);
}

static void fake_answer(struct fake_redis *f, int fd, const char *arg[3], size_t alen[3],
                        unsigned *loads)
{
    char out[16384];
    if (alen[0] == 6 && !strncasecmp(arg[0], "SCRIPT", 6)) {
        snprintf(out, sizeof(out), "$40\r\n%040u\r\n", (*loads)++ % 6);
    } else if (alen[0] == 7 && !strncasecmp(arg[0], "EVALSHA", 7)) {
        const char *err = __atomic_load_n(&f->err, __ATOMIC_ACQUIRE);
        unsigned script = (unsigned)atoi(arg[1]);
        if (err) {
            snprintf(out, sizeof(out), "%s", err);
        } else if (script == 1 || script == 2) {
            /* batched acquire (script 1: two keys a name; fence 1 each) or
             * renew (script 2: one 1 per key) */
            int keys = atoi(arg[2]) / (script == 1 ? 2 : 1);
            int o = snprintf(out, sizeof(out), "*%d\r\n", keys);
            for (int k = 0; k < keys && o < (int)sizeof(out) - 8; k++)
                o += snprintf(out + o, sizeof(out) - (size_t)o, ":1\r\n");
        } else {
            snprintf(out, sizeof(out), ":1\r\n");
        }
    } else {
        snprintf(out, sizeof(out), "+OK\r\n");
    }
    write_all(fd, out, strlen(out));
}

static void *fake_serve(void *arg)
{
    struct fake_redis *f = arg;
    static char buf[1 << 20];
    for (;;) {
        int fd = accept(f->peer.listen_fd, NULL, NULL);
        if (fd < 0)
            return NULL;
        __atomic_add_fetch(&f->conns, 1, __ATOMIC_RELAXED);
        size_t len = 0;
        unsigned loads = 0;
        for (;;) {
            ssize_t n = read(fd, buf + len, sizeof(buf) - len);
            if (n <= 0)
                break;
            len += (size_t)n;
            const char *a[3] = {0};
            size_t al[3] = {0};
            size_t used;
            while ((used = parse_cmd(buf, len, a, al)) > 0) {
                fake_answer(f, fd, a, al, &loads);
                memmove(buf, buf + used, len - used);
                len -= used;
            }
        }
        close(fd);
    }
}

static const char *const not_now[] = {
    "-LOADING Redis is loading the dataset in memory\r\n",
    "-BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSCRIPT.\r\n",
    "-MASTERDOWN Link with MASTER is down and replica-serve-stale-data is set to 'no'.\r\n",
    "-TRYAGAIN Multiple keys request during rehashing of slot\r\n",
    "-CLUSTERDOWN The cluster is down\r\n",
};

TEST(not_now_errors_fail_the_request_with_unavail_and_are_retried)
{
    struct fake_redis f = {0};
    CHECK_OK(peer_start(&f.peer, fake_serve, &f));
    for (size_t k = 0; k < sizeof(not_now) / sizeof(not_now[0]); k++) {
        rec_setup();
        errs[0] = '\0';
        char word[16];
        sscanf(not_now[k] + 1, "%15s", word);
        int conns0 = __atomic_load_n(&f.conns, __ATOMIC_RELAXED);
        fake_set_err(&f, not_now[k]);
        struct lr_manager *m = mgr(uri_port("127.0.0.1", ntohs(f.peer.addr.sin_port)), 1200, 0);
        CHECK(m);
        struct lr_lease l;
        CHECK_OK(lr_lease_init(m, &l, "nn", NULL));
        /* acquire: refused "not now", retried, not given up */
        CHECK_OK(lr_lease_acquire(&l, 3000));
        run_until(0, 400);
        CHECK_EQ(rec_count(EV_ACQ, NULL) + rec_count(EV_ACQFAIL, NULL), 0);
        CHECK_ERR(lr_lease_last_error(&l), LR_EUNAVAIL);
        CHECK_ERR(lr_manager_last_error(m, NULL, 0), LR_EUNAVAIL);
        CHECK(last_error_has(m, word));
        fake_set_err(&f, NULL);
        run_until(EV_ACQ, 2000);
        CHECK_EQ(lr_lease_state(&l), LR_LEASE_HELD);
        /* renew: jeopardy with LR_EUNAVAIL, and held on once it passes */
        fake_set_err(&f, not_now[k]);
        run_until(EV_JEOP, 1200);
        CHECK_EQ(rec_count(EV_JEOP, &l), 1);
        CHECK_ERR(rec_first(EV_JEOP, &l)->status, LR_EUNAVAIL);
        fake_set_err(&f, NULL);
        run_until(0, 600);
        CHECK_EQ(rec_count(EV_LOST, NULL), 0);
        CHECK_EQ(lr_lease_state(&l), LR_LEASE_HELD);
        /* the connection stayed: "not now" is no reason to reconnect */
        CHECK_EQ(__atomic_load_n(&f.conns, __ATOMIC_RELAXED) - conns0, 1);
        lr_lease_deinit(&l);
        close_mgr(m);
    }
    peer_stop(&f.peer);
}

TEST(moved_on_a_standalone_connection_reconnects)
{
    rec_setup();
    errs[0] = '\0';
    struct fake_redis f = {0};
    CHECK_OK(peer_start(&f.peer, fake_serve, &f));
    struct lr_manager *m = mgr(uri_port("127.0.0.1", ntohs(f.peer.addr.sin_port)), 1200, 0);
    CHECK(m);
    struct lr_lease l;
    CHECK_OK(lr_lease_init(m, &l, "mv", NULL));
    CHECK_OK(lr_lease_acquire(&l, 3000));
    run_until(EV_ACQ, 1000);
    CHECK_EQ(lr_lease_state(&l), LR_LEASE_HELD);
    fake_set_err(&f, "-MOVED 3999 127.0.0.1:6381\r\n");
    run_until(EV_JEOP, 1200);
    /* what was in flight is ambiguous, as for a dropped connection */
    CHECK_ERR(rec_first(EV_JEOP, &l)->status, -ECONNRESET);
    CHECK(strstr(errs, "MOVED 3999 127.0.0.1:6381; reconnecting"));
    fake_set_err(&f, NULL);
    run_until(0, 600);
    CHECK(__atomic_load_n(&f.conns, __ATOMIC_RELAXED) >= 2);
    CHECK_EQ(rec_count(EV_LOST, NULL), 0);
    CHECK_EQ(lr_lease_state(&l), LR_LEASE_HELD);
    lr_lease_deinit(&l);
    close_mgr(m);
    peer_stop(&f.peer);
}

TEST(out_of_memory_refuses_an_acquire_with_estore)
{
    rec_setup();
    errs[0] = '\0';
    struct redis_server s;
    const char *const small[] = {"--maxmemory", "2mb", "--maxmemory-policy", "noeviction", NULL};
    CHECK_OK(redis_server_start(&s, small));
    struct lr_manager *m = mgr(uri_port("127.0.0.1", s.port), 1200, 0);
    CHECK(m);
    struct lr_lease held, late;
    CHECK_OK(lr_lease_init(m, &held, "before", NULL));
    CHECK_OK(lr_lease_init(m, &late, "after", NULL));
    CHECK_OK(lr_lease_acquire(&held, 2000));
    run_until(EV_ACQ, 2000);
    CHECK_EQ(lr_lease_state(&held), LR_LEASE_HELD);
    /* A script's writes may run past maxmemory: one fills the server up. */
    char out[256];
    const char *fill[] = {"EVAL", "for i = 1, 40000 do redis.call('SET', 'fill' .. i, "
                          "string.rep('v', 64)) end return 1", "0", NULL};
    CHECK_OK(redis_cli(&s, out, sizeof(out), fill));
    const char *probe[] = {"SET", "probe", "x", NULL};
    CHECK_OK(redis_cli(&s, out, sizeof(out), probe));
    CHECK(!strncmp(out, "OOM", 3));
    uint64_t t0 = mono_ns();
    CHECK_OK(lr_lease_acquire(&late, 5000));
    run_until(EV_ACQFAIL, 6000);
    /* definite: given up at once, not retried until the deadline */
    CHECK_ERR(rec_first(EV_ACQFAIL, &late)->status, LR_ESTORE);
    CHECK(mono_ns() - t0 < 1000000000u);
    CHECK_ERR(lr_manager_last_error(m, NULL, 0), LR_ESTORE);
    CHECK(last_error_has(m, "OOM command not allowed"));
    /* renewing (PEXPIRE) is still allowed: the held lease holds on */
    run_until(0, 1000);
    CHECK_EQ(lr_lease_state(&held), LR_LEASE_HELD);
    CHECK_EQ(rec_count(EV_LOST, NULL), 0);
    lr_lease_deinit(&held);
    lr_lease_deinit(&late);
    close_mgr(m);
    redis_server_destroy(&s);
}

/* ---- name resolution ---- */

/* @u names a host that does not resolve: lr_manager_new returns at once,
 * the acquire ends LR_EUNAVAIL, and the last error is @want. */
static void unresolvable(const char *u, uint32_t ttl, const char *want)
{
    rec_setup();
    errs[0] = '\0';
    uint64_t t0 = mono_ns();
    struct lr_manager *m = mgr(u, ttl, 0);
    uint64_t took = mono_ns() - t0;
    CHECK(m);
    CHECK(took < 50000000u);
    struct lr_lease l;
    CHECK_OK(lr_lease_init(m, &l, "nr", NULL));
    CHECK_OK(lr_lease_acquire(&l, 1000));
    run_until(EV_ACQFAIL, 3000);
    CHECK(rec_first(EV_ACQFAIL, &l));
    CHECK_ERR(rec_first(EV_ACQFAIL, &l)->status, LR_EUNAVAIL);
    CHECK(lr_manager_last_error(m, NULL, 0) < 0);
    CHECK(last_error_has(m, want));
    lr_lease_deinit(&l);
    close_mgr(m);
}

TEST(unresolvable_host_is_a_store_error_not_a_creation_error)
{
    unresolvable("redis://no-such-host.invalid:6379", 1200,
                 "redis no-such-host.invalid:6379: name not resolved");
}

/* The Azure Blob backend uses the same resolver. */
TEST(azblob_unresolvable_host_is_a_store_error_too)
{
    unresolvable("azblob://acct:a2V5@no-such-host.invalid:10000/box?tls=no", 15000,
                 "azblob no-such-host.invalid:10000: name not resolved");
}

TEST(connection_failures_are_told_with_their_text)
{
    rec_setup();
    errs[0] = '\0';
    /* nobody listens */
    struct sockaddr_in none;
    CHECK_OK(free_port_sockaddr(&none));
    struct lr_manager *m = mgr(uri_port("127.0.0.1", ntohs(none.sin_port)), 1200, 0);
    CHECK(m);
    run_until(0, 100);
    char want[96];
    snprintf(want, sizeof(want), "redis 127.0.0.1:%d: connection refused", ntohs(none.sin_port));
    CHECK(last_error_has(m, want));
    CHECK_ERR(lr_manager_last_error(m, NULL, 0), -ECONNREFUSED);
    close_mgr(m);
    /* a wrong password: the server's refusal is told, the password never */
    struct redis_server s;
    const char *const pw[] = {"--requirepass", "right-horse", NULL};
    CHECK_OK(redis_server_start(&s, pw));
    snprintf(uri, sizeof(uri), "redis://:wrong-staple@127.0.0.1:%d", s.port);
    errs[0] = '\0';
    m = mgr(uri, 1200, 0);
    CHECK(m);
    run_until(0, 200);
    CHECK(last_error_has(m, "auth refused: WRONGPASS"));
    CHECK_ERR(lr_manager_last_error(m, NULL, 0), LR_EAUTH);
    CHECK(!strstr(errs, "wrong-staple"));
    close_mgr(m);
    redis_server_destroy(&s);
}

static unsigned slow_ms;
static int slow_lookups;

/* A DNS that takes slow_ms, then answers 127.0.0.1. */
static int slow_getaddrinfo(const char *host, const char *port, const struct addrinfo *hints,
                            struct addrinfo **res)
{
    (void)host;
    __atomic_add_fetch(&slow_lookups, 1, __ATOMIC_RELAXED);
    usleep(slow_ms * 1000u);
    return getaddrinfo("127.0.0.1", port, hints, res);
}

static uint64_t tick_due_ms, tick_worst_ms;
static int ticks;

static void tick(struct lr_timer *t)
{
    uint64_t now = mono_ns() / 1000000u;
    if (now > tick_due_ms && now - tick_due_ms > tick_worst_ms)
        tick_worst_ms = now - tick_due_ms;
    ticks++;
    tick_due_ms = lr_loop_now_ms(t->loop) + 10;
    lr_timer_start(t, tick_due_ms);
}

TEST(a_slow_lookup_never_blocks_the_loop)
{
    rec_setup();
    errs[0] = '\0';
    struct redis_server s;
    CHECK_OK(redis_server_start(&s, NULL));
    slow_ms = 700;
    slow_lookups = 0;
    lr__resolve_set_hook(slow_getaddrinfo);
    uint64_t t0 = mono_ns();
    struct lr_manager *m = mgr(uri_port("slow.example", s.port), 1200, 0);
    CHECK(m);
    CHECK(mono_ns() - t0 < 50000000u);
    struct lr_lease l;
    CHECK_OK(lr_lease_init(m, &l, "slow", NULL));
    CHECK_OK(lr_lease_acquire(&l, 3000));
    struct lr_timer t;
    lr_timer_init(loop, &t, tick);
    lr_loop_update_time(loop);
    tick_worst_ms = 0;
    ticks = 0;
    tick_due_ms = lr_loop_now_ms(loop) + 10;
    lr_timer_start(&t, tick_due_ms);
    run_until(EV_ACQ, 3000);
    uint64_t waited = (mono_ns() - t0) / 1000000u;
    lr_timer_stop(&t);
    lr__resolve_set_hook(NULL);
    printf("     acquired after %llu ms; %d ticks of 10 ms meanwhile, worst %llu ms late\n",
           (unsigned long long)waited, ticks, (unsigned long long)tick_worst_ms);
    CHECK_EQ(lr_lease_state(&l), LR_LEASE_HELD);
    CHECK(waited >= slow_ms);           /* it did wait for the lookup... */
    CHECK(ticks >= (int)slow_ms / 20);   /* ...while the loop kept running */
    CHECK(tick_worst_ms < 40);
    CHECK_EQ(slow_lookups, 1);
    lr_lease_deinit(&l);
    close_mgr(m);
    CHECK_EQ(lr__resolve_live(), 0); /* the idle helper thread was joined */
    redis_server_destroy(&s);
}

static int close_done;

static void closed(struct lr_manager *m, void *arg)
{
    (void)arg;
    lr_manager_free(m);
    close_done = 1;
    lr_loop_stop(loop);
}

TEST(closing_during_a_lookup_frees_everything)
{
    rec_setup();
    slow_ms = 400;
    slow_lookups = 0;
    lr__resolve_set_hook(slow_getaddrinfo);
    struct lr_manager *m = mgr("redis://closing.example:6379", 1200, 0);
    CHECK(m);
    struct lr_lease l;
    CHECK_OK(lr_lease_init(m, &l, "cl", NULL));
    CHECK_OK(lr_lease_acquire(&l, 3000));
    run_until(0, 50);
    CHECK_EQ(__atomic_load_n(&slow_lookups, __ATOMIC_RELAXED), 1); /* the lookup runs */
    lr_lease_deinit(&l);
    close_done = 0;
    uint64_t t0 = mono_ns();
    lr_manager_close(m, closed, NULL);
    lr_loop_run(loop);
    CHECK(close_done);
    CHECK(mono_ns() - t0 < 100000000u); /* the close does not wait for DNS */
    lr__resolve_set_hook(NULL);
    /* the helper thread finishes its lookup, then frees what it shared */
    CHECK_EQ(lr__resolve_live(), 1);
    for (int i = 0; i < 100 && lr__resolve_live(); i++)
        usleep(10000);
    CHECK_EQ(lr__resolve_live(), 0);
}

TESTS(T(replica_promoted_mid_run_leases_keep_renewing),
      T(name_moved_to_the_promoted_replica_leases_keep_renewing),
      T(a_replica_that_stays_one_is_not_hammered), T(change_script_is_idempotent),
      T(not_now_errors_fail_the_request_with_unavail_and_are_retried),
      T(moved_on_a_standalone_connection_reconnects), T(out_of_memory_refuses_an_acquire_with_estore),
      T(unresolvable_host_is_a_store_error_not_a_creation_error),
      T(azblob_unresolvable_host_is_a_store_error_too),
      T(connection_failures_are_told_with_their_text),
      T(a_slow_lookup_never_blocks_the_loop), T(closing_during_a_lookup_frees_everything))
