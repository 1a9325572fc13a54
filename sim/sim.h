/*
 * sim.h - the simulator: memory state replayed from a trace (the simulated
 * backend), the simulated clock and scan scheduler, and the CPU cost model.
 *
 * Simulation semantics (also in README.md):
 *  - A trace is a sequence of snapshots.  Between snapshots content is
 *    constant; a page whose state changes was written at the time of the
 *    snapshot that records the change (with spread_writes, at a time drawn
 *    uniformly, seeded, from the interval since the previous snapshot).
 *  - Time is simulated in nanoseconds.  An algorithm runs a batch when its
 *    sleep is over, instantly as far as memory is concerned; its next batch
 *    starts after the batch's modelled CPU time plus the sleep it asked for.
 *  - At equal times, writes are applied first, then the batch runs, then a
 *    sample is taken.  Samples are taken every sample_ms from time 0.
 *  - The run lasts duration_ms, or by default until tail_ms after the last
 *    snapshot, so scanners get time to settle after the last change.
 *  - A run is a pure function of (trace, algorithm, parameters, seed, cost
 *    model): deterministic, no globals; many runs may share one process.
 *  - A batch's CPU time is the cost of its own counted work, so the same
 *    batch takes the same time at any point of a run.
 *  - Idle time is fast-forwarded (run.c): when no write is due and the
 *    algorithm's state repeats from cycle to cycle but for its work
 *    counters (algo_ops.repeat), whole cycles are skipped at once; when no
 *    batch is due at all (an omniscient algorithm between writes), the
 *    metrics are constant to the next write.  Every count, time and sample
 *    value is the one the batch-by-batch simulation gives.  Samples inside a
 *    skipped span are reported as that simulation would report them, but a
 *    span of more than SIM_SKIP_ROWS samples is thinned: its first and last
 *    samples and every k-th between them, k the least that keeps the span
 *    to SIM_SKIP_ROWS rows.  Not with a control policy: it may act after
 *    any batch, so every batch and tick is simulated.
 */
#ifndef SP_SIM_H
#define SP_SIM_H

#include <stdbool.h>
#include <stdint.h>

#include "algorithm.h"
#include "control.h"
#include "kernel.h"
#include "metrics.h"
#include "sp_error.h"
#include "trace.h"

/* CPU cost model: nanoseconds per counted operation (enum bk_cost). */
struct sim_cost {
	double ns[BK_COST__COUNT];
};

void sim_cost_defaults(struct sim_cost *c);
/* Parses "visit=1500,checksum=600,..." over the costs in c. */
int sim_cost_parse(struct sim_cost *c, const char *spec, struct sp_err *err);
const char *sim_cost_name(enum bk_cost k);
/*
 * A costs file (kvfile.h syntax; keys are the operation names, values ns,
 * e.g. "merge=1550"), over the costs in c; c is unchanged on failure.
 * SP_EIO when it cannot be read; SP_ECORRUPT with "PATH:LINE: what" for a
 * line that is not KEY=VALUE, an unknown operation or a bad time.  When
 * set is not NULL, set[k] says whether the file gave operation k.
 */
int sim_cost_load(struct sim_cost *c, const char *path, bool set[BK_COST__COUNT],
		  struct sp_err *err);
/*
 * Writes the operations of c for which which[k] (NULL: all) to path,
 * atomically, after comment lines: a header and note (may hold newlines).
 */
int sim_cost_save(const struct sim_cost *c, const bool *which, const char *note, const char *path,
		  struct sp_err *err);
/* The scanner's CPU time of counted work (every count but COW breaks, the writer's), ns. */
double sim_cost_scanner_ns(const struct sim_cost *c, const uint64_t *counts);

/* The simulated backend: page and frame state of a trace's guests. */
struct sim_mem;

/* What splitting a transparent huge page for a merge does (mem.c explains). */
enum sim_huge {
	SIM_HUGE_SPLIT_ZERO = 0, /* Linux >= 6.12: zero-filled subpages go to the zero page */
	SIM_HUGE_SPLIT = 1,      /* Linux <= 6.11, ESX: subpages stay as they are */
};

int sim_mem_new(struct sim_mem **out, const struct trace_header *h, struct sp_err *err);
void sim_mem_free(struct sim_mem *m);
/* Sets what a split does (default SIM_HUGE_SPLIT_ZERO); call before the first merge. */
void sim_mem_set_huge(struct sim_mem *m, enum sim_huge huge);
struct backend sim_mem_backend(struct sim_mem *m);
/*
 * Applies one record (the page's full new state).  *what receives the
 * enum algo_change bits to report, and *notify whether a scanning algorithm
 * must hear of it (a COW break or an unmap); omniscient ones hear of all.
 */
