/*
 * engine.c - implements real/engine.h: a merge algorithm driven in real time
 * over the live backend, in a thread of its own.
 *
 * The loop (the real-time twin of sim/run.c's batch event):
 *   1. settle known writes: every page queued by real_engine_note_write() is
 *      checked in pagemap; a COW break is reported (ALGO_CHANGE_COW);
 *   2. poll poll_pages more pages for COW breaks made by writers nobody told
 *      us about (real_live_poll's cursor);
 *   3. run one batch of the algorithm at the current time, then remap the
 *      runs of pages it merged (real_live_flush: one mmap per run);
 *   4. publish the metrics (algorithm + backend + this thread's CPU time);
 *   5. sleep what the algorithm asked (0: yield), or until stopped.
 * Steps 1-4 hold the engine lock: other threads that call the backend take
 * it too.  Writes to the memory itself need no lock (live.c).
 *
 * Invariants.
 *   - Only the engine thread (or a holder of the lock) calls the algorithm
 *     or the backend.
 *   - `pub` is the metric set after the latest batch; readers copy it under
 *     pub_lock, never the engine lock, so reading never delays merging.
 *   - cpu_ns is measured (CLOCK_THREAD_CPUTIME_ID of the engine thread via
 *     pthread_getcpuclockid, + the live backend's COW-event thread), never
 *     modelled; it includes COW polling.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sp_util.h"
#include "engine.h"

struct real_engine {
	struct real_live *L;
	struct real_engine_config cfg;
	void *st;
	pthread_t thread;
	bool running;
	clockid_t cpu_clock;
	bool have_clock;
	pthread_mutex_t lock;
	pthread_mutex_t qlock, pub_lock;
	pthread_cond_t wake;
	bool stop;
	int error;
	struct sp_err err;
	bk_page *q;
	size_t qlen, qcap;
	bk_page *qwork;
	size_t qwcap;
	uint64_t t0;
	uint64_t batches;
	int64_t full_scans;   /* the algorithm's, at the last rebalance */
	struct metrics pub;
	struct algo_params live;
};

int real_engine_new(struct real_engine **out, struct real_live *L,
		    const struct real_engine_config *cfg, struct sp_err *err)
{
	struct real_engine *e;
	struct algo_env env = { 0 };
	pthread_condattr_t ca;
	int rc;

	*out = NULL;
	rc = algo_check(cfg->algo, err);
	if (rc < 0)
		return rc;
	if (cfg->algo->caps & ALGO_CAP_OMNISCIENT)
		return sp_err_set(err, SP_EINVAL, "algorithm '%s' reads exact content: simulation only",
				  cfg->algo->name);
	e = calloc(1, sizeof(*e));
	if (!e)
		return sp_err_set(err, SP_ENOMEM, "out of memory");
	e->L = L;
	e->cfg = *cfg;
	e->live = cfg->params;
	if (!e->cfg.poll_pages)
		e->cfg.poll_pages = 4096;
	pthread_mutex_init(&e->lock, NULL);
	pthread_mutex_init(&e->qlock, NULL);
	pthread_mutex_init(&e->pub_lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&e->wake, &ca);
	pthread_condattr_destroy(&ca);
	env.bk = real_live_backend(L);
	env.seed = cfg->seed;
	rc = cfg->algo->create(&e->st, &cfg->params, &env, err);
	if (rc < 0) {
		real_engine_free(e);
		return rc;
	}
	if (!cfg->no_runs)
		real_live_defer_remaps(L, true);
	e->t0 = sp_mono_ns();
	*out = e;
	return 0;
}

void real_engine_free(struct real_engine *e)
{
	if (!e)
		return;
	if (e->running)
		real_engine_stop(e, NULL);
	if (e->st)
		e->cfg.algo->destroy(e->st);
	pthread_mutex_destroy(&e->lock);
	pthread_mutex_destroy(&e->qlock);
	pthread_mutex_destroy(&e->pub_lock);
	pthread_cond_destroy(&e->wake);
	free(e->q);
	free(e->qwork);
	free(e);
}

static int changed_cb(void *arg, bk_page p, uint32_t what)
{
	struct real_engine *e = arg;

	return e->cfg.algo->page_changed(e->st, p, what);
}

int real_engine_page_changed(struct real_engine *e, bk_page p, uint32_t what)
{
	return changed_cb(e, p, what);
}

