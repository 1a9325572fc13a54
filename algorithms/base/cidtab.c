/*
 * cidtab.c - implements the content ids of cidtab.h.
 *
 * ent[] holds the pairs by id, free ids chained through part.  index[] is
 * open addressing with linear probing and backward-shift deletion over
 * 64-bit slots: the id and a 32-bit tag, the high half of the pair's hash.
 * A slot's home is the tag's top bits, so probes, growth and deletion never
 * read ent[] except to confirm a tag match.  The index doubles at 50% load
 * (at most 2^32 slots: ids are 32-bit).  Every index is pre-faulted by a
 * write (sp_big_prefault): lookups read it before anything is written, and
 * a read of a never-written huge page would map the huge zero page, to be
 * copied at the first write (bench/README.md, issue 14, eighth round).
 */
#include "cidtab.h"

#include <assert.h>
#include <string.h>

#include "sp_bigmem.h"
#include "sp_error.h"

#define MIN_SLOTS 1024u
#define MIN_ENT 1024u
#define MAX_SLOTS ((size_t)1 << 32)

static uint32_t tag_of(struct sp_fp fp, uint32_t part)
{
	/*
	 * A fingerprint is already a hash: its high word serves as it is.  The
	 * low word and the partition go through one multiply, so that keys
	 * differing only there (a crafted trace) still spread.
	 */
	return (uint32_t)((fp.hi ^ ((fp.lo ^ part) * 0x9e3779b97f4a7c15ULL)) >> 32);
}

/* The slot a tag belongs in: its top bits (capacity <= 2^32). */
static size_t home_of(const struct cidtab *c, uint32_t tag)
{
	return (size_t)(((uint64_t)tag * (uint64_t)(c->mask + 1)) >> 32);
}

int cidtab_init(struct cidtab *c)
{
	return cidtab_init_sized(c, 0);
}

int cidtab_init_sized(struct cidtab *c, uint64_t expect)
{
	size_t slots = MIN_SLOTS;
	uint64_t ents = expect + 1 > MIN_ENT ? expect + 1 : MIN_ENT;

	/* 50% load at most, as grow_index() keeps it; ids are 32-bit */
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
	c->nent = 1; /* id 0 is never handed out */
	return 0;
}

void cidtab_release(struct cidtab *c)
{
	sp_big_free(c->index, c->index ? c->mask + 1 : 0, sizeof(*c->index));
	sp_big_free(c->ent, c->cap_ent, sizeof(*c->ent));
	memset(c, 0, sizeof(*c));
}

/* The slot holding (fp, part), or the empty slot where it would go. */
static size_t find(const struct cidtab *c, struct sp_fp fp, uint32_t part, uint32_t tag)
{
	size_t i = home_of(c, tag);

	for (;; i = (i + 1) & c->mask) {
		uint64_t s = c->index[i];

		if (s == 0)
			return i;
		if ((uint32_t)(s >> 32) == tag) {
			const struct cidtab_entry *e = &c->ent[(uint32_t)s];

			if (e->part == part && sp_fp_eq(e->fp, fp))
				return i;
		}
	}
}

static int grow_index(struct cidtab *c)
{
	size_t cap = (c->mask + 1) * 2;
	uint64_t *old = c->index, *nw;
	size_t old_cap = c->mask + 1;

	if (cap > MAX_SLOTS)
		return SP_ENOMEM;
	nw = sp_big_calloc(cap, sizeof(*nw));
	if (!nw)
		return SP_ENOMEM;
	sp_big_prefault(nw, cap, sizeof(*nw));
	c->index = nw;
	c->mask = cap - 1;
	for (size_t i = 0; i < old_cap; i++) {
		if (old[i]) {
			size_t j = home_of(c, (uint32_t)(old[i] >> 32));

			while (nw[j])
				j = (j + 1) & c->mask;
			nw[j] = old[i];
		}
	}
	sp_big_free(old, old_cap, sizeof(*old));
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
	uint32_t tag = tag_of(fp, part);
	size_t i = find(c, fp, part, tag);
	struct cidtab_entry *e;

	if (c->index[i] == 0) {
		if ((c->used + 1) * 2 > c->mask + 1) {
			if (grow_index(c) < 0)
				return SP_ENOMEM;
			i = find(c, fp, part, tag);
		}
		if (new_id(c, id) < 0)
			return SP_ENOMEM;
		e = &c->ent[*id];
		e->fp = fp;
		e->part = part;
		e->count = 0;
		c->index[i] = ((uint64_t)tag << 32) | *id;
		c->used++;
	} else {
		*id = (uint32_t)c->index[i];
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
	size_t hole, i;

	assert(id > 0 && id < c->nent && e->count > 0);
	c->total--;
	c->shared -= e->count == 2;
	if (--e->count > 0)
		return e->count;
	c->used--;
	/* Find id's slot from its home, then backward-shift the run behind it. */
	for (hole = home_of(c, tag_of(e->fp, e->part)); (uint32_t)c->index[hole] != id;
	     hole = (hole + 1) & c->mask)
		;
	c->index[hole] = 0;
	for (i = (hole + 1) & c->mask; c->index[i]; i = (i + 1) & c->mask) {
		size_t home = home_of(c, (uint32_t)(c->index[i] >> 32));

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

void cidtab_prefetch(const struct cidtab *c, struct sp_fp fp, uint32_t part)
{
	__builtin_prefetch(&c->index[home_of(c, tag_of(fp, part))], 1);
}

void cidtab_prefetch_entry(const struct cidtab *c, struct sp_fp fp, uint32_t part)
{
	uint32_t tag = tag_of(fp, part);
	size_t i = home_of(c, tag);

	/* The first few slots of the run: where the match almost always is. */
	for (int k = 0; k < 4; k++, i = (i + 1) & c->mask) {
		uint64_t s = c->index[i];

		if (s == 0)
			return;
		if ((uint32_t)(s >> 32) == tag) {
			__builtin_prefetch(&c->ent[(uint32_t)s], 1);
			return;
		}
	}
}
