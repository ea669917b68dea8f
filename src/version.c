/* SPDX-License-Identifier: MIT */
/* version.c - lr_version(): the version this library was built as. */
#include <leasering/version.h>

const char *lr_version(void)
{
    return LR_VERSION_STRING;
}
