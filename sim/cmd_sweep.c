/*
 * cmd_sweep.c - `sim sweep`: one algorithm over a grid of parameter values
 * (the cartesian product of the --vary lists) and seeds 1..N, in parallel
 * threads sharing one decoded trace, with per-point statistics and a report
 * (plots/report.h); `--task-id I --tasks N` runs one share of the runs so a
 * sweep spreads over a cluster, and `sim sweep merge DIR` joins the shares.
 *
 * Numbering: point p's value of key k is values[k][(p / stride_k) % count_k]
 * with the last --vary key varying fastest; run r = p * seeds + (seed - 1);
 * share I of N holds the runs with r % N == I.  The report of merged shares
 * is byte-identical to that of one unsharded sweep: both go through the same
 * per-run rows (integers and %.17g values that read back exactly).
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "atomic_file.h"
#include "cli.h"
#include "parallel.h"
#include "report.h"
#include "sim.h"

#define MAX_VALUES 1024
#define SWEEP_MAX_RUNS (1ull << 20) /* runs one process holds (about 2 GiB of results) */

#define STR_(x) #x
#define STR(x) STR_(x)

struct sweep_opts {
	struct cli_sim_opts sim;
	const char *trace, *algo, *dir;
	struct cli_list varies, sets;
	struct cli_u64_list task; /* at most one: given or not */
	uint64_t seeds, tasks, jobs;
	bool merge, quiet;
};

static const struct cli_opt sweep_table[] = {
	CLI_TRACE_OPT(struct sweep_opts, trace),
	{ .name = "algo", .type = CLI_STRING, .offset = offsetof(struct sweep_opts, algo),
	  .metavar = "NAME", .help = "merge algorithm ('sim list')" },
	{ .name = "vary", .type = CLI_LIST, .offset = offsetof(struct sweep_opts, varies),
	  .metavar = "key=v1,...", .max_count = PLOT_SWEEP_MAX_KEYS,
	  .help = "values of one parameter; repeatable (up to " STR(PLOT_SWEEP_MAX_KEYS) " keys); the\n"
		  "first key is the x axis of the plots, the others make series" },
	{ .name = "seeds", .type = CLI_U64, .offset = offsetof(struct sweep_opts, seeds),
	  .metavar = "N", .min = 1, .max = 100000,
	  .help = "runs per point, with seeds 1..N (default {}); for deterministic\n"
		  "algorithms only --spread-writes makes seeds differ" },
	{ .name = "set", .type = CLI_LIST, .offset = offsetof(struct sweep_opts, sets),
	  .metavar = "key=value", .max_count = CLI_MAX_SETS, .help = "a fixed parameter; repeatable" },
	{ .name = "report", .type = CLI_PATH, .offset = offsetof(struct sweep_opts, dir),
	  .metavar = "DIR", .required = true,
	  .help = "write the report (or this task's share) into DIR" },
	{ .name = "task-id", .type = CLI_U64_LIST, .offset = offsetof(struct sweep_opts, task),
	  .metavar = "I", .max_count = 1,
	  .help = "with --tasks N: run only the runs with index % N == I and write\n"
		  "DIR/share-I-of-N.csv; 'sim sweep merge DIR' joins the N shares" },
	{ .name = "tasks", .type = CLI_U64, .offset = offsetof(struct sweep_opts, tasks),
	  .metavar = "N", .min = 1, .max = 1000000, .help = "the number of shares (see --task-id)" },
	{ .name = "merge", .type = CLI_FLAG, .offset = offsetof(struct sweep_opts, merge),
	  .help = "join the shares in --report DIR into the report" },
	CLI_JOBS_OPT(struct sweep_opts, jobs),
	CLI_SIM_TIME_OPTS(struct sweep_opts, sim),
	CLI_SIM_MODEL_OPTS(struct sweep_opts, sim),
	CLI_QUIET_OPT(struct sweep_opts, quiet, "no table on stdout"),
	{ 0 },
};

