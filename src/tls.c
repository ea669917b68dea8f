/* SPDX-License-Identifier: MIT */
/*
 * tls.c - wolfSSL over leasering's buffers (see tls_int.h), and the
 * recycling pool wolfSSL allocates from (see leasering/tls.h).
 *
 * Safe defaults, set here because Debian's wolfSSL build turns peer
 * verification off and allows SSLv3 on every new context
 * (OPENSSL_COMPATIBLE_DEFAULTS; TECH-NOTES b): VERIFY_PEER, TLS 1.2 minimum,
 * the host name checked against the certificate, SNI for names.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>

#include <wolfssl/options.h>
#include <wolfssl/ssl.h>
#include <wolfssl/wolfcrypt/memory.h>

#include <leasering/error.h>
#include <leasering/tls.h>
#include "alloc_int.h"
#include "tls_int.h"

#define RECORD_MAX (16384 + 2048) /* a TLS record with any expansion */
#define RX_CAP (2 * RECORD_MAX)
#define TX_CAP (4 * RECORD_MAX)
#define CLEAR_CAP 16384

/* ------------------------------------------------------------- the pool */

/* Size classes 2^6 .. 2^18 bytes. Each block carries a 16-byte header with
 * its class, so free and realloc know where it belongs. Freed blocks are
 * kept for reuse: after the first records of a connection, wolfSSL's
 * per-record malloc/free pairs are served from these lists and libc is not
 * called.
 *
 * Ownership. wolfSSL_SetAllocators is process-wide, so the pool is also
 * handed blocks it never allocated: whatever the host program's own wolfSSL
 * objects got before the pool was installed (from libc, or from allocators
 * the host set). Such a block has no pool header, and reading one before it
 * is itself the over-read -- a magic number or canary in the header cannot
 * tell "ours" from "foreign" without first reading memory that is not ours.
 * So ownership is decided by address alone: pool blocks are carved out of
 * slabs (POOL_SLAB bytes each, from lr__malloc, never freed), and the slab
 * table below, sorted by address, says whether a pointer lies in one. A
 * pointer outside every slab goes back to the allocator wolfSSL had before
 * the pool (libc unless the host set one), untouched. Blocks larger than the
 * biggest class, and every block once the table is full, are allocated
 * there too, so the same address rule sends them home when freed. */
#define POOL_MIN_SHIFT 6
#define POOL_CLASSES 13
#define POOL_SLAB ((size_t)1 << 20)
#define POOL_SLABS 256 /* 256 MiB of pooled blocks at most */

struct pool_hdr {
    struct pool_hdr *next; /* while free */
    uint32_t cls;
    uint32_t size;         /* requested bytes */
};

static pthread_mutex_t pool_lock = PTHREAD_MUTEX_INITIALIZER;
static struct pool_hdr *pool_free[POOL_CLASSES];
static char *slab_base[POOL_SLABS]; /* ascending */
static unsigned slab_count;
static char *carve_at, *carve_end;   /* the unused tail of the newest slab */
static int pool_wanted = 1;
static int pool_installed;
/* wolfSSL's allocator before ours: NULL members mean libc. */
static wolfSSL_Malloc_cb prev_malloc;
static wolfSSL_Free_cb prev_free;
static wolfSSL_Realloc_cb prev_realloc;

static unsigned class_of(size_t n)
{
    unsigned c = 0;
    while (c < POOL_CLASSES && ((size_t)1 << (c + POOL_MIN_SHIFT)) < n)
        c++;
    return c; /* == POOL_CLASSES: too big for the pool */
}

static void *foreign_malloc(size_t n)
{
    return prev_malloc ? prev_malloc(n) : malloc(n);
}

/* Under pool_lock. Compares addresses only: never touches *p. */
static bool pool_owns(const void *p)
{
    uintptr_t a = (uintptr_t)p;
    unsigned lo = 0, hi = slab_count;
    while (lo < hi) {
        unsigned mid = (lo + hi) / 2;
        uintptr_t base = (uintptr_t)slab_base[mid];
        if (a < base)
            hi = mid;
        else if (a >= base + POOL_SLAB)
            lo = mid + 1;
        else
            return true;
    }
    return false;
}

/* Under pool_lock: a fresh block of @bytes from the slabs, or NULL when the
 * table is full or lr__malloc fails. The tail of a slab too short for the
 * block is abandoned (less than one block of the largest class). */
