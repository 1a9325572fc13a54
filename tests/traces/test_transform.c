/*
 * test_transform.c - traces sized to a host: trace_replicate keeps exactly
 * the sharing structure it promises (common content shared by every copy,
 * private content private to each copy, duplicates within a guest kept,
 * zero pages zero, huge flags and nodes kept or spread), and trace_subset
 * keeps the named guests and the window with a whole first snapshot.
 */
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "tracebuild.h"
#include "transform.h"

#define MAXG 8
#define MAXP 8
#define MAXS 4

/* The state of every page after each snapshot. */
struct state {
	struct trace_header h;
	uint32_t nsnap;
	uint64_t t[MAXS];
	struct trace_record page[MAXS][MAXG][MAXP];
};

static void load(const char *path, struct state *st)
{
	struct trace_reader *r;
	struct trace_snapshot s;
	struct trace_record rec;
	struct sp_err err = { 0 };
	int rc;

	memset(st, 0, sizeof(*st));
	CU_ASSERT_EQUAL_FATAL(trace_reader_open(&r, path, &err), 0);
	st->h = *trace_reader_header(r);
	st->h.guests = calloc(st->h.nguests, sizeof(*st->h.guests));
	memcpy(st->h.guests, trace_reader_header(r)->guests, st->h.nguests * sizeof(*st->h.guests));
	CU_ASSERT_FATAL(st->h.nguests <= MAXG);
	while ((rc = trace_reader_next_snapshot(r, &s, &err)) > 0) {
		CU_ASSERT_FATAL(st->nsnap < MAXS);
		if (st->nsnap)
			memcpy(st->page[st->nsnap], st->page[st->nsnap - 1], sizeof(st->page[0]));
		st->t[st->nsnap] = s.time_ms;
		while ((rc = trace_reader_next_record(r, &rec, &err)) > 0) {
			CU_ASSERT_FATAL(rec.page < MAXP);
			st->page[st->nsnap][rec.guest][rec.page] = rec;
		}
		CU_ASSERT_EQUAL(rc, 0);
		st->nsnap++;
	}
	CU_ASSERT_EQUAL(rc, 0);
	trace_reader_close(r);
}

static void unload(struct state *st)
{
	free(st->h.guests);
}

/*
 * Two guests of 6 pages; contents: 0 zero, 1 and 2 common (held by both),
 * 10, 11 private to guest 0 (10 twice), 20, 21 private to guest 1.
 * Snapshot 1 rewrites g0 p2 to private 12 and g1 p1 to common 1.
 */
static void build(const char *path)
{
	struct tb tb;

	tb_init(&tb, 2, 6);
	tb.h.guests[1].node = 1;
	tb.h.guests[1].domain = 3;
	tb_open(&tb, path);
	tb_snap(&tb, 0);
	tb_page(&tb, 0, 0, 0);
	tb_page(&tb, 0, 1, 1);
	tb_page(&tb, 0, 2, 10);
	tb_page(&tb, 0, 3, 10);
	tb_page_ex(&tb, 0, 4, 2, 1, -1);
	tb_page(&tb, 1, 0, 1);
	tb_page(&tb, 1, 1, 20);
	tb_page(&tb, 1, 2, 0);
	tb_page_ex(&tb, 1, 3, 2, 0, 0); /* on node 0, its guest on 1 */
	tb_page(&tb, 1, 4, 21);
	tb_page(&tb, 1, 5, 11 + 10); /* 21 again: a duplicate within guest 1 */
	tb_snap(&tb, 1000);
	tb_page(&tb, 0, 2, 12);
	tb_page(&tb, 1, 1, 1);
	tb_commit(&tb);
}

static bool is(const struct trace_record *r, uint64_t content)
{
	return (r->flags & TRACE_PRESENT) && sp_fp_eq(r->fp, tb_fp(content)) &&
	       !(content == 0) == !(r->flags & TRACE_ZERO);
}

