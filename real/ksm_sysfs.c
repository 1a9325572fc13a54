/*
 * ksm_sysfs.c - implements real/ksm_sysfs.h: the kernel's KSM through its
 * sysfs directory, and ksmd's CPU time through /proc.
 *
 * Invariants.
 *   - files[] lists every file of the directory in enum real_ksm_file order;
 *     entries below REAL_KSM_TUNABLES are writable, the rest are counters.
 *   - Tunables are only ever written in write_order[] order (restore) or the
 *     equivalent sequence in real_ksm_apply(): merge_across_nodes and
 *     max_page_sharing first (after run=2 if they change), advisor_mode before
 *     pages_to_scan, run last.
 *   - real_ksm_restore_signal_safe() touches only the preformatted strings of
 *     struct real_ksm_saved and calls only open/read/write/close and the
 *     string functions POSIX lists as async-signal-safe.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ksm_sysfs.h"

static const struct {
	const char *name;
	int64_t def;
} files[REAL_KSM__COUNT] = {
	[REAL_KSM_RUN] = { "run", 0 },
	[REAL_KSM_PAGES_TO_SCAN] = { "pages_to_scan", 100 },
	[REAL_KSM_SLEEP_MILLISECS] = { "sleep_millisecs", 20 },
	[REAL_KSM_MERGE_ACROSS_NODES] = { "merge_across_nodes", 1 },
	[REAL_KSM_USE_ZERO_PAGES] = { "use_zero_pages", 0 },
	[REAL_KSM_MAX_PAGE_SHARING] = { "max_page_sharing", 256 },
	[REAL_KSM_SMART_SCAN] = { "smart_scan", 1 },
	[REAL_KSM_ADVISOR_MODE] = { "advisor_mode", REAL_KSM_ADVISOR_NONE },
	[REAL_KSM_ADVISOR_MAX_CPU] = { "advisor_max_cpu", 70 },
	[REAL_KSM_ADVISOR_MIN_PAGES_TO_SCAN] = { "advisor_min_pages_to_scan", 500 },
	[REAL_KSM_ADVISOR_MAX_PAGES_TO_SCAN] = { "advisor_max_pages_to_scan", 30000 },
	[REAL_KSM_ADVISOR_TARGET_SCAN_TIME] = { "advisor_target_scan_time", 200 },
	[REAL_KSM_STABLE_NODE_CHAINS_PRUNE_MILLISECS] = { "stable_node_chains_prune_millisecs", 2000 },
	[REAL_KSM_PAGES_SHARED] = { "pages_shared", 0 },
	[REAL_KSM_PAGES_SHARING] = { "pages_sharing", 0 },
	[REAL_KSM_PAGES_UNSHARED] = { "pages_unshared", 0 },
	[REAL_KSM_PAGES_VOLATILE] = { "pages_volatile", 0 },
	[REAL_KSM_FULL_SCANS] = { "full_scans", 0 },
	[REAL_KSM_PAGES_SCANNED] = { "pages_scanned", 0 },
	[REAL_KSM_PAGES_SKIPPED] = { "pages_skipped", 0 },
	[REAL_KSM_KSM_ZERO_PAGES] = { "ksm_zero_pages", 0 },
	[REAL_KSM_STABLE_NODE_CHAINS] = { "stable_node_chains", 0 },
	[REAL_KSM_STABLE_NODE_DUPS] = { "stable_node_dups", 0 },
	[REAL_KSM_GENERAL_PROFIT] = { "general_profit", 0 },
};

/* Tunables other than run, merge_across_nodes, max_page_sharing, advisor_mode, in write order. */
static const int plain_order[] = {
	REAL_KSM_PAGES_TO_SCAN,
	REAL_KSM_SLEEP_MILLISECS,
	REAL_KSM_USE_ZERO_PAGES,
	REAL_KSM_SMART_SCAN,
	REAL_KSM_STABLE_NODE_CHAINS_PRUNE_MILLISECS,
	REAL_KSM_ADVISOR_MAX_CPU,
	REAL_KSM_ADVISOR_MIN_PAGES_TO_SCAN,
	REAL_KSM_ADVISOR_MAX_PAGES_TO_SCAN,
	REAL_KSM_ADVISOR_TARGET_SCAN_TIME,
};
#define NPLAIN (sizeof(plain_order) / sizeof(plain_order[0]))

