/* SPDX-License-Identifier: MIT */
/*
 * leasering - command-line tool.
 *
 *   leasering hold --backend URI --name NAME [--ttl MS] [--wait MS] [--grace MS]
 *                  -- CMD [ARG...]          (hold.c: run CMD while holding NAME)
 *   leasering bench --backend URI --leases N --ttl MS --seconds S
 *                   [--connections C] [--prefix P] [--batch B] [--coalesce MS]
 *                   [--inflight K] [--acquire-timeout MS] [--latency-hist FILE]
 *                   [--renew-fraction F] [--request-timeout MS] [--metrics HOST:PORT]
 *                   [--json] [--log-json]
 *   leasering status --backend URI [--json] [--log-json] NAME...   (status.c)
 *   leasering --version
 *   leasering help            (usage on stdout, exit 0; bare "leasering":
 *                              usage on stderr, exit 2)
 *
 * Every option that takes a value takes it as "--opt value" or "--opt=value".
 *
 * bench acquires N leases named P0 .. P(N-1) (default prefix "bench:"), holds
 * them with automatic renewal for S seconds, releases them all, and reports
 * what happened: counts, renewal latency, timer lateness, CPU per renewal,
 * memory per lease, and the libc allocations made in the steady state.
 * The library's log lines (connections, failovers, leases lost, store
 * warnings; leasering/log.h) go to stderr, one per line, as
 * "2026-11-30T07:50:00.123Z warn redis 127.0.0.1:6379: connection refused",
 * or with --log-json as JSON lines {"ts":"...","level":"warn","msg":"..."}.
 * With --metrics it serves the library's exporter (/metrics, /healthz) on
 * the bench's loop while it runs.
 * Exit status: 0 when every lease was acquired and none was lost, 3 when
 * some were not acquired or were lost (the report still comes, and stderr
 * says "N not acquired, M lost"), 2 for bad arguments, 1 when the backend
 * could not be used; 130/143 after SIGINT/SIGTERM (a signalfd on the loop:
 * every lease released, then the report so far).
 * Layer: public API only.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>

#include <leasering.h>
#include "alloccount.h"
#include "cli.h"

#define ACQUIRE_TIMEOUT_MS 20000u
#define EXIT_INCOMPLETE 3
#define RELEASE_WAIT_MS 10000u

/* Every URI scheme lr_manager_new() knows (leasering/backend.h has the details). */
static const char schemes[] =
    "Store URIs (--backend; every parameter is in leasering/backend.h):\n"
    "  mem://[NAME]                          in-process store (tests, benchmarks)\n"
    "  redis://[USER[:PASSWORD]@]HOST[:PORT][/DB][?prefix=P&mode=session...]\n"
    "  rediss://...                          the same over TLS (?cacert=FILE...)\n"
    "  unix:///PATH/redis.sock[?db=N&prefix=P]  (also redis:///PATH)\n"
    "  redis+sentinel://HOST:PORT[,HOST:PORT...]/MASTER[?db=N&prefix=P]\n"
    "  rediss+sentinel://...                 the same over TLS\n"
    "  redis+cluster://HOST:PORT[,HOST:PORT...][?prefix=P]\n"
    "  azblob://ACCOUNT:KEY@HOST[:PORT]/CONTAINER[?tls=yes|no]  (or azblob:///CONTAINER\n"
    "                                        with AZURE_STORAGE_CONNECTION_STRING)\n"
    "  cosmos://KEY@HOST[:PORT]/DATABASE/CONTAINER[?tls=yes|no&doc_ttl=S]  (or\n"
    "          cosmos:///DATABASE/CONTAINER with COSMOS_CONNECTION_STRING)\n"
    "  etcd://[USER:PASSWORD@]HOST:PORT[,HOST:PORT...][?prefix=P&mode=session|lease\n"
    "          &tls=yes|no&cacert=FILE]      etcd v3 (JSON gateway)\n"
    "  chaos+STORE-URI                       STORE-URI with injected faults (tests)\n";

static const char usage_top[] =
    "usage: leasering COMMAND [OPTIONS]\n"
    "       leasering --version\n"
    "       leasering help\n"
    "\n"
    "Commands:\n"
    "  hold      run a command while holding a lease (leasering hold --help)\n"
    "  bench     hold N leases for S seconds and report (leasering bench --help)\n"
    "  status    who holds each NAME: leasering status --backend URI [--json] NAME...\n"
    "  help      this text, on stdout (bare \"leasering\" prints it on stderr, exit 2)\n"
    "\n"
    "Options that take a value accept \"--opt value\" and \"--opt=value\".\n";

