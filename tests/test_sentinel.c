/* SPDX-License-Identifier: MIT */
/*
 * test_sentinel.c - redis+sentinel:// against real processes (issue 11): a
 * master, a replica and a sentinel (`redis-server sentinel.conf --sentinel`),
 * all on free loopback ports, started and stopped by pid.
 *
 * The master is killed with SIGKILL while 200 leases are held and a second
 * manager tries to take the same names all along: the leases go to jeopardy
 * and are renewed on the promoted replica (or reported lost at their
 * deadline), no name is ever held by two, no fence ever goes backwards, and
 * the move is followed through the +switch-master subscription. Also: a
 * sentinel that does not know the master name, every sentinel down
 * (LR_EUNAVAIL with a clear text), and the URI forms.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "certs.h"
#include "echo.h"
#include "harness.h"
#include "proc.h"
#include "recorder.h"
#include "redis_server.h"
#include <leasering.h>

static char errs[16384];  /* every store_error text, one per line */
static int badreply_told; /* store_error calls with LR_EBADREPLY */

static void on_store_error(struct lr_manager *m, int status, const char *text, void *arg)
{
    (void)m;
    (void)arg;
    badreply_told += status == LR_EBADREPLY;
    size_t n = strlen(errs);
    snprintf(errs + n, sizeof(errs) - n, "%s\n", text);
}

static struct lr_manager *mgr(const char *u, uint32_t ttl, uint32_t cap)
{
    struct lr_manager_opts o = {.ttl_ms = ttl,
                                .cbs = &rec_cbs,
                                .max_leases = cap ? cap : 16,
                                .margin_ms = 25,
                                .store_error = on_store_error};
    struct lr_manager *m = NULL;
    int rc = lr_manager_new(&m, loop, u, &o);
    if (rc < 0)
        fprintf(stderr, "lr_manager_new(%s): %s\n", u, lr_strerror(rc));
    return m;
}

/* ---- a sentinel process ---- */

struct sentinel {
    pid_t pid;
    int port;
    char dir[128];
    char conf[192];
    char log[192];
    char tls_ca[256]; /* a TLS-only sentinel: the CA its certificate is from; else "" */
};

static int sentinel_cli(const struct sentinel *s, char *out, size_t cap, const char *const *args);

static int sentinel_ping(void *ctx)
{
    struct sentinel *s = ctx;
    if (s->tls_ca[0]) { /* TLS only: redis-cli speaks it */
        static const char *const ping[] = {"PING", NULL};
        char out[64];
        return sentinel_cli(s, out, sizeof(out), ping) == 0 && !strcmp(out, "PONG");
    }
    int fd = proc_connect(s->port, 200);
    if (fd < 0)
        return 0;
    char buf[16] = {0};
    int ok = write(fd, "PING\r\n", 6) == 6 && read(fd, buf, sizeof(buf) - 1) > 0 &&
             !strncmp(buf, "+PONG", 5);
    close(fd);
    return ok;
}

/* Start a sentinel monitoring master @name at 127.0.0.1:@master_port with
 * @quorum sentinels needed to call it down; TLS-only (to clients and to the
 * servers it watches) with @tls's server certificate, or plain if NULL. */
static int sentinel_start_tq(struct sentinel *s, const char *name, int master_port, int quorum,
                             const struct certs *tls)
{
    memset(s, 0, sizeof(*s));
    int rc = proc_mkdtemp(s->dir, sizeof(s->dir), PROC_DIR_PREFIX "sentinel-");
    if (rc < 0)
        return rc;
    rc = proc_pick_port(&s->port);
    if (rc < 0)
        return rc;
    snprintf(s->conf, sizeof(s->conf), "%s/sentinel.conf", s->dir);
    snprintf(s->log, sizeof(s->log), "%s/sentinel.log", s->dir);
    FILE *f = fopen(s->conf, "w"); /* the sentinel rewrites it: it must be writable */
    if (!f)
        return -errno;
    if (tls) {
        snprintf(s->tls_ca, sizeof(s->tls_ca), "%s", tls->ca);
        fprintf(f,
                "port 0\ntls-port %d\ntls-cert-file %s\ntls-key-file %s\n"
                "tls-ca-cert-file %s\ntls-replication yes\ntls-auth-clients no\n",
                s->port, tls->server_cert, tls->server_key, tls->ca);
    }
    fprintf(f,
            "%s %d\nbind 127.0.0.1\ndir %s\nlogfile %s\n"
            "sentinel monitor %s 127.0.0.1 %d %d\n"
            "sentinel down-after-milliseconds %s 1000\n"
            "sentinel failover-timeout %s 3000\n",
            tls ? "# plain port off; was" : "port", s->port, s->dir, s->log, name, master_port,
            quorum, name, name);
    fclose(f);
    const char *argv[] = {"redis-server", s->conf, "--sentinel", NULL};
    off_t from = 0;
    rc = proc_spawn_logged(argv, s->dir, s->log, &from, &s->pid);
    if (rc == -ENOENT) {
        fprintf(stderr, "redis-server is not installed: apt-get install redis-server "
                        "(the sentinel runs as redis-server --sentinel)\n");
        return rc;
    }
    if (rc < 0)
        return rc;
    proc_track(s->dir, s->pid);
    struct proc_ready r = {.ready = sentinel_ping,
                           .ctx = s,
                           .in_use = "Address already in use",
                           .timeout_ms = 10000,
                           .poll_ms = 10};
    return proc_await_ready(&s->pid, s->dir, s->log, from, &r);
}

