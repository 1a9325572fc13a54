/*
 * uksm.c - implements the "uksm" merger: a model of UKSM (N. Xia, C. Tian,
 * Y. Luo, H. Liu, X. Wang, "UKSM: Swift Memory Deduplication via
 * Hierarchical and Adaptive Memory Region Distilling", FAST 2018).
 *
 * The idea.  KSM gives every page the same attention; UKSM spends its CPU
 * where duplicates are.  Memory is divided into regions (UKSM's VMAs; here
 * fixed groups of region_pages pages of one guest), each on one of `levels`
 * scanning levels.  A higher level gets more of the scanning budget and
 * samples its regions more densely: at level l a region sweep visits every
 * level_stride^(levels - 1 - l)-th page (the top level visits every page),
 * starting one page further at each sweep so all pages are covered in time.
 * At the end of each sweep a region's statistics decide its level:
 *   duplicate ratio  pages newly merged / pages sampled in the sweep;
 *   COW ratio        COW breaks of its merged pages / (breaks + merged pages);
 *   page lifetime    visits a sampled page kept its hash, on average
 *                    (sampled pages seen before / those whose hash changed).
 * A region with a COW ratio above max_cow_ratio, a lifetime below
 * min_lifetime or a duplicate ratio below demote_dup_ratio is demoted one
 * level ("thrashing area avoidance": volatile regions are skipped instead of
 * filtering each page by its checksum as KSM does); one whose duplicate
 * ratio reaches promote_dup_ratio is promoted one level.  New regions start
 * at the bottom.  A sampled page is hashed and looked up at once in the
 * stable and unstable structures (no two-visit volatility filter): a match
 * is confirmed by a full compare and merged.
 *
 * Adaptive partial hashing.  UKSM hashes only hash_strength of the 1024
 * 32-bit words of a page.  A weaker hash is cheaper but lets different
 * pages collide, each collision costing a futile full compare.  UKSM tunes
 * the strength globally, climbing towards the least total cost: every 1024
 * hashed pages it compares the cost per page (hash + futile compares) with
 * the previous period's and keeps halving or doubling the strength while the
 * cost falls, reversing when it rises.  Modelled here as: a hash of strength
 * s costs s/1024 of a checksum (accounted with account(BK_COST_CHECKSUM) in
 * whole checksums as the fractions add up), and tells pages apart like a
 * (16 + log2 s)-bit hash, so a lookup in a structure of n entries costs
 * n / 2^(16 + log2 s) futile compares (accounted with
 * account(BK_COST_COMPARE), likewise).  Identity comes from the backend's
 * checksum (checksum_uncounted() where the backend offers it).
 *
 * Structures.
 *   rg[r]    regions: first page, pages, level, index in its level's list,
 *            sweep state (offset, next k) and the sweep's statistics.
 *   lv[l]    per level: the list of its regions and a cursor.
 *   stable   kit.h's stable table: one entry per shared frame, keyed
 *            (checksum, partition) - kit.h's (security domain, NUMA node
 *            unless merge_across_nodes) - with its live mappers through us
 *            and the entry each page maps.
 *   unstable kit.h's per-page unstable set, keyed (checksum, partition)
 *            (a generation a page; a full scan empties the buckets), its
 *            nodes in pg[].  Its buckets and the stable table's are paired
 *            (kit_hash_pair(): both lookups of a page read one line),
 *            npages / UKSM_BUCKET_DIV of each.
 *   pg[p]    per page, one 24-byte record (a visit reads one record, not
 *            three arrays): un, the unstable node, whose key's checksum is
 *            also the hash at the last visit (valid with PG_CSUM); rf, its
 *            region << RID_SHIFT | its flags.
 *
 * Invariants.
 *   - pages_shared == stable entries in use; pages_sharing == sum of
 *     (live - 1) == the backend's mappers - 1 over our frames, at every
 *     instant (COW breaks and unmaps are applied when reported).
 *   - rg[r].merged == pages of region r mapping one of our frames.
 *   - pages_unshared == members of the unstable set (an old node counts
 *     until its page is visited again, as in the kernel); pages_volatile == tracked -
 *     pages_shared - pages_sharing - pages_unshared.
 *   - Lookups match only equal (checksum, partition): pages of different
 *     security domains are never compared or merged.
 *
 * Counters: pages_shared, pages_sharing, pages_unshared, pages_volatile,
 * full_scans (rounds in which every non-empty level went once through its
 * regions; the unstable structure is emptied at each), pages_scanned (page
 * samples), ksm_zero_pages, general_profit = (pages_sharing +
 * ksm_zero_pages) * page_size - 64 B * tracked pages.  checksums counts
 * checksum-equivalents of partial hashing, not pages hashed.
 *
 * Notes (simplifications of the model).
 *  - Regions are fixed groups of region_pages pages of one guest instead of
 *    VMAs; they never split or merge.
 *  - The collision model above stands for the similarity of real pages,
 *    which a fingerprint trace does not record; only the cost of collisions
 *    is modelled (a futile compare never merges anything).
 *  - The stable and unstable trees are hash tables on (checksum,
 *    partition), each search charged the height of a balanced tree of all
 *    their entries (tree steps), as ksm.c charges its unstable tree.
 *  - The budget: pages_to_scan page samples every sleep_millisecs (taken
 *    literally), shared among non-empty levels in proportion 1:2:4:...
 *    from the bottom level up; UKSM's CPU governor (cpu_ratio) is not
 *    modelled.  Samples of absent pages cost a visit; pages already merged
 *    cost a visit and are not hashed.
 *  - Stable frames have no sharing limit (no max_page_sharing chains).
 *  - Zero pages map the backend's zero page (use_zero_pages, default on, as
 *    UKSM merges full zero pages to its own zero page).
 *  - COW breaks and unmaps update the counters at once; a COW break counts
 *    against its region's next evaluation.
 *  - region_pages and levels cannot change at run time.
 *  - It runs inside Linux (ALGO_CAP_LINUX): a merge splits a transparent huge
 *    page the way the --kernel version does (from 6.12 the split maps the
 *    zero-filled subpages to the zero page; sim_huge_for()).
 */
