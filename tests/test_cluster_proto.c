/* SPDX-License-Identifier: MIT */
/*
 * test_cluster_proto.c - redis+cluster:// against two fake cluster nodes, A
 * and B, for what a real cluster does only at awkward moments: a server
 * without CLUSTER SHARDS (Redis 6: "unknown subcommand"; the client must
 * fall back to CLUSTER SLOTS, and keep to it), a MOVED reply (the request
 * goes to the new owner, the map is refreshed) and an ASK reply (the
 * request goes to the target once, right behind ASKING, and the map is not
 * changed). The fakes answer the handshake like a master, count what they
 * are asked, and record the command that came before each EVALSHA.
 * Also the URIs the cluster backend refuses at create.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <sys/socket.h>
#include <unistd.h>

#include "echo.h"
#include "harness.h"
#include "recorder.h"
#include "redis_slot.h"
#include "resp.h"
#include <leasering.h>

enum mode { FOLLOW_MOVED, FOLLOW_ASK };

struct fake;

/* One client connection of a fake node: the command being read. */
struct fconn {
    int fd;
    struct lr_resp_parser p;
    int argc, want;
    char args[8][72];
    size_t lens[8];
    bool asking; /* the previous command was ASKING */
};

struct fake {
    struct tcp_peer peer;
    struct fake *other; /* A: B (the redirection target); B: A */
    bool is_a;
    enum mode mode;
    atomic_bool stop;
    atomic_bool moved_done; /* A sent its MOVED: the maps now give B every slot */
    atomic_int shards, slots, asking, evalshas, evalshas_after_asking;
    struct fconn conns[16];
};

static void say(int fd, const char *s)
{
    (void)!write(fd, s, strlen(s));
}

static void map_reply(struct fake *f, int fd)
{
    /* every slot on one master: A, or B once A has moved them */
    const struct fake *owner =
        atomic_load(&f->moved_done) ? (f->is_a ? f->other : f) : (f->is_a ? f : f->other);
    char r[128];
    snprintf(r, sizeof(r), "*1\r\n*3\r\n:0\r\n:16383\r\n*2\r\n$9\r\n127.0.0.1\r\n:%u\r\n",
             ntohs(owner->peer.addr.sin_port));
    say(fd, r);
}

static bool arg_is(const struct fconn *c, int i, const char *lit)
{
    return c->lens[i] == strlen(lit) && !strncasecmp(c->args[i], lit, c->lens[i]);
}

static void command(struct fake *f, struct fconn *c)
{
    bool asking = c->asking;
    c->asking = false;
    if (arg_is(c, 0, "SCRIPT")) {
        say(c->fd, "$40\r\n0123456789012345678901234567890123456789\r\n");
    } else if (arg_is(c, 0, "CONFIG")) {
        say(c->fd, "*0\r\n");
    } else if (arg_is(c, 0, "ROLE")) {
        say(c->fd, "*3\r\n$6\r\nmaster\r\n:0\r\n*0\r\n");
    } else if (arg_is(c, 0, "CLUSTER") && c->argc > 1 && arg_is(c, 1, "SHARDS")) {
        atomic_fetch_add(&f->shards, 1);
        say(c->fd, "-ERR unknown subcommand 'SHARDS'. Try CLUSTER HELP.\r\n");
    } else if (arg_is(c, 0, "CLUSTER") && c->argc > 1 && arg_is(c, 1, "SLOTS")) {
        atomic_fetch_add(&f->slots, 1);
        map_reply(f, c->fd);
    } else if (arg_is(c, 0, "ASKING")) {
        atomic_fetch_add(&f->asking, 1);
        c->asking = true;
        say(c->fd, "+OK\r\n");
    } else if (arg_is(c, 0, "EVALSHA") && c->argc > 3) {
        atomic_fetch_add(&f->evalshas, 1);
        atomic_fetch_add(&f->evalshas_after_asking, asking);
        unsigned slot = lr__redis_slot(c->args[3], c->lens[3]);
        char r[128];
        unsigned a = ntohs((f->is_a ? f : f->other)->peer.addr.sin_port);
        unsigned b = ntohs((f->is_a ? f->other : f)->peer.addr.sin_port);
        if (f->is_a && f->mode == FOLLOW_MOVED) {
            atomic_store(&f->moved_done, true);
            atomic_store(&f->other->moved_done, true);
            snprintf(r, sizeof(r), "-MOVED %u 127.0.0.1:%u\r\n", slot, b);
        } else if (f->is_a) {
            snprintf(r, sizeof(r), "-ASK %u 127.0.0.1:%u\r\n", slot, b);
        } else if (f->mode == FOLLOW_ASK && !asking) {
            /* an importing node serves the slot only right after ASKING */
            snprintf(r, sizeof(r), "-MOVED %u 127.0.0.1:%u\r\n", slot, a);
        } else {
            snprintf(r, sizeof(r), "*1\r\n:7\r\n"); /* batched acquire: fence 7 */
        }
        say(c->fd, r);
    } else {
        say(c->fd, "-ERR unexpected\r\n");
    }
}

