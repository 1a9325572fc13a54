/*
 * cmd_calibrate.c - `sim calibrate`: measures the cost model's constants on
 * this machine, prints them as a --cost specification and, with --save,
 * keeps them in the host's costs file (cli_costs_path()) that the
 * simulating commands read.
 *
 * Invariant: the ksmd part runs under the live commands' signal guard
 * (live_cli.h): every KSM tunable is saved before anything is written and
 * restored at the end, on error, and at once on SIGINT, SIGTERM or SIGHUP.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <time.h>

#include "calibrate.h"
#include "cli.h"
#include "live_cli.h"
#include "sim.h"

static void calib_progress(void *arg, const char *phase, double fraction)
{
	cli_progress_update(arg, fraction, phase);
}

struct calib_opts {
	uint64_t pages;
	bool no_ksm, save, allow_others;
};

static void show_costs_path(char *buf, size_t len)
{
	if (!cli_costs_path(buf, len, true))
		snprintf(buf, len, "none: SAMEPAGE_COSTS is empty");
}

static const struct cli_opt calib_table[] = {
	{ .name = "pages", .type = CLI_U64, .offset = offsetof(struct calib_opts, pages),
	  .metavar = "N", .max = 1ull << 24, .help = "pages to measure over (default {}, twice)" },
	{ .name = "no-ksm", .type = CLI_FLAG, .offset = offsetof(struct calib_opts, no_ksm),
	  .help = "userspace timings only" },
	{ .name = "save", .type = CLI_FLAG, .offset = offsetof(struct calib_opts, save),
	  .show = show_costs_path,
	  .help = "keep the measured costs in the host's costs file ({}; $SAMEPAGE_COSTS\n"
		  "names another), which run, compare, sweep, plan and validate then use" },
	{ .name = "allow-others", .type = CLI_FLAG, .offset = offsetof(struct calib_opts, allow_others),
	  .help = "run even if other processes have mergeable memory (ksmd then\n"
		  "scans theirs too, and the per-page costs mix in their pages)" },
	{ 0 },
};

static const struct cli_spec calib_spec = {
	.prog = CLI_PROG,
	.name = "calibrate",
	.usage = "[--pages N] [--no-ksm] [--save] [--allow-others]",
	.about = "Measures the CPU cost model on this machine: checksum, compare and tree\n"
		 "step in userspace over N pages (default 65536 = 256 MiB, twice), then - as\n"
		 "root with KSM - ksmd's own CPU time per page visit, first visit, tree step\n"
		 "and merge over the same memory, the hot checksum and tree step (small\n"
		 "regions), the extra of reading pages left idle 50 ms to 5 s (slow scans),\n"
		 "the extra of an unstable tree level read idle (the same pages in 8 batches),\n"
		 "the extra of a batch that reads pages after a sleep, a visit's extra when\n"
		 "cold and a ms since the page's last visit, and the COW break of a merged\n"
		 "page.  Prints a --cost specification; --save keeps it for the simulating\n"
		 "commands.  Saves and restores every KSM tunable (also on Ctrl-C), and\n"
		 "unmerges the host's KSM pages (run=2) while it works, unless memory + swap\n"
		 "could not take that (exit 5, as samepaged's check).  --no-ksm: userspace\n"
		 "only.  Measure on an idle machine: other load inflates every cost.",
	.opts = calib_table,
};

/*
 * A slow point whose steady scans spread by more than this share of its
 * median: the host's cost of idle memory moved during the calibration.
 */
#define CALIB_UNSTEADY 0.5

