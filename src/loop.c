/* SPDX-License-Identifier: MIT */
/*
 * loop.c - the proactor: one io_uring, a timer wheel, deferred calls and a
 * provided-buffer ring, single-threaded.
 *
 * Phases of one iteration, always in this order: run the *urgent* timers that
 * expired before the pass began (the lease core's: after a stall, a lease
 * past its validity is declared lost before any reply is looked at), reap
 * every completion, run the other expired timers, run deferred calls, flush
 * connection output, then one
 * submit that also waits until the next timer deadline (lr_loop_run) or
 * returns at once (lr_loop_process). Layer: knows liburing; knows nothing of
 * leases or protocols.
 */
#include <errno.h>
#include <limits.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <unistd.h>
#include <time.h>

#include <leasering/loop.h>
#include "alloc_int.h"
#include "log_int.h"
#include "loop_int.h"

#define DEFAULT_RING_ENTRIES 1024u
#define DEFAULT_BUF_COUNT 64u
#define DEFAULT_BUF_SIZE 16384u
#define MAX_ENTRIES 32768u
#define MAX_BUF_SIZE (1u << 20)
#define REAP_BATCH 256u

static bool is_pow2(unsigned v)
{
    return v && !(v & (v - 1));
}

void lr__loop_clock_update(struct lr_loop *loop)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    loop->now_ns = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
    loop->now_ms = loop->now_ns / 1000000u;
}

static int ring_setup(struct lr_loop *loop, unsigned entries, unsigned flags)
{
    struct io_uring_params p;
    if (!(flags & LR_LOOP_NO_TASKRUN_FLAGS)) {
        static const unsigned tries[] = {
            IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_COOP_TASKRUN,
            IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_COOP_TASKRUN,
            IORING_SETUP_COOP_TASKRUN,
        };
        for (size_t i = 0; i < sizeof(tries) / sizeof(tries[0]); i++) {
            memset(&p, 0, sizeof(p));
            p.flags = tries[i] | IORING_SETUP_CQSIZE;
            p.cq_entries = entries * 2;
            int rc = io_uring_queue_init_params(entries, &loop->ring, &p);
            if (rc == 0) {
                loop->ring_flags = tries[i];
                return 0;
            }
            if (rc != -EINVAL) /* -EINVAL: this kernel lacks a flag; try fewer */
                return rc;
        }
    }
    memset(&p, 0, sizeof(p));
    p.flags = IORING_SETUP_CQSIZE;
    p.cq_entries = entries * 2;
    loop->ring_flags = 0;
    return io_uring_queue_init_params(entries, &loop->ring, &p);
}

