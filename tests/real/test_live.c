/*
 * test_live.c - the live backend (real/live.c) and its engine: actual COW
 * merges, COW-break detection, frame release, refusals, NUMA placement with a
 * fake two-node topology, and an integrity stress test with concurrent
 * writers.  Needs userfaultfd write protection (root): skipped otherwise.
 * The real two-node test runs in a QEMU guest: numa_guest.c, numa_qemu.sh.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/io_uring.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "algorithm.h"
#include "engine.h"
#include "harness.h"
#include "live.h"
#include "sp_util.h"

#define PS 4096u

static uint8_t *map_pages(size_t n)
{
	uint8_t *p = mmap(NULL, n * PS, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	CU_ASSERT_FATAL(p != MAP_FAILED);
	return p;
}

static void fill(uint8_t *page, unsigned content)
{
	uint64_t s = content * 0x9e3779b97f4a7c15ull + 1;

	for (unsigned i = 0; i < PS; i += 8) {
		s ^= s << 13;
		s ^= s >> 7;
		s ^= s << 17;
		memcpy(page + i, &s, 8);
	}
}

/* A live backend over one region, or a skip when userfaultfd is unavailable. */
static struct real_live *live_or_skip(uint8_t *addr, size_t pages, const struct real_live_config *cfg)
{
	struct real_live_region r = { addr, pages * PS, 0, 0, -1 };
	struct real_live *L = NULL;
	struct sp_err err = { 0 };
	int rc = real_live_new(&L, &r, 1, cfg, &err);

	if (rc == SP_EPERM || rc == SP_ENOTSUP) {
		sp_test_skip("%s", err.msg);
		return NULL;
	}
	if (rc < 0)
		fprintf(stderr, "real_live_new: %s\n", err.msg);
	CU_ASSERT_FATAL(rc == 0);
	return L;
}

static int count_cb(void *arg, bk_page p, uint32_t what)
{
	(void)p;
	if (what & ALGO_CHANGE_COW)
		(*(int *)arg)++;
	return 0;
}

SP_TEST(merge_then_write_keeps_data)
{
	uint8_t *m = map_pages(4), snap[PS];
	struct real_live *L;
	struct backend b;
	struct bk_page_info info;
	struct real_live_stats st;
	bk_frame f;
	int cows = 0;

	for (int i = 0; i < 3; i++)
		fill(m + i * PS, 7);
	fill(m + 3 * PS, 8);
	if (!(L = live_or_skip(m, 4, NULL)))
		return;
	b = real_live_backend(L);
	CU_ASSERT_EQUAL(b.ops->checksum(L, 0), b.ops->checksum(L, 1));
	CU_ASSERT_NOT_EQUAL(b.ops->checksum(L, 0), b.ops->checksum(L, 3));
	CU_ASSERT_EQUAL(b.ops->compare(L, 0, 1), 0);
	CU_ASSERT_EQUAL(b.ops->merge_pages(L, 1, 0, &f), 0);
	CU_ASSERT_EQUAL(b.ops->merge_frame(L, 2, f), 0);
	CU_ASSERT_EQUAL(b.ops->frame_mappers(L, f), 3);
	b.ops->page_info(L, 2, &info);
	CU_ASSERT_EQUAL(info.frame, f);
	CU_ASSERT_EQUAL(b.ops->compare_frame(L, 3, f) != 0, 1);
	real_live_stats(L, &st);
	CU_ASSERT_EQUAL(st.frames, 1);
	/* Nothing written yet: no COW. */
	CU_ASSERT_EQUAL(real_live_poll(L, 4, count_cb, &cows), 0);
	/* Write page 1: its own copy; 0 and 2 unchanged; the COW is detected. */
	memcpy(snap, m, PS);
	memset(m + PS + 100, 0xEE, 50);
	CU_ASSERT_EQUAL(memcmp(m, snap, PS), 0);
	CU_ASSERT_EQUAL(memcmp(m + 2 * PS, snap, PS), 0);
	CU_ASSERT_EQUAL(m[PS + 100], 0xEE);
	CU_ASSERT_EQUAL(memcmp(m + PS, snap, 100), 0);
	CU_ASSERT_EQUAL(real_live_check(L, 1, count_cb, &cows), 1);
	CU_ASSERT_EQUAL(cows, 1);
	CU_ASSERT_EQUAL(b.ops->frame_mappers(L, f), 2);
	b.ops->page_info(L, 1, &info);
	CU_ASSERT_EQUAL(info.frame, BK_NO_FRAME);
	/* Page 0 has never been written: still shared. */
	CU_ASSERT_EQUAL(real_live_check(L, 0, count_cb, &cows), 0);
	{
		struct metrics mt;

		memset(&mt, 0, sizeof(mt));
		real_live_metrics(L, &mt);
		CU_ASSERT_EQUAL(mt.cow_breaks, 1);
		CU_ASSERT_EQUAL(mt.merges, 2);
	}
	real_live_free(L);
	CU_ASSERT_EQUAL(memcmp(m, snap, PS), 0);
	munmap(m, 4 * PS);
}

SP_TEST(frames_released_with_last_sharer)
{
	enum { N = 64 };
	uint8_t *m = map_pages(N);
	struct real_live *L;
	struct backend b;
	struct real_live_stats st;
	bk_frame f;
	int cows = 0;

	for (int i = 0; i < N; i++)
		fill(m + i * PS, (unsigned)(i % 2));
	if (!(L = live_or_skip(m, N, NULL)))
		return;
	b = real_live_backend(L);
	for (int i = 2; i < N; i++)
		CU_ASSERT_EQUAL(b.ops->merge_pages(L, (bk_page)i, (bk_page)(i % 2), &f), 0);
	real_live_stats(L, &st);
	CU_ASSERT_EQUAL(st.frames, 2);
	CU_ASSERT_EQUAL(st.pool_bytes, 2 * PS); /* st_blocks of the memfd: two frames */
	/* Every sharer of content 0 writes: its frame goes, the other stays. */
	for (int i = 0; i < N; i += 2)
		m[i * PS] ^= 1;
	CU_ASSERT_EQUAL(real_live_poll(L, N, count_cb, &cows), N / 2);
	real_live_stats(L, &st);
	CU_ASSERT_EQUAL(st.frames, 1);
	CU_ASSERT_EQUAL(st.pool_bytes, PS);
	/* Unmerging the rest frees the last frame; the content stays. */
	CU_ASSERT_EQUAL(real_live_unmerge_all(L, NULL, NULL), 0);
	real_live_stats(L, &st);
	CU_ASSERT_EQUAL(st.frames, 0);
	CU_ASSERT_EQUAL(st.pool_bytes, 0);
	for (int i = 1; i < N; i += 2) {
		uint8_t want[PS];

		fill(want, 1);
		CU_ASSERT_EQUAL(memcmp(m + i * PS, want, PS), 0);
	}
	real_live_free(L);
	munmap(m, N * PS);
}

/* VMAs of the process overlapping [addr, addr + len). */
static unsigned vmas_over(const uint8_t *addr, size_t len)
{
	FILE *f = fopen("/proc/self/maps", "r");
	unsigned long lo, hi;
	unsigned n = 0;
	char line[512];

	CU_ASSERT_FATAL(f != NULL);
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "%lx-%lx", &lo, &hi) == 2 && lo < (uintptr_t)addr + len &&
		    hi > (uintptr_t)addr)
			n++;
	}
	fclose(f);
	return n;
}

/*
 * Merges in runs share VMAs: near max_map_count the backend counts the VMAs
 * instead of charging 2 per merged page, so a limit the estimate alone would
 * hit before half of the merges lets all of them through; a limit that is
 * really reached refuses with SP_ELIMIT.  merge_ns covers exactly the timed
 * merges and their pages.
 */
SP_TEST(runs_share_vmas_near_max_map_count)
{
	enum { K = 256 };
	uint8_t *m = map_pages(2 * K), want[PS];
	struct real_live_config cfg = { 0 };
	struct real_live *L;
	struct backend b;
	struct real_live_stats st;
	uint64_t v0;
	bk_frame f;
	int cows = 0;

	for (int i = 0; i < 2 * K; i++)
		fill(m + i * PS, (unsigned)(i % K) + 100);
	v0 = real_count_vmas();
	cfg.max_map_count = v0 + 256 + 400; /* the margin + room for 200 pages at 2 VMAs each */
	if (!(L = live_or_skip(m, 2 * K, &cfg)))
		return;
	b = real_live_backend(L);
	real_live_defer_remaps(L, true);
	for (int i = 0; i < K; i++) {
		CU_ASSERT_EQUAL(b.ops->merge_pages(L, (bk_page)(K + i), (bk_page)i, &f), 0);
		if (i % 16 == 15)
			real_live_flush(L); /* batches of 16, as the engine flushes after each */
	}
	real_live_stats(L, &st);
	CU_ASSERT_EQUAL(st.map_limit_refusals, 0);
	CU_ASSERT(st.vma_recounts >= 1);
	CU_ASSERT_EQUAL(vmas_over(m, 2 * K * PS), 2); /* two runs, one VMA each */
	CU_ASSERT_EQUAL(st.frames, K);
	CU_ASSERT_EQUAL(st.timed_merges, K);
	CU_ASSERT_EQUAL(st.timed_pages, 2 * K);
	CU_ASSERT_EQUAL(st.remaps, 2 * K / 16); /* one mmap per run per batch */
	for (int i = 0; i < 2 * K; i++) {
		fill(want, (unsigned)(i % K) + 100);
		CU_ASSERT_EQUAL(memcmp(m + i * PS, want, PS), 0);
	}
	CU_ASSERT_EQUAL(real_live_poll(L, 2 * K, count_cb, &cows), 0);
	real_live_free(L);
	munmap(m, 2 * K * PS);

	/* A limit right at the process's count: refused, counted, nothing changed. */
	m = map_pages(4);
	fill(m, 1);
	fill(m + PS, 1);
	cfg.max_map_count = real_count_vmas() + 256;
	if (!(L = live_or_skip(m, 4, &cfg)))
		return;
	b = real_live_backend(L);
	CU_ASSERT_EQUAL(b.ops->merge_pages(L, 1, 0, &f), SP_ELIMIT);
	real_live_stats(L, &st);
	CU_ASSERT_EQUAL(st.map_limit_refusals, 1);
	CU_ASSERT_EQUAL(st.frames, 0);
	CU_ASSERT_EQUAL(st.timed_merges, 0);
	real_live_free(L);
	munmap(m, 4 * PS);
}

