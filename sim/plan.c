/*
 * plan.c - implements the planner (plan.h): the search over KSM's tunables
 * and the control policies, the choice, the overcommit and swap answer, the
 * NUMA comparison and the samepaged configuration.
 *
 * Search.  Fixed settings live on a lattice: pages_to_scan = 16 * 2^(i/4)
 * (i = 0..40: 16 .. 16384) and sleep_millisecs = 10 * 2^(j/4) (j = 0..24:
 * 10 .. 640 ms), rounded to integers.
 *  1. Coarse grid: i in steps of 8, j in steps of 8, use_zero_pages 0 and
 *     1, the other tunables at the kernel's defaults.  It runs level by
 *     level of i (rising scan rate); a lane (j, use_zero_pages) stops
 *     rising once it spends more than 2x the CPU budget: scanning faster
 *     only costs more (CPU grows with the rate; savings saturate).
 *  2. Refinement, three rounds with steps 4, 2, 1: around the seeds - the
 *     three best feasible points (by the choice's order), the two settled
 *     points that save more than the best feasible one but cost more CPU
 *     than the budget (the optimum lies on the budget's edge between them),
 *     and, while nothing is feasible, the two that save most within the
 *     budget - the 8 lattice neighbours at that step.  The first round also
 *     flips smart_scan, use_zero_pages, merge_across_nodes (several nodes)
 *     and max_page_sharing (256 <-> 2048) of the two best seeds.
 *  3. Policies with the best fixed point's other tunables: ksmtuned (the
 *     host given; and with a 10 s monitor interval) and advisor (defaults;
 *     advisor_max_cpu = the budget; and a 30 s target scan time).
 * Points are deduplicated, so a round costs only what is new.  Measured
 * (tests/sim/test_plan.c, 20 s horizons): 130-150 simulations per sample,
 * against 213-530 for the factor-2 lattice within the budget that
 * sim_plan_exhaustive() runs - which covers neither the finer steps nor
 * max_page_sharing - and the pick is within 2% of that lattice's best
 * (at or above it on all three).  No GSL optimiser is used: the
 * objective is a step function (a full scan does or does not finish in
 * time), where derivative-free simplex methods stall on flat plateaus.
 *
 * Choice: feasible = settled (plot_settled), saved something, mean CPU <=
 * budget, time to 90% <= settle time (if given).  The pick saves the most;
 * feasible points within tie_pct of its savings tie, and the tie is broken
 * by time to 90%, then CPU, then the order of evaluation.
 */
#define _GNU_SOURCE
#include "plan.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "atomic_file.h"

#define P2S_BASE 16.0
#define SLEEP_BASE 10.0
#define P2S_MAX_I 40
#define SLEEP_MAX_J 24
#define LANE_LIMIT 2.0 /* a lane stops rising beyond this many budgets */

void sim_plan_opts_defaults(struct sim_plan_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->cpu_budget_pct = 10;
	o->tie_pct = 0.5;
	o->tail_ms = 60000;
	o->sample_ms = 1000;
	o->policies = true;
	sim_cost_defaults(&o->cost);
	algo_kernel_newest(&o->kernel);
}

void sim_plan_release(struct sim_plan *p)
{
	free(p->points);
	memset(p, 0, sizeof(*p));
}

static double lattice_p2s(int i)
{
	return round(P2S_BASE * pow(2.0, i / 4.0));
}

static double lattice_sleep(int j)
{
	return round(SLEEP_BASE * pow(2.0, j / 4.0));
}

static int lattice_index(double v, double base)
{
	return (int)lround(4.0 * log2(v / base));
}

/* ---- the parameters of ksm by name ---------------------------------------- */

struct ksm_idx {
	const struct algo_ops *ksm;
	int p2s, sleep, mac, zero, mps, smart;
};

static int ksm_idx_init(struct ksm_idx *k, struct sp_err *err)
{
	k->ksm = algo_find("ksm");
	if (!k->ksm)
		return sp_err_set(err, SP_EINVAL, "plan: the ksm algorithm is not registered");
	k->p2s = algo_param_index(k->ksm, "pages_to_scan");
	k->sleep = algo_param_index(k->ksm, "sleep_millisecs");
	k->mac = algo_param_index(k->ksm, "merge_across_nodes");
	k->zero = algo_param_index(k->ksm, "use_zero_pages");
	k->mps = algo_param_index(k->ksm, "max_page_sharing");
	k->smart = algo_param_index(k->ksm, "smart_scan");
	if (k->p2s < 0 || k->sleep < 0 || k->mac < 0 || k->zero < 0 || k->mps < 0 || k->smart < 0)
		return sp_err_set(err, SP_EINVAL, "plan: ksm lacks a tunable the planner searches");
	return 0;
}

static const char *ctl_name_of(enum plot_plan_policy p)
{
	return p == PLOT_PLAN_KSMTUNED ? "ksmtuned" : p == PLOT_PLAN_ADVISOR ? "advisor" : NULL;
}