static int bufs_setup(struct lr_loop *loop)
{
    long page = 4096;
    loop->br_bytes = ((size_t)loop->buf_count * sizeof(struct io_uring_buf) + page - 1) /
                     (size_t)page * (size_t)page;
    loop->bufs_bytes = (size_t)loop->buf_count * loop->buf_size;
    /* Page-aligned ring memory, as the kernel requires (liburing 2.3 has no
     * io_uring_setup_buf_ring). */
    void *br = mmap(NULL, loop->br_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                    -1, 0);
    if (br == MAP_FAILED)
        return -ENOMEM;
    void *bufs = mmap(NULL, loop->bufs_bytes, PROT_READ | PROT_WRITE,
                      MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (bufs == MAP_FAILED) {
        munmap(br, loop->br_bytes);
        return -ENOMEM;
    }
    loop->br = br;
    loop->bufs = bufs;
    io_uring_buf_ring_init(loop->br);
    struct io_uring_buf_reg reg;
    memset(&reg, 0, sizeof(reg));
    reg.ring_addr = (uint64_t)(uintptr_t)loop->br;
    reg.ring_entries = loop->buf_count;
    reg.bgid = LR_BGID;
    int rc = io_uring_register_buf_ring(&loop->ring, &reg, 0);
    if (rc < 0) {
        munmap(loop->br, loop->br_bytes);
        munmap(loop->bufs, loop->bufs_bytes);
        loop->br = NULL;
        loop->bufs = NULL;
        return rc;
    }
    unsigned mask = io_uring_buf_ring_mask(loop->buf_count);
    for (unsigned i = 0; i < loop->buf_count; i++)
        io_uring_buf_ring_add(loop->br, lr__loop_buf(loop, i), loop->buf_size, (unsigned short)i,
                              mask, (int)i);
    io_uring_buf_ring_advance(loop->br, (int)loop->buf_count);
    return 0;
}

/*
 * A foreign loop cannot watch the ring fd itself: under DEFER_TASKRUN the
 * kernel queues completions as task work and a sleeping epoll_wait on the
 * ring fd is not woken for it (checked on 6.18: poll() reports EPOLLIN, but
 * no wakeup is delivered). A registered eventfd is signalled when task work
 * is first queued and when CQEs are posted, so that is what lr_loop_fd()
 * hands out. It starts muted (IORING_CQ_EVENTFD_DISABLED) so loops that are
 * never embedded pay no signalling cost.
 */
static int eventfd_setup(struct lr_loop *loop)
{
    loop->event_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (loop->event_fd < 0)
        return -errno;
    int rc = io_uring_cq_eventfd_toggle(&loop->ring, false);
    if (rc == 0)
        rc = io_uring_register_eventfd(&loop->ring, loop->event_fd);
    if (rc < 0) {
        close(loop->event_fd);
        return rc;
    }
    return 0;
}

int lr_loop_new(struct lr_loop **out, const struct lr_loop_opts *opts)
{
    struct lr_loop_opts o = {0};
    if (opts)
        o = *opts;
    if (!out)
        return -EINVAL;
    *out = NULL;
    if (!o.ring_entries)
        o.ring_entries = DEFAULT_RING_ENTRIES;
    if (!o.buf_count)
        o.buf_count = DEFAULT_BUF_COUNT;
    if (!o.buf_size)
        o.buf_size = DEFAULT_BUF_SIZE;
    if (!is_pow2(o.ring_entries) || o.ring_entries > MAX_ENTRIES || !is_pow2(o.buf_count) ||
        o.buf_count > MAX_ENTRIES || o.buf_size > MAX_BUF_SIZE ||
        (o.flags & ~(unsigned)LR_LOOP_NO_TASKRUN_FLAGS))
        return -EINVAL;

    struct lr_loop *loop = lr__calloc(1, sizeof(*loop));
    if (!loop)
        return -ENOMEM;
    int rc = ring_setup(loop, o.ring_entries, o.flags);
    if (rc < 0) {
        lr__free(loop);
        return rc;
    }
    loop->buf_count = o.buf_count;
    loop->buf_size = o.buf_size;
    rc = bufs_setup(loop);
    if (rc < 0) {
        io_uring_queue_exit(&loop->ring);
        lr__free(loop);
        return rc;
    }
    rc = eventfd_setup(loop);
    if (rc < 0) {
        io_uring_unregister_buf_ring(&loop->ring, LR_BGID);
        munmap(loop->br, loop->br_bytes);
        munmap(loop->bufs, loop->bufs_bytes);
        io_uring_queue_exit(&loop->ring);
        lr__free(loop);
        return rc;
    }
    lr_list_init(&loop->deferred);
    lr_list_init(&loop->flushq);
    lr__loop_clock_update(loop);
    lr__wheel_init(&loop->wheel, loop->now_ms);
    *out = loop;
    return 0;
}

void lr_loop_free(struct lr_loop *loop)
{
    if (!loop)
        return;
    io_uring_unregister_buf_ring(&loop->ring, LR_BGID);
    io_uring_queue_exit(&loop->ring);
    close(loop->event_fd);
    munmap(loop->br, loop->br_bytes);
    munmap(loop->bufs, loop->bufs_bytes);
    lr__free(loop);
}

struct io_uring_sqe *lr__loop_sqe(struct lr_loop *loop, struct lr__op *op)
{
    struct io_uring_sqe *sqe = io_uring_get_sqe(&loop->ring);
    if (!sqe) {
        /* SQ full: hand what we have to the kernel and take a fresh slot. The
         * kernel keeps overflowing completions (IORING_FEAT_NODROP). */
        int rc;
        do
            rc = io_uring_submit(&loop->ring);
        while (rc == -EINTR);
        if (rc < 0)
            return NULL;
        loop->sqes_queued = 0;
        sqe = io_uring_get_sqe(&loop->ring);
        if (!sqe)
            return NULL;
    }
    io_uring_sqe_set_data(sqe, op);
    op->inflight++;
    loop->sqes_queued++;
    return sqe;
}

void lr__loop_defer(struct lr_loop *loop, struct lr__task *t)
{
    if (!lr_list_is_linked(&t->link))
        lr_list_push_tail(&loop->deferred, &t->link);
}

void lr__loop_want_flush(struct lr_loop *loop, struct lr__task *t)
{
    if (!lr_list_is_linked(&t->link))
        lr_list_push_tail(&loop->flushq, &t->link);
}

void lr__loop_buf_return(struct lr_loop *loop, unsigned bid)
{
    io_uring_buf_ring_add(loop->br, lr__loop_buf(loop, bid), loop->buf_size, (unsigned short)bid,
                          io_uring_buf_ring_mask(loop->buf_count), (int)loop->buf_pending);
    loop->buf_pending++;
}

static void bufs_publish(struct lr_loop *loop)
{
    if (loop->buf_pending) {
        io_uring_buf_ring_advance(loop->br, (int)loop->buf_pending);
        loop->buf_pending = 0;
    }
}

/* Reap every CQE now in the ring. Returns how many. */
static int reap(struct lr_loop *loop)
{
    int total = 0;
    for (;;) {
        struct io_uring_cqe *cqes[REAP_BATCH];
        unsigned n = io_uring_peek_batch_cqe(&loop->ring, cqes, REAP_BATCH);
        if (!n)
            break;
        for (unsigned i = 0; i < n; i++) {
            struct lr__op *op = io_uring_cqe_get_data(cqes[i]);
            int res = cqes[i]->res;
            uint32_t flags = cqes[i]->flags;
            if (!op) /* liburing's own internal timeout SQEs carry no op */
                continue;
            if (!(flags & IORING_CQE_F_MORE))
                op->inflight--;
            op->complete(op, res, flags); /* may free the owner: last use of op */
        }
        io_uring_cq_advance(&loop->ring, n);
        total += (int)n;
        /* Buffers consumed by these completions go back before the next batch. */
        bufs_publish(loop);
    }
    return total;
}

/* Fire expired timers. In the first phase of a pass (@urgent_only), only
 * urgent ones run; the others go back to the ready list, in order, for the
 * second phase, after the completions. */
static void run_timers(struct lr_loop *loop, bool urgent_only)
{
    struct lr_list batch;
    lr_list_init(&batch);
    if (!lr__wheel_advance(&loop->wheel, loop->now_ms, &batch))
        return;
    struct lr_timer *t;
    while ((t = lr__wheel_batch_pop(&batch))) {
        if (urgent_only && !t->urgent)
            lr__wheel_insert(&loop->wheel, t, t->deadline); /* past: to the ready list */
        else
            t->cb(t); /* may start/stop any timer; stopped ones leave the batch */
    }
}

static void run_tasks(struct lr_list *queue)
{
    /* Tasks queued while we run go to the next iteration. */
    struct lr_list batch;
    lr_list_init(&batch);
    lr_list_splice_tail(&batch, queue);
    struct lr_list *node;
    while ((node = lr_list_pop(&batch))) {
        struct lr__task *t = lr_container_of(node, struct lr__task, link);
        t->run(t);
    }
}

/* The middle phases, shared by lr_loop_run and lr_loop_process. */
static void run_phases(struct lr_loop *loop)
{
    run_timers(loop, false);
    run_tasks(&loop->deferred);
    run_tasks(&loop->flushq);
    bufs_publish(loop);
    lr__log_tick(); /* counts of storms whose window ended (one load when none) */
    loop->iterations++;
}

static int submit_nowait(struct lr_loop *loop)
{
    int rc;
    do
        rc = io_uring_submit(&loop->ring);
    while (rc == -EINTR);
    loop->sqes_queued = 0;
    if (rc == -EAGAIN || rc == -EBUSY)
        rc = 0; /* the kernel is short of resources or has overflowed CQEs: reap, retry */
    return rc < 0 ? rc : 0;
}

/* Work that must not wait for a completion: deferred calls, flushes and
 * ready timers. (submit_and_wait hands queued SQEs to the kernel itself.) */
static bool has_ready_work(const struct lr_loop *loop)
{
    return !lr_list_is_empty(&loop->deferred) || !lr_list_is_empty(&loop->flushq) ||
           !lr_list_is_empty(&loop->wheel.ready);
}

int lr_loop_timeout_ms(const struct lr_loop *loop)
{
    /* Requests prepared by host code between passes (a close's cancels, say)
     * reach the kernel only in lr_loop_process: they are ready work too. */
    if (has_ready_work(loop) || io_uring_sq_ready(&loop->ring) > 0)
        return 0;
    uint64_t next = lr__wheel_next(&loop->wheel);
    if (next == UINT64_MAX)
        return -1;
    /* Host code asks between passes, maybe long after the last one: measure
     * from now, not from the cached clock, or its deadline drifts late. */
    uint64_t now = loop->now_ms;
    if (!loop->running && !loop->processing) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        now = (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
    }
    if (next <= now)
        return 0;
    uint64_t d = next - now;
    return d > INT_MAX ? INT_MAX : (int)d;
}

/* Submit and wait for one completion or the next timer deadline. */
static int submit_and_wait(struct lr_loop *loop)
{
    struct io_uring_cqe *cqe = NULL;
    int rc;
    if (has_ready_work(loop))
        return submit_nowait(loop);
    uint64_t next = lr__wheel_next(&loop->wheel);
    if (next == UINT64_MAX) {
        rc = io_uring_submit_and_wait(&loop->ring, 1);
    } else {
        /* Wait with nanosecond precision until the deadline tick begins, so a
         * timer fires within its tick rather than up to a tick late. */
        lr__loop_clock_update(loop);
        uint64_t deadline_ns = next * 1000000u;
        if (deadline_ns <= loop->now_ns)
            return submit_nowait(loop);
        uint64_t wait = deadline_ns - loop->now_ns;
        struct __kernel_timespec ts = {.tv_sec = (long long)(wait / 1000000000u),
                                       .tv_nsec = (long long)(wait % 1000000000u)};
        rc = io_uring_submit_and_wait_timeout(&loop->ring, &cqe, 1, &ts, NULL);
    }
    loop->sqes_queued = 0;
    if (rc == -ETIME || rc == -EINTR || rc == -EAGAIN || rc == -EBUSY)
        rc = 0;
    return rc < 0 ? rc : 0;
}

int lr_loop_run(struct lr_loop *loop)
{
    int rc = 0;
    loop->running = true;
    while (!loop->stop) {
        lr__loop_clock_update(loop);
        run_timers(loop, true);
        reap(loop);
        run_phases(loop);
        if (loop->stop) {
            rc = submit_nowait(loop);
            break;
        }
        rc = submit_and_wait(loop);
        if (rc < 0)
            break;
    }
    loop->stop = false;
    loop->running = false;
    return rc;
}

void lr_loop_stop(struct lr_loop *loop)
{
    loop->stop = true;
}

int lr_loop_process(struct lr_loop *loop)
{
    /* Under DEFER_TASKRUN completions reach the CQ only when this thread
     * enters the kernel: run that work first. Posting those CQEs signals the
     * eventfd again, so drain it after this step (not before, which left one
     * empty wakeup per burst) and before reaping: work queued from here on
     * signals it anew and leaves it readable for the host's next poll. */
    int rc = io_uring_get_events(&loop->ring);
    if (rc < 0 && rc != -EINTR && rc != -EAGAIN && rc != -EBUSY)
        return rc;
    eventfd_t drained;
    (void)eventfd_read(loop->event_fd, &drained);
    loop->processing = true;
    lr__loop_clock_update(loop);
    run_timers(loop, true);
    int n = reap(loop);
    run_phases(loop);
    loop->processing = false;
    /* The host loop sleeps in its own poll next: SQEs must reach the kernel. */
    rc = submit_nowait(loop);
    return rc < 0 ? rc : n;
}

uint64_t lr_loop_now_ms(const struct lr_loop *loop)
{
    return loop->now_ms;
}

void lr_loop_update_time(struct lr_loop *loop)
{
    lr__loop_clock_update(loop);
}

int lr_loop_fd(const struct lr_loop *loop)
{
    unsigned *cq_flags = loop->ring.cq.kflags;
    if (__atomic_load_n(cq_flags, __ATOMIC_RELAXED) & IORING_CQ_EVENTFD_DISABLED) {
        /* First request: unmute, and make the fd readable once so work that
         * arrived while muted is not slept through. */
        __atomic_and_fetch(cq_flags, ~(unsigned)IORING_CQ_EVENTFD_DISABLED, __ATOMIC_RELEASE);
        eventfd_write(loop->event_fd, 1);
    }
    return loop->event_fd;
}
