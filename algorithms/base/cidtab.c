/*
 * cidtab.c - implements the content ids of cidtab.h.
 *
 * ent[] holds the pairs by id (the fingerprint; the count and the
 * partition's number), free ids chained through fp[0].  index[] is
 * open addressing with linear probing and backward-shift deletion over
 * 32-bit slots: the id in the low idbits bits, above it a tag of the pair's
 * hash (32 - idbits bits: 8 at 2^24 ids, none at 2^32).  A pair's home slot
 * is the high word of its 64-bit hash, its tag the low bits, so a tag match
 * in a probe is as often false as 2^-(tag bits), whatever the load; a match
 * is confirmed in ent[].  Slots do not hold their home: moving one (growth,
 * deletion) reads its entry's pair.  Before an id beyond 2^idbits is handed
 * out, the index is rebuilt with a bit more; at 50% load it doubles (at
 * most 2^32 slots: ids are 32-bit).  Why 4-byte slots: at 32 M pages the
 * index is 2^25 slots, 128 MiB instead of 256 (bench/README.md, issue 14,
 * fourteenth round), fresh memory whose first touch is this VM's dearest
 * system time, and half the lines for the random probes.  Every index is
 * pre-faulted by a write (sp_big_prefault): lookups read it before anything
 * is written, and a read of a never-written huge page would map the huge
 * zero page, to be copied at the first write (eighth round).
 * Partitions are numbered in order of first sight (part_num, part_of[]);
 * the last one looked up is kept, since a caller's pairs come in runs of
 * one partition (a guest's pages).  The partitions' numbers and the side
 * maps (counts >= CIDTAB_CMAX, partition numbers >= CIDTAB_PESC) are small
 * maps (sp_map.h).
 */
#include "cidtab.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "sp_bigmem.h"
#include "sp_error.h"

#define MIN_SLOTS 1024u
#define MIN_ENT 1024u
#define MAX_SLOTS ((size_t)1 << 32)

/*
 * The number of partition part as an id's word holds it (CIDTAB_PESC for
 * the partitions numbered from CIDTAB_PESC on), the partition numbered now
 * if it is new: 0, or SP_ENOMEM.
 */
static int part_number_slow(struct cidtab *c, uint32_t part, uint32_t *pn)
{
	uint32_t *v = sp_map_find(&c->part_num, part), n = v ? *v - 1 : c->nparts;

	if (!v) { /* a new one: numbered nparts */
		if (n == UINT32_MAX - 1)
			return SP_ENOMEM;
		if (n == c->part_cap) {
			uint32_t cap = n ? n * 2 : 16;
			uint32_t *of = realloc(c->part_of, (size_t)cap * sizeof(*of));

			if (!of)
				return SP_ENOMEM;
			c->part_of = of;
			c->part_cap = cap;
		}
		if (sp_map_set(&c->part_num, part, n + 1) < 0)
			return SP_ENOMEM;
		c->part_of[c->nparts++] = part;
	}
	*pn = n < CIDTAB_PESC ? n : CIDTAB_PESC;
	c->last_part = part;
	c->last_pn = *pn;
	return 0;
}

static inline int part_number(struct cidtab *c, uint32_t part, uint32_t *pn)
{
	if (c->nparts && part == c->last_part) {
		*pn = c->last_pn;
		return 0;
	}
	return part_number_slow(c, part, pn);
}

/* The partition of id (a live id). */
static uint32_t part_of_id(const struct cidtab *c, uint32_t id)
{
	uint32_t pn = c->ent[id].meta >> CIDTAB_CBITS;

	return c->part_of[pn < CIDTAB_PESC ? pn : *sp_map_find(&c->parts, id)];
}

uint32_t cidtab_count_big(const struct cidtab *c, uint32_t id)
{
	return *sp_map_find(&c->counts, id);
}

static uint64_t hash_of_id(const struct cidtab *c, uint32_t id)
{
	return cidtab_hash(cidtab_fp(c, id), part_of_id(c, id));
}

/* Bits for ids below n (n >= 2). */
static unsigned bits_for(uint64_t n)
{
	unsigned b = 1;

	while (b < 32 && ((uint64_t)1 << b) < n)
		b++;
	return b;
}

