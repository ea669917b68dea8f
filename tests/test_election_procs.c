/* SPDX-License-Identifier: MIT */
/*
 * test_election_procs.c - the election acceptance test of issue 12: candidate
 * PROCESSES (election/candidate.c) compete for one name in a real
 * redis-server the test starts, each through its own silent proxy
 * (fault/proxy.c). The test finds the leader from the candidates' logs and,
 * in turn, SIGKILLs it (then starts a new process in its place), partitions
 * it (its proxy goes silent until a new leader has led for a while), or makes
 * it resign (SIGUSR1). Then every candidate gets SIGTERM and the outside
 * observer (election/observer.c) merges the logs and checks: never two
 * leaders at once, fences strictly growing, nobody acting past its term,
 * and after each fault a new leader within the deadline:
 *     kill, partition: TTL + R + slack;   resign: R + slack
 * with R the retry interval (TTL/4) and the slack for a round trip, the
 * proxy's reaction time (~10 ms) and scheduling on a loaded 2-core machine.
 *
 *  - five_candidates: 5 processes, TTL 1000 ms, 8 faults (3 kills, 3
 *    partitions, 2 resigns), ~10 s. Also: in every term, the followers
 *    that could reach the store were told (new_leader) who leads, all the
 *    same identity.
 *  - plant_ignore_stopped_is_caught: a planted candidate that ignores
 *    stopped_leading (and trusts its own flag) leads first and is
 *    partitioned: the observer must see two leaders at once and acts past
 *    the end, all blamed on it.
 *  - plant_slow_retry_is_caught: candidates linked with an election.c built
 *    with a planted retry interval of 6 x TTL (and no early attempt at the
 *    holder's expiry): killed leaders are replaced too late, and the observer
 *    must report late hand-overs.
 * Logs stay in /tmp/leasering-election-* when a scenario fails, or when
 * LR_ELECTION_KEEP is set.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "election/observer.h"
#include "fault/proxy.h"
#include "harness.h"
#include "proc.h"
#include "redis_server.h"

#define TTL 1000u
#define RETRY (TTL / 4)
#define SLACK_MS (SANITIZED ? 400u : 200u)
#define SLOTS 5

enum fault { KILL, PARTITION, RESIGN };

struct scenario {
    const char *title;
    const char *exe[SLOTS];
    int slots;
    /* set while running */
    char dir[128];
    struct redis_server srv;
    struct fproxy *proxy[SLOTS];
    pid_t pid[SLOTS];
    int cur_log[SLOTS]; /* index into logs of each slot's current process */
    char logs[ELOBS_MAX_LOGS][192];
    int nlogs;
    unsigned kills, partitions, resigns;
    unsigned late_seen; /* hand-overs the schedule saw miss the deadline */
    bool broken;
};

static uint64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void append(const char *path, const char *what, int arg)
{
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0)
        return;
    char line[96];
    int n = snprintf(line, sizeof(line), "%" PRIu64 " %s %d\n", mono_ns(), what, arg);
    if (write(fd, line, (size_t)n) != n)
        fprintf(stderr, "append %s: short write\n", what);
    close(fd);
}

/* What the test did and when, in <dir>/faults.log, on the candidates' clock. */
static void note(const struct scenario *sc, const char *what, int arg)
{
    char path[160];
    snprintf(path, sizeof(path), "%s/faults.log", sc->dir);
    append(path, what, arg);
}

static int spawn(struct scenario *sc, int s)
{
    if (sc->nlogs == ELOBS_MAX_LOGS)
        return -ENOSPC;
    int li = sc->nlogs++;
    snprintf(sc->logs[li], sizeof(sc->logs[li]), "%s/c%d.%d.log", sc->dir, s, li);
    char uri[64], errlog[192], id[16], ttl[16];
    snprintf(uri, sizeof(uri), "redis://127.0.0.1:%d", fproxy_port(sc->proxy[s]));
    snprintf(errlog, sizeof(errlog), "%s/c%d.err", sc->dir, s);
    snprintf(id, sizeof(id), "c%d.%d", s, li);
    snprintf(ttl, sizeof(ttl), "%u", TTL);
    const char *argv[] = {sc->exe[s], "--uri",  uri,      "--log", sc->logs[li], "--id",
                          id,         "--name", "leader", "--ttl", ttl,          NULL};
    off_t from;
    int rc = proc_spawn_logged(argv, NULL, errlog, &from, &sc->pid[s]);
    if (rc < 0)
        fprintf(stderr, "spawn %s: %s\n", sc->exe[s], strerror(-rc));
    sc->cur_log[s] = li;
    return rc;
}

/* The slot whose process leads now (by its log), or -1 after @ms. */
static int await_leader(const struct scenario *sc, int not, unsigned ms)
{
    uint64_t until = proc_now_ms() + ms;
    do {
        for (int s = 0; s < sc->slots; s++)
            if (s != not &&sc->pid[s] > 0 && elobs_leading(sc->logs[sc->cur_log[s]], 100))
                return s;
        proc_sleep_ms(5);
    } while (proc_now_ms() < until);
    return -1;
}

