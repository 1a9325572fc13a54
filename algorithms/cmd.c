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
 *   Trees are per (partition, class), the partition being kit.h's
 *   (security domain, NUMA node when merge_across_nodes=0): tree =
 *   partition * classes + class.
 *   stable   kit.h's stable table: one entry per shared frame keyed
 *            (checksum, tree), with its live mappers through us and the
 *            entry each page maps.  ssize[tree]: entries per tree.
 *   per page p:
 *     oldcsum[p]  checksum at the previous visit (valid with PG_CSUM): what
 *                 the backend's checksum_again() of p returned last
 *     hist[p]     write history (bit 0 = the last visit), cls[p] its class
 *     un[p]       its node in the unstable set
 *   unstable kit.h's per-page unstable set keyed (checksum, tree), all
 *            trees in one; usize[tree] pages linked per unstable tree.
 *            Its buckets lie beside the stable table's (kit_hash_pair():
 *            npages / CMD_BUCKET_DIV of each, one line for a visit's two
 *            lookups; a search is charged by the trees' sizes, so the
 *            bucket count moves no result).
 *
 * Invariants.
 *   - pages_shared == stable entries in use (live >= 1); pages_sharing ==
 *     sum of (live - 1) == the backend's mappers - 1 summed over our frames,
 *     at every instant.
 *   - pages_unshared == members of the unstable set: as in the kernel, a
 *     page inserted before the last full scan counts until it is visited
 *     again (its node is no longer linked).
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
 *  - It runs inside Linux (ALGO_CAP_LINUX): a merge splits a transparent huge
 *    page the way the --kernel version does (from 6.12 the split maps the
 *    zero-filled subpages to the zero page; sim_huge_for()).
 *  - Idle time: repeat()/skip() (the block before cmd_destroy()) let the
 *    simulator jump over whole repeating full scans once nothing changes.
 */
#include <stdlib.h>
#include <string.h>

#include "algorithm.h"
#include "kit.h"
#include "sp_bigmem.h"

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

/*
 * Buckets of the stable and unstable hashes, paired: npages / CMD_BUCKET_DIV
 * of each (the stable table's were npages / KIT_STABLE_DIV, the unstable
 * set's npages, two random lines a visit; 8.5 -> 8 B a page).
 */
#define CMD_BUCKET_DIV 2u

#define PG_TRACKED 0x01u
#define PG_CSUM 0x02u
#define PG_ONZERO 0x08u

struct cmd {
	const struct backend_ops *ops;
	void *impl;

	uint64_t pages_to_scan, sleep_ms;
	uint32_t classes, history;
	bool use_zero, across;

	uint64_t npages;
	uint32_t page_size, zero_sum;
	struct kit_parts parts;
	uint32_t ntrees;
	uint32_t *ssize, *usize;

	struct kit_stable stable;
	struct kit_unstable unstable; /* its nodes: un[] */
	struct kit_unode *un;
	uint32_t *oldcsum, *hist;
	uint8_t *cls, *flags;

	uint64_t cursor;
	uint32_t pf_base;     /* lookahead: the latest search's partition * classes */
	int64_t tracked, zero_pages;
	int64_t full_scans, pages_scanned;

	/* idle fast-forward (cmd_repeat): changes heard, the last batch's start, the copy */
	uint64_t changes, now_ns;
	struct cmd_ff *ff;
};

/* ---- helpers ------------------------------------------------------------ */

static uint32_t class_of(const struct cmd *c, uint32_t hist)
{
	uint32_t mask = c->history >= 32 ? UINT32_MAX : (1u << c->history) - 1;
	uint32_t writes = (uint32_t)__builtin_popcount(hist & mask);
	uint32_t k = (uint32_t)kit_tree_depth(writes); /* the bit length */

	return k < c->classes ? k : c->classes - 1;
}