static const struct cli_spec sweep_spec = {
	.prog = CLI_PROG,
	.name = "sweep",
	.usage = "[--trace FILE] --algo NAME --vary key=v1,v2,... [--vary ...]\n"
		 "[--seeds N] [--set key=value]... --report DIR [options]",
	.about = "Runs one algorithm at every point of a parameter grid (the cartesian product of\n"
		 "the --vary lists) for seeds 1..N, in parallel threads over one decoded trace, and\n"
		 "writes DIR/sweep.csv (per point: mean, standard deviation and 95% confidence\n"
		 "interval of the final savings, time to 90%, CPU and COW breaks), DIR/runs.csv,\n"
		 "plots with error bars, the savings/CPU Pareto frontier and DIR/index.html.",
	.notes = "A sweep split with --task-id/--tasks is joined by 'sim sweep merge [-q] DIR'\n"
		 "(or: sim sweep --merge --report DIR).",
	.opts = sweep_table,
};

struct merge_opts {
	struct cli_list dirs;
	bool quiet;
};

static const struct cli_opt merge_table[] = {
	CLI_QUIET_OPT(struct merge_opts, quiet, "no table on stdout"),
	{ 0 },
};

static const struct cli_spec merge_spec = {
	.prog = CLI_PROG,
	.name = "sweep merge",
	.usage = "[-q] DIR",
	.about = "Joins the shares DIR/share-I-of-N.csv written by 'sim sweep --task-id I\n"
		 "--tasks N --report DIR' into the report of the whole sweep, byte-identical\n"
		 "to that of one unsharded sweep.",
	.opts = merge_table,
	.min_args = 1, .max_args = 1, .args_name = "DIR",
	.args_offset = offsetof(struct merge_opts, dirs),
};

struct grid {
	uint32_t nkeys;
	char keys[PLOT_SWEEP_MAX_KEYS][64];
	double *values[PLOT_SWEEP_MAX_KEYS];
	size_t count[PLOT_SWEEP_MAX_KEYS];
	uint64_t points;
};

static void grid_free(struct grid *g)
{
	for (uint32_t k = 0; k < g->nkeys; k++)
		free(g->values[k]);
}

static void grid_point(const struct grid *g, uint64_t p, double *out)
{
	for (int k = (int)g->nkeys - 1; k >= 0; k--) {
		out[k] = g->values[k][p % g->count[k]];
		p /= g->count[k];
	}
}

/* Parses "key=v1,v2,..." for algo; every value is checked against the parameter's range. */
static int parse_vary(struct grid *g, const struct algo_ops *a, const char *spec)
{
	const char *eq = strchr(spec, '=');
	char *copy, *save = NULL, *tok;
	struct algo_params tmp;
	uint32_t k = g->nkeys;
	int ki, rc;

	if (!eq || eq == spec || !eq[1])
		return cli_usage_error("sweep", "--vary %s: write key=v1,v2,...", spec);
	if (k == PLOT_SWEEP_MAX_KEYS)
		return cli_usage_error("sweep", "more than %d --vary keys", PLOT_SWEEP_MAX_KEYS);
	if ((size_t)(eq - spec) >= sizeof(g->keys[k]))
		return cli_usage_error("sweep", "--vary %s: key too long", spec);
	snprintf(g->keys[k], sizeof(g->keys[k]), "%.*s", (int)(eq - spec), spec);
	ki = algo_param_index(a, g->keys[k]);
	if (ki < 0) {
		struct sp_err err = { 0 };

		algo_params_defaults(a, &tmp);
		algo_params_set(a, &tmp, spec, &err); /* for its message naming the valid keys */
		fprintf(stderr, "sim: --vary: %s\n", err.msg[0] ? err.msg : "unknown parameter");
		return EXIT_USAGE;
	}
	for (uint32_t j = 0; j < k; j++)
		if (!strcmp(g->keys[j], g->keys[k]))
			return cli_usage_error("sweep", "--vary %s given twice", g->keys[k]);
	g->values[k] = calloc(MAX_VALUES, sizeof(double));
	copy = strdup(eq + 1);
	if (!g->values[k] || !copy) {
		free(copy);
		fprintf(stderr, "sim: out of memory\n");
		return EXIT_FAIL;
	}
	g->nkeys++;
	for (tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		char kv[128];
		struct sp_err err = { 0 };

		if (g->count[k] == MAX_VALUES) {
			free(copy);
			return cli_usage_error("sweep", "--vary %s: more than %d values", g->keys[k], MAX_VALUES);
		}
		snprintf(kv, sizeof(kv), "%s=%s", g->keys[k], tok);
		algo_params_defaults(a, &tmp);
		if (algo_params_set(a, &tmp, kv, &err) < 0) {
			free(copy);
			fprintf(stderr, "sim: --vary: %s\n", err.msg);
			return cli_exit_code(err.code);
		}
		for (size_t j = 0; j < g->count[k]; j++) {
			if (g->values[k][j] == tmp.v[ki]) {
				/* tok lives in copy: the message first */
				rc = cli_usage_error("sweep", "--vary %s: value %s given twice", g->keys[k], tok);
				free(copy);
				return rc;
			}
		}
		g->values[k][g->count[k]++] = tmp.v[ki];
	}
	free(copy);
	if (g->count[k] == 0)
		return cli_usage_error("sweep", "--vary %s: no values", g->keys[k]);
	return EXIT_OK;
}

