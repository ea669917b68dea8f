/* SPDX-License-Identifier: MIT */
/*
 * test_inspect.c - who holds a name, against real redis-server processes:
 * lr_manager_inspect on a free name, a name held by another process (its
 * identity, token, fence, TTL and metadata), an expired one, a value written
 * by an older leasering (no identity: the holder is the token), session
 * mode (the TTL is the session's), Redis Cluster (each name read from the
 * master of its slot); a conflict naming the other process by identity; and
 * `leasering status` run as a program, in text and --json (parsed by
 * python3's json module), with its exit statuses (0, 1 store unreachable,
 * 2 usage). The other holder is a child process on its own loop.
 */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "proc.h"
#include "recorder.h"
#include "redis_cluster.h"
#include "redis_server.h"
#include <leasering.h>

#ifndef LEASERING_TOOL
#define LEASERING_TOOL "tools/leasering"
#endif

#define CHILD_ID "holder-proc:7"
/* A metadata value that needs escaping in JSON, with UTF-8 in it. */
#define ODD_VALUE "say \"hi\"\\ tab\tnew\nline \xc3\xa9t\xc3\xa9"

static char uri[256];
static char out[64 * 1024];

static struct lr_manager *mgr(const char *u, uint32_t ttl, const char *identity)
{
    struct lr_manager_opts o = {.ttl_ms = ttl, .cbs = &rec_cbs, .identity = identity};
    struct lr_manager *m = NULL;
    int rc = lr_manager_new(&m, loop, u, &o);
    if (rc < 0)
        fprintf(stderr, "lr_manager_new(%s): %s\n", u, lr_strerror(rc));
    return m;
}

/* ---- the other holder: a child process ---- */

static struct lr_loop *child_loop;
static int child_ready_fd;
static int child_held;

static void child_acquired(struct lr_lease *l)
{
    (void)l;
    if (++child_held == 2) {
        ssize_t w = write(child_ready_fd, "ok", 2);
        (void)w;
    }
}

static void child_failed(struct lr_lease *l, int status)
{
    fprintf(stderr, "child: %s: %s\n", lr_lease_name(l), lr_strerror(status));
    _exit(3);
}

static const struct lr_lease_cbs child_cbs = {.acquired = child_acquired,
                                              .acquire_failed = child_failed};

/* Fork a process holding "job-a" (metadata node=alpha, note=ODD_VALUE) and
 * "job-b" (none) on @u with identity CHILD_ID and TTL @ttl, renewing until
 * it is killed. Returns its pid once both are held, or -1. */
static pid_t start_holder(const char *u, uint32_t ttl)
{
    int p[2];
    if (pipe(p) < 0)
        return -1;
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        /* never outlive the test, even one that stopped at a failed CHECK */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() == 1)
            _exit(1);
        alarm(120);
        close(p[0]);
        child_ready_fd = p[1];
        struct lr_manager *m;
        struct lr_manager_opts o = {.ttl_ms = ttl, .cbs = &child_cbs, .identity = CHILD_ID};
        static struct lr_lease a, b;
        if (lr_loop_new(&child_loop, NULL) < 0 || lr_manager_new(&m, child_loop, u, &o) < 0 ||
            lr_lease_init(m, &a, "job-a", NULL) < 0 || lr_lease_init(m, &b, "job-b", NULL) < 0 ||
            lr_lease_set_meta(&a, "node", "alpha") < 0 ||
            lr_lease_set_meta(&a, "note", ODD_VALUE) < 0 || lr_lease_acquire(&a, 5000) < 0 ||
            lr_lease_acquire(&b, 5000) < 0)
            _exit(2);
        lr_loop_run(child_loop);
        _exit(0);
    }
    close(p[1]);
    char buf[2];
    ssize_t n = pid > 0 ? read(p[0], buf, 2) : -1;
    close(p[0]);
    if (n != 2) {
        if (pid > 0) {
            kill(pid, SIGKILL);
            waitpid(pid, NULL, 0);
        }
        return -1;
    }
    return pid;
}

static void stop_holder(pid_t pid)
{
    kill(pid, SIGKILL); /* no release: the leases run out at the store */
    waitpid(pid, NULL, 0);
}