int sim_plan_config(const struct plot_plan_point *pt, const struct sim_plan_opts *o,
		    struct sim_config *cfg, struct sp_err *err)
{
	const struct algo_ops *ksm = algo_find("ksm");
	const char *name = ctl_name_of(pt->policy);

	if (!ksm)
		return sp_err_set(err, SP_EINVAL, "plan: the ksm algorithm is not registered");
	sim_config_defaults(cfg, ksm);
	cfg->params = pt->params;
	cfg->duration_ms = o->horizon_ms;
	cfg->tail_ms = o->tail_ms;
	cfg->sample_ms = o->sample_ms;
	cfg->cost = o->cost;
	memcpy(cfg->cost_from, o->cost_from, sizeof(cfg->cost_from));
	cfg->kernel = o->kernel;
	if (o->host_mem_mib > 0) {
		cfg->host.mem_mib = o->host_mem_mib;
		cfg->host.used_mib = o->host_used_mib;
	}
	if (name) {
		char copy[sizeof(pt->ctl_params)], *save = NULL;

		cfg->ctl = ctl_find(name);
		if (!cfg->ctl)
			return sp_err_set(err, SP_EINVAL, "plan: no control policy '%s'", name);
		ctl_params_defaults(cfg->ctl, &cfg->ctl_params);
		snprintf(copy, sizeof(copy), "%s", pt->ctl_params);
		for (char *tok = strtok_r(copy, " ", &save); tok; tok = strtok_r(NULL, " ", &save)) {
			int rc = sim_ctl_set(cfg, tok, err);

			if (rc < 0)
				return rc;
		}
	}
	return 0;
}

/* ---- evaluation --------------------------------------------------------- */

struct ctx {
	const struct trace_mem *tm;
	const struct sim_plan_opts *o;
	struct sim_plan *plan;
	struct ksm_idx k;
	sim_plan_progress_fn progress;
	void *arg;
	uint64_t done, known;   /* runs done and known, for progress */
	size_t batch;           /* runs in the current batch */
	struct plot_plan_point *cur; /* its points */
	unsigned round;
	bool multi_node;
	bool smart_ok;          /* the kernel has smart_scan (else it stays 0, unsearched) */
	bool advisor_ok;        /* the kernel has the scan-time advisor */
};

static bool same_point(const struct plot_plan_point *a, const struct plot_plan_point *b)
{
	return a->policy == b->policy && !memcmp(&a->params, &b->params, sizeof(a->params)) &&
	       !strcmp(a->ctl_params, b->ctl_params);
}

static bool known_point(const struct ctx *x, const struct plot_plan_point *c, size_t nc,
			const struct plot_plan_point *p)
{
	for (size_t i = 0; i < x->plan->n; i++)
		if (same_point(&x->plan->points[i], p))
			return true;
	for (size_t i = 0; i < nc; i++)
		if (same_point(&c[i], p))
			return true;
	return false;
}

/* Candidate lists: growable arrays of points not yet evaluated. */
struct cands {
	struct plot_plan_point *p;
	size_t n, cap;
	bool oom;
};

static void cand_add(struct cands *c, const struct ctx *x, const struct plot_plan_point *p)
{
	if (c->oom || known_point(x, c->p, c->n, p))
		return;
	if (c->n == c->cap) {
		size_t cap = c->cap ? 2 * c->cap : 64;
		struct plot_plan_point *q = realloc(c->p, cap * sizeof(*q));

		if (!q) {
			c->oom = true;
			return;
		}
		c->p = q;
		c->cap = cap;
	}
	c->p[c->n] = *p;
	c->p[c->n].round = x->round;
	c->n++;
}

/* In a worker thread: each job writes only its own point. */
static void eval_done(void *arg, size_t i, struct sim_job *job)
{
	struct ctx *x = arg;

	if (job->rc == 0) {
		plot_summarize(job->times, job->samples, job->nsamples, &x->cur[i].s);
		x->cur[i].stopped_ms = job->res.stopped_ms;
	}
	sim_job_release(job);
}

static void eval_progress(void *arg, uint64_t done_ms, uint64_t total_ms)
{
	struct ctx *x = arg;
	double f = total_ms ? (double)done_ms / (double)total_ms : 0;

	if (x->progress)
		x->progress(x->arg, x->done * 1000 + (uint64_t)(f * (double)x->batch * 1000),
			    x->known * 1000);
}

