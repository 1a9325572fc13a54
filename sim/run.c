/*
 * run.c - implements sim_run(): the simulated clock that interleaves a
 * trace's writes, an algorithm's scan batches and the metric samples.
 *
 * Events, in time order:
 *   snapshot  the next SNAP of the trace: its records are applied at its
 *             time (or, with spread_writes, read at the previous snapshot's
 *             time and queued at seeded uniform times in the interval up to
 *             its own);
 *   write     a queued record falls due (spread_writes only);
 *   batch     the algorithm's sleep is over; after it, the algorithm sleeps
 *             for the batch's modelled CPU time plus the sleep it asked for;
 *   control   the control policy's sleep is over (it may change tunables,
 *             stop or start scanning); it also runs after every batch.  It
 *             sees the simulated host of struct sim_host through struct
 *             ctl_env, as samepaged's policies see the real one;
 *   sample    every sample_ms from 0: the metrics are read and reported.
 * At equal times: writes, control, batch, sample.
 * Counting in full scans (sim_config.scans): a sample follows every batch
 * that completes a full scan instead, the run ends at the scans-th, and with
 * snapshot_scans snapshot i >= 1 falls due right after full scan
 * i x snapshot_scans (at that batch's time, before the next batch).
 * Without spread_writes the trace is streamed: memory does not grow with its
 * length.  With it, one snapshot's records are held at a time.
 *
 * Idle time (sim.h, README "Idle time").  After every batch the algorithm is
 * asked whether its state repeats (algo_ops.repeat): equal to the state at
 * an earlier batch but for work counters.  Two such cycles running with no
 * event but batches and samples since the first began, the same duration,
 * the same counted work and the same metrics (work counters grown alike,
 * everything else equal) make the run periodic until the next event: the
 * driver records the second cycle batch by batch, then jumps over as many
 * whole cycles as end before the next write, snapshot or the end, adding
 * n times the cycle's counted work to the backend and letting the
 * algorithm add its own (algo_ops.skip).  A sample inside the jump is the
 * recorded state after the last batch at or before its offset in the cycle,
 * plus its cycles' growth; the CPU time is recomputed from the counts, as
 * for any sample.  Without batches at all (an omniscient algorithm) the
 * metrics are constant to the next event.
 * Observer hooks (sim_config.hooks) may wrap the backend the algorithm sees
 * and see each record before it is applied; the tests drive every algorithm
 * through them (tests/algorithms/test_conformance.c).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <gsl/gsl_rng.h>

#include "sim.h"

#define NS_PER_MS 1000000ull
#define NEVER UINT64_MAX

struct queued {
	uint64_t t_ns;
	uint64_t seq; /* record order, to keep the sort stable */
	struct trace_record rec;
};

struct run {
	const struct sim_config *cfg;
	const struct trace_source *src;
	struct sim_mem *mem;
	const struct algo_ops *algo;
	void *st;
	bool omniscient;
	uint32_t hear;            /* the changes page_changed() is told of (algo_ops.hears) */
	struct sim_result *res;
	gsl_rng *rng;
	struct queued *q;
	size_t qlen, qpos, qcap;
	uint64_t prev_snap_ns;
	/* control */
	void *ctl_st;
	uint64_t guest_pages;     /* mergeable pages of all guests */
	uint32_t page_size;
	char target[80];          /* ctl_env.target */
	struct algo_params live;  /* the algorithm's tunables as they are now */
	bool running;             /* scanning (KSM run=1) */
	bool wake_pending;        /* run(true) asked for a batch now */
	uint64_t now;
	uint64_t stopped_since;   /* when scanning was stopped (valid while !running) */
	int p2s_idx, sleep_idx;   /* the tunables reported in sim_result (-1: none) */
	/* counting in full scans (cfg->scans) */
	int64_t scans_seen;       /* full_scans after the last batch */
	bool snap_due;            /* snapshot_scans: the next snapshot falls due now */
	bool scans_done;          /* the cfg->scans-th full scan is complete */
	/* idle fast-forward (sim_can_skip) */
	bool ff;
	uint64_t last_event;      /* time of the last write, snapshot or control tick */
	struct ffwd *fw;
};

/* The state after a batch, as a fast-forward needs it. */
struct ff_point {
	uint64_t t;                     /* the batch's start */
	uint64_t wake;                  /* the next batch's start, less t */
	struct metrics m;               /* read after the batch */
	uint64_t c[BK_COST__COUNT];     /* counted work after it */
};

/* A recorded cycle: the batches after its start, up to and including its end. */
struct ff_rec {
	uint64_t off;                   /* batch start less the cycle's start */
	struct metrics m;
	uint64_t c[BK_COST__COUNT];
};

#define FF_MAX_RECORDS (1u << 17) /* batches in a cycle the driver records (~28 MiB); longer: no skip */

struct ffwd {
	int phase;                      /* 0: no cycle; 1: one start seen (a); 2: a cycle a..b seen */
	struct ff_point a, b;
	struct ff_rec *rec;             /* phase 2: the batches after b */
	size_t nrec, caprec;
};

void sim_config_defaults(struct sim_config *c, const struct algo_ops *algo)
{
	memset(c, 0, sizeof(*c));
	c->algo = algo;
	if (algo)
		algo_params_defaults(algo, &c->params);
	c->seed = 1;
	c->tail_ms = 60000;
	c->sample_ms = 1000;
	sim_cost_defaults(&c->cost);
	algo_kernel_newest(&c->kernel);
	c->host.mem_mib = sim_host_params[0].def;
	c->host.used_mib = sim_host_params[1].def;
}

const struct algo_param sim_host_params[] = {
	{ "host_mem_mib", "simulated host: memory (MemTotal), MiB", 16384, 16, 1 << 30, true },
	{ "host_used_mib", "simulated host: memory used by other than the guests, MiB", 1024, 0, 1 << 30, true },
};
const uint32_t sim_host_nparams = sizeof(sim_host_params) / sizeof(sim_host_params[0]);