/* The tree of a page of class k; grows the size arrays when a new partition shows up. */
static int tree_of(struct cmd *c, const struct bk_page_info *info, uint32_t k, uint32_t *out)
{
	uint32_t part;
	uint64_t need;
	int rc = kit_part(&c->parts, info, c->across, &part);

	if (rc < 0)
		return rc;
	need = ((uint64_t)part + 1) * c->classes;
	if (need > c->ntrees) {
		uint32_t *s, *u;

		if (need > UINT32_MAX / 2)
			return SP_ELIMIT;
		if (need < (uint64_t)c->ntrees * 2)
			need = (uint64_t)c->ntrees * 2; /* amortised growth */
		s = kit_grow(c->ssize, sizeof(*s), c->ntrees, need);
		if (!s)
			return SP_ENOMEM;
		c->ssize = s;
		u = kit_grow(c->usize, sizeof(*u), c->ntrees, need);
		if (!u)
			return SP_ENOMEM;
		c->usize = u;
		c->ntrees = (uint32_t)need;
	}
	*out = part * c->classes + k;
	return 0;
}

/* ---- stable trees ---------------------------------------------------------- */

static void detach(struct cmd *c, bk_page p)
{
	uint32_t i = kit_stable_detach(&c->stable, p);

	if (!c->stable.live[i])
		c->ssize[c->stable.key[i].part]--;
}

/* ---- unstable trees -------------------------------------------------------- */

static void unstable_remove(struct cmd *c, bk_page p)
{
	uint32_t tree;

	if (kit_unstable_remove(&c->unstable, p, &tree))
		c->usize[tree]--;
}

static void unstable_reset(struct cmd *c)
{
	kit_unstable_reset(&c->unstable);
	if (c->ntrees)
		memset(c->usize, 0, c->ntrees * sizeof(*c->usize));
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
	struct kit_stable *st = &c->stable;
	uint32_t csum, tree, i, q1;
	bool known;
	bk_frame f;
	int rc;

	if (info->frame != BK_NO_FRAME)
		return 0; /* maps one of our frames: nothing to do */
	unstable_remove(c, p);
	known = c->flags[p] & PG_CSUM;
	/*
	 * oldcsum[p] is, with PG_CSUM, what the previous hashing of p returned:
	 * a backend that knows p unchanged since returns it without reading
	 * the content (counted the same; at size that read is a random miss).
	 */
	csum = ops->checksum_again ? ops->checksum_again(c->impl, p, known ? &c->oldcsum[p] : NULL)
				   : ops->checksum(c->impl, p);
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
	c->pf_base = tree - c->cls[p];
	/* The class's stable tree. */
	ops->account(c->impl, BK_COST_TREE_STEP, kit_tree_depth(c->ssize[tree]));
	for (i = kit_hash_first(&st->hash, csum, tree); i; i = st->key[i].next) {
		if (st->key[i].csum != csum || st->key[i].part != tree)
			continue;
		if (ops->compare_frame(c->impl, p, st->frame[i]) == 0 &&
		    ops->merge_frame(c->impl, p, st->frame[i]) == 0) {
			kit_stable_attach(st, p, i);
			return 0;
		}
	}
	/* The class's unstable tree. */
	ops->account(c->impl, BK_COST_TREE_STEP, kit_tree_depth(c->usize[tree]));
	for (q1 = kit_hash_first(&c->unstable.hash, csum, tree); q1; q1 = c->un[q1 - 1].key.next) {
		bk_page q = q1 - 1;

		if (c->un[q].key.csum != csum || c->un[q].key.part != tree)
			continue;
		if (ops->compare(c->impl, p, q) != 0)
			continue;
		/* The scanned page becomes the shared frame; the tree page joins it. */
		if (ops->merge_pages(c->impl, q, p, &f) < 0)
			break;
		unstable_remove(c, q);
		rc = kit_stable_add(st, f, csum, tree, &i);
		if (rc < 0)
			return rc;
		c->ssize[tree]++;
		kit_stable_attach(st, p, i);
		kit_stable_attach(st, q, i);
		return 0;
	}
	kit_unstable_insert(&c->unstable, p, csum, tree);
	c->usize[tree]++;
	return 0;
}

/*
 * Lookahead (kit.h), in two stages past the backend's prefetch: the page
 * CMD_AHEAD_BUCKET ahead searches, if its checksum holds, the trees of its
 * class after this visit in the latest search's partition: their buckets;
 * CMD_AHEAD_CHAIN ahead, those buckets loaded by then, the first entry of
 * each chain.  Pages mapping one of our frames search nothing: no hint.
 * At 8M pages both stages further ahead than kit.h's KIT_AHEAD_NEAR (6, no
 * chain stage) took 9% off cmd's user time; the chain stage alone at 3,
 * buckets at 6, added 8% (bench/README.md, issue 14, ninth round).  Both
 * stages in groups of 16 (every 16 visits, back to back, as esx and uksm
 * do: 5752a11) measured 7-11% slower at 1M, 8M and 32M pages alike in the
 * eighteenth round: cmd's visits are in page order, its misses few.
 */
