/*
 * import_elf.h - imports memory dumps into a samepage trace.
 *
 * Format "qemu-elf": the ELF64 core that QEMU's `dump-guest-memory` (and
 * `virsh dump --memory-only`) writes.  Each PT_LOAD segment holds a block
 * of guest RAM; its p_paddr is the guest-physical address, so page number =
 * guest-physical address / 4096 (as in a trace recorded with --qemu).  Every
 * page in a segment is present (zero-filled ones flagged ZERO); guest-physical
 * pages outside every segment are absent.  Only whole pages are taken: the
 * partial first or last page of a segment that is not page-aligned is left
 * out.  Dumps carry no huge-page or NUMA information (flags 0, node 0).
 */
#ifndef SP_IMPORT_ELF_H
#define SP_IMPORT_ELF_H

#include <stdbool.h>
#include <stdint.h>

#include "sp_error.h"

#define TRACE_ELF_PAGE 4096
#define TRACE_ELF_MAX_PHDRS (1u << 20)

struct trace_import_input {
	const char *path;
	const char *guest; /* guest name; dumps of one guest become its snapshots in order */
};

struct trace_import_opts {
	uint64_t interval_ms; /* time between snapshots (snapshot k at k * interval_ms) */
	bool unkeyed;         /* plain XXH3-128 instead of keyed with a random secret */
	unsigned mode;        /* file mode of the trace, 0600 */
	/* Called as dumps are read: bytes done out of total. */
	void (*progress)(void *arg, uint64_t done, uint64_t total);
	void *arg;
};

/* One validated dump: its PT_LOAD segments sorted by guest-physical address. */
struct trace_elf_segment {
	uint64_t paddr, offset, filesz, memsz;
};

struct trace_elf {
	char *path;
	int fd;
	uint64_t size;          /* file bytes */
	uint32_t nseg;
	struct trace_elf_segment *seg;
	uint64_t pages;         /* highest guest page number covered + 1 */
	uint64_t data_bytes;    /* sum of the segments' file sizes */
};

/*
 * Opens and validates a dump: magic, ELF64 little-endian core, program
 * headers inside the file, a sane count, segments inside the file and not
 * overlapping.  Errors name the file and the byte offset at fault:
 * SP_EMAGIC, SP_ETRUNC, SP_ECORRUPT, SP_ELIMIT (or SP_EIO).
 */
int trace_elf_open(struct trace_elf *out, const char *path, struct sp_err *err);
void trace_elf_close(struct trace_elf *e);

/*
 * Writes the trace: guests in order of first appearance among the inputs;
 * the k-th dump of each guest is its snapshot k (a guest with fewer dumps
 * keeps its last state).  Every dump is validated before anything is
 * written; on any error no file appears.
 */
int trace_import_qemu_elf(const char *out_path, const struct trace_import_input *in, uint32_t n,
			  const struct trace_import_opts *o, struct sp_err *err);

#endif
