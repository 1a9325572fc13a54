/*
 * gen.c - implements the synthetic trace generator.
 *
 * The model.  Each of `guests` guests has `pages` pages, all present.  A page's
 * content is drawn from a mixture: zero-filled with probability zero_fraction;
 * else, with probability shared_fraction, one of `shared_contents` shared
 * contents chosen by a Zipf law of exponent zipf_s (a few contents, such as a
 * common kernel text page, are very popular; most are rare); else content
 * unique to this page and moment.  A volatile_fraction of the pages are
 * volatile: between two snapshots each of them is rewritten with probability
 * write_rate, with new content from the same mixture.  The others never
 * change.  A huge_fraction of each guest's 512-page (2 MiB) regions is marked
 * as backed by transparent huge pages.  The last late_guests guests appear at
 * the second snapshot (a VM started later, e.g. a clone): they are absent in
 * snapshot 0 and every one of their pages is written in snapshot 1, with the
 * content it has then; the random draws are the same as without them.
 *
 * Determinism.  All randomness comes from one GSL MT19937 stream seeded with
 * `seed` and consumed in a fixed order; fingerprints are XXH3-128 of a
 * (namespace, number) pair under the seed.  The same parameters give the same
 * bytes on every run and machine.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <gsl/gsl_randist.h>
#include <gsl/gsl_rng.h>
#include <xxhash.h>

#include "gen.h"
#include "trace.h"

#define REGION_PAGES 512

void trace_gen_defaults(struct trace_gen_params *p)
{
	memset(p, 0, sizeof(*p));
	p->guests = 4;
	p->pages = 16384;
	p->snapshots = 10;
	p->interval_ms = 1000;
	p->shared_fraction = 0.5;
	p->zipf_s = 1.0;
	p->zero_fraction = 0.1;
	p->write_rate = 0.05;
	p->volatile_fraction = 0.2;
	p->huge_fraction = 0.0;
	p->nodes = 1;
	p->domains = 1;
	p->seed = 1;
	p->version = TRACE_VERSION;
}

static int frac_ok(double v)
{
	return v >= 0.0 && v <= 1.0;
}

int trace_gen_check(const struct trace_gen_params *p, struct sp_err *err)
{
	if (p->guests < 1 || p->guests > TRACE_MAX_GUESTS)
		return sp_err_set(err, SP_EINVAL, "--guests must be in 1..%d", TRACE_MAX_GUESTS);
	if (p->pages < 1 || p->pages > (1ull << 28))
		return sp_err_set(err, SP_EINVAL, "--pages must be in 1..2^28 (per guest)");
	if (p->snapshots < 1 || p->snapshots > 1000000)
		return sp_err_set(err, SP_EINVAL, "--snapshots must be in 1..1000000");
	if (p->interval_ms < 1 || p->interval_ms > 86400000ull * 365)
		return sp_err_set(err, SP_EINVAL, "--interval-ms must be at least 1 (and under a year)");
	if (!frac_ok(p->shared_fraction))
		return sp_err_set(err, SP_EINVAL, "--shared-fraction must be in [0, 1]");
	if (!frac_ok(p->zero_fraction))
		return sp_err_set(err, SP_EINVAL, "--zero-fraction must be in [0, 1]");
	if (!frac_ok(p->write_rate))
		return sp_err_set(err, SP_EINVAL, "--write-rate must be in [0, 1]");
	if (!frac_ok(p->volatile_fraction))
		return sp_err_set(err, SP_EINVAL, "--volatile-fraction must be in [0, 1]");
	if (!frac_ok(p->huge_fraction))
		return sp_err_set(err, SP_EINVAL, "--huge-fraction must be in [0, 1]");
	if (!(p->zipf_s >= 0.0 && p->zipf_s <= 10.0))
		return sp_err_set(err, SP_EINVAL, "--zipf must be in [0, 10]");
	if (p->shared_contents > (1ull << 26))
		return sp_err_set(err, SP_EINVAL, "--shared-contents must be at most 2^26");
	if (p->nodes < 1 || p->nodes > TRACE_MAX_NODE + 1)
		return sp_err_set(err, SP_EINVAL, "--nodes must be in 1..%d", TRACE_MAX_NODE + 1);
	if (p->domains < 1 || p->domains > p->guests)
		return sp_err_set(err, SP_EINVAL, "--domains must be in 1..guests");
	if (p->version < TRACE_VERSION_MIN || p->version > TRACE_VERSION)
		return sp_err_set(err, SP_EINVAL, "--format-version must be in %d..%d", TRACE_VERSION_MIN,
				  TRACE_VERSION);
	if (p->late_guests >= p->guests || (p->late_guests && p->snapshots < 2))
		return sp_err_set(err, SP_EINVAL, "--late-guests must be below --guests, and needs at "
				  "least 2 snapshots (they appear at the second)");
	return 0;
}

struct gen {
	const struct trace_gen_params *p;
	gsl_rng *rng;
	gsl_ran_discrete_t *zipf;
	uint64_t ncontents;
	uint64_t next_unique;
	uint64_t npages;      /* guests * pages, page i of guest i / pages */
	uint64_t first_late;  /* the first page of the late guests (npages without them) */
	struct sp_fp *cur;    /* every page's content now */
	uint8_t *huge, *vol;  /* every page's marks: in a huge region, volatile */
};

