/*
 * test_control.c - the control policies on hand-built traces with a zero
 * cost model, where every batch's size and time can be worked out by hand.
 */
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "tracebuild.h"

static void with_ctl(struct sim_config *cfg, const char *name, const char *const *sets)
{
	struct sp_err err = { 0 };

	cfg->ctl = ctl_find(name);
	CU_ASSERT_PTR_NOT_NULL_FATAL(cfg->ctl);
	ctl_params_defaults(cfg->ctl, &cfg->ctl_params);
	for (; sets && *sets; sets++)
		CU_ASSERT_EQUAL_FATAL(ctl_params_set(cfg->ctl, &cfg->ctl_params, *sets, &err), 0);
}

static int64_t scanned(const struct tb_series *s, uint64_t t)
{
	return tb_at(s, t)->pages_scanned;
}

SP_TEST(ksmtuned_stops_when_memory_is_plentiful)
{
	/* 1000 pages = 3.9 MiB of guests on a 16 GiB host: committed + thres < total. */
	char path[512];
	struct sim_config cfg;
	struct tb_series *s;

	sp_test_path(path, sizeof(path), "p.sptrace");
	tb_unique_trace(path, 1000);
	tb_config(&cfg, "zero", NULL);
	with_ctl(&cfg, "ksmtuned", NULL);
	cfg.duration_ms = 200000;
	s = tb_run(path, &cfg);
	CU_ASSERT_EQUAL(scanned(s, 200000), 0);
	free(s);
}

SP_TEST(ksmtuned_boosts_every_interval)
{
	/*
	 * A 16 MiB host with 14 MiB used elsewhere: free (16384 - 14336 - 4000
	 * KiB) is below thres (20% = 3276 KiB), so every minute pages_to_scan
	 * grows by 300 from 0: 300, then 600 at 60 s.  sleep_msec=0 gives the
	 * floor of 10 ms: 100 batches a second.
	 */
	static const char *const ctl[] = { "host_mem_mib=16", "host_used_mib=14", "sleep_msec=0", NULL };
	char path[512];
	struct sim_config cfg;
	struct tb_series *s;

	sp_test_path(path, sizeof(path), "p.sptrace");
	tb_unique_trace(path, 1000);
	tb_config(&cfg, "zero", NULL);
	with_ctl(&cfg, "ksmtuned", ctl);
	cfg.duration_ms = 62000;
	s = tb_run(path, &cfg);
	CU_ASSERT_EQUAL(scanned(s, 0), 300);
	CU_ASSERT_EQUAL(scanned(s, 3000) - scanned(s, 2000), 100 * 300);
	CU_ASSERT_EQUAL(scanned(s, 62000) - scanned(s, 61000), 100 * 600);
	free(s);
}

SP_TEST(ksmtuned_decays_to_the_floor)
{
	/*
	 * A 100 MiB host (thres 20% = 20480 KiB) and 22000 pages (88000 KiB),
	 * half of them zero: committed + thres > total, so KSM must run.  At
	 * 0 s free = 102400 - 88000 = 14400 KiB < thres: boost from 0 to 20000.
	 * By 60 s 'zero' has merged the 11000 zero pages: free = 58400 KiB >
	 * thres: decay by 50 each minute, 19950, then 19900.
	 */
	static const char *const ctl[] = { "host_mem_mib=100", "host_used_mib=0", "sleep_msec=0",
					   "npages_boost=20000", "npages_max=30000", NULL };
	char path[512];
	struct sim_config cfg;
	struct tb_series *s;
	struct tb tb;

	sp_test_path(path, sizeof(path), "z.sptrace");
	tb_init(&tb, 1, 22000);
	tb_open(&tb, path);
	tb_snap(&tb, 0);
	for (uint64_t p = 0; p < 22000; p++)
		tb_page(&tb, 0, p, p % 2 ? p + 1 : 0); /* half zero */
	tb_commit(&tb);
	tb_config(&cfg, "zero", NULL);
	with_ctl(&cfg, "ksmtuned", ctl);
	cfg.duration_ms = 182000;
	s = tb_run(path, &cfg);
	/* t=0: boost to 20000; by 60 s all 11000 zero pages are merged: free =
	 * 102400 - 88000 + 44000 > thres, so 20000 - 50 = 19950, then 19900. */
	CU_ASSERT_EQUAL(scanned(s, 0), 20000);
	CU_ASSERT_EQUAL(tb_at(s, 59000)->ksm_zero_pages, 11000);
	CU_ASSERT_EQUAL(scanned(s, 62000) - scanned(s, 61000), 100 * 19950);
	CU_ASSERT_EQUAL(scanned(s, 122000) - scanned(s, 121000), 100 * 19900);
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
