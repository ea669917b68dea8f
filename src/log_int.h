/* SPDX-License-Identifier: MIT */
/* log_int.h - the library's side of the log (leasering/log.h): what the
 * core and the backends call to say something, rate-limited (log.c). */
#ifndef LR_LOG_INT_H
#define LR_LOG_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <leasering/log.h>

/* Would a line at @level go anywhere? (A log function set, level passes.)
 * For callers that must work to build a line; the calls below check it too. */
bool lr__log_on(int level);

/* One line, printf-style (no newline). Lines with the same text are one
 * kind for the rate limiter. Allocates: never. */
void lr__log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* lr__log(level, "%s", text) without formatting it again. */
void lr__log_text(int level, const char *text);

/* Lease @name (@len bytes) was lost for @reason (LR_E* or -errno): one kind
 * per reason, whatever the name (a storm is "N more leases lost ..., first:
 * NAME"). Level LR_LOG_WARN. Allocates: never. */
void lr__log_lease_lost(const char *name, size_t len, int reason);

/* Once per loop pass: tell the counts whose window is over. One atomic load
 * when nothing is being counted. */
void lr__log_tick(void);

/* Tests: the counting window (default LR_LOG_WINDOW_MS), and forget every
 * kind and count (without telling them). */
void lr__log_set_window_ms(uint32_t ms);
void lr__log_reset(void);

#endif
