/*
 * plot.c - implements plot_timeseries(): writes a gnuplot program that reads
 * the CSV by column name into a temporary file beside the image and runs it
 * with rep_gnuplot() (report_util.c), as the reports do: the image appears
 * only when gnuplot exited 0, and gnuplot's own complaint is in the error.
 */
#define _GNU_SOURCE
#include "plot.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "report_util.h"

static const char *terminal_for(const char *out)
{
	const char *dot = strrchr(out, '.');

	if (dot && !strcmp(dot, ".svg"))
		return "svg size 1100,560 dynamic background rgb 'white' font 'Sans,13'";
	if (dot && !strcmp(dot, ".png"))
		return "pngcairo size 1280,720 font 'Sans,12'";
	return NULL;
}

/* Whether the CSV's header names column col (a kernel may lack a counter: left out). */
static bool has_column(const char *csv, const char *col)
{
	char line[4096];
	FILE *f = fopen(csv, "r");
	bool found = false;

	if (!f)
		return false;
	if (fgets(line, sizeof(line), f)) {
		size_t n = strlen(col);

		for (char *c = line; c; c = strchr(c, ',')) {
			c += *c == ',';
			if (!strncmp(c, col, n) && (c[n] == ',' || c[n] == '\n' || c[n] == '\r' || !c[n])) {
				found = true;
				break;
			}
		}
	}
	fclose(f);
	return found;
}

int plot_timeseries(const char *csv, const char *out, const char *title, struct sp_err *err)
{
	const char *term = terminal_for(out);
	const char *slash = strrchr(out, '/'), *base = slash ? slash + 1 : out;
	char *dir = NULL, *abs_csv = NULL, *script = NULL, *spath = NULL;
	sigset_t old;
	FILE *f;
	bool zero;
	int rc = 0;

	if (!term)
		return sp_err_set(err, SP_EINVAL, "%s: plot file must end in .png or .svg", out);
	abs_csv = realpath(csv, NULL); /* gnuplot runs in out's directory */
	if (!abs_csv)
		return sp_err_set(err, SP_EIO, "%s: %s", csv, strerror(errno));
	dir = slash ? strndup(out, (size_t)(slash - out) + (slash == out)) : strdup(".");
	if (!dir || asprintf(&script, ".%s.gp.tmp-%ld", base, (long)getpid()) < 0 ||
	    !(spath = rep_path(dir, script))) {
		rc = sp_err_set(err, SP_ENOMEM, "out of memory");
		goto out;
	}
	rep_signals_hold(&old);
	f = fopen(spath, "w");
	if (!f) {
		rc = sp_err_set(err, SP_EIO, "%s: cannot write the plot there: %s", out, strerror(errno));
		rep_signals_release(&old);
		goto out;
	}
	fprintf(f, "if (!exists('sfx')) sfx = ''\nset terminal %s\nset output ", term);
	rep_gp_quoted(f, base);
	fputs(".sfx\nset termoption noenhanced\nset datafile separator ','\n"
	      "set key below box opaque\n"
	      "set grid\nset offsets 0, 0, graph 0.06, 0\nset yrange [0:*]\n"
	      "set xlabel 'simulated time (s)'\nset ylabel 'pages saved'\n"
	      "set y2label 'scanner CPU, % of one core (per sample interval)'\n"
	      "set ytics nomirror\nset y2tics\nset y2range [0:*]\n"
	      "set title ", f);
	rep_gp_quoted(f, title);
	fputs("\n# CPU %: the scanner time between two samples over their distance\n"
	      "pt = 0; pc = 0\n"
	      "cpu(t, c) = (t > pt ? (r = (c - pc) / 1e4 / (t - pt)) : (r = NaN), pt = t, pc = c, r)\n"
	      "plot ", f);
	rep_gp_quoted(f, abs_csv);
	zero = has_column(abs_csv, "ksm_zero_pages"); /* none before Linux 6.6 */
	fprintf(f, " using (column('time_ms')/1000):(column('pages_sharing')%s"
		"+column('thp_zero_pages')) with lines lw 2.5 lc rgb '#1f77b4' "
		"title 'saved (pages_sharing%s + thp_zero_pages)', \\\n  ''"
		" using (column('time_ms')/1000):(column('oracle_saving')) with lines lw 2.5 dt (6,4) "
		"lc rgb '#000000' title 'oracle (most any algorithm could save)', \\\n  ''"
		" using (column('time_ms')/1000):(cpu(column('time_ms'), column('cpu_ns'))) axes x1y2 "
		"with steps lw 1.5 lc rgb '#d62728' title 'scanner CPU (%% of one core)'\n",
		zero ? "+column('ksm_zero_pages')" : "", zero ? " + ksm_zero_pages" : "");
	if (fclose(f) != 0) {
		rc = sp_err_set(err, SP_EIO, "%s: cannot write the plot there: %s", out, strerror(errno));
		unlink(spath);
		rep_signals_release(&old);
		goto out;
	}
	rc = rep_gnuplot(dir, script, &base, 1, err);
	unlink(spath);
	rep_signals_release(&old);
out:
	free(abs_csv);
	free(dir);
	free(script);
	free(spath);
	return rc;
}
