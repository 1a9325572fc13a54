/*
 * samepaged.c - the samepaged command: drives the kernel's KSM on a KVM host
 * with a control policy (ksmtuned, advisor, plan - the code `sim run
 * --controller` runs), safely and observably; see samepaged(8).
 *
 * The process: parse the options, read the configuration, start the engine
 * (real/daemon.c), then loop: one cycle, then wait for the next cycle or a
 * signal - SIGUSR1 retunes now (as ksmtuned's retune), SIGHUP reloads the
 * configuration (a bad one is refused and the old one kept), SIGTERM and
 * SIGINT exit as SAMEPAGE_ON_EXIT says.  Signals are blocked and taken with
 * sigtimedwait(), so no handler runs in the middle of a cycle.  Under
 * systemd (Type=notify) it reports READY=1, RELOADING=1, STOPPING=1 and
 * pets the watchdog through NOTIFY_SOCKET.
 *
 * Exit codes: 0 ok, 1 runtime failure, 2 usage, 3 bad configuration or
 * plan file, 4 no KSM or no permission to write it.
 */
#include <errno.h>
#include <math.h>
#include <stddef.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "atomic_file.h"
#include "cli_parse.h"
#include "daemon.h"
#include "sim.h"

enum { EXIT_OK = 0, EXIT_FAIL = 1, EXIT_USAGE = 2, EXIT_BADINPUT = 3, EXIT_UNAVAILABLE = 4 };

struct opts {
	const char *config, *sysfs, *procfs, *simulate;
	bool once, dry_run, foreground, check, print;
};

struct logger {
	bool to_stdout, to_syslog;
	const char *logfile;
};

static const char *const level_names[] = { "error", "warning", "info", "debug" };

static void log_line(void *arg, int level, const char *msg)
{
	const struct logger *l = arg;

	if (l->to_syslog)
		syslog(level == REAL_LOG_ERR ? LOG_ERR : level == REAL_LOG_WARN ? LOG_WARNING
						   : level == REAL_LOG_INFO ? LOG_INFO : LOG_DEBUG, "%s", msg);
	else
		fprintf(l->to_stdout ? stdout : stderr, "samepaged: %s%s%s\n",
			level < REAL_LOG_INFO ? level_names[level] : "", level < REAL_LOG_INFO ? ": " : "", msg);
	if (l->logfile && l->logfile[0]) {
		FILE *f = fopen(l->logfile, "ae");
		time_t now = time(NULL);
		char when[64];

		if (f) {
			strftime(when, sizeof(when), "%a %b %e %H:%M:%S %Z %Y", localtime(&now));
			fprintf(f, "%s: %s\n", when, msg);
			fclose(f);
		}
	}
}

static int exit_code(int sp)
{
	switch (sp) {
	case SP_OK: return EXIT_OK;
	case SP_EINVAL: return EXIT_USAGE;
	case SP_ECORRUPT: case SP_ELIMIT: case SP_EMAGIC: case SP_EVERSION: case SP_ETRUNC:
		return EXIT_BADINPUT;
	case SP_ENOTSUP: case SP_EPERM: case SP_EBUSY: return EXIT_UNAVAILABLE;
	default: return EXIT_FAIL;
	}
}

static int fail(const struct sp_err *err)
{
	fprintf(stderr, "samepaged: %s\n", err->msg[0] ? err->msg : sp_strerror(err->code));
	return exit_code(err->code ? err->code : SP_EIO);
}

static uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* ---- systemd's notify protocol (sd_notify without libsystemd) ------------ */

static void notify(const char *msg)
{
	const char *path = getenv("NOTIFY_SOCKET");
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	socklen_t len;
	int fd;

	if (!path || (path[0] != '/' && path[0] != '@') || strlen(path) >= sizeof(sa.sun_path))
		return;
	memcpy(sa.sun_path, path, strlen(path));
	if (path[0] == '@')
		sa.sun_path[0] = '\0'; /* abstract socket */
	len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + strlen(path));
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return;
	(void)sendto(fd, msg, strlen(msg), MSG_NOSIGNAL, (struct sockaddr *)&sa, len);
	close(fd);
}

