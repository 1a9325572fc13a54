/*
 * test_format.c - trace format round trips and writer guarantees
 * (traces/FORMAT.md): what is written is read back exactly; the writer
 * refuses what the format forbids; an aborted write leaves nothing behind.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "harness.h"
#include "tracebuild.h"

struct expect {
	uint32_t guest;
	uint64_t page;
	uint8_t flags;
	uint16_t node;
	uint64_t content;
};

static void read_snapshot(struct trace_reader *r, uint64_t time_ms, const struct expect *e, size_t n)
{
	struct trace_snapshot s;
	struct trace_record rec;
	struct sp_err err = { 0 };
	size_t i = 0;
	int rc;

	CU_ASSERT_EQUAL_FATAL(trace_reader_next_snapshot(r, &s, &err), 1);
	CU_ASSERT_EQUAL(s.time_ms, time_ms);
	CU_ASSERT_EQUAL(s.records, n);
	while ((rc = trace_reader_next_record(r, &rec, &err)) == 1) {
		CU_ASSERT_FATAL(i < n);
		CU_ASSERT_EQUAL(rec.guest, e[i].guest);
		CU_ASSERT_EQUAL(rec.page, e[i].page);
		CU_ASSERT_EQUAL(rec.flags & (TRACE_PRESENT | TRACE_ZERO | TRACE_HUGE),
				e[i].flags & (TRACE_PRESENT | TRACE_ZERO | TRACE_HUGE));
		CU_ASSERT_EQUAL(rec.node, e[i].node);
		CU_ASSERT(sp_fp_eq(rec.fp, (e[i].flags & TRACE_PRESENT) ? tb_fp(e[i].content)
									: (struct sp_fp){ 0, 0 }));
		i++;
	}
	CU_ASSERT_EQUAL(rc, 0);
	CU_ASSERT_EQUAL(i, n);
}

SP_TEST(round_trip)
{
	char path[512];
	struct tb tb;
	struct trace_reader *r;
	struct sp_err err = { 0 };
	struct trace_snapshot s;
	const struct trace_header *h;
	static const struct expect s0[] = {
		{ 0, 0, TRACE_PRESENT, 0, 7 },
		{ 0, 1, TRACE_PRESENT | TRACE_ZERO, 0, 0 },
		{ 0, 9, TRACE_PRESENT | TRACE_HUGE, 0, 7 },
		{ 1, 3, TRACE_PRESENT, 1, 42 },
		{ 1, 4, TRACE_PRESENT, 5, 43 }, /* explicit node differs from the guest's */
	};
	static const struct expect s1[] = {
		{ 0, 1, TRACE_PRESENT, 0, 8 },
		{ 1, 3, 0, 1, 0 }, /* gone */
	};

	sp_test_path(path, sizeof(path), "rt.sptrace");
	tb_init(&tb, 2, 10);
	tb.h.guests[1].node = 1;
	tb.h.guests[1].domain = 3;
	snprintf(tb.h.guests[1].name, sizeof(tb.h.guests[1].name), "web,server \"two\"");
	tb.h.flags = TRACE_F_KEYED;
	tb_open(&tb, path);
	tb_snap(&tb, 0);
	tb_page(&tb, 0, 0, 7);
	tb_page(&tb, 0, 1, 0);
	tb_page_ex(&tb, 0, 9, 7, 1, -1);
	tb_page(&tb, 1, 3, 42);
	tb_page_ex(&tb, 1, 4, 43, 0, 5);
	tb_snap(&tb, 1500);
	tb_page(&tb, 0, 1, 8);
	tb_absent(&tb, 1, 3);
	tb_snap(&tb, 4000); /* an empty snapshot */
	tb_commit(&tb);

	CU_ASSERT_EQUAL_FATAL(trace_reader_open(&r, path, &err), 0);
	h = trace_reader_header(r);
	CU_ASSERT_EQUAL(h->page_size, 4096);
	CU_ASSERT_EQUAL(h->nguests, 2);
	CU_ASSERT_EQUAL(h->flags, TRACE_F_KEYED);
	CU_ASSERT_EQUAL(h->fp_algo, TRACE_FP_SYNTHETIC);
	CU_ASSERT_STRING_EQUAL(h->desc, "hand-built test trace");
	CU_ASSERT_STRING_EQUAL(h->guests[1].name, "web,server \"two\"");
	CU_ASSERT_EQUAL(h->guests[1].node, 1);
	CU_ASSERT_EQUAL(h->guests[1].domain, 3);
	CU_ASSERT_EQUAL(h->guests[0].pages, 10);
	read_snapshot(r, 0, s0, 5);
	read_snapshot(r, 1500, s1, 2);
	read_snapshot(r, 4000, NULL, 0);
	CU_ASSERT_EQUAL(trace_reader_next_snapshot(r, &s, &err), 0);
	CU_ASSERT_EQUAL(trace_reader_next_snapshot(r, &s, &err), 0); /* stays at the end */
	trace_reader_close(r);
}

