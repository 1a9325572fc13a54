/*
 * test_summary.c - a version-2 trace's summary (traces/FORMAT.md: SUMM)
 * gives sim the layout its reading pass would (sim_layout_from_summary
 * against sim_layout_scan, field by field), on generated traces and on the
 * shipped samples rewritten as version 2, and the same samples of every
 * series; what the summary cannot say (a guest not recorded completely, a
 * version-1 file) falls back to the pass; a summary that does not match the
 * records is refused.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "gen.h"
#include "harness.h"
#include "parallel.h"
#include "sim.h"
#include "tracebuild.h"

/* The layout from the summary: sim_layout_from_summary's answer (1: lay filled). */
static int summary_layout(const char *path, struct sim_layout *lay)
{
	struct trace_reader *r;
	struct trace_summary sum;
	struct sp_err err = { 0 };
	int rc;

	memset(lay, 0, sizeof(*lay));
	CU_ASSERT_EQUAL_FATAL(trace_reader_open(&r, path, &err), 0);
	rc = trace_reader_summary(r, &sum, &err);
	CU_ASSERT(rc >= 0);
	if (rc > 0) {
		rc = sim_layout_from_summary(lay, trace_reader_header(r), &sum, &err);
		free(sum.complete);
	}
	trace_reader_close(r);
	return rc;
}

/* Both layouts of path are the same: 1; the summary does not serve: 0 (the pass does). */
static int same_layout(const char *path)
{
	struct sim_layout a, b;
	int rc = summary_layout(path, &b), bad = 0;

	tb_layout_scan(path, &a);
	if (rc == 1) {
		bad += a.nguests != b.nguests || a.total != b.total || a.snapshots != b.snapshots ||
		       a.last_ms != b.last_ms || a.contents != b.contents;
		for (uint32_t g = 0; g < a.nguests && !bad; g++)
			bad += a.base[g] != b.base[g] || a.npages[g] != b.npages[g] || a.pfn[g] || b.pfn[g];
		if (bad)
			printf("%s: the summary's layout differs from the pass's (total %llu/%llu, "
			       "contents %llu/%llu, last %llu/%llu)\n", path, (unsigned long long)a.total,
			       (unsigned long long)b.total, (unsigned long long)a.contents,
			       (unsigned long long)b.contents, (unsigned long long)a.last_ms,
			       (unsigned long long)b.last_ms);
		CU_ASSERT_EQUAL(bad, 0);
	}
	sim_layout_release(&a);
	sim_layout_release(&b);
	return rc;
}

/* Copies the trace at in to out, record by record, in format version (0: the current one). */
static void rewrite(const char *in, const char *out, uint32_t version)
{
	struct trace_reader *r;
	struct trace_writer *w;
	struct trace_header h;
	struct trace_snapshot s;
	struct trace_record rec;
	struct sp_err err = { 0 };
	int rc;

	CU_ASSERT_EQUAL_FATAL(trace_reader_open(&r, in, &err), 0);
	h = *trace_reader_header(r);
	h.version = version;
	CU_ASSERT_EQUAL_FATAL(trace_writer_open(&w, out, &h, 0644, &err), 0);
	while ((rc = trace_reader_next_snapshot(r, &s, &err)) > 0) {
		CU_ASSERT_EQUAL_FATAL(trace_writer_begin_snapshot(w, s.time_ms, &err), 0);
		while ((rc = trace_reader_next_record(r, &rec, &err)) > 0)
			CU_ASSERT_EQUAL_FATAL(trace_writer_record(w, &rec, &err), 0);
		CU_ASSERT_EQUAL_FATAL(rc, 0);
	}
	CU_ASSERT_EQUAL_FATAL(rc, 0);
	CU_ASSERT_EQUAL_FATAL(trace_writer_commit(w, &err), 0);
	trace_reader_close(r);
}

