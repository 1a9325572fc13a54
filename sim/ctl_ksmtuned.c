/*
 * ctl_ksmtuned.c - implements the "ksmtuned" control policy: the loop of the
 * ksmtuned script shipped with KSM (Red Hat, 2009), with its defaults and
 * its shell's integer arithmetic (KiB, divisions truncate).
 *
 * Every monitor_interval (60 s), from the host (struct ctl_host):
 *   total     = MemTotal;
 *   committed = memory committed to the guests (the script: the sum of the
 *               QEMU processes' RSS);
 *   free      = MemFree + Buffers + Cached;
 *   thres     = max(total x thres_coef / 100, thres_const);
 *   if committed + thres < total and free > thres: stop KSM (run=0,
 *   merged pages stay merged) and do nothing else;
 *   else npages += boost if free < thres, else += decay (negative),
 *   clamped to [npages_min, npages_max] (npages starts at 0, so the first
 *   start is at npages_min or boost); set pages_to_scan = npages,
 *   sleep_millisecs = max(10, sleep_msec x 16 x 1024 x 1024 / total), run=1.
 *
 * Notes:
 *  - The script's loop is `sleep $KSM_MONITOR_INTERVAL; adjust`: its first
 *    adjustment comes one interval after it starts.  The drivers call
 *    tick() at the start, so the first tick only waits; until then KSM runs
 *    as it was started (the tunables of the run).
 *  - The script reacts to SIGUSR1 when a guest starts (samepaged does too);
 *    in simulation guests exist from the start of the trace.
 *  - In simulation the host is sim_host: committed is the guests' RSS
 *    (present pages, a KSM page once per mapper, pages on the zero page
 *    not at all); free is what the host's own use and the frames the
 *    guests take (present pages less pages saved) leave.
 */
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>

#include "control.h"

enum { P_INTERVAL, P_BOOST, P_DECAY, P_MIN, P_MAX, P_SLEEP, P_COEF, P_CONST };

static const struct algo_param ksmtuned_params[] = {
	[P_INTERVAL] = { "monitor_interval", "seconds between adjustments (KSM_MONITOR_INTERVAL)", 60, 1, 86400, true },
	[P_BOOST] = { "npages_boost", "pages_to_scan increase when memory is short (KSM_NPAGES_BOOST)", 300, 0, 1e6, true },
	[P_DECAY] = { "npages_decay", "pages_to_scan change otherwise (KSM_NPAGES_DECAY)", -50, -1e6, 0, true },
	[P_MIN] = { "npages_min", "lowest pages_to_scan (KSM_NPAGES_MIN)", 64, 1, 1e6, true },
	[P_MAX] = { "npages_max", "highest pages_to_scan (KSM_NPAGES_MAX)", 1250, 1, 1e7, true },
	[P_SLEEP] = { "sleep_msec", "sleep_millisecs for a 16 GiB host (KSM_SLEEP_MSEC)", 10, 0, 1e6, true },
	[P_COEF] = { "thres_coef", "free-memory threshold, % of host memory (KSM_THRES_COEF)", 20, 0, 100, true },
	[P_CONST] = { "thres_const", "lowest free-memory threshold, KiB (KSM_THRES_CONST)", 2048, 0, 1e9, true },
};

struct ksmtuned {
	struct ctl_env env;
	struct algo_params p;
	int64_t npages;
	bool waited; /* the script's first sleep is over */
};

static int ksmtuned_create(void **out, const struct algo_params *p, const struct ctl_env *env,
			   struct sp_err *err)
{
	struct ksmtuned *k;

	if (isnan(env->get(env->arg, "pages_to_scan")) || isnan(env->get(env->arg, "sleep_millisecs")))
		return sp_err_set(err, SP_EINVAL,
				  "ksmtuned drives pages_to_scan and sleep_millisecs, which %s does not have",
				  env->target);
	if (p->v[P_MIN] > p->v[P_MAX])
		return sp_err_set(err, SP_EINVAL, "ksmtuned: npages_min exceeds npages_max");
	k = calloc(1, sizeof(*k));
	if (!k)
		return sp_err_set(err, SP_ENOMEM, "out of memory");
	k->env = *env;
	k->p = *p;
	*out = k;
	return 0;
}

static void ksmtuned_destroy(void *st)
{
	free(st);
}

/* One adjustment of the script (its adjust()). */
static int ksmtuned_tick(void *st, uint64_t now_ns, const struct metrics *m, uint64_t *next_ns,
			 struct sp_err *err)
{
	struct ksmtuned *k = st;
	const double *v = k->p.v;
	const struct ctl_env *e = &k->env;
	struct ctl_host h;
	int64_t total, committed, free_kib, thres, sleep;
	int rc;

	(void)now_ns;
	(void)m;
	*next_ns = (uint64_t)v[P_INTERVAL] * 1000000000ull;
	if (!k->waited) {
		k->waited = true; /* sleep $KSM_MONITOR_INTERVAL first */
		return 0;
	}
	rc = e->host(e->arg, &h, err);
	if (rc < 0)
		return rc;
	total = (int64_t)h.mem_total_kib;
	committed = (int64_t)h.committed_kib;
	free_kib = (int64_t)h.mem_free_kib;
	if (total <= 0)
		return sp_err_set(err, SP_EINVAL, "ksmtuned: the host reports no memory (MemTotal 0)");
	thres = total * (int64_t)v[P_COEF] / 100;
	if (thres < (int64_t)v[P_CONST])
		thres = (int64_t)v[P_CONST];
	if (committed + thres < total && free_kib > thres) {
		e->run(e->arg, false);
		return 0;
	}
	k->npages += (int64_t)(free_kib < thres ? v[P_BOOST] : v[P_DECAY]);
	if (k->npages < (int64_t)v[P_MIN])
		k->npages = (int64_t)v[P_MIN];
	else if (k->npages > (int64_t)v[P_MAX])
		k->npages = (int64_t)v[P_MAX];
	sleep = (int64_t)v[P_SLEEP] * 16 * 1024 * 1024 / total;
	if (sleep <= 10)
		sleep = 10;
	rc = e->set(e->arg, "pages_to_scan", (double)k->npages, err);
	if (rc == 0)
		rc = e->set(e->arg, "sleep_millisecs", (double)sleep, err);
	if (rc == 0)
		e->run(e->arg, true);
	return rc;
}

const struct ctl_ops ctl_ksmtuned = {
	.version = CTL_OPS_VERSION,
	.name = "ksmtuned",
	.description = "the ksmtuned script: start KSM when guests commit most of the host's memory, boost or decay pages_to_scan every minute",
	.params = ksmtuned_params,
	.nparams = sizeof(ksmtuned_params) / sizeof(ksmtuned_params[0]),
	.create = ksmtuned_create,
	.destroy = ksmtuned_destroy,
	.tick = ksmtuned_tick,
	.after_batch = NULL,
	.text_params = NULL,
	.source = NULL,
};
