/*
 * numa_guest.c - implements the in-guest half of the real two-node NUMA test
 * of the live backend (tests/real/numa_qemu.sh boots it as the job of a QEMU
 * guest started with two -numa nodes).  On a machine with exactly two NUMA
 * nodes it binds half of a region to node 0 and half to node 1 (mbind), fills
 * identical pages within and across the nodes, runs the ksm algorithm over the
 * live backend (real/live.h, real/engine.h) and checks what the kernel
 * reports, not what the bookkeeping believes:
 *   merge_across_nodes=0: no physical frame (PFN from /proc/self/pagemap) is
 *     mapped by pages of both nodes; every merged page's frame is on the
 *     page's node (move_pages); every same-node duplicate is merged;
 *     remote_sharers == 0;
 *   merge_across_nodes=1: one frame per content, on the node where most of
 *     its sharers live (content 400 is first merged on node 0, where 2 of
 *     its 8 pages are, so its frame must have been moved: the engine's
 *     rebalancing after a full scan, with move_pages); remote_sharers equals the merged pages whose frame is
 *     on the other node, counted from move_pages; a COW break of a remote
 *     sharer lowers it by one.
 * Both runs also check that every page still holds its content.  It prints
 * one line, "NUMA-GUEST PASS ..." or "NUMA-GUEST FAIL: reason", and exits
 * 0 or 1.  Needs root (userfaultfd, PFNs in pagemap).
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <numa.h>
#include <numaif.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "algorithm.h"
#include "engine.h"
#include "live.h"

#define N 512u     /* pages: [0, N/2) on node 0, [N/2, N) on node 1 */
#define HALF (N / 2)
#define UNIQUE (-1)
#define NCONTENT 512 /* content ids below this; unique pages get 1000 + page */

static long ps;
static int cid[N];    /* content id of each page, or UNIQUE */
static int home[N];   /* the node the page was bound to */
static char failmsg[512];

static int fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int fail(const char *fmt, ...)
{
	va_list ap;

	if (failmsg[0])
		return -1; /* keep the first reason */
	va_start(ap, fmt);
	vsnprintf(failmsg, sizeof(failmsg), fmt, ap);
	va_end(ap);
	return -1;
}

static void fill(uint8_t *page, unsigned content)
{
	uint64_t s = content * 0x9e3779b97f4a7c15ull + 1;

	for (long i = 0; i < ps; i += 8) {
		s ^= s << 13;
		s ^= s >> 7;
		s ^= s << 17;
		memcpy(page + i, &s, 8);
	}
}

static unsigned content_of(unsigned p)
{
	return cid[p] == UNIQUE ? 1000u + p : (unsigned)cid[p];
}

/*
 * The layout (node 0 = pages 0..255, node 1 = 256..511):
 *   X, ids 0..7:     16 pages each on node 0 (0..127), 4 on node 1 (256..287);
 *   W, ids 300..303: 16 pages each, node 0 only (128..191);
 *   Z, id 200:       1 page on node 0 (192), 8 on node 1 (352..359);
 *   Y, ids 100..103: 16 pages each, node 1 only (288..351);
 *   every other page unique.
 */
static void layout(void)
{
	for (unsigned p = 0; p < N; p++) {
		home[p] = p < HALF ? 0 : 1;
		cid[p] = UNIQUE;
		if (p < 128)
			cid[p] = (int)(p % 8);
		else if (p < 192)
			cid[p] = 300 + (int)(p % 4);
		else if (p == 192)
			cid[p] = 200;
		else if (p == 193 || p == 194)
			cid[p] = 400; /* V: its first two sharers on node 0, most on node 1 */
		else if (p >= 256 && p < 288)
			cid[p] = (int)(p % 8);
		else if (p >= 288 && p < 352)
			cid[p] = 100 + (int)(p % 4);
		else if (p >= 352 && p < 360)
			cid[p] = 200;
		else if (p >= 360 && p < 366)
			cid[p] = 400;
	}
}