int sim_mem_apply(struct sim_mem *m, const struct trace_record *rec, bk_page *page,
		  uint32_t *what, bool *notify, struct sp_err *err);
/* The page index a record is for, or SIM_NO_PAGE if the replay does not number that page. */
#define SIM_NO_PAGE UINT64_MAX
uint64_t sim_mem_locate(const struct sim_mem *m, const struct trace_record *rec);
/* The hash under which rec's content is looked up (cidtab_hash() of its fingerprint and domain). */
uint64_t sim_mem_hash(const struct sim_mem *m, const struct trace_record *rec);
/*
 * sim_mem_apply() of a record whose sim_mem_locate() is at and whose
 * sim_mem_hash() is hash (so the lookup and the hash are done once).
 */
int sim_mem_apply_at(struct sim_mem *m, const struct trace_record *rec, uint64_t at, uint64_t hash,
		     bk_page *page, uint32_t *what, bool *notify, struct sp_err *err);
/* An algorithm's page_changed(): st's page changed as what says (ALGO_CHANGE_*). */
typedef int (*sim_mem_changed_fn)(void *st, bk_page page, uint32_t what);
/*
 * sim_mem_apply_at() of rec[0..n-1] in order (at[] and hash[] as
 * sim_mem_prefetch_batch() gave them), each record whose change is heard of
 * (what shares a bit with hear, and notify or all) told to changed(st, page,
 * what) before the next is applied.  *applied receives the records applied: all n, or
 * on an error those before it (and the one whose changed() failed).
 * Returns 0, a record's error as sim_mem_apply_at() does (err set), or
 * changed()'s negative return with *in_changed true (err untouched).
 */
int sim_mem_apply_batch(struct sim_mem *m, const struct trace_record *rec, unsigned n,
			const uint64_t *at, const uint64_t *hash, bool all, uint32_t hear,
			sim_mem_changed_fn changed, void *st, unsigned *applied, bool *in_changed,
			struct sp_err *err);
/*
 * A hint that the n records rec[0..n-1] (n <= SIM_HINT_BATCH_MAX) are
 * applied soon: starts loading the pages and index slots their applies will
 * touch.  at[k] receives sim_mem_locate(m, &rec[k]), hash[k] sim_mem_hash().
 * Every record's place and hash first, then the hints back to back: on
 * this project's VM a prefetch holds up the instructions behind it, so
 * hints with a record's work between them overlap only a few deep
 * (bench/README.md, issue 14, seventeenth and eighteenth rounds).
 */
#define SIM_HINT_BATCH_MAX 64
void sim_mem_prefetch_batch(const struct sim_mem *m, const struct trace_record *rec, unsigned n,
			    uint64_t *at, uint64_t *hash);
/*
 * The second hint, some records after sim_mem_prefetch_batch() gave at[]
 * and hash[] for the same n records, once what that loaded has arrived:
 * starts loading the content entries their applies read.
 */
void sim_mem_prefetch_more_batch(const struct sim_mem *m, const struct trace_record *rec,
				 unsigned n, const uint64_t *at, const uint64_t *hash);
/* Fills the (backend) fields of out. */
void sim_mem_metrics(const struct sim_mem *m, const struct sim_cost *cost, struct metrics *out);
/* Present pages, and those of them mapping the shared zero page (not in any RSS). */
void sim_mem_usage(const struct sim_mem *m, int64_t *present, int64_t *on_zero);
/* Counted work so far. */
const uint64_t *sim_mem_counts(const struct sim_mem *m);
/* Adds n times delta to the counted work (a fast-forward over n repeating cycles, run.c). */
void sim_mem_add_counts(struct sim_mem *m, const uint64_t *delta, uint64_t n);
uint64_t sim_mem_page_index(const struct sim_mem *m, uint32_t guest, uint64_t page);

/*
 * Which pages of each guest the simulated backend numbers (layout.c): the
 * pages the trace ever mentions, learnt by a pass over the whole trace that
 * also checks it to its END chunk.  A page never mentioned is absent
 * throughout, so a sparse guest costs what its mentioned pages cost.
 */
