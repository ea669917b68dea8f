/* SPDX-License-Identifier: MIT */
/*
 * observer.c - the election acceptance test's outside observer (observer.h):
 * reads every candidate's log into terms, then checks overlaps, fences,
 * acts past the end and hand-over deadlines.
 */
#include "observer.h"

#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_TERMS 4096

struct term {
    int log;
    uint64_t fence;
    uint64_t start;     /* ns */
    uint64_t lib_end;   /* ns: first stop/resign/exit/killed after start; UINT64_MAX none */
    uint64_t vu_ms;     /* largest validity the term logged */
    uint64_t last_lead; /* ns; 0 none */
    uint64_t end;       /* min(lib_end, vu) */
    uint64_t ext_end;   /* max(end, last_lead) */
};

static struct term terms[MAX_TERMS];
static unsigned nterms;

#define MAX_HEARD 65536
struct heard {
    uint64_t t;
    int log;
    char id[64];
};
static struct heard heard[MAX_HEARD]; /* "leader" lines, in log order */
static unsigned nheard;

static uint64_t min64(uint64_t a, uint64_t b)
{
    return a < b ? a : b;
}

static uint64_t max64(uint64_t a, uint64_t b)
{
    return a > b ? a : b;
}

/* A line split into its time, its word and the rest. */
struct line {
    uint64_t t;
    char word[16];
    const char *rest;
};

static bool split(const char *s, struct line *l)
{
    char *end;
    errno = 0;
    unsigned long long t = strtoull(s, &end, 10);
    if (errno || end == s || *end != ' ')
        return false;
    l->t = t;
    s = end + 1;
    size_t n = strcspn(s, " \n");
    if (n == 0 || n >= sizeof(l->word))
        return false;
    memcpy(l->word, s, n);
    l->word[n] = '\0';
    l->rest = s + n + (s[n] == ' ');
    return true;
}

static bool is_end_word(const char *w)
{
    return !strcmp(w, "stop") || !strcmp(w, "resign") || !strcmp(w, "exit") || !strcmp(w, "killed");
}

static void report_line(FILE *report, unsigned *left, const char *path, const char *line)
{
    if (report && *left) {
        fprintf(report, "    %s: %s", path, line);
        if (!strchr(line, '\n'))
            fputc('\n', report);
    }
}

/* Terms of one log; (c) checked on the way. */
static int read_log(const char *path, int log, struct elobs_figures *f, FILE *report,
                    unsigned *left, unsigned *v)
{
    FILE *fp = fopen(path, "r");
    if (!fp)
        return -errno;
    char buf[512];
    struct term *cur = NULL;
    while (fgets(buf, sizeof(buf), fp)) {
        struct line l;
        f->lines++;
        if (!split(buf, &l)) {
            f->bad_lines++;
            continue;
        }
        uint64_t a = 0, b = 0;
        if (!strcmp(l.word, "start")) {
            if (sscanf(l.rest, "%" SCNu64 " %" SCNu64, &a, &b) != 2 || nterms == MAX_TERMS) {
                f->bad_lines++;
                continue;
            }
            cur = &terms[nterms++];
            *cur = (struct term){
                .log = log, .fence = a, .start = l.t, .lib_end = UINT64_MAX, .vu_ms = b};
            f->terms++;
            f->terms_by[log]++;
        } else if (!strcmp(l.word, "lead")) {
            if (sscanf(l.rest, "%" SCNu64 " %" SCNu64, &a, &b) != 2) {
                f->bad_lines++;
                continue;
            }
            f->leads++;
            bool inside =
                cur && cur->lib_end == UINT64_MAX && l.t <= max64(cur->vu_ms, b) * 1000000u;
            if (cur) {
                cur->last_lead = l.t;
                if (cur->lib_end == UINT64_MAX)
                    cur->vu_ms = max64(cur->vu_ms, b);
            }
            if (!inside) {
                f->lead_after++;
                (*v)++;
                f->violations[log]++;
                if (report && *left && f->lead_after <= 3) { /* room for the others */
                    fprintf(report, "  (c) acted as leader past its term's end:\n");
                    report_line(report, left, path, buf);
                    (*left)--;
                }
            }
        } else if (is_end_word(l.word)) {
            f->stops += !strcmp(l.word, "stop");
            f->resigns += !strcmp(l.word, "resign");
            if (cur && cur->lib_end == UINT64_MAX)
                cur->lib_end = l.t;
        } else if (!strcmp(l.word, "leader")) {
            f->leader_lines++;
            f->leader_lines_by[log]++;
            if (nheard < MAX_HEARD) {
                struct heard *h = &heard[nheard++];
                h->t = l.t;
                h->log = log;
                snprintf(h->id, sizeof(h->id), "%.*s", (int)strcspn(l.rest, "\n"), l.rest);
            }
        } else if (strcmp(l.word, "hello")) {
            f->bad_lines++;
        }
    }
    fclose(fp);
    return 0;
}

