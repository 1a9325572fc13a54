/*
 * test_control.c - the control policies on hand-built traces with a zero
 * cost model, where every batch's size and time can be worked out by hand;
 * the plan policy's file and the KEY=VALUE reader it shares with samepaged.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kvfile.h"

#include "harness.h"
#include "tracebuild.h"

static void with_ctl(struct sim_config *cfg, const char *name, const char *const *sets)
{
	struct sp_err err = { 0 };

	cfg->ctl = ctl_find(name);
	CU_ASSERT_PTR_NOT_NULL_FATAL(cfg->ctl);
	ctl_params_defaults(cfg->ctl, &cfg->ctl_params);
	for (; sets && *sets; sets++)
		CU_ASSERT_EQUAL_FATAL(sim_ctl_set(cfg, *sets, &err), 0);
}

static int64_t scanned(const struct tb_series *s, uint64_t t)
{
	return tb_at(s, t)->pages_scanned;
}

SP_TEST(ksmtuned_stops_when_memory_is_plentiful)
{
	/*
	 * 1000 pages = 3.9 MiB of guests on a 16 GiB host: committed + thres <
	 * total.  Like the script, the first adjustment comes one interval
	 * after the start: until 60 s 'zero' runs as started, 100 pages every
	 * 20 ms (3000 batches at 0, 20, ..., 59980 ms); at 60 s, before that
	 * time's batch, it is stopped for good.
	 */
	char path[512];
	struct sim_config cfg;
	struct tb_series *s;

	sp_test_path(path, sizeof(path), "p.sptrace");
	tb_unique_trace(path, 1000);
	tb_config(&cfg, "zero", NULL);
	with_ctl(&cfg, "ksmtuned", NULL);
	cfg.duration_ms = 200000;
	s = tb_run(path, &cfg);
	CU_ASSERT_EQUAL(scanned(s, 0), 100);
	CU_ASSERT_EQUAL(scanned(s, 59000), 2951 * 100);
	CU_ASSERT_EQUAL(scanned(s, 60000), 3000 * 100);
	CU_ASSERT_EQUAL(scanned(s, 200000), 3000 * 100);
	free(s);
}

SP_TEST(ksmtuned_boosts_every_interval)
{
	/*
	 * A 16 MiB host with 14 MiB used elsewhere: free (16384 - 14336 - 4000
	 * KiB, below 0: 0) is below thres (20% = 3276 KiB), so every minute
	 * from the first adjustment at 60 s pages_to_scan grows by 300 from 0:
	 * 300, then 600 at 120 s.  sleep_msec=0 gives the floor of 10 ms: 100
	 * batches a second.  Before 60 s: 'zero' as started, 100 pages every
	 * 20 ms, 50 batches a second.
	 */
	static const char *const ctl[] = { "host_mem_mib=16", "host_used_mib=14", "sleep_msec=0", NULL };
	char path[512];
	struct sim_config cfg;
	struct tb_series *s;

	sp_test_path(path, sizeof(path), "p.sptrace");
	tb_unique_trace(path, 1000);
	tb_config(&cfg, "zero", NULL);
	with_ctl(&cfg, "ksmtuned", ctl);
	cfg.duration_ms = 122000;
	s = tb_run(path, &cfg);
	CU_ASSERT_EQUAL(scanned(s, 0), 100);
	CU_ASSERT_EQUAL(scanned(s, 3000) - scanned(s, 2000), 50 * 100);
	CU_ASSERT_EQUAL(scanned(s, 59000) - scanned(s, 58000), 50 * 100);
	CU_ASSERT_EQUAL(scanned(s, 62000) - scanned(s, 61000), 100 * 300);
	CU_ASSERT_EQUAL(scanned(s, 122000) - scanned(s, 121000), 100 * 600);
	free(s);
}

