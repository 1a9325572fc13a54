/*
 * mapcount.c - implements vm.max_map_count shared by concurrent live
 * engines (mapcount.h): a record of the original value under a run
 * directory, flock() to count the users, the last one puts it back.
 *
 * Invariants.
 *   - Every change - a record written or dropped, the sysctl raised or put
 *     back, a user's first LOCK_SH taken - happens under LOCK_EX on RUNDIR,
 *     so "no other user" (LOCK_EX on the file granted) cannot change while
 *     it is acted on.
 *   - The record is written before the sysctl is raised and dropped after it
 *     is put back: a crash in between leaves a record whose raise the sysctl
 *     does not show, which the next user drops.
 *   - The sysctl is written only upwards, and back to the original only by
 *     the last user and only while it still shows the recorded raise.
 *   - The release path (drop()) makes only system calls and atomic
 *     operations, for real_mapcount_release_signal_safe(); its state word
 *     lets one of the main path and a handler do it, never both.
 */
#define _GNU_SOURCE
#include "mapcount.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

enum { MC_FREE = 0, MC_HELD = 1, MC_BUSY = 2 };

/* ---- signal-safe helpers ------------------------------------------------- */

/* Up to max decimal numbers separated by blanks; how many were read. */
static int parse_u64s(const char *s, uint64_t *v, int max)
{
	int k = 0;

	while (k < max) {
		uint64_t x = 0;

		while (*s == ' ' || *s == '\t' || *s == '\n')
			s++;
		if (*s < '0' || *s > '9')
			break;
		while (*s >= '0' && *s <= '9')
			x = x * 10 + (uint64_t)(*s++ - '0');
		v[k++] = x;
	}
	return k;
}

/* v in decimal then sep at buf; the length. */
static size_t fmt_u64(char *buf, uint64_t v, char sep)
{
	char t[20];
	size_t n = 0, k = 0;

	do
		t[k++] = (char)('0' + v % 10);
	while ((v /= 10) != 0);
	while (k)
		buf[n++] = t[--k];
	buf[n++] = sep;
	return n;
}

static int read_u64_path(const char *path, uint64_t *out)
{
	char buf[32];
	int fd = open(path, O_RDONLY | O_CLOEXEC), e;
	ssize_t n;

	if (fd < 0)
		return -errno;
	n = read(fd, buf, sizeof(buf) - 1);
	e = errno;
	close(fd);
	if (n < 0)
		return -e;
	buf[n] = '\0';
	return parse_u64s(buf, out, 1) == 1 ? 0 : -EINVAL;
}

static int write_u64_path(const char *path, uint64_t v)
{
	char buf[24];
	size_t n = fmt_u64(buf, v, '\n');
	int fd = open(path, O_WRONLY | O_CLOEXEC), e;
	ssize_t w;

	if (fd < 0)
		return -errno;
	w = write(fd, buf, n);
	e = w < 0 ? errno : EIO;
	if (close(fd) < 0 && w == (ssize_t)n) {
		e = errno;
		w = -1;
	}
	return w == (ssize_t)n ? 0 : -e;
}

struct record {
	bool present;
	uint64_t original, raised;
};

static int record_read(int fd, struct record *r)
{
	char buf[64];
	uint64_t v[2];
	ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);

	if (n < 0)
		return -errno;
	buf[n] = '\0';
	r->present = parse_u64s(buf, v, 2) == 2;
	r->original = v[0];
	r->raised = v[1];
	return 0;
}

static int record_write(int fd, const struct record *r)
{
	char buf[48];
	size_t n;

	if (ftruncate(fd, 0) < 0)
		return -errno;
	if (!r->present)
		return 0;
	n = fmt_u64(buf, r->original, ' ');
	n += fmt_u64(buf + n, r->raised, '\n');
	return pwrite(fd, buf, n, 0) == (ssize_t)n ? 0 : -(errno ? errno : EIO);
}

static void nap_ms(long ms)
{
	struct timespec ts = { 0, ms * 1000000L };

	nanosleep(&ts, NULL);
}

/* LOCK_EX on RUNDIR: waited for, or (signal handler) tried for about 0.2 s. */
static int dir_lock(int dirfd, bool wait)
{
	for (int i = 0; i < 200; i++) {
		if (flock(dirfd, wait ? LOCK_EX : LOCK_EX | LOCK_NB) == 0)
			return 0;
		if (errno != EINTR && errno != EWOULDBLOCK)
			return -errno;
		if (errno == EWOULDBLOCK)
			nap_ms(1);
		else
			i--; /* interrupted by a signal: not a try */
	}
	return -EWOULDBLOCK;
}

