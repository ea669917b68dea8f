/* SPDX-License-Identifier: MIT */
/*
 * leasering/backend.h - the lease stores a manager can use, named by URI.
 *
 *   mem://[NAME]
 *       In-process store. Managers in one process that name the same store
 *       share it (leases, fencing counters, metadata), so they can compete
 *       for names exactly as separate processes do against a server. For
 *       tests, and for programs that want leases without a server.
 *
 *   redis://[USER[:PASSWORD]@]HOST[:PORT][/DB][?prefix=PREFIX]
 *       A Redis server (default port 6379, database 0, prefix "lr:").
 *       USER and PASSWORD are percent-decoded; with PASSWORD alone the
 *       connection sends AUTH PASSWORD, with both AUTH USER PASSWORD (an ACL
 *       user). A lease named N is the hash "PREFIX{N}" with fields owner
 *       (the holder's 32-hex-digit token), fence, and the lease's metadata,
 *       expiring by PEXPIRE; its fencing counter is "PREFIX{N}:fence". The
 *       host is resolved once, when the manager is created.
 *
 *   rediss://[USER[:PASSWORD]@]HOST[:PORT][/DB][?prefix=P][&cacert=FILE]
 *            [&cert=FILE&key=FILE][&insecure_skip_verify=yes]
 *       The same over TLS (see tls.h): the server certificate is verified
 *       against FILE (PEM) or the system CA store, with the host name; cert
 *       and key add a client certificate. insecure_skip_verify=yes disables
 *       verification, for tests only. Certificate or handshake failures are
 *       LR_ETLS, and make acquisitions fail at once rather than retry (see
 *       tls.h for what counts); lr_manager_last_error() says why. Refused
 *       connections and resets before the handshake are retried as usual.
 *
 *   azblob://ACCOUNT:KEY@HOST[:PORT]/CONTAINER[?tls=yes|no][&cacert=FILE]
 *            [&path_style=yes|no][&insecure_skip_verify=yes]
 *   azblob:///CONTAINER      (with AZURE_STORAGE_CONNECTION_STRING)
 *       Azure Blob Storage (or Azurite): a lease named N is a native lease
 *       on blob CONTAINER/N, created when missing; its fencing token is the
 *       blob metadata "fence", incremented under each new lease with
 *       If-Match; an acquire that fails after taking the lease (metadata
 *       refused, the ETag moving under it, the connection lost) releases it
 *       before acquire_failed, so another holder need not wait for the lease
 *       to expire. KEY is the base64 account key, percent-encoded; Shared Key
 *       signing, or a SAS from the connection string. TLS defaults to on;
 *       path-style URLs (Azurite) default to on for localhost and addresses.
 *       The TTL must be a whole number of seconds from 15 to 60 (-ERANGE
 *       otherwise). One request is in flight per pooled connection
 *       (connections option), since Azure servers may run pipelined
 *       requests concurrently.
 *
 * Unknown schemes give -EPROTONOSUPPORT; unknown query parameters and
 * malformed URIs give -EINVAL (they are never ignored).
 */
#ifndef LEASERING_BACKEND_H
#define LEASERING_BACKEND_H

#include <leasering/common.h>

#ifdef __cplusplus
extern "C" {
#endif

struct lr_manager;

/* The scheme of the store @m uses ("mem", "redis"). */
LR_API const char *lr_manager_backend(const struct lr_manager *m);

#ifdef __cplusplus
}
#endif
#endif
