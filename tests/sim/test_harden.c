/*
 * test_harden.c - small valid (or nearly valid) traces that used to hang,
 * blow up or mislead the simulator (issue 10): a snapshot at a huge time,
 * times beyond the nanosecond clock, a corrupt tail behind a short run, a
 * trace with no snapshot, spread writes with nothing to spread, and a
 * sparse guest of 2^27 pages with one page present.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "harness.h"
#include "parallel.h"
#include "sim.h"
#include "tracebuild.h"

static int run_file(const char *path, const char *algo, uint64_t duration_ms, bool spread,
		    struct sim_result *res, struct sp_err *err)
{
	struct sim_config cfg;

	sim_config_defaults(&cfg, algo_find(algo));
	cfg.duration_ms = duration_ms;
	cfg.spread_writes = spread;
	sp_err_clear(err);
	return sim_run(path, &cfg, NULL, NULL, NULL, res, err);
}

SP_TEST(huge_snapshot_time_refused_up_front)
{
	char path[512];
	struct sim_result res;
	struct sp_err err;
	time_t t0 = time(NULL);

	sp_test_path(path, sizeof(path), "late.sptrace");
	tb_two_snapshots(path, 1000000000000ull); /* 10^12 ms: 31 years of samples and batches */
	/* ksm fast-forwards the idle years (test_idle.c): it completes, quickly */
	CU_ASSERT_EQUAL(run_file(path, "ksm", 0, false, &res, &err), 0);
	CU_ASSERT_EQUAL(res.end_ms, 1000000000000ull + 60000);
	CU_ASSERT(time(NULL) - t0 < 30);
	/* an algorithm simulated batch by batch is still refused up front, with the estimate */
	CU_ASSERT_EQUAL(run_file(path, "esx", 0, false, &res, &err), SP_ELIMIT);
	CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "samples"));
	CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, path));
	CU_ASSERT(time(NULL) - t0 < 30);
	/* with a duration it runs, and stops there */
	CU_ASSERT_EQUAL(run_file(path, "ksm", 5000, false, &res, &err), 0);
	CU_ASSERT_EQUAL(res.end_ms, 5000);
}

SP_TEST(time_beyond_the_clock_refused_not_wrapped)
{
	char path[512];
	struct sim_result res;
	struct sp_err err;

	sp_test_path(path, sizeof(path), "wrap.sptrace");
	tb_two_snapshots(path, UINT64_MAX / 1000000ull + 5); /* ns would wrap to a few seconds */
	CU_ASSERT_EQUAL(run_file(path, "oracle", 0, false, &res, &err), SP_ELIMIT);
	CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "beyond the simulated clock"));
	CU_ASSERT_EQUAL(run_file(path, "oracle", 3000, false, &res, &err), SP_ELIMIT);
	/* and a duration beyond it is refused as such */
	{
		struct sim_config cfg;
		char ok[512];

		sp_test_path(ok, sizeof(ok), "ok.sptrace");
		tb_two_snapshots(ok, 1000);
		sim_config_defaults(&cfg, algo_find("oracle"));
		cfg.duration_ms = UINT64_MAX / 1000;
		sp_err_clear(&err);
		CU_ASSERT_EQUAL(sim_run(ok, &cfg, NULL, NULL, NULL, &res, &err), SP_EINVAL);
	}
}

SP_TEST(corrupt_tail_refused_whatever_the_duration)
{
	char path[512];
	struct sim_result res;
	struct sp_err err;
	FILE *f;
	long len;
	uint8_t *buf;

	sp_test_path(path, sizeof(path), "tail.sptrace");
	tb_two_snapshots(path, 100000);
	f = fopen(path, "r+b");
	CU_ASSERT_PTR_NOT_NULL_FATAL(f);
	fseek(f, 0, SEEK_END);
	len = ftell(f);
	buf = malloc((size_t)len);
	rewind(f);
	CU_ASSERT_EQUAL(fread(buf, 1, (size_t)len, f), (size_t)len);
	buf[len - 12] ^= 0x40; /* inside the END chunk */
	rewind(f);
	fwrite(buf, 1, (size_t)len, f);
	fclose(f);
	free(buf);
	/* the run would stop long before the END chunk: it must still be checked */
	CU_ASSERT_EQUAL(run_file(path, "oracle", 1000, false, &res, &err), SP_ECORRUPT);
	CU_ASSERT_EQUAL(trace_check(path, NULL, NULL, &err), SP_ECORRUPT);
}

