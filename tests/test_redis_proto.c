/* SPDX-License-Identifier: MIT */
/*
 * test_redis_proto.c - the Redis backend against a fake server, for what a
 * real redis-server cannot do: malformed replies, an oversized bulk header, a
 * well-formed reply of the wrong shape, and a reply that stalls halfway. The
 * fake answers the handshake (SCRIPT LOAD) correctly, then misbehaves on the
 * first EVALSHA. Each case must end in a clear error for the lease and a
 * connection the backend recovers from, never a crash or an over-read.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/socket.h>
#include <unistd.h>

#include <leasering.h>
#include "echo.h"
#include "harness.h"
#include "recorder.h"
#include "resp.h"

enum mode { GARBAGE, HUGE_BULK, WRONG_SHAPE, STALL_MID_REPLY, DEEP_NESTING };

struct fake {
    struct tcp_peer peer;
    enum mode mode;
    atomic_int evalshas;
};

static const char sha_reply[] = "$40\r\n0123456789012345678901234567890123456789\r\n";

static void answer(struct fake *f, int fd, const char *cmd, size_t len)
{
    if (len == 6 && !memcmp(cmd, "SCRIPT", 6)) {
        (void)!write(fd, sha_reply, sizeof(sha_reply) - 1);
        return;
    }
    /* the store checks at connect: nothing said about the config, a primary */
    if (len == 6 && !memcmp(cmd, "CONFIG", 6)) {
        (void)!write(fd, "*0\r\n", 4);
        return;
    }
    if (len == 4 && !memcmp(cmd, "ROLE", 4)) {
        static const char role[] = "*3\r\n$6\r\nmaster\r\n:0\r\n*0\r\n";
        (void)!write(fd, role, sizeof(role) - 1);
        return;
    }
    atomic_fetch_add(&f->evalshas, 1);
    static char deep[4 * 64 + 8]; /* 64 nested one-element arrays, then :1 */
    const char *r;
    switch (f->mode) {
    case GARBAGE:
        r = "?not resp at all\r\n";
        break;
    case HUGE_BULK:
        r = "$999999999999\r\n";
        break;
    case WRONG_SHAPE:
        r = "+OK\r\n"; /* well-formed, meaningless for an acquire */
        break;
    case STALL_MID_REPLY:
        r = "*2\r\n$32\r\n0123456789abcdef"; /* then nothing */
        break;
    default:
        for (int i = 0; i < 64; i++)
            memcpy(deep + 4 * i, "*1\r\n", 4);
        memcpy(deep + 4 * 64, ":1\r\n", 5);
        r = deep;
        break;
    }
    (void)!write(fd, r, strlen(r));
}

/* Serve connections: parse commands with our own parser, answer each. */
static void *serve(void *arg)
{
    struct fake *f = arg;
    for (;;) {
        int fd = accept(f->peer.listen_fd, NULL, NULL);
        if (fd < 0)
            return NULL;
        struct lr_resp_parser p;
        lr_resp_parser_init(&p);
        char buf[65536];
        bool want_name = false;
        ssize_t n;
        while ((n = read(fd, buf, sizeof(buf))) > 0) {
            size_t off = 0;
            while (off < (size_t)n) {
                struct lr_resp_token t;
                int rc = lr_resp_parse(&p, buf + off, (size_t)n - off, &t);
                if (rc < 0)
                    break;
                off += (size_t)rc;
                if (t.depth == 0 && t.type == LR_RESP_ARRAY)
                    want_name = true;
                else if (want_name && t.depth == 1) {
                    want_name = false;
                    answer(f, fd, t.str, t.len);
                }
            }
        }
        close(fd);
    }
}

static int fake_start(struct fake *f, enum mode mode)
{
    memset(f, 0, sizeof(*f));
    f->mode = mode;
    return peer_start(&f->peer, serve, f);
}

static void fake_stop(struct fake *f)
{
    peer_stop(&f->peer);
}

static void one_case(enum mode mode, int want)
{
    rec_setup();
    struct fake f;
    CHECK_OK(fake_start(&f, mode));
    char uri[64];
    snprintf(uri, sizeof(uri), "redis://127.0.0.1:%d", ntohs(f.peer.addr.sin_port));
    struct lr_manager_opts o = {.ttl_ms = 2000, .cbs = &rec_cbs, .request_timeout_ms = 150};
    struct lr_manager *m;
    CHECK_OK(lr_manager_new(&m, loop, uri, &o));
    struct lr_lease l;
    CHECK_OK(lr_lease_init(m, &l, "x", NULL));
    CHECK_OK(lr_lease_try_acquire(&l));
    run_until(EV_ACQFAIL, 3000);
    const struct rec *r = rec_first(EV_ACQFAIL, &l);
    CHECK(r != NULL);
    CHECK_ERR(r->status, want);
    CHECK(atomic_load(&f.evalshas) >= 1);
    /* the backend reconnects and tries again: the fake keeps answering */
    CHECK_OK(lr_lease_try_acquire(&l));
    run_until(EV_ACQFAIL, 3000);
    CHECK_EQ(rec_count(EV_ACQFAIL, &l), 2);
    CHECK_EQ(rec_count(EV_ACQ, &l), 0);
    lr_lease_deinit(&l);
    close_mgr(m);
    /* close_mgr closed our connection: the fake's read ends, its accept goes on */
    fake_stop(&f);
}

TEST(malformed_reply_is_a_bad_reply)
{
    one_case(GARBAGE, LR_EBADREPLY);
}

TEST(oversized_bulk_header_is_refused)
{
    one_case(HUGE_BULK, LR_EBADREPLY);
}

TEST(wrong_shape_reply_is_a_bad_reply)
{
    one_case(WRONG_SHAPE, LR_EBADREPLY);
}

TEST(reply_stalled_midway_times_out)
{
    one_case(STALL_MID_REPLY, -ETIMEDOUT);
}

TEST(nesting_beyond_the_limit_is_refused)
{
    one_case(DEEP_NESTING, LR_EBADREPLY);
}

TESTS(T(malformed_reply_is_a_bad_reply), T(oversized_bulk_header_is_refused),
      T(wrong_shape_reply_is_a_bad_reply), T(reply_stalled_midway_times_out),
      T(nesting_beyond_the_limit_is_refused))
