/*
 * sweep.c - implements the sweep report: per-run CSVs (runs.csv and the
 * shares of a split sweep), reading and checking shares, per-point
 * statistics over seeds (GSL), the Pareto frontier of savings against CPU,
 * the gnuplot script and index.html.
 *
 * A run is identified by run = point * seeds + (seed - 1); a share I of N
 * holds the runs with run % N == I.  Every row of a per-run CSV carries the
 * whole sweep definition (algorithm, trace, options, page size, points,
 * seeds; the varied keys are the header), so shares written by different
 * machines are checked against each other without any other file.
 * Statistics: mean, sample standard deviation and the half-width of the 95%
 * confidence interval of the mean, t(0.975, n-1) * sd / sqrt(n); with one
 * seed the last two are undefined (NAN, an empty CSV cell).
 */
#define _GNU_SOURCE
#include "report.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <csv.h>
#include <gsl/gsl_cdf.h>
#include <gsl/gsl_statistics_double.h>

#include "atomic_file.h"
#include "report_util.h"

/* Columns after run,point,seed,<keys...> in a per-run CSV. */
static const char *const run_tail[] = {
	"final_saved_pages", "peak_saved_pages", "oracle_pages", "time_to_90pct_ms", "cpu_ns",
	"cow_breaks", "end_ms", "algorithm", "page_size", "points", "seeds", "params", "trace",
	"options", "full_scans", "still_merging", "present_pages", "remote_sharers",
};
#define NTAIL (sizeof(run_tail) / sizeof(run_tail[0]))

const char plot_sweep_header_tail[] =
	"runs,saved_mean_pages,saved_sd_pages,saved_ci95_pages,saved_mean_mib,saved_ci95_mib,"
	"t90_mean_s,t90_sd_s,t90_ci95_s,cpu_mean_s,cpu_sd_s,cpu_ci95_s,cow_breaks_mean,"
	"cow_breaks_sd,cow_breaks_ci95,mib_per_cpu_s,pareto,cpu_pct_of_core,saved_pct_of_present,"
	"remote_sharers_mean,note";

void plot_stat_compute(const double *x, size_t n, struct plot_stat *out)
{
	out->mean = n ? gsl_stats_mean(x, 1, n) : NAN;
	if (n >= 2) {
		out->sd = gsl_stats_sd(x, 1, n);
		out->ci95 = gsl_cdf_tdist_Pinv(0.975, (double)(n - 1)) * out->sd / sqrt((double)n);
	} else {
		out->sd = NAN;
		out->ci95 = NAN;
	}
}

/* ---- per-run CSV ----------------------------------------------------------- */

int plot_sweep_write_runs(const char *path, const struct plot_sweep_def *d,
			  const struct plot_sweep_run *rows, size_t n, struct sp_err *err)
{
	struct atomic_file af;
	int rc = atomic_file_open(&af, path, 0644, err);

	if (rc < 0)
		return rc;
	fputs("run,point,seed", af.f);
	for (uint32_t k = 0; k < d->nkeys; k++) {
		fputc(',', af.f);
		rep_csv_text(af.f, d->keys[k]);
	}
	for (size_t k = 0; k < NTAIL; k++)
		fprintf(af.f, ",%s", run_tail[k]);
	fputc('\n', af.f);
	for (size_t i = 0; i < n; i++) {
		const struct plot_sweep_run *r = &rows[i];

		fprintf(af.f, "%llu,%llu,%llu", (unsigned long long)r->run,
			(unsigned long long)r->point, (unsigned long long)r->seed);
		for (uint32_t k = 0; k < d->nkeys; k++)
			fprintf(af.f, ",%.17g", r->values[k]);
		fprintf(af.f, ",%lld,%lld,%lld,", (long long)r->s.final_saved,
			(long long)r->s.peak_saved, (long long)r->s.oracle_final);
		if (plot_settled(&r->s)) /* never: an empty cell */
			fprintf(af.f, "%llu", (unsigned long long)r->s.t90_ms);
		fprintf(af.f, ",%lld,%lld,%llu,", (long long)r->s.cpu_ns, (long long)r->s.cow_breaks,
			(unsigned long long)r->s.end_ms);
		rep_csv_text(af.f, d->algorithm);
		fprintf(af.f, ",%u,%llu,%llu,", d->page_size, (unsigned long long)d->points,
			(unsigned long long)d->seeds);
		rep_csv_text(af.f, r->params);
		fputc(',', af.f);
		rep_csv_text(af.f, d->trace);
		fputc(',', af.f);
		rep_csv_text(af.f, d->options);
		fprintf(af.f, ",%lld,%d,%lld,%lld\n", (long long)r->s.full_scans,
			r->s.still_merging ? 1 : 0, (long long)r->s.present,
			(long long)r->s.remote_sharers);
	}
	return atomic_file_commit(&af, err);
}

static bool parse_u64(const char *s, uint64_t *out)
{
	char *end;

	if (!*s || *s == '-')
		return false;
	errno = 0;
	*out = strtoull(s, &end, 10);
	return !errno && !*end;
}

static bool parse_i64(const char *s, int64_t *out)
{
	char *end;

	if (!*s)
		return false;
	errno = 0;
	*out = strtoll(s, &end, 10);
	return !errno && !*end;
}

static bool parse_dbl(const char *s, double *out)
{
	char *end;

	if (!*s)
		return false;
	errno = 0;
	*out = strtod(s, &end);
	return !errno && !*end && isfinite(*out);
}

static bool pow2_page_size(uint64_t ps)
{
	return ps >= 512 && ps <= (2u << 20) && (ps & (ps - 1)) == 0;
}

/* A time to 90% in ms; an empty cell is "never". */
static bool parse_t90(const char *s, uint64_t *out)
{
	if (!*s) {
		*out = PLOT_T90_NEVER;
		return true;
	}
	return parse_u64(s, out) && *out != PLOT_T90_NEVER;
}

struct share_file {
	char name[64];
	uint64_t i, n;
};

static int cmp_share(const void *a, const void *b)
{
	const struct share_file *x = a, *y = b;

	return x->i < y->i ? -1 : x->i > y->i;
}

static int cmp_run(const void *a, const void *b)
{
	const struct plot_sweep_run *x = a, *y = b;

	return x->run < y->run ? -1 : x->run > y->run;
}

/*
 * The values of one row that parse but cannot be: an algorithm this build
 * does not have, a varied key it does not have or a value outside its range,
 * a page size that is no page size, negative or inconsistent results.
 */