/* Real node of every page now (faulting nothing in: pages must be present). */
static int real_nodes(uint8_t *m, int *out)
{
	void *addrs[N];

	for (unsigned p = 0; p < N; p++) {
		(void)*(volatile uint8_t *)(m + (size_t)p * ps); /* map the frame for reading */
		addrs[p] = m + (size_t)p * ps;
	}
	if (move_pages(0, N, addrs, NULL, out, 0) != 0)
		return fail("move_pages (query): %m");
	for (unsigned p = 0; p < N; p++)
		if (out[p] < 0)
			return fail("move_pages: page %u has no node (%d)", p, out[p]);
	return 0;
}

static int pfns(uint8_t *m, uint64_t *out)
{
	int fd = open("/proc/self/pagemap", O_RDONLY);
	off_t off = (off_t)((uintptr_t)m / (uintptr_t)ps * 8);
	ssize_t r;

	if (fd < 0)
		return fail("open /proc/self/pagemap: %m");
	r = pread(fd, out, N * 8, off);
	close(fd);
	if (r != (ssize_t)(N * 8))
		return fail("pagemap read: %zd bytes", r);
	for (unsigned p = 0; p < N; p++) {
		if (!(out[p] >> 63))
			return fail("page %u not present after reading it", p);
		out[p] &= (1ull << 55) - 1;
		if (out[p] == 0)
			return fail("pagemap shows no PFNs (not root?)");
	}
	return 0;
}

static int check_contents(uint8_t *m, const char *when)
{
	uint8_t *want = malloc((size_t)ps);

	for (unsigned p = 0; p < N; p++) {
		fill(want, content_of(p));
		if (memcmp(m + (size_t)p * ps, want, (size_t)ps) != 0) {
			free(want);
			return fail("%s: page %u lost its content", when, p);
		}
	}
	free(want);
	return 0;
}

struct result {
	int64_t pages_sharing, remote_sharers, measured_remote, frames;
	int z_node;
	uint64_t cow_remote_before, cow_remote_after;
	int cow_page_node;
};

/* Groups: pages with the same content (and, when per_node, the same node). */
static int group_of(unsigned p, bool per_node)
{
	if (cid[p] == UNIQUE)
		return -1;
	return per_node ? cid[p] * 2 + home[p] : cid[p] * 2;
}

