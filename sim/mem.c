/*
 * mem.c - implements the simulated backend: the page and frame state of a
 * trace's guests, replayed record by record, behind the backend contract.
 *
 * Structures.
 *   pages[i]  one per guest page, i = guest base + page number (scan order),
 *             8 bytes: content id, guest, NUMA node, flags.
 *   slot[i]   the frame page i maps: 0 = its own private frame, 1 = the
 *             shared zero page, else a shared frame in frames[].  An array
 *             of its own: a replay that merges nothing (the oracle) never
 *             writes it, so it stays unbacked - 4 bytes a page of fresh
 *             memory not touched (bench/README.md, issue 14, fourteenth
 *             and fifteenth rounds: first touch is this VM's dearest system
 *             time).  PG_MAPPED in pages[i] says slot[i] != 0, so that a
 *             private page (most of those an algorithm looks up at random)
 *             costs one line, its record, and slot[] is read only for a
 *             page that maps a frame.
 *   truth     content ids (cidtab.h) of (fingerprint, domain), assigned on
 *             first sight: a page holds the 4-byte id of its content, not
 *             the 16-byte fingerprint; absent and zero-filled pages hold 0
 *             (fingerprint {0,0}).  The ids' counts are the oracle bound.
 *   frames    shared frames ("KSM pages"), frames.h's table: node, security
 *             domain, mapper count and generation per slot, and here the
 *             content id of its mappers (frame_cid(): the id stays the
 *             content's while a page holds it, and every mapper does).
 *
 * Invariants.
 *   - A page mapping frame s has the content id frame_cid(s) (a write first
 *     gives it a private frame: a COW break).
 *   - frames.slot[s].mappers == number of pages mapping s; 0 means free.
 *   - remote == number of pages whose node differs from their shared frame's.
 *   - truth: the oracle content multiset counts every present non-zero page
 *     under (content, domain) - its id; zero pages are counted apart.
 *
 * Huge pages (sim_mem_set_huge(), the modelled system's behaviour): a
 * merge of a subpage of a transparent huge page first splits the huge page
 * (thp_splits), as the kernel's try_to_merge_one_page() does before it
 * write-protects the page.
 *   SIM_HUGE_SPLIT_ZERO (Linux >= 6.12, b1f202060afe; the default): the
 *     split maps every zero-filled private subpage to the shared zero page
 *     (thp_zero_pages, a saving no KSM counter shows; the algorithm is not
 *     told), the subpage being merged included - its merge then fails
 *     (SP_ECHANGED: the kernel's write_protect_page() finds no pte mapping
 *     the page), so it is on the zero page by the split, not by the merge.
 *   SIM_HUGE_SPLIT (Linux <= 6.11; ESX breaking a large page): the split
 *     leaves the subpages as they are; zero-filled ones may be merged later.
 * A merge refused before the split (content or domain differs) leaves the
 * huge page whole.
 */
#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "cidtab.h"
#include "frames.h"
#include "sim.h"
#include "sp_bigmem.h"

#define SLOT_PRIVATE BK_SLOT_PRIVATE
#define SLOT_ZERO BK_SLOT_ZERO
#define HUGE_REGION 512u

/* sim_page.flags */
#define PG_PRESENT 0x1u
#define PG_ZERO 0x2u
#define PG_HUGE 0x4u
#define PG_SPLITZERO 0x8u /* mapped to the zero page by a huge-page split, not by the algorithm */
#define PG_CLEAN 0x10u    /* not written since the last written() (a write rebuilds flags) */
#define PG_SUMMED 0x20u   /* content unchanged since the last checksum_again() (likewise) */
#define PG_MAPPED 0x40u   /* maps a frame: slot[] of the page is not SLOT_PRIVATE */
#define PG_FLAGS 0x7fu

struct sim_page {
	uint32_t cid;        /* content id in truth; 0: fingerprint {0,0}, not counted */
	uint32_t guest : 12; /* < TRACE_MAX_GUESTS */
	uint32_t node : 10;  /* <= TRACE_MAX_NODE */
	uint32_t flags : 10; /* PG_* */
};

_Static_assert(TRACE_MAX_GUESTS <= (1 << 12), "sim_page.guest holds every guest index");
_Static_assert(TRACE_MAX_NODE < (1 << 10), "sim_page.node holds every node");
_Static_assert(PG_FLAGS < (1 << 10), "sim_page.flags holds every PG_ flag");
_Static_assert(sizeof(struct sim_page) == 8, "8 bytes per simulated page");

