/*
 * backend.h - the only things a merge algorithm may ask of memory.
 *
 * An algorithm never knows whether it runs against a replayed trace (sim/)
 * or against live memory (real/).  It sees a fixed array of mergeable pages,
 * numbered 0..npages-1 in scan order (guest by guest, page by page), and asks
 * the backend to checksum, compare and merge them.  The backend owns the
 * truth: which pages share which frame, what a write did, what it all cost.
 *
 * Frames.  Every present page maps either its own private frame or a shared
 * frame (a "KSM page") or the shared zero page.  A shared frame is named by a
 * bk_frame handle that carries a generation, so a handle kept after the
 * frame's last mapper went away is recognisably stale (frame_mappers() == 0),
 * just as the kernel's get_ksm_page() finds a stable node's page gone.
 *
 * Writes.  When a guest writes a page that maps a shared frame or the zero
 * page, the backend gives it a private copy (a COW break), counts it, and the
 * driver tells the algorithm through algo_ops.page_changed().  Algorithms
 * that declare ALGO_CAP_OMNISCIENT (simulation only) hear of every change.
 *
 * Write tracking (optional, written()): a backend that knows which pages
 * were written since an algorithm last looked spares it re-hashing the
 * others; an algorithm that uses it must decide exactly as without it.
 *
 * Costs.  checksum(), compare*() and merge*() are counted by the backend;
 * an algorithm reports its own bookkeeping work (tree steps, visits) with
 * account().  The simulator turns counts into CPU time with a cost model;
 * the live backend measures CPU time instead.
 */
#ifndef SP_BACKEND_H
#define SP_BACKEND_H

#include <stdint.h>

#include "fingerprint.h"

typedef uint64_t bk_page;  /* 0..npages-1, scan order */
typedef uint64_t bk_frame; /* generation << 32 | slot; BK_NO_FRAME when private */

#define BK_NO_FRAME ((bk_frame)0)
#define BK_ZERO_FRAME ((bk_frame)1) /* the shared zero page; never freed */

struct bk_page_info {
	uint32_t guest;   /* index in the trace's guest table */
	uint32_t node;    /* NUMA node of the page's memory */
	uint32_t domain;  /* security domain: pages of different domains never share */
	uint64_t pfn;     /* page number within its guest */
	uint8_t present;  /* mapped and populated */
	uint8_t zero;     /* content is all zero bytes (backend knows, a scanner must checksum) */
	uint8_t huge;     /* part of a transparent huge page */
	bk_frame frame;   /* the shared frame it maps, BK_ZERO_FRAME, or BK_NO_FRAME */
};

