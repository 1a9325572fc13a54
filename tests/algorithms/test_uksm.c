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
#include "sim.h"
#include "tracebuild.h"

/* ---- a rig: one algorithm on a sim_mem backend (behind a counting wrapper), driven by hand ---- */

/* Content number -> fingerprint with a spread checksum (0: zero page); tb_fp()'s all checksum to 0. */
static struct sp_fp fp_of(uint64_t content)
{
	struct sp_fp fp = { 0, 0 };

	if (content) {
		fp.lo = content * 0xff51afd7ed558ccdULL + 0x632be59bd9b4e019ULL;
		fp.hi = content;
	}
	return fp;
}

struct rig {
	struct tb tb; /* only its header is used */
	struct sim_mem *mem;
	struct backend in;       /* the simulated backend */
	struct backend_ops ops;  /* the wrapper's: counts per page, optional uncounted checksum */
	const struct algo_ops *a;
	void *st;
	uint64_t now;
	struct sim_cost cost;
	bool offer_uncounted;    /* offer checksum_uncounted() to the algorithm */
	uint64_t *info_calls;    /* page_info() per page since start */
	uint64_t *hash_calls;    /* checksum() + checksum_uncounted() per page */
	int64_t last_hashed;     /* page of the last checksum call */
	uint64_t uncounted;
};

static struct rig *the_rig(void *impl) { return impl; }
static uint64_t r_npages(void *i) { struct rig *r = the_rig(i); return r->in.ops->npages(r->in.impl); }
static uint32_t r_nnodes(void *i) { struct rig *r = the_rig(i); return r->in.ops->nnodes(r->in.impl); }
static uint32_t r_nguests(void *i) { struct rig *r = the_rig(i); return r->in.ops->nguests(r->in.impl); }
static uint32_t r_page_size(void *i) { struct rig *r = the_rig(i); return r->in.ops->page_size(r->in.impl); }
static uint32_t r_zero_checksum(void *i) { struct rig *r = the_rig(i); return r->in.ops->zero_checksum(r->in.impl); }
static void r_page_info(void *i, bk_page p, struct bk_page_info *o)
{
	struct rig *r = the_rig(i);

	if (r->info_calls)
		r->info_calls[p]++;
	r->in.ops->page_info(r->in.impl, p, o);
}
static uint32_t r_checksum(void *i, bk_page p)
{
	struct rig *r = the_rig(i);

	r->hash_calls[p]++;
	r->last_hashed = (int64_t)p;
	return r->in.ops->checksum(r->in.impl, p);
}
static uint32_t r_checksum_uncounted(void *i, bk_page p)
{
	struct rig *r = the_rig(i);

	r->hash_calls[p]++;
	r->uncounted++;
	return sp_fp_checksum(r->in.ops->content(r->in.impl, p));
}
static int r_compare(void *i, bk_page a, bk_page b) { struct rig *r = the_rig(i); return r->in.ops->compare(r->in.impl, a, b); }
static int r_compare_frame(void *i, bk_page a, bk_frame f) { struct rig *r = the_rig(i); return r->in.ops->compare_frame(r->in.impl, a, f); }
static int r_merge_pages(void *i, bk_page p, bk_page k, bk_frame *o) { struct rig *r = the_rig(i); return r->in.ops->merge_pages(r->in.impl, p, k, o); }
static int r_merge_frame(void *i, bk_page p, bk_frame f) { struct rig *r = the_rig(i); return r->in.ops->merge_frame(r->in.impl, p, f); }
static int r_merge_zero(void *i, bk_page p) { struct rig *r = the_rig(i); return r->in.ops->merge_zero(r->in.impl, p); }
static int r_unmerge(void *i, bk_page p) { struct rig *r = the_rig(i); return r->in.ops->unmerge(r->in.impl, p); }
static uint32_t r_frame_mappers(void *i, bk_frame f) { struct rig *r = the_rig(i); return r->in.ops->frame_mappers(r->in.impl, f); }
static uint32_t r_frame_node(void *i, bk_frame f) { struct rig *r = the_rig(i); return r->in.ops->frame_node(r->in.impl, f); }
static void r_account(void *i, enum bk_cost w, uint64_t n) { struct rig *r = the_rig(i); r->in.ops->account(r->in.impl, w, n); }

