/* SPDX-License-Identifier: MIT */
/*
 * observer.c - merges the holders' logs and checks the safety promise from
 * outside (observer.h). Every log is read whole; lines become events that
 * point back into the file text, so a violation is reported with the very
 * lines that show it. A holder's lines about one name are taken in file
 * order (one thread wrote them, in time order); across holders only times
 * are compared.
 */
#include "observer.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

enum ev {
    EV_OTHER,
    EV_ACQUIRED,
    EV_RENEWED,
    EV_LOST,
    EV_RELEASE,
    EV_WORK,
    EV_FREEZE_BEGIN, /* sigstop (by the test), stall_begin (by the holder) */
    EV_FREEZE_END,   /* sigcont, stall_end */
};

struct event {
    uint64_t t;
    uint64_t fence;
    uint64_t vu;   /* ms */
    int status;
    const char *line;
    uint32_t seq;  /* position in the holder's file */
    int32_t name;  /* -1: none */
    uint8_t holder;
    uint8_t ev;
};

struct hold {
    uint64_t start, end; /* ns */
    uint64_t fence;
    const char *first, *last; /* acquired line, and the line that ended it (or NULL) */
    int32_t name;
    uint8_t holder;
};

struct window {
    uint64_t from, to;
    uint8_t holder;
};

struct obs {
    struct obs_figures *f;
    FILE *report;
    unsigned reported, max_report;
    char *text[OBS_MAX_HOLDERS];
    struct event *ev;
    size_t nev, cap;
    struct hold *holds;
    size_t nholds, hcap;
    struct window *win;
    size_t nwin, wcap;
    /* names: open addressing over indices into @names */
    char **names;
    size_t nnames, ncap;
    int32_t *table;
    size_t tcap;
};

static int grow(void **p, size_t *cap, size_t need, size_t size)
{
    if (need <= *cap)
        return 0;
    size_t c = *cap ? *cap * 2 : 1024;
    while (c < need)
        c *= 2;
    void *q = realloc(*p, c * size);
    if (!q)
        return -ENOMEM;
    *p = q;
    *cap = c;
    return 0;
}

static uint64_t hash(const char *s, size_t n)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)s[i]) * 1099511628211ull;
    return h;
}

static int rehash(struct obs *o)
{
    size_t cap = o->tcap ? o->tcap * 2 : 1024;
    int32_t *t = malloc(cap * sizeof(*t));
    if (!t)
        return -ENOMEM;
    memset(t, 0xff, cap * sizeof(*t));
    for (size_t i = 0; i < o->nnames; i++) {
        size_t h = hash(o->names[i], strlen(o->names[i])) & (cap - 1);
        while (t[h] >= 0)
            h = (h + 1) & (cap - 1);
        t[h] = (int32_t)i;
    }
    free(o->table);
    o->table = t;
    o->tcap = cap;
    return 0;
}

static int32_t name_id(struct obs *o, const char *s, size_t n)
{
    if ((o->nnames + 1) * 2 > o->tcap && rehash(o) < 0)
        return -1;
    size_t h = hash(s, n) & (o->tcap - 1);
    while (o->table[h] >= 0) {
        const char *k = o->names[o->table[h]];
        if (strlen(k) == n && !memcmp(k, s, n))
            return o->table[h];
        h = (h + 1) & (o->tcap - 1);
    }
    if (grow((void **)&o->names, &o->ncap, o->nnames + 1, sizeof(char *)) < 0)
        return -1;
    char *k = malloc(n + 1);
    if (!k)
        return -1;
    memcpy(k, s, n);
    k[n] = '\0';
    o->names[o->nnames] = k;
    o->table[h] = (int32_t)o->nnames;
    return (int32_t)o->nnames++;
}

static enum ev ev_of(const char *w, size_t n)
{
    static const struct {
        const char *s;
        enum ev e;
    } map[] = {{"acquired", EV_ACQUIRED},    {"renewed", EV_RENEWED},
               {"lost", EV_LOST},            {"release", EV_RELEASE},
               {"work", EV_WORK},            {"sigstop", EV_FREEZE_BEGIN},
               {"stall_begin", EV_FREEZE_BEGIN}, {"sigcont", EV_FREEZE_END},
               {"stall_end", EV_FREEZE_END}};
    for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
        if (strlen(map[i].s) == n && !memcmp(map[i].s, w, n))
            return map[i].e;
    return EV_OTHER;
}

