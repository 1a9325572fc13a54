/*
 * ctl_plan.c - implements the "plan" control policy: it applies the settings,
 * or the schedule of settings, that `sim plan` chose, from a plan file.
 *
 * The plan file (format 1) is a KEY=VALUE file (sim/kvfile.h; a samepaged
 * configuration file may hold the plan itself):
 *   PLAN_FORMAT=1                      required, first format
 *   PLAN_SOURCE="free text"            optional: where the plan comes from
 *                                      (shown in logs and samepaged's info metric)
 *   STEP="SECONDS key=value ..."       one or more: at SECONDS after the
 *                                      policy started, set these
 * Keys of a step: pages_to_scan, sleep_millisecs, run (0 or 1) and, in a
 * step at 0 s only, smart_scan and use_zero_pages (0 or 1).  Steps are
 * applied in time order (steps with equal times in file order; run last
 * within a step).  merge_across_nodes and max_page_sharing are not plan
 * keys: changing them unmerges everything, which samepaged does through its
 * checked path (SAMEPAGE_MERGE_ACROSS_NODES, SAMEPAGE_MAX_PAGE_SHARING) and
 * `sim run` through --set.  Keys of the file other than PLAN_* and STEP are
 * allowed only if they are samepaged's (SAMEPAGE_*, ksmtuned's KSM_*,
 * LOGFILE, DEBUG).  Any other problem - a missing PLAN_FORMAT, no STEP, an
 * unknown key, a value out of range - is an error naming the line.
 *
 * Text parameter "plan": the file (sim run --ctl-set plan=FILE; samepaged:
 * SAMEPAGE_PLAN, by default its configuration file).
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "control.h"
#include "kvfile.h"

#define PLAN_FORMAT 1
#define PLAN_MAX_KEYS 5

enum { K_PAGES_TO_SCAN, K_SLEEP_MILLISECS, K_RUN, K_SMART_SCAN, K_USE_ZERO_PAGES, K__COUNT };

static const struct {
	const char *name;
	double min, max;
	bool at_start_only;
} plan_keys[K__COUNT] = {
	[K_PAGES_TO_SCAN] = { "pages_to_scan", 1, 1e7, false },
	[K_SLEEP_MILLISECS] = { "sleep_millisecs", 0, 1e6, false },
	[K_RUN] = { "run", 0, 1, false },
	[K_SMART_SCAN] = { "smart_scan", 0, 1, true },
	[K_USE_ZERO_PAGES] = { "use_zero_pages", 0, 1, true },
};

struct step {
	uint64_t at_ns;
	unsigned line;
	int n;
	int key[PLAN_MAX_KEYS];
	double v[PLAN_MAX_KEYS];
};

struct plan {
	struct ctl_env env;
	struct step *steps;
	size_t n, next;   /* steps; the first not applied yet */
	char source[256]; /* PLAN_SOURCE, or the file's name */
};

static const char *const plan_text_params[] = { "plan", NULL };

static bool allowed_other_key(const char *k)
{
	return !strncmp(k, "SAMEPAGE_", 9) || !strncmp(k, "KSM_", 4) || !strcmp(k, "LOGFILE") ||
	       !strcmp(k, "DEBUG");
}

static int find_key(const char *name, size_t len)
{
	for (int i = 0; i < K__COUNT; i++) {
		if (strlen(plan_keys[i].name) == len && !strncmp(plan_keys[i].name, name, len))
			return i;
	}
	return -1;
}

/* Parses one STEP value into st; a message in why on failure. */
static int parse_step(const char *text, struct step *st, char *why, size_t len)
{
	const char *p = text;
	char *end;
	double secs;

	errno = 0;
	secs = strtod(p, &end);
	if (end == p || errno || !isfinite(secs) || secs < 0 || secs > 1e9 ||
	    (*end && *end != ' ' && *end != '\t')) {
		snprintf(why, len, "expected \"SECONDS key=value ...\", found '%s'", text);
		return -1;
	}
	st->at_ns = (uint64_t)llround(secs * 1e9);
	st->n = 0;
	for (p = end;;) {
		const char *k, *eq;
		int idx;
		double v;

		while (*p == ' ' || *p == '\t')
			p++;
		if (!*p)
			break;
		k = p;
		while (*p && *p != ' ' && *p != '\t')
			p++;
		eq = memchr(k, '=', (size_t)(p - k));
		idx = eq ? find_key(k, (size_t)(eq - k)) : -1;
		if (idx < 0) {
			snprintf(why, len, "'%.*s': expected key=value with key among pages_to_scan, sleep_millisecs, run, smart_scan, use_zero_pages",
				 (int)(p - k), k);
			return -1;
		}
		errno = 0;
		v = strtod(eq + 1, &end);
		if (end == eq + 1 || end != p || errno || v != floor(v) || v < plan_keys[idx].min ||
		    v > plan_keys[idx].max) {
			snprintf(why, len, "'%.*s': %s takes an integer in [%g, %g]", (int)(p - k), k,
				 plan_keys[idx].name, plan_keys[idx].min, plan_keys[idx].max);
			return -1;
		}
		if (plan_keys[idx].at_start_only && st->at_ns != 0) {
			snprintf(why, len, "%s can be set only in the step at 0 s", plan_keys[idx].name);
			return -1;
		}
		for (int i = 0; i < st->n; i++) {
			if (st->key[i] == idx) {
				snprintf(why, len, "%s given twice", plan_keys[idx].name);
				return -1;
			}
		}
		st->key[st->n] = idx;
		st->v[st->n++] = v;
	}
	if (st->n == 0) {
		snprintf(why, len, "a step with no setting");
		return -1;
	}
	return 0;
}

