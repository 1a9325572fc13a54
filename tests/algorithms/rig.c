/*
 * rig.c - a test rig: one algorithm on a sim_mem backend, behind a wrapper
 * backend that counts page_info() and checksum calls per page and can offer
 * checksum_uncounted() and written(), driven record by record and batch by batch by the
 * test, so that state can be inspected between any two steps.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rig.h"

static struct rig *the_rig(void *impl) { return impl; }

static void r_page_info(void *i, bk_page p, struct bk_page_info *o)
{
	struct rig *r = the_rig(i);

	if (r->info_calls)
		r->info_calls[p]++;
	r->in.ops->page_info(r->in.impl, p, o);
}

static uint32_t r_checksum(void *i, bk_page p)
{
	struct rig *r = the_rig(i);

	r->hash_calls[p]++;
	r->last_hashed = (int64_t)p;
	return r->in.ops->checksum(r->in.impl, p);
}

static uint32_t r_checksum_uncounted(void *i, bk_page p)
{
	struct rig *r = the_rig(i);

	r->hash_calls[p]++;
	r->uncounted++;
	return sp_fp_checksum(r->in.ops->content(r->in.impl, p));
}
static int r_written(void *i, bk_page p)
{
	struct rig *r = the_rig(i);
	int w = r->in.ops->written(r->in.impl, p);

	r->written_calls++;
	r->written_clean += w == 0;
	return w;
}

static uint64_t r_unheard_changes(void *i)
{
	struct rig *r = the_rig(i);

	return r->in.ops->unheard_changes(r->in.impl);
}

void rig_init(struct rig *r, const char *algo, uint32_t nguests, uint64_t pages)
{
	memset(r, 0, sizeof(*r));
	tb_init(&r->tb, nguests, pages);
	r->a = algo_find(algo);
	CU_ASSERT_PTR_NOT_NULL_FATAL(r->a);
	sim_cost_defaults(&r->cost);
	r->last_hashed = -1;
}

/* Creates the backend and the algorithm; sets: NULL-terminated "key=value" list. */
void rig_start(struct rig *r, const char *const *sets)
{
	struct algo_params prm;
	struct algo_env env = { 0 };
	struct sp_err err = { 0 };
	uint64_t n;

	algo_params_defaults(r->a, &prm);
	for (; sets && *sets; sets++)
		CU_ASSERT_EQUAL_FATAL(algo_params_set(r->a, &prm, *sets, &err), 0);
	algo_kernel_newest(&r->k);
	if (r->kernel)
		CU_ASSERT_EQUAL_FATAL(algo_kernel_parse(&r->k, r->kernel, &err), 0);
	CU_ASSERT_EQUAL_FATAL(sim_mem_new(&r->mem, &r->tb.h, &err), 0);
	sim_mem_set_huge(r->mem, sim_huge_for(r->a, &r->k));
	r->in = sim_mem_backend(r->mem);
	passbk_init(&r->pb, r->in);
	r->pb.ops.page_info = r_page_info;
	r->pb.ops.checksum = r_checksum;
	r->pb.ops.content = NULL;
	r->pb.ops.checksum_uncounted = r->offer_uncounted ? r_checksum_uncounted : NULL;
	r->pb.ops.written = r->offer_written ? r_written : NULL;
	if (r->measure_cost)
		r->pb.ops.cost_measured = 1;
	r->pb.ops.unheard_changes = r->offer_unheard ? r_unheard_changes : NULL;
	n = r->in.ops->npages(r->in.impl);
	r->hash_calls = calloc(n + 1, sizeof(*r->hash_calls));
	CU_ASSERT_PTR_NOT_NULL_FATAL(r->hash_calls);
	env.bk = passbk_backend(&r->pb);
	env.seed = 1;
	env.kernel = &r->k;
	if (r->a->create(&r->st, &prm, &env, &err) != 0)
		fprintf(stderr, "create: %s\n", err.msg);
	CU_ASSERT_PTR_NOT_NULL_FATAL(r->st);
	r->info_calls = calloc(n + 1, sizeof(*r->info_calls)); /* from now on: not create()'s */
	CU_ASSERT_PTR_NOT_NULL_FATAL(r->info_calls);
}

static void record(struct rig *r, uint32_t g, uint64_t page, uint64_t content, bool present,
		   bool huge)
{
	struct trace_record rec = { .guest = g, .page = page };
	struct sp_err err = { 0 };
	uint32_t what;
	bool notify;
	bk_page p;

	if (present) {
		rec.fp = tb_fp(content);
		rec.flags = TRACE_PRESENT | (content ? 0 : TRACE_ZERO) | (huge ? TRACE_HUGE : 0);
	}
	rec.node = r->tb.h.guests[g].node;
	CU_ASSERT_EQUAL_FATAL(sim_mem_apply(r->mem, &rec, &p, &what, &notify, &err), 0);
	if (what && notify)
		CU_ASSERT_EQUAL(r->a->page_changed(r->st, p, what), 0);
}

void rig_record(struct rig *r, uint32_t g, uint64_t page, uint64_t content, bool present)
{
	record(r, g, page, content, present, false);
}

void rig_write(struct rig *r, uint32_t g, uint64_t page, uint64_t content)
{
	record(r, g, page, content, true, false);
}

void rig_write_huge(struct rig *r, uint32_t g, uint64_t page, uint64_t content)
{
	record(r, g, page, content, true, true);
}

void rig_metrics(struct rig *r, struct metrics *m)
{
	memset(m, 0, sizeof(*m));
	r->a->metrics(r->st, m);
	sim_mem_metrics(r->mem, &r->cost, m);
}

uint64_t rig_batch(struct rig *r)
{
	uint64_t sleep = 0;

	CU_ASSERT_EQUAL_FATAL(r->a->batch(r->st, r->now, &sleep), 0);
	r->now += sleep + 1000000u;
	return sleep;
}

void rig_free(struct rig *r)
{
	if (r->st)
		r->a->destroy(r->st);
	free(r->info_calls);
	free(r->hash_calls);
	sim_mem_free(r->mem);
	trace_header_release(&r->tb.h);
}
