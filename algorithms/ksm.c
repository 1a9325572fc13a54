/*
 * ksm.c - implements the "ksm" merger: a model of Linux mm/ksm.c (ksmd), 5.14
 * to today, with the kernel's tunables, counters and, as far as the backend
 * contract allows, its exact decisions page by page.  Which version's
 * behaviour it follows is algo_env.kernel (kernel.h, the table with the
 * commit of each change; NULL: the newest):
 *   - checksum_first (6.11): the volatility filter comes before the stable
 *     tree search; before, the stable tree is searched first, so a page
 *     whose content is already a KSM page merges on its first visit, and a
 *     page written since its last visit merges too (and is copied back at
 *     its next write);
 *   - smart_scan (6.7): without it there is no skipping, and the tunable is
 *     refused; pages_scanned (6.6) counts pages_to_scan + 1 per batch that
 *     does not end a full scan until pages_scanned_per_visit (6.10);
 *     general_profit credits ksm_zero_pages from 6.6 (ksm_zero_pages).
 *   Counters a version lacks are still computed (the CSV writer leaves them
 *   out); what a huge-page split does is the backend's (sim_huge_for()).
 *
 * The idea (the kernel's own overview, condensed).  A cursor walks every
 * mergeable page in scan order, pages_to_scan visits per batch, one batch
 * every sleep_millisecs.  Each visited page gets an rmap item that remembers
 * the page's checksum at the previous visit.  Merged pages ("KSM pages") are
 * write-protected frames filed in the content-ordered *stable tree*; a page
 * whose checksum did not change since the previous visit is a candidate: it
 * is looked up in the stable tree (join an existing KSM page), else in the
 * content-ordered *unstable tree* of candidates (merge the pair into a new
 * KSM page and file it in the stable tree), else inserted in the unstable
 * tree.  Candidates are not write-protected, so the unstable tree may be
 * "corrupted" by writes; it is emptied at every full scan.  A KSM page takes
 * at most max_page_sharing mappings; beyond, another copy of the same content
 * (a "dup") is started and the dups hang off a "chain" in the stable tree.
 *
 * Structures.
 *   ri[p]    rmap item of page p (the kernel's struct ksm_rmap_item), valid
 *            while RI_TRACKED; preallocated for every page:
 *     oldchecksum  checksum at the previous visit (valid once RI_CSUM is set)
 *     head         stable node it is listed in (when RI_STABLE), or its
 *                  unstable tree node (when RI_UNSTABLE), 0 = none
 *     gen          sn[head].gen when it was listed (RI_STABLE): the item is
 *                  listed while they are equal; a node's removal leaves its
 *                  items behind (node_listed()), they notice at their next
 *                  visit
 *     flags        RI_* below
 *     seq          low 8 bits of full_scans at unstable insertion (the
 *                  kernel's SEQNR_MASK bits): equal to the current value iff
 *                  the item is linked in the live unstable tree
 *     age          visits while not a KSM page, saturating at 255 (smart_scan)
 *     skips        remaining_skips: visits still to skip (smart_scan)
 *   un[i]    unstable tree nodes, allocated in insertion order since the
 *            current full scan began (index 0 = sentinel; reset with the
 *            tree, so at most npages are ever in use); upage[i] is the page
 *            of node i.  The "tree" is a kit.h hash on (checksum, tree):
 *            unstable chains un[] by key; usize[t] is the number of pages
 *            in unstable tree t (see Notes).
 *   sn[i]    stable nodes (struct ksm_stable_node), a pool with a free list
 *            through dnext; index 0 is the sentinel.  kind SN_NODE: a KSM
 *            page in the tree; SN_CHAIN: a tree node whose dups list holds
 *            SN_DUP nodes (same content, one KSM page each):
 *     kpage        the shared frame (SN_NODE, SN_DUP); stale when
 *                  frame_mappers() == 0, like get_ksm_page() finding it gone
 *     len          rmap_hlist_len: rmap items listed (SN_NODE, SN_DUP); SN_CHAIN:
 *                  a memo of chain_pick(), see chain_unsettle()
 *     hlist        first dup (SN_CHAIN); 0 = empty.  A KSM page's rmap
 *                  items are counted (len), not linked: the kernel's list
 *                  is walked only to take them all out with the node, and
 *                  here they see that for themselves (gen)
 *     gen          moves each time the node is freed (sn_release()); 32 bits
 *                  suffice: an item is visited (and drops a stale gen) every
 *                  full scan, and a scan frees fewer than 2^32 nodes
 *     dnext/dprev  sibling dups in the chain's list (SN_DUP)
 *     chain        the chain of a SN_DUP
 *     tree         stable tree it is filed in
 *     prune_ns     chain_prune_time, simulated ns (SN_CHAIN)
 *     rest         SN_CHAIN: a memo, see chain_unsettle()
 *   rbt[i]   stable red-black tree links of node i, and what a search passing
 *            it must do (struct rbl's spec: go on, add a chain's memoised
 *            steps, or look at the node; sn[i].rbp is the parent)
 *   due      the chains' prune times in the order set, so that a chain whose
 *            prune falls due has its spec computed again (struct due_q)
 *   walk[]   the stable tree searches of the next WALK_AHEAD pages, walked
 *            ahead from their stored checksums a level a visit each
 *            (walk_start(), walk_step()), used when the trees' epoch has
 *            not moved since; a stable insert restarts only the walks that
 *            read a link it changed (walk_cut())
 *   Trees are per partition, kit.h's (security domain, NUMA node when
 *   merge_across_nodes=0): tree index = partition id.  The kernel has no security
 *   domains; here pages of different domains never share, so each domain
 *   gets trees of its own instead of failing merges against the other's.
 *
 * Invariants.
 *   - pages_shared + pages_sharing == sum of len over SN_NODE and SN_DUP
 *     nodes; every non-empty node counts one item as pages_shared.
 *   - pages_unshared == number of items with RI_UNSTABLE (linked in the live
 *     unstable tree only when seq matches; the others are left over from the
 *     previous scan and unlinked when next visited, as in the kernel).
 *   - rmap_items == number of items with RI_TRACKED; pages_volatile ==
 *     rmap_items - pages_shared - pages_sharing - pages_unshared.
 *   - stable_node_chains == SN_CHAIN nodes; stable_node_dups == SN_DUP nodes.
 *   - ksm_zero_pages == pages with RI_ONZERO: mapped to the zero page by this
 *     instance and neither written nor unmapped since.
 *
 * Counters, with the kernel's names: pages_shared, pages_sharing,
 * pages_unshared, pages_volatile, full_scans, pages_scanned, pages_skipped,
 * ksm_zero_pages, stable_node_chains, stable_node_dups, general_profit =
 * (pages_sharing + ksm_zero_pages) * page_size - 64 B * rmap items.
 *
 * Notes (simplifications of the model).
 *  - The scan order is the backend's page order (guest by guest); there are
 *    no mm_slots, VMAs or forks.  Absent pages and pages mapping the zero
 *    page are stepped over without a visit (their rmap item, if any, is
 *    freed when the cursor passes, as get_next_rmap_item() does); stepping
 *    over them costs nothing.  Every present page is mergeable.
 *  - CPU: each visit is a BK_COST_VISIT; a visit that allocates the page's
 *    rmap item (its first, or the first after the item was freed) is also a
 *    BK_COST_FIRST_VISIT, what ksmd pays beyond a visit and a checksum in
 *    its first full scan (alloc_rmap_item(), the list insertion, the cold
 *    page table walk), measured by `sim calibrate`.  A visit that reads a
 *    page not merged touches it idle for the full scans since its last read
 *    (one, or with smart_scan the skipped ones too: smart_idle_scans()) of
 *    the last one's duration; an unstable tree search touches one node per
 *    level, the leaf idle since the scan began and each level up half as
 *    long, each level idle 35 ms or more one BK_COST_TREE_IDLE (its compare
 *    stops early: not a page read; touch_tree_idle()); a stable tree search
 *    touches the KSM page of each node it passes, the one at depth d idle a scan * 2^d / the searches in
 *    the scan's length up to it: this scan's so far and the last one's
 *    beyond the cursor (touch_stable_idle()).  A visit does not read a KSM
 *    page's content.  Each other touch idle 35 ms or more counts in its
 *    BK_COST_IDLE_* class (bk_idle_class()).  A batch with a visit that
 *    reads a page (not a KSM page), after a sleep (sleep_millisecs > 0, or
 *    the first batch), is also one BK_COST_BATCH_READ, and every batch
 *    after a sleep one BK_COST_BATCH_WAKE (batch_end()).  A
 *    visit of a page visited before (skipped or not, KSM page or not) also
 *    touches what the scanner keeps of it, the rmap item, page table and
 *    struct page, idle one full scan: each counts its ms in
 *    BK_COST_VISIT_IDLE and once BK_COST_VISIT_COLD (batch_end(); none
 *    below 35 ms, like the idle classes).
 *  - A batch ends early when the cursor wraps, like ksm_do_scan() returning
 *    when scan_get_next_rmap_item() finishes the last mm; so with
 *    pages_to_scan >= present pages one batch is one full scan.
 *  - The stored checksum has a separate "valid" bit (RI_CSUM) instead of
 *    starting at 0 as the kernel's oldchecksum does: every page must show
 *    the same checksum at two visits, whatever its checksum.  (A zero-filled
 *    page's checksum is not 0 in either world - the backend's is non-zero
 *    like xxhash's, see zero_checksum() - so this differs from the kernel
 *    only for a page whose checksum happens to be 0.)
 *  - COW breaks are modelled with the kernel's lag: the write gives the page
 *    a private copy at once (backend), but pages_shared/pages_sharing and
 *    the stable node only change when the scanner next visits the page (or
 *    walks over the stale node in a tree search): remove_rmap_item_from_tree
 *    and get_ksm_page() semantics.  A COW of a zero page decrements
 *    ksm_zero_pages at once, as the kernel's fault path does.
 *  - An unmapped page (ALGO_CHANGE_UNMAPPED) keeps its rmap item, and its
 *    place in a stable node's list (pages_shared/pages_sharing) or in
 *    pages_unshared, until the cursor passes it, as get_next_rmap_item()
 *    frees the items it steps over; only the frame's live mapper count and
 *    ksm_zero_pages (which the kernel's zap path decrements) change at once.
 *  - No page migration: frames never change node, so the kernel's
 *    migrate_nodes list and the re-filing of KSM pages found on the wrong
 *    node do not arise; an unstable-tree match whose tree page moved to
 *    another node is refused, as in the kernel.
 *  - The stable tree is a red-black tree ordered by (checksum >> 1,
 *    content) instead of by content alone: a node whose key differs is
 *    passed without asking the backend; its cost, the kernel's early-exit
 *    memcmp_pages(), is part of BK_COST_TREE_STEP (calibrated as ksmd's
 *    cost per node visited); only key ties call compare_frame(), counted
 *    as full compares.  Each node visited (and each dup examined in a
 *    chain) is reported as a tree step.
 *  - The unstable tree is a hash table on (checksum, tree) standing for the
 *    kernel's content-ordered red-black tree: a search finds the same page
 *    (equal content, in the same tree) and is charged the tree's height,
 *    ceil(log2(size + 1)) tree steps, plus a full compare per page of equal
 *    checksum.  The kernel's unstable tree is disordered by writes to its
 *    pages; here a written page keeps its old checksum as key, so it
 *    misdirects no search and matches nothing (a kernel search may go
 *    astray and miss a match).  Likewise from 6.12 with use_zero_pages: a
 *    zero subpage whose merge with the zero page split its huge page is
 *    remapped by the split, goes on to the unstable tree and, no longer
 *    mapped, ends every later kernel search that reaches it
 *    (get_mergeable_page() finds the zero page), leaving the searching page
 *    volatile; here it blocks nothing (tests/real/ksm_proof.sh: 3 of 8192
 *    pages at one full scan, pages_sharing unaffected).  Performance hack: a tree walk is a cache
 *    miss per level; the hash is 1-2 (2.2-3.2M -> 7.9M page scans per
 *    second on the 1M-page benchmark, bench/README.md).
 *  - Stable node staleness uses the instance's own count of mappers (live),
 *    kept from its merges and the reported COW breaks and unmaps; it equals
 *    the backend's frame_mappers() (the tests check the counters against
 *    the backend's frames).
 *  - Transparent huge pages are the backend's business (a merge splits the
 *    huge page); the scanner sees 4 KiB pages only.
 *  - No advisor, no run=2 (unmerge) and no per-process ksm_stat.
 *  - On a backend that measures CPU instead (backend.h cost_measured: live
 *    memory) the idle touches above are not worked out: nothing reads them.
 *  - write_tracking=1 (not the kernel's; default 0): a page the backend
 *    reports unwritten since the previous visit keeps its stored checksum
 *    instead of being hashed again (backend.h written()).  The checksum
 *    filter then decides exactly as it would have; only checksums (and the
 *    CPU they cost) drop.  With a backend without written() it is ignored.
 *  - The sleep is in timer ticks: ksmd wakes msecs_to_jiffies(sleep) + 1
 *    ticks after the tick in which its batch ended (wake_at()), which
 *    matches the measured cycle (24.0 ms for 20 ms and 16.1 ms for 10 ms at
 *    HZ=250) while a batch's CPU time stays under a tick; a longer batch
 *    pushes the next one back by whole ticks.  sleep_millisecs=0 does not
 *    sleep at all (wait_event_timeout with 0 returns at once).
 *  - Idle time: repeat()/skip() (the block before ksm_destroy()) let the
 *    simulator jump over whole repeating cycles of full scans once nothing
 *    changes; they compare a copy of the state, they decide nothing.
 *  - Changing merge_across_nodes or max_page_sharing is refused (SP_EINVAL,
 *    the kernel's EBUSY) while pages_shared > 0; otherwise the leftover
 *    stale stable nodes are dropped, as remove_all_stable_nodes() does.
 */
#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "algorithm.h"
#include "kernel.h"
#include "kit.h"
#include "sp_bigmem.h"
#include "sp_util.h"

enum {
	P_PAGES_TO_SCAN,
	P_SLEEP_MILLISECS,
	P_MERGE_ACROSS_NODES,
	P_USE_ZERO_PAGES,
	P_MAX_PAGE_SHARING,
	P_SMART_SCAN,
	P_PRUNE_MILLISECS,
	P_TICK_HZ,
	P_WRITE_TRACKING,
};

static const struct algo_param ksm_params[] = {
	{ "pages_to_scan", "pages visited per batch", 100, 0, 1e7, true },
	{ "sleep_millisecs", "sleep between batches, ms (in timer ticks, see tick_hz)", 20, 0, 1e6,
	  true },
	{ "merge_across_nodes", "1: pages of different NUMA nodes may share; 0: per-node trees", 1, 0,
	  1, true },
	{ "use_zero_pages", "1: zero-filled pages map the shared zero page (ksm_zero_pages)", 0, 0,
	  1, true },
	{ "max_page_sharing", "most mappings of one KSM page; beyond it a dup is started", 256, 2,
	  1e7, true },
	{ "smart_scan", "1: skip pages that repeatedly failed to merge", 1, 0, 1, true },
	{ "stable_node_chains_prune_millisecs", "least time between full prunes of a chain, ms",
	  2000, 0, 1e7, true },
	{ "tick_hz", "model: timer ticks per second the sleep is rounded to; 0: sleep literally",
	  250, 0, 100000, true },
	{ "write_tracking",
	  "1: re-hash only pages the backend saw written since the last visit (same decisions, "
	  "fewer checksums; not ksmd's cost); 0: hash every visit, as ksmd",
	  0, 0, 1, true },
};

#define NIL 0u
#define U8_MAX_AGE 255u

/* ritem.flags */
#define RI_TRACKED 0x01u  /* has an rmap item (counted in rmap_items) */
#define RI_UNSTABLE 0x02u /* the kernel's UNSTABLE_FLAG */
#define RI_STABLE 0x04u   /* the kernel's STABLE_FLAG */
#define RI_CSUM 0x08u     /* oldchecksum holds a checksum */
#define RI_ONZERO 0x10u   /* mapped to the zero page by us (survives the item) */
#define RI_MAPS 0x20u     /* listed in head and still maps head's frame (no COW yet) */
#define RI_GONE 0x40u     /* unmapped since its last visit (page_changed): ask page_info() */

enum { SN_FREE, SN_NODE, SN_CHAIN, SN_DUP };

/*
 * 16 bytes: what a stable tree search reads of a node on its way down, in
 * an array of their own (struct ksm's rbt, indexed like the node pool): four
 * to a cache line, so the tree's ~10^5 nodes at 32 M pages take ~1.5 MiB
 * and mostly stay in a core's L2, where the 64-byte nodes took ~6 MiB
 * (a dependent load per level: ~8 ns from L2 here, ~43 ns from 4 MiB).
 */
struct rbl {
	uint32_t l, r;
	uint32_t kr;   /* key << 1 | red; key = checksum >> 1, the tree's primary order */
	uint32_t spec; /* what a search passing the node must do: sn_spec() */
};

/*
 * rbl.spec: 0, a plain node still mapped (go on from the links); SPEC_SLOW,
 * look at the node (a stale one, a chain without a memo or whose prune is
 * due); else a chain that a search passing it without a key tie resolves by
 * its memo alone, adding this many tree steps (chain_pick()).
 */
#define SPEC_SLOW (1u << 31)

#define KEY(c) ((uint32_t)(c) >> 1)
/* The tree links of stable node x (T: the links array, L: the node pool, which holds the parent). */
#define N(x) (T[x])
#define P(x) (L[x].rbp)
#define IS_RED(x) (T[x].kr & 1u)
#define SET_RED(x) (T[x].kr |= 1u)
#define SET_BLACK(x) (T[x].kr &= ~1u)
#define COPY_COLOR(to, from) (T[to].kr = (T[to].kr & ~1u) | (T[from].kr & 1u))

struct ritem {
	uint32_t oldchecksum;
	uint32_t head;
	uint32_t gen;
	uint8_t flags;
	uint8_t seq;
	uint8_t age;
	uint8_t skips;
};

_Static_assert(sizeof(struct ritem) == 16, "an rmap item is 16 bytes, four to a cache line");

/*
 * 64 bytes, aligned: what a search needs of a node it stops at (or that is a
 * chain or stale) is one cache line; its way down reads struct rbl only.
 */
struct snode {
	uint32_t rbp; /* parent in the stable tree */
	uint32_t gen; /* moves at each sn_release() */
	bk_frame kpage;
	uint64_t prune_ns;
	int32_t len;
	int32_t live;
	uint32_t hlist;
	uint32_t dnext, dprev;
	uint32_t chain;
	uint32_t tree;
	uint32_t rest; /* SN_CHAIN: a memo, see chain_unsettle() */
	uint8_t kind;
} __attribute__((aligned(64)));

