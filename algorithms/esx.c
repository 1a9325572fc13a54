/*
 * esx.c - implements the "esx" merger: a model of content-based page sharing
 * in VMware ESX Server (C. A. Waldspurger, "Memory Resource Management in
 * VMware ESX Server", OSDI 2002, section 4.2).
 *
 * The idea.  ESX does not walk memory in order: it samples guest pages at
 * random, at most share_scan_vm pages per second per guest and at most
 * share_scan_total pages per second overall (the paper's Mem.ShareScanVM and
 * Mem.ShareScanTotal; 50 and 200 in ESX 2).  A sampled page is hashed and
 * the hash looked up in one global hash table whose entries are either
 * *shared frames* (a copy-on-write frame with a reference count) or *hints*
 * (an unshared page that was hashed once; it is not write-protected, so it
 * may have changed since).  A match with a shared frame is confirmed by a
 * full comparison, then the page maps the frame (reference count + 1).  A
 * match with a hint re-hashes the hint's page: if the hash changed, the hint
 * is stale and is removed; otherwise a full comparison confirms it and both
 * pages are mapped to one new shared frame that replaces the hint.  No match:
 * the sampled page becomes a hint.  A guest write to a shared page makes a
 * private copy (COW, reported by the backend) and drops the reference.
 *
 * Structures.
 *   stable   kit.h's stable table: one entry per shared frame (a
 *            merge_pages() result) keyed (checksum, partition), its live
 *            mappers through this instance (the reference count), and the
 *            entry each page maps.  A partition is kit.h's (security
 *            domain, NUMA node unless merge_across_nodes).
 *   hints    p's hint: entry p + 1 of a hash of kit.h's chains, keyed by
 *            its checksum at hashing time and its partition; its prev field
 *            also says whether p has one (0: none, KIT_FIRST: first in its
 *            chain), so that a sample reads one line of p's hint state, not
 *            two (kit.h's unstable set keeps a generation per page besides
 *            the node, 0 for a page not in it: a hint set is never emptied,
 *            it needs none).  Its buckets lie beside the stable table's
 *            (kit_hash_pair(): as many, one line for both lookups).  While
 *            p has none, next says whether p maps one of our frames
 *            (HINT_MERGED), for the sample and the lookahead.
 *   flags[p] RS_ONZERO
 *
 * Invariants.
 *   - pages_shared == stable entries in use; pages_sharing == sum of
 *     (live - 1) over them == the backend's mappers - 1 summed over this
 *     instance's frames, at every instant (COW breaks and unmaps are
 *     applied when reported).
 *   - pages_unshared == hints; ksm_zero_pages == pages with
 *     RS_ONZERO (mapped to the zero page by us, neither written nor unmapped).
 *   - A hash chain holds entries of any partition; a match requires equal
 *     (csum, part), so pages of different security domains are never
 *     compared or merged.
 *
 * Counters: pages_shared, pages_sharing, pages_unshared (hints),
 * pages_scanned (samples), ksm_zero_pages, general_profit = (pages_sharing +
 * ksm_zero_pages) * page_size - 64 B * (hints + shared frames): the hash
 * table entries are the per-page metadata ESX keeps.  pages_volatile and
 * full_scans stay 0: random sampling has neither passes nor a volatility
 * filter (a stale hint is the only sign of a volatile page).
 *
 * Notes (simplifications of the model).
 *  - The hash is the backend's 32-bit checksum, not ESX's 64-bit hash; a
 *    checksum collision costs a futile full compare and is otherwise harmless.
 *  - Sampling: every scan_period_millisecs each guest is owed
 *    min(share_scan_vm, share_scan_total / guests) pages per second, with the
 *    fractional remainder carried over; each sample draws a page number
 *    uniformly from the guest's pages (a splitmix64 generator seeded from
 *    algo_env.seed), with replacement, as the paper's random scan does.  A
 *    sample of an absent page or one already shared costs a visit and
 *    nothing else.  Sampling is not adaptive (ESX 2 had no "scan time").
 *  - The hash table is one chained table; each chain entry examined is
 *    reported as a tree step (BK_COST_TREE_STEP), the bucket itself as one.
 *  - A resampled hint page drops its old hint and is hashed afresh.
 *  - A shared frame has no sharing limit (ESX's 16-bit reference count with
 *    an overflow table is not modelled).
 *  - Zero pages are shared like any other content unless use_zero_pages=1,
 *    which maps them to the backend's zero page (ksm_zero_pages) as later
 *    ESX releases do.
 *  - Security domains (and NUMA nodes with merge_across_nodes=0) partition
 *    the table as ESX's salting does (Mem.ShareForceSalting): only pages of
 *    the same partition are compared.
 *  - Large pages: ESX backs guests with large pages and does not share
 *    inside them unless memory is short (then it breaks the large pages
 *    that hold shareable small pages).  share_large_pages=0 (the default):
 *    a sampled small page of a huge page is hashed and kept as a hint but
 *    never shared, nor is a page shared with such a hint; 1 (memory short):
 *    they are shared, and the backend breaks the large page without
 *    remapping anything (the remap of zero subpages is Linux >= 6.12's, not
 *    ESX's: sim_huge_for()).  Zero subpages are then shared by content, or
 *    mapped to the zero page with use_zero_pages=1.
 */
