/*
 * import_elf.c - implements the "qemu-elf" importer of import_elf.h: ELF64
 * core files of guest memory into a samepage trace.
 *
 * The idea.  Every input is opened and validated first (header, program
 * header table, each PT_LOAD segment's file range, overlaps), which fixes the
 * guest table (a guest's page count is the highest page any of its dumps
 * covers, + 1).  Then snapshot by snapshot, guest by guest, the pages are
 * walked in guest-physical order: pages in a segment are read from the file
 * and fingerprinted, pages between segments are absent, and only pages whose
 * state differs from the guest's previous snapshot are written (the format's
 * deltas).  State kept: one small record per guest page.
 *
 * Invariants: nothing is written unless every input validated; a read error
 * later aborts the writer, so no partial output ever appears; error messages
 * name the file and byte offset.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "import_elf.h"
#include "pagehash.h"
#include "trace.h"

#define EHDR_SIZE 64
#define PHDR_SIZE 56
#define SHDR_SIZE 64
#define PT_LOAD 1
#define ET_CORE 4
#define PN_XNUM 0xffff
#define READ_PAGES 512

static uint16_t le16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }
static uint32_t le32(const uint8_t *p) { return (uint32_t)le16(p) | (uint32_t)le16(p + 2) << 16; }
static uint64_t le64(const uint8_t *p) { return (uint64_t)le32(p) | (uint64_t)le32(p + 4) << 32; }

static int read_at(struct trace_elf *e, void *buf, size_t len, uint64_t off, struct sp_err *err)
{
	size_t got = 0;

	while (got < len) {
		ssize_t r = pread(e->fd, (uint8_t *)buf + got, len - got, (off_t)(off + got));

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return sp_err_set(err, SP_EIO, "%s: offset %" PRIu64 ": read: %s", e->path,
					  off + got, strerror(errno));
		if (r == 0)
			return sp_err_set(err, SP_ETRUNC, "%s: offset %" PRIu64 ": file ends early",
					  e->path, off + got);
		got += (size_t)r;
	}
	return 0;
}

static int cmp_seg(const void *a, const void *b)
{
	const struct trace_elf_segment *x = a, *y = b;

	return x->paddr < y->paddr ? -1 : x->paddr > y->paddr;
}

void trace_elf_close(struct trace_elf *e)
{
	if (e->fd >= 0)
		close(e->fd);
	free(e->path);
	free(e->seg);
	memset(e, 0, sizeof(*e));
	e->fd = -1;
}

/* The ELF header of a little-endian ELF64 core: where the program headers are, and how many. */
static int read_elf_header(struct trace_elf *e, uint64_t *phoff, uint64_t *phnum, struct sp_err *err)
{
	uint8_t h[EHDR_SIZE];
	uint64_t shoff;
	int rc;

	if (e->size < EHDR_SIZE) {
		if (e->size >= 4 && (rc = read_at(e, h, 4, 0, err)) < 0)
			return rc;
		if (e->size >= 4 && memcmp(h, "\177ELF", 4) != 0)
			return sp_err_set(err, SP_EMAGIC, "%s: offset 0: not an ELF file", e->path);
		return sp_err_set(err, SP_ETRUNC, "%s: offset %" PRIu64 ": truncated ELF header (%" PRIu64
				  " of 64 bytes)", e->path, e->size, e->size);
	}
	rc = read_at(e, h, EHDR_SIZE, 0, err);
	if (rc < 0)
		return rc;
	if (memcmp(h, "\177ELF", 4) != 0)
		return sp_err_set(err, SP_EMAGIC, "%s: offset 0: not an ELF file (bad magic)", e->path);
	if (h[4] != 2)
		return sp_err_set(err, SP_ECORRUPT, "%s: offset 4: ELF class %u is not ELF64", e->path, h[4]);
	if (h[5] != 1)
		return sp_err_set(err, SP_ECORRUPT, "%s: offset 5: not little-endian (data encoding %u)",
				  e->path, h[5]);
	if (le16(h + 16) != ET_CORE)
		return sp_err_set(err, SP_ECORRUPT, "%s: offset 16: e_type %u is not a core file (ET_CORE)",
				  e->path, le16(h + 16));
	*phoff = le64(h + 32);
	shoff = le64(h + 40);
	*phnum = le16(h + 56);
	if (le16(h + 54) != PHDR_SIZE)
		return sp_err_set(err, SP_ECORRUPT, "%s: offset 54: program header size %u, not %d",
				  e->path, le16(h + 54), PHDR_SIZE);
	if (*phnum == PN_XNUM) {
		/* More than 65534 headers: the real count is section header 0's sh_info. */
		uint8_t sh[SHDR_SIZE];

		if (shoff > e->size || e->size - shoff < SHDR_SIZE)
			return sp_err_set(err, SP_ETRUNC, "%s: offset 40: section header 0 at %" PRIu64
					  " is beyond the end of the file (%" PRIu64 " bytes)",
					  e->path, shoff, e->size);
		rc = read_at(e, sh, SHDR_SIZE, shoff, err);
		if (rc < 0)
			return rc;
		*phnum = le32(sh + 44);
	}
	return 0;
}

