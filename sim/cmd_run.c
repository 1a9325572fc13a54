/*
 * cmd_run.c - `sim run` (replay a trace through one algorithm) and
 * `sim list` (the algorithms and their parameters).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "atomic_file.h"
#include "cli.h"
#include "plot.h"
#include "report.h"
#include "sim.h"

static const struct cli_spec list_spec = {
	.prog = CLI_PROG,
	.name = "list",
	.usage = "",
	.about = "Lists every merge algorithm with its description and its parameters\n"
		 "(name, default, range, meaning); set them with 'sim run --set name=value'.",
};

/* v in the fewest digits that read back as v: a range shown can be given back. */
static const char *exact(char *buf, size_t len, double v)
{
	for (int prec = 6; prec <= 17; prec++) {
		snprintf(buf, len, "%.*g", prec, v);
		if (strtod(buf, NULL) == v)
			break;
	}
	return buf;
}

static void print_param(const struct algo_param *p, int width)
{
	char d[32], lo[32], hi[32];

	printf("  %-*s default %-8s range [%s, %s]%s\n      %s\n", width, p->name,
	       exact(d, sizeof(d), p->def), exact(lo, sizeof(lo), p->min), exact(hi, sizeof(hi), p->max),
	       p->integer ? " integer" : "", p->desc);
}

int cmd_list(int argc, char **argv)
{
	int rc = cli_parse_args(&list_spec, argc, argv, NULL);

	if (rc != CLI_GO)
		return rc;
	for (size_t i = 0; i < algo_count(); i++) {
		const struct algo_ops *a = algo_at(i);

		printf("%s%s\n  %s\n", i ? "\n" : "", a->name, a->description);
		if (a->caps & ALGO_CAP_OMNISCIENT)
			printf("  (simulation only: reads exact content)\n");
		for (uint32_t k = 0; k < a->nparams; k++)
			print_param(&a->params[k], 24);
	}
	printf("\ncontrol policies (sim run --controller NAME --ctl-set key=value):\n");
	for (size_t i = 0; i < ctl_count(); i++) {
		const struct ctl_ops *c = ctl_at(i);

		printf("\n%s\n  %s\n", c->name, c->description);
		for (uint32_t k = 0; k < c->nparams; k++)
			print_param(&c->params[k], 26);
		for (const char *const *t = c->version >= 2 ? c->text_params : NULL; t && *t; t++)
			printf("  %-26s a file name (text)\n", *t);
	}
	printf("\nthe simulated host every policy sees (--ctl-set key=value; samepaged reads the real one):\n");
	for (uint32_t k = 0; k < sim_host_nparams; k++)
		print_param(&sim_host_params[k], 26);
	return EXIT_OK;
}

struct run_opts {
	struct cli_sim_opts sim;
	const char *trace, *algo, *ctl, *csv, *plot;
	struct cli_list sets, ctl_sets;
	uint64_t scans, snapshot_scans;
	bool quiet, no_skip;
};

static int check_plot(void *opts, const char *v, char *msg, size_t len)
{
	const char *dot = strrchr(v, '.');

	(void)opts;
	if (dot && (!strcmp(dot, ".png") || !strcmp(dot, ".svg")))
		return 0;
	snprintf(msg, len, "--plot %s: the file must end in .png or .svg", v);
	return -1;
}

