/*
 * kit.h - the merge algorithms' shared kit: the pieces every algorithm file
 * needs and none should write again (kit.c).
 *
 *   partitions    one dense id per (security domain, NUMA node) pair, or per
 *                 domain when merge_across_nodes=1: pages of different
 *                 partitions never share a frame.  Ids are given in the
 *                 order the pairs are first seen, from 0, so they index
 *                 per-partition arrays (trees, counters).
 *   hash chains   a bucket hash of (checksum, partition) over intrusive,
 *                 doubly linked chains of struct kit_entry (entries numbered
 *                 from 1, 0 = none), the structure every model uses to stand
 *                 for a content-ordered tree.
 *   tree depth    the height of a balanced tree of n entries: the tree steps
 *                 a search of that tree is charged.
 *   stable table  one entry per shared frame the algorithm made: frame,
 *                 key, live mappers through the algorithm, which page maps
 *                 which entry, and the pages_shared / pages_sharing counts.
 *   EBUSY rule    merge_across_nodes and max_page_sharing may not change
 *                 while shared frames exist.
 *
 * Nothing here keeps global state.  Functions return 0 or a negative SP_E*
 * code; none prints.
 */
#ifndef SP_KIT_H
#define SP_KIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "backend.h"
#include "sp_error.h"
#include "sp_map.h"
#include "sp_util.h"

/* ---- partitions ------------------------------------------------------------ */

struct kit_parts {
	struct sp_map id1; /* domain << 32 | node (KIT_ANY_NODE across nodes) -> id + 1 */
	uint64_t last_key; /* the key asked last and its id (n > 0): a page is */
	uint32_t last_id;  /* mostly in its predecessor's partition */
	uint32_t n;        /* ids given: 0 .. n-1 */
};

#define KIT_ANY_NODE UINT32_MAX

int kit_parts_init(struct kit_parts *t);
void kit_parts_release(struct kit_parts *t);
/*
 * The partition of (domain, node), node ignored when across: the same pair
 * always gets the same id, different pairs never share one.  SP_ENOMEM when
 * the table cannot grow (nothing changes then).
 */
int kit_part_id(struct kit_parts *t, uint32_t domain, uint32_t node, bool across, uint32_t *out);

/* The partition of a page (its domain and node). */
static inline int kit_part(struct kit_parts *t, const struct bk_page_info *info, bool across,
			   uint32_t *out)
{
	return kit_part_id(t, info->domain, info->node, across, out);
}

/*
 * Grows a zero-filled array of n elements of elem bytes to need elements
 * (need > n), zero-filling the new ones: the new array, or NULL (arr is then
 * untouched and still valid).
 */
void *kit_grow(void *arr, size_t elem, uint64_t n, uint64_t need);

/* ---- hash chains -------------------------------------------------------- */

/*
 * One entry of a chain: its key and its neighbours (entry numbers, 0 = none).
 * prev is KIT_FIRST for a chain's first entry, so that prev != 0 says the
 * entry is in a chain (kit_hash_clear() leaves that stale: a user that clears
 * keeps its own record, as kit_unstable's generation does).
 */
struct kit_entry {
	uint32_t csum;
	uint32_t part;
	uint32_t next, prev;
};

#define KIT_FIRST UINT32_MAX /* prev of a chain's first entry */

struct kit_hash {
	uint32_t *head;   /* first entry of each bucket's chain (bucket b at head[b << shift]), 0 = empty */
	uint32_t mask;    /* buckets - 1 */
	uint8_t shift;    /* 1 when paired with another hash (kit_hash_pair()), else 0 */
	uint8_t borrowed; /* head lies in the other hash's array (that one frees it) */
};

/* Buckets: the least power of two above entries, at least 1024. */
int kit_hash_init(struct kit_hash *h, uint64_t entries);
void kit_hash_release(struct kit_hash *h);
/* Empties every chain (the entries' links are left as they are). */
void kit_hash_clear(struct kit_hash *h);
/*
 * Puts the buckets of two empty hashes of as many buckets (kit_hash_init()
 * with the same entries, nothing inserted yet) side by side, bucket b of
 * each in one 8-byte pair, so that a caller that looks one key up in both
 * reads one line, not two.  Each key keeps its bucket number (the chains,
 * their order and lengths are those of two hashes apart: no result moves).
 * b's buckets then lie in a's array: release b before a, or with it.
 * SP_ENOMEM (nothing changes) when the pair's array cannot be had, SP_EINVAL
 * when the sizes differ or either is paired already.
 */
int kit_hash_pair(struct kit_hash *a, struct kit_hash *b);

