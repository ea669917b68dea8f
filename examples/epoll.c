/* SPDX-License-Identifier: MIT */
/*
 * epoll.c - leasering inside a plain epoll loop.
 *
 *     example-epoll redis://127.0.0.1:6379 2500 ex1-
 *
 * The host owns one epoll fd and sleeps in epoll_wait(); leasering never
 * blocks and gets no thread of its own. The three calls that embed it:
 *   lr_loop_fd()         an fd to watch for EPOLLIN (level-triggered),
 *   lr_loop_timeout_ms() how long the host may sleep (-1 forever, 0 not at all),
 *   lr_loop_process()    one non-blocking pass; callbacks run inside it.
 * A timerfd stands for the host's own work: after RUN_MS it starts the
 * shutdown (common.h: release the leases, wait, close the manager).
 */
#include <stdbool.h>
#include <stdint.h>
#include <sys/epoll.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "common.h"

static int add_fd(int ep, int fd)
{
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = fd};
    return epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
}

/* A one-shot timerfd for the host's RUN_MS deadline. */
static int run_timer(unsigned ms)
{
    int fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    struct itimerspec its = {.it_value = {.tv_sec = ms / 1000, .tv_nsec = ms % 1000 * 1000000L}};
    if (fd >= 0 && timerfd_settime(fd, 0, &its, NULL) < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

int main(int argc, char **argv)
{
    struct example ex;
    if (example_parse(&ex, argc, argv) < 0)
        return 2;
    if (example_start(&ex) < 0)
        return 1;

    /* lr_loop_fd() first: the eventfd is only signalled once it was asked for. */
    int lr_fd = lr_loop_fd(ex.loop);
    int ep = epoll_create1(EPOLL_CLOEXEC);
    int tfd = run_timer(ex.run_ms);
    if (ep < 0 || tfd < 0 || add_fd(ep, lr_fd) < 0 || add_fd(ep, tfd) < 0) {
        perror("epoll/timerfd");
        return 1;
    }

    while (!ex.finished) {
        /* Measured from now, so it is right after any wakeup. */
        int timeout = lr_loop_timeout_ms(ex.loop);
        struct epoll_event evs[4];
        int n = epoll_wait(ep, evs, 4, timeout);
        if (n < 0 && errno != EINTR) {
            perror("epoll_wait");
            return 1;
        }
        bool readable = false;
        for (int i = 0; i < n; i++) {
            if (evs[i].data.fd == lr_fd) {
                readable = true; /* may stand for many completions */
            } else if (evs[i].data.fd == tfd) {
                uint64_t expirations;
                if (read(tfd, &expirations, sizeof(expirations)) > 0)
                    example_stop(&ex); /* queues work: lr_loop_timeout_ms() is now 0 */
            }
        }
        /* Process when the fd is readable, when leasering's timeout expired
         * or when our own calls queued work; a wakeup for the host alone
         * needs no pass (lr_loop_timeout_ms() counts from now). */
        if (readable || lr_loop_timeout_ms(ex.loop) == 0) {
            int rc = lr_loop_process(ex.loop);
            if (rc < 0)
                example_fatal(&ex, "lr_loop_process", rc);
        }
    }

    /* Stop watching the fd before the loop (which owns and closes it) goes. */
    close(tfd);
    close(ep);
    return example_finish(&ex);
}
