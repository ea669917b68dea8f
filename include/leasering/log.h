/* SPDX-License-Identifier: MIT */
/*
 * leasering/log.h - where the library's log lines go.
 *
 * The library never prints. What an operator wants to read -- a connection
 * to the store came up, went down, came back (reconnected); a failover (a
 * Sentinel +switch-master, a Redis Cluster slot map that changed); refused
 * credentials or certificates; a lease lost, with its name and reason; the
 * connect-time store checks' warnings (persistence off, an eviction policy,
 * CONFIG GET refused) -- goes, one line of text at a time, to the one log
 * function of the process set with lr_set_log(). Without one, nothing is
 * formatted and the calls cost a load and a branch.
 *
 * Rate limiting. A storm of the same line (20,000 leases lost for the same
 * reason in a second, a reconnect loop against a store that is down) is told
 * once, then, when the storm's window (LR_LOG_WINDOW_MS) is over, once more
 * with a count:
 *
 *   redis 127.0.0.1:6379: connect: connection refused
 *   redis 127.0.0.1:6379: connect: connection refused (repeated 19 times in the last 10 s)
 *   lease job-0 lost: LR_EEXPIRED (lease expired locally before a renewal succeeded)
 *   19999 more leases lost: LR_EEXPIRED (lease expired ...) in the last 10 s, first: job-1
 *
 * Lines are "the same" when their text is the same; lease-lost lines are the
 * same when their reason is, whatever the name. Counting lines go out from
 * the loop (each pass checks, at the cost of one atomic load when nothing is
 * counted), from the next line of the same kind, or from lr_log_flush(). The
 * table of kinds is fixed (64 kinds at once; the least recently seen gives
 * way, its count told first): no allocation, ever, on any of these paths.
 * Whatever the kinds, at most 100 lines go out per window; the lines past
 * that are counted and told as one ("N more log lines not shown ...").
 *
 * Threads. One log function for the process: set it before any loop runs
 * (it may be set before any loop exists) and change it only while none
 * runs. It is called on the thread of the loop the event happened on, so a
 * program with several loops on several threads gets calls from each, at
 * the same time: the function must be thread-safe if loops run on several
 * threads. The rate limiter is shared by every thread and guarded by one
 * mutex, held only while a line is counted or formatted (never while the
 * log function runs), so a storm spread over several loops is still one line
 * and one count.
 */
#ifndef LEASERING_LOG_H
#define LEASERING_LOG_H

#include <leasering/common.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Severity, increasing: a minimum level passes it and everything above. */
enum lr_log_level {
    LR_LOG_DEBUG = 10, /* detail for developers; nothing logs it by default */
    LR_LOG_INFO = 20,  /* a connection up or back, a failover's new map */
    LR_LOG_WARN = 30,  /* a connection lost or refused, a lease lost, a store check's warning */
    LR_LOG_ERROR = 40, /* refused credentials or certificates, a bad configuration */
};

/* How long a storm of one kind of line is counted before its count is told. */
#define LR_LOG_WINDOW_MS 10000u

/* The longest line handed to the log function (longer ones are cut). */
#define LR_LOG_LINE_MAX 512

/*
 * lr_log_fn - receives one line: @level (enum lr_log_level), @msg
 * (NUL-terminated, no newline, at most LR_LOG_LINE_MAX - 1 bytes, valid only
 * during the call; it never holds a secret), and the @arg given to
 * lr_set_log(). It must not call leasering functions other than
 * lr_log_level_name() (it runs inside the loop's own code), and should not
 * block: the loop waits for it.
 */
typedef void (*lr_log_fn)(void *arg, int level, const char *msg);

/*
 * lr_set_log - send the library's log lines to @fn (with @arg), or nowhere
 * (@fn NULL, the default).
 * Allocates: never. Context: any thread, while no loop runs (see above).
 */
LR_API void lr_set_log(void (*fn)(void *arg, int level, const char *msg), void *arg);

/*
 * lr_set_log_level - pass lines at @min_level and above (default
 * LR_LOG_INFO; LR_LOG_DEBUG passes everything, LR_LOG_ERROR only errors).
 * Lines below it are not formatted. Allocates: never. Context: any thread.
 */
LR_API void lr_set_log_level(int min_level);

/*
 * lr_log_flush - tell every count still open now ("... (repeated N times in
 * the last S s)"), without waiting for the end of its window: before exit,
 * say. Allocates: never. Context: any thread (calls the log function on it).
 */
LR_API void lr_log_flush(void);

/*
 * lr_log_level_name - "debug", "info", "warn" or "error" (a level between
 * two of them gets the name of the one below it; below debug, "debug").
 * Static strings. Context: any thread.
 */
LR_API const char *lr_log_level_name(int level);

#ifdef __cplusplus
}
#endif

#endif
