/* SPDX-License-Identifier: MIT */
/* fake_cosmos.c - see fake_cosmos.h. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "fake_cosmos.h"

#define IN_CAP (FC_HEAD_MAX + 4 * FC_BODY_MAX)
#define SEND_TIMEOUT_S 2

struct conn {
    int fd; /* -1: free */
    int num;
    size_t len;
    char in[IN_CAP];
};

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

int fc_header(const char *head, const char *name, char *out, size_t cap)
{
    size_t nl = strlen(name);
    for (const char *p = strstr(head, "\r\n"); p; p = strstr(p, "\r\n")) {
        p += 2;
        if (strncasecmp(p, name, nl) == 0 && p[nl] == ':') {
            const char *v = p + nl + 1;
            while (*v == ' ')
                v++;
            size_t n = strcspn(v, "\r\n");
            if (cap == 0)
                return -ENOENT;
            if (n >= cap)
                n = cap - 1;
            memcpy(out, v, n);
            out[n] = '\0';
            return (int)n;
        }
    }
    return -ENOENT;
}

static const char *reason(int status)
{
    switch (status) {
    case 200: return "Ok";
    case 201: return "Created";
    case 204: return "No Content";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 409: return "Conflict";
    case 412: return "Precondition Failed";
    case 429: return "Too Many Requests";
    case 449: return "Retry With";
    case 503: return "Service Unavailable";
    default: return "Status";
    }
}

