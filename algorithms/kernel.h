/*
 * kernel.h - which Linux version's KSM the model follows: one table of the
 * behaviours that changed between 5.14 and today, each with the version and
 * the upstream commit that introduced it (kernel.c), and the parser of
 * `--kernel VERSION[,behaviour=0|1]...`.
 *
 * A kernel is a version and a set of behaviour bits.  The version selects
 * every row of the table up to it; a distribution kernel that backports a
 * change (or lacks one) is described by setting a bit on its own, e.g.
 * `--kernel 5.14,smart_scan=1` or `--kernel 6.6,pages_scanned_per_visit=1`.
 */
#ifndef SP_KERNEL_H
#define SP_KERNEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sp_error.h"

/* Behaviour bits; each is one row of algo_kernel_table (kernel.c). */
enum algo_kernel_feature {
	AK_GENERAL_PROFIT = 1u << 0,       /* the general_profit counter */
	AK_KSM_ZERO_PAGES = 1u << 1,       /* ksm_zero_pages, and general_profit counting it */
	AK_PAGES_SCANNED = 1u << 2,        /* the pages_scanned counter */
	AK_SMART_SCAN = 1u << 3,           /* smart_scan tunable and pages_skipped counter */
	AK_ADVISOR = 1u << 4,              /* advisor_mode=scan-time and its tunables */
	AK_PAGES_SCANNED_PER_VISIT = 1u << 5, /* pages_scanned counts each visit (the fix) */
	AK_CHECKSUM_FIRST = 1u << 6,       /* checksum filter before the stable tree search */
	AK_THP_ZERO_REMAP = 1u << 7,       /* a huge-page split maps zero subpages to the zero page */
};

struct algo_kernel {
	uint32_t major, minor; /* the version the behaviours were taken from */
	uint32_t features;     /* AK_* bits */
	uint32_t overridden;   /* AK_* bits set or cleared on their own */
};

struct algo_kernel_row {
	uint32_t major, minor;  /* first mainline release with the behaviour */
	uint32_t feature;       /* AK_* bit */
	const char *name;       /* the behaviour's name in --kernel (and the README) */
	const char *commit;     /* upstream commit(s) that introduced it */
	const char *what;       /* one line */
};

extern const struct algo_kernel_row algo_kernel_table[];
extern const size_t algo_kernel_rows;

/* The oldest and the newest version the table was checked against. */
#define ALGO_KERNEL_OLDEST_MAJOR 5
#define ALGO_KERNEL_OLDEST_MINOR 14
#define ALGO_KERNEL_NEWEST_MAJOR 6
#define ALGO_KERNEL_NEWEST_MINOR 18

/* The newest behaviour (the default). */
void algo_kernel_newest(struct algo_kernel *out);

/*
 * Parses "6.1", "6.1.0-28-amd64" (a `uname -r`), "5.14.0-427.el9.x86_64",
 * optionally followed by ",name=0|1" overrides.  Errors name the token.
 */
int algo_kernel_parse(struct algo_kernel *out, const char *spec, struct sp_err *err);

/* The running kernel (uname), as algo_kernel_parse() reads it. */
int algo_kernel_running(struct algo_kernel *out, struct sp_err *err);

static inline bool algo_kernel_has(const struct algo_kernel *k, uint32_t feature)
{
	return (k->features & feature) == feature;
}

/* "6.1", or "6.6,checksum_first=1" with the overrides. */
void algo_kernel_format(const struct algo_kernel *k, char *buf, size_t len);
/* "6.1 (without general_profit, ksm_zero_pages, ...)": the version and the behaviours it lacks. */
void algo_kernel_describe(const struct algo_kernel *k, char *buf, size_t len);

/* The row of a behaviour bit (NULL if none). */
const struct algo_kernel_row *algo_kernel_row_of(uint32_t feature);

/*
 * The behaviour a KSM counter (metrics column name) or tunable needs, or 0
 * when every supported version has it.
 */
uint32_t algo_kernel_needs(const char *name);

/*
 * Whether kernel k has the counter or tunable called name; if not, a line
 * in buf such as "Linux 6.1 has no pages_skipped (added in 6.7, 5e924ff54d08)".
 */
bool algo_kernel_offers(const struct algo_kernel *k, const char *name, char *buf, size_t len);

#endif
