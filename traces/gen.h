/*
 * gen.h - the synthetic trace generator (GSL random numbers).
 */
#ifndef SP_TRACE_GEN_H
#define SP_TRACE_GEN_H

#include <stdint.h>

#include "sp_error.h"
#include "trace.h"

struct trace_gen_params {
	uint32_t guests;          /* number of guests */
	uint64_t pages;           /* pages per guest */
	uint32_t snapshots;       /* snapshots, the first at time 0 */
	uint64_t interval_ms;     /* time between snapshots */
	double shared_fraction;   /* fraction of non-zero pages drawn from shared contents */
	uint64_t shared_contents; /* size of the shared pool (0: pages / 16) */
	double zipf_s;            /* Zipf exponent of shared-content popularity */
	double zero_fraction;     /* fraction of zero-filled pages */
	double write_rate;        /* probability a volatile page is rewritten per interval */
	double volatile_fraction; /* fraction of pages that are ever rewritten */
	double huge_fraction;     /* fraction of 2 MiB regions backed by huge pages */
	uint32_t nodes;           /* NUMA nodes; guest g lives on node g % nodes */
	uint32_t domains;         /* security domains; guest g is in domain g % domains */
	uint32_t late_guests;     /* the last N guests appear at the second snapshot (absent before) */
	uint64_t seed;
	uint32_t version;         /* trace format version written (FORMAT.md; not in the description) */
};


void trace_gen_defaults(struct trace_gen_params *p);
/* Validates p; the message names the offending option. */
int trace_gen_check(const struct trace_gen_params *p, struct sp_err *err);
/* Writes a trace to path (atomically); the same p gives the same bytes. */
int trace_gen_write(const struct trace_gen_params *p, const char *path,
		    trace_progress_fn progress, void *arg, struct sp_err *err);

#endif
