/*
 * test_import_elf.c - the qemu-elf importer (traces/import_elf.c) on ELF
 * cores crafted here by a small writer (no QEMU needed): a valid core
 * imports with exactly its pages (guest-physical numbering, zero flags,
 * fingerprints, holes absent); several dumps become snapshots or guests;
 * malformed cores (bad magic, truncated header or data, overlapping
 * segments, absurd counts, not a core) are rejected with the file and
 * offset, exit 3 from `sim trace import`, and no output file.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "import_elf.h"
#include "pagehash.h"
#include "trace.h"

#define PG TRACE_ELF_PAGE

/* ---- a tiny ELF64 core writer ------------------------------------------- */

struct seg {
	uint64_t paddr;
	uint32_t pages;
	const int *content; /* per page: 0 = zero-filled, else a pattern */
};

enum { BREAK_NONE, BREAK_MAGIC, BREAK_CLASS, BREAK_TYPE, BREAK_XNUM_HUGE, BREAK_PHOFF };

static void put(uint8_t *p, uint64_t v, int n)
{
	for (int i = 0; i < n; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static void fill_page(uint8_t *p, int c)
{
	memset(p, 0, PG);
	if (c)
		for (int i = 0; i < PG; i += 8)
			put(p + i, (uint64_t)c * 0x9e3779b97f4a7c15ULL + (uint64_t)i, 8);
}

/* Writes a core with a PT_NOTE then one PT_LOAD per seg; returns its size. */
static size_t write_core(const char *path, const struct seg *s, int n, int brk)
{
	int nph = n + 1;
	size_t hdr = 64 + (size_t)nph * 56, data = 0, off;
	uint8_t *buf;
	FILE *f;

	for (int i = 0; i < n; i++)
		data += (size_t)s[i].pages * PG;
	buf = calloc(1, hdr + 64 + data);
	memcpy(buf, "\177ELF", 4);
	buf[4] = brk == BREAK_CLASS ? 1 : 2;
	buf[5] = 1;
	buf[6] = 1;
	put(buf + 16, brk == BREAK_TYPE ? 2 : 4, 2); /* ET_CORE */
	put(buf + 18, 62, 2);                         /* x86-64 */
	put(buf + 20, 1, 4);
	put(buf + 32, brk == BREAK_PHOFF ? (uint64_t)1 << 40 : 64, 8);
	put(buf + 52, 64, 2);
	put(buf + 54, 56, 2);
	put(buf + 56, brk == BREAK_XNUM_HUGE ? 0xffff : (uint64_t)nph, 2);
	if (brk == BREAK_XNUM_HUGE) { /* section header 0 after the data, sh_info = 2^30 */
		put(buf + 40, hdr + data, 8);
		put(buf + 58, 64, 2);
		put(buf + 60, 1, 2);
		put(buf + hdr + data + 44, 1u << 30, 4);
	}
	if (brk == BREAK_MAGIC)
		buf[1] = 'X';
	put(buf + 64, 4, 4); /* PT_NOTE, empty */
	off = hdr;
	for (int i = 0; i < n; i++) {
		uint8_t *ph = buf + 64 + (size_t)(i + 1) * 56;

		put(ph, 1, 4);
		put(ph + 8, off, 8);
		put(ph + 24, s[i].paddr, 8);
		put(ph + 32, (uint64_t)s[i].pages * PG, 8);
		put(ph + 40, (uint64_t)s[i].pages * PG, 8);
		for (uint32_t p = 0; p < s[i].pages; p++)
			fill_page(buf + off + (size_t)p * PG, s[i].content[p]);
		off += (size_t)s[i].pages * PG;
	}
	f = fopen(path, "wb");
	CU_ASSERT_PTR_NOT_NULL_FATAL(f);
	fwrite(buf, 1, hdr + data + (brk == BREAK_XNUM_HUGE ? 64 : 0), f);
	fclose(f);
	free(buf);
	return hdr + data;
}

static struct sp_fp fp_of(int c)
{
	static uint8_t page[PG];
	struct trace_hasher h;
	struct sp_err err = { 0 };
	bool zero;

	fill_page(page, c);
	trace_hasher_init(&h, false, &err);
	return trace_page_fp(&h, page, PG, &zero);
}

static const int lo[16] = { 1, 2, 1, 0, 0, 3, 3, 3, 4, 5, 6, 0, 1, 7, 8, 9 };
static const int hi[8] = { 1, 10, 11, 0, 12, 12, 13, 1 };

/* ---- valid cores ---------------------------------------------------------- */

SP_TEST(valid_core_imports_its_pages)
{
	char core[512], out[512];
	const struct seg segs[2] = { { 0x100000, 8, hi }, { 0, 16, lo } }; /* out of order on purpose */
	struct trace_import_input in = { core, "vm1" };
	struct trace_import_opts o = { .interval_ms = 1000, .unkeyed = true, .mode = 0600 };
	struct sp_err err = { 0 };
	struct trace_reader *r;
	const struct trace_header *h;
	struct trace_snapshot s;
	struct trace_record rec;
	int n = 0, rc;

	sp_test_path(core, sizeof(core), "vm1.core");
	sp_test_path(out, sizeof(out), "vm1.sptrace");
	write_core(core, segs, 2, BREAK_NONE);
	CU_ASSERT_EQUAL_FATAL(trace_import_qemu_elf(out, &in, 1, &o, &err), 0);
	CU_ASSERT_EQUAL_FATAL(trace_reader_open(&r, out, &err), 0);
	h = trace_reader_header(r);
	CU_ASSERT_EQUAL(h->nguests, 1);
	CU_ASSERT_STRING_EQUAL(h->guests[0].name, "vm1");
	CU_ASSERT_EQUAL(h->guests[0].pages, 256 + 8);
	CU_ASSERT_EQUAL(h->fp_algo, TRACE_FP_XXH3_128);
	CU_ASSERT_EQUAL(h->flags, 0);
	CU_ASSERT_EQUAL_FATAL(trace_reader_next_snapshot(r, &s, &err), 1);
	CU_ASSERT_EQUAL(s.records, 24);
	while ((rc = trace_reader_next_record(r, &rec, &err)) == 1) {
		int c = rec.page < 16 ? lo[rec.page] : rec.page >= 256 ? hi[rec.page - 256] : -1;

		CU_ASSERT_FATAL(c >= 0);
		CU_ASSERT(rec.flags & TRACE_PRESENT);
		CU_ASSERT_EQUAL(!!(rec.flags & TRACE_ZERO), c == 0);
		CU_ASSERT(sp_fp_eq(rec.fp, c ? fp_of(c) : (struct sp_fp){ 0, 0 }));
		n++;
	}
	CU_ASSERT_EQUAL(rc, 0);
	CU_ASSERT_EQUAL(n, 24);
	CU_ASSERT_EQUAL(trace_reader_next_snapshot(r, &s, &err), 0);
	trace_reader_close(r);
}

SP_TEST(several_dumps_snapshots_and_guests)
{
	char a0[512], a1[512], b0[512], out[512];
	static const int lo2[16] = { 1, 2, 1, 0, 0, 3, 3, 3, 4, 5, 6, 0, 1, 7, 8, 42 };
	const struct seg sa0[2] = { { 0, 16, lo }, { 0x100000, 8, hi } };
	const struct seg sa1[1] = { { 0, 16, lo2 } }; /* page 15 rewritten, high block gone */
	const struct seg sb0[1] = { { 0, 4, hi } };
	struct trace_import_input in[3] = { { a0, "a" }, { b0, "b" }, { a1, "a" } };
	struct trace_import_opts o = { .interval_ms = 500, .mode = 0600 };
	struct sp_err err = { 0 };
	struct trace_reader *r;
	const struct trace_header *h;
	struct trace_snapshot s;
	struct trace_record rec;
	int absent = 0, present = 0;

	write_core(sp_test_path(a0, sizeof(a0), "a0.core"), sa0, 2, BREAK_NONE);
	write_core(sp_test_path(a1, sizeof(a1), "a1.core"), sa1, 1, BREAK_NONE);
	write_core(sp_test_path(b0, sizeof(b0), "b0.core"), sb0, 1, BREAK_NONE);
	sp_test_path(out, sizeof(out), "ab.sptrace");
	CU_ASSERT_EQUAL_FATAL(trace_import_qemu_elf(out, in, 3, &o, &err), 0);
	CU_ASSERT_EQUAL_FATAL(trace_reader_open(&r, out, &err), 0);
	h = trace_reader_header(r);
	CU_ASSERT(h->flags & TRACE_F_KEYED);
	CU_ASSERT_EQUAL_FATAL(h->nguests, 2);
	CU_ASSERT_STRING_EQUAL(h->guests[0].name, "a");
	CU_ASSERT_STRING_EQUAL(h->guests[1].name, "b");
	CU_ASSERT_EQUAL(h->guests[0].pages, 264);
	CU_ASSERT_EQUAL(h->guests[1].pages, 4);
	CU_ASSERT_EQUAL_FATAL(trace_reader_next_snapshot(r, &s, &err), 1);
	CU_ASSERT_EQUAL(s.time_ms, 0);
	CU_ASSERT_EQUAL(s.records, 24 + 4);
	CU_ASSERT_EQUAL_FATAL(trace_reader_next_snapshot(r, &s, &err), 1);
	CU_ASSERT_EQUAL(s.time_ms, 500);
	CU_ASSERT_EQUAL(s.records, 1 + 8); /* page 15 changed, 8 high pages gone */
	while (trace_reader_next_record(r, &rec, &err) == 1) {
		CU_ASSERT_EQUAL(rec.guest, 0);
		if (rec.flags & TRACE_PRESENT) {
			CU_ASSERT_EQUAL(rec.page, 15);
			present++;
		} else {
			CU_ASSERT(rec.page >= 256 && rec.page < 264);
			absent++;
		}
	}
	CU_ASSERT_EQUAL(present, 1);
	CU_ASSERT_EQUAL(absent, 8);
	CU_ASSERT_EQUAL(trace_reader_next_snapshot(r, &s, &err), 0);
	trace_reader_close(r);
}

/* ---- malformed cores ------------------------------------------------------ */

static void expect_reject(const char *core, int code, const char *what)
{
	char out[512], cmd[2048], msg[1024] = "";
	struct trace_import_input in = { core, "g" };
	struct trace_import_opts o = { .interval_ms = 1000, .mode = 0600 };
	struct sp_err err = { 0 };
	FILE *p;
	int status, lines = 0;

	sp_test_path(out, sizeof(out), "bad.sptrace");
	CU_ASSERT_EQUAL(trace_import_qemu_elf(out, &in, 1, &o, &err), code);
	printf("%s: %s\n", what, err.msg);
	CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, core));
	CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "offset"));
	CU_ASSERT_EQUAL(access(out, F_OK), -1);
	/* The command: exit 3, one line on stderr, no file. */
	snprintf(cmd, sizeof(cmd), "'%s' trace import --format qemu-elf '%s' -o '%s' 2>&1", SP_SIM_PATH,
		 core, out);
	p = popen(cmd, "r");
	CU_ASSERT_PTR_NOT_NULL_FATAL(p);
	while (fgets(msg, sizeof(msg), p))
		lines++;
	status = pclose(p);
	CU_ASSERT(WIFEXITED(status) && WEXITSTATUS(status) == 3);
	CU_ASSERT_EQUAL(lines, 1);
	CU_ASSERT_EQUAL(access(out, F_OK), -1);
}