/* Work an algorithm reports itself; the backend counts the rest. */
enum bk_cost {
	BK_COST_VISIT,      /* a page looked at by the scanner (cursor step, rmap lookup) */
	BK_COST_CHECKSUM,   /* counted by checksum() */
	BK_COST_COMPARE,    /* counted by compare*() */
	BK_COST_TREE_STEP,  /* one node visited in a search structure */
	BK_COST_MERGE,      /* counted by merge*() */
	BK_COST_COW_BREAK,  /* counted by the backend on a write; guest time, not scanner */
	BK_COST_FIRST_VISIT, /* a page's first visit: its rmap item allocated (ksm), beyond the visit */
	/*
	 * Touching a page left untouched for a while, beyond a hot read (TLB
	 * and cache misses; on a virtual machine whose host ages or reclaims
	 * idle guest memory, microseconds): one class per idle time, named by
	 * its centre, bounded by the geometric means of neighbouring centres
	 * (bk_idle_class()).  The ksm model counts the page a visit reads and
	 * the tree pages its searches read (ksm.c).  Keep them in order.
	 */
	BK_COST_IDLE_50MS,  /* idle 35-71 ms */
	BK_COST_IDLE_100MS, /* 71-141 ms */
	BK_COST_IDLE_200MS, /* 141-316 ms */
	BK_COST_IDLE_500MS, /* 316-707 ms */
	BK_COST_IDLE_1S,    /* 0.71-1.41 s */
	BK_COST_IDLE_2S,    /* 1.41-3.16 s */
	BK_COST_IDLE_5S,    /* 3.16 s and longer */
	/*
	 * A batch that reads page contents after the scanner slept, beyond its
	 * pages' own costs: on the development VM ksmd's batches at 20 ms sleeps
	 * cost ~0.2 ms more when they read one page than when they read none,
	 * whatever the reads' count (bench/README.md "bench_cost.sh", fourth
	 * round).  The ksm model counts one per such batch.
	 */
	BK_COST_BATCH_READ,
	/*
	 * A visit of a page visited before, per ms since that visit, beyond
	 * BK_COST_VISIT: the page's rmap item, page table and struct page lay
	 * idle one full scan.  On the development VM (a PVM guest) ksmd's
	 * batches of 100 visits of merged pages cost ~45 us when each page was
	 * visited ~1 s before, ~110 us after ~4 s (0.2-0.3 ns a visit-ms;
	 * bench/README.md "bench_cost.sh", fifth round); hot below 35 ms.
	 */
	BK_COST_VISIT_IDLE,
	/*
	 * A visit of a page visited before, idle 35 ms or more (one full
	 * scan), once, beyond BK_COST_VISIT and BK_COST_VISIT_IDLE: what a
	 * visit pays for being cold at all.  ksmd's visits cost 1.5-2x the hot
	 * visit at ~0.1 s scans, where visit_idle's line from the hot visit
	 * added ~10% (bench/README.md "bench_cost.sh", seventh and eighth
	 * rounds); `sim calibrate` fits visit_cold and visit_idle through
	 * merged pages' visits at two periods (~0.1 and ~4 s).  The ksm model counts one per
	 * revisit a batch, with visit_idle.
	 */
	BK_COST_VISIT_COLD,
	/*
	 * A batch after a sleep, whatever it reads: the wake-up and the cold
	 * start of the scan loop.  ksmd's batches of 100 visits of merged pages
	 * after 20 ms sleeps cost 18-30 us more than the same visits in
	 * batches of 2000 (bench/README.md "bench_cost.sh", eighth round).
	 * The ksm model counts one per batch after a sleep, the wrap's too.
	 */
	BK_COST_BATCH_WAKE,
	/*
	 * A level of an unstable tree search whose node was left untouched 35
	 * ms or more, beyond its BK_COST_TREE_STEP: ksmd's
	 * unstable_tree_search_insert() looks the node's page up in its mm
	 * (get_mergeable_page(): the VMA, the page table walk, the folio) and
	 * compares it with memcmp_pages(), which stops at the first differing
	 * byte - a line or two of the page, not the whole page that the
	 * BK_COST_IDLE_* classes price (a checksum's read).  Until issue 13's
	 * tenth round these levels counted in the idle classes; the model over
	 * ksmd by 11-18% at the aggressive tunables, trees and reads 1.32 s
	 * against ksmd's 0.85 s (bench/README.md "bench_cost.sh", ninth
	 * round).  `sim calibrate` measures it: the same unique pages scanned
	 * at the same period in one batch and in several (phase F).  The ksm
	 * model counts the levels idle 35 ms or more (touch_tree_idle()).
	 */
	BK_COST_TREE_IDLE,
	BK_COST__COUNT
};

#define BK_IDLE_CLASSES (BK_COST_IDLE_5S - BK_COST_IDLE_50MS + 1)

#define BK_IDLE_MIN_NS 35355339u /* the lower bound of BK_COST_IDLE_50MS */

/*
 * The idle class of a page touch after idle_ns untouched (BK_COST_IDLE_*),
 * or -1: hot.  The bounds (bk_idle_bound(c), the lower one of class
 * BK_COST_IDLE_50MS + c): 50 ms / sqrt(2), then the geometric means of 50,
 * 100, 200, 500 ms, 1, 2 and 5 s.
 */
static inline uint64_t bk_idle_bound(int c)
{
	static const uint64_t bound[BK_IDLE_CLASSES] = {
		BK_IDLE_MIN_NS, 70710678, 141421356, 316227766, 707106781, 1414213562, 3162277660u,
	};

	return bound[c];
}

