/*
 * materialize.h - a trace's guests made real: one anonymous memory region per
 * guest whose pages hold bytes derived from the trace's fingerprints, so that
 * the kernel's KSM (or the live backend) can merge them like guest memory.
 *
 * Content: a present page with fingerprint F holds real_fp_fill(F): equal
 * fingerprints give equal bytes, different ones different bytes (the first
 * 16 bytes are F itself, the rest a stream seeded by F).  A ZERO page is
 * zero-filled (written, so it is a private page as in a guest, not the shared
 * zero page); an absent page is dropped (MADV_DONTNEED: no memory, reads as
 * zero).  Applying a record writes the page's new bytes; if the kernel had
 * merged the page, the write makes it copy the page first, as a guest would.
 *
 * Layout: the guests' regions lie at ascending addresses in trace order, so
 * the kernel's scan (by address) visits pages in the models' order.
 * Huge pages: regions are 2 MiB aligned and MADV_NOHUGEPAGE, except that the
 * first HUGE record in a 2 MiB-aligned range advises MADV_HUGEPAGE for it.
 */
#ifndef SP_REAL_MATERIALIZE_H
#define SP_REAL_MATERIALIZE_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "fingerprint.h"
#include "metrics.h"
#include "sp_error.h"
#include "trace.h"

/* Fills page_size bytes (a multiple of 16) at dst with the content of fp. */
void real_fp_fill(void *dst, size_t page_size, struct sp_fp fp);

struct real_mat;

#define REAL_MAT_MERGEABLE 0x1u /* madvise(MADV_MERGEABLE) every region */

/*
 * Maps one region per guest of h (page_count x page_size bytes, nothing
 * touched yet).  The trace's page size must be a multiple of the system's.
 * SP_ENOTSUP when MERGEABLE is asked and the kernel has no KSM.
 */
int real_mat_new(struct real_mat **out, const struct trace_header *h, unsigned flags,
		 struct sp_err *err);
/* Unmaps everything. */
void real_mat_free(struct real_mat *m);
/* Applies one record: writes the new content, zero-fills, or drops the page. */
int real_mat_apply(struct real_mat *m, const struct trace_record *rec, struct sp_err *err);
/*
 * Applies every remaining record of the reader's current snapshot (after
 * trace_reader_next_snapshot()); *records (if non-NULL) gets the count.
 * stop (if non-NULL) is polled between records: when it becomes non-zero the
 * function returns SP_EIO "interrupted".
 */
int real_mat_snapshot(struct real_mat *m, struct trace_reader *r, uint64_t *records,
		      const volatile sig_atomic_t *stop, struct sp_err *err);
/* madvise(MADV_MERGEABLE) (on) or MADV_UNMERGEABLE (off: unmerges) every region. */
int real_mat_mergeable(struct real_mat *m, bool on, struct sp_err *err);
/* Address of a guest's page. */
void *real_mat_page(const struct real_mat *m, uint32_t guest, uint64_t page);
/* Whether a page is present now, and how many are. */
bool real_mat_present(const struct real_mat *m, uint32_t guest, uint64_t page);
uint64_t real_mat_present_pages(const struct real_mat *m);
/* Bytes mapped (all regions). */
uint64_t real_mat_bytes(const struct real_mat *m);
/*
 * Ground truth of what is materialised now, in struct metrics terms:
 * oracle_saving (duplicate non-zero pages by (content, security domain),
 * plus zero pages, as sim/mem.c counts it).  Leaves the other fields alone.
 */
void real_mat_metrics(const struct real_mat *m, struct metrics *out);

#endif