_Static_assert(sizeof(struct snode) == 64, "a stable node is one cache line");

/*
 * A chain's prune_ns as set (at its creation and at each prune), in the
 * order set, i.e. by time: when the clock passes prune_ns + prune_ms, the
 * chain's spec is computed again (due_pass()).  Entries whose chain has
 * since been pruned again or freed are harmless (sn_sync() is exact).
 */
struct due_e {
	uint64_t ns;
	uint32_t chain;
};

struct due_q {
	struct due_e *e;
	uint32_t head, n, cap; /* a ring: n entries from head */
};

/*
 * A stable tree search walked ahead (walk_step()): page's search of key in
 * tree, as far as the links alone lead - to n, the first node that is to be
 * read (a key tie, or SPEC_SLOW) or NIL, or still going (struct ksm's
 * walk_live) - having passed depth levels and counted steps tree steps,
 * when the trees' epoch was epoch.  passed: bit n % 64 of every node n it
 * passed, so that a change of one node's spec drops only the walks that
 * may have read it (walk_touch()).  For the hints only (dup_ahead()):
 * stop, the node it stopped at (NIL: none, or going on), and in struct
 * ksm's walk_tie whether that node's key is the walk's (walk_ties()); left
 * as they are when the epoch moves (a stale hint costs a prefetch, never a
 * decision).
 */
struct walk {
	uint64_t epoch;
	uint64_t passed;
	uint32_t page, key, tree, n;
	uint32_t steps, depth;
	uint32_t stop;
	uint32_t pad[5]; /* 64 bytes: a ring slot's address is a shift of its index */
};

_Static_assert(sizeof(struct walk) == 64, "a walk is 64 bytes");

/*
 * Searches are walked ahead WALK_AHEAD pages before their visit, a level a
 * visit (~13 levels a search at 32 M pages, the top's TOP_LEVELS of them
 * at once), in a ring of WALK_RING (a power of two, above WALK_AHEAD; at
 * most 32: struct ksm's walk_live).  WALK_AHEAD is the least the bucket
 * group allows (AHEAD_BUCKET + AHEAD_GROUP: its pages' walks under way),
 * not a distance tuned to a machine: a walk needs far fewer visits than
 * that, and one begun earlier only waits longer, its lines in the caches
 * and its restarts at each epoch move more.  24 -> 20: scan 2 at 32 M
 * pages -2.5% of its user CPU on a Zen 2 KVM guest (whole runs alternating
 * with 24: median 0.975 over 12 pairs in four holds, lower in 10; the
 * instructions unchanged, callgrind at 1 M 938.4 -> 938.0 a visit;
 * bench/README.md, issue 14 twenty-fifth round).
 */
#define WALK_AHEAD 20u
#define WALK_RING 32u
#define WALK_NONE UINT32_MAX
#define FRAME_RING 4u /* struct ksm's frame_note: dup_ahead()'s notes for frame_ahead() */
#define UN_RING 4u    /* struct ksm's un_note: scan_ahead()'s first nodes of chains */

_Static_assert(WALK_AHEAD < WALK_RING && WALK_RING <= 32 && (WALK_RING & (WALK_RING - 1)) == 0,
	       "the walks of the pages ahead fit the ring and its mask");

/*
 * The top TOP_LEVELS levels of one stable tree, taken apart for the walks
 * (walk_begin()): every walk passes them, and a level walked in the ring
 * costs ~35 instructions (walk_step()) where a look-up here costs a few.
 * The nodes at depth < TOP_LEVELS in key order (key[], node[]), and for
 * each the state of a walk of its key (at[]: stopped at it, or at a
 * SPEC_SLOW node above it), and between them the gaps (gap[i]: a key
 * between key[i - 1] and key[i]): where the walk leaves the top - the node
 * at depth TOP_LEVELS to go on from, or NIL, or the SPEC_SLOW node it
 * stopped at - with the steps, depth and passed mask so far.  lo[i]: the
 * first of node i's subtree in key order (its gaps: lo[i] to i's last + 1).
 * Valid while the trees' links count is links (links, keys, roots; not
 * the batches' epoch) and ok (a stable insert that changed a link in it
 * clears it: walk_cut()); a change of a spec of its nodes (their numbers in
 * the filter nodes, bit n % TOP_FILTER) redoes the states below that node
 * (top_touch()).
 */
#define TOP_LEVELS 7u
#define TOP_NODES ((1u << TOP_LEVELS) - 1)
#define TOP_FILTER 4096u
#define TOP_DIR_BITS 9u /* dir[]: the keys (31 bits) by their top bits */

struct wstate {
	uint64_t passed;
	uint32_t n, steps, depth;
	uint32_t live; /* 1: goes on from n (walk_step()); 0: stopped at n, or NIL */
};

struct wtop {
	uint64_t links;
	bool ok;
	uint32_t tree, m;
	uint32_t key[TOP_NODES];
	uint32_t node[TOP_NODES];
	uint16_t lo[TOP_NODES];
	uint16_t dir[1u << TOP_DIR_BITS]; /* the first i with key[i] >> (31 - TOP_DIR_BITS) >= b */
	struct wstate at[TOP_NODES];
	struct wstate gap[TOP_NODES + 1];
	uint64_t nodes[TOP_FILTER / 64];
};

struct ksm {
	const struct backend_ops *ops;
	void *impl;

	/* tunables */
	uint64_t pages_to_scan;
	uint64_t sleep_ms;
	bool across;
	bool use_zero;
	int32_t max_sharing;
	bool smart;
	uint64_t prune_ms;
	uint64_t tick_hz;
	bool track; /* write_tracking, and the backend offers written() */
	/*
	 * page_info() of a tracked item is known from its last visit and the
	 * changes heard since (RI_MAPS, RI_ONZERO, RI_GONE): the backend's
	 * unheard_changes() has not moved from unheard (see skip_known()).
	 */
	bool known;
	uint64_t unheard;
	bool model_cost; /* the backend reads the cost model's counts (not cost_measured) */
	/*
	 * The lookahead (scan_ahead(), the walks, dup_ahead(), frame_ahead()):
	 * hints only, they decide nothing.  Kept where the cost is modelled (the
	 * simulator: at 32M pages scan 2 took +87% without the walks); off
	 * where the backend measures its CPU itself (live memory), where on
	 * 4 x 64 MiB it was 5-10% of the engine's CPU and saved nothing: the
	 * trees there sit in the caches (issue 15, twelfth round).  A live
	 * engine over far more memory than that was not measured without it.
	 */
	bool ahead;

	/* the kernel version's behaviour (kernel.h) */
	struct algo_kernel kern;
	bool checksum_first;   /* AK_CHECKSUM_FIRST */
	bool scanned_per_visit; /* AK_PAGES_SCANNED_PER_VISIT, or no pages_scanned at all */

	uint64_t npages;
	uint32_t page_size;
	uint32_t zero_sum;
	struct kit_parts parts;
	uint32_t ntrees;   /* allocated roots, partition ids below it */
	uint32_t *usize;   /* pages in each unstable tree */
	uint32_t *sroot;   /* stable tree roots */

	struct ritem *ri;
	struct kit_entry *un; /* unstable tree nodes, in insertion order since the scan began */
	struct kit_hash unstable; /* chains of un[] by (checksum, tree); buckets: ufirst() */
	uint32_t u_imask;   /* a bucket's bits that name its first node */
	uint32_t u_ibits, u_tagbits; /* bits of u_imask, and the filter's bits above them */
	uint32_t *upage;    /* page of each unstable tree node */
	uint32_t u_used;    /* next free unstable node (1 after each full scan) */
	uint32_t pf_part;   /* the tree of the latest unstable search: the lookahead's guess */

	struct snode *sn; /* cache-line aligned */
	struct rbl *rbt;  /* tree links of sn[i] at i, cache-line aligned */
	uint32_t sn_cap, sn_used, sn_free;
	uint32_t rbt_cap; /* >= sn_cap */
	struct due_q due; /* chains whose prune falls due later, by time: sn_spec() */
	bool due_lost;    /* out of memory for it: every chain is SPEC_SLOW */
	uint64_t epoch;   /* moves with every change of a stable tree's links or roots but a stable
			     insert's (walk_cut()), and at every batch */
	uint64_t links;   /* moves with the epoch but at a batch's start (links_moved()) */
	struct walk walk[WALK_RING]; /* searches walked ahead, page p at p % WALK_RING */
	uint32_t walk_live;          /* bit i: walk[i] is still going (walk_step()) */
	uint32_t walk_tie;           /* bit i: walk[i] stopped at a node of its key (walk_ties()) */
	uint32_t frame_note[FRAME_RING]; /* dup_ahead() for frame_ahead(): page p's at p % FRAME_RING */
	uint32_t un_note[UN_RING];       /* scan_ahead()'s first node of page p's chain at p % UN_RING */
	uint64_t step_epoch;         /* the epoch of every walk in walk_live after the last walk_step() */
	struct wtop *top;            /* the top of the latest walks' tree (NULL: none) */
	uint32_t top_for;            /* the tree whose top is valid now (top_ready()), else UINT32_MAX */

	/* scan cursor */
	uint64_t cursor;
	uint64_t now_ns;
	uint64_t scan_start_ns;  /* when the current full scan's first batch ran */
	uint64_t scan_period_ns; /* from the last scan's first batch to this one's; 0 in the first */
	bool scan_began;
	bool woke; /* the next batch follows a sleep (BK_COST_BATCH_READ) */
	uint64_t ss_scan, ss_last; /* stable tree searches in this full scan, in the last one */
	/*
	 * A memo of touch_stable_idle()'s doublings_to() per idle class (sq_e),
	 * for searches in [sq_lo, sq_hi] with scan_period_ns sq_period (0: none):
	 * a function of those two alone (stable_idle_memo()).
	 */
	uint64_t sq_period, sq_lo, sq_hi;
	uint32_t sq_e[BK_IDLE_CLASSES];
	/*
	 * The searches since under this memo, by depth (capped at 63), whose
	 * deepest level is idle: their idle classes, counted at the memo's
	 * change or the batch's end (stable_idle_flush()); sq_top: depths
	 * below it only.
	 */
	uint64_t sq_depths[64];
	uint32_t sq_top;
	uint32_t tree_halvings; /* this batch's halvings_above() for touch_tree_idle() */
	/* A memo of tree_of(): partition tp_part is (domain, node) tp_key (tp_ok: set). */
	uint64_t tp_key;
	uint32_t tp_part;
	bool tp_ok;
	int8_t visit_class[10]; /* this batch's idle class of a page read s scans ago at [s] */

	/* counters */
	int64_t pages_shared, pages_sharing, pages_unshared, rmap_items;
	int64_t full_scans, pages_scanned, pages_skipped, zero_pages;
	int64_t chains, dups;

	/* idle fast-forward (ksm_repeat): changes heard; the copy it compares */
	uint64_t changes;
	struct ksm_ff *ff;

	uint64_t acc[BK_COST__COUNT]; /* counted in this batch, for the backend (account()) */
};

static void ksm_ff_chain_seen(struct ksm *k, uint32_t c);
static bool ksm_ff_watching(const struct ksm *k);

/*
 * A stable tree's links, keys or root changed (not by a stable insert,
 * walk_cut()): every walk ahead and the top of the walks go.
 */
static inline void links_moved(struct ksm *k)
{
	k->epoch++;
	k->links++;
	k->top_for = UINT32_MAX;
}

/* ---- red-black trees over index arrays (index 0 = sentinel) ----------- */

static void rb_rot_left(struct rbl *T, struct snode *L, uint32_t *root, uint32_t x)
{
	uint32_t y = N(x).r;

	N(x).r = N(y).l;
	if (N(y).l != NIL)
		P(N(y).l) = x;
	P(y) = P(x);
	if (P(x) == NIL)
		*root = y;
	else if (x == N(P(x)).l)
		N(P(x)).l = y;
	else
		N(P(x)).r = y;
	N(y).l = x;
	P(x) = y;
}

static void rb_rot_right(struct rbl *T, struct snode *L, uint32_t *root, uint32_t x)
{
	uint32_t y = N(x).l;

	N(x).l = N(y).r;
	if (N(y).r != NIL)
		P(N(y).r) = x;
	P(y) = P(x);
	if (P(x) == NIL)
		*root = y;
	else if (x == N(P(x)).r)
		N(P(x)).r = y;
	else
		N(P(x)).l = y;
	N(y).r = x;
	P(x) = y;
}

/*
 * Links new node z below parent (NIL: as the root) on the given side, then
 * rebalances.  Returns the highest node whose links (l, r) changed, every
 * other such node below it on parent's path (NIL: the root changed): the
 * parent, or the parent of the last rotation's top (each rotation writes
 * its node's parent's link; a rotation ends the fixup).
 */
static uint32_t rb_link(struct rbl *T, struct snode *L, uint32_t *root, uint32_t z, uint32_t key,
			uint32_t parent, bool left)
{
	uint32_t cut = parent;

	P(z) = parent;
	N(z).l = N(z).r = NIL;
	N(z).kr = key << 1 | 1u;
	if (parent == NIL)
		*root = z;
	else if (left)
		N(parent).l = z;
	else
		N(parent).r = z;
	while (IS_RED(P(z))) {
		uint32_t zp = P(z), g = P(zp);

		if (zp == N(g).l) {
			uint32_t y = N(g).r;

			if (IS_RED(y)) {
				SET_BLACK(zp);
				SET_BLACK(y);
				SET_RED(g);
				z = g;
			} else {
				if (z == N(zp).r) {
					z = zp;
					rb_rot_left(T, L, root, z);
					zp = P(z);
					g = P(zp);
				}
				SET_BLACK(zp);
				SET_RED(g);
				cut = P(g);
				rb_rot_right(T, L, root, g);
			}
		} else {
			uint32_t y = N(g).l;

			if (IS_RED(y)) {
				SET_BLACK(zp);
				SET_BLACK(y);
				SET_RED(g);
				z = g;
			} else {
				if (z == N(zp).l) {
					z = zp;
					rb_rot_right(T, L, root, z);
					zp = P(z);
					g = P(zp);
				}
				SET_BLACK(zp);
				SET_RED(g);
				cut = P(g);
				rb_rot_left(T, L, root, g);
			}
		}
	}
	SET_BLACK(*root);
	return cut;
}

static void rb_transplant(struct rbl *T, struct snode *L, uint32_t *root, uint32_t u, uint32_t v)
{
	if (P(u) == NIL)
		*root = v;
	else if (u == N(P(u)).l)
		N(P(u)).l = v;
	else
		N(P(u)).r = v;
	P(v) = P(u); /* also on the sentinel: the fixup reads it */
}

static void rb_erase_fixup(struct rbl *T, struct snode *L, uint32_t *root, uint32_t x)
{
	while (x != *root && !IS_RED(x)) {
		uint32_t xp = P(x);

		if (x == N(xp).l) {
			uint32_t w = N(xp).r;

			if (IS_RED(w)) {
				SET_BLACK(w);
				SET_RED(xp);
				rb_rot_left(T, L, root, xp);
				w = N(xp).r;
			}
			if (!IS_RED(N(w).l) && !IS_RED(N(w).r)) {
				SET_RED(w);
				x = xp;
			} else {
				if (!IS_RED(N(w).r)) {
					SET_BLACK(N(w).l);
					SET_RED(w);
					rb_rot_right(T, L, root, w);
					w = N(xp).r;
				}
				COPY_COLOR(w, xp);
				SET_BLACK(xp);
				SET_BLACK(N(w).r);
				rb_rot_left(T, L, root, xp);
				x = *root;
			}
		} else {
			uint32_t w = N(xp).l;

			if (IS_RED(w)) {
				SET_BLACK(w);
				SET_RED(xp);
				rb_rot_right(T, L, root, xp);
				w = N(xp).l;
			}
			if (!IS_RED(N(w).r) && !IS_RED(N(w).l)) {
				SET_RED(w);
				x = xp;
			} else {
				if (!IS_RED(N(w).l)) {
					SET_BLACK(N(w).r);
					SET_RED(w);
					rb_rot_left(T, L, root, w);
					w = N(xp).l;
				}
				COPY_COLOR(w, xp);
				SET_BLACK(xp);
				SET_BLACK(N(w).l);
				rb_rot_right(T, L, root, xp);
				x = *root;
			}
		}
	}
	SET_BLACK(x);
}

static void rb_erase(struct rbl *T, struct snode *L, uint32_t *root, uint32_t z)
{
	uint32_t y = z, x;
	uint32_t y_red = IS_RED(y);

	if (N(z).l == NIL) {
		x = N(z).r;
		rb_transplant(T, L, root, z, x);
	} else if (N(z).r == NIL) {
		x = N(z).l;
		rb_transplant(T, L, root, z, x);
	} else {
		y = N(z).r;
		while (N(y).l != NIL)
			y = N(y).l;
		y_red = IS_RED(y);
		x = N(y).r;
		if (P(y) == z) {
			P(x) = y;
		} else {
			rb_transplant(T, L, root, y, x);
			N(y).r = N(z).r;
			P(N(y).r) = y;
		}
		rb_transplant(T, L, root, z, y);
		N(y).l = N(z).l;
		P(N(y).l) = y;
		COPY_COLOR(y, z);
	}
	if (!y_red)
		rb_erase_fixup(T, L, root, x);
	P(NIL) = N(NIL).l = N(NIL).r = NIL;
	N(NIL).kr = 0;
}

/* Node n takes old's place in the tree (the kernel's rb_replace_node). */
static void rb_replace(struct rbl *T, struct snode *L, uint32_t *root, uint32_t old, uint32_t n)
{
	uint32_t p = P(old);

	N(n) = N(old); /* spec too: the caller sn_sync()s n once its kind is set */
	P(n) = p;
	if (p == NIL)
		*root = n;
	else if (N(p).l == old)
		N(p).l = n;
	else
		N(p).r = n;
	if (N(n).l != NIL)
		P(N(n).l) = n;
	if (N(n).r != NIL)
		P(N(n).r) = n;
}

/* ---- small helpers ----------------------------------------------------- */

/*
 * Work counted in a batch is handed to the backend at its end (acc_flush()):
 * the counts only add up, and a visit reports several, each a call.
 */
static inline void account(struct ksm *k, enum bk_cost what, uint64_t n)
{
	k->acc[what] += n;
}

