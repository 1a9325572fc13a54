/*
 * live.h - the live backend: struct backend_ops over regions of live memory
 * this process holds, with actual copy-on-write merging (see live.c for the
 * mechanism and why no write is ever lost).
 *
 * A live backend is single-threaded: every call on it (the backend_ops, the
 * poll and page-state calls below) must come from one thread at a time (the
 * engine's, or under the engine's lock).  Other threads may read and write
 * the registered memory at any time: that is the point.  With cow_events
 * the backend runs one thread of its own, which only answers write faults
 * on merged pages (live.c, "COW events").
 */
#ifndef SP_REAL_LIVE_H
#define SP_REAL_LIVE_H

#include <stdbool.h>
#include <stdint.h>

#include "backend.h"
#include "metrics.h"
#include "sp_error.h"

#define REAL_LIVE_MAX_NODES 64

/* One region of private anonymous memory, page aligned. */
struct real_live_region {
	void *addr;
	uint64_t len;     /* bytes, a multiple of the page size */
	uint32_t guest;   /* reported in bk_page_info.guest */
	uint32_t domain;  /* security domain: pages of different domains never share */
	int node_hint;    /* node reported for pages whose node cannot be queried; -1: 0 */
};

/*
 * Where pages and frames live.  NULL in the config: the host's, from libnuma
 * (move_pages queries; pools bound with mbind when the host has more than one
 * node).  Tests inject a fake one: page_node() then decides every page's
 * node and pools are not bound (bind = false).
 */
struct real_live_topo {
	uint32_t nnodes;
	/* The node of the page at addr, or a negative value for "unknown". */
	int (*page_node)(void *arg, const void *addr);
	void *arg;
	bool bind; /* mbind each node's pool to its node */
};

struct real_live_config {
	const struct real_live_topo *topo; /* NULL: the host's */
	/*
	 * merge_across_nodes=0: refuse (SP_EDENIED) any merge whose page and
	 * frame are on different nodes, whatever the algorithm asks.
	 */
	bool strict_nodes;
	/* Most VMAs the process may have; 0: /proc/sys/vm/max_map_count, held (mapcount.h). */
	uint64_t max_map_count;
	/*
	 * Track writes (userfaultfd asynchronous write protection and the
	 * PAGEMAP_SCAN ioctl, Linux >= 6.7): the backend then offers written()
	 * (backend.h).  Where the kernel lacks either, the backend works without
	 * it and real_live_tracking_off() says why.
	 */
	bool track_writes;
	/*
	 * COW breaks as events (issue 15): a merged page stays write-protected
	 * with a third, synchronous userfaultfd whose faults a thread of the
	 * backend answers at once (it lifts the protection, the kernel makes the
	 * copy, the page is queued); real_live_poll() settles the queued pages
	 * and no longer reads pagemap for the others.  With track_writes on
	 * (and granted) there is no thread: merged pages join the tracking
	 * userfaultfd, the kernel resolves their write faults itself (a writer
	 * waits as for a COW break of kernel KSM) and the copies show in the
	 * tracking's PAGEMAP_SCANs (the poll reads windows no visit read for
	 * 2 s).  Off, or where the kernel refuses it: every merged page is
	 * polled, as before.
	 */
	bool cow_events;
	/*
	 * How a write-tracking window read protects the written pages again
	 * (REAL_LIVE_PROTECT_*): BY_RUN (0), a read that protects nothing, then
	 * one PAGEMAP_SCAN a run of written pages, whose TLB flush covers those
	 * pages alone; IN_READ, in the read itself (one call, as before
	 * 2026-12-02), whose flush runs from the first written page to the end
	 * of each VMA piece it walks: one INVLPG a page up to 33 pages, each a
	 * hypervisor exit on a PVM guest (bench/README.md, issue 15, twentieth
	 * round).
	 */
	uint8_t track_protect;
	/*
	 * How a merge freezes a page while it compares it (REAL_LIVE_FREEZE_*):
	 * MOVE (0), its page moved out of its place (UFFDIO_MOVE, Linux 6.8) to
	 * a staging area of the backend, one TLB flush a merge; PROTECT, a
	 * synchronous write protection (as before 2026-12-03), three.  With MOVE,
	 * pages the kernel will not move (a COW copy in a pool mapping, a pinned
	 * or shared page; see live.c, "Freeze by move") are protected, as is
	 * every page where the kernel has no UFFDIO_MOVE.
	 */
	uint8_t freeze;
};
enum { REAL_LIVE_PROTECT_BY_RUN, REAL_LIVE_PROTECT_IN_READ };
enum { REAL_LIVE_FREEZE_MOVE, REAL_LIVE_FREEZE_PROTECT };

