/*
 * trace.h - the samepage trace (traces/FORMAT.md): its header, a streaming
 * reader and an all-or-nothing writer.
 *
 * The reader never holds more than one chunk (at most 16 MiB) of the file:
 * a replay of any length runs in memory proportional to one chunk.  Every
 * error names the file and byte offset (and record number) at fault.
 *
 * The writer writes FILE.tmp-XXXXXX beside FILE and renames it over FILE only
 * in trace_writer_commit(), after the END chunk is written and synced; an
 * interrupted or aborted write leaves FILE untouched.
 */
#ifndef SP_TRACE_H
#define SP_TRACE_H

#include <stdbool.h>
#include <stdint.h>

#include "fingerprint.h"
#include "sp_error.h"

#define TRACE_VERSION 2      /* what the writer writes unless asked for version 1 */
#define TRACE_VERSION_MIN 1  /* the oldest the reader reads */
#define TRACE_MAX_GUESTS 4096
#define TRACE_MAX_GUEST_PAGES (1ULL << 36)
#define TRACE_MAX_NODE 1023
#define TRACE_MAX_DESC 4096

/* Page record flags. */
#define TRACE_PRESENT 0x1u
#define TRACE_ZERO 0x2u
#define TRACE_HUGE 0x4u
#define TRACE_NODE 0x8u /* the record carries an explicit node */

/* Header flags. */
#define TRACE_F_KEYED 0x1u
#define TRACE_F_FUZZY 0x2u

enum trace_fp_algo { TRACE_FP_XXH3_128 = 1, TRACE_FP_SYNTHETIC = 2 };

struct trace_guest {
	char name[256];
	uint16_t node;
	uint32_t domain;
	uint64_t pages;
};

struct trace_header {
	uint32_t version;  /* read: the file's; written: 0 means TRACE_VERSION (1 writes no SUMM) */
	uint32_t page_size;
	uint8_t fp_algo;
	uint16_t flags;
	uint32_t nguests;
	struct trace_guest *guests; /* nguests entries */
	char desc[TRACE_MAX_DESC + 1];
};

struct trace_snapshot {
	uint32_t index;
	uint64_t time_ms;
	uint64_t records; /* page records that follow */
};

/*
 * The full new state of one page (see FORMAT.md: PAGE).  32 bytes (the fields
 * ordered so): `sim compare` holds one per page record of the trace.
 */
struct trace_record {
	uint32_t guest;
	uint8_t flags;   /* TRACE_PRESENT | TRACE_ZERO | TRACE_HUGE | TRACE_NODE */
	uint16_t node;   /* resolved: explicit, else the guest's node */
	uint64_t page;
	struct sp_fp fp; /* {0,0} when absent or zero */
};

/* Progress of a long trace operation: done of total (units of the caller's choosing). */
typedef void (*trace_progress_fn)(void *arg, uint64_t done, uint64_t total);

struct trace_reader;

int trace_reader_open(struct trace_reader **out, const char *path, struct sp_err *err);
const struct trace_header *trace_reader_header(const struct trace_reader *r);
/*
 * Next snapshot: 1 and *out filled; 0 at the end of the trace (END chunk read
 * and verified, nothing after it); or a negative SP_E* code.  Records of the
 * previous snapshot not yet read are read (and checked) first.
 */
int trace_reader_next_snapshot(struct trace_reader *r, struct trace_snapshot *out,
			       struct sp_err *err);
/* Next record of the current snapshot: 1, 0 at its end, or a negative SP_E* code. */
int trace_reader_next_record(struct trace_reader *r, struct trace_record *out,
			     struct sp_err *err);
/*
 * Up to max (1 to INT_MAX) next records of the current snapshot into out[]:
 * how many (>= 1), 0 at its end, or a negative SP_E* code (then none was read
 * by this call): the records, checks and errors of as many
 * trace_reader_next_record() calls, in one call (a replay reads 16 at a
 * time: ~half the reader's instructions a record, bench/README.md, issue
 * 14, twentieth round).
 */
int trace_reader_next_records(struct trace_reader *r, struct trace_record *out, unsigned max,
			      struct sp_err *err);
/*
 * The summary of a version-2 file (FORMAT.md: SUMM), what a pass over the
 * records would learn, read from the file's tail without that pass.  The
 * reader checks it against the records as it reads them (all but the
 * estimate, which trace_check() checks), so a replay that reads to END has
 * checked it by then.
 */
struct trace_summary {
	uint32_t snapshots;
	uint64_t records;
	uint64_t last_ms;    /* time of the last snapshot (0 without any) */
	uint64_t contents;   /* trace_hll_count() of the present non-zero records' (fp, domain) */
	uint8_t *complete;   /* per guest: 1 if some snapshot records every page of the guest */
};

/*
 * The summary at the file's end, read with pread() (the stream's position is
 * unchanged): 1 and *out filled (free out->complete); 0 when there is none
 * that can be used - version 1, or anything amiss at the tail (a reading
 * pass then reports it as usual); or SP_ENOMEM.
 */
int trace_reader_summary(struct trace_reader *r, struct trace_summary *out, struct sp_err *err);

