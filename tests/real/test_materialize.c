/*
 * test_materialize.c - tests real/materialize.h: page bytes follow the
 * fingerprints (equal -> equal, different -> different), zero pages are
 * zero, absent pages read as zero, a later snapshot's write changes the
 * bytes, and the oracle count matches the trace.  No KSM needed: regions are
 * not made mergeable.
 */
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "materialize.h"
#include "tracebuild.h"

static bool all_zero(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (p[i])
			return false;
	}
	return true;
}

SP_TEST(fill_follows_fingerprint)
{
	static uint8_t a[4096], b[4096];
	struct sp_fp f = { 0x0123456789abcdefULL, 0xfedcba9876543210ULL };
	struct sp_fp g = f;

	real_fp_fill(a, sizeof(a), f);
	real_fp_fill(b, sizeof(b), f);
	CU_ASSERT_EQUAL(memcmp(a, b, sizeof(a)), 0);
	CU_ASSERT_FALSE(all_zero(a + 16, sizeof(a) - 16));

	/* one bit of lo, one bit of hi, and swapped words all give other bytes */
	g.lo ^= 1;
	real_fp_fill(b, sizeof(b), g);
	CU_ASSERT_NOT_EQUAL(memcmp(a, b, sizeof(a)), 0);
	CU_ASSERT_NOT_EQUAL(memcmp(a + 16, b + 16, sizeof(a) - 16), 0); /* not only the prefix */
	g = f;
	g.hi ^= 1ULL << 63;
	real_fp_fill(b, sizeof(b), g);
	CU_ASSERT_NOT_EQUAL(memcmp(a, b, sizeof(a)), 0);
	g.lo = f.hi;
	g.hi = f.lo;
	real_fp_fill(b, sizeof(b), g);
	CU_ASSERT_NOT_EQUAL(memcmp(a, b, sizeof(a)), 0);

	/* many other contents: none equals a, none is zero */
	for (uint64_t c = 1; c < 200; c++) {
		real_fp_fill(b, sizeof(b), tb_fp(c));
		CU_ASSERT_NOT_EQUAL(memcmp(a, b, sizeof(a)), 0);
		CU_ASSERT_FALSE(all_zero(b, sizeof(b)));
	}
}

static void build(const char *path)
{
	struct tb tb;

	tb_init(&tb, 2, 8);
	tb.h.guests[1].domain = 1;
	tb_open(&tb, path);
	tb_snap(&tb, 0);
	tb_page(&tb, 0, 0, 1);
	tb_page(&tb, 0, 1, 2);
	tb_page(&tb, 0, 2, 0); /* zero */
	tb_page(&tb, 0, 3, 1);
	/* guest 0 pages 4..7 absent */
	tb_page(&tb, 1, 0, 1);
	tb_page(&tb, 1, 1, 3);
	tb_page(&tb, 1, 2, 0);
	tb_snap(&tb, 1000);
	tb_page(&tb, 0, 0, 5); /* a write */
	tb_page(&tb, 0, 1, 2); /* unchanged content */
	tb_absent(&tb, 0, 3);  /* unmapped */
	tb_page(&tb, 1, 1, 0); /* zeroed */
	tb_commit(&tb);
}

