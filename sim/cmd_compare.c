/*
 * cmd_compare.c - `sim compare`: several algorithms (or settings of one,
 * through NAME@ALIAS entries) over one trace, in parallel threads, and the
 * comparison report (plots/report.h).
 *
 * The trace is read, checked and decoded once (trace_mem_load); each run
 * replays it through its own cursor.  Every option is checked before the
 * trace is read and every run must succeed before the report directory is
 * touched, so a failed compare leaves at most an older report, and never an
 * index.html beside files it does not describe (plot_compare_write removes
 * index.html first and writes it last).
 *
 * Also the helpers `sim sweep` shares: the aggregate progress bar and the
 * one-line description of the simulation options.
 */
#define _GNU_SOURCE
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef __GLIBC__ /* defined by the headers above */
#include <malloc.h>
#endif

#include "atomic_file.h"
#include "cli.h"
#include "parallel.h"
#include "report.h"
#include "sim.h"

#define MAX_ALGOS 64
#define MAX_OBSERVED 16

struct compare_opts {
	struct cli_sim_opts sim;
	const char *trace, *algos, *dir, *ctl;
	struct cli_list sets, ctl_sets, observed;
	uint64_t jobs;
	bool quiet;
};

static const struct cli_opt compare_table[] = {
	CLI_TRACE_OPT(struct compare_opts, trace),
	{ .name = "algos", .type = CLI_STRING, .offset = offsetof(struct compare_opts, algos),
	  .metavar = "LIST", .required = true,
	  .help = "comma-separated algorithms ('sim list'); NAME@ALIAS adds a\n"
		  "variant of NAME, e.g. --algos ksm,ksm@fast --set ksm@fast.pages_to_scan=1000" },
	{ .name = "set", .type = CLI_LIST, .offset = offsetof(struct compare_opts, sets),
	  .metavar = "A.key=value", .max_count = CLI_MAX_SETS,
	  .help = "set a parameter of algorithm A: a name applies to every entry of\n"
		  "that algorithm, an alias to that entry only (and wins); repeatable" },
	{ .name = "controller", .type = CLI_STRING, .offset = offsetof(struct compare_opts, ctl),
	  .metavar = "NAME",
	  .help = "a control policy driving every entry's tunables, as in\n"
		  "'sim run --controller' (e.g. the policy samepaged runs)" },
	{ .name = "ctl-set", .type = CLI_LIST, .offset = offsetof(struct compare_opts, ctl_sets),
	  .metavar = "key=value", .max_count = CLI_MAX_SETS,
	  .help = "a setting of the control policy (as 'sim run --ctl-set'); repeatable" },
	{ .name = "observed", .type = CLI_LIST, .offset = offsetof(struct compare_opts, observed),
	  .metavar = "[LABEL=]CSV", .max_count = MAX_OBSERVED,
	  .help = "overlay what a host did (samepaged's SAMEPAGE_CSV, or any CSV in\n"
		  "'sim run --csv' columns; time from its first row) and report the\n"
		  "error of the prediction (the first --algos entry); repeatable" },
	{ .name = "report", .type = CLI_PATH, .offset = offsetof(struct compare_opts, dir),
	  .metavar = "DIR", .required = true, .help = "write the report into DIR (created if missing)" },
	CLI_JOBS_OPT(struct compare_opts, jobs),
	CLI_SIM_TIME_OPTS(struct compare_opts, sim),
	CLI_SIM_SEED_OPT(struct compare_opts, sim),
	CLI_SIM_MODEL_OPTS(struct compare_opts, sim),
	CLI_QUIET_OPT(struct compare_opts, quiet, "no summary on stdout"),
	{ 0 },
};

