/*
 * samepage.h - the samepage library: page merging inside your own process.
 *
 * An application that holds many identical pages (caches of the same
 * objects, many similar sandboxes, a VM monitor) registers the regions,
 * chooses a merge algorithm and its parameters (the ones `sim list` shows;
 * the default is "ksm" with the kernel's defaults), and starts the engine: a
 * thread that scans the regions and merges identical pages copy-on-write,
 * exactly as Linux KSM would, but with the algorithm and settings chosen in
 * simulation.  The application keeps reading and writing its memory as
 * usual: a write to a merged page gets a private copy (COW), never loses
 * data.
 *
 *     struct samepage *sp;
 *     samepage_new(&sp, &err);
 *     samepage_register(sp, buf, len, -1, 0, &err);
 *     samepage_set(sp, "pages_to_scan=5000", &err);
 *     samepage_start(sp, &err);
 *     ...
 *     samepage_read(sp, &stats, &err);
 *     samepage_stop(sp, true, &err);
 *     samepage_free(sp);
 *
 * Requirements: Linux with userfaultfd write protection (5.7+) and
 * MADV_POPULATE_WRITE (5.14+); root, vm.unprivileged_userfaultfd=1 or access
 * to /dev/userfaultfd.  Regions are private anonymous memory (mmap
 * MAP_PRIVATE|MAP_ANONYMOUS), page aligned; while registered they must not
 * be munmap'ed or MADV_DONTNEED'ed (samepage_stop first), and nothing may
 * write them except through the CPU: the engine cannot see page pins, so a
 * page being filled by an O_DIRECT read, an io_uring fixed buffer, vfio or
 * RDMA could be merged and the device's write would land in the replaced
 * frame and be lost (kernel KSM checks the page's reference count for this;
 * userspace has no such test).  Each merged
 * page can cost one or two VMAs: near vm.max_map_count (65530 by default)
 * merges are refused cleanly (samepage_stats.map_limit_refusals); raising
 * the limit is the caller's decision (real_mapcount_raise, root).  Every function
 * returns 0 or a negative SP_E* code with a one-line message in err; none
 * prints or exits.  One struct samepage may be used from one thread at a
 * time; the engine runs in its own.
 */
#ifndef SP_SAMEPAGE_H
#define SP_SAMEPAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "metrics.h"
#include "sp_error.h"

struct samepage;

int samepage_new(struct samepage **out, struct sp_err *err);
/* Stops the engine (keeping merges) and frees everything. */
void samepage_free(struct samepage *s);

/*
 * Adds a region (before samepage_start).  node_hint: the NUMA node reported
 * for pages whose node cannot be queried (-1: none); domain: pages of
 * different domains never share a frame.
 */
int samepage_register(struct samepage *s, void *addr, size_t len, int node_hint,
		      uint32_t domain, struct sp_err *err);
/* The merge algorithm by name (before samepage_start); default "ksm". */
int samepage_set_algorithm(struct samepage *s, const char *name, struct sp_err *err);
/* One parameter, "key=value" (before start, or while running if the algorithm allows). */
int samepage_set(struct samepage *s, const char *key_value, struct sp_err *err);

/* Starts merging in a thread. */
int samepage_start(struct samepage *s, struct sp_err *err);
/*
 * Stops the thread.  unmerge: give every merged page a private copy again
 * (the memory use returns to what it was); else merges stay, copy-on-write.
 */
int samepage_stop(struct samepage *s, bool unmerge, struct sp_err *err);

struct samepage_stats {
	struct metrics m;            /* the kernel's vocabulary: pages_sharing = pages saved */
	uint64_t registered_pages;
	uint64_t frames;             /* shared frames in use */
	uint64_t measured_rss_bytes; /* regions + frames, each physical frame once (live.h) */
	int64_t cpu_ns;              /* CPU time of the engine thread */
	uint64_t map_limit_refusals; /* merges refused near vm.max_map_count */
};
/* The latest figures (after the engine's latest batch); rss is measured now. */
int samepage_read(struct samepage *s, struct samepage_stats *out, struct sp_err *err);

#endif
