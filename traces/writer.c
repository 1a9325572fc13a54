/*
 * writer.c - implements the all-or-nothing trace writer of trace.h.
 *
 * The file is built as an atomic_file (FILE.tmp-XXXXXX, renamed on commit).  Page records of
 * a snapshot are buffered one PAGE chunk (< 1 MiB) at a time.  A SNAP chunk
 * must state how many records follow, which is known only at the end of the
 * snapshot, so it is written with a zero count and patched in place (payload
 * and checksum) when the next snapshot or the END chunk begins.  Commit writes
 * END, flushes, fsyncs and renames; until then FILE is untouched.
 *
 * Version 2 (the default) also learns, as the records go by, what a reader's
 * pass over them would (FORMAT.md: SUMM): which guests a snapshot records
 * completely (a count per guest per snapshot, from the PAGE chunks) and the
 * estimate of distinct contents (a HyperLogLog of 16 KiB); commit writes it
 * in a SUMM chunk before END.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include "atomic_file.h"
#include "chunk.h"
#include "trace.h"

struct trace_writer {
	struct atomic_file af;
	char *path;               /* == af.path */
	FILE *f;                  /* == af.f */
	uint64_t offset;          /* bytes written so far */
	struct trace_header h;    /* copy of the guest table, for checks */
	uint32_t snapshots;
	uint64_t records;         /* total */
	bool in_snapshot;
	uint64_t snap_offset;     /* file offset of the open SNAP chunk */
	uint64_t snap_time;
	uint64_t snap_records;
	bool have_last;           /* a record was written in this snapshot */
	uint32_t last_guest;
	uint64_t last_page;
	/* the PAGE chunk being filled */
	uint8_t *page;            /* CHUNK_HDR + payload + room for one record */
	size_t page_len;          /* payload bytes so far (0: none open) */
	uint32_t page_count;
	uint32_t page_guest;
	uint64_t page_prev;       /* page number of the chunk's previous record */
	/* version 2's summary */
	uint32_t version;
	uint8_t *hll;             /* TRACE_HLL_REGS registers */
	struct trace_wholes wholes; /* which guests a snapshot recorded completely (chunk.h) */
};

static int werr(struct trace_writer *w, struct sp_err *err, const char *what)
{
	return sp_err_set(err, SP_EIO, "%s: %s: %s", w->path, what, strerror(errno));
}

static void frame(uint8_t *hdr, uint32_t type, uint32_t len, uint8_t *trailer)
{
	put_u32(hdr, type);
	put_u32(hdr + 4, len);
	put_u64(trailer, XXH64(hdr, CHUNK_HDR + (size_t)len, 0));
}

/* Writes a chunk whose header + payload sit contiguously in buf. */
static int put_chunk(struct trace_writer *w, uint8_t *buf, uint32_t type, uint32_t len,
		     struct sp_err *err)
{
	uint8_t trailer[CHUNK_TRAILER];

	frame(buf, type, len, trailer);
	if (fwrite(buf, 1, CHUNK_HDR + (size_t)len, w->f) != CHUNK_HDR + (size_t)len ||
	    fwrite(trailer, 1, sizeof(trailer), w->f) != sizeof(trailer))
		return werr(w, err, "write");
	w->offset += CHUNK_HDR + (uint64_t)len + CHUNK_TRAILER;
	return 0;
}

static int write_head(struct trace_writer *w, const struct trace_header *h, struct sp_err *err)
{
	size_t desc_len = strlen(h->desc), cap = 16 + desc_len + (size_t)h->nguests * 271;
	uint8_t *buf = malloc(CHUNK_HDR + cap), *p;
	int rc;

	if (!buf)
		return sp_err_set(err, SP_ENOMEM, "%s: out of memory", w->path);
	p = buf + CHUNK_HDR;
	put_u32(p, h->page_size);
	p[4] = h->fp_algo;
	p[5] = 128;
	put_u16(p + 6, h->flags);
	put_u32(p + 8, h->nguests);
	put_u16(p + 12, (uint16_t)desc_len);
	memcpy(p + 14, h->desc, desc_len);
	p += 14 + desc_len;
	for (uint32_t g = 0; g < h->nguests; g++) {
		size_t n = strlen(h->guests[g].name);

		*p++ = (uint8_t)n;
		memcpy(p, h->guests[g].name, n);
		p += n;
		put_u16(p, h->guests[g].node);
		put_u32(p + 2, h->guests[g].domain);
		put_u64(p + 6, h->guests[g].pages);
		p += 14;
	}
	rc = put_chunk(w, buf, CHUNK_HEAD, (uint32_t)(p - buf - CHUNK_HDR), err);
	free(buf);
	return rc;
}