struct sim_mem {
	const struct trace_header *h;
	const struct sim_layout *lay; /* the pages numbered; NULL: every page of every guest */
	uint64_t npages;
	uint64_t *base;        /* per guest: index of its first numbered page */
	uint64_t *whole;       /* per guest: its pages if every one is numbered (page n at base + n), else 0 */
	struct sim_page *pages;
	uint32_t *slot;        /* per page: the frame it maps (SLOT_PRIVATE, SLOT_ZERO, a shared slot) */
	struct bk_frames frames; /* word: the frame's content id (frame_cid()) */
	uint32_t nnodes;
	uint64_t counts[BK_COST__COUNT];
	int64_t cow_breaks, merges, remote, thp_splits, thp_zero;
	uint64_t unheard;      /* pages a split mapped to the zero page, ever (unheard_changes()) */
	enum sim_huge huge;    /* what a split does (sim_mem_set_huge) */
	int64_t present;       /* present pages */
	int64_t on_zero;       /* present pages mapping the shared zero page */
	struct cidtab truth;   /* content ids, counted per (content, domain) */
	int64_t truth_zero;    /* present zero-filled pages */
	bool zero_ids;         /* a page not flagged zero-filled had fingerprint {0,0} (an id) */
	uint32_t *dom_ix;      /* per guest: its security domain's index in zero_dom */
	int64_t *zero_dom;     /* present zero-filled pages per security domain */
	int64_t zero_keys;     /* domains with zero_dom >= 1 */
	int64_t zero_shared;   /* domains with zero_dom >= 2 */
};

/* The content of content id cid. */
static inline struct sp_fp cid_fp(const struct sim_mem *m, uint32_t cid)
{
	return cid ? cidtab_fp(&m->truth, cid) : (struct sp_fp){ 0, 0 };
}

/* The content of page pg. */
static inline struct sp_fp page_fp(const struct sim_mem *m, const struct sim_page *pg)
{
	return cid_fp(m, pg->cid);
}

/* The frame slot page p maps: slot[] is read only when its record says it maps one. */
static inline uint32_t slot_at(const struct sim_mem *m, uint64_t p)
{
	return (m->pages[p].flags & PG_MAPPED) ? m->slot[p] : SLOT_PRIVATE;
}

/* Page p maps slot (SLOT_PRIVATE: its own frame again); PG_MAPPED follows. */
static inline void set_slot(struct sim_mem *m, uint64_t p, uint32_t slot)
{
	m->slot[p] = slot;
	if (slot == SLOT_PRIVATE)
		m->pages[p].flags &= ~PG_MAPPED & PG_FLAGS;
	else
		m->pages[p].flags |= PG_MAPPED;
}

static inline bk_frame handle(const struct sim_mem *m, uint32_t slot)
{
	return bk_frames_handle(&m->frames, slot);
}

/* The live slot a handle names, or 0 if the handle is stale or invalid. */
static inline uint32_t slot_of(const struct sim_mem *m, bk_frame f)
{
	return bk_frames_slot(&m->frames, f);
}

/*
 * The content id of shared frame slot's mappers (0 for the zero page's
 * slot): the slot's own word, in the line of its mappers and generation.
 */
static inline uint32_t *frame_cid(const struct sim_mem *m, uint32_t slot)
{
	return &m->frames.slot[slot].word;
}

static uint32_t domain_of(const struct sim_mem *m, const struct sim_page *pg)
{
	return m->h->guests[pg->guest].domain;
}

/* Pages numbered of guest g. */
static uint64_t guest_pages(const struct sim_mem *m, uint32_t g)
{
	return m->lay ? m->lay->npages[g] : m->h->guests[g].pages;
}

/* The guest page number of backend page p of guest g. */
static uint64_t pfn_of(const struct sim_mem *m, uint32_t g, bk_page p)
{
	uint64_t i = p - m->base[g];

	return m->lay && m->lay->pfn[g] ? m->lay->pfn[g][i] : i;
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return (x > y) - (x < y);
}

/* dom_ix and zero_dom: the guests' distinct security domains, numbered in order. */
static int domain_index(struct sim_mem *m)
{
	uint32_t ng = m->h->nguests, nd = 0, *sorted = malloc((ng ? ng : 1) * sizeof(*sorted));

	m->dom_ix = calloc(ng ? ng : 1, sizeof(*m->dom_ix));
	if (!sorted || !m->dom_ix) {
		free(sorted);
		return SP_ENOMEM;
	}
	for (uint32_t g = 0; g < ng; g++)
		sorted[g] = m->h->guests[g].domain;
	qsort(sorted, ng, sizeof(*sorted), cmp_u32);
	for (uint32_t g = 0; g < ng; g++)
		if (nd == 0 || sorted[nd - 1] != sorted[g])
			sorted[nd++] = sorted[g];
	for (uint32_t g = 0; g < ng; g++) {
		const uint32_t *d = bsearch(&m->h->guests[g].domain, sorted, nd, sizeof(*sorted), cmp_u32);

		m->dom_ix[g] = (uint32_t)(d - sorted);
	}
	free(sorted);
	m->zero_dom = calloc(nd ? nd : 1, sizeof(*m->zero_dom));
	return m->zero_dom ? 0 : SP_ENOMEM;
}

int sim_mem_new(struct sim_mem **out, const struct trace_header *h, struct sp_err *err)
{
	return sim_mem_new_layout(out, h, NULL, err);
}

