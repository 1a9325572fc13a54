/*
 * materialize.c - implements real/materialize.h: a trace's guests as live
 * anonymous memory, page bytes derived from fingerprints.
 *
 * Structures.
 *   guests[g]  the guest's region: base (2 MiB aligned, above guest g-1's), pages, its security
 *              domain, the last applied state of each page (fingerprint and
 *              ST_* flags) and a bitmap of the 2 MiB ranges advised
 *              MADV_HUGEPAGE.
 *   truth      the multiset of present non-zero contents by (content, domain);
 *              truth_zero counts present zero pages (as sim/mem.c does).
 *
 * Invariants.
 *   - The bytes of page p of guest g are real_fp_fill(fp) when ST_PRESENT and
 *     not ST_ZERO, all zero when ST_ZERO, and not backed when not present.
 *   - A record that leaves a page's content unchanged writes nothing (a write
 *     would break a KSM merge the guest never broke).
 *   - real_fp_fill() is injective on fingerprints: bytes 0..15 are lo and hi.
 *
 * Performance: real_fp_fill() costs about one splitmix64 step per 8 bytes
 * (well under 1 us per 4 KiB page), far below the kernel's 2-3 us page fault.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "sp_util.h"
#include "fpcount.h"
#include "materialize.h"

#define HUGE_BYTES (2u << 20)
#define ST_PRESENT 0x1u
#define ST_ZERO 0x2u

struct mat_guest {
	uint8_t *base;
	uint64_t pages;
	uint64_t len;       /* pages x page_size */
	uint32_t domain;
	struct sp_fp *fp;   /* per page: last applied fingerprint */
	uint8_t *st;        /* per page: ST_* */
	uint8_t *huge;      /* bitmap of 2 MiB ranges advised MADV_HUGEPAGE */
};

struct real_mat {
	uint32_t page_size;
	uint32_t nguests;
	struct mat_guest *g;
	struct fpcount truth;
	int64_t truth_zero;
	uint64_t present;  /* present pages, all guests */
	bool mergeable;
};

void real_fp_fill(void *dst, size_t page_size, struct sp_fp fp)
{
	uint8_t *p = dst;
	uint64_t s = fp.lo ^ (fp.hi * 0xc2b2ae3d27d4eb4fULL) ^ 0x5851f42d4c957f2dULL;

	memcpy(p, &fp.lo, 8);
	memcpy(p + 8, &fp.hi, 8);
	for (size_t i = 16; i + 8 <= page_size; i += 8) {
		uint64_t w = sp_splitmix64(&s);

		memcpy(p + i, &w, 8);
	}
}

void real_mat_free(struct real_mat *m)
{
	if (!m)
		return;
	for (uint32_t i = 0; i < m->nguests && m->g; i++) {
		struct mat_guest *g = &m->g[i];

		if (g->base)
			munmap(g->base, g->len);
		free(g->fp);
		free(g->st);
		free(g->huge);
	}
	free(m->g);
	fpcount_release(&m->truth);
	free(m);
}

