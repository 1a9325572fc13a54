/*
 * reader.c - implements the streaming trace reader of trace.h.
 *
 * One chunk at a time is read into a buffer and its XXH64 verified before a
 * byte of it is interpreted; then its fields are range-checked against
 * FORMAT.md.  Nothing in the file can make the reader allocate more than
 * CHUNK_MAX_PAYLOAD plus the guest table, read past a buffer, or loop.
 * Errors name the file, the byte offset of the chunk, and for page records
 * the record's number within its snapshot.
 *
 * Version 2's summary (SUMM) is checked against what was read before it:
 * which guests a snapshot recorded completely (counted per PAGE chunk, not
 * per record) and the last snapshot's time always; the estimate of distinct
 * contents (a hash per record) only by trace_check().
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include "chunk.h"
#include "trace.h"

struct trace_reader {
	char *path;
	FILE *f;
	uint64_t size;          /* file size at open */
	uint64_t offset;        /* offset of the next unread byte */
	struct trace_header h;
	/* the current chunk */
	uint32_t type;
	uint32_t len;
	uint64_t chunk_off;     /* offset of its header */
	uint8_t *buf;           /* payload */
	size_t pos;             /* parse position in payload */
	/* the current snapshot */
	bool in_snapshot;
	bool pending;           /* the current chunk (SNAP or END) is not consumed yet */
	bool ended;
	uint32_t snapshots;
	uint64_t last_time;
	struct trace_snapshot snap;
	uint64_t snap_read;     /* records read of snap */
	uint64_t total;         /* records read in all */
	/* the current PAGE chunk */
	uint32_t page_left;
	uint32_t page_guest;
	uint64_t page_next;     /* page number of previous record + 1 */
	bool have_last;
	uint32_t last_guest;
	uint64_t last_page;
	/* version 2 */
	uint32_t version;
	uint64_t summ_off;      /* offset of the SUMM chunk read (0: none yet) */
	struct trace_wholes wholes; /* which guests a snapshot recorded completely (chunk.h) */
	uint8_t *hll;           /* trace_check(): the estimate's registers, to check SUMM's */
};

static int corrupt(struct trace_reader *r, struct sp_err *err, const char *what)
{
	char name[5];

	chunk_name(r->type, name);
	return sp_err_set(err, SP_ECORRUPT, "%s: offset %llu: chunk '%s': %s", r->path,
			  (unsigned long long)r->chunk_off, name, what);
}

/* Reads the next chunk into r->buf and verifies its checksum. */
static int read_chunk(struct trace_reader *r, struct sp_err *err)
{
	uint8_t hdr[CHUNK_HDR], trailer[CHUNK_TRAILER];
	XXH64_state_t *st;
	uint64_t sum;
	size_t n;

	r->chunk_off = r->offset;
	n = fread(hdr, 1, CHUNK_HDR, r->f);
	if (n == 0 && feof(r->f))
		return sp_err_set(err, SP_ETRUNC, "%s: truncated at offset %llu: no END chunk",
				  r->path, (unsigned long long)r->offset);
	if (n != CHUNK_HDR)
		goto short_read;
	r->type = get_u32(hdr);
	r->len = get_u32(hdr + 4);
	if (r->type != CHUNK_HEAD && r->type != CHUNK_SNAP && r->type != CHUNK_PAGE &&
	    r->type != CHUNK_END && (r->type != CHUNK_SUMM || r->version < 2))
		return corrupt(r, err, "unknown chunk type");
	if (r->len > CHUNK_MAX_PAYLOAD)
		return sp_err_set(err, SP_ELIMIT, "%s: offset %llu: chunk length %u exceeds %u",
				  r->path, (unsigned long long)r->chunk_off, r->len,
				  CHUNK_MAX_PAYLOAD);
	if (r->chunk_off + CHUNK_HDR + r->len + CHUNK_TRAILER > r->size)
		goto short_read;
	if (fread(r->buf, 1, r->len, r->f) != r->len ||
	    fread(trailer, 1, CHUNK_TRAILER, r->f) != CHUNK_TRAILER)
		goto short_read;
	st = XXH64_createState();
	if (!st)
		return sp_err_set(err, SP_ENOMEM, "%s: out of memory", r->path);
	XXH64_reset(st, 0);
	XXH64_update(st, hdr, CHUNK_HDR);
	XXH64_update(st, r->buf, r->len);
	sum = XXH64_digest(st);
	XXH64_freeState(st);
	if (sum != get_u64(trailer))
		return corrupt(r, err, "checksum mismatch");
	r->offset += CHUNK_HDR + (uint64_t)r->len + CHUNK_TRAILER;
	r->pos = 0;
	return 0;
short_read:
	if (ferror(r->f))
		return sp_err_set(err, SP_EIO, "%s: read error at offset %llu: %s", r->path,
				  (unsigned long long)r->chunk_off, strerror(errno));
	return sp_err_set(err, SP_ETRUNC, "%s: truncated at offset %llu (file ends inside a chunk)",
			  r->path, (unsigned long long)r->chunk_off);
}