static struct pool_hdr *carve(size_t bytes)
{
    if ((size_t)(carve_end - carve_at) < bytes) {
        if (slab_count == POOL_SLABS)
            return NULL;
        char *s = lr__malloc(POOL_SLAB);
        if (!s)
            return NULL;
        unsigned i = slab_count++;
        for (; i && slab_base[i - 1] > s; i--)
            slab_base[i] = slab_base[i - 1];
        slab_base[i] = s;
        carve_at = s;
        carve_end = s + POOL_SLAB;
    }
    struct pool_hdr *h = (struct pool_hdr *)carve_at;
    carve_at += bytes;
    return h;
}

static void *pool_malloc(size_t n)
{
    unsigned c = class_of(n);
    if (c == POOL_CLASSES)
        return foreign_malloc(n);
    pthread_mutex_lock(&pool_lock);
    struct pool_hdr *h = pool_free[c];
    if (h)
        pool_free[c] = h->next;
    else
        h = carve(sizeof(*h) + ((size_t)1 << (c + POOL_MIN_SHIFT)));
    pthread_mutex_unlock(&pool_lock);
    if (!h)
        return foreign_malloc(n);
    h->cls = c;
    h->size = (uint32_t)n;
    return h + 1;
}

static void pool_free_block(void *p)
{
    if (!p)
        return;
    pthread_mutex_lock(&pool_lock);
    bool ours = pool_owns(p);
    if (ours) {
        struct pool_hdr *h = (struct pool_hdr *)p - 1;
        h->next = pool_free[h->cls];
        pool_free[h->cls] = h;
    }
    pthread_mutex_unlock(&pool_lock);
    if (!ours) {
        if (prev_free)
            prev_free(p);
        else
            free(p);
    }
}

static void *pool_realloc(void *p, size_t n)
{
    if (!p)
        return pool_malloc(n);
    pthread_mutex_lock(&pool_lock);
    bool ours = pool_owns(p);
    pthread_mutex_unlock(&pool_lock);
    if (!ours) /* it stays where it came from, grown or not */
        return prev_realloc ? prev_realloc(p, n) : realloc(p, n);
    struct pool_hdr *h = (struct pool_hdr *)p - 1;
    if (n <= ((size_t)1 << (h->cls + POOL_MIN_SHIFT))) {
        h->size = (uint32_t)n;
        return p;
    }
    void *q = pool_malloc(n);
    if (!q)
        return NULL;
    memcpy(q, p, h->size < n ? h->size : n);
    pool_free_block(p);
    return q;
}

int lr_tls_use_pool(int on)
{
    pthread_mutex_lock(&pool_lock);
    int rc = pool_installed ? -EBUSY : 0;
    if (!rc)
        pool_wanted = on != 0;
    pthread_mutex_unlock(&pool_lock);
    return rc;
}

static pthread_once_t init_once = PTHREAD_ONCE_INIT;
static int init_rc;

static void global_init(void)
{
    if (pool_wanted && wolfSSL_GetAllocators(&prev_malloc, &prev_free, &prev_realloc) == 0 &&
        wolfSSL_SetAllocators(pool_malloc, pool_free_block, pool_realloc) == 0)
        pool_installed = 1;
    init_rc = wolfSSL_Init() == WOLFSSL_SUCCESS ? 0 : -ENOMEM;
}

/* ------------------------------------------------------------- contexts */

struct lr__tls_ctx {
    WOLFSSL_CTX *ctx;
    bool verify;
};

struct lr__tls {
    struct lr__tls_ctx *ctx;
    WOLFSSL *ssl;
    bool is_name; /* host is a DNS name (SNI), not an address literal */
    size_t rx_len, rx_off, tx_len;
    char *rx;     /* ciphertext received, from rx_off to rx_len unread */
    char *tx;     /* ciphertext to send */
    char *clear;  /* the last plaintext read */
    char host[256];
    char why[160]; /* the last failure, for the owner's error report */
};

static int io_recv(WOLFSSL *ssl, char *buf, int sz, void *arg)
{
    (void)ssl;
    struct lr__tls *t = arg;
    size_t have = t->rx_len - t->rx_off;
    if (!have)
        return WOLFSSL_CBIO_ERR_WANT_READ; /* the ring will bring more */
    size_t n = (size_t)sz < have ? (size_t)sz : have;
    memcpy(buf, t->rx + t->rx_off, n);
    t->rx_off += n;
    if (t->rx_off == t->rx_len)
        t->rx_off = t->rx_len = 0;
    return (int)n;
}