/* The bucket of key (csum, part): both halves of the key are mixed. */
static inline uint32_t kit_bucket(const struct kit_hash *h, uint32_t csum, uint32_t part)
{
	uint64_t x = (((uint64_t)part << 32) | csum) * 0x9e3779b97f4a7c15ULL;

	return (uint32_t)(x >> 32) & h->mask;
}

/*
 * The head of key (csum, part)'s bucket: head[kit_bucket()] unless h is
 * paired (a caller that never pairs h may index head[] by kit_bucket()).
 */
static inline uint32_t *kit_head(const struct kit_hash *h, uint32_t csum, uint32_t part)
{
	return &h->head[(size_t)kit_bucket(h, csum, part) << h->shift];
}

/* The first entry of the chain key (csum, part) hashes to (it may hold other keys). */
static inline uint32_t kit_hash_first(const struct kit_hash *h, uint32_t csum, uint32_t part)
{
	return *kit_head(h, csum, part);
}

/*
 * Entry i of entries stride bytes apart, entry 1 at one: each at the start
 * of a larger record (a struct kit_unode) when stride > sizeof(struct
 * kit_entry).
 */
static inline struct kit_entry *kit_entry_at(char *one, size_t stride, uint32_t i)
{
	return (struct kit_entry *)(one + (size_t)(i - 1) * stride);
}

/* Sets entry i's key and puts it at the head of its chain (entries as kit_entry_at()). */
static inline void kit_chain_insert(struct kit_hash *h, char *one, size_t stride, uint32_t i,
				    uint32_t csum, uint32_t part)
{
	struct kit_entry *x = kit_entry_at(one, stride, i);
	uint32_t *head = kit_head(h, csum, part);

	x->csum = csum;
	x->part = part;
	x->prev = KIT_FIRST;
	x->next = *head;
	if (*head)
		kit_entry_at(one, stride, *head)->prev = i;
	*head = i;
}

/* Takes entry i out of its chain (entries as kit_entry_at()). */
static inline void kit_chain_remove(struct kit_hash *h, char *one, size_t stride, uint32_t i)
{
	struct kit_entry *x = kit_entry_at(one, stride, i);

	if (x->prev == KIT_FIRST)
		*kit_head(h, x->csum, x->part) = x->next;
	else
		kit_entry_at(one, stride, x->prev)->next = x->next;
	if (x->next)
		kit_entry_at(one, stride, x->next)->prev = x->prev;
	x->next = x->prev = 0;
}

/* kit_chain_insert() and kit_chain_remove() over an array of entries, entry i at e[i]. */
void kit_hash_insert(struct kit_hash *h, struct kit_entry *e, uint32_t i, uint32_t csum,
		     uint32_t part);
void kit_hash_remove(struct kit_hash *h, struct kit_entry *e, uint32_t i);

/* ---- lookahead ------------------------------------------------------------- */

/*
 * Pages a scanner visits soon, so that their cache misses overlap the visits
 * before them: KIT_AHEAD_FAR visits ahead what the backend's prefetch()
 * loads (page_info(), checksum()) and the page's own state; KIT_AHEAD_NEAR
 * ahead, that state loaded by then, the hash buckets its lookups will read,
 * keyed by its stored checksum (the key again unless the page is written).
 * Hints only: no decision or count depends on them.
 */
#define KIT_AHEAD_FAR 16u
#define KIT_AHEAD_NEAR 6u
/* A scanner in random order: backend_ops.prefetch_info() this many visits ahead. */
#define KIT_AHEAD_INFO 28u

/* A read prefetch the compiler keeps: sp_prefetch() (sp_util.h). */
static inline void kit_prefetch(const void *p)
{
	sp_prefetch(p);
}

/* Prefetches the bucket of key (csum, part) in h. */
static inline void kit_prefetch_bucket(const struct kit_hash *h, uint32_t csum, uint32_t part)
{
	kit_prefetch(kit_head(h, csum, part));
}

/*
 * Prefetches the first entry of key (csum, part)'s chain in h (entries e):
 * a second stage, some visits after kit_prefetch_bucket() of the same key,
 * so that the bucket read here is in the cache.  A hint for the entry.
 */
static inline void kit_prefetch_chain(const struct kit_hash *h, const struct kit_entry *e,
				      uint32_t csum, uint32_t part)
{
	uint32_t i = *kit_head(h, csum, part);

	if (i)
		kit_prefetch(&e[i]);
}

/* ---- per-page unstable sets ------------------------------------------------- */