static int sentinel_start_q(struct sentinel *s, const char *name, int master_port, int quorum)
{
    return sentinel_start_tq(s, name, master_port, quorum, NULL);
}

static int sentinel_start(struct sentinel *s, const char *name, int master_port)
{
    return sentinel_start_q(s, name, master_port, 1);
}

static void sentinel_destroy(struct sentinel *s)
{
    if (s->pid)
        proc_stop(&s->pid, s->dir, 5000);
    if (s->dir[0])
        proc_rmtree(s->dir);
    s->dir[0] = 0;
}

/* redis-cli against the sentinel (a redis_server struct with its port). */
static int sentinel_cli(const struct sentinel *s, char *out, size_t cap, const char *const *args)
{
    struct redis_server fake;
    memset(&fake, 0, sizeof(fake));
    fake.port = s->port;
    snprintf(fake.tls_ca, sizeof(fake.tls_ca), "%s", s->tls_ca); /* redis_cli adds --tls */
    return redis_cli(&fake, out, cap, args);
}

static int wait_sentinel_sees_replica(const struct sentinel *s, const char *name, int port)
{
    char want[16];
    snprintf(want, sizeof(want), "%d", port);
    for (int i = 0; i < 200; i++) {
        char out[4096];
        const char *args[] = {"SENTINEL", "REPLICAS", name, NULL};
        if (sentinel_cli(s, out, sizeof(out), args) == 0 && strstr(out, want))
            return 0;
        usleep(25000);
    }
    return -ETIMEDOUT;
}

/* Wait until @s knows @others other sentinels of @name (they find each
 * other through hello messages on the master, every 2 s). */
static int wait_sentinel_sees_peers(const struct sentinel *s, const char *name, int others)
{
    for (int i = 0; i < 400; i++) {
        char out[8192];
        const char *args[] = {"SENTINEL", "SENTINELS", name, NULL};
        int seen = 0;
        if (sentinel_cli(s, out, sizeof(out), args) == 0)
            for (const char *p = out; (p = strstr(p, "\nrunid\n")); p++)
                seen++;
        if (seen >= others)
            return 0;
        usleep(25000);
    }
    return -ETIMEDOUT;
}

/* ---- the failover ---- */

#define N 200
static struct lr_lease held[N];  /* manager A: acquires once, keeps renewing */
static struct lr_lease rival[N]; /* manager B: tries to take the same names */
static uint64_t max_fence[N];
static int double_held;  /* a name held by both at once */
static int fence_back;   /* an acquisition whose fence did not exceed the last one */
static int renewed_late; /* a renewal accepted after its validity */
static uint64_t valid_before[N];

static void failover_hook(const struct rec *r)
{
    bool is_a = r->l >= held && r->l < held + N;
    bool is_b = r->l >= rival && r->l < rival + N;
    if (!is_a && !is_b)
        return;
    int i = (int)(is_a ? r->l - held : r->l - rival);
    struct lr_lease *other = is_a ? &rival[i] : &held[i];
    if (r->ev == EV_ACQ) {
        uint64_t f = lr_lease_fence(r->l);
        if (f <= max_fence[i])
            fence_back++;
        max_fence[i] = f;
    }
    if ((r->ev == EV_ACQ || r->ev == EV_RENEW) && lr_lease_remaining_ms(other) > 0)
        double_held++;
    if (is_a && r->ev == EV_RENEW && r->at_ns / 1000000u > valid_before[i])
        renewed_late++;
    if (is_a && (r->ev == EV_ACQ || r->ev == EV_RENEW))
        valid_before[i] = lr_lease_valid_until(r->l);
}

/* The rival tries every idle (or lost) name again, every 250 ms. */
static struct lr_timer rival_timer;
static int rival_tries;

static void rival_tick(struct lr_timer *t)
{
    for (int i = 0; i < N; i++) {
        enum lr_lease_state st = lr_lease_state(&rival[i]);
        if (st == LR_LEASE_IDLE || st == LR_LEASE_LOST) {
            if (lr_lease_try_acquire(&rival[i]) == 0)
                rival_tries++;
        }
    }
    lr_timer_start(t, lr_loop_now_ms(t->loop) + 250);
}

static const char *const fast_sync[] = {"--repl-diskless-sync-delay", "0", NULL};

/* A master @p, its replica @r (in sync) and a sentinel @s watching "lm",
 * which knows the replica. */
/* Wait until the replica has acknowledged every write the master has made
 * so far (ROLE on the master: "master", its offset, then per replica ip,
 * port, acknowledged offset). A WAIT sent through redis-cli would not do:
 * WAIT only waits for the writes of the connection that sends it, and that
 * one made none, so it answers at once whatever the replica's lag. */