#include <assert.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "algorithm.h"
#include "kit.h"
#include "sp_bigmem.h"

enum {
	P_PAGES_TO_SCAN,
	P_SLEEP_MILLISECS,
	P_REGION_PAGES,
	P_LEVELS,
	P_LEVEL_STRIDE,
	P_PROMOTE_DUP_RATIO,
	P_DEMOTE_DUP_RATIO,
	P_MAX_COW_RATIO,
	P_MIN_LIFETIME,
	P_HASH_STRENGTH,
	P_ADAPTIVE_HASH,
	P_USE_ZERO_PAGES,
	P_MERGE_ACROSS_NODES,
};

static const struct algo_param uksm_params[] = {
	{ "pages_to_scan", "page samples per batch, over all levels", 100, 0, 1e7, true },
	{ "sleep_millisecs", "sleep between batches, ms", 20, 0, 1e6, true },
	{ "region_pages", "pages per region (fixed groups of one guest's pages)", 512, 16, 1048576,
	  true },
	{ "levels", "scanning levels; a higher level gets more budget and denser sampling", 4, 1, 8,
	  true },
	{ "level_stride", "sampling stride grows by this factor per level down", 4, 1, 64, true },
	{ "promote_dup_ratio", "promote a region whose sweep merged at least this fraction", 0.1, 0,
	  1, false },
	{ "demote_dup_ratio", "demote a region whose sweep merged less than this fraction", 0.01, 0,
	  1, false },
	{ "max_cow_ratio", "demote a region whose COW breaks exceed this fraction of its merges",
	  0.25, 0, 1, false },
	{ "min_lifetime", "demote a region whose pages keep their hash fewer visits than this", 2, 0,
	  1e6, false },
	{ "hash_strength", "initial partial hash strength: 32-bit words hashed of 1024", 64, 1, 1024,
	  true },
	{ "adaptive_hash", "1: tune hash_strength for the least hash + futile compare cost", 1, 0, 1,
	  true },
	{ "use_zero_pages", "1: zero-filled pages map the shared zero page (ksm_zero_pages)", 1, 0,
	  1, true },
	{ "merge_across_nodes", "1: pages of different NUMA nodes may share; 0: never", 1, 0, 1,
	  true },
};

#define MAX_LEVELS 8
/*
 * Buckets of the stable and the unstable hash each, npages / this, paired
 * (till the nineteenth round, bench/README.md issue 14: unpaired, the
 * unstable's 2 a page, the stable's 1 in 8).  The count changes no result,
 * only the chains' lengths.
 */
#define UKSM_BUCKET_DIV 2u
#define ADAPT_PERIOD 1024u

#define PG_TRACKED 0x01u
#define PG_CSUM 0x02u
#define PG_MERGED 0x04u /* maps one of our frames (stable.of_page[p]): a lookahead hint */
#define PG_ONZERO 0x08u
#define PG_STALE 0x10u /* written() said 1 at the lookahead: hash at the next visit (see visit()) */
#define RID_SHIFT 5 /* pg[p].rf: the flags above in its low bits, the region above them */
#define MAX_REGIONS (UINT32_MAX >> RID_SHIFT)

struct upage {
	struct kit_unode un; /* the unstable node; un.key.csum: the hash at the last visit (with PG_CSUM) */
	uint32_t rf;
};

struct region {
	uint64_t first;
	uint32_t npages;
	uint32_t level;
	uint32_t pos;      /* index in its level's list */
	uint32_t offset;   /* first page of the current sweep, < stride */
	uint32_t next;     /* next page of the current sweep (relative) */
	uint32_t merged;   /* pages mapping our frames now */
	uint32_t sampled, dups, seen, changed, cows;
};

struct level {
	uint32_t *list;
	uint32_t n;
	uint32_t cursor;
	bool wrapped;
};

struct uksm {
	const struct backend_ops *ops;
	void *impl;

	uint64_t pages_to_scan, sleep_ms;
	uint32_t region_pages, nlevels, stride_factor;
	double promote, demote, max_cow, min_life;
	bool adaptive, use_zero, across;

	uint64_t npages;
	uint32_t page_size, zero_sum;

	struct region *rg;
	uint32_t nregions;
	struct level lv[MAX_LEVELS];

	struct kit_parts parts;
	struct kit_stable stable;
	struct kit_unstable unstable; /* its nodes: pg[p].un */
	struct upage *pg;
	uint32_t pf_part;       /* lookahead: the latest lookup's partition */
	bool track;             /* a page's hash kept while written() says 0 (see visit()) */

