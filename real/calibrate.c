/*
 * calibrate.c - implements real_calibrate(): the cost model's constants,
 * measured.
 *
 * Userspace, on a region of `pages` pages (larger than the caches):
 *   checksum   XXH64 of a 4 KiB page, the hash ksmd uses (xxhash());
 *   compare    memcmp of two equal 4 KiB pages (a full compare);
 *   tree_step  memcmp of two random different pages, which stops early:
 *              the cost is the cache misses of one tree node's page.
 * ksmd (root and KSM), pages_to_scan large, sleep 0, smart_scan 0, timing
 * ksmd's CPU (/proc/PID/schedstat) per full scan, SCANS scans per phase and
 * the median of the steady ones (a busy neighbour's bursts hit single scans):
 *   B. pages in groups of 128 equal pages: the third and later scans visit
 *      pages that are all merged already -> visit (page walk, rmap lookup);
 *   A. unique pages, later scans: checksum, empty stable tree, unstable
 *      tree insert of about log2(n) steps -> tree_step (one node visited,
 *      its early-exit memcmp included) = (cost - visit - checksum) / log2(n);
 *   B. in the second scan nearly every page finds its group's KSM page in
 *      a stable tree of n/128 nodes ->
 *      merge = scan cost per page - (visit + checksum + log2(n/128) steps);
 *   A. the first scan visits every page for the first time: checksum only,
 *      plus allocating each page's rmap item ->
 *      first_visit = first scan cost per page - (visit + checksum);
 *   a write to each merged page then times the COW break.
 *   C. hot: 4096 unique pages, one batch a scan, sleep 0 (scans of ~5 ms:
 *      hot even on a VM whose idle pages cost microseconds), the median of
 *      7 windows of 200 ms before the slow scans and 7 after phase F ->
 *      tree_step = (cost - visit - checksum) / the model's mean tree depth;
 *      idle: IDLE_PAGES unique pages, one batch a scan (the unstable tree
 *      rebuilt within the batch: hot, as the ksm model counts it), the
 *      sleep aiming the period at each idle class's centre (50 ms ... 5 s):
 *      the median of four steady scans' cost per page over the model's hot
 *      cost is the extra of a read idle that period, a point of a curve
 *      against idle time; each idle class costs the curve at its centre.
 *      Each point's cheapest and dearest scan are kept: their spread shows
 *      how much the host moved under the calibration (real_calib_spread()).
 *   F. (in C, after the slow scans) the 1 s point's pages at its period in
 *      8 batches instead of one: the pages are read as idle and search as
 *      many levels, but the later batches search a tree idle since the
 *      scan began; the extra per page, less the extra batches' wake-ups
 *      and first reads, over the idle levels the model counts a page ->
 *      tree_idle (real_calib_tree_solve()).
 *   D. batches after a sleep: 4096 pages, u of every 100 unique, the rest
 *      in merged groups, 100 pages a batch, sleep 20 ms (batch_timings()):
 *      ksmd's CPU per batch at u = 0 (100 visits of merged pages, each
 *      visited one scan, ~1 s, before), less 100 visits, per visit and ms
 *      of the scan -> visit_idle; at u = 4 and 32, a line against the pages
 *      a batch reads; at 0 reads, less the batch at u = 0 -> batch_read
 *      (what a batch that reads pays for following a sleep).  visit_idle
 *      then comes off phase C's slow scans too (their visits' share).
 *   E. (before D) visits in the scan's pattern: 16384 merged pages, 2000 a
 *      batch after 10 and 400 ms sleeps (scans of ~0.1 and ~4 s): ksmd's
 *      CPU per page at each, a line against the scan's whole ms: its slope
 *      is visit_idle, its value at the first less a visit is visit_cold
 *      (real_calib_visit_solve()); D's u = 0 then only checks them.
 * The kernel-measured tree step replaces the userspace one when available:
 * it is what ksmd pays.  Every KSM tunable is saved first and restored after,
 * also on failure.
 */
#define _GNU_SOURCE
#include "sp_util.h"
#include "calibrate.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>
#include <xxhash.h>

#include "kit.h"
#include "ksm_sysfs.h"
#include "materialize.h"

#define PAGE 4096u
#define GROUP 128 /* equal pages per content in phase B */

/* Fills page i of r with content id c (equal ids, equal bytes). */
static void fill(uint8_t *r, uint64_t i, uint64_t c)
{
	struct sp_fp fp = { c * 0x9e3779b97f4a7c15ULL + 1, c };

	real_fp_fill(r + i * PAGE, PAGE, fp);
}

static uint8_t *region(uint64_t pages)
{
	void *p = mmap(NULL, pages * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED)
		return NULL;
	madvise(p, pages * PAGE, MADV_NOHUGEPAGE);
	return p;
}