const char *real_ksm_name(int file)
{
	return file >= 0 && file < REAL_KSM__COUNT ? files[file].name : NULL;
}

int real_ksm_lookup(const char *name)
{
	for (int i = 0; i < REAL_KSM__COUNT; i++) {
		if (!strcmp(files[i].name, name))
			return i;
	}
	return -1;
}

int64_t real_ksm_default(int file)
{
	return file >= 0 && file < REAL_KSM__COUNT ? files[file].def : 0;
}

/* ---- low level: one file ------------------------------------------------ */

static void file_path(const struct real_ksm *k, int file, char *buf, size_t len)
{
	snprintf(buf, len, "%s/%s", k->dir, files[file].name);
}

int real_read_small(const char *path, char *buf, size_t len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n;
	int e;

	if (fd < 0)
		return -errno;
	do
		n = read(fd, buf, len - 1);
	while (n < 0 && errno == EINTR);
	e = errno;
	close(fd);
	if (n < 0)
		return -e;
	buf[n] = '\0';
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == ' '))
		buf[--n] = '\0';
	return 0;
}

/* Writes value to path: 0 or errno.  Async-signal-safe. */
static int write_small(const char *path, const char *value)
{
	/* O_TRUNC as a shell redirection does: sysfs ignores it, plain files need it */
	int fd = open(path, O_WRONLY | O_TRUNC | O_CLOEXEC);
	size_t len = strlen(value);
	ssize_t n;
	int e = 0;

	if (fd < 0)
		return errno;
	do
		n = write(fd, value, len);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		e = errno;
	else if ((size_t)n != len)
		e = EIO;
	if (close(fd) < 0 && !e)
		e = errno;
	return e;
}

/* "[none] scan-time" -> 0; "none [scan-time]" -> 1 (a bare "none"/"scan-time" too). */
static int parse_advisor(const char *s, int64_t *out)
{
	const char *b = strchr(s, '[');

	if (!b)
		b = s;
	else
		b++;
	if (!strncmp(b, "none", 4) && (b[4] == ']' || b[4] == '\0'))
		*out = REAL_KSM_ADVISOR_NONE;
	else if (!strncmp(b, "scan-time", 9) && (b[9] == ']' || b[9] == '\0'))
		*out = REAL_KSM_ADVISOR_SCAN_TIME;
	else
		return -1;
	return 0;
}

static int parse_value(int file, const char *s, int64_t *out)
{
	char *end;
	long long v;

	if (file == REAL_KSM_ADVISOR_MODE)
		return parse_advisor(s, out);
	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno || end == s || *end)
		return -1;
	*out = v;
	return 0;
}

static int errno_code(int e)
{
	return e == EACCES || e == EPERM || e == EROFS ? SP_EPERM : e == EINVAL ? SP_EINVAL : SP_EIO;
}

/* ---- opening and reading ------------------------------------------------ */

int real_ksm_open(struct real_ksm *k, const char *dir, bool write, struct sp_err *err)
{
	struct stat st;
	char path[256];

	if (!dir)
		dir = REAL_KSM_DIR;
	if (strlen(dir) >= sizeof(k->dir))
		return sp_err_set(err, SP_EINVAL, "KSM directory name too long: %s", dir);
	snprintf(k->dir, sizeof(k->dir), "%s", dir);
	if (stat(dir, &st) < 0 || !S_ISDIR(st.st_mode))
		return sp_err_set(err, SP_ENOTSUP, "this kernel has no KSM (%s missing)", dir);
	file_path(k, REAL_KSM_RUN, path, sizeof(path));
	if (access(path, R_OK) < 0)
		return sp_err_set(err, SP_ENOTSUP, "this kernel has no KSM (%s unreadable: %s)", path,
				  strerror(errno));
	if (write && access(path, W_OK) < 0) {
		int e = errno;

		if (e == EROFS)
			return sp_err_set(err, SP_EPERM, "KSM tunables are read-only here (%s: %s)", path,
					  strerror(e));
		return sp_err_set(err, SP_EPERM, "changing KSM tunables needs root (%s: %s)", path,
				  strerror(e));
	}
	return 0;
}

