/*
 * test_ksm.c - the KSM model against numbers worked out from the kernel's
 * rules: merging on the second full scan, max_page_sharing chains and dups,
 * zero pages, per-node trees, the volatility filter, the smart_scan
 * schedule, COW breaks (with the kernel's counter lag) and the tick-rounded
 * sleep.  Most tests drive the algorithm directly on a simulated backend,
 * one batch per full scan (pages_to_scan above the page count: a batch ends
 * when the scan wraps); the timing tests run sim_run() on a written trace.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "algorithm.h"
#include "harness.h"
#include "sim.h"
#include "rig.h"
#include "tracebuild.h"

/* ---- a rig: the ksm algorithm on a sim_mem backend, driven by hand ----- */

/* The shared rig (rig.h), with the whole scan in one batch unless a test says otherwise. */
static void ksm_start(struct rig *r, const char *const *sets)
{
	const char *all[32] = { "pages_to_scan=1000000" };
	int n = 1;

	for (; sets && *sets && n < 31; sets++)
		all[n++] = *sets;
	rig_start(r, all);
}

/* Batches until full_scans == n. */
static void rig_scans(struct rig *r, int64_t n)
{
	struct metrics m;

	for (int i = 0; i < 1000000; i++) {
		rig_metrics(r, &m);
		if (m.full_scans >= n)
			return;
		rig_batch(r);
	}
	CU_FAIL_FATAL("full_scans never reached the target");
}

/*
 * Ground truth after a quiescent full scan (every page written since the
 * previous scan has been visited): the KSM counters match the frames the
 * backend holds, and pages_volatile is what the kernel derives.
 */
static void check_against_frames(struct rig *r)
{
	uint64_t n = r->in.ops->npages(r->in.impl);
	bk_frame *seen = calloc(n + 1, sizeof(*seen));
	int64_t frames = 0, mapped = 0;
	struct bk_page_info info;
	struct metrics m;

	CU_ASSERT_PTR_NOT_NULL_FATAL(seen);
	for (bk_page p = 0; p < n; p++) {
		r->in.ops->page_info(r->in.impl, p, &info);
		if (!info.present || info.frame == BK_NO_FRAME || info.frame == BK_ZERO_FRAME)
			continue;
		mapped++;
		int64_t i;

		for (i = 0; i < frames && seen[i] != info.frame; i++)
			;
		if (i == frames)
			seen[frames++] = info.frame;
	}
	free(seen);
	rig_metrics(r, &m);
	CU_ASSERT_EQUAL(m.pages_shared, frames);
	CU_ASSERT_EQUAL(m.pages_sharing, mapped - frames);
	CU_ASSERT(m.pages_volatile >= 0);
	CU_ASSERT(m.stable_node_dups == 0 || m.stable_node_chains > 0);
}

/* ---- merging ----------------------------------------------------------- */

SP_TEST(identical_pages_merge_on_second_full_scan)
{
	struct rig r;
	struct metrics m;

	rig_init(&r, "ksm", 2, 8);
	ksm_start(&r, NULL);
	for (uint32_t g = 0; g < 2; g++) {
		for (uint64_t i = 0; i < 5; i++)
			rig_write(&r, g, i, 7);
		rig_write(&r, g, 5, 100 + g); /* unique */
		rig_write(&r, g, 6, 200 + g); /* unique */
		/* page 7 stays absent: no rmap item, never counted */
	}
	rig_scans(&r, 1);
	rig_metrics(&r, &m);
	CU_ASSERT_EQUAL(m.full_scans, 1);
	CU_ASSERT_EQUAL(m.pages_scanned, 14);
	CU_ASSERT_EQUAL(m.pages_shared, 0);
	CU_ASSERT_EQUAL(m.pages_sharing, 0);
	CU_ASSERT_EQUAL(m.pages_unshared, 0);
	CU_ASSERT_EQUAL(m.pages_volatile, 14);
	CU_ASSERT_EQUAL(m.merges, 0);
	CU_ASSERT_EQUAL(m.general_profit, -14 * 64);

	rig_scans(&r, 2);
	rig_metrics(&r, &m);
	CU_ASSERT_EQUAL(m.pages_scanned, 28);
	CU_ASSERT_EQUAL(m.pages_shared, 1);
	CU_ASSERT_EQUAL(m.pages_sharing, 9);
	CU_ASSERT_EQUAL(m.pages_unshared, 4);
	CU_ASSERT_EQUAL(m.pages_volatile, 0);
	CU_ASSERT_EQUAL(m.merges, 9);
	CU_ASSERT_EQUAL(m.oracle_saving, 9);
	CU_ASSERT_EQUAL(m.general_profit, 9 * 4096 - 14 * 64);
	CU_ASSERT_EQUAL(m.stable_node_chains, 0);
	check_against_frames(&r);

	/* A third scan changes nothing but the counts of visits. */
	rig_scans(&r, 3);
	rig_metrics(&r, &m);
	CU_ASSERT_EQUAL(m.pages_sharing, 9);
	CU_ASSERT_EQUAL(m.pages_unshared, 4);
	CU_ASSERT_EQUAL(m.merges, 9);
	rig_free(&r);
}