void real_engine_note_write(struct real_engine *e, bk_page p)
{
	pthread_mutex_lock(&e->qlock);
	if (e->qlen == e->qcap) {
		size_t cap = e->qcap ? e->qcap * 2 : 4096;
		bk_page *q = realloc(e->q, cap * sizeof(*q));

		if (q) {
			e->q = q;
			e->qcap = cap;
		}
	}
	if (e->qlen < e->qcap)
		e->q[e->qlen++] = p; /* else the poll finds it later */
	pthread_mutex_unlock(&e->qlock);
}

void real_engine_lock(struct real_engine *e) { pthread_mutex_lock(&e->lock); }
void real_engine_unlock(struct real_engine *e) { pthread_mutex_unlock(&e->lock); }

int64_t real_engine_cpu_ns(struct real_engine *e)
{
	struct timespec ts;

	if (!e->have_clock || clock_gettime(e->cpu_clock, &ts) != 0)
		return -1;
	/* The backend's own thread (COW events) works for the engine: its CPU counts too. */
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec + (int64_t)real_live_aux_cpu_ns(e->L);
}

/*
 * The batch's metrics for readers on other threads.  Not the engine's CPU
 * time: reading a thread's CPU clock is a system call (two with the
 * backend's thread), so real_engine_metrics() reads it when asked, not the
 * engine after every batch.
 */
static void publish(struct real_engine *e)
{
	struct metrics m;

	memset(&m, 0, sizeof(m));
	e->cfg.algo->metrics(e->st, &m);
	real_live_metrics(e->L, &m);
	pthread_mutex_lock(&e->pub_lock);
	m.cpu_ns = e->pub.cpu_ns; /* the last one read */
	m.oracle_saving = e->pub.oracle_saving; /* the driver's, if it keeps one */
	e->pub = m;
	e->batches++;
	pthread_mutex_unlock(&e->pub_lock);
}

/* Steps 1-4 of the loop; the caller holds the lock. */
int real_engine_step(struct real_engine *e, uint64_t *sleep_ns)
{
	size_t n;
	int rc;

	pthread_mutex_lock(&e->qlock);
	n = e->qlen;
	if (n > e->qwcap) {
		bk_page *w = realloc(e->qwork, n * sizeof(*w));

		if (w) {
			e->qwork = w;
			e->qwcap = n;
		}
	}
	if (n > e->qwcap)
		n = e->qwcap;
	if (n)
		memcpy(e->qwork, e->q, n * sizeof(*e->q));
	if (e->qlen > n)
		memmove(e->q, e->q + n, (e->qlen - n) * sizeof(*e->q));
	e->qlen -= n;
	pthread_mutex_unlock(&e->qlock);
	for (size_t i = 0; i < n; i++) {
		rc = real_live_check(e->L, e->qwork[i], changed_cb, e);
		if (rc < 0)
			return sp_err_set(&e->err, rc, "%s: %s while handling a write",
					  e->cfg.algo->name, sp_strerror(rc));
	}
	rc = real_live_poll(e->L, e->cfg.poll_pages, changed_cb, e);
	if (rc < 0)
		return sp_err_set(&e->err, rc, "polling pagemap for COW breaks: %s", sp_strerror(rc));
	real_live_warm(e->L);
	rc = e->cfg.algo->batch(e->st, sp_mono_ns() - e->t0, sleep_ns);
	real_live_flush(e->L); /* the batch's merges, remapped run by run */
	if (rc < 0)
		return sp_err_set(&e->err, rc, "%s: %s in a scan batch", e->cfg.algo->name,
				  sp_strerror(rc));
	{
		/* After each full scan, frames follow their sharers' majority node. */
		struct metrics m;

		memset(&m, 0, sizeof(m));
		e->cfg.algo->metrics(e->st, &m);
		if (m.full_scans != e->full_scans) {
			e->full_scans = m.full_scans;
			rc = real_live_rebalance(e->L, NULL);
			if (rc < 0)
				return sp_err_set(&e->err, rc, "moving frames to their sharers' node: %s",
						  sp_strerror(rc));
		}
	}
	publish(e);
	return 0;
}

