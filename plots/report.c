/*
 * report.c - implements the comparison report (plot_compare_write) and the
 * per-run summary shared with the sweep report.
 *
 * Summary definitions (README.md, "Comparing algorithms"): saved =
 * pages_sharing + ksm_zero_pages + thp_zero_pages (metrics_saved); final = at the last sample; peak = the
 * most at any sample; % of oracle = final / oracle_saving at the last
 * sample; time to 90% = the first sample time at which saved reached 90% of
 * the final savings (0 when the final savings are 0); CPU and COW breaks =
 * the cumulative counters at the last sample.
 *
 * Order of writing, so that index.html exists only beside a complete report:
 * remove index.html, write the per-run CSVs and summary.csv, the gnuplot
 * script and its images, then index.html.
 */
#define _GNU_SOURCE
#include "report.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "atomic_file.h"
#include "report_util.h"

const char plot_summary_header[] =
	"algorithm,final_saved_pages,final_saved_mib,peak_saved_pages,peak_saved_mib,"
	"oracle_pages,pct_of_oracle,time_to_90pct_s,cpu_s,cow_breaks,mib_per_cpu_s,params,"
	"cpu_pct_of_core,saved_pct_of_present,remote_sharers,note";

static const char *const palette[] = {
	"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#17becf",
	"#bcbd22", "#7f7f7f", "#393b79", "#637939", "#8c6d31", "#843c39", "#7b4173", "#3182bd",
};

const char *plot_colour(size_t i)
{
	return palette[i % (sizeof(palette) / sizeof(palette[0]))];
}

void plot_summarize(const uint64_t *times, const struct metrics *m, size_t n,
		    struct plot_summary *out)
{
	uint64_t window;
	int64_t before;

	memset(out, 0, sizeof(*out));
	out->t90_ms = PLOT_T90_NEVER;
	if (n == 0)
		return;
	out->final_saved = metrics_saved(&m[n - 1]);
	out->oracle_final = m[n - 1].oracle_saving;
	out->cpu_ns = m[n - 1].cpu_ns;
	out->cow_breaks = m[n - 1].cow_breaks;
	out->end_ms = times[n - 1];
	out->full_scans = m[n - 1].full_scans;
	out->present = m[n - 1].pages_present;
	out->remote_sharers = m[n - 1].remote_sharers;
	out->pct_of_oracle = out->oracle_final > 0
				     ? 100.0 * (double)out->final_saved / (double)out->oracle_final
				     : 100.0;
	for (size_t i = 0; i < n; i++) {
		int64_t s = metrics_saved(&m[i]);

		if (s > out->peak_saved || i == 0)
			out->peak_saved = s;
	}
	/*
	 * Still merging: the savings at the end exceed those of the last
	 * sample at or before end - max(end / 10, one sample interval) by more
	 * than 1% of the final savings.  A single sample cannot tell.
	 */
	window = out->end_ms / 10;
	if (n >= 2 && times[n - 1] - times[n - 2] > window)
		window = times[n - 1] - times[n - 2];
	before = n >= 2 ? metrics_saved(&m[0]) : out->final_saved;
	for (size_t i = 0; i + 1 < n && times[i] + window <= out->end_ms; i++)
		before = metrics_saved(&m[i]);
	out->still_merging = n < 2 || 100 * (out->final_saved - before) > out->final_saved;
	if (out->final_saved <= 0 || out->still_merging)
		return;
	for (size_t i = 0; i < n; i++) {
		/* saved >= 0.9 * final, in integers: 10 * saved >= 9 * final */
		if (10 * metrics_saved(&m[i]) >= 9 * out->final_saved) {
			out->t90_ms = times[i];
			break;
		}
	}
}

const char *plot_never_reason(const struct plot_summary *s)
{
	if (plot_settled(s))
		return "";
	if (s->final_saved <= 0)
		return s->full_scans < 2 ? "saved nothing: fewer than two full scans in the simulated time"
					 : "saved nothing";
	if (s->full_scans < 2)
		return "still merging at the end: fewer than two full scans in the simulated time";
	return "still merging at the end: the savings had not settled";
}

double plot_cpu_pct(int64_t cpu_ns, uint64_t end_ms)
{
	return end_ms ? (double)cpu_ns / 1e4 / (double)end_ms : 0.0;
}

double plot_pct_of_present(double saved, double present)
{
	return present > 0 ? 100.0 * saved / present : 0.0;
}

double plot_mib(int64_t pages, uint32_t page_size)
{
	return (double)pages * (double)page_size / (1024.0 * 1024.0);
}

double plot_mib_per_cpu_s(const struct plot_summary *s, uint32_t page_size)
{
	if (s->final_saved <= 0)
		return 0;
	if (s->cpu_ns <= 0)
		return INFINITY;
	return plot_mib(s->final_saved, page_size) / ((double)s->cpu_ns / 1e9);
}

/* ---- files --------------------------------------------------------------- */

/* A run's time series in the report: <label>.csv, observed-<label>.csv. */
static void run_csv_name(const struct plot_run *r, char *buf, size_t len)
{
	snprintf(buf, len, "%s%s.csv", r->observed ? "observed-" : "", r->label);
}

/* What a run is, for tables: its parameters, or where an observation comes from. */
static void run_params(const struct plot_run *r, char *buf, size_t len)
{
	if (r->observed)
		snprintf(buf, len, "observed: %s", r->source ? r->source : "");
	else
		algo_params_format(r->algo, &r->params, buf, len);
}