int sim_ctl_set(struct sim_config *cfg, const char *kv, struct sp_err *err)
{
	const char *eq = strchr(kv, '=');
	size_t klen = eq ? (size_t)(eq - kv) : 0;
	struct algo_ops host = { .name = "host", .params = sim_host_params, .nparams = sim_host_nparams };
	struct algo_params hv;
	char key[64];
	int rc;

	if (!eq || klen == 0 || klen >= sizeof(key))
		return sp_err_set(err, SP_EINVAL, "--ctl-set '%s': expected key=value", kv);
	memcpy(key, kv, klen);
	key[klen] = '\0';
	if (ctl_is_text_param(cfg->ctl, key)) {
		int i = 0;

		while (i < cfg->nctl_text && strcmp(cfg->ctl_text[i].name, key))
			i++;
		if (i == SIM_CTL_MAX_TEXT)
			return sp_err_set(err, SP_EINVAL, "more than %d text parameters", SIM_CTL_MAX_TEXT);
		if (i == cfg->nctl_text) {
			/* The name from the policy's table, which outlives kv's key. */
			for (const char *const *t = cfg->ctl->text_params; *t; t++) {
				if (!strcmp(*t, key))
					cfg->ctl_text[i].name = *t;
			}
			cfg->nctl_text++;
		}
		cfg->ctl_text[i].value = eq + 1;
		return 0;
	}
	if (algo_param_index(&host, key) >= 0) {
		hv.v[0] = cfg->host.mem_mib;
		hv.v[1] = cfg->host.used_mib;
		rc = algo_params_set(&host, &hv, kv, err);
		cfg->host.mem_mib = hv.v[0];
		cfg->host.used_mib = hv.v[1];
		return rc;
	}
	return ctl_params_set(cfg->ctl, &cfg->ctl_params, kv, err);
}

bool sim_metric_offered(const struct sim_config *cfg, int i, char *why, size_t len)
{
	/* Only the model of the kernel's KSM reports the kernel's sysfs counters. */
	if (!cfg->algo || strcmp(cfg->algo->name, "ksm") != 0 || i < 0 || i >= METRICS_COUNT)
		return true;
	return algo_kernel_offers(&cfg->kernel, metrics_names[i], why, len);
}

enum sim_huge sim_huge_for(const struct algo_ops *a, const struct algo_kernel *k)
{
	return (a->caps & ALGO_CAP_LINUX) && algo_kernel_has(k, AK_THP_ZERO_REMAP)
		       ? SIM_HUGE_SPLIT_ZERO
		       : SIM_HUGE_SPLIT;
}


/* The algorithm's page_changed() returned rc < 0. */
static int changed_failed(struct run *x, int rc, struct sp_err *err)
{
	return sp_err_set(err, rc, "%s: %s while handling a write", x->algo->name, sp_strerror(rc));
}

/* Applies rec, whose sim_mem_locate() is at and sim_mem_hash() hash (with the record hook). */
static int apply(struct run *x, const struct trace_record *rec, uint64_t at, uint64_t hash,
		 struct sp_err *err)
{
	bk_page p;
	uint32_t what;
	bool notify;
	int rc;

	if (x->cfg->hooks && x->cfg->hooks->record)
		x->cfg->hooks->record(x->cfg->hooks->arg, x->mem, rec);
	rc = sim_mem_apply_at(x->mem, rec, at, hash, &p, &what, &notify, err);
	if (rc < 0)
		return rc;
	x->res->records++;
	if ((what & x->hear) && (x->omniscient || notify)) {
		rc = x->algo->page_changed(x->st, p, what);
		if (rc < 0)
			return changed_failed(x, rc, err);
	}
	return 0;
}

/*
 * Records go through three stages, a batch of BATCH at a time: read and
 * their page and content slot prefetched (sim_mem_prefetch_batch(): the
 * batch's places and hashes first, then its prefetches back to back); a
 * batch later, the content entries those name (sim_mem_prefetch_more_batch);
 * a batch later again, applied one by one, in order.  Each stage runs over a
 * whole batch in one tight loop, so that the batch's cache misses are in
 * flight at once.
 * On this project's VM a prefetch of a random index line holds up the
 * instructions behind it (perf puts 45% of a 32M oracle replay's samples
 * right after it), so one prefetch a record, each behind a record's decoding
 * and applying, overlapped only a few deep (bench/README.md, issue 14,
 * seventeenth and eighteenth rounds).
 */
#define BATCH 16
_Static_assert(BATCH <= SIM_HINT_BATCH_MAX, "a batch is hinted in one call");

/* Up to max records: 1 to max, 0 at the snapshot's end, or an error (next_records()). */
static inline int read_records(const struct trace_source *src, struct trace_record *out,
			       unsigned max, struct sp_err *err)
{
	return src->next_records ? src->next_records(src->impl, out, max, err)
				 : src->next_record(src->impl, out, err);
}

/* Reads the current snapshot's records and applies each now (in order). */
static int apply_all(struct run *x, struct sp_err *err)
{
	struct trace_record ahead[3][BATCH];
	uint64_t at[3][BATCH], hash[3][BATCH]; /* each one's sim_mem_locate() and sim_mem_hash() */
	unsigned cnt[3] = { 0, 0, 0 };
	struct sp_err rerr = { 0 };
	int end = 1, rc;

	for (unsigned b = 0;; b = (b + 1) % 3) {
		unsigned mid = (b + 2) % 3, old = (b + 1) % 3; /* read one and two batches ago */
		unsigned n = 0;

		while (end > 0 && n < BATCH) {
			end = read_records(x->src, &ahead[b][n], BATCH - n, &rerr);
			n += end > 0 ? (unsigned)end : 0;
		}
		cnt[b] = n;
		sim_mem_prefetch_batch(x->mem, ahead[b], n, at[b], hash[b]);
		sim_mem_prefetch_more_batch(x->mem, ahead[mid], cnt[mid], at[mid], hash[mid]);
		if (x->cfg->hooks && x->cfg->hooks->record) {
			for (unsigned k = 0; k < cnt[old]; k++) {
				rc = apply(x, &ahead[old][k], at[old][k], hash[old][k], err);
				if (rc < 0)
					return rc;
			}
		} else if (cnt[old]) {
			unsigned applied;
			bool in_changed;

			rc = sim_mem_apply_batch(x->mem, ahead[old], cnt[old], at[old], hash[old],
						 x->omniscient, x->hear, x->algo->page_changed, x->st, &applied,
						 &in_changed, err);
			x->res->records += applied;
			if (rc < 0)
				return in_changed ? changed_failed(x, rc, err) : rc;
		}
		cnt[old] = 0;
		if (n == 0 && cnt[mid] == 0)
			break;
	}
	/* A read error comes after the records before it are applied, as if read one by one. */
	if (end < 0)
		return sp_err_set(err, end, "%s", rerr.msg);
	return 0;
}