/* Runs the candidates and appends them to the plan. */
static int eval(struct ctx *x, struct cands *c, struct sp_err *err)
{
	struct sim_job *jobs;
	struct sim_plan *pl = x->plan;
	int rc = 0;

	if (c->oom)
		return sp_err_set(err, SP_ENOMEM, "plan: out of memory");
	if (c->n == 0)
		return 0;
	jobs = calloc(c->n, sizeof(*jobs));
	if (!jobs)
		return sp_err_set(err, SP_ENOMEM, "plan: out of memory");
	for (size_t i = 0; i < c->n && rc == 0; i++) {
		rc = sim_plan_config(&c->p[i], x->o, &jobs[i].cfg, err);
		jobs[i].keep_samples = true;
	}
	x->batch = c->n;
	x->known += c->n;
	x->cur = c->p;
	if (rc == 0)
		rc = sim_parallel_run(x->tm, jobs, c->n, x->o->threads, true, eval_done, eval_progress,
				      x, err);
	for (size_t i = 0; i < c->n; i++)
		sim_job_release(&jobs[i]);
	free(jobs);
	x->done += c->n;
	pl->runs += c->n;
	if (rc < 0)
		return rc;
	if (pl->n + c->n > pl->cap) {
		size_t cap = (pl->n + c->n) * 2;
		struct plot_plan_point *q = realloc(pl->points, cap * sizeof(*q));

		if (!q)
			return sp_err_set(err, SP_ENOMEM, "plan: out of memory");
		pl->points = q;
		pl->cap = cap;
	}
	memcpy(pl->points + pl->n, c->p, c->n * sizeof(*c->p));
	pl->n += c->n;
	c->n = 0;
	sim_plan_assess(pl->points, pl->n, x->o, &pl->chosen, &pl->tied, &pl->best_fixed);
	return 0;
}

/* ---- choice ---------------------------------------------------------------- */

/* Order of preference among tied points: time to 90%, then CPU, then evaluation order. */
static bool better_tied(const struct plot_plan_point *a, const struct plot_plan_point *b)
{
	if (a->s.t90_ms != b->s.t90_ms)
		return a->s.t90_ms < b->s.t90_ms;
	return a->cpu_pct < b->cpu_pct;
}

static bool dominates(const struct plot_plan_point *a, const struct plot_plan_point *b)
{
	return a->s.final_saved >= b->s.final_saved && a->cpu_pct <= b->cpu_pct &&
	       a->s.t90_ms <= b->s.t90_ms &&
	       (a->s.final_saved > b->s.final_saved || a->cpu_pct < b->cpu_pct ||
		a->s.t90_ms < b->s.t90_ms);
}

static size_t pick(const struct plot_plan_point *pts, size_t n, double tie_pct, bool fixed_only,
		   size_t *tied)
{
	int64_t most = -1;
	size_t best = SIZE_MAX;

	*tied = 0;
	for (size_t i = 0; i < n; i++)
		if (pts[i].feasible && (!fixed_only || pts[i].policy == PLOT_PLAN_FIXED) &&
		    pts[i].s.final_saved > most)
			most = pts[i].s.final_saved;
	if (most < 0)
		return SIZE_MAX;
	for (size_t i = 0; i < n; i++) {
		if (!pts[i].feasible || (fixed_only && pts[i].policy != PLOT_PLAN_FIXED) ||
		    (double)pts[i].s.final_saved < (double)most * (1 - tie_pct / 100))
			continue;
		if (best != SIZE_MAX)
			++*tied;
		if (best == SIZE_MAX || better_tied(&pts[i], &pts[best]))
			best = i;
	}
	return best;
}

void sim_plan_assess(struct plot_plan_point *pts, size_t n, const struct sim_plan_opts *o,
		     size_t *chosen, size_t *tied, size_t *best_fixed)
{
	size_t t;

	for (size_t i = 0; i < n; i++) {
		struct plot_plan_point *p = &pts[i];
		bool useful = plot_settled(&p->s) && p->s.final_saved > 0;

		p->cpu_pct = plot_cpu_pct(p->s.cpu_ns, p->s.end_ms);
		p->feasible = useful && p->cpu_pct <= o->cpu_budget_pct &&
			      (o->settle_s <= 0 || (double)p->s.t90_ms <= o->settle_s * 1000);
		p->frontier = useful;
	}
	for (size_t i = 0; i < n; i++)
		for (size_t j = 0; j < n && pts[i].frontier; j++)
			if (j != i && plot_settled(&pts[j].s) && pts[j].s.final_saved > 0 &&
			    dominates(&pts[j], &pts[i]))
				pts[i].frontier = false;
	*chosen = pick(pts, n, o->tie_pct, false, tied);
	*best_fixed = pick(pts, n, o->tie_pct, true, &t);
}

/* ---- search ------------------------------------------------------------------ */

static struct plot_plan_point fixed_point(const struct ctx *x, int i, int j, int zero)
{
	struct plot_plan_point p;

	memset(&p, 0, sizeof(p));
	p.policy = PLOT_PLAN_FIXED;
	algo_params_defaults(x->k.ksm, &p.params);
	if (!x->smart_ok)
		p.params.v[x->k.smart] = 0;
	p.params.v[x->k.p2s] = lattice_p2s(i);
	p.params.v[x->k.sleep] = lattice_sleep(j);
	p.params.v[x->k.zero] = zero;
	p.s.t90_ms = PLOT_T90_NEVER;
	return p;
}