static int check_row(const char *path, size_t row, const struct plot_sweep_run *r, const char *algo_name,
		     uint32_t nkeys, char *const *keys, uint64_t ps, struct sp_err *err)
{
	const struct algo_ops *a = algo_find(algo_name);

	if (!a)
		return sp_err_set(err, SP_ECORRUPT, "%s: row %zu: unknown algorithm '%s'", path, row,
				  algo_name);
	for (uint32_t k = 0; k < nkeys; k++) {
		int ki = algo_param_index(a, keys[k]);
		const struct algo_param *pp;

		if (ki < 0)
			return sp_err_set(err, SP_ECORRUPT, "%s: varied key '%s' is not a parameter of %s",
					  path, keys[k], a->name);
		pp = &a->params[ki];
		if (r->values[k] < pp->min || r->values[k] > pp->max ||
		    (pp->integer && r->values[k] != (double)(int64_t)r->values[k]))
			return sp_err_set(err, SP_ECORRUPT, "%s: row %zu: %s=%.17g is not a valid value "
					  "(%s%g..%g)", path, row, keys[k], r->values[k],
					  pp->integer ? "integer " : "", pp->min, pp->max);
	}
	if (!pow2_page_size(ps))
		return sp_err_set(err, SP_ECORRUPT, "%s: row %zu: page size %llu is not a power of two "
				  "in [512, 2 MiB]", path, row, (unsigned long long)ps);
	if (r->s.final_saved < 0 || r->s.peak_saved < r->s.final_saved || r->s.oracle_final < 0 ||
	    r->s.cpu_ns < 0 || r->s.cow_breaks < 0 || (plot_settled(&r->s) && r->s.t90_ms > r->s.end_ms))
		return sp_err_set(err, SP_ECORRUPT, "%s: row %zu: impossible results (negative, a peak "
				  "below the final savings, or time to 90%% after the end)", path, row);
	return 0;
}

static int cmp_values(const void *x, const void *y, void *nkeys)
{
	const double *a = x, *b = y;

	for (uint32_t k = 0; k < *(const uint32_t *)nkeys; k++)
		if (a[k] != b[k])
			return a[k] < b[k] ? -1 : 1;
	return 0;
}

/*
 * rows sorted and complete: every seed of a point has the point's values,
 * no two points have the same values, and the points are the whole grid
 * (the product of each key's distinct values).
 */
static int check_grid(const char *dir, const struct plot_sweep_def *d,
		      const struct plot_sweep_run *rows, struct sp_err *err)
{
	double (*v)[PLOT_SWEEP_MAX_KEYS] = malloc(d->points * sizeof(*v));
	uint64_t product = 1;
	int rc = 0;

	if (!v)
		return sp_err_set(err, SP_ENOMEM, "out of memory");
	for (uint64_t i = 0; rc == 0 && i < d->points; i++) {
		const struct plot_sweep_run *r = &rows[i * d->seeds];

		for (uint64_t s = 1; rc == 0 && s < d->seeds; s++) {
			if (memcmp(r[s].values, r[0].values, sizeof(r->values)) != 0)
				rc = sp_err_set(err, SP_ECORRUPT, "%s: run %llu has other values than run "
						"%llu of the same point %llu", dir,
						(unsigned long long)r[s].run, (unsigned long long)r[0].run,
						(unsigned long long)i);
		}
		memset(v[i], 0, sizeof(v[i]));
		memcpy(v[i], r->values, d->nkeys * sizeof(double));
	}
	for (uint32_t k = 0; rc == 0 && k < d->nkeys; k++) {
		uint64_t distinct = 0;

		for (uint64_t i = 0; i < d->points; i++) {
			uint64_t j = 0;

			while (j < i && v[j][k] != v[i][k])
				j++;
			distinct += j == i;
			if (distinct > d->points)
				break;
		}
		product = distinct && product > d->points / distinct ? d->points + 1 : product * distinct;
	}
	if (rc == 0) {
		uint32_t nk = d->nkeys;

		qsort_r(v, d->points, sizeof(*v), cmp_values, &nk);
		for (uint64_t i = 1; rc == 0 && i < d->points; i++)
			if (cmp_values(v[i - 1], v[i], &nk) == 0)
				rc = sp_err_set(err, SP_ECORRUPT, "%s: two points of the grid have the same "
						"values", dir);
	}
	if (rc == 0 && product != d->points)
		rc = sp_err_set(err, SP_ECORRUPT, "%s: the points' values do not form the %llu-point grid",
				dir, (unsigned long long)d->points);
	free(v);
	return rc;
}

/* The runs read from the shares, in file order. */
struct run_list {
	struct plot_sweep_run *v;
	size_t n, cap;
};

static int run_list_push(struct run_list *l, const struct plot_sweep_run *r, struct sp_err *err)
{
	if (l->n == l->cap) {
		size_t c = l->cap ? 2 * l->cap : 256;
		struct plot_sweep_run *q = realloc(l->v, c * sizeof(*q));

		if (!q)
			return sp_err_set(err, SP_ENOMEM, "out of memory");
		l->v = q;
		l->cap = c;
	}
	l->v[l->n++] = *r;
	return 0;
}

/* A share's header: run,point,seed, the varied keys (the same in every share), the result columns. */
static int share_header(const char *path, const struct rep_table *t, struct plot_sweep_def *d,
			bool have_def, uint32_t *nkeys, struct sp_err *err)
{
	char **h = t->nrows ? t->rows[0] : NULL;

	if (t->nrows == 0 || t->ncols[0] < 3 + NTAIL || strcmp(h[0], "run") || strcmp(h[1], "point") ||
	    strcmp(h[2], "seed"))
		return sp_err_set(err, SP_ECORRUPT, "%s: not a sweep share (header must start run,point,seed)", path);
	*nkeys = (uint32_t)(t->ncols[0] - 3 - NTAIL);
	if (*nkeys < 1 || *nkeys > PLOT_SWEEP_MAX_KEYS)
		return sp_err_set(err, SP_ECORRUPT, "%s: not a sweep share (%u varied keys)", path, *nkeys);
	for (size_t k = 0; k < NTAIL; k++) {
		if (strcmp(h[3 + *nkeys + k], run_tail[k]))
			return sp_err_set(err, SP_ECORRUPT, "%s: not a sweep share (column %zu is '%s', want '%s')",
					  path, 3 + *nkeys + k + 1, h[3 + *nkeys + k], run_tail[k]);
	}
	if (have_def) {
		bool same = d->nkeys == *nkeys;

		for (uint32_t k = 0; same && k < *nkeys; k++)
			same = !strcmp(d->keys[k], h[3 + k]);
		return same ? 0 : sp_err_set(err, SP_EINVAL, "%s: varies other keys than the other shares", path);
	}
	memset(d, 0, sizeof(*d));
	d->nkeys = *nkeys;
	for (uint32_t k = 0; k < *nkeys; k++) {
		if (strlen(h[3 + k]) >= sizeof(d->keys[k]))
			return sp_err_set(err, SP_ECORRUPT, "%s: varied key %u: name too long", path, k + 1);
		snprintf(d->keys[k], sizeof(d->keys[k]), "%s", h[3 + k]);
	}
	return 0;
}

/* What a row says of its sweep rather than of its run: page size, grid points, seeds. */
struct share_meta {
	uint64_t ps, points, seeds;
};