static int wait_replica_caught_up(const struct redis_server *p)
{
    static const char *const role[] = {"ROLE", NULL};
    char out[512];
    long long want = -1;
    for (int i = 0; i < 300; i++) {
        if (redis_cli(p, out, sizeof(out), role) < 0)
            return -EIO;
        long long off = -1, acked = -1;
        char *line = strtok(out, "\n");
        for (int n = 0; line; n++, line = strtok(NULL, "\n")) {
            if (n == 1)
                off = atoll(line);
            else if (n == 4)
                acked = atoll(line);
        }
        if (want < 0)
            want = off;
        if (want >= 0 && acked >= want)
            return 0;
        usleep(20000);
    }
    return -ETIMEDOUT;
}

/* A master @p, its replica @r (in sync) and @ns sentinels @s watching "lm"
 * with quorum @quorum, each of which knows the replica and the others. */
static int start_group(struct redis_server *p, struct redis_server *r, struct sentinel *s,
                       int ns, int quorum, const struct certs *tls)
{
    /* with @tls every process is TLS-only, replication included */
    static const char *const tls_sync[] = {"--repl-diskless-sync-delay", "0",
                                           "--tls-replication", "yes", NULL};
    int rc = tls ? redis_server_start_tls(p, tls->server_cert, tls->server_key, tls->ca, tls_sync)
                 : redis_server_start(p, fast_sync);
    if (rc < 0)
        return rc;
    static char mport[16];
    snprintf(mport, sizeof(mport), "%d", p->port);
    const char *as_replica[] = {"--repl-diskless-sync-delay", "0", "--replicaof", "127.0.0.1",
                                mport, tls ? "--tls-replication" : NULL, "yes", NULL};
    rc = tls ? redis_server_start_tls(r, tls->server_cert, tls->server_key, tls->ca, as_replica)
             : redis_server_start(r, as_replica);
    if (rc == 0)
        rc = redis_replica_link_up(r);
    for (int i = 0; rc == 0 && i < ns; i++)
        rc = sentinel_start_tq(&s[i], "lm", p->port, quorum, tls);
    for (int i = 0; rc == 0 && i < ns; i++)
        rc = wait_sentinel_sees_replica(&s[i], "lm", r->port);
    for (int i = 0; rc == 0 && ns > 1 && i < ns; i++)
        rc = wait_sentinel_sees_peers(&s[i], "lm", ns - 1);
    return rc;
}

/* @ns sentinels with quorum @quorum; with @kill_first, the first sentinel
 * in the URI (the one the client is subscribed to) dies with the master. */
static void master_killed(int ns, int quorum, bool kill_first)
{
    rec_setup();
    errs[0] = 0;
    double_held = fence_back = renewed_late = rival_tries = 0;
    memset(max_fence, 0, sizeof(max_fence));
    struct redis_server p, r;
    struct sentinel ss[3];
    memset(ss, 0, sizeof(ss));
    CHECK_OK(start_group(&p, &r, ss, ns, quorum, NULL));

    char u[256];
    int n = snprintf(u, sizeof(u), "redis+sentinel://");
    for (int i = 0; i < ns; i++)
        n += snprintf(u + n, sizeof(u) - (size_t)n, "%s127.0.0.1:%d", i ? "," : "", ss[i].port);
    snprintf(u + n, sizeof(u) - (size_t)n, "/lm?prefix=sf:");
    struct lr_manager *a = mgr(u, 6000, N);
    struct lr_manager *b = mgr(u, 6000, N);
    CHECK(a && b);
    for (int i = 0; i < N; i++) {
        char name[16];
        snprintf(name, sizeof(name), "job%d", i);
        CHECK_OK(lr_lease_init(a, &held[i], name, NULL));
        CHECK_OK(lr_lease_init(b, &rival[i], name, NULL));
        CHECK_OK(lr_lease_acquire(&held[i], 3000));
    }
    rec_hook = failover_hook;
    for (int i = 0; i < 60 && lr_manager_stats(a)->held < N; i++)
        run_until(0, 50);
    CHECK_EQ(lr_manager_stats(a)->held, N);
    lr_timer_init(loop, &rival_timer, rival_tick);
    lr_timer_start(&rival_timer, lr_loop_now_ms(loop));
    run_until(0, 1000);
    CHECK(rival_tries >= N);
    CHECK_EQ(rec_count(EV_ACQ, NULL), N); /* the rival got nothing */

    /* every write so far is on the replica, then the master dies */
    char out[256];
    CHECK_OK(wait_replica_caught_up(&p));
    uint64_t reconnects0 = lr_manager_stats(a)->reconnects;
    CHECK_OK(redis_server_kill(&p));
    if (kill_first)
        CHECK_OK(proc_kill(&ss[0].pid, ss[0].dir));
    uint64_t t_kill = mono_ns();
    run_until(0, 9000);
    lr_timer_stop(&rival_timer);

    int jeop = rec_count(EV_JEOP, NULL), lost = 0, still = 0;
    for (int i = 0; i < N; i++) {
        lost += rec_count(EV_LOST, &held[i]) > 0;
        still += lr_lease_state(&held[i]) == LR_LEASE_HELD;
    }
    printf("     after the kill: %d jeopardy events, %d of %d held, %d lost, %d rival tries, "
           "%d rival acquisitions\n",
           jeop, still, N, lost, rival_tries, rec_count(EV_ACQ, NULL) - N);
    (void)t_kill;
    if (getenv("LR_TEST_VERBOSE"))
        fputs(errs, stdout);
    CHECK_EQ(double_held, 0);
    CHECK_EQ(fence_back, 0);
    CHECK_EQ(renewed_late, 0);
    CHECK(jeop > 0);           /* the kill was felt... */
    CHECK_EQ(still + lost, N); /* ...and each lease was renewed or reported lost */
    CHECK(still >= N / 2);     /* most survived: the failover took ~2 s of 6 */
    /* followed by the subscription (with the first sentinel dead, by the
     * next sentinel's answer or its subscription, whichever comes first) */
    CHECK(kill_first || strstr(errs, "+switch-master") != NULL);
    CHECK(lr_manager_stats(a)->reconnects > reconnects0);
    /* the promoted replica is the master now, and it has our leases */
    const char *role[] = {"ROLE", NULL};
    CHECK_OK(redis_cli(&r, out, sizeof(out), role));
    CHECK(!strncmp(out, "master", 6));
    rec_hook = NULL;
    for (int i = 0; i < N; i++) {
        lr_lease_deinit(&held[i]);
        lr_lease_deinit(&rival[i]);
    }
    close_mgr(a);
    close_mgr(b);
    for (int i = 0; i < ns; i++)
        sentinel_destroy(&ss[i]);
    redis_server_destroy(&r);
    redis_server_destroy(&p);
}