/* COW polling reads spans around merged pages: far apart and close together, every break is found. */
SP_TEST(poll_finds_sparse_cow_breaks)
{
	enum { N = 1200 };
	static const int pages[] = { 3, 5, 40, 41, 500, 511, 512, 513, 900, 1199 };
	enum { NP = sizeof(pages) / sizeof(pages[0]) };
	uint8_t *m = map_pages(N);
	struct real_live *L;
	struct backend b;
	struct real_live_stats st;
	bk_frame f;
	int cows = 0;

	for (int i = 0; i < N; i++)
		fill(m + i * PS, (unsigned)i + 1000);
	fill(m + 7 * PS, 1);
	for (int i = 0; i < NP; i++)
		fill(m + pages[i] * PS, 1);
	if (!(L = live_or_skip(m, N, NULL)))
		return;
	b = real_live_backend(L);
	for (int i = 0; i < NP; i++)
		CU_ASSERT_EQUAL(b.ops->merge_pages(L, (bk_page)pages[i], 7, &f), 0);
	CU_ASSERT_EQUAL(real_live_poll(L, N, count_cb, &cows), 0);
	real_live_stats(L, &st);
	CU_ASSERT(st.cow_polled < N / 4); /* the spans, not every page */
	for (int i = 0; i < NP; i += 2)
		m[pages[i] * PS + 9] ^= 0x5a;
	CU_ASSERT_EQUAL(real_live_poll(L, N, count_cb, &cows), (NP + 1) / 2);
	CU_ASSERT_EQUAL(cows, (NP + 1) / 2);
	CU_ASSERT_EQUAL(b.ops->frame_mappers(L, f), 1 + NP / 2);
	for (int i = 0; i < NP; i++) {
		struct bk_page_info info;

		b.ops->page_info(L, (bk_page)pages[i], &info);
		CU_ASSERT_EQUAL(info.frame == BK_NO_FRAME, i % 2 == 0);
	}
	real_live_free(L);
	munmap(m, N * PS);
}

/* A chunk the poll found nothing to read in is skipped, until a page there is merged. */
SP_TEST(poll_sees_merges_in_chunks_it_skipped)
{
	enum { N = 2048 };
	uint8_t *m = map_pages(N);
	struct real_live *L;
	struct backend b;
	struct real_live_stats st;
	bk_frame f;
	int cows = 0;

	for (int i = 0; i < N; i++)
		fill(m + i * PS, (unsigned)i + 3000);
	fill(m + 7 * PS, 1);
	fill(m + 5 * PS, 1);
	fill(m + 1500 * PS, 1);
	if (!(L = live_or_skip(m, N, NULL)))
		return;
	b = real_live_backend(L);
	CU_ASSERT_EQUAL(real_live_poll(L, N, count_cb, &cows), 0); /* every chunk: nothing to read */
	CU_ASSERT_EQUAL(real_live_poll(L, N, count_cb, &cows), 0);
	real_live_stats(L, &st);
	CU_ASSERT_EQUAL(st.cow_polled, 0);
	CU_ASSERT_EQUAL(b.ops->merge_pages(L, 5, 7, &f), 0);
	CU_ASSERT_EQUAL(b.ops->merge_frame(L, 1500, f), 0);
	CU_ASSERT_EQUAL(real_live_poll(L, N, count_cb, &cows), 0);
	real_live_stats(L, &st);
	CU_ASSERT(st.cow_polled >= 3); /* pages 5, 7 and 1500, in chunks skipped before */
	m[1500 * PS + 9] ^= 0x5a;
	CU_ASSERT_EQUAL(real_live_poll(L, N, count_cb, &cows), 1);
	CU_ASSERT_EQUAL(cows, 1);
	CU_ASSERT_EQUAL(b.ops->frame_mappers(L, f), 2);
	m[5 * PS + 9] ^= 0x5a;
	CU_ASSERT_EQUAL(real_live_poll(L, N, count_cb, &cows), 1);
	CU_ASSERT_EQUAL(b.ops->frame_mappers(L, f), 1);
	real_live_free(L);
	munmap(m, N * PS);
}

SP_TEST(merge_refused_if_changed)
{
	uint8_t *m = map_pages(4);
	struct real_live *L;
	struct backend b;
	struct real_live_stats st;
	bk_frame f;

	fill(m, 1);
	fill(m + PS, 1);
	fill(m + 2 * PS, 1);
	fill(m + 3 * PS, 1);
	m[3 * PS + 5] ^= 0xFF;
	if (!(L = live_or_skip(m, 4, NULL)))
		return;
	b = real_live_backend(L);
	CU_ASSERT_EQUAL(b.ops->merge_pages(L, 3, 0, &f), SP_ECHANGED);
	real_live_stats(L, &st);
	CU_ASSERT_EQUAL(st.frames, 0);
	CU_ASSERT_EQUAL(st.pool_bytes, 0);
	CU_ASSERT_EQUAL(b.ops->merge_pages(L, 1, 0, &f), 0);
	/* Page 2 changes after the algorithm compared it: the merge is refused. */
	CU_ASSERT_EQUAL(b.ops->compare_frame(L, 2, f), 0);
	m[2 * PS + 4095] ^= 1;
	CU_ASSERT_EQUAL(b.ops->merge_frame(L, 2, f), SP_ECHANGED);
	CU_ASSERT_EQUAL(b.ops->frame_mappers(L, f), 2);
	/* Refusals leave the page writable and intact. */
	m[2 * PS] = 42;
	CU_ASSERT_EQUAL(m[2 * PS], 42);
	CU_ASSERT_EQUAL(b.ops->merge_frame(L, 0, f), SP_EINVAL); /* already merged */
	CU_ASSERT_EQUAL(b.ops->merge_zero(L, 3), SP_ECHANGED);
	real_live_free(L);
	munmap(m, 4 * PS);
}

SP_TEST(zero_page_merge_and_cow)
{
	uint8_t *m = map_pages(2);
	struct real_live *L;
	struct backend b;
	uint64_t rss0, rss1;
	int cows = 0;

	memset(m, 0, 2 * PS); /* written zeros: private pages */
	if (!(L = live_or_skip(m, 2, NULL)))
		return;
	b = real_live_backend(L);
	CU_ASSERT_EQUAL(real_live_measured_rss(L, &rss0, NULL), 0);
	CU_ASSERT_EQUAL(rss0, 2 * PS);
	CU_ASSERT_EQUAL(b.ops->checksum(L, 0), b.ops->zero_checksum(L));
	CU_ASSERT_EQUAL(b.ops->merge_zero(L, 0), 0);
	CU_ASSERT_EQUAL(real_live_measured_rss(L, &rss1, NULL), 0);
	CU_ASSERT_EQUAL(rss1, PS); /* the page is dropped */
	if (sp_test_read_maps_zero_page()) {
		CU_ASSERT_EQUAL(m[100], 0); /* reads the zero page */
		CU_ASSERT_EQUAL(real_live_check(L, 0, count_cb, &cows), 0);
		CU_ASSERT_EQUAL(real_live_measured_rss(L, &rss1, NULL), 0);
		CU_ASSERT_EQUAL(rss1, PS);
		m[7] = 3; /* the COW break of the zero page */
		CU_ASSERT_EQUAL(m[7], 3);
	} else {
		/* A read allocates a private page: as good as a COW break, and seen as one. */
		CU_ASSERT_EQUAL(m[100], 0);
		CU_ASSERT_EQUAL(real_live_measured_rss(L, &rss1, NULL), 0);
		CU_ASSERT_EQUAL(rss1, 2 * PS);
	}
	CU_ASSERT_EQUAL(real_live_check(L, 0, count_cb, &cows), 1);
	CU_ASSERT_EQUAL(real_live_check(L, 0, count_cb, &cows), 0); /* private now: nothing more */
	CU_ASSERT_EQUAL(cows, 1);
	real_live_free(L);
	munmap(m, 2 * PS);
}

