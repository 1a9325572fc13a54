/*
 * sp_map.h - a small map of 64-bit keys to 32-bit values other than 0, for
 * the few keys a table keeps beside its arrays: a simulation's partitions
 * (kit.h) and a content table's rare cases (cidtab.c).  Open addressing with
 * linear probing, value 0 marks an empty slot, doubling at half load,
 * backward-shift deletion (so no tombstones).  A zeroed struct is an empty
 * map; the array is allocated at the first key.
 */
#ifndef SP_MAP_H
#define SP_MAP_H

#include <stddef.h>
#include <stdint.h>

struct sp_map_slot {
	uint64_t key;
	uint32_t val; /* 0: empty */
};

struct sp_map {
	struct sp_map_slot *slot;
	uint32_t mask; /* capacity - 1, a power of two; 0: no array */
	uint32_t n;    /* keys held */
};

/* key's home slot: the high word of a multiplicative hash, masked. */
static inline uint32_t sp_map_home(const struct sp_map *m, uint64_t key)
{
	return (uint32_t)((key * 0x9e3779b97f4a7c15ULL) >> 32) & m->mask;
}

/* The slot of key in m (m has an array), or the empty slot where it would go. */
static inline uint32_t sp_map_slot_of(const struct sp_map *m, uint64_t key)
{
	uint32_t i = sp_map_home(m, key);

	while (m->slot[i].val && m->slot[i].key != key)
		i = (i + 1) & m->mask;
	return i;
}

/* key's value in m (changeable in place, never to 0), or NULL. */
static inline uint32_t *sp_map_find(const struct sp_map *m, uint64_t key)
{
	uint32_t i;

	if (!m->slot)
		return NULL;
	i = sp_map_slot_of(m, key);
	return m->slot[i].val ? &m->slot[i].val : NULL;
}

/* key now maps to val (not 0): 0, or SP_ENOMEM (m unchanged). */
int sp_map_set(struct sp_map *m, uint64_t key, uint32_t val);
/* key (held) leaves m. */
void sp_map_del(struct sp_map *m, uint64_t key);
/* Frees m's array; m is an empty map again. */
void sp_map_release(struct sp_map *m);

#endif