static void user_timings(struct real_calibration *out, uint8_t *a, uint8_t *b, uint64_t n)
{
	volatile uint64_t sink = 0;
	uint64_t seed = 42;
	double t;

	t = (double)sp_mono_ns();
	for (uint64_t i = 0; i < n; i++)
		sink += XXH64(a + i * PAGE, PAGE, 0);
	out->ns[BK_COST_CHECKSUM] = ((double)sp_mono_ns() - t) / (double)n;
	t = (double)sp_mono_ns();
	for (uint64_t i = 0; i < n; i++)
		sink += (uint64_t)memcmp(a + i * PAGE, b + i * PAGE, PAGE);
	out->ns[BK_COST_COMPARE] = ((double)sp_mono_ns() - t) / (double)n;
	t = (double)sp_mono_ns();
	for (uint64_t i = 0; i < n; i++) {
		uint64_t x = sp_splitmix64(&seed) % n, y = sp_splitmix64(&seed) % n;

		sink += (uint64_t)memcmp(a + x * PAGE, a + y * PAGE, PAGE);
	}
	out->ns[BK_COST_TREE_STEP] = ((double)sp_mono_ns() - t) / (double)n;
	out->measured[BK_COST_CHECKSUM] = out->measured[BK_COST_COMPARE] = true;
	out->measured[BK_COST_TREE_STEP] = true;
	(void)sink;
}

/*
 * Full scans timed per phase: the first one or two do the phase's work, the
 * rest repeat the steady one, whose median resists a neighbour's burst.
 */
#define SCANS 7

/* The median of v[from..to) (to - from <= SCANS), which it reorders. */
static double median_from(double *v, int from, int to)
{
	for (int i = from + 1; i < to; i++)
		for (int j = i; j > from && v[j - 1] > v[j]; j--) {
			double t = v[j];

			v[j] = v[j - 1];
			v[j - 1] = t;
		}
	return (to - from) % 2 ? v[(from + to) / 2] : (v[(from + to) / 2 - 1] + v[(from + to) / 2]) / 2;
}

struct scan_cost {
	pid_t ksmd;
	const struct real_ksm *k;
	const volatile sig_atomic_t *stop; /* set by a signal: give up */
	double *cpu_scan; /* when set, time_scans() also gives each scan's CPU ns here */
};

/*
 * Lets ksmd run full scans until `scans` more have completed and returns the
 * CPU ns per page scanned of each; `per_scan` receives them in order.
 */
static int time_scans(struct scan_cost *sc, int scans, double *per_scan, double *period,
		      struct sp_err *err)
{
	int64_t full0, full, cpu0, cpu, pages0, pages;
	double deadline = (double)sp_mono_ns() + 120e9, t0 = (double)sp_mono_ns();
	int done = 0, rc;

	if ((rc = real_ksm_get(sc->k, REAL_KSM_FULL_SCANS, &full0, err)) < 0 ||
	    (rc = real_ksm_get(sc->k, REAL_KSM_PAGES_SCANNED, &pages0, err)) < 0 ||
	    (rc = real_proc_cpu_ns(sc->ksmd, &cpu0, err)) < 0)
		return rc;
	while (done < scans) {
		if ((double)sp_mono_ns() > deadline)
			return sp_err_set(err, SP_EIO, "ksmd made no progress for 120 s (is another job using KSM?)");
		usleep(500);
		if (sc->stop && *sc->stop)
			return sp_err_set(err, SP_EIO, "calibrate: interrupted by signal %d", (int)*sc->stop);
		if ((rc = real_ksm_get(sc->k, REAL_KSM_FULL_SCANS, &full, err)) < 0)
			return rc;
		if (full == full0)
			continue;
		if ((rc = real_ksm_get(sc->k, REAL_KSM_PAGES_SCANNED, &pages, err)) < 0 ||
		    (rc = real_proc_cpu_ns(sc->ksmd, &cpu, err)) < 0)
			return rc;
		/* Polling can miss a scan boundary: then this is an average over them. */
		if (period)
			period[done] = ((double)sp_mono_ns() - t0) / (double)(full - full0);
		t0 = (double)sp_mono_ns();
		if (sc->cpu_scan)
			sc->cpu_scan[done] = (double)(cpu - cpu0) / (double)(full - full0);
		per_scan[done++] = pages > pages0 ? (double)(cpu - cpu0) / (double)(pages - pages0) : 0;
		full0 = full;
		pages0 = pages;
		cpu0 = cpu;
	}
	return 0;
}

/*
 * Scans per slow phase, the first left out: four steady ones.  (Two, until
 * issue 13's sixth round: the 5 s point's two scans then differed by up to
 * 65% within one calibration - 4.8 and 8.0 us a page - the host's spells.)
 */
#define IDLE_SCANS 5
#define IDLE_PAGES 16384u
#define HOT_PAGES 4096u /* the hot baseline: a region small enough to stay hot at sleep 0 */
#define IDLE_ANCHOR_NS (BK_IDLE_MIN_NS / 2.0) /* below it a read costs nothing extra */

/* The centre of each idle class (backend.h), ns. */
static const double idle_centre_ns[BK_IDLE_CLASSES] = { 50e6, 100e6, 200e6, 500e6, 1e9, 2e9, 5e9 };

/*
 * The extra of reading a page idle t, known at n ascending idle times t[i]
 * (f[i] ns), 0 up to IDLE_ANCHOR_NS, linear in log t between, flat after
 * the last.
 */
struct idle_curve {
	int n;
	double t[BK_IDLE_CLASSES], f[BK_IDLE_CLASSES];
};

static double curve_at(const struct idle_curve *c, double t)
{
	double t0 = IDLE_ANCHOR_NS, f0 = 0;

	if (t <= t0)
		return 0;
	for (int i = 0; i < c->n; i++) {
		if (t <= c->t[i])
			return f0 + (c->f[i] - f0) * log(t / t0) / log(c->t[i] / t0);
		t0 = c->t[i];
		f0 = c->f[i];
	}
	return f0;
}

