/* SPDX-License-Identifier: MIT */
/* cosmos.c - see cosmos.h. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "azurite.h"
#include "cosmos.h"
#include "proc.h"

#define START_TIMEOUT_MS 30000
#define STOP_TIMEOUT_MS 5000
#define PROBE_TIMEOUT_MS 500
#define POLL_MS 20
#define PORT_TRIES 5
#define DIR_PREFIX PROC_DIR_PREFIX "cosmos-"
#define BIN_REL "node_modules/.bin/cosmosdb-server"
#define PKG_REL "node_modules/@vercel/cosmosdb-server"

static const char hint[] =
    "cosmosdb-server not found: run scripts/setup (installs "
    "@vercel/cosmosdb-server " COSMOS_VERSION " with npm into node_modules/)\n";

/* Keep-alive on (the CLI has no switch for it); argv[1] package dir, argv[2] port. */
static const char script[] =
    "const s = require(process.argv[1]).createHttpServer({keepAlive: true});"
    "s.on('error', e => { console.log('listen error ' + e.code); process.exit(1); });"
    "s.listen(+process.argv[2], '127.0.0.1', () => "
    "console.log('cosmosdb-server ready on 127.0.0.1:' + process.argv[2]));";

struct probe {
    struct cosmos *c;
    off_t from;
};

static int ready(void *ctx)
{
    struct probe *p = ctx;
    char needle[64];
    snprintf(needle, sizeof(needle), "ready on 127.0.0.1:%d", p->c->port);
    if (!proc_log_contains(p->c->logfile, p->from, needle))
        return 0;
    int fd = proc_connect(p->c->port, PROBE_TIMEOUT_MS);
    if (fd < 0)
        return 0;
    static const char req[] = "GET /dbs HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
    char buf[16] = "";
    int ok = write(fd, req, sizeof(req) - 1) == (ssize_t)(sizeof(req) - 1) &&
             read(fd, buf, sizeof(buf) - 1) >= 9 && memcmp(buf, "HTTP/1.1 ", 9) == 0;
    close(fd);
    return ok;
}

int cosmos_start(struct cosmos *c)
{
    char bin[512], pkg[512];
    memset(c, 0, sizeof(*c));
    int rc = source_root_path(BIN_REL, bin, sizeof(bin));
    if (rc < 0 || (rc = source_root_path(PKG_REL, pkg, sizeof(pkg))) < 0)
        return rc;
    if (access(bin, X_OK) < 0) {
        fputs(hint, stderr);
        fprintf(stderr, "  (looked for %s)\n", bin);
        return -ENOENT;
    }
    if ((rc = proc_mkdtemp(c->dir, sizeof(c->dir), DIR_PREFIX)) < 0)
        return rc;
    snprintf(c->logfile, sizeof(c->logfile), "%s/cosmos.log", c->dir);
    for (int i = 0; i < PORT_TRIES; i++) {
        if ((rc = proc_pick_port(&c->port)) < 0)
            break;
        char port[16];
        snprintf(port, sizeof(port), "%d", c->port);
        const char *argv[] = {"node", "-e", script, pkg, port, NULL};
        off_t from;
        rc = proc_spawn_logged(argv, c->dir, c->logfile, &from, &c->pid);
        if (rc == -ENOENT)
            fputs("node not found on PATH: install it with `apt-get install nodejs` "
                  "(or run scripts/setup)\n",
                  stderr);
        if (rc < 0)
            break;
        proc_track(c->dir, c->pid);
        struct probe p = {c, from};
        struct proc_ready r = {ready, &p, "EADDRINUSE", START_TIMEOUT_MS, POLL_MS};
        rc = proc_await_ready(&c->pid, c->dir, c->logfile, from, &r);
        if (rc != -EADDRINUSE)
            break;
    }
    if (rc < 0) {
        proc_log_tail(c->logfile, 20);
        cosmos_destroy(c);
    }
    return rc;
}

int cosmos_stop(struct cosmos *c)
{
    return proc_stop(&c->pid, c->dir, STOP_TIMEOUT_MS);
}

void cosmos_destroy(struct cosmos *c)
{
    if (c->pid)
        cosmos_stop(c);
    if (c->dir[0])
        proc_rmtree(c->dir);
    c->dir[0] = '\0';
}