SP_TEST(max_page_sharing_gives_chains_and_dups)
{
	static const struct { int64_t n, m; } cases[] = {
		{ 10, 3 }, { 7, 2 }, { 9, 3 }, { 5, 4 }, { 6, 4 }, { 2, 2 }, { 3, 2 }, { 300, 256 },
		{ 256, 256 }, { 257, 256 },
	};

	for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
		int64_t n = cases[c].n, mx = cases[c].m;
		int64_t shared = n / mx + (n % mx >= 2), sharing = n - (n + mx - 1) / mx;
		char set[64];
		const char *sets[] = { set, NULL };
		struct rig r;
		struct metrics m;

		snprintf(set, sizeof(set), "max_page_sharing=%lld", (long long)mx);
		rig_init(&r, "ksm", 1, (uint64_t)n);
		ksm_start(&r, sets);
		for (int64_t i = 0; i < n; i++)
			rig_write(&r, 0, (uint64_t)i, 5);
		for (int64_t scans = 2; scans <= 4; scans++) {
			rig_scans(&r, scans);
			rig_metrics(&r, &m);
			if (m.pages_sharing != sharing || m.pages_shared != shared)
				fprintf(stderr, "N=%lld M=%lld scans=%lld: shared %lld sharing %lld\n",
					(long long)n, (long long)mx, (long long)scans,
					(long long)m.pages_shared, (long long)m.pages_sharing);
			CU_ASSERT_EQUAL(m.pages_sharing, sharing);
			CU_ASSERT_EQUAL(m.pages_shared, shared);
			CU_ASSERT_EQUAL(m.pages_unshared, n % mx == 1 ? 1 : 0);
			CU_ASSERT_EQUAL(m.stable_node_chains, shared >= 2 ? 1 : 0);
			CU_ASSERT_EQUAL(m.stable_node_dups, shared >= 2 ? shared : 0);
			CU_ASSERT_EQUAL(m.remote_sharers, 0);
			check_against_frames(&r);
		}
		rig_free(&r);
	}
}

SP_TEST(zero_pages_land_in_ksm_zero_pages)
{
	for (int use_zero = 0; use_zero <= 1; use_zero++) {
		const char *sets[] = { use_zero ? "use_zero_pages=1" : "use_zero_pages=0", NULL };
		struct rig r;
		struct metrics m;

		rig_init(&r, "ksm", 1, 6);
		ksm_start(&r, sets);
		for (uint64_t i = 0; i < 4; i++)
			rig_write(&r, 0, i, 0);
		rig_write(&r, 0, 4, 9);
		rig_write(&r, 0, 5, 9);
		rig_scans(&r, 1);
		rig_metrics(&r, &m);
		CU_ASSERT_EQUAL(m.ksm_zero_pages, 0); /* never on the first visit */
		CU_ASSERT_EQUAL(m.pages_sharing, 0);
		rig_scans(&r, 2);
		rig_metrics(&r, &m);
		if (use_zero) {
			CU_ASSERT_EQUAL(m.ksm_zero_pages, 4);
			CU_ASSERT_EQUAL(m.pages_sharing, 1);
			CU_ASSERT_EQUAL(m.pages_shared, 1);
		} else {
			CU_ASSERT_EQUAL(m.ksm_zero_pages, 0);
			CU_ASSERT_EQUAL(m.pages_sharing, 4);
			CU_ASSERT_EQUAL(m.pages_shared, 2);
		}
		/* Pages on the zero page are stepped over; their rmap items go. */
		rig_scans(&r, 3);
		rig_metrics(&r, &m);
		CU_ASSERT_EQUAL(m.pages_scanned, use_zero ? 6 + 6 + 2 : 18);
		if (use_zero) {
			CU_ASSERT_EQUAL(m.general_profit, (1 + 4) * 4096 - 2 * 64);
			/* A write to a zero-mapped page is a COW break: one fewer at once. */
			rig_write(&r, 0, 0, 11);
			rig_metrics(&r, &m);
			CU_ASSERT_EQUAL(m.ksm_zero_pages, 3);
			CU_ASSERT_EQUAL(m.cow_breaks, 1);
		}
		check_against_frames(&r);
		rig_free(&r);
	}
}

SP_TEST(merge_across_nodes_zero_never_shares_across_nodes)
{
	for (int across = 0; across <= 1; across++) {
		const char *sets[] = { across ? "merge_across_nodes=1" : "merge_across_nodes=0", NULL };
		struct rig r;
		struct metrics m;
		struct sp_err err = { 0 };

		rig_init(&r, "ksm", 2, 3);
		r.tb.h.guests[1].node = 1;
		ksm_start(&r, sets);
		for (uint32_t g = 0; g < 2; g++) {
			for (uint64_t i = 0; i < 3; i++)
				rig_write(&r, g, i, 5);
		}
		rig_scans(&r, 3);
		rig_metrics(&r, &m);
		if (across) {
			CU_ASSERT_EQUAL(m.pages_shared, 1);
			CU_ASSERT_EQUAL(m.pages_sharing, 5);
			CU_ASSERT_EQUAL(m.remote_sharers, 3);
		} else {
			CU_ASSERT_EQUAL(m.pages_shared, 2);
			CU_ASSERT_EQUAL(m.pages_sharing, 4);
			CU_ASSERT_EQUAL(m.remote_sharers, 0);
		}
		check_against_frames(&r);
		/* Refused while KSM pages exist, as the kernel answers EBUSY. */
		CU_ASSERT_EQUAL(r.a->set_param(r.st, (uint32_t)algo_param_index(r.a, "merge_across_nodes"),
					       across ? 0 : 1, &err),
				SP_EINVAL);
		CU_ASSERT(strstr(err.msg, "merge_across_nodes") != NULL);
		rig_free(&r);
	}
}