/* The mean unstable tree depth the ksm model counts over a scan inserting n unique pages. */
static double mean_depth(uint64_t n)
{
	double d = 0;

	for (uint64_t i = 0; i < n; i++)
		d += (double)kit_tree_depth(i);
	return n ? d / (double)n : 0;
}

/*
 * Steady scans at sleep ms: the median cost per page and period of scans
 * 2.., and the cheapest and dearest of them (range[0], range[1]); 0 or SP_E*.
 */
static int idle_phase(struct scan_cost *sc, int64_t sleep_ms, int scans, double *cost,
		      double *period, double range[2], struct sp_err *err)
{
	double v[SCANS], p[SCANS];
	int rc = real_ksm_set(sc->k, REAL_KSM_SLEEP_MILLISECS, sleep_ms, err);

	if (rc == 0)
		rc = time_scans(sc, scans, v, p, err);
	if (rc < 0)
		return rc;
	/* the first scan is the first visits (sleep 0) or began at the old sleep: left out */
	*cost = median_from(v, 1, scans);
	*period = median_from(p, 1, scans);
	range[0] = v[1]; /* median_from() sorted them */
	range[1] = v[scans - 1];
	return 0;
}

/*
 * ksmd's CPU per page on the first `pages` pages of a, unique, one batch a
 * scan, sleep 0: after two scans, HOT_WINDOWS windows of 200 ms (a scan of
 * a few ms is shorter than the tick that updates ksmd's CPU time), each
 * appended to v (*n of them so far).
 */
#define HOT_WINDOWS 7

static int hot_scan(struct scan_cost *sc, uint8_t *a, uint64_t pages, double *v, int *n,
		    struct sp_err *err)
{
	double w[2], period[2];
	int64_t cpu0, cpu, pages0, npages;
	int rc = real_ksm_set(sc->k, REAL_KSM_PAGES_TO_SCAN, (int64_t)pages, err);

	if (rc == 0 && madvise(a, pages * PAGE, MADV_MERGEABLE) != 0)
		rc = sp_err_set(err, SP_ENOTSUP, "madvise(MADV_MERGEABLE) failed");
	if (rc == 0)
		rc = real_ksm_set(sc->k, REAL_KSM_SLEEP_MILLISECS, 0, err);
	if (rc == 0)
		rc = time_scans(sc, 2, w, period, err);
	for (int i = 0; i < HOT_WINDOWS && rc == 0; i++) {
		if ((rc = real_ksm_get(sc->k, REAL_KSM_PAGES_SCANNED, &pages0, err)) < 0 ||
		    (rc = real_proc_cpu_ns(sc->ksmd, &cpu0, err)) < 0)
			break;
		usleep(200000);
		if ((rc = real_ksm_get(sc->k, REAL_KSM_PAGES_SCANNED, &npages, err)) < 0 ||
		    (rc = real_proc_cpu_ns(sc->ksmd, &cpu, err)) < 0)
			break;
		v[(*n)++] = npages > pages0 ? (double)(cpu - cpu0) / (double)(npages - pages0) : 0;
	}
	madvise(a, pages * PAGE, MADV_UNMERGEABLE);
	return rc;
}

/*
 * The slow scans of phase C: IDLE_PAGES unique pages in one batch a scan
 * (the tree is then rebuilt within the batch, hot, and each page read idle
 * one period), the sleep aiming the period at each class centre in turn
 * (the batch estimated at the last scan's cost per page).
 */
static int idle_scans(struct real_calibration *out, struct scan_cost *sc, uint64_t m,
		      struct sp_err *err)
{
	double batch_ns = (double)m * out->hot_scan_ns;
	int rc = real_ksm_set(sc->k, REAL_KSM_PAGES_TO_SCAN, (int64_t)m, err);

	for (int i = 0; i < BK_IDLE_CLASSES && rc == 0; i++) {
		/* a scan is two batches: its pages, then the wrap (an empty one) */
		double sleep = fmax(0, (idle_centre_ns[i] - batch_ns) / 2);

		rc = idle_phase(sc, (int64_t)(sleep / 1e6), IDLE_SCANS, &out->idle_scan_ns[i],
				&out->idle_period_ns[i], out->idle_range_ns[i], err);
		batch_ns = (double)m * out->idle_scan_ns[i];
	}
	return rc;
}

/*
 * The idle classes' costs from the slow scans: each scan's cost per page
 * over `hot` (the model's cost of a hot unique page) and over the visit's
 * own idle cost (visit_idle ns a ms of the period, once measured) is the
 * extra of a read idle its period, a point of a curve against idle time
 * (each slow period >= 35 ms: the visit's visit_cold comes off too)
 * (kept rising; a period not beyond the last point by a fifth adds none);
 * each class costs the curve at its centre.
 */
