/*
 * cmd_validate.c - `sim validate`: the live check of the simulator against
 * the kernel's KSM on this machine.
 *
 * The trace's guests are materialised in this process's memory
 * (real/materialize.h) and handed to the kernel's KSM; its counters are
 * sampled while the trace's later snapshots are written at their wall-clock
 * times.  Then the simulator replays the same trace with the same tunables,
 * and the two time series are printed side by side with the errors of the
 * steady-state saving, of the time to reach 90% of it, of full_scans and of
 * the modelled CPU against ksmd's own (the host's costs, or --cost).
 *
 * Invariants.
 *   - Nothing in /sys/kernel/mm/ksm is written before every tunable is saved,
 *     and every exit path after that (success, error, SIGINT/SIGTERM/SIGHUP)
 *     restores them: the handler restores at once from the preformatted
 *     copy (async-signal-safe) and asks the main loop to stop; the main path
 *     then unmerges and restores again.  A second signal ends the process.
 *   - The live run starts from a clean state: run=2 (everything unmerged),
 *     the tunables set (the kernel defaults unless --set, advisor off), the
 *     snapshot at time 0 materialised, then run=1 at time 0.
 *   - Live samples are taken at nominal times k x sample_ms from that
 *     moment; the simulator samples at the same nominal times.
 *
 * Notes: the kernel's counters are system-wide, so another mergeable process
 * on the host shows up in the kernel's series; full_scans, pages_scanned,
 * pages_skipped, cpu_ns (ksmd's time on a CPU, /proc/PID/schedstat, in ns;
 * /proc/PID/stat's utime + stime, the same total in 10 ms units, without
 * schedstats) and cow_breaks (cow_ksm of /proc/vmstat) are taken relative
 * to time 0.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "atomic_file.h"
#include "cli.h"
#include "host.h"
#include "live_cli.h"
#include "ksm_sysfs.h"
#include "materialize.h"
#include "sim.h"

#define NS_PER_MS 1000000ull

struct validate_opts {
	struct cli_sim_opts sim; /* duration and sampling */
	const char *trace, *algo, *csv;
	struct real_ksm_settings ks; /* the --set tunables */
	bool quiet, allow_others;
};

static int parse_set(void *opts, const char *kv, char *msg, size_t len);

static const struct cli_opt validate_table[] = {
	CLI_TRACE_OPT(struct validate_opts, trace),
	{ .name = "algo", .type = CLI_STRING, .offset = offsetof(struct validate_opts, algo),
	  .metavar = "NAME", .help = "simulated algorithm to compare (default {})" },
	{ .name = "set", .type = CLI_FN, .fn = parse_set, .metavar = "key=value",
	  .help = "a KSM tunable for both sides: pages_to_scan, sleep_millisecs,\n"
		  "merge_across_nodes, use_zero_pages, max_page_sharing,\n"
		  "smart_scan (default: the kernel's defaults); repeatable" },
	CLI_SIM_DURATION_OPT(struct validate_opts, sim,
			     "run N ms (default: until 60 s after the last snapshot)"),
	CLI_SIM_SAMPLE_OPT(struct validate_opts, sim, "sample every N ms (default {})"),
	CLI_SIM_KERNEL_OPT(struct validate_opts, sim,
			   "Linux version the simulated side models (default: the running\n"
			   "kernel's); 6.6,checksum_first=1 sets a behaviour on its own (README)"),
	{ .name = "cost", .type = CLI_STRING, .offset = offsetof(struct validate_opts, sim.cost),
	  .metavar = "SPEC", .show = cli_show_cost,
	  .help = "the simulated side's cost model in ns per operation, over the host's\n"
		  "costs file (sim calibrate --save) or the defaults:\n{}" },
	{ .name = "csv", .type = CLI_PATH, .offset = offsetof(struct validate_opts, csv),
	  .metavar = "OUT", .help = "write both series: time_ms, kernel_<metric>..., sim_<metric>..." },
	CLI_QUIET_OPT(struct validate_opts, quiet, "print only the summary, not the series"),
	{ .name = "allow-others", .type = CLI_FLAG, .offset = offsetof(struct validate_opts, allow_others),
	  .help = "run even if other processes have mergeable memory (their\n"
		  "pages then count in the kernel's figures, and are unmerged at\n"
		  "the start: refused, exit 5, without the memory for it)" },
	{ 0 },
};

