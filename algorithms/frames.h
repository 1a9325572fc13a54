/*
 * frames.h - the table of shared frames a backend keeps behind backend.h's
 * bk_frame handles (frames.c), one for the simulated backend (sim/mem.c)
 * and the live one (real/live.c).
 *
 * A frame lives in a slot.  Slot 0 stands for "a private frame"
 * (BK_NO_FRAME), slot 1 for the shared zero page (BK_ZERO_FRAME, never
 * freed); shared frames take slots from 2.  A handle is generation << 32 |
 * slot; freeing a slot bumps its generation, so a handle kept after the
 * frame's last mapper went away names no live frame (bk_frames_slot() == 0),
 * as the kernel's get_ksm_page() finds a stable node's page gone.
 *
 * Each slot carries the fields every backend needs (mappers, node, domain),
 * one 32-bit word of the backend's own in the same cache line (the content
 * id in sim) and data_size bytes of its own beside the table (the pool
 * location in real; none when data_size is 0).  Free slots form a list
 * through next_free.
 */
#ifndef SP_FRAMES_H
#define SP_FRAMES_H

#include <stddef.h>
#include <stdint.h>

#include "backend.h"

#define BK_SLOT_PRIVATE 0u
#define BK_SLOT_ZERO 1u

/*
 * 32 bytes, the table 64-byte aligned: a slot is half a cache line, never
 * two.  A merge into a frame reads its generation, mappers, domain, node and
 * (sim) content id: one line, where a 20-byte slot and the id in an array
 * of its own were two random lines for one slot in five and one more for
 * the id (bench/README.md, issue 14 twenty-second round).
 */
struct bk_frame_slot {
	uint32_t gen;       /* bumped when the slot is freed */
	uint32_t mappers;   /* pages mapping the frame; 0 = free (or being made) */
	uint32_t node;      /* NUMA node of the frame's memory */
	uint32_t domain;    /* security domain of its sharers */
	uint32_t next_free; /* free list, 0 = end */
	uint32_t word;      /* the backend's own (sim: the frame's content id); 0 in a new slot */
	uint32_t pad[2];
};

_Static_assert(sizeof(struct bk_frame_slot) == 32, "a frame slot is half a cache line");

struct bk_frames {
	struct bk_frame_slot *slot; /* cap slots, 64-byte aligned (sp_bigmem.h from 2 MiB up) */
	unsigned char *data;  /* data_size bytes per slot; NULL when data_size is 0 */
	size_t data_size;
	uint32_t n;           /* slots ever used, 2 .. cap */
	uint32_t cap;
	uint32_t free_head;
	uint64_t used;        /* shared frames allocated and not freed */
};

/* An empty table; the zero page's slot counts one mapper forever. */
int bk_frames_init(struct bk_frames *t, size_t data_size);
void bk_frames_release(struct bk_frames *t);
/* A free slot for a new shared frame on node, of domain, no mapper yet (0 or SP_ENOMEM). */
int bk_frames_alloc(struct bk_frames *t, uint32_t node, uint32_t domain, uint32_t *out);
/* The frame has no mapper left: its slot is freed and older handles go stale. */
void bk_frames_free(struct bk_frames *t, uint32_t s);

static inline bk_frame bk_frames_handle(const struct bk_frames *t, uint32_t s)
{
	return s == BK_SLOT_ZERO ? BK_ZERO_FRAME : ((bk_frame)t->slot[s].gen << 32) | s;
}

/* The live slot a handle names; 0 when the handle is stale or invalid. */
static inline uint32_t bk_frames_slot(const struct bk_frames *t, bk_frame f)
{
	uint32_t s = (uint32_t)f;

	if (f == BK_ZERO_FRAME)
		return BK_SLOT_ZERO;
	if (s <= BK_SLOT_ZERO || s >= t->n || t->slot[s].gen != (uint32_t)(f >> 32) ||
	    t->slot[s].mappers == 0)
		return 0;
	return s;
}

/* The backend's own bytes of slot s. */
static inline void *bk_frames_data(const struct bk_frames *t, uint32_t s)
{
	return t->data + (size_t)s * t->data_size;
}

#endif
