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
 * Keys are counted one of two ways.  Across nodes, where the backend has
 * content ids (backend.h content_id: the simulator's, one per (content,
 * domain), as a partition is then the domain), a key is its id and its
 * count an array element: no hashing at all; zero-filled pages counted as
 * content have id 0, so their key is the partition (ST_ZEROKEY).
 * Otherwise a cidtab.h table of (fingerprint, partition).
 *
 * Invariants: cid[p] is the key page p was counted under (the table's id,
 * the backend's content id, or for ST_ZEROKEY the partition), when state[p]
 * is ST_CONTENT or ST_ZEROKEY; the counts are exactly those pages';
 * shared == keys with count >= 2, distinct == keys with count >= 1,
 * total == pages counted under a key.  Per page: 5 bytes.
 */
#include <stdlib.h>

#include "algorithm.h"
#include "cidtab.h"
#include "kit.h"
#include "sp_bigmem.h"

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
	struct cidtab contents;  /* keys by fingerprint, unless by_id */
	bool by_id;              /* keys are the backend's content ids */
	uint32_t *holders;       /* by_id: pages counted per content id */
	uint64_t holders_cap;
	uint32_t *zero_holders;  /* by_id: zero-filled pages counted per partition */
	uint64_t zero_cap;
	struct kit_parts parts;
	uint32_t *cid;           /* per page: id of the (content, partition) counted */
	uint8_t *state;          /* per page: 0 not counted, 1 content, 2 zero page */
	int64_t shared;          /* keys with count >= 2 */
	int64_t distinct;        /* keys with count >= 1 */
	int64_t total;           /* pages counted under a key */
	int64_t zero_pages;
	int64_t present;
};

enum { ST_NONE, ST_CONTENT, ST_ZERO, ST_ZEROKEY };

static void uncount(struct oracle *o, bk_page p)
{
	if (o->state[p] == ST_CONTENT || o->state[p] == ST_ZEROKEY) {
		uint32_t n = o->state[p] == ST_ZEROKEY ? --o->zero_holders[o->cid[p]]
			     : o->by_id		   ? --o->holders[o->cid[p]]
						   : cidtab_put(&o->contents, o->cid[p]);

		o->shared -= n == 1;
		o->distinct -= n == 0;
		o->total--;
	} else if (o->state[p] == ST_ZERO) {
		o->zero_pages--;
	}
	if (o->state[p] != ST_NONE)
		o->present--;
	o->state[p] = ST_NONE;
}

/* One more holder of key in arr (of *cap elements, grown as needed): the new count, or SP_ENOMEM. */
static int64_t hold(uint32_t **arr, uint64_t *cap, uint32_t key)
{
	if (key >= *cap) {
		uint64_t need = *cap < 1024 ? 1024 : *cap * 2;
		uint32_t *a;

		if (need <= key)
			need = (uint64_t)key + 1;
		a = sp_big_grow(*arr, *cap, need, sizeof(**arr));
		if (!a)
			return SP_ENOMEM;
		*arr = a;
		*cap = need;
	}
	return ++(*arr)[key];
}

static int count(struct oracle *o, bk_page p)
{
	struct bk_page_info info;
	uint32_t part;
	int64_t n;
	uint8_t st = ST_CONTENT;

	o->bk.ops->page_info(o->bk.impl, p, &info);
	if (!info.present)
		return 0;
	o->present++;
	if (o->use_zero && info.zero) {
		o->state[p] = ST_ZERO;
		o->zero_pages++;
		return 0;
	}
	n = kit_part(&o->parts, &info, o->across_nodes, &part);
	if (n == 0 && o->by_id && info.zero) {
		st = ST_ZEROKEY;
		o->cid[p] = part;
		n = hold(&o->zero_holders, &o->zero_cap, part);
	} else if (n == 0 && o->by_id) {
		o->cid[p] = o->bk.ops->content_id(o->bk.impl, p);
		n = hold(&o->holders, &o->holders_cap, o->cid[p]);
	} else if (n == 0) {
		n = cidtab_add(&o->contents, o->bk.ops->content(o->bk.impl, p), part, &o->cid[p]);
	}
	if (n < 0) {
		o->present--;
		return (int)n;
	}
	o->state[p] = st;
	o->shared += n == 2;
	o->distinct += n == 1;
	o->total++;
	return 0;
}

static void oracle_destroy(void *st)
{
	struct oracle *o = st;

	if (!o)
		return;
	cidtab_release(&o->contents);
	sp_big_free(o->holders, o->holders_cap, sizeof(*o->holders));
	sp_big_free(o->zero_holders, o->zero_cap, sizeof(*o->zero_holders));
	kit_parts_release(&o->parts);
	sp_big_free(o->cid, o->npages + 1, sizeof(*o->cid));
	sp_big_free(o->state, o->npages + 1, 1);
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
	o->by_id = o->across_nodes && o->bk.ops->content_id;
	o->cid = sp_big_calloc(o->npages + 1, sizeof(*o->cid));
	o->state = sp_big_calloc(o->npages + 1, 1);
	bool ok = o->cid && o->state && cidtab_init(&o->contents) == 0 &&
		  kit_parts_init(&o->parts) == 0;

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
	int64_t sharing = o->total - o->distinct;
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
