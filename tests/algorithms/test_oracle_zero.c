/*
 * test_oracle_zero.c - the arithmetic of the two reference algorithms on
 * hand-built traces whose answers are worked out in the comments.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gen.h"
#include "harness.h"
#include "passbk.h"
#include "tracebuild.h"

/*
 * Three guests of 3 pages (content ids; 0 = zero page):
 *   g0: 1 1 2    g1: 1 3 0    g2: 0 2 4
 * present 9; distinct {0,1,2,3,4} = 5, so oracle saves 4: 1 x3 (2 saved),
 * 2 x2 (1), 0 x2 (1).  Frames shared: contents 1, 2, 0 = 3.
 * With use_zero_pages=1: both zero pages go to the zero page (2), and the
 * 7 non-zero pages hold 4 contents: 3 sharing.
 */
static void three_guests(const char *path)
{
	static const int c[3][3] = { { 1, 1, 2 }, { 1, 3, 0 }, { 0, 2, 4 } };
	struct tb tb;

	tb_init(&tb, 3, 3);
	tb_open(&tb, path);
	tb_snap(&tb, 0);
	for (uint32_t g = 0; g < 3; g++)
		for (uint64_t p = 0; p < 3; p++)
			tb_page(&tb, g, p, (uint64_t)c[g][p]);
	tb_commit(&tb);
}

SP_TEST(oracle_present_minus_distinct)
{
	char path[512];
	struct sim_config cfg;
	struct tb_series *s;
	const struct metrics *m;

	sp_test_path(path, sizeof(path), "three.sptrace");
	three_guests(path);
	tb_config(&cfg, "oracle", NULL);
	cfg.duration_ms = 1000;
	s = tb_run(path, &cfg);
	m = tb_at(s, 0);
	CU_ASSERT_EQUAL(m->pages_sharing, 4);
	CU_ASSERT_EQUAL(m->pages_shared, 3);
	CU_ASSERT_EQUAL(m->ksm_zero_pages, 0);
	CU_ASSERT_EQUAL(m->general_profit, 4 * 4096 - 9 * 64);
	CU_ASSERT_EQUAL(m->oracle_saving, 5); /* the bound lets every zero page go: 9 - 4 */
	free(s);
}

SP_TEST(oracle_use_zero_pages)
{
	static const char *const sets[] = { "use_zero_pages=1", NULL };
	char path[512];
	struct sim_config cfg;
	struct tb_series *s;
	const struct metrics *m;

	sp_test_path(path, sizeof(path), "three.sptrace");
	three_guests(path);
	tb_config(&cfg, "oracle", sets);
	cfg.duration_ms = 1000;
	s = tb_run(path, &cfg);
	m = tb_at(s, 0);
	CU_ASSERT_EQUAL(m->pages_sharing, 3);
	CU_ASSERT_EQUAL(m->ksm_zero_pages, 2);
	CU_ASSERT_EQUAL(m->pages_shared, 2);
	CU_ASSERT_EQUAL(metrics_saved(m), m->oracle_saving);
	free(s);
}

/*
 * g0 on node 0, g1 on node 1, each: 5 5 6.  Across nodes: 4 pages of two
 * contents -> 6 - 2 = 4 saved.  merge_across_nodes=0: per node 3 - 2 = 1,
 * so 2 saved.  Different security domains: the same 2.
 */
static void two_nodes(const char *path, int split_domains)
{
	struct tb tb;

	tb_init(&tb, 2, 3);
	tb.h.guests[1].node = 1;
	if (split_domains) {
		tb.h.guests[1].node = 0;
		tb.h.guests[1].domain = 1;
	}
	tb_open(&tb, path);
	tb_snap(&tb, 0);
	for (uint32_t g = 0; g < 2; g++) {
		tb_page(&tb, g, 0, 5);
		tb_page(&tb, g, 1, 5);
		tb_page(&tb, g, 2, 6);
	}
	tb_commit(&tb);
}

SP_TEST(oracle_nodes_and_domains)
{
	static const char *const local[] = { "merge_across_nodes=0", NULL };
	char path[512];
	struct sim_config cfg;
	struct tb_series *s;

	sp_test_path(path, sizeof(path), "nodes.sptrace");
	two_nodes(path, 0);
	tb_config(&cfg, "oracle", NULL);
	cfg.duration_ms = 1;
	s = tb_run(path, &cfg);
	CU_ASSERT_EQUAL(tb_at(s, 0)->pages_sharing, 4);
	free(s);
	tb_config(&cfg, "oracle", local);
	cfg.duration_ms = 1;
	s = tb_run(path, &cfg);
	CU_ASSERT_EQUAL(tb_at(s, 0)->pages_sharing, 2);
	free(s);

	two_nodes(path, 1);
	tb_config(&cfg, "oracle", NULL);
	cfg.duration_ms = 1;
	s = tb_run(path, &cfg);
	CU_ASSERT_EQUAL(tb_at(s, 0)->pages_sharing, 2);
	CU_ASSERT_EQUAL(tb_at(s, 0)->oracle_saving, 2);
	free(s);
}