/* Half the watchdog period systemd asked for, in ns; 0 without a watchdog. */
static uint64_t watchdog_half_ns(void)
{
	const char *usec = getenv("WATCHDOG_USEC"), *pid = getenv("WATCHDOG_PID");

	if (!usec || (pid && atol(pid) != (long)getpid()))
		return 0;
	return strtoull(usec, NULL, 10) * 500;
}

/* ---- modes --------------------------------------------------------------- */

/* An environment for --check-config: every tunable exists, the host is empty. */
static int null_set(void *a, const char *p, double v, struct sp_err *e)
{
	(void)a; (void)p; (void)v; (void)e;
	return 0;
}

static double null_get(void *a, const char *p)
{
	(void)a;
	return real_ksm_lookup(p) >= 0 ? 0 : (double)NAN;
}

static void null_run(void *a, bool on)
{
	(void)a; (void)on;
}

static int null_host(void *a, struct ctl_host *out, struct sp_err *e)
{
	(void)a; (void)e;
	memset(out, 0, sizeof(*out));
	return 0;
}

static const char *conf_text(void *a, const char *name)
{
	const struct real_daemon_conf *c = a;

	if (strcmp(name, "plan"))
		return NULL;
	return c->plan[0] ? c->plan : c->path[0] ? c->path : NULL;
}

static int check_config(const struct real_daemon_conf *c)
{
	struct ctl_env env = { "a KSM with every tunable", null_set, null_get, null_run, null_host,
			       conf_text, (void *)c, NULL };
	struct sp_err err = { 0 };
	size_t idx = 0;
	void *st;

	while (ctl_at(idx) != c->policy)
		idx++;
	if (c->policy->create(&st, &c->params[idx], &env, &err) < 0)
		return fail(&err);
	printf("%s: ok (policy %s%s%s)\n", c->path[0] ? c->path : "defaults", c->policy->name,
	       c->policy->source ? ", source " : "", c->policy->source ? c->policy->source(st) : "");
	c->policy->destroy(st);
	return EXIT_OK;
}

struct sim_out {
	FILE *csv;
	const struct sim_result *res; /* its tunables are current at every sample */
};

static int sim_sample(void *arg, uint64_t time_ms, const struct metrics *m)
{
	const struct sim_out *o = arg;

	return o->csv ? metrics_csv_row(o->csv, time_ms, m, &o->res->tunables) != 0 : 0;
}

/*
 * --simulate TRACE: the daemon's own engine - its decision cycle around the
 * configured policy, the configured tunables (a NUMA switch through its safe
 * sequence), the headroom check before anything that unmerges, the swap
 * warning and cow_ksm alarm, SAMEPAGE_METRICS, SAMEPAGE_ON_EXIT at the end -
 * run as the control policy of the simulator (real_daemon_sim_ctl) on the
 * kernel's KSM model (algorithm "ksm"), the trace's guests as the host's,
 * in simulated time.  Its decisions are those of `sim run --algo ksm
 * --controller POLICY` with the same settings, and SAMEPAGE_CSV, written at
 * the simulator's samples by the shared writer (rewritten, one run's
 * series), is that run's --csv file.  The log goes to stdout.
 */
