/*
 * test_mapcount.c - tests real/mapcount.h on a fake tree (a plain file for
 * PROCFS/sys/vm/max_map_count, a scratch run directory): users that raise
 * and hold it in any order, two of them in one process as well as across
 * processes, never lower it under each other, and the last one puts the
 * original back; a crashed user leaves the raised value, which the next one
 * adopts; a user that may not write gets a one-line error; no other user
 * can open the run directory to stall the holds.
 * `tests/cli/mapcount_concurrent.sh` runs two `sim real replay` on the real
 * sysctl.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <fcntl.h>
#include <stdbool.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "mapcount.h"

static char g_proc[256], g_run[256], g_file[300];

/* A fresh fake tree whose max_map_count reads v. */
static void tree(const char *name, uint64_t v)
{
	char d[300];
	FILE *f;

	snprintf(g_proc, sizeof(g_proc), "%s/%s-proc", sp_test_tmpdir(), name);
	snprintf(g_run, sizeof(g_run), "%s/%s-run", sp_test_tmpdir(), name);
	snprintf(d, sizeof(d), "%s/sys", g_proc);
	mkdir(g_proc, 0755);
	mkdir(d, 0755);
	snprintf(d, sizeof(d), "%s/sys/vm", g_proc);
	mkdir(d, 0755);
	snprintf(g_file, sizeof(g_file), "%s/sys/vm/max_map_count", g_proc);
	f = fopen(g_file, "w");
	CU_ASSERT_FATAL(f != NULL);
	fprintf(f, "%llu\n", (unsigned long long)v);
	fclose(f);
}

static uint64_t value(void)
{
	unsigned long long v = 0;
	FILE *f = fopen(g_file, "r");

	if (f) {
		if (fscanf(f, "%llu", &v) != 1)
			v = 0;
		fclose(f);
	}
	return v;
}

static void set_value(uint64_t v)
{
	FILE *f = fopen(g_file, "w");

	CU_ASSERT_FATAL(f != NULL);
	fprintf(f, "%llu\n", (unsigned long long)v);
	fclose(f);
}

