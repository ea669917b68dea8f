/* SPDX-License-Identifier: MIT */
/*
 * test_poll.c - fd watchers (lr_poll): level-triggered readiness, mask
 * changes while armed, stop/close semantics, fd reuse, errors, and no
 * allocations; stop and close while a wakeup without the wanted events waits
 * for its re-check. On socketpairs, pipes, an eventfd and a signalfd; no servers.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <leasering.h>
#include "alloccount.h"
#include "harness.h"
#include "loop_int.h"

struct watch {
    struct lr_poll p;
    int calls;
    int last_status;
    unsigned last_events;
    unsigned seen; /* union of every events reported */
    size_t read_per_event; /* if > 0: read up to this much on LR_POLL_IN */
    size_t total_read;
    int closes;
    int close_in_cb;   /* close from inside the readiness callback */
    int stop_in_cb;    /* stop from inside the readiness callback */
    int in_close_call; /* set while lr_poll_close runs: the close callback must not run then */
    int close_cb_inside;
};

static void watch_cb(struct lr_poll *p, int status, unsigned events)
{
    struct watch *w = p->data;
    w->calls++;
    w->last_status = status;
    w->last_events = events;
    w->seen |= events;
    if (status == 0 && (events & LR_POLL_IN) && w->read_per_event) {
        char buf[65536];
        size_t want = w->read_per_event < sizeof(buf) ? w->read_per_event : sizeof(buf);
        ssize_t n = read(p->fd, buf, want);
        if (n > 0)
            w->total_read += (size_t)n;
    }
    if (w->stop_in_cb)
        lr_poll_stop(p);
    if (w->close_in_cb) {
        w->in_close_call = 1;
        lr_poll_close(p, NULL);
        w->in_close_call = 0;
    }
}

static void watch_close_cb(struct lr_poll *p)
{
    struct watch *w = p->data;
    w->closes++;
    if (w->in_close_call)
        w->close_cb_inside = 1;
}

static int watch_init(struct lr_loop *loop, struct watch *w, int fd)
{
    memset(w, 0, sizeof(*w));
    w->p.data = w;
    return lr_poll_init(loop, &w->p, fd, watch_cb);
}

/* Run lr_loop_process passes (sleeping briefly in between) until *@flag
 * reaches @want or @ms pass. */
static int spin_until(struct lr_loop *loop, const int *flag, int want, int ms)
{
    for (int i = 0; i < ms * 10; i++) {
        lr_loop_process(loop);
        if (*flag >= want)
            return 1;
        usleep(100);
    }
    return 0;
}

static void spin(struct lr_loop *loop, int passes)
{
    for (int i = 0; i < passes; i++) {
        lr_loop_process(loop);
        usleep(200);
    }
}

static int nonblocking_pair(int sv[2])
{
    return socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv);
}

/* A loop, a socketpair and a watcher on sv[0]. */
static int fixture(struct lr_loop **loop, int sv[2], struct watch *w)
{
    int rc = lr_loop_new(loop, NULL);
    if (rc < 0)
        return rc;
    if (nonblocking_pair(sv) < 0)
        return -errno;
    return watch_init(*loop, w, sv[0]);
}

/* Close @w, wait for its close callback (once), close the pair, free the loop. */
static int fixture_done(struct lr_loop *loop, int sv[2], struct watch *w)
{
    int ok = lr_poll_close(&w->p, watch_close_cb) == 0 && spin_until(loop, &w->closes, 1, 2000) &&
             w->closes == 1 && lr_poll_is_closed(&w->p) &&
             w->p.poll_op.inflight + w->p.ctl_op.inflight == 0;
    close(sv[0]);
    close(sv[1]);
    lr_loop_free(loop);
    return ok;
}

TEST(readable_fires_with_the_ready_events)
{
    struct lr_loop *loop;
    int sv[2];
    struct watch w;
    CHECK_OK(fixture(&loop, sv, &w));
    w.read_per_event = 100;
    CHECK_OK(lr_poll_start(&w.p, LR_POLL_IN));
    CHECK_EQ(lr_poll_events(&w.p), LR_POLL_IN);
    spin(loop, 5);
    CHECK_EQ(w.calls, 0); /* nothing to read yet */
    CHECK_EQ(write(sv[1], "x", 1), 1);
    CHECK(spin_until(loop, &w.calls, 1, 2000));
    CHECK_EQ(w.last_status, 0);
    CHECK_EQ(w.last_events, LR_POLL_IN);
    CHECK_EQ(w.total_read, 1);
    spin(loop, 5);
    CHECK_EQ(w.calls, 1); /* drained: no more wakeups */
    CHECK(fixture_done(loop, sv, &w));
}