struct sweep_ctx {
	struct plot_sweep_run *rows;
	struct cli_progress *prog;
};

static void sweep_progress(void *arg, uint64_t done_ms, uint64_t total_ms)
{
	cli_parallel_progress(((struct sweep_ctx *)arg)->prog, done_ms, total_ms);
}

static void job_done(void *arg, size_t i, struct sim_job *job)
{
	struct sweep_ctx *x = arg;

	if (job->rc == 0)
		plot_summarize(job->times, job->samples, job->nsamples, &x->rows[i].s);
	sim_job_release(job);
}

static void print_points(const struct plot_sweep_def *d, const struct plot_sweep_run *rows,
			 size_t n)
{
	struct plot_sweep_point *p;
	double mib = d->page_size / 1048576.0;

	if (plot_sweep_points(d, rows, n, &p, NULL) < 0)
		return;
	for (uint32_t k = 0; k < d->nkeys; k++) {
		char key[4 * sizeof(d->keys[k])];

		sp_term_escape(key, sizeof(key), d->keys[k]); /* from share files: never raw on a terminal */
		printf("%-16s ", key);
	}
	printf("%22s %14s %10s %12s %s\n", "saved MiB (95% CI)", "CPU s", "CPU %", "to 90% s", "frontier");
	for (uint64_t i = 0; i < d->points; i++) {
		char s[64], t[64];

		for (uint32_t k = 0; k < d->nkeys; k++)
			printf("%-16g ", p[i].values[k]);
		/* no "+- 0.0": identical seeds give no interval worth printing */
		if (d->seeds > 1 && p[i].saved.ci95 > 0)
			snprintf(s, sizeof(s), "%.1f +- %.1f", p[i].saved.mean * mib, p[i].saved.ci95 * mib);
		else
			snprintf(s, sizeof(s), "%.1f", p[i].saved.mean * mib);
		if (p[i].unsettled)
			snprintf(t, sizeof(t), "never");
		else
			snprintf(t, sizeof(t), "%.1f", p[i].t90_s.mean);
		printf("%22s %14.3f %10.2f %12s %s\n", s, p[i].cpu_s.mean, plot_sweep_cpu_pct(&p[i]), t,
		       p[i].pareto ? "*" : "");
	}
	for (uint64_t i = 0; i < d->points; i++)
		if (p[i].unsettled) {
			printf("never: %s (and any other point marked so: see the report)\n", p[i].never);
			break;
		}
	free(p);
}

/* The seeds' warning on stderr: --seeds N with results that do not depend on the seed. */
static void warn_identical_seeds(const struct plot_sweep_def *d, const struct plot_sweep_run *rows,
				 size_t n)
{
	struct plot_sweep_point *p;

	if (d->seeds < 2 || plot_sweep_points(d, rows, n, &p, NULL) < 0)
		return;
	if (plot_sweep_seeds_identical(d, p))
		fprintf(stderr, "sim: warning: the %llu seeds gave identical results at every point: the "
			"configuration is deterministic (no --spread-writes, a deterministic algorithm), "
			"so there are no confidence intervals; use --seeds 1 or --spread-writes\n",
			(unsigned long long)d->seeds);
	free(p);
}

