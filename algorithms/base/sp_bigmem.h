/*
 * sp_bigmem.h - zeroed arrays that may be large (a host's worth of pages or
 * contents: hundreds of MiB, randomly accessed).  From 2 MiB up they are
 * mapped anonymously and advised onto transparent huge pages, so that a
 * random access does not also miss the TLB; smaller ones come from calloc.
 */
#ifndef SP_BIGMEM_H
#define SP_BIGMEM_H

#include <stddef.h>

/* n * size zeroed bytes, or NULL (also when n * size overflows). */
void *sp_big_calloc(size_t n, size_t size);
/*
 * Grows what sp_big_calloc(n, size) returned to need > n elements, the new
 * ones zeroed: the array (perhaps moved), or NULL with p untouched.  Mapped
 * arrays grow by mremap(): no copy, and the pages already touched stay.
 */
void *sp_big_grow(void *p, size_t n, size_t need, size_t size);
/* Frees what sp_big_calloc(n, size) returned (the same n and size); NULL is ignored. */
void sp_big_free(void *p, size_t n, size_t size);
/*
 * Faults in what sp_big_calloc(n, size) returned, writable, before its
 * first use - for
 * an array that will be touched all over anyway (a hash index) and is read
 * before it is written.  Why: a read of a never-written huge page maps the
 * shared huge zero page, and the write after it copies that page
 * (bench/README.md, issue 14, eighth round).  MADV_POPULATE_WRITE (Linux
 * 5.14+), else a write per 4 KiB page; nothing for calloc'd arrays.  The
 * contents stay zero.  Advice only: a failure is left to the first use.
 */
void sp_big_prefault(void *p, size_t n, size_t size);

/*
 * n * size zeroed bytes for an array that a scan touches all over on every
 * pass (per-page state, hash buckets): from SP_HOT_MIN bytes up it gets a
 * 2 MiB-aligned mapping of its own, rounded up to 2 MiB and advised onto
 * transparent huge pages, even when far smaller than 2 MiB.  Why: a 4 KiB
 * page not touched for a few hundred ms costs 5-30 us to touch again in
 * the VMs this runs in (bench/README.md, issue 15), a huge page ~1.5 us;
 * a pass touches every page of these arrays once.  The cost: up to 2 MiB
 * of memory per array.  Smaller arrays come from calloc.
 */
#define SP_HOT_MIN ((size_t)128 << 10)
void *sp_hot_calloc(size_t n, size_t size);
/* Frees what sp_hot_calloc(n, size) returned (the same n and size); NULL is ignored. */
void sp_hot_free(void *p, size_t n, size_t size);

#endif
