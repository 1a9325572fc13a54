/*
 * zero.c - implements the "zero" merger: it maps zero-filled pages to the
 * shared zero page and merges nothing else, like KSM with use_zero_pages=1
 * when no two non-zero pages are ever equal.
 *
 * It scans like ksmd: a cursor walks every present page in scan order,
 * pages_to_scan pages per batch, a batch every sleep_millisecs.  A visited
 * page that is private and whose checksum equals the zero page's is offered
 * to merge_zero(), which the backend refuses if the page is not zero-filled
 * after all (a checksum collision or a write in between).
 *
 * Notes (simplifications):
 *  - No checksum volatility filter: a zero page merges on its first visit.
 *  - The sleep is taken literally (no timer-tick rounding as in ksm).
 *  - It runs inside Linux (ALGO_CAP_LINUX): a merge splits a transparent huge
 *    page the way the --kernel version does (from 6.12 the split maps the
 *    zero-filled subpages to the zero page; sim_huge_for()).
 *
 * Invariants: flags[p] & Z_ONZERO iff this instance mapped p to the zero
 * page and no write has broken it since; zero_pages == number of such p.
 * flags[p] & Z_TRACKED iff p was visited while present and not unmapped
 * since; ntracked == number of such p.
 *
 * Idle time (repeat/skip): once nothing merges and nothing changes, a batch
 * only moves the cursor and counts; the state repeats when the cursor is back
 * where it was after an earlier batch with no change in between (changes
 * counts merges, new tracked pages, page_changed() and set_param()).
 */
#include <stdlib.h>

#include "algorithm.h"
#include "kit.h"
#include "sp_bigmem.h"

enum { P_PAGES_TO_SCAN, P_SLEEP_MILLISECS };

static const struct algo_param zero_params[] = {
	{ "pages_to_scan", "pages visited per batch", 100, 1, 1e7, true },
	{ "sleep_millisecs", "sleep between batches, ms", 20, 0, 1e6, true },
};

#define Z_ONZERO 0x1u
#define Z_TRACKED 0x2u

struct zero {
	struct backend bk;
	uint64_t pages_to_scan;
	uint64_t sleep_ns;
	uint64_t npages;
	uint64_t cursor;     /* next page to visit */
	uint32_t zero_sum;   /* checksum of a zero-filled page */
	uint8_t *flags;      /* per page: Z_ONZERO, Z_TRACKED (see invariants) */
	int64_t ntracked;
	int64_t zero_pages;
	int64_t full_scans;
	int64_t pages_scanned;
	/* idle fast-forward: the cycle's start (a batch), valid while ref_changes == changes */
	uint64_t now_ns, changes;
	bool ref;
	uint64_t ref_ns, ref_cursor, ref_changes;
	int64_t ref_full_scans, ref_scanned;
	int64_t cyc_full_scans, cyc_scanned; /* growth in the last cycle */
};

static void zero_destroy(void *st)
{
	struct zero *z = st;

	if (z) {
		sp_hot_free(z->flags, z->npages + 1, 1);
		free(z);
	}
}

static int zero_create(void **out, const struct algo_params *p, const struct algo_env *env,
		       struct sp_err *err)
{
	struct zero *z = calloc(1, sizeof(*z));

	if (!z)
		return sp_err_set(err, SP_ENOMEM, "zero: out of memory");
	z->bk = env->bk;
	z->pages_to_scan = (uint64_t)p->v[P_PAGES_TO_SCAN];
	z->sleep_ns = (uint64_t)p->v[P_SLEEP_MILLISECS] * 1000000u;
	z->npages = z->bk.ops->npages(z->bk.impl);
	z->zero_sum = z->bk.ops->zero_checksum(z->bk.impl);
	z->flags = sp_hot_calloc(z->npages + 1, 1);
	if (!z->flags) {
		zero_destroy(z);
		return sp_err_set(err, SP_ENOMEM, "zero: out of memory");
	}
	*out = z;
	return 0;
}

static void visit(struct zero *z, bk_page p)
{
	const struct backend_ops *ops = z->bk.ops;

	ops->account(z->bk.impl, BK_COST_VISIT, 1);
	z->pages_scanned++;
	if (!(z->flags[p] & Z_TRACKED)) {
		z->flags[p] |= Z_TRACKED;
		z->ntracked++;
		z->changes++;
	}
	if (z->flags[p] & Z_ONZERO)
		return;
	if (ops->checksum(z->bk.impl, p) != z->zero_sum)
		return;
	if (ops->merge_zero(z->bk.impl, p) == 0) {
		z->flags[p] |= Z_ONZERO;
		z->zero_pages++;
		z->changes++;
	}
}

