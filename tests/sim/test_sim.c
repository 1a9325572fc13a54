/*
 * test_sim.c - the simulated clock, the cost model, determinism, write
 * spreading and huge-page splits, on hand-built traces.
 */
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "tracebuild.h"

SP_TEST(batch_cycle_is_cpu_plus_sleep)
{
	/*
	 * 1000 unique pages, pages_to_scan=10, sleep 10 ms, a visit costs 0.1 ms
	 * and a checksum 0.05 ms: each batch takes 1.5 ms of CPU, so batches
	 * start every 11.5 ms: at 0, 11.5, ..., 103.5 -> 10 batches by 100 ms,
	 * 100 pages scanned, 15 ms of CPU.
	 */
	static const char *const sets[] = { "pages_to_scan=10", "sleep_millisecs=10", NULL };
	struct sp_err err = { 0 };
	char path[512];
	struct sim_config cfg;
	struct tb_series *s;

	sp_test_path(path, sizeof(path), "unique.sptrace");
	tb_unique_trace(path, 1000);
	tb_config(&cfg, "zero", sets);
	CU_ASSERT_EQUAL_FATAL(sim_cost_parse(&cfg.cost, "visit=100000,checksum=50000", &err), 0);
	cfg.sample_ms = 100;
	cfg.duration_ms = 1000;
	s = tb_run(path, &cfg);
	CU_ASSERT_EQUAL(tb_at(s, 100)->pages_scanned, 90);  /* batches at 0 .. 92 */
	CU_ASSERT_EQUAL(tb_at(s, 100)->cpu_ns, 9 * 1500000);
	CU_ASSERT_EQUAL(tb_at(s, 1000)->pages_scanned, 870); /* floor(1000 / 11.5) + 1 = 87 */
	free(s);
}

SP_TEST(cost_spec_is_checked)
{
	struct sim_cost c;
	struct sp_err err = { 0 };

	sim_cost_defaults(&c);
	CU_ASSERT_EQUAL(sim_cost_parse(&c, "merge=42,tree_step=7", &err), 0);
	CU_ASSERT_EQUAL(c.ns[BK_COST_MERGE], 42);
	CU_ASSERT_EQUAL(c.ns[BK_COST_TREE_STEP], 7);
	CU_ASSERT_EQUAL(sim_cost_parse(&c, "teleport=1", &err), SP_EINVAL);
	CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "valid: visit"));
	sp_err_clear(&err);
	CU_ASSERT_EQUAL(sim_cost_parse(&c, "merge=-1", &err), SP_EINVAL);
	sp_err_clear(&err);
	CU_ASSERT_EQUAL(sim_cost_parse(&c, "merge", &err), SP_EINVAL);
}

static void volatile_trace(const char *path)
{
	struct tb tb;

	tb_init(&tb, 2, 50);
	tb_open(&tb, path);
	for (uint64_t k = 0; k < 5; k++) {
		tb_snap(&tb, k * 1000);
		for (uint32_t g = 0; g < 2; g++)
			for (uint64_t p = k; p < 50; p += 3)
				tb_page(&tb, g, p, (p * 7 + k) % 11);
	}
	tb_commit(&tb);
}

static int same_series(const struct tb_series *a, const struct tb_series *b)
{
	return a->n == b->n && !memcmp(a->t, b->t, a->n * sizeof(a->t[0])) &&
	       !memcmp(a->m, b->m, a->n * sizeof(a->m[0]));
}

SP_TEST(runs_are_deterministic)
{
	static const char *const sets[] = { "pages_to_scan=7", NULL };
	char path[512];
	struct sim_config cfg;
	struct tb_series *a, *b, *c;

	sp_test_path(path, sizeof(path), "vol.sptrace");
	volatile_trace(path);
	tb_config(&cfg, "zero", sets);
	cfg.sample_ms = 50;
	cfg.spread_writes = true;
	cfg.seed = 9;
	a = tb_run(path, &cfg);
	b = tb_run(path, &cfg);
	CU_ASSERT(same_series(a, b));
	cfg.seed = 10;
	c = tb_run(path, &cfg);
	CU_ASSERT(!same_series(a, c)); /* writes land at other times */
	free(a);
	free(b);
	free(c);
}

SP_TEST(spread_writes_stay_in_their_interval)
{
	/*
	 * With spread writes the oracle's value at each snapshot time equals the
	 * unspread run's (all the interval's writes are in by then), while in
	 * between it may differ; and it differs somewhere, or nothing was spread.
	 */
	char path[512];
	struct sim_config cfg;
	struct tb_series *plain, *spread;
	int differs = 0;

	sp_test_path(path, sizeof(path), "vol.sptrace");
	volatile_trace(path);
	tb_config(&cfg, "oracle", NULL);
	cfg.sample_ms = 100;
	cfg.duration_ms = 4000;
	plain = tb_run(path, &cfg);
	cfg.spread_writes = true;
	spread = tb_run(path, &cfg);
	CU_ASSERT_EQUAL_FATAL(plain->n, spread->n);
	for (size_t i = 0; i < plain->n; i++) {
		if (plain->t[i] % 1000 == 0) {
			CU_ASSERT_EQUAL(plain->m[i].oracle_saving, spread->m[i].oracle_saving);
		} else {
			differs |= plain->m[i].oracle_saving != spread->m[i].oracle_saving;
		}
	}
	CU_ASSERT(differs);
	free(plain);
	free(spread);
}

