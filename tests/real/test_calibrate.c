/*
 * test_calibrate.c - the arithmetic of `sim calibrate`'s phases D, E and F
 * (real_calib_batch_solve(), real_calib_visit_solve(),
 * real_calib_tree_touches(), real_calib_tree_solve()), on numbers worked
 * out by hand.  No KSM needed.
 */
#include <string.h>

#include "calibrate.h"
#include "harness.h"

/* Phase D's batches of the tests below: the scan 1000.4 ms, at u = 0 n x 400 ns, at 4 and 32 reads. */
static void batches(struct real_calibration *c, double n)
{
	c->batch_period_ns = 1000.4e6;
	c->batch_cpu_ns[0] = n * 400;
	c->batch_reads[1] = 4;
	c->batch_cpu_ns[1] = 300000;
	c->batch_reads[2] = 32;
	c->batch_cpu_ns[2] = 580000;
}

SP_TEST(batch_solve_takes_the_visits_idle_cost_off_the_first_read)
{
	/*
	 * 4096 pages, 100 a batch: 41 batches a scan, n = 4096/41 = 99.902
	 * visits a batch; visit 100 ns; scan period 1000.4 ms, counted as
	 * 1000 whole ms.  The batch reading nothing costs n x 400 ns: each
	 * visit 300 ns over a visit, visit_idle = 300 / 1000 = 0.3 ns a
	 * visit-ms.  Batches reading 4 and 32 pages cost 300000 and 580000 ns:
	 * slope 10000 ns a read, at 0 reads 260000; less the visits (n x 100)
	 * and their idle cost (n x 1000 x 0.3): batch_read = 260000 - n x 400.
	 */
	struct real_calibration c;
	const double n = 4096.0 / 41;

	memset(&c, 0, sizeof(c));
	c.ns[BK_COST_VISIT] = 100;
	batches(&c, n);
	real_calib_batch_solve(&c);
	CU_ASSERT_DOUBLE_EQUAL(c.ns[BK_COST_VISIT_IDLE], 0.3, 1e-9);
	CU_ASSERT_DOUBLE_EQUAL(c.ns[BK_COST_BATCH_READ], 260000 - n * 400, 1e-6);
	CU_ASSERT(c.measured[BK_COST_VISIT_IDLE] && c.measured[BK_COST_BATCH_READ]);
	CU_ASSERT(!c.measured[BK_COST_BATCH_WAKE]);
	CU_ASSERT_DOUBLE_EQUAL(c.ns[BK_COST_BATCH_WAKE], 0, 1e-12);
	/* a batch cheaper than its visits: no idle cost, batch_read less the visits only */
	c.batch_cpu_ns[0] = n * 50;
	real_calib_batch_solve(&c);
	CU_ASSERT_DOUBLE_EQUAL(c.ns[BK_COST_VISIT_IDLE], 0, 1e-12);
	CU_ASSERT_DOUBLE_EQUAL(c.ns[BK_COST_BATCH_READ], 260000 - n * 100, 1e-6);
	/* a scan under 35 ms is hot, as the model counts it: no visit_idle */
	c.batch_cpu_ns[0] = n * 400;
	c.batch_period_ns = 30e6;
	real_calib_batch_solve(&c);
	CU_ASSERT_DOUBLE_EQUAL(c.ns[BK_COST_VISIT_IDLE], 0, 1e-12);
}