SP_TEST(ksmtuned_decays_to_the_floor)
{
	/*
	 * A 100 MiB host (thres 20% = 20480 KiB) and 22000 pages of one content
	 * (88000 KiB of RSS): committed + thres > total, so KSM must run.  ksm
	 * as started (100 pages every 20 ms, tick_hz=0: a scan is 220 batches
	 * and the wrap, 221 x 20 ms) merges everything on its second scan, by
	 * 8.82 s, into ceil(22000 / 256) = 86 frames (max_page_sharing):
	 * pages_sharing 21914.  RSS stays 88000 KiB (a KSM page counts once per
	 * mapper) but the pages take 86 frames, so at the first adjustment
	 * (60 s) free = 102400 - 344 KiB > thres: decay from 0 to the floor, 64
	 * pages every 10 ms.  At 60 s the cursor is at 12700 (batch 3000 = 13 x 221 + 127):
	 * 145 batches of 64 and one of 20 end that scan at 61.45 s, and the
	 * next scan (344 batches) runs to 64.89 s, so 62-63 s is 100 full
	 * batches.  Before: 10-11 s is 50 batches of 100, no wrap (8.82, 13.24).
	 */
	static const char *const ctl[] = { "host_mem_mib=100", "host_used_mib=0", "sleep_msec=0",
					   NULL };
	static const char *const sets[] = { "tick_hz=0", NULL };
	char path[512];
	struct sim_config cfg;
	struct tb_series *s;
	struct tb tb;

	sp_test_path(path, sizeof(path), "z.sptrace");
	tb_init(&tb, 1, 22000);
	tb_open(&tb, path);
	tb_snap(&tb, 0);
	for (uint64_t p = 0; p < 22000; p++)
		tb_page(&tb, 0, p, 7);
	tb_commit(&tb);
	tb_config(&cfg, "ksm", sets);
	with_ctl(&cfg, "ksmtuned", ctl);
	cfg.duration_ms = 63000;
	s = tb_run(path, &cfg);
	CU_ASSERT_EQUAL(scanned(s, 11000) - scanned(s, 10000), 50 * 100);
	CU_ASSERT_EQUAL(tb_at(s, 59000)->pages_sharing, 21914);
	CU_ASSERT_EQUAL(scanned(s, 63000) - scanned(s, 62000), 100 * 64);
	free(s);
}

SP_TEST(advisor_follows_the_kernel_arithmetic)
{
	/*
	 * 10000 pages, a batch every second, no CPU cost (cpu_percent = 1).
	 * Starts at 500: the first scan ends with the batch at 19 s.  Then
	 * scan_time 19, factor 200*100/19 = 1052, change ewma(0, 100) = 30,
	 * pages 500*100/1052*30/100 = 14, raised to per_page(500) * 10 = 5000.
	 * The next scan ends at 21 s: scan_time 2, factor 10000, change
	 * ewma(30, 2*100/19 = 10) = 24, pages 0 -> per_page(5000) * 10 =
	 * 50000, capped at advisor_max_pages_to_scan 30000.
	 */
	static const char *const sets[] = { "sleep_millisecs=1000", NULL };
	char path[512];
	struct sim_config cfg;
	struct tb_series *s;

	sp_test_path(path, sizeof(path), "p.sptrace");
	tb_unique_trace(path, 10000);
	tb_config(&cfg, "zero", sets);
	with_ctl(&cfg, "advisor", NULL);
	cfg.duration_ms = 23000;
	s = tb_run(path, &cfg);
	CU_ASSERT_EQUAL(scanned(s, 0), 500);
	CU_ASSERT_EQUAL(scanned(s, 18000), 19 * 500);
	CU_ASSERT_EQUAL(scanned(s, 19000), 10000);
	CU_ASSERT_EQUAL(scanned(s, 20000), 15000);
	CU_ASSERT_EQUAL(scanned(s, 21000), 20000);
	CU_ASSERT_EQUAL(scanned(s, 22000), 50000);
	CU_ASSERT_EQUAL(tb_at(s, 21000)->full_scans, 2);
	free(s);
}

SP_TEST(controller_needs_the_tunables_it_drives)
{
	char path[512];
	struct sim_config cfg;
	struct sim_result res;
	struct sp_err err = { 0 };

	sp_test_path(path, sizeof(path), "p.sptrace");
	tb_unique_trace(path, 10);
	tb_config(&cfg, "oracle", NULL);
	with_ctl(&cfg, "ksmtuned", NULL);
	CU_ASSERT_EQUAL(sim_run(path, &cfg, NULL, NULL, NULL, &res, &err), SP_EINVAL);
	CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "pages_to_scan"));
}

