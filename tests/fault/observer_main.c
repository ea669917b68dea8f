/* SPDX-License-Identifier: MIT */
/*
 * observer_main.c - the observer as a program, to re-check the logs of a run
 * by hand: fault_observer HOLDER.log... prints the figures and every
 * violation, and exits 1 if there is any (2: a log could not be read).
 */
#include <stdio.h>
#include <string.h>

#include "observer.h"

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: fault_observer HOLDER.log...\n");
        return 2;
    }
    struct obs_figures f;
    int rc = observe((const char *const *)argv + 1, argc - 1, &f, stdout, 1000);
    if (rc < 0) {
        fprintf(stderr, "fault_observer: %s\n", strerror(-rc));
        return 2;
    }
    observe_print(&f, "logs", stdout);
    return rc ? 1 : 0;
}
