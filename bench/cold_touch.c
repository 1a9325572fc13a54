/*
 * cold_touch.c - what reading a page the process has not touched for a
 * while costs on this host (bench/README.md, issue 15, sixth round): the
 * live engine reads few pages per batch (the written ones, the frames it
 * merges onto), each long untouched; ksmd reads every page of every pass.
 *
 *   cold_touch [IDLE_MS...]     (default 0 200 1000 2000)
 *
 * 64 MiB of private anonymous memory is written, mapped with 4 KiB pages
 * (MADV_NOHUGEPAGE) or transparent huge pages (MADV_HUGEPAGE, where the
 * kernel grants them); after IDLE_MS of sleep, 2000 random pages are read,
 * each one byte (a first touch), either directly or copied by the kernel
 * (process_vm_readv, the direct map's huge pages instead of the process's
 * mapping).  Prints the mean microseconds per page, three runs each.
 */
#define _GNU_SOURCE
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/uio.h>
#include <unistd.h>

#include "sp_util.h"

#define PS 4096u
#define NPAGES 16384u
#define TOUCHES 2000u
#define RUNS 3

/* Mean us per first touch of TOUCHES random pages after idle_ms; negative on failure. */
static double one_run(bool huge, bool copy, unsigned idle_ms, unsigned seed)
{
	uint8_t *b = mmap(NULL, (size_t)NPAGES * PS, PROT_READ | PROT_WRITE,
			  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	uint8_t buf[64];
	uint64_t x = seed * 2654435761u + 1;
	bool failed = false;
	uint64_t t0;
	double t;

	if (b == MAP_FAILED)
		return -1;
	madvise(b, (size_t)NPAGES * PS, huge ? MADV_HUGEPAGE : MADV_NOHUGEPAGE);
	for (size_t i = 0; i < (size_t)NPAGES * PS; i += 64)
		b[i] = (uint8_t)(i >> 6);
	usleep(idle_ms * 1000u);
	t0 = sp_mono_ns();
	for (unsigned i = 0; i < TOUCHES; i++) {
		uint8_t *p;

		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		p = b + (x % NPAGES) * PS + 64 * (i % 64);
		if (copy) {
			struct iovec l = { buf, sizeof(buf) }, r = { p, sizeof(buf) };

			if (process_vm_readv(getpid(), &l, 1, &r, 1, 0) != (ssize_t)sizeof(buf))
				failed = true;
		} else {
			(void)*(volatile uint8_t *)p;
		}
	}
	t = (double)(sp_mono_ns() - t0) / 1e3;
	munmap(b, (size_t)NPAGES * PS);
	return failed ? -1 : t / TOUCHES;
}

int main(int argc, char **argv)
{
	static const unsigned def[] = { 0, 200, 1000, 2000 };
	unsigned n = argc > 1 ? (unsigned)argc - 1 : 4;

	printf("| idle (ms) | 4 KiB pages | huge pages | 4 KiB, process_vm_readv |\n|---:|---|---|---|\n");
	for (unsigned k = 0; k < n; k++) {
		unsigned idle = argc > 1 ? (unsigned)strtoul(argv[k + 1], NULL, 10) : def[k];

		printf("| %u |", idle);
		for (int mode = 0; mode < 3; mode++) {
			for (int r = 0; r < RUNS; r++) {
				double us = one_run(mode == 1, mode == 2, idle, (unsigned)(r + 1));

				if (us < 0) {
					fprintf(stderr, "cold_touch: mmap or process_vm_readv failed\n");
					return 1;
				}
				printf("%s%.2f", r ? ", " : " ", us);
			}
			printf(" |");
		}
		printf("\n");
		fflush(stdout);
	}
	return 0;
}