/* ---- write tracking ------------------------------------------------------- */

/* A tracked live backend (written pages protected again the way protect says), or a skip. */
static struct real_live *tracked_or_skip_protect(uint8_t *addr, size_t pages, uint8_t protect)
{
	struct real_live_config lc = { NULL, false, 0, true, false, protect, REAL_LIVE_FREEZE_MOVE };
	struct real_live *L = live_or_skip(addr, pages, &lc);

	if (L && real_live_tracking_off(L)) {
		sp_test_skip("write tracking unavailable: %s", real_live_tracking_off(L));
		real_live_free(L);
		return NULL;
	}
	return L;
}

/* A tracked live backend, or a skip with the reason (no userfaultfd, or a kernel without it). */
static struct real_live *tracked_or_skip(uint8_t *addr, size_t pages)
{
	return tracked_or_skip_protect(addr, pages, REAL_LIVE_PROTECT_BY_RUN);
}

/*
 * COW events from write tracking (review of baca2ef): merged pages on the
 * tracking userfaultfd, written every way a guest writes - a store to a page
 * never touched since the merge (a write-protect marker) or read first (a
 * protected PTE), read(2) into it (the kernel's copy_to_user), pwrite to
 * /proc/self/mem (a forced GUP write), process_vm_writev, MADV_POPULATE_WRITE
 * - each shows as a COW break at the next poll, once, with the written bytes
 * kept; a page written and then unmerged or discarded before any scan saw it
 * is counted once (the frame's count never drops below its real sharers, so
 * it is never punched under one); every untouched sharer keeps the frame's
 * bytes to the end.
 */
SP_TEST(cow_from_tracking_every_writer)
{
	enum { N = 64, NW = 7 };
	uint8_t *m = map_pages(N), want[PS];
	struct real_live_config lc = { NULL, false, 0, true, true, REAL_LIVE_PROTECT_BY_RUN, REAL_LIVE_FREEZE_MOVE };
	struct real_live *L;
	struct backend b;
	struct real_live_stats st;
	bk_frame f;
	int cows = 0, fds[2], mem;
	volatile uint8_t sink = 0;

	for (int i = 0; i < N; i++)
		fill(m + i * PS, 77);
	memcpy(want, m, PS);
	if (!(L = live_or_skip(m, N, &lc)))
		return;
	real_live_stats(L, &st);
	if (!st.cow_from_tracking) {
		sp_test_skip("COW events from write tracking unavailable: %s",
			     real_live_tracking_off(L) ? real_live_tracking_off(L) : "cow_events refused");
		real_live_free(L);
		munmap(m, N * PS);
		return;
	}
	b = real_live_backend(L);
	CU_ASSERT_EQUAL_FATAL(b.ops->merge_pages(L, 1, 0, &f), 0);
	for (bk_page p = 2; p < N; p++)
		CU_ASSERT_EQUAL_FATAL(b.ops->merge_frame(L, p, f), 0);
	CU_ASSERT_EQUAL(b.ops->frame_mappers(L, f), N);
	/* No poll yet: its sweep would mark the windows read for 2 s. */
	/* Odd pages are read (a present, protected PTE); even ones stay untouched (a marker). */
	for (int i = 1; i < N; i += 2)
		sink ^= m[i * PS + 3];
	(void)sink;
	/* Seven writers, on pages 10..16 (even: never touched since the merge). */
	m[10 * PS + 1] ^= 0x11;
	m[11 * PS + 1] ^= 0x11;
	CU_ASSERT_EQUAL_FATAL(pipe(fds), 0);
	CU_ASSERT_EQUAL_FATAL(write(fds[1], "0123456789abcdef", 16), 16);
	CU_ASSERT_EQUAL(read(fds[0], m + 12 * PS + 100, 8), 8);
	CU_ASSERT_EQUAL(read(fds[0], m + 13 * PS + 100, 8), 8);
	close(fds[0]);
	close(fds[1]);
	mem = open("/proc/self/mem", O_RDWR);
	CU_ASSERT_FATAL(mem >= 0);
	CU_ASSERT_EQUAL(pwrite(mem, "MEM!", 4, (off_t)(uintptr_t)(m + 14 * PS + 200)), 4);
	close(mem);
	{
		char buf[4] = "PVW!";
		struct iovec lo = { buf, 4 }, re = { m + 15 * PS + 300, 4 };

		CU_ASSERT_EQUAL(process_vm_writev(getpid(), &lo, 1, &re, 1, 0), 4);
	}
	CU_ASSERT_EQUAL(madvise(m + 16 * PS, PS, MADV_POPULATE_WRITE), 0);
	/* Two more copies that an unmerge and a discard settle before any scan sees them. */
	m[20 * PS + 7] ^= 0x22;
	m[21 * PS + 7] ^= 0x22;
	CU_ASSERT_EQUAL(b.ops->unmerge(L, 20), 0);
	CU_ASSERT_EQUAL(real_live_discard(L, 21), 0);
	CU_ASSERT_EQUAL(b.ops->frame_mappers(L, f), N - 2);
	CU_ASSERT_EQUAL(m[20 * PS + 7], want[7] ^ 0x22);
	/* The first poll finds the seven, and only them (its sweep reads the windows no scan read). */
	CU_ASSERT_EQUAL(real_live_poll(L, N, count_cb, &cows), NW);
	CU_ASSERT_EQUAL(cows, NW);
	CU_ASSERT_EQUAL(b.ops->frame_mappers(L, f), N - 2 - NW);
	CU_ASSERT_EQUAL(real_live_poll(L, N, count_cb, &cows), 0);
	for (bk_page p = 0; p < N; p++) {
		struct bk_page_info info;
		bool gone = (p >= 10 && p <= 16) || p == 20 || p == 21;

		b.ops->page_info(L, p, &info);
		CU_ASSERT_EQUAL(info.frame == BK_NO_FRAME, gone);
	}
	CU_ASSERT_EQUAL(m[10 * PS + 1], want[1] ^ 0x11);
	CU_ASSERT_EQUAL(m[11 * PS + 1], want[1] ^ 0x11);
	CU_ASSERT_EQUAL(memcmp(m + 12 * PS + 100, "01234567", 8), 0);
	CU_ASSERT_EQUAL(memcmp(m + 13 * PS + 100, "89abcdef", 8), 0);
	CU_ASSERT_EQUAL(memcmp(m + 14 * PS + 200, "MEM!", 4), 0);
	CU_ASSERT_EQUAL(memcmp(m + 15 * PS + 300, "PVW!", 4), 0);
	CU_ASSERT_EQUAL(memcmp(m + 16 * PS, want, PS), 0);
	CU_ASSERT_EQUAL(m[21 * PS + 7], 0);
	for (int i = 0; i < N; i++) {
		if ((i >= 10 && i <= 16) || i == 20 || i == 21)
			continue;
		CU_ASSERT_EQUAL(memcmp(m + i * PS, want, PS), 0);
	}
	/*
	 * Written copies are tracked private pages now, each in a VMA of its own:
	 * outside a current window written() answers "written" (hashing such a
	 * page is cheaper than a scan of it alone), and a write stays in its PTE
	 * for the next window scan.
	 */
	CU_ASSERT_EQUAL(b.ops->written(L, 10), 1);
	CU_ASSERT_EQUAL(b.ops->written(L, 10), 1);
	/* Every sharer but page 0 leaves by a write: the frame is freed with its last one, page 0 intact. */
	for (int i = 1; i < N; i++)
		m[i * PS + 4000] ^= 0x33;
	for (int k = 0; k < 3 && b.ops->frame_mappers(L, f) > 1; k++) {
		real_live_flush(L);
		for (bk_page p = 0; p < N; p++)
			b.ops->written(L, p); /* the visits' window scans report them */
		real_live_poll(L, N, count_cb, &cows);
	}
	CU_ASSERT_EQUAL(b.ops->frame_mappers(L, f), 1);
	CU_ASSERT_EQUAL(memcmp(m, want, PS), 0);
	m[4000] ^= 0x33;
	CU_ASSERT_EQUAL(real_live_check(L, 0, count_cb, &cows), 1);
	real_live_stats(L, &st);
	CU_ASSERT_EQUAL(st.frames, 0);
	CU_ASSERT_EQUAL(st.pool_bytes, 0);
	for (int i = 0; i < N; i++)
		CU_ASSERT_EQUAL(m[i * PS + 4000], (i == 21 ? 0 : want[4000]) ^ 0x33);
	CU_ASSERT_EQUAL(memcmp(m + 30 * PS, want, 4000), 0);
	real_live_free(L);
	munmap(m, N * PS);
}

struct late_write {
	volatile uint8_t *at;
	volatile int done;
};

static void *late_writer(void *arg)
{
	struct late_write *w = arg;

	*w->at = 0xA5; /* waits in the kernel while the page is protected for its merge */
	w->done = 1;
	return NULL;
}

/*
 * A write landing between a merge's compare and its remap, on a page never
 * touched before the merge (its PTE empty when write-protected: the
 * protection must hold all the same, or the remap drops the write).  Remaps
 * are deferred so the window stays open; the writer must wait for the remap
 * and then write into its COW copy.  With and without write tracking.
 */
