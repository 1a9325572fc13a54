/*
 * plot.c - implements plot_timeseries(): writes a gnuplot program that reads
 * the CSV by column name, runs gnuplot on it, and renames the image into
 * place only when gnuplot exited 0.
 */
#define _GNU_SOURCE
#include "plot.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static const char *terminal_for(const char *out)
{
	const char *dot = strrchr(out, '.');

	if (dot && !strcmp(dot, ".svg"))
		return "svg size 900,500 dynamic background rgb 'white'";
	if (dot && !strcmp(dot, ".png"))
		return "pngcairo size 900,500";
	return NULL;
}

/* gnuplot string literal: single quotes, a quote doubled. */
static void put_quoted(FILE *f, const char *s)
{
	fputc('\'', f);
	for (; *s; s++) {
		if (*s == '\'')
			fputc('\'', f);
		fputc(*s, f);
	}
	fputc('\'', f);
}

int plot_timeseries(const char *csv, const char *out, const char *title, struct sp_err *err)
{
	const char *term = terminal_for(out);
	char *tmp = NULL;
	FILE *gp;
	int status, rc = 0;

	if (!term)
		return sp_err_set(err, SP_EINVAL, "%s: plot file must end in .png or .svg", out);
	if (access(csv, R_OK) != 0)
		return sp_err_set(err, SP_EIO, "%s: %s", csv, strerror(errno));
	if (asprintf(&tmp, "%s.tmp-%ld%s", out, (long)getpid(), strrchr(out, '.')) < 0)
		return sp_err_set(err, SP_ENOMEM, "out of memory");
	gp = popen("gnuplot 2>&1", "w");
	if (!gp) {
		free(tmp);
		return sp_err_set(err, SP_ENOTSUP, "cannot run gnuplot: %s", strerror(errno));
	}
	fprintf(gp, "set terminal %s\nset output ", term);
	put_quoted(gp, tmp);
	fputs("\nset termoption noenhanced\nset datafile separator ','\nset key bottom right\nset grid\n"
	      "set xlabel 'simulated time (s)'\nset ylabel 'pages saved (4 KiB pages)'\n"
	      "set title ", gp);
	put_quoted(gp, title);
	fputs("\nplot ", gp);
	put_quoted(gp, csv);
	fputs(" using (column('time_ms')/1000):(column('pages_sharing')+column('ksm_zero_pages')"
	      "+column('thp_zero_pages')) with lines lw 2 lc rgb '#1f77b4' "
	      "title 'saved (pages_sharing + ksm_zero_pages + thp_zero_pages)', \\\n  ''"
	      " using (column('time_ms')/1000):(column('oracle_saving')) with lines lw 1 dt 2 "
	      "lc rgb '#555555' title 'oracle (most any algorithm could save)'\n",
	      gp);
	status = pclose(gp);
	if (status == -1 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		rc = sp_err_set(err, WIFEXITED(status) && WEXITSTATUS(status) == 127 ? SP_ENOTSUP : SP_EIO,
				"gnuplot failed to plot %s (exit status %d)", csv,
				WIFEXITED(status) ? WEXITSTATUS(status) : -1);
		unlink(tmp);
	} else if (rename(tmp, out) != 0) {
		rc = sp_err_set(err, SP_EIO, "%s: %s", out, strerror(errno));
		unlink(tmp);
	}
	free(tmp);
	return rc;
}
