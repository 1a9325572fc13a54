/*
 * tracebuild.h - hand-built tiny traces for tests: contents are small
 * integers (0 = a zero-filled page), so expected results can be worked out
 * on paper.
 */
#ifndef SP_TEST_TRACEBUILD_H
#define SP_TEST_TRACEBUILD_H

#include "trace.h"

struct tb {
	struct trace_header h;
	struct trace_writer *w;
	struct sp_err err;
};

/* nguests guests of pages pages each, all node 0, domain 0; edit tb->h.guests before tb_open. */
void tb_init(struct tb *tb, uint32_t nguests, uint64_t pages);
void tb_open(struct tb *tb, const char *path);
void tb_snap(struct tb *tb, uint64_t time_ms);
/* content 0: zero page; else a distinct fingerprint per content value. */
void tb_page(struct tb *tb, uint32_t guest, uint64_t page, uint64_t content);
void tb_page_ex(struct tb *tb, uint32_t guest, uint64_t page, uint64_t content, int huge,
		int node);
void tb_absent(struct tb *tb, uint32_t guest, uint64_t page);
void tb_commit(struct tb *tb);
struct sp_fp tb_fp(uint64_t content);
/* A one-guest trace of n pages with n distinct contents, in one snapshot at 0. */
void tb_unique_trace(const char *path, uint64_t n);
/*
 * Two guests of 16 pages, contents 1..4 four times each, at 0; at t1_ms a
 * second snapshot writes one page (huge or beyond-the-clock times, issue 10).
 */
void tb_two_snapshots(const char *path, uint64_t t1_ms);


/* ---- running the simulator on a test trace ---------------------------- */

#include "sim.h"

#define TB_MAX_SAMPLES 20000

struct tb_series {
	size_t n;
	uint64_t t[TB_MAX_SAMPLES];
	struct metrics m[TB_MAX_SAMPLES];
};

/*
 * Defaults for algo, then each "key=value" of the NULL-terminated sets;
 * a cost model of 0 ns everywhere unless the test sets one.
 */
void tb_config(struct sim_config *cfg, const char *algo, const char *const *sets);
/* Runs and records every sample into s (heap: it is large); fails the test on error. */
struct tb_series *tb_run(const char *path, const struct sim_config *cfg);
struct tb_series *tb_run_source(const struct trace_source *src, const struct sim_config *cfg);
/* The sample at time t_ms (fails the test if there is none). */
const struct metrics *tb_at(const struct tb_series *s, uint64_t t_ms);
/* The layout of the trace at path by sim_layout_scan()'s pass (fails the test if it cannot be read). */
void tb_layout_scan(const char *path, struct sim_layout *lay);
/* The bytes of the file at path, one spare byte after them (malloc'd; fails the test on error). */
uint8_t *tb_slurp(const char *path, size_t *len);

#endif