static int do_merge(const char *dir, bool quiet)
{
	struct plot_sweep_def d;
	struct plot_sweep_run *rows = NULL;
	struct trace_reader *r = NULL;
	struct sp_err err = { 0 };
	char *desc = NULL;
	size_t n = 0;
	int rc;

	rc = plot_sweep_read_shares(dir, &d, &rows, &n, &err);
	if (rc < 0)
		return cli_fail(&err);
	if (trace_reader_open(&r, d.trace, NULL) == 0) {
		desc = strdup(trace_reader_header(r)->desc);
		trace_reader_close(r);
	}
	rc = plot_sweep_write(dir, &d, rows, n, desc, algo_find(d.algorithm), &err);
	if (rc == 0 && !quiet) {
		char name[4096];

		print_points(&d, rows, n);
		sp_term_escape(name, sizeof(name), dir);
		printf("report: %s/index.html\n", name);
	}
	if (rc == 0)
		warn_identical_seeds(&d, rows, n);
	free(desc);
	free(rows);
	return rc < 0 ? cli_fail(&err) : EXIT_OK;
}

struct sweep_cmd {
	struct sweep_opts o;
	struct grid g;
	struct sim_config base;
	struct plot_sweep_def d;
	struct plot_sweep_run *rows;
	struct sim_job *job;
	size_t nruns;
	struct trace_mem *tm;
	struct sp_err err;
};

static int sweep_parse(struct sweep_cmd *x, int argc, char **argv)
{
	struct sweep_opts *o = &x->o;
	int rc;

	cli_sim_opts_init(&o->sim);
	o->trace = cli_default_trace();
	o->seeds = 1;
	rc = cli_parse_args(&sweep_spec, argc, argv, o);
	if (rc != CLI_GO || o->merge)
		return rc;
	if ((o->task.n != 0) != (o->tasks != 0))
		return cli_usage_error("sweep", "--task-id and --tasks go together");
	if (o->tasks && o->task.v[0] >= o->tasks)
		return cli_usage_error("sweep", "--task-id %llu: must be below --tasks %llu",
				       (unsigned long long)o->task.v[0], (unsigned long long)o->tasks);
	return CLI_GO;
}

/* The configuration and the grid, checked and sized. */
static int sweep_grid(struct sweep_cmd *x)
{
	const struct sweep_opts *o = &x->o;
	struct grid *g = &x->g;
	int rc = cli_sim_config(&x->base, o->algo, o->sets.v, (int)o->sets.n, NULL, NULL, 0);

	if (rc != EXIT_OK)
		return rc;
	if (o->varies.n == 0)
		return cli_usage_error("sweep", "--vary key=v1,v2,... is required");
	for (size_t i = 0; i < o->varies.n && rc == EXIT_OK; i++)
		rc = parse_vary(g, x->base.algo, o->varies.v[i]);
	if (rc != EXIT_OK)
		return rc;
	if (cli_sim_opts_apply(&o->sim, &x->base, &x->err) < 0)
		return cli_fail(&x->err);
	g->points = 1;
	for (uint32_t k = 0; k < g->nkeys; k++) {
		if (g->points > (1ull << 32) / g->count[k])
			return cli_usage_error("sweep", "the grid is too large");
		g->points *= g->count[k];
	}
	if (g->points * o->seeds > (1ull << 32))
		return cli_usage_error("sweep", "too many runs (%llu points x %llu seeds)",
				       (unsigned long long)g->points, (unsigned long long)o->seeds);
	{
		/* this process's runs, refused before any work when they cannot be held */
		uint64_t total = g->points * o->seeds;
		uint64_t n = o->tasks ? total / o->tasks + (o->task.v[0] < total % o->tasks) : total;

		if (n > SWEEP_MAX_RUNS)
			return cli_usage_error("sweep", "%llu runs in this process (%llu points x %llu seeds%s) "
					       "would need about %.1f GiB for their results alone, more than "
					       "the %llu runs one process may take; split the sweep with "
					       "--task-id/--tasks or vary fewer values",
					       (unsigned long long)n, (unsigned long long)g->points,
					       (unsigned long long)o->seeds, o->tasks ? ", this task's share" : "",
					       (double)n * (double)(sizeof(struct plot_sweep_run) +
								    sizeof(struct sim_job)) / (1 << 30),
					       (unsigned long long)SWEEP_MAX_RUNS);
	}
	return EXIT_OK;
}

