/* SPDX-License-Identifier: MIT */
/*
 * leasering/version.h - the version of the headers a program was compiled
 * against, and lr_version(), the version of the library it runs with.
 * LR_VERSION_STRING equals meson.project_version() (tests/test_version.c
 * checks it, so a release that bumps one and not the other fails its tests).
 * What a minor or patch release may change is stated in docs/ABI.md.
 */
#ifndef LEASERING_VERSION_H
#define LEASERING_VERSION_H

#include <leasering/common.h>

#define LR_VERSION_MAJOR 0
#define LR_VERSION_MINOR 1
#define LR_VERSION_PATCH 0
#define LR_VERSION_STRING "0.1.0"

/* One number that orders versions: MAJOR * 10000 + MINOR * 100 + PATCH. */
#define LR_VERSION_NUMBER (LR_VERSION_MAJOR * 10000 + LR_VERSION_MINOR * 100 + LR_VERSION_PATCH)

/*
 * lr_version - the version of the library linked at run time, as
 * "MAJOR.MINOR.PATCH" (a static string). Compare it with LR_VERSION_STRING
 * to tell a program built against other headers than the library it loaded.
 */
LR_API const char *lr_version(void);

#endif
