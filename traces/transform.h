/*
 * transform.h - traces made from traces: more guests than were recorded
 * (replicate), or fewer guests and a shorter time (subset), so a recording
 * can be sized to the host being planned.
 *
 * Both read IN with the streaming reader and write OUT with the
 * all-or-nothing writer: OUT appears complete or not at all.  Recorded
 * (keyed) traces stay keyed and are written mode 0600; others 0644.
 */
#ifndef SP_TRACE_TRANSFORM_H
#define SP_TRACE_TRANSFORM_H

#include <stddef.h>
#include <stdint.h>

#include "sp_error.h"
#include "trace.h"

/*
 * Replicate: OUT holds `guests` guests made from IN's K guests, cycling
 * through them: output guest j is copy c = j / K of input guest j % K
 * (named after it, with "#c" appended for c >= 1; its domain kept).
 * Sharing assumption (README.md, "Traces sized to the host"):
 *  - content held by two or more input guests (at any snapshot) is
 *    "common" (the OS, shared libraries...): every copy keeps its
 *    fingerprint, so it stays shared across all copies;
 *  - content held by one input guest only is "private" (that guest's
 *    data): copy c >= 1 re-keys it (a fingerprint derived from the
 *    original and c), so it is private to each copy; duplicates within
 *    one guest stay duplicates within each of its copies;
 *  - zero pages stay zero; huge-page flags and nodes are kept, or with
 *    nodes > 0 each output guest j is moved to node j % nodes (a page's
 *    offset from its guest's node is kept, modulo nodes).
 * Snapshots and their times are IN's.
 */
struct trace_replicate_opts {
	uint32_t guests;  /* 1 .. TRACE_MAX_GUESTS */
	uint16_t nodes;   /* 0: keep the nodes; else spread the guests over this many */
};

int trace_replicate(const char *in, const char *out, const struct trace_replicate_opts *o,
		    struct sp_err *err);

/*
 * Subset: OUT holds the guests named in `names` (all if nnames is 0), in
 * IN's order, and the snapshots whose time is in [from_ms, to_ms], shifted
 * so that the first is at time 0.  The first snapshot written holds the
 * full state of those guests at its time (the records of the snapshots
 * skipped before it folded in).  Fails (SP_EINVAL) for an unknown guest
 * name or a window holding no snapshot.
 */
struct trace_subset_opts {
	const char *const *names;
	size_t nnames;
	uint64_t from_ms;
	uint64_t to_ms;   /* UINT64_MAX: to the end */
};

int trace_subset(const char *in, const char *out, const struct trace_subset_opts *o,
		 struct sp_err *err);

/* The fingerprint copy c >= 1 of a replicated guest gives private content fp. */
struct sp_fp trace_rekey(struct sp_fp fp, uint32_t copy);

#endif