/* A reader that takes 1 KiB per wakeup of 64 KiB queued must get woken until
 * it has everything: a multishot (edge) poll would stall after the first. */
TEST(level_triggered_partial_reads_drain_everything)
{
    struct lr_loop *loop;
    CHECK_OK(lr_loop_new(&loop, NULL));
    int sv[2];
    CHECK_OK(nonblocking_pair(sv));
    int sz = 1 << 20;
    setsockopt(sv[1], SOL_SOCKET, SO_SNDBUF, &sz, sizeof(sz));
    setsockopt(sv[0], SOL_SOCKET, SO_RCVBUF, &sz, sizeof(sz));
    static char data[65536];
    memset(data, 'a', sizeof(data));
    size_t sent = 0;
    while (sent < sizeof(data)) {
        ssize_t n = write(sv[1], data + sent, sizeof(data) - sent);
        CHECK(n > 0);
        sent += (size_t)n;
    }
    struct watch w;
    CHECK_OK(watch_init(loop, &w, sv[0]));
    w.read_per_event = 1024;
    CHECK_OK(lr_poll_start(&w.p, LR_POLL_IN));
    for (int i = 0; i < 20000 && w.total_read < sizeof(data); i++)
        lr_loop_process(loop);
    CHECK_EQ(w.total_read, sizeof(data));
    CHECK(w.calls >= 64);
    CHECK(fixture_done(loop, sv, &w));
}

/* Adding LR_POLL_OUT to an armed read poll updates it in place: the kernel
 * re-checks readiness and reports the (always writable) socket at once. */
TEST(mask_change_while_armed_takes_effect)
{
    struct lr_loop *loop;
    int sv[2];
    struct watch w;
    CHECK_OK(fixture(&loop, sv, &w));
    CHECK_OK(lr_poll_start(&w.p, LR_POLL_IN));
    spin(loop, 3);
    CHECK_EQ(w.p.poll_op.inflight, 1); /* armed, waiting */
    CHECK_OK(lr_poll_start(&w.p, LR_POLL_IN | LR_POLL_OUT));
    w.stop_in_cb = 1;
    CHECK(spin_until(loop, &w.calls, 1, 2000));
    CHECK_EQ(w.last_events, LR_POLL_OUT);
    /* And back: OUT dropped while IN stays wanted, nothing readable. */
    w.stop_in_cb = 0;
    CHECK_OK(lr_poll_start(&w.p, LR_POLL_IN));
    spin(loop, 5);
    CHECK_EQ(w.calls, 1);
    CHECK_OK(lr_poll_start(&w.p, LR_POLL_OUT));
    CHECK(spin_until(loop, &w.calls, 2, 2000));
    CHECK_EQ(w.last_events, LR_POLL_OUT);
    CHECK(fixture_done(loop, sv, &w));
}

/* Readiness the kernel already reported is not delivered after a stop. */
TEST(no_callback_after_stop)
{
    struct lr_loop *loop;
    int sv[2];
    struct watch w;
    CHECK_OK(fixture(&loop, sv, &w));
    CHECK_OK(lr_poll_start(&w.p, LR_POLL_IN));
    spin(loop, 3);
    CHECK_EQ(write(sv[1], "x", 1), 1);
    usleep(2000); /* the poll completes in the kernel */
    lr_poll_stop(&w.p);
    CHECK_EQ(lr_poll_events(&w.p), 0);
    spin(loop, 10);
    CHECK_EQ(w.calls, 0);
    CHECK_EQ(w.p.poll_op.inflight, 0);
    /* Restart: the byte is still there, level-triggered. */
    CHECK_OK(lr_poll_start(&w.p, LR_POLL_IN));
    CHECK(spin_until(loop, &w.calls, 1, 2000));
    CHECK_EQ(w.last_events, LR_POLL_IN);
    /* Stop while armed and idle: the poll is removed. */
    w.read_per_event = 16;
    lr_poll_stop(&w.p);
    spin(loop, 5);
    CHECK_EQ(w.p.poll_op.inflight + w.p.ctl_op.inflight, 0);
    CHECK(fixture_done(loop, sv, &w));
}