static int io_send(WOLFSSL *ssl, char *buf, int sz, void *arg)
{
    (void)ssl;
    struct lr__tls *t = arg;
    size_t room = TX_CAP - t->tx_len;
    if (!room)
        return WOLFSSL_CBIO_ERR_WANT_WRITE;
    size_t n = (size_t)sz < room ? (size_t)sz : room;
    memcpy(t->tx + t->tx_len, buf, n);
    t->tx_len += n;
    return (int)n;
}

int lr__tls_ctx_new(struct lr__tls_ctx **out, const struct lr__tls_opts *o)
{
    pthread_once(&init_once, global_init);
    if (init_rc < 0)
        return init_rc;
    struct lr__tls_ctx *c = lr__calloc(1, sizeof(*c));
    if (!c)
        return -ENOMEM;
    c->ctx = wolfSSL_CTX_new(wolfTLS_client_method());
    if (!c->ctx) {
        lr__free(c);
        return -ENOMEM;
    }
    int rc = 0;
    c->verify = !o->insecure_skip_verify;
    wolfSSL_CTX_SetMinVersion(c->ctx, WOLFSSL_TLSV1_2);
    wolfSSL_CTX_set_verify(c->ctx, c->verify ? WOLFSSL_VERIFY_PEER : WOLFSSL_VERIFY_NONE, NULL);
    if (c->verify) {
        int ok = o->ca_file ? wolfSSL_CTX_load_verify_locations(c->ctx, o->ca_file, NULL)
                            : wolfSSL_CTX_load_system_CA_certs(c->ctx);
        if (ok != WOLFSSL_SUCCESS)
            rc = -EINVAL;
    }
    if (!rc && o->cert_file &&
        (wolfSSL_CTX_use_certificate_chain_file(c->ctx, o->cert_file) != WOLFSSL_SUCCESS ||
         !o->key_file ||
         wolfSSL_CTX_use_PrivateKey_file(c->ctx, o->key_file, WOLFSSL_FILETYPE_PEM) !=
             WOLFSSL_SUCCESS))
        rc = -EINVAL;
    if (rc) {
        lr__tls_ctx_free(c);
        return rc;
    }
    wolfSSL_CTX_SetIORecv(c->ctx, io_recv);
    wolfSSL_CTX_SetIOSend(c->ctx, io_send);
    *out = c;
    return 0;
}

void lr__tls_ctx_free(struct lr__tls_ctx *c)
{
    if (!c)
        return;
    wolfSSL_CTX_free(c->ctx);
    lr__free(c);
}

int lr__tls_new(struct lr__tls **out, struct lr__tls_ctx *ctx, const char *host)
{
    if (!host || strlen(host) >= sizeof(((struct lr__tls *)0)->host))
        return -EINVAL;
    struct lr__tls *t = lr__calloc(1, sizeof(*t));
    if (!t)
        return -ENOMEM;
    t->rx = lr__malloc(RX_CAP);
    t->tx = lr__malloc(TX_CAP);
    t->clear = lr__malloc(CLEAR_CAP);
    if (!t->rx || !t->tx || !t->clear) {
        lr__tls_free(t);
        return -ENOMEM;
    }
    t->ctx = ctx;
    lr__tls_set_host(t, host);
    *out = t;
    return 0;
}

int lr__tls_set_host(struct lr__tls *t, const char *host)
{
    if (!host || strlen(host) >= sizeof(t->host))
        return -EINVAL;
    strcpy(t->host, host);
    unsigned char addr[16];
    t->is_name = inet_pton(AF_INET, host, addr) != 1 && inet_pton(AF_INET6, host, addr) != 1;
    return 0;
}

void lr__tls_free(struct lr__tls *t)
{
    if (!t)
        return;
    if (t->ssl)
        wolfSSL_free(t->ssl);
    lr__free(t->rx);
    lr__free(t->tx);
    lr__free(t->clear);
    lr__free(t);
}

int lr__tls_reset(struct lr__tls *t)
{
    if (t->ssl)
        wolfSSL_free(t->ssl);
    t->rx_len = t->rx_off = t->tx_len = 0;
    t->why[0] = '\0';
    t->ssl = wolfSSL_new(t->ctx->ctx);
    if (!t->ssl)
        return -ENOMEM;
    wolfSSL_SetIOReadCtx(t->ssl, t);
    wolfSSL_SetIOWriteCtx(t->ssl, t);
    if (t->is_name)
        wolfSSL_UseSNI(t->ssl, WOLFSSL_SNI_HOST_NAME, t->host, (unsigned short)strlen(t->host));
    if (t->ctx->verify && wolfSSL_check_domain_name(t->ssl, t->host) != WOLFSSL_SUCCESS)
        return -ENOMEM;
    return 0;
}

