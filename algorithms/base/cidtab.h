/*
 * cidtab.h - content ids: a multiset of (content, partition) pairs like
 * fpcount.h, where each distinct pair present gets a small stable id on
 * first sight.  A holder keeps the 4-byte id instead of the 16-byte
 * fingerprint and the partition, and gives it back by id alone (no lookup).
 *
 * Ids run from 1 (0 is never an id); an id is reused once its count falls
 * to 0.  Memory: 20 bytes per distinct pair (its fingerprint, and a word of
 * its count and partition number), plus an index of 8 to 16 bytes per
 * distinct pair (4-byte slots, load between 25% and 50%); large arrays on
 * huge pages.
 * A table told how many pairs to expect is sized for them at once (no
 * doubling of the index, no moves of the entries) and still grows past them.
 */
#ifndef SP_CIDTAB_H
#define SP_CIDTAB_H

#include <stddef.h>
#include <stdint.h>

#include "fingerprint.h"
#include "sp_map.h"
#include "sp_util.h"

/*
 * An id's word in meta[]: its count in the low CIDTAB_CBITS bits, its
 * partition's number (partitions numbered in order of first sight) above.
 * A count of CIDTAB_CMAX or more reads CIDTAB_CMAX there and is held whole
 * in the table's side map `counts`; the partitions numbered CIDTAB_PESC and
 * after all read CIDTAB_PESC there, their numbers held in the side map `parts`.
 * Why not a 4-byte partition and a 4-byte count: 15 M distinct contents at
 * 32 M pages, nearly all held once; 4 bytes less each is 60 MB less fresh
 * memory, whose first touch is this VM's dearest time (bench/README.md,
 * issue 14, nineteenth round).  A trace has at most 4096 guests, so its
 * domains past 4095 and counts past ~1 M are rare: the side maps stay small.
 */
#define CIDTAB_CBITS 20
#define CIDTAB_CMAX ((1u << CIDTAB_CBITS) - 1)
#define CIDTAB_PESC ((1u << (32 - CIDTAB_CBITS)) - 1)

/*
 * A pair by id, 20 bytes (4-byte aligned: a quarter of them straddle two
 * lines): the fingerprint's lo and hi as 32-bit halves, then the word.
 */
struct cidtab_ent {
	uint32_t fp[4];           /* lo's low, lo's high, hi's low, hi's high half; a free id's fp[0]: the next free id */
	uint32_t meta;            /* count | partition number << CIDTAB_CBITS; 0: the id is free */
};

struct cidtab {
	struct cidtab_ent *ent;   /* by id; ent[0] unused */
	uint32_t *index;          /* open addressing: (tag << idbits) | id, 0 empty */
	size_t mask;              /* index capacity - 1, a power of two */
	unsigned idbits;          /* bits of a slot that hold the id: every id < 2^idbits */
	uint32_t nent, cap_ent;   /* ids handed out so far (+1), capacity of ent */
	uint32_t free_head;       /* a free id, or 0 */
	size_t used;              /* ids with count > 0 == distinct */
	size_t shared;            /* ids with count > 1 */
	uint64_t total;           /* sum of counts */
	uint32_t *part_of;        /* by partition number (< nparts): the partition */
	uint32_t nparts, part_cap; /* partitions numbered; part_of's capacity */
	uint32_t last_part, last_pn; /* the partition looked up last and its number (nparts > 0) */
	struct sp_map part_num;   /* partition -> its number + 1 */
	struct sp_map counts;     /* id -> count, for counts >= CIDTAB_CMAX */
	struct sp_map parts;      /* id -> partition number, for numbers >= CIDTAB_PESC */
};

int cidtab_init(struct cidtab *c);
/*
 * As cidtab_init, for about `expect` distinct pairs held at once: the index
 * at the smallest capacity that holds them at <= 50% load, its slots' id
 * bits enough for `expect` ids, written before
 * first use (sp_big_prefault), the entries' room reserved; more pairs grow
 * it as usual.  An overestimate costs the index's memory (8-16 B a pair).
 */
int cidtab_init_sized(struct cidtab *c, uint64_t expect);
void cidtab_release(struct cidtab *c);
/*
 * One more holder of (fp, part): *id receives its id, the return value the
 * new count, or SP_ENOMEM (the table is then unchanged).
 */
