/*
 * plan_report.c - implements the report of `sim plan` (plan_report.h):
 * plan.csv (every point evaluated), plan.gp with the frontier plots, and
 * index.html, which answers the operator's questions first - how much,
 * with which settings, at what CPU, how soon, how much swap, which NUMA
 * mode, what to deploy - in sentences with numbers, then shows the
 * frontier with the chosen point marked, the swap and NUMA sections.
 *
 * Order of writing, as for the other reports: index.html is removed first
 * and written last, so a directory holding it holds a complete report.
 */
#define _GNU_SOURCE
#include "plan_report.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "atomic_file.h"
#include "report_util.h"

const char plot_plan_header[] =
	"point,round,policy,pages_to_scan,sleep_millisecs,smart_scan,use_zero_pages,"
	"max_page_sharing,merge_across_nodes,policy_params,final_saved_pages,final_saved_mib,"
	"saved_pct_of_present,peak_saved_pages,time_to_90pct_s,cpu_s,cpu_pct_of_core,cow_breaks,"
	"remote_sharers,full_scans,stopped_s,feasible,frontier,chosen,note";

static const char *const policy_names[PLOT_PLAN__COUNT] = { "fixed", "ksmtuned", "advisor" };

const char *plot_plan_policy_name(enum plot_plan_policy p)
{
	return (unsigned)p < PLOT_PLAN__COUNT ? policy_names[p] : "?";
}

/* Indices of ksm's searched tunables (-1 if missing). */
struct kidx {
	const struct algo_ops *a;
	int p2s, sleep, smart, zero, mps, mac;
};

static void kidx_init(struct kidx *k)
{
	k->a = algo_find("ksm");
	k->p2s = k->a ? algo_param_index(k->a, "pages_to_scan") : -1;
	k->sleep = k->a ? algo_param_index(k->a, "sleep_millisecs") : -1;
	k->smart = k->a ? algo_param_index(k->a, "smart_scan") : -1;
	k->zero = k->a ? algo_param_index(k->a, "use_zero_pages") : -1;
	k->mps = k->a ? algo_param_index(k->a, "max_page_sharing") : -1;
	k->mac = k->a ? algo_param_index(k->a, "merge_across_nodes") : -1;
}

static double kv(const struct plot_plan_point *p, int i)
{
	return i >= 0 ? p->params.v[i] : NAN;
}

/* "pages_to_scan=N sleep_millisecs=M ..." or "ksmtuned (...) with ..." */
static void describe(char *buf, size_t len, const struct plot_plan_point *p, const struct kidx *k)
{
	size_t o = 0;

	if (p->policy == PLOT_PLAN_FIXED)
		o += (size_t)snprintf(buf, len, "pages_to_scan=%g sleep_millisecs=%g ", kv(p, k->p2s),
				      kv(p, k->sleep));
	else if (p->policy == PLOT_PLAN_ADVISOR)
		o += (size_t)snprintf(buf, len, "advisor%s%s%s sleep_millisecs=%g ", p->ctl_params[0] ? " (" : "",
				      p->ctl_params, p->ctl_params[0] ? ")" : "", kv(p, k->sleep));
	else
		o += (size_t)snprintf(buf, len, "ksmtuned%s%s%s ", p->ctl_params[0] ? " (" : "",
				      p->ctl_params, p->ctl_params[0] ? ")" : "");
	if (o < len)
		snprintf(buf + o, len - o, "smart_scan=%g use_zero_pages=%g max_page_sharing=%g "
			 "merge_across_nodes=%g", kv(p, k->smart), kv(p, k->zero), kv(p, k->mps),
			 kv(p, k->mac));
}

static void fmt_mib(char *buf, size_t len, double mib)
{
	if (fabs(mib) >= 1024)
		snprintf(buf, len, "%.2f GiB", mib / 1024);
	else
		snprintf(buf, len, "%.1f MiB", mib);
}

/* ---- plan.csv --------------------------------------------------------------- */

static int write_csv(const char *dir, const struct plot_plan *pl, const struct kidx *k,
		     struct sp_err *err)
{
	uint32_t ps = pl->header->page_size;
	struct atomic_file af;
	int rc = rep_open(&af, dir, "plan.csv", err);