SP_TEST(replicate_keeps_the_sharing_structure)
{
	char in[512], out[512];
	struct trace_replicate_opts o = { .guests = 5, .nodes = 0 };
	struct sp_err err = { 0 };
	struct state a, b;

	sp_test_path(in, sizeof(in), "orig.sptrace");
	sp_test_path(out, sizeof(out), "rep.sptrace");
	build(in);
	CU_ASSERT_EQUAL_FATAL(trace_replicate(in, out, &o, &err), 0);
	load(in, &a);
	load(out, &b);
	CU_ASSERT_EQUAL_FATAL(b.h.nguests, 5);
	CU_ASSERT_EQUAL(b.nsnap, 2);
	CU_ASSERT_EQUAL(b.t[1], 1000);
	CU_ASSERT_STRING_EQUAL(b.h.guests[0].name, "g0");
	CU_ASSERT_STRING_EQUAL(b.h.guests[3].name, "g1#1");
	CU_ASSERT_STRING_EQUAL(b.h.guests[4].name, "g0#2");
	CU_ASSERT_EQUAL(b.h.guests[3].domain, 3);
	CU_ASSERT_EQUAL(b.h.guests[3].node, 1);
	CU_ASSERT_EQUAL(b.h.guests[4].pages, 6);
	CU_ASSERT(strstr(b.h.desc, "replicated: 5 guests from 2") != NULL);
	for (uint32_t s = 0; s < 2; s++) {
		for (uint32_t j = 0; j < 5; j++) {
			uint32_t g = j % 2, copy = j / 2;

			for (uint32_t p = 0; p < 6; p++) {
				const struct trace_record *x = &a.page[s][g][p], *y = &b.page[s][j][p];

				CU_ASSERT_EQUAL(x->flags & ~TRACE_NODE, y->flags & ~TRACE_NODE);
				CU_ASSERT_EQUAL(x->node, y->node);
				if (!(x->flags & TRACE_PRESENT) || (x->flags & TRACE_ZERO)) {
					CU_ASSERT(sp_fp_is_zero(y->fp));
					continue;
				}
				/* common content (1, 2) kept everywhere; private kept by copy 0 only */
				if (is(x, 1) || is(x, 2) || copy == 0) {
					CU_ASSERT(sp_fp_eq(x->fp, y->fp));
				} else {
					CU_ASSERT(sp_fp_eq(y->fp, trace_rekey(x->fp, copy)) &&
						  !sp_fp_eq(y->fp, x->fp));
				}
			}
		}
		/* private content is private to each copy: no two guests hold a private fingerprint */
		for (uint32_t j = 0; j < 5; j++)
			for (uint32_t p = 0; p < 6; p++) {
				const struct trace_record *y = &b.page[s][j][p];
				const struct trace_record *x = &a.page[s][j % 2][p];

				if (!(y->flags & TRACE_PRESENT) || (y->flags & TRACE_ZERO) || is(x, 1) || is(x, 2))
					continue;
				for (uint32_t k = 0; k < 5; k++)
					for (uint32_t q = 0; q < 6; q++) {
						if (k != j)
							CU_ASSERT(!sp_fp_eq(b.page[s][k][q].fp, y->fp));
					}
			}
	}
	/* duplicates within a guest stay duplicates within every copy */
	for (uint32_t j = 0; j < 5; j += 2)
		CU_ASSERT(sp_fp_eq(b.page[0][j][2].fp, b.page[0][j][3].fp));
	CU_ASSERT(sp_fp_eq(b.page[0][3][4].fp, b.page[0][3][5].fp));
	CU_ASSERT(!sp_fp_eq(b.page[0][1][4].fp, b.page[0][3][4].fp));
	unload(&a);
	unload(&b);

	/* nodes spread over 2: guest j on node j % 2, a page's offset from its guest kept */
	o.nodes = 2;
	o.guests = 4;
	CU_ASSERT_EQUAL_FATAL(trace_replicate(in, out, &o, &err), 0);
	load(out, &b);
	for (uint32_t j = 0; j < 4; j++) {
		CU_ASSERT_EQUAL(b.h.guests[j].node, j % 2);
		CU_ASSERT_EQUAL(b.page[0][j][0].node, j % 2);
	}
	CU_ASSERT_EQUAL(b.page[0][1][3].node, 0); /* guest 1 on node 1 had it on 0: offset 1 */
	CU_ASSERT_EQUAL(b.page[0][3][3].node, 0);
	unload(&b);
	/* limits */
	o.guests = 0;
	CU_ASSERT_EQUAL(trace_replicate(in, out, &o, &err), SP_EINVAL);
}

SP_TEST(subset_keeps_guests_and_window)
{
	char in[512], out[512];
	static const char *const names[] = { "g1" };
	struct trace_subset_opts o = { .names = names, .nnames = 1, .from_ms = 500, .to_ms = UINT64_MAX };
	struct sp_err err = { 0 };
	struct state a, b;

	sp_test_path(in, sizeof(in), "orig2.sptrace");
	sp_test_path(out, sizeof(out), "sub.sptrace");
	build(in);
	CU_ASSERT_EQUAL_FATAL(trace_subset(in, out, &o, &err), 0);
	load(in, &a);
	load(out, &b);
	CU_ASSERT_EQUAL_FATAL(b.h.nguests, 1);
	CU_ASSERT_STRING_EQUAL(b.h.guests[0].name, "g1");
	CU_ASSERT_EQUAL(b.h.guests[0].domain, 3);
	CU_ASSERT_EQUAL(b.nsnap, 1);
	CU_ASSERT_EQUAL(b.t[0], 0);
	/* the one snapshot is the whole state at 1000 ms: snapshot 0 folded in */
	for (uint32_t p = 0; p < 6; p++) {
		const struct trace_record *x = &a.page[1][1][p], *y = &b.page[0][0][p];

		CU_ASSERT(x->flags == y->flags && x->node == y->node && sp_fp_eq(x->fp, y->fp));
	}
	CU_ASSERT(is(&b.page[0][0][1], 1)); /* rewritten at 1000 ms */
	unload(&a);
	unload(&b);
	/* all guests, the first snapshot only */
	o.nnames = 0;
	o.from_ms = 0;
	o.to_ms = 999;
	CU_ASSERT_EQUAL_FATAL(trace_subset(in, out, &o, &err), 0);
	load(out, &b);
	CU_ASSERT_EQUAL(b.h.nguests, 2);
	CU_ASSERT_EQUAL(b.nsnap, 1);
	unload(&b);
	/* errors: an unknown guest, an empty window */
	o.names = (const char *const[]){ "nobody" };
	o.nnames = 1;
	CU_ASSERT_EQUAL(trace_subset(in, out, &o, &err), SP_EINVAL);
	CU_ASSERT(strstr(err.msg, "no guest named 'nobody'") != NULL);
	o.nnames = 0;
	o.from_ms = 2000;
	o.to_ms = 3000;
	sp_err_clear(&err);
	CU_ASSERT_EQUAL(trace_subset(in, out, &o, &err), SP_EINVAL);
	CU_ASSERT(strstr(err.msg, "no snapshot between") != NULL);
}