int64_t cidtab_add(struct cidtab *c, struct sp_fp fp, uint32_t part, uint32_t *id);
/* One holder fewer of id (a live id); returns the count left (0: the id is freed). */
uint32_t cidtab_put(struct cidtab *c, uint32_t id);
/*
 * The hash of (fp, part) that places it in the index.  A caller that hints
 * and then adds the same pair computes it once and passes it to the _hash
 * variants below (which take it on trust: it must be this function's).
 * A fingerprint is already a hash: its high word serves as it is.  The low
 * word and the partition go through one multiply, so that keys differing
 * only there (a crafted trace) still spread.
 */
static inline uint64_t cidtab_hash(struct sp_fp fp, uint32_t part)
{
	return fp.hi ^ ((fp.lo ^ part) * 0x9e3779b97f4a7c15ULL);
}

/* The slot a hash belongs in: its high word's top bits (capacity <= 2^32). */
static inline size_t cidtab_home(const struct cidtab *c, uint64_t h)
{
	return (size_t)(((h >> 32) * (uint64_t)(c->mask + 1)) >> 32);
}

/* The content of id (a live id). */
static inline struct sp_fp cidtab_fp(const struct cidtab *c, uint32_t id)
{
	const uint32_t *w = c->ent[id].fp;

	return (struct sp_fp){ w[0] | (uint64_t)w[1] << 32, w[2] | (uint64_t)w[3] << 32 };
}

/*
 * An index slot: the id in the low idbits bits, a tag of the hash above
 * (cidtab.c).  The arithmetic in 64 bits, so that idbits == 32 (no tag)
 * needs no branch of its own: a shift by 32 of a 64-bit value leaves 0.
 */
static inline uint32_t cidtab_id_mask(unsigned idbits)
{
	return (uint32_t)(((uint64_t)1 << idbits) - 1);
}

/* The slot of id with hash h, for ids of idbits bits. */
static inline uint32_t cidtab_slot_of(uint64_t h, uint32_t id, unsigned idbits)
{
	return (uint32_t)((uint64_t)(uint32_t)h << idbits) | id;
}

/* Whether slot s (not empty) may hold the pair of hash h: its tag matches. */
static inline int cidtab_tag_match(uint32_t s, uint64_t h, unsigned idbits)
{
	return (uint64_t)(s ^ cidtab_slot_of(h, 0, idbits)) >> idbits == 0;
}

/* cidtab_add_hash() out of line: every case. */
int64_t cidtab_add_hash_slow(struct cidtab *c, struct sp_fp fp, uint32_t part, uint64_t h,
			     uint32_t *id);

/*
 * cidtab_add() of a pair whose cidtab_hash() is h.  Inline, the common
 * cases: the partition the last one looked up (and numbered below
 * CIDTAB_PESC), and a count that stays below CIDTAB_CMAX or a new id the
 * index and the entries hold without growing; anything else, before
 * anything is changed, goes to cidtab_add_hash_slow(), which does the
 * same in every case.  Inline because a replay adds once a page record
 * and the call's saved registers and spilt arguments were ~25
 * instructions of its ~90 (bench/README.md, issue 14, twenty-second round).
 */