struct real_live;

/*
 * Takes over the regions for merging: registers them with a userfaultfd for
 * write protection and queries every page's node.  The regions stay the
 * caller's; pages of them are remapped as they merge.  SP_EPERM without
 * userfaultfd access (root, or /dev/userfaultfd), SP_EINVAL for a region that
 * is not page-aligned private anonymous memory.
 */
int real_live_new(struct real_live **out, const struct real_live_region *regions, uint32_t n,
		  const struct real_live_config *cfg, struct sp_err *err);
/*
 * Forgets the regions: merged pages keep mapping their frames (the memory
 * stays valid and copy-on-write); no frame is released any more.  Call
 * real_live_unmerge_all() first to leave only private pages behind.
 */
void real_live_free(struct real_live *L);
struct backend real_live_backend(struct real_live *L);
/* NULL when writes are tracked, else why not ("not asked for", a missing kernel facility). */
const char *real_live_tracking_off(const struct real_live *L);

/*
 * Runs.  With deferred remaps on, a merge write-protects, compares and books
 * the page at once but its remap waits: runs of consecutive pages merged
 * onto consecutive frames of a pool (successive new frames are allocated
 * consecutively) are remapped with one mmap, and share one VMA.  The page's
 * writers wait in the kernel until then.  Every call below that needs the
 * mappings remaps the pending runs first; a driver calls real_live_flush()
 * after each batch (the engine does).  Off by default: every merge remaps
 * at once.
 */
void real_live_defer_remaps(struct real_live *L, bool on);
void real_live_flush(struct real_live *L);
/*
 * Before a batch: prefetches the frame table (read by page_info() for every
 * merged page the batch passes) when it is small; a batch after a sleep
 * finds it cold.  A hint only.
 */
void real_live_warm(const struct real_live *L);

/* Lines of /proc/self/maps now: the VMAs of the process. */
uint64_t real_count_vmas(void);

/* Address of page p. */
void *real_live_page_addr(const struct real_live *L, bk_page p);
/* The page of addr, or UINT64_MAX if it is not in a region. */
uint64_t real_live_page_of(const struct real_live *L, const void *addr);

/* Told for every page found changed (COW break): the driver's page_changed. */
typedef int (*real_live_change_fn)(void *arg, bk_page p, uint32_t what);

/*
 * merge_across_nodes=1: moves every frame whose sharers mostly live on
 * another node to that node (move_pages of the frame's page; every mapping
 * follows), and recounts remote_sharers.  The engine runs it after each full
 * scan of its algorithm.  *moved: frames moved.  0 or SP_ENOMEM.
 */
int real_live_rebalance(struct real_live *L, uint64_t *moved);

/*
 * COW-break detection: settles the pages the COW-event thread queued (with
 * cow_events), then reads /proc/self/pagemap for the merged pages not
 * watched by it among the next `count` pages after an internal cursor
 * (wrapping), settles each one found written (it no longer maps its frame:
 * a private copy) and calls fn(arg, p, ALGO_CHANGE_COW).  Frames left
 * without sharers are released.  Returns the number of COW breaks found, or
 * a negative SP_E* code.
 */
int real_live_poll(struct real_live *L, uint64_t count, real_live_change_fn fn, void *arg);
/* The same for one page (a write the driver knows it made). */
int real_live_check(struct real_live *L, bk_page p, real_live_change_fn fn, void *arg);

/*
 * Page p is no longer present (the driver discarded it): it reads as zero
 * from now on and uses no memory; the page's frame share is dropped.  The
 * caller reports ALGO_CHANGE_UNMAPPED.  set_present(true) marks it present
 * again before the driver writes it.
 */
int real_live_discard(struct real_live *L, bk_page p);
void real_live_set_present(struct real_live *L, bk_page p, bool present);

/* Gives every merged page a private copy again; fn hears each (COW). */
int real_live_unmerge_all(struct real_live *L, real_live_change_fn fn, void *arg);