/* Every sample of algo's runs on a and b the same. */
static void same_runs(const char *a, const char *b, const char *algo)
{
	struct sim_config cfg;
	struct tb_series *x, *y;

	tb_config(&cfg, algo, NULL);
	x = tb_run(a, &cfg);
	y = tb_run(b, &cfg);
	CU_ASSERT_EQUAL_FATAL(x->n, y->n);
	CU_ASSERT(x->n > 0);
	CU_ASSERT_EQUAL(memcmp(x->t, y->t, x->n * sizeof(x->t[0])), 0);
	CU_ASSERT_EQUAL(memcmp(x->m, y->m, x->n * sizeof(x->m[0])), 0);
	free(x);
	free(y);
}

/* sim_parallel_run's jobs (oracle, ksm) on a and b, decoded and streamed, give the same samples. */
static void same_parallel(const char *a, const char *b)
{
	const char *algos[] = { "oracle", "ksm" };

	for (int mode = 0; mode < 2; mode++) {
		struct sim_job ja[2], jb[2];
		struct trace_mem *ta, *tbm;
		struct sp_err err = { 0 };
		enum trace_mem_mode mm = mode ? TRACE_MEM_STREAMED : TRACE_MEM_DECODED;

		CU_ASSERT_EQUAL_FATAL(trace_mem_load_as(&ta, a, mm, NULL, NULL, &err), 0);
		CU_ASSERT_EQUAL_FATAL(trace_mem_load_as(&tbm, b, mm, NULL, NULL, &err), 0);
		CU_ASSERT_PTR_NULL(trace_mem_summary(ta));
		CU_ASSERT_PTR_NOT_NULL(trace_mem_summary(tbm));
		memset(ja, 0, sizeof(ja));
		memset(jb, 0, sizeof(jb));
		for (int i = 0; i < 2; i++) {
			tb_config(&ja[i].cfg, algos[i], NULL);
			ja[i].keep_samples = true;
			jb[i] = ja[i];
		}
		CU_ASSERT_EQUAL(sim_parallel_run(ta, ja, 2, 2, false, NULL, NULL, NULL, &err), 0);
		if (sim_parallel_run(tbm, jb, 2, 2, false, NULL, NULL, NULL, &err) != 0) {
			printf("mode %d: %s\n", mode, err.msg);
			CU_FAIL("parallel run");
		}
		for (int i = 0; i < 2; i++) {
			CU_ASSERT_EQUAL(ja[i].rc, 0);
			CU_ASSERT_EQUAL(jb[i].rc, 0);
			CU_ASSERT_EQUAL_FATAL(ja[i].nsamples, jb[i].nsamples);
			CU_ASSERT(ja[i].nsamples > 0);
			CU_ASSERT_EQUAL(memcmp(ja[i].times, jb[i].times, ja[i].nsamples * sizeof(uint64_t)), 0);
			CU_ASSERT_EQUAL(memcmp(ja[i].samples, jb[i].samples,
					       ja[i].nsamples * sizeof(struct metrics)), 0);
			sim_job_release(&ja[i]);
			sim_job_release(&jb[i]);
		}
		trace_mem_free(ta);
		trace_mem_free(tbm);
	}
}

static void gen(struct trace_gen_params *p, const char *name, char *path, size_t len)
{
	struct sp_err err = { 0 };

	sp_test_path(path, len, name);
	CU_ASSERT_EQUAL_FATAL(trace_gen_write(p, path, NULL, NULL, &err), 0);
}

