/*
 * main.c - the `sim` command: dispatches to the subcommands.  Only the
 * cmd_* functions print or choose exit codes; the libraries never do.
 */
#include <stdio.h>
#include <string.h>

#include "cli.h"

static void usage(FILE *f)
{
	fputs("usage: sim COMMAND [OPTIONS]\n"
	      "\n"
	      "Simulate memory page-merging algorithms (Linux KSM and its rivals) on\n"
	      "recorded or synthetic guest memory traces.\n"
	      "\n"
	      "commands:\n"
	      "  run      replay a trace through one merge algorithm, report savings and cost\n"
	      "  list     list the algorithms with their parameters, defaults and ranges\n"
	      "  compare  run several algorithms over one trace in parallel, write a report\n"
	      "  sweep    run one algorithm over a grid of parameters and seeds, write a report\n"
	      "  trace    make and inspect traces: gen, info, check, export\n"
	      "  validate check the simulator against the kernel's KSM live on this machine (root)\n"
	      "  calibrate measure the CPU cost model on this machine (root for the ksmd part)\n"
	      "  real     replay a trace in live memory, merged for real by an algorithm or KSM (root)\n"
	      "\n"
	      "'sim COMMAND --help' describes a command.  Exit codes: 0 success, 1 failure,\n"
	      "2 usage error, 3 bad input file, 4 missing privilege or facility.\n",
	      f);
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		return EXIT_USAGE;
	}
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
		usage(stdout);
		return EXIT_OK;
	}
	if (!strcmp(argv[1], "--version")) {
		puts("sim (samepage) " SP_VERSION);
		return EXIT_OK;
	}
	if (!strcmp(argv[1], "run"))
		return cmd_run(argc - 1, argv + 1);
	if (!strcmp(argv[1], "compare"))
		return cmd_compare(argc - 1, argv + 1);
	if (!strcmp(argv[1], "sweep"))
		return cmd_sweep(argc - 1, argv + 1);
	if (!strcmp(argv[1], "list"))
		return cmd_list(argc - 1, argv + 1);
	if (!strcmp(argv[1], "calibrate"))
		return cmd_calibrate(argc - 1, argv + 1);
	if (!strcmp(argv[1], "trace"))
		return cmd_trace(argc - 1, argv + 1);
	if (!strcmp(argv[1], "validate"))
		return cmd_validate(argc - 1, argv + 1);
	if (!strcmp(argv[1], "real"))
		return cmd_real(argc - 1, argv + 1);
	fprintf(stderr, "sim: unknown command '%s' (commands: run, compare, sweep, list, trace, validate; see 'sim --help')\n",
		argv[1]);
	return EXIT_USAGE;
}
