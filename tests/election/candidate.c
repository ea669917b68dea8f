/* SPDX-License-Identifier: MIT */
/*
 * candidate.c - one candidate of the election acceptance test
 * (test_election_procs.c), on the public API only: it joins the election for
 * one name and logs, with CLOCK_MONOTONIC ns times (one clock for every
 * process of the machine), what it believes, so that an outside observer
 * (observer.c) can check the leadership intervals of all candidates.
 *
 * Log, one line per event, written whole with write(2) to an O_APPEND file
 * at once (a SIGKILL loses nothing written before it):
 *   T hello ID PID
 *   T start FENCE VU      started_leading (VU: lr_lease_valid_until, ms)
 *   T lead FENCE VU       a tick where it acted as leader: it believed it
 *                         led, and lr_lease_remaining_ms() > 0 (T: the clock
 *                         read before that question, the moment of decision)
 *   T stop REASON         stopped_leading
 *   T resign              it called lr_election_resign (acts no more)
 *   T leader IDENTITY     new_leader
 *   T exit                shutting down (acts no more)
 * The tick runs every --tick-ms in host code between loop passes (the
 * embedding pattern), like the fault suite's holder.
 *
 * SIGUSR1: resign if leading. SIGTERM/SIGINT: resign if leading, wait (at
 * most 2 s) for stopped_leading, free the election, close the manager, exit
 * 0. Exit 2: bad arguments; 1: a setup or loop failure.
 * PLANT_IGNORE_STOPPED (compile time) builds the planted candidate that
 * trusts its own flag: it ignores stopped_leading and does not ask the lease
 * before acting.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>

#include <leasering.h>

static struct {
    const char *uri, *name, *log_path, *id;
    unsigned ttl, retry_ms, tick_ms;
} opt = {.name = "leader", .id = "c", .ttl = 1000, .tick_ms = 5};

static struct lr_loop *loop;
static struct lr_manager *mgr;
static struct lr_election *el;
static int log_fd = -1;
static bool leading; /* what this process believes */
static bool stopped; /* stopped_leading seen after the shutdown's resign */

