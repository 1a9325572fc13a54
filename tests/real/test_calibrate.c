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