SP_TEST(no_snapshot_names_the_file)
{
	char path[512];
	struct sim_result res;
	struct sp_err err;
	struct tb tb;

	sp_test_path(path, sizeof(path), "empty.sptrace");
	tb_init(&tb, 1, 4);
	tb_open(&tb, path);
	tb_commit(&tb);
	CU_ASSERT_EQUAL(run_file(path, "oracle", 0, false, &res, &err), SP_ECORRUPT);
	CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, path));
	CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "no snapshot"));
}

SP_TEST(spread_writes_with_nothing_to_spread)
{
	char path[512];
	struct sim_result res;
	struct sp_err err;
	struct tb tb;

	/* a second snapshot with no records: qsort of an empty (NULL) queue under UBSan */
	sp_test_path(path, sizeof(path), "nowrites.sptrace");
	tb_init(&tb, 1, 4);
	tb_open(&tb, path);
	tb_snap(&tb, 0);
	tb_page(&tb, 0, 0, 1);
	tb_snap(&tb, 1000);
	tb_snap(&tb, 2000);
	tb_commit(&tb);
	CU_ASSERT_EQUAL(run_file(path, "ksm", 0, true, &res, &err), 0);
	CU_ASSERT_EQUAL(res.snapshots, 3);
}

SP_TEST(sparse_guest_costs_its_present_pages)
{
	char path[512];
	struct sim_result res;
	struct sp_err err;
	struct rusage ru;
	struct tb tb;
	time_t t0 = time(NULL);

	/* 2^27 pages claimed (an ELF core with one page at guest-physical 512 GiB), 3 present */
	sp_test_path(path, sizeof(path), "sparse.sptrace");
	tb_init(&tb, 2, 1ull << 27);
	tb_open(&tb, path);
	tb_snap(&tb, 0);
	tb_page(&tb, 0, 7, 5);
	tb_page(&tb, 0, (1ull << 27) - 1, 5);
	tb_page(&tb, 1, (1ull << 27) - 1, 5);
	tb_snap(&tb, 1000);
	tb_page(&tb, 1, (1ull << 27) - 1, 6);
	tb_commit(&tb);
	CU_ASSERT_EQUAL(run_file(path, "ksm", 0, false, &res, &err), 0);
	CU_ASSERT(time(NULL) - t0 < 60);
	getrusage(RUSAGE_SELF, &ru);
	CU_ASSERT(ru.ru_maxrss < 1024 * 1024); /* kB: under 1 GiB (5 GB before) */
	/* the two equal pages of guest 0 merged; guest 1's changed */
	CU_ASSERT_EQUAL(res.last.pages_sharing, 1);
	CU_ASSERT_EQUAL(res.last.oracle_saving, 1);
}

SP_TEST(layout_numbers_only_mentioned_pages)
{
	char path[512];
	struct tb tb;
	struct sim_layout lay;
	uint64_t i;

	sp_test_path(path, sizeof(path), "layout.sptrace");
	tb_init(&tb, 2, 1000);
	tb.h.guests[1].pages = 1ull << 30; /* a bitmap would be large: the vector path */
	tb_open(&tb, path);
	tb_snap(&tb, 0);
	tb_page(&tb, 0, 3, 1);
	tb_page(&tb, 1, 500, 1);
	tb_page(&tb, 1, 1ull << 29, 2);
	tb_snap(&tb, 10);
	tb_absent(&tb, 0, 3);
	tb_page(&tb, 0, 999, 3);
	tb_page(&tb, 1, 500, 4);
	tb_commit(&tb);
	tb_layout_scan(path, &lay);
	CU_ASSERT_EQUAL(lay.total, 4);
	CU_ASSERT_EQUAL(lay.npages[0], 2);
	CU_ASSERT_EQUAL(lay.npages[1], 2);
	CU_ASSERT_EQUAL(lay.snapshots, 2);
	CU_ASSERT_EQUAL(lay.last_ms, 10);
	CU_ASSERT_EQUAL(sim_layout_index(&lay, 0, 999, &i), 0);
	CU_ASSERT_EQUAL(i, 1);
	CU_ASSERT_EQUAL(sim_layout_index(&lay, 1, 1ull << 29, &i), 0);
	CU_ASSERT_EQUAL(i, 3);
	CU_ASSERT_EQUAL(sim_layout_index(&lay, 1, 501, &i), SP_EINVAL);
	sim_layout_release(&lay);
}

