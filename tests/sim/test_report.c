/*
 * test_report.c - the comparison and sweep machinery: run summaries (final
 * and peak savings, time to 90%), per-point statistics against hand
 * computations, the Pareto frontier, the share files (round trip, missing
 * and duplicated runs, foreign shares), and parallel runs over one decoded
 * trace giving exactly the series of one run at a time.
 */
#define _GNU_SOURCE
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "harness.h"
#include "parallel.h"
#include "report.h"
#include "tracebuild.h"

static struct metrics saved(int64_t sharing, int64_t zero, int64_t oracle, int64_t cpu, int64_t cow)
{
	struct metrics m;

	memset(&m, 0, sizeof(m));
	m.pages_sharing = sharing;
	m.ksm_zero_pages = zero;
	m.oracle_saving = oracle;
	m.cpu_ns = cpu;
	m.cow_breaks = cow;
	return m;
}

SP_TEST(summary_definitions)
{
	/* saved: 0, 50, 95, 120, 100 (sharing + zero); final 100 -> 90% is 90, first at 2000 ms */
	uint64_t t[5] = { 0, 1000, 2000, 3000, 4000 };
	struct metrics m[5] = { saved(0, 0, 200, 0, 0), saved(40, 10, 200, 10, 0),
				saved(90, 5, 200, 20, 1), saved(100, 20, 200, 30, 2),
				saved(80, 20, 125, 2000000000, 7) };
	struct plot_summary s;

	plot_summarize(t, m, 5, &s);
	CU_ASSERT_EQUAL(s.final_saved, 100);
	CU_ASSERT_EQUAL(s.peak_saved, 120);
	CU_ASSERT_EQUAL(s.oracle_final, 125);
	CU_ASSERT_DOUBLE_EQUAL(s.pct_of_oracle, 80.0, 1e-12);
	CU_ASSERT_EQUAL(s.t90_ms, 2000);
	CU_ASSERT_EQUAL(s.cpu_ns, 2000000000);
	CU_ASSERT_EQUAL(s.cow_breaks, 7);
	CU_ASSERT_EQUAL(s.end_ms, 4000);
	/* 100 pages of 4 KiB = 0.390625 MiB over 2 CPU seconds */
	CU_ASSERT_DOUBLE_EQUAL(plot_mib_per_cpu_s(&s, 4096), 0.1953125, 1e-12);
	/* exactly 90% counts as reached */
	m[1] = saved(90, 0, 200, 0, 0);
	plot_summarize(t, m, 5, &s);
	CU_ASSERT_EQUAL(s.t90_ms, 1000);
	CU_ASSERT(!s.still_merging && plot_settled(&s));
	CU_ASSERT_STRING_EQUAL(plot_never_reason(&s), "");
	/* nothing saved: time to 90% is never (issue 12); no oracle: 100%; no CPU for a saving: infinite */
	for (int i = 0; i < 5; i++)
		m[i] = saved(0, 0, 0, 0, 0);
	m[4].full_scans = 1;
	plot_summarize(t, m, 5, &s);
	CU_ASSERT_EQUAL(s.t90_ms, PLOT_T90_NEVER);
	CU_ASSERT(!plot_settled(&s));
	CU_ASSERT_STRING_EQUAL(plot_never_reason(&s),
			       "saved nothing: fewer than two full scans in the simulated time");
	CU_ASSERT_DOUBLE_EQUAL(s.pct_of_oracle, 100.0, 1e-12);
	CU_ASSERT_DOUBLE_EQUAL(plot_mib_per_cpu_s(&s, 4096), 0.0, 0);
	/* saving only at the last sample: still merging, so never too */
	m[4] = saved(10, 0, 10, 0, 0);
	m[4].full_scans = 3;
	plot_summarize(t, m, 5, &s);
	CU_ASSERT(isinf(plot_mib_per_cpu_s(&s, 4096)));
	CU_ASSERT(s.still_merging);
	CU_ASSERT_EQUAL(s.t90_ms, PLOT_T90_NEVER);
	CU_ASSERT_STRING_EQUAL(plot_never_reason(&s), "still merging at the end: the savings had not settled");
	/* a rise of exactly 1% over the last tenth (here: one sample interval) is settled, more is not */
	m[3] = saved(100, 0, 200, 0, 0);
	m[4] = saved(101, 0, 200, 0, 0);
	plot_summarize(t, m, 5, &s);
	CU_ASSERT(!s.still_merging);
	CU_ASSERT_EQUAL(s.t90_ms, 3000); /* 0 before, 100 >= 90.9 at 3000 ms */
	m[4] = saved(102, 0, 200, 0, 0);
	plot_summarize(t, m, 5, &s);
	CU_ASSERT(s.still_merging);
	/* CPU as a share of one core, savings as a share of present memory */
	CU_ASSERT_DOUBLE_EQUAL(plot_cpu_pct(500000000, 10000), 5.0, 1e-12);
	CU_ASSERT_DOUBLE_EQUAL(plot_pct_of_present(25, 200), 12.5, 1e-12);
	CU_ASSERT_DOUBLE_EQUAL(plot_pct_of_present(25, 0), 0.0, 0);
}

