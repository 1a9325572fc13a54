/*
 * test_plan.c - the planner: the swap verdict and the NUMA rule with
 * numbers worked out by hand, the choice (feasibility, ties broken by time
 * to 90% then CPU, never-settled points never chosen), and on each sample
 * trace the search's pick within 2% of the best saving of the exhaustive
 * factor-2 lattice within the budget, reproduced by a plain sim_run under
 * the budget.  Short horizons keep it quick.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "plan.h"

#ifndef SP_SAMPLES_DIR
#error "SP_SAMPLES_DIR must name traces/samples"
#endif

SP_TEST(swap_verdict_by_hand)
{
	struct sim_plan_opts o;
	struct plot_plan_swap s;

	sim_plan_opts_defaults(&o);
	/*
	 * RAM 16384, host use 1024, swap 2048; guests commit 16384, 12000 present,
	 * KSM saves 5000 at peak.  Without KSM: 1024 + 16384 = 17408 > 16384, so
	 * 1024 MiB of swap is needed, and 2048 is enough.  After merging the guests
	 * use 12000 - 5000 = 7000: headroom 16384 + 2048 - 1024 - 7000 = 10408,
	 * in RAM 16384 - 1024 - 7000 = 8360.  Worst-case unshare: 5000.
	 */
	o.host_mem_mib = 16384;
	o.host_used_mib = 1024;
	o.swap_mib = 2048;
	sim_plan_swap(&o, 16384, 12000, 5000, &s);
	CU_ASSERT_EQUAL(s.verdict, PLOT_PLAN_SWAP_NEEDED);
	CU_ASSERT_DOUBLE_EQUAL(s.swap_needed_mib, 1024, 1e-9);
	CU_ASSERT_DOUBLE_EQUAL(s.swap_short_mib, 0, 1e-9);
	CU_ASSERT_DOUBLE_EQUAL(s.unshare_mib, 5000, 1e-9);
	CU_ASSERT_DOUBLE_EQUAL(s.after_merge_mib, 7000, 1e-9);
	CU_ASSERT_DOUBLE_EQUAL(s.headroom_mib, 10408, 1e-9);
	CU_ASSERT_DOUBLE_EQUAL(s.ram_headroom_mib, 8360, 1e-9);
	/* 512 MiB of swap: 17408 - 16384 - 512 = 512 short, unsafe */
	o.swap_mib = 512;
	sim_plan_swap(&o, 16384, 12000, 5000, &s);
	CU_ASSERT_EQUAL(s.verdict, PLOT_PLAN_UNSAFE);
	CU_ASSERT_DOUBLE_EQUAL(s.swap_short_mib, 512, 1e-9);
	CU_ASSERT_DOUBLE_EQUAL(s.headroom_mib, 8872, 1e-9);
	/* 32 GiB of RAM: 1024 + 16384 <= 32768, safe without swap */
	o.host_mem_mib = 32768;
	sim_plan_swap(&o, 16384, 12000, 5000, &s);
	CU_ASSERT_EQUAL(s.verdict, PLOT_PLAN_SAFE);
	CU_ASSERT_DOUBLE_EQUAL(s.swap_needed_mib, 0, 0);
	/* exactly full RAM is still safe */
	o.host_mem_mib = 17408;
	sim_plan_swap(&o, 16384, 12000, 5000, &s);
	CU_ASSERT_EQUAL(s.verdict, PLOT_PLAN_SAFE);
	/* unknown host */
	o.host_mem_mib = 0;
	sim_plan_swap(&o, 16384, 12000, 5000, &s);
	CU_ASSERT_EQUAL(s.verdict, PLOT_PLAN_UNKNOWN);
	CU_ASSERT_DOUBLE_EQUAL(s.unshare_mib, 5000, 1e-9);
}

static struct plot_plan_point pt(int64_t saved, double cpu_s, uint64_t t90_ms, int64_t remote)
{
	struct plot_plan_point p;