/*
 * The searches touch_stable_idle() counted by depth (sq_depths) go to their
 * idle classes: of a search of d levels, those from doublings_to(q, a
 * class's bound) = sq_e[c] down are of class c and above.  The same sums,
 * a search at a time, as account() would have had them.
 */
static void stable_idle_flush(struct ksm *k)
{
	for (uint32_t d = 0; d < k->sq_top; d++) {
		uint64_t m = k->sq_depths[d];
		uint32_t above = 0;

		if (!m)
			continue;
		k->sq_depths[d] = 0;
		for (int c = BK_IDLE_CLASSES - 1; c >= 0; c--) {
			uint32_t e = k->sq_e[c], a = e < d ? d - e : 0;

			k->acc[BK_COST_IDLE_50MS + c] += m * (a - above);
			above = a;
		}
	}
	k->sq_top = 0;
}

static void acc_flush(struct ksm *k)
{
	stable_idle_flush(k);
	for (int c = 0; c < BK_COST__COUNT; c++) {
		if (k->acc[c]) {
			k->ops->account(k->impl, (enum bk_cost)c, k->acc[c]);
			k->acc[c] = 0;
		}
	}
}

/*
 * How long the page a visit reads was left alone: one full scan (the last
 * one, from its first batch to this scan's); in the first scan, since the
 * scan began.  Guests' own
 * reads and writes are not in the trace, so they do not count.
 */
static uint64_t page_idle_ns(const struct ksm *k)
{
	return k->scan_period_ns ? k->scan_period_ns : k->now_ns - k->scan_start_ns;
}

/*
 * The full scans since smart_scan last read a page it now reads, whose age
 * (before this visit's increment) is `age`: pages younger than 3 visits are
 * read every scan; then skip_age() skips 1, 2, 4 and 8 scans, so a page read
 * at age 5, 8, 13 and from 22 on was left alone 2, 3, 5 and 9 scans.
 */
static unsigned smart_idle_scans(uint8_t age)
{
	return age <= 3 ? 1 : age <= 5 ? 2 : age <= 8 ? 3 : age <= 13 ? 5 : 9;
}

/* The full scans the page of item it, which a visit now reads, was left alone. */
static unsigned visit_idle_scans(const struct ksm *k, const struct ritem *it)
{
	/* should_skip() has counted this visit in the age already */
	return k->smart && it->age ? smart_idle_scans(it->age - 1) : 1;
}

/*
 * A batch begins: the idle class of a page read after 1, 2, 3, 5 or 9 full
 * scans (visit_idle_scans()), for touch_visit_idle(), since page_idle_ns()
 * holds for the whole batch.
 */
static void visit_classes(struct ksm *k)
{
	static const unsigned scans[] = { 1, 2, 3, 5, 9 };

	for (size_t i = 0; i < sizeof(scans) / sizeof(scans[0]); i++)
		k->visit_class[scans[i]] = (int8_t)bk_idle_class(page_idle_ns(k) * scans[i]);
}

/*
 * A visit reads the page of item it, untouched for visit_idle_scans() full
 * scans: BK_COST_IDLE_* (bk_idle_class()), or hot.
 */
static inline void touch_visit_idle(struct ksm *k, const struct ritem *it)
{
	unsigned s = visit_idle_scans(k, it);
	int c = k->visit_class[s];

	assert(c == bk_idle_class(page_idle_ns(k) * s));
	if (c >= 0)
		account(k, (enum bk_cost)c, 1);
}

/*
 * The levels j >= 0 of an idle time halving at each (idle >> j) that are
 * still at least b (> 0): the j with b << j <= idle, floor(log2(idle / b))
 * + 1 of them, or none.
 */
static inline uint32_t halvings_above(uint64_t idle, uint64_t b)
{
	int j;

	if (idle < b)
		return 0;
	j = __builtin_clzll(b) - __builtin_clzll(idle); /* log2(idle) - log2(b), floors: >= 0 */
	if ((b << j) > idle) /* no overflow: b << j < 2^(log2(idle) + 1) */
		j--;
	return (uint32_t)j + 1;
}

#ifndef NDEBUG
/*
 * The idle class (BK_COST_IDLE_*, or -1: hot) of a stable tree node at depth
 * d (root 0) searched `searches` times a period: one search in 2^d reads it
 * (touch_stable_idle() computes the same from a memo: stable_idle_memo()).
 */
static int stable_depth_class(uint64_t period, uint64_t searches, uint32_t d)
{
	double idle = (double)period * (double)(1ull << d) / (double)searches;

	return idle >= 1e18 ? BK_COST_IDLE_5S : bk_idle_class((uint64_t)idle);
}

/* touch_tree_idle()'s count n, level by level. */
static bool tree_idle_check(const struct ksm *k, uint32_t depth, uint32_t n)
{
	uint64_t idle = k->now_ns - k->scan_start_ns;
	uint32_t m = 0;

	for (uint32_t j = 0; j < depth && idle >= BK_IDLE_MIN_NS; j++, idle /= 2)
		m++;
	return m == n;
}

/* touch_stable_idle()'s counts n, depth by depth from the root. */
static bool stable_idle_check(uint64_t period, uint64_t searches, uint64_t depth,
			      const uint64_t n[BK_IDLE_CLASSES])
{
	uint64_t m[BK_IDLE_CLASSES] = { 0 };

	for (uint32_t d = 0; d < depth && d < 63; d++) {
		int c = stable_depth_class(period, searches, d);

		if (c >= 0)
			m[c - BK_COST_IDLE_50MS]++;
	}
	return memcmp(m, n, sizeof(m)) == 0;
}
#endif

/*
 * The pages an unstable tree search of `depth` levels reads: the tree is
 * emptied at each full scan and grows with the scan, so a search now passes
 * nodes inserted since the scan began; each level up is read by twice as
 * many searches.  Level j from the bottom is idle (now - the scan's start) /
 * 2^j: the first batch of a scan reads a tree hot from its own inserts.
 * Each level idle 35 ms or more is one BK_COST_TREE_IDLE: its compare
 * stops at the first differing byte, so it is not priced as a page read
 * (the BK_COST_IDLE_* classes, where these levels counted until issue 13's
 * tenth round; bench/README.md "bench_cost.sh").
 */
static void touch_tree_idle(struct ksm *k, uint32_t depth)
{
	uint32_t n = k->tree_halvings;

	assert(n == halvings_above(k->now_ns - k->scan_start_ns, BK_IDLE_MIN_NS));
	n = n < depth ? n : depth;
	assert(tree_idle_check(k, depth, n));
	if (n)
		account(k, BK_COST_TREE_IDLE, n);
}

/*
 * The stable tree searches of the last full scan's length up to now: this
 * one, this scan's before it, and the last scan's beyond the cursor (as if
 * spread evenly over its pages).  With smart_scan a scan that reads every
 * unique page (thousands of searches) follows scans that read a few: the
 * tree its later searches read was read moments before, not a scan of a
 * few searches before.
 */
static uint64_t stable_window_searches(const struct ksm *k)
{
	double rest;

	if (!k->ss_last)
		return k->ss_scan + 1; /* 0 * x / n is 0: scan 2, and any scan after one without searches */
	rest = (double)k->ss_last * (double)(k->npages - k->cursor) / (double)k->npages;
	return k->ss_scan + 1 + (uint64_t)rest;
}

/*
 * The least e >= 0 with q * 2^e >= b, for q > 0 a normal double and b > 0
 * an integer below 2^53 (so a double exactly): with q = mq * 2^xq and b =
 * mb * 2^xb, mantissas in [1, 2), q * 2^(xb - xq) = mq * 2^xb is >= b iff
 * mq >= mb, and one doubling more always is.  Read off the two doubles'
 * bits: no rounding anywhere.
 */
static inline uint32_t doublings_to(double q, uint64_t b)
{
	const uint64_t mant = (1ull << 52) - 1;
	double bd = (double)b;
	uint64_t qb, bb;
	int64_t e;

	memcpy(&qb, &q, sizeof(qb));
	memcpy(&bb, &bd, sizeof(bb));
	e = (int64_t)(bb >> 52) - (int64_t)(qb >> 52) + ((qb & mant) < (bb & mant));
	return e > 0 ? (uint32_t)e : 0;
}

/* The quotient touch_stable_idle() classes the levels by: period / searches, rounded once. */
static inline double stable_q(double period, uint64_t searches)
{
	return period / (double)searches;
}

/* The double 2^x * (1 + m / 2^52): exponent bits x, mantissa bits m. */
static inline double dbl_bits(uint64_t x, uint64_t m)
{
	uint64_t b = x << 52 | m;
	double d;

	memcpy(&d, &b, sizeof(d));
	return d;
}

/*
 * The last searches s' >= s with stable_q(p, s') >= t, given stable_q(p, s)
 * >= t (stable_q() does not grow with searches: a correctly rounded
 * quotient is monotonic in the divisor).  p / t is a guess within a few
 * of it; the steps make it exact.
 */
static uint64_t searches_last_at_least(double p, double t, uint64_t s)
{
	double g = p / t;
	uint64_t x = g >= 9e15 ? (uint64_t)9e15 : g > (double)s ? (uint64_t)g : s;

	while (x > s && stable_q(p, x) < t)
		x--;
	while (x < (uint64_t)9e15 && stable_q(p, x + 1) >= t)
		x++;
	return x;
}

/* The first searches s' <= s with stable_q(p, s') < t, given stable_q(p, s) < t. */
static uint64_t searches_first_below(double p, double t, uint64_t s)
{
	double g = p / t;
	uint64_t x = g + 1 < (double)s ? (uint64_t)g + 1 : s;

	if (x < 1)
		x = 1;
	while (x < s && stable_q(p, x) >= t)
		x++;
	while (x > 1 && stable_q(p, x - 1) < t)
		x--;
	return x;
}

/*
 * touch_stable_idle()'s doublings_to(q, bound) per class, q = stable_q(period,
 * searches), into k->sq_e, and the searches around `searches` that give the
 * same ones (the memo: sq_lo, sq_hi).  doublings_to() reads off q its
 * exponent and whether its mantissa is below each bound's: those hold for
 * every q in [t_lo, t_hi), the same exponent and the mantissa between the
 * bounds' mantissas on either side of q's (or the exponent's ends), so for
 * the searches whose q falls there - a range, as q does not grow with
 * searches.  Scan 2 at 32 M pages: ~10^2 ranges for ~10^7 searches, where
 * each search took two divisions and seven doublings_to().
 */
static void stable_idle_memo(struct ksm *k, uint64_t period, uint64_t searches)
{
	const uint64_t mant = (1ull << 52) - 1;
	double p = (double)period, q = stable_q(p, searches), bd;
	uint64_t qb, bb, lo = 0, hi = 1ull << 52, x;

	stable_idle_flush(k); /* the searches counted under the memo that goes */
	memcpy(&qb, &q, sizeof(qb));
	x = qb >> 52;
	for (int c = 0; c < BK_IDLE_CLASSES; c++) {
		k->sq_e[c] = doublings_to(q, bk_idle_bound(c));
		bd = (double)bk_idle_bound(c);
		memcpy(&bb, &bd, sizeof(bb));
		bb &= mant;
		if (bb <= (qb & mant) && bb > lo)
			lo = bb;
		if (bb > (qb & mant) && bb < hi)
			hi = bb;
	}
	k->sq_period = period;
	k->sq_hi = searches_last_at_least(p, dbl_bits(x, lo), searches);
	k->sq_lo = searches_first_below(p, hi >> 52 ? dbl_bits(x + 1, 0) : dbl_bits(x, hi), searches);
}

/*
 * The KSM pages a stable tree search of `depth` levels reads: the tree lives
 * across scans and is searched S times in a scan's length before this
 * search (stable_window_searches()), so the node at depth d (root 0) is
 * read by one search in 2^d: idle period * 2^d / S.  Visits do not read a
 * KSM page's content.  The idle time grows with the depth, so the levels
 * of class c and above are the deepest ones, from the first depth idle its
 * lower bound on (doublings_to()).  None in the first full scan: the tree
 * is new.
 */
static void touch_stable_idle(struct ksm *k, uint64_t depth)
{
	uint64_t searches, period = k->scan_period_ns;
	uint32_t d = depth < 63 ? (uint32_t)depth : 63;
#ifndef NDEBUG
	uint64_t n[BK_IDLE_CLASSES];
	uint32_t above = 0;
#endif

	if (!period)
		return; /* the first scan: the tree is new */
	searches = stable_window_searches(k);
	/*
	 * stable_depth_class()'s period * 2^d / searches is q * 2^d exactly, q =
	 * stable_q(): a power of two scales a correctly rounded quotient
	 * without changing its rounding (normal doubles here), and (uint64_t)(q
	 * * 2^d) >= b iff q * 2^d >= b for an integer b.  So a class's levels
	 * are those from doublings_to(q, its bound) on, memoised for a range of
	 * searches (stable_idle_memo()).
	 */
	if (period != k->sq_period || searches < k->sq_lo || searches > k->sq_hi)
		stable_idle_memo(k, period, searches);
	if (k->sq_e[0] >= d)
		return; /* the deepest level is hot, and so all above it */
	k->sq_depths[d]++; /* counted in its classes by stable_idle_flush() */
	if (d >= k->sq_top)
		k->sq_top = d + 1;
#ifndef NDEBUG
	for (int c = BK_IDLE_CLASSES - 1; c >= 0; c--) {
		uint32_t e = k->sq_e[c], a = e < d ? d - e : 0;

		assert(e == doublings_to(stable_q((double)period, searches), bk_idle_bound(c)));
		n[c] = a - above;
		above = a;
	}
	assert(stable_idle_check(period, searches, depth, n));
#endif
}

/*
 * get_ksm_page() finding the KSM page gone: no mapper left.  live counts the
 * listed items whose page still maps the frame; since every mapping of a
 * frame is made by this instance and every COW break and unmap is reported,
 * it equals the backend's frame_mappers() (checked by the tests) at a
 * fraction of the cost of asking.
 */
static inline bool node_stale(const struct ksm *k, uint32_t n)
{
	return k->sn[n].live <= 0;
}

#define CHAIN_HEAD_PICK (-1)

/* chain_pick() would prune chain c now (when its search prunes). */
static inline bool prune_due(const struct ksm *k, const struct snode *c)
{
	return k->now_ns >= c->prune_ns + k->prune_ms * 1000000u;
}

/*
 * What a search must do at node n (struct rbl's spec): look at a stale node
 * (removed) and at a chain (chain_pick()), unless the chain has a memo and
 * no prune due, so that resolving it changes nothing but the tree steps:
 * then those steps (the memo's), and the search goes on from the links
 * alone unless the keys tie.  A plain node still mapped: 0.
 */
static inline uint32_t sn_spec(const struct ksm *k, uint32_t n)
{
	const struct snode *s = &k->sn[n];

	if (s->kind == SN_CHAIN) {
		if (s->len == 0 || k->due_lost || prune_due(k, s))
			return SPEC_SLOW;
		return s->len > 0 ? (uint32_t)s->len : 1u; /* settled, or CHAIN_HEAD_PICK */
	}
	return s->live <= 0 ? SPEC_SLOW : 0;
}

/*
 * The top of tree t below node n at depth d, reached by a walk in state st
 * (struct wtop), in key order from node *m and gap *g on.
 */
static void top_visit(const struct ksm *k, struct wtop *t, uint32_t n, uint32_t d,
		      const struct wstate *st, uint32_t *m, uint32_t *g)
{
	const struct rbl *T = k->rbt;
	struct wstate at = *st, below = *st;
	uint32_t lo = *m;

	if (n == NIL || d == TOP_LEVELS) {
		if (at.live) {
			at.n = n;
			at.live = n != NIL;
		}
		t->gap[(*g)++] = at;
		return;
	}
	if (st->live) {
		at.n = n;
		at.live = 0; /* a walk of n's key stops at n */
		if (T[n].spec & SPEC_SLOW) {
			below = at; /* and so does every walk through n */
		} else {
			below.passed |= 1ull << (n % 64);
			below.steps += 1 + T[n].spec;
			below.depth++;
		}
	}
	top_visit(k, t, T[n].l, d + 1, &below, m, g);
	t->key[*m] = T[n].kr >> 1;
	t->node[*m] = n;
	t->lo[*m] = (uint16_t)lo;
	t->at[*m] = at;
	(*m)++;
	t->nodes[(n % TOP_FILTER) / 64] |= 1ull << (n % 64);
	top_visit(k, t, T[n].r, d + 1, &below, m, g);
}

/*
 * Node n's spec changed (links and keys did not): if it is in the top and
 * walks reach it, the states below it are worked out again.
 */
static void top_touch(struct ksm *k, uint32_t n)
{
	struct wtop *t = k->top;
	struct wstate st;
	uint32_t i, m, g, key;

	if (!t || !t->ok || t->links != k->links || !(t->nodes[(n % TOP_FILTER) / 64] >> (n % 64) & 1))
		return; /* (a top of other links is built again before use) */
	key = k->rbt[n].kr >> 1;
	for (i = t->dir[key >> (31 - TOP_DIR_BITS)]; i < t->m && t->key[i] < key; i++)
		;
	for (; i < t->m && t->key[i] == key && t->node[i] != n; i++)
		;
	if (i == t->m || t->node[i] != n || t->at[i].n != n)
		return; /* not in the top, or walks stop above it: its spec is not read */
	st = t->at[i];
	st.live = 1;
	m = g = t->lo[i];
	top_visit(k, t, n, st.depth, &st, &m, &g);
	assert(m <= t->m && g == m + 1);
}

/* The top of tree `tree` as it is now (struct wtop); false when out of memory. */
static bool top_build(struct ksm *k, uint32_t tree)
{
	struct wtop *t = k->top;
	uint32_t g = 0;

	if (!t) {
		t = k->top = malloc(sizeof(*t));
		if (!t)
			return false;
	}
	t->m = 0;
	memset(t->nodes, 0, sizeof(t->nodes));
	top_visit(k, t, k->sroot[tree], 0, &(struct wstate){ 0, NIL, 0, 0, 1 }, &t->m, &g);
	assert(g == t->m + 1);
	for (uint32_t b = 0, i = 0; b < (1u << TOP_DIR_BITS); b++) {
		while (i < t->m && t->key[i] >> (31 - TOP_DIR_BITS) < b)
			i++;
		t->dir[b] = (uint16_t)i;
	}
	t->tree = tree;
	t->links = k->links;
	t->ok = true;
	k->top_for = tree;
	return true;
}

/* The top of tree `tree` is there and valid for the links as they are (top_for). */
static inline bool top_ready(const struct ksm *k, uint32_t tree)
{
	const struct wtop *t = k->top;

	assert((k->top_for == tree) == (t && t->ok && t->links == k->links && t->tree == tree));
	(void)t;
	return k->top_for == tree;
}

