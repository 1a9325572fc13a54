/*
 * cli_parse.h - a table-driven command-line parser, shared by every
 * samepage executable (`sim` and its subcommands, `samepaged`).
 *
 * A command describes its options once, in a table of struct cli_opt; the
 * same table parses argv into the command's own options struct (each entry
 * names a field by offsetof) and prints the command's help, so the help and
 * the parser never disagree.  The parser keeps no state between calls, has
 * no globals, never prints and never exits: errors come back as one line in
 * struct cli_err (escaped for a terminal: it quotes argv), help goes to the
 * FILE the caller chooses.
 *
 * Syntax (that of getopt_long): --name VALUE, --name=VALUE, -x VALUE, -xVALUE,
 * clustered short flags (-qh), unambiguous prefixes of long names (--dur for
 * --duration-ms), "--" ends the options.  A value is the next argument
 * verbatim (so "--guests -3" is an invalid value, not an unknown option),
 * except that a following "--long-option" is taken as a missing value.
 * --help and -h are built in and win over any error.  Arguments that are
 * not options are positional: accepted only where the spec says so.
 *
 * Values are checked by type, with the same rules everywhere: integers are
 * decimal digits only (no sign, no space, no hex) within [min, max]; doubles
 * are decimal ([-]digits[.digits][e[+-]digits], no space, no inf/nan) within
 * [dmin, dmax]; paths are non-empty; enums are one of their choices.
 */
#ifndef SP_CLI_PARSE_H
#define SP_CLI_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* The most values one repeatable option (or the positional arguments) holds. */
#define CLI_LIST_MAX 256

enum cli_type {
	CLI_FLAG,     /* bool, set to true; takes no value */
	CLI_U64,      /* uint64_t in [min, max] */
	CLI_U32,      /* uint32_t in [min, max] (max is capped at UINT32_MAX) */
	CLI_DOUBLE,   /* double in [dmin, dmax] */
	CLI_STRING,   /* const char *: any text, also empty */
	CLI_PATH,     /* const char *: a file or directory name, not empty */
	CLI_ENUM,     /* int: the index of the value in choices */
	CLI_LIST,     /* struct cli_list: repeatable, strings, at most max (default CLI_LIST_MAX) */
	CLI_U64_LIST, /* struct cli_u64_list: repeatable, each in [min, max] */
	CLI_FN,       /* calls fn(opts, value, ...) in command-line order */
};

struct cli_list {
	size_t n;
	const char *v[CLI_LIST_MAX];
};

struct cli_u64_list {
	size_t n;
	uint64_t v[CLI_LIST_MAX];
};

/* A value check or action: 0, or -1 with a one-line message in msg. */
typedef int (*cli_value_fn)(void *opts, const char *value, char *msg, size_t len);
/* Formats an option's default for the help (see cli_opt.help). */
typedef void (*cli_show_fn)(char *buf, size_t len);

struct cli_opt {
	const char *name;       /* long name without "--"; NULL ends a table */
	char short_name;        /* 'q' for -q, or 0 */
	enum cli_type type;
	size_t offset;          /* offsetof(options struct, field); unused by CLI_FN */
	const char *metavar;    /* the value's name in the help: "N", "FILE" */
	/*
	 * The help text; '\n' starts a continuation line.  "{}" is replaced by
	 * the default: show() if set, else the field's value in the options
	 * struct given to cli_help().
	 */
	const char *help;
	uint64_t min, max;      /* CLI_U64, CLI_U32, CLI_U64_LIST; max 0 = no limit; lists: max count */
	double dmin, dmax;      /* CLI_DOUBLE; both 0 = any finite value */
	const char *const *choices; /* CLI_ENUM: NULL-terminated */
	cli_value_fn fn;        /* CLI_FN: the action; other types: an extra check after parsing */
	cli_show_fn show;
	bool required;          /* an error "--name METAVAR is required" when absent */
	size_t max_count;       /* CLI_LIST, CLI_U64_LIST: the most values (0: CLI_LIST_MAX) */
};

struct cli_spec {
	const char *prog;       /* "sim", "samepaged" */
	const char *name;       /* the command path after prog ("run", "trace gen"), or NULL */
	const char *usage;      /* the synopsis after "usage: PROG NAME "; '\n' continues it */
	const char *about;      /* a paragraph under the synopsis, or NULL */
	const char *notes;      /* text after the options, or NULL */
	const struct cli_opt *opts;  /* NULL-terminated table, or NULL */
	const struct cli_opt *opts2; /* a second table (shared options), or NULL */
	/* Positional arguments: at least min_args ("missing ARGS_NAME"), at most max_args
	 * (0: none; SIZE_MAX: any), stored in a struct cli_list at args_offset (at most
	 * CLI_LIST_MAX), or handed to arg_fn in order when it is set. */
	size_t min_args, max_args;
	size_t args_offset;
	cli_value_fn arg_fn;
	const char *args_name;  /* "FILE": named in "missing FILE" */
};

struct cli_err {
	char msg[512];
};

enum { CLI_OK = 0, CLI_HELP = 1, CLI_EUSAGE = -1 };

/*
 * Parses argv[1..argc-1] (argv[0] is the command's name) into opts, which
 * the caller has filled with the defaults.  Returns CLI_OK, CLI_HELP (--help
 * or -h was given: print cli_help), or CLI_EUSAGE with the reason in err.
 */
int cli_parse(const struct cli_spec *spec, int argc, char **argv, void *opts, struct cli_err *err);

/* Writes the help generated from spec to f; opts (may be NULL) holds the defaults for "{}". */
void cli_help(const struct cli_spec *spec, const void *opts, FILE *f);

/* Strict number parsing, as the parser does it: true when s is a valid number. */
bool cli_parse_u64(const char *s, uint64_t *out);
bool cli_parse_double(const char *s, double *out);

/* A multi-command program: a table of these, ended by a NULL name. */
struct cli_command {
	const char *name;
	const char *summary;    /* one line for the command list */
	int (*main)(int argc, char **argv); /* argv[0] is the command's name */
};

const struct cli_command *cli_command_find(const struct cli_command *table, const char *name);
/* "name, name, ..." of the table into buf. */
void cli_command_names(const struct cli_command *table, char *buf, size_t len);
/* One line per command: "  name     summary", names padded to width. */
void cli_command_list(const struct cli_command *table, const char *indent, int width, FILE *f);

#endif
