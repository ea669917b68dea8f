/* SPDX-License-Identifier: MIT */
/*
 * redis_sentinel.c - where the master is, according to Redis Sentinel.
 *
 * One connection, to one sentinel at a time. On it go, in one send:
 * [AUTH sentinel credentials], SENTINEL GET-MASTER-ADDR-BY-NAME <name> and
 * SUBSCRIBE +switch-master. The address reply answers a lookup; the
 * connection then stays subscribed, and a "+switch-master <name> <old ip>
 * <old port> <new ip> <new port>" message for our name is passed on as
 * moved(): the backend drops its data connections at once, before any
 * request fails on a demoted or dead master.
 *
 * A subscribed connection (RESP2) takes no other command, so a new lookup
 * that the cached answer cannot serve (older than FRESH_MS) closes it and
 * opens a new one, which asks and subscribes again. Any failure -- refused
 * connect, no answer within the request timeout, an error reply, a
 * malformed or unexpected reply (LR_EBADREPLY), a sentinel that does not know
 * the master name (a nil answer) -- is told through store_error and moves to
 * the next sentinel (rotating, in the order of the URI); when every sentinel
 * failed in a row, a lookup waiting for an answer gets LR_EUNAVAIL and the
 * round starts over after a backoff. While nobody waits, a lost subscription
 * is made again (after a backoff), and its answer, if it differs from the
 * last one, is a move as well: a failover missed while unsubscribed is
 * still followed.
 *
 * Memory: everything is allocated by lr__sentinel_new (the output buffer,
 * the resolver's state); replies are read token by token into fixed fields.
 * Layer: loop, connections, resolver, RESP; no leases.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>

#include <leasering/error.h>
#include "alloc_int.h"
#include "backend_int.h"
#include "log_int.h"
#include "net_int.h"
#include "redis_sentinel.h"
#include "resolve_int.h"
#include "resp.h"
#include "tls_int.h"

#define SENTINEL_MAX 8
#define SENTINEL_PORT 26379
#define FRESH_MS 500          /* a lookup reuses an answer this young */
#define SENTINEL_OUT 4096     /* AUTH + the query + SUBSCRIBE */
#define FIELD_MAX 300         /* longest string element we keep */

enum sstate {
    S_IDLE,       /* no connection; the timer may be armed for the next try */
    S_RESOLVING,  /* looking the current sentinel's name up */
    S_CONNECTING,
    S_QUERY,      /* waiting for the address reply */
    S_SUBSCRIBED, /* answered; listening for +switch-master */
    S_CLOSING,    /* the connection is closing; then @next happens */
};

/* What a reply is the answer to, in the order they were sent. */
enum { P_AUTH, P_ADDR, P_SUB, P_MSG };

struct lr__sentinel {
    struct lr_manager *m;
    void *owner;
    const struct lr__sentinel_cbs *cbs;
    struct lr_loop *loop;
    struct lr__conn net;
    struct lr__tls *tls; /* rediss+sentinel with sentinel_tls (the default): TLS */
    struct lr__resolver res;
    struct lr_timer timer; /* query deadline, or the next try while idle */
    struct lr__task done_task;
    struct lr_resp_parser parser;
    enum sstate state;
    unsigned n;       /* sentinels */
    unsigned cur;     /* the one we talk to (or try next) */
    unsigned failed;  /* sentinels that failed in a row */
    unsigned attempt; /* rounds that failed in a row (backoff) */
    bool want;        /* a lookup waits for found() */
    bool reconnect;   /* once closed: connect again at once (else: after backoff) */
    bool closing;
    unsigned to_close; /* closing: the connection and the resolver */
    void (*done)(void *arg);
    void *done_arg;
    uint8_t phase;    /* what the next reply answers */
    /* the reply being read */
    bool r_active;
    bool r_bad;
    bool r_nil;
    uint8_t r_type;
    int64_t r_count;
    int64_t r_idx;
    uint16_t r_len[3];
    char r_str[3][FIELD_MAX];
    /* the last answer */
    bool have_addr;
    bool from_switch; /* the answer came from +switch-master: fresh until used */
    uint64_t addr_ms;
    struct sockaddr_storage addr;
    socklen_t addrlen;
    struct sockaddr_storage sa; /* the current sentinel's address */
    socklen_t salen;
    uint64_t switches;
    bool has_user;
    bool has_password;
    char user[128];
    char password[256];
    char master[256];
    char endpoint[300]; /* "host:port" of the current sentinel */
    struct lr__uri_host hosts[SENTINEL_MAX];
};

