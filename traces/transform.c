/*
 * transform.c - implements trace_replicate() and trace_subset()
 * (transform.h): traces sized to a host from a recording.
 *
 * Replicate reads IN twice.  The first pass classifies every non-zero
 * content by the input guests that hold it at any snapshot: one guest
 * (private) or several (common), in an open-addressing table keyed by
 * fingerprint (memory grows with distinct contents).  The second pass
 * holds one snapshot's records at a time (they come sorted by guest, then
 * page) and writes, for each output guest in order, its input guest's
 * records with private contents re-keyed for copies >= 1.
 *
 * Subset reads IN once.  Records of the snapshots before the window are
 * kept (later ones replacing earlier ones for the same page) and folded
 * into the first snapshot of the window, so that its state is whole.
 */
#define _GNU_SOURCE
#include "transform.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sp_util.h"

/* ---- content classes -------------------------------------------------- */

struct cls_slot {
	struct sp_fp fp;
	uint32_t owner;  /* the first input guest seen holding it */
	uint8_t used;
	uint8_t common;  /* held by another guest too */
};

struct cls {
	struct cls_slot *s;
	size_t mask, used;
};

static size_t cls_hash(struct sp_fp fp)
{
	uint64_t x = fp.lo ^ (fp.hi * 0x9e3779b97f4a7c15ULL);

	return (size_t)(x ^ (x >> 29));
}

static int cls_grow(struct cls *c)
{
	size_t cap = c->s ? 2 * (c->mask + 1) : 1024;
	struct cls_slot *n = calloc(cap, sizeof(*n));

	if (!n)
		return SP_ENOMEM;
	for (size_t i = 0; c->s && i <= c->mask; i++) {
		size_t k;

		if (!c->s[i].used)
			continue;
		for (k = cls_hash(c->s[i].fp) & (cap - 1); n[k].used; k = (k + 1) & (cap - 1))
			;
		n[k] = c->s[i];
	}
	free(c->s);
	c->s = n;
	c->mask = cap - 1;
	return 0;
}

static struct cls_slot *cls_find(const struct cls *c, struct sp_fp fp)
{
	for (size_t k = cls_hash(fp) & c->mask;; k = (k + 1) & c->mask) {
		if (!c->s[k].used || sp_fp_eq(c->s[k].fp, fp))
			return &c->s[k];
	}
}

static int cls_note(struct cls *c, struct sp_fp fp, uint32_t guest)
{
	struct cls_slot *s;

	if ((!c->s || 2 * (c->used + 1) > c->mask + 1) && cls_grow(c) < 0)
		return SP_ENOMEM;
	s = cls_find(c, fp);
	if (!s->used) {
		s->used = 1;
		s->fp = fp;
		s->owner = guest;
		c->used++;
	} else if (s->owner != guest) {
		s->common = 1;
	}
	return 0;
}

struct sp_fp trace_rekey(struct sp_fp fp, uint32_t copy)
{
	uint64_t st = fp.lo ^ ((uint64_t)copy * 0xd1b54a32d192ed03ULL);
	struct sp_fp out;

	out.lo = sp_splitmix64(&st) ^ fp.hi;
	out.hi = sp_splitmix64(&st) ^ fp.lo;
	if (sp_fp_is_zero(out)) /* {0,0} is reserved for zero pages */
		out.lo = 1;
	return out;
}

/* ---- record buffers ----------------------------------------------------- */

struct recs {
	struct trace_record *r;
	size_t n, cap;
};

static int recs_push(struct recs *v, const struct trace_record *r)
{
	if (v->n == v->cap) {
		size_t cap = v->cap ? 2 * v->cap : 4096;
		struct trace_record *q = realloc(v->r, cap * sizeof(*q));

		if (!q)
			return SP_ENOMEM;
		v->r = q;
		v->cap = cap;
	}
	v->r[v->n++] = *r;
	return 0;
}

static unsigned out_mode(const struct trace_header *h)
{
	return (h->flags & TRACE_F_KEYED) ? 0600 : 0644;
}

/* Appends " text" to h->desc if there is room, else as much as fits. */
static void desc_append(struct trace_header *h, const char *text)
{
	size_t len = strlen(h->desc);

	snprintf(h->desc + len, sizeof(h->desc) - len, "%s%s", len ? "; " : "", text);
}

/* Commits w if rc is 0, else aborts it; returns the result. */
static int finish(struct trace_writer *w, int rc, struct sp_err *err)
{
	if (!w)
		return rc;
	if (rc == 0)
		return trace_writer_commit(w, err);
	trace_writer_abort(w);
	return rc;
}