static const char usage_bench[] =
    "usage: leasering bench --backend URI --leases N --ttl MS --seconds S\n"
    "                       [--connections C] [--prefix P] [--batch B] [--coalesce MS]\n"
    "                       [--inflight K] [--acquire-timeout MS] [--latency-hist FILE]\n"
    "                       [--renew-fraction F] [--request-timeout MS]\n"
    "                       [--metrics HOST:PORT] [--json] [--log-json]\n"
    "\n"
    "Acquires N leases named P0..P(N-1) (default prefix \"bench:\") from the store\n"
    "at URI (below), holds them with automatic renewal for S seconds, releases\n"
    "them, and reports. Options take \"--opt value\" or \"--opt=value\".\n"
    "Counts and rates cover the hold period; steady_allocs counts libc allocations\n"
    "from one renewal cycle into the hold until its end; rss_bytes_per_lease is the\n"
    "resident-memory growth from before the leases were made, divided by N.\n"
    "cpu_ns_per_renewal is process CPU time (CLOCK_PROCESS_CPUTIME_ID) over the hold\n"
    "divided by its renewals; cpu_hold_s is that CPU time and cpu_ns_per_lease_second\n"
    "divides it by held_at_hold_end x the hold's seconds (the figure that compares\n"
    "stores whose one renewal keeps many leases, e.g. etcd's sessions);\n"
    "cpu_user_s/cpu_sys_s come from getrusage, whose split\n"
    "the kernel may sample at the tick.\n"
    "--batch B: renewals per batched request (1 = no batching; default 64).\n"
    "--coalesce MS: renewal-time grid (default 20 ms, azblob 100 ms, finer for short TTLs).\n"
    "--inflight K: lease requests in flight per connection (default: the library's).\n"
    "--renew-fraction F: renew this far into the TTL after a send, in (0, 0.9]\n"
    "(default 1/3). --request-timeout MS: a request unanswered this long, with the\n"
    "store silent meanwhile, kills its connection (default min(2000, TTL/4)).\n"
    "--acquire-timeout MS: how long each lease keeps trying to be acquired\n"
    "(default 20000); the hold starts once every lease is acquired or gave up.\n"
    "not_acquired counts the leases still not acquired then; acquire_seconds is\n"
    "the time from the first acquire until the last lease was acquired or gave up.\n"
    "--latency-hist FILE: write the renew-latency histogram (every renewal since\n"
    "the first acquire) to FILE, one \"upper_bound_us count\" line per non-empty\n"
    "bucket, in increasing order (exit 1 if it cannot be written).\n"
    "renew_keys_per_request: leases per batched renewal request in the hold.\n"
    "lost counts the whole run; lost_in_hold until the hold ended, and\n"
    "held_at_hold_end the leases still held then.\n"
    "--metrics HOST:PORT: serve Prometheus /metrics and /healthz there while the\n"
    "bench runs (label manager=\"SCHEME\", '+' written '_'; port 0 picks one); the\n"
    "address is printed on stderr.\n"
    "--json prints exactly one JSON object on stdout; signal is 0, or the signal\n"
    "that ended the run early.\n"
    "Log lines (connections, failovers, leases lost, store warnings) go to stderr\n"
    "as \"TIME LEVEL TEXT\"; --log-json makes each a JSON object\n"
    "{\"ts\":\"...\",\"level\":\"warn\",\"msg\":\"...\"} on a line of its own.\n"
    "SIGINT or SIGTERM: every lease is released, the report covers the run until\n"
    "then, and the exit status is 130 or 143 (a second one while releasing stops\n"
    "waiting for the store).\n"
    "Exit: 0 every lease acquired and none lost; 3 some not acquired or lost (the\n"
    "report still comes, and stderr says \"N not acquired, M lost\"); 2 bad\n"
    "arguments; 1 the backend could not be used; 130/143 SIGINT/SIGTERM.\n";

struct bench {
    const char *backend;
    const char *prefix;
    const char *latency_hist;
    const char *metrics; /* --metrics HOST:PORT */
    unsigned long leases;
    unsigned long ttl_ms;
    unsigned long seconds;
    unsigned long connections;
    unsigned long batch;
    unsigned long coalesce;
    unsigned long acquire_timeout;
    unsigned long inflight;
    unsigned long request_timeout;
    double renew_fraction;
    int json;
    int log_json;
    int tty;

    struct lr_loop *loop;
    struct lr_manager *m;
    struct lr_exporter *exporter;
    struct lr_lease *ls;
    struct lr_timer phase_timer;
    struct lr_timer window_timer;
    struct lr_timer progress_timer;
    struct lr_poll sig_poll; /* SIGINT/SIGTERM, through a signalfd */
    int sigfd;
    int signo;   /* the first signal that ended the run early, or 0 */
    int closing; /* the manager and the signal watcher, still closing */

    int phase; /* 0 acquiring, 1 holding, 2 releasing, 3 closing */
    unsigned long outcomes;
    unsigned long acquired;
    unsigned long conflicts;
    unsigned long acq_failed;
    int acq_error;
    long to_release;
    unsigned long released;
    unsigned long lost;
    uint64_t acquire_start_ns;
    uint64_t acquire_end_ns; /* the last lease acquired or gave up */
    uint64_t hold_start_ns;
    uint64_t hold_end_ns;
    uint64_t renewals_at_hold;
    uint64_t renewals_at_end;
    uint64_t renew_requests_at_hold; /* batched renewal requests and their keys */
    uint64_t renew_keys_at_hold;
    uint64_t renew_requests_at_end;
    uint64_t renew_keys_at_end;
    unsigned long lost_at_end; /* B.lost when the hold ended */
    uint32_t held_at_end;      /* leases held when the hold ended */
    int counting;
    struct alloc_counts allocs;
    struct rusage ru_hold;
    struct rusage ru_end;
    uint64_t cpu_hold_ns; /* CLOCK_PROCESS_CPUTIME_ID */
    uint64_t cpu_end_ns;
    long rss_base;
    long rss_end;
};

static struct bench B = {.sigfd = -1};

static uint64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Resident set size from /proc/self/statm, read without stdio (which may
 * allocate inside the measured window). */