/* The coarse grid, level by level of pages_to_scan, lanes stopping beyond LANE_LIMIT budgets. */
static int coarse(struct ctx *x, int step_i, int step_j, const int *macs, int nmac,
		  const int *smarts, int nsmart, double lane_limit, struct sp_err *err)
{
	enum { MAXL = 2 * 2 * 2 * (SLEEP_MAX_J + 1) };
	bool dead[MAXL] = { false };
	struct cands c = { 0 };
	int rc = 0;

	for (int i = 0; i <= P2S_MAX_I && rc == 0; i += step_i) {
		size_t first = x->plan->n;
		int lane = 0;

		for (int j = 0; j <= SLEEP_MAX_J; j += step_j)
			for (int z = 0; z < 2; z++)
				for (int m = 0; m < nmac; m++)
					for (int s = 0; s < nsmart; s++, lane++) {
						struct plot_plan_point p = fixed_point(x, i, j, z);

						if (dead[lane])
							continue;
						p.params.v[x->k.mac] = macs[m];
						p.params.v[x->k.smart] = smarts[s];
						cand_add(&c, x, &p);
					}
		rc = eval(x, &c, err);
		/* a lane dies when its point at this level spent too much */
		for (size_t q = first; q < x->plan->n; q++) {
			const struct plot_plan_point *p = &x->plan->points[q];

			if (p->cpu_pct <= lane_limit * x->o->cpu_budget_pct)
				continue;
			lane = 0;
			for (int j = 0; j <= SLEEP_MAX_J; j += step_j)
				for (int z = 0; z < 2; z++)
					for (int m = 0; m < nmac; m++)
						for (int s = 0; s < nsmart; s++, lane++)
							if (p->params.v[x->k.sleep] == lattice_sleep(j) &&
							    p->params.v[x->k.zero] == z &&
							    p->params.v[x->k.mac] == macs[m] &&
							    p->params.v[x->k.smart] == smarts[s])
								dead[lane] = true;
		}
	}
	free(c.p);
	return rc;
}

enum seed_kind { SEED_FEASIBLE, SEED_EDGE, SEED_WITHIN };

/*
 * The best fixed point of a kind not yet in out[0..n): SEED_FEASIBLE by the
 * choice's order; SEED_EDGE settled, over the budget but saving more than
 * `best`, the cheapest first; SEED_WITHIN within the budget, the most saved.
 */
static size_t seed_of(const struct ctx *x, enum seed_kind kind, int64_t best, const size_t *out,
		      size_t n)
{
	const struct sim_plan *pl = x->plan;
	const double budget = x->o->cpu_budget_pct;
	size_t b = SIZE_MAX;

	for (size_t i = 0; i < pl->n; i++) {
		const struct plot_plan_point *p = &pl->points[i], *q = b == SIZE_MAX ? NULL : &pl->points[b];
		bool ok = p->policy == PLOT_PLAN_FIXED, better;

		for (size_t k = 0; k < n && ok; k++)
			ok = out[k] != i;
		if (kind == SEED_FEASIBLE)
			ok = ok && p->feasible;
		else if (kind == SEED_EDGE)
			ok = ok && plot_settled(&p->s) && p->cpu_pct > budget && p->s.final_saved > best;
		else
			ok = ok && p->cpu_pct <= budget;
		if (!ok)
			continue;
		if (!q)
			better = true;
		else if (kind == SEED_EDGE)
			better = p->cpu_pct < q->cpu_pct;
		else if (p->s.final_saved != q->s.final_saved)
			better = p->s.final_saved > q->s.final_saved;
		else
			better = kind == SEED_FEASIBLE ? better_tied(p, q) : p->cpu_pct > q->cpu_pct;
		if (better)
			b = i;
	}
	return b;
}

/*
 * The seeds of a refinement round: the three best feasible, the two
 * cheapest over the budget that save more (the edge lies between), and
 * while nothing is feasible the two that save most within the budget.
 */
static size_t seeds(const struct ctx *x, size_t *out, size_t max)
{
	const struct sim_plan *pl = x->plan;
	static const struct { enum seed_kind kind; size_t count; } plan[] = {
		{ SEED_FEASIBLE, 3 }, { SEED_EDGE, 2 }, { SEED_WITHIN, 2 },
	};
	int64_t best = pl->best_fixed == SIZE_MAX ? -1 : pl->points[pl->best_fixed].s.final_saved;
	size_t n = 0;

	for (size_t s = 0; s < sizeof(plan) / sizeof(plan[0]); s++) {
		if (plan[s].kind == SEED_WITHIN && best >= 0)
			continue;
		for (size_t k = 0; k < plan[s].count && n < max; k++) {
			size_t b = seed_of(x, plan[s].kind, best, out, n);

			if (b == SIZE_MAX)
				break;
			out[n++] = b;
		}
	}
	return n;
}