static int write_series_csv(const char *dir, const struct plot_run *r, struct sp_err *err)
{
	struct atomic_file af;
	char name[256];
	int rc;

	run_csv_name(r, name, sizeof(name));
	rc = rep_open(&af, dir, name, err);
	if (rc < 0)
		return rc;
	metrics_csv_header(af.f, false);
	for (size_t k = 0; k < r->n; k++)
		metrics_csv_row(af.f, r->times[k], &r->samples[k], NULL);
	return atomic_file_commit(&af, err);
}

/* DIR/name opened (atomic_file) with its header line written. */
static int open_table(struct atomic_file *af, const char *dir, const char *name, const char *header,
		      struct sp_err *err)
{
	int rc = rep_open(af, dir, name, err);

	if (rc == 0)
		fprintf(af->f, "%s\n", header);
	return rc;
}

static int write_summary_csv(const char *dir, const struct plot_compare *c,
			     const struct plot_summary *sum, struct sp_err *err)
{
	uint32_t ps = c->header->page_size;
	struct atomic_file af;
	int rc;

	rc = open_table(&af, dir, "summary.csv", plot_summary_header, err);
	if (rc < 0)
		return rc;
	for (size_t i = 0; i < c->nruns; i++) {
		const struct plot_summary *s = &sum[i];
		char params[1024];

		run_params(&c->runs[i], params, sizeof(params));
		rep_csv_text(af.f, c->runs[i].label);
		fprintf(af.f, ",%lld,%.3f,%lld,%.3f,%lld,%.2f,", (long long)s->final_saved,
			plot_mib(s->final_saved, ps), (long long)s->peak_saved,
			plot_mib(s->peak_saved, ps), (long long)s->oracle_final, s->pct_of_oracle);
		if (plot_settled(s)) /* never: an empty cell */
			fprintf(af.f, "%.3f", (double)s->t90_ms / 1000);
		fprintf(af.f, ",%.3f,%lld,", (double)s->cpu_ns / 1e9, (long long)s->cow_breaks);
		if (isinf(plot_mib_per_cpu_s(s, ps)))
			fputs("inf", af.f);
		else
			fprintf(af.f, "%.3f", plot_mib_per_cpu_s(s, ps));
		fputc(',', af.f);
		rep_csv_text(af.f, params);
		fprintf(af.f, ",%.3f,%.2f,%lld,", plot_cpu_pct(s->cpu_ns, s->end_ms),
			plot_pct_of_present((double)s->final_saved, (double)s->present),
			(long long)s->remote_sharers);
		rep_csv_text(af.f, plot_never_reason(s));
		fputc('\n', af.f);
	}
	return atomic_file_commit(&af, err);
}

const char plot_prediction_header[] =
	"observed,source,prediction,end_s,observed_saved_pages,predicted_saved_pages,error_pages,"
	"error_mib,error_pct,mean_abs_error_pages,samples_compared,observed_time_to_90pct_s,"
	"predicted_time_to_90pct_s,time_to_90pct_error_s";

/* prediction.csv: one row per observed series against runs[0]. */
static int write_prediction_csv(const char *dir, const struct plot_compare *c, struct sp_err *err)
{
	uint32_t ps = c->header->page_size;
	struct atomic_file af;
	int rc;

	rc = open_table(&af, dir, "prediction.csv", plot_prediction_header, err);
	if (rc < 0)
		return rc;
	for (size_t i = 0; i < c->nruns; i++) {
		const struct plot_run *r = &c->runs[i];
		struct plot_error e;

		if (!r->observed)
			continue;
		plot_prediction_error(r, &c->runs[0], &e);
		rep_csv_text(af.f, r->label);
		fputc(',', af.f);
		rep_csv_text(af.f, r->source ? r->source : "");
		fputc(',', af.f);
		rep_csv_text(af.f, c->runs[0].label);
		fprintf(af.f, ",%.3f,%lld,%lld,%lld,%.3f,", (double)e.end_ms / 1000, (long long)e.observed,
			(long long)e.predicted, (long long)e.error, plot_mib(e.error, ps));
		rep_csv_num(af.f, e.error_pct);
		fprintf(af.f, ",%.3f,%zu,", e.mae, e.compared);
		if (e.t90_observed_ms != PLOT_T90_NEVER)
			fprintf(af.f, "%.3f", (double)e.t90_observed_ms / 1000);
		fputc(',', af.f);
		if (e.t90_predicted_ms != PLOT_T90_NEVER)
			fprintf(af.f, "%.3f", (double)e.t90_predicted_ms / 1000);
		fputc(',', af.f);
		rep_csv_num(af.f, e.t90_error_s);
		fputc('\n', af.f);
	}
	return atomic_file_commit(&af, err);
}

static const char *const compare_plots[] = { "savings", "cpu", "cpu_pct", "cow", "savings_cpu" };
#define NPLOTS (sizeof(compare_plots) / sizeof(compare_plots[0]))