static void idle_solve(struct real_calibration *out, double hot, double visit_idle, double visit_cold)
{
	struct idle_curve c = { 0 };

	out->idle_hot_ns = hot;
	for (int i = 0; i < BK_IDLE_CLASSES; i++) {
		double per = out->idle_period_ns[i];
		double x = out->idle_scan_ns[i] - visit_idle * floor(per / 1e6) - visit_cold;

		if (per < BK_IDLE_MIN_NS || (c.n && per < c.t[c.n - 1] * 1.2))
			continue;
		c.t[c.n] = per;
		c.f[c.n] = fmax(c.n ? c.f[c.n - 1] : 0, x - hot);
		c.n++;
	}
	for (int k = 0; k < BK_IDLE_CLASSES && c.n; k++) {
		out->ns[BK_COST_IDLE_50MS + k] = curve_at(&c, idle_centre_ns[k]);
		out->measured[BK_COST_IDLE_50MS + k] = true;
	}
}

/*
 * Phase F: the pages of the slow point TREE_PAIR (about 1 s idle), still
 * mergeable, scanned at its period in TREE_BATCHES batches instead of one:
 * each page is read as idle as there and searches as many tree levels, but
 * the batches after the first search a tree left idle since the scan began
 * (real_calib_tree_solve()).  Independent of the hot scan: both points are
 * ksmd's own, a moment apart.
 */
#define TREE_PAIR 4 /* the 1 s class's slow point */
#define TREE_BATCHES 8u

static int tree_timings(struct real_calibration *out, struct scan_cost *sc, uint64_t m,
			struct sp_err *err)
{
	double per = out->idle_period_ns[TREE_PAIR], x = out->idle_scan_ns[TREE_PAIR], sleep;
	int rc;

	if (per < BK_IDLE_MIN_NS || x <= 0 || m < TREE_BATCHES * 64)
		return 0;
	/* a scan: TREE_BATCHES batches of the pages, then the wrap's, each after a sleep */
	sleep = fmax(0, (per - (double)m * x) / (TREE_BATCHES + 1));
	rc = real_ksm_set(sc->k, REAL_KSM_PAGES_TO_SCAN, (int64_t)(m / TREE_BATCHES), err);
	if (rc == 0)
		rc = idle_phase(sc, (int64_t)(sleep / 1e6), IDLE_SCANS, &out->tree_scan_ns,
				&out->tree_period_ns, out->tree_range_ns, err);
	if (rc == 0) {
		out->tree_pair = TREE_PAIR;
		out->tree_pages = m - m % TREE_BATCHES;
		out->tree_batches = TREE_BATCHES;
	}
	return rc;
}

/*
 * Phase C: the hot cost per unique page on HOT_PAGES pages, then the slow
 * scans of IDLE_PAGES pages (solved by idle_solve() once B has the visit),
 * phase F on the same pages, and the hot cost again: the median of both
 * hot scans' windows (one hot figure of three windows moved tree_step and
 * every idle class against each other, 5.3 against 6.5 us a page in two
 * calibrations; bench/README.md "bench_cost.sh", ninth round).
 */
static int ksmd_idle_timings(struct real_calibration *out, struct scan_cost *sc, uint8_t *a,
			     uint64_t n, struct sp_err *err)
{
	uint64_t m = n < IDLE_PAGES ? n : IDLE_PAGES;
	double v[2 * HOT_WINDOWS];
	int nv = 0, rc = hot_scan(sc, a, HOT_PAGES, v, &nv, err);

	if (rc == 0)
		out->hot_scan_ns = median_from(v, 0, nv); /* the slow scans' sleeps aim with it */
	if (rc == 0 && madvise(a, m * PAGE, MADV_MERGEABLE) != 0)
		rc = sp_err_set(err, SP_ENOTSUP, "madvise(MADV_MERGEABLE) failed");
	if (rc == 0)
		rc = idle_scans(out, sc, m, err);
	if (rc == 0)
		rc = tree_timings(out, sc, m, err);
	madvise(a, m * PAGE, MADV_UNMERGEABLE);
	if (rc == 0)
		rc = hot_scan(sc, a, HOT_PAGES, v, &nv, err);
	if (rc == 0) {
		out->hot_scan_ns = median_from(v, 0, nv);
		out->hot_windows = nv;
	}
	if (rc == 0)
		rc = real_ksm_set(sc->k, REAL_KSM_SLEEP_MILLISECS, 0, err);
	if (rc == 0)
		rc = real_ksm_set(sc->k, REAL_KSM_PAGES_TO_SCAN, (int64_t)(n / 4 ? n / 4 : 1), err);
	return rc;
}

double real_calib_tree_touches(uint64_t pages, unsigned batches, double period_ns, double page_ns)
{
	uint64_t per_batch = batches ? pages / batches : 0;
	double batch_ns, sleep_ns, t = 0;

	if (!per_batch)
		return 0;
	batch_ns = (double)per_batch * page_ns;
	sleep_ns = fmax(0, (period_ns - (double)batches * batch_ns) / (batches + 1));
	for (unsigned b = 0; b < batches; b++) {
		double start = (double)b * (batch_ns + sleep_ns); /* the model's `now`, the batch's start */
		unsigned levels = 0;

		for (double idle = start; idle >= BK_IDLE_MIN_NS; idle /= 2)
			levels++;
		for (uint64_t i = b * per_batch; i < (b + 1) * per_batch; i++) {
			uint64_t depth = kit_tree_depth(i);

			t += (double)(depth < levels ? depth : levels);
		}
	}
	return t / (double)(per_batch * batches);
}