static long rss_bytes(void)
{
    char buf[128];
    int fd = open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    ssize_t n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (n <= 0)
        return 0;
    buf[n] = '\0';
    char *p = strchr(buf, ' ');
    return p ? strtol(p + 1, NULL, 10) * sysconf(_SC_PAGESIZE) : 0;
}

/* Process CPU time in ns from the scheduler's exact accounting. getrusage's
 * user/sys split is sampled at the tick on many kernels (seen here: a whole
 * run booked to one side), so totals per renewal use this clock. */
static uint64_t cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static double tv_s(struct timeval tv)
{
    return (double)tv.tv_sec + (double)tv.tv_usec / 1e6;
}

/* ---- phases ---- */

/* The loop stops once the manager and the signal watcher have closed. */
static void closed_one(void)
{
    if (--B.closing == 0)
        lr_loop_stop(B.loop);
}

static void finish(struct lr_manager *m, void *arg)
{
    (void)m;
    (void)arg;
    closed_one();
}

static void sig_closed(struct lr_poll *p)
{
    (void)p;
    closed_one();
}

static void start_close(void)
{
    if (B.phase == 3)
        return;
    B.phase = 3;
    lr_timer_stop(&B.phase_timer);
    lr_timer_stop(&B.progress_timer);
    B.closing = 2;
    lr_poll_close(&B.sig_poll, sig_closed);
    lr_manager_close(B.m, finish, NULL);
}

static void end_hold(void)
{
    if (B.counting) {
        B.allocs = alloccount_end();
        B.counting = 0;
    }
    lr_timer_stop(&B.window_timer);
    B.hold_end_ns = mono_ns();
    getrusage(RUSAGE_SELF, &B.ru_end);
    B.cpu_end_ns = cpu_ns();
    B.renewals_at_end = lr_manager_stats(B.m)->renewals;
    B.renew_requests_at_end = lr_manager_stats(B.m)->renew_requests;
    B.renew_keys_at_end = lr_manager_stats(B.m)->renew_keys;
    B.lost_at_end = B.lost;
    B.held_at_end = lr_manager_stats(B.m)->held;
    B.rss_end = rss_bytes();
    B.phase = 2;
    B.to_release = lr_manager_release_all(B.m);
    if (B.to_release <= 0 || (unsigned long)B.to_release <= B.released) {
        start_close();
        return;
    }
    lr_loop_update_time(B.loop);
    lr_timer_start(&B.phase_timer, lr_loop_now_ms(B.loop) + RELEASE_WAIT_MS);
}

static void window_open(struct lr_timer *t)
{
    (void)t;
    alloccount_begin();
    B.counting = 1;
}

static void phase_fired(struct lr_timer *t)
{
    (void)t;
    if (B.phase == 1)
        end_hold();
    else if (B.phase == 2)
        start_close(); /* some releases never answered: report anyway */
}

static void start_hold(void)
{
    B.phase = 1;
    B.hold_start_ns = mono_ns();
    getrusage(RUSAGE_SELF, &B.ru_hold);
    B.cpu_hold_ns = cpu_ns();
    B.renewals_at_hold = lr_manager_stats(B.m)->renewals;
    B.renew_requests_at_hold = lr_manager_stats(B.m)->renew_requests;
    B.renew_keys_at_hold = lr_manager_stats(B.m)->renew_keys;
    lr_loop_update_time(B.loop);
    uint64_t now = lr_loop_now_ms(B.loop);
    lr_timer_start(&B.phase_timer, now + B.seconds * 1000u);
    /* Every lease has renewed once by half a TTL into the hold (renewals
     * come at a third of the TTL, +-10%): the steady state starts there. */
    uint64_t w = B.ttl_ms / 2;
    if (w > B.seconds * 500u)
        w = B.seconds * 500u;
    lr_timer_start(&B.window_timer, now + w);
}

static void outcome(void)
{
    if (++B.outcomes == B.leases) {
        B.acquire_end_ns = mono_ns();
        if (!B.acquired && B.acq_failed && B.acq_error) {
            start_close(); /* nothing held: the backend is unusable */
            return;
        }
        start_hold();
    }
}

static void on_acquired(struct lr_lease *l)
{
    (void)l;
    B.acquired++;
    if (B.phase == 0)
        outcome();
}

static void on_acquire_failed(struct lr_lease *l, int status)
{
    (void)l;
    B.acq_failed++;
    if (status == LR_ECONFLICT)
        B.conflicts++;
    else
        B.acq_error = status;
    if (B.phase == 0)
        outcome();
}

static void on_lost(struct lr_lease *l, int reason)
{
    (void)l;
    (void)reason;
    B.lost++;
}

static void on_released(struct lr_lease *l, int status)
{
    (void)l;
    (void)status;
    B.released++;
    if (B.phase == 2 && B.to_release > 0 && B.released >= (unsigned long)B.to_release)
        start_close();
}

static const struct lr_lease_cbs cbs = {
    .acquired = on_acquired,
    .acquire_failed = on_acquire_failed,
    .lost = on_lost,
    .released = on_released,
};

/* SIGINT/SIGTERM: end the run as the timer would -- release everything and
 * report what happened so far (bench exits 128+N). While acquiring, the hold
 * is empty; a second signal while releasing stops waiting for the store. */