	if (rc < 0)
		return rc;
	fprintf(af.f, "%s\n", plot_plan_header);
	for (size_t i = 0; i < pl->npoints; i++) {
		const struct plot_plan_point *p = &pl->points[i];

		fprintf(af.f, "%zu,%u,%s,%g,%g,%g,%g,%g,%g,", i, p->round, plot_plan_policy_name(p->policy),
			kv(p, k->p2s), kv(p, k->sleep), kv(p, k->smart), kv(p, k->zero), kv(p, k->mps),
			kv(p, k->mac));
		rep_csv_text(af.f, p->ctl_params);
		fprintf(af.f, ",%lld,%.3f,%.2f,%lld,", (long long)p->s.final_saved,
			plot_mib(p->s.final_saved, ps),
			plot_pct_of_present((double)p->s.final_saved, (double)p->s.present),
			(long long)p->s.peak_saved);
		if (plot_settled(&p->s))
			fprintf(af.f, "%.3f", (double)p->s.t90_ms / 1000);
		fprintf(af.f, ",%.4f,%.3f,%lld,%lld,%lld,%.3f,%d,%d,%d,", (double)p->s.cpu_ns / 1e9,
			p->cpu_pct, (long long)p->s.cow_breaks, (long long)p->s.remote_sharers,
			(long long)p->s.full_scans, (double)p->stopped_ms / 1000, p->feasible,
			p->frontier, i == pl->chosen);
		rep_csv_text(af.f, plot_never_reason(&p->s));
		fputc('\n', af.f);
	}
	return atomic_file_commit(&af, err);
}

/* ---- plan.gp ------------------------------------------------------------------ */

static const char *const plan_plots[] = { "plan_frontier", "plan_t90" };
#define NPPLOTS (sizeof(plan_plots) / sizeof(plan_plots[0]))

/* The frontier's points (front, nf of them) sorted by CPU. */
static void frontier_by_cpu(const struct plot_plan *pl, size_t *front, size_t *nf)
{
	*nf = 0;
	for (size_t i = 0; i < pl->npoints; i++)
		if (pl->points[i].frontier)
			front[(*nf)++] = i;
	for (size_t a = 1; a < *nf; a++) /* by CPU */
		for (size_t c = a; c > 0 && pl->points[front[c]].cpu_pct <
						 pl->points[front[c - 1]].cpu_pct; c--) {
			size_t t = front[c];

			front[c] = front[c - 1];
			front[c - 1] = t;
		}
}

/* The data blocks $settled, $never, $front (by CPU) and $chosen: "cpu_pct saved_mib t90_s" rows. */
static void gp_blocks(FILE *f, const struct plot_plan *pl, const size_t *front, size_t nf)
{
	uint32_t ps = pl->header->page_size;

	/* a block is never empty: a NaN row stands in for none */
	for (int b = 0; b < 4; b++) {
		static const char *const name[4] = { "$settled", "$never", "$front", "$chosen" };

		fprintf(f, "%s << EOD\nNaN NaN NaN\n", name[b]);
		for (size_t q = 0; q < (b == 2 ? nf : pl->npoints); q++) {
			size_t i = b == 2 ? front[q] : q;
			const struct plot_plan_point *p = &pl->points[i];
			bool settled = plot_settled(&p->s);

			if ((b == 0 && !settled) || (b == 1 && settled) || (b == 3 && i != pl->chosen))
				continue;
			fprintf(f, "%.6g %.6g ", p->cpu_pct, plot_mib(p->s.final_saved, ps));
			if (settled)
				fprintf(f, "%.6g\n", (double)p->s.t90_ms / 1000);
			else
				fputs("NaN\n", f);
		}
		fputs("EOD\n", f);
	}
}

