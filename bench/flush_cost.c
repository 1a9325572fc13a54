/*
 * flush_cost.c - what a system call and a TLB flush cost on this machine
 * now, printed by bench/bench_real.sh beside its figures (issue 15).  The
 * live engine's merges take three TLB flushes a page and its write-tracking
 * scans one per VMA piece holding a written page; on this VM (a PVM guest:
 * a local flush is a hypervisor exit) a flush has cost 0.3 us on one boot and
 * 5-50 us on another, swinging ~5x within minutes, while ksmd's merges and
 * visits do not pay it.  Without the figure, engine CPU taken on different
 * boots (or hours) cannot be set side by side.
 *
 *   flush_cost [rounds]     (default 5)
 *
 * syscall: getppid(), the cheapest system call, ns a call (the least of the
 * rounds' means over 20,000 calls).
 * flush: UFFDIO_WRITEPROTECT of one present, writable page (the PTE made
 * read-only: one local flush of one page, an INVLPG) less the same call on a
 * page already protected (the same walk, no PTE change, no flush), us a
 * page, means over 256 pages a round; printed as the median of the rounds
 * and their least and most, since the price moves between rounds.  full:
 * the same over 64 pages in one call (more than the kernel's 33-page
 * ceiling: one full flush instead of 64 INVLPGs).  Below the ceiling a range
 * costs one INVLPG a page, and on this VM each is a hypervisor exit: a
 * PAGEMAP_SCAN flushes from its first written page to the end of the VMA
 * piece it walks.  One thread, so the flushes are local (no IPI): the
 * engine's case while the application's threads sleep.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "sp_util.h"

#define PAGES 256u
#define CALLS 20000u
#define ROUNDS_MAX 32

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

static int wp(int uffd, void *addr, size_t len, int on)
{
	struct uffdio_writeprotect w = { .range = { (uintptr_t)addr, len },
					 .mode = on ? UFFDIO_WRITEPROTECT_MODE_WP : 0 };
	return ioctl(uffd, UFFDIO_WRITEPROTECT, &w);
}

/* Mean ns of UFFDIO_WRITEPROTECT(on) over each run of n pages of the PAGES pages of m. */
static double wp_pages(int uffd, char *m, size_t ps, unsigned n)
{
	uint64_t t0 = sp_mono_ns();

	for (unsigned i = 0; i < PAGES; i += n)
		if (wp(uffd, m + i * ps, n * ps, 1) < 0)
			return -1;
	return (double)(sp_mono_ns() - t0) / (PAGES / n);
}

int main(int argc, char **argv)
{
	int rounds = 5;
	size_t ps = (size_t)sysconf(_SC_PAGESIZE), len = PAGES * ps;
	double flush[ROUNDS_MAX], full[ROUNDS_MAX], sys = -1;
	struct uffdio_api api = { .api = UFFD_API, .features = 0 };
	struct uffdio_register reg = { .mode = UFFDIO_REGISTER_MODE_WP };
	char *m, extra;
	int uffd;

	if (argc > 2 || (argc == 2 && (sscanf(argv[1], "%d%c", &rounds, &extra) != 1 || rounds < 1 ||
				       rounds > ROUNDS_MAX))) {
		fprintf(stderr, "usage: flush_cost [rounds, 1 to %d]\n", ROUNDS_MAX);
		return 2;
	}
	m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	uffd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
	if (m == MAP_FAILED || uffd < 0 || ioctl(uffd, UFFDIO_API, &api) < 0) {
		perror("flush_cost: mmap/userfaultfd");
		return 1;
	}
	memset(m, 1, len); /* present, writable, exclusive */
	reg.range.start = (uintptr_t)m;
	reg.range.len = len;
	if (ioctl(uffd, UFFDIO_REGISTER, &reg) < 0) {
		perror("flush_cost: UFFDIO_REGISTER");
		return 1;
	}
	for (int r = 0; r < rounds; r++) {
		uint64_t t0 = sp_mono_ns();
		double call, on, again, on64, again64;

		for (unsigned i = 0; i < CALLS; i++)
			syscall(SYS_getppid);
		call = (double)(sp_mono_ns() - t0) / CALLS;
		if (sys < 0 || call < sys)
			sys = call;
		/* Writable again in one call (one flush): the kernel upgrades exclusive anonymous PTEs. */
		if (wp(uffd, m, len, 0) < 0) {
			perror("flush_cost: UFFDIO_WRITEPROTECT");
			return 1;
		}
		on = wp_pages(uffd, m, ps, 1);
		again = wp_pages(uffd, m, ps, 1);
		on64 = wp(uffd, m, len, 0) < 0 ? -1 : wp_pages(uffd, m, ps, 64);
		again64 = wp_pages(uffd, m, ps, 64);
		if (on < 0 || again < 0 || on64 < 0 || again64 < 0) {
			perror("flush_cost: UFFDIO_WRITEPROTECT");
			return 1;
		}
		flush[r] = (on - again) / 1e3;
		full[r] = (on64 - again64) / 1e3;
	}
	qsort(flush, (size_t)rounds, sizeof(flush[0]), cmp_double);
	qsort(full, (size_t)rounds, sizeof(full[0]), cmp_double);
	printf("syscall %.2f us; TLB flush of one page %.2f us (median of %d rounds, %.2f-%.2f), full %.2f us (%.2f-%.2f)\n",
	       sys / 1e3, flush[rounds / 2], rounds, flush[0], flush[rounds - 1], full[rounds / 2], full[0],
	       full[rounds - 1]);
	return 0;
}