/*
 * Walk w (its page, key and tree set) begins again, now: through the top of
 * its tree by a look-up (struct wtop), or from the root when that top has
 * another node of the key or cannot be had.  True when it goes on in the
 * ring (its next node prefetched); else it has stopped (the node it stopped
 * at prefetched, as walk_step() does).
 */
static inline __attribute__((always_inline)) bool walk_begin_inline(struct ksm *k, struct walk *w)
{
	struct wtop *t;
	const struct wstate *st;
	const uint32_t *a;
	uint32_t len;

	if (!top_ready(k, w->tree) && !top_build(k, w->tree)) {
		*w = (struct walk){ .epoch = k->epoch, .page = w->page, .key = w->key, .tree = w->tree,
				    .n = k->sroot[w->tree] };
		if (w->n == NIL)
			return false;
		kit_prefetch(&k->rbt[w->n]);
		return true;
	}
	t = k->top;
	/* the first of key[] not below the walk's key: from its top bits' first on */
	a = t->key;
	len = t->dir[w->key >> (31 - TOP_DIR_BITS)];
	while (len < t->m && a[len] < w->key)
		len++;
	if (len < t->m && a[len] == w->key) {
		if (len + 1 < t->m && a[len + 1] == w->key) {
			/* two nodes of the key: which one the walk meets first is the links' */
			*w = (struct walk){ .epoch = k->epoch, .page = w->page, .key = w->key, .tree = w->tree,
				    .n = k->sroot[w->tree] };
			kit_prefetch(&k->rbt[w->n]);
			return true;
		}
		st = &t->at[len];
	} else {
		st = &t->gap[len];
	}
	w->epoch = k->epoch;
	w->passed = st->passed;
	w->n = st->n;
	w->steps = st->steps;
	w->depth = st->depth;
	w->stop = 0;
	if (st->live) {
		kit_prefetch(&k->rbt[st->n]);
	} else if (st->n != NIL) {
		kit_prefetch(&k->sn[st->n]);
		w->stop = st->n;
		k->walk_tie |= (uint32_t)((k->rbt[st->n].kr >> 1) == w->key) << (uint32_t)(w - k->walk);
	}
	return st->live;
}

/* walk_begin_inline() of a walk that may have stopped before (walk_start() clears its tie itself). */
static bool walk_begin(struct ksm *k, struct walk *w)
{
	k->walk_tie &= ~(1u << (uint32_t)(w - k->walk));
	return walk_begin_inline(k, w);
}

/*
 * Node n's spec changed from old: the walks that passed it (or may have:
 * struct walk's passed) start again from the root, now; the others stand (a
 * spec is read only by a search passing or stopping at its node, and a walk
 * stopped at n has not read it: stable_search() reads it there).  No walk
 * passes a SPEC_SLOW node (walk_step() stops there, and the change to it
 * restarted the ones that had), so from SPEC_SLOW none restarts: at 32M
 * pages half of scan 2's changes, each restarting ~5 walks whose filter
 * held the node's bit.  The epoch is for changes of links, keys and roots.
 */
static void walk_touch(struct ksm *k, uint32_t n, uint32_t old)
{
	uint64_t bit = 1ull << (n % 64);

	top_touch(k, n);
	if (old & SPEC_SLOW)
		return;
	for (uint32_t i = 0; i < WALK_RING; i++) {
		struct walk *w = &k->walk[i];

		if (!(w->passed & bit) || w->epoch != k->epoch || w->page == WALK_NONE)
			continue;
		/* the page being visited may still search: its walk must stand too */
		if (walk_begin(k, w) && w->page >= k->cursor)
			k->walk_live |= 1u << i;
		else
			k->walk_live &= ~(1u << i);
	}
}

/*
 * The links of tree `tree` changed at a node x0 and below it only (a stable
 * insert: rb_link()'s answer, or a node's parent for rb_replace()): x0 at
 * depth d0 of the path of the keys in (lo, hi), open bounds; d0 < 0: the
 * root itself changed.  A walk read x0's links, and so may read changed
 * ones, iff it went past x0: its key in (lo, hi) and more than d0 levels
 * passed (one that stopped above x0 has gone no deeper; one at x0 still to
 * read its links reads the new ones, as a search from the root now would,
 * x0's parent not having changed).  Those walks start again now; the others
 * stand, and the top (struct wtop) stands unless x0 is in it.  The epoch,
 * which drops every walk, is for the other changes of links.
 */
static void walk_cut(struct ksm *k, uint32_t tree, int32_t d0, int64_t lo, int64_t hi)
{
	struct wtop *t = k->top;

	if (t && t->tree == tree && d0 < (int32_t)TOP_LEVELS) {
		t->ok = false; /* built again at the next walk_begin() */
		k->top_for = UINT32_MAX;
	}
	for (uint32_t i = 0; i < WALK_RING; i++) {
		struct walk *w = &k->walk[i];

		if (w->page == WALK_NONE || w->epoch != k->epoch || w->tree != tree ||
		    (int64_t)w->depth <= d0 || (int64_t)w->key <= lo || (int64_t)w->key >= hi)
			continue;
		if (walk_begin(k, w) && w->page >= k->cursor)
			k->walk_live |= 1u << i;
		else
			k->walk_live &= ~(1u << i);
	}
}

/*
 * rbt[n].spec from node n, after any change of its kind, its live count, or
 * of a chain's memo or prune time; and for every chain whose prune fell due
 * since (due_pass()).  resolve_fast() checks it in Debug builds.  A dup is
 * in no tree: nothing reads its spec, left as it was (a dup that takes its
 * chain's place gets the chain's links and spec from rb_replace(), then its
 * own here), nor its links' line: a join of a dup (stable_append(), 14 M
 * in scan 2 at 32 M pages) missed on that line only to write the spec.
 */
static inline void sn_sync(struct ksm *k, uint32_t n)
{
	uint32_t spec, old;

	if (k->sn[n].kind == SN_DUP)
		return;
	spec = sn_spec(k, n);
	old = k->rbt[n].spec;
	if (old != spec) {
		k->rbt[n].spec = spec;
		walk_touch(k, n, old);
	}
}

/* ---- chains' prunes falling due (struct due_q) ------------------------- */

/*
 * Notes chain c's prune_ns, just set to now.  Out of memory, every chain
 * looks at itself from then on (due_lost: slower, as right).
 */
static void due_push(struct ksm *k, uint32_t c)
{
	struct due_q *q = &k->due;

	if (k->due_lost)
		return;
	if (q->n == q->cap) {
		uint32_t cap = q->cap ? q->cap * 2 : 256;
		struct due_e *e = cap > q->cap ? malloc((size_t)cap * sizeof(*e)) : NULL;

		if (!e) {
			k->due_lost = true;
			for (uint32_t i = 1; i < k->sn_used; i++)
				sn_sync(k, i);
			return;
		}
		for (uint32_t i = 0; i < q->n; i++)
			e[i] = q->e[(q->head + i) % q->cap];
		free(q->e);
		q->e = e;
		q->head = 0;
		q->cap = cap;
	}
	q->e[(q->head + q->n) % q->cap] = (struct due_e){ k->sn[c].prune_ns, c };
	q->n++;
}

/* The clock moved on (k->now_ns): every chain whose prune fell due looks at itself again. */
static void due_pass(struct ksm *k)
{
	struct due_q *q = &k->due;

	while (q->n && k->now_ns >= q->e[q->head].ns + k->prune_ms * 1000000u) {
		uint32_t c = q->e[q->head].chain;

		if (k->sn[c].kind == SN_CHAIN)
			sn_sync(k, c);
		q->head = (q->head + 1) % q->cap;
		q->n--;
	}
}

static int cmp_due(const void *a, const void *b)
{
	const struct due_e *x = a, *y = b;

	return x->ns != y->ns ? (x->ns < y->ns ? -1 : 1) : (x->chain > y->chain) - (x->chain < y->chain);
}

/*
 * Every node's spec again, and the queue of due prunes from the chains'
 * prune times: after the clock and prune times jumped (ksm_skip()) or
 * prune_ms changed.
 */
static void due_rebuild(struct ksm *k)
{
	struct due_q *q = &k->due;

	q->head = q->n = 0;
	for (uint32_t i = 1; i < k->sn_used; i++) {
		if (k->sn[i].kind == SN_FREE)
			continue;
		sn_sync(k, i);
		if (k->sn[i].kind == SN_CHAIN)
			due_push(k, i); /* no wrap: head is 0 */
	}
	if (q->n)
		qsort(q->e, q->n, sizeof(*q->e), cmp_due);
}

/* is_page_sharing_candidate() with an offset. */
static inline bool sharing_candidate(const struct ksm *k, uint32_t n, int32_t offset)
{
	return k->sn[n].len > 0 && k->sn[n].len + offset < k->max_sharing;
}

/*
 * The tree index of a page; grows the root arrays when a new partition shows
 * up.  The partition of the latest page's (domain, node) is memoised (a page
 * is mostly in its predecessor's): kit_part() gives a pair the same id for
 * good, and the roots once grown for it stay.
 */
static int tree_of(struct ksm *k, const struct bk_page_info *info, uint32_t *out)
{
	uint64_t key = (uint64_t)info->domain << 32 | (k->across ? KIT_ANY_NODE : info->node);
	uint32_t part;
	int rc;

	if (k->tp_ok && key == k->tp_key) {
		assert(kit_part(&k->parts, info, k->across, &part) == 0 && part == k->tp_part &&
		       part < k->ntrees);
		*out = k->tp_part;
		return 0;
	}
	rc = kit_part(&k->parts, info, k->across, &part);
	if (rc < 0)
		return rc;
	if (part >= k->ntrees) {
		uint64_t need = (uint64_t)k->ntrees * 2 > part ? (uint64_t)k->ntrees * 2 : part + 1u;
		uint32_t *u = kit_grow(k->usize, sizeof(*u), k->ntrees, need), *r;

		if (!u)
			return SP_ENOMEM;
		k->usize = u;
		r = kit_grow(k->sroot, sizeof(*r), k->ntrees, need);
		if (!r)
			return SP_ENOMEM;
		k->sroot = r;
		k->ntrees = (uint32_t)need;
		links_moved(k);
	}
	k->tp_key = key;
	k->tp_part = part;
	k->tp_ok = true;
	*out = part;
	return 0;
}

/* ---- stable node pool -------------------------------------------------- */

/*
 * The stable node pool and its tree links (sn, rbt): cache-line aligned.
 * From 2 MiB up each is an sp_bigmem.h array (page aligned, on huge pages:
 * a tree walk is a random access per level), grown by mremap(); below,
 * posix_memalign().
 */
#define SN_BIG_BYTES ((size_t)2 << 20)

static bool pool_big(uint32_t n, size_t size)
{
	return (size_t)n * size >= SN_BIG_BYTES;
}

/* The pool of n elements grown to cap (> n; the new ones uninitialised), or NULL with a untouched. */
static void *pool_grow(void *a, uint32_t n, uint32_t cap, size_t size)
{
	void *p = NULL;

	if (pool_big(cap, size))
		return sp_big_grow(a, n, cap, size);
	if (posix_memalign(&p, 64, (size_t)cap * size) != 0)
		return NULL;
	if (a) {
		memcpy(p, a, (size_t)n * size);
		free(a);
	}
	return p;
}

/* An uninitialised array of n elements, cache-line aligned, or NULL (the fast-forward's copy). */
static void *pool_new(uint32_t n, size_t size)
{
	void *p = NULL;

	return posix_memalign(&p, 64, (size_t)n * size) == 0 ? p : NULL;
}

static void pool_free(void *a, uint32_t n, size_t size)
{
	if (pool_big(n, size))
		sp_big_free(a, n, size);
	else
		free(a);
}

/* Grows sn and rbt to twice their capacity. */
static int sn_pool_double(struct ksm *k)
{
	uint32_t cap = k->sn_cap * 2;
	struct snode *s;
	struct rbl *t;

	if (cap <= k->sn_cap)
		return SP_ENOMEM;
	if (k->rbt_cap < cap) {
		t = pool_grow(k->rbt, k->rbt_cap, cap, sizeof(*t));
		if (!t)
			return SP_ENOMEM;
		k->rbt = t;
		k->rbt_cap = cap;
	}
	s = pool_grow(k->sn, k->sn_cap, cap, sizeof(*s));
	if (!s)
		return SP_ENOMEM;
	k->sn = s;
	k->sn_cap = cap;
	return 0;
}

static int sn_alloc(struct ksm *k, uint32_t *out)
{
	uint32_t i, gen;

	if (k->sn_free) {
		i = k->sn_free;
		k->sn_free = k->sn[i].dnext;
	} else {
		if (k->sn_used == k->sn_cap) {
			int rc = sn_pool_double(k);

			if (rc < 0)
				return rc;
		}
		i = k->sn_used++;
	}
	gen = k->sn[i].gen;
	memset(&k->sn[i], 0, sizeof(k->sn[i]));
	k->sn[i].gen = gen; /* items of the node's earlier lives stay unlisted */
	memset(&k->rbt[i], 0, sizeof(k->rbt[i]));
	*out = i;
	return 0;
}

static void sn_release(struct ksm *k, uint32_t i)
{
	if (k->sn[i].kind == SN_CHAIN) {
		k->sn[i].len = 0; /* a free node keeps no memo (ksm_ff_equal compares free nodes) */
		k->sn[i].rest = 0;
	}
	k->sn[i].kind = SN_FREE;
	k->sn[i].gen++; /* every item listed in it is no longer (node_listed()) */
	k->sn[i].dnext = k->sn_free;
	k->sn_free = i;
}

/*
 * A SN_CHAIN lists no rmap items (its dups do), so its len holds a memo of
 * chain_pick()'s walk: > 0 when the chain is "settled" - its len dups all
 * live and none a sharing candidate, so that a walk would meet them all,
 * remove none, pick the first and change nothing (the walk every search
 * passing the chain repeats while its content's KSM pages are all full);
 * CHAIN_HEAD_PICK when its first dup is live and a sharing candidate and
 * not the only one, so that a walk without a prune would take one step,
 * pick it and change nothing (the common case: at 32M pages 106 M of 107 M
 * chain resolutions, each a cache miss on the dup).  Any change of a dup's
 * len or live, or of the list, clears it, but for a join of the head that
 * leaves it room (chain_joined()).
 * A chain's rest > 0 says its dups but the first are rest, all live and
 * full: set when a settled chain gets a new first dup (dup_add_head()),
 * cleared by any change of another dup or of the list.  When that first
 * dup fills up, the chain is settled at once (chain_joined()) instead of by
 * a walk of every dup (at 32M pages the chain of zero-filled pages has
 * thousands: 22 M dup visits in 46 k such walks); and while the first dup
 * is the head pick, a prune, which would meet all and change nothing, is
 * not walked either (chain_pick()).
 */
static inline void chain_unsettle(struct ksm *k, uint32_t n)
{
	if (k->sn[n].kind == SN_DUP) {
		struct snode *c = &k->sn[k->sn[n].chain];

		c->len = 0;
		if (c->hlist != n)
			c->rest = 0;
		sn_sync(k, k->sn[n].chain);
	}
}

/*
 * Dup n gained a mapper (stable_append()): a chain's head pick still holds
 * when n is its head and still has room - the join after every search that
 * picked it; anything else clears the memo.
 */
static inline void chain_joined(struct ksm *k, uint32_t n)
{
	struct snode *c;

	if (k->sn[n].kind != SN_DUP)
		return;
	c = &k->sn[k->sn[n].chain];
	if (c->hlist == n && c->rest > 0 && !sharing_candidate(k, n, 0)) {
		/* The first dup (live: just joined) is full, and so are the others. */
		c->len = (int32_t)c->rest + 1;
		sn_sync(k, k->sn[n].chain);
		return;
	}
	if (c->len != CHAIN_HEAD_PICK || c->hlist != n || !sharing_candidate(k, n, 0))
		chain_unsettle(k, n);
}

static void dup_add_head(struct ksm *k, uint32_t d, uint32_t c)
{
	struct snode *dn = &k->sn[d];

	dn->kind = SN_DUP;
	dn->chain = c;
	/* settled: the dups already listed are all live and full */
	k->sn[c].rest = k->sn[c].len > 0 ? (uint32_t)k->sn[c].len : 0;
	k->sn[c].len = 0;
	dn->dprev = 0;
	dn->dnext = k->sn[c].hlist;
	if (dn->dnext)
		k->sn[dn->dnext].dprev = d;
	k->sn[c].hlist = d;
	sn_sync(k, c);
}

static void dup_unlink(struct ksm *k, uint32_t d)
{
	struct snode *dn = &k->sn[d];

	k->sn[dn->chain].len = 0;
	k->sn[dn->chain].rest = 0;
	if (dn->dprev)
		k->sn[dn->dprev].dnext = dn->dnext;
	else
		k->sn[dn->chain].hlist = dn->dnext;
	if (dn->dnext)
		k->sn[dn->dnext].dprev = dn->dprev;
	dn->dnext = dn->dprev = 0;
	sn_sync(k, dn->chain);
}

/*
 * remove_node_from_stable_tree(): every rmap item still listed leaves the
 * stable tree (its counter with it) and the node is freed.  The items (none
 * maps the frame: the node is stale) are not written: their gen no longer
 * matches the node's, and each clears its flags at its next visit
 * (remove_from_tree()); until then only their own visit reads them.
 */
static void remove_stable_node(struct ksm *k, uint32_t n)
{
	struct snode *s = &k->sn[n];

	links_moved(k);
	if (s->len > 0) {
		k->pages_shared--;
		k->pages_sharing -= s->len - 1;
		s->len = 0;
	}
	if (s->kind == SN_DUP) {
		dup_unlink(k, n);
		k->dups--;
	} else {
		rb_erase(k->rbt, k->sn, &k->sroot[s->tree], n);
	}
	sn_release(k, n);
}

/* ---- the unstable tree (a hash table standing for it) ------------------- */

/*
 * A bucket of the unstable tree's hash holds its chain's first node in its
 * low bits (u_imask: enough for npages) and, in the u_tagbits above them, a
 * filter of the keys in the chain: each insertion sets the bits utag() picks
 * for its key, so a bucket where one of a key's bits is clear holds no node
 * of that key, and a search that finds nothing - most of them, a page of a
 * content of its own - reads no node (the chain's nodes are random lines
 * of a table of up to npages).  Bits stay set when nodes leave (a false
 * hit then reads the chain, as without the filter) until the tree is
 * emptied.  From 2^31 pages on no bits are left: every chain is read.
 * Only which nodes are read depends on it, not what a search finds.
 * Two bits a key (from the two halves of one hash; they may coincide), not
 * one: scan 2 at 32 M pages (6 filter bits a bucket) reads a chain for
 * 973 k of its 15.3 M unstable searches instead of 1.23 M (a hit costs a
 * random line of the 512 MiB node table, two with its look-ahead; true
 * hits are ~120 k); bench/README.md, issue 14 twenty-second round.
 */
