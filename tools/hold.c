/* SPDX-License-Identifier: MIT */
/*
 * hold.c - `leasering hold`: run a command while holding a lease.
 *
 *   leasering hold --backend URI --name NAME [--ttl MS] [--wait MS] [--grace MS]
 *                  -- CMD [ARG...]
 *
 * Acquires NAME (retrying for up to --wait ms; default: forever), runs CMD in
 * its own process group with LEASERING_NAME and LEASERING_FENCE in its
 * environment, renews while it runs, releases when it exits, and exits with
 * its status.
 *
 * The rule: the command is dead before the lease can pass to anyone else.
 * A watchdog thread that never waits for the loop sleeps on absolute
 * CLOCK_MONOTONIC deadlines computed from the lease's validity and re-armed
 * at every successful renewal: when the time left to act on the lease
 * (lr_lease_remaining_ms) falls to --grace it sends SIGTERM to the command's
 * group; halfway through the grace it sends SIGKILL (through a pidfd, and to
 * the group). A stalled loop only means the renewals stop re-arming it.
 * Before exec, the child asks for SIGKILL when hold dies (PR_SET_PDEATHSIG)
 * and checks that hold is still its parent, so kill -9 of hold does not
 * leave the command running on a lease nobody renews.
 *
 * The child is reaped under the same mutex the watchdog holds while it
 * signals, so a group id is never signalled after it may have been reused.
 * Layer: public API only.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <leasering.h>
#include "cli.h"

#define EXIT_LEASE 3       /* the lease was lost or about to be: the command was killed */
#define EXIT_NOT_ACQUIRED 4 /* --wait ran out, or acquiring failed */
#define RELEASE_WAIT_MS 5000u
#define GRACE_MIN_MS 500u

const char hold_usage[] =
    "usage: leasering hold --backend URI --name NAME [--ttl MS] [--wait MS] [--grace MS]\n"
    "                      -- CMD [ARG...]\n"
    "\n"
    "Acquires the lease NAME from the store at URI (below), waiting up to --wait ms\n"
    "for it (default: forever), runs CMD in its own process group with\n"
    "LEASERING_NAME and LEASERING_FENCE (the fencing token: pass it to what the\n"
    "lease guards) in its environment, renews the lease while CMD runs and releases\n"
    "it when CMD exits. Options take \"--opt value\" or \"--opt=value\".\n"
    "--ttl MS: the lease's TTL (default 10000); renewals come every third of it.\n"
    "--grace MS: when renewals fail and the time left on the lease falls to MS,\n"
    "CMD's group gets SIGTERM, and SIGKILL halfway through the grace, so it is dead\n"
    "before anyone else can acquire NAME (default: a tenth of the TTL, at least\n"
    "500; at most 60% of the TTL). If hold itself is killed, CMD gets SIGKILL.\n"
    "SIGINT and SIGTERM to hold are sent on to CMD's group; hold waits for CMD.\n"
    "Exit: CMD's status (128+N if a signal N ended it; 127 if it could not be run);\n"
    "3 the lease was lost or renewals failed, and CMD was killed (stderr says why);\n"
    "4 NAME was not acquired (held by someone else past --wait, or the store\n"
    "refused); 2 bad arguments; 1 the backend or the process plumbing failed.\n";

struct hold {
    const char *backend;
    const char *name;
    char **cmd;
    unsigned long ttl_ms;
    unsigned long wait_ms;
    unsigned long grace_ms;

    struct lr_loop *loop;
    struct lr_manager *m;
    struct lr_lease lease;
    struct lr_poll child_poll;
    struct lr_poll sig_poll;
    struct lr_timer release_timer;
    int sigfd;
    int pidfd;
    pid_t pid;
    sigset_t oldmask;

    int phase;      /* 0 acquiring, 1 running, 2 releasing, 3 closing */
    int status;     /* what hold exits with */
    int acq_error;  /* acquire_failed status */
    int lost;       /* lost callback reason, or 0 */
    int child_watched; /* child_poll was initialised */
    int closing;    /* the manager and watchers still closing */
    int signalled;  /* a signal hold was sent and passed on, or 0 */
    uint64_t valid_until; /* ms, CLOCK_MONOTONIC: the last validity the watchdog was armed for */

