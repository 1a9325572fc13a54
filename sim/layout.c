/*
 * layout.c - implements sim_layout_scan(): one pass over a whole trace,
 * before a replay, that checks it to its END chunk and learns what the
 * replay will need - which pages of each guest the trace ever mentions, how
 * many snapshots it has and when the last one is.
 *
 * Why: a guest's page count is only a bound (an ELF core with one page at
 * guest-physical 512 GiB claims 2^27 pages).  A page the trace never
 * mentions is absent from start to end; no algorithm can scan, merge or
 * count it.  The simulated backend numbers only the mentioned pages, so a
 * sparse guest costs what its present pages cost, in memory and in scan
 * time, and the results are those of the full numbering for every algorithm
 * that steps over absent pages for free (all of ours but esx's sampling and
 * uksm's fixed regions, which see the mentioned pages only).
 *
 * Collection: per guest, a growing vector of page numbers, deduplicated
 * whenever it doubles, so memory is bounded by the distinct pages mentioned
 * (twice over), not by the records read nor by the page counts the header
 * claims.  Pages mostly come in ascending order (a snapshot lists a guest's
 * pages in order), so the vector keeps a sorted prefix that such records
 * extend for free, and a deduplication sorts only what came out of order
 * and merges it in.  Once a guest's distinct pages reach 1/64 of its page
 * count, a bitmap of the page count is no larger than the vector: the guest
 * switches to one (1 bit per page, no sorting at all).
 *
 * Contents: the distinct (fingerprint, domain) pairs of the present non-zero
 * records are estimated by HyperLogLog (trace_hll_count(), traces/summary.c),
 * so that the replay sizes its content-id table once instead of doubling it
 * (bench/README.md, issue 14, eighth round).  Distinct pairs ever named bound
 * those held at once from above; an estimate under the truth only lets the
 * table grow as before.
 *
 * A version-2 trace says all this in its summary (FORMAT.md: SUMM) when every
 * guest has a snapshot that records all its pages: sim_layout_from_summary()
 * then gives the same layout without the pass (the plain numbering).
 */
#include <stdlib.h>
#include <string.h>

#include "sim.h"

struct collect {
	uint64_t *v;       /* page numbers; v[0..uniq) sorted and distinct */
	uint64_t len, uniq, cap;
	uint64_t *bits;    /* once dense: bit p set when page p was mentioned (v is then NULL) */
	uint64_t pages;    /* the guest's page count (the bitmap's size) */
};

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* v[0..n) sorted: its distinct values moved to the front; returns how many. */
static uint64_t unique(uint64_t *v, uint64_t n)
{
	uint64_t o = 0;

	for (uint64_t i = 0; i < n; i++)
		if (o == 0 || v[o - 1] != v[i])
			v[o++] = v[i];
	return o;
}

/* Sorts and deduplicates the tail v[uniq..len) and merges it into the sorted prefix. */
static int dedup(struct collect *c)
{
	uint64_t n = c->len - c->uniq, *t, *tail, i, j, k;

	if (n == 0)
		return 0; /* also when nothing was noted: v may be NULL */
	t = c->v + c->uniq;
	for (i = 1; i < n && t[i - 1] < t[i]; i++)
		;
	if (i < n)
		qsort(t, n, sizeof(*t), cmp_u64);
	n = unique(t, n);
	tail = malloc(n * sizeof(*tail));
	if (!tail)
		return SP_ENOMEM;
	memcpy(tail, t, n * sizeof(*tail));
	/* Merge from the back (equal values kept), then drop the duplicates. */
	for (i = c->uniq, j = n, k = c->uniq + n; j > 0;)
		c->v[--k] = (i > 0 && c->v[i - 1] > tail[j - 1]) ? c->v[--i] : tail[--j];
	free(tail);
	c->len = c->uniq = unique(c->v, c->uniq + n);
	return 0;
}

static void set_bit(uint64_t *bits, uint64_t page)
{
	bits[page / 64] |= 1ull << (page % 64);
}

/* v full: deduplicates it, then either switches to the bitmap or makes room. */
static int make_room(struct collect *c)
{
	if (dedup(c) < 0)
		return SP_ENOMEM;
	if (c->uniq >= c->pages / 64) {
		c->bits = calloc(c->pages / 64 + 1, sizeof(*c->bits));
		if (!c->bits)
			return SP_ENOMEM;
		for (uint64_t i = 0; i < c->len; i++)
			set_bit(c->bits, c->v[i]);
		free(c->v);
		c->v = NULL;
		c->len = c->uniq = c->cap = 0;
		return 0;
	}
	if (c->len >= c->cap / 2) {
		uint64_t cap = c->cap ? c->cap * 2 : 1024;
		uint64_t *v = realloc(c->v, cap * sizeof(*v));

		if (!v)
			return SP_ENOMEM;
		c->v = v;
		c->cap = cap;
	}
	return 0;
}

static int note(struct collect *c, uint64_t page)
{
	if (c->bits) {
		set_bit(c->bits, page);
		return 0;
	}
	if (c->len && c->v[c->len - 1] == page)
		return 0;
	if (c->len == c->cap) {
		if (make_room(c) < 0)
			return SP_ENOMEM;
		if (c->bits)
			return note(c, page);
	}
	if (c->len == c->uniq && (c->len == 0 || c->v[c->len - 1] < page))
		c->uniq++;
	c->v[c->len++] = page;
	return 0;
}

