/* SPDX-License-Identifier: MIT */
/*
 * test_azblob_proto.c - the Azure Blob backend against a fake HTTP server,
 * for what Azurite will not do on demand: close a keep-alive connection
 * after every answer (the backend must reopen transparently), and drop a
 * request that arrives on a reused connection without answering it (the
 * backend must send that idempotent request once more on a fresh
 * connection, and only once). The fake answers Lease Blob requests with
 * canned success responses.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdatomic.h>
#include <sys/socket.h>
#include <unistd.h>

#include <leasering.h>
#include "echo.h"
#include "harness.h"
#include "recorder.h"

enum mode { CLOSE_AFTER_ANSWER, DROP_ON_REUSE };

struct fake {
    struct tcp_peer peer;
    enum mode mode;
    atomic_int answered;
    atomic_int dropped;
    atomic_int connections;
};

/* A canned answer for the request head in @req. */
static const char *answer_for(const char *req)
{
    if (!strncmp(req, "HEAD ", 5) || !strncmp(req, "GET ", 4))
        return "HTTP/1.1 200 OK\r\nETag: \"0x1\"\r\nx-ms-meta-fence: 7\r\nContent-Length: 0\r\n\r\n";
    if (strstr(req, "x-ms-lease-action: acquire") || strstr(req, "restype=container") ||
        strstr(req, "x-ms-blob-type"))
        return "HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n";
    return "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"; /* renew, release, metadata */
}

static void *serve(void *arg)
{
    struct fake *f = arg;
    for (;;) {
        int fd = accept(f->peer.listen_fd, NULL, NULL);
        if (fd < 0)
            return NULL;
        atomic_fetch_add(&f->connections, 1);
        static char buf[16384];
        size_t have = 0;
        int served = 0;
        for (;;) {
            char *end = have ? memmem(buf, have, "\r\n\r\n", 4) : NULL;
            if (!end) {
                ssize_t n = read(fd, buf + have, sizeof(buf) - 1 - have);
                if (n <= 0)
                    break;
                have += (size_t)n;
                buf[have] = '\0';
                continue;
            }
            size_t len = (size_t)(end + 4 - buf); /* requests here have no body */
            buf[len - 1] = '\0';
            bool drop = served > 0 && f->mode == DROP_ON_REUSE;
            if (drop) { /* a reused connection: close without answering */
                atomic_fetch_add(&f->dropped, 1);
                break;
            }
            const char *a = answer_for(buf);
            if (write(fd, a, strlen(a)) < 0)
                break;
            atomic_fetch_add(&f->answered, 1);
            served++;
            memmove(buf, buf + len, have - len);
            have -= len;
            if (f->mode == CLOSE_AFTER_ANSWER)
                break;
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

#define KEY "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq%2FK1SZFPTOtr%2FKBHBeksoGMGw%3D%3D"

static struct lr_manager *mgr(const struct fake *f)
{
    char uri[256];
    snprintf(uri, sizeof(uri), "azblob://devstoreaccount1:%s@127.0.0.1:%d/fake?tls=no", KEY,
             ntohs(f->peer.addr.sin_port));
    struct lr_manager_opts o = {.ttl_ms = 15000, .cbs = &rec_cbs, .connections = 1,
                                .request_timeout_ms = 1000};
    struct lr_manager *m = NULL;
    return lr_manager_new(&m, loop, uri, &o) == 0 ? m : NULL;
}

/* Acquire, then renew three times on demand; returns renewals seen. */
static int acquire_and_renew(struct lr_manager *m, struct lr_lease *l)
{
    if (lr_lease_init(m, l, "job", NULL) < 0 || lr_lease_acquire(l, 5000) < 0)
        return -1;
    run_until(EV_ACQ, 5000);
    for (int i = 0; i < 3; i++) {
        lr_lease_renew(l);
        run_until(EV_RENEW, 3000);
        nev = 0;
    }
    return (int)lr_lease_stats(l)->renewals;
}

TEST(connections_closed_after_each_answer_are_reopened)
{
    rec_setup();
    struct fake f;
    CHECK_OK(fake_start(&f, CLOSE_AFTER_ANSWER));
    struct lr_manager *m = mgr(&f);
    CHECK(m);
    struct lr_lease l;
    CHECK_EQ(acquire_and_renew(m, &l), 3);
    CHECK_EQ(lr_lease_fence(&l), 8); /* the fake's counter 7, plus one */
    CHECK_EQ(lr_lease_state(&l), LR_LEASE_HELD);
    printf("     %d answers over %d connections\n", atomic_load(&f.answered),
           atomic_load(&f.connections));
    CHECK(atomic_load(&f.connections) >= atomic_load(&f.answered)); /* one each */
    lr_lease_deinit(&l);
    close_mgr(m);
    fake_stop(&f);
}

TEST(a_request_dropped_on_a_reused_connection_is_sent_once_more)
{
    rec_setup();
    struct fake f;
    CHECK_OK(fake_start(&f, DROP_ON_REUSE));
    struct lr_manager *m = mgr(&f);
    CHECK(m);
    struct lr_lease l;
    CHECK_EQ(acquire_and_renew(m, &l), 3);
    CHECK_EQ(rec_count(EV_JEOP, &l), 0);
    printf("     %d answered, %d dropped on reused connections, %d connections\n",
           atomic_load(&f.answered), atomic_load(&f.dropped), atomic_load(&f.connections));
    CHECK(atomic_load(&f.dropped) >= 3); /* the path was taken, and it healed each time */
    lr_lease_deinit(&l);
    close_mgr(m);
    fake_stop(&f);
}

TESTS(T(connections_closed_after_each_answer_are_reopened),
      T(a_request_dropped_on_a_reused_connection_is_sent_once_more))
