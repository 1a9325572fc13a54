/*
 * trace_mem.c - implements the trace decoded in memory (struct trace_mem)
 * and the trace_source views of it and of the file reader.
 *
 * trace_mem_load() streams the file once through the checking reader and
 * keeps every snapshot header and record in two arrays; after that the
 * struct is never written, so cursors in several threads share it without
 * locks.  A cursor is a position: the next snapshot, the next record and the
 * end of the current snapshot's records.
 */
#include <stdlib.h>
#include <string.h>

#include "trace.h"

struct trace_mem {
	struct trace_header h;
	struct trace_snapshot *snaps;
	uint64_t *first;             /* index of each snapshot's first record */
	uint64_t nsnaps, cap_snaps;
	struct trace_record *recs;
	uint64_t nrecs, cap_recs;
};

static int grow(void **p, uint64_t *cap, uint64_t need, size_t size)
{
	uint64_t c = *cap ? *cap : 1024;
	void *q;

	if (need <= *cap)
		return 0;
	while (c < need)
		c *= 2;
	q = realloc(*p, c * size);
	if (!q)
		return SP_ENOMEM;
	*p = q;
	*cap = c;
	return 0;
}

int trace_mem_load(struct trace_mem **out, const char *path, trace_progress_fn progress, void *arg,
		   struct sp_err *err)
{
	struct trace_mem *m = calloc(1, sizeof(*m));
	struct trace_reader *r = NULL;
	struct trace_snapshot s;
	struct trace_record rec;
	uint64_t cap_first = 0;
	int rc;

	*out = NULL;
	if (!m)
		return sp_err_set(err, SP_ENOMEM, "%s: out of memory", path);
	rc = trace_reader_open(&r, path, err);
	if (rc == 0) {
		const struct trace_header *h = trace_reader_header(r);

		rc = trace_header_init(&m->h, h->nguests, err);
		if (rc == 0) {
			struct trace_guest *g = m->h.guests;

			m->h = *h;
			m->h.guests = g;
			memcpy(g, h->guests, h->nguests * sizeof(*g));
		}
	}
	while (rc == 0 && (rc = trace_reader_next_snapshot(r, &s, err)) > 0) {
		if (grow((void **)&m->snaps, &m->cap_snaps, m->nsnaps + 1, sizeof(*m->snaps)) < 0 ||
		    grow((void **)&m->first, &cap_first, m->nsnaps + 1, sizeof(*m->first)) < 0) {
			rc = sp_err_set(err, SP_ENOMEM, "%s: out of memory", path);
			break;
		}
		m->snaps[m->nsnaps] = s;
		m->first[m->nsnaps++] = m->nrecs;
		while ((rc = trace_reader_next_record(r, &rec, err)) > 0) {
			if (grow((void **)&m->recs, &m->cap_recs, m->nrecs + 1, sizeof(*m->recs)) < 0) {
				rc = sp_err_set(err, SP_ENOMEM, "%s: out of memory for %llu records", path,
						(unsigned long long)m->nrecs);
				break;
			}
			m->recs[m->nrecs++] = rec;
		}
		if (rc == 0 && progress)
			progress(arg, trace_reader_offset(r), trace_reader_size(r));
	}
	trace_reader_close(r);
	if (rc < 0) {
		trace_mem_free(m);
		return rc;
	}
	*out = m;
	return 0;
}

void trace_mem_free(struct trace_mem *m)
{
	if (!m)
		return;
	trace_header_release(&m->h);
	free(m->snaps);
	free(m->first);
	free(m->recs);
	free(m);
}

const struct trace_header *trace_mem_header(const struct trace_mem *m)
{
	return &m->h;
}

uint64_t trace_mem_records(const struct trace_mem *m)
{
	return m->nrecs;
}

void trace_mem_cursor_init(struct trace_mem_cursor *c, const struct trace_mem *m)
{
	memset(c, 0, sizeof(*c));
	c->m = m;
}

static const struct trace_header *mem_header(void *impl)
{
	return &((struct trace_mem_cursor *)impl)->m->h;
}

static int mem_next_snapshot(void *impl, struct trace_snapshot *out, struct sp_err *err)
{
	struct trace_mem_cursor *c = impl;
	const struct trace_mem *m = c->m;

	(void)err;
	if (c->snap == m->nsnaps)
		return 0;
	*out = m->snaps[c->snap];
	c->rec = m->first[c->snap];
	c->snap++;
	c->rec_end = c->snap < m->nsnaps ? m->first[c->snap] : m->nrecs;
	return 1;
}

static int mem_next_record(void *impl, struct trace_record *out, struct sp_err *err)
{
	struct trace_mem_cursor *c = impl;

	(void)err;
	if (c->rec == c->rec_end)
		return 0;
	*out = c->m->recs[c->rec++];
	return 1;
}

struct trace_source trace_mem_source(struct trace_mem_cursor *c)
{
	struct trace_source s = { mem_header, mem_next_snapshot, mem_next_record, c };

	return s;
}

static const struct trace_header *reader_header(void *impl)
{
	return trace_reader_header(impl);
}

static int reader_next_snapshot(void *impl, struct trace_snapshot *out, struct sp_err *err)
{
	return trace_reader_next_snapshot(impl, out, err);
}

static int reader_next_record(void *impl, struct trace_record *out, struct sp_err *err)
{
	return trace_reader_next_record(impl, out, err);
}

struct trace_source trace_reader_source(struct trace_reader *r)
{
	struct trace_source s = { reader_header, reader_next_snapshot, reader_next_record, r };

	return s;
}