/* Bounds-checked payload access: NULL if fewer than n bytes remain. */
static const uint8_t *take(struct trace_reader *r, size_t n)
{
	const uint8_t *p;

	if (r->len - r->pos < n)
		return NULL;
	p = r->buf + r->pos;
	r->pos += n;
	return p;
}

static int parse_head(struct trace_reader *r, struct sp_err *err)
{
	const uint8_t *p = take(r, 14);
	uint32_t nguests;
	uint16_t desc_len;
	int rc;

	if (r->type != CHUNK_HEAD)
		return corrupt(r, err, "the first chunk must be HEAD");
	if (!p)
		return corrupt(r, err, "header too short");
	rc = trace_header_init(&r->h, 1, err); /* fields first; the guest table below */
	if (rc < 0)
		return rc;
	r->h.page_size = get_u32(p);
	r->h.fp_algo = p[4];
	r->h.flags = get_u16(p + 6);
	nguests = get_u32(p + 8);
	desc_len = get_u16(p + 12);
	if (r->h.page_size < 512 || r->h.page_size > (2u << 20) ||
	    (r->h.page_size & (r->h.page_size - 1)))
		return sp_err_set(err, SP_ELIMIT, "%s: offset %llu: page size %u is not a power of two in [512, 2 MiB]",
				  r->path, (unsigned long long)r->chunk_off, r->h.page_size);
	if (r->h.fp_algo != TRACE_FP_XXH3_128 && r->h.fp_algo != TRACE_FP_SYNTHETIC)
		return corrupt(r, err, "unknown fingerprint function");
	if (p[5] != 128)
		return corrupt(r, err, "fingerprint width is not 128 bits");
	if (r->h.flags & ~(TRACE_F_KEYED | TRACE_F_FUZZY))
		return corrupt(r, err, "unknown header flags");
	if (nguests < 1 || nguests > TRACE_MAX_GUESTS)
		return sp_err_set(err, SP_ELIMIT, "%s: offset %llu: guest count %u is not in 1..%d",
				  r->path, (unsigned long long)r->chunk_off, nguests, TRACE_MAX_GUESTS);
	if (desc_len > TRACE_MAX_DESC)
		return sp_err_set(err, SP_ELIMIT, "%s: offset %llu: description length %u exceeds %d",
				  r->path, (unsigned long long)r->chunk_off, desc_len, TRACE_MAX_DESC);
	p = take(r, desc_len);
	if (!p)
		return corrupt(r, err, "header too short for its description");
	free(r->h.guests);
	r->h.guests = calloc(nguests, sizeof(*r->h.guests));
	if (!r->h.guests)
		return sp_err_set(err, SP_ENOMEM, "%s: out of memory for %u guests", r->path, nguests);
	r->h.nguests = nguests;
	memcpy(r->h.desc, p, desc_len);
	r->h.desc[desc_len] = '\0';
	for (uint32_t g = 0; g < nguests; g++) {
		struct trace_guest *gu = &r->h.guests[g];
		const uint8_t *q = take(r, 1);
		uint8_t n;

		if (!q)
			return corrupt(r, err, "guest table too short");
		n = q[0];
		q = take(r, (size_t)n + 14);
		if (!q)
			return corrupt(r, err, "guest table too short");
		if (n == 0)
			return corrupt(r, err, "a guest has an empty name");
		memcpy(gu->name, q, n);
		gu->name[n] = '\0';
		gu->node = get_u16(q + n);
		gu->domain = get_u32(q + n + 2);
		gu->pages = get_u64(q + n + 6);
		if (gu->node > TRACE_MAX_NODE)
			return sp_err_set(err, SP_ELIMIT, "%s: offset %llu: guest '%s': node %u exceeds %d",
					  r->path, (unsigned long long)r->chunk_off, gu->name, gu->node,
					  TRACE_MAX_NODE);
		if (gu->pages < 1 || gu->pages > TRACE_MAX_GUEST_PAGES)
			return sp_err_set(err, SP_ELIMIT, "%s: offset %llu: guest '%s': page count %llu is not in 1..2^36",
					  r->path, (unsigned long long)r->chunk_off, gu->name,
					  (unsigned long long)gu->pages);
	}
	if (r->pos != r->len)
		return corrupt(r, err, "trailing bytes in header");
	return 0;
}

