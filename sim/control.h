/*
 * control.h - the contract of control policies: plug-ins that read the
 * host's memory and the merger's counters and change its tunables over
 * time, as ksmtuned or the kernel's scan-time advisor do.
 *
 * A policy is a const struct ctl_ops, versioned like struct algo_ops and
 * registered by one line in controllers.def (file sim/ctl_NAME.c).  It never
 * knows where it runs: it sees a host and a merger only through struct
 * ctl_env, which two drivers implement -
 *   the simulator (sim/run.c): a simulated host around a simulated
 *     algorithm, in simulated time;
 *   samepaged (real/): the host's /proc and the kernel's /sys/kernel/mm/ksm.
 * One copy of each policy serves both.
 *
 * The driver calls tick() whenever the policy's own sleep is over and, if
 * the policy has one, after_batch() after every scan batch (the simulator)
 * or at every poll of the kernel's counters (samepaged); both see the
 * merger's counters in struct metrics (cumulative counters since the
 * policy started) and act through struct ctl_env.
 * Parameters are described with the same struct algo_param as algorithms';
 * parameters that are text (a file name) are listed in text_params
 * (version 2) and read through ctl_env.text().
 */
#ifndef SP_CONTROL_H
#define SP_CONTROL_H

#include <stdbool.h>
#include <stdint.h>

#include "algorithm.h"

#define CTL_OPS_VERSION 2

/*
 * The host as a policy sees it, in KiB as /proc/meminfo counts.  The
 * simulator fills it from its simulated host (sim_host); samepaged from
 * /proc.  Fields a host cannot tell are 0.
 */
struct ctl_host {
	uint64_t mem_total_kib;     /* MemTotal */
	uint64_t mem_free_kib;      /* MemFree + Buffers + Cached: ksmtuned's "free" */
	uint64_t mem_available_kib; /* MemAvailable */
	uint64_t swap_total_kib;    /* SwapTotal */
	uint64_t swap_free_kib;     /* SwapFree */
	uint64_t committed_kib;     /* memory committed to guests: Σ RSS of the QEMU processes */
	uint32_t guests;            /* QEMU processes (simulator: the trace's guests) */
	uint32_t page_size;         /* bytes */
};

/* What a policy may ask of, and do to, the merger it controls and its host. */
struct ctl_env {
	const char *target; /* what is controlled, for messages: "ksm", "the kernel's KSM" */
	/* Set a tunable by name (the kernel's names); 0 or an SP_E* code with err. */
	int (*set)(void *arg, const char *param, double value, struct sp_err *err);
	/* Current value of a tunable (NAN if the merger has none). */
	double (*get)(void *arg, const char *param);
	/* Start or stop scanning (KSM's run=1 / run=0); merged pages stay merged. */
	void (*run)(void *arg, bool on);
	/* The host's memory now; 0 or an SP_E* code with err. */
	int (*host)(void *arg, struct ctl_host *out, struct sp_err *err);
	/* A text parameter of the policy (one of its text_params), or NULL if not given. */
	const char *(*text)(void *arg, const char *name);
	void *arg;
	/*
	 * What the driver's caller gave for this policy instance (the
	 * simulator: sim_config.ctl_ctx; samepaged's own engine run as a
	 * policy uses it), NULL otherwise.  Policies that need none ignore it.
	 */
	void *ctx;
};

struct ctl_ops {
	uint32_t version;
	const char *name;
	const char *description;
	const struct algo_param *params;
	uint32_t nparams;

	/*
	 * Fails (SP_EINVAL, message) if the merger lacks a tunable the policy
	 * drives, or (SP_ECORRUPT, message naming the file and line) if a file
	 * the policy reads is malformed.  env stays valid until destroy().
	 */
	int (*create)(void **out, const struct algo_params *p, const struct ctl_env *env,
		      struct sp_err *err);
	void (*destroy)(void *st);
	/*
	 * The policy's own wake-up at now_ns (time since the policy started);
	 * *next_ns: how long until the next call (ALGO_SLEEP_FOREVER: never,
	 * 0: one millisecond).
	 */
	int (*tick)(void *st, uint64_t now_ns, const struct metrics *m, uint64_t *next_ns,
		    struct sp_err *err);
	/* After every scan batch, or every poll on a host (NULL if not needed). */
	int (*after_batch)(void *st, uint64_t now_ns, const struct metrics *m, struct sp_err *err);

	/* ---- version 2 ---- */
	/* Names of the policy's text parameters, NULL-terminated (NULL: none). */
	const char *const *text_params;
	/*
	 * Optional: one line saying where the policy's settings come from (a
	 * plan's PLAN_SOURCE), for logs and the info metric; NULL: none.
	 */
	const char *(*source)(const void *st);
};

size_t ctl_count(void);
const struct ctl_ops *ctl_at(size_t i);
const struct ctl_ops *ctl_find(const char *name);
/* Parameter helpers: the algo_params_* functions work on a ctl's table through this view. */
void ctl_params_defaults(const struct ctl_ops *c, struct algo_params *out);
int ctl_params_set(const struct ctl_ops *c, struct algo_params *out, const char *kv,
		   struct sp_err *err);
/* Whether name is one of c's text parameters. */
bool ctl_is_text_param(const struct ctl_ops *c, const char *name);

#endif