/* An anonymous region of len bytes starting on a 2 MiB boundary. */
static void *map_aligned(uint64_t len)
{
	size_t total = (size_t)len + HUGE_BYTES;
	uint8_t *raw = mmap(NULL, total, PROT_READ | PROT_WRITE,
			    MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	uint8_t *base;
	size_t head;

	if (raw == MAP_FAILED)
		return NULL;
	base = (uint8_t *)(((uintptr_t)raw + HUGE_BYTES - 1) & ~(uintptr_t)(HUGE_BYTES - 1));
	head = (size_t)(base - raw);
	if (head)
		munmap(raw, head);
	if (total - head - len)
		munmap(base + len, total - head - len);
	return base;
}

int real_mat_new(struct real_mat **out, const struct trace_header *h, unsigned flags,
		 struct sp_err *err)
{
	long sys_page = sysconf(_SC_PAGESIZE);
	struct real_mat *m;
	uint64_t span = 0; /* bytes of all guests, each rounded up to 2 MiB */
	uint8_t *all = NULL;
	int rc = 0;

	*out = NULL;
	if (sys_page <= 0 || h->page_size % (uint32_t)sys_page)
		return sp_err_set(err, SP_ENOTSUP,
				  "trace pages of %u bytes cannot be materialised on %ld-byte system pages",
				  h->page_size, sys_page);
	m = calloc(1, sizeof(*m));
	if (!m || !(m->g = calloc(h->nguests, sizeof(*m->g))) ||
	    fpcount_init(&m->truth, 1024) < 0) {
		real_mat_free(m);
		return sp_err_set(err, SP_ENOMEM, "out of memory");
	}
	m->page_size = h->page_size;
	m->nguests = h->nguests;
	m->mergeable = flags & REAL_MAT_MERGEABLE;
	for (uint32_t i = 0; i < h->nguests && rc == 0; i++) {
		struct mat_guest *g = &m->g[i];
		uint64_t ranges;

		g->pages = h->guests[i].pages;
		g->domain = h->guests[i].domain;
		g->len = g->pages * h->page_size;
		ranges = (g->len + HUGE_BYTES - 1) / HUGE_BYTES;
		if (g->len > SIZE_MAX / 4 || span > SIZE_MAX / 4)
			rc = sp_err_set(err, SP_ENOMEM, "guest %u: %llu bytes do not fit the address space",
					i, (unsigned long long)g->len);
		else if (!(g->fp = calloc(g->pages, sizeof(*g->fp))) ||
			 !(g->st = calloc(g->pages, 1)) || !(g->huge = calloc((ranges + 7) / 8, 1)))
			rc = sp_err_set(err, SP_ENOMEM, "out of memory for guest %u's page table", i);
		span += (g->len + HUGE_BYTES - 1) / HUGE_BYTES * HUGE_BYTES;
	}
	/*
	 * One reservation, the guests at ascending 2 MiB-aligned addresses in
	 * trace order: ksmd walks a process's areas by address, so it visits the
	 * pages in the order the models scan them (guest by guest).  The gaps
	 * up to each next 2 MiB boundary are given back.
	 */
	if (rc == 0 && h->nguests && !(all = map_aligned(span)))
		rc = sp_err_set(err, SP_ENOMEM, "cannot map %llu MiB for the guests: %s",
				(unsigned long long)(span >> 20), strerror(errno));
	for (uint32_t i = 0; i < h->nguests && all; i++) {
		struct mat_guest *g = &m->g[i];
		uint64_t room = (g->len + HUGE_BYTES - 1) / HUGE_BYTES * HUGE_BYTES;

		g->base = all;
		if (room > g->len)
			munmap(all + g->len, (size_t)(room - g->len));
		all += room;
	}
	for (uint32_t i = 0; i < h->nguests && rc == 0; i++) {
		if (madvise(m->g[i].base, m->g[i].len, MADV_NOHUGEPAGE) < 0 && errno != EINVAL)
			rc = sp_err_set(err, SP_EIO, "madvise(MADV_NOHUGEPAGE): %s", strerror(errno));
	}
	if (rc == 0 && m->mergeable)
		rc = real_mat_mergeable(m, true, err);
	if (rc < 0) {
		real_mat_free(m);
		return rc;
	}
	*out = m;
	return 0;
}

int real_mat_mergeable(struct real_mat *m, bool on, struct sp_err *err)
{
	for (uint32_t i = 0; i < m->nguests; i++) {
		if (madvise(m->g[i].base, m->g[i].len, on ? MADV_MERGEABLE : MADV_UNMERGEABLE) < 0) {
			int e = errno;

			if (e == EINVAL)
				return sp_err_set(err, SP_ENOTSUP,
						  "this kernel has no KSM (madvise MADV_MERGEABLE refused)");
			return sp_err_set(err, e == EAGAIN || e == ENOMEM ? SP_ENOMEM : SP_EIO,
					  "madvise(%s) on guest %u: %s",
					  on ? "MADV_MERGEABLE" : "MADV_UNMERGEABLE", i, strerror(e));
		}
	}
	m->mergeable = on;
	return 0;
}

void *real_mat_page(const struct real_mat *m, uint32_t guest, uint64_t page)
{
	if (guest >= m->nguests || page >= m->g[guest].pages)
		return NULL;
	return m->g[guest].base + page * m->page_size;
}

uint64_t real_mat_bytes(const struct real_mat *m)
{
	uint64_t n = 0;

	for (uint32_t i = 0; i < m->nguests; i++)
		n += m->g[i].len;
	return n;
}

static void truth_remove(struct real_mat *m, const struct mat_guest *g, uint64_t p)
{
	if (!(g->st[p] & ST_PRESENT))
		return;
	if (g->st[p] & ST_ZERO)
		m->truth_zero--;
	else
		fpcount_remove(&m->truth, g->fp[p], g->domain);
}

static int advise_huge(struct mat_guest *g, uint64_t offset, struct sp_err *err)
{
	uint64_t r = offset / HUGE_BYTES, start = r * HUGE_BYTES;
	uint64_t len = g->len - start < HUGE_BYTES ? g->len - start : HUGE_BYTES;

	if (g->huge[r / 8] & (1u << (r % 8)))
		return 0;
	g->huge[r / 8] |= (uint8_t)(1u << (r % 8));
	if (madvise(g->base + start, len, MADV_HUGEPAGE) < 0 && errno != EINVAL)
		return sp_err_set(err, SP_EIO, "madvise(MADV_HUGEPAGE): %s", strerror(errno));
	return 0; /* EINVAL: no transparent huge pages here; small pages will do */
}

int real_mat_apply(struct real_mat *m, const struct trace_record *rec, struct sp_err *err)
{
	struct mat_guest *g;
	uint8_t *addr, st;
	uint64_t p = rec->page;
	bool was;
	int rc;

	if (rec->guest >= m->nguests || p >= m->g[rec->guest].pages)
		return sp_err_set(err, SP_EINVAL, "record for guest %u page %llu is out of range",
				  rec->guest, (unsigned long long)p);
	g = &m->g[rec->guest];
	addr = g->base + p * m->page_size;
	was = (g->st[p] & ST_PRESENT) != 0;
	st = (uint8_t)(((rec->flags & TRACE_PRESENT) ? ST_PRESENT : 0) |
		       ((rec->flags & TRACE_ZERO) ? ST_ZERO : 0));
	if (st == g->st[p] && (!(st & ST_PRESENT) || sp_fp_eq(g->fp[p], rec->fp)))
		return 0; /* same content: write nothing */
	if ((rec->flags & TRACE_HUGE) && (rc = advise_huge(g, p * m->page_size, err)) < 0)
		return rc;
	truth_remove(m, g, p);
	if (!(st & ST_PRESENT)) {
		if (madvise(addr, m->page_size, MADV_DONTNEED) < 0)
			return sp_err_set(err, SP_EIO, "madvise(MADV_DONTNEED): %s", strerror(errno));
		g->fp[p] = (struct sp_fp){ 0, 0 };
	} else if (st & ST_ZERO) {
		memset(addr, 0, m->page_size);
		g->fp[p] = (struct sp_fp){ 0, 0 };
		m->truth_zero++;
	} else {
		real_fp_fill(addr, m->page_size, rec->fp);
		g->fp[p] = rec->fp;
		if (fpcount_add(&m->truth, rec->fp, g->domain) < 0) {
			g->st[p] = 0;
			m->present -= was;
			return sp_err_set(err, SP_ENOMEM, "out of memory counting contents");
		}
	}
	g->st[p] = st;
	m->present += (uint64_t)((st & ST_PRESENT) != 0) - (uint64_t)was;
	return 0;
}

bool real_mat_present(const struct real_mat *m, uint32_t guest, uint64_t page)
{
	return (m->g[guest].st[page] & ST_PRESENT) != 0;
}

uint64_t real_mat_present_pages(const struct real_mat *m)
{
	return m->present;
}

int real_mat_snapshot(struct real_mat *m, struct trace_reader *r, uint64_t *records,
		      const volatile sig_atomic_t *stop, struct sp_err *err)
{
	struct trace_record rec;
	uint64_t n = 0;
	int rc;

	while ((rc = trace_reader_next_record(r, &rec, err)) > 0) {
		if (stop && *stop) {
			rc = sp_err_set(err, SP_EIO, "interrupted");
			break;
		}
		rc = real_mat_apply(m, &rec, err);
		if (rc < 0)
			break;
		n++;
	}
	if (records)
		*records = n;
	return rc < 0 ? rc : 0;
}

void real_mat_metrics(const struct real_mat *m, struct metrics *out)
{
	out->oracle_saving = (int64_t)fpcount_duplicates(&m->truth) + m->truth_zero;
	out->pages_present = (int64_t)fpcount_total(&m->truth) + m->truth_zero;
}