int trace_reader_open(struct trace_reader **out, const char *path, struct sp_err *err)
{
	struct trace_reader *r = calloc(1, sizeof(*r));
	uint8_t magic[TRACE_MAGIC_LEN + 4];
	struct stat sb;
	size_t n;
	int rc, fd;

	*out = NULL;
	if (!r)
		return sp_err_set(err, SP_ENOMEM, "%s: out of memory", path);
	r->path = strdup(path);
	r->buf = malloc(CHUNK_MAX_PAYLOAD);
	if (!r->path || !r->buf) {
		trace_reader_close(r);
		return sp_err_set(err, SP_ENOMEM, "%s: out of memory", path);
	}
	/* O_NONBLOCK: opening a FIFO named as a trace must not wait for a writer */
	fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0) {
		rc = sp_err_set(err, errno == EACCES ? SP_EPERM : SP_EIO, "%s: %s", path, strerror(errno));
		trace_reader_close(r);
		return rc;
	}
	if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
		close(fd);
		trace_reader_close(r);
		return sp_err_set(err, SP_EIO, "%s: not a regular file", path);
	}
	r->f = fdopen(fd, "rb");
	if (!r->f) {
		close(fd);
		trace_reader_close(r);
		return sp_err_set(err, SP_ENOMEM, "%s: out of memory", path);
	}
	r->size = (uint64_t)sb.st_size;
	setvbuf(r->f, NULL, _IOFBF, 1 << 20);
	n = fread(magic, 1, sizeof(magic), r->f);
	if (n < TRACE_MAGIC_LEN || memcmp(magic, TRACE_MAGIC, TRACE_MAGIC_LEN) != 0)
		rc = n < TRACE_MAGIC_LEN && memcmp(magic, TRACE_MAGIC, n) == 0 && n > 0
			     ? sp_err_set(err, SP_ETRUNC, "%s: truncated at offset %zu (inside the magic)", path, n)
			     : sp_err_set(err, SP_EMAGIC, "%s: offset 0: not a samepage trace (bad magic)", path);
	else if (n < sizeof(magic))
		rc = sp_err_set(err, SP_ETRUNC, "%s: truncated at offset %zu (inside the version)", path, n);
	else if (get_u32(magic + TRACE_MAGIC_LEN) < TRACE_VERSION_MIN ||
		 get_u32(magic + TRACE_MAGIC_LEN) > TRACE_VERSION)
		rc = sp_err_set(err, SP_EVERSION, "%s: offset 8: trace version %u, this build reads versions %d to %d",
				path, get_u32(magic + TRACE_MAGIC_LEN), TRACE_VERSION_MIN, TRACE_VERSION);
	else {
		r->version = get_u32(magic + TRACE_MAGIC_LEN);
		r->offset = sizeof(magic);
		rc = read_chunk(r, err);
		if (rc == 0)
			rc = parse_head(r, err);
		r->h.version = r->version;
		if (rc == 0 && r->version >= 2) {
			if (trace_wholes_init(&r->wholes, r->h.nguests) < 0)
				rc = sp_err_set(err, SP_ENOMEM, "%s: out of memory", path);
		}
	}
	if (rc < 0) {
		trace_reader_close(r);
		return rc;
	}
	*out = r;
	return 0;
}

const struct trace_header *trace_reader_header(const struct trace_reader *r)
{
	return &r->h;
}

uint64_t trace_reader_offset(const struct trace_reader *r) { return r->offset; }
uint64_t trace_reader_size(const struct trace_reader *r) { return r->size; }