SP_TEST(ksmtuned_thresholds_use_integer_kib)
{
	/*
	 * The script's arithmetic is the shell's: thres = 16384 x 20 / 100 =
	 * 3276 KiB, not 3276.8.  A 16 MiB host with 5 MiB used elsewhere and
	 * 1997 unique pages (7988 KiB): free = 16384 - 5120 - 7988 = 3276 KiB,
	 * not below thres (no boost) and not above it (no stop): at 60 s decay
	 * from 0, clamped to npages_min = 64, every 10 ms.  With fractional KiB
	 * it would boost to 300.
	 */
	static const char *const ctl[] = { "host_mem_mib=16", "host_used_mib=5", "sleep_msec=0", NULL };
	char path[512];
	struct sim_config cfg;
	struct tb_series *s;

	sp_test_path(path, sizeof(path), "p.sptrace");
	tb_unique_trace(path, 1997);
	tb_config(&cfg, "zero", NULL);
	with_ctl(&cfg, "ksmtuned", ctl);
	cfg.duration_ms = 62000;
	s = tb_run(path, &cfg);
	CU_ASSERT_EQUAL(scanned(s, 62000) - scanned(s, 61000), 100 * 64);
	free(s);
}

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	CU_ASSERT_PTR_NOT_NULL_FATAL(f);
	fputs(text, f);
	fclose(f);
}

SP_TEST(plan_applies_its_steps_on_time)
{
	/*
	 * 300000 pages (no full scan ends), no CPU cost.  Step 0: 1000 pages every 100 ms (10,000
	 * pages a second); at 5 s: 3000 pages (30,000 a second); at 8 s: stop;
	 * at 10 s: start again at the same rate.  The step at 5 s is listed
	 * first: steps are sorted by time.
	 */
	char path[512], plan[512], set[600];
	const char *sets[] = { set, NULL };
	struct sim_config cfg;
	struct tb_series *s;

	sp_test_path(path, sizeof(path), "p.sptrace");
	sp_test_path(plan, sizeof(plan), "plan.conf");
	tb_unique_trace(path, 300000);
	write_file(plan, "# written by hand\nPLAN_FORMAT=1\nPLAN_SOURCE='a test'\n"
			 "STEP=\"5 pages_to_scan=3000\"\n"
			 "STEP=\"0 pages_to_scan=1000 sleep_millisecs=100 smart_scan=0\"\n"
			 "STEP='8 run=0'\nSTEP=\"10 run=1\"   # again\n");
	snprintf(set, sizeof(set), "plan=%s", plan);
	tb_config(&cfg, "ksm", (const char *const[]){ "tick_hz=0", NULL });
	memset(&cfg.cost, 0, sizeof(cfg.cost));
	with_ctl(&cfg, "plan", sets);
	cfg.duration_ms = 12000;
	s = tb_run(path, &cfg);
	CU_ASSERT_EQUAL(scanned(s, 0), 1000);
	CU_ASSERT_EQUAL(scanned(s, 4000) - scanned(s, 3000), 10000);
	CU_ASSERT_EQUAL(scanned(s, 7000) - scanned(s, 6000), 30000);
	CU_ASSERT_EQUAL(scanned(s, 9000) - scanned(s, 8000), 0);
	CU_ASSERT_EQUAL(scanned(s, 11000) - scanned(s, 10000), 30000);
	free(s);
}

static void plan_error(const char *text, const char *expect)
{
	char path[512], plan[512], set[600];
	struct sim_config cfg;
	struct sim_result res;
	struct sp_err err = { 0 };

	sp_test_path(path, sizeof(path), "p.sptrace");
	sp_test_path(plan, sizeof(plan), "bad.conf");
	tb_unique_trace(path, 10);
	write_file(plan, text);
	snprintf(set, sizeof(set), "plan=%s", plan);
	tb_config(&cfg, "ksm", NULL);
	with_ctl(&cfg, "plan", (const char *const[]){ set, NULL });
	CU_ASSERT_TRUE(sim_run(path, &cfg, NULL, NULL, NULL, &res, &err) < 0);
	if (!strstr(err.msg, expect))
		printf("\nmessage '%s' lacks '%s'\n", err.msg, expect);
	CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, expect));
}

