/* SPDX-License-Identifier: MIT */
/*
 * test_redis_unix.c - the Redis backend over a unix socket, against real
 * redis-server processes listening only on a socket in their temp dir
 * (--unixsocket PATH --port 0): acquire / renew / conflict / release through
 * both URI forms (redis:///PATH and unix:///PATH) with ?db= and a prefix,
 * AUTH over the socket, a socket path that does not exist (LR_EUNAVAIL, and
 * a store error naming the path), and the URI forms that are refused.
 */
#include <errno.h>
#include <stdlib.h>

#include <leasering.h>
#include "harness.h"
#include "recorder.h"
#include "redis_server.h"
#include "redis_slot.h"

static char uri[512];
static struct lr_manager *mgr(const char *u, uint32_t ttl)
{
    struct lr_manager_opts o = {.ttl_ms = ttl, .cbs = &rec_cbs, .max_leases = 64,
                                .margin_ms = 25, .store_error = rec_store_error};
    struct lr_manager *m = NULL;
    int rc = lr_manager_new(&m, loop, u, &o);
    if (rc < 0)
        fprintf(stderr, "lr_manager_new(%s): %s\n", u, lr_strerror(rc));
    return m;
}

static int create_rc(const char *u)
{
    struct lr_manager_opts o = {.ttl_ms = 1000, .cbs = &rec_cbs};
    struct lr_manager *m = NULL;
    int rc = lr_manager_new(&m, loop, u, &o);
    if (rc == 0)
        close_mgr(m);
    return rc;
}

static int cli_db(const struct redis_server *s, char *out, size_t cap, const char *db,
                  const char *a0, const char *a1, const char *a2)
{
    const char *args[] = {"-n", db, a0, a1, a2, NULL};
    return redis_cli(s, out, cap, args);
}

TEST(acquire_renew_release_over_the_socket)
{
    rec_setup();
    struct redis_server s;
    CHECK_OK(redis_server_start_unix(&s, NULL));
    snprintf(uri, sizeof(uri), "redis://%s?db=2&prefix=u:", s.sock);
    struct lr_manager *a = mgr(uri, 3000);
    snprintf(uri, sizeof(uri), "unix://%s?prefix=u:&db=2", s.sock);
    struct lr_manager *b = mgr(uri, 3000);
    CHECK(a && b);
    CHECK(!strcmp(lr_manager_backend(a), "redis"));
    CHECK(!strcmp(lr_manager_backend(b), "unix"));
    struct lr_lease la, lb;
    CHECK_OK(lr_lease_init(a, &la, "job-1", NULL));
    CHECK_OK(lr_lease_init(b, &lb, "job-1", NULL));
    CHECK_OK(lr_lease_acquire(&la, 2000));
    run_until(EV_ACQ, 3000);
    CHECK_EQ(lr_lease_state(&la), LR_LEASE_HELD);
    CHECK_EQ(lr_lease_fence(&la), 1);
    /* who holds it, read over the other socket URI form */
    CHECK_OK(rec_inspect(b, "job-1", 3000));
    CHECK_EQ(rec_insp.held, 1);
    CHECK(!strcmp(rec_insp.holder, lr_manager_identity(a)));
    CHECK_EQ(rec_insp.fence, 1);
    /* the keys are in database 2, under the prefix */
    char out[256];
    char fkey[64];
    fkey[lr__redis_fence_key(fkey, sizeof(fkey) - 1, "u:", 2, "job-1", 5)] = '\0';
    CHECK_OK(cli_db(&s, out, sizeof(out), "2", "GET", fkey, NULL));
    CHECK_EQ(atoll(out), 1);
    CHECK_OK(cli_db(&s, out, sizeof(out), "0", "EXISTS", "u:{job-1}", NULL));
    CHECK(!strcmp(out, "0"));
    /* renewals go through the socket: the automatic ones (every ~1 s) and one asked for */
    CHECK_OK(lr_lease_renew(&la));
    run_until(EV_RENEW, 3000);
    CHECK_OK(rec_first(EV_RENEW, &la)->status);
    uint64_t t0 = mono_ns();
    while (mono_ns() - t0 < 3500000000ull) /* longer than the TTL */
        run_until(0, 100);
    CHECK(rec_count(EV_RENEW, &la) >= 3);
    CHECK_EQ(rec_count(EV_LOST, &la), 0);
    CHECK_EQ(lr_lease_state(&la), LR_LEASE_HELD);
    /* the other form sees the conflict, then acquires after the release */
    CHECK_OK(lr_lease_try_acquire(&lb));
    run_until(EV_ACQFAIL, 3000);
    CHECK_ERR(rec_first(EV_ACQFAIL, &lb)->status, LR_ECONFLICT);
    CHECK_OK(lr_lease_release(&la));
    run_until(EV_REL, 3000);
    CHECK_OK(rec_first(EV_REL, &la)->status);
    CHECK_OK(lr_lease_try_acquire(&lb));
    run_until(EV_ACQ, 3000);
    CHECK_EQ(lr_lease_state(&lb), LR_LEASE_HELD);
    CHECK_EQ(lr_lease_fence(&lb), 2);
    CHECK_OK(lr_lease_release(&lb));
    run_until(EV_REL, 3000);
    lr_lease_deinit(&la);
    lr_lease_deinit(&lb);
    close_mgr(a);
    close_mgr(b);
    redis_server_destroy(&s);
}