static int check_header(const char *path, const struct trace_header *h, struct sp_err *err)
{
	if (h->page_size < 512 || h->page_size > (2u << 20) || (h->page_size & (h->page_size - 1)))
		return sp_err_set(err, SP_EINVAL, "%s: page size %u is not a power of two in [512, 2 MiB]",
				  path, h->page_size);
	if (h->nguests < 1 || h->nguests > TRACE_MAX_GUESTS)
		return sp_err_set(err, SP_EINVAL, "%s: %u guests (1..%d allowed)", path, h->nguests,
				  TRACE_MAX_GUESTS);
	if (strlen(h->desc) > TRACE_MAX_DESC)
		return sp_err_set(err, SP_EINVAL, "%s: description longer than %d bytes", path,
				  TRACE_MAX_DESC);
	for (uint32_t g = 0; g < h->nguests; g++) {
		const struct trace_guest *gu = &h->guests[g];
		size_t n = strlen(gu->name);

		if (n < 1 || n > 255)
			return sp_err_set(err, SP_EINVAL, "%s: guest %u: name must be 1..255 bytes", path, g);
		if (gu->pages < 1 || gu->pages > TRACE_MAX_GUEST_PAGES)
			return sp_err_set(err, SP_EINVAL, "%s: guest '%s': %llu pages (1..2^36 allowed)",
					  path, gu->name, (unsigned long long)gu->pages);
		if (gu->node > TRACE_MAX_NODE)
			return sp_err_set(err, SP_EINVAL, "%s: guest '%s': node %u > %d", path, gu->name,
					  gu->node, TRACE_MAX_NODE);
	}
	return 0;
}

int trace_writer_open(struct trace_writer **out, const char *path, const struct trace_header *h,
		      unsigned mode, struct sp_err *err)
{
	struct trace_writer *w;
	int rc;

	*out = NULL;
	rc = check_header(path, h, err);
	if (rc < 0)
		return rc;
	if (h->version != 0 && (h->version < TRACE_VERSION_MIN || h->version > TRACE_VERSION))
		return sp_err_set(err, SP_EINVAL, "%s: trace version %u (%d..%d written)", path,
				  h->version, TRACE_VERSION_MIN, TRACE_VERSION);
	w = calloc(1, sizeof(*w));
	if (!w)
		return sp_err_set(err, SP_ENOMEM, "%s: out of memory", path);
	w->version = h->version ? h->version : TRACE_VERSION;
	w->page = malloc(CHUNK_HDR + CHUNK_WRITE_TARGET + RECORD_MAX + PAGE_PREFIX);
	if (w->version >= 2)
		w->hll = calloc(TRACE_HLL_REGS, 1);
	if (!w->page || (w->version >= 2 && (!w->hll || trace_wholes_init(&w->wholes, h->nguests) < 0)) ||
	    trace_header_init(&w->h, h->nguests, err) < 0) {
		trace_writer_abort(w);
		return sp_err_set(err, SP_ENOMEM, "%s: out of memory", path);
	}
	memcpy(w->h.guests, h->guests, h->nguests * sizeof(*h->guests));
	rc = atomic_file_open(&w->af, path, mode, err);
	if (rc < 0) {
		trace_writer_abort(w);
		return rc;
	}
	w->path = w->af.path;
	w->f = w->af.f;
	{
		uint8_t hdr[TRACE_MAGIC_LEN + 4];

		memcpy(hdr, TRACE_MAGIC, TRACE_MAGIC_LEN);
		put_u32(hdr + TRACE_MAGIC_LEN, w->version);
		if (fwrite(hdr, 1, sizeof(hdr), w->f) != sizeof(hdr)) {
			rc = werr(w, err, "write");
			trace_writer_abort(w);
			return rc;
		}
		w->offset = sizeof(hdr);
	}
	rc = write_head(w, h, err);
	if (rc < 0) {
		trace_writer_abort(w);
		return rc;
	}
	*out = w;
	return 0;
}