TEST(master_killed_leases_follow_the_promoted_replica_never_held_by_two)
{
    master_killed(1, 1, false);
}

/* The production shape: three sentinels, quorum 2; the sentinel the client
 * listens to dies with the master, so the failover is found by asking the
 * others after the connection fails. */
TEST(three_sentinels_quorum_two_master_and_first_sentinel_killed)
{
    master_killed(3, 2, true);
}

/* ?wait=1 behind the sentinels: an acquisition is reported only once the
 * replica has it. Healthy, every lease acquired is on the replica with its
 * fence at once; with the replica stalled, nothing is reported acquired, so
 * killing the master then (the replica would be promoted without those
 * writes) leaves no holder the new master does not know. */
TEST(with_wait_no_lease_is_held_that_the_replica_lacks)
{
    rec_setup();
    errs[0] = 0;
    struct redis_server p, r;
    struct sentinel s;
    CHECK_OK(start_group(&p, &r, &s, 1, 1, NULL));
    char u[256];
    snprintf(u, sizeof(u), "redis+sentinel://127.0.0.1:%d/lm?prefix=sw:&wait=1", s.port);
    struct lr_manager *a = mgr(u, 6000, N);
    CHECK(a);
    const int half = N / 2;
    for (int i = 0; i < N; i++) {
        char name[16];
        snprintf(name, sizeof(name), "w%d", i);
        CHECK_OK(lr_lease_init(a, &held[i], name, NULL));
    }
    for (int i = 0; i < half; i++)
        CHECK_OK(lr_lease_acquire(&held[i], 3000));
    for (int i = 0; i < 200 && lr_manager_stats(a)->held < (uint64_t)half; i++)
        run_until(0, 10);
    CHECK_EQ(lr_manager_stats(a)->held, half);
    for (int i = 0; i < half; i++) {
        char key[32], out[64];
        snprintf(key, sizeof(key), "sw:{w%d}", i);
        const char *hget[] = {"HGET", key, "fence", NULL};
        CHECK_OK(redis_cli(&r, out, sizeof(out), hget));
        CHECK_EQ(strtoull(out, NULL, 10), lr_lease_fence(&held[i]));
    }
    /* the replica stalls: the master applies the rest, WAIT holds them */
    CHECK_OK(redis_server_pause(&r));
    for (int i = half; i < N; i++)
        CHECK_OK(lr_lease_acquire(&held[i], 3000));
    run_until(0, 300);
    CHECK_OK(redis_server_kill(&p));
    CHECK_OK(redis_server_resume(&r));
    run_until(0, 100);
    CHECK_EQ(rec_count(EV_ACQ, NULL), half);
    CHECK_EQ(lr_manager_stats(a)->held, half);
    for (int i = 0; i < N; i++)
        lr_lease_deinit(&held[i]);
    close_mgr(a);
    sentinel_destroy(&s);
    redis_server_destroy(&r);
    redis_server_destroy(&p);
}