/* One fault on the current leader; waits for its successor. */
static void fault(struct scenario *sc, enum fault what)
{
    int s = await_leader(sc, -1, 5000);
    if (s < 0) {
        fprintf(stderr, "no leader to fault\n");
        sc->broken = true;
        return;
    }
    int victim_log = sc->cur_log[s];
    static const char *const names[] = {"kill", "partition", "resign"};
    note(sc, names[what], victim_log); /* before the fault: the deadline counts from here */
    uint64_t t0 = proc_now_ms();
    if (what == KILL) {
        kill(sc->pid[s], SIGKILL);
        proc_waitpid(sc->pid[s], NULL, 0);
        sc->pid[s] = 0;
        append(sc->logs[victim_log], "killed", 0);
        sc->kills++;
    } else if (what == PARTITION) {
        fproxy_silence(sc->proxy[s], true);
        sc->partitions++;
    } else {
        kill(sc->pid[s], SIGUSR1);
        sc->resigns++;
    }
    unsigned deadline = what == RESIGN ? RETRY + SLACK_MS : TTL + RETRY + SLACK_MS;
    int next = await_leader(sc, s, 8 * TTL);
    uint64_t took = proc_now_ms() - t0;
    printf("%s of c%d: next leader c%d after ~%" PRIu64 " ms (deadline %u)\n", names[what], s, next,
           took, deadline);
    if (next < 0 || took > deadline)
        sc->late_seen++;
    proc_sleep_ms(300); /* the new leader leads a while; followers hear of it */
    if (what == KILL) {
        note(sc, "restart", s);
        if (spawn(sc, s) < 0)
            sc->broken = true;
    } else if (what == PARTITION) {
        fproxy_silence(sc->proxy[s], false);
        note(sc, "heal", s);
    }
    proc_sleep_ms(300);
}

static int end_all(struct scenario *sc)
{
    int bad = 0;
    for (int s = 0; s < sc->slots; s++)
        if (sc->pid[s] > 0)
            kill(sc->pid[s], SIGTERM);
    for (int s = 0; s < sc->slots; s++) {
        if (sc->pid[s] <= 0)
            continue;
        int st = 0;
        uint64_t until = proc_now_ms() + 10000;
        pid_t got;
        while ((got = proc_waitpid(sc->pid[s], &st, WNOHANG)) == 0 && proc_now_ms() < until)
            proc_sleep_ms(10);
        if (got == 0) {
            fprintf(stderr, "candidate c%d did not exit after SIGTERM\n", s);
            kill(sc->pid[s], SIGKILL);
            proc_waitpid(sc->pid[s], &st, 0);
            bad++;
        } else if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
            char errlog[192];
            snprintf(errlog, sizeof(errlog), "%s/c%d.err", sc->dir, s);
            fprintf(stderr, "candidate c%d ended with status 0x%x; %s:\n", s, st, errlog);
            proc_log_tail(errlog, 20);
            bad++;
        }
        sc->pid[s] = 0;
    }
    return bad;
}

static void teardown(struct scenario *sc, bool keep)
{
    for (int s = 0; s < sc->slots; s++) {
        if (sc->pid[s] > 0) {
            kill(sc->pid[s], SIGKILL);
            proc_waitpid(sc->pid[s], NULL, 0);
            sc->pid[s] = 0;
        }
        fproxy_free(sc->proxy[s]);
        sc->proxy[s] = NULL;
    }
    redis_server_destroy(&sc->srv);
    if (keep)
        fprintf(stderr, "logs kept in %s\n", sc->dir);
    else
        proc_rmtree(sc->dir);
}

/* Starts the store, the proxies and the candidates (slot 0 first: it leads
 * first), runs @schedule, ends the candidates and runs the observer.
 * Returns its violation count, or -1 when the scenario could not be run. */