#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "sp_util.h"
#include "algorithm.h"
#include "kit.h"
#include "sp_bigmem.h"

enum {
	P_SHARE_SCAN_VM,
	P_SHARE_SCAN_TOTAL,
	P_SCAN_PERIOD_MILLISECS,
	P_USE_ZERO_PAGES,
	P_MERGE_ACROSS_NODES,
	P_SHARE_LARGE_PAGES,
};

static const struct algo_param esx_params[] = {
	{ "share_scan_vm", "most pages sampled per second per guest (Mem.ShareScanVM)", 50, 0, 1e7,
	  false },
	{ "share_scan_total", "most pages sampled per second over all guests (Mem.ShareScanTotal)",
	  200, 0, 1e8, false },
	{ "scan_period_millisecs", "time between sampling batches, ms", 100, 1, 1e6, true },
	{ "use_zero_pages", "1: zero-filled pages map the shared zero page (ksm_zero_pages)", 0, 0,
	  1, true },
	{ "merge_across_nodes", "1: pages of different NUMA nodes may share; 0: never", 1, 0, 1,
	  true },
	{ "share_large_pages", "1: memory is short, share small pages inside large (huge) pages; 0: never",
	  0, 0, 1, true },
};

#define RS_ONZERO 0x2u

struct esx {
	const struct backend_ops *ops;
	void *impl;

	double rate_vm, rate_total;
	uint64_t period_ms;
	bool use_zero, across;
	bool share_large; /* share inside large pages (memory is short) */

	uint64_t npages;
	uint32_t page_size, zero_sum, nguests;
	uint64_t *gbase, *gpages; /* per guest: first page, page count */
	double *owed;             /* per guest: samples owed (fraction carried) */
	uint64_t *take;           /* per guest: samples of the current batch */
	uint64_t rng;

	struct kit_parts parts;
	struct kit_stable stable;
	struct kit_hash hints;   /* chains of hint[] */
	struct kit_entry *hint;  /* per page p at p + 1 */
	int64_t nhints;
	uint8_t *flags;

	int64_t zero_pages, pages_scanned;
	int64_t stale_hints;
	uint32_t pf_part; /* lookahead: the latest lookup's partition */
};

/* Page p's hint, key (csum, part), goes first in its chain. */
static void hint_insert(struct esx *e, bk_page p, uint32_t csum, uint32_t part)
{
	kit_hash_insert(&e->hints, e->hint, (uint32_t)p + 1, csum, part);
	e->nhints++;
}

/* Page p's hint leaves its chain (nothing when p has none). */
static void hint_remove(struct esx *e, bk_page p)
{
	if (!e->hint[p + 1].prev)
		return;
	kit_hash_remove(&e->hints, e->hint, (uint32_t)p + 1);
	e->nhints--;
}

/*
 * Whether page p maps one of our frames, kept where the lookahead reads
 * anyway: in p's hint entry, unused while p has no hint (prev == 0; a page
 * mapping a frame has none), next is HINT_MERGED.  Exact: set by attach(),
 * cleared by esx_page_changed()'s detach (a COW break or an unmap, reported
 * before the next sample); stable.of_page is the record.  A sample of such a
 * page reads nothing else (not the backend's page record: it would say
 * present and mapped), nor does the lookahead fetch its content or buckets.
 */