TEST(an_unknown_master_name_is_a_clear_error)
{
    rec_setup();
    errs[0] = 0;
    struct redis_server p;
    struct sentinel s;
    CHECK_OK(redis_server_start(&p, NULL));
    CHECK_OK(sentinel_start(&s, "lm", p.port));
    char u[256];
    snprintf(u, sizeof(u), "redis+sentinel://127.0.0.1:%d/nosuch", s.port);
    struct lr_manager *m = mgr(u, 2000, 0);
    CHECK(m);
    struct lr_lease l;
    CHECK_OK(lr_lease_init(m, &l, "x", NULL));
    CHECK_OK(lr_lease_acquire(&l, 1500));
    run_until(EV_ACQFAIL, 4000);
    CHECK_EQ(rec_count(EV_ACQFAIL, &l), 1);
    CHECK_EQ(rec_first(EV_ACQFAIL, &l)->status, LR_EUNAVAIL);
    CHECK(strstr(errs, "knows no master named \"nosuch\"") != NULL);
    lr_lease_deinit(&l);
    close_mgr(m);
    /* and the right name works through the same sentinel */
    snprintf(u, sizeof(u), "redis+sentinel://127.0.0.1:%d/lm", s.port);
    m = mgr(u, 2000, 0);
    CHECK(m);
    CHECK_OK(lr_lease_init(m, &l, "x", NULL));
    CHECK_OK(lr_lease_acquire(&l, 1500));
    run_until(EV_ACQ, 3000);
    CHECK_EQ(lr_lease_state(&l), LR_LEASE_HELD);
    CHECK_OK(rec_inspect(m, "x", 3000)); /* who holds it, on the master the sentinel names */
    CHECK_EQ(rec_insp.held, 1);
    CHECK(!strcmp(rec_insp.holder, lr_manager_identity(m)));
    CHECK_EQ(rec_insp.fence, lr_lease_fence(&l));
    lr_lease_deinit(&l);
    close_mgr(m);
    sentinel_destroy(&s);
    redis_server_destroy(&p);
}

TEST(every_sentinel_down_is_unavail_with_a_clear_text)
{
    rec_setup();
    errs[0] = 0;
    int p1, p2;
    CHECK_OK(proc_pick_port(&p1));
    CHECK_OK(proc_pick_port(&p2));
    char u[256];
    snprintf(u, sizeof(u), "redis+sentinel://127.0.0.1:%d,127.0.0.1:%d/lm", p1, p2);
    struct lr_manager *m = mgr(u, 2000, 0);
    CHECK(m);
    struct lr_lease l;
    CHECK_OK(lr_lease_init(m, &l, "x", NULL));
    CHECK_OK(lr_lease_acquire(&l, 1000));
    run_until(EV_ACQFAIL, 3000);
    CHECK_EQ(rec_count(EV_ACQFAIL, &l), 1);
    CHECK_EQ(rec_first(EV_ACQFAIL, &l)->status, LR_EUNAVAIL);
    CHECK(strstr(errs, "none of the 2 sentinels") != NULL);
    char want[64];
    snprintf(want, sizeof(want), "127.0.0.1:%d", p2); /* both were tried */
    CHECK(strstr(errs, want) != NULL);
    char text[256];
    lr_manager_last_error(m, text, sizeof(text));
    CHECK(strstr(text, "sentinel") != NULL);
    lr_lease_deinit(&l);
    close_mgr(m);
}

TEST(a_dead_first_sentinel_is_skipped)
{
    rec_setup();
    errs[0] = 0;
    struct redis_server p;
    struct sentinel s;
    CHECK_OK(redis_server_start(&p, NULL));
    CHECK_OK(sentinel_start(&s, "lm", p.port));
    int dead;
    CHECK_OK(proc_pick_port(&dead));
    char u[256];
    snprintf(u, sizeof(u), "redis+sentinel://127.0.0.1:%d,127.0.0.1:%d/lm?db=2&prefix=q:", dead,
             s.port);
    struct lr_manager *m = mgr(u, 2000, 0);
    CHECK(m);
    struct lr_lease l;
    CHECK_OK(lr_lease_init(m, &l, "y", NULL));
    CHECK_OK(lr_lease_acquire(&l, 2000));
    run_until(EV_ACQ, 3000);
    CHECK_EQ(lr_lease_state(&l), LR_LEASE_HELD);
    char out[64];
    const char *dbsize[] = {"-n", "2", "EXISTS", "q:{y}", NULL};
    CHECK_OK(redis_cli(&p, out, sizeof(out), dbsize));
    CHECK(!strcmp(out, "1")); /* ?db=2 and ?prefix= reach the master */
    lr_lease_deinit(&l);
    close_mgr(m);
    sentinel_destroy(&s);
    redis_server_destroy(&p);
}

/* ---- a fake sentinel: one canned answer per connection ---- */

static const char *canned; /* written after the first bytes of each connection */

static void *fake_sentinel(void *arg)
{
    struct tcp_peer *p = arg;
    for (;;) {
        int fd = accept(p->listen_fd, NULL, NULL);
        if (fd < 0)
            return NULL;
        struct timeval tv = {.tv_sec = 2};
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
        char buf[1024];
        if (read(fd, buf, sizeof(buf)) > 0 && write(fd, canned, strlen(canned)) > 0)
            while (read(fd, buf, sizeof(buf)) > 0)
                ; /* until the client closes */
        close(fd);
    }
}

static char answer[512];

/* The reply to GET-MASTER-ADDR-BY-NAME naming @port, the subscription's
 * confirmation, then @tail. */
static const char *addr_answer(int port, const char *tail)
{
    char p[8];
    int n = snprintf(p, sizeof(p), "%d", port);
    snprintf(answer, sizeof(answer),
             "*2\r\n$9\r\n127.0.0.1\r\n$%d\r\n%s\r\n"
             "*3\r\n$9\r\nsubscribe\r\n$14\r\n+switch-master\r\n:1\r\n%s",
             n, p, tail);
    return answer;
}