/* Program header i (at offset at): 1 = a PT_LOAD segment with data in *s, 0 = none, or an error. */
static int read_segment(struct trace_elf *e, uint64_t at, uint64_t i, struct trace_elf_segment *s,
			struct sp_err *err)
{
	uint8_t ph[PHDR_SIZE];
	int rc = read_at(e, ph, PHDR_SIZE, at, err);

	if (rc < 0)
		return rc;
	if (le32(ph) != PT_LOAD)
		return 0;
	s->offset = le64(ph + 8);
	s->paddr = le64(ph + 24);
	s->filesz = le64(ph + 32);
	s->memsz = le64(ph + 40);
	if (s->filesz > s->memsz)
		return sp_err_set(err, SP_ECORRUPT, "%s: offset %" PRIu64 ": segment %" PRIu64
				  ": p_filesz %" PRIu64 " > p_memsz %" PRIu64,
				  e->path, at, i, s->filesz, s->memsz);
	if (s->offset > e->size || e->size - s->offset < s->filesz)
		return sp_err_set(err, SP_ETRUNC, "%s: offset %" PRIu64 ": segment %" PRIu64
				  ": data at offset %" PRIu64 " + %" PRIu64
				  " bytes extends beyond the end of the file (%" PRIu64 " bytes)",
				  e->path, at, i, s->offset, s->filesz, e->size);
	if (s->paddr + s->memsz < s->paddr ||
	    (s->paddr + s->filesz) / TRACE_ELF_PAGE > TRACE_MAX_GUEST_PAGES)
		return sp_err_set(err, SP_ELIMIT, "%s: offset %" PRIu64 ": segment %" PRIu64
				  ": guest-physical range 0x%" PRIx64 " + 0x%" PRIx64
				  " is beyond 2^36 pages", e->path, at, i, s->paddr, s->memsz);
	return s->filesz != 0;
}

/* The segments in guest-physical order, disjoint; the dump's data bytes and page count. */
static int check_segments(struct trace_elf *e, uint64_t phoff, struct sp_err *err)
{
	qsort(e->seg, e->nseg, sizeof(*e->seg), cmp_seg);
	for (uint32_t i = 0; i + 1 < e->nseg; i++) {
		if (e->seg[i].paddr + e->seg[i].memsz > e->seg[i + 1].paddr)
			return sp_err_set(err, SP_ECORRUPT, "%s: offset %" PRIu64 ": segments overlap at "
					  "guest-physical 0x%" PRIx64 " (file data at %" PRIu64 " and %" PRIu64 ")",
					  e->path, phoff, e->seg[i + 1].paddr, e->seg[i].offset,
					  e->seg[i + 1].offset);
	}
	for (uint32_t i = 0; i < e->nseg; i++) {
		uint64_t last = (e->seg[i].paddr + e->seg[i].filesz) / TRACE_ELF_PAGE;

		e->data_bytes += e->seg[i].filesz;
		if (last > e->pages)
			e->pages = last;
	}
	if (e->pages == 0)
		return sp_err_set(err, SP_ECORRUPT, "%s: offset %" PRIu64 ": no whole page in any segment",
				  e->path, phoff);
	return 0;
}