TEST(auth_over_the_socket)
{
    rec_setup();
    struct redis_server s;
    const char *const extra[] = {"--requirepass", "sekret", NULL};
    CHECK_OK(redis_server_start_unix(&s, extra));
    snprintf(uri, sizeof(uri), "unix://:sekret@%s", s.sock);
    struct lr_manager *a = mgr(uri, 3000);
    snprintf(uri, sizeof(uri), "redis://:wrong@%s", s.sock);
    struct lr_manager *b = mgr(uri, 3000);
    CHECK(a && b);
    struct lr_lease la, lb;
    CHECK_OK(lr_lease_init(a, &la, "job-2", NULL));
    CHECK_OK(lr_lease_init(b, &lb, "job-3", NULL));
    CHECK_OK(lr_lease_acquire(&la, 2000));
    run_until(EV_ACQ, 3000);
    CHECK_EQ(lr_lease_fence(&la), 1);
    CHECK_OK(lr_lease_acquire(&lb, 1000));
    run_until(EV_ACQFAIL, 3000);
    CHECK_ERR(rec_first(EV_ACQFAIL, &lb)->status, LR_EAUTH);
    CHECK_OK(lr_lease_release(&la));
    run_until(EV_REL, 3000);
    lr_lease_deinit(&la);
    lr_lease_deinit(&lb);
    close_mgr(a);
    close_mgr(b);
    redis_server_destroy(&s);
}

TEST(missing_socket_is_unavailable_and_named)
{
    rec_setup();
    rec_errs[0] = '\0';
    const char *path = "/tmp/leasering-no-such-dir/redis.sock";
    snprintf(uri, sizeof(uri), "unix://%s", path);
    struct lr_manager *m = mgr(uri, 3000);
    CHECK(m);
    struct lr_lease l;
    CHECK_OK(lr_lease_init(m, &l, "job-4", NULL));
    CHECK_OK(lr_lease_acquire(&l, 500));
    run_until(EV_ACQFAIL, 3000);
    CHECK_ERR(rec_first(EV_ACQFAIL, &l)->status, LR_EUNAVAIL);
    char text[256];
    CHECK_ERR(lr_manager_last_error(m, text, sizeof(text)), -ENOENT);
    if (!strstr(text, path) || !strstr(text, "o such file"))
        fprintf(stderr, "last error: %s\n", text);
    CHECK(strstr(text, path) != NULL);
    CHECK(strstr(text, "o such file") != NULL);
    CHECK(strstr(rec_errs, path) != NULL);
    lr_lease_deinit(&l);
    close_mgr(m);
}

TEST(uri_forms_refused)
{
    rec_setup();
    CHECK_ERR(create_rc("unix://"), -EINVAL);                       /* no path */
    CHECK_ERR(create_rc("unix://localhost/tmp/r.sock"), -EINVAL);   /* a host */
    CHECK_ERR(create_rc("unix://:6379/tmp/r.sock"), -EINVAL);       /* a port */
    CHECK_ERR(create_rc("rediss:///tmp/r.sock"), -EINVAL);          /* no TLS on a socket */
    CHECK_ERR(create_rc("unix:///tmp/r.sock?db="), -EINVAL);
    CHECK_ERR(create_rc("unix:///tmp/r.sock?db=x"), -EINVAL);
    CHECK_ERR(create_rc("unix:///tmp/r.sock?db=123456"), -EINVAL);
    CHECK_ERR(create_rc("unix:///tmp/r.sock?timeout=5"), -EINVAL);  /* unknown parameter */
    CHECK_ERR(create_rc("unix://alice@/tmp/r.sock"), -EINVAL);      /* user, no password */
    CHECK_ERR(create_rc("unix:///tmp/r.sock?mode=other"), -EINVAL);
    CHECK_ERR(create_rc("redis://127.0.0.1/1?db=2"), -EINVAL);      /* the db twice */
    char longp[160];
    memset(longp, 'a', sizeof(longp) - 1);
    longp[sizeof(longp) - 1] = '\0';
    snprintf(uri, sizeof(uri), "unix:///tmp/%s", longp);
    CHECK_ERR(create_rc(uri), -ENAMETOOLONG);
    /* accepted: creation does not connect synchronously */
    CHECK_OK(create_rc("unix:///tmp/r.sock?db=3&prefix=p:&mode=session"));
    CHECK_OK(create_rc("redis:///tmp/r.sock"));
    CHECK_OK(create_rc("unix://alice:pw@/tmp/r.sock"));
    CHECK_OK(create_rc("chaos+unix:///tmp/r.sock?fail=0.1"));
    CHECK_OK(create_rc("redis://127.0.0.1:6390?db=4"));
}

TESTS(T(uri_forms_refused), T(missing_socket_is_unavailable_and_named),
      T(acquire_renew_release_over_the_socket), T(auth_over_the_socket))