static bool wants_io(WOLFSSL *ssl, int ret)
{
    int e = wolfSSL_get_error(ssl, ret);
    return e == WOLFSSL_ERROR_WANT_READ || e == WOLFSSL_ERROR_WANT_WRITE;
}

/* Record why @what failed in t->why, from wolfSSL's own words (static
 * strings: nothing is allocated), and the alert the peer sent if any. */
static int tls_failed(struct lr__tls *t, const char *what, int ret)
{
    int e = wolfSSL_get_error(t->ssl, ret);
    const char *reason = wolfSSL_ERR_reason_error_string((unsigned long)e);
    WOLFSSL_ALERT_HISTORY ah;
    memset(&ah, 0, sizeof(ah));
    const char *alert = NULL;
    if (wolfSSL_get_alert_history(t->ssl, &ah) == WOLFSSL_SUCCESS && ah.last_rx.code > 0)
        alert = wolfSSL_alert_desc_string_long(ah.last_rx.code);
    snprintf(t->why, sizeof(t->why), "%s: %s (%d)%s%s", what, reason ? reason : "error", e,
             alert ? ", peer alert: " : "", alert ? alert : "");
    return LR_ETLS;
}

int lr__tls_handshake(struct lr__tls *t)
{
    int ret = wolfSSL_connect(t->ssl);
    if (ret == WOLFSSL_SUCCESS)
        return 1;
    return wants_io(t->ssl, ret) ? 0 : tls_failed(t, "TLS handshake failed", ret);
}

int lr__tls_no_answer(struct lr__tls *t, uint64_t waited_ms)
{
    snprintf(t->why, sizeof(t->why),
             "TLS handshake failed: no answer to the ClientHello in %llu ms (not a TLS server?)",
             (unsigned long long)waited_ms);
    return LR_ETLS;
}

const char *lr__tls_host(const struct lr__tls *t)
{
    return t->host;
}

const char *lr__tls_error_text(const struct lr__tls *t)
{
    return t->why[0] ? t->why : "TLS failed";
}

int lr__tls_feed(struct lr__tls *t, const char *buf, size_t len)
{
    if (t->rx_off && t->rx_len + len > RX_CAP) { /* compact */
        memmove(t->rx, t->rx + t->rx_off, t->rx_len - t->rx_off);
        t->rx_len -= t->rx_off;
        t->rx_off = 0;
    }
    if (t->rx_len + len > RX_CAP)
        return -EMSGSIZE;
    memcpy(t->rx + t->rx_len, buf, len);
    t->rx_len += len;
    return 0;
}

int lr__tls_read(struct lr__tls *t, const char **out)
{
    int n = wolfSSL_read(t->ssl, t->clear, CLEAR_CAP);
    if (n > 0) {
        *out = t->clear;
        return n;
    }
    int e = wolfSSL_get_error(t->ssl, n);
    if (e == WOLFSSL_ERROR_WANT_READ || e == WOLFSSL_ERROR_WANT_WRITE)
        return 0;
    if (e == WOLFSSL_ERROR_ZERO_RETURN)
        return LR_EEOF; /* close_notify */
    return tls_failed(t, "TLS record error", n);
}

int lr__tls_write(struct lr__tls *t, const char *p, size_t len)
{
    /* Only write when a whole record fits: then wolfSSL never answers
     * WANT_WRITE, which would oblige us to repeat the call with the same
     * arguments (OpenSSL semantics). */
    if (TX_CAP - t->tx_len < RECORD_MAX)
        return 0;
    int n = wolfSSL_write(t->ssl, p, (int)(len < 16384 ? len : 16384));
    if (n > 0)
        return n;
    return wants_io(t->ssl, n) ? 0 : tls_failed(t, "TLS write failed", n);
}

void lr__tls_shutdown(struct lr__tls *t)
{
    if (t->ssl)
        (void)wolfSSL_shutdown(t->ssl);
}

char *lr__tls_txbuf(struct lr__tls *t, size_t *len)
{
    *len = t->tx_len;
    return t->tx;
}

void lr__tls_sent(struct lr__tls *t, size_t n)
{
    if (n > t->tx_len)
        n = t->tx_len;
    memmove(t->tx, t->tx + n, t->tx_len - n);
    t->tx_len -= n;
}