static void write_between_compare_and_remap(bool track)
{
	enum { N = 8 };
	uint8_t *m = map_pages(N);
	struct real_live_config lc = { NULL, false, 0, track, track, REAL_LIVE_PROTECT_BY_RUN, REAL_LIVE_FREEZE_MOVE };
	struct real_live *L;
	struct backend b;
	struct late_write w = { m + 3 * PS + 10, 0 };
	pthread_t th;
	bk_frame f;
	int cows = 0;

	if (!(L = live_or_skip(m, N, &lc)))
		return;
	b = real_live_backend(L);
	/* Pages 0, 1 and 3: zero content, never touched; 0 and 1 make the frame. */
	CU_ASSERT_EQUAL_FATAL(b.ops->merge_pages(L, 1, 0, &f), 0);
	real_live_defer_remaps(L, true);
	CU_ASSERT_EQUAL_FATAL(b.ops->merge_frame(L, 3, f), 0); /* compared, remap pending */
	pthread_create(&th, NULL, late_writer, &w);
	usleep(100000);
	CU_ASSERT_EQUAL(w.done, 0); /* the protection holds the writer */
	real_live_defer_remaps(L, false); /* the remap, then the writer goes on */
	pthread_join(th, NULL);
	CU_ASSERT_EQUAL(m[3 * PS + 10], 0xA5);
	CU_ASSERT_EQUAL(real_live_check(L, 3, count_cb, &cows), 1);
	CU_ASSERT_EQUAL(m[3 * PS + 10], 0xA5);
	CU_ASSERT_EQUAL(b.ops->frame_mappers(L, f), 2);
	CU_ASSERT_EQUAL(m[10], 0);
	real_live_free(L);
	CU_ASSERT_EQUAL(m[3 * PS + 10], 0xA5);
	munmap(m, N * PS);
}

SP_TEST(write_between_compare_and_remap_untouched)
{
	write_between_compare_and_remap(false);
}

SP_TEST(write_between_compare_and_remap_untouched_tracked)
{
	write_between_compare_and_remap(true);
}

static uint64_t vma_count(void)
{
	FILE *f = fopen("/proc/self/maps", "r");
	uint64_t n = 0;
	int c;

	CU_ASSERT_FATAL(f != NULL);
	while ((c = getc(f)) != EOF)
		n += c == '\n';
	fclose(f);
	return n;
}

struct poke {
	uint8_t *addr;
	int fd; /* read(2) into addr: a write the kernel makes */
};

static void *poke_thread(void *arg)
{
	struct poke *k = arg;

	k->addr[0] ^= 1; /* another thread's store */
	if (read(k->fd, k->addr + 64, 8) != 8)
		k->addr[64] ^= 1;
	return NULL;
}

static void sees_every_write(uint8_t protect)
{
	enum { N = 1024 };
	uint8_t *m = map_pages(N);
	struct real_live *L;
	struct backend b;
	struct real_live_stats st;
	int fds[2];
	pthread_t th;
	struct poke k;
	unsigned dirty = 0;

	for (unsigned i = 0; i < N; i++)
		fill(m + (size_t)i * PS, i);
	if (!(L = tracked_or_skip_protect(m, N, protect)))
		return;
	b = real_live_backend(L);
	CU_ASSERT_PTR_NOT_NULL_FATAL(b.ops->written);
	/* First visit: unknown, so "written"; then nothing was written. */
	for (bk_page p = 0; p < N; p++)
		CU_ASSERT_EQUAL(b.ops->written(L, p), 1);
	for (bk_page p = 0; p < N; p++)
		CU_ASSERT_EQUAL(b.ops->written(L, p), 0);
	/* Writes: a store here, one from another thread, one by the kernel (read(2)). */
	m[5 * PS + 17] ^= 0xFF;
	CU_ASSERT_EQUAL_FATAL(pipe(fds), 0);
	CU_ASSERT_EQUAL_FATAL(write(fds[1], "abcdefgh", 8), 8);
	k = (struct poke){ m + 700 * PS, fds[0] };
	pthread_create(&th, NULL, poke_thread, &k);
	pthread_join(th, NULL);
	CU_ASSERT_EQUAL(memcmp(m + 700 * PS + 64, "abcdefgh", 8), 0);
	close(fds[0]);
	close(fds[1]);
	for (bk_page p = 0; p < N; p++) {
		int w = b.ops->written(L, p);

		CU_ASSERT_EQUAL(w, p == 5 || p == 700);
		dirty += (unsigned)w;
	}
	CU_ASSERT_EQUAL(dirty, 2);
	/* A written page is clean again at the following visit. */
	CU_ASSERT_EQUAL(b.ops->written(L, 5), 0);
	/*
	 * A write after its window was read (at the call for page 5) is
	 * reported by this call or, the window being current, by the next one:
	 * exactly once, never lost.
	 */
	m[6 * PS] ^= 1;
	{
		int w1 = b.ops->written(L, 6), w2 = b.ops->written(L, 6);

		CU_ASSERT_EQUAL(w1 + w2, 1);
	}
	CU_ASSERT_EQUAL(b.ops->written(L, 6), 0);
	/* After a batch (real_live_flush) windows are read again: the write is seen at once. */
	m[7 * PS] ^= 1;
	real_live_flush(L);
	CU_ASSERT_EQUAL(b.ops->written(L, 7), 1);
	real_live_stats(L, &st);
	CU_ASSERT(st.tracking);
	CU_ASSERT(st.track_scans > 0);
	CU_ASSERT(protect == REAL_LIVE_PROTECT_BY_RUN ? st.track_wp_calls > 0 : st.track_wp_calls == 0);
	real_live_free(L);
	munmap(m, (size_t)N * PS);
}

/* Both ways of protecting written pages again after a window read. */
SP_TEST(tracking_sees_every_write)
{
	sees_every_write(REAL_LIVE_PROTECT_BY_RUN);
	sees_every_write(REAL_LIVE_PROTECT_IN_READ);
}

SP_TEST(tracking_survives_merges)
{
	enum { N = 64 };
	uint8_t *m = map_pages(N), want[PS];
	struct real_live *L;
	struct backend b;
	bk_frame f;
	uint64_t v0, v1;
	int cows = 0;

	for (unsigned i = 0; i < N; i++)
		fill(m + (size_t)i * PS, i < 8 ? 7 : i);
	memset(m + 40 * PS, 0, PS);
	if (!(L = tracked_or_skip(m, N)))
		return;
	b = real_live_backend(L);
	for (bk_page p = 0; p < N; p++)
		b.ops->written(L, p);
	v0 = vma_count();
	/* Merges need the page blocked from writers: out of tracking, and back if refused. */
	CU_ASSERT_EQUAL(b.ops->merge_pages(L, 1, 0, &f), 0);
	CU_ASSERT_EQUAL(b.ops->merge_frame(L, 2, f), 0);
	CU_ASSERT_EQUAL(b.ops->merge_frame(L, 20, f), SP_ECHANGED);
	CU_ASSERT_EQUAL(b.ops->written(L, 20), 1); /* unknown after the attempt */
	CU_ASSERT_EQUAL(b.ops->written(L, 20), 0); /* tracked again */
	m[20 * PS] ^= 1;
	CU_ASSERT_EQUAL(b.ops->written(L, 20), 1);
	/* The zero page: merged, then its page rejoins the tracked VMA (no VMA left behind). */
	v1 = vma_count();
	CU_ASSERT_EQUAL(b.ops->merge_zero(L, 40), 0);
	CU_ASSERT_EQUAL(vma_count(), v1);
	CU_ASSERT_EQUAL(m[40 * PS + 9], 0);
	b.ops->written(L, 40);
	CU_ASSERT_EQUAL(b.ops->written(L, 40), 0);
	m[40 * PS + 9] = 5; /* COW of the zero page: seen by both */
	CU_ASSERT_EQUAL(b.ops->written(L, 40), 1);
	CU_ASSERT_EQUAL(real_live_check(L, 40, count_cb, &cows), 1);
	/* Merged pages keep their data and break on write as before. */
	fill(want, 7);
	for (int i = 0; i < 3; i++)
		CU_ASSERT_EQUAL(memcmp(m + i * PS, want, PS), 0);
	m[2 * PS + 3] ^= 0x55;
	CU_ASSERT_EQUAL(real_live_check(L, 2, count_cb, &cows), 1);
	CU_ASSERT_EQUAL(cows, 2);
	CU_ASSERT_EQUAL(memcmp(m, want, PS), 0);
	CU_ASSERT(vma_count() > v0); /* the merged pages live in file mappings */
	CU_ASSERT_EQUAL(real_live_unmerge_all(L, NULL, NULL), 0);
	real_live_free(L);
	munmap(m, (size_t)N * PS);
}

