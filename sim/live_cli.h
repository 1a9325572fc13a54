/*
 * live_cli.h - what the live commands (`sim validate`, `sim real replay`)
 * share: the KSM tunables --set accepts, the signal guard that restores the
 * host's KSM tunables (and vm.max_map_count) on Ctrl-C, the wall clock, the
 * trace prescan, and taking KSM: the claim, the refusal to run beside other
 * mergeable processes, and the headroom check before unmerging.
 */
#ifndef SP_LIVE_CLI_H
#define SP_LIVE_CLI_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ksm_sysfs.h"
#include "mapcount.h"
#include "sp_util.h"
#include "sp_error.h"

/* The KSM tunables the live commands accept (the kernel's names, shared with the ksm algorithm). */
extern const int cli_ksm_settable[];
extern const size_t cli_ksm_nsettable;

/* The signal (SIGINT, SIGTERM, SIGHUP) that asked the live command to stop; 0 if none. */
extern volatile sig_atomic_t cli_stop;

/*
 * The signal guard, the one place that puts the host back on Ctrl-C.
 *
 * cli_guard_start() saves every KSM tunable of k (when k is not NULL) into
 * the guard's own copy, notes mc (when not NULL: this run's hold on
 * vm.max_map_count, mapcount.h), and installs handlers for SIGINT, SIGTERM
 * and SIGHUP: on a signal they restore the tunables and release mc at once
 * (async-signal-safe; the restore's run=2, when merge_across_nodes or
 * max_page_sharing changed, only with the headroom for it now; max_map_count
 * goes back only if no other samepage run holds it) and set cli_stop; a
 * second signal kills the process.
 * Nothing in /sys/kernel/mm/ksm may be written before it succeeded.
 *
 * cli_guard_end() unmerges (run=2, only if the headroom takes what other
 * processes have merged: else a note, and the restore does not unmerge
 * either) and restores the saved tunables (when k is not NULL), releases
 * mc, and removes the handlers; 0, or -1 with what could not be restored in
 * err (the caller warns and exits 1).  Without k
 * and mc, the guard only turns signals into cli_stop.
 */
int cli_guard_start(struct real_ksm *k, struct real_mapcount *mc, struct sp_err *err);
int cli_guard_end(struct real_ksm *k, struct sp_err *err);
/*
 * How a guarded command ends: cli_guard_end(), a warning (and *restore_failed)
 * if something could not be put back, then the exit code - 128 + signal
 * when interrupted, else EXIT_OK or cli_fail(run_err) for the run's rc.
 */
int cli_guard_finish(struct real_ksm *k, int rc, const struct sp_err *run_err, bool *restore_failed);

/* Sleeps until t_ns of CLOCK_MONOTONIC, or until a signal sets cli_stop. */
void cli_sleep_until(uint64_t t_ns);

/* Reads the whole trace once, so that a bad one fails before the host is touched. */
int cli_trace_prescan(const char *path, uint64_t *last_ms, uint64_t *snapshots, uint64_t *pages,
		      uint32_t *page_size, struct sp_err *err);

/*
 * The roots the live commands read the host under: $SAMEPAGE_SYSFS (the KSM
 * directory is SYSFS/kernel/mm/ksm) and $SAMEPAGE_PROCFS (meminfo), "/sys"
 * and "/proc" when unset or empty.  For tests on fake trees, as samepaged's
 * --sysfs/--procfs; the live memory, ksmd and the other processes are the
 * host's whatever they say.
 */
const char *cli_sysfs(void);
const char *cli_procfs(void);

/*
 * The KSM side of a live command, taken once its inputs are checked (so a
 * bad input is exit 3 or 2 even while another process drives KSM): opens
 * the KSM directory for writing (its error followed by hint, if any),
 * claims it for this process until it exits (real_ksm_claim: no samepaged
 * or other live command writes KSM meanwhile), refuses other processes with
 * mergeable memory unless allow_others, and refuses when the headroom
 * (real_unshare_check, samepaged's default reserve) cannot take unmerging
 * every KSM page on the host, which the guard's run=2 does at the start
 * (and, headroom allowing, at the end: cli_guard_end), with own_bytes on
 * top: the memory the run maps itself (validate and real replay after
 * their run=2, calibrate before its), as the others' unmerged pages then
 * share the headroom with it.  Writes nothing:
 * EXIT_OK, or the reason printed and its exit code (4 no KSM, not root,
 * claimed, other processes; 5 no headroom).
 */
int cli_ksm_take(struct real_ksm *k, bool allow_others, int64_t own_bytes, const char *hint);

#endif