static int validate(struct trace_elf *e, struct sp_err *err)
{
	uint64_t phoff = 0, phnum = 0, nload = 0;
	int rc = read_elf_header(e, &phoff, &phnum, err);

	if (rc < 0)
		return rc;
	if (phnum == 0)
		return sp_err_set(err, SP_ECORRUPT, "%s: offset 56: no program headers: not a memory dump",
				  e->path);
	if (phnum > TRACE_ELF_MAX_PHDRS)
		return sp_err_set(err, SP_ELIMIT, "%s: offset 56: %" PRIu64 " program headers (at most %u)",
				  e->path, phnum, TRACE_ELF_MAX_PHDRS);
	if (phoff > e->size || (e->size - phoff) / PHDR_SIZE < phnum)
		return sp_err_set(err, SP_ETRUNC, "%s: offset 32: %" PRIu64 " program headers at offset %"
				  PRIu64 " extend beyond the end of the file (%" PRIu64 " bytes)",
				  e->path, phnum, phoff, e->size);
	e->seg = calloc(phnum, sizeof(*e->seg));
	if (!e->seg)
		return sp_err_set(err, SP_ENOMEM, "%s: out of memory", e->path);
	for (uint64_t i = 0; i < phnum; i++) {
		rc = read_segment(e, phoff + i * PHDR_SIZE, i, &e->seg[nload], err);
		if (rc < 0)
			return rc;
		nload += (uint64_t)rc;
	}
	if (nload == 0)
		return sp_err_set(err, SP_ECORRUPT, "%s: offset %" PRIu64 ": no PT_LOAD segment with data: "
				  "not a memory dump", e->path, phoff);
	e->nseg = (uint32_t)nload;
	return check_segments(e, phoff, err);
}

int trace_elf_open(struct trace_elf *e, const char *path, struct sp_err *err)
{
	struct stat st;
	int rc;

	memset(e, 0, sizeof(*e));
	e->fd = -1;
	e->path = strdup(path);
	if (!e->path)
		return sp_err_set(err, SP_ENOMEM, "out of memory");
	e->fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC); /* a FIFO: no wait */
	if (e->fd < 0 || fstat(e->fd, &st) < 0) {
		rc = sp_err_set(err, errno == EACCES ? SP_EPERM : SP_EIO, "%s: %s", path, strerror(errno));
		trace_elf_close(e);
		return rc;
	}
	if (!S_ISREG(st.st_mode)) {
		trace_elf_close(e);
		return sp_err_set(err, SP_EIO, "%s: not a regular file", path);
	}
	e->size = (uint64_t)st.st_size;
	rc = validate(e, err);
	if (rc < 0)
		trace_elf_close(e);
	return rc;
}

/* ---- the import --------------------------------------------------------- */

struct gstate {
	struct sp_fp fp;
	uint8_t flags;
};

/*
 * The pages of one guest that any of its dumps holds: sorted, disjoint
 * ranges [first, end) of page numbers, whose states are kept from index
 * base on.  Pages outside them are absent in every dump and are never
 * written, so a sparse guest (one page at guest-physical 512 GiB) costs
 * what its present pages cost, not what its highest page number says.
 */
struct prange {
	uint64_t first, end, base;
};

struct gmap {
	struct prange *r;
	uint32_t n;
	uint64_t total;
};

static int cmp_prange(const void *a, const void *b)
{
	const struct prange *x = a, *y = b;

	return x->first < y->first ? -1 : x->first > y->first;
}

/* Whole pages of segment s: [*first, *end). */
static void seg_pages(const struct trace_elf_segment *s, uint64_t *first, uint64_t *end)
{
	*first = (s->paddr + TRACE_ELF_PAGE - 1) / TRACE_ELF_PAGE;
	*end = (s->paddr + s->filesz) / TRACE_ELF_PAGE;
}