int cidtab_init(struct cidtab *c)
{
	return cidtab_init_sized(c, 0);
}

int cidtab_init_sized(struct cidtab *c, uint64_t expect)
{
	size_t slots = MIN_SLOTS;
	uint64_t ents = expect + 1 > MIN_ENT ? expect + 1 : MIN_ENT;

	/* 50% load at most, as rebuild() keeps it; ids are 32-bit */
	while (slots < MAX_SLOTS && slots / 2 < expect)
		slots *= 2;
	memset(c, 0, sizeof(*c));
	c->cap_ent = ents < UINT32_MAX ? (uint32_t)ents : UINT32_MAX;
	c->index = sp_big_calloc(slots, sizeof(*c->index));
	c->ent = sp_big_calloc(c->cap_ent, sizeof(*c->ent));
	if (!c->index || !c->ent) {
		cidtab_release(c);
		return SP_ENOMEM;
	}
	sp_big_prefault(c->index, slots, sizeof(*c->index));
	c->mask = slots - 1;
	c->idbits = bits_for(c->cap_ent);
	c->nent = 1; /* id 0 is never handed out */
	return 0;
}

void cidtab_release(struct cidtab *c)
{
	sp_big_free(c->index, c->index ? c->mask + 1 : 0, sizeof(*c->index));
	sp_big_free(c->ent, c->cap_ent, sizeof(*c->ent));
	free(c->part_of);
	sp_map_release(&c->part_num);
	sp_map_release(&c->counts);
	sp_map_release(&c->parts);
	memset(c, 0, sizeof(*c));
}

/*
 * The slot holding (fp, part) of hash h, or the empty slot where it would
 * go; pn is part's number as part_number() gives it.
 */
static inline size_t find(const struct cidtab *c, struct sp_fp fp, uint32_t part, uint32_t pn, uint64_t h)
{
	size_t i = cidtab_home(c, h);

	for (;; i = (i + 1) & c->mask) {
		uint32_t s = c->index[i];

		if (s == 0)
			return i;
		if (cidtab_tag_match(s, h, c->idbits)) {
			uint32_t id = s & cidtab_id_mask(c->idbits);

			if (c->ent[id].meta >> CIDTAB_CBITS == pn && sp_fp_eq(cidtab_fp(c, id), fp) &&
			    (__builtin_expect(pn < CIDTAB_PESC, 1) || part_of_id(c, id) == part))
				return i;
		}
	}
}

/*
 * A new index of cap slots whose ids take idbits bits, filled from the live
 * entries (in id order: ent[] is read in order, the index written at random).
 */
static int rebuild(struct cidtab *c, size_t cap, unsigned idbits)
{
	uint32_t *nw;

	if (cap > MAX_SLOTS)
		return SP_ENOMEM;
	nw = sp_big_calloc(cap, sizeof(*nw));
	if (!nw)
		return SP_ENOMEM;
	sp_big_prefault(nw, cap, sizeof(*nw));
	sp_big_free(c->index, c->mask + 1, sizeof(*c->index));
	c->index = nw;
	c->mask = cap - 1;
	c->idbits = idbits;
	for (uint32_t id = 1; id < c->nent; id++) {
		if (c->ent[id].meta) {
			uint64_t h = hash_of_id(c, id);
			size_t j = cidtab_home(c, h);

			while (nw[j])
				j = (j + 1) & c->mask;
			nw[j] = cidtab_slot_of(h, id, idbits);
		}
	}
	return 0;
}

static int new_id(struct cidtab *c, uint32_t *id)
{
	if (c->free_head) {
		*id = c->free_head;
		c->free_head = c->ent[*id].fp[0];
		return 0;
	}
	if (c->nent == c->cap_ent) {
		uint32_t cap = c->cap_ent > UINT32_MAX / 2 ? UINT32_MAX : c->cap_ent * 2;
		struct cidtab_ent *e;

		if (cap == c->cap_ent)
			return SP_ENOMEM;
		e = sp_big_grow(c->ent, c->cap_ent, cap, sizeof(*e));
		if (!e)
			return SP_ENOMEM;
		c->ent = e;
		c->cap_ent = cap;
	}
	*id = c->nent++;
	return 0;
}