    /* the watchdog */
    pthread_t wd;
    int wd_started;
    pthread_mutex_t mu; /* held while signalling the child and while reaping it */
    int reaped;
    _Atomic uint64_t term_at_ns;
    _Atomic uint64_t kill_at_ns;
    _Atomic int fired;  /* 1 SIGTERM sent, 2 SIGKILL sent */
    _Atomic uint64_t kill_sent_ns;
};

static struct hold H = {.sigfd = -1, .pidfd = -1, .mu = PTHREAD_MUTEX_INITIALIZER};

static uint64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* ---- the child ---- */

/* Signal the command's group and, through the pidfd, the command itself,
 * unless it has been reaped (its pid, and so its group id, may be reused). */
static void signal_child(int sig)
{
    pthread_mutex_lock(&H.mu);
    if (!H.reaped && H.pid > 0) {
        kill(-H.pid, sig);
        if (H.pidfd >= 0)
            syscall(SYS_pidfd_send_signal, H.pidfd, sig, NULL, 0);
    }
    pthread_mutex_unlock(&H.mu);
}

static void *watchdog(void *arg)
{
    (void)arg;
    for (;;) {
        uint64_t now = mono_ns();
        uint64_t kill_at = atomic_load(&H.kill_at_ns);
        uint64_t term_at = atomic_load(&H.term_at_ns);
        int fired = atomic_load(&H.fired);
        if (now >= kill_at) {
            atomic_store(&H.kill_sent_ns, now);
            atomic_store(&H.fired, 2);
            signal_child(SIGKILL);
            return NULL;
        }
        if (!fired && now >= term_at) {
            atomic_store(&H.fired, 1);
            signal_child(SIGTERM);
            continue;
        }
        /* Renewals only move the deadlines later, so waking at the old one
         * and looking again is never late. */
        uint64_t at = fired ? kill_at : term_at;
        struct timespec ts = {.tv_sec = (time_t)(at / 1000000000u),
                              .tv_nsec = (long)(at % 1000000000u)};
        clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL); /* a cancellation point */
    }
}

/* Point the watchdog at the lease's current validity: SIGTERM when the time
 * left to act falls to the grace, SIGKILL halfway through it. */
static void arm_watchdog(void)
{
    uint64_t now = mono_ns();
    int64_t left = lr_lease_remaining_ms(&H.lease);
    uint64_t end = now + (uint64_t)(left > 0 ? left : 0) * 1000000u;
    uint64_t grace = (uint64_t)H.grace_ms * 1000000u;
    atomic_store(&H.kill_at_ns, end > grace / 2 ? end - grace / 2 : 0);
    atomic_store(&H.term_at_ns, end > grace ? end - grace : 0);
    H.valid_until = lr_lease_valid_until(&H.lease);
}

static void stop_watchdog(void)
{
    if (!H.wd_started)
        return;
    pthread_cancel(H.wd);
    pthread_join(H.wd, NULL);
    H.wd_started = 0;
}

/* In the child, between fork and exec: only async-signal-safe calls. */
static void exec_child(pid_t parent)
{
    setpgid(0, 0);
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != parent)
        _exit(EXIT_LEASE); /* hold died before the death signal was in place */
    sigprocmask(SIG_SETMASK, &H.oldmask, NULL);
    execvp(H.cmd[0], H.cmd);
    int e = errno;
    static const char msg[] = "leasering hold: cannot run the command: ";
    if (write(2, msg, sizeof(msg) - 1) < 0 || write(2, strerror(e), strlen(strerror(e))) < 0 ||
        write(2, "\n", 1) < 0)
        _exit(e == ENOENT ? 127 : 126);
    _exit(e == ENOENT ? 127 : 126);
}

/* The loop stops once the manager has closed and both watchers too (they
 * must be closed before the loop is freed). */
