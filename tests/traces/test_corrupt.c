/*
 * test_corrupt.c - every corruption class of traces/FORMAT.md gives its
 * documented error, with the byte offset in the message, and never a crash:
 * truncation at every length, a flipped byte at every offset, wrong magic,
 * wrong version, absurd counts and sizes (with valid checksums, so the
 * range checks themselves are exercised), bytes after END.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "harness.h"
#include "sim.h"
#include "tracebuild.h"

static void spill(const char *path, const uint8_t *buf, size_t len)
{
	FILE *f = fopen(path, "wb");

	CU_ASSERT_PTR_NOT_NULL_FATAL(f);
	CU_ASSERT_EQUAL(fwrite(buf, 1, len, f), len);
	fclose(f);
}

/* A small trace of several chunks of every type. */
static void make_sample(const char *path)
{
	struct tb tb;

	tb_init(&tb, 2, 64);
	tb.h.guests[1].node = 1;
	tb_open(&tb, path);
	tb_snap(&tb, 0);
	for (int g = 0; g < 2; g++)
		for (int p = 0; p < 64; p++)
			tb_page_ex(&tb, (uint32_t)g, (uint64_t)p, (uint64_t)(p % 5), p < 8, p == 9 ? 3 : -1);
	tb_snap(&tb, 1000);
	tb_page(&tb, 0, 3, 99);
	tb_absent(&tb, 1, 60);
	tb_snap(&tb, 2000);
	tb_commit(&tb);
}

static int check_buf(const uint8_t *buf, size_t len, struct sp_err *err)
{
	char path[512];

	sp_test_path(path, sizeof(path), "corrupt.sptrace");
	spill(path, buf, len);
	sp_err_clear(err);
	return trace_check(path, NULL, NULL, err);
}

SP_TEST(sample_is_sound)
{
	char path[512];
	struct sp_err err = { 0 };
	uint32_t snaps = 0;
	uint64_t records = 0;

	sp_test_path(path, sizeof(path), "sample.sptrace");
	make_sample(path);
	CU_ASSERT_EQUAL(trace_check(path, &snaps, &records, &err), 0);
	CU_ASSERT_EQUAL(snaps, 3);
	CU_ASSERT_EQUAL(records, 130);
}

SP_TEST(truncation_at_every_length)
{
	char path[512];
	struct sp_err err;
	size_t len, bad = 0;
	uint8_t *buf;

	sp_test_path(path, sizeof(path), "sample.sptrace");
	make_sample(path);
	buf = tb_slurp(path, &len);
	for (size_t n = 0; n < len; n++) {
		int rc = check_buf(buf, n, &err);
		int want = n == 0 ? SP_EMAGIC : SP_ETRUNC;

		if (rc != want || !strstr(err.msg, "offset")) {
			if (bad++ < 5)
				printf("length %zu: rc %d: %s\n", n, rc, err.msg);
		}
	}
	CU_ASSERT_EQUAL(bad, 0);
	free(buf);
}

SP_TEST(flipped_byte_anywhere)
{
	char path[512];
	struct sp_err err;
	size_t len, bad = 0;
	uint8_t *buf;

	sp_test_path(path, sizeof(path), "sample.sptrace");
	make_sample(path);
	buf = tb_slurp(path, &len);
	for (size_t i = 0; i < len; i++) {
		for (int bit = 0; bit < 8; bit += 3) {
			int rc;

			buf[i] ^= (uint8_t)(1u << bit);
			rc = check_buf(buf, len, &err);
			buf[i] ^= (uint8_t)(1u << bit);
			/* magic, version, or a chunk whose checksum/length no longer fits */
			if (rc >= 0 || !strstr(err.msg, "offset") ||
			    (i < 8 && rc != SP_EMAGIC) || (i >= 8 && i < 12 && rc != SP_EVERSION) ||
			    (i >= 12 && rc != SP_ECORRUPT && rc != SP_ETRUNC && rc != SP_ELIMIT)) {
				if (bad++ < 5)
					printf("byte %zu bit %d: rc %d: %s\n", i, bit, rc, err.msg);
			}
		}
	}
	CU_ASSERT_EQUAL(bad, 0);
	free(buf);
}