SP_TEST(visit_solve_fits_cold_and_idle_through_two_scans)
{
	/*
	 * Visit 120 ns (phase B, hot).  Merged pages visited at scans of
	 * 95.6 ms (95 whole ms) cost 300 ns a visit, at 905.2 ms (905 ms)
	 * 462 ns: visit_idle = (462 - 300) / (905 - 95) = 162 / 810 = 0.2 ns a
	 * visit-ms; visit_cold = 300 - 120 - 0.2 x 95 = 161 ns.
	 */
	struct real_calibration c;

	memset(&c, 0, sizeof(c));
	c.ns[BK_COST_VISIT] = 120;
	real_calib_visit_solve(&c); /* phase E did not run: nothing */
	CU_ASSERT(!c.measured[BK_COST_VISIT_COLD] && !c.measured[BK_COST_VISIT_IDLE]);
	c.visit_period_ns[0] = 95.6e6;
	c.visit_cpu_ns[0] = 300;
	c.visit_period_ns[1] = 905.2e6;
	c.visit_cpu_ns[1] = 462;
	real_calib_visit_solve(&c);
	CU_ASSERT_DOUBLE_EQUAL(c.ns[BK_COST_VISIT_IDLE], 0.2, 1e-12);
	CU_ASSERT_DOUBLE_EQUAL(c.ns[BK_COST_VISIT_COLD], 161, 1e-9);
	CU_ASSERT(c.measured[BK_COST_VISIT_COLD] && c.measured[BK_COST_VISIT_IDLE]);
	/* the long scan cheaper (the host moved): no slope, the short one's extra is all cold, 180 */
	c.visit_cpu_ns[1] = 250;
	real_calib_visit_solve(&c);
	CU_ASSERT_DOUBLE_EQUAL(c.ns[BK_COST_VISIT_IDLE], 0, 1e-12);
	CU_ASSERT_DOUBLE_EQUAL(c.ns[BK_COST_VISIT_COLD], 180, 1e-9);
	/* the short scan cheaper than a hot visit: slope (462 - 100) / 810, cold 0 */
	c.visit_cpu_ns[0] = 100;
	c.visit_cpu_ns[1] = 462;
	real_calib_visit_solve(&c);
	CU_ASSERT_DOUBLE_EQUAL(c.ns[BK_COST_VISIT_IDLE], 362.0 / 810, 1e-12);
	CU_ASSERT_DOUBLE_EQUAL(c.ns[BK_COST_VISIT_COLD], 0, 1e-12);
	/* a short scan under 35 ms is hot, as the model counts it: no line, the last values stay */
	memset(&c, 0, sizeof(c));
	c.ns[BK_COST_VISIT] = 120;
	c.visit_period_ns[0] = 30e6;
	c.visit_cpu_ns[0] = 300;
	c.visit_period_ns[1] = 905.2e6;
	c.visit_cpu_ns[1] = 462;
	real_calib_visit_solve(&c);
	CU_ASSERT(!c.measured[BK_COST_VISIT_COLD] && !c.measured[BK_COST_VISIT_IDLE]);
	CU_ASSERT_DOUBLE_EQUAL(c.ns[BK_COST_VISIT_COLD], 0, 1e-12);
}

SP_TEST(batch_solve_keeps_phase_e_visit_costs_and_takes_them_off)
{
	/*
	 * As batch_solve_takes_the_visits_idle_cost_off_the_first_read, with
	 * phase E's visit_idle 0.2 and visit_cold 50 measured: the batch at
	 * u = 0 no longer sets visit_idle, and each of the n = 4096/41 visits
	 * of a batch costs 100 + 1000 x 0.2 + 50 = 350 ns: the batch at u = 0
	 * (n x 400) is its visits and a wake-up, batch_wake = n x 50 =
	 * 4995.12; batch_read = 260000 - n x 350 - n x 50 = 260000 - n x 400.
	 * Under 35 ms neither visit cost applies: batch_wake n x 300, and
	 * batch_read 260000 - n x 100 - n x 300.  Without phase E no wake-up.
	 */
	struct real_calibration c;
	const double n = 4096.0 / 41;

	memset(&c, 0, sizeof(c));
	c.ns[BK_COST_VISIT] = 100;
	c.ns[BK_COST_VISIT_IDLE] = 0.2;
	c.ns[BK_COST_VISIT_COLD] = 50;
	c.measured[BK_COST_VISIT_IDLE] = c.measured[BK_COST_VISIT_COLD] = true;
	batches(&c, n);
	real_calib_batch_solve(&c);
	CU_ASSERT_DOUBLE_EQUAL(c.ns[BK_COST_VISIT_IDLE], 0.2, 1e-12);
	CU_ASSERT_DOUBLE_EQUAL(c.ns[BK_COST_BATCH_WAKE], n * 50, 1e-6);
	CU_ASSERT_DOUBLE_EQUAL(c.ns[BK_COST_BATCH_READ], 260000 - n * 400, 1e-6);
	CU_ASSERT(c.measured[BK_COST_BATCH_WAKE]);
	c.batch_period_ns = 30e6;
	real_calib_batch_solve(&c);
	CU_ASSERT_DOUBLE_EQUAL(c.ns[BK_COST_BATCH_WAKE], n * 300, 1e-6);
	CU_ASSERT_DOUBLE_EQUAL(c.ns[BK_COST_BATCH_READ], 260000 - n * 400, 1e-6);
}

SP_TEST(tree_touches_count_the_models_idle_levels)
{
	/*
	 * 8 pages in 2 batches, 10 us a page, a scan of 300 ms: a batch lasts
	 * 4 x 10 us = 40 us, the three sleeps (two batches and the wrap's)
	 * share the rest, (300 ms - 80 us) / 3 = 99.9733 ms.  Batch 0 starts
	 * the scan: its searches are hot.  Batch 1 starts at 40 us + 99.9733 ms
	 * = 100.0133 ms: levels idle 100.01 and 50.01 ms are 35 ms or more,
	 * 25.0 is not: 2 levels at most.  Its pages 4-7 search trees of 4-7
	 * pages, depth 3 each: 2 idle levels each, 8 over 8 pages: 1 a page.
	 */
	CU_ASSERT_DOUBLE_EQUAL(real_calib_tree_touches(8, 2, 300e6, 10000), 1.0, 1e-12);
	/*
	 * 16 pages in 4 batches, a free page (0 ns), a scan of 1 s: five
	 * sleeps of 200 ms, batches at 0, 200, 400, 600 ms: 0, 3 (200, 100,
	 * 50 ms), 4 (400 ... 50 ms) and 5 (600 ... 37.5 ms) idle levels.
	 * Pages 4-7 depth 3: 3 each, 12; pages 8-11 depth 4: 4 each, 16; pages
	 * 12-15 depth 4 (under 5 levels): 16; 44 / 16 = 2.75 a page.
	 */
	CU_ASSERT_DOUBLE_EQUAL(real_calib_tree_touches(16, 4, 1e9, 0), 2.75, 1e-12);
	CU_ASSERT_DOUBLE_EQUAL(real_calib_tree_touches(1, 2, 1e9, 0), 0, 1e-12); /* no batch of a page */
}