static void unstable_bits(struct ksm *k)
{
	k->u_ibits = (uint32_t)kit_tree_depth(k->npages); /* node numbers go up to npages */
	k->u_tagbits = k->u_ibits < 32 ? 32 - k->u_ibits : 0;
	k->u_imask = k->u_tagbits ? (1u << k->u_ibits) - 1 : UINT32_MAX;
}

/* The filter bits of key (csum, part) in its bucket (one or two); 0 when there is no filter. */
static inline uint32_t utag(const struct ksm *k, uint32_t csum, uint32_t part)
{
	uint64_t x = ((uint64_t)csum ^ ((uint64_t)part << 32)) * 0xc2b2ae3d27d4eb4fULL;

	if (!k->u_tagbits)
		return 0;
	return (1u << (k->u_ibits + (uint32_t)(((x >> 32) * k->u_tagbits) >> 32))) |
	       (1u << (k->u_ibits + (uint32_t)(((x & UINT32_MAX) * k->u_tagbits) >> 32)));
}

/* The first node of the chain of key (csum, part), or NIL when the filter says it has none. */
static inline uint32_t ufirst(const struct ksm *k, uint32_t csum, uint32_t part)
{
	uint32_t h = k->unstable.head[kit_bucket(&k->unstable, csum, part)], tag = utag(k, csum, part);

	return (h & tag) != tag ? NIL : h & k->u_imask;
}

#ifndef NDEBUG
/* No node of key (csum, part) in its chain: what ufirst() answering NIL says. */
static bool ufilter_check(const struct ksm *k, uint32_t csum, uint32_t part)
{
	uint32_t n = k->unstable.head[kit_bucket(&k->unstable, csum, part)] & k->u_imask;

	for (; n != NIL; n = k->un[n].next) {
		if (k->un[n].csum == csum && k->un[n].part == part)
			return false;
	}
	return true;
}
#endif

/*
 * Node i, key (csum, part), goes first in its chain.  Chains are singly
 * linked (un[].prev unused): an insertion writes no other node - the old
 * first one, which the filter spares a search from reading, would be a
 * cache miss of its own - and a node leaves a chain of the live tree only
 * when a search has just found it there (unstable_erase()).
 */
static void uinsert(struct ksm *k, uint32_t i, uint32_t csum, uint32_t part)
{
	uint32_t *head = &k->unstable.head[kit_bucket(&k->unstable, csum, part)];

	k->un[i] = (struct kit_entry){ .csum = csum, .part = part, .next = *head & k->u_imask };
	*head = (*head & ~k->u_imask) | i | utag(k, csum, part);
}

/* Node i leaves its chain, found by a walk from the bucket (the filter's bits stay). */
static void unstable_erase(struct ksm *k, uint32_t i)
{
	struct kit_entry *x = &k->un[i];
	uint32_t *head = &k->unstable.head[kit_bucket(&k->unstable, x->csum, x->part)], n;

	n = *head & k->u_imask;
	if (n == i) {
		*head = (*head & ~k->u_imask) | x->next;
	} else {
		while (k->un[n].next != i) {
			n = k->un[n].next;
			assert(n != NIL); /* i is in its chain */
		}
		k->un[n].next = x->next;
	}
	x->next = NIL;
	k->usize[x->part]--;
}

static void unstable_reset(struct ksm *k)
{
	kit_hash_clear(&k->unstable);
	if (k->ntrees)
		memset(k->usize, 0, k->ntrees * sizeof(*k->usize));
	k->u_used = 1;
}

/* ---- rmap items -------------------------------------------------------- */

/* Item it (RI_STABLE) is still listed in its node: the node was not removed since. */
static inline bool node_listed(const struct ksm *k, const struct ritem *it)
{
	return k->sn[it->head].gen == it->gen;
}

/* Item it leaves its stable node's list. */
static inline void item_unlist(struct ritem *it)
{
	it->flags &= (uint8_t)~(RI_STABLE | RI_MAPS);
	it->head = 0;
	it->gen = 0;
}

/* remove_rmap_item_from_tree() of an item listed in a tree (remove_from_tree()). */
static void remove_listed(struct ksm *k, bk_page p)
{
	struct ritem *it = &k->ri[p];

	if (it->flags & RI_STABLE) {
		uint32_t n = it->head;
		struct snode *s = &k->sn[n];

		if (!node_listed(k, it)) {
			/* its node was removed since (remove_stable_node()) */
			item_unlist(it);
			return;
		}
		chain_unsettle(k, n);
		if (it->flags & RI_MAPS) {
			it->flags &= (uint8_t)~RI_MAPS;
			s->live--;
			sn_sync(k, n);
		}
		if (node_stale(k, n)) {
			remove_stable_node(k, n); /* this item's counter with the others' */
			item_unlist(it);
			return;
		}
		if (s->len > 1)
			k->pages_sharing--;
		else
			k->pages_shared--;
		s->len--;
		item_unlist(it);
	} else if (it->flags & RI_UNSTABLE) {
		if (it->seq == (uint8_t)k->full_scans)
			unstable_erase(k, it->head);
		k->pages_unshared--;
		it->flags &= (uint8_t)~RI_UNSTABLE;
		it->head = 0;
	}
}

/*
 * remove_rmap_item_from_tree().  An item in neither tree - nearly every
 * visit of the second full scan, whose pages the first one only hashed -
 * costs a test, not a call (whose register saves and restores were 22 of
 * its 24 instructions).
 */
static inline void remove_from_tree(struct ksm *k, bk_page p)
{
	if (k->ri[p].flags & (RI_STABLE | RI_UNSTABLE))
		remove_listed(k, p);
}

static void free_item(struct ksm *k, bk_page p)
{
	struct ritem *it = &k->ri[p];

	if (!(it->flags & RI_TRACKED))
		return;
	remove_from_tree(k, p);
	it->flags &= RI_ONZERO;
	k->rmap_items--;
}

/* stable_tree_append(). */
static void stable_append(struct ksm *k, bk_page p, uint32_t n)
{
	struct ritem *it = &k->ri[p];
	struct snode *s = &k->sn[n];

	s->len++;
	s->live++;
	sn_sync(k, n);
	chain_joined(k, n);
	it->head = n;
	it->gen = s->gen;
	it->flags |= RI_STABLE | RI_MAPS;
	if (s->len > 1) /* counted above */
		k->pages_sharing++;
	else
		k->pages_shared++;
}

/* ---- stable tree ------------------------------------------------------- */

/*
 * The walk of stable_node_dup(): picks the dup of chain *np to merge with (the fullest
 * one still below max_page_sharing, else any live one), dropping stale dups
 * met on the way (all of them when a prune is due).  Collapses a chain left
 * with one dup into a plain node (*np then names it) and frees a chain left
 * with none (returns 0).
 */
static uint32_t chain_walk(struct ksm *k, uint32_t *np, bool prune, uint64_t *steps)
{
	uint32_t c = *np, found = 0, d, next, left = 0;
	int32_t found_len = 0;

	/* The walks ahead: the tree's links change below only by rb_erase() or rb_replace(). */
	for (d = k->sn[c].hlist; d; d = next) {
		next = k->sn[d].dnext;
		(*steps)++;
		if (node_stale(k, d)) {
			remove_stable_node(k, d);
			continue;
		}
		left++;
		if (!found || (sharing_candidate(k, d, 0) &&
			       (!sharing_candidate(k, found, 0) || k->sn[d].len > found_len))) {
			found = d;
			found_len = k->sn[d].len;
			if (!prune && sharing_candidate(k, found, 0))
				break;
		}
	}
	if (!found) {
		links_moved(k);
		rb_erase(k->rbt, k->sn, &k->sroot[k->sn[c].tree], c);
		sn_release(k, c);
		k->chains--;
		return 0;
	}
	if (k->sn[c].hlist == found && k->sn[found].dnext == 0) {
		/* One dup left: the chain goes, the dup takes its place. */
		links_moved(k);
		rb_replace(k->rbt, k->sn, &k->sroot[k->sn[c].tree], c, found);
		k->sn[found].kind = SN_NODE;
		sn_sync(k, found);
		k->sn[found].chain = 0;
		k->sn[found].tree = k->sn[c].tree;
		sn_release(k, c);
		k->chains--;
		k->dups--;
		*np = found;
	} else if (k->sn[c].hlist != found && sharing_candidate(k, found, 1)) {
		dup_unlink(k, found);
		dup_add_head(k, found, c);
	} else if (d == 0 && !sharing_candidate(k, found, 0)) {
		/* Every dup walked, all live and full: found is the first (hlist). */
		k->sn[c].len = (int32_t)left;
		sn_sync(k, c);
	} else if (d != 0 && k->sn[c].hlist == found) {
		/* Stopped at the first dup, a live candidate (only a walk without a prune stops). */
		k->sn[c].len = CHAIN_HEAD_PICK;
		sn_sync(k, c);
	}
	return found;
}

#ifndef NDEBUG
/*
 * Chain c's memo says a walk would meet its first dup live and a sharing
 * candidate, then rest others, all live and full (chain_unsettle()).
 */
static bool chain_rest_check(const struct ksm *k, uint32_t c)
{
	uint32_t d = k->sn[c].hlist, n = 0;

	if (!d || node_stale(k, d) || !sharing_candidate(k, d, 0))
		return false;
	for (d = k->sn[d].dnext; d; d = k->sn[d].dnext, n++)
		if (node_stale(k, d) || sharing_candidate(k, d, 0))
			return false;
	return n == k->sn[c].rest;
}
#endif

/*
 * stable_node_dup() (see chain_walk()), its tree steps added to *steps: from
 * the chain's memo when it has one (chain_unsettle()), else by the walk.
 */
static inline uint32_t chain_pick(struct ksm *k, uint32_t *np, bool prune, uint64_t *steps)
{
	struct snode *c = &k->sn[*np];

	if (k->ff)
		ksm_ff_chain_seen(k, *np);
	if (prune && prune_due(k, c)) {
		c->prune_ns = k->now_ns;
		sn_sync(k, *np);
		due_push(k, *np);
	} else {
		prune = false;
	}
	if (c->len > 0) {
		/* Settled: the walk, pruning or not, would take these steps. */
		*steps += (uint64_t)c->len;
		return c->hlist;
	}
	if (c->len == CHAIN_HEAD_PICK && (!prune || c->rest > 0)) {
		/*
		 * The walk would stop at the first dup; or, pruning, meet it and
		 * then its rest others, all live and full: remove none, pick the
		 * first and change nothing.  At 32 M pages half of scan 2's prune
		 * walks (111 k of 220 k) and 2.42 M of its 2.69 M dup visits, each
		 * a dependent miss on a 64-byte node (chain_walk()'s dnext: 4.9% of
		 * the samples; bench/README.md, issue 14 twenty-third round).
		 */
		assert(!prune || chain_rest_check(k, *np));
		*steps += prune ? 1 + (uint64_t)c->rest : 1;
		return c->hlist;
	}
	return chain_walk(k, np, prune, steps);
}

/*
 * The node (or chosen dup) a tree node stands for; 0 if it went stale
 * (restart).  A chain's tree steps are added to *steps.
 */
static inline uint32_t resolve(struct ksm *k, uint32_t *np, bool prune, uint64_t *steps)
{
	if (k->sn[*np].kind == SN_CHAIN)
		return chain_pick(k, np, prune, steps);
	if (node_stale(k, *np)) {
		remove_stable_node(k, *np);
		return 0;
	}
	return *np;
}

/*
 * resolve(), asked only of a node whose links say a search must look at it;
 * the node to go on from in *np.  (n is copied so that the callers' own
 * stays in a register: the walk's critical path is its loads.)
 */
static inline uint32_t resolve_fast(struct ksm *k, uint32_t *np, bool prune, uint64_t *steps)
{
	uint32_t n = *np, d;

	assert(k->rbt[n].spec == sn_spec(k, n));
	if (!k->rbt[n].spec)
		return n;
	d = resolve(k, &n, prune, steps);
	*np = n;
	return d;
}

/*
 * chain_pick() of chain n whose spec says it resolves by its memo (no prune
 * due, so none made, whether the search prunes or not): its steps, and the
 * fast-forward's note that it was resolved.
 */
static inline void memo_pass(struct ksm *k, uint32_t n, uint32_t spec, uint64_t *steps)
{
	if (k->ff)
		ksm_ff_chain_seen(k, n);
	*steps += spec;
}

/*
 * Order of page p (checksum csum) against tree node n standing for node or
 * dup d: checksum first, content on a tie.  A decision by checksum stands
 * for the kernel's early-exit memcmp_pages(), whose cost is part of the
 * tree step (BK_COST_TREE_STEP, calibrated on ksmd as a whole node visit).
 */
static inline int stable_cmp(struct ksm *k, bk_page p, uint32_t csum, uint32_t n, uint32_t d)
{
	uint32_t key = k->rbt[n].kr >> 1;

	if (KEY(csum) != key)
		return KEY(csum) < key ? -1 : 1;
	return k->ops->compare_frame(k->impl, p, k->sn[d].kpage);
}

/*
 * The stable tree search of page q, to be walked ahead (struct walk) a level
 * a visit by walk_step() until its visit: the loads of the ~WALK_AHEAD
 * walks under way overlap, each issued a visit before it is used, where one
 * search's are a chain of dependent cache misses.  Read only; a guess: the
 * key is the page's stored checksum (its checksum again unless it was
 * written), the tree that of the latest unstable search.  stable_search()
 * goes on from a walk only when its page, key and tree are the search's and
 * no tree changed since (epoch); then the walk is exactly the search's own
 * first levels (in Debug builds, walk_check() walks them again to see).
 * Not while the fast-forward holds a copy to compare with (memo_pass()
 * tells it which chains were resolved; it takes or drops a copy only
 * between batches, and each batch moves the epoch).
 */
/*
 * Will the visit of item it search the trees, as far as the item tells?
 * Not when it has no stored checksum (volatile), is a KSM page or is to be
 * skipped (smart_scan).  For hints only: a guess for a later visit.
 */
static inline bool may_search(const struct ksm *k, const struct ritem *it)
{
	return (it->flags & (RI_TRACKED | RI_CSUM | RI_MAPS)) == (RI_TRACKED | RI_CSUM) &&
	       !(k->smart && it->age >= 3 && it->skips);
}

static void walk_start(struct ksm *k, bk_page q)
{
	uint32_t i = (uint32_t)(q % WALK_RING), tree = k->pf_part;
	struct walk *w = &k->walk[i];
	const struct ritem *it;

	w->page = WALK_NONE;
	w->stop = 0;
	k->walk_live &= ~(1u << i);
	k->walk_tie &= ~(1u << i);
	if (q >= k->npages || ksm_ff_watching(k) || tree >= k->ntrees)
		return;
	it = &k->ri[q];
	if (!may_search(k, it))
		return; /* no search expected: not tracked, volatile, a KSM page, skipped */
	w->page = (uint32_t)q;
	w->key = KEY(it->oldchecksum);
	w->tree = tree;
	if (walk_begin_inline(k, w))
		k->walk_live |= 1u << i;
}

/*
 * Every walk under way goes one level down: the node it is at was
 * prefetched a visit ago.  A walk whose trees changed since (epoch) starts
 * again from the root; one that stops prefetches the node its search reads
 * there (stable_cmp(), resolve()).
 */
static void walk_step(struct ksm *k)
{
	const struct rbl *T = k->rbt;
	const struct snode *S = k->sn;
	const uint64_t epoch = k->epoch;
	uint32_t live = k->walk_live, out = live, tie;

	if (k->step_epoch != epoch) {
		/*
		 * The trees changed (or a batch began) since the last step: the
		 * walks from before begin again, without a step this visit.  The
		 * others, and all walks while the epoch stays, are of this epoch.
		 */
		for (uint32_t l = live; l; l &= l - 1) {
			uint32_t i = (uint32_t)__builtin_ctz(l);
			struct walk *w = &k->walk[i];

			if (w->epoch != epoch) {
				live &= ~(1u << i);
				if (!walk_begin(k, w))
					out &= ~(1u << i);
			}
		}
		k->step_epoch = epoch;
	}
	tie = k->walk_tie; /* after the walk_begin()s above */
	for (; live; live &= live - 1) {
		uint32_t i = (uint32_t)__builtin_ctz(live), key, n;
		struct walk *w = &k->walk[i];
		const struct rbl *t;

		assert(w->epoch == epoch);
		n = w->n;
		t = &T[n];
		key = t->kr >> 1;
		if (key == w->key || (t->spec & SPEC_SLOW)) {
			kit_prefetch(&S[n]);
			w->stop = n;
			tie |= (uint32_t)(key == w->key) << i;
			out &= ~(1u << i);
			continue;
		}
		w->passed |= 1ull << (n % 64);
		w->steps += 1 + t->spec;
		w->depth++;
		n = w->key < key ? t->l : t->r;
		w->n = n;
		/*
		 * A walk that ends at NIL (a page of a content of its own) is a
		 * coin flip against one going on: a mask, not a branch, and the
		 * sentinel's hot line prefetched for it (in-run A/B at 32 M
		 * pages; bench/README.md, issue 14 twenty-second round).
		 */
		out &= ~((uint32_t)(n == NIL) << i);
		kit_prefetch(&T[n]);
	}
	k->walk_live = out;
	k->walk_tie = tie;
}

#ifndef NDEBUG
/*
 * Walk w's levels, taken again from the root now: the same (the epoch said
 * nothing changed), each a node passed without reading it.
 */
static bool walk_check(const struct ksm *k, const struct walk *w)
{
	uint32_t n = k->sroot[w->tree], steps = 0, depth = 0;

	for (; depth < w->depth; depth++) {
		if (n == NIL || (k->rbt[n].kr >> 1) == w->key || (k->rbt[n].spec & SPEC_SLOW))
			return false;
		assert(k->rbt[n].spec == sn_spec(k, n));
		steps += 1 + k->rbt[n].spec;
		n = w->key < (k->rbt[n].kr >> 1) ? k->rbt[n].l : k->rbt[n].r;
	}
	return n == w->n && steps == w->steps;
}
#endif

