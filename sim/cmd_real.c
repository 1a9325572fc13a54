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
 *   - user: vm.max_map_count is held for the run and raised (root) only when
 *     the trace could need more VMAs than allowed, said on stderr; on every
 *     exit path, also from the signal handler, the hold is released and the
 *     last samepage run holding it puts the original back (real/mapcount.h:
 *     another run's limit is never lowered under it).
 *   - Snapshot writes are applied at their wall-clock times; samples are
 *     taken at k x sample_ms after time 0, writes first at equal times.
 *   - A page the trace drops is discarded through the backend (never with a
 *     bare MADV_DONTNEED, which would expose a pool page under a merged one).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
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
#include "mapcount.h"
#include "materialize.h"
#include "sim.h"

#define NS_PER_MS 1000000ull

struct real_opts {
	struct cli_sim_opts sim; /* duration and sampling */
	const char *trace, *algo, *csv;
	int mech; /* index in mechanisms */
	struct cli_list sets;
	bool quiet, allow_others, no_runs, cow_poll;
};

static const char *const mechanisms[] = { "user", "kernel", NULL };

static const struct cli_opt real_table[] = {
	CLI_TRACE_OPT(struct real_opts, trace),
	{ .name = "algo", .type = CLI_STRING, .offset = offsetof(struct real_opts, algo),
	  .metavar = "NAME", .help = "algorithm (user); default {}" },
	{ .name = "mechanism", .type = CLI_ENUM, .offset = offsetof(struct real_opts, mech),
	  .metavar = "M", .choices = mechanisms, .required = true, .help = "user or kernel" },
	{ .name = "set", .type = CLI_LIST, .offset = offsetof(struct real_opts, sets),
	  .metavar = "key=value", .max_count = CLI_MAX_SETS,
	  .help = "algorithm parameter (user) or KSM tunable (kernel: pages_to_scan,\n"
		  "sleep_millisecs, merge_across_nodes, use_zero_pages,\n"
		  "max_page_sharing, smart_scan); repeatable" },
	CLI_SIM_DURATION_OPT(struct real_opts, sim,
			     "run N ms (default: until 60 s after the last snapshot)"),
	CLI_SIM_SAMPLE_OPT(struct real_opts, sim, "sample every N ms (default {})"),
	{ .name = "csv", .type = CLI_PATH, .offset = offsetof(struct real_opts, csv), .metavar = "OUT",
	  .help = "time_ms, the metrics, measured_rss_bytes, measured_cpu_ns" },
	CLI_QUIET_OPT(struct real_opts, quiet, "print only the summary"),
	{ .name = "no-runs", .type = CLI_FLAG, .offset = offsetof(struct real_opts, no_runs),
	  .help = "user: remap each merged page at once instead of in runs of\n"
		  "consecutive pages after each batch (one mmap per run)" },
	{ .name = "cow-poll", .type = CLI_FLAG, .offset = offsetof(struct real_opts, cow_poll),
	  .help = "user: find COW breaks of merged pages by polling pagemap only,\n"
		  "without the COW-event thread (write faults answered at once)" },
	{ .name = "allow-others", .type = CLI_FLAG, .offset = offsetof(struct real_opts, allow_others),
	  .help = "kernel: run although other processes have mergeable memory\n"
		  "(their pages are unmerged at the start: refused, exit 5,\n"
		  "without the memory for it)" },
	{ 0 },
};

static const struct cli_spec real_spec = {
	.prog = CLI_PROG,
	.name = "real replay",
	.usage = "--trace FILE --algo NAME --mechanism user|kernel\n"
		 "[--set key=value]... [--duration-ms N] [--sample-ms N]\n"
		 "[--csv OUT] [-q] [--no-runs] [--cow-poll] [--allow-others]",
	.about = "Materialises the trace's guests in live memory (root), replays their writes on\n"
		 "the wall clock, and merges them for real: with --mechanism user, the algorithm\n"
		 "runs in a thread over the live backend (actual copy-on-write merging onto\n"
		 "memfd frames); with --mechanism kernel, the memory is handed to the kernel's\n"
		 "KSM (--algo is then ksm; the KSM tunables are saved and restored, also on\n"
		 "Ctrl-C).  Samples every metric plus measured_rss_bytes (every physical frame\n"
		 "of the guests and the pools once) and measured_cpu_ns (engine thread or ksmd).",
	.notes = "vm.max_map_count: each merged page can cost two VMAs; when the trace could\n"
		 "need more than allowed, root raises it for the run (said), and the last\n"
		 "samepage run holding it puts the original back (never lowered under another\n"
		 "run); otherwise merging stops cleanly near the limit and the summary says so.\n"
		 "\n"
		 "Exit codes: 0 done, 1 failure, 2 usage error, 3 bad trace, 4 not root / no\n"
		 "userfaultfd / no KSM / KSM driven by another process, 5 no memory + swap for\n"
		 "the kernel's run=2 at the start (other processes' KSM pages) and the run.",
	.opts = real_table,
};

struct replay {
	bool kernel;
	bool quiet;
	bool no_runs; /* user: remap each merge at once */
	bool cow_poll; /* user: no COW events, polling only */
	const struct trace_header *h;
	struct real_mat *mat;
	uint64_t *base;
	uint64_t npages;
	uint32_t ps;
	/* user */
	struct real_live *L;
	struct real_engine *e;
	bool track_asked; /* the algorithm asked for write tracking */
	uint64_t map_limit; /* vm.max_map_count under the run's hold; 0: the engine holds and reads it */
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

/* The kernel's baselines, then run=1. */
static int start_kernel(struct replay *R, struct sp_err *err)
{
	int rc;

	R->have_ksmd = real_ksmd_pid(&R->ksmd, NULL) == 0;
	if (R->have_ksmd)
		real_proc_cpu_ns(R->ksmd, &R->cpu_base, NULL);
	real_vmstat_cow_ksm(&R->cow_base, NULL);
	rc = real_ksm_read(&R->k, &R->kbase, err);
	if (rc == 0)
		rc = real_ksm_set(&R->k, REAL_KSM_RUN, REAL_KSM_RUN_MERGE, err);
	return rc;
}

/* The live backend over the guests' memory and the algorithm's engine thread, started. */
static int start_user(struct replay *R, const struct algo_ops *algo, const struct algo_params *params,
		      struct sp_err *err)
{
	struct real_live_region *reg = calloc(R->h->nguests, sizeof(*reg));
	struct real_live_config lc = { 0 };
	struct real_engine_config ec = { 0 };
	int across = algo_param_index(algo, "merge_across_nodes");
	int track = algo_param_index(algo, "write_tracking");
	int rc;

	if (!reg)
		return sp_err_set(err, SP_ENOMEM, "out of memory");
	for (uint32_t g = 0; g < R->h->nguests; g++) {
		reg[g].addr = real_mat_page(R->mat, g, 0);
		reg[g].len = R->h->guests[g].pages * R->ps;
		reg[g].guest = g;
		reg[g].domain = R->h->guests[g].domain;
		reg[g].node_hint = (int)R->h->guests[g].node;
	}
	lc.strict_nodes = across >= 0 && params->v[across] == 0;
	lc.track_writes = track >= 0 && params->v[track] != 0;
	R->track_asked = lc.track_writes;
	lc.cow_events = !R->cow_poll;
	lc.max_map_count = R->map_limit; /* one hold a run: the signal handler's release is the last */
	rc = real_live_new(&R->L, reg, R->h->nguests, &lc, err);
	free(reg);
	if (rc < 0)
		return rc;
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
	ec.no_runs = R->no_runs;
	rc = real_engine_new(&R->e, R->L, &ec, err);
	if (rc == 0)
		rc = real_engine_start(R->e, err);
	return rc;
}

/* The guests' memory and the snapshot at time 0; *s is the next snapshot (*have_snap). */
static int materialise_start(struct replay *R, struct trace_reader *r, struct trace_snapshot *s,
			     bool *have_snap, struct sp_err *err)
{
	int rc;

	R->h = trace_reader_header(r);
	R->ps = R->h->page_size;
	R->npages = trace_header_total_pages(R->h);
	R->base = calloc(R->h->nguests + 1, sizeof(*R->base));
	if (!R->base)
		return sp_err_set(err, SP_ENOMEM, "out of memory");
	for (uint32_t g = 1; g <= R->h->nguests; g++)
		R->base[g] = R->base[g - 1] + R->h->guests[g - 1].pages;
	rc = real_mat_new(&R->mat, R->h, R->kernel ? REAL_MAT_MERGEABLE : 0, err);
	if (rc == 0)
		rc = trace_reader_next_snapshot(r, s, err);
	if (rc < 0)
		return rc;
	*have_snap = rc > 0;
	if (*have_snap && s->time_ms == 0) {
		cli_progress_update(&R->progress, 0, "materialising snapshot 0");
		rc = apply_snapshot(R, r, err);
		if (rc == 0)
			rc = trace_reader_next_snapshot(r, s, err);
		if (rc < 0)
			return rc;
		*have_snap = rc > 0;
	}
	return 0;
}

/* Writes at their wall-clock times, samples every sample_ms, until end_ms or a signal. */
static int replay_loop(struct replay *R, struct trace_reader *r, struct trace_snapshot *s,
		       bool have_snap, uint64_t end_ms, uint64_t sample_ms, struct sp_err *err)
{
	uint64_t t0 = sp_mono_ns(), next_sample = 0;
	int rc = 0;

	while (!cli_stop && rc == 0) {
		uint64_t t_snap = have_snap ? s->time_ms : UINT64_MAX;
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
			if (rc == 0 && (rc = trace_reader_next_snapshot(r, s, err)) >= 0) {
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
	}
	if (rc == 0 && cli_stop)
		rc = sp_err_set(err, SP_EIO, "interrupted by signal %d", (int)cli_stop);
	return rc;
}

/* The live run; the caller cleans up R's engine, backend and memory. */
static int run_replay(struct replay *R, const char *trace, const struct algo_ops *algo,
		      const struct algo_params *params, uint64_t end_ms, uint64_t sample_ms,
		      struct sp_err *err)
{
	struct trace_reader *r;
	struct trace_snapshot s;
	bool have_snap = false;
	int rc;

	rc = trace_reader_open(&r, trace, err);
	if (rc < 0)
		return rc;
	rc = materialise_start(R, r, &s, &have_snap, err);
	if (rc == 0)
		rc = R->kernel ? start_kernel(R, err) : start_user(R, algo, params, err);
	if (rc == 0 && !R->quiet)
		printf("%8s %12s %12s %12s %10s %12s %12s %10s\n", "time_s", "pages_shared",
		       "pages_sharing", "scanned", "full_scans", "cow_breaks", "rss_MiB", "cpu_s");
	if (rc == 0)
		rc = replay_loop(R, r, &s, have_snap, end_ms, sample_ms, err);
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
		if (ls.timed_merges > 0 && ls.merge_ns)
			printf("; %.1f us per merge, %.1f us per merged page (%.0f merges/s; zero-page merges apart)",
			       (double)ls.merge_ns / 1e3 / (double)ls.timed_merges,
			       (double)ls.merge_ns / 1e3 / (double)ls.timed_pages,
			       (double)ls.timed_merges * 1e9 / (double)ls.merge_ns);
		if (ls.vma_recounts)
			printf("; %llu VMA counts near the limit", (unsigned long long)ls.vma_recounts);
		putchar('\n');
		if (ls.mapped_pages) {
			uint64_t v = real_count_vmas();
			double added = (double)v - (double)ls.base_vmas;

			printf("vmas        %llu now, %+.0f since the start, for %llu pages on frames: %.3f per merged page; "
			       "%llu remaps for %llu pages (%.2f pages per mmap)\n",
			       (unsigned long long)v, added, (unsigned long long)ls.mapped_pages,
			       added / (double)ls.mapped_pages, (unsigned long long)ls.remaps,
			       (unsigned long long)ls.remapped_pages,
			       ls.remaps ? (double)ls.remapped_pages / (double)ls.remaps : 0.0);
		}
		if (ls.tracking)
			printf("tracking    on: %llu PAGEMAP_SCAN windows (%llu from the asked page on), %llu answered \"written\" unscanned (COW copies in a VMA of their own); %llu visits found the page unwritten, %llu written; %llu runs of written pages protected apart (%llu pages)\n",
			       (unsigned long long)ls.track_scans, (unsigned long long)ls.track_part_scans,
			       (unsigned long long)ls.track_unscanned,
			       (unsigned long long)ls.track_clean,
			       (unsigned long long)ls.track_written, (unsigned long long)ls.track_wp_calls,
			       (unsigned long long)ls.track_wp_pages);
		else if (R->track_asked)
			printf("tracking    off: %s\n", real_live_tracking_off(R->L));
		if (ls.cow_events && ls.cow_from_tracking)
			printf("cow events  from write tracking: %llu COW breaks of merged pages reported, %llu pages watched, %llu windows swept; %llu pagemap entries read\n",
			       (unsigned long long)ls.cow_events_seen, (unsigned long long)ls.cow_armed,
			       (unsigned long long)ls.cow_sweeps, (unsigned long long)ls.cow_polled);
		else if (ls.cow_events)
			printf("cow events  on: %llu write faults on merged pages answered, %llu pages watched; %llu pagemap entries read\n",
			       (unsigned long long)ls.cow_events_seen, (unsigned long long)ls.cow_armed,
			       (unsigned long long)ls.cow_polled);
		printf("freeze      %s: %llu pages moved out for their compare (%llu moved back), %llu write-protected "
		       "(%llu COW copies in pool mappings; moves refused: %llu EBUSY, %llu EINVAL, %llu ENOENT, %llu other); "
		       "%llu staging drops\n",
		       ls.freeze_move ? "by move" : "by write protection", (unsigned long long)ls.freeze_moved,
		       (unsigned long long)ls.freeze_moved_back, (unsigned long long)ls.freeze_protected,
		       (unsigned long long)ls.freeze_infile, (unsigned long long)ls.move_refused[0],
		       (unsigned long long)ls.move_refused[1], (unsigned long long)ls.move_refused[2],
		       (unsigned long long)ls.move_refused[3], (unsigned long long)ls.stage_drops);
		if (ls.pinned_refusals)
			printf("pinned      %llu merges refused: pages pinned (DMA, io_uring), as the kernel refuses them\n",
			       (unsigned long long)ls.pinned_refusals);
		if (ls.freeze_errors)
			printf("WARNING     %llu moves back or re-registrations failed\n",
			       (unsigned long long)ls.freeze_errors);
		if (ls.map_limit_refusals)
			printf("WARNING     %llu merges refused: vm.max_map_count would have been exceeded\n",
			       (unsigned long long)ls.map_limit_refusals);
	}
}

struct real_cmd {
	struct real_opts o;
	struct replay R;
	struct sim_config cfg;
	struct real_ksm_settings ks;
	struct atomic_file af;
	uint64_t end_ms, tpages;
	bool restore_failed; /* warned: a setting could not be restored */
	struct real_mapcount mc; /* user: the run's hold on vm.max_map_count */
	char params[256];
	struct sp_err err;
};

/* The kernel's side: the algorithm's values of the kernel's tunables. */
static void real_prepare_kernel(struct real_cmd *x)
{
	for (size_t i = 0; i < cli_ksm_nsettable; i++) {
		int f = cli_ksm_settable[i], idx = algo_param_index(x->cfg.algo, real_ksm_name(f));

		x->ks.set[f] = true;
		x->ks.v[f] = idx >= 0 ? (int64_t)x->cfg.params.v[idx] : real_ksm_default(f);
	}
	x->ks.set[REAL_KSM_ADVISOR_MODE] = true;
	x->ks.v[REAL_KSM_ADVISOR_MODE] = REAL_KSM_ADVISOR_NONE;
}

static int real_prepare(struct real_cmd *x)
{
	const struct real_opts *o = &x->o;
	uint64_t last_ms, snapshots;
	uint32_t page_size;
	int rc;

	x->R.kernel = !strcmp(mechanisms[o->mech], "kernel");
	x->R.quiet = o->quiet;
	x->R.no_runs = o->no_runs;
	x->R.cow_poll = o->cow_poll;
	if (x->R.kernel && strcmp(o->algo, "ksm"))
		return cli_usage_error("real", "--mechanism kernel runs the kernel's KSM: --algo ksm");
	rc = cli_sim_config(&x->cfg, o->algo, o->sets.v, (int)o->sets.n, NULL, NULL, 0);
	if (rc != EXIT_OK)
		return rc;
	if (x->cfg.algo->caps & ALGO_CAP_OMNISCIENT)
		return cli_usage_error("real", "algorithm '%s' is simulation only", o->algo);
	algo_params_format(x->cfg.algo, &x->cfg.params, x->params, sizeof(x->params));
	if (x->R.kernel)
		real_prepare_kernel(x);
	if (cli_trace_prescan(o->trace, &last_ms, &snapshots, &x->tpages, &page_size, &x->err) < 0)
		return cli_fail(&x->err);
	x->end_ms = o->sim.duration_ms ? o->sim.duration_ms : last_ms + 60000;
	if (o->csv) {
		const char *outs[] = { o->csv }, *ins[] = { o->trace };

		if (atomic_file_check(outs, 1, ins, 1, &x->err) < 0)
			return cli_fail(&x->err);
	}
	/* KSM once the inputs are known good: a bad trace is exit 3 while another process drives KSM. */
	if (x->R.kernel &&
	    (rc = cli_ksm_take(&x->R.k, o->allow_others, (int64_t)(x->tpages * page_size), NULL)) != EXIT_OK)
		return rc;
	if (o->csv) {
		if (atomic_file_open(&x->af, o->csv, atomic_file_mode_from(o->trace, 0644), &x->err) < 0)
			return cli_fail(&x->err);
		x->R.af = &x->af;
		fputs("time_ms", x->af.f);
		for (int i = 0; i < METRICS_COUNT; i++)
			fprintf(x->af.f, ",%s", metrics_names[i]);
		fputs(",measured_rss_bytes,measured_cpu_ns\n", x->af.f);
	}
	return EXIT_OK;
}

/*
 * user: holds vm.max_map_count for the run (mapcount.h: never lowered under
 * another samepage run, put back by the last one to end) and raises it when
 * the trace could need more VMAs; the hold for the guard, or NULL.
 */
static struct real_mapcount *real_hold_map_count(struct real_cmd *x)
{
	uint64_t need = 2 * x->tpages + 4096, cur = 0;
	struct sp_err err = { 0 };

	if (x->R.kernel)
		return NULL;
	if (real_mapcount_hold(&x->mc, NULL, NULL, &err) < 0) {
		if (real_map_count_get(&cur, NULL) == 0 && need > cur)
			fprintf(stderr, "sim: note: vm.max_map_count is %llu and cannot be raised (%s); "
				"merging stops near %llu merged pages\n", (unsigned long long)cur, err.msg,
				(unsigned long long)cur / 2);
		return NULL;
	}
	cur = x->mc.limit;
	if (real_mapcount_raise(&x->mc, need, &err) < 0)
		fprintf(stderr, "sim: note: %s; merging stops near %llu merged pages\n", err.msg,
			(unsigned long long)cur / 2);
	else if (x->mc.raised)
		fprintf(stderr, "sim: raised vm.max_map_count from %llu to %llu for this run "
			"(each merged page can cost two VMAs); put back when the last samepage run "
			"holding it ends\n", (unsigned long long)cur, (unsigned long long)need);
	x->R.map_limit = x->mc.limit;
	return &x->mc;
}

/* The live run under the signal guard; the host's settings are restored whatever happens. */
static int real_live(struct real_cmd *x)
{
	struct replay *R = &x->R;
	int rc = cli_guard_start(R->kernel ? &R->k : NULL, real_hold_map_count(x), &x->err);

	if (rc < 0)
		return cli_fail(&x->err);
	cli_progress_init(&R->progress, R->kernel ? "kernel KSM" : "live merging");
	if (R->kernel) {
		rc = real_ksm_set(&R->k, REAL_KSM_RUN, REAL_KSM_RUN_UNMERGE, &x->err);
		if (rc == 0)
			rc = real_ksm_apply(&R->k, &x->ks, &x->err);
	}
	if (rc == 0)
		rc = run_replay(R, x->o.trace, x->cfg.algo, &x->cfg.params, x->end_ms, x->o.sim.sample_ms,
				&x->err);
	cli_progress_done(&R->progress);
	if (R->e) {
		int rc2 = real_engine_stop(R->e, &x->err);

		if (rc == 0)
			rc = rc2;
	}
	if (rc == 0 && !cli_stop && !R->quiet)
		putchar('\n');
	if (rc == 0 && !cli_stop)
		summary(R, R->kernel ? "kernel" : "user", x->cfg.algo->name, x->params);
	real_engine_free(R->e);
	real_live_free(R->L);
	real_mat_free(R->mat);
	R->e = NULL;
	R->L = NULL;
	R->mat = NULL;
	return cli_guard_finish(R->kernel ? &R->k : NULL, rc, &x->err, &x->restore_failed);
}

int cmd_real(int argc, char **argv)
{
	struct real_cmd *x = cli_calloc(sizeof(*x));
	int rc;

	if (!x)
		return EXIT_FAIL;
	cli_sim_opts_init(&x->o.sim);
	x->o.trace = cli_default_trace();
	x->o.algo = "ksm";
	if (argc >= 2 && !strcmp(argv[1], "replay"))
		rc = cli_parse_args(&real_spec, argc - 1, argv + 1, &x->o);
	else if (argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")))
		rc = cli_parse_args(&real_spec, argc, argv, &x->o);
	else
		rc = cli_usage_error("real", "the subcommand is 'replay'");
	if (rc == CLI_GO && (rc = real_prepare(x)) == EXIT_OK) {
		rc = real_live(x);
		if (rc == EXIT_OK && x->o.csv && atomic_file_commit(&x->af, &x->err) < 0)
			rc = cli_fail(&x->err);
		if (rc == EXIT_OK && x->restore_failed)
			rc = EXIT_FAIL;
	}
	if (x->af.f)
		atomic_file_abort(&x->af);
	free(x->R.base);
	free(x);
	return rc;
}