SP_TEST(page_rewritten_every_interval_is_never_merged)
{
	const char *sets[] = { "smart_scan=0", NULL };
	struct rig r;
	struct metrics m;

	rig_init(&r, "ksm", 1, 3);
	ksm_start(&r, sets);
	CU_ASSERT_NOT_EQUAL(sp_fp_checksum(tb_fp(3)), sp_fp_checksum(tb_fp(9)));
	rig_write(&r, 0, 0, 3);
	rig_write(&r, 0, 1, 9);
	rig_write(&r, 0, 2, 3);
	for (int64_t s = 1; s <= 20; s++) {
		rig_scans(&r, s);
		/* Page 1 holds 3 (page 0's content) every other scan, but never twice running. */
		rig_write(&r, 0, 1, s % 2 ? 3 : 9);
	}
	rig_metrics(&r, &m);
	CU_ASSERT_EQUAL(m.pages_shared, 1); /* pages 0 and 2, which hold still */
	CU_ASSERT_EQUAL(m.pages_sharing, 1);
	CU_ASSERT_EQUAL(m.merges, 1);
	CU_ASSERT_EQUAL(m.pages_volatile, 1);
	CU_ASSERT_EQUAL(m.cow_breaks, 0);
	rig_free(&r);
}

/* ---- smart_scan -------------------------------------------------------- */

/*
 * The kernel's schedule for a page that never merges, by visit number e
 * (its age before the visit): e < 3 scanned; then, whenever no skips are
 * left, it is scanned and given skip_age(e) skips (1 up to age 3, 2 up to 5,
 * 4 up to 8, then 8).  So e = 0,1,2,3 scanned, 4 skipped, 5 scanned, 6-7
 * skipped, 8 scanned, 9-12 skipped, 13 scanned, 14-21 skipped, 22 scanned:
 * after 14 full scans 7 visits and 7 skips, after 23 full scans 8 and 15.
 */
SP_TEST(smart_scan_skips_on_the_kernel_schedule)
{
	const int64_t unique = 5, same = 3;

	for (int smart = 0; smart <= 1; smart++) {
		const char *sets[] = { smart ? "smart_scan=1" : "smart_scan=0", NULL };
		struct rig r;
		struct metrics m;

		rig_init(&r, "ksm", 1, unique + same);
		ksm_start(&r, sets);
		for (int64_t i = 0; i < unique; i++)
			rig_write(&r, 0, (uint64_t)i, 1000 + (uint64_t)i);
		for (int64_t i = 0; i < same; i++)
			rig_write(&r, 0, (uint64_t)(unique + i), 42);
		rig_scans(&r, 14);
		rig_metrics(&r, &m);
		/* KSM pages are never skipped: `same` pages are visited every scan. */
		CU_ASSERT_EQUAL(m.pages_skipped, smart ? 7 * unique : 0);
		CU_ASSERT_EQUAL(m.pages_scanned, (smart ? 7 : 14) * unique + 14 * same);
		CU_ASSERT_EQUAL(m.pages_sharing, same - 1);
		rig_scans(&r, 23);
		rig_metrics(&r, &m);
		CU_ASSERT_EQUAL(m.pages_skipped, smart ? 15 * unique : 0);
		CU_ASSERT_EQUAL(m.pages_scanned, (smart ? 8 : 23) * unique + 23 * same);
		rig_free(&r);
	}
}

/* ---- COW breaks -------------------------------------------------------- */

SP_TEST(cow_break_unshares_when_the_scanner_next_visits)
{
	struct rig r;
	struct metrics m;

	rig_init(&r, "ksm", 1, 4);
	ksm_start(&r, NULL);
	for (uint64_t i = 0; i < 3; i++)
		rig_write(&r, 0, i, 4);
	rig_write(&r, 0, 3, 50);
	rig_scans(&r, 2);
	rig_metrics(&r, &m);
	CU_ASSERT_EQUAL(m.pages_shared, 1);
	CU_ASSERT_EQUAL(m.pages_sharing, 2);

	/* The write copies at once (backend); ksmd's counters follow at its next visit. */
	rig_write(&r, 0, 0, 99);
	rig_metrics(&r, &m);
	CU_ASSERT_EQUAL(m.cow_breaks, 1);
	CU_ASSERT_EQUAL(m.pages_sharing, 2);
	rig_scans(&r, 3);
	rig_metrics(&r, &m);
	CU_ASSERT_EQUAL(m.pages_shared, 1);
	CU_ASSERT_EQUAL(m.pages_sharing, 1);
	check_against_frames(&r);

	/* One mapper left: still a KSM page, as in the kernel. */
	rig_write(&r, 0, 1, 100);
	rig_scans(&r, 4);
	rig_metrics(&r, &m);
	CU_ASSERT_EQUAL(m.pages_shared, 1);
	CU_ASSERT_EQUAL(m.pages_sharing, 0);
	check_against_frames(&r);

	/* The last mapper goes: the stable node is stale and is dropped. */
	rig_write(&r, 0, 2, 101);
	rig_scans(&r, 5);
	rig_metrics(&r, &m);
	CU_ASSERT_EQUAL(m.pages_shared, 0);
	CU_ASSERT_EQUAL(m.pages_sharing, 0);
	CU_ASSERT_EQUAL(m.cow_breaks, 3);
	CU_ASSERT_EQUAL(m.merges, 2);
	check_against_frames(&r);
	rig_free(&r);
}

/*
 * The kernel keeps an unmapped page's rmap item, listed in its stable node,
 * until the scan cursor passes it (get_next_rmap_item() frees the items it
 * steps over): the counters still count the page until then.  Every version.
 */