TEST(bad_sentinel_replies_are_ebadreply_never_a_crash)
{
    static const char *const bad[] = {
        "*2\r\n$3\r\nabc\r\n$4\r\n6379\r\n",                  /* not an ip */
        "*2\r\n$9\r\n127.0.0.1\r\n$5\r\n99999\r\n",           /* not a port */
        "*3\r\n$9\r\n127.0.0.1\r\n$4\r\n6379\r\n$1\r\nx\r\n", /* three elements */
        "*2\r\n:1\r\n:2\r\n",                                 /* integers */
        "*2\r\n*1\r\n:1\r\n$4\r\n6379\r\n",                   /* nested */
        "+OK\r\n",                                            /* a status */
        ":12\r\n",                                            /* an integer */
        "?garbage\r\n",                                       /* not RESP */
        "$-5\r\n",                                            /* malformed length */
    };
    struct tcp_peer fake;
    CHECK_OK(peer_start(&fake, fake_sentinel, &fake));
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        rec_setup();
        errs[0] = 0;
        badreply_told = 0;
        canned = bad[i];
        char u[128];
        snprintf(u, sizeof(u), "redis+sentinel://127.0.0.1:%d/lm", ntohs(fake.addr.sin_port));
        struct lr_manager *m = mgr(u, 2000, 0);
        CHECK(m);
        struct lr_lease l;
        CHECK_OK(lr_lease_init(m, &l, "x", NULL));
        CHECK_OK(lr_lease_acquire(&l, 600));
        run_until(EV_ACQFAIL, 3000);
        if (!badreply_told)
            fprintf(stderr, "case %zu: %s", i, errs);
        CHECK_EQ(rec_count(EV_ACQFAIL, &l), 1);
        CHECK_EQ(rec_first(EV_ACQFAIL, &l)->status, LR_EUNAVAIL);
        CHECK(badreply_told > 0);
        CHECK(strstr(errs, "unexpected reply") != NULL);
        lr_lease_deinit(&l);
        close_mgr(m);
    }
    peer_stop(&fake);
}

TEST(a_stale_answer_naming_a_replica_is_caught_by_role)
{
    rec_setup();
    errs[0] = 0;
    struct redis_server p, r;
    CHECK_OK(redis_server_start(&p, fast_sync));
    char mport[16];
    snprintf(mport, sizeof(mport), "%d", p.port);
    const char *as_replica[] = {
        "--repl-diskless-sync-delay", "0", "--replicaof", "127.0.0.1", mport, NULL};
    CHECK_OK(redis_server_start(&r, as_replica));
    struct tcp_peer fake;
    canned = addr_answer(r.port, ""); /* the sentinel says: the replica */
    CHECK_OK(peer_start(&fake, fake_sentinel, &fake));
    char u[128];
    snprintf(u, sizeof(u), "redis+sentinel://127.0.0.1:%d/lm", ntohs(fake.addr.sin_port));
    struct lr_manager *m = mgr(u, 2000, 0);
    CHECK(m);
    struct lr_lease l;
    CHECK_OK(lr_lease_init(m, &l, "x", NULL));
    CHECK_OK(lr_lease_acquire(&l, 800));
    run_until(EV_ACQFAIL, 3000);
    CHECK_EQ(rec_count(EV_ACQFAIL, &l), 1);
    CHECK(strstr(errs, "ROLE: not a master") != NULL);
    CHECK(strstr(errs, "READONLY") == NULL); /* caught before any write */
    lr_lease_deinit(&l);
    close_mgr(m);
    /* a garbled +switch-master is told, and does not move us */
    rec_setup();
    errs[0] = 0;
    badreply_told = 0;
    canned = addr_answer(p.port, "*3\r\n$7\r\nmessage\r\n$14\r\n+switch-master\r\n$5\r\nlm a \r\n");
    m = mgr(u, 2000, 0);
    CHECK(m);
    CHECK_OK(lr_lease_init(m, &l, "x", NULL));
    CHECK_OK(lr_lease_acquire(&l, 2000));
    run_until(EV_ACQ, 3000);
    CHECK_EQ(lr_lease_state(&l), LR_LEASE_HELD);
    run_until(0, 300);
    CHECK(strstr(errs, "+switch-master message is not 5 words") != NULL);
    CHECK(badreply_told > 0);
    CHECK_EQ(lr_lease_state(&l), LR_LEASE_HELD);
    lr_lease_deinit(&l);
    close_mgr(m);
    peer_stop(&fake);
    redis_server_destroy(&r);
    redis_server_destroy(&p);
}

/* @mode: "" (per-lease keys) or "&mode=session" (one session key per TTL,
 * lease hashes without a TTL: the session must follow the failover too). */
/* With @tls, everything is TLS-only and the URI is rediss+sentinel://;
 * @then (if any) runs with the group still up, after the failover. */
typedef void after_fn(struct redis_server *p, struct redis_server *r, struct sentinel *s,
                      const struct certs *tls);