void real_calib_tree_solve(struct real_calibration *c)
{
	double x, touches, extra;

	if (!c->tree_batches || c->tree_scan_ns <= 0 || c->idle_scan_ns[c->tree_pair] <= 0)
		return;
	x = c->idle_scan_ns[c->tree_pair];
	touches = real_calib_tree_touches(c->tree_pages, c->tree_batches, c->tree_period_ns,
					  c->tree_scan_ns);
	if (touches <= 0)
		return;
	/* the extra batches a scan: each a wake-up, and a first read after the sleep */
	extra = (double)(c->tree_batches - 1) *
		(c->ns[BK_COST_BATCH_WAKE] + c->ns[BK_COST_BATCH_READ]) / (double)c->tree_pages;
	c->ns[BK_COST_TREE_IDLE] = fmax(0, (c->tree_scan_ns - x - extra) / touches);
	c->measured[BK_COST_TREE_IDLE] = true;
}

/*
 * The costs from phase B's scans of n pages in groups (scan[] per page, in
 * order) and what A and C measured.
 */
static void derive_costs(struct real_calibration *out, double *scan, uint64_t n)
{
	double visit = median_from(scan, 2, SCANS), csum = out->ns[BK_COST_CHECKSUM], step, base;
	double logn = log2((double)n);

	/*
	 * A visit is what ksmd pays for a page it has nothing to do with
	 * (scan 3 of B: every page already merged).  A hot unique page adds
	 * a checksum (a page read from memory, as userspace timed it) and
	 * an unstable-tree insert: the tree step from phase C's hot scans
	 * when they ran (the idle classes then get the rest of the slow
	 * scans' cost), else from A (whose pages are read ~0.3 s idle).
	 * In the second scan of B nearly every page finds its group's KSM
	 * page in a stable tree of n/GROUP nodes and merges with it.
	 */
	if (out->hot_scan_ns > 0) {
		step = fmax(0, (out->hot_scan_ns - visit - csum) / mean_depth(HOT_PAGES));
		idle_solve(out, visit + csum + mean_depth(n < IDLE_PAGES ? n : IDLE_PAGES) * step, 0, 0);
	} else {
		step = fmax(0, (out->ksmd_unique_scan_ns - visit - csum) / logn);
	}
	base = visit + csum + log2((double)n / GROUP) * step;
	out->ksmd_merge_scan_ns = scan[1];
	out->ksmd_merged_scan_ns = visit;
	out->ns[BK_COST_VISIT] = visit;
	out->ns[BK_COST_TREE_STEP] = step;
	out->ns[BK_COST_MERGE] = fmax(0, (scan[1] - base) * GROUP / (GROUP - 1));
	out->ns[BK_COST_FIRST_VISIT] = fmax(0, out->ksmd_first_scan_ns - visit - csum);
	real_calib_tree_solve(out); /* again once phase D has the batch costs */
}

static int ksmd_timings(struct real_calibration *out, const struct real_ksm *k, uint8_t *a,
			uint8_t *b, uint64_t n, const volatile sig_atomic_t *stop,
			real_calib_progress_fn progress, void *arg, struct sp_err *err)
{
	struct real_ksm_settings s;
	struct scan_cost sc = { .k = k, .stop = stop };
	double scan[SCANS], t;
	int rc;

	rc = real_ksmd_pid(&sc.ksmd, err);
	if (rc < 0)
		return rc;
	memset(&s, 0, sizeof(s));
	s.set[REAL_KSM_RUN] = true;
	s.v[REAL_KSM_RUN] = REAL_KSM_RUN_UNMERGE;
	s.set[REAL_KSM_ADVISOR_MODE] = true;
	s.v[REAL_KSM_ADVISOR_MODE] = REAL_KSM_ADVISOR_NONE;
	s.set[REAL_KSM_PAGES_TO_SCAN] = true;
	s.v[REAL_KSM_PAGES_TO_SCAN] = (int64_t)(n / 4 ? n / 4 : 1);
	s.set[REAL_KSM_SLEEP_MILLISECS] = true;
	s.v[REAL_KSM_SLEEP_MILLISECS] = 0;
	s.set[REAL_KSM_SMART_SCAN] = true;
	s.v[REAL_KSM_SMART_SCAN] = 0;
	s.set[REAL_KSM_USE_ZERO_PAGES] = true;
	s.v[REAL_KSM_USE_ZERO_PAGES] = 0;
	rc = real_ksm_apply(k, &s, err);
	if (rc < 0)
		return rc;

	/* A: unique pages in a. */
	if (progress)
		progress(arg, "ksmd, unique pages", 0.4);
	if (madvise(a, n * PAGE, MADV_MERGEABLE) != 0)
		return sp_err_set(err, SP_ENOTSUP, "madvise(MADV_MERGEABLE) failed");
	rc = real_ksm_set(k, REAL_KSM_RUN, REAL_KSM_RUN_MERGE, err);
	if (rc == 0)
		rc = time_scans(&sc, SCANS, scan, NULL, err);
	madvise(a, n * PAGE, MADV_UNMERGEABLE);
	if (rc < 0)
		return rc;
	out->ksmd_first_scan_ns = scan[0];
	out->ksmd_unique_scan_ns = median_from(scan, 2, SCANS);

	/* C: the same pages (some of them) scanned slowly */
	if (progress)
		progress(arg, "ksmd, idle pages", 0.55);
	rc = ksmd_idle_timings(out, &sc, a, n, err);
	if (rc < 0)
		return rc;

	/* B: groups of GROUP equal pages (fewer than max_page_sharing: no chains). */
	if (progress)
		progress(arg, "ksmd, pages in groups", 0.7);
	for (uint64_t i = 0; i < n; i++)
		fill(b, i, 1000000 + i % (n / GROUP));
	if ((rc = real_ksm_set(k, REAL_KSM_RUN, REAL_KSM_RUN_STOP, err)) < 0)
		return rc;
	if (madvise(b, n * PAGE, MADV_MERGEABLE) != 0)
		return sp_err_set(err, SP_ENOTSUP, "madvise(MADV_MERGEABLE) failed");
	rc = real_ksm_set(k, REAL_KSM_RUN, REAL_KSM_RUN_MERGE, err);
	if (rc == 0)
		rc = time_scans(&sc, SCANS, scan, NULL, err);
	if (rc == 0) {
		derive_costs(out, scan, n);
		rc = real_ksm_set(k, REAL_KSM_RUN, REAL_KSM_RUN_STOP, err);
	}
	if (rc == 0) {
		/* COW break: write one byte of every merged page. */
		int64_t sharing = 0;

		real_ksm_get(k, REAL_KSM_PAGES_SHARING, &sharing, err);
		t = (double)sp_mono_ns();
		for (uint64_t i = 0; i < n; i++)
			b[i * PAGE + 100] ^= 1;
		if (sharing > 0)
			out->ns[BK_COST_COW_BREAK] = ((double)sp_mono_ns() - t) / (double)n;
		out->measured[BK_COST_COW_BREAK] = sharing > 0;
	}
	madvise(b, n * PAGE, MADV_UNMERGEABLE);
	out->measured[BK_COST_VISIT] = out->measured[BK_COST_MERGE] = rc == 0;
	out->measured[BK_COST_FIRST_VISIT] = rc == 0;
	return rc;
}