int sim_mem_new_layout(struct sim_mem **out, const struct trace_header *h,
		       const struct sim_layout *layout, struct sp_err *err)
{
	struct sim_mem *m = calloc(1, sizeof(*m));
	uint64_t n = 0;

	*out = NULL;
	if (!m)
		return sp_err_set(err, SP_ENOMEM, "out of memory");
	if (layout && layout->nguests != h->nguests) {
		free(m);
		return sp_err_set(err, SP_EINVAL, "a page layout of %u guests for a trace of %u",
				  layout->nguests, h->nguests);
	}
	m->h = h;
	for (uint32_t g = 0; g < h->nguests; g++) {
		if (h->guests[g].node > TRACE_MAX_NODE) {
			free(m);
			return sp_err_set(err, SP_EINVAL, "guest %u on node %u: nodes run to %d", g,
					  h->guests[g].node, TRACE_MAX_NODE);
		}
	}
	m->lay = layout;
	m->base = calloc(h->nguests, sizeof(*m->base));
	m->whole = calloc(h->nguests, sizeof(*m->whole));
	if (!m->base || !m->whole)
		goto nomem;
	for (uint32_t g = 0; g < h->nguests; g++) {
		m->base[g] = n;
		m->whole[g] = !layout || !layout->pfn[g] ? guest_pages(m, g) : 0;
		n += guest_pages(m, g);
		if (h->guests[g].node + 1u > m->nnodes)
			m->nnodes = h->guests[g].node + 1u;
	}
	m->npages = n;
	m->pages = sp_big_calloc(n ? n : 1, sizeof(*m->pages)); /* huge pages: fewer faults and TLB misses */
	m->slot = sp_big_calloc(n ? n : 1, sizeof(*m->slot));   /* 0: SLOT_PRIVATE */
	/*
	 * The content-id table sized once for the trace's distinct contents
	 * (the layout's estimate; a page holds one at most), not grown by doubling.
	 */
	if (!m->pages || !m->slot || bk_frames_init(&m->frames, 0) < 0 ||
	    cidtab_init_sized(&m->truth, !layout ? 0 : layout->contents < n ? layout->contents : n) < 0 ||
	    domain_index(m) < 0)
		goto nomem;
	for (uint32_t g = 0; g < h->nguests; g++) {
		/*
		 * Whole records, not their fields: a store, not a load and a
		 * store, a page; as 64-bit words, which the compiler fills a
		 * vector at a time (a copy of the bit-field struct it did not).
		 */
		struct sim_page pg = { .guest = g, .node = h->guests[g].node };
		uint64_t w, *pages = (uint64_t *)(m->pages + m->base[g]);

		_Static_assert(sizeof(pg) == sizeof(w), "a page record is one word");
		memcpy(&w, &pg, sizeof(w));
		for (uint64_t p = 0, np = guest_pages(m, g); p < np; p++)
			pages[p] = w;
	}
	*out = m;
	return 0;
nomem:
	sim_mem_free(m);
	return sp_err_set(err, SP_ENOMEM, "out of memory for %llu pages", (unsigned long long)n);
}

void sim_mem_free(struct sim_mem *m)
{
	if (!m)
		return;
	cidtab_release(&m->truth);
	free(m->dom_ix);
	free(m->zero_dom);
	free(m->base);
	free(m->whole);
	sp_big_free(m->pages, m->npages ? m->npages : 1, sizeof(*m->pages));
	sp_big_free(m->slot, m->npages ? m->npages : 1, sizeof(*m->slot));
	bk_frames_release(&m->frames);
	free(m);
}

uint64_t sim_mem_page_index(const struct sim_mem *m, uint32_t guest, uint64_t page)
{
	uint64_t i = m->base[guest] + page;

	if (m->lay && sim_layout_index(m->lay, guest, page, &i) < 0)
		return m->npages; /* not numbered */
	return i;
}

const uint64_t *sim_mem_counts(const struct sim_mem *m)
{
	return m->counts;
}

void sim_mem_add_counts(struct sim_mem *m, const uint64_t *delta, uint64_t n)
{
	for (int k = 0; k < BK_COST__COUNT; k++)
		m->counts[k] += n * delta[k];
}

/* ---- frame bookkeeping ------------------------------------------------ */

static void map_slot(struct sim_mem *m, struct sim_page *pg, uint32_t slot)
{
	/*
	 * node is read before set_slot() writes the flags beside it: a load of
	 * the word just written in part cannot take the store's bytes and waits
	 * until the store is in the cache, behind every older store (scan 2 of
	 * the ksm model at 32M: -2% CPU, bench/README.md issue 14 eighteenth round).
	 */
	uint32_t node = pg->node;

	set_slot(m, (uint64_t)(pg - m->pages), slot);
	if (slot > SLOT_ZERO) {
		m->frames.slot[slot].mappers++;
		if (m->frames.slot[slot].node != node)
			m->remote++;
	}
}

/* The page leaves its shared frame (or the zero page) for a private one. */
static void unmap_slot(struct sim_mem *m, struct sim_page *pg)
{
	uint64_t p = (uint64_t)(pg - m->pages);
	uint32_t slot = slot_at(m, p);

	set_slot(m, p, SLOT_PRIVATE);
	pg->flags &= ~PG_SPLITZERO & PG_FLAGS;
	if (slot == SLOT_ZERO)
		m->on_zero--;
	if (slot <= SLOT_ZERO)
		return;
	if (m->frames.slot[slot].node != pg->node)
		m->remote--;
	if (--m->frames.slot[slot].mappers == 0)
		bk_frames_free(&m->frames, slot);
}