#define CMD_AHEAD_BUCKET 16u
#define CMD_AHEAD_CHAIN 6u

/* Will page q's visit search (its checksum holds, it maps none of our frames)?  *tree: its first tree. */
static inline bool ahead_tree(const struct cmd *c, bk_page q, uint32_t *tree)
{
	if (q >= c->npages || !(c->flags[q] & PG_CSUM) || c->stable.of_page[q])
		return false;
	*tree = c->pf_base + class_of(c, c->hist[q] << 1);
	return true;
}

static inline void cmd_ahead(const struct cmd *c, bk_page p)
{
	bk_page q = p + CMD_AHEAD_BUCKET;
	uint32_t tree;

	if (c->ops->prefetch && p + KIT_AHEAD_FAR < c->npages)
		c->ops->prefetch(c->impl, p + KIT_AHEAD_FAR);
	if (ahead_tree(c, q, &tree)) /* the stable and unstable buckets: one pair, one line */
		kit_prefetch_bucket(&c->stable.hash, c->oldcsum[q], tree);
	q = p + CMD_AHEAD_CHAIN;
	if (ahead_tree(c, q, &tree)) {
		uint32_t i;

		kit_prefetch_chain(&c->stable.hash, c->stable.key, c->oldcsum[q], tree);
		if ((i = kit_hash_first(&c->unstable.hash, c->oldcsum[q], tree)) != 0)
			kit_prefetch(&c->un[i - 1]); /* the unstable chain's first node */
	}
}

static int cmd_batch(void *st, uint64_t now_ns, uint64_t *sleep_ns)
{
	struct cmd *c = st;
	struct bk_page_info info;
	uint64_t visits = 0;
	int rc;

	c->now_ns = now_ns;
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
		cmd_ahead(c, p);
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

	c->changes++;
	if (!(what & (ALGO_CHANGE_COW | ALGO_CHANGE_UNMAPPED)))
		return 0;
	if (c->flags[p] & PG_ONZERO) {
		c->flags[p] &= (uint8_t)~PG_ONZERO;
		c->zero_pages--;
	}
	if (c->stable.of_page[p])
		detach(c, p);
	if (what & ALGO_CHANGE_UNMAPPED)
		untrack(c, p);
	return 0;
}

static int cmd_set_param(void *st, uint32_t idx, double value, struct sp_err *err)
{
	struct cmd *c = st;
	uint64_t v = (uint64_t)value;

	c->changes++;
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
		if (kit_refuse_while_shared("cmd", cmd_params[idx].name, c->stable.shared, err) < 0)
			return SP_EINVAL;
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
	int64_t vol = c->tracked - c->stable.shared - c->stable.sharing - c->unstable.members;

	m->pages_shared = c->stable.shared;
	m->pages_sharing = c->stable.sharing;
	m->pages_unshared = c->unstable.members;
	m->pages_volatile = vol < 0 ? 0 : vol;
	m->full_scans = c->full_scans;
	m->pages_scanned = c->pages_scanned;
	m->ksm_zero_pages = c->zero_pages;
	m->general_profit = metrics_general_profit(m, c->page_size, c->tracked);
}

/* ---- idle fast-forward (algo_ops.repeat/skip) ---------------------------- */

/*
 * The cycle is one full scan once nothing changes: at the end of a scan
 * (the unstable trees just emptied) the per-page state is compared with a
 * copy taken at the end of an earlier one (kit.h's struct kit_cycle says
 * when).  Equal but for the work counters, the unstable set's generation
 * (ahead by the scans between, with every member's) and the write history
 * of the pages visited (private, tracked pages: shifted left by their
 * visits, a zero as the checksum held; only its low `history` bits decide
 * the class, so they must be zero for a visited page): then every later
 * scan repeats.
 * The stable table only changes with a merge (the counters) or a change
 * heard, and the unstable hash is empty at the end of a scan.
 */
#define CMD_FF_SPAN 64