/*
 * Phase D: batches after a sleep.  BATCH_PAGES pages, `u` of every 100
 * unique and the rest in merged groups, scanned BATCH_P2S pages a batch
 * every BATCH_SLEEP_MS: a batch reads about u pages, each idle the same
 * period (~1 s) whatever u.  ksmd's CPU per batch at u = 0: visits of
 * merged pages, whose rmap items, page tables and struct pages lay idle a
 * scan (on a VM that costs: 0.2-0.3 ns a visit per ms idle on the
 * development VM): less the visits, per visit and ms of the measured scan,
 * is visit_idle.  At u = 4 and 32 a line against the reads a batch; where
 * it meets 0 reads, less the batch at u = 0, is what a batch that reads
 * pays for following a sleep.
 */
#define BATCH_PAGES 4096u
#define BATCH_P2S 100u
#define BATCH_SLEEP_MS 20
#define BATCH_WARM 3 /* scans: checksums, merges, then steady */

static const unsigned batch_unique[REAL_CALIB_BATCH_PHASES] = { 0, 4, 32 };

/*
 * ksmd's median CPU per batch on a region of BATCH_PAGES pages, u in 100
 * unique, the median scan period (ns), and the cheapest and dearest steady
 * scan's CPU per batch (range); 0 or SP_E*.
 */
static int batch_phase(struct scan_cost *sc, uint8_t *a, unsigned u, uint64_t base, double *out,
		       double *scan, double range[2], struct sp_err *err)
{
	double v[SCANS], cpu[SCANS], period[SCANS];
	uint64_t batches = (BATCH_PAGES + BATCH_P2S - 1) / BATCH_P2S; /* the last ends at the wrap */
	int rc;

	for (uint64_t i = 0; i < BATCH_PAGES; i++)
		fill(a, i, i % 100 < u ? base + i : base + BATCH_PAGES + i / 200);
	if (madvise(a, BATCH_PAGES * PAGE, MADV_MERGEABLE) != 0)
		return sp_err_set(err, SP_ENOTSUP, "madvise(MADV_MERGEABLE) failed");
	sc->cpu_scan = cpu;
	rc = time_scans(sc, SCANS, v, period, err);
	sc->cpu_scan = NULL;
	madvise(a, BATCH_PAGES * PAGE, MADV_UNMERGEABLE);
	if (rc == 0) {
		*out = median_from(cpu, BATCH_WARM, SCANS) / (double)batches;
		*scan = median_from(period, BATCH_WARM, SCANS);
		range[0] = cpu[BATCH_WARM] / (double)batches; /* median_from() sorted them */
		range[1] = cpu[SCANS - 1] / (double)batches;
	}
	return rc;
}

/* The model's count of a scan period's idle ms: whole ms, none under BK_IDLE_MIN_NS (ksm.c batch_end()). */
static double idle_ms(double period_ns)
{
	return period_ns >= BK_IDLE_MIN_NS ? floor(period_ns / 1e6) : 0;
}

void real_calib_visit_solve(struct real_calibration *c)
{
	double ms0 = idle_ms(c->visit_period_ns[0]), ms1 = idle_ms(c->visit_period_ns[1]), slope;

	if (c->visit_cpu_ns[0] <= 0 || c->visit_cpu_ns[1] <= 0 || ms0 <= 0 || ms1 <= ms0)
		return;
	slope = fmax(0, (c->visit_cpu_ns[1] - c->visit_cpu_ns[0]) / (ms1 - ms0));
	c->ns[BK_COST_VISIT_IDLE] = slope;
	c->ns[BK_COST_VISIT_COLD] = fmax(0, c->visit_cpu_ns[0] - c->ns[BK_COST_VISIT] - slope * ms0);
	c->measured[BK_COST_VISIT_IDLE] = c->measured[BK_COST_VISIT_COLD] = true;
}