static uint64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void logf_line(uint64_t t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void logf_line(uint64_t t, const char *fmt, ...)
{
    char line[256];
    int n = snprintf(line, sizeof(line), "%" PRIu64 " ", t);
    va_list ap;
    va_start(ap, fmt);
    n += vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
    va_end(ap);
    if (n > (int)sizeof(line) - 2)
        n = (int)sizeof(line) - 2;
    line[n++] = '\n';
    if (write(log_fd, line, (size_t)n) != n)
        fprintf(stderr, "candidate %s: short log write\n", opt.id);
}

static uint64_t vu_ms(void)
{
    return lr_lease_valid_until(lr_election_lease(el));
}

static void on_start(struct lr_election *e, uint64_t fence)
{
    (void)e;
    leading = true;
    logf_line(mono_ns(), "start %" PRIu64 " %" PRIu64, fence, vu_ms());
}

static void on_stop(struct lr_election *e, int reason)
{
    (void)e;
    logf_line(mono_ns(), "stop %d", reason);
    stopped = true;
#ifndef PLANT_IGNORE_STOPPED
    leading = false;
#endif
}

static void on_leader(struct lr_election *e, const char *identity)
{
    (void)e;
    logf_line(mono_ns(), "leader %s", identity);
}

static const struct lr_election_cbs cbs = {
    .started_leading = on_start, .stopped_leading = on_stop, .new_leader = on_leader};

/* Act as leader if we may. */
static void tick(void)
{
    if (!leading)
        return;
    uint64_t t = mono_ns();
#ifdef PLANT_IGNORE_STOPPED
    bool may = true; /* planted: trusts its own flag */
#else
    bool may = lr_lease_remaining_ms(lr_election_lease(el)) > 0;
#endif
    if (may)
        logf_line(t, "lead %" PRIu64 " %" PRIu64, lr_lease_fence(lr_election_lease(el)), vu_ms());
}

static void resign(void)
{
    if (!leading)
        return;
    leading = false; /* from this line on we act no more */
    logf_line(mono_ns(), "resign");
    int rc = lr_election_resign(el);
    if (rc < 0)
        fprintf(stderr, "candidate %s: resign: %s\n", opt.id, lr_strerror(rc));
}

static int usage(void)
{
    fprintf(stderr, "usage: election_candidate --uri URI --log FILE [--id ID] [--name NAME]\n"
                    "       [--ttl MS] [--retry-ms MS] [--tick-ms MS]\n");
    return 2;
}

/* --flag value pairs; numbers are unsigned, at most 600000. */
static int parse(int argc, char **argv)
{
    const struct {
        const char *flag;
        unsigned *num;
        const char **str;
    } flags[] = {{"--ttl", &opt.ttl, NULL},
                 {"--retry-ms", &opt.retry_ms, NULL},
                 {"--tick-ms", &opt.tick_ms, NULL},
                 {"--uri", NULL, &opt.uri},
                 {"--name", NULL, &opt.name},
                 {"--log", NULL, &opt.log_path},
                 {"--id", NULL, &opt.id}};
    if (argc % 2 != 1)
        return -1;
    for (int i = 1; i < argc; i += 2) {
        size_t k = 0;
        while (k < sizeof(flags) / sizeof(flags[0]) && strcmp(argv[i], flags[k].flag))
            k++;
        if (k == sizeof(flags) / sizeof(flags[0]))
            return -1;
        if (flags[k].str) {
            *flags[k].str = argv[i + 1];
            continue;
        }
        char *end;
        unsigned long x = strtoul(argv[i + 1], &end, 10);
        if (*end || end == argv[i + 1] || x > 600000)
            return -1;
        *flags[k].num = (unsigned)x;
    }
    return opt.uri && opt.log_path && opt.ttl && opt.tick_ms ? 0 : -1;
}

static void closed(struct lr_manager *m, void *arg)
{
    (void)m;
    *(bool *)arg = true;
}

/* One pass, then sleep until the loop, a signal or the next tick. */
static int pass(int sfd, int max_ms, bool *term, bool *usr1)
{
    int rc = lr_loop_process(loop);
    if (rc < 0)
        return rc;
    int timeout = lr_loop_timeout_ms(loop);
    if (timeout < 0 || timeout > max_ms)
        timeout = max_ms;
    struct pollfd p[2] = {{.fd = lr_loop_fd(loop), .events = POLLIN},
                          {.fd = sfd, .events = POLLIN}};
    if (poll(p, 2, timeout) < 0 && errno != EINTR)
        return -errno;
    struct signalfd_siginfo si;
    while (read(sfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
        if (si.ssi_signo == SIGUSR1)
            *usr1 = true;
        else
            *term = true;
    }
    return 0;
}

/* The signals we take through a signalfd (blocked first), or -1. */
static int signals(void)
{
    sigset_t set;
    sigemptyset(&set);
    static const int sigs[] = {SIGTERM, SIGINT, SIGUSR1};
    for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
        sigaddset(&set, sigs[i]);
    sigprocmask(SIG_BLOCK, &set, NULL);
    return signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
}

int main(int argc, char **argv)
{
    if (parse(argc, argv) < 0)
        return usage();
    int sfd = signals();
    log_fd = open(opt.log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (log_fd < 0 || sfd < 0) {
        fprintf(stderr, "candidate %s: %s: %s\n", opt.id, opt.log_path, strerror(errno));
        return 1;
    }
    int rc = lr_loop_new(&loop, NULL);
    struct lr_manager_opts mo = {.ttl_ms = opt.ttl, .max_leases = 4};
    if (rc == 0)
        rc = lr_manager_new(&mgr, loop, opt.uri, &mo);
    if (rc == 0)
        rc = lr_election_new(&el, mgr, opt.name, &cbs);
    if (rc == 0 && opt.retry_ms)
        rc = lr_election_set_retry_ms(el, opt.retry_ms);
    if (rc < 0) {
        fprintf(stderr, "candidate %s: setup (%s): %s\n", opt.id, opt.uri, lr_strerror(rc));
        return 1;
    }
    logf_line(mono_ns(), "hello %s %d", opt.id, (int)getpid());
    bool term = false, usr1 = false;
    uint64_t next_tick = mono_ns();
    while (!term) {
        uint64_t now = mono_ns();
        if (now >= next_tick) {
            tick();
            next_tick = now + (uint64_t)opt.tick_ms * 1000000u;
        }
        if (usr1) {
            usr1 = false;
            resign();
        }
        now = mono_ns();
        int to_tick = next_tick > now ? (int)((next_tick - now + 999999u) / 1000000u) : 0;
        rc = pass(sfd, to_tick, &term, &usr1);
        if (rc < 0) {
            fprintf(stderr, "candidate %s: loop: %s\n", opt.id, lr_strerror(rc));
            return 1;
        }
    }
    /* Shutdown: hand over (resign and wait for the release), then leave. */
    bool was = lr_election_is_leader(el);
    logf_line(mono_ns(), "exit");
    leading = false;
    stopped = false;
    if (was && lr_election_resign(el) == 0) {
        uint64_t until = mono_ns() + 2000000000ull;
        while (!stopped && mono_ns() < until && pass(sfd, 10, &term, &usr1) == 0) {
        }
    }
    lr_election_free(el);
    bool done = false;
    lr_manager_close(mgr, closed, &done);
    uint64_t until = mono_ns() + 2000000000ull;
    while (!done && mono_ns() < until && pass(sfd, 10, &term, &usr1) == 0) {
    }
    lr_manager_free(mgr);
    lr_loop_free(loop);
    close(log_fd);
    return 0;
}
