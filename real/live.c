/*
 * live.c - implements the live backend (real/live.h): the backend contract
 * over regions of live memory this process holds, with actual copy-on-write
 * merging onto frames of per-NUMA-node memfd pools.
 *
 * The mechanism.  A shared frame is one page of a memfd (one memfd per node,
 * its pages placed on that node with mbind when the host has several).  A page
 * "maps the frame" when its virtual page is a MAP_PRIVATE|MAP_FIXED mapping of
 * that memfd page: every sharer reads the same physical page, and the kernel
 * copies it on the next write (a real COW break).  Merging page p onto frame f
 * (the default way, "freeze by move"; see there):
 *   1. register p's page in MISSING mode with the userfaultfd holding it and
 *      move p's page out of its place (UFFDIO_MOVE) into a staging slot of
 *      the backend: p's PTE is empty, and any access to p sleeps in the
 *      kernel (a MISSING fault nobody answers but the engine);
 *   2. compare the staged page with f (memcmp; the "re-compare" of the
 *      kernel's try_to_merge_one_page) - if they differ, move the page back
 *      (which wakes p's sleepers), leave MISSING mode, and refuse with
 *      SP_ECHANGED;
 *   3. mmap(p, MAP_PRIVATE|MAP_FIXED, pool memfd, offset of f) over the
 *      empty PTE;
 *   4. UFFDIO_WAKE p: its sleepers retry their fault, now on the file
 *      mapping, and a writer writes into its own COW copy.  The staged page
 *      is dropped later with up to 63 others (one MADV_DONTNEED).
 * A page the kernel refuses to move as busy while pagemap shows it ours
 * alone is taken for pinned (DMA, io_uring) and its merge refused,
 * SP_EPINNED (pinned()).
 * Where the kernel will not move the page (a COW copy living in a pool
 * mapping, a page shared with a child: EINVAL, EBUSY) or has no
 * UFFDIO_MOVE (before Linux 6.8), and with REAL_LIVE_FREEZE_PROTECT, step 1
 * is a synchronous write protection of p's PTE (UFFDIO_WRITEPROTECT, after
 * p leaves the tracking userfaultfd when tracked), step 2 compares p in
 * place and unprotects it when it differs, and the mmap of step 3 replaces
 * the private page: only writers sleep.
 * A new frame (merge_pages of two private pages) freezes both pages,
 * compares them, copies the content into a fresh memfd page and maps both.
 *
 * Why no write is ever lost or torn.  A writer's store to p either completes
 * before step 1 (then step 2 sees it: the merge is refused, or it merges the
 * content *including* that store - also correct), or faults on the empty
 * (or protected) PTE and sleeps in the kernel (handle_userfault) until step
 * 4 or the move back; the mmap of step 3 cannot run while a fault holds the
 * VMA, so a faulting writer is either queued (and woken at step 4) or
 * retries on the new mapping.  Readers of a moved page sleep likewise, so
 * none sees the hole.  Because userfaultfd blocks faults taken in kernel
 * mode too (read(2) into the page, futexes), there are no EFAULTs and no
 * signal handlers: mprotect + a SIGSEGV handler would make syscalls writing
 * the page fail with EFAULT and would fight the application's own handlers.
 * A store that lands half before the freeze (a memcpy interrupted by step 1)
 * leaves a mixed content that step 2 compares as it is: merged content is
 * always the page's content at the instant of the compare, and later stores
 * go to the COW copy.
 *
 * Cost.  On this machine (2 cores, a PVM guest: a TLB flush is a hypervisor
 * exit, 4-79 us and swinging within minutes, bench/README.md issue 15) a
 * merge by write protection took three flushes (leaving the tracking
 * userfaultfd, the protection, the unmap of the old page) and ~12-15 us
 * when a flush cost ~1 us, 60-200 us when it cost 20-50; a merge by move
 * takes one (the move) plus 1/64 of one (the staging drop): bench/merge_cost
 * at 06:20-06:26 UTC on 2026-12-03 (flush 22.7-26.9 us, load 2.0): 63.5 us
 * against 97.3 a merge, 1.02 against 3.00 flushes (twenty-second round).
 * The kernel merges at ~3 us.  Cheaper merges would need a way to point a
 * PTE at an arbitrary page-cache page without a VMA per page; Linux has
 * none.
 *
 * VMAs.  Every merged page whose neighbours do not map the following memfd
 * pages is a VMA of its own (plus the split of the region around it), so
 * vm.max_map_count (65530 by default) caps merging near 32k pages.  The
 * backend estimates the process's VMA count (the last count + 2 per page
 * that entered a VMA it created since: a split in three at worst) and,
 * within 256 of the limit, first counts them again (/proc/self/maps: pages
 * merged in runs share VMAs and cost far less than 2), then refuses merges
 * with SP_ELIMIT (counted in map_limit_refusals); it never lets mmap fail
 * half-way.  The limit is read once, under a hold (mapcount.h) that keeps
 * another samepage run's end from lowering it until real_live_free(); when
 * the hold cannot be had (not root), the value is read unprotected.  Drivers
 * may raise the limit when root (real_mapcount_raise) and say so.  Adjacent
 * pages mapping consecutive memfd pages share one VMA (the kernel merges
 * them).
 *
 * The zero page.  merge_zero drops the (verified zero) page: MADV_DONTNEED on
 * a page of an anonymous VMA, or a fresh anonymous MAP_FIXED mapping over a
 * page that lives in a pool file mapping (where MADV_DONTNEED would show the
 * file page again).  An anonymous page never written since reads the
 * kernel's shared zero page; the next write allocates a private page (the
 * COW break of the zero page).
 *
 * COW breaks are detected from /proc/self/pagemap: a page that maps its
 * frame is not present (never touched since the mmap) or present with bit 61
 * (file page); its private copy is present without bit 61, or swapped.  A
 * page on the zero page has a private copy when it is present and exclusively
 * mapped (bit 56; the zero page never is), or swapped.  Detection is polled
 * (real_live_poll, a cursor over the merged pages) or asked for one page
 * (real_live_check, for writes the driver made); until then the bookkeeping
 * still counts the page as a sharer, which can only delay a frame's release,
 * never free a frame still mapped.  With COW events (real_live_config.
 * cow_events) merged pages stay write-protected and their COW breaks arrive
 * as faults a thread of the backend answers, or, with write tracking on, as
 * written pages in the tracking scans (no thread); only pages neither
 * watches are polled (see "COW events" and "COW events from write tracking").
 *
 * Structures.
 *   pages[p]   slot (0 private, 1 zero page, else frames[] index), node,
 *              PG_* flags.
 *   frames     frames.h's table of shared frames: per slot node (where
 *              its page is now), domain, mapper count and generation, and
 *              here (struct live_fdata) the memfd offset in pages and the
 *              pool (the node it was made for).
 *   pools[n]   memfd, a MAP_SHARED view of it (for compares and copies),
 *              its free offsets and high-water mark.
 *   chunk_unpolled[c]  1: the poll went through all of chunk c and found
 *              no merged page it must read (every one watched), and no page
 *              there changed slot or lost its watch since (set_slot(),
 *              cow_disarm() clear it): the poll skips the chunk.
 *   chunk_merged[c]  pages of chunk c (CHUNK pages) not private: the poll
 *              skips chunks without any.
 *
 * Invariants.
 *   - mappers of slot s == pages with slot s (by the bookkeeping); a frame
 *     whose count reaches 0 has its memfd page punched (FALLOC_FL_PUNCH_HOLE)
 *     and its offset reused; the count only drops once pagemap (or our own
 *     unmerge/discard) shows the page no longer maps the frame.
 *   - A page with PG_INFILE lives in a MAP_PRIVATE mapping of a pool: it must
 *     never be MADV_DONTNEED'd (it would show the pool page at its offset).
 *   - PG_UNREG: the page's VMA (one we created) is not yet registered with
 *     the userfaultfd; it is registered before it is next frozen.
 *   - PX_MOVED: the page's PTE is empty and its VMA in MISSING mode (frozen
 *     by a move) - between its freeze and its merge's end when refused,
 *     until its run's remap when merged; never a page the engine reads
 *     through its address (read_addr() reads its frame).  A page with an
 *     empty PTE is never left in MISSING mode (PX_MISS says it still is,
 *     after a failed undo: retried before the page is emptied).
 *   - remote == pages whose node differs from their frame's node.
 *
 * Notes.
 *   - Regions must be private anonymous memory.  The application must not
 *     MADV_DONTNEED/MADV_FREE/munmap registered pages while registered (a
 *     merged page lives in a file mapping, where those differ from anonymous
 *     memory); real_live_discard() is the way to drop a page.
 *   - Transparent huge pages are split by the move (or the write
 *     protection) of a subpage (thp_splits is not counted); where the
 *     kernel cannot split, the move is refused (EBUSY) and the page
 *     protected.
 *   - Frame placement: a new frame goes to the node where most of its two
 *     first sharers live; with one on each, the node of `keep` (the page the
 *     kernel would turn into the KSM page).  After each full scan the engine
 *     moves frames whose sharers mostly live elsewhere (real_live_rebalance).
 *   - Each VMA costs the kernel ~200 bytes of slab that no RSS figure shows.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <numa.h>
#include <numaif.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#include <xxhash.h>

#include "sp_bigmem.h"
#include "sp_util.h"
#include "algorithm.h"
#include "frames.h"
#include "live.h"
#include "mapcount.h"
#include "uffd_track.h"

#define SLOT_PRIVATE BK_SLOT_PRIVATE
#define SLOT_ZERO BK_SLOT_ZERO
#define CHUNK 512u
#define MAP_MARGIN 256u
#define VMA_RECOUNT_PAGES 64u
#define VMA_RECOUNT_NS 1000000000ull
#define POLL_GAP 16u /* COW polling reads one pagemap span across private gaps up to this long */

#define PG_PRESENT 0x1u
#define PG_INFILE 0x2u  /* lives in a MAP_PRIVATE mapping of a pool memfd */
#define PG_OWNVMA 0x4u  /* lives in a VMA we created (counted in file_vma_pages) */
#define PG_UNREG 0x8u   /* that VMA is not registered with the userfaultfd yet */
#define PG_TRACKED 0x10u /* registered with the write-tracking userfaultfd (uffd_track) */
#define PG_DIRTY 0x20u  /* written (or unknown) since the last lv_written() */
#define PG_FRESH 0x40u  /* PG_DIRTY is current: the last window scan covered the page */
#define PG_COWW 0x80u   /* merged, its VMA registered with the COW-event userfaultfd (watched) */

/* COW events: a page's state in cow_state[], read and written under cow_lock only. */
#define COW_ARMED 0x1u  /* write-protected: a write faults to the COW-event thread */
#define COW_QUEUED 0x2u /* in cow_q (the thread lifted the protection; the engine settles it) */

/* Write tracking: pages per PAGEMAP_SCAN window, and how long a window's answer stays current. */
#define TRACK_WINDOW 512u
#define TRACK_FRESH_NS 1000000ull
#define TRACK_VEC 128u
#define TRACK_PART_NS 100000000ull /* a window read in full this recently is read from the asked page on */
#define WIN_STALE_NS 2000000000ull /* COW events from write tracking: windows the poll sweeps */
#define WIN_QUIET_MAX 2u /* ... after WIN_STALE_NS << quiet sweeps in a row that found no COW break */

#define PM_PFN_MASK ((1ull << 55) - 1)
#define PM_EXCLUSIVE (1ull << 56)
#define PM_UFFD_WP (1ull << 57)
#define PM_FILE (1ull << 61)
#define PM_SWAP (1ull << 62)
#define PM_PRESENT (1ull << 63)

struct live_page {
	uint32_t slot;
	uint16_t node;
	uint8_t flags;
	uint8_t xflags; /* PX_* */
};

#define PX_COWA 0x1u /* merged, watched by write tracking (COW events without a thread, see there) */
#define PX_MOVED 0x2u /* frozen by a move: its PTE empty until its remap or its move back (see "Freeze by move") */
#define PX_MISS 0x4u  /* its VMA is registered in MISSING mode too (only while frozen, or after a failed undo) */
#define PX_NEWVMA 0x8u /* PG_OWNVMA since its freeze: the VMA estimate charges it at its remap */

#define STAGE_SLOTS 64u /* the staging area's pages: one MADV_DONTNEED (one flush) per this many moves */

/* A shared frame's place, kept in frames.h's table beside its node and mappers. */
struct live_fdata {
	uint64_t off; /* page offset in its pool */
	uint32_t pool; /* the pool (memfd) holding it: the node it was made for */
};

struct live_pool {
	int fd;       /* -1 until first used */
	uint8_t *view;
	uint64_t pages; /* size in pages */
	uint64_t hwm;
	uint64_t *free_off;
	uint64_t nfree, capfree;
};

/* A run of merged pages whose remap is pending (see "Runs"). */
struct live_run {
	bk_page first;
	uint64_t off;   /* pool offset of first's frame: page first + i maps off + i */
	uint32_t n;     /* 0: no run */
	uint32_t pool;
};

#define NRUNS 2u     /* runs pending at once: a merge_pages makes two */
#define RUN_MAX 256u /* pages per run: bounds how long writers of its first page wait */

struct live_region {
	uint8_t *addr;
	uint64_t first, npages;
	uint32_t guest, domain;
	int node_hint;
	uint64_t win_base; /* index of its first write-tracking window in win_when[] */
};

struct real_live {
	uint32_t ps;
	uint32_t nregions;
	struct live_region *reg;
	uint64_t npages;
	struct live_page *pages;
	uint32_t *chunk_merged;
	uint8_t *chunk_unpolled; /* see "Structures" */
	struct bk_frames frames; /* data: struct live_fdata */
	struct live_pool pools[REAL_LIVE_MAX_NODES];
	uint32_t nnodes;
	struct real_live_topo topo;
	bool fake_topo;
	bool strict_nodes;
	int uffd;       /* synchronous write protection: the merges */
	int uffd_track; /* asynchronous write protection: write tracking; -1 when off */
	const char *track_off; /* why write tracking is off, or NULL */
	uint64_t win_lo, win_hi, win_ns; /* the last window scanned, and when */
	uint64_t win_calls;              /* written() answers (the clock is read every 32) */
	struct page_region *scanvec;
	uint64_t track_scans, track_part_scans, track_unscanned, track_clean, track_written;
	bool protect_in_read; /* REAL_LIVE_PROTECT_IN_READ (see track_scan) */
	bool can_move;        /* freeze by move asked for and UFFDIO_MOVE offered (stage_open decides) */
	uint64_t track_wp_calls, track_wp_pages;
	int pagemap;
	struct backend_ops ops; /* live_backend_ops, with written() when tracking */
	uint64_t zero_pfn; /* 0: unknown (no PFNs without root) */
	uint8_t *zero_buf;
	uint64_t counts[BK_COST__COUNT];
	int64_t cow_breaks, merges, remote;
	uint64_t mapped_pages, zero_pages, file_vma_pages;
	uint64_t base_vmas, max_map_count, map_limit_refusals, merge_ns, cow_polled;
	struct real_mapcount mc; /* the hold on vm.max_map_count that max_map_count was read under */
	bool mc_held;
	uint64_t timed_merges, timed_pages; /* the merges (and their pages) merge_ns covers */
	/* The VMA estimate: vmas_seen counted at vmas_seen_ns, + 2 per page entering a VMA of ours since. */
	uint64_t vmas_seen, vmas_seen_ns, vma_adds, vma_recounts;
	uint64_t hint_first, hint_n; /* lv_page_info's last region: pages [hint_first, + hint_n) */
	uint32_t hint_reg;
	uint64_t poll_cursor;
	struct live_run runs[NRUNS]; /* packed from runs[0], the oldest */
	bool defer;                  /* remaps wait in runs until real_live_flush() */
	uint64_t remaps, remapped_pages, remap_failures;
	uint64_t *pmbuf; /* CHUNK pagemap entries */
	uint32_t zero_csum;
	/* COW events (see "COW events"); uffd_cow -1 when off. */
	int uffd_cow, cow_efd;
	bool cow_thread_on, cow_overflow;
	pthread_t cow_thread;
	pthread_mutex_t cow_lock;
	uint8_t *cow_state;            /* per page, COW_* */
	bk_page *cow_q, *cow_work;     /* the thread's queue; the engine's copy of it */
	uint64_t cow_qlen, cow_qcap, cow_wcap;
	uint64_t cow_seen, cow_arms;   /* cow_seen under cow_lock */
	uint64_t cow_cpu_last;         /* the thread's CPU time when it ended */
	/* COW events from write tracking (cow_async; see there). */
	bool cow_async;
	uint64_t *win_when;            /* per window: when a PAGEMAP_SCAN last covered it */
	uint8_t *win_quiet;            /* per window: sweeps in a row that found no COW break (capped) */
	uint64_t nwin, cow_sweeps;
	/* Freeze by move (see there); stage NULL when off. */
	uint8_t *stage;                /* STAGE_SLOTS pages, registered with uffd in MISSING mode */
	uint32_t stage_used;           /* slots [0, stage_used) hold a page or were put back: dropped together */
	uint64_t freeze_moved, freeze_moved_back, freeze_protected, freeze_infile, move_refused[4];
	uint64_t stage_drops, freeze_errors, pinned_refusals;
};

