/*
 * report_util.c - implements the helpers of report_util.h.
 *
 * The gnuplot runner forks gnuplot with its working directory set to the
 * report directory (the scripts name files relative to it, so a user can
 * rerun them there), collects its output through a pipe to quote the first
 * line in an error, and treats the images as one unit: all are renamed into
 * place after gnuplot exited 0, none otherwise.
 */
#define _GNU_SOURCE
#include "report_util.h"
#include "report.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <csv.h>

int rep_mkdir_p(const char *dir, struct sp_err *err)
{
	char *p;
	int rc = 0;

	if (!dir || !*dir)
		return sp_err_set(err, SP_EINVAL, "a report directory name is empty");
	p = strdup(dir);
	if (!p)
		return sp_err_set(err, SP_ENOMEM, "out of memory");
	for (char *s = p + 1; rc == 0; s++) {
		if (*s != '/' && *s != '\0')
			continue;
		char c = *s;

		*s = '\0';
		if (mkdir(p, 0777) != 0 && errno != EEXIST)
			rc = sp_err_set(err, SP_EIO, "%s: cannot create the directory: %s", p,
					strerror(errno));
		*s = c;
		if (c == '\0')
			break;
	}
	if (rc == 0) {
		struct stat st;

		if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode))
			rc = sp_err_set(err, SP_EIO, "%s: not a directory", dir);
	}
	free(p);
	return rc;
}

int plot_mkdir_p(const char *dir, struct sp_err *err)
{
	return rep_mkdir_p(dir, err);
}

char *rep_path(const char *dir, const char *name)
{
	char *s;

	return asprintf(&s, "%s/%s", dir, name) < 0 ? NULL : s;
}

int rep_open(struct atomic_file *af, const char *dir, const char *name, struct sp_err *err)
{
	char *path = rep_path(dir, name);
	int rc;

	if (!path)
		return sp_err_set(err, SP_ENOMEM, "out of memory");
	rc = atomic_file_open(af, path, 0644, err);
	free(path);
	return rc;
}

int rep_unlink(const char *dir, const char *name, struct sp_err *err)
{
	char *p = rep_path(dir, name);
	int rc = 0;

	if (!p)
		return sp_err_set(err, SP_ENOMEM, "out of memory");
	if (unlink(p) != 0 && errno != ENOENT)
		rc = sp_err_set(err, SP_EIO, "%s: cannot remove: %s", p, strerror(errno));
	free(p);
	return rc;
}

void rep_html(FILE *f, const char *s)
{
	for (; *s; s++) {
		switch (*s) {
		case '<': fputs("&lt;", f); break;
		case '>': fputs("&gt;", f); break;
		case '&': fputs("&amp;", f); break;
		case '"': fputs("&quot;", f); break;
		default: fputc(*s, f);
		}
	}
}

void rep_csv_text(FILE *f, const char *s)
{
	if (strpbrk(s, ",\"\r\n") || (*s && (s[0] == ' ' || s[strlen(s) - 1] == ' ')))
		csv_fwrite(f, s, strlen(s));
	else
		fputs(s, f);
}

/* A byte gnuplot must never see raw in a script: it could end a line or a data block. */
static bool gp_unsafe(unsigned char c)
{
	return c < 0x20 || c == 0x7f;
}

void rep_gp_quoted(FILE *f, const char *s)
{
	fputc('\'', f);
	for (; *s; s++) {
		if (*s == '\'')
			fputc('\'', f);
		fputc(gp_unsafe((unsigned char)*s) ? '?' : *s, f);
	}
	fputc('\'', f);
}

void rep_gp_datum(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		fputc(gp_unsafe(c) ? '?' : c == '"' ? '\'' : c == '\\' ? '/' : c, f);
	}
	fputc('"', f);
}

void rep_csv_num(FILE *f, double v)
{
	if (isnan(v))
		return;
	if (isinf(v))
		fputs(v > 0 ? "inf" : "-inf", f);
	else
		fprintf(f, "%.10g", v);
}

static void tmp_name(char *buf, size_t len, const char *out, const char *sfx)
{
	snprintf(buf, len, "%s%s", out, sfx);
}

void rep_signals_hold(sigset_t *old)
{
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &set, old);
}

void rep_signals_release(const sigset_t *old)
{
	pthread_sigmask(SIG_SETMASK, old, NULL);
}

/*
 * Puts the finished file tmp in place as fin: a rename, unless fin is a
 * symbolic link, device or FIFO, which is written through (atomic_file) and
 * so kept.
 */
