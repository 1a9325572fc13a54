/*
 * atomic_file.c - implements the write-then-rename output file.
 */
#define _GNU_SOURCE
#include "atomic_file.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int atomic_file_open(struct atomic_file *af, const char *path, unsigned mode, struct sp_err *err)
{
	int fd;

	memset(af, 0, sizeof(*af));
	af->path = strdup(path);
	af->tmp = malloc(strlen(path) + 16);
	if (!af->path || !af->tmp) {
		atomic_file_abort(af);
		return sp_err_set(err, SP_ENOMEM, "%s: out of memory", path);
	}
	sprintf(af->tmp, "%s.tmp-XXXXXX", path);
	fd = mkstemp(af->tmp);
	if (fd < 0) {
		int rc = sp_err_set(err, SP_EIO, "%s: cannot create a file there: %s", path,
				    strerror(errno));

		free(af->tmp);
		af->tmp = NULL;
		atomic_file_abort(af);
		return rc;
	}
	if (fchmod(fd, (mode_t)mode) != 0 || !(af->f = fdopen(fd, "wb"))) {
		int rc = sp_err_set(err, SP_EIO, "%s: %s", path, strerror(errno));

		close(fd);
		atomic_file_abort(af);
		return rc;
	}
	setvbuf(af->f, NULL, _IOFBF, 1 << 20);
	return 0;
}

int atomic_file_commit(struct atomic_file *af, struct sp_err *err)
{
	int rc = 0;

	if (fflush(af->f) != 0 || fsync(fileno(af->f)) != 0 || ferror(af->f))
		rc = sp_err_set(err, SP_EIO, "%s: write failed: %s", af->path, strerror(errno));
	if (fclose(af->f) != 0 && rc == 0)
		rc = sp_err_set(err, SP_EIO, "%s: close failed: %s", af->path, strerror(errno));
	af->f = NULL;
	if (rc == 0 && rename(af->tmp, af->path) != 0)
		rc = sp_err_set(err, SP_EIO, "%s: rename into place failed: %s", af->path,
				strerror(errno));
	if (rc == 0) {
		free(af->tmp);
		af->tmp = NULL;
	}
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
	free(af->path);
	memset(af, 0, sizeof(*af));
}
