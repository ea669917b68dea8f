/* SPDX-License-Identifier: MIT */
/*
 * resolve_int.h - host name lookups that never block the loop (internal;
 * backends build on it).
 *
 * getaddrinfo() may wait seconds on DNS, so a lookup runs on a helper thread
 * (one per resolver, started at the first lookup that needs it, the way
 * libuv runs getaddrinfo on its pool) and the answer comes back through an
 * eventfd the loop watches with an lr_poll. A numeric address (127.0.0.1,
 * ::1) needs no DNS: it is converted at once, on the caller's thread
 * (AI_NUMERICHOST). Each lookup asks the system again, so a name whose
 * address changes (DNS-based failover) is followed.
 *
 * Lifetime: the resolver is the caller's (embedded). Close it and wait for
 * the close callback before freeing it. A lookup still running on the helper
 * thread at close is left to finish there: the thread owns the state it
 * shares with the loop jointly with the resolver, and whichever lets go last
 * frees it, so nothing the thread touches is freed under it.
 * Layer: the loop's; knows no protocol, no backend, no lease.
 */
#ifndef LR_RESOLVE_INT_H
#define LR_RESOLVE_INT_H

#include <netdb.h>
#include <sys/socket.h>

#include <leasering/poll.h>
#include "loop_int.h"

struct lr__resolver;
struct lr__resolve_shared;

/* A lookup finished: @status 0 and the first address in @sa/@len, or a
 * negative code (-EHOSTUNREACH the name did not resolve, -ENOMEM, or a
 * system error) with lr__resolver_why() saying why. */
typedef void (*lr__resolve_cb)(struct lr__resolver *r, int status, const struct sockaddr *sa,
                               socklen_t len);

struct lr__resolver {
    void *data; /* the owner's */
    struct lr_loop *loop;
    lr__resolve_cb cb;
    void (*close_cb)(struct lr__resolver *r);
    struct lr__resolve_shared *sh; /* with the helper thread; NULL once let go */
    struct lr_poll poll;           /* the eventfd; initialised at the first slow lookup */
    struct lr__task close_task;    /* close_cb when the poll never started */
    bool poll_inited;
    bool busy;                     /* a lookup runs on the helper thread */
    bool closing;
    char why[96];                  /* the last failure, for error texts */
};

/* Prepare @r; allocates the shared state (the thread starts later).
 * Returns: 0, -ENOMEM, or eventfd()'s error.  Context: the loop's thread. */
int lr__resolver_init(struct lr__resolver *r, struct lr_loop *loop, lr__resolve_cb cb);

/*
 * Look up @host (empty: 127.0.0.1) and TCP port @port. A numeric host is
 * answered at once: the address goes to @out/@outlen and 1 is returned (no
 * callback). Otherwise the lookup starts on the helper thread, 0 is
 * returned, and the callback follows from a later loop phase.
 * Returns: 1, 0; -EBUSY a lookup is running already; -ENAMETOOLONG; a
 * numeric host that does not convert gives -EHOSTUNREACH (lr__resolver_why()
 * says why); pthread_create's error.  Context: the loop's thread.
 */
int lr__resolver_start(struct lr__resolver *r, const char *host, unsigned port,
                       struct sockaddr_storage *out, socklen_t *outlen);

/* A numeric IPv4 or IPv6 address (@len bytes at @ip, no brackets) with
 * @port into @out, without any lookup (an address a server announced).
 * Returns 0, or -EINVAL when @ip is no numeric address (a host name, ""). */
int lr__addr_numeric(const char *ip, size_t len, uint16_t port, struct sockaddr_storage *out,
                     socklen_t *outlen);

/* The text of the last failure ("Name or service not known", ...). */
static inline const char *lr__resolver_why(const struct lr__resolver *r)
{
    return r->why;
}

/* Stop: no callback after this. @close_cb(r) runs from a later loop phase,
 * once @r may be freed. A running lookup finishes on the helper thread and is
 * discarded there. */
void lr__resolver_close(struct lr__resolver *r, void (*close_cb)(struct lr__resolver *r));

/* Free what is left, for a resolver whose close callback ran or that never
 * started a slow lookup (a creation that failed halfway). Idempotent. */
void lr__resolver_deinit(struct lr__resolver *r);

/* Tests: run @fn instead of getaddrinfo on the helper thread (NULL restores
 * it), e.g. to make lookups slow. Set it before any lookup starts. */
typedef int (*lr__getaddrinfo_fn)(const char *host, const char *port,
                                  const struct addrinfo *hints, struct addrinfo **res);
void lr__resolve_set_hook(lr__getaddrinfo_fn fn);
/* Tests: resolvers' shared states not freed yet (all threads included). */
int lr__resolve_live(void);

#endif