/* Read what arrived on @c; false when the connection ended. */
static bool serve_conn(struct fake *f, struct fconn *c)
{
    char buf[65536];
    ssize_t n = read(c->fd, buf, sizeof(buf));
    if (n <= 0)
        return false;
    size_t off = 0;
    while (off < (size_t)n) {
        struct lr_resp_token t;
        int rc = lr_resp_parse(&c->p, buf + off, (size_t)n - off, &t);
        if (rc < 0)
            return rc == -EAGAIN;
        off += (size_t)rc;
        if (t.depth == 0 && t.type == LR_RESP_ARRAY) {
            c->argc = 0;
            c->want = (int)t.integer;
        } else if (t.depth == 1) {
            if (c->argc < 8) {
                size_t len = t.len < sizeof(c->args[0]) ? t.len : sizeof(c->args[0]);
                memcpy(c->args[c->argc], t.str, len);
                c->lens[c->argc] = len;
            }
            c->argc++;
        }
        if (t.last)
            command(f, c);
    }
    return true;
}

/* One thread per node: poll the listening socket and every connection. */
static void *serve(void *arg)
{
    struct fake *f = arg;
    for (unsigned i = 0; i < 16; i++)
        f->conns[i].fd = -1;
    while (!atomic_load(&f->stop)) {
        struct pollfd pf[17];
        unsigned idx[17];
        nfds_t n = 0;
        pf[n++] = (struct pollfd){.fd = f->peer.listen_fd, .events = POLLIN};
        for (unsigned i = 0; i < 16; i++)
            if (f->conns[i].fd >= 0) {
                idx[n] = i;
                pf[n++] = (struct pollfd){.fd = f->conns[i].fd, .events = POLLIN};
            }
        if (poll(pf, n, 20) <= 0)
            continue;
        if (pf[0].revents & POLLIN) {
            int fd = accept(f->peer.listen_fd, NULL, NULL);
            for (unsigned i = 0; fd >= 0 && i < 16; i++)
                if (f->conns[i].fd < 0) {
                    memset(&f->conns[i], 0, sizeof(f->conns[i]));
                    f->conns[i].fd = fd;
                    lr_resp_parser_init(&f->conns[i].p);
                    fd = -1;
                }
            if (fd >= 0)
                close(fd);
        }
        for (nfds_t k = 1; k < n; k++)
            if (pf[k].revents && !serve_conn(f, &f->conns[idx[k]])) {
                close(f->conns[idx[k]].fd);
                f->conns[idx[k]].fd = -1;
            }
    }
    for (unsigned i = 0; i < 16; i++)
        if (f->conns[i].fd >= 0)
            close(f->conns[i].fd);
    return NULL;
}

static struct fake fa, fb;

static int fakes_start(enum mode mode)
{
    memset(&fa, 0, sizeof(fa));
    memset(&fb, 0, sizeof(fb));
    fa.is_a = true;
    fa.other = &fb;
    fb.other = &fa;
    fa.mode = fb.mode = mode;
    int rc = peer_start(&fa.peer, serve, &fa);
    if (rc == 0)
        rc = peer_start(&fb.peer, serve, &fb);
    return rc;
}

static void fakes_stop(void)
{
    atomic_store(&fa.stop, true);
    atomic_store(&fb.stop, true);
    peer_stop(&fa.peer);
    peer_stop(&fb.peer);
}

static struct lr_manager *cluster_mgr(void)
{
    char uri[96];
    snprintf(uri, sizeof(uri), "redis+cluster://127.0.0.1:%u", ntohs(fa.peer.addr.sin_port));
    struct lr_manager_opts o = {
        .ttl_ms = 2000, .cbs = &rec_cbs, .request_timeout_ms = 500, .store_error = rec_store_error};
    struct lr_manager *m = NULL;
    if (lr_manager_new(&m, loop, uri, &o) < 0)
        return NULL;
    return m;
}

/* Fakes in @mode, a manager on them, leases "job1" (@l1, acquired: fence
 * 7, through the redirection) and "job2" (@l2, idle); NULL on a failure
 * (said). */
static struct lr_manager *first_lease(enum mode mode, struct lr_lease *l1, struct lr_lease *l2)
{
    rec_setup();
    rec_errs[0] = '\0';
    struct lr_manager *m = NULL;
    if (fakes_start(mode) < 0 || !(m = cluster_mgr()) || lr_lease_init(m, l1, "job1", NULL) ||
        lr_lease_init(m, l2, "job2", NULL) || lr_lease_try_acquire(l1)) {
        fprintf(stderr, "cannot set up the fakes and leases\n");
        return NULL;
    }
    run_until(EV_ACQ, 3000);
    if (!rec_first(EV_ACQ, l1) || lr_lease_fence(l1) != 7) {
        fprintf(stderr, "job1 not acquired with fence 7 through the redirection:\n%s", rec_errs);
        return NULL;
    }
    return m;
}