/* The numbers of a row (f: its fields, the varied keys' values from f[3] on). */
static bool parse_share_row(char **f, uint32_t nkeys, struct plot_sweep_run *r, struct share_meta *m)
{
	const size_t b = 3 + nkeys;
	uint64_t merging = 0;
	bool ok = parse_u64(f[0], &r->run) && parse_u64(f[1], &r->point) && parse_u64(f[2], &r->seed);

	for (uint32_t k = 0; ok && k < nkeys; k++)
		ok = parse_dbl(f[3 + k], &r->values[k]);
	ok = ok && parse_i64(f[b], &r->s.final_saved) && parse_i64(f[b + 1], &r->s.peak_saved) &&
	     parse_i64(f[b + 2], &r->s.oracle_final) &&
	     parse_t90(f[b + 3], &r->s.t90_ms) &&
	     parse_i64(f[b + 4], &r->s.cpu_ns) && parse_i64(f[b + 5], &r->s.cow_breaks) &&
	     parse_u64(f[b + 6], &r->s.end_ms) && parse_u64(f[b + 8], &m->ps) &&
	     parse_u64(f[b + 9], &m->points) && parse_u64(f[b + 10], &m->seeds) && m->ps > 0 &&
	     m->ps <= (1u << 30) && m->points > 0 && m->seeds > 0 && m->points <= UINT64_MAX / m->seeds &&
	     parse_i64(f[b + 14], &r->s.full_scans) && parse_u64(f[b + 15], &merging) &&
	     merging <= 1 && parse_i64(f[b + 16], &r->s.present) &&
	     parse_i64(f[b + 17], &r->s.remote_sharers);
	r->s.still_merging = merging != 0;
	return ok;
}

/* The first row fixes the sweep (algorithm, trace, options, grid); every other row must match it. */
static int same_sweep(const char *path, size_t row, char **tail, const struct share_meta *m,
		      struct plot_sweep_def *d, bool *have_def, struct sp_err *err)
{
	if (!*have_def) {
		snprintf(d->algorithm, sizeof(d->algorithm), "%s", tail[7]);
		snprintf(d->trace, sizeof(d->trace), "%s", tail[12]);
		snprintf(d->options, sizeof(d->options), "%s", tail[13]);
		d->page_size = (uint32_t)m->ps;
		d->points = m->points;
		d->seeds = m->seeds;
		*have_def = true;
		return 0;
	}
	if (strcmp(d->algorithm, tail[7]) || strcmp(d->trace, tail[12]) || strcmp(d->options, tail[13]) ||
	    d->page_size != m->ps || d->points != m->points || d->seeds != m->seeds)
		return sp_err_set(err, SP_EINVAL,
				  "%s: row %zu belongs to another sweep (algorithm, trace, options, "
				  "grid or seeds differ from the other shares)", path, row);
	return 0;
}

/* Row i of share sf: parsed, checked, appended to l. */
static int read_share_row(const char *path, const struct rep_table *t, size_t i, uint32_t nkeys,
			  const struct share_file *sf, struct plot_sweep_def *d, bool *have_def,
			  struct run_list *l, struct sp_err *err)
{
	char **f = t->rows[i], **tail = f + 3 + nkeys;
	struct plot_sweep_run r = { 0 };
	struct share_meta m;
	int rc;

	if (t->ncols[i] != t->ncols[0] || !parse_share_row(f, nkeys, &r, &m))
		return sp_err_set(err, SP_ECORRUPT, "%s: row %zu is malformed", path, i + 1);
	rc = check_row(path, i + 1, &r, tail[7], nkeys, t->rows[0] + 3, m.ps, err);
	if (rc < 0)
		return rc;
	r.s.pct_of_oracle = r.s.oracle_final > 0
				    ? 100.0 * (double)r.s.final_saved / (double)r.s.oracle_final
				    : 100.0;
	snprintf(r.params, sizeof(r.params), "%s", tail[11]);
	rc = same_sweep(path, i + 1, tail, &m, d, have_def, err);
	if (rc < 0)
		return rc;
	if (r.run >= d->points * d->seeds || r.point != r.run / d->seeds ||
	    r.seed != r.run % d->seeds + 1 || r.run % sf->n != sf->i)
		return sp_err_set(err, SP_ECORRUPT, "%s: row %zu: run %llu does not belong in share %llu of %llu",
				  path, i + 1, (unsigned long long)r.run, (unsigned long long)sf->i,
				  (unsigned long long)sf->n);
	return run_list_push(l, &r, err);
}

/* Parses one share file's rows into l (appending); fills/checks d. */
static int read_share(const char *dir, const struct share_file *sf, struct plot_sweep_def *d,
		      bool *have_def, struct run_list *l, struct sp_err *err)
{
	char *path = rep_path(dir, sf->name);
	struct rep_table t;
	uint32_t nkeys = 0;
	int rc;

	if (!path)
		return sp_err_set(err, SP_ENOMEM, "out of memory");
	rc = rep_table_read(path, &t, err);
	if (rc < 0) {
		free(path);
		return rc;
	}
	rc = share_header(path, &t, d, *have_def, &nkeys, err);
	for (size_t i = 1; rc == 0 && i < t.nrows; i++)
		rc = read_share_row(path, &t, i, nkeys, sf, d, have_def, l, err);
	rep_table_free(&t);
	free(path);
	return rc;
}

/* The share-I-of-N.csv files in dir, in any order. */
static int list_shares(const char *dir, struct share_file **out, size_t *nout, struct sp_err *err)
{
	struct share_file *sf = NULL;
	size_t nsf = 0, capsf = 0;
	struct dirent *de;
	DIR *dd = opendir(dir);
	int rc = 0;

	if (!dd)
		return sp_err_set(err, SP_EIO, "%s: %s", dir, strerror(errno));
	while ((de = readdir(dd))) {
		unsigned long long i, tot;
		int end = 0;

		if (sscanf(de->d_name, "share-%llu-of-%llu.csv%n", &i, &tot, &end) != 2 ||
		    de->d_name[end] != '\0' || strlen(de->d_name) >= sizeof(sf->name))
			continue;
		if (nsf == capsf) {
			size_t c = capsf ? 2 * capsf : 16;
			struct share_file *q = realloc(sf, c * sizeof(*q));

			if (!q) {
				rc = sp_err_set(err, SP_ENOMEM, "out of memory");
				break;
			}
			sf = q;
			capsf = c;
		}
		memcpy(sf[nsf].name, de->d_name, strlen(de->d_name) + 1); /* length checked above */
		sf[nsf].i = i;
		sf[nsf].n = tot;
		nsf++;
	}
	closedir(dd);
	*out = sf;
	*nout = nsf;
	return rc;
}

