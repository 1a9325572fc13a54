/*
 * test_cidtab.c - content ids against a naive model, under random adds and
 * puts that force tag collisions, growth of both arrays, backward-shift
 * deletes and id reuse; the small map under them (sp_map.h) against an array.
 */
#include <stdlib.h>

#include "cidtab.h"
#include "harness.h"
#include "sp_bigmem.h"
#include "sp_map.h"

#define KEYS 5000

/*
 * Random sets, changes and deletes over keys that share their low or high
 * words (the partitions' keys are domain << 32 | node): every key's value
 * after every step is the array's, through growth and backward shifts.
 */
SP_TEST(small_map_against_an_array)
{
	enum { N = 3000 };
	static uint32_t val[N];
	struct sp_map m = { 0 };
	uint32_t held = 0, bad = 0;

	srand((unsigned)sp_test_seed());
	CU_ASSERT_PTR_NULL(sp_map_find(&m, 0));
	for (int step = 0; step < 200000; step++) {
		uint32_t k = (uint32_t)rand() % N;
		uint64_t key = (uint64_t)(k % 61) << 32 | k / 61;

		if (val[k] && rand() % 3 == 0) {
			sp_map_del(&m, key);
			val[k] = 0;
			held--;
		} else {
			uint32_t v = (uint32_t)rand() | 1u;

			CU_ASSERT_EQUAL_FATAL(sp_map_set(&m, key, v), 0);
			held += !val[k];
			val[k] = v;
		}
		if (step % 1000 == 0 || step > 199000) {
			for (uint32_t j = 0; j < N; j++) {
				uint32_t *f = sp_map_find(&m, (uint64_t)(j % 61) << 32 | j / 61);

				bad += val[j] ? !f || *f != val[j] : f != NULL;
			}
		}
	}
	CU_ASSERT_EQUAL(bad, 0);
	CU_ASSERT_EQUAL(m.n, held);
	CU_ASSERT(m.n * 2 <= m.mask + 1);
	sp_map_release(&m);
	CU_ASSERT_PTR_NULL(sp_map_find(&m, 1));
}

SP_TEST(random_against_naive_model)
{
	uint64_t seed = sp_test_seed();
	struct cidtab c;
	static uint32_t model[KEYS][3], ids[KEYS][3];
	uint64_t distinct = 0, total = 0, bad = 0;

	srand((unsigned)seed);
	CU_ASSERT_EQUAL_FATAL(cidtab_init(&c), 0);
	for (int step = 0; step < 400000; step++) {
		int k = rand() % KEYS, part = rand() % 3;
		/* low words collide on purpose: only hi tells some keys apart */
		struct sp_fp fp = { (uint64_t)(k % 97), (uint64_t)k };

		if (model[k][part] && rand() % 2) {
			uint32_t left = cidtab_put(&c, ids[k][part]);

			model[k][part]--;
			total--;
			distinct -= model[k][part] == 0;
			bad += left != model[k][part];
		} else {
			uint32_t id = 0;
			int64_t now = cidtab_add(&c, fp, (uint32_t)part, &id);

			/* a pair keeps its id while held */
			bad += model[k][part] && id != ids[k][part];
			bad += id == 0;
			ids[k][part] = id;
			distinct += model[k][part] == 0;
			model[k][part]++;
			total++;
			bad += now != (int64_t)model[k][part];
		}
		if (step % 9973 == 0) {
			for (int j = 0; j < KEYS; j++) {
				for (int q = 0; q < 3; q++) {
					if (model[j][q])
						bad += cidtab_count(&c, ids[j][q]) != model[j][q];
				}
			}
		}
	}
	CU_ASSERT_EQUAL(bad, 0);
	CU_ASSERT_EQUAL(cidtab_distinct(&c), distinct);
	CU_ASSERT_EQUAL(cidtab_total(&c), total);
	CU_ASSERT_EQUAL(cidtab_duplicates(&c), total - distinct);
	/* ids are reused: never more handed out than pairs ever held at once, plus 1 */
	CU_ASSERT(c.nent <= 3 * KEYS + 1);
	cidtab_release(&c);
}