int real_ksm_get(const struct real_ksm *k, int file, int64_t *out, struct sp_err *err)
{
	char path[256], buf[128];
	int rc;

	if (file < 0 || file >= REAL_KSM__COUNT)
		return sp_err_set(err, SP_EINVAL, "no KSM file number %d", file);
	file_path(k, file, path, sizeof(path));
	rc = real_read_small(path, buf, sizeof(buf));
	if (rc < 0)
		return sp_err_set(err, rc == -ENOENT ? SP_ENOTSUP : errno_code(-rc), "cannot read %s: %s",
				  path, strerror(-rc));
	if (parse_value(file, buf, out) < 0)
		return sp_err_set(err, SP_EIO, "%s: unexpected content '%s'", path, buf);
	return 0;
}

int real_ksm_read(const struct real_ksm *k, struct real_ksm_state *out, struct sp_err *err)
{
	memset(out, 0, sizeof(*out));
	for (int i = 0; i < REAL_KSM__COUNT; i++) {
		struct sp_err e = { 0 };
		int rc = real_ksm_get(k, i, &out->v[i], &e);

		if (rc == SP_ENOTSUP && i != REAL_KSM_RUN)
			continue; /* a file this kernel does not have */
		if (rc < 0) {
			sp_err_set(err, rc, "%s", e.msg);
			return rc;
		}
		out->present[i] = true;
	}
	return 0;
}

static void format_value(int file, int64_t v, char *buf, size_t len)
{
	if (file == REAL_KSM_ADVISOR_MODE)
		snprintf(buf, len, "%s", v == REAL_KSM_ADVISOR_SCAN_TIME ? "scan-time" : "none");
	else
		snprintf(buf, len, "%lld", (long long)v);
}

int real_ksm_set(const struct real_ksm *k, int file, int64_t value, struct sp_err *err)
{
	char path[256], buf[32];
	int e;

	if (file < 0 || file >= REAL_KSM_TUNABLES)
		return sp_err_set(err, SP_EINVAL, "%s is not a KSM tunable",
				  file >= 0 && file < REAL_KSM__COUNT ? files[file].name : "?");
	file_path(k, file, path, sizeof(path));
	format_value(file, value, buf, sizeof(buf));
	e = write_small(path, buf);
	if (e == EBUSY)
		return sp_err_set(err, SP_EIO, "the kernel refused %s=%s while KSM pages exist (%s)",
				  files[file].name, buf, strerror(e));
	if (e)
		return sp_err_set(err, e == ENOENT ? SP_ENOTSUP : errno_code(e),
				  "cannot write %s to %s: %s", buf, path, strerror(e));
	return 0;
}

/* ---- ordered setting ---------------------------------------------------- */

/* Does this kernel have the file?  (smart_scan, advisor_*, merge_across_nodes may be missing.) */
static bool has_file(const struct real_ksm *k, int file)
{
	char path[256];

	file_path(k, file, path, sizeof(path));
	return access(path, F_OK) == 0;
}

/* real_ksm_set(), except that a missing file wanted at its kernel default is no error. */
static int apply_one(const struct real_ksm *k, int file, int64_t value, struct sp_err *err)
{
	if (value == files[file].def && !has_file(k, file))
		return 0;
	return real_ksm_set(k, file, value, err);
}