static const struct lr__conn_cbs sentinel_net_cbs;
static void try_current(struct lr__sentinel *s);

bool lr__sentinel_param(const char *key)
{
    return !strcmp(key, "sentinel_user") || !strcmp(key, "sentinel_password") ||
           !strcmp(key, "sentinel_tls") || !strcmp(key, "db");
}

const char *lr__sentinel_master(const struct lr__sentinel *s)
{
    return s->master;
}

uint64_t lr__sentinel_switches(const struct lr__sentinel *s)
{
    return s->switches;
}

static void set_endpoint(struct lr__sentinel *s)
{
    const struct lr__uri_host *h = &s->hosts[s->cur];
    bool v6 = strchr(h->host, ':') != NULL;
    snprintf(s->endpoint, sizeof(s->endpoint), "%s%s%s:%u", v6 ? "[" : "", h->host,
             v6 ? "]" : "", h->port);
}

static void say(struct lr__sentinel *s, int status, const char *fmt1, const char *a,
                const char *b)
{
    char t[400];
    snprintf(t, sizeof(t), fmt1, a, b);
    lr__manager_store_error(s->m, status, "redis sentinel %s (master %s): %s", s->endpoint,
                            s->master, t);
}

static void resolved(struct lr__resolver *r, int status, const struct sockaddr *sa,
                     socklen_t len);
static void timer_fired(struct lr_timer *t);
static void done_run(struct lr__task *t);

int lr__sentinel_new(struct lr__sentinel **out, struct lr_manager *m, const struct lr__uri *u,
                     void *owner, const struct lr__sentinel_cbs *cbs)
{
    *out = NULL;
    if (!u->path[0] || strchr(u->path, '/') || strlen(u->path) >= 256)
        return -EINVAL; /* the master name */
    const char *su = lr__uri_param(u, "sentinel_user");
    const char *sp = lr__uri_param(u, "sentinel_password");
    if (su && !sp)
        return -EINVAL; /* an ACL user needs a password */
    struct lr__sentinel *s = lr__calloc(1, sizeof(*s));
    if (!s)
        return -ENOMEM;
    /* hosts: "h1[:p1],h2[:p2],..." (the URI keeps a list whole in host) */
    int rc = lr__uri_hosts(u, "127.0.0.1", SENTINEL_PORT, s->hosts, SENTINEL_MAX);
    if (rc < 0) {
        lr__free(s);
        return rc;
    }
    s->n = (unsigned)rc;
    s->m = m;
    s->owner = owner;
    s->cbs = cbs;
    s->loop = lr__manager_loop(m);
    snprintf(s->master, sizeof(s->master), "%s", u->path);
    s->has_user = su != NULL;
    s->has_password = sp != NULL;
    snprintf(s->user, sizeof(s->user), "%s", su ? su : "");
    snprintf(s->password, sizeof(s->password), "%s", sp ? sp : "");
    lr_timer_init(s->loop, &s->timer, timer_fired);
    s->timer.data = s;
    lr__task_init(&s->done_task, done_run);
    s->res.data = s;
    rc = lr__resolver_init(&s->res, s->loop, resolved);
    if (rc == 0) {
        rc = lr__conn_init(&s->net, s->loop, SENTINEL_OUT, &sentinel_net_cbs);
        if (rc < 0)
            lr__resolver_deinit(&s->res);
    }
    if (rc < 0) {
        lr__free(s);
        return rc;
    }
    s->net.data = s;
    set_endpoint(s);
    *out = s;
    return 0;
}