static const struct cli_spec compare_spec = {
	.prog = CLI_PROG,
	.name = "compare",
	.usage = "[--trace FILE] --algos A,B,... [--set A.key=value]... [--controller NAME]\n"
		 "[--observed [LABEL=]CSV]... --report DIR [options]",
	.about = "Replays one trace through several merge algorithms in parallel threads (the trace\n"
		 "is decoded once) and writes a report: DIR/<algo>.csv (time series), DIR/summary.csv,\n"
		 "plots (PNG and SVG) and DIR/index.html to open in a browser.",
	.opts = compare_table,
};

void cli_sim_options_format(char *buf, size_t len, const struct sim_config *cfg,
			    uint64_t expected_ms, bool seed_varies)
{
	char cost[900] = "", ver[96];
	size_t o = 0;

	if (cfg->cost_from[0])
		o += (size_t)snprintf(cost, sizeof(cost), "(%s) ", cfg->cost_from);
	for (int k = 0; k < BK_COST__COUNT && o < sizeof(cost); k++)
		o += (size_t)snprintf(cost + o, sizeof(cost) - o, "%s%s=%g", k ? "," : "",
				      sim_cost_name((enum bk_cost)k), cfg->cost.ns[k]);
	o = 0;
	if (!seed_varies)
		o += (size_t)snprintf(buf, len, "seed %llu; ", (unsigned long long)cfg->seed);
	if (o < len) {
		if (cfg->duration_ms)
			o += (size_t)snprintf(buf + o, len - o, "%.1f s simulated; ",
					      (double)cfg->duration_ms / 1000);
		else
			o += (size_t)snprintf(buf + o, len - o,
					      "%.1f s simulated (until %.1f s after the last snapshot); ",
					      (double)expected_ms / 1000, (double)cfg->tail_ms / 1000);
	}
	algo_kernel_format(&cfg->kernel, ver, sizeof(ver));
	if (o < len)
		snprintf(buf + o, len - o,
			 "samples every %llu ms; writes %s; cost model (ns) %s; Linux %s (--kernel: "
			 "the ksm model, and huge-page splits in the algorithms that run inside Linux)",
			 (unsigned long long)cfg->sample_ms,
			 cfg->spread_writes ? "spread over each snapshot interval (seeded)"
					    : "at snapshot times",
			 cost, ver);
}

/*
 * Several simulations in threads grow and free large hash tables at once.
 * With glibc's defaults each trim or unmapped chunk is a munmap/madvise whose
 * TLB shootdown interrupts the other threads: 6 algorithms on 8 x 131072
 * pages (bench/bench_compare.sh) spent 1.0-1.3 s in the kernel; keeping freed
 * memory in the process (no trimming below 1 GiB, 64 MiB of top padding,
 * mmap only above 32 MiB) brought that to 0.4 s and the wall time from
 * 3.1-3.9 s to 2.1-3.7 s.  Process-wide, so done here and not in a library.
 */
void cli_tune_malloc_for_threads(void)
{
#ifdef __GLIBC__
	mallopt(M_MMAP_THRESHOLD, 32 << 20);
	mallopt(M_TRIM_THRESHOLD, 1 << 30);
	mallopt(M_TOP_PAD, 64 << 20);
#endif
}

void cli_parallel_progress(void *arg, uint64_t done_ms, uint64_t total_ms)
{
	struct cli_progress *p = arg;
	char detail[96];

	if (!total_ms)
		return;
	snprintf(detail, sizeof(detail), "%.0f of %.0f s simulated", (double)done_ms / 1000,
		 (double)total_ms / 1000);
	cli_progress_update(p, (double)done_ms / (double)total_ms, detail);
}

struct entry {
	char label[64];
	const char *base; /* points into label's copy below */
	char basebuf[64];
	bool alias;
};

static bool label_ok(const char *s)
{
	if (!*s)
		return false;
	for (; *s; s++) {
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
		      *s == '_' || *s == '-'))
			return false;
	}
	return true;
}