SP_TEST(generated_traces_summary_is_the_pass)
{
	struct trace_gen_params p;
	char v2[512], v1[512];

	for (int k = 0; k < 6; k++) {
		trace_gen_defaults(&p);
		p.guests = 4;
		p.pages = 3000;
		p.snapshots = 5;
		p.seed = (uint64_t)k + 7;
		if (k == 1) {
			p.huge_fraction = 0.2;
			p.nodes = 2;
			p.domains = 2;
		} else if (k == 2) {
			p.late_guests = 2; /* complete from their first snapshot on */
		} else if (k == 3) {
			p.zero_fraction = 1.0; /* nothing to count */
		} else if (k == 4) {
			p.guests = 1;
			p.pages = 1;
			p.snapshots = 1;
		} else if (k == 5) {
			p.pages = 70000; /* the estimate past linear counting */
			p.snapshots = 2;
		}
		gen(&p, "gen2.sptrace", v2, sizeof(v2));
		CU_ASSERT_EQUAL(same_layout(v2), 1);
		CU_ASSERT_EQUAL(trace_check(v2, NULL, NULL, &(struct sp_err){ 0 }), 0);
		p.version = 1;
		gen(&p, "gen1.sptrace", v1, sizeof(v1));
		CU_ASSERT_EQUAL(same_layout(v1), 0); /* version 1: the pass */
		if (k < 3) {
			same_runs(v1, v2, "oracle");
			same_runs(v1, v2, "ksm");
			same_parallel(v1, v2);
		}
	}
}

SP_TEST(samples_rewritten_summary_is_the_pass)
{
	DIR *d = opendir(SP_SAMPLES_DIR);
	struct dirent *e;
	char in[1024], out[512];
	int n = 0;

	CU_ASSERT_PTR_NOT_NULL_FATAL(d);
	while ((e = readdir(d))) {
		const char *dot = strrchr(e->d_name, '.');
		int rc;

		if (!dot || strcmp(dot, ".sptrace") != 0)
			continue;
		snprintf(in, sizeof(in), "%s/%s", SP_SAMPLES_DIR, e->d_name);
		CU_ASSERT_EQUAL(same_layout(in), 0); /* the samples stay version 1 */
		sp_test_path(out, sizeof(out), "sample2.sptrace");
		rewrite(in, out, 0);
		rc = same_layout(out);
		printf("%s: %s\n", e->d_name, rc == 1 ? "the summary serves" : "the pass (a guest incomplete)");
		if (rc == 0) {
			/* then some guest's pages are not all in one snapshot */
			struct sim_layout a;
			struct trace_reader *r;
			struct sp_err err = { 0 };
			uint64_t all = 0;

			tb_layout_scan(out, &a);
			CU_ASSERT_EQUAL_FATAL(trace_reader_open(&r, out, &err), 0);
			all = trace_header_total_pages(trace_reader_header(r));
			trace_reader_close(r);
			printf("  %llu of %llu pages mentioned\n", (unsigned long long)a.total,
			       (unsigned long long)all);
			sim_layout_release(&a);
		}
		CU_ASSERT_EQUAL(trace_check(out, NULL, NULL, &(struct sp_err){ 0 }), 0);
		same_runs(in, out, "oracle");
		same_runs(in, out, "ksm");
		same_runs(in, out, "esx");
		n++;
	}
	closedir(d);
	CU_ASSERT(n >= 3);
}

/* A guest never recorded whole (pages in no one snapshot all): the pass, whose numbering is sparse. */
SP_TEST(incomplete_guest_falls_back_to_the_pass)
{
	char path[512];
	struct tb tb;
	struct sim_layout lay;

	sp_test_path(path, sizeof(path), "part.sptrace");
	tb_init(&tb, 2, 8);
	tb_open(&tb, path);
	tb_snap(&tb, 0);
	for (uint64_t p = 0; p < 8; p++)
		tb_page(&tb, 0, p, p + 1);
	for (uint64_t p = 0; p < 4; p++)
		tb_page(&tb, 1, p, p + 1);
	tb_snap(&tb, 10);
	for (uint64_t p = 4; p < 8; p++)
		tb_page(&tb, 1, p, p + 1); /* all of guest 1 now, but in no one snapshot */
	tb_commit(&tb);
	CU_ASSERT_EQUAL(summary_layout(path, &lay), 0);
	CU_ASSERT_EQUAL(same_layout(path), 0);
	CU_ASSERT_EQUAL(trace_check(path, NULL, NULL, &(struct sp_err){ 0 }), 0);
}

