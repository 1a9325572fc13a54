/*
 * cmd_plan.c - `sim plan`: from a trace and a host to a decision an
 * operator can deploy (sim/plan.h does the work): the report directory
 * (plots/plan_report.h), the answers on stdout, and with --config a
 * samepaged configuration that applies the choice.
 *
 * With --guests N the trace is first replicated to N guests
 * (traces/transform.h) into a temporary file beside nothing else: it is
 * decoded into memory and removed at once.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "parallel.h"
#include "plan.h"
#include "transform.h"

struct plan_opts {
	const char *trace, *report, *config, *cost, *kernel;
	double host_mem, host_used, swap, budget, settle, tie;
	uint64_t horizon_s, tail_ms, sample_ms, jobs;
	uint32_t guests, nodes;
	bool quiet, no_policies;
};

static const struct cli_opt plan_table[] = {
	CLI_TRACE_OPT(struct plan_opts, trace),
	{ .name = "report", .type = CLI_PATH, .offset = offsetof(struct plan_opts, report),
	  .metavar = "DIR", .required = true,
	  .help = "write the report: DIR/index.html, DIR/plan.csv (every setting evaluated), plots" },
	{ .name = "config", .type = CLI_PATH, .offset = offsetof(struct plan_opts, config),
	  .metavar = "OUT", .help = "write a samepaged configuration (KEY=VALUE) that applies the choice" },
	{ .name = "host-mem-mib", .type = CLI_DOUBLE, .offset = offsetof(struct plan_opts, host_mem),
	  .metavar = "N", .dmin = 0, .dmax = 1e9,
	  .help = "host memory (MemTotal), MiB; without it no swap verdict (ksmtuned then\n"
		  "assumes 16384)" },
	{ .name = "host-used-mib", .type = CLI_DOUBLE, .offset = offsetof(struct plan_opts, host_used),
	  .metavar = "N", .dmin = 0, .dmax = 1e9,
	  .help = "host memory used by other than the guests, MiB (default {})" },
	{ .name = "swap-mib", .type = CLI_DOUBLE, .offset = offsetof(struct plan_opts, swap),
	  .metavar = "N", .dmin = 0, .dmax = 1e9, .help = "swap space, MiB (default {})" },
	{ .name = "cpu-budget", .type = CLI_DOUBLE, .offset = offsetof(struct plan_opts, budget),
	  .metavar = "PCT", .dmin = 0.001, .dmax = 100,
	  .help = "mean scanner CPU allowed over the horizon, % of one core (default {})" },
	{ .name = "settle-s", .type = CLI_DOUBLE, .offset = offsetof(struct plan_opts, settle),
	  .metavar = "S", .dmin = 0, .dmax = 1e9,
	  .help = "want 90% of the savings within S seconds of the start (default: no limit)" },
	{ .name = "horizon-s", .type = CLI_U64, .offset = offsetof(struct plan_opts, horizon_s),
	  .metavar = "S", .min = 1, .max = 100000000,
	  .help = "simulate S seconds (default: until --tail-ms after the last snapshot)" },
	{ .name = "tail-ms", .type = CLI_U64, .offset = offsetof(struct plan_opts, tail_ms),
	  .metavar = "N", .max = CLI_MAX_SIM_MS,
	  .help = "without --horizon-s: time simulated after the last snapshot (default {})" },
	{ .name = "sample-ms", .type = CLI_U64, .offset = offsetof(struct plan_opts, sample_ms),
	  .metavar = "N", .min = 1, .max = CLI_MAX_SIM_MS,
	  .help = "sample the metrics every N ms: the resolution of time to 90% (default {})" },
	{ .name = "tie-pct", .type = CLI_DOUBLE, .offset = offsetof(struct plan_opts, tie),
	  .metavar = "P", .dmin = 0, .dmax = 50,
	  .help = "savings within P% of the most count as a tie, broken by time to 90%\n"
		  "then CPU (default {})" },
	{ .name = "guests", .type = CLI_U32, .offset = offsetof(struct plan_opts, guests),
	  .metavar = "N", .min = 1, .max = TRACE_MAX_GUESTS,
	  .help = "plan for N guests made from the recorded ones (sim trace replicate)" },
	{ .name = "nodes", .type = CLI_U32, .offset = offsetof(struct plan_opts, nodes),
	  .metavar = "N", .min = 1, .max = TRACE_MAX_NODE + 1,
	  .help = "with --guests: spread the guests over N NUMA nodes" },
	{ .name = "no-policies", .type = CLI_FLAG, .offset = offsetof(struct plan_opts, no_policies),
	  .help = "evaluate fixed settings only (not ksmtuned, advisor)" },
	CLI_JOBS_OPT(struct plan_opts, jobs),
	{ .name = "cost", .type = CLI_STRING, .offset = offsetof(struct plan_opts, cost),
	  .metavar = "SPEC", .show = cli_show_cost,
	  .help = "cost model in ns per operation; any subset of the defaults:\n{}" },
	{ .name = "kernel", .type = CLI_STRING, .offset = offsetof(struct plan_opts, kernel),
	  .metavar = "VERSION",
	  .help = CLI_SIM_KERNEL_HELP " (default: the newest); a tunable\n"
		  "or policy the version lacks is not searched (smart_scan before 6.7,\n"
		  "the advisor before 6.8)" },
	CLI_QUIET_OPT(struct plan_opts, quiet, "no answers on stdout"),
	{ 0 },
};

static const struct cli_spec plan_spec = {
	.prog = CLI_PROG,
	.name = "plan",
	.usage = "[--trace FILE] --report DIR [--config OUT] [--host-mem-mib N]\n"
		 "[--host-used-mib N] [--swap-mib N] [--cpu-budget PCT] [--settle-s S] [options]",
	.about = "Searches KSM's tunables (pages_to_scan, sleep_millisecs, smart_scan, use_zero_pages,\n"
		 "max_page_sharing, merge_across_nodes) and the control policies (fixed settings,\n"
		 "ksmtuned, advisor) for the frontier of memory saved against CPU and time to 90%,\n"
		 "picks the setting that saves the most within the CPU budget and settle time, and\n"
		 "answers: how much, with which settings, at what CPU, how soon, how much swap the\n"
		 "host needs if every merged page unshares, and (several NUMA nodes) whether\n"
		 "merge_across_nodes=0 is worth it.  Exit 1 if no setting meets the constraints.",
	.opts = plan_table,
};

struct plan_cmd {
	struct plan_opts o;
	struct sim_plan_opts po;
	struct sim_plan plan;
	struct trace_mem *tm;
	char tmp[4096];        /* the replicated trace while it exists */
	char note[256];
	struct cli_progress prog;
	struct sp_err err;
};

