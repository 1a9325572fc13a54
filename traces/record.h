/*
 * record.h - the live recorder (Linux only): periodic snapshots of the memory
 * of running processes and QEMU guests, written as a samepage trace.
 *
 * A target is a pid plus the address ranges ("segments") whose pages are
 * recorded, each with the trace page number of its first page:
 * - a QEMU guest: the guest-RAM mapping (the anonymous mapping whose size is
 *   the -m memory size), page number = guest-physical frame number (RAM above
 *   the machine's low-memory limit is placed at 4 GiB, as QEMU's pc and q35
 *   machines do);
 * - a process: its writable private anonymous mappings at the start of the
 *   recording (heap, stack, anonymous mmap), grouped into clusters of
 *   mappings less than TRACE_REC_CLUSTER_GAP apart; page number = (VA -
 *   cluster start) / page size + the cluster's first page number, clusters
 *   numbered one after the other in address order (so a 47-bit address space
 *   never becomes a 2^35-page guest).  Within a cluster, page numbers are VA
 *   / page size up to a constant; the trace description lists every cluster
 *   as "VA -> page".  Mappings created later inside a cluster's range are
 *   recorded; those outside every cluster are not.  Single mappings larger
 *   than TRACE_REC_MAX_MAPPING are left out.
 *
 * Per page: present (pagemap bit 63; swapped pages count as absent), zero
 * filled, a member of a transparent huge page (/proc/kpageflags KPF_THP, via
 * the PFN from pagemap: needs root), NUMA node (move_pages, only when the
 * host has more than one node), XXH3-128 of the bytes, keyed by a random
 * secret of the trace unless unkeyed.  Pages mapped to the host's shared zero
 * page (or huge zero page) cost no memory and are recorded as absent.
 *
 * A snapshot is read entirely (every target) before any of it is written, so
 * a target that exits mid-snapshot ends the trace at the last whole one.
 */
#ifndef SP_RECORD_H
#define SP_RECORD_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "sp_error.h"

/* Mappings further apart than this start a new cluster (bytes). */
#define TRACE_REC_CLUSTER_GAP (64ull << 20)
/* Mappings larger than this are skipped: sparse reservations such as a
 * sanitizer's shadow memory (14 TiB under AddressSanitizer), not memory in use. */
#define TRACE_REC_MAX_MAPPING (1ull << 40)
/* At most this many pages per target (sum of its segments' spans). */
#define TRACE_REC_MAX_PAGES (1ull << 28)
#define TRACE_REC_MAX_SEGMENTS 256

struct trace_rec_segment {
	uint64_t va;         /* first byte, page-aligned */
	uint64_t pages;      /* length in pages */
	uint64_t first_page; /* trace page number of the page at va */
};

struct trace_rec_target {
	pid_t pid;
	bool qemu;
	char name[256];
	char qmp[256];       /* QMP unix socket path, "" when none */
	uint64_t pages;      /* guest page_count: highest page number + 1 */
	uint32_t nseg;
	struct trace_rec_segment seg[TRACE_REC_MAX_SEGMENTS];
};

/*
 * Fills t for process pid.  SP_EINVAL when it does not exist, SP_EPERM when
 * its memory cannot be read by the caller, SP_ELIMIT when it has nothing to
 * record or its mappings span too much.
 */
int trace_rec_target_process(struct trace_rec_target *t, pid_t pid, struct sp_err *err);
/* Fills t for the QEMU process pid (guest RAM, -name, -qmp unix:PATH). */
int trace_rec_target_qemu(struct trace_rec_target *t, pid_t pid, struct sp_err *err);
/* Pids of running qemu-system-* processes, at most max; returns the count or a negative code. */
int trace_rec_find_qemu(pid_t *out, int max, struct sp_err *err);

/* Parses a QEMU -m value ("512", "512M", "1G", "size=2G,maxmem=..."), into bytes. */
int trace_rec_parse_qemu_mem(const char *s, uint64_t *bytes);

struct trace_rec_opts {
	uint64_t interval_ms; /* between snapshot starts */
	uint64_t count;       /* snapshots; 0 = until stop() says so */
	bool unkeyed;         /* plain XXH3-128 instead of keyed with a random secret */
	bool pause;           /* QMP stop/cont around each QEMU guest's snapshot */
	bool proc_mem;        /* read with pread on /proc/PID/mem instead of process_vm_readv(2) */
	unsigned mode;        /* file mode, 0600 */
	/* Called between and during snapshots; true ends the recording (cleanly). */
	bool (*stop)(void *arg);
	/* Called after each snapshot is written: done snapshots, bytes read so far. */
	void (*progress)(void *arg, uint64_t done, uint64_t bytes);
	void *arg;
};

struct trace_rec_result {
	uint32_t snapshots;   /* whole snapshots written */
	bool target_exited;   /* the recording ended because a target went away */
	uint64_t bytes_read;  /* page bytes read and fingerprinted */
	double read_seconds;  /* wall time spent reading + fingerprinting */
};

/*
 * Records the targets into path (mode opts->mode), one guest per target.
 * The trace ends after opts->count snapshots, when stop() says so, or when a
 * target exits (at the last whole snapshot: result->target_exited).  Zero
 * whole snapshots is an error (SP_EINVAL, no file).
 */
int trace_record(const char *path, const struct trace_rec_target *targets, uint32_t ntargets,
		 const struct trace_rec_opts *opts, struct trace_rec_result *result,
		 struct sp_err *err);

/* QMP: stop or continue the guest behind a unix socket (exposed for tests and tools). */
int trace_rec_qmp(const char *socket_path, const char *command, struct sp_err *err);

#endif
