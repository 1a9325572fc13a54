/*
 * fuzz_options.c - libFuzzer harness for the command-line parser
 * (sim/cli/cli_parse.c): the input, split at NUL bytes, is an argv parsed
 * against a table with an option of every type (flags, short options,
 * bounded integers and doubles, paths, enums, repeatable lists, callbacks,
 * positional arguments), and the help of that table is written.
 */
#include "cli_parse.h"
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct opts {
	bool flag;
	uint64_t u64, seed;
	uint32_t u32;
	double d;
	const char *s, *path;
	int e;
	struct cli_list list, args;
	struct cli_u64_list ulist;
	int calls;
};

static int count_call(void *o, const char *v, char *msg, size_t len)
{
	(void)v;
	(void)msg;
	(void)len;
	((struct opts *)o)->calls++;
	return 0;
}

static const char *const choices[] = { "user", "kernel", NULL };

static const struct cli_opt table[] = {
	{ .name = "quiet", .short_name = 'q', .type = CLI_FLAG, .offset = offsetof(struct opts, flag),
	  .help = "a flag" },
	{ .name = "duration-ms", .type = CLI_U64, .offset = offsetof(struct opts, u64), .metavar = "N",
	  .min = 1, .max = 1ull << 40, .help = "bounded {}" },
	{ .name = "seed", .type = CLI_U64, .offset = offsetof(struct opts, seed), .metavar = "N",
	  .help = "any u64 {}" },
	{ .name = "guests", .short_name = 'g', .type = CLI_U32, .offset = offsetof(struct opts, u32),
	  .metavar = "N", .min = 1, .max = 4096, .help = "u32" },
	{ .name = "fraction", .type = CLI_DOUBLE, .offset = offsetof(struct opts, d), .metavar = "F",
	  .dmin = 0, .dmax = 1, .help = "double" },
	{ .name = "cost", .type = CLI_STRING, .offset = offsetof(struct opts, s), .metavar = "SPEC",
	  .help = "string" },
	{ .name = "csv", .short_name = 'o', .type = CLI_PATH, .offset = offsetof(struct opts, path),
	  .metavar = "OUT", .help = "path" },
	{ .name = "mechanism", .type = CLI_ENUM, .offset = offsetof(struct opts, e), .metavar = "M",
	  .choices = choices, .help = "enum" },
	{ .name = "set", .type = CLI_LIST, .offset = offsetof(struct opts, list),
	  .metavar = "key=value", .max_count = 8, .help = "list" },
	{ .name = "pid", .type = CLI_U64_LIST, .offset = offsetof(struct opts, ulist), .metavar = "PID",
	  .min = 1, .max = 1u << 22, .help = "u64 list" },
	{ .name = "vary", .type = CLI_FN, .fn = count_call, .metavar = "key=v1,v2", .help = "fn" },
	{ 0 },
};

static const struct cli_spec spec = {
	.prog = "sim", .name = "fuzz", .usage = "[options] FILE...", .about = "fuzzing",
	.opts = table, .min_args = 0, .max_args = 4, .args_name = "FILE",
	.args_offset = offsetof(struct opts, args),
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *buf = malloc(size + 1), *argv[66];
	struct opts o;
	struct cli_err err;
	int argc = 1;

	if (!buf)
		return 0;
	memcpy(buf, data, size);
	buf[size] = '\0';
	argv[0] = (char *)"fuzz";
	for (size_t i = 0; i <= size && argc < 65;) {
		argv[argc++] = buf + i;
		i += strlen(buf + i) + 1;
	}
	argv[argc] = NULL;
	memset(&o, 0, sizeof(o));
	if (cli_parse(&spec, argc, argv, &o, &err) == CLI_HELP) {
		FILE *f = fopen("/dev/null", "w");

		if (f) {
			cli_help(&spec, &o, f);
			fclose(f);
		}
	}
	free(buf);
	return 0;
}
