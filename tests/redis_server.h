/* SPDX-License-Identifier: MIT */
/*
 * redis_server.h - real redis-server processes for integration tests, each on
 * its own free loopback port with a private temp dir, started and stopped by
 * pid (fork + execvp, never a shell), plus a redis-cli runner.
 *
 * Servers never outlive the test: the child sets PR_SET_PDEATHSIG = SIGKILL
 * before exec, so it dies with the *thread* that started it (start servers
 * from the main thread), and an atexit hook kills any server still running
 * and removes the temp dirs of servers a failed CHECK left behind. Children
 * inherit no fds beyond 0-2: stdin is /dev/null and stdout/stderr go to the
 * server's log file. Port 6379 (a system redis) is never used.
 *
 * A missing redis-server or redis-cli prints an install hint and returns
 * -ENOENT: callers treat that as a test FAILURE, never a skip (STYLE.md 8).
 *
 * ACL users: redis 7.0 accepts `user` directives on the command line, one
 * directive per --user, the rules as separate argv words (no shell quoting,
 * since execvp passes them verbatim):
 *     const char *const extra[] = {"--user", "alice", "on", ">secret", "~*", "+@all", NULL};
 * (checked with 7.0.15: ACL LIST shows alice, and redis-cli --user alice --pass
 * secret gets ACL WHOAMI = alice). The default user stays "on nopass" unless
 * you also pass e.g. {"--user", "default", "off"}. --aclfile cannot be
 * combined with --user directives; if you need a file, write it into s->dir
 * yourself and pass --aclfile.
 *
 * None of this is thread-safe: use it from the test's main thread.
 */
#ifndef LR_TEST_REDIS_SERVER_H
#define LR_TEST_REDIS_SERVER_H

#include <netinet/in.h>
#include <stddef.h>
#include <sys/types.h>

#define REDIS_SERVER_MAX_EXTRA 15 /* extra argv words per server */

struct redis_server {
    pid_t pid;         /* 0 when not running */
    int port;          /* 127.0.0.1:port, kept across stop/kill/restart */
    char dir[128];     /* private temp dir (mkdtemp under /tmp), removed by redis_server_destroy */
    char logfile[160]; /* <dir>/redis.log: the server's log plus its stdout/stderr */
    const char *extra[16]; /* extra argv given at start, NULL-terminated copy of the pointers
                              (caller keeps strings alive until destroy) */
    char tls_cert[256]; /* TLS-only server (redis_server_start_tls) when tls_ca[0]: */
    char tls_key[256];  /* copies of the paths it was started with; all "" for a */
    char tls_ca[256];   /* plain-TCP server */
    char sock[160];     /* unix-socket-only server (redis_server_start_unix): its path; else "" */
};

/*
 * redis_server_start - start redis-server on 127.0.0.1 and a free port.
 * @s: caller storage; overwritten (need not be initialised).
 * @extra: NULL-terminated extra argv words appended to the fixed ones, or NULL;
 *         e.g. {"--requirepass", "pw", NULL}. The pointers are copied, the
 *         strings are not.
 * Runs `redis-server --save '' --appendonly no --dir <dir> --bind 127.0.0.1
 * --port <p> --logfile <dir>/redis.log --daemonize no <extra...>` and waits
 * until a RESP PING over TCP is answered with +PONG or -NOAUTH (both mean up).
 * The port comes from binding port 0; if another process takes it before the
 * server binds, a new port is tried (up to 5 times).
 * Returns: 0; -ENOENT redis-server is not installed (a hint is printed);
 * -E2BIG more than REDIS_SERVER_MAX_EXTRA extra words; -EADDRINUSE every port
 * try lost a race; -EIO the server exited during startup (bad arguments?);
 * -ETIMEDOUT not ready within 10 s; other -errno from mkdtemp/fork/pipe.
 * On every failure after the fork the last 20 log lines go to stderr, the
 * process is reaped and the temp dir removed (s->pid == 0).
 */
int redis_server_start(struct redis_server *s, const char *const *extra);

/*
 * redis_server_start_tls - like redis_server_start, but TLS-only: the free
 * port is redis's --tls-port and plain TCP is off (--port 0).
 * @cert/@key: the server's PEM certificate and key (certs.h: server_cert and
 *             server_key, or wrong_cert and wrong_key for a name mismatch).
 * @ca: the CA that signed it; redis loads it (--tls-ca-cert-file), and
 *      redis_cli and the readiness probe pass it to redis-cli (--cacert).
 * @extra: as redis_server_start; words that repeat a TLS option override it
 *         (e.g. {"--tls-auth-clients", "yes", NULL}).
 * Runs `redis-server <the fixed words of redis_server_start, with --port 0>
 * --tls-port <p> --tls-cert-file @cert --tls-key-file @key --tls-ca-cert-file
 * @ca --tls-auth-clients no <extra...>`. Ready when the port accepts and then
 * `redis-cli -h 127.0.0.1 -p <p> --tls --cacert @ca PING` (with redis_cli_auth
 * credentials, stderr discarded) prints PONG or NOAUTH... redis-cli 7.0 does
 * not check the certificate's name, so a wrong_cert server starts as well.
 * redis_cli, redis_server_restart, stop, kill, pause and resume work on it
 * unchanged (redis_cli adds --tls --cacert @ca by itself).
 * Returns: as redis_server_start; also -ENOENT redis-cli is missing (hint
 * printed); -ENAMETOOLONG a path longer than 255 bytes; -EINVAL a NULL path.
 */