/* The ksm algorithm on live memory with and without write tracking: the same merges. */
static void engine_run(uint8_t *m, size_t n, bool track, struct metrics *out)
{
	struct real_live_config lc = { NULL, false, 0, track, false, REAL_LIVE_PROTECT_BY_RUN, REAL_LIVE_FREEZE_MOVE };
	struct real_engine_config ec = { 0 };
	struct real_engine *e;
	struct real_live *L;
	struct sp_err err = { 0 };
	uint64_t sleep;

	for (unsigned i = 0; i < n; i++)
		fill(m + (size_t)i * PS, i % 3 == 0 ? 1000 + i : i % 16);
	L = live_or_skip(m, n, &lc);
	CU_ASSERT_PTR_NOT_NULL_FATAL(L);
	ec.algo = algo_find("ksm");
	algo_params_defaults(ec.algo, &ec.params);
	CU_ASSERT_EQUAL_FATAL(algo_params_set(ec.algo, &ec.params, "pages_to_scan=100", &err), 0);
	CU_ASSERT_EQUAL_FATAL(algo_params_set(ec.algo, &ec.params,
					      track ? "write_tracking=1" : "write_tracking=0", &err), 0);
	CU_ASSERT_EQUAL_FATAL(real_engine_new(&e, L, &ec, &err), 0);
	for (int i = 0; i < 200; i++) {
		real_engine_lock(e);
		CU_ASSERT_EQUAL(real_engine_step(e, &sleep), 0);
		real_engine_unlock(e);
		if (i == 100)
			m[3 * PS] ^= 1; /* a page of a merged content: COW, then re-merged */
	}
	memset(out, 0, sizeof(*out));
	real_engine_metrics(e, out);
	real_engine_free(e);
	CU_ASSERT_EQUAL(real_live_unmerge_all(L, NULL, NULL), 0);
	real_live_free(L);
}

SP_TEST(tracking_engine_merges_the_same)
{
	enum { N = 512 };
	uint8_t *m = map_pages(N);
	struct real_live *L;
	struct metrics a, t;

	if (!(L = tracked_or_skip(m, N))) {
		munmap(m, (size_t)N * PS);
		return;
	}
	real_live_free(L);
	engine_run(m, N, false, &a);
	engine_run(m, N, true, &t);
	printf("pages_sharing %lld / %lld, merges %lld / %lld, cow %lld / %lld, checksums %lld / %lld "
	       "(hashing every visit / write tracking)\n",
	       (long long)a.pages_sharing, (long long)t.pages_sharing, (long long)a.merges,
	       (long long)t.merges, (long long)a.cow_breaks, (long long)t.cow_breaks,
	       (long long)a.checksums, (long long)t.checksums);
	CU_ASSERT(a.pages_sharing > 0);
	CU_ASSERT_EQUAL(t.pages_sharing, a.pages_sharing);
	CU_ASSERT_EQUAL(t.pages_shared, a.pages_shared);
	CU_ASSERT_EQUAL(t.merges, a.merges);
	CU_ASSERT_EQUAL(t.cow_breaks, a.cow_breaks);
	CU_ASSERT_EQUAL(t.full_scans, a.full_scans);
	CU_ASSERT(t.checksums < a.checksums / 2);
	munmap(m, (size_t)N * PS);
}

/* ---- fake two-node topology ------------------------------------------------ */

struct fake {
	uint8_t *base;
	size_t half; /* pages [0, half) on node 0, the rest on node 1 */
};

static int fake_node(void *arg, const void *addr)
{
	struct fake *f = arg;

	return (size_t)((const uint8_t *)addr - f->base) / PS < f->half ? 0 : 1;
}

/* Runs the ksm algorithm through the engine (no thread) over a fake 2-node layout. */
static void numa_case(int across, uint64_t *remote_out, bool *crossed, uint32_t *frames_on_1)
{
	enum { N = 256 };
	uint8_t *m = map_pages(N);
	struct fake fk = { m, N / 2 };
	struct real_live_topo topo = { 2, fake_node, &fk, false };
	struct real_live_config lc = { &topo, across == 0, 0, false, false, REAL_LIVE_PROTECT_BY_RUN, REAL_LIVE_FREEZE_MOVE };
	struct real_engine_config ec = { 0 };
	struct real_engine *e;
	struct real_live *L;
	struct backend b;
	struct metrics mt;
	struct sp_err err = { 0 };
	uint64_t remote = 0;
	char kv[64];

	/* Contents: 8 shared by pages of both nodes, 4 only on node 1 (pages 192..). */
	for (int i = 0; i < N; i++)
		fill(m + i * PS, i >= 192 ? 100u + (unsigned)(i % 4) : (unsigned)(i % 8));
	*crossed = false;
	*frames_on_1 = 0;
	if (!(L = live_or_skip(m, N, &lc)))
		return;
	b = real_live_backend(L);
	CU_ASSERT_EQUAL(b.ops->nnodes(L), 2);
	ec.algo = algo_find("ksm");
	CU_ASSERT_FATAL(ec.algo != NULL);
	algo_params_defaults(ec.algo, &ec.params);
	snprintf(kv, sizeof(kv), "merge_across_nodes=%d", across);
	CU_ASSERT_EQUAL_FATAL(algo_params_set(ec.algo, &ec.params, kv, &err), 0);
	CU_ASSERT_EQUAL_FATAL(algo_params_set(ec.algo, &ec.params, "pages_to_scan=1000", &err), 0);
	CU_ASSERT_EQUAL_FATAL(real_engine_new(&e, L, &ec, &err), 0);
	for (int i = 0; i < 6; i++) {
		uint64_t sleep;

		real_engine_lock(e);
		CU_ASSERT_EQUAL(real_engine_step(e, &sleep), 0);
		real_engine_unlock(e);
	}
	real_engine_metrics(e, &mt);
	/* Independent count: every merged page against its frame's node. */
	for (bk_page p = 0; p < N; p++) {
		struct bk_page_info info;

		b.ops->page_info(L, p, &info);
		CU_ASSERT_EQUAL(info.node, p < N / 2 ? 0u : 1u);
		if (info.frame == BK_NO_FRAME)
			continue;
		if (b.ops->frame_node(L, info.frame) != info.node) {
			remote++;
			*crossed = true;
		}
		if (p >= 192 && b.ops->frame_node(L, info.frame) == 1)
			(*frames_on_1)++;
	}
	CU_ASSERT_EQUAL((uint64_t)mt.remote_sharers, remote);
	/* Every page merged but the first of each content (per node when across=0). */
	CU_ASSERT_EQUAL(mt.pages_sharing, across ? N - 12 : N - 20);
	*remote_out = remote;
	real_engine_free(e);
	real_live_free(L);
	munmap(m, N * PS);
}

SP_TEST(numa_fake_no_cross_node_sharing)
{
	uint64_t remote = 1;
	bool crossed = true;
	uint32_t on1;

	numa_case(0, &remote, &crossed, &on1);
	CU_ASSERT_EQUAL(remote, 0);
	CU_ASSERT_FALSE(crossed);
}

SP_TEST(numa_fake_across_places_and_counts_remote)
{
	uint64_t remote = 0;
	bool crossed = false;
	uint32_t on1 = 0;

	numa_case(1, &remote, &crossed, &on1);
	/* Shared contents span both nodes: some sharers are remote, and counted. */
	CU_ASSERT(remote > 0);
	/* Contents only on node 1 have both first sharers there: frames on node 1. */
	CU_ASSERT_EQUAL(on1, 64);
}

SP_TEST(numa_fake_frames_follow_their_majority)
{
	/*
	 * One content on 4 pages: pages 0 and 1 on node 0 merge first (frame on
	 * node 0), then pages 2 and 3 on node 1 join, and page 1 is rewritten:
	 * 2 of the 3 sharers are on node 1, so rebalancing moves the frame there
	 * and remote_sharers goes from 2 to 1.
	 */
	enum { N = 4 };
	uint8_t *m = map_pages(N);
	struct fake fk = { m, 2 };
	struct real_live_topo topo = { 2, fake_node, &fk, false };
	struct real_live_config lc = { &topo, false, 0, false, false, REAL_LIVE_PROTECT_BY_RUN, REAL_LIVE_FREEZE_MOVE };
	struct real_live *L;
	struct backend b;
	struct bk_page_info info;
	struct metrics mt;
	bk_frame f;
	uint64_t moved = 0;

	for (int i = 0; i < N; i++)
		fill(m + i * PS, 7);
	if (!(L = live_or_skip(m, N, &lc)))
		return;
	b = real_live_backend(L);
	CU_ASSERT_EQUAL_FATAL(b.ops->merge_pages(L, 1, 0, &f), 0);
	CU_ASSERT_EQUAL(b.ops->frame_node(L, f), 0);
	CU_ASSERT_EQUAL_FATAL(b.ops->merge_frame(L, 2, f), 0);
	CU_ASSERT_EQUAL_FATAL(b.ops->merge_frame(L, 3, f), 0);
	memset(&mt, 0, sizeof(mt));
	real_live_metrics(L, &mt);
	CU_ASSERT_EQUAL(mt.remote_sharers, 2);
	/* Nothing to move while node 0 holds 2 of 4 (a tie keeps the frame). */
	CU_ASSERT_EQUAL(real_live_rebalance(L, &moved), 0);
	CU_ASSERT_EQUAL(moved, 0);
	m[1 * PS + 5] ^= 1; /* page 1 writes: a COW break */
	CU_ASSERT_EQUAL(real_live_check(L, 1, NULL, NULL), 1);
	CU_ASSERT_EQUAL(real_live_rebalance(L, &moved), 0);
	CU_ASSERT_EQUAL(moved, 1);
	b.ops->page_info(L, 2, &info);
	CU_ASSERT_EQUAL(b.ops->frame_node(L, info.frame), 1);
	memset(&mt, 0, sizeof(mt));
	real_live_metrics(L, &mt);
	CU_ASSERT_EQUAL(mt.remote_sharers, 1); /* page 0, on node 0 */
	CU_ASSERT_EQUAL(m[0], m[3 * PS]);       /* contents untouched */
	real_live_free(L);
	munmap(m, N * PS);
}