struct sim_layout {
	uint32_t nguests;
	uint64_t *base;     /* per guest: backend index of its first numbered page */
	uint64_t *npages;   /* per guest: pages numbered */
	uint64_t **pfn;     /* per guest: their sorted page numbers; NULL: every page 0..pages-1 */
	uint64_t total;     /* pages numbered in all */
	uint64_t snapshots;
	uint64_t last_ms;   /* time of the last snapshot */
	/*
	 * Distinct (content, security domain) pairs among the present non-zero
	 * records, estimated (HyperLogLog, ~1% error): at least about the most
	 * the replay holds at once, so the content-id table is sized for it.
	 */
	uint64_t contents;
};

/* Reads src to its end (checking everything) and fills out; release with sim_layout_release. */
int sim_layout_scan(struct sim_layout *out, const struct trace_source *src, struct sp_err *err);
void sim_layout_release(struct sim_layout *l);
/*
 * The same layout from a version-2 trace's summary, without a pass: 1 and
 * out filled when every guest is complete (all its pages in some snapshot);
 * 0 (nothing allocated) when a pass is needed; or SP_ENOMEM.
 */
int sim_layout_from_summary(struct sim_layout *out, const struct trace_header *h,
			    const struct trace_summary *sum, struct sp_err *err);
/* Backend index of (guest, page): 0, or SP_EINVAL if the layout does not number it. */
int sim_layout_index(const struct sim_layout *l, uint32_t guest, uint64_t page, uint64_t *out);
/* As sim_mem_new, numbering only the pages of layout (NULL: every page). */
int sim_mem_new_layout(struct sim_mem **out, const struct trace_header *h,
		       const struct sim_layout *layout, struct sp_err *err);

/*
 * The simulated clock counts nanoseconds in 64 bits: times up to
 * SIM_MAX_MS (about 292 years) are simulated, later ones are refused.  A run
 * that would take more than SIM_MAX_EVENTS samples and scanner batches is
 * refused before it starts, with its estimate.
 */
#define SIM_MAX_MS (UINT64_MAX / 1000000ull / 2)
#define SIM_MAX_EVENTS 200000000ull
/* Most samples reported for one fast-forwarded span (see the top of this file). */
#define SIM_SKIP_ROWS 10000u

/*
 * The simulated host that a control policy sees (struct ctl_host): its
 * memory, and what other than the trace's guests uses it.  Guest memory
 * committed = every guest page; free = mem - used - (guest pages - pages
 * saved), at least 0; no swap.
 */
struct sim_host {
	double mem_mib;  /* MemTotal, MiB (default 16384) */
	double used_mib; /* memory used by other than the guests, MiB (default 1024) */
};

/* Text parameters of the control policy (ctl_ops.text_params) given to a run. */
#define SIM_CTL_MAX_TEXT 8
struct sim_ctl_text {
	const char *name;
	const char *value;
};

/*
 * Observer hooks (optional, for tests and tools): they see the run without
 * driving it.  backend() gets the simulated backend once, before the
 * algorithm is created, and returns the one the algorithm is given (the
 * same, or a wrapper: checks, fault injection); record() runs before each
 * trace record is applied, with the memory still in its old state.
 */
struct sim_hooks {
	struct backend (*backend)(void *arg, struct sim_mem *m, struct backend bk);
	void (*record)(void *arg, struct sim_mem *m, const struct trace_record *rec);
	void *arg;
};

struct sim_config {
	const struct algo_ops *algo;
	struct algo_params params;
	uint64_t seed;
	uint64_t duration_ms;  /* 0: until tail_ms after the last snapshot */
	uint64_t tail_ms;
	uint64_t sample_ms;
	bool spread_writes;
	struct sim_cost cost;
	char cost_from[512];           /* where cost came from, for reports; "": not said */
	const struct ctl_ops *ctl;     /* control policy, or NULL */
	struct algo_params ctl_params;
	const struct sim_layout *layout; /* pages to number (sim_run_source); NULL: all, no estimate */
	struct sim_host host;          /* the host the control policy sees */
	struct sim_ctl_text ctl_text[SIM_CTL_MAX_TEXT]; /* the policy's text parameters (not owned) */
	int nctl_text;
	void *ctl_ctx;                 /* given to the policy as ctl_env.ctx (not owned; NULL: none) */
	/*
	 * The Linux version modelled (default: the newest): the ksm model's
	 * behaviour, and what a huge-page split does for ALGO_CAP_LINUX
	 * algorithms (the others split plainly).
	 */
	struct algo_kernel kernel;
	const struct sim_hooks *hooks; /* or NULL */
	/*
	 * Counting in full scans (a kernel's run compared scan by scan, as on a
	 * slow TCG guest): scans > 0 takes a sample after every full scan
	 * instead of every sample_ms and ends the run at the scans-th full scan
	 * (SP_EINVAL if duration_ms, required, comes first); snapshot_scans > 0
	 * (needs scans) applies snapshot i >= 1 right after full scan
	 * i x snapshot_scans instead of at its time.
	 */
	uint64_t scans;
	uint64_t snapshot_scans;
	/*
	 * Internal, for checks (sim run --no-skip): simulate every batch and
	 * sample of idle time instead of fast-forwarding it.  The results are
	 * the same; only the time taken (and the thinning of very long idle
	 * spans in the samples) differs.
	 */
	bool no_skip;
};