SP_TEST(unmapped_page_leaves_when_the_cursor_passes)
{
	struct rig r;
	struct metrics m;

	rig_init(&r, "ksm", 1, 3);
	ksm_start(&r, NULL);
	for (uint64_t i = 0; i < 3; i++)
		rig_write(&r, 0, i, 4);
	rig_scans(&r, 2);
	rig_record(&r, 0, 0, 0, false);
	rig_metrics(&r, &m);
	CU_ASSERT_EQUAL(m.pages_shared, 1);
	CU_ASSERT_EQUAL(m.pages_sharing, 2); /* page 0 still counted */
	CU_ASSERT_EQUAL(m.general_profit, 2 * 4096 - 3 * 64);
	rig_scans(&r, 3);
	rig_metrics(&r, &m);
	CU_ASSERT_EQUAL(m.pages_shared, 1);
	CU_ASSERT_EQUAL(m.pages_sharing, 1);
	CU_ASSERT_EQUAL(m.general_profit, 1 * 4096 - 2 * 64);
	check_against_frames(&r);
	/* An unstable-tree page unmapped stays in pages_unshared until passed, too. */
	rig_write(&r, 0, 0, 50);
	rig_scans(&r, 5);
	rig_metrics(&r, &m);
	CU_ASSERT_EQUAL(m.pages_unshared, 1);
	rig_record(&r, 0, 0, 0, false);
	rig_metrics(&r, &m);
	CU_ASSERT_EQUAL(m.pages_unshared, 1);
	rig_scans(&r, 6);
	rig_metrics(&r, &m);
	CU_ASSERT_EQUAL(m.pages_unshared, 0);
	rig_free(&r);
}

/* Random writes, chains (max_page_sharing=3) and two nodes: after every quiet scan the
 * counters match the backend's frames. */
SP_TEST(counters_match_frames_under_random_writes)
{
	uint64_t seed = sp_test_seed();
	const char *sets[] = { "max_page_sharing=3", "merge_across_nodes=0", "smart_scan=1", NULL };
	struct rig r;

	srand((unsigned)seed);
	rig_init(&r, "ksm", 4, 64);
	r.tb.h.guests[2].node = 1;
	r.tb.h.guests[3].node = 1;
	ksm_start(&r, sets);
	for (uint32_t g = 0; g < 4; g++) {
		for (uint64_t i = 0; i < 64; i++)
			rig_write(&r, g, i, (uint64_t)(rand() % 6));
	}
	for (int64_t s = 1; s <= 60; s++) {
		rig_scans(&r, s);
		if (s % 3 == 0) {
			struct metrics m;

			check_against_frames(&r);
			rig_metrics(&r, &m);
			CU_ASSERT_EQUAL(m.remote_sharers, 0);
			for (int w = 0; w < 20; w++) {
				uint32_t g = (uint32_t)(rand() % 4);
				uint64_t i = (uint64_t)(rand() % 64);

				if (rand() % 10 == 0)
					rig_record(&r, g, i, 0, false);
				else
					rig_write(&r, g, i, (uint64_t)(rand() % 6));
			}
		}
	}
	rig_free(&r);
}

/* ---- run-time tunables ------------------------------------------------- */

SP_TEST(set_param_at_run_time)
{
	struct rig r;
	struct metrics m;
	struct sp_err err = { 0 };
	uint32_t mps = (uint32_t)algo_param_index(r.a = algo_find("ksm"), "max_page_sharing");
	uint32_t pts = (uint32_t)algo_param_index(r.a, "pages_to_scan");

	rig_init(&r, "ksm", 1, 10);
	ksm_start(&r, NULL);
	for (uint64_t i = 0; i < 10; i++)
		rig_write(&r, 0, i, i < 2 ? 8 : 20 + i);
	CU_ASSERT_EQUAL(r.a->set_param(r.st, pts, 3, &err), 0);
	rig_batch(&r);
	rig_metrics(&r, &m);
	CU_ASSERT_EQUAL(m.pages_scanned, 3);
	CU_ASSERT_EQUAL(r.a->set_param(r.st, pts, 1000, &err), 0);
	rig_scans(&r, 2);
	rig_metrics(&r, &m);
	CU_ASSERT_EQUAL(m.pages_shared, 1);
	CU_ASSERT_EQUAL(r.a->set_param(r.st, mps, 2, &err), SP_EINVAL);
	CU_ASSERT(strstr(err.msg, "max_page_sharing") != NULL);
	/* Once no KSM page is left, the change is accepted. */
	rig_write(&r, 0, 0, 70);
	rig_write(&r, 0, 1, 71);
	rig_scans(&r, 3);
	rig_metrics(&r, &m);
	CU_ASSERT_EQUAL(m.pages_shared, 0);
	sp_err_clear(&err);
	CU_ASSERT_EQUAL(r.a->set_param(r.st, mps, 2, &err), 0);
	rig_free(&r);
}

/* ---- the tick-rounded sleep, through sim_run() ------------------------- */

struct series {
	int64_t scanned[200];
};

static int on_sample(void *arg, uint64_t t_ms, const struct metrics *m)
{
	struct series *s = arg;

	if (t_ms < 200)
		s->scanned[t_ms] = m->pages_scanned;
	return 0;
}

/* pages_scanned at each ms of a 150 ms run, one page per batch. */
static void timed_run(const char *path, const char *sleep, const char *hz, double visit_ns,
		      struct series *s)
{
	struct sim_config cfg;
	struct sim_result res;
	struct sp_err err = { 0 };
	const struct algo_ops *a = algo_find("ksm");