/* ---- the tool ---- */

/* Run `leasering status` with @args; its stdout (and with @err its stderr
 * too) lands in out[]. Returns its exit status. */
static int run_status(const char *const *args, int err)
{
    const char *argv[16] = {LEASERING_TOOL, "status"};
    int n = 2;
    for (int i = 0; args[i] && n < 15; i++)
        argv[n++] = args[i];
    argv[n] = NULL;
    int rc = proc_capture(argv, NULL, out, sizeof(out), 30000, err ? PROC_ERR_CAPTURE : -1);
    printf("---- leasering status%s: exit %d ----\n%s", err ? " (stdout+stderr)" : "", rc, out);
    return rc;
}

static int run_tool(const char *const *args)
{
    return run_status(args, 0);
}

static int run_tool_err(const char *const *args)
{
    return run_status(args, 1);
}

/* Checks the tool's JSON in python3: exactly one document, the fields of
 * each name. Prints "JSON OK" or the first mismatch. */
static const char json_check[] =
    "import json, sys\n"
    "d = json.load(sys.stdin)\n"
    "assert isinstance(d, list) and len(d) == 4, d\n"
    "a, b, f, o = d\n"
    "assert a['name'] == 'job-a' and a['held'] is True, a\n"
    "assert a['holder'] == '" CHILD_ID "', a\n"
    "assert len(a['token']) == 32 and a['fence'] >= 1 and 0 < a['ttl_ms'] <= 3000, a\n"
    "assert a['metadata'] == {'node': 'alpha', 'note': 'say \"hi\"\\\\ tab\\tnew\\nline "
    "\\u00e9t\\u00e9'}, a['metadata']\n"
    "assert b['name'] == 'job-b' and b['held'] and b['metadata'] == {}, b\n"
    "assert f == {'name': 'free-one', 'held': False, 'holder': None, 'token': None,\n"
    "             'fence': None, 'ttl_ms': None, 'metadata': {}}, f\n"
    "assert o['name'] == 'old-one' and o['holder'] == o['token'] == 'ab' * 16, o\n"
    "assert o['fence'] == 41 and o['metadata'] == {'k': 'v'}, o\n"
    "print('JSON OK')\n";

/* ---- tests ---- */