void real_calib_batch_solve(struct real_calibration *c)
{
	const double batches = (BATCH_PAGES + BATCH_P2S - 1) / BATCH_P2S, n = BATCH_PAGES / batches;
	double ms = idle_ms(c->batch_period_ns), slope, icpt, visits, wake = 0;
	bool e = c->measured[BK_COST_VISIT_COLD];

	if (!e) {
		c->ns[BK_COST_VISIT_IDLE] =
			ms > 0 ? fmax(0, (c->batch_cpu_ns[0] / n - c->ns[BK_COST_VISIT]) / ms) : 0;
		c->measured[BK_COST_VISIT_IDLE] = true;
	}
	/* the visits of a batch as the model costs them */
	visits = n * (c->ns[BK_COST_VISIT] +
		      (ms > 0 ? ms * c->ns[BK_COST_VISIT_IDLE] + c->ns[BK_COST_VISIT_COLD] : 0));
	if (e) { /* phase E priced the visits: the batch reading nothing is its visits and a wake-up */
		wake = fmax(0, c->batch_cpu_ns[0] - visits);
		c->ns[BK_COST_BATCH_WAKE] = wake;
		c->measured[BK_COST_BATCH_WAKE] = true;
	}
	slope = (c->batch_cpu_ns[2] - c->batch_cpu_ns[1]) / (c->batch_reads[2] - c->batch_reads[1]);
	icpt = c->batch_cpu_ns[1] - c->batch_reads[1] * slope;
	c->ns[BK_COST_BATCH_READ] = fmax(0, icpt - visits - wake);
	c->measured[BK_COST_BATCH_READ] = true;
}

double real_calib_spread(const struct real_calibration *c)
{
	double worst = 0;

	for (int i = 0; i < BK_IDLE_CLASSES; i++) {
		if (c->idle_scan_ns[i] > 0)
			worst = fmax(worst, (c->idle_range_ns[i][1] - c->idle_range_ns[i][0]) / c->idle_scan_ns[i]);
	}
	for (int i = 0; i < REAL_CALIB_BATCH_PHASES; i++) {
		if (c->batch_cpu_ns[i] > 0)
			worst = fmax(worst, (c->batch_range_ns[i][1] - c->batch_range_ns[i][0]) / c->batch_cpu_ns[i]);
	}
	for (int i = 0; i < REAL_CALIB_VISIT_POINTS; i++) {
		if (c->visit_cpu_ns[i] > 0)
			worst = fmax(worst, (c->visit_range_ns[i][1] - c->visit_range_ns[i][0]) / c->visit_cpu_ns[i]);
	}
	if (c->tree_scan_ns > 0)
		worst = fmax(worst, (c->tree_range_ns[1] - c->tree_range_ns[0]) / c->tree_scan_ns);
	return worst;
}

/*
 * Phase E: visits in the scan's own pattern.  VISIT_PAGES merged pages
 * (groups of 200), VISIT_P2S a batch, 9 batches a scan, after a 10 ms
 * sleep (scans of ~0.1 s, the aggressive sets') then a 400 ms one (~4 s,
 * the default tunables' scan of 16384 pages).  A visit of a merged page is
 * the page walk and the rmap lookup only (no content read), so ksmd's CPU
 * per page is what a visit costs idle that scan: phase B's visit (scans
 * back to back, ~8 ms) was half of it in the runs at 2000/10, and phase D's
 * batches of 100 carry a wake-up each (bench/README.md "bench_cost.sh",
 * seventh and eighth rounds).  The long point keeps the merged pages: one
 * scan at the new sleep left out, then VISIT_LONG_SCANS.
 */
#define VISIT_PAGES IDLE_PAGES
#define VISIT_P2S 2000u
#define VISIT_LONG_SCANS 3

static const int64_t visit_sleep_ms[REAL_CALIB_VISIT_POINTS] = { 10, 400 };

/* The median, cheapest and dearest of n per-scan CPU ns (reordered), per page; into point i. */
static void visit_point(struct real_calibration *out, int i, double *cpu, double *period, int from,
			int to)
{
	out->visit_cpu_ns[i] = median_from(cpu, from, to) / VISIT_PAGES;
	out->visit_period_ns[i] = median_from(period, from, to);
	out->visit_range_ns[i][0] = cpu[from] / VISIT_PAGES;
	out->visit_range_ns[i][1] = cpu[to - 1] / VISIT_PAGES;
}

static int visit_timings(struct real_calibration *out, struct scan_cost *sc, uint8_t *a,
			 struct sp_err *err)
{
	double v[SCANS], cpu[SCANS], period[SCANS];
	int rc;