static void runs_flush(struct real_live *L);
static void cow_arm(struct real_live *L, bk_page first, uint32_t n);
static int cow_disarm(struct real_live *L, bk_page p, uint8_t *addr);
static void cow_open(struct real_live *L);
static void cow_close(struct real_live *L);

/*
 * A page's checksum: XXH3-64, the fastest variant libxxhash offers here
 * (bench/README.md: ~85 ns per cached 4 KiB page against XXH64's ~280; the
 * library's AVX2/AVX-512 dispatch is no faster on 4 KiB).  ksmd uses xxhash
 * too; only equality matters, the values are never compared with the kernel's.
 */
static inline uint32_t page_hash(const void *p, uint32_t len)
{
	return (uint32_t)XXH3_64bits(p, len);
}

static inline uint8_t *page_addr(const struct real_live *L, bk_page p)
{
	uint32_t lo = 0, hi = L->nregions;

	while (hi - lo > 1) {
		uint32_t mid = (lo + hi) / 2;

		if (L->reg[mid].first <= p)
			lo = mid;
		else
			hi = mid;
	}
	return L->reg[lo].addr + (p - L->reg[lo].first) * L->ps;
}

static inline const struct live_region *region_of(const struct real_live *L, bk_page p)
{
	uint32_t lo = 0, hi = L->nregions;

	while (hi - lo > 1) {
		uint32_t mid = (lo + hi) / 2;

		if (L->reg[mid].first <= p)
			lo = mid;
		else
			hi = mid;
	}
	return &L->reg[lo];
}

void *real_live_page_addr(const struct real_live *L, bk_page p)
{
	return p < L->npages ? page_addr(L, p) : NULL;
}

uint64_t real_live_page_of(const struct real_live *L, const void *addr)
{
	uintptr_t a = (uintptr_t)addr;

	for (uint32_t i = 0; i < L->nregions; i++) {
		uintptr_t b = (uintptr_t)L->reg[i].addr;

		if (a >= b && a < b + L->reg[i].npages * L->ps)
			return L->reg[i].first + (a - b) / L->ps;
	}
	return UINT64_MAX;
}

/* ---- system helpers ---------------------------------------------------- */

uint64_t real_count_vmas(void)
{
	FILE *f = fopen("/proc/self/maps", "r");
	uint64_t n = 0;
	int c;

	if (!f)
		return 0;
	while ((c = getc(f)) != EOF)
		n += c == '\n';
	fclose(f);
	return n;
}

static int uffd_open(void)
{
	int fd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);

	if (fd < 0) {
		int dev = open("/dev/userfaultfd", O_RDWR | O_CLOEXEC);

		if (dev >= 0) {
#ifndef USERFAULTFD_IOC_NEW
#define USERFAULTFD_IOC_NEW _IO(0xAA, 0x00)
#endif
			fd = ioctl(dev, USERFAULTFD_IOC_NEW, O_CLOEXEC | O_NONBLOCK);
			close(dev);
		}
	}
	return fd;
}

/* The features this kernel's userfaultfd offers (a throwaway handshake), 0 if none can be opened. */
static uint64_t uffd_features(void)
{
	struct uffdio_api api = { .api = UFFD_API, .features = 0 };
	int fd = uffd_open();
	uint64_t f = 0;

	if (fd < 0)
		return 0;
	if (ioctl(fd, UFFDIO_API, &api) == 0)
		f = api.features;
	close(fd);
	return f;
}

static int uffd_register_fd(int fd, void *addr, uint64_t len, uint64_t mode)
{
	struct uffdio_register reg = { .range = { (uintptr_t)addr, len }, .mode = mode };

	return ioctl(fd, UFFDIO_REGISTER, &reg);
}

static int uffd_register(struct real_live *L, void *addr, uint64_t len)
{
	struct uffdio_register reg = { .range = { (uintptr_t)addr, len },
				       .mode = UFFDIO_REGISTER_MODE_WP };

	return ioctl(L->uffd, UFFDIO_REGISTER, &reg);
}

static int uffd_wp(struct real_live *L, void *addr, uint64_t len, bool on)
{
	struct uffdio_writeprotect wp = { .range = { (uintptr_t)addr, len },
					  .mode = on ? UFFDIO_WRITEPROTECT_MODE_WP : 0 };

	return ioctl(L->uffd, UFFDIO_WRITEPROTECT, &wp);
}

static void uffd_wake(struct real_live *L, void *addr, uint64_t len)
{
	struct uffdio_range r = { (uintptr_t)addr, len };

	ioctl(L->uffd, UFFDIO_WAKE, &r);
}

static int pagemap_read(const struct real_live *L, const void *addr, uint64_t n, uint64_t *out)
{
	off_t off = (off_t)((uintptr_t)addr / L->ps * 8);
	size_t want = n * 8, got = 0;

	while (got < want) {
		ssize_t r = pread(L->pagemap, (char *)out + got, want - got, off + (off_t)got);

		if (r <= 0)
			return -1;
		got += (size_t)r;
	}
	return 0;
}

/* ---- pools and frames -------------------------------------------------- */

static int pool_open(struct real_live *L, uint32_t node, struct sp_err *err)
{
	struct live_pool *pl = &L->pools[node];
	char name[32];
	uint64_t bytes = L->npages * L->ps;

	snprintf(name, sizeof(name), "samepage-pool-%u", node);
	pl->pages = L->npages;
	pl->fd = (int)syscall(SYS_memfd_create, name, MFD_CLOEXEC);
	if (pl->fd < 0)
		return sp_err_set(err, SP_EIO, "memfd_create: %s", strerror(errno));
	if (ftruncate(pl->fd, (off_t)bytes) < 0)
		goto fail;
	pl->view = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE, pl->fd, 0);
	if (pl->view == MAP_FAILED) {
		pl->view = NULL;
		goto fail;
	}
	if (L->topo.bind && !L->fake_topo && L->nnodes > 1) {
		unsigned long mask[REAL_LIVE_MAX_NODES / (8 * sizeof(unsigned long))] = { 0 };

		mask[node / (8 * sizeof(unsigned long))] |= 1ul << (node % (8 * sizeof(unsigned long)));
		if (mbind(pl->view, bytes, MPOL_PREFERRED, mask, REAL_LIVE_MAX_NODES + 1, 0) < 0)
			return sp_err_set(err, SP_EIO, "mbind of node %u's pool: %s", node,
					  strerror(errno));
	}
	return 0;
fail:
	return sp_err_set(err, SP_ENOMEM, "frame pool of node %u (%llu MiB): %s", node,
			  (unsigned long long)(bytes >> 20), strerror(errno));
}

static inline bk_frame handle(const struct real_live *L, uint32_t slot)
{
	return bk_frames_handle(&L->frames, slot);
}

static inline uint32_t slot_of(const struct real_live *L, bk_frame f)
{
	return bk_frames_slot(&L->frames, f);
}

static inline struct live_fdata *fdata(const struct real_live *L, uint32_t slot)
{
	return bk_frames_data(&L->frames, slot);
}

static inline uint8_t *frame_addr(const struct real_live *L, uint32_t slot)
{
	const struct live_fdata *fd = fdata(L, slot);

	return L->pools[fd->pool].view + fd->off * L->ps;
}

static int frame_alloc(struct real_live *L, uint32_t node, uint32_t domain, uint32_t *out)
{
	struct live_pool *pl = &L->pools[node];
	uint32_t slot;
	uint64_t off;

	if (pl->fd < 0 && pool_open(L, node, NULL) < 0)
		return SP_ENOMEM;
	/*
	 * The high-water mark first: successive merges get consecutive offsets,
	 * so a run of merged pages maps a run of the pool with one mmap (see
	 * "Runs").  Freed offsets are punched holes: skipping them costs nothing.
	 */
	if (pl->hwm < pl->pages)
		off = pl->hwm++;
	else if (pl->nfree)
		off = pl->free_off[--pl->nfree];
	else
		return SP_ENOMEM;
	if (bk_frames_alloc(&L->frames, node, domain, &slot) < 0) {
		if (off == pl->hwm - 1)
			pl->hwm--;
		else
			pl->free_off[pl->nfree++] = off; /* it came from there */
		return SP_ENOMEM;
	}
	fdata(L, slot)->off = off;
	fdata(L, slot)->pool = node;
	*out = slot;
	return 0;
}

/* The frame has no sharer left: give its memory back and recycle the slot. */
static void frame_release(struct real_live *L, uint32_t slot)
{
	struct live_fdata *fr = fdata(L, slot);
	struct live_pool *pl = &L->pools[fr->pool];

	fallocate(pl->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)(fr->off * L->ps),
		  (off_t)L->ps);
	if (pl->nfree == pl->capfree) {
		uint64_t cap = pl->capfree ? pl->capfree * 2 : 1024;
		uint64_t *f = realloc(pl->free_off, cap * sizeof(*f));

		if (f) {
			pl->free_off = f;
			pl->capfree = cap;
		}
	}
	if (pl->nfree < pl->capfree)
		pl->free_off[pl->nfree++] = fr->off; /* else the offset leaks, harmlessly */
	bk_frames_free(&L->frames, slot);
}

static void set_slot(struct real_live *L, bk_page p, uint32_t slot)
{
	struct live_page *pg = &L->pages[p];
	uint32_t old = pg->slot;

	if (old == slot)
		return;
	L->chunk_unpolled[p / CHUNK] = 0;
	if (old == SLOT_PRIVATE)
		L->chunk_merged[p / CHUNK]++;
	if (slot == SLOT_PRIVATE)
		L->chunk_merged[p / CHUNK]--;
	if (old == SLOT_ZERO)
		L->zero_pages--;
	else if (old > SLOT_ZERO) {
		struct bk_frame_slot *fr = &L->frames.slot[old];

		L->mapped_pages--;
		if (fr->node != pg->node)
			L->remote--;
		if (--fr->mappers == 0)
			frame_release(L, old);
	}
	pg->slot = slot;
	if (slot == SLOT_ZERO)
		L->zero_pages++;
	else if (slot > SLOT_ZERO) {
		L->mapped_pages++;
		L->frames.slot[slot].mappers++;
		if (L->frames.slot[slot].node != pg->node)
			L->remote++;
	}
}

/* ---- creation ---------------------------------------------------------- */

static int host_nodes(void)
{
	if (numa_available() < 0)
		return 1;
	return numa_max_node() + 1;
}

static int query_nodes(struct real_live *L)
{
	enum { B = 4096 };
	void *addrs[B];
	int status[B];

	for (bk_page p = 0; p < L->npages;) {
		uint64_t n = L->npages - p < B ? L->npages - p : B;
		const struct live_region *r = region_of(L, p);

		if (p + n > r->first + r->npages)
			n = r->first + r->npages - p;
		for (uint64_t i = 0; i < n; i++)
			addrs[i] = page_addr(L, p + i);
		if (L->fake_topo) {
			for (uint64_t i = 0; i < n; i++)
				status[i] = L->topo.page_node(L->topo.arg, addrs[i]);
		} else if (move_pages(0, (unsigned long)n, addrs, NULL, status, 0) != 0) {
			for (uint64_t i = 0; i < n; i++)
				status[i] = -1;
		}
		for (uint64_t i = 0; i < n; i++) {
			int node = status[i];

			if (node < 0 || (uint32_t)node >= L->nnodes)
				node = r->node_hint < 0 || (uint32_t)r->node_hint >= L->nnodes ? 0 : r->node_hint;
			L->pages[p + i].node = (uint16_t)node;
		}
		p += n;
	}
	return 0;
}

/*
 * A read fault's page, as pagemap (fd) shows it: its entry, 0 if it could not
 * be read.  Linux maps the shared zero page: present, not exclusively mapped,
 * and its PFN when pagemap shows PFNs (root).  Some kernels map a private
 * zeroed page instead (exclusive; seen on a Firecracker guest kernel): then
 * there is no zero page to find, and a merged zero page's next read costs a
 * page, as a write does.
 */
