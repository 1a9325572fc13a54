/*
 * test_gen.c - the synthetic generator: byte-identical output for a seed,
 * different output for another, and statistics that match its parameters
 * (bounds of several standard deviations, so a correct generator passes
 * and a wrong mixture fails).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fpcount.h"
#include "gen.h"
#include "harness.h"
#include "trace.h"

static int files_equal(const char *a, const char *b)
{
	FILE *fa = fopen(a, "rb"), *fb = fopen(b, "rb");
	int ca, cb, same = 1;

	if (!fa || !fb)
		return 0;
	do {
		ca = fgetc(fa);
		cb = fgetc(fb);
		if (ca != cb)
			same = 0;
	} while (same && ca != EOF);
	fclose(fa);
	fclose(fb);
	return same;
}

static void gen(const struct trace_gen_params *p, const char *name, char *path, size_t len)
{
	struct sp_err err = { 0 };

	sp_test_path(path, len, name);
	if (trace_gen_write(p, path, NULL, NULL, &err) < 0)
		printf("gen: %s\n", err.msg);
	CU_ASSERT_EQUAL_FATAL(err.code, 0);
}

SP_TEST(same_seed_same_bytes)
{
	struct trace_gen_params p;
	char a[512], b[512], c[512];

	trace_gen_defaults(&p);
	p.guests = 3;
	p.pages = 3000;
	p.snapshots = 6;
	p.huge_fraction = 0.3;
	p.nodes = 2;
	p.seed = 77;
	gen(&p, "a.sptrace", a, sizeof(a));
	gen(&p, "b.sptrace", b, sizeof(b));
	CU_ASSERT(files_equal(a, b));
	p.seed = 78;
	gen(&p, "c.sptrace", c, sizeof(c));
	CU_ASSERT(!files_equal(a, c));
}

SP_TEST(statistics_follow_parameters)
{
	struct trace_gen_params p;
	struct sp_err err = { 0 };
	struct trace_reader *r;
	struct trace_snapshot s;
	struct trace_record rec;
	struct fpcount shared;
	char path[512];
	uint64_t n, zero = 0, huge = 0, writes = 0;
	double mean, sd;

	trace_gen_defaults(&p);
	p.guests = 4;
	p.pages = 20000;
	p.snapshots = 5;
	p.zero_fraction = 0.2;
	p.shared_fraction = 0.5;
	p.shared_contents = 100;
	p.write_rate = 0.1;
	p.volatile_fraction = 0.5;
	p.huge_fraction = 0.25;
	p.nodes = 2;
	p.domains = 2;
	p.seed = 5;
	gen(&p, "stats.sptrace", path, sizeof(path));
	n = p.guests * p.pages;

	CU_ASSERT_EQUAL_FATAL(trace_reader_open(&r, path, &err), 0);
	CU_ASSERT_EQUAL(trace_reader_header(r)->guests[3].node, 1);
	CU_ASSERT_EQUAL(trace_reader_header(r)->guests[3].domain, 1);
	CU_ASSERT_EQUAL(trace_reader_header(r)->guests[2].node, 0);
	CU_ASSERT_EQUAL_FATAL(fpcount_init(&shared, 1024), 0);
	CU_ASSERT_EQUAL_FATAL(trace_reader_next_snapshot(r, &s, &err), 1);
	CU_ASSERT_EQUAL(s.records, n);
	while (trace_reader_next_record(r, &rec, &err) == 1) {
		zero += (rec.flags & TRACE_ZERO) != 0;
		huge += (rec.flags & TRACE_HUGE) != 0;
		if (!(rec.flags & TRACE_ZERO))
			fpcount_add(&shared, rec.fp, 0);
	}
	/* zero pages: binomial(n, 0.2) */
	mean = (double)n * 0.2;
	sd = sqrt((double)n * 0.2 * 0.8);
	CU_ASSERT(fabs((double)zero - mean) < 6 * sd);
	/* huge: whole 512-page regions, 40 per guest with 20000 pages */
	CU_ASSERT_EQUAL(huge % 512 == 0 || huge % 512 == 20000 % 512, 1);
	CU_ASSERT((double)huge > 0.1 * (double)n && (double)huge < 0.4 * (double)n);
	/* non-zero pages: about half from the 100 shared contents, the rest unique,
	 * so distinct contents = (unique pages) + (at most 100) */
	{
		double nonzero = (double)(n - zero), uniq = fpcount_distinct(&shared);

		CU_ASSERT(uniq <= nonzero * 0.5 + 6 * sqrt(nonzero * 0.25) + 100);
		CU_ASSERT(uniq >= nonzero * 0.5 - 6 * sqrt(nonzero * 0.25));
	}
	/* writes per later snapshot: volatile (0.5) x rate (0.1), minus same-content redraws */
	while (trace_reader_next_snapshot(r, &s, &err) == 1)
		writes += s.records;
	mean = 4.0 * (double)n * 0.5 * 0.1;
	CU_ASSERT((double)writes < mean * 1.05);
	CU_ASSERT((double)writes > mean * 0.70); /* redraws of zero or the same popular content */
	CU_ASSERT_EQUAL(err.code, 0);
	fpcount_release(&shared);
	trace_reader_close(r);
}

