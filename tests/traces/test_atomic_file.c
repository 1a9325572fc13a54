/*
 * test_atomic_file.c - the output-safety API (traces/atomic_file.h): special
 * files written through and never replaced, symbolic links kept, outputs
 * that are inputs refused before any work, the umask respected, private
 * inputs giving private outputs, nothing left behind on failure.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "atomic_file.h"
#include "harness.h"

static void put(const char *path, const char *text)
{
	struct atomic_file af;
	struct sp_err err = { 0 };

	CU_ASSERT_EQUAL_FATAL(atomic_file_open(&af, path, 0644, &err), 0);
	fputs(text, af.f);
	CU_ASSERT_EQUAL(atomic_file_commit(&af, &err), 0);
}

static void slurp(const char *path, char *buf, size_t len)
{
	FILE *f = fopen(path, "r");
	size_t n;

	CU_ASSERT_PTR_NOT_NULL_FATAL(f);
	n = fread(buf, 1, len - 1, f);
	buf[n] = '\0';
	fclose(f);
}

/* Files in the scratch directory whose name contains ".tmp-". */
static int leftovers(void)
{
	DIR *d = opendir(sp_test_tmpdir());
	struct dirent *de;
	int n = 0;

	while (d && (de = readdir(d)))
		n += strstr(de->d_name, ".tmp-") != NULL;
	if (d)
		closedir(d);
	return n;
}

SP_TEST(dev_null_is_written_through_not_replaced)
{
	struct stat before, after;
	struct atomic_file af;
	struct sp_err err = { 0 };

	CU_ASSERT_EQUAL_FATAL(stat("/dev/null", &before), 0);
	CU_ASSERT_EQUAL_FATAL(atomic_file_open(&af, "/dev/null", 0644, &err), 0);
	fputs("time_ms,x\n0,1\n", af.f);
	CU_ASSERT_EQUAL(atomic_file_commit(&af, &err), 0);
	CU_ASSERT_EQUAL_FATAL(stat("/dev/null", &after), 0);
	CU_ASSERT(S_ISCHR(after.st_mode));
	CU_ASSERT_EQUAL(after.st_ino, before.st_ino);
	CU_ASSERT_EQUAL(after.st_rdev, before.st_rdev);
	/* the pre-work check accepts it too */
	{
		const char *outs[] = { "/dev/null" };

		CU_ASSERT_EQUAL(atomic_file_check(outs, 1, NULL, 0, &err), 0);
	}
}