static void closing_done(void)
{
    if (--H.closing == 0)
        lr_loop_stop(H.loop);
}

static void poll_closed(struct lr_poll *p)
{
    (void)p;
    closing_done();
}

static void finish(struct lr_manager *m, void *arg)
{
    (void)m;
    (void)arg;
    closing_done();
}

static void start_close(void)
{
    if (H.phase == 3)
        return;
    H.phase = 3;
    lr_timer_stop(&H.release_timer);
    H.closing = 2;
    lr_poll_close(&H.sig_poll, poll_closed);
    if (H.child_watched) {
        H.closing++;
        lr_poll_close(&H.child_poll, poll_closed);
    }
    lr_manager_close(H.m, finish, NULL); /* never waits for the store */
}

/* The command is gone (or never ran): give the lease back, then close. */
static void start_release(void)
{
    H.phase = 2;
    enum lr_lease_state st = lr_lease_state(&H.lease);
    if (st != LR_LEASE_HELD && st != LR_LEASE_JEOPARDY && st != LR_LEASE_ACQUIRING) {
        start_close();
        return;
    }
    lr_lease_release(&H.lease);
    lr_loop_update_time(H.loop);
    lr_timer_start(&H.release_timer, lr_loop_now_ms(H.loop) + RELEASE_WAIT_MS);
}

static void release_late(struct lr_timer *t)
{
    (void)t;
    start_close(); /* the store never answered: it expires the lease by its TTL */
}

static void child_ready(struct lr_poll *p, int status, unsigned events)
{
    (void)events;
    int ws = 0;
    pthread_mutex_lock(&H.mu);
    pid_t r = waitpid(H.pid, &ws, WNOHANG);
    if (r == H.pid)
        H.reaped = 1;
    pthread_mutex_unlock(&H.mu);
    if (r != H.pid) {
        if (status < 0 || r < 0) {
            fprintf(stderr, "leasering hold: cannot wait for the command: %s\n",
                    strerror(status < 0 ? -status : errno));
            H.status = 1;
            lr_poll_stop(p);
            start_release();
        }
        return;
    }
    lr_poll_stop(p);
    stop_watchdog();
    int fired = atomic_load(&H.fired);
    if (H.lost || fired) {
        int err = lr_lease_last_error(&H.lease);
        if (H.lost)
            fprintf(stderr, "leasering hold: lease %s lost (%s): the command was killed\n",
                    H.name, lr_strerror(H.lost));
        else
            fprintf(stderr,
                    "leasering hold: renewals of lease %s failed (%s): the command got SIGTERM "
                    "with %lu ms left%s; the lease is valid until %" PRIu64
                    " ms (CLOCK_MONOTONIC)\n",
                    H.name, err ? lr_strerror(err) : "no answer", H.grace_ms,
                    fired == 2 ? ", then SIGKILL" : "", H.valid_until);
        if (fired == 2)
            fprintf(stderr, "leasering hold: SIGKILL sent at %" PRIu64 " ms (CLOCK_MONOTONIC)\n",
                    atomic_load(&H.kill_sent_ns) / 1000000u);
        H.status = EXIT_LEASE;
    } else if (WIFEXITED(ws)) {
        H.status = WEXITSTATUS(ws);
    } else if (WIFSIGNALED(ws)) {
        H.status = 128 + WTERMSIG(ws);
    }
    start_release();
}

static void signal_ready(struct lr_poll *p, int status, unsigned events)
{
    (void)p;
    (void)events;
    int sig = status < 0 ? 0 : cli_signal_read(H.sigfd);
    if (!sig)
        return;
    H.signalled = sig;
    if (H.phase == 1) {
        signal_child(sig); /* hold exits when the command does */
    } else if (H.phase == 0) {
        H.status = 128 + sig;
        start_release(); /* abandons the acquisition */
    }
}

/* ---- the lease ---- */