/* a + b, or NEVER if that does not fit: the clock never wraps. */
static uint64_t sat_add(uint64_t a, uint64_t b)
{
	return a > NEVER - b ? NEVER : a + b;
}

/* Nanoseconds of a modelled CPU time, clamped below NEVER (a double beyond 2^64 does not convert). */
static uint64_t ns_of(double ns)
{
	return !(ns > 0) ? 0 : ns >= 9.2e18 ? (uint64_t)9.2e18 : (uint64_t)ns;
}

static int snapshot_time_ok(const struct trace_snapshot *s, struct sp_err *err)
{
	if (s->time_ms > SIM_MAX_MS)
		return sp_err_set(err, SP_ELIMIT, "snapshot %u at %llu ms is beyond the simulated clock "
				  "(at most %llu ms, about 292 years)", s->index,
				  (unsigned long long)s->time_ms, (unsigned long long)SIM_MAX_MS);
	return 0;
}

int sim_check_estimate(const struct sim_config *cfg, uint64_t last_ms, struct sp_err *err)
{
	uint64_t end_ms, samples, batches = 0;
	int si;

	if (last_ms > SIM_MAX_MS)
		return sp_err_set(err, SP_ELIMIT, "the last snapshot, at %llu ms, is beyond the simulated "
				  "clock (at most %llu ms, about 292 years)", (unsigned long long)last_ms,
				  (unsigned long long)SIM_MAX_MS);
	end_ms = cfg->duration_ms ? cfg->duration_ms : last_ms + cfg->tail_ms;
	if (end_ms > SIM_MAX_MS)
		return sp_err_set(err, SP_ELIMIT, "the run would end at %llu ms, beyond the simulated "
				  "clock (at most %llu ms)", (unsigned long long)end_ms,
				  (unsigned long long)SIM_MAX_MS);
	if (sim_can_skip(cfg))
		return 0; /* idle time is fast-forwarded: the length alone says nothing */
	samples = end_ms / cfg->sample_ms + 1;
	si = cfg->algo ? algo_param_index(cfg->algo, "sleep_millisecs") : -1;
	if (si >= 0 && !(cfg->algo->caps & ALGO_CAP_OMNISCIENT)) {
		double sleep = cfg->params.v[si] < 1 ? 1 : cfg->params.v[si];

		batches = (uint64_t)((double)end_ms / sleep);
	}
	if (samples > SIM_MAX_EVENTS || batches > SIM_MAX_EVENTS - samples)
		return sp_err_set(err, SP_ELIMIT, "the run would simulate %.4g s: %llu samples (one every "
				  "%llu ms) and about %llu scanner batches, more than the %llu a run may "
				  "take; shorten it (duration) or sample less often",
				  (double)end_ms / 1000, (unsigned long long)samples,
				  (unsigned long long)cfg->sample_ms, (unsigned long long)batches,
				  (unsigned long long)SIM_MAX_EVENTS);
	return 0;
}

static int cmp_queued(const void *a, const void *b)
{
	const struct queued *x = a, *y = b;

	if (x->t_ns != y->t_ns)
		return x->t_ns < y->t_ns ? -1 : 1;
	return x->seq < y->seq ? -1 : (x->seq > y->seq);
}

/* Reads the current snapshot's records: applies them now, or queues them spread out. */
static int take_snapshot(struct run *x, const struct trace_snapshot *s, struct sp_err *err)
{
	uint64_t t = s->time_ms * NS_PER_MS;
	struct trace_record rec;
	int rc;

	x->res->snapshots++;
	x->res->page_states += trace_header_total_pages(x->src->header(x->src->impl));
	if (!x->cfg->spread_writes || x->res->snapshots == 1) {
		rc = apply_all(x, err);
		x->prev_snap_ns = t;
		return rc;
	}
	x->qlen = x->qpos = 0;
	while ((rc = x->src->next_record(x->src->impl, &rec, err)) > 0) {
		if (x->qlen == x->qcap) {
			size_t cap = x->qcap ? x->qcap * 2 : 4096;
			struct queued *q = realloc(x->q, cap * sizeof(*q));

			if (!q)
				return sp_err_set(err, SP_ENOMEM, "out of memory queueing writes");
			x->q = q;
			x->qcap = cap;
		}
		/* Uniform in (prev, t]: never before the previous snapshot's state. */
		x->q[x->qlen].t_ns = t - (uint64_t)(gsl_rng_uniform(x->rng) * (double)(t - x->prev_snap_ns));
		x->q[x->qlen].seq = x->qlen;
		x->q[x->qlen].rec = rec;
		x->qlen++;
	}
	if (rc < 0)
		return rc;
	if (x->qlen > 1) /* no writes, no queue: qsort(NULL, 0) is undefined */
		qsort(x->q, x->qlen, sizeof(*x->q), cmp_queued);
	x->prev_snap_ns = t;
	return 0;
}