SP_TEST(fifo_is_written_through)
{
	char fifo[512], buf[64] = "";
	struct stat st;
	pid_t pid;
	int fd, status;

	sp_test_path(fifo, sizeof(fifo), "out.fifo");
	CU_ASSERT_EQUAL_FATAL(mkfifo(fifo, 0600), 0);
	pid = fork();
	CU_ASSERT_FATAL(pid >= 0);
	if (pid == 0) {
		struct atomic_file af;
		struct sp_err err = { 0 };

		if (atomic_file_open(&af, fifo, 0644, &err) != 0)
			_exit(1);
		fputs("through the pipe\n", af.f);
		_exit(atomic_file_commit(&af, &err) == 0 ? 0 : 2);
	}
	fd = open(fifo, O_RDONLY);
	CU_ASSERT_FATAL(fd >= 0);
	CU_ASSERT(read(fd, buf, sizeof(buf) - 1) > 0);
	close(fd);
	waitpid(pid, &status, 0);
	CU_ASSERT(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	CU_ASSERT_STRING_EQUAL(buf, "through the pipe\n");
	CU_ASSERT_EQUAL(lstat(fifo, &st), 0);
	CU_ASSERT(S_ISFIFO(st.st_mode));
}

SP_TEST(symlink_kept_and_target_replaced)
{
	char target[512], link[512], buf[64];
	struct stat st;

	sp_test_path(target, sizeof(target), "target.csv");
	sp_test_path(link, sizeof(link), "link.csv");
	put(target, "old\n");
	CU_ASSERT_EQUAL_FATAL(symlink(target, link), 0);
	put(link, "new\n");
	CU_ASSERT_EQUAL(lstat(link, &st), 0);
	CU_ASSERT(S_ISLNK(st.st_mode));
	slurp(target, buf, sizeof(buf));
	CU_ASSERT_STRING_EQUAL(buf, "new\n");
	CU_ASSERT_EQUAL(leftovers(), 0);
}

SP_TEST(dangling_symlink_directory_and_empty_refused)
{
	char link[512], dir[512];
	struct atomic_file af;
	struct sp_err err = { 0 };

	sp_test_path(link, sizeof(link), "dangling.csv");
	CU_ASSERT_EQUAL_FATAL(symlink("/nonexistent/x", link), 0);
	CU_ASSERT_EQUAL(atomic_file_open(&af, link, 0644, &err), SP_EINVAL);
	CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, link));
	sp_err_clear(&err);
	CU_ASSERT_EQUAL(atomic_file_open(&af, sp_test_tmpdir(), 0644, &err), SP_EINVAL);
	CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "directory"));
	sp_err_clear(&err);
	CU_ASSERT_EQUAL(atomic_file_open(&af, "", 0644, &err), SP_EINVAL);
	CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "empty"));
	/* and the same before any work */
	{
		const char *outs1[] = { "" }, *outs2[] = { sp_test_tmpdir() };

		sp_err_clear(&err);
		CU_ASSERT_EQUAL(atomic_file_check(outs1, 1, NULL, 0, &err), SP_EINVAL);
		sp_err_clear(&err);
		CU_ASSERT_EQUAL(atomic_file_check(outs2, 1, NULL, 0, &err), SP_EINVAL);
	}
	sp_test_path(dir, sizeof(dir), "no-such-dir/out.csv");
	sp_err_clear(&err);
	CU_ASSERT_EQUAL(atomic_file_open(&af, dir, 0644, &err), SP_EIO);
	CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, dir)); /* the user's path, not a temporary one */
	CU_ASSERT_PTR_NULL(strstr(err.msg, ".tmp-"));
}

SP_TEST(output_that_is_an_input_refused)
{
	char in[512], hard[512], sym[512], other[512];
	struct sp_err err = { 0 };
	const char *ins[] = { in };

	sp_test_path(in, sizeof(in), "v.sptrace");
	sp_test_path(hard, sizeof(hard), "hard.sptrace");
	sp_test_path(sym, sizeof(sym), "sym.sptrace");
	sp_test_path(other, sizeof(other), "other.csv");
	put(in, "input\n");
	CU_ASSERT_EQUAL_FATAL(link(in, hard), 0);
	CU_ASSERT_EQUAL_FATAL(symlink(in, sym), 0);
	{
		const char *outs[] = { in };

		CU_ASSERT_EQUAL(atomic_file_check(outs, 1, ins, 1, &err), SP_EINVAL);
		CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "input"));
	}
	{
		const char *outs[] = { hard };

		sp_err_clear(&err);
		CU_ASSERT_EQUAL(atomic_file_check(outs, 1, ins, 1, &err), SP_EINVAL);
	}
	{
		const char *outs[] = { sym };

		sp_err_clear(&err);
		CU_ASSERT_EQUAL(atomic_file_check(outs, 1, ins, 1, &err), SP_EINVAL);
	}
	{
		const char *outs[] = { other };

		sp_err_clear(&err);
		CU_ASSERT_EQUAL(atomic_file_check(outs, 1, ins, 1, &err), 0);
	}
	{
		/* --csv X --plot X, whether X exists or not, and spelled differently */
		char alias[600];
		const char *outs[] = { other, alias };

		snprintf(alias, sizeof(alias), "%s/./other.csv", sp_test_tmpdir());
		sp_err_clear(&err);
		CU_ASSERT_EQUAL(atomic_file_check(outs, 2, ins, 1, &err), SP_EINVAL);
		CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "same file"));
		put(other, "x\n");
		sp_err_clear(&err);
		CU_ASSERT_EQUAL(atomic_file_check(outs, 2, ins, 1, &err), SP_EINVAL);
	}
	{
		/* a report directory that would overwrite the input */
		char base[512];
		const char *files[] = { "summary.csv", "v.sptrace" };

		sp_err_clear(&err);
		CU_ASSERT_EQUAL(atomic_file_check_dir(sp_test_tmpdir(), files, 2, ins, 1, &err), SP_EINVAL);
		sp_err_clear(&err);
		CU_ASSERT_EQUAL(atomic_file_check_dir(sp_test_tmpdir(), files, 1, ins, 1, &err), 0);
		sp_test_path(base, sizeof(base), "new/deeper/report");
		sp_err_clear(&err);
		CU_ASSERT_EQUAL(atomic_file_check_dir(base, files, 2, ins, 1, &err), 0);
		sp_err_clear(&err);
		CU_ASSERT_EQUAL(atomic_file_check_dir(in, files, 1, ins, 1, &err), SP_EINVAL);
		CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "not a directory"));
		sp_err_clear(&err);
		CU_ASSERT_EQUAL(atomic_file_check_dir("", files, 1, ins, 1, &err), SP_EINVAL);
	}
}