/*
 * Many pages, out of order: guest 0 mentions every other page of 4096
 * (dense: its bitmap), guest 1 3000 pages of 2^20 (sparse: the vector):
 * 2000 in the first snapshot, then 1000 new ones between them and 1000
 * repeats in the second, so the vector's tail comes out of order and is
 * merged into it.
 */
SP_TEST(layout_dense_and_unordered_guests)
{
	char path[512];
	struct tb tb;
	struct sim_layout lay;
	uint64_t i, bad = 0;

	sp_test_path(path, sizeof(path), "layout2.sptrace");
	tb_init(&tb, 2, 4096);
	tb.h.guests[1].pages = 1ull << 20;
	tb_open(&tb, path);
	tb_snap(&tb, 0);
	for (uint64_t p = 0; p < 4096; p += 2)
		tb_page(&tb, 0, p, p + 1);
	for (uint64_t k = 0; k < 2000; k++)
		tb_page(&tb, 1, 7 * k + 3, k + 1);
	tb_snap(&tb, 10);
	for (uint64_t k = 0; k < 2000; k++)
		tb_page(&tb, 1, k % 2 ? 7 * k + 3 : 7 * k + 4, k + 5); /* 1000 again, 1000 new */
	tb_commit(&tb);
	tb_layout_scan(path, &lay);
	CU_ASSERT_EQUAL(lay.npages[0], 2048);
	CU_ASSERT_EQUAL(lay.npages[1], 3000);
	CU_ASSERT_EQUAL(lay.total, 5048);
	for (uint64_t p = 0; p < 4096; p++) {
		int rc = sim_layout_index(&lay, 0, p, &i);

		bad += p % 2 ? rc != SP_EINVAL : rc != 0 || i != p / 2;
	}
	/* guest 1: 7k+3 for every k < 2000, 7k+4 for even k < 2000, in order */
	for (uint64_t k = 0, n = 0; k < 2000; k++) {
		bad += sim_layout_index(&lay, 1, 7 * k + 3, &i) != 0 || i != 2048 + n++;
		if (k % 2 == 0)
			bad += sim_layout_index(&lay, 1, 7 * k + 4, &i) != 0 || i != 2048 + n++;
		bad += sim_layout_index(&lay, 1, 7 * k + 5, &i) != SP_EINVAL;
	}
	CU_ASSERT_EQUAL(bad, 0);
	sim_layout_release(&lay);
}

/*
 * The layout estimates the distinct (content, domain) pairs of the present
 * non-zero records: two guests in two domains, 15000 contents each (the
 * same fingerprints: other pairs), zero and absent pages not counted, 1000
 * new contents in a second snapshot - 31000 pairs; HyperLogLog's standard
 * error is 0.8%.  Ten pairs: exact (linear counting).
 */
SP_TEST(layout_estimates_distinct_contents)
{
	char path[512];
	struct tb tb;
	struct sim_layout lay;

	sp_test_path(path, sizeof(path), "layout3.sptrace");
	tb_init(&tb, 2, 40000);
	tb.h.guests[1].domain = 1;
	tb_open(&tb, path);
	tb_snap(&tb, 0);
	for (uint32_t g = 0; g < 2; g++) {
		for (uint64_t p = 0, c = 0; p < 40000; p++) {
			if (p % 4 == 3)
				tb_page(&tb, g, p, 0); /* zero-filled */
			else if (p % 4 == 2)
				tb_absent(&tb, g, p);
			else
				tb_page(&tb, g, p, c++ % 15000 + 1); /* 20000 pages */
		}
	}
	tb_snap(&tb, 10);
	for (uint64_t p = 0; p < 1000; p++)
		tb_page(&tb, 0, 4 * p, 100000 + p);
	tb_commit(&tb);
	tb_layout_scan(path, &lay);
	CU_ASSERT(lay.contents >= 31000 * 0.97 && lay.contents <= 31000 * 1.03);
	sim_layout_release(&lay);

	sp_test_path(path, sizeof(path), "layout4.sptrace");
	tb_init(&tb, 1, 100);
	tb_open(&tb, path);
	tb_snap(&tb, 0);
	for (uint64_t p = 0; p < 100; p++)
		tb_page(&tb, 0, p, p % 10 + 1);
	tb_commit(&tb);
	tb_layout_scan(path, &lay);
	CU_ASSERT_EQUAL(lay.contents, 10);
	sim_layout_release(&lay);
}