static int simulate(const struct real_daemon_conf *c, const char *trace)
{
	struct logger lg = { .to_stdout = true };
	struct real_daemon d;
	struct sim_config cfg;
	struct sim_result res;
	struct sp_err err = { 0 };
	struct sim_out out = { .res = &res };
	struct atomic_file af = { 0 };
	int rc = 0;

	memset(&d, 0, sizeof(d));
	d.conf = *c;
	d.conf.csv[0] = '\0'; /* written here, at the simulator's samples */
	d.log = log_line;
	d.log_arg = &lg;
	sim_config_defaults(&cfg, algo_find("ksm"));
	d.kernel = cfg.kernel;
	d.kernel_known = true;
	snprintf(d.kernel_release, sizeof(d.kernel_release), "simulated");
	cfg.ctl = &real_daemon_sim_ctl;
	cfg.ctl_ctx = &d;
	if (c->csv[0]) {
		rc = atomic_file_open(&af, c->csv, 0644, &err);
		if (rc == 0) {
			out.csv = af.f;
			metrics_csv_header(out.csv, true);
		}
	}
	if (rc == 0)
		rc = sim_run(trace, &cfg, sim_sample, NULL, &out, &res, &err);
	if (out.csv) {
		if (rc == 0)
			rc = atomic_file_commit(&af, &err);
		else
			atomic_file_abort(&af);
	}
	if (rc < 0)
		return fail(&err);
	printf("simulated %.1f s of %s with policy %s: %lld pages saved at the end, peak %lld; "
	       "%llu cycles, decisions: start %llu, stop %llu, pages_to_scan %llu, sleep_millisecs %llu, "
	       "other %llu, unmerge %llu, merge_across_nodes %llu; refusals: headroom %llu, busy %llu, "
	       "timeout %llu, write %llu\n",
	       (double)res.end_ms / 1000, trace, c->policy->name, (long long)metrics_saved(&res.last),
	       (long long)res.peak_saved, (unsigned long long)d.cycles,
	       (unsigned long long)d.decisions[RD_START], (unsigned long long)d.decisions[RD_STOP],
	       (unsigned long long)d.decisions[RD_PAGES_TO_SCAN], (unsigned long long)d.decisions[RD_SLEEP_MILLISECS],
	       (unsigned long long)d.decisions[RD_OTHER_TUNABLE], (unsigned long long)d.decisions[RD_UNMERGE],
	       (unsigned long long)d.decisions[RD_NUMA_SWITCH], (unsigned long long)d.refusals[RR_HEADROOM],
	       (unsigned long long)d.refusals[RR_BUSY], (unsigned long long)d.refusals[RR_TIMEOUT],
	       (unsigned long long)d.refusals[RR_WRITE]);
	return EXIT_OK;
}

/* ---- the daemon's loop --------------------------------------------------- */

static void daemonize(void)
{
	pid_t pid = fork();

	if (pid < 0) {
		perror("samepaged: fork");
		exit(EXIT_FAIL);
	}
	if (pid > 0)
		_exit(EXIT_OK);
	setsid();
	if (chdir("/") < 0)
		exit(EXIT_FAIL);
	if (!freopen("/dev/null", "r", stdin) || !freopen("/dev/null", "w", stdout) ||
	    !freopen("/dev/null", "w", stderr))
		exit(EXIT_FAIL);
}

/* SIGHUP: the configuration reloaded, or refused with the old one kept; true when it changed. */
static bool reload(struct real_daemon *d, struct logger *lg, const struct real_daemon_conf *conf)
{
	struct real_daemon_conf c;
	struct sp_err e = { 0 };
	bool ok;

	notify("RELOADING=1");
	ok = !(real_daemon_conf_load(&c, conf->path[0] ? conf->path : NULL, &e) < 0 ||
	       real_daemon_reload(d, &c, &e) < 0);
	if (!ok) {
		char msg[400];

		snprintf(msg, sizeof(msg), "SIGHUP: configuration refused, keeping the old one: %s", e.msg);
		log_line(lg, REAL_LOG_ERR, msg);
	} else {
		log_line(lg, REAL_LOG_INFO, "SIGHUP: configuration reloaded");
		lg->logfile = d->conf.logfile;
	}
	notify("READY=1");
	return ok;
}

/*
 * Waits for a signal until the next cycle is due (or the watchdog's half
 * period): true when the daemon should exit; *retune when it should decide now.
 */
static bool wait_signal(struct real_daemon *d, struct logger *lg, const struct real_daemon_conf *conf,
			const sigset_t *sigs, uint64_t next, uint64_t wd, bool *retune)
{
	uint64_t now = mono_ns(), wait = next > now ? next - now : 0;
	struct timespec ts;
	siginfo_t si;
	int sig;

	if (wd && wait > wd)
		wait = wd;
	ts.tv_sec = (time_t)(wait / 1000000000ull);
	ts.tv_nsec = (long)(wait % 1000000000ull);
	sig = sigtimedwait(sigs, &si, &ts);
	if (sig == SIGUSR1) {
		log_line(lg, REAL_LOG_INFO, "SIGUSR1: retune now");
		*retune = true;
	} else if (sig == SIGHUP) {
		if (reload(d, lg, conf))
			*retune = true;
	} else if (sig == SIGTERM || sig == SIGINT) {
		log_line(lg, REAL_LOG_INFO, sig == SIGTERM ? "SIGTERM: exiting" : "SIGINT: exiting");
		return true;
	}
	return false;
}