/* Whether the run directory's lock is free now (a hold would not wait). */
static bool dir_free(void)
{
	int d = open(g_run, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	bool ok = d >= 0 && flock(d, LOCK_EX | LOCK_NB) == 0;

	if (d >= 0)
		close(d);
	return ok;
}

static int hold(struct real_mapcount *m, uint64_t need)
{
	struct sp_err err = { 0 };
	int rc = real_mapcount_hold(m, g_proc, g_run, &err);

	if (rc == 0 && need)
		rc = real_mapcount_raise(m, need, &err);
	if (rc)
		printf("hold: %s\n", err.msg);
	return rc;
}

static int release(struct real_mapcount *m)
{
	struct sp_err err = { 0 };
	int rc = real_mapcount_release(m, &err);

	if (rc)
		printf("release: %s\n", err.msg);
	return rc;
}

/* The bug: A raises, B raises further, A ends first: B's limit must stay, the original come back after B. */
SP_TEST(first_to_end_does_not_lower_under_second)
{
	struct real_mapcount a, b;

	tree("order", 65530);
	CU_ASSERT_EQUAL_FATAL(hold(&a, 70000), 0);
	CU_ASSERT_EQUAL(value(), 70000);
	CU_ASSERT(a.raised);
	CU_ASSERT_EQUAL_FATAL(hold(&b, 80000), 0);
	CU_ASSERT_EQUAL(value(), 80000);
	CU_ASSERT_EQUAL(release(&a), 0);
	CU_ASSERT_EQUAL(value(), 80000); /* not 65530 under B */
	CU_ASSERT_EQUAL(release(&b), 0);
	CU_ASSERT_EQUAL(value(), 65530); /* not 70000, A's raise, for good */
}

/* B needs no raise but read A's raised value: A's end must not take it away. */
SP_TEST(holder_without_raise_keeps_the_raise)
{
	struct real_mapcount a, b;

	tree("plain", 65530);
	CU_ASSERT_EQUAL_FATAL(hold(&a, 70000), 0);
	CU_ASSERT_EQUAL_FATAL(hold(&b, 0), 0);
	CU_ASSERT_EQUAL(b.limit, 70000);
	CU_ASSERT(!b.raised);
	CU_ASSERT_EQUAL(release(&a), 0);
	CU_ASSERT_EQUAL(value(), 70000);
	CU_ASSERT_EQUAL(release(&b), 0);
	CU_ASSERT_EQUAL(value(), 65530);
	CU_ASSERT_EQUAL(release(&b), 0); /* a second release does nothing */
	CU_ASSERT_EQUAL(value(), 65530);
}

/* Ends in the order they started, each raising further; the signal path ends the last. */
SP_TEST(last_to_end_restores_from_signal_path)
{
	struct real_mapcount a, b;

	tree("sig", 65530);
	CU_ASSERT_EQUAL_FATAL(hold(&a, 70000), 0);
	CU_ASSERT_EQUAL_FATAL(hold(&b, 90000), 0);
	CU_ASSERT_EQUAL(real_mapcount_release_signal_safe(&b), 0);
	CU_ASSERT_EQUAL(value(), 90000);
	CU_ASSERT_EQUAL(real_mapcount_release_signal_safe(&a), 0);
	CU_ASSERT_EQUAL(value(), 65530);
	CU_ASSERT_EQUAL(release(&a), 0); /* the main path after the handler: nothing left to do */
	CU_ASSERT_EQUAL(value(), 65530);
}

/* Never lowered; a value above the need is left as found. */
SP_TEST(raise_never_lowers)
{
	struct real_mapcount a;

	tree("high", 200000);
	CU_ASSERT_EQUAL_FATAL(hold(&a, 70000), 0);
	CU_ASSERT(!a.raised);
	CU_ASSERT_EQUAL(a.limit, 200000);
	CU_ASSERT_EQUAL(value(), 200000);
	CU_ASSERT_EQUAL(release(&a), 0);
	CU_ASSERT_EQUAL(value(), 200000);
}

/* Someone else's change while raised is not overwritten by the last user. */
SP_TEST(outside_change_is_left_alone)
{
	struct real_mapcount a;

	tree("outside", 65530);
	CU_ASSERT_EQUAL_FATAL(hold(&a, 70000), 0);
	set_value(500000); /* an operator's sysctl -w */
	CU_ASSERT_EQUAL(release(&a), 0);
	CU_ASSERT_EQUAL(value(), 500000);
}

/* A user in a child that holds, raises to need and dies by SIGKILL: true when it did. */
static bool crashed_user(uint64_t need)
{
	pid_t pid = fork();
	int st;

	if (pid == 0) {
		struct real_mapcount c;

		if (hold(&c, need) == 0)
			raise(SIGKILL);
		_exit(1);
	}
	return pid > 0 && waitpid(pid, &st, 0) == pid && WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL;
}

/* A user killed (SIGKILL) leaves at worst its raise; the next one adopts the record and puts it back. */
SP_TEST(crash_leaves_raise_next_user_restores)
{
	struct real_mapcount a, b;

	tree("crash", 65530);
	CU_ASSERT_EQUAL_FATAL(hold(&a, 70000), 0);
	CU_ASSERT(crashed_user(90000));
	CU_ASSERT_EQUAL(value(), 90000);
	CU_ASSERT_EQUAL(release(&a), 0); /* last alive: the crashed user's lock is gone with it */
	CU_ASSERT_EQUAL(value(), 65530);

	/* The crashed user alone: the raise stays; the next user alone adopts it. */
	CU_ASSERT(crashed_user(90000));
	CU_ASSERT_EQUAL(value(), 90000);
	CU_ASSERT_EQUAL_FATAL(hold(&b, 0), 0);
	CU_ASSERT_EQUAL(release(&b), 0);
	CU_ASSERT_EQUAL(value(), 65530);

	/* Crashed, then changed by someone else: the record is dropped, the value left. */
	CU_ASSERT(crashed_user(90000));
	set_value(120000);
	CU_ASSERT_EQUAL_FATAL(hold(&b, 0), 0);
	CU_ASSERT_EQUAL(release(&b), 0);
	CU_ASSERT_EQUAL(value(), 120000);
}

/*
 * Without the right to write: a one-line error and nothing changed.  Run as
 * root, the child is another user (nobody), who may not open root's run
 * directory (0700), so its hold is refused in one line; run as a user, the
 * sysctl is made read-only and the hold is kept.
 */
SP_TEST(unprivileged_user_gets_one_line)
{
	struct real_mapcount a;
	pid_t pid;
	int st;

	tree("priv", 65530);
	CU_ASSERT_EQUAL_FATAL(hold(&a, 0), 0); /* makes the run directory and its file */
	CU_ASSERT_EQUAL(release(&a), 0);
	if (geteuid() != 0)
		chmod(g_file, 0444);
	else
		chmod(sp_test_tmpdir(), 0755);
	pid = fork();
	CU_ASSERT_FATAL(pid >= 0);
	if (pid == 0) {
		struct real_mapcount c;
		struct sp_err err = { 0 };
		bool other = geteuid() == 0;
		int ok, rc;

		if (other && (setgid(65534) < 0 || setuid(65534) < 0))
			_exit(3);
		rc = real_mapcount_hold(&c, g_proc, g_run, &err);
		printf("child hold: %s\n", rc < 0 ? err.msg : "held");
		if (other)
			_exit(rc == SP_EPERM && strstr(err.msg, g_run) && !strchr(err.msg, '\n') ? 0 : 4);
		if (rc < 0)
			_exit(4);
		ok = real_mapcount_raise(&c, 70000, &err) == SP_EPERM && strstr(err.msg, "cannot raise") &&
		     !strchr(err.msg, '\n') && c.limit == 65530;
		printf("child raise: %s\n", err.msg);
		_exit(ok && real_mapcount_release(&c, NULL) == 0 ? 0 : 5);
	}
	CU_ASSERT_EQUAL(waitpid(pid, &st, 0), pid);
	CU_ASSERT(WIFEXITED(st));
	CU_ASSERT_EQUAL(WEXITSTATUS(st), 0);
	CU_ASSERT_EQUAL(value(), 65530);
}

/*
 * No other user can take a lock in the run directory: before, anyone could
 * open /run/samepage (0755) and its file (0644) and hold flock(LOCK_EX) on
 * either, which stalled every root hold - `sim real replay`, any library
 * user's real_live_new() - for as long as it liked.  A directory left 0755
 * (made before) is closed to others by the next hold; one owned by another
 * user is refused in one line.
 */
SP_TEST(other_users_cannot_stall_the_holds)
{
	struct real_mapcount a;
	struct sp_err err = { 0 };
	pid_t pid;
	int st;

	if (geteuid() != 0)
		SP_SKIP("needs root to be another user");
	tree("stall", 65530);
	CU_ASSERT_EQUAL_FATAL(mkdir(g_run, 0755), 0); /* as made before */
	CU_ASSERT_EQUAL_FATAL(hold(&a, 70000), 0);
	CU_ASSERT_EQUAL(release(&a), 0);
	chmod(sp_test_tmpdir(), 0755);
	pid = fork();
	CU_ASSERT_FATAL(pid >= 0);
	if (pid == 0) {
		char f[400];
		int d, fd, locked = 0;

		if (setgid(65534) < 0 || setuid(65534) < 0)
			_exit(3);
		snprintf(f, sizeof(f), "%s/max_map_count", g_run);
		d = open(g_run, O_RDONLY | O_DIRECTORY);
		fd = open(f, O_RDONLY);
		locked += d >= 0 && flock(d, LOCK_EX | LOCK_NB) == 0;
		locked += fd >= 0 && flock(fd, LOCK_EX | LOCK_NB) == 0;
		printf("another user: run directory %s, its file %s, %d locked\n", d >= 0 ? "opened" : "refused",
		       fd >= 0 ? "opened" : "refused", locked);
		_exit(locked ? 1 : 0);
	}
	CU_ASSERT_EQUAL(waitpid(pid, &st, 0), pid);
	CU_ASSERT(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	/* A run directory that is another user's: refused in one line, nothing held or changed. */
	CU_ASSERT_EQUAL_FATAL(chown(g_run, 65534, 65534), 0);
	CU_ASSERT(real_mapcount_hold(&a, g_proc, g_run, &err) == SP_EPERM);
	printf("%s\n", err.msg);
	CU_ASSERT(strstr(err.msg, g_run) != NULL && !strchr(err.msg, '\n'));
	CU_ASSERT_EQUAL(real_mapcount_release(&a, NULL), 0);
	CU_ASSERT_EQUAL(value(), 65530);
}

/*
 * A raise over a value someone else set while a raise was outstanding puts
 * that value back at the end, not the original of before: before, B's raise
 * kept A's record and the last user wrote 65530 over the operator's 75000.
 */
SP_TEST(raise_after_outside_change_restores_that_change)
{
	struct real_mapcount a, b;

	tree("reraise", 65530);
	CU_ASSERT_EQUAL_FATAL(hold(&a, 70000), 0);
	set_value(75000); /* an operator's sysctl -w while A runs */
	CU_ASSERT_EQUAL_FATAL(hold(&b, 90000), 0);
	CU_ASSERT_EQUAL(value(), 90000);
	CU_ASSERT_EQUAL(release(&a), 0);
	CU_ASSERT_EQUAL(value(), 90000);
	CU_ASSERT_EQUAL(release(&b), 0);
	CU_ASSERT_EQUAL(value(), 75000);
}

/*
 * A child forked after the hold that releases it (an atexit() cleanup after
 * fork()) leaves the parent's hold alone: before, the child's release
 * unlocked the open file description it shares with the parent, found
 * itself the last user and put 65530 back under the parent's raise.
 */
SP_TEST(forked_child_release_leaves_the_parents_hold)
{
	struct real_mapcount a, b;
	pid_t pid;
	int st;

	tree("fork", 65530);
	CU_ASSERT_EQUAL_FATAL(hold(&a, 70000), 0);
	pid = fork();
	CU_ASSERT_FATAL(pid >= 0);
	if (pid == 0)
		_exit(release(&a) == 0 ? 0 : 1);
	CU_ASSERT_EQUAL(waitpid(pid, &st, 0), pid);
	CU_ASSERT(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	CU_ASSERT_EQUAL(value(), 70000); /* not lowered under the parent */
	CU_ASSERT_FATAL(dir_free()); /* else the next hold waits for ever */
	CU_ASSERT_EQUAL_FATAL(hold(&b, 0), 0);
	CU_ASSERT_EQUAL(release(&a), 0);
	CU_ASSERT_EQUAL(value(), 70000); /* the parent's hold counted: b still holds */
	CU_ASSERT_EQUAL(release(&b), 0);
	CU_ASSERT_EQUAL(value(), 65530);
}

/*
 * The parent's release with a forked child still alive (a worker that kept
 * the descriptors): the directory lock is let go all the same.  Before,
 * release relied on close() to drop it, which a child's copy of the open
 * file description kept: every other hold, raise and release on the host
 * waited until the child exited.
 */
SP_TEST(release_beside_a_forked_child_lets_the_directory_go)
{
	struct real_mapcount a;
	pid_t pid;
	int st;

	tree("child", 65530);
	CU_ASSERT_EQUAL_FATAL(hold(&a, 70000), 0);
	pid = fork();
	CU_ASSERT_FATAL(pid >= 0);
	if (pid == 0) {
		pause(); /* a worker: keeps the copies until killed */
		_exit(0);
	}
	CU_ASSERT_EQUAL(release(&a), 0);
	CU_ASSERT_EQUAL(value(), 65530);
	CU_ASSERT(dir_free());
	kill(pid, SIGKILL);
	CU_ASSERT_EQUAL(waitpid(pid, &st, 0), pid);
}

/* No run directory can be made: a one-line error naming it, nothing held. */
SP_TEST(missing_run_directory_is_one_line)
{
	struct real_mapcount a;
	struct sp_err err = { 0 };
	char bad[300];

	tree("norun", 65530);
	snprintf(bad, sizeof(bad), "%s/sys/vm/max_map_count/run", g_proc); /* under a regular file */
	CU_ASSERT(real_mapcount_hold(&a, g_proc, bad, &err) < 0);
	printf("%s\n", err.msg);
	CU_ASSERT(strstr(err.msg, bad) != NULL);
	CU_ASSERT_EQUAL(real_mapcount_release(&a, NULL), 0);
	CU_ASSERT_EQUAL(value(), 65530);
}