/* The definition every share must agree on. */
static void sweep_define(struct sweep_cmd *x)
{
	struct plot_sweep_def *d = &x->d;
	const struct sim_config *base = &x->base;
	bool first = true;
	size_t o;

	memset(d, 0, sizeof(*d));
	snprintf(d->algorithm, sizeof(d->algorithm), "%s", base->algo->name);
	snprintf(d->trace, sizeof(d->trace), "%s", x->o.trace);
	d->page_size = trace_mem_header(x->tm)->page_size;
	d->nkeys = x->g.nkeys;
	for (uint32_t k = 0; k < x->g.nkeys; k++)
		memcpy(d->keys[k], x->g.keys[k], sizeof(d->keys[k]));
	d->points = x->g.points;
	d->seeds = x->o.seeds;
	cli_sim_options_format(d->options, sizeof(d->options), base, sim_expected_end_ms(x->tm, base),
			       true);
	o = strlen(d->options);
	for (uint32_t i = 0; i < base->algo->nparams && o < sizeof(d->options); i++) {
		bool varied = false;

		for (uint32_t k = 0; k < x->g.nkeys; k++)
			varied |= !strcmp(x->g.keys[k], base->algo->params[i].name);
		if (varied)
			continue;
		o += (size_t)snprintf(d->options + o, sizeof(d->options) - o, "%s%s=%g",
				      first ? "; fixed: " : " ", base->algo->params[i].name,
				      base->params.v[i]);
		first = false;
	}
}

static bool mine(const struct sweep_opts *o, uint64_t r)
{
	return !o->tasks || r % o->tasks == o->task.v[0];
}

/* This task's runs: one row and one job each. */
static int sweep_jobs(struct sweep_cmd *x)
{
	uint64_t total = x->g.points * x->o.seeds;
	size_t n = 0;

	for (uint64_t r = 0; r < total; r++)
		n += mine(&x->o, r);
	x->rows = calloc(n ? n : 1, sizeof(*x->rows));
	x->job = calloc(n ? n : 1, sizeof(*x->job));
	if (!x->rows || !x->job) {
		fprintf(stderr, "sim: out of memory\n");
		return EXIT_FAIL;
	}
	for (uint64_t r = 0; r < total; r++) {
		struct plot_sweep_run *row = &x->rows[x->nruns];
		struct sim_job *j = &x->job[x->nruns];

		if (!mine(&x->o, r))
			continue;
		row->run = r;
		row->point = r / x->o.seeds;
		row->seed = r % x->o.seeds + 1;
		grid_point(&x->g, row->point, row->values);
		j->cfg = x->base;
		j->cfg.seed = row->seed;
		for (uint32_t k = 0; k < x->g.nkeys; k++) {
			int idx = algo_param_index(x->base.algo, x->g.keys[k]);

			j->cfg.params.v[idx] = row->values[k];
			j->cfg.params.given |= 1u << idx; /* asked for: a kernel lacking it refuses */
		}
		algo_params_format(x->base.algo, &j->cfg.params, row->params, sizeof(row->params));
		j->keep_samples = true;
		x->nruns++;
	}
	return EXIT_OK;
}