static void calib_report(const struct real_calibration *cal)
{
	struct sim_cost defaults;

	sim_cost_defaults(&defaults);
	printf("%-11s %12s %12s\n", "operation", "measured ns", "default ns");
	for (int k = 0; k < BK_COST__COUNT; k++) {
		printf("%-11s ", sim_cost_name((enum bk_cost)k));
		if (cal->measured[k])
			printf("%12.6g", cal->ns[k]);
		else
			printf("%12s", "-");
		printf(" %12.6g\n", defaults.ns[k]);
	}
	if (cal->ksmd_first_scan_ns > 0)
		printf("\nksmd per page scanned (%llu pages): first scan %.0f ns, unique pages %.0f ns,\n"
		       "merging into groups %.0f ns, already merged %.0f ns\n",
		       (unsigned long long)cal->pages, cal->ksmd_first_scan_ns, cal->ksmd_unique_scan_ns,
		       cal->ksmd_merge_scan_ns, cal->ksmd_merged_scan_ns);
	if (cal->hot_scan_ns > 0)
		printf("hot unique pages: %.0f ns a page (4096 pages, sleep 0; median of %d windows)\n",
		       cal->hot_scan_ns, cal->hot_windows);
	for (int i = 0; i < BK_IDLE_CLASSES; i++) {
		if (cal->idle_period_ns[i] > 0)
			printf("idle pages: scanned every %6.3f s: %6.0f ns a page (scans %.0f-%.0f)\n",
			       cal->idle_period_ns[i] / 1e9, cal->idle_scan_ns[i], cal->idle_range_ns[i][0],
			       cal->idle_range_ns[i][1]);
	}
	if (cal->tree_scan_ns > 0)
		printf("the same pages in %u batches (scanned every %6.3f s): %6.0f ns a page (scans %.0f-%.0f),\n"
		       "%.2f idle tree levels a page\n",
		       cal->tree_batches, cal->tree_period_ns / 1e9, cal->tree_scan_ns, cal->tree_range_ns[0],
		       cal->tree_range_ns[1],
		       real_calib_tree_touches(cal->tree_pages, cal->tree_batches, cal->tree_period_ns,
					       cal->tree_scan_ns));
	for (int i = 0; i < REAL_CALIB_BATCH_PHASES; i++) {
		if (cal->batch_cpu_ns[i] > 0)
			printf("batches after a 20 ms sleep (scan %.3f s) reading %4.1f pages: %6.0f ns a batch"
			       " (scans %.0f-%.0f)\n",
			       cal->batch_period_ns / 1e9, cal->batch_reads[i], cal->batch_cpu_ns[i],
			       cal->batch_range_ns[i][0], cal->batch_range_ns[i][1]);
	}
	for (int i = 0; i < REAL_CALIB_VISIT_POINTS; i++) {
		if (cal->visit_cpu_ns[i] > 0)
			printf("visits of merged pages, 2000 a batch (scan %.3f s): %5.0f ns a visit"
			       " (scans %.0f-%.0f)\n",
			       cal->visit_period_ns[i] / 1e9, cal->visit_cpu_ns[i], cal->visit_range_ns[i][0],
			       cal->visit_range_ns[i][1]);
	}
	if (cal->idle_period_ns[0] > 0 && !cal->measured[BK_COST_IDLE_5S])
		puts("(idle costs not measured: no slow scan was slow enough)");
	if (real_calib_spread(cal) > CALIB_UNSTEADY)
		printf("host unsteady: one point's scans differed by %.0f%% of its median; the idle,\n"
		       "batch_read, visit_idle and visit_cold costs may not reproduce - calibrate again\n",
		       100 * real_calib_spread(cal));
	printf("\n--cost ");
	for (int k = 0, first = 1; k < BK_COST__COUNT; k++) {
		if (!cal->measured[k])
			continue;
		printf("%s%s=%.6g", first ? "" : ",", sim_cost_name((enum bk_cost)k), cal->ns[k]);
		first = 0;
	}
	putchar('\n');
}

/* mkdir -p of path's directory (for the default locations); errors surface at the write. */
static void make_parent(const char *path)
{
	char dir[4096];

	snprintf(dir, sizeof(dir), "%s", path);
	for (char *s = strchr(dir + 1, '/'); s; s = strchr(s + 1, '/')) {
		*s = '\0';
		if (mkdir(dir, 0755) < 0 && errno != EEXIST)
			return;
		*s = '/';
	}
}