/*
 * Pages waiting for a twin, as ksmd's unstable tree holds them: a hash on
 * (checksum, partition) over one node a page.  A page stays a member
 * (counted as pages_unshared) until it is removed, also after a full scan
 * empties the tree (kit_unstable_reset(): a new generation, old nodes
 * unlinked at once but counted until their pages are visited again, as in
 * the kernel).  Generations run 1 .. UINT32_MAX and wrap past 0
 * (kit_gen_add()), so a node's generation also says whether its page is a
 * member (0: not one): one read at a visit, not two.
 * The set keeps no per-page memory of its own: page p's node lies in the
 * caller's per-page records, nodes + p * stride (kit_unstable_init()), so
 * a caller that keeps more a page reads one record at a visit (uksm: 24
 * bytes, the node and its own flags) and one that keeps nothing else has an
 * array of nodes (cmd).  In the chains page p's node is entry p + 1.
 */
struct kit_unode {
	struct kit_entry key; /* (checksum, partition) and chain links while linked */
	uint32_t gen;         /* the generation it joined in, 0 = not a member */
};

struct kit_unstable {
	struct kit_hash hash;
	char *nodes;            /* page p's struct kit_unode at nodes + p * stride */
	size_t stride;
	uint32_t cur;           /* the current generation, never 0 */
	int64_t members;        /* pages with a generation */
	uint64_t linked;        /* members inserted in the current generation */
};

/* Generation g (not 0) n generations on: modulo UINT32_MAX, in 1 .. UINT32_MAX. */
static inline uint32_t kit_gen_add(uint32_t g, uint64_t n)
{
	return (uint32_t)(((uint64_t)g - 1 + n % UINT32_MAX) % UINT32_MAX + 1);
}

/*
 * Over the caller's nodes, zero-filled (no member yet): page 0's at nodes,
 * each next one stride bytes on (the size of the caller's record; the
 * caller owns and frees them).  The hash is sized for `entries` linked
 * nodes (kit_hash_init()): a search checks every node's key, so the bucket
 * count changes no result, only the chains' length - unless a caller
 * counts the nodes it passes.
 */
int kit_unstable_init(struct kit_unstable *u, struct kit_unode *nodes, size_t stride,
		      uint64_t entries);
/* Frees the hash (not the nodes). */
void kit_unstable_release(struct kit_unstable *u);

/* Page p's node. */
static inline struct kit_unode *kit_unstable_node(const struct kit_unstable *u, bk_page p)
{
	return (struct kit_unode *)(u->nodes + p * u->stride);
}

/* Whether page p is a member. */
static inline bool kit_unstable_member(const struct kit_unstable *u, bk_page p)
{
	return kit_unstable_node(u, p)->gen != 0;
}

/* Page p (not a member) joins with key (csum, part). */
static inline void kit_unstable_insert(struct kit_unstable *u, bk_page p, uint32_t csum,
				       uint32_t part)
{
	kit_chain_insert(&u->hash, u->nodes, u->stride, (uint32_t)p + 1, csum, part);
	kit_unstable_node(u, p)->gen = u->cur;
	u->members++;
	u->linked++;
}

/*
 * Page p leaves (nothing when not a member).  Returns true when its node
 * was linked in the current generation, its partition then in *part.
 */
static inline bool kit_unstable_remove(struct kit_unstable *u, bk_page p, uint32_t *part)
{
	struct kit_unode *n = kit_unstable_node(u, p);
	bool linked = n->gen == u->cur;

	if (!n->gen)
		return false;
	if (linked) {
		if (part)
			*part = n->key.part;
		kit_chain_remove(&u->hash, u->nodes, u->stride, (uint32_t)p + 1);
		u->linked--;
	}
	n->gen = 0;
	u->members--;
	return linked;
}

/* Empties the tree: a new generation begins. */
void kit_unstable_reset(struct kit_unstable *u);

/* ---- tree depth ------------------------------------------------------------ */

/* Nodes a search of a balanced tree of size entries visits: ceil(log2(size + 1)). */
static inline uint64_t kit_tree_depth(uint64_t size)
{
	return size ? 64u - (uint64_t)__builtin_clzll(size) : 0; /* the bits of size */
}

/* ---- the stable table ------------------------------------------------------ */

/*
 * Invariants: an entry is in use iff live[i] > 0 (or it was just added and
 * is about to be attached); shared == entries in use; sharing == sum of
 * (live - 1); of_page[p] == i iff page p maps entry i's frame through us.
 * Free entries form a list through key[i].next.
 */
struct kit_stable {
	bk_frame *frame;        /* per entry: the shared frame */
	uint32_t *live;         /* per entry: pages mapping it through us */
	struct kit_entry *key;  /* per entry: (checksum, partition) and hash chain */
	uint32_t cap, used, free_head;
	struct kit_hash hash;
	uint32_t *of_page;      /* per page: the entry whose frame it maps, 0 = none */
	uint64_t npages;        /* of_page's size, less one */
	int64_t shared, sharing;
};

