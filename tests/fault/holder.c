/* SPDX-License-Identifier: MIT */
/*
 * holder.c - one lease holder of the fault suite (issue 9), on the public API
 * only. It contends for names PREFIX0..PREFIX<count-1> on one store, renews
 * automatically, and logs every event with a CLOCK_MONOTONIC time so that an
 * outside observer (observer.c) can check, after the run, that no two holders
 * held a name at once, that fences grew, and that this process never acted on
 * a lease past its validity.
 *
 * Log: one line per event, "<t_ns> <event> <name> <fence> <valid_until_ms>
 * <status>", with events start, acquired, renewed, jeopardy, lost, release
 * (the holder stops using the lease and asks for its release), released,
 * acquire_failed (other than conflict/timeout), work, slow_armed,
 * stall_begin, stall_end, exit. valid_until is the lease's validity in
 * CLOCK_MONOTONIC ms as lr_lease_valid_until reports it right after the
 * event (acquired, renewed: the new one); other lines carry the last one
 * seen (the library clears it on loss). A lease on a store session (etcd's
 * default mode) has no renewed callback of its own: when the work tick finds
 * its validity moved, it logs "renewed" with the time of the session's
 * renewal (lr_lease_last_renewed), written after lines it precedes (the
 * observer takes one holder's lines about a name in file order). Lines are
 * buffered and written whole with write(2) to an O_APPEND file after every
 * loop pass and before every deliberate stall, so a SIGKILL loses at most one
 * pass of lines and never half a line.
 *
 * Work: every --work-ms, for each lease it holds, the holder reads the clock,
 * asks lr_lease_remaining_ms(), and only if that is > 0 logs "work" with the
 * time read just before the question. That time is the moment of the
 * decision; a freeze between the decision and the action is what no library
 * can cover (lease.h) and what the fence is for. The tick runs in host code
 * between loop passes, before the pass (the embedding pattern of
 * EMBEDDING.md): after a SIGSTOP it is the first thing to run, on whatever the
 * library believes.
 *
 * Fault hooks: --slow-callback-ms X makes a renewed callback sleep X ms and
 * then do a work tick from inside the callback; one callback in every
 * --slow-one-in K (0: none by schedule), and the next one after each SIGUSR1.
 * PLANT_IGNORE_LOST (compile time) builds the planted holder that trusts its
 * own bookkeeping and keeps working after "lost".
 *
 * SIGTERM or SIGINT: stop working, release everything
 * (lr_manager_release_all), wait for the released callbacks (at most 5 s),
 * exit 0. Exit 2: bad arguments; 1: a setup or loop failure.
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

struct slot {
    struct lr_lease lease;
    uint64_t vu;          /* last valid_until logged */
    uint64_t acquire_at;  /* ns: (re)acquire from then on, when want */
    uint64_t release_at;  /* ns: voluntary release (churn), 0 never */
    bool held;            /* between acquired and lost/release, as we see it */
    bool want;            /* not held, not being acquired: acquire when due */
};

static struct {
    const char *uri, *prefix, *log_path, *id;
    unsigned count, ttl, seconds, work_ms, slow_ms, slow_one_in, churn_ms, coalesce_ms;
    unsigned acquire_timeout_ms, jitter_ppm;
} opt = {.prefix = "n", .count = 200, .ttl = 2500, .seconds = 60, .work_ms = 50,
         .id = "holder"};

static struct slot *slots;
static struct lr_loop *loop;
static struct lr_manager *mgr;
static int log_fd = -1;
static char logbuf[1 << 16];
static size_t loglen;
static bool stopping;
static unsigned releasing;  /* released callbacks still to come at shutdown */
static unsigned slow_pending, slow_count;
static uint64_t rng = 0x9e3779b97f4a7c15ull;

