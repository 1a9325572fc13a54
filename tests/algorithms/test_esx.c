/*
 * test_esx.c - the ESX page-sharing model against numbers worked out from
 * its mechanism: an identical pair merges exactly when the second page is
 * sampled after the first became a hint; a stale hint is dropped on
 * re-hashing without a compare; COW breaks drop references at once; the
 * sampling rate follows share_scan_vm and share_scan_total.  The algorithm
 * runs on a simulated backend behind a wrapper that records which page each
 * checksum was taken of.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "algorithm.h"
#include "harness.h"
#include "rig.h"
#include "sim.h"
#include "tracebuild.h"

/* 10 pages per second per guest, 100 ms batches: one sample per batch. */
static const char *const one_per_batch[] = { "share_scan_vm=10", "share_scan_total=1000",
					      "scan_period_millisecs=100", NULL };

SP_TEST(pair_merges_when_second_page_sampled_after_first_became_hint)
{
	for (uint64_t seed_run = 0; seed_run < 3; seed_run++) {
		struct rig r;
		struct metrics m;
		int64_t first = -1;
		bool merged = false;

		rig_init(&r, "esx", 1, 2);
		rig_start(&r, one_per_batch);
		/* Different seeds through different runs: burn some samples first. */
		for (uint64_t k = 0; k < seed_run; k++)
			rig_batch(&r);
		rig_write(&r, 0, 0, 5);
		rig_write(&r, 0, 1, 5);
		for (int b = 0; b < 200 && !merged; b++) {
			uint64_t h0 = r.hash_calls[0], h1 = r.hash_calls[1];
			int64_t before_cmp;

			rig_metrics(&r, &m);
			before_cmp = m.compares;
			rig_batch(&r);
			rig_metrics(&r, &m);
			CU_ASSERT_FATAL(r.hash_calls[0] + r.hash_calls[1] > h0 + h1);
			if (!(r.hash_calls[0] > h0 && r.hash_calls[1] > h1)) {
				/* One page sampled: it becomes (again) the one hint, unless both were seen. */
				bool second = first >= 0 && r.hash_calls[first] == (first ? h1 : h0);

				if (first < 0)
					first = r.hash_calls[0] > h0 ? 0 : 1;
				CU_ASSERT_FALSE(second); /* the other page, with a hint there: must merge */
				CU_ASSERT_EQUAL(m.pages_sharing, 0);
				CU_ASSERT_EQUAL(m.pages_unshared, 1);
				CU_ASSERT_EQUAL(m.compares, before_cmp);
				continue;
			}
			CU_ASSERT(first >= 0 && r.hash_calls[first] == (first ? h1 : h0) + 1);
			/* The second page at last: the hint is re-hashed, compared, and both share. */
			merged = true;
			CU_ASSERT_EQUAL(m.pages_shared, 1);
			CU_ASSERT_EQUAL(m.pages_sharing, 1);
			CU_ASSERT_EQUAL(m.pages_unshared, 0);
			CU_ASSERT_EQUAL(m.merges, 1);
			CU_ASSERT_EQUAL(r.hash_calls[0] + r.hash_calls[1], h0 + h1 + 2);
			CU_ASSERT_EQUAL(m.compares, before_cmp + 2); /* compare + the merge's re-compare */
			CU_ASSERT_EQUAL(m.general_profit, 4096 - 64);
		}
		CU_ASSERT(merged);
		rig_free(&r);
	}
}

SP_TEST(stale_hint_is_dropped_without_a_compare)
{
	struct rig r;
	struct metrics m;
	int64_t cmp, sums;

	rig_init(&r, "esx", 1, 2);
	rig_start(&r, one_per_batch);
	rig_write(&r, 0, 0, 5);
	rig_write(&r, 0, 1, 6);
	for (int b = 0; b < 200; b++) {
		rig_metrics(&r, &m);
		if (m.pages_unshared == 2)
			break;
		rig_batch(&r);
	}
	CU_ASSERT_EQUAL_FATAL(m.pages_unshared, 2); /* both pages are hints */
	/* Swap the contents: each hint's recorded hash now names the other page's content. */
	rig_write(&r, 0, 0, 6);
	rig_write(&r, 0, 1, 5);
	rig_metrics(&r, &m);
	CU_ASSERT_EQUAL(m.cow_breaks, 0); /* hints are not write-protected */
	cmp = m.compares;
	sums = m.checksums;
	rig_batch(&r);
	rig_metrics(&r, &m);
	/* Whichever page was sampled: its hash matches the other's hint, which re-hashes stale. */
	CU_ASSERT_EQUAL(m.checksums, sums + 2);
	CU_ASSERT_EQUAL(m.compares, cmp);
	CU_ASSERT_EQUAL(m.pages_unshared, 1);
	CU_ASSERT_EQUAL(m.pages_sharing, 0);
	CU_ASSERT_EQUAL(m.merges, 0);
	rig_free(&r);
}

