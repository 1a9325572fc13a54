/*
 * atomic_file.c - implements the output files and output checks of
 * atomic_file.h.
 *
 * Invariants: af->f is open from a successful atomic_file_open() until
 * commit or abort; nothing but af->tmp (the O_TMPFILE fallback) ever exists
 * under a temporary name for longer than the link-and-rename of commit.
 */
#define _GNU_SOURCE
#include "atomic_file.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sp_util.h"

/* dirname() of a copy of path. */
static char *dir_of(const char *path)
{
	char *c = strdup(path), *d;

	if (!c)
		return NULL;
	d = strdup(dirname(c));
	free(c);
	return d;
}

/* A fresh name target.tmp-XXXXXX (random, not checked for existence). */
static char *tmp_name(const char *target, uint64_t salt)
{
	uint64_t s = sp_mono_ns() ^ ((uint64_t)getpid() << 32) ^ salt;
	char *name;

	if (asprintf(&name, "%s.tmp-%06llx", target,
		     (unsigned long long)(sp_splitmix64(&s) & 0xffffff)) < 0)
		return NULL;
	return name;
}

static int fail(struct atomic_file *af, struct sp_err *err, int code, const char *path,
		const char *what)
{
	int rc = sp_err_set(err, code, "%s: %s", path, what);

	atomic_file_abort(af);
	return rc;
}

int atomic_file_open(struct atomic_file *af, const char *path, unsigned mode, struct sp_err *err)
{
	struct stat st;
	char *dir = NULL;
	int fd = -1;

	memset(af, 0, sizeof(*af));
	if (!path || !*path)
		return sp_err_set(err, SP_EINVAL, "an output file name is empty");
	af->path = strdup(path);
	if (!af->path)
		return fail(af, err, SP_ENOMEM, path, "out of memory");
	if (stat(path, &st) == 0) {
		if (S_ISDIR(st.st_mode))
			return fail(af, err, SP_EINVAL, path, "is a directory, not a file");
		if (S_ISCHR(st.st_mode) || S_ISFIFO(st.st_mode)) {
			/* A device or a pipe: write through it, never replace it. */
			fd = open(path, O_WRONLY | O_NOCTTY | O_CLOEXEC);
			if (fd < 0)
				return fail(af, err, errno == EACCES ? SP_EPERM : SP_EIO, path, strerror(errno));
			af->direct = true;
			af->f = fdopen(fd, "wb");
			if (!af->f) {
				close(fd);
				return fail(af, err, SP_ENOMEM, path, "out of memory");
			}
			return 0;
		}
		if (!S_ISREG(st.st_mode))
			return fail(af, err, SP_EINVAL, path,
				    "is a block device or socket: refusing to write to it");
		/* A symbolic link keeps pointing where it did: its target is replaced. */
		af->target = realpath(path, NULL);
	} else if (errno != ENOENT) {
		return fail(af, err, errno == EACCES ? SP_EPERM : SP_EIO, path, strerror(errno));
	} else {
		struct stat lst;

		if (lstat(path, &lst) == 0 && S_ISLNK(lst.st_mode))
			return fail(af, err, SP_EINVAL, path,
				    "is a symbolic link to a missing file: refusing to follow it");
		af->target = strdup(path);
	}
	if (!af->target)
		return fail(af, err, SP_EIO, path, strerror(errno));
	dir = dir_of(af->target);
	if (!dir)
		return fail(af, err, SP_ENOMEM, path, "out of memory");
	/* An unnamed file: nothing to clean up however the process ends. */
	fd = open(dir, O_TMPFILE | O_WRONLY | O_CLOEXEC, (mode_t)mode);
	if (fd < 0 && (errno == EOPNOTSUPP || errno == EISDIR || errno == EINVAL)) {
		for (int tries = 0; fd < 0 && tries < 100; tries++) {
			free(af->tmp);
			af->tmp = tmp_name(af->target, (uint64_t)(uintptr_t)af + (uint64_t)tries);
			if (!af->tmp)
				break;
			fd = open(af->tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, (mode_t)mode);
			if (fd < 0 && errno != EEXIST)
				break;
		}
		if (fd < 0) {
			free(af->tmp);
			af->tmp = NULL;
		}
	}
	free(dir);
	if (fd < 0)
		return fail(af, err, errno == EACCES ? SP_EPERM : SP_EIO, path,
			    errno == ENOENT ? "cannot create a file there: its directory does not exist"
					   : strerror(errno));
	af->f = fdopen(fd, "wb");
	if (!af->f) {
		close(fd);
		return fail(af, err, SP_ENOMEM, path, "out of memory");
	}
	setvbuf(af->f, NULL, _IOFBF, 1 << 20);
	return 0;
}