static void signal_ready(struct lr_poll *p, int status, unsigned events)
{
    (void)p;
    (void)events;
    int sig = status < 0 ? 0 : cli_signal_read(B.sigfd);
    if (!sig || B.phase == 3)
        return; /* closing: the run is over, and reported as it was */
    if (!B.signo)
        B.signo = sig;
    if (B.phase == 0) {
        B.acquire_end_ns = mono_ns();
        start_hold();
        end_hold();
    } else if (B.phase == 1) {
        end_hold();
    } else if (B.phase == 2) {
        start_close();
    }
}

/* One line on stderr, redrawn in place; no allocation (stack buffer, write). */
static void progress(struct lr_timer *t)
{
    const struct lr_manager_stats *s = lr_manager_stats(B.m);
    char line[200];
    double el = B.phase >= 1 ? (double)(mono_ns() - B.hold_start_ns) / 1e9 : 0;
    uint64_t ren = s->renewals - (B.phase >= 1 ? B.renewals_at_hold : 0);
    int n = snprintf(line, sizeof(line),
                     "\r%-9s held %" PRIu32 "/%lu  renewals %" PRIu64 " (%.0f/s)  failures %" PRIu64
                     "  lost %lu  p99 %" PRIu64 " us   ",
                     B.phase == 0 ? "acquiring" : B.phase == 1 ? "holding" : "releasing",
                     s->held, B.leases, ren, el > 0 ? (double)ren / el : 0.0, s->renew_failures,
                     B.lost, lr_hist_quantile(&s->renew_latency_us, 0.99));
    if (n > 0 && write(2, line, (size_t)n) < 0)
        B.tty = 0;
    lr_timer_start(t, lr_loop_now_ms(t->loop) + 250);
}

/* ---- log lines ---- */

/* @s as the inside of a JSON string (RFC 8259, section 7): '"', '\\' and
 * every control byte escaped; other bytes as they are. Returns the length
 * written to @out (NUL-terminated; @cap >= 6 * strlen(s) + 1 always suffices). */
static size_t json_escape(char *out, size_t cap, const char *s)
{
    static const char hex[] = "0123456789abcdef";
    size_t n = 0;
    for (; *s && n + 7 < cap; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\') {
            out[n++] = '\\';
            out[n++] = (char)ch;
        } else if (ch == '\n' || ch == '\t' || ch == '\r') {
            out[n++] = '\\';
            out[n++] = ch == '\n' ? 'n' : ch == '\t' ? 't' : 'r';
        } else if (ch < 0x20 || ch == 0x7f) {
            memcpy(out + n, "\\u00", 4);
            out[n + 4] = hex[ch >> 4];
            out[n + 5] = hex[ch & 15];
            n += 6;
        } else {
            out[n++] = (char)ch;
        }
    }
    out[n] = '\0';
    return n;
}

static int log_json;         /* cli_log_start's @json */
static const int *log_clear; /* ... and @clear_line */

/* One log line on stderr, with one write() (lines from several threads do not
 * mix) and no allocation (the bench counts allocations while it logs). */
static void log_line(void *arg, int level, const char *msg)
{
    (void)arg;
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    char when[80];
    snprintf(when, sizeof(when), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
             (int)(ts.tv_nsec / 1000000) % 1000);
    char line[6 * LR_LOG_LINE_MAX + 128];
    /* a progress line is redrawn in place: clear it first */
    int n = snprintf(line, sizeof(line), "%s", log_clear && *log_clear ? "\r\033[K" : "");
    if (log_json) {
        char esc[6 * LR_LOG_LINE_MAX + 1];
        json_escape(esc, sizeof(esc), msg);
        n += snprintf(line + n, sizeof(line) - (size_t)n,
                      "{\"ts\":\"%s\",\"level\":\"%s\",\"msg\":\"%s\"}\n", when,
                      lr_log_level_name(level), esc);
    } else {
        n += snprintf(line + n, sizeof(line) - (size_t)n, "%s %s %s\n", when,
                      lr_log_level_name(level), msg);
    }
    if (n > (int)sizeof(line) - 1)
        n = (int)sizeof(line) - 1;
    if (write(2, line, (size_t)n) < 0)
        return; /* nowhere to say it */
}

void cli_log_start(int json, const int *clear_line)
{
    log_json = json;
    log_clear = clear_line;
    tzset(); /* gmtime_r in log_line then never loads zone data (no allocation) */
    lr_set_log(log_line, NULL);
}

/* The URI for messages: without user info (passwords, account keys) or the
 * query (SAS tokens). Secrets are never printed: user info ends at the last
 * '@' before the query, since a bare Cosmos key may hold '/'
 * (cosmos://KEY@HOST), so a '/' does not end it here. */
const char *cli_redacted(const char *uri)
{
    static char out[256];
    const char *p = strstr(uri, "://");
    size_t n = 0;
    if (!p) {
        snprintf(out, sizeof(out), "(unparsable URI)");
        return out;
    }
    p += 3;
    n = (size_t)(p - uri) < sizeof(out) - 1 ? (size_t)(p - uri) : sizeof(out) - 1;
    memcpy(out, uri, n);
    const char *host = p, *end = p + strcspn(p, "?");
    for (const char *c = p; c < end; c++)
        if (*c == '@')
            host = c + 1;
    size_t rest = strcspn(host, "?");
    if (n + rest >= sizeof(out))
        rest = sizeof(out) - n - 1;
    memcpy(out + n, host, rest);
    out[n + rest] = '\0';
    return out;
}