static void gp_series(FILE *f, const struct plot_compare *c, const char *x, const char *y)
{
	for (size_t i = 0; i < c->nruns; i++) {
		const struct plot_run *r = &c->runs[i];
		char file[256];

		run_csv_name(r, file, sizeof(file));
		fputs(i ? ", \\\n     " : "plot ", f);
		rep_gp_quoted(f, file);
		if (r->observed) {
			/* what a host did: dotted, with its samples marked */
			fprintf(f, " using %s:%s with linespoints lw 2 dt 3 pt 7 ps 0.6 lc rgb '%s' title ", x, y,
				plot_colour(r->colour));
			snprintf(file, sizeof(file), "observed: %s", r->label);
			rep_gp_quoted(f, file);
			continue;
		}
		fprintf(f, " using %s:%s with lines lw 2 dt %d lc rgb '%s' title ", x, y,
			r->variant ? 2 : 1, plot_colour(r->colour));
		rep_gp_quoted(f, r->label);
	}
}

static int write_compare_gp(const char *dir, const struct plot_compare *c, struct sp_err *err)
{
	struct atomic_file af;
	const char *t = "(column('time_ms')/1000.0)";
	const char *saved = "(mib(column('pages_sharing')+column('ksm_zero_pages')+column('thp_zero_pages')))";
	const char *cpu = "(column('cpu_ns')/1e9)";
	int rc;

	rc = rep_open(&af, dir, "compare.gp", err);
	if (rc < 0)
		return rc;
	FILE *f = af.f;

	fputs("# compare.gp - the plots of this report, written by `sim compare`.\n"
	      "# Rerun in this directory: gnuplot compare.gp\n"
	      "if (!exists('sfx')) sfx = ''\n"
	      "set datafile separator ','\nset grid\n"
	      "set key box opaque\n"
	      "# keep lines and markers off the frame\n"
	      "set offsets graph 0.02, graph 0.02, graph 0.06, graph 0.03\n", f);
	fprintf(f, "mib(p) = p * %u / 1048576.0\n", c->header->page_size);
	/* the scanner's CPU between two samples over their distance; row 0 of each file starts over */
	fputs("pt = 0; pc = 0\n"
	      "cpu_pct(row, t, c) = (row == 0 || t <= pt ? (r = NaN) : (r = (c - pc) / 1e4 / (t - pt)), "
	      "pt = t, pc = c, r)\n", f);
	fputs("do for [fmt in 'png svg'] {\n"
	      "  if (fmt eq 'png') { set terminal pngcairo size 1280,720 font 'Sans,12' noenhanced }"
	      " else { set terminal svg size 960,540 dynamic background rgb 'white' font 'Sans,13' noenhanced }\n",
	      f);
	/* savings over time, against the oracle's bound */
	fputs("  set key outside right top vertical\n  set output 'savings.'.fmt.sfx\n  set title 'Memory saved over time'\n"
	      "  set xlabel 'simulated time (s)'\n  set ylabel 'memory saved (MiB)'\n  ", f);
	gp_series(f, c, t, saved);
	fputs(", \\\n     ", f);
	{
		char file[256];

		snprintf(file, sizeof(file), "%s.csv", c->runs[0].label);
		rep_gp_quoted(f, file);
	}
	fprintf(f, " using %s:(mib(column('oracle_saving'))) with lines lw 2.5 dt (6,4) lc rgb '#000000'"
		   " title 'oracle bound'\n", t);
	/* CPU over time */
	fputs("  set key outside right top vertical\n  set output 'cpu.'.fmt.sfx\n  set title 'Scanner CPU time (cumulative)'\n"
	      "  set xlabel 'simulated time (s)'\n  set ylabel 'scanner CPU (s)'\n  ", f);
	gp_series(f, c, t, cpu);
	fputc('\n', f);
	/* CPU as a share of one core, per sample interval */
	fputs("  set output 'cpu_pct.'.fmt.sfx\n  set title 'Scanner CPU, % of one core (per sample interval)'\n"
	      "  set xlabel 'simulated time (s)'\n  set ylabel 'scanner CPU (% of one core)'\n  ", f);
	gp_series(f, c, t, "(cpu_pct(column(0), column('time_ms'), column('cpu_ns')))");
	fputc('\n', f);
	/* COW breaks over time */
	fputs("  set output 'cow.'.fmt.sfx\n  set title 'Copy-on-write breaks (cumulative)'\n"
	      "  set xlabel 'simulated time (s)'\n  set ylabel 'COW breaks (count)'\n  ", f);
	gp_series(f, c, t, "(column('cow_breaks'))");
	fputc('\n', f);
	/* savings against CPU */
	fputs("  set key outside right top vertical\n  set output 'savings_cpu.'.fmt.sfx\n  set title 'Memory saved against CPU spent'\n"
	      "  set xlabel 'scanner CPU (s, cumulative)'\n  set ylabel 'memory saved (MiB)'\n  ", f);
	gp_series(f, c, cpu, saved);
	fputs("\n  unset output\n}\n", f);
	return atomic_file_commit(&af, err);
}

/* ---- index.html ---------------------------------------------------------- */

static void fmt_mib(char *buf, size_t len, double mib)
{
	if (mib >= 1024)
		snprintf(buf, len, "%.2f GiB", mib / 1024);
	else
		snprintf(buf, len, "%.1f MiB", mib);
}

