/*
 * daemon_sim.c - implements real_daemon_sim_ctl (daemon.h): samepaged's own
 * engine run inside the simulator, as the control policy of sim_run(), so
 * that its decision cycle and its safety logic (headroom before anything
 * that unmerges, the NUMA switch sequence, the swap warning, the cow_ksm
 * alarm, the metrics file, SAMEPAGE_ON_EXIT) are tested without a kernel.
 *
 * The simulator calls this policy as it would call ksmtuned or advisor; the
 * engine then runs its cycle, and the configured policy inside it, against
 * a world (struct real_daemon_io) made of the simulator's ctl_env:
 *   read()   the host of ctl_env.host(); the tunables of ctl_env.get() (run
 *            as last written); the counters from the metrics the simulator
 *            gave with this call - the files of the simulated kernel
 *            (cfg.kernel) has, the others absent; ksmd's CPU = cpu_ns,
 *            cow_ksm = cow_breaks; one NUMA node;
 *   write()  run=0/1 through ctl_env.run(), run=2 refused (the model has no
 *            unmerge: the engine counts a refusal), the others through
 *            ctl_env.set() (merge_across_nodes while KSM pages exist: EBUSY,
 *            as the kernel).
 * The engine is driven: its cycle comes at the policy's own wake-ups and
 * the policy's after_batch() after every simulated batch, so a run through
 * the engine makes exactly the decisions `sim run --controller` makes.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon.h"

struct sim_world {
	struct real_daemon *d;
	struct ctl_env env;        /* the simulator's */
	struct real_daemon_io io;
	struct metrics m;          /* as the simulator gave it at this call */
	bool running;
};

static int world_read(void *arg, struct real_host *host, struct real_ksm_state *state, struct metrics *m,
		      bool *have_m, struct sp_err *err)
{
	struct sim_world *w = arg;
	int rc;

	memset(host, 0, sizeof(*host));
	memset(state, 0, sizeof(*state));
	rc = w->env.host(w->env.arg, &host->mem, err);
	if (rc < 0)
		return rc;
	host->cow_ksm = w->m.cow_breaks;
	host->ksmd_cpu_ns = w->m.cpu_ns;
	host->numa_nodes = 1;
	/* The trace's guests stand for the QEMU processes; they have no pid nor ksm_stat. */
	host->nguests = host->mem.guests;
	for (uint32_t g = 0; g < host->nguests && g < REAL_HOST_MAX_GUESTS; g++) {
		host->guests[g].ksm_merging_pages = -1;
		host->guests[g].ksm_rmap_items = -1;
		snprintf(host->guests[g].comm, sizeof(host->guests[g].comm), "guest%u", g);
	}
	for (int i = 0; i < REAL_KSM__COUNT; i++) {
		const char *name = real_ksm_name(i);

		if (!algo_kernel_offers(&w->d->kernel, name, NULL, 0))
			continue;
		if (i == REAL_KSM_RUN) {
			state->v[i] = w->running;
			state->present[i] = true;
		} else if (i < REAL_KSM_TUNABLES) {
			double v = w->env.get(w->env.arg, name);

			if (!isnan(v)) {
				state->v[i] = llround(v);
				state->present[i] = true;
			}
		} else {
			for (int k = 0; k < METRICS_COUNT; k++) {
				if (!strcmp(metrics_names[k], name)) {
					state->v[i] = metrics_get(&w->m, k);
					state->present[i] = true;
				}
			}
		}
	}
	*m = w->m;
	*have_m = true;
	return 0;
}

static int world_write(void *arg, int file, int64_t value, struct sp_err *err)
{
	struct sim_world *w = arg;

	if (file == REAL_KSM_RUN) {
		if (value == REAL_KSM_RUN_UNMERGE)
			return sp_err_set(err, SP_ENOTSUP, "the simulator's KSM has no run=2 (unmerge is not modelled)");
		w->env.run(w->env.arg, value == REAL_KSM_RUN_MERGE);
		w->running = value == REAL_KSM_RUN_MERGE;
		return 0;
	}
	return w->env.set(w->env.arg, real_ksm_name(file), (double)value, err);
}

static int sim_ctl_create(void **out, const struct algo_params *p, const struct ctl_env *env,
			  struct sp_err *err)
{
	struct sim_world *w;
	int rc;

	(void)p;
	if (!env->ctx)
		return sp_err_set(err, SP_EINVAL, "samepaged: the simulator's run has no engine (sim_config.ctl_ctx)");
	w = calloc(1, sizeof(*w));
	if (!w)
		return sp_err_set(err, SP_ENOMEM, "out of memory");
	w->d = env->ctx;
	w->env = *env;
	w->running = true; /* the simulator starts scanning, as a kernel with run=1 */
	w->io = (struct real_daemon_io){ .read = world_read, .write = world_write, .arg = w };
	w->d->io = &w->io;
	w->d->driven = true;
	rc = real_daemon_start(w->d, 0, err);
	if (rc < 0) {
		w->d->io = NULL;
		free(w);
		return rc;
	}
	*out = w;
	return 0;
}

static void sim_ctl_destroy(void *st)
{
	struct sim_world *w = st;
	struct sp_err err = { 0 };

	/* SAMEPAGE_ON_EXIT at the end of the simulated time; a failure is the engine's to log. */
	if (real_daemon_stop(w->d, &err) < 0 && w->d->log)
		w->d->log(w->d->log_arg, REAL_LOG_ERR, err.msg);
	w->d->io = NULL;
	free(w);
}

static int sim_ctl_tick(void *st, uint64_t now_ns, const struct metrics *m, uint64_t *next_ns,
			struct sp_err *err)
{
	struct sim_world *w = st;
	uint64_t next;
	int rc;

	w->m = *m;
	rc = real_daemon_cycle(w->d, now_ns, false, &next, err);
	if (rc < 0)
		return rc;
	*next_ns = next == UINT64_MAX ? ALGO_SLEEP_FOREVER : next > now_ns ? next - now_ns : 0;
	return 0;
}

static int sim_ctl_after_batch(void *st, uint64_t now_ns, const struct metrics *m, struct sp_err *err)
{
	struct sim_world *w = st;

	w->m = *m;
	return real_daemon_batch(w->d, now_ns, err);
}

const struct ctl_ops real_daemon_sim_ctl = {
	.version = CTL_OPS_VERSION,
	.name = "samepaged",
	.description = "samepaged's engine (its configured policy, safety checks and exports) on the simulator",
	.params = NULL,
	.nparams = 0,
	.create = sim_ctl_create,
	.destroy = sim_ctl_destroy,
	.tick = sim_ctl_tick,
	.after_batch = sim_ctl_after_batch,
	.text_params = NULL,
	.source = NULL,
};