/*
 * The descent of stable_search() over plain nodes (spec 0, no key tie) from
 * n, choosing each link without a branch on the key: the node where the
 * search must look closer, or NIL; *s counts the nodes passed.  On live
 * memory only (no walks ahead there): a search's key is a random checksum,
 * so its turns are coin flips, and each mispredicted one cost more than the
 * level's load from the tree links warm_tables() prefetched (the descent was
 * 14% of the live engine's samples on the 5% trace; bench/README.md, issue
 * 15, eighteenth round).  The simulator's walks ahead keep their branch, whose
 * speculation lets the next level's load start early at 32 M pages.
 */
static inline uint32_t descend_plain(const struct rbl *T, uint32_t n, uint32_t key, uint64_t *s)
{
	uint64_t passed = 0;

	while (n != NIL) {
		const struct rbl *t = &T[n];
		uint32_t nkey = t->kr >> 1, right;

		if (nkey == key || t->spec)
			break;
		passed++;
		right = 0u - (uint32_t)(key > nkey);
		n = (t->l & ~right) | (t->r & right);
	}
	*s = passed;
	return n;
}

/* stable_tree_search(): a KSM page page p (checksum csum) may join, or 0. */
static uint32_t stable_search(struct ksm *k, bk_page p, uint32_t csum, uint32_t tree)
{
	uint64_t steps = 0, depth = 0; /* steps include a chain's dups; depth the KSM pages read */
	uint32_t found = 0, n = k->sroot[tree];
	const struct walk *w = &k->walk[p % WALK_RING];

	if (w->page == p && w->key == KEY(csum) && w->tree == tree && w->epoch == k->epoch) {
		/* Walked ahead, nothing changed since: go on from where that walk stopped. */
		assert(walk_check(k, w));
		n = w->n;
		steps = w->steps;
		depth = w->depth;
	}
	for (; n != NIL;) {
		uint32_t d, spec, key;
		int cmp;

		if (!k->ahead) {
			uint64_t passed;

			n = descend_plain(k->rbt, n, KEY(csum), &passed);
			steps += passed;
			depth += passed;
			if (n == NIL)
				break;
		}
		spec = k->rbt[n].spec;
		key = k->rbt[n].kr >> 1;
		steps++;
		depth++;
		if (KEY(csum) != key && !(spec & SPEC_SLOW)) {
			/* A plain node or a chain resolved by its memo: no need to read it. */
			assert(spec == sn_spec(k, n));
			if (spec)
				memo_pass(k, n, spec, &steps);
			n = KEY(csum) < key ? k->rbt[n].l : k->rbt[n].r;
			continue;
		}
		d = resolve_fast(k, &n, true, &steps);
		if (!d) {
			n = k->sroot[tree]; /* again from the top */
			continue;
		}
		cmp = stable_cmp(k, p, csum, n, d);
		if (cmp < 0) {
			n = k->rbt[n].l;
		} else if (cmp > 0) {
			n = k->rbt[n].r;
		} else {
			/* All dups full: wait for a pair in the unstable tree to start another. */
			found = sharing_candidate(k, d, 0) ? d : 0;
			break;
		}
	}
	account(k, BK_COST_TREE_STEP, steps);
	if (k->model_cost)
		touch_stable_idle(k, depth); /* a chain's dups are walked, their pages not read */
	k->ss_scan++;
	return found;
}

/*
 * The walks after a stable insert changed the links of tree `tree` from
 * path[c] down (c < 0: the root), path[] the insert's own path from the
 * root and its turns (bit j of left: left at path[j]): walk_cut() at c,
 * with the keys that pass path[c].  Beyond the path's memo (a tree over
 * 2^32 nodes): every walk is dropped.
 */
#define INSERT_PATH 64u

static void insert_cut(struct ksm *k, uint32_t tree, const uint32_t *path, uint64_t left, int32_t c)
{
	int64_t lo = -1, hi = (int64_t)1 << 31;

	if (c >= (int32_t)INSERT_PATH) {
		links_moved(k);
		return;
	}
	for (int32_t j = 0; j < c; j++) {
		int64_t key = k->rbt[path[j]].kr >> 1;

		if (left >> j & 1)
			hi = key < hi ? key : hi;
		else
			lo = key > lo ? key : lo;
	}
	walk_cut(k, tree, c, lo, hi);
}

/*
 * stable_tree_insert(): files the new KSM page f (mapped by page p) in the
 * tree, as a dup in a chain if that content is already there.  *out: the
 * node, or 0 when out of memory.  The walks ahead that read links it
 * changes start again (insert_cut()); a new dup of a chain changes none.
 */
static int stable_insert(struct ksm *k, bk_page p, bk_frame f, uint32_t csum, uint32_t tree,
			 uint32_t *out)
{
	uint32_t n, parent, nn, c, depth, path[INSERT_PATH];
	uint64_t left_at = 0;
	bool left = false, need_chain;
	uint64_t steps = 0;
	int rc;

again:
	parent = NIL;
	need_chain = false;
	depth = 0;
	for (n = k->sroot[tree]; n != NIL;) {
		uint32_t d, spec = k->rbt[n].spec, key = k->rbt[n].kr >> 1;
		int cmp;

		steps++;
		if (KEY(csum) != key && !(spec & SPEC_SLOW)) {
			assert(spec == sn_spec(k, n));
			if (spec)
				memo_pass(k, n, spec, &steps);
			parent = n;
			left = KEY(csum) < key;
			n = left ? k->rbt[n].l : k->rbt[n].r;
		} else {
			d = resolve_fast(k, &n, false, &steps);
			if (!d)
				goto again;
			cmp = stable_cmp(k, p, csum, n, d);
			parent = n;
			if (cmp == 0) {
				need_chain = true;
				break;
			}
			left = cmp < 0;
			n = left ? k->rbt[n].l : k->rbt[n].r;
		}
		if (depth < INSERT_PATH) {
			path[depth] = parent;
			left_at = (left_at & ~(1ull << depth)) | (uint64_t)left << depth;
		}
		depth++;
	}
	account(k, BK_COST_TREE_STEP, steps);
	*out = 0;
	rc = sn_alloc(k, &nn);
	if (rc < 0)
		return rc;
	k->sn[nn].kind = SN_NODE;
	k->sn[nn].kpage = f;
	k->sn[nn].tree = tree;
	/*
	 * No mapper until stable_append(): a search meeting it first removes it.
	 * In no tree yet: no walk has read its spec (sn_sync() would restart
	 * the walks whose filter holds its bit).
	 */
	k->rbt[nn].spec = sn_spec(k, nn);
	if (!need_chain) {
		uint32_t x = rb_link(k->rbt, k->sn, &k->sroot[tree], nn, KEY(csum), parent, left);
		int32_t at = (int32_t)depth - 1; /* parent's depth */

		if (x == NIL)
			at = -1;
		else if (depth <= INSERT_PATH)
			while (at >= 0 && path[at] != x)
				at--; /* x is parent or above it: on the path */
		assert(depth > INSERT_PATH || x == NIL || at >= 0);
		insert_cut(k, tree, path, left_at, depth > INSERT_PATH ? (int32_t)INSERT_PATH : at);
	} else {
		c = n;
		if (k->sn[n].kind != SN_CHAIN) {
			rc = sn_alloc(k, &c);
			if (rc < 0) {
				sn_release(k, nn);
				return rc;
			}
			/* alloc_stable_node_chain(): the chain takes n's place, n becomes its dup. */
			k->sn[c].kind = SN_CHAIN;
			k->sn[c].prune_ns = k->now_ns;
			k->sn[c].tree = tree;
			rb_replace(k->rbt, k->sn, &k->sroot[tree], n, c);
			/* n's parent's link changed (n is at depth `depth`) */
			insert_cut(k, tree, path, left_at, (int32_t)depth - 1);
			sn_sync(k, c);
			due_push(k, c);
			k->chains++;
			dup_add_head(k, n, c);
			k->dups++;
		}
		dup_add_head(k, nn, c);
		k->dups++;
	}
	*out = nn;
	return 0;
}

/* ---- unstable tree ----------------------------------------------------- */

/*
 * unstable_tree_search_insert(): a page of the tree with p's content (as
 * page + 1), else 0 after inserting p.  Content is compared now, so pages
 * written since they were inserted leave the tree out of order, as in the
 * kernel.
 */
static uint32_t unstable_search_insert(struct ksm *k, bk_page p, uint32_t csum, uint32_t tree,
				       uint32_t nid)
{
	uint32_t found = 0, n, depth = (uint32_t)kit_tree_depth(k->usize[tree]);
	struct ritem *it = &k->ri[p];

	account(k, BK_COST_TREE_STEP, depth);
	if (k->model_cost)
		touch_tree_idle(k, depth);
	k->pf_part = tree;
	n = ufirst(k, csum, tree);
	assert(n != NIL || ufilter_check(k, csum, tree));
	for (; n != NIL; n = k->un[n].next) {
		if (k->un[n].csum == csum && k->un[n].part == tree &&
		    k->ops->compare(k->impl, p, k->upage[n]) == 0) {
			found = n;
			break;
		}
	}
	if (found) {
		if (!k->across) {
			struct bk_page_info ti;

			k->ops->page_info(k->impl, k->upage[found], &ti);
			if (ti.node != nid)
				return 0; /* the tree page moved node: merge it next scan */
		}
		return (uint32_t)k->upage[found] + 1;
	}
	n = k->u_used++; /* at most one insertion per page per scan: never beyond npages */
	k->upage[n] = (uint32_t)p;
	it->flags |= RI_UNSTABLE;
	it->seq = (uint8_t)k->full_scans;
	it->head = n;
	uinsert(k, n, csum, tree);
	k->usize[tree]++;
	k->pages_unshared++;
	return 0;
}

/* ---- the scanner ------------------------------------------------------- */

static unsigned skip_age(uint8_t age)
{
	if (age <= 3)
		return 1;
	if (age <= 5)
		return 2;
	if (age <= 8)
		return 4;
	return 8;
}

/*
 * After a merge call: a change page_info() would show and the model was not
 * told of (a huge-page split in the simulator) ends skip_known() for the run.
 */
static inline void heard(struct ksm *k)
{
	if (k->known && k->ops->unheard_changes(k->impl) != k->unheard)
		k->known = false;
}

/*
 * should_skip() of a tracked item whose page is known present and private
 * without asking page_info(): the item's last visit found it so (RI_TRACKED
 * is set only where page_info() said present and not the zero page, or it
 * is cleared), and since then no unmap was heard (RI_GONE) nor a merge made
 * (RI_MAPS, RI_ONZERO; cleared only with the COW break or unmap that ends
 * the mapping), and the backend made no change unheard (known).  Then the
 * visit is a skip whatever page_info() says, and costs what the skip does:
 * smart_scan skips ~81% of the cursor's positions on the live engine's 5%
 * trace, each a page_info() call through the backend before (lv_page_info
 * 16% of the engine's CPU from 10 s; bench/README.md, issue 15, twenty-fifth
 * round).  Speed only: the same counts, ages and tree removals as the visit
 * through page_info() and should_skip() (Debug asserts page_info() agrees).
 */
static inline bool skip_known(const struct ksm *k, const struct ritem *it)
{
	return k->known && k->smart &&
	       (it->flags & (RI_TRACKED | RI_MAPS | RI_ONZERO | RI_GONE)) == RI_TRACKED &&
	       it->age >= 3 && it->skips;
}

/* should_skip_rmap_item(). */
static bool should_skip(struct ksm *k, bk_page p, const struct bk_page_info *info)
{
	struct ritem *it = &k->ri[p];
	uint8_t age;

	if (!k->smart || info->frame != BK_NO_FRAME)
		return false; /* KSM pages are never skipped */
	age = it->age;
	if (age != U8_MAX_AGE)
		it->age++;
	if (age < 3)
		return false;
	if (!it->skips) {
		it->skips = (uint8_t)skip_age(age);
		return false;
	}
	k->pages_skipped++;
	it->skips--;
	remove_from_tree(k, p);
	return true;
}

/*
 * The stable tree part of cmp_and_merge_page(): page p (checksum csum) joins
 * a KSM page of its content if there is one.  1: a KSM page matched (merged,
 * or the merge failed: either way the visit ends), 0: none (*tree is set),
 * or SP_E*.
 */
static int stable_merge(struct ksm *k, bk_page p, const struct bk_page_info *info, uint32_t csum,
			uint32_t *tree)
{
	uint32_t d;
	int rc = tree_of(k, info, tree);

	if (rc < 0)
		return rc;
	d = stable_search(k, p, csum, *tree);
	if (!d)
		return 0;
	if (k->ops->merge_frame(k->impl, p, k->sn[d].kpage) == 0)
		stable_append(k, p, d);
	heard(k);
	return 1;
}

/* cmp_and_merge_page(). */
static int cmp_and_merge(struct ksm *k, bk_page p, const struct bk_page_info *info)
{
	const struct backend_ops *ops = k->ops;
	struct ritem *it = &k->ri[p];
	uint32_t checksum, tree, d, t;
	bk_frame f;
	int rc;

	if (info->frame != BK_NO_FRAME)
		return 0; /* already a KSM page, listed in its stable node */
	remove_from_tree(k, p);
	if (!k->checksum_first) {
		/*
		 * Up to 6.10 the stable tree comes first, whatever the checksum.  The
		 * model's tree is keyed by checksum, so it takes one without counting
		 * it; the kernel computes the checksum only when no KSM page matched.
		 */
		bool uncounted = ops->checksum_uncounted != NULL;

		checksum = uncounted ? ops->checksum_uncounted(k->impl, p) : ops->checksum(k->impl, p);
		rc = stable_merge(k, p, info, checksum, &tree);
		if (rc != 0)
			return rc < 0 ? rc : 0;
		if (uncounted)
			account(k, BK_COST_CHECKSUM, 1);
	} else if (k->track && !ops->written(k->impl, p) && (it->flags & RI_CSUM)) {
		/*
		 * write_tracking: written() is asked at every visit that would hash,
		 * so "not written" means "not written since oldchecksum was taken".
		 * (Before 6.11 every visit hashes for the stable tree first, so the
		 * tracking has nothing to save there and is not asked.)
		 */
		checksum = it->oldchecksum;
	} else if (ops->checksum_again) {
		/* From 6.11 oldchecksum is, once RI_CSUM is set, the last checksum of p (below). */
		checksum = ops->checksum_again(k->impl, p, (it->flags & RI_CSUM) ? &it->oldchecksum : NULL);
	} else {
		checksum = ops->checksum(k->impl, p);
	}
	if (!(it->flags & RI_CSUM) || it->oldchecksum != checksum) {
		it->oldchecksum = checksum;
		it->flags |= RI_CSUM;
		return 0; /* volatile this round */
	}
	if (k->use_zero && checksum == k->zero_sum) {
		rc = ops->merge_zero(k->impl, p);
		heard(k);
		if (rc == 0) {
			it->flags |= RI_ONZERO;
			k->zero_pages++;
			return 0;
		}
	}
	if (k->checksum_first) {
		rc = stable_merge(k, p, info, checksum, &tree);
		if (rc != 0)
			return rc < 0 ? rc : 0;
	}
	t = unstable_search_insert(k, p, checksum, tree, k->across ? 0 : info->node);
	if (!t)
		return 0;
	/* The scanned page becomes the KSM page; the tree page joins it. */
	rc = ops->merge_pages(k->impl, t - 1, p, &f);
	heard(k);
	if (rc < 0)
		return 0;
	remove_from_tree(k, t - 1);
	rc = stable_insert(k, p, f, checksum, tree, &d);
	if (rc < 0)
		return rc;
	stable_append(k, t - 1, d);
	stable_append(k, p, d);
	return 0;
}

static uint64_t sleep_ns(const struct ksm *k)
{
	uint64_t jiffies;

	if (k->sleep_ms == 0)
		return 0;
	if (k->tick_hz == 0)
		return k->sleep_ms * 1000000u;
	jiffies = (k->sleep_ms * k->tick_hz + 999) / 1000; /* msecs_to_jiffies rounds up */
	return (jiffies + 1) * 1000000000u / k->tick_hz;
}

/*
 * ksmd sleeps with a timer in jiffies: it wakes timeout + 1 ticks after the
 * tick in which its batch ended, so a batch shorter than a tick costs no
 * extra time (the measured 24.0 ms cycle for 20 ms), a longer one does.
 */
static uint64_t ksm_wake_at(const void *st, uint64_t end_ns, uint64_t sleep)
{
	const struct ksm *k = st;
	uint64_t tick;

	if (sleep == 0 || k->tick_hz == 0)
		return end_ns + sleep;
	tick = 1000000000u / k->tick_hz;
	return end_ns / tick * tick + sleep;
}

/*
 * Lookahead (hints only: no decision or count depends on them), so that the
 * cache misses of the pages the cursor reaches soon overlap the visits before
 * them.  KIT_AHEAD_FAR pages ahead: what page_info() and checksum() will read
 * (the backend's prefetch(), where it has one) and the page's rmap item.
 * AHEAD_BUCKET pages ahead, that item loaded by then: the unstable tree
 * bucket the page will search, keyed by its stored checksum - the key again
 * unless the page is written - and the latest search's tree; AHEAD_NODE
 * pages ahead, that bucket loaded by then, the chain's first node.  Neither
 * for a page whose stable search, walked ahead to its end, stops at a node
 * of its key (walk_ties()): it will join that KSM page, not search the
 * unstable tree (the few that still do miss the hints).  Scan 2 at 32 M
 * pages: 8.15 -> 7.6 s user with the hints so kept and moved from 6 and 2
 * pages ahead (bench/README.md, issue 14 ninth round).
 *
 * The buckets go AHEAD_GROUP at a time, back to back, every AHEAD_GROUP
 * visits: those of pages AHEAD_BUCKET to AHEAD_BUCKET + AHEAD_GROUP - 1
 * ahead.  A prefetch into the bucket heads (32 MiB at 32 M pages, random
 * lines) holds the visit's retirement until its address is translated (a
 * TLB miss, long under a VM's nested paging): one a visit, 21% of scan 2's
 * samples sat right after it on a Zen 5 Firecracker guest; sixteen in a row
 * wait for their translations together.  Scan 2 at 32 M pages: -11% of
 * its CPU against one a visit 10 ahead (in-run A/B of alternate batches,
 * 1 a visit, groups of 2, 4, 8 and 16, 4 to 16 ahead; bench/README.md,
 * issue 14 sixteenth round).
 */
#define AHEAD_BUCKET 4u
#define AHEAD_GROUP 16u
#define AHEAD_NODE 4u
#define AHEAD_ITEM (WALK_AHEAD + 8u)

