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
 *   redis://[USER[:PASSWORD]@]HOST[:PORT][/DB][?prefix=PREFIX][&db=DB][&mode=lease|session]
 *           [&allow_eviction=yes|no][&wait=N[&wait_ms=T][&wait_renew=yes|no]]
 *       A Redis server (default port 6379, database 0, prefix "lr:"); the
 *       database is /DB or ?db=DB (0..99999; both at once is -EINVAL).
 *       USER and PASSWORD are percent-decoded; with PASSWORD alone the
 *       connection sends AUTH PASSWORD, with both AUTH USER PASSWORD (an ACL
 *       user). A lease named N is the hash "PREFIX{N}" with fields owner
 *       (the holder's 32-hex-digit token), fence, identity (the holder
 *       manager's lr_manager_opts.identity; a hash without it, written by
 *       an older leasering, is still read: its holder is named by the
 *       token), and the lease's metadata, expiring by PEXPIRE; its fencing counter is the counter of N's
 *       Redis Cluster slot, "PREFIX{T}:fence" with T a short tag that lands
 *       in the slot of "PREFIX{N}" (one counter per slot, never expiring:
 *       at most 16384 counter keys per prefix however many names come and
 *       go; tokens grow strictly per name, and per slot). PREFIX may not
 *       contain '{' or '}' (-EINVAL). The host is looked up at each
 *       (re)connect, off the loop thread.
 *       mode=lease (the default) is this: one key, one TTL per lease.
 *       Store checks, on every (re)connect, before any lease request: CONFIG
 *       GET maxmemory-policy, CONFIG GET append*, ROLE.
 *        - maxmemory-policy allkeys-*: Redis may evict any key, a fence
 *          counter too, and the next acquisition of that name would start
 *          again at 1 (a token that went backwards). Refused: the
 *          connection is dropped and made again later (backoff), requests
 *          fail with LR_ESTORE at once until a connection gets through, and
 *          store_error / lr_manager_last_error say why. ?allow_eviction=yes
 *          (values yes|no) accepts the risk (and silences the volatile-*
 *          warning below).
 *        - ROLE slave (a replica): not the primary; as READONLY, dropped and
 *          made again (LR_EUNAVAIL, retried). ROLE sentinel: LR_ESTORE.
 *        - Told once per manager through store_error, status LR_ESTORE, text
 *          starting "warning:", nothing refused: appendonly no (a restart
 *          loses fence counters: tokens may repeat); a volatile-* policy
 *          (lease keys have a TTL and can be evicted early: a name could
 *          have two holders, the fence still grows); CONFIG GET refused by
 *          the server (renamed, ACL): nothing of the above was checked.
 *       wait=N (0..1000; 0, the default, is off): replicas must confirm
 *       writes. Each batch of acquisitions sent on a connection is followed,
 *       in the same send, by one WAIT N T, and the acquisitions count as
 *       done only when WAIT says N replicas have them. Fewer within T ms (or
 *       an error): not held; they complete as ambiguous, -ETIMEDOUT, as if
 *       the connection had dropped (retried with the same token within the
 *       acquire timeout, then acquire_failed(-ETIMEDOUT)), and store_error
 *       says "WAIT: k of N replicas acknowledged within T ms". A conflict
 *       completes at once. wait_ms=T (default the smaller of 1000 and half
 *       the request timeout; 1 ms up to below request_timeout_ms): how long
 *       WAIT may block the connection (requests behind it wait too).
 *       wait_renew=yes: renewals (session renewals in mode=session) too;
 *       an unconfirmed renewal is jeopardy, as a timed-out one. One WAIT per
 *       batch and connection, not per lease. WAIT is not consensus: see
 *       docs/STORES.md. -EINVAL, with the reason through store_error (during
 *       lr_manager_new), for a wait=, wait_ms= or wait_renew= value out of
 *       range or not a number, and for wait_ms= or wait_renew=yes without
 *       wait=N. Valid on every Redis form below (unix sockets, rediss://,
 *       redis+sentinel://, redis+cluster://: there each master waits for
 *       its own replicas).
 *       What each Redis set-up keeps of leasering's promise: docs/STORES.md.
 *
 *   redis://[USER:PASSWORD@]/PATH[?db=DB][&prefix=PREFIX][&mode=...][&allow_eviction=...]
 *           [&wait=...]
 *   unix://[USER:PASSWORD@]/PATH[?db=DB][&prefix=PREFIX][&mode=...][&allow_eviction=...]
 *           [&wait=...]
 *       The same Redis backend over the unix socket at /PATH (redis-server
 *       --unixsocket /PATH): "redis:///run/redis/redis.sock?db=2",
 *       "unix://:pw@/run/redis/redis.sock". No host and no port; the
 *       database is only ?db=DB (a path is the socket's). Nothing is looked
 *       up: the address is made at creation, and each (re)connect connects
 *       to the path. A socket that is missing or refuses (ENOENT,
 *       ECONNREFUSED, EACCES) is a store that is unavailable: requests fail
 *       with LR_EUNAVAIL (acquisitions retry within their timeout), and
 *       lr_manager_last_error() / store_error give the errno and a text
 *       naming the path ("redis /run/redis/redis.sock: connect: no such
 *       file or directory"). -EINVAL: a host or port, no path, rediss:///
 *       (no TLS over a socket); -ENAMETOOLONG: a path over 107 bytes.
 *       lr_manager_backend() says "unix" for unix://, "redis" for redis:///.
 *       Everything else (keys, modes, errors) is as for redis://.
 *
 *   redis://...?mode=session   (also rediss://...?mode=session)
 *       Session leases: one renewal keeps any number of leases. The manager
 *       keeps one session key per TTL, "PREFIX" "session:" and 32 random hex
 *       digits, that expires by PEXPIRE; each lease hash "PREFIX{N}" holds
 *       owner, fence and session (the session key's name) and has no TTL of
 *       its own while the session lives. Acquisitions are batched, one script
 *       call over many names, and refresh the session key (validity counts
 *       from that send). Renewals: lr_lease_renew and the automatic schedule
 *       behave as usual, but Redis sees about one call per session per
 *       renew_fraction of the TTL, whatever the number of leases; a renewal
 *       completes from a session renewal sent after the lease's validity
 *       started, and validity counts from that send.
 *       Fate sharing: all leases of a session live and die together. A
 *       session renewal that finds the key gone (it expired: the loop did not
 *       run for a TTL, or the store lost it) makes every lease of the session
 *       lost (LR_ELOST, or LR_EEXPIRED locally first), and the session goes
 *       on under a new key; a renewal that times out or loses its connection
 *       puts the session's waiting leases in jeopardy, as in per-lease mode.
 *       Takeover: an acquisition finding a name recorded under a session key
 *       that no longer exists takes it, with a new fence; since a holder's
 *       validity always ends before its session key can expire, the holder
 *       has stopped by then.
 *       Break: lr_lease_break blanks the owner and records the holder's
 *       token in the holder session's set "<session key>:broken" (scored by
 *       the server's clock, kept one TTL); every session renewal returns
 *       that set, and the holder's lease is lost (LR_ELOST) at its session's
 *       next renewal. Nobody acquires the name before the later of the break
 *       period and the holder session's remaining TTL. A manager keeps at
 *       most 4096 reported breaks for a TTL; a renewal reporting more than
 *       fit (or over 1024) confirms nothing, so the session's leases may be
 *       lost, never held twice.
 *       Release deletes the hash if it is still ours; change installs a new
 *       owner token (idempotent, as in per-lease mode).
 *       Cleanup: a session key and its broken set expire by themselves; the
 *       hash of a lease whose session died (its holder crashed) stays until
 *       the name is acquired again (a takeover) or deleted -- like the fence
 *       counters, which never expire in either mode.
 *       Limits: at most 16 distinct TTLs per manager (-ENOSPC for a 17th);
 *       no metadata (an acquisition of a lease with metadata fails with
 *       -EINVAL). Do not mix modes on one prefix: a per-lease manager does
 *       not see that a session lease's holder died, and its break would
 *       shorten a session lease. Standalone Redis only: in a Cluster, a
 *       session key and the leases it keeps live in different slots (a
 *       session per slot would be needed).
 *
 *   rediss://[USER[:PASSWORD]@]HOST[:PORT][/DB][?prefix=P][&db=DB][&cacert=FILE]
 *            [&cert=FILE&key=FILE][&insecure_skip_verify=yes]
 *       The same over TLS (see tls.h): the server certificate is verified
 *       against FILE (PEM) or the system CA store, with the host name; cert
 *       and key add a client certificate. insecure_skip_verify=yes disables
 *       verification, for tests only. Certificate or handshake failures are
 *       LR_ETLS, and make acquisitions fail at once rather than retry (see
 *       tls.h for what counts); lr_manager_last_error() says why. Refused
 *       connections and resets before the handshake are retried as usual.
 *
 *   redis+sentinel://[USER[:PASSWORD]@]HOST[:PORT][,HOST[:PORT]...]/MASTERNAME
 *                    [?db=N][&prefix=P][&mode=...][&wait=...][&sentinel_user=U]
 *                    [&sentinel_password=S]
 *   rediss+sentinel://...  (the same, plus rediss://'s parameters and
 *                    [&tls_name=NAME][&sentinel_tls=yes|no])
 *       Redis behind Redis Sentinel. HOST:PORT are sentinels (default port
 *       26379), tried in the order given and rotating on any failure; each
 *       host name is looked up off the loop thread. The backend asks one
 *       sentinel SENTINEL GET-MASTER-ADDR-BY-NAME MASTERNAME, connects to
 *       that address, checks with ROLE that it is a master (a sentinel's
 *       stale answer: the sentinels are asked again), then works as
 *       redis:// does (keys, scripts, ?mode=session, ?prefix=). The database
 *       is ?db=N (the path is the master's name). It stays subscribed to
 *       +switch-master on that sentinel: on a failover of MASTERNAME the data
 *       connections are dropped at once and made to the new master, before a
 *       request fails on the old one; what was in flight completes as
 *       ambiguous (jeopardy, retried within validity), as on any dropped
 *       connection. Any data-connection failure asks the sentinels again
 *       (an answer under half a second old is reused) rather than
 *       reconnecting to the old address.
 *       Credentials: USER:PASSWORD in the URI are for the Redis data nodes,
 *       as in redis://; the sentinels get AUTH only with sentinel_password=
 *       (and sentinel_user= for an ACL user), since sentinels usually have
 *       their own password or none.
 *       TLS (rediss+sentinel): to the data nodes, verified against
 *       tls_name= (default: the first sentinel's host, without its port),
 *       since the sentinels announce addresses; and to the sentinels (each
 *       verified against its own host as written in the URI, with the same
 *       cacert/cert/key), unless sentinel_tls=no (sentinels on a plain port
 *       in front of TLS data nodes). sentinel_tls on any other scheme is
 *       -EINVAL.
 *       Errors: a sentinel that knows no master of that name, refuses the
 *       query, or answers something malformed is told through store_error
 *       (LR_EBADREPLY for a malformed reply) and the next sentinel is asked;
 *       when every sentinel failed in a row, the waiting requests get
 *       LR_EUNAVAIL ("none of the N sentinels gave the address of master
 *       M") and the round starts over after a backoff. The sentinels must
 *       announce IP addresses (no announce-hostnames). Asynchronous
 *       replication can lose a failover's last writes: see
 *       docs/RELIABILITY.md, "Redis Sentinel".
 *
 *   redis+cluster://[USER[:PASSWORD]@]HOST[:PORT][,HOST[:PORT]...][?prefix=P]
 *                   [&allow_eviction=yes][&wait=...]
 *       Redis Cluster. HOST:PORT are seeds (default port 6379, at most 16),
 *       asked for the slot map with CLUSTER SHARDS (CLUSTER SLOTS on servers
 *       that do not know SHARDS), in turn and then the known nodes, at start
 *       and after a MOVED or a lost node connection (at most one query in
 *       flight, at most one per 100 ms). Each lease goes to the master of its
 *       key's slot ("<prefix>{<name>}", CRC16 of the hash tag): connections
 *       (lr_manager_opts.connections per node) are made per master as the map
 *       names it; every one does the full handshake (AUTH, the store checks,
 *       SCRIPT LOAD). Due renewals, and acquisitions without metadata, are
 *       batched per slot (one EVALSHA over the names of one slot: never
 *       CROSSSLOT). MOVED: the map is updated, the request sent to the new
 *       owner and a new map asked for; ASK: sent once to the target behind
 *       ASKING; TRYAGAIN on a batch (a slot half migrated): its names are
 *       sent one by one; TRYAGAIN on one name, CLUSTERDOWN: LR_EUNAVAIL for
 *       that request (retried within validity). A lost node connection is as
 *       on redis:// (what was in flight is ambiguous: jeopardy) and asks for
 *       a new map; what was queued for that node waits for it (up to the
 *       request timeout) and goes where it says: after a failover, to the
 *       promoted replica. At most 64 masters, and at most 256 connections in
 *       all (masters x connections); a master once seen keeps its place for
 *       the manager's life (a cluster whose masters are replaced by new
 *       addresses more often than that needs a new manager, or the slots of
 *       the extra ones are unavailable, said through store_error); node
 *       addresses must be IPs (no
 *       cluster-preferred-endpoint-type hostname). Refused at create
 *       (-EINVAL): no seed, a path or ?db= (a cluster has database 0 only),
 *       ?mode=session (a session key and its leases would be in different
 *       slots: a session per slot would be needed). No TLS variant
 *       (rediss+cluster:// is an unknown scheme). What the promise needs of
 *       the cluster: docs/STORES.md, "Redis Cluster".
 *
 *   azblob://ACCOUNT:KEY@HOST[:PORT]/CONTAINER[?tls=yes|no][&cacert=FILE]
 *            [&path_style=yes|no][&insecure_skip_verify=yes]
 *   azblob:///CONTAINER      (with AZURE_STORAGE_CONNECTION_STRING)
 *       Azure Blob Storage (or Azurite): a lease named N is a native lease
 *       on blob CONTAINER/N, created when missing; its fencing token is the
 *       blob metadata "fence", incremented under each new lease with
 *       If-Match, beside the metadata "identity" and "owner" (who holds it:
 *       a conflict HEADs the blob to name the holder; lr_manager_inspect is
 *       a HEAD too, and reports the TTL as -1: Azure does not say it); an acquire that fails after taking the lease (metadata
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
 *   cosmos://KEY@HOST[:PORT]/DATABASE/CONTAINER[?tls=yes|no][&cacert=FILE]
 *            [&doc_ttl=SECONDS][&insecure_skip_verify=yes]
 *   cosmos:///DATABASE/CONTAINER  (with COSMOS_CONNECTION_STRING,
 *            "AccountEndpoint=https://HOST[:PORT]/;AccountKey=KEY;")
 *       Azure Cosmos DB (SQL API): a lease named N is a document in
 *       CONTAINER (which must exist, partitioned on /id) whose id is N with
 *       every byte outside A-Z a-z 0-9 - _ . written ~XX; fields owner,
 *       fence, ttlMs, identity, broken, meta, ttl (doc_ttl, default 86400 s;
 *       0: none). Writes carry If-Match on the ETag. Cosmos has no expiring
 *       lease, so a contender takes a held name over only after it has seen
 *       the same ETag for the holder's TTL on its own monotonic clock (it
 *       never trusts another clock); until then acquire meets LR_ECONFLICT
 *       naming the holder. Release marks the document free, the fence kept
 *       (not a delete, so fences grow strictly); break marks it broken: the
 *       holder loses at its next renewal, others still wait its TTL.
 *       lr_manager_inspect reads the document (TTL -1: not known). KEY is
 *       the base64 master key, as is or percent-encoded (it runs to the
 *       first '@'); never logged. TLS defaults to on (with the connection
 *       string: the endpoint's scheme). TTL 1 s to 1 h. 429 is retried after
 *       x-ms-retry-after-ms within validity, 449/503 a few times; 401/403
 *       are LR_EAUTH; a create answered 404 (database or container missing)
 *       is LR_ESTORE naming dbs/DATABASE/colls/CONTAINER. Needs one write
 *       region (docs/STORES.md, "Cosmos DB").
 *
 *   etcd://[USER:PASSWORD@]HOST:PORT[,HOST:PORT...][?prefix=P][&mode=session|lease]
 *          [&tls=yes|no][&cacert=FILE]
 *       etcd v3 through its JSON gateway (POST /v3/...; etcd 3.4+). A lease
 *       named N is the key P+N (prefix default "leasering/"); its value is
 *       a JSON object (owner token, identity, TTL in ms, metadata); its
 *       fencing token is the key's create_revision (cluster-wide, strictly
 *       increasing). mode=session (the default): the manager keeps one etcd
 *       lease per distinct TTL and attaches every key of that TTL to it, so
 *       one keep-alive (every renew_fraction x TTL, with a read of the
 *       session's break markers) renews any number of leases; no TTL in a
 *       keep-alive's answer loses all of them, and the next acquisition
 *       grants a new session lease; a session idle for a TTL is revoked.
 *       lr_lease_renew is answered by the next
 *       keep-alive; per-lease renewed callbacks come only after jeopardy.
 *       mode=lease: one etcd lease per name (independent fates), renewed by
 *       a keep-alive plus a read of the key. TTLs are granted in whole
 *       seconds, rounded up (1 s to 1 h); validity counts from the send of
 *       the first request of each renewal, never from etcd's TTL. Release
 *       deletes the key (mode=lease: revokes its lease). Break puts a
 *       "broken" value on a tombstone lease of the holder's TTL + 1 s
 *       (never a plain delete): the holder loses the name at its next
 *       renewal, contenders meet LR_ECONFLICT (holder "broken") until the
 *       tombstone expires, then a higher fence. Several endpoints: requests
 *       go to one; a connection error, HTTP 503, gRPC code 14 or "leader
 *       changed" / "no leader" / "request timed out" move them to the next
 *       (the request is resent there: each is idempotent or read back).
 *       USER:PASSWORD: a token from /v3/auth/authenticate, fetched again
 *       when etcd calls it invalid; refused credentials are LR_EAUTH; the
 *       password is never logged. tls=yes (or cacert=) for https. No watch:
 *       a broken lease is found by its next renewal. docs/STORES.md, "etcd".
 *
 *   chaos+STORE-URI  with, among STORE-URI's query parameters,
 *       [fail=P][&delay_ms=D][&jitter_ms=J][&stall_ms=S][&stall=Q]
 *       [&ops=KIND,...][&seed=N]
 *       Fault injection, for tests: the store of STORE-URI (any scheme above,
 *       e.g. "chaos+redis://127.0.0.1:6379?prefix=x:&fail=0.1&delay_ms=20",
 *       "chaos+mem://t1?stall_ms=500") with faults on the request path. The
 *       chaos parameters are taken out before the store's URI is parsed.
 *       fail=P (0..1, default 0): a fraction P of the requests fails. Half of
 *         those are refused before they are sent (LR_EUNAVAIL, as an
 *         unreachable store); the other half reach the store, are applied
 *         there, and lose their reply: -ECONNRESET at once or -ETIMEDOUT at
 *         the request timeout (request_timeout_ms after the send), equally
 *         often. That second half is the ambiguous case the lease core must
 *         not read as "lost" (an acquisition may then be held at the store).
 *       delay_ms=D, jitter_ms=J (ms, default 0): each result that is not
 *         failed or stalled reaches the lease D ms late, plus a uniform
 *         random 0..J ms.
 *       stall_ms=S, stall=Q (default Q 1 when S is given): with probability
 *         Q a result is held S ms instead (choose S above the request timeout
 *         or the TTL to see jeopardy and loss).
 *       Whatever is held past the request timeout becomes -ETIMEDOUT at that
 *       moment, as a real connection's request timeout would make it.
 *       ops=KIND,... (acquire, renew, release, break, change; default all):
 *         the requests faults apply to; the others pass untouched, as
 *         lr_manager_inspect always does.
 *       seed=N (0..2^64-1): the decisions come from a generator seeded with
 *         N, so a run repeats the same sequence of faults as long as requests
 *         reach the store in the same order (one lease, or requests one at a
 *         time); without it, a random seed.
 *       Nothing is allocated after lr_manager_new (held results take about
 *       150 bytes per lease of max_leases capacity). A result held for a
 *       request the core abandons (release, lr_lease_deinit, loss, manager
 *       close) never reaches the lease. lr_manager_backend() says "chaos".
 *       One decorator at a time: "chaos+chaos+..." is -EINVAL.
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

/* The scheme of the store @m uses ("mem", "redis"; "chaos" for chaos+...). */
LR_API const char *lr_manager_backend(const struct lr_manager *m);

#ifdef __cplusplus
}
#endif
#endif
