/*
 * plan.h - the planner behind `sim plan`: from a trace and a host to a
 * decision an operator can deploy.
 *
 * It searches KSM's tunables (pages_to_scan, sleep_millisecs, smart_scan,
 * use_zero_pages, max_page_sharing, merge_across_nodes) and the control
 * policies (fixed settings, ksmtuned, advisor) for the frontier of memory
 * saved against CPU and time to 90%, and picks the setting that saves the
 * most within a CPU budget and a settle time (savings within tie_pct of the
 * most count as a tie, broken by time to 90%, then CPU).  Then it answers
 * the overcommit and swap question for the host and, on a trace with
 * several NUMA nodes, compares merge_across_nodes 0 and 1.
 *
 * The search (sim/plan.c, "Search"): a coarse grid, then rounds that
 * refine around the points that matter, on a lattice of pages_to_scan =
 * 16 * 2^(i/4) and sleep_millisecs = 10 * 2^(j/4).  sim_plan_exhaustive()
 * runs the whole factor-2 sub-lattice instead, to check the search.
 */
#ifndef SP_SIM_PLAN_H
#define SP_SIM_PLAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "parallel.h"
#include "plan_report.h"
#include "sim.h"

struct sim_plan_opts {
	double host_mem_mib;    /* host RAM; 0: unknown (no swap verdict; ksmtuned assumes 16 GiB) */
	double host_used_mib;   /* memory used by other than the guests */
	double swap_mib;
	double cpu_budget_pct;  /* mean scanner CPU over the horizon, % of one core (default 10) */
	double settle_s;        /* savings wanted within this many seconds; 0: no constraint */
	double tie_pct;         /* default 0.5 */
	uint64_t horizon_ms;    /* simulated time; 0: until tail_ms after the last snapshot */
	uint64_t tail_ms;       /* default 60000 */
	uint64_t sample_ms;     /* default 1000 */
	struct sim_cost cost;
	char cost_from[512];    /* where cost came from (sim_config.cost_from) */
	struct algo_kernel kernel; /* the Linux version modelled (default: the newest) */
	unsigned threads;       /* 0: one per CPU */
	bool policies;          /* also evaluate ksmtuned and advisor (default true) */
};

void sim_plan_opts_defaults(struct sim_plan_opts *o);

struct sim_plan {
	struct plot_plan_point *points; /* every point evaluated, in order of evaluation */
	size_t n, cap;
	size_t chosen;       /* SIZE_MAX when no point is feasible */
	size_t tied;
	size_t best_fixed;   /* the chosen among fixed settings, SIZE_MAX if none is feasible */
	struct plot_plan_swap swap;
	struct plot_plan_numa numa;
	uint64_t runs;       /* simulations run */
};

/* Progress: runs done and runs known so far (the search adds runs as it goes). */
typedef void (*sim_plan_progress_fn)(void *arg, uint64_t done, uint64_t total);

/* The search, the choice, the swap answer and the NUMA comparison. */
int sim_plan_run(const struct trace_mem *tm, const struct sim_plan_opts *o,
		 sim_plan_progress_fn progress, void *arg, struct sim_plan *out, struct sp_err *err);
/*
 * Every fixed setting of the factor-2 lattice within the budget (each lane
 * of rising pages_to_scan up to its first point beyond the budget), with
 * smart_scan and use_zero_pages 0 and 1 (and merge_across_nodes, several
 * nodes), the rest at defaults: the reference the search is checked against.
 */
int sim_plan_exhaustive(const struct trace_mem *tm, const struct sim_plan_opts *o,
			struct sim_plan *out, struct sp_err *err);
void sim_plan_release(struct sim_plan *p);

/*
 * Marks every point's cpu_pct, feasible and frontier flags and picks:
 * *chosen (SIZE_MAX if none is feasible), *tied, *best_fixed.
 */
void sim_plan_assess(struct plot_plan_point *pts, size_t n, const struct sim_plan_opts *o,
		     size_t *chosen, size_t *tied, size_t *best_fixed);

/*
 * The overcommit and swap answer from the host (o), the guests' committed
 * and present memory and the most KSM saved (MiB).
 */
void sim_plan_swap(const struct sim_plan_opts *o, double committed_mib, double present_mib,
		   double saved_peak_mib, struct plot_plan_swap *out);

/*
 * The NUMA recommendation from the two variants' summaries (page size for
 * MiB): fills every field of out but nodes.  Rule: with =1, if less than 1%
 * of the present guest pages map a remote frame, keep 1; otherwise prefer
 * 0 if it loses at most 10% of the savings and is feasible, else keep 1.
 */
void sim_plan_numa(const struct plot_plan_point *p1, const struct plot_plan_point *p0,
		   uint32_t page_size, struct plot_plan_numa *out);

/*
 * Writes the samepaged configuration (KEY=VALUE, see README.md "sim plan")
 * that applies point pt (merge_across_nodes as mac: 0, 1, or -1 for "auto")
 * to path, atomically.  source: free text for PLAN_SOURCE.
 */
int sim_plan_write_config(const char *path, const struct plot_plan_point *pt, int mac,
			  const char *source, struct sp_err *err);
/* The same for a kernel (NULL: the newest): a tunable it lacks (smart_scan) is left out. */
int sim_plan_write_config_for(const char *path, const struct plot_plan_point *pt, int mac,
			      const struct algo_kernel *kernel, const char *source,
			      struct sp_err *err);

/* A sim_config for point pt under the options (ksm, its parameters, its policy). */
int sim_plan_config(const struct plot_plan_point *pt, const struct sim_plan_opts *o,
		    struct sim_config *cfg, struct sp_err *err);

#endif