static int run(int across, struct result *res)
{
	size_t len = (size_t)N * ps;
	uint8_t *m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	unsigned long mask0 = 1, mask1 = 2;
	struct real_live_region reg;
	struct real_live_config lc = { NULL, across == 0, 0, false, false, REAL_LIVE_PROTECT_BY_RUN, REAL_LIVE_FREEZE_MOVE };
	struct real_engine_config ec = { 0 };
	struct real_engine *e = NULL;
	struct real_live *L = NULL;
	struct backend b;
	struct metrics mt;
	struct sp_err err = { 0 };
	static int node_now[N];
	static uint64_t pfn[N];
	static int gsize[2 * NCONTENT], gnodes[2 * NCONTENT][2];
	static uint64_t gpfn[2 * NCONTENT];
	int64_t expect_sharing = 0, prev = -1, remote = 0, frames = 0;
	char kv[64];
	int rc = -1;

	memset(res, 0, sizeof(*res));
	if (m == MAP_FAILED)
		return fail("mmap: %m");
	madvise(m, len, MADV_NOHUGEPAGE);
	if (mbind(m, len / 2, MPOL_BIND, &mask0, 8, 0) < 0 ||
	    mbind(m + len / 2, len / 2, MPOL_BIND, &mask1, 8, 0) < 0) {
		fail("mbind: %m");
		goto out;
	}
	for (unsigned p = 0; p < N; p++)
		fill(m + (size_t)p * ps, content_of(p));
	if (real_nodes(m, node_now) < 0)
		goto out;
	for (unsigned p = 0; p < N; p++)
		if (node_now[p] != home[p]) {
			fail("setup: page %u bound to node %d is on node %d", p, home[p], node_now[p]);
			goto out;
		}

	reg = (struct real_live_region){ m, len, 0, 0, -1 };
	if (real_live_new(&L, &reg, 1, &lc, &err) < 0) {
		fail("real_live_new: %s", err.msg);
		goto out;
	}
	b = real_live_backend(L);
	if (b.ops->nnodes(L) != 2) {
		fail("the live backend sees %u nodes", b.ops->nnodes(L));
		goto out;
	}
	for (unsigned p = 0; p < N; p++) {
		struct bk_page_info info;

		b.ops->page_info(L, p, &info);
		if ((int)info.node != home[p]) {
			fail("the live backend puts page %u on node %u, move_pages on %d", p, info.node,
			     home[p]);
			goto out;
		}
	}
	ec.algo = algo_find("ksm");
	if (!ec.algo) {
		fail("no ksm algorithm");
		goto out;
	}
	algo_params_defaults(ec.algo, &ec.params);
	snprintf(kv, sizeof(kv), "merge_across_nodes=%d", across);
	if (algo_params_set(ec.algo, &ec.params, kv, &err) < 0 ||
	    algo_params_set(ec.algo, &ec.params, "pages_to_scan=1000", &err) < 0 ||
	    real_engine_new(&e, L, &ec, &err) < 0) {
		fail("engine: %s", err.msg);
		goto out;
	}
	/* Batches until pages_sharing stops moving (each batch is a full scan). */
	for (int i = 0; i < 20; i++) {
		uint64_t sleep;

		real_engine_lock(e);
		rc = real_engine_step(e, &sleep);
		real_engine_unlock(e);
		if (rc < 0) {
			fail("engine step %d: %d", i, rc);
			goto out;
		}
		real_engine_metrics(e, &mt);
		if (i >= 3 && mt.pages_sharing == prev)
			break;
		prev = mt.pages_sharing;
	}
	rc = -1;
	real_engine_metrics(e, &mt);

	/* What the kernel says: each page's physical frame and that frame's node. */
	if (real_nodes(m, node_now) < 0 || pfns(m, pfn) < 0)
		goto out;
	memset(gsize, 0, sizeof(gsize));
	memset(gnodes, 0, sizeof(gnodes));
	memset(gpfn, 0, sizeof(gpfn));
	for (unsigned p = 0; p < N; p++) {
		int g = group_of(p, across == 0);
		struct bk_page_info info;

		b.ops->page_info(L, p, &info);
		if (g >= 0) {
			gsize[g]++;
			gnodes[g][home[p]]++;
		}
		if (info.frame == BK_NO_FRAME) {
			if (node_now[p] != home[p]) {
				fail("across=%d: private page %u moved to node %d", across, p, node_now[p]);
				goto out;
			}
			continue;
		}
		if (b.ops->frame_node(L, info.frame) != (uint32_t)node_now[p]) {
			fail("across=%d: page %u's frame is on node %d, the backend says %u", across, p,
			     node_now[p], b.ops->frame_node(L, info.frame));
			goto out;
		}
		remote += node_now[p] != home[p];
	}
	/* Duplicates merged: every page of a group of >= 2 maps the group's one frame. */
	for (unsigned p = 0; p < N; p++) {
		int g = group_of(p, across == 0);
		struct bk_page_info info;

		b.ops->page_info(L, p, &info);
		if (g < 0 || gsize[g] < 2) {
			if (info.frame != BK_NO_FRAME) {
				fail("across=%d: page %u (content %d, node %d) merged with no duplicate",
				     across, p, cid[p], home[p]);
				goto out;
			}
			continue;
		}
		if (info.frame == BK_NO_FRAME) {
			fail("across=%d: page %u (content %d, node %d) not merged", across, p, cid[p],
			     home[p]);
			goto out;
		}
		if (!gpfn[g]) {
			gpfn[g] = pfn[p];
			frames++;
		} else if (gpfn[g] != pfn[p]) {
			fail("across=%d: content %d has two frames (PFN %llx, %llx)", across, cid[p],
			     (unsigned long long)gpfn[g], (unsigned long long)pfn[p]);
			goto out;
		}
		/* The frame is on the node of most of its sharers. */
		{
			int major = gnodes[g][1] > gnodes[g][0] ? 1 : 0;

			if (node_now[p] != major) {
				fail("across=%d: content %d (%d+%d sharers) has its frame on node %d", across,
				     cid[p], gnodes[g][0], gnodes[g][1], node_now[p]);
				goto out;
			}
		}
		if (cid[p] == 200)
			res->z_node = node_now[p];
	}
	/* No frame shared across nodes (across=0): a PFN's pages are all on one node. */
	for (unsigned p = 0; p < N; p++)
		for (unsigned q = p + 1; q < N; q++)
			if (pfn[p] == pfn[q] && home[p] != home[q] && !across) {
				fail("across=0: pages %u (node %d) and %u (node %d) share PFN %llx", p, home[p],
				     q, home[q], (unsigned long long)pfn[p]);
				goto out;
			}
	for (int g = 0; g < 2 * NCONTENT; g++)
		if (gsize[g] >= 2)
			expect_sharing += gsize[g] - 1;
	if (mt.pages_sharing != expect_sharing) {
		fail("across=%d: pages_sharing %lld, expected %lld", across, (long long)mt.pages_sharing,
		     (long long)expect_sharing);
		goto out;
	}
	if (mt.remote_sharers != remote) {
		fail("across=%d: remote_sharers %lld, measured %lld", across,
		     (long long)mt.remote_sharers, (long long)remote);
		goto out;
	}
	if (!across && remote != 0) {
		fail("across=0: %lld remote sharers", (long long)remote);
		goto out;
	}
	if (check_contents(m, across ? "across=1" : "across=0") < 0)
		goto out;
	res->pages_sharing = mt.pages_sharing;
	res->remote_sharers = mt.remote_sharers;
	res->measured_remote = remote;
	res->frames = frames;

	if (across) {
		/* A remote sharer (page 256, node 1, content X on node 0) writes: COW. */
		struct real_live_stats st;
		unsigned wp = 256;
		int cows;

		res->cow_remote_before = (uint64_t)mt.remote_sharers;
		{
			volatile uint8_t *w = m + (size_t)wp * ps;

			*w = *w; /* a write (of the same byte): a private copy */
		}
		real_engine_lock(e);
		cows = real_live_check(L, wp, NULL, NULL);
		real_live_stats(L, &st);
		real_engine_unlock(e);
		if (cows != 1) {
			fail("across=1: the write to page %u was not seen as a COW break (%d)", wp, cows);
			goto out;
		}
		{
			struct metrics m2;

			memset(&m2, 0, sizeof(m2));
			real_live_metrics(L, &m2);
			res->cow_remote_after = (uint64_t)m2.remote_sharers;
		}
		if (res->cow_remote_after != res->cow_remote_before - 1) {
			fail("across=1: remote_sharers %llu after a remote sharer's COW break, was %llu",
			     (unsigned long long)res->cow_remote_after,
			     (unsigned long long)res->cow_remote_before);
			goto out;
		}
		if (real_nodes(m, node_now) < 0)
			goto out;
		res->cow_page_node = node_now[wp];
		/* The remap kept the page's mbind policy: its private copy is back on node 1. */
		if (node_now[wp] != 1) {
			fail("across=1: page %u, bound to node 1, has its private copy on node %d", wp,
			     node_now[wp]);
			goto out;
		}
		if (check_contents(m, "after the COW break") < 0)
			goto out;
	}
	rc = 0;
out:
	real_engine_free(e);
	if (L) {
		real_live_unmerge_all(L, NULL, NULL);
		real_live_free(L);
	}
	munmap(m, len);
	return rc;
}

