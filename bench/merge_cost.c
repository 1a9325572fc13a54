/*
 * merge_cost.c - what a merge of the live engine costs, by its way of
 * freezing the page (issue 15, twenty-second round): us a merge and TLB
 * flushes a merge, REAL_LIVE_FREEZE_MOVE and REAL_LIVE_FREEZE_PROTECT
 * alternated round by round in one process, so both see the same hour's
 * flush price (on this PVM VM it swings 4-79 us within minutes).
 *
 *   merge_cost [pages [rounds [track]]]    (default 2000 6 1)
 *
 * Each round makes a backend over 4 x pages private pages, page 4i, 4i+1
 * and 4i+2 of the same content (4i+3 unique), as sim real replay does:
 * write tracking and COW events on (track 0: off), every page write-
 * protected by a tracking scan first (so a page leaving the tracking
 * userfaultfd pays its flush, as in the engine), frames made by merging
 * 4i+1 with 4i (not timed); then the timed part merges 4i+2 onto its frame,
 * remaps deferred and flushed every 16 merges (the engine's batches), each
 * merged page a VMA of its own as in the engine (1.00 pages per mmap on the
 * bench's traces).  Flushes are the tlb:tlb_flush tracepoint's count for
 * this thread over the timed part (perf_event_open; "n/a" without access to
 * tracefs); "moved/protected" are the backend's freeze counters.  One
 * thread, no writer: the merges' own cost.  Hold the quiet lock.
 */
#define _GNU_SOURCE
#include <linux/perf_event.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "live.h"
#include "sp_util.h"

static long PS;

static int flush_counter(void)
{
	FILE *f = fopen("/sys/kernel/tracing/events/tlb/tlb_flush/id", "r");
	struct perf_event_attr a;
	unsigned long long id;

	if (!f)
		f = fopen("/sys/kernel/debug/tracing/events/tlb/tlb_flush/id", "r");
	if (!f)
		return -1;
	if (fscanf(f, "%llu", &id) != 1) {
		fclose(f);
		return -1;
	}
	fclose(f);
	memset(&a, 0, sizeof(a));
	a.type = PERF_TYPE_TRACEPOINT;
	a.size = sizeof(a);
	a.config = id;
	a.sample_period = 1;
	a.disabled = 1;
	return (int)syscall(SYS_perf_event_open, &a, 0, -1, -1, 0);
}

static long long counter_read(int fd)
{
	long long v = -1;

	if (fd < 0 || read(fd, &v, sizeof(v)) != (ssize_t)sizeof(v))
		return -1;
	return v;
}

static void fill(uint8_t *p, uint64_t tag)
{
	for (long i = 0; i < PS; i += 8)
		memcpy(p + i, &(uint64_t){ tag * 0x9e3779b97f4a7c15ull + (uint64_t)i }, 8);
}

/* One round: us a merge (timed part) and flushes a merge; -1 on failure. */
static int round_run(uint32_t n, bool track, uint8_t freeze, int cfd, double *us, double *flushes,
		     struct real_live_stats *st)
{
	size_t len = (size_t)4 * n * PS;
	uint8_t *m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	struct real_live_region r = { m, len, 0, 0, -1 };
	struct real_live_config lc = { NULL, false, 0, track, true, REAL_LIVE_PROTECT_BY_RUN, freeze };
	struct real_live *L;
	struct sp_err err = { 0 };
	struct backend b;
	bk_frame *f = calloc(n, sizeof(*f));
	long long c0, c1;
	uint64_t t0, t1;