/* The shares are one whole split: all of N, each once (sorts sf by share). */
static int check_share_set(const char *dir, struct share_file *sf, size_t nsf, struct sp_err *err)
{
	if (nsf == 0)
		return sp_err_set(err, SP_EINVAL, "%s: no share-I-of-N.csv files to merge", dir);
	for (size_t k = 1; k < nsf; k++) {
		if (sf[k].n != sf[0].n)
			return sp_err_set(err, SP_EINVAL, "%s: shares of different splits (%s and %s); "
					  "remove the stale ones", dir, sf[0].name, sf[k].name);
	}
	qsort(sf, nsf, sizeof(*sf), cmp_share);
	for (size_t k = 0; k < sf[0].n; k++) {
		if (k >= nsf || sf[k].i != k)
			return sp_err_set(err, SP_EINVAL, "%s: share-%zu-of-%llu.csv is missing "
					  "(%zu of %llu shares present)", dir, k,
					  (unsigned long long)sf[0].n, nsf, (unsigned long long)sf[0].n);
	}
	if (nsf != sf[0].n)
		return sp_err_set(err, SP_EINVAL, "%s: share %llu of %llu is out of range", dir,
				  (unsigned long long)sf[nsf - 1].i, (unsigned long long)sf[0].n);
	return 0;
}

/* The runs (sorted here by run) are the whole grid, each once; else the first one missing. */
static int check_runs(const char *dir, const struct plot_sweep_def *d, struct run_list *l,
		      uint64_t nshares, struct sp_err *err)
{
	uint64_t total = d->points * d->seeds, miss = 0;

	qsort(l->v, l->n, sizeof(*l->v), cmp_run);
	for (size_t k = 1; k < l->n; k++) {
		if (l->v[k].run == l->v[k - 1].run)
			return sp_err_set(err, SP_EINVAL, "%s: run %llu appears twice", dir,
					  (unsigned long long)l->v[k].run);
	}
	if (l->n == total)
		return check_grid(dir, d, l->v, err);
	while (miss < l->n && l->v[miss].run == miss)
		miss++;
	return sp_err_set(err, SP_EINVAL,
			  "%s: incomplete: %zu of %llu runs; run %llu is missing (share %llu of "
			  "%llu did not finish?)", dir, l->n, (unsigned long long)total,
			  (unsigned long long)miss, (unsigned long long)(miss % nshares),
			  (unsigned long long)nshares);
}

int plot_sweep_read_shares(const char *dir, struct plot_sweep_def *d,
			   struct plot_sweep_run **rows, size_t *n, struct sp_err *err)
{
	struct share_file *sf = NULL;
	struct run_list l = { 0 };
	size_t nsf = 0;
	bool have_def = false;
	int rc = list_shares(dir, &sf, &nsf, err);

	if (rc == 0)
		rc = check_share_set(dir, sf, nsf, err);
	for (size_t k = 0; rc == 0 && k < nsf; k++)
		rc = read_share(dir, &sf[k], d, &have_def, &l, err);
	if (rc == 0 && !have_def)
		rc = sp_err_set(err, SP_EINVAL, "%s: the shares hold no runs", dir);
	if (rc == 0)
		rc = check_runs(dir, d, &l, sf[0].n, err);
	free(sf);
	if (rc < 0) {
		free(l.v);
		l.v = NULL;
		l.n = 0;
	}
	*rows = l.v;
	*n = l.n;
	return rc;
}

/* ---- statistics ------------------------------------------------------------ */

int plot_sweep_points(const struct plot_sweep_def *d, const struct plot_sweep_run *rows, size_t n,
		      struct plot_sweep_point **out, struct sp_err *err)
{
	struct plot_sweep_point *p;
	double *a, *b, *c, *e;

	*out = NULL;
	if (n != d->points * d->seeds)
		return sp_err_set(err, SP_EINVAL, "sweep: %zu runs for %llu points x %llu seeds", n,
				  (unsigned long long)d->points, (unsigned long long)d->seeds);
	p = calloc(d->points, sizeof(*p));
	a = calloc(d->seeds, sizeof(double));
	b = calloc(d->seeds, sizeof(double));
	c = calloc(d->seeds, sizeof(double));
	e = calloc(d->seeds, sizeof(double));
	if (!p || !a || !b || !c || !e) {
		free(p), free(a), free(b), free(c), free(e);
		return sp_err_set(err, SP_ENOMEM, "out of memory");
	}
	for (uint64_t i = 0; i < d->points; i++) {
		const struct plot_sweep_run *r = &rows[i * d->seeds];

		p[i].point = i;
		p[i].runs = d->seeds;
		memcpy(p[i].values, r->values, sizeof(p[i].values));
		p[i].never = "";
		for (uint64_t s = 0; s < d->seeds; s++) {
			a[s] = (double)r[s].s.final_saved;
			b[s] = (double)r[s].s.t90_ms / 1000;
			c[s] = (double)r[s].s.cpu_ns / 1e9;
			e[s] = (double)r[s].s.cow_breaks;
			p[i].present += (double)r[s].s.present / (double)d->seeds;
			p[i].end_s += (double)r[s].s.end_ms / 1000 / (double)d->seeds;
			if (!plot_settled(&r[s].s) && p[i].unsettled++ == 0)
				p[i].never = plot_never_reason(&r[s].s);
		}
		plot_stat_compute(a, d->seeds, &p[i].saved);
		plot_stat_compute(b, d->seeds, &p[i].t90_s);
		if (p[i].unsettled) /* a mean over "never" means nothing */
			p[i].t90_s.mean = p[i].t90_s.sd = p[i].t90_s.ci95 = NAN;
		plot_stat_compute(c, d->seeds, &p[i].cpu_s);
		plot_stat_compute(e, d->seeds, &p[i].cow);
		for (uint64_t s = 0; s < d->seeds; s++)
			a[s] = (double)r[s].s.remote_sharers;
		plot_stat_compute(a, d->seeds, &p[i].remote);
	}
	/* The frontier: among points that settled and saved something. */
	for (uint64_t i = 0; i < d->points; i++) {
		p[i].pareto = !p[i].unsettled && p[i].saved.mean > 0;
		for (uint64_t j = 0; j < d->points && p[i].pareto; j++) {
			if (p[j].unsettled || p[j].saved.mean <= 0)
				continue;
			if (p[j].cpu_s.mean <= p[i].cpu_s.mean && p[j].saved.mean >= p[i].saved.mean &&
			    (p[j].cpu_s.mean < p[i].cpu_s.mean || p[j].saved.mean > p[i].saved.mean))
				p[i].pareto = false;
		}
	}
	free(a), free(b), free(c), free(e);
	*out = p;
	return 0;
}

double plot_sweep_cpu_pct(const struct plot_sweep_point *p)
{
	return p->end_s > 0 ? 100 * p->cpu_s.mean / p->end_s : 0.0;
}

uint64_t plot_sweep_best(const struct plot_sweep_point *p, uint64_t n, uint64_t *ties)
{
	uint64_t best = UINT64_MAX;

	*ties = 0;
	for (uint64_t i = 0; i < n; i++) {
		if (p[i].unsettled || p[i].saved.mean <= 0)
			continue;
		if (best == UINT64_MAX || p[i].saved.mean > p[best].saved.mean) {
			best = i;
			*ties = 0;
			continue;
		}
		if (p[i].saved.mean < p[best].saved.mean)
			continue;
		++*ties;
		if (p[i].t90_s.mean < p[best].t90_s.mean ||
		    (p[i].t90_s.mean == p[best].t90_s.mean && p[i].cpu_s.mean < p[best].cpu_s.mean))
			best = i;
	}
	return best;
}