static int refine(struct ctx *x, int step, bool categorical, struct sp_err *err)
{
	size_t seed[8], ns = seeds(x, seed, 8);
	struct cands c = { 0 };
	int rc;

	for (size_t q = 0; q < ns; q++) {
		const struct plot_plan_point base = x->plan->points[seed[q]];
		int i0 = lattice_index(base.params.v[x->k.p2s], P2S_BASE);
		int j0 = lattice_index(base.params.v[x->k.sleep], SLEEP_BASE);

		for (int di = -step; di <= step; di += step)
			for (int dj = -step; dj <= step; dj += step) {
				struct plot_plan_point p = base;
				int i = i0 + di, j = j0 + dj;

				if ((!di && !dj) || i < 0 || i > P2S_MAX_I || j < 0 || j > SLEEP_MAX_J)
					continue;
				p.params.v[x->k.p2s] = lattice_p2s(i);
				p.params.v[x->k.sleep] = lattice_sleep(j);
				cand_add(&c, x, &p);
			}
		if (categorical && q < 2) {
			/* flip smart_scan, use_zero_pages, merge_across_nodes, max_page_sharing */
			for (size_t f = 0; f < 4; f++) {
				struct plot_plan_point p = base;

				switch (f) {
				case 0:
					if (!x->smart_ok)
						continue;
					p.params.v[x->k.smart] = !p.params.v[x->k.smart];
					break;
				case 1: p.params.v[x->k.zero] = !p.params.v[x->k.zero]; break;
				case 2:
					if (!x->multi_node)
						continue;
					p.params.v[x->k.mac] = !p.params.v[x->k.mac];
					break;
				default:
					p.params.v[x->k.mps] = p.params.v[x->k.mps] == 256 ? 2048 : 256;
				}
				cand_add(&c, x, &p);
			}
		}
	}
	rc = eval(x, &c, err);
	free(c.p);
	return rc;
}

static int policies(struct ctx *x, struct sp_err *err)
{
	const struct sim_plan_opts *o = x->o;
	struct cands c = { 0 };
	struct plot_plan_point base;
	int budget = (int)lround(o->cpu_budget_pct);
	int rc;

	if (x->plan->best_fixed != SIZE_MAX) {
		base = x->plan->points[x->plan->best_fixed];
	} else {
		memset(&base, 0, sizeof(base));
		algo_params_defaults(x->k.ksm, &base.params);
		if (!x->smart_ok)
			base.params.v[x->k.smart] = 0;
	}
	base.s.t90_ms = PLOT_T90_NEVER;
	base.round = 0;
	budget = budget < 1 ? 1 : budget > 100 ? 100 : budget;
	for (int v = 0; v < 5; v++) {
		struct plot_plan_point p = base;

		p.policy = v < 2 ? PLOT_PLAN_KSMTUNED : PLOT_PLAN_ADVISOR;
		if (p.policy == PLOT_PLAN_ADVISOR && !x->advisor_ok)
			continue; /* the kernel has no scan-time advisor */
		/* the host (o->host_mem_mib) is the simulated host of every run: sim_plan_config */
		if (v == 1) {
			snprintf(p.ctl_params, sizeof(p.ctl_params), "monitor_interval=10");
		} else if (v == 3) {
			snprintf(p.ctl_params, sizeof(p.ctl_params), "advisor_max_cpu=%d", budget);
		} else if (v == 4) {
			snprintf(p.ctl_params, sizeof(p.ctl_params),
				 "advisor_max_cpu=%d advisor_target_scan_time=30", budget);
		}
		cand_add(&c, x, &p);
	}
	rc = eval(x, &c, err);
	free(c.p);
	return rc;
}

static int count_nodes(const struct trace_mem *tm, uint32_t *out, struct sp_err *err)
{
	struct trace_mem_cursor cur;
	struct trace_source src;
	struct trace_snapshot s;
	struct trace_record r;
	const struct trace_header *h = trace_mem_header(tm);
	uint32_t hi = 0;
	int rc;

	for (uint32_t g = 0; g < h->nguests; g++)
		if (h->guests[g].node > hi)
			hi = h->guests[g].node;
	trace_mem_cursor_init(&cur, tm);
	src = trace_mem_source(&cur);
	while ((rc = src.next_snapshot(src.impl, &s, err)) > 0)
		while ((rc = src.next_record(src.impl, &r, err)) > 0)
			if ((r.flags & TRACE_PRESENT) && r.node > hi)
				hi = r.node;
	trace_mem_cursor_release(&cur);
	*out = hi + 1;
	return rc < 0 ? rc : 0;
}

/* ---- answers ------------------------------------------------------------------ */