SP_TEST(wrong_magic_and_version)
{
	struct sp_err err;
	uint8_t buf[64];
	size_t len;
	char path[512];
	uint8_t *good;

	memset(buf, 'x', sizeof(buf));
	CU_ASSERT_EQUAL(check_buf(buf, sizeof(buf), &err), SP_EMAGIC);
	CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "not a samepage trace"));
	sp_test_path(path, sizeof(path), "sample.sptrace");
	make_sample(path);
	good = tb_slurp(path, &len);
	good[8] = 3; /* version 3 */
	CU_ASSERT_EQUAL(check_buf(good, len, &err), SP_EVERSION);
	CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "version 3"));
	good[8] = 0;
	CU_ASSERT_EQUAL(check_buf(good, len, &err), SP_EVERSION);
	/* version 1 read as such: the SUMM chunk is unknown there */
	good[8] = 1;
	CU_ASSERT_EQUAL(check_buf(good, len, &err), SP_ECORRUPT);
	CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "unknown chunk type"));
	free(good);
}

/* ---- hand-framed files with valid checksums but absurd content -------- */

struct fb {
	uint8_t buf[4096];
	size_t len;
};

static void fb_bytes(struct fb *f, const void *p, size_t n)
{
	memcpy(f->buf + f->len, p, n);
	f->len += n;
}

static void fb_u8(struct fb *f, uint8_t v) { fb_bytes(f, &v, 1); }
static void fb_u16(struct fb *f, uint16_t v) { fb_u8(f, (uint8_t)v); fb_u8(f, (uint8_t)(v >> 8)); }
static void fb_u32(struct fb *f, uint32_t v) { fb_u16(f, (uint16_t)v); fb_u16(f, (uint16_t)(v >> 16)); }
static void fb_u64(struct fb *f, uint64_t v) { fb_u32(f, (uint32_t)v); fb_u32(f, (uint32_t)(v >> 32)); }

static void fb_start(struct fb *f)
{
	f->len = 0;
	fb_bytes(f, "SPTRACE\0", 8);
	fb_u32(f, 1);
}

/* Frames the payload p of n bytes as a chunk with a correct checksum. */
static void fb_chunk(struct fb *f, const char *type, const struct fb *p)
{
	size_t at = f->len;

	fb_bytes(f, type, 4);
	fb_u32(f, (uint32_t)p->len);
	fb_bytes(f, p->buf, p->len);
	fb_u64(f, XXH64(f->buf + at, 8 + p->len, 0));
}

static void head_payload(struct fb *p, uint32_t page_size, uint32_t nguests, uint64_t pages)
{
	p->len = 0;
	fb_u32(p, page_size);
	fb_u8(p, 2);
	fb_u8(p, 128);
	fb_u16(p, 0);
	fb_u32(p, nguests);
	fb_u16(p, 0);
	for (uint32_t g = 0; g < nguests && g < 4; g++) {
		fb_u8(p, 1);
		fb_u8(p, 'g');
		fb_u16(p, 0);
		fb_u32(p, 0);
		fb_u64(p, pages);
	}
}

static int check_framed(const struct fb *f, struct sp_err *err)
{
	return check_buf(f->buf, f->len, err);
}

SP_TEST(absurd_header_values)
{
	struct fb f, p;
	struct sp_err err;

	/* A well-formed minimal file first, so the failures below are the values. */
	fb_start(&f);
	head_payload(&p, 4096, 1, 8);
	fb_chunk(&f, "HEAD", &p);
	p.len = 0;
	fb_u32(&p, 0);
	fb_u64(&p, 0);
	fb_chunk(&f, "END ", &p);
	CU_ASSERT_EQUAL(check_framed(&f, &err), 0);

	fb_start(&f);
	head_payload(&p, 4096, 1000000, 8);
	fb_chunk(&f, "HEAD", &p);
	CU_ASSERT_EQUAL(check_framed(&f, &err), SP_ELIMIT);
	CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "guest count"));

	fb_start(&f);
	head_payload(&p, 3000, 1, 8);
	fb_chunk(&f, "HEAD", &p);
	CU_ASSERT_EQUAL(check_framed(&f, &err), SP_ELIMIT);
	CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "page size"));

	fb_start(&f);
	head_payload(&p, 4096, 1, 1ull << 40);
	fb_chunk(&f, "HEAD", &p);
	CU_ASSERT_EQUAL(check_framed(&f, &err), SP_ELIMIT);
	CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "page count"));

	fb_start(&f);
	head_payload(&p, 4096, 2, 8); /* says 2 guests, describes 2: then cut one short */
	p.len -= 3;
	fb_chunk(&f, "HEAD", &p);
	CU_ASSERT_EQUAL(check_framed(&f, &err), SP_ECORRUPT);
}