/* The union of the whole-page ranges of dumps[i] for every i with gidx[i] == g. */
static int gmap_build(struct gmap *m, const struct trace_elf *dumps, const uint32_t *gidx,
		      uint32_t ndumps, uint32_t g)
{
	uint32_t n = 0, o = 0;
	uint64_t base = 0;

	memset(m, 0, sizeof(*m));
	for (uint32_t i = 0; i < ndumps; i++)
		if (gidx[i] == g)
			n += dumps[i].nseg;
	m->r = calloc(n ? n : 1, sizeof(*m->r));
	if (!m->r)
		return SP_ENOMEM;
	for (uint32_t i = 0; i < ndumps; i++) {
		for (uint32_t k = 0; gidx[i] == g && k < dumps[i].nseg; k++) {
			seg_pages(&dumps[i].seg[k], &m->r[m->n].first, &m->r[m->n].end);
			if (m->r[m->n].end > m->r[m->n].first)
				m->n++;
		}
	}
	qsort(m->r, m->n, sizeof(*m->r), cmp_prange);
	for (uint32_t i = 0; i < m->n; i++) {
		if (o && m->r[i].first <= m->r[o - 1].end) {
			if (m->r[i].end > m->r[o - 1].end)
				m->r[o - 1].end = m->r[i].end;
		} else {
			m->r[o++] = m->r[i];
		}
	}
	m->n = o;
	for (uint32_t i = 0; i < m->n; i++) {
		m->r[i].base = base;
		base += m->r[i].end - m->r[i].first;
	}
	m->total = base;
	return 0;
}

struct importer {
	const struct trace_import_opts *o;
	struct trace_hasher hasher;
	struct trace_writer *w;
	uint8_t *buf;
	uint64_t done, total;
};

static int emit(struct importer *im, uint32_t guest, uint64_t page, struct gstate *prev,
		struct gstate now, struct sp_err *err)
{
	struct trace_record rec;

	if (prev->flags == now.flags && sp_fp_eq(prev->fp, now.fp))
		return 0;
	*prev = now;
	rec.guest = guest;
	rec.page = page;
	rec.flags = now.flags;
	rec.node = 0;
	rec.fp = now.fp;
	return trace_writer_record(im->w, &rec, err);
}

/*
 * Writes the records of guest g for dump e: every page of the guest's
 * ranges m, against its state prev[base + (page - first)]; a page of the
 * ranges that e does not hold is absent in e.
 */
static int import_dump(struct importer *im, uint32_t g, struct trace_elf *e, struct gstate *prev,
		       const struct gmap *m, struct sp_err *err)
{
	const struct gstate absent = { { 0, 0 }, 0 };
	uint32_t si = 0;
	int rc;

	for (uint32_t ri = 0; ri < m->n; ri++) {
		const struct prange *R = &m->r[ri];
		struct gstate *st = prev + R->base; /* st[p - first] for p in [first, end) */
		uint64_t p = R->first;

		while (p < R->end) {
			uint64_t first = UINT64_MAX, end = UINT64_MAX, stop;

			/* the first segment of e not wholly before p */
			while (si < e->nseg) {
				seg_pages(&e->seg[si], &first, &end);
				if (end > p && end > first)
					break;
				si++;
				first = end = UINT64_MAX;
			}
			if (p < first) { /* absent up to the segment or the range's end */
				stop = first < R->end ? first : R->end;
				for (; p < stop; p++) {
					rc = emit(im, g, p, &st[p - R->first], absent, err);
					if (rc < 0)
						return rc;
				}
				continue;
			}
			stop = end < R->end ? end : R->end;
			while (p < stop) {
				const struct trace_elf_segment *s = &e->seg[si];
				uint64_t n = stop - p < READ_PAGES ? stop - p : READ_PAGES;

				rc = read_at(e, im->buf, n * TRACE_ELF_PAGE,
					     s->offset + (p * TRACE_ELF_PAGE - s->paddr), err);
				if (rc < 0)
					return rc;
				for (uint64_t k = 0; k < n; k++) {
					struct gstate now;
					bool zero;

					now.fp = trace_page_fp(&im->hasher, im->buf + k * TRACE_ELF_PAGE,
							       TRACE_ELF_PAGE, &zero);
					now.flags = TRACE_PRESENT | (zero ? TRACE_ZERO : 0);
					rc = emit(im, g, p + k, &st[p + k - R->first], now, err);
					if (rc < 0)
						return rc;
				}
				p += n;
				im->done += n * TRACE_ELF_PAGE;
				if (im->o->progress)
					im->o->progress(im->o->arg, im->done, im->total);
			}
		}
	}
	return 0;
}