int real_ksm_apply(const struct real_ksm *k, const struct real_ksm_settings *s,
		   struct sp_err *err)
{
	int64_t run = 0, man = 0, mps = 0, advisor = REAL_KSM_ADVISOR_NONE;
	bool unmerge = false;
	int rc;

	rc = real_ksm_get(k, REAL_KSM_RUN, &run, err);
	if (rc < 0)
		return rc;
	if (s->set[REAL_KSM_MERGE_ACROSS_NODES] && has_file(k, REAL_KSM_MERGE_ACROSS_NODES)) {
		rc = real_ksm_get(k, REAL_KSM_MERGE_ACROSS_NODES, &man, err);
		if (rc < 0)
			return rc;
		unmerge |= man != s->v[REAL_KSM_MERGE_ACROSS_NODES];
	}
	if (s->set[REAL_KSM_MAX_PAGE_SHARING]) {
		rc = real_ksm_get(k, REAL_KSM_MAX_PAGE_SHARING, &mps, err);
		if (rc < 0)
			return rc;
		unmerge |= mps != s->v[REAL_KSM_MAX_PAGE_SHARING];
	}
	unmerge &= run != REAL_KSM_RUN_UNMERGE;
	if (unmerge && (rc = real_ksm_set(k, REAL_KSM_RUN, REAL_KSM_RUN_UNMERGE, err)) < 0)
		return rc;
	if (s->set[REAL_KSM_MERGE_ACROSS_NODES] &&
	    (rc = apply_one(k, REAL_KSM_MERGE_ACROSS_NODES, s->v[REAL_KSM_MERGE_ACROSS_NODES], err)) < 0)
		return rc;
	if (s->set[REAL_KSM_MAX_PAGE_SHARING] &&
	    (rc = real_ksm_set(k, REAL_KSM_MAX_PAGE_SHARING, s->v[REAL_KSM_MAX_PAGE_SHARING], err)) < 0)
		return rc;
	if (s->set[REAL_KSM_ADVISOR_MODE]) {
		rc = apply_one(k, REAL_KSM_ADVISOR_MODE, s->v[REAL_KSM_ADVISOR_MODE], err);
		if (rc < 0)
			return rc;
		advisor = s->v[REAL_KSM_ADVISOR_MODE];
	} else if (s->set[REAL_KSM_PAGES_TO_SCAN] &&
		   real_ksm_get(k, REAL_KSM_ADVISOR_MODE, &advisor, NULL) < 0) {
		advisor = REAL_KSM_ADVISOR_NONE; /* a kernel without the advisor */
	}
	if (s->set[REAL_KSM_PAGES_TO_SCAN] && advisor != REAL_KSM_ADVISOR_NONE)
		return sp_err_set(err, SP_EINVAL,
				  "pages_to_scan cannot be set while advisor_mode=scan-time (set advisor_mode=none)");
	for (size_t i = 0; i < NPLAIN; i++) {
		int f = plain_order[i];

		if (s->set[f] && (rc = apply_one(k, f, s->v[f], err)) < 0)
			return rc;
	}
	if (s->set[REAL_KSM_RUN])
		return real_ksm_set(k, REAL_KSM_RUN, s->v[REAL_KSM_RUN], err);
	if (unmerge)
		return real_ksm_set(k, REAL_KSM_RUN, run, err);
	return 0;
}

/* ---- save and restore --------------------------------------------------- */

int real_ksm_save(const struct real_ksm *k, struct real_ksm_saved *out, struct sp_err *err)
{
	struct real_ksm_state st;
	int rc;

	memset(out, 0, sizeof(*out));
	out->failed_file = -1;
	rc = real_ksm_read(k, &st, err);
	if (rc < 0)
		return rc;
	for (int i = 0; i < REAL_KSM_TUNABLES; i++) {
		file_path(k, i, out->path[i], sizeof(out->path[i]));
		if (st.present[i])
			format_value(i, st.v[i], out->value[i], sizeof(out->value[i]));
	}
	out->valid = true;
	return 0;
}