static const struct cli_opt run_table[] = {
	CLI_TRACE_OPT(struct run_opts, trace),
	{ .name = "algo", .type = CLI_STRING, .offset = offsetof(struct run_opts, algo),
	  .metavar = "NAME", .help = "merge algorithm ('sim list' shows them)" },
	{ .name = "set", .type = CLI_LIST, .offset = offsetof(struct run_opts, sets),
	  .metavar = "key=value", .max_count = CLI_MAX_SETS,
	  .help = "set an algorithm parameter; repeatable" },
	CLI_SIM_TIME_OPTS(struct run_opts, sim),
	CLI_SIM_SEED_OPT(struct run_opts, sim),
	CLI_SIM_MODEL_OPTS(struct run_opts, sim),
	{ .name = "controller", .type = CLI_STRING, .offset = offsetof(struct run_opts, ctl),
	  .metavar = "NAME", .help = "a control policy that changes tunables over time ('sim list')" },
	{ .name = "ctl-set", .type = CLI_LIST, .offset = offsetof(struct run_opts, ctl_sets),
	  .metavar = "key=value", .max_count = CLI_MAX_SETS,
	  .help = "set a control policy parameter; repeatable" },
	{ .name = "scans", .type = CLI_U64, .offset = offsetof(struct run_opts, scans),
	  .metavar = "N", .min = 1, .max = 1000000,
	  .help = "count in full scans: a sample after every full scan (not every --sample-ms), "
		  "and the run ends at the N-th (within --duration-ms, default one simulated day)" },
	{ .name = "snapshot-scans", .type = CLI_U64, .offset = offsetof(struct run_opts, snapshot_scans),
	  .metavar = "K", .min = 1, .max = 1000000,
	  .help = "with --scans: apply the trace's snapshot i (i >= 1) right after full scan i*K "
		  "instead of at its time, as the kernel proof (tests/real/ksm_proof.sh) does" },
	{ .name = "csv", .type = CLI_PATH, .offset = offsetof(struct run_opts, csv), .metavar = "OUT",
	  .help = "write the time series: time_ms and every metric, one row per sample" },
	{ .name = "plot", .type = CLI_PATH, .offset = offsetof(struct run_opts, plot),
	  .metavar = "OUT", .fn = check_plot,
	  .help = "with --csv: plot savings against the oracle (OUT .png or .svg)" },
	{ .name = "no-skip", .type = CLI_FLAG, .offset = offsetof(struct run_opts, no_skip),
	  .help = "simulate idle time batch by batch instead of fast-forwarding it\n"
		  "(the same results, slower; a check of the fast-forward)" },
	CLI_QUIET_OPT(struct run_opts, quiet, "no summary on stdout"),
	{ 0 },
};

static const struct cli_spec run_spec = {
	.prog = CLI_PROG,
	.name = "run",
	.usage = "[--trace FILE] --algo NAME [--set key=value]... [options]",
	.about = "Replays a trace through one merge algorithm on a simulated clock and prints\n"
		 "what it saved and what it cost; --csv writes the time series.\n"
		 "Idle time is fast-forwarded (README \"Idle time\"): once the algorithm's state\n"
		 "repeats from cycle to cycle until the next write, whole cycles are skipped with\n"
		 "exactly the results of simulating them; the CSV keeps every sample of a skipped\n"
		 "span up to 10000 rows, and of a longer span its first and last and every k-th.",
	.opts = run_table,
};

struct run_out {
	FILE *csv;
	bool shown[METRICS_COUNT]; /* the columns written: counters the --kernel lacks are left out */
	bool tunables;                /* a control policy runs: its tunables in the CSV */
	const struct sim_result *res; /* the run's result, whose tunables are current */
	uint64_t *times;              /* every sample, for the summary */
	struct metrics *m;
	size_t n, cap;
	int werrno;                   /* why a sample could not be kept or written (errno), or 0 */
	struct cli_progress progress;
	/*
	 * Counting in full scans (--scans): this process's user CPU and
	 * pages_scanned at the ends of the last two full scans, for the cost
	 * of the last scan alone on this host (a benchmark's figure, read in
	 * one run instead of differenced between two).
	 */
	bool by_scans;
	struct scan_end { int64_t scans, pages; uint64_t user_ns; } scan_end[2];
};

static uint64_t user_cpu_ns(void)
{
	struct rusage ru;

	if (getrusage(RUSAGE_SELF, &ru) < 0)
		return 0;
	return (uint64_t)ru.ru_utime.tv_sec * 1000000000ull + (uint64_t)ru.ru_utime.tv_usec * 1000ull;
}