SP_TEST(oracle_follows_writes)
{
	/*
	 * One guest, 4 pages: 7 7 7 8 at 0 ms (saves 2); at 1000 ms page 3
	 * becomes 7 (saves 3); at 2000 ms pages 0 and 1 go away (saves 1).
	 */
	char path[512];
	struct sim_config cfg;
	struct tb_series *s;
	struct tb tb;

	sp_test_path(path, sizeof(path), "writes.sptrace");
	tb_init(&tb, 1, 4);
	tb_open(&tb, path);
	tb_snap(&tb, 0);
	tb_page(&tb, 0, 0, 7);
	tb_page(&tb, 0, 1, 7);
	tb_page(&tb, 0, 2, 7);
	tb_page(&tb, 0, 3, 8);
	tb_snap(&tb, 1000);
	tb_page(&tb, 0, 3, 7);
	tb_snap(&tb, 2000);
	tb_absent(&tb, 0, 0);
	tb_absent(&tb, 0, 1);
	tb_commit(&tb);
	tb_config(&cfg, "oracle", NULL);
	cfg.sample_ms = 500;
	s = tb_run(path, &cfg);
	CU_ASSERT_EQUAL(tb_at(s, 0)->pages_sharing, 2);
	CU_ASSERT_EQUAL(tb_at(s, 500)->pages_sharing, 2);
	CU_ASSERT_EQUAL(tb_at(s, 1000)->pages_sharing, 3);
	CU_ASSERT_EQUAL(tb_at(s, 2000)->pages_sharing, 1);
	CU_ASSERT_EQUAL(tb_at(s, 2000)->general_profit, 4096 - 2 * 64);
	/* default end: 60 s after the last snapshot */
	CU_ASSERT_EQUAL(s->t[s->n - 1], 62000);
	free(s);
}

/*
 * One guest, 10 pages, zero at 1, 4, 5, 9.  pages_to_scan=2,
 * sleep_millisecs=10, no CPU cost: batches at 0, 10, 20, 30, 40 ms visit
 * pages {0,1} {2,3} {4,5} {6,7} {8,9}.
 */
static void ten_pages(const char *path, int rewrite_zero)
{
	struct tb tb;

	tb_init(&tb, 1, 10);
	tb_open(&tb, path);
	tb_snap(&tb, 0);
	for (uint64_t p = 0; p < 10; p++)
		tb_page(&tb, 0, p, (p == 1 || p == 4 || p == 5 || p == 9) ? 0 : 100 + p);
	if (rewrite_zero) {
		tb_snap(&tb, 100);
		tb_page(&tb, 0, 4, 55);   /* a write to a merged zero page: COW */
		tb_page(&tb, 0, 6, 0);    /* a page becomes zero */
	}
	tb_commit(&tb);
}

SP_TEST(zero_scans_on_schedule)
{
	static const char *const sets[] = { "pages_to_scan=2", "sleep_millisecs=10", NULL };
	char path[512];
	struct sim_config cfg;
	struct tb_series *s;

	sp_test_path(path, sizeof(path), "ten.sptrace");
	ten_pages(path, 0);
	tb_config(&cfg, "zero", sets);
	cfg.sample_ms = 5;
	cfg.duration_ms = 60;
	s = tb_run(path, &cfg);
	CU_ASSERT_EQUAL(tb_at(s, 0)->ksm_zero_pages, 1);  /* page 1 */
	CU_ASSERT_EQUAL(tb_at(s, 5)->ksm_zero_pages, 1);
	CU_ASSERT_EQUAL(tb_at(s, 10)->ksm_zero_pages, 1); /* 2, 3 */
	CU_ASSERT_EQUAL(tb_at(s, 20)->ksm_zero_pages, 3); /* 4, 5 */
	CU_ASSERT_EQUAL(tb_at(s, 40)->ksm_zero_pages, 4); /* 9 */
	CU_ASSERT_EQUAL(tb_at(s, 40)->full_scans, 1);
	CU_ASSERT_EQUAL(tb_at(s, 40)->pages_scanned, 10);
	CU_ASSERT_EQUAL(tb_at(s, 40)->checksums, 10);
	CU_ASSERT_EQUAL(tb_at(s, 60)->pages_scanned, 14);
	CU_ASSERT_EQUAL(tb_at(s, 60)->checksums, 13); /* page 1, merged, needs none */
	CU_ASSERT_EQUAL(tb_at(s, 60)->merges, 4);
	CU_ASSERT_EQUAL(tb_at(s, 60)->pages_sharing, 0);
	CU_ASSERT_EQUAL(tb_at(s, 60)->general_profit, 4 * 4096 - 10 * 64);
	free(s);
}