static int parse_page_prefix(struct trace_reader *r, struct sp_err *err)
{
	const uint8_t *p = take(r, PAGE_PREFIX);

	if (!p)
		return corrupt(r, err, "PAGE chunk too short");
	r->page_guest = get_u32(p);
	r->page_left = get_u32(p + 4);
	r->page_next = get_u64(p + 8);
	if (r->page_guest >= r->h.nguests)
		return corrupt(r, err, "guest index out of range");
	if (r->page_left == 0)
		return corrupt(r, err, "PAGE chunk with no records");
	if (r->page_next >= r->h.guests[r->page_guest].pages)
		return corrupt(r, err, "base page beyond the guest's page count");
	if (r->wholes.snap_pages)
		trace_wholes_add(&r->wholes, r->h.nguests, r->page_guest, r->page_left);
	return 0;
}

/* Moves to the next chunk of the current snapshot: 1 = PAGE ready, 0 = snapshot over. */
static int advance(struct trace_reader *r, struct sp_err *err)
{
	int rc = read_chunk(r, err);

	if (rc < 0)
		return rc;
	if (r->type == CHUNK_PAGE) {
		rc = parse_page_prefix(r, err);
		return rc < 0 ? rc : 1;
	}
	if (r->type == CHUNK_HEAD)
		return corrupt(r, err, "a second HEAD chunk");
	r->pending = true; /* SNAP or END: consumed by next_snapshot */
	return 0;
}

static int finish_snapshot(struct trace_reader *r, struct sp_err *err)
{
	if (r->snap_read != r->snap.records) {
		char what[128];

		snprintf(what, sizeof(what), "snapshot %u announced %llu records but has %llu",
			 r->snap.index, (unsigned long long)r->snap.records,
			 (unsigned long long)r->snap_read);
		return corrupt(r, err, what);
	}
	if (r->wholes.snap_pages)
		trace_wholes_end(&r->wholes, &r->h);
	r->in_snapshot = false;
	return 0;
}

/* A record's error: "record N of snapshot S" and what; cold, only corrupt files get here. */
static int bad_record(struct trace_reader *r, struct sp_err *err, const char *fmt, ...)
	__attribute__((cold, format(printf, 3, 4)));

static int bad_record(struct trace_reader *r, struct sp_err *err, const char *fmt, ...)
{
	char what[400];
	int n = snprintf(what, sizeof(what), "record %llu of snapshot %u",
			 (unsigned long long)r->snap_read, r->snap.index);
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(what + n, sizeof(what) - (size_t)n, fmt, ap);
	va_end(ap);
	return corrupt(r, err, what);
}

static int past_end(struct trace_reader *r, struct sp_err *err) __attribute__((cold));

static int past_end(struct trace_reader *r, struct sp_err *err)
{
	return bad_record(r, err, " runs past the chunk's end");
}

/* The gap to the record's page: LEB128, at most 10 bytes; the 10th may carry only bit 63 and must end it. */
static inline int read_gap(struct trace_reader *r, uint64_t *gap, struct sp_err *err)
{
	uint64_t v = 0;

	for (int shift = 0;; shift += 7) {
		const uint8_t *p = take(r, 1);

		if (!p)
			return past_end(r, err);
		if (shift == 63 && (p[0] & 0xfe))
			return bad_record(r, err, ": %s",
					  (p[0] & 0x80) ? "gap varint longer than 10 bytes"
							: "gap varint has bits above 2^64");
		v |= (uint64_t)(p[0] & 0x7f) << shift;
		if (!(p[0] & 0x80)) {
			*gap = v;
			return 0;
		}
	}
}

/* A record's flags are ones the format defines; an absent page has none. */
static inline bool flags_valid(uint8_t flags)
{
	return !(flags & ~(TRACE_PRESENT | TRACE_ZERO | TRACE_HUGE | TRACE_NODE)) &&
	       ((flags & TRACE_PRESENT) || flags == 0);
}

/* Record (guest, page) comes after the last one read: records are in order. */
static inline bool in_order(const struct trace_reader *r, uint32_t guest, uint64_t page)
{
	return !r->have_last || guest > r->last_guest || (guest == r->last_guest && page > r->last_page);
}

/* The record's flags, page (in the guest, after the last record's) and node. */
static inline int read_place(struct trace_reader *r, uint64_t gap, struct trace_record *out,
			     struct sp_err *err)
{
	const struct trace_guest *g = &r->h.guests[r->page_guest];
	const uint8_t *p = take(r, 1);
	uint8_t flags;