static void *engine_main(void *arg)
{
	struct real_engine *e = arg;

	pthread_mutex_lock(&e->lock);
	while (!e->stop) {
		uint64_t sleep = 0;
		int rc = real_engine_step(e, &sleep);

		if (rc < 0) {
			e->error = rc;
			break;
		}
		if (sleep == 0) {
			pthread_mutex_unlock(&e->lock);
			sched_yield();
			pthread_mutex_lock(&e->lock);
			continue;
		}
		/*
		 * The sleep counts from the batch's end and ends where the algorithm
		 * says (wake_at(): ksm's on a timer tick, as ksmd's does; the
		 * kernel's ticks fall on multiples of the tick in CLOCK_MONOTONIC),
		 * as in the simulator (sim/run.c).
		 */
		uint64_t end = sp_mono_ns(), until;
		struct timespec ts;

		if (sleep == ALGO_SLEEP_FOREVER)
			until = end + 100000000ull; /* no change notifications here: look again in 100 ms */
		else if (e->cfg.algo->version >= 2 && e->cfg.algo->wake_at)
			until = e->cfg.algo->wake_at(e->st, end, sleep);
		else
			until = end + sleep;
		if (until <= end)
			until = end + 1000000ull; /* as sim/run.c: no batch at once after one that asked a sleep */
		ts.tv_sec = (time_t)(until / 1000000000ull);
		ts.tv_nsec = (long)(until % 1000000000ull);
		while (!e->stop && pthread_cond_timedwait(&e->wake, &e->lock, &ts) == 0)
			;
	}
	pthread_mutex_unlock(&e->lock);
	return NULL;
}

int real_engine_start(struct real_engine *e, struct sp_err *err)
{
	if (e->running)
		return sp_err_set(err, SP_EINVAL, "the engine is already running");
	e->stop = false;
	e->error = 0;
	if (pthread_create(&e->thread, NULL, engine_main, e) != 0)
		return sp_err_set(err, SP_ENOMEM, "cannot start the engine thread");
	e->have_clock = pthread_getcpuclockid(e->thread, &e->cpu_clock) == 0;
	e->running = true;
	return 0;
}

int real_engine_stop(struct real_engine *e, struct sp_err *err)
{
	int64_t cpu;

	if (!e->running)
		return 0;
	pthread_mutex_lock(&e->lock);
	e->stop = true;
	pthread_cond_broadcast(&e->wake);
	pthread_mutex_unlock(&e->lock);
	cpu = real_engine_cpu_ns(e);
	pthread_join(e->thread, NULL);
	e->running = false;
	if (cpu >= 0) {
		pthread_mutex_lock(&e->pub_lock);
		e->pub.cpu_ns = cpu;
		pthread_mutex_unlock(&e->pub_lock);
	}
	e->have_clock = false;
	if (e->error < 0) {
		if (err)
			sp_err_set(err, e->error, "%s", e->err.msg);
		return e->error;
	}
	return 0;
}

int real_engine_set(struct real_engine *e, const char *name, double value, struct sp_err *err)
{
	int idx = algo_param_index(e->cfg.algo, name);
	const struct algo_param *p;
	int rc;

	if (idx < 0)
		return sp_err_set(err, SP_EINVAL, "%s has no tunable '%s'", e->cfg.algo->name, name);
	p = &e->cfg.algo->params[idx];
	if (value < p->min || value > p->max || (p->integer && value != (double)(int64_t)value))
		return sp_err_set(err, SP_EINVAL, "%s=%g is outside [%g, %g]", name, value, p->min,
				  p->max);
	if (!e->cfg.algo->set_param)
		return sp_err_set(err, SP_EINVAL, "%s cannot change tunables at run time",
				  e->cfg.algo->name);
	pthread_mutex_lock(&e->lock);
	rc = e->cfg.algo->set_param(e->st, (uint32_t)idx, value, err);
	if (rc == 0)
		e->live.v[idx] = value;
	pthread_cond_broadcast(&e->wake);
	pthread_mutex_unlock(&e->lock);
	return rc;
}

void real_engine_metrics(struct real_engine *e, struct metrics *out)
{
	int64_t cpu = e->have_clock ? real_engine_cpu_ns(e) : -1;

	pthread_mutex_lock(&e->pub_lock);
	if (cpu >= 0)
		e->pub.cpu_ns = cpu;
	*out = e->pub;
	pthread_mutex_unlock(&e->pub_lock);
}

uint64_t real_engine_batches(struct real_engine *e)
{
	uint64_t n;

	pthread_mutex_lock(&e->pub_lock);
	n = e->batches;
	pthread_mutex_unlock(&e->pub_lock);
	return n;
}