/* ---- freeze by move against concurrent writers and readers ---------------- */

/*
 * A merge freezes its page by moving it out of its place (live.c, "Freeze
 * by move"): its PTE is empty until the frame is mapped there or the page
 * moves back.  Writers rewrite their own pages with whole templates and
 * check each write at once; readers check pages nobody writes (never zero,
 * never anything but their template) while the main thread merges every
 * page over and over onto frames of the templates, settles COW breaks
 * (whose copies live in pool mappings: no move for those, they fall back to
 * write protection), unmerges, and a forked child keeps some pages shared
 * (not exclusive: the kernel refuses to move them, EBUSY, the other
 * fallback).  No write may be lost or torn, no reader may see a frozen
 * page's hole, and both ways must have been taken.
 */
enum { FZ_PAGES = 512, FZ_T = 4, FZ_STATIC = 128 }; /* pages [0, FZ_STATIC) are read, never written */

struct fz {
	uint8_t *m;
	uint8_t tmpl[FZ_T][PS];
	uint8_t cur[FZ_PAGES]; /* template of each page (its writer's journal) */
	volatile int stop;
	uint64_t writes, reads, bad_w, bad_r;
	unsigned id;
};

struct fz_arg {
	struct fz *z;
	unsigned w;
};

static void *fz_writer(void *arg)
{
	struct fz_arg *a = arg;
	struct fz *z = a->z;
	uint64_t r = 0x9e3779b97f4a7c15ull * (a->w + 1), n = 0;

	while (!z->stop) {
		uint32_t p;
		uint8_t t;

		r ^= r << 13;
		r ^= r >> 7;
		r ^= r << 17;
		/* Writer w owns pages FZ_STATIC + w, + 2, ... below FZ_PAGES. */
		p = FZ_STATIC + (uint32_t)(r % ((FZ_PAGES - FZ_STATIC) / 2)) * 2 + a->w;
		t = (uint8_t)((z->cur[p] + 1 + (r >> 32) % (FZ_T - 1)) % FZ_T);
		memcpy(z->m + (size_t)p * PS, z->tmpl[t], PS);
		z->cur[p] = t;
		if (memcmp(z->m + (size_t)p * PS, z->tmpl[t], PS) != 0)
			__atomic_fetch_add(&z->bad_w, 1, __ATOMIC_RELAXED);
		if ((++n & 7) == 0)
			usleep(50);
	}
	__atomic_fetch_add(&z->writes, n, __ATOMIC_RELAXED);
	return NULL;
}

static void *fz_reader(void *arg)
{
	struct fz *z = arg;
	uint64_t n = 0;

	while (!z->stop) {
		for (uint32_t p = 0; p < FZ_STATIC && !z->stop; p++) {
			if (memcmp(z->m + (size_t)p * PS, z->tmpl[p % FZ_T], PS) != 0)
				__atomic_fetch_add(&z->bad_r, 1, __ATOMIC_RELAXED);
			n++;
		}
		usleep(20);
	}
	__atomic_fetch_add(&z->reads, n, __ATOMIC_RELAXED);
	return NULL;
}

static void freeze_under_writers(uint8_t freeze, bool track)
{
	struct fz *z = calloc(1, sizeof(*z));
	struct real_live_config lc = { NULL, false, 0, track, track, REAL_LIVE_PROTECT_BY_RUN, freeze };
	struct real_live *L;
	struct real_live_stats st;
	struct backend b;
	bk_frame frame[FZ_T];
	pthread_t wt[2], rt;
	struct fz_arg wa[2];
	uint64_t merges = 0, changed = 0, unmerges = 0, r = sp_test_seed() | 1, t_end;
	int cows = 0, child_pipe[2];
	pid_t child;

	CU_ASSERT_FATAL(z != NULL);
	z->m = map_pages(FZ_PAGES + 2 * FZ_T); /* + the frames' own pages, never touched by the threads */
	for (unsigned t = 0; t < FZ_T; t++)
		fill(z->tmpl[t], 7000 + t);
	for (uint32_t p = 0; p < FZ_PAGES + 2 * FZ_T; p++) {
		uint8_t t = (uint8_t)(p % FZ_T);

		memcpy(z->m + (size_t)p * PS, z->tmpl[t], PS);
		if (p < FZ_PAGES)
			z->cur[p] = t;
	}
	if (!(L = live_or_skip(z->m, FZ_PAGES + 2 * FZ_T, &lc))) {
		munmap(z->m, (FZ_PAGES + 2 * FZ_T) * PS);
		free(z);
		return;
	}
	b = real_live_backend(L);
	for (unsigned t = 0; t < FZ_T; t++)
		CU_ASSERT_EQUAL_FATAL(b.ops->merge_pages(L, FZ_PAGES + FZ_T + t, FZ_PAGES + t, &frame[t]), 0);
	/* A child shares every page not written since (not exclusive: no move for those). */
	CU_ASSERT_FATAL(pipe(child_pipe) == 0);
	child = fork();
	if (child == 0) {
		char c;

		close(child_pipe[1]);
		(void)!read(child_pipe[0], &c, 1); /* until the parent closes its end */
		_exit(0);
	}
	CU_ASSERT_FATAL(child > 0);
	close(child_pipe[0]);
	real_live_defer_remaps(L, true);
	for (unsigned w = 0; w < 2; w++) {
		wa[w] = (struct fz_arg){ z, w };
		pthread_create(&wt[w], NULL, fz_writer, &wa[w]);
	}
	pthread_create(&rt, NULL, fz_reader, z);
	t_end = sp_mono_ns() + 2000000000ull;
	for (uint64_t k = 0; sp_mono_ns() < t_end; k++) {
		struct bk_page_info info;
		bk_page p;
		int rc;

		r ^= r << 13;
		r ^= r >> 7;
		r ^= r << 17;
		p = r % FZ_PAGES;
		b.ops->page_info(L, p, &info);
		if (info.frame == BK_NO_FRAME) {
			/* Onto the frame of its template, or of another one now and then (refused). */
			unsigned t = (unsigned)((p % FZ_T + ((r >> 40) % 4 == 0)) % FZ_T);

			rc = b.ops->merge_frame(L, p, frame[t]);
			/* SP_EPINNED: a page once shared with the child may read exclusive
			 * in pagemap while the kernel, not sure it is, refuses to move it:
			 * taken for a pin, its merge refused (nothing changes). */
			CU_ASSERT(rc == 0 || rc == SP_ECHANGED || rc == SP_EPINNED);
			merges += rc == 0;
			changed += rc == SP_ECHANGED;
		} else if ((r >> 50) % 8 == 0) {
			CU_ASSERT_EQUAL(b.ops->unmerge(L, p), 0);
			unmerges++;
		}
		if (k % 16 == 15) {
			real_live_flush(L); /* a batch: its runs remapped, writers and readers go on */
			CU_ASSERT(real_live_poll(L, FZ_PAGES, count_cb, &cows) >= 0);
		}
	}
	real_live_flush(L);
	z->stop = 1;
	for (unsigned w = 0; w < 2; w++)
		pthread_join(wt[w], NULL);
	pthread_join(rt, NULL);
	close(child_pipe[1]);
	waitpid(child, NULL, 0);
	CU_ASSERT(real_live_poll(L, FZ_PAGES, count_cb, &cows) >= 0);
	real_live_stats(L, &st);
	printf("freeze %s, tracking %s: %llu merges, %llu refused (changed), %llu unmerges, %d COW breaks; "
	       "%llu writes, %llu reads; moved %llu (back %llu), protected %llu (in pool mappings %llu), "
	       "moves refused EBUSY %llu EINVAL %llu ENOENT %llu other %llu, %llu taken for pins, %llu staging drops, %llu errors; "
	       "lost or torn: %llu writes, %llu reads\n",
	       freeze == REAL_LIVE_FREEZE_MOVE ? "by move" : "by protection", track ? "on" : "off",
	       (unsigned long long)merges, (unsigned long long)changed, (unsigned long long)unmerges, cows,
	       (unsigned long long)z->writes, (unsigned long long)z->reads,
	       (unsigned long long)st.freeze_moved, (unsigned long long)st.freeze_moved_back,
	       (unsigned long long)st.freeze_protected, (unsigned long long)st.freeze_infile,
	       (unsigned long long)st.move_refused[0], (unsigned long long)st.move_refused[1],
	       (unsigned long long)st.move_refused[2], (unsigned long long)st.move_refused[3],
	       (unsigned long long)st.pinned_refusals, (unsigned long long)st.stage_drops,
	       (unsigned long long)st.freeze_errors, (unsigned long long)z->bad_w, (unsigned long long)z->bad_r);
	CU_ASSERT_EQUAL(z->bad_w, 0);
	CU_ASSERT_EQUAL(z->bad_r, 0);
	CU_ASSERT(merges > 100);
	CU_ASSERT(changed > 0);
	CU_ASSERT(cows > 0);
	CU_ASSERT_EQUAL(st.freeze_errors, 0);
	if (freeze == REAL_LIVE_FREEZE_MOVE && st.freeze_move) {
		CU_ASSERT(st.freeze_moved > 0);
		CU_ASSERT(st.freeze_moved_back > 0);   /* refused merges of moved pages */
		CU_ASSERT(st.freeze_infile > 0);       /* COW copies: protected */
		CU_ASSERT(st.move_refused[0] > 0);     /* shared with the child: EBUSY, protected */
		/* Every EBUSY protected, or refused as a pin. */
		CU_ASSERT(st.freeze_protected + st.pinned_refusals >= st.freeze_infile + st.move_refused[0]);
	} else {
		CU_ASSERT_EQUAL(st.freeze_moved, 0);
		CU_ASSERT(st.freeze_protected > 0);
	}
	for (uint32_t p = 0; p < FZ_PAGES; p++)
		CU_ASSERT_EQUAL(memcmp(z->m + (size_t)p * PS, z->tmpl[z->cur[p]], PS), 0);
	CU_ASSERT_EQUAL(real_live_unmerge_all(L, NULL, NULL), 0);
	for (uint32_t p = 0; p < FZ_PAGES; p++)
		CU_ASSERT_EQUAL(memcmp(z->m + (size_t)p * PS, z->tmpl[z->cur[p]], PS), 0);
	real_live_free(L);
	munmap(z->m, (FZ_PAGES + 2 * FZ_T) * PS);
	free(z);
}