static int write_gp(const char *dir, const struct plot_plan *pl, struct sp_err *err)
{
	struct atomic_file af;
	size_t *front, nf = 0;
	int rc;

	front = calloc(pl->npoints + 1, sizeof(*front));
	if (!front)
		return sp_err_set(err, SP_ENOMEM, "out of memory");
	rc = rep_open(&af, dir, "plan.gp", err);
	if (rc < 0) {
		free(front);
		return rc;
	}
	FILE *f = af.f;

	fputs("# plan.gp - the plots of this plan, written by `sim plan`.\n"
	      "# Rerun in this directory: gnuplot plan.gp\n"
	      "if (!exists('sfx')) sfx = ''\n"
	      "set grid\nset key outside right top vertical box opaque\n"
	      "set offsets graph 0.03, graph 0.03, graph 0.06, graph 0.03\n"
	      "# columns: cpu_pct saved_mib t90_s (NaN: never)\n", f);
	frontier_by_cpu(pl, front, &nf);
	gp_blocks(f, pl, front, nf);
	fprintf(f, "budget = %.6g\n", pl->cpu_budget_pct);
	fputs("do for [fmt in 'png svg'] {\n"
	      "  if (fmt eq 'png') { set terminal pngcairo size 1280,720 font 'Sans,12' noenhanced }"
	      " else { set terminal svg size 960,540 dynamic background rgb 'white' font 'Sans,13' noenhanced }\n"
	      "  set output 'plan_frontier.'.fmt.sfx\n"
	      "  set title 'Memory saved against scanner CPU: every setting evaluated'\n"
	      "  set xlabel 'scanner CPU, mean % of one core (log scale)'\n"
	      "  set ylabel 'memory saved at the end (MiB)'\n"
	      "  set logscale x\n"
	      "  set arrow 1 from budget, graph 0 to budget, graph 1 nohead lw 2 dt 2 lc rgb '#9a6700'\n"
	      "  set label 1 'CPU budget' at budget, graph 0.04 offset 0.5,0 tc rgb '#9a6700'\n"
	      "  plot $settled using 1:2 with points pt 6 ps 1.1 lc rgb '#888888' title 'settled', \\\n"
	      "       $never using 1:2 with points pt 2 ps 1.1 lc rgb '#cccccc' title 'never settled', \\\n"
	      "       $front using 1:2 with linespoints lw 2 pt 7 ps 1.2 lc rgb '#d62728' title 'frontier', \\\n"
	      "       $chosen using 1:2 with points pt 3 ps 4 lw 3 lc rgb '#1f77b4' title 'chosen'\n"
	      "  unset arrow 1\n  unset label 1\n"
	      "  set output 'plan_t90.'.fmt.sfx\n"
	      "  set title 'Memory saved against time to 90% of it (settled settings)'\n"
	      "  set xlabel 'time to 90% of the final savings (s, log scale)'\n"
	      "  plot $settled using 3:2 with points pt 6 ps 1.1 lc rgb '#888888' title 'settled', \\\n"
	      "       $front using 3:2 with points pt 7 ps 1.2 lc rgb '#d62728' title 'frontier', \\\n"
	      "       $chosen using 3:2 with points pt 3 ps 4 lw 3 lc rgb '#1f77b4' title 'chosen'\n"
	      "  unset logscale x\n"
	      "  unset output\n}\n", f);
	free(front);
	return atomic_file_commit(&af, err);
}

/* ---- index.html ------------------------------------------------------------------ */

static void point_row(FILE *f, const struct plot_plan *pl, size_t i, const struct kidx *k)
{
	const struct plot_plan_point *p = &pl->points[i];
	uint32_t ps = pl->header->page_size;
	char d[512];

	describe(d, sizeof(d), p, k);
	fprintf(f, "<tr%s><td>%zu</td><td class=\"l mono\">", i == pl->chosen ? " class=\"best\"" : "", i);
	rep_html(f, d);
	fprintf(f, "</td><td>%.1f</td><td>%.1f</td>", plot_mib(p->s.final_saved, ps),
		plot_pct_of_present((double)p->s.final_saved, (double)p->s.present));
	if (plot_settled(&p->s)) {
		fprintf(f, "<td>%.1f</td>", (double)p->s.t90_ms / 1000);
	} else {
		fputs("<td class=\"never\">never (", f);
		rep_html(f, plot_never_reason(&p->s));
		fputs(")</td>", f);
	}
	fprintf(f, "<td>%.2f</td><td>%.3f</td><td>%lld</td>", p->cpu_pct, (double)p->s.cpu_ns / 1e9,
		(long long)p->s.cow_breaks);
	if (pl->numa.nodes > 1)
		fprintf(f, "<td>%lld</td>", (long long)p->s.remote_sharers);
	fprintf(f, "<td>%s%s%s</td></tr>\n", i == pl->chosen ? "chosen " : "",
		p->feasible ? "feasible" : "", p->frontier ? " &#9733;" : "");
}

