/*
 * sp_map.c - implements the small map of sp_map.h.
 */
#include "sp_map.h"

#include <stdlib.h>
#include <string.h>

#include "sp_error.h"

int sp_map_set(struct sp_map *m, uint64_t key, uint32_t val)
{
	uint32_t i = m->slot ? sp_map_slot_of(m, key) : 0;

	if (!m->slot || !m->slot[i].val) { /* a new key: at most half full, else twice the size */
		if (m->n >= (1u << 30) - 1) /* 2^31 slots at most */
			return SP_ENOMEM;
		if ((m->n + 1) * 2 > m->mask) {
			uint32_t cap = m->slot ? (m->mask + 1) * 2 : 16;
			struct sp_map nw = { calloc(cap, sizeof(*nw.slot)), cap - 1, m->n };

			if (!nw.slot)
				return SP_ENOMEM;
			for (uint32_t j = 0; m->slot && j <= m->mask; j++) {
				if (m->slot[j].val)
					nw.slot[sp_map_slot_of(&nw, m->slot[j].key)] = m->slot[j];
			}
			free(m->slot);
			*m = nw;
			i = sp_map_slot_of(m, key);
		}
		m->n++;
	}
	m->slot[i].key = key;
	m->slot[i].val = val;
	return 0;
}

void sp_map_del(struct sp_map *m, uint64_t key)
{
	uint32_t hole = sp_map_slot_of(m, key), i;

	m->slot[hole].val = 0;
	for (i = (hole + 1) & m->mask; m->slot[i].val; i = (i + 1) & m->mask) {
		uint32_t home = sp_map_home(m, m->slot[i].key);

		if (((i - home) & m->mask) >= ((i - hole) & m->mask)) {
			m->slot[hole] = m->slot[i];
			m->slot[i].val = 0;
			hole = i;
		}
	}
	m->n--;
}

void sp_map_release(struct sp_map *m)
{
	free(m->slot);
	memset(m, 0, sizeof(*m));
}
