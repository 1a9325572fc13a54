/*
 * cmd.c - implements the "cmd" merger: a model of CMD, classification-based
 * memory deduplication (L. Chen, Z. Wei, Z. Cui, M. Chen, H. Pan, Y. Bao,
 * "CMD: Classification-based Memory Deduplication through Page Access
 * Characteristics", VEE 2014).
 *
 * The idea.  CMD is KSM with its two global comparison trees split into many
 * small ones.  Pages are grouped into classes by their access
 * characteristics (the paper monitors write accesses per page with a
 * hardware memory tracer and classifies pages once per monitoring period);
 * each class has its own stable and unstable tree, and a page is searched
 * only in its own class's trees: pages of different classes are never
 * compared.  Most comparisons in KSM's big trees are futile (the contents
 * differ), so smaller trees cut the comparisons (by about 68% in the paper)
 * while finding nearly all the sharing, because pages with equal content tend
 * to be written alike.  Everything else is ksmd's: a cursor visits
 * pages_to_scan pages every sleep_millisecs, a page must keep its checksum
 * between two visits to be a candidate, the unstable trees are emptied at
 * every full scan, the stable trees never are.
 *
 * Here the write frequency is observed the only way a scanner can: by the
 * checksum changing between visits.  Each tracked page keeps a shift
 * register of its last `history` visits (1 = the checksum had changed); its
 * class is min(classes - 1, bit length of the number of changes): with the
 * defaults 0 writes -> class 0, 1 -> 1, 2-3 -> 2, 4 or more -> 3.  A page's
 * class is set anew at every visit of a private page.
 *
 * Structures.
 *   Trees are per (NUMA node when merge_across_nodes=0, security domain,
 *   class): tree = (nid * ndomains + domain index) * classes + class.
 *   fe[i]    stable tree entries: one per shared frame (a pool with a free
 *            list through next; 0 = none): frame f, checksum csum, tree,
 *            live (pages mapping f through us), hash chain next/prev
 *            (fbucket[] by (csum, tree)).  ssize[tree]: entries per tree.
 *   per page p:
 *     oldcsum[p]  checksum at the previous visit (valid with PG_CSUM)
 *     hist[p]     write history (bit 0 = the last visit), cls[p] its class
 *     fent[p]     the entry whose frame p maps, 0 = none
 *     ukey/utree/unext/uprev/useq: p's unstable tree node (valid while
 *                 PG_UNSTABLE and useq[p] == ugen, the current generation of
 *                 the unstable trees); usize[tree] pages per unstable tree.
 *
 * Invariants.
 *   - pages_shared == fe[] entries in use (live >= 1); pages_sharing ==
 *     sum of (live - 1) == the backend's mappers - 1 summed over our frames,
 *     at every instant.
 *   - pages_unshared == pages with PG_UNSTABLE: as in the kernel, a page
 *     inserted before the last full scan counts until it is visited again
 *     (its node is no longer linked: useq[p] != ugen).
 *   - tracked == pages with PG_TRACKED (visited, present, not on the zero
 *     page); pages_volatile == tracked - pages_shared - pages_sharing -
 *     pages_unshared, as the kernel derives it.
 *   - A search touches one tree only, so compare*() is only ever called on
 *     two pages (or a page and a frame) of the same class and partition.
 *
 * Notes (simplifications of the model).
 *  - Classification by checksum changes seen at visits instead of the
 *    paper's hardware-monitored write counts per period; a write between
 *    two visits that restores the old content is not seen.
 *  - The stable and unstable trees are hash tables on (checksum, tree)
 *    standing for content-ordered red-black trees, as ksm.c's unstable tree
 *    does: a search is charged the height of the searched tree,
 *    ceil(log2(size + 1)) tree steps (the kernel's early-exit memcmp per
 *    node, which is where CMD's saving shows), plus a full compare per entry
 *    of equal checksum.  A page written since its insertion keeps its old
 *    key and misdirects no search.
 *  - A shared frame stays in the stable tree of the class that created it;
 *    a page whose class changed does not find it (the paper's behaviour).
 *  - No max_page_sharing chains, no smart_scan skipping, no timer-tick
 *    rounding of the sleep (taken literally).
 *  - COW breaks and unmaps update the counters at once (ksm.c models the
 *    kernel's lag instead).
 *  - Absent pages and pages on the zero page are stepped over without a
 *    visit; a batch ends when the cursor wraps (one full scan at most).
 *  - Changing classes or merge_across_nodes is refused while shared frames
 *    exist (as the kernel refuses merge_across_nodes); otherwise the unstable
 *    trees are emptied.
 */