TEST(inspect_and_status_against_another_process)
{
    rec_setup();
    struct redis_server s;
    CHECK_OK(redis_server_start(&s, NULL));
    snprintf(uri, sizeof(uri), "redis://127.0.0.1:%d", s.port);
    pid_t child = start_holder(uri, 3000);
    CHECK(child > 0);
    struct lr_manager *b = mgr(uri, 3000, NULL);
    CHECK(b);

    /* the library: held by the other process, with its metadata */
    CHECK_OK(rec_inspect(b, "job-a", 3000));
    CHECK_EQ(rec_insp.held, 1);
    CHECK(!strcmp(rec_insp.holder, CHILD_ID));
    CHECK(!strcmp(rec_insp.identity, CHILD_ID));
    char token[64];
    const char *hget[] = {"HGET", "lr:{job-a}", "owner", NULL};
    CHECK_OK(redis_cli(&s, token, sizeof(token), hget));
    CHECK(!strcmp(rec_insp.token, token));
    CHECK_EQ(rec_insp.fence, 1);
    CHECK(rec_insp.ttl_ms > 0 && rec_insp.ttl_ms <= 3000);
    CHECK(rec_insp_meta("node") && !strcmp(rec_insp_meta("node"), "alpha"));
    CHECK(rec_insp_meta("note") && !strcmp(rec_insp_meta("note"), ODD_VALUE));
    CHECK(!rec_insp_meta("owner") && !rec_insp_meta("fence") && !rec_insp_meta("identity"));
    CHECK_OK(rec_inspect(b, "free-one", 3000));
    CHECK_EQ(rec_insp.held, 0);

    /* a conflict names the other process by its identity */
    struct lr_lease lb;
    CHECK_OK(lr_lease_init(b, &lb, "job-a", NULL));
    CHECK_OK(lr_lease_try_acquire(&lb));
    run_until(EV_ACQFAIL, 3000);
    CHECK_ERR(rec_first(EV_ACQFAIL, &lb)->status, LR_ECONFLICT);
    CHECK(!strcmp(lr_lease_holder(&lb), CHILD_ID));
    lr_lease_deinit(&lb);

    /* a value an older leasering wrote (no identity): the holder is the token */
    const char *old[] = {"HSET",  "lr:{old-one}", "owner", "abababababababababababababababab",
                         "fence", "41",           "k",     "v",
                         NULL};
    CHECK_OK(redis_cli(&s, out, sizeof(out), old));
    const char *exp[] = {"PEXPIRE", "lr:{old-one}", "60000", NULL};
    CHECK_OK(redis_cli(&s, out, sizeof(out), exp));
    CHECK_OK(rec_inspect(b, "old-one", 3000));
    CHECK_EQ(rec_insp.held, 1);
    CHECK(!strcmp(rec_insp.identity, ""));
    CHECK(!strcmp(rec_insp.holder, "abababababababababababababababab"));
    CHECK_EQ(rec_insp.fence, 41);
    struct lr_lease lo;
    CHECK_OK(lr_lease_init(b, &lo, "old-one", NULL));
    CHECK_OK(lr_lease_try_acquire(&lo));
    run_until(EV_ACQFAIL, 3000);
    CHECK(!strcmp(lr_lease_holder(&lo), "abababababababababababababababab"));
    lr_lease_deinit(&lo);

    /* the tool, text */
    const char *text[] = {"--backend", uri, "job-a", "job-b", "free-one", NULL};
    CHECK_EQ(run_tool(text), 0);
    CHECK(strstr(out, "job-a: held by " CHILD_ID "\n"));
    CHECK(strstr(out, "  token   "));
    CHECK(strstr(out, token));
    CHECK(strstr(out, "  meta    node=alpha\n"));
    CHECK(strstr(out, "job-b: held by " CHILD_ID "\n"));
    CHECK(strstr(out, "free-one: free\n"));
    /* the tool, --json (as --opt=value too), checked by a JSON parser */
    char backend_eq[300];
    snprintf(backend_eq, sizeof(backend_eq), "--backend=%s", uri);
    const char *js[] = {"--json", backend_eq, "job-a", "job-b", "free-one", "old-one", NULL};
    CHECK_EQ(run_tool(js), 0);
    char json[sizeof(out)];
    memcpy(json, out, sizeof(json));
    const char *py[] = {"python3", "-c", json_check, NULL};
    int prc = proc_capture(py, json, out, sizeof(out), 30000, PROC_ERR_CAPTURE);
    printf("python3: %d %s", prc, out);
    CHECK_EQ(prc, 0);
    CHECK(strstr(out, "JSON OK"));

    /* expired: the holder dies without releasing; the names run out */
    stop_holder(child);
    CHECK_OK(rec_inspect(b, "job-b", 3000));
    CHECK_EQ(rec_insp.held, 1);
    run_until(0, (uint64_t)rec_insp.ttl_ms + 50);
    CHECK_OK(rec_inspect(b, "job-b", 3000));
    CHECK_EQ(rec_insp.held, 0);
    const char *after[] = {"--backend", uri, "job-a", "job-b", NULL};
    CHECK_EQ(run_tool(after), 0);
    CHECK(strstr(out, "job-a: free\njob-b: free\n"));

    /* exit statuses: 1 store unreachable (and why), 2 usage */
    redis_server_stop(&s);
    const char *down[] = {"--backend", uri, "job-a", NULL};
    CHECK_EQ(run_tool_err(down), 1);
    CHECK(strstr(out, "job-a: cannot read it: "));
    CHECK(strstr(out, "connection refused"));
    const char *none[] = {"--backend", uri, NULL};
    CHECK_EQ(run_tool_err(none), 2);
    CHECK(strstr(out, "NAME"));
    const char *nob[] = {"job-a", NULL};
    CHECK_EQ(run_tool_err(nob), 2);
    CHECK(strstr(out, "--backend is required"));
    const char *bad[] = {"--backend", "nosuch://x", "job-a", NULL};
    CHECK_EQ(run_tool_err(bad), 2);
    const char *help[] = {"--help", NULL};
    CHECK_EQ(run_tool(help), 0);
    CHECK(strstr(out, "usage: leasering status --backend URI [--json] NAME..."));
    close_mgr(b);
    redis_server_destroy(&s);
}

