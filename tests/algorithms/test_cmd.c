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
