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
 * in a random cycle through every line; prints the nanoseconds a load costs
 * when each waits for the one before (the latency: what a lookup costs that
 * nothing prefetched) and when 16 independent chains are followed together
 * (the most the core overlaps: what a lookup costs at best, every miss
 * prefetched early enough).  Each the least of three passes of 2 M loads
 * after a warm-up of one lap, in each of two rounds over the sizes: the one
 * least disturbed by the other core.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "sp_util.h"

#define LINE 64u
#define STEPS 2000000u
#define PASSES 3
#define CHAINS_MAX 16u
#define SIZES_MAX 16
#define ROUNDS 2 /* every size measured twice, the sizes in turn: the least */

/* Where the chains end: keeps the loops from being optimised out. */
static volatile size_t sink;

/* xorshift64*: a fixed seed, so every run walks the same cycle. */
static uint64_t rnd(uint64_t *s)
{
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * 0x2545F4914F6CDD1DULL;
}

/* ns a load following CHAINS chains at once through BUF, whose cycle visits
 * the N lines in ORDER: the least of PASSES passes. */
static double walk(const uint64_t *buf, const uint32_t *order, size_t n, unsigned chains)
{
	size_t p[CHAINS_MAX], steps = STEPS / chains;
	double best = -1;

	for (unsigned c = 0; c < chains; c++) /* evenly apart along the cycle */
		p[c] = (size_t)order[(n / chains) * c] * (LINE / 8);
	for (int r = 0; r < PASSES; r++) {
		uint64_t t0 = sp_mono_ns();
		for (size_t i = 0; i < steps; i++)
			for (unsigned c = 0; c < chains; c++)
				p[c] = buf[p[c]];
		double t = (double)(sp_mono_ns() - t0) / (double)(steps * chains);
		if (best < 0 || t < best)
			best = t;
	}
	for (unsigned c = 0; c < chains; c++)
		sink += p[c];
	return best;
}

/* ns a load over MIB MiB, one chain (*lat) and CHAINS_MAX chains (*mlp);
 * false when the memory cannot be had. */
static bool measure(size_t mib, double *lat, double *mlp)
{
	size_t bytes = mib << 20, n = bytes / LINE;
	uint64_t *buf = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	uint32_t *order = malloc(n * sizeof(*order));
	bool ok = false;

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
	sink += p;
	*lat = walk(buf, order, n, 1);
	*mlp = walk(buf, order, n, CHAINS_MAX);
	ok = true;
out:
	free(order);
	if (buf != MAP_FAILED)
		munmap(buf, bytes);
	return ok;
}

int main(int argc, char **argv)
{
	static const char *def[] = { "4", "64", "2048" };
	const char **sizes = argc > 1 ? (const char **)argv + 1 : def;
	int n = argc > 1 ? argc - 1 : 3;

	if (n > SIZES_MAX) {
		fprintf(stderr, "mem_latency: at most %d sizes\n", SIZES_MAX);
		return 2;
	}
	for (int i = 0; i < n; i++) {
		char *end;
		errno = 0;
		unsigned long mib = strtoul(sizes[i], &end, 10);
		if (errno || *end || mib == 0 || mib > 8192) {
			fprintf(stderr, "mem_latency: '%s' is not a size in MiB (1-8192)\n", sizes[i]);
			return 2;
		}
	}
	double lat[SIZES_MAX], mlp[SIZES_MAX];
	for (int round = 0; round < ROUNDS; round++)
		for (int i = 0; i < n; i++) {
			unsigned long mib = strtoul(sizes[i], NULL, 10);
			double l, m;
			if (!measure(mib, &l, &m)) {
				fprintf(stderr, "mem_latency: cannot map %lu MiB: %s\n", mib, strerror(errno));
				return 1;
			}
			lat[i] = round == 0 || l < lat[i] ? l : lat[i];
			mlp[i] = round == 0 || m < mlp[i] ? m : mlp[i];
		}
	for (int i = 0; i < n; i++)
		printf("%s%s MiB %.0f / %.0f", i ? ", " : "", sizes[i], lat[i], mlp[i]);
	printf(" ns a random load (one at a time / %u in flight)\n", CHAINS_MAX);
	return 0;
}
