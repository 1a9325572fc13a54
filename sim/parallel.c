/*
 * parallel.c - implements sim_parallel_run(): a fixed pool of pthreads that
 * take jobs from a shared counter and replay one trace_mem each through
 * their own cursor.
 *
 * Invariants: the trace_mem is only read; each job's struct is written only
 * by the thread that took it (until the pool is joined); the shared state -
 * the next job index, the stop flag and the progress sums - is guarded by
 * one mutex.  Results do not depend on the thread count: a job's output is
 * a pure function of its sim_config.
 */
#define _GNU_SOURCE
#include "parallel.h"

#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct pool {
	const struct trace_mem *tm;
	struct sim_job *jobs;
	size_t n, next;
	bool stop_on_error, stop;
	sim_job_done_fn done;
	sim_parallel_progress_fn progress;
	void *arg;
	uint64_t done_ms, total_ms;
	size_t first_failed;         /* n until a job fails */
	pthread_mutex_t lock;
};

struct job_ctx {
	struct pool *p;
	struct sim_job *job;
	size_t cap; /* samples allocated */
};

unsigned sim_cpu_count(void)
{
	cpu_set_t set;
	long n;

	if (sched_getaffinity(0, sizeof(set), &set) == 0 && CPU_COUNT(&set) > 0)
		return (unsigned)CPU_COUNT(&set);
	n = sysconf(_SC_NPROCESSORS_ONLN);
	return n > 0 ? (unsigned)n : 1;
}

uint64_t sim_expected_end_ms(const struct trace_mem *tm, const struct sim_config *cfg)
{
	uint64_t last = trace_mem_last_ms(tm);

	if (cfg->duration_ms)
		return cfg->duration_ms;
	return last > UINT64_MAX - cfg->tail_ms ? UINT64_MAX : last + cfg->tail_ms;
}

static int keep_sample(void *arg, uint64_t time_ms, const struct metrics *m)
{
	struct job_ctx *x = arg;
	struct sim_job *j = x->job;
	bool stop;

	if (j->keep_samples) {
		if (j->nsamples == x->cap) {
			size_t cap = x->cap ? x->cap * 2 : 256;
			struct metrics *s = realloc(j->samples, cap * sizeof(*s));
			uint64_t *t = s ? realloc(j->times, cap * sizeof(*t)) : NULL;

			if (s)
				j->samples = s;
			if (!t) {
				sp_err_set(&j->err, SP_ENOMEM, "out of memory keeping the samples");
				return 1;
			}
			j->times = t;
			x->cap = cap;
		}
		j->times[j->nsamples] = time_ms;
		j->samples[j->nsamples] = *m;
		j->nsamples++;
	}
	pthread_mutex_lock(&x->p->lock);
	stop = x->p->stop;
	pthread_mutex_unlock(&x->p->lock);
	return stop;
}

static void report_progress(void *arg, uint64_t done_ms, uint64_t end_ms)
{
	struct job_ctx *x = arg;
	struct pool *p = x->p;

	(void)end_ms;
	if (done_ms > x->job->expected_ms)
		done_ms = x->job->expected_ms;
	pthread_mutex_lock(&p->lock);
	p->done_ms += done_ms - x->job->done_ms;
	x->job->done_ms = done_ms;
	if (p->progress)
		p->progress(p->arg, p->done_ms, p->total_ms);
	pthread_mutex_unlock(&p->lock);
}

static void *worker(void *arg)
{
	struct pool *p = arg;

	for (;;) {
		struct trace_mem_cursor cur;
		struct trace_source src;
		struct job_ctx x = { p, NULL, 0 };
		size_t i;

		pthread_mutex_lock(&p->lock);
		if (p->next == p->n || p->stop) {
			pthread_mutex_unlock(&p->lock);
			break;
		}
		i = p->next++;
		pthread_mutex_unlock(&p->lock);
		x.job = &p->jobs[i];
		sim_job_release(x.job);
		trace_mem_cursor_init(&cur, p->tm);
		src = trace_mem_source(&cur);
		x.job->rc = sim_run_source(&src, &x.job->cfg, keep_sample, report_progress, &x,
					   &x.job->res, &x.job->err);
		trace_mem_cursor_release(&cur);
		if (x.job->rc == 0)
			report_progress(&x, x.job->expected_ms, 0);
		if (p->done)
			p->done(p->arg, i, x.job);
		if (x.job->rc < 0) {
			pthread_mutex_lock(&p->lock);
			if (!p->stop) {
				if (p->first_failed == p->n)
					p->first_failed = i;
				p->stop = p->stop_on_error;
			}
			pthread_mutex_unlock(&p->lock);
		}
	}
	return NULL;
}

