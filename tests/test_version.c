/* SPDX-License-Identifier: MIT */
/*
 * test_version.c - leasering/version.h against meson's project version
 * (passed in as LR_MESON_VERSION): the string, its three numbers, the
 * ordering number, lr_version() from the library, and the version the man
 * pages (docs/man/) name in their .TH line.
 */
#include <stdio.h>
#include <string.h>

#include <leasering.h>
#include "harness.h"

TEST(header_matches_meson_project_version)
{
    printf("meson %s, header %s, library %s\n", LR_MESON_VERSION, LR_VERSION_STRING, lr_version());
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

/* Each man page's .TH line says "leasering VERSION". */
TEST(man_pages_name_this_version)
{
    static const char *const pages[] = {"docs/man/leasering.1", "docs/man/leasering.3"};
    for (size_t i = 0; i < 2; i++) {
        char path[512], line[256];
        snprintf(path, sizeof(path), "%s/%s", LR_SOURCE_ROOT, pages[i]);
        FILE *f = fopen(path, "r");
        CHECK(f != NULL);
        int found = 0;
        while (fgets(line, sizeof(line), f))
            if (!strncmp(line, ".TH ", 4))
                found = strstr(line, "\"leasering " LR_VERSION_STRING "\"") != NULL;
        fclose(f);
        if (!found)
            printf("%s: no .TH line naming leasering %s\n", path, LR_VERSION_STRING);
        CHECK(found);
    }
}

TESTS(T(header_matches_meson_project_version), T(numbers_match_the_string),
      T(runtime_version_is_the_headers), T(man_pages_name_this_version))
