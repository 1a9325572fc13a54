/*
 * host.h - what samepaged reads of a KVM host through /proc and /sys, every
 * path under a root so that a fake tree in a test directory stands in for a
 * host (as node_exporter's --path.procfs / --path.sysfs).
 *
 *   PROCFS/meminfo            MemTotal, MemFree, Buffers, Cached, MemAvailable,
 *                             SwapTotal, SwapFree (kB)
 *   PROCFS/PID/comm           QEMU processes: "qemu-kvm", "qemu-system-*",
 *                             "qemu:*", "kvm" (ksmtuned's pattern)
 *   PROCFS/PID/status         their VmRSS (kB): the memory committed to guests
 *   PROCFS/PID/ksm_stat       their ksm_merging_pages, ksm_rmap_items (6.1+)
 *   PROCFS/vmstat             cow_ksm (6.2+; absent: -1)
 *   PROCFS/PID/schedstat      ksmd's CPU time (ns; else PROCFS/PID/stat's
 *                             utime + stime; the thread "ksmd")
 *   SYSFS/devices/system/node NUMA nodes (nodeN entries; absent: 1 node)
 * Files a kernel lacks are reported absent (-1), never as errors; only
 * meminfo is required.
 */
#ifndef SP_REAL_HOST_H
#define SP_REAL_HOST_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "control.h"
#include "ksm_sysfs.h"
#include "sp_error.h"

#define REAL_HOST_MAX_GUESTS 256

struct real_guest {
	pid_t pid;
	char comm[64];
	int64_t rss_kib;           /* VmRSS */
	int64_t ksm_merging_pages; /* from ksm_stat; -1 absent */
	int64_t ksm_rmap_items;    /* from ksm_stat; -1 absent */
};

struct real_host {
	struct ctl_host mem;       /* meminfo and the guests' RSS, as policies see it */
	int64_t cow_ksm;           /* /proc/vmstat cow_ksm since boot; -1 absent */
	int64_t ksmd_cpu_ns;       /* ksmd's CPU time since boot; -1 no ksmd */
	uint32_t numa_nodes;       /* at least 1 */
	uint32_t nguests;          /* QEMU processes found (guests[] holds the first REAL_HOST_MAX_GUESTS) */
	struct real_guest guests[REAL_HOST_MAX_GUESTS];
};

/* Whether a process name (PID/comm) is a QEMU guest, by ksmtuned's pattern. */
int real_host_is_qemu(const char *comm);
/*
 * Reads the host under procfs and sysfs (NULL: "/proc", "/sys").  SP_EIO
 * naming the file when meminfo is unreadable or lacks MemTotal.
 */
int real_host_read(const char *procfs, const char *sysfs, struct real_host *out, struct sp_err *err);
/* PROCFS/meminfo alone (NULL: "/proc"): out's memory fields, the rest zero; errors as real_host_read. */
int real_host_read_meminfo(const char *procfs, struct ctl_host *out, struct sp_err *err);

/*
 * The unshare check, one copy for samepaged and the live commands: run=2 (and
 * a switch of merge_across_nodes or max_page_sharing, which needs one) gives
 * every page KSM saves its own copy again, on the whole host, so it is done
 * only when
 *   worst    = (pages_sharing + ksm_zero_pages) x page size   (mem's; 0: 4096)
 *   headroom = MemAvailable + SwapFree - reserve
 * leaves headroom >= worst.  reserve_mib < 0: 5% of MemTotal (samepaged's
 * SAMEPAGE_RESERVE_MIB default).  Counters absent from ksm count as 0.
 */
int64_t real_unshare_worst(const struct real_ksm_state *ksm, const struct ctl_host *mem);
int64_t real_unshare_reserve(const struct ctl_host *mem, int64_t reserve_mib);
int64_t real_unshare_headroom(const struct ctl_host *mem, int64_t reserve_mib);
/*
 * 0 when the headroom covers the worst case and own_bytes on top (the
 * memory the caller maps after the check, before or while the unmerge
 * takes its own; samepaged: 0); else SP_ENOROOM with the one line "refused
 * WHAT: a full unshare needs up to N MiB (pages_sharing A + ksm_zero_pages
 * B)[ on top of this run's O MiB], but MemAvailable + SwapFree - reserve
 * leaves M MiB".
 */
int real_unshare_check(const struct real_ksm_state *ksm, const struct ctl_host *mem, int64_t reserve_mib,
		       int64_t own_bytes, const char *what, struct sp_err *err);

/*
 * The same check in a signal handler (the live commands' restore on
 * SIGINT/SIGTERM/SIGHUP, whose run=2 must not be blind either): the paths
 * are made beforehand by real_unshare_paths_init() (procfs NULL: "/proc"),
 * then only open, read and close run.  True when the headroom takes
 * (pages_sharing + ksm_zero_pages) x 4096 now; false when it does not or
 * pages_sharing or meminfo cannot be read.  errno is preserved.
 */
struct real_unshare_paths {
	char sharing[256], zero[256], meminfo[256];
	int64_t reserve_mib;
};
void real_unshare_paths_init(struct real_unshare_paths *p, const char *ksm_dir, const char *procfs,
			     int64_t reserve_mib);
bool real_unshare_allows_signal_safe(const struct real_unshare_paths *p);

#endif