static void rig_init(struct rig *r, const char *algo, uint32_t nguests, uint64_t pages)
{
	memset(r, 0, sizeof(*r));
	tb_init(&r->tb, nguests, pages);
	r->a = algo_find(algo);
	CU_ASSERT_PTR_NOT_NULL_FATAL(r->a);
	sim_cost_defaults(&r->cost);
	r->last_hashed = -1;
}

/* Creates the backend and the algorithm; sets: NULL-terminated "key=value" list. */
static void rig_start(struct rig *r, const char *const *sets)
{
	struct algo_params prm;
	struct algo_env env;
	struct sp_err err = { 0 };
	uint64_t n;

	algo_params_defaults(r->a, &prm);
	for (; sets && *sets; sets++)
		CU_ASSERT_EQUAL_FATAL(algo_params_set(r->a, &prm, *sets, &err), 0);
	CU_ASSERT_EQUAL_FATAL(sim_mem_new(&r->mem, &r->tb.h, &err), 0);
	r->in = sim_mem_backend(r->mem);
	r->ops = (struct backend_ops){
		.npages = r_npages, .nnodes = r_nnodes, .nguests = r_nguests,
		.page_size = r_page_size, .zero_checksum = r_zero_checksum,
		.page_info = r_page_info, .checksum = r_checksum, .compare = r_compare,
		.compare_frame = r_compare_frame, .merge_pages = r_merge_pages,
		.merge_frame = r_merge_frame, .merge_zero = r_merge_zero, .unmerge = r_unmerge,
		.frame_mappers = r_frame_mappers, .frame_node = r_frame_node, .account = r_account,
		.content = NULL,
		.checksum_uncounted = r->offer_uncounted ? r_checksum_uncounted : NULL,
	};
	n = r->in.ops->npages(r->in.impl);
	r->hash_calls = calloc(n + 1, sizeof(*r->hash_calls));
	CU_ASSERT_PTR_NOT_NULL_FATAL(r->hash_calls);
	env.bk.ops = &r->ops;
	env.bk.impl = r;
	env.seed = 1;
	if (r->a->create(&r->st, &prm, &env, &err) != 0)
		fprintf(stderr, "create: %s\n", err.msg);
	CU_ASSERT_PTR_NOT_NULL_FATAL(r->st);
	r->info_calls = calloc(n + 1, sizeof(*r->info_calls)); /* from now on: not create()'s */
	CU_ASSERT_PTR_NOT_NULL_FATAL(r->info_calls);
}

static void rig_record(struct rig *r, uint32_t g, uint64_t page, uint64_t content, bool present)
{
	struct trace_record rec = { .guest = g, .page = page };
	struct sp_err err = { 0 };
	uint32_t what;
	bool notify;
	bk_page p;

	if (present) {
		rec.fp = fp_of(content);
		rec.flags = TRACE_PRESENT | (content ? 0 : TRACE_ZERO);
	}
	rec.node = r->tb.h.guests[g].node;
	CU_ASSERT_EQUAL_FATAL(sim_mem_apply(r->mem, &rec, &p, &what, &notify, &err), 0);
	if (what && notify)
		CU_ASSERT_EQUAL(r->a->page_changed(r->st, p, what), 0);
}

static void rig_write(struct rig *r, uint32_t g, uint64_t page, uint64_t content)
{
	rig_record(r, g, page, content, true);
}

static void rig_metrics(struct rig *r, struct metrics *m)
{
	memset(m, 0, sizeof(*m));
	r->a->metrics(r->st, m);
	sim_mem_metrics(r->mem, &r->cost, m);
}

static uint64_t rig_batch(struct rig *r)
{
	uint64_t sleep = 0;

	CU_ASSERT_EQUAL_FATAL(r->a->batch(r->st, r->now, &sleep), 0);
	r->now += sleep + 1000000u;
	return sleep;
}

static void rig_free(struct rig *r)
{
	if (r->st)
		r->a->destroy(r->st);
	free(r->info_calls);
	free(r->hash_calls);
	sim_mem_free(r->mem);
	trace_header_release(&r->tb.h);
}

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