/* ---- arguments ---- */

int cli_number(const char *cmd, const char *opt, const char *v, unsigned long lo,
               unsigned long hi, unsigned long *out)
{
    char *end;
    errno = 0;
    unsigned long x = v ? strtoul(v, &end, 10) : 0;
    if (!v || !*v || *end || errno || *v == '-' || x < lo || x > hi) {
        fprintf(stderr, "leasering %s: %s needs a whole number from %lu to %lu\n", cmd, opt,
                lo, hi);
        return -1;
    }
    *out = x;
    return 0;
}

/* A fraction in (0, @hi/100], for --renew-fraction. */
static int fraction(const char *cmd, const char *opt, const char *v, unsigned long hi,
                    double *out)
{
    char *end;
    errno = 0;
    double x = v ? strtod(v, &end) : 0;
    if (!v || !*v || *end || errno || !(x > 0) || x > (double)hi / 100) {
        fprintf(stderr, "leasering %s: %s needs a number above 0 and at most %g\n", cmd, opt,
                (double)hi / 100);
        return -1;
    }
    *out = x;
    return 0;
}

void cli_usage(FILE *f, const char *text)
{
    fputs(text, f);
    fputc('\n', f);
    fputs(schemes, f);
}

static const struct opt bench_opts[] = {
    {"--backend", OPT_STR, &B.backend, 0, 0},
    {"--prefix", OPT_STR, &B.prefix, 0, 0},
    {"--latency-hist", OPT_STR, &B.latency_hist, 0, 0},
    {"--metrics", OPT_STR, &B.metrics, 0, 0},
    {"--leases", OPT_NUM, &B.leases, 1, 1u << 24},
    {"--ttl", OPT_NUM, &B.ttl_ms, 1, 30u * 86400u * 1000u},
    {"--seconds", OPT_NUM, &B.seconds, 1, 7u * 86400u},
    {"--connections", OPT_NUM, &B.connections, 1, 64},
    {"--batch", OPT_NUM, &B.batch, 1, 1024},
    {"--coalesce", OPT_NUM, &B.coalesce, 1, 60000},
    {"--acquire-timeout", OPT_NUM, &B.acquire_timeout, 0, 86400u * 1000u},
    {"--inflight", OPT_NUM, &B.inflight, 1, 1u << 20},
    {"--renew-fraction", OPT_FRAC, &B.renew_fraction, 0, 90},
    {"--request-timeout", OPT_NUM, &B.request_timeout, 1, 3600u * 1000u},
    {"--json", OPT_FLAG, &B.json, 0, 0},
    {"--log-json", OPT_FLAG, &B.log_json, 0, 0},
};

int cli_parse(const char *cmd, const struct opt *opts, size_t n, int argc, char **argv,
              int dashdash, const char *usage)
{
    int i = 0;
    for (; i < argc; i++) {
        const char *a = argv[i], *eq = NULL, *v = NULL;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            cli_usage(stdout, usage);
            exit(0);
        }
        if (dashdash && !strcmp(a, "--"))
            return i + 1;
        size_t len = strlen(a);
        if (!strncmp(a, "--", 2) && (eq = strchr(a, '=')) != NULL) {
            len = (size_t)(eq - a);
            v = eq + 1;
        }
        const struct opt *o = NULL;
        for (size_t k = 0; k < n; k++)
            if (strlen(opts[k].name) == len && !strncmp(a, opts[k].name, len))
                o = &opts[k];
        if (!o) {
            fprintf(stderr,
                    "leasering %s: unknown option '%.*s' (leasering %s --help lists them)\n", cmd,
                    (int)len, a, cmd);
            return -1;
        }
        if (o->kind == OPT_FLAG) {
            if (eq) {
                fprintf(stderr, "leasering %s: %s takes no value\n", cmd, o->name);
                return -1;
            }
            *(int *)o->dst = 1;
            continue;
        }
        if (!eq) {
            if (i + 1 >= argc) {
                fprintf(stderr, "leasering %s: %s needs a value\n", cmd, o->name);
                return -1;
            }
            v = argv[++i];
        }
        if (o->kind == OPT_STR)
            *(const char **)o->dst = v;
        else if (o->kind == OPT_FRAC ? fraction(cmd, o->name, v, o->hi, o->dst) < 0
                                     : cli_number(cmd, o->name, v, o->lo, o->hi, o->dst) < 0)
            return -1;
    }
    return i;
}

int cli_require(const char *cmd, const struct opt *opts, size_t n, const char *const *names,
                size_t k)
{
    int missing = 0;
    for (size_t r = 0; r < k; r++)
        for (size_t j = 0; j < n; j++)
            if (!strcmp(opts[j].name, names[r]) &&
                (opts[j].kind == OPT_STR ? !*(const char **)opts[j].dst
                                         : !*(unsigned long *)opts[j].dst)) {
                fprintf(stderr, "leasering %s: %s is required\n", cmd, opts[j].name);
                missing = 1;
            }
    return missing ? -1 : 0;
}

int cli_signals(const char *cmd, sigset_t *old)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    int fd = -1;
    if (sigprocmask(SIG_BLOCK, &set, old) < 0 ||
        (fd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK)) < 0) {
        fprintf(stderr, "leasering %s: cannot take signals: %s\n", cmd, strerror(errno));
        return -1;
    }
    return fd;
}