	if (m == MAP_FAILED || !f)
		return -1;
	madvise(m, len, MADV_NOHUGEPAGE);
	for (uint32_t i = 0; i < n; i++) {
		for (int k = 0; k < 3; k++)
			fill(m + (4 * (size_t)i + k) * PS, i);
		fill(m + (4 * (size_t)i + 3) * PS, (uint64_t)n + i);
	}
	if (real_live_new(&L, &r, 1, &lc, &err) < 0) {
		fprintf(stderr, "merge_cost: %s\n", err.msg);
		return -1;
	}
	b = real_live_backend(L);
	if (b.ops->written)
		for (bk_page p = 0; p < 4ull * n; p++)
			b.ops->written(L, p); /* the scans write-protect every page, as in the engine */
	real_live_flush(L);
	real_live_defer_remaps(L, true);
	for (uint32_t i = 0; i < n; i++) {
		if (b.ops->merge_pages(L, 4 * i + 1, 4 * i, &f[i]) < 0)
			return -1;
		if (i % 16 == 15)
			real_live_flush(L);
	}
	real_live_flush(L);
	ioctl(cfd, PERF_EVENT_IOC_ENABLE, 0);
	c0 = counter_read(cfd);
	t0 = sp_mono_ns();
	for (uint32_t i = 0; i < n; i++) {
		if (b.ops->merge_frame(L, 4 * i + 2, f[i]) < 0)
			return -1;
		if (i % 16 == 15)
			real_live_flush(L);
	}
	real_live_flush(L);
	t1 = sp_mono_ns();
	c1 = counter_read(cfd);
	ioctl(cfd, PERF_EVENT_IOC_DISABLE, 0);
	real_live_stats(L, st);
	*us = (double)(t1 - t0) / 1e3 / n;
	*flushes = c0 < 0 || c1 < 0 ? -1 : (double)(c1 - c0) / n;
	for (uint32_t i = 0; i < n; i++) {
		uint8_t want[4096];

		fill(want, i);
		if (memcmp(m + (4 * (size_t)i + 2) * PS, want, (size_t)PS) != 0) {
			fprintf(stderr, "merge_cost: page %u lost its content\n", 4 * i + 2);
			return -1;
		}
	}
	real_live_unmerge_all(L, NULL, NULL);
	real_live_free(L);
	munmap(m, len);
	free(f);
	return 0;
}

int main(int argc, char **argv)
{
	uint32_t n = argc > 1 ? (uint32_t)atoi(argv[1]) : 2000;
	int rounds = argc > 2 ? atoi(argv[2]) : 6;
	bool track = argc > 3 ? atoi(argv[3]) != 0 : true;
	int cfd = flush_counter();
	double sum_us[2] = { 0 }, sum_fl[2] = { 0 };
	int cnt[2] = { 0 };

	PS = sysconf(_SC_PAGESIZE);
	if (PS != 4096 || n == 0)
		return 2;
	printf("merge_cost: %u merges a round, write tracking %s, tlb:tlb_flush %s\n", n,
	       track ? "on" : "off", cfd < 0 ? "n/a" : "counted");
	for (int k = 0; k < rounds; k++) {
		uint8_t freeze = k % 2 ? REAL_LIVE_FREEZE_PROTECT : REAL_LIVE_FREEZE_MOVE;
		struct real_live_stats st;
		double us, fl;

		if (round_run(n, track, freeze, cfd, &us, &fl, &st) < 0)
			return 1;
		printf("round %d %-7s %6.1f us a merge, %5.2f flushes a merge (moved %llu, back %llu, protected %llu, "
		       "refused %llu/%llu/%llu/%llu, stage drops %llu, errors %llu)\n",
		       k + 1, freeze == REAL_LIVE_FREEZE_MOVE ? "move" : "protect", us, fl,
		       (unsigned long long)st.freeze_moved, (unsigned long long)st.freeze_moved_back,
		       (unsigned long long)st.freeze_protected, (unsigned long long)st.move_refused[0],
		       (unsigned long long)st.move_refused[1], (unsigned long long)st.move_refused[2],
		       (unsigned long long)st.move_refused[3], (unsigned long long)st.stage_drops,
		       (unsigned long long)st.freeze_errors);
		sum_us[k % 2] += us;
		sum_fl[k % 2] += fl;
		cnt[k % 2]++;
	}
	for (int i = 0; i < 2; i++)
		if (cnt[i])
			printf("mean %-7s %6.1f us a merge, %5.2f flushes a merge (%d rounds)\n",
			       i ? "protect" : "move", sum_us[i] / cnt[i], sum_fl[i] / cnt[i], cnt[i]);
	return 0;
}
