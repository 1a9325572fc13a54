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
		return "svg size 900,500 dynamic background rgb 'white'";
	if (dot && !strcmp(dot, ".png"))
		return "pngcairo size 900,500";
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
	f = fopen(spath, "w");
	if (!f) {
		rc = sp_err_set(err, SP_EIO, "%s: %s", spath, strerror(errno));
		goto out;
	}
	fprintf(f, "if (!exists('sfx')) sfx = ''\nset terminal %s\nset output ", term);
	rep_gp_quoted(f, base);
	fputs(".sfx\nset termoption noenhanced\nset datafile separator ','\nset key bottom right\n"
	      "set grid\nset xlabel 'simulated time (s)'\nset ylabel 'pages saved (4 KiB pages)'\n"
	      "set title ", f);
	rep_gp_quoted(f, title);
	fputs("\nplot ", f);
	rep_gp_quoted(f, abs_csv);
	zero = has_column(abs_csv, "ksm_zero_pages"); /* none before Linux 6.6 */
	fprintf(f, " using (column('time_ms')/1000):(column('pages_sharing')%s"
		"+column('thp_zero_pages')) with lines lw 2 lc rgb '#1f77b4' "
		"title 'saved (pages_sharing%s + thp_zero_pages)', \\\n  ''"
		" using (column('time_ms')/1000):(column('oracle_saving')) with lines lw 1 dt 2 "
		"lc rgb '#555555' title 'oracle (most any algorithm could save)'\n",
		zero ? "+column('ksm_zero_pages')" : "", zero ? " + ksm_zero_pages" : "");
	if (fclose(f) != 0) {
		rc = sp_err_set(err, SP_EIO, "%s: %s", spath, strerror(errno));
		unlink(spath);
		goto out;
	}
	rc = rep_gnuplot(dir, script, &base, 1, err);
	unlink(spath);
out:
	free(abs_csv);
	free(dir);
	free(script);
	free(spath);
	return rc;
}
