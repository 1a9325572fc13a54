/*
 * cli.h - shared pieces of the `sim` command line: exit codes, the progress
 * bar, and the subcommands' entry points.
 *
 * Exit codes (README.md): 0 success; 1 runtime failure (I/O, memory);
 * 2 usage error (unknown option, bad value); 3 bad input file (not a trace,
 * truncated, corrupt, beyond limits); 4 missing privilege or facility
 * (no KSM, not root, no second NUMA node).
 */
#ifndef SP_CLI_H
#define SP_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cli_parse.h"
#include "sp_error.h"

enum { EXIT_OK = 0, EXIT_FAIL = 1, EXIT_USAGE = 2, EXIT_BADINPUT = 3, EXIT_UNAVAILABLE = 4,
       EXIT_NOROOM = 5 /* an unmerge refused: not enough memory + swap for the worst case */ };

int cli_exit_code(int sp_code);
/* Prints "sim: MESSAGE" for err and returns the exit code for it. */
int cli_fail(const struct sp_err *err);
/* Prints "sim: " and the message, escaped for a terminal (it may quote argv), and a newline. */
void cli_errorf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/*
 * Prints "sim: unknown WHAT 'NAME'WHY; valid: ..." (the algorithms, or the
 * controllers when ctl), escaped; with name NULL "--WHAT is required; valid: ...".
 * Returns EXIT_USAGE.
 */
int cli_unknown_name(const char *what, const char *name, const char *why, bool ctl);
/* Prints "sim: " fmt (escaped, as cli_errorf) and a hint to see --help; returns EXIT_USAGE. */
int cli_usage_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/*
 * Parses argv (argv[0] the command) by spec into opts (filled with the
 * defaults): CLI_GO when the command goes on; otherwise the exit code, the
 * help printed (EXIT_OK) or the error with a pointer to the help (EXIT_USAGE).
 */
#define CLI_GO (-1)
int cli_parse_args(const struct cli_spec *spec, int argc, char **argv, void *opts);
/* The program name and command name for specs: "sim". */
#define CLI_PROG "sim"

/* A one-line progress bar on stderr, shown only on a terminal. */
struct cli_progress {
	bool on;
	const char *label;
	double last_shown; /* fraction at the last redraw */
	bool drawn;
};
void cli_progress_init(struct cli_progress *p, const char *label);
void cli_progress_update(struct cli_progress *p, double fraction, const char *detail);
void cli_progress_done(struct cli_progress *p);
/* A trace_progress_fn over bytes read; arg is a struct cli_progress. */
void cli_load_progress(void *arg, uint64_t done, uint64_t total);
struct trace_mem;
/* Loads and checks the whole trace with a progress bar: EXIT_OK, or the error printed and its exit code. */
int cli_load_trace(struct trace_mem **out, const char *path);
/* calloc(1, size), or "sim: out of memory" printed and NULL. */
void *cli_calloc(size_t size);

const char *cli_default_trace(void);

#define CLI_MAX_SETS 128

/*
 * The options every simulating command takes (run, compare, sweep; validate
 * and real take the durations), with the same spelling, ranges and help:
 * CLI_SIM_TIME_OPTS, CLI_SIM_SEED_OPT and CLI_SIM_MODEL_OPTS expand to
 * cli_opt table entries for the struct cli_sim_opts member m of struct T.
 */
struct cli_sim_opts {
	uint64_t duration_ms; /* 0: until tail_ms after the last snapshot */
	uint64_t tail_ms;
	uint64_t sample_ms;
	uint64_t seed;
	bool spread;
	const char *cost;     /* NULL: the default cost model */
	const char *kernel;   /* --kernel VERSION[,behaviour=0|1]...; NULL: the newest */
};

void cli_sim_opts_init(struct cli_sim_opts *o);
/* The default cost model as a --cost SPEC, for the help. */
void cli_show_cost(char *buf, size_t len);
/* The bundled sample trace, for the help. */
void cli_show_default_trace(char *buf, size_t len);

/* --trace FILE into field f of struct T (default: the sample trace). */
#define CLI_TRACE_OPT(T, f)                                                                \
	{ .name = "trace", .type = CLI_PATH, .offset = offsetof(T, f), .metavar = "FILE",   \
	  .show = cli_show_default_trace,                                                      \
	  .help = "trace to replay (default: the bundled sample {})" }
/* -q, --quiet into field f of struct T, with its help. */
#define CLI_QUIET_OPT(T, f, text)                                                          \
	{ .name = "quiet", .short_name = 'q', .type = CLI_FLAG, .offset = offsetof(T, f),   \
	  .help = text }

/* --jobs N into field f of struct T: threads, 0 (the default) for one per CPU. */
void cli_show_cpus(char *buf, size_t len);
#define CLI_JOBS_OPT(T, f)                                                                    \
	{ .name = "jobs", .type = CLI_U64, .offset = offsetof(T, f), .metavar = "N", .min = 1,  \
	  .max = 1024, .show = cli_show_cpus,                                                  \
	  .help = "threads (default: the number of CPUs, {} here)" }

#define CLI_MAX_SIM_MS (1ull << 40)

#define CLI_MAX_SIM_MS (1ull << 40)

#define CLI_SIM_DURATION_OPT(T, m, text)                                                   \
	{ .name = "duration-ms", .type = CLI_U64, .offset = offsetof(T, m.duration_ms),     \
	  .metavar = "N", .min = 1, .max = CLI_MAX_SIM_MS, .help = text }
#define CLI_SIM_SAMPLE_OPT(T, m, text)                                                     \
	{ .name = "sample-ms", .type = CLI_U64, .offset = offsetof(T, m.sample_ms),         \
	  .metavar = "N", .min = 1, .max = CLI_MAX_SIM_MS, .help = text }
