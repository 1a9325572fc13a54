/*
 * ksm_sysfs.h - the kernel's KSM through /sys/kernel/mm/ksm: read every
 * tunable and counter, set tunables in the order the kernel accepts them,
 * save and restore every writable tunable (also from a signal handler), and
 * turn the counters into a struct metrics.
 *
 * Kernel rules this follows (mm/ksm.c, 6.x):
 *  - merge_across_nodes and max_page_sharing can change only while no KSM
 *    pages exist (else -EBUSY): run=2 unmerges everything first.
 *  - pages_to_scan cannot be written while advisor_mode=scan-time, and any
 *    change of advisor_mode resets pages_to_scan.
 *  - The counters are system-wide: every MADV_MERGEABLE process on the host
 *    counts, not only ours.  full_scans, pages_scanned and pages_skipped are
 *    cumulative since boot; real_ksm_metrics() takes them relative to a base.
 * Files a kernel lacks (smart_scan before 6.7, advisor_* before 6.8,
 * merge_across_nodes without CONFIG_NUMA) are reported as absent, never as
 * errors.
 */
#ifndef SP_REAL_KSM_SYSFS_H
#define SP_REAL_KSM_SYSFS_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "metrics.h"
#include "sp_error.h"

#define REAL_KSM_DIR "/sys/kernel/mm/ksm"

/* Every file of the KSM directory; tunables first (REAL_KSM_TUNABLES of them). */
enum real_ksm_file {
	REAL_KSM_RUN,
	REAL_KSM_PAGES_TO_SCAN,
	REAL_KSM_SLEEP_MILLISECS,
	REAL_KSM_MERGE_ACROSS_NODES,
	REAL_KSM_USE_ZERO_PAGES,
	REAL_KSM_MAX_PAGE_SHARING,
	REAL_KSM_SMART_SCAN,
	REAL_KSM_ADVISOR_MODE, /* value: 0 none, 1 scan-time */
	REAL_KSM_ADVISOR_MAX_CPU,
	REAL_KSM_ADVISOR_MIN_PAGES_TO_SCAN,
	REAL_KSM_ADVISOR_MAX_PAGES_TO_SCAN,
	REAL_KSM_ADVISOR_TARGET_SCAN_TIME,
	REAL_KSM_STABLE_NODE_CHAINS_PRUNE_MILLISECS,
	REAL_KSM_PAGES_SHARED, /* counters from here on */
	REAL_KSM_PAGES_SHARING,
	REAL_KSM_PAGES_UNSHARED,
	REAL_KSM_PAGES_VOLATILE,
	REAL_KSM_FULL_SCANS,
	REAL_KSM_PAGES_SCANNED,
	REAL_KSM_PAGES_SKIPPED,
	REAL_KSM_KSM_ZERO_PAGES,
	REAL_KSM_STABLE_NODE_CHAINS,
	REAL_KSM_STABLE_NODE_DUPS,
	REAL_KSM_GENERAL_PROFIT,
	REAL_KSM__COUNT
};
#define REAL_KSM_TUNABLES REAL_KSM_PAGES_SHARED

/* run values */
enum { REAL_KSM_RUN_STOP = 0, REAL_KSM_RUN_MERGE = 1, REAL_KSM_RUN_UNMERGE = 2 };
/* advisor_mode values */
enum { REAL_KSM_ADVISOR_NONE = 0, REAL_KSM_ADVISOR_SCAN_TIME = 1 };

/* The file's name ("pages_to_scan"), or NULL out of range. */
const char *real_ksm_name(int file);
/* The file index of a name, or -1. */
int real_ksm_lookup(const char *name);
/* The kernel's default of a tunable (Documentation/admin-guide/mm/ksm.rst). */
int64_t real_ksm_default(int file);

/* A handle on the KSM directory (caller storage). */
struct real_ksm {
	char dir[200];
};

/*
 * Opens dir (NULL: REAL_KSM_DIR).  SP_ENOTSUP when it is missing ("this kernel
 * has no KSM"); with write, SP_EPERM unless we may write its tunables.
 */
int real_ksm_open(struct real_ksm *k, const char *dir, bool write, struct sp_err *err);

/* Every file at one instant (read one after another, not atomically). */
struct real_ksm_state {
	bool present[REAL_KSM__COUNT];
	int64_t v[REAL_KSM__COUNT];
};

int real_ksm_read(const struct real_ksm *k, struct real_ksm_state *out, struct sp_err *err);
/* One file's value. */
int real_ksm_get(const struct real_ksm *k, int file, int64_t *out, struct sp_err *err);
/* Writes one tunable as is (no ordering rules; see real_ksm_apply()). */
int real_ksm_set(const struct real_ksm *k, int file, int64_t value, struct sp_err *err);