/*
 * Distinct (fingerprint, domain) pairs estimated by HyperLogLog (Flajolet et
 * al. 2007: 2^14 one-byte registers; standard error 0.8%): what the writer
 * puts in the summary and sim's layout pass computes, the same function.
 */
#define TRACE_HLL_BITS 14
#define TRACE_HLL_REGS (1u << TRACE_HLL_BITS)
uint64_t trace_pair_hash(struct sp_fp fp, uint32_t domain);
static inline void trace_hll_add(uint8_t *reg, uint64_t h)
{
	/* the guard bit bounds the rank */
	uint64_t rest = h << TRACE_HLL_BITS | (1ull << (TRACE_HLL_BITS - 1));
	uint8_t rank = (uint8_t)(__builtin_clzll(rest) + 1);
	uint8_t *r = &reg[h >> (64 - TRACE_HLL_BITS)];

	if (rank > *r)
		*r = rank;
}
uint64_t trace_hll_count(const uint8_t *reg);

/* Byte offset just past what has been consumed (for progress). */
uint64_t trace_reader_offset(const struct trace_reader *r);
uint64_t trace_reader_size(const struct trace_reader *r);
void trace_reader_close(struct trace_reader *r);

/* Reads the header and every record to the END chunk: 0 iff the file is sound. */
int trace_check(const char *path, uint32_t *snapshots, uint64_t *records, struct sp_err *err);

struct trace_writer;

/* mode: permission bits of the final file (0644; 0600 for recorded memory). */
int trace_writer_open(struct trace_writer **out, const char *path, const struct trace_header *h,
		      unsigned mode, struct sp_err *err);
int trace_writer_begin_snapshot(struct trace_writer *w, uint64_t time_ms, struct sp_err *err);
/* Records must come in increasing (guest, page) order within a snapshot. */
int trace_writer_record(struct trace_writer *w, const struct trace_record *rec,
			struct sp_err *err);
/* Finishes the file and renames it into place; frees w whatever the result. */
int trace_writer_commit(struct trace_writer *w, struct sp_err *err);
/* Discards everything written; FILE is untouched.  Frees w. */
void trace_writer_abort(struct trace_writer *w);

/*
 * A stream of snapshots and records, whatever holds the trace: the file
 * reader above, or a cursor over a trace decoded in memory (trace_mem).
 * The functions behave as trace_reader_next_snapshot/_record/_records;
 * next_records may be NULL (a caller then reads by next_record).
 */
struct trace_source {
	const struct trace_header *(*header)(void *impl);
	int (*next_snapshot)(void *impl, struct trace_snapshot *out, struct sp_err *err);
	int (*next_record)(void *impl, struct trace_record *out, struct sp_err *err);
	void *impl;
	int (*next_records)(void *impl, struct trace_record *out, unsigned max, struct sp_err *err);
};

struct trace_source trace_reader_source(struct trace_reader *r);

/*
 * A whole trace read and checked once, then read-only: any number of
 * cursors, in any number of threads, replay it (sim compare, sweep, plan).
 * Decoded, it holds every record in memory (32 bytes each); streamed, only
 * the snapshot headers, and each cursor decodes the file again as it goes
 * (about 100 M records per second), the threads sharing the file's bytes
 * through the page cache.  TRACE_MEM_AUTO streams files above 1 GiB.
 */
struct trace_mem;

enum trace_mem_mode { TRACE_MEM_AUTO, TRACE_MEM_DECODED, TRACE_MEM_STREAMED };

/* progress (may be NULL): bytes read of the file's size, after each snapshot.  AUTO. */
int trace_mem_load(struct trace_mem **out, const char *path, trace_progress_fn progress, void *arg,
		   struct sp_err *err);
int trace_mem_load_as(struct trace_mem **out, const char *path, enum trace_mem_mode mode,
		      trace_progress_fn progress, void *arg, struct sp_err *err);
void trace_mem_free(struct trace_mem *m);
const struct trace_header *trace_mem_header(const struct trace_mem *m);
uint64_t trace_mem_records(const struct trace_mem *m);
bool trace_mem_streamed(const struct trace_mem *m);
/* Time of the last snapshot (0 without any). */
uint64_t trace_mem_last_ms(const struct trace_mem *m);
/* A version-2 trace's summary (checked against the records at load), or NULL. */
const struct trace_summary *trace_mem_summary(const struct trace_mem *m);

struct trace_mem_cursor {
	const struct trace_mem *m;
	uint64_t snap;     /* snapshots returned so far */
	uint64_t rec;      /* next record */
	uint64_t rec_end;  /* end of the current snapshot's records */
	struct trace_reader *r; /* streamed: this cursor's reader, once used */
};

/* Every cursor initialised must be released (a streamed one holds an open file). */
void trace_mem_cursor_init(struct trace_mem_cursor *c, const struct trace_mem *m);
void trace_mem_cursor_release(struct trace_mem_cursor *c);
struct trace_source trace_mem_source(struct trace_mem_cursor *c);

/* Header helpers.  init() starts from nothing (it frees nothing): release first to reuse. */
int trace_header_init(struct trace_header *h, uint32_t nguests, struct sp_err *err);
void trace_header_release(struct trace_header *h);
uint64_t trace_header_total_pages(const struct trace_header *h);

#endif
