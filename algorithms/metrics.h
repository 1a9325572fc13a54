/*
 * metrics.h - the one metrics struct, shared by the simulated and the live
 * backend, in the kernel's vocabulary (Documentation/admin-guide/mm/ksm.rst).
 *
 * Counters marked (algo) are kept by the merge algorithm, exactly as ksmd keeps
 * its own; counters marked (backend) are ground truth kept by the backend that
 * owns the memory, so an algorithm cannot misreport them.  All are cumulative
 * since the start of the run unless said "now".
 */
#ifndef SP_METRICS_H
#define SP_METRICS_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#define METRICS_GENERAL_PROFIT_META 64 /* bytes of metadata per tracked page, as the kernel counts */

/* X(name, doc): the CSV column order is this order, after time_ms. */
#define METRICS_FIELDS(X)                                                              \
	X(pages_shared, "(algo) now: shared frames in use (KSM pages)")                    \
	X(pages_sharing, "(algo) now: further mappings of shared frames = pages saved")     \
	X(pages_unshared, "(algo) now: candidate pages waiting in an unstable structure")   \
	X(pages_volatile, "(algo) now: tracked pages changing too fast to be candidates")   \
	X(full_scans, "(algo) completed passes over all mergeable pages")                  \
	X(pages_scanned, "(algo) page visits")                                             \
	X(pages_skipped, "(algo) visits skipped by smart scanning")                       \
	X(ksm_zero_pages, "(algo) now: pages mapped to the shared zero page")              \
	X(stable_node_chains, "(algo) now: contents with more than one shared frame")      \
	X(stable_node_dups, "(algo) now: shared frames that belong to a chain")            \
	X(general_profit, "(algo) now: bytes saved less 64 B per tracked page")            \
	X(cow_breaks, "(backend) writes that unshared a merged page")                     \
	X(checksums, "(backend) page checksums computed")                                  \
	X(compares, "(backend) full page comparisons")                                     \
	X(merges, "(backend) successful merges")                                           \
	X(cpu_ns, "(backend) scanner CPU time: modelled in sim, measured in real")         \
	X(oracle_saving, "(backend) now: most pages any algorithm could save")             \
	X(remote_sharers, "(backend) now: mappings whose page node differs from the frame node") \
	X(thp_splits, "(backend) huge pages split by a merge of one of their subpages")    \
	X(thp_zero_pages, "(backend) now: zero subpages of split huge pages mapped to the zero page") \
	X(pages_present, "(backend) now: guest pages present (backed), merged or not")

struct metrics {
#define METRICS_X_FIELD(name, doc) int64_t name;
	METRICS_FIELDS(METRICS_X_FIELD)
#undef METRICS_X_FIELD
};

enum { METRICS_COUNT = 0
#define METRICS_X_COUNT(name, doc) +1
	METRICS_FIELDS(METRICS_X_COUNT)
#undef METRICS_X_COUNT
};

/* Column names and values by index, for CSV writers and tables. */
extern const char *const metrics_names[METRICS_COUNT];
int64_t metrics_get(const struct metrics *m, int i);

/*
 * The kernel's general_profit, from m's pages_sharing and ksm_zero_pages
 * (set them first) and the pages the algorithm tracks (rmap items).
 */
static inline int64_t metrics_general_profit(const struct metrics *m, int64_t page_size,
					     int64_t tracked)
{
	return (m->pages_sharing + m->ksm_zero_pages) * page_size -
	       tracked * METRICS_GENERAL_PROFIT_META;
}

/*
 * Pages saved: pages_sharing + ksm_zero_pages (what general_profit credits)
 * + thp_zero_pages (zero subpages that a merge's huge-page split mapped to
 * the zero page: memory freed that no KSM counter shows).
 */
static inline int64_t metrics_saved(const struct metrics *m)
{
	return m->pages_sharing + m->ksm_zero_pages + m->thp_zero_pages;
}

/*
 * The tunables a control policy drives, as they were at a sample: written
 * as CSV columns after the metrics when a policy runs (sim run
 * --controller, samepaged), so a report shows what the policy did.
 */
struct metrics_tunables {
	int64_t run;             /* KSM's run: 1 scanning, 0 stopped (merged pages stay merged) */
	int64_t pages_to_scan;
	int64_t sleep_millisecs;
};

/*
 * The time-series CSV shared by every writer (sim run --csv, sim compare's
 * per-algorithm files, samepaged): "time_ms", the metrics in METRICS_FIELDS
 * order, then, with tunables, "run,pages_to_scan,sleep_millisecs".
 * Return 0, or EOF when the stream failed.
 */
int metrics_csv_header(FILE *f, bool tunables);
/* tu: the tunables at this sample, or NULL for a header written without them. */
int metrics_csv_row(FILE *f, uint64_t time_ms, const struct metrics *m,
		    const struct metrics_tunables *tu);
/* The same with only the columns i for which shown[i] (NULL: all), e.g. the counters a kernel has. */
int metrics_csv_header_shown(FILE *f, bool tunables, const bool *shown);
int metrics_csv_row_shown(FILE *f, uint64_t time_ms, const struct metrics *m,
			  const struct metrics_tunables *tu, const bool *shown);

#endif