static void read_metrics(struct run *x, struct metrics *m)
{
	memset(m, 0, sizeof(*m));
	x->algo->metrics(x->st, m);
	sim_mem_metrics(x->mem, &x->cfg->cost, m);
}

/* ---- the control policy's environment (struct ctl_env) ----------------- */

static int act_set(void *arg, const char *name, double value, struct sp_err *err)
{
	struct run *x = arg;
	int idx = algo_param_index(x->algo, name);
	const struct algo_param *p;
	int rc;

	if (idx < 0)
		return sp_err_set(err, SP_EINVAL, "%s has no tunable '%s'", x->algo->name, name);
	if (!x->algo->set_param)
		return sp_err_set(err, SP_EINVAL, "%s cannot change tunables at run time", x->algo->name);
	p = &x->algo->params[idx];
	/* A policy asking beyond the range gets the nearest value allowed. */
	if (value < p->min)
		value = p->min;
	if (value > p->max)
		value = p->max;
	if (p->integer)
		value = (double)(int64_t)value;
	if (value == x->live.v[idx])
		return 0;
	rc = x->algo->set_param(x->st, (uint32_t)idx, value, err);
	if (rc == 0)
		x->live.v[idx] = value;
	return rc;
}

static double act_get(void *arg, const char *name)
{
	struct run *x = arg;
	int idx = algo_param_index(x->algo, name);

	return idx < 0 ? (double)NAN : x->live.v[idx];
}

static void act_run(void *arg, bool on)
{
	struct run *x = arg;

	if (on && !x->running) {
		x->wake_pending = true;
		x->res->stopped_ms += (x->now - x->stopped_since) / NS_PER_MS;
	} else if (!on && x->running) {
		x->stopped_since = x->now;
	}
	x->running = on;
}

static int env_host(void *arg, struct ctl_host *out, struct sp_err *err)
{
	struct run *x = arg;
	const struct sim_host *h = &x->cfg->host;
	struct metrics m;
	int64_t total, committed, backed, free_kib, present, on_zero, kib = x->page_size / 1024;

	(void)err;
	read_metrics(x, &m);
	memset(out, 0, sizeof(*out));
	sim_mem_usage(x->mem, &present, &on_zero);
	total = (int64_t)h->mem_mib * 1024;
	/*
	 * The guests' RSS, as ksmtuned sums the QEMU processes' `ps -o rsz`:
	 * every present page, a KSM page once per mapper, but not the pages
	 * mapping the zero page.  The frames they take: present pages less the
	 * pages saved.
	 */
	committed = (present - on_zero) * kib;
	backed = (present - metrics_saved(&m)) * kib;
	free_kib = total - (int64_t)h->used_mib * 1024 - backed;
	out->mem_total_kib = (uint64_t)total;
	out->mem_free_kib = free_kib > 0 ? (uint64_t)free_kib : 0;
	out->mem_available_kib = out->mem_free_kib;
	out->committed_kib = (uint64_t)committed;
	out->guests = x->src->header(x->src->impl)->nguests;
	out->page_size = x->page_size;
	return 0;
}

static const char *env_text(void *arg, const char *name)
{
	struct run *x = arg;

	for (int i = 0; i < x->cfg->nctl_text; i++) {
		if (!strcmp(x->cfg->ctl_text[i].name, name))
			return x->cfg->ctl_text[i].value;
	}
	return NULL;
}

/* The control policy's turn at t: it may change tunables, stop or start scanning. */
static int run_control(struct run *x, uint64_t t, uint64_t *ctl_wake, uint64_t *wake,
		       struct sp_err *err)
{
	struct metrics m;
	uint64_t next = 0;
	int rc;

	read_metrics(x, &m);
	x->wake_pending = false;
	rc = x->cfg->ctl->tick(x->ctl_st, t, &m, &next, err);
	*ctl_wake = next == ALGO_SLEEP_FOREVER ? NEVER : sat_add(t, next ? next : NS_PER_MS);
	if (!x->running)
		*wake = NEVER;
	else if (x->wake_pending && *wake > t)
		*wake = t;
	return rc;
}

/* One scan batch at t; *wake: when the next one starts. */
static int run_batch(struct run *x, uint64_t t, uint64_t *wake, struct sp_err *err)
{
	const struct sim_config *cfg = x->cfg;
	const uint64_t *c = sim_mem_counts(x->mem);
	uint64_t before[BK_COST__COUNT], sleep = 0, cpu;
	int rc;

	memcpy(before, c, sizeof(before));
	rc = x->algo->batch(x->st, t, &sleep);
	if (rc < 0)
		return sp_err_set(err, rc, "%s: %s in a scan batch", x->algo->name, sp_strerror(rc));
	/* the batch's own work: the same batch costs the same whenever it runs */
	for (int k = 0; k < BK_COST__COUNT; k++)
		before[k] = c[k] - before[k];
	cpu = ns_of(sim_cost_scanner_ns(&cfg->cost, before));
	if (sleep == ALGO_SLEEP_FOREVER)
		*wake = NEVER;
	else if (x->algo->version >= 2 && x->algo->wake_at)
		*wake = x->algo->wake_at(x->st, sat_add(t, cpu), sleep);
	else
		*wake = sat_add(sat_add(t, cpu), sleep);
	if (*wake <= t)
		*wake = sat_add(t, NS_PER_MS); /* a batch that took no time and asked no sleep */
	if (x->ctl_st && cfg->ctl->after_batch) {
		struct metrics m;

		read_metrics(x, &m);
		rc = cfg->ctl->after_batch(x->ctl_st, sat_add(t, cpu), &m, err);
	}
	if (!x->running)
		*wake = NEVER;
	return rc;
}

