/* SPDX-License-Identifier: MIT */
/*
 * test_tls_host.c - a host program that uses wolfSSL itself, next to
 * leasering's TLS pool (issue 9).
 *
 * wolfSSL_SetAllocators is process-wide, and leasering installs its pool on
 * its first TLS context. Blocks the host's wolfSSL objects got from libc
 * before that are later freed or grown through the pool, which must hand
 * them back to the allocator they came from instead of reading a pool
 * header that is not there (an over-read ASan reports). The host here does
 * a real TLS session of its own (blocking socket, wolfSSL's own I/O) with
 * the same TLS redis-server, keeps it across a rediss:// manager's life,
 * talks over it again afterwards (records allocated before, freed and
 * reallocated after), and frees everything at the end.
 *
 * Its own executable: the order "host wolfSSL first, leasering second" is
 * only possible in a process where leasering has made no TLS context yet.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include <wolfssl/options.h>
#include <wolfssl/ssl.h>

#include <leasering.h>
#include "certs.h"
#include "harness.h"
#include "recorder.h"
#include "redis_server.h"

static struct certs certs;

/* The host's own session: a verified TLS connection and one PING over it. */
struct host_tls {
    WOLFSSL_CTX *ctx;
    WOLFSSL *ssl;
    int fd;
};

static int host_ping(struct host_tls *h)
{
    static const char ping[] = "*1\r\n$4\r\nPING\r\n";
    if (wolfSSL_write(h->ssl, ping, (int)sizeof(ping) - 1) != (int)sizeof(ping) - 1)
        return -EIO;
    char buf[64];
    int n = wolfSSL_read(h->ssl, buf, (int)sizeof(buf) - 1);
    if (n <= 0)
        return -EIO;
    buf[n] = '\0';
    return strcmp(buf, "+PONG\r\n") ? -EPROTO : 0;
}

static int host_open(struct host_tls *h, const struct redis_server *s)
{
    h->ctx = wolfSSL_CTX_new(wolfTLS_client_method());
    if (!h->ctx)
        return -ENOMEM;
    wolfSSL_CTX_set_verify(h->ctx, WOLFSSL_VERIFY_PEER, NULL);
    if (wolfSSL_CTX_load_verify_locations(h->ctx, certs.ca, NULL) != WOLFSSL_SUCCESS)
        return -EINVAL;
    h->ssl = wolfSSL_new(h->ctx);
    if (!h->ssl)
        return -ENOMEM;
    struct sockaddr_in sa;
    redis_server_addr(s, &sa);
    h->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (h->fd < 0 || connect(h->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
        return -errno;
    wolfSSL_set_fd(h->ssl, h->fd);
    if (wolfSSL_connect(h->ssl) != WOLFSSL_SUCCESS)
        return LR_ETLS;
    return host_ping(h);
}

static void host_close(struct host_tls *h)
{
    if (h->ssl) {
        wolfSSL_shutdown(h->ssl);
        wolfSSL_free(h->ssl);
    }
    if (h->ctx)
        wolfSSL_CTX_free(h->ctx);
    if (h->fd > 0)
        close(h->fd);
}

TEST(host_wolfssl_objects_made_before_leasering_are_freed_after)
{
    rec_setup();
    CHECK_OK(certs_make(&certs, NULL));
    struct redis_server s;
    CHECK_OK(redis_server_start_tls(&s, certs.server_cert, certs.server_key, certs.ca, NULL));

    /* the host first: its blocks come from libc */
    CHECK_EQ(wolfSSL_Init(), WOLFSSL_SUCCESS);
    struct host_tls h = {.fd = -1};
    CHECK_OK(host_open(&h, &s));

    /* then leasering: its first TLS context installs the pool */
    char uri[512];
    snprintf(uri, sizeof(uri), "rediss://localhost:%d?cacert=%s", s.port, certs.ca);
    struct lr_manager_opts o = {.ttl_ms = 900, .cbs = &rec_cbs, .request_timeout_ms = 300};
    struct lr_manager *m = NULL;
    CHECK_OK(lr_manager_new(&m, loop, uri, &o));
    struct lr_lease l;
    CHECK_OK(lr_lease_init(m, &l, "host-job", NULL));
    CHECK_OK(lr_lease_acquire(&l, 3000));
    run_until(EV_ACQ, 3000);
    CHECK_EQ(lr_lease_state(&l), LR_LEASE_HELD);
    run_until(0, 700);
    CHECK(lr_lease_stats(&l)->renewals >= 1);

    /* the host's session still works: its records are now allocated and
     * freed through the pool, next to blocks it got from libc */
    for (int i = 0; i < 20; i++)
        CHECK_OK(host_ping(&h));

    CHECK_OK(lr_lease_release(&l));
    run_until(EV_REL, 2000);
    lr_lease_deinit(&l);
    close_mgr(m);

    /* and after leasering is gone: the host frees what it made first */
    host_close(&h);
    wolfSSL_Cleanup();
    redis_server_destroy(&s);
    certs_destroy(&certs);
}

TESTS(T(host_wolfssl_objects_made_before_leasering_are_freed_after))
