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
#include <getopt.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "parallel.h"
#include "report.h"
#include "sim.h"

#define MAX_ALGOS 64

static void compare_usage(FILE *f)
{
	fprintf(f,
		"usage: sim compare [--trace FILE] --algos A,B,... [--set A.key=value]... --report DIR\n"
		"                   [options]\n"
		"\n"
		"Replays one trace through several merge algorithms in parallel threads (the trace\n"
		"is decoded once) and writes a report: DIR/<algo>.csv (time series), DIR/summary.csv,\n"
		"plots (PNG and SVG) and DIR/index.html to open in a browser.\n"
		"\n"
		"  --trace FILE       trace to replay (default: the bundled sample %s)\n"
		"  --algos LIST       comma-separated algorithms ('sim list'); NAME@ALIAS adds a\n"
		"                     variant of NAME, e.g. --algos ksm,ksm@fast --set ksm@fast.pages_to_scan=1000\n"
		"  --set A.key=value  set a parameter of algorithm A: a name applies to every entry of\n"
		"                     that algorithm, an alias to that entry only (and wins); repeatable\n"
		"  --report DIR       write the report into DIR (created if missing)\n"
		"  --jobs N           threads (default: the number of CPUs, %u here)\n"
		"  --duration-ms N    simulate N ms (default: until --tail-ms after the last snapshot)\n"
		"  --tail-ms N        time to keep simulating after the last snapshot (default 60000)\n"
		"  --sample-ms N      sample the metrics every N ms (default 1000)\n"
		"  --seed N           seed for randomised algorithms and --spread-writes (default 1)\n"
		"  --spread-writes    spread each snapshot's writes uniformly over its interval\n"
		"  --cost SPEC        cost model in ns per operation (see 'sim run --help')\n"
		"  -q, --quiet        no summary on stdout\n",
		cli_default_trace(), sim_cpu_count());
}

