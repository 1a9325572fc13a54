/*
 * parallel.h - many simulations over one trace decoded in memory, in
 * parallel threads (sim compare, sim sweep).
 *
 * The trace is read, checked and decoded once (trace_mem_load); every job
 * replays it through its own cursor with sim_run_source, so the jobs share
 * nothing writable but the progress counters (under a mutex).  A run is a
 * pure function of its configuration: the results do not depend on the
 * number of threads or on the order the jobs are picked up.
 */
#ifndef SP_SIM_PARALLEL_H
#define SP_SIM_PARALLEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sim.h"

struct sim_job {
	/* in */
	struct sim_config cfg;
	const char *name;        /* for messages; NULL: the algorithm's name */
	bool keep_samples;       /* keep the time series in times/samples */
	/* out */
	uint64_t *times;         /* nsamples sample times (ms); malloc'd, see sim_job_release() */
	struct metrics *samples; /* the metrics at those times */
	size_t nsamples;
	struct sim_result res;
	int rc;                  /* 0, or the SP_E* code of the run's error */
	struct sp_err err;
	uint64_t expected_ms;    /* simulated end, known before the run */
	uint64_t done_ms;        /* simulated time done so far */
};

/*
 * Called in the worker thread when job i has finished (successfully or
 * not), before its samples could be dropped: e.g. to summarise them and
 * free them.  Runs concurrently with other jobs' callbacks.
 */
typedef void (*sim_job_done_fn)(void *arg, size_t i, struct sim_job *job);
/* Aggregate progress: simulated ms done over all jobs and the total; serialised. */
typedef void (*sim_parallel_progress_fn)(void *arg, uint64_t done_ms, uint64_t total_ms);

/* The simulated end of a run of cfg over tm (duration_ms, or tail after the last snapshot). */
uint64_t sim_expected_end_ms(const struct trace_mem *tm, const struct sim_config *cfg);

/*
 * Runs the n jobs over tm in `threads` threads (0: one per CPU, never more
 * than n).  Every job runs even if another fails, unless stop_on_error: then
 * jobs not yet started are skipped (rc SP_EINVAL, "not run").  Returns 0 if
 * every job succeeded, else the first failed job's code with its message in
 * err (prefixed with the algorithm's name).
 */
int sim_parallel_run(const struct trace_mem *tm, struct sim_job *jobs, size_t n, unsigned threads,
		     bool stop_on_error, sim_job_done_fn done, sim_parallel_progress_fn progress,
		     void *arg, struct sp_err *err);

/* The number of CPUs this process may use (at least 1). */
unsigned sim_cpu_count(void);

void sim_job_release(struct sim_job *job);

#endif
