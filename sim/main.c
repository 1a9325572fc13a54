/*
 * main.c - the `sim` command: dispatches to the subcommands through one
 * table, which also makes the command list of `sim --help` and of the
 * unknown-command error.  Only the cmd_* functions print or choose exit
 * codes; the libraries never do.
 */
#include <stdio.h>
#include <string.h>

#include "cli.h"

static int cmd_help(int argc, char **argv);

static const struct cli_command commands[] = {
	{ "run", "replay a trace through one merge algorithm, report savings and cost", cmd_run },
	{ "list", "list the algorithms with their parameters, defaults and ranges", cmd_list },
	{ "compare", "run several algorithms over one trace in parallel, write a report", cmd_compare },
	{ "sweep", "run one algorithm over a grid of parameters and seeds, write a report", cmd_sweep },
	{ "plan", "choose KSM settings for a host: savings, CPU, swap, NUMA, a samepaged config",
	  cmd_plan },
	{ "trace", "make and inspect traces (verbs below)", cmd_trace },
	{ "validate", "check the simulator against the kernel's KSM live on this machine (root)",
	  cmd_validate },
	{ "calibrate", "measure the CPU cost model on this machine (root for the ksmd part)",
	  cmd_calibrate },
	{ "real", "replay a trace in live memory, merged for real by an algorithm or KSM (root)",
	  cmd_real },
	{ "help", "'sim help COMMAND [VERB]' describes a command", cmd_help },
	{ NULL, NULL, NULL },
};

static void usage(FILE *f)
{
	fputs("usage: sim COMMAND [OPTIONS]\n"
	      "\n"
	      "Simulate memory page-merging algorithms (Linux KSM and its rivals) on\n"
	      "recorded or synthetic guest memory traces.\n"
	      "\n"
	      "commands:\n",
	      f);
	cli_command_list(commands, "  ", 9, f);
	fputs("\ntrace verbs (sim trace VERB):\n", f);
	cli_command_list(cli_trace_verbs, "  ", 9, f);
	fputs("\n'sim COMMAND --help' or 'sim help COMMAND' describes a command.  Exit codes:\n"
	      "0 success, 1 failure, 2 usage error, 3 bad input file, 4 missing privilege or\n"
	      "facility (or KSM driven by another process), 5 an unmerge refused for want of\n"
	      "memory (validate, calibrate, real replay --mechanism kernel).\n",
	      f);
}

static int unknown_command(const char *what, const char *name, const struct cli_command *table)
{
	char names[256];

	cli_command_names(table, names, sizeof(names));
	cli_errorf("unknown %s '%s' (%s: %s; see 'sim --help')", what, name,
		table == commands ? "commands" : "verbs", names);
	return EXIT_USAGE;
}

/* `sim help CMD [VERB]` is `sim CMD [VERB] --help`. */
static int cmd_help(int argc, char **argv)
{
	const struct cli_command *c;
	char *args[4];

	if (argc < 2) {
		usage(stdout);
		return EXIT_OK;
	}
	if (argc > 3)
		return cli_usage_error("help", "usage: sim help COMMAND [VERB]");
	c = cli_command_find(commands, argv[1]);
	if (!c)
		return unknown_command("command", argv[1], commands);
	if (c->main == cmd_help) {
		usage(stdout);
		return EXIT_OK;
	}
	if (argc == 3 && !strcmp(argv[1], "trace") && !cli_command_find(cli_trace_verbs, argv[2]))
		return unknown_command("trace verb", argv[2], cli_trace_verbs);
	args[0] = argv[1];
	args[1] = argc == 3 ? argv[2] : "--help";
	args[2] = argc == 3 ? "--help" : NULL;
	args[3] = NULL;
	return c->main(argc == 3 ? 3 : 2, args);
}

int main(int argc, char **argv)
{
	const struct cli_command *c;

	if (argc < 2) {
		usage(stderr);
		return EXIT_USAGE;
	}
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
		usage(stdout);
		return EXIT_OK;
	}
	if (!strcmp(argv[1], "--version")) {
		puts("sim (samepage) " SP_VERSION);
		return EXIT_OK;
	}
	c = cli_command_find(commands, argv[1]);
	if (!c)
		return unknown_command("command", argv[1], commands);
	return c->main(argc - 1, argv + 1);
}
