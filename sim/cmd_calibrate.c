/*
 * cmd_calibrate.c - `sim calibrate`: measures the cost model's constants on
 * this machine and prints them as a --cost specification.
 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "calibrate.h"
#include "cli.h"
#include "sim.h"

static void calib_progress(void *arg, const char *phase, double fraction)
{
	cli_progress_update(arg, fraction, phase);
}

int cmd_calibrate(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "pages", required_argument, NULL, 'p' },
		{ "no-ksm", no_argument, NULL, 'n' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct real_calibration cal;
	struct sim_cost defaults;
	struct sp_err err = { 0 };
	struct cli_progress prog;
	uint64_t pages = 65536;
	bool use_ksm = true;
	int c, rc;

	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
		switch (c) {
		case 'p':
			if (!cli_parse_u64(optarg, &pages) || pages > (1ull << 24))
				return cli_usage_error("calibrate", "invalid value '%s' for --pages", optarg);
			break;
		case 'n': use_ksm = false; break;
		case 'h':
			puts("usage: sim calibrate [--pages N] [--no-ksm]\n\n"
			     "Measures the CPU cost model on this machine: checksum, compare and tree\n"
			     "step in userspace over N pages (default 65536 = 256 MiB, twice), then - as\n"
			     "root with KSM - ksmd's own CPU time per page visit, tree step and merge over\n"
			     "the same memory, and the COW break of a merged page.  Prints a --cost\n"
			     "specification for 'sim run'.  Saves and restores every KSM tunable, and\n"
			     "unmerges the host's KSM pages (run=2) while it works.  --no-ksm: userspace only.");
			return EXIT_OK;
		default:
			return cli_usage_error("calibrate", "bad option '%s'", argv[optind - 1]);
		}
	}
	if (optind < argc)
		return cli_usage_error("calibrate", "unexpected argument '%s'", argv[optind]);
	cli_progress_init(&prog, "calibrating");
	rc = real_calibrate(&cal, pages, use_ksm, calib_progress, &prog, &err);
	cli_progress_done(&prog);
	if (rc < 0) {
		if (rc == SP_ENOTSUP || rc == SP_EPERM)
			fprintf(stderr, "sim: %s (try --no-ksm for the userspace timings only)\n", err.msg);
		else
			fprintf(stderr, "sim: %s\n", err.msg);
		return cli_exit_code(rc);
	}
	sim_cost_defaults(&defaults);
	printf("%-10s %12s %12s\n", "operation", "measured ns", "default ns");
	for (int k = 0; k < BK_COST__COUNT; k++) {
		printf("%-10s ", sim_cost_name((enum bk_cost)k));
		if (cal.measured[k])
			printf("%12.1f", cal.ns[k]);
		else
			printf("%12s", "-");
		printf(" %12.1f\n", defaults.ns[k]);
	}
	if (cal.ksmd_first_scan_ns > 0)
		printf("\nksmd per page scanned (%llu pages): first scan %.0f ns, unique pages %.0f ns,\n"
		       "merging into groups %.0f ns, already merged %.0f ns\n",
		       (unsigned long long)cal.pages, cal.ksmd_first_scan_ns, cal.ksmd_unique_scan_ns,
		       cal.ksmd_merge_scan_ns, cal.ksmd_merged_scan_ns);
	printf("\n--cost ");
	for (int k = 0, first = 1; k < BK_COST__COUNT; k++) {
		if (!cal.measured[k])
			continue;
		printf("%s%s=%.0f", first ? "" : ",", sim_cost_name((enum bk_cost)k), cal.ns[k]);
		first = 0;
	}
	putchar('\n');
	return EXIT_OK;
}