int sim_parallel_run(const struct trace_mem *tm, struct sim_job *jobs, size_t n, unsigned threads,
		     bool stop_on_error, sim_job_done_fn done, sim_parallel_progress_fn progress,
		     void *arg, struct sp_err *err)
{
	struct pool p = { .tm = tm, .jobs = jobs, .n = n, .stop_on_error = stop_on_error,
			  .done = done, .progress = progress, .arg = arg };
	pthread_t *tid;
	size_t started = 0;
	struct sim_layout lay;
	int rc = 0;

	if (n == 0)
		return 0;
	/* the pages the trace mentions, learnt once for every job (layout.c): from the summary if it serves */
	rc = trace_mem_summary(tm) ? sim_layout_from_summary(&lay, trace_mem_header(tm),
							     trace_mem_summary(tm), err) : 0;
	if (rc == 0) {
		struct trace_mem_cursor c;
		struct trace_source src;

		trace_mem_cursor_init(&c, tm);
		src = trace_mem_source(&c);
		rc = sim_layout_scan(&lay, &src, err);
		trace_mem_cursor_release(&c);
	}
	if (rc < 0)
		return rc;
	rc = 0;
	if (threads == 0)
		threads = sim_cpu_count();
	if (threads > n)
		threads = (unsigned)n;
	p.first_failed = n;
	for (size_t i = 0; i < n; i++) {
		jobs[i].rc = SP_EINVAL; /* until it runs */
		jobs[i].nsamples = 0;
		jobs[i].done_ms = 0;
		sp_err_clear(&jobs[i].err);
		jobs[i].expected_ms = sim_expected_end_ms(tm, &jobs[i].cfg);
		p.total_ms = p.total_ms > UINT64_MAX - jobs[i].expected_ms ? UINT64_MAX
									  : p.total_ms + jobs[i].expected_ms;
		if (!jobs[i].cfg.layout)
			jobs[i].cfg.layout = &lay;
	}
	tid = calloc(threads, sizeof(*tid));
	if (!tid) {
		rc = sp_err_set(err, SP_ENOMEM, "out of memory");
		goto out;
	}
	pthread_mutex_init(&p.lock, NULL);
	for (unsigned t = 0; t < threads; t++) {
		if (pthread_create(&tid[t], NULL, worker, &p) != 0)
			break;
		started++;
	}
	if (started == 0)
		worker(&p); /* no thread could start: run them here */
	for (size_t t = 0; t < started; t++)
		pthread_join(tid[t], NULL);
	pthread_mutex_destroy(&p.lock);
	free(tid);
	if (p.first_failed < n) {
		struct sim_job *j = &jobs[p.first_failed];
		const char *name = j->name ? j->name : j->cfg.algo->name;
		const char *msg = j->err.msg[0] ? j->err.msg : sp_strerror(j->rc);
		size_t len = strlen(name);

		/* the job's name once: "ksm: ksm: ..." says nothing more */
		if (!strncmp(msg, name, len) && msg[len] == ':')
			rc = sp_err_set(err, j->rc, "%s", msg);
		else
			rc = sp_err_set(err, j->rc, "%s: %s", name, msg);
	}
out:
	for (size_t i = 0; i < n; i++)
		if (jobs[i].cfg.layout == &lay)
			jobs[i].cfg.layout = NULL;
	sim_layout_release(&lay);
	return rc;
}

void sim_job_release(struct sim_job *job)
{
	if (!job)
		return;
	free(job->samples);
	free(job->times);
	job->samples = NULL;
	job->times = NULL;
	job->nsamples = 0;
}
