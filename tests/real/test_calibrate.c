/*
 * test_calibrate.c - the arithmetic of `sim calibrate`'s phase D
 * (real_calib_batch_solve()), on numbers worked out by hand.  No KSM needed.
 */
#include <string.h>

#include "calibrate.h"
#include "harness.h"

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
	c.batch_period_ns = 1000.4e6;
	c.batch_cpu_ns[0] = n * 400;
	c.batch_reads[1] = 4;
	c.batch_cpu_ns[1] = 300000;
	c.batch_reads[2] = 32;
	c.batch_cpu_ns[2] = 580000;
	real_calib_batch_solve(&c);
	CU_ASSERT_DOUBLE_EQUAL(c.ns[BK_COST_VISIT_IDLE], 0.3, 1e-9);
	CU_ASSERT_DOUBLE_EQUAL(c.ns[BK_COST_BATCH_READ], 260000 - n * 400, 1e-6);
	CU_ASSERT(c.measured[BK_COST_VISIT_IDLE] && c.measured[BK_COST_BATCH_READ]);
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
}