/* A merge is about to touch page p, a subpage of a huge page: split it, as the kernel does. */
static void split_huge(struct sim_mem *m, bk_page p)
{
	struct sim_page *pg = &m->pages[p];
	uint32_t g = pg->guest;
	uint64_t gbase = m->base[g], gend = gbase + guest_pages(m, g);
	uint64_t region = pfn_of(m, g, p) / HUGE_REGION, first = p, end = p + 1;

	/* the numbered pages of p's huge-page region: a contiguous run of indexes */
	while (first > gbase && pfn_of(m, g, first - 1) / HUGE_REGION == region)
		first--;
	while (end < gend && pfn_of(m, g, end) / HUGE_REGION == region)
		end++;
	m->thp_splits++;
	for (uint64_t i = first; i < end; i++) {
		struct sim_page *q = &m->pages[i];

		q->flags &= ~PG_HUGE & PG_FLAGS;
		if (m->huge == SIM_HUGE_SPLIT_ZERO && (q->flags & PG_PRESENT) &&
		    (q->flags & PG_ZERO) && !(q->flags & PG_MAPPED)) {
			set_slot(m, i, SLOT_ZERO);
			q->flags |= PG_SPLITZERO;
			m->thp_zero++;
			m->unheard++;
			m->on_zero++;
		}
	}
}

/*
 * Page p, checked for a merge, is about to be write-protected: a huge page
 * around it is split first.  SP_ECHANGED when the split itself mapped p to
 * the zero page (the merge then fails, as in the kernel).
 */
static int split_for_merge(struct sim_mem *m, bk_page p)
{
	if (!(m->pages[p].flags & PG_HUGE))
		return 0;
	split_huge(m, p);
	return (m->pages[p].flags & PG_MAPPED) ? SP_ECHANGED : 0;
}

void sim_mem_set_huge(struct sim_mem *m, enum sim_huge huge)
{
	m->huge = huge;
}

/* ---- backend contract ------------------------------------------------- */

static uint64_t mem_npages(void *impl) { return ((struct sim_mem *)impl)->npages; }
static uint32_t mem_nnodes(void *impl) { return ((struct sim_mem *)impl)->nnodes; }
static uint32_t mem_nguests(void *impl) { return ((struct sim_mem *)impl)->h->nguests; }
static uint32_t mem_page_size(void *impl) { return ((struct sim_mem *)impl)->h->page_size; }
static uint32_t mem_zero_checksum(void *impl)
{
	struct sp_fp zero = { 0, 0 };

	(void)impl;
	return sp_fp_checksum(zero);
}

static void mem_page_info(void *impl, bk_page p, struct bk_page_info *out)
{
	struct sim_mem *m = impl;
	const struct sim_page *pg = &m->pages[p];

	out->guest = pg->guest;
	out->node = pg->node;
	out->domain = domain_of(m, pg);
	out->pfn = pfn_of(m, pg->guest, p);
	out->present = (pg->flags & PG_PRESENT) != 0;
	out->zero = (pg->flags & PG_ZERO) != 0;
	out->huge = (pg->flags & PG_HUGE) != 0;
	out->frame = (pg->flags & PG_MAPPED) ? handle(m, m->slot[p]) : BK_NO_FRAME;
}

static uint32_t mem_checksum(void *impl, bk_page p)
{
	struct sim_mem *m = impl;

	m->counts[BK_COST_CHECKSUM]++;
	return sp_fp_checksum(page_fp(m, &m->pages[p]));
}

static uint32_t mem_checksum_uncounted(void *impl, bk_page p)
{
	struct sim_mem *m = impl;

	return sp_fp_checksum(page_fp(m, &m->pages[p]));
}

/*
 * checksum() again, counted the same: *kept (when kept is not NULL) is what
 * the previous checksum_again() of p returned, still the checksum if the
 * content has not changed since (PG_SUMMED), so the content need not be read.
 */
static uint32_t mem_checksum_again(void *impl, bk_page p, const uint32_t *kept)
{
	struct sim_mem *m = impl;
	struct sim_page *pg = &m->pages[p];

	if (kept && (pg->flags & PG_SUMMED)) {
		m->counts[BK_COST_CHECKSUM]++;
		assert(*kept == sp_fp_checksum(page_fp(m, pg)));
		return *kept;
	}
	pg->flags |= PG_SUMMED;
	return mem_checksum(impl, p);
}

/*
 * Changes of presence or frame the algorithm is not told of: only a split's
 * zero-filled subpages mapped to the zero page (split_huge()), counted for
 * ever (thp_zero also falls with their COW breaks).
 */
static uint64_t mem_unheard_changes(void *impl)
{
	return ((const struct sim_mem *)impl)->unheard;
}

/* Written since the last call: the trace changed its content, mapped or unmapped it. */
static int mem_written(void *impl, bk_page p)
{
	struct sim_page *pg = &((struct sim_mem *)impl)->pages[p];
	int w = !(pg->flags & PG_CLEAN);

	pg->flags |= PG_CLEAN;
	return w;
}