/* --once: what was decided, on stdout; KSM is left as it is. */
static void print_once(struct real_daemon *d)
{
	printf("samepaged: once: policy %s; run=%lld pages_to_scan=%lld sleep_millisecs=%lld; "
	       "saved %lld bytes, headroom %lld bytes\n",
	       d->conf.policy->name, (long long)d->state.v[REAL_KSM_RUN],
	       (long long)d->state.v[REAL_KSM_PAGES_TO_SCAN], (long long)d->state.v[REAL_KSM_SLEEP_MILLISECS],
	       (long long)real_daemon_worst_unshare(d), (long long)real_daemon_headroom(d));
	d->conf.on_exit = REAL_ON_EXIT_KEEP;
}

static int run(const struct opts *o, const struct real_daemon_conf *conf)
{
	struct logger lg = { .to_stdout = o->once, .logfile = conf->logfile };
	struct real_daemon d;
	struct sp_err err = { 0 };
	sigset_t sigs;
	uint64_t next = 0, wd = watchdog_half_ns(), last_wd = 0;
	bool retune = o->once; /* --once decides now; the daemon as the policy's own clock says */
	int rc, claim = -1; /* the flock on the KSM directory (real_ksm_claim) */

	memset(&d, 0, sizeof(d));
	d.conf = *conf;
	d.procfs = o->procfs;
	d.sysfs = o->sysfs;
	d.dry_run = o->dry_run;
	d.log = log_line;
	d.log_arg = &lg;
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGUSR1);
	sigaddset(&sigs, SIGHUP);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	sigprocmask(SIG_BLOCK, &sigs, NULL);
	if (!o->dry_run) { /* one writer of KSM at a time: a second samepaged, or a live sim run, is refused */
		char dir[300];

		snprintf(dir, sizeof(dir), "%s/kernel/mm/ksm", o->sysfs ? o->sysfs : "/sys");
		if (real_ksm_claim(dir, &claim, &err) < 0)
			return fail(&err);
	}
	rc = real_daemon_start(&d, mono_ns(), &err);
	if (rc < 0) {
		if (claim >= 0)
			close(claim);
		return fail(&err);
	}
	if (!o->once && !o->foreground && !getenv("NOTIFY_SOCKET") && !getenv("INVOCATION_ID")) {
		daemonize();
		openlog("samepaged", LOG_PID, LOG_DAEMON);
		lg.to_syslog = true;
	}
	for (;;) {
		uint64_t now = mono_ns();

		if (now >= next || retune) {
			rc = real_daemon_cycle(&d, now, retune, &next, &err);
			if (rc < 0) {
				log_line(&lg, REAL_LOG_ERR, err.msg);
				break;
			}
			if (!o->once && d.cycles == 1)
				notify("READY=1\nSTATUS=running");
			retune = false;
		}
		if (o->once)
			break;
		if (wd && now - last_wd >= wd) {
			notify("WATCHDOG=1");
			last_wd = now;
		}
		if (wait_signal(&d, &lg, conf, &sigs, next, wd, &retune))
			break;
	}
	notify("STOPPING=1");
	if (o->once)
		print_once(&d);
	if (real_daemon_stop(&d, &err) < 0) {
		log_line(&lg, REAL_LOG_ERR, err.msg);
		rc = -1;
	}
	if (claim >= 0)
		close(claim);
	return rc < 0 ? exit_code(err.code) : EXIT_OK;
}

static void show_conf(char *buf, size_t len)
{
	snprintf(buf, len, "%s", REAL_DAEMON_CONF);
}