static const struct cli_spec validate_spec = {
	.prog = CLI_PROG,
	.name = "validate",
	.usage = "[--trace FILE] [--algo NAME] [--set key=value]... [options]",
	.about = "Checks the simulator against the kernel's KSM on this machine (root only):\n"
		 "materialises the trace's guests in live memory, lets the kernel's KSM merge\n"
		 "them while the trace's writes are replayed in real time, samples\n"
		 "/sys/kernel/mm/ksm, then simulates the same trace with the same tunables and\n"
		 "prints both time series and the errors of the simulator: pages_sharing, time\n"
		 "to 90%, full_scans, and the modelled CPU against ksmd's (its thread's CPU in\n"
		 "/proc), with the host's costs file or --cost.  Every KSM tunable\n"
		 "is saved first and restored at the end, also on error and on Ctrl-C; the\n"
		 "run starts by unmerging every KSM page on the host (run=2).",
	.notes = "Exit codes: 0 done, 1 failure, 2 usage error, 3 bad trace, 4 not root, no\n"
		 "KSM, KSM driven by another process, or other mergeable processes, 5 no memory\n"
		 "+ swap for the run=2 at the start (other processes' KSM pages) and the run.",
	.opts = validate_table,
};

struct sample {
	uint64_t t_ms;
	struct metrics m;
};

struct series {
	struct sample *s;
	size_t n, cap;
};

static int series_add(struct series *x, uint64_t t_ms, const struct metrics *m)
{
	if (x->n == x->cap) {
		size_t cap = x->cap ? x->cap * 2 : 256;
		struct sample *s = realloc(x->s, cap * sizeof(*s));

		if (!s)
			return SP_ENOMEM;
		x->s = s;
		x->cap = cap;
	}
	x->s[x->n].t_ms = t_ms;
	x->s[x->n].m = *m;
	x->n++;
	return 0;
}

/* The live side's state while it runs. */
struct live {
	struct real_ksm k;
	struct real_mat *mat;
	struct real_ksm_state base;
	int64_t cow_base, cpu_base;
	int64_t wait_base, wait_ns; /* ksmd's time runnable without a CPU: at 0, and since */
	pid_t ksmd;
	bool have_ksmd;
	struct series series;
	uint64_t max_late_ms;
	pid_t other;       /* another process seen with mergeable memory (0: none) */
	uint64_t other_ms; /* when it was first seen */
	struct cli_progress progress;
};

static int live_sample(struct live *L, uint64_t t_ms, struct sp_err *err)
{
	struct real_ksm_state st;
	struct metrics m;
	int64_t v;
	int rc;

	memset(&m, 0, sizeof(m));
	rc = real_ksm_read(&L->k, &st, err);
	if (rc < 0)
		return rc;
	real_ksm_metrics(&st, &L->base, &m);
	real_mat_metrics(L->mat, &m);
	if (L->have_ksmd && real_proc_cpu_ns(L->ksmd, &v, NULL) == 0)
		m.cpu_ns = v - L->cpu_base;
	if (L->have_ksmd && real_proc_wait_ns(L->ksmd, &v, NULL) == 0)
		L->wait_ns = v - L->wait_base;
	if (real_vmstat_cow_ksm(&v, NULL) == 0)
		m.cow_breaks = v - L->cow_base;
	/* one that started after the check at the start would count in every figure */
	if (!L->other && real_ksm_other_users(getpid(), &L->other, 1) > 0)
		L->other_ms = t_ms;
	if (series_add(&L->series, t_ms, &m) < 0)
		return sp_err_set(err, SP_ENOMEM, "out of memory");
	return 0;
}