static int cmp_step(const void *a, const void *b)
{
	const struct step *x = a, *y = b;

	if (x->at_ns != y->at_ns)
		return x->at_ns < y->at_ns ? -1 : 1;
	return x->line < y->line ? -1 : (x->line > y->line);
}

static int load(struct plan *pl, const char *path, struct sp_err *err)
{
	struct sim_kv_file f;
	bool format = false;
	char why[200];
	int rc = sim_kv_load(&f, path, err);

	if (rc < 0)
		return rc;
	snprintf(pl->source, sizeof(pl->source), "%s", path);
	pl->steps = calloc(f.n ? f.n : 1, sizeof(*pl->steps));
	if (!pl->steps) {
		sim_kv_release(&f);
		return sp_err_set(err, SP_ENOMEM, "out of memory");
	}
	for (size_t i = 0; i < f.n && rc == 0; i++) {
		const struct sim_kv *kv = &f.kv[i];

		if (!strcmp(kv->key, "PLAN_FORMAT")) {
			if (strcmp(kv->value, "1"))
				rc = sp_err_set(err, SP_ECORRUPT, "%s:%u: PLAN_FORMAT=%s: this build reads plan format %d",
						path, kv->line, kv->value, PLAN_FORMAT);
			format = true;
		} else if (!strcmp(kv->key, "PLAN_SOURCE")) {
			snprintf(pl->source, sizeof(pl->source), "%s", kv->value);
		} else if (!strcmp(kv->key, "STEP")) {
			pl->steps[pl->n].line = kv->line;
			if (parse_step(kv->value, &pl->steps[pl->n], why, sizeof(why)) < 0)
				rc = sp_err_set(err, SP_ECORRUPT, "%s:%u: STEP: %s", path, kv->line, why);
			pl->n++;
		} else if (!allowed_other_key(kv->key)) {
			rc = sp_err_set(err, SP_ECORRUPT, "%s:%u: unknown key %s (a plan has PLAN_FORMAT, PLAN_SOURCE, STEP)",
					path, kv->line, kv->key);
		}
	}
	if (rc == 0 && !format)
		rc = sp_err_set(err, SP_ECORRUPT, "%s: not a plan: PLAN_FORMAT=1 is missing", path);
	if (rc == 0 && pl->n == 0)
		rc = sp_err_set(err, SP_ECORRUPT, "%s: the plan has no STEP", path);
	sim_kv_release(&f);
	if (rc == 0)
		qsort(pl->steps, pl->n, sizeof(*pl->steps), cmp_step);
	return rc;
}

static void plan_destroy(void *st)
{
	struct plan *pl = st;

	if (pl)
		free(pl->steps);
	free(pl);
}

static int plan_create(void **out, const struct algo_params *p, const struct ctl_env *env,
		       struct sp_err *err)
{
	const char *path = env->text(env->arg, "plan");
	struct plan *pl;
	int rc;

	(void)p;
	if (!path || !*path)
		return sp_err_set(err, SP_EINVAL, "the plan policy needs a plan file (sim run: --ctl-set plan=FILE; samepaged: SAMEPAGE_PLAN)");
	pl = calloc(1, sizeof(*pl));
	if (!pl)
		return sp_err_set(err, SP_ENOMEM, "out of memory");
	pl->env = *env;
	rc = load(pl, path, err);
	/* Every tunable the plan sets must exist where it runs. */
	for (size_t i = 0; rc == 0 && i < pl->n; i++) {
		for (int k = 0; k < pl->steps[i].n; k++) {
			int key = pl->steps[i].key[k];

			if (key != K_RUN && isnan(env->get(env->arg, plan_keys[key].name))) {
				rc = sp_err_set(err, SP_EINVAL, "%s:%u: the plan sets %s, which %s does not have",
						path, pl->steps[i].line, plan_keys[key].name, env->target);
				break;
			}
		}
	}
	if (rc < 0) {
		plan_destroy(pl);
		return rc;
	}
	*out = pl;
	return 0;
}

static int plan_tick(void *st, uint64_t now_ns, const struct metrics *m, uint64_t *next_ns,
		     struct sp_err *err)
{
	struct plan *pl = st;
	const struct ctl_env *e = &pl->env;

	(void)m;
	for (; pl->next < pl->n && pl->steps[pl->next].at_ns <= now_ns; pl->next++) {
		const struct step *s = &pl->steps[pl->next];
		int run = -1;

		for (int k = 0; k < s->n; k++) {
			int rc;

			if (s->key[k] == K_RUN) {
				run = s->v[k] != 0;
				continue;
			}
			rc = e->set(e->arg, plan_keys[s->key[k]].name, s->v[k], err);
			if (rc < 0)
				return rc;
		}
		if (run >= 0)
			e->run(e->arg, run);
	}
	*next_ns = pl->next < pl->n ? pl->steps[pl->next].at_ns - now_ns : ALGO_SLEEP_FOREVER;
	return 0;
}

static const char *plan_source(const void *st)
{
	return ((const struct plan *)st)->source;
}

const struct ctl_ops ctl_plan = {
	.version = CTL_OPS_VERSION,
	.name = "plan",
	.description = "apply the settings, or the schedule of settings, that `sim plan` chose (a plan file: PLAN_FORMAT=1, STEP=\"SECONDS key=value ...\")",
	.params = NULL,
	.nparams = 0,
	.create = plan_create,
	.destroy = plan_destroy,
	.tick = plan_tick,
	.after_batch = NULL,
	.text_params = plan_text_params,
	.source = plan_source,
};
