/*
 * fpcount.h - a multiset of page contents: how many present pages hold each
 * (content, partition) pair, and how many distinct pairs there are.
 *
 * This is the arithmetic behind the oracle: the most pages any merger can
 * save in a partition is present - distinct.  A partition separates pages that
 * may never share a frame (a NUMA node when merge_across_nodes=0, a security
 * domain).  Memory grows with distinct contents, not with pages or time.
 */
#ifndef SP_FPCOUNT_H
#define SP_FPCOUNT_H

#include <stddef.h>
#include <stdint.h>

#include "fingerprint.h"

struct fpcount_entry {
	struct sp_fp fp;
	uint32_t part;   /* partition id */
	uint32_t count;  /* pages holding it; 0 marks an empty slot */
};

struct fpcount {
	struct fpcount_entry *slots; /* open addressing, linear probing */
	size_t mask;                 /* capacity - 1, capacity a power of two */
	size_t used;                 /* slots with count > 0 == distinct */
	uint64_t total;              /* sum of counts == pages counted */
};

int fpcount_init(struct fpcount *c, size_t expected);
void fpcount_release(struct fpcount *c);
/* Returns the new count of (fp, part), or SP_ENOMEM (the multiset is then unchanged). */
int64_t fpcount_add(struct fpcount *c, struct sp_fp fp, uint32_t part);
/* Removes one occurrence and returns the count left; removing what is absent is a bug. */
uint32_t fpcount_remove(struct fpcount *c, struct sp_fp fp, uint32_t part);
/* Starts loading the slot where (fp, part) would be: a hint before an add or remove. */
void fpcount_prefetch(const struct fpcount *c, struct sp_fp fp, uint32_t part);
uint32_t fpcount_get(const struct fpcount *c, struct sp_fp fp, uint32_t part);

static inline uint64_t fpcount_distinct(const struct fpcount *c) { return c->used; }
static inline uint64_t fpcount_total(const struct fpcount *c) { return c->total; }
/* Pages that hold content already held by another page of their partition. */
static inline uint64_t fpcount_duplicates(const struct fpcount *c) { return c->total - c->used; }

#endif