static uint64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static uint64_t rnd(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static void log_flush(void)
{
    size_t off = 0;
    while (off < loglen) {
        ssize_t n = write(log_fd, logbuf + off, loglen - off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break; /* a full disk: the observer will see fewer lines */
        off += (size_t)n;
    }
    loglen = 0;
}

/* Lines go out whole: one that does not fit flushes what is buffered first. */
static void logf_line(uint64_t t, const char *ev, const char *name, uint64_t fence, uint64_t vu,
                      int status)
{
    if (sizeof(logbuf) - loglen < 256)
        log_flush();
    int n = snprintf(logbuf + loglen, sizeof(logbuf) - loglen,
                     "%" PRIu64 " %s %s %" PRIu64 " %" PRIu64 " %d\n", t, ev, name, fence, vu,
                     status);
    if (n > 0 && (size_t)n < sizeof(logbuf) - loglen)
        loglen += (size_t)n;
}

static void log_lease(const char *ev, struct slot *s, int status)
{
    logf_line(mono_ns(), ev, lr_lease_name(&s->lease), lr_lease_fence(&s->lease), s->vu, status);
}

static struct slot *slot_of(struct lr_lease *l)
{
    return (struct slot *)l->data;
}

static void sleep_ms(unsigned ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR) {
    }
}

static void want_acquire(struct slot *s, uint64_t delay_ns)
{
    if (stopping)
        return;
    s->want = true;
    s->acquire_at = mono_ns() + delay_ns;
}

/* One look at every lease: act on those we may act on, start acquisitions
 * that are due, and give up those whose churn time has come. */
static void work_tick(void)
{
    for (unsigned i = 0; i < opt.count && !stopping; i++) {
        struct slot *s = &slots[i];
        struct lr_lease *l = &s->lease;
        if (s->held) {
            uint64_t vu = lr_lease_valid_until(l);
            if (vu > s->vu) { /* renewed without a callback: by its store session */
                s->vu = vu;
                logf_line(lr_lease_last_renewed(l) * 1000000u, "renewed", lr_lease_name(l),
                          lr_lease_fence(l), vu, 0);
            }
            uint64_t t = mono_ns();
#ifdef PLANT_IGNORE_LOST
            bool may = true; /* planted: trusts its own flag, which lost never clears */
#else
            bool may = lr_lease_remaining_ms(l) > 0;
#endif
            if (may)
                logf_line(t, "work", lr_lease_name(l), lr_lease_fence(l), s->vu, 0);
            if (s->release_at && t >= s->release_at && lr_lease_remaining_ms(l) > 0) {
                /* From this line on we no longer act on it. */
                log_lease("release", s, 0);
                s->held = false;
                s->release_at = 0;
                lr_lease_release(l);
            }
        } else if (s->want && mono_ns() >= s->acquire_at) {
            int rc = lr_lease_acquire(l, opt.acquire_timeout_ms);
            if (rc == 0)
                s->want = false;
            else if (rc != -EBUSY)
                fprintf(stderr, "holder %s: acquire %s: %s\n", opt.id, lr_lease_name(l),
                        lr_strerror(rc));
        }
    }
}

static void on_acquired(struct lr_lease *l)
{
    struct slot *s = slot_of(l);
    s->vu = lr_lease_valid_until(l);
    s->held = true;
    if (opt.churn_ms)
        s->release_at = mono_ns() + (opt.churn_ms / 2 + rnd() % (opt.churn_ms + 1)) * 1000000ull;
    log_lease("acquired", s, 0);
}

static void on_acquire_failed(struct lr_lease *l, int status)
{
    struct slot *s = slot_of(l);
    if (status != LR_ECONFLICT && status != -ETIMEDOUT)
        log_lease("acquire_failed", s, status);
    want_acquire(s, 0);
}

static void on_renewed(struct lr_lease *l)
{
    struct slot *s = slot_of(l);
    /* The line carries the new validity; the observer checks its time
     * against the one before. */
    s->vu = lr_lease_valid_until(l);
    log_lease("renewed", s, 0);
    bool slow = false;
    if (opt.slow_ms && slow_pending) {
        slow_pending--;
        slow = true;
    } else if (opt.slow_ms && opt.slow_one_in && ++slow_count % opt.slow_one_in == 0) {
        slow = true;
    }
    if (slow) {
        /* A callback that takes long, then touches the guarded resources. */
        log_lease("stall_begin", s, (int)opt.slow_ms);
        log_flush();
        sleep_ms(opt.slow_ms);
        log_lease("stall_end", s, (int)opt.slow_ms);
        work_tick();
        log_flush();
    }
}

static void on_jeopardy(struct lr_lease *l, int status)
{
    log_lease("jeopardy", slot_of(l), status);
}

static void on_lost(struct lr_lease *l, int reason)
{
    struct slot *s = slot_of(l);
    log_lease("lost", s, reason);
#ifndef PLANT_IGNORE_LOST
    s->held = false;
    s->release_at = 0;
    want_acquire(s, 0);
#endif
}

static void on_released(struct lr_lease *l, int status)
{
    struct slot *s = slot_of(l);
    log_lease("released", s, status);
    if (stopping) {
        if (releasing)
            releasing--;
        return;
    }
    /* Voluntary release: leave the name to the others for a while. */
    want_acquire(s, (uint64_t)opt.ttl * 1000000u);
}

static const struct lr_lease_cbs cbs = {
    .acquired = on_acquired,
    .acquire_failed = on_acquire_failed,
    .renewed = on_renewed,
    .jeopardy = on_jeopardy,
    .lost = on_lost,
    .released = on_released,
};

static void closed(struct lr_manager *m, void *arg)
{
    (void)m;
    *(bool *)arg = true;
}

static int usage(void)
{
    fprintf(stderr,
            "usage: fault_holder --uri URI --log FILE [--id ID] [--prefix P] [--count N]\n"
            "       [--ttl MS] [--seconds S] [--work-ms MS] [--churn-ms MS] [--coalesce-ms MS]\n"
            "       [--acquire-timeout-ms MS] [--renew-jitter-ppm PPM] [--slow-callback-ms MS]\n"
            "       [--slow-one-in K]\n");
    return 2;
}

static int parse(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (i + 1 >= argc)
            return -1;
        const char *v = argv[++i];
        unsigned *u = !strcmp(a, "--count")                ? &opt.count
                      : !strcmp(a, "--ttl")                ? &opt.ttl
                      : !strcmp(a, "--seconds")            ? &opt.seconds
                      : !strcmp(a, "--work-ms")            ? &opt.work_ms
                      : !strcmp(a, "--slow-callback-ms")   ? &opt.slow_ms
                      : !strcmp(a, "--slow-one-in")        ? &opt.slow_one_in
                      : !strcmp(a, "--churn-ms")           ? &opt.churn_ms
                      : !strcmp(a, "--coalesce-ms")        ? &opt.coalesce_ms
                      : !strcmp(a, "--acquire-timeout-ms") ? &opt.acquire_timeout_ms
                      : !strcmp(a, "--renew-jitter-ppm")   ? &opt.jitter_ppm
                                                           : NULL;
        if (u) {
            char *end;
            unsigned long x = strtoul(v, &end, 10);
            if (*end || x > 100000000ul)
                return -1;
            *u = (unsigned)x;
        } else if (!strcmp(a, "--uri")) {
            opt.uri = v;
        } else if (!strcmp(a, "--prefix")) {
            opt.prefix = v;
        } else if (!strcmp(a, "--log")) {
            opt.log_path = v;
        } else if (!strcmp(a, "--id")) {
            opt.id = v;
        } else {
            return -1;
        }
    }
    if (!opt.uri || !opt.log_path || !opt.count || !opt.ttl || !opt.work_ms)
        return -1;
    if (!opt.acquire_timeout_ms)
        opt.acquire_timeout_ms = 4 * opt.ttl;
    return 0;
}