void cli_sim_options_format(char *buf, size_t len, const struct sim_config *cfg,
			    uint64_t expected_ms, bool seed_varies)
{
	char cost[256] = "";
	size_t o = 0;

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
	if (o < len)
		snprintf(buf + o, len - o, "samples every %llu ms; writes %s; cost model (ns) %s",
			 (unsigned long long)cfg->sample_ms,
			 cfg->spread_writes ? "spread over each snapshot interval (seeded)"
					    : "at snapshot times",
			 cost);
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

static void list_algos(FILE *f)
{
	for (size_t i = 0; i < algo_count(); i++)
		fprintf(f, "%s%s", i ? ", " : "", algo_at(i)->name);
	fputc('\n', f);
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
			fprintf(stderr, "sim: unknown algorithm '%s' in --algos; valid: ", x->base);
			list_algos(stderr);
			rc = EXIT_USAGE;
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

int cmd_compare(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "trace", required_argument, NULL, 't' },
		{ "algos", required_argument, NULL, 'a' },
		{ "set", required_argument, NULL, 's' },
		{ "report", required_argument, NULL, 'R' },
		{ "jobs", required_argument, NULL, 'j' },
		{ "duration-ms", required_argument, NULL, 'd' },
		{ "tail-ms", required_argument, NULL, 'T' },
		{ "sample-ms", required_argument, NULL, 'S' },
		{ "seed", required_argument, NULL, 'r' },
		{ "spread-writes", no_argument, NULL, 'w' },
		{ "cost", required_argument, NULL, 'c' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *trace = cli_default_trace(), *algos = NULL, *dir = NULL;
	const char *sets[CLI_MAX_SETS];
	int nsets = 0, c, li, rc;
	uint64_t jobs = 0;
	bool quiet = false;
	struct cli_sim_opts so;
	struct entry e[MAX_ALGOS];
	struct sim_config cfg[MAX_ALGOS];
	struct sim_job *job = NULL;
	struct plot_run runs[MAX_ALGOS];
	struct trace_mem *tm = NULL;
	struct sp_err err = { 0 };
	struct cli_progress prog;
	size_t n = 0, aliases = 0;
	char options[1024];

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
		case 'a': algos = optarg; break;
		case 'R': dir = optarg; break;
		case 'q': quiet = true; break;
		case 's':
			if (nsets == CLI_MAX_SETS)
				return cli_usage_error("compare", "more than %d --set options", CLI_MAX_SETS);
			sets[nsets++] = optarg;
			break;
		case 'j':
			if (!cli_parse_u64(optarg, &jobs) || jobs == 0 || jobs > 1024)
				goto bad_value;
			break;
		case 'h':
			compare_usage(stdout);
			return EXIT_OK;
		case ':':
			return cli_usage_error("compare", "option '%s' needs a value", argv[optind - 1]);
		default:
			return cli_usage_error("compare", "unknown option '%s'", argv[optind - 1]);
		}
	}
	if (optind < argc)
		return cli_usage_error("compare", "unexpected argument '%s'", argv[optind]);
	if (!algos)
		return cli_usage_error("compare", "--algos is required");
	if (!dir)
		return cli_usage_error("compare", "--report DIR is required");
	rc = parse_algos(algos, e, &n);
	if (rc != EXIT_OK)
		return rc;
	for (size_t i = 0; i < n; i++) {
		sim_config_defaults(&cfg[i], algo_find(e[i].base));
		if (cli_sim_opts_apply(&so, &cfg[i], &err) < 0)
			return cli_fail(&err);
	}
	rc = apply_sets(e, n, cfg, sets, nsets);
	if (rc != EXIT_OK)
		return rc;

	cli_progress_init(&prog, "loading");
	rc = trace_mem_load(&tm, trace, cli_load_progress, &prog, &err);
	cli_progress_done(&prog);
	if (rc < 0)
		return cli_fail(&err);
	job = calloc(n, sizeof(*job));
	if (!job) {
		trace_mem_free(tm);
		fprintf(stderr, "sim: out of memory\n");
		return EXIT_FAIL;
	}
	for (size_t i = 0; i < n; i++) {
		job[i].cfg = cfg[i];
		job[i].name = e[i].label;
		job[i].keep_samples = true;
	}
	cli_tune_malloc_for_threads();
	cli_progress_init(&prog, "comparing");
	rc = sim_parallel_run(tm, job, n, (unsigned)jobs, true, NULL, cli_parallel_progress, &prog, &err);
	cli_progress_done(&prog);
	if (rc == 0) {
		struct plot_compare pc = { .trace_path = trace, .header = trace_mem_header(tm),
					   .options = options, .runs = runs, .nruns = n };

		cli_sim_options_format(options, sizeof(options), &cfg[0], job[0].expected_ms, false);
		for (size_t i = 0; i < n; i++) {
			runs[i] = (struct plot_run){
				.label = e[i].label, .algo = cfg[i].algo, .params = cfg[i].params,
				.colour = e[i].alias ? algo_count() + aliases++ : registry_index(cfg[i].algo),
				.variant = e[i].alias, .times = job[i].times, .samples = job[i].samples,
				.n = job[i].nsamples,
			};
		}
		rc = plot_compare_write(dir, &pc, &err);
	}
	if (rc == 0 && !quiet) {
		uint32_t ps = trace_mem_header(tm)->page_size;

		printf("%-20s %12s %8s %10s %10s %12s\n", "algorithm", "saved MiB", "% oracle",
		       "to 90% s", "CPU s", "COW breaks");
		for (size_t i = 0; i < n; i++) {
			struct plot_summary s;

			plot_summarize(job[i].times, job[i].samples, job[i].nsamples, &s);
			printf("%-20s %12.1f %8.1f %10.1f %10.3f %12lld\n", e[i].label,
			       plot_mib(s.final_saved, ps), s.pct_of_oracle, (double)s.t90_ms / 1000,
			       (double)s.cpu_ns / 1e9, (long long)s.cow_breaks);
		}
		printf("report: %s/index.html\n", dir);
	}
	for (size_t i = 0; i < n; i++)
		sim_job_release(&job[i]);
	free(job);
	trace_mem_free(tm);
	return rc < 0 ? cli_fail(&err) : EXIT_OK;
bad_value:
	return cli_usage_error("compare", "invalid value '%s' for --%s", optarg, opts[li].name);
}
