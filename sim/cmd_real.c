/*
 * cmd_real.c - `sim real replay`: a trace's guests materialised in live
 * memory, their writes replayed on the wall clock, and merged for real -
 * either by a samepage algorithm through the live backend (--mechanism
 * user: real/live.c + real/engine.c, the same algorithm code as `sim run`)
 * or by the kernel's KSM (--mechanism kernel: MADV_MERGEABLE + sysfs).
 *
 * Every sample row is the metric struct plus what was measured:
 *   measured_rss_bytes  user: page size x (private anonymous pages of the
 *                       guests that are not the zero page, from pagemap +
 *                       allocated frames of the pools, from st_blocks);
 *                       kernel: page size x distinct physical frames (PFNs)
 *                       mapped by the guests, the zero page excluded.  Both
 *                       count every physical frame once, which smaps_rollup's
 *                       Rss does not (it counts a shared page once per
 *                       mapping); kernel-side slab (VMAs, page tables, KSM's
 *                       rmap items) is in neither.
 *   measured_cpu_ns     user: CPU time of the engine thread
 *                       (pthread_getcpuclockid); kernel: ksmd's CPU time.
 *
 * Invariants.
 *   - kernel: nothing in /sys/kernel/mm/ksm is written before every tunable
 *     is saved, and every exit path restores them (the signal handler from a
 *     preformatted copy, as `sim validate` does).
 *   - user: vm.max_map_count is raised (root) only when the trace could need
 *     more VMAs than allowed, said on stderr, and restored on every exit
 *     path, also from the signal handler.
 *   - Snapshot writes are applied at their wall-clock times; samples are
 *     taken at k x sample_ms after time 0, writes first at equal times.
 *   - A page the trace drops is discarded through the backend (never with a
 *     bare MADV_DONTNEED, which would expose a pool page under a merged one).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "atomic_file.h"
#include "cli.h"
#include "live_cli.h"
#include "engine.h"
#include "ksm_sysfs.h"
#include "live.h"
#include "materialize.h"
#include "sim.h"

#define NS_PER_MS 1000000ull

/* The host's KSM tunables and vm.max_map_count as found; restored at the end and by the signal guard. */
static struct real_ksm_saved g_saved;
static char g_mapcount_restore[32]; /* "" unless max_map_count was raised */

static void real_usage(FILE *f)
{
	fprintf(f,
		"usage: sim real replay --trace FILE --algo NAME --mechanism user|kernel\n"
		"                       [--set key=value]... [--duration-ms N] [--sample-ms N]\n"
		"                       [--csv OUT] [-q] [--allow-others]\n"
		"\n"
		"Materialises the trace's guests in live memory (root), replays their writes on\n"
		"the wall clock, and merges them for real: with --mechanism user, the algorithm\n"
		"runs in a thread over the live backend (actual copy-on-write merging onto\n"
		"memfd frames); with --mechanism kernel, the memory is handed to the kernel's\n"
		"KSM (--algo is then ksm; the KSM tunables are saved and restored, also on\n"
		"Ctrl-C).  Samples every metric plus measured_rss_bytes (every physical frame\n"
		"of the guests and the pools once) and measured_cpu_ns (engine thread or ksmd).\n"
		"\n"
		"  --trace FILE       trace to replay (default: the bundled sample %s)\n"
		"  --algo NAME        algorithm (user) ; default ksm\n"
		"  --mechanism M      user or kernel\n"
		"  --set key=value    algorithm parameter (user) or KSM tunable (kernel: pages_to_scan,\n"
		"                     sleep_millisecs, merge_across_nodes, use_zero_pages,\n"
		"                     max_page_sharing, smart_scan); repeatable\n"
		"  --duration-ms N    run N ms (default: until 60 s after the last snapshot)\n"
		"  --sample-ms N      sample every N ms (default 1000)\n"
		"  --csv OUT          time_ms, the metrics, measured_rss_bytes, measured_cpu_ns\n"
		"  -q, --quiet        print only the summary\n"
		"  --allow-others     kernel: run although other processes have mergeable memory\n"
		"\n"
		"vm.max_map_count: each merged page can cost two VMAs; when the trace could\n"
		"need more than allowed, root raises it for the run (said, and restored);\n"
		"otherwise merging stops cleanly near the limit and the summary says so.\n"
		"\n"
		"Exit codes: 0 done, 1 failure, 2 usage error, 3 bad trace, 4 not root / no\n"
		"userfaultfd / no KSM.\n",
		cli_default_trace());
}