/*
 * For npages pages, the hash sized for `entries` entries (as kit_unstable_init()).
 * A stable table holds one entry per shared frame, far fewer than pages:
 * npages / KIT_STABLE_DIV (cmd, uksm: 1 B of buckets per page, was 8 at
 * 8M pages; their user time did not move, bench/README.md issue 14).
 */
#define KIT_STABLE_DIV 8u
int kit_stable_init(struct kit_stable *s, uint64_t npages, uint64_t entries);
void kit_stable_release(struct kit_stable *s);
/* A new entry for frame f keyed (csum, part), in its chain, no mapper yet. */
int kit_stable_add(struct kit_stable *s, bk_frame f, uint32_t csum, uint32_t part, uint32_t *out);
/* Page p maps entry i's frame now. */
void kit_stable_attach(struct kit_stable *s, bk_page p, uint32_t i);
/*
 * Page p no longer maps its entry's frame (COW break, unmap).  Returns the
 * entry; when it has no mapper left (live == 0) it was freed, its key still
 * readable until the next add.
 */
uint32_t kit_stable_detach(struct kit_stable *s, bk_page p);

/* ---- the EBUSY rule ---------------------------------------------------------- */

/*
 * merge_across_nodes and max_page_sharing cannot change while shared frames
 * exist (the kernel answers EBUSY): 0 when shared == 0, else SP_EINVAL with
 * a message naming the algorithm, the parameter and the frames.
 */
int kit_refuse_while_shared(const char *algo, const char *param, int64_t shared,
			    struct sp_err *err);

/* ---- idle fast-forward: a scanner's repeating cycle (algo_ops.repeat) ------- */

/*
 * When a scanner's state repeats from full scan to full scan (ksm.c, cmd.c):
 * the scanner keeps a copy of its state and compares it at the end of every
 * scan; this decides when.  A copy is taken once two scans in a row ended
 * with the same counters (sig, the scanner's own choice) and heard no
 * change; it is compared at every scan end after, and retaken after 1, 2,
 * 4, ... scans without a match up to span (Brent's cycle detection: a cycle
 * of c scans after a transient of t is found within a few times t + c).
 * Counters that move, or a change heard, drop the copy: a converging run
 * pays nothing.
 */
#define KIT_CYCLE_SIG 10

struct kit_cycle {
	bool have;                    /* a copy is held */
	int64_t last_scan;            /* full_scans at the previous step */
	int64_t sig[KIT_CYCLE_SIG];   /* the counters at the previous scan's end */
	uint64_t changes;
	uint32_t quiet;               /* scan ends in a row with the same counters */
	uint32_t power;               /* scans the copy is kept without a match */
	uint32_t scans;               /* scans since the copy */
	uint32_t span;                /* the most scans a cycle may take */
	uint64_t hint;                /* the caller's: the item that differed last */
	uint64_t scan_end_ns;         /* when the previous scan ended */
};

enum kit_cycle_do { KIT_CYCLE_NOTHING, KIT_CYCLE_COPY, KIT_CYCLE_COMPARE };

void kit_cycle_init(struct kit_cycle *c, uint32_t span);
/*
 * At the end of every batch: NOTHING (not the end of a scan, or no copy
 * wanted), COPY (take a copy, then kit_cycle_copied()) or COMPARE (compare
 * the state with the copy: if equal, the cycle is found - take a new copy;
 * if not, kit_cycle_missed() says whether to take a new copy).  sig: the
 * KIT_CYCLE_SIG counters (unused ones 0); changes: the changes heard so far;
 * now_ns, idle_ns: the batch's start and repeat()'s idle_ns; cycle_scans:
 * the fewest scans a cycle can take (ksm with smart_scan: 9).  No copy is
 * taken while the idle time left is shorter than 2 * cycle_scans + 2 scans
 * like the last: a skip needs two cycles seen first, so a short run's tail
 * pays no copy.
 */
enum kit_cycle_do kit_cycle_step(struct kit_cycle *c, int64_t full_scans, const int64_t *sig,
				 uint64_t changes, uint64_t now_ns, uint64_t idle_ns,
				 uint32_t cycle_scans);
void kit_cycle_copied(struct kit_cycle *c, bool ok);
bool kit_cycle_missed(struct kit_cycle *c);
/* Forgets the copy, as after a skip: a new one after two scans like the next. */
void kit_cycle_forget(struct kit_cycle *c, int64_t full_scans);

#endif