static void on_acquired(struct lr_lease *l)
{
    (void)l;
    if (H.phase != 0)
        return;
    char fence[24];
    snprintf(fence, sizeof(fence), "%" PRIu64, lr_lease_fence(&H.lease));
    if (setenv("LEASERING_NAME", H.name, 1) < 0 || setenv("LEASERING_FENCE", fence, 1) < 0) {
        fprintf(stderr, "leasering hold: cannot set the environment: %s\n", strerror(errno));
        H.status = 1;
        start_release();
        return;
    }
    arm_watchdog();
    pid_t parent = getpid();
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0)
        exec_child(parent);
    if (pid < 0) {
        fprintf(stderr, "leasering hold: fork: %s\n", strerror(errno));
        H.status = 1;
        start_release();
        return;
    }
    setpgid(pid, pid); /* also here, so the group exists before we signal it */
    H.pid = pid;
    H.phase = 1;
    H.pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
    int rc = H.pidfd < 0 ? -errno : pthread_create(&H.wd, NULL, watchdog, NULL);
    if (rc > 0)
        rc = -rc;
    if (rc == 0) {
        H.wd_started = 1;
        rc = lr_poll_init(H.loop, &H.child_poll, H.pidfd, child_ready);
        H.child_watched = rc == 0;
    }
    if (rc == 0)
        rc = lr_poll_start(&H.child_poll, LR_POLL_IN);
    if (rc < 0) {
        fprintf(stderr, "leasering hold: cannot watch the command: %s\n", strerror(-rc));
        kill(-pid, SIGKILL);
        kill(pid, SIGKILL);
        while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
            ;
        H.reaped = 1;
        H.status = 1;
        start_release();
    }
}

static void on_acquire_failed(struct lr_lease *l, int status)
{
    (void)l;
    H.acq_error = status;
    if (H.phase != 0)
        return;
    if (status == LR_ECONFLICT || status == -ETIMEDOUT)
        fprintf(stderr, "leasering hold: %s not acquired within %lu ms (%s)\n", H.name,
                H.wait_ms, lr_strerror(status));
    else
        fprintf(stderr, "leasering hold: %s not acquired: %s\n", H.name, lr_strerror(status));
    H.status = EXIT_NOT_ACQUIRED;
    start_close();
}

static void on_renewed(struct lr_lease *l)
{
    (void)l;
    if (H.phase == 1)
        arm_watchdog();
}

static void on_jeopardy(struct lr_lease *l, int status)
{
    fprintf(stderr, "leasering hold: renewing %s failed (%s); %" PRId64 " ms left\n", H.name,
            lr_strerror(status), lr_lease_remaining_ms(l));
}

static void on_lost(struct lr_lease *l, int reason)
{
    (void)l;
    H.lost = reason;
    if (H.phase == 1)
        signal_child(SIGKILL); /* the watchdog should have done it already */
}

static void on_released(struct lr_lease *l, int status)
{
    (void)l;
    (void)status;
    if (H.phase == 2)
        start_close();
}

static const struct lr_lease_cbs cbs = {
    .acquired = on_acquired,
    .acquire_failed = on_acquire_failed,
    .renewed = on_renewed,
    .jeopardy = on_jeopardy,
    .lost = on_lost,
    .released = on_released,
};

/* ---- arguments ---- */

#define WAIT_FOREVER ((unsigned long)UINT32_MAX) /* ~49 days, for a command line */

static const struct opt hold_opts[] = {
    {"--backend", OPT_STR, &H.backend, 0, 0},
    {"--name", OPT_STR, &H.name, 0, 0},
    {"--ttl", OPT_NUM, &H.ttl_ms, 1, 30u * 86400u * 1000u},
    {"--wait", OPT_NUM, &H.wait_ms, 0, WAIT_FOREVER - 1},
    {"--grace", OPT_NUM, &H.grace_ms, 1, 30u * 86400u * 1000u},
};

/* The options through the tool's one option table parser, then "--" and
 * the command. --wait and --grace are unset while they hold values no
 * option can give (WAIT_FOREVER, 0). */
