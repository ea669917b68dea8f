/* SPDX-License-Identifier: MIT */
/*
 * cosmos.h - the Cosmos DB emulator @vercel/cosmosdb-server 1.0.1 for
 * integration tests, on its own free loopback port, plain HTTP with
 * keep-alive, started and stopped by pid (fork + execv, never a shell).
 *
 * Which server: the copy scripts/setup installs into <source root>/node_modules
 * (source root as in azurite.h). node_modules/.bin/cosmosdb-server must exist
 * (the fixed name of issue 13), but it is not what runs: its CLI always
 * answers "connection: close", so we run
 *   node -e <script> <source root>/node_modules/@vercel/cosmosdb-server <port>
 * where the script calls createHttpServer({keepAlive: true}).listen(port,
 * "127.0.0.1") and prints "cosmosdb-server ready on 127.0.0.1:<port>" once
 * listening (or the listen error, e.g. EADDRINUSE, and exits 1).
 * Ready = that line in this run's log and a fresh connection answering
 * `GET /dbs` with an HTTP status line. The server starts empty every time.
 * It checks neither signatures nor TTLs (docs/STORES.md).
 *
 * A missing server prints "cosmosdb-server not found: run scripts/setup ..."
 * and returns -ENOENT: callers FAIL on it, never skip. Servers die with the
 * test (PR_SET_PDEATHSIG via proc.c; atexit cleanup of the temp dir).
 * Not thread-safe: use it from the test's main thread.
 */
#ifndef LR_TEST_COSMOS_H
#define LR_TEST_COSMOS_H

#include <sys/types.h>

#define COSMOS_VERSION "1.0.1"

struct cosmos {
    pid_t pid; /* 0 when not running */
    int port;  /* 127.0.0.1:port */
    char dir[128];
    char logfile[160];
};

/*
 * cosmos_start - start the emulator on 127.0.0.1 and a free port (retried up
 * to 5 times when the port is taken meanwhile) and wait until ready (30 s).
 * Returns: 0; -ENOENT not installed or no node (hint printed); -EIO it
 * exited; -ETIMEDOUT; -EADDRINUSE; other -errno. On failure the log tail is
 * printed and nothing is left running.
 */
int cosmos_start(struct cosmos *c);

/* cosmos_stop - SIGTERM, 5 s, SIGKILL; reaps. Returns 0 or -ETIMEDOUT. */
int cosmos_stop(struct cosmos *c);

/* cosmos_destroy - stop if running and remove the temp dir. Safe twice. */
void cosmos_destroy(struct cosmos *c);

#endif
