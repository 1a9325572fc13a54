/*
 * algorithm.h - the contract every merge algorithm implements.
 *
 * An algorithm is a const struct algo_ops: a name, a one-line description,
 * capability flags, a table of parameters (name, default, range) and function
 * pointers.  Like SQLite's sqlite3_pcache_methods2, the struct carries a
 * version and only ever grows at the end: a plug-in built against version N
 * sets .version = N and the driver never calls members added after N.
 *
 * Adding an algorithm is one new file defining `const struct algo_ops
 * algo_NAME` and one ALGO(NAME) line in registry.def (CMake and registry.c
 * both read it).  kit.h holds what algorithms share: partitions, hash
 * chains, tree depth, the stable-frame table.
 *
 * Life of an instance (driver = sim/ or real/):
 *   create()       once, with validated parameters and the backend;
 *   batch()        whenever the instance's sleep is over: do one batch of
 *                  work at time now_ns, say how long to sleep afterwards;
 *   page_changed() whenever a page the algorithm may hold state about
 *                  changed (see enum algo_change);
 *   set_param()    when a control policy changes a tunable at run time;
 *   metrics()      to read the (algo) counters of struct metrics;
 *   wake_at()      (version 2, optional) when the next batch starts;
 *   repeat()/skip() (version 3, optional) fast-forward over idle time;
 *   hears()        (version 4, optional) once after create(): which changes
 *                  page_changed() needs to hear of;
 *   destroy()      once.
 * No member may keep global state: several instances run side by side.
 */
#ifndef SP_ALGORITHM_H
#define SP_ALGORITHM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "backend.h"
#include "metrics.h"
#include "sp_error.h"

#define ALGO_OPS_VERSION 4
#define ALGO_MAX_PARAMS 32
#define ALGO_SLEEP_FOREVER UINT64_MAX