/*
 * A chain read by a search has 1.63 nodes on average (scan 2 at 32 M pages:
 * 1.59 M nodes in 973 k searches the filter let through): AHEAD_NODE ahead
 * the first is prefetched, and AHEAD_NEXT ahead, from that first one (its
 * line prefetched AHEAD_NODE - AHEAD_NEXT visits before), the second; the
 * third and on are still a dependent miss each.  The first node's number is
 * noted in un_note[] (NIL: none, the sentinel's hot line then).  In-run A/B
 * at 32 M pages: -1% of scan 2's CPU (bench/README.md, issue 14
 * twenty-third round).
 */
#define AHEAD_NEXT 2u

_Static_assert(AHEAD_NEXT < AHEAD_NODE && AHEAD_NODE - AHEAD_NEXT < UN_RING &&
		       (UN_RING & (UN_RING - 1)) == 0,
	       "a page's first-node note is read before a later page's overwrites it");

_Static_assert(AHEAD_BUCKET + AHEAD_GROUP <= WALK_AHEAD && AHEAD_ITEM > AHEAD_BUCKET + AHEAD_GROUP,
	       "a group's pages have their walks under way and their items loaded");

/*
 * Page q's search walked ahead stopped at a node of its key (a hint), for a
 * page whose walk has started and not yet given its slot to a later page
 * (walk_start(), WALK_AHEAD pages ahead: the pages up to WALK_AHEAD ahead of
 * the cursor but a scan's first ones, whose bit may be an older page's).  A
 * bit a slot, not the slot's page and tie read again: the bucket group asks
 * for sixteen pages at a time (in-run A/B at 32 M pages: -2% of scan 2's
 * CPU; callgrind at 4 M 903.9 -> 889.5 instructions a visit;
 * bench/README.md, issue 14 twenty-first round).
 */
static inline bool walk_ties(const struct ksm *k, bk_page q)
{
	return (k->walk_tie >> (q % WALK_RING)) & 1u;
}

static inline void scan_ahead(struct ksm *k, bk_page p)
{
	const struct ritem *it;

	if (p + KIT_AHEAD_FAR < k->npages && k->ops->prefetch)
		k->ops->prefetch(k->impl, p + KIT_AHEAD_FAR);
	if (p + AHEAD_ITEM < k->npages)
		kit_prefetch(&k->ri[p + AHEAD_ITEM]);
	if (p % AHEAD_GROUP == 0) {
		for (bk_page q = p + AHEAD_BUCKET; q < p + AHEAD_BUCKET + AHEAD_GROUP && q < k->npages; q++) {
			it = &k->ri[q];
			if ((it->flags & RI_CSUM) && !walk_ties(k, q))
				kit_prefetch(&k->unstable.head[kit_bucket(&k->unstable, it->oldchecksum,
									  k->pf_part)]);
		}
	}
	if (p + AHEAD_NODE < k->npages) {
		uint32_t n = NIL;

		it = &k->ri[p + AHEAD_NODE];
		if ((it->flags & RI_CSUM) && !walk_ties(k, p + AHEAD_NODE)) {
			n = ufirst(k, it->oldchecksum, k->pf_part);
			if (n != NIL)
				kit_prefetch(&k->un[n]);
		}
		k->un_note[(p + AHEAD_NODE) % UN_RING] = n;
	}
	/* the second node of page p + AHEAD_NEXT's chain, from the first (none: node 0's, hot) */
	kit_prefetch(&k->un[k->un[k->un_note[(p + AHEAD_NEXT) % UN_RING]].next]);
}

/*
 * On live memory (no lookahead but this one): every AHEAD_GROUP positions,
 * the unstable tree buckets of the pages AHEAD_BUCKET to AHEAD_BUCKET +
 * AHEAD_GROUP - 1 ahead that have a stored checksum and that skip_known()
 * will not skip, as scan_ahead() does in the simulator.  warm_tables()
 * prefetches the whole 256 KiB table before each batch, yet the bucket's
 * load in ufirst() was still 43% of ksm_batch()'s samples (~16% of the
 * engine's) on the 5% trace from 10 s, ~55 ns a search: the warmed lines do
 * not last the batch here (a Zen 2 KVM guest, 512 KiB L2).  Without the
 * skip_known() test (live25's version) most prefetches are for positions
 * smart_scan skips (81% of them; since skip_known() a skip costs little):
 * in-run A/B of alternate batches from 10 s 0.973, 1.009 without the test,
 * 0.911, 0.940 with it, with the other core busy (load 2.5 -> 1.2); on a
 * quiet machine 0.979, 1.028: the warmed lines are evicted by the other
 * vCPU's work, so the hint pays under load and costs nothing without
 * (bench/README.md, issue 15, twenty-sixth round).
 * Hints only: nothing is decided by them.
 */
static inline void live_ahead(const struct ksm *k, bk_page p)
{
	bk_page end = p + AHEAD_BUCKET + AHEAD_GROUP;

	if (p % AHEAD_GROUP != 0)
		return;
	if (end > k->npages)
		end = k->npages;
	for (bk_page q = p + AHEAD_BUCKET; q < end; q++) {
		const struct ritem *it = &k->ri[q];

		if ((it->flags & RI_CSUM) && !skip_known(k, it))
			kit_prefetch(&k->unstable.head[kit_bucket(&k->unstable, it->oldchecksum, k->pf_part)]);
	}
}

/*
 * Hints for what the search of page p reads once its walk stops (a key tie
 * found: a merge).  AHEAD_DUP pages ahead, at a chain: its first dup, the
 * one a chain with a memo resolves to; and a note of the node whose KSM page
 * the search will compare, that dup or the node itself (0: none).
 * AHEAD_FRAME pages ahead, from that note: the node's KSM page, through the
 * backend (compare_frame(), merge_frame()).  The note spares frame_ahead()
 * the walk and the stop node read again (in-run A/B at 32 M pages, against
 * frame_ahead() doing dup_ahead()'s reads itself: -2% of scan 2's CPU;
 * bench/README.md, issue 14 twentieth round).  For a stale node, a chain
 * without a memo or a walk stopped since the note the hints may name other
 * lines, harmlessly.
 *
 * Neither takes a branch on the page ahead: whether its walk stopped, at a
 * chain or not, is a coin flip from page to page (a join or a page of its
 * own), so each such branch was a misprediction half the time.  Where there
 * is nothing to hint they prefetch the sentinel node 0 (kind SN_FREE, no
 * dups, no KSM page: a line in L1) and the backend's slot 0 instead (in-run
 * A/B at 32 M pages: -3 to -4% of scan 2's CPU; bench/README.md, issue 14
 * twenty-second round).
 */
#define AHEAD_DUP 4u
#define AHEAD_FRAME 2u

_Static_assert(AHEAD_FRAME < AHEAD_DUP && AHEAD_DUP <= FRAME_RING,
	       "a page's frame note is taken before a later page's overwrites it");

static inline void dup_ahead(struct ksm *k, bk_page p)
{
	uint32_t f;
	const struct walk *w = &k->walk[p % WALK_RING];
	/* where p's walk stopped (walk_step()), else NIL; masks, not branches */
	uint32_t n = w->stop & (0u - (uint32_t)(w->page == p)), h, chain;
	const struct snode *s = &k->sn[n];

	h = s->hlist & (0u - (uint32_t)(s->hlist < k->sn_used));
	chain = 0u - (uint32_t)(s->kind == SN_CHAIN);
	f = (h & chain) | (n & ~chain);
	kit_prefetch(&k->sn[f]);
	k->frame_note[p % FRAME_RING] = f;
}

static inline void frame_ahead(const struct ksm *k, bk_page p)
{
	uint32_t f = k->frame_note[p % FRAME_RING];

	f &= 0u - (uint32_t)(f < k->sn_used);
	k->ops->prefetch_frame(k->impl, k->sn[f].kpage);
}

/*
 * A batch ends: one BK_COST_BATCH_WAKE if it followed a sleep (the first
 * batch follows ksmd's start, asleep), one BK_COST_BATCH_READ if it also
 * read a page, and whether the next one will follow a sleep;
 * its `revisits` (visits of pages visited before) each count the ms their
 * rmap item lay idle, one full scan (BK_COST_VISIT_IDLE), and once that it
 * is cold at all (BK_COST_VISIT_COLD).
 */
static void batch_end(struct ksm *k, bool read, uint64_t sleep, uint64_t revisits)
{
	if (k->woke)
		account(k, BK_COST_BATCH_WAKE, 1);
	if (read && k->woke)
		account(k, BK_COST_BATCH_READ, 1);
	k->woke = sleep != 0;
	if (revisits && k->scan_period_ns >= BK_IDLE_MIN_NS) {
		account(k, BK_COST_VISIT_IDLE, revisits * (k->scan_period_ns / 1000000));
		account(k, BK_COST_VISIT_COLD, revisits);
	}
	acc_flush(k);
}

/*
 * On live memory (a backend that measures its CPU) every batch comes back
 * from its sleep (20 ms) with the caches it left cold: the unstable tree's
 * bucket head, one random line a visit, was 13-16% of the live engine's CPU
 * on the 5% trace (perf: the load in ufirst(), ~50 ns a visit), and the
 * stable tree's links are read at every visit too.  When the two tables are
 * small they are prefetched whole before the loop: a line costs a prefetch
 * instead of a miss, and a batch of pages_to_scan visits reads most of them
 * (bench/README.md, issue 15, fourteenth round).  Hints only: nothing is
 * decided by them.  The simulator (cost model) has no sleep to come back
 * from and is left as it was.
 */
#define WARM_HEAD_MAX ((size_t)256 << 10)
#define WARM_LINKS_MAX ((size_t)128 << 10)

static void warm_tables(const struct ksm *k)
{
	sp_prefetch_small(k->unstable.head, ((size_t)k->unstable.mask + 1) * sizeof(*k->unstable.head),
			  WARM_HEAD_MAX);
	sp_prefetch_small(k->rbt, (size_t)k->sn_used * sizeof(*k->rbt), WARM_LINKS_MAX);
}

static int ksm_batch(void *st, uint64_t now_ns, uint64_t *sleep)
{
	struct ksm *k = st;
	const struct backend_ops *ops = k->ops;
	struct bk_page_info info;
	uint64_t visits = 0, revisits = 0;
	bool read = false;
	int rc;

	k->now_ns = now_ns;
	if (!k->model_cost)
		warm_tables(k);
	k->epoch++; /* the searches walked ahead, from before the clock moved, are dropped (not the top) */
	due_pass(k);
	*sleep = sleep_ns(k);
	if (k->cursor == 0) { /* a full scan begins: the last one lasted since its own beginning */
		if (k->scan_began)
			k->scan_period_ns = now_ns - k->scan_start_ns;
		k->scan_start_ns = now_ns;
		k->scan_began = true;
	}
	if (k->model_cost) {
		visit_classes(k);
		k->tree_halvings = halvings_above(now_ns - k->scan_start_ns, BK_IDLE_MIN_NS);
	}
	while (visits < k->pages_to_scan) {
		bk_page p;
		struct ritem *it;

		if (k->cursor == k->npages) {
			/* The scan passed the last page: a full scan is done, the unstable tree goes. */
			k->cursor = 0;
			k->full_scans++;
			k->ss_last = k->ss_scan;
			k->ss_scan = 0;
			unstable_reset(k);
			batch_end(k, read, *sleep, revisits);
			return 0;
		}
		p = k->cursor++;
		if (k->ahead) {
			scan_ahead(k, p);
			k->walk_live &= ~(1u << (p % WALK_RING)); /* p's walk is used now or never */
			walk_step(k);
			walk_start(k, p + WALK_AHEAD);
			if (k->ops->prefetch_frame && k->walk_live) { /* none: a first scan, nothing to hint */
				dup_ahead(k, p + AHEAD_DUP);
				frame_ahead(k, p + AHEAD_FRAME);
			}
		} else if (!k->model_cost) {
			live_ahead(k, p);
		}
		it = &k->ri[p];
		if (skip_known(k, it)) {
			/* what page_info() would say of it, as far as should_skip() reads */
			const struct bk_page_info private_page = { .present = 1, .frame = BK_NO_FRAME };
#ifndef NDEBUG
			ops->page_info(k->impl, p, &info);
			assert(info.present && info.frame == BK_NO_FRAME);
#endif
			revisits++;
			account(k, BK_COST_VISIT, 1);
			if (!should_skip(k, p, &private_page))
				assert(!"skip_known() said should_skip() would skip");
			continue;
		}
		ops->page_info(k->impl, p, &info);
		if (!info.present || info.frame == BK_ZERO_FRAME) {
			free_item(k, p);
			continue;
		}
		if (!(it->flags & RI_TRACKED)) {
			uint8_t keep = it->flags & RI_ONZERO;

			memset(it, 0, sizeof(*it));
			it->flags = RI_TRACKED | keep;
			k->rmap_items++;
			account(k, BK_COST_FIRST_VISIT, 1); /* alloc_rmap_item() and its insertion */
		} else {
			it->flags &= (uint8_t)~RI_GONE; /* present again */
			revisits++;
		}
		account(k, BK_COST_VISIT, 1);
		if (should_skip(k, p, &info))
			continue;
		if (!(it->flags & RI_MAPS)) { /* a KSM page's content is not read by its visit */
			if (k->model_cost)
				touch_visit_idle(k, it);
			read = true;
		}
		rc = cmp_and_merge(k, p, &info);
		if (rc < 0) {
			acc_flush(k);
			return rc;
		}
		if (k->scanned_per_visit)
			k->pages_scanned++;
		visits++;
	}
	/*
	 * 6.6-6.9 add `scan_npages - npages` after the loop: the unsigned count
	 * wraps past 0 in the loop test, so pages_to_scan + 1; a batch that ends
	 * a full scan returns before it and adds nothing.
	 */
	if (!k->scanned_per_visit)
		k->pages_scanned += (int64_t)(uint32_t)(k->pages_to_scan + 1);
	batch_end(k, read, *sleep, revisits);
	return 0;
}

static int ksm_page_changed(void *st, bk_page p, uint32_t what)
{
	struct ksm *k = st;
	struct ritem *it = &k->ri[p];

	k->changes++;
	if (what & ALGO_CHANGE_UNMAPPED)
		it->flags |= RI_GONE; /* its next visit asks page_info() (skip_known()) */
	if ((what & (ALGO_CHANGE_COW | ALGO_CHANGE_UNMAPPED)) && (it->flags & RI_ONZERO)) {
		it->flags &= (uint8_t)~RI_ONZERO;
		k->zero_pages--;
	}
	if ((what & (ALGO_CHANGE_COW | ALGO_CHANGE_UNMAPPED)) && (it->flags & RI_MAPS)) {
		it->flags &= (uint8_t)~RI_MAPS;
		k->sn[it->head].live--;
		sn_sync(k, it->head);
		chain_unsettle(k, it->head);
	}
	/*
	 * A COW of a KSM page is noticed when the scanner next visits the page;
	 * an unmapped page's rmap item is freed when the cursor passes it.
	 */
	return 0;
}

/* remove_all_stable_nodes() once pages_shared == 0: only empty nodes remain. */
static void drop_stable_nodes(struct ksm *k)
{
	for (uint32_t i = 1; i < k->sn_used; i++) {
		if (k->sn[i].kind != SN_FREE)
			sn_release(k, i);
	}
	if (k->ntrees)
		memset(k->sroot, 0, k->ntrees * sizeof(*k->sroot));
	links_moved(k);
	k->chains = 0;
	k->dups = 0;
}

static int ksm_set_param(void *st, uint32_t idx, double value, struct sp_err *err)
{
	struct ksm *k = st;
	uint64_t v = (uint64_t)value;

	k->changes++;
	links_moved(k);
	switch (idx) {
	case P_PAGES_TO_SCAN:
		k->pages_to_scan = v;
		return 0;
	case P_SLEEP_MILLISECS:
		k->sleep_ms = v;
		return 0;
	case P_USE_ZERO_PAGES:
		k->use_zero = v != 0;
		return 0;
	case P_SMART_SCAN: {
		char why[256];

		if (!algo_kernel_offers(&k->kern, "smart_scan", why, sizeof(why)))
			return sp_err_set(err, SP_EINVAL, "ksm: %s", why);
		k->smart = v != 0;
		return 0;
	}
	case P_PRUNE_MILLISECS:
		k->prune_ms = v;
		due_rebuild(k);
		return 0;
	case P_TICK_HZ:
		k->tick_hz = v;
		return 0;
	case P_WRITE_TRACKING:
		k->track = v != 0 && k->ops->written;
		return 0;
	case P_MERGE_ACROSS_NODES:
	case P_MAX_PAGE_SHARING:
		if ((idx == P_MERGE_ACROSS_NODES && (v != 0) == k->across) ||
		    (idx == P_MAX_PAGE_SHARING && (int32_t)v == k->max_sharing))
			return 0;
		if (kit_refuse_while_shared("ksm", ksm_params[idx].name, k->pages_shared, err) < 0)
			return SP_EINVAL;
		drop_stable_nodes(k);
		if (idx == P_MERGE_ACROSS_NODES)
			k->across = v != 0;
		else
			k->max_sharing = (int32_t)v;
		return 0;
	default:
		return sp_err_set(err, SP_EINVAL, "ksm: no parameter %u", idx);
	}
}

static void ksm_metrics(const void *st, struct metrics *m)
{
	const struct ksm *k = st;
	int64_t vol = k->rmap_items - k->pages_shared - k->pages_sharing - k->pages_unshared;

	m->pages_shared = k->pages_shared;
	m->pages_sharing = k->pages_sharing;
	m->pages_unshared = k->pages_unshared;
	m->pages_volatile = vol < 0 ? 0 : vol;
	m->full_scans = k->full_scans;
	m->pages_scanned = k->pages_scanned;
	m->pages_skipped = k->pages_skipped;
	m->ksm_zero_pages = k->zero_pages;
	m->stable_node_chains = k->chains;
	m->stable_node_dups = k->dups;
	if (algo_kernel_has(&k->kern, AK_KSM_ZERO_PAGES)) {
		m->general_profit = metrics_general_profit(m, k->page_size, k->rmap_items);
	} else {
		/* 6.4-6.5: general_profit knew no ksm_zero_pages. */
		struct metrics t = *m;

		t.ksm_zero_pages = 0;
		m->general_profit = metrics_general_profit(&t, k->page_size, k->rmap_items);
	}
}

/* ---- idle fast-forward (algo_ops.repeat/skip) ---------------------------- */

