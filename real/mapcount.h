/*
 * mapcount.h - vm.max_map_count shared by concurrent live engines.
 *
 * Each merged page of the live backend can cost a VMA or two, so a run may
 * raise vm.max_map_count (root).  Several engines may run at once (two `sim
 * real replay`, a library user beside one), so the sysctl is a shared
 * resource with three rules:
 *   - it is raised when a user needs more, and never lowered while another
 *     user holds it (a user's engine read the limit when it started);
 *   - the value found before the first raise (the original) is written back
 *     when the last user lets go - on a normal or failed exit, or from the
 *     signal handler on SIGINT/SIGTERM/SIGHUP;
 *   - a crash (SIGKILL) leaves at worst the raised value: the original stays
 *     recorded, and the next user to find the record on its own, the sysctl
 *     still at the recorded raise, adopts it and puts the original back when
 *     it is the last to let go.  Had someone else changed the sysctl since,
 *     the record is dropped and the value left as it is.
 *
 * How: RUNDIR/max_map_count (RUNDIR /run/samepage by default: tmpfs, gone at
 * a reboot like the sysctl; mode 0700, the user's own - root's - so that no
 * other user can open it and stall every hold with a flock() of its own)
 * holds "ORIGINAL RAISED" while a raise is outstanding, nothing otherwise
 * (a raise over a value someone else set records that value as the
 * original).  Every user holds flock(LOCK_SH) on it; hold, raise and
 * release run under flock(LOCK_EX) on RUNDIR itself, and a user that lets
 * go knows it is the last when LOCK_EX on the file succeeds.  flock() locks
 * belong to an open file description, so two holds in one process are two
 * users (as two processes are), and the kernel drops a dead process's
 * locks.  A value set by anyone else (the sysctl no longer at the recorded
 * raise) is never overwritten.
 */
#ifndef SP_MAPCOUNT_H
#define SP_MAPCOUNT_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "sp_error.h"

#define REAL_MAPCOUNT_RUNDIR "/run/samepage"

/* One user's hold on vm.max_map_count (caller storage; see real_mapcount_hold). */
struct real_mapcount {
	atomic_int state;   /* 1 held, 2 being released, 0 released or never held */
	int fd;             /* RUNDIR/max_map_count, LOCK_SH while held */
	int dirfd;          /* RUNDIR, LOCK_EX around every change */
	uint64_t limit;     /* the sysctl's value when held, or after this user's raise */
	bool raised;        /* this user wrote the sysctl */
	pid_t pid;          /* the process that holds; a forked child's release only closes its copies */
	char sysctl[256];   /* PROCFS/sys/vm/max_map_count */
};

/* vm.max_map_count as it is now, unheld (a user that cannot hold it); SP_EIO with one line. */
int real_map_count_get(uint64_t *out, struct sp_err *err);

/*
 * Registers a user: from now on the sysctl is not lowered below m->limit
 * (its value now) until real_mapcount_release().  procfs and rundir: NULL
 * for /proc and REAL_MAPCOUNT_RUNDIR (tests pass fake trees).  SP_EPERM or
 * SP_EIO with one line in err when RUNDIR cannot be made or opened (not
 * root), is not the caller's own, or the sysctl cannot be read; nothing is
 * held then (real_live_new() reads the limit unprotected).
 */
int real_mapcount_hold(struct real_mapcount *m, const char *procfs, const char *rundir,
		       struct sp_err *err);

/*
 * Raises the sysctl to need when it is lower (never lowers it); m->limit is
 * the value after.  SP_EPERM or SP_EIO with one line in err when it cannot
 * be written (not root, a read-only /proc/sys); the hold stays as it was.
 */
int real_mapcount_raise(struct real_mapcount *m, uint64_t need, struct sp_err *err);

/*
 * Lets go; the last user puts the original back.  0, or SP_EIO/SP_EPERM
 * with one line in err when the original could not be written back (the
 * record is kept for the next user).  A second call does nothing, and in a
 * child forked since the hold (an atexit() cleanup after fork()) it only
 * closes the child's copies of the descriptors: the hold is the parent's.
 */
int real_mapcount_release(struct real_mapcount *m, struct sp_err *err);

/*
 * The same from a signal handler: only system calls and atomics.  When the
 * directory lock stays busy (this process is inside a hold or release of
 * another real_mapcount, or another process for over 0.2 s), it leaves the
 * hold as it was and returns -1, and real_mapcount_release() later does it.
 */
int real_mapcount_release_signal_safe(struct real_mapcount *m);

#endif
