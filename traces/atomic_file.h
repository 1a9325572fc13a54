/*
 * atomic_file.h - output files that appear complete or not at all, and the
 * checks every command runs on its output paths before it starts work.
 *
 * A regular output (new, or an existing regular file) is written to an
 * unnamed temporary file in the target's directory (O_TMPFILE) and linked
 * into place by atomic_file_commit(), after a flush and fsync: a reader
 * never sees a half-written PATH, and a failed, aborted or interrupted
 * command (SIGINT, SIGTERM, SIGKILL) leaves nothing behind, since the
 * kernel frees an unnamed file with its last descriptor.  Where the file
 * system has no O_TMPFILE, PATH.tmp-XXXXXX is used and removed on failure.
 *
 * Special files are never replaced: a character device or FIFO (/dev/null,
 * /dev/stdout, a pipe) is written through, in place; a symbolic link is
 * followed and its target replaced, the link kept.  Directories, block
 * devices and sockets are refused.  New files get the mode asked for less
 * the process's umask.  Errors name the user's path, never a temporary one.
 */
#ifndef SP_ATOMIC_FILE_H
#define SP_ATOMIC_FILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "sp_error.h"

struct atomic_file {
	char *path;    /* as the user gave it: for messages */
	char *target;  /* what is replaced: path, or a symbolic link's target */
	char *tmp;     /* named temporary file (no O_TMPFILE), or NULL */
	FILE *f;
	bool direct;   /* a device or FIFO written in place */
};

/* mode: permission bits of a new file, before the umask (0644; 0600 for private data). */
int atomic_file_open(struct atomic_file *af, const char *path, unsigned mode, struct sp_err *err);
int atomic_file_commit(struct atomic_file *af, struct sp_err *err);
void atomic_file_abort(struct atomic_file *af);

/*
 * The mode for an output derived from the file at input: mode, with the
 * group and other bits the input does not grant removed (a CSV exported
 * from a 0600 trace is 0600).  mode itself if input cannot be read.
 */
unsigned atomic_file_mode_from(const char *input, unsigned mode);

/*
 * Checks, before any work, that each of outputs[0..nout) can be written:
 * not empty, not a directory, block device or socket, its directory
 * present and writable; that none is the same file as any of
 * inputs[0..nin) (same device and inode, through links of any kind); and
 * that no two outputs name the same file.  NULL entries are skipped.
 * SP_EINVAL (a usage error) or SP_EIO/SP_EPERM, naming the path.
 */
int atomic_file_check(const char *const *outputs, size_t nout, const char *const *inputs,
		      size_t nin, struct sp_err *err);

/*
 * Checks that dir can serve as a report directory (it or its first missing
 * ancestor can be created) and holds none of inputs[0..nin) among the
 * names in files[0..nfiles) it would write.
 */
int atomic_file_check_dir(const char *dir, const char *const *files, size_t nfiles,
			  const char *const *inputs, size_t nin, struct sp_err *err);

#endif