static int install(const char *tmp, const char *fin, struct sp_err *err)
{
	struct stat lst;
	struct atomic_file af;
	char buf[65536];
	size_t got;
	FILE *in;
	int rc;

	if (lstat(fin, &lst) != 0 || S_ISREG(lst.st_mode)) {
		if (rename(tmp, fin) != 0)
			return sp_err_set(err, SP_EIO, "%s: %s", fin, strerror(errno));
		return 0;
	}
	in = fopen(tmp, "rb");
	if (!in)
		return sp_err_set(err, SP_EIO, "%s: %s", fin, strerror(errno));
	rc = atomic_file_open(&af, fin, 0644, err);
	while (rc == 0 && (got = fread(buf, 1, sizeof(buf), in)) > 0) {
		if (fwrite(buf, 1, got, af.f) != got)
			rc = sp_err_set(err, SP_EIO, "%s: write failed: %s", fin, strerror(errno));
	}
	if (rc == 0 && ferror(in))
		rc = sp_err_set(err, SP_EIO, "%s: %s", fin, strerror(errno));
	fclose(in);
	if (rc == 0)
		rc = atomic_file_commit(&af, err);
	else if (af.f)
		atomic_file_abort(&af);
	unlink(tmp);
	return rc;
}

/* In the child: gnuplot in dir on script, stdin from /dev/null, stdout and stderr to the pipe. */
static void gnuplot_exec(int fds[2], const sigset_t *old, const char *dir, const char *arg,
			 const char *script) __attribute__((noreturn));

static void gnuplot_exec(int fds[2], const sigset_t *old, const char *dir, const char *arg,
			 const char *script)
{
	int null = open("/dev/null", O_RDONLY);

	rep_signals_release(old);

	if (null >= 0)
		dup2(null, 0);
	dup2(fds[1], 1);
	dup2(fds[1], 2);
	close(fds[0]);
	close(fds[1]);
	if (chdir(dir) != 0)
		_exit(126);
	execlp("gnuplot", "gnuplot", "-e", arg, script, (char *)NULL);
	_exit(127);
}