/*
 * A page pinned for I/O (here by io_uring's registered buffers, a long-term
 * pin as a device's DMA or an O_DIRECT read in flight takes) is not merged:
 * a write through the pin would land in the page the remap replaced.  The
 * kernel refuses to move a pinned page (EBUSY); the backend takes that
 * refusal of an exclusive page for a pin and refuses the merge (SP_EPINNED),
 * the page and its partner left as they were; unpinned, it merges.
 */
SP_TEST(pinned_page_not_merged_by_move)
{
	uint8_t *m = map_pages(2), snap[PS];
	struct io_uring_params up;
	struct iovec iov = { m + PS, PS };
	struct real_live *L = NULL;
	struct real_live_stats st;
	struct backend b;
	bk_frame f;
	int ring;

	fill(m, 7);
	fill(m + PS, 7);
	memcpy(snap, m, PS);
	memset(&up, 0, sizeof(up));
	ring = (int)syscall(SYS_io_uring_setup, 4, &up);
	if (ring < 0) {
		sp_test_skip("io_uring unavailable (%s): no way to pin a page here", strerror(errno));
		goto out;
	}
	if (syscall(SYS_io_uring_register, ring, IORING_REGISTER_BUFFERS, &iov, 1) < 0) {
		sp_test_skip("io_uring buffer registration refused (%s)", strerror(errno));
		goto out;
	}
	if (!(L = live_or_skip(m, 2, NULL)))
		goto out;
	real_live_stats(L, &st);
	if (!st.freeze_move) {
		sp_test_skip("no freeze by move (UFFDIO_MOVE, Linux 6.8+): a pin cannot be seen");
		goto out;
	}
	b = real_live_backend(L);
	CU_ASSERT_EQUAL(b.ops->merge_pages(L, 1, 0, &f), SP_EPINNED);
	real_live_stats(L, &st);
	CU_ASSERT_EQUAL(st.pinned_refusals, 1);
	CU_ASSERT_EQUAL(st.frames, 0);
	CU_ASSERT_EQUAL(memcmp(m, snap, PS), 0);
	CU_ASSERT_EQUAL(memcmp(m + PS, snap, PS), 0);
	m[5] = 1; /* both pages still writable, in place */
	m[PS + 5] = 1;
	CU_ASSERT_EQUAL(m[5], 1);
	CU_ASSERT_EQUAL(m[PS + 5], 1);
	/* Unpinned, the same pages merge. */
	CU_ASSERT_EQUAL(syscall(SYS_io_uring_register, ring, IORING_UNREGISTER_BUFFERS, NULL, 0), 0);
	CU_ASSERT_EQUAL(b.ops->merge_pages(L, 1, 0, &f), 0);
	real_live_stats(L, &st);
	CU_ASSERT_EQUAL(st.pinned_refusals, 1);
	CU_ASSERT_EQUAL(st.frames, 1);
	real_live_free(L);
	L = NULL;
	CU_ASSERT_EQUAL(m[5], 1);
	CU_ASSERT_EQUAL(m[PS + 5], 1);
out:
	if (L)
		real_live_free(L);
	if (ring >= 0)
		close(ring);
	munmap(m, 2 * PS);
}

SP_TEST(freeze_by_move_keeps_every_write)
{
	freeze_under_writers(REAL_LIVE_FREEZE_MOVE, false);
}

SP_TEST(freeze_by_move_keeps_every_write_tracked)
{
	freeze_under_writers(REAL_LIVE_FREEZE_MOVE, true);
}

SP_TEST(freeze_by_protection_keeps_every_write_tracked)
{
	freeze_under_writers(REAL_LIVE_FREEZE_PROTECT, true);
}

/* ---- integrity under concurrent writers ----------------------------------- */

#define SPAGES 4096u
#define TEMPLATES 8u
#define WRITERS 2u

struct stress {
	uint8_t *mem;
	uint8_t tmpl[TEMPLATES][PS];
	uint32_t last_seq[SPAGES];   /* journal: last sequence number written per page */
	uint8_t last_t[SPAGES];      /* and its template */
	volatile int stop;
	uint64_t writes[WRITERS];
	uint64_t bad[WRITERS];
	struct real_live *L;
	struct real_engine *e;
	uint64_t unmerges;
	uint64_t seed;
};

struct wr {
	struct stress *s;
	unsigned w;
};

/* Content of (page, seq): a template, never the one of seq - 1. */
static uint8_t content_of(uint32_t page, uint32_t seq, uint8_t prev)
{
	uint64_t h = ((uint64_t)page << 32 | seq) * 0x9e3779b97f4a7c15ull;

	return (uint8_t)((prev + 1 + (h >> 40) % (TEMPLATES - 1)) % TEMPLATES);
}

static void *writer(void *arg)
{
	struct wr *x = arg;
	struct stress *s = x->s;
	uint64_t r = s->seed ^ (x->w * 0x1234567ull + 1);

	while (!s->stop) {
		uint32_t p, q;
		uint8_t t;

		r ^= r << 13;
		r ^= r >> 7;
		r ^= r << 17;
		p = (uint32_t)(r % (SPAGES / WRITERS)) * WRITERS + x->w;
		if (p >= SPAGES)
			continue;
		t = content_of(p, s->last_seq[p] + 1, s->last_t[p]);
		memcpy(s->mem + (size_t)p * PS, s->tmpl[t], PS);
		s->last_seq[p]++;
		s->last_t[p] = t;
		s->writes[x->w]++;
		/* Check one of our own pages against the journal at once. */
		q = (uint32_t)((r >> 20) % (SPAGES / WRITERS)) * WRITERS + x->w;
		if (q < SPAGES && memcmp(s->mem + (size_t)q * PS, s->tmpl[s->last_t[q]], PS) != 0)
			s->bad[x->w]++;
		if ((s->writes[x->w] & 15) == 0)
			usleep(100); /* let merges happen between bursts */
	}
	return NULL;
}

/* Unmerges random merged pages now and then, as break_ksm would. */
static void *unmerger(void *arg)
{
	struct stress *s = arg;
	struct backend b = real_live_backend(s->L);
	uint64_t r = s->seed * 3 + 7;

	while (!s->stop) {
		real_engine_lock(s->e);
		for (int k = 0; k < 64; k++) {
			struct bk_page_info info;
			bk_page p;

			r ^= r << 13;
			r ^= r >> 7;
			r ^= r << 17;
			p = r % SPAGES;
			b.ops->page_info(s->L, p, &info);
			if (info.frame != BK_NO_FRAME && b.ops->unmerge(s->L, p) == 0) {
				real_engine_page_changed(s->e, p, ALGO_CHANGE_COW);
				s->unmerges++;
			}
		}
		real_engine_unlock(s->e);
		usleep(1000);
	}
	return NULL;
}

/*
 * Let the stress run for `seconds`; with a minimum count of events, go on a
 * second at a time until the engine has made that many merges + COW breaks
 * (this host's speed drifts by 2x within the hour), at most 4x `seconds`.
 * The assertion on the count stays: a run that never gets there fails.
 */