static int calib_save(const struct real_calibration *cal, bool ksm, const char *load_before)
{
	char path[4096], note[1024], load_after[128] = "?", when[64] = "?";
	struct sim_cost c;
	struct utsname u;
	struct sp_err err = { 0 };
	time_t now = time(NULL);
	FILE *f = fopen("/proc/loadavg", "r");

	if (!cli_costs_path(path, sizeof(path), true)) {
		fputs("sim: --save: SAMEPAGE_COSTS is empty (no costs file); nothing saved\n", stderr);
		return EXIT_USAGE;
	}
	if (f) {
		if (!fgets(load_after, sizeof(load_after), f))
			snprintf(load_after, sizeof(load_after), "?");
		load_after[strcspn(load_after, "\n")] = '\0';
		fclose(f);
	}
	strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S UTC", gmtime(&now));
	if (uname(&u) < 0)
		snprintf(u.release, sizeof(u.release), "?");
	snprintf(note, sizeof(note),
		 "measured %s on Linux %s over 2 x %llu pages%s\n"
		 "/proc/loadavg before: %s; after: %s",
		 when, u.release, (unsigned long long)cal->pages,
		 ksm ? "" : " (--no-ksm: userspace timings only; the rest are the defaults)",
		 load_before, load_after);
	for (int k = 0; k < BK_COST__COUNT; k++)
		c.ns[k] = cal->ns[k];
	if (!getenv("SAMEPAGE_COSTS"))
		make_parent(path);
	if (sim_cost_save(&c, cal->measured, note, path, &err) < 0)
		return cli_fail(&err);
	printf("saved to %s\n", path);
	return EXIT_OK;
}

int cmd_calibrate(int argc, char **argv)
{
	struct calib_opts o = { .pages = 65536 };
	struct real_calibration cal;
	struct real_ksm k;
	struct sp_err err = { 0 };
	struct cli_progress prog;
	char load[128] = "?";
	bool restore_failed = false;
	FILE *f;
	int rc = cli_parse_args(&calib_spec, argc, argv, &o);

	if (rc != CLI_GO)
		return rc;
	if ((f = fopen("/proc/loadavg", "r"))) {
		if (!fgets(load, sizeof(load), f))
			snprintf(load, sizeof(load), "?");
		load[strcspn(load, "\n")] = '\0';
		fclose(f);
	}
	if (o.pages < 1024)
		return cli_usage_error("calibrate", "--pages %llu: at least 1024, or caches hide the costs",
				       (unsigned long long)o.pages);
	if (!o.no_ksm) {
		/* its 2 x --pages are mapped and filled before its run=2 */
		rc = cli_ksm_take(&k, o.allow_others, (int64_t)(2 * o.pages * 4096),
				  " (try --no-ksm for the userspace timings only)");
		if (rc != EXIT_OK)
			return rc;
		/* the guard saves every tunable before real_calibrate writes one */
		if (cli_guard_start(&k, NULL, &err) < 0)
			return cli_fail(&err);
	}
	cli_progress_init(&prog, "calibrating");
	rc = real_calibrate(&cal, o.pages, o.no_ksm ? NULL : &k, &cli_stop, calib_progress, &prog, &err);
	cli_progress_done(&prog);
	if (!o.no_ksm) {
		rc = cli_guard_finish(&k, rc, &err, &restore_failed);
		if (rc == EXIT_OK && restore_failed)
			rc = EXIT_FAIL;
	} else if (rc < 0) {
		rc = cli_fail(&err);
	}
	if (rc != EXIT_OK)
		return rc;
	calib_report(&cal);
	return o.save ? calib_save(&cal, !o.no_ksm, load) : EXIT_OK;
}