/* An observed series: what the host did, and how far the prediction (runs[0]) was from it. */
static void observed_paragraph(FILE *f, const struct plot_compare *c, const struct plot_summary *sum,
			       size_t i)
{
	const struct plot_run *r = &c->runs[i];
	const struct plot_summary *s = &sum[i];
	uint32_t ps = c->header->page_size;
	struct plot_error e;
	char a[32], b[32], d[32];

	plot_prediction_error(r, &c->runs[0], &e);
	fmt_mib(a, sizeof(a), plot_mib(e.observed, ps));
	fmt_mib(b, sizeof(b), plot_mib(e.predicted, ps));
	fmt_mib(d, sizeof(d), plot_mib(e.error < 0 ? -e.error : e.error, ps));
	fprintf(f, "<p class=\"algo\"><span class=\"sw\" style=\"background:%s\"></span><b>observed: ",
		plot_colour(r->colour));
	rep_html(f, r->label);
	fputs("</b> &mdash; what a host did, read from <code>", f);
	rep_html(f, r->source ? r->source : "");
	fprintf(f, "</code> (%zu samples over %.0f s, its time counted from its first row). ", r->n,
		(double)s->end_ms / 1000);
	fputs("It is compared with the prediction <b>", f);
	rep_html(f, c->runs[0].label);
	fprintf(f, "</b> over their common %.0f s: at the end it saved <b>%s</b> where %s was predicted, ",
		(double)e.end_ms / 1000, a, b);
	if (e.error == 0)
		fputs("<b>no error</b>", f);
	else if (isnan(e.error_pct))
		fprintf(f, "an error of <b>%s%s</b> (nothing was predicted)", e.error < 0 ? "-" : "+", d);
	else
		fprintf(f, "an error of <b>%s%s</b> (%+.1f%% of the prediction)", e.error < 0 ? "-" : "+", d,
			e.error_pct);
	fprintf(f, "; the mean absolute error over %zu samples was %.1f pages. ", e.compared, e.mae);
	if (e.t90_both)
		fprintf(f, "It reached 90%% of its final savings after %.1f s, %.1f s %s the prediction. ",
			(double)e.t90_observed_ms / 1000, fabs(e.t90_error_s),
			e.t90_error_s > 0 ? "later than" : e.t90_error_s < 0 ? "earlier than" : "as");
	else
		fprintf(f, "Time to 90%%: observed %s, predicted %s (no error can be given). ",
			e.t90_observed_ms == PLOT_T90_NEVER ? "<b>never</b>" : "reached",
			e.t90_predicted_ms == PLOT_T90_NEVER ? "<b>never</b>" : "reached");
	fprintf(f, "%% of oracle: %.1f, against the oracle of this trace at the same time.</p>\n",
		s->pct_of_oracle);
}

static void paragraph(FILE *f, const struct plot_compare *c, const struct plot_summary *sum,
		      size_t i)
{
	const struct plot_run *r = &c->runs[i];
	const struct plot_summary *s = &sum[i];
	uint32_t ps = c->header->page_size;
	double eff = plot_mib_per_cpu_s(s, ps), secs = (double)s->end_ms / 1000;
	char a[32], b[32], p[32], params[1024];
	size_t rank_saved = 1, rank_cpu = 1, n_cpu = 0, rank_eff = 1, nsim = 0;

	if (r->observed) {
		observed_paragraph(f, c, sum, i);
		return;
	}
	for (size_t k = 0; k < c->nruns; k++) {
		if (c->runs[k].observed)
			continue;
		nsim++;
		if (sum[k].final_saved > s->final_saved)
			rank_saved++;
		if (sum[k].cpu_ns > 0) {
			n_cpu++;
			if (k != i && sum[k].cpu_ns < s->cpu_ns)
				rank_cpu++;
			if (plot_mib_per_cpu_s(&sum[k], ps) > eff)
				rank_eff++;
		}
	}
	algo_params_format(r->algo, &r->params, params, sizeof(params));
	fmt_mib(a, sizeof(a), plot_mib(s->final_saved, ps));
	fmt_mib(b, sizeof(b), plot_mib(s->oracle_final, ps));
	fmt_mib(p, sizeof(p), plot_mib(s->peak_saved, ps));
	fprintf(f, "<p class=\"algo\"><span class=\"sw\" style=\"background:%s\"></span><b>",
		plot_colour(r->colour));
	rep_html(f, r->label);
	fputs("</b> &mdash; ", f);
	rep_html(f, r->algo->description);
	if (r->variant) {
		fputs(" (this variant: <code>", f);
		rep_html(f, params);
		fputs("</code>)", f);
	}
	fprintf(f, ". At the end of the %.0f simulated seconds it saved <b>%s</b> (%.1f%% of the "
		   "guests' present memory), %.1f%% of the %s the oracle could save then (peak %s). ",
		secs, a, plot_pct_of_present((double)s->final_saved, (double)s->present),
		s->pct_of_oracle, b, p);
	if (plot_settled(s))
		fprintf(f, "It reached 90%% of its final savings after %.1f s. ",
			(double)s->t90_ms / 1000);
	else
		fprintf(f, "Time to 90%%: <b>never</b> (%s). ", plot_never_reason(s));
	if (s->cpu_ns > 0)
		fprintf(f, "Its scanner used %.3f s of CPU (%.2f%% of one core on average), %.1f MiB "
			   "saved per CPU second. ",
			(double)s->cpu_ns / 1e9, plot_cpu_pct(s->cpu_ns, s->end_ms), eff);
	else
		fputs("It used no scanner CPU (a bound, not a mechanism). ", f);
	fprintf(f, "%lld write%s broke a merged page (COW breaks). ", (long long)s->cow_breaks,
		s->cow_breaks == 1 ? "" : "s");
	if (s->remote_sharers > 0)
		fprintf(f, "%lld mapping%s of its shared frames live%s on another NUMA node than the frame "
			   "(remote_sharers). ",
			(long long)s->remote_sharers, s->remote_sharers == 1 ? "" : "s",
			s->remote_sharers == 1 ? "s" : "");
	if (nsim > 1) {
		size_t tied = 0;

		for (size_t k = 0; k < c->nruns; k++)
			tied += k != i && !c->runs[k].observed && sum[k].final_saved == s->final_saved;
		if (rank_saved == 1 && tied)
			fprintf(f, "It tied for the most saved with %zu other%s", tied, tied == 1 ? "" : "s");
		else if (rank_saved == 1)
			fputs("It saved the most of the compared algorithms", f);
		else if (tied)
			fprintf(f, "It ranks %zu of %zu on savings (tied with %zu other%s)", rank_saved,
				nsim, tied, tied == 1 ? "" : "s");
		else
			fprintf(f, "It ranks %zu of %zu on savings", rank_saved, nsim);
		if (s->cpu_ns > 0 && n_cpu > 1)
			fprintf(f, ", %zu of %zu on CPU cost (cheapest first) and %zu of %zu on MiB per "
				   "CPU second",
				rank_cpu, n_cpu, rank_eff, n_cpu);
		fputs(".", f);
	}
	fputs("</p>\n", f);
}

