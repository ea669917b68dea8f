/* SPDX-License-Identifier: MIT */
/*
 * status.c - "leasering status": who holds each of some lease names.
 *
 *   leasering status --backend URI [--json] NAME...
 *
 * One lr_manager_inspect() per name, all in flight at once, on a manager of
 * its own (it holds nothing). For each name: free, or held with the
 * holder (its identity when the store has one, else its owner token), the
 * owner token, the fence, the remaining TTL as the store counts it, and the
 * metadata. --json prints one JSON document: an array with an object per
 * name, in the order given.
 * Exit status: 0 when every name was answered (free names too), 2 for bad
 * arguments, 1 when the store could not be read (stderr says why: the
 * store's own error text when there is one).
 * Layer: public API only.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include <leasering.h>

/* Every name is answered within the request timeout of a store that
 * answers; this bounds a store that accepts connections and never answers
 * (the backends time requests out on their own first). */
#define STATUS_DEADLINE_MS 15000u
/* A TTL every backend accepts (Azure Blob: whole seconds, 15..60). */
#define STATUS_TTL_MS 15000u

const char status_usage[] =
    "usage: leasering status --backend URI [--json] NAME...\n"
    "\n"
    "Reads who holds each NAME in the store at URI (below), without taking it:\n"
    "free, or held, with the holder (its identity -- lr_manager_opts.identity,\n"
    "by default HOST:PID -- or, for a lease written without one, its owner\n"
    "token), the owner token, the fence, the remaining TTL as the store counts\n"
    "it (Azure Blob does not say: \"-\", null in JSON) and the lease's metadata.\n"
    "--json prints one JSON array with an object per NAME: name, held, holder,\n"
    "token, fence, ttl_ms, metadata (an object); holder, token, fence and\n"
    "ttl_ms are null for a free name.\n"
    "Options take \"--opt value\" or \"--opt=value\"; \"--\" ends them.\n"
    "Exit: 0 every NAME answered (free or held); 2 bad arguments; 1 the store\n"
    "could not be read (stderr says why).\n";

struct status;

struct answer {
    struct status *run;
    const char *name;
    int done;
    int status;
    int held;
    uint64_t fence;
    int64_t ttl_ms;
    char holder[LR_IDENTITY_MAX + 1];
    char token[33];
    size_t meta_len;
    char *meta;
};

struct status {
    struct lr_loop *loop;
    struct lr_manager *m;
    struct answer *a;
    size_t n;
    size_t pending;
    struct lr_timer deadline;
    int timed_out;
};

static void copy_str(char *dst, size_t cap, const char *src)
{
    size_t n = strlen(src);
    if (n >= cap)
        n = cap - 1;
    memcpy(dst, src, n);
    dst[n] = '\0';
}

static void closed(struct lr_manager *m, void *arg)
{
    (void)m;
    lr_loop_stop(arg);
}

static void one_done(struct status *s)
{
    if (--s->pending == 0) {
        lr_timer_stop(&s->deadline);
        lr_manager_close(s->m, closed, s->loop);
    }
}

static void answered(void *arg, int status, const struct lr_inspect *info)
{
    struct answer *a = arg;
    a->done = 1;
    a->status = status;
    if (status == 0 && info->held) {
        a->held = 1;
        a->fence = info->fence;
        a->ttl_ms = info->ttl_ms;
        copy_str(a->holder, sizeof(a->holder), info->holder);
        copy_str(a->token, sizeof(a->token), info->token);
        if (info->meta_len && (a->meta = malloc(info->meta_len)) != NULL) {
            memcpy(a->meta, info->meta, info->meta_len);
            a->meta_len = info->meta_len;
        }
    }
    one_done(a->run);
}

static void deadline_fired(struct lr_timer *t)
{
    struct status *s = t->data;
    s->timed_out = 1;
    lr_manager_close(s->m, closed, s->loop); /* the rest get -ECANCELED */
}

/* ---- output ---- */

/* Length of the valid UTF-8 sequence at @p (at most @n bytes), or 0. */
static size_t utf8_len(const unsigned char *p, size_t n)
{
    size_t len = p[0] < 0x80             ? 1
                 : (p[0] & 0xe0) == 0xc0 ? 2
                 : (p[0] & 0xf0) == 0xe0 ? 3
                 : (p[0] & 0xf8) == 0xf0 ? 4
                                         : 0;
    if (!len || len > n || (len == 2 && p[0] < 0xc2) || (len == 4 && p[0] > 0xf4))
        return 0;
    for (size_t i = 1; i < len; i++)
        if ((p[i] & 0xc0) != 0x80)
            return 0;
    return len;
}