	/* adaptive partial hashing */
	uint32_t strength;
	uint32_t coll_strength;  /* the strength coll_slots is for (0: none yet) */
	double coll_slots;       /* 2^(16 + log2(strength)): collisions()' divisor */
	int dir;                /* -1: halving, +1: doubling */
	double hash_acc, futile_acc, prev_cost;
	uint64_t period_hashed, period_futile_x1k;

	int64_t tracked, zero_pages;
	int64_t full_scans, pages_scanned, promotions, demotions;
};

/* ---- helpers ------------------------------------------------------------ */

static inline struct region *region_of(const struct uksm *u, bk_page p)
{
	return &u->rg[u->pg[p].rf >> RID_SHIFT];
}

static uint32_t stride_of(const struct uksm *u, uint32_t level)
{
	uint64_t s = 1;

	for (uint32_t l = level + 1; l < u->nlevels; l++) {
		s *= u->stride_factor;
		if (s >= u->region_pages)
			return u->region_pages;
	}
	return (uint32_t)s;
}

/* ---- levels --------------------------------------------------------------- */

static void level_add(struct uksm *u, uint32_t r, uint32_t l)
{
	struct level *L = &u->lv[l];

	u->rg[r].level = l;
	u->rg[r].pos = L->n;
	L->list[L->n++] = r;
}

/* Removes region r from its level's list; the region moved into its place is visited next. */
static void level_remove(struct uksm *u, uint32_t r)
{
	struct level *L = &u->lv[u->rg[r].level];
	uint32_t i = u->rg[r].pos, last = L->list[--L->n];

	L->list[i] = last;
	u->rg[last].pos = i;
	if (L->cursor > i)
		L->cursor = i;
	if (L->cursor >= L->n) {
		L->cursor = 0;
		L->wrapped = true;
	}
}

/* End of a region's sweep: its statistics decide its level. */
static void evaluate(struct uksm *u, uint32_t r)
{
	struct region *R = &u->rg[r];
	uint32_t l = R->level, to = l;
	double dup = R->sampled ? (double)R->dups / R->sampled : 0;
	double cow = R->cows ? (double)R->cows / (R->cows + R->merged) : 0;
	bool short_life = R->changed && (double)R->seen / R->changed < u->min_life;

	if (!R->sampled && !R->cows)
		return; /* nothing seen this sweep (a region smaller than the stride) */
	if (l > 0 && (cow > u->max_cow || short_life || dup < u->demote))
		to = l - 1;
	else if (l + 1 < u->nlevels && dup >= u->promote && R->sampled)
		to = l + 1;
	R->sampled = R->dups = R->seen = R->changed = R->cows = 0;
	if (to == l)
		return;
	if (to > l)
		u->promotions++;
	else
		u->demotions++;
	level_remove(u, r);
	level_add(u, r, to);
	R->offset = 0;
	R->next = 0;
}

/* ---- stable and unstable structures ------------------------------------- */

/* Page p of region R maps entry i's frame now. */
static void attach(struct uksm *u, struct region *R, bk_page p, uint32_t i)
{
	kit_stable_attach(&u->stable, p, i);
	u->pg[p].rf |= PG_MERGED;
	R->merged++;
	R->dups++;
}

static void detach(struct uksm *u, bk_page p)
{
	kit_stable_detach(&u->stable, p);
	u->pg[p].rf &= ~PG_MERGED;
	region_of(u, p)->merged--;
}

static void untrack(struct uksm *u, bk_page p)
{
	if (!(u->pg[p].rf & PG_TRACKED))
		return;
	kit_unstable_remove(&u->unstable, p, NULL);
	u->pg[p].rf &= ~(PG_TRACKED | PG_CSUM);
	u->tracked--;
}

/* ---- adaptive partial hashing -------------------------------------------- */

/* Hashes p at the current strength: the backend's checksum for identity, a fraction of its cost. */
static uint32_t partial_hash(struct uksm *u, bk_page p, const uint32_t *kept)
{
	uint32_t h;

	if (!u->ops->checksum_uncounted)
		return u->ops->checksum(u->impl, p); /* no cheaper hash offered: a full one */
	if (kept) {
		h = *kept;
		assert(h == u->ops->checksum_uncounted(u->impl, p));
	} else {
		h = u->ops->checksum_uncounted(u->impl, p);
	}
	u->hash_acc += u->strength / 1024.0;
	if (u->hash_acc >= 1.0) {
		uint64_t n = (uint64_t)u->hash_acc;

		u->ops->account(u->impl, BK_COST_CHECKSUM, n);
		u->hash_acc -= (double)n;
	}
	return h;
}

/* Futile compares of a lookup among n entries at the current strength. */
static void collisions(struct uksm *u, uint64_t n)
{
	double x;

	if (u->coll_strength != u->strength) { /* log2() and exp2() once a strength, not twice a visit */
		u->coll_strength = u->strength;
		u->coll_slots = exp2(16.0 + log2((double)u->strength));
	}
	x = (double)n / u->coll_slots;

	u->futile_acc += x;
	u->period_futile_x1k += (uint64_t)(x * 1000.0 + 0.5);
	if (u->futile_acc >= 1.0) {
		uint64_t k = (uint64_t)u->futile_acc;

		u->ops->account(u->impl, BK_COST_COMPARE, k);
		u->futile_acc -= (double)k;
	}
}