static const struct seg one[1] = { { 0, 16, lo } };

SP_TEST(bad_magic)
{
	char core[512];

	write_core(sp_test_path(core, sizeof(core), "magic.core"), one, 1, BREAK_MAGIC);
	expect_reject(core, SP_EMAGIC, "bad magic");
}

SP_TEST(truncated_header)
{
	char core[512];

	write_core(sp_test_path(core, sizeof(core), "short.core"), one, 1, BREAK_NONE);
	CU_ASSERT_EQUAL(truncate(core, 40), 0);
	expect_reject(core, SP_ETRUNC, "truncated header");
}

SP_TEST(truncated_data)
{
	char core[512];
	size_t size = write_core(sp_test_path(core, sizeof(core), "cut.core"), one, 1, BREAK_NONE);

	CU_ASSERT_EQUAL(truncate(core, (off_t)(size - 100)), 0);
	expect_reject(core, SP_ETRUNC, "segment beyond the file");
}

SP_TEST(program_headers_beyond_file)
{
	char core[512];

	write_core(sp_test_path(core, sizeof(core), "phoff.core"), one, 1, BREAK_PHOFF);
	expect_reject(core, SP_ETRUNC, "program headers beyond the file");
}

SP_TEST(overlapping_segments)
{
	char core[512];
	const struct seg segs[2] = { { 0, 16, lo }, { 8 * PG, 8, hi } };

	write_core(sp_test_path(core, sizeof(core), "overlap.core"), segs, 2, BREAK_NONE);
	expect_reject(core, SP_ECORRUPT, "overlapping segments");
}

