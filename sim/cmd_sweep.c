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
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "parallel.h"
#include "report.h"
#include "sim.h"

#define MAX_VALUES 1024

static void sweep_usage(FILE *f)
{
	fprintf(f,
		"usage: sim sweep [--trace FILE] --algo NAME --vary key=v1,v2,... [--vary ...]\n"
		"                 [--seeds N] [--set key=value]... --report DIR [options]\n"
		"       sim sweep merge DIR        (or: sim sweep --merge --report DIR)\n"
		"\n"
		"Runs one algorithm at every point of a parameter grid (the cartesian product of\n"
		"the --vary lists) for seeds 1..N, in parallel threads over one decoded trace, and\n"
		"writes DIR/sweep.csv (per point: mean, standard deviation and 95%% confidence\n"
		"interval of the final savings, time to 90%%, CPU and COW breaks), DIR/runs.csv,\n"
		"plots with error bars, the savings/CPU Pareto frontier and DIR/index.html.\n"
		"\n"
		"  --trace FILE       trace to replay (default: the bundled sample %s)\n"
		"  --algo NAME        merge algorithm ('sim list')\n"
		"  --vary key=v1,...  values of one parameter; repeatable (up to %d keys); the\n"
		"                     first key is the x axis of the plots, the others make series\n"
		"  --seeds N          runs per point, with seeds 1..N (default 1); for deterministic\n"
		"                     algorithms only --spread-writes makes seeds differ\n"
		"  --set key=value    a fixed parameter; repeatable\n"
		"  --report DIR       write the report (or this task's share) into DIR\n"
		"  --task-id I --tasks N  run only the runs with index %% N == I and write\n"
		"                     DIR/share-I-of-N.csv; 'sim sweep merge DIR' joins the N shares\n"
		"  --merge            join the shares in --report DIR into the report\n"
		"  --jobs N           threads (default: the number of CPUs, %u here)\n"
		"  --duration-ms N    simulate N ms (default: until --tail-ms after the last snapshot)\n"
		"  --tail-ms N        time to keep simulating after the last snapshot (default 60000)\n"
		"  --sample-ms N      sample the metrics every N ms (default 1000)\n"
		"  --spread-writes    spread each snapshot's writes over its interval (seeded)\n"
		"  --cost SPEC        cost model in ns per operation (see 'sim run --help')\n"
		"  -q, --quiet        no table on stdout\n",
		cli_default_trace(), PLOT_SWEEP_MAX_KEYS, sim_cpu_count());
}

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
	int ki;

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
				free(copy);
				return cli_usage_error("sweep", "--vary %s: value %s given twice", g->keys[k], tok);
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
	for (uint32_t k = 0; k < d->nkeys; k++)
		printf("%-16s ", d->keys[k]);
	printf("%22s %14s %12s %s\n", "saved MiB (95% CI)", "CPU s", "to 90% s", "frontier");
	for (uint64_t i = 0; i < d->points; i++) {
		char s[64];

		for (uint32_t k = 0; k < d->nkeys; k++)
			printf("%-16g ", p[i].values[k]);
		if (d->seeds > 1)
			snprintf(s, sizeof(s), "%.1f +- %.1f", p[i].saved.mean * mib, p[i].saved.ci95 * mib);
		else
			snprintf(s, sizeof(s), "%.1f", p[i].saved.mean * mib);
		printf("%22s %14.3f %12.1f %s\n", s, p[i].cpu_s.mean, p[i].t90_s.mean,
		       p[i].pareto ? "*" : "");
	}
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
		print_points(&d, rows, n);
		printf("report: %s/index.html\n", dir);
	}
	free(desc);
	free(rows);
	return rc < 0 ? cli_fail(&err) : EXIT_OK;
}

