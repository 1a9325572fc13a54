/*
 * cmd_calibrate.c - `sim calibrate`: measures the cost model's constants on
 * this machine and prints them as a --cost specification.
 */
#include <stdio.h>
#include <string.h>

#include "calibrate.h"
#include "cli.h"
#include "sim.h"

static void calib_progress(void *arg, const char *phase, double fraction)
{
	cli_progress_update(arg, fraction, phase);
}

struct calib_opts {
	uint64_t pages;
	bool no_ksm;
};

static const struct cli_opt calib_table[] = {
	{ .name = "pages", .type = CLI_U64, .offset = offsetof(struct calib_opts, pages),
	  .metavar = "N", .max = 1ull << 24, .help = "pages to measure over (default {}, twice)" },
	{ .name = "no-ksm", .type = CLI_FLAG, .offset = offsetof(struct calib_opts, no_ksm),
	  .help = "userspace timings only" },
	{ 0 },
};

static const struct cli_spec calib_spec = {
	.prog = CLI_PROG,
	.name = "calibrate",
	.usage = "[--pages N] [--no-ksm]",
	.about = "Measures the CPU cost model on this machine: checksum, compare and tree\n"
		 "step in userspace over N pages (default 65536 = 256 MiB, twice), then - as\n"
		 "root with KSM - ksmd's own CPU time per page visit, tree step and merge over\n"
		 "the same memory, and the COW break of a merged page.  Prints a --cost\n"
		 "specification for 'sim run'.  Saves and restores every KSM tunable, and\n"
		 "unmerges the host's KSM pages (run=2) while it works.  --no-ksm: userspace only.",
	.opts = calib_table,
};

static void calib_report(const struct real_calibration *cal)
{
	struct sim_cost defaults;

	sim_cost_defaults(&defaults);
	printf("%-10s %12s %12s\n", "operation", "measured ns", "default ns");
	for (int k = 0; k < BK_COST__COUNT; k++) {
		printf("%-10s ", sim_cost_name((enum bk_cost)k));
		if (cal->measured[k])
			printf("%12.1f", cal->ns[k]);
		else
			printf("%12s", "-");
		printf(" %12.1f\n", defaults.ns[k]);
	}
	if (cal->ksmd_first_scan_ns > 0)
		printf("\nksmd per page scanned (%llu pages): first scan %.0f ns, unique pages %.0f ns,\n"
		       "merging into groups %.0f ns, already merged %.0f ns\n",
		       (unsigned long long)cal->pages, cal->ksmd_first_scan_ns, cal->ksmd_unique_scan_ns,
		       cal->ksmd_merge_scan_ns, cal->ksmd_merged_scan_ns);
	printf("\n--cost ");
	for (int k = 0, first = 1; k < BK_COST__COUNT; k++) {
		if (!cal->measured[k])
			continue;
		printf("%s%s=%.0f", first ? "" : ",", sim_cost_name((enum bk_cost)k), cal->ns[k]);
		first = 0;
	}
	putchar('\n');
}

int cmd_calibrate(int argc, char **argv)
{
	struct calib_opts o = { .pages = 65536 };
	struct real_calibration cal;
	struct sp_err err = { 0 };
	struct cli_progress prog;
	int rc = cli_parse_args(&calib_spec, argc, argv, &o);

	if (rc != CLI_GO)
		return rc;
	cli_progress_init(&prog, "calibrating");
	rc = real_calibrate(&cal, o.pages, !o.no_ksm, calib_progress, &prog, &err);
	cli_progress_done(&prog);
	if (rc < 0) {
		if (rc == SP_ENOTSUP || rc == SP_EPERM)
			fprintf(stderr, "sim: %s (try --no-ksm for the userspace timings only)\n", err.msg);
		else
			fprintf(stderr, "sim: %s\n", err.msg);
		return cli_exit_code(rc);
	}
	calib_report(&cal);
	return EXIT_OK;
}