bool plot_sweep_seeds_identical(const struct plot_sweep_def *d, const struct plot_sweep_point *p)
{
	if (d->seeds < 2)
		return false;
	for (uint64_t i = 0; i < d->points; i++) {
		if (p[i].saved.sd != 0 || p[i].cpu_s.sd != 0 || p[i].cow.sd != 0 ||
		    (!p[i].unsettled && p[i].t90_s.sd != 0))
			return false;
	}
	return true;
}

static double point_eff(const struct plot_sweep_point *p, uint32_t ps)
{
	if (p->saved.mean <= 0)
		return 0;
	if (p->cpu_s.mean <= 0)
		return INFINITY;
	return p->saved.mean * ps / 1048576.0 / p->cpu_s.mean;
}

static int write_sweep_csv(const char *dir, const struct plot_sweep_def *d,
			   const struct plot_sweep_point *p, struct sp_err *err)
{
	double mib = d->page_size / 1048576.0;
	struct atomic_file af;
	int rc;

	rc = rep_open(&af, dir, "sweep.csv", err);
	if (rc < 0)
		return rc;
	fputs("point", af.f);
	for (uint32_t k = 0; k < d->nkeys; k++) {
		fputc(',', af.f);
		rep_csv_text(af.f, d->keys[k]);
	}
	fprintf(af.f, ",%s\n", plot_sweep_header_tail);
	for (uint64_t i = 0; i < d->points; i++) {
		const struct plot_stat *st[4] = { &p[i].saved, &p[i].t90_s, &p[i].cpu_s, &p[i].cow };

		fprintf(af.f, "%llu", (unsigned long long)i);
		for (uint32_t k = 0; k < d->nkeys; k++)
			fprintf(af.f, ",%.17g", p[i].values[k]);
		fprintf(af.f, ",%llu", (unsigned long long)p[i].runs);
		for (int s = 0; s < 4; s++) {
			for (int v = 0; v < 3; v++) {
				fputc(',', af.f);
				rep_csv_num(af.f, v == 0 ? st[s]->mean : v == 1 ? st[s]->sd : st[s]->ci95);
			}
			if (s == 0) {
				fputc(',', af.f);
				rep_csv_num(af.f, st[s]->mean * mib);
				fputc(',', af.f);
				rep_csv_num(af.f, st[s]->ci95 * mib);
			}
		}
		fputc(',', af.f);
		rep_csv_num(af.f, point_eff(&p[i], d->page_size));
		fprintf(af.f, ",%d,", p[i].pareto ? 1 : 0);
		rep_csv_num(af.f, plot_sweep_cpu_pct(&p[i]));
		fputc(',', af.f);
		rep_csv_num(af.f, plot_pct_of_present(p[i].saved.mean, p[i].present));
		fputc(',', af.f);
		rep_csv_num(af.f, p[i].remote.mean);
		fputc(',', af.f);
		rep_csv_text(af.f, p[i].never);
		fputc('\n', af.f);
	}
	return atomic_file_commit(&af, err);
}

/* ---- plots ------------------------------------------------------------------ */

static const char *const sweep_plots[] = { "sweep_savings", "sweep_cpu", "sweep_t90", "sweep_frontier" };
#define NSPLOTS (sizeof(sweep_plots) / sizeof(sweep_plots[0]))

static void fmt_values(char *buf, size_t len, const struct plot_sweep_def *d, const double *v,
		       uint32_t from)
{
	size_t o = 0;

	buf[0] = '\0';
	for (uint32_t k = from; k < d->nkeys && o < len; k++)
		o += (size_t)snprintf(buf + o, len - o, "%s%s=%g", k > from ? " " : "", d->keys[k], v[k]);
}

/* Points in series: same values of keys 1.., ordered by key 0. */
static bool same_series(const struct plot_sweep_def *d, const struct plot_sweep_point *a,
			const struct plot_sweep_point *b)
{
	for (uint32_t k = 1; k < d->nkeys; k++)
		if (a->values[k] != b->values[k])
			return false;
	return true;
}

static int cmp_key0(const void *x, const void *y, void *base)
{
	const struct plot_sweep_point *p = base;
	double a = p[*(const uint64_t *)x].values[0];
	double b = p[*(const uint64_t *)y].values[0];

	return a < b ? -1 : a > b;
}

static double z(double v)
{
	return isnan(v) ? 0 : v;
}

/*
 * The points grouped into series (the same values of every key but the
 * first; first-appearance order), each ordered by key 0: series s is
 * order[start[s]] .. order[start[s + 1] - 1].
 */
struct series {
	uint64_t *order;
	size_t n, *start;
};

static int group_series(const struct plot_sweep_def *d, const struct plot_sweep_point *p,
			struct series *ser, struct sp_err *err)
{
	bool *used = calloc(d->points, sizeof(bool));
	size_t o = 0;

	ser->order = calloc(d->points, sizeof(*ser->order));
	ser->start = calloc(d->points + 1, sizeof(size_t));
	ser->n = 0;
	if (!used || !ser->order || !ser->start) {
		free(used);
		return sp_err_set(err, SP_ENOMEM, "out of memory");
	}
	for (uint64_t i = 0; i < d->points; i++) {
		if (used[i])
			continue;
		ser->start[ser->n++] = o;
		for (uint64_t j = i; j < d->points; j++) {
			if (!used[j] && same_series(d, &p[i], &p[j])) {
				used[j] = true;
				ser->order[o++] = j;
			}
		}
		qsort_r(ser->order + ser->start[ser->n - 1], o - ser->start[ser->n - 1],
			sizeof(*ser->order), cmp_key0, (void *)p);
	}
	ser->start[ser->n] = o;
	free(used);
	return 0;
}

/* The Pareto-optimal points sorted by CPU: *front (nf of them). */
static int frontier(const struct plot_sweep_def *d, const struct plot_sweep_point *p, uint64_t **front,
		    size_t *nf, struct sp_err *err)
{
	uint64_t *v = calloc(d->points, sizeof(*v));
	size_t n = 0;

	if (!v)
		return sp_err_set(err, SP_ENOMEM, "out of memory");
	for (uint64_t i = 0; i < d->points; i++)
		if (p[i].pareto)
			v[n++] = i;
	for (size_t a = 1; a < n; a++) /* insertion sort by CPU */
		for (size_t b = a; b > 0 && p[v[b]].cpu_s.mean < p[v[b - 1]].cpu_s.mean; b--) {
			uint64_t t = v[b];

			v[b] = v[b - 1];
			v[b - 1] = t;
		}
	*front = v;
	*nf = n;
	return 0;
}

/* One data line "cpu_mean_s saved_mean_mib label" for point q. */
static void gp_point(FILE *f, const struct plot_sweep_def *d, const struct plot_sweep_point *q)
{
	char v[256];

	fmt_values(v, sizeof(v), d, q->values, 0);
	fprintf(f, "%.10g %.10g ", q->cpu_s.mean, q->saved.mean * (d->page_size / 1048576.0));
	rep_gp_datum(f, v);
	fputc('\n', f);
}

