/* SPDX-License-Identifier: MIT */
/*
 * cli.h - what the subcommands of the leasering tool share (leasering.c).
 */
#ifndef LR_TOOLS_CLI_H
#define LR_TOOLS_CLI_H

/* Parse @v, the value of option @opt of subcommand @cmd, as a whole number
 * in [lo, hi]. Returns 0, or -1 after saying why on stderr. */
int cli_number(const char *cmd, const char *opt, const char *v, unsigned long lo,
               unsigned long hi, unsigned long *out);
/* @uri without user info or query (secrets are never printed); a static buffer. */
const char *cli_redacted(const char *uri);
/* `leasering hold ARGS` (hold.c): returns the exit status. */
int hold_main(int argc, char **argv);

#endif