#define HINT_MERGED 1u

/* Page p maps entry i's frame now (p has no hint). */
static void attach(struct esx *e, bk_page p, uint32_t i)
{
	kit_stable_attach(&e->stable, p, i);
	e->hint[p + 1].next = HINT_MERGED;
}

/* Whether x, a page's hint entry, says that the page maps one of our frames. */
static inline bool merged_entry(const struct kit_entry *x)
{
	return !x->prev && x->next == HINT_MERGED;
}

/* ---- one sample ----------------------------------------------------------- */

static int sample_page(struct esx *e, bk_page p)
{
	const struct backend_ops *ops = e->ops;
	struct bk_page_info info;
	struct kit_stable *st = &e->stable;
	uint64_t steps = 1;
	uint32_t csum, part, i, q1;
	bk_frame f;
	int rc;

	e->pages_scanned++;
	ops->account(e->impl, BK_COST_VISIT, 1);
	if (merged_entry(&e->hint[p + 1])) {
		/*
		 * p maps one of our frames: page_info() would say present and
		 * mapped, and p has no hint (COW breaks and unmaps are reported
		 * before the next sample, and clear HINT_MERGED).
		 */
#ifndef NDEBUG
		ops->page_info(e->impl, p, &info);
		assert(info.present && info.frame != BK_NO_FRAME);
#endif
		return 0;
	}
	ops->page_info(e->impl, p, &info);
	if (!info.present || info.frame != BK_NO_FRAME) {
		hint_remove(e, p); /* a hint mapped to the zero page by a huge-page split */
		return 0;
	}
	hint_remove(e, p); /* resampled: hashed afresh */
	csum = ops->checksum(e->impl, p);
	rc = kit_part(&e->parts, &info, e->across, &part);
	if (rc < 0)
		return rc;
	e->pf_part = part;
	if (info.huge && !e->share_large) {
		/* Inside a large page: a hint for when memory is short, never shared now. */
		ops->account(e->impl, BK_COST_TREE_STEP, steps);
		hint_insert(e, p, csum, part);
		return 0;
	}
	if (e->use_zero && csum == e->zero_sum && ops->merge_zero(e->impl, p) == 0) {
		e->flags[p] |= RS_ONZERO;
		e->zero_pages++;
		return 0;
	}
	/* Shared frames: a full compare before sharing. */
	for (i = kit_hash_first(&st->hash, csum, part); i; i = st->key[i].next) {
		steps++;
		if (st->key[i].csum != csum || st->key[i].part != part)
			continue;
		if (ops->compare_frame(e->impl, p, st->frame[i]) != 0)
			continue; /* a checksum collision */
		if (ops->merge_frame(e->impl, p, st->frame[i]) == 0) {
			attach(e, p, i);
			ops->account(e->impl, BK_COST_TREE_STEP, steps);
			return 0;
		}
	}
	/* Hints: re-hash the hint page; a changed hash makes it stale. */
	for (q1 = kit_hash_first(&e->hints, csum, part); q1;) {
		bk_page q = q1 - 1;
		struct bk_page_info qi;

		steps++;
		q1 = e->hint[q1].next;
		if (e->hint[q + 1].csum != csum || e->hint[q + 1].part != part)
			continue;
		ops->page_info(e->impl, q, &qi);
		if (!qi.present || qi.frame != BK_NO_FRAME || ops->checksum(e->impl, q) != csum) {
			hint_remove(e, q);
			e->stale_hints++;
			continue;
		}
		if (qi.huge && !e->share_large)
			continue; /* the hint's page is inside a large page */
		if (ops->compare(e->impl, p, q) != 0)
			continue;
		if (ops->merge_pages(e->impl, p, q, &f) < 0)
			continue;
		hint_remove(e, q);
		ops->account(e->impl, BK_COST_TREE_STEP, steps);
		rc = kit_stable_add(st, f, csum, part, &i);
		if (rc < 0)
			return rc;
		attach(e, q, i);
		attach(e, p, i);
		return 0;
	}
	ops->account(e->impl, BK_COST_TREE_STEP, steps);
	hint_insert(e, p, csum, part);
	return 0;
}