/*
 * The live run proper, from a clean, configured KSM with run=2 to the end of
 * the sampling; the caller unmerges and restores whatever happens here.
 */
static int live_run(struct live *L, const char *trace, uint64_t end_ms, uint64_t sample_ms,
		    struct sp_err *err)
{
	struct trace_reader *r;
	struct trace_snapshot s;
	bool have_snap;
	uint64_t t0, next_sample = 0;
	int rc;

	rc = trace_reader_open(&r, trace, err);
	if (rc < 0)
		return rc;
	rc = real_mat_new(&L->mat, trace_reader_header(r), REAL_MAT_MERGEABLE, err);
	if (rc < 0)
		goto out;
	rc = trace_reader_next_snapshot(r, &s, err);
	if (rc < 0)
		goto out;
	have_snap = rc > 0;
	if (have_snap && s.time_ms == 0) {
		cli_progress_update(&L->progress, 0, "materialising snapshot 0");
		rc = real_mat_snapshot(L->mat, r, NULL, &cli_stop, err);
		if (rc < 0)
			goto out;
		rc = trace_reader_next_snapshot(r, &s, err);
		if (rc < 0)
			goto out;
		have_snap = rc > 0;
	}
	L->have_ksmd = real_ksmd_pid(&L->ksmd, NULL) == 0;
	if (L->have_ksmd) {
		real_proc_cpu_ns(L->ksmd, &L->cpu_base, NULL);
		real_proc_wait_ns(L->ksmd, &L->wait_base, NULL);
	}
	real_vmstat_cow_ksm(&L->cow_base, NULL);
	rc = real_ksm_read(&L->k, &L->base, err);
	if (rc < 0)
		goto out;
	rc = real_ksm_set(&L->k, REAL_KSM_RUN, REAL_KSM_RUN_MERGE, err);
	if (rc < 0)
		goto out;
	t0 = sp_mono_ns();
	while (!cli_stop) {
		uint64_t t_snap = have_snap ? s.time_ms : UINT64_MAX;
		uint64_t t = t_snap < next_sample ? t_snap : next_sample;
		uint64_t late;

		if (t > end_ms)
			break;
		cli_sleep_until(t0 + t * NS_PER_MS);
		if (cli_stop)
			break;
		late = (sp_mono_ns() - t0) / NS_PER_MS - t;
		if (late > L->max_late_ms && (sp_mono_ns() - t0) / NS_PER_MS > t)
			L->max_late_ms = late;
		if (t == t_snap) { /* writes first, then the sample at the same time */
			rc = real_mat_snapshot(L->mat, r, NULL, &cli_stop, err);
			if (rc == 0 && (rc = trace_reader_next_snapshot(r, &s, err)) >= 0) {
				have_snap = rc > 0;
				rc = 0;
			}
		} else {
			char detail[96];

			rc = live_sample(L, t, err);
			snprintf(detail, sizeof(detail), "%.0f/%.0f s, kernel pages_sharing %lld",
				 (double)t / 1000, (double)end_ms / 1000,
				 L->series.n ? (long long)L->series.s[L->series.n - 1].m.pages_sharing : 0LL);
			cli_progress_update(&L->progress, end_ms ? (double)t / (double)end_ms : 1, detail);
			next_sample += sample_ms;
		}
		if (rc < 0)
			goto out;
	}
	if (cli_stop)
		rc = sp_err_set(err, SP_EIO, "interrupted by signal %d", (int)cli_stop);
out:
	trace_reader_close(r);
	return rc;
}

struct sim_out {
	struct series series;
	struct cli_progress progress;
};

static int sim_sample(void *arg, uint64_t t_ms, const struct metrics *m)
{
	struct sim_out *o = arg;

	return series_add(&o->series, t_ms, m) < 0;
}

static void sim_progress(void *arg, uint64_t done_ms, uint64_t end_ms)
{
	struct sim_out *o = arg;
	char detail[64];

	snprintf(detail, sizeof(detail), "%.1f s simulated", (double)done_ms / 1000);
	if (end_ms)
		cli_progress_update(&o->progress, (double)done_ms / (double)end_ms, detail);
}