/* Capability flags. */
#define ALGO_CAP_SCANNER    0x1u /* works by scanning pages through the backend */
#define ALGO_CAP_OMNISCIENT 0x2u /* reads exact content and hears every change: sim only */
#define ALGO_CAP_NODES      0x4u /* honours merge_across_nodes */
#define ALGO_CAP_LAZY_COW   0x8u /* pages_shared/sharing follow a COW break only when the
				    scanner next visits the page (the kernel's lag) */
#define ALGO_CAP_SEEDED     0x10u /* samples at random: another seed gives another run */
/*
 * Runs inside Linux: a merge splits a huge page the way the Linux version
 * of the run does (algo_env.kernel; from 6.12 the split maps zero-filled
 * subpages to the zero page).  Without it the driver splits plainly, as a
 * system that breaks large pages (ESX) does.
 */
#define ALGO_CAP_LINUX      0x20u

/* What page_changed() reports (bit set). */
enum algo_change {
	ALGO_CHANGE_COW = 0x1,     /* the page mapped a shared frame/zero page; it is private now */
	ALGO_CHANGE_CONTENT = 0x2, /* content changed (omniscient only unless with COW) */
	ALGO_CHANGE_MAPPED = 0x4,  /* the page became present (omniscient only) */
	ALGO_CHANGE_UNMAPPED = 0x8 /* the page went away */
};

struct algo_param {
	const char *name;  /* the kernel's tunable name where one exists */
	const char *desc;  /* one line, with the unit */
	double def, min, max;
	bool integer;
};

/* Parameter values, indexed like the algorithm's params table. */
struct algo_params {
	double v[ALGO_MAX_PARAMS];
	uint32_t given; /* bit i: v[i] was set by the user (algo_params_set), not a default */
};

struct algo_kernel;

struct algo_env {
	struct backend bk;
	uint64_t seed; /* for algorithms that sample at random */
	/* The Linux version whose behaviour a Linux model follows (kernel.h); NULL: the newest. */
	const struct algo_kernel *kernel;
};

struct algo_ops {
	uint32_t version; /* ALGO_OPS_VERSION the plug-in was written for */
	const char *name;
	const char *description; /* one line */
	uint32_t caps;
	const struct algo_param *params;
	uint32_t nparams;

	int (*create)(void **out, const struct algo_params *p, const struct algo_env *env,
		      struct sp_err *err);
	void (*destroy)(void *st);
	/*
	 * One batch at now_ns; *sleep_ns: time to sleep after it
	 * (ALGO_SLEEP_FOREVER: only changes wake it).  Returns 0 or a negative
	 * SP_E* code (out of memory), which stops the run.
	 */
	int (*batch)(void *st, uint64_t now_ns, uint64_t *sleep_ns);
	/* A page changed (enum algo_change bits), after the backend applied it; 0 or SP_E*. */
	int (*page_changed)(void *st, bk_page p, uint32_t what);
	/* Change a tunable at run time (value already validated); NULL: none can change. */
	int (*set_param)(void *st, uint32_t idx, double value, struct sp_err *err);
	/* Fill the (algo) fields of m; leave the others alone. */
	void (*metrics)(const void *st, struct metrics *m);

	/* ---- version 2 ---- */
	/*
	 * Optional: the absolute time of the next batch, given when the batch
	 * ended (its start plus its modelled CPU time) and the sleep it asked
	 * for - for sleeps that end on timer ticks.  NULL: end + sleep.
	 */
	uint64_t (*wake_at)(const void *st, uint64_t batch_end_ns, uint64_t sleep_ns);

	/* ---- version 3 ---- */
	/*
	 * Optional, both or neither: fast-forward over idle time (the
	 * simulator's, sim/run.c; see "Idle time" in README.md).
	 *
	 * repeat() is asked after every batch, with idle_ns, the time from this
 * batch to the next write, snapshot or the end of the run (UINT64_MAX when
 * none is known): an instance may spare itself the search for a cycle when
 * too little idle time is left to skip any.  It returns true when the
	 * instance's state now equals its state right after an earlier batch,
	 * the cycle's start, whose start time it puts in *since_ns - except for
	 * counters of work done (full_scans, pages_scanned, pages_skipped, ...),
	 * which only grow by the same amount every cycle, and for times the
	 * instance keeps, which are later by exactly now - since.  "State" is
	 * everything a later decision, count or wake_at() may depend on, so
	 * that, the memory being unchanged too, every later cycle repeats this
	 * one.  After answering true, the cycle's start is this batch.  The
	 * instance chooses its cycle (a full scan, the 9 scans of smart_scan's
	 * skipping, the batches until a cursor returns to the same page...) and
	 * forgets it at any page_changed() or set_param().  The driver checks
	 * the rest: no write, no other event, the same backend counts, metrics
	 * and duration in two cycles running.
	 *
	 * skip(n, cycle_ns) moves the instance as if n more such cycles had run
	 * (cycle_ns: the cycle's duration): every work counter grows by n times
	 * its growth in one cycle and every kept time by n * cycle_ns; the
	 * instance then starts a new cycle at the next batch.
	 *
	 * An algorithm without them is simulated batch by batch.
	 */
	bool (*repeat)(void *st, uint64_t idle_ns, uint64_t *since_ns);
	void (*skip)(void *st, uint64_t n, uint64_t cycle_ns);

	/* ---- version 4 ---- */
	/*
	 * Optional: the changes (enum algo_change bits) this instance needs
	 * page_changed() for, asked once right after create().  A driver may
	 * then leave out a page_changed() whose what shares no bit with it
	 * (e.g. an oracle that reads the backend's counts needs none: a call a
	 * page record saved in a replay).  NULL: every change.
	 */
	uint32_t (*hears)(const void *st);
};

/*
 * The contract check every driver runs before create(): a name, a version
 * this build knows, every mandatory member, a sane parameter table.  0 or
 * SP_EINVAL with a message naming what is wrong (kit.c).
 */
int algo_check(const struct algo_ops *a, struct sp_err *err);

/* Registry (registry.c). */
size_t algo_count(void);
const struct algo_ops *algo_at(size_t i);
const struct algo_ops *algo_find(const char *name);

/* Parameters (params.c). */
void algo_params_defaults(const struct algo_ops *a, struct algo_params *out);
int algo_param_index(const struct algo_ops *a, const char *name);
/* Parses "key=value" into out; errors name the valid keys or the range. */
int algo_params_set(const struct algo_ops *a, struct algo_params *out, const char *kv,
		    struct sp_err *err);
/* Writes "key=value key=value ..." into buf (for reports). */
void algo_params_format(const struct algo_ops *a, const struct algo_params *p, char *buf,
			size_t len);
/* The same, leaving out a tunable kernel k lacks (kernel.h; k NULL: none left out). */
struct algo_kernel;
void algo_params_format_for(const struct algo_kernel *k, const struct algo_ops *a,
			    const struct algo_params *p, char *buf, size_t len);

#endif