	sim_config_defaults(&cfg, a);
	CU_ASSERT_EQUAL_FATAL(algo_params_set(a, &cfg.params, "pages_to_scan=1", &err), 0);
	CU_ASSERT_EQUAL_FATAL(algo_params_set(a, &cfg.params, sleep, &err), 0);
	CU_ASSERT_EQUAL_FATAL(algo_params_set(a, &cfg.params, hz, &err), 0);
	for (int k = 0; k < BK_COST__COUNT; k++)
		cfg.cost.ns[k] = 0;
	cfg.cost.ns[BK_COST_VISIT] = visit_ns;
	cfg.duration_ms = 150;
	cfg.sample_ms = 1;
	memset(s, 0, sizeof(*s));
	if (sim_run(path, &cfg, on_sample, NULL, s, &res, &err) != 0)
		fprintf(stderr, "sim_run: %s\n", err.msg);
	CU_ASSERT_EQUAL_FATAL(res.end_ms, 150);
}

/* Batches at 0, d, 2d, ...: scanned(t) = floor(t / d) + 1. */
static void check_spacing(const struct series *s, int64_t d)
{
	for (int64_t t = 0; t <= 150; t++) {
		if (s->scanned[t] != t / d + 1) {
			fprintf(stderr, "spacing %lld ms: at %lld ms scanned %lld\n", (long long)d,
				(long long)t, (long long)s->scanned[t]);
			CU_FAIL("batch spacing");
			return;
		}
	}
}

SP_TEST(sleep_is_rounded_to_timer_ticks)
{
	char path[512];
	struct tb tb;
	struct series s;

	sp_test_path(path, sizeof(path), "ksm_ticks.sptrace");
	tb_init(&tb, 1, 1000);
	tb_open(&tb, path);
	tb_snap(&tb, 0);
	for (uint64_t i = 0; i < 1000; i++)
		tb_page(&tb, 0, i, i + 1);
	tb_commit(&tb);

	/* (ceil(20 ms / 4 ms) + 1) ticks = 24 ms, as measured on the kernel. */
	timed_run(path, "sleep_millisecs=20", "tick_hz=250", 0, &s);
	check_spacing(&s, 24);
	/* 10 ms: (3 + 1) ticks = 16 ms. */
	timed_run(path, "sleep_millisecs=10", "tick_hz=250", 0, &s);
	check_spacing(&s, 16);
	/* A batch of 1 ms ends within its tick: the cycle stays 24 ms. */
	timed_run(path, "sleep_millisecs=20", "tick_hz=250", 1e6, &s);
	check_spacing(&s, 24);
	/* A batch of 5 ms ends in the next tick: 4 + 24 = 28 ms. */
	timed_run(path, "sleep_millisecs=20", "tick_hz=250", 5e6, &s);
	check_spacing(&s, 28);
	/* tick_hz=0 takes the sleep literally. */
	timed_run(path, "sleep_millisecs=20", "tick_hz=0", 0, &s);
	check_spacing(&s, 20);
	/* HZ=1000: (20 + 1) ticks of 1 ms. */
	timed_run(path, "sleep_millisecs=20", "tick_hz=1000", 0, &s);
	check_spacing(&s, 21);
	/* No sleep at all: only the CPU time separates batches. */
	timed_run(path, "sleep_millisecs=0", "tick_hz=250", 2e6, &s);
	check_spacing(&s, 2);
}

/* ---- kernel versions (algorithms/kernel.c) ----------------------------- */

/* The rig of guests x pages with the ksm model of that kernel, a whole scan per batch. */
static void ksm_on(struct rig *r, uint32_t guests, uint64_t pages, const char *kernel,
		   const char *const *sets)
{
	rig_init(r, "ksm", guests, pages);
	r->kernel = kernel;
	ksm_start(r, sets);
}

/*
 * Up to 6.10 the stable tree is searched before the checksum filter: a
 * new guest whose pages are already KSM content merges on its first visit.
 * Guest 0 (3 pages of content 7) merges on scan 2: 1 shared, 2 sharing.
 * Then guest 1 appears with the same 3 pages.  6.1: scan 3 merges them at
 * once (sharing 5, nothing volatile).  6.11: scan 3 only stores their
 * checksums (sharing 2, 3 volatile), scan 4 merges them.
 */
SP_TEST(new_guest_merges_on_first_visit_before_6_11)
{
	for (int v = 0; v < 3; v++) {
		static const char *const kernels[] = { "6.1", "6.10", "6.11" };
		bool first = v < 2;
		struct rig r;
		struct metrics m;

		ksm_on(&r, 2, 3, kernels[v], NULL);
		for (uint64_t i = 0; i < 3; i++)
			rig_write(&r, 0, i, 7);
		rig_scans(&r, 2);
		rig_metrics(&r, &m);
		CU_ASSERT_EQUAL(m.pages_shared, 1);
		CU_ASSERT_EQUAL(m.pages_sharing, 2);
		for (uint64_t i = 0; i < 3; i++)
			rig_write(&r, 1, i, 7);
		rig_scans(&r, 3);
		rig_metrics(&r, &m);
		CU_ASSERT_EQUAL(m.pages_shared, 1);
		CU_ASSERT_EQUAL(m.pages_sharing, first ? 5 : 2);
		CU_ASSERT_EQUAL(m.pages_volatile, first ? 0 : 3);
		CU_ASSERT_EQUAL(m.merges, first ? 5 : 2);
		rig_scans(&r, 4);
		rig_metrics(&r, &m);
		CU_ASSERT_EQUAL(m.pages_sharing, 5);
		check_against_frames(&r);
		rig_free(&r);
	}
}

/*
 * A page written between two visits (content 9, then 7 = a KSM page's):
 * 6.1 merges it at its next visit though its checksum changed, and the
 * next write (back to 9) is a COW break - "volatile pages merge and are
 * copied back".  6.12 sees the changed checksum and leaves it alone.
 */