/* Close with a poll in flight, close the fd, and get the same fd number for a
 * new socket at once: the old poll is cancelled by identity, the old watcher
 * never fires again, the new one works, each close callback runs once. */
TEST(close_in_flight_then_fd_number_reused)
{
    struct lr_loop *loop;
    CHECK_OK(lr_loop_new(&loop, NULL));
    int a[2], b[2];
    CHECK_OK(nonblocking_pair(a));
    struct watch old, neu;
    CHECK_OK(watch_init(loop, &old, a[0]));
    CHECK_OK(lr_poll_start(&old.p, LR_POLL_IN));
    spin(loop, 3);
    CHECK_EQ(old.p.poll_op.inflight, 1);
    old.in_close_call = 1;
    CHECK_OK(lr_poll_close(&old.p, watch_close_cb));
    old.in_close_call = 0;
    CHECK_EQ(old.closes, 0); /* never inside the call */
    CHECK_ERR(lr_poll_close(&old.p, watch_close_cb), -EINVAL);
    CHECK_ERR(lr_poll_start(&old.p, LR_POLL_IN), -EINVAL);
    int oldfd = a[0];
    close(a[0]);
    CHECK_OK(nonblocking_pair(b));
    CHECK_EQ(b[0], oldfd); /* the number came back at once */
    CHECK_OK(watch_init(loop, &neu, b[0]));
    CHECK_OK(lr_poll_start(&neu.p, LR_POLL_IN));
    /* The old poll still holds its file: this write wakes it if not cancelled. */
    (void)!send(a[1], "old", 3, MSG_NOSIGNAL);
    CHECK_EQ(write(b[1], "new", 3), 3);
    neu.read_per_event = 16;
    CHECK(spin_until(loop, &neu.calls, 1, 2000));
    CHECK(spin_until(loop, &old.closes, 1, 2000));
    spin(loop, 5);
    CHECK_EQ(old.calls, 0);
    CHECK_EQ(old.closes, 1);
    CHECK(lr_poll_is_closed(&old.p));
    CHECK_EQ(neu.total_read, 3);
    CHECK_OK(lr_poll_close(&neu.p, watch_close_cb));
    CHECK(spin_until(loop, &neu.closes, 1, 2000));
    CHECK_EQ(neu.closes, 1);
    close(a[1]);
    close(b[0]);
    close(b[1]);
    lr_loop_free(loop);
}

TEST(close_from_inside_the_callback)
{
    struct lr_loop *loop;
    int sv[2];
    struct watch w;
    CHECK_OK(fixture(&loop, sv, &w));
    w.close_in_cb = 1;
    CHECK_OK(lr_poll_start(&w.p, LR_POLL_IN | LR_POLL_OUT));
    CHECK(spin_until(loop, &w.calls, 1, 2000));
    spin(loop, 5);
    CHECK_EQ(w.calls, 1);
    CHECK(lr_poll_is_closed(&w.p));
    CHECK_EQ(w.close_cb_inside, 0);
    close(sv[0]);
    close(sv[1]);
    lr_loop_free(loop);
}

TEST(hangup_and_errors_are_reported)
{
    struct lr_loop *loop;
    int sv[2];
    struct watch w;
    CHECK_OK(fixture(&loop, sv, &w));
    CHECK_OK(lr_poll_start(&w.p, LR_POLL_IN));
    spin(loop, 3);
    close(sv[1]);
    w.stop_in_cb = 1;
    CHECK(spin_until(loop, &w.calls, 1, 2000));
    CHECK(w.last_events & LR_POLL_HUP);
    CHECK_OK(lr_poll_close(&w.p, watch_close_cb));
    CHECK(spin_until(loop, &w.closes, 1, 2000));
    close(sv[0]);

    /* A number that is not an open fd: the kernel's error, and stopped. */
    int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    CHECK(fd >= 0);
    close(fd);
    CHECK_OK(watch_init(loop, &w, fd));
    CHECK_OK(lr_poll_start(&w.p, LR_POLL_IN));
    CHECK(spin_until(loop, &w.calls, 1, 2000));
    CHECK_ERR(w.last_status, -EBADF);
    CHECK_EQ(lr_poll_events(&w.p), 0);
    CHECK_OK(lr_poll_close(&w.p, watch_close_cb));
    CHECK(spin_until(loop, &w.closes, 1, 2000));

    /* Bad arguments. */
    CHECK_ERR(lr_poll_init(loop, &w.p, -1, watch_cb), -EINVAL);
    CHECK_ERR(lr_poll_init(NULL, &w.p, 0, watch_cb), -EINVAL);
    CHECK_ERR(lr_poll_init(loop, &w.p, 0, NULL), -EINVAL);
    CHECK_OK(watch_init(loop, &w, 0));
    CHECK_ERR(lr_poll_start(&w.p, LR_POLL_ERR), -EINVAL);
    CHECK_ERR(lr_poll_start(&w.p, 0x8000), -EINVAL);
    CHECK_OK(lr_poll_close(&w.p, NULL));
    spin(loop, 2);
    CHECK(lr_poll_is_closed(&w.p));
    lr_loop_free(loop);
}