int cli_signal_read(int sigfd)
{
    struct signalfd_siginfo si;
    if (read(sigfd, &si, sizeof(si)) != (ssize_t)sizeof(si))
        return 0;
    return (int)si.ssi_signo;
}

/* Options as "--opt value" or "--opt=value"; "--help" anywhere prints the
 * usage and exits 0. Every error names the option it is about. */
static int parse(int argc, char **argv)
{
    B.prefix = "bench:";
    B.batch = 64;
    B.connections = 1;
    B.acquire_timeout = ACQUIRE_TIMEOUT_MS;
    size_t n = sizeof(bench_opts) / sizeof(bench_opts[0]);
    if (cli_parse("bench", bench_opts, n, argc, argv, 0, usage_bench) < 0)
        return -1;
    static const char *const required[] = {"--backend", "--leases", "--ttl", "--seconds"};
    if (cli_require("bench", bench_opts, n, required, sizeof(required) / sizeof(required[0])) <
        0) {
        fputs("usage: leasering bench --backend URI --leases N --ttl MS --seconds S [...]\n"
              "(leasering bench --help for every option)\n",
              stderr);
        return -1;
    }
    if (!B.prefix || strlen(B.prefix) + 8 > LR_NAME_MAX) {
        fprintf(stderr, "leasering bench: --prefix must leave room for the lease number "
                        "(at most %d bytes)\n",
                LR_NAME_MAX - 8);
        return -1;
    }
    return 0;
}

/* ---- report ---- */

/* The renew-latency histogram as "upper_bound_us count" lines, non-empty
 * buckets only. Returns 0, or -1 after saying why on stderr. */
static int write_hist(const char *path, const struct lr_hist *h)
{
    FILE *f = fopen(path, "w");
    if (!f) {
        fprintf(stderr, "leasering bench: --latency-hist %s: %s\n", path, strerror(errno));
        return -1;
    }
    for (unsigned b = 0; b < LR_HIST_BUCKETS; b++)
        if (h->buckets[b])
            fprintf(f, "%" PRIu64 " %" PRIu32 "\n", lr_hist_bucket_max(b), h->buckets[b]);
    if (fclose(f) != 0) {
        fprintf(stderr, "leasering bench: --latency-hist %s: %s\n", path, strerror(errno));
        return -1;
    }
    return 0;
}

static void report(void)
{
    const struct lr_manager_stats *s = lr_manager_stats(B.m);
    double hold_s = (double)(B.hold_end_ns - B.hold_start_ns) / 1e9;
    uint64_t ren = B.renewals_at_end - B.renewals_at_hold;
    double user = tv_s(B.ru_end.ru_utime) - tv_s(B.ru_hold.ru_utime);
    double sys = tv_s(B.ru_end.ru_stime) - tv_s(B.ru_hold.ru_stime);
    double cpu_hold = (double)(B.cpu_end_ns - B.cpu_hold_ns) / 1e9;
    double ns_per = ren ? cpu_hold * 1e9 / (double)ren : 0;
    /* Per lease-second of holding: the figure that compares stores whose
     * renewals keep different numbers of leases (etcd's sessions). */
    double lease_s = (double)B.held_at_end * hold_s;
    double ns_per_ls = lease_s > 0 ? cpu_hold * 1e9 / lease_s : 0;
    long grown = B.rss_end > B.rss_base ? B.rss_end - B.rss_base : 0;
    const struct lr_hist *lat = &s->renew_latency_us, *late = &s->timer_lateness_us;
    uint64_t acq_end = B.acquire_end_ns ? B.acquire_end_ns : mono_ns();
    double acq_s = (double)(acq_end - B.acquire_start_ns) / 1e9;
    uint64_t rreq = B.renew_requests_at_end - B.renew_requests_at_hold;
    double keys_per = rreq ? (double)(B.renew_keys_at_end - B.renew_keys_at_hold) / (double)rreq
                           : 0.0;
    if (B.json) {
        printf("{\"backend\":\"%s\",\"leases\":%lu,\"ttl_ms\":%lu,\"seconds\":%lu,"
               "\"connections\":%lu,\"batch\":%lu,"
               "\"acquired\":%lu,\"not_acquired\":%lu,\"acquire_seconds\":%.3f,"
               "\"conflicts\":%lu,\"renewals\":%" PRIu64 ","
               "\"renewals_per_sec\":%.1f,\"renew_failures\":%" PRIu64 ",\"lost\":%lu,"
               "\"renew_latency_us\":{\"p50\":%" PRIu64 ",\"p99\":%" PRIu64 ",\"p999\":%" PRIu64
               ",\"max\":%" PRIu64 "},"
               "\"timer_lateness_us\":{\"p50\":%" PRIu64 ",\"p99\":%" PRIu64 ",\"max\":%" PRIu64
               "},"
               "\"steady_allocs\":%" PRIu64 ",\"cpu_user_s\":%.3f,\"cpu_sys_s\":%.3f,"
               "\"cpu_ns_per_renewal\":%.1f,\"cpu_hold_s\":%.4f,\"cpu_ns_per_lease_second\":%.2f,"
               "\"rss_bytes\":%ld,\"rss_bytes_per_lease\":%.1f,"
               "\"renew_requests\":%" PRIu64 ",\"renew_keys_per_request\":%.2f,"
               "\"lost_in_hold\":%lu,\"held_at_hold_end\":%" PRIu32 ",\"reconnects\":%" PRIu64
               ",\"request_timeouts\":%" PRIu64 ",\"signal\":%d}\n",
               lr_manager_backend(B.m), B.leases, B.ttl_ms, B.seconds, B.connections, B.batch,
               B.acquired, B.leases - B.acquired, acq_s, B.conflicts, ren,
               hold_s > 0 ? (double)ren / hold_s : 0.0,
               s->renew_failures, B.lost, lr_hist_quantile(lat, 0.5),
               lr_hist_quantile(lat, 0.99), lr_hist_quantile(lat, 0.999), lat->max,
               lr_hist_quantile(late, 0.5), lr_hist_quantile(late, 0.99), late->max,
               B.allocs.allocs, user, sys, ns_per, cpu_hold, ns_per_ls, B.rss_end, (double)grown / (double)B.leases,
               rreq, keys_per, B.lost_at_end, B.held_at_end, s->reconnects, s->request_timeouts,
               B.signo);
        return;
    }
    printf("leasering bench: %lu leases on %s, TTL %lu ms, held %.1f s%s\n", B.leases,
           lr_manager_backend(B.m), B.ttl_ms, hold_s,
           B.signo == SIGINT    ? " (interrupted: SIGINT)"
           : B.signo == SIGTERM ? " (interrupted: SIGTERM)"
                                : "");
    printf("  acquired        %lu (conflicts %lu), not acquired %lu, in %.2f s\n", B.acquired,
           B.conflicts, B.leases - B.acquired, acq_s);
    printf("  renewals        %" PRIu64 " (%.0f/s), failures %" PRIu64 ", lost %lu\n", ren,
           hold_s > 0 ? (double)ren / hold_s : 0.0, s->renew_failures, B.lost);
    printf("  renew latency   p50 %" PRIu64 " us, p99 %" PRIu64 " us, p99.9 %" PRIu64
           " us, max %" PRIu64 " us\n",
           lr_hist_quantile(lat, 0.5), lr_hist_quantile(lat, 0.99),
           lr_hist_quantile(lat, 0.999), lat->max);
    printf("  timer lateness  p50 %" PRIu64 " us, p99 %" PRIu64 " us, max %" PRIu64 " us\n",
           lr_hist_quantile(late, 0.5), lr_hist_quantile(late, 0.99), late->max);
    printf("  cpu             %.0f ns per renewal, %.1f ns per lease-second (%.2f s in the hold; "
           "getrusage user %.2f s, sys %.2f s)\n",
           ns_per, ns_per_ls, cpu_hold, user, sys);
    printf("  memory          rss %.1f MiB, %.0f bytes per lease\n", (double)B.rss_end / 1048576.0,
           (double)grown / (double)B.leases);
    printf("  steady allocs   %" PRIu64 "\n", B.allocs.allocs);
    printf("  renew batches   %" PRIu64 " requests, %.1f keys each\n", rreq, keys_per);
}