/* ---- replicate ----------------------------------------------------------- */

static int classify(const char *in, struct cls *c, struct sp_err *err)
{
	struct trace_reader *r;
	struct trace_snapshot s;
	struct trace_record rec;
	int rc;

	rc = trace_reader_open(&r, in, err);
	if (rc < 0)
		return rc;
	while ((rc = trace_reader_next_snapshot(r, &s, err)) > 0) {
		while ((rc = trace_reader_next_record(r, &rec, err)) > 0) {
			if ((rec.flags & TRACE_PRESENT) && !(rec.flags & TRACE_ZERO) &&
			    cls_note(c, rec.fp, rec.guest) < 0) {
				rc = sp_err_set(err, SP_ENOMEM, "%s: out of memory classifying contents", in);
				break;
			}
		}
		if (rc < 0)
			break;
	}
	trace_reader_close(r);
	return rc;
}

static uint16_t spread_node(uint16_t node, uint16_t from_guest_node, uint32_t j, uint16_t nodes)
{
	uint32_t off = ((uint32_t)node + TRACE_MAX_NODE + 1 - from_guest_node) % (TRACE_MAX_NODE + 1);

	return (uint16_t)((j + off) % nodes);
}

/* The output header: guest j is input guest j % k, copies >= 1 named NAME#copy. */
static int replicate_header(const struct trace_header *ih, const struct trace_replicate_opts *o,
			    struct trace_header *h, struct sp_err *err)
{
	uint32_t k = ih->nguests;
	char note[160];
	int rc = trace_header_init(h, o->guests, err);

	if (rc < 0)
		return rc;
	h->page_size = ih->page_size;
	h->fp_algo = ih->fp_algo;
	h->flags = ih->flags;
	memcpy(h->desc, ih->desc, sizeof(h->desc));
	for (uint32_t j = 0; j < o->guests; j++) {
		const struct trace_guest *g = &ih->guests[j % k];

		h->guests[j] = *g;
		if (j >= k) {
			char suffix[16];
			size_t room;

			snprintf(suffix, sizeof(suffix), "#%u", j / k);
			room = 255 - strlen(suffix); /* names are at most 255 bytes */
			snprintf(h->guests[j].name, sizeof(h->guests[j].name), "%.*s%s", (int)room, g->name,
				 suffix);
		}
		if (o->nodes)
			h->guests[j].node = (uint16_t)(j % o->nodes);
	}
	snprintf(note, sizeof(note), "replicated: %u guests from %u (common content shared by all "
		 "copies, private content re-keyed per copy)%s", o->guests, k,
		 o->nodes ? ", guests spread over the nodes" : "");
	desc_append(h, note);
	return 0;
}

/* The current snapshot's records into buf (emptied first). */
static int read_snapshot_records(struct trace_reader *r, struct recs *buf, struct sp_err *err)
{
	struct trace_record rec;
	int rc;

	buf->n = 0;
	while ((rc = trace_reader_next_record(r, &rec, err)) > 0) {
		if (recs_push(buf, &rec) < 0)
			return sp_err_set(err, SP_ENOMEM, "out of memory reading a snapshot");
	}
	return rc;
}

/* One snapshot's records (buf) for every output guest: private contents re-keyed for copies >= 1. */
static int write_replicas(struct trace_writer *w, const struct cls *c, const struct trace_header *ih,
			  const struct trace_replicate_opts *o, const struct recs *buf, size_t *start,
			  struct sp_err *err)
{
	uint32_t k = ih->nguests;
	int rc = 0;

	/* records come by guest: start[g] .. start[g + 1] are guest g's */
	for (uint32_t g = 0, i = 0; g <= k; g++) {
		while (i < buf->n && buf->r[i].guest < g)
			i++;
		start[g] = i;
	}
	start[k] = buf->n;
	for (uint32_t j = 0; j < o->guests && rc == 0; j++) {
		uint32_t g = j % k, copy = j / k;

		for (size_t i = start[g]; i < start[g + 1] && rc == 0; i++) {
			struct trace_record rec = buf->r[i];

			rec.guest = j;
			if ((rec.flags & TRACE_PRESENT) && !(rec.flags & TRACE_ZERO) && copy > 0 &&
			    !cls_find(c, rec.fp)->common)
				rec.fp = trace_rekey(rec.fp, copy);
			if (o->nodes)
				rec.node = spread_node(rec.node, ih->guests[g].node, j, o->nodes);
			rc = trace_writer_record(w, &rec, err);
		}
	}
	return rc;
}

