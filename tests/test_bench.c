/* SPDX-License-Identifier: MIT */
/*
 * test_bench.c - the built `leasering bench` run as a program against a real
 * redis-server: its exit status, its stderr and the JSON fields not_acquired,
 * acquire_seconds, acquired and lost, when every lease is acquired (exit 0),
 * when some names are held by another holder (exit 3, "2 of 4 leases not
 * acquired"), and when a held lease is lost because the server stopped
 * answering for longer than the TTL (exit 3, lost 1). The conflicting holder
 * is a manager in this process, so the test knows nothing of the key layout.
 * Also the --latency-hist file and the fields renew_keys_per_request,
 * lost_in_hold and held_at_hold_end; and the CLI basics: --version, help on
 * stdout (exit 0) and bare "leasering" on stderr (exit 2), every URI scheme
 * in the usage, a missing flag named in the message, --opt=value.
 */
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <leasering.h>
#include "harness.h"
#include "proc.h"
#include "redis_server.h"

#ifndef LEASERING_TOOL
#define LEASERING_TOOL "tools/leasering"
#endif

static char out[64 * 1024];

/* A JSON number field of @json ("name":value), or -1 when it is missing. */
static double field(const char *json, const char *name)
{
    char key[64];
    snprintf(key, sizeof(key), "\"%s\":", name);
    const char *p = strstr(json, key);
    return p ? strtod(p + strlen(key), NULL) : -1;
}

/* Run the tool with @args after "bench --backend URI --json"; its stdout and
 * stderr land in out[]. Returns its exit status. */
static int run_bench(const struct redis_server *s, const char *const *args)
{
    char uri[64];
    snprintf(uri, sizeof(uri), "redis://127.0.0.1:%d", s->port);
    const char *argv[24] = {LEASERING_TOOL, "bench", "--backend", uri, "--json"};
    int n = 5;
    for (int i = 0; args[i] && n < 23; i++)
        argv[n++] = args[i];
    argv[n] = NULL;
    uint64_t t0 = proc_now_ms();
    int rc = run_capture(argv, NULL, out, sizeof(out), 60000);
    printf("---- leasering bench %s: exit %d after %llu ms ----\n%s", uri, rc,
           (unsigned long long)(proc_now_ms() - t0), out);
    return rc;
}

TEST(all_acquired_exits_0)
{
    struct redis_server s;
    CHECK_EQ(redis_server_start(&s, NULL), 0);
    const char *args[] = {"--leases", "20", "--ttl", "1000", "--seconds", "1", "--prefix",
                          "ok:", NULL};
    CHECK_EQ(run_bench(&s, args), 0);
    CHECK_EQ(field(out, "acquired"), 20);
    CHECK_EQ(field(out, "not_acquired"), 0);
    CHECK_EQ(field(out, "lost"), 0);
    double acq_s = field(out, "acquire_seconds");
    CHECK(acq_s >= 0 && acq_s < 10);
    CHECK(!strstr(out, "not acquired"));
    redis_server_destroy(&s);
}

/* ---- an in-process holder of some of the names ---- */

static struct lr_loop *loop;
static int acquired, released, count_target;

/* Stops the loop once count_target leases were acquired. */
static void on_acquired_count(struct lr_lease *l)
{
    (void)l;
    if (++acquired == count_target)
        lr_loop_stop(loop);
}

static void on_released(struct lr_lease *l, int status)
{
    (void)l;
    (void)status;
    if (++released == 2)
        lr_loop_stop(loop);
}

static void on_timeout(struct lr_timer *t)
{
    lr_loop_stop(t->loop);
}

static void on_closed(struct lr_manager *m, void *arg)
{
    (void)m;
    (void)arg;
    lr_loop_stop(loop);
}

static void run_for(struct lr_timer *t, uint64_t ms)
{
    lr_loop_update_time(loop);
    lr_timer_start(t, lr_loop_now_ms(loop) + ms);
    lr_loop_run(loop);
    lr_timer_stop(t);
}

/* An in-process holder of up to two names (TTL 60 s: no renewal is due
 * while the bench runs and this loop sleeps). */
struct rival {
    struct lr_manager *m;
    struct lr_lease held[2];
    struct lr_timer timeout;
    int n;
};

/* Make the loop and acquire @a (and @b unless NULL). Returns how many were
 * acquired, or -1. */