static void plan_progress(void *arg, uint64_t done, uint64_t total)
{
	struct plan_cmd *c = arg;
	char detail[64];

	snprintf(detail, sizeof(detail), "%llu runs", (unsigned long long)(total / 1000));
	if (total)
		cli_progress_update(&c->prog, (double)done / (double)total, detail);
}

static int plan_parse(struct plan_cmd *c, int argc, char **argv)
{
	struct sim_plan_opts d;
	int rc;

	sim_plan_opts_defaults(&d);
	c->o.trace = cli_default_trace();
	c->o.host_used = 1024;
	c->o.budget = d.cpu_budget_pct;
	c->o.tie = d.tie_pct;
	c->o.tail_ms = d.tail_ms;
	c->o.sample_ms = d.sample_ms;
	rc = cli_parse_args(&plan_spec, argc, argv, &c->o);
	if (rc != CLI_GO)
		return rc;
	if (c->o.nodes && !c->o.guests)
		return cli_usage_error("plan", "--nodes goes with --guests");
	return CLI_GO;
}

static int plan_prepare(struct plan_cmd *c)
{
	const struct plan_opts *o = &c->o;
	const char *trace = o->trace;
	int rc = 0;

	sim_plan_opts_defaults(&c->po);
	c->po.host_mem_mib = o->host_mem;
	c->po.host_used_mib = o->host_used;
	c->po.swap_mib = o->swap;
	c->po.cpu_budget_pct = o->budget;
	c->po.settle_s = o->settle;
	c->po.tie_pct = o->tie;
	c->po.horizon_ms = o->horizon_s * 1000;
	c->po.tail_ms = o->tail_ms;
	c->po.sample_ms = o->sample_ms;
	c->po.threads = (unsigned)o->jobs;
	c->po.policies = !o->no_policies;
	if (cli_cost_resolve(&c->po.cost, c->po.cost_from, sizeof(c->po.cost_from), o->cost, &c->err) < 0)
		return cli_fail(&c->err);
	if (o->kernel && algo_kernel_parse(&c->po.kernel, o->kernel, &c->err) < 0)
		return cli_fail(&c->err);
	if (o->guests) {
		struct trace_replicate_opts ro = { .guests = o->guests, .nodes = (uint16_t)o->nodes };
		const char *dir = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
		int fd;

		snprintf(c->tmp, sizeof(c->tmp), "%s/sim-plan-XXXXXX", dir);
		fd = mkstemp(c->tmp);
		if (fd < 0) {
			c->tmp[0] = '\0';
			sp_err_set(&c->err, SP_EIO, "%s: cannot create a temporary trace", dir);
			return cli_fail(&c->err);
		}
		close(fd);
		rc = trace_replicate(o->trace, c->tmp, &ro, &c->err);
		trace = c->tmp;
		if (rc == 0)
			snprintf(c->note, sizeof(c->note), "replicated to %u guests from the recording%s "
				 "(common content shared by all copies, private content per copy)",
				 o->guests, o->nodes ? ", spread over the nodes" : "");
	}
	if (rc < 0) {
		unlink(c->tmp);
		return cli_fail(&c->err);
	}
	rc = cli_load_trace(&c->tm, trace);
	if (c->tmp[0])
		unlink(c->tmp); /* decoded: the replica is no longer needed */
	return rc;
}