struct replay {
	bool kernel;
	bool quiet;
	const struct trace_header *h;
	struct real_mat *mat;
	uint64_t *base;
	uint64_t npages;
	uint32_t ps;
	/* user */
	struct real_live *L;
	struct real_engine *e;
	/* kernel */
	struct real_ksm k;
	struct real_ksm_state kbase;
	pid_t ksmd;
	bool have_ksmd;
	int64_t cpu_base, cow_base;
	/* samples */
	struct atomic_file *af;
	struct metrics last;
	uint64_t last_rss;
	int64_t last_cpu;
	uint64_t samples, max_late_ms;
	struct cli_progress progress;
};

static int apply_record(struct replay *R, const struct trace_record *rec, struct sp_err *err)
{
	bool was, now = rec->flags & TRACE_PRESENT;
	uint64_t p;
	int rc = 0;

	if (rec->guest >= R->h->nguests || rec->page >= R->h->guests[rec->guest].pages)
		return sp_err_set(err, SP_ECORRUPT, "record for guest %u page %llu is out of range",
				  rec->guest, (unsigned long long)rec->page);
	p = R->base[rec->guest] + rec->page;
	was = real_mat_present(R->mat, rec->guest, rec->page);
	if (R->kernel || !R->e) {
		rc = real_mat_apply(R->mat, rec, err);
	} else if (was && !now) {
		real_engine_lock(R->e);
		rc = real_live_discard(R->L, p);
		if (rc == 0)
			rc = real_mat_apply(R->mat, rec, err);
		if (rc == 0)
			rc = real_engine_page_changed(R->e, p, ALGO_CHANGE_UNMAPPED);
		real_engine_unlock(R->e);
	} else {
		if (!was && now) {
			real_engine_lock(R->e);
			real_live_set_present(R->L, p, true);
			real_engine_unlock(R->e);
		}
		rc = real_mat_apply(R->mat, rec, err);
		real_engine_note_write(R->e, p);
	}
	if (rc < 0)
		return sp_err_set(err, rc, "applying a record of guest %u page %llu: %s", rec->guest,
				  (unsigned long long)rec->page, sp_strerror(rc));
	return 0;
}

static int apply_snapshot(struct replay *R, struct trace_reader *r, struct sp_err *err)
{
	struct trace_record rec;
	int rc;

	while ((rc = trace_reader_next_record(r, &rec, err)) > 0) {
		if (cli_stop)
			return sp_err_set(err, SP_EIO, "interrupted");
		rc = apply_record(R, &rec, err);
		if (rc < 0)
			return rc;
	}
	return rc;
}

static int guest_regions(struct replay *R, void **addrs, uint64_t *lens)
{
	for (uint32_t g = 0; g < R->h->nguests; g++) {
		addrs[g] = real_mat_page(R->mat, g, 0);
		lens[g] = R->h->guests[g].pages * R->ps;
	}
	return 0;
}

