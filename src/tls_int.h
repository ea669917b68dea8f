/* SPDX-License-Identifier: MIT */
/*
 * tls_int.h - TLS for connections (internal; net.c drives it).
 *
 * A context holds the verification settings (a WOLFSSL_CTX); a session
 * belongs to one connection and owns three fixed buffers: ciphertext
 * received but not yet consumed by wolfSSL, ciphertext to send, and a
 * plaintext read buffer. wolfSSL reads and writes only those buffers through
 * custom I/O callbacks (WANT_READ / WANT_WRITE); the ring does every syscall.
 * Layer: knows the loop and wolfSSL; knows nothing of RESP, HTTP or leases.
 */
#ifndef LR_TLS_INT_H
#define LR_TLS_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct lr__tls_ctx;
struct lr__tls;

struct lr__tls_opts {
    const char *ca_file;     /* PEM bundle; NULL: the system CA store */
    const char *cert_file;   /* client certificate (PEM), optional */
    const char *key_file;    /* its key (PEM), with cert_file */
    bool insecure_skip_verify; /* tests only: accept any certificate and name */
};

/* Returns 0, -EINVAL (unreadable CA/cert/key), -ENOMEM. Allocates. */
int lr__tls_ctx_new(struct lr__tls_ctx **out, const struct lr__tls_opts *o);
void lr__tls_ctx_free(struct lr__tls_ctx *ctx);

/* A session for one connection to @host (for SNI and the name check).
 * Returns 0, -EINVAL, -ENOMEM. Allocates the session and its buffers. */
int lr__tls_new(struct lr__tls **out, struct lr__tls_ctx *ctx, const char *host);
void lr__tls_free(struct lr__tls *t);

/* The host the next lr__tls_reset() names (SNI) and checks the certificate
 * against: for a connection that moves between hosts (Sentinel's list).
 * Returns 0, or -EINVAL (NULL or longer than 255 bytes: unchanged). */
int lr__tls_set_host(struct lr__tls *t, const char *host);

/* Start a fresh handshake on a new TCP connection (drops any old state).
 * Returns 0 or -ENOMEM. */
int lr__tls_reset(struct lr__tls *t);

/* Advance the handshake. Returns 1 when complete, 0 when it waits for the
 * peer, or LR_ETLS (verification or protocol failure, an alert from the
 * peer, or bytes that are not TLS). */
int lr__tls_handshake(struct lr__tls *t);

/* The peer accepted the connection but sent nothing back to our ClientHello
 * for @waited_ms: record that as the failure. Returns LR_ETLS. */
int lr__tls_no_answer(struct lr__tls *t, uint64_t waited_ms);

/* The last failure of this session as one line, e.g. "TLS handshake failed:
 * <wolfSSL's reason> (<code>)" (a static fallback if none was recorded). Valid
 * until the next lr__tls_reset(). */
const char *lr__tls_error_text(const struct lr__tls *t);

/* The host name the session was made for (SNI, name check). */
const char *lr__tls_host(const struct lr__tls *t);

/* Ciphertext arrived: append it. Returns 0, or -EMSGSIZE if the receive
 * buffer overflows (a peer sending records larger than TLS allows). */
int lr__tls_feed(struct lr__tls *t, const char *buf, size_t len);

/* Decrypt the next plaintext into the session's buffer: returns the bytes
 * (> 0) with *out set, 0 when more ciphertext is needed, LR_EEOF on
 * close_notify, or LR_ETLS. */
int lr__tls_read(struct lr__tls *t, const char **out);

/* Encrypt up to @len bytes of plaintext into the send buffer. Returns the
 * bytes consumed (0 when the send buffer has no room for a record), or
 * LR_ETLS. */
int lr__tls_write(struct lr__tls *t, const char *p, size_t len);

/* Queue close_notify (best effort). */
void lr__tls_shutdown(struct lr__tls *t);

/* The ciphertext waiting to be sent, and how much of it a send took. */
char *lr__tls_txbuf(struct lr__tls *t, size_t *len);
void lr__tls_sent(struct lr__tls *t, size_t n);

#endif
