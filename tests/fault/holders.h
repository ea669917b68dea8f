/* SPDX-License-Identifier: MIT */
/*
 * holders.h - running the fault suite's holder processes (fault/holder.c)
 * for a test: holder h of a run logs to <dir>/h<h>.log (the observer's
 * input) and writes its stderr to <dir>/h<h>.err; it contends for names
 * job0..job<names-1> with churn (each held name let go after 2.5-7.5 s) and
 * renewals coalesced over 20 ms, and lives until SIGTERM (its own end comes
 * a minute after the run's). Used by the tests that run holders against a
 * real store (test_cosmos_fault, test_etcd_fault). Children start from the
 * main thread (proc.h).
 */
#ifndef LR_TEST_FAULT_HOLDERS_H
#define LR_TEST_FAULT_HOLDERS_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#define FHOLDER_PATH_MAX 192

/* fholder_path - "<dir>/h<h>.<ext>" into @out (FHOLDER_PATH_MAX bytes);
 * @ext "log" or "err". */
void fholder_path(char *out, const char *dir, int h, const char *ext);

/*
 * fholder_spawn - start holder @h: program @exe (a holder build, possibly
 * planted) on store @uri, id "h<h>", @names names, TTL @ttl_ms, for
 * @seconds (+ 60 s: the test ends it with SIGTERM first).
 * Returns: 0 with *@pid set; -errno (printed).
 */
int fholder_spawn(const char *exe, const char *uri, const char *dir, int h, unsigned names,
                  unsigned ttl_ms, unsigned seconds, pid_t *pid);

/*
 * fholders_end - SIGCONT and SIGTERM every live holder in @pid[0..n-1]
 * (0: none), then wait up to 20 s for each; each must exit 0 (it released
 * what it held). One that does not is said, SIGKILLed if it still runs,
 * and its err file's tail printed. Every pid is reaped and zeroed.
 * Returns: how many did not exit 0.
 */
int fholders_end(pid_t *pid, int n, const char *dir);

/* fholders_kill - SIGKILL and reap every live holder; zeroes the pids. */
void fholders_kill(pid_t *pid, int n);

/* fholders_remove - delete the logs and err files of holders 0..n-1 and
 * then @dir itself (if empty). */
void fholders_remove(const char *dir, int n);

/* fholder_name_index - i for a name "job<i>" with i < @names, else -1. */
int fholder_name_index(const char *name, unsigned names);

/* One line of a holder's log about one of its names (holder.c's format). */
struct fholder_line {
    uint64_t t_ns;   /* CLOCK_MONOTONIC */
    const char *ev;  /* the event word */
    int name;        /* i of "job<i>" */
    bool got;        /* "acquired" */
    bool renewed;    /* "renewed" */
    bool gone;       /* "lost" or "release": it no longer holds the name */
    bool lost;       /* "lost" */
};

/*
 * fholder_each - call @fn(@arg, line) for each line of the holder log
 * @path that is about a name job<i>, i < @names, in the log's order.
 * Returns: 0; -errno if it cannot be opened.
 */
int fholder_each(const char *path, unsigned names,
                 void (*fn)(void *arg, const struct fholder_line *ln), void *arg);

#endif
