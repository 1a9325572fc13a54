/*
 * frames.c - implements the shared-frame table of frames.h: slots in one
 * array doubled when full (on huge pages from 2 MiB up), with the backend's
 * bytes, if any, in a parallel array, and a free list of recycled slots.
 */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "frames.h"
#include "sp_bigmem.h"
#include "sp_error.h"

/*
 * The slot array: 64-byte aligned; from 2 MiB up on transparent huge pages
 * (sp_bigmem.h), as every other table a scan reads at random.
 */
#define SLOTS_BIG ((size_t)2 << 20)

static bool slots_big(uint32_t cap)
{
	return (size_t)cap * sizeof(struct bk_frame_slot) >= SLOTS_BIG;
}

/* The n slots of a (cap before) in an array of cap zeroed slots, or NULL with a untouched. */
static struct bk_frame_slot *slots_grow(struct bk_frame_slot *a, uint32_t n, uint32_t cap)
{
	void *p = NULL;

	if (slots_big(cap))
		return sp_big_grow(a, n, cap, sizeof(*a));
	if (posix_memalign(&p, 64, (size_t)cap * sizeof(*a)) != 0)
		return NULL;
	memset(p, 0, (size_t)cap * sizeof(*a));
	if (a) {
		memcpy(p, a, (size_t)n * sizeof(*a));
		free(a);
	}
	return p;
}

static void slots_free(struct bk_frame_slot *a, uint32_t cap)
{
	if (slots_big(cap))
		sp_big_free(a, cap, sizeof(*a));
	else
		free(a);
}

int bk_frames_init(struct bk_frames *t, size_t data_size)
{
	memset(t, 0, sizeof(*t));
	t->data_size = data_size;
	t->cap = 1024;
	t->slot = slots_grow(NULL, 0, t->cap);
	t->data = data_size ? calloc(t->cap, t->data_size) : NULL;
	if (!t->slot || (data_size && !t->data)) {
		bk_frames_release(t);
		return SP_ENOMEM;
	}
	t->n = 2; /* 0: private, 1: the zero page */
	t->slot[BK_SLOT_ZERO].mappers = 1;
	return 0;
}

void bk_frames_release(struct bk_frames *t)
{
	if (t->slot)
		slots_free(t->slot, t->cap);
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
	if (t->data_size) {
		d = realloc(t->data, (size_t)cap * t->data_size);
		if (!d)
			return SP_ENOMEM;
		memset(d + (size_t)t->cap * t->data_size, 0, (size_t)(cap - t->cap) * t->data_size);
		t->data = d;
	}
	s = slots_grow(t->slot, t->cap, cap);
	if (!s)
		return SP_ENOMEM; /* (the data's room grown already: harmless) */
	t->slot = s;
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
	t->slot[s].word = 0;
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
