/*
 * atomic_file.h - an output file that appears complete or not at all.
 *
 * Everything is written to PATH.tmp-XXXXXX beside PATH; atomic_file_commit()
 * flushes, fsyncs and renames it over PATH; atomic_file_abort() (or any
 * failure) removes it.  A reader never sees a half-written PATH.
 */
#ifndef SP_ATOMIC_FILE_H
#define SP_ATOMIC_FILE_H

#include <stdio.h>

#include "sp_error.h"

struct atomic_file {
	char *path;
	char *tmp;
	FILE *f;
};

/* mode: permission bits of the final file. */
int atomic_file_open(struct atomic_file *af, const char *path, unsigned mode, struct sp_err *err);
int atomic_file_commit(struct atomic_file *af, struct sp_err *err);
void atomic_file_abort(struct atomic_file *af);

#endif
