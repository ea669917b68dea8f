/* SPDX-License-Identifier: MIT */
/*
 * test_cosmos_fault.c - the outside observer of issue 9 (fault/observer.h)
 * over Cosmos DB leases (issue 13): holder processes (fault/holder.c) on the
 * emulator (tests/cosmos.h), each with its own manager, contend for the same
 * names, release and re-acquire them (churn), and log every event; the
 * observer then checks, from outside the library, that no two holders held a
 * name at once, that fences grew strictly, and that no holder worked or was
 * renewed past its validity.
 *
 * Cosmos has no native lease: a contender takes a document over only after it
 * has seen the same ETag for a full TTL on its own clock. So the faults here
 * are the ones that test that rule: the holder that acquired more names so
 * far SIGSTOPped for 1.5 x TTL (its names pass to the other while it sleeps,
 * and it must not act on them when it wakes), and later the other holder
 * SIGKILLed (the sleeper takes over its names).
 * For each name the victim held when the fault came, the test reads the logs
 * and checks that the other holder's acquisition came no sooner than a full
 * TTL after the victim's last successful write (its last "acquired" or
 * "renewed" line; slack for the reply's travel).
 *
 *  - two_holders_with_stop_and_kill: 2 holders, 200 names, TTL 2 s, 30 s
 *    (10 s in a sanitizer build).
 *  - plant_takeover_without_wait_is_caught: a holder linked against the
 *    library built with LR_PLANT_COSMOS_NO_WAIT (takeover as soon as the
 *    document is seen held, backends/cosmos.c) beside a correct one: the
 *    observer must report overlaps.
 *
 * What the emulator (@vercel/cosmosdb-server 1.0.1) does not do: no
 * signatures checked, no TTL, no throttling (test_cosmos_fake covers those
 * with a fake server). Its check-and-write under If-Match is atomic (one
 * Node event loop), which is what this test relies on.
 * Logs stay in /tmp/leasering-cosmos-fault-* on failure or with LR_FAULT_KEEP.
 */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cosmos.h"
#include "fault/holders.h"
#include "fault/observer.h"
#include "harness.h"
#include "proc.h"
#include "recorder.h" /* mono_ns */

#define TTL 2000u
#define NAMES 200u
/* A reply travels after the store wrote it: the contender can see the
 * write up to that long before the holder logs it. Loaded 2-core machine. */
#define SLACK_MS 250u
#define KEY_PCT                                                                                    \
    "C2y6yDjf5%2FR%2Bob0N8A7Cgv30VRDJIWEHLM%2B4QDU5DE2nQ9nDuVTqobD4b8mGGyPMbIZnqyMsEcaGQy67XIw%2F" \
    "Jw%3D%3D"

struct scenario {
    const char *title;
    const char *exe[2];
    unsigned seconds;
    bool faults;     /* stop and kill */
    /* set while running */
    struct cosmos store;
    char dir[128];
    char logs[2][FHOLDER_PATH_MAX];
    pid_t pid[2];
    uint64_t t0_ms;
    uint64_t stop_ns, kill_ns; /* when the faults came (0: not yet) */
    int stop_victim, kill_victim;
};

/* Sleep until @s seconds after the holders started. */
static void until(const struct scenario *sc, double s)
{
    uint64_t at = sc->t0_ms + (uint64_t)(s * 1000), now = proc_now_ms();
    proc_sleep_ms(at > now ? (unsigned)(at - now) : 0);
}

/* POST @body to @path on the emulator (which checks no signature) and
 * return the status, or -1. */
static int emu_post(int port, const char *path, const char *body)
{
    int fd = proc_connect(port, 5000);
    if (fd < 0)
        return -1;
    char req[512], resp[512] = "";
    int n = snprintf(req, sizeof(req),
                     "POST %s HTTP/1.1\r\nHost: 127.0.0.1\r\nx-ms-version: 2018-12-31\r\n"
                     "Content-Type: application/json\r\nConnection: close\r\n"
                     "Content-Length: %zu\r\n\r\n%s",
                     path, strlen(body), body);
    int status = -1;
    if (write(fd, req, (size_t)n) == n && read(fd, resp, sizeof(resp) - 1) > 12)
        sscanf(resp, "HTTP/1.1 %d", &status);
    close(fd);
    return status;
}

static int spawn_holder(struct scenario *sc, int h)
{
    char uri[256];
    snprintf(uri, sizeof(uri), "cosmos://%s@127.0.0.1:%d/leasedb/leases?tls=no", KEY_PCT,
             sc->store.port);
    fholder_path(sc->logs[h], sc->dir, h, "log");
    return fholder_spawn(sc->exe[h], uri, sc->dir, h, NAMES, TTL, sc->seconds, &sc->pid[h]);
}

