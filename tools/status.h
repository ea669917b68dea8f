/* SPDX-License-Identifier: MIT */
/* status.h - "leasering status" (status.c), for the CLI's main. */
#ifndef LR_TOOL_STATUS_H
#define LR_TOOL_STATUS_H

#include <stdio.h>

/* Its usage text (without the store-URI list). */
extern const char lr_tool_status_usage[];

/* Run "leasering status" on the arguments after the command; @print_usage
 * prints a usage text followed by the store-URI list. Returns the exit
 * status: 0, 1 (store unreadable) or 2 (bad arguments). */
int lr_tool_status(int argc, char **argv, void (*print_usage)(FILE *f, const char *text));

#endif