SP_TEST(skipping_records_still_checks_them)
{
	char path[512];
	struct tb tb;
	struct trace_reader *r;
	struct sp_err err = { 0 };
	struct trace_snapshot s;
	int n = 0;

	sp_test_path(path, sizeof(path), "skip.sptrace");
	tb_init(&tb, 1, 100);
	tb_open(&tb, path);
	for (int k = 0; k < 5; k++) {
		tb_snap(&tb, (uint64_t)k * 10);
		for (int p = k; p < 100; p += 7)
			tb_page(&tb, 0, (uint64_t)p, (uint64_t)(k + 1));
	}
	tb_commit(&tb);
	CU_ASSERT_EQUAL_FATAL(trace_reader_open(&r, path, &err), 0);
	while (trace_reader_next_snapshot(r, &s, &err) == 1)
		n++; /* records left unread are read and checked by the next call */
	CU_ASSERT_EQUAL(n, 5);
	CU_ASSERT_EQUAL(err.code, 0);
	trace_reader_close(r);
}

SP_TEST(many_chunks_round_trip)
{
	/* 200k records with fingerprints: several PAGE chunks of < 1 MiB each. */
	const uint64_t pages = 200000;
	char path[512];
	struct tb tb;
	struct trace_reader *r;
	struct trace_snapshot s;
	struct trace_record rec;
	struct sp_err err = { 0 };
	uint64_t i = 0, bad = 0;
	struct stat sb;

	sp_test_path(path, sizeof(path), "big.sptrace");
	tb_init(&tb, 1, pages);
	tb_open(&tb, path);
	tb_snap(&tb, 0);
	for (uint64_t p = 0; p < pages; p++)
		tb_page(&tb, 0, p, p % 3 == 0 ? 0 : p + 1);
	tb_commit(&tb);
	CU_ASSERT_EQUAL_FATAL(stat(path, &sb), 0);
	CU_ASSERT(sb.st_size > 2 * (1 << 20)); /* more than two chunks' worth */
	CU_ASSERT_EQUAL_FATAL(trace_reader_open(&r, path, &err), 0);
	CU_ASSERT_EQUAL_FATAL(trace_reader_next_snapshot(r, &s, &err), 1);
	while (trace_reader_next_record(r, &rec, &err) == 1) {
		if (rec.page != i || !sp_fp_eq(rec.fp, tb_fp(i % 3 == 0 ? 0 : i + 1)) ||
		    ((rec.flags & TRACE_ZERO) != 0) != (i % 3 == 0))
			bad++;
		i++;
	}
	CU_ASSERT_EQUAL(err.code, 0);
	CU_ASSERT_EQUAL(i, pages);
	CU_ASSERT_EQUAL(bad, 0);
	CU_ASSERT_EQUAL(trace_reader_next_snapshot(r, &s, &err), 0);
	trace_reader_close(r);
}