/* The metrics sample at t, reported to sample(). */
static int report_sample(struct run *x, uint64_t t, const struct metrics *mp, uint64_t end,
			 sim_sample_fn sample, sim_progress_fn progress, void *arg, struct sp_err *err)
{
	const struct metrics m = *mp;
	int64_t saved;

	saved = metrics_saved(&m);
	if (saved > x->res->peak_saved)
		x->res->peak_saved = saved;
	x->res->last = m;
	x->res->end_ms = t / NS_PER_MS;
	x->res->tunables.run = x->running;
	x->res->tunables.pages_to_scan = x->p2s_idx < 0 ? -1 : (int64_t)x->live.v[x->p2s_idx];
	x->res->tunables.sleep_millisecs = x->sleep_idx < 0 ? -1 : (int64_t)x->live.v[x->sleep_idx];
	if (sample && sample(arg, t / NS_PER_MS, &m) != 0)
		return sp_err_set(err, SP_EIO, "stopped while writing a sample");
	if (progress)
		progress(arg, t / NS_PER_MS, end == NEVER ? 0 : end / NS_PER_MS);
	return 0;
}

static int run_sample(struct run *x, uint64_t t, uint64_t end, sim_sample_fn sample,
		      sim_progress_fn progress, void *arg, struct sp_err *err)
{
	struct metrics m;

	read_metrics(x, &m);
	return report_sample(x, t, &m, end, sample, progress, arg, err);
}

/* ---- idle fast-forward --------------------------------------------------- */

bool sim_can_skip(const struct sim_config *cfg)
{
	const struct algo_ops *a = cfg->algo;

	return !cfg->no_skip && !cfg->ctl && !cfg->scans && a &&
	       ((a->version >= 3 && a->repeat && a->skip) || (a->caps & ALGO_CAP_OMNISCIENT));
}

/* Work counters: they grow by the same amount every cycle.  Every other metric must not change. */
static bool ff_linear(int i)
{
	const char *n = metrics_names[i];

	return !strcmp(n, "full_scans") || !strcmp(n, "pages_scanned") ||
	       !strcmp(n, "pages_skipped") || !strcmp(n, "checksums") || !strcmp(n, "compares") ||
	       !strcmp(n, "cpu_ns");
}

static void metrics_set(struct metrics *m, int i, int64_t v)
{
	int64_t *f = (int64_t *)(void *)m; /* struct metrics is METRICS_COUNT int64_t in order */

	f[i] = v;
}

static void ff_point_take(struct run *x, struct ff_point *p, uint64_t t, uint64_t wake)
{
	p->t = t;
	p->wake = wake - t;
	read_metrics(x, &p->m);
	memcpy(p->c, sim_mem_counts(x->mem), sizeof(p->c));
}

/*
 * Whether the cycle a..b and the recorded one b..now (ending in *e) are
 * alike: same duration and wake, same counted work, work counters grown
 * alike and every other metric equal, at the three ends and (savings) at
 * every batch of the recorded cycle.
 */
static bool ff_alike(const struct ffwd *f, const struct ff_point *e)
{
	const struct ff_point *a = &f->a, *b = &f->b;
	int64_t saved = metrics_saved(&e->m);

	if (e->t - b->t != b->t - a->t || e->wake != b->wake || b->wake != a->wake)
		return false;
	for (int k = 0; k < BK_COST__COUNT; k++) {
		if (e->c[k] - b->c[k] != b->c[k] - a->c[k])
			return false;
	}
	for (int i = 0; i < METRICS_COUNT; i++) {
		int64_t va = metrics_get(&a->m, i), vb = metrics_get(&b->m, i), ve = metrics_get(&e->m, i);

		if (ff_linear(i) ? ve - vb != vb - va || ve < vb : ve != vb || vb != va)
			return false;
	}
	for (size_t r = 0; r < f->nrec; r++) {
		if (metrics_saved(&f->rec[r].m) != saved)
			return false;
	}
	return true;
}

/* The metrics at y ns after the last recorded batch (now), in the repeating cycles ahead. */
static void ff_metrics_at(const struct run *x, const struct ff_point *e, uint64_t y,
			  struct metrics *out)
{
	const struct ffwd *f = x->fw;
	uint64_t d = e->t - f->b.t, q, r, c[BK_COST__COUNT];
	const struct metrics *m;
	const uint64_t *cb;
	size_t lo = 0, hi = f->nrec;

	if (y == 0) {
		*out = e->m;
		return;
	}
	q = (y - 1) / d + 1;    /* cycles ahead, counting the one y falls in */
	r = y - (q - 1) * d;    /* offset in it, 1..d */
	while (lo < hi) {       /* the last batch at or before r */
		size_t mid = lo + (hi - lo) / 2;

		if (f->rec[mid].off <= r)
			lo = mid + 1;
		else
			hi = mid;
	}
	m = lo ? &f->rec[lo - 1].m : &f->b.m;
	cb = lo ? f->rec[lo - 1].c : f->b.c;
	*out = *m;
	for (int i = 0; i < METRICS_COUNT; i++) {
		if (ff_linear(i))
			metrics_set(out, i, metrics_get(m, i) +
						    (int64_t)q * (metrics_get(&e->m, i) - metrics_get(&f->b.m, i)));
	}
	for (int k = 0; k < BK_COST__COUNT; k++)
		c[k] = cb[k] + q * (e->c[k] - f->b.c[k]);
	/* as sim_mem_metrics() computes them from the counts */
	out->checksums = (int64_t)c[BK_COST_CHECKSUM];
	out->compares = (int64_t)c[BK_COST_COMPARE];
	out->cpu_ns = (int64_t)sim_cost_scanner_ns(&x->cfg->cost, c);
}

struct ff_out {
	sim_sample_fn sample;
	sim_progress_fn progress;
	void *arg;
	uint64_t end;
};

/*
 * Reports the samples due from *next_sample to last (inclusive), thinned to
 * SIM_SKIP_ROWS; metrics: e and y = t - e->t for a cycle jump, or constant
 * (e NULL: cm).  *next_sample moves past last.
 */