static void teardown(struct scenario *sc, bool keep)
{
    fholders_kill(sc->pid, 2);
    cosmos_destroy(&sc->store);
    if (keep)
        fprintf(stderr, "logs kept in %s\n", sc->dir);
    else
        fholders_remove(sc->dir, 2);
}

/* ---- the takeover check, from the logs ---- */

struct name_state {
    uint64_t last_write_ns; /* victim's last acquired/renewed before the fault */
    bool held;              /* by the victim at the fault */
    uint64_t taken_ns;      /* the other's first acquisition after the fault */
};

struct takeover {
    unsigned held, taken, early; /* names held at the fault, taken over, too soon */
    double min_gap_ms;           /* over those taken: acquisition - last write */
};

/* What one holder log tells about a fault (a fholder_each walk). */
struct takeover_walk {
    struct name_state *st;
    bool victim;     /* this log is the victim's */
    uint64_t at_ns, end_ns;
};

static void takeover_line(void *arg, const struct fholder_line *ln)
{
    struct takeover_walk *w = arg;
    struct name_state *s = &w->st[ln->name];
    if (w->victim && ln->t_ns < w->at_ns) {
        if (ln->got || ln->renewed) {
            s->held = true;
            s->last_write_ns = ln->t_ns;
        } else if (ln->gone) {
            s->held = false;
        }
    } else if (!w->victim && ln->got && ln->t_ns >= w->at_ns && ln->t_ns < w->end_ns &&
               !s->taken_ns) {
        s->taken_ns = ln->t_ns;
    }
}

/* For the fault at @at_ns on holder @victim: the names it held then, and
 * when the other holder acquired each of them afterwards (before @end_ns). */
static int check_takeover(const struct scenario *sc, int victim, uint64_t at_ns, uint64_t end_ns,
                          struct takeover *t)
{
    static struct name_state st[NAMES];
    memset(st, 0, sizeof(st));
    memset(t, 0, sizeof(*t));
    t->min_gap_ms = 1e9;
    for (int h = 0; h < 2; h++) {
        struct takeover_walk w = {st, h == victim, at_ns, end_ns};
        int rc = fholder_each(sc->logs[h], NAMES, takeover_line, &w);
        if (rc < 0)
            return rc;
    }
    for (unsigned i = 0; i < NAMES; i++) {
        if (!st[i].held)
            continue;
        t->held++;
        if (!st[i].taken_ns)
            continue;
        t->taken++;
        double gap = (double)(st[i].taken_ns - st[i].last_write_ns) / 1e6;
        if (gap < t->min_gap_ms)
            t->min_gap_ms = gap;
        if (gap < TTL - SLACK_MS) {
            if (t->early < 5)
                fprintf(stderr, "job%u taken %.0f ms after the victim's last write (TTL %u)\n",
                        i, gap, TTL);
            t->early++;
        }
    }
    return 0;
}

/* ---- running ---- */

/* "acquired" lines in holder @h's log so far. */
static unsigned acquired_lines(const struct scenario *sc, int h)
{
    FILE *fp = fopen(sc->logs[h], "r");
    unsigned n = 0;
    char line[256];
    while (fp && fgets(line, sizeof(line), fp))
        n += strstr(line, " acquired ") != NULL;
    if (fp)
        fclose(fp);
    return n;
}

/* A quarter in (and not before the holders hold names between them: a slow
 * start under the sanitizers), stop the holder that acquired more for
 * 1.5 x TTL; at 60 % kill the other one. */
static void faults(struct scenario *sc)
{
    double d = sc->seconds;
    until(sc, 0.25 * d);
    unsigned a[2] = {0, 0};
    for (int i = 0; i < 100; i++) {
        a[0] = acquired_lines(sc, 0);
        a[1] = acquired_lines(sc, 1);
        if (a[0] + a[1] >= NAMES / 2)
            break;
        proc_sleep_ms(50);
    }
    double at = (double)(proc_now_ms() - sc->t0_ms) / 1000.0;
    int v = a[1] > a[0];
    sc->stop_victim = v;
    obs_mark(sc->logs[v], "sigstop"); /* the freeze, for the observer */
    sc->stop_ns = mono_ns();
    kill(sc->pid[v], SIGSTOP);
    until(sc, at + 1.5 * TTL / 1000.0);
    kill(sc->pid[v], SIGCONT);
    obs_mark(sc->logs[v], "sigcont");
    until(sc, 0.6 * d > at + 2.5 * TTL / 1000.0 ? 0.6 * d : at + 2.5 * TTL / 1000.0);
    sc->kill_victim = 1 - v;
    sc->kill_ns = mono_ns();
    kill(sc->pid[1 - v], SIGKILL);
    proc_waitpid(sc->pid[1 - v], NULL, 0);
    sc->pid[1 - v] = 0;
    until(sc, d);
}