/* @s as a JSON string: quotes, backslashes and control bytes escaped,
 * bytes that are not UTF-8 replaced by U+FFFD (the output stays valid). */
static void json_str(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t n = strlen(s);
    putchar('"');
    for (size_t i = 0; i < n;) {
        unsigned char ch = p[i];
        size_t len = utf8_len(p + i, n - i);
        if (ch == '"' || ch == '\\') {
            printf("\\%c", ch);
        } else if (ch < 0x20 || ch == 0x7f) {
            printf("\\u%04x", ch);
        } else if (!len) {
            fputs("\\ufffd", stdout);
            len = 1;
        } else {
            fwrite(p + i, 1, len, stdout);
        }
        i += len ? len : 1;
    }
    putchar('"');
}

static void print_json(const struct status *s)
{
    putchar('[');
    for (size_t i = 0; i < s->n; i++) {
        const struct answer *a = &s->a[i];
        fputs(i ? ",\n {\"name\": " : "\n {\"name\": ", stdout);
        json_str(a->name);
        printf(", \"held\": %s", a->held ? "true" : "false");
        if (a->held) {
            fputs(", \"holder\": ", stdout);
            json_str(a->holder);
            fputs(", \"token\": ", stdout);
            if (a->token[0])
                json_str(a->token);
            else
                fputs("null", stdout);
            printf(", \"fence\": %" PRIu64 ", \"ttl_ms\": ", a->fence);
            if (a->ttl_ms >= 0)
                printf("%" PRId64, a->ttl_ms);
            else
                fputs("null", stdout);
        } else {
            fputs(", \"holder\": null, \"token\": null, \"fence\": null, \"ttl_ms\": null", stdout);
        }
        fputs(", \"metadata\": {", stdout);
        for (size_t off = 0, k = 0; off < a->meta_len; k++) {
            const char *key = a->meta + off, *v = key + strlen(key) + 1;
            fputs(k ? ", " : "", stdout);
            json_str(key);
            fputs(": ", stdout);
            json_str(v);
            off = (size_t)(v - a->meta) + strlen(v) + 1;
        }
        fputs("}}", stdout);
    }
    fputs(s->n ? "\n]\n" : "]\n", stdout);
}

static void print_text(const struct status *s)
{
    for (size_t i = 0; i < s->n; i++) {
        const struct answer *a = &s->a[i];
        if (a->status)
            continue; /* said on stderr */
        if (!a->held) {
            printf("%s: free\n", a->name);
            continue;
        }
        printf("%s: held by %s\n", a->name, a->holder);
        printf("  token   %s\n", a->token[0] ? a->token : "-");
        printf("  fence   %" PRIu64 "\n", a->fence);
        if (a->ttl_ms >= 0)
            printf("  ttl     %" PRId64 " ms\n", a->ttl_ms);
        else
            printf("  ttl     - (the store does not say)\n");
        for (size_t off = 0; off < a->meta_len;) {
            const char *key = a->meta + off, *v = key + strlen(key) + 1;
            printf("  meta    %s=%s\n", key, v);
            off = (size_t)(v - a->meta) + strlen(v) + 1;
        }
    }
}

/* ---- arguments ---- */

static int usage_error(const char *fmt, const char *what)
{
    fputs("leasering status: ", stderr);
    fprintf(stderr, fmt, what);
    fputs("\nusage: leasering status --backend URI [--json] NAME... (leasering status --help)\n",
          stderr);
    return 2;
}