/* "<t> <ev> <name> <fence> <vu> <status>"; returns false for a bad line. */
static bool parse_line(struct obs *o, const char *p, const char *end, struct event *e)
{
    const char *w[6];
    size_t len[6];
    int nw = 0;
    while (p < end && nw < 6) {
        while (p < end && *p == ' ')
            p++;
        if (p == end)
            break;
        w[nw] = p;
        while (p < end && *p != ' ')
            p++;
        len[nw] = (size_t)(p - w[nw]);
        nw++;
    }
    if (nw < 5)
        return false;
    char *stop;
    e->t = strtoull(w[0], &stop, 10);
    if (stop != w[0] + len[0])
        return false;
    e->ev = (uint8_t)ev_of(w[1], len[1]);
    e->fence = strtoull(w[3], NULL, 10);
    e->vu = strtoull(w[4], NULL, 10);
    e->status = nw > 5 ? atoi(w[5]) : 0;
    e->name = -1;
    if (e->ev != EV_OTHER && e->ev != EV_FREEZE_BEGIN && e->ev != EV_FREEZE_END) {
        e->name = name_id(o, w[2], len[2]);
        if (e->name < 0)
            return false;
    }
    return true;
}

static int read_all(const char *path, char **out)
{
    FILE *fp = fopen(path, "rb");
    if (!fp)
        return -errno;
    size_t cap = 1 << 20, len = 0;
    char *b = malloc(cap + 1);
    size_t got;
    while (b && (got = fread(b + len, 1, cap - len, fp)) > 0) {
        len += got;
        if (len == cap) {
            char *nb = realloc(b, cap * 2 + 1);
            if (!nb) {
                free(b);
                b = NULL;
                break;
            }
            b = nb;
            cap *= 2;
        }
    }
    fclose(fp);
    if (!b)
        return -ENOMEM;
    b[len] = '\0';
    *out = b;
    return 0;
}

static int load(struct obs *o, int holder, const char *path)
{
    int rc = read_all(path, &o->text[holder]);
    if (rc < 0)
        return rc;
    char *p = o->text[holder];
    uint32_t seq = 0;
    while (*p) {
        char *nl = strchr(p, '\n');
        if (!nl)
            break; /* a half line cannot happen (whole writes); ignore one if it does */
        *nl = '\0';
        struct event e;
        if (!parse_line(o, p, nl, &e)) {
            o->f->bad_lines++;
        } else {
            if (e.ev == EV_OTHER && !strncmp(strchr(p, ' ') ? strchr(p, ' ') + 1 : "", "start ", 6)) {
                const char *id = strchr(p, ' ') + 7;
                size_t n = strcspn(id, " ");
                if (n >= sizeof(o->f->ids[0]))
                    n = sizeof(o->f->ids[0]) - 1;
                memcpy(o->f->ids[holder], id, n);
                o->f->ids[holder][n] = '\0';
            }
            e.line = p;
            e.seq = seq++;
            e.holder = (uint8_t)holder;
            if (grow((void **)&o->ev, &o->cap, o->nev + 1, sizeof(e)) < 0)
                return -ENOMEM;
            o->ev[o->nev++] = e;
            o->f->lines++;
        }
        p = nl + 1;
    }
    return 0;
}

static int order(int64_t a, int64_t b)
{
    return a < b ? -1 : a > b;
}

static int by_name_holder_seq(const void *a, const void *b)
{
    const struct event *x = a, *y = b;
    int c = order(x->name, y->name);
    c = c ? c : order(x->holder, y->holder);
    return c ? c : order(x->seq, y->seq);
}

static int by_name_start(const void *a, const void *b)
{
    const struct hold *x = a, *y = b;
    int c = order(x->name, y->name);
    c = c ? c : order((int64_t)x->start, (int64_t)y->start);
    return c ? c : order(x->holder, y->holder);
}

static void violation(struct obs *o, const char *what, int ha, const char *la, int hb,
                      const char *lb)
{
    o->f->violations[ha]++;
    if (hb >= 0 && hb != ha)
        o->f->violations[hb]++;
    if (!o->report || o->reported >= o->max_report)
        return;
    o->reported++;
    fprintf(o->report, "VIOLATION %s\n  %s: %s\n", what, o->f->ids[ha], la ? la : "(end of log)");
    if (hb >= 0)
        fprintf(o->report, "  %s: %s\n", o->f->ids[hb], lb ? lb : "(end of log)");
}

/* Close the open hold of one (name, holder) run. */
static int end_hold(struct obs *o, struct hold *h, uint64_t at, const char *line, uint64_t vu)
{
    uint64_t vu_ns = vu * 1000000u;
    h->end = at < vu_ns ? at : vu_ns;
    h->last = line;
    if (grow((void **)&o->holds, &o->hcap, o->nholds + 1, sizeof(*h)) < 0)
        return -ENOMEM;
    o->holds[o->nholds++] = *h;
    return 0;
}