	memset(&p, 0, sizeof(p));
	p.s.final_saved = saved;
	p.s.peak_saved = saved;
	p.s.cpu_ns = (int64_t)(cpu_s * 1e9);
	p.s.end_ms = 100000;
	p.s.t90_ms = t90_ms;
	p.s.present = 100000;
	p.s.remote_sharers = remote;
	p.s.full_scans = 10;
	return p;
}

SP_TEST(numa_rule_by_hand)
{
	/* 256 pages = 1 MiB of 4 KiB pages */
	struct plot_plan_point p1 = pt(25600, 1, 5000, 500), p0 = pt(24320, 1, 5000, 0);
	struct plot_plan_numa n = { .nodes = 2 };

	/* 500 of 100000 pages remote: 0.5% < 1%: keep 1 */
	p0.feasible = true;
	sim_plan_numa(&p1, &p0, 4096, &n);
	CU_ASSERT_EQUAL(n.nodes, 2);
	CU_ASSERT(n.evaluated);
	CU_ASSERT_DOUBLE_EQUAL(n.saved1_mib, 100, 1e-9);
	CU_ASSERT_DOUBLE_EQUAL(n.saved0_mib, 95, 1e-9);
	CU_ASSERT_DOUBLE_EQUAL(n.lost_mib, 5, 1e-9);
	CU_ASSERT_DOUBLE_EQUAL(n.lost_pct, 5, 1e-9);
	CU_ASSERT_DOUBLE_EQUAL(n.remote_pct, 0.5, 1e-9);
	CU_ASSERT_EQUAL(n.recommend, 1);
	/* 5000 remote (5%), 5% lost, feasible: use 0 */
	p1.s.remote_sharers = 5000;
	sim_plan_numa(&p1, &p0, 4096, &n);
	CU_ASSERT_EQUAL(n.recommend, 0);
	CU_ASSERT(strstr(n.reason, "Use merge_across_nodes=0") != NULL);
	/* ... but not if 0 misses the budget */
	p0.feasible = false;
	sim_plan_numa(&p1, &p0, 4096, &n);
	CU_ASSERT_EQUAL(n.recommend, 1);
	/* 20% lost: keep 1 */
	p0 = pt(20480, 1, 5000, 0);
	p0.feasible = true;
	sim_plan_numa(&p1, &p0, 4096, &n);
	CU_ASSERT_DOUBLE_EQUAL(n.lost_pct, 20, 1e-9);
	CU_ASSERT_EQUAL(n.recommend, 1);
	/* a variant that never settled: not conclusive, keep 1 */
	p0.s.t90_ms = PLOT_T90_NEVER;
	sim_plan_numa(&p1, &p0, 4096, &n);
	CU_ASSERT(!n.evaluated);
	CU_ASSERT_EQUAL(n.recommend, 1);
}