static void table_head(FILE *f, const struct plot_plan *pl)
{
	fputs("<table>\n<tr><th>point</th><th class=\"l\">settings</th><th>saved (MiB)</th>"
	      "<th>% of present</th><th>time to 90% (s)</th><th>CPU (% of a core)</th>"
	      "<th>CPU (s)</th><th>COW breaks</th>", f);
	if (pl->numa.nodes > 1)
		fputs("<th>remote sharers</th>", f);
	fputs("<th></th></tr>\n", f);
}

/* How much, with which settings, at what CPU, how soon: the chosen point, or why there is none. */
static void answer_chosen(FILE *f, const struct plot_plan *pl, const struct kidx *k)
{
	uint32_t ps = pl->header->page_size;
	const struct plot_plan_point *p;
	char a[32], b[32], c[32], d[512];

	if (pl->chosen == SIZE_MAX) {
		fprintf(f, "<li class=\"bad\"><b>No setting meets the constraints</b>: none of the %zu "
			   "settings evaluated settled within %.1f%% of one core", pl->npoints,
			pl->cpu_budget_pct);
		if (pl->settle_s > 0)
			fprintf(f, " and %.0f s", pl->settle_s);
		fputs(". Raise --cpu-budget, relax --settle-s or simulate longer (--horizon-s); the "
		      "table below shows what each setting did.</li>\n", f);
		return;
	}
	p = &pl->points[pl->chosen];
	fmt_mib(a, sizeof(a), plot_mib(p->s.final_saved, ps));
	fmt_mib(b, sizeof(b), plot_mib(p->s.oracle_final, ps));
	fmt_mib(c, sizeof(c), plot_mib(p->s.peak_saved, ps));
	fprintf(f, "<li><b>How much will KSM save?</b> <b>%s</b>, %.1f%% of the guests' present "
		   "memory and %.1f%% of the %s that any merger could save at the end (peak %s).</li>\n",
		a, plot_pct_of_present((double)p->s.final_saved, (double)p->s.present),
		p->s.pct_of_oracle, b, c);
	describe(d, sizeof(d), p, k);
	fputs("<li><b>With which settings?</b> <code>", f);
	rep_html(f, d);
	fprintf(f, "</code> (%s", p->policy == PLOT_PLAN_FIXED ? "fixed settings" : "a control policy");
	if (pl->tied)
		fprintf(f, "; %zu other feasible setting%s saved within %.1f%% of it: a tie, "
			   "broken by time to 90%%, then CPU", pl->tied, pl->tied == 1 ? "" : "s",
			pl->tie_pct);
	fputs(").</li>\n", f);
	fprintf(f, "<li><b>At what CPU cost?</b> %.2f%% of one core on average (%.3f s of scanner "
		   "CPU over %.0f simulated seconds), within the budget of %.1f%%.</li>\n",
		p->cpu_pct, (double)p->s.cpu_ns / 1e9, (double)p->s.end_ms / 1000,
		pl->cpu_budget_pct);
	fprintf(f, "<li><b>How soon?</b> 90%% of the savings after <b>%.1f s</b>", (double)p->s.t90_ms / 1000);
	if (pl->settle_s > 0)
		fprintf(f, " (wanted within %.0f s)", pl->settle_s);
	fputs(".</li>\n", f);
	if (p->stopped_ms)
		fprintf(f, "<li>The policy kept KSM stopped for %.0f of the %.0f s.</li>\n",
			(double)p->stopped_ms / 1000, (double)p->s.end_ms / 1000);
}