int lr__sentinel_tls(struct lr__sentinel *s, struct lr__tls_ctx *ctx)
{
    int rc = lr__tls_new(&s->tls, ctx, s->hosts[0].host);
    if (rc == 0)
        lr__conn_set_tls(&s->net, s->tls);
    return rc;
}

void lr__sentinel_free(struct lr__sentinel *s)
{
    if (!s)
        return;
    lr_timer_stop(&s->timer);
    lr__task_cancel(&s->done_task);
    lr__conn_deinit(&s->net);
    lr__tls_free(s->tls);
    lr__resolver_deinit(&s->res);
    explicit_bzero(s->password, sizeof(s->password));
    lr__free(s);
}

/* ------------------------------------------------------- the round */

/* Drop the connection (if any); afterwards try_current(), at once when
 * @at_once, else after a backoff. */
static void drop(struct lr__sentinel *s, bool at_once)
{
    lr_timer_stop(&s->timer);
    s->reconnect = at_once;
    if (s->state == S_CONNECTING || s->state == S_QUERY || s->state == S_SUBSCRIBED) {
        s->state = S_CLOSING;
        lr__conn_close(&s->net);
        return;
    }
    if (s->state == S_CLOSING)
        return;
    s->state = S_IDLE;
    uint64_t delay = at_once ? 0 : lr__manager_backoff(s->m, s->attempt);
    uint64_t cap = lr__manager_opts(s->m)->request_timeout_ms;
    lr_timer_start(&s->timer, lr_loop_now_ms(s->loop) + (delay < cap ? delay : cap));
}

/* The current sentinel failed (already told): move on to the next one. When
 * the whole list failed in a row, a waiting lookup gets LR_EUNAVAIL. */
static void sentinel_failed(struct lr__sentinel *s)
{
    s->cur = (s->cur + 1) % s->n;
    bool round_over = ++s->failed >= s->n;
    if (round_over) {
        s->failed = 0;
        if (s->attempt < 32)
            s->attempt++;
    }
    if (round_over && s->want) {
        s->want = false;
        lr__manager_store_error(s->m, LR_EUNAVAIL,
                                "redis sentinel: none of the %u sentinels gave the address of "
                                "master %s; trying again",
                                s->n, s->master);
        drop(s, false);
        set_endpoint(s);
        s->cbs->found(s->owner, LR_EUNAVAIL, NULL, 0); /* may close us: last */
        return;
    }
    /* within a round: the next sentinel at once; a new round after a backoff */
    drop(s, !round_over);
    set_endpoint(s);
}

static void timer_fired(struct lr_timer *t)
{
    struct lr__sentinel *s = t->data;
    if (s->state == S_IDLE) {
        try_current(s);
        return;
    }
    if (s->state == S_QUERY || s->state == S_CONNECTING || s->state == S_RESOLVING) {
        say(s, -ETIMEDOUT, "no answer within the request timeout%s%s", "", "");
        if (s->state == S_RESOLVING) { /* the lookup's answer will be ignored */
            s->state = S_IDLE;
            lr_timer_stop(&s->timer);
        }
        sentinel_failed(s);
    }
}

static void query_deadline(struct lr__sentinel *s)
{
    uint64_t to = lr__manager_opts(s->m)->request_timeout_ms;
    lr_timer_start(&s->timer, lr_loop_now_ms(s->loop) + (to < 1000 ? 1000 : to));
}

static void connect_now(struct lr__sentinel *s)
{
    s->state = S_CONNECTING;
    uint32_t to = lr__manager_opts(s->m)->request_timeout_ms;
    int rc = lr__conn_connect(&s->net, (struct sockaddr *)&s->sa, s->salen,
                              to < 1000 ? 1000 : to);
    if (rc < 0) {
        s->state = S_IDLE;
        say(s, rc, "connect: %s%s", lr_strerror(rc), "");
        sentinel_failed(s);
        return;
    }
    query_deadline(s);
}