static int parse_algos(const char *list, struct entry *e, size_t *n)
{
	char *copy = strdup(list), *save = NULL, *tok;
	int rc = EXIT_OK;

	*n = 0;
	if (!copy)
		return EXIT_FAIL;
	for (tok = strtok_r(copy, ",", &save); tok && rc == EXIT_OK; tok = strtok_r(NULL, ",", &save)) {
		char *at = strchr(tok, '@');
		struct entry *x = &e[*n];

		if (*n == MAX_ALGOS) {
			rc = cli_usage_error("compare", "more than %d algorithms in --algos", MAX_ALGOS);
			break;
		}
		if (strlen(tok) >= sizeof(x->label)) {
			rc = cli_usage_error("compare", "--algos: '%s' is too long", tok);
			break;
		}
		snprintf(x->label, sizeof(x->label), "%s", tok);
		snprintf(x->basebuf, sizeof(x->basebuf), "%s", tok);
		if (at)
			x->basebuf[at - tok] = '\0';
		x->base = x->basebuf;
		x->alias = at != NULL;
		if (!algo_find(x->base)) {
			rc = cli_unknown_name("algorithm", x->base, " in --algos", false);
			break;
		}
		if (at && !label_ok(at + 1)) {
			rc = cli_usage_error("compare", "--algos: alias '%s' must be letters, digits, '_' or '-' after the '@'", tok);
			break;
		}
		for (size_t k = 0; k < *n; k++) {
			if (!strcmp(e[k].label, x->label)) {
				rc = cli_usage_error("compare", "--algos: '%s' is listed twice (use NAME@ALIAS for another setting)", tok);
				break;
			}
		}
		(*n)++;
	}
	free(copy);
	if (rc == EXIT_OK && *n == 0)
		rc = cli_usage_error("compare", "--algos is empty");
	return rc;
}

/* Applies --set A.key=value: pass 0 the algorithm names, pass 1 the aliases. */
static int apply_sets(struct entry *e, size_t n, struct sim_config *cfg, const char *const *sets,
		      int nsets)
{
	for (int i = 0; i < nsets; i++) {
		const char *dot = strchr(sets[i], '.'), *eq = strchr(sets[i], '=');
		bool any = false;

		if (!dot || (eq && eq < dot) || dot == sets[i])
			return cli_usage_error("compare", "--set %s: write ALGO.key=value, e.g. ksm.pages_to_scan=1000", sets[i]);
		for (size_t k = 0; k < n; k++) {
			size_t l = (size_t)(dot - sets[i]);

			if ((strlen(e[k].base) == l && !strncmp(e[k].base, sets[i], l)) ||
			    (strlen(e[k].label) == l && !strncmp(e[k].label, sets[i], l)))
				any = true;
		}
		if (!any)
			return cli_usage_error("compare", "--set %s: '%.*s' is not in --algos", sets[i],
					       (int)(dot - sets[i]), sets[i]);
	}
	for (int pass = 0; pass < 2; pass++) {
		for (int i = 0; i < nsets; i++) {
			const char *dot = strchr(sets[i], '.');
			size_t l = (size_t)(dot - sets[i]);

			for (size_t k = 0; k < n; k++) {
				const char *match = pass == 0 ? e[k].base : e[k].label;
				struct sp_err err = { 0 };

				if (pass == 1 && !e[k].alias)
					continue;
				if (strlen(match) != l || strncmp(match, sets[i], l))
					continue;
				if (algo_params_set(cfg[k].algo, &cfg[k].params, dot + 1, &err) < 0) {
					fprintf(stderr, "sim: --set %s: %s\n", sets[i], err.msg);
					return cli_exit_code(err.code);
				}
			}
		}
	}
	return EXIT_OK;
}

static size_t registry_index(const struct algo_ops *a)
{
	for (size_t i = 0; i < algo_count(); i++)
		if (algo_at(i) == a)
			return i;
	return 0;
}

/* An observed series (--observed): what a host did, read before any work. */
struct observed {
	char label[64];
	const char *path;
	uint64_t *times;
	struct metrics *samples;
	size_t n;
};