/* Distinct live pairs have distinct ids; a freed id is handed out again. */
SP_TEST(ids_unique_and_reused)
{
	enum { N = 200000 };
	struct cidtab c;
	static uint8_t seen[N + 2];
	uint32_t id, first;
	uint64_t bad = 0;

	CU_ASSERT_EQUAL_FATAL(cidtab_init(&c), 0);
	for (uint64_t k = 0; k < N; k++) {
		struct sp_fp fp = { k * 0xd1b54a32d192ed03ULL, ~k };

		__builtin_prefetch(cidtab_home_slot(&c, cidtab_hash(fp, 7)), 1); /* hints: must not change the table */
		cidtab_prefetch_entry_hash(&c, cidtab_hash(fp, 7));
		bad += cidtab_add(&c, fp, 7, &id) != 1;
		bad += id == 0 || id > N || seen[id];
		if (id <= N)
			seen[id] = 1;
	}
	CU_ASSERT_EQUAL(bad, 0);
	CU_ASSERT_EQUAL(cidtab_distinct(&c), N);
	/* the same fingerprint in another partition is another pair */
	CU_ASSERT_EQUAL(cidtab_add(&c, (struct sp_fp){ 0, ~0ULL }, 8, &first), 1);
	CU_ASSERT_EQUAL(cidtab_add(&c, (struct sp_fp){ 0, ~0ULL }, 7, &id), 2);
	CU_ASSERT_NOT_EQUAL(id, first);
	CU_ASSERT_EQUAL(cidtab_put(&c, first), 0);
	CU_ASSERT_EQUAL(cidtab_add(&c, (struct sp_fp){ 1, 2 }, 3, &id), 1);
	CU_ASSERT_EQUAL(id, first);
	CU_ASSERT_EQUAL(cidtab_distinct(&c), N + 1);
	CU_ASSERT_EQUAL(cidtab_duplicates(&c), 1);
	cidtab_release(&c);
	CU_ASSERT_PTR_NULL(c.ent);
}

/*
 * A count past what an id's word holds (CIDTAB_CMAX) moves to the side map
 * and back: every count on the way up and down is the true one.
 */
SP_TEST(counts_past_the_word_and_back)
{
	struct cidtab c;
	struct sp_fp fp = { 0x1234, 0x5678 }, other = { 0x9abc, 0xdef0 };
	uint32_t id = 0, id2 = 0, top = CIDTAB_CMAX + 3;
	uint64_t bad = 0;

	CU_ASSERT_EQUAL_FATAL(cidtab_init(&c), 0);
	CU_ASSERT_EQUAL(cidtab_add(&c, other, 1, &id2), 1);
	for (uint32_t n = 1; n <= top; n++) {
		bad += cidtab_add(&c, fp, 1, &id) != (int64_t)n;
		bad += cidtab_count(&c, id) != n;
	}
	CU_ASSERT_EQUAL(c.counts.n, 1);
	CU_ASSERT_EQUAL(cidtab_total(&c), (uint64_t)top + 1);
	CU_ASSERT_EQUAL(cidtab_shared(&c), 1);
	CU_ASSERT_EQUAL(cidtab_count(&c, id2), 1);
	for (uint32_t n = top; n > 1; n--) {
		bad += cidtab_put(&c, id) != n - 1;
		bad += cidtab_count(&c, id) != n - 1;
	}
	CU_ASSERT_EQUAL(bad, 0);
	CU_ASSERT_EQUAL(c.counts.n, 0);
	CU_ASSERT_EQUAL(cidtab_shared(&c), 0);
	CU_ASSERT_EQUAL(cidtab_put(&c, id), 0);
	CU_ASSERT_EQUAL(cidtab_distinct(&c), 1);
	CU_ASSERT_EQUAL(cidtab_add(&c, other, 1, &id), 2); /* the other pair kept its id */
	CU_ASSERT_EQUAL(id, id2);
	cidtab_release(&c);
}

/*
 * More partitions than an id's word numbers (CIDTAB_PESC): pairs that
 * differ only in their partition, any 32-bit value, keep apart, against a
 * naive model under adds and puts (ids freed and reused).
 */
SP_TEST(partitions_past_the_word)
{
	enum { PARTS = CIDTAB_PESC + 905, NK = 3 };
	static uint32_t model[PARTS][NK], ids[PARTS][NK];
	uint64_t seed = sp_test_seed(), bad = 0, distinct = 0, total = 0;
	struct cidtab c;

	srand((unsigned)seed);
	CU_ASSERT_EQUAL_FATAL(cidtab_init(&c), 0);
	for (int step = 0; step < 200000; step++) {
		int q = rand() % PARTS, k = rand() % NK;
		uint32_t part = (uint32_t)q * 2654435761u; /* 0 and values far apart */
		struct sp_fp fp = { (uint64_t)k, 42 };

		if (model[q][k] && rand() % 2) {
			model[q][k]--;
			total--;
			distinct -= model[q][k] == 0;
			bad += cidtab_put(&c, ids[q][k]) != model[q][k];
		} else {
			uint32_t id = 0;
			int64_t now = cidtab_add(&c, fp, part, &id);

			bad += model[q][k] && id != ids[q][k];
			ids[q][k] = id;
			distinct += model[q][k] == 0;
			model[q][k]++;
			total++;
			bad += now != (int64_t)model[q][k];
		}
	}
	for (int q = 0; q < PARTS; q++)
		for (int k = 0; k < NK; k++)
			bad += model[q][k] && cidtab_count(&c, ids[q][k]) != model[q][k];
	CU_ASSERT_EQUAL(bad, 0);
	CU_ASSERT(c.nparts > CIDTAB_PESC); /* every partition numbered, the later ones in the side map */
	CU_ASSERT(c.parts.n > 0);
	CU_ASSERT_EQUAL(cidtab_distinct(&c), distinct);
	CU_ASSERT_EQUAL(cidtab_total(&c), total);
	cidtab_release(&c);
}

