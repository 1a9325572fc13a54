/*
 * cidtab.c - implements the content ids of cidtab.h.
 *
 * ent[] holds the pairs by id, free ids chained through part.  index[] is
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
 */
#include "cidtab.h"

#include <assert.h>
#include <string.h>

#include "sp_bigmem.h"
#include "sp_error.h"

#define MIN_SLOTS 1024u
#define MIN_ENT 1024u
#define MAX_SLOTS ((size_t)1 << 32)

/*
 * The slot arithmetic in 64 bits, so that idbits == 32 (no tag) needs no
 * branch of its own: a shift by 32 of a 64-bit value leaves 0.
 */
static inline uint32_t id_mask(unsigned idbits)
{
	return (uint32_t)(((uint64_t)1 << idbits) - 1);
}

/* The slot of id with hash h, for ids of idbits bits. */
static inline uint32_t slot_of(uint64_t h, uint32_t id, unsigned idbits)
{
	return (uint32_t)((uint64_t)(uint32_t)h << idbits) | id;
}

/* Whether slot s (not empty) may hold the pair of hash h: its tag matches. */
static inline int tag_match(uint32_t s, uint64_t h, unsigned idbits)
{
	return (uint64_t)(s ^ slot_of(h, 0, idbits)) >> idbits == 0;
}

static uint64_t hash_of_id(const struct cidtab *c, uint32_t id)
{
	return cidtab_hash(c->ent[id].fp, c->ent[id].part);
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
	c->index = sp_big_calloc(slots, sizeof(*c->index));
	c->ent = sp_big_calloc(ents < UINT32_MAX ? (size_t)ents : UINT32_MAX, sizeof(*c->ent));
	if (!c->index || !c->ent) {
		cidtab_release(c);
		return SP_ENOMEM;
	}
	sp_big_prefault(c->index, slots, sizeof(*c->index));
	c->mask = slots - 1;
	c->cap_ent = ents < UINT32_MAX ? (uint32_t)ents : UINT32_MAX;
	c->idbits = bits_for(c->cap_ent);
	c->nent = 1; /* id 0 is never handed out */
	return 0;
}

void cidtab_release(struct cidtab *c)
{
	sp_big_free(c->index, c->index ? c->mask + 1 : 0, sizeof(*c->index));
	sp_big_free(c->ent, c->cap_ent, sizeof(*c->ent));
	memset(c, 0, sizeof(*c));
}

/* The slot holding (fp, part) of hash h, or the empty slot where it would go. */
static inline size_t find(const struct cidtab *c, struct sp_fp fp, uint32_t part, uint64_t h)
{
	size_t i = cidtab_home(c, h);

	for (;; i = (i + 1) & c->mask) {
		uint32_t s = c->index[i];

		if (s == 0)
			return i;
		if (tag_match(s, h, c->idbits)) {
			const struct cidtab_entry *e = &c->ent[s & id_mask(c->idbits)];

			if (e->part == part && sp_fp_eq(e->fp, fp))
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
		if (c->ent[id].count) {
			uint64_t h = hash_of_id(c, id);
			size_t j = cidtab_home(c, h);

			while (nw[j])
				j = (j + 1) & c->mask;
			nw[j] = slot_of(h, id, idbits);
		}
	}
	return 0;
}

static int new_id(struct cidtab *c, uint32_t *id)
{
	if (c->free_head) {
		*id = c->free_head;
		c->free_head = c->ent[*id].part;
		return 0;
	}
	if (c->nent == c->cap_ent) {
		uint32_t cap = c->cap_ent > UINT32_MAX / 2 ? UINT32_MAX : c->cap_ent * 2;
		struct cidtab_entry *e;

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

int64_t cidtab_add_hash(struct cidtab *c, struct sp_fp fp, uint32_t part, uint64_t h, uint32_t *id)
{
	size_t i = find(c, fp, part, h);
	struct cidtab_entry *e;

	if (c->index[i] == 0) {
		/* the id it gets: a free one (below nent) or nent */
		uint32_t next = c->free_head ? c->free_head : c->nent;
		size_t cap = c->mask + 1;
		int full = (c->used + 1) * 2 > cap;

		if (full || next > id_mask(c->idbits)) {
			if (rebuild(c, full ? cap * 2 : cap, next > id_mask(c->idbits) ? c->idbits + 1 : c->idbits) < 0)
				return SP_ENOMEM;
			i = find(c, fp, part, h);
		}
		if (new_id(c, id) < 0)
			return SP_ENOMEM;
		e = &c->ent[*id];
		e->fp = fp;
		e->part = part;
		e->count = 0;
		c->index[i] = slot_of(h, *id, c->idbits);
		c->used++;
	} else {
		*id = c->index[i] & id_mask(c->idbits);
		e = &c->ent[*id];
	}
	e->count++;
	c->total++;
	c->shared += e->count == 2;
	return e->count;
}

uint32_t cidtab_put(struct cidtab *c, uint32_t id)
{
	struct cidtab_entry *e = &c->ent[id];
	uint32_t idm = id_mask(c->idbits);
	size_t hole, i;

	assert(id > 0 && id < c->nent && e->count > 0);
	c->total--;
	c->shared -= e->count == 2;
	if (--e->count > 0)
		return e->count;
	c->used--;
	/* Find id's slot from its home, then backward-shift the run behind it. */
	for (hole = cidtab_home(c, cidtab_hash(e->fp, e->part)); (c->index[hole] & idm) != id;
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
	e->part = c->free_head;
	c->free_head = id;
	return 0;
}

void cidtab_prefetch_entry_hash(const struct cidtab *c, uint64_t h)
{
	size_t i = cidtab_home(c, h);

	/* The first few slots of the run: where the match almost always is. */
	for (int k = 0; k < 4; k++, i = (i + 1) & c->mask) {
		uint32_t s = c->index[i];

		if (s == 0)
			return;
		if (tag_match(s, h, c->idbits)) {
			__builtin_prefetch(&c->ent[s & id_mask(c->idbits)], 1);
			return;
		}
	}
}