#include <stdlib.h>
#include <string.h>

#include "algorithm.h"

enum {
	P_PAGES_TO_SCAN,
	P_SLEEP_MILLISECS,
	P_CLASSES,
	P_HISTORY,
	P_USE_ZERO_PAGES,
	P_MERGE_ACROSS_NODES,
};

static const struct algo_param cmd_params[] = {
	{ "pages_to_scan", "pages visited per batch", 100, 0, 1e7, true },
	{ "sleep_millisecs", "sleep between batches, ms", 20, 0, 1e6, true },
	{ "classes", "page classes by write frequency, each with its own trees", 4, 1, 16, true },
	{ "history", "visits remembered to estimate a page's write frequency", 8, 1, 32, true },
	{ "use_zero_pages", "1: zero-filled pages map the shared zero page (ksm_zero_pages)", 0, 0,
	  1, true },
	{ "merge_across_nodes", "1: pages of different NUMA nodes may share; 0: per-node trees", 1, 0,
	  1, true },
};

#define PG_TRACKED 0x01u
#define PG_CSUM 0x02u
#define PG_UNSTABLE 0x04u
#define PG_ONZERO 0x08u

struct fent {
	bk_frame f;
	uint32_t csum;
	uint32_t tree;
	uint32_t live;
	uint32_t next, prev;
};

struct cmd {
	struct backend bk;
	const struct backend_ops *ops;
	void *impl;

	uint64_t pages_to_scan, sleep_ms;
	uint32_t classes, history;
	bool use_zero, across;

	uint64_t npages;
	uint32_t page_size, zero_sum;
	uint32_t ndomains;
	uint32_t *domains;   /* sorted domain ids */
	uint32_t ntrees;
	uint32_t *ssize, *usize;

	uint32_t mask;
	uint32_t *fbucket, *ubucket;
	struct fent *fe;
	uint32_t fe_cap, fe_used, fe_free;

	uint32_t *oldcsum, *hist, *fent, *ukey, *utree, *unext, *uprev, *useq;
	uint8_t *cls, *flags;
	uint32_t ugen;

	uint64_t cursor;
	int64_t pages_shared, pages_sharing, pages_unshared, tracked, zero_pages;
	int64_t full_scans, pages_scanned;
};

/* ---- helpers ------------------------------------------------------------ */

static inline uint32_t bucket_of(const struct cmd *c, uint32_t csum, uint32_t tree)
{
	uint64_t h = (((uint64_t)tree << 32) | csum) * 0x9e3779b97f4a7c15ULL;

	return (uint32_t)(h >> 32) & c->mask;
}

/* Nodes visited by a search of a balanced tree of size entries. */
static inline uint64_t depth(uint32_t size)
{
	uint64_t d = 0;

	for (; size; size >>= 1)
		d++;
	return d;
}

static uint32_t class_of(const struct cmd *c, uint32_t hist)
{
	uint32_t mask = c->history >= 32 ? UINT32_MAX : (1u << c->history) - 1;
	uint32_t writes = (uint32_t)__builtin_popcount(hist & mask);
	uint32_t k = (uint32_t)depth(writes);

	return k < c->classes ? k : c->classes - 1;
}