/*
 * Lookahead.  A batch's samples are drawn in order into a ring AHEAD_HINT +
 * AHEAD_GROUP ahead of the one sampled, across guests (a guest's share of a
 * batch is known before any is drawn), so that the pages sampled soon are
 * known.  Every AHEAD_GROUP samples the lookahead runs four stages, each
 * for the AHEAD_GROUP pages it is due for, back to back:
 *   hint  AHEAD_HINT ahead, the page's hint entry;
 *   info  AHEAD_INFO ahead, for a page that does not map one of our frames
 *         (its hint entry, loaded by then, says: HINT_MERGED), the
 *         backend's page record (prefetch_info());
 *   far   AHEAD_FAR ahead, for those, what the backend's prefetch() loads
 *         from there;
 *   near  AHEAD_NEAR ahead, for those, the buckets its lookups read
 *         (the stable table's and the hints', one pair), keyed by its
 *         checksum now (the backend's, uncounted: a hint, no cost in the
 *         model) in the latest lookup's partition; and the chain neighbours
 *         its hint's removal relinks.
 * A prefetch whose address misses the TLB holds the sample's retirement
 * until it is translated (long under a VM's nested paging; measured on a
 * Zen 5 Firecracker guest); sixteen in a row wait for their translations
 * together, as ksm.c's bucket heads do (bench/README.md, issue 14
 * seventeenth round).  A page mapping one of our frames reads its hint
 * entry and nothing else, at its sample and ahead
 * (until the twenty-fourth round the info and far stages asked the backend
 * for its record, its frame slot and the frame's, three random lines, for
 * every sample: about half of the steady samples at 32M pages map a frame).
 * Drawing each page once, in the order sampled, leaves the generator where
 * drawing at each sample did (before the fourteenth round the pages ahead
 * were drawn again from the generator's counter, three 64-bit divisions a
 * sample, and the lookahead stopped at each guest's last samples).
 */
#define AHEAD_GROUP 16u
#define AHEAD_NEAR 4u
#define AHEAD_FAR (AHEAD_NEAR + AHEAD_GROUP)
#define AHEAD_INFO (AHEAD_FAR + AHEAD_GROUP)
#define AHEAD_HINT (AHEAD_INFO + AHEAD_GROUP)
#define RING 128u /* > AHEAD_HINT + AHEAD_GROUP, a power of two */

_Static_assert(RING >= AHEAD_HINT + AHEAD_GROUP && (RING & (RING - 1)) == 0,
	       "the ring holds the lookahead");

struct draw {
	uint32_t g;    /* the guest drawn from */
	uint64_t left; /* its samples left to draw */
};

/* The next page of the batch: guest by guest, e->take[g] of each. */
static bk_page draw_next(struct esx *e, struct draw *d)
{
	while (d->left == 0)
		d->left = e->take[++d->g];
	d->left--;
	return e->gbase[d->g] + sp_splitmix64(&e->rng) % e->gpages[d->g];
}

/* The stages due at sample k (a multiple of AHEAD_GROUP) of n. */
static void esx_ahead(const struct esx *e, const bk_page *ring, uint64_t k, uint64_t n)
{
	const void *line[3 * AHEAD_GROUP]; /* the near stage's, gathered then prefetched */
	uint64_t j, end;
	uint32_t nl = 0;

	for (j = k + AHEAD_HINT, end = j + AHEAD_GROUP < n ? j + AHEAD_GROUP : n; j < end; j++)
		kit_prefetch(&e->hint[ring[j % RING] + 1]);
	if (e->ops->prefetch_info)
		for (j = k + AHEAD_INFO, end = j + AHEAD_GROUP < n ? j + AHEAD_GROUP : n; j < end; j++)
			if (!merged_entry(&e->hint[ring[j % RING] + 1]))
				e->ops->prefetch_info(e->impl, ring[j % RING]);
	if (e->ops->prefetch)
		for (j = k + AHEAD_FAR, end = j + AHEAD_GROUP < n ? j + AHEAD_GROUP : n; j < end; j++)
			if (!merged_entry(&e->hint[ring[j % RING] + 1]))
				e->ops->prefetch(e->impl, ring[j % RING]);
	for (j = k + AHEAD_NEAR, end = j + AHEAD_GROUP < n ? j + AHEAD_GROUP : n; j < end; j++) {
		bk_page q = ring[j % RING];
		const struct kit_entry *x = &e->hint[q + 1];

		if (merged_entry(x))
			continue; /* maps one of our frames: no lookup */
		if (e->ops->checksum_uncounted) /* the stable table's bucket and the hints' (a pair) */
			line[nl++] = kit_head(&e->stable.hash, e->ops->checksum_uncounted(e->impl, q),
					      e->pf_part);
		if (!x->prev)
			continue;
		if (x->prev != KIT_FIRST)
			line[nl++] = &e->hint[x->prev];
		else
			line[nl++] = kit_head(&e->hints, x->csum, x->part);
		if (x->next)
			line[nl++] = &e->hint[x->next];
	}
	for (uint32_t i = 0; i < nl; i++)
		kit_prefetch(line[i]);
}

