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
 *       LR_ETLS, and make acquisitions fail at once rather than retry.
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