struct cmd_ff {
	struct kit_cycle cy;
	uint64_t ns;                  /* the copy's batch start */
	int64_t full_scans, pages_scanned;
	uint32_t cur;                 /* the unstable set's generation */
	uint8_t *flags, *cls;
	uint32_t *oldcsum, *hist;
	struct kit_unode *un;         /* the unstable nodes */
	int64_t d_scans, d_scanned;   /* the last cycle's growth */
};

static void cmd_ff_free(struct cmd *c)
{
	struct cmd_ff *f = c->ff;

	if (!f)
		return;
	free(f->flags);
	free(f->cls);
	free(f->oldcsum);
	free(f->hist);
	free(f->un);
	free(f);
	c->ff = NULL;
}

static bool cmd_ff_copy(struct cmd *c)
{
	struct cmd_ff *f = c->ff;
	uint64_t n = c->npages + 1;

	if (!f->flags) {
		f->flags = malloc(n);
		f->cls = malloc(n);
		f->oldcsum = malloc(n * sizeof(*f->oldcsum));
		f->hist = malloc(n * sizeof(*f->hist));
		f->un = malloc(n * sizeof(*f->un));
		if (!f->flags || !f->cls || !f->oldcsum || !f->hist || !f->un) {
			struct cmd_ff keep = { .cy = f->cy };

			cmd_ff_free(c); /* and start afresh: no fast-forward while memory is short */
			c->ff = calloc(1, sizeof(*c->ff));
			if (c->ff)
				*c->ff = keep;
			return false;
		}
	}
	memcpy(f->flags, c->flags, n);
	memcpy(f->cls, c->cls, n);
	memcpy(f->oldcsum, c->oldcsum, n * sizeof(*f->oldcsum));
	memcpy(f->hist, c->hist, n * sizeof(*f->hist));
	memcpy(f->un, c->un, n * sizeof(*f->un));
	f->ns = c->now_ns;
	f->full_scans = c->full_scans;
	f->pages_scanned = c->pages_scanned;
	f->cur = c->unstable.cur;
	return true;
}

/* Whether the scanner hashes page p at every visit now: tracked, not mapping one of our frames. */
static bool cmd_ff_visited(const struct cmd *c, bk_page p)
{
	return (c->flags[p] & PG_TRACKED) && !c->stable.of_page[p];
}

/* Page p's write history after scans more visits, if the scanner visits it (else h). */
static uint32_t cmd_ff_hist(const struct cmd *c, bk_page p, uint32_t h, uint64_t scans)
{
	if (!cmd_ff_visited(c, p))
		return h;
	return scans >= 32 ? 0 : h << scans;
}

static bool cmd_ff_page_equal(const struct cmd *c, const struct cmd_ff *f, bk_page p,
			      uint64_t scans, uint32_t mask)
{
	const struct kit_unode *now = &c->un[p], *then = &f->un[p];

	return f->flags[p] == c->flags[p] && f->cls[p] == c->cls[p] &&
	       f->oldcsum[p] == c->oldcsum[p] && (then->gen != 0) == (now->gen != 0) &&
	       c->hist[p] == cmd_ff_hist(c, p, f->hist[p], scans) &&
	       !(cmd_ff_visited(c, p) && (f->hist[p] & mask)) &&
	       (!now->gen || (now->gen == kit_gen_add(then->gen, scans) &&
			      now->key.csum == then->key.csum && now->key.part == then->key.part));
}

static bool cmd_ff_equal(struct cmd *c, struct cmd_ff *f)
{
	uint64_t scans = (uint64_t)(c->full_scans - f->full_scans);
	uint32_t mask = c->history >= 32 ? UINT32_MAX : (1u << c->history) - 1;

	if (c->unstable.cur != kit_gen_add(f->cur, scans))
		return false;
	if (f->cy.hint < c->npages && !cmd_ff_page_equal(c, f, f->cy.hint, scans, mask))
		return false;
	for (bk_page p = 0; p < c->npages; p++) {
		if (!cmd_ff_page_equal(c, f, p, scans, mask)) {
			f->cy.hint = p;
			return false;
		}
	}
	return true;
}