static int rival_hold(struct rival *r, const struct redis_server *s, const char *a,
                      const char *b)
{
    char uri[64];
    snprintf(uri, sizeof(uri), "redis://127.0.0.1:%d", s->port);
    static const struct lr_lease_cbs cbs = {.acquired = on_acquired_count,
                                            .released = on_released};
    struct lr_manager_opts o = {.ttl_ms = 60000, .cbs = &cbs};
    r->m = NULL;
    r->n = b ? 2 : 1;
    if (lr_loop_new(&loop, NULL) < 0 || lr_manager_new(&r->m, loop, uri, &o) < 0)
        return -1;
    lr_timer_init(loop, &r->timeout, on_timeout);
    for (int i = 0; i < r->n; i++)
        if (lr_lease_init(r->m, &r->held[i], i ? b : a, NULL) < 0 ||
            lr_lease_acquire(&r->held[i], 5000) < 0)
            return -1;
    acquired = released = 0;
    count_target = r->n;
    run_for(&r->timeout, 10000);
    return acquired;
}

/* Release what the rival holds, close, free. Returns how many releases
 * were answered. */
static int rival_free(struct rival *r)
{
    released = 0;
    for (int i = 0; i < r->n; i++)
        lr_lease_release(&r->held[i]);
    run_for(&r->timeout, 5000);
    int n = released;
    lr_manager_close(r->m, on_closed, NULL);
    run_for(&r->timeout, 5000);
    for (int i = 0; i < r->n; i++)
        lr_lease_deinit(&r->held[i]);
    lr_manager_free(r->m);
    lr_loop_free(loop);
    return n;
}

TEST(conflicts_exit_3)
{
    struct redis_server s;
    CHECK_EQ(redis_server_start(&s, NULL), 0);
    struct rival r;
    CHECK_EQ(rival_hold(&r, &s, "cf:1", "cf:3"), 2);

    const char *args[] = {"--leases", "4", "--ttl", "1000", "--seconds", "1",
                          "--prefix", "cf:", "--acquire-timeout", "300", NULL};
    CHECK_EQ(run_bench(&s, args), 3);
    CHECK_EQ(field(out, "acquired"), 2);
    CHECK_EQ(field(out, "not_acquired"), 2);
    CHECK_EQ(field(out, "conflicts"), 2);
    CHECK_EQ(field(out, "lost"), 0);
    /* the phase ends when the last retry that fits in the 300 ms has failed */
    double acq_s = field(out, "acquire_seconds");
    CHECK(acq_s > 0 && acq_s <= 0.3 + 5);
    CHECK(strstr(out, "leasering bench: 2 not acquired, 0 lost (of 4 leases; 2 refused as held by "
                      "someone else)\n"));
    CHECK_EQ(rival_free(&r), 2);
    redis_server_destroy(&s);
}

/* ---- the bench in the background ---- */

/* Start the tool with @args after "bench --backend URI --json", stdout and
 * stderr to a file in the server's dir. Returns its pid, or -1. */
