/*
 * frames.c - implements the shared-frame table of frames.h: slots in one
 * array doubled when full, with the backend's bytes in a parallel array,
 * and a free list of recycled slots.
 */
#include <stdlib.h>
#include <string.h>

#include "frames.h"
#include "sp_error.h"

int bk_frames_init(struct bk_frames *t, size_t data_size)
{
	memset(t, 0, sizeof(*t));
	t->data_size = data_size ? data_size : 1;
	t->cap = 1024;
	t->slot = calloc(t->cap, sizeof(*t->slot));
	t->data = calloc(t->cap, t->data_size);
	if (!t->slot || !t->data) {
		bk_frames_release(t);
		return SP_ENOMEM;
	}
	t->n = 2; /* 0: private, 1: the zero page */
	t->slot[BK_SLOT_ZERO].mappers = 1;
	return 0;
}

void bk_frames_release(struct bk_frames *t)
{
	free(t->slot);
	free(t->data);
	memset(t, 0, sizeof(*t));
}

static int frames_grow(struct bk_frames *t)
{
	uint32_t cap = t->cap * 2;
	struct bk_frame_slot *s;
	unsigned char *d;

	if (cap <= t->cap)
		return SP_ENOMEM;
	s = realloc(t->slot, (size_t)cap * sizeof(*s));
	if (!s)
		return SP_ENOMEM;
	memset(s + t->cap, 0, (size_t)(cap - t->cap) * sizeof(*s));
	t->slot = s;
	d = realloc(t->data, (size_t)cap * t->data_size);
	if (!d)
		return SP_ENOMEM;
	memset(d + (size_t)t->cap * t->data_size, 0, (size_t)(cap - t->cap) * t->data_size);
	t->data = d;
	t->cap = cap;
	return 0;
}

int bk_frames_alloc(struct bk_frames *t, uint32_t node, uint32_t domain, uint32_t *out)
{
	uint32_t s;

	if (t->free_head) {
		s = t->free_head;
		t->free_head = t->slot[s].next_free;
	} else {
		if (t->n == t->cap && frames_grow(t) < 0)
			return SP_ENOMEM;
		s = t->n++;
	}
	t->slot[s].mappers = 0;
	t->slot[s].node = node;
	t->slot[s].domain = domain;
	t->slot[s].next_free = 0;
	t->used++;
	*out = s;
	return 0;
}

void bk_frames_free(struct bk_frames *t, uint32_t s)
{
	t->slot[s].mappers = 0;
	t->slot[s].gen++;
	t->slot[s].next_free = t->free_head;
	t->free_head = s;
	t->used--;
}