/* Every ADAPT_PERIOD hashed pages: one step of the hill climb on the cost per page. */
static void adapt(struct uksm *u)
{
	double cost;

	if (++u->period_hashed < ADAPT_PERIOD)
		return;
	cost = u->strength / 1024.0 + (double)u->period_futile_x1k / 1000.0 / u->period_hashed;
	if (u->prev_cost > 0 && cost > u->prev_cost)
		u->dir = -u->dir;
	u->prev_cost = cost;
	u->period_hashed = 0;
	u->period_futile_x1k = 0;
	if (!u->adaptive)
		return;
	if (u->dir < 0 && u->strength > 1)
		u->strength /= 2;
	else if (u->dir > 0 && u->strength < 1024)
		u->strength *= 2;
}

/* ---- the scanner ------------------------------------------------------------ */

#ifndef NDEBUG
/* What page_info() says of a page we hold merged (PG_MERGED, PG_ONZERO): visit() skips it. */
static bool visit_known(const struct uksm *u, bk_page p)
{
	struct bk_page_info info;
	uint32_t rf = u->pg[p].rf;

	u->ops->page_info(u->impl, p, &info);
	if (!info.present || !!(rf & PG_MERGED) == !!(rf & PG_ONZERO))
		return false;
	if (rf & PG_ONZERO)
		return info.frame == BK_ZERO_FRAME && !(rf & PG_TRACKED);
	return info.frame != BK_ZERO_FRAME && info.frame != BK_NO_FRAME && (rf & PG_TRACKED) &&
	       u->stable.of_page[p] && u->stable.frame[u->stable.of_page[p]] == info.frame;
}
#endif

/* Samples page p of region R. */
static int visit(struct uksm *u, struct region *R, bk_page p)
{
	const struct backend_ops *ops = u->ops;
	struct upage *pg = &u->pg[p];
	struct bk_page_info info;
	struct kit_stable *st = &u->stable;
	uint32_t csum, part, i, q1;
	uint64_t nstable = (uint64_t)st->shared, nunstable = u->unstable.linked;
	bk_frame f;
	int rc;

	u->pages_scanned++;
	ops->account(u->impl, BK_COST_VISIT, 1);
	if ((pg->rf & (PG_MERGED | PG_ONZERO)) && ops->prefetch) {
		/*
		 * It maps one of our frames (tracked: sampled, nothing more) or
		 * the zero page through us (untracked: nothing): what
		 * page_info() would say, read from our own record, since
		 * page_changed() clears both flags at every COW break or unmap.
		 * A backend without prefetch() (the tests' rigs, which count a
		 * page's page_info() calls as its samples) is asked as before,
		 * as ahead_key() keeps its stored key.
		 */
		assert(visit_known(u, p));
		if (pg->rf & PG_MERGED)
			R->sampled++;
		return 0;
	}
	ops->page_info(u->impl, p, &info);
	if (!info.present || info.frame == BK_ZERO_FRAME) {
		untrack(u, p);
		return 0;
	}
	if (!(pg->rf & PG_TRACKED)) {
		pg->rf = (pg->rf & ~PG_CSUM) | PG_TRACKED;
		u->tracked++;
	}
	R->sampled++;
	if (info.frame != BK_NO_FRAME)
		return 0; /* merged already */
	kit_unstable_remove(&u->unstable, p, NULL);
	/*
	 * The hash kept from p's last hashing is p's hash now when written()
	 * says p unwritten since the call made right before that hashing (and
	 * the lookahead's call in between said so too: else PG_STALE): the
	 * content, a random line at size, is not read.  The same value and the
	 * same cost in the model (partial_hash()); every hashing follows a
	 * written() call while track holds.
	 */
	if (u->track) {
		bool stale = (pg->rf & PG_STALE) || u->ops->written(u->impl, p);

		pg->rf &= ~PG_STALE;
		csum = partial_hash(u, p, !stale && (pg->rf & PG_CSUM) ? &pg->un.key.csum : NULL);
	} else {
		csum = partial_hash(u, p, NULL);
	}
	if (pg->rf & PG_CSUM) {
		R->seen++;
		if (pg->un.key.csum != csum)
			R->changed++;
	}
	pg->un.key.csum = csum;
	pg->rf |= PG_CSUM;
	adapt(u);
	if (u->use_zero && csum == u->zero_sum && ops->merge_zero(u->impl, p) == 0) {
		untrack(u, p);
		pg->rf |= PG_ONZERO;
		u->zero_pages++;
		R->dups++;
		return 0;
	}
	rc = kit_part(&u->parts, &info, u->across, &part);
	if (rc < 0)
		return rc;
	u->pf_part = part;
	ops->account(u->impl, BK_COST_TREE_STEP, kit_tree_depth(nstable));
	collisions(u, nstable);
	for (i = kit_hash_first(&st->hash, csum, part); i; i = st->key[i].next) {
		if (st->key[i].csum != csum || st->key[i].part != part)
			continue;
		if (ops->compare_frame(u->impl, p, st->frame[i]) == 0 &&
		    ops->merge_frame(u->impl, p, st->frame[i]) == 0) {
			attach(u, R, p, i);
			return 0;
		}
	}
	ops->account(u->impl, BK_COST_TREE_STEP, kit_tree_depth(nunstable));
	collisions(u, nunstable);
	for (q1 = kit_hash_first(&u->unstable.hash, csum, part); q1; q1 = u->pg[q1 - 1].un.key.next) {
		bk_page q = q1 - 1;

		if (u->pg[q].un.key.csum != csum || u->pg[q].un.key.part != part)
			continue;
		if (ops->compare(u->impl, p, q) != 0)
			continue;
		if (ops->merge_pages(u->impl, q, p, &f) < 0)
			break;
		kit_unstable_remove(&u->unstable, q, NULL);
		rc = kit_stable_add(st, f, csum, part, &i);
		if (rc < 0)
			return rc;
		attach(u, R, p, i);
		attach(u, region_of(u, q), q, i);
		return 0;
	}
	kit_unstable_insert(&u->unstable, p, csum, part);
	return 0;
}

