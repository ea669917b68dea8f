/* SPDX-License-Identifier: MIT */
/* holders.c - see holders.h. */
#include "holders.h"

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "proc.h"

#define END_WAIT_MS 20000

void fholder_path(char *out, const char *dir, int h, const char *ext)
{
    snprintf(out, FHOLDER_PATH_MAX, "%s/h%d.%s", dir, h, ext);
}

int fholder_spawn(const char *exe, const char *uri, const char *dir, int h, unsigned names,
                  unsigned ttl_ms, unsigned seconds, pid_t *pid)
{
    char log[FHOLDER_PATH_MAX], err[FHOLDER_PATH_MAX], id[16], count[16], ttl[16], secs[16];
    fholder_path(log, dir, h, "log");
    fholder_path(err, dir, h, "err");
    snprintf(id, sizeof(id), "h%d", h);
    snprintf(count, sizeof(count), "%u", names);
    snprintf(ttl, sizeof(ttl), "%u", ttl_ms);
    snprintf(secs, sizeof(secs), "%u", seconds + 60);
    const char *argv[] = {exe, "--uri", uri, "--log", log, "--id", id, "--prefix", "job",
                          "--count", count, "--ttl", ttl, "--seconds", secs,
                          "--churn-ms", "5000", "--coalesce-ms", "20", NULL};
    off_t from;
    int rc = proc_spawn_logged(argv, NULL, err, &from, pid);
    if (rc < 0)
        fprintf(stderr, "spawn %s: %s\n", exe, strerror(-rc));
    return rc;
}

int fholders_end(pid_t *pid, int n, const char *dir)
{
    int bad = 0;
    for (int h = 0; h < n; h++)
        if (pid[h] > 0) {
            kill(pid[h], SIGCONT);
            kill(pid[h], SIGTERM);
        }
    for (int h = 0; h < n; h++) {
        if (pid[h] <= 0)
            continue;
        int st = 0;
        uint64_t deadline = proc_now_ms() + END_WAIT_MS;
        pid_t got;
        while ((got = proc_waitpid(pid[h], &st, WNOHANG)) == 0 && proc_now_ms() < deadline)
            proc_sleep_ms(20);
        if (got == 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
            fprintf(stderr, "holder h%d: %s (status 0x%x)\n", h,
                    got == 0 ? "did not exit after SIGTERM" : "bad exit", st);
            if (got == 0) {
                kill(pid[h], SIGKILL);
                proc_waitpid(pid[h], &st, 0);
            }
            char err[FHOLDER_PATH_MAX];
            fholder_path(err, dir, h, "err");
            proc_log_tail(err, 20);
            bad++;
        }
        pid[h] = 0;
    }
    return bad;
}

void fholders_kill(pid_t *pid, int n)
{
    for (int h = 0; h < n; h++)
        if (pid[h] > 0) {
            kill(pid[h], SIGKILL);
            proc_waitpid(pid[h], NULL, 0);
            pid[h] = 0;
        }
}

void fholders_remove(const char *dir, int n)
{
    char p[FHOLDER_PATH_MAX];
    for (int h = 0; h < n; h++) {
        fholder_path(p, dir, h, "log");
        unlink(p);
        fholder_path(p, dir, h, "err");
        unlink(p);
    }
    rmdir(dir);
}

int fholder_name_index(const char *name, unsigned names)
{
    if (strncmp(name, "job", 3))
        return -1;
    char *end;
    long i = strtol(name + 3, &end, 10);
    return *end || end == name + 3 || i < 0 || i >= (long)names ? -1 : (int)i;
}

int fholder_each(const char *path, unsigned names,
                 void (*fn)(void *arg, const struct fholder_line *ln), void *arg)
{
    FILE *fp = fopen(path, "r");
    if (!fp)
        return -errno;
    char line[256], ev[32], name[64];
    struct fholder_line ln = {.ev = ev};
    while (fgets(line, sizeof(line), fp)) {
        if (sscanf(line, "%" SCNu64 " %31s %63s", &ln.t_ns, ev, name) != 3 ||
            (ln.name = fholder_name_index(name, names)) < 0)
            continue;
        ln.got = !strcmp(ev, "acquired");
        ln.renewed = !strcmp(ev, "renewed");
        ln.lost = !strcmp(ev, "lost");
        ln.gone = ln.lost || !strcmp(ev, "release");
        fn(arg, &ln);
    }
    fclose(fp);
    return 0;
}
