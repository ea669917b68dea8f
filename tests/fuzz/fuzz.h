/* SPDX-License-Identifier: MIT */
/* fuzz.h - what every fuzz target shares: libFuzzer's entry point and
 * ENSURE, which traps (a crash libFuzzer reports) when a check fails. */
#ifndef LR_FUZZ_H
#define LR_FUZZ_H

#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define ENSURE(cond)                                                                               \
    do {                                                                                           \
        if (!(cond))                                                                               \
            __builtin_trap();                                                                      \
    } while (0)

#endif