static void manual_failover(const char *mode, const struct certs *tls, after_fn *then)
{
    struct redis_server p, r;
    struct sentinel s;
    CHECK_OK(start_group(&p, &r, &s, 1, 1, tls));
    char u[512];
    snprintf(u, sizeof(u), "%s://127.0.0.1:%d/lm?prefix=mf:%s%s%s",
             tls ? "rediss+sentinel" : "redis+sentinel", s.port, mode, tls ? "&cacert=" : "",
             tls ? tls->ca : "");
    struct lr_manager *m = mgr(u, 10000, 64);
    CHECK(m);
    static struct lr_lease ls[50];
    for (int i = 0; i < 50; i++) {
        char name[16];
        snprintf(name, sizeof(name), "m%d", i);
        CHECK_OK(lr_lease_init(m, &ls[i], name, NULL));
        CHECK_OK(lr_lease_acquire(&ls[i], 3000));
    }
    for (int i = 0; i < 60 && lr_manager_stats(m)->held < 50; i++)
        run_until(0, 50);
    CHECK_EQ(lr_manager_stats(m)->held, 50);
    /* both servers stay up: only the subscription says the master moved */
    char out[256];
    CHECK_OK(wait_replica_caught_up(&p)); /* the replica has every lease */
    const char *fo[] = {"SENTINEL", "FAILOVER", "lm", NULL};
    CHECK_OK(sentinel_cli(&s, out, sizeof(out), fo));
    CHECK(!strcmp(out, "OK"));
    uint64_t r0 = lr_manager_stats(m)->renewals;
    for (int i = 0; i < 100 && !strstr(errs, "+switch-master"); i++)
        run_until(0, 50);
    CHECK(strstr(errs, "+switch-master") != NULL);
    run_until(0, 7000); /* two renewal periods on the new master */
    if (getenv("LR_TEST_VERBOSE"))
        fputs(errs, stdout);
    if (rec_first(EV_LOST, NULL)) {
        const char *dbg[] = {"HGETALL", "mf:{m0}", NULL};
        redis_cli(&r, out, sizeof(out), dbg);
        printf("     r (port %d) has: %s\n", r.port, out);
        redis_cli(&p, out, sizeof(out), dbg);
        printf("     p (port %d) has: %s\n", p.port, out);
        const char *rl[] = {"ROLE", NULL};
        redis_cli(&p, out, sizeof(out), rl);
        printf("     p role: %s\n", out);
        redis_cli(&r, out, sizeof(out), rl);
        printf("     r role: %s\n", out);
        const struct rec *e = rec_first(EV_LOST, NULL);
        printf("     lost %d ms ago\n", (int)((mono_ns() - e->at_ns) / 1000000));
    }
    if (rec_first(EV_LOST, NULL))
        printf("     lost: %s after %d renewals\n", lr_strerror(rec_first(EV_LOST, NULL)->status),
               (int)(lr_manager_stats(m)->renewals - r0));
    CHECK_EQ(rec_count(EV_LOST, NULL), 0);
    CHECK_EQ(lr_manager_stats(m)->held, 50);
    CHECK(lr_manager_stats(m)->renewals - r0 >= 50);
    const char *role[] = {"ROLE", NULL};
    CHECK_OK(redis_cli(&r, out, sizeof(out), role));
    CHECK(!strncmp(out, "master", 6));
    /* the keys are renewed on the new master */
    const char *owner[] = {"HGET", "mf:{m0}", "owner", NULL};
    CHECK_OK(redis_cli(&r, out, sizeof(out), owner));
    CHECK_EQ(strlen(out), 32);
    for (int i = 0; i < 50; i++)
        lr_lease_deinit(&ls[i]);
    close_mgr(m);
    if (then)
        then(&p, &r, &s, tls);
    sentinel_destroy(&s);
    redis_server_destroy(&r);
    redis_server_destroy(&p);
}

TEST(a_manual_failover_is_followed_through_the_subscription)
{
    manual_failover("", NULL, NULL);
}

TEST(session_mode_follows_a_manual_failover)
{
    manual_failover("&mode=session", NULL, NULL);
}

/* rediss+sentinel:// where everything is TLS-only: the master, its replica
 * and the sentinel. The client speaks TLS to the sentinel (checking its
 * certificate against the host in the URI) and to the master it names, and
 * follows a failover; with sentinel_tls=no it cannot reach the sentinel and
 * says so. */
