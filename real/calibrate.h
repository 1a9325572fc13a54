/*
 * calibrate.h - measures the CPU cost model's constants on this machine:
 * nanoseconds per page visit, checksum, compare, tree step, merge, COW
 * break and first visit (enum bk_cost), for the simulator's --cost.
 */
#ifndef SP_REAL_CALIBRATE_H
#define SP_REAL_CALIBRATE_H

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>

#include "backend.h"
#include "ksm_sysfs.h"
#include "sp_error.h"

#define REAL_CALIB_BATCH_PHASES 3
#define REAL_CALIB_VISIT_POINTS 2

struct real_calibration {
	double ns[BK_COST__COUNT];
	bool measured[BK_COST__COUNT];  /* false: not measured (no KSM, not root) */
	uint64_t pages;                 /* region size used, pages */
	/* what ksmd did, per page scanned, in each phase (0 if not run) */
	double ksmd_first_scan_ns;      /* first visits: checksum and rmap item allocation */
	double ksmd_unique_scan_ns;     /* unique pages, unstable tree rebuilt */
	double ksmd_merge_scan_ns;      /* pairs of equal pages merging */
	double ksmd_merged_scan_ns;     /* visits of pages already merged */
	/* phase C (0 if not run): the hot scans, then the slow ones aimed at each idle class */
	double hot_scan_ns;             /* per page, 4096 unique pages, sleep 0 */
	double idle_period_ns[BK_IDLE_CLASSES]; /* each slow scan's period */
	double idle_scan_ns[BK_IDLE_CLASSES];   /* and its cost per page */
	double idle_range_ns[BK_IDLE_CLASSES][2]; /* the cheapest and dearest steady scan, a page */
	double idle_hot_ns;             /* the model's cost of a hot unique page there */
	int hot_windows;                /* the hot scan's 200 ms windows (median of all) */
	/*
	 * phase F (0 if not run): the slow point tree_pair's pages scanned at
	 * its period in tree_batches batches (the unstable tree then read idle
	 * by the later batches): ksmd's CPU per page, the period, the cheapest
	 * and dearest steady scan (real_calib_tree_solve())
	 */
	int tree_pair;
	uint64_t tree_pages;
	unsigned tree_batches;
	double tree_scan_ns;
	double tree_period_ns;
	double tree_range_ns[2];
	/*
	 * phase D (0 if not run): ksmd's CPU per batch after a 20 ms sleep and
	 * the pages it read, 0, ~4 and ~32 (real_calib_batch_solve()), and the
	 * scan period at 0 (41 batches)
	 */
	double batch_cpu_ns[REAL_CALIB_BATCH_PHASES];
	double batch_reads[REAL_CALIB_BATCH_PHASES];
	double batch_range_ns[REAL_CALIB_BATCH_PHASES][2]; /* the cheapest and dearest steady scan's */
	double batch_period_ns;
	/*
	 * phase E (0 if not run): ksmd's CPU per visit of merged pages visited
	 * in batches of 2000 after a short and a long sleep (~0.1 and ~4 s
	 * scans), the scan periods, the cheapest and dearest steady scan's
	 */
	double visit_cpu_ns[REAL_CALIB_VISIT_POINTS];
	double visit_period_ns[REAL_CALIB_VISIT_POINTS];
	double visit_range_ns[REAL_CALIB_VISIT_POINTS][2];
};

/*
 * How unsteady the host was while c was measured: the largest (dearest -
 * cheapest steady scan) / median over the slow points of phase C, the
 * batch phases of D, the points of E and phase F (0 when none ran).  On the development VM 0.1-0.3 in a
 * quiet spell, 0.5-0.9 when the host's cost of idle memory moved under the
 * calibration (bench/README.md "bench_cost.sh", sixth round).
 */
double real_calib_spread(const struct real_calibration *c);

/*
 * Phase E's costs from its two points (c's visit_* fields and visit cost),
 * the periods counted in whole ms as the ksm model counts them (none under
 * 35 ms): visit_idle, the line's slope between the two points per ms;
 * visit_cold, the first point less a visit and its ms of visit_idle.  Both
 * at least 0; sets them measured.  Nothing when phase E did not run or its
 * two periods are not two idle ms counts in order.
 */
void real_calib_visit_solve(struct real_calibration *c);

/*
 * Phase D's costs from its batches (c's batch_* fields and visit costs):
 * without phase E (visit_cold not measured), visit_idle is the batch that
 * reads nothing per visit (4096/41) less a visit, per ms of the scan
 * period (whole ms, as the ksm model counts; none under 35 ms); with it,
 * batch_wake is that batch less its visits as E prices them (visit,
 * visit_idle a ms, visit_cold).  batch_read is where the line through the
 * batches at ~4 and ~32 reads meets 0 reads, less the visits and the
 * wake-up.  All at least 0; sets them measured.
 */
void real_calib_batch_solve(struct real_calibration *c);

/*
 * The unstable tree levels idle 35 ms or more that the ksm model counts a
 * page (touch_tree_idle(): level j of a search idle (now - the scan's
 * start) / 2^j, `now` the batch's start), on average over a scan of `pages`
 * unique pages (page i inserted into a tree of i) in `batches` equal
 * batches, the last followed by the wrap's (empty) one, each after a sleep:
 * a batch lasts pages / batches x page_ns, the sleeps share the rest of the
 * period equally.
 */
double real_calib_tree_touches(uint64_t pages, unsigned batches, double period_ns, double page_ns);

/*
 * Phase F's cost (c's tree_* fields, the paired slow point's cost per page
 * and the batch costs): tree_idle, what phase F's scan cost a page more
 * than the paired slow point's one batch at the same period, less the
 * extra batches' wake-ups and first reads (batch_wake + batch_read each),
 * over real_calib_tree_touches().  At least 0; sets it measured.  Nothing
 * when phase F did not run, its pair was not measured, or the model counts
 * no idle level there.
 */
void real_calib_tree_solve(struct real_calibration *c);

typedef void (*real_calib_progress_fn)(void *arg, const char *phase, double fraction);

/*
 * Userspace timings (checksum, compare, tree step) always; with ksm (the
 * KSM directory opened for writing; NULL: userspace only), ksmd's own CPU time over `pages` unique and duplicated pages (visit,
 * tree step, merge, first visit, idle touches, a batch's read after a sleep,
 * a visit a ms since the page's last one)
 * and the COW break of a merged page.  Saves
 * and restores every KSM tunable; the host's other mergeable memory would
 * disturb it.  When *stop becomes non-zero (a signal; stop may be NULL) the
 * wait for ksmd ends with SP_EIO, tunables restored as on any failure.
 */
int real_calibrate(struct real_calibration *out, uint64_t pages, const struct real_ksm *ksm,
		   const volatile sig_atomic_t *stop, real_calib_progress_fn progress, void *arg,
		   struct sp_err *err);

#endif
