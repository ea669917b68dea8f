/* SPDX-License-Identifier: MIT */
/*
 * test_version.c - leasering/version.h against meson's project version
 * (passed in as LR_MESON_VERSION): the string, its three numbers, the
 * ordering number, and lr_version() from the library.
 */
#include <stdio.h>
#include <string.h>

#include <leasering.h>
#include "harness.h"

TEST(header_matches_meson_project_version)
{
    printf("meson %s, header %s, library %s\n", LR_MESON_VERSION, LR_VERSION_STRING,
           lr_version());
    CHECK(strcmp(LR_VERSION_STRING, LR_MESON_VERSION) == 0);
}

TEST(numbers_match_the_string)
{
    char s[32];
    snprintf(s, sizeof(s), "%d.%d.%d", LR_VERSION_MAJOR, LR_VERSION_MINOR, LR_VERSION_PATCH);
    CHECK(strcmp(s, LR_VERSION_STRING) == 0);
    CHECK_EQ(LR_VERSION_NUMBER,
             LR_VERSION_MAJOR * 10000 + LR_VERSION_MINOR * 100 + LR_VERSION_PATCH);
    CHECK(LR_VERSION_MINOR < 100 && LR_VERSION_PATCH < 100);
}

TEST(runtime_version_is_the_headers)
{
    CHECK(lr_version() != NULL);
    CHECK(strcmp(lr_version(), LR_VERSION_STRING) == 0);
}

TESTS(T(header_matches_meson_project_version), T(numbers_match_the_string),
      T(runtime_version_is_the_headers))