static int take_sample(struct replay *R, uint64_t t_ms, struct sp_err *err)
{
	struct metrics m;
	uint64_t rss = 0;
	int64_t cpu = 0, v;
	int rc;

	memset(&m, 0, sizeof(m));
	if (R->kernel) {
		struct real_ksm_state st;
		void **addrs = calloc(R->h->nguests, sizeof(*addrs));
		uint64_t *lens = calloc(R->h->nguests, sizeof(*lens));

		if (!addrs || !lens) {
			free(addrs);
			free(lens);
			return sp_err_set(err, SP_ENOMEM, "out of memory");
		}
		rc = real_ksm_read(&R->k, &st, err);
		if (rc == 0) {
			real_ksm_metrics(&st, &R->kbase, &m);
			if (R->have_ksmd && real_proc_cpu_ns(R->ksmd, &v, NULL) == 0)
				cpu = v - R->cpu_base;
			if (real_vmstat_cow_ksm(&v, NULL) == 0)
				m.cow_breaks = v - R->cow_base;
			m.cpu_ns = cpu;
			guest_regions(R, addrs, lens);
			rc = real_rss_distinct_frames(addrs, lens, R->h->nguests, &rss, err);
		}
		free(addrs);
		free(lens);
		if (rc < 0)
			return rc;
	} else {
		real_engine_metrics(R->e, &m);
		real_engine_lock(R->e);
		rc = real_live_measured_rss(R->L, &rss, err);
		real_engine_unlock(R->e);
		if (rc < 0)
			return rc;
		cpu = real_engine_cpu_ns(R->e);
		if (cpu < 0)
			cpu = m.cpu_ns;
		m.cpu_ns = cpu;
	}
	real_mat_metrics(R->mat, &m);
	R->last = m;
	R->last_rss = rss;
	R->last_cpu = cpu;
	R->samples++;
	if (R->af) {
		fprintf(R->af->f, "%llu", (unsigned long long)t_ms);
		for (int i = 0; i < METRICS_COUNT; i++)
			fprintf(R->af->f, ",%lld", (long long)metrics_get(&m, i));
		fprintf(R->af->f, ",%llu,%lld\n", (unsigned long long)rss, (long long)cpu);
	}
	if (!R->quiet)
		printf("%8.1f %12lld %12lld %12lld %10lld %12lld %12.1f %10.3f\n", (double)t_ms / 1000,
		       (long long)m.pages_shared, (long long)m.pages_sharing,
		       (long long)m.pages_scanned, (long long)m.full_scans, (long long)m.cow_breaks,
		       (double)rss / (1 << 20), (double)cpu / 1e9);
	return 0;
}