SP_TEST(tree_solve_takes_the_extra_batches_off_over_the_idle_levels)
{
	/*
	 * Phase F as in tree_touches_count_the_models_idle_levels' first case
	 * (8 pages, 2 batches, 300 ms, 1 idle level a page), 10000 ns a page;
	 * the paired slow point (one batch a scan, same period) 9000 ns.  The
	 * one extra batch a scan: batch_wake 1000 + batch_read 3000 over 8
	 * pages, 500 a page.  tree_idle = (10000 - 9000 - 500) / 1 = 500.
	 * Phase F cheaper than its pair (8000 ns: a batch of 32 us, still 2
	 * levels at batch 1's 100.0107 ms): 0.  Not run, or its pair not
	 * measured: nothing.
	 */
	struct real_calibration c;

	memset(&c, 0, sizeof(c));
	c.ns[BK_COST_BATCH_WAKE] = 1000;
	c.ns[BK_COST_BATCH_READ] = 3000;
	c.idle_scan_ns[4] = 9000;
	real_calib_tree_solve(&c);
	CU_ASSERT(!c.measured[BK_COST_TREE_IDLE]);
	c.tree_pair = 4;
	c.tree_pages = 8;
	c.tree_batches = 2;
	c.tree_period_ns = 300e6;
	c.tree_scan_ns = 10000;
	real_calib_tree_solve(&c);
	CU_ASSERT(c.measured[BK_COST_TREE_IDLE]);
	CU_ASSERT_DOUBLE_EQUAL(c.ns[BK_COST_TREE_IDLE], 500, 1e-9);
	c.tree_scan_ns = 8000;
	real_calib_tree_solve(&c);
	CU_ASSERT_DOUBLE_EQUAL(c.ns[BK_COST_TREE_IDLE], 0, 1e-12);
	memset(&c, 0, sizeof(c));
	c.tree_pair = 4;
	c.tree_pages = 8;
	c.tree_batches = 2;
	c.tree_period_ns = 300e6;
	c.tree_scan_ns = 10000;
	real_calib_tree_solve(&c);
	CU_ASSERT(!c.measured[BK_COST_TREE_IDLE]);
}

SP_TEST(spread_is_the_widest_point_over_its_median)
{
	/*
	 * Idle points (median, cheapest, dearest steady scan): 2963 (2800,
	 * 3100): 0.101; 6393 (4827, 7959): 3132 / 6393 = 0.490; batch phase at
	 * u = 32 (median 239662 a batch, 200000-300000): 0.417.  The widest is
	 * the 5 s point, 0.490; a point not measured (median 0) counts nothing.
	 */
	struct real_calibration c;

	memset(&c, 0, sizeof(c));
	CU_ASSERT_DOUBLE_EQUAL(real_calib_spread(&c), 0, 1e-12);
	c.idle_scan_ns[0] = 2963;
	c.idle_range_ns[0][0] = 2800;
	c.idle_range_ns[0][1] = 3100;
	CU_ASSERT_DOUBLE_EQUAL(real_calib_spread(&c), 300.0 / 2963, 1e-12);
	c.idle_scan_ns[6] = 6393;
	c.idle_range_ns[6][0] = 4827;
	c.idle_range_ns[6][1] = 7959;
	c.batch_cpu_ns[2] = 239662;
	c.batch_range_ns[2][0] = 200000;
	c.batch_range_ns[2][1] = 300000;
	CU_ASSERT_DOUBLE_EQUAL(real_calib_spread(&c), 3132.0 / 6393, 1e-12);
	c.batch_range_ns[2][1] = 400000; /* now the batch phase is the widest: 200000 / 239662 */
	CU_ASSERT_DOUBLE_EQUAL(real_calib_spread(&c), 200000.0 / 239662, 1e-12);
	c.visit_cpu_ns[1] = 400; /* phase E's long point, 300-800 ns a visit: 500 / 400 */
	c.visit_range_ns[1][0] = 300;
	c.visit_range_ns[1][1] = 800;
	CU_ASSERT_DOUBLE_EQUAL(real_calib_spread(&c), 1.25, 1e-12);
}