static int sweep_prepare(struct sweep_cmd *x)
{
	int rc = sweep_grid(x);

	if (rc != EXIT_OK)
		return rc;
	{
		/* the report directory, before any work: usable, and no file of it the trace */
		const char *files[] = { "index.html", "runs.csv", "sweep.csv", "sweep.gp" };
		const char *ins[] = { x->o.trace };
		char share[96];
		size_t nf = 4;

		if (x->o.tasks) {
			snprintf(share, sizeof(share), "share-%llu-of-%llu.csv",
				 (unsigned long long)x->o.task.v[0], (unsigned long long)x->o.tasks);
			files[0] = share;
			nf = 1;
		}
		if (atomic_file_check_dir(x->o.dir, files, nf, ins, 1, &x->err) < 0)
			return cli_fail(&x->err);
	}
	rc = cli_load_trace(&x->tm, x->o.trace);
	if (rc != EXIT_OK)
		return rc;
	sweep_define(x);
	return sweep_jobs(x);
}

static int sweep_run(struct sweep_cmd *x)
{
	struct cli_progress prog;
	struct sweep_ctx ctx = { .rows = x->rows, .prog = &prog };
	int rc;

	cli_tune_malloc_for_threads();
	cli_progress_init(&prog, "sweeping");
	rc = sim_parallel_run(x->tm, x->job, x->nruns, (unsigned)x->o.jobs, true, job_done,
			      sweep_progress, &ctx, &x->err);
	cli_progress_done(&prog);
	return rc < 0 ? cli_fail(&x->err) : EXIT_OK;
}

/* This task's share of the runs: DIR/share-I-of-N.csv. */
static int sweep_write_share(struct sweep_cmd *x)
{
	unsigned long long task = x->o.task.v[0], tasks = x->o.tasks;
	char *path = NULL;
	int rc;

	if (asprintf(&path, "%s/share-%llu-of-%llu.csv", x->o.dir, task, tasks) < 0)
		return cli_fail(&(struct sp_err){ .code = SP_ENOMEM });
	rc = plot_mkdir_p(x->o.dir, &x->err);
	if (rc == 0)
		rc = plot_sweep_write_runs(path, &x->d, x->rows, x->nruns, &x->err);
	if (rc == 0 && !x->o.quiet)
		printf("share %llu of %llu: %zu runs written to %s; when all %llu shares are done: "
		       "sim sweep merge %s\n", task, tasks, x->nruns, path, tasks, x->o.dir);
	free(path);
	return rc < 0 ? cli_fail(&x->err) : EXIT_OK;
}

static int sweep_report(struct sweep_cmd *x)
{
	if (x->o.tasks)
		return sweep_write_share(x);
	if (plot_sweep_write(x->o.dir, &x->d, x->rows, x->nruns, trace_mem_header(x->tm)->desc,
			     x->base.algo, &x->err) < 0)
		return cli_fail(&x->err);
	if (!x->o.quiet) {
		print_points(&x->d, x->rows, x->nruns);
		printf("report: %s/index.html\n", x->o.dir);
	}
	warn_identical_seeds(&x->d, x->rows, x->nruns);
	return EXIT_OK;
}

static int sweep_merge(int argc, char **argv)
{
	struct merge_opts o = { .quiet = false };
	int rc = cli_parse_args(&merge_spec, argc, argv, &o);

	return rc == CLI_GO ? do_merge(o.dirs.v[0], o.quiet) : rc;
}

int cmd_sweep(int argc, char **argv)
{
	struct sweep_cmd *x;
	int rc;

	if (argc > 1 && !strcmp(argv[1], "merge"))
		return sweep_merge(argc - 1, argv + 1);
	x = cli_calloc(sizeof(*x));
	if (!x)
		return EXIT_FAIL;
	rc = sweep_parse(x, argc, argv);
	if (rc == CLI_GO && x->o.merge) {
		rc = do_merge(x->o.dir, x->o.quiet);
	} else if (rc == CLI_GO) {
		rc = sweep_prepare(x);
		if (rc == EXIT_OK)
			rc = sweep_run(x);
		if (rc == EXIT_OK)
			rc = sweep_report(x);
	}
	free(x->rows);
	for (size_t i = 0; i < x->nruns; i++)
		sim_job_release(&x->job[i]);
	free(x->job);
	trace_mem_free(x->tm);
	grid_free(&x->g);
	free(x);
	return rc;
}