static void td_num(FILE *f, const char *fmt, double v)
{
	fputs("<td>", f);
	fprintf(f, fmt, v);
	fputs("</td>", f);
}

/* One row of the summary table: run i, the best savings marked. */
static void summary_row(FILE *f, const struct plot_compare *c, const struct plot_summary *s, size_t i,
			int64_t best, bool multi_node)
{
	uint32_t ps = c->header->page_size;
	double eff = plot_mib_per_cpu_s(s, ps);

	fprintf(f, "<tr><td class=\"l%s\"><span class=\"sw\" style=\"background:%s\"></span>%s",
		!c->runs[i].observed && s->final_saved == best && best > 0 ? " best" : "",
		plot_colour(c->runs[i].colour), c->runs[i].observed ? "observed: " : "");
	rep_html(f, c->runs[i].label);
	fputs("</td>", f);
	td_num(f, "%.1f", plot_mib(s->final_saved, ps));
	td_num(f, "%.1f", plot_pct_of_present((double)s->final_saved, (double)s->present));
	td_num(f, "%.1f", plot_mib(s->peak_saved, ps));
	td_num(f, "%.1f", s->pct_of_oracle);
	if (plot_settled(s)) {
		td_num(f, "%.1f", (double)s->t90_ms / 1000);
	} else {
		fputs("<td title=\"", f);
		rep_html(f, plot_never_reason(s));
		fputs("\">never</td>", f);
	}
	td_num(f, "%.3f", (double)s->cpu_ns / 1e9);
	td_num(f, "%.2f", plot_cpu_pct(s->cpu_ns, s->end_ms));
	fprintf(f, "<td>%lld</td>", (long long)s->cow_breaks);
	if (isinf(eff))
		fputs("<td>&infin; (no CPU)</td>", f);
	else
		td_num(f, "%.1f", eff);
	if (multi_node)
		fprintf(f, "<td>%lld</td>", (long long)s->remote_sharers);
	fputs("</tr>\n", f);
}

/* The error of the prediction (runs[0]) against each observed series. */
static void prediction_table(FILE *f, const struct plot_compare *c)
{
	uint32_t ps = c->header->page_size;

	fputs("<h2>Prediction against observation</h2>\n<table>\n<tr><th class=\"l\">observed</th>"
	      "<th class=\"l\">prediction</th><th>common span (s)</th><th>saved, observed (MiB)</th>"
	      "<th>saved, predicted (MiB)</th><th>error (MiB)</th><th>error (% of prediction)</th>"
	      "<th>mean abs. error (MiB)</th><th>time to 90%, observed (s)</th>"
	      "<th>time to 90%, predicted (s)</th><th>error (s)</th></tr>\n", f);
	for (size_t i = 0; i < c->nruns; i++) {
		const struct plot_run *r = &c->runs[i];
		struct plot_error e;

		if (!r->observed)
			continue;
		plot_prediction_error(r, &c->runs[0], &e);
		fputs("<tr><td class=\"l\">observed: ", f);
		rep_html(f, r->label);
		fputs("</td><td class=\"l\">", f);
		rep_html(f, c->runs[0].label);
		fputs("</td>", f);
		td_num(f, "%.1f", (double)e.end_ms / 1000);
		td_num(f, "%.1f", plot_mib(e.observed, ps));
		td_num(f, "%.1f", plot_mib(e.predicted, ps));
		td_num(f, "%+.1f", plot_mib(e.error, ps));
		if (isnan(e.error_pct))
			fputs("<td title=\"nothing was predicted\">n/a</td>", f);
		else
			td_num(f, "%+.1f", e.error_pct);
		td_num(f, "%.2f", plot_mib((int64_t)llround(e.mae), ps));
		if (e.t90_observed_ms == PLOT_T90_NEVER)
			fputs("<td>never</td>", f);
		else
			td_num(f, "%.1f", (double)e.t90_observed_ms / 1000);
		if (e.t90_predicted_ms == PLOT_T90_NEVER)
			fputs("<td>never</td>", f);
		else
			td_num(f, "%.1f", (double)e.t90_predicted_ms / 1000);
		if (e.t90_both)
			td_num(f, "%+.1f", e.t90_error_s);
		else
			fputs("<td title=\"one of the two never reached 90% of its final savings\">n/a</td>", f);
		fputs("</tr>\n", f);
	}
	fputs("</table>\n<p class=\"note\">An observed series is what a host did (samepaged's SAMEPAGE_CSV, "
	      "or any CSV in <code>sim run --csv</code> columns), its time counted from its own first row; "
	      "the prediction is the first simulated run.  Saved is compared at the end of the span both "
	      "cover (each series' last sample at or before it); the mean absolute error is over every "
	      "observed sample in that span, against the prediction's last sample at or before it; an "
	      "error is observed minus predicted.  A host cannot count the oracle's bound nor the guests' "
	      "present pages: an observed row's % of oracle and % of present use the simulation's at the "
	      "same time.  Data: <a href=\"prediction.csv\">prediction.csv</a>.</p>\n", f);
}