/*
 * Refuses (SP_ELIMIT, with the estimate) a run of cfg over a trace whose
 * last snapshot is at last_ms that would need more than SIM_MAX_EVENTS
 * samples and batches, or a clock beyond SIM_MAX_MS.  A run that can
 * fast-forward its idle time (sim_can_skip) is not refused for its length.
 */
int sim_check_estimate(const struct sim_config *cfg, uint64_t last_ms, struct sp_err *err);
/*
 * Whether a run of cfg fast-forwards idle time: not no_skip, no control
 * policy, not counting in full scans (scans), and an algorithm that implements repeat()/skip() or is omniscient
 * (it works only when told of a change, so it is idle between writes).
 */
bool sim_can_skip(const struct sim_config *cfg);

void sim_config_defaults(struct sim_config *c, const struct algo_ops *algo);
/*
 * Whether metric i is a counter the run's kernel has (always, but for the
 * ksm model's sysfs counters a version lacks); if not, why says so.
 */
bool sim_metric_offered(const struct sim_config *cfg, int i, char *why, size_t len);
/* What a split does for algorithm a on kernel k: Linux's >= 6.12 remap only inside Linux. */
enum sim_huge sim_huge_for(const struct algo_ops *a, const struct algo_kernel *k);
/* The simulated host's parameters (host_mem_mib, host_used_mib), as algo_param. */
extern const struct algo_param sim_host_params[];
extern const uint32_t sim_host_nparams;
/*
 * Takes one "key=value" of a control policy's settings: a numeric parameter
 * of cfg->ctl, one of its text parameters, or a simulated-host parameter.
 * 0, or SP_EINVAL with a message naming the valid keys.  cfg->ctl is set.
 */
int sim_ctl_set(struct sim_config *cfg, const char *kv, struct sp_err *err);

/* Called for every sample; return non-zero to stop the run (error SP_EINVAL). */
typedef int (*sim_sample_fn)(void *arg, uint64_t time_ms, const struct metrics *m);
/* Progress: simulated ms done and the end if known (0 while unknown). */
typedef void (*sim_progress_fn)(void *arg, uint64_t done_ms, uint64_t end_ms);

struct sim_result {
	struct metrics last;     /* at the last sample */
	uint64_t end_ms;         /* simulated time at the end */
	uint64_t snapshots;
	uint64_t records;        /* page records applied */
	uint64_t page_states;    /* pages x snapshots: logical records replayed */
	int64_t peak_saved;      /* max of metrics_saved(): pages_sharing + ksm_zero_pages
				    + thp_zero_pages, over the samples */
	uint32_t page_size;      /* the trace's, bytes: pages to MiB */
	/*
	 * The tunables as they are now: updated before every sample callback,
	 * so a callback that keeps a pointer to this result reads them
	 * (pages_to_scan, sleep_millisecs: -1 if the algorithm has none).
	 */
	struct metrics_tunables tunables;
	uint64_t stopped_ms;     /* simulated time scanning was stopped (a policy's run=0) */
	/* Idle time fast-forwarded (not simulated batch by batch), and the cycles skipped. */
	uint64_t skipped_ns;
	uint64_t skipped_cycles;
};

/* Replays the trace file at trace_path. */
int sim_run(const char *trace_path, const struct sim_config *cfg, sim_sample_fn sample,
	    sim_progress_fn progress, void *arg, struct sim_result *out, struct sp_err *err);
/* Replays any trace source, e.g. a cursor over a trace_mem shared by several runs. */
int sim_run_source(const struct trace_source *src, const struct sim_config *cfg,
		   sim_sample_fn sample, sim_progress_fn progress, void *arg,
		   struct sim_result *out, struct sp_err *err);

#endif