SP_TEST(snapshots_materialise)
{
	char path[512];
	static uint8_t want[4096];
	struct trace_reader *r;
	struct trace_snapshot s;
	struct real_mat *m;
	struct metrics met;
	struct sp_err err = { 0 };
	uint64_t n;
	uint8_t *p;

	build(sp_test_path(path, sizeof(path), "mat.sptrace"));
	CU_ASSERT_EQUAL_FATAL(trace_reader_open(&r, path, &err), 0);
	CU_ASSERT_EQUAL_FATAL(real_mat_new(&m, trace_reader_header(r), 0, &err), 0);
	CU_ASSERT_EQUAL(real_mat_bytes(m), 2 * 8 * 4096);
	CU_ASSERT_PTR_NULL(real_mat_page(m, 2, 0));
	CU_ASSERT_PTR_NULL(real_mat_page(m, 0, 8));
	CU_ASSERT_EQUAL((uintptr_t)real_mat_page(m, 0, 0) % (2u << 20), 0);

	CU_ASSERT_EQUAL_FATAL(trace_reader_next_snapshot(r, &s, &err), 1);
	CU_ASSERT_EQUAL_FATAL(real_mat_snapshot(m, r, &n, NULL, &err), 0);
	CU_ASSERT_EQUAL(n, 7);
	/* equal fingerprints, equal bytes: across pages and across guests */
	CU_ASSERT_EQUAL(memcmp(real_mat_page(m, 0, 0), real_mat_page(m, 0, 3), 4096), 0);
	CU_ASSERT_EQUAL(memcmp(real_mat_page(m, 0, 0), real_mat_page(m, 1, 0), 4096), 0);
	real_fp_fill(want, sizeof(want), tb_fp(1));
	CU_ASSERT_EQUAL(memcmp(real_mat_page(m, 0, 0), want, 4096), 0);
	/* different fingerprints, different bytes */
	CU_ASSERT_NOT_EQUAL(memcmp(real_mat_page(m, 0, 0), real_mat_page(m, 0, 1), 4096), 0);
	CU_ASSERT_NOT_EQUAL(memcmp(real_mat_page(m, 0, 1), real_mat_page(m, 1, 1), 4096), 0);
	/* zero pages and absent pages read as zero */
	CU_ASSERT(all_zero(real_mat_page(m, 0, 2), 4096));
	CU_ASSERT(all_zero(real_mat_page(m, 1, 2), 4096));
	CU_ASSERT(all_zero(real_mat_page(m, 0, 5), 4096));
	/* oracle: content 1 in domain 0 twice (+1), in domain 1 once; two zero pages (+2) */
	memset(&met, 0, sizeof(met));
	real_mat_metrics(m, &met);
	CU_ASSERT_EQUAL(met.oracle_saving, 3);

	CU_ASSERT_EQUAL_FATAL(trace_reader_next_snapshot(r, &s, &err), 1);
	CU_ASSERT_EQUAL(s.time_ms, 1000);
	CU_ASSERT_EQUAL_FATAL(real_mat_snapshot(m, r, &n, NULL, &err), 0);
	CU_ASSERT_EQUAL(n, 4);
	p = real_mat_page(m, 0, 0);
	real_fp_fill(want, sizeof(want), tb_fp(5));
	CU_ASSERT_EQUAL(memcmp(p, want, 4096), 0); /* the write changed the bytes */
	CU_ASSERT_NOT_EQUAL(memcmp(p, real_mat_page(m, 1, 0), 4096), 0);
	real_fp_fill(want, sizeof(want), tb_fp(2));
	CU_ASSERT_EQUAL(memcmp(real_mat_page(m, 0, 1), want, 4096), 0);
	CU_ASSERT(all_zero(real_mat_page(m, 0, 3), 4096)); /* dropped */
	CU_ASSERT(all_zero(real_mat_page(m, 1, 1), 4096)); /* zeroed */
	/* oracle: no duplicate content left; three zero pages */
	real_mat_metrics(m, &met);
	CU_ASSERT_EQUAL(met.oracle_saving, 3);

	CU_ASSERT_EQUAL(trace_reader_next_snapshot(r, &s, &err), 0);
	real_mat_free(m);
	trace_reader_close(r);
	if (err.code)
		printf("%s\n", err.msg);
}

SP_TEST(apply_rejects_out_of_range)
{
	struct trace_header h = { 0 };
	struct real_mat *m;
	struct sp_err err = { 0 };
	struct trace_record rec = { .guest = 0, .page = 4, .flags = TRACE_PRESENT, .fp = { 1, 2 } };

	CU_ASSERT_EQUAL_FATAL(trace_header_init(&h, 1, &err), 0);
	h.page_size = 4096;
	h.guests[0].pages = 4;
	CU_ASSERT_EQUAL_FATAL(real_mat_new(&m, &h, 0, &err), 0);
	CU_ASSERT_EQUAL(real_mat_apply(m, &rec, &err), SP_EINVAL);
	rec.page = 3;
	rec.flags |= TRACE_HUGE; /* advises MADV_HUGEPAGE on the range, then writes */
	sp_err_clear(&err);
	CU_ASSERT_EQUAL(real_mat_apply(m, &rec, &err), 0);
	CU_ASSERT_EQUAL(memcmp(real_mat_page(m, 0, 3), &rec.fp, 16), 0);
	real_mat_free(m);
	trace_header_release(&h);

	/* pages smaller than the system's cannot be materialised */
	CU_ASSERT_EQUAL_FATAL(trace_header_init(&h, 1, &err), 0);
	h.page_size = 512;
	h.guests[0].pages = 4;
	sp_err_clear(&err);
	CU_ASSERT_EQUAL(real_mat_new(&m, &h, 0, &err), SP_ENOTSUP);
	trace_header_release(&h);
}