/* Steady state: mean pages_sharing of the last 10% of samples (at least one). */
static double steady_state(const struct series *x)
{
	size_t k = x->n / 10 ? x->n / 10 : 1;
	double sum = 0;

	if (!x->n)
		return 0;
	for (size_t i = x->n - k; i < x->n; i++)
		sum += (double)x->s[i].m.pages_sharing;
	return sum / (double)k;
}

/* First sample time with pages_sharing >= 90% of steady, or -1. */
static double time_to_90(const struct series *x, double steady)
{
	if (steady <= 0)
		return -1;
	for (size_t i = 0; i < x->n; i++) {
		if ((double)x->s[i].m.pages_sharing >= 0.9 * steady)
			return (double)x->s[i].t_ms / 1000;
	}
	return -1;
}

static void print_rel(double kernel, double sim)
{
	if (kernel > 0)
		printf("  error %+.1f%%\n", 100.0 * (sim - kernel) / kernel);
	else
		printf("  error n/a\n");
}

static void report(const struct live *L, const struct series *S, const char *algo,
		   const char *params, const char *cost_from, bool quiet)
{
	const struct series *K = &L->series;
	uint64_t max_late_ms = L->max_late_ms;
	size_t n = K->n < S->n ? K->n : S->n;
	double ks = steady_state(K), ss = steady_state(S);
	double kt = time_to_90(K, ks), st = time_to_90(S, ss);

	if (!quiet) {
		printf("%8s %14s %14s %14s %14s %12s %12s\n", "time_s", "kernel_sharing", "sim_sharing",
		       "kernel_shared", "sim_shared", "kernel_scans", "sim_scans");
		for (size_t i = 0; i < n; i++) {
			const struct metrics *a = &K->s[i].m, *b = &S->s[i].m;

			printf("%8.1f %14lld %14lld %14lld %14lld %12lld %12lld\n", (double)K->s[i].t_ms / 1000,
			       (long long)a->pages_sharing, (long long)b->pages_sharing,
			       (long long)a->pages_shared, (long long)b->pages_shared,
			       (long long)a->full_scans, (long long)b->full_scans);
		}
		putchar('\n');
	}
	printf("tunables    %s (simulated: %s)\n", params, algo);
	printf("samples     %zu kernel, %zu simulated", K->n, S->n);
	if (max_late_ms)
		printf("; live samples up to %llu ms late", (unsigned long long)max_late_ms);
	putchar('\n');
	printf("steady      pages_sharing kernel %.1f  sim %.1f", ks, ss);
	print_rel(ks, ss);
	printf("to 90%%      kernel ");
	if (kt >= 0)
		printf("%.1f s", kt);
	else
		printf("n/a");
	printf("  sim ");
	if (st >= 0)
		printf("%.1f s", st);
	else
		printf("n/a");
	if (kt > 0 && st >= 0)
		print_rel(kt, st);
	else
		printf("  error n/a\n");
	if (K->n && S->n) {
		const struct metrics *a = &K->s[K->n - 1].m, *b = &S->s[S->n - 1].m;

		printf("at the end  kernel: shared %lld sharing %lld unshared %lld volatile %lld zero %lld full_scans %lld, ksmd cpu %.2f s\n",
		       (long long)a->pages_shared, (long long)a->pages_sharing,
		       (long long)a->pages_unshared, (long long)a->pages_volatile,
		       (long long)a->ksm_zero_pages, (long long)a->full_scans, (double)a->cpu_ns / 1e9);
		printf("            sim:    shared %lld sharing %lld unshared %lld volatile %lld zero %lld full_scans %lld, modelled cpu %.2f s\n",
		       (long long)b->pages_shared, (long long)b->pages_sharing,
		       (long long)b->pages_unshared, (long long)b->pages_volatile,
		       (long long)b->ksm_zero_pages, (long long)b->full_scans, (double)b->cpu_ns / 1e9);
		printf("            oracle %lld pages; cow breaks kernel %lld sim %lld\n",
		       (long long)a->oracle_saving, (long long)a->cow_breaks, (long long)b->cow_breaks);
		printf("cpu         ksmd %.3f s  modelled %.3f s", (double)a->cpu_ns / 1e9,
		       (double)b->cpu_ns / 1e9);
		print_rel((double)a->cpu_ns, (double)b->cpu_ns);
		printf("full_scans  kernel %lld  sim %lld", (long long)a->full_scans,
		       (long long)b->full_scans);
		print_rel((double)a->full_scans, (double)b->full_scans);
		/* the model gives ksmd a CPU whenever it wants one */
		printf("ksmd wait   %.3f s runnable without a CPU (%.0f%% of its CPU time; the model "
		       "has none: a busy host slows the kernel's scan)\n", (double)L->wait_ns / 1e9,
		       a->cpu_ns > 0 ? 100.0 * (double)L->wait_ns / (double)a->cpu_ns : 0.0);
	}
	printf("costs       %s\n", cost_from);
	if (L->other)
		printf("warning     pid %ld had KSM-mergeable memory from %.1f s on: the kernel's figures "
		       "(pages_sharing, full_scans, ksmd cpu) include its pages\n",
		       (long)L->other, (double)L->other_ms / 1000);
}