SP_TEST(statistics_by_hand)
{
	/* 1,2,3,4: mean 2.5, sd sqrt(5/3), t(0.975, 3) = 3.182446305284263 */
	double x[4] = { 1, 2, 3, 4 }, one = 7;
	struct plot_stat s;

	plot_stat_compute(x, 4, &s);
	CU_ASSERT_DOUBLE_EQUAL(s.mean, 2.5, 1e-12);
	CU_ASSERT_DOUBLE_EQUAL(s.sd, sqrt(5.0 / 3.0), 1e-12);
	CU_ASSERT_DOUBLE_EQUAL(s.ci95, 3.182446305284263 * sqrt(5.0 / 3.0) / 2, 1e-9);
	/* two values 10, 14: sd 2*sqrt(2), t(0.975, 1) = 12.70620473617471 */
	x[0] = 10;
	x[1] = 14;
	plot_stat_compute(x, 2, &s);
	CU_ASSERT_DOUBLE_EQUAL(s.mean, 12, 1e-12);
	CU_ASSERT_DOUBLE_EQUAL(s.ci95, 12.70620473617471 * 2 * sqrt(2.0) / sqrt(2.0), 1e-8);
	plot_stat_compute(&one, 1, &s);
	CU_ASSERT_DOUBLE_EQUAL(s.mean, 7, 0);
	CU_ASSERT(isnan(s.sd) && isnan(s.ci95));
}

static void def_init(struct plot_sweep_def *d, uint64_t points, uint64_t seeds)
{
	memset(d, 0, sizeof(*d));
	strcpy(d->algorithm, "ksm");
	strcpy(d->trace, "/some/where, \"quoted\".sptrace");
	strcpy(d->options, "seeds vary; fixed: a=1");
	d->page_size = 4096;
	d->nkeys = 1;
	strcpy(d->keys[0], "pages_to_scan");
	d->points = points;
	d->seeds = seeds;
}

static void run_init(struct plot_sweep_run *r, uint64_t run, uint64_t seeds, double value,
		     int64_t saved_pages, int64_t cpu_ns)
{
	memset(r, 0, sizeof(*r));
	r->run = run;
	r->point = run / seeds;
	r->seed = run % seeds + 1;
	r->values[0] = value;
	r->s.final_saved = saved_pages;
	r->s.peak_saved = saved_pages + 1;
	r->s.oracle_final = 1000;
	r->s.pct_of_oracle = saved_pages / 10.0;
	r->s.t90_ms = 1000 * run;
	r->s.cpu_ns = cpu_ns;
	r->s.cow_breaks = (int64_t)run;
	r->s.end_ms = 20000; /* after every t90_ms below: a share with t90 > end is refused */
	snprintf(r->params, sizeof(r->params), "pages_to_scan=%g sleep_millisecs=20", value);
}