#define CLI_SIM_TIME_OPTS(T, m)                                                            \
	CLI_SIM_DURATION_OPT(T, m,                                                          \
			     "simulate N ms (default: until --tail-ms after the last snapshot)"), \
	{ .name = "tail-ms", .type = CLI_U64, .offset = offsetof(T, m.tail_ms),             \
	  .metavar = "N", .max = CLI_MAX_SIM_MS,                                               \
	  .help = "time to keep simulating after the last snapshot (default {})" },            \
	CLI_SIM_SAMPLE_OPT(T, m, "sample the metrics every N ms (default {})")
#define CLI_SIM_SEED_OPT(T, m)                                                             \
	{ .name = "seed", .type = CLI_U64, .offset = offsetof(T, m.seed), .metavar = "N",   \
	  .help = "seed for randomised algorithms and --spread-writes (default {})" }
/* --kernel: the Linux version whose KSM the ksm model and the huge-page splits follow. */
#define CLI_SIM_KERNEL_OPT(T, m, text)                                                     \
	{ .name = "kernel", .type = CLI_STRING, .offset = offsetof(T, m.kernel),            \
	  .metavar = "VERSION", .help = text }
#define CLI_SIM_KERNEL_HELP                                                                \
	"Linux version to model (5.14 ... 6.18 or a `uname -r`), optionally\n"             \
	"with behaviours set on their own: 6.6,checksum_first=1 (README)"
#define CLI_SIM_MODEL_OPTS(T, m)                                                           \
	{ .name = "spread-writes", .type = CLI_FLAG, .offset = offsetof(T, m.spread),       \
	  .help = "spread each snapshot's writes uniformly over its interval (seeded)" },      \
	{ .name = "cost", .type = CLI_STRING, .offset = offsetof(T, m.cost), .metavar = "SPEC", \
	  .show = cli_show_cost,                                                               \
	  .help = "cost model in ns per operation; any subset of the defaults:\n{}" },          \
	CLI_SIM_KERNEL_OPT(T, m, CLI_SIM_KERNEL_HELP " (default: the newest)")

struct sim_config;
/*
 * Fills cfg for algorithm `algo` with the "key=value" sets, and the control
 * policy `ctl` (may be NULL) with ctl_sets; prints what is wrong and returns
 * an exit code (EXIT_OK when cfg is ready).
 */
int cli_sim_config(struct sim_config *cfg, const char *algo, const char *const *sets, int nsets,
		   const char *ctl, const char *const *ctl_sets, int nctl_sets);
/*
 * Puts the shared options into cfg: the cost model (cli_cost_resolve), the
 * kernel, the times; 0 or an SP_E* code with err.
 */
int cli_sim_opts_apply(const struct cli_sim_opts *o, struct sim_config *cfg, struct sp_err *err);

/*
 * The host's costs file, which `sim calibrate --save` writes and the
 * simulating commands read: $SAMEPAGE_COSTS when set (empty: none, the
 * shipped defaults); else, for a user other than root,
 * $XDG_STATE_HOME/samepage/costs.conf (or ~/.local/state/...) when it
 * exists or for_save; else CLI_HOST_COSTS.  Into buf; 0 when there is none.
 */
#define CLI_HOST_COSTS "/var/lib/samepage/costs.conf"
int cli_costs_path(char *buf, size_t len, bool for_save);
struct sim_cost;
/*
 * The cost model a command uses: the shipped defaults, the costs file over
 * them when it exists, then spec (--cost, may be NULL) over that; from gets
 * "shipped defaults", the file's path or "--cost over ...".  0, or SP_EINVAL
 * (spec), SP_ECORRUPT "FILE:LINE: ..." (a malformed file), SP_EIO.
 */
int cli_cost_resolve(struct sim_cost *out, char *from, size_t len, const char *spec,
		     struct sp_err *err);

/* The verbs of `sim trace` (sim/cmd_trace.c), for `sim --help` and `sim help trace VERB`. */
extern const struct cli_command cli_trace_verbs[];

int cmd_list(int argc, char **argv);
int cmd_run(int argc, char **argv);
int cmd_trace(int argc, char **argv);
/* sim/cmd_record.c: `sim trace record` and `sim trace import`. */
int cmd_trace_record(int argc, char **argv);
int cmd_trace_import(int argc, char **argv);
/* sim/cmd_transform.c: `sim trace replicate` and `sim trace subset`. */
int cmd_trace_replicate(int argc, char **argv);
int cmd_trace_subset(int argc, char **argv);
/* sim/cmd_plan.c: `sim plan`. */
int cmd_plan(int argc, char **argv);
int cmd_calibrate(int argc, char **argv);
/* sim/cmd_compare.c and sim/cmd_sweep.c: parallel runs over one trace, reports. */
int cmd_compare(int argc, char **argv);
int cmd_sweep(int argc, char **argv);
/* glibc malloc settings for many simulations in threads (measured in cmd_compare.c). */
void cli_tune_malloc_for_threads(void);
/* The aggregate progress bar of parallel runs: arg is a struct cli_progress. */
void cli_parallel_progress(void *arg, uint64_t done_ms, uint64_t total_ms);
/* One line describing seed (unless it varies), duration, sampling, writes and cost model. */
void cli_sim_options_format(char *buf, size_t len, const struct sim_config *cfg,
			    uint64_t expected_ms, bool seed_varies);
int cmd_validate(int argc, char **argv);
/* sim/cmd_real.c: `sim real replay`. */
int cmd_real(int argc, char **argv);

#endif
