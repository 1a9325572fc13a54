/*
 * live_cli.h - what the live commands (`sim validate`, `sim real replay`)
 * share: the KSM tunables --set accepts, the signal guard that restores the
 * host's KSM tunables (and vm.max_map_count) on Ctrl-C, the wall clock, the
 * trace prescan, and the refusal to run beside other mergeable processes.
 */
#ifndef SP_LIVE_CLI_H
#define SP_LIVE_CLI_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ksm_sysfs.h"
#include "sp_util.h"
#include "sp_error.h"

/* The KSM tunables the live commands accept (the kernel's names, shared with the ksm algorithm). */
extern const int cli_ksm_settable[];
extern const size_t cli_ksm_nsettable;

/* The signal (SIGINT, SIGTERM, SIGHUP) that asked the live command to stop; 0 if none. */
extern volatile sig_atomic_t cli_stop;

/*
 * Installs the handlers: on a signal they restore *saved (if non-NULL),
 * write mapcount (if non-NULL and not empty) to /proc/sys/vm/max_map_count,
 * and set cli_stop; a second signal kills the process.  Both pointers must
 * stay valid until cli_unguard_signals().
 */
void cli_guard_signals(struct real_ksm_saved *saved, const char *mapcount);
void cli_unguard_signals(void);

/* Sleeps until t_ns of CLOCK_MONOTONIC, or until a signal sets cli_stop. */
void cli_sleep_until(uint64_t t_ns);

/* Reads the whole trace once, so that a bad one fails before the host is touched. */
int cli_trace_prescan(const char *path, uint64_t *last_ms, uint64_t *snapshots, uint64_t *pages,
		      uint32_t *page_size, struct sp_err *err);

/* MemAvailable of /proc/meminfo in bytes, or -1. */
int64_t cli_mem_available(void);

/* Unless allow: prints why and returns EXIT_UNAVAILABLE when other processes are mergeable. */
int cli_refuse_other_ksm_users(bool allow);

#endif