SP_TEST(absurd_header_count)
{
	char core[512];

	write_core(sp_test_path(core, sizeof(core), "xnum.core"), one, 1, BREAK_XNUM_HUGE);
	expect_reject(core, SP_ELIMIT, "absurd program header count");
}

SP_TEST(not_a_core)
{
	char core[512];

	write_core(sp_test_path(core, sizeof(core), "exec.core"), one, 1, BREAK_TYPE);
	expect_reject(core, SP_ECORRUPT, "ET_EXEC");
	write_core(core, one, 1, BREAK_CLASS);
	expect_reject(core, SP_ECORRUPT, "ELF32");
}

/* ---- sparse guests (issue 10) ---------------------------------------------- */

static const int one_page[1] = { 5 };

/*
 * A 12 KB core with one page at guest-physical 512 GiB: the guest claims
 * 2^27 pages.  It imports to a one-record trace without a state per page of
 * the claim, and a ksm run of it takes no time and little memory.
 */
SP_TEST(sparse_core_costs_its_pages)
{
	const struct seg far[1] = { { 0x8000000000ull, 1, one_page } };
	char core[512], out[512], cmd[2048];
	struct trace_import_input in = { core, "g" };
	struct trace_import_opts o = { .interval_ms = 1000, .mode = 0600 };
	struct sp_err err = { 0 };
	struct trace_reader *r;
	uint32_t snaps;
	uint64_t records;
	time_t t0;
	int status;

	sp_test_path(core, sizeof(core), "sparse.core");
	sp_test_path(out, sizeof(out), "sparse.sptrace");
	write_core(core, far, 1, BREAK_NONE);
	CU_ASSERT_EQUAL_FATAL(trace_import_qemu_elf(out, &in, 1, &o, &err), 0);
	CU_ASSERT_EQUAL(trace_check(out, &snaps, &records, &err), 0);
	CU_ASSERT_EQUAL(records, 1);
	CU_ASSERT_EQUAL_FATAL(trace_reader_open(&r, out, &err), 0);
	CU_ASSERT_EQUAL(trace_reader_header(r)->guests[0].pages, (0x8000000000ull >> 12) + 1);
	trace_reader_close(r);
	t0 = time(NULL);
	snprintf(cmd, sizeof(cmd), "'%s' run --trace '%s' --algo ksm -q", SP_SIM_PATH, out);
	status = system(cmd);
	CU_ASSERT(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	CU_ASSERT(time(NULL) - t0 < 60);
	snprintf(cmd, sizeof(cmd), "'%s' trace info '%s' > /dev/null", SP_SIM_PATH, out);
	status = system(cmd);
	CU_ASSERT(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	/* the largest child: well under the 5 GB a state per claimed page took */
	{
		struct rusage ru;

		getrusage(RUSAGE_CHILDREN, &ru);
		CU_ASSERT(ru.ru_maxrss < 1024 * 1024);
	}
}

/* A page beyond 2^36 guest pages: exit 3 with the offset, not "out of memory". */
SP_TEST(page_beyond_the_limit_is_bad_input)
{
	const struct seg beyond[1] = { { 1ull << 48, 1, one_page } };
	char core[512];

	sp_test_path(core, sizeof(core), "beyond.core");
	write_core(core, beyond, 1, BREAK_NONE);
	expect_reject(core, SP_ELIMIT, "beyond 2^36 pages");
}