static int write_sample(void *arg, uint64_t time_ms, const struct metrics *m)
{
	struct run_out *o = arg;

	if (o->n == o->cap) {
		size_t cap = o->cap ? 2 * o->cap : 256;
		uint64_t *t = realloc(o->times, cap * sizeof(*t));
		struct metrics *q = t ? realloc(o->m, cap * sizeof(*q)) : NULL;

		if (t)
			o->times = t;
		if (!q) {
			o->werrno = ENOMEM;
			return 1;
		}
		o->m = q;
		o->cap = cap;
	}
	o->times[o->n] = time_ms;
	o->m[o->n++] = *m;
	if (o->by_scans && m->full_scans > o->scan_end[1].scans) {
		o->scan_end[0] = o->scan_end[1];
		o->scan_end[1] = (struct scan_end){ m->full_scans, m->pages_scanned, user_cpu_ns() };
	}
	if (!o->csv)
		return 0;
	errno = 0;
	if (metrics_csv_row_shown(o->csv, time_ms, m, o->tunables ? &o->res->tunables : NULL,
				  o->shown) != 0) {
		o->werrno = errno ? errno : EIO;
		return 1;
	}
	return 0;
}

static void show_progress(void *arg, uint64_t done_ms, uint64_t end_ms)
{
	struct run_out *o = arg;
	char detail[64];

	snprintf(detail, sizeof(detail), "%.1f s simulated", (double)done_ms / 1000);
	if (end_ms)
		cli_progress_update(&o->progress, (double)done_ms / (double)end_ms, detail);
}