static int by_start(const void *pa, const void *pb)
{
    const struct term *a = pa, *b = pb;
    return a->start < b->start ? -1 : a->start > b->start;
}

/* A follower's conflict reply and the winner's acquire reply are answered
 * back to back by the store, so a follower may log the new leader's name a
 * moment before the winner logs its start: a "leader" line this close before
 * a start belongs to that term. */
#define TOLD_EARLY_NS 50000000u

/* For each term but the last: the other processes that heard of a leader
 * before the next term, and whether they agree on the last name heard. */
static void told(struct elobs_figures *f)
{
    f->heard_min = nterms > 1 ? UINT32_MAX : 0;
    for (unsigned j = 0; j + 1 < nterms; j++) {
        const struct heard *last[ELOBS_MAX_LOGS] = {0};
        uint64_t from = terms[j].start - TOLD_EARLY_NS, to = terms[j + 1].start - TOLD_EARLY_NS;
        for (unsigned k = 0; k < nheard; k++) {
            const struct heard *h = &heard[k];
            if (h->log != terms[j].log && h->t >= from && h->t < to &&
                (!last[h->log] || h->t >= last[h->log]->t))
                last[h->log] = h;
        }
        unsigned n = 0;
        const char *id = NULL;
        bool differ = false;
        for (int i = 0; i < f->logs; i++) {
            if (!last[i])
                continue;
            n++;
            differ |= id && strcmp(id, last[i]->id) != 0;
            id = last[i]->id;
        }
        if (n < f->heard_min)
            f->heard_min = n;
        f->heard_disagree += differ;
    }
}

static void handovers(const char *faults, const struct elobs_deadlines *d, struct elobs_figures *f,
                      FILE *report, unsigned *left, unsigned *v)
{
    FILE *fp = faults ? fopen(faults, "r") : NULL;
    if (!fp)
        return;
    char buf[256];
    while (fgets(buf, sizeof(buf), fp)) {
        struct line l;
        int victim;
        if (!split(buf, &l) || sscanf(l.rest, "%d", &victim) != 1)
            continue;
        int kind = !strcmp(l.word, "kill")        ? 0
                   : !strcmp(l.word, "partition") ? 1
                   : !strcmp(l.word, "resign")    ? 2
                                                  : -1;
        if (kind < 0)
            continue; /* heal, restart, ...: notes */
        unsigned *count = kind == 0 ? &f->kills : kind == 1 ? &f->partitions : &f->resign_faults;
        (*count)++;
        uint64_t deadline = kind == 0 ? d->kill_ms : kind == 1 ? d->partition_ms : d->resign_ms;
        const struct term *next = NULL;
        for (unsigned i = 0; i < nterms && !next; i++)
            if (terms[i].start > l.t && terms[i].log != victim)
                next = &terms[i];
        double ms = next ? (double)(next->start - l.t) / 1e6 : -1;
        if (next && ms > f->worst_handover_ms[kind])
            f->worst_handover_ms[kind] = ms;
        if (!next || ms > (double)deadline) {
            f->late_handovers++;
            (*v)++;
            if (report && *left) {
                (*left)--;
                if (next)
                    fprintf(report,
                            "  (d) %s of log %d at %" PRIu64 ": next leader (log %d) "
                            "after %.1f ms, deadline %" PRIu64 " ms\n",
                            l.word, victim, l.t, next->log, ms, deadline);
                else
                    fprintf(report, "  (d) %s of log %d at %" PRIu64 ": no leader after it\n",
                            l.word, victim, l.t);
            }
        }
    }
    fclose(fp);
}