static int zero_batch(void *st, uint64_t now_ns, uint64_t *sleep_ns)
{
	struct zero *z = st;
	uint64_t done = 0, looked = 0;
	struct bk_page_info info;

	z->now_ns = now_ns;
	/* Absent pages are not visited and not counted, as ksmd has no rmap item for them. */
	while (done < z->pages_to_scan && looked < z->npages) {
		bk_page p = z->cursor;

		if (z->bk.ops->prefetch && p + KIT_AHEAD_FAR < z->npages)
			z->bk.ops->prefetch(z->bk.impl, p + KIT_AHEAD_FAR);
		z->bk.ops->page_info(z->bk.impl, p, &info);
		if (info.present) {
			visit(z, p);
			done++;
		}
		looked = info.present ? 0 : looked + 1;
		if (++z->cursor == z->npages) {
			z->cursor = 0;
			z->full_scans++;
		}
	}
	*sleep_ns = z->sleep_ns;
	return 0;
}

static int zero_page_changed(void *st, bk_page p, uint32_t what)
{
	struct zero *z = st;

	z->changes++;
	if ((z->flags[p] & Z_ONZERO) && (what & (ALGO_CHANGE_COW | ALGO_CHANGE_UNMAPPED))) {
		z->flags[p] &= (uint8_t)~Z_ONZERO;
		z->zero_pages--;
	}
	if ((what & ALGO_CHANGE_UNMAPPED) && (z->flags[p] & Z_TRACKED)) {
		z->flags[p] &= (uint8_t)~Z_TRACKED;
		z->ntracked--;
	}
	return 0;
}

static int zero_set_param(void *st, uint32_t idx, double value, struct sp_err *err)
{
	struct zero *z = st;

	(void)err;
	z->changes++;
	if (idx == P_PAGES_TO_SCAN)
		z->pages_to_scan = (uint64_t)value;
	else if (idx == P_SLEEP_MILLISECS)
		z->sleep_ns = (uint64_t)value * 1000000u;
	return 0;
}

static bool zero_repeat(void *st, uint64_t idle_ns, uint64_t *since_ns)
{
	struct zero *z = st;

	(void)idle_ns; /* keeping the cycle's start costs nothing */
	if (z->ref && z->ref_changes == z->changes && z->ref_cursor != z->cursor)
		return false; /* the cycle goes on */
	if (z->ref && z->ref_changes == z->changes) {
		*since_ns = z->ref_ns;
		z->cyc_full_scans = z->full_scans - z->ref_full_scans;
		z->cyc_scanned = z->pages_scanned - z->ref_scanned;
	}
	{
		bool again = z->ref && z->ref_changes == z->changes;

		z->ref = true; /* the next cycle starts here */
		z->ref_ns = z->now_ns;
		z->ref_cursor = z->cursor;
		z->ref_changes = z->changes;
		z->ref_full_scans = z->full_scans;
		z->ref_scanned = z->pages_scanned;
		return again;
	}
}

static void zero_skip(void *st, uint64_t n, uint64_t cycle_ns)
{
	struct zero *z = st;

	(void)cycle_ns; /* no times kept */
	z->full_scans += (int64_t)n * z->cyc_full_scans;
	z->pages_scanned += (int64_t)n * z->cyc_scanned;
	z->ref = false;
}

static void zero_metrics(const void *st, struct metrics *m)
{
	const struct zero *z = st;
	int64_t page_size = z->bk.ops->page_size(z->bk.impl);

	m->pages_shared = 0;
	m->pages_sharing = 0;
	m->pages_unshared = 0;
	m->pages_volatile = 0;
	m->ksm_zero_pages = z->zero_pages;
	m->full_scans = z->full_scans;
	m->pages_scanned = z->pages_scanned;
	m->general_profit = metrics_general_profit(m, page_size, z->ntracked);
}

const struct algo_ops algo_zero = {
	.version = ALGO_OPS_VERSION,
	.name = "zero",
	.description = "maps zero-filled pages to the shared zero page, scanning like ksmd; merges nothing else",
	.caps = ALGO_CAP_SCANNER | ALGO_CAP_LINUX,
	.params = zero_params,
	.nparams = sizeof(zero_params) / sizeof(zero_params[0]),
	.create = zero_create,
	.destroy = zero_destroy,
	.batch = zero_batch,
	.page_changed = zero_page_changed,
	.set_param = zero_set_param,
	.metrics = zero_metrics,
	.repeat = zero_repeat,
	.skip = zero_skip,
};