static int plan_run(struct plan_cmd *c)
{
	int rc;

	cli_tune_malloc_for_threads();
	cli_progress_init(&c->prog, "planning");
	rc = sim_plan_run(c->tm, &c->po, plan_progress, c, &c->plan, &c->err);
	cli_progress_done(&c->prog);
	return rc < 0 ? cli_fail(&c->err) : EXIT_OK;
}

static void print_answers(const struct plan_cmd *c, const struct plot_plan *pl)
{
	const struct trace_header *h = trace_mem_header(c->tm);
	const struct plot_plan_swap *sw = &pl->swap;
	static const char *const verdict[] = { "unknown (give --host-mem-mib)", "safe",
					      "swap needed", "unsafe" };

	if (pl->chosen == SIZE_MAX) {
		printf("no setting meets the constraints (%.1f%% of one core%s): see the report\n",
		       pl->cpu_budget_pct, pl->settle_s > 0 ? " and the settle time" : "");
	} else {
		const struct plot_plan_point *p = &pl->points[pl->chosen];
		char params[512];

		algo_params_format_for(&c->po.kernel, algo_find("ksm"), &p->params, params,
				       sizeof(params));
		printf("choice      %s%s%s%s\n            %s\n", plot_plan_policy_name(p->policy),
		       p->ctl_params[0] ? " (" : "", p->ctl_params, p->ctl_params[0] ? ")" : "", params);
		printf("saves       %.1f MiB at the end (%.1f%% of present guest memory), peak %.1f MiB\n",
		       plot_mib(p->s.final_saved, h->page_size),
		       plot_pct_of_present((double)p->s.final_saved, (double)p->s.present),
		       plot_mib(p->s.peak_saved, h->page_size));
		printf("cpu         %.2f%% of one core on average (budget %.1f%%); costs: %s\n", p->cpu_pct,
		       pl->cpu_budget_pct, c->po.cost_from);
		printf("90%% after   %.1f s\n", (double)p->s.t90_ms / 1000);
		if (pl->tied)
			printf("ties        %zu other setting%s saved within %.1f%%: the tie went to the "
			       "soonest, then the cheapest\n", pl->tied, pl->tied == 1 ? "" : "s", pl->tie_pct);
	}
	printf("swap        %s", verdict[sw->verdict]);
	if (sw->verdict == PLOT_PLAN_SWAP_NEEDED)
		printf(": %.0f MiB of swap needed, %.0f MiB present", sw->swap_needed_mib, sw->swap_mib);
	else if (sw->verdict == PLOT_PLAN_UNSAFE)
		printf(": %.0f MiB short of RAM + swap for the committed memory", sw->swap_short_mib);
	printf("; worst-case unshare %.1f MiB\n", sw->unshare_mib);
	if (pl->numa.nodes > 1)
		printf("numa        %s\n", pl->numa.reason);
}