SP_TEST(zero_cow_break)
{
	static const char *const sets[] = { "pages_to_scan=2", "sleep_millisecs=10", NULL };
	char path[512];
	struct sim_config cfg;
	struct tb_series *s;

	sp_test_path(path, sizeof(path), "ten.sptrace");
	ten_pages(path, 1);
	tb_config(&cfg, "zero", sets);
	cfg.sample_ms = 10;
	cfg.duration_ms = 200;
	s = tb_run(path, &cfg);
	CU_ASSERT_EQUAL(tb_at(s, 90)->ksm_zero_pages, 4);
	CU_ASSERT_EQUAL(tb_at(s, 90)->cow_breaks, 0);
	/* at 100 ms page 4 is written: it leaves the zero page at once */
	CU_ASSERT_EQUAL(tb_at(s, 100)->cow_breaks, 1);
	CU_ASSERT_EQUAL(tb_at(s, 100)->ksm_zero_pages, 3);
	/* page 6, now zero, is merged when the scan reaches it again */
	CU_ASSERT_EQUAL(tb_at(s, 200)->ksm_zero_pages, 4);
	CU_ASSERT_EQUAL(tb_at(s, 200)->cow_breaks, 1);
	CU_ASSERT_EQUAL(tb_at(s, 200)->merges, 5);
	free(s);
}

/* The backend without content counts (passbk offers none): the oracle counts by fingerprint. */
static struct backend no_ids(void *arg, struct sim_mem *m, struct backend bk)
{
	struct passbk *w = arg;

	(void)m;
	passbk_init(w, bk);
	CU_ASSERT_PTR_NULL(w->ops.content_counts);
	return passbk_backend(w);
}

/*
 * Across nodes the oracle reads the simulator's counts of its pages by
 * content id; a backend without them makes it count page by page, hashing
 * fingerprints.  Both must count alike at
 * every sample, on a trace with writes, unmaps, zero pages (counted as
 * content unless use_zero_pages), two nodes and two security domains.
 */
SP_TEST(oracle_ids_count_as_fingerprints)
{
	static const char *const plain[] = { NULL };
	static const char *const zero[] = { "use_zero_pages=1", NULL };
	const char *const *sets[] = { plain, zero };
	char path[512];
	struct trace_gen_params g;
	struct sp_err err = { 0 };

	sp_test_path(path, sizeof(path), "oracle_ids.sptrace");
	trace_gen_defaults(&g);
	g.guests = 4;
	g.pages = 2048;
	g.snapshots = 6;
	g.shared_fraction = 0.6;
	g.zero_fraction = 0.1;
	g.write_rate = 0.5;
	g.volatile_fraction = 0.3;
	g.nodes = 2;
	g.domains = 2;
	g.seed = 5;
	CU_ASSERT_EQUAL_FATAL(trace_gen_write(&g, path, NULL, NULL, &err), 0);
	for (int k = 0; k < 2; k++) {
		struct passbk w;
		struct sim_hooks hooks = { no_ids, NULL, &w };
		struct sim_config cfg;
		struct tb_series *a, *b;
		int64_t peak = 0;

		tb_config(&cfg, "oracle", sets[k]);
		cfg.tail_ms = 1000;
		a = tb_run(path, &cfg);
		cfg.hooks = &hooks;
		b = tb_run(path, &cfg);
		CU_ASSERT_EQUAL_FATAL(a->n, b->n);
		CU_ASSERT(a->n >= 6);
		for (size_t i = 0; i < a->n; i++) {
			CU_ASSERT_EQUAL(a->m[i].pages_sharing, b->m[i].pages_sharing);
			CU_ASSERT_EQUAL(a->m[i].pages_shared, b->m[i].pages_shared);
			CU_ASSERT_EQUAL(a->m[i].ksm_zero_pages, b->m[i].ksm_zero_pages);
			CU_ASSERT_EQUAL(a->m[i].general_profit, b->m[i].general_profit);
			/* never beyond the bound (zero pages count as saved there) */
			CU_ASSERT(a->m[i].pages_sharing + a->m[i].ksm_zero_pages <= a->m[i].oracle_saving);
			if (a->m[i].pages_sharing > peak)
				peak = a->m[i].pages_sharing;
		}
		CU_ASSERT(peak > 1000); /* the trace shares: the comparison means something */
		free(a);
		free(b);
	}
}