/* Many watchers through start / update / stop / close: no allocation. */
TEST(watchers_allocate_nothing)
{
    CHECK(alloccount_selftest());
    struct lr_loop *loop;
    CHECK_OK(lr_loop_new(&loop, NULL));
    enum { N = 64 };
    static int sv[N][2];
    static struct watch w[N];
    for (int i = 0; i < N; i++) {
        CHECK_OK(nonblocking_pair(sv[i]));
        CHECK_OK(watch_init(loop, &w[i], sv[i][0]));
        w[i].read_per_event = 8;
    }
    alloccount_begin();
    for (int round = 0; round < 20; round++) {
        for (int i = 0; i < N; i++)
            lr_poll_start(&w[i].p, LR_POLL_IN);
        spin(loop, 2);
        for (int i = 0; i < N; i++)
            (void)!write(sv[i][1], "ping", 4);
        for (int i = 0; i < N; i++)
            lr_poll_start(&w[i].p, (round & 1) ? LR_POLL_IN | LR_POLL_OUT : LR_POLL_IN);
        spin(loop, 4);
        for (int i = 0; i < N; i++)
            lr_poll_stop(&w[i].p);
        spin(loop, 2);
    }
    for (int i = 0; i < N; i++)
        lr_poll_close(&w[i].p, watch_close_cb);
    for (int i = 0; i < N; i++)
        spin_until(loop, &w[i].closes, 1, 2000);
    struct alloc_counts c = alloccount_end();
    CHECK_EQ(c.allocs, 0);
    for (int i = 0; i < N; i++) {
        CHECK_EQ(w[i].closes, 1);
        CHECK_EQ(w[i].total_read, 20 * 4);
        close(sv[i][0]);
        close(sv[i][1]);
    }
    lr_loop_free(loop);
}

/* Random operations on many watchers (start with random masks, stop, close
 * and re-init, peers writing and readers draining at random), checked after
 * every pass: a callback only while interested and only with wanted events
 * (plus ERR/HUP), never after stop or close, each close callback exactly
 * once, and nothing in flight once closed. Seeded, so a failure replays. */
struct rwatch {
    struct lr_poll p;
    int sv[2];
    unsigned want;     /* what the test last asked for */
    int open;          /* initialised and not closing */
    int closing;       /* lr_poll_close called, callback not yet run */
    int closes;
    int violations;
    int calls;
};

static void rwatch_cb(struct lr_poll *p, int status, unsigned events)
{
    struct rwatch *w = p->data;
    w->calls++;
    if (!w->open || w->closing || status != 0 || !w->want ||
        (events & ~(w->want | LR_POLL_ERR | LR_POLL_HUP)) || !events)
        w->violations++;
    if (events & LR_POLL_IN) {
        char buf[64];
        (void)!read(p->fd, buf, sizeof(buf)); /* drain a little: level-triggered */
    }
}

static void rwatch_closed(struct lr_poll *p)
{
    struct rwatch *w = p->data;
    if (!w->closing || p->poll_op.inflight || p->ctl_op.inflight)
        w->violations++;
    w->closing = 0;
    w->open = 0;
    w->closes++;
}