void sim_plan_swap(const struct sim_plan_opts *o, double committed_mib, double present_mib,
		   double saved_peak_mib, struct plot_plan_swap *out)
{
	double need;

	memset(out, 0, sizeof(*out));
	out->host_mib = o->host_mem_mib;
	out->used_mib = o->host_used_mib;
	out->swap_mib = o->swap_mib;
	out->committed_mib = committed_mib;
	out->present_mib = present_mib;
	out->saved_peak_mib = saved_peak_mib;
	out->unshare_mib = saved_peak_mib;
	out->after_merge_mib = present_mib - saved_peak_mib;
	out->headroom_mib = o->host_mem_mib + o->swap_mib - o->host_used_mib - out->after_merge_mib;
	out->ram_headroom_mib = o->host_mem_mib - o->host_used_mib - out->after_merge_mib;
	if (o->host_mem_mib <= 0) {
		out->verdict = PLOT_PLAN_UNKNOWN;
		return;
	}
	/* the seed: swap must cover the committed memory even without KSM */
	need = o->host_used_mib + committed_mib - o->host_mem_mib;
	out->swap_needed_mib = need > 0 ? need : 0;
	out->swap_short_mib = need - o->swap_mib > 0 ? need - o->swap_mib : 0;
	if (need <= 0)
		out->verdict = PLOT_PLAN_SAFE;
	else if (out->swap_short_mib <= 0)
		out->verdict = PLOT_PLAN_SWAP_NEEDED;
	else
		out->verdict = PLOT_PLAN_UNSAFE;
}

void sim_plan_numa(const struct plot_plan_point *p1, const struct plot_plan_point *p0,
		   uint32_t page_size, struct plot_plan_numa *out)
{
	uint32_t nodes = out->nodes;
	double present = (double)p1->s.present;

	memset(out, 0, sizeof(*out));
	out->nodes = nodes;
	out->saved1_mib = plot_mib(p1->s.final_saved, page_size);
	out->saved0_mib = plot_mib(p0->s.final_saved, page_size);
	out->lost_mib = out->saved1_mib - out->saved0_mib;
	out->lost_pct = out->saved1_mib > 0 ? 100 * out->lost_mib / out->saved1_mib : 0;
	out->cpu1_pct = p1->cpu_pct;
	out->cpu0_pct = p0->cpu_pct;
	out->remote_sharers = p1->s.remote_sharers;
	out->remote_pct = present > 0 ? 100 * (double)p1->s.remote_sharers / present : 0;
	out->evaluated = plot_settled(&p1->s) && plot_settled(&p0->s);
	if (!out->evaluated) {
		out->recommend = 1;
		snprintf(out->reason, sizeof(out->reason),
			 "Keep merge_across_nodes=1 (the kernel's default): the comparison is not "
			 "conclusive because %s did not settle in the simulated time.",
			 plot_settled(&p1->s) ? "merge_across_nodes=0" : "merge_across_nodes=1");
	} else if (out->remote_pct < 1) {
		out->recommend = 1;
		snprintf(out->reason, sizeof(out->reason),
			 "Keep merge_across_nodes=1: only %.2f%% of the guests' memory (%lld pages) would "
			 "map a frame on another node, while merge_across_nodes=0 would save %.1f MiB "
			 "(%.1f%%) less.", out->remote_pct, (long long)out->remote_sharers, out->lost_mib,
			 out->lost_pct);
	} else if (out->lost_pct <= 10 && p0->feasible) {
		out->recommend = 0;
		snprintf(out->reason, sizeof(out->reason),
			 "Use merge_across_nodes=0: with 1, %.1f%% of the guests' memory (%lld pages) would "
			 "map a frame on another node (slower access for those guests); 0 keeps every "
			 "mapping local for %.1f MiB (%.1f%%) less saved, within the budget.",
			 out->remote_pct, (long long)out->remote_sharers, out->lost_mib, out->lost_pct);
	} else {
		out->recommend = 1;
		snprintf(out->reason, sizeof(out->reason),
			 "Keep merge_across_nodes=1: merge_across_nodes=0 would save %.1f MiB (%.1f%%) "
			 "less%s; %.1f%% of the guests' memory (%lld pages) maps a frame on another node, "
			 "so latency-sensitive guests may still prefer 0.", out->lost_mib, out->lost_pct,
			 p0->feasible ? "" : " and misses the budget or settle time",
			 out->remote_pct, (long long)out->remote_sharers);
	}
}

static int numa(struct ctx *x, uint32_t nodes, struct sp_err *err)
{
	struct sim_plan *pl = x->plan;
	struct plot_plan_point flip;
	struct cands c = { 0 };
	size_t base = pl->chosen != SIZE_MAX ? pl->chosen : pl->best_fixed, other = SIZE_MAX;
	const struct plot_plan_point *p1, *p0;
	int rc;

	pl->numa.nodes = nodes;
	if (nodes < 2 || base == SIZE_MAX)
		return 0;
	flip = pl->points[base];
	flip.params.v[x->k.mac] = !flip.params.v[x->k.mac];
	flip.round = x->round;
	for (size_t i = 0; i < pl->n; i++)
		if (same_point(&pl->points[i], &flip))
			other = i;
	if (other == SIZE_MAX) {
		cand_add(&c, x, &flip);
		rc = eval(x, &c, err);
		free(c.p);
		if (rc < 0)
			return rc;
		other = pl->n - 1;
		base = pl->chosen != SIZE_MAX ? pl->chosen : pl->best_fixed; /* eval re-assessed */
		if (same_point(&pl->points[base], &pl->points[other])) {
			/* the flipped variant won the choice: compare it with the original */
			flip.params.v[x->k.mac] = !flip.params.v[x->k.mac];
			for (size_t i = 0; i < pl->n; i++)
				if (same_point(&pl->points[i], &flip))
					other = i;
		}
	}
	p1 = pl->points[base].params.v[x->k.mac] ? &pl->points[base] : &pl->points[other];
	p0 = pl->points[base].params.v[x->k.mac] ? &pl->points[other] : &pl->points[base];
	sim_plan_numa(p1, p0, trace_mem_header(x->tm)->page_size, &pl->numa);
	return 0;
}