SP_TEST(choice_and_ties)
{
	struct sim_plan_opts o;
	struct plot_plan_point p[6];
	size_t chosen, tied, best_fixed;

	sim_plan_opts_defaults(&o); /* budget 10% of 100 s = 10 s of CPU; ties within 0.5% */
	p[0] = pt(1000, 2, 30000, 0);                 /* feasible, slow */
	p[1] = pt(998, 3, 10000, 0);                  /* tied (0.2% less), faster: chosen */
	p[2] = pt(999, 1, 10000, 0);                  /* tied, as fast, cheaper: chosen over 1 */
	p[3] = pt(2000, 20, 5000, 0);                 /* saves most, over the budget */
	p[4] = pt(5000, 0.1, PLOT_T90_NEVER, 0);      /* never settled: never chosen */
	p[5] = pt(0, 0, PLOT_T90_NEVER, 0);           /* saved nothing */
	p[4].s.still_merging = true;
	p[5].s.full_scans = 1;
	sim_plan_assess(p, 6, &o, &chosen, &tied, &best_fixed);
	CU_ASSERT_EQUAL(chosen, 2);
	CU_ASSERT_EQUAL(tied, 2);
	CU_ASSERT_EQUAL(best_fixed, 2);
	CU_ASSERT(p[0].feasible && p[1].feasible && p[2].feasible);
	CU_ASSERT(!p[3].feasible && !p[4].feasible && !p[5].feasible);
	CU_ASSERT_DOUBLE_EQUAL(p[3].cpu_pct, 20, 1e-9);
	/* frontier: settled, saved, undominated in (saved, cpu, t90) */
	CU_ASSERT(p[3].frontier && p[2].frontier && !p[4].frontier && !p[5].frontier);
	CU_ASSERT(!p[1].frontier); /* 2 saves more for less CPU, as soon */
	CU_ASSERT(p[0].frontier);  /* saves the most of the cheap ones */
	/* a settle time of 20 s leaves 1 and 2; of 8 s none */
	o.settle_s = 8;
	sim_plan_assess(p, 6, &o, &chosen, &tied, &best_fixed);
	CU_ASSERT_EQUAL(chosen, SIZE_MAX);
	/* ties off: the most saved wins */
	o.settle_s = 0;
	o.tie_pct = 0;
	sim_plan_assess(p, 6, &o, &chosen, &tied, &best_fixed);
	CU_ASSERT_EQUAL(chosen, 0);
	CU_ASSERT_EQUAL(tied, 0);
}

/* The search against the exhaustive lattice on one sample, and the pick replayed. */
static void search_vs_exhaustive(const char *sample, double budget)
{
	char path[1024];
	struct trace_mem *tm;
	struct sp_err err = { 0 };
	struct sim_plan_opts o;
	struct sim_plan s, e;
	struct sim_config cfg;
	struct sim_result res;
	int64_t best;

	snprintf(path, sizeof(path), "%s/%s", SP_SAMPLES_DIR, sample);
	CU_ASSERT_EQUAL_FATAL(trace_mem_load(&tm, path, NULL, NULL, &err), 0);
	sim_plan_opts_defaults(&o);
	o.horizon_ms = 20000;
	o.cpu_budget_pct = budget;
	o.threads = 2;
	CU_ASSERT_EQUAL_FATAL(sim_plan_run(tm, &o, NULL, NULL, &s, &err), 0);
	CU_ASSERT_EQUAL_FATAL(sim_plan_exhaustive(tm, &o, &e, &err), 0);
	CU_ASSERT_FATAL(e.chosen != SIZE_MAX);
	CU_ASSERT_FATAL(s.chosen != SIZE_MAX);
	best = 0;
	for (size_t i = 0; i < e.n; i++)
		if (e.points[i].feasible && e.points[i].s.final_saved > best)
			best = e.points[i].s.final_saved;
	printf("\n%s, budget %.0f%%: search %llu runs, pick saves %lld at %.2f%% CPU; exhaustive %llu "
	       "runs, best %lld\n", sample, budget, (unsigned long long)s.runs,
	       (long long)s.points[s.chosen].s.final_saved, s.points[s.chosen].cpu_pct,
	       (unsigned long long)e.runs, (long long)best);
	CU_ASSERT((double)s.points[s.chosen].s.final_saved >= 0.98 * (double)best);
	CU_ASSERT(s.runs < e.runs);
	CU_ASSERT(s.points[s.chosen].feasible);
	/* the pick, replayed as a plain run, stays within the budget */
	CU_ASSERT_EQUAL_FATAL(sim_plan_config(&s.points[s.chosen], &o, &cfg, &err), 0);
	CU_ASSERT_EQUAL_FATAL(sim_run(path, &cfg, NULL, NULL, NULL, &res, &err), 0);
	CU_ASSERT(plot_cpu_pct(res.last.cpu_ns, res.end_ms) <= budget);
	CU_ASSERT_EQUAL(metrics_saved(&res.last), s.points[s.chosen].s.final_saved);
	/* the answers are filled */
	CU_ASSERT(s.swap.committed_mib > 0);
	CU_ASSERT(s.swap.saved_peak_mib > 0);
	sim_plan_release(&s);
	sim_plan_release(&e);
	trace_mem_free(tm);
}

