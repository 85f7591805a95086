// SPDX-License-Identifier: GPL-2.0
/* Instantiates iopfmap's tracepoints (iopfmap_trace.h), once. */
#include "iopfmap_private.h"

#define CREATE_TRACE_POINTS
#include "iopfmap_trace.h"