/* The file's bytes back to path, with the checksum of the chunk at offset chunk recomputed. */
static void spill_resummed(const char *path, uint8_t *buf, size_t len, size_t chunk)
{
	uint32_t clen = (uint32_t)buf[chunk + 4] | (uint32_t)buf[chunk + 5] << 8 |
			(uint32_t)buf[chunk + 6] << 16 | (uint32_t)buf[chunk + 7] << 24;
	uint64_t sum = XXH64(buf + chunk, 8 + (size_t)clen, 0);
	FILE *f;

	for (int i = 0; i < 8; i++)
		buf[chunk + 8 + clen + (size_t)i] = (uint8_t)(sum >> (8 * i));
	f = fopen(path, "wb");
	CU_ASSERT_PTR_NOT_NULL_FATAL(f);
	CU_ASSERT_EQUAL(fwrite(buf, 1, len, f), len);
	fclose(f);
}

#define SMALL_PAGES 500

/*
 * A small generated trace (3 guests x SMALL_PAGES pages, 3 snapshots) at
 * good, a path for its altered copies at bad (both plen bytes); its bytes.
 */
static uint8_t *gen_small(const char *name, char *good, char *bad, size_t plen, size_t *len)
{
	struct trace_gen_params p;
	char badname[64];

	trace_gen_defaults(&p);
	p.guests = 3;
	p.pages = SMALL_PAGES;
	p.snapshots = 3;
	gen(&p, name, good, plen);
	snprintf(badname, sizeof(badname), "bad-%s", name);
	sp_test_path(bad, plen, badname);
	return tb_slurp(good, len);
}

/*
 * A summary whose checksum is right but whose content is not the records':
 * `trace check` refuses each (the estimate too), with the SUMM chunk's
 * offset; a run refuses those the reader checks as it reads, and may use a
 * wrong estimate (it only sizes a table: the samples stay the same).
 */
SP_TEST(summary_not_matching_the_records_refused)
{
	char good[512], bad[512];
	struct sim_config cfg;
	struct sim_result res;
	struct sp_err err;
	size_t len, summ, end;
	uint8_t *buf = gen_small("summ.sptrace", good, bad, sizeof(good), &len);

	end = len - 36;
	summ = 0;
	for (int i = 0; i < 8; i++)
		summ |= (size_t)buf[end + 8 + 12 + i] << (8 * i);
	CU_ASSERT_EQUAL_FATAL(summ + 8 + 20 + 3 + 8, end);
	CU_ASSERT_EQUAL(memcmp(buf + summ, "SUMM", 4), 0);
	for (int k = 0; k < 5; k++) {
		uint8_t *b = malloc(len);
		int rc;

		memcpy(b, buf, len);
		switch (k) {
		case 0: b[summ + 8] ^= 1; break;          /* last_ms */
		case 1: b[summ + 8 + 8] ^= 1; break;      /* contents */
		case 2: b[summ + 8 + 20] = 0; break;      /* guest 0 not complete */
		case 3: b[summ + 8 + 20 + 1] = 2; break;  /* not a flag */
		case 4: b[summ + 8 + 16] = 4; break;      /* guest count */
		}
		spill_resummed(bad, b, len, summ);
		sp_err_clear(&err);
		rc = trace_check(bad, NULL, NULL, &err);
		CU_ASSERT_EQUAL(rc, SP_ECORRUPT);
		CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "offset"));
		CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "SUMM"));
		if (rc != SP_ECORRUPT)
			printf("case %d: rc %d %s\n", k, rc, err.msg);
		sim_config_defaults(&cfg, algo_find("oracle"));
		cfg.duration_ms = 500; /* stops before the last snapshot: the tail is read anyway */
		sp_err_clear(&err);
		rc = sim_run(bad, &cfg, NULL, NULL, NULL, &res, &err);
		CU_ASSERT_EQUAL(rc, k == 1 ? 0 : SP_ECORRUPT);
		if (rc < 0)
			CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, bad));
		free(b);
	}
	/* a corrupt chunk past a short run's end is refused too */
	{
		uint8_t *b = malloc(len);

		memcpy(b, buf, len);
		b[summ - 20] ^= 0x10; /* inside the last PAGE chunk: its checksum */
		spill_resummed(bad, b, len, end); /* (END's own checksum still right) */
		sim_config_defaults(&cfg, algo_find("oracle"));
		cfg.duration_ms = 500;
		sp_err_clear(&err);
		CU_ASSERT_EQUAL(sim_run(bad, &cfg, NULL, NULL, NULL, &res, &err), SP_ECORRUPT);
		free(b);
	}
	/* the good file runs */
	sim_config_defaults(&cfg, algo_find("oracle"));
	cfg.duration_ms = 500;
	sp_err_clear(&err);
	CU_ASSERT_EQUAL(sim_run(good, &cfg, NULL, NULL, NULL, &res, &err), 0);
	free(buf);
}