struct compare_cmd {
	struct compare_opts o;
	struct observed obs[MAX_OBSERVED];
	size_t nobs;
	struct entry e[MAX_ALGOS];
	struct sim_config cfg[MAX_ALGOS];
	struct plot_run runs[MAX_ALGOS + MAX_OBSERVED];
	size_t n;
	struct sim_job *job;
	struct trace_mem *tm;
	struct sp_err err;
	char options[2048];
};

/* The report directory, before any work: usable, and none of the files it gets the trace. */
static int compare_check_dir(struct compare_cmd *x)
{
	const char *fixed[] = { "index.html", "summary.csv", "compare.gp", "prediction.csv" };
	const char *ins[1 + MAX_OBSERVED] = { x->o.trace };
	size_t nf = sizeof(fixed) / sizeof(fixed[0]), nn = x->n + x->nobs;
	const char **files = calloc(nf + nn, sizeof(*files));
	char **names = calloc(nn ? nn : 1, sizeof(*names));
	int rc = EXIT_OK;

	if (!files || !names) {
		free(files);
		free(names);
		fprintf(stderr, "sim: out of memory\n");
		return EXIT_FAIL;
	}
	memcpy(files, fixed, sizeof(fixed));
	for (size_t i = 0; i < x->n && rc == EXIT_OK; i++) {
		if (asprintf(&names[i], "%s.csv", x->e[i].label) < 0) {
			names[i] = NULL;
			fprintf(stderr, "sim: out of memory\n");
			rc = EXIT_FAIL;
		}
		files[nf + i] = names[i];
	}
	for (size_t k = 0; k < x->nobs && rc == EXIT_OK; k++) {
		size_t i = x->n + k;

		ins[1 + k] = x->obs[k].path;
		if (asprintf(&names[i], "observed-%s.csv", x->obs[k].label) < 0) {
			names[i] = NULL;
			fprintf(stderr, "sim: out of memory\n");
			rc = EXIT_FAIL;
		}
		files[nf + i] = names[i];
	}
	if (rc == EXIT_OK && atomic_file_check_dir(x->o.dir, files, nf + nn, ins, 1 + x->nobs, &x->err) < 0)
		rc = cli_fail(&x->err);
	for (size_t i = 0; i < nn; i++)
		free(names[i]);
	free(names);
	free(files);
	return rc;
}

/* --observed [LABEL=]CSV: the labels (default: the file's name less .csv), unique. */
static int parse_observed(struct compare_cmd *x)
{
	for (size_t k = 0; k < x->o.observed.n; k++) {
		const char *arg = x->o.observed.v[k], *eq = strchr(arg, '='), *path = eq ? eq + 1 : arg;
		struct observed *ob = &x->obs[x->nobs];

		if (eq) {
			snprintf(ob->label, sizeof(ob->label), "%.*s", (int)(eq - arg), arg);
		} else {
			const char *base = strrchr(arg, '/') ? strrchr(arg, '/') + 1 : arg;
			size_t l = strlen(base);

			if (l > 4 && !strcmp(base + l - 4, ".csv"))
				l -= 4;
			snprintf(ob->label, sizeof(ob->label), "%.*s", (int)l, base);
		}
		if (!label_ok(ob->label) || (eq && (size_t)(eq - arg) >= sizeof(ob->label)))
			return cli_usage_error("compare", "--observed %s: the label '%s' must be letters, digits, '_' "
					       "or '-' (write LABEL=FILE)", arg, ob->label);
		if (!*path)
			return cli_usage_error("compare", "--observed %s: no file", arg);
		for (size_t j = 0; j < x->nobs; j++) {
			if (!strcmp(x->obs[j].label, ob->label))
				return cli_usage_error("compare", "--observed: the label '%s' is given twice (write "
						       "LABEL=FILE)", ob->label);
		}
		ob->path = path;
		x->nobs++;
	}
	return EXIT_OK;
}