static uint64_t read_fault_entry(int fd, long ps)
{
	volatile uint8_t *z = mmap(NULL, (size_t)ps, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	uint64_t e = 0;

	if ((void *)z == MAP_FAILED)
		return 0;
	(void)z[0];
	if (pread(fd, &e, sizeof(e), (off_t)((uintptr_t)z / (uintptr_t)ps * sizeof(e))) != (ssize_t)sizeof(e))
		e = 0;
	munmap((void *)z, (size_t)ps);
	return e;
}

/* The zero page's PFN, when the kernel maps one and pagemap shows PFNs; else 0. */
static uint64_t find_zero_pfn(struct real_live *L)
{
	uint64_t e = read_fault_entry(L->pagemap, (long)L->ps);

	return (e & PM_PRESENT) && !(e & PM_EXCLUSIVE) ? (e & PM_PFN_MASK) : 0;
}

/*
 * Write tracking on: a second userfaultfd with asynchronous write protection
 * over the regions (instead of the merge one), and one PAGEMAP_SCAN to see
 * that the kernel has it.  On any failure the regions are left unregistered
 * for the caller to register with the merge userfaultfd, and track_off says
 * why: the backend then offers no written() and algorithms hash every visit.
 */
static int lv_written(void *impl, bk_page p);
static const struct backend_ops live_backend_ops;

static void track_open(struct real_live *L)
{
	struct uffdio_api api = { .api = UFFD_API,
				  .features = UFFD_FEATURE_WP_ASYNC | UFFD_FEATURE_WP_UNPOPULATED |
					      (L->can_move ? UFFD_FEATURE_MOVE : 0) };
	struct pm_scan_arg a = { .size = sizeof(a), .flags = PM_SCAN_WP_MATCHING | PM_SCAN_CHECK_WPASYNC,
				 .category_mask = PAGE_IS_WRITTEN, .return_mask = PAGE_IS_WRITTEN };
	uint32_t done = 0;

	L->scanvec = malloc(TRACK_VEC * sizeof(*L->scanvec));
	L->uffd_track = uffd_open();
	if (!L->scanvec || L->uffd_track < 0) {
		L->track_off = "no second userfaultfd";
		goto off;
	}
	if (ioctl(L->uffd_track, UFFDIO_API, &api) < 0 || !(api.features & UFFD_FEATURE_WP_ASYNC)) {
		L->track_off = "userfaultfd has no asynchronous write protection (UFFD_FEATURE_WP_ASYNC, Linux >= 6.7)";
		goto off;
	}
	for (; done < L->nregions; done++) {
		struct uffdio_register reg = { .range = { (uintptr_t)L->reg[done].addr,
							  L->reg[done].npages * L->ps },
					       .mode = UFFDIO_REGISTER_MODE_WP };

		if (ioctl(L->uffd_track, UFFDIO_REGISTER, &reg) < 0) {
			L->track_off = "asynchronous write-protect registration refused";
			goto off;
		}
	}
	a.start = (uintptr_t)L->reg[0].addr;
	a.end = a.start + L->ps;
	a.vec = (uintptr_t)L->scanvec;
	a.vec_len = TRACK_VEC;
	if (ioctl(L->pagemap, PAGEMAP_SCAN, &a) < 0) {
		L->track_off = "no PAGEMAP_SCAN ioctl on /proc/self/pagemap (Linux >= 6.7)";
		goto off;
	}
	for (uint64_t p = 0; p < L->npages; p++)
		L->pages[p].flags |= PG_TRACKED | PG_DIRTY;
	L->track_off = NULL;
	L->ops.written = lv_written;
	return;
off:
	while (done--) {
		struct uffdio_range r = { (uintptr_t)L->reg[done].addr, L->reg[done].npages * L->ps };

		ioctl(L->uffd_track, UFFDIO_UNREGISTER, &r);
	}
	if (L->uffd_track >= 0)
		close(L->uffd_track);
	L->uffd_track = -1;
}

void real_live_free(struct real_live *L)
{
	if (!L)
		return;
	if (L->uffd >= 0 && L->pages)
		runs_flush(L);
	cow_close(L);
	if (L->uffd >= 0)
		close(L->uffd); /* unregisters every range and wakes any waiter */
	if (L->stage)
		munmap(L->stage, (size_t)STAGE_SLOTS * L->ps);
	if (L->uffd_track >= 0)
		close(L->uffd_track);
	if (L->pagemap >= 0)
		close(L->pagemap);
	for (uint32_t n = 0; n < REAL_LIVE_MAX_NODES; n++) {
		struct live_pool *pl = &L->pools[n];

		if (pl->view)
			munmap(pl->view, pl->pages * L->ps);
		if (pl->fd >= 0)
			close(pl->fd); /* mappings of merged pages keep the file alive */
		free(pl->free_off);
	}
	free(L->reg);
	sp_hot_free(L->pages, L->npages, sizeof(*L->pages));
	free(L->chunk_merged);
	free(L->chunk_unpolled);
	bk_frames_release(&L->frames);
	free(L->pmbuf);
	free(L->zero_buf);
	if (L->mc_held)
		real_mapcount_release(&L->mc, NULL);
	free(L->scanvec);
	free(L->cow_state);
	free(L->cow_q);
	free(L->cow_work);
	free(L->win_when);
	free(L->win_quiet);
	pthread_mutex_destroy(&L->cow_lock);
	free(L);
}

/*
 * Opens the userfaultfd and registers every region for write-protection;
 * with track, the regions go to the tracking userfaultfd when the kernel
 * has it (track_open), to the merge one otherwise.
 */
static int uffd_setup(struct real_live *L, bool track, struct sp_err *err)
{
	struct uffdio_api api = { .api = UFFD_API, .features = L->can_move ? UFFD_FEATURE_MOVE : 0 };

	L->uffd = uffd_open();
	if (L->uffd < 0)
		return sp_err_set(err, errno == EPERM || errno == EACCES ? SP_EPERM : SP_ENOTSUP,
				  "userfaultfd: %s (needs root, vm.unprivileged_userfaultfd=1 or access to /dev/userfaultfd)",
				  strerror(errno));
	if (ioctl(L->uffd, UFFDIO_API, &api) < 0 || !(api.ioctls & (1ull << _UFFDIO_REGISTER)))
		return sp_err_set(err, SP_ENOTSUP, "userfaultfd API handshake failed: %s",
				  strerror(errno));
	if (track)
		track_open(L);
	else
		L->track_off = "not asked for";
	for (uint32_t i = 0; i < L->nregions && L->uffd_track < 0; i++) {
		if (uffd_register(L, L->reg[i].addr, L->reg[i].npages * L->ps) < 0)
			return sp_err_set(err, errno == EINVAL ? SP_EINVAL : SP_ENOTSUP,
					  "region %u: userfaultfd write-protect registration: %s (private anonymous memory only)",
					  i, strerror(errno));
	}
	return 0;
}

/*
 * The staging area of freeze by move: private anonymous pages like the
 * regions' (UFFDIO_MOVE wants the same protections on both sides), kept
 * small pages, registered with the merge userfaultfd (a move's destination
 * must be registered with the userfaultfd that moves).  Off (every page
 * protected, as with REAL_LIVE_FREEZE_PROTECT) when any step fails.
 */
static void stage_open(struct real_live *L)
{
	size_t len = (size_t)STAGE_SLOTS * L->ps;
	void *a;

	if (!L->can_move)
		return;
	a = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (a == MAP_FAILED)
		return;
	madvise(a, len, MADV_NOHUGEPAGE);
	if (uffd_register_fd(L->uffd, a, len, UFFDIO_REGISTER_MODE_MISSING) < 0) {
		munmap(a, len);
		return;
	}
	L->stage = a;
}

int real_live_new(struct real_live **out, const struct real_live_region *regions, uint32_t n,
		  const struct real_live_config *cfg, struct sp_err *err)
{
	struct real_live *L;
	long ps = sysconf(_SC_PAGESIZE);
	int rc;

	*out = NULL;
	if (n == 0)
		return sp_err_set(err, SP_EINVAL, "no region to merge");
	L = calloc(1, sizeof(*L));
	if (!L)
		return sp_err_set(err, SP_ENOMEM, "out of memory");
	L->uffd = L->uffd_track = L->pagemap = L->uffd_cow = L->cow_efd = -1;
	pthread_mutex_init(&L->cow_lock, NULL);
	L->ops = live_backend_ops;
	for (uint32_t i = 0; i < REAL_LIVE_MAX_NODES; i++)
		L->pools[i].fd = -1;
	L->ps = (uint32_t)ps;
	L->nregions = n;
	L->strict_nodes = cfg && cfg->strict_nodes;
	L->protect_in_read = cfg && cfg->track_protect == REAL_LIVE_PROTECT_IN_READ;
	L->reg = calloc(n, sizeof(*L->reg));
	if (!L->reg)
		goto nomem;
	for (uint32_t i = 0; i < n; i++) {
		const struct real_live_region *r = &regions[i];

		if (!r->addr || r->len == 0 || (uintptr_t)r->addr % (uintptr_t)ps ||
		    r->len % (uint64_t)ps) {
			rc = sp_err_set(err, SP_EINVAL, "region %u (%p, %llu bytes) is not page aligned",
					i, r->addr, (unsigned long long)r->len);
			goto fail;
		}
		L->reg[i].addr = r->addr;
		L->reg[i].first = L->npages;
		L->reg[i].npages = r->len / (uint64_t)ps;
		L->reg[i].guest = r->guest;
		L->reg[i].domain = r->domain;
		L->reg[i].node_hint = r->node_hint;
		L->reg[i].win_base = L->nwin;
		L->nwin += ((uintptr_t)r->addr + r->len - 1) / (TRACK_WINDOW * (uint64_t)ps) -
			   (uintptr_t)r->addr / (TRACK_WINDOW * (uint64_t)ps) + 1;
		L->npages += L->reg[i].npages;
	}
	L->pages = sp_hot_calloc(L->npages, sizeof(*L->pages)); /* every entry, every pass */
	L->chunk_merged = calloc(L->npages / CHUNK + 1, sizeof(*L->chunk_merged));
	L->chunk_unpolled = calloc(L->npages / CHUNK + 1, 1);
	L->pmbuf = malloc(CHUNK * sizeof(*L->pmbuf));
	L->zero_buf = calloc(1, L->ps);
	if (!L->pages || !L->chunk_merged || !L->chunk_unpolled || !L->pmbuf || !L->zero_buf ||
	    bk_frames_init(&L->frames, sizeof(struct live_fdata)) < 0)
		goto nomem;
	for (uint64_t p = 0; p < L->npages; p++)
		L->pages[p].flags = PG_PRESENT;
	if (cfg && cfg->topo) {
		L->topo = *cfg->topo;
		L->fake_topo = true;
		L->nnodes = cfg->topo->nnodes ? cfg->topo->nnodes : 1;
	} else {
		L->topo.bind = true;
		L->nnodes = (uint32_t)host_nodes();
	}
	if (L->nnodes > REAL_LIVE_MAX_NODES)
		L->nnodes = REAL_LIVE_MAX_NODES;
	if (L->fake_topo || L->nnodes > 1)
		query_nodes(L);
	L->zero_csum = page_hash(L->zero_buf, L->ps);

	L->pagemap = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
	if (L->pagemap < 0) {
		rc = sp_err_set(err, SP_ENOTSUP, "cannot open /proc/self/pagemap: %s", strerror(errno));
		goto fail;
	}
	L->zero_pfn = find_zero_pfn(L);
	L->can_move = !(cfg && cfg->freeze == REAL_LIVE_FREEZE_PROTECT) &&
		      (uffd_features() & UFFD_FEATURE_MOVE);
	rc = uffd_setup(L, cfg && cfg->track_writes, err);
	if (rc < 0)
		goto fail;
	stage_open(L);
	if (cfg && cfg->cow_events)
		cow_open(L);
	if (cfg && cfg->max_map_count)
		L->max_map_count = cfg->max_map_count;
	else if ((L->mc_held = real_mapcount_hold(&L->mc, NULL, NULL, NULL) == 0))
		L->max_map_count = L->mc.limit; /* not lowered under us by another run's end */
	else if (real_map_count_get(&L->max_map_count, NULL) < 0)
		L->max_map_count = 65530;
	L->base_vmas = real_count_vmas() + 2 * L->nnodes; /* + the pool views */
	L->vmas_seen = L->base_vmas;
	L->vmas_seen_ns = sp_mono_ns();
	*out = L;
	return 0;
nomem:
	rc = sp_err_set(err, SP_ENOMEM, "out of memory for %llu pages",
			(unsigned long long)L->npages);
fail:
	real_live_free(L);
	return rc;
}

/* ---- the merge primitives ------------------------------------------------ */

/* Registers p's own VMA with the userfaultfd if it is not yet. */
static int ensure_registered(struct real_live *L, bk_page p, uint8_t *addr)
{
	if (!(L->pages[p].flags & PG_UNREG))
		return 0;
	if (uffd_register(L, addr, L->ps) < 0)
		return SP_ENOTSUP;
	L->pages[p].flags &= (uint8_t)~PG_UNREG;
	return 0;
}

static int track_detach(struct real_live *L, bk_page p, uint8_t *addr);
static void track_attach(struct real_live *L, bk_page p, uint8_t *addr);

static int un_miss(struct real_live *L, bk_page p, uint8_t *addr);

static int protect(struct real_live *L, bk_page p, uint8_t *addr)
{
	int rc = cow_disarm(L, p, addr); /* never: a watched page is not private (defensive) */

	if (rc == 0 && (L->pages[p].xflags & PX_MISS))
		rc = un_miss(L, p, addr); /* a failed undo of a freeze by move: never emptied in MISSING mode */

	if (rc == 0)
		rc = track_detach(L, p, addr);

	if (rc == 0)
		rc = ensure_registered(L, p, addr);

	if (rc < 0)
		return rc;
	/*
	 * A page never touched has no PTE, and write-protecting an empty PTE of
	 * anonymous memory does nothing (the merge userfaultfd has no
	 * UFFD_FEATURE_WP_UNPOPULATED markers): the compare's read would then
	 * map the zero page unprotected, and a write between the compare and
	 * the remap would go into a copy the remap drops.  Reading the page
	 * first gives it a PTE (the zero page) that the protection covers.
	 */
	(void)*(volatile const uint8_t *)addr;
	return uffd_wp(L, addr, L->ps, true) < 0 ? SP_EIO : 0;
}

static void unprotect(struct real_live *L, uint8_t *addr)
{
	uffd_wp(L, addr, L->ps, false); /* also wakes blocked writers */
}

/* A merge of p was refused after protect(): writers go on, and p is tracked again. */
static void release(struct real_live *L, bk_page p, uint8_t *addr)
{
	unprotect(L, addr);
	track_attach(L, p, addr);
}

/* ---- freeze by move ------------------------------------------------------ */

/*
 * Freeze by move (REAL_LIVE_FREEZE_MOVE, the default where the kernel has
 * UFFDIO_MOVE).  protect() freezes a page for its compare with a
 * synchronous write protection, which flushes its TLB entry; with write
 * tracking the page must first leave the tracking userfaultfd, whose
 * unregistration makes the PTE writable again (a second flush), and the
 * remap unmaps the old page (a third).  On a PVM guest each is a
 * hypervisor exit of 4-79 us (bench/README.md, issue 15, twentieth round).
 * Instead freeze_move():
 *   1. registers p's page in MISSING mode with the userfaultfd that holds
 *      it (the tracking one, or the merge one): a VMA split, no PTE change;
 *   2. moves the page out (UFFDIO_MOVE, on the merge userfaultfd, with
 *      which the staging area is registered) into the next staging slot:
 *      one flush.  p's PTE is now empty: any access to p, a read too,
 *      takes a MISSING fault and sleeps in the kernel (nobody reads that
 *      userfaultfd's messages: the engine wakes p itself);
 *   3. the compare reads the staged page.  Equal: p is booked onto the
 *      frame and its run's remap maps the frame over the empty PTE (no
 *      flush: nothing is mapped there), then wakes p on both userfaultfds;
 *      the staged page is garbage, dropped with up to STAGE_SLOTS - 1
 *      others by one MADV_DONTNEED of the staging area (stage_drop(): one
 *      full flush).  Different: the page moves back (which wakes p's
 *      sleepers) and p leaves MISSING mode (un_miss(): unregister, which
 *      wakes too, and register for write protection alone, with no PTE
 *      change: a moved page carries no write-protect bit, so write
 *      tracking reports it written), SP_ECHANGED.
 * So a merge costs one flush (plus 1/64 of one) instead of three.
 *
 * Why no write is lost or torn: a store completes before the move (it is
 * in the page compared), or faults on the empty PTE and sleeps until p is
 * mapped again: the frame (then it writes its COW copy of the content
 * compared) or its own page moved back.  A MISSING fault is answered by
 * no thread (the COW-event thread reads only its own userfaultfd) and
 * nothing fills an empty PTE of a MISSING range but userfaultfd's own
 * ioctls, so a reader never sees zeros.  Kernel-mode accesses (read(2)
 * into the page, process_vm_writev) sleep likewise; an access that
 * cannot sleep (ptrace's PEEK/POKE, a GUP without FAULT_FLAG_ALLOW_RETRY)
 * fails with EFAULT/EIO during the freeze, as a write did under the old
 * protection, now a read too.  A page stays frozen until its run's remap:
 * with deferred remaps (the engine), readers of a page merged in a batch
 * wait for the batch's end, as writers did; the engine's own reads of a
 * pending page (checksum, compare) read its frame (read_addr()).
 *
 * Where the kernel will not move the page, the freeze falls back to
 * protect(), counted: a page in a pool file mapping (a COW copy in our
 * one-page VMA: UFFDIO_MOVE moves anonymous VMAs only, EINVAL; not tried),
 * a page mapped twice (EBUSY; a pinned one is refused), an mlocked region (EINVAL).  A
 * never-touched page is read first (the zero page, which moves too), so
 * ENOENT is not expected.  A subpage of a transparent huge page: the kernel
 * splits the PMD and the folio first, or refuses (EBUSY).
 */

/* The userfaultfd holding p's VMA: the tracking one, or the merge one. */
static inline int ctx_fd(const struct real_live *L, const struct live_page *pg)
{
	return (pg->flags & PG_TRACKED) ? L->uffd_track : L->uffd;
}

static bool track_plain(const struct real_live *L, bk_page q, bk_page p);

/* Can p's VMA merge with q's (a neighbour of p) once both are registered alike? */
static bool vma_plain(const struct real_live *L, bk_page q, bk_page p)
{
	const struct live_region *r = region_of(L, p);

	if (q < r->first || q >= r->first + r->npages)
		return true;
	if (L->uffd_track >= 0)
		return track_plain(L, q, p);
	return !(L->pages[q].flags & (PG_OWNVMA | PG_UNREG));
}

/*
 * p (present again, or empty on purpose: merge_zero) leaves MISSING mode:
 * its VMA is registered for write protection alone with the same
 * userfaultfd, as before the freeze, and merges back with its neighbours
 * when they are plain.  The unregistration wakes p's sleepers.  0, or
 * SP_EIO with PX_MISS kept (retried before p is ever emptied).
 */
static int un_miss(struct real_live *L, bk_page p, uint8_t *addr)
{
	struct live_page *pg = &L->pages[p];
	int fd = ctx_fd(L, pg);
	struct uffdio_range r = { (uintptr_t)addr, L->ps };

	if (ioctl(fd, UFFDIO_UNREGISTER, &r) < 0) {
		L->freeze_errors++;
		return SP_EIO;
	}
	pg->xflags &= (uint8_t)~PX_MISS;
	if (uffd_register_fd(fd, addr, L->ps, UFFDIO_REGISTER_MODE_WP) < 0) {
		/* Unregistered, as a new VMA of ours: registered again before its next freeze. */
		pg->flags = (uint8_t)((pg->flags & ~(PG_TRACKED | PG_FRESH)) | PG_UNREG | PG_DIRTY);
		L->freeze_errors++;
		return 0;
	}
	if ((pg->flags & PG_OWNVMA) && (p == 0 || vma_plain(L, p - 1, p)) && vma_plain(L, p + 1, p)) {
		pg->flags &= (uint8_t)~PG_OWNVMA;
		L->file_vma_pages--;
	} else if (pg->xflags & PX_NEWVMA) {
		L->vma_adds++; /* it stays a VMA of its own */
	}
	pg->xflags &= (uint8_t)~PX_NEWVMA;
	return 0;
}

/* Drops the staged pages (each merged, so equal to its frame): one flush for all. */
static void stage_drop(struct real_live *L)
{
	if (!L->stage_used)
		return;
	madvise(L->stage, (size_t)L->stage_used * L->ps, MADV_DONTNEED);
	L->stage_used = 0;
	L->stage_drops++;
}

/* Room for n pages, before a merge freezes the first of them (slots in use are never dropped). */
static void stage_room(struct real_live *L, uint32_t n)
{
	if (L->stage && L->stage_used + n > STAGE_SLOTS)
		stage_drop(L);
}

/*
 * After a move refused with EBUSY: is the page pinned?  The kernel refuses
 * to move an anonymous page that may be pinned for DMA (a device, direct
 * I/O, io_uring fixed buffers: folio_maybe_dma_pinned()) or that is not
 * exclusive to this process (shared with a child since a fork).  pagemap
 * tells the second (bit 56, exclusively mapped), so an exclusive page
 * refused is taken for pinned: a write through its pin would land in the
 * frame a remap replaced and be lost, so its merge is refused, as the
 * kernel's write_protect_page() refuses one.  A page shared with a child
 * is write-protected as before.  Some refusals are not pins: a page once
 * shared with a child that has since let it go reads exclusive here while
 * the kernel, not sure of it (not PageAnonExclusive until the next write
 * fault), still refuses the move; and a huge page the kernel could not
 * split.  Those merges are refused too: a merge missed until the page is
 * written again, nothing lost (tests/real/test_live.c's fork test meets
 * it about one run in three).
 */
static bool pinned(const struct real_live *L, const uint8_t *addr)
{
	uint64_t e;

	if (pagemap_read(L, addr, 1, &e) < 0)
		return true; /* unknown: refusing loses nothing */
	return (e & PM_PRESENT) && (e & PM_EXCLUSIVE) && !(e & PM_FILE);
}

/*
 * Steps 1 and 2 above: 0 with *at the staged page, 1 when the page is not
 * to be moved (the caller protects it), or a negative error (SP_EPINNED:
 * the page is pinned, see pinned()).
 */
static int freeze_move(struct real_live *L, bk_page p, uint8_t *addr, const uint8_t **at)
{
	struct live_page *pg = &L->pages[p];
	uint8_t *slot;
	struct uffdio_move mv;
	int fd, e;

	if (!L->stage || L->stage_used == STAGE_SLOTS)
		return 1;
	if (pg->flags & PG_INFILE) {
		L->freeze_infile++;
		return 1;
	}
	if (pg->xflags & PX_MISS) /* a failed undo: registered MISSING already */
		un_miss(L, p, addr);
	(void)*(volatile const uint8_t *)addr; /* never touched: its zero page, which moves too */
	fd = ctx_fd(L, pg);
	if (uffd_register_fd(fd, addr, L->ps, UFFDIO_REGISTER_MODE_MISSING | UFFDIO_REGISTER_MODE_WP) < 0)
		return 1;
	pg->xflags |= PX_MISS;
	/*
	 * Its written state is unknown from here on; it is a VMA of its own
	 * until un_miss() or the remap (the VMA estimate charges it at the
	 * remap, as without the move: frozen neighbours share a VMA).
	 */
	pg->flags = (uint8_t)((pg->flags & ~(PG_UNREG | PG_FRESH)) | PG_DIRTY);
	if (!(pg->flags & PG_OWNVMA)) {
		pg->flags |= PG_OWNVMA;
		pg->xflags |= PX_NEWVMA;
		L->file_vma_pages++;
	}
	slot = L->stage + (size_t)L->stage_used * L->ps;
	mv = (struct uffdio_move){ .dst = (uintptr_t)slot, .src = (uintptr_t)addr, .len = L->ps,
				   .mode = UFFDIO_MOVE_MODE_DONTWAKE };
	if (ioctl(L->uffd, UFFDIO_MOVE, &mv) < 0) {
		e = errno;
		L->move_refused[e == EBUSY ? 0 : e == EINVAL ? 1 : e == ENOENT ? 2 : 3]++;
		un_miss(L, p, addr);
		if (e == EBUSY && pinned(L, addr)) {
			L->pinned_refusals++;
			return SP_EPINNED;
		}
		return 1;
	}
	L->stage_used++;
	pg->xflags |= PX_MOVED;
	L->freeze_moved++;
	*at = slot;
	return 0;
}

/*
 * A refused merge of a moved page: the page goes back (the move wakes p's
 * sleepers, who find it as it was) and p leaves MISSING mode.  The move
 * back cannot find p filled (see above); if it ever did, the staged page
 * is kept, counted in freeze_errors, and p keeps what is there.
 */
static void move_back(struct real_live *L, bk_page p, uint8_t *addr, const uint8_t *at)
{
	struct live_page *pg = &L->pages[p];
	struct uffdio_move mv = { .dst = (uintptr_t)addr, .src = (uintptr_t)at, .len = L->ps, .mode = 0 };

	if (ioctl(ctx_fd(L, pg), UFFDIO_MOVE, &mv) < 0)
		L->freeze_errors++;
	pg->xflags &= (uint8_t)~PX_MOVED;
	L->freeze_moved_back++;
	un_miss(L, p, addr);
	track_attach(L, p, addr); /* a page of the merge userfaultfd joins the tracking one */
}

/*
 * Freezes p for a merge's compare: moved (freeze_move) or, where that does
 * not apply, write-protected (protect).  *at: where its content is read.
 */
static int freeze(struct real_live *L, bk_page p, uint8_t *addr, const uint8_t **at)
{
	int rc = freeze_move(L, p, addr, at);

	if (rc <= 0)
		return rc;
	L->freeze_protected++;
	*at = addr;
	return protect(L, p, addr);
}

/* The merge of frozen p is refused: it goes on as it was. */
static void thaw(struct real_live *L, bk_page p, uint8_t *addr, const uint8_t *at)
{
	if (L->pages[p].xflags & PX_MOVED)
		move_back(L, p, addr, at);
	else
		release(L, p, addr);
}

/* Where the engine reads p: a page frozen by a move and merged reads its frame (equal, and still). */
static inline const uint8_t *read_addr(const struct real_live *L, bk_page p)
{
	const struct live_page *pg = &L->pages[p];

	if (__builtin_expect(pg->xflags & PX_MOVED, 0))
		return frame_addr(L, pg->slot);
	return page_addr(L, p);
}

/* Wakes p's sleepers once p maps its frame: a moved page's sleep on its own userfaultfd. */
static void wake_frozen(struct real_live *L, uint8_t *addr, uint64_t n, bool moved_track)
{
	uffd_wake(L, addr, n * L->ps);
	if (moved_track) {
		struct uffdio_range r = { (uintptr_t)addr, n * L->ps };

		ioctl(L->uffd_track, UFFDIO_WAKE, &r);
	}
}

static uint64_t vma_estimate(const struct real_live *L)
{
	return L->vmas_seen + 2 * L->vma_adds;
}

/* The estimate becomes a count: the pending remaps are made, then /proc/self/maps is read. */
static void vma_recount(struct real_live *L)
{
	uint64_t views = 0;

	runs_flush(L);
	for (uint32_t n = 0; n < L->nnodes; n++)
		views += L->pools[n].fd < 0; /* a pool opened later adds its view */
	L->vmas_seen = real_count_vmas() + views;
	L->vmas_seen_ns = sp_mono_ns();
	L->vma_adds = 0;
	L->vma_recounts++;
}

/*
 * Would new_pages more pages in VMAs of ours cross max_map_count?  Each may
 * split a VMA in three (+2), the bound the estimate charges; pages merged in
 * runs share a VMA and cost far less, so near the limit the estimate is
 * replaced by a count before any merge is refused (at most once per
 * VMA_RECOUNT_PAGES pages or VMA_RECOUNT_NS: a count reads the whole maps file).
 */
static bool map_limit(struct real_live *L, unsigned new_pages)
{
	if (vma_estimate(L) + 2ull * new_pages + MAP_MARGIN <= L->max_map_count)
		return false;
	if (L->vma_adds >= VMA_RECOUNT_PAGES || sp_mono_ns() - L->vmas_seen_ns > VMA_RECOUNT_NS) {
		vma_recount(L);
		if (vma_estimate(L) + 2ull * new_pages + MAP_MARGIN <= L->max_map_count)
			return false;
	}
	L->map_limit_refusals++;
	return true;
}

/* Page p now lives in a VMA of ours that no userfaultfd holds yet (a new mapping, or just unregistered). */
static void own_vma(struct real_live *L, bk_page p, bool infile)
{
	struct live_page *pg = &L->pages[p];

	if (!(pg->flags & PG_OWNVMA)) {
		L->file_vma_pages++;
		L->vma_adds++;
	} else if (pg->xflags & PX_NEWVMA) {
		L->vma_adds++;
	}
	pg->xflags &= (uint8_t)~PX_NEWVMA;
	if (pg->flags & PG_TRACKED) /* a new mapping is not tracked: unknown from here on */
		pg->flags = (uint8_t)((pg->flags & ~(PG_TRACKED | PG_FRESH)) | PG_DIRTY);
	pg->flags |= PG_OWNVMA | PG_UNREG;
	pg->xflags &= (uint8_t)~PX_MISS; /* a new VMA, or one no userfaultfd holds */
	if (infile)
		pg->flags |= PG_INFILE;
	else
		pg->flags &= (uint8_t)~PG_INFILE;
}

/* ---- write tracking ------------------------------------------------------ */

/* A scan reported page q written (or could not tell): written since its last visit. */
static inline void mark_written(struct real_live *L, bk_page q)
{
	L->pages[q].flags |= PG_DIRTY;
}

static void cow_report(struct real_live *L, bk_page q);

/* A scan reported q written: a watched merged page's COW break, else a private page's write. */
static inline void scan_report(struct real_live *L, bk_page q)
{
	if (L->pages[q].xflags & PX_COWA)
		cow_report(L, q);
	else
		mark_written(L, q);
}

/* Write-protects the written pages of [start, end) (addresses) again: one run a window read found. */
static int track_protect(struct real_live *L, uint64_t start, uint64_t end)
{
	struct pm_scan_arg a = { .size = sizeof(a), .flags = PM_SCAN_WP_MATCHING, .start = start, .end = end,
				 .category_mask = PAGE_IS_WRITTEN, .return_mask = PAGE_IS_WRITTEN };

	L->track_wp_calls++;
	L->track_wp_pages += (end - start) / L->ps;
	return ioctl(L->pagemap, PAGEMAP_SCAN, &a) < 0 ? SP_EIO : 0;
}

/*
 * PAGEMAP_SCAN over the window of p (TRACK_WINDOW pages aligned by address,
 * within p's region): every page written since the previous scan that
 * covered it is reported and write-protected again (PM_SCAN_WP_MATCHING,
 * atomic per PTE), so a later write shows at the next scan.  Reported pages
 * get PG_DIRTY (it accumulates until lv_written() consumes it); every page
 * scanned gets PG_FRESH.  A window answers for those pages until
 * real_live_flush() (the end of an engine batch) or until it is
 * TRACK_FRESH_NS old (checked every 32 answers).  Pages the tracking
 * userfaultfd does not hold (their own VMAs) are skipped by the kernel.
 *
 * The protection is not the read's own (PM_SCAN_WP_MATCHING over the
 * window) but one PAGEMAP_SCAN per run of written pages the read found
 * (track_protect), unless the config asks for REAL_LIVE_PROTECT_IN_READ.
 * The kernel flushes a VMA piece's TLB entries from the first page it
 * protects to the end of the piece walked, one INVLPG a page up to 33
 * pages, and on a PVM guest each is a hypervisor exit: with the merged
 * pages' one-page VMAs cutting a window into ~20-page pieces, the read's own
 * protection cost ~7 INVLPGs per written page (55,264 from 10 s of a 20 s
 * replay of the 5% trace against 7,808 run by run; bench/README.md, issue
 * 15, twentieth round), where a run costs one system call more.  A write
 * between the read and its run's protection is not lost: its page is
 * already reported (and hashed at its next visit, after the protection); a
 * page first written after the read is not protected, so the next read
 * reports it.  The read asks for PAGE_IS_WPALLOWED too, so VMAs without
 * asynchronous write protection are skipped as the protecting read skips
 * them.  Unlike it, the read does not report an empty PTE as written (the
 * protecting read did, once, installing its marker): a tracked page is
 * empty only when never touched (PG_DIRTY from the start) or discarded
 * (real_live_discard() marks it).
 *
 * A window read in full under TRACK_PART_NS ago (a batch ended inside it,
 * and the next one comes back to it) is read from p to its end only: the
 * part behind p was answered by that read, and its walk over the VMAs of the
 * merged pages there is most of a window's cost (bench/README.md, issue 15,
 * tenth and eleventh rounds).  Nothing is lost by not reading it: a write
 * there stays marked in its PTE until a scan covers the page, and the
 * window's time of its last full read (win_when, the sweeps' clock) does
 * not move, so COW breaks of merged pages there are seen as late as before,
 * at the next full read or sweep.
 */
static int track_scan(struct real_live *L, bk_page p)
{
	const struct live_region *r = region_of(L, p);
	uint64_t span = TRACK_WINDOW * (uint64_t)L->ps, now = sp_mono_ns(), w;
	uintptr_t rs = (uintptr_t)r->addr, re = rs + r->npages * L->ps;
	uintptr_t a0 = ((uintptr_t)page_addr(L, p) / span) * span, a1 = a0 + span;
	struct pm_scan_arg a = { .size = sizeof(a), .flags = PM_SCAN_WP_MATCHING,
				 .category_mask = PAGE_IS_WRITTEN, .return_mask = PAGE_IS_WRITTEN,
				 .vec = (uintptr_t)L->scanvec, .vec_len = TRACK_VEC };
	bk_page lo, hi;
	uint64_t seen = __atomic_load_n(&L->cow_seen, __ATOMIC_RELAXED);
	bool part = false;

	if (a0 < rs)
		a0 = rs;
	if (a1 > re)
		a1 = re;
	lo = r->first + (a0 - rs) / L->ps;
	hi = r->first + (a1 - rs) / L->ps;
	w = r->win_base + a0 / span - rs / span;
	if (L->win_when && p > lo && now - L->win_when[w] < TRACK_PART_NS) {
		part = true;
		lo = p;
		a0 = (uintptr_t)page_addr(L, p);
	}
	if (!L->protect_in_read) {
		a.flags = 0; /* read only: each run found is protected apart (track_protect) */
		a.category_mask = PAGE_IS_WRITTEN | PAGE_IS_WPALLOWED;
	}
	a.start = a0;
	a.end = a1;
	for (;;) {
		long n = ioctl(L->pagemap, PAGEMAP_SCAN, &a);

		if (n < 0)
			return SP_EIO;
		for (long i = 0; i < n; i++) {
			bk_page q0 = r->first + (L->scanvec[i].start - rs) / L->ps;
			bk_page q1 = r->first + (L->scanvec[i].end - rs) / L->ps;

			if (!L->protect_in_read && track_protect(L, L->scanvec[i].start, L->scanvec[i].end) < 0)
				return SP_EIO;
			for (bk_page q = q0; q < q1; q++)
				scan_report(L, q);
		}
		if (a.walk_end >= a.end || a.walk_end <= a.start)
			break;
		a.start = a.walk_end; /* the vector was full: go on from where the walk stopped */
	}
	for (bk_page q = lo; q < hi; q++)
		L->pages[q].flags |= PG_FRESH;
	L->win_lo = lo;
	L->win_hi = hi;
	L->win_ns = now;
	if (L->win_when && !part)
		L->win_when[w] = now;
	if (L->win_quiet && __atomic_load_n(&L->cow_seen, __ATOMIC_RELAXED) != seen)
		L->win_quiet[w] = 0; /* a COW break: swept every 2 s again */
	L->track_scans++;
	L->track_part_scans += part;
	return 0;
}

/*
 * PAGEMAP_SCAN of page p alone (written since the previous scan that covered
 * it? write-protected again in the same step), for a merged page in a VMA of
 * its own that written() is asked about (not by ksm, which asks only about
 * private pages): a write is its COW break.
 */
static void track_scan_page(struct real_live *L, bk_page p)
{
	uintptr_t a0 = (uintptr_t)page_addr(L, p);
	struct pm_scan_arg a = { .size = sizeof(a), .flags = PM_SCAN_WP_MATCHING,
				 .start = a0, .end = a0 + L->ps,
				 .category_mask = PAGE_IS_WRITTEN, .return_mask = PAGE_IS_WRITTEN,
				 .vec = (uintptr_t)L->scanvec, .vec_len = TRACK_VEC };

	if (ioctl(L->pagemap, PAGEMAP_SCAN, &a) != 0) /* 0 regions: unwritten; 1 or an error: written */
		scan_report(L, p);
}

/*
 * backend written(): see backend.h; a page not tracked is always "written".
 *
 * A tracked private page in a VMA of its own (a COW break's private copy in
 * its pool mapping) outside a current window is answered "written" without a scan:
 * the algorithm hashes it.  A window around it would walk the one-page VMAs
 * of the merged pages beside it, and a PAGEMAP_SCAN of that page alone took
 * 2.6 us in the engine against 1.1-1.2 us for hashing the (cold) page on
 * this host (bench/README.md, issue 15, fourteenth round).  Its written
 * state stays in its PTE for the next window that covers it.
 */
static int lv_written(void *impl, bk_page p)
{
	struct real_live *L = impl;
	struct live_page *pg = &L->pages[p];
	int w = 1;

	if (p >= L->npages)
		return 1;
	if (pg->flags & PG_TRACKED) {
		/* The clock is read every 32 answers (a vDSO call costs as much as the rest). */
		if (!(pg->flags & PG_FRESH) || p < L->win_lo || p >= L->win_hi ||
		    (++L->win_calls % 32 == 0 && sp_mono_ns() - L->win_ns > TRACK_FRESH_NS)) {
			if ((pg->flags & PG_OWNVMA) && !(pg->xflags & PX_COWA)) {
				mark_written(L, p);
				L->track_unscanned++;
			} else if (pg->flags & PG_OWNVMA) {
				track_scan_page(L, p); /* a merged page: a COW break shows */
			} else if (track_scan(L, p) < 0) {
				mark_written(L, p);
			}
		}
		w = (pg->flags & PG_DIRTY) != 0;
	}
	pg->flags &= (uint8_t)~(PG_DIRTY | PG_FRESH);
	if (w)
		L->track_written++;
	else
		L->track_clean++;
	return w;
}

/*
 * Page p (tracked) is about to be write-protected for a merge, which needs
 * writers to wait: it leaves the tracking userfaultfd (its own VMA from now
 * on, registered with the merge one by protect()).  Its written state is
 * unknown from here on.
 */
static int track_detach(struct real_live *L, bk_page p, uint8_t *addr)
{
	struct live_page *pg = &L->pages[p];
	struct uffdio_range r = { (uintptr_t)addr, L->ps };

	if (!(pg->flags & PG_TRACKED))
		return 0;
	if (ioctl(L->uffd_track, UFFDIO_UNREGISTER, &r) < 0)
		return SP_EIO;
	pg->flags = (uint8_t)((pg->flags & ~(PG_TRACKED | PG_FRESH)) | PG_DIRTY);
	own_vma(L, p, (pg->flags & PG_INFILE) != 0);
	return 0;
}

/* Is q (a neighbour of p) tracked in the region's own VMA, or beyond p's region? */
static bool track_plain(const struct real_live *L, bk_page q, bk_page p)
{
	const struct live_region *r = region_of(L, p);

	if (q < r->first || q >= r->first + r->npages)
		return true;
	return (L->pages[q].flags & (PG_TRACKED | PG_OWNVMA)) == PG_TRACKED;
}

/*
 * Page p, private again (a refused merge, the zero page, a discard, a COW
 * break), goes back to the tracking userfaultfd; an anonymous page's VMA
 * merges with tracked neighbours (counted as merged when both sides are
 * plain).  On failure it stays unregistered and protect() registers it with
 * the merge userfaultfd.
 *
 * A page living in a pool file mapping (a COW break: its private copy in our
 * one-page VMA) is tracked too (asynchronous write protection takes any VMA),
 * but outside a current window its written() is "written" (see lv_written:
 * hashing it, ~1.1 us here, is cheaper than a PAGEMAP_SCAN of it alone).
 */
static void track_attach(struct real_live *L, bk_page p, uint8_t *addr)
{
	struct live_page *pg = &L->pages[p];
	struct uffdio_range r = { (uintptr_t)addr, L->ps };
	struct uffdio_register reg = { .range = r, .mode = UFFDIO_REGISTER_MODE_WP };

	if (L->uffd_track < 0 || (pg->flags & PG_TRACKED) || cow_disarm(L, p, addr) < 0)
		return;
	if (!(pg->flags & PG_UNREG)) {
		if (ioctl(L->uffd, UFFDIO_UNREGISTER, &r) < 0) /* wakes any waiter */
			return;
		pg->flags |= PG_UNREG;
	}
	if (ioctl(L->uffd_track, UFFDIO_REGISTER, &reg) < 0)
		return;
	pg->flags = (uint8_t)((pg->flags & ~PG_UNREG) | PG_TRACKED | PG_DIRTY);
	if ((pg->flags & (PG_OWNVMA | PG_INFILE)) == PG_OWNVMA &&
	    (p == 0 || track_plain(L, p - 1, p)) && track_plain(L, p + 1, p)) {
		pg->flags &= (uint8_t)~PG_OWNVMA;
		L->file_vma_pages--;
	}
}

/*
 * A page's NUMA policy (the application's mbind), kept across a remap: a new
 * mapping starts with the default policy, so a COW copy or a refault would
 * land on whatever node the writer runs on.  Only on hosts with several
 * nodes (two syscalls per remap).
 */
struct page_policy {
	int mode;
	unsigned long mask[REAL_LIVE_MAX_NODES / (8 * sizeof(unsigned long)) + 1];
	bool keep;
};

static void policy_save(const struct real_live *L, void *addr, struct page_policy *pp)
{
	pp->keep = false;
	if (L->nnodes < 2 || L->fake_topo)
		return;
	memset(pp->mask, 0, sizeof(pp->mask));
	if (get_mempolicy(&pp->mode, pp->mask, REAL_LIVE_MAX_NODES, addr, MPOL_F_ADDR) == 0 &&
	    pp->mode != MPOL_DEFAULT)
		pp->keep = true;
}

static void policy_restore(const struct real_live *L, void *addr, uint64_t n,
			   const struct page_policy *pp)
{
	if (pp->keep)
		mbind(addr, n * L->ps, (int)pp->mode, pp->mask, REAL_LIVE_MAX_NODES, 0);
}

/* Remaps addr (MAP_FIXED) as fd at off, or as fresh anonymous memory when fd < 0, keeping its policy. */
static void *remap_pages(const struct real_live *L, uint8_t *addr, uint64_t n, int fd, off_t off)
{
	struct page_policy pp;
	void *r;

	policy_save(L, addr, &pp);
	r = fd < 0 ? mmap(addr, n * L->ps, PROT_READ | PROT_WRITE,
			  MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0)
		   : mmap(addr, n * L->ps, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_FIXED, fd, off);
	if (r != MAP_FAILED)
		policy_restore(L, addr, n, &pp);
	return r;
}

static void *remap_page(const struct real_live *L, uint8_t *addr, int fd, off_t off)
{
	return remap_pages(L, addr, 1, fd, off);
}

/*
 * Replaces protected page p (whose content equals the frame's) by a private
 * mapping of frame slot.  If the kernel refuses, the page is put back as a
 * private page with the frame's content (= its own), so nothing is lost.
 */
static int remap_onto(struct real_live *L, bk_page p, uint8_t *addr, uint32_t slot)
{
	const struct live_fdata *fr = fdata(L, slot);
	struct live_page *pg = &L->pages[p];
	void *r = remap_page(L, addr, L->pools[fr->pool].fd, (off_t)(fr->off * L->ps));
	bool moved_track = (pg->xflags & PX_MOVED) && (pg->flags & PG_TRACKED);

	if (r == MAP_FAILED && (pg->xflags & PX_MOVED)) {
		/* Frozen by a move, its PTE empty: filled with the frame's content (= its own), which wakes it. */
		struct uffdio_copy c = { .dst = (uintptr_t)addr, .src = (uintptr_t)frame_addr(L, slot),
					 .len = L->ps, .mode = 0 };

		if (ioctl(ctx_fd(L, pg), UFFDIO_COPY, &c) < 0)
			L->freeze_errors++;
		pg->xflags &= (uint8_t)~PX_MOVED;
		un_miss(L, p, addr);
		track_attach(L, p, addr);
		return SP_ENOMEM;
	}
	pg->xflags &= (uint8_t)~PX_MOVED;
	if (r == MAP_FAILED) {
		unsigned char v;

		if (mincore(addr, L->ps, &v) < 0 && errno == ENOMEM) {
			/* The old page is gone: rebuild it from the (equal) frame. */
			if (remap_page(L, addr, -1, 0) == MAP_FAILED)
				return SP_ENOMEM; /* cannot happen: the range was just ours */
			memcpy(addr, frame_addr(L, slot), L->ps);
			own_vma(L, p, false);
			uffd_wake(L, addr, L->ps);
			track_attach(L, p, addr);
		} else {
			release(L, p, addr);
		}
		return SP_ENOMEM;
	}
	own_vma(L, p, true);
	cow_arm(L, p, 1);
	wake_frozen(L, addr, 1, moved_track);
	return 0;
}

/* ---- runs ------------------------------------------------------------------ */

/*
 * Remaps the run's pages: one mmap of the whole run onto its consecutive
 * pool pages, or page by page if the kernel refuses it.  A page whose remap
 * fails stays private with its (equal) content while the bookkeeping still
 * counts it on its frame: the next poll finds it "written" and settles it as
 * a COW break, the way every unshare is reported.
 */
static void run_flush(struct real_live *L, struct live_run *r)
{
	uint8_t *addr;
	uint64_t t0;

	if (!r->n)
		return;
	t0 = sp_mono_ns();
	addr = page_addr(L, r->first);
	if (r->n > 1 && remap_pages(L, addr, r->n, L->pools[r->pool].fd, (off_t)(r->off * L->ps)) !=
				MAP_FAILED) {
		bool moved_track = false;

		for (uint32_t i = 0; i < r->n; i++) {
			struct live_page *pg = &L->pages[r->first + i];

			moved_track |= (pg->xflags & PX_MOVED) && (pg->flags & PG_TRACKED);
			pg->xflags &= (uint8_t)~PX_MOVED;
			own_vma(L, r->first + i, true);
		}
		cow_arm(L, r->first, r->n);
		wake_frozen(L, addr, r->n, moved_track);
		L->remaps++;
	} else {
		for (uint32_t i = 0; i < r->n; i++) {
			bk_page q = r->first + i;

			if (remap_onto(L, q, page_addr(L, q), L->pages[q].slot) < 0)
				L->remap_failures++;
			else
				L->remaps++;
		}
	}
	L->remapped_pages += r->n;
	L->merge_ns += sp_mono_ns() - t0;
	r->n = 0;
}

static void runs_flush(struct real_live *L)
{
	for (uint32_t i = 0; i < NRUNS; i++)
		run_flush(L, &L->runs[i]);
}

void real_live_flush(struct real_live *L)
{
	runs_flush(L);
	L->win_hi = L->win_lo; /* a batch is over: the next one reads its windows afresh */
}

#define WARM_FRAMES_MAX ((size_t)64 << 10)

void real_live_warm(const struct real_live *L)
{
	sp_prefetch_small(L->frames.slot, (size_t)L->frames.n * sizeof(*L->frames.slot), WARM_FRAMES_MAX);
}

void real_live_defer_remaps(struct real_live *L, bool on)
{
	if (!on)
		runs_flush(L);
	L->defer = on;
}

/*
 * Protected page p, compared equal to frame slot, is booked onto it; its
 * remap waits in a run if it extends one (the next page, onto the next
 * offset of the same pool, in the same region) or starts a new one (the
 * older run is remapped first if both are in use).  Writers of p wait in
 * the kernel until the run is remapped.
 */
static void run_add(struct real_live *L, bk_page p, uint32_t slot)
{
	uint64_t off = fdata(L, slot)->off;
	uint32_t pool = fdata(L, slot)->pool;
	struct live_run *r;

	for (uint32_t i = 0; i < NRUNS; i++) {
		r = &L->runs[i];
		if (r->n && r->n < RUN_MAX && r->pool == pool && r->first + r->n == p &&
		    r->off + r->n == off && region_of(L, r->first) == region_of(L, p)) {
			r->n++;
			set_slot(L, p, slot);
			return;
		}
	}
	if (L->runs[NRUNS - 1].n) {
		/* Runs are packed from runs[0], the oldest: remap it to make room. */
		run_flush(L, &L->runs[0]);
		memmove(&L->runs[0], &L->runs[1], (NRUNS - 1) * sizeof(L->runs[0]));
		L->runs[NRUNS - 1].n = 0;
	}
	r = L->runs;
	while (r->n)
		r++;
	*r = (struct live_run){ .first = p, .off = off, .n = 1, .pool = pool };
	set_slot(L, p, slot);
}

static int check_private(const struct real_live *L, bk_page p)
{
	if (p >= L->npages || !(L->pages[p].flags & PG_PRESENT) ||
	    L->pages[p].slot != SLOT_PRIVATE)
		return SP_EINVAL;
	return 0;
}

static int merge_frame_slot(struct real_live *L, bk_page p, uint32_t slot)
{
	struct live_page *pg = &L->pages[p];
	const struct bk_frame_slot *fr = &L->frames.slot[slot];
	uint8_t *addr;
	const uint8_t *at;
	uint64_t t0 = sp_mono_ns(), ns0 = L->merge_ns;
	int rc = check_private(L, p);

	if (rc < 0)
		return rc;
	if (region_of(L, p)->domain != fr->domain)
		return SP_EDENIED;
	if (L->strict_nodes && pg->node != fr->node)
		return SP_EDENIED;
	if (!(pg->flags & PG_OWNVMA) && map_limit(L, 1))
		return SP_ELIMIT;
	addr = page_addr(L, p);
	stage_room(L, 1);
	rc = freeze(L, p, addr, &at);
	if (rc < 0)
		return rc;
	L->counts[BK_COST_COMPARE]++; /* the re-compare of the frozen page */
	if (memcmp(at, frame_addr(L, slot), L->ps) != 0) {
		thaw(L, p, addr, at);
		return SP_ECHANGED;
	}
	run_add(L, p, slot);
	L->merges++;
	L->counts[BK_COST_MERGE]++;
	L->merge_ns = ns0 + (sp_mono_ns() - t0); /* the runs it remapped (run_add) included once */
	L->timed_merges++;
	L->timed_pages++;
	if (!L->defer)
		runs_flush(L);
	return 0;
}

/* ---- backend contract ------------------------------------------------- */

static uint64_t lv_npages(void *impl) { return ((struct real_live *)impl)->npages; }
static uint32_t lv_nnodes(void *impl) { return ((struct real_live *)impl)->nnodes; }
static uint32_t lv_page_size(void *impl) { return ((struct real_live *)impl)->ps; }
static uint32_t lv_zero_checksum(void *impl) { return ((struct real_live *)impl)->zero_csum; }

static uint32_t lv_nguests(void *impl)
{
	struct real_live *L = impl;
	uint32_t n = 0;

	for (uint32_t i = 0; i < L->nregions; i++) {
		if (L->reg[i].guest + 1 > n)
			n = L->reg[i].guest + 1;
	}
	return n;
}

static void lv_page_info(void *impl, bk_page p, struct bk_page_info *out)
{
	struct real_live *L = impl;
	const struct live_page *pg = &L->pages[p];
	const struct live_region *r;

	/* Scans go page by page: the last page's region first, the search otherwise. */
	if (p - L->hint_first >= L->hint_n) {
		r = region_of(L, p);
		L->hint_reg = (uint32_t)(r - L->reg);
		L->hint_first = r->first;
		L->hint_n = r->npages;
	}
	r = &L->reg[L->hint_reg];

	out->guest = r->guest;
	out->node = pg->node;
	out->domain = r->domain;
	out->pfn = p - r->first;
	out->present = (pg->flags & PG_PRESENT) != 0;
	out->zero = 0; /* the live backend does not know without reading */
	out->huge = 0;
	out->frame = pg->slot == SLOT_PRIVATE ? BK_NO_FRAME : handle(L, pg->slot);
}

static uint32_t lv_checksum(void *impl, bk_page p)
{
	struct real_live *L = impl;

	L->counts[BK_COST_CHECKSUM]++;
	return page_hash(read_addr(L, p), L->ps);
}

static int sign(int c) { return (c > 0) - (c < 0); }

static int lv_compare(void *impl, bk_page a, bk_page b)
{
	struct real_live *L = impl;

	L->counts[BK_COST_COMPARE]++;
	return sign(memcmp(read_addr(L, a), read_addr(L, b), L->ps));
}

static int lv_compare_frame(void *impl, bk_page a, bk_frame f)
{
	struct real_live *L = impl;
	uint32_t slot = slot_of(L, f);
	const uint8_t *fa = slot == SLOT_ZERO || slot == 0 ? L->zero_buf : frame_addr(L, slot);

	L->counts[BK_COST_COMPARE]++;
	return sign(memcmp(read_addr(L, a), fa, L->ps));
}

static int lv_merge_frame(void *impl, bk_page p, bk_frame f)
{
	struct real_live *L = impl;
	uint32_t slot = slot_of(L, f);

	if (slot == 0)
		return SP_ECHANGED; /* the frame is gone */
	if (slot == SLOT_ZERO)
		return SP_EINVAL;
	return merge_frame_slot(L, p, slot);
}

static int lv_merge_pages(void *impl, bk_page p, bk_page keep, bk_frame *out)
{
	struct real_live *L = impl;
	struct live_page *kp, *pg;
	uint8_t *pa, *ka;
	const uint8_t *pat, *kat;
	uint32_t slot, node;
	uint64_t t0 = sp_mono_ns(), ns0 = L->merge_ns;
	unsigned need;
	int rc;

	if (p == keep || keep >= L->npages || p >= L->npages)
		return SP_EINVAL;
	kp = &L->pages[keep];
	pg = &L->pages[p];
	if (!(kp->flags & PG_PRESENT) || kp->slot == SLOT_ZERO)
		return SP_EINVAL;
	if (kp->slot != SLOT_PRIVATE) {
		rc = merge_frame_slot(L, p, kp->slot);
		if (rc == 0 && out)
			*out = handle(L, kp->slot);
		return rc;
	}
	rc = check_private(L, p);
	if (rc < 0)
		return rc;
	if (region_of(L, p)->domain != region_of(L, keep)->domain)
		return SP_EDENIED;
	if (L->strict_nodes && pg->node != kp->node)
		return SP_EDENIED;
	need = !(pg->flags & PG_OWNVMA) + !(kp->flags & PG_OWNVMA);
	if (need && map_limit(L, need))
		return SP_ELIMIT;
	pa = page_addr(L, p);
	ka = page_addr(L, keep);
	stage_room(L, 2);
	rc = freeze(L, keep, ka, &kat);
	if (rc < 0)
		return rc;
	rc = freeze(L, p, pa, &pat);
	if (rc < 0) {
		thaw(L, keep, ka, kat);
		return rc;
	}
	L->counts[BK_COST_COMPARE]++;
	if (memcmp(pat, kat, L->ps) != 0) {
		thaw(L, p, pa, pat);
		thaw(L, keep, ka, kat);
		return SP_ECHANGED;
	}
	/* Two sharers: the majority node is theirs if they agree, else keep's. */
	node = kp->node;
	rc = frame_alloc(L, node, region_of(L, keep)->domain, &slot);
	if (rc < 0) {
		thaw(L, p, pa, pat);
		thaw(L, keep, ka, kat);
		return rc;
	}
	memcpy(frame_addr(L, slot), kat, L->ps);
	run_add(L, keep, slot);
	run_add(L, p, slot);
	L->merges++;
	L->counts[BK_COST_MERGE]++;
	L->merge_ns = ns0 + (sp_mono_ns() - t0); /* the runs it remapped (run_add) included once */
	L->timed_merges++;
	L->timed_pages += 2;
	if (!L->defer)
		runs_flush(L);
	if (out)
		*out = handle(L, slot);
	return 0;
}

static int lv_merge_zero(void *impl, bk_page p)
{
	struct real_live *L = impl;
	struct live_page *pg;
	uint8_t *addr;
	const uint8_t *at;
	int rc = check_private(L, p);

	if (rc < 0)
		return rc;
	pg = &L->pages[p];
	/* No new VMA: DONTNEED in place, or an anonymous map over our own one-page VMA. */
	addr = page_addr(L, p);
	stage_room(L, 1);
	rc = freeze(L, p, addr, &at);
	if (rc < 0)
		return rc;
	L->counts[BK_COST_COMPARE]++;
	if (memcmp(at, L->zero_buf, L->ps) != 0) {
		thaw(L, p, addr, at);
		return SP_ECHANGED;
	}
	if (pg->xflags & PX_MOVED) {
		/* Moved out, p is empty already: out of MISSING mode it reads the zero page (wakes it). */
		pg->xflags &= (uint8_t)~PX_MOVED;
		if (un_miss(L, p, addr) < 0) {
			struct uffdio_move mv = { .dst = (uintptr_t)addr, .src = (uintptr_t)at, .len = L->ps };

			ioctl(ctx_fd(L, pg), UFFDIO_MOVE, &mv); /* never seen: back as it was, awake */
			track_attach(L, p, addr);
			return SP_EIO;
		}
	} else if (pg->flags & PG_INFILE) {
		if (remap_page(L, addr, -1, 0) == MAP_FAILED) {
			release(L, p, addr);
			return SP_ENOMEM;
		}
		own_vma(L, p, false);
	} else if (madvise(addr, L->ps, MADV_DONTNEED) < 0) {
		release(L, p, addr);
		return SP_EIO;
	}
	uffd_wake(L, addr, L->ps);
	track_attach(L, p, addr); /* back with its tracked neighbours: no VMA of its own */
	set_slot(L, p, SLOT_ZERO);
	L->merges++;
	L->counts[BK_COST_MERGE]++;
	return 0;
}

/* Makes p's page private again without changing a byte, racing writers or not. */
static void break_cow(struct real_live *L, uint8_t *addr)
{
	if (madvise(addr, L->ps, MADV_POPULATE_WRITE) < 0)
		__atomic_fetch_add((volatile uint64_t *)addr, 0, __ATOMIC_SEQ_CST);
}

static int lv_unmerge(void *impl, bk_page p)
{
	struct real_live *L = impl;

	runs_flush(L); /* a pending page is protected: break_cow would wait on itself */
	if (p >= L->npages || L->pages[p].slot == SLOT_PRIVATE)
		return SP_EINVAL;
	cow_disarm(L, p, page_addr(L, p)); /* on failure its protection is lifted all the same */
	break_cow(L, page_addr(L, p));
	set_slot(L, p, SLOT_PRIVATE);
	return 0;
}

static uint32_t lv_frame_mappers(void *impl, bk_frame f)
{
	struct real_live *L = impl;
	uint32_t slot = slot_of(L, f);

	return slot ? L->frames.slot[slot].mappers : 0;
}

static uint32_t lv_frame_node(void *impl, bk_frame f)
{
	struct real_live *L = impl;
	uint32_t slot = slot_of(L, f);

	return slot > SLOT_ZERO ? L->frames.slot[slot].node : 0;
}

static void lv_account(void *impl, enum bk_cost what, uint64_t n)
{
	struct real_live *L = impl;

	if ((unsigned)what < BK_COST__COUNT)
		L->counts[what] += n;
}

/*
 * backend unheard_changes(): none.  A page's presence changes only by
 * real_live_discard() (the driver reports ALGO_CHANGE_UNMAPPED), by
 * real_live_set_present() after it or before the engine starts; its frame
 * only by the algorithm's own merges and unmerge(), and by COW breaks and
 * real_live_unmerge_all(), which report each page (ALGO_CHANGE_COW).
 * Rebalancing moves a frame between nodes, not a page between frames.
 */
static uint64_t lv_unheard_changes(void *impl)
{
	(void)impl;
	return 0;
}

static const struct backend_ops live_backend_ops = {
	.npages = lv_npages,
	.nnodes = lv_nnodes,
	.nguests = lv_nguests,
	.page_size = lv_page_size,
	.zero_checksum = lv_zero_checksum,
	.page_info = lv_page_info,
	.checksum = lv_checksum,
	.compare = lv_compare,
	.compare_frame = lv_compare_frame,
	.merge_pages = lv_merge_pages,
	.merge_frame = lv_merge_frame,
	.merge_zero = lv_merge_zero,
	.unmerge = lv_unmerge,
	.frame_mappers = lv_frame_mappers,
	.frame_node = lv_frame_node,
	.account = lv_account,
	.content = NULL,
	.cost_measured = 1, /* CPU is measured: only checksums and compares are read of the counts */
	.unheard_changes = lv_unheard_changes,
};

struct backend real_live_backend(struct real_live *L)
{
	struct backend b = { &L->ops, L };

	return b;
}

const char *real_live_tracking_off(const struct real_live *L)
{
	return L->uffd_track >= 0 ? NULL : L->track_off;
}

/* ---- frames follow their majority ---------------------------------------- */

int real_live_rebalance(struct real_live *L, uint64_t *moved)
{
	uint32_t *cnt;
	uint64_t n = 0;

	runs_flush(L);
	if (moved)
		*moved = 0;
	if (L->strict_nodes || L->nnodes < 2 || L->frames.n < 2)
		return 0;
	cnt = calloc((size_t)L->frames.n * L->nnodes, sizeof(*cnt));
	if (!cnt)
		return SP_ENOMEM;
	for (bk_page p = 0; p < L->npages; p++) {
		const struct live_page *pg = &L->pages[p];

		if (pg->slot > SLOT_ZERO)
			cnt[(size_t)pg->slot * L->nnodes + pg->node]++;
	}
	for (uint32_t slot = SLOT_ZERO + 1; slot < L->frames.n; slot++) {
		struct bk_frame_slot *fr = &L->frames.slot[slot];
		const uint32_t *c = cnt + (size_t)slot * L->nnodes;
		uint32_t best = fr->node;

		if (fr->mappers == 0)
			continue;
		for (uint32_t k = 0; k < L->nnodes; k++) {
			if (c[k] > c[best])
				best = k;
		}
		if (best == fr->node)
			continue;
		if (!L->fake_topo) {
			/* Migrate the frame's page: every mapping follows it. */
			void *a = frame_addr(L, slot);
			int dst = (int)best, st = -1;

			if (move_pages(0, 1, &a, &dst, &st, MPOL_MF_MOVE_ALL) != 0 || st != dst)
				continue;
		}
		L->remote -= (int64_t)(fr->mappers - c[fr->node]);
		L->remote += (int64_t)(fr->mappers - c[best]);
		fr->node = best;
		n++;
	}
	free(cnt);
	if (moved)
		*moved = n;
	return 0;
}

/* ---- COW detection ------------------------------------------------------ */

/*
 * Is swap entry e a page swapped out?  The kernel's special entries show as
 * swap entries too: a write-protect marker (a watched page not populated,
 * see "COW events"), a migration entry (a frame being moved: compaction,
 * real_live_rebalance).  Calling a page that still maps its frame "copied"
 * would free the frame under it.  With PFNs visible (root) the entry's type
 * is in its low 5 bits and the special types are the top ones (31 the
 * marker, below it migration, device, hwpoison); swap files take the lowest.
 * Without, a write-protected entry is taken for a marker: a copy swapped out
 * while protected is found at its next write.
 */
static bool pm_swapped(uint64_t e)
{
	if (e & PM_PFN_MASK)
		return (e & 0x1f) < 16;
	return !(e & PM_UFFD_WP);
}

/* Does pagemap entry e show that page p (not private) has a private copy now? */
static bool written(const struct real_live *L, const struct live_page *pg, uint64_t e)
{
	if (e & PM_SWAP)
		return pm_swapped(e); /* only anonymous (copied) pages are swapped out of a PTE */
	if (!(e & PM_PRESENT))
		return false;
	if (pg->slot == SLOT_ZERO) {
		if (L->zero_pfn && (e & PM_PFN_MASK))
			return (e & PM_PFN_MASK) != L->zero_pfn;
		return (e & PM_EXCLUSIVE) != 0;
	}
	return !(e & PM_FILE);
}

static int settle_cow(struct real_live *L, bk_page p, real_live_change_fn fn, void *arg)
{
	set_slot(L, p, SLOT_PRIVATE);
	cow_disarm(L, p, page_addr(L, p));
	track_attach(L, p, page_addr(L, p)); /* its private copy: tracked from here on */
	if (L->nnodes > 1) {
		/* The private copy lives where the kernel put it: ask again, as ksmd re-files pages. */
		void *a = page_addr(L, p);
		int node = -1;

		if (L->fake_topo)
			node = L->topo.page_node(L->topo.arg, a);
		else if (move_pages(0, 1, &a, NULL, &node, 0) != 0)
			node = -1;
		if (node >= 0 && (uint32_t)node < L->nnodes)
			L->pages[p].node = (uint16_t)node;
	}
	L->cow_breaks++;
	L->counts[BK_COST_COW_BREAK]++;
	return fn ? fn(arg, p, ALGO_CHANGE_COW) : 0;
}

/* ---- COW events ----------------------------------------------------------- */

/*
 * COW events (real_live_config.cow_events).  Polling pagemap for COW breaks
 * walks one VMA per merged page (a merged page is mostly a one-page file
 * mapping), the largest part of the engine's CPU once half the pages are
 * shared (bench/README.md, issue 15).  Instead a merged page stays write-
 * protected by a third, synchronous userfaultfd (uffd_cow; an unpopulated
 * PTE of the file mapping gets a marker), registered once per remapped run
 * (cow_arm).  A write faults; the thread cow_main() reads the fault, lifts
 * the protection (which wakes the writer: the kernel then makes its COW
 * copy, as it would have) and queues the page; real_live_poll() settles the
 * queued pages (cow_drain) and polls only the merged pages not watched so.
 *
 * Safety.  Lifting a write protection is not tied to the userfaultfd that
 * set it, so the thread must never lift a merge's protection (the write
 * would land in a page about to be replaced by its frame).  It lifts only
 * pages in state COW_ARMED, under cow_lock; the engine clears COW_ARMED under
 * the same lock before a watched page's VMA changes hands (cow_disarm: a
 * settled COW break, an unmerge, a discard, and defensively protect()), and
 * arms a page only once it maps its frame.  A fault found stale (the page no
 * longer armed) only wakes that userfaultfd's waiters, who fault again on
 * whatever protects the page now.  Writes between a run's remap and its
 * protection make copies no fault reports: cow_arm reads the run's pagemap
 * once after protecting it and queues those.
 */

/* Queues p for cow_drain (cow_lock held; p not queued yet). */
static void cow_push(struct real_live *L, bk_page p)
{
	L->cow_state[p] |= COW_QUEUED;
	if (L->cow_qlen == L->cow_qcap) {
		uint64_t cap = L->cow_qcap ? 2 * L->cow_qcap : 1024;
		bk_page *q = realloc(L->cow_q, cap * sizeof(*q));

		if (!q) {
			L->cow_overflow = true; /* cow_drain looks for COW_QUEUED pages itself */
			return;
		}
		L->cow_q = q;
		L->cow_qcap = cap;
	}
	L->cow_q[L->cow_qlen++] = p;
}

/*
 * COW events from write tracking (cow_async: write tracking on).  No third
 * userfaultfd and no thread: a remapped run is registered with the tracking
 * userfaultfd instead (asynchronous write protection, cow_arm_track), so a
 * write to a merged page is resolved by the kernel alone, as a COW break of
 * kernel KSM is (no thread to wake: bench/README.md, issue 15, measured the
 * writer's wait for it at 70-80 us on an idle vCPU), and the copy shows as
 * written at the next PAGEMAP_SCAN covering the page: the windows the visits
 * read anyway (their per-VMA walk already passed over these VMAs), or the
 * poll's sweep of windows no visit read for WIN_STALE_NS, up to 4 times that
 * in windows whose sweeps keep finding nothing (sweep_windows).
 * A report queues the page (cow_report, scan_report) and real_live_poll()
 * settles it as before (cow_settle_one: its pagemap entry must show the
 * copy; a false alarm is protected again).  Like ksmd, which finds a
 * broken KSM page only when its scan comes by, the bookkeeping may count a
 * broken page nobody reported as a sharer until a scan covers it (2-8 s):
 * a frame is freed late, never early.
 */
static void cow_report(struct real_live *L, bk_page q)
{
	pthread_mutex_lock(&L->cow_lock);
	if (!(L->cow_state[q] & COW_QUEUED))
		cow_push(L, q);
	pthread_mutex_unlock(&L->cow_lock);
	__atomic_fetch_add(&L->cow_seen, 1, __ATOMIC_RELAXED);
}

/* A write fault at addr on a page the COW-event userfaultfd protects. */
static void cow_answer(struct real_live *L, uintptr_t addr)
{
	uint64_t p = real_live_page_of(L, (void *)addr);
	struct uffdio_range r = { addr & ~((uintptr_t)L->ps - 1), L->ps };
	struct uffdio_writeprotect wp = { .range = r, .mode = 0 };

	pthread_mutex_lock(&L->cow_lock);
	if (p < L->npages && (L->cow_state[p] & COW_ARMED)) {
		L->cow_state[p] &= (uint8_t)~COW_ARMED;
		if (!(L->cow_state[p] & COW_QUEUED))
			cow_push(L, p);
		__atomic_fetch_add(&L->cow_seen, 1, __ATOMIC_RELAXED);
		if (ioctl(L->uffd_cow, UFFDIO_WRITEPROTECT, &wp) < 0) /* wakes the writer */
			ioctl(L->uffd_cow, UFFDIO_WAKE, &r);
	} else {
		ioctl(L->uffd_cow, UFFDIO_WAKE, &r);
	}
	pthread_mutex_unlock(&L->cow_lock);
}

static void *cow_main(void *arg)
{
	struct real_live *L = arg;
	struct pollfd pf[2] = { { L->uffd_cow, POLLIN, 0 }, { L->cow_efd, POLLIN, 0 } };
	struct uffd_msg msg[16];
	struct timespec ts;

	for (;;) {
		ssize_t n;

		if (poll(pf, 2, -1) < 0)
			continue; /* EINTR; a writer must never be left waiting */
		if (pf[1].revents)
			break;
		n = read(L->uffd_cow, msg, sizeof(msg));
		for (ssize_t i = 0; i < n / (ssize_t)sizeof(msg[0]); i++) {
			if (msg[i].event == UFFD_EVENT_PAGEFAULT)
				cow_answer(L, (uintptr_t)msg[i].arg.pagefault.address);
		}
	}
	if (clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts) == 0)
		L->cow_cpu_last = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
	return NULL;
}

