/*
 * test_cmd.c - the CMD model against numbers worked out from its mechanism:
 * a page's class follows the checksum changes of its last `history` visits,
 * and pages of different classes are never compared, so an equal pair whose
 * one page was recently rewritten merges only once that page's write history
 * has aged out (ksm, or cmd with classes=1, merges it at the first chance);
 * counters follow the backend's frames at once after COW breaks.  One batch
 * is one full scan (pages_to_scan above the page count: a batch ends when
 * the cursor wraps).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "algorithm.h"
#include "harness.h"
#include "rig.h"
#include "sim.h"
#include "tracebuild.h"

/*
 * Page 0 holds 5 throughout; page 1 is rewritten before visits 2, 3, 4 and 5
 * (the last time to 5) and then holds still.  Page 1's history at visit v
 * covers visits v-7..v, so it counts 4 changes up to visit 9 (class 3), 3 at
 * visit 10 and 2 at 11 (class 2), 1 at 12 (class 1) and none at 13 (class 0,
 * page 0's class): the pair merges at scan 13 and not one compare is made
 * before.  With one class it merges at scan 6, the first visit after page 1
 * held still, as ksm does.
 */
static int64_t merge_scan(const char *classes, int64_t *compares_before)
{
	const char *sets[] = { "pages_to_scan=1000", classes, NULL };
	struct rig r;
	struct metrics m;
	int64_t at = -1;

	rig_init(&r, "cmd", 1, 2);
	rig_start(&r, sets);
	rig_write(&r, 0, 0, 5);
	rig_write(&r, 0, 1, 100);
	for (int64_t scan = 1; scan <= 20 && at < 0; scan++) {
		if (scan >= 2 && scan <= 5)
			rig_write(&r, 0, 1, scan == 5 ? 5 : 100 + (uint64_t)scan);
		rig_metrics(&r, &m);
		*compares_before = m.compares;
		rig_batch(&r); /* one full scan: the batch ends when the cursor wraps */
		rig_metrics(&r, &m);
		CU_ASSERT_EQUAL(m.full_scans, scan);
		if (m.pages_sharing == 1)
			at = scan;
	}
	CU_ASSERT_EQUAL(m.pages_shared, 1);
	CU_ASSERT_EQUAL(m.compares, *compares_before + 2); /* the compare and the merge's re-compare */
	rig_free(&r);
	return at;
}

SP_TEST(pages_of_different_classes_are_never_compared)
{
	int64_t before;

	CU_ASSERT_EQUAL(merge_scan("classes=4", &before), 13);
	CU_ASSERT_EQUAL(before, 0); /* no compare at all during scans 1-12 */
	CU_ASSERT_EQUAL(merge_scan("classes=1", &before), 6);
	CU_ASSERT_EQUAL(before, 0);
}

/* Identical static pages all land in class 0 and merge on the second full scan, as in KSM. */
SP_TEST(static_duplicates_merge_on_second_full_scan)
{
	const char *sets[] = { "pages_to_scan=1000", NULL };
	struct rig r;
	struct metrics m;

	rig_init(&r, "cmd", 2, 6);
	rig_start(&r, sets);
	for (uint32_t g = 0; g < 2; g++) {
		for (uint64_t i = 0; i < 5; i++)
			rig_write(&r, g, i, 7);
		rig_write(&r, g, 5, 50 + g);
	}
	rig_batch(&r);
	rig_metrics(&r, &m);
	CU_ASSERT_EQUAL(m.pages_sharing, 0);
	CU_ASSERT_EQUAL(m.pages_volatile, 12);
	rig_batch(&r);
	rig_metrics(&r, &m);
	CU_ASSERT_EQUAL(m.pages_shared, 1);
	CU_ASSERT_EQUAL(m.pages_sharing, 9);
	CU_ASSERT_EQUAL(m.pages_unshared, 2);
	CU_ASSERT_EQUAL(m.pages_volatile, 0);
	CU_ASSERT_EQUAL(m.general_profit, 9 * 4096 - 12 * 64);

	/* COW breaks count at once (no lag, unlike ksm). */
	rig_write(&r, 0, 0, 99);
	rig_metrics(&r, &m);
	CU_ASSERT_EQUAL(m.cow_breaks, 1);
	CU_ASSERT_EQUAL(m.pages_sharing, 8);
	rig_free(&r);
}

/*
 * Smaller trees, fewer tree steps: 64 static unique pages and 64 pages
 * rewritten before every scan.  With 4 classes the static pages' unstable
 * tree holds 64 pages instead of all 128, so the static pages' searches are
 * one level shorter than with one class.
 */
SP_TEST(classes_shrink_the_trees_searched)
{
	int64_t steps[2];

	for (int c = 0; c < 2; c++) {
		const char *sets[] = { "pages_to_scan=1000", c ? "classes=4" : "classes=1", NULL };
		struct rig r;

		rig_init(&r, "cmd", 1, 128);
		rig_start(&r, sets);
		for (uint64_t scan = 1; scan <= 12; scan++) {
			for (uint64_t i = 0; i < 128; i++) {
				if (scan == 1 || (i >= 64 && scan < 10))
					rig_write(&r, 0, i, i < 64 ? 1000 + i : scan * 1000 + i + 5000);
			}
			rig_batch(&r);
		}
		steps[c] = (int64_t)sim_mem_counts(r.mem)[BK_COST_TREE_STEP];
		rig_free(&r);
	}
	CU_ASSERT(steps[1] < steps[0]);
}