TEST(inspect_in_session_mode)
{
    rec_setup();
    struct redis_server s;
    CHECK_OK(redis_server_start(&s, NULL));
    snprintf(uri, sizeof(uri), "redis://127.0.0.1:%d?mode=session&prefix=s:", s.port);
    struct lr_manager *a = mgr(uri, 2000, "sess-holder"), *b = mgr(uri, 2000, NULL);
    CHECK(a && b);
    struct lr_lease la;
    CHECK_OK(lr_lease_init(a, &la, "x", NULL));
    CHECK_OK(lr_lease_acquire(&la, 2000));
    run_until(EV_ACQ, 3000);
    CHECK_OK(rec_inspect(b, "x", 3000));
    CHECK_EQ(rec_insp.held, 1);
    CHECK(!strcmp(rec_insp.holder, "sess-holder"));
    CHECK(rec_insp.ttl_ms > 0 && rec_insp.ttl_ms <= 2000); /* the session's */
    CHECK_EQ(rec_insp.fence, lr_lease_fence(&la));
    CHECK_EQ(rec_insp.meta_len, 0); /* the session field is not metadata */
    /* the session dies with its manager: the name is free (taken over next) */
    lr_lease_deinit(&la);
    close_mgr(a);
    run_until(0, 2100);
    CHECK_OK(rec_inspect(b, "x", 3000));
    CHECK_EQ(rec_insp.held, 0);
    close_mgr(b);
    redis_server_destroy(&s);
}

TEST(inspect_on_a_cluster_reads_each_slots_master)
{
    rec_setup();
    static struct redis_cluster c;
    CHECK_OK(redis_cluster_start(&c, 3, 0, NULL));
    struct lr_manager *a = mgr(c.uri, 3000, "cluster-holder"), *b = mgr(c.uri, 3000, NULL);
    CHECK(a && b);
    /* names spread over the three masters */
    static struct lr_lease ls[12];
    for (int i = 0; i < 12; i++) {
        char name[16], v[16];
        snprintf(name, sizeof(name), "n%d", i);
        snprintf(v, sizeof(v), "v%d", i);
        CHECK_OK(lr_lease_init(a, &ls[i], name, NULL));
        CHECK_OK(lr_lease_set_meta(&ls[i], "i", v));
        CHECK_OK(lr_lease_acquire(&ls[i], 5000));
    }
    for (int i = 0; i < 12 && rec_count(EV_ACQ, NULL) < 12; i++)
        run_until(EV_ACQ, 3000);
    CHECK_EQ(rec_count(EV_ACQ, NULL), 12);
    /* each inspection goes straight to its slot's master: one request each
     * (one sent elsewhere would come back MOVED and be sent again) */
    uint64_t r0 = lr_manager_stats(b)->requests;
    for (int i = 0; i < 12; i++) {
        char name[16], v[16];
        snprintf(name, sizeof(name), "n%d", i);
        snprintf(v, sizeof(v), "v%d", i);
        CHECK_OK(rec_inspect(b, name, 5000));
        CHECK_EQ(rec_insp.held, 1);
        CHECK(!strcmp(rec_insp.holder, "cluster-holder"));
        CHECK_EQ(rec_insp.fence, lr_lease_fence(&ls[i]));
        CHECK(rec_insp_meta("i") && !strcmp(rec_insp_meta("i"), v));
    }
    CHECK_OK(rec_inspect(b, "nobody", 5000));
    CHECK_EQ(rec_insp.held, 0);
    CHECK_EQ(lr_manager_stats(b)->requests - r0, 13);
    for (int i = 0; i < 12; i++)
        lr_lease_deinit(&ls[i]);
    close_mgr(a);
    close_mgr(b);
    redis_cluster_destroy(&c);
}

TESTS(T(inspect_and_status_against_another_process), T(inspect_in_session_mode),
      T(inspect_on_a_cluster_reads_each_slots_master))
