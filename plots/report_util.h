/*
 * report_util.h - pieces shared by the comparison and the sweep report
 * (plots/ internal): directories, HTML escaping, CSV text fields, and the
 * gnuplot runner that renames images into place only on success.
 */
#ifndef SP_PLOT_REPORT_UTIL_H
#define SP_PLOT_REPORT_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include <signal.h>

#include "atomic_file.h"
#include "sp_error.h"

/* mkdir -p dir. */
int rep_mkdir_p(const char *dir, struct sp_err *err);
/* dir "/" name, malloc'd (NULL when out of memory). */
char *rep_path(const char *dir, const char *name);
/* Opens DIR/name as an atomic_file (see traces/atomic_file.h), mode 0644. */
int rep_open(struct atomic_file *af, const char *dir, const char *name, struct sp_err *err);
/* Removes dir/name if present. */
int rep_unlink(const char *dir, const char *name, struct sp_err *err);
/*
 * The escaping helpers, one per target language: every text that comes from
 * an input (trace descriptions, guest and algorithm names, CSV fields,
 * parameter names, paths) reaches HTML, CSV or gnuplot only through them.
 * (Terminal output: sp_term_escape in sp_error.h.)
 */
/* HTML text or attribute value: < > & " escaped. */
void rep_html(FILE *f, const char *s);
/* A CSV text field, quoted the libcsv way. */
void rep_csv_text(FILE *f, const char *s);
/* A gnuplot single-quoted string literal; control bytes become '?', so it stays on its line. */
void rep_gp_quoted(FILE *f, const char *s);
/*
 * A string field of a gnuplot data block ($name << EOD ... EOD), in double
 * quotes: control bytes become '?', '"' becomes '\'' and '\\' '/', so it can
 * neither end its field, its line, nor the block.
 */
void rep_gp_datum(FILE *f, const char *s);
/*
 * Defers SIGINT, SIGTERM and SIGHUP (for this thread) while named temporary
 * files exist, so that an interrupt cannot leave them behind; release
 * delivers what arrived meanwhile.
 */
void rep_signals_hold(sigset_t *old);
void rep_signals_release(const sigset_t *old);
/* A number for a CSV cell: "%.10g", empty if NAN, "inf" if infinite. */
void rep_csv_num(FILE *f, double v);
/*
 * Runs `gnuplot SCRIPT` in dir, with sfx set to a temporary suffix that the
 * script appends to every output name; on success renames each of the
 * nout outputs (names relative to dir) into place, otherwise removes them.
 */
int rep_gnuplot(const char *dir, const char *script, const char *const *outputs, size_t nout,
		struct sp_err *err);
/* rep_gnuplot() for the outputs NAME.png and NAME.svg of each of the n plots (names < 40 bytes). */
int rep_gnuplot_plots(const char *dir, const char *script, const char *const *plots, size_t n,
		      struct sp_err *err);
/* The <head> with inline CSS, up to and including <body>. */
void rep_html_head(FILE *f, const char *title);
/*
 * The opening every report shares: the head titled "CMD: NAME", the heading
 * "HEADING <code>NAME</code>", and a meta table opened with its trace and
 * description rows (the caller adds rows and closes the table).
 */
void rep_html_intro(FILE *f, const char *cmd, const char *heading, const char *name,
		    const char *trace, const char *desc);
/*
 * "<h2>HEADING</h2>" and the plots: a figure per name (NAME.svg shown,
 * linked to NAME.png) with its caption, in a <div class="plots">.
 */
void rep_html_figures(FILE *f, const char *heading, const char *const *names,
		      const char *const *captions, size_t n);

/*
 * A CSV file read whole with libcsv (strict): rows[i][j] as C strings,
 * ncols[i] fields in row i (row 0: the header, if the file has one).  A
 * NUL byte in a field, an unterminated quote or a file that is not regular
 * is an error naming the file.  Free with rep_table_free.
 */
struct rep_table {
	char ***rows;
	size_t *ncols;
	size_t nrows, cap;
	char **cur;
	size_t ncur, capcur;
	bool oom;
	size_t nul_row, nul_col; /* first field holding a NUL byte (1-based row), 0 if none */
};
int rep_table_read(const char *path, struct rep_table *t, struct sp_err *err);
void rep_table_free(struct rep_table *t);

#endif