/* The summary as trace_reader_summary() gives it: 1 used, 0 not (the pass), < 0 an error. */
static int summary_rc(const char *path)
{
	struct trace_reader *r;
	struct trace_summary sum = { 0 };
	struct sp_err err = { 0 };
	int rc;

	CU_ASSERT_EQUAL_FATAL(trace_reader_open(&r, path, &err), 0);
	rc = trace_reader_summary(r, &sum, &err);
	free(sum.complete);
	trace_reader_close(r);
	return rc;
}

/*
 * A summary that cannot be true is not used, even with every checksum right
 * (cli.mutation, seed 1796195636, m-138: a header's page count flipped to
 * 2^30 under a complete flag sized the replay's memory for 2^30 pages and
 * hung): a complete guest with more pages than END's records, END's records
 * beyond the file's bytes.  The run then reads the records and refuses them
 * at once.
 */
SP_TEST(summary_that_cannot_be_true_not_used)
{
	char good[512], bad[512];
	struct sim_config cfg;
	struct sim_result res;
	struct sp_err err;
	size_t len, head = 12, at;
	uint8_t *buf = gen_small("sure.sptrace", good, bad, sizeof(good), &len);

	CU_ASSERT_EQUAL_FATAL(summary_rc(good), 1);
	CU_ASSERT_EQUAL_FATAL(memcmp(buf + head, "HEAD", 4), 0);
	for (int k = 0; k < 2; k++) {
		uint8_t *b = malloc(len);
		size_t chunk;
		int rc;

		memcpy(b, buf, len);
		if (k == 0) {
			/* guest 0's page_count: after the fixed fields, the description and its name */
			at = head + 8 + 14 + ((size_t)b[head + 8 + 12] | (size_t)b[head + 8 + 13] << 8);
			at += 1 + b[at] + 2 + 4;
			CU_ASSERT_EQUAL_FATAL(b[at] | b[at + 1] << 8, SMALL_PAGES);
			b[at + 3] = 0x40; /* 500 + 2^30 */
			chunk = head;
		} else {
			chunk = len - 36; /* END: snapshots, then the records (u64) */
			CU_ASSERT_EQUAL_FATAL(memcmp(b + chunk, "END ", 4), 0);
			b[chunk + 8 + 4 + 7] = 0x01; /* + 2^56 */
		}
		spill_resummed(bad, b, len, chunk);
		CU_ASSERT_EQUAL(summary_rc(bad), 0);
		if (summary_rc(bad) != 0) { /* it would size memory for 2^30 pages */
			free(b);
			continue;
		}
		sim_config_defaults(&cfg, algo_find("oracle"));
		sp_err_clear(&err);
		rc = sim_run(bad, &cfg, NULL, NULL, NULL, &res, &err);
		CU_ASSERT_EQUAL(rc, SP_ECORRUPT);
		CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, bad));
		printf("case %d: %s\n", k, err.msg);
		sp_err_clear(&err);
		CU_ASSERT_EQUAL(trace_check(bad, NULL, NULL, &err), SP_ECORRUPT);
		free(b);
	}
	free(buf);
}