TEST(random_operations_keep_the_invariants)
{
    struct lr_loop *loop;
    CHECK_OK(lr_loop_new(&loop, NULL));
    enum { N = 32, STEPS = 4000 };
    static struct rwatch w[N];
    uint64_t seed = 0x5eed1234abcdull;
    const char *env = getenv("LR_TEST_SEED");
    if (env)
        seed = strtoull(env, NULL, 0);
    printf("     seed %#llx (LR_TEST_SEED replays)\n", (unsigned long long)seed);
    for (int i = 0; i < N; i++) {
        memset(&w[i], 0, sizeof(w[i]));
        CHECK_OK(nonblocking_pair(w[i].sv));
        w[i].p.data = &w[i];
        CHECK_OK(lr_poll_init(loop, &w[i].p, w[i].sv[0], rwatch_cb));
        w[i].open = 1;
    }
    static const unsigned masks[] = {0, LR_POLL_IN, LR_POLL_OUT, LR_POLL_IN | LR_POLL_OUT};
    int inits = N;
    for (int step = 0; step < STEPS; step++) {
        seed = seed * 6364136223846793005ull + 1442695040888963407ull;
        unsigned r = (unsigned)(seed >> 33);
        struct rwatch *x = &w[r % N];
        switch ((r >> 8) % 6) {
        case 0:
        case 1: /* start / change the mask */
            if (x->open && !x->closing) {
                x->want = masks[(r >> 12) % 4];
                CHECK_OK(lr_poll_start(&x->p, x->want));
            }
            break;
        case 2:
            if (x->open && !x->closing) {
                lr_poll_stop(&x->p);
                x->want = 0;
            }
            break;
        case 3: /* the peer writes */
            (void)!write(x->sv[1], "data", 4);
            break;
        case 4: /* close, or re-init a closed one on the same fd */
            if (x->open && !x->closing) {
                x->closing = 1;
                x->want = 0;
                CHECK_OK(lr_poll_close(&x->p, rwatch_closed));
                CHECK_EQ(x->closing, 1); /* never inside the call */
            } else if (!x->open && !x->closing) {
                CHECK(lr_poll_is_closed(&x->p));
                CHECK_OK(lr_poll_init(loop, &x->p, x->sv[0], rwatch_cb));
                x->want = 0;
                x->open = 1;
                inits++;
            }
            break;
        default: /* a pass, sometimes two */
            lr_loop_process(loop);
            if (r & 0x10000)
                lr_loop_process(loop);
            break;
        }
    }
    /* Close everything still open and let it settle. */
    for (int i = 0; i < N; i++) {
        if (w[i].open && !w[i].closing) {
            w[i].closing = 1;
            CHECK_OK(lr_poll_close(&w[i].p, rwatch_closed));
        }
    }
    for (int pass = 0; pass < 200; pass++) {
        lr_loop_process(loop);
        usleep(100);
    }
    int calls = 0, closes = 0;
    for (int i = 0; i < N; i++) {
        CHECK_EQ(w[i].violations, 0);
        CHECK(lr_poll_is_closed(&w[i].p));
        CHECK_EQ(w[i].p.poll_op.inflight + w[i].p.ctl_op.inflight, 0);
        calls += w[i].calls;
        closes += w[i].closes;
        close(w[i].sv[0]);
        close(w[i].sv[1]);
    }
    CHECK_EQ(closes, inits); /* every init ended in exactly one close callback */
    printf("     %d callbacks, %d watcher lifetimes\n", calls, inits);
    CHECK(calls > 100);
    lr_loop_free(loop);
}

/* ---- a wakeup without the wanted events, pending when the watcher is
 * stopped or closed ----
 * A signalfd's wait queue is woken by every signal sent to the process,
 * also those outside its mask; io_uring then re-checks the fd as deferred
 * task work, which runs at the loop's next pass. A stop or close issued from
 * a callback between the wakeup and that re-check reaches the kernel first.
 * (leasering hold's signalfd watcher, closed from the callback that saw the
 * command exit -- whose SIGCHLD had just woken it -- never closed.) */

static struct watch sig_w; /* on a signalfd for SIGUSR1 */
static int trigger_close;  /* 1: close sig_w from the trigger's callback; 0: stop it */

static void trigger_cb(struct lr_poll *p, int status, unsigned events)
{
    (void)status;
    (void)events;
    uint64_t v;
    (void)!read(p->fd, &v, sizeof(v));
    lr_poll_stop(p);
    raise(SIGUSR2); /* blocked, not in the signalfd's mask: wakes it, no POLLIN */
    if (trigger_close)
        lr_poll_close(&sig_w.p, watch_close_cb);
    else
        lr_poll_stop(&sig_w.p);
}