/* Signal-safe: write one saved tunable (or a given value), note the first failure. */
static int restore_one(struct real_ksm_saved *s, int file, const char *value)
{
	int e;

	if (!s->value[file][0])
		return 0; /* absent on this kernel */
	e = write_small(s->path[file], value ? value : s->value[file]);
	if (e && s->failed_file < 0) {
		s->failed_file = file;
		s->failed_errno = e;
	}
	return e != 0;
}

/* Signal-safe: does the file's current content differ from the saved value? */
static int differs(struct real_ksm_saved *s, int file)
{
	char buf[64];

	if (!s->value[file][0])
		return 0;
	if (real_read_small(s->path[file], buf, sizeof(buf)) < 0)
		return 1;
	return strcmp(buf, s->value[file]) != 0;
}

int real_ksm_restore_signal_safe(struct real_ksm_saved *s)
{
	int saved_errno = errno, failed = 0;

	if (!s->valid)
		return 0;
	s->failed_file = -1;
	s->failed_errno = 0;
	if (!s->no_unmerge &&
	    (differs(s, REAL_KSM_MERGE_ACROSS_NODES) || differs(s, REAL_KSM_MAX_PAGE_SHARING)))
		failed += restore_one(s, REAL_KSM_RUN, "2");
	failed += restore_one(s, REAL_KSM_MERGE_ACROSS_NODES, NULL);
	failed += restore_one(s, REAL_KSM_MAX_PAGE_SHARING, NULL);
	/* pages_to_scan is refused under the advisor; leaving it resets pages_to_scan. */
	failed += restore_one(s, REAL_KSM_ADVISOR_MODE, "none");
	for (size_t i = 0; i < NPLAIN; i++)
		failed += restore_one(s, plain_order[i], NULL);
	failed += restore_one(s, REAL_KSM_ADVISOR_MODE, NULL);
	failed += restore_one(s, REAL_KSM_RUN, NULL);
	errno = saved_errno;
	return failed;
}

int real_ksm_restore(struct real_ksm_saved *s, struct sp_err *err)
{
	int failed = real_ksm_restore_signal_safe(s);

	if (!failed)
		return 0;
	return sp_err_set(err, errno_code(s->failed_errno) == SP_EPERM ? SP_EPERM : SP_EIO,
			  "could not restore %d KSM tunable(s), first %s=%s: %s", failed,
			  s->path[s->failed_file], s->value[s->failed_file], strerror(s->failed_errno));
}

/* ---- metrics ------------------------------------------------------------ */

void real_ksm_metrics(const struct real_ksm_state *now, const struct real_ksm_state *base,
		      struct metrics *out)
{
#define CUM(f) (now->v[f] - (base ? base->v[f] : 0))
	out->pages_shared = now->v[REAL_KSM_PAGES_SHARED];
	out->pages_sharing = now->v[REAL_KSM_PAGES_SHARING];
	out->pages_unshared = now->v[REAL_KSM_PAGES_UNSHARED];
	out->pages_volatile = now->v[REAL_KSM_PAGES_VOLATILE];
	out->full_scans = CUM(REAL_KSM_FULL_SCANS);
	out->pages_scanned = CUM(REAL_KSM_PAGES_SCANNED);
	out->pages_skipped = CUM(REAL_KSM_PAGES_SKIPPED);
	out->ksm_zero_pages = now->v[REAL_KSM_KSM_ZERO_PAGES];
	out->stable_node_chains = now->v[REAL_KSM_STABLE_NODE_CHAINS];
	out->stable_node_dups = now->v[REAL_KSM_STABLE_NODE_DUPS];
	out->general_profit = now->v[REAL_KSM_GENERAL_PROFIT];
#undef CUM
}

/* ---- /proc -------------------------------------------------------------- */

