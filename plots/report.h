/*
 * report.h - comparison and sweep reports: per-run summaries, CSV tables,
 * gnuplot plots (PNG and SVG) and a self-contained HTML page per report
 * directory.
 *
 * A report directory is the unit: DIR/index.html refers to the images and
 * CSV files beside it.  Every file appears complete or not at all (CSV and
 * HTML through atomic_file, images renamed into place after gnuplot
 * succeeded), and index.html is written last and removed first, so a
 * directory holding index.html holds a complete report.
 *
 * Library code: nothing here prints or exits; errors are negative SP_E*
 * codes with a one-line message.
 */
#ifndef SP_PLOT_REPORT_H
#define SP_PLOT_REPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "algorithm.h"
#include "metrics.h"
#include "sp_error.h"
#include "trace.h"

/* ---- one run's summary -------------------------------------------------- */

/* What a run achieved; "saved" is pages_sharing + ksm_zero_pages + thp_zero_pages. */
#define PLOT_T90_NEVER UINT64_MAX

struct plot_summary {
	int64_t final_saved;    /* pages, at the last sample */
	int64_t peak_saved;     /* pages, the most at any sample */
	int64_t oracle_final;   /* pages, oracle_saving at the last sample */
	double pct_of_oracle;   /* 100 * final_saved / oracle_final (100 if the oracle is 0) */
	uint64_t t90_ms;        /* first sample time with saved >= 0.9 * final_saved;
				 * PLOT_T90_NEVER when nothing was saved or still_merging */
	int64_t cpu_ns;         /* scanner CPU at the last sample */
	int64_t cow_breaks;     /* at the last sample */
	uint64_t end_ms;        /* time of the last sample */
	bool still_merging;     /* the savings grew by more than 1% of final_saved over the
				 * last tenth of the run (at least one sample interval) */
	int64_t full_scans;     /* at the last sample */
	int64_t present;        /* pages_present at the last sample */
	int64_t remote_sharers; /* at the last sample */
};

/*
 * Summarises n samples (times in ms, ascending); n == 0 gives all zeros
 * (t90 never).
 */
void plot_summarize(const uint64_t *times, const struct metrics *m, size_t n,
		    struct plot_summary *out);
/* Whether s settled: it saved something and was no longer merging at the end. */
static inline bool plot_settled(const struct plot_summary *s)
{
	return s->t90_ms != PLOT_T90_NEVER;
}
/*
 * Why time to 90% is "never" ("" when it is not): one clause for a report,
 * e.g. "saved nothing: fewer than two full scans in the simulated time".
 */
const char *plot_never_reason(const struct plot_summary *s);
/* Mean scanner CPU over the run, % of one core (0 for an empty run). */
double plot_cpu_pct(int64_t cpu_ns, uint64_t end_ms);
/* 100 * saved / present (0 if nothing is present). */
double plot_pct_of_present(double saved, double present);
/* pages -> MiB for a page size in bytes. */
double plot_mib(int64_t pages, uint32_t page_size);
/* MiB saved per CPU second: INFINITY if no CPU was spent for a saving, 0 if nothing saved. */
double plot_mib_per_cpu_s(const struct plot_summary *s, uint32_t page_size);

/* mkdir -p dir. */
int plot_mkdir_p(const char *dir, struct sp_err *err);

/* A fixed palette: "#rrggbb" for index i (wraps around). */
const char *plot_colour(size_t i);

/* ---- sim compare -------------------------------------------------------- */

struct plot_run {
	const char *label;             /* "ksm", or an alias "ksm@aggr": the file names */
	const struct algo_ops *algo;
	struct algo_params params;
	size_t colour;                 /* palette index: same algorithm, same colour */
	bool variant;                  /* an alias: drawn dashed */
	const uint64_t *times;         /* the time series: n samples */
	const struct metrics *samples;
	size_t n;
	/*
	 * An observed series (sim compare --observed): what a host did, read
	 * from a CSV (source), not simulated; algo is NULL.  Its file in the
	 * report is observed-<label>.csv; it is drawn dotted with points.
	 */
	bool observed;
	const char *source;
};

/*
 * Runs: the simulated ones first, then the observed ones (if any), each of
 * which is compared with runs[0], the prediction.
 */
struct plot_compare {
	const char *trace_path;
	const struct trace_header *header;
	const char *options;           /* one line: seed, sample interval, duration... */
	const struct plot_run *runs;
	size_t nruns;
};

/*
 * Writes the comparison report into dir (created if missing): <label>.csv
 * per run, summary.csv, compare.gp and its plots (savings, cpu, cow,
 * savings_cpu as .png and .svg), and index.html last.
 */
int plot_compare_write(const char *dir, const struct plot_compare *c, struct sp_err *err);
/* The summary.csv header, for readers and tests. */
extern const char plot_summary_header[];

/* ---- observed series ---------------------------------------------------- */

/*
 * Reads a time series in `sim run --csv` columns (sim run, a report's
 * <label>.csv, samepaged's SAMEPAGE_CSV): a header naming time_ms,
 * pages_sharing and any other metric or tunable columns (each once, any
 * order; a metric absent reads 0), then rows of whole numbers with time_ms
 * strictly increasing.  Times are returned relative to the first row (the
 * file's own time origin).  SP_ECORRUPT "FILE:LINE: ..." for anything else,
 * SP_EIO if unreadable.  *times and *samples malloc'd.
 */
int plot_series_read(const char *path, uint64_t **times, struct metrics **samples, size_t *n,
		     struct sp_err *err);