static uint32_t domain_index(const struct cmd *c, uint32_t domain)
{
	uint32_t lo = 0, hi = c->ndomains;

	while (lo < hi) {
		uint32_t mid = (lo + hi) / 2;

		if (c->domains[mid] < domain)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < c->ndomains ? lo : 0;
}

/* The tree of a page of class k; grows the size arrays if a new NUMA node shows up. */
static int tree_of(struct cmd *c, const struct bk_page_info *info, uint32_t k, uint32_t *out)
{
	uint32_t nid = c->across ? 0 : info->node;
	uint32_t per_node = c->ndomains * c->classes;
	uint64_t need = (uint64_t)(nid + 1) * per_node;

	if (need > c->ntrees) {
		uint32_t *s, *u;

		if (need > UINT32_MAX / 2)
			return SP_ELIMIT;
		s = realloc(c->ssize, need * sizeof(*s));
		if (!s)
			return SP_ENOMEM;
		c->ssize = s;
		u = realloc(c->usize, need * sizeof(*u));
		if (!u)
			return SP_ENOMEM;
		c->usize = u;
		memset(c->ssize + c->ntrees, 0, (need - c->ntrees) * sizeof(*s));
		memset(c->usize + c->ntrees, 0, (need - c->ntrees) * sizeof(*u));
		c->ntrees = (uint32_t)need;
	}
	*out = (nid * c->ndomains + domain_index(c, info->domain)) * c->classes + k;
	return 0;
}

/* ---- stable trees ---------------------------------------------------------- */

static int fe_new(struct cmd *c, bk_frame f, uint32_t csum, uint32_t tree, uint32_t *out)
{
	uint32_t i, b;

	if (c->fe_free) {
		i = c->fe_free;
		c->fe_free = c->fe[i].next;
	} else {
		if (c->fe_used == c->fe_cap) {
			uint32_t cap = c->fe_cap * 2;
			struct fent *n = cap > c->fe_cap ? realloc(c->fe, cap * sizeof(*n)) : NULL;

			if (!n)
				return SP_ENOMEM;
			c->fe = n;
			c->fe_cap = cap;
		}
		i = c->fe_used++;
	}
	memset(&c->fe[i], 0, sizeof(c->fe[i]));
	c->fe[i].f = f;
	c->fe[i].csum = csum;
	c->fe[i].tree = tree;
	b = bucket_of(c, csum, tree);
	c->fe[i].next = c->fbucket[b];
	if (c->fbucket[b])
		c->fe[c->fbucket[b]].prev = i;
	c->fbucket[b] = i;
	c->ssize[tree]++;
	*out = i;
	return 0;
}

static void fe_drop(struct cmd *c, uint32_t i)
{
	struct fent *x = &c->fe[i];

	if (x->prev)
		c->fe[x->prev].next = x->next;
	else
		c->fbucket[bucket_of(c, x->csum, x->tree)] = x->next;
	if (x->next)
		c->fe[x->next].prev = x->prev;
	c->ssize[x->tree]--;
	x->next = c->fe_free;
	x->prev = 0;
	c->fe_free = i;
}

static void attach(struct cmd *c, bk_page p, uint32_t i)
{
	if (c->fe[i].live++)
		c->pages_sharing++;
	else
		c->pages_shared++;
	c->fent[p] = i;
}

static void detach(struct cmd *c, bk_page p)
{
	uint32_t i = c->fent[p];

	c->fent[p] = 0;
	if (--c->fe[i].live) {
		c->pages_sharing--;
	} else {
		c->pages_shared--;
		fe_drop(c, i);
	}
}

/* ---- unstable trees -------------------------------------------------------- */

static inline bool in_unstable(const struct cmd *c, bk_page p)
{
	return (c->flags[p] & PG_UNSTABLE) && c->useq[p] == c->ugen;
}

static void unstable_remove(struct cmd *c, bk_page p)
{
	if (!(c->flags[p] & PG_UNSTABLE))
		return;
	if (in_unstable(c, p)) {
		if (c->uprev[p])
			c->unext[c->uprev[p] - 1] = c->unext[p];
		else
			c->ubucket[bucket_of(c, c->ukey[p], c->utree[p])] = c->unext[p];
		if (c->unext[p])
			c->uprev[c->unext[p] - 1] = c->uprev[p];
		c->usize[c->utree[p]]--;
	}
	c->pages_unshared--;
	c->flags[p] &= (uint8_t)~PG_UNSTABLE;
}

static void unstable_insert(struct cmd *c, bk_page p, uint32_t csum, uint32_t tree)
{
	uint32_t b = bucket_of(c, csum, tree);

	c->ukey[p] = csum;
	c->utree[p] = tree;
	c->useq[p] = c->ugen;
	c->uprev[p] = 0;
	c->unext[p] = c->ubucket[b];
	if (c->ubucket[b])
		c->uprev[c->ubucket[b] - 1] = (uint32_t)p + 1;
	c->ubucket[b] = (uint32_t)p + 1;
	c->flags[p] |= PG_UNSTABLE;
	c->usize[tree]++;
	c->pages_unshared++;
}

static void unstable_reset(struct cmd *c)
{
	memset(c->ubucket, 0, ((size_t)c->mask + 1) * sizeof(*c->ubucket));
	if (c->ntrees)
		memset(c->usize, 0, c->ntrees * sizeof(*c->usize));
	c->ugen++; /* pages_unshared keeps the old nodes until their pages are visited, as ksmd's */
}

static void untrack(struct cmd *c, bk_page p)
{
	if (!(c->flags[p] & PG_TRACKED))
		return;
	unstable_remove(c, p);
	c->flags[p] &= PG_ONZERO;
	c->tracked--;
}

/* ---- the scanner ------------------------------------------------------------ */

static int cmp_and_merge(struct cmd *c, bk_page p, const struct bk_page_info *info)
{
	const struct backend_ops *ops = c->ops;
	uint32_t csum, tree, b, i, q1;
	bool known;
	bk_frame f;
	int rc;

	if (info->frame != BK_NO_FRAME)
		return 0; /* maps one of our frames: nothing to do */
	unstable_remove(c, p);
	csum = ops->checksum(c->impl, p);
	known = c->flags[p] & PG_CSUM;
	if (known) {
		c->hist[p] = c->hist[p] << 1 | (c->oldcsum[p] != csum);
		c->cls[p] = (uint8_t)class_of(c, c->hist[p]);
	}
	if (!known || c->oldcsum[p] != csum) {
		c->oldcsum[p] = csum;
		c->flags[p] |= PG_CSUM;
		return 0; /* volatile this round */
	}
	if (c->use_zero && csum == c->zero_sum && ops->merge_zero(c->impl, p) == 0) {
		untrack(c, p);
		c->flags[p] |= PG_ONZERO;
		c->zero_pages++;
		return 0;
	}
	rc = tree_of(c, info, c->cls[p], &tree);
	if (rc < 0)
		return rc;
	b = bucket_of(c, csum, tree);
	/* The class's stable tree. */
	ops->account(c->impl, BK_COST_TREE_STEP, depth(c->ssize[tree]));
	for (i = c->fbucket[b]; i; i = c->fe[i].next) {
		if (c->fe[i].csum != csum || c->fe[i].tree != tree)
			continue;
		if (ops->compare_frame(c->impl, p, c->fe[i].f) == 0 &&
		    ops->merge_frame(c->impl, p, c->fe[i].f) == 0) {
			attach(c, p, i);
			return 0;
		}
	}
	/* The class's unstable tree. */
	ops->account(c->impl, BK_COST_TREE_STEP, depth(c->usize[tree]));
	for (q1 = c->ubucket[b]; q1; q1 = c->unext[q1 - 1]) {
		bk_page q = q1 - 1;

		if (c->ukey[q] != csum || c->utree[q] != tree)
			continue;
		if (ops->compare(c->impl, p, q) != 0)
			continue;
		/* The scanned page becomes the shared frame; the tree page joins it. */
		if (ops->merge_pages(c->impl, q, p, &f) < 0)
			break;
		unstable_remove(c, q);
		rc = fe_new(c, f, csum, tree, &i);
		if (rc < 0)
			return rc;
		attach(c, p, i);
		attach(c, q, i);
		return 0;
	}
	unstable_insert(c, p, csum, tree);
	return 0;
}

static int cmd_batch(void *st, uint64_t now_ns, uint64_t *sleep_ns)
{
	struct cmd *c = st;
	struct bk_page_info info;
	uint64_t visits = 0;
	int rc;

	(void)now_ns;
	*sleep_ns = c->sleep_ms * 1000000u;
	while (visits < c->pages_to_scan) {
		bk_page p;

		if (c->cursor == c->npages) {
			c->cursor = 0;
			c->full_scans++;
			unstable_reset(c);
			return 0;
		}
		p = c->cursor++;
		c->ops->page_info(c->impl, p, &info);
		if (!info.present || info.frame == BK_ZERO_FRAME) {
			untrack(c, p);
			continue;
		}
		if (!(c->flags[p] & PG_TRACKED)) {
			c->flags[p] = (uint8_t)((c->flags[p] & PG_ONZERO) | PG_TRACKED);
			c->hist[p] = 0;
			c->cls[p] = 0;
			c->tracked++;
		}
		c->ops->account(c->impl, BK_COST_VISIT, 1);
		rc = cmp_and_merge(c, p, &info);
		if (rc < 0)
			return rc;
		c->pages_scanned++;
		visits++;
	}
	return 0;
}

static int cmd_page_changed(void *st, bk_page p, uint32_t what)
{
	struct cmd *c = st;

	if (!(what & (ALGO_CHANGE_COW | ALGO_CHANGE_UNMAPPED)))
		return 0;
	if (c->flags[p] & PG_ONZERO) {
		c->flags[p] &= (uint8_t)~PG_ONZERO;
		c->zero_pages--;
	}
	if (c->fent[p])
		detach(c, p);
	if (what & ALGO_CHANGE_UNMAPPED)
		untrack(c, p);
	return 0;
}

static int cmd_set_param(void *st, uint32_t idx, double value, struct sp_err *err)
{
	struct cmd *c = st;
	uint64_t v = (uint64_t)value;

	switch (idx) {
	case P_PAGES_TO_SCAN:
		c->pages_to_scan = v;
		return 0;
	case P_SLEEP_MILLISECS:
		c->sleep_ms = v;
		return 0;
	case P_HISTORY:
		c->history = (uint32_t)v;
		return 0;
	case P_USE_ZERO_PAGES:
		c->use_zero = v != 0;
		return 0;
	case P_CLASSES:
	case P_MERGE_ACROSS_NODES:
		if ((idx == P_CLASSES && v == c->classes) ||
		    (idx == P_MERGE_ACROSS_NODES && (v != 0) == c->across))
			return 0;
		if (c->pages_shared > 0)
			return sp_err_set(err, SP_EINVAL,
					  "cmd: %s cannot change while %lld shared frames exist",
					  cmd_params[idx].name, (long long)c->pages_shared);
		unstable_reset(c);
		free(c->ssize);
		free(c->usize);
		c->ssize = c->usize = NULL;
		c->ntrees = 0;
		if (idx == P_CLASSES) {
			c->classes = (uint32_t)v;
			for (bk_page p = 0; p < c->npages; p++) {
				if (c->cls[p] >= c->classes)
					c->cls[p] = (uint8_t)(c->classes - 1);
			}
		} else {
			c->across = v != 0;
		}
		return 0;
	default:
		return sp_err_set(err, SP_EINVAL, "cmd: no parameter %u", idx);
	}
}

static void cmd_metrics(const void *st, struct metrics *m)
{
	const struct cmd *c = st;
	int64_t vol = c->tracked - c->pages_shared - c->pages_sharing - c->pages_unshared;

	m->pages_shared = c->pages_shared;
	m->pages_sharing = c->pages_sharing;
	m->pages_unshared = c->pages_unshared;
	m->pages_volatile = vol < 0 ? 0 : vol;
	m->full_scans = c->full_scans;
	m->pages_scanned = c->pages_scanned;
	m->ksm_zero_pages = c->zero_pages;
	m->general_profit = metrics_general_profit(m, c->page_size, c->tracked);
}

static void cmd_destroy(void *st)
{
	struct cmd *c = st;

	if (!c)
		return;
	free(c->domains);
	free(c->ssize);
	free(c->usize);
	free(c->fbucket);
	free(c->ubucket);
	free(c->fe);
	free(c->oldcsum);
	free(c->hist);
	free(c->fent);
	free(c->ukey);
	free(c->utree);
	free(c->unext);
	free(c->uprev);
	free(c->useq);
	free(c->cls);
	free(c->flags);
	free(c);
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

/* The distinct security domains of the pages, sorted. */
static int collect_domains(struct cmd *c)
{
	struct bk_page_info info;
	uint32_t n = 0;

	c->domains = malloc((c->npages + 1) * sizeof(*c->domains));
	if (!c->domains)
		return SP_ENOMEM;
	for (bk_page p = 0; p < c->npages; p++) {
		c->ops->page_info(c->impl, p, &info);
		if (n == 0 || c->domains[n - 1] != info.domain)
			c->domains[n++] = info.domain;
	}
	if (n == 0)
		c->domains[n++] = 0;
	qsort(c->domains, n, sizeof(*c->domains), cmp_u32);
	c->ndomains = 1;
	for (uint32_t i = 1; i < n; i++) {
		if (c->domains[i] != c->domains[c->ndomains - 1])
			c->domains[c->ndomains++] = c->domains[i];
	}
	return 0;
}

static int cmd_create(void **out, const struct algo_params *prm, const struct algo_env *env,
		      struct sp_err *err)
{
	struct cmd *c = calloc(1, sizeof(*c));
	size_t n;

	*out = NULL;
	if (!c)
		return sp_err_set(err, SP_ENOMEM, "cmd: out of memory");
	c->bk = env->bk;
	c->ops = env->bk.ops;
	c->impl = env->bk.impl;
	c->pages_to_scan = (uint64_t)prm->v[P_PAGES_TO_SCAN];
	c->sleep_ms = (uint64_t)prm->v[P_SLEEP_MILLISECS];
	c->classes = (uint32_t)prm->v[P_CLASSES];
	c->history = (uint32_t)prm->v[P_HISTORY];
	c->use_zero = prm->v[P_USE_ZERO_PAGES] != 0;
	c->across = prm->v[P_MERGE_ACROSS_NODES] != 0;
	c->npages = c->ops->npages(c->impl);
	c->page_size = c->ops->page_size(c->impl);
	c->zero_sum = c->ops->zero_checksum(c->impl);
	if (c->npages >= UINT32_MAX - 1) {
		cmd_destroy(c);
		return sp_err_set(err, SP_ELIMIT, "cmd: more than 2^32-2 pages");
	}
	n = c->npages + 1;
	for (c->mask = 1023; c->mask < c->npages; c->mask = c->mask * 2 + 1)
		;
	c->fbucket = calloc((size_t)c->mask + 1, sizeof(*c->fbucket));
	c->ubucket = calloc((size_t)c->mask + 1, sizeof(*c->ubucket));
	c->fe_cap = 1024;
	c->fe_used = 1;
	c->fe = calloc(c->fe_cap, sizeof(*c->fe));
	c->oldcsum = calloc(n, sizeof(*c->oldcsum));
	c->hist = calloc(n, sizeof(*c->hist));
	c->fent = calloc(n, sizeof(*c->fent));
	c->ukey = calloc(n, sizeof(*c->ukey));
	c->utree = calloc(n, sizeof(*c->utree));
	c->unext = calloc(n, sizeof(*c->unext));
	c->uprev = calloc(n, sizeof(*c->uprev));
	c->useq = calloc(n, sizeof(*c->useq));
	c->cls = calloc(n, 1);
	c->flags = calloc(n, 1);
	if (!c->fbucket || !c->ubucket || !c->fe || !c->oldcsum || !c->hist || !c->fent ||
	    !c->ukey || !c->utree || !c->unext || !c->uprev || !c->useq || !c->cls || !c->flags ||
	    collect_domains(c) < 0) {
		cmd_destroy(c);
		return sp_err_set(err, SP_ENOMEM, "cmd: out of memory for %llu pages",
				  (unsigned long long)(n - 1));
	}
	*out = c;
	return 0;
}

const struct algo_ops algo_cmd = {
	.version = ALGO_OPS_VERSION,
	.name = "cmd",
	.description = "model of CMD (VEE 2014): KSM with per-class stable/unstable trees, classes by write frequency",
	.caps = ALGO_CAP_SCANNER | ALGO_CAP_NODES,
	.params = cmd_params,
	.nparams = sizeof(cmd_params) / sizeof(cmd_params[0]),
	.create = cmd_create,
	.destroy = cmd_destroy,
	.batch = cmd_batch,
	.page_changed = cmd_page_changed,
	.set_param = cmd_set_param,
	.metrics = cmd_metrics,
};
