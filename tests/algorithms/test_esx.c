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
