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
static int acquired, released;

static void on_acquired(struct lr_lease *l)
{
    (void)l;
    if (++acquired == 2)
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

TEST(conflicts_exit_3)
{
    struct redis_server s;
    CHECK_EQ(redis_server_start(&s, NULL), 0);
    char uri[64];
    snprintf(uri, sizeof(uri), "redis://127.0.0.1:%d", s.port);
    CHECK_OK(lr_loop_new(&loop, NULL));
    static const struct lr_lease_cbs cbs = {.acquired = on_acquired, .released = on_released};
    /* TTL 60 s: no renewal is due while the bench runs and this loop sleeps */
    struct lr_manager_opts o = {.ttl_ms = 60000, .cbs = &cbs};
    struct lr_manager *m = NULL;
    CHECK_OK(lr_manager_new(&m, loop, uri, &o));
    struct lr_lease held[2];
    struct lr_timer timeout;
    lr_timer_init(loop, &timeout, on_timeout);
    CHECK_OK(lr_lease_init(m, &held[0], "cf:1", NULL));
    CHECK_OK(lr_lease_init(m, &held[1], "cf:3", NULL));
    CHECK_OK(lr_lease_acquire(&held[0], 5000));
    CHECK_OK(lr_lease_acquire(&held[1], 5000));
    run_for(&timeout, 10000);
    CHECK_EQ(acquired, 2);

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
    CHECK(strstr(out, "leasering bench: 2 of 4 leases not acquired (2 held by someone else)\n"));
    CHECK(!strstr(out, "lost\n"));

    lr_lease_release(&held[0]);
    lr_lease_release(&held[1]);
    run_for(&timeout, 5000);
    CHECK_EQ(released, 2);
    lr_manager_close(m, on_closed, NULL);
    run_for(&timeout, 5000);
    lr_lease_deinit(&held[0]);
    lr_lease_deinit(&held[1]);
    lr_manager_free(m);
    lr_loop_free(loop);
    redis_server_destroy(&s);
}

/* The server stops answering (SIGSTOP) for three TTLs while the bench holds
 * its one lease: the lease is lost at its local deadline. */
TEST(lost_exits_3)
{
    struct redis_server s;
    CHECK_EQ(redis_server_start(&s, NULL), 0);
    char uri[64], outfile[256];
    snprintf(uri, sizeof(uri), "redis://127.0.0.1:%d", s.port);
    snprintf(outfile, sizeof(outfile), "%s/bench.out", s.dir);
    int fd = open(outfile, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    CHECK(fd >= 0);
    const char *argv[] = {LEASERING_TOOL, "bench", "--backend", uri, "--json", "--leases", "1",
                          "--ttl", "500", "--seconds", "4", "--prefix", "lost:", NULL};
    pid_t pid = 0;
    CHECK_OK(proc_spawn(argv, NULL, -1, fd, fd, &pid));
    close(fd);
    /* held once a key exists (the acquire script writes atomically), and the
     * reply has had time to arrive */
    char reply[64] = "0";
    uint64_t t0 = proc_now_ms();
    const char *dbsize[] = {"DBSIZE", NULL};
    while (atoi(reply) < 1 && proc_now_ms() - t0 < 10000) {
        proc_sleep_ms(20);
        CHECK_EQ(redis_cli(&s, reply, sizeof(reply), dbsize), 0);
    }
    CHECK(atoi(reply) >= 1);
    proc_sleep_ms(100);
    CHECK_OK(redis_server_pause(&s));
    proc_sleep_ms(1500);
    CHECK_OK(redis_server_resume(&s));
    int status = 0;
    CHECK_EQ(proc_waitpid(pid, &status, 0), pid);
    int fd2 = open(outfile, O_RDONLY | O_CLOEXEC);
    CHECK(fd2 >= 0);
    ssize_t n = read(fd2, out, sizeof(out) - 1);
    close(fd2);
    out[n > 0 ? n : 0] = '\0';
    printf("---- leasering bench %s: status 0x%x ----\n%s", uri, status, out);
    CHECK(WIFEXITED(status));
    CHECK_EQ(WEXITSTATUS(status), 3);
    CHECK_EQ(field(out, "acquired"), 1);
    CHECK_EQ(field(out, "not_acquired"), 0);
    CHECK_EQ(field(out, "lost"), 1);
    CHECK(strstr(out, "leasering bench: 1 of 1 acquired leases lost\n"));
    CHECK(!strstr(out, "not acquired"));
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
    "rediss+sentinel://", "redis+cluster://", "azblob://", "chaos+",
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
      T(latency_hist_and_batch_fields), T(version_help_and_bare_usage),
      T(missing_or_bad_flags_are_named), T(opt_equals_value))