static inline int bk_idle_class(uint64_t idle_ns)
{
	int c = -1;

	while (c + 1 < BK_IDLE_CLASSES && idle_ns >= bk_idle_bound(c + 1))
		c++;
	return c < 0 ? -1 : BK_COST_IDLE_50MS + c;
}

/* backend_ops.content_counts(): present pages, counted by content id. */
struct bk_content_counts {
	int64_t present;     /* present pages */
	int64_t held;        /* present pages not zero-filled: each holds a content id */
	int64_t distinct;    /* content ids held */
	int64_t shared;      /* content ids held by two pages or more */
	int64_t zero;        /* present zero-filled pages */
	int64_t zero_keys;   /* security domains with a present zero-filled page */
	int64_t zero_shared; /* security domains with two or more */
};

struct backend_ops {
	uint64_t (*npages)(void *impl);
	uint32_t (*nnodes)(void *impl); /* 1 + highest node seen; may grow as pages move */
	uint32_t (*nguests)(void *impl);
	uint32_t (*page_size)(void *impl);
	/* checksum() of a zero-filled page, as ksmd computes zero_checksum at start. */
	uint32_t (*zero_checksum)(void *impl);
	void (*page_info)(void *impl, bk_page p, struct bk_page_info *out);

	/* 32-bit checksum of the page's content now. */
	uint32_t (*checksum)(void *impl, bk_page p);
	/* Content order (<0, 0, >0) of two pages, or of a page and a frame, now. */
	int (*compare)(void *impl, bk_page a, bk_page b);
	int (*compare_frame)(void *impl, bk_page a, bk_frame f);

	/*
	 * Make private page p share a frame with page keep: if keep maps a shared
	 * frame p joins it, else keep's frame becomes a new shared frame.  The
	 * frame is returned in *out.  Fails with SP_ECHANGED if the two contents
	 * differ now, SP_EDENIED across security domains, SP_EINVAL if p is not a
	 * present private page, SP_EPINNED (the live backend) if either page is
	 * pinned for I/O.  Nothing changes on failure.
	 */
	int (*merge_pages)(void *impl, bk_page p, bk_page keep, bk_frame *out);
	/* Private page p joins shared frame f (same failures; SP_ECHANGED if f is stale). */
	int (*merge_frame)(void *impl, bk_page p, bk_frame f);
	/* Private zero-filled page p maps the shared zero page (SP_ECHANGED if not zero). */
	int (*merge_zero)(void *impl, bk_page p);
	/* Give merged page p a private copy again (the kernel's break_ksm). */
	int (*unmerge)(void *impl, bk_page p);

	/* Mappers of f now; 0 when f is stale or freed. */
	uint32_t (*frame_mappers)(void *impl, bk_frame f);
	uint32_t (*frame_node)(void *impl, bk_frame f);

	void (*account)(void *impl, enum bk_cost what, uint64_t n);

	/* Exact content; only for ALGO_CAP_OMNISCIENT algorithms. NULL in real mode. */
	struct sp_fp (*content)(void *impl, bk_page p);

	/*
	 * Added after the first version (NULL in a backend that predates it):
	 * checksum() without counting its cost, for an algorithm that models a
	 * cheaper hash of its own (e.g. UKSM's partial-page hash) and reports
	 * that work itself with account().  The value equals checksum()'s.
	 * An algorithm must fall back to checksum() when this is NULL.
	 */
	uint32_t (*checksum_uncounted)(void *impl, bk_page p);

	/*
	 * Added after checksum_uncounted (NULL in a backend that cannot track
	 * writes): "written since the last visit".  0 when page p has certainly
	 * not been written between the previous written() call on p and the
	 * backend's view now, 1 when it was or may have been (the first call; a
	 * page the backend does not track).  Every call starts a new interval.
	 * The view may lag the call slightly (live: a window of 512 pages read
	 * earlier in the same engine batch, about 1 ms at most); a write it
	 * misses is reported by the next call, so
	 * no write is ever missed, only seen one visit later, as a write landing
	 * just after a checksum is.  A backend may answer 1 for an unwritten
	 * page.  So an algorithm may use it only to skip work that a write could
	 * change and nothing else can: re-hashing a page whose checksum it took
	 * right after the previous call (the checksum it kept is then the page's
	 * checksum as of the view).  Used so, it decides the same with or
	 * without the capability, in sim and in real.  The simulator answers
	 * exactly from the trace (content changed, mapped or unmapped) and
	 * charges nothing (a bit test); the live backend answers from userfaultfd
	 * asynchronous write protection read with PAGEMAP_SCAN, its cost in the
	 * measured CPU.
	 */
	int (*written)(void *impl, bk_page p);

