/*
 * tracebuild.c - implements the hand-built test traces; any writer error
 * fails the current CUnit test with the writer's message.
 */
#include "tracebuild.h"

#include <CUnit/CUnit.h>
#include <stdio.h>
#include <string.h>

struct sp_fp tb_fp(uint64_t content)
{
	struct sp_fp fp = { 0, 0 };

	if (content) {
		fp.lo = content * 0xc2b2ae3d27d4eb4fULL;
		fp.hi = content + 0x165667b19e3779f9ULL;
	}
	return fp;
}

void tb_init(struct tb *tb, uint32_t nguests, uint64_t pages)
{
	memset(tb, 0, sizeof(*tb));
	trace_header_init(&tb->h, nguests, NULL);
	tb->h.page_size = 4096;
	tb->h.fp_algo = TRACE_FP_SYNTHETIC;
	snprintf(tb->h.desc, sizeof(tb->h.desc), "hand-built test trace");
	for (uint32_t g = 0; g < nguests; g++) {
		snprintf(tb->h.guests[g].name, sizeof(tb->h.guests[g].name), "g%u", g);
		tb->h.guests[g].pages = pages;
	}
}

static void check(struct tb *tb, int rc)
{
	if (rc < 0)
		fprintf(stderr, "tracebuild: %s\n", tb->err.msg);
	CU_ASSERT_EQUAL_FATAL(rc, 0);
}

void tb_open(struct tb *tb, const char *path)
{
	check(tb, trace_writer_open(&tb->w, path, &tb->h, 0644, &tb->err));
}

void tb_snap(struct tb *tb, uint64_t time_ms)
{
	check(tb, trace_writer_begin_snapshot(tb->w, time_ms, &tb->err));
}

void tb_page_ex(struct tb *tb, uint32_t guest, uint64_t page, uint64_t content, int huge,
		int node)
{
	struct trace_record rec = { .guest = guest, .page = page, .fp = tb_fp(content) };

	rec.flags = TRACE_PRESENT | (content ? 0 : TRACE_ZERO) | (huge ? TRACE_HUGE : 0);
	rec.node = node < 0 ? tb->h.guests[guest].node : (uint16_t)node;
	check(tb, trace_writer_record(tb->w, &rec, &tb->err));
}

void tb_page(struct tb *tb, uint32_t guest, uint64_t page, uint64_t content)
{
	tb_page_ex(tb, guest, page, content, 0, -1);
}

void tb_absent(struct tb *tb, uint32_t guest, uint64_t page)
{
	struct trace_record rec = { .guest = guest, .page = page };

	check(tb, trace_writer_record(tb->w, &rec, &tb->err));
}

void tb_unique_trace(const char *path, uint64_t n)
{
	struct tb tb;

	tb_init(&tb, 1, n);
	tb_open(&tb, path);
	tb_snap(&tb, 0);
	for (uint64_t p = 0; p < n; p++)
		tb_page(&tb, 0, p, p + 1);
	tb_commit(&tb);
}

void tb_two_snapshots(const char *path, uint64_t t1_ms)
{
	struct tb tb;

	tb_init(&tb, 2, 16);
	tb_open(&tb, path);
	tb_snap(&tb, 0);
	for (uint32_t g = 0; g < 2; g++)
		for (uint64_t p = 0; p < 16; p++)
			tb_page(&tb, g, p, p % 4 + 1);
	tb_snap(&tb, t1_ms);
	tb_page(&tb, 0, 1, 9);
	tb_commit(&tb);
}

void tb_commit(struct tb *tb)
{
	int rc = trace_writer_commit(tb->w, &tb->err);

	tb->w = NULL;
	trace_header_release(&tb->h);
	check(tb, rc);
}

#include <stdlib.h>

void tb_config(struct sim_config *cfg, const char *algo, const char *const *sets)
{
	struct sp_err err = { 0 };

	sim_config_defaults(cfg, algo_find(algo));
	CU_ASSERT_PTR_NOT_NULL_FATAL(cfg->algo);
	for (int k = 0; k < BK_COST__COUNT; k++)
		cfg->cost.ns[k] = 0;
	for (; sets && *sets; sets++) {
		if (algo_params_set(cfg->algo, &cfg->params, *sets, &err) < 0)
			fprintf(stderr, "tb_config: %s\n", err.msg);
		CU_ASSERT_EQUAL_FATAL(err.code, 0);
	}
}

static int record_sample(void *arg, uint64_t t, const struct metrics *m)
{
	struct tb_series *s = arg;

	if (s->n == TB_MAX_SAMPLES)
		return 1;
	s->t[s->n] = t;
	s->m[s->n] = *m;
	s->n++;
	return 0;
}

static struct tb_series *run_any(const char *path, const struct trace_source *src,
				  const struct sim_config *cfg)
{
	struct tb_series *s = calloc(1, sizeof(*s));
	struct sim_result res;
	struct sp_err err = { 0 };
	int rc;

	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	rc = path ? sim_run(path, cfg, record_sample, NULL, s, &res, &err)
		  : sim_run_source(src, cfg, record_sample, NULL, s, &res, &err);
	if (rc < 0)
		fprintf(stderr, "tb_run: %s\n", err.msg);
	CU_ASSERT_EQUAL_FATAL(rc, 0);
	return s;
}

struct tb_series *tb_run(const char *path, const struct sim_config *cfg)
{
	return run_any(path, NULL, cfg);
}

struct tb_series *tb_run_source(const struct trace_source *src, const struct sim_config *cfg)
{
	return run_any(NULL, src, cfg);
}

const struct metrics *tb_at(const struct tb_series *s, uint64_t t_ms)
{
	for (size_t i = 0; i < s->n; i++) {
		if (s->t[i] == t_ms)
			return &s->m[i];
	}
	fprintf(stderr, "tb_at: no sample at %llu ms\n", (unsigned long long)t_ms);
	CU_FAIL_FATAL("no sample at the asked time");
	return NULL;
}

void tb_layout_scan(const char *path, struct sim_layout *lay)
{
	struct trace_reader *r;
	struct trace_source src;
	struct sp_err err = { 0 };

	CU_ASSERT_EQUAL_FATAL(trace_reader_open(&r, path, &err), 0);
	src = trace_reader_source(r);
	CU_ASSERT_EQUAL_FATAL(sim_layout_scan(lay, &src, &err), 0);
	trace_reader_close(r);
}

uint8_t *tb_slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	uint8_t *buf;
	long n;

	CU_ASSERT_PTR_NOT_NULL_FATAL(f);
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	rewind(f);
	buf = malloc((size_t)n + 1);
	CU_ASSERT_EQUAL_FATAL(fread(buf, 1, (size_t)n, f), (size_t)n);
	fclose(f);
	*len = (size_t)n;
	return buf;
}