static double stress_wait(struct real_engine *e, double seconds, long long min)
{
	struct timespec ts = { (time_t)seconds, (long)((seconds - (double)(time_t)seconds) * 1e9) };
	struct timespec one = { 1, 0 };
	struct metrics mt;
	double t;

	nanosleep(&ts, NULL);
	for (t = seconds; t < 4 * seconds; t += 1) {
		real_engine_metrics(e, &mt);
		if (mt.merges + mt.cow_breaks >= min)
			break;
		nanosleep(&one, NULL);
	}
	return t;
}

static void stress_run(double seconds, long long min_events, bool track, bool cow)
{
	struct stress *s = calloc(1, sizeof(*s));
	struct real_live_region reg;
	struct real_engine_config ec = { 0 };
	struct sp_err err = { 0 };
	pthread_t th[WRITERS], um;
	struct wr wx[WRITERS];
	struct metrics mt;
	struct real_live_stats ls;
	uint64_t writes = 0, bad = 0, final_bad = 0;
	int rc;

	CU_ASSERT_FATAL(s != NULL);
	s->seed = sp_test_seed();
	s->mem = map_pages(SPAGES);
	for (unsigned t = 0; t < TEMPLATES; t++)
		fill(s->tmpl[t], 1000 + t);
	for (uint32_t p = 0; p < SPAGES; p++) {
		s->last_t[p] = (uint8_t)(p % TEMPLATES);
		memcpy(s->mem + (size_t)p * PS, s->tmpl[s->last_t[p]], PS);
	}
	reg = (struct real_live_region){ s->mem, (uint64_t)SPAGES * PS, 0, 0, -1 };
	{
		struct real_live_config lc = { NULL, false, 0, track, cow, REAL_LIVE_PROTECT_BY_RUN, REAL_LIVE_FREEZE_MOVE };

		rc = real_live_new(&s->L, &reg, 1, &lc, &err);
	}
	if (rc == 0 && track && real_live_tracking_off(s->L)) {
		snprintf(err.msg, sizeof(err.msg), "write tracking unavailable: %s",
			 real_live_tracking_off(s->L));
		real_live_free(s->L);
		rc = SP_ENOTSUP;
	}
	if (rc == SP_EPERM || rc == SP_ENOTSUP) {
		munmap(s->mem, (size_t)SPAGES * PS);
		free(s);
		sp_test_skip("%s", err.msg);
		return;
	}
	CU_ASSERT_EQUAL_FATAL(rc, 0);
	ec.algo = algo_find("ksm");
	algo_params_defaults(ec.algo, &ec.params);
	CU_ASSERT_EQUAL_FATAL(algo_params_set(ec.algo, &ec.params, "pages_to_scan=4096", &err), 0);
	CU_ASSERT_EQUAL_FATAL(algo_params_set(ec.algo, &ec.params, "sleep_millisecs=0", &err), 0);
	CU_ASSERT_EQUAL_FATAL(algo_params_set(ec.algo, &ec.params, "smart_scan=0", &err), 0);
	CU_ASSERT_EQUAL_FATAL(algo_params_set(ec.algo, &ec.params,
					      track ? "write_tracking=1" : "write_tracking=0", &err), 0);
	ec.poll_pages = SPAGES;
	CU_ASSERT_EQUAL_FATAL(real_engine_new(&s->e, s->L, &ec, &err), 0);
	CU_ASSERT_EQUAL_FATAL(real_engine_start(s->e, &err), 0);
	for (unsigned w = 0; w < WRITERS; w++) {
		wx[w] = (struct wr){ s, w };
		pthread_create(&th[w], NULL, writer, &wx[w]);
	}
	pthread_create(&um, NULL, unmerger, s);
	seconds = stress_wait(s->e, seconds, min_events);
	s->stop = 1;
	for (unsigned w = 0; w < WRITERS; w++)
		pthread_join(th[w], NULL);
	pthread_join(um, NULL);
	CU_ASSERT_EQUAL(real_engine_stop(s->e, &err), 0);
	real_engine_metrics(s->e, &mt);
	/* Settle the last COW breaks, then check every page against the journal. */
	real_engine_lock(s->e);
	real_live_poll(s->L, SPAGES, NULL, NULL);
	real_live_stats(s->L, &ls);
	real_engine_unlock(s->e);
	for (unsigned w = 0; w < WRITERS; w++) {
		writes += s->writes[w];
		bad += s->bad[w];
	}
	for (uint32_t p = 0; p < SPAGES; p++)
		final_bad += memcmp(s->mem + (size_t)p * PS, s->tmpl[s->last_t[p]], PS) != 0;
	if (cow) {
		/* Watched merged pages: their COW breaks arrive as faults the backend's thread answers. */
		printf("COW events: %llu write faults answered, %llu pages watched\n",
		       (unsigned long long)ls.cow_events_seen, (unsigned long long)ls.cow_armed);
		CU_ASSERT(ls.cow_events);
		CU_ASSERT(ls.cow_events_seen > 0);
	}
	if (track) {
		printf("write tracking: %llu PAGEMAP_SCAN windows, %llu visits unwritten, %llu written\n",
		       (unsigned long long)ls.track_scans, (unsigned long long)ls.track_clean,
		       (unsigned long long)ls.track_written);
		CU_ASSERT(ls.track_clean + ls.track_written > 0);
	}
	printf("freeze: moved %llu (back %llu), protected %llu (in pool mappings %llu, moves refused %llu), %llu errors\n",
	       (unsigned long long)ls.freeze_moved, (unsigned long long)ls.freeze_moved_back,
	       (unsigned long long)ls.freeze_protected, (unsigned long long)ls.freeze_infile,
	       (unsigned long long)(ls.move_refused[0] + ls.move_refused[1] + ls.move_refused[2] +
				    ls.move_refused[3]),
	       (unsigned long long)ls.freeze_errors);
	CU_ASSERT_EQUAL(ls.freeze_errors, 0);
	printf("stress %.0f s, seed %llu: %llu writes, %lld merges, %lld COW breaks, %llu unmerges "
	       "(merges + COW breaks = %lld); %llu frames at the end; engine CPU %.2f s; "
	       "lost or torn: %llu in flight, %llu at the end\n",
	       seconds, (unsigned long long)s->seed, (unsigned long long)writes, (long long)mt.merges,
	       (long long)mt.cow_breaks, (unsigned long long)s->unmerges,
	       (long long)(mt.merges + mt.cow_breaks), (unsigned long long)ls.frames,
	       (double)mt.cpu_ns / 1e9, (unsigned long long)bad, (unsigned long long)final_bad);
	CU_ASSERT_EQUAL(bad, 0);
	CU_ASSERT_EQUAL(final_bad, 0);
	CU_ASSERT(mt.merges > 0);
	CU_ASSERT(mt.cow_breaks > 0);
	/* Unmerging everything keeps every byte too, and frees every frame. */
	CU_ASSERT_EQUAL(real_live_unmerge_all(s->L, NULL, NULL), 0);
	real_live_stats(s->L, &ls);
	CU_ASSERT_EQUAL(ls.frames, 0);
	CU_ASSERT_EQUAL(ls.pool_bytes, 0);
	for (uint32_t p = 0; p < SPAGES; p++)
		CU_ASSERT_EQUAL(memcmp(s->mem + (size_t)p * PS, s->tmpl[s->last_t[p]], PS), 0);
	if (min_events)
		CU_ASSERT(mt.merges + mt.cow_breaks >= min_events);
	real_engine_free(s->e);
	real_live_free(s->L);
	munmap(s->mem, (size_t)SPAGES * PS);
	free(s);
}

static double stress_seconds(double def)
{
	const char *v = getenv("SP_STRESS_SECONDS");

	return v && atof(v) > 0 ? atof(v) : def;
}

/* SP_STRESS_MIN_EVENTS overrides a test's own minimum (a parameter, not set in
 * the environment: running the test binary whole, the 5 s tests after the
 * 60 s ones must not inherit the 10^6). */
static long long stress_min_events(long long def)
{
	const char *v = getenv("SP_STRESS_MIN_EVENTS");

	return v ? atoll(v) : def;
}

SP_TEST(stress_integrity)
{
	stress_run(stress_seconds(5), stress_min_events(0), false, false);
}

/* The criterion: at least a minute, >= 10^6 merges + COW breaks (ctest -L slow; up to 4 min). */
static void stress_long(bool track, bool cow)
{
	stress_run(stress_seconds(60), stress_min_events(1000000), track, cow);
}

SP_TEST(stress_integrity_long)
{
	stress_long(false, false);
}

/* The same with write tracking on: merges move pages between the two userfaultfds. */
SP_TEST(stress_integrity_tracked)
{
	stress_run(stress_seconds(5), stress_min_events(0), true, false);
}

/*
 * Write tracking and COW events (as `sim real replay` runs): merged pages
 * join the tracking userfaultfd, their COW breaks are found by its scans
 * while pages move between it and the merge userfaultfd.
 */
SP_TEST(stress_integrity_cow)
{
	stress_run(stress_seconds(5), stress_min_events(0), true, true);
}

/* COW events without write tracking: a thread lifts write protections while the engine merges. */
SP_TEST(stress_integrity_cow_thread)
{
	stress_run(stress_seconds(5), stress_min_events(0), false, true);
}

SP_TEST(stress_integrity_tracked_long)
{
	stress_long(true, true);
}