/* Growing keeps the elements and zeroes the new ones: calloc'd to mapped, and mapped to mapped (mremap). */
SP_TEST(big_arrays_grow_in_place)
{
	size_t n = 1000, sizes[] = { 300000, 1200000 }; /* 1.2 MB: calloc; 4.8 MB: mapped */
	uint32_t *a = sp_big_calloc(n, sizeof(*a));
	uint64_t bad = 0;

	CU_ASSERT_PTR_NOT_NULL_FATAL(a);
	for (size_t i = 0; i < n; i++)
		a[i] = (uint32_t)(i * 2654435761u) | 1;
	for (int k = 0; k < 2; k++) {
		uint32_t *b = sp_big_grow(a, n, sizes[k], sizeof(*a));

		CU_ASSERT_PTR_NOT_NULL_FATAL(b);
		for (size_t i = 0; i < sizes[k]; i++)
			bad += i < 1000 ? b[i] != ((uint32_t)(i * 2654435761u) | 1) : b[i] != 0;
		a = b;
		n = sizes[k];
		a[n - 1] = 0; /* the last element is writable */
	}
	CU_ASSERT_EQUAL(bad, 0);
	CU_ASSERT_PTR_NULL(sp_big_grow(a, n, SIZE_MAX / 2, sizeof(*a))); /* overflow: refused, a intact */
	CU_ASSERT_EQUAL(a[0], 1);
	sp_big_free(a, n, sizeof(*a));
}

/*
 * A table sized for an expected count: its index at the capacity that holds
 * them at <= 50% load from the start; past the expectation it grows as
 * usual; ids and counts are those of an unsized table fed the same pairs.
 */
SP_TEST(sized_table_matches_unsized_and_grows_past_expectation)
{
	enum { N = 300000 };
	struct cidtab a, b;
	uint64_t bad = 0;

	CU_ASSERT_EQUAL_FATAL(cidtab_init(&a), 0);
	CU_ASSERT_EQUAL_FATAL(cidtab_init_sized(&b, N / 2), 0);
	CU_ASSERT_EQUAL(b.mask + 1, 1u << 19); /* 2^18 slots hold 131072 < 150000 */
	for (uint64_t s = 0; s < 2 * (uint64_t)N; s++) {
		uint64_t k = (s * 7919) % N; /* every key twice, spread */
		struct sp_fp fp = { k * 0x9e3779b97f4a7c15ULL, k | 1 };
		uint32_t ia = 0, ib = 0;

		bad += cidtab_add(&a, fp, (uint32_t)(k % 3), &ia) !=
		       cidtab_add(&b, fp, (uint32_t)(k % 3), &ib);
		bad += ia != ib;
		if (s % 5 == 0 && cidtab_count(&a, ia) > 1) /* some puts: ids freed and reused */
			bad += cidtab_put(&a, ia) != cidtab_put(&b, ib);
	}
	CU_ASSERT_EQUAL(bad, 0);
	CU_ASSERT_EQUAL(cidtab_distinct(&a), N);
	CU_ASSERT_EQUAL(cidtab_distinct(&b), N);
	CU_ASSERT_EQUAL(cidtab_total(&a), cidtab_total(&b));
	CU_ASSERT_EQUAL(cidtab_shared(&a), cidtab_shared(&b));
	CU_ASSERT_EQUAL(b.mask + 1, 1u << 20); /* grown once past the expectation */
	cidtab_release(&a);
	cidtab_release(&b);
}

/* Pre-faulting leaves an array zeroed and writable, mapped (16 MiB) or calloc'd. */
SP_TEST(prefault_keeps_arrays_zeroed)
{
	size_t sizes[] = { 1000, (size_t)2 << 20 };
	uint64_t bad = 0;

	for (int k = 0; k < 2; k++) {
		uint64_t *a = sp_big_calloc(sizes[k], sizeof(*a));

		CU_ASSERT_PTR_NOT_NULL_FATAL(a);
		sp_big_prefault(a, sizes[k], sizeof(*a));
		for (size_t i = 0; i < sizes[k]; i++)
			bad += a[i] != 0;
		a[sizes[k] - 1] = 1;
		sp_big_free(a, sizes[k], sizeof(*a));
	}
	sp_big_prefault(NULL, 4u << 20, 1); /* nothing to do */
	CU_ASSERT_EQUAL(bad, 0);
}
