/*
 * cmd_transform.c - `sim trace replicate` and `sim trace subset`: traces
 * sized to the host from a recording (traces/transform.h does the work;
 * the sharing assumption is in README.md, "Traces sized to the host").
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "transform.h"

struct replicate_opts {
	struct cli_list args;
	const char *out;
	uint32_t guests, nodes;
	bool quiet;
};

static const struct cli_opt replicate_table[] = {
	{ .name = "guests", .type = CLI_U32, .offset = offsetof(struct replicate_opts, guests),
	  .metavar = "N", .min = 1, .max = TRACE_MAX_GUESTS, .required = true,
	  .help = "guests in the output, made by cycling through the recorded ones" },
	{ .name = "nodes", .type = CLI_U32, .offset = offsetof(struct replicate_opts, nodes),
	  .metavar = "M", .min = 1, .max = TRACE_MAX_NODE + 1,
	  .help = "spread the guests over M NUMA nodes (guest j on node j mod M)\n"
		  "(default: keep the recorded nodes)" },
	{ .name = "output", .short_name = 'o', .type = CLI_PATH,
	  .offset = offsetof(struct replicate_opts, out), .metavar = "OUT", .required = true,
	  .help = "the trace to write" },
	CLI_QUIET_OPT(struct replicate_opts, quiet, "no line on stdout"),
	{ 0 },
};

static const struct cli_spec replicate_spec = {
	.prog = CLI_PROG,
	.name = "trace replicate",
	.usage = "IN --guests N [--nodes M] -o OUT",
	.about = "Makes N guests from the recorded ones, cycling through them (copy c of guest\n"
		 "NAME is NAME#c).  Content that several recorded guests hold stays shared\n"
		 "across all copies; content one guest alone holds becomes private to each copy\n"
		 "(re-keyed); zero pages stay zero; huge-page flags and nodes are kept, or spread\n"
		 "over --nodes.  README.md, \"Traces sized to the host\", states the assumption.",
	.opts = replicate_table,
	.min_args = 1,
	.max_args = 1,
	.args_offset = offsetof(struct replicate_opts, args),
	.args_name = "IN",
};

int cmd_trace_replicate(int argc, char **argv)
{
	struct replicate_opts o = { 0 };
	struct trace_replicate_opts ro;
	struct sp_err err = { 0 };
	int rc = cli_parse_args(&replicate_spec, argc, argv, &o);

	if (rc != CLI_GO)
		return rc;
	ro.guests = o.guests;
	ro.nodes = (uint16_t)o.nodes;
	if (trace_replicate(o.args.v[0], o.out, &ro, &err) < 0)
		return cli_fail(&err);
	if (!o.quiet)
		printf("%s: %u guests from %s\n", o.out, o.guests, o.args.v[0]);
	return EXIT_OK;
}

struct subset_opts {
	struct cli_list args, guests;
	const char *out;
	uint64_t from_ms, to_ms;
	bool quiet;
};

static const struct cli_opt subset_table[] = {
	{ .name = "guest", .type = CLI_LIST, .offset = offsetof(struct subset_opts, guests),
	  .metavar = "NAME", .max_count = TRACE_MAX_GUESTS < CLI_LIST_MAX ? TRACE_MAX_GUESTS : CLI_LIST_MAX,
	  .help = "keep this guest; repeatable (default: every guest)" },
	{ .name = "from-ms", .type = CLI_U64, .offset = offsetof(struct subset_opts, from_ms),
	  .metavar = "T", .help = "first snapshot time kept (default {})" },
	{ .name = "to-ms", .type = CLI_U64, .offset = offsetof(struct subset_opts, to_ms),
	  .metavar = "T", .help = "last snapshot time kept (default: the end)" },
	{ .name = "output", .short_name = 'o', .type = CLI_PATH,
	  .offset = offsetof(struct subset_opts, out), .metavar = "OUT", .required = true,
	  .help = "the trace to write" },
	CLI_QUIET_OPT(struct subset_opts, quiet, "no line on stdout"),
	{ 0 },
};

static const struct cli_spec subset_spec = {
	.prog = CLI_PROG,
	.name = "trace subset",
	.usage = "IN [--guest NAME]... [--from-ms T] [--to-ms T] -o OUT",
	.about = "Keeps the named guests and the snapshots between --from-ms and --to-ms,\n"
		 "shifted to start at 0; the first snapshot kept holds the whole state of those\n"
		 "guests at its time.",
	.opts = subset_table,
	.min_args = 1,
	.max_args = 1,
	.args_offset = offsetof(struct subset_opts, args),
	.args_name = "IN",
};

int cmd_trace_subset(int argc, char **argv)
{
	struct subset_opts o = { .to_ms = UINT64_MAX };
	struct trace_subset_opts so;
	struct sp_err err = { 0 };
	int rc = cli_parse_args(&subset_spec, argc, argv, &o);

	if (rc != CLI_GO)
		return rc;
	if (o.to_ms < o.from_ms)
		return cli_usage_error("trace subset", "--to-ms %llu is before --from-ms %llu",
				       (unsigned long long)o.to_ms, (unsigned long long)o.from_ms);
	so.names = o.guests.v;
	so.nnames = o.guests.n;
	so.from_ms = o.from_ms;
	so.to_ms = o.to_ms;
	if (trace_subset(o.args.v[0], o.out, &so, &err) < 0)
		return cli_fail(&err);
	if (!o.quiet)
		printf("%s: subset of %s\n", o.out, o.args.v[0]);
	return EXIT_OK;
}