/*
 * Lookahead, in a level's strided order, where no hardware prefetcher helps.
 * scan_level() draws the pages it will visit into a ring, up to AHEAD_INFO
 * + AHEAD_GROUP visits ahead of the one it visits (never beyond its
 * budget), and every AHEAD_GROUP visits runs four stages, each for the
 * AHEAD_GROUP pages it is due for, back to back:
 *   info   AHEAD_INFO ahead, the backend's page record (prefetch_info())
 *          and our pg[];
 *   far    AHEAD_FAR ahead, unless the page maps a frame through us
 *          (PG_MERGED, PG_ONZERO: visit() stops at pg[]) or its kept
 *          hash holds (the backend's written() says 0; a 1 is kept in
 *          PG_STALE for the visit), what the backend's prefetch() loads
 *          from the record (the content);
 *   near   AHEAD_NEAR ahead, for a page that will be looked up, its pair of
 *          buckets, keyed by its checksum now (ahead_key(): the kept hash
 *          when it holds);
 *   chain  AHEAD_CHAIN ahead, the first entries of those buckets' chains.
 * A prefetch whose address misses the TLB holds the visit's retirement
 * until it is translated (long under a VM's nested paging; measured on a
 * Zen 5 Firecracker guest); sixteen in a row wait for their translations
 * together (bench/README.md, issue 14, seventeenth and eighteenth rounds).
 * At 32M pages a steady scan's samples hop between regions all over memory
 * (the levels' lists are shuffled by promotions and demotions), so nearly
 * every line a visit reads is such a miss.  The ring assumes that no sweep
 * ending on the way moves a region; when one does, the ring is drawn again
 * from the level's cursor (a wrong
 * page in it is a wasted hint, nothing more).  Until the eighteenth round
 * each stage looked its page up at every visit (peek(), up to 4 regions on)
 * and the buckets were keyed by the checksum stored at the page's last
 * visit (none at its first, stale after a snapshot).
 */
#define AHEAD_GROUP 16u
#define AHEAD_CHAIN 4u
#define AHEAD_NEAR (AHEAD_CHAIN + AHEAD_GROUP)
#define AHEAD_FAR (AHEAD_NEAR + AHEAD_GROUP)
#define AHEAD_INFO (AHEAD_FAR + AHEAD_GROUP)
#define RING 128u /* >= AHEAD_INFO + AHEAD_GROUP, a power of two */
#define NO_PAGE UINT64_MAX

_Static_assert(RING >= AHEAD_INFO + AHEAD_GROUP && (RING & (RING - 1)) == 0,
	       "the ring holds the lookahead");

struct ahead {
	uint64_t ring[RING]; /* the page of visit k at k % RING, NO_PAGE: not known */
	uint64_t k;          /* visits made in this scan_level() */
	uint64_t drawn;      /* visits drawn into the ring */
	uint64_t limit;      /* the budget: no visit beyond it is drawn */
	uint64_t due;        /* the visit at which the stages run next */
	uint32_t c, next;    /* the drawing's place: the level's list index, that region's next */
	uint32_t hops;       /* regions passed since the drawing started (stops at a full turn) */
};

/* Starts drawing the ring at visit a->k from the level's cursor. */
static void ahead_restart(const struct uksm *u, const struct level *L, struct ahead *a)
{
	a->drawn = a->k;
	a->due = a->k;
	a->c = L->cursor;
	a->next = u->rg[L->list[L->cursor]].next;
	a->hops = 0;
}

/* The next page the level's sweeps visit after those drawn, NO_PAGE past a full turn. */
static uint64_t ahead_draw(const struct uksm *u, const struct level *L, uint32_t stride,
			   struct ahead *a)
{
	while (a->hops < L->n) {
		const struct region *R = &u->rg[L->list[a->c]];
		uint64_t k = R->offset + (uint64_t)a->next * stride;

		if (k < R->npages) {
			a->next++;
			return R->first + k;
		}
		if (++a->hops == L->n)
			break; /* back at the region the drawing started in: its sweep has moved on */
		a->c = a->c + 1 < L->n ? a->c + 1 : 0;
		a->next = u->rg[L->list[a->c]].next;
	}
	return NO_PAGE;
}

/*
 * The key page q's lookups will use, for the lookahead: its checksum now
 * (the backend's, uncounted: a hint, no cost in the model; its content was
 * prefetched AHEAD_FAR ahead), else - a backend that prefetches nothing -
 * the one stored at its last visit.  False for a page that looks nothing up
 * (it maps a frame) or has no key.
 */