/* The entries and their settings, then the trace, then the jobs: every option before any work. */
static int compare_prepare(struct compare_cmd *x)
{
	int rc = parse_algos(x->o.algos, x->e, &x->n);

	if (rc != EXIT_OK)
		return rc;
	if (!x->o.ctl && x->o.ctl_sets.n)
		return cli_usage_error("compare", "--ctl-set needs --controller");
	if (x->o.ctl && !ctl_find(x->o.ctl)) {
		fprintf(stderr, "sim: unknown controller '%s'; valid: ", x->o.ctl);
		for (size_t i = 0; i < ctl_count(); i++)
			fprintf(stderr, "%s%s", i ? ", " : "", ctl_at(i)->name);
		fputc('\n', stderr);
		return EXIT_USAGE;
	}
	for (size_t i = 0; i < x->n; i++) {
		sim_config_defaults(&x->cfg[i], algo_find(x->e[i].base));
		if (cli_sim_opts_apply(&x->o.sim, &x->cfg[i], &x->err) < 0)
			return cli_fail(&x->err);
		if (x->o.ctl) {
			x->cfg[i].ctl = ctl_find(x->o.ctl);
			ctl_params_defaults(x->cfg[i].ctl, &x->cfg[i].ctl_params);
			for (size_t k = 0; k < x->o.ctl_sets.n; k++) {
				if (sim_ctl_set(&x->cfg[i], x->o.ctl_sets.v[k], &x->err) < 0)
					return cli_fail(&x->err);
			}
		}
	}
	rc = apply_sets(x->e, x->n, x->cfg, x->o.sets.v, (int)x->o.sets.n);
	if (rc == EXIT_OK)
		rc = parse_observed(x);
	if (rc != EXIT_OK)
		return rc;
	rc = compare_check_dir(x);
	/* The observed files, strictly, before the trace is read: a bad one costs no run. */
	for (size_t k = 0; k < x->nobs && rc == EXIT_OK; k++) {
		struct observed *ob = &x->obs[k];

		if (plot_series_read(ob->path, &ob->times, &ob->samples, &ob->n, &x->err) < 0)
			rc = cli_fail(&x->err);
	}
	if (rc != EXIT_OK)
		return rc;
	rc = cli_load_trace(&x->tm, x->o.trace);
	if (rc != EXIT_OK)
		return rc;
	x->job = calloc(x->n, sizeof(*x->job));
	if (!x->job) {
		fprintf(stderr, "sim: out of memory\n");
		return EXIT_FAIL;
	}
	for (size_t i = 0; i < x->n; i++) {
		x->job[i].cfg = x->cfg[i];
		x->job[i].name = x->e[i].label;
		x->job[i].keep_samples = true;
	}
	return EXIT_OK;
}

static int compare_run(struct compare_cmd *x)
{
	struct cli_progress prog;
	int rc;

	cli_tune_malloc_for_threads();
	cli_progress_init(&prog, "comparing");
	rc = sim_parallel_run(x->tm, x->job, x->n, (unsigned)x->o.jobs, true, NULL,
			      cli_parallel_progress, &prog, &x->err);
	cli_progress_done(&prog);
	return rc < 0 ? cli_fail(&x->err) : EXIT_OK;
}