SP_TEST(pareto_frontier)
{
	/* (cpu s, saved): A(1,10) B(2,30) C(2,20) D(3,30) E(4,50) F(0.5,10): frontier F, B, E */
	static const double cpu[6] = { 1, 2, 2, 3, 4, 0.5 };
	static const int64_t sv[6] = { 10, 30, 20, 30, 50, 10 };
	static const bool front[6] = { false, true, false, false, true, true };
	struct plot_sweep_def d;
	struct plot_sweep_run rows[6];
	struct plot_sweep_point *p;

	def_init(&d, 6, 1);
	for (int i = 0; i < 6; i++)
		run_init(&rows[i], (uint64_t)i, 1, i + 1, sv[i], (int64_t)(cpu[i] * 1e9));
	CU_ASSERT_EQUAL_FATAL(plot_sweep_points(&d, rows, 6, &p, NULL), 0);
	for (int i = 0; i < 6; i++) {
		CU_ASSERT_EQUAL(p[i].pareto, front[i]);
		CU_ASSERT_DOUBLE_EQUAL(p[i].saved.mean, (double)sv[i], 0);
		CU_ASSERT(isnan(p[i].saved.ci95));
	}
	free(p);
}

SP_TEST(never_settled_points_are_not_optimal)
{
	/*
	 * (cpu s, saved, settled): A(0.1, 0, never: saved nothing) B(1, 30) C(2, 50)
	 * D(3, 80, never: still merging) E(4, 50): the cheap point that saved
	 * nothing and the still-merging point that saved the most are neither on
	 * the frontier nor the best; B, C are; E ties C on savings and loses on
	 * time to 90%.
	 */
	static const double cpu[5] = { 0.1, 1, 2, 3, 4 };
	static const int64_t sv[5] = { 0, 30, 50, 80, 50 };
	static const bool front[5] = { false, true, true, false, false };
	struct plot_sweep_def d;
	struct plot_sweep_run rows[5];
	struct plot_sweep_point *p;
	uint64_t ties;

	def_init(&d, 5, 1);
	for (int i = 0; i < 5; i++)
		run_init(&rows[i], (uint64_t)i, 1, i + 1, sv[i], (int64_t)(cpu[i] * 1e9));
	rows[0].s.t90_ms = PLOT_T90_NEVER;
	rows[0].s.full_scans = 1;
	rows[3].s.t90_ms = PLOT_T90_NEVER;
	rows[3].s.still_merging = true;
	rows[3].s.full_scans = 5;
	rows[4].s.t90_ms = 9000; /* E: later than C (2000) */
	CU_ASSERT_EQUAL_FATAL(plot_sweep_points(&d, rows, 5, &p, NULL), 0);
	for (int i = 0; i < 5; i++)
		CU_ASSERT_EQUAL(p[i].pareto, front[i]);
	CU_ASSERT(isnan(p[0].t90_s.mean) && isnan(p[3].t90_s.mean));
	CU_ASSERT_EQUAL(p[0].unsettled, 1);
	CU_ASSERT_STRING_EQUAL(p[0].never, "saved nothing: fewer than two full scans in the simulated time");
	CU_ASSERT_STRING_EQUAL(p[3].never, "still merging at the end: the savings had not settled");
	CU_ASSERT_EQUAL(plot_sweep_best(p, 5, &ties), 2);
	CU_ASSERT_EQUAL(ties, 1);
	/* on a tie in time to 90% too, the cheaper point wins */
	p[4].t90_s.mean = p[2].t90_s.mean;
	p[4].cpu_s.mean = 1.5;
	CU_ASSERT_EQUAL(plot_sweep_best(p, 5, &ties), 4);
	free(p);
	/* nothing settled: no best at all */
	for (int i = 0; i < 5; i++)
		rows[i].s.t90_ms = PLOT_T90_NEVER;
	CU_ASSERT_EQUAL_FATAL(plot_sweep_points(&d, rows, 5, &p, NULL), 0);
	CU_ASSERT_EQUAL(plot_sweep_best(p, 5, &ties), UINT64_MAX);
	for (int i = 0; i < 5; i++)
		CU_ASSERT(!p[i].pareto);
	free(p);
}