static struct sp_fp make_fp(uint64_t ns, uint64_t n, uint64_t seed)
{
	uint64_t in[2] = { ns, n };
	XXH128_hash_t h = XXH3_128bits_withSeed(in, sizeof(in), seed);
	struct sp_fp fp = { h.low64, h.high64 };

	if (sp_fp_is_zero(fp))
		fp.lo = 1; /* {0,0} is reserved for zero pages */
	return fp;
}

/* Draws a content from the mixture; {0,0} means a zero-filled page. */
static struct sp_fp draw(struct gen *g)
{
	struct sp_fp zero = { 0, 0 };

	if (gsl_rng_uniform(g->rng) < g->p->zero_fraction)
		return zero;
	if (g->ncontents && gsl_rng_uniform(g->rng) < g->p->shared_fraction)
		return make_fp(1, gsl_ran_discrete(g->rng, g->zipf), g->p->seed);
	return make_fp(2, g->next_unique++, g->p->seed);
}

static int emit(struct trace_writer *w, uint32_t guest, uint64_t page, struct sp_fp fp, bool huge,
		uint16_t node, struct sp_err *err)
{
	struct trace_record rec = { .guest = guest, .page = page, .node = node, .fp = fp };

	rec.flags = TRACE_PRESENT | (sp_fp_is_zero(fp) ? TRACE_ZERO : 0) | (huge ? TRACE_HUGE : 0);
	return trace_writer_record(w, &rec, err);
}

/* The header: the parameters in the description, guests spread over nodes and domains in turn. */
static int gen_header(const struct gen *g, struct trace_header *h, struct sp_err *err)
{
	const struct trace_gen_params *p = g->p;
	int rc = trace_header_init(h, p->guests, err);

	if (rc < 0)
		return rc;
	h->version = p->version;
	h->page_size = 4096;
	h->fp_algo = TRACE_FP_SYNTHETIC;
	snprintf(h->desc, sizeof(h->desc),
		 "synthetic: guests=%u pages=%llu snapshots=%u interval_ms=%llu shared_fraction=%g "
		 "shared_contents=%llu zipf=%g zero_fraction=%g write_rate=%g volatile_fraction=%g "
		 "huge_fraction=%g nodes=%u domains=%u seed=%llu",
		 p->guests, (unsigned long long)p->pages, p->snapshots,
		 (unsigned long long)p->interval_ms, p->shared_fraction,
		 (unsigned long long)g->ncontents, p->zipf_s, p->zero_fraction, p->write_rate,
		 p->volatile_fraction, p->huge_fraction, p->nodes, p->domains,
		 (unsigned long long)p->seed);
	if (p->late_guests) {
		size_t len = strlen(h->desc);

		snprintf(h->desc + len, sizeof(h->desc) - len, " late_guests=%u", p->late_guests);
	}
	for (uint32_t i = 0; i < p->guests; i++) {
		snprintf(h->guests[i].name, sizeof(h->guests[i].name), "guest%u", i);
		h->guests[i].node = (uint16_t)(i % p->nodes);
		h->guests[i].domain = i % p->domains;
		h->guests[i].pages = p->pages;
	}
	return 0;
}