int cmd_sweep(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "trace", required_argument, NULL, 't' },
		{ "algo", required_argument, NULL, 'a' },
		{ "vary", required_argument, NULL, 'v' },
		{ "seeds", required_argument, NULL, 'n' },
		{ "set", required_argument, NULL, 's' },
		{ "report", required_argument, NULL, 'R' },
		{ "task-id", required_argument, NULL, 'I' },
		{ "tasks", required_argument, NULL, 'N' },
		{ "merge", no_argument, NULL, 'M' },
		{ "jobs", required_argument, NULL, 'j' },
		{ "duration-ms", required_argument, NULL, 'd' },
		{ "tail-ms", required_argument, NULL, 'T' },
		{ "sample-ms", required_argument, NULL, 'S' },
		{ "spread-writes", no_argument, NULL, 'w' },
		{ "cost", required_argument, NULL, 'c' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *trace = cli_default_trace(), *algo = NULL, *dir = NULL;
	struct cli_sim_opts so;
	const char *sets[CLI_MAX_SETS], *varies[PLOT_SWEEP_MAX_KEYS + 1];
	int nsets = 0, nvaries = 0, c, li, rc;
	uint64_t seeds = 1, jobs = 0;
	uint64_t task = 0, tasks = 0;
	bool quiet = false, merge = false, have_task = false;
	struct grid g = { 0 };
	struct sim_config base;
	struct plot_sweep_def d;
	struct plot_sweep_run *rows = NULL;
	struct sim_job *job = NULL;
	struct trace_mem *tm = NULL;
	struct sp_err err = { 0 };
	struct cli_progress prog;
	struct sweep_ctx ctx;
	size_t nruns = 0;

	if (argc > 1 && !strcmp(argv[1], "merge")) {
		if (argc == 3 && strcmp(argv[2], "--help") && strcmp(argv[2], "-h"))
			return do_merge(argv[2], false);
		if (argc == 4 && (!strcmp(argv[2], "-q") || !strcmp(argv[2], "--quiet")))
			return do_merge(argv[3], true);
		if (argc == 3) {
			sweep_usage(stdout);
			return EXIT_OK;
		}
		return cli_usage_error("sweep", "usage: sim sweep merge [-q] DIR");
	}
	optind = 1;
	opterr = 0;
	cli_sim_opts_init(&so);
	while ((li = -1, c = getopt_long(argc, argv, ":qh", opts, &li)) != -1) {
		int taken = cli_sim_opt(&so, c, optarg);

		if (taken < 0)
			goto bad_value;
		if (taken)
			continue;
		switch (c) {
		case 't': trace = optarg; break;
		case 'a': algo = optarg; break;
		case 'R': dir = optarg; break;
		case 'q': quiet = true; break;
		case 'M': merge = true; break;
		case 'v':
			if (nvaries == PLOT_SWEEP_MAX_KEYS)
				return cli_usage_error("sweep", "more than %d --vary options", PLOT_SWEEP_MAX_KEYS);
			varies[nvaries++] = optarg;
			break;
		case 's':
			if (nsets == CLI_MAX_SETS)
				return cli_usage_error("sweep", "more than %d --set options", CLI_MAX_SETS);
			sets[nsets++] = optarg;
			break;
		case 'n':
			if (!cli_parse_u64(optarg, &seeds) || seeds == 0 || seeds > 100000)
				goto bad_value;
			break;
		case 'I':
			if (!cli_parse_u64(optarg, &task))
				goto bad_value;
			have_task = true;
			break;
		case 'N':
			if (!cli_parse_u64(optarg, &tasks) || tasks == 0 || tasks > 1000000)
				goto bad_value;
			break;
		case 'j':
			if (!cli_parse_u64(optarg, &jobs) || jobs == 0 || jobs > 1024)
				goto bad_value;
			break;
		case 'h':
			sweep_usage(stdout);
			return EXIT_OK;
		case ':':
			return cli_usage_error("sweep", "option '%s' needs a value", argv[optind - 1]);
		default:
			return cli_usage_error("sweep", "unknown option '%s'", argv[optind - 1]);
		}
	}
	if (optind < argc)
		return cli_usage_error("sweep", "unexpected argument '%s'", argv[optind]);
	if (!dir)
		return cli_usage_error("sweep", "--report DIR is required");
	if (merge)
		return do_merge(dir, quiet);
	if (have_task != (tasks != 0))
		return cli_usage_error("sweep", "--task-id and --tasks go together");
	if (tasks && task >= tasks)
		return cli_usage_error("sweep", "--task-id %llu: must be below --tasks %llu",
				       (unsigned long long)task, (unsigned long long)tasks);
	rc = cli_sim_config(&base, algo, sets, nsets, NULL, NULL, 0);
	if (rc != EXIT_OK)
		return rc;
	if (nvaries == 0)
		return cli_usage_error("sweep", "--vary key=v1,v2,... is required");
	for (int i = 0; i < nvaries && rc == EXIT_OK; i++)
		rc = parse_vary(&g, base.algo, varies[i]);
	if (rc != EXIT_OK) {
		grid_free(&g);
		return rc;
	}
	if (cli_sim_opts_apply(&so, &base, &err) < 0) {
		grid_free(&g);
		return cli_fail(&err);
	}
	g.points = 1;
	for (uint32_t k = 0; k < g.nkeys; k++) {
		if (g.points > (1ull << 32) / g.count[k]) {
			grid_free(&g);
			return cli_usage_error("sweep", "the grid is too large");
		}
		g.points *= g.count[k];
	}
	if (g.points * seeds > (1ull << 32)) {
		grid_free(&g);
		return cli_usage_error("sweep", "too many runs (%llu points x %llu seeds)",
				       (unsigned long long)g.points, (unsigned long long)seeds);
	}

	cli_progress_init(&prog, "loading");
	rc = trace_mem_load(&tm, trace, cli_load_progress, &prog, &err);
	cli_progress_done(&prog);
	if (rc < 0) {
		grid_free(&g);
		return cli_fail(&err);
	}
	/* the definition every share must agree on */
	memset(&d, 0, sizeof(d));
	snprintf(d.algorithm, sizeof(d.algorithm), "%s", base.algo->name);
	snprintf(d.trace, sizeof(d.trace), "%s", trace);
	d.page_size = trace_mem_header(tm)->page_size;
	d.nkeys = g.nkeys;
	for (uint32_t k = 0; k < g.nkeys; k++)
		memcpy(d.keys[k], g.keys[k], sizeof(d.keys[k]));
	d.points = g.points;
	d.seeds = seeds;
	{
		size_t o;
		bool first = true;

		cli_sim_options_format(d.options, sizeof(d.options), &base,
				       sim_expected_end_ms(tm, &base), true);
		o = strlen(d.options);
		for (uint32_t i = 0; i < base.algo->nparams && o < sizeof(d.options); i++) {
			bool varied = false;

			for (uint32_t k = 0; k < g.nkeys; k++)
				varied |= !strcmp(g.keys[k], base.algo->params[i].name);
			if (varied)
				continue;
			o += (size_t)snprintf(d.options + o, sizeof(d.options) - o, "%s%s=%g",
					      first ? "; fixed: " : " ", base.algo->params[i].name,
					      base.params.v[i]);
			first = false;
		}
	}

	/* this task's runs */
	for (uint64_t r = 0; r < g.points * seeds; r++)
		if (!tasks || r % tasks == task)
			nruns++;
	rows = calloc(nruns ? nruns : 1, sizeof(*rows));
	job = calloc(nruns ? nruns : 1, sizeof(*job));
	if (!rows || !job) {
		fprintf(stderr, "sim: out of memory\n");
		rc = EXIT_FAIL;
		goto done;
	}
	nruns = 0;
	for (uint64_t r = 0; r < g.points * seeds; r++) {
		struct plot_sweep_run *row = &rows[nruns];
		struct sim_job *j = &job[nruns];

		if (tasks && r % tasks != task)
			continue;
		row->run = r;
		row->point = r / seeds;
		row->seed = r % seeds + 1;
		grid_point(&g, row->point, row->values);
		j->cfg = base;
		j->cfg.seed = row->seed;
		for (uint32_t k = 0; k < g.nkeys; k++)
			j->cfg.params.v[algo_param_index(base.algo, g.keys[k])] = row->values[k];
		algo_params_format(base.algo, &j->cfg.params, row->params, sizeof(row->params));
		j->keep_samples = true;
		nruns++;
	}
	ctx.rows = rows;
	ctx.prog = &prog;
	cli_tune_malloc_for_threads();
	cli_progress_init(&prog, "sweeping");
	rc = sim_parallel_run(tm, job, nruns, (unsigned)jobs, true, job_done, sweep_progress, &ctx,
			      &err);
	cli_progress_done(&prog);
	if (rc == 0 && tasks) {
		char name[96], *path = NULL;

		snprintf(name, sizeof(name), "share-%llu-of-%llu.csv", (unsigned long long)task,
			 (unsigned long long)tasks);
		if (asprintf(&path, "%s/%s", dir, name) < 0)
			path = NULL;
		if (!path) {
			rc = sp_err_set(&err, SP_ENOMEM, "out of memory");
		} else {
			rc = plot_mkdir_p(dir, &err);
			if (rc == 0)
				rc = plot_sweep_write_runs(path, &d, rows, nruns, &err);
			if (rc == 0 && !quiet)
				printf("share %llu of %llu: %zu runs written to %s; when all %llu shares are "
				       "done: sim sweep merge %s\n",
				       (unsigned long long)task, (unsigned long long)tasks, nruns, path,
				       (unsigned long long)tasks, dir);
		}
		free(path);
	} else if (rc == 0) {
		rc = plot_sweep_write(dir, &d, rows, nruns, trace_mem_header(tm)->desc, base.algo, &err);
		if (rc == 0 && !quiet) {
			print_points(&d, rows, nruns);
			printf("report: %s/index.html\n", dir);
		}
	}
	rc = rc < 0 ? cli_fail(&err) : EXIT_OK;
done:
	free(rows);
	for (size_t i = 0; i < nruns; i++)
		sim_job_release(&job[i]);
	free(job);
	trace_mem_free(tm);
	grid_free(&g);
	return rc;
bad_value:
	return cli_usage_error("sweep", "invalid value '%s' for --%s", optarg, opts[li].name);
}
