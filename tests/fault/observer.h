/* SPDX-License-Identifier: MIT */
/*
 * observer.h - the outside observer of the fault suite: merges the logs the
 * holders wrote (holder.c) and checks the safety promise from outside the
 * library, on the one CLOCK_MONOTONIC every process of the machine shares.
 *
 * A hold of a name by a holder runs from its "acquired" line to the earliest
 * of its "lost" line, its "release" line (the holder stopped using it) and
 * the last valid_until it logged for that hold. Checked:
 *  (a) overlaps: no hold of a name begins before a hold of the same name by
 *      another holder has ended;
 *  (b) fence regressions: across the successive holds of a name, taken in
 *      order of acquisition time, fences strictly increase;
 *  (c) work after validity: every "work" line lies inside a hold of its
 *      holder and no later than the latest valid_until logged before it;
 *  (d) renewed after validity: every "renewed" line lies inside a hold and
 *      no later than the valid_until that was current before it.
 * Also measured: loss lateness, the time of each "lost" line minus the
 * valid_until it ended (negative: told early, as the library promises). A
 * loss whose validity ran out while the holder was frozen (lines "sigstop" /
 * "sigcont" that the test appends to the holder's log, and the holder's own
 * "stall_begin" / "stall_end") cannot be told in time by any library; it is
 * measured apart.
 */
#ifndef LR_TEST_FAULT_OBSERVER_H
#define LR_TEST_FAULT_OBSERVER_H

#include <stdint.h>
#include <stdio.h>

#define OBS_MAX_HOLDERS 16

struct obs_figures {
    int holders;
    unsigned names;
    double seconds;              /* first to last line */
    unsigned acquisitions, renewals, losses, releases, works, lines;
    unsigned overlaps, fence_regressions, work_after, renewed_after;
    unsigned stalled_losses;     /* losses whose validity ended in a freeze */
    unsigned lost_taken;         /* losses by reason: LR_ELOST (the store said "not yours"), */
    unsigned lost_expired;       /* LR_EEXPIRED (validity ran out), */
    unsigned lost_unavail;       /* LR_EUNAVAIL (ran out while the store was unreachable) */
    int64_t worst_lateness_ns;   /* over the other losses; INT64_MIN if none */
    int64_t worst_stalled_ns;    /* over stalled losses; INT64_MIN if none */
    unsigned bad_lines;          /* lines that did not parse */
    char ids[OBS_MAX_HOLDERS][32];
    unsigned violations[OBS_MAX_HOLDERS]; /* per holder: (a)+(b)+(c)+(d) it took part in */
    unsigned acquired_by[OBS_MAX_HOLDERS];
};

/*
 * observe - read the holders' logs @paths[0..n-1] (one file per holder) and
 * fill @f. The first @max_report violations are described on @report (NULL:
 * quiet), with the log lines involved.
 * Returns: the number of violations, (a)+(b)+(c)+(d), >= 0; -errno if a log
 * cannot be read; -EINVAL more than OBS_MAX_HOLDERS logs.
 */
int observe(const char *const *paths, int n, struct obs_figures *f, FILE *report,
            unsigned max_report);

/*
 * obs_mark - append the line "<now> @what - 0 0 0" to the holder log @path
 * (O_APPEND keeps whole lines whole): how a test tells the observer that it
 * froze the holder ("sigstop") or let it go ("sigcont").
 * Returns: 0 or -errno.
 */
int obs_mark(const char *path, const char *what);

/* observe_print - one line of figures, for the test's output. */
void observe_print(const struct obs_figures *f, const char *scenario, FILE *out);

#endif
