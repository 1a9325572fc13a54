/*
 * test_cli_parse.c - the table-driven command-line parser (sim/cli/cli_parse.h)
 * on a table with one option of every type: values, ranges, syntax, the
 * errors' wording, positional arguments, and the help generated from the
 * same table.
 */
#define _GNU_SOURCE
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli_parse.h"
#include "harness.h"

struct t_opts {
	bool quiet;
	uint64_t count;
	uint32_t small;
	double frac;
	const char *name, *out;
	int mode;
	struct cli_list sets;
	struct cli_u64_list pids;
	struct cli_list args;
	char order[64];
};

static const char *const modes[] = { "user", "kernel", NULL };

static int note(void *opts, const char *v, char *msg, size_t len)
{
	struct t_opts *o = opts;

	if (!strcmp(v, "bad")) {
		snprintf(msg, len, "--note: 'bad' is refused");
		return -1;
	}
	strncat(o->order, v, sizeof(o->order) - strlen(o->order) - 1);
	return 0;
}

static void show_fixed(char *buf, size_t len)
{
	snprintf(buf, len, "a=1,b=2");
}

static const struct cli_opt table[] = {
	{ .name = "quiet", .short_name = 'q', .type = CLI_FLAG, .offset = offsetof(struct t_opts, quiet),
	  .help = "say less" },
	{ .name = "count", .short_name = 'c', .type = CLI_U64, .offset = offsetof(struct t_opts, count),
	  .metavar = "N", .min = 1, .max = 1000, .help = "how many (default {})" },
	{ .name = "small", .type = CLI_U32, .offset = offsetof(struct t_opts, small), .metavar = "N",
	  .help = "a 32-bit count" },
	{ .name = "frac", .type = CLI_DOUBLE, .offset = offsetof(struct t_opts, frac), .metavar = "F",
	  .dmin = 0, .dmax = 1, .help = "a fraction\nof something (default {})" },
	{ .name = "name", .type = CLI_STRING, .offset = offsetof(struct t_opts, name),
	  .metavar = "TEXT", .help = "any text" },
	{ .name = "output", .short_name = 'o', .type = CLI_PATH, .offset = offsetof(struct t_opts, out),
	  .metavar = "FILE", .required = true, .help = "where to write" },
	{ .name = "mode", .type = CLI_ENUM, .offset = offsetof(struct t_opts, mode), .metavar = "M",
	  .choices = modes, .help = "user or kernel (default {})" },
	{ .name = "set", .type = CLI_LIST, .offset = offsetof(struct t_opts, sets),
	  .metavar = "key=value", .max_count = 3, .help = "repeatable" },
	{ .name = "pid", .type = CLI_U64_LIST, .offset = offsetof(struct t_opts, pids),
	  .metavar = "PID", .min = 1, .max = 99, .help = "repeatable" },
	{ .name = "note", .type = CLI_FN, .metavar = "X", .fn = note, .show = show_fixed,
	  .help = "a callback, e.g. {}" },
	{ .name = "seed", .type = CLI_U64, .offset = offsetof(struct t_opts, count), .metavar = "N",
	  .help = "shares a prefix with --set" },
	{ 0 },
};

static const struct cli_spec spec = {
	.prog = "prog",
	.name = "cmd",
	.usage = "-o FILE [options] [ARG...]\n[more]",
	.about = "About the command.",
	.notes = "Notes at the end.",
	.opts = table,
	.max_args = 2,
	.args_offset = offsetof(struct t_opts, args),
	.args_name = "ARG",
};

static int dummy_main(int argc, char **argv);
static struct t_opts opts;
static struct cli_err err;

/* Parses a NULL-terminated argument list after argv[0] = "cmd" into the global opts. */
static int parse_with(const struct cli_spec *s, const char *first, ...)
{
	char *argv[64];
	int argc = 0;
	va_list ap;

	memset(&opts, 0, sizeof(opts));
	opts.count = 7;
	opts.frac = 0.25;
	argv[argc++] = "cmd";
	va_start(ap, first);
	for (const char *a = first; a && argc < 63; a = va_arg(ap, const char *))
		argv[argc++] = (char *)a;
	va_end(ap);
	argv[argc] = NULL;
	return cli_parse(s, argc, argv, &opts, &err);
}