int redis_server_start_tls(struct redis_server *s, const char *cert, const char *key,
                           const char *ca, const char *const *extra);

/*
 * redis_server_start_unix - like redis_server_start, but listening only on a
 * unix socket, s->sock = "<dir>/redis.sock" (TCP off: --port 0).
 * Runs `redis-server <the fixed words of redis_server_start, with --port 0>
 * --unixsocket <sock> --unixsocketperm 700 <extra...>` and waits until a PING
 * over the socket is answered +PONG or -NOAUTH. s->port is unused (0).
 * redis_cli (as `redis-cli -s <sock>`), restart, stop, kill, pause and
 * resume work on it unchanged.
 * Returns: as redis_server_start.
 */
int redis_server_start_unix(struct redis_server *s, const char *const *extra);

/*
 * redis_server_restart - start again on the same port and dir with the same
 * arguments (after stop or kill); waits until ready as above.
 * Returns: 0; -EBUSY still running; -EADDRINUSE someone else took the port;
 * otherwise as redis_server_start (no port retry: the port is fixed).
 */
int redis_server_restart(struct redis_server *s);

/*
 * redis_server_stop - SIGTERM (plus SIGCONT, so a paused server stops too),
 * then wait up to 5 s for it to exit, then SIGKILL. Always reaps; s->pid = 0.
 * Returns: 0 (also when not running); -ETIMEDOUT it needed the SIGKILL.
 */
int redis_server_stop(struct redis_server *s);

/*
 * redis_server_kill - SIGKILL and reap: a crash. s->pid = 0.
 * Returns: 0; -ESRCH not running.
 */
int redis_server_kill(struct redis_server *s);

/*
 * redis_server_pause - SIGSTOP, and wait until the process is stopped.
 * New connections are still accepted by the kernel and open ones stay open,
 * but no reply is sent until redis_server_resume.
 * Returns: 0; -ESRCH not running (or it died meanwhile: then s->pid = 0).
 */
int redis_server_pause(struct redis_server *s);

/*
 * redis_server_resume - SIGCONT, and wait until the process runs again.
 * Returns: 0; -ESRCH not running (or it died meanwhile: then s->pid = 0).
 */
int redis_server_resume(struct redis_server *s);

/* redis_server_destroy - stop if running and remove the temp dir with all its
 * contents. Safe on a struct whose start failed. */
void redis_server_destroy(struct redis_server *s);

/*
 * redis_cli - run `redis-cli -h 127.0.0.1 -p <port> [--user U] [--pass P]
 * --no-auth-warning <args...>` (no shell) and capture its stdout.
 * @out/@cap: receives stdout, NUL-terminated, truncated to @cap-1 bytes, one
 *            trailing newline stripped. Replies are redis-cli's raw
 *            (non-tty) format: "v", "PONG", "" for nil, "ERR ..." for errors.
 * @args: NULL-terminated command words, e.g. {"SET", "k", "v", NULL}.
 * redis-cli's stderr (AUTH failures, connection errors) goes to ours.
 * A TLS server (redis_server_start_tls) gets `--tls --cacert <its ca>` too.
 * Returns: redis-cli's exit status (>= 0; 128+signal if it was killed; note
 * that redis-cli exits 0 even on error replies); -ENOENT redis-cli is not
 * installed (a hint is printed); -ETIMEDOUT no exit within 10 s (e.g. the
 * server is paused: redis-cli is killed); -EINVAL bad arguments; other -errno.
 */
int redis_cli(const struct redis_server *s, char *out, size_t cap, const char *const *args);

/* redis_cli_auth - credentials redis_cli passes from now on (copied; NULL
 * clears one). redis_cli_auth(NULL, "pw") is requirepass-style AUTH. */
void redis_cli_auth(const char *user, const char *pass);

/*
 * redis_replica_link_up - wait until replica @r (started with --replicaof)
 * says master_link_status:up in INFO replication, polling every 50 ms.
 * Returns: 0; -ETIMEDOUT not up within 10 s; -ENOENT redis-cli is missing.
 */
int redis_replica_link_up(const struct redis_server *r);

/* redis_server_addr - the server's address (127.0.0.1:port) for direct connects. */
void redis_server_addr(const struct redis_server *s, struct sockaddr_in *out);

#endif