/* How much swap: the verdict with the committed memory and the worst-case unshare. */
static void answer_swap(FILE *f, const struct plot_plan_swap *sw)
{
	char a[32], b[32];

	fmt_mib(a, sizeof(a), sw->committed_mib);
	fmt_mib(b, sizeof(b), sw->unshare_mib);
	switch (sw->verdict) {
	case PLOT_PLAN_UNKNOWN:
		fprintf(f, "<li><b>How much swap?</b> Give the host's memory (--host-mem-mib, "
			   "--host-used-mib, --swap-mib) for a verdict. The guests commit %s; if every "
			   "merged page unshared, %s more would be needed.</li>\n", a, b);
		break;
	case PLOT_PLAN_SAFE:
		fprintf(f, "<li class=\"ok\"><b>How much swap? None: safe.</b> The host's own use plus the "
			   "guests' committed %s fit in RAM even without KSM, so every merged page (%s) "
			   "may unshare at once.</li>\n", a, b);
		break;
	case PLOT_PLAN_SWAP_NEEDED:
		fprintf(f, "<li class=\"warn\"><b>How much swap? %.0f MiB needed</b> (you have %.0f MiB: "
			   "enough). Without KSM the committed %s do not fit in RAM; if every merged page "
			   "(%s) unshared, the excess goes to swap.</li>\n",
			sw->swap_needed_mib, sw->swap_mib, a, b);
		break;
	case PLOT_PLAN_UNSAFE:
		fprintf(f, "<li class=\"bad\"><b>How much swap? Unsafe: %.0f MiB short.</b> The host's "
			   "use plus the committed %s exceed RAM + swap by %.0f MiB: add that much swap "
			   "(%.0f MiB in all) or commit less, or an unshare storm (%s) ends in the OOM "
			   "killer.</li>\n",
			sw->swap_short_mib, a, sw->swap_short_mib, sw->swap_needed_mib, b);
		break;
	}
}

static void answers(FILE *f, const struct plot_plan *pl, const struct kidx *k)
{
	fputs("<h2>Answers</h2>\n<ul class=\"answers\">\n", f);
	answer_chosen(f, pl, k);
	answer_swap(f, &pl->swap);
	if (pl->numa.nodes > 1) {
		fputs("<li><b>merge_across_nodes?</b> ", f);
		rep_html(f, pl->numa.reason[0] ? pl->numa.reason : "not compared (nothing was feasible)");
		fputs("</li>\n", f);
	}
	if (pl->config_path) {
		fputs("<li><b>What to deploy?</b> The samepaged configuration <code>", f);
		rep_html(f, pl->config_path);
		fputs("</code> applies the choice", f);
		if (pl->config_note) {
			fputs(" (", f);
			rep_html(f, pl->config_note);
			fputs(")", f);
		}
		fputs(".</li>\n", f);
	}
	fputs("</ul>\n", f);
}

/* The table under the title: guests, how they were sized, constraints, simulation. */
static void html_setup(FILE *f, const struct plot_plan *pl)
{
	const struct trace_header *h = pl->header;
	char buf[128];

	fmt_mib(buf, sizeof(buf), pl->swap.committed_mib);
	fprintf(f, "<tr><td>guests</td><td>%u guests, %s committed</td></tr>\n",
		h->nguests, buf);
	if (pl->source_note) {
		fputs("<tr><td>sized</td><td>", f);
		rep_html(f, pl->source_note);
		fputs("</td></tr>\n", f);
	}
	fprintf(f, "<tr><td>constraints</td><td>CPU budget %.1f%% of one core (mean over the run)",
		pl->cpu_budget_pct);
	if (pl->settle_s > 0)
		fprintf(f, "; 90%% of the savings within %.0f s", pl->settle_s);
	fprintf(f, "; savings within %.1f%% of the best count as a tie</td></tr>\n", pl->tie_pct);
	fputs("<tr><td>simulation</td><td>", f);
	rep_html(f, pl->options);
	fputs("</td></tr>\n</table>\n", f);
}

