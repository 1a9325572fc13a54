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

#endif