/* Gives the unnamed file af->f the name target (replacing it). */
static int link_into_place(struct atomic_file *af, struct sp_err *err)
{
	char proc[64];

	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fileno(af->f));
	for (int tries = 0; tries < 100; tries++) {
		char *tmp = tmp_name(af->target, (uint64_t)(uintptr_t)af + (uint64_t)tries);
		int rc;

		if (!tmp)
			return sp_err_set(err, SP_ENOMEM, "%s: out of memory", af->path);
		rc = linkat(AT_FDCWD, proc, AT_FDCWD, tmp, AT_SYMLINK_FOLLOW);
		if (rc != 0 && errno == ENOENT) /* no /proc: root may link the descriptor itself */
			rc = linkat(fileno(af->f), "", AT_FDCWD, tmp, AT_EMPTY_PATH);
		if (rc == 0) {
			rc = rename(tmp, af->target);
			if (rc != 0) {
				int e = errno;

				unlink(tmp);
				free(tmp);
				return sp_err_set(err, SP_EIO, "%s: cannot put it in place: %s", af->path,
						  strerror(e));
			}
			free(tmp);
			return 0;
		}
		free(tmp);
		if (errno != EEXIST)
			break;
	}
	return sp_err_set(err, SP_EIO, "%s: cannot put it in place: %s", af->path, strerror(errno));
}

int atomic_file_commit(struct atomic_file *af, struct sp_err *err)
{
	int rc = 0;

	if (fflush(af->f) != 0 || ferror(af->f))
		rc = sp_err_set(err, SP_EIO, "%s: write failed: %s", af->path, strerror(errno));
	else if (!af->direct && fsync(fileno(af->f)) != 0)
		rc = sp_err_set(err, SP_EIO, "%s: write failed: %s", af->path, strerror(errno));
	if (rc == 0 && !af->direct) {
		if (af->tmp) {
			if (rename(af->tmp, af->target) != 0)
				rc = sp_err_set(err, SP_EIO, "%s: cannot put it in place: %s", af->path,
						strerror(errno));
			else {
				free(af->tmp);
				af->tmp = NULL;
			}
		} else {
			rc = link_into_place(af, err);
		}
	}
	if (fclose(af->f) != 0 && rc == 0)
		rc = sp_err_set(err, SP_EIO, "%s: close failed: %s", af->path, strerror(errno));
	af->f = NULL;
	atomic_file_abort(af);
	return rc;
}

void atomic_file_abort(struct atomic_file *af)
{
	if (af->f)
		fclose(af->f);
	if (af->tmp)
		unlink(af->tmp);
	free(af->tmp);
	free(af->target);
	free(af->path);
	memset(af, 0, sizeof(*af));
}

unsigned atomic_file_mode_from(const char *input, unsigned mode)
{
	struct stat st;

	if (!input || stat(input, &st) != 0)
		return mode;
	return mode & ((unsigned)st.st_mode | 0700u);
}

/* ---- checks before the work ------------------------------------------- */

/* Where path would be written: its identity if it exists, else its canonical name. */
struct out_id {
	bool exists;
	dev_t dev;
	ino_t ino;
	char *canon; /* realpath(dir)/base when it does not exist */
};

static int out_id(const char *path, struct out_id *id, struct sp_err *err)
{
	struct stat st;

	memset(id, 0, sizeof(*id));
	if (!*path)
		return sp_err_set(err, SP_EINVAL, "an output file name is empty");
	if (stat(path, &st) == 0) {
		if (S_ISDIR(st.st_mode))
			return sp_err_set(err, SP_EINVAL, "%s: is a directory, not a file", path);
		if (S_ISBLK(st.st_mode) || S_ISSOCK(st.st_mode))
			return sp_err_set(err, SP_EINVAL, "%s: is a block device or socket: refusing to "
					  "write to it", path);
		if (S_ISREG(st.st_mode) && access(path, W_OK) != 0)
			return sp_err_set(err, errno == EACCES ? SP_EPERM : SP_EIO, "%s: %s", path,
					  strerror(errno));
		id->exists = true;
		id->dev = st.st_dev;
		id->ino = st.st_ino;
		if (S_ISREG(st.st_mode)) {
			/* replaced, not written: its directory must take a new file */
			char *real = realpath(path, NULL), *dir = real ? dir_of(real) : NULL;
			int ok = dir && access(dir, W_OK | X_OK) == 0;
			int e = errno;

			free(real);
			free(dir);
			if (!ok)
				return sp_err_set(err, e == EACCES ? SP_EPERM : SP_EIO,
						  "%s: cannot replace it: its directory is not writable", path);
		}
		return 0;
	}
	if (errno != ENOENT)
		return sp_err_set(err, errno == EACCES ? SP_EPERM : SP_EIO, "%s: %s", path,
				  strerror(errno));
	{
		struct stat lst;
		char *dir, *real, *copy, *base;

		if (lstat(path, &lst) == 0 && S_ISLNK(lst.st_mode))
			return sp_err_set(err, SP_EINVAL, "%s: is a symbolic link to a missing file: "
					  "refusing to follow it", path);
		dir = dir_of(path);
		if (!dir)
			return sp_err_set(err, SP_ENOMEM, "out of memory");
		real = realpath(dir, NULL);
		if (!real || stat(real, &st) != 0 || !S_ISDIR(st.st_mode)) {
			free(real);
			free(dir);
			return sp_err_set(err, SP_EIO, "%s: cannot create a file there: its directory does not exist", path);
		}
		if (access(real, W_OK | X_OK) != 0) {
			free(real);
			free(dir);
			return sp_err_set(err, SP_EPERM, "%s: its directory is not writable", path);
		}
		copy = strdup(path);
		base = copy ? basename(copy) : NULL;
		if (!base || asprintf(&id->canon, "%s/%s", real, base) < 0)
			id->canon = NULL;
		free(copy);
		free(real);
		free(dir);
		if (!id->canon)
			return sp_err_set(err, SP_ENOMEM, "out of memory");
	}
	return 0;
}