/* The live run; the caller cleans up R's engine, backend and memory. */
static int run_replay(struct replay *R, const char *trace, const struct algo_ops *algo,
		      const struct algo_params *params, uint64_t end_ms, uint64_t sample_ms,
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
	R->h = trace_reader_header(r);
	R->ps = R->h->page_size;
	R->npages = trace_header_total_pages(R->h);
	R->base = calloc(R->h->nguests + 1, sizeof(*R->base));
	if (!R->base) {
		rc = sp_err_set(err, SP_ENOMEM, "out of memory");
		goto out;
	}
	for (uint32_t g = 1; g <= R->h->nguests; g++)
		R->base[g] = R->base[g - 1] + R->h->guests[g - 1].pages;
	rc = real_mat_new(&R->mat, R->h, R->kernel ? REAL_MAT_MERGEABLE : 0, err);
	if (rc < 0)
		goto out;
	rc = trace_reader_next_snapshot(r, &s, err);
	if (rc < 0)
		goto out;
	have_snap = rc > 0;
	if (have_snap && s.time_ms == 0) {
		cli_progress_update(&R->progress, 0, "materialising snapshot 0");
		rc = apply_snapshot(R, r, err);
		if (rc < 0)
			goto out;
		rc = trace_reader_next_snapshot(r, &s, err);
		if (rc < 0)
			goto out;
		have_snap = rc > 0;
	}
	if (R->kernel) {
		R->have_ksmd = real_ksmd_pid(&R->ksmd, NULL) == 0;
		if (R->have_ksmd)
			real_proc_cpu_ns(R->ksmd, &R->cpu_base, NULL);
		real_vmstat_cow_ksm(&R->cow_base, NULL);
		rc = real_ksm_read(&R->k, &R->kbase, err);
		if (rc == 0)
			rc = real_ksm_set(&R->k, REAL_KSM_RUN, REAL_KSM_RUN_MERGE, err);
	} else {
		struct real_live_region *reg = calloc(R->h->nguests, sizeof(*reg));
		struct real_live_config lc = { 0 };
		struct real_engine_config ec = { 0 };
		int across = algo_param_index(algo, "merge_across_nodes");

		if (!reg) {
			rc = sp_err_set(err, SP_ENOMEM, "out of memory");
			goto out;
		}
		for (uint32_t g = 0; g < R->h->nguests; g++) {
			reg[g].addr = real_mat_page(R->mat, g, 0);
			reg[g].len = R->h->guests[g].pages * R->ps;
			reg[g].guest = g;
			reg[g].domain = R->h->guests[g].domain;
			reg[g].node_hint = (int)R->h->guests[g].node;
		}
		lc.strict_nodes = across >= 0 && params->v[across] == 0;
		rc = real_live_new(&R->L, reg, R->h->nguests, &lc, err);
		free(reg);
		if (rc < 0)
			goto out;
		for (uint32_t g = 0; g < R->h->nguests; g++) {
			for (uint64_t pg = 0; pg < R->h->guests[g].pages; pg++) {
				if (!real_mat_present(R->mat, g, pg))
					real_live_set_present(R->L, R->base[g] + pg, false);
			}
		}
		ec.algo = algo;
		ec.params = *params;
		ec.seed = 1;
		ec.poll_pages = 1024; /* the replay's own writes are reported directly */
		rc = real_engine_new(&R->e, R->L, &ec, err);
		if (rc == 0)
			rc = real_engine_start(R->e, err);
	}
	if (rc < 0)
		goto out;
	if (!R->quiet)
		printf("%8s %12s %12s %12s %10s %12s %12s %10s\n", "time_s", "pages_shared",
		       "pages_sharing", "scanned", "full_scans", "cow_breaks", "rss_MiB", "cpu_s");
	t0 = sp_mono_ns();
	while (!cli_stop) {
		uint64_t t_snap = have_snap ? s.time_ms : UINT64_MAX;
		uint64_t t = t_snap < next_sample ? t_snap : next_sample;
		uint64_t el;

		if (t > end_ms)
			break;
		cli_sleep_until(t0 + t * NS_PER_MS);
		if (cli_stop)
			break;
		el = (sp_mono_ns() - t0) / NS_PER_MS;
		if (el > t && el - t > R->max_late_ms)
			R->max_late_ms = el - t;
		if (t == t_snap) {
			rc = apply_snapshot(R, r, err);
			if (rc == 0 && (rc = trace_reader_next_snapshot(r, &s, err)) >= 0) {
				have_snap = rc > 0;
				rc = 0;
			}
		} else {
			char detail[96];

			rc = take_sample(R, t, err);
			snprintf(detail, sizeof(detail), "%.0f/%.0f s, pages_sharing %lld",
				 (double)t / 1000, (double)end_ms / 1000, (long long)R->last.pages_sharing);
			cli_progress_update(&R->progress, end_ms ? (double)t / (double)end_ms : 1, detail);
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

static void summary(const struct replay *R, const char *mech, const char *algo, const char *params)
{
	const struct metrics *m = &R->last;
	double cpu_s = (double)R->last_cpu / 1e9;
	double predicted = (double)(real_mat_present_pages(R->mat) - (uint64_t)metrics_saved(m)) * R->ps;

	printf("mechanism   %s (%s; %s)\n", mech, algo, params);
	printf("samples     %llu", (unsigned long long)R->samples);
	if (R->max_late_ms)
		printf("; up to %llu ms late", (unsigned long long)R->max_late_ms);
	putchar('\n');
	printf("at the end  pages_shared %lld pages_sharing %lld ksm_zero_pages %lld unshared %lld full_scans %lld\n",
	       (long long)m->pages_shared, (long long)m->pages_sharing, (long long)m->ksm_zero_pages,
	       (long long)m->pages_unshared, (long long)m->full_scans);
	printf("            present pages %llu, oracle %lld; merges %lld, cow_breaks %lld\n",
	       (unsigned long long)real_mat_present_pages(R->mat), (long long)m->oracle_saving,
	       (long long)m->merges, (long long)m->cow_breaks);
	printf("memory      measured_rss %.2f MiB; present - saved = %.2f MiB",
	       (double)R->last_rss / (1 << 20), predicted / (1 << 20));
	if (predicted > 0)
		printf(" (measured %+.2f%%)", 100.0 * ((double)R->last_rss - predicted) / predicted);
	putchar('\n');
	printf("cpu         %.3f s (%s); pages_scanned %lld", cpu_s, R->kernel ? "ksmd" : "engine thread",
	       (long long)m->pages_scanned);
	if (cpu_s > 0)
		printf(" = %.0f pages per CPU-second", (double)m->pages_scanned / cpu_s);
	putchar('\n');
	if (!R->kernel && R->L) {
		struct real_live_stats ls;

		real_live_stats(R->L, &ls);
		printf("live        %llu frames, %llu pages in own VMAs (~%llu VMAs of max_map_count %llu)",
		       (unsigned long long)ls.frames, (unsigned long long)ls.file_vma_pages,
		       (unsigned long long)ls.vma_estimate, (unsigned long long)ls.max_map_count);
		if (m->merges > 0 && ls.merge_ns)
			printf("; %.1f us per merge (%.0f merges/s)", (double)ls.merge_ns / 1e3 / (double)m->merges,
			       (double)m->merges * 1e9 / (double)ls.merge_ns);
		putchar('\n');
		if (ls.map_limit_refusals)
			printf("WARNING     %llu merges refused: vm.max_map_count would have been exceeded\n",
			       (unsigned long long)ls.map_limit_refusals);
	}
}

int cmd_real(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "trace", required_argument, NULL, 't' },
		{ "algo", required_argument, NULL, 'a' },
		{ "mechanism", required_argument, NULL, 'm' },
		{ "set", required_argument, NULL, 's' },
		{ "duration-ms", required_argument, NULL, 'd' },
		{ "sample-ms", required_argument, NULL, 'S' },
		{ "csv", required_argument, NULL, 'o' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "allow-others", no_argument, NULL, 'A' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *trace = cli_default_trace(), *algo_name = "ksm", *csv = NULL, *mech = NULL;
	const char *sets[CLI_MAX_SETS];
	struct cli_sim_opts so;
	int nsets = 0, c, li, rc, exit_code = EXIT_OK;
	bool allow_others = false;
	uint64_t last_ms, tpages, end_ms, old_map = 0, snapshots;
	uint32_t page_size;
	struct sim_config cfg;
	struct real_ksm_settings ks;
	struct sp_err err = { 0 }, err2 = { 0 };
	struct atomic_file af = { 0 };
	struct replay R;
	char params[256];

	if (argc < 2 || strcmp(argv[1], "replay")) {
		if (argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
			real_usage(stdout);
			return EXIT_OK;
		}
		return cli_usage_error("real", "the subcommand is 'replay'");
	}
	argc--;
	argv++;
	memset(&R, 0, sizeof(R));
	memset(&ks, 0, sizeof(ks));
	optind = 1;
	opterr = 0;
	cli_sim_opts_init(&so);
	while ((li = -1, c = getopt_long(argc, argv, ":qh", opts, &li)) != -1) {
		int taken = cli_sim_opt(&so, c, optarg); /* --duration-ms, --sample-ms */

		if (taken < 0)
			return cli_usage_error("real", "invalid value '%s' for --%s", optarg, opts[li].name);
		if (taken)
			continue;
		switch (c) {
		case 't': trace = optarg; break;
		case 'a': algo_name = optarg; break;
		case 'm': mech = optarg; break;
		case 'o': csv = optarg; break;
		case 'q': R.quiet = true; break;
		case 'A': allow_others = true; break;
		case 's':
			if (nsets == CLI_MAX_SETS)
				return cli_usage_error("real", "too many --set");
			sets[nsets++] = optarg;
			break;
		case 'h':
			real_usage(stdout);
			return EXIT_OK;
		case ':':
			return cli_usage_error("real", "option '%s' needs a value", argv[optind - 1]);
		default:
			return cli_usage_error("real", "unknown option '%s'", argv[optind - 1]);
		}
	}
	if (optind < argc)
		return cli_usage_error("real", "unexpected argument '%s'", argv[optind]);
	if (!mech || (strcmp(mech, "user") && strcmp(mech, "kernel")))
		return cli_usage_error("real", "--mechanism must be user or kernel");
	R.kernel = !strcmp(mech, "kernel");
	if (R.kernel && strcmp(algo_name, "ksm"))
		return cli_usage_error("real", "--mechanism kernel runs the kernel's KSM: --algo ksm");
	rc = cli_sim_config(&cfg, algo_name, sets, nsets, NULL, NULL, 0);
	if (rc != EXIT_OK)
		return rc;
	if (cfg.algo->caps & ALGO_CAP_OMNISCIENT)
		return cli_usage_error("real", "algorithm '%s' is simulation only", algo_name);
	algo_params_format(cfg.algo, &cfg.params, params, sizeof(params));
	if (R.kernel) {
		/* The same tunables for the kernel: the algorithm's values of the kernel's names. */
		for (size_t i = 0; i < cli_ksm_nsettable; i++) {
			int idx = algo_param_index(cfg.algo, real_ksm_name(cli_ksm_settable[i]));

			ks.set[cli_ksm_settable[i]] = true;
			ks.v[cli_ksm_settable[i]] = idx >= 0 ? (int64_t)cfg.params.v[idx] : real_ksm_default(cli_ksm_settable[i]);
		}
		ks.set[REAL_KSM_ADVISOR_MODE] = true;
		ks.v[REAL_KSM_ADVISOR_MODE] = REAL_KSM_ADVISOR_NONE;
		if (real_ksm_open(&R.k, NULL, true, &err) < 0)
			return cli_fail(&err);
		rc = cli_refuse_other_ksm_users(allow_others);
		if (rc != EXIT_OK)
			return rc;
	}
	if (cli_trace_prescan(trace, &last_ms, &snapshots, &tpages, &page_size, &err) < 0)
		return cli_fail(&err);
	end_ms = so.duration_ms ? so.duration_ms : last_ms + 60000;
	if (csv) {
		if (atomic_file_open(&af, csv, 0644, &err) < 0)
			return cli_fail(&err);
		R.af = &af;
		fputs("time_ms", af.f);
		for (int i = 0; i < METRICS_COUNT; i++)
			fprintf(af.f, ",%s", metrics_names[i]);
		fputs(",measured_rss_bytes,measured_cpu_ns\n", af.f);
	}

	g_mapcount_restore[0] = '\0';
	if (!R.kernel && real_map_count_get(&old_map, NULL) == 0) {
		uint64_t need = 2 * tpages + 4096;

		if (need > old_map) {
			if (real_map_count_set(need, &err2) == 0) {
				snprintf(g_mapcount_restore, sizeof(g_mapcount_restore), "%llu\n",
					 (unsigned long long)old_map);
				fprintf(stderr, "sim: raised vm.max_map_count from %llu to %llu for this run "
					"(each merged page can cost two VMAs); restored at the end\n",
					(unsigned long long)old_map, (unsigned long long)need);
			} else {
				fprintf(stderr, "sim: note: vm.max_map_count is %llu and cannot be raised (%s); "
					"merging stops near %llu merged pages\n", (unsigned long long)old_map,
					err2.msg, (unsigned long long)old_map / 2);
				sp_err_clear(&err2);
			}
		}
	}
	if (R.kernel) {
		if (real_ksm_save(&R.k, &g_saved, &err) < 0) {
			if (csv)
				atomic_file_abort(&af);
			return cli_fail(&err);
		}
	}
	cli_guard_signals(R.kernel ? &g_saved : NULL, g_mapcount_restore);
	cli_progress_init(&R.progress, R.kernel ? "kernel KSM" : "live merging");
	rc = 0;
	if (R.kernel) {
		rc = real_ksm_set(&R.k, REAL_KSM_RUN, REAL_KSM_RUN_UNMERGE, &err);
		if (rc == 0)
			rc = real_ksm_apply(&R.k, &ks, &err);
	}
	if (rc == 0)
		rc = run_replay(&R, trace, cfg.algo, &cfg.params, end_ms, so.sample_ms, &err);
	cli_progress_done(&R.progress);
	if (R.e) {
		int rc2 = real_engine_stop(R.e, &err);

		if (rc == 0)
			rc = rc2;
	}
	if (rc == 0 && !cli_stop && !R.quiet)
		putchar('\n');
	if (rc == 0 && !cli_stop)
		summary(&R, R.kernel ? "kernel" : "user", cfg.algo->name, params);
	real_engine_free(R.e);
	real_live_free(R.L);
	real_mat_free(R.mat);
	if (R.kernel) {
		int rc2 = real_ksm_set(&R.k, REAL_KSM_RUN, REAL_KSM_RUN_UNMERGE, &err2);

		if (real_ksm_restore(&g_saved, &err2) < 0 || rc2 < 0) {
			fprintf(stderr, "sim: warning: %s\n", err2.msg);
			exit_code = EXIT_FAIL;
		}
	}
	if (g_mapcount_restore[0]) {
		if (real_map_count_set(old_map, &err2) < 0) {
			fprintf(stderr, "sim: warning: %s\n", err2.msg);
			exit_code = EXIT_FAIL;
		}
		g_mapcount_restore[0] = '\0';
	}
	cli_unguard_signals();
	free(R.base);
	if (cli_stop || rc < 0) {
		if (csv)
			atomic_file_abort(&af);
		if (!cli_stop)
			return cli_fail(&err);
		fprintf(stderr, "sim: interrupted; settings restored\n");
		return 128 + (int)cli_stop;
	}
	if (csv && atomic_file_commit(&af, &err) < 0)
		return cli_fail(&err);
	return exit_code;
}
