/* SPDX-License-Identifier: MIT */
/*
 * cli.h - what the subcommands of the leasering tool share (leasering.c):
 * one option table and one parser for every command, the usage printer,
 * number parsing and URI redaction.
 */
#ifndef LR_TOOLS_CLI_H
#define LR_TOOLS_CLI_H

#include <signal.h>
#include <stddef.h>
#include <stdio.h>

/* A command's options: a string, a number in [lo, hi], a fraction in
 * (0, hi/100], or a flag. */
enum { OPT_STR, OPT_NUM, OPT_FRAC, OPT_FLAG };
struct opt {
    const char *name;
    int kind;
    void *dst; /* const char **, unsigned long *, double * or int * */
    unsigned long lo, hi;
};

/* cli_parse - parse argv[0..argc) of command @cmd against @opts[0..n):
 * "--opt value" or "--opt=value"; "--help"/"-h" prints @usage (and the
 * store URIs) on stdout and exits 0. With @dashdash, a "--" ends the options
 * and its index + 1 is returned (argc when there is none); without it, "--"
 * is an unknown option. Every error names the option it is about.
 * Returns: the index where the operands start; -1 after saying why on stderr. */
int cli_parse(const char *cmd, const struct opt *opts, size_t n, int argc, char **argv,
              int dashdash, const char *usage);
/* cli_require - name, on stderr, each option of @names[0..k) that @opts
 * left unset (a NULL string, a zero number). Returns 0, or -1 if any was. */
int cli_require(const char *cmd, const struct opt *opts, size_t n, const char *const *names,
                size_t k);
/* Parse @v, the value of option @opt of subcommand @cmd, as a whole number
 * in [lo, hi]. Returns 0, or -1 after saying why on stderr. */
int cli_number(const char *cmd, const char *opt, const char *v, unsigned long lo,
               unsigned long hi, unsigned long *out);
/* @text, a blank line and every store URI scheme, on @f. */
void cli_usage(FILE *f, const char *text);
/* @uri without user info or query (secrets are never printed); a static buffer. */
const char *cli_redacted(const char *uri);
/* cli_signals - block SIGINT and SIGTERM (old mask in @old, for children)
 * and return a non-blocking signalfd for them, to watch on the loop: call it
 * before any thread exists, so none takes them. -1 after saying why. */
int cli_signals(const char *cmd, sigset_t *old);
/* The next signal from @sigfd (cli_signals), or 0 if none is waiting. */
int cli_signal_read(int sigfd);
/* `leasering hold ARGS` (hold.c): returns the exit status. */
int hold_main(int argc, char **argv);
/* hold's usage text (hold.c), for `leasering help hold`. */
extern const char hold_usage[];
/* `leasering status ARGS` (status.c): returns the exit status (0, 1 the
 * store could not be read, 2 bad arguments). */
int status_main(int argc, char **argv);
/* status's usage text (status.c), for `leasering help status`. */
extern const char status_usage[];

#endif