int trace_replicate(const char *in, const char *out, const struct trace_replicate_opts *o,
		    struct sp_err *err)
{
	struct cls c = { 0 };
	struct trace_reader *r = NULL;
	struct trace_writer *w = NULL;
	struct trace_header h = { 0 };
	const struct trace_header *ih;
	struct trace_snapshot s;
	struct recs buf = { 0 };
	size_t *start = NULL;
	int rc;

	if (o->guests < 1 || o->guests > TRACE_MAX_GUESTS)
		return sp_err_set(err, SP_EINVAL, "replicate: %u guests (1 .. %d)", o->guests,
				  TRACE_MAX_GUESTS);
	if (o->nodes > TRACE_MAX_NODE + 1)
		return sp_err_set(err, SP_EINVAL, "replicate: %u nodes (at most %d)", o->nodes,
				  TRACE_MAX_NODE + 1);
	rc = classify(in, &c, err);
	if (rc == 0)
		rc = trace_reader_open(&r, in, err);
	if (rc < 0)
		goto out;
	ih = trace_reader_header(r);
	rc = replicate_header(ih, o, &h, err);
	if (rc < 0)
		goto out;
	start = calloc((size_t)ih->nguests + 1, sizeof(*start));
	if (!start) {
		rc = sp_err_set(err, SP_ENOMEM, "out of memory");
		goto out;
	}
	rc = trace_writer_open(&w, out, &h, out_mode(ih), err);
	if (rc < 0)
		goto out;
	while ((rc = trace_reader_next_snapshot(r, &s, err)) > 0) {
		rc = read_snapshot_records(r, &buf, err);
		if (rc == 0)
			rc = trace_writer_begin_snapshot(w, s.time_ms, err);
		if (rc == 0)
			rc = write_replicas(w, &c, ih, o, &buf, start, err);
		if (rc < 0)
			break;
	}
out:
	rc = finish(w, rc, err);
	if (r)
		trace_reader_close(r);
	trace_header_release(&h);
	free(start);
	free(buf.r);
	free(c.s);
	return rc;
}

/* ---- subset --------------------------------------------------------------- */

struct keyed {
	struct trace_record rec;
	uint64_t seq;
};

static int cmp_keyed(const void *a, const void *b)
{
	const struct keyed *x = a, *y = b;

	if (x->rec.guest != y->rec.guest)
		return x->rec.guest < y->rec.guest ? -1 : 1;
	if (x->rec.page != y->rec.page)
		return x->rec.page < y->rec.page ? -1 : 1;
	return x->seq < y->seq ? -1 : (x->seq > y->seq);
}

/* One subset: the guests kept, the output, and the records waiting to be folded. */
struct subset {
	const struct trace_subset_opts *o;
	const struct trace_header *ih;
	uint32_t *map, kept;  /* input guest -> output guest + 1 (0: dropped) */
	struct trace_header h;
	struct trace_writer *w;
	struct keyed *pend;   /* records before the window and of its first snapshot */
	size_t npend, cappend;
	uint64_t t0, seq;
	bool started;         /* the window's first snapshot is written */
};

/* The guests kept (named, or all) and the output header with them in input order. */
static int subset_guests(struct subset *x, const char *in, struct sp_err *err)
{
	const struct trace_header *ih = x->ih;
	int rc;

	x->map = calloc(ih->nguests, sizeof(*x->map));
	if (!x->map)
		return sp_err_set(err, SP_ENOMEM, "out of memory");
	for (size_t i = 0; i < x->o->nnames; i++) {
		uint32_t g;

		for (g = 0; g < ih->nguests && strcmp(ih->guests[g].name, x->o->names[i]); g++)
			;
		if (g == ih->nguests)
			return sp_err_set(err, SP_EINVAL, "%s: no guest named '%s'", in, x->o->names[i]);
		x->map[g] = 1;
	}
	for (uint32_t g = 0; g < ih->nguests; g++)
		if (!x->o->nnames || x->map[g])
			x->map[g] = ++x->kept;
	rc = trace_header_init(&x->h, x->kept, err);
	if (rc < 0)
		return rc;
	x->h.page_size = ih->page_size;
	x->h.fp_algo = ih->fp_algo;
	x->h.flags = ih->flags;
	memcpy(x->h.desc, ih->desc, sizeof(x->h.desc));
	for (uint32_t g = 0; g < ih->nguests; g++)
		if (x->map[g])
			x->h.guests[x->map[g] - 1] = ih->guests[g];
	return 0;
}