/* The dumps of one import, grouped by guest, with each guest's page states and ranges. */
struct import_plan {
	uint32_t n;              /* dumps */
	struct trace_elf *dumps;
	uint32_t *gidx, *nth;    /* dump i: its guest, and its rank among the guest's dumps (snapshot) */
	const char **names;      /* guest names in order of first appearance */
	uint32_t nguests, nsnap;
	struct gstate **prev;    /* per guest: the state of every page of its ranges */
	struct gmap *maps;       /* per guest: the page ranges some dump holds */
};

static int plan_alloc(struct import_plan *pl, uint32_t n, struct sp_err *err)
{
	pl->n = n;
	pl->dumps = calloc(n, sizeof(*pl->dumps));
	pl->gidx = calloc(n, sizeof(*pl->gidx));
	pl->nth = calloc(n, sizeof(*pl->nth));
	pl->names = calloc(n, sizeof(*pl->names));
	if (!pl->dumps || !pl->gidx || !pl->nth || !pl->names)
		return sp_err_set(err, SP_ENOMEM, "out of memory");
	for (uint32_t i = 0; i < n; i++)
		pl->dumps[i].fd = -1;
	return 0;
}

static void plan_free(struct import_plan *pl)
{
	for (uint32_t g = 0; pl->prev && g < pl->nguests; g++)
		free(pl->prev[g]);
	free(pl->prev);
	for (uint32_t g = 0; pl->maps && g < pl->nguests; g++)
		free(pl->maps[g].r);
	free(pl->maps);
	for (uint32_t i = 0; pl->dumps && i < pl->n; i++) {
		if (pl->dumps[i].path)
			trace_elf_close(&pl->dumps[i]);
	}
	free(pl->dumps);
	free(pl->gidx);
	free(pl->nth);
	free(pl->names);
}

/* Guests in order of first appearance; snapshot index = rank among the guest's dumps. */
static int plan_guests(struct import_plan *pl, const struct trace_import_input *in, struct sp_err *err)
{
	for (uint32_t i = 0; i < pl->n; i++) {
		uint32_t g;

		if (!in[i].path || !in[i].guest)
			return sp_err_set(err, SP_EINVAL, "dump %u: no path or guest name", i);
		for (g = 0; g < pl->nguests && strcmp(pl->names[g], in[i].guest); g++)
			;
		if (g == pl->nguests) {
			size_t len = strlen(in[i].guest);

			if (len < 1 || len > 255)
				return sp_err_set(err, SP_EINVAL, "guest name '%s' must be 1..255 bytes",
						  in[i].guest);
			pl->names[pl->nguests++] = in[i].guest;
		}
		pl->gidx[i] = g;
		pl->nth[i] = 0;
		for (uint32_t j = 0; j < i; j++)
			pl->nth[i] += pl->gidx[j] == g;
		if (pl->nth[i] + 1 > pl->nsnap)
			pl->nsnap = pl->nth[i] + 1;
	}
	if (pl->nguests > TRACE_MAX_GUESTS)
		return sp_err_set(err, SP_EINVAL, "%u guests (at most %d)", pl->nguests, TRACE_MAX_GUESTS);
	return 0;
}

/* Every dump opened and validated: the header's guests and page counts, the bytes to read. */
static int plan_open(struct import_plan *pl, const struct trace_import_input *in,
		     const struct trace_import_opts *o, struct trace_header *h, uint64_t *total,
		     struct sp_err *err)
{
	int rc = trace_header_init(h, pl->nguests, err);