SP_TEST(absurd_chunk_values)
{
	struct fb f, p, h;
	struct sp_err err;

	head_payload(&h, 4096, 1, 8);

	/* a chunk length far beyond the limit */
	fb_start(&f);
	fb_chunk(&f, "HEAD", &h);
	fb_bytes(&f, "SNAP", 4);
	fb_u32(&f, 0x7fffffff);
	CU_ASSERT_EQUAL(check_framed(&f, &err), SP_ELIMIT);
	CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "offset"));

	/* a snapshot announcing more records than the trace has pages */
	fb_start(&f);
	fb_chunk(&f, "HEAD", &h);
	p.len = 0;
	fb_u32(&p, 0);
	fb_u64(&p, 0);
	fb_u64(&p, 1ull << 50);
	fb_chunk(&f, "SNAP", &p);
	CU_ASSERT_EQUAL(check_framed(&f, &err), SP_ELIMIT);

	/* a record beyond the guest's pages */
	fb_start(&f);
	fb_chunk(&f, "HEAD", &h);
	p.len = 0;
	fb_u32(&p, 0);
	fb_u64(&p, 0);
	fb_u64(&p, 1);
	fb_chunk(&f, "SNAP", &p);
	p.len = 0;
	fb_u32(&p, 0);
	fb_u32(&p, 1);
	fb_u64(&p, 0);
	fb_u8(&p, 100); /* gap 100 > 8 pages */
	fb_u8(&p, 0);
	fb_chunk(&f, "PAGE", &p);
	CU_ASSERT_EQUAL(check_framed(&f, &err), SP_ECORRUPT);
	CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "record 0"));

	/* an endless varint */
	fb_start(&f);
	fb_chunk(&f, "HEAD", &h);
	p.len = 0;
	fb_u32(&p, 0);
	fb_u64(&p, 0);
	fb_u64(&p, 1);
	fb_chunk(&f, "SNAP", &p);
	p.len = 0;
	fb_u32(&p, 0);
	fb_u32(&p, 1);
	fb_u64(&p, 0);
	for (int i = 0; i < 20; i++)
		fb_u8(&p, 0xff);
	fb_chunk(&f, "PAGE", &p);
	CU_ASSERT_EQUAL(check_framed(&f, &err), SP_ECORRUPT);

	/* an unknown chunk type */
	fb_start(&f);
	fb_chunk(&f, "HEAD", &h);
	p.len = 0;
	fb_chunk(&f, "WHAT", &p);
	CU_ASSERT_EQUAL(check_framed(&f, &err), SP_ECORRUPT);
	CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "unknown chunk type"));

	/* END totals that do not add up */
	fb_start(&f);
	fb_chunk(&f, "HEAD", &h);
	p.len = 0;
	fb_u32(&p, 3);
	fb_u64(&p, 0);
	fb_chunk(&f, "END ", &p);
	CU_ASSERT_EQUAL(check_framed(&f, &err), SP_ECORRUPT);

	/* no END at all */
	fb_start(&f);
	fb_chunk(&f, "HEAD", &h);
	CU_ASSERT_EQUAL(check_framed(&f, &err), SP_ETRUNC);
	CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "no END chunk"));
}

SP_TEST(bytes_after_end)
{
	char path[512];
	struct sp_err err;
	size_t len;
	uint8_t *buf;

	sp_test_path(path, sizeof(path), "sample.sptrace");
	make_sample(path);
	buf = tb_slurp(path, &len);
	buf = realloc(buf, len + 1);
	buf[len] = 0;
	CU_ASSERT_EQUAL(check_buf(buf, len + 1, &err), SP_ECORRUPT);
	CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "after the END"));
	free(buf);
}

static int count_samples(void *arg, uint64_t t, const struct metrics *m)
{
	(void)t;
	(void)m;
	++*(int *)arg;
	return 0;
}

SP_TEST(replay_stops_cleanly_on_corruption)
{
	char path[512], bad[512];
	struct sp_err err = { 0 };
	struct sim_config cfg;
	struct sim_result res;
	size_t len;
	uint8_t *buf;
	int samples = 0;

	sp_test_path(path, sizeof(path), "sample.sptrace");
	sp_test_path(bad, sizeof(bad), "cut.sptrace");
	make_sample(path);
	buf = tb_slurp(path, &len);
	spill(bad, buf, len - 30); /* inside the last snapshot */
	sim_config_defaults(&cfg, algo_find("oracle"));
	CU_ASSERT_EQUAL(sim_run(bad, &cfg, count_samples, NULL, &samples, &res, &err), SP_ETRUNC);
	CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "truncated"));
	free(buf);
}