static int ff_samples(struct run *x, const struct ff_point *e, const struct metrics *cm,
		      uint64_t *next_sample, uint64_t last, const struct ff_out *o, struct sp_err *err)
{
	uint64_t step = x->cfg->sample_ms * NS_PER_MS, n, k;
	int rc = 0;

	if (*next_sample > last)
		return 0;
	n = (last - *next_sample) / step + 1;
	k = (n + SIM_SKIP_ROWS - 1) / SIM_SKIP_ROWS;
	/* j: 0, k, 2k, ... and n - 1 */
	for (uint64_t j = 0; j < n && rc == 0; j = j + k < n || j == n - 1 ? j + k : n - 1) {
		uint64_t t = *next_sample + j * step;
		struct metrics m;

		if (e)
			ff_metrics_at(x, e, t - e->t, &m);
		else
			m = *cm;
		rc = report_sample(x, t, &m, o->end, o->sample, o->progress, o->arg, err);
	}
	*next_sample = sat_add(*next_sample, n * step);
	return rc;
}

/* Appends the batch p to the recorded cycle (which starts at f->b). */
static int ff_record(struct ffwd *f, const struct ff_point *p, struct sp_err *err)
{
	struct ff_rec *r;

	if (f->nrec == f->caprec) {
		size_t cap = f->caprec ? f->caprec * 2 : 256;

		r = realloc(f->rec, cap * sizeof(*r));
		if (!r)
			return sp_err_set(err, SP_ENOMEM, "out of memory recording a cycle");
		f->rec = r;
		f->caprec = cap;
	}
	r = &f->rec[f->nrec++];
	r->off = p->t - f->b.t;
	r->m = p->m;
	memcpy(r->c, p->c, sizeof(r->c));
	return 0;
}

/*
 * After a batch at t (the next at *wake): follows the algorithm's cycles
 * and, two alike in a row, jumps over the whole cycles that end before
 * limit (the next event other than a batch or a sample, or the end + 1).
 */
static int ff_after_batch(struct run *x, uint64_t t, uint64_t *wake, uint64_t *next_sample,
			  uint64_t limit, const struct ff_out *o, struct sp_err *err)
{
	struct ffwd *f = x->fw;
	struct ff_point e;
	uint64_t since = 0, d, n;
	int rc;

	if (*wake == NEVER)
		return 0;
	if (!x->algo->repeat(x->st, limit == NEVER ? NEVER : limit - t, &since)) {
		if (f->phase == 2) {
			struct ff_point p;

			if (f->nrec == FF_MAX_RECORDS) {
				f->phase = 0; /* a cycle too long to record */
				return 0;
			}
			ff_point_take(x, &p, t, *wake);
			return ff_record(f, &p, err);
		}
		return 0;
	}
	ff_point_take(x, &e, t, *wake);
	if (f->phase == 0 || since != (f->phase == 1 ? f->a.t : f->b.t) || x->last_event > f->a.t) {
		f->a = e; /* a new cycle starts here */
		f->phase = 1;
		return 0;
	}
	if (f->phase == 1) {
		f->b = e;
		f->nrec = 0;
		f->phase = 2;
		return 0;
	}
	if (!ff_alike(f, &e)) {
		f->a = f->b;
		f->b = e;
		f->nrec = 0;
		return 0;
	}
	d = t - f->b.t;
	rc = ff_record(f, &e, err); /* the record ends with this batch, the cycle's end */
	if (rc < 0)
		return rc;
	/* whole cycles whose last batch comes before limit */
	n = limit <= t ? 0 : (limit - 1 - t) / d;
	f->phase = 0;
	if (n == 0)
		return 0;
	rc = ff_samples(x, &e, NULL, next_sample, t + n * d, o, err);
	if (rc < 0)
		return rc;
	{
		uint64_t delta[BK_COST__COUNT];

		for (int k = 0; k < BK_COST__COUNT; k++)
			delta[k] = e.c[k] - f->b.c[k];
		sim_mem_add_counts(x->mem, delta, n);
	}
	x->algo->skip(x->st, n, d);
	x->now = t + n * d;
	*wake = sat_add(*wake, n * d);
	x->res->skipped_ns += n * d;
	x->res->skipped_cycles += n;
	return 0;
}

/*
 * Counting in full scans, after a batch at t: a sample if it completed a full
 * scan, the end at the last one, and the next snapshot due if its scan came.
 */
static int after_scan(struct run *x, uint64_t t, uint64_t end, bool have_snap,
		      sim_sample_fn sample, sim_progress_fn progress, void *arg, struct sp_err *err)
{
	const struct sim_config *cfg = x->cfg;
	struct metrics m;
	int rc;

	read_metrics(x, &m);
	if (m.full_scans <= x->scans_seen)
		return 0;
	x->scans_seen = m.full_scans;
	rc = run_sample(x, t, end, sample, progress, arg, err);
	if (rc < 0)
		return rc;
	if ((uint64_t)x->scans_seen >= cfg->scans)
		x->scans_done = true;
	else if (have_snap && cfg->snapshot_scans &&
		 (uint64_t)x->scans_seen >= x->res->snapshots * cfg->snapshot_scans)
		x->snap_due = true;
	return 0;
}

static int loop(struct run *x, sim_sample_fn sample, sim_progress_fn progress, void *arg,
		struct sp_err *err)
{
	const struct sim_config *cfg = x->cfg;
	uint64_t end = cfg->duration_ms ? cfg->duration_ms * NS_PER_MS : NEVER; /* both <= SIM_MAX_MS */
	uint64_t wake = 0, next_sample = cfg->scans ? NEVER : 0, sample_ns = cfg->sample_ms * NS_PER_MS;
	uint64_t ctl_wake = x->ctl_st ? 0 : NEVER;
	struct ff_out fo = { sample, progress, arg, 0 };
	struct trace_snapshot s;
	bool have_snap;
	int rc;