static inline bool ahead_key(const struct uksm *u, bk_page q, uint32_t *c)
{
	uint32_t rf = u->pg[q].rf;

	if (rf & (PG_MERGED | PG_ONZERO))
		return false;
	if (u->track && (rf & PG_CSUM) && !(rf & PG_STALE)) {
		*c = u->pg[q].un.key.csum; /* unwritten since its hashing (the far stage asked) */
		return true;
	}
	if (u->ops->checksum_uncounted && u->ops->prefetch) {
		*c = u->ops->checksum_uncounted(u->impl, q);
		return true;
	}
	*c = u->pg[q].un.key.csum;
	return (rf & PG_CSUM) != 0;
}

/* The stages due at visit a->k (a->due): draws the ring on, then prefetches. */
static void uksm_ahead(struct uksm *u, const struct level *L, uint32_t stride,
		       struct ahead *a)
{
	const void *line[2 * AHEAD_GROUP]; /* the near and chain stages', gathered then prefetched */
	uint64_t j, end, q, k = a->k;
	uint32_t c, nl = 0;

	for (end = k + AHEAD_INFO + AHEAD_GROUP; a->drawn < end; a->drawn++)
		a->ring[a->drawn % RING] =
			a->drawn < a->limit ? ahead_draw(u, L, stride, a) : NO_PAGE;
	a->due = k + AHEAD_GROUP;
	for (j = k + AHEAD_INFO, end = j + AHEAD_GROUP; j < end; j++) {
		q = a->ring[j % RING];
		if (q != NO_PAGE) {
			kit_prefetch(&u->pg[q]);
			kit_prefetch(&u->pg[q].rf); /* its last bytes: a record may end in the next line */
		}
	}
	if (u->ops->prefetch_info)
		for (j = k + AHEAD_INFO; j < end; j++) {
			q = a->ring[j % RING];
			if (q != NO_PAGE)
				u->ops->prefetch_info(u->impl, q);
		}
	for (j = k + AHEAD_FAR, end = j + AHEAD_GROUP; j < end; j++) {
		uint32_t *rf;

		q = a->ring[j % RING];
		if (q == NO_PAGE || !u->ops->prefetch)
			continue;
		rf = &u->pg[q].rf;
		if (*rf & (PG_MERGED | PG_ONZERO))
			continue; /* visit() stops at pg[] for those */
		/*
		 * A page whose kept hash holds (track: unwritten since its last
		 * hashing; the answer is kept for its visit in PG_STALE) needs
		 * no content: its record and slot were asked for at the info stage.
		 */
		if (u->track && (*rf & (PG_CSUM | PG_STALE)) == PG_CSUM) {
			if (!u->ops->written(u->impl, q))
				continue;
			*rf |= PG_STALE;
		}
		u->ops->prefetch(u->impl, q);
	}
	for (j = k + AHEAD_NEAR, end = j + AHEAD_GROUP; j < end; j++) {
		q = a->ring[j % RING];
		if (q != NO_PAGE && ahead_key(u, q, &c)) {
			line[nl++] = kit_head(&u->stable.hash, c, u->pf_part);
		}
	}
	for (uint32_t i = 0; i < nl; i++)
		kit_prefetch(line[i]);
	nl = 0;
	for (j = k + AHEAD_CHAIN, end = j + AHEAD_GROUP; j < end; j++) {
		uint32_t i;

		q = a->ring[j % RING];
		if (q == NO_PAGE || !ahead_key(u, q, &c))
			continue;
		if ((i = kit_hash_first(&u->stable.hash, c, u->pf_part)) != 0)
			line[nl++] = &u->stable.key[i];
		if ((i = kit_hash_first(&u->unstable.hash, c, u->pf_part)) != 0)
			line[nl++] = &u->pg[i - 1];
	}
	for (uint32_t i = 0; i < nl; i++)
		kit_prefetch(line[i]);
}

/* Spends up to budget samples on level l; returns what is left. */
static int scan_level(struct uksm *u, uint32_t l, uint64_t *budget)
{
	struct level *L = &u->lv[l];
	uint32_t stride = stride_of(u, l);
	struct ahead a;

	if (*budget == 0 || L->n == 0)
		return 0;
	a.k = 0;
	a.limit = *budget;
	ahead_restart(u, L, &a);
	while (*budget > 0 && L->n > 0) {
		uint32_t r = L->list[L->cursor];
		struct region *R = &u->rg[r];
		uint32_t k = R->offset + R->next * stride;
		int rc;

		if (k < R->npages) {
			if (a.k == a.due)
				uksm_ahead(u, L, stride, &a);
			rc = visit(u, R, R->first + k);
			if (rc < 0)
				return rc;
			R->next++;
			(*budget)--;
			a.k++;
			continue;
		}
		/* The sweep is over. */
		R->offset = (R->offset + 1) % stride;
		R->next = 0;
		if (++L->cursor >= L->n) {
			L->cursor = 0;
			L->wrapped = true;
		}
		evaluate(u, r);
		if (R->level != l && L->n > 0)
			ahead_restart(u, L, &a); /* the region left the level: another took its place */
	}
	return 0;
}