/* Starts the COW-event thread; on any failure the feature is off (every merged page polled). */
static void cow_open(struct real_live *L)
{
	struct uffdio_api api = { .api = UFFD_API, .features = 0 };

	if (L->uffd_track >= 0) {
		/* COW events from write tracking: no thread (see "COW events from write tracking"). */
		L->cow_state = calloc(L->npages, 1);
		L->win_when = calloc(L->nwin, sizeof(*L->win_when));
		L->win_quiet = calloc(L->nwin, 1);
		L->cow_async = L->cow_state && L->win_when && L->win_quiet;
		return;
	}
	L->uffd_cow = uffd_open();
	L->cow_efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	L->cow_state = calloc(L->npages, 1);
	if (L->uffd_cow >= 0 && L->cow_efd >= 0 && L->cow_state &&
	    ioctl(L->uffd_cow, UFFDIO_API, &api) == 0 &&
	    pthread_create(&L->cow_thread, NULL, cow_main, L) == 0) {
		L->cow_thread_on = true;
		return;
	}
	if (L->uffd_cow >= 0)
		close(L->uffd_cow);
	L->uffd_cow = -1;
}

/* Stops the thread and closes the userfaultfd (which lifts its protections and wakes any writer). */
static void cow_close(struct real_live *L)
{
	if (L->cow_thread_on) {
		uint64_t one = 1;

		if (write(L->cow_efd, &one, sizeof(one)) == sizeof(one))
			pthread_join(L->cow_thread, NULL);
		else
			pthread_detach(L->cow_thread); /* cannot happen: an eventfd takes 1 */
		L->cow_thread_on = false;
	}
	if (L->uffd_cow >= 0)
		close(L->uffd_cow);
	if (L->cow_efd >= 0)
		close(L->cow_efd);
	L->uffd_cow = L->cow_efd = -1;
}