static int mem_compare(void *impl, bk_page a, bk_page b)
{
	struct sim_mem *m = impl;

	m->counts[BK_COST_COMPARE]++;
	if (m->pages[a].cid == m->pages[b].cid)
		return 0; /* one id, one content */
	return sp_fp_cmp(page_fp(m, &m->pages[a]), page_fp(m, &m->pages[b]));
}

static int mem_compare_frame(void *impl, bk_page a, bk_frame f)
{
	struct sim_mem *m = impl;
	uint32_t slot = slot_of(m, f), cid = slot == SLOT_ZERO ? 0 : *frame_cid(m, slot);

	m->counts[BK_COST_COMPARE]++;
	if (m->pages[a].cid == cid)
		return 0; /* one id, one content */
	return sp_fp_cmp(page_fp(m, &m->pages[a]), cid_fp(m, cid));
}

/*
 * Checks common to every merge of private page p with content id cid (its
 * content; 0: zero-filled) in domain d.
 */
static int merge_check(struct sim_mem *m, bk_page p, uint32_t cid, uint32_t domain)
{
	const struct sim_page *pg = &m->pages[p];

	if (!(pg->flags & PG_PRESENT) || (pg->flags & PG_MAPPED))
		return SP_EINVAL;
	m->counts[BK_COST_COMPARE]++; /* the re-compare after write-protecting */
	if (pg->cid != cid && !sp_fp_eq(page_fp(m, pg), cid_fp(m, cid)))
		return SP_ECHANGED;
	if (domain_of(m, pg) != domain)
		return SP_EDENIED;
	return split_for_merge(m, p);
}

/* One more mapping saved. */
static void merged(struct sim_mem *m)
{
	m->merges++;
	m->counts[BK_COST_MERGE]++;
}

static int mem_merge_pages(void *impl, bk_page p, bk_page keep, bk_frame *out)
{
	struct sim_mem *m = impl;
	struct sim_page *kp = &m->pages[keep], *pp = &m->pages[p];
	uint32_t slot;
	int rc;

	if (p == keep || !(kp->flags & PG_PRESENT) || slot_at(m, keep) == SLOT_ZERO)
		return SP_EINVAL;
	if (!(kp->flags & PG_MAPPED)) {
		/*
		 * keep becomes the shared frame first (try_to_merge_two_pages()): its
		 * huge page is split before p is even checked, and stays split if p's
		 * merge then fails.
		 */
		if (!(pp->flags & PG_PRESENT) || (pp->flags & PG_MAPPED) ||
		    (pp->cid != kp->cid && !sp_fp_eq(page_fp(m, pp), page_fp(m, kp))) ||
		    domain_of(m, pp) != domain_of(m, kp))
			return merge_check(m, p, kp->cid, domain_of(m, kp)); /* refused, no split */
		rc = split_for_merge(m, keep);
		if (rc < 0)
			return rc;
	}
	rc = merge_check(m, p, kp->cid, domain_of(m, kp));
	if (rc < 0)
		return rc;
	if (!(kp->flags & PG_MAPPED)) {
		if (bk_frames_alloc(&m->frames, kp->node, domain_of(m, kp), &slot) < 0)
			return SP_ENOMEM;
		/* a non-zero-flagged page may hold {0,0} under an id of its own: the frame's is 0 */
		*frame_cid(m, slot) = m->zero_ids && sp_fp_is_zero(page_fp(m, kp)) ? 0 : kp->cid;
		map_slot(m, kp, slot);
		map_slot(m, &m->pages[p], slot);
	} else {
		slot = slot_at(m, keep);
		map_slot(m, &m->pages[p], slot);
	}
	merged(m);
	if (out)
		*out = handle(m, slot);
	return 0;
}

static int mem_merge_frame(void *impl, bk_page p, bk_frame f)
{
	struct sim_mem *m = impl;
	uint32_t slot = slot_of(m, f);
	int rc;

	if (slot == 0)
		return SP_ECHANGED; /* the frame is gone */
	if (slot == SLOT_ZERO)
		return SP_EINVAL;
	rc = merge_check(m, p, *frame_cid(m, slot), m->frames.slot[slot].domain);
	if (rc < 0)
		return rc;
	map_slot(m, &m->pages[p], slot);
	merged(m);
	return 0;
}

static int mem_merge_zero(void *impl, bk_page p)
{
	struct sim_mem *m = impl;
	struct sim_page *pg = &m->pages[p];
	int rc = merge_check(m, p, 0, domain_of(m, pg));

	if (rc < 0)
		return rc;
	set_slot(m, p, SLOT_ZERO);
	m->on_zero++;
	merged(m);
	return 0;
}

static int mem_unmerge(void *impl, bk_page p)
{
	struct sim_mem *m = impl;

	if (!(m->pages[p].flags & PG_MAPPED))
		return SP_EINVAL;
	if (m->pages[p].flags & PG_SPLITZERO)
		m->thp_zero--;
	unmap_slot(m, &m->pages[p]);
	return 0;
}

