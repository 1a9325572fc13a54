/*
 * fpcount.c - implements the content multiset of fpcount.h.
 *
 * Open addressing with linear probing and backward-shift deletion (no
 * tombstones, so lookups stay short however many contents come and go).  The
 * hash mixes both fingerprint words and the partition (hand-made test
 * fingerprints are far from random).  The table doubles at 50% load.
 *
 * Large tables (a host's worth of contents: hundreds of MiB) go on huge
 * pages (sp_bigmem.h): every lookup is a random access.  fpcount_prefetch()
 * lets a caller that knows its next keys start the cache misses early.
 */
#include "fpcount.h"

#include <assert.h>

#include "sp_bigmem.h"
#include "sp_error.h"

static size_t slot_of(const struct fpcount *c, struct sp_fp fp, uint32_t part)
{
	/* Both words count: a fingerprint need not be random in its low word. */
	uint64_t h = (fp.lo ^ (fp.hi * 0x9e3779b97f4a7c15ULL)) + (uint64_t)part * 0xff51afd7ed558ccdULL;

	h ^= h >> 31;
	h *= 0xbf58476d1ce4e5b9ULL;
	h ^= h >> 29;
	return (size_t)h & c->mask;
}

static int fpcount_alloc(struct fpcount *c, size_t capacity)
{
	c->slots = sp_big_calloc(capacity, sizeof(*c->slots));
	if (!c->slots)
		return SP_ENOMEM;
	c->mask = capacity - 1;
	return 0;
}

int fpcount_init(struct fpcount *c, size_t expected)
{
	size_t cap = 1024;

	while (cap < expected * 2)
		cap *= 2;
	c->used = 0;
	c->total = 0;
	return fpcount_alloc(c, cap);
}

void fpcount_release(struct fpcount *c)
{
	if (c->slots)
		sp_big_free(c->slots, c->mask + 1, sizeof(*c->slots));
	c->slots = NULL;
	c->used = c->total = 0;
}

static struct fpcount_entry *find(const struct fpcount *c, struct sp_fp fp, uint32_t part)
{
	size_t i = slot_of(c, fp, part);

	for (;; i = (i + 1) & c->mask) {
		struct fpcount_entry *e = &c->slots[i];

		if (e->count == 0)
			return e;
		if (e->part == part && sp_fp_eq(e->fp, fp))
			return e;
	}
}

static int grow(struct fpcount *c)
{
	struct fpcount old = *c;

	if (fpcount_alloc(c, (old.mask + 1) * 2) < 0) {
		*c = old;
		return SP_ENOMEM;
	}
	for (size_t i = 0; i <= old.mask; i++) {
		if (old.slots[i].count)
			*find(c, old.slots[i].fp, old.slots[i].part) = old.slots[i];
	}
	sp_big_free(old.slots, old.mask + 1, sizeof(*old.slots));
	return 0;
}

int64_t fpcount_add(struct fpcount *c, struct sp_fp fp, uint32_t part)
{
	struct fpcount_entry *e = find(c, fp, part);

	if (e->count == 0) {
		if ((c->used + 1) * 2 > c->mask + 1) {
			if (grow(c) < 0)
				return SP_ENOMEM;
			e = find(c, fp, part);
		}
		e->fp = fp;
		e->part = part;
		c->used++;
	}
	e->count++;
	c->total++;
	return e->count;
}

uint32_t fpcount_remove(struct fpcount *c, struct sp_fp fp, uint32_t part)
{
	struct fpcount_entry *e = find(c, fp, part);
	size_t hole, i;

	assert(e->count > 0);
	c->total--;
	if (--e->count > 0)
		return e->count;
	c->used--;
	/* Backward-shift: pull later entries of the probe run into the hole. */
	hole = (size_t)(e - c->slots);
	for (i = (hole + 1) & c->mask; c->slots[i].count; i = (i + 1) & c->mask) {
		size_t home = slot_of(c, c->slots[i].fp, c->slots[i].part);

		/* Move i to hole unless its home lies cyclically in (hole, i]. */
		if (((i - home) & c->mask) >= ((i - hole) & c->mask)) {
			c->slots[hole] = c->slots[i];
			c->slots[i].count = 0;
			hole = i;
		}
	}
	return 0;
}

void fpcount_prefetch(const struct fpcount *c, struct sp_fp fp, uint32_t part)
{
	__builtin_prefetch(&c->slots[slot_of(c, fp, part)], 1);
}

uint32_t fpcount_get(const struct fpcount *c, struct sp_fp fp, uint32_t part)
{
	return find(c, fp, part)->count;
}