static void flock_wait(int fd, int op)
{
	while (flock(fd, op) < 0 && errno == EINTR)
		;
}

/*
 * Lets go of m: 1 when the original was put back, 0 when nothing was to do,
 * -errno when it could not be (*orig what should have been written), and
 * -EWOULDBLOCK from a handler that left the hold to the main path.
 */
static int drop(struct real_mapcount *m, bool in_handler, uint64_t *orig)
{
	int expect = MC_HELD, ret = 0;

	while (!atomic_compare_exchange_strong(&m->state, &expect, MC_BUSY)) {
		if (expect == MC_FREE || in_handler)
			return 0; /* released, or being released by the other path */
		nap_ms(1);        /* a handler in another thread is at it */
		expect = MC_HELD;
	}
	if (m->pid != getpid()) { /* a forked child: the locks are the parent's open file descriptions */
		close(m->fd);
		close(m->dirfd);
		m->fd = m->dirfd = -1;
		atomic_store(&m->state, MC_FREE);
		return 0;
	}
	if (dir_lock(m->dirfd, !in_handler) < 0 && in_handler) {
		atomic_store(&m->state, MC_HELD);
		return -EWOULDBLOCK;
	}
	if (flock(m->fd, LOCK_EX | LOCK_NB) == 0) { /* the last user */
		struct record r;
		uint64_t cur;

		if (record_read(m->fd, &r) == 0 && r.present) {
			*orig = r.original;
			ret = read_u64_path(m->sysctl, &cur);
			if (ret == 0 && cur == r.raised && cur != r.original) {
				int w = write_u64_path(m->sysctl, r.original);

				ret = w < 0 ? w : 1;
			}
			if (ret >= 0) { /* put back, or changed by someone else since: not ours */
				r.present = false;
				record_write(m->fd, &r);
			}
		}
	}
	flock(m->fd, LOCK_UN); /* also when a forked child still has a copy of the descriptor */
	close(m->fd);
	m->fd = -1;
	flock(m->dirfd, LOCK_UN); /* close() alone keeps it while a forked child has a copy */
	close(m->dirfd);
	m->dirfd = -1;
	atomic_store(&m->state, MC_FREE);
	return ret;
}

/* ---- the API ----------------------------------------------------------- */

static int sys_code(int e)
{
	return e == EACCES || e == EPERM || e == EROFS ? SP_EPERM : SP_EIO;
}

int real_map_count_get(uint64_t *out, struct sp_err *err)
{
	int e = read_u64_path("/proc/sys/vm/max_map_count", out);

	if (e < 0)
		return sp_err_set(err, SP_EIO, "cannot read /proc/sys/vm/max_map_count: %s", strerror(-e));
	return 0;
}

int real_mapcount_hold(struct real_mapcount *m, const char *procfs, const char *rundir,
		       struct sp_err *err)
{
	char path[256];
	struct record r;
	struct stat st;
	uint64_t cur = 0;
	int rc, e;