/* The plots, the counts, and the frontier's settings (the chosen one first if off it). */
static void html_frontier(FILE *f, const struct plot_plan *pl, const struct kidx *k)
{
	static const char *const captions[NPPLOTS] = {
		"Every setting evaluated: memory saved at the end against mean scanner CPU. Red: the "
		"frontier (no other settled setting saves as much for as little CPU and as soon); "
		"blue: the chosen one; dashed: the CPU budget; crosses: settings that never settled.",
		"Memory saved against the time to 90% of it, for the settings that settled.",
	};
	size_t nf = 0, nfeas = 0, nnever = 0;

	for (size_t i = 0; i < pl->npoints; i++) {
		nf += pl->points[i].frontier;
		nfeas += pl->points[i].feasible;
		nnever += !plot_settled(&pl->points[i].s);
	}
	rep_html_figures(f, "Frontier", plan_plots, captions, NPPLOTS);
	fprintf(f, "<p>%zu settings evaluated in %llu simulations (a coarse grid refined around the "
		   "frontier; fixed settings, ksmtuned and the advisor): %zu feasible, %zu on the frontier, "
		   "%zu never settled (they saved nothing or were still merging at the end, so they are "
		   "neither feasible nor on the frontier).</p>\n",
		pl->npoints, (unsigned long long)pl->runs, nfeas, nf, nnever);
	table_head(f, pl);
	if (pl->chosen != SIZE_MAX && !pl->points[pl->chosen].frontier)
		point_row(f, pl, pl->chosen, k);
	for (size_t i = 0; i < pl->npoints; i++)
		if (pl->points[i].frontier)
			point_row(f, pl, i, k);
	fputs("</table>\n<p class=\"note\">The frontier's settings, by evaluation order; every point "
	      "is in <a href=\"plan.csv\">plan.csv</a>.</p>\n", f);
}

/* Each policy's best point: feasible first, then the most saved. */
static void html_policy_best(FILE *f, const struct plot_plan *pl, const struct kidx *k)
{
	fputs("<h3>Best of each policy</h3>\n", f);
	table_head(f, pl);
	for (int pol = 0; pol < PLOT_PLAN__COUNT; pol++) {
		size_t best = SIZE_MAX;

		for (size_t i = 0; i < pl->npoints; i++) {
			const struct plot_plan_point *p = &pl->points[i];

			if ((int)p->policy != pol)
				continue;
			if (best == SIZE_MAX || (p->feasible && !pl->points[best].feasible) ||
			    (p->feasible == pl->points[best].feasible &&
			     p->s.final_saved > pl->points[best].s.final_saved))
				best = i;
		}
		if (best != SIZE_MAX)
			point_row(f, pl, best, k);
	}
	fputs("</table>\n", f);
}

/* Overcommit and swap: the quantities behind the verdict. */
static void html_swap(FILE *f, const struct plot_plan_swap *sw)
{
	static const char *const verdicts[] = { "unknown (host memory not given)", "safe",
						 "swap needed", "unsafe" };
	const bool host = sw->verdict != PLOT_PLAN_UNKNOWN;
	const struct { const char *what; double v; bool known; } rows[] = {
		{ "host RAM", sw->host_mib, host },
		{ "host use other than the guests", sw->used_mib, host },
		{ "swap", sw->swap_mib, host },
		{ "guest memory committed (every page of every guest)", sw->committed_mib, true },
		{ "guest memory present at the end", sw->present_mib, true },
		{ "saved by KSM at its peak", sw->saved_peak_mib, true },
		{ "worst-case unshare (every merged page, zero pages and huge-page zero subpages "
		  "included)", sw->unshare_mib, true },
		{ "guest memory after merging (present &minus; saved)", sw->after_merge_mib, true },
		{ "headroom: RAM + swap &minus; host use &minus; guest memory after merging",
		  sw->headroom_mib, host },
		{ "headroom in RAM alone", sw->ram_headroom_mib, host },
		{ "swap needed for the committed memory without KSM", sw->swap_needed_mib, host },
	};

	fputs("<h2>Overcommit and swap</h2>\n<table>\n", f);
	fputs("<tr><th class=\"l\">quantity</th><th>MiB</th></tr>\n", f);
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		fprintf(f, "<tr><td class=\"l\">%s</td>", rows[i].what);
		if (rows[i].known)
			fprintf(f, "<td>%.1f</td></tr>\n", rows[i].v);
		else
			fputs("<td>?</td></tr>\n", f);
	}
	fprintf(f, "<tr><td class=\"l\"><b>verdict</b></td><td class=\"%s\"><b>%s</b></td></tr>\n",
		sw->verdict == PLOT_PLAN_SAFE ? "ok" : sw->verdict == PLOT_PLAN_SWAP_NEEDED ? "warn"
		: sw->verdict == PLOT_PLAN_UNSAFE ? "bad" : "", verdicts[sw->verdict]);
	fputs("</table>\n<p class=\"note\">Safe: host use + committed &le; RAM, so nothing depends on "
	      "KSM. Swap needed: it fits in RAM + swap only; the swap covers an unshare of every "
	      "merged page. Unsafe: it does not fit even there. The committed memory is what the "
	      "guests may touch, merged or not: swap is sized for it without counting on KSM.</p>\n", f);
}