static int run(struct scenario *sc, const enum fault *schedule, int nfaults, bool stop_when_late,
               bool planted, struct elobs_figures *f)
{
    /* not proc_mkdtemp: its exit hook would remove logs we mean to keep */
    snprintf(sc->dir, sizeof(sc->dir), PROC_DIR_PREFIX "election-XXXXXX");
    if (!mkdtemp(sc->dir)) {
        perror("mkdtemp");
        return -1;
    }
    int rc = redis_server_start(&sc->srv, NULL);
    if (rc < 0) {
        fprintf(stderr, "redis_server_start: %s\n", strerror(-rc));
        proc_rmtree(sc->dir);
        return -1;
    }
    for (int s = 0; s < sc->slots && rc == 0; s++)
        rc = fproxy_start(&sc->proxy[s], sc->srv.port);
    for (int s = 0; s < sc->slots && rc == 0; s++) {
        rc = spawn(sc, s);
        if (s == 0 && rc == 0 && await_leader(sc, -1, 5000) != 0)
            rc = -ETIMEDOUT;
    }
    if (rc < 0) {
        fprintf(stderr, "setup: %s\n", strerror(-rc));
        teardown(sc, false);
        return -1;
    }
    proc_sleep_ms(500); /* every follower has heard of the leader */
    for (int i = 0; i < nfaults && !sc->broken; i++) {
        fault(sc, schedule[i]);
        if (stop_when_late && sc->late_seen)
            break;
    }
    int bad = end_all(sc);
    const char *paths[ELOBS_MAX_LOGS];
    for (int i = 0; i < sc->nlogs; i++)
        paths[i] = sc->logs[i];
    char faults[160];
    snprintf(faults, sizeof(faults), "%s/faults.log", sc->dir);
    struct elobs_deadlines d = {.kill_ms = TTL + RETRY + SLACK_MS,
                                .partition_ms = TTL + RETRY + SLACK_MS,
                                .resign_ms = RETRY + SLACK_MS};
    int v = elobs_check(paths, sc->nlogs, faults, &d, f, stderr, 8);
    elobs_print(f, sc->title, stdout);
    if (v < 0)
        fprintf(stderr, "observer: %s\n", strerror(-v));
    bool failed = bad || v < 0 || sc->broken;
    teardown(sc, failed || (v > 0 && !planted) || getenv("LR_ELECTION_KEEP"));
    return failed ? -1 : v;
}

TEST(five_candidates)
{
    static const enum fault schedule[] = {KILL,      PARTITION, RESIGN, KILL,
                                          PARTITION, KILL,      RESIGN, PARTITION};
    struct scenario sc = {.title = SANITIZED ? "election, 5 candidates (ASan+UBSan)"
                                             : "election, 5 candidates",
                          .slots = SLOTS};
    for (int s = 0; s < SLOTS; s++)
        sc.exe[s] = ELECTION_CANDIDATE;
    struct elobs_figures f;
    int v = run(&sc, schedule, 8, false, false, &f);
    CHECK(v >= 0);
    CHECK_EQ(f.overlaps, 0);
    CHECK_EQ(f.fence_regressions, 0);
    CHECK_EQ(f.lead_after, 0);
    CHECK_EQ(f.late_handovers, 0);
    CHECK_EQ(f.bad_lines, 0);
    CHECK_EQ(v, 0);
    CHECK(f.kills >= 3 && f.partitions >= 3 && f.resign_faults >= 2);
    /* a term per fault at least, and followers told who leads */
    CHECK(f.terms >= 1 + f.kills + f.partitions + f.resign_faults);
    CHECK(f.leader_lines >= (unsigned)SLOTS - 1);
    for (int i = 1; i < SLOTS; i++)
        CHECK(f.leader_lines_by[i] > 0); /* the first processes of slots 1..4 */
    /* in every term, the followers that could reach the store (all but
     * the faulted one) heard of the leader, and named the same one */
    CHECK(f.heard_min >= (unsigned)SLOTS - 2);
    CHECK_EQ(f.heard_disagree, 0);
}

TEST(plant_ignore_stopped_is_caught)
{
    static const enum fault schedule[] = {PARTITION};
    struct scenario sc = {
        .title = "plant: candidate ignores stopped_leading (partitioned)",
        .exe = {ELECTION_CANDIDATE_IGNORE_STOPPED, ELECTION_CANDIDATE, ELECTION_CANDIDATE},
        .slots = 3};
    struct elobs_figures f;
    int v = run(&sc, schedule, 1, false, true, &f);
    CHECK(v >= 0);
    printf("planted candidate: %u violations; correct ones: %u, %u\n", f.violations[0],
           f.violations[1], f.violations[2]);
    CHECK(f.overlaps > 0);
    CHECK(f.lead_after > 0);
    CHECK(f.violations[0] > 0);
    CHECK_EQ(f.violations[1], 0);
    CHECK_EQ(f.violations[2], 0);
}

TEST(plant_slow_retry_is_caught)
{
    static const enum fault schedule[] = {KILL, KILL, KILL, KILL, KILL, KILL, KILL, KILL};
    struct scenario sc = {.title = "plant: retry interval 6 x TTL",
                          .exe = {ELECTION_CANDIDATE_SLOW_RETRY, ELECTION_CANDIDATE_SLOW_RETRY,
                                  ELECTION_CANDIDATE_SLOW_RETRY},
                          .slots = 3};
    struct elobs_figures f;
    int v = run(&sc, schedule, 8, true, true, &f);
    CHECK(v >= 0);
    CHECK(f.late_handovers > 0);
    CHECK_EQ(f.overlaps, 0); /* slow, not unsafe */
    CHECK_EQ(f.fence_regressions, 0);
    CHECK_EQ(f.lead_after, 0);
}

TESTS(T(five_candidates), T(plant_ignore_stopped_is_caught), T(plant_slow_retry_is_caught))