static int parse(int argc, char **argv)
{
    size_t n = sizeof(hold_opts) / sizeof(hold_opts[0]);
    H.ttl_ms = 10000;
    H.wait_ms = WAIT_FOREVER;
    int i = cli_parse("hold", hold_opts, n, argc, argv, 1, hold_usage);
    if (i < 0)
        return -1;
    static const char *const required[] = {"--backend", "--name"};
    if (cli_require("hold", hold_opts, n, required, 2) < 0) {
        fputs("usage: leasering hold --backend URI --name NAME [...] -- CMD [ARG...]\n"
              "(leasering hold --help for every option)\n",
              stderr);
        return -1;
    }
    if (i >= argc) {
        fprintf(stderr, "leasering hold: no command (put it after --: leasering hold "
                        "--backend URI --name NAME -- CMD [ARG...])\n");
        return -1;
    }
    H.cmd = argv + i;
    if (strlen(H.name) > LR_NAME_MAX) {
        fprintf(stderr, "leasering hold: --name is longer than %d bytes\n", LR_NAME_MAX);
        return -1;
    }
    int grace_set = H.grace_ms != 0;
    if (!grace_set)
        H.grace_ms = H.ttl_ms / 10 > GRACE_MIN_MS ? H.ttl_ms / 10 : GRACE_MIN_MS;
    if (H.grace_ms * 10 > H.ttl_ms * 6) {
        fprintf(stderr,
                "leasering hold: --grace %lu ms is more than 60%% of --ttl %lu ms (renewals come "
                "every third of the TTL): raise --ttl%s\n",
                H.grace_ms, H.ttl_ms, grace_set ? " or lower --grace" : " to 834 or more");
        return -1;
    }
    return 0;
}

int hold_main(int argc, char **argv)
{
    if (parse(argc, argv) < 0)
        return 2;
    /* SIGINT/SIGTERM come through a signalfd, blocked before any thread
     * exists, so the watchdog never takes them. */
    if ((H.sigfd = cli_signals("hold", &H.oldmask)) < 0)
        return 1;
    int rc = lr_loop_new(&H.loop, NULL);
    if (rc < 0) {
        fprintf(stderr, "leasering hold: cannot create the loop: %s\n", lr_strerror(rc));
        return 1;
    }
    struct lr_manager_opts o = {.ttl_ms = (uint32_t)H.ttl_ms, .max_leases = 1, .cbs = &cbs};
    rc = lr_manager_new(&H.m, H.loop, H.backend, &o);
    if (rc == -EINVAL || rc == -EPROTONOSUPPORT || rc == -ERANGE) {
        fprintf(stderr, "leasering hold: bad --backend or --ttl for it: %s (%s)\n",
                lr_strerror(rc), cli_redacted(H.backend));
        return 2;
    }
    if (rc < 0) {
        fprintf(stderr, "leasering hold: cannot use backend %s: %s\n", cli_redacted(H.backend),
                lr_strerror(rc));
        return 1;
    }
    rc = lr_lease_init(H.m, &H.lease, H.name, NULL);
    if (rc == 0)
        rc = lr_lease_acquire(&H.lease, (uint32_t)H.wait_ms);
    if (rc == 0)
        rc = lr_poll_init(H.loop, &H.sig_poll, H.sigfd, signal_ready);
    if (rc == 0)
        rc = lr_poll_start(&H.sig_poll, LR_POLL_IN);
    if (rc < 0) {
        fprintf(stderr, "leasering hold: lease %s: %s\n", H.name, lr_strerror(rc));
        return 2;
    }
    lr_timer_init(H.loop, &H.release_timer, release_late);
    rc = lr_loop_run(H.loop);
    if (rc < 0) {
        fprintf(stderr, "leasering hold: the loop failed: %s\n", lr_strerror(rc));
        if (H.phase == 1)
            signal_child(SIGKILL);
        return 1;
    }
    stop_watchdog();
    lr_lease_deinit(&H.lease);
    lr_manager_free(H.m);
    lr_loop_free(H.loop);
    if (H.pidfd >= 0)
        close(H.pidfd);
    close(H.sigfd);
    return H.status;
}