int64_t cidtab_add(struct cidtab *c, struct sp_fp fp, uint32_t part, uint32_t *id)
{
	return cidtab_add_hash(c, fp, part, cidtab_hash(fp, part), id);
}

int64_t cidtab_add_hash_slow(struct cidtab *c, struct sp_fp fp, uint32_t part, uint64_t h,
			     uint32_t *id)
{
	uint32_t pn, n;
	size_t i;

	if (part_number(c, part, &pn) < 0)
		return SP_ENOMEM;
	i = find(c, fp, part, pn, h);
	if (c->index[i] == 0) {
		/* the id it gets: a free one (below nent) or nent */
		uint32_t next = c->free_head ? c->free_head : c->nent;
		size_t cap = c->mask + 1;
		int full = (c->used + 1) * 2 > cap;
		int wide = next > cidtab_id_mask(c->idbits);

		if (full || wide) {
			if (rebuild(c, full ? cap * 2 : cap, wide ? c->idbits + 1 : c->idbits) < 0)
				return SP_ENOMEM;
			i = find(c, fp, part, pn, h);
		}
		if (pn == CIDTAB_PESC && sp_map_set(&c->parts, next, *sp_map_find(&c->part_num, part) - 1) < 0)
			return SP_ENOMEM;
		if (new_id(c, id) < 0) {
			if (pn == CIDTAB_PESC)
				sp_map_del(&c->parts, next);
			return SP_ENOMEM;
		}
		struct cidtab_ent *e = &c->ent[*id];

		e->fp[0] = (uint32_t)fp.lo;
		e->fp[1] = (uint32_t)(fp.lo >> 32);
		e->fp[2] = (uint32_t)fp.hi;
		e->fp[3] = (uint32_t)(fp.hi >> 32);
		e->meta = pn << CIDTAB_CBITS | 1;
		c->index[i] = cidtab_slot_of(h, *id, c->idbits);
		c->used++;
		n = 1;
	} else {
		uint32_t *m;

		*id = c->index[i] & cidtab_id_mask(c->idbits);
		m = &c->ent[*id].meta;
		n = (*m & CIDTAB_CMAX) + 1;
		if (n < CIDTAB_CMAX) {
			++*m;
		} else if (n == CIDTAB_CMAX) { /* the count moves to the side map */
			if (sp_map_set(&c->counts, *id, n) < 0)
				return SP_ENOMEM;
			++*m;
		} else {
			n = ++*sp_map_find(&c->counts, *id);
		}
	}
	c->total++;
	c->shared += n == 2;
	return n;
}

uint32_t cidtab_put(struct cidtab *c, uint32_t id)
{
	uint32_t *m = &c->ent[id].meta, n = *m & CIDTAB_CMAX;
	uint32_t idm = cidtab_id_mask(c->idbits);
	size_t hole, i;

	assert(id > 0 && id < c->nent && n > 0);
	if (n < CIDTAB_CMAX) {
		--*m;
		n--;
	} else {
		n = --*sp_map_find(&c->counts, id);
		if (n < CIDTAB_CMAX) { /* back in meta[] */
			sp_map_del(&c->counts, id);
			*m = (*m & ~CIDTAB_CMAX) | n;
		}
	}
	c->total--;
	c->shared -= n == 1;
	if (n > 0)
		return n;
	c->used--;
	/* Find id's slot from its home, then backward-shift the run behind it. */
	for (hole = cidtab_home(c, hash_of_id(c, id)); (c->index[hole] & idm) != id;
	     hole = (hole + 1) & c->mask)
		;
	c->index[hole] = 0;
	for (i = (hole + 1) & c->mask; c->index[i]; i = (i + 1) & c->mask) {
		size_t home = cidtab_home(c, hash_of_id(c, c->index[i] & idm));

		/* Move i to hole unless its home lies cyclically in (hole, i]. */
		if (((i - home) & c->mask) >= ((i - hole) & c->mask)) {
			c->index[hole] = c->index[i];
			c->index[i] = 0;
			hole = i;
		}
	}
	if (*m >> CIDTAB_CBITS == CIDTAB_PESC)
		sp_map_del(&c->parts, id);
	*m = 0;
	c->ent[id].fp[0] = c->free_head;
	c->free_head = id;
	return 0;
}