static bool frozen_at(const struct obs *o, int holder, uint64_t t)
{
    for (size_t i = 0; i < o->nwin; i++)
        if (o->win[i].holder == holder && o->win[i].from <= t && t <= o->win[i].to)
            return true;
    return false;
}

/* Freeze windows: each begin with the first end after it (same holder). */
static int windows(struct obs *o)
{
    for (size_t i = 0; i < o->nev; i++) {
        const struct event *b = &o->ev[i];
        if (b->ev != EV_FREEZE_BEGIN)
            continue;
        uint64_t to = UINT64_MAX;
        for (size_t j = 0; j < o->nev; j++) {
            const struct event *e = &o->ev[j];
            if (e->ev == EV_FREEZE_END && e->holder == b->holder && e->t >= b->t && e->t < to)
                to = e->t;
        }
        if (grow((void **)&o->win, &o->wcap, o->nwin + 1, sizeof(*o->win)) < 0)
            return -ENOMEM;
        o->win[o->nwin++] = (struct window){.from = b->t, .to = to, .holder = b->holder};
    }
    return 0;
}

/* One holder's lines about one name, in its order: (c), (d), lateness, holds. */
static int walk(struct obs *o, size_t from, size_t to)
{
    struct obs_figures *f = o->f;
    struct hold h = {0};
    bool open = false;
    uint64_t vu = 0;
    const char *vu_line = NULL; /* the line that set vu */
    for (size_t i = from; i < to; i++) {
        const struct event *e = &o->ev[i];
        int rc = 0;
        switch (e->ev) {
        case EV_ACQUIRED:
            if (open)
                rc = end_hold(o, &h, e->t, e->line, vu);
            h = (struct hold){.start = e->t, .fence = e->fence, .first = e->line,
                              .name = e->name, .holder = e->holder};
            open = true;
            vu = e->vu;
            vu_line = e->line;
            f->acquisitions++;
            f->acquired_by[e->holder]++;
            break;
        case EV_RENEWED:
            f->renewals++;
            if (!open || e->t > vu * 1000000u) {
                f->renewed_after++;
                violation(o, open ? "renewed after validity" : "renewed outside a hold",
                          e->holder, e->line, e->holder, open ? vu_line : h.last);
            }
            vu = e->vu;
            vu_line = e->line;
            break;
        case EV_WORK:
            f->works++;
            if (!open || e->t > vu * 1000000u) {
                f->work_after++;
                violation(o, open ? "work after validity" : "work outside a hold", e->holder,
                          e->line, e->holder, open ? vu_line : h.last);
            }
            break;
        case EV_LOST:
            f->losses++;
            f->lost_taken += e->status == -4001;   /* LR_ELOST */
            f->lost_expired += e->status == -4002; /* LR_EEXPIRED */
            f->lost_unavail += e->status == -4006; /* LR_EUNAVAIL */
            if (open) {
                int64_t late = (int64_t)e->t - (int64_t)(vu * 1000000u);
                if (frozen_at(o, e->holder, vu * 1000000u)) {
                    f->stalled_losses++;
                    if (late > f->worst_stalled_ns)
                        f->worst_stalled_ns = late;
                } else if (late > f->worst_lateness_ns) {
                    f->worst_lateness_ns = late;
                }
                rc = end_hold(o, &h, e->t, e->line, vu);
                open = false;
            }
            break;
        case EV_RELEASE:
            f->releases++;
            if (open) {
                rc = end_hold(o, &h, e->t, e->line, vu);
                open = false;
            }
            break;
        default:
            break;
        }
        if (rc < 0)
            return rc;
    }
    /* The log ended with the hold open (killed, or stopped with it): it ended
     * at its validity at the latest. */
    if (open)
        return end_hold(o, &h, UINT64_MAX, NULL, vu);
    return 0;
}