int status_main(int argc, char **argv)
{
    const char *backend = NULL;
    int json = 0;
    const struct opt opts[] = {
        {"--backend", OPT_STR, &backend, 0, 0},
        {"--json", OPT_FLAG, &json, 0, 0},
    };
    struct status s = {0};
    /* Options go to the shared parser (cli_parse), the NAMEs -- every other
     * word, and everything after "--" -- are kept here. */
    char **optv = calloc((size_t)argc + 1, sizeof(*optv));
    char **names = calloc((size_t)argc + 1, sizeof(*names));
    if (!optv || !names) {
        free(optv);
        free(names);
        fputs("leasering status: out of memory\n", stderr);
        return 1;
    }
    int nopt = 0, rest = 0;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (!rest && !strcmp(a, "--")) {
            rest = 1;
        } else if (!rest && (!strncmp(a, "--", 2) || !strcmp(a, "-h"))) {
            optv[nopt++] = argv[i];
            if (!strcmp(a, "--backend") && i + 1 < argc)
                optv[nopt++] = argv[++i];
        } else {
            names[s.n++] = argv[i];
        }
    }
    int rc = cli_parse("status", opts, sizeof(opts) / sizeof(opts[0]), nopt, optv, 0, status_usage);
    free(optv);
    if (rc < 0) {
        free(names);
        return 2;
    }
    static const char *const required[] = {"--backend"};
    if (cli_require("status", opts, sizeof(opts) / sizeof(opts[0]), required, 1) < 0) {
        free(names);
        fputs("usage: leasering status --backend URI [--json] NAME... (leasering status --help)\n",
              stderr);
        return 2;
    }
    if (!*backend) {
        free(names);
        return usage_error("%s", "--backend needs a store URI");
    }
    if (!s.n) {
        free(names);
        return usage_error("%s", "at least one NAME is required");
    }
    for (size_t i = 0; i < s.n; i++) {
        size_t len = strlen(names[i]);
        if (!len || len > LR_NAME_MAX) {
            free(names);
            fprintf(stderr, "leasering status: a NAME is 1 to %d bytes\n", LR_NAME_MAX);
            return 2;
        }
    }

    rc = lr_loop_new(&s.loop, NULL);
    if (rc < 0) {
        fprintf(stderr, "leasering status: cannot create the loop: %s\n", lr_strerror(rc));
        free(names);
        return 1;
    }
    struct lr_manager_opts o = {.ttl_ms = STATUS_TTL_MS, .max_leases = 1};
    rc = lr_manager_new(&s.m, s.loop, backend, &o);
    if (rc == -EINVAL || rc == -EPROTONOSUPPORT) {
        fprintf(stderr, "leasering status: bad --backend URI: %s\n", lr_strerror(rc));
        lr_loop_free(s.loop);
        free(names);
        return 2;
    }
    if (rc < 0) {
        fprintf(stderr, "leasering status: cannot use the store: %s\n", lr_strerror(rc));
        lr_loop_free(s.loop);
        free(names);
        return 1;
    }
    s.a = calloc(s.n, sizeof(*s.a));
    if (!s.a) {
        fputs("leasering status: out of memory\n", stderr);
        lr_manager_free(s.m);
        lr_loop_free(s.loop);
        free(names);
        return 1;
    }
    for (size_t i = 0; i < s.n; i++) {
        struct answer *a = &s.a[i];
        a->name = names[i];
        a->ttl_ms = -1;
        a->run = &s;
        rc = lr_manager_inspect(s.m, a->name, answered, a);
        if (rc < 0) {
            a->done = 1;
            a->status = rc;
        } else {
            s.pending++;
        }
    }
    lr_timer_init(s.loop, &s.deadline, deadline_fired);
    s.deadline.data = &s;
    if (s.pending) {
        lr_timer_start(&s.deadline, lr_loop_now_ms(s.loop) + STATUS_DEADLINE_MS);
        rc = lr_loop_run(s.loop);
    } else {
        lr_manager_close(s.m, closed, s.loop);
        rc = lr_loop_run(s.loop);
    }
    int failed = rc < 0;
    char why[200];
    int last = lr_manager_last_error(s.m, why, sizeof(why));
    for (size_t i = 0; i < s.n; i++) {
        const struct answer *a = &s.a[i];
        if (!a->status)
            continue;
        failed = 1;
        int st = s.timed_out && a->status == -ECANCELED ? -ETIMEDOUT : a->status;
        fprintf(stderr, "leasering status: %s: cannot read it: %s%s%s%s\n", a->name,
                lr_strerror(st), last ? " (" : "", last ? why : "", last ? ")" : "");
    }
    if (json && !failed)
        print_json(&s);
    else if (!json)
        print_text(&s);
    for (size_t i = 0; i < s.n; i++)
        free(s.a[i].meta);
    free(s.a);
    free(names);
    lr_manager_free(s.m);
    lr_loop_free(s.loop);
    return failed ? 1 : 0;
}
