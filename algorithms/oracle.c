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
 * Keys are counted one of two ways.  Across nodes, where the backend counts
 * its pages by content (backend.h content_counts: the simulator's content
 * ids, one per (content, domain), as a partition is then the domain), the
 * oracle keeps nothing per page and reads the backend's counts: zero-filled
 * pages counted as content make one key per domain.  Otherwise it counts
 * page by page in a cidtab.h table of (fingerprint, partition).
 *
 * Invariants (counting page by page): cid[p] is the table's id page p was
 * counted under when state[p] is ST_CONTENT; the counts are exactly those
 * pages'; shared == keys with count >= 2, distinct == keys with count >= 1,
 * total == pages counted under a key.  Per page: 5 bytes (none when the
 * backend counts).
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
	struct cidtab contents;  /* keys by fingerprint, unless by_backend */
	bool by_backend;         /* the backend's content_counts() are the counts */
	struct kit_parts parts;
	uint32_t *cid;           /* per page: id of the (content, partition) counted */
	uint8_t *state;          /* per page: 0 not counted, 1 content, 2 zero page */
	int64_t shared;          /* keys with count >= 2 */
	int64_t distinct;        /* keys with count >= 1 */
	int64_t total;           /* pages counted under a key */
	int64_t zero_pages;
	int64_t present;
};

enum { ST_NONE, ST_CONTENT, ST_ZERO };

static void uncount(struct oracle *o, bk_page p)
{
	if (o->state[p] == ST_CONTENT) {
		uint32_t n = cidtab_put(&o->contents, o->cid[p]);

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

static int count(struct oracle *o, bk_page p)
{
	struct bk_page_info info;
	uint32_t part;
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
	n = kit_part(&o->parts, &info, o->across_nodes, &part);
	if (n == 0)
		n = cidtab_add(&o->contents, o->bk.ops->content(o->bk.impl, p), part, &o->cid[p]);
	if (n < 0) {
		o->present--;
		return (int)n;
	}
	o->state[p] = ST_CONTENT;
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
	kit_parts_release(&o->parts);
	if (!o->by_backend) {
		sp_big_free(o->cid, o->npages + 1, sizeof(*o->cid));
		sp_big_free(o->state, o->npages + 1, 1);
	}
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
	o->by_backend = o->across_nodes && o->bk.ops->content_counts;
	if (!o->by_backend) {
		o->cid = sp_big_calloc(o->npages + 1, sizeof(*o->cid));
		o->state = sp_big_calloc(o->npages + 1, 1);
	}
	bool ok = (o->by_backend || (o->cid && o->state)) && cidtab_init(&o->contents) == 0 &&
		  kit_parts_init(&o->parts) == 0;

	for (bk_page i = 0; ok && !o->by_backend && i < o->npages; i++)
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
	if (o->by_backend)
		return 0; /* the backend has counted it */
	uncount(o, p);
	return count(o, p);
}

/* Counting by the backend, it needs to hear of no change (sim/run.c then calls nothing a record). */
static uint32_t oracle_hears(const void *st)
{
	const struct oracle *o = st;

	return o->by_backend ? 0 : ~0u; /* else every change, as without hears() */
}

/* The oracle's counts: its own, or the backend's (zero-filled pages one key per domain unless use_zero_pages). */
struct oracle_counts {
	int64_t present, total, distinct, shared, zero_pages;
};

static struct oracle_counts oracle_counts(const struct oracle *o)
{
	struct bk_content_counts b;
	struct oracle_counts c = { o->present, o->total, o->distinct, o->shared, o->zero_pages };

	if (!o->by_backend)
		return c;
	o->bk.ops->content_counts(o->bk.impl, &b);
	c = (struct oracle_counts){ b.present, b.held, b.distinct, b.shared, 0 };
	if (o->use_zero) {
		c.zero_pages = b.zero;
	} else {
		c.total += b.zero;
		c.distinct += b.zero_keys;
		c.shared += b.zero_shared;
	}
	return c;
}

static void oracle_metrics(const void *st, struct metrics *m)
{
	const struct oracle *o = st;
	struct oracle_counts c = oracle_counts(o);
	int64_t page_size = o->bk.ops->page_size(o->bk.impl);

	m->pages_shared = c.shared;
	m->pages_sharing = c.total - c.distinct;
	m->pages_unshared = 0;
	m->pages_volatile = 0;
	m->ksm_zero_pages = c.zero_pages;
	m->general_profit = metrics_general_profit(m, page_size, c.present);
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
	.hears = oracle_hears,
};
