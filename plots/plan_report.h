/*
 * plan_report.h - what `sim plan` decided and why, as data (filled by the
 * planner, sim/plan.h), and the report that shows it: DIR/index.html (the
 * answers first, in sentences with numbers, then the frontier plot with
 * the chosen point marked, the swap and NUMA sections), DIR/plan.csv
 * (every point evaluated), DIR/plan.gp and its plots.
 *
 * Library code: nothing here prints or exits.
 */
#ifndef SP_PLOT_PLAN_REPORT_H
#define SP_PLOT_PLAN_REPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "algorithm.h"
#include "report.h"
#include "sp_error.h"
#include "trace.h"

/* How a point sets KSM's tunables. */
enum plot_plan_policy {
	PLOT_PLAN_FIXED,    /* fixed settings from the start (samepaged policy "plan") */
	PLOT_PLAN_KSMTUNED, /* the ksmtuned loop drives pages_to_scan, sleep_millisecs, run */
	PLOT_PLAN_ADVISOR,  /* the kernel's scan-time advisor drives pages_to_scan */
	PLOT_PLAN__COUNT
};

/* "fixed", "ksmtuned", "advisor". */
const char *plot_plan_policy_name(enum plot_plan_policy p);

/* One evaluated setting. */
struct plot_plan_point {
	enum plot_plan_policy policy;
	struct algo_params params;  /* ksm's tunables: all of them for fixed settings; for a
				     * policy, its starting values and the ones it leaves alone */
	char ctl_params[256];       /* the policy's parameters "key=value ..."; "" for fixed */
	struct plot_summary s;
	double cpu_pct;             /* mean scanner CPU over the run, % of one core */
	uint64_t stopped_ms;        /* simulated time a policy kept scanning stopped */
	unsigned round;             /* search round that added it: 0 the coarse grid */
	bool feasible;              /* settled, saved something, within the CPU budget and the
				     * settle time */
	bool frontier;              /* settled, saved something, and no other such point is at
				     * least as good on savings, CPU and time to 90% and better
				     * on one */
};

/* The overcommit and swap answer (all sizes MiB). */
enum plot_plan_verdict {
	PLOT_PLAN_UNKNOWN,      /* the host's memory was not given */
	PLOT_PLAN_SAFE,         /* the committed memory fits in RAM without KSM */
	PLOT_PLAN_SWAP_NEEDED,  /* it fits in RAM + swap, not in RAM: swap is used if merged
				 * pages unshare */
	PLOT_PLAN_UNSAFE,       /* it does not fit in RAM + swap: add swap or commit less */
};

struct plot_plan_swap {
	double host_mib, used_mib, swap_mib; /* the host: RAM, its own use, swap */
	double committed_mib;   /* every page of every guest */
	double present_mib;     /* guest pages present at the end of the run */
	double saved_peak_mib;  /* the most KSM saved at any sample */
	double unshare_mib;     /* worst case: every merged page unshares (= saved_peak) */
	double after_merge_mib; /* present - saved_peak: guest memory with merging */
	double headroom_mib;    /* RAM + swap - host use - guest memory after merging */
	double ram_headroom_mib;/* RAM - host use - guest memory after merging */
	double swap_needed_mib; /* max(0, host use + committed - RAM) */
	double swap_short_mib;  /* max(0, host use + committed - RAM - swap) */
	enum plot_plan_verdict verdict;
};

/* merge_across_nodes=1 against =0, at the chosen settings. */
struct plot_plan_numa {
	uint32_t nodes;          /* nodes in the trace */
	bool evaluated;          /* both variants ran and settled */
	double saved1_mib, saved0_mib; /* final savings with =1 and =0 */
	double lost_mib, lost_pct;     /* saved1 - saved0, and as % of saved1 */
	double cpu1_pct, cpu0_pct;
	int64_t remote_sharers;  /* with =1: mappings of a frame on another node */
	double remote_pct;       /* of the guests' present pages */
	int recommend;           /* 0 or 1 */
	char reason[512];        /* one sentence */
};

struct plot_plan {
	const char *trace_path;
	const struct trace_header *header;
	const char *options;        /* horizon, sampling, cost model: one line */
	const char *source_note;    /* e.g. "replicated to 8 guests from 4"; may be NULL */
	double cpu_budget_pct;      /* mean % of one core */
	double settle_s;            /* 0: no settle constraint */
	double tie_pct;             /* savings within this % of the best are a tie */
	const struct plot_plan_point *points;
	size_t npoints;
	size_t chosen;              /* index in points, SIZE_MAX when nothing is feasible */
	size_t tied;                /* other feasible points tied with the chosen on savings */
	size_t best_fixed;          /* the chosen among fixed settings (SIZE_MAX: none) */
	struct plot_plan_swap swap;
	struct plot_plan_numa numa; /* numa.nodes < 2: no NUMA section */
	const char *config_path;    /* the samepaged configuration written, or NULL */
	const char *config_note;    /* how the configuration differs from the chosen point, or NULL */
	uint64_t runs;              /* simulations run */
};

/* Writes plan.csv, plan.gp and its plots, then index.html, into dir (created if missing). */
int plot_plan_write(const char *dir, const struct plot_plan *p, struct sp_err *err);
/* The plan.csv header. */
extern const char plot_plan_header[];

#endif