/* Live state. */
struct real_live_stats {
	uint64_t frames;          /* shared frames in use */
	uint64_t mapped_pages;    /* pages mapping a shared frame (by the bookkeeping) */
	uint64_t zero_pages;      /* pages mapped to the zero page by a merge */
	uint64_t file_vma_pages;  /* pages living in VMAs the backend created */
	uint64_t vma_estimate;    /* VMAs the process has: the last count + 2 per page in a new VMA of ours since */
	uint64_t vma_recounts;    /* counts of /proc/self/maps made near max_map_count */
	uint64_t max_map_count;
	uint64_t map_limit_refusals; /* merges refused because of max_map_count */
	uint64_t pool_bytes;      /* allocated bytes of the frame pools (st_blocks) */
	uint64_t merge_ns;        /* wall time of successful merges, their remaps included */
	uint64_t timed_merges;    /* the merges merge_ns covers (merge_pages, merge_frame; not merge_zero) */
	uint64_t timed_pages;     /* the pages they merged (2 per merge_pages, 1 per merge_frame) */
	uint64_t cow_polled;      /* pages whose pagemap entry was read */
	uint64_t remaps;          /* mmap calls that remapped merged pages */
	uint64_t remapped_pages;  /* pages they remapped (remapped_pages / remaps: run length) */
	uint64_t remap_failures;  /* pages whose remap failed (settled later as COW breaks) */
	uint64_t base_vmas;       /* VMAs of the process when the backend was made */
	bool tracking;            /* writes are tracked (written() offered) */
	uint64_t track_scans;     /* PAGEMAP_SCAN windows read */
	uint64_t track_part_scans; /* of them, read from the asked page on (the rest read in full just before) */
	uint64_t track_wp_calls;  /* PAGEMAP_SCANs that protected one run of written pages (BY_RUN) */
	uint64_t track_wp_pages;  /* the pages they covered */
	uint64_t track_unscanned; /* answers for a page in a VMA of its own outside a window: "written" */
	uint64_t track_clean;     /* written() answers "not written" */
	uint64_t track_written;   /* written() answers "written or unknown" */
	bool cow_events;          /* merged pages are watched by the COW-event thread */
	uint64_t cow_events_seen; /* write faults on watched pages it answered (from tracking: COW breaks scans reported) */
	bool cow_from_tracking;   /* watched by the write-tracking userfaultfd (no thread) */
	uint64_t cow_sweeps;      /* windows the poll read for them (no visit had) */
	uint64_t cow_armed;       /* pages put under watch (after a merge, or again after a false alarm) */
	bool freeze_move;         /* merges freeze pages by moving them (REAL_LIVE_FREEZE_MOVE granted) */
	uint64_t freeze_moved;    /* pages frozen by a move */
	uint64_t freeze_moved_back; /* of them, put back (the merge refused: the page had changed) */
	uint64_t freeze_protected; /* pages frozen by write protection (the old way, or the move's fallback) */
	uint64_t freeze_infile;   /* of them, pages in a pool file mapping (COW copies: no move for those) */
	uint64_t move_refused[4]; /* moves the kernel refused: EBUSY, EINVAL, ENOENT, other */
	uint64_t stage_drops;     /* MADV_DONTNEEDs of the staging area (one flush for up to 64 moved pages) */
	uint64_t freeze_errors;   /* moves back or re-registrations that failed (never seen; see live.c) */
	uint64_t pinned_refusals; /* merges refused: the move's EBUSY of an exclusive page, a pin (SP_EPINNED) */
};
void real_live_stats(const struct real_live *L, struct real_live_stats *out);
/* CPU time of the backend's own threads (the COW-event thread), in ns; 0 without. */
uint64_t real_live_aux_cpu_ns(const struct real_live *L);

/*
 * Fills the (backend) fields of out: cow_breaks, checksums, compares,
 * merges, remote_sharers (cpu_ns and oracle_saving are the driver's).
 */
void real_live_metrics(const struct real_live *L, struct metrics *out);
/* Counted work (enum bk_cost). */
const uint64_t *real_live_counts(const struct real_live *L);

/*
 * Resident memory of the regions and the pools now, in bytes: page size x
 * (pages of the regions mapping a private anonymous frame that is not the
 * zero page, from pagemap, + allocated frames of the pools, from the
 * memfds' st_blocks).  Every physical frame is counted once.
 */
int real_live_measured_rss(const struct real_live *L, uint64_t *out, struct sp_err *err);

/*
 * Resident memory of arbitrary regions, counting each physical frame once:
 * distinct PFNs of present pages other than the zero page (needs root for
 * PFNs; SP_EPERM otherwise).  For the kernel-KSM side of a comparison.
 */
int real_rss_distinct_frames(void *const *addrs, const uint64_t *lens, uint32_t n, uint64_t *out,
			     struct sp_err *err);

/* The pools' MAP_SHARED views (up to max), so real_rss_distinct_frames() counts frames once. */
int real_live_pool_views(const struct real_live *L, void **addrs, uint64_t *lens, uint32_t max);

#endif