static uint32_t mem_frame_mappers(void *impl, bk_frame f)
{
	struct sim_mem *m = impl;
	uint32_t slot = slot_of(m, f);

	return slot ? m->frames.slot[slot].mappers : 0;
}

static uint32_t mem_frame_node(void *impl, bk_frame f)
{
	struct sim_mem *m = impl;
	uint32_t slot = slot_of(m, f);

	return slot > SLOT_ZERO ? m->frames.slot[slot].node : 0;
}

static void mem_account(void *impl, enum bk_cost what, uint64_t n)
{
	struct sim_mem *m = impl;

	if ((unsigned)what < BK_COST__COUNT)
		m->counts[what] += n;
}

static struct sp_fp mem_content(void *impl, bk_page p)
{
	struct sim_mem *m = impl;

	return page_fp(m, &m->pages[p]);
}

static void mem_prefetch(void *impl, bk_page p)
{
	const struct sim_mem *m = impl;
	const struct sim_page *pg = &m->pages[p];

	if (pg->flags & PG_MAPPED) { /* no algorithm hashes a page that maps a frame */
		if (m->slot[p] > SLOT_ZERO)
			__builtin_prefetch(&m->frames.slot[m->slot[p]]); /* its generation, for the handle */
	} else if (!(pg->flags & PG_SUMMED)) { /* else checksum_again() will not read the content */
		cidtab_prefetch_fp(&m->truth, pg->cid);
	}
}

/*
 * The page record only, not slot[p]: page_info() reads the slot of a page
 * that maps a frame, and the callers (esx, uksm, in random order) read no
 * record of the pages that map one of theirs (their own records say so):
 * for those and for a private page the slot was a random line for nothing.
 * A page mapped otherwise (the zero page after a huge-page split) waits
 * for its slot at prefetch().
 */
static void mem_prefetch_info(void *impl, bk_page p)
{
	const struct sim_mem *m = impl;

	__builtin_prefetch(&m->pages[p]);
}

/*
 * What compare_frame() reads of f: the slot (generation, mappers, content
 * id: one line).  Without a branch: the ksm model asks for every page two
 * ahead, a frame or none (the private slot 0: its line is hot) at random.
 */
static void mem_prefetch_frame(void *impl, bk_frame f)
{
	const struct sim_mem *m = impl;
	uint32_t s = (uint32_t)f;

	s &= 0u - ((uint32_t)(s > SLOT_ZERO) & (uint32_t)(s < m->frames.n));
	__builtin_prefetch(&m->frames.slot[s]);
}

static uint32_t mem_content_id(void *impl, bk_page p)
{
	const struct sim_mem *m = impl;

	return m->pages[p].cid; /* the truth's id: 0 unless present and not zero-filled */
}

static void mem_content_counts(void *impl, struct bk_content_counts *out)
{
	const struct sim_mem *m = impl;

	out->present = m->present;
	out->held = (int64_t)cidtab_total(&m->truth);
	out->distinct = (int64_t)cidtab_distinct(&m->truth);
	out->shared = (int64_t)cidtab_shared(&m->truth);
	out->zero = m->truth_zero;
	out->zero_keys = m->zero_keys;
	out->zero_shared = m->zero_shared;
}

static const struct backend_ops sim_backend_ops = {
	.npages = mem_npages,
	.nnodes = mem_nnodes,
	.nguests = mem_nguests,
	.page_size = mem_page_size,
	.zero_checksum = mem_zero_checksum,
	.page_info = mem_page_info,
	.checksum = mem_checksum,
	.compare = mem_compare,
	.compare_frame = mem_compare_frame,
	.merge_pages = mem_merge_pages,
	.merge_frame = mem_merge_frame,
	.merge_zero = mem_merge_zero,
	.unmerge = mem_unmerge,
	.frame_mappers = mem_frame_mappers,
	.frame_node = mem_frame_node,
	.account = mem_account,
	.content = mem_content,
	.checksum_uncounted = mem_checksum_uncounted,
	.written = mem_written,
	.content_id = mem_content_id,
	.prefetch = mem_prefetch,
	.content_counts = mem_content_counts,
	.prefetch_info = mem_prefetch_info,
	.prefetch_frame = mem_prefetch_frame,
	.checksum_again = mem_checksum_again,
	.unheard_changes = mem_unheard_changes,
};

struct backend sim_mem_backend(struct sim_mem *m)
{
	struct backend b = { &sim_backend_ops, m };

	return b;
}

/* ---- replay ----------------------------------------------------------- */

/* Page pg (its flags set) now holds content fp, of hash h: counted, and its id taken. */
static inline __attribute__((always_inline)) int truth_add(struct sim_mem *m, struct sim_page *pg, struct sp_fp fp, uint64_t h)
{
	if (!(pg->flags & PG_PRESENT))
		return 0;
	if (pg->flags & PG_ZERO) {
		int64_t n = ++m->zero_dom[m->dom_ix[pg->guest]];

		m->truth_zero++;
		m->zero_keys += n == 1;
		m->zero_shared += n == 2;
		return 0;
	}
	if (sp_fp_is_zero(fp))
		m->zero_ids = true;
	return cidtab_add_hash(&m->truth, fp, domain_of(m, pg), h, &pg->cid) < 0 ? SP_ENOMEM : 0;
}

