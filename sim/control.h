/*
 * control.h - the contract of control policies: plug-ins that change an
 * algorithm's tunables over simulated time, as ksmtuned or the kernel's
 * scan-time advisor do on a real host.
 *
 * A policy is a const struct ctl_ops, versioned like struct algo_ops and
 * registered by one line in controllers.def (file sim/ctl_NAME.c).  The
 * simulator calls tick() whenever the policy's own sleep is over (before a
 * batch due at the same time) and after_batch() after every scan batch; both
 * see the current metrics and act through struct ctl_actions.  Parameters are
 * described with the same struct algo_param as algorithms'.
 */
#ifndef SP_CONTROL_H
#define SP_CONTROL_H

#include <stdbool.h>
#include <stdint.h>

#include "algorithm.h"

#define CTL_OPS_VERSION 1

/* What a policy may do to the algorithm it controls. */
struct ctl_actions {
	/* Set a tunable of the controlled algorithm by name; 0 or SP_EINVAL. */
	int (*set)(void *arg, const char *param, double value, struct sp_err *err);
	/* Current value of a tunable (NAN if the algorithm has none). */
	double (*get)(void *arg, const char *param);
	/* Start or stop scanning (KSM's run=1 / run=0); merged pages stay merged. */
	void (*run)(void *arg, bool on);
	void *arg;
};

struct ctl_env {
	const struct algo_ops *algo; /* the algorithm under control */
	uint64_t guest_pages;        /* mergeable pages (all guests) */
	uint32_t page_size;
	struct ctl_actions act;
};

struct ctl_ops {
	uint32_t version;
	const char *name;
	const char *description;
	const struct algo_param *params;
	uint32_t nparams;

	/* Fails (SP_EINVAL, message) if the algorithm lacks a tunable the policy drives. */
	int (*create)(void **out, const struct algo_params *p, const struct ctl_env *env,
		      struct sp_err *err);
	void (*destroy)(void *st);
	/* The policy's own wake-up; *next_ns: when to call again (ALGO_SLEEP_FOREVER: never). */
	int (*tick)(void *st, uint64_t now_ns, const struct metrics *m, uint64_t *next_ns,
		    struct sp_err *err);
	/* After every scan batch (NULL if not needed). */
	int (*after_batch)(void *st, uint64_t now_ns, const struct metrics *m, struct sp_err *err);
};

size_t ctl_count(void);
const struct ctl_ops *ctl_at(size_t i);
const struct ctl_ops *ctl_find(const char *name);
/* Parameter helpers: the algo_params_* functions work on a ctl's table through this view. */
void ctl_params_defaults(const struct ctl_ops *c, struct algo_params *out);
int ctl_params_set(const struct ctl_ops *c, struct algo_params *out, const char *kv,
		   struct sp_err *err);

#endif