/* The generator's state: seeded random source, the Zipf table, every page's content and marks. */
static int gen_alloc(struct gen *g, struct sp_err *err)
{
	const struct trace_gen_params *p = g->p;
	double *weights;

	g->npages = (uint64_t)p->guests * p->pages;
	g->first_late = (uint64_t)(p->guests - p->late_guests) * p->pages;
	g->rng = gsl_rng_alloc(gsl_rng_mt19937);
	weights = malloc(g->ncontents * sizeof(*weights));
	g->cur = malloc(g->npages * sizeof(*g->cur));
	g->huge = calloc(g->npages, 1);
	g->vol = calloc(g->npages, 1);
	if (!g->rng || !weights || !g->cur || !g->huge || !g->vol) {
		free(weights);
		return sp_err_set(err, SP_ENOMEM, "out of memory for %llu pages",
				  (unsigned long long)g->npages);
	}
	gsl_rng_set(g->rng, (unsigned long)p->seed);
	for (uint64_t k = 0; k < g->ncontents; k++)
		weights[k] = 1.0 / pow((double)(k + 1), p->zipf_s);
	g->zipf = gsl_ran_discrete_preproc(g->ncontents, weights);
	free(weights);
	if (!g->zipf)
		return sp_err_set(err, SP_ENOMEM, "out of memory for the Zipf table");
	return 0;
}

static void gen_free(struct gen *g)
{
	if (g->zipf)
		gsl_ran_discrete_free(g->zipf);
	if (g->rng)
		gsl_rng_free(g->rng);
	free(g->cur);
	free(g->huge);
	free(g->vol);
}

/* Snapshot 0: every page, with its huge and volatile marks. */
static int gen_first_snapshot(struct gen *g, struct trace_writer *w, const struct trace_header *h,
			      struct sp_err *err)
{
	const struct trace_gen_params *p = g->p;
	int rc = trace_writer_begin_snapshot(w, 0, err);

	for (uint64_t i = 0; rc == 0 && i < g->npages; i++) {
		uint32_t gu = (uint32_t)(i / p->pages);
		uint64_t pg = i % p->pages;

		if (pg % REGION_PAGES == 0) {
			bool hg = gsl_rng_uniform(g->rng) < p->huge_fraction;

			for (uint64_t j = i; j < i + REGION_PAGES && j < (uint64_t)(gu + 1) * p->pages; j++)
				g->huge[j] = hg;
		}
		g->vol[i] = gsl_rng_uniform(g->rng) < p->volatile_fraction;
		g->cur[i] = draw(g);
		if (i < g->first_late)
			rc = emit(w, gu, pg, g->cur[i], g->huge[i], h->guests[gu].node, err);
	}
	return rc;
}

/* Snapshot s >= 1: the volatile pages each rewritten with probability write_rate; at s = 1 every
 * page of the late guests too. */
static int gen_later_snapshot(struct gen *g, struct trace_writer *w, const struct trace_header *h,
			      uint32_t s, struct sp_err *err)
{
	const struct trace_gen_params *p = g->p;
	int rc = trace_writer_begin_snapshot(w, (uint64_t)s * p->interval_ms, err);

	for (uint64_t i = 0; rc == 0 && i < g->npages; i++) {
		struct sp_fp fp;
		bool appears = s == 1 && i >= g->first_late; /* a late guest's page: written now */

		if (!g->vol[i] || p->write_rate <= 0.0 || gsl_rng_uniform(g->rng) >= p->write_rate)
			fp = g->cur[i];
		else
			fp = draw(g);
		if (sp_fp_eq(fp, g->cur[i]) && !appears)
			continue; /* not rewritten, or with the same content: no change to record */
		g->cur[i] = fp;
		rc = emit(w, (uint32_t)(i / p->pages), i % p->pages, fp, g->huge[i],
			  h->guests[i / p->pages].node, err);
	}
	return rc;
}

int trace_gen_write(const struct trace_gen_params *p, const char *path,
		    trace_progress_fn progress, void *arg, struct sp_err *err)
{
	struct trace_header h = { 0 };
	struct trace_writer *w = NULL;
	struct gen g = { .p = p };
	int rc;

	rc = trace_gen_check(p, err);
	if (rc < 0)
		return rc;
	g.ncontents = p->shared_contents ? p->shared_contents : (p->pages / 16 ? p->pages / 16 : 1);
	rc = gen_header(&g, &h, err);
	if (rc < 0)
		return rc;
	rc = gen_alloc(&g, err);
	if (rc == 0)
		rc = trace_writer_open(&w, path, &h, 0644, err);
	if (rc == 0)
		rc = gen_first_snapshot(&g, w, &h, err);
	if (progress && rc == 0)
		progress(arg, 1, p->snapshots);
	for (uint32_t s = 1; rc == 0 && s < p->snapshots; s++) {
		rc = gen_later_snapshot(&g, w, &h, s, err);
		if (progress && rc == 0)
			progress(arg, s + 1, p->snapshots);
	}
	if (rc == 0) {
		rc = trace_writer_commit(w, err);
		w = NULL;
	}
	trace_writer_abort(w);
	gen_free(&g);
	trace_header_release(&h);
	return rc;
}