/* The summary table (remote sharers when guests sit on several nodes) and its note. */
static void html_summary(FILE *f, const struct plot_compare *c, const struct plot_summary *sum)
{
	const struct trace_header *h = c->header;
	int64_t best = 0;
	bool multi_node = false, observed = false;

	for (size_t i = 0; i < c->nruns; i++)
		observed |= c->runs[i].observed;
	for (size_t i = 0; i < c->nruns; i++)
		if (!c->runs[i].observed && sum[i].final_saved > best)
			best = sum[i].final_saved;
	for (uint32_t g = 1; g < h->nguests; g++)
		multi_node |= h->guests[g].node != h->guests[0].node;
	for (size_t i = 0; i < c->nruns; i++)
		multi_node |= sum[i].remote_sharers > 0;
	fputs("<h2>Summary</h2>\n<table>\n<tr><th class=\"l\">algorithm</th><th>saved at end (MiB)</th>"
	      "<th>% of present</th><th>peak (MiB)</th><th>% of oracle</th><th>time to 90% (s)</th>"
	      "<th>scanner CPU (s)</th><th>CPU (% of a core)</th><th>COW breaks</th>"
	      "<th>MiB saved per CPU s</th>", f);
	if (multi_node)
		fputs("<th>remote sharers</th>", f);
	fputs("</tr>\n", f);
	for (size_t i = 0; i < c->nruns; i++)
		summary_row(f, c, &sum[i], i, best, multi_node);
	fputs("</table>\n<p class=\"note\">Saved = pages_sharing + ksm_zero_pages + thp_zero_pages (zero "
	      "subpages freed by huge-page splits, which no KSM counter shows) at the last sample; "
	      "the oracle is the most any algorithm could save at that instant; time to 90% is the first "
	      "sample at which the savings reached 90% of their final value, &ldquo;never&rdquo; when "
	      "nothing was saved or the savings were still rising at the end (more than 1% over the "
	      "last tenth of the run: a longer --tail-ms would change the answer); CPU is the "
	      "modelled scanner time, cumulative and as a mean share of one core.  Data: "
	      "<a href=\"summary.csv\">summary.csv</a>", f);
	for (size_t i = 0; i < c->nruns; i++) {
		char file[256];

		run_csv_name(&c->runs[i], file, sizeof(file));
		fputs(", <a href=\"", f);
		rep_html(f, file);
		fputs("\">", f);
		rep_html(f, file);
		fputs("</a>", f);
	}
	fputs("; plots: <a href=\"compare.gp\">compare.gp</a>.</p>\n", f);
	if (observed)
		prediction_table(f, c);
}

static void html_plots(FILE *f)
{
	static const char *const captions[NPLOTS] = {
		"Memory saved (pages_sharing + ksm_zero_pages + thp_zero_pages) over simulated time; the dotted black "
		"line is the oracle's bound, the most any algorithm could save at that instant.",
		"Cumulative scanner CPU time (modelled) over simulated time.",
		"Scanner CPU as a share of one core between two samples.",
		"Cumulative copy-on-write breaks: writes that unshared a merged page.",
		"Memory saved against the CPU spent so far: up and to the left is better.",
	};

	rep_html_figures(f, "Plots", compare_plots, captions, NPLOTS);
}

/* A paragraph per algorithm, then every run's parameters. */
static void html_algorithms(FILE *f, const struct plot_compare *c, const struct plot_summary *sum)
{
	fputs("<h2>Algorithms</h2>\n", f);
	for (size_t i = 0; i < c->nruns; i++)
		paragraph(f, c, sum, i);
	fputs("<h2>Parameters</h2>\n<table>\n<tr><th class=\"l\">algorithm</th>"
	      "<th class=\"l\">parameters</th></tr>\n", f);
	for (size_t i = 0; i < c->nruns; i++) {
		char params[1024];

		run_params(&c->runs[i], params, sizeof(params));
		fputs("<tr><td class=\"l\">", f);
		rep_html(f, c->runs[i].label);
		fputs("</td><td class=\"l mono\">", f);
		rep_html(f, params[0] ? params : "(none)");
		fputs("</td></tr>\n", f);
	}
	fputs("</table>\n", f);
}