/* NUMA: merge_across_nodes 1 against 0 at the chosen settings, and the recommendation. */
static void html_numa(FILE *f, const struct plot_plan_numa *n)
{
	fprintf(f, "<h2>NUMA: merge_across_nodes</h2>\n<p>The trace's pages sit on %u nodes. At the "
		   "chosen settings:</p>\n", n->nodes);
	if (n->saved1_mib > 0 || n->saved0_mib > 0) {
		fprintf(f, "<table>\n<tr><th class=\"l\">merge_across_nodes</th><th>saved (MiB)</th>"
			   "<th>CPU (%% of a core)</th><th>remote sharers</th></tr>\n"
			   "<tr><td class=\"l\">1 (frames shared across nodes)</td><td>%.1f</td>"
			   "<td>%.2f</td><td>%lld (%.2f%% of present guest memory)</td></tr>\n"
			   "<tr><td class=\"l\">0 (per-node trees)</td><td>%.1f</td><td>%.2f</td>"
			   "<td>0</td></tr>\n</table>\n",
			n->saved1_mib, n->cpu1_pct, (long long)n->remote_sharers, n->remote_pct,
			n->saved0_mib, n->cpu0_pct);
		fprintf(f, "<p>Savings lost with 0: %.1f MiB (%.1f%%).</p>\n", n->lost_mib, n->lost_pct);
	}
	fputs("<p><b>Recommendation:</b> ", f);
	rep_html(f, n->reason[0] ? n->reason : "none: nothing was feasible to compare.");
	fputs("</p>\n<p class=\"note\">Rule: keep 1 when under 1% of the guests' memory would "
	      "map a remote frame; otherwise prefer 0 when it loses at most 10% of the savings "
	      "and stays within the constraints.</p>\n", f);
}

static int write_html(const char *dir, const struct plot_plan *pl, const struct kidx *k,
		      struct sp_err *err)
{
	const struct trace_header *h = pl->header;
	const char *base = strrchr(pl->trace_path, '/') ? strrchr(pl->trace_path, '/') + 1 : pl->trace_path;
	struct atomic_file af;
	int rc = rep_open(&af, dir, "index.html", err);

	if (rc < 0)
		return rc;
	rep_html_intro(af.f, "sim plan", "KSM plan for", base, pl->trace_path, h->desc[0] ? h->desc : "(none)");
	html_setup(af.f, pl);
	answers(af.f, pl, k);
	html_frontier(af.f, pl, k);
	html_policy_best(af.f, pl, k);
	html_swap(af.f, &pl->swap);
	if (pl->numa.nodes > 1)
		html_numa(af.f, &pl->numa);
	fputs("<p class=\"note\">Time to 90% is the first sample at which the savings reached 90% of "
	      "their final value; &ldquo;never&rdquo; when nothing was saved or the savings were still "
	      "rising at the end. CPU is the modelled scanner CPU, as a mean share of one core over the "
	      "simulated time. Written by <code>sim plan</code> (samepage " SP_VERSION ").</p>\n"
	      "</body>\n</html>\n", af.f);
	return atomic_file_commit(&af, err);
}

int plot_plan_write(const char *dir, const struct plot_plan *pl, struct sp_err *err)
{
	struct kidx k;
	int rc;

	kidx_init(&k);
	rc = rep_mkdir_p(dir, err);
	if (rc == 0)
		rc = rep_unlink(dir, "index.html", err);
	if (rc == 0)
		rc = write_csv(dir, pl, &k, err);
	if (rc == 0)
		rc = write_gp(dir, pl, err);
	if (rc == 0)
		rc = rep_gnuplot_plots(dir, "plan.gp", plan_plots, NPPLOTS, err);
	if (rc == 0)
		rc = write_html(dir, pl, &k, err);
	return rc;
}