int real_ksmd_pid(pid_t *out, struct sp_err *err)
{
	DIR *d = opendir("/proc");
	struct dirent *de;
	char path[64], comm[64];

	if (!d)
		return sp_err_set(err, SP_EIO, "cannot open /proc: %s", strerror(errno));
	while ((de = readdir(d))) {
		char *end;
		long pid = strtol(de->d_name, &end, 10);

		if (*end || pid <= 0)
			continue;
		snprintf(path, sizeof(path), "/proc/%ld/comm", pid);
		if (real_read_small(path, comm, sizeof(comm)) == 0 && !strcmp(comm, "ksmd")) {
			closedir(d);
			*out = (pid_t)pid;
			return 0;
		}
	}
	closedir(d);
	return sp_err_set(err, SP_ENOTSUP, "no ksmd thread in /proc");
}

int real_ksm_other_users(pid_t self, pid_t *out, int max)
{
	DIR *d = opendir("/proc");
	struct dirent *e;
	int n = 0;

	if (!d)
		return 0;
	while ((e = readdir(d))) {
		char path[64], buf[512];
		long pid = strtol(e->d_name, NULL, 10);

		if (pid <= 0 || pid == (long)self)
			continue;
		snprintf(path, sizeof(path), "/proc/%ld/ksm_stat", pid);
		if (real_read_small(path, buf, sizeof(buf)) < 0 || !strstr(buf, "ksm_mergeable: yes"))
			continue;
		if (n < max)
			out[n] = (pid_t)pid;
		n++;
	}
	closedir(d);
	return n;
}

int real_proc_cpu_ns_at(const char *procfs, pid_t pid, int64_t *out, struct sp_err *err)
{
	char path[512], buf[1024];
	unsigned long long ut, st;
	long hz = sysconf(_SC_CLK_TCK);
	const char *p;
	int rc;

	/*
	 * schedstat's first field is the time on CPU in ns (sum_exec_runtime,
	 * not sampled at ticks); stat's utime + stime is that total rescaled
	 * (cputime_adjust), in USER_HZ units: equal within 10 ms over a run
	 * (bench/README.md "bench_cost.sh", fifth round).
	 */
	snprintf(path, sizeof(path), "%s/%ld/schedstat", procfs, (long)pid);
	if (real_read_small(path, buf, sizeof(buf)) >= 0 && sscanf(buf, "%llu", &ut) == 1) {
		*out = (int64_t)ut;
		return 0;
	}
	snprintf(path, sizeof(path), "%s/%ld/stat", procfs, (long)pid);
	rc = real_read_small(path, buf, sizeof(buf));
	if (rc < 0)
		return sp_err_set(err, SP_EIO, "cannot read %s: %s", path, strerror(-rc));
	p = strrchr(buf, ')'); /* the command name may hold spaces and parentheses */
	/* After ") ": state ppid pgrp session tty_nr tpgid flags minflt cminflt majflt cmajflt utime stime */
	if (!p || sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
		return sp_err_set(err, SP_EIO, "%s: unexpected format", path);
	if (hz <= 0)
		hz = 100;
	*out = (int64_t)((ut + st) * (1000000000ull / (unsigned long long)hz));
	return 0;
}

int real_proc_cpu_ns(pid_t pid, int64_t *out, struct sp_err *err)
{
	return real_proc_cpu_ns_at("/proc", pid, out, err);
}

int real_proc_wait_ns(pid_t pid, int64_t *out, struct sp_err *err)
{
	char path[64], buf[256];
	unsigned long long on_cpu, waiting;

	snprintf(path, sizeof(path), "/proc/%ld/schedstat", (long)pid);
	if (real_read_small(path, buf, sizeof(buf)) < 0 ||
	    sscanf(buf, "%llu %llu", &on_cpu, &waiting) != 2)
		return sp_err_set(err, SP_ENOTSUP, "%s: not readable (no schedstats)", path);
	*out = (int64_t)waiting;
	return 0;
}

int real_vmstat_cow_ksm_at(const char *procfs, int64_t *out, struct sp_err *err)
{
	char path[512], line[128];
	FILE *f;
	long long v;

	snprintf(path, sizeof(path), "%s/vmstat", procfs);
	f = fopen(path, "re");
	*out = -1;
	if (!f)
		return sp_err_set(err, SP_EIO, "cannot open %s: %s", path, strerror(errno));
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "cow_ksm %lld", &v) == 1) {
			*out = v;
			break;
		}
	}
	fclose(f);
	return 0;
}