static void round_check(struct uksm *u)
{
	for (uint32_t l = 0; l < u->nlevels; l++) {
		if (u->lv[l].n > 0 && !u->lv[l].wrapped)
			return;
	}
	for (uint32_t l = 0; l < u->nlevels; l++)
		u->lv[l].wrapped = false;
	u->full_scans++;
	kit_unstable_reset(&u->unstable); /* pages_unshared keeps the old nodes until visited */
}

static int uksm_batch(void *st, uint64_t now_ns, uint64_t *sleep_ns)
{
	struct uksm *u = st;
	uint64_t wsum = 0, left = u->pages_to_scan;
	int rc;

	(void)now_ns;
	*sleep_ns = u->sleep_ms * 1000000u;
	for (uint32_t l = 0; l < u->nlevels; l++) {
		if (u->lv[l].n)
			wsum += 1ull << l;
	}
	if (!wsum)
		return 0;
	for (int l = (int)u->nlevels - 1; l >= 0; l--) {
		uint64_t share;

		if (!u->lv[l].n)
			continue;
		share = u->pages_to_scan * (1ull << l) / wsum;
		if (share > left || l == 0)
			share = left;
		left -= share;
		rc = scan_level(u, (uint32_t)l, &share);
		if (rc < 0)
			return rc;
		left += share; /* unspent: for the levels below */
	}
	/* Whatever a level left unspent goes to the top non-empty level again. */
	for (int l = (int)u->nlevels - 1; l >= 0 && left > 0; l--) {
		rc = scan_level(u, (uint32_t)l, &left);
		if (rc < 0)
			return rc;
	}
	round_check(u);
	return 0;
}

static int uksm_page_changed(void *st, bk_page p, uint32_t what)
{
	struct uksm *u = st;

	if (!(what & (ALGO_CHANGE_COW | ALGO_CHANGE_UNMAPPED)))
		return 0;
	if (u->pg[p].rf & PG_ONZERO) {
		u->pg[p].rf &= ~PG_ONZERO;
		u->zero_pages--;
		if (what & ALGO_CHANGE_COW)
			region_of(u, p)->cows++;
	}
	if (u->stable.of_page[p]) {
		if (what & ALGO_CHANGE_COW)
			region_of(u, p)->cows++;
		detach(u, p);
	}
	if (what & ALGO_CHANGE_UNMAPPED)
		untrack(u, p);
	return 0;
}

static int uksm_set_param(void *st, uint32_t idx, double value, struct sp_err *err)
{
	struct uksm *u = st;
	uint64_t v = (uint64_t)value;
	int rc;

	switch (idx) {
	case P_PAGES_TO_SCAN:
		u->pages_to_scan = v;
		return 0;
	case P_SLEEP_MILLISECS:
		u->sleep_ms = v;
		return 0;
	case P_LEVEL_STRIDE:
		u->stride_factor = (uint32_t)v;
		for (uint32_t r = 0; r < u->nregions; r++)
			u->rg[r].offset = u->rg[r].next = 0;
		return 0;
	case P_PROMOTE_DUP_RATIO:
		u->promote = value;
		return 0;
	case P_DEMOTE_DUP_RATIO:
		u->demote = value;
		return 0;
	case P_MAX_COW_RATIO:
		u->max_cow = value;
		return 0;
	case P_MIN_LIFETIME:
		u->min_life = value;
		return 0;
	case P_HASH_STRENGTH:
		u->strength = (uint32_t)v;
		return 0;
	case P_ADAPTIVE_HASH:
		u->adaptive = v != 0;
		return 0;
	case P_USE_ZERO_PAGES:
		u->use_zero = v != 0;
		return 0;
	case P_MERGE_ACROSS_NODES:
		rc = (v != 0) == u->across
			     ? 0
			     : kit_refuse_while_shared("uksm", uksm_params[idx].name, u->stable.shared, err);
		if (rc == 0)
			u->across = v != 0;
		return rc;
	default:
		return sp_err_set(err, SP_EINVAL, "uksm: %s cannot change at run time",
				  idx < sizeof(uksm_params) / sizeof(uksm_params[0])
					  ? uksm_params[idx].name
					  : "that parameter");
	}
}

static void uksm_metrics(const void *st, struct metrics *m)
{
	const struct uksm *u = st;
	int64_t vol = u->tracked - u->stable.shared - u->stable.sharing - u->unstable.members;

	m->pages_shared = u->stable.shared;
	m->pages_sharing = u->stable.sharing;
	m->pages_unshared = u->unstable.members;
	m->pages_volatile = vol < 0 ? 0 : vol;
	m->full_scans = u->full_scans;
	m->pages_scanned = u->pages_scanned;
	m->ksm_zero_pages = u->zero_pages;
	m->general_profit = metrics_general_profit(m, u->page_size, u->tracked);
}

static void uksm_destroy(void *st)
{
	struct uksm *u = st;

	if (!u)
		return;
	for (uint32_t l = 0; l < MAX_LEVELS; l++)
		free(u->lv[l].list);
	free(u->rg);
	sp_hot_free(u->pg, u->npages + 1, sizeof(*u->pg));
	kit_parts_release(&u->parts);
	kit_stable_release(&u->stable);
	kit_unstable_release(&u->unstable);
	free(u);
}

/*
 * Regions: consecutive groups of region_pages pages, never across a guest
 * boundary.  SP_ELIMIT beyond MAX_REGIONS (a region number shares a page's
 * record with its flags).
 */