SP_TEST(written_page_merges_and_is_copied_back_before_6_11)
{
	for (int newer = 0; newer <= 1; newer++) {
		struct rig r;
		struct metrics m;

		ksm_on(&r, 1, 4, newer ? "6.12" : "6.1", NULL);
		for (uint64_t i = 0; i < 3; i++)
			rig_write(&r, 0, i, 7);
		rig_write(&r, 0, 3, 9);
		rig_scans(&r, 2);
		rig_write(&r, 0, 3, 7);
		rig_scans(&r, 3);
		rig_metrics(&r, &m);
		CU_ASSERT_EQUAL(m.pages_sharing, newer ? 2 : 3);
		rig_write(&r, 0, 3, 9);
		rig_metrics(&r, &m);
		CU_ASSERT_EQUAL(m.cow_breaks, newer ? 0 : 1);
		rig_free(&r);
	}
}

/*
 * pages_scanned: 10 unique pages, 3 a batch, so a full scan is batches of
 * 3, 3, 3 and 1 (which reaches the end).  6.10 counts the 10 visits; 6.6-6.9
 * add pages_to_scan + 1 = 4 after each batch that did not end the scan: 12
 * per scan, 24 after two; the 6.6.y backport of the fix counts 10 again.
 * With a whole scan in one batch, every batch ends a scan: 6.9 counts 0.
 */
SP_TEST(pages_scanned_counts_batches_before_6_10)
{
	static const struct {
		const char *kernel, *pages;
		int64_t one, two;
	} cases[] = { { "6.6", "pages_to_scan=3", 12, 24 },
		      { "6.9", "pages_to_scan=3", 12, 24 },
		      { "6.10", "pages_to_scan=3", 10, 20 },
		      { "6.6,pages_scanned_per_visit=1", "pages_to_scan=3", 10, 20 },
		      { "6.9", "pages_to_scan=1000", 0, 0 },
		      { "6.10", "pages_to_scan=1000", 10, 20 } };

	for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
		const char *sets[] = { cases[c].pages, NULL };
		struct rig r;
		struct metrics m;

		ksm_on(&r, 1, 10, cases[c].kernel, sets); /* sets' pages_to_scan wins */
		for (uint64_t i = 0; i < 10; i++)
			rig_write(&r, 0, i, 100 + i);
		rig_scans(&r, 1);
		rig_metrics(&r, &m);
		CU_ASSERT_EQUAL(m.pages_scanned, cases[c].one);
		rig_scans(&r, 2);
		rig_metrics(&r, &m);
		CU_ASSERT_EQUAL(m.pages_scanned, cases[c].two);
		rig_free(&r);
	}
}

/*
 * general_profit from 6.6 credits ksm_zero_pages; 6.4-6.5 do not.  4 zero
 * pages with use_zero_pages=1 map the zero page on scan 2 (4 rmap items
 * still); scan 3 steps over them and frees the items.
 */
SP_TEST(general_profit_credits_zero_pages_from_6_6)
{
	for (int newer = 0; newer <= 1; newer++) {
		const char *sets[] = { "use_zero_pages=1", NULL };
		struct rig r;
		struct metrics m;

		ksm_on(&r, 1, 4, newer ? "6.6" : "6.4", sets);
		for (uint64_t i = 0; i < 4; i++)
			rig_write(&r, 0, i, 0);
		rig_scans(&r, 2);
		rig_metrics(&r, &m);
		CU_ASSERT_EQUAL(m.ksm_zero_pages, 4);
		CU_ASSERT_EQUAL(m.general_profit, (newer ? 4 * 4096 : 0) - 4 * 64);
		rig_scans(&r, 3);
		rig_metrics(&r, &m);
		CU_ASSERT_EQUAL(m.general_profit, newer ? 4 * 4096 : 0);
		rig_free(&r);
	}
}

/*
 * Before 6.7 there is no smart_scan: the default scans every page (the
 * schedule test's 5 unique pages are never skipped), and asking for it is
 * refused with the version and commit that added it.
 */
SP_TEST(smart_scan_absent_before_6_7)
{
	const struct algo_ops *a = algo_find("ksm");
	struct algo_params prm;
	struct algo_kernel k;
	struct algo_env env = { 0 };
	struct sp_err err = { 0 };
	struct rig r;
	struct metrics m;
	void *st = NULL;

	ksm_on(&r, 1, 8, "6.6,pages_scanned_per_visit=1", NULL);
	for (uint64_t i = 0; i < 5; i++)
		rig_write(&r, 0, i, 1000 + i);
	for (uint64_t i = 5; i < 8; i++)
		rig_write(&r, 0, i, 42);
	rig_scans(&r, 14);
	rig_metrics(&r, &m);
	CU_ASSERT_EQUAL(m.pages_skipped, 0);
	CU_ASSERT_EQUAL(m.pages_scanned, 14 * 8);
	env = (struct algo_env){ .bk = sim_mem_backend(r.mem), .seed = 1, .kernel = &k };
	CU_ASSERT_EQUAL_FATAL(algo_kernel_parse(&k, "6.6", &err), 0);
	algo_params_defaults(a, &prm);
	CU_ASSERT_EQUAL(algo_params_set(a, &prm, "smart_scan=1", &err), 0);
	CU_ASSERT_EQUAL(a->create(&st, &prm, &env, &err), SP_EINVAL);
	CU_ASSERT_PTR_NULL(st);
	CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "Linux 6.6 has no smart_scan"));
	CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "5e924ff54d08"));
	/* Nor may a control policy turn it on at run time. */
	sp_err_clear(&err);
	CU_ASSERT_EQUAL(r.a->set_param(r.st, (uint32_t)algo_param_index(a, "smart_scan"), 1, &err),
			SP_EINVAL);
	CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "smart_scan"));
	rig_free(&r);
}

