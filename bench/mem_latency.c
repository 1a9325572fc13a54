/*
 * mem_latency.c - what one cache miss costs on this machine today, printed
 * by bench/bench_scale.sh beside its figures (issue 14).  The simulator's
 * 32M/1M ratios are set by how much slower a load from a 2 GiB table is than
 * one from a 64 MiB table, and on this VM that moves from boot to boot (the
 * host's caches and memory are shared): without the figure, rounds taken on
 * different boots cannot be set side by side.
 *
 *   mem_latency [MiB...]     (default 4 64 2048)
 *
 * For each size: a buffer of that many MiB on transparent huge pages (as the
 * simulator's large tables, sp_bigmem.h), one pointer a cache line, chained
 * in a random cycle through every line; prints the nanoseconds of one
 * dependent load (the chain followed 2 M steps after a warm-up of one lap;
 * the least of three passes, the one least disturbed by the other core).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#define LINE 64u
#define STEPS 2000000u
#define PASSES 3

static double now(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

/* xorshift64*: a fixed seed, so every run walks the same cycle. */
static uint64_t rnd(uint64_t *s)
{
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * 0x2545F4914F6CDD1DULL;
}

/* ns a dependent load over MIB MiB, or a negative value on failure. */
static double measure(size_t mib)
{
	size_t bytes = mib << 20, n = bytes / LINE;
	uint64_t *buf = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	uint32_t *order = malloc(n * sizeof(*order));
	double ns = -1;

	if (buf == MAP_FAILED || !order)
		goto out;
	madvise(buf, bytes, MADV_HUGEPAGE);
	/* A random cycle through every line: Fisher-Yates over the lines,
	 * then each line points at the next one in that order. */
	uint64_t seed = 0x9E3779B97F4A7C15ULL;
	for (size_t i = 0; i < n; i++)
		order[i] = (uint32_t)i;
	for (size_t i = n - 1; i > 0; i--) {
		size_t j = rnd(&seed) % (i + 1);
		uint32_t t = order[i];
		order[i] = order[j];
		order[j] = t;
	}
	for (size_t i = 0; i < n; i++)
		buf[(size_t)order[i] * (LINE / 8)] = (uint64_t)order[(i + 1) % n] * (LINE / 8);
	size_t p = 0, warm = n < STEPS ? n : STEPS;
	for (size_t i = 0; i < warm; i++)
		p = buf[p];
	for (int r = 0; r < PASSES; r++) {
		double t0 = now();
		for (size_t i = 0; i < STEPS; i++)
			p = buf[p];
		double t = (now() - t0) * 1e9 / STEPS;
		if (ns < 0 || t < ns)
			ns = t;
	}
	if (p == SIZE_MAX) /* never: keeps the chain from being optimised out */
		ns = 0;
out:
	free(order);
	if (buf != MAP_FAILED)
		munmap(buf, bytes);
	return ns;
}

int main(int argc, char **argv)
{
	static const char *def[] = { "4", "64", "2048" };
	const char **sizes = argc > 1 ? (const char **)argv + 1 : def;
	int n = argc > 1 ? argc - 1 : 3;

	for (int i = 0; i < n; i++) {
		char *end;
		errno = 0;
		unsigned long mib = strtoul(sizes[i], &end, 10);
		if (errno || *end || mib == 0 || mib > 65536) {
			fprintf(stderr, "mem_latency: '%s' is not a size in MiB (1-65536)\n", sizes[i]);
			return 2;
		}
	}
	for (int i = 0; i < n; i++) {
		unsigned long mib = strtoul(sizes[i], NULL, 10);
		double ns = measure(mib);
		if (ns < 0) {
			fprintf(stderr, "mem_latency: cannot map %lu MiB: %s\n", mib, strerror(errno));
			return 1;
		}
		printf("%s%lu MiB %.0f ns", i ? ", " : "", mib, ns);
	}
	printf(" a dependent load\n");
	return 0;
}