static void resolved(struct lr__resolver *r, int status, const struct sockaddr *sa,
                     socklen_t len)
{
    struct lr__sentinel *s = r->data;
    if (s->state != S_RESOLVING || s->closing)
        return;
    if (status < 0) {
        s->state = S_IDLE;
        say(s, status, "name not resolved (%s)%s", lr__resolver_why(r), "");
        sentinel_failed(s);
        return;
    }
    memcpy(&s->sa, sa, len);
    s->salen = len;
    connect_now(s);
}

static void try_current(struct lr__sentinel *s)
{
    if (s->closing || s->state != S_IDLE)
        return;
    const struct lr__uri_host *h = &s->hosts[s->cur];
    set_endpoint(s);
    if (s->tls)
        lr__tls_set_host(s->tls, h->host); /* fits: lr__uri_hosts kept it under 256 */
    if (s->res.busy) { /* a lookup that timed out still runs: wait for it */
        lr_timer_start(&s->timer, lr_loop_now_ms(s->loop) + 10);
        return;
    }
    s->state = S_RESOLVING;
    int rc = lr__resolver_start(&s->res, h->host, h->port, &s->sa, &s->salen);
    if (rc == 1) {
        connect_now(s);
    } else if (rc < 0) {
        s->state = S_IDLE;
        say(s, rc, "name not resolved (%s)%s",
            lr__resolver_why(&s->res)[0] ? lr__resolver_why(&s->res) : lr_strerror(rc), "");
        sentinel_failed(s);
    } else {
        query_deadline(s);
    }
}

int lr__sentinel_lookup(struct lr__sentinel *s, struct sockaddr_storage *sa, socklen_t *len)
{
    if (s->closing)
        return LR_EUNAVAIL;
    uint64_t now = lr_loop_now_ms(s->loop);
    if (s->have_addr && (s->from_switch || now - s->addr_ms < FRESH_MS)) {
        s->from_switch = false;
        memcpy(sa, &s->addr, s->addrlen);
        *len = s->addrlen;
        return 1;
    }
    if (s->want)
        return 0; /* the query under way answers this one too */
    s->want = true;
    if (s->state == S_SUBSCRIBED) {
        drop(s, true); /* a subscribed connection cannot ask: ask on a new one */
    } else if (s->state == S_IDLE) {
        lr_timer_stop(&s->timer);
        lr_timer_start(&s->timer, now); /* never call back inside the lookup */
    }
    return 0;
}

void lr__sentinel_stale(struct lr__sentinel *s)
{
    s->have_addr = false;
    s->from_switch = false;
}

/* --------------------------------------------------------- replies */

static void send_query(struct lr__sentinel *s)
{
    size_t avail;
    char *w = lr__conn_wbuf(&s->net, &avail);
    size_t used = 0;
    int n;
    s->phase = P_ADDR;
    if (s->has_password) {
        struct lr_resp_arg a[3] = {{"AUTH", 4}};
        size_t argc = 1;
        if (s->has_user)
            a[argc++] = (struct lr_resp_arg){s->user, strlen(s->user)};
        a[argc++] = (struct lr_resp_arg){s->password, strlen(s->password)};
        n = lr_resp_write_cmd(w, avail, argc, a);
        if (n < 0)
            goto nobufs;
        used += (size_t)n;
        s->phase = P_AUTH;
    }
    struct lr_resp_arg q[3] = {{"SENTINEL", 8},
                               {"GET-MASTER-ADDR-BY-NAME", 23},
                               {s->master, strlen(s->master)}};
    n = lr_resp_write_cmd(w + used, avail - used, 3, q);
    if (n < 0)
        goto nobufs;
    used += (size_t)n;
    struct lr_resp_arg sub[2] = {{"SUBSCRIBE", 9}, {"+switch-master", 14}};
    n = lr_resp_write_cmd(w + used, avail - used, 2, sub);
    if (n < 0)
        goto nobufs;
    used += (size_t)n;
    lr__conn_commit(&s->net, used);
    return;
nobufs: /* cannot happen: every part is bounded far below the buffer */
    say(s, -ENOBUFS, "request does not fit%s%s", "", "");
    sentinel_failed(s);
}