/* Pages set in the bitmap of c: how many, and their numbers in order into v (if v). */
static uint64_t from_bits(const struct collect *c, uint64_t *v)
{
	uint64_t n = 0;

	for (uint64_t w = 0; w <= c->pages / 64; w++) {
		for (uint64_t b = c->bits[w]; b; b &= b - 1) {
			if (v)
				v[n] = w * 64 + (uint64_t)__builtin_ctzll(b);
			n++;
		}
	}
	return n;
}

void sim_layout_release(struct sim_layout *l)
{
	for (uint32_t g = 0; l->pfn && g < l->nguests; g++)
		free(l->pfn[g]);
	free(l->pfn);
	free(l->base);
	free(l->npages);
	memset(l, 0, sizeof(*l));
}

int sim_layout_scan(struct sim_layout *out, const struct trace_source *src, struct sp_err *err)
{
	const struct trace_header *h = src->header(src->impl);
	struct collect *c = calloc(h->nguests, sizeof(*c));
	uint8_t *reg = calloc(TRACE_HLL_REGS, 1);
	struct trace_snapshot s;
	struct trace_record rec;
	uint64_t total = 0;
	int rc = 0;

	memset(out, 0, sizeof(*out));
	out->nguests = h->nguests;
	out->base = calloc(h->nguests, sizeof(*out->base));
	out->npages = calloc(h->nguests, sizeof(*out->npages));
	out->pfn = calloc(h->nguests, sizeof(*out->pfn));
	if (!c || !reg || !out->base || !out->npages || !out->pfn) {
		rc = sp_err_set(err, SP_ENOMEM, "out of memory");
		goto out;
	}
	for (uint32_t g = 0; c && g < h->nguests; g++)
		c[g].pages = h->guests[g].pages;
	while (rc == 0 && (rc = src->next_snapshot(src->impl, &s, err)) > 0) {
		out->snapshots++;
		out->last_ms = s.time_ms;
		while ((rc = src->next_record(src->impl, &rec, err)) > 0) {
			if ((rec.flags & (TRACE_PRESENT | TRACE_ZERO)) == TRACE_PRESENT)
				trace_hll_add(reg, trace_pair_hash(rec.fp, h->guests[rec.guest].domain));
			if (note(&c[rec.guest], rec.page) < 0) {
				rc = sp_err_set(err, SP_ENOMEM, "out of memory noting the trace's pages");
				break;
			}
		}
	}
	if (rc < 0)
		goto out;
	for (uint32_t g = 0; g < h->nguests; g++) {
		struct collect *k = &c[g];
		uint64_t n = 0;

		out->base[g] = total;
		if (k->bits) {
			n = from_bits(k, NULL);
		} else {
			if (dedup(k) < 0) {
				rc = sp_err_set(err, SP_ENOMEM, "out of memory noting the trace's pages");
				goto out;
			}
			n = k->len;
		}
		if (n == h->guests[g].pages) {
			out->npages[g] = n; /* every page: the plain numbering */
			total += n;
			continue;
		}
		if (k->bits) {
			out->pfn[g] = malloc((n ? n : 1) * sizeof(uint64_t));
			if (out->pfn[g])
				from_bits(k, out->pfn[g]);
		} else {
			out->pfn[g] = k->v; /* sorted and distinct */
			k->v = NULL;
			if (!out->pfn[g])
				out->pfn[g] = malloc(sizeof(uint64_t));
		}
		if (!out->pfn[g]) {
			rc = sp_err_set(err, SP_ENOMEM, "out of memory");
			goto out;
		}
		out->npages[g] = n;
		total += n;
	}
	out->total = total;
	out->contents = trace_hll_count(reg);
out:
	free(reg);
	for (uint32_t g = 0; c && g < h->nguests; g++) {
		free(c[g].v);
		free(c[g].bits);
	}
	free(c);
	if (rc < 0)
		sim_layout_release(out);
	return rc < 0 ? rc : 0;
}

int sim_layout_from_summary(struct sim_layout *out, const struct trace_header *h,
			    const struct trace_summary *sum, struct sp_err *err)
{
	uint64_t total = 0;

	memset(out, 0, sizeof(*out));
	for (uint32_t g = 0; g < h->nguests; g++)
		if (!sum->complete[g])
			return 0; /* which pages of it: only a pass can say */
	out->nguests = h->nguests;
	out->base = calloc(h->nguests, sizeof(*out->base));
	out->npages = calloc(h->nguests, sizeof(*out->npages));
	out->pfn = calloc(h->nguests, sizeof(*out->pfn));
	if (!out->base || !out->npages || !out->pfn) {
		sim_layout_release(out);
		return sp_err_set(err, SP_ENOMEM, "out of memory");
	}
	for (uint32_t g = 0; g < h->nguests; g++) {
		out->base[g] = total;
		out->npages[g] = h->guests[g].pages; /* every page: the plain numbering */
		total += h->guests[g].pages;
	}
	out->total = total;
	out->snapshots = sum->snapshots;
	out->last_ms = sum->last_ms;
	out->contents = sum->contents;
	return 1;
}

int sim_layout_index(const struct sim_layout *l, uint32_t guest, uint64_t page, uint64_t *out)
{
	const uint64_t *v = l->pfn[guest];
	uint64_t lo = 0, hi = l->npages[guest];

	if (!v) {
		if (page >= hi)
			return SP_EINVAL;
		*out = l->base[guest] + page;
		return 0;
	}
	while (lo < hi) {
		uint64_t mid = lo + (hi - lo) / 2;

		if (v[mid] < page)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo == l->npages[guest] || v[lo] != page)
		return SP_EINVAL;
	*out = l->base[guest] + lo;
	return 0;
}