SP_TEST(bad_parameters_are_refused)
{
	struct trace_gen_params p;
	struct sp_err err = { 0 };
	char path[512];

	sp_test_path(path, sizeof(path), "never.sptrace");
	trace_gen_defaults(&p);
	p.shared_fraction = 1.5;
	CU_ASSERT_EQUAL(trace_gen_write(&p, path, NULL, NULL, &err), SP_EINVAL);
	CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "--shared-fraction"));
	trace_gen_defaults(&p);
	p.guests = 0;
	sp_err_clear(&err);
	CU_ASSERT_EQUAL(trace_gen_write(&p, path, NULL, NULL, &err), SP_EINVAL);
	trace_gen_defaults(&p);
	p.domains = 9;
	sp_err_clear(&err);
	CU_ASSERT_EQUAL(trace_gen_write(&p, path, NULL, NULL, &err), SP_EINVAL);
	CU_ASSERT_PTR_NULL(fopen(path, "r"));
}

/* Records of one trace, per snapshot and guest, in order. */
struct late_count {
	uint64_t recs[3][3];
	uint64_t present[3][3];
	struct sp_fp first[3][3]; /* fingerprint of each guest's first record in each snapshot */
};

static void count_late(const char *path, struct late_count *c)
{
	struct sp_err err = { 0 };
	struct trace_reader *r;
	struct trace_snapshot s;
	struct trace_record rec;

	memset(c, 0, sizeof(*c));
	CU_ASSERT_EQUAL_FATAL(trace_reader_open(&r, path, &err), 0);
	while (trace_reader_next_snapshot(r, &s, &err) > 0) {
		CU_ASSERT_FATAL(s.index < 3);
		while (trace_reader_next_record(r, &rec, &err) > 0) {
			if (!c->recs[s.index][rec.guest])
				c->first[s.index][rec.guest] = rec.fp;
			c->recs[s.index][rec.guest]++;
			c->present[s.index][rec.guest] += (rec.flags & TRACE_PRESENT) != 0;
		}
	}
	CU_ASSERT_EQUAL(err.code, 0);
	trace_reader_close(r);
}

SP_TEST(late_guests_appear_at_the_second_snapshot)
{
	/*
	 * Guest 2 of 3 is late: no record in snapshot 0, all 400 of its pages
	 * present in snapshot 1; the early guests' records are those of the same
	 * trace without late guests (the random draws are the same).
	 */
	struct trace_gen_params p;
	struct late_count late, plain;
	struct sp_err err = { 0 };
	char a[512], b[512];

	trace_gen_defaults(&p);
	p.guests = 3;
	p.pages = 400;
	p.snapshots = 3;
	p.write_rate = 0.5;
	p.seed = 5;
	gen(&p, "plain.sptrace", a, sizeof(a));
	p.late_guests = 1;
	gen(&p, "late.sptrace", b, sizeof(b));
	count_late(a, &plain);
	count_late(b, &late);
	CU_ASSERT_EQUAL(plain.recs[0][2], 400);
	CU_ASSERT_EQUAL(late.recs[0][2], 0);
	CU_ASSERT_EQUAL(late.recs[1][2], 400);
	CU_ASSERT_EQUAL(late.present[1][2], 400);
	CU_ASSERT(plain.recs[1][2] < 400); /* without being late, only its writes */
	CU_ASSERT_EQUAL(late.recs[2][2], plain.recs[2][2]);
	for (int s = 0; s < 3; s++) {
		for (int g = 0; g < 2; g++) {
			CU_ASSERT_EQUAL(late.recs[s][g], plain.recs[s][g]);
			CU_ASSERT(sp_fp_eq(late.first[s][g], plain.first[s][g]));
		}
	}
	/* every late guest but one, or late guests in a one-snapshot trace: refused */
	p.late_guests = 3;
	CU_ASSERT_EQUAL(trace_gen_check(&p, &err), SP_EINVAL);
	p.late_guests = 1;
	p.snapshots = 1;
	CU_ASSERT_EQUAL(trace_gen_check(&p, &err), SP_EINVAL);
	CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "--late-guests"));
}