	for (uint32_t i = 0; rc == 0 && i < pl->n; i++) {
		rc = trace_elf_open(&pl->dumps[i], in[i].path, err);
		if (rc == 0) {
			struct trace_guest *gu = &h->guests[pl->gidx[i]];

			if (pl->dumps[i].pages > gu->pages)
				gu->pages = pl->dumps[i].pages;
			*total += pl->dumps[i].data_bytes;
		}
	}
	if (rc < 0)
		return rc;
	h->page_size = TRACE_ELF_PAGE;
	h->fp_algo = TRACE_FP_XXH3_128;
	h->flags = o->unkeyed ? 0 : TRACE_F_KEYED;
	snprintf(h->desc, sizeof(h->desc),
		 "imported by sim trace import --format qemu-elf: %u dumps, %u guests, interval %" PRIu64
		 " ms, %s; page = guest-physical frame",
		 pl->n, pl->nguests, o->interval_ms, o->unkeyed ? "unkeyed" : "keyed");
	return 0;
}

/* Each guest's name, page ranges and page states. */
static int plan_states(struct import_plan *pl, struct trace_header *h, struct sp_err *err)
{
	pl->prev = calloc(pl->nguests, sizeof(*pl->prev));
	pl->maps = calloc(pl->nguests, sizeof(*pl->maps));
	if (!pl->prev || !pl->maps)
		return sp_err_set(err, SP_ENOMEM, "out of memory");
	for (uint32_t g = 0; g < pl->nguests; g++) {
		struct gmap *m = &pl->maps[g];

		snprintf(h->guests[g].name, sizeof(h->guests[g].name), "%s", pl->names[g]);
		/* states of the pages some dump holds: bounded by the dumps' sizes */
		if (gmap_build(m, pl->dumps, pl->gidx, pl->n, g) < 0 ||
		    !(pl->prev[g] = calloc(m->total ? m->total : 1, sizeof(**pl->prev))))
			return sp_err_set(err, SP_ENOMEM, "out of memory for guest %s (%" PRIu64 " pages)",
					  pl->names[g], m->total);
	}
	return 0;
}

/* Snapshot k holds every guest's k-th dump, guest by guest. */
static int import_snapshots(struct importer *im, struct import_plan *pl, struct sp_err *err)
{
	int rc = 0;

	for (uint32_t k = 0; rc == 0 && k < pl->nsnap; k++) {
		rc = trace_writer_begin_snapshot(im->w, k * im->o->interval_ms, err);
		for (uint32_t g = 0; rc == 0 && g < pl->nguests; g++) {
			for (uint32_t i = 0; rc == 0 && i < pl->n; i++) {
				if (pl->gidx[i] == g && pl->nth[i] == k)
					rc = import_dump(im, g, &pl->dumps[i], pl->prev[g], &pl->maps[g],
							 err);
			}
		}
	}
	return rc;
}

int trace_import_qemu_elf(const char *out_path, const struct trace_import_input *in, uint32_t n,
			  const struct trace_import_opts *o, struct sp_err *err)
{
	struct importer im = { .o = o };
	struct import_plan pl = { 0 };
	struct trace_header h = { 0 };
	int rc;

	if (n < 1)
		return sp_err_set(err, SP_EINVAL, "no dump to import");
	if (o->interval_ms < 1)
		return sp_err_set(err, SP_EINVAL, "--interval-ms must be at least 1");
	rc = plan_alloc(&pl, n, err);
	if (rc == 0)
		rc = plan_guests(&pl, in, err);
	if (rc == 0)
		rc = plan_open(&pl, in, o, &h, &im.total, err);
	if (rc == 0)
		rc = plan_states(&pl, &h, err);
	if (rc == 0 && !(im.buf = aligned_alloc(4096, READ_PAGES * TRACE_ELF_PAGE)))
		rc = sp_err_set(err, SP_ENOMEM, "out of memory");
	if (rc == 0)
		rc = trace_hasher_init(&im.hasher, !o->unkeyed, err);
	if (rc == 0)
		rc = trace_writer_open(&im.w, out_path, &h, o->mode, err);
	if (rc == 0)
		rc = import_snapshots(&im, &pl, err);
	if (rc == 0) {
		rc = trace_writer_commit(im.w, err);
		im.w = NULL;
	}
	if (im.w)
		trace_writer_abort(im.w);
	trace_hasher_release(&im.hasher);
	plan_free(&pl);
	free(im.buf);
	trace_header_release(&h);
	return rc;
}