static const struct cli_opt sd_opts[] = {
	{ .name = "config", .type = CLI_PATH, .offset = offsetof(struct opts, config), .metavar = "FILE",
	  .help = "configuration (default {}; when it is missing,\nthe defaults; see samepaged.conf(5))",
	  .show = show_conf },
	{ .name = "sysfs", .type = CLI_PATH, .offset = offsetof(struct opts, sysfs), .metavar = "DIR",
	  .help = "sysfs root (default {})" },
	{ .name = "procfs", .type = CLI_PATH, .offset = offsetof(struct opts, procfs), .metavar = "DIR",
	  .help = "procfs root (default {})" },
	{ .name = "once", .type = CLI_FLAG, .offset = offsetof(struct opts, once),
	  .help = "run one decision cycle now, print it, exit" },
	{ .name = "dry-run", .type = CLI_FLAG, .offset = offsetof(struct opts, dry_run),
	  .help = "decide and log, write nothing" },
	{ .name = "foreground", .type = CLI_FLAG, .offset = offsetof(struct opts, foreground),
	  .help = "do not detach (implied under systemd)" },
	{ .name = "check-config", .type = CLI_FLAG, .offset = offsetof(struct opts, check),
	  .help = "check the configuration (and the plan file) and exit" },
	{ .name = "print-effective", .type = CLI_FLAG, .offset = offsetof(struct opts, print),
	  .help = "print the configuration after defaults and exit" },
	{ .name = "simulate", .type = CLI_PATH, .offset = offsetof(struct opts, simulate), .metavar = "TRACE",
	  .help = "run the daemon (its policy, safety checks, metrics) against the\n"
		  "simulator on TRACE, not the host" },
	{ 0 },
};

static const struct cli_spec sd_spec = {
	.prog = "samepaged",
	.name = NULL,
	.usage = "[OPTIONS]",
	.about = "Drives the kernel's KSM (/sys/kernel/mm/ksm) on a KVM host with a control policy\n"
		 "(ksmtuned, advisor or plan: the policies of 'sim run --controller'), checks that\n"
		 "memory can absorb a full unshare before anything unmerges, and exports what it\n"
		 "does (Prometheus textfile, CSV in sim's columns).  /etc/ksmtuned.conf works as is.",
	.notes = "Signals: SIGUSR1 retune now, SIGHUP reload the configuration, SIGTERM/SIGINT exit\n"
		 "as SAMEPAGE_ON_EXIT says.  Exit codes: 0 ok, 1 failure, 2 usage, 3 bad\n"
		 "configuration, 4 no KSM or read-only sysfs.",
	.opts = sd_opts,
};

int main(int argc, char **argv)
{
	struct opts o = { .config = NULL, .sysfs = "/sys", .procfs = "/proc" };
	struct real_daemon_conf conf;
	struct sp_err err = { 0 };
	struct cli_err cerr;
	int rc;

	switch (cli_parse(&sd_spec, argc, argv, &o, &cerr)) {
	case CLI_OK:
		break;
	case CLI_HELP:
		cli_help(&sd_spec, &o, stdout);
		return EXIT_OK;
	default:
		fprintf(stderr, "samepaged: %s (see 'samepaged --help')\n", cerr.msg);
		return EXIT_USAGE;
	}
	/* Without --config, a missing /etc/samepaged.conf means the defaults. */
	if (!o.config) {
		o.config = REAL_DAEMON_CONF;
		rc = access(o.config, F_OK) < 0 ? real_daemon_conf_load(&conf, NULL, &err)
						 : real_daemon_conf_load(&conf, o.config, &err);
	} else {
		rc = real_daemon_conf_load(&conf, o.config, &err);
	}
	if (rc < 0)
		return fail(&err);
	if (o.print) {
		struct algo_kernel k;
		char release[96], desc[300];

		real_daemon_conf_print(&conf, stdout);
		if (real_daemon_kernel(o.procfs, &k, release, sizeof(release), &err) == 0) {
			algo_kernel_describe(&k, desc, sizeof(desc));
			printf("# kernel: Linux %s, release %s (files a kernel lacks are neither read nor written)\n",
			       desc, release);
		} else {
			printf("# kernel: %s\n", err.msg);
		}
		return EXIT_OK;
	}
	if (o.check)
		return check_config(&conf);
	if (o.simulate)
		return simulate(&conf, o.simulate);
	return run(&o, &conf);
}