/*
 * A huge page (guest 0's first 512 pages) with zero pages 0..9, and guest
 * 1 with zero pages 0..9 not on a huge page; use_zero_pages=0, the rest
 * unique.  Scan 2 inserts guest 0's page 0 in the unstable tree; page 1
 * matches it, and its merge first splits the huge page.
 * 6.12: the split maps guest 0's zero pages 0..9 to the zero page (page 1
 * included, whose merge fails); guest 1's zero pages then match the gone
 * page 0 in the unstable tree and fail too.  Scan 3 (tree emptied): guest
 * 1's pages merge, 1 shared and 9 sharing; 10 pages on the zero page.
 * 6.11: the split leaves them; all 20 zero pages merge on scan 2: 1
 * shared, 19 sharing, none by the split.
 */
SP_TEST(huge_page_split_zero_pages_by_kernel)
{
	for (int newer = 0; newer <= 1; newer++) {
		struct rig r;
		struct metrics m;

		ksm_on(&r, 2, 512, newer ? "6.12" : "6.11", NULL);
		for (uint64_t i = 0; i < 512; i++) {
			rig_write_huge(&r, 0, i, i < 10 ? 0 : 1000 + i);
			rig_write(&r, 1, i, i < 10 ? 0 : 2000 + i);
		}
		rig_scans(&r, 2);
		rig_metrics(&r, &m);
		CU_ASSERT_EQUAL(m.thp_splits, 1);
		CU_ASSERT_EQUAL(m.thp_zero_pages, newer ? 10 : 0);
		CU_ASSERT_EQUAL(m.pages_shared, newer ? 0 : 1);
		CU_ASSERT_EQUAL(m.pages_sharing, newer ? 0 : 19);
		rig_scans(&r, 3);
		rig_metrics(&r, &m);
		CU_ASSERT_EQUAL(m.pages_shared, 1);
		CU_ASSERT_EQUAL(m.pages_sharing, newer ? 9 : 19);
		CU_ASSERT_EQUAL(m.thp_zero_pages, newer ? 10 : 0);
		check_against_frames(&r);
		rig_free(&r);
	}
}
/* ---- write tracking (backend written()) --------------------------------- */

/* Every metric but the checksums and the CPU they cost. */
static void same_decisions(const struct metrics *a, const struct metrics *b, const char *when)
{
	for (int i = 0; i < METRICS_COUNT; i++) {
		if (!strcmp(metrics_names[i], "checksums") || !strcmp(metrics_names[i], "cpu_ns"))
			continue;
		if (metrics_get(a, i) != metrics_get(b, i)) {
			fprintf(stderr, "%s: %s %lld against %lld\n", when, metrics_names[i],
				(long long)metrics_get(a, i), (long long)metrics_get(b, i));
			CU_FAIL("the two backends' decisions differ");
		}
	}
}

/*
 * Two rigs, started by the caller, in lock step under the same random
 * writes (seed): every counter but the checksums and the CPU agrees after
 * every batch.  hashes[k]: the pages rig k hashed in all.
 */
static void lock_step(struct rig r[2], uint32_t guests, uint64_t pages, uint64_t seed,
		      uint64_t hashes[2])
{
	uint64_t rng = seed * 2654435761u + 1;

	for (int step = 0; step < 400; step++) {
		/* Writes now and then: a few pages get one of 8 contents (0: zero page) or go away. */
		int nw = step % 7 == 0 ? 12 : 0;

		for (int w = 0; w < nw; w++) {
			uint32_t g;
			uint64_t i, c;
			bool present;

			rng = rng * 6364136223846793005ull + 1442695040888963407ull;
			g = (uint32_t)(rng >> 33) % guests;
			i = (rng >> 40) % pages;
			c = (rng >> 20) % 8;
			present = (rng >> 13) % 16 != 0;
			for (int k = 0; k < 2; k++)
				rig_record(&r[k], g, i, c, present);
		}
		for (int k = 0; k < 2; k++)
			rig_batch(&r[k]);
		{
			struct metrics m0, m1;
			char when[64];

			rig_metrics(&r[0], &m0);
			rig_metrics(&r[1], &m1);
			snprintf(when, sizeof(when), "seed %llu, batch %d", (unsigned long long)seed, step);
			same_decisions(&m0, &m1, when);
		}
	}
	for (int k = 0; k < 2; k++) {
		hashes[k] = 0;
		for (uint64_t p = 0; p < guests * pages; p++)
			hashes[k] += r[k].hash_calls[p];
	}
}

/*
 * write_tracking: one backend offers written(), the other does not.  Every
 * counter agrees after every batch; only the tracked one skips hashes.
 */
SP_TEST(write_tracking_decides_as_without_it)
{
	uint64_t seed = sp_test_seed();
	const char *sets[] = { "write_tracking=1", "max_page_sharing=3", "use_zero_pages=1",
			       "pages_to_scan=97", NULL };
	struct rig r[2];
	uint64_t hashes[2];

	for (int k = 0; k < 2; k++) {
		rig_init(&r[k], "ksm", 3, 128);
		r[k].offer_written = k == 0;
		rig_start(&r[k], sets);
	}
	lock_step(r, 3, 128, seed, hashes);
	printf("seed %llu: %llu hashes with written(), %llu without; %llu of %llu visits unwritten\n",
	       (unsigned long long)seed, (unsigned long long)hashes[0], (unsigned long long)hashes[1],
	       (unsigned long long)r[0].written_clean, (unsigned long long)r[0].written_calls);
	CU_ASSERT(r[0].written_clean > 0);
	CU_ASSERT_EQUAL(hashes[0] + r[0].written_clean, hashes[1]);
	CU_ASSERT_EQUAL(r[1].written_calls, 0);
	for (int k = 0; k < 2; k++)
		rig_free(&r[k]);
}