/* Runs @sc: the observer's violation count, or -1 if it could not run. */
static int run_scenario(struct scenario *sc, struct obs_figures *f)
{
    snprintf(sc->dir, sizeof(sc->dir), PROC_DIR_PREFIX "cosmos-fault-XXXXXX");
    if (!mkdtemp(sc->dir)) {
        perror("mkdtemp");
        return -1;
    }
    if (cosmos_start(&sc->store) < 0) {
        rmdir(sc->dir);
        return -1;
    }
    if (emu_post(sc->store.port, "/dbs", "{\"id\":\"leasedb\"}") != 201 ||
        emu_post(sc->store.port, "/dbs/leasedb/colls",
                 "{\"id\":\"leases\",\"partitionKey\":{\"paths\":[\"/id\"],\"kind\":\"Hash\"}}") !=
            201) {
        fprintf(stderr, "could not create the database and container\n");
        teardown(sc, false);
        return -1;
    }
    sc->t0_ms = proc_now_ms();
    for (int h = 0; h < 2; h++)
        if (spawn_holder(sc, h) < 0) {
            teardown(sc, false);
            return -1;
        }
    if (sc->faults)
        faults(sc);
    else
        until(sc, sc->seconds);
    int bad = fholders_end(sc->pid, 2, sc->dir);
    const char *paths[2] = {sc->logs[0], sc->logs[1]};
    int v = observe(paths, 2, f, stderr, 5);
    observe_print(f, sc->title, stdout);
    if (v < 0)
        fprintf(stderr, "observe: %s\n", strerror(-v));
    return bad || v < 0 ? -1 : v;
}

TEST(two_holders_with_stop_and_kill)
{
    struct scenario sc = {.title = SANITIZED ? "cosmos: 2 holders (ASan+UBSan)" : "cosmos: 2 holders",
                          .exe = {FAULT_HOLDER, FAULT_HOLDER}, .seconds = SANITIZED ? 10 : 30,
                          .faults = true};
    struct obs_figures f;
    int v = run_scenario(&sc, &f);
    bool ok = v == 0;
    struct takeover ts = {0}, tk = {0};
    uint64_t end = mono_ns();
    if (v >= 0) {
        ok &= check_takeover(&sc, sc.stop_victim, sc.stop_ns, sc.kill_ns, &ts) == 0;
        ok &= check_takeover(&sc, sc.kill_victim, sc.kill_ns, end, &tk) == 0;
        printf("stop: %u names held, %u taken over, %u too soon, first after %.0f ms\n",
               ts.held, ts.taken, ts.early, ts.min_gap_ms);
        printf("kill: %u names held, %u taken over, %u too soon, first after %.0f ms\n",
               tk.held, tk.taken, tk.early, tk.min_gap_ms);
    }
    teardown(&sc, !ok || getenv("LR_FAULT_KEEP"));
    CHECK(v >= 0);
    CHECK_EQ(f.overlaps, 0);
    CHECK_EQ(f.fence_regressions, 0);
    CHECK_EQ(f.work_after, 0);
    CHECK_EQ(f.renewed_after, 0);
    CHECK_EQ(f.bad_lines, 0);
    CHECK_EQ(v, 0);
    /* liveness: names changed hands, both holders got some */
    CHECK(f.acquisitions >= NAMES);
    CHECK(f.acquired_by[0] > 0 && f.acquired_by[1] > 0);
    CHECK(f.works > 0 && f.releases > 0);
    /* the faults passed names on, each no sooner than a full TTL */
    CHECK(ts.held > 0 && ts.taken > 0);
    CHECK(tk.held > 0 && tk.taken > 0);
    CHECK_EQ(ts.early, 0);
    CHECK_EQ(tk.early, 0);
}

TEST(plant_takeover_without_wait_is_caught)
{
    struct scenario sc = {.title = "cosmos plant: takeover without waiting a TTL",
                          .exe = {FAULT_HOLDER_COSMOS_NO_WAIT, FAULT_HOLDER},
                          .seconds = SANITIZED ? 6 : 8};
    struct obs_figures f;
    int v = run_scenario(&sc, &f);
    teardown(&sc, getenv("LR_FAULT_KEEP") != NULL);
    CHECK(v >= 0);
    printf("planted: %u overlaps, %u violations by the planted holder\n", f.overlaps,
           f.violations[0]);
    CHECK(f.overlaps > 0);
    CHECK(f.violations[0] > 0);
}

TESTS(T(two_holders_with_stop_and_kill), T(plant_takeover_without_wait_is_caught))