	if (!p)
		return past_end(r, err);
	flags = p[0];
	if (!flags_valid(flags))
		return bad_record(r, err, ": invalid flags 0x%02x", flags);
	out->guest = r->page_guest;
	out->page = r->page_next + gap;
	if (gap >= g->pages || out->page >= g->pages)
		return bad_record(r, err, ": page beyond guest '%s''s %llu pages", g->name,
				  (unsigned long long)g->pages);
	if (!in_order(r, out->guest, out->page))
		return bad_record(r, err, ": records out of order");
	out->flags = flags;
	out->node = g->node;
	if (flags & TRACE_NODE) {
		p = take(r, 2);
		if (!p)
			return past_end(r, err);
		out->node = get_u16(p);
		if (out->node > TRACE_MAX_NODE)
			return bad_record(r, err, ": node %u exceeds %d", out->node, TRACE_MAX_NODE);
	}
	return 0;
}

/* The fingerprint of a present, non-zero page; 0 for the others. */
static inline int read_fp(struct trace_reader *r, struct trace_record *out, struct sp_err *err)
{
	const uint8_t *p;

	out->fp.lo = out->fp.hi = 0;
	if (!(out->flags & TRACE_PRESENT) || (out->flags & TRACE_ZERO))
		return 0;
	p = take(r, 16);
	if (!p)
		return past_end(r, err);
	out->fp.lo = get_u64(p);
	out->fp.hi = get_u64(p + 8);
	/* 0 is reserved for zero-filled pages (FORMAT.md): a merger would take it for one. */
	if (sp_fp_is_zero(out->fp))
		return bad_record(r, err, ": fingerprint 0 on a page not flagged ZERO");
	return 0;
}

/*
 * The common record decoded in one go from p, without a bounds check per
 * byte (at least RECORD_MAX bytes must be left in the chunk): a gap of at
 * most two bytes, the page after next (the previous record's page + 1, or
 * the chunk's base) in guest guest, of pages pages and default node node
 * (values, not the guest's fields: out might alias them).  The byte past it, or NULL
 * for anything else (errors included: the checked path below decodes the
 * record, or names what is wrong with it); out may be written either way.
 * The same checks as read_gap(), read_place() and read_fp() but the order
 * of the records, which is the caller's.
 */
static inline const uint8_t *decode_fast(const uint8_t *p, uint64_t next, uint64_t pages,
					 uint16_t node, uint32_t guest, struct trace_record *out)
{
	uint64_t gap;
	uint8_t flags;

	if (p[0] < 0x80) {
		gap = *p++;
	} else if (p[1] < 0x80) {
		gap = (uint64_t)(p[0] & 0x7f) | (uint64_t)p[1] << 7;
		p += 2;
	} else {
		return NULL;
	}
	flags = *p++;
	if (!flags_valid(flags))
		return NULL;
	out->page = next + gap; /* no wrap: next <= 2^36, gap < 2^14 */
	if (out->page >= pages)
		return NULL;
	out->guest = guest;
	out->flags = flags;
	out->node = node;
	if (flags & TRACE_NODE) {
		out->node = get_u16(p);
		p += 2;
		if (out->node > TRACE_MAX_NODE)
			return NULL;
	}
	out->fp.lo = out->fp.hi = 0;
	if ((flags & (TRACE_PRESENT | TRACE_ZERO)) == TRACE_PRESENT) {
		out->fp.lo = get_u64(p);
		out->fp.hi = get_u64(p + 8);
		p += 16;
		if (sp_fp_is_zero(out->fp))
			return NULL;
	}
	return p;
}

/*
 * The next record by decode_fast(), in order after the last one read.
 * true: *out holds a sound record and r->pos is past it; false: nothing is
 * consumed, and the checked path decodes it.
 */
static inline bool fast_record(struct trace_reader *r, struct trace_record *out)
{
	const struct trace_guest *g = &r->h.guests[r->page_guest];
	const uint8_t *p;

	if (r->len - r->pos < RECORD_MAX)
		return false;
	p = decode_fast(r->buf + r->pos, r->page_next, g->pages, g->node, r->page_guest, out);
	if (!p || !in_order(r, out->guest, out->page))
		return false;
	r->pos = (size_t)(p - r->buf);
	return true;
}

int trace_reader_next_record(struct trace_reader *r, struct trace_record *out,
			     struct sp_err *err)
{
	uint64_t gap = 0;
	int rc;