int main(void)
{
	struct result r0, r1;

	setvbuf(stdout, NULL, _IONBF, 0);
	ps = sysconf(_SC_PAGESIZE);
	layout();
	if (numa_available() < 0 || numa_num_configured_nodes() != 2) {
		printf("NUMA-GUEST FAIL: %d NUMA node(s), need exactly 2\n",
		       numa_available() < 0 ? 1 : numa_num_configured_nodes());
		return 1;
	}
	if (run(0, &r0) < 0 || run(1, &r1) < 0) {
		printf("NUMA-GUEST FAIL: %s\n", failmsg);
		return 1;
	}
	printf("NUMA-GUEST PASS 2 nodes, %u pages: merge_across_nodes=0: pages_sharing %lld in %lld "
	       "per-node frames, remote_sharers 0; merge_across_nodes=1: pages_sharing %lld in %lld "
	       "frames, remote_sharers %lld = measured %lld (Z frame on node %d); a remote sharer's "
	       "COW break -> %llu (its private copy on node %d; bound to node 1)\n",
	       N, (long long)r0.pages_sharing, (long long)r0.frames, (long long)r1.pages_sharing,
	       (long long)r1.frames, (long long)r1.remote_sharers, (long long)r1.measured_remote,
	       r1.z_node, (unsigned long long)r1.cow_remote_after, r1.cow_page_node);
	return 0;
}