/* Writes both series into af (opened before the live run) and commits it. */
static int write_csv(struct atomic_file *af, const struct series *K, const struct series *S,
		     struct sp_err *err)
{
	size_t n = K->n > S->n ? K->n : S->n;

	fputs("time_ms", af->f);
	for (int side = 0; side < 2; side++) {
		for (int i = 0; i < METRICS_COUNT; i++)
			fprintf(af->f, ",%s_%s", side ? "sim" : "kernel", metrics_names[i]);
	}
	fputc('\n', af->f);
	for (size_t r = 0; r < n; r++) {
		fprintf(af->f, "%llu", (unsigned long long)(r < K->n ? K->s[r].t_ms : S->s[r].t_ms));
		for (int side = 0; side < 2; side++) {
			const struct series *x = side ? S : K;

			for (int i = 0; i < METRICS_COUNT; i++) {
				if (r < x->n)
					fprintf(af->f, ",%lld", (long long)metrics_get(&x->s[r].m, i));
				else
					fputc(',', af->f);
			}
		}
		fputc('\n', af->f);
	}
	return atomic_file_commit(af, err);
}

/* Parses one --set into the kernel settings (a cli_value_fn). */
static int parse_set(void *opts, const char *kv, char *msg, size_t len)
{
	struct real_ksm_settings *ks = &((struct validate_opts *)opts)->ks;
	const char *eq = strchr(kv, '=');
	char key[64];
	uint64_t v;
	int f = -1;

	if (!eq || eq == kv || (size_t)(eq - kv) >= sizeof(key))
		return snprintf(msg, len, "--set wants key=value, not '%s'", kv), -1;
	memcpy(key, kv, (size_t)(eq - kv));
	key[eq - kv] = '\0';
	for (size_t i = 0; i < cli_ksm_nsettable; i++) {
		if (!strcmp(real_ksm_name(cli_ksm_settable[i]), key))
			f = cli_ksm_settable[i];
	}
	if (f < 0)
		return snprintf(msg, len, "unknown KSM tunable '%s' (valid: pages_to_scan, sleep_millisecs, "
				"merge_across_nodes, use_zero_pages, max_page_sharing, smart_scan)", key), -1;
	if (!cli_parse_u64(eq + 1, &v) || v > 0xffffffffull)
		return snprintf(msg, len, "invalid value '%s' for %s", eq + 1, key), -1;
	if ((f == REAL_KSM_MERGE_ACROSS_NODES || f == REAL_KSM_USE_ZERO_PAGES ||
	     f == REAL_KSM_SMART_SCAN) && v > 1)
		return snprintf(msg, len, "%s is 0 or 1, not %s", key, eq + 1), -1;
	if ((f == REAL_KSM_MAX_PAGE_SHARING && v < 2) || (f == REAL_KSM_PAGES_TO_SCAN && v < 1))
		return snprintf(msg, len, "%s=%s is below the kernel's minimum (%s)", key, eq + 1,
				f == REAL_KSM_MAX_PAGE_SHARING ? "2" : "1"), -1;
	ks->set[f] = true;
	ks->v[f] = (int64_t)v;
	return 0;
}