	if (!r->in_snapshot)
		return 0;
	while (r->page_left == 0) {
		rc = advance(r, err);
		if (rc < 0)
			return rc;
		if (rc == 0) {
			rc = finish_snapshot(r, err);
			return rc < 0 ? rc : 0;
		}
	}
	if (!fast_record(r, out) &&
	    ((rc = read_gap(r, &gap, err)) < 0 || (rc = read_place(r, gap, out, err)) < 0 ||
	     (rc = read_fp(r, out, err)) < 0))
		return rc;
	if (r->hll && (out->flags & (TRACE_PRESENT | TRACE_ZERO)) == TRACE_PRESENT)
		trace_hll_add(r->hll, trace_pair_hash(out->fp, r->h.guests[out->guest].domain));
	r->have_last = true;
	r->last_guest = out->guest;
	r->last_page = out->page;
	r->page_next = out->page + 1;
	r->snap_read++;
	r->total++;
	if (--r->page_left == 0 && r->pos != r->len) {
		char what[128];

		snprintf(what, sizeof(what), "trailing bytes after record %llu of snapshot %u",
			 (unsigned long long)r->snap_read - 1, r->snap.index);
		return corrupt(r, err, what);
	}
	if (r->snap_read > r->snap.records) {
		char what[128];

		snprintf(what, sizeof(what), "snapshot %u has more than the %llu records it announced",
			 r->snap.index, (unsigned long long)r->snap.records);
		return corrupt(r, err, what);
	}
	return 1;
}

/*
 * Up to max records by decode_fast() right after one the checked path read,
 * in the same PAGE chunk: in order by construction (each page is the one
 * before + 1 + gap, the same guest), short of the chunk's last record (whose
 * trailing bytes the checked path checks) and of the snapshot's announced
 * count.  The first record decode_fast() refuses, and all after it, are
 * left to the checked path.  The reader's state is kept in locals: stores
 * through out would otherwise force it through memory a record.
 */
static unsigned fast_records(struct trace_reader *r, struct trace_record *out, unsigned max)
{
	const struct trace_guest *g = &r->h.guests[r->page_guest];
	const uint8_t *p = r->buf + r->pos;
	uint64_t next = r->page_next, pages = g->pages;
	uint32_t guest = r->page_guest;
	uint16_t node = g->node;
	unsigned n = 0;

	/* no bounds check a record: as many as would fit at the most bytes each */
	if (max > (r->len - r->pos) / RECORD_MAX)
		max = (r->len - r->pos) / RECORD_MAX;
	if (max > r->page_left - 1)
		max = r->page_left - 1;
	if (max > r->snap.records - r->snap_read)
		max = (unsigned)(r->snap.records - r->snap_read);
	for (; n < max; n++) {
		const uint8_t *q = decode_fast(p, next, pages, node, guest, &out[n]);

		if (!q)
			break;
		p = q;
		next = out[n].page + 1;
	}
	if (n) {
		r->pos = (size_t)(p - r->buf);
		r->last_page = next - 1;
		r->page_next = next;
		r->snap_read += n;
		r->total += n;
		r->page_left -= n;
	}
	return n;
}

int trace_reader_next_records(struct trace_reader *r, struct trace_record *out, unsigned max,
			      struct sp_err *err)
{
	int rc = trace_reader_next_record(r, out, err);

	/* page_left > 0: the record just read is not its chunk's last */
	if (rc <= 0 || max <= 1 || r->hll || r->page_left == 0)
		return rc;
	return 1 + (int)fast_records(r, out + 1, max - 1);
}

/* Version 2's SUMM chunk (the current one): what it says is what was read. */
static int check_summary(struct trace_reader *r, struct sp_err *err)
{
	const uint8_t *p = take(r, SUMM_PREFIX);

	if (r->summ_off)
		return corrupt(r, err, "a second SUMM chunk");
	if (!p || r->len != SUMM_PREFIX + (uint64_t)r->h.nguests || get_u32(p + 16) != r->h.nguests)
		return corrupt(r, err, "SUMM chunk has the wrong size");
	if (get_u64(p) != (r->snapshots ? r->last_time : 0))
		return corrupt(r, err, "SUMM's last snapshot time does not match the snapshots read");
	if (memcmp(r->buf + SUMM_PREFIX, r->wholes.complete, r->h.nguests) != 0)
		return corrupt(r, err, "SUMM's complete guests do not match the records read");
	if (r->hll && get_u64(p + 8) != trace_hll_count(r->hll))
		return corrupt(r, err, "SUMM's estimate of distinct contents does not match the records read");
	r->summ_off = r->chunk_off;
	return 0;
}

