/*
 * sp_bigmem.c - implements sp_bigmem.h.  Whether an array was mapped follows
 * from its size alone, so the caller passes the size back to free it.
 */
#define _GNU_SOURCE /* MAP_ANONYMOUS, madvise() */
#include "sp_bigmem.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#define BIG_BYTES ((size_t)2 << 20)
#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23 /* Linux 5.14; older kernels refuse it with EINVAL */
#endif

void *sp_big_calloc(size_t n, size_t size)
{
	size_t bytes;
	void *p;

	if (size && n > SIZE_MAX / size)
		return NULL;
	bytes = n * size;
	if (bytes < BIG_BYTES)
		return calloc(n ? n : 1, size ? size : 1);
	p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return NULL;
	(void)madvise(p, bytes, MADV_HUGEPAGE); /* advice only: fine if refused */
	return p;
}

void *sp_big_grow(void *p, size_t n, size_t need, size_t size)
{
	size_t bytes = n * size, nbytes;
	void *q;

	if (size && need > SIZE_MAX / size)
		return NULL;
	nbytes = need * size;
	if (bytes < BIG_BYTES || nbytes < BIG_BYTES) {
		q = sp_big_calloc(need, size);
		if (q && p) {
			memcpy(q, p, bytes);
			sp_big_free(p, n, size);
		}
		return q;
	}
	q = mremap(p, bytes, nbytes, MREMAP_MAYMOVE);
	if (q == MAP_FAILED)
		return NULL;
	(void)madvise(q, nbytes, MADV_HUGEPAGE);
	return q;
}

void sp_big_free(void *p, size_t n, size_t size)
{
	size_t bytes = n * size;

	if (!p)
		return;
	if (bytes < BIG_BYTES)
		free(p);
	else
		munmap(p, bytes);
}

void sp_big_prefault(void *p, size_t n, size_t size)
{
	size_t bytes = n * size; /* no overflow: sp_big_calloc(n, size) succeeded */

	if (!p || bytes < BIG_BYTES)
		return; /* calloc'd */
	if (madvise(p, bytes, MADV_POPULATE_WRITE) == 0 || errno != EINVAL)
		return;
	for (size_t i = 0; i < bytes; i += 4096) /* before 5.14: a write faults each page in */
		((volatile uint8_t *)p)[i] = 0;
}

static size_t hot_bytes(size_t bytes)
{
	return (bytes + BIG_BYTES - 1) & ~(BIG_BYTES - 1);
}

void *sp_hot_calloc(size_t n, size_t size)
{
	size_t bytes, len, head;
	uint8_t *raw, *base;

	if (size && n > SIZE_MAX / size)
		return NULL;
	bytes = n * size;
	if (bytes < SP_HOT_MIN)
		return calloc(n ? n : 1, size ? size : 1);
	if (bytes > SIZE_MAX - 2 * BIG_BYTES)
		return NULL;
	len = hot_bytes(bytes);
	raw = mmap(NULL, len + BIG_BYTES, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (raw == MAP_FAILED)
		return NULL;
	/* Trim to a 2 MiB boundary: a huge page needs an aligned 2 MiB of the mapping. */
	base = (uint8_t *)(((uintptr_t)raw + BIG_BYTES - 1) & ~(uintptr_t)(BIG_BYTES - 1));
	head = (size_t)(base - raw);
	if (head)
		munmap(raw, head);
	if (BIG_BYTES - head)
		munmap(base + len, BIG_BYTES - head);
	(void)madvise(base, len, MADV_HUGEPAGE); /* advice only: fine if refused */
	return base;
}

void sp_hot_free(void *p, size_t n, size_t size)
{
	size_t bytes = n * size;

	if (!p)
		return;
	if (bytes < SP_HOT_MIN)
		free(p);
	else
		munmap(p, hot_bytes(bytes));
}