struct validate_cmd {
	struct validate_opts o;
	struct sim_config cfg;
	struct sim_result res;
	struct atomic_file af;
	struct live L;
	struct sim_out so;
	uint64_t end_ms;
	bool restore_failed; /* warned: a KSM setting could not be restored */
	struct sim_cost cost; /* the simulated side's (cli_cost_resolve) */
	char cost_from[512];
	char params[256];
	struct sp_err err;
};

/* The simulated side's configuration: the same tunables where the algorithm has them. */
static int validate_config(struct validate_cmd *x)
{
	struct real_ksm_settings *ks = &x->o.ks;
	const char *name = x->o.algo;
	size_t plen = 0;

	if (!algo_find(name))
		return cli_unknown_name("algorithm", name,
					strcmp(name, "ksm") ? "" : " (not built into this sim yet; try --algo zero)",
					false);
	sim_config_defaults(&x->cfg, algo_find(name));
	x->cfg.cost = x->cost;
	memcpy(x->cfg.cost_from, x->cost_from, sizeof(x->cfg.cost_from));
	/* The simulated side follows the kernel it is checked against, unless told otherwise. */
	if ((x->o.sim.kernel ? algo_kernel_parse(&x->cfg.kernel, x->o.sim.kernel, &x->err)
			     : algo_kernel_running(&x->cfg.kernel, &x->err)) < 0)
		return cli_fail(&x->err);
	for (size_t i = 0; i < cli_ksm_nsettable; i++) {
		int f = cli_ksm_settable[i];
		char kv[96];

		if (!ks->set[f]) {
			ks->set[f] = true; /* the kernel side starts from the kernel's defaults */
			ks->v[f] = real_ksm_default(f);
		} else if (algo_param_index(x->cfg.algo, real_ksm_name(f)) >= 0) {
			snprintf(kv, sizeof(kv), "%s=%lld", real_ksm_name(f), (long long)ks->v[f]);
			if (algo_params_set(x->cfg.algo, &x->cfg.params, kv, &x->err) < 0)
				return cli_fail(&x->err);
		} else {
			fprintf(stderr, "sim: note: algorithm '%s' has no parameter %s; only the kernel uses it\n",
				x->cfg.algo->name, real_ksm_name(f));
		}
		plen += (size_t)snprintf(x->params + plen, sizeof(x->params) - plen, "%s%s=%lld",
					 i ? " " : "", real_ksm_name(f), (long long)ks->v[f]);
	}
	ks->set[REAL_KSM_ADVISOR_MODE] = true; /* the advisor would rewrite pages_to_scan */
	ks->v[REAL_KSM_ADVISOR_MODE] = REAL_KSM_ADVISOR_NONE;
	return EXIT_OK;
}

/*
 * The configuration, the trace (sound and small enough), the output; then
 * root and KSM (cli_ksm_take), so a bad input is said as such while another
 * process drives KSM.
 */
