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

#include "sp_error.h"

enum { EXIT_OK = 0, EXIT_FAIL = 1, EXIT_USAGE = 2, EXIT_BADINPUT = 3, EXIT_UNAVAILABLE = 4 };

int cli_exit_code(int sp_code);
/* Prints "sim: MESSAGE" for err and returns the exit code for it. */
int cli_fail(const struct sp_err *err);
/* Prints "sim: " fmt and a hint to see --help; returns EXIT_USAGE. */
int cli_usage_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Parses a non-negative integer option value. */
bool cli_parse_u64(const char *s, uint64_t *out);
bool cli_parse_double(const char *s, double *out);

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

const char *cli_default_trace(void);

#define CLI_MAX_SETS 128

/*
 * The options every simulating command takes (run, compare, sweep), with
 * the same spelling and getopt letters: --duration-ms 'd', --tail-ms 'T',
 * --sample-ms 'S', --seed 'r', --spread-writes 'w', --cost 'c'.
 */
struct cli_sim_opts {
	uint64_t duration_ms; /* 0: until tail_ms after the last snapshot */
	uint64_t tail_ms;
	uint64_t sample_ms;
	uint64_t seed;
	bool spread;
	const char *cost;     /* NULL: the default cost model */
};

void cli_sim_opts_init(struct cli_sim_opts *o);
/* Takes getopt's (c, optarg) if c is one of them: 1 taken, 0 not one of them, -1 a bad value. */
int cli_sim_opt(struct cli_sim_opts *o, int c, const char *arg);

struct sim_config;
/*
 * Fills cfg for algorithm `algo` with the "key=value" sets, and the control
 * policy `ctl` (may be NULL) with ctl_sets; prints what is wrong and returns
 * an exit code (EXIT_OK when cfg is ready).
 */
int cli_sim_config(struct sim_config *cfg, const char *algo, const char *const *sets, int nsets,
		   const char *ctl, const char *const *ctl_sets, int nctl_sets);
/* Puts the shared options into cfg (the cost model over cfg's); 0 or an SP_E* code with err. */
int cli_sim_opts_apply(const struct cli_sim_opts *o, struct sim_config *cfg, struct sp_err *err);

int cmd_list(int argc, char **argv);
int cmd_run(int argc, char **argv);
int cmd_trace(int argc, char **argv);
/* sim/cmd_record.c: `sim trace record` and `sim trace import`. */
int cmd_trace_record(int argc, char **argv);
int cmd_trace_import(int argc, char **argv);
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