/* Reads fd to its end, keeping the first non-empty line (leading spaces dropped) in first. */
static void first_line(int fd, char *first, size_t len)
{
	char buf[4096];
	size_t flen = 0;
	bool line_done = false;
	ssize_t got;

	while ((got = read(fd, buf, sizeof(buf))) != 0) {
		if (got < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		for (ssize_t i = 0; i < got && !line_done; i++) {
			if (buf[i] == '\n') {
				line_done = flen > 0;
				continue;
			}
			if (flen + 1 < len && (flen > 0 || buf[i] != ' '))
				first[flen++] = buf[i];
		}
	}
	first[flen] = '\0';
}

/* gnuplot's exit: 0, or the error (with its first line of output). */
static int gnuplot_status(pid_t pid, const char *dir, const char *script, const char *first,
			  struct sp_err *err)
{
	int status, code;

	while (waitpid(pid, &status, 0) < 0) {
		if (errno != EINTR) {
			status = -1;
			break;
		}
	}
	if (status != -1 && WIFEXITED(status) && WEXITSTATUS(status) == 0)
		return 0;
	code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
	if (code == 127)
		return sp_err_set(err, SP_ENOTSUP, "cannot run gnuplot: not installed (apt-get install gnuplot-nox)");
	return sp_err_set(err, SP_EIO, "gnuplot failed on %s/%s (exit status %d)%s%s", dir,
			  script, code, first[0] ? ": " : "", first);
}

/* Each output's temporary image (NAME with sfx) installed if rc is 0, else removed. */
static int install_outputs(const char *dir, const char *const *outputs, size_t nout, const char *sfx,
			   int rc, struct sp_err *err)
{
	for (size_t i = 0; i < nout; i++) {
		char name[1024], *tmp, *fin;

		tmp_name(name, sizeof(name), outputs[i], sfx);
		tmp = rep_path(dir, name);
		fin = rep_path(dir, outputs[i]);
		if (!tmp || !fin) {
			if (rc == 0)
				rc = sp_err_set(err, SP_ENOMEM, "out of memory");
		} else if (rc == 0) {
			rc = install(tmp, fin, err);
		}
		if (tmp && rc != 0)
			unlink(tmp);
		free(tmp);
		free(fin);
	}
	return rc;
}

int rep_gnuplot(const char *dir, const char *script, const char *const *outputs, size_t nout,
		struct sp_err *err)
{
	char sfx[48], arg[80], first[200] = "";
	int fds[2], rc;
	sigset_t old;
	pid_t pid;

	snprintf(sfx, sizeof(sfx), ".tmp-%ld", (long)getpid());
	snprintf(arg, sizeof(arg), "sfx='%s'", sfx);
	if (pipe(fds) != 0)
		return sp_err_set(err, SP_EIO, "cannot run gnuplot: %s", strerror(errno));
	/* An interrupt waits until gnuplot's temporary images are renamed or removed. */
	rep_signals_hold(&old);
	pid = fork();
	if (pid < 0) {
		close(fds[0]);
		close(fds[1]);
		rep_signals_release(&old);
		return sp_err_set(err, SP_EIO, "cannot run gnuplot: %s", strerror(errno));
	}
	if (pid == 0)
		gnuplot_exec(fds, &old, dir, arg, script);
	close(fds[1]);
	first_line(fds[0], first, sizeof(first));
	close(fds[0]);
	rc = gnuplot_status(pid, dir, script, first, err);
	rc = install_outputs(dir, outputs, nout, sfx, rc, err);
	rep_signals_release(&old);
	return rc;
}

int rep_gnuplot_plots(const char *dir, const char *script, const char *const *plots, size_t n,
		      struct sp_err *err)
{
	const char **outs = calloc(2 * n, sizeof(*outs));
	char (*names)[48] = calloc(2 * n, sizeof(*names));
	int rc;

	if (!outs || !names) {
		free(outs);
		free(names);
		return sp_err_set(err, SP_ENOMEM, "out of memory");
	}
	for (size_t i = 0; i < n; i++) {
		snprintf(names[2 * i], sizeof(names[0]), "%s.png", plots[i]);
		snprintf(names[2 * i + 1], sizeof(names[0]), "%s.svg", plots[i]);
		outs[2 * i] = names[2 * i];
		outs[2 * i + 1] = names[2 * i + 1];
	}
	rc = rep_gnuplot(dir, script, outs, 2 * n, err);
	free(outs);
	free(names);
	return rc;
}

void rep_html_intro(FILE *f, const char *cmd, const char *heading, const char *name,
		    const char *trace, const char *desc)
{
	char title[512];

	snprintf(title, sizeof(title), "%s: %s", cmd, name);
	rep_html_head(f, title);
	fprintf(f, "<h1>%s <code>", heading);
	rep_html(f, name);
	fputs("</code></h1>\n<table class=\"meta\">\n<tr><td>trace</td><td class=\"mono\">", f);
	rep_html(f, trace);
	fputs("</td></tr>\n<tr><td>description</td><td>", f);
	rep_html(f, desc);
	fputs("</td></tr>\n", f);
}

void rep_html_head(FILE *f, const char *title)
{
	fputs("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>", f);
	rep_html(f, title);
	fputs("</title>\n<style>\n"
	      "body{font-family:system-ui,-apple-system,'Segoe UI',Helvetica,Arial,sans-serif;"
	      "margin:0 auto;max-width:1240px;padding:16px 24px;color:#222;line-height:1.45}\n"
	      "h1{font-size:1.6em;margin:.2em 0 .4em}h2{font-size:1.25em;margin:1.4em 0 .5em;"
	      "border-bottom:1px solid #ddd;padding-bottom:.2em}\n"
	      "table{border-collapse:collapse;font-size:.92em;margin:.4em 0}\n"
	      "th,td{border:1px solid #ccc;padding:4px 8px;text-align:right;vertical-align:top}\n"
	      "th{background:#f2f2f2}td.l,th.l{text-align:left}\n"
	      "tr:nth-child(even) td{background:#fafafa}\n"
	      ".sw{display:inline-block;width:.9em;height:.9em;border-radius:2px;"
	      "margin-right:.4em;vertical-align:-.1em}\n"
	      ".plots{display:grid;grid-template-columns:repeat(auto-fit,minmax(560px,1fr));gap:14px}\n"
	      ".plots figure{margin:0;border:1px solid #ddd;padding:6px;background:#fff}\n"
	      ".plots img{width:100%;height:auto;display:block}\n"
	      "figcaption{font-size:.85em;color:#555;margin-top:4px}\n"
	      ".meta td{border:none;text-align:left;padding:1px 12px 1px 0}\n"
	      ".meta td:first-child{color:#666;white-space:nowrap}\n"
	      "code,.mono{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:.9em}\n"
	      ".note{color:#666;font-size:.9em}.best{font-weight:600}\n"
	      "p.algo{margin:.5em 0 .9em}\n"
	      ".never{color:#a33}.ok{color:#1a7f37}.warn{color:#9a6700}.bad{color:#cf222e}\n"
	      "ul.answers{padding-left:1.2em}ul.answers li{margin:.35em 0}\n"
	      "</style>\n</head>\n<body>\n", f);
}

void rep_html_figures(FILE *f, const char *heading, const char *const *names,
		      const char *const *captions, size_t n)
{
	fprintf(f, "<h2>%s</h2>\n<div class=\"plots\">\n", heading);
	for (size_t i = 0; i < n; i++)
		fprintf(f, "<figure><a href=\"%s.png\"><img src=\"%s.svg\" alt=\"%s\"></a>"
			   "<figcaption>%s</figcaption></figure>\n",
			names[i], names[i], names[i], captions[i]);
	fputs("</div>\n", f);
}

/* ---- reading CSV with libcsv -------------------------------------------- */


static void field_cb(void *s, size_t len, void *arg)
{
	struct rep_table *t = arg;
	char *f;

	if (t->oom)
		return;
	if (t->ncur == t->capcur) {
		size_t cap = t->capcur ? 2 * t->capcur : 32;
		char **c = realloc(t->cur, cap * sizeof(*c));

		if (!c) {
			t->oom = true;
			return;
		}
		t->cur = c;
		t->capcur = cap;
	}
	if (s && memchr(s, '\0', len) && !t->nul_row) {
		/* A NUL would cut the field short where C strings are read. */
		t->nul_row = t->nrows + 1;
		t->nul_col = t->ncur + 1;
	}
	f = malloc(len + 1);
	if (!f) {
		t->oom = true;
		return;
	}
	if (len)
		memcpy(f, s, len);
	f[len] = '\0';
	t->cur[t->ncur++] = f;
}

static void row_cb(int c, void *arg)
{
	struct rep_table *t = arg;

	(void)c;
	if (t->oom)
		return;
	if (t->nrows == t->cap) {
		size_t cap = t->cap ? 2 * t->cap : 64;
		char ***r = realloc(t->rows, cap * sizeof(*r));
		size_t *nc = r ? realloc(t->ncols, cap * sizeof(*nc)) : NULL;

		if (r)
			t->rows = r;
		if (!nc) {
			t->oom = true;
			return;
		}
		t->ncols = nc;
		t->cap = cap;
	}
	t->rows[t->nrows] = t->cur;
	t->ncols[t->nrows++] = t->ncur;
	t->cur = NULL;
	t->ncur = t->capcur = 0;
}

void rep_table_free(struct rep_table *t)
{
	for (size_t i = 0; i < t->nrows; i++) {
		for (size_t j = 0; j < t->ncols[i]; j++)
			free(t->rows[i][j]);
		free(t->rows[i]);
	}
	for (size_t j = 0; j < t->ncur; j++)
		free(t->cur[j]);
	free(t->cur);
	free(t->rows);
	free(t->ncols);
	memset(t, 0, sizeof(*t));
}

int rep_table_read(const char *path, struct rep_table *t, struct sp_err *err)
{
	struct csv_parser p;
	char buf[65536];
	size_t got;
	struct stat st;
	int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC), rc = 0; /* a FIFO: no wait */
	FILE *f;

	memset(t, 0, sizeof(*t));
	if (fd < 0)
		return sp_err_set(err, SP_EIO, "%s: %s", path, strerror(errno));
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return sp_err_set(err, SP_EIO, "%s: not a regular file", path);
	}
	f = fdopen(fd, "rb");
	if (!f) {
		close(fd);
		return sp_err_set(err, SP_ENOMEM, "out of memory");
	}
	if (csv_init(&p, CSV_STRICT | CSV_APPEND_NULL) != 0) {
		fclose(f);
		return sp_err_set(err, SP_ENOMEM, "out of memory");
	}
	while (rc == 0 && (got = fread(buf, 1, sizeof(buf), f)) > 0) {
		if (csv_parse(&p, buf, got, field_cb, row_cb, t) != got)
			rc = sp_err_set(err, SP_ECORRUPT, "%s: not valid CSV: %s", path,
					csv_strerror(csv_error(&p)));
	}
	if (rc == 0 && ferror(f))
		rc = sp_err_set(err, SP_EIO, "%s: %s", path, strerror(errno));
	if (rc == 0 && csv_fini(&p, field_cb, row_cb, t) != 0)
		rc = sp_err_set(err, SP_ECORRUPT, "%s: not valid CSV (unterminated quote?)", path);
	if (rc == 0 && t->oom)
		rc = sp_err_set(err, SP_ENOMEM, "out of memory reading %s", path);
	if (rc == 0 && t->nul_row)
		rc = sp_err_set(err, SP_ECORRUPT, "%s: row %zu, column %zu holds a NUL byte", path,
				t->nul_row, t->nul_col);
	csv_free(&p);
	fclose(f);
	if (rc < 0)
		rep_table_free(t);
	return rc;
}