SP_TEST(duration_and_samples)
{
	char path[512];
	struct sim_config cfg;
	struct tb_series *s;

	sp_test_path(path, sizeof(path), "vol.sptrace");
	volatile_trace(path);
	tb_config(&cfg, "oracle", NULL);
	cfg.sample_ms = 250;
	cfg.tail_ms = 1000;
	s = tb_run(path, &cfg); /* last snapshot at 4000: ends at 5000 */
	CU_ASSERT_EQUAL(s->n, 21);
	CU_ASSERT_EQUAL(s->t[0], 0);
	CU_ASSERT_EQUAL(s->t[20], 5000);
	free(s);
	cfg.duration_ms = 1100; /* stops early, mid-trace */
	s = tb_run(path, &cfg);
	CU_ASSERT_EQUAL(s->n, 5);
	CU_ASSERT_EQUAL(s->t[4], 1000);
	free(s);
}

SP_TEST(merge_splits_huge_page)
{
	/*
	 * One guest of 1024 pages, the first 512 on a huge page: pages 0..9 are
	 * zero, the rest unique.  'zero' merges page 0 first: the huge page is
	 * split, and the kernel (>= 6.12) maps the split's zero subpages to the
	 * zero page itself, page 0 included, whose own merge then fails - 10
	 * pages saved that no KSM counter shows, none in ksm_zero_pages.
	 */
	static const char *const sets[] = { "pages_to_scan=1", "sleep_millisecs=1", NULL };
	char path[512];
	struct sim_config cfg;
	struct tb_series *s;
	struct tb tb;

	sp_test_path(path, sizeof(path), "huge.sptrace");
	tb_init(&tb, 1, 1024);
	tb_open(&tb, path);
	tb_snap(&tb, 0);
	for (uint64_t p = 0; p < 1024; p++)
		tb_page_ex(&tb, 0, p, p < 10 ? 0 : p + 1, p < 512, -1);
	tb_snap(&tb, 2000);
	tb_page_ex(&tb, 0, 5, 77, 0, -1); /* written: leaves the zero page */
	tb_commit(&tb);
	tb_config(&cfg, "zero", sets);
	cfg.sample_ms = 1000;
	cfg.duration_ms = 3000;
	s = tb_run(path, &cfg);
	CU_ASSERT_EQUAL(tb_at(s, 1000)->thp_splits, 1);
	CU_ASSERT_EQUAL(tb_at(s, 1000)->ksm_zero_pages, 0);
	CU_ASSERT_EQUAL(tb_at(s, 1000)->thp_zero_pages, 10);
	CU_ASSERT_EQUAL(tb_at(s, 3000)->thp_zero_pages, 9);
	CU_ASSERT_EQUAL(tb_at(s, 3000)->ksm_zero_pages, 0);
	CU_ASSERT_EQUAL(tb_at(s, 3000)->cow_breaks, 0); /* not a page the algorithm merged */
	CU_ASSERT_EQUAL(tb_at(s, 3000)->thp_splits, 1);
	free(s);

	/*
	 * Linux 6.11: the split leaves the zero subpages alone.  'zero' visits a
	 * page a millisecond and maps each zero page on its first visit: pages
	 * 0..9 by 10 ms, all in ksm_zero_pages, none by the split.  The write at
	 * 2000 is then a COW break of a page it merged.
	 */
	struct sp_err err = { 0 };

	CU_ASSERT_EQUAL(algo_kernel_parse(&cfg.kernel, "6.11", &err), 0);
	s = tb_run(path, &cfg);
	CU_ASSERT_EQUAL(tb_at(s, 1000)->thp_splits, 1);
	CU_ASSERT_EQUAL(tb_at(s, 1000)->ksm_zero_pages, 10);
	CU_ASSERT_EQUAL(tb_at(s, 1000)->thp_zero_pages, 0);
	CU_ASSERT_EQUAL(tb_at(s, 3000)->ksm_zero_pages, 9);
	CU_ASSERT_EQUAL(tb_at(s, 3000)->cow_breaks, 1);
	free(s);

	/* 6.11 with the remap backported: the 6.12 numbers again. */
	CU_ASSERT_EQUAL(algo_kernel_parse(&cfg.kernel, "6.11,thp_zero_remap=1", &err), 0);
	s = tb_run(path, &cfg);
	CU_ASSERT_EQUAL(tb_at(s, 1000)->thp_zero_pages, 10);
	CU_ASSERT_EQUAL(tb_at(s, 1000)->ksm_zero_pages, 0);
	free(s);
}

SP_TEST(trace_in_memory_replays_like_the_file)
{
	/* Two cursors over one decoded trace, each giving the file's series. */
	static const char *const sets[] = { "pages_to_scan=7", NULL };
	char path[512];
	struct sim_config cfg;
	struct tb_series *file, *a, *b;
	struct trace_mem *m;
	struct trace_mem_cursor ca, cb;
	struct trace_source sa, sb;
	struct sp_err err = { 0 };

	sp_test_path(path, sizeof(path), "vol.sptrace");
	volatile_trace(path);
	tb_config(&cfg, "zero", sets);
	cfg.sample_ms = 50;
	cfg.spread_writes = true;
	file = tb_run(path, &cfg);
	CU_ASSERT_EQUAL_FATAL(trace_mem_load(&m, path, NULL, NULL, &err), 0);
	/* 2 guests x (p = k, k+3, ... < 50 for k = 0..4): 2 x (17 + 17 + 16 + 16 + 16) */
	CU_ASSERT_EQUAL(trace_mem_records(m), 164);
	trace_mem_cursor_init(&ca, m);
	trace_mem_cursor_init(&cb, m);
	sa = trace_mem_source(&ca);
	sb = trace_mem_source(&cb);
	a = tb_run_source(&sa, &cfg);
	b = tb_run_source(&sb, &cfg);
	CU_ASSERT(same_series(file, a));
	CU_ASSERT(same_series(file, b));
	trace_mem_free(m);
	free(file);
	free(a);
	free(b);
}