#define P(...) parse_with(&spec, __VA_ARGS__, (const char *)NULL)

static void expect_error(int rc, const char *text)
{
	CU_ASSERT_EQUAL(rc, CLI_EUSAGE);
	if (!strstr(err.msg, text)) {
		fprintf(stderr, "error '%s' lacks '%s'\n", err.msg, text);
		CU_FAIL("wrong message");
	}
	CU_ASSERT_PTR_NULL(strchr(err.msg, '\n'));
}

SP_TEST(values_of_every_type_are_stored)
{
	CU_ASSERT_EQUAL_FATAL(P("-o", "x", "-q", "--count", "12", "--small=4000000000", "--frac", "0.5",
				"--name", "", "--mode", "kernel", "--set", "a=1", "--set", "b=2", "--pid",
				"3", "--pid=99", "first", "--", "-second"),
			      CLI_OK);
	CU_ASSERT_STRING_EQUAL(opts.out, "x");
	CU_ASSERT_TRUE(opts.quiet);
	CU_ASSERT_EQUAL(opts.count, 12);
	CU_ASSERT_EQUAL(opts.small, 4000000000u);
	CU_ASSERT_DOUBLE_EQUAL(opts.frac, 0.5, 0);
	CU_ASSERT_STRING_EQUAL(opts.name, "");
	CU_ASSERT_EQUAL(opts.mode, 1);
	CU_ASSERT_EQUAL_FATAL(opts.sets.n, 2);
	CU_ASSERT_STRING_EQUAL(opts.sets.v[0], "a=1");
	CU_ASSERT_STRING_EQUAL(opts.sets.v[1], "b=2");
	CU_ASSERT_EQUAL_FATAL(opts.pids.n, 2);
	CU_ASSERT_EQUAL(opts.pids.v[0], 3);
	CU_ASSERT_EQUAL(opts.pids.v[1], 99);
	CU_ASSERT_EQUAL_FATAL(opts.args.n, 2);
	CU_ASSERT_STRING_EQUAL(opts.args.v[0], "first");
	CU_ASSERT_STRING_EQUAL(opts.args.v[1], "-second");
}

SP_TEST(defaults_stay_when_options_are_absent)
{
	CU_ASSERT_EQUAL_FATAL(P("--output", "f"), CLI_OK);
	CU_ASSERT_EQUAL(opts.count, 7);
	CU_ASSERT_DOUBLE_EQUAL(opts.frac, 0.25, 0);
	CU_ASSERT_FALSE(opts.quiet);
	CU_ASSERT_EQUAL(opts.sets.n, 0);
	CU_ASSERT_EQUAL(opts.args.n, 0);
}

SP_TEST(short_forms_attach_and_cluster)
{
	CU_ASSERT_EQUAL_FATAL(P("-ofile", "-qc5"), CLI_OK);
	CU_ASSERT_STRING_EQUAL(opts.out, "file");
	CU_ASSERT_TRUE(opts.quiet);
	CU_ASSERT_EQUAL(opts.count, 5);
	expect_error(P("-o", "f", "-x"), "unknown option '-x'");
}

SP_TEST(integers_are_digits_only_and_in_range)
{
	static const char *const bad[] = { " 1", "1 ", "-1", " -1", "+1", "0x10", "1e3", "", "12a",
					   "18446744073709551616", "99999999999999999999999" };

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char want[96];

		snprintf(want, sizeof(want), "invalid value '%s' for --count", bad[i]);
		expect_error(P("-o", "f", "--count", bad[i]), want);
	}
	expect_error(P("-o", "f", "--count", "0"), "must be 1 to 1000");
	expect_error(P("-o", "f", "--count", "1001"), "must be 1 to 1000");
	CU_ASSERT_EQUAL(P("-o", "f", "--count", "1000"), CLI_OK);
	CU_ASSERT_EQUAL(P("-o", "f", "--count", "0001"), CLI_OK);
	CU_ASSERT_EQUAL(opts.count, 1);
	expect_error(P("-o", "f", "--small", "4294967296"), "must be 0 to 4294967295");
	expect_error(P("-o", "f", "--pid", "100"), "invalid value '100' for --pid");
	expect_error(P("-o", "f", "--pid", "0"), "must be 1 to 99");
}