/* --metrics: the exporter on the bench's loop, the manager labelled with
 * its scheme ('+' is no label character: "redis+cluster" -> "redis_cluster").
 * Returns 0, or the exit status after saying why. */
static int serve_metrics(void)
{
    int rc = lr_exporter_new(&B.exporter, B.loop, B.metrics);
    if (rc == -EINVAL) {
        fprintf(stderr, "leasering bench: --metrics needs HOST:PORT with an IPv4 HOST "
                        "(or :PORT), got '%s'\n", B.metrics);
        return 2;
    }
    char label[64];
    snprintf(label, sizeof(label), "%s", lr_manager_backend(B.m));
    for (char *c = label; *c; c++)
        if (*c == '+')
            *c = '_';
    if (rc == 0 && lr_exporter_add(B.exporter, B.m, label) == -EINVAL)
        rc = lr_exporter_add(B.exporter, B.m, "bench");
    if (rc < 0) {
        fprintf(stderr, "leasering bench: --metrics %s: %s\n", B.metrics, lr_strerror(rc));
        return 1;
    }
    const char *colon = strrchr(B.metrics, ':');
    fprintf(stderr, "leasering bench: metrics on http://%.*s:%d/metrics\n",
            colon == B.metrics ? 7 : (int)(colon - B.metrics),
            colon == B.metrics ? "0.0.0.0" : B.metrics, lr_exporter_port(B.exporter));
    return 0;
}