/* The data blocks: one per series, every point ($all, $never) and the frontier ($front). */
static void gp_data(FILE *f, const struct plot_sweep_def *d, const struct plot_sweep_point *p,
		    const struct series *ser, const uint64_t *front, size_t nf)
{
	double mib = d->page_size / 1048576.0;

	fputs("# per series: key0 saved_mean_mib saved_ci95_mib cpu_mean_s cpu_ci95_s t90_mean_s t90_ci95_s\n",
	      f);
	for (size_t s = 0; s < ser->n; s++) {
		fprintf(f, "$s%zu << EOD\n", s);
		for (size_t o = ser->start[s]; o < ser->start[s + 1]; o++) {
			const struct plot_sweep_point *q = &p[ser->order[o]];

			fprintf(f, "%.17g %.10g %.10g %.10g %.10g %.10g %.10g\n", q->values[0],
				q->saved.mean * mib, z(q->saved.ci95) * mib, q->cpu_s.mean,
				z(q->cpu_s.ci95), q->t90_s.mean, z(q->t90_s.ci95));
		}
		fputs("EOD\n", f);
	}
	fputs("# every point: cpu_mean_s saved_mean_mib label; then the Pareto frontier by CPU\n$all << EOD\n", f);
	for (int settled = 1; settled >= 0; settled--) {
		if (!settled)
			fputs("EOD\n# points that never settled (saved nothing or still merging)\n"
			      "$never << EOD\n", f);
		/* gnuplot cannot plot an empty block: a point off the range stands in */
		fputs("NaN NaN \"\"\n", f);
		for (uint64_t i = 0; i < d->points; i++)
			if ((p[i].unsettled == 0) == settled)
				gp_point(f, d, &p[i]);
	}
	fputs("EOD\n$front << EOD\n", f);
	for (size_t a = 0; a < nf; a++)
		gp_point(f, d, &p[front[a]]);
	fputs("EOD\n", f);
}

/* The x axis: the first key (with its description when the algorithm has it), log when it spans 50x. */
static void gp_xaxis(FILE *f, const struct plot_sweep_def *d, const struct plot_sweep_point *p,
		     const struct algo_ops *algo)
{
	double lo = INFINITY, hi = -INFINITY;
	int ki = algo ? algo_param_index(algo, d->keys[0]) : -1;
	char xlabel[256];

	for (uint64_t i = 0; i < d->points; i++) {
		if (p[i].values[0] < lo)
			lo = p[i].values[0];
		if (p[i].values[0] > hi)
			hi = p[i].values[0];
	}
	if (ki >= 0)
		snprintf(xlabel, sizeof(xlabel), "%s (%s)", d->keys[0], algo->params[ki].desc);
	else
		snprintf(xlabel, sizeof(xlabel), "%s", d->keys[0]);
	if (lo > 0 && hi / lo >= 50)
		fputs("  set logscale x\n", f);
	else
		fputs("  unset logscale x\n", f);
	fputs("  set xlabel ", f);
	rep_gp_quoted(f, xlabel);
	fputs("\n  set offsets graph 0.03, graph 0.03, graph 0.06, graph 0.03\n", f);
}

/* Savings, CPU and time to 90% against the first key: one line per series. */
static void gp_series_plots(FILE *f, const struct plot_sweep_def *d, const struct plot_sweep_point *p,
			    const struct series *ser, const char *title)
{
	static const char *const what[3][2] = {
		{ "Final memory saved (mean, 95% CI)", "memory saved at the end (MiB)" },
		{ "Scanner CPU (mean, 95% CI)", "scanner CPU over the run (s)" },
		{ "Time to 90% of the final savings (mean, 95% CI)", "time to 90% (s)" },
	};

	bool any_settled = false;

	for (uint64_t i = 0; i < d->points; i++)
		any_settled |= !p[i].unsettled;
	for (int k = 0; k < 3; k++) {
		fprintf(f, "  set key outside right top vertical\n  set output '%s.'.fmt.sfx\n"
			   "  set title ", sweep_plots[k]);
		rep_gp_quoted(f, title);
		fputs(".': '.", f);
		rep_gp_quoted(f, what[k][0]);
		fputs("\n  set ylabel ", f);
		rep_gp_quoted(f, what[k][1]);
		if (k == 2 && !any_settled) {
			/* Every point is "never": no time to draw, and gnuplot refuses a plot of none. */
			fputs("\n  set yrange [0:1]\n  set label 1 'never: no grid point reached 90% of its "
			      "final savings before the run ended' at graph 0.5, graph 0.5 center\n"
			      "  plot $s0 using 1:(-1) with points notitle\n  unset label 1\n", f);
			continue;
		}
		fputs("\n  set yrange [0:*]\n", f);
		fputs("  plot ", f);
		for (size_t s = 0; s < ser->n; s++) {
			char v[256];

			fmt_values(v, sizeof(v), d, p[ser->order[ser->start[s]]].values, 1);
			fprintf(f, "%s$s%zu using 1:%d:%d with yerrorlines lw 2 pt 7 ps 0.8 lc rgb '%s' title ",
				s ? ", \\\n       " : "", s, 2 + 2 * k, 3 + 2 * k, plot_colour(s));
			rep_gp_quoted(f, ser->n > 1 ? v : d->algorithm);
		}
		fputc('\n', f);
	}
}

static void gp_frontier_plot(FILE *f, const char *title)
{
	fputs("  unset logscale x\n  set autoscale y\n  set yrange [0:*]\n", f);
	fprintf(f, "  set output 'sweep_frontier.'.fmt.sfx\n  set title ");
	rep_gp_quoted(f, title);
	fputs(".': savings against CPU, Pareto frontier highlighted'\n"
	      "  set xlabel 'scanner CPU over the run (s, mean)'\n"
	      "  set ylabel 'memory saved at the end (MiB, mean)'\n"
	      "  plot $all using 1:2 with points pt 6 ps 1.2 lc rgb '#999999' title 'grid point', \\\n"
	      "       $never using 1:2 with points pt 2 ps 1.2 lc rgb '#bbbbbb' title 'never settled', \\\n"
	      "       $front using 1:2 with linespoints lw 2 pt 7 ps 1.4 lc rgb '#d62728' title 'Pareto frontier', \\\n"
	      "       $front using 1:2:3 with labels left offset 1,-0.6 font ',9' notitle\n"
	      "  unset output\n}\n", f);
}

static int write_sweep_gp(const char *dir, const struct plot_sweep_def *d,
			  const struct plot_sweep_point *p, const struct algo_ops *algo,
			  struct sp_err *err)
{
	struct series ser = { 0 };
	uint64_t *front = NULL;
	size_t nf = 0;
	struct atomic_file af;
	char title[256];
	int rc = group_series(d, p, &ser, err);