SP_TEST(doubles_are_decimal_and_in_range)
{
	static const char *const good[] = { "0", "1", "0.5", ".5", "1.", "1e-1", "1E-2", "-0" };
	static const char *const bad[] = { " 0.5", "0.5 ", "+0.5", "inf", "nan", "0x1p-2", "1e", ".", "-",
					   "1e400", "0,5" };

	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		if (P("-o", "f", "--frac", good[i]) != CLI_OK) {
			fprintf(stderr, "%s: %s\n", good[i], err.msg);
			CU_FAIL("a valid double refused");
		}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		expect_error(P("-o", "f", "--frac", bad[i]), "invalid value");
	expect_error(P("-o", "f", "--frac", "1.5"), "invalid value '1.5' for --frac (must be 0 to 1)");
	expect_error(P("-o", "f", "--frac", "-0.1"), "must be 0 to 1");
}

SP_TEST(missing_values_are_named)
{
	expect_error(P("-o", "f", "--count"), "option --count needs a value");
	expect_error(P("-o"), "option --output needs a value");
	/* a following long option is not taken as the value */
	expect_error(P("--output", "--quiet"), "option --output needs a value");
	/* but anything else is, verbatim, as getopt does */
	expect_error(P("-o", "f", "--count", "-3"), "invalid value '-3' for --count");
	CU_ASSERT_EQUAL(P("-o", "-"), CLI_OK);
	CU_ASSERT_STRING_EQUAL(opts.out, "-");
	CU_ASSERT_EQUAL(P("--output=--quiet"), CLI_OK);
	CU_ASSERT_STRING_EQUAL(opts.out, "--quiet");
}

SP_TEST(unknown_ambiguous_and_abbreviated_options)
{
	expect_error(P("-o", "f", "--frobnicate"), "unknown option '--frobnicate'");
	expect_error(P("-o", "f", "--frobnicate=1"), "unknown option '--frobnicate'");
	expect_error(P("-o", "f", "--se", "1"), "option '--se' is ambiguous (--set, --seed)");
	CU_ASSERT_EQUAL_FATAL(P("-o", "f", "--cou", "9", "--qu"), CLI_OK);
	CU_ASSERT_EQUAL(opts.count, 9);
	CU_ASSERT_TRUE(opts.quiet);
	/* an exact name wins over the longer names it is a prefix of */
	CU_ASSERT_EQUAL(P("-o", "f", "--set", "k=v"), CLI_OK);
	expect_error(P("-o", "f", "--quiet=yes"), "option --quiet takes no value");
}

SP_TEST(paths_enums_and_required_options)
{
	expect_error(P("-o", ""), "invalid value '' for --output (an empty path)");
	expect_error(P("-q"), "--output FILE is required");
	expect_error(P("-o", "f", "--mode", "turbo"), "unknown --mode 'turbo' (valid: user, kernel)");
	CU_ASSERT_EQUAL(P("-o", "f", "--mode", "user"), CLI_OK);
	CU_ASSERT_EQUAL(opts.mode, 0);
}

SP_TEST(lists_stop_at_their_limit)
{
	CU_ASSERT_EQUAL(P("-o", "f", "--set", "a", "--set", "b", "--set", "c"), CLI_OK);
	expect_error(P("-o", "f", "--set", "a", "--set", "b", "--set", "c", "--set", "d"),
		     "more than 3 --set options");
}

SP_TEST(callbacks_run_in_order_and_can_refuse)
{
	CU_ASSERT_EQUAL_FATAL(P("--note", "a", "-o", "f", "--note=b", "--note", "c"), CLI_OK);
	CU_ASSERT_STRING_EQUAL(opts.order, "abc");
	expect_error(P("-o", "f", "--note", "bad"), "--note: 'bad' is refused");
}

SP_TEST(positional_arguments_are_counted)
{
	static const struct cli_spec none = { .prog = "prog", .name = "none", .opts = table };
	static const struct cli_spec one = { .prog = "prog", .name = "one", .min_args = 1,
					     .max_args = 1, .args_name = "FILE",
					     .args_offset = offsetof(struct t_opts, args) };

	expect_error(P("-o", "f", "a", "b", "c"), "unexpected argument 'c'");
	expect_error(parse_with(&none, "-o", "f", "stray", (const char *)NULL),
		     "unexpected argument 'stray'");
	expect_error(parse_with(&one, (const char *)NULL), "missing FILE");
	/* an option where only a file is expected is an unknown option, not a file */
	expect_error(parse_with(&one, "--bogus", (const char *)NULL), "unknown option '--bogus'");
	CU_ASSERT_EQUAL(parse_with(&one, "--", "--bogus", (const char *)NULL), CLI_OK);
	CU_ASSERT_STRING_EQUAL(opts.args.v[0], "--bogus");
}

