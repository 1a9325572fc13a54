/*
 * fuzz_common.h - what the libFuzzer harnesses share: a private scratch
 * directory and the input written to a file in it (the readers under test
 * take paths, as the commands give them).  Test code: the scratch path is
 * the one piece of process state, set once.
 */
#ifndef SP_FUZZ_COMMON_H
#define SP_FUZZ_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char fuzz_scratch[128];

/* The scratch directory, removed at exit; made on first use. */
static void fuzz_cleanup(void)
{
	char cmd[160];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", fuzz_scratch);
	if (system(cmd) != 0)
		fprintf(stderr, "cannot remove %s\n", fuzz_scratch);
}

static inline const char *fuzz_path(const char *name, char *buf, size_t len)
{
	if (!fuzz_scratch[0]) {
		snprintf(fuzz_scratch, sizeof(fuzz_scratch), "/tmp/sp-fuzz-%ld", (long)getpid());
		mkdir(fuzz_scratch, 0700);
		atexit(fuzz_cleanup);
	}
	snprintf(buf, len, "%s/%s", fuzz_scratch, name);
	return buf;
}

/* Writes data to the scratch file name; its path in buf. */
static inline const char *fuzz_spill(const char *name, const uint8_t *data, size_t size, char *buf,
				     size_t len)
{
	FILE *f = fopen(fuzz_path(name, buf, len), "wb");

	if (!f)
		abort();
	if (size && fwrite(data, 1, size, f) != size)
		abort();
	fclose(f);
	return buf;
}

#endif
