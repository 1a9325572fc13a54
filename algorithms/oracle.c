/*
 * oracle.c - implements the "oracle" merger: the upper bound every real
 * algorithm is measured against.
 *
 * At every instant it saves every present page whose content is also held by
 * another present page it may share with: pages_sharing = present - distinct,
 * counted per partition: (security domain, and NUMA node when
 * merge_across_nodes=0), kit.h's partition ids.  With use_zero_pages=1 zero-filled pages all map the
 * shared zero page (ksm_zero_pages) and are not counted as content.  It does
 * no work and has no cost: it is omniscient (reads exact content, hears every
 * change) and therefore exists in simulation only.  Like SQLite's
 * test_pcache.c it is deliberately simple, so it can check the others.
 *
 * Invariants: counted[p] holds the key page p was counted under (valid when
 * is_counted[p]); fpcount holds exactly those keys; shared == number of keys
 * with count >= 2.
 */
#include <stdlib.h>

#include "algorithm.h"
#include "fpcount.h"
#include "kit.h"

enum { P_MERGE_ACROSS_NODES, P_USE_ZERO_PAGES };

static const struct algo_param oracle_params[] = {
	{ "merge_across_nodes", "1: pages of different NUMA nodes may share; 0: never", 1, 0, 1, true },
	{ "use_zero_pages", "1: zero-filled pages map the shared zero page (ksm_zero_pages)", 0, 0, 1, true },
};

struct oracle {
	struct backend bk;
	bool across_nodes;
	bool use_zero;
	uint64_t npages;
	struct fpcount contents;
	struct kit_parts parts;
	struct sp_fp *counted;   /* per page: content counted */
	uint32_t *counted_part;  /* per page: partition counted */
	uint8_t *state;          /* per page: 0 not counted, 1 content, 2 zero page */
	int64_t shared;          /* keys with count >= 2 */
	int64_t zero_pages;
	int64_t present;
};

enum { ST_NONE, ST_CONTENT, ST_ZERO };

static void uncount(struct oracle *o, bk_page p)
{
	if (o->state[p] == ST_CONTENT) {
		if (fpcount_remove(&o->contents, o->counted[p], o->counted_part[p]) == 1)
			o->shared--;
	} else if (o->state[p] == ST_ZERO) {
		o->zero_pages--;
	}
	if (o->state[p] != ST_NONE)
		o->present--;
	o->state[p] = ST_NONE;
}

static int count(struct oracle *o, bk_page p)
{
	struct bk_page_info info;
	int64_t n;

	o->bk.ops->page_info(o->bk.impl, p, &info);
	if (!info.present)
		return 0;
	o->present++;
	if (o->use_zero && info.zero) {
		o->state[p] = ST_ZERO;
		o->zero_pages++;
		return 0;
	}
	o->counted[p] = o->bk.ops->content(o->bk.impl, p);
	n = kit_part(&o->parts, &info, o->across_nodes, &o->counted_part[p]);
	if (n == 0)
		n = fpcount_add(&o->contents, o->counted[p], o->counted_part[p]);
	if (n < 0) {
		o->present--;
		return (int)n;
	}
	o->state[p] = ST_CONTENT;
	if (n == 2)
		o->shared++;
	return 0;
}

static void oracle_destroy(void *st)
{
	struct oracle *o = st;

	if (!o)
		return;
	fpcount_release(&o->contents);
	kit_parts_release(&o->parts);
	free(o->counted);
	free(o->counted_part);
	free(o->state);
	free(o);
}

static int oracle_create(void **out, const struct algo_params *p, const struct algo_env *env,
			 struct sp_err *err)
{
	struct oracle *o = calloc(1, sizeof(*o));

	if (!o)
		return sp_err_set(err, SP_ENOMEM, "oracle: out of memory");
	o->bk = env->bk;
	o->across_nodes = p->v[P_MERGE_ACROSS_NODES] != 0;
	o->use_zero = p->v[P_USE_ZERO_PAGES] != 0;
	o->npages = o->bk.ops->npages(o->bk.impl);
	o->counted = malloc(o->npages * sizeof(*o->counted) + 1);
	o->counted_part = malloc(o->npages * sizeof(*o->counted_part) + 1);
	o->state = calloc(o->npages + 1, 1);
	bool ok = o->counted && o->counted_part && o->state &&
		  fpcount_init(&o->contents, 1024) == 0 && kit_parts_init(&o->parts) == 0;

	for (bk_page i = 0; ok && i < o->npages; i++)
		ok = count(o, i) == 0;
	if (!ok) {
		unsigned long long n = o->npages;

		oracle_destroy(o);
		return sp_err_set(err, SP_ENOMEM, "oracle: out of memory for %llu pages", n);
	}
	*out = o;
	return 0;
}

static int oracle_batch(void *st, uint64_t now_ns, uint64_t *sleep_ns)
{
	(void)st;
	(void)now_ns;
	*sleep_ns = ALGO_SLEEP_FOREVER; /* all its work happens in page_changed() */
	return 0;
}

static int oracle_page_changed(void *st, bk_page p, uint32_t what)
{
	struct oracle *o = st;

	(void)what;
	uncount(o, p);
	return count(o, p);
}

static void oracle_metrics(const void *st, struct metrics *m)
{
	const struct oracle *o = st;
	int64_t sharing = (int64_t)fpcount_duplicates(&o->contents);
	int64_t page_size = o->bk.ops->page_size(o->bk.impl);

	m->pages_shared = o->shared;
	m->pages_sharing = sharing;
	m->pages_unshared = 0;
	m->pages_volatile = 0;
	m->ksm_zero_pages = o->zero_pages;
	m->general_profit = metrics_general_profit(m, page_size, o->present);
}

const struct algo_ops algo_oracle = {
	.version = ALGO_OPS_VERSION,
	.name = "oracle",
	.description = "upper bound: every page whose content exists elsewhere is shared, instantly and free",
	.caps = ALGO_CAP_OMNISCIENT | ALGO_CAP_NODES,
	.params = oracle_params,
	.nparams = sizeof(oracle_params) / sizeof(oracle_params[0]),
	.create = oracle_create,
	.destroy = oracle_destroy,
	.batch = oracle_batch,
	.page_changed = oracle_page_changed,
	.set_param = NULL,
	.metrics = oracle_metrics,
};
