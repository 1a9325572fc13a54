/*
 * samepage.c - implements the samepage library (real/samepage.h): regions
 * registered by the application, a live backend over them (real/live.c) and
 * an engine thread (real/engine.c) running the chosen algorithm.
 *
 * Invariants.
 *   - Regions can be added only while stopped and before the first start:
 *     the backend's page numbering is fixed when it is created.
 *   - L and e exist together from the first start until samepage_free();
 *     after a stop without unmerge the frames stay mapped (copy-on-write)
 *     and the backend keeps their bookkeeping, so a restart goes on from
 *     there.
 */
#include <stdlib.h>
#include <string.h>

#include "algorithm.h"
#include "engine.h"
#include "live.h"
#include "samepage.h"

struct samepage {
	struct real_live_region *reg;
	uint32_t nreg, capreg;
	const struct algo_ops *algo;
	struct algo_params params;
	struct real_live *L;
	struct real_engine *e;
	bool running;
};

int samepage_new(struct samepage **out, struct sp_err *err)
{
	struct samepage *s = calloc(1, sizeof(*s));

	*out = NULL;
	if (!s)
		return sp_err_set(err, SP_ENOMEM, "out of memory");
	s->algo = algo_find("ksm");
	if (!s->algo) {
		free(s);
		return sp_err_set(err, SP_ENOTSUP, "this build has no ksm algorithm");
	}
	algo_params_defaults(s->algo, &s->params);
	*out = s;
	return 0;
}

void samepage_free(struct samepage *s)
{
	if (!s)
		return;
	if (s->running)
		samepage_stop(s, false, NULL);
	real_engine_free(s->e);
	real_live_free(s->L);
	free(s->reg);
	free(s);
}

int samepage_register(struct samepage *s, void *addr, size_t len, int node_hint,
		      uint32_t domain, struct sp_err *err)
{
	if (s->L)
		return sp_err_set(err, SP_EINVAL, "regions can only be registered before the first start");
	if (s->nreg == s->capreg) {
		uint32_t cap = s->capreg ? s->capreg * 2 : 8;
		struct real_live_region *r = realloc(s->reg, cap * sizeof(*r));

		if (!r)
			return sp_err_set(err, SP_ENOMEM, "out of memory");
		s->reg = r;
		s->capreg = cap;
	}
	s->reg[s->nreg] = (struct real_live_region){ addr, len, s->nreg, domain, node_hint };
	s->nreg++;
	return 0;
}

int samepage_set_algorithm(struct samepage *s, const char *name, struct sp_err *err)
{
	const struct algo_ops *a = algo_find(name);

	if (s->L)
		return sp_err_set(err, SP_EINVAL, "the algorithm can only be chosen before the first start");
	if (!a)
		return sp_err_set(err, SP_EINVAL, "unknown algorithm '%s'", name);
	if (a->caps & ALGO_CAP_OMNISCIENT)
		return sp_err_set(err, SP_EINVAL, "algorithm '%s' is simulation only", name);
	s->algo = a;
	algo_params_defaults(a, &s->params);
	return 0;
}

int samepage_set(struct samepage *s, const char *kv, struct sp_err *err)
{
	struct algo_params p = s->params;
	int rc = algo_params_set(s->algo, &p, kv, err);
	const char *eq;
	char key[64];
	int idx;

	if (rc < 0)
		return rc;
	if (!s->e) {
		s->params = p;
		return 0;
	}
	eq = strchr(kv, '=');
	if (!eq || (size_t)(eq - kv) >= sizeof(key))
		return sp_err_set(err, SP_EINVAL, "'%s' is not key=value", kv);
	memcpy(key, kv, (size_t)(eq - kv));
	key[eq - kv] = '\0';
	idx = algo_param_index(s->algo, key);
	rc = real_engine_set(s->e, key, p.v[idx], err);
	if (rc == 0)
		s->params = p;
	return rc;
}

int samepage_start(struct samepage *s, struct sp_err *err)
{
	int rc;

	if (s->running)
		return sp_err_set(err, SP_EINVAL, "already running");
	if (!s->L) {
		struct real_live_config lc = { 0 };
		struct real_engine_config ec = { 0 };
		int across = algo_param_index(s->algo, "merge_across_nodes");
		int track = algo_param_index(s->algo, "write_tracking");

		lc.strict_nodes = across >= 0 && s->params.v[across] == 0;
		lc.track_writes = track >= 0 && s->params.v[track] != 0;
		rc = real_live_new(&s->L, s->reg, s->nreg, &lc, err);
		if (rc < 0)
			return rc;
		ec.algo = s->algo;
		ec.params = s->params;
		ec.seed = 1;
		rc = real_engine_new(&s->e, s->L, &ec, err);
		if (rc < 0) {
			real_live_free(s->L);
			s->L = NULL;
			return rc;
		}
	}
	rc = real_engine_start(s->e, err);
	if (rc == 0)
		s->running = true;
	return rc;
}

static int unmerged_cb(void *arg, bk_page p, uint32_t what)
{
	return real_engine_page_changed(arg, p, what);
}

int samepage_stop(struct samepage *s, bool unmerge, struct sp_err *err)
{
	int rc = 0;

	if (s->running) {
		rc = real_engine_stop(s->e, err);
		s->running = false;
	}
	if (unmerge && s->L) {
		int rc2 = real_live_unmerge_all(s->L, unmerged_cb, s->e);

		if (rc2 < 0 && rc == 0)
			rc = sp_err_set(err, rc2, "unmerging: %s", sp_strerror(rc2));
	}
	return rc;
}

int samepage_read(struct samepage *s, struct samepage_stats *out, struct sp_err *err)
{
	struct real_live_stats ls;
	int rc;

	memset(out, 0, sizeof(*out));
	for (uint32_t i = 0; i < s->nreg; i++)
		out->registered_pages += s->reg[i].len / 4096;
	if (!s->e)
		return 0;
	real_engine_metrics(s->e, &out->m);
	out->cpu_ns = out->m.cpu_ns;
	real_engine_lock(s->e);
	real_live_stats(s->L, &ls);
	out->registered_pages = (uint64_t)real_live_backend(s->L).ops->npages(s->L);
	rc = real_live_measured_rss(s->L, &out->measured_rss_bytes, err);
	real_engine_unlock(s->e);
	out->frames = ls.frames;
	out->map_limit_refusals = ls.map_limit_refusals;
	return rc;
}