static int write_compare_html(const char *dir, const struct plot_compare *c,
			      const struct plot_summary *sum, struct sp_err *err)
{
	const struct trace_header *h = c->header;
	uint32_t ps = h->page_size;
	const char *base = strrchr(c->trace_path, '/') ? strrchr(c->trace_path, '/') + 1 : c->trace_path;
	struct atomic_file af;
	char buf[64];
	int rc = rep_open(&af, dir, "index.html", err);

	if (rc < 0)
		return rc;
	rep_html_intro(af.f, "sim compare", "Page merging compared on", base, c->trace_path,
		       h->desc[0] ? h->desc : "(none)");
	fmt_mib(buf, sizeof(buf), plot_mib((int64_t)trace_header_total_pages(h), ps));
	fprintf(af.f, "<tr><td>guests</td><td>%u guests, %llu pages of %u bytes (%s)</td></tr>\n",
		h->nguests, (unsigned long long)trace_header_total_pages(h), ps, buf);
	fputs("<tr><td>simulation</td><td>", af.f);
	rep_html(af.f, c->options);
	fputs("</td></tr>\n</table>\n", af.f);
	html_summary(af.f, c, sum);
	html_plots(af.f);
	html_algorithms(af.f, c, sum);
	fputs("<p class=\"note\">Written by <code>sim compare</code> (samepage " SP_VERSION
	      ").</p>\n</body>\n</html>\n", af.f);
	return atomic_file_commit(&af, err);
}

int plot_compare_write(const char *dir, const struct plot_compare *c, struct sp_err *err)
{
	struct plot_summary *sum;
	int rc;

	if (c->nruns == 0 || c->runs[0].observed)
		return sp_err_set(err, SP_EINVAL, "nothing to compare: no simulated run");
	rc = rep_mkdir_p(dir, err);
	if (rc == 0)
		rc = rep_unlink(dir, "index.html", err);
	if (rc < 0)
		return rc;
	sum = calloc(c->nruns, sizeof(*sum));
	if (!sum)
		return sp_err_set(err, SP_ENOMEM, "out of memory");
	for (size_t i = 0; i < c->nruns; i++)
		plot_summarize(c->runs[i].times, c->runs[i].samples, c->runs[i].n, &sum[i]);
	for (size_t i = 0; i < c->nruns && rc == 0; i++)
		rc = write_series_csv(dir, &c->runs[i], err);
	if (rc == 0)
		rc = write_summary_csv(dir, c, sum, err);
	for (size_t i = 0; i < c->nruns && rc == 0; i++) {
		if (c->runs[i].observed) {
			rc = write_prediction_csv(dir, c, err);
			break;
		}
	}
	if (rc == 0)
		rc = write_compare_gp(dir, c, err);
	if (rc == 0)
		rc = rep_gnuplot_plots(dir, "compare.gp", compare_plots, NPLOTS, err);
	if (rc == 0)
		rc = write_compare_html(dir, c, sum, err);
	free(sum);
	return rc;
}
/* ---- observed series (sim compare --observed) ----------------------------- */

static int metric_index(const char *name)
{
	for (int i = 0; i < METRICS_COUNT; i++) {
		if (!strcmp(metrics_names[i], name))
			return i;
	}
	return -1;
}

static bool whole_number(const char *s, int64_t *out)
{
	char *end;

	if (!*s)
		return false;
	errno = 0;
	*out = strtoll(s, &end, 10);
	return !errno && !*end;
}

/* The header of an observed CSV: per column a metric index, -1 time_ms, -2 a tunable (read, not kept). */
static int series_columns(const char *path, const struct rep_table *t, int *col, struct sp_err *err)
{
	static const char *const tunables[] = { "run", "pages_to_scan", "sleep_millisecs" };
	int have_time = 0, have_sharing = 0;

	for (size_t j = 0; j < t->ncols[0]; j++) {
		const char *name = t->rows[0][j];
		bool tunable = false;

		for (size_t k = 0; k < sizeof(tunables) / sizeof(tunables[0]); k++)
			tunable |= !strcmp(name, tunables[k]);
		col[j] = !strcmp(name, "time_ms") ? -1 : tunable ? -2 : metric_index(name);
		if (col[j] == -1 && strcmp(name, "time_ms"))
			return sp_err_set(err, SP_ECORRUPT, "%s:1: column %zu '%.64s' is not a column of sim run --csv",
					  path, j + 1, name);
		for (size_t k = 0; k < j; k++) {
			if (!strcmp(t->rows[0][k], name))
				return sp_err_set(err, SP_ECORRUPT, "%s:1: column '%.64s' appears twice", path, name);
		}
		have_time |= col[j] == -1;
		have_sharing |= col[j] >= 0 && !strcmp(name, "pages_sharing");
	}
	if (!have_time || !have_sharing)
		return sp_err_set(err, SP_ECORRUPT, "%s:1: no %s column (a sim run --csv or SAMEPAGE_CSV file has it)",
				  path, have_time ? "pages_sharing" : "time_ms");
	return 0;
}