static void write_share(const char *dir, const struct plot_sweep_def *d, struct plot_sweep_run *all,
			size_t n, uint64_t i, uint64_t tasks)
{
	struct plot_sweep_run *mine = calloc(n, sizeof(*mine));
	char path[1024];
	size_t k = 0;

	for (size_t r = 0; r < n; r++)
		if (all[r].run % tasks == i)
			mine[k++] = all[r];
	snprintf(path, sizeof(path), "%s/share-%llu-of-%llu.csv", dir, (unsigned long long)i,
		 (unsigned long long)tasks);
	CU_ASSERT_EQUAL(plot_sweep_write_runs(path, d, mine, k, NULL), 0);
	free(mine);
}

SP_TEST(shares_round_trip_and_checks)
{
	struct plot_sweep_def d, back;
	struct plot_sweep_run rows[12], *got = NULL;
	struct sp_err err = { 0 };
	char dir[512], path[1024];
	size_t n = 0;

	sp_test_path(dir, sizeof(dir), "shares");
	CU_ASSERT_EQUAL_FATAL(plot_mkdir_p(dir, NULL), 0);
	def_init(&d, 4, 3);
	for (int i = 0; i < 12; i++)
		run_init(&rows[i], (uint64_t)i, 3, 1234567 + 1000 * (i / 3), 100 + i, 1000000 * i);
	for (uint64_t i = 0; i < 4; i++)
		if (i != 2)
			write_share(dir, &d, rows, 12, i, 5 - 1);
	CU_ASSERT_EQUAL(plot_sweep_read_shares(dir, &back, &got, &n, &err), SP_EINVAL);
	CU_ASSERT(strstr(err.msg, "share-2-of-4.csv is missing") != NULL);
	write_share(dir, &d, rows, 12, 2, 4);
	sp_err_clear(&err);
	CU_ASSERT_EQUAL_FATAL(plot_sweep_read_shares(dir, &back, &got, &n, &err), 0);
	CU_ASSERT_EQUAL_FATAL(n, 12);
	CU_ASSERT_STRING_EQUAL(back.trace, d.trace);
	CU_ASSERT_STRING_EQUAL(back.options, d.options);
	CU_ASSERT_STRING_EQUAL(back.keys[0], "pages_to_scan");
	CU_ASSERT_EQUAL(back.points, 4);
	CU_ASSERT_EQUAL(back.seeds, 3);
	for (int i = 0; i < 12; i++) {
		CU_ASSERT_EQUAL(got[i].run, (uint64_t)i);
		CU_ASSERT(got[i].values[0] == rows[i].values[0]); /* exact round trip */
		CU_ASSERT(memcmp(&got[i].s, &rows[i].s, sizeof(got[i].s)) == 0);
		CU_ASSERT_STRING_EQUAL(got[i].params, rows[i].params);
	}
	free(got);
	/* a row lost from a share */
	write_share(dir, &d, rows, 11, 3, 4); /* drops run 11 */
	sp_err_clear(&err);
	CU_ASSERT_EQUAL(plot_sweep_read_shares(dir, &back, &got, &n, &err), SP_EINVAL);
	CU_ASSERT(strstr(err.msg, "run 11 is missing") != NULL);
	/* a share of another sweep */
	write_share(dir, &d, rows, 12, 3, 4);
	strcpy(d.options, "something else");
	write_share(dir, &d, rows, 12, 1, 4);
	sp_err_clear(&err);
	CU_ASSERT_EQUAL(plot_sweep_read_shares(dir, &back, &got, &n, &err), SP_EINVAL);
	CU_ASSERT(strstr(err.msg, "another sweep") != NULL);
	/* not CSV at all */
	snprintf(path, sizeof(path), "%s/share-1-of-4.csv", dir);
	FILE *f = fopen(path, "w");
	fputs("hello\n", f);
	fclose(f);
	sp_err_clear(&err);
	CU_ASSERT_EQUAL(plot_sweep_read_shares(dir, &back, &got, &n, &err), SP_ECORRUPT);
	CU_ASSERT(strstr(err.msg, "not a sweep share") != NULL);
}

/*
 * sweep merge refuses shares whose values cannot be (issue 10, defect 5):
 * one good two-point share, then each field spoiled in turn.
 */
