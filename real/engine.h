/*
 * engine.h - runs a merge algorithm over a live backend in a thread of its
 * own, in real time: the driver logic of sim/run.c (batch when the sleep is
 * over, changes reported through page_changed) on the wall clock.
 *
 * The engine thread owns the algorithm and the backend.  Other threads may
 * write the registered memory freely; a thread that must call the backend
 * (discarding a page, say) takes the engine's lock around it.
 */
#ifndef SP_REAL_ENGINE_H
#define SP_REAL_ENGINE_H

#include <stdbool.h>
#include <stdint.h>

#include "algorithm.h"
#include "live.h"
#include "metrics.h"

struct real_engine_config {
	const struct algo_ops *algo;
	struct algo_params params;
	uint64_t seed;
	/* Pages whose pagemap entry is polled for COW breaks before each batch (0: 4096). */
	uint64_t poll_pages;
	/* Remap every merged page at once instead of in runs after the batch (live.h "Runs"). */
	bool no_runs;
};

struct real_engine;

/* Creates the algorithm instance over L (L stays the caller's; free it after the engine). */
int real_engine_new(struct real_engine **out, struct real_live *L,
		    const struct real_engine_config *cfg, struct sp_err *err);
/* Starts the thread; batch times are ns since this call. */
int real_engine_start(struct real_engine *e, struct sp_err *err);
/* Stops and joins the thread; returns the error that stopped it, if any. */
int real_engine_stop(struct real_engine *e, struct sp_err *err);
void real_engine_free(struct real_engine *e);

/* Any thread: page p was written (checked for a COW break before the next batch). */
void real_engine_note_write(struct real_engine *e, bk_page p);
/* For calls on the backend from another thread. */
void real_engine_lock(struct real_engine *e);
void real_engine_unlock(struct real_engine *e);
/* Under the lock: tell the algorithm that page p changed (enum algo_change bits). */
int real_engine_page_changed(struct real_engine *e, bk_page p, uint32_t what);
/* Under the lock: runs one batch now (for tests and single-threaded drivers). */
int real_engine_step(struct real_engine *e, uint64_t *sleep_ns);
/* Changes a tunable while running (validated against the algorithm's range). */
int real_engine_set(struct real_engine *e, const char *name, double value, struct sp_err *err);

/*
 * The metrics after the latest batch: the algorithm's counters, the
 * backend's, and cpu_ns = CPU time of the engine thread (measured now,
 * by the caller: the engine does not read its clock after every batch).
 */
void real_engine_metrics(struct real_engine *e, struct metrics *out);
uint64_t real_engine_batches(struct real_engine *e);
/* CPU time of the engine thread now (ns), or -1. */
int64_t real_engine_cpu_ns(struct real_engine *e);

#endif