static int bench(int argc, char **argv)
{
    if (parse(argc, argv) < 0)
        return 2;
    B.tty = !B.json && isatty(2);
    cli_log_start(B.log_json, &B.tty);
    /* before the loop (and any thread of the library's) exists */
    if ((B.sigfd = cli_signals("bench", NULL)) < 0)
        return 1;
    int rc = lr_loop_new(&B.loop, NULL);
    if (rc < 0) {
        fprintf(stderr, "leasering bench: cannot create the loop: %s\n", lr_strerror(rc));
        return 1;
    }
    struct lr_manager_opts o = {
        .ttl_ms = (uint32_t)B.ttl_ms,
        .connections = (uint32_t)B.connections,
        .max_leases = (uint32_t)B.leases,
        .batch_max = (uint32_t)B.batch,
        .renew_coalesce_ms = (uint32_t)B.coalesce,
        .inflight_max = (uint32_t)B.inflight,
        .renew_fraction = B.renew_fraction,
        .request_timeout_ms = (uint32_t)B.request_timeout,
        .cbs = &cbs,
    };
    rc = lr_manager_new(&B.m, B.loop, B.backend, &o);
    if (rc == -EINVAL || rc == -EPROTONOSUPPORT || rc == -ERANGE) {
        fprintf(stderr, "leasering bench: bad --backend or --ttl for it: %s (%s)\n",
                lr_strerror(rc), cli_redacted(B.backend));
        return 2;
    }
    if (rc < 0) {
        fprintf(stderr, "leasering bench: cannot use backend %s: %s\n", cli_redacted(B.backend),
                lr_strerror(rc));
        return 1;
    }
    if (B.metrics && (rc = serve_metrics()) != 0)
        return rc;
    B.rss_base = rss_bytes();
    B.ls = calloc(B.leases, sizeof(*B.ls));
    if (!B.ls) {
        fprintf(stderr, "leasering bench: out of memory for %lu leases\n", B.leases);
        return 1;
    }
    lr_loop_update_time(B.loop);
    B.acquire_start_ns = mono_ns();
    for (unsigned long i = 0; i < B.leases; i++) {
        char name[LR_NAME_MAX + 1];
        snprintf(name, sizeof(name), "%s%lu", B.prefix, i);
        rc = lr_lease_init(B.m, &B.ls[i], name, NULL);
        if (rc == 0)
            rc = lr_lease_acquire(&B.ls[i], (uint32_t)B.acquire_timeout);
        if (rc < 0) {
            fprintf(stderr, "leasering bench: lease %s: %s\n", name, lr_strerror(rc));
            return 2;
        }
    }
    lr_timer_init(B.loop, &B.phase_timer, phase_fired);
    lr_timer_init(B.loop, &B.window_timer, window_open);
    lr_timer_init(B.loop, &B.progress_timer, progress);
    rc = lr_poll_init(B.loop, &B.sig_poll, B.sigfd, signal_ready);
    if (rc == 0)
        rc = lr_poll_start(&B.sig_poll, LR_POLL_IN);
    if (rc < 0) {
        fprintf(stderr, "leasering bench: cannot watch for signals: %s\n", lr_strerror(rc));
        return 1;
    }
    if (B.tty)
        lr_timer_start(&B.progress_timer, lr_loop_now_ms(B.loop) + 250);
    rc = lr_loop_run(B.loop);
    lr_log_flush(); /* counts of storms still open */
    if (B.tty)
        fputc('\n', stderr);
    if (rc < 0) {
        fprintf(stderr, "leasering bench: the loop failed: %s\n", lr_strerror(rc));
        return 1;
    }
    if (!B.acquired && B.acq_error && !B.hold_start_ns) {
        fprintf(stderr, "leasering bench: cannot use backend %s: %s\n", cli_redacted(B.backend),
                lr_strerror(B.acq_error));
        return 1;
    }
    report();
    fflush(stdout);
    int status = 0;
    int hist_failed =
        B.latency_hist && write_hist(B.latency_hist, &lr_manager_stats(B.m)->renew_latency_us) < 0;
    unsigned long missing = B.leases - B.acquired;
    if (B.signo)
        fprintf(stderr,
                "leasering bench: interrupted by %s: every lease released (%lu of %lu answered); "
                "the report covers the run until then\n",
                B.signo == SIGINT ? "SIGINT" : "SIGTERM", B.released,
                B.to_release > 0 ? (unsigned long)B.to_release : 0ul);
    if (missing || B.lost) {
        fprintf(stderr,
                "leasering bench: %lu not acquired, %lu lost (of %lu leases; %lu refused as held "
                "by someone else",
                missing, B.lost, B.leases, B.conflicts);
        if (B.acq_error)
            fprintf(stderr, "; last other failure: %s", lr_strerror(B.acq_error));
        fputs(")\n", stderr);
        status = EXIT_INCOMPLETE;
    }
    lr_exporter_free(B.exporter); /* before the manager it reads */
    if (B.signo)
        status = 128 + B.signo; /* what a shell expects of a command a signal ended */
    else if (hist_failed)
        status = 1;
    for (unsigned long i = 0; i < B.leases; i++)
        lr_lease_deinit(&B.ls[i]);
    free(B.ls);
    lr_manager_free(B.m);
    lr_loop_free(B.loop);
    close(B.sigfd);
    return status;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        cli_usage(stderr, usage_top);
        return 2;
    }
    const char *cmd = argv[1];
    if (!strcmp(cmd, "bench"))
        return bench(argc - 2, argv + 2);
    if (!strcmp(cmd, "hold"))
        return hold_main(argc - 2, argv + 2);
    if (!strcmp(cmd, "status"))
        return status_main(argc - 2, argv + 2);
    if (!strcmp(cmd, "--version")) {
        printf("leasering %s\n", lr_version());
        return 0;
    }
    if (!strcmp(cmd, "help") || !strcmp(cmd, "--help") || !strcmp(cmd, "-h")) {
        if (argc >= 3 && !strcmp(argv[2], "bench"))
            cli_usage(stdout, usage_bench);
        else if (argc >= 3 && !strcmp(argv[2], "hold"))
            cli_usage(stdout, hold_usage);
        else if (argc >= 3 && !strcmp(argv[2], "status"))
            cli_usage(stdout, status_usage);
        else
            cli_usage(stdout, usage_top);
        return 0;
    }
    fprintf(stderr, "leasering: unknown command '%s'\n", cmd);
    cli_usage(stderr, usage_top);
    return 2;
}