/* A file's start: HEAD (one guest of `pages` pages), SNAP 0 at 0 ms announcing `records`. */
static void fb_head_snap(struct fb *f, uint64_t pages, uint64_t records)
{
	struct fb p, h;

	head_payload(&h, 4096, 1, pages);
	fb_start(f);
	fb_chunk(f, "HEAD", &h);
	p.len = 0;
	fb_u32(&p, 0);
	fb_u64(&p, 0);
	fb_u64(&p, records);
	fb_chunk(f, "SNAP", &p);
}

/* One snapshot of one record whose PAGE payload after the prefix is rec[0..n). */
static int check_one_record(const uint8_t *rec, size_t n, struct sp_err *err)
{
	struct fb f, p;

	fb_head_snap(&f, 8, 1);
	p.len = 0;
	fb_u32(&p, 0);
	fb_u32(&p, 1);
	fb_u64(&p, 0);
	fb_bytes(&p, rec, n);
	fb_chunk(&f, "PAGE", &p);
	p.len = 0;
	fb_u32(&p, 1);
	fb_u64(&p, 1);
	fb_chunk(&f, "END ", &p);
	return check_framed(&f, err);
}

SP_TEST(fingerprint_zero_on_a_nonzero_page)
{
	uint8_t rec[18] = { 0, TRACE_PRESENT }; /* gap 0, present, not ZERO, fingerprint 0 */
	struct sp_err err;

	CU_ASSERT_EQUAL(check_one_record(rec, sizeof(rec), &err), SP_ECORRUPT);
	CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "fingerprint 0"));
	CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "offset"));
	rec[2] = 1; /* any other fingerprint is fine */
	CU_ASSERT_EQUAL(check_one_record(rec, sizeof(rec), &err), 0);
	/* and the writer refuses to write one */
	{
		struct tb tb;
		char path[512];
		struct trace_record r = { .guest = 0, .page = 0, .flags = TRACE_PRESENT };

		sp_test_path(path, sizeof(path), "fp0.sptrace");
		tb_init(&tb, 1, 8);
		tb_open(&tb, path);
		tb_snap(&tb, 0);
		CU_ASSERT_EQUAL(trace_writer_record(tb.w, &r, &tb.err), SP_EINVAL);
		CU_ASSERT_PTR_NOT_NULL(strstr(tb.err.msg, "fingerprint 0"));
		trace_writer_abort(tb.w);
		trace_header_release(&tb.h);
	}
}

SP_TEST(varint_beyond_64_bits)
{
	/* a 10-byte gap varint whose last byte carries bits 64..69: 0 + 2^64 */
	uint8_t rec[12] = { 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x02, 0 };
	struct sp_err err;

	CU_ASSERT_EQUAL(check_one_record(rec, 11, &err), SP_ECORRUPT);
	CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "above 2^64"));
	/* an over-long varint (an 11th byte) is called that, not "past the chunk's end" */
	memset(rec, 0x80, 11);
	rec[11] = 0;
	CU_ASSERT_EQUAL(check_one_record(rec, 12, &err), SP_ECORRUPT);
	CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "longer than 10 bytes"));
	/* a record cut inside its varint still says so */
	CU_ASSERT_EQUAL(check_one_record(rec, 3, &err), SP_ECORRUPT);
	CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "past the chunk's end"));
}

/* ---- a batch read gives what a read a record at a time gives ---------- */

/* What reading a file gave: its records, and how it ended. */
struct readout {
	struct trace_record rec[256];
	size_t n;
	int rc;
	char msg[sizeof(((struct sp_err *)0)->msg)];
};

/* Reads path to its end or first error: max == 0 a record a call, else trace_reader_next_records(max). */
static void read_all(const char *path, unsigned max, struct readout *o)
{
	struct trace_reader *r = NULL;
	struct trace_snapshot s;
	struct sp_err err = { 0 };
	int rc = trace_reader_open(&r, path, &err);

	o->n = 0;
	while (rc >= 0 && (rc = trace_reader_next_snapshot(r, &s, &err)) > 0) {
		do {
			unsigned room = (unsigned)(256 - o->n), m = max < room ? max : room;

			CU_ASSERT_FATAL(room > 0);
			rc = max ? trace_reader_next_records(r, o->rec + o->n, m, &err)
				 : trace_reader_next_record(r, o->rec + o->n, &err);
			CU_ASSERT(rc <= (int)(max ? m : 1));
			o->n += rc > 0 ? (size_t)rc : 0;
		} while (rc > 0);
	}
	o->rc = rc;
	memcpy(o->msg, err.msg, sizeof(o->msg));
	trace_reader_close(r);
}

