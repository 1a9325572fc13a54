/*
 * test_fpcount.c - the content multiset against a naive model, under random
 * adds and removes that force collisions, growth and backward-shift deletes.
 */
#include <stdlib.h>

#include "fpcount.h"
#include "harness.h"

#define KEYS 5000

SP_TEST(random_against_naive_model)
{
	uint64_t seed = sp_test_seed();
	struct fpcount c;
	static uint32_t model[KEYS][3];
	uint64_t distinct = 0, total = 0, bad = 0;

	srand((unsigned)seed);
	CU_ASSERT_EQUAL_FATAL(fpcount_init(&c, 4), 0);
	for (int step = 0; step < 400000; step++) {
		int k = rand() % KEYS, part = rand() % 3;
		/* low words collide on purpose: only hi tells some keys apart */
		struct sp_fp fp = { (uint64_t)(k % 97), (uint64_t)k };

		if (model[k][part] && rand() % 2) {
			uint32_t left = fpcount_remove(&c, fp, (uint32_t)part);

			model[k][part]--;
			total--;
			distinct -= model[k][part] == 0;
			bad += left != model[k][part];
		} else {
			int64_t now = fpcount_add(&c, fp, (uint32_t)part);

			distinct += model[k][part] == 0;
			model[k][part]++;
			total++;
			bad += now != (int64_t)model[k][part];
		}
		if (step % 9973 == 0) {
			for (int j = 0; j < KEYS; j++) {
				struct sp_fp f = { (uint64_t)(j % 97), (uint64_t)j };

				for (int q = 0; q < 3; q++)
					bad += fpcount_get(&c, f, (uint32_t)q) != model[j][q];
			}
		}
	}
	CU_ASSERT_EQUAL(bad, 0);
	CU_ASSERT_EQUAL(fpcount_distinct(&c), distinct);
	CU_ASSERT_EQUAL(fpcount_total(&c), total);
	CU_ASSERT_EQUAL(fpcount_duplicates(&c), total - distinct);
	fpcount_release(&c);
}

/* Past 2 MiB the table is mmap()ed (on huge pages): growth into it, prefetch hints, removal. */
SP_TEST(large_mapped_table)
{
	enum { N = 200000 };
	struct fpcount c;
	uint64_t bad = 0;

	CU_ASSERT_EQUAL_FATAL(fpcount_init(&c, 16), 0);
	for (uint64_t k = 0; k < N; k++) {
		struct sp_fp fp = { k * 0xd1b54a32d192ed03ULL, ~k };

		fpcount_prefetch(&c, fp, (uint32_t)(k % 2));
		bad += fpcount_add(&c, fp, (uint32_t)(k % 2)) != 1;
		if (k % 3 == 0)
			bad += fpcount_add(&c, fp, (uint32_t)(k % 2)) != 2;
	}
	CU_ASSERT((c.mask + 1) * sizeof(struct fpcount_entry) >= (size_t)2 << 20);
	CU_ASSERT_EQUAL(fpcount_distinct(&c), N);
	CU_ASSERT_EQUAL(fpcount_duplicates(&c), (N + 2) / 3);
	for (uint64_t k = 0; k < N; k++) {
		struct sp_fp fp = { k * 0xd1b54a32d192ed03ULL, ~k };

		bad += fpcount_get(&c, fp, (uint32_t)(k % 2)) != (k % 3 == 0 ? 2u : 1u);
		bad += fpcount_get(&c, fp, (uint32_t)(1 - k % 2)) != 0;
		if (k % 3 == 0)
			fpcount_remove(&c, fp, (uint32_t)(k % 2));
		bad += fpcount_remove(&c, fp, (uint32_t)(k % 2)) != 0;
	}
	CU_ASSERT_EQUAL(bad, 0);
	CU_ASSERT_EQUAL(fpcount_distinct(&c), 0);
	CU_ASSERT_EQUAL(fpcount_total(&c), 0);
	fpcount_release(&c);
	CU_ASSERT_PTR_NULL(c.slots);
}