/* Row i (1-based in the table, after the header) into *when and *m; times must increase. */
static int series_row(const char *path, const struct rep_table *t, const int *col, size_t i, uint64_t prev,
		      uint64_t *when, struct metrics *m, struct sp_err *err)
{
	*when = 0;
	if (t->ncols[i] != t->ncols[0])
		return sp_err_set(err, SP_ECORRUPT, "%s:%zu: %zu fields, the header has %zu", path, i + 1,
				  t->ncols[i], t->ncols[0]);
	for (size_t j = 0; j < t->ncols[i]; j++) {
		int64_t v;

		if (!whole_number(t->rows[i][j], &v))
			return sp_err_set(err, SP_ECORRUPT, "%s:%zu: %s '%.32s' is not a whole number", path, i + 1,
					  t->rows[0][j], t->rows[i][j]);
		if (col[j] == -1) {
			if (v < 0)
				return sp_err_set(err, SP_ECORRUPT, "%s:%zu: time_ms %lld is negative", path, i + 1,
						  (long long)v);
			*when = (uint64_t)v;
		} else if (col[j] >= 0) {
			((int64_t *)m)[col[j]] = v; /* struct of int64_t only, as metrics_get */
		}
	}
	if (i > 1 && *when <= prev)
		return sp_err_set(err, SP_ECORRUPT, "%s:%zu: time_ms %llu does not follow %llu of the row before",
				  path, i + 1, (unsigned long long)*when, (unsigned long long)prev);
	return 0;
}

int plot_series_read(const char *path, uint64_t **times, struct metrics **samples, size_t *n,
		     struct sp_err *err)
{
	struct rep_table t;
	int *col = NULL;
	uint64_t *tm = NULL;
	struct metrics *m = NULL;
	int rc;

	*times = NULL;
	*samples = NULL;
	*n = 0;
	rc = rep_table_read(path, &t, err);
	if (rc < 0)
		return rc;
	if (t.nrows < 2) {
		rc = sp_err_set(err, SP_ECORRUPT, "%s: %s", path, t.nrows ? "a header and no rows" : "empty");
		goto out;
	}
	col = calloc(t.ncols[0], sizeof(*col));
	tm = calloc(t.nrows - 1, sizeof(*tm));
	m = calloc(t.nrows - 1, sizeof(*m));
	if (!col || !tm || !m) {
		rc = sp_err_set(err, SP_ENOMEM, "out of memory reading %s", path);
		goto out;
	}
	rc = series_columns(path, &t, col, err);
	for (size_t i = 1; rc == 0 && i < t.nrows; i++)
		rc = series_row(path, &t, col, i, i > 1 ? tm[i - 2] : 0, &tm[i - 1], &m[i - 1], err);
	if (rc < 0)
		goto out;
	/* The file's own time origin: its first row. */
	for (size_t i = t.nrows - 1; i-- > 0;)
		tm[i] -= tm[0];
	*times = tm;
	*samples = m;
	*n = t.nrows - 1;
	tm = NULL;
	m = NULL;
out:
	free(col);
	free(tm);
	free(m);
	rep_table_free(&t);
	return rc;
}

/* The last sample of r at or before t (the first one if none is). */
static size_t at_or_before(const struct plot_run *r, uint64_t t)
{
	size_t lo = 0, hi = r->n;

	while (hi - lo > 1) {
		size_t mid = lo + (hi - lo) / 2;

		if (r->times[mid] <= t)
			lo = mid;
		else
			hi = mid;
	}
	return lo;
}

void plot_observed_fill(const uint64_t *times, struct metrics *samples, size_t n,
			const struct plot_run *pred)
{
	for (size_t i = 0; i < n && pred->n; i++) {
		const struct metrics *p = &pred->samples[at_or_before(pred, times[i])];

		samples[i].oracle_saving = p->oracle_saving;
		samples[i].pages_present = p->pages_present;
	}
}

void plot_prediction_error(const struct plot_run *obs, const struct plot_run *pred,
			   struct plot_error *out)
{
	struct plot_summary so, sp;
	double sum = 0;

	memset(out, 0, sizeof(*out));
	if (!obs->n || !pred->n)
		return;
	out->end_ms = obs->times[obs->n - 1] < pred->times[pred->n - 1] ? obs->times[obs->n - 1]
									 : pred->times[pred->n - 1];
	out->observed = metrics_saved(&obs->samples[at_or_before(obs, out->end_ms)]);
	out->predicted = metrics_saved(&pred->samples[at_or_before(pred, out->end_ms)]);
	out->error = out->observed - out->predicted;
	out->error_pct = out->predicted ? 100.0 * (double)out->error / (double)out->predicted
			 : out->error ? NAN : 0.0;
	for (size_t i = 0; i < obs->n && obs->times[i] <= out->end_ms; i++) {
		int64_t d = metrics_saved(&obs->samples[i]) -
			    metrics_saved(&pred->samples[at_or_before(pred, obs->times[i])]);

		sum += (double)(d < 0 ? -d : d);
		out->compared++;
	}
	out->mae = out->compared ? sum / (double)out->compared : 0;
	plot_summarize(obs->times, obs->samples, obs->n, &so);
	plot_summarize(pred->times, pred->samples, pred->n, &sp);
	out->t90_observed_ms = so.t90_ms;
	out->t90_predicted_ms = sp.t90_ms;
	out->t90_both = plot_settled(&so) && plot_settled(&sp);
	out->t90_error_s = out->t90_both ? ((double)so.t90_ms - (double)sp.t90_ms) / 1000 : NAN;
}
