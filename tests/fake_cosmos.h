/* SPDX-License-Identifier: MIT */
/*
 * fake_cosmos.h - a fake Cosmos DB server on a thread, for what the emulator
 * (tests/cosmos.h, which checks neither signatures nor throttles) cannot do:
 * answer a request with a scripted status, headers and body (429 with
 * x-ms-retry-after-ms, 449, 503, 401, 403, 404, a body that is not JSON, cut
 * short or too large, no etag), and record every request it got.
 *
 * It listens on 127.0.0.1, a port the kernel picks, and serves up to
 * FC_MAX_CONNS keep-alive connections at once from one thread (poll), so
 * requests are answered, recorded and matched against the script in the
 * order they arrive. What is not scripted gets a plain answer that lets a
 * lease work: POST (create) 201, PUT (replace) 200, both with the request's
 * document as body plus "_etag", and a fresh `etag` header ("e<N>"); GET 404;
 * DELETE 204.
 *
 * Not thread-safe on its own: fc_* functions lock the server's mutex, so the
 * test thread may script and read while the server thread answers.
 */
#ifndef LR_TEST_FAKE_COSMOS_H
#define LR_TEST_FAKE_COSMOS_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define FC_MAX_CONNS 16
#define FC_MAX_RULES 32
#define FC_MAX_REQS 1024
#define FC_HEAD_MAX 4096
#define FC_BODY_MAX 4096

/* How a rule answers. */
enum fc_cut {
    FC_WHOLE = 0,  /* the whole answer */
    FC_TRUNCATE,   /* Content-Length of the whole body, half of it sent, then close */
};

/* One scripted answer, used by the next @times requests whose method is
 * @method (NULL: any) and whose path contains @path_has (NULL: any). */
struct fc_rule {
    const char *method;
    const char *path_has;
    int status;
    const char *headers;   /* extra header lines, each ending "\r\n" (NULL: none) */
    const char *body;      /* caller's storage, alive until fc_stop (NULL: "") */
    size_t body_len;       /* 0: strlen(body) */
    enum fc_cut cut;
    bool no_etag;          /* a 2xx without the etag header */
    int times;             /* requests it answers; < 0: all from now on */
};

/* One request as received. */
struct fc_request {
    char method[8];
    char path[512];
    char head[FC_HEAD_MAX];  /* request line and headers, as sent */
    char body[FC_BODY_MAX];  /* NUL-terminated, cut at FC_BODY_MAX - 1 */
    size_t body_len;         /* the real length */
    uint64_t at_ns;          /* CLOCK_MONOTONIC when it was complete */
    int conn;                /* connection number, from 1 in accept order */
};

struct fake_cosmos {
    int port;
    /* private */
    int listen_fd;
    int stop_pipe[2];
    pthread_t thread;
    pthread_mutex_t mu;
    struct fc_rule rules[FC_MAX_RULES];
    int nrules;
    struct fc_request *reqs; /* FC_MAX_REQS */
    int nreqs;
    int conns;               /* accepted so far */
    unsigned etag_seq;
};

/* Start listening and serving. Returns 0 or -errno. */
int fc_start(struct fake_cosmos *f);
/* Stop the thread, close every connection, free. Safe after a failed start. */
void fc_stop(struct fake_cosmos *f);

/* Add @r to the end of the script. Returns 0, or -ENOSPC. */
int fc_script(struct fake_cosmos *f, const struct fc_rule *r);
/* Forget the script (requests stay recorded). */
void fc_script_clear(struct fake_cosmos *f);

/* Requests recorded so far (all, or those with @method). */
int fc_count(struct fake_cosmos *f, const char *method);
/* Copy request @i (0-based, arrival order) into @out. Returns 0 or -ENOENT. */
int fc_request(struct fake_cosmos *f, int i, struct fc_request *out);
/* Connections accepted so far. */
int fc_connections(struct fake_cosmos *f);

/* The value of header @name (case-insensitive) in request head @head, copied
 * into out[0..cap). Returns its length, or -ENOENT. */
int fc_header(const char *head, const char *name, char *out, size_t cap);

#endif
