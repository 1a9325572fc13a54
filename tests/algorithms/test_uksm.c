/*
 * test_uksm.c - the UKSM model against its mechanism: a region whose
 * samples find duplicates is promoted and then sampled more than the regions
 * without; a region whose merged pages keep being written is demoted; a
 * partial hash of strength s costs s/1024 of a checksum when the backend
 * offers checksum_uncounted() (a full checksum when it does not); the
 * adaptive strength falls when collisions are rare.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "algorithm.h"
#include "harness.h"
#include "rig.h"
#include "sim.h"
#include "tracebuild.h"

static uint64_t region_visits(const struct rig *r, uint64_t first, uint64_t n)
{
	uint64_t v = 0;

	for (uint64_t i = first; i < first + n; i++)
		v += r->info_calls[i];
	return v;
}

/*
 * Two guests of 4 regions of 64 pages; region 0 of each holds the same 64
 * contents, the rest is unique.  Two levels: the bottom samples every 4th
 * page of a region per sweep, the top every page with twice the budget.
 * The first sweeps of the two region 0s find their pages in each other:
 * both are promoted and sampled four times as densely as the unique regions.
 */
SP_TEST(region_with_many_duplicates_is_promoted)
{
	const char *sets[] = { "levels=2", "level_stride=4", "region_pages=64", "pages_to_scan=48",
			       "use_zero_pages=0", NULL };
	struct rig r;
	struct metrics m;
	uint64_t dup, uniq;

	rig_init(&r, "uksm", 2, 256);
	rig_start(&r, sets);
	for (uint32_t g = 0; g < 2; g++) {
		for (uint64_t i = 0; i < 256; i++)
			rig_write(&r, g, i, i < 64 ? 1 + i : 1000 * (g + 1) + i);
	}
	for (int b = 0; b < 12; b++)
		rig_batch(&r);
	rig_metrics(&r, &m);
	dup = region_visits(&r, 0, 64) + region_visits(&r, 256, 64);
	uniq = region_visits(&r, 64, 192) + region_visits(&r, 320, 192);
	fprintf(stderr, "visits: duplicate regions %llu, unique regions %llu; sharing %lld\n",
		(unsigned long long)dup, (unsigned long long)uniq, (long long)m.pages_sharing);
	/* Per region: the 2 duplicate regions against the 6 unique ones. */
	CU_ASSERT(dup / 2 > 2 * (uniq / 6));
	CU_ASSERT_EQUAL(m.pages_sharing, 64);
	CU_ASSERT_EQUAL(m.oracle_saving, 64);
	rig_free(&r);
}

/*
 * A region whose merged pages are all rewritten (COW broken) right after
 * merging has a COW ratio of 1 > max_cow_ratio at its next evaluation: it
 * goes back down and, finding no more duplicates, stays there, sampled a
 * quarter as densely as the same region left alone at the top level.
 */
SP_TEST(region_with_cow_breaks_is_demoted)
{
	uint64_t visits[2];

	for (int w = 0; w < 2; w++) {
		const char *sets[] = { "levels=2", "level_stride=4", "region_pages=64",
				       "pages_to_scan=48", "demote_dup_ratio=0", NULL };
		struct rig r;

		rig_init(&r, "uksm", 2, 128);
		rig_start(&r, sets);
		for (uint32_t g = 0; g < 2; g++) {
			for (uint64_t i = 0; i < 128; i++)
				rig_write(&r, g, i, i < 64 ? 1 + i : 1000 * (g + 1) + i);
		}
		for (int b = 0; b < 60; b++) {
			rig_batch(&r);
			if (w) {
				/* Every merged page of guest 1's region 0 is written: a COW break each. */
				for (uint64_t i = 0; i < 64; i++) {
					struct bk_page_info info;

					r.in.ops->page_info(r.in.impl, 128 + i, &info);
					if (info.frame != BK_NO_FRAME) {
						rig_write(&r, 1, i, 7000 + i); /* the COW break */
					}
				}
			}
		}
		visits[w] = region_visits(&r, 128, 64);
		if (w) {
			struct metrics m;

			rig_metrics(&r, &m);
			CU_ASSERT(m.cow_breaks > 0);
		}
		rig_free(&r);
	}
	fprintf(stderr, "visits of guest 1 region 0: quiet %llu, rewritten %llu\n",
		(unsigned long long)visits[0], (unsigned long long)visits[1]);
	CU_ASSERT(2 * visits[1] < visits[0]);
}

/* 1024 unique pages, one level (every page each sweep), strength 256 fixed. */
SP_TEST(partial_hash_costs_a_fraction_of_a_checksum)
{
	for (int offer = 0; offer <= 1; offer++) {
		const char *sets[] = { "levels=1", "pages_to_scan=1024", "hash_strength=256",
				       "adaptive_hash=0", NULL };
		struct rig r;
		struct metrics m;
		uint64_t hashed = 0;

		rig_init(&r, "uksm", 1, 1024);
		r.offer_uncounted = offer;
		rig_start(&r, sets);
		for (uint64_t i = 0; i < 1024; i++)
			rig_write(&r, 0, i, 1 + i);
		for (int b = 0; b < 4; b++)
			rig_batch(&r);
		rig_metrics(&r, &m);
		for (uint64_t i = 0; i < 1024; i++)
			hashed += r.hash_calls[i];
		CU_ASSERT_EQUAL(hashed, 4 * 1024);
		CU_ASSERT_EQUAL(m.pages_scanned, 4 * 1024);
		CU_ASSERT_EQUAL(r.uncounted, offer ? hashed : 0);
		CU_ASSERT_EQUAL(m.checksums, offer ? (int64_t)hashed / 4 : (int64_t)hashed);
		rig_free(&r);
	}
}

/*
 * Few pages, so partial hashes rarely collide: the hill climb halves the
 * strength from 256 while the cost per page falls, down to a few words;
 * the last 4096 hashes cost a few checksums, not the 1024 of strength 256.
 */
SP_TEST(adaptive_hash_strength_falls_when_collisions_are_rare)
{
	const char *sets[] = { "levels=1", "pages_to_scan=1024", "hash_strength=256", NULL };
	struct rig r;
	struct metrics m;
	int64_t before;

	rig_init(&r, "uksm", 1, 1024);
	r.offer_uncounted = true;
	rig_start(&r, sets);
	for (uint64_t i = 0; i < 1024; i++)
		rig_write(&r, 0, i, 1 + i);
	for (int b = 0; b < 20; b++)
		rig_batch(&r);
	rig_metrics(&r, &m);
	before = m.checksums;
	for (int b = 0; b < 4; b++)
		rig_batch(&r);
	rig_metrics(&r, &m);
	fprintf(stderr, "last 4096 hashes: %lld checksums\n", (long long)(m.checksums - before));
	CU_ASSERT(m.checksums - before < 64);
	rig_free(&r);
}
