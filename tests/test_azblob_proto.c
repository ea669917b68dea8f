/* SPDX-License-Identifier: MIT */
/*
 * test_azblob_proto.c - the Azure Blob backend against a fake HTTP server,
 * for what Azurite will not do on demand: close a keep-alive connection
 * after every answer (the backend must reopen transparently), and drop a
 * request that arrives on a reused connection without answering it (the
 * backend must send that idempotent request once more on a fresh
 * connection, and only once). The fake answers Lease Blob requests with
 * canned success responses. And an acquire that fails after its lease step
 * -- the metadata write meets 412 after 412, or the HEAD goes unanswered --
 * must give the lease back (a release with the lease id it proposed) before
 * it reports the failure. Renewals default to a 100 ms grid here (each is
 * its own request, and the renewals of a grid point share a send).
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
#include "lease_int.h"
#include "recorder.h"

enum mode { CLOSE_AFTER_ANSWER, DROP_ON_REUSE, METADATA_412, HEAD_UNANSWERED, SLOW };

struct fake {
    struct tcp_peer peer;
    enum mode mode;
    atomic_int answered;
    atomic_int dropped;
    atomic_int connections;
    atomic_int metadata_writes;
    atomic_int releases;
    atomic_int max_queued; /* requests waiting in the connection at once (SLOW) */
    char proposed_id[40]; /* of the last acquire */
    char released_id[40]; /* of the last release */
};

/* Copy the value of header @name in request head @req into @out[40]. */
static void header_value(const char *req, const char *name, char *out)
{
    const char *p = strstr(req, name);
    size_t n = 0;
    if (p)
        for (p += strlen(name); n < 39 && p[n] && p[n] != '\r'; n++)
            out[n] = p[n];
    out[n] = '\0';
}

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
            int queued = 0; /* whole request heads sent and not yet answered */
            for (char *q = buf; (q = memmem(q, have - (size_t)(q - buf), "\r\n\r\n", 4)); q += 4)
                queued++;
            if (queued > atomic_load(&f->max_queued))
                atomic_store(&f->max_queued, queued);
            if (f->mode == SLOW)
                usleep(5000); /* let the client's pipeline fill */
            size_t len = (size_t)(end + 4 - buf); /* requests here have no body */
            buf[len - 1] = '\0';
            bool drop = served > 0 && f->mode == DROP_ON_REUSE;
            if (drop) { /* a reused connection: close without answering */
                atomic_fetch_add(&f->dropped, 1);
                break;
            }
            const char *a = answer_for(buf);
            if (strstr(buf, "x-ms-lease-action: acquire"))
                header_value(buf, "x-ms-proposed-lease-id: ", f->proposed_id);
            if (strstr(buf, "x-ms-lease-action: release")) {
                header_value(buf, "x-ms-lease-id: ", f->released_id);
                atomic_fetch_add(&f->releases, 1);
            }
            if (strstr(buf, "comp=metadata")) {
                atomic_fetch_add(&f->metadata_writes, 1);
                if (f->mode == METADATA_412)
                    a = "HTTP/1.1 412 The condition specified using HTTP conditional header(s) "
                        "is not met.\r\nx-ms-error-code: ConditionNotMet\r\n"
                        "Content-Length: 0\r\n\r\n";
            }
            if (f->mode == HEAD_UNANSWERED && !strncmp(buf, "HEAD ", 5))
                a = ""; /* the client times out and closes */
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

/* The fake's release count when acquire_failed ran. */
static struct fake *hooked;
static int releases_at_failure = -1;

static void failure_hook(const struct rec *r)
{
    if (r->ev == EV_ACQFAIL)
        releases_at_failure = atomic_load(&hooked->releases);
}

/* A try-acquire against @mode: its lease step succeeds, a later step fails.
 * Expect acquire_failed with @want, and the lease released before it. */
