/* SPDX-License-Identifier: MIT */
/* leasering.h - every public leasering header. */
#ifndef LEASERING_H
#define LEASERING_H

#include <leasering/common.h>
#include <leasering/version.h>
#include <leasering/error.h>
#include <leasering/alloc.h>
#include <leasering/log.h>
#include <leasering/loop.h>
#include <leasering/timer.h>
#include <leasering/metrics.h>
#include <leasering/lease.h>
#include <leasering/election.h>
#include <leasering/name.h>
#include <leasering/backend.h>
#include <leasering/tls.h>
#include <leasering/poll.h>
#include <leasering/exporter.h>

#endif
