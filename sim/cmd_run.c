/*
 * cmd_run.c - `sim run` (replay a trace through one algorithm) and
 * `sim list` (the algorithms and their parameters).
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "atomic_file.h"
#include "cli.h"
#include "plot.h"
#include "sim.h"

static void print_param(const struct algo_param *p, int width)
{
	printf("  %-*s default %-8g range [%g, %g]%s\n      %s\n", width, p->name, p->def, p->min, p->max,
	       p->integer ? " integer" : "", p->desc);
}

int cmd_list(int argc, char **argv)
{
	if (argc > 1 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
		puts("usage: sim list\n\nLists every merge algorithm with its description and its parameters\n"
		     "(name, default, range, meaning); set them with 'sim run --set name=value'.");
		return EXIT_OK;
	}
	if (argc > 1)
		return cli_usage_error("list", "unexpected argument '%s'", argv[1]);
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

static void run_usage(FILE *f)
{
	fprintf(f,
		"usage: sim run [--trace FILE] --algo NAME [--set key=value]... [options]\n"
		"\n"
		"Replays a trace through one merge algorithm on a simulated clock and prints\n"
		"what it saved and what it cost; --csv writes the time series.\n"
		"\n"
		"  --trace FILE       trace to replay (default: the bundled sample %s)\n"
		"  --algo NAME        merge algorithm ('sim list' shows them)\n"
		"  --set key=value    set an algorithm parameter; repeatable\n"
		"  --duration-ms N    simulate N ms (default: until --tail-ms after the last snapshot)\n"
		"  --tail-ms N        time to keep simulating after the last snapshot (default 60000)\n"
		"  --sample-ms N      sample the metrics every N ms (default 1000)\n"
		"  --seed N           seed for randomised algorithms and --spread-writes (default 1)\n"
		"  --spread-writes    spread each snapshot's writes uniformly over its interval\n"
		"  --cost SPEC        cost model, e.g. visit=1500,checksum=600,compare=250,\n"
		"                     tree_step=150,merge=3000,cow_break=3500 (ns per operation)\n"
		"  --controller NAME  a control policy that changes tunables over time ('sim list')\n"
		"  --ctl-set key=value  set a control policy parameter; repeatable\n"
		"  --csv OUT          write the time series: time_ms and every metric, one row per sample\n"
		"  --plot OUT         with --csv: plot savings against the oracle (OUT .png or .svg)\n"
		"  -q, --quiet        no summary on stdout\n",
		cli_default_trace());
}

struct run_out {
	FILE *csv;
	struct cli_progress progress;
};

static int write_sample(void *arg, uint64_t time_ms, const struct metrics *m)
{
	struct run_out *o = arg;

	if (!o->csv)
		return 0;
	fprintf(o->csv, "%llu", (unsigned long long)time_ms);
	for (int i = 0; i < METRICS_COUNT; i++)
		fprintf(o->csv, ",%lld", (long long)metrics_get(m, i));
	return fputc('\n', o->csv) == EOF;
}

static void show_progress(void *arg, uint64_t done_ms, uint64_t end_ms)
{
	struct run_out *o = arg;
	char detail[64];

	snprintf(detail, sizeof(detail), "%.1f s simulated", (double)done_ms / 1000);
	if (end_ms)
		cli_progress_update(&o->progress, (double)done_ms / (double)end_ms, detail);
}

static void summary(const char *trace, const struct sim_config *cfg, const struct sim_result *r)
{
	const struct metrics *m = &r->last;
	int64_t saved = metrics_saved(m);
	char params[512];
	double secs = (double)r->end_ms / 1000;

	algo_params_format(cfg->algo, &cfg->params, params, sizeof(params));
	printf("trace       %s: %llu snapshots, %llu page records, %llu page states replayed\n",
	       trace, (unsigned long long)r->snapshots, (unsigned long long)r->records,
	       (unsigned long long)r->page_states);
	printf("algorithm   %s %s\n", cfg->algo->name, params);
	if (cfg->ctl) {
		char cp[512];
		struct algo_ops v = { .name = cfg->ctl->name, .params = cfg->ctl->params,
				      .nparams = cfg->ctl->nparams };

		algo_params_format(&v, &cfg->ctl_params, cp, sizeof(cp));
		printf("controller  %s %s\n", cfg->ctl->name, cp);
	}
	printf("simulated   %.1f s\n", secs);
	printf("saved       %lld pages (%.1f MiB) at the end, peak %lld; oracle %lld pages: %.1f%%\n",
	       (long long)saved, (double)saved * 4096 / (1 << 20), (long long)r->peak_saved,
	       (long long)m->oracle_saving,
	       m->oracle_saving ? 100.0 * (double)saved / (double)m->oracle_saving : 100.0);
	printf("            pages_shared %lld  pages_sharing %lld  ksm_zero_pages %lld  pages_unshared %lld\n",
	       (long long)m->pages_shared, (long long)m->pages_sharing, (long long)m->ksm_zero_pages,
	       (long long)m->pages_unshared);
	printf("cpu         %.3f s estimated scanner CPU (%.2f%% of one core), %lld pages scanned, %lld full scans\n",
	       (double)m->cpu_ns / 1e9, secs > 0 ? (double)m->cpu_ns / 1e7 / secs : 0.0,
	       (long long)m->pages_scanned, (long long)m->full_scans);
	if (m->thp_splits)
		printf("huge pages  %lld split by merges; %lld of their zero subpages freed (thp_zero_pages, no KSM counter shows them)\n",
		       (long long)m->thp_splits, (long long)m->thp_zero_pages);
	printf("cow breaks  %lld\n", (long long)m->cow_breaks);
	printf("profit      %lld bytes (general_profit)\n", (long long)m->general_profit);
}

int cmd_run(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "trace", required_argument, NULL, 't' },
		{ "algo", required_argument, NULL, 'a' },
		{ "set", required_argument, NULL, 's' },
		{ "duration-ms", required_argument, NULL, 'd' },
		{ "tail-ms", required_argument, NULL, 'T' },
		{ "sample-ms", required_argument, NULL, 'S' },
		{ "seed", required_argument, NULL, 'r' },
		{ "spread-writes", no_argument, NULL, 'w' },
		{ "cost", required_argument, NULL, 'c' },
		{ "controller", required_argument, NULL, 'C' },
		{ "ctl-set", required_argument, NULL, 'K' },
		{ "csv", required_argument, NULL, 'o' },
		{ "plot", required_argument, NULL, 'P' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *trace = cli_default_trace(), *algo = NULL, *csv = NULL;
	struct cli_sim_opts so;
	const char *plot = NULL, *ctl = NULL;
	const char *sets[CLI_MAX_SETS], *ctl_sets[CLI_MAX_SETS];
	int nsets = 0, nctl_sets = 0;
	struct sim_config cfg;
	struct sim_result res;
	struct sp_err err = { 0 };
	struct atomic_file af = { 0 };
	struct run_out out = { 0 };
	bool quiet = false;
	int c, li, rc;

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
		case 's':
		case 'K':
			if ((c == 's' ? nsets : nctl_sets) == CLI_MAX_SETS)
				return cli_usage_error("run", "more than %d --%s options", CLI_MAX_SETS, opts[li].name);
			if (c == 's')
				sets[nsets++] = optarg;
			else
				ctl_sets[nctl_sets++] = optarg;
			break;
		case 'o': csv = optarg; break;
		case 'P': plot = optarg; break;
		case 'C': ctl = optarg; break;
		case 'q': quiet = true; break;
		case 'h':
			run_usage(stdout);
			return EXIT_OK;
		case ':':
			return cli_usage_error("run", "option '%s' needs a value", argv[optind - 1]);
		default:
			return cli_usage_error("run", "unknown option '%s'", argv[optind - 1]);
		}
	}
	if (optind < argc)
		return cli_usage_error("run", "unexpected argument '%s'", argv[optind]);
	if (plot && (!strrchr(plot, '.') ||
		     (strcmp(strrchr(plot, '.'), ".png") && strcmp(strrchr(plot, '.'), ".svg"))))
		return cli_usage_error("run", "--plot %s: the file must end in .png or .svg", plot);
	if (plot && !csv)
		return cli_usage_error("run", "--plot needs --csv (the plot is drawn from it)");
	rc = cli_sim_config(&cfg, algo, sets, nsets, ctl, ctl_sets, nctl_sets);
	if (rc != EXIT_OK)
		return rc;
	if (cli_sim_opts_apply(&so, &cfg, &err) < 0)
		return cli_fail(&err);

	if (csv) {
		if (atomic_file_open(&af, csv, 0644, &err) < 0)
			return cli_fail(&err);
		out.csv = af.f;
		fputs("time_ms", out.csv);
		for (int i = 0; i < METRICS_COUNT; i++)
			fprintf(out.csv, ",%s", metrics_names[i]);
		fputc('\n', out.csv);
	}
	cli_progress_init(&out.progress, "simulating");
	rc = sim_run(trace, &cfg, write_sample, show_progress, &out, &res, &err);
	cli_progress_done(&out.progress);
	if (rc == 0 && csv)
		rc = atomic_file_commit(&af, &err);
	else if (csv)
		atomic_file_abort(&af);
	if (rc < 0)
		return cli_fail(&err);
	if (!quiet)
		summary(trace, &cfg, &res);
	if (plot) {
		char title[128];

		snprintf(title, sizeof(title), "%s on %s", cfg.algo->name, strrchr(trace, '/') ? strrchr(trace, '/') + 1 : trace);
		if (plot_timeseries(csv, plot, title, &err) < 0)
			return cli_fail(&err);
	}
	return EXIT_OK;
bad_value:
	return cli_usage_error("run", "invalid value '%s' for --%s", optarg, opts[li].name);
}
