/* SPDX-License-Identifier: MIT */
/*
 * leasering/tls.h - process-wide TLS settings.
 *
 * TLS (rediss://) runs on wolfSSL, driven by the loop: the ring does all
 * socket I/O, wolfSSL only encrypts and decrypts through leasering's buffers.
 * Peers are verified by default (VERIFY_PEER, TLS 1.2 minimum, host name
 * check, SNI), against the system CA bundle or a CA file given in the URI.
 *
 * Failures: a handshake that fails -- a certificate that does not verify, a
 * protocol error, an alert from the peer, bytes that are not TLS, or a peer
 * that accepts the connection but never answers the ClientHello within the
 * connect timeout (the larger of 1 s and the request timeout) on a
 * connection that has not completed a handshake before (a plain-text server
 * waits silently for a request) -- is LR_ETLS, a definite answer: requests
 * waiting for that connection complete with LR_ETLS, acquisitions give up at
 * once, and later requests fail the same way, without waiting out their
 * deadline, until a connection gets through again (renewals keep retrying
 * inside validity). The cause, in wolfSSL's words, goes to
 * lr_manager_opts.store_error and lr_manager_last_error(), e.g. "rediss
 * localhost:6390: TLS handshake failed: certificate verify failed (-188)".
 * A refused connection, or one reset or closed before the peer sent
 * anything, is a transport failure and is retried. A server that once
 * completed a handshake and then stalls in a later one is a timeout
 * (retried), not LR_ETLS.
 *
 * Allocation: Debian's wolfSSL allocates a buffer for every record it reads
 * or writes. So that TLS connections allocate nothing in the steady state,
 * leasering routes wolfSSL's allocator (wolfSSL_SetAllocators, which is
 * process-wide) to a recycling pool of size classes the first time it
 * creates a TLS context. Pool blocks live in 1 MiB slabs taken through
 * leasering's allocator (lr_set_allocator) and are kept for reuse, never
 * returned. A program that uses wolfSSL itself may do so before and after
 * that moment: a block the pool did not allocate (one the program's wolfSSL
 * objects got earlier, or one larger than 256 KiB) is recognised by its
 * address and freed or resized by the allocator wolfSSL had before the pool
 * (libc, or what the program set with wolfSSL_SetAllocators first); the
 * program must not replace wolfSSL's allocator after leasering's first TLS
 * context. A program that wants its own allocator for every block calls
 * lr_tls_use_pool(0) before leasering makes any TLS connection.
 */
#ifndef LEASERING_TLS_H
#define LEASERING_TLS_H

#include <leasering/common.h>

#ifdef __cplusplus
extern "C" {
#endif

/*
 * lr_tls_use_pool - whether leasering installs its recycling pool as
 * wolfSSL's allocator (default 1).
 * Returns: 0, or -EBUSY if the pool is already installed (it stays).
 * Allocates: never.  Context: any thread, before the first TLS connection.
 */
LR_API int lr_tls_use_pool(int on);

#ifdef __cplusplus
}
#endif
#endif