static int make_regions(struct uksm *u)
{
	struct bk_page_info info;
	uint32_t cap = 64, last_guest = UINT32_MAX;

	u->rg = calloc(cap, sizeof(*u->rg));
	if (!u->rg)
		return SP_ENOMEM;
	for (bk_page p = 0; p < u->npages; p++) {
		u->ops->page_info(u->impl, p, &info);
		if (info.guest != last_guest || u->rg[u->nregions - 1].npages == u->region_pages) {
			if (u->nregions == MAX_REGIONS)
				return SP_ELIMIT;
			if (u->nregions == cap) {
				struct region *n = realloc(u->rg, cap * 2 * sizeof(*n));

				if (!n)
					return SP_ENOMEM;
				u->rg = n;
				cap *= 2;
			}
			memset(&u->rg[u->nregions], 0, sizeof(*u->rg));
			u->rg[u->nregions].first = p;
			u->nregions++;
			last_guest = info.guest;
		}
		u->rg[u->nregions - 1].npages++;
		u->pg[p].rf = (u->nregions - 1) << RID_SHIFT;
	}
	for (uint32_t l = 0; l < u->nlevels; l++) {
		u->lv[l].list = malloc((u->nregions + 1) * sizeof(uint32_t));
		if (!u->lv[l].list)
			return SP_ENOMEM;
	}
	for (uint32_t r = 0; r < u->nregions; r++)
		level_add(u, r, 0);
	return 0;
}

static int uksm_create(void **out, const struct algo_params *prm, const struct algo_env *env,
		       struct sp_err *err)
{
	struct uksm *u = calloc(1, sizeof(*u));
	size_t n;
	int rc = 0;

	*out = NULL;
	if (!u)
		return sp_err_set(err, SP_ENOMEM, "uksm: out of memory");
	u->ops = env->bk.ops;
	u->impl = env->bk.impl;
	u->pages_to_scan = (uint64_t)prm->v[P_PAGES_TO_SCAN];
	u->sleep_ms = (uint64_t)prm->v[P_SLEEP_MILLISECS];
	u->region_pages = (uint32_t)prm->v[P_REGION_PAGES];
	u->nlevels = (uint32_t)prm->v[P_LEVELS];
	u->stride_factor = (uint32_t)prm->v[P_LEVEL_STRIDE];
	u->promote = prm->v[P_PROMOTE_DUP_RATIO];
	u->demote = prm->v[P_DEMOTE_DUP_RATIO];
	u->max_cow = prm->v[P_MAX_COW_RATIO];
	u->min_life = prm->v[P_MIN_LIFETIME];
	u->strength = (uint32_t)prm->v[P_HASH_STRENGTH];
	u->adaptive = prm->v[P_ADAPTIVE_HASH] != 0;
	u->use_zero = prm->v[P_USE_ZERO_PAGES] != 0;
	u->across = prm->v[P_MERGE_ACROSS_NODES] != 0;
	u->dir = -1;
	u->npages = u->ops->npages(u->impl);
	u->page_size = u->ops->page_size(u->impl);
	u->zero_sum = u->ops->zero_checksum(u->impl);
	/* Only where it saves reads and costs nothing: the simulator (real: cost_measured). */
	u->track = u->ops->written && u->ops->checksum_uncounted && u->ops->prefetch &&
		   !u->ops->cost_measured;
	if (u->npages >= UINT32_MAX - 1) {
		uksm_destroy(u);
		return sp_err_set(err, SP_ELIMIT, "uksm: more than 2^32-2 pages");
	}
	n = u->npages + 1;
	u->pg = sp_hot_calloc(n, sizeof(*u->pg));
	if (!u->pg || kit_parts_init(&u->parts) < 0 ||
	    kit_stable_init(&u->stable, u->npages, u->npages / UKSM_BUCKET_DIV) < 0 ||
	    kit_unstable_init(&u->unstable, &u->pg[0].un, sizeof(*u->pg),
			      u->npages / UKSM_BUCKET_DIV) < 0 ||
	    kit_hash_pair(&u->stable.hash, &u->unstable.hash) < 0 ||
	    (rc = make_regions(u)) == SP_ENOMEM) {
		uksm_destroy(u);
		return sp_err_set(err, SP_ENOMEM, "uksm: out of memory for %llu pages",
				  (unsigned long long)(n - 1));
	}
	if (rc < 0) {
		uksm_destroy(u);
		return sp_err_set(err, rc, "uksm: more than %u regions", (unsigned)MAX_REGIONS);
	}
	*out = u;
	return 0;
}

const struct algo_ops algo_uksm = {
	.version = ALGO_OPS_VERSION,
	.name = "uksm",
	.description = "model of UKSM (FAST 2018): regions on scan levels by duplicate/COW ratio, adaptive partial hashing",
	.caps = ALGO_CAP_SCANNER | ALGO_CAP_NODES | ALGO_CAP_LINUX,
	.params = uksm_params,
	.nparams = sizeof(uksm_params) / sizeof(uksm_params[0]),
	.create = uksm_create,
	.destroy = uksm_destroy,
	.batch = uksm_batch,
	.page_changed = uksm_page_changed,
	.set_param = uksm_set_param,
	.metrics = uksm_metrics,
};