static void failed_acquire_gives_the_lease_back(enum mode mode, int want)
{
    rec_setup();
    struct fake f;
    CHECK_OK(fake_start(&f, mode));
    hooked = &f;
    releases_at_failure = -1;
    rec_hook = failure_hook;
    struct lr_manager *m = mgr(&f);
    CHECK(m);
    struct lr_lease l;
    CHECK_OK(lr_lease_init(m, &l, "job", NULL));
    CHECK_OK(lr_lease_try_acquire(&l));
    run_until(EV_ACQFAIL, 5000);
    rec_hook = NULL;
    CHECK(rec_first(EV_ACQFAIL, &l) != NULL);
    CHECK_ERR(rec_first(EV_ACQFAIL, &l)->status, want);
    printf("     %d metadata writes, %d release(s) by then, lease id %s released\n",
           atomic_load(&f.metadata_writes), releases_at_failure, f.released_id);
    CHECK_EQ(releases_at_failure, 1);
    CHECK(f.proposed_id[0] && !strcmp(f.proposed_id, f.released_id));
    lr_lease_deinit(&l);
    close_mgr(m);
    fake_stop(&f);
}

TEST(metadata_412_after_412_releases_the_lease_before_failing)
{
    failed_acquire_gives_the_lease_back(METADATA_412, LR_EBADREPLY);
}

TEST(unanswered_head_releases_the_lease_before_failing)
{
    failed_acquire_gives_the_lease_back(HEAD_UNANSWERED, -ETIMEDOUT);
}

TEST(renewals_default_to_a_100ms_grid)
{
    rec_setup();
    struct fake f;
    CHECK_OK(fake_start(&f, CLOSE_AFTER_ANSWER));
    struct lr_manager *m = mgr(&f);
    CHECK(m);
    CHECK_EQ(m->o.renew_coalesce_ms, 100u); /* the core's default is 20 */
    close_mgr(m);
    char uri[256];
    snprintf(uri, sizeof(uri), "azblob://devstoreaccount1:%s@127.0.0.1:%d/fake?tls=no", KEY,
             ntohs(f.peer.addr.sin_port));
    struct lr_manager_opts o = {.ttl_ms = 15000, .cbs = &rec_cbs, .renew_coalesce_ms = 20};
    CHECK_OK(lr_manager_new(&m, loop, uri, &o));
    CHECK_EQ(m->o.renew_coalesce_ms, 20u); /* a grid the user sets stays */
    close_mgr(m);
    fake_stop(&f);
}

/* On one connection: renewals fill the pipeline, acquisitions (four steps
 * each, in bursts) hold two slots at most, so they never queue more than
 * two requests at the store. */
TEST(only_renewals_fill_the_pipeline)
{
    rec_setup();
    struct fake f;
    CHECK_OK(fake_start(&f, SLOW));
    struct lr_manager *m = mgr(&f);
    CHECK(m);
    static struct lr_lease ls[12];
    for (int i = 0; i < 12; i++) {
        char name[16];
        snprintf(name, sizeof(name), "job-%d", i);
        CHECK_OK(lr_lease_init(m, &ls[i], name, NULL));
        CHECK_OK(lr_lease_acquire(&ls[i], 5000));
    }
    while (rec_count(EV_ACQ, NULL) < 12 && rec_count(EV_ACQFAIL, NULL) == 0)
        run_until(EV_ACQ, 3000);
    CHECK_EQ(rec_count(EV_ACQ, NULL), 12);
    int acq_queued = atomic_load(&f.max_queued);
    atomic_store(&f.max_queued, 0);
    for (int i = 0; i < 12; i++)
        lr_lease_renew(&ls[i]);
    while (rec_count(EV_RENEW, NULL) < 12 && rec_count(EV_JEOP, NULL) == 0)
        run_until(EV_RENEW, 3000);
    CHECK_EQ(rec_count(EV_RENEW, NULL), 12);
    int renew_queued = atomic_load(&f.max_queued);
    printf("     at most %d acquisition and %d renewal requests queued at once\n", acq_queued,
           renew_queued);
    CHECK(acq_queued <= 2);
    CHECK(renew_queued > 2); /* pipelined */
    for (int i = 0; i < 12; i++)
        lr_lease_deinit(&ls[i]);
    close_mgr(m);
    fake_stop(&f);
}

TESTS(T(connections_closed_after_each_answer_are_reopened),
      T(a_request_dropped_on_a_reused_connection_is_sent_once_more),
      T(metadata_412_after_412_releases_the_lease_before_failing),
      T(unanswered_head_releases_the_lease_before_failing), T(renewals_default_to_a_100ms_grid),
      T(only_renewals_fill_the_pipeline))