static bool same_addr(const struct sockaddr_storage *a, socklen_t alen,
                      const struct sockaddr_storage *b, socklen_t blen)
{
    return alen == blen && !memcmp(a, b, alen);
}

/* A bad reply from the current sentinel: say what, and move on. */
static void bad_reply(struct lr__sentinel *s, const char *what)
{
    say(s, LR_EBADREPLY, "unexpected reply: %s%s", what, "");
    sentinel_failed(s);
}

static void addr_reply(struct lr__sentinel *s)
{
    if (s->r_type == LR_RESP_ERROR) {
        char e[FIELD_MAX + 1];
        snprintf(e, sizeof(e), "%.*s", (int)s->r_len[0], s->r_str[0]);
        say(s, LR_EUNAVAIL, "SENTINEL GET-MASTER-ADDR-BY-NAME refused: %s%s", e, "");
        sentinel_failed(s);
        return;
    }
    if (s->r_nil) { /* the sentinel does not monitor a master of that name */
        say(s, LR_EUNAVAIL, "this sentinel knows no master named \"%s\"%s", s->master, "");
        sentinel_failed(s);
        return;
    }
    uint16_t port;
    struct sockaddr_storage a;
    socklen_t alen;
    if (s->r_type != LR_RESP_ARRAY || s->r_bad || s->r_count != 2 || s->r_idx != 2 ||
        lr__uri_port(s->r_str[1], s->r_len[1], &port) < 0 ||
        lr__addr_numeric(s->r_str[0], s->r_len[0], port, &a, &alen) < 0) {
        bad_reply(s, "master address is not [ip, port]");
        return;
    }
    bool moved = s->have_addr && !s->want && !same_addr(&a, alen, &s->addr, s->addrlen);
    memcpy(&s->addr, &a, alen);
    s->addrlen = alen;
    s->have_addr = true;
    s->from_switch = false;
    s->addr_ms = lr_loop_now_ms(s->loop);
    s->phase = P_SUB;
    s->failed = 0;
    s->attempt = 0;
    if (s->want) {
        s->want = false;
        s->cbs->found(s->owner, 0, (struct sockaddr *)&a, alen); /* may close us */
    } else if (moved) {
        /* a failover whose +switch-master this connection missed */
        lr__log(LR_LOG_WARN, "redis sentinel %s (master %s): the master is now %.*s:%.*s",
                s->endpoint, s->master, (int)s->r_len[0], s->r_str[0], (int)s->r_len[1],
                s->r_str[1]);
        s->switches++;
        s->cbs->moved(s->owner, (struct sockaddr *)&a, alen);
    }
}