	if (rc == 0)
		rc = frontier(d, p, &front, &nf, err);
	if (rc == 0)
		rc = rep_open(&af, dir, "sweep.gp", err);
	if (rc == 0) {
		snprintf(title, sizeof(title), "%s, mean of %llu seed%s", d->algorithm,
			 (unsigned long long)d->seeds, d->seeds == 1 ? "" : "s");
		fputs("# sweep.gp - the plots of this sweep, written by `sim sweep`.\n"
		      "# Rerun in this directory: gnuplot sweep.gp\n"
		      "if (!exists('sfx')) sfx = ''\n"
		      "set grid\nset key box opaque\n", af.f);
		gp_data(af.f, d, p, &ser, front, nf);
		fputs("do for [fmt in 'png svg'] {\n"
		      "  if (fmt eq 'png') { set terminal pngcairo size 1280,720 font 'Sans,12' noenhanced }"
		      " else { set terminal svg size 960,540 dynamic background rgb 'white' font 'Sans,13' noenhanced }\n",
		      af.f);
		gp_xaxis(af.f, d, p, algo);
		gp_series_plots(af.f, d, p, &ser, title);
		gp_frontier_plot(af.f, title);
		rc = atomic_file_commit(&af, err);
	}
	free(ser.order);
	free(ser.start);
	free(front);
	return rc;
}

/* ---- index.html ------------------------------------------------------------- */

static void td_stat(FILE *f, const struct plot_stat *s, double scale, const char *fmt)
{
	fputs("<td>", f);
	fprintf(f, fmt, s->mean * scale);
	if (!isnan(s->ci95) && s->ci95 > 0) { /* +-0 would claim a precision the seeds do not give */
		fputs(" &plusmn; ", f);
		fprintf(f, fmt, s->ci95 * scale);
	}
	fputs("</td>", f);
}

/* The points a report names: the best, the cheapest on the frontier, the most efficient. */
struct sweep_picks {
	uint64_t best, ties, cheap, eff, never, nfront;
	bool multi_node, identical;
};

static void pick_points(const struct plot_sweep_def *d, const struct plot_sweep_point *p,
			struct sweep_picks *k)
{
	memset(k, 0, sizeof(*k));
	k->cheap = UINT64_MAX;
	k->best = plot_sweep_best(p, d->points, &k->ties);
	for (uint64_t i = 0; i < d->points; i++) {
		if (!p[i].unsettled && point_eff(&p[i], d->page_size) > point_eff(&p[k->eff], d->page_size))
			k->eff = i;
		if (p[i].pareto && (k->cheap == UINT64_MAX || p[i].cpu_s.mean < p[k->cheap].cpu_s.mean))
			k->cheap = i;
		k->never += p[i].unsettled != 0;
		k->multi_node |= p[i].remote.mean > 0;
		k->nfront += p[i].pareto;
	}
	k->identical = plot_sweep_seeds_identical(d, p);
}

/* The table under the title: algorithm, grid, options. */
static void html_setup(FILE *f, const struct plot_sweep_def *d, const struct algo_ops *algo)
{
	fputs("<tr><td>algorithm</td><td>", f);
	rep_html(f, algo ? algo->description : d->algorithm);
	fputs("</td></tr>\n<tr><td>grid</td><td>", f);
	for (uint32_t k = 0; k < d->nkeys; k++) {
		int ki = algo ? algo_param_index(algo, d->keys[k]) : -1;

		fprintf(f, "%s<code>", k ? "; " : "");
		rep_html(f, d->keys[k]);
		fputs("</code>", f);
		if (ki >= 0) {
			fputs(" (", f);
			rep_html(f, algo->params[ki].desc);
			fputs(")", f);
		}
	}
	fprintf(f, ": %llu points &times; %llu seed%s = %llu runs</td></tr>\n",
		(unsigned long long)d->points, (unsigned long long)d->seeds, d->seeds == 1 ? "" : "s",
		(unsigned long long)(d->points * d->seeds));
	fputs("<tr><td>options</td><td>", f);
	rep_html(f, d->options);
	fputs("</td></tr>\n</table>\n", f);
}

/* "<code>values</code>" of a point, escaped. */
static void html_point(FILE *f, const struct plot_sweep_def *d, const struct plot_sweep_point *q)
{
	char v[256];

	fmt_values(v, sizeof(v), d, q->values, 0);
	fputs("<code>", f);
	rep_html(f, v);
	fputs("</code>", f);
}

/* The first finding: the best point and its ties, or that none settled. */
static void html_best(FILE *f, const struct plot_sweep_def *d, const struct plot_sweep_point *p,
		      const struct sweep_picks *k)
{
	const struct plot_sweep_point *b;
	double mib = d->page_size / 1048576.0;

	if (k->best == UINT64_MAX) {
		fputs("<b>No point settled</b>: every point saved nothing or was still merging at the "
		      "end, so none is called optimal; lengthen the run (--tail-ms, --duration-ms) or "
		      "scan faster. ", f);
		return;
	}
	b = &p[k->best];
	fputs("The most memory was saved at ", f);
	html_point(f, d, b);
	fprintf(f, ": %.1f MiB on average (%.1f%% of the guests' present memory)",
		b->saved.mean * mib, plot_pct_of_present(b->saved.mean, b->present));
	if (!isnan(b->saved.ci95) && b->saved.ci95 > 0)
		fprintf(f, " (&plusmn; %.1f MiB, 95%% CI)", b->saved.ci95 * mib);
	fprintf(f, ", for %.3f s of scanner CPU (%.2f%% of one core), reaching 90%% of it after "
		   "%.1f s. ",
		b->cpu_s.mean, plot_sweep_cpu_pct(b), b->t90_s.mean);
	if (k->ties)
		fprintf(f, "%llu other point%s saved exactly as much (a tie); of the tied points "
			   "this one reaches 90%% soonest, then spends the least CPU. ",
			(unsigned long long)k->ties, k->ties == 1 ? "" : "s");
}

static void html_findings(FILE *f, const struct plot_sweep_def *d, const struct plot_sweep_point *p,
			  const struct sweep_picks *k)
{
	const struct plot_sweep_point *e = &p[k->eff];
	double mib = d->page_size / 1048576.0;

	fputs("<h2>Findings</h2>\n<p>", f);
	html_best(f, d, p, k);
	if (k->cheap != UINT64_MAX && k->cheap != k->best) {
		const struct plot_sweep_point *c = &p[k->cheap];

		fputs("The cheapest point on the savings/CPU frontier is ", f);
		html_point(f, d, c);
		fprintf(f, ": %.1f MiB (%.0f%% of the best) for %.3f s of CPU (%.2f%% of one "
			   "core). ",
			c->saved.mean * mib,
			k->best != UINT64_MAX && p[k->best].saved.mean > 0
				? 100 * c->saved.mean / p[k->best].saved.mean : 0.0,
			c->cpu_s.mean, plot_sweep_cpu_pct(c));
	}
	if (!e->unsettled && point_eff(e, d->page_size) > 0 && !isinf(point_eff(e, d->page_size))) {
		fputs("The most memory per CPU second is saved at ", f);
		html_point(f, d, e);
		fprintf(f, " (%.1f MiB per CPU second). ", point_eff(e, d->page_size));
	}
	if (k->never)
		fprintf(f, "%llu point%s never settled (time to 90%%: never; the reason is in the "
			   "table) and %s neither on the frontier nor a candidate for the best. ",
			(unsigned long long)k->never, k->never == 1 ? "" : "s", k->never == 1 ? "is" : "are");
	if (k->identical)
		fprintf(f, "<b>The %llu seeds gave identical results at every point</b>: this "
			   "configuration is deterministic (a deterministic algorithm without "
			   "--spread-writes), so there is no spread to show and no confidence interval "
			   "is printed; use one seed, or --spread-writes. ",
			(unsigned long long)d->seeds);
	fprintf(f, "%llu of the %llu points are Pareto-optimal (marked &#9733; below).",
		(unsigned long long)k->nfront, (unsigned long long)d->points);
	fputs("</p>\n", f);
}