static int esx_batch(void *st, uint64_t now_ns, uint64_t *sleep_ns)
{
	struct esx *e = st;
	double per_guest = e->rate_vm;
	double secs = (double)e->period_ms / 1000.0;
	struct draw d = { .g = 0, .left = 0 };
	bk_page ring[RING];
	uint64_t n = 0, drawn = 0;

	(void)now_ns;
	*sleep_ns = e->period_ms * 1000000u;
	if (e->nguests && e->rate_total / e->nguests < per_guest)
		per_guest = e->rate_total / e->nguests;
	for (uint32_t g = 0; g < e->nguests; g++) {
		e->take[g] = 0;
		if (e->gpages[g] == 0)
			continue;
		e->owed[g] += per_guest * secs;
		e->take[g] = (uint64_t)e->owed[g];
		e->owed[g] -= (double)e->take[g];
		n += e->take[g];
	}
	if (n == 0)
		return 0;
	d.left = e->take[0];
	for (uint64_t k = 0; k < n; k++) {
		int rc;

		if (k % AHEAD_GROUP == 0) {
			for (; drawn < n && drawn < k + AHEAD_HINT + AHEAD_GROUP; drawn++)
				ring[drawn % RING] = draw_next(e, &d);
			esx_ahead(e, ring, k, n);
		}
		rc = sample_page(e, ring[k % RING]);
		if (rc < 0)
			return rc;
	}
	return 0;
}

static int esx_page_changed(void *st, bk_page p, uint32_t what)
{
	struct esx *e = st;

	if (!(what & (ALGO_CHANGE_COW | ALGO_CHANGE_UNMAPPED)))
		return 0;
	if (e->flags[p] & RS_ONZERO) {
		e->flags[p] &= (uint8_t)~RS_ONZERO;
		e->zero_pages--;
	}
	if (e->stable.of_page[p]) {
		kit_stable_detach(&e->stable, p);
		e->hint[p + 1].next = 0;
	}
	if (what & ALGO_CHANGE_UNMAPPED)
		hint_remove(e, p);
	return 0;
}

static int esx_set_param(void *st, uint32_t idx, double value, struct sp_err *err)
{
	struct esx *e = st;
	int rc;

	switch (idx) {
	case P_SHARE_SCAN_VM:
		e->rate_vm = value;
		return 0;
	case P_SHARE_SCAN_TOTAL:
		e->rate_total = value;
		return 0;
	case P_SCAN_PERIOD_MILLISECS:
		e->period_ms = (uint64_t)value;
		return 0;
	case P_USE_ZERO_PAGES:
		e->use_zero = value != 0;
		return 0;
	case P_SHARE_LARGE_PAGES:
		e->share_large = value != 0;
		return 0;
	case P_MERGE_ACROSS_NODES:
		rc = (value != 0) == e->across
			     ? 0
			     : kit_refuse_while_shared("esx", esx_params[idx].name, e->stable.shared, err);
		if (rc == 0)
			e->across = value != 0;
		return rc;
	default:
		return sp_err_set(err, SP_EINVAL, "esx: no parameter %u", idx);
	}
}

static void esx_metrics(const void *st, struct metrics *m)
{
	const struct esx *e = st;

	m->pages_shared = e->stable.shared;
	m->pages_sharing = e->stable.sharing;
	m->pages_unshared = e->nhints;
	m->pages_volatile = 0;
	m->full_scans = 0;
	m->pages_scanned = e->pages_scanned;
	m->ksm_zero_pages = e->zero_pages;
	m->general_profit = metrics_general_profit(m, e->page_size, e->nhints + e->stable.shared);
}