int trace_reader_next_snapshot(struct trace_reader *r, struct trace_snapshot *out,
			       struct sp_err *err)
{
	struct trace_record rec;
	const uint8_t *p;
	int rc;

	if (r->ended)
		return 0;
	while (r->in_snapshot) {
		rc = trace_reader_next_record(r, &rec, err);
		if (rc < 0)
			return rc;
	}
	if (!r->pending) {
		rc = read_chunk(r, err);
		if (rc < 0)
			return rc;
	}
	r->pending = false;
	if (r->type == CHUNK_SUMM) {
		rc = check_summary(r, err);
		if (rc == 0)
			rc = read_chunk(r, err);
		if (rc < 0)
			return rc;
		if (r->type != CHUNK_END)
			return corrupt(r, err, "a chunk other than END after SUMM");
	}
	if (r->type == CHUNK_END) {
		size_t len = r->version >= 2 ? END_PAYLOAD_V2 : END_PAYLOAD;
		uint8_t extra;

		p = take(r, len);
		if (!p || r->len != len)
			return corrupt(r, err, "END chunk has the wrong size");
		if (get_u32(p) != r->snapshots || get_u64(p + 4) != r->total)
			return corrupt(r, err, "END totals do not match the snapshots and records read");
		if (r->version >= 2 && !r->summ_off)
			return corrupt(r, err, "no SUMM chunk before END");
		if (r->version >= 2 && get_u64(p + 12) != r->summ_off)
			return corrupt(r, err, "END does not give the SUMM chunk's offset");
		if (fread(&extra, 1, 1, r->f) != 0)
			return sp_err_set(err, SP_ECORRUPT, "%s: offset %llu: bytes after the END chunk",
					  r->path, (unsigned long long)r->offset);
		r->ended = true;
		return 0;
	}
	if (r->type != CHUNK_SNAP)
		return corrupt(r, err, r->type == CHUNK_PAGE ? "PAGE chunk before any SNAP"
							     : "unexpected chunk where a SNAP was due");
	p = take(r, SNAP_PAYLOAD);
	if (!p || r->len != SNAP_PAYLOAD)
		return corrupt(r, err, "SNAP chunk has the wrong size");
	r->snap.index = get_u32(p);
	r->snap.time_ms = get_u64(p + 4);
	r->snap.records = get_u64(p + 12);
	if (r->snap.index != r->snapshots)
		return corrupt(r, err, "snapshot index out of sequence");
	if (r->snapshots > 0 && r->snap.time_ms <= r->last_time)
		return corrupt(r, err, "snapshot time does not increase");
	if (r->snap.records > trace_header_total_pages(&r->h))
		return sp_err_set(err, SP_ELIMIT, "%s: offset %llu: snapshot %u announces %llu records, more than the trace's pages",
				  r->path, (unsigned long long)r->chunk_off, r->snap.index,
				  (unsigned long long)r->snap.records);
	r->snapshots++;
	r->last_time = r->snap.time_ms;
	r->snap_read = 0;
	r->page_left = 0;
	r->have_last = false;
	r->in_snapshot = true;
	*out = r->snap;
	return 1;
}

void trace_reader_close(struct trace_reader *r)
{
	if (!r)
		return;
	if (r->f)
		fclose(r->f);
	trace_header_release(&r->h);
	free(r->buf);
	free(r->path);
	trace_wholes_free(&r->wholes);
	free(r->hll);
	free(r);
}

/* pread() of n bytes at off: 0, or -1 if they are not all there. */
static int pread_all(struct trace_reader *r, void *buf, size_t n, uint64_t off)
{
	return off > r->size || n > r->size - off ||
		       pread(fileno(r->f), buf, n, (off_t)off) != (ssize_t)n ? -1 : 0;
}