/* "+switch-master" payload: "<name> <old ip> <old port> <new ip> <new port>". */
static void switch_message(struct lr__sentinel *s)
{
    const char *p = s->r_str[2];
    size_t len = s->r_len[2];
    const char *w[5];
    size_t wl[5];
    size_t nw = 0, i = 0;
    while (i < len && nw < 5) {
        while (i < len && p[i] == ' ')
            i++;
        if (i == len)
            break;
        w[nw] = p + i;
        while (i < len && p[i] != ' ')
            i++;
        wl[nw] = (size_t)(p + i - w[nw]);
        nw++;
    }
    if (nw != 5) {
        bad_reply(s, "+switch-master message is not 5 words");
        return;
    }
    if (wl[0] != strlen(s->master) || memcmp(w[0], s->master, wl[0]))
        return; /* another master's failover */
    uint16_t port;
    struct sockaddr_storage a;
    socklen_t alen;
    if (lr__uri_port(w[4], wl[4], &port) < 0 ||
        lr__addr_numeric(w[3], wl[3], port, &a, &alen) < 0) {
        bad_reply(s, "+switch-master names no ip and port");
        return;
    }
    char t[160];
    snprintf(t, sizeof(t), "%.*s:%.*s", (int)wl[3], w[3], (int)wl[4], w[4]);
    say(s, -ECONNRESET, "+switch-master: the master is now %s; reconnecting%s", t, "");
    memcpy(&s->addr, &a, alen);
    s->addrlen = alen;
    s->have_addr = true;
    s->from_switch = true;
    s->addr_ms = lr_loop_now_ms(s->loop);
    s->switches++;
    s->cbs->moved(s->owner, (struct sockaddr *)&a, alen);
}

static bool str_is(const struct lr__sentinel *s, unsigned i, const char *lit)
{
    return s->r_len[i] == strlen(lit) && !memcmp(s->r_str[i], lit, s->r_len[i]);
}

static void reply_done(struct lr__sentinel *s)
{
    s->r_active = false;
    switch (s->phase) {
    case P_AUTH:
        if (s->r_type == LR_RESP_ERROR) {
            char e[FIELD_MAX + 1];
            snprintf(e, sizeof(e), "%.*s", (int)s->r_len[0], s->r_str[0]);
            say(s, LR_EAUTH, "auth refused: %s%s", e, "");
            sentinel_failed(s);
        } else if (s->r_type != LR_RESP_SIMPLE) {
            bad_reply(s, "AUTH answered with no status");
        } else {
            s->phase = P_ADDR;
        }
        return;
    case P_ADDR:
        addr_reply(s);
        return;
    case P_SUB:
        if (s->r_type != LR_RESP_ARRAY && s->r_type != LR_RESP_PUSH) {
            bad_reply(s, "SUBSCRIBE not confirmed");
            return;
        }
        if (s->r_bad || s->r_idx != 3 || !str_is(s, 0, "subscribe")) {
            bad_reply(s, "SUBSCRIBE not confirmed");
            return;
        }
        s->phase = P_MSG;
        s->state = S_SUBSCRIBED;
        lr_timer_stop(&s->timer); /* no deadline while listening */
        return;
    default:
        if ((s->r_type != LR_RESP_ARRAY && s->r_type != LR_RESP_PUSH) || s->r_bad ||
            s->r_idx != 3 || !str_is(s, 0, "message") || !str_is(s, 1, "+switch-master")) {
            bad_reply(s, "not a +switch-master message");
            return;
        }
        switch_message(s);
        return;
    }
}

static void on_token(struct lr__sentinel *s, const struct lr_resp_token *t)
{
    if (!s->r_active) {
        s->r_active = true;
        s->r_bad = false;
        s->r_nil = t->nil;
        s->r_type = t->type == LR_RESP_BLOBERR ? LR_RESP_ERROR : t->type;
        s->r_count = t->integer;
        s->r_idx = 0;
        memset(s->r_len, 0, sizeof(s->r_len));
        if (t->type == LR_RESP_NULL)
            s->r_nil = true;
        if (s->r_type == LR_RESP_ERROR || t->type == LR_RESP_SIMPLE) {
            size_t n = t->len < FIELD_MAX ? t->len : FIELD_MAX;
            memcpy(s->r_str[0], t->str, n);
            s->r_len[0] = (uint16_t)n;
        }
    } else if (t->depth == 1) {
        int64_t i = s->r_idx++;
        if (i < 3 && (t->type == LR_RESP_BULK || t->type == LR_RESP_SIMPLE) && !t->nil &&
            t->len <= FIELD_MAX) {
            memcpy(s->r_str[i], t->str, t->len);
            s->r_len[i] = (uint16_t)t->len;
        } else if (i < 3 && t->type == LR_RESP_INT && i == 2) {
            s->r_len[i] = 0; /* the subscription count */
        } else {
            s->r_bad = true;
        }
    } else {
        s->r_bad = true; /* nothing we expect nests deeper */
    }
    if (t->last)
        reply_done(s);
}