/* Page pg's content is uncounted; it holds {0,0} until truth_add(). */
static inline __attribute__((always_inline)) void truth_remove(struct sim_mem *m, struct sim_page *pg)
{
	if ((pg->flags & PG_PRESENT) && (pg->flags & PG_ZERO)) {
		int64_t n = m->zero_dom[m->dom_ix[pg->guest]]--;

		m->truth_zero--;
		m->zero_keys -= n == 1;
		m->zero_shared -= n == 2;
	}
	if (pg->cid)
		cidtab_put(&m->truth, pg->cid);
	pg->cid = 0;
}

static inline uint64_t locate(const struct sim_mem *m, const struct trace_record *rec)
{
	uint64_t i;

	if (rec->guest >= m->h->nguests)
		return SIM_NO_PAGE;
	if (rec->page < m->whole[rec->guest]) /* the common case: no search */
		return m->base[rec->guest] + rec->page;
	if (!m->lay || sim_layout_index(m->lay, rec->guest, rec->page, &i) < 0)
		return SIM_NO_PAGE;
	return i;
}

uint64_t sim_mem_locate(const struct sim_mem *m, const struct trace_record *rec)
{
	return locate(m, rec);
}

int sim_mem_apply(struct sim_mem *m, const struct trace_record *rec, bk_page *page,
		  uint32_t *what, bool *notify, struct sp_err *err)
{
	return sim_mem_apply_at(m, rec, sim_mem_locate(m, rec), sim_mem_hash(m, rec), page, what,
				notify, err);
}

uint64_t sim_mem_hash(const struct sim_mem *m, const struct trace_record *rec)
{
	return rec->guest < m->h->nguests ? cidtab_hash(rec->fp, m->h->guests[rec->guest].domain) : 0;
}

/*
 * sim_mem_apply_at()'s body, inlined into sim_mem_apply_batch()'s loop: a
 * call, its saved registers and its results through memory a record less
 * (callgrind, issue 14's nineteenth round).
 */
static inline __attribute__((always_inline)) int
apply_one(struct sim_mem *m, const struct trace_record *rec, uint64_t at, uint64_t hash,
	  bk_page *page, uint32_t *what, bool *notify, struct sp_err *err)
{
	bk_page p = at;
	struct sim_page *pg;
	bool was_present;
	bool present = rec->flags & TRACE_PRESENT;
	bool content_changed;

	if (at == SIM_NO_PAGE)
		return sp_err_set(err, SP_EINVAL, "a record for guest %u page %llu that the replay's "
				  "page layout does not hold", rec->guest, (unsigned long long)rec->page);
	pg = &m->pages[p];
	was_present = pg->flags & PG_PRESENT;

	if ((rec->flags & TRACE_ZERO) && !sp_fp_is_zero(rec->fp))
		return sp_err_set(err, SP_EINVAL, "a record for guest %u page %llu: zero-filled, yet "
				  "with a fingerprint", rec->guest, (unsigned long long)rec->page);
	if (rec->node > TRACE_MAX_NODE)
		return sp_err_set(err, SP_EINVAL, "a record for guest %u page %llu: node %u (nodes run "
				  "to %d)", rec->guest, (unsigned long long)rec->page, rec->node,
				  TRACE_MAX_NODE);
	content_changed = !was_present || !present || !sp_fp_eq(page_fp(m, pg), rec->fp) ||
			  (bool)(pg->flags & PG_ZERO) != (bool)(rec->flags & TRACE_ZERO);
	*page = p;
	*what = 0;
	*notify = false;
	if (!content_changed) {
		/* Same content: only the huge mark or the node may have moved. */
		pg->flags = (pg->flags & ~PG_HUGE & PG_FLAGS) |
			    ((rec->flags & TRACE_HUGE) ? PG_HUGE : 0);
		pg->node = rec->node;
		if (rec->node + 1u > m->nnodes)
			m->nnodes = rec->node + 1u;
		return 0;
	}
	truth_remove(m, pg);
	if (pg->flags & PG_MAPPED) {
		if (pg->flags & PG_SPLITZERO)
			m->thp_zero--;
		else if (present && was_present) {
			m->cow_breaks++;
			m->counts[BK_COST_COW_BREAK]++;
			*what |= ALGO_CHANGE_COW;
		}
		unmap_slot(m, pg);
	}
	pg->node = rec->node;
	if (rec->node + 1u > m->nnodes)
		m->nnodes = rec->node + 1u; /* nnodes() may grow: a record can name any node */
	pg->flags = (present ? PG_PRESENT : 0) | ((rec->flags & TRACE_ZERO) ? PG_ZERO : 0) |
		    ((rec->flags & TRACE_HUGE) ? PG_HUGE : 0);
	*what |= present ? (was_present ? ALGO_CHANGE_CONTENT : ALGO_CHANGE_MAPPED)
			 : ALGO_CHANGE_UNMAPPED;
	*notify = (*what & ALGO_CHANGE_COW) || (!present && was_present);
	m->present += (int64_t)present - (int64_t)was_present;
	if (truth_add(m, pg, rec->fp, hash) < 0)
		return sp_err_set(err, SP_ENOMEM, "out of memory counting contents");
	return 0;
}