/* A job's error names it once ("ksm: ksm: ..." before): a message that starts with the name keeps it. */
SP_TEST(job_errors_name_the_job_once)
{
	char path[512];
	struct trace_mem *tm;
	struct sim_job job;
	struct sp_err err = { 0 };

	sp_test_path(path, sizeof(path), "job.sptrace");
	tb_two_snapshots(path, 1000);
	CU_ASSERT_EQUAL_FATAL(trace_mem_load(&tm, path, NULL, NULL, &err), 0);
	memset(&job, 0, sizeof(job));
	sim_config_defaults(&job.cfg, algo_find("ksm"));
	job.cfg.sample_ms = 0; /* sim_run's own complaint begins "sim_run: " */
	job.name = "sim_run";
	CU_ASSERT_EQUAL(sim_parallel_run(tm, &job, 1, 1, true, NULL, NULL, NULL, &err), SP_EINVAL);
	CU_ASSERT_PTR_NULL(strstr(err.msg, "sim_run: sim_run:"));
	CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "sim_run: "));
	/* another name is put in front */
	job.name = "ksm@fast";
	sp_err_clear(&err);
	CU_ASSERT_EQUAL(sim_parallel_run(tm, &job, 1, 1, true, NULL, NULL, NULL, &err), SP_EINVAL);
	CU_ASSERT_EQUAL(strncmp(err.msg, "ksm@fast: sim_run: ", 19), 0);
	sim_job_release(&job);
	sim_job_release(NULL);
	trace_mem_free(tm);
}

/* ---- at the command line ------------------------------------------------- */

/* Everything `sim ARGS` wrote on stdout, into buf. */
static void sim_output(const char *args, char *buf, size_t len)
{
	char cmd[2048];
	size_t n = 0, got;
	FILE *p;

	snprintf(cmd, sizeof(cmd), "'%s' %s 2>&1", SP_SIM_PATH, args);
	p = popen(cmd, "r");
	CU_ASSERT_PTR_NOT_NULL_FATAL(p);
	while (n + 1 < len && (got = fread(buf + n, 1, len - 1 - n, p)) > 0)
		n += got;
	buf[n] = '\0';
	pclose(p);
}

/* A 2 MiB-page trace: 14 pages saved are 28 MiB, not 0.1 (issue 10, defect 8). */
SP_TEST(summary_in_the_traces_page_size)
{
	char path[512], args[1024], out[8192];
	struct tb tb;

	sp_test_path(path, sizeof(path), "huge-pages.sptrace");
	tb_init(&tb, 2, 8);
	tb.h.page_size = 2u << 20;
	tb_open(&tb, path);
	tb_snap(&tb, 0);
	for (uint32_t g = 0; g < 2; g++)
		for (uint64_t p = 0; p < 8; p++)
			tb_page(&tb, g, p, p % 2 + 1); /* 16 pages, 2 contents */
	tb_commit(&tb);
	snprintf(args, sizeof(args), "run --trace '%s' --algo oracle", path);
	sim_output(args, out, sizeof(out));
	CU_ASSERT_PTR_NOT_NULL(strstr(out, "saved       14 pages (28.0 MiB)"));
}

/* Descriptions and guest names with terminal escapes are shown escaped (defect 1). */
SP_TEST(trace_info_escapes_input_text)
{
	char path[512], args[1024], out[16384];
	struct tb tb;

	sp_test_path(path, sizeof(path), "escapes.sptrace");
	tb_init(&tb, 1, 4);
	snprintf(tb.h.desc, sizeof(tb.h.desc), "evil \x1b[2J\x1b]0;owned\x07 \xc2\x9b" "31m text");
	snprintf(tb.h.guests[0].name, sizeof(tb.h.guests[0].name), "g\x1b[31mred\r");
	tb_open(&tb, path);
	tb_snap(&tb, 0);
	tb_page(&tb, 0, 1, 3);
	tb_commit(&tb);
	snprintf(args, sizeof(args), "trace info '%s'", path);
	sim_output(args, out, sizeof(out));
	CU_ASSERT_PTR_NULL(strchr(out, '\x1b'));
	CU_ASSERT_PTR_NULL(strchr(out, '\x07'));
	CU_ASSERT_PTR_NULL(strchr(out, '\r'));
	CU_ASSERT_PTR_NULL(strstr(out, "\xc2\x9b"));
	CU_ASSERT_PTR_NOT_NULL(strstr(out, "evil \\x1b[2J"));
	CU_ASSERT_PTR_NOT_NULL(strstr(out, "g\\x1b[31mred"));
}