SP_TEST(writer_refuses_what_the_format_forbids)
{
	char path[512];
	struct tb tb;
	struct trace_record rec = { .guest = 0, .page = 5, .flags = TRACE_PRESENT, .fp = { 1, 2 } };
	struct sp_err err = { 0 };

	sp_test_path(path, sizeof(path), "refuse.sptrace");
	tb_init(&tb, 1, 10);
	tb_open(&tb, path);
	CU_ASSERT_EQUAL(trace_writer_record(tb.w, &rec, &err), SP_EINVAL); /* before any snapshot */
	tb_snap(&tb, 100);
	CU_ASSERT_EQUAL(trace_writer_record(tb.w, &rec, &err), 0);
	sp_err_clear(&err);
	CU_ASSERT_EQUAL(trace_writer_record(tb.w, &rec, &err), SP_EINVAL); /* same page again */
	rec.page = 3;
	sp_err_clear(&err);
	CU_ASSERT_EQUAL(trace_writer_record(tb.w, &rec, &err), SP_EINVAL); /* out of order */
	rec.page = 10;
	sp_err_clear(&err);
	CU_ASSERT_EQUAL(trace_writer_record(tb.w, &rec, &err), SP_EINVAL); /* beyond the guest */
	sp_err_clear(&err);
	CU_ASSERT_EQUAL(trace_writer_begin_snapshot(tb.w, 100, &err), SP_EINVAL); /* time must grow */
	CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "100 ms"));
	trace_writer_abort(tb.w);
	trace_header_release(&tb.h);
	CU_ASSERT_NOT_EQUAL(access(path, F_OK), 0);
}

SP_TEST(abort_leaves_existing_file_untouched)
{
	char path[512], cmd[1100];
	struct tb tb;
	FILE *f;
	char buf[32] = { 0 };

	sp_test_path(path, sizeof(path), "keep.sptrace");
	f = fopen(path, "w");
	CU_ASSERT_PTR_NOT_NULL_FATAL(f);
	fputs("precious", f);
	fclose(f);
	tb_init(&tb, 1, 10);
	tb_open(&tb, path);
	tb_snap(&tb, 0);
	tb_page(&tb, 0, 1, 1);
	trace_writer_abort(tb.w);
	trace_header_release(&tb.h);
	f = fopen(path, "r");
	CU_ASSERT_PTR_NOT_NULL_FATAL(f);
	CU_ASSERT_PTR_NOT_NULL(fgets(buf, sizeof(buf), f));
	fclose(f);
	CU_ASSERT_STRING_EQUAL(buf, "precious");
	/* and no temporary file is left beside it */
	snprintf(cmd, sizeof(cmd), "ls '%s' | grep -c tmp- > /dev/null", sp_test_tmpdir());
	CU_ASSERT_NOT_EQUAL(system(cmd), 0);
}

SP_TEST(header_limits_checked_by_writer)
{
	char path[512];
	struct tb tb;
	struct trace_writer *w = NULL;
	struct sp_err err = { 0 };

	sp_test_path(path, sizeof(path), "limits.sptrace");
	tb_init(&tb, 1, 10);
	tb.h.page_size = 3000;
	CU_ASSERT_EQUAL(trace_writer_open(&w, path, &tb.h, 0644, &err), SP_EINVAL);
	tb.h.page_size = 4096;
	tb.h.guests[0].pages = 0;
	sp_err_clear(&err);
	CU_ASSERT_EQUAL(trace_writer_open(&w, path, &tb.h, 0644, &err), SP_EINVAL);
	tb.h.guests[0].pages = 10;
	tb.h.guests[0].name[0] = '\0';
	sp_err_clear(&err);
	CU_ASSERT_EQUAL(trace_writer_open(&w, path, &tb.h, 0644, &err), SP_EINVAL);
	CU_ASSERT_PTR_NULL(w);
	trace_header_release(&tb.h);
	CU_ASSERT_NOT_EQUAL(access(path, F_OK), 0);
}

SP_TEST(file_mode_is_honoured)
{
	char path[512];
	struct tb tb;
	struct trace_writer *w;
	struct sp_err err = { 0 };
	struct stat sb;

	sp_test_path(path, sizeof(path), "private.sptrace");
	tb_init(&tb, 1, 10);
	CU_ASSERT_EQUAL_FATAL(trace_writer_open(&w, path, &tb.h, 0600, &err), 0);
	CU_ASSERT_EQUAL(trace_writer_begin_snapshot(w, 0, &err), 0);
	CU_ASSERT_EQUAL(trace_writer_commit(w, &err), 0);
	trace_header_release(&tb.h);
	CU_ASSERT_EQUAL_FATAL(stat(path, &sb), 0);
	CU_ASSERT_EQUAL(sb.st_mode & 0777, 0600);
}