static int plan_report(struct plan_cmd *c)
{
	const struct sim_plan *p = &c->plan;
	char options[2048], source[600], cfgnote[160] = "";
	struct plot_plan pl = {
		.trace_path = c->o.trace,
		.header = trace_mem_header(c->tm),
		.options = options,
		.source_note = c->note[0] ? c->note : NULL,
		.cpu_budget_pct = c->po.cpu_budget_pct,
		.settle_s = c->po.settle_s,
		.tie_pct = c->po.tie_pct,
		.points = p->points,
		.npoints = p->n,
		.chosen = p->chosen,
		.tied = p->tied,
		.best_fixed = p->best_fixed,
		.swap = p->swap,
		.numa = p->numa,
		.runs = p->runs,
	};
	struct sim_config cfg;
	int rc = 0;

	if (sim_plan_config(&p->points[0], &c->po, &cfg, &c->err) == 0)
		cli_sim_options_format(options, sizeof(options), &cfg,
				       sim_expected_end_ms(c->tm, &cfg), false);
	else
		snprintf(options, sizeof(options), "(unknown)");
	if (c->o.config && p->chosen != SIZE_MAX) {
		const struct plot_plan_point *pt = &p->points[p->chosen];
		int mac = -1;

		if (p->numa.nodes > 1 && p->numa.reason[0]) {
			mac = p->numa.recommend;
			if (mac != (int)pt->params.v[algo_param_index(algo_find("ksm"), "merge_across_nodes")])
				snprintf(cfgnote, sizeof(cfgnote), "with merge_across_nodes=%d as the NUMA "
					 "section recommends", mac);
		}
		snprintf(source, sizeof(source), "sim plan on %s: %.1f MiB saved at %.2f%% CPU",
			 c->o.trace, plot_mib(pt->s.final_saved, pl.header->page_size), pt->cpu_pct);
		rc = sim_plan_write_config_for(c->o.config, pt, mac, &c->po.kernel, source, &c->err);
		if (rc == 0) {
			pl.config_path = c->o.config;
			pl.config_note = cfgnote[0] ? cfgnote : NULL;
		}
	}
	if (rc == 0)
		rc = plot_plan_write(c->o.report, &pl, &c->err);
	if (rc < 0)
		return cli_fail(&c->err);
	if (!c->o.quiet) {
		print_answers(c, &pl);
		if (pl.config_path)
			printf("config      %s\n", pl.config_path);
		printf("report      %s/index.html (%zu settings, %llu simulations)\n", c->o.report, p->n,
		       (unsigned long long)p->runs);
	}
	if (p->chosen == SIZE_MAX) {
		fprintf(stderr, "sim: plan: no setting meets the constraints%s\n",
			c->o.config ? "; no configuration written" : "");
		return EXIT_FAIL;
	}
	return EXIT_OK;
}

int cmd_plan(int argc, char **argv)
{
	struct plan_cmd *c = cli_calloc(sizeof(*c));
	int rc;

	if (!c)
		return EXIT_FAIL;
	rc = plan_parse(c, argc, argv);
	if (rc == CLI_GO) {
		rc = plan_prepare(c);
		if (rc == EXIT_OK)
			rc = plan_run(c);
		if (rc == EXIT_OK)
			rc = plan_report(c);
	}
	sim_plan_release(&c->plan);
	trace_mem_free(c->tm);
	free(c);
	return rc;
}