	memset(m, 0, sizeof(*m));
	atomic_init(&m->state, MC_FREE);
	m->fd = m->dirfd = -1;
	procfs = procfs ? procfs : "/proc";
	rundir = rundir ? rundir : REAL_MAPCOUNT_RUNDIR;
	if ((size_t)snprintf(m->sysctl, sizeof(m->sysctl), "%s/sys/vm/max_map_count", procfs) >=
		    sizeof(m->sysctl) ||
	    (size_t)snprintf(path, sizeof(path), "%s/max_map_count", rundir) >= sizeof(path))
		return sp_err_set(err, SP_EINVAL, "vm.max_map_count: path too long under %s", rundir);
	if (mkdir(rundir, 0700) < 0 && errno != EEXIST)
		return sp_err_set(err, sys_code(errno), "vm.max_map_count: cannot make %s: %s", rundir,
				  strerror(errno));
	m->dirfd = open(rundir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (m->dirfd < 0)
		return sp_err_set(err, sys_code(errno), "vm.max_map_count: cannot open %s: %s", rundir,
				  strerror(errno));
	/* Only its owner may open it: anyone else's flock() would stall every user's hold and release. */
	if (fstat(m->dirfd, &st) < 0 || st.st_uid != geteuid() ||
	    ((st.st_mode & 077) && fchmod(m->dirfd, 0700) < 0)) {
		rc = sp_err_set(err, SP_EPERM, "vm.max_map_count: %s is not this user's own directory",
				rundir);
		goto fail;
	}
	if ((e = dir_lock(m->dirfd, true)) < 0) {
		rc = sp_err_set(err, SP_EIO, "vm.max_map_count: cannot lock %s: %s", rundir, strerror(-e));
		goto fail;
	}
	m->fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (m->fd < 0 && (errno == EACCES || errno == EROFS))
		m->fd = open(path, O_RDONLY | O_CLOEXEC); /* a user that cannot raise can still hold */
	if (m->fd < 0) {
		rc = sp_err_set(err, sys_code(errno), "vm.max_map_count: cannot open %s: %s", path,
				strerror(errno));
		goto fail;
	}
	if ((e = read_u64_path(m->sysctl, &cur)) < 0) {
		rc = sp_err_set(err, sys_code(-e), "cannot read %s: %s", m->sysctl, strerror(-e));
		goto fail;
	}
	/* Alone: a record left is a crashed user's; adopted while the sysctl still shows its raise. */
	if (flock(m->fd, LOCK_EX | LOCK_NB) == 0 && record_read(m->fd, &r) == 0 && r.present &&
	    r.raised != cur) {
		r.present = false;
		record_write(m->fd, &r);
	}
	flock_wait(m->fd, LOCK_SH);
	flock(m->dirfd, LOCK_UN);
	m->limit = cur;
	m->pid = getpid();
	atomic_store(&m->state, MC_HELD);
	return 0;
fail:
	if (m->fd >= 0)
		close(m->fd);
	close(m->dirfd);
	m->fd = m->dirfd = -1;
	return rc;
}

int real_mapcount_raise(struct real_mapcount *m, uint64_t need, struct sp_err *err)
{
	struct record old, r;
	uint64_t cur;
	int e;

	if (atomic_load(&m->state) != MC_HELD)
		return sp_err_set(err, SP_EINVAL, "vm.max_map_count raised without a hold");
	if ((e = dir_lock(m->dirfd, true)) < 0)
		return sp_err_set(err, SP_EIO, "vm.max_map_count: cannot lock its run directory: %s",
				  strerror(-e));
	if ((e = read_u64_path(m->sysctl, &cur)) < 0) {
		flock(m->dirfd, LOCK_UN);
		return sp_err_set(err, sys_code(-e), "cannot read %s: %s", m->sysctl, strerror(-e));
	}
	if (need <= cur) {
		flock(m->dirfd, LOCK_UN);
		m->limit = cur;
		return 0;
	}
	if ((e = record_read(m->fd, &old)) < 0) {
		flock(m->dirfd, LOCK_UN);
		return sp_err_set(err, SP_EIO, "vm.max_map_count: cannot read its record: %s", strerror(-e));
	}
	r = old;
	if (!r.present || r.raised != cur) { /* a value set by someone else since is the one to put back */
		r.present = true;
		r.original = cur;
	}
	r.raised = need;
	e = record_write(m->fd, &r);
	if (e == -EBADF || e == -EINVAL) /* held read-only: not allowed to write the record */
		e = -EACCES;
	if (e == 0 && (e = write_u64_path(m->sysctl, need)) < 0)
		record_write(m->fd, &old);
	flock(m->dirfd, LOCK_UN);
	if (e < 0)
		return sp_err_set(err, sys_code(-e), "cannot raise %s from %llu to %llu: %s", m->sysctl,
				  (unsigned long long)cur, (unsigned long long)need, strerror(-e));
	m->limit = need;
	m->raised = true;
	return 0;
}

int real_mapcount_release(struct real_mapcount *m, struct sp_err *err)
{
	uint64_t orig = 0;
	int e = drop(m, false, &orig);

	if (e < 0)
		return sp_err_set(err, sys_code(-e), "cannot put %s back to %llu: %s", m->sysctl,
				  (unsigned long long)orig, strerror(-e));
	return 0;
}

int real_mapcount_release_signal_safe(struct real_mapcount *m)
{
	uint64_t orig = 0;
	int saved = errno, rc = drop(m, true, &orig) < 0 ? -1 : 0;

	errno = saved;
	return rc;
}