	rc = x->src->next_snapshot(x->src->impl, &s, err);
	if (rc < 0)
		return rc;
	if (rc == 0)
		return sp_err_set(err, SP_ECORRUPT, "the trace has no snapshot");
	rc = snapshot_time_ok(&s, err);
	if (rc < 0)
		return rc;
	have_snap = true;
	for (;;) {
		/*
		 * A snapshot is read when the clock reaches its time; with spread
		 * writes, at the start of its interval (the previous snapshot's
		 * time), since its writes are spread over that interval.
		 */
		uint64_t t_snap = !have_snap ? NEVER
				  : cfg->snapshot_scans && x->res->snapshots ? (x->snap_due ? x->now : NEVER)
				  : cfg->spread_writes && x->res->snapshots ? x->prev_snap_ns
									 : s.time_ms * NS_PER_MS;
		uint64_t t_write = x->qpos < x->qlen ? x->q[x->qpos].t_ns : NEVER;
		uint64_t t = t_snap, limit;

		if (t_write < t)
			t = t_write;
		if (ctl_wake < t)
			t = ctl_wake;
		if (wake < t)
			t = wake;
		if (next_sample < t)
			t = next_sample;
		if (t > end || t == NEVER)
			break;
		x->now = t;
		/* the next event that changes memory or tunables, or the end + 1: where idle time stops */
		limit = t_snap < t_write ? t_snap : t_write;
		if (ctl_wake < limit)
			limit = ctl_wake;
		if (end < limit)
			limit = end + 1; /* end < NEVER here */
		fo.end = end;
		if (t == t_write) {
			x->last_event = t;
			const struct trace_record *rec = &x->q[x->qpos++].rec;

			rc = apply(x, rec, sim_mem_locate(x->mem, rec), sim_mem_hash(x->mem, rec), err);
		} else if (t == t_snap) {
			x->last_event = t;
			x->snap_due = false;
			rc = take_snapshot(x, &s, err);
			if (rc == 0) {
				rc = x->src->next_snapshot(x->src->impl, &s, err);
				have_snap = rc > 0;
				if (rc > 0)
					rc = snapshot_time_ok(&s, err);
				/* the run lasts until tail_ms after the LAST snapshot, whatever the gaps */
				if (rc == 0 && !have_snap && !cfg->duration_ms && !cfg->scans)
					end = sat_add(x->prev_snap_ns, cfg->tail_ms * NS_PER_MS);
				rc = rc < 0 ? rc : 0;
			}
		} else if (t == ctl_wake) {
			x->last_event = t;
			rc = run_control(x, t, &ctl_wake, &wake, err);
		} else if (t == wake) {
			rc = run_batch(x, t, &wake, err);
			if (rc == 0 && x->ff && x->fw)
				rc = ff_after_batch(x, t, &wake, &next_sample, limit, &fo, err);
			if (rc == 0 && cfg->scans)
				rc = after_scan(x, t, end, have_snap, sample, progress, arg, err);
			if (x->scans_done)
				break;
		} else if (x->ff && wake == NEVER && limit - 1 > t) {
			/* no batch before the next event: every sample until then is this one */
			struct metrics m;

			read_metrics(x, &m);
			rc = ff_samples(x, NULL, &m, &next_sample, limit - 1, &fo, err);
			if (limit - 1 - t > sample_ns)
				x->res->skipped_ns += limit - 1 - t;
		} else {
			rc = run_sample(x, t, end, sample, progress, arg, err);
			next_sample = sat_add(next_sample, sample_ns);
		}
		if (rc < 0)
			return rc;
	}
	if (cfg->scans && !x->scans_done)
		return sp_err_set(err, SP_EINVAL, "only %lld of the %llu full scans asked for in the %.1f s "
				  "simulated (raise the duration)", (long long)x->scans_seen,
				  (unsigned long long)cfg->scans, (double)(end / NS_PER_MS) / 1000);
	return 0;
}

int sim_run(const char *trace_path, const struct sim_config *cfg, sim_sample_fn sample,
	    sim_progress_fn progress, void *arg, struct sim_result *out, struct sp_err *err)
{
	struct trace_reader *r;
	struct trace_source src;
	struct trace_summary sum;
	struct sim_layout lay;
	struct sim_config c = *cfg;
	bool summary;
	int rc;

	memset(out, 0, sizeof(*out));
	/*
	 * The layout first (layout.c): from a version-2 trace's summary when it
	 * serves, else by a pass that checks the whole file to its END chunk, as
	 * `trace check` and `compare` do.  Either way a corrupt tail is refused,
	 * whatever the duration: after the pass, before any work; with the
	 * summary, by the replay's reading on to END (below), before any result.
	 * Then the trace is replayed, streamed.
	 */
	rc = trace_reader_open(&r, trace_path, err);
	if (rc < 0)
		return rc;
	rc = trace_reader_summary(r, &sum, err);
	if (rc > 0) {
		rc = sim_layout_from_summary(&lay, trace_reader_header(r), &sum, err);
		free(sum.complete);
	}
	summary = rc > 0;
	if (rc == 0) {
		src = trace_reader_source(r);
		rc = sim_layout_scan(&lay, &src, err);
		trace_reader_close(r);
		r = NULL;
		if (rc == 0)
			rc = trace_reader_open(&r, trace_path, err);
		if (rc < 0)
			sim_layout_release(&lay); /* (a failed scan released it: a no-op then) */
	}
	if (rc < 0) {
		trace_reader_close(r);
		return rc;
	}
	src = trace_reader_source(r);
	c.layout = &lay;
	rc = sim_run_source(&src, &c, sample, progress, arg, out, err);
	if (rc == 0 && summary) {
		/* the rest of the file, checked as the pass would have: no result from a corrupt trace */
		struct trace_snapshot s;

		while ((rc = trace_reader_next_snapshot(r, &s, err)) > 0)
			;
	}
	if ((rc == SP_ECORRUPT || rc == SP_ELIMIT || rc == SP_ETRUNC) && err && err->code == rc &&
	    !strstr(err->msg, trace_path)) {
		/* a failure the trace caused, named by its file (the reader's own errors already are) */
		char msg[sizeof(err->msg)];

		snprintf(msg, sizeof(msg), "%s", err->msg);
		sp_err_clear(err);
		sp_err_set(err, rc, "%s: %s", trace_path, msg);
	}
	trace_reader_close(r);
	sim_layout_release(&lay);
	return rc;
}