/*
 * The cycle is whole full scans: at the end of a full scan (the batch that
 * wrapped the cursor, the unstable tree just emptied) the whole state is
 * compared with a copy taken at the end of an earlier scan.  Equal but for
 * the work counters (full_scans, pages_scanned, pages_skipped), the seq of
 * the items in the unstable tree (full_scans' low bits: ahead by the scans
 * between) and the prune time of every chain resolved meanwhile (ahead by
 * exactly the time between; a chain no search reached keeps its own): then
 * every later cycle repeats.
 * Without smart_scan that is one scan once the checksums settled; with it,
 * the 9 scans of the skip rhythm (skip_age() 8: one visit, eight skips)
 * once every aging page (tracked, not a KSM page) is 9 visits old: from
 * there on an age only counts (skip_age() is 8 whatever it is, up to its
 * saturation at 255), so it is a work counter that grows by the scans
 * between, up to 255.  A stable node chain is pruned at its first search
 * prune_millisecs after the last prune, a rhythm that may take hundreds of
 * those 9-scan cycles to repeat, or more (then no fast-forward).  When to
 * copy and compare is kit.h's (struct kit_cycle): cycles of up to
 * KSM_FF_SPAN scans are found.
 */
#define KSM_FF_SPAN 1024

struct ksm_ff {
	struct kit_cycle cy;        /* when to copy and compare */
	/* the copy: state at the end of the scan that ended at ns */
	uint64_t ns;
	uint64_t scan_period_ns;    /* the idle class of every touch depends on it */
	uint64_t ss_scan, ss_last;  /* and on these (touch_stable_idle()) */
	uint8_t *chain;             /* per node: 1 resolved since the copy, 2 in the last cycle */
	int64_t full_scans, pages_scanned, pages_skipped;
	uint32_t sn_used, sn_free, ntrees, sn_cap, tree_cap;
	struct ritem *ri;
	struct snode *sn;           /* cache-line aligned, as the pool */
	struct rbl *rbt;
	uint32_t *sroot;
	/* the last cycle's growth, for skip() */
	int64_t d_scans, d_scanned, d_skipped;
};

static void ksm_ff_free(struct ksm *k)
{
	if (!k->ff)
		return;
	free(k->ff->ri);
	free(k->ff->sn);
	free(k->ff->rbt);
	free(k->ff->sroot);
	free(k->ff->chain);
	free(k->ff);
	k->ff = NULL;
}

static void ksm_ff_sig(const struct ksm *k, int64_t *sig)
{
	memset(sig, 0, KIT_CYCLE_SIG * sizeof(*sig));
	/* not pages_unshared: with smart_scan it differs from scan to scan of a cycle */
	sig[0] = k->pages_shared;
	sig[1] = k->pages_sharing;
	sig[2] = (int64_t)k->sn_free;
	sig[3] = k->rmap_items;
	sig[4] = k->zero_pages;
	sig[5] = k->chains;
	sig[6] = k->dups;
	sig[7] = (int64_t)k->sn_used << 32 | k->ntrees;
	sig[8] = (int64_t)k->parts.n;
}

/* Copies the state; false if out of memory (then no fast-forward). */
static bool ksm_ff_copy(struct ksm *k)
{
	struct ksm_ff *f = k->ff;

	if (!f->ri) {
		f->ri = malloc(k->npages * sizeof(*f->ri) + 1);
		if (!f->ri)
			return false;
	}
	if (f->sn_cap < k->sn_used) {
		/* their contents are copied below */
		struct snode *sn = pool_new(k->sn_used, sizeof(*sn));
		struct rbl *t = sn ? pool_new(k->sn_used, sizeof(*t)) : NULL;
		uint8_t *ch = t ? realloc(f->chain, k->sn_used) : NULL;

		if (sn) {
			free(f->sn);
			f->sn = sn;
		}
		if (t) {
			free(f->rbt);
			f->rbt = t;
		}
		if (!ch)
			return false;
		memset(ch + f->sn_cap, 0, k->sn_used - f->sn_cap);
		f->chain = ch;
		f->sn_cap = k->sn_used;
	}
	for (uint32_t i = 0; i < k->sn_used; i++)
		f->chain[i] &= 2; /* none resolved since this copy */
	if (f->tree_cap < k->ntrees) {
		uint32_t *r = realloc(f->sroot, k->ntrees * sizeof(*r));

		if (!r)
			return false;
		f->sroot = r;
		f->tree_cap = k->ntrees;
	}
	memcpy(f->ri, k->ri, k->npages * sizeof(*f->ri));
	memcpy(f->sn, k->sn, k->sn_used * sizeof(*f->sn));
	memcpy(f->rbt, k->rbt, k->sn_used * sizeof(*f->rbt));
	if (k->ntrees)
		memcpy(f->sroot, k->sroot, k->ntrees * sizeof(*f->sroot));
	f->sn_used = k->sn_used;
	f->sn_free = k->sn_free;
	f->ntrees = k->ntrees;
	f->ns = k->now_ns;
	f->scan_period_ns = k->scan_period_ns;
	f->ss_scan = k->ss_scan;
	f->ss_last = k->ss_last;
	f->full_scans = k->full_scans;
	f->pages_scanned = k->pages_scanned;
	f->pages_skipped = k->pages_skipped;
	return true;
}

/*
 * The age an item of age a has after scans more full scans (ksm_ff_equal);
 * it as its state says (ksm_ff_item(): an item of a removed node is not listed).
 */
static uint8_t ksm_ff_age(const struct ksm *k, const struct ritem *it, uint8_t a, uint64_t scans)
{
	if (!k->smart || !(it->flags & RI_TRACKED) || (it->flags & RI_STABLE) || a < 9)
		return a; /* not aging, or its age still matters */
	return scans >= U8_MAX_AGE - a ? U8_MAX_AGE : (uint8_t)(a + scans);
}

/*
 * Item it of a state whose node pool is sn, as that state says it is: an
 * item of a node removed since it was listed (remove_stable_node() leaves
 * it to its next visit) is not listed; gen is how the pool tells, not state.
 */
static struct ritem ksm_ff_item(const struct ritem *it, const struct snode *sn)
{
	struct ritem r = *it;

	if ((r.flags & RI_STABLE) && sn[r.head].gen != r.gen)
		item_unlist(&r);
	r.gen = 0;
	r.flags &= (uint8_t)~RI_GONE; /* whether page_info() is asked, not state */
	return r;
}

/* Item p equals its copy but for its age (a work counter past 8) and seq (ahead by dseq). */
static bool ksm_ff_item_equal(const struct ksm *k, const struct ksm_ff *f, uint64_t p)
{
	struct ritem a = ksm_ff_item(&f->ri[p], f->sn), b = ksm_ff_item(&k->ri[p], k->sn);
	uint64_t scans = (uint64_t)(k->full_scans - f->full_scans);

	return a.oldchecksum == b.oldchecksum && a.head == b.head && a.flags == b.flags &&
	       a.skips == b.skips && b.age == ksm_ff_age(k, &b, a.age, scans) &&
	       (!(b.flags & RI_UNSTABLE) || (uint8_t)(a.seq + scans) == b.seq);
}

/* The state equals the copy but for work counters, ages, seq and (moved by d_ns) prune times. */
static bool ksm_ff_equal(const struct ksm *k, struct ksm_ff *f, uint64_t d_ns)
{
	if (f->scan_period_ns != k->scan_period_ns || f->ss_scan != k->ss_scan ||
	    f->ss_last != k->ss_last || f->sn_used != k->sn_used ||
	    f->sn_free != k->sn_free || f->ntrees != k->ntrees ||
	    (k->ntrees && memcmp(f->sroot, k->sroot, k->ntrees * sizeof(*k->sroot))))
		return false;
	for (uint32_t i = 1; i < k->sn_used; i++) {
		const struct snode *a = &f->sn[i], *b = &k->sn[i];
		uint64_t prune = a->prune_ns + (b->kind == SN_CHAIN && (f->chain[i] & 1) ? d_ns : 0);

		/* a chain's len and rest are chain_pick()'s memos, not state */
		if (a->kpage != b->kpage || prune != b->prune_ns ||
		    (b->kind != SN_CHAIN && a->len != b->len) ||
		    a->live != b->live || a->hlist != b->hlist || a->dnext != b->dnext ||
		    a->dprev != b->dprev || a->chain != b->chain || a->tree != b->tree ||
		    a->kind != b->kind || a->rbp != b->rbp || f->rbt[i].l != k->rbt[i].l ||
		    f->rbt[i].r != k->rbt[i].r || f->rbt[i].kr != k->rbt[i].kr)
			return false;
	}
	/* the item that differed last time most likely differs again: a mismatch costs O(1) */
	if (f->cy.hint < k->npages && !ksm_ff_item_equal(k, f, f->cy.hint))
		return false;
	for (uint64_t p = 0; p < k->npages; p++) {
		if (!ksm_ff_item_equal(k, f, p)) {
			f->cy.hint = p;
			return false;
		}
	}
	return true;
}

/* chain_pick() resolved chain c: its prune time may move with the cycle. */
static void ksm_ff_chain_seen(struct ksm *k, uint32_t c)
{
	if (k->ff->cy.have && c < k->ff->sn_used)
		k->ff->chain[c] |= 1;
}

/* The fast-forward holds a copy: it wants to hear of every chain resolved (ksm_ff_chain_seen()). */
static bool ksm_ff_watching(const struct ksm *k)
{
	return k->ff && k->ff->cy.have;
}

static bool ksm_repeat(void *st, uint64_t idle_ns, uint64_t *since_ns)
{
	struct ksm *k = st;
	struct ksm_ff *f = k->ff;
	int64_t sig[KIT_CYCLE_SIG];
	enum kit_cycle_do do_;

	if (!f) {
		f = k->ff = calloc(1, sizeof(*f));
		if (!f)
			return false;
		kit_cycle_init(&f->cy, KSM_FF_SPAN);
	}
	ksm_ff_sig(k, sig);
	do_ = kit_cycle_step(&f->cy, k->full_scans, sig, k->changes, k->now_ns, idle_ns,
			     k->smart ? 9 : 1);
	if (do_ == KIT_CYCLE_COMPARE && ksm_ff_equal(k, f, k->now_ns - f->ns)) {
		*since_ns = f->ns;
		f->d_scans = k->full_scans - f->full_scans;
		f->d_scanned = k->pages_scanned - f->pages_scanned;
		f->d_skipped = k->pages_skipped - f->pages_skipped;
		for (uint32_t i = 0; i < k->sn_used; i++)
			f->chain[i] = (uint8_t)((f->chain[i] & 1) << 1); /* moved in this cycle */
		kit_cycle_copied(&f->cy, ksm_ff_copy(k)); /* the next cycle starts here */
		return f->cy.have;
	}
	if (do_ == KIT_CYCLE_COPY || (do_ == KIT_CYCLE_COMPARE && kit_cycle_missed(&f->cy)))
		kit_cycle_copied(&f->cy, ksm_ff_copy(k));
	return false;
}

static void ksm_skip(void *st, uint64_t n, uint64_t cycle_ns)
{
	struct ksm *k = st;
	struct ksm_ff *f = k->ff;
	uint8_t dseq = (uint8_t)((uint64_t)f->d_scans * n);

	k->full_scans += (int64_t)n * f->d_scans;
	k->pages_scanned += (int64_t)n * f->d_scanned;
	k->pages_skipped += (int64_t)n * f->d_skipped;
	k->now_ns += n * cycle_ns;
	k->scan_start_ns += n * cycle_ns; /* a cycle is whole full scans: the period stays */
	for (uint64_t p = 0; p < k->npages; p++) {
		struct ritem *it = &k->ri[p], now = ksm_ff_item(it, k->sn);

		if (it->flags & RI_UNSTABLE)
			it->seq = (uint8_t)(it->seq + dseq);
		it->age = ksm_ff_age(k, &now, it->age, n * (uint64_t)f->d_scans);
	}
	for (uint32_t i = 1; i < k->sn_used; i++) {
		if (k->sn[i].kind == SN_CHAIN && (f->chain[i] & 2))
			k->sn[i].prune_ns += n * cycle_ns;
	}
	due_rebuild(k);
	links_moved(k);
	kit_cycle_forget(&f->cy, k->full_scans);
}

static void ksm_destroy(void *st)
{
	struct ksm *k = st;

	if (!k)
		return;
	ksm_ff_free(k);
	free(k->due.e);
	kit_parts_release(&k->parts);
	kit_hash_release(&k->unstable);
	free(k->usize);
	free(k->sroot);
	sp_hot_free(k->ri, k->npages + 1, sizeof(*k->ri));
	sp_hot_free(k->un, k->npages + 1, sizeof(*k->un));
	sp_hot_free(k->upage, k->npages + 1, sizeof(*k->upage));
	if (k->sn)
		pool_free(k->sn, k->sn_cap, sizeof(*k->sn));
	if (k->rbt)
		pool_free(k->rbt, k->rbt_cap, sizeof(*k->rbt));
	free(k->top);
	free(k);
}

static int ksm_create(void **out, const struct algo_params *prm, const struct algo_env *env,
		      struct sp_err *err)
{
	struct ksm *k = calloc(1, sizeof(*k));

	*out = NULL;
	if (!k)
		return sp_err_set(err, SP_ENOMEM, "ksm: out of memory");
	k->ops = env->bk.ops;
	k->impl = env->bk.impl;
	k->pages_to_scan = (uint64_t)prm->v[P_PAGES_TO_SCAN];
	k->sleep_ms = (uint64_t)prm->v[P_SLEEP_MILLISECS];
	k->across = prm->v[P_MERGE_ACROSS_NODES] != 0;
	k->use_zero = prm->v[P_USE_ZERO_PAGES] != 0;
	k->max_sharing = (int32_t)prm->v[P_MAX_PAGE_SHARING];
	if (env->kernel)
		k->kern = *env->kernel;
	else
		algo_kernel_newest(&k->kern);
	if (prm->given & (1u << P_SMART_SCAN)) {
		char why[256];

		if (!algo_kernel_offers(&k->kern, "smart_scan", why, sizeof(why))) {
			free(k);
			return sp_err_set(err, SP_EINVAL, "ksm: %s", why);
		}
	}
	k->checksum_first = algo_kernel_has(&k->kern, AK_CHECKSUM_FIRST);
	k->scanned_per_visit = algo_kernel_has(&k->kern, AK_PAGES_SCANNED_PER_VISIT) ||
			       !algo_kernel_has(&k->kern, AK_PAGES_SCANNED);
	k->smart = prm->v[P_SMART_SCAN] != 0 && algo_kernel_has(&k->kern, AK_SMART_SCAN);
	k->prune_ms = (uint64_t)prm->v[P_PRUNE_MILLISECS];
	k->tick_hz = (uint64_t)prm->v[P_TICK_HZ];
	k->woke = true; /* ksmd starts asleep */
	k->track = prm->v[P_WRITE_TRACKING] != 0 && k->ops->written;
	k->model_cost = !k->ops->cost_measured;
	k->ahead = k->model_cost;
	k->known = k->ops->unheard_changes != NULL;
	if (k->known)
		k->unheard = k->ops->unheard_changes(k->impl);
	k->npages = k->ops->npages(k->impl);
	k->page_size = k->ops->page_size(k->impl);
	k->zero_sum = k->ops->zero_checksum(k->impl);
	if (k->npages >= UINT32_MAX - 1) {
		unsigned long long n = k->npages;

		ksm_destroy(k);
		return sp_err_set(err, SP_ENOTSUP, "ksm: %llu pages: beyond this model's limit of 2^32-2 "
				  "pages (the trace is valid; the model cannot hold it)", n);
	}
	/* Touched all over on every pass: on huge pages (sp_bigmem.h). */
	k->ri = sp_hot_calloc(k->npages + 1, sizeof(*k->ri));
	k->un = sp_hot_calloc(k->npages + 1, sizeof(*k->un));
	k->upage = sp_hot_calloc(k->npages + 1, sizeof(*k->upage));
	k->u_used = 1;
	unstable_bits(k);
	for (uint32_t i = 0; i < WALK_RING; i++)
		k->walk[i].page = WALK_NONE;
	k->top_for = UINT32_MAX;
	k->sn_cap = 1024;
	k->sn_used = 1; /* 0 is the sentinel */
	k->sn = pool_grow(NULL, 0, k->sn_cap, sizeof(*k->sn));
	if (k->sn)
		memset(k->sn, 0, k->sn_cap * sizeof(*k->sn));
	k->rbt = pool_grow(NULL, 0, k->sn_cap, sizeof(*k->rbt));
	if (k->rbt)
		memset(k->rbt, 0, k->sn_cap * sizeof(*k->rbt));
	k->rbt_cap = k->sn_cap;
	/*
	 * Unstable tree buckets: a power of two above npages / 4, i.e. one per
	 * 2-4 pages, 1-2 B per page (npages itself gave 4-8 B, 8 at 2^k pages).  A
	 * search compares only nodes of its own key, kept in insertion order
	 * whatever the bucket count, and is charged by tree depth: the results
	 * do not depend on it.  Chains of nodes with other keys grow a little
	 * (at most one node per page, ~0.6 in a steady scan): no measurable
	 * time at 32 M pages (bench/README.md, issue 14, fifth round).  On live
	 * memory (model_cost off) one per 1-2 pages: there a chain's nodes are
	 * cold after each sleep, and the filter's false hits that walk them were
	 * ~7% of the engine on the 5% trace (the head table, 256 KiB at 64 Ki
	 * pages, is still warmed whole by warm_tables(); issue 15, eighteenth round).
	 */
	if (!k->ri || !k->un || !k->upage || !k->sn || !k->rbt || kit_parts_init(&k->parts) < 0 ||
	    kit_hash_init(&k->unstable, k->model_cost ? k->npages / 4 : k->npages / 2) < 0) {
		unsigned long long n = k->npages;

		ksm_destroy(k);
		return sp_err_set(err, SP_ENOMEM, "ksm: out of memory for %llu pages", n);
	}
	*out = k;
	return 0;
}

const struct algo_ops algo_ksm = {
	.version = ALGO_OPS_VERSION,
	.name = "ksm",
	.description = "model of Linux KSM (ksmd) by --kernel version: checksum filter, stable/unstable trees, chains, smart scan",
	.caps = ALGO_CAP_SCANNER | ALGO_CAP_NODES | ALGO_CAP_LAZY_COW | ALGO_CAP_LINUX,
	.params = ksm_params,
	.nparams = sizeof(ksm_params) / sizeof(ksm_params[0]),
	.create = ksm_create,
	.destroy = ksm_destroy,
	.batch = ksm_batch,
	.page_changed = ksm_page_changed,
	.set_param = ksm_set_param,
	.metrics = ksm_metrics,
	.wake_at = ksm_wake_at,
	.repeat = ksm_repeat,
	.skip = ksm_skip,
};