int trace_reader_summary(struct trace_reader *r, struct trace_summary *out, struct sp_err *err)
{
	uint8_t end[CHUNK_HDR + END_PAYLOAD_V2 + CHUNK_TRAILER], *summ = NULL;
	size_t slen = SUMM_PREFIX + (size_t)r->h.nguests, stotal = CHUNK_HDR + slen + CHUNK_TRAILER;
	uint64_t end_off, summ_off;
	int rc = 0;

	memset(out, 0, sizeof(*out));
	if (r->version < 2 || r->size < TRACE_MAGIC_LEN + 4 + sizeof(end) + stotal)
		return 0;
	end_off = r->size - sizeof(end);
	if (pread_all(r, end, sizeof(end), end_off) < 0 || get_u32(end) != CHUNK_END ||
	    get_u32(end + 4) != END_PAYLOAD_V2 ||
	    XXH64(end, CHUNK_HDR + END_PAYLOAD_V2, 0) != get_u64(end + CHUNK_HDR + END_PAYLOAD_V2))
		return 0;
	summ_off = get_u64(end + CHUNK_HDR + 12);
	if (summ_off + stotal != end_off) /* SUMM is right before END */
		return 0;
	summ = malloc(stotal);
	out->complete = malloc(r->h.nguests);
	if (!summ || !out->complete) {
		rc = sp_err_set(err, SP_ENOMEM, "%s: out of memory", r->path);
		goto out;
	}
	if (pread_all(r, summ, stotal, summ_off) < 0 || get_u32(summ) != CHUNK_SUMM ||
	    get_u32(summ + 4) != slen || XXH64(summ, CHUNK_HDR + slen, 0) != get_u64(summ + CHUNK_HDR + slen) ||
	    get_u32(summ + CHUNK_HDR + 16) != r->h.nguests)
		goto out;
	out->snapshots = get_u32(end + CHUNK_HDR);
	out->records = get_u64(end + CHUNK_HDR + 4);
	/*
	 * Only checked against the records at END (check_summary()), so used now
	 * only if it could be true: a record takes a byte at least, and a guest
	 * recorded completely had a record for each of its pages.  A corrupt
	 * header's page count under a complete flag would otherwise size the
	 * replay's memory for pages the file cannot hold.
	 */
	if (out->records > r->size)
		goto out;
	for (uint64_t g = 0, left = out->records; g < r->h.nguests; g++) {
		out->complete[g] = summ[CHUNK_HDR + SUMM_PREFIX + g];
		if (out->complete[g] > 1)
			goto out;
		if (out->complete[g] && r->h.guests[g].pages > left)
			goto out;
		left -= out->complete[g] ? r->h.guests[g].pages : 0;
	}
	out->last_ms = get_u64(summ + CHUNK_HDR);
	out->contents = get_u64(summ + CHUNK_HDR + 8);
	rc = 1;
out:
	free(summ);
	if (rc != 1) {
		free(out->complete);
		out->complete = NULL;
	}
	return rc;
}

int trace_check(const char *path, uint32_t *snapshots, uint64_t *records, struct sp_err *err)
{
	struct trace_reader *r;
	struct trace_snapshot s;
	uint64_t n = 0;
	uint32_t k = 0;
	int rc = trace_reader_open(&r, path, err);

	if (rc < 0)
		return rc;
	if (r->version >= 2) {
		/* the summary's estimate too (the reader checks the rest of it) */
		r->hll = calloc(TRACE_HLL_REGS, 1);
		if (!r->hll) {
			trace_reader_close(r);
			return sp_err_set(err, SP_ENOMEM, "%s: out of memory", path);
		}
	}
	while ((rc = trace_reader_next_snapshot(r, &s, err)) > 0) {
		k++;
		n += s.records;
	}
	trace_reader_close(r);
	if (rc == 0) {
		if (snapshots)
			*snapshots = k;
		if (records)
			*records = n;
	}
	return rc;
}

int trace_header_init(struct trace_header *h, uint32_t nguests, struct sp_err *err)
{
	memset(h, 0, sizeof(*h));
	h->guests = calloc(nguests ? nguests : 1, sizeof(*h->guests));
	if (!h->guests)
		return sp_err_set(err, SP_ENOMEM, "out of memory for %u guests", nguests);
	h->nguests = nguests;
	return 0;
}

void trace_header_release(struct trace_header *h)
{
	free(h->guests);
	h->guests = NULL;
	h->nguests = 0;
}

uint64_t trace_header_total_pages(const struct trace_header *h)
{
	uint64_t n = 0;

	for (uint32_t g = 0; g < h->nguests; g++)
		n += h->guests[g].pages;
	return n;
}