static void tls_refusals(struct redis_server *p, struct redis_server *r, struct sentinel *sp,
                         const struct certs *tls)
{
    (void)p;
    char u[512];
    struct lr_manager *m;
    /* plain TCP to a TLS-only sentinel: no answer, said */
    errs[0] = 0;
    snprintf(u, sizeof(u), "rediss+sentinel://127.0.0.1:%d/lm?cacert=%s&sentinel_tls=no", sp->port,
             tls->ca);
    m = mgr(u, 2000, 0);
    CHECK(m);
    struct lr_lease l;
    CHECK_OK(lr_lease_init(m, &l, "x", NULL));
    CHECK_OK(lr_lease_acquire(&l, 1500));
    run_until(EV_ACQFAIL, 6000);
    CHECK_EQ(rec_count(EV_ACQFAIL, &l), 1);
    CHECK_EQ(rec_first(EV_ACQFAIL, &l)->status, LR_EUNAVAIL);
    CHECK(strstr(errs, "redis sentinel") != NULL);
    lr_lease_deinit(&l);
    close_mgr(m);

    /* each sentinel's certificate is checked against its own host: the
     * name "localhost" is in the certificate, fine; a second sentinel whose
     * certificate names only wrong.example is refused (TLS, said), and the
     * next sentinel of the list answers */
    struct certs wrong = *tls;
    snprintf(wrong.server_cert, sizeof(wrong.server_cert), "%s", tls->wrong_cert);
    snprintf(wrong.server_key, sizeof(wrong.server_key), "%s", tls->wrong_key);
    struct sentinel s2;
    CHECK_OK(sentinel_start_tq(&s2, "lm", r->port, 1, &wrong));
    errs[0] = 0;
    snprintf(u, sizeof(u), "rediss+sentinel://127.0.0.1:%d,localhost:%d/lm?cacert=%s", s2.port,
             sp->port, tls->ca);
    m = mgr(u, 2000, 0);
    CHECK(m);
    CHECK_OK(lr_lease_init(m, &l, "y", NULL));
    CHECK_OK(lr_lease_acquire(&l, 3000));
    run_until(EV_ACQ, 4000);
    if (getenv("LR_TEST_VERBOSE"))
        fputs(errs, stdout);
    CHECK_EQ(lr_lease_state(&l), LR_LEASE_HELD);
    CHECK(strstr(errs, "TLS") != NULL);
    lr_lease_deinit(&l);
    close_mgr(m);

    sentinel_destroy(&s2);
}

/* rediss+sentinel:// where everything is TLS-only: the master, its replica
 * and the sentinel. The client speaks TLS to the sentinel (checking its
 * certificate against the host in the URI) and to the master it names, and
 * follows a failover over the TLS subscription; then tls_refusals. */
TEST(tls_sentinel_and_tls_servers)
{
    struct certs c;
    CHECK_OK(certs_make(&c, NULL));
    manual_failover("", &c, tls_refusals);
    certs_destroy(&c);
}

TEST(uri_forms)
{
    rec_setup();
    struct lr_manager *m = mgr("redis+sentinel://127.0.0.1:1,[::1]:2,localhost/m?db=3", 2000, 0);
    CHECK(m);
    CHECK(!strcmp(lr_manager_backend(m), "redis+sentinel"));
    close_mgr(m);
    m = mgr("rediss+sentinel://u:p@127.0.0.1:1/m?sentinel_password=s&insecure_skip_verify=yes",
            2000, 0);
    CHECK(m);
    close_mgr(m);
    struct lr_manager_opts o = {.ttl_ms = 2000};
    struct lr_manager *bad = NULL;
    CHECK_ERR(lr_manager_new(&bad, loop, "redis+sentinel://127.0.0.1:1/", &o), -EINVAL);
    CHECK_ERR(lr_manager_new(&bad, loop, "redis+sentinel://127.0.0.1:1/m?bogus=1", &o), -EINVAL);
    CHECK_ERR(lr_manager_new(&bad, loop, "redis+sentinel://127.0.0.1:1,/m", &o), -EINVAL);
    CHECK_ERR(lr_manager_new(&bad, loop, "redis+sentinel://127.0.0.1:1/m?db=x", &o), -EINVAL);
    CHECK_ERR(lr_manager_new(&bad, loop, "redis+sentinel://h/m?sentinel_user=u", &o), -EINVAL);
    CHECK_ERR(lr_manager_new(&bad, loop, "redis+sentinel://127.0.0.1:1/m?tls_name=x", &o), -EINVAL);
    CHECK_ERR(lr_manager_new(&bad, loop, "redis://127.0.0.1:1/0?db=1", &o), -EINVAL);
    /* sentinel_tls: rediss+sentinel only, yes or no */
    CHECK_ERR(lr_manager_new(&bad, loop, "redis+sentinel://127.0.0.1:1/m?sentinel_tls=yes", &o),
              -EINVAL);
    CHECK_ERR(lr_manager_new(&bad, loop, "rediss+sentinel://127.0.0.1:1/m?sentinel_tls=1", &o),
              -EINVAL);
    CHECK_ERR(lr_manager_new(&bad, loop, "rediss://127.0.0.1:1?sentinel_tls=no", &o), -EINVAL);
}

TESTS(T(uri_forms), T(every_sentinel_down_is_unavail_with_a_clear_text),
      T(bad_sentinel_replies_are_ebadreply_never_a_crash),
      T(a_stale_answer_naming_a_replica_is_caught_by_role),
      T(an_unknown_master_name_is_a_clear_error), T(a_dead_first_sentinel_is_skipped),
      T(a_manual_failover_is_followed_through_the_subscription),
      T(session_mode_follows_a_manual_failover), T(tls_sentinel_and_tls_servers),
      T(master_killed_leases_follow_the_promoted_replica_never_held_by_two),
      T(three_sentinels_quorum_two_master_and_first_sentinel_killed),
      T(with_wait_no_lease_is_held_that_the_replica_lacks))