SP_TEST(search_within_2pct_small)
{
	search_vs_exhaustive("small.sptrace", 5);
}

SP_TEST(search_within_2pct_numa2)
{
	search_vs_exhaustive("numa2.sptrace", 10);
}

SP_TEST(search_within_2pct_qemu)
{
	search_vs_exhaustive("qemu4x512.sptrace", 10);
}

SP_TEST(config_file)
{
	char path[512], line[512], all[8192] = "";
	struct plot_plan_point p = pt(1, 1, 1, 0);
	struct sp_err err = { 0 };
	const struct algo_ops *ksm = algo_find("ksm");
	FILE *f;

	sp_test_path(path, sizeof(path), "samepaged.conf");
	algo_params_defaults(ksm, &p.params);
	p.params.v[algo_param_index(ksm, "pages_to_scan")] = 1218;
	p.params.v[algo_param_index(ksm, "sleep_millisecs")] = 28;
	p.params.v[algo_param_index(ksm, "use_zero_pages")] = 1;
	CU_ASSERT_EQUAL_FATAL(sim_plan_write_config(path, &p, 0, "a \"quoted\" $source", &err), 0);
	f = fopen(path, "r");
	CU_ASSERT_FATAL(f != NULL);
	while (fgets(line, sizeof(line), f))
		strncat(all, line, sizeof(all) - strlen(all) - 1);
	fclose(f);
	CU_ASSERT(strstr(all, "\nSAMEPAGE_POLICY=plan\n") != NULL);
	CU_ASSERT(strstr(all, "\nPLAN_FORMAT=1\n") != NULL);
	CU_ASSERT(strstr(all, "\nPLAN_SOURCE=\"a \\\"quoted\\\" $source\"\n") == NULL);
	CU_ASSERT(strstr(all, "\nPLAN_SOURCE=\"a \\\"quoted\\\" \\$source\"\n") != NULL);
	CU_ASSERT(strstr(all, "\nSTEP=\"0 run=1 pages_to_scan=1218 sleep_millisecs=28 smart_scan=1 "
			      "use_zero_pages=1\"\n") != NULL);
	CU_ASSERT(strstr(all, "\nSAMEPAGE_MERGE_ACROSS_NODES=0\n") != NULL);
	CU_ASSERT(strstr(all, "\nSAMEPAGE_USE_ZERO_PAGES=1\n") != NULL);
	CU_ASSERT(strstr(all, "\nSAMEPAGE_MAX_PAGE_SHARING=256\n") != NULL);
	CU_ASSERT(strstr(all, "\nSAMEPAGE_SMART_SCAN=1\n") != NULL);
	/* ksmtuned: the legacy keys */
	p.policy = PLOT_PLAN_KSMTUNED;
	snprintf(p.ctl_params, sizeof(p.ctl_params), "monitor_interval=10");
	CU_ASSERT_EQUAL_FATAL(sim_plan_write_config(path, &p, -1, NULL, &err), 0);
	f = fopen(path, "r");
	all[0] = '\0';
	while (fgets(line, sizeof(line), f))
		strncat(all, line, sizeof(all) - strlen(all) - 1);
	fclose(f);
	CU_ASSERT(strstr(all, "\nSAMEPAGE_POLICY=ksmtuned\n") != NULL);
	CU_ASSERT(strstr(all, "\nKSM_MONITOR_INTERVAL=10\n") != NULL);
	CU_ASSERT(strstr(all, "\nKSM_NPAGES_MAX=1250\n") != NULL);
	CU_ASSERT(strstr(all, "\nSAMEPAGE_MERGE_ACROSS_NODES=auto\n") != NULL);
	CU_ASSERT(strstr(all, "STEP=") == NULL);
	/* advisor: generic keys */
	p.policy = PLOT_PLAN_ADVISOR;
	snprintf(p.ctl_params, sizeof(p.ctl_params), "advisor_max_cpu=10");
	CU_ASSERT_EQUAL_FATAL(sim_plan_write_config(path, &p, 1, NULL, &err), 0);
	f = fopen(path, "r");
	all[0] = '\0';
	while (fgets(line, sizeof(line), f))
		strncat(all, line, sizeof(all) - strlen(all) - 1);
	fclose(f);
	CU_ASSERT(strstr(all, "\nSAMEPAGE_POLICY=advisor\n") != NULL);
	CU_ASSERT(strstr(all, "\nSAMEPAGE_ADVISOR_ADVISOR_MAX_CPU=10\n") != NULL);
	CU_ASSERT(strstr(all, "\nSAMEPAGE_ADVISOR_ADVISOR_TARGET_SCAN_TIME=200\n") != NULL);
}

