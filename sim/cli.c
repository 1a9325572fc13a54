/*
 * cli.c - exit codes, error printing, option parsing helpers and the
 * progress bar shared by the `sim` subcommands.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "parallel.h"
#include "sim.h"
#include "trace.h"

#ifndef SP_SAMPLE_TRACE
#define SP_SAMPLE_TRACE "traces/samples/small.sptrace"
#endif
#ifndef SP_INSTALLED_SAMPLE
#define SP_INSTALLED_SAMPLE "/usr/share/samepage/samples/small.sptrace"
#endif

const char *cli_default_trace(void)
{
	/*
	 * The source tree's sample; an installed sim (cmake --install, the
	 * Debian package) has no source tree but the copy installed beside it.
	 */
	static const char *const installed[] = { SP_INSTALLED_SAMPLE,
						 "/usr/share/samepage/samples/small.sptrace" };

	for (size_t i = 0; access(SP_SAMPLE_TRACE, R_OK) < 0 && i < 2; i++) {
		if (access(installed[i], R_OK) == 0)
			return installed[i];
	}
	return SP_SAMPLE_TRACE;
}

int cli_exit_code(int code)
{
	switch (code) {
	case SP_OK: return EXIT_OK;
	case SP_EINVAL: return EXIT_USAGE;
	case SP_EMAGIC: case SP_EVERSION: case SP_ETRUNC: case SP_ECORRUPT: case SP_ELIMIT:
		return EXIT_BADINPUT;
	case SP_ENOTSUP: case SP_EPERM: case SP_EBUSY:
		return EXIT_UNAVAILABLE;
	case SP_ENOROOM:
		return EXIT_NOROOM;
	default:
		return EXIT_FAIL;
	}
}

int cli_fail(const struct sp_err *err)
{
	fprintf(stderr, "sim: %s\n", err->msg[0] ? err->msg : sp_strerror(err->code));
	return cli_exit_code(err->code ? err->code : SP_EIO);
}

/* "sim: " and the message escaped for a terminal (it may quote argv), then tail and a newline. */
static void print_escaped(const char *fmt, va_list ap, const char *tail)
{
	char raw[1024], safe[4 * sizeof(raw)];

	vsnprintf(raw, sizeof(raw), fmt, ap);
	sp_term_escape(safe, sizeof(safe), raw);
	fprintf(stderr, "sim: %s%s\n", safe, tail);
}

void cli_errorf(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	print_escaped(fmt, ap, "");
	va_end(ap);
}

int cli_usage_error(const char *cmd, const char *fmt, ...)
{
	char tail[128];
	va_list ap;

	snprintf(tail, sizeof(tail), " (see 'sim %s --help')", cmd);
	va_start(ap, fmt);
	print_escaped(fmt, ap, tail);
	va_end(ap);
	return EXIT_USAGE;
}

int cli_parse_args(const struct cli_spec *spec, int argc, char **argv, void *opts)
{
	struct cli_err err;

	switch (cli_parse(spec, argc, argv, opts, &err)) {
	case CLI_OK:
		return CLI_GO;
	case CLI_HELP:
		cli_help(spec, opts, stdout);
		return EXIT_OK;
	default:
		return cli_usage_error(spec->name, "%s", err.msg);
	}
}

void cli_show_default_trace(char *buf, size_t len)
{
	snprintf(buf, len, "%s", cli_default_trace());
}

void cli_show_cpus(char *buf, size_t len)
{
	snprintf(buf, len, "%u", sim_cpu_count());
}

void cli_show_cost(char *buf, size_t len)
{
	struct sim_cost c;
	size_t o = 0;

	sim_cost_defaults(&c);
	buf[0] = '\0';
	for (int k = 0; k < BK_COST__COUNT && o < len; k++)
		o += (size_t)snprintf(buf + o, len - o, "%s%s=%g", k ? "," : "",
				      sim_cost_name((enum bk_cost)k), c.ns[k]);
}

void cli_progress_init(struct cli_progress *p, const char *label)
{
	memset(p, 0, sizeof(*p));
	p->on = isatty(STDERR_FILENO) && !getenv("SIM_NO_PROGRESS");
	p->label = label;
	p->last_shown = -1;
}

void cli_progress_update(struct cli_progress *p, double fraction, const char *detail)
{
	char bar[31];
	int filled;

	if (!p->on || fraction - p->last_shown < 0.005)
		return;
	if (fraction > 1)
		fraction = 1;
	filled = (int)(fraction * 30);
	memset(bar, '#', (size_t)filled);
	memset(bar + filled, ' ', (size_t)(30 - filled));
	bar[30] = '\0';
	fprintf(stderr, "\r%s [%s] %3.0f%% %s\033[K", p->label, bar, fraction * 100,
		detail ? detail : "");
	p->last_shown = fraction;
	p->drawn = true;
}

void cli_load_progress(void *arg, uint64_t done, uint64_t total)
{
	char detail[64];

	snprintf(detail, sizeof(detail), "%.1f of %.1f MB", (double)done / 1e6, (double)total / 1e6);
	if (total)
		cli_progress_update(arg, (double)done / (double)total, detail);
}

int cli_load_trace(struct trace_mem **out, const char *path)
{
	struct cli_progress prog;
	struct sp_err err = { 0 };
	int rc;

	cli_progress_init(&prog, "loading");
	rc = trace_mem_load(out, path, cli_load_progress, &prog, &err);
	cli_progress_done(&prog);
	return rc < 0 ? cli_fail(&err) : EXIT_OK;
}

