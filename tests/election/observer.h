/* SPDX-License-Identifier: MIT */
/*
 * observer.h - the outside observer of the election acceptance test: merges
 * the logs the candidates wrote (candidate.c; one file per process) and the
 * test's fault log, on the one CLOCK_MONOTONIC every process of the machine
 * shares, and checks leadership from outside the library.
 *
 * A term is one "start" line of one process. It ends at the earliest of the
 * process's next "stop", "resign", "exit" or "killed" line (the test appends
 * "killed" once the process is reaped) and the last validity (VU, ms) the
 * term logged -- but never before its last "lead" line: a process that acted
 * as leader led until then, whatever it was told. Checked:
 *  (a) overlaps: no term of one process starts before a term of another has
 *      ended: never two leaders at once;
 *  (b) fence regressions: in order of start, terms' fences strictly grow;
 *  (c) lead after the end: every "lead" line lies inside its term's end as
 *      the library defines it (stop, validity, death): nobody acts past it;
 *  (d) late hand-overs: after each fault the test logged ("T kill|partition|
 *      resign LOG" in the fault log, LOG the victim's log index, T taken
 *      before the fault was injected), a term of another process starts
 *      within the deadline the caller gives for that kind.
 * Measured too (liveness, not a violation): for every term but the last,
 * how many other processes logged "leader" (new_leader) from its start to
 * the next term's (each bound taken 50 ms early: a follower may log the new
 * name a moment before the winner logs its start), and whether the last
 * identity each of them heard in that window was one and the same.
 */
#ifndef LR_TEST_ELECTION_OBSERVER_H
#define LR_TEST_ELECTION_OBSERVER_H

#include <stdint.h>
#include <stdio.h>

#define ELOBS_MAX_LOGS 64

struct elobs_deadlines {
    uint64_t kill_ms, partition_ms, resign_ms; /* hand-over deadline per fault kind */
};

struct elobs_figures {
    int logs;
    unsigned terms, leads, stops, resigns, leader_lines, lines;
    unsigned kills, partitions, resign_faults; /* faults in the fault log */
    unsigned overlaps, fence_regressions, lead_after, late_handovers;
    unsigned bad_lines;
    double worst_handover_ms[3];         /* per kind: kill, partition, resign; -1 if none */
    unsigned violations[ELOBS_MAX_LOGS]; /* per log: (a)..(c) it took part in */
    unsigned terms_by[ELOBS_MAX_LOGS];
    unsigned leader_lines_by[ELOBS_MAX_LOGS];
    unsigned heard_min;      /* over terms but the last: fewest other processes told */
    unsigned heard_disagree; /* terms whose followers' last identities differ */
};

/*
 * elobs_check - read the candidates' logs @paths[0..n-1] and the fault log
 * @faults (NULL: none), check (a)..(d), fill @f. The first @max_report
 * violations are described on @report (NULL: quiet).
 * Returns: the number of violations (a)+(b)+(c)+(d), >= 0; -errno if a file
 * cannot be read; -EINVAL too many logs.
 */
int elobs_check(const char *const *paths, int n, const char *faults,
                const struct elobs_deadlines *d, struct elobs_figures *f, FILE *report,
                unsigned max_report);

/*
 * elobs_leading - from one candidate's log: the fence of the term it is in
 * (a "start" with no "stop", "resign", "exit" or "killed" after it) if its
 * last "lead" line is at most @fresh_ms old, else 0.
 */
uint64_t elobs_leading(const char *path, uint64_t fresh_ms);

/* elobs_print - one line of figures. */
void elobs_print(const struct elobs_figures *f, const char *scenario, FILE *out);

#endif