	for (uint64_t i = 0; i < VISIT_PAGES; i++)
		fill(a, i, ((uint64_t)6 << 40) + i / 200);
	if ((rc = real_ksm_set(sc->k, REAL_KSM_PAGES_TO_SCAN, VISIT_P2S, err)) < 0 ||
	    (rc = real_ksm_set(sc->k, REAL_KSM_SLEEP_MILLISECS, visit_sleep_ms[0], err)) < 0)
		return rc;
	if (madvise(a, VISIT_PAGES * PAGE, MADV_MERGEABLE) != 0)
		return sp_err_set(err, SP_ENOTSUP, "madvise(MADV_MERGEABLE) failed");
	sc->cpu_scan = cpu;
	rc = time_scans(sc, SCANS, v, period, err);
	if (rc == 0) {
		visit_point(out, 0, cpu, period, BATCH_WARM, SCANS);
		rc = real_ksm_set(sc->k, REAL_KSM_SLEEP_MILLISECS, visit_sleep_ms[1], err);
	}
	if (rc == 0)
		rc = time_scans(sc, 1 + VISIT_LONG_SCANS, v, period, err);
	if (rc == 0)
		visit_point(out, 1, cpu, period, 1, 1 + VISIT_LONG_SCANS);
	sc->cpu_scan = NULL;
	madvise(a, VISIT_PAGES * PAGE, MADV_UNMERGEABLE);
	if (rc == 0)
		real_calib_visit_solve(out);
	return rc;
}

static int batch_timings(struct real_calibration *out, const struct real_ksm *k, uint8_t *a,
			 uint64_t n, const volatile sig_atomic_t *stop, struct sp_err *err)
{
	struct scan_cost sc = { .k = k, .stop = stop };
	double batches = (BATCH_PAGES + BATCH_P2S - 1) / BATCH_P2S, scan[REAL_CALIB_BATCH_PHASES];
	int rc = n < BATCH_PAGES ? 0 : real_ksmd_pid(&sc.ksmd, err);

	if (n < BATCH_PAGES || rc < 0)
		return rc;
	if ((rc = real_ksm_set(k, REAL_KSM_RUN, REAL_KSM_RUN_MERGE, err)) < 0)
		return rc;
	if (n >= VISIT_PAGES && (rc = visit_timings(out, &sc, a, err)) < 0)
		return rc;
	if ((rc = real_ksm_set(k, REAL_KSM_PAGES_TO_SCAN, BATCH_P2S, err)) < 0 ||
	    (rc = real_ksm_set(k, REAL_KSM_SLEEP_MILLISECS, BATCH_SLEEP_MS, err)) < 0)
		return rc;
	for (int i = 0; i < REAL_CALIB_BATCH_PHASES && rc == 0; i++) {
		unsigned u = batch_unique[i];

		/* the unique pages of a scan, 100 in every full 100 and u of the rest */
		out->batch_reads[i] = (double)(BATCH_PAGES / 100 * u +
					       (BATCH_PAGES % 100 < u ? BATCH_PAGES % 100 : u)) / batches;
		rc = batch_phase(&sc, a, u, (uint64_t)(3 + i) << 40, &out->batch_cpu_ns[i], &scan[i],
				 out->batch_range_ns[i], err);
	}
	if (rc == 0)
		rc = real_ksm_set(k, REAL_KSM_RUN, REAL_KSM_RUN_STOP, err);
	if (rc < 0)
		return rc;
	out->batch_period_ns = scan[0];
	real_calib_batch_solve(out);
	/* the slow scans' visits paid visit_idle and visit_cold too: the idle classes again, without them */
	if (out->hot_scan_ns > 0)
		idle_solve(out, out->idle_hot_ns, out->ns[BK_COST_VISIT_IDLE], out->ns[BK_COST_VISIT_COLD]);
	real_calib_tree_solve(out); /* its extra batches' wake-ups and reads known now */
	return 0;
}

int real_calibrate(struct real_calibration *out, uint64_t pages, const struct real_ksm *ksm,
		   const volatile sig_atomic_t *stop, real_calib_progress_fn progress, void *arg,
		   struct sp_err *err)
{
	struct real_ksm_saved saved;
	uint8_t *a, *b;
	int rc = 0;

	memset(out, 0, sizeof(*out));
	if (pages < 1024)
		return sp_err_set(err, SP_EINVAL, "calibrate: at least 1024 pages, or caches hide the costs");
	out->pages = pages;
	a = region(pages);
	b = region(pages);
	if (!a || !b) {
		if (a)
			munmap(a, pages * PAGE);
		return sp_err_set(err, SP_ENOMEM, "calibrate: cannot map 2 x %llu pages",
				  (unsigned long long)pages);
	}
	if (progress)
		progress(arg, "filling memory", 0.0);
	for (uint64_t i = 0; i < pages; i++) {
		fill(a, i, i);
		fill(b, i, i);
	}
	if (progress)
		progress(arg, "userspace timings", 0.2);
	user_timings(out, a, b, pages);
	if (stop && *stop) {
		rc = sp_err_set(err, SP_EIO, "calibrate: interrupted by signal %d", (int)*stop);
	} else if (ksm) {
		rc = real_ksm_save(ksm, &saved, err);
		if (rc == 0) {
			rc = ksmd_timings(out, ksm, a, b, pages, stop, progress, arg, err);
			if (rc == 0 && progress)
				progress(arg, "ksmd, batches after a sleep", 0.85);
			if (rc == 0)
				rc = batch_timings(out, ksm, a, pages, stop, err);
			if (real_ksm_restore(&saved, rc < 0 ? NULL : err) < 0 && rc == 0)
				rc = SP_EIO;
		}
	}
	munmap(a, pages * PAGE);
	munmap(b, pages * PAGE);
	return rc;
}