static int send_all(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* The first rule that fits @r, used once (under the lock). */
static bool pick_rule(struct fake_cosmos *f, const struct fc_request *r, struct fc_rule *out)
{
    for (int i = 0; i < f->nrules; i++) {
        struct fc_rule *x = &f->rules[i];
        if (x->times == 0)
            continue;
        if (x->method && strcmp(x->method, r->method))
            continue;
        if (x->path_has && !strstr(r->path, x->path_has))
            continue;
        if (x->times > 0)
            x->times--;
        *out = *x;
        return true;
    }
    return false;
}

/* Answer one request. Returns 0 to keep the connection, -1 to close it. */
static int answer(struct fake_cosmos *f, struct conn *c, const struct fc_request *r)
{
    struct fc_rule rule = {0};
    unsigned etag;
    pthread_mutex_lock(&f->mu);
    bool scripted = pick_rule(f, r, &rule);
    etag = ++f->etag_seq;
    pthread_mutex_unlock(&f->mu);

    static __thread char body[FC_BODY_MAX + 64];
    const char *b = rule.body ? rule.body : "";
    size_t blen = rule.body_len ? rule.body_len : strlen(b);
    if (!scripted) {
        /* What lets a lease work: create 201, replace 200, the document
         * back with its _etag; read 404; delete 204. */
        if (!strcmp(r->method, "POST") || !strcmp(r->method, "PUT")) {
            rule.status = r->method[1] == 'O' ? 201 : 200;
            size_t n = r->body_len < FC_BODY_MAX ? r->body_len : 0;
            while (n && r->body[n - 1] != '}')
                n--;
            if (n > 1) {
                int k = snprintf(body, sizeof(body), "%.*s%s\"_etag\":\"\\\"e%u\\\"\"}",
                                 (int)(n - 1), r->body, n > 2 ? "," : "", etag);
                b = body;
                blen = (size_t)k;
            }
        } else if (!strcmp(r->method, "DELETE")) {
            rule.status = 204;
        } else {
            rule.status = 404;
            b = "{\"code\":\"NotFound\",\"message\":\"Entity with the specified id does not "
                "exist in the system.\"}";
            blen = strlen(b);
        }
    }
    char head[1024];
    int hl = snprintf(head, sizeof(head),
                      "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\n"
                      "Content-Length: %zu\r\nx-ms-request-charge: 1\r\n",
                      rule.status, reason(rule.status), blen);
    if (rule.status >= 200 && rule.status < 300 && !rule.no_etag)
        hl += snprintf(head + hl, sizeof(head) - (size_t)hl, "etag: \"e%u\"\r\n", etag);
    hl += snprintf(head + hl, sizeof(head) - (size_t)hl, "%s\r\n",
                   rule.headers ? rule.headers : "");
    if (send_all(c->fd, head, (size_t)hl) < 0)
        return -1;
    if (rule.cut == FC_TRUNCATE) {
        send_all(c->fd, b, blen / 2);
        return -1;
    }
    return send_all(c->fd, b, blen);
}

/* Record and answer every complete request in c->in. Returns -1 to close. */
static int serve_buffer(struct fake_cosmos *f, struct conn *c)
{
    for (;;) {
        c->in[c->len] = '\0';
        char *end = strstr(c->in, "\r\n\r\n");
        if (!end)
            return c->len >= FC_HEAD_MAX ? -1 : 0;
        size_t hlen = (size_t)(end - c->in) + 4;
        char cl[32];
        size_t blen = 0;
        c->in[hlen - 2] = '\0'; /* fc_header stops at the head's end */
        if (fc_header(c->in, "Content-Length", cl, sizeof(cl)) > 0)
            blen = strtoul(cl, NULL, 10);
        c->in[hlen - 2] = '\r';
        if (hlen + blen > IN_CAP - 1)
            return -1;
        if (c->len < hlen + blen)
            return 0;
        struct fc_request *r = calloc(1, sizeof(*r));
        if (!r)
            return -1;
        memcpy(r->head, c->in, hlen < FC_HEAD_MAX ? hlen : FC_HEAD_MAX - 1);
        sscanf(r->head, "%7s %511s", r->method, r->path);
        r->body_len = blen;
        memcpy(r->body, c->in + hlen, blen < FC_BODY_MAX ? blen : FC_BODY_MAX - 1);
        r->at_ns = now_ns();
        r->conn = c->num;
        pthread_mutex_lock(&f->mu);
        if (f->nreqs < FC_MAX_REQS)
            f->reqs[f->nreqs++] = *r;
        pthread_mutex_unlock(&f->mu);
        int rc = answer(f, c, r);
        free(r);
        memmove(c->in, c->in + hlen + blen, c->len - hlen - blen);
        c->len -= hlen + blen;
        if (rc < 0)
            return -1;
    }
}

static void *serve(void *arg)
{
    struct fake_cosmos *f = arg;
    struct conn *conns = calloc(FC_MAX_CONNS, sizeof(*conns));
    if (!conns)
        return NULL;
    for (int i = 0; i < FC_MAX_CONNS; i++)
        conns[i].fd = -1;
    for (;;) {
        struct pollfd p[FC_MAX_CONNS + 2];
        int idx[FC_MAX_CONNS + 2];
        int n = 0;
        p[n++] = (struct pollfd){.fd = f->stop_pipe[0], .events = POLLIN};
        p[n++] = (struct pollfd){.fd = f->listen_fd, .events = POLLIN};
        for (int i = 0; i < FC_MAX_CONNS; i++)
            if (conns[i].fd >= 0) {
                idx[n] = i;
                p[n++] = (struct pollfd){.fd = conns[i].fd, .events = POLLIN};
            }
        if (poll(p, (nfds_t)n, -1) < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        if (p[0].revents)
            break;
        if (p[1].revents & POLLIN) {
            int fd = accept4(f->listen_fd, NULL, NULL, SOCK_CLOEXEC);
            if (fd >= 0) {
                struct timeval tv = {.tv_sec = SEND_TIMEOUT_S};
                setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
                int slot = -1;
                for (int i = 0; i < FC_MAX_CONNS && slot < 0; i++)
                    if (conns[i].fd < 0)
                        slot = i;
                pthread_mutex_lock(&f->mu);
                int num = ++f->conns;
                pthread_mutex_unlock(&f->mu);
                if (slot < 0) {
                    close(fd);
                } else {
                    conns[slot].fd = fd;
                    conns[slot].num = num;
                    conns[slot].len = 0;
                }
            }
        }
        for (int k = 2; k < n; k++) {
            if (!p[k].revents)
                continue;
            struct conn *c = &conns[idx[k]];
            ssize_t got = recv(c->fd, c->in + c->len, IN_CAP - 1 - c->len, MSG_DONTWAIT);
            if (got < 0 && (errno == EAGAIN || errno == EINTR))
                continue;
            if (got <= 0) {
                close(c->fd);
                c->fd = -1;
                continue;
            }
            c->len += (size_t)got;
            if (serve_buffer(f, c) < 0) {
                close(c->fd);
                c->fd = -1;
            }
        }
    }
    for (int i = 0; i < FC_MAX_CONNS; i++)
        if (conns[i].fd >= 0)
            close(conns[i].fd);
    free(conns);
    return NULL;
}

int fc_start(struct fake_cosmos *f)
{
    memset(f, 0, sizeof(*f));
    f->listen_fd = -1;
    f->stop_pipe[0] = f->stop_pipe[1] = -1;
    pthread_mutex_init(&f->mu, NULL);
    f->reqs = calloc(FC_MAX_REQS, sizeof(*f->reqs));
    if (!f->reqs)
        return -ENOMEM;
    if (pipe2(f->stop_pipe, O_CLOEXEC) < 0)
        return -errno;
    f->listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (f->listen_fd < 0)
        return -errno;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t al = sizeof(a);
    if (bind(f->listen_fd, (struct sockaddr *)&a, sizeof(a)) < 0 ||
        listen(f->listen_fd, 64) < 0 ||
        getsockname(f->listen_fd, (struct sockaddr *)&a, &al) < 0)
        return -errno;
    f->port = ntohs(a.sin_port);
    int rc = pthread_create(&f->thread, NULL, serve, f);
    if (rc) {
        f->port = 0;
        return -rc;
    }
    return 0;
}

void fc_stop(struct fake_cosmos *f)
{
    if (f->port && f->stop_pipe[1] >= 0) {
        if (write(f->stop_pipe[1], "x", 1) != 1)
            perror("fake_cosmos: stop");
        pthread_join(f->thread, NULL);
        f->port = 0;
    }
    for (int i = 0; i < 2; i++)
        if (f->stop_pipe[i] >= 0)
            close(f->stop_pipe[i]);
    f->stop_pipe[0] = f->stop_pipe[1] = -1;
    if (f->listen_fd >= 0)
        close(f->listen_fd);
    f->listen_fd = -1;
    free(f->reqs);
    f->reqs = NULL;
    pthread_mutex_destroy(&f->mu);
}

int fc_script(struct fake_cosmos *f, const struct fc_rule *r)
{
    pthread_mutex_lock(&f->mu);
    int rc = -ENOSPC;
    if (f->nrules < FC_MAX_RULES) {
        f->rules[f->nrules++] = *r;
        rc = 0;
    }
    pthread_mutex_unlock(&f->mu);
    return rc;
}

void fc_script_clear(struct fake_cosmos *f)
{
    pthread_mutex_lock(&f->mu);
    f->nrules = 0;
    pthread_mutex_unlock(&f->mu);
}

int fc_count(struct fake_cosmos *f, const char *method)
{
    pthread_mutex_lock(&f->mu);
    int n = 0;
    for (int i = 0; i < f->nreqs; i++)
        n += !method || !strcmp(f->reqs[i].method, method);
    pthread_mutex_unlock(&f->mu);
    return n;
}

int fc_request(struct fake_cosmos *f, int i, struct fc_request *out)
{
    pthread_mutex_lock(&f->mu);
    int rc = -ENOENT;
    if (i >= 0 && i < f->nreqs) {
        *out = f->reqs[i];
        rc = 0;
    }
    pthread_mutex_unlock(&f->mu);
    return rc;
}

int fc_connections(struct fake_cosmos *f)
{
    pthread_mutex_lock(&f->mu);
    int n = f->conns;
    pthread_mutex_unlock(&f->mu);
    return n;
}