static void summary(const char *trace, const struct sim_config *cfg, const struct sim_result *r,
		    const struct run_out *o)
{
	const struct metrics *m = &r->last;
	int64_t saved = metrics_saved(m);
	char params[512], name[1024];
	double secs = (double)r->end_ms / 1000;
	struct plot_summary s;

	plot_summarize(o->times, o->m, o->n, &s);
	algo_params_format(cfg->algo, &cfg->params, params, sizeof(params));
	sp_term_escape(name, sizeof(name), trace);
	printf("trace       %s: %llu snapshots, %llu page records, %llu page states replayed\n",
	       name, (unsigned long long)r->snapshots, (unsigned long long)r->records,
	       (unsigned long long)r->page_states);
	printf("algorithm   %s %s\n", cfg->algo->name, params);
	if (cfg->algo->caps & ALGO_CAP_LINUX) {
		char ver[320];

		algo_kernel_describe(&cfg->kernel, ver, sizeof(ver));
		printf("kernel      Linux %s\n", ver);
	}
	if (cfg->ctl) {
		char cp[512];
		struct algo_ops v = { .name = cfg->ctl->name, .params = cfg->ctl->params,
				      .nparams = cfg->ctl->nparams };

		algo_params_format(&v, &cfg->ctl_params, cp, sizeof(cp));
		printf("controller  %s %s\n", cfg->ctl->name, cp);
	}
	printf("simulated   %.1f s\n", secs);
	printf("saved       %lld pages (%.1f MiB) at the end, %.1f%% of the %lld present; peak %lld; "
	       "oracle %lld pages: %.1f%%\n",
	       (long long)saved, (double)saved * r->page_size / (1 << 20),
	       plot_pct_of_present((double)saved, (double)m->pages_present), (long long)m->pages_present,
	       (long long)r->peak_saved, (long long)m->oracle_saving,
	       m->oracle_saving ? 100.0 * (double)saved / (double)m->oracle_saving : 100.0);
	printf("            pages_shared %lld  pages_sharing %lld  ksm_zero_pages %lld  pages_unshared %lld\n",
	       (long long)m->pages_shared, (long long)m->pages_sharing, (long long)m->ksm_zero_pages,
	       (long long)m->pages_unshared);
	if (plot_settled(&s))
		printf("to 90%%      %.1f s to reach 90%% of the final savings\n", (double)s.t90_ms / 1000);
	else
		printf("to 90%%      never: %s%s\n", plot_never_reason(&s),
		       s.still_merging && s.final_saved > 0 ? "; raise --tail-ms" : "");
	printf("cpu         %.3f s estimated scanner CPU (%.2f%% of one core), %lld pages scanned, %lld full scans\n",
	       (double)m->cpu_ns / 1e9, plot_cpu_pct(m->cpu_ns, r->end_ms),
	       (long long)m->pages_scanned, (long long)m->full_scans);
	printf("costs       %s\n", cfg->cost_from[0] ? cfg->cost_from : "shipped defaults");
	if (o->by_scans && o->scan_end[1].scans >= 2 && o->scan_end[0].scans == o->scan_end[1].scans - 1) {
		const struct scan_end *a = &o->scan_end[0], *b = &o->scan_end[1];
		double u = (double)(b->user_ns - a->user_ns) / 1e9;

		/* the host's time, not the cost model's: a benchmark's figure (bench/bench_scale.sh) */
		printf("host cpu    full scan %lld alone: %.3f s user CPU of this process, %lld pages scanned",
		       (long long)b->scans, u, (long long)(b->pages - a->pages));
		if (u > 0)
			printf(" = %.2f M scans per user second", (double)(b->pages - a->pages) / u / 1e6);
		printf("\n");
	}
	if (m->thp_splits)
		printf("huge pages  %lld split by merges; %lld of their zero subpages freed (thp_zero_pages, no KSM counter shows them)\n",
		       (long long)m->thp_splits, (long long)m->thp_zero_pages);
	if (m->remote_sharers)
		printf("numa        %lld mappings of shared frames on another node (remote_sharers)\n",
		       (long long)m->remote_sharers);
	printf("cow breaks  %lld\n", (long long)m->cow_breaks);
	printf("profit      %lld bytes (general_profit)\n", (long long)m->general_profit);
	if (cfg->ctl && r->stopped_ms) {
		printf("policy      %s kept KSM stopped (run=0) for %.1f of the %.1f s%s\n", cfg->ctl->name,
		       (double)r->stopped_ms / 1000, secs,
		       r->tunables.run ? "" : ", and it was stopped at the end");
		if (!strcmp(cfg->ctl->name, "ksmtuned"))
			printf("            ksmtuned stops KSM while the guests' committed memory plus its "
			       "threshold fit in the host's memory (host_mem_mib=%g) and free memory is "
			       "above the threshold: the host has room, so it does not merge\n",
			       cfg->host.mem_mib);
	}
}

struct run_cmd {
	struct run_opts o;
	struct sim_config cfg;
	struct sim_result res;
	struct atomic_file af;
	struct run_out out;
	struct sp_err err;
};

static int run_parse(struct run_cmd *c, int argc, char **argv)
{
	int rc;

	cli_sim_opts_init(&c->o.sim);
	c->o.trace = cli_default_trace();
	rc = cli_parse_args(&run_spec, argc, argv, &c->o);
	if (rc != CLI_GO)
		return rc;
	if (c->o.plot && !c->o.csv)
		return cli_usage_error("run", "--plot needs --csv (the plot is drawn from it)");
	if (c->o.snapshot_scans && !c->o.scans)
		return cli_usage_error("run", "--snapshot-scans needs --scans (the run ends at a full scan)");
	return CLI_GO;
}