static int flush_page(struct trace_writer *w, struct sp_err *err)
{
	int rc;

	if (w->page_count == 0)
		return 0;
	put_u32(w->page + CHUNK_HDR + 4, w->page_count);
	if (w->wholes.snap_pages)
		trace_wholes_add(&w->wholes, w->h.nguests, w->page_guest, w->page_count);
	rc = put_chunk(w, w->page, CHUNK_PAGE, (uint32_t)w->page_len, err);
	w->page_len = 0;
	w->page_count = 0;
	return rc;
}

/* Closes the open snapshot: flush its records, patch its SNAP chunk's count. */
static int end_snapshot(struct trace_writer *w, struct sp_err *err)
{
	uint8_t buf[CHUNK_HDR + SNAP_PAYLOAD + CHUNK_TRAILER];
	int rc;

	if (!w->in_snapshot)
		return 0;
	rc = flush_page(w, err);
	if (rc < 0)
		return rc;
	if (w->wholes.snap_pages)
		trace_wholes_end(&w->wholes, &w->h);
	put_u32(buf + CHUNK_HDR, w->snapshots - 1);
	put_u64(buf + CHUNK_HDR + 4, w->snap_time);
	put_u64(buf + CHUNK_HDR + 12, w->snap_records);
	frame(buf, CHUNK_SNAP, SNAP_PAYLOAD, buf + CHUNK_HDR + SNAP_PAYLOAD);
	if (fflush(w->f) != 0 ||
	    pwrite(fileno(w->f), buf, sizeof(buf), (off_t)w->snap_offset) != (ssize_t)sizeof(buf))
		return werr(w, err, "write");
	w->in_snapshot = false;
	return 0;
}

int trace_writer_begin_snapshot(struct trace_writer *w, uint64_t time_ms, struct sp_err *err)
{
	uint8_t buf[CHUNK_HDR + SNAP_PAYLOAD];
	int rc;

	if (w->snapshots > 0 && time_ms <= w->snap_time)
		return sp_err_set(err, SP_EINVAL, "%s: snapshot time %llu ms is not after %llu ms",
				  w->path, (unsigned long long)time_ms,
				  (unsigned long long)w->snap_time);
	rc = end_snapshot(w, err);
	if (rc < 0)
		return rc;
	memset(buf, 0, sizeof(buf));
	w->snap_offset = w->offset;
	w->snap_time = time_ms;
	w->snap_records = 0;
	w->have_last = false;
	w->snapshots++;
	w->in_snapshot = true;
	return put_chunk(w, buf, CHUNK_SNAP, SNAP_PAYLOAD, err); /* patched by end_snapshot() */
}

static size_t put_varint(uint8_t *p, uint64_t v)
{
	size_t n = 0;

	while (v >= 0x80) {
		p[n++] = (uint8_t)(v | 0x80);
		v >>= 7;
	}
	p[n++] = (uint8_t)v;
	return n;
}

int trace_writer_record(struct trace_writer *w, const struct trace_record *rec,
			struct sp_err *err)
{
	uint8_t *p, flags = rec->flags;
	int rc;

	if (!w->in_snapshot)
		return sp_err_set(err, SP_EINVAL, "%s: record outside a snapshot", w->path);
	if (rec->guest >= w->h.nguests || rec->page >= w->h.guests[rec->guest].pages)
		return sp_err_set(err, SP_EINVAL, "%s: record for guest %u page %llu is out of range",
				  w->path, rec->guest, (unsigned long long)rec->page);
	if (w->have_last && (rec->guest < w->last_guest ||
			     (rec->guest == w->last_guest && rec->page <= w->last_page)))
		return sp_err_set(err, SP_EINVAL, "%s: records out of order at guest %u page %llu",
				  w->path, rec->guest, (unsigned long long)rec->page);
	if (flags & ~(TRACE_PRESENT | TRACE_ZERO | TRACE_HUGE | TRACE_NODE))
		return sp_err_set(err, SP_EINVAL, "%s: invalid record flags 0x%x", w->path, flags);
	if (!(flags & TRACE_PRESENT))
		flags = 0;
	if ((flags & TRACE_PRESENT) && !(flags & TRACE_ZERO) && sp_fp_is_zero(rec->fp))
		return sp_err_set(err, SP_EINVAL, "%s: guest %u page %llu: fingerprint 0 is reserved "
				  "for zero-filled pages", w->path, rec->guest, (unsigned long long)rec->page);
	/* A node equal to the guest's default need not be stored. */
	if ((flags & TRACE_PRESENT) && rec->node != w->h.guests[rec->guest].node)
		flags |= TRACE_NODE;
	else
		flags &= (uint8_t)~TRACE_NODE;
	if ((flags & TRACE_NODE) && rec->node > TRACE_MAX_NODE)
		return sp_err_set(err, SP_EINVAL, "%s: node %u > %d", w->path, rec->node, TRACE_MAX_NODE);