/*
 * A backend that measures its CPU (live memory) gets no lookahead and no
 * idle touches: every decision is still the same as on one whose cost is
 * modelled, batch by batch, and the pages are hashed as often.
 */
SP_TEST(measured_cost_decides_as_modelled)
{
	uint64_t seed = sp_test_seed();
	const char *sets[] = { "max_page_sharing=3", "use_zero_pages=1", "pages_to_scan=61", NULL };
	struct rig r[2];
	uint64_t hashes[2];

	for (int k = 0; k < 2; k++) {
		rig_init(&r[k], "ksm", 4, 256);
		r[k].measure_cost = k == 0;
		rig_start(&r[k], sets);
	}
	lock_step(r, 4, 256, seed, hashes);
	CU_ASSERT(hashes[0] > 0);
	CU_ASSERT_EQUAL(hashes[0], hashes[1]);
	for (int k = 0; k < 2; k++)
		rig_free(&r[k]);
}

/*
 * smart_scan's skips decided without page_info() where the model knows the
 * page present and private (a backend offering unheard_changes()), under
 * writes and unmaps: every counter the same as asking page_info() at every
 * position, batch by batch, with fewer page_info() calls (in a release
 * build: Debug asks it at those skips too, to check).
 */
SP_TEST(known_skips_decide_as_page_info)
{
	uint64_t seed = sp_test_seed();
	const char *sets[] = { "max_page_sharing=3", "use_zero_pages=1", "pages_to_scan=61", NULL };
	struct rig r[2];
	uint64_t hashes[2], info[2] = { 0, 0 };
	struct metrics m;

	for (int k = 0; k < 2; k++) {
		rig_init(&r[k], "ksm", 4, 256);
		r[k].offer_unheard = k == 0;
		r[k].measure_cost = true;
		rig_start(&r[k], sets);
	}
	lock_step(r, 4, 256, seed, hashes);
	for (int k = 0; k < 2; k++) {
		for (uint64_t p = 0; p < 4 * 256; p++)
			info[k] += r[k].info_calls[p];
	}
	rig_metrics(&r[0], &m);
	printf("seed %llu: %lld skips; page_info() %llu calls with unheard_changes(), %llu without\n",
	       (unsigned long long)seed, (long long)m.pages_skipped, (unsigned long long)info[0],
	       (unsigned long long)info[1]);
	CU_ASSERT(m.pages_skipped > 0);
	CU_ASSERT_EQUAL(hashes[0], hashes[1]);
#ifdef NDEBUG
	CU_ASSERT(info[0] + (uint64_t)m.pages_skipped / 2 < info[1]); /* the skips spared their calls */
#else
	/* Debug builds ask page_info() at every known skip too, to assert it agrees (ksm.c) */
	CU_ASSERT_EQUAL(info[0], info[1]);
#endif
	for (int k = 0; k < 2; k++)
		rig_free(&r[k]);
}

/* The whole simulator: write_tracking=1 and =0 give the same series, sample by sample. */
SP_TEST(write_tracking_same_series_in_sim)
{
	char path[512];
	struct tb tb;
	struct sim_config cfg[2];
	struct tb_series *s[2];
	uint64_t rng = 12345;
	const char *sets0[] = { "write_tracking=0", "pages_to_scan=200", NULL };
	const char *sets1[] = { "write_tracking=1", "pages_to_scan=200", NULL };

	sp_test_path(path, sizeof(path), "ksm_tracking.sptrace");
	tb_init(&tb, 2, 500);
	tb_open(&tb, path);
	for (uint64_t snap = 0; snap < 8; snap++) {
		tb_snap(&tb, snap * 1000);
		for (uint32_t g = 0; g < 2; g++) {
			for (uint64_t i = 0; i < 500; i++) {
				rng = rng * 6364136223846793005ull + 1442695040888963407ull;
				if (snap == 0)
					tb_page(&tb, g, i, i % 50 == 0 ? 0 : 1 + (i % 300)); /* 40% copies */
				else if ((rng >> 33) % 10 == 0)
					tb_page(&tb, g, i, 1000 + (rng >> 40) % 400); /* 10% rewritten */
			}
		}
	}
	tb_commit(&tb);
	tb_config(&cfg[0], "ksm", sets0);
	tb_config(&cfg[1], "ksm", sets1);
	s[0] = tb_run(path, &cfg[0]);
	s[1] = tb_run(path, &cfg[1]);
	CU_ASSERT_EQUAL_FATAL(s[0]->n, s[1]->n);
	for (size_t i = 0; i < s[0]->n; i++) {
		char when[64];

		snprintf(when, sizeof(when), "sample at %llu ms", (unsigned long long)s[0]->t[i]);
		same_decisions(&s[0]->m[i], &s[1]->m[i], when);
	}
	printf("checksums: %lld hashing every visit, %lld with write tracking; pages_sharing %lld\n",
	       (long long)s[0]->m[s[0]->n - 1].checksums, (long long)s[1]->m[s[1]->n - 1].checksums,
	       (long long)s[1]->m[s[1]->n - 1].pages_sharing);
	CU_ASSERT(s[0]->m[s[0]->n - 1].pages_sharing > 0);
	CU_ASSERT(s[1]->m[s[1]->n - 1].checksums < s[0]->m[s[0]->n - 1].checksums / 2);
	free(s[0]);
	free(s[1]);
}