static int merge_text(const char *name, const char *rows, struct sp_err *err)
{
	struct plot_sweep_def back;
	struct plot_sweep_run *got = NULL;
	char dir[512], path[1024];
	size_t n = 0;
	FILE *f;
	int rc;

	sp_test_path(dir, sizeof(dir), name);
	CU_ASSERT_EQUAL_FATAL(plot_mkdir_p(dir, NULL), 0);
	snprintf(path, sizeof(path), "%s/share-0-of-1.csv", dir);
	f = fopen(path, "w");
	CU_ASSERT_PTR_NOT_NULL_FATAL(f);
	fputs("run,point,seed,pages_to_scan,final_saved_pages,peak_saved_pages,oracle_pages,"
	      "time_to_90pct_ms,cpu_ns,cow_breaks,end_ms,algorithm,page_size,points,seeds,params,"
	      "trace,options,full_scans,still_merging,present_pages,remote_sharers\n", f);
	fputs(rows, f);
	fclose(f);
	sp_err_clear(err);
	rc = plot_sweep_read_shares(dir, &back, &got, &n, err);
	free(got);
	return rc;
}

#define ROW0(v, cpu, algo, ps) "0,0,1," v ",10,10,20,0," cpu ",0,100," algo "," ps ",2,1,p,t,o,3,0,40,0\n"
#define ROW1 "1,1,1,200,10,10,20,0,5,0,100,ksm,4096,2,1,p,t,o,3,0,40,0\n"

SP_TEST(sweep_merge_rejects_impossible_values)
{
	struct sp_err err = { 0 };

	CU_ASSERT_EQUAL(merge_text("m-good", ROW0("100", "5", "ksm", "4096") ROW1, &err), 0);
	CU_ASSERT_EQUAL(merge_text("m-nan", ROW0("nan", "5", "ksm", "4096") ROW1, &err), SP_ECORRUPT);
	CU_ASSERT_EQUAL(merge_text("m-inf", ROW0("inf", "5", "ksm", "4096") ROW1, &err), SP_ECORRUPT);
	CU_ASSERT_EQUAL(merge_text("m-cpu", ROW0("100", "-5", "ksm", "4096") ROW1, &err), SP_ECORRUPT);
	CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "impossible"));
	CU_ASSERT_EQUAL(merge_text("m-algo", ROW0("100", "5", "nosuch", "4096") ROW1, &err), SP_ECORRUPT);
	CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "unknown algorithm"));
	CU_ASSERT_EQUAL(merge_text("m-ps", ROW0("100", "5", "ksm", "3") ROW1, &err), SP_ECORRUPT);
	CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "page size 3"));
	/* out of the parameter's range, and not an integer */
	CU_ASSERT_EQUAL(merge_text("m-range", ROW0("1e9", "5", "ksm", "4096") ROW1, &err), SP_ECORRUPT);
	CU_ASSERT_EQUAL(merge_text("m-int", ROW0("100.5", "5", "ksm", "4096") ROW1, &err), SP_ECORRUPT);
	/* two points with the same values: they do not match their points */
	CU_ASSERT_EQUAL(merge_text("m-same", ROW0("200", "5", "ksm", "4096") ROW1, &err), SP_ECORRUPT);
	CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "same values"));
	/* a NUL byte cutting a number short */
	{
		char rows[256];
		const char *a = "0,0,1,100,10,10,20,0,5", *b = "9,0,100,ksm,4096,2,1,p,t,o,3,0,40,0\n" ROW1;
		struct plot_sweep_def back;
		struct plot_sweep_run *got = NULL;
		char dir[512], path[1024];
		size_t n = 0, la = strlen(a), lb = strlen(b);
		FILE *f;

		memcpy(rows, a, la);
		rows[la] = '\0';
		memcpy(rows + la + 1, b, lb);
		sp_test_path(dir, sizeof(dir), "m-nul");
		CU_ASSERT_EQUAL_FATAL(plot_mkdir_p(dir, NULL), 0);
		snprintf(path, sizeof(path), "%s/share-0-of-1.csv", dir);
		f = fopen(path, "w");
		fputs("run,point,seed,pages_to_scan,final_saved_pages,peak_saved_pages,oracle_pages,"
		      "time_to_90pct_ms,cpu_ns,cow_breaks,end_ms,algorithm,page_size,points,seeds,params,"
		      "trace,options\n", f);
		fwrite(rows, 1, la + 1 + lb, f);
		fclose(f);
		sp_err_clear(&err);
		CU_ASSERT_EQUAL(plot_sweep_read_shares(dir, &back, &got, &n, &err), SP_ECORRUPT);
		CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "NUL"));
		free(got);
	}
}