static bool cmd_repeat(void *st, uint64_t idle_ns, uint64_t *since_ns)
{
	struct cmd *c = st;
	struct cmd_ff *f = c->ff;
	int64_t sig[KIT_CYCLE_SIG] = { c->stable.shared, c->stable.sharing, c->stable.used,
				       c->stable.free_head, c->tracked, c->zero_pages,
				       c->unstable.members, c->ntrees, c->parts.n };
	enum kit_cycle_do do_;

	if (!f) {
		f = c->ff = calloc(1, sizeof(*f));
		if (!f)
			return false;
		kit_cycle_init(&f->cy, CMD_FF_SPAN);
	}
	do_ = kit_cycle_step(&f->cy, c->full_scans, sig, c->changes, c->now_ns, idle_ns, 1);
	if (do_ == KIT_CYCLE_COMPARE && cmd_ff_equal(c, f)) {
		*since_ns = f->ns;
		f->d_scans = c->full_scans - f->full_scans;
		f->d_scanned = c->pages_scanned - f->pages_scanned;
		kit_cycle_copied(&c->ff->cy, cmd_ff_copy(c)); /* the next cycle starts here */
		return c->ff && c->ff->cy.have;
	}
	if (do_ == KIT_CYCLE_COPY || (do_ == KIT_CYCLE_COMPARE && kit_cycle_missed(&f->cy)))
		kit_cycle_copied(&f->cy, cmd_ff_copy(c));
	return false;
}

static void cmd_skip(void *st, uint64_t n, uint64_t cycle_ns)
{
	struct cmd *c = st;
	struct cmd_ff *f = c->ff;
	uint64_t scans = n * (uint64_t)f->d_scans;

	(void)cycle_ns; /* no times kept */
	c->full_scans += (int64_t)scans;
	c->pages_scanned += (int64_t)n * f->d_scanned;
	c->unstable.cur = kit_gen_add(c->unstable.cur, scans);
	for (bk_page p = 0; p < c->npages; p++) {
		if (c->un[p].gen)
			c->un[p].gen = kit_gen_add(c->un[p].gen, scans);
		c->hist[p] = cmd_ff_hist(c, p, c->hist[p], scans);
	}
	kit_cycle_forget(&f->cy, c->full_scans);
}

static void cmd_destroy(void *st)
{
	struct cmd *c = st;

	if (!c)
		return;
	cmd_ff_free(c);
	kit_parts_release(&c->parts);
	kit_stable_release(&c->stable);
	kit_unstable_release(&c->unstable);
	free(c->ssize);
	free(c->usize);
	sp_hot_free(c->oldcsum, c->npages + 1, sizeof(*c->oldcsum));
	sp_hot_free(c->hist, c->npages + 1, sizeof(*c->hist));
	sp_hot_free(c->un, c->npages + 1, sizeof(*c->un));
	sp_hot_free(c->cls, c->npages + 1, 1);
	sp_hot_free(c->flags, c->npages + 1, 1);
	free(c);
}

static int cmd_create(void **out, const struct algo_params *prm, const struct algo_env *env,
		      struct sp_err *err)
{
	struct cmd *c = calloc(1, sizeof(*c));
	size_t n;

	*out = NULL;
	if (!c)
		return sp_err_set(err, SP_ENOMEM, "cmd: out of memory");
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
	c->oldcsum = sp_hot_calloc(n, sizeof(*c->oldcsum));
	c->hist = sp_hot_calloc(n, sizeof(*c->hist));
	c->cls = sp_hot_calloc(n, 1);
	c->flags = sp_hot_calloc(n, 1);
	c->un = sp_hot_calloc(n, sizeof(*c->un));
	if (!c->oldcsum || !c->hist || !c->cls || !c->flags || !c->un ||
	    kit_parts_init(&c->parts) < 0 ||
	    kit_stable_init(&c->stable, c->npages, c->npages / CMD_BUCKET_DIV) < 0 ||
	    kit_unstable_init(&c->unstable, c->un, sizeof(*c->un), c->npages / CMD_BUCKET_DIV) < 0 ||
	    kit_hash_pair(&c->stable.hash, &c->unstable.hash) < 0) {
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
	.caps = ALGO_CAP_SCANNER | ALGO_CAP_NODES | ALGO_CAP_LINUX,
	.params = cmd_params,
	.nparams = sizeof(cmd_params) / sizeof(cmd_params[0]),
	.create = cmd_create,
	.destroy = cmd_destroy,
	.batch = cmd_batch,
	.page_changed = cmd_page_changed,
	.set_param = cmd_set_param,
	.metrics = cmd_metrics,
	.repeat = cmd_repeat,
	.skip = cmd_skip,
};