SP_TEST(umask_respected_and_private_inputs_stay_private)
{
	char a[512], priv[512];
	struct stat st;
	mode_t old = umask(077);

	sp_test_path(a, sizeof(a), "umask.csv");
	put(a, "x\n");
	CU_ASSERT_EQUAL(stat(a, &st), 0);
	CU_ASSERT_EQUAL(st.st_mode & 0777, 0600);
	umask(022);
	unlink(a);
	put(a, "x\n");
	CU_ASSERT_EQUAL(stat(a, &st), 0);
	CU_ASSERT_EQUAL(st.st_mode & 0777, 0644);
	umask(old);
	sp_test_path(priv, sizeof(priv), "private.sptrace");
	put(priv, "secret\n");
	CU_ASSERT_EQUAL(chmod(priv, 0600), 0);
	CU_ASSERT_EQUAL(atomic_file_mode_from(priv, 0644), 0600);
	CU_ASSERT_EQUAL(chmod(priv, 0640), 0);
	CU_ASSERT_EQUAL(atomic_file_mode_from(priv, 0644), 0640);
	CU_ASSERT_EQUAL(atomic_file_mode_from("/nonexistent", 0644), 0644);
}

SP_TEST(abort_and_interruption_leave_nothing)
{
	char a[512];
	struct atomic_file af;
	struct sp_err err = { 0 };
	pid_t pid;
	int status;

	sp_test_path(a, sizeof(a), "aborted.csv");
	CU_ASSERT_EQUAL_FATAL(atomic_file_open(&af, a, 0644, &err), 0);
	fputs("half\n", af.f);
	atomic_file_abort(&af);
	CU_ASSERT_EQUAL(access(a, F_OK), -1);
	CU_ASSERT_EQUAL(leftovers(), 0);
	/* killed while writing: no file, no temporary */
	pid = fork();
	CU_ASSERT_FATAL(pid >= 0);
	if (pid == 0) {
		if (atomic_file_open(&af, a, 0644, &err) != 0)
			_exit(1);
		for (int i = 0; i < 1000; i++)
			fputs("half written\n", af.f);
		fflush(af.f);
		raise(SIGTERM);
		_exit(3);
	}
	waitpid(pid, &status, 0);
	CU_ASSERT(WIFSIGNALED(status));
	CU_ASSERT_EQUAL(access(a, F_OK), -1);
	CU_ASSERT_EQUAL(leftovers(), 0);
}