/* Run the loop as an embedding host would: poll the loop's fd and our
 * signals, run the work tick when due (before the pass), then one pass. */
static int run(int sfd, uint64_t end_ns)
{
    uint64_t next_work = mono_ns();
    struct pollfd p[2] = {{.fd = lr_loop_fd(loop), .events = POLLIN}, {.fd = sfd, .events = POLLIN}};
    while (!stopping) {
        uint64_t now = mono_ns();
        if (now >= end_ns)
            break;
        if (now >= next_work) {
            work_tick();
            next_work = now + (uint64_t)opt.work_ms * 1000000u;
        }
        int rc = lr_loop_process(loop);
        if (rc < 0) {
            fprintf(stderr, "holder %s: lr_loop_process: %s\n", opt.id, lr_strerror(rc));
            return rc;
        }
        log_flush();
        int timeout = lr_loop_timeout_ms(loop);
        now = mono_ns();
        int to_work = next_work > now ? (int)((next_work - now + 999999u) / 1000000u) : 0;
        if (timeout < 0 || timeout > to_work)
            timeout = to_work;
        if (poll(p, 2, timeout) < 0 && errno != EINTR)
            return -errno;
        if (p[1].revents & POLLIN) {
            struct signalfd_siginfo si;
            while (read(sfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
                if (si.ssi_signo == SIGUSR1) {
                    slow_pending++;
                    logf_line(mono_ns(), "slow_armed", "-", 0, 0, (int)opt.slow_ms);
                } else {
                    stopping = true;
                }
            }
        }
    }
    return 0;
}

static int shutdown_all(void)
{
    stopping = true;
    for (unsigned i = 0; i < opt.count; i++) {
        struct slot *s = &slots[i];
        if (s->held) {
            log_lease("release", s, 0);
            s->held = false;
        }
    }
    releasing = (unsigned)lr_manager_release_all(mgr);
    log_flush();
    uint64_t until = mono_ns() + 5000000000ull;
    while (releasing && mono_ns() < until) {
        int rc = lr_loop_process(loop);
        if (rc < 0)
            return rc;
        log_flush();
        int timeout = lr_loop_timeout_ms(loop);
        struct pollfd p = {.fd = lr_loop_fd(loop), .events = POLLIN};
        poll(&p, 1, timeout < 0 || timeout > 50 ? 50 : timeout);
    }
    if (releasing)
        fprintf(stderr, "holder %s: %u releases unanswered at exit\n", opt.id, releasing);
    bool done = false;
    for (unsigned i = 0; i < opt.count; i++)
        lr_lease_deinit(&slots[i].lease);
    lr_manager_close(mgr, closed, &done);
    until = mono_ns() + 2000000000ull;
    while (!done && mono_ns() < until) {
        lr_loop_process(loop);
        struct pollfd p = {.fd = lr_loop_fd(loop), .events = POLLIN};
        poll(&p, 1, 10);
    }
    lr_manager_free(mgr);
    lr_loop_free(loop);
    return 0;
}

int main(int argc, char **argv)
{
    if (parse(argc, argv) < 0)
        return usage();
    log_fd = open(opt.log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (log_fd < 0) {
        fprintf(stderr, "holder %s: %s: %s\n", opt.id, opt.log_path, strerror(errno));
        return 1;
    }
    rng ^= mono_ns() ^ ((uint64_t)getpid() << 32);
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGUSR1);
    sigprocmask(SIG_BLOCK, &set, NULL);
    int sfd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
    slots = calloc(opt.count, sizeof(*slots));
    if (sfd < 0 || !slots)
        return 1;
    int rc = lr_loop_new(&loop, NULL);
    if (rc < 0) {
        fprintf(stderr, "holder %s: lr_loop_new: %s\n", opt.id, lr_strerror(rc));
        return 1;
    }
    struct lr_manager_opts mo = {.ttl_ms = opt.ttl, .cbs = &cbs, .max_leases = opt.count,
                                 .renew_coalesce_ms = opt.coalesce_ms,
                                 .renew_jitter = opt.jitter_ppm / 1e6,
                                 .retry_cap_ms = opt.ttl / 2};
    rc = lr_manager_new(&mgr, loop, opt.uri, &mo);
    if (rc < 0) {
        fprintf(stderr, "holder %s: lr_manager_new(%s): %s\n", opt.id, opt.uri, lr_strerror(rc));
        return 1;
    }
    logf_line(mono_ns(), "start", opt.id, (uint64_t)getpid(), opt.ttl, (int)opt.count);
    for (unsigned i = 0; i < opt.count; i++) {
        char name[LR_NAME_MAX + 1];
        snprintf(name, sizeof(name), "%s%u", opt.prefix, i);
        rc = lr_lease_init(mgr, &slots[i].lease, name, NULL);
        if (rc < 0) {
            fprintf(stderr, "holder %s: lr_lease_init(%s): %s\n", opt.id, name, lr_strerror(rc));
            return 1;
        }
        slots[i].lease.data = &slots[i];
        want_acquire(&slots[i], 0);
    }
    log_flush();
    rc = run(sfd, mono_ns() + (uint64_t)opt.seconds * 1000000000u);
    if (rc == 0)
        rc = shutdown_all();
    logf_line(mono_ns(), "exit", opt.id, 0, 0, rc);
    log_flush();
    close(log_fd);
    free(slots);
    return rc < 0 ? 1 : 0;
}