SP_TEST(config_runs_like_fixed_settings)
{
	/* the configuration of a fixed point, run through the plan policy, gives that point's run */
	char trace[1024], path[512];
	struct plot_plan_point p;
	struct sim_plan_opts o;
	struct sim_config fixed, viaplan;
	struct sim_result a, b;
	struct sp_err err = { 0 };
	const struct algo_ops *ksm = algo_find("ksm");
	char kv[600];

	snprintf(trace, sizeof(trace), "%s/small.sptrace", SP_SAMPLES_DIR);
	sp_test_path(path, sizeof(path), "plan.conf");
	memset(&p, 0, sizeof(p));
	algo_params_defaults(ksm, &p.params);
	p.params.v[algo_param_index(ksm, "pages_to_scan")] = 1218;
	p.params.v[algo_param_index(ksm, "sleep_millisecs")] = 28;
	p.params.v[algo_param_index(ksm, "use_zero_pages")] = 1;
	p.params.v[algo_param_index(ksm, "smart_scan")] = 0;
	p.params.v[algo_param_index(ksm, "max_page_sharing")] = 2048;
	CU_ASSERT_EQUAL_FATAL(sim_plan_write_config(path, &p, 1, "test", &err), 0);
	sim_plan_opts_defaults(&o);
	o.horizon_ms = 20000;
	CU_ASSERT_EQUAL_FATAL(sim_plan_config(&p, &o, &fixed, &err), 0);
	/* the plan policy from the defaults; what the plan keys leave out comes from SAMEPAGE_* */
	sim_config_defaults(&viaplan, ksm);
	viaplan.duration_ms = o.horizon_ms;
	viaplan.params.v[algo_param_index(ksm, "max_page_sharing")] = 2048;
	viaplan.params.v[algo_param_index(ksm, "merge_across_nodes")] = 1;
	viaplan.ctl = ctl_find("plan");
	CU_ASSERT_FATAL(viaplan.ctl != NULL);
	snprintf(kv, sizeof(kv), "plan=%s", path);
	CU_ASSERT_EQUAL_FATAL(sim_ctl_set(&viaplan, kv, &err), 0);
	CU_ASSERT_EQUAL_FATAL(sim_run(trace, &fixed, NULL, NULL, NULL, &a, &err), 0);
	if (sim_run(trace, &viaplan, NULL, NULL, NULL, &b, &err) != 0)
		CU_FAIL_FATAL(err.msg);
	CU_ASSERT_EQUAL(metrics_saved(&a.last), metrics_saved(&b.last));
	CU_ASSERT_EQUAL(a.last.cpu_ns, b.last.cpu_ns);
	CU_ASSERT_EQUAL(a.last.full_scans, b.last.full_scans);
	CU_ASSERT_EQUAL(a.last.pages_scanned, b.last.pages_scanned);
	CU_ASSERT_EQUAL(b.tunables.pages_to_scan, 1218);
	CU_ASSERT_EQUAL(b.tunables.sleep_millisecs, 28);
	CU_ASSERT_EQUAL(b.tunables.run, 1);
}