/* Key names from a share reach gnuplot only escaped: they cannot end a data block. */
SP_TEST(sweep_names_cannot_escape_gnuplot)
{
	struct plot_sweep_def d;
	struct plot_sweep_run rows[2];
	char dir[512], path[1024], line[1024];
	FILE *f;
	int eod = 0, blocks = 0;

	def_init(&d, 2, 1);
	strcpy(d.keys[0], "x\nEOD\nsystem('id')\n#");
	for (int i = 0; i < 2; i++)
		run_init(&rows[i], (uint64_t)i, 1, 100 + i, 10 + i, 1000 + i);
	sp_test_path(dir, sizeof(dir), "gp-escape");
	/* gnuplot itself may be missing: the script is written before it runs */
	(void)plot_sweep_write(dir, &d, rows, 2, "desc\x1b[31m", NULL, NULL);
	snprintf(path, sizeof(path), "%s/sweep.gp", dir);
	f = fopen(path, "r");
	CU_ASSERT_PTR_NOT_NULL_FATAL(f);
	while (fgets(line, sizeof(line), f)) {
		eod += strcmp(line, "EOD\n") == 0;
		blocks += strstr(line, "<< EOD") != NULL;
		CU_ASSERT(strncmp(line, "system(", 7) != 0); /* never a command of its own */
	}
	fclose(f);
	CU_ASSERT(blocks > 0);
	CU_ASSERT_EQUAL(eod, blocks); /* every EOD line ends a block we opened */
}

SP_TEST(parallel_runs_equal_serial_runs)
{
	/* three algorithms in two threads over one trace_mem = each run alone from the file */
	static const char *const names[3] = { "oracle", "zero", "ksm" };
	char path[512];
	struct tb tb;
	struct sim_job job[3];
	struct trace_mem *tm;
	struct sp_err err = { 0 };

	sp_test_path(path, sizeof(path), "par.sptrace");
	tb_init(&tb, 2, 64);
	tb_open(&tb, path);
	for (uint64_t s = 0; s < 4; s++) {
		tb_snap(&tb, 1000 * s);
		for (uint32_t g = 0; g < 2; g++)
			for (uint64_t p = 0; p < 64; p++)
				tb_page(&tb, g, p, p % 7 == 0 ? 0 : (p + (p % 5 == 0 ? s * 100 + g : 0)) % 40 + 1);
	}
	tb_commit(&tb);
	CU_ASSERT_EQUAL_FATAL(trace_mem_load(&tm, path, NULL, NULL, &err), 0);
	memset(job, 0, sizeof(job));
	for (int i = 0; i < 3; i++) {
		static const char *const sets[] = { "pages_to_scan=10", NULL };

		tb_config(&job[i].cfg, names[i], i ? sets : NULL);
		job[i].cfg.sample_ms = 100;
		job[i].cfg.tail_ms = 5000;
		job[i].keep_samples = true;
	}
	CU_ASSERT_EQUAL_FATAL(sim_parallel_run(tm, job, 3, 2, true, NULL, NULL, NULL, &err), 0);
	for (int i = 0; i < 3; i++) {
		struct tb_series *s = tb_run(path, &job[i].cfg);

		CU_ASSERT_EQUAL(job[i].rc, 0);
		CU_ASSERT_EQUAL_FATAL(job[i].nsamples, s->n);
		CU_ASSERT_EQUAL(job[i].expected_ms, 3000 + 5000);
		CU_ASSERT_EQUAL(job[i].done_ms, job[i].expected_ms);
		for (size_t k = 0; k < s->n; k++) {
			CU_ASSERT_EQUAL(job[i].times[k], s->t[k]);
			CU_ASSERT(memcmp(&job[i].samples[k], &s->m[k], sizeof(s->m[k])) == 0);
		}
		free(s);
		sim_job_release(&job[i]);
	}
	trace_mem_free(tm);
}