/* (a) and (b) over the holds of every name, in order of acquisition. */
static void cross_check(struct obs *o)
{
    qsort(o->holds, o->nholds, sizeof(*o->holds), by_name_start);
    size_t i = 0;
    while (i < o->nholds) {
        size_t j = i;
        uint64_t end_by[OBS_MAX_HOLDERS] = {0};
        const struct hold *last_by[OBS_MAX_HOLDERS] = {0};
        const struct hold *prev = NULL;
        for (; j < o->nholds && o->holds[j].name == o->holds[i].name; j++) {
            const struct hold *h = &o->holds[j];
            for (int k = 0; k < o->f->holders; k++) {
                if (k != h->holder && last_by[k] && h->start < end_by[k]) {
                    /* the earlier hold: where it began, and what ended it */
                    char span[512];
                    snprintf(span, sizeof(span), "%s\n    ... ended by: %s", last_by[k]->first,
                             last_by[k]->last ? last_by[k]->last : "(end of log: valid_until)");
                    o->f->overlaps++;
                    violation(o, "overlap", k, span, h->holder, h->first);
                }
            }
            if (prev && h->fence <= prev->fence) {
                o->f->fence_regressions++;
                violation(o, "fence regression", prev->holder, prev->first, h->holder,
                          h->first);
            }
            if (!last_by[h->holder] || h->end > end_by[h->holder]) {
                end_by[h->holder] = h->end;
                last_by[h->holder] = h;
            }
            prev = h;
        }
        i = j;
    }
}

int observe(const char *const *paths, int n, struct obs_figures *f, FILE *report,
            unsigned max_report)
{
    if (n < 0 || n > OBS_MAX_HOLDERS)
        return -EINVAL;
    memset(f, 0, sizeof(*f));
    f->holders = n;
    f->worst_lateness_ns = INT64_MIN;
    f->worst_stalled_ns = INT64_MIN;
    struct obs o = {.f = f, .report = report, .max_report = max_report};
    int rc = 0;
    for (int i = 0; i < n && rc == 0; i++) {
        snprintf(f->ids[i], sizeof(f->ids[i]), "holder%d", i);
        rc = load(&o, i, paths[i]);
    }
    if (rc == 0)
        rc = windows(&o);
    if (rc == 0) {
        uint64_t first = UINT64_MAX, last = 0;
        for (size_t i = 0; i < o.nev; i++) {
            if (o.ev[i].t < first)
                first = o.ev[i].t;
            if (o.ev[i].t > last)
                last = o.ev[i].t;
        }
        f->seconds = last > first ? (double)(last - first) / 1e9 : 0;
        f->names = (unsigned)o.nnames;
        qsort(o.ev, o.nev, sizeof(*o.ev), by_name_holder_seq);
        size_t i = 0;
        while (i < o.nev && rc == 0) {
            size_t j = i;
            while (j < o.nev && o.ev[j].name == o.ev[i].name && o.ev[j].holder == o.ev[i].holder)
                j++;
            if (o.ev[i].name >= 0)
                rc = walk(&o, i, j);
            i = j;
        }
    }
    if (rc == 0)
        cross_check(&o);
    for (int i = 0; i < n; i++)
        free(o.text[i]);
    for (size_t i = 0; i < o.nnames; i++)
        free(o.names[i]);
    free(o.names);
    free(o.table);
    free(o.ev);
    free(o.holds);
    free(o.win);
    if (rc < 0)
        return rc;
    return (int)(f->overlaps + f->fence_regressions + f->work_after + f->renewed_after);
}

static void ms(char *buf, size_t cap, int64_t ns)
{
    if (ns == INT64_MIN)
        snprintf(buf, cap, "-");
    else
        snprintf(buf, cap, "%+.1f ms", (double)ns / 1e6);
}

int obs_mark(const char *path, const char *what)
{
    int fd = open(path, O_WRONLY | O_APPEND | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    char line[96];
    int n = snprintf(line, sizeof(line), "%" PRIu64 " %s - 0 0 0\n",
                     (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec, what);
    int rc = write(fd, line, (size_t)n) == n ? 0 : -EIO;
    close(fd);
    return rc;
}

void observe_print(const struct obs_figures *f, const char *scenario, FILE *out)
{
    char late[32], stalled[32];
    ms(late, sizeof(late), f->worst_lateness_ns);
    ms(stalled, sizeof(stalled), f->worst_stalled_ns);
    fprintf(out,
            "%s: holders %d, names %u, seconds %.1f, acquisitions %u, renewals %u, losses %u "
            "(%u in a freeze; ELOST %u, EEXPIRED %u, EUNAVAIL %u), releases %u, work %u, "
            "overlaps %u, fence regressions %u, "
            "work after validity %u, renewed after validity %u, worst loss lateness %s "
            "(in a freeze: %s), bad lines %u\n",
            scenario, f->holders, f->names, f->seconds, f->acquisitions, f->renewals, f->losses,
            f->stalled_losses, f->lost_taken, f->lost_expired, f->lost_unavail, f->releases, f->works, f->overlaps, f->fence_regressions,
            f->work_after, f->renewed_after, late, stalled, f->bad_lines);
    for (int i = 0; i < f->holders; i++)
        fprintf(out, "  %s: acquisitions %u, violations %u\n", f->ids[i], f->acquired_by[i],
                f->violations[i]);
}