int sim_mem_apply_at(struct sim_mem *m, const struct trace_record *rec, uint64_t at, uint64_t hash,
		     bk_page *page, uint32_t *what, bool *notify, struct sp_err *err)
{
	return apply_one(m, rec, at, hash, page, what, notify, err);
}

int sim_mem_apply_batch(struct sim_mem *m, const struct trace_record *rec, unsigned n,
			const uint64_t *at, const uint64_t *hash, bool all, uint32_t hear,
			sim_mem_changed_fn changed, void *st, unsigned *applied, bool *in_changed,
			struct sp_err *err)
{
	*in_changed = false;
	/*
	 * The index lines a freed content's slot is searched from (snapshots
	 * after the first: most changed pages held their content alone), back
	 * to back before the batch is applied; their entries were hinted a
	 * batch ago (sim_mem_prefetch_more_batch()).
	 */
	for (unsigned k = 0; k < n; k++)
		if (at[k] != SIM_NO_PAGE)
			cidtab_prefetch_home_of_id(&m->truth, m->pages[at[k]].cid);
	if (hear == 0) { /* nothing to tell: the loop without what's and notify's work */
		for (unsigned k = 0; k < n; k++) {
			bk_page p;
			uint32_t what;
			bool notify;
			int rc = apply_one(m, &rec[k], at[k], hash[k], &p, &what, &notify, err);

			if (rc < 0) {
				*applied = k;
				return rc;
			}
		}
		*applied = n;
		return 0;
	}
	for (unsigned k = 0; k < n; k++) {
		bk_page p = 0;
		uint32_t what = 0;
		bool notify = false;
		int rc = apply_one(m, &rec[k], at[k], hash[k], &p, &what, &notify, err);

		if (rc < 0) {
			*applied = k;
			return rc;
		}
		if ((what & hear) && (all || notify) && (rc = changed(st, p, what)) < 0) {
			*applied = k + 1;
			*in_changed = true;
			return rc;
		}
	}
	*applied = n;
	return 0;
}

static bool rec_counted(const struct trace_record *rec)
{
	return (rec->flags & (TRACE_PRESENT | TRACE_ZERO)) == TRACE_PRESENT;
}

void sim_mem_prefetch_batch(const struct sim_mem *m, const struct trace_record *rec, unsigned n,
			    uint64_t *at, uint64_t *hash)
{
	const void *line[2 * SIM_HINT_BATCH_MAX];
	const struct trace_guest *guests = m->h->guests;
	unsigned nl = 0;

	assert(n <= SIM_HINT_BATCH_MAX);
	/*
	 * First where each record goes, then the hints back to back (see
	 * sim.h).  In locals, stored once: a store through at[] or hash[]
	 * made the compiler load the record and m's fields again.
	 */
	for (unsigned k = 0; k < n; k++) {
		uint64_t a = locate(m, &rec[k]), h = 0;

		if (a != SIM_NO_PAGE) {
			h = cidtab_hash(rec[k].fp, guests[rec[k].guest].domain);
			line[nl++] = &m->pages[a];
			if (rec_counted(&rec[k]))
				line[nl++] = cidtab_home_slot(&m->truth, h);
		}
		at[k] = a;
		hash[k] = h;
	}
	for (unsigned k = 0; k < nl; k++)
		__builtin_prefetch(line[k], 1);
}

void sim_mem_prefetch_more_batch(const struct sim_mem *m, const struct trace_record *rec,
				 unsigned n, const uint64_t *at, const uint64_t *hash)
{
	for (unsigned k = 0; k < n; k++) {
		if (at[k] == SIM_NO_PAGE)
			continue;
		cidtab_prefetch_id(&m->truth, m->pages[at[k]].cid); /* the content it leaves */
		if (rec_counted(&rec[k]))
			cidtab_prefetch_entry_hash(&m->truth, hash[k]);
	}
}

void sim_mem_usage(const struct sim_mem *m, int64_t *present, int64_t *on_zero)
{
	*present = m->present;
	*on_zero = m->on_zero;
}

void sim_mem_metrics(const struct sim_mem *m, const struct sim_cost *cost, struct metrics *out)
{
	double ns = sim_cost_scanner_ns(cost, m->counts);

	out->cow_breaks = m->cow_breaks;
	out->checksums = (int64_t)m->counts[BK_COST_CHECKSUM];
	out->compares = (int64_t)m->counts[BK_COST_COMPARE];
	out->merges = m->merges;
	out->cpu_ns = (int64_t)ns;
	out->oracle_saving = (int64_t)cidtab_duplicates(&m->truth) + m->truth_zero;
	out->remote_sharers = m->remote;
	out->thp_splits = m->thp_splits;
	out->thp_zero_pages = m->thp_zero;
	out->pages_present = (int64_t)cidtab_total(&m->truth) + m->truth_zero;
}