/* SHARDS unknown: SLOTS asked instead (and from then on). A MOVED: the
 * lease goes to B and is acquired there; the map is asked for again, and
 * the next lease goes straight to B. */
TEST(slots_fallback_and_moved)
{
    struct lr_lease l1, l2;
    struct lr_manager *m = first_lease(FOLLOW_MOVED, &l1, &l2);
    CHECK(m != NULL);
    CHECK_EQ(atomic_load(&fa.evalshas), 1); /* answered MOVED */
    CHECK_EQ(atomic_load(&fb.evalshas), 1); /* sent again there */
    CHECK_EQ(atomic_load(&fb.asking), 0);
    CHECK_EQ(atomic_load(&fa.shards), 1);
    /* the first map, then one after the MOVED: SLOTS each time */
    for (int i = 0; i < 100 && atomic_load(&fa.slots) + atomic_load(&fb.slots) < 2; i++)
        run_until(0, 10);
    CHECK(atomic_load(&fa.slots) + atomic_load(&fb.slots) >= 2);
    CHECK_EQ(atomic_load(&fa.shards) + atomic_load(&fb.shards), 1);
    CHECK_OK(lr_lease_try_acquire(&l2));
    run_until(0, 300);
    CHECK(rec_first(EV_ACQ, &l2) != NULL);
    CHECK_EQ(atomic_load(&fa.evalshas), 1); /* the new map sent it straight to B */
    CHECK_EQ(atomic_load(&fb.evalshas), 2);
    CHECK(strstr(rec_errs, "MOVED") == NULL); /* redirections are routine, not errors */
    lr_lease_deinit(&l1);
    lr_lease_deinit(&l2);
    close_mgr(m);
    fakes_stop();
}

/* An ASK: B gets ASKING and then the request (B refuses it without
 * ASKING, like an importing node); the map is not changed (no new query),
 * so the next request goes to A again. */
TEST(ask_sends_asking_first)
{
    struct lr_lease l1, l2;
    struct lr_manager *m = first_lease(FOLLOW_ASK, &l1, &l2);
    CHECK(m != NULL);
    CHECK_EQ(atomic_load(&fa.evalshas), 1);
    CHECK_EQ(atomic_load(&fb.asking), 1);
    CHECK_EQ(atomic_load(&fb.evalshas), 1);
    CHECK_EQ(atomic_load(&fb.evalshas_after_asking), 1);
    CHECK_OK(lr_lease_try_acquire(&l2));
    run_until(0, 300);
    CHECK(rec_first(EV_ACQ, &l2) != NULL);
    CHECK_EQ(atomic_load(&fa.evalshas), 2); /* the map still says A */
    CHECK_EQ(atomic_load(&fb.evalshas_after_asking), 2);
    CHECK_EQ(atomic_load(&fa.slots) + atomic_load(&fb.slots), 1); /* ASK asks no new map */
    lr_lease_deinit(&l1);
    lr_lease_deinit(&l2);
    close_mgr(m);
    fakes_stop();
}

/* What redis+cluster refuses at create, with -EINVAL: session mode (it
 * would need a session key per slot), a database (a cluster has only 0), a
 * path, no seed, parameters of other backends; and rediss+cluster is no
 * scheme. */
TEST(refused_uris)
{
    rec_setup();
    struct lr_manager_opts o = {.ttl_ms = 2000};
    struct lr_manager *m;
    CHECK_ERR(lr_manager_new(&m, loop, "redis+cluster://127.0.0.1:1?mode=session", &o), -EINVAL);
    CHECK_ERR(lr_manager_new(&m, loop, "redis+cluster://127.0.0.1:1?db=1", &o), -EINVAL);
    CHECK_ERR(lr_manager_new(&m, loop, "redis+cluster://127.0.0.1:1/2", &o), -EINVAL);
    CHECK_ERR(lr_manager_new(&m, loop, "redis+cluster://127.0.0.1:1?tls_name=x", &o), -EINVAL);
    CHECK_ERR(lr_manager_new(&m, loop, "redis+cluster://127.0.0.1:1,/", &o), -EINVAL);
    CHECK_ERR(lr_manager_new(&m, loop, "redis+cluster://", &o), -EINVAL);
    CHECK_ERR(lr_manager_new(&m, loop, "rediss+cluster://127.0.0.1:1", &o), -EPROTONOSUPPORT);
    CHECK_OK(
        lr_manager_new(&m, loop, "redis+cluster://127.0.0.1:1,[::1]:2,localhost?prefix=p:", &o));
    CHECK(!strcmp(lr_manager_backend(m), "redis+cluster"));
    close_mgr(m);
}

TESTS(T(slots_fallback_and_moved), T(ask_sends_asking_first), T(refused_uris))