static void drain_signals(void)
{
    sigset_t s;
    sigemptyset(&s);
    sigaddset(&s, SIGUSR1);
    sigaddset(&s, SIGUSR2);
    struct timespec zero = {0, 0};
    while (sigtimedwait(&s, NULL, &zero) > 0)
        ;
}

struct stray {
    struct lr_loop *loop;
    struct watch trig; /* on an eventfd: its callback sends the stray signal */
    int sfd, efd;
    sigset_t old;
};

/* Arm sig_w, then have a callback send a stray signal and stop or close it. */
static int stray_start(struct stray *t, int close_it)
{
    t->sfd = t->efd = -1;
    sigset_t s;
    sigemptyset(&s);
    sigaddset(&s, SIGUSR1);
    sigaddset(&s, SIGUSR2);
    if (sigprocmask(SIG_BLOCK, &s, &t->old) < 0)
        return -errno;
    drain_signals();
    sigdelset(&s, SIGUSR2);
    t->sfd = signalfd(-1, &s, SFD_NONBLOCK | SFD_CLOEXEC);
    t->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (t->sfd < 0 || t->efd < 0)
        return -errno;
    int rc = lr_loop_new(&t->loop, NULL);
    if (rc == 0)
        rc = watch_init(t->loop, &sig_w, t->sfd);
    if (rc == 0)
        rc = lr_poll_init(t->loop, &t->trig.p, t->efd, trigger_cb);
    if (rc == 0)
        rc = lr_poll_start(&sig_w.p, LR_POLL_IN);
    if (rc == 0)
        rc = lr_poll_start(&t->trig.p, LR_POLL_IN);
    if (rc < 0)
        return rc;
    spin(t->loop, 3); /* both armed */
    trigger_close = close_it;
    uint64_t one = 1;
    if (write(t->efd, &one, sizeof(one)) != sizeof(one))
        return -errno;
    return 0;
}

static void stray_done(struct stray *t)
{
    lr_poll_close(&t->trig.p, NULL);
    spin(t->loop, 3);
    lr_loop_free(t->loop);
    close(t->sfd);
    close(t->efd);
    drain_signals();
    sigprocmask(SIG_SETMASK, &t->old, NULL);
}

TEST(close_while_a_stray_wakeup_is_pending)
{
    struct stray t;
    CHECK_OK(stray_start(&t, 1));
    int closed = spin_until(t.loop, &sig_w.closes, 1, 2000);
    int calls = sig_w.calls;
    int inflight = sig_w.p.poll_op.inflight + sig_w.p.ctl_op.inflight;
    stray_done(&t);
    CHECK(closed);
    CHECK(lr_poll_is_closed(&sig_w.p));
    CHECK_EQ(calls, 0);
    CHECK_EQ(inflight, 0);
}

TEST(stop_while_a_stray_wakeup_is_pending)
{
    struct stray t;
    CHECK_OK(stray_start(&t, 0));
    spin(t.loop, 20);
    /* stopped means nothing in flight, and a close completes */
    int inflight = sig_w.p.poll_op.inflight + sig_w.p.ctl_op.inflight;
    raise(SIGUSR1);
    spin(t.loop, 10);
    int calls = sig_w.calls;
    CHECK_OK(lr_poll_start(&sig_w.p, LR_POLL_IN)); /* the pending SIGUSR1: reported now */
    int restarted = spin_until(t.loop, &sig_w.calls, 1, 2000);
    lr_poll_close(&sig_w.p, watch_close_cb);
    int closed = spin_until(t.loop, &sig_w.closes, 1, 2000);
    stray_done(&t);
    CHECK_EQ(inflight, 0);
    CHECK_EQ(calls, 0);
    CHECK(restarted);
    CHECK(closed);
}

TESTS(T(readable_fires_with_the_ready_events), T(level_triggered_partial_reads_drain_everything),
      T(mask_change_while_armed_takes_effect), T(no_callback_after_stop),
      T(close_in_flight_then_fd_number_reused), T(close_from_inside_the_callback),
      T(hangup_and_errors_are_reported), T(watchers_allocate_nothing),
      T(random_operations_keep_the_invariants), T(close_while_a_stray_wakeup_is_pending),
      T(stop_while_a_stray_wakeup_is_pending))
