/*
 * ctl_advisor.c - implements the "advisor" control policy: the kernel's
 * scan-time advisor (mm/ksm.c, advisor_mode=scan-time, Linux 6.8+), which
 * ksmd runs at the end of every full scan to set pages_to_scan so that a
 * full scan takes advisor_target_scan_time.
 *
 * At the end of each full scan, in the kernel's integer arithmetic:
 *   scan_time   = whole seconds the scan took (at least 1)
 *   cpu_percent = ksmd CPU ms in the scan x 100 / (scan_time x 1000), >= 1
 *   factor      = target_scan_time x 100 / scan_time, >= 1
 *   change      = EWMA(30%) of (scan_time x 100 / previous scan_time), >= 1
 *   pages       = pages_to_scan x 100 / factor x change / 100
 *   per_page    = pages_to_scan / cpu_percent, >= 1
 *   pages       = clamp(pages, per_page x min_cpu(10), per_page x max_cpu),
 *                 then at most max_pages_to_scan
 * pages_to_scan starts at min_pages_to_scan.  "CPU" is the scanner CPU of
 * the run: modelled in simulation (cpu_ns), as ksmd's sched runtime is real.
 *
 * Notes: the first scan's "previous scan time" is itself (change = 100
 * before smoothing), and the EWMA starts from 0, as in the kernel.
 */
#include <math.h>
#include <stdlib.h>

#include "control.h"

#define EWMA_WEIGHT 30
#define MIN_CPU 10

enum { P_TARGET, P_MAX_CPU, P_MIN_PAGES, P_MAX_PAGES };

static const struct algo_param advisor_params[] = {
	[P_TARGET] = { "advisor_target_scan_time", "target time of a full scan, s", 200, 1, 1e6, true },
	[P_MAX_CPU] = { "advisor_max_cpu", "most CPU ksmd may use, % of one CPU", 70, 1, 100, true },
	[P_MIN_PAGES] = { "advisor_min_pages_to_scan", "initial pages_to_scan", 500, 1, 1e7, true },
	[P_MAX_PAGES] = { "advisor_max_pages_to_scan", "highest pages_to_scan", 30000, 1, 1e7, true },
};

struct advisor {
	struct ctl_env env;
	struct algo_params p;
	uint64_t pages;          /* pages_to_scan now */
	int64_t full_scans;      /* seen so far */
	uint64_t start_scan_ns;  /* when the current scan started */
	uint64_t cpu_ns;         /* scanner CPU at that time */
	uint64_t scan_time;      /* previous scan time, s (0: none yet) */
	uint64_t change;         /* smoothed change, % */
};

static int advisor_create(void **out, const struct algo_params *p, const struct ctl_env *env,
			  struct sp_err *err)
{
	struct advisor *a;

	if (isnan(env->get(env->arg, "pages_to_scan")))
		return sp_err_set(err, SP_EINVAL, "the advisor drives pages_to_scan, which %s does not have",
				  env->target);
	a = calloc(1, sizeof(*a));
	if (!a)
		return sp_err_set(err, SP_ENOMEM, "out of memory");
	a->env = *env;
	a->p = *p;
	a->pages = (uint64_t)p->v[P_MIN_PAGES];
	*out = a;
	return 0;
}

static void advisor_destroy(void *st)
{
	free(st);
}

/* At time 0: start from advisor_min_pages_to_scan, as set_advisor_defaults() does. */
static int advisor_tick(void *st, uint64_t now_ns, const struct metrics *m, uint64_t *next_ns,
			struct sp_err *err)
{
	struct advisor *a = st;

	a->start_scan_ns = now_ns;
	a->cpu_ns = (uint64_t)m->cpu_ns;
	a->full_scans = m->full_scans;
	*next_ns = ALGO_SLEEP_FOREVER;
	return a->env.set(a->env.arg, "pages_to_scan", (double)a->pages, err);
}

static uint64_t max1(uint64_t v)
{
	return v ? v : 1;
}

static int advisor_after_batch(void *st, uint64_t now_ns, const struct metrics *m,
			       struct sp_err *err)
{
	struct advisor *a = st;
	const double *v = a->p.v;
	uint64_t scan_time, cpu_ms, cpu_percent, last, factor, change, pages, per_page;

	if (m->full_scans == a->full_scans)
		return 0;
	a->full_scans = m->full_scans;
	scan_time = max1((now_ns - a->start_scan_ns) / 1000000000ull);
	cpu_ms = ((uint64_t)m->cpu_ns - a->cpu_ns) / 1000000ull;
	cpu_percent = max1(cpu_ms * 100 / (scan_time * 1000));
	last = a->scan_time ? a->scan_time : scan_time;
	factor = max1((uint64_t)v[P_TARGET] * 100 / scan_time);
	change = max1(scan_time * 100 / last);
	change = ((100 - EWMA_WEIGHT) * a->change + EWMA_WEIGHT * change) / 100;
	pages = a->pages * 100 / factor;
	pages = pages * change / 100;
	per_page = max1(a->pages / cpu_percent);
	if (pages > per_page * (uint64_t)v[P_MAX_CPU])
		pages = per_page * (uint64_t)v[P_MAX_CPU];
	if (pages < per_page * MIN_CPU)
		pages = per_page * MIN_CPU;
	if (pages > (uint64_t)v[P_MAX_PAGES])
		pages = (uint64_t)v[P_MAX_PAGES];
	a->change = change;
	a->scan_time = scan_time;
	a->cpu_ns = (uint64_t)m->cpu_ns;
	a->start_scan_ns = now_ns;
	a->pages = max1(pages);
	return a->env.set(a->env.arg, "pages_to_scan", (double)a->pages, err);
}

const struct ctl_ops ctl_advisor = {
	.version = CTL_OPS_VERSION,
	.name = "advisor",
	.description = "the kernel's scan-time advisor: after each full scan, size pages_to_scan so a scan takes the target time, within CPU limits",
	.params = advisor_params,
	.nparams = sizeof(advisor_params) / sizeof(advisor_params[0]),
	.create = advisor_create,
	.destroy = advisor_destroy,
	.tick = advisor_tick,
	.after_batch = advisor_after_batch,
	.text_params = NULL,
	.source = NULL,
};
