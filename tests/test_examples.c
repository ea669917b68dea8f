/* SPDX-License-Identifier: MIT */
/*
 * test_examples.c - the embedding examples (examples/epoll.c, libuv.c,
 * libevent.c) run as programs against a real redis-server: each holds three
 * leases through its host loop for 3 s and must print every name acquired
 * once, renewed at least twice and released, lose nothing, exit 0, and leave
 * no lease key behind (the fencing counter stays, with the fence it printed).
 * The paths come from tests/meson.build; an example that was not built (its
 * event library is missing) FAILS with an install hint.
 */
#include <unistd.h>

#include "harness.h"
#include "redis_server.h"
#include "redis_slot.h"
#include "proc.h"

#ifndef EXAMPLE_EPOLL
#define EXAMPLE_EPOLL ""
#endif
#ifndef EXAMPLE_LIBUV
#define EXAMPLE_LIBUV ""
#endif
#ifndef EXAMPLE_LIBEVENT
#define EXAMPLE_LIBEVENT ""
#endif

#define RUN_MS "3000"
#define NAMES 3

/* What an example printed about one lease name. */
struct tally {
    char name[64];
    int acquired;
    unsigned long long fence;
    int renewed;
    int released;
};

/* Count the event lines of @out for @t[0..NAMES); returns the lines that
 * name no lease of ours or are malformed, lost lines included. */
static int tally_output(const char *out, struct tally *t, int *lost, long *done_renewed)
{
    int other = 0;
    *lost = 0;
    *done_renewed = -1;
    for (const char *line = out; *line;) {
        const char *eol = strchr(line, '\n');
        size_t len = eol ? (size_t)(eol - line) : strlen(line);
        char buf[256], word[32], name[128];
        unsigned long long fence = 0;
        snprintf(buf, sizeof(buf), "%.*s", (int)len, line);
        line += len + (eol ? 1 : 0);
        if (sscanf(buf, "done renewed=%ld", done_renewed) == 1)
            continue;
        int n = sscanf(buf, "%31s %127s fence %llu", word, name, &fence);
        if (n < 2)
            continue; /* not an event line (stderr is captured too) */
        if (!strcmp(word, "lost")) {
            ++*lost;
            continue;
        }
        struct tally *hit = NULL;
        for (int i = 0; i < NAMES; i++)
            if (!strcmp(t[i].name, name))
                hit = &t[i];
        if (!hit) {
            other += !strcmp(word, "acquired") || !strcmp(word, "renewed") ||
                     !strcmp(word, "released");
            continue;
        }
        if (!strcmp(word, "acquired") && n == 3) {
            hit->acquired++;
            hit->fence = fence;
        } else if (!strcmp(word, "renewed")) {
            hit->renewed++;
        } else if (!strcmp(word, "released")) {
            hit->released++;
        }
    }
    return other;
}

static void check_example(const char *path, const char *what, const char *package)
{
    if (!*path) {
        fprintf(stderr,
                "%s was not built: its event library is missing. Install it "
                "(apt-get install %s, or run scripts/setup), then reconfigure "
                "(meson setup --reconfigure BUILDDIR).\n",
                what, package);
        CHECK(*path);
    }
    struct redis_server s;
    CHECK_EQ(redis_server_start(&s, NULL), 0);
    char uri[64], prefix[64];
    snprintf(uri, sizeof(uri), "redis://127.0.0.1:%d", s.port);
    snprintf(prefix, sizeof(prefix), "%s-%d-", what, (int)getpid());
    struct tally t[NAMES];
    memset(t, 0, sizeof(t));
    for (int i = 0; i < NAMES; i++)
        snprintf(t[i].name, sizeof(t[i].name), "%.60s%c", prefix, 'a' + i);

    static char out[64 * 1024];
    const char *argv[] = {path, uri, RUN_MS, prefix, NULL};
    uint64_t t0 = proc_now_ms();
    int rc = run_capture(argv, NULL, out, sizeof(out), 20000);
    printf("---- %s %s %s %s: exit %d after %llu ms ----\n%s", path, uri, RUN_MS, prefix, rc,
           (unsigned long long)(proc_now_ms() - t0), out);
    CHECK_EQ(rc, 0);

    int lost;
    long done_renewed;
    CHECK_EQ(tally_output(out, t, &lost, &done_renewed), 0);
    CHECK_EQ(lost, 0);
    long renewed = 0;
    for (int i = 0; i < NAMES; i++) {
        CHECK_EQ(t[i].acquired, 1);
        CHECK(t[i].renewed >= 2);
        CHECK_EQ(t[i].released, 1);
        renewed += t[i].renewed;
    }
    CHECK_EQ(done_renewed, renewed);

    /* backend.h: lease N is the hash "lr:{N}", its counter "lr:{TAG}:fence"
     * (TAG: the short tag of N's slot; each of these names has a slot of its own). */
    for (int i = 0; i < NAMES; i++) {
        char key[128], reply[64], fence[32];
        snprintf(key, sizeof(key), "lr:{%.63s}", t[i].name);
        const char *exists[] = {"EXISTS", key, NULL};
        CHECK_EQ(redis_cli(&s, reply, sizeof(reply), exists), 0);
        CHECK(!strcmp(reply, "0"));
        key[lr__redis_fence_key(key, sizeof(key) - 1, "lr:", 3, t[i].name,
                                strlen(t[i].name))] = '\0';
        const char *get[] = {"GET", key, NULL};
        CHECK_EQ(redis_cli(&s, reply, sizeof(reply), get), 0);
        snprintf(fence, sizeof(fence), "%llu", t[i].fence);
        CHECK(!strcmp(reply, fence));
    }
    redis_server_destroy(&s);
}

TEST(example_epoll)
{
    check_example(EXAMPLE_EPOLL, "example-epoll", "(nothing: it needs only leasering)");
}

TEST(example_libuv)
{
    check_example(EXAMPLE_LIBUV, "example-libuv", "libuv1-dev");
}

TEST(example_libevent)
{
    check_example(EXAMPLE_LIBEVENT, "example-libevent", "libevent-dev");
}

TESTS(T(example_epoll), T(example_libuv), T(example_libevent))