/* Row i of the results table. */
static void html_result_row(FILE *f, const struct plot_sweep_def *d, const struct plot_sweep_point *q,
			    uint64_t i, bool multi_node)
{
	double e = point_eff(q, d->page_size);

	fprintf(f, "<tr><td>%llu</td>", (unsigned long long)i);
	for (uint32_t k = 0; k < d->nkeys; k++)
		fprintf(f, "<td>%g</td>", q->values[k]);
	td_stat(f, &q->saved, d->page_size / 1048576.0, "%.1f");
	fprintf(f, "<td>%.1f</td>", plot_pct_of_present(q->saved.mean, q->present));
	if (q->unsettled) {
		fputs("<td class=\"never\">never (", f);
		if (q->unsettled < q->runs)
			fprintf(f, "%llu of %llu runs: ", (unsigned long long)q->unsettled,
				(unsigned long long)q->runs);
		rep_html(f, q->never);
		fputs(")</td>", f);
	} else {
		td_stat(f, &q->t90_s, 1, "%.1f");
	}
	td_stat(f, &q->cpu_s, 1, "%.3f");
	fprintf(f, "<td>%.2f</td>", plot_sweep_cpu_pct(q));
	td_stat(f, &q->cow, 1, "%.0f");
	if (isinf(e))
		fputs("<td>&infin;</td>", f);
	else
		fprintf(f, "<td>%.1f</td>", e);
	if (multi_node)
		td_stat(f, &q->remote, 1, "%.0f");
	fprintf(f, "<td>%s</td></tr>\n", q->pareto ? "&#9733;" : "");
}

static void html_results(FILE *f, const struct plot_sweep_def *d, const struct plot_sweep_point *p,
			 const struct sweep_picks *k)
{
	fputs("<h2>Results</h2>\n<table>\n<tr><th>point</th>", f);
	for (uint32_t i = 0; i < d->nkeys; i++) {
		fputs("<th>", f);
		rep_html(f, d->keys[i]);
		fputs("</th>", f);
	}
	fputs("<th>saved at end (MiB)</th><th>% of present</th><th>time to 90% (s)</th>"
	      "<th>scanner CPU (s)</th><th>CPU (% of a core)</th><th>COW breaks</th>"
	      "<th>MiB per CPU s</th>", f);
	if (k->multi_node)
		fputs("<th>remote sharers</th>", f);
	fputs("<th>frontier</th></tr>\n", f);
	for (uint64_t i = 0; i < d->points; i++)
		html_result_row(f, d, &p[i], i, k->multi_node);
	fprintf(f, "</table>\n<p class=\"note\">Mean over %llu seed%s%s.  Time to 90%% is "
		   "&ldquo;never&rdquo; when a run saved nothing or was still merging at the end "
		   "(its savings rose by more than 1%% over the last tenth of the run); such points "
		   "are never on the frontier.  CPU %% is the mean share of one core over the run.  "
		   "Data: <a href=\"sweep.csv\">sweep.csv</a> (per point), <a href=\"runs.csv\">"
		   "runs.csv</a> (per run); plots: <a href=\"sweep.gp\">sweep.gp</a>.</p>\n",
		(unsigned long long)d->seeds, d->seeds == 1 ? "" : "s",
		d->seeds > 1 && !k->identical
			? " &plusmn; the half-width of the 95% confidence interval (Student's t); "
			  "no &plusmn; where the seeds agreed exactly"
			: "");
}

static void html_plots(FILE *f)
{
	static const char *const captions[NSPLOTS] = {
		"Memory saved at the end of the run against the first varied key; error bars: 95% "
		"confidence interval of the mean over the seeds.",
		"Scanner CPU over the whole run (modelled), mean and 95% confidence interval.",
		"Time until the savings first reached 90% of their final value.",
		"Every grid point's mean savings against its mean CPU; red: the Pareto frontier (no "
		"other point saves more for less CPU).",
	};

	rep_html_figures(f, "Plots", sweep_plots, captions, NSPLOTS);
	fputs("<p class=\"note\">Written by <code>sim sweep</code> (samepage " SP_VERSION
	      ").</p>\n</body>\n</html>\n", f);
}

static int write_sweep_html(const char *dir, const struct plot_sweep_def *d,
			    const struct plot_sweep_point *p, const char *desc,
			    const struct algo_ops *algo, struct sp_err *err)
{
	struct sweep_picks k;
	struct atomic_file af;
	int rc = rep_open(&af, dir, "index.html", err);

	if (rc < 0)
		return rc;
	pick_points(d, p, &k);
	rep_html_intro(af.f, "sim sweep", "Parameter sweep of", d->algorithm, d->trace,
		       desc && *desc ? desc : "(not available)");
	html_setup(af.f, d, algo);
	html_findings(af.f, d, p, &k);
	html_results(af.f, d, p, &k);
	html_plots(af.f);
	return atomic_file_commit(&af, err);
}

int plot_sweep_write(const char *dir, const struct plot_sweep_def *d,
		     const struct plot_sweep_run *rows, size_t n, const char *desc,
		     const struct algo_ops *algo, struct sp_err *err)
{
	struct plot_sweep_point *p = NULL;
	char *path;
	int rc;

	rc = rep_mkdir_p(dir, err);
	if (rc == 0)
		rc = rep_unlink(dir, "index.html", err);
	if (rc == 0)
		rc = plot_sweep_points(d, rows, n, &p, err);
	if (rc < 0)
		return rc;
	path = rep_path(dir, "runs.csv");
	if (!path)
		rc = sp_err_set(err, SP_ENOMEM, "out of memory");
	if (rc == 0)
		rc = plot_sweep_write_runs(path, d, rows, n, err);
	free(path);
	if (rc == 0)
		rc = write_sweep_csv(dir, d, p, err);
	if (rc == 0)
		rc = write_sweep_gp(dir, d, p, algo, err);
	if (rc == 0)
		rc = rep_gnuplot_plots(dir, "sweep.gp", sweep_plots, NSPLOTS, err);
	if (rc == 0)
		rc = write_sweep_html(dir, d, p, desc, algo, err);
	free(p);
	return rc;
}