SP_TEST(cow_breaks_drop_references_at_once)
{
	const char *sets[] = { "share_scan_vm=1000", "scan_period_millisecs=100", NULL };
	struct rig r;
	struct metrics m;

	rig_init(&r, "esx", 1, 3);
	rig_start(&r, sets);
	for (uint64_t i = 0; i < 3; i++)
		rig_write(&r, 0, i, 8);
	for (int b = 0; b < 50; b++)
		rig_batch(&r);
	rig_metrics(&r, &m);
	CU_ASSERT_EQUAL_FATAL(m.pages_sharing, 2);
	CU_ASSERT_EQUAL(m.pages_shared, 1);
	rig_write(&r, 0, 0, 9);
	rig_metrics(&r, &m);
	CU_ASSERT_EQUAL(m.cow_breaks, 1);
	CU_ASSERT_EQUAL(m.pages_sharing, 1);
	CU_ASSERT_EQUAL(m.pages_shared, 1);
	rig_write(&r, 0, 1, 10);
	rig_metrics(&r, &m);
	CU_ASSERT_EQUAL(m.pages_sharing, 0);
	CU_ASSERT_EQUAL(m.pages_shared, 1); /* one mapper left: still a shared frame */
	rig_write(&r, 0, 2, 11);
	rig_metrics(&r, &m);
	CU_ASSERT_EQUAL(m.pages_shared, 0);
	CU_ASSERT_EQUAL(m.cow_breaks, 3);
	rig_free(&r);
}

/* ESX 2's defaults, 50 pages/s per guest and 200 overall: 8 guests get 25 each. */
SP_TEST(sampling_rate_follows_share_scan_vm_and_total)
{
	struct rig r;
	struct metrics m;

	rig_init(&r, "esx", 8, 100);
	rig_start(&r, NULL);
	for (int b = 0; b < 10; b++)
		CU_ASSERT_EQUAL(rig_batch(&r), 100000000u); /* 100 ms */
	rig_metrics(&r, &m);
	CU_ASSERT_EQUAL(m.pages_scanned, 200);
	for (uint32_t g = 0; g < 8; g++) {
		uint64_t n = 0;

		for (uint64_t i = 0; i < 100; i++)
			n += r.info_calls[g * 100 + i];
		CU_ASSERT_EQUAL(n, 25);
	}
	rig_free(&r);

	/* 2 guests: the per-guest limit binds, 50 each. */
	rig_init(&r, "esx", 2, 100);
	rig_start(&r, NULL);
	for (int b = 0; b < 10; b++)
		rig_batch(&r);
	rig_metrics(&r, &m);
	CU_ASSERT_EQUAL(m.pages_scanned, 100);
	rig_free(&r);
}

/* Pages of two security domains with the same contents: each domain shares within itself. */
SP_TEST(domains_are_separate_tables)
{
	const char *sets[] = { "share_scan_vm=1000", NULL };
	struct rig r;
	struct metrics m;

	rig_init(&r, "esx", 2, 4);
	r.tb.h.guests[1].domain = 1;
	rig_start(&r, sets);
	for (uint32_t g = 0; g < 2; g++) {
		for (uint64_t i = 0; i < 4; i++)
			rig_write(&r, g, i, 3);
	}
	for (int b = 0; b < 50; b++)
		rig_batch(&r);
	rig_metrics(&r, &m);
	CU_ASSERT_EQUAL(m.pages_shared, 2);
	CU_ASSERT_EQUAL(m.pages_sharing, 6);
	CU_ASSERT_EQUAL(m.oracle_saving, 6);
	rig_free(&r);
}

/*
 * ESX does not share inside large pages unless memory is short.  One guest
 * of 4 pages on a huge page: 0 and 1 hold content 5, 2 and 3 are zero; one
 * sample every 100 ms for 60 s.  share_large_pages=0: sampled pages only
 * become hints, nothing is shared or split.  1: both pairs share, the large
 * page is broken once, and the break maps nothing to the zero page (that is
 * Linux >= 6.12's, and esx does not run inside Linux).
 */
SP_TEST(large_pages_shared_only_when_memory_is_short)
{
	for (int shortage = 0; shortage <= 1; shortage++) {
		const char *sets[] = { one_per_batch[0], one_per_batch[1], one_per_batch[2],
				       shortage ? "share_large_pages=1" : "share_large_pages=0", NULL };
		struct rig r;
		struct metrics m;

		rig_init(&r, "esx", 1, 4);
		rig_start(&r, sets);
		for (uint64_t i = 0; i < 4; i++)
			rig_write_huge(&r, 0, i, i < 2 ? 5 : 0);
		for (int b = 0; b < 600; b++)
			rig_batch(&r);
		rig_metrics(&r, &m);
		CU_ASSERT_EQUAL(m.pages_scanned, 600);
		CU_ASSERT_EQUAL(m.pages_shared, shortage ? 2 : 0);
		CU_ASSERT_EQUAL(m.pages_sharing, shortage ? 2 : 0);
		CU_ASSERT_EQUAL(m.thp_splits, shortage ? 1 : 0);
		CU_ASSERT_EQUAL(m.thp_zero_pages, 0);
		CU_ASSERT_EQUAL(m.merges, shortage ? 2 : 0);
		if (!shortage)
			CU_ASSERT(m.pages_unshared >= 1 && m.pages_unshared <= 4);
		rig_free(&r);
	}
}