static int validate_prepare(struct validate_cmd *x)
{
	uint64_t last_ms, snapshots, bytes;
	uint32_t page_size;
	struct ctl_host mem;
	int rc;

	/* A bad --cost or costs file is refused before the host is touched. */
	if (cli_cost_resolve(&x->cost, x->cost_from, sizeof(x->cost_from), x->o.sim.cost, &x->err) < 0)
		return cli_fail(&x->err);
	if ((rc = validate_config(x)) != EXIT_OK)
		return rc;
	if (cli_trace_prescan(x->o.trace, &last_ms, &snapshots, &bytes, &page_size, &x->err) < 0)
		return cli_fail(&x->err);
	bytes *= page_size;
	if (real_host_read_meminfo(cli_procfs(), &mem, NULL) == 0 && mem.mem_available_kib > 0 &&
	    bytes > mem.mem_available_kib * 1024 / 10 * 8) {
		sp_err_set(&x->err, SP_ENOMEM, "%s needs up to %llu MiB of live memory; only %llu MiB are available",
			   x->o.trace, (unsigned long long)(bytes >> 20),
			   (unsigned long long)(mem.mem_available_kib >> 10));
		return cli_fail(&x->err);
	}
	x->end_ms = x->o.sim.duration_ms ? x->o.sim.duration_ms : last_ms + 60000;
	x->cfg.duration_ms = x->end_ms;
	x->cfg.sample_ms = x->o.sim.sample_ms;
	if (x->o.csv) {
		const char *outs[] = { x->o.csv }, *ins[] = { x->o.trace };

		if (atomic_file_check(outs, 1, ins, 1, &x->err) < 0)
			return cli_fail(&x->err);
	}
	if ((rc = cli_ksm_take(&x->L.k, x->o.allow_others, (int64_t)bytes, NULL)) != EXIT_OK)
		return rc;
	if (x->o.csv &&
	    atomic_file_open(&x->af, x->o.csv, atomic_file_mode_from(x->o.trace, 0644), &x->err) < 0)
		return cli_fail(&x->err);
	return EXIT_OK;
}

/* The live run: save, clean state, configure, run, unmerge, restore. */
static int validate_live(struct validate_cmd *x)
{
	int rc;

	rc = cli_guard_start(&x->L.k, NULL, &x->err);
	if (rc < 0)
		return cli_fail(&x->err);
	cli_progress_init(&x->L.progress, "kernel KSM");
	rc = real_ksm_set(&x->L.k, REAL_KSM_RUN, REAL_KSM_RUN_UNMERGE, &x->err);
	if (rc == 0)
		rc = real_ksm_apply(&x->L.k, &x->o.ks, &x->err);
	if (rc == 0)
		rc = live_run(&x->L, x->o.trace, x->end_ms, x->o.sim.sample_ms, &x->err);
	cli_progress_done(&x->L.progress);
	real_mat_free(x->L.mat); /* freeing our pages drops their KSM merges at once */
	x->L.mat = NULL;
	return cli_guard_finish(&x->L.k, rc, &x->err, &x->restore_failed);
}

/* The simulated run on the same trace, tunables and sample times; then the CSV. */
static int validate_sim(struct validate_cmd *x)
{
	int rc;

	cli_progress_init(&x->so.progress, "simulating");
	rc = sim_run(x->o.trace, &x->cfg, sim_sample, sim_progress, &x->so, &x->res, &x->err);
	cli_progress_done(&x->so.progress);
	if (rc == 0 && x->o.csv) {
		rc = write_csv(&x->af, &x->L.series, &x->so.series, &x->err);
		x->o.csv = NULL; /* committed or aborted */
	}
	return rc < 0 ? cli_fail(&x->err) : EXIT_OK;
}

int cmd_validate(int argc, char **argv)
{
	struct validate_cmd *x = cli_calloc(sizeof(*x));
	int rc;

	if (!x)
		return EXIT_FAIL;
	cli_sim_opts_init(&x->o.sim);
	x->o.trace = cli_default_trace();
	x->o.algo = "ksm";
	rc = cli_parse_args(&validate_spec, argc, argv, &x->o);
	if (rc == CLI_GO && (rc = validate_prepare(x)) == EXIT_OK) {
		rc = validate_live(x);
		if (rc == EXIT_OK)
			rc = validate_sim(x);
		if (rc == EXIT_OK)
			report(&x->L, &x->so.series, x->cfg.algo->name, x->params, x->cfg.cost_from,
			       x->o.quiet);
		if (rc == EXIT_OK && x->restore_failed)
			rc = EXIT_FAIL;
	}
	if (x->o.csv && x->af.f)
		atomic_file_abort(&x->af);
	free(x->L.series.s);
	free(x->so.series.s);
	free(x);
	return rc;
}
