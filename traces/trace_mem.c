/*
 * trace_mem.c - implements the trace decoded in memory (struct trace_mem)
 * and the trace_source views of it and of the file reader.
 *
 * trace_mem_load() streams the file once through the checking reader and
 * keeps every snapshot header and record in two arrays; after that the
 * struct is never written, so cursors in several threads share it without
 * locks.  A cursor is a position: the next snapshot, the next record and the
 * end of the current snapshot's records.
 *
 * A streamed trace_mem (large files, or asked for) keeps the snapshot
 * headers only: each cursor opens a reader of its own on the file when first
 * used and decodes as it goes, so the threads share the file's bytes through
 * the page cache instead of a private decoded copy.  The file must not change
 * meanwhile: a cursor that finds another file (device, inode, size or
 * modification time) under the path fails instead of replaying it.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <errno.h>

#include "trace.h"

_Static_assert(sizeof(struct trace_record) == 32, "a decoded record is 32 bytes");

struct trace_mem {
	struct trace_header h;
	struct trace_snapshot *snaps;
	uint64_t *first;             /* index of each snapshot's first record */
	uint64_t nsnaps, cap_snaps;
	struct trace_record *recs;   /* NULL when streamed */
	uint64_t nrecs, cap_recs;
	bool streamed;
	char *path;                  /* streamed: the file, and what it was when checked */
	struct stat st;
	struct trace_summary sum;    /* version 2's (checked with the records); sum.complete NULL: none */
};

/* Decoded, a record costs 32 bytes, on disk about 16: files above this are streamed. */
#define STREAM_ABOVE_BYTES ((uint64_t)1 << 30)

static bool same_file(const struct stat *a, const struct stat *b)
{
	return a->st_dev == b->st_dev && a->st_ino == b->st_ino && a->st_size == b->st_size &&
	       a->st_mtim.tv_sec == b->st_mtim.tv_sec && a->st_mtim.tv_nsec == b->st_mtim.tv_nsec;
}

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
	return trace_mem_load_as(out, path, TRACE_MEM_AUTO, progress, arg, err);
}

int trace_mem_load_as(struct trace_mem **out, const char *path, enum trace_mem_mode mode,
		      trace_progress_fn progress, void *arg, struct sp_err *err)
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
	if (rc == 0 && stat(path, &m->st) != 0)
		rc = sp_err_set(err, SP_EIO, "%s: %s", path, strerror(errno));
	m->streamed = mode == TRACE_MEM_STREAMED ||
		      (mode == TRACE_MEM_AUTO && rc == 0 && S_ISREG(m->st.st_mode) &&
		       (uint64_t)m->st.st_size > STREAM_ABOVE_BYTES);
	if (rc == 0 && m->streamed && !S_ISREG(m->st.st_mode))
		rc = sp_err_set(err, SP_EINVAL, "%s: not a regular file: cannot be read more than once",
				path);
	if (rc == 0 && m->streamed && !(m->path = strdup(path)))
		rc = sp_err_set(err, SP_ENOMEM, "%s: out of memory", path);
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
			if (m->streamed) {
				m->nrecs++;
				continue;
			}
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
	if (rc == 0 && trace_reader_summary(r, &m->sum, err) < 0)
		rc = SP_ENOMEM;
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
	free(m->path);
	free(m->sum.complete);
	free(m);
}

const struct trace_summary *trace_mem_summary(const struct trace_mem *m)
{
	return m->sum.complete ? &m->sum : NULL;
}

bool trace_mem_streamed(const struct trace_mem *m)
{
	return m->streamed;
}

uint64_t trace_mem_last_ms(const struct trace_mem *m)
{
	return m->nsnaps ? m->snaps[m->nsnaps - 1].time_ms : 0;
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

void trace_mem_cursor_release(struct trace_mem_cursor *c)
{
	trace_reader_close(c->r);
	c->r = NULL;
}

/* A streamed cursor's reader, opened on first use on the file that was checked. */
static int open_stream(struct trace_mem_cursor *c, struct sp_err *err)
{
	struct stat st;
	int rc;

	if (c->r)
		return 0;
	rc = trace_reader_open(&c->r, c->m->path, err);
	if (rc < 0)
		return rc;
	if (stat(c->m->path, &st) != 0 || !same_file(&st, &c->m->st)) {
		trace_mem_cursor_release(c);
		return sp_err_set(err, SP_EIO, "%s: the trace changed on disk while being replayed",
				  c->m->path);
	}
	return 0;
}

static const struct trace_header *mem_header(void *impl)
{
	return &((struct trace_mem_cursor *)impl)->m->h;
}

static int mem_next_snapshot(void *impl, struct trace_snapshot *out, struct sp_err *err)
{
	struct trace_mem_cursor *c = impl;
	const struct trace_mem *m = c->m;

	if (m->streamed) {
		int rc = open_stream(c, err);

		return rc < 0 ? rc : trace_reader_next_snapshot(c->r, out, err);
	}
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

	if (c->m->streamed)
		return c->r ? trace_reader_next_record(c->r, out, err) : 0;
	if (c->rec == c->rec_end)
		return 0;
	*out = c->m->recs[c->rec++];
	return 1;
}

static int mem_next_records(void *impl, struct trace_record *out, unsigned max, struct sp_err *err)
{
	struct trace_mem_cursor *c = impl;
	uint64_t n = c->rec_end - c->rec;

	if (c->m->streamed)
		return c->r ? trace_reader_next_records(c->r, out, max, err) : 0;
	n = n < max ? n : max;
	memcpy(out, c->m->recs + c->rec, n * sizeof(*out));
	c->rec += n;
	return (int)n;
}

struct trace_source trace_mem_source(struct trace_mem_cursor *c)
{
	struct trace_source s = { mem_header, mem_next_snapshot, mem_next_record, c,
				  mem_next_records };

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

static int reader_next_records(void *impl, struct trace_record *out, unsigned max,
			       struct sp_err *err)
{
	return trace_reader_next_records(impl, out, max, err);
}

struct trace_source trace_reader_source(struct trace_reader *r)
{
	struct trace_source s = { reader_header, reader_next_snapshot, reader_next_record, r,
				  reader_next_records };

	return s;
}