static inline __attribute__((always_inline)) int64_t
cidtab_add_hash(struct cidtab *c, struct sp_fp fp, uint32_t part, uint64_t h,
				      uint32_t *id)
{
	uint32_t pn = c->last_pn, idm = cidtab_id_mask(c->idbits);

	if (!c->nparts || part != c->last_part || pn == CIDTAB_PESC)
		return cidtab_add_hash_slow(c, fp, part, h, id);
	for (size_t i = cidtab_home(c, h);; i = (i + 1) & c->mask) {
		uint32_t s = c->index[i];

		if (s == 0) { /* not held: a new id, a free one or nent */
			uint32_t next = c->free_head ? c->free_head : c->nent;
			struct cidtab_ent *e;

			if ((c->used + 1) * 2 > c->mask + 1 || next > idm ||
			    (!c->free_head && c->nent == c->cap_ent))
				return cidtab_add_hash_slow(c, fp, part, h, id);
			if (c->free_head)
				c->free_head = c->ent[next].fp[0];
			else
				c->nent++;
			e = &c->ent[next];
			e->fp[0] = (uint32_t)fp.lo;
			e->fp[1] = (uint32_t)(fp.lo >> 32);
			e->fp[2] = (uint32_t)fp.hi;
			e->fp[3] = (uint32_t)(fp.hi >> 32);
			e->meta = pn << CIDTAB_CBITS | 1;
			c->index[i] = cidtab_slot_of(h, next, c->idbits);
			c->used++;
			c->total++;
			*id = next;
			return 1;
		}
		if (cidtab_tag_match(s, h, c->idbits)) {
			uint32_t *m = &c->ent[s & idm].meta, n;

			if (*m >> CIDTAB_CBITS == pn && sp_fp_eq(cidtab_fp(c, s & idm), fp)) {
				n = (*m & CIDTAB_CMAX) + 1;
				if (n >= CIDTAB_CMAX)
					return cidtab_add_hash_slow(c, fp, part, h, id);
				++*m;
				c->total++;
				c->shared += n == 2;
				*id = s & idm;
				return n;
			}
		}
	}
}
/* Where the pair of hash h would be in the index, the first line an add reads: a hint's address. */
static inline const uint32_t *cidtab_home_slot(const struct cidtab *c, uint64_t h)
{
	return &c->index[cidtab_home(c, h)];
}
/* Starts loading the entry of id (a live id, or 0). */
static inline void cidtab_prefetch_id(const struct cidtab *c, uint32_t id)
{
	__builtin_prefetch(&c->ent[id].fp[0], 1);
	__builtin_prefetch(&c->ent[id].meta, 1); /* the next line, if it straddles */
}
/*
 * Starts loading the entry of the pair of hash h if it is held: a second
 * hint, once the line of cidtab_home_slot() has arrived (it reads the index).
 */
static inline void cidtab_prefetch_entry_hash(const struct cidtab *c, uint64_t h)
{
	size_t i = cidtab_home(c, h);

	/* The first few slots of the run: where the match almost always is. */
	for (int k = 0; k < 4; k++, i = (i + 1) & c->mask) {
		uint32_t s = c->index[i];

		if (s == 0)
			return;
		if (cidtab_tag_match(s, h, c->idbits)) {
			const struct cidtab_ent *e = &c->ent[s & cidtab_id_mask(c->idbits)];

			/*
			 * sp_prefetch(), not __builtin_prefetch: inlined into a
			 * caller's loop, GCC 12 at -O2 deleted this loop whole.
			 */
			sp_prefetch(&e->fp[0]);
			sp_prefetch(&e->meta); /* the next line, if it straddles */
			return;
		}
	}
}

/*
 * Starts loading the index line where id's slot begins its search (a live
 * id, or 0: nothing), for a cidtab_put() that may free it and then search
 * its slot from there; reads id's entry, which should be in cache
 * (cidtab_prefetch_id() a while before).  No hint for a partition numbered
 * CIDTAB_PESC or later (its number is in a side map).
 */
static inline void cidtab_prefetch_home_of_id(const struct cidtab *c, uint32_t id)
{
	uint32_t pn;

	if (!id)
		return;
	pn = c->ent[id].meta >> CIDTAB_CBITS;
	if (pn < CIDTAB_PESC)
		sp_prefetch(&c->index[cidtab_home(c, cidtab_hash(cidtab_fp(c, id), c->part_of[pn]))]);
}

/* Starts loading the content of id (a live id, or 0), for cidtab_fp(). */
static inline void cidtab_prefetch_fp(const struct cidtab *c, uint32_t id)
{
	__builtin_prefetch(&c->ent[id].fp[0]);
	__builtin_prefetch(&c->ent[id].fp[3]);
}

/* The count of id held whole in the side map (it reads CIDTAB_CMAX in meta[]). */
uint32_t cidtab_count_big(const struct cidtab *c, uint32_t id);

static inline uint32_t cidtab_count(const struct cidtab *c, uint32_t id)
{
	uint32_t n = c->ent[id].meta & CIDTAB_CMAX;

	return n < CIDTAB_CMAX ? n : cidtab_count_big(c, id);
}
static inline uint64_t cidtab_distinct(const struct cidtab *c) { return c->used; }
/* Pairs held more than once. */
static inline uint64_t cidtab_shared(const struct cidtab *c) { return c->shared; }
static inline uint64_t cidtab_total(const struct cidtab *c) { return c->total; }
/* Holders of a pair already held by another: total - distinct. */
static inline uint64_t cidtab_duplicates(const struct cidtab *c) { return c->total - c->used; }

#endif