uint64_t real_live_aux_cpu_ns(const struct real_live *L)
{
	clockid_t c;
	struct timespec ts;

	if (!L->cow_thread_on)
		return L->cow_cpu_last;
	if (pthread_getcpuclockid(L->cow_thread, &c) != 0 || clock_gettime(c, &ts) != 0)
		return 0;
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Queues the pages of [first, first + n) whose pagemap entries show a private copy (all: every one). */
static void cow_catch_up(struct real_live *L, bk_page first, uint32_t n, bool all)
{
	all = all || n > CHUNK || pagemap_read(L, page_addr(L, first), n, L->pmbuf) < 0;
	L->cow_polled += n;
	pthread_mutex_lock(&L->cow_lock);
	for (uint32_t i = 0; i < n; i++) {
		bk_page q = first + i;

		if ((all || written(L, &L->pages[q], L->pmbuf[i])) && !(L->cow_state[q] & COW_QUEUED))
			cow_push(L, q);
	}
	pthread_mutex_unlock(&L->cow_lock);
}

/* cow_arm with write tracking: the run joins the tracking userfaultfd, write-protected. */
static void cow_arm_track(struct real_live *L, bk_page first, uint32_t n)
{
	uint8_t *addr = page_addr(L, first);
	struct uffdio_register reg = { .range = { (uintptr_t)addr, (uint64_t)n * L->ps },
				       .mode = UFFDIO_REGISTER_MODE_WP };
	struct uffdio_writeprotect wp = { .range = reg.range, .mode = UFFDIO_WRITEPROTECT_MODE_WP };
	int rc;

	if (ioctl(L->uffd_track, UFFDIO_REGISTER, &reg) < 0)
		return; /* polled */
	rc = ioctl(L->uffd_track, UFFDIO_WRITEPROTECT, &wp);
	if (rc < 0 && ioctl(L->uffd_track, UFFDIO_UNREGISTER, &reg.range) == 0)
		return;
	for (uint32_t i = 0; i < n; i++) {
		struct live_page *pg = &L->pages[first + i];

		pg->flags = (uint8_t)((pg->flags & ~(PG_UNREG | PG_FRESH)) | PG_TRACKED);
		pg->xflags |= PX_COWA;
	}
	if (rc == 0)
		L->cow_arms += n;
	cow_catch_up(L, first, n, rc < 0); /* copies made before the protection; all if none */
}

/* Pages [first, first + n) (one region) were just remapped onto their frames: watch them. */
static void cow_arm(struct real_live *L, bk_page first, uint32_t n)
{
	uint8_t *addr = page_addr(L, first);
	struct uffdio_register reg = { .range = { (uintptr_t)addr, (uint64_t)n * L->ps },
				       .mode = UFFDIO_REGISTER_MODE_WP };
	struct uffdio_writeprotect wp = { .range = reg.range, .mode = UFFDIO_WRITEPROTECT_MODE_WP };
	int rc;

	if (L->cow_async) {
		cow_arm_track(L, first, n);
		return;
	}
	if (L->uffd_cow < 0 || ioctl(L->uffd_cow, UFFDIO_REGISTER, &reg) < 0)
		return; /* polled, as without COW events */
	pthread_mutex_lock(&L->cow_lock);
	for (uint32_t i = 0; i < n; i++)
		L->cow_state[first + i] |= COW_ARMED;
	rc = ioctl(L->uffd_cow, UFFDIO_WRITEPROTECT, &wp);
	if (rc < 0) {
		for (uint32_t i = 0; i < n; i++)
			L->cow_state[first + i] &= (uint8_t)~COW_ARMED;
	}
	pthread_mutex_unlock(&L->cow_lock);
	if (rc < 0 && ioctl(L->uffd_cow, UFFDIO_UNREGISTER, &reg.range) == 0)
		return;
	for (uint32_t i = 0; i < n; i++)
		L->pages[first + i].flags =
			(uint8_t)((L->pages[first + i].flags & ~PG_UNREG) | PG_COWW);
	if (rc == 0)
		L->cow_arms += n;
	cow_catch_up(L, first, n, rc < 0); /* not protected: cow_drain tries again */
}

/*
 * Watched page p leaves the COW-event userfaultfd (before its VMA changes
 * hands).  On failure (a VMA split refused) its protection is lifted all
 * the same and SP_EIO returned: it stays registered, unarmed.
 */
static int cow_disarm(struct real_live *L, bk_page p, uint8_t *addr)
{
	struct uffdio_range r = { (uintptr_t)addr, L->ps };
	struct uffdio_writeprotect wp = { .range = r, .mode = 0 };

	if (L->pages[p].xflags & PX_COWA) {
		/* It stays with the tracking userfaultfd: a private page, written (its copy) or about to be. */
		L->chunk_unpolled[p / CHUNK] = 0;
		L->pages[p].xflags &= (uint8_t)~PX_COWA;
		L->pages[p].flags = (uint8_t)((L->pages[p].flags & ~PG_FRESH) | PG_DIRTY);
		return 0;
	}
	if (!(L->pages[p].flags & PG_COWW))
		return 0;
	L->chunk_unpolled[p / CHUNK] = 0;
	pthread_mutex_lock(&L->cow_lock);
	L->cow_state[p] &= (uint8_t)~COW_ARMED;
	pthread_mutex_unlock(&L->cow_lock);
	if (ioctl(L->uffd_cow, UFFDIO_UNREGISTER, &r) == 0) { /* lifts the protection, wakes waiters */
		L->pages[p].flags = (uint8_t)((L->pages[p].flags & ~PG_COWW) | PG_UNREG);
		return 0;
	}
	ioctl(L->uffd_cow, UFFDIO_WRITEPROTECT, &wp);
	return SP_EIO;
}

/* Watched page p, found not written after its fault: protect it again (false if that failed). */
static bool cow_rearm(struct real_live *L, bk_page p)
{
	struct uffdio_writeprotect wp = { .range = { (uintptr_t)page_addr(L, p), L->ps },
					  .mode = UFFDIO_WRITEPROTECT_MODE_WP };
	bool ok = true;

	if (L->cow_async) {
		ok = ioctl(L->uffd_track, UFFDIO_WRITEPROTECT, &wp) == 0;
		L->cow_arms += ok;
		return ok;
	}
	pthread_mutex_lock(&L->cow_lock);
	if (!(L->cow_state[p] & COW_ARMED)) {
		L->cow_state[p] |= COW_ARMED;
		if (ioctl(L->uffd_cow, UFFDIO_WRITEPROTECT, &wp) < 0) {
			L->cow_state[p] &= (uint8_t)~COW_ARMED;
			ok = false;
		}
	}
	pthread_mutex_unlock(&L->cow_lock);
	L->cow_arms += ok;
	return ok;
}

/* A queued page: settled if it has its private copy, else watched again (or polled). */
static int cow_settle_one(struct real_live *L, bk_page p, real_live_change_fn fn, void *arg,
			  int *found)
{
	struct live_page *pg = &L->pages[p];
	uint64_t e;

	if (pg->slot == SLOT_PRIVATE || !((pg->flags & PG_COWW) || (pg->xflags & PX_COWA)))
		return 0; /* settled, unmerged or discarded since */
	if (pagemap_read(L, page_addr(L, p), 1, &e) < 0)
		return SP_EIO;
	L->cow_polled++;
	if (!written(L, pg, e)) {
		/* A false alarm, or its writer has not retried yet: watch it again, then look once more. */
		if (!cow_rearm(L, p)) {
			cow_disarm(L, p, page_addr(L, p)); /* polled from here on */
			return 0;
		}
		if (pagemap_read(L, page_addr(L, p), 1, &e) < 0)
			return SP_EIO;
		if (!written(L, pg, e))
			return 0;
	}
	(*found)++;
	return settle_cow(L, p, fn, arg);
}

/* Takes the thread's queue (swapping buffers); after an overflow, every COW_QUEUED page. */
static uint64_t cow_take(struct real_live *L)
{
	uint64_t n;

	pthread_mutex_lock(&L->cow_lock);
	if (L->cow_overflow) {
		L->cow_qlen = 0;
		for (bk_page p = 0; p < L->npages; p++) {
			if ((L->cow_state[p] & COW_QUEUED) && L->cow_qlen < L->cow_qcap)
				L->cow_q[L->cow_qlen++] = p;
		}
		L->cow_overflow = L->cow_qlen == L->cow_qcap;
	}
	n = L->cow_qlen;
	for (uint64_t i = 0; i < n; i++)
		L->cow_state[L->cow_q[i]] &= (uint8_t)~COW_QUEUED;
	{
		bk_page *w = L->cow_work;
		uint64_t wc = L->cow_wcap;

		L->cow_work = L->cow_q;
		L->cow_wcap = L->cow_qcap;
		L->cow_q = w;
		L->cow_qcap = wc;
		L->cow_qlen = 0;
	}
	pthread_mutex_unlock(&L->cow_lock);
	return n;
}

/* Settles the pages the COW-event thread queued. */
static int cow_drain(struct real_live *L, real_live_change_fn fn, void *arg, int *found)
{
	uint64_t n;

	if (L->uffd_cow < 0 && !L->cow_async)
		return 0;
	n = cow_take(L);
	for (uint64_t i = 0; i < n; i++) {
		int rc = cow_settle_one(L, L->cow_work[i], fn, arg, found);

		if (rc < 0)
			return rc;
	}
	return 0;
}

/* Is p a merged page whose COW breaks only polling finds (not watched by the COW-event thread)? */
static inline bool polled(const struct live_page *pg)
{
	return pg->slot != SLOT_PRIVATE && !(pg->flags & PG_COWW) && !(pg->xflags & PX_COWA);
}

/*
 * COW events from write tracking: the windows over pages [first, first + n)
 * of one region that hold merged pages and that no PAGEMAP_SCAN covered for
 * WIN_STALE_NS are read now (track_scan; reports of watched pages queue them).
 * A window's period doubles after each sweep that found no COW break, up to
 * 4 x WIN_STALE_NS (8 s), and is back at WIN_STALE_NS once any scan of it
 * finds one: like smart_scan for pages, the sweeps go where COW breaks
 * nobody reported happen.  The price: in a window quiet so far, such a
 * break is seen up to 8 s late instead of 2 (ksmd: its next pass); a frame
 * is freed late, never early (bench/README.md, issue 15, seventh round).
 */
static int sweep_windows(struct real_live *L, bk_page first, uint64_t n)
{
	const struct live_region *r = region_of(L, first);
	uint64_t span = TRACK_WINDOW * (uint64_t)L->ps, now = sp_mono_ns();
	uintptr_t rs = (uintptr_t)r->addr, a = (uintptr_t)page_addr(L, first);
	uintptr_t end = a + n * L->ps;

	for (uintptr_t w0 = a / span * span; w0 < end; w0 += span) {
		bk_page lo = w0 < rs ? r->first : r->first + (w0 - rs) / L->ps;
		bk_page hi = r->first + ((w0 + span - rs) / L->ps < r->npages ? (w0 + span - rs) / L->ps
									    : r->npages);
		uint64_t w = r->win_base + w0 / span - rs / span, seen;
		bool merged = false;

		if (now - L->win_when[w] < WIN_STALE_NS << L->win_quiet[w])
			continue;
		for (bk_page c = lo / CHUNK; c <= (hi - 1) / CHUNK && !merged; c++)
			merged = L->chunk_merged[c] != 0;
		if (!merged)
			continue;
		seen = __atomic_load_n(&L->cow_seen, __ATOMIC_RELAXED);
		if (track_scan(L, lo) < 0)
			return SP_EIO;
		if (__atomic_load_n(&L->cow_seen, __ATOMIC_RELAXED) == seen && L->win_quiet[w] < WIN_QUIET_MAX)
			L->win_quiet[w]++;
		L->cow_sweeps++;
	}
	return 0;
}

/*
 * Polls pages [first, first + n) of one region.  A whole chunk gone through
 * without a page to read is marked (chunk_unpolled) and skipped until a page
 * there changes: once merged pages are watched (COW events), every chunk is
 * such, and the poll's walk over 4096 pages' flags a batch was 1.7-2.7% of
 * the engine's CPU (bench/README.md, issue 15, thirteenth round).
 */
static int poll_range(struct real_live *L, bk_page first, uint64_t n, real_live_change_fn fn,
		      void *arg, int *found)
{
	while (n) {
		uint64_t k = CHUNK - first % CHUNK, c = first / CHUNK;
		bool read = false;

		if (k > n)
			k = n;
		for (uint64_t i = 0; !L->chunk_unpolled[c] && L->chunk_merged[c] && i < k;) {
			uint64_t last = i, j;

			if (!polled(&L->pages[first + i])) {
				i++;
				continue;
			}
			read = true;
			/*
			 * One read spans the merged pages of the chunk across private gaps
			 * up to POLL_GAP: the kernel's cost is per entry (a present private
			 * page costs a struct page lookup) and per VMA, a read's ~0.5 us.
			 */
			for (j = i + 1; j < k && j - last <= POLL_GAP; j++) {
				if (polled(&L->pages[first + j]))
					last = j;
			}
			if (pagemap_read(L, page_addr(L, first + i), last + 1 - i, L->pmbuf) < 0)
				return SP_EIO;
			L->cow_polled += last + 1 - i;
			for (j = i; j <= last; j++) {
				const struct live_page *pg = &L->pages[first + j];

				if (polled(pg) && written(L, pg, L->pmbuf[j - i])) {
					int rc = settle_cow(L, first + j, fn, arg);

					if (rc < 0)
						return rc;
					(*found)++;
				}
			}
			i = last + 1;
		}
		if (!read && k == CHUNK)
			L->chunk_unpolled[c] = 1; /* all of it, nothing to read */
		first += k;
		n -= k;
	}
	return 0;
}

int real_live_poll(struct real_live *L, uint64_t count, real_live_change_fn fn, void *arg)
{
	int found = 0, rc;

	runs_flush(L); /* pending pages are not in their file mapping yet */
	rc = cow_drain(L, fn, arg, &found);
	if (rc < 0)
		return rc;
	if (count > L->npages)
		count = L->npages;
	while (count) {
		const struct live_region *r;
		uint64_t n;

		if (L->poll_cursor >= L->npages)
			L->poll_cursor = 0;
		r = region_of(L, L->poll_cursor);
		n = r->first + r->npages - L->poll_cursor;
		if (n > count)
			n = count;
		rc = poll_range(L, L->poll_cursor, n, fn, arg, &found);
		if (rc == 0 && L->cow_async)
			rc = sweep_windows(L, L->poll_cursor, n);
		if (rc < 0)
			return rc;
		L->poll_cursor += n;
		count -= n;
	}
	if (L->cow_async) {
		rc = cow_drain(L, fn, arg, &found); /* what the sweep found */
		if (rc < 0)
			return rc;
	}
	return found;
}

int real_live_check(struct real_live *L, bk_page p, real_live_change_fn fn, void *arg)
{
	uint64_t e;

	if (p >= L->npages)
		return SP_EINVAL;
	if (L->pages[p].slot == SLOT_PRIVATE)
		return 0;
	runs_flush(L);
	if (pagemap_read(L, page_addr(L, p), 1, &e) < 0)
		return SP_EIO;
	L->cow_polled++;
	if (!written(L, &L->pages[p], e))
		return 0;
	return settle_cow(L, p, fn, arg) < 0 ? SP_ENOMEM : 1;
}

int real_live_discard(struct real_live *L, bk_page p)
{
	struct live_page *pg;
	uint8_t *addr;

	if (p >= L->npages)
		return SP_EINVAL;
	runs_flush(L);
	pg = &L->pages[p];
	addr = page_addr(L, p);
	if ((pg->xflags & PX_MISS) && un_miss(L, p, addr) < 0)
		return SP_EIO; /* emptied in MISSING mode, its next access would sleep for ever */
	if (pg->flags & PG_INFILE) {
		cow_disarm(L, p, addr); /* before its VMA changes hands */
		if (remap_page(L, addr, -1, 0) == MAP_FAILED)
			return SP_ENOMEM;
		pg->flags &= (uint8_t)~PG_COWW; /* a fresh VMA, if the unregistration had failed */
		L->chunk_unpolled[p / CHUNK] = 0;
		own_vma(L, p, false);
		set_slot(L, p, SLOT_PRIVATE);
		track_attach(L, p, addr);
	} else if (madvise(addr, L->ps, MADV_DONTNEED) < 0) {
		return SP_EIO;
	}
	set_slot(L, p, SLOT_PRIVATE);
	pg->flags &= (uint8_t)~PG_PRESENT;
	mark_written(L, p); /* zero now, without a write the scans would report */
	return 0;
}

void real_live_set_present(struct real_live *L, bk_page p, bool present)
{
	if (p >= L->npages)
		return;
	if (present)
		L->pages[p].flags |= PG_PRESENT;
	else
		L->pages[p].flags &= (uint8_t)~PG_PRESENT;
}

int real_live_unmerge_all(struct real_live *L, real_live_change_fn fn, void *arg)
{
	runs_flush(L);
	for (bk_page p = 0; p < L->npages; p++) {
		if (L->pages[p].slot == SLOT_PRIVATE)
			continue;
		cow_disarm(L, p, page_addr(L, p));
		break_cow(L, page_addr(L, p));
		set_slot(L, p, SLOT_PRIVATE);
		if (fn) {
			int rc = fn(arg, p, ALGO_CHANGE_COW);

			if (rc < 0)
				return rc;
		}
	}
	return 0;
}

/* ---- measurements ------------------------------------------------------- */

static uint64_t pool_bytes(const struct real_live *L)
{
	uint64_t b = 0;
	struct stat st;

	for (uint32_t n = 0; n < REAL_LIVE_MAX_NODES; n++) {
		if (L->pools[n].fd >= 0 && fstat(L->pools[n].fd, &st) == 0)
			b += (uint64_t)st.st_blocks * 512;
	}
	return b;
}

void real_live_stats(const struct real_live *L, struct real_live_stats *out)
{
	memset(out, 0, sizeof(*out));
	out->frames = L->frames.used;
	out->mapped_pages = L->mapped_pages;
	out->zero_pages = L->zero_pages;
	out->file_vma_pages = L->file_vma_pages;
	out->vma_estimate = vma_estimate(L);
	out->vma_recounts = L->vma_recounts;
	out->timed_merges = L->timed_merges;
	out->timed_pages = L->timed_pages;
	out->max_map_count = L->max_map_count;
	out->map_limit_refusals = L->map_limit_refusals;
	out->pool_bytes = pool_bytes(L);
	out->merge_ns = L->merge_ns;
	out->cow_polled = L->cow_polled;
	out->remaps = L->remaps;
	out->remapped_pages = L->remapped_pages;
	out->remap_failures = L->remap_failures;
	out->base_vmas = L->base_vmas;
	out->tracking = L->uffd_track >= 0;
	out->track_scans = L->track_scans;
	out->track_part_scans = L->track_part_scans;
	out->track_wp_calls = L->track_wp_calls;
	out->track_wp_pages = L->track_wp_pages;
	out->track_unscanned = L->track_unscanned;
	out->track_clean = L->track_clean;
	out->track_written = L->track_written;
	out->cow_events = L->uffd_cow >= 0 || L->cow_async;
	out->cow_from_tracking = L->cow_async;
	out->cow_sweeps = L->cow_sweeps;
	out->cow_events_seen = __atomic_load_n(&L->cow_seen, __ATOMIC_RELAXED);
	out->cow_armed = L->cow_arms;
	out->freeze_move = L->stage != NULL;
	out->freeze_moved = L->freeze_moved;
	out->freeze_moved_back = L->freeze_moved_back;
	out->freeze_protected = L->freeze_protected;
	out->freeze_infile = L->freeze_infile;
	memcpy(out->move_refused, L->move_refused, sizeof(out->move_refused));
	out->stage_drops = L->stage_drops;
	out->freeze_errors = L->freeze_errors;
	out->pinned_refusals = L->pinned_refusals;
}

void real_live_metrics(const struct real_live *L, struct metrics *out)
{
	out->cow_breaks = L->cow_breaks;
	out->checksums = (int64_t)L->counts[BK_COST_CHECKSUM];
	out->compares = (int64_t)L->counts[BK_COST_COMPARE];
	out->merges = L->merges;
	out->remote_sharers = L->remote;
}

const uint64_t *real_live_counts(const struct real_live *L)
{
	return L->counts;
}

int real_live_measured_rss(const struct real_live *L, uint64_t *out, struct sp_err *err)
{
	uint64_t *buf = malloc(4096 * sizeof(*buf)), anon = 0;

	if (!buf)
		return sp_err_set(err, SP_ENOMEM, "out of memory");
	for (uint32_t i = 0; i < L->nregions; i++) {
		const struct live_region *r = &L->reg[i];

		for (uint64_t done = 0; done < r->npages;) {
			uint64_t k = r->npages - done < 4096 ? r->npages - done : 4096;

			if (pagemap_read(L, r->addr + done * L->ps, k, buf) < 0) {
				free(buf);
				return sp_err_set(err, SP_EIO, "reading /proc/self/pagemap: %s",
						  strerror(errno));
			}
			for (uint64_t j = 0; j < k; j++) {
				uint64_t e = buf[j];

				if ((e & PM_SWAP) && !(e & PM_FILE)) {
					anon += pm_swapped(e);
				} else if ((e & PM_PRESENT) && !(e & PM_FILE)) {
					/* Private anonymous; the zero page is not memory. */
					if (L->zero_pfn && (e & PM_PFN_MASK) ? (e & PM_PFN_MASK) != L->zero_pfn
									     : (e & PM_EXCLUSIVE) != 0)
						anon++;
				}
			}
			done += k;
		}
	}
	free(buf);
	*out = anon * L->ps + pool_bytes(L);
	return 0;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

int real_rss_distinct_frames(void *const *addrs, const uint64_t *lens, uint32_t n, uint64_t *out,
			     struct sp_err *err)
{
	long ps = sysconf(_SC_PAGESIZE);
	uint64_t total = 0, npfn = 0, distinct = 0, zero_pfn, e;
	uint64_t *pfns, *buf;
	int fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return sp_err_set(err, SP_ENOTSUP, "cannot open /proc/self/pagemap: %s", strerror(errno));
	for (uint32_t i = 0; i < n; i++)
		total += lens[i] / (uint64_t)ps;
	pfns = malloc((total ? total : 1) * sizeof(*pfns));
	buf = malloc(4096 * sizeof(*buf));
	if (!pfns || !buf) {
		free(pfns);
		free(buf);
		close(fd);
		return sp_err_set(err, SP_ENOMEM, "out of memory");
	}
	e = read_fault_entry(fd, ps);
	zero_pfn = e & PM_PFN_MASK;
	if (e & PM_EXCLUSIVE)
		zero_pfn = PM_PFN_MASK + 1; /* no zero page (a private page was mapped): none to leave out */
	if (!(e & PM_PRESENT) || !(e & PM_PFN_MASK)) {
		free(pfns);
		free(buf);
		close(fd);
		return sp_err_set(err, SP_EPERM, "page frame numbers are hidden in pagemap (not root)");
	}
	for (uint32_t i = 0; i < n; i++) {
		uint64_t np = lens[i] / (uint64_t)ps;

		for (uint64_t done = 0; done < np;) {
			uint64_t k = np - done < 4096 ? np - done : 4096;
			off_t off = (off_t)(((uintptr_t)addrs[i] / (uintptr_t)ps + done) * 8);

			if (pread(fd, buf, k * 8, off) != (ssize_t)(k * 8)) {
				free(pfns);
				free(buf);
				close(fd);
				return sp_err_set(err, SP_EIO, "reading /proc/self/pagemap: %s",
						  strerror(errno));
			}
			for (uint64_t j = 0; j < k; j++) {
				if ((buf[j] & PM_PRESENT) && (buf[j] & PM_PFN_MASK) != zero_pfn)
					pfns[npfn++] = buf[j] & PM_PFN_MASK;
				else if (buf[j] & PM_SWAP)
					distinct++; /* a swapped page: one frame's worth, counted apart */
			}
			done += k;
		}
	}
	qsort(pfns, npfn, sizeof(*pfns), cmp_u64);
	for (uint64_t i = 0; i < npfn; i++)
		distinct += i == 0 || pfns[i] != pfns[i - 1];
	free(pfns);
	free(buf);
	close(fd);
	*out = distinct * (uint64_t)ps;
	return 0;
}

int real_live_pool_views(const struct real_live *L, void **addrs, uint64_t *lens, uint32_t max)
{
	uint32_t k = 0;

	for (uint32_t n = 0; n < REAL_LIVE_MAX_NODES && k < max; n++) {
		if (L->pools[n].view) {
			addrs[k] = L->pools[n].view;
			lens[k] = L->pools[n].pages * L->ps;
			k++;
		}
	}
	return (int)k;
}