int real_vmstat_cow_ksm(int64_t *out, struct sp_err *err)
{
	int rc = real_vmstat_cow_ksm_at("/proc", out, err);

	if (*out < 0)
		*out = 0;
	return rc;
}

/* Whether fd of pid is the file st describes and holds a flock() on it (its fdinfo's "lock:" lines). */
static bool fd_holds_flock(long pid, const char *fd, const struct stat *st)
{
	char path[320], line[256];
	struct stat fst;
	bool held = false;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%ld/fd/%s", pid, fd);
	if (stat(path, &fst) < 0 || fst.st_ino != st->st_ino || fst.st_dev != st->st_dev)
		return false;
	snprintf(path, sizeof(path), "/proc/%ld/fdinfo/%s", pid, fd);
	if (!(f = fopen(path, "r")))
		return false;
	while (!held && fgets(line, sizeof(line), f))
		held = !strncmp(line, "lock:", 5) && strstr(line, " FLOCK ");
	fclose(f);
	return held;
}

/*
 * A live process holding a flock() on the file st describes; 0 if none is
 * found.  Not /proc/locks: its pid is the one that took the lock, which may
 * have exited since (samepaged's parent, after daemonize()'s fork) and its
 * pid be another process's by now.  A descriptor's fdinfo lists only the
 * locks of its own open file description.
 */
static long flock_holder(const struct stat *st)
{
	DIR *d = opendir("/proc");
	struct dirent *e;
	long found = 0;

	if (!d)
		return 0;
	while (!found && (e = readdir(d))) {
		long pid = strtol(e->d_name, NULL, 10);
		char path[64];
		struct dirent *fe;
		DIR *fds;

		if (pid <= 0)
			continue;
		snprintf(path, sizeof(path), "/proc/%ld/fd", pid);
		if (!(fds = opendir(path)))
			continue;
		while (!found && (fe = readdir(fds)))
			if (fe->d_name[0] != '.' && fd_holds_flock(pid, fe->d_name, st))
				found = pid;
		closedir(fds);
	}
	closedir(d);
	return found;
}

int real_ksm_claim(const char *dir, int *fd, struct sp_err *err)
{
	char path[64], comm[32] = "";
	struct stat st;
	long pid = 0;
	int e, d = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	FILE *f;

	*fd = -1;
	if (d < 0)
		return sp_err_set(err, errno == ENOENT ? SP_ENOTSUP : SP_EIO, "cannot open %s: %s", dir,
				  strerror(errno));
	if (flock(d, LOCK_EX | LOCK_NB) == 0) {
		*fd = d;
		return 0;
	}
	e = errno;
	if (e == EWOULDBLOCK && fstat(d, &st) == 0)
		pid = flock_holder(&st);
	close(d);
	if (e != EWOULDBLOCK)
		return sp_err_set(err, SP_EIO, "cannot lock %s: %s", dir, strerror(e));
	snprintf(path, sizeof(path), "/proc/%ld/comm", pid);
	if (pid > 0 && (f = fopen(path, "r"))) {
		if (!fgets(comm, sizeof(comm), f))
			comm[0] = '\0';
		comm[strcspn(comm, "\n")] = '\0';
		fclose(f);
	}
	if (comm[0])
		return sp_err_set(err, SP_EBUSY, "%s is driven by another process (pid %ld, %s); "
				  "samepaged and the commands that write KSM run one at a time", dir, pid, comm);
	return sp_err_set(err, SP_EBUSY, "%s is driven by another process; samepaged and the "
			  "commands that write KSM run one at a time", dir);
}