	if (w->page_count && (w->page_guest != rec->guest || w->page_len >= CHUNK_WRITE_TARGET)) {
		rc = flush_page(w, err);
		if (rc < 0)
			return rc;
	}
	if (w->page_count == 0) {
		p = w->page + CHUNK_HDR;
		put_u32(p, rec->guest);
		put_u64(p + 8, rec->page);
		w->page_len = PAGE_PREFIX;
		w->page_guest = rec->guest;
		w->page_prev = rec->page - 1; /* so gap = page - base for the first */
	}
	p = w->page + CHUNK_HDR + w->page_len;
	p += put_varint(p, rec->page - w->page_prev - 1);
	*p++ = flags;
	if (flags & TRACE_NODE) {
		put_u16(p, rec->node);
		p += 2;
	}
	if ((flags & TRACE_PRESENT) && !(flags & TRACE_ZERO)) {
		put_u64(p, rec->fp.lo);
		put_u64(p + 8, rec->fp.hi);
		p += 16;
		if (w->hll)
			trace_hll_add(w->hll, trace_pair_hash(rec->fp, w->h.guests[rec->guest].domain));
	}
	w->page_len = (size_t)(p - w->page - CHUNK_HDR);
	w->page_count++;
	w->page_prev = rec->page;
	w->have_last = true;
	w->last_guest = rec->guest;
	w->last_page = rec->page;
	w->snap_records++;
	w->records++;
	return 0;
}

/* Version 2's SUMM chunk (FORMAT.md), at w->offset. */
static int write_summary(struct trace_writer *w, struct sp_err *err)
{
	uint32_t len = SUMM_PREFIX + w->h.nguests;
	uint8_t *buf = malloc(CHUNK_HDR + (size_t)len), *p = buf + CHUNK_HDR;
	int rc;

	if (!buf)
		return sp_err_set(err, SP_ENOMEM, "%s: out of memory", w->path);
	put_u64(p, w->snapshots ? w->snap_time : 0);
	put_u64(p + 8, trace_hll_count(w->hll));
	put_u32(p + 16, w->h.nguests);
	memcpy(p + SUMM_PREFIX, w->wholes.complete, w->h.nguests);
	rc = put_chunk(w, buf, CHUNK_SUMM, len, err);
	free(buf);
	return rc;
}

int trace_writer_commit(struct trace_writer *w, struct sp_err *err)
{
	uint8_t buf[CHUNK_HDR + END_PAYLOAD_V2];
	uint64_t summ = 0;
	int rc = end_snapshot(w, err);

	if (rc == 0 && w->version >= 2) {
		summ = w->offset;
		rc = write_summary(w, err);
	}
	if (rc == 0) {
		put_u32(buf + CHUNK_HDR, w->snapshots);
		put_u64(buf + CHUNK_HDR + 4, w->records);
		put_u64(buf + CHUNK_HDR + 12, summ);
		rc = put_chunk(w, buf, CHUNK_END, w->version >= 2 ? END_PAYLOAD_V2 : END_PAYLOAD, err);
	}
	if (rc == 0)
		rc = atomic_file_commit(&w->af, err);
	trace_writer_abort(w);
	return rc;
}

void trace_writer_abort(struct trace_writer *w)
{
	if (!w)
		return;
	atomic_file_abort(&w->af);
	trace_header_release(&w->h);
	free(w->page);
	free(w->hll);
	trace_wholes_free(&w->wholes);
	free(w);
}