/* A snapshot in the window starts: the first opens the output at time 0. */
static int subset_begin(struct subset *x, const char *out, uint64_t time_ms, struct sp_err *err)
{
	char note[160];
	int rc;

	if (x->started)
		return trace_writer_begin_snapshot(x->w, time_ms - x->t0, err);
	x->t0 = time_ms;
	snprintf(note, sizeof(note), "subset: %u of %u guests, from %llu ms", x->kept,
		 x->ih->nguests, (unsigned long long)x->t0);
	desc_append(&x->h, note);
	rc = trace_writer_open(&x->w, out, &x->h, out_mode(x->ih), err);
	if (rc == 0)
		rc = trace_writer_begin_snapshot(x->w, 0, err);
	return rc;
}

static int pend_push(struct subset *x, const struct trace_record *rec, struct sp_err *err)
{
	if (x->npend == x->cappend) {
		size_t cap = x->cappend ? 2 * x->cappend : 4096;
		struct keyed *q = realloc(x->pend, cap * sizeof(*q));

		if (!q)
			return sp_err_set(err, SP_ENOMEM, "out of memory");
		x->pend = q;
		x->cappend = cap;
	}
	x->pend[x->npend].rec = *rec;
	x->pend[x->npend++].seq = x->seq++;
	return 0;
}

/* The kept guests' records of one snapshot: written in the window, kept to fold before it. */
static int subset_records(struct subset *x, struct trace_reader *r, bool in_window,
			  struct sp_err *err)
{
	struct trace_record rec;
	int rc;

	while ((rc = trace_reader_next_record(r, &rec, err)) > 0) {
		if (!x->map[rec.guest])
			continue;
		rec.guest = x->map[rec.guest] - 1;
		if (in_window && x->started)
			rc = trace_writer_record(x->w, &rec, err);
		else /* before the window, or its first snapshot: folded together */
			rc = pend_push(x, &rec, err);
		if (rc < 0)
			break;
	}
	return rc;
}

/* The window's first snapshot: every page's latest state, absent ones left out. */
static int write_folded(struct subset *x, struct sp_err *err)
{
	int rc = 0;

	qsort(x->pend, x->npend, sizeof(*x->pend), cmp_keyed);
	for (size_t i = 0; i < x->npend && rc == 0; i++) {
		const struct keyed *p = x->pend;
		bool last = i + 1 == x->npend || p[i + 1].rec.guest != p[i].rec.guest ||
			    p[i + 1].rec.page != p[i].rec.page;

		if (last && (p[i].rec.flags & TRACE_PRESENT))
			rc = trace_writer_record(x->w, &p[i].rec, err);
	}
	x->npend = 0;
	x->started = true;
	return rc;
}

int trace_subset(const char *in, const char *out, const struct trace_subset_opts *o,
		 struct sp_err *err)
{
	struct trace_reader *r = NULL;
	struct subset x = { .o = o };
	struct trace_snapshot s;
	int rc;

	if (o->to_ms < o->from_ms)
		return sp_err_set(err, SP_EINVAL, "subset: the window ends (%llu ms) before it starts "
				  "(%llu ms)", (unsigned long long)o->to_ms, (unsigned long long)o->from_ms);
	rc = trace_reader_open(&r, in, err);
	if (rc < 0)
		return rc;
	x.ih = trace_reader_header(r);
	rc = subset_guests(&x, in, err);
	while (rc == 0 && (rc = trace_reader_next_snapshot(r, &s, err)) > 0) {
		bool in_window = s.time_ms >= o->from_ms && s.time_ms <= o->to_ms;

		if (s.time_ms > o->to_ms) {
			rc = 0;
			break;
		}
		rc = in_window ? subset_begin(&x, out, s.time_ms, err) : 0;
		if (rc == 0)
			rc = subset_records(&x, r, in_window, err);
		if (rc == 0 && in_window && !x.started)
			rc = write_folded(&x, err);
	}
	if (rc == 0 && !x.started)
		rc = sp_err_set(err, SP_EINVAL, "%s: no snapshot between %llu and %llu ms", in,
				(unsigned long long)o->from_ms, (unsigned long long)o->to_ms);
	rc = finish(x.w, rc, err);
	trace_reader_close(r);
	trace_header_release(&x.h);
	free(x.map);
	free(x.pend);
	return rc;
}