void *cli_calloc(size_t size)
{
	void *p = calloc(1, size);

	if (!p)
		fputs("sim: out of memory\n", stderr);
	return p;
}

void cli_progress_done(struct cli_progress *p)
{
	if (p->on && p->drawn)
		fprintf(stderr, "\r\033[K");
	p->drawn = false;
}

int cli_unknown_name(const char *what, const char *name, const char *why, bool ctl)
{
	size_t n = ctl ? ctl_count() : algo_count(), o = 0;
	char valid[512] = "";

	for (size_t i = 0; i < n && o < sizeof(valid); i++)
		o += (size_t)snprintf(valid + o, sizeof(valid) - o, "%s%s", i ? ", " : "",
				      ctl ? ctl_at(i)->name : algo_at(i)->name);
	if (name)
		cli_errorf("unknown %s '%s'%s; valid: %s", what, name, why, valid);
	else
		cli_errorf("--%s is required; valid: %s", what, valid);
	return EXIT_USAGE;
}

int cli_sim_config(struct sim_config *cfg, const char *algo, const char *const *sets, int nsets,
		   const char *ctl, const char *const *ctl_sets, int nctl_sets)
{
	struct sp_err err = { 0 };

	if (!algo)
		return cli_unknown_name("algo", NULL, "", false);
	if (!algo_find(algo))
		return cli_unknown_name("algorithm", algo, "", false);
	sim_config_defaults(cfg, algo_find(algo));
	for (int i = 0; i < nsets; i++) {
		if (algo_params_set(cfg->algo, &cfg->params, sets[i], &err) < 0)
			return cli_fail(&err);
	}
	if (!ctl) {
		if (nctl_sets)
			return cli_usage_error("run", "--ctl-set needs --controller");
		return EXIT_OK;
	}
	cfg->ctl = ctl_find(ctl);
	if (!cfg->ctl)
		return cli_unknown_name("controller", ctl, "", true);
	ctl_params_defaults(cfg->ctl, &cfg->ctl_params);
	for (int i = 0; i < nctl_sets; i++) {
		if (sim_ctl_set(cfg, ctl_sets[i], &err) < 0)
			return cli_fail(&err);
	}
	return EXIT_OK;
}

void cli_sim_opts_init(struct cli_sim_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->tail_ms = 60000;
	o->sample_ms = 1000;
	o->seed = 1;
}

int cli_costs_path(char *buf, size_t len, bool for_save)
{
	const char *env = getenv("SAMEPAGE_COSTS"), *state = getenv("XDG_STATE_HOME");
	const char *home = getenv("HOME");
	struct stat st;

	if (env) {
		snprintf(buf, len, "%s", env);
		return env[0] != '\0';
	}
	if (geteuid() != 0 && ((state && state[0]) || (home && home[0]))) {
		if (state && state[0])
			snprintf(buf, len, "%s/samepage/costs.conf", state);
		else
			snprintf(buf, len, "%s/.local/state/samepage/costs.conf", home);
		if (for_save || stat(buf, &st) == 0)
			return 1;
	}
	snprintf(buf, len, "%s", CLI_HOST_COSTS);
	return 1;
}

int cli_cost_resolve(struct sim_cost *out, char *from, size_t len, const char *spec,
		     struct sp_err *err)
{
	char path[4096];
	struct stat st;
	int rc;

	sim_cost_defaults(out);
	snprintf(from, len, "shipped defaults");
	if (cli_costs_path(path, sizeof(path), false)) {
		if (stat(path, &st) == 0) {
			bool set[BK_COST__COUNT], idle = false;

			rc = sim_cost_load(out, path, set, err);
			if (rc < 0)
				return rc;
			for (int k = BK_COST_IDLE_50MS; k <= BK_COST_IDLE_5S; k++)
				idle |= set[k] && out->ns[k] > 0;
			/*
			 * A file with idle reads but no tree_idle (a calibration
			 * before issue 13's tenth round, or one whose phase F did
			 * not run) prices the idle unstable tree levels at 0: say so.
			 */
			if (idle && !set[BK_COST_TREE_IDLE])
				snprintf(from, len, "%s (no tree_idle: idle unstable tree levels cost 0; "
					 "sim calibrate --save measures it)", path);
			else
				snprintf(from, len, "%s", path);
		} else if (errno != ENOENT) {
			return sp_err_set(err, SP_EIO, "%s: %s", path, strerror(errno));
		}
	}
	if (spec) {
		char base[512];

		rc = sim_cost_parse(out, spec, err);
		if (rc < 0)
			return rc;
		snprintf(base, sizeof(base), "%s", from);
		snprintf(from, len, "--cost over %s", base);
	}
	return 0;
}

int cli_sim_opts_apply(const struct cli_sim_opts *o, struct sim_config *cfg, struct sp_err *err)
{
	if (cli_cost_resolve(&cfg->cost, cfg->cost_from, sizeof(cfg->cost_from), o->cost, err) < 0)
		return err->code;
	if (o->kernel && algo_kernel_parse(&cfg->kernel, o->kernel, err) < 0)
		return err->code;
	cfg->duration_ms = o->duration_ms;
	cfg->tail_ms = o->tail_ms;
	cfg->sample_ms = o->sample_ms;
	cfg->seed = o->seed;
	cfg->spread_writes = o->spread;
	return 0;
}