	/*
	 * Added after written() (NULL in real mode): a small id of page p's
	 * exact content within its security domain, for ALGO_CAP_OMNISCIENT
	 * algorithms, so they can count contents without hashing fingerprints.
	 * Two present, non-zero pages have the same id exactly when their
	 * content and domain are equal; zero-filled and absent pages have 0.
	 * An id is reused only after no page holds it (between two changes an
	 * algorithm hears of, nothing else moves).  ids are below 2^32 - 1.
	 */
	uint32_t (*content_id)(void *impl, bk_page p);

	/*
	 * Added after content_id (NULL: no hints): page p is visited soon;
	 * starts loading what page_info() and checksum() of p will read.  A
	 * hint only: it changes nothing and costs nothing in the model.
	 */
	void (*prefetch)(void *impl, bk_page p);

	/*
	 * Added after prefetch (NULL in real mode): the backend's own count of
	 * its present pages by content and security domain (the content ids'
	 * multiset, see content_id), for ALGO_CAP_OMNISCIENT algorithms, so they
	 * need not count page by page what the backend counts anyway.
	 */
	void (*content_counts)(void *impl, struct bk_content_counts *out);

	/*
	 * Added after content_counts (NULL: no hints): page p is visited a few
	 * visits after prefetch() could be called for it, in an order no
	 * hardware prefetcher follows (random samples): starts loading what
	 * page_info() reads, without waiting for it, so that prefetch(), which
	 * needs it to find the rest, does not wait either.  A hint only.
	 */
	void (*prefetch_info)(void *impl, bk_page p);

	/*
	 * Added after prefetch_info (NULL: no hints): shared frame f is likely
	 * to be compared with soon (compare_frame()); starts loading what that
	 * reads of the frame.  A hint only: any handle, even a stale or invalid
	 * one, is allowed; it changes nothing and costs nothing in the model.
	 */
	void (*prefetch_frame)(void *impl, bk_frame f);

	/*
	 * Added after prefetch_frame (0 in a backend that predates it): 1 when
	 * the backend measures CPU time and reads none of the counts an
	 * algorithm reports with account() for the cost model (the live
	 * backend): an algorithm may then leave out the work of working those
	 * counts out (idle classes, the cost of its tree walks).  No decision
	 * may depend on it.
	 */
	uint8_t cost_measured;

	/*
	 * Added after cost_measured (NULL: call checksum()): checksum() of page
	 * p, counted and valued the same, for a caller that may keep the value:
	 * kept is NULL, or points to what the previous checksum_again() of p
	 * returned (to this caller: one algorithm per backend).  A backend that
	 * knows p's content unchanged since then may return *kept without
	 * reading the page.  Only the simulator's speed changes.
	 */
	uint32_t (*checksum_again)(void *impl, bk_page p, const uint32_t *kept);

	/*
	 * Added after checksum_again (NULL: the backend does not say): a count
	 * that moves whenever what page_info() says of a page's presence or
	 * frame changes without the algorithm's being told or having done it:
	 * told by page_changed() (a COW break, an unmapped page), done by its
	 * own merge of that page.  The simulator's huge-page split that maps
	 * zero-filled subpages to the zero page (sim/mem.c) is such a change;
	 * the live backend has none (0 for ever).  An algorithm that knows a
	 * page's presence and frame from its last visit and the changes since
	 * may leave page_info() uncalled while the count stays where it was
	 * (the ksm model's smart_scan skips), and must ask it every visit from
	 * the first move on or when this is NULL.  Only speed changes.
	 */
	uint64_t (*unheard_changes)(void *impl);
};

struct backend {
	const struct backend_ops *ops;
	void *impl;
};

#endif