static pid_t spawn_bench(const struct redis_server *s, const char *const *args)
{
    static char uri[64], outfile[256];
    snprintf(uri, sizeof(uri), "redis://127.0.0.1:%d", s->port);
    snprintf(outfile, sizeof(outfile), "%s/bench.out", s->dir);
    const char *argv[24] = {LEASERING_TOOL, "bench", "--backend", uri, "--json"};
    int n = 5;
    for (int i = 0; args[i] && n < 23; i++)
        argv[n++] = args[i];
    argv[n] = NULL;
    int fd = open(outfile, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return -1;
    pid_t pid = 0;
    int rc = proc_spawn(argv, NULL, -1, fd, fd, &pid);
    close(fd);
    return rc < 0 ? -1 : pid;
}

/* Wait up to @ms for the bench (@pid) to exit (SIGKILL after that) and read
 * what it wrote into out[]. Returns its exit status, or -1. */
static int collect_bench(const struct redis_server *s, pid_t pid, int ms)
{
    int status = 0, rc = -1;
    uint64_t t0 = proc_now_ms();
    while (proc_waitpid(pid, &status, WNOHANG) == 0 && proc_now_ms() - t0 < (uint64_t)ms)
        proc_sleep_ms(10);
    if (proc_waitpid(pid, &status, WNOHANG) == 0)
        proc_kill(&pid, NULL);
    else if (WIFEXITED(status))
        rc = WEXITSTATUS(status);
    char outfile[256];
    snprintf(outfile, sizeof(outfile), "%s/bench.out", s->dir);
    int fd = open(outfile, O_RDONLY | O_CLOEXEC);
    ssize_t n = fd < 0 ? 0 : read(fd, out, sizeof(out) - 1);
    if (fd >= 0)
        close(fd);
    out[n > 0 ? n : 0] = '\0';
    printf("---- leasering bench: exit %d after %llu ms ----\n%s", rc,
           (unsigned long long)(proc_now_ms() - t0), out);
    return rc;
}

/* Wait until @n lease hashes exist in @s (acquisitions write them
 * atomically; fence counters are strings), then give the replies time. */
static int await_held(const struct redis_server *s, int n)
{
    static const char *const count[] = {
        "EVAL",
        "local n = 0 for _, k in ipairs(redis.call('KEYS', '*')) do "
        "if redis.call('TYPE', k).ok == 'hash' then n = n + 1 end end return n",
        "0", NULL};
    char reply[64] = "0";
    uint64_t t0 = proc_now_ms();
    while (atoi(reply) < n && proc_now_ms() - t0 < 10000) {
        proc_sleep_ms(20);
        if (redis_cli(s, reply, sizeof(reply), count) != 0)
            return 0;
    }
    proc_sleep_ms(200);
    return atoi(reply) >= n;
}

/* The server stops answering (SIGSTOP) for three TTLs while the bench holds
 * its one lease: the lease is lost at its local deadline. */
TEST(lost_exits_3)
{
    struct redis_server s;
    CHECK_EQ(redis_server_start(&s, NULL), 0);
    const char *args[] = {"--leases", "1", "--ttl", "500", "--seconds", "4", "--prefix", "lost:",
                          NULL};
    pid_t pid = spawn_bench(&s, args);
    CHECK(pid > 0);
    CHECK(await_held(&s, 1));
    CHECK_OK(redis_server_pause(&s));
    proc_sleep_ms(1500);
    CHECK_OK(redis_server_resume(&s));
    CHECK_EQ(collect_bench(&s, pid, 30000), 3);
    CHECK_EQ(field(out, "acquired"), 1);
    CHECK_EQ(field(out, "not_acquired"), 0);
    CHECK_EQ(field(out, "lost"), 1);
    CHECK(strstr(out, "leasering bench: 0 not acquired, 1 lost (of 1 leases; 0 refused as held "
                      "by someone else)\n"));
    redis_server_destroy(&s);
}

/* ---- SIGINT / SIGTERM ---- */

/* Each of @n names PREFIX0..PREFIX(n-1) but @skip (-1: none) is acquired at
 * the first attempt by a manager of this process: the bench let go of them. */
static int all_free(const struct redis_server *s, const char *prefix, int n, int skip)
{
    char uri[64];
    snprintf(uri, sizeof(uri), "redis://127.0.0.1:%d", s->port);
    if (lr_loop_new(&loop, NULL) < 0)
        return -1;
    acquired = 0;
    static const struct lr_lease_cbs cbs = {.acquired = on_acquired_count};
    struct lr_manager_opts o = {.ttl_ms = 60000, .cbs = &cbs};
    struct lr_manager *m = NULL;
    struct lr_lease ls[32];
    struct lr_timer timeout;
    lr_timer_init(loop, &timeout, on_timeout);
    int want = 0;
    if (lr_manager_new(&m, loop, uri, &o) < 0)
        return -1;
    for (int i = 0; i < n && i < 32; i++) {
        char name[64];
        snprintf(name, sizeof(name), "%s%d", prefix, i);
        lr_lease_init(m, &ls[i], name, NULL);
        if (i != skip) {
            lr_lease_acquire(&ls[i], 0); /* one attempt */
            want++;
        }
    }
    count_target = want;
    run_for(&timeout, 5000);
    int got = acquired;
    lr_manager_close(m, on_closed, NULL);
    run_for(&timeout, 5000);
    for (int i = 0; i < n && i < 32; i++)
        lr_lease_deinit(&ls[i]);
    lr_manager_free(m);
    lr_loop_free(loop);
    printf("     %d of %d names acquired at once after the bench\n", got, want);
    return got == want;
}

TEST(sigint_releases_reports_and_exits_130)
{
    struct redis_server s;
    CHECK_EQ(redis_server_start(&s, NULL), 0);
    const char *args[] = {"--leases", "20", "--ttl", "1000", "--seconds", "60", "--prefix", "si:",
                          NULL};
    pid_t pid = spawn_bench(&s, args);
    CHECK(pid > 0);
    CHECK(await_held(&s, 20));
    uint64_t t0 = proc_now_ms();
    CHECK_EQ(kill(pid, SIGINT), 0);
    CHECK_EQ(collect_bench(&s, pid, 10000), 130);
    CHECK(proc_now_ms() - t0 < 5000); /* not the 60 s */
    /* released, not left to expire: a TTL of 1 s would hide it, so try at once */
    CHECK_EQ(all_free(&s, "si:", 20, -1), 1);
    CHECK_EQ(field(out, "acquired"), 20);
    CHECK_EQ(field(out, "held_at_hold_end"), 20);
    CHECK_EQ(field(out, "signal"), SIGINT);
    CHECK(strstr(out, "leasering bench: interrupted by SIGINT: every lease released (20 of 20 "
                      "answered)"));
    CHECK(!strstr(out, "not acquired,"));
    redis_server_destroy(&s);
}

/* SIGTERM while one name is held by someone else and the bench still tries
 * to acquire it (acquire timeout 30 s): exit 143 at once, the report says
 * what was acquired, and the names it held are free. */
TEST(sigterm_while_acquiring_exits_143)
{
    struct redis_server s;
    CHECK_EQ(redis_server_start(&s, NULL), 0);
    struct rival r;
    CHECK_EQ(rival_hold(&r, &s, "st:2", NULL), 1);

    const char *args[] = {"--leases", "4", "--ttl", "1000", "--seconds", "60", "--prefix", "st:",
                          "--acquire-timeout", "30000", NULL};
    pid_t pid = spawn_bench(&s, args);
    CHECK(pid > 0);
    CHECK(await_held(&s, 4)); /* three of the bench's and the rival's */
    uint64_t t0 = proc_now_ms();
    CHECK_EQ(kill(pid, SIGTERM), 0);
    CHECK_EQ(collect_bench(&s, pid, 10000), 143);
    CHECK(proc_now_ms() - t0 < 5000);
    CHECK_EQ(field(out, "acquired"), 3);
    CHECK_EQ(field(out, "not_acquired"), 1);
    CHECK_EQ(field(out, "signal"), SIGTERM);
    CHECK(strstr(out, "leasering bench: interrupted by SIGTERM"));
    CHECK(strstr(out, "leasering bench: 1 not acquired, 0 lost (of 4 leases; "));

    CHECK_EQ(rival_free(&r), 1);
    CHECK_EQ(all_free(&s, "st:", 4, 2), 1);
    redis_server_destroy(&s);
}

/* --latency-hist FILE: "upper_bound_us count" lines, bounds increasing,
 * counts summing to at least the hold's renewals (the file covers every
 * renewal since the first acquire); renew_keys_per_request within the batch
 * size. A file that cannot be written makes the run exit 1. */
TEST(latency_hist_and_batch_fields)
{
    struct redis_server s;
    CHECK_EQ(redis_server_start(&s, NULL), 0);
    char path[256];
    snprintf(path, sizeof(path), "%s/hist.txt", s.dir);
    const char *args[] = {"--leases", "50", "--ttl", "1000", "--seconds", "2", "--prefix",
                          "hist:", "--batch", "8", "--latency-hist", path, NULL};
    CHECK_EQ(run_bench(&s, args), 0);
    double renewals = field(out, "renewals");
    double keys = field(out, "renew_keys_per_request");
    CHECK(renewals > 0);
    CHECK(field(out, "renew_requests") > 0);
    CHECK(keys >= 1 && keys <= 8);
    CHECK_EQ(field(out, "lost_in_hold"), 0);
    CHECK_EQ(field(out, "held_at_hold_end"), 50);

    FILE *f = fopen(path, "r");
    CHECK(f != NULL);
    unsigned long long bound = 0, count = 0, prev = 0, total = 0;
    int lines = 0;
    while (fscanf(f, "%llu %llu", &bound, &count) == 2) {
        CHECK(lines == 0 || bound > prev);
        CHECK(count > 0);
        prev = bound;
        total += count;
        lines++;
    }
    CHECK(feof(f));
    fclose(f);
    CHECK(lines > 0);
    CHECK((double)total >= renewals);

    char bad[300];
    snprintf(bad, sizeof(bad), "%s/no-such-dir/hist.txt", s.dir);
    const char *args2[] = {"--leases", "5", "--ttl", "1000", "--seconds", "1", "--prefix",
                           "hist2:", "--latency-hist", bad, NULL};
    CHECK_EQ(run_bench(&s, args2), 1);
    CHECK(strstr(out, "--latency-hist"));
    redis_server_destroy(&s);
}

/* ---- CLI basics ---- */

/* Run the tool with @args (after its path); out[] gets its stdout only when
 * @stdout_only, else stdout and stderr. Returns its exit status. */
static int run_tool(const char *const *args, int stdout_only)
{
    const char *argv[16] = {LEASERING_TOOL};
    int n = 1;
    for (int i = 0; args[i] && n < 15; i++)
        argv[n++] = args[i];
    argv[n] = NULL;
    int rc;
    if (stdout_only) {
        int devnull = open("/dev/null", O_WRONLY | O_CLOEXEC);
        rc = proc_capture(argv, NULL, out, sizeof(out), 20000, devnull);
        close(devnull);
    } else {
        rc = run_capture(argv, NULL, out, sizeof(out), 20000);
    }
    printf("---- leasering %s%s: exit %d ----\n%s", args[0] ? args[0] : "",
           stdout_only ? " (stdout)" : "", rc, out);
    return rc;
}

static const char *const all_schemes[] = {
    "mem://",          "redis://",        "rediss://", "unix://", "redis+sentinel://",
    "rediss+sentinel://", "redis+cluster://", "azblob://", "cosmos://", "chaos+",
};

static void check_schemes(void)
{
    for (size_t i = 0; i < sizeof(all_schemes) / sizeof(all_schemes[0]); i++) {
        if (!strstr(out, all_schemes[i]))
            printf("scheme %s missing from the usage\n", all_schemes[i]);
        CHECK(strstr(out, all_schemes[i]) != NULL);
    }
}

TEST(version_help_and_bare_usage)
{
    const char *version[] = {"--version", NULL};
    CHECK_EQ(run_tool(version, 1), 0);
    CHECK(strcmp(out, "leasering " LR_VERSION_STRING "\n") == 0);

    const char *help[] = {"help", NULL};
    CHECK_EQ(run_tool(help, 1), 0);
    CHECK(strstr(out, "usage: leasering COMMAND") == out);
    CHECK(strstr(out, "bench") != NULL);
    check_schemes();

    const char *bench_help[] = {"bench", "--help", NULL};
    CHECK_EQ(run_tool(bench_help, 1), 0);
    CHECK(strstr(out, "usage: leasering bench") == out);
    check_schemes();

    const char *bare[] = {NULL};
    CHECK_EQ(run_tool(bare, 1), 2);
    CHECK_EQ(out[0], '\0'); /* nothing on stdout */
    CHECK_EQ(run_tool(bare, 0), 2);
    CHECK(strstr(out, "usage: leasering COMMAND") == out);
    check_schemes();

    const char *unknown[] = {"frobnicate", NULL};
    CHECK_EQ(run_tool(unknown, 0), 2);
    CHECK(strstr(out, "leasering: unknown command 'frobnicate'\n") == out);

    /* a bare Cosmos key holds '/': still never printed */
    const char *cosmos[] = {"bench", "--backend",
                            "cosmos://C2y6yDjf5/R+ob0N8A7Cgv30VRDJIWEHLM+4QDU5DE2nQ9nDuVTqobD4b8"
                            "mGGyPMbIZnqyMsEcaGQy67XIw/Jw==@127.0.0.1:1/db/c?tls=maybe",
                            "--leases", "1", "--ttl", "5000", "--seconds", "1", NULL};
    CHECK(run_tool(cosmos, 0) != 0);
    CHECK(strstr(out, "(cosmos://127.0.0.1:1/db/c)"));
    CHECK(strstr(out, "tls must be yes or no")); /* the reason, logged */
    CHECK(!strstr(out, "C2y6") && !strstr(out, "Jw=="));
}

TEST(missing_or_bad_flags_are_named)
{
    const char *no_seconds[] = {"bench", "--backend", "mem://x", "--leases", "1",
                                "--ttl", "1000", NULL};
    CHECK_EQ(run_tool(no_seconds, 0), 2);
    CHECK(strstr(out, "leasering bench: --seconds is required\n") == out);
    CHECK(!strstr(out, "--backend is required"));

    const char *nothing[] = {"bench", NULL};
    CHECK_EQ(run_tool(nothing, 0), 2);
    CHECK(strstr(out, "leasering bench: --backend is required\n") != NULL);
    CHECK(strstr(out, "leasering bench: --leases is required\n") != NULL);
    CHECK(strstr(out, "leasering bench: --ttl is required\n") != NULL);
    CHECK(strstr(out, "leasering bench: --seconds is required\n") != NULL);

    const char *no_value[] = {"bench", "--backend", "mem://x", "--ttl", NULL};
    CHECK_EQ(run_tool(no_value, 0), 2);
    CHECK(strstr(out, "leasering bench: --ttl needs a value\n") == out);

    const char *bad_number[] = {"bench", "--leases=ten", NULL};
    CHECK_EQ(run_tool(bad_number, 0), 2);
    CHECK(strstr(out, "leasering bench: --leases needs a whole number") == out);

    const char *fractions[][2] = {{"--renew-fraction=0", "0"}, {"--renew-fraction=0.95", ""},
                                  {"--renew-fraction=1/3", ""}, {"--renew-fraction=-0.2", ""}};
    for (size_t k = 0; k < sizeof(fractions) / sizeof(fractions[0]); k++) {
        const char *frac[] = {"bench", fractions[k][0], NULL};
        CHECK_EQ(run_tool(frac, 0), 2);
        CHECK(strstr(out, "leasering bench: --renew-fraction needs a number above 0 and at "
                          "most 0.9\n") == out);
    }
    const char *good_fraction[] = {"bench", "--backend=mem://f", "--leases=10", "--ttl=300",
                                   "--seconds=1", "--renew-fraction=0.5",
                                   "--request-timeout=100", "--json", NULL};
    CHECK_EQ(run_tool(good_fraction, 1), 0);
    const char *rate = strstr(out, "\"renewals_per_sec\":");
    CHECK(rate != NULL);
    double half = rate ? strtod(rate + 19, NULL) : 0;
    good_fraction[5] = "--renew-fraction=0.25";
    CHECK_EQ(run_tool(good_fraction, 1), 0);
    rate = strstr(out, "\"renewals_per_sec\":");
    CHECK(rate != NULL);
    double quarter = rate ? strtod(rate + 19, NULL) : 0;
    /* Renewing at a half of TTL 300 ms is ~6.7 a second per lease, at a
     * quarter ~13: the option must reach the manager. */
    printf("renewals/s at fraction 0.5: %.1f, at 0.25: %.1f\n", half, quarter);
    CHECK(half > 0 && quarter > half * 1.5);

    const char *flag_value[] = {"bench", "--json=yes", NULL};
    CHECK_EQ(run_tool(flag_value, 0), 2);
    CHECK(strstr(out, "leasering bench: --json takes no value\n") == out);

    const char *unknown[] = {"bench", "--leasez=3", NULL};
    CHECK_EQ(run_tool(unknown, 0), 2);
    CHECK(strstr(out, "leasering bench: unknown option '--leasez'") == out);
}

/* --opt=value everywhere --opt value works: the same run both ways, on a
 * real redis-server and on mem:// with --backend=URI. */
TEST(opt_equals_value)
{
    struct redis_server s;
    CHECK_EQ(redis_server_start(&s, NULL), 0);
    const char *args[] = {"--leases=7", "--ttl=1000", "--seconds=1", "--prefix=eq:",
                          "--batch=4", "--connections=2", "--acquire-timeout=5000", NULL};
    CHECK_EQ(run_bench(&s, args), 0);
    CHECK_EQ(field(out, "acquired"), 7);
    CHECK_EQ(field(out, "leases"), 7);
    CHECK_EQ(field(out, "ttl_ms"), 1000);
    CHECK_EQ(field(out, "batch"), 4);
    CHECK_EQ(field(out, "connections"), 2);
    redis_server_destroy(&s);

    const char *mem[] = {"bench", "--backend=mem://eq", "--leases=3", "--ttl=1000",
                         "--seconds=1", "--json", NULL};
    CHECK_EQ(run_tool(mem, 1), 0);
    CHECK(strstr(out, "\"backend\":\"mem\"") != NULL);
    CHECK_EQ(field(out, "acquired"), 3);
}

TESTS(T(all_acquired_exits_0), T(conflicts_exit_3), T(lost_exits_3),
      T(sigint_releases_reports_and_exits_130), T(sigterm_while_acquiring_exits_143),
      T(latency_hist_and_batch_fields), T(version_help_and_bare_usage),
      T(missing_or_bad_flags_are_named), T(opt_equals_value))