static void esx_destroy(void *st)
{
	struct esx *e = st;

	if (!e)
		return;
	free(e->gbase);
	free(e->gpages);
	free(e->owed);
	free(e->take);
	kit_parts_release(&e->parts);
	kit_hash_release(&e->hints); /* before the stable table's: its buckets lie in that array */
	kit_stable_release(&e->stable);
	sp_hot_free(e->hint, e->npages + 1, sizeof(*e->hint));
	sp_hot_free(e->flags, e->npages + 1, 1);
	free(e);
}

static int esx_create(void **out, const struct algo_params *prm, const struct algo_env *env,
		      struct sp_err *err)
{
	struct esx *e = calloc(1, sizeof(*e));
	struct bk_page_info info;
	size_t n;

	*out = NULL;
	if (!e)
		return sp_err_set(err, SP_ENOMEM, "esx: out of memory");
	e->ops = env->bk.ops;
	e->impl = env->bk.impl;
	e->rate_vm = prm->v[P_SHARE_SCAN_VM];
	e->rate_total = prm->v[P_SHARE_SCAN_TOTAL];
	e->period_ms = (uint64_t)prm->v[P_SCAN_PERIOD_MILLISECS];
	e->use_zero = prm->v[P_USE_ZERO_PAGES] != 0;
	e->across = prm->v[P_MERGE_ACROSS_NODES] != 0;
	e->share_large = prm->v[P_SHARE_LARGE_PAGES] != 0;
	e->rng = env->seed ^ 0x5851f42d4c957f2dULL;
	e->npages = e->ops->npages(e->impl);
	e->page_size = e->ops->page_size(e->impl);
	e->zero_sum = e->ops->zero_checksum(e->impl);
	e->nguests = e->ops->nguests(e->impl);
	if (e->npages >= UINT32_MAX - 1) {
		esx_destroy(e);
		return sp_err_set(err, SP_ELIMIT, "esx: more than 2^32-2 pages");
	}
	n = e->npages + 1;
	e->gbase = calloc(e->nguests + 1u, sizeof(*e->gbase));
	e->gpages = calloc(e->nguests + 1u, sizeof(*e->gpages));
	e->owed = calloc(e->nguests + 1u, sizeof(*e->owed));
	e->take = calloc(e->nguests + 1u, sizeof(*e->take));
	e->flags = sp_hot_calloc(n, 1);
	e->hint = sp_hot_calloc(n, sizeof(*e->hint));
	/* Buckets as pages: a lookup is charged a tree step per chain entry it passes. */
	if (!e->gbase || !e->gpages || !e->owed || !e->take || !e->flags || !e->hint ||
	    kit_parts_init(&e->parts) < 0 || kit_stable_init(&e->stable, e->npages, e->npages) < 0 ||
	    kit_hash_init(&e->hints, e->npages) < 0 || kit_hash_pair(&e->stable.hash, &e->hints) < 0) {
		esx_destroy(e);
		return sp_err_set(err, SP_ENOMEM, "esx: out of memory for %llu pages",
				  (unsigned long long)(n - 1));
	}
	/* Guests are contiguous in scan order. */
	for (bk_page p = 0; p < e->npages; p++) {
		e->ops->page_info(e->impl, p, &info);
		if (info.guest < e->nguests) {
			if (e->gpages[info.guest]++ == 0)
				e->gbase[info.guest] = p;
		}
	}
	*out = e;
	return 0;
}

const struct algo_ops algo_esx = {
	.version = ALGO_OPS_VERSION,
	.name = "esx",
	.description = "model of VMware ESX page sharing: random sampling, hash table of shared frames and hints",
	.caps = ALGO_CAP_SCANNER | ALGO_CAP_NODES | ALGO_CAP_SEEDED,
	.params = esx_params,
	.nparams = sizeof(esx_params) / sizeof(esx_params[0]),
	.create = esx_create,
	.destroy = esx_destroy,
	.batch = esx_batch,
	.page_changed = esx_page_changed,
	.set_param = esx_set_param,
	.metrics = esx_metrics,
};
