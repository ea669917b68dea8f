/* SPDX-License-Identifier: MIT */
/*
 * harness.h - the in-house test harness: TEST(name) functions collected in a
 * table, CHECK macros that print both values with file:line, and a main that
 * runs the table (or the tests named on the command line) and ends with the
 * line "N passed, N failed". The first failed test ends the run (it says
 * so): a CHECK returns from the middle of its test and may leave that
 * test's stack timers linked into a loop, so later tests would run on
 * corrupted state and could crash, hiding the first failure. Include it in exactly one file per executable,
 * then list the tests with TESTS(...).
 */
#ifndef LR_TEST_HARNESS_H
#define LR_TEST_HARNESS_H

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <leasering/error.h>

static int lrt_failed_checks;

/* 1 in a build with AddressSanitizer (gcc or clang), where tests that
 * measure or load the machine run smaller. */
#if defined(__SANITIZE_ADDRESS__)
#define SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SANITIZED 1
#endif
#endif
#ifndef SANITIZED
#define SANITIZED 0
#endif

#define TEST(name) static void name(void)

#define CHECK(cond)                                                                        \
    do {                                                                                   \
        if (!(cond)) {                                                                     \
            fprintf(stderr, "%s:%d: CHECK(%s) failed\n", __FILE__, __LINE__, #cond);       \
            lrt_failed_checks++;                                                           \
            return;                                                                        \
        }                                                                                  \
    } while (0)

#define CHECK_EQ(a, b)                                                                     \
    do {                                                                                   \
        long long lrt_a = (long long)(a), lrt_b = (long long)(b);                          \
        if (lrt_a != lrt_b) {                                                              \
            fprintf(stderr, "%s:%d: CHECK_EQ(%s, %s) failed: %lld != %lld\n", __FILE__,    \
                    __LINE__, #a, #b, lrt_a, lrt_b);                                       \
            lrt_failed_checks++;                                                           \
            return;                                                                        \
        }                                                                                  \
    } while (0)

/* @a is an int result; @b the expected code. Prints both by name. */
#define CHECK_ERR(a, b)                                                                    \
    do {                                                                                   \
        int lrt_a = (int)(a), lrt_b = (int)(b);                                            \
        if (lrt_a != lrt_b) {                                                              \
            fprintf(stderr, "%s:%d: CHECK_ERR(%s, %s) failed: %d (%s) != %d (%s)\n",       \
                    __FILE__, __LINE__, #a, #b, lrt_a, lr_err_name(lrt_a), lrt_b,          \
                    lr_err_name(lrt_b));                                                   \
            lrt_failed_checks++;                                                           \
            return;                                                                        \
        }                                                                                  \
    } while (0)

#define CHECK_OK(a) CHECK_ERR(a, 0)

struct lrt_case {
    const char *name;
    void (*fn)(void);
};

#define T(name) {#name, name}
#define TESTS(...)                                                                         \
    static const struct lrt_case lrt_cases[] = {__VA_ARGS__};                              \
    int main(int argc, char **argv)                                                        \
    {                                                                                      \
        int passed = 0, failed = 0;                                                        \
        setvbuf(stdout, NULL, _IONBF, 0);                                                  \
        for (size_t i = 0; i < sizeof(lrt_cases) / sizeof(lrt_cases[0]); i++) {            \
            if (argc > 1) {                                                                \
                int want = 0;                                                              \
                for (int a = 1; a < argc; a++)                                             \
                    want |= !strcmp(argv[a], lrt_cases[i].name);                           \
                if (!want)                                                                 \
                    continue;                                                              \
            }                                                                              \
            int before = lrt_failed_checks;                                                \
            lrt_cases[i].fn();                                                             \
            if (lrt_failed_checks == before) {                                             \
                printf("ok   %s\n", lrt_cases[i].name);                                    \
                passed++;                                                                  \
            } else {                                                                       \
                printf("FAIL %s\n", lrt_cases[i].name);                                    \
                failed++;                                                                  \
                /* a failed CHECK returns early and may leave timers, loops or */          \
                /* connections of its test behind: what runs next is untrusted */          \
                if (i + 1 < sizeof(lrt_cases) / sizeof(lrt_cases[0]))                      \
                    printf("stopping after the first failure: the tests after %s "         \
                           "were not run\n", lrt_cases[i].name);                           \
                break;                                                                     \
            }                                                                              \
        }                                                                                  \
        printf("%d passed, %d failed\n", passed, failed);                                  \
        return failed || !passed ? 1 : 0;                                                  \
    }

#endif