SP_TEST(plan_errors_name_the_line)
{
	plan_error("STEP=\"0 run=1\"\n", "PLAN_FORMAT=1 is missing");
	plan_error("PLAN_FORMAT=2\nSTEP=\"0 run=1\"\n", "bad.conf:1: PLAN_FORMAT=2");
	plan_error("PLAN_FORMAT=1\n", "has no STEP");
	plan_error("PLAN_FORMAT=1\n\nSTEP=\"0 pages_to_scan=0\"\n", "bad.conf:3: STEP: 'pages_to_scan=0'");
	plan_error("PLAN_FORMAT=1\nSTEP=\"5 smart_scan=1\"\n", "bad.conf:2: STEP: smart_scan can be set only");
	plan_error("PLAN_FORMAT=1\nSTEP=\"x run=1\"\n", "bad.conf:2: STEP: expected");
	plan_error("PLAN_FORMAT=1\nSTEP=\"0 merge_across_nodes=0\"\n", "bad.conf:2: STEP: 'merge_across_nodes=0'");
	plan_error("PLAN_FORMAT=1\nSTEPS=\"0 run=1\"\n", "bad.conf:2: unknown key STEPS");
	plan_error("PLAN_FORMAT=1\nSTEP=$(reboot)\n", "bad.conf:2: STEP: shell expansion");
}

SP_TEST(plan_needs_its_file)
{
	char path[512];
	struct sim_config cfg;
	struct sim_result res;
	struct sp_err err = { 0 };

	sp_test_path(path, sizeof(path), "p.sptrace");
	tb_unique_trace(path, 10);
	tb_config(&cfg, "ksm", NULL);
	with_ctl(&cfg, "plan", NULL);
	CU_ASSERT_EQUAL(sim_run(path, &cfg, NULL, NULL, NULL, &res, &err), SP_EINVAL);
	CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "plan=FILE"));
}

SP_TEST(kvfile_reads_shell_assignments_without_running_them)
{
	struct sim_kv_file f;
	struct sp_err err = { 0 };

	CU_ASSERT_EQUAL_FATAL(sim_kv_parse(&f, "t.conf",
					   "# comment\n  \nKSM_THRES_COEF=20\nexport DEBUG=1\n"
					   "LOGFILE='/var/log/ksm tuned.log'  # trailing\n"
					   "A=\"x \\\" \\$HOME y\"\nSTEP=1\nSTEP=2\r\nE=\n",
					   &err), 0);
	CU_ASSERT_EQUAL(f.n, 7);
	CU_ASSERT_STRING_EQUAL(sim_kv_get(&f, "KSM_THRES_COEF")->value, "20");
	CU_ASSERT_EQUAL(sim_kv_get(&f, "KSM_THRES_COEF")->line, 3);
	CU_ASSERT_STRING_EQUAL(sim_kv_get(&f, "DEBUG")->value, "1");
	CU_ASSERT_STRING_EQUAL(sim_kv_get(&f, "LOGFILE")->value, "/var/log/ksm tuned.log");
	CU_ASSERT_STRING_EQUAL(sim_kv_get(&f, "A")->value, "x \" $HOME y");
	CU_ASSERT_STRING_EQUAL(sim_kv_get(&f, "STEP")->value, "2");
	CU_ASSERT_STRING_EQUAL(sim_kv_get(&f, "E")->value, "");
	CU_ASSERT_PTR_NULL(sim_kv_get(&f, "NOPE"));
	sim_kv_release(&f);

	CU_ASSERT_EQUAL(sim_kv_parse(&f, "t.conf", "A=1\nB = 2\n", &err), SP_ECORRUPT);
	CU_ASSERT_STRING_EQUAL(err.msg, "t.conf:2: expected KEY=VALUE, found 'B = 2'");
	sp_err_clear(&err);
	CU_ASSERT_EQUAL(sim_kv_parse(&f, "t.conf", "A=`id`\n", &err), SP_ECORRUPT);
	CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "t.conf:1: A: shell expansion"));
	sp_err_clear(&err);
	CU_ASSERT_EQUAL(sim_kv_parse(&f, "t.conf", "A=1; rm -rf /\n", &err), SP_ECORRUPT);
	sp_err_clear(&err);
	CU_ASSERT_EQUAL(sim_kv_parse(&f, "t.conf", "A='open\n", &err), SP_ECORRUPT);
	CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "unterminated single quote"));
	sp_err_clear(&err);
	CU_ASSERT_EQUAL(sim_kv_load(&f, "/nonexistent/x.conf", &err), SP_EIO);
	CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "/nonexistent/x.conf"));
}