static void compare_table_print(const struct compare_cmd *x)
{
	uint32_t ps = trace_mem_header(x->tm)->page_size;

	printf("%-20s %12s %8s %10s %10s %12s\n", "algorithm", "saved MiB", "% oracle", "to 90% s",
	       "CPU s", "COW breaks");
	for (size_t i = 0; i < x->n; i++) {
		const struct sim_job *j = &x->job[i];
		struct plot_summary s;

		plot_summarize(j->times, j->samples, j->nsamples, &s);
		printf("%-20s %12.1f %8.1f %10.1f %10.3f %12lld\n", x->e[i].label,
		       plot_mib(s.final_saved, ps), s.pct_of_oracle, (double)s.t90_ms / 1000,
		       (double)s.cpu_ns / 1e9, (long long)s.cow_breaks);
	}
	for (size_t k = 0; k < x->nobs; k++) {
		const struct plot_run *r = &x->runs[x->n + k];
		struct plot_summary s;
		struct plot_error e;
		char t90[32], label[80];

		plot_summarize(r->times, r->samples, r->n, &s);
		plot_prediction_error(r, &x->runs[0], &e);
		snprintf(label, sizeof(label), "observed:%s", r->label);
		if (plot_settled(&s))
			snprintf(t90, sizeof(t90), "%.1f", (double)s.t90_ms / 1000);
		else
			snprintf(t90, sizeof(t90), "never");
		printf("%-20s %12.1f %8.1f %10s %10.3f %12lld\n", label, plot_mib(s.final_saved, ps),
		       s.pct_of_oracle, t90, (double)s.cpu_ns / 1e9, (long long)s.cow_breaks);
		printf("  prediction %s over %.1f s: error %+lld pages (%+.1f MiB", x->runs[0].label,
		       (double)e.end_ms / 1000, (long long)e.error, plot_mib(e.error, ps));
		if (!isnan(e.error_pct))
			printf(", %+.1f%%", e.error_pct);
		printf("), mean abs. error %.1f pages, time to 90%% ", e.mae);
		if (e.t90_both)
			printf("error %+.1f s\n", e.t90_error_s);
		else
			printf("n/a (%s never)\n", e.t90_observed_ms == PLOT_T90_NEVER ? "observed" : "predicted");
	}
	printf("report: %s/index.html\n", x->o.dir);
}

static int compare_report(struct compare_cmd *x)
{
	struct plot_compare pc = { .trace_path = x->o.trace, .header = trace_mem_header(x->tm),
				   .options = x->options, .runs = x->runs, .nruns = x->n + x->nobs };
	size_t aliases = 0;

	cli_sim_options_format(x->options, sizeof(x->options), &x->cfg[0], x->job[0].expected_ms, false);
	for (size_t i = 0; i < x->n; i++) {
		const struct sim_job *j = &x->job[i];

		x->runs[i] = (struct plot_run){
			.label = x->e[i].label, .algo = x->cfg[i].algo, .params = x->cfg[i].params,
			.colour = x->e[i].alias ? algo_count() + aliases++ : registry_index(x->cfg[i].algo),
			.variant = x->e[i].alias, .times = j->times, .samples = j->samples,
			.n = j->nsamples,
		};
	}
	for (size_t k = 0; k < x->nobs; k++) {
		struct observed *ob = &x->obs[k];

		plot_observed_fill(ob->times, ob->samples, ob->n, &x->runs[0]);
		x->runs[x->n + k] = (struct plot_run){
			.label = ob->label, .colour = algo_count() + aliases++, .times = ob->times,
			.samples = ob->samples, .n = ob->n, .observed = true, .source = ob->path,
		};
	}
	if (plot_compare_write(x->o.dir, &pc, &x->err) < 0)
		return cli_fail(&x->err);
	if (!x->o.quiet)
		compare_table_print(x);
	return EXIT_OK;
}

int cmd_compare(int argc, char **argv)
{
	struct compare_cmd *x = cli_calloc(sizeof(*x));
	int rc;

	if (!x)
		return EXIT_FAIL;
	cli_sim_opts_init(&x->o.sim);
	x->o.trace = cli_default_trace();
	rc = cli_parse_args(&compare_spec, argc, argv, &x->o);
	if (rc == CLI_GO) {
		rc = compare_prepare(x);
		if (rc == EXIT_OK)
			rc = compare_run(x);
		if (rc == EXIT_OK)
			rc = compare_report(x);
	}
	for (size_t i = 0; x->job && i < x->n; i++)
		sim_job_release(&x->job[i]);
	for (size_t k = 0; k < x->nobs; k++) {
		free(x->obs[k].times);
		free(x->obs[k].samples);
	}
	free(x->job);
	trace_mem_free(x->tm);
	free(x);
	return rc;
}
