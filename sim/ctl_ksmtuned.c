/*
 * ctl_ksmtuned.c - implements the "ksmtuned" control policy: the loop of the
 * ksmtuned script shipped with KSM (Red Hat, 2009), with its defaults.
 *
 * Every monitor_interval (60 s):
 *   committed = memory committed to the guests (the script: the sum of the
 *               QEMU processes' RSS; here: every guest page x page size,
 *               as a busy guest's RSS grows to its size and merging does
 *               not shrink RSS);
 *   free      = host memory not in use (the script: MemFree + Buffers +
 *               Cached; here: host_mem - host_used - guest memory actually
 *               backed, i.e. present pages - pages saved);
 *   thres     = max(thres_coef% of host memory, thres_const KiB);
 *   if committed + thres < host memory and free > thres: stop KSM (run=0,
 *   merged pages stay merged) and do nothing else;
 *   else npages += boost if free < thres, else += decay (negative),
 *   clamped to [npages_min, npages_max] (npages starts at 0, so the first
 *   start is at npages_min or boost); set pages_to_scan = npages,
 *   sleep_millisecs = max(10, sleep_msec x 16 GiB / host memory), run=1.
 *
 * Notes (simplifications):
 *  - The host's own use of memory is a constant (host_used_mib).
 *  - The script reacts to SIGUSR1 when a guest starts; guests here exist
 *    from the start of the trace.
 */
#include <stdlib.h>

#include "control.h"

enum { P_HOST_MEM, P_HOST_USED, P_INTERVAL, P_BOOST, P_DECAY, P_MIN, P_MAX, P_SLEEP, P_COEF, P_CONST };

static const struct algo_param ksmtuned_params[] = {
	[P_HOST_MEM] = { "host_mem_mib", "host memory (MemTotal), MiB", 16384, 16, 1 << 30, true },
	[P_HOST_USED] = { "host_used_mib", "host memory used by other than the guests, MiB", 1024, 0, 1 << 30, true },
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
};

static int ksmtuned_create(void **out, const struct algo_params *p, const struct ctl_env *env,
			   struct sp_err *err)
{
	struct ksmtuned *k;

	if (algo_param_index(env->algo, "pages_to_scan") < 0 ||
	    algo_param_index(env->algo, "sleep_millisecs") < 0)
		return sp_err_set(err, SP_EINVAL,
				  "ksmtuned drives pages_to_scan and sleep_millisecs, which '%s' does not have",
				  env->algo->name);
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

static int ksmtuned_tick(void *st, uint64_t now_ns, const struct metrics *m, uint64_t *next_ns,
			 struct sp_err *err)
{
	struct ksmtuned *k = st;
	const double *v = k->p.v;
	const struct ctl_actions *a = &k->env.act;
	double total_kib = v[P_HOST_MEM] * 1024, page_kib = k->env.page_size / 1024.0;
	double committed = (double)k->env.guest_pages * page_kib;
	double backed = (double)metrics_saved(m) * page_kib;
	double free_kib = total_kib - v[P_HOST_USED] * 1024 - (committed - backed);
	double thres = total_kib * v[P_COEF] / 100;
	int64_t sleep;
	int rc;

	(void)now_ns;
	*next_ns = (uint64_t)v[P_INTERVAL] * 1000000000ull;
	if (thres < v[P_CONST])
		thres = v[P_CONST];
	if (committed + thres < total_kib && free_kib > thres) {
		a->run(a->arg, false);
		return 0;
	}
	k->npages += (int64_t)(free_kib < thres ? v[P_BOOST] : v[P_DECAY]);
	if (k->npages < (int64_t)v[P_MIN])
		k->npages = (int64_t)v[P_MIN];
	if (k->npages > (int64_t)v[P_MAX])
		k->npages = (int64_t)v[P_MAX];
	sleep = (int64_t)(v[P_SLEEP] * 16 * 1024 * 1024 / total_kib);
	if (sleep <= 10)
		sleep = 10;
	rc = a->set(a->arg, "pages_to_scan", (double)k->npages, err);
	if (rc == 0)
		rc = a->set(a->arg, "sleep_millisecs", (double)sleep, err);
	if (rc == 0)
		a->run(a->arg, true);
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
};