/*
 * A host cannot count what the oracle could save nor the guests' present
 * pages: an observed series takes oracle_saving and pages_present from the
 * prediction pred (same trace) at the same time - its last sample at or
 * before each observed time - so that its "% of oracle" is against the
 * oracle of the trace given to compare.
 */
void plot_observed_fill(const uint64_t *times, struct metrics *samples, size_t n,
			const struct plot_run *pred);

/* The error of a prediction against an observation; saved as in plot_summary. */
struct plot_error {
	uint64_t end_ms;         /* the common span's end: the earlier of the two last times */
	int64_t observed;        /* saved pages at end_ms (each series' last sample at or before it) */
	int64_t predicted;
	int64_t error;           /* observed - predicted, pages */
	double error_pct;        /* 100 * error / predicted; 0 if both are 0, NAN if only predicted is */
	double mae;              /* mean |observed - predicted| over the observed samples up to end_ms,
				  * the prediction taken at its last sample at or before each, pages */
	size_t compared;         /* observed samples in that mean */
	uint64_t t90_observed_ms, t90_predicted_ms; /* PLOT_T90_NEVER if never */
	bool t90_both;           /* both settled */
	double t90_error_s;      /* observed - predicted time to 90%, s (NAN unless t90_both) */
};
void plot_prediction_error(const struct plot_run *obs, const struct plot_run *pred,
			   struct plot_error *out);
/* The prediction.csv header. */
extern const char plot_prediction_header[];

/* ---- sim sweep ---------------------------------------------------------- */

#define PLOT_SWEEP_MAX_KEYS 8

/* The definition of a sweep: what every share must agree on. */
struct plot_sweep_def {
	char algorithm[64];
	char trace[4096];
	char options[2048];            /* seeds, timing, cost, fixed parameters: one line */
	uint32_t page_size;
	uint32_t nkeys;
	char keys[PLOT_SWEEP_MAX_KEYS][64];
	uint64_t points;               /* product of the value counts */
	uint64_t seeds;                /* runs per point: seeds 1..seeds */
};

/* One run of a sweep: run = point * seeds + (seed - 1). */
struct plot_sweep_run {
	uint64_t run, point, seed;
	double values[PLOT_SWEEP_MAX_KEYS]; /* the varied keys' values at this point */
	struct plot_summary s;
	char params[512];              /* every parameter of the run (algo_params_format) */
};

/* The per-run CSV (runs.csv, share-I-of-N.csv) of rows (any order). */
int plot_sweep_write_runs(const char *path, const struct plot_sweep_def *d,
			  const struct plot_sweep_run *rows, size_t n, struct sp_err *err);
/*
 * Reads every DIR/share-I-of-N.csv, checks they are one complete and
 * consistent sweep (one split N, every share present, same definition, every
 * run exactly once) and returns the definition and the rows sorted by run
 * (*rows malloc'd).
 */
int plot_sweep_read_shares(const char *dir, struct plot_sweep_def *d,
			   struct plot_sweep_run **rows, size_t *n, struct sp_err *err);

/* Per-point statistics over the seeds: mean, sd, 95% CI half-width (t). */
struct plot_stat {
	double mean, sd, ci95; /* sd and ci95 NAN with a single run */
};

struct plot_sweep_point {
	uint64_t point;
	double values[PLOT_SWEEP_MAX_KEYS];
	uint64_t runs;
	struct plot_stat saved;   /* final savings, pages */
	struct plot_stat t90_s;   /* time to 90% of the final savings, s; NAN mean (never)
				   * unless every run settled */
	struct plot_stat cpu_s;   /* scanner CPU, s */
	struct plot_stat cow;     /* COW breaks */
	struct plot_stat remote;  /* remote_sharers at the end */
	double present;           /* mean pages present at the end */
	double end_s;             /* mean simulated time, s */
	uint64_t unsettled;       /* runs whose time to 90% is never */
	const char *never;        /* why (plot_never_reason of the first such run); "" if settled */
	bool pareto;              /* settled, saved something, and no other such point saves as
				   * much for as little CPU */
};
/* Mean scanner CPU of a point as % of one core. */
double plot_sweep_cpu_pct(const struct plot_sweep_point *p);
/*
 * The point that saved the most, ties (equal mean savings) broken by time
 * to 90% then CPU, among the settled points; UINT64_MAX if none settled.
 * *ties: how many other settled points save exactly as much.
 */
uint64_t plot_sweep_best(const struct plot_sweep_point *p, uint64_t n, uint64_t *ties);
/* Whether every point's runs gave identical results (seeds > 1 on a deterministic setup). */
bool plot_sweep_seeds_identical(const struct plot_sweep_def *d, const struct plot_sweep_point *p);

void plot_stat_compute(const double *x, size_t n, struct plot_stat *out);
/* rows sorted by run and complete: one point per d->points. *out malloc'd. */
int plot_sweep_points(const struct plot_sweep_def *d, const struct plot_sweep_run *rows, size_t n,
		      struct plot_sweep_point **out, struct sp_err *err);
extern const char plot_sweep_header_tail[];

/*
 * Writes the sweep report into dir: runs.csv, sweep.csv, sweep.gp and its
 * plots, index.html last.  desc: the trace's description (may be NULL),
 * algo: the algorithm (for its description; may be NULL).
 */
int plot_sweep_write(const char *dir, const struct plot_sweep_def *d,
		     const struct plot_sweep_run *rows, size_t n, const char *desc,
		     const struct algo_ops *algo, struct sp_err *err);

#endif