static bool same_out(const struct out_id *a, const struct out_id *b)
{
	if (a->exists != b->exists)
		return false;
	if (a->exists)
		return a->dev == b->dev && a->ino == b->ino;
	return strcmp(a->canon, b->canon) == 0;
}

int atomic_file_check(const char *const *outputs, size_t nout, const char *const *inputs,
		      size_t nin, struct sp_err *err)
{
	struct out_id *ids = calloc(nout ? nout : 1, sizeof(*ids));
	int rc = 0;

	if (!ids)
		return sp_err_set(err, SP_ENOMEM, "out of memory");
	for (size_t i = 0; rc == 0 && i < nout; i++) {
		if (!outputs[i])
			continue;
		rc = out_id(outputs[i], &ids[i], err);
		for (size_t j = 0; rc == 0 && j < nin; j++) {
			struct stat st;

			if (inputs[j] && ids[i].exists && stat(inputs[j], &st) == 0 &&
			    st.st_dev == ids[i].dev && st.st_ino == ids[i].ino)
				rc = sp_err_set(err, SP_EINVAL, "%s: is the input file %s: refusing to "
						"overwrite an input; write the output elsewhere",
						outputs[i], inputs[j]);
		}
		for (size_t j = 0; rc == 0 && j < i; j++) {
			if (outputs[j] && same_out(&ids[i], &ids[j]))
				rc = sp_err_set(err, SP_EINVAL, "%s and %s: two outputs name the same file",
						outputs[j], outputs[i]);
		}
	}
	for (size_t i = 0; i < nout; i++)
		free(ids[i].canon);
	free(ids);
	return rc;
}

int atomic_file_check_dir(const char *dir, const char *const *files, size_t nfiles,
			  const char *const *inputs, size_t nin, struct sp_err *err)
{
	struct stat st;
	char *probe;
	int rc = 0;

	if (!dir || !*dir)
		return sp_err_set(err, SP_EINVAL, "a report directory name is empty");
	if (stat(dir, &st) == 0) {
		if (!S_ISDIR(st.st_mode))
			return sp_err_set(err, SP_EINVAL, "%s: exists and is not a directory", dir);
		if (access(dir, W_OK | X_OK) != 0)
			return sp_err_set(err, SP_EPERM, "%s: the directory is not writable", dir);
		for (size_t i = 0; rc == 0 && i < nfiles; i++) {
			char *path;

			if (asprintf(&path, "%s/%s", dir, files[i]) < 0)
				return sp_err_set(err, SP_ENOMEM, "out of memory");
			rc = atomic_file_check((const char *const *)&path, 1, inputs, nin, err);
			free(path);
		}
		return rc;
	}
	if (errno != ENOENT)
		return sp_err_set(err, SP_EIO, "%s: %s", dir, strerror(errno));
	/* The first existing ancestor must be a writable directory. */
	probe = strdup(dir);
	if (!probe)
		return sp_err_set(err, SP_ENOMEM, "out of memory");
	for (;;) {
		char *up = dir_of(probe);

		free(probe);
		probe = up;
		if (!probe)
			return sp_err_set(err, SP_ENOMEM, "out of memory");
		if (stat(probe, &st) == 0) {
			if (!S_ISDIR(st.st_mode))
				rc = sp_err_set(err, SP_EINVAL, "%s: cannot create it: %s is not a directory",
						dir, probe);
			else if (access(probe, W_OK | X_OK) != 0)
				rc = sp_err_set(err, SP_EPERM, "%s: cannot create it: %s is not writable",
						dir, probe);
			break;
		}
		if (errno != ENOENT) {
			rc = sp_err_set(err, SP_EIO, "%s: %s: %s", dir, probe, strerror(errno));
			break;
		}
		if (!strcmp(probe, "/") || !strcmp(probe, "."))
			break;
	}
	free(probe);
	return rc;
}
