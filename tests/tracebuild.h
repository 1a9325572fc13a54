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

#endif