/* A configuration the run can take: an algorithm that keeps the contract, times in range, a sane size. */
static int run_config_check(const struct sim_config *cfg, struct sp_err *err)
{
	int rc;

	if (cfg->sample_ms == 0)
		return sp_err_set(err, SP_EINVAL, "sim_run: a zero sample interval");
	if ((cfg->snapshot_scans && !cfg->scans) || (cfg->scans && !cfg->duration_ms))
		return sp_err_set(err, SP_EINVAL, "sim_run: snapshots by full scans need a number of "
				  "scans, and counting scans a duration");
	rc = algo_check(cfg->algo, err);
	if (rc < 0)
		return rc;
	if (cfg->duration_ms > SIM_MAX_MS || cfg->tail_ms > SIM_MAX_MS || cfg->sample_ms > SIM_MAX_MS)
		return sp_err_set(err, SP_EINVAL, "duration, tail and sample interval must be at most "
				  "%llu ms (the simulated clock's range)", (unsigned long long)SIM_MAX_MS);
	if (cfg->layout) {
		rc = sim_check_estimate(cfg, cfg->layout->last_ms, err);
		if (rc < 0)
			return rc;
	}
	if (cfg->ctl && strcmp(cfg->ctl->name, "advisor") == 0) {
		char why[256];

		if (!algo_kernel_offers(&cfg->kernel, "advisor", why, sizeof(why)))
			return sp_err_set(err, SP_EINVAL, "--controller advisor: %s", why);
	}
	return 0;
}

/* The control policy, created over the run's environment (the algorithm is destroyed if it fails). */
static int start_controller(struct run *x, const struct algo_env *env, struct sp_err *err)
{
	const struct sim_config *cfg = x->cfg;
	struct ctl_env cenv = {
		.target = x->target,
		.set = act_set,
		.get = act_get,
		.run = act_run,
		.host = env_host,
		.text = env_text,
		.arg = x,
		.ctx = cfg->ctl_ctx,
	};
	int rc;

	x->guest_pages = env->bk.ops->npages(env->bk.impl);
	x->page_size = env->bk.ops->page_size(env->bk.impl);
	snprintf(x->target, sizeof(x->target), "the algorithm '%s'", cfg->algo->name);
	if (cfg->ctl->version < 1 || cfg->ctl->version > CTL_OPS_VERSION || !cfg->ctl->create ||
	    !cfg->ctl->tick || !cfg->ctl->destroy)
		rc = sp_err_set(err, SP_EINVAL, "control policy '%s' does not implement the contract",
				cfg->ctl->name);
	else
		rc = cfg->ctl->create(&x->ctl_st, &cfg->ctl_params, &cenv, err);
	if (rc < 0)
		cfg->algo->destroy(x->st);
	return rc;
}

int sim_run_source(const struct trace_source *src, const struct sim_config *cfg,
		   sim_sample_fn sample, sim_progress_fn progress, void *arg,
		   struct sim_result *out, struct sp_err *err)
{
	struct run x = { .cfg = cfg, .algo = cfg->algo, .res = out, .src = src };
	struct algo_env env = { 0 };
	int rc = 0;

	memset(out, 0, sizeof(*out));
	rc = run_config_check(cfg, err);
	if (rc < 0)
		return rc;
	x.ff = sim_can_skip(cfg);
	x.omniscient = cfg->algo->caps & ALGO_CAP_OMNISCIENT;
	out->page_size = src->header(src->impl)->page_size;
	rc = sim_mem_new_layout(&x.mem, src->header(src->impl), cfg->layout, err);
	if (rc == 0)
		sim_mem_set_huge(x.mem, sim_huge_for(cfg->algo, &cfg->kernel));
	if (rc == 0) {
		x.rng = gsl_rng_alloc(gsl_rng_mt19937);
		if (!x.rng)
			rc = sp_err_set(err, SP_ENOMEM, "out of memory");
		else
			gsl_rng_set(x.rng, (unsigned long)cfg->seed);
	}
	if (rc == 0 && x.ff && !(cfg->algo->caps & ALGO_CAP_OMNISCIENT)) {
		x.fw = calloc(1, sizeof(*x.fw));
		if (!x.fw)
			rc = sp_err_set(err, SP_ENOMEM, "out of memory");
	}
	if (rc == 0) {
		env.bk = sim_mem_backend(x.mem);
		if (cfg->hooks && cfg->hooks->backend)
			env.bk = cfg->hooks->backend(cfg->hooks->arg, x.mem, env.bk);
		env.seed = cfg->seed;
		env.kernel = &cfg->kernel;
		rc = cfg->algo->create(&x.st, &cfg->params, &env, err);
	}
	x.hear = rc == 0 && cfg->algo->version >= 4 && cfg->algo->hears ? cfg->algo->hears(x.st)
									  : ~0u;
	x.running = true;
	x.live = cfg->params;
	x.p2s_idx = algo_param_index(cfg->algo, "pages_to_scan");
	x.sleep_idx = algo_param_index(cfg->algo, "sleep_millisecs");
	if (rc == 0 && cfg->ctl)
		rc = start_controller(&x, &env, err);
	if (rc == 0) {
		rc = loop(&x, sample, progress, arg, err);
		if (!x.running && out->end_ms * NS_PER_MS > x.stopped_since)
			out->stopped_ms += (out->end_ms * NS_PER_MS - x.stopped_since) / NS_PER_MS;
		if (x.ctl_st)
			cfg->ctl->destroy(x.ctl_st);
		cfg->algo->destroy(x.st);
	}
	if (x.rng)
		gsl_rng_free(x.rng);
	free(x.q);
	if (x.fw)
		free(x.fw->rec);
	free(x.fw);
	sim_mem_free(x.mem);
	return rc;
}