/* The configuration, then the output: nothing is created unless the options are sound. */
static int run_prepare(struct run_cmd *c)
{
	const struct run_opts *o = &c->o;
	int rc;

	rc = cli_sim_config(&c->cfg, o->algo, o->sets.v, (int)o->sets.n, o->ctl, o->ctl_sets.v,
			    (int)o->ctl_sets.n);
	if (rc != EXIT_OK)
		return rc;
	if (cli_sim_opts_apply(&o->sim, &c->cfg, &c->err) < 0)
		return cli_fail(&c->err);
	c->cfg.no_skip = o->no_skip;
	c->cfg.scans = o->scans;
	c->cfg.snapshot_scans = o->snapshot_scans;
	if (o->scans && !c->cfg.duration_ms)
		c->cfg.duration_ms = 86400000; /* a simulated day bounds a run that never completes its scans */
	{
		/* before any work: writable, not the trace, not each other, never a special file replaced */
		const char *outs[] = { o->csv, o->plot }, *ins[] = { o->trace };

		if (atomic_file_check(outs, 2, ins, 1, &c->err) < 0)
			return cli_fail(&c->err);
	}
	if (o->csv) {
		/* a CSV derived from a private (0600) trace stays private */
		if (atomic_file_open(&c->af, o->csv, atomic_file_mode_from(o->trace, 0644), &c->err) < 0)
			return cli_fail(&c->err);
		c->out.csv = c->af.f;
		for (int i = 0; i < METRICS_COUNT; i++) {
			char why[256];

			c->out.shown[i] = sim_metric_offered(&c->cfg, i, why, sizeof(why));
			if (!c->out.shown[i])
				cli_errorf("note: %s: left out of %s", why, o->csv);
		}
		/* with a control policy, the tunables it set at each sample too */
		c->out.tunables = c->cfg.ctl != NULL;
		metrics_csv_header_shown(c->out.csv, c->out.tunables, c->out.shown);
	}
	return EXIT_OK;
}

static int run_run(struct run_cmd *c)
{
	int rc;

	c->out.res = &c->res;
	c->out.by_scans = c->cfg.scans != 0;
	cli_progress_init(&c->out.progress, "simulating");
	rc = sim_run(c->o.trace, &c->cfg, write_sample, show_progress, &c->out, &c->res, &c->err);
	cli_progress_done(&c->out.progress);
	if (rc < 0 && c->out.werrno) {
		/* Say why: the disk full, say, naming the file (sim_run knows only "a sample"). */
		sp_err_clear(&c->err);
		if (c->out.werrno == ENOMEM)
			rc = sp_err_set(&c->err, SP_ENOMEM, "out of memory keeping the samples");
		else
			rc = sp_err_set(&c->err, SP_EIO, "%s: write: %s", c->o.csv,
					strerror(c->out.werrno));
	}
	if (rc == 0 && c->o.csv)
		rc = atomic_file_commit(&c->af, &c->err);
	else if (c->o.csv)
		atomic_file_abort(&c->af);
	return rc < 0 ? cli_fail(&c->err) : EXIT_OK;
}

static int run_report(struct run_cmd *c)
{
	const char *trace = c->o.trace, *base = strrchr(trace, '/') ? strrchr(trace, '/') + 1 : trace;
	char title[128];

	if (!c->o.quiet)
		summary(trace, &c->cfg, &c->res, &c->out);
	if (!c->o.plot)
		return EXIT_OK;
	snprintf(title, sizeof(title), "%s on %s", c->cfg.algo->name, base);
	if (plot_timeseries(c->o.csv, c->o.plot, title, &c->err) < 0)
		return cli_fail(&c->err);
	return EXIT_OK;
}

int cmd_run(int argc, char **argv)
{
	struct run_cmd *c = cli_calloc(sizeof(*c));
	int rc;

	if (!c)
		return EXIT_FAIL;
	rc = run_parse(c, argc, argv);
	if (rc == CLI_GO) {
		rc = run_prepare(c);
		if (rc == EXIT_OK)
			rc = run_run(c);
		if (rc == EXIT_OK)
			rc = run_report(c);
	}
	free(c->out.times);
	free(c->out.m);
	free(c);
	return rc;
}
