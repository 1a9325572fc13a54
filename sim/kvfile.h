/*
 * kvfile.h - KEY=VALUE configuration files, as /etc/ksmtuned.conf,
 * samepaged.conf and the plans `sim plan` writes: read as data, never
 * executed as shell.
 *
 * Syntax, one setting per line:
 *   # a comment                 blank lines and '#' lines are skipped
 *   KEY=value                   KEY: [A-Za-z_][A-Za-z0-9_]*, no blank around '='
 *   KEY='literal text'          single quotes: taken as is
 *   KEY="text \" \\ \$"         double quotes: backslash escapes \" \\ \$ \`
 *   KEY=value   # comment       a '#' after a blank ends an unquoted value
 *   export KEY=value            a leading "export " is accepted and ignored
 * A '$' or '`' outside single quotes (a shell expansion) is an error, since
 * nothing is expanded; so is anything after a closing quote but a comment.
 * A key may appear several times (STEP lines of a plan): all are kept, in
 * file order; sim_kv_get() returns the last one, as the shell would.
 */
#ifndef SP_KVFILE_H
#define SP_KVFILE_H

#include <stddef.h>

#include "sp_error.h"

struct sim_kv {
	char *key;
	char *value;
	unsigned line; /* 1-based line number in the file */
};

struct sim_kv_file {
	char *path;
	struct sim_kv *kv;
	size_t n;
};

/*
 * Reads path into out (caller storage; release with sim_kv_release()).
 * SP_EIO when the file cannot be read; SP_ECORRUPT with "PATH:LINE: what"
 * for a line that is not KEY=VALUE.
 */
int sim_kv_load(struct sim_kv_file *out, const char *path, struct sp_err *err);
/* The same over text in memory; name is used in messages. */
int sim_kv_parse(struct sim_kv_file *out, const char *name, const char *text, struct sp_err *err);
void sim_kv_release(struct sim_kv_file *f);
/* The last setting of key, or NULL. */
const struct sim_kv *sim_kv_get(const struct sim_kv_file *f, const char *key);

#endif