int elobs_check(const char *const *paths, int n, const char *faults,
                const struct elobs_deadlines *d, struct elobs_figures *f, FILE *report,
                unsigned max_report)
{
    memset(f, 0, sizeof(*f));
    for (int k = 0; k < 3; k++)
        f->worst_handover_ms[k] = -1;
    if (n < 0 || n > ELOBS_MAX_LOGS)
        return -EINVAL;
    f->logs = n;
    nterms = 0;
    nheard = 0;
    unsigned left = max_report, v = 0;
    for (int i = 0; i < n; i++) {
        int rc = read_log(paths[i], i, f, report, &left, &v);
        if (rc < 0)
            return rc;
    }
    for (unsigned i = 0; i < nterms; i++) {
        struct term *t = &terms[i];
        t->end = min64(t->lib_end, t->vu_ms * 1000000u);
        t->ext_end = max64(t->end, t->last_lead);
    }
    qsort(terms, nterms, sizeof(terms[0]), by_start);
    for (unsigned j = 0; j < nterms; j++) {
        for (unsigned i = 0; i < j; i++) {
            if (terms[i].log == terms[j].log || terms[i].ext_end <= terms[j].start)
                continue;
            f->overlaps++;
            v++;
            f->violations[terms[i].log]++; /* the one that overstayed */
            if (report && left) {
                left--;
                fprintf(report,
                        "  (a) two leaders: log %d (fence %" PRIu64 ", led until %" PRIu64
                        ") and log %d (fence %" PRIu64 ", from %" PRIu64 ", %.1f ms before)\n",
                        terms[i].log, terms[i].fence, terms[i].ext_end, terms[j].log,
                        terms[j].fence, terms[j].start,
                        (double)(terms[i].ext_end - terms[j].start) / 1e6);
            }
        }
        if (j > 0 && terms[j].fence <= terms[j - 1].fence) {
            f->fence_regressions++;
            v++;
            f->violations[terms[j].log]++;
            if (report && left) {
                left--;
                fprintf(report,
                        "  (b) fence %" PRIu64 " (log %d) after fence %" PRIu64 " (log %d)\n",
                        terms[j].fence, terms[j].log, terms[j - 1].fence, terms[j - 1].log);
            }
        }
    }
    handovers(faults, d, f, report, &left, &v);
    told(f);
    return (int)v;
}

uint64_t elobs_leading(const char *path, uint64_t fresh_ms)
{
    FILE *fp = fopen(path, "r");
    if (!fp)
        return 0;
    char buf[512];
    uint64_t fence = 0, last_lead = 0;
    while (fgets(buf, sizeof(buf), fp)) {
        struct line l;
        if (!split(buf, &l))
            continue;
        uint64_t a;
        if (!strcmp(l.word, "start") && sscanf(l.rest, "%" SCNu64, &a) == 1) {
            fence = a;
            last_lead = l.t;
        } else if (!strcmp(l.word, "lead") && fence) {
            last_lead = l.t;
        } else if (is_end_word(l.word)) {
            fence = 0;
        }
    }
    fclose(fp);
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    uint64_t now = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
    return fence && now - last_lead <= fresh_ms * 1000000u ? fence : 0;
}

void elobs_print(const struct elobs_figures *f, const char *scenario, FILE *out)
{
    fprintf(out,
            "%s: %d logs, %u lines, %u terms, %u leads, %u stops, %u resigns, %u new_leader; "
            "faults: kill %u, partition %u, resign %u; hand-over worst: kill %.0f ms, "
            "partition %.0f ms, resign %.0f ms; overlaps %u, fence regressions %u, acted past "
            "end %u, late hand-overs %u, bad lines %u; followers told per term: at least %u, "
            "terms where they disagree %u\n",
            scenario, f->logs, f->lines, f->terms, f->leads, f->stops, f->resigns, f->leader_lines,
            f->kills, f->partitions, f->resign_faults, f->worst_handover_ms[0],
            f->worst_handover_ms[1], f->worst_handover_ms[2], f->overlaps, f->fence_regressions,
            f->lead_after, f->late_handovers, f->bad_lines, f->heard_min, f->heard_disagree);
}
