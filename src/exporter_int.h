/* SPDX-License-Identifier: MIT */
/* exporter_int.h - test controls of the metrics exporter (internal). */
#ifndef LR_EXPORTER_INT_H
#define LR_EXPORTER_INT_H

#include <stdint.h>

struct lr_exporter;

/* Replace LR_EXPORTER_DEADLINE_MS for connections armed from now on. */
void lr__exporter_set_deadline(struct lr_exporter *e, uint64_t ms);

#endif