static void answers(struct ctx *x)
{
	struct sim_plan *pl = x->plan;
	const struct trace_header *h = trace_mem_header(x->tm);
	double committed = plot_mib((int64_t)trace_header_total_pages(h), h->page_size);
	const struct plot_plan_point *p = pl->chosen != SIZE_MAX ? &pl->points[pl->chosen] : NULL;
	double present = 0;

	/* without a pick, KSM saves nothing; the present memory is any run's */
	for (size_t i = 0; i < pl->n && !p; i++)
		present = plot_mib(pl->points[i].s.present, h->page_size);
	if (p)
		present = plot_mib(p->s.present, h->page_size);
	sim_plan_swap(x->o, committed, present, p ? plot_mib(p->s.peak_saved, h->page_size) : 0,
		      &pl->swap);
}

static int prepare(struct ctx *x, const struct trace_mem *tm, const struct sim_plan_opts *o,
		   sim_plan_progress_fn progress, void *arg, struct sim_plan *out,
		   struct sp_err *err)
{
	uint32_t nodes = 1;
	int rc;

	memset(out, 0, sizeof(*out));
	out->chosen = out->best_fixed = SIZE_MAX;
	memset(x, 0, sizeof(*x));
	x->tm = tm;
	x->o = o;
	x->plan = out;
	x->progress = progress;
	x->arg = arg;
	if (o->cpu_budget_pct <= 0 || o->sample_ms == 0)
		return sp_err_set(err, SP_EINVAL, "plan: the CPU budget and the sample interval must be positive");
	rc = ksm_idx_init(&x->k, err);
	if (rc == 0)
		rc = count_nodes(tm, &nodes, err);
	if (rc < 0)
		return rc;
	x->multi_node = nodes > 1;
	x->smart_ok = algo_kernel_has(&o->kernel, AK_SMART_SCAN);
	x->advisor_ok = algo_kernel_has(&o->kernel, AK_ADVISOR);
	out->numa.nodes = nodes;
	return 0;
}

int sim_plan_run(const struct trace_mem *tm, const struct sim_plan_opts *o,
		 sim_plan_progress_fn progress, void *arg, struct sim_plan *out, struct sp_err *err)
{
	static const int mac1[] = { 1 }, smart1[] = { 1 }, smart0[] = { 0 };
	struct ctx x;
	int rc = prepare(&x, tm, o, progress, arg, out, err);

	if (rc == 0)
		rc = coarse(&x, 8, 8, mac1, 1, x.smart_ok ? smart1 : smart0, 1, LANE_LIMIT, err);
	for (int step = 4; step >= 1 && rc == 0; step /= 2) {
		x.round++;
		rc = refine(&x, step, step == 4, err);
	}
	if (rc == 0 && o->policies) {
		x.round++;
		rc = policies(&x, err);
	}
	if (rc == 0) {
		x.round++;
		rc = numa(&x, out->numa.nodes, err);
	}
	if (rc == 0)
		answers(&x);
	if (rc < 0)
		sim_plan_release(out);
	return rc;
}

int sim_plan_exhaustive(const struct trace_mem *tm, const struct sim_plan_opts *o,
			struct sim_plan *out, struct sp_err *err)
{
	static const int mac2[] = { 1, 0 }, smart2[] = { 1, 0 }, smart0[] = { 0 };
	struct ctx x;
	int rc = prepare(&x, tm, o, NULL, NULL, out, err);

	if (rc == 0)
		rc = coarse(&x, 4, 4, mac2, x.multi_node ? 2 : 1, x.smart_ok ? smart2 : smart0,
			    x.smart_ok ? 2 : 1, 1.0, err);
	if (rc == 0)
		answers(&x);
	if (rc < 0)
		sim_plan_release(out);
	return rc;
}

/* ---- the samepaged configuration ---------------------------------------------- */