/* ------------------------------------------------------ connection */

static void on_connect(struct lr__conn *nc, int status)
{
    struct lr__sentinel *s = nc->data;
    if (s->closing || s->state != S_CONNECTING)
        return;
    if (status < 0) {
        s->state = S_IDLE; /* a failed connect leaves the connection idle */
        if (status == LR_ETLS && s->tls)
            say(s, status, "TLS: %s%s", lr__tls_error_text(s->tls), "");
        else
            say(s, status, "connect: %s%s", lr_strerror(status), "");
        sentinel_failed(s);
        return;
    }
    s->state = S_QUERY;
    lr_resp_parser_init(&s->parser);
    s->r_active = false;
    send_query(s);
}

static void on_data(struct lr__conn *nc, const char *buf, size_t len)
{
    struct lr__sentinel *s = nc->data;
    size_t off = 0;
    while (off < len && (s->state == S_QUERY || s->state == S_SUBSCRIBED)) {
        struct lr_resp_token t;
        int rc = lr_resp_parse(&s->parser, buf + off, len - off, &t);
        if (rc == -EAGAIN)
            return;
        if (rc < 0) {
            bad_reply(s, "malformed RESP");
            return;
        }
        off += (size_t)rc;
        on_token(s, &t);
    }
}

static void on_error(struct lr__conn *nc, int err)
{
    struct lr__sentinel *s = nc->data;
    if (s->closing || (s->state != S_QUERY && s->state != S_SUBSCRIBED &&
                       s->state != S_CONNECTING)) {
        lr__conn_close(nc);
        return;
    }
    if (err == LR_ETLS && s->tls)
        say(s, err, "TLS: %s%s", lr__tls_error_text(s->tls), "");
    else
        say(s, err, "connection lost: %s%s", lr_strerror(err), "");
    if (s->state == S_SUBSCRIBED) {
        /* the answer we gave still stands; listen again on the next sentinel */
        s->cur = (s->cur + 1) % s->n;
        drop(s, false);
        return;
    }
    sentinel_failed(s);
}

static void closed_part(struct lr__sentinel *s)
{
    if (--s->to_close == 0)
        lr__loop_defer(s->loop, &s->done_task);
}

static void on_close(struct lr__conn *nc)
{
    struct lr__sentinel *s = nc->data;
    if (s->closing) {
        closed_part(s);
        return;
    }
    s->state = S_IDLE;
    bool at_once = s->reconnect;
    s->reconnect = false;
    uint64_t delay = at_once ? 0 : lr__manager_backoff(s->m, s->attempt);
    uint64_t cap = lr__manager_opts(s->m)->request_timeout_ms;
    lr_timer_stop(&s->timer);
    lr_timer_start(&s->timer, lr_loop_now_ms(s->loop) + (delay < cap ? delay : cap));
}

static const struct lr__conn_cbs sentinel_net_cbs = {
    .on_connect = on_connect,
    .on_data = on_data,
    .on_error = on_error,
    .on_close = on_close,
};

static void resolver_closed(struct lr__resolver *r)
{
    closed_part(r->data);
}

static void done_run(struct lr__task *t)
{
    struct lr__sentinel *s = lr_container_of(t, struct lr__sentinel, done_task);
    s->done(s->done_arg);
}

void lr__sentinel_close(struct lr__sentinel *s, void (*done)(void *arg), void *arg)
{
    s->closing = true;
    s->want = false;
    s->done = done;
    s->done_arg = arg;
    s->to_close = 2;
    lr_timer_stop(&s->timer);
    lr__conn_close(&s->net);
    lr__resolver_close(&s->res, resolver_closed);
}