static bool same_record(const struct trace_record *a, const struct trace_record *b)
{
	return a->guest == b->guest && a->flags == b->flags && a->node == b->node &&
	       a->page == b->page && sp_fp_eq(a->fp, b->fp);
}

/* The reads of path by batches of every size give the records and the end of a read by records. */
static int batches_agree(const char *path)
{
	static const unsigned sizes[] = { 1, 2, 3, 5, 16, 64 };
	static struct readout one, many;
	int bad = 0;

	read_all(path, 0, &one);
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		read_all(path, sizes[i], &many);
		bool same = one.n == many.n && one.rc == many.rc && !strcmp(one.msg, many.msg);

		for (size_t k = 0; same && k < one.n; k++)
			same = same_record(&one.rec[k], &many.rec[k]);
		if (!same && bad++ < 3)
			printf("%s by %u: %zu records, rc %d (%s); by one %zu, rc %d (%s)\n", path,
			       sizes[i], many.n, many.rc, many.msg, one.n, one.rc, one.msg);
	}
	return bad;
}

/*
 * One snapshot announcing `announced` records, one PAGE chunk saying it
 * holds `count`, of 40 records (gap 0, present, fingerprint k + 1) of which
 * record `at` is spoilt in way `how`; then END.  A guest of 64 pages.
 */
static void spoilt_trace(const char *path, int how, int at, uint64_t announced, uint32_t count)
{
	struct fb f, p;

	fb_head_snap(&f, 64, announced);
	p.len = 0;
	fb_u32(&p, 0);
	fb_u32(&p, count);
	fb_u64(&p, 0);
	for (int k = 0; k < 40; k++) {
		uint8_t flags = TRACE_PRESENT, fp[16] = { (uint8_t)(k + 1) };

		if (k == at && how == 1)
			flags = 0x10; /* unknown flag */
		if (k == at && how == 2)
			memset(fp, 0, sizeof(fp)); /* fingerprint 0 */
		if (k == at && how == 3) {
			fb_u8(&p, 0x80 | 30); /* gap 30 + 128: beyond the guest's pages */
			fb_u8(&p, 1);
		} else if (k == at && how == 4) {
			fb_u8(&p, 0x80); /* gap 0 in three bytes: sound, not the fast path's */
			fb_u8(&p, 0x80);
			fb_u8(&p, 0);
		} else {
			fb_u8(&p, 0);
		}
		if (k == at && (how == 5 || how == 6))
			flags |= TRACE_NODE;
		fb_u8(&p, flags);
		if (k == at && how == 5)
			fb_u16(&p, 1024); /* beyond the last node */
		if (k == at && how == 6)
			fb_u16(&p, 7);
		fb_bytes(&p, fp, sizeof(fp));
	}
	fb_chunk(&f, "PAGE", &p);
	p.len = 0;
	fb_u32(&p, 1);
	fb_u64(&p, announced);
	fb_chunk(&f, "END ", &p);
	spill(path, f.buf, f.len);
}

SP_TEST(batch_reads_agree_with_record_reads)
{
	static const int spots[] = { 0, 1, 2, 7, 15, 16, 17, 31, 38, 39 };
	/* announced by the snapshot, held by the PAGE chunk: of 40 records */
	static const uint64_t counts[][2] = { { 39, 40 }, { 41, 40 }, { 40, 39 }, { 40, 41 },
					      { 20, 40 }, { 40, 20 }, { 40, 1 } };
	char path[512];
	int bad = 0;

	sp_test_path(path, sizeof(path), "sample.sptrace");
	make_sample(path);
	bad += batches_agree(path);
	sp_test_path(path, sizeof(path), "spoilt.sptrace");
	for (int how = 1; how <= 6; how++) {
		for (size_t i = 0; i < sizeof(spots) / sizeof(spots[0]); i++) {
			spoilt_trace(path, how, spots[i], 40, 40);
			bad += batches_agree(path);
		}
	}
	/* sound records, then wrong counts: announced or held fewer or more */
	spoilt_trace(path, 0, -1, 40, 40);
	{
		static struct readout o;

		read_all(path, 16, &o);
		CU_ASSERT_EQUAL(o.rc, 0);
		CU_ASSERT_EQUAL(o.n, 40);
		CU_ASSERT_EQUAL(o.rec[39].page, 39);
	}
	bad += batches_agree(path);
	for (size_t i = 0; i < sizeof(counts) / sizeof(counts[0]); i++) {
		spoilt_trace(path, 0, -1, counts[i][0], (uint32_t)counts[i][1]);
		bad += batches_agree(path);
	}
	CU_ASSERT_EQUAL(bad, 0);
}