/* Tunables to set: set[i] says whether v[i] is wanted. */
struct real_ksm_settings {
	bool set[REAL_KSM_TUNABLES];
	int64_t v[REAL_KSM_TUNABLES];
};

/*
 * Sets the wanted tunables in the order the kernel needs: when
 * merge_across_nodes or max_page_sharing really change, run=2 (unmerge) first
 * and, unless run is among the settings, the previous run afterwards; then
 * advisor_mode, the other tunables, and run last.  Stops at the first refusal
 * (the message names the file and the value).  A tunable this kernel lacks
 * is skipped when wanted at its kernel default, an error otherwise.
 */
int real_ksm_apply(const struct real_ksm *k, const struct real_ksm_settings *s,
		   struct sp_err *err);

/*
 * Every writable tunable, preformatted, so that restoring needs only
 * open/read/write/close: real_ksm_restore_signal_safe() may be called from a
 * signal handler.  Fill with real_ksm_save().
 */
struct real_ksm_saved {
	bool valid;
	char path[REAL_KSM_TUNABLES][232];
	char value[REAL_KSM_TUNABLES][24]; /* "" for an absent file */
	bool no_unmerge;  /* set by the caller: the restore never writes run=2 (no headroom) */
	int failed_file;  /* after a restore: first file that failed, or -1 */
	int failed_errno;
};

int real_ksm_save(const struct real_ksm *k, struct real_ksm_saved *out, struct sp_err *err);
/*
 * Puts every saved tunable back: run=2 first only if merge_across_nodes or
 * max_page_sharing differ now (and not no_unmerge: then those two fail with
 * EBUSY while KSM pages exist, and are reported), advisor_mode=none while pages_to_scan is
 * written, the saved advisor_mode, and run last.  Goes on past failures and
 * returns the number of files that could not be restored (first one in
 * failed_file/failed_errno).  Async-signal-safe; errno is preserved.
 */
int real_ksm_restore_signal_safe(struct real_ksm_saved *s);
/* The same, with an error message: 0 or SP_EIO naming the first file that failed. */
int real_ksm_restore(struct real_ksm_saved *s, struct sp_err *err);

/*
 * Fills the KSM counters of out from now: the "now" counters as read, the
 * cumulative ones (full_scans, pages_scanned, pages_skipped) as now - base
 * when base is non-NULL.  Leaves the other fields alone.
 */
void real_ksm_metrics(const struct real_ksm_state *now, const struct real_ksm_state *base,
		      struct metrics *out);

/*
 * Other processes with KSM-mergeable memory now ("ksm_mergeable: yes" in
 * /proc/PID/ksm_stat), whose pages the system-wide counters also count:
 * up to max pids into out (self excluded); returns how many there are.
 */
int real_ksm_other_users(pid_t self, pid_t *out, int max);

/*
 * One process at a time drives a KSM directory: samepaged and the commands
 * that write KSM (sim real replay --mechanism kernel, validate, calibrate)
 * take flock(LOCK_EX) on the directory itself for as long as they may write
 * it (the lock goes with the descriptor: close it, or exit).  0 with the
 * descriptor in *fd; SP_EBUSY naming the holder (pid and command of a live
 * process whose descriptor holds the lock, by /proc/PID/fdinfo: also after
 * the claimer forked and exited) when another process has it; SP_ENOTSUP
 * without the directory.
 */
int real_ksm_claim(const char *dir, int *fd, struct sp_err *err);

/* ksmd's pid (found by name in /proc), or a negative SP_E* code. */
int real_ksmd_pid(pid_t *out, struct sp_err *err);
/* CPU time of a process in ns: /proc/PID/schedstat, else utime + stime of /proc/PID/stat. */
int real_proc_cpu_ns(pid_t pid, int64_t *out, struct sp_err *err);
/* The same under another proc root (a fake tree in tests). */
int real_proc_cpu_ns_at(const char *procfs, pid_t pid, int64_t *out, struct sp_err *err);
/*
 * Time a process spent runnable but waiting for a CPU, in ns (the second
 * field of /proc/PID/schedstat); SP_ENOTSUP without schedstat.
 */
int real_proc_wait_ns(pid_t pid, int64_t *out, struct sp_err *err);
/* The cow_ksm count of /proc/vmstat (COW breaks of KSM pages since boot); 0 if absent. */
int real_vmstat_cow_ksm(int64_t *out, struct sp_err *err);
/* The same under another proc root; -1 if the line is absent (kernels before 6.2). */
int real_vmstat_cow_ksm_at(const char *procfs, int64_t *out, struct sp_err *err);
/* Reads a small file into buf (NUL-terminated, trailing newlines and blanks cut): 0 or -errno. */
int real_read_small(const char *path, char *buf, size_t len);

#endif