/* An error quotes argv escaped: ESC [ 2 J in any argument reaches err.msg as \x1b[2J. */
SP_TEST(errors_quote_arguments_escaped)
{
	expect_error(P("-o", "f", "--frob\033[2J"), "unknown option '--frob\\x1b[2J'");
	expect_error(P("-o", "f", "--count", "1\033[2J"), "invalid value '1\\x1b[2J' for --count");
	expect_error(P("-o", "f", "--mode", "\033[2J\n"), "unknown --mode '\\x1b[2J\\x0a'");
	expect_error(P("-o", "f", "--note", "bad", "x\033"), "--note: 'bad' is refused");
	expect_error(P("-o", "f", "a", "b", "\033]0;t\007"), "unexpected argument '\\x1b]0;t\\x07'");
	CU_ASSERT_PTR_NULL(strchr(err.msg, '\033'));
}

SP_TEST(help_wins_over_errors)
{
	CU_ASSERT_EQUAL(P("--frobnicate", "--help"), CLI_HELP);
	CU_ASSERT_EQUAL(P("-h"), CLI_HELP);
	CU_ASSERT_EQUAL(P("--count", "zero", "-h"), CLI_HELP);
	/* after "--" it is an argument */
	CU_ASSERT_EQUAL(P("-o", "f", "--", "--help"), CLI_OK);
}

SP_TEST(help_is_generated_from_the_table)
{
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);
	struct t_opts d = { .count = 42, .frac = 0.125, .mode = 1 };

	CU_ASSERT_PTR_NOT_NULL_FATAL(f);
	cli_help(&spec, &d, f);
	fclose(f);
	CU_ASSERT_PTR_NOT_NULL(strstr(text, "usage: prog cmd -o FILE [options] [ARG...]\n"
					    "                [more]\n"));
	CU_ASSERT_PTR_NOT_NULL(strstr(text, "\nAbout the command.\n"));
	for (const struct cli_opt *o = table; o->name; o++) {
		char want[64];

		snprintf(want, sizeof(want), "--%s%s%s", o->name, o->metavar ? " " : "",
			 o->metavar ? o->metavar : "");
		if (!strstr(text, want)) {
			fprintf(stderr, "help lacks '%s':\n%s", want, text);
			CU_FAIL("option missing from the help");
		}
	}
	CU_ASSERT_PTR_NOT_NULL(strstr(text, "-q, --quiet"));
	CU_ASSERT_PTR_NOT_NULL(strstr(text, "-h, --help"));
	CU_ASSERT_PTR_NOT_NULL(strstr(text, "how many (default 42)"));
	CU_ASSERT_PTR_NOT_NULL(strstr(text, "user or kernel (default kernel)"));
	CU_ASSERT_PTR_NOT_NULL(strstr(text, "a callback, e.g. a=1,b=2"));
	/* a continuation line is indented under the text */
	CU_ASSERT_PTR_NOT_NULL(strstr(text, "a fraction\n                     of something (default 0.125)"));
	CU_ASSERT_PTR_NOT_NULL(strstr(text, "\nNotes at the end.\n"));
	free(text);
}

SP_TEST(command_tables)
{
	static const struct cli_command t[] = {
		{ "run", "runs", dummy_main }, { "list", "lists", dummy_main }, { NULL, NULL, NULL },
	};
	char names[64];

	CU_ASSERT_PTR_EQUAL(cli_command_find(t, "list"), &t[1]);
	CU_ASSERT_PTR_NULL(cli_command_find(t, "li"));
	cli_command_names(t, names, sizeof(names));
	CU_ASSERT_STRING_EQUAL(names, "run, list");
	cli_command_names(t, names, 5);
	CU_ASSERT_EQUAL(strlen(names), 4);
}

static int dummy_main(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	return 0;
}