/* ksmtuned's parameters and the legacy keys of ksmtuned.conf. */
static const char *const ksmtuned_keys[][2] = {
	{ "monitor_interval", "KSM_MONITOR_INTERVAL" }, { "sleep_msec", "KSM_SLEEP_MSEC" },
	{ "npages_boost", "KSM_NPAGES_BOOST" },         { "npages_decay", "KSM_NPAGES_DECAY" },
	{ "npages_min", "KSM_NPAGES_MIN" },             { "npages_max", "KSM_NPAGES_MAX" },
	{ "thres_coef", "KSM_THRES_COEF" },             { "thres_const", "KSM_THRES_CONST" },
};

/* Free text in double quotes (sim/kvfile.h): \" \\ \$ \` escaped, line breaks as blanks. */
static void quoted(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++) {
		if (*s == '"' || *s == '\\' || *s == '$' || *s == '`')
			fputc('\\', f);
		fputc(*s == '\n' || *s == '\r' ? ' ' : *s, f);
	}
	fputc('"', f);
}

int sim_plan_write_config(const char *path, const struct plot_plan_point *pt, int mac,
			  const char *source, struct sp_err *err)
{
	return sim_plan_write_config_for(path, pt, mac, NULL, source, err);
}

int sim_plan_write_config_for(const char *path, const struct plot_plan_point *pt, int mac,
			      const struct algo_kernel *kernel, const char *source,
			      struct sp_err *err)
{
	struct sim_plan_opts o;
	struct sim_config cfg;
	struct atomic_file af;
	struct ksm_idx k;
	const double *v = pt->params.v;
	char smart[32] = "", why[160];
	bool smart_ok;
	int rc;

	sim_plan_opts_defaults(&o);
	if (kernel)
		o.kernel = *kernel;
	smart_ok = algo_kernel_offers(&o.kernel, "smart_scan", why, sizeof(why));
	rc = ksm_idx_init(&k, err);
	if (rc == 0)
		rc = sim_plan_config(pt, &o, &cfg, err);
	if (rc == 0)
		rc = atomic_file_open(&af, path, 0644, err);
	if (rc < 0)
		return rc;
	if (smart_ok) /* a kernel without smart_scan has no such file to write */
		snprintf(smart, sizeof(smart), " smart_scan=%.0f", v[k.smart]);
	FILE *f = af.f;

	fprintf(f, "# samepaged configuration written by `sim plan` (samepage " SP_VERSION ").\n"
		   "# KEY=VALUE lines; the host daemon reads them (README.md, \"sim plan\").\n");
	fprintf(f, "SAMEPAGE_POLICY=%s\n", pt->policy == PLOT_PLAN_FIXED ? "plan" : cfg.ctl->name);
	if (pt->policy == PLOT_PLAN_FIXED) {
		fputs("PLAN_FORMAT=1\nPLAN_SOURCE=", f);
		quoted(f, source ? source : "sim plan");
		fprintf(f, "\n# from the start: scan at these settings for good\n"
			   "STEP=\"0 run=1 pages_to_scan=%.0f sleep_millisecs=%.0f%s "
			   "use_zero_pages=%.0f\"\n",
			v[k.p2s], v[k.sleep], smart, v[k.zero]);
	} else if (pt->policy == PLOT_PLAN_KSMTUNED) {
		fputs("# ksmtuned's loop; it reads the host's memory itself\n", f);
		for (size_t i = 0; i < sizeof(ksmtuned_keys) / sizeof(ksmtuned_keys[0]); i++) {
			int idx = -1;

			for (uint32_t q = 0; q < cfg.ctl->nparams; q++)
				if (!strcmp(cfg.ctl->params[q].name, ksmtuned_keys[i][0]))
					idx = (int)q;
			if (idx >= 0)
				fprintf(f, "%s=%.0f\n", ksmtuned_keys[i][1], cfg.ctl_params.v[idx]);
		}
	} else {
		fprintf(f, "# the scan-time advisor sets pages_to_scan; sleep_millisecs stays at %.0f\n",
			v[k.sleep]);
		for (uint32_t q = 0; q < cfg.ctl->nparams; q++) {
			fprintf(f, "SAMEPAGE_%s_", "ADVISOR");
			for (const char *c = cfg.ctl->params[q].name; *c; c++)
				fputc(*c >= 'a' && *c <= 'z' ? *c - 'a' + 'A' : *c, f);
			fprintf(f, "=%g\n", cfg.ctl_params.v[q]);
		}
	}
	if (mac < 0)
		fputs("SAMEPAGE_MERGE_ACROSS_NODES=auto\n", f);
	else
		fprintf(f, "SAMEPAGE_MERGE_ACROSS_NODES=%d\n", mac);
	fprintf(f, "SAMEPAGE_USE_ZERO_PAGES=%.0f\nSAMEPAGE_MAX_PAGE_SHARING=%.0f\n", v[k.zero], v[k.mps]);
	if (smart_ok)
		fprintf(f, "SAMEPAGE_SMART_SCAN=%.0f\n", v[k.smart]);
	else
		fprintf(f, "# %s\nSAMEPAGE_SMART_SCAN=keep\n", why);
	return atomic_file_commit(&af, err);
}
