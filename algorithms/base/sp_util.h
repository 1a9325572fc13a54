/*
 * sp_util.h - small helpers every module may want: the splitmix64
 * generator (a seeded stream of well-mixed 64-bit values), the monotonic
 * clock in nanoseconds, and a prefetch of a whole small array.
 */
#ifndef SP_UTIL_H
#define SP_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

/* Next value of the splitmix64 stream whose state is *s. */
static inline uint64_t sp_splitmix64(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

/* CLOCK_MONOTONIC in nanoseconds. */
static inline uint64_t sp_mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* A read prefetch the compiler keeps (GCC 12 may drop __builtin_prefetch in a scan loop). */
static inline void sp_prefetch(const void *p)
{
#if defined(__x86_64__) || defined(__i386__)
	__asm__ volatile("prefetcht0 %0" : : "m"(*(const char *)p));
#else
	__builtin_prefetch(p, 0, 3);
#endif
}

/*
 * Prefetches every cache line of the bytes at p when they are at most max
 * (a table read at random, brought back after a sleep left it cold); a hint.
 * With sp_prefetch(): GCC 12 deleted a loop of __builtin_prefetch calls in
 * ksm.c's warm_tables() (860ad04; the bucket heads' load went back to ~15%
 * of the live engine's CPU on the 5% trace).
 */
static inline void sp_prefetch_small(const void *p, size_t bytes, size_t max)
{
	if (bytes > max)
		return;
	for (size_t o = 0; o < bytes; o += 64)
		sp_prefetch((const char *)p + o);
}

#endif
