/*
 * daemon.c - implements daemon.h: samepaged's configuration, its decision
 * cycle around a control policy, the safety checks before anything that
 * unmerges, and the Prometheus textfile.
 *
 * The policy sees the host through struct ctl_env, implemented here on
 * /proc (real/host.c) and /sys/kernel/mm/ksm (real/ksm_sysfs.c):
 *   set()  writes a tunable when its value changes (dry run: logs "would");
 *   get()  the value read at this cycle (NAN if this kernel lacks the file);
 *   run()  writes run=1 / run=0 when it changes;
 *   host() the meminfo / QEMU RSS read at this cycle;
 *   text() SAMEPAGE_PLAN (default: the configuration file).
 * Every change is a decision (counted by kind), every step not taken for
 * safety a refusal (counted by reason); both are logged with their numbers.
 *
 * Invariant: d->state holds what the kernel's files said at the last read,
 * updated after every write this engine makes, so get() and the exports
 * show what is in force.
 */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <unistd.h>
#include <time.h>

#include "atomic_file.h"
#include "daemon.h"
#include "kvfile.h"

#define NS 1000000000ull
#define FOREVER UINT64_MAX

static const char *const decision_names[RD__COUNT] = {
	[RD_START] = "start", [RD_STOP] = "stop", [RD_PAGES_TO_SCAN] = "pages_to_scan",
	[RD_SLEEP_MILLISECS] = "sleep_millisecs", [RD_OTHER_TUNABLE] = "other_tunable",
	[RD_UNMERGE] = "unmerge", [RD_NUMA_SWITCH] = "merge_across_nodes",
};
static const char *const refusal_names[RR__COUNT] = {
	[RR_HEADROOM] = "headroom", [RR_BUSY] = "busy", [RR_TIMEOUT] = "timeout", [RR_WRITE] = "write",
};

/* ksmtuned's keys and the ksmtuned policy's parameter each sets. */
static const struct {
	const char *key, *param;
} legacy_keys[] = {
	{ "KSM_MONITOR_INTERVAL", "monitor_interval" }, { "KSM_SLEEP_MSEC", "sleep_msec" },
	{ "KSM_NPAGES_BOOST", "npages_boost" },         { "KSM_NPAGES_DECAY", "npages_decay" },
	{ "KSM_NPAGES_MIN", "npages_min" },             { "KSM_NPAGES_MAX", "npages_max" },
	{ "KSM_THRES_COEF", "thres_coef" },             { "KSM_THRES_CONST", "thres_const" },
};
#define NLEGACY (sizeof(legacy_keys) / sizeof(legacy_keys[0]))

/* ---- configuration ------------------------------------------------------- */

static void conf_defaults(struct real_daemon_conf *c)
{
	memset(c, 0, sizeof(*c));
	c->policy = ctl_find("ksmtuned");
	for (size_t i = 0; i < ctl_count() && i < sizeof(c->params) / sizeof(c->params[0]); i++)
		ctl_params_defaults(ctl_at(i), &c->params[i]);
	c->merge_across_nodes = -2;
	c->use_zero_pages = -1;
	c->smart_scan = -1;
	c->max_page_sharing = -1;
	c->on_exit = REAL_ON_EXIT_KEEP;
	c->reserve_mib = -1;
	c->cow_alarm_per_s = 1000;
	c->poll_s = 10;
	c->unmerge_timeout_s = 120;
}

static void upper(char *dst, const char *src, size_t len)
{
	size_t i = 0;

	for (; src[i] && i + 1 < len; i++)
		dst[i] = (char)toupper((unsigned char)src[i]);
	dst[i] = '\0';
}

/* SAMEPAGE_<POLICY>_<PARAM>: the policy index and "param=value", or -1. */
static int generic_key(const char *key, const char *value, char *kv, size_t len)
{
	char want[256], pol[64], par[64];

	for (size_t i = 0; i < ctl_count(); i++) {
		const struct ctl_ops *c = ctl_at(i);
		size_t plen;

		upper(pol, c->name, sizeof(pol));
		plen = strlen(pol);
		for (uint32_t k = 0; k < c->nparams; k++) {
			upper(par, c->params[k].name, sizeof(par));
			snprintf(want, sizeof(want), "SAMEPAGE_%s_%s", pol, par);
			if (!strcmp(key, want) ||
			    (!strncmp(par, pol, plen) && par[plen] == '_' &&
			     (snprintf(want, sizeof(want), "SAMEPAGE_%s_%s", pol, par + plen + 1), !strcmp(key, want)))) {
				snprintf(kv, len, "%s=%s", c->params[k].name, value);
				return (int)i;
			}
		}
	}
	return -1;
}

static bool parse_num(const char *s, double min, double max, double *out)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (!*s || *end || errno || !isfinite(v) || v < min || v > max)
		return false;
	*out = v;
	return true;
}

/* "keep" -> -1, else an integer in [min, max] into *out; false if neither. */
static bool parse_keep_int(const char *s, double min, double max, int64_t *out)
{
	double v;

	if (!strcmp(s, "keep")) {
		*out = -1;
		return true;
	}
	if (!parse_num(s, min, max, &v) || v != floor(v))
		return false;
	*out = (int64_t)v;
	return true;
}

static int refuse(const char **why, const char *what)
{
	*why = what;
	return -1;
}

/* samepaged's own keys (SAMEPAGE_*, LOGFILE, DEBUG, a plan's): 1 set, 0 not one, -1 bad value (*why). */
static int own_key(struct real_daemon_conf *c, const char *k, const char *v, const char **why)
{
	int64_t iv;

	if (!strcmp(k, "SAMEPAGE_POLICY")) {
		if (!ctl_find(v))
			return refuse(why, "unknown policy (ksmtuned, advisor, plan)");
		c->policy = ctl_find(v);
	} else if (!strcmp(k, "SAMEPAGE_PLAN")) {
		snprintf(c->plan, sizeof(c->plan), "%s", v);
	} else if (!strcmp(k, "SAMEPAGE_MERGE_ACROSS_NODES")) {
		if (!strcmp(v, "auto"))
			c->merge_across_nodes = -1;
		else if (!strcmp(v, "keep"))
			c->merge_across_nodes = -2;
		else if (!strcmp(v, "0") || !strcmp(v, "1"))
			c->merge_across_nodes = v[0] - '0';
		else
			return refuse(why, "expected auto, 0, 1 or keep");
	} else if (!strcmp(k, "SAMEPAGE_USE_ZERO_PAGES") || !strcmp(k, "SAMEPAGE_SMART_SCAN")) {
		if (!parse_keep_int(v, 0, 1, &iv))
			return refuse(why, "expected 0, 1 or keep");
		*(k[9] == 'U' ? &c->use_zero_pages : &c->smart_scan) = (int)iv;
	} else if (!strcmp(k, "SAMEPAGE_MAX_PAGE_SHARING")) {
		if (!parse_keep_int(v, 2, 1 << 30, &c->max_page_sharing))
			return refuse(why, "expected an integer of at least 2, or keep");
	} else if (!strcmp(k, "SAMEPAGE_ON_EXIT")) {
		if (!strcmp(v, "keep"))
			c->on_exit = REAL_ON_EXIT_KEEP;
		else if (!strcmp(v, "stop"))
			c->on_exit = REAL_ON_EXIT_STOP;
		else if (!strcmp(v, "unmerge"))
			c->on_exit = REAL_ON_EXIT_UNMERGE;
		else
			return refuse(why, "expected keep, stop or unmerge");
	} else if (!strcmp(k, "SAMEPAGE_RESERVE_MIB")) {
		if (!parse_keep_int(v, 0, 1ll << 40, &c->reserve_mib) || c->reserve_mib < 0)
			return refuse(why, "expected a whole number of MiB");
	} else if (!strcmp(k, "SAMEPAGE_COW_ALARM_PER_SEC")) {
		if (!parse_num(v, 0, 1e12, &c->cow_alarm_per_s))
			return refuse(why, "expected a rate of COW breaks per second");
	} else if (!strcmp(k, "SAMEPAGE_POLL_SEC")) {
		if (!parse_num(v, 0.01, 86400, &c->poll_s))
			return refuse(why, "expected seconds in [0.01, 86400]");
	} else if (!strcmp(k, "SAMEPAGE_UNMERGE_TIMEOUT_SEC")) {
		if (!parse_num(v, 0, 86400, &c->unmerge_timeout_s))
			return refuse(why, "expected seconds in [0, 86400]");
	} else if (!strcmp(k, "SAMEPAGE_METRICS")) {
		snprintf(c->metrics, sizeof(c->metrics), "%s", v);
	} else if (!strcmp(k, "SAMEPAGE_CSV")) {
		snprintf(c->csv, sizeof(c->csv), "%s", v);
	} else if (!strcmp(k, "LOGFILE")) {
		snprintf(c->logfile, sizeof(c->logfile), "%s", v);
	} else if (!strcmp(k, "DEBUG")) {
		c->debug = v[0] != '\0';
	} else if (!strcmp(k, "PLAN_FORMAT") || !strcmp(k, "PLAN_SOURCE") || !strcmp(k, "STEP")) {
		/* a plan in the configuration file: the plan policy reads it */
	} else {
		return 0;
	}
	return 1;
}

/* "param=value" (pv) for policy idx's parameters, from line kv. */
static int policy_param(struct real_daemon_conf *c, int idx, const char *pv, const struct sim_kv *kv,
			struct sp_err *err)
{
	struct sp_err e = { 0 };

	if (ctl_params_set(ctl_at((size_t)idx), &c->params[idx], pv, &e) < 0)
		return sp_err_set(err, SP_ECORRUPT, "%s:%u: %s=%s: %s", c->path, kv->line, kv->key,
				  kv->value, e.msg);
	return 0;
}

static int set_key(struct real_daemon_conf *c, const struct sim_kv *kv, struct sp_err *err)
{
	const char *k = kv->key, *v = kv->value, *why = NULL;
	char pv[256];
	int idx, rc;

	for (size_t i = 0; i < NLEGACY; i++) {
		if (!strcmp(k, legacy_keys[i].key)) {
			snprintf(pv, sizeof(pv), "%s=%s", legacy_keys[i].param, v);
			for (idx = 0; ctl_at((size_t)idx) != ctl_find("ksmtuned"); idx++)
				;
			return policy_param(c, idx, pv, kv, err);
		}
	}
	rc = own_key(c, k, v, &why);
	if (rc < 0)
		return sp_err_set(err, SP_ECORRUPT, "%s:%u: %s=%s: %s", c->path, kv->line, k, v, why);
	if (rc > 0)
		return 0;
	if ((idx = generic_key(k, v, pv, sizeof(pv))) >= 0)
		return policy_param(c, idx, pv, kv, err);
	return sp_err_set(err, SP_ECORRUPT, "%s:%u: unknown key %s (samepaged.conf(5) lists the keys)",
			  c->path, kv->line, k);
}

int real_daemon_conf_load(struct real_daemon_conf *out, const char *path, struct sp_err *err)
{
	struct sim_kv_file f;
	int rc;

	conf_defaults(out);
	if (!path)
		return 0;
	snprintf(out->path, sizeof(out->path), "%s", path);
	rc = sim_kv_load(&f, path, err);
	if (rc < 0)
		return rc == SP_EIO ? rc : SP_ECORRUPT;
	for (size_t i = 0; i < f.n && rc == 0; i++)
		rc = set_key(out, &f.kv[i], err);
	sim_kv_release(&f);
	return rc;
}

static const char *keep_or(int64_t v, char *buf, size_t len)
{
	if (v < 0)
		return "keep";
	snprintf(buf, len, "%lld", (long long)v);
	return buf;
}

void real_daemon_conf_print(const struct real_daemon_conf *c, FILE *f)
{
	static const char *const on_exit[] = { "keep", "stop", "unmerge" };
	char b[32];

	fprintf(f, "# samepaged effective configuration (from %s)\n", c->path[0] ? c->path : "defaults");
	fprintf(f, "SAMEPAGE_POLICY=%s\n", c->policy->name);
	fprintf(f, "SAMEPAGE_PLAN='%s'\n", c->plan[0] ? c->plan : c->path);
	fprintf(f, "SAMEPAGE_MERGE_ACROSS_NODES=%s\n",
		c->merge_across_nodes == -2 ? "keep" : c->merge_across_nodes == -1 ? "auto"
									 : c->merge_across_nodes ? "1" : "0");
	fprintf(f, "SAMEPAGE_USE_ZERO_PAGES=%s\n", keep_or(c->use_zero_pages, b, sizeof(b)));
	fprintf(f, "SAMEPAGE_SMART_SCAN=%s\n", keep_or(c->smart_scan, b, sizeof(b)));
	fprintf(f, "SAMEPAGE_MAX_PAGE_SHARING=%s\n", keep_or(c->max_page_sharing, b, sizeof(b)));
	fprintf(f, "SAMEPAGE_ON_EXIT=%s\n", on_exit[c->on_exit]);
	if (c->reserve_mib < 0)
		fprintf(f, "# SAMEPAGE_RESERVE_MIB unset: 5%% of MemTotal\n");
	else
		fprintf(f, "SAMEPAGE_RESERVE_MIB=%lld\n", (long long)c->reserve_mib);
	fprintf(f, "SAMEPAGE_COW_ALARM_PER_SEC=%g\n", c->cow_alarm_per_s);
	fprintf(f, "SAMEPAGE_POLL_SEC=%g\n", c->poll_s);
	fprintf(f, "SAMEPAGE_UNMERGE_TIMEOUT_SEC=%g\n", c->unmerge_timeout_s);
	fprintf(f, "SAMEPAGE_METRICS='%s'\n", c->metrics);
	fprintf(f, "SAMEPAGE_CSV='%s'\n", c->csv);
	fprintf(f, "LOGFILE='%s'\n", c->logfile);
	fprintf(f, "DEBUG=%s\n", c->debug ? "1" : "");
	for (size_t i = 0; i < ctl_count(); i++) {
		const struct ctl_ops *p = ctl_at(i);
		char pol[64], par[64];

		upper(pol, p->name, sizeof(pol));
		for (uint32_t k = 0; k < p->nparams; k++) {
			const char *legacy = NULL;
			size_t plen = strlen(pol);

			upper(par, p->params[k].name, sizeof(par));
			for (size_t l = 0; l < NLEGACY && !strcmp(p->name, "ksmtuned"); l++) {
				if (!strcmp(legacy_keys[l].param, p->params[k].name))
					legacy = legacy_keys[l].key;
			}
			if (legacy)
				fprintf(f, "%s=%g\n", legacy, c->params[i].v[k]);
			else
				fprintf(f, "SAMEPAGE_%s_%s=%g\n", pol,
					!strncmp(par, pol, plen) && par[plen] == '_' ? par + plen + 1 : par,
					c->params[i].v[k]);
		}
	}
}

/* ---- logging ------------------------------------------------------------- */

static void logf_(const struct real_daemon *d, int level, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void logf_(const struct real_daemon *d, int level, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	if (!d->log || (level == REAL_LOG_DEBUG && !d->conf.debug))
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	d->log(d->log_arg, level, msg);
}

/* ---- the kernel ---------------------------------------------------------- */

int real_daemon_kernel(const char *procfs, struct algo_kernel *out, char *release, size_t len,
		       struct sp_err *err)
{
	char path[PATH_MAX], buf[128];
	struct utsname u;
	int rc;

	algo_kernel_newest(out);
	if (release && len)
		release[0] = '\0';
	if (!procfs || !strcmp(procfs, "/proc")) {
		if (uname(&u) == 0 && release && len)
			snprintf(release, len, "%s", u.release);
		return algo_kernel_running(out, err);
	}
	snprintf(path, sizeof(path), "%s/sys/kernel/osrelease", procfs);
	rc = real_read_small(path, buf, sizeof(buf));
	if (rc < 0)
		return sp_err_set(err, SP_ENOTSUP, "kernel version unknown (%s: %s)", path, strerror(-rc));
	if (release && len)
		snprintf(release, len, "%s", buf);
	rc = algo_kernel_parse(out, buf, err);
	if (rc < 0) {
		char msg[sizeof(err->msg)];

		snprintf(msg, sizeof(msg), "%s", err->msg);
		sp_err_clear(err);
		return sp_err_set(err, SP_ENOTSUP, "kernel version unknown (%s: %s)", path, msg);
	}
	return 0;
}

/*
 * At start: which files this kernel has.  A file missing is never read or
 * written again; the kernel's features follow the files (a distribution
 * kernel with a backport, or without a feature, shows as an override).
 */
static void settle_files(struct real_daemon *d)
{
	for (int i = 0; i < REAL_KSM__COUNT; i++) {
		const char *name = real_ksm_name(i);
		uint32_t f = algo_kernel_needs(name);

		d->absent[i] = !d->state.present[i];
		if (!f || !d->kernel_known || d->io)
			continue;
		if (d->state.present[i] && !algo_kernel_has(&d->kernel, f)) {
			d->kernel.features |= f;
			d->kernel.overridden |= f;
		} else if (!d->state.present[i] && algo_kernel_has(&d->kernel, f)) {
			d->kernel.features &= ~f;
			d->kernel.overridden |= f;
		}
	}
}

/* ---- reading ------------------------------------------------------------- */

static int read_ksm_files(struct real_daemon *d, struct sp_err *err)
{
	memset(&d->state, 0, sizeof(d->state));
	for (int i = 0; i < REAL_KSM__COUNT; i++) {
		struct sp_err e = { 0 };
		int rc;

		if (d->absent[i])
			continue;
		rc = real_ksm_get(&d->ksm, i, &d->state.v[i], &e);
		if (rc == SP_ENOTSUP && i != REAL_KSM_RUN) {
			d->absent[i] = true; /* gone since start: not tried again */
			continue;
		}
		if (rc < 0)
			return sp_err_set(err, rc, "%s", e.msg);
		d->state.present[i] = true;
	}
	return 0;
}

static int read_all(struct real_daemon *d, struct sp_err *err)
{
	int rc;

	if (d->io) {
		rc = d->io->read(d->io->arg, &d->host, &d->state, &d->given, &d->have_given, err);
		for (int i = 0; rc == 0 && i < REAL_KSM__COUNT; i++)
			d->state.present[i] = d->state.present[i] && !d->absent[i];
		return rc;
	}
	rc = real_host_read(d->procfs, d->sysfs, &d->host, err);
	if (rc == 0)
		rc = read_ksm_files(d, err);
	return rc;
}

static int64_t ksm_v(const struct real_daemon *d, int file)
{
	return d->state.present[file] ? d->state.v[file] : 0;
}

int64_t real_daemon_worst_unshare(const struct real_daemon *d)
{
	return real_unshare_worst(&d->state, &d->host.mem);
}

int64_t real_daemon_headroom(const struct real_daemon *d)
{
	return real_unshare_headroom(&d->host.mem, d->conf.reserve_mib);
}

void real_daemon_metrics(const struct real_daemon *d, struct metrics *out)
{
	if (d->have_given) {
		*out = d->given;
		return;
	}
	memset(out, 0, sizeof(*out));
	real_ksm_metrics(&d->state, &d->base, out);
	if (d->host.ksmd_cpu_ns >= 0 && d->base_ksmd_cpu_ns >= 0)
		out->cpu_ns = d->host.ksmd_cpu_ns - d->base_ksmd_cpu_ns;
	if (d->host.cow_ksm >= 0 && d->base_cow_ksm >= 0)
		out->cow_breaks = d->host.cow_ksm - d->base_cow_ksm;
}

/* ---- writing ------------------------------------------------------------- */

/* One tunable, to the kernel's file or the io. */
static int raw_write(struct real_daemon *d, int file, int64_t v, struct sp_err *err)
{
	return d->io ? d->io->write(d->io->arg, file, v, err) : d->write(&d->ksm, file, v, err);
}

static int write_file(struct real_daemon *d, int file, int64_t v, struct sp_err *err)
{
	int rc;

	if (d->dry_run) {
		logf_(d, REAL_LOG_INFO, "dry run: would set %s=%lld (now %lld)", real_ksm_name(file),
		      (long long)v, (long long)d->state.v[file]);
		return 0;
	}
	rc = raw_write(d, file, v, err);
	if (rc == 0)
		d->state.v[file] = v;
	return rc;
}

/*
 * run=2.  The kernel's unmerge can fail (it then leaves run=0), as can a
 * world that cannot unmerge (the simulator): a refusal, logged and counted,
 * not an error.  1 written, 0 refused.
 */
static int write_unmerge(struct real_daemon *d, const char *why)
{
	struct sp_err e = { 0 };

	if (write_file(d, REAL_KSM_RUN, REAL_KSM_RUN_UNMERGE, &e) == 0) {
		d->decisions[RD_UNMERGE]++;
		return 1;
	}
	d->refusals[RR_WRITE]++;
	d->state.v[REAL_KSM_RUN] = REAL_KSM_RUN_STOP;
	logf_(d, REAL_LOG_WARN, "run=2 (%s) failed, KSM left stopped: %s", why, e.msg);
	return 0;
}

static bool headroom_allows(struct real_daemon *d, const char *what)
{
	struct sp_err e = { 0 };

	if (real_unshare_check(&d->state, &d->host.mem, d->conf.reserve_mib, 0, what, &e) == 0)
		return true;
	d->refusals[RR_HEADROOM]++;
	logf_(d, REAL_LOG_WARN, "%s", e.msg);
	return false;
}

static void sleep_ns(uint64_t ns)
{
	struct timespec ts = { (time_t)(ns / NS), (long)(ns % NS) };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/*
 * Changes merge_across_nodes or max_page_sharing, which the kernel accepts
 * only while no KSM page exists: stop, check the headroom, run=2, wait until
 * pages_shared is 0 (timeout), write, restore run.  A refusal is not an
 * error: it is logged and counted, and the old value stays.
 */
static int switch_unmerging(struct real_daemon *d, int file, int64_t want, struct sp_err *err)
{
	int64_t old_run = ksm_v(d, REAL_KSM_RUN);
	double waited = 0;
	struct sp_err e = { 0 };
	int rc;

	if (!d->state.present[file]) {
		logf_(d, REAL_LOG_WARN, "this kernel has no %s; %s=%lld not applied", real_ksm_name(file),
		      real_ksm_name(file), (long long)want);
		return 0;
	}
	if (d->state.v[file] == want)
		return 0;
	if (d->dry_run) {
		logf_(d, REAL_LOG_INFO, "dry run: would unmerge everything and set %s=%lld (now %lld)",
		      real_ksm_name(file), (long long)want, (long long)d->state.v[file]);
		return 0;
	}
	if (!headroom_allows(d, real_ksm_name(file)))
		return 0;
	rc = write_file(d, REAL_KSM_RUN, REAL_KSM_RUN_STOP, err);
	if (rc == 0 && ksm_v(d, REAL_KSM_PAGES_SHARED) > 0) {
		if (!write_unmerge(d, real_ksm_name(file)))
			return write_file(d, REAL_KSM_RUN, old_run == REAL_KSM_RUN_MERGE, err);
		/* The io's time does not pass inside a cycle: it is read once, not waited for. */
		if (d->io)
			rc = read_all(d, err);
		while (!d->io && rc == 0 && ksm_v(d, REAL_KSM_PAGES_SHARED) > 0 && waited < d->conf.unmerge_timeout_s) {
			sleep_ns(NS / 10);
			waited += 0.1;
			rc = real_ksm_get(&d->ksm, REAL_KSM_PAGES_SHARED, &d->state.v[REAL_KSM_PAGES_SHARED], err);
		}
		if (rc == 0 && ksm_v(d, REAL_KSM_PAGES_SHARED) > 0) {
			d->refusals[RR_TIMEOUT]++;
			logf_(d, REAL_LOG_WARN, "gave up setting %s=%lld: %lld KSM pages still exist after %g s of run=2",
			      real_ksm_name(file), (long long)want, (long long)ksm_v(d, REAL_KSM_PAGES_SHARED),
			      waited);
			return write_file(d, REAL_KSM_RUN, old_run == REAL_KSM_RUN_MERGE, err);
		}
	}
	if (rc < 0)
		return rc;
	rc = raw_write(d, file, want, &e);
	if (rc < 0) {
		bool busy = strstr(e.msg, "busy") || strstr(e.msg, "EBUSY");

		d->refusals[busy ? RR_BUSY : RR_WRITE]++;
		logf_(d, REAL_LOG_WARN, "the kernel refused %s=%lld%s: %s", real_ksm_name(file), (long long)want,
		      busy ? " (KSM pages exist)" : "", e.msg);
	} else {
		d->state.v[file] = want;
		d->decisions[file == REAL_KSM_MERGE_ACROSS_NODES ? RD_NUMA_SWITCH : RD_OTHER_TUNABLE]++;
		logf_(d, REAL_LOG_INFO, "set %s=%lld after unmerging", real_ksm_name(file), (long long)want);
	}
	return write_file(d, REAL_KSM_RUN, old_run == REAL_KSM_RUN_MERGE, err);
}

/* A configured tunable this kernel lacks: one warning (at start or reload), nothing written. */
static void lacking(const struct real_daemon *d, const char *key, int file, int64_t v)
{
	char why[300];

	if (!d->kernel_known || algo_kernel_offers(&d->kernel, real_ksm_name(file), why, sizeof(why)))
		snprintf(why, sizeof(why), "this kernel has no %s/%s", d->ksm.dir, real_ksm_name(file));
	logf_(d, REAL_LOG_WARN, "%s=%lld not applied: %s", key, (long long)v, why);
}

/* The configured tunables that are not the policy's: at start and at reload. */
static int apply_fixed(struct real_daemon *d, struct sp_err *err)
{
	const struct real_daemon_conf *c = &d->conf;
	int rc = 0;
	int64_t man = c->merge_across_nodes;

	/* The kernel's own advisor forbids writing pages_to_scan: the policy drives it instead. */
	if (d->state.present[REAL_KSM_ADVISOR_MODE] && d->state.v[REAL_KSM_ADVISOR_MODE] != REAL_KSM_ADVISOR_NONE) {
		logf_(d, REAL_LOG_INFO, "advisor_mode scan-time -> none: policy %s sets pages_to_scan", c->policy->name);
		rc = write_file(d, REAL_KSM_ADVISOR_MODE, REAL_KSM_ADVISOR_NONE, err);
		if (rc < 0)
			return rc;
		d->decisions[RD_OTHER_TUNABLE]++;
	}
	if (man == -1)
		man = d->host.numa_nodes > 1 ? 0 : 1;
	if (man >= 0)
		rc = switch_unmerging(d, REAL_KSM_MERGE_ACROSS_NODES, man, err);
	if (rc == 0 && c->max_page_sharing >= 0)
		rc = switch_unmerging(d, REAL_KSM_MAX_PAGE_SHARING, c->max_page_sharing, err);
	if (rc == 0 && c->use_zero_pages >= 0 && d->state.present[REAL_KSM_USE_ZERO_PAGES])
		rc = d->env.set(d, "use_zero_pages", c->use_zero_pages, err);
	else if (c->use_zero_pages >= 0)
		lacking(d, "SAMEPAGE_USE_ZERO_PAGES", REAL_KSM_USE_ZERO_PAGES, c->use_zero_pages);
	if (rc == 0 && c->smart_scan >= 0 && d->state.present[REAL_KSM_SMART_SCAN])
		rc = d->env.set(d, "smart_scan", c->smart_scan, err);
	else if (c->smart_scan >= 0)
		lacking(d, "SAMEPAGE_SMART_SCAN", REAL_KSM_SMART_SCAN, c->smart_scan);
	return rc;
}

/* ---- the policy's environment ------------------------------------------- */

static int env_set(void *arg, const char *param, double value, struct sp_err *err)
{
	struct real_daemon *d = arg;
	int file = real_ksm_lookup(param);
	int64_t v = llround(value);
	int rc;

	if (file < 0 || file >= REAL_KSM_TUNABLES || !d->state.present[file])
		return sp_err_set(err, SP_EINVAL, "this kernel's KSM has no tunable %s", param);
	if (file == REAL_KSM_RUN || file == REAL_KSM_MERGE_ACROSS_NODES || file == REAL_KSM_MAX_PAGE_SHARING)
		return sp_err_set(err, SP_EINVAL, "%s is not set through a policy's set()", param);
	if (d->state.v[file] == v)
		return 0;
	logf_(d, REAL_LOG_INFO, "%s %s: %lld -> %lld", d->dry_run ? "would set" : "set", param,
	      (long long)d->state.v[file], (long long)v);
	rc = write_file(d, file, v, err);
	if (rc < 0) {
		d->refusals[RR_WRITE]++;
		return rc;
	}
	d->decisions[file == REAL_KSM_PAGES_TO_SCAN ? RD_PAGES_TO_SCAN
		     : file == REAL_KSM_SLEEP_MILLISECS ? RD_SLEEP_MILLISECS
							 : RD_OTHER_TUNABLE]++;
	return 0;
}

static double env_get(void *arg, const char *param)
{
	struct real_daemon *d = arg;
	int file = real_ksm_lookup(param);

	return file < 0 || !d->state.present[file] ? (double)NAN : (double)d->state.v[file];
}

static void env_run(void *arg, bool on)
{
	struct real_daemon *d = arg;
	struct sp_err err = { 0 };

	if (ksm_v(d, REAL_KSM_RUN) == (on ? 1 : 0))
		return;
	logf_(d, REAL_LOG_INFO, "%s KSM (run=%d): committed %llu KiB, free %llu KiB of %llu KiB",
	      d->dry_run ? "would start" : on ? "start" : "stop", on,
	      (unsigned long long)d->host.mem.committed_kib, (unsigned long long)d->host.mem.mem_free_kib,
	      (unsigned long long)d->host.mem.mem_total_kib);
	if (write_file(d, REAL_KSM_RUN, on, &err) < 0) {
		d->refusals[RR_WRITE]++;
		logf_(d, REAL_LOG_ERR, "%s", err.msg);
		return;
	}
	d->decisions[on ? RD_START : RD_STOP]++;
}

static int env_host(void *arg, struct ctl_host *out, struct sp_err *err)
{
	const struct real_daemon *d = arg;

	(void)err;
	*out = d->host.mem;
	return 0;
}

static const char *env_text(void *arg, const char *name)
{
	const struct real_daemon *d = arg;

	if (strcmp(name, "plan"))
		return NULL;
	return d->conf.plan[0] ? d->conf.plan : d->conf.path[0] ? d->conf.path : NULL;
}

static int create_policy(struct real_daemon *d, const struct real_daemon_conf *c, void **out,
			 struct sp_err *err)
{
	size_t idx = 0;

	while (ctl_at(idx) != c->policy)
		idx++;
	return c->policy->create(out, &c->params[idx], &d->env, err);
}

/* ---- the engine ---------------------------------------------------------- */

static void csv_row(struct real_daemon *d, uint64_t t_ns);

int real_daemon_start(struct real_daemon *d, uint64_t now_ns, struct sp_err *err)
{
	char dir[300], kdesc[400];
	struct sp_err ke = { 0 };
	int rc;

	if (!d->write)
		d->write = real_ksm_set;
	memset(d->absent, 0, sizeof(d->absent));
	if (d->io) {
		snprintf(dir, sizeof(dir), "the simulated KSM");
		snprintf(d->ksm.dir, sizeof(d->ksm.dir), "(simulated)");
	} else {
		snprintf(dir, sizeof(dir), "%s/kernel/mm/ksm", d->sysfs ? d->sysfs : "/sys");
		rc = real_ksm_open(&d->ksm, dir, !d->dry_run, err);
		if (rc < 0)
			return rc;
		d->kernel_known = real_daemon_kernel(d->procfs, &d->kernel, d->kernel_release,
						     sizeof(d->kernel_release), &ke) == 0;
	}
	rc = read_all(d, err);
	if (rc < 0)
		return rc;
	settle_files(d);
	if (d->kernel_known) {
		char desc[300];

		algo_kernel_describe(&d->kernel, desc, sizeof(desc));
		snprintf(kdesc, sizeof(kdesc), "Linux %s", desc);
	} else {
		snprintf(kdesc, sizeof(kdesc), "%s: the files present decide", ke.msg);
	}
	d->base = d->state;
	d->base_ksmd_cpu_ns = d->host.ksmd_cpu_ns;
	d->base_cow_ksm = d->prev_cow_ksm = d->host.cow_ksm;
	d->start_ns = d->prev_cycle_ns = now_ns;
	d->env = (struct ctl_env){
		.target = "this kernel's KSM", .set = env_set, .get = env_get, .run = env_run,
		.host = env_host, .text = env_text, .arg = d,
	};
	logf_(d, REAL_LOG_INFO, "policy %s on %s: MemTotal %llu KiB, %u QEMU guests (%llu KiB RSS), %u NUMA nodes%s",
	      d->conf.policy->name, dir, (unsigned long long)d->host.mem.mem_total_kib, d->host.nguests,
	      (unsigned long long)d->host.mem.committed_kib, d->host.numa_nodes,
	      d->dry_run ? "; dry run: nothing is written" : "");
	logf_(d, REAL_LOG_INFO, "kernel: %s", kdesc);
	rc = apply_fixed(d, err);
	if (rc == 0)
		rc = create_policy(d, &d->conf, &d->policy_st, err);
	if (rc == 0)
		d->env.run(d, true);
	return rc;
}

int real_daemon_reload(struct real_daemon *d, const struct real_daemon_conf *c, struct sp_err *err)
{
	struct real_daemon_conf old = d->conf;
	void *st = NULL;
	int rc;

	d->conf = *c;
	rc = create_policy(d, c, &st, err);
	if (rc < 0) {
		d->conf = old;
		return rc;
	}
	if (d->policy_st)
		old.policy->destroy(d->policy_st);
	d->policy_st = st;
	d->next_tick_ns = d->policy_start_ns = d->now_ns;
	d->ticks = 0;
	return apply_fixed(d, err);
}

static void check_alarms(struct real_daemon *d, uint64_t now_ns)
{
	const struct ctl_host *h = &d->host.mem;
	int64_t saved_kib = real_daemon_worst_unshare(d) / 1024;
	int64_t host_use = (int64_t)h->mem_total_kib - (int64_t)h->mem_available_kib -
			   ((int64_t)h->committed_kib - saved_kib);
	int64_t need;
	bool warn, alarm;

	/* RHEL's rule: swap >= committed guest memory + the host's own use - RAM. */
	if (host_use < 0)
		host_use = 0;
	need = (int64_t)h->committed_kib + host_use - (int64_t)h->mem_total_kib;
	warn = need > 0 && (int64_t)h->swap_total_kib < need;
	if (warn && !d->swap_warning)
		logf_(d, REAL_LOG_WARN, "swap (%llu KiB) is smaller than guest memory + host use - RAM (%lld KiB): "
		      "a mass COW break could run out of memory", (unsigned long long)h->swap_total_kib,
		      (long long)need);
	d->swap_warning = warn;
	if (d->host.cow_ksm >= 0 && d->prev_cow_ksm >= 0 && now_ns > d->prev_cycle_ns) {
		d->cow_rate = (double)(d->host.cow_ksm - d->prev_cow_ksm) * 1e9 / (double)(now_ns - d->prev_cycle_ns);
		alarm = d->cow_rate > d->conf.cow_alarm_per_s;
		if (alarm && !d->cow_alarm)
			logf_(d, REAL_LOG_WARN, "cow_ksm rate %.0f/s exceeds %g/s: merged pages are being written",
			      d->cow_rate, d->conf.cow_alarm_per_s);
		d->cow_alarm = alarm;
	}
	d->prev_cow_ksm = d->host.cow_ksm;
	d->prev_cycle_ns = now_ns;
}

int real_daemon_cycle(struct real_daemon *d, uint64_t now_ns, bool force, uint64_t *next_ns,
		      struct sp_err *err)
{
	const struct ctl_ops *p = d->conf.policy;
	uint64_t t = now_ns - d->start_ns, next = FOREVER, poll = (uint64_t)(d->conf.poll_s * 1e9);
	struct metrics m;
	struct sp_err perr = { 0 };
	int rc = read_all(d, err);

	if (rc < 0)
		return rc;
	d->now_ns = t;
	d->cycles++;
	check_alarms(d, now_ns);
	real_daemon_metrics(d, &m);
	if (force || t >= d->next_tick_ns) {
		logf_(d, REAL_LOG_DEBUG, "%s: committed %llu KiB, free %llu KiB, available %llu KiB, pages_sharing %lld",
		      force ? "retune" : "adjust", (unsigned long long)d->host.mem.committed_kib,
		      (unsigned long long)d->host.mem.mem_free_kib, (unsigned long long)d->host.mem.mem_available_kib,
		      (long long)ksm_v(d, REAL_KSM_PAGES_SHARING));
		bool first = d->ticks == 0;

		rc = p->tick(d->policy_st, t - d->policy_start_ns, &m, &next, &perr);
		d->ticks++;
		if (rc == 0 && force && first) {
			rc = p->tick(d->policy_st, t - d->policy_start_ns, &m, &next, &perr);
			d->ticks++;
		}
		d->next_tick_ns = next == ALGO_SLEEP_FOREVER ? FOREVER : t + (next ? next : 1000000);
	}
	if (rc == 0 && p->after_batch && !d->driven)
		rc = p->after_batch(d->policy_st, t - d->policy_start_ns, &m, &perr);
	if (rc < 0)
		logf_(d, REAL_LOG_ERR, "policy %s: %s", p->name, perr.msg);
	csv_row(d, t);
	if (d->conf.metrics[0] && real_daemon_write_metrics(d, d->conf.metrics, err) < 0)
		return err ? err->code : SP_EIO;
	next = d->next_tick_ns;
	if (!d->driven && t + poll < next)
		next = t + poll;
	*next_ns = next == FOREVER ? FOREVER : d->start_ns + next;
	return 0;
}

int real_daemon_batch(struct real_daemon *d, uint64_t now_ns, struct sp_err *err)
{
	const struct ctl_ops *p = d->conf.policy;
	struct metrics m;
	struct sp_err perr = { 0 };
	int rc;

	if (!p->after_batch)
		return 0;
	rc = read_all(d, err);
	if (rc < 0)
		return rc;
	real_daemon_metrics(d, &m);
	if (p->after_batch(d->policy_st, now_ns - d->start_ns - d->policy_start_ns, &m, &perr) < 0)
		logf_(d, REAL_LOG_ERR, "policy %s: %s", p->name, perr.msg);
	return 0;
}

int real_daemon_stop(struct real_daemon *d, struct sp_err *err)
{
	int rc = 0;

	switch (d->conf.on_exit) {
	case REAL_ON_EXIT_KEEP:
		logf_(d, REAL_LOG_INFO, "exit: KSM left as it is (run=%lld, %lld pages sharing)",
		      (long long)ksm_v(d, REAL_KSM_RUN), (long long)ksm_v(d, REAL_KSM_PAGES_SHARING));
		break;
	case REAL_ON_EXIT_STOP:
		logf_(d, REAL_LOG_INFO, "exit: stopping KSM (run=0); merged pages stay merged");
		rc = ksm_v(d, REAL_KSM_RUN) ? write_file(d, REAL_KSM_RUN, REAL_KSM_RUN_STOP, err) : 0;
		break;
	case REAL_ON_EXIT_UNMERGE:
		rc = read_all(d, err);
		if (rc == 0 && headroom_allows(d, "unmerge at exit")) {
			logf_(d, REAL_LOG_INFO, "exit: unmerging every KSM page (run=2)");
			if (!write_unmerge(d, "unmerge at exit"))
				rc = write_file(d, REAL_KSM_RUN, REAL_KSM_RUN_STOP, err);
		} else if (rc == 0) {
			rc = write_file(d, REAL_KSM_RUN, REAL_KSM_RUN_STOP, err);
		}
		break;
	}
	if (d->conf.metrics[0]) {
		struct sp_err e = { 0 };

		real_daemon_write_metrics(d, d->conf.metrics, &e);
	}
	if (d->policy_st)
		d->conf.policy->destroy(d->policy_st);
	d->policy_st = NULL;
	return rc;
}

/* ---- the CSV time series ------------------------------------------------- */

/*
 * Before the first row: an existing SAMEPAGE_CSV is continued, not
 * rewritten, so that a day's series survives a restart.  Its header must be
 * ours (else it is left alone and no CSV is written); a last line cut short
 * by a crash is cut off; the new rows continue its time axis (its last
 * time_ms plus the wall-clock time since it was last written, at least 1 ms)
 * and its cumulative columns (their last values).  0, or -1 with msg.
 */
static int csv_continue(struct real_daemon *d, bool *header, char *msg, size_t len)
{
	char want[4096], first[4096], tail[8192], *line, *end;
	struct stat st;
	FILE *f, *mem;
	size_t got, wlen = 0;
	char *wbuf = NULL;
	off_t from;
	struct timespec now;

	*header = true;
	if (stat(d->conf.csv, &st) < 0 || st.st_size == 0)
		return 0;
	mem = open_memstream(&wbuf, &wlen);
	if (!mem)
		return snprintf(msg, len, "out of memory"), -1;
	metrics_csv_header(mem, true);
	fclose(mem);
	snprintf(want, sizeof(want), "%s", wbuf);
	free(wbuf);
	f = fopen(d->conf.csv, "re");
	if (!f)
		return snprintf(msg, len, "%s", strerror(errno)), -1;
	if (!fgets(first, sizeof(first), f) || strcmp(first, want)) {
		fclose(f);
		return snprintf(msg, len, "its first line is not samepaged's header (another file, or other "
				"columns): left alone; move it away to start a new series"), -1;
	}
	*header = false;
	from = st.st_size > (off_t)sizeof(tail) - 1 ? st.st_size - (off_t)sizeof(tail) + 1 : 0;
	got = fseeko(f, from, SEEK_SET) == 0 ? fread(tail, 1, sizeof(tail) - 1, f) : 0;
	fclose(f);
	tail[got] = '\0';
	end = strrchr(tail, '\n');
	if (!end)
		return snprintf(msg, len, "its last line is longer than %zu bytes", sizeof(tail)), -1;
	if (end[1]) { /* a row cut short: cut it off */
		if (truncate(d->conf.csv, from + (end + 1 - tail)) < 0)
			return snprintf(msg, len, "cannot cut off its incomplete last line: %s", strerror(errno)), -1;
		logf_(d, REAL_LOG_WARN, "SAMEPAGE_CSV %s: cut off an incomplete last line", d->conf.csv);
	}
	*end = '\0';
	line = strrchr(tail, '\n');
	line = line ? line + 1 : tail;
	if (!strncmp(line, "time_ms,", 8))
		return 0; /* a header alone: the series starts here */
	{
		int64_t v[1 + METRICS_COUNT + 3];
		size_t n = 0;
		char *p = line, *e;

		while (n < sizeof(v) / sizeof(v[0])) {
			errno = 0;
			v[n++] = strtoll(p, &e, 10);
			if (e == p || errno || (*e != ',' && *e != '\0'))
				return snprintf(msg, len, "its last row is not a row of numbers"), -1;
			if (*e == '\0')
				break;
			p = e + 1;
		}
		if (n != sizeof(v) / sizeof(v[0]) || v[0] < 0)
			return snprintf(msg, len, "its last row has %zu columns, not %zu", n, sizeof(v) / sizeof(v[0])), -1;
		clock_gettime(CLOCK_REALTIME, &now);
		{
			int64_t gap = ((int64_t)now.tv_sec - (int64_t)st.st_mtim.tv_sec) * 1000 +
				      ((int64_t)now.tv_nsec - (int64_t)st.st_mtim.tv_nsec) / 1000000;

			d->csv_t0_ms = (uint64_t)v[0] + (uint64_t)(gap > 1 ? gap : 1);
		}
		/* The cumulative columns samepaged fills go on from their last values. */
		memset(&d->csv_base, 0, sizeof(d->csv_base));
		for (int c = 0; c < METRICS_COUNT; c++) {
			const char *name = metrics_names[c];
			int64_t *to = !strcmp(name, "full_scans") ? &d->csv_base.full_scans
				      : !strcmp(name, "pages_scanned") ? &d->csv_base.pages_scanned
				      : !strcmp(name, "pages_skipped") ? &d->csv_base.pages_skipped
				      : !strcmp(name, "cow_breaks") ? &d->csv_base.cow_breaks
				      : !strcmp(name, "cpu_ns") ? &d->csv_base.cpu_ns : NULL;

			if (to)
				*to = v[1 + c];
		}
	}
	logf_(d, REAL_LOG_INFO, "SAMEPAGE_CSV %s: continuing its series at time_ms %llu", d->conf.csv,
	      (unsigned long long)d->csv_t0_ms);
	return 0;
}

/*
 * One row of SAMEPAGE_CSV: sim run --csv's columns (the shared writer),
 * time_ms on the file's own axis (csv_continue), the tunables in force;
 * appended at every cycle.  A failure is logged once and the CSV given up.
 */
static void csv_row(struct real_daemon *d, uint64_t t_ns)
{
	struct metrics m;
	struct metrics_tunables tu = { ksm_v(d, REAL_KSM_RUN), ksm_v(d, REAL_KSM_PAGES_TO_SCAN),
				       ksm_v(d, REAL_KSM_SLEEP_MILLISECS) };
	char msg[300] = "";
	bool header = false;
	FILE *f = NULL;
	int rc = 0;

	if (!d->conf.csv[0] || d->csv_failed)
		return;
	if (!d->csv_header_done)
		rc = csv_continue(d, &header, msg, sizeof(msg));
	d->csv_header_done = true;
	if (rc == 0) {
		f = fopen(d->conf.csv, "ae");
		rc = f ? 0 : -1;
		if (!f)
			snprintf(msg, sizeof(msg), "%s", strerror(errno));
	}
	if (f && header)
		rc = metrics_csv_header(f, true);
	real_daemon_metrics(d, &m);
	m.full_scans += d->csv_base.full_scans;
	m.pages_scanned += d->csv_base.pages_scanned;
	m.pages_skipped += d->csv_base.pages_skipped;
	m.cow_breaks += d->csv_base.cow_breaks;
	m.cpu_ns += d->csv_base.cpu_ns;
	if (f && rc == 0)
		rc = metrics_csv_row(f, d->csv_t0_ms + t_ns / 1000000, &m, &tu);
	if (f && fclose(f) != 0)
		rc = -1;
	if (rc != 0) {
		d->csv_failed = true;
		logf_(d, REAL_LOG_ERR, "SAMEPAGE_CSV %s: %s; no more CSV rows", d->conf.csv,
		      msg[0] ? msg : strerror(errno));
	}
}

/* ---- the Prometheus textfile --------------------------------------------- */

static void label_escape(char *out, size_t len, const char *s)
{
	size_t o = 0;

	for (; *s && o + 3 < len; s++) {
		if (*s == '\\' || *s == '"') {
			out[o++] = '\\';
			out[o++] = *s;
		} else if (*s == '\n') {
			out[o++] = '\\';
			out[o++] = 'n';
		} else {
			out[o++] = *s;
		}
	}
	out[o] = '\0';
}

static void metric(FILE *f, const char *name, const char *type, const char *help, double v)
{
	fprintf(f, "# HELP samepage_%s %s\n# TYPE samepage_%s %s\nsamepage_%s %.17g\n", name, help, name,
		type, name, v);
}

int real_daemon_write_metrics(const struct real_daemon *d, const char *path, struct sp_err *err)
{
	struct atomic_file af;
	const char *src = d->conf.policy->version >= 2 && d->conf.policy->source && d->policy_st
				  ? d->conf.policy->source(d->policy_st)
				  : d->conf.path;
	char esc[600], kernel[200];
	FILE *f;
	int rc;

	rc = atomic_file_open(&af, path, 0644, err);
	if (rc < 0)
		return rc;
	f = af.f;
	label_escape(esc, sizeof(esc), src ? src : "");
	if (d->kernel_known)
		algo_kernel_format(&d->kernel, kernel, sizeof(kernel));
	else
		snprintf(kernel, sizeof(kernel), "unknown");
	fprintf(f, "# HELP samepage_info The control policy samepaged runs, where its settings come from, and the kernel "
		   "(the version whose KSM files are used, with the features found otherwise as overrides).\n"
		   "# TYPE samepage_info gauge\nsamepage_info{policy=\"%s\",source=\"%s\",version=\"%s\",dry_run=\"%d\",kernel=\"",
		d->conf.policy->name, esc, SP_VERSION, d->dry_run);
	label_escape(esc, sizeof(esc), kernel);
	fprintf(f, "%s\",kernel_release=\"", esc);
	label_escape(esc, sizeof(esc), d->kernel_release);
	fprintf(f, "%s\"} 1\n", esc);
	metric(f, "saved_bytes", "gauge", "Memory KSM saves now: (pages_sharing + ksm_zero_pages) x page size.",
	       (double)real_daemon_worst_unshare(d));
	metric(f, "worst_case_unshare_bytes", "gauge",
	       "Memory a full unshare (run=2, every merged page written) would need.",
	       (double)real_daemon_worst_unshare(d));
	metric(f, "unshare_headroom_bytes", "gauge",
	       "MemAvailable + SwapFree - reserve: what an unshare may use (negative: none).",
	       (double)real_daemon_headroom(d));
	metric(f, "reserve_bytes", "gauge", "Headroom kept free (SAMEPAGE_RESERVE_MIB, default 5% of RAM).",
	       (double)real_unshare_reserve(&d->host.mem, d->conf.reserve_mib));
	if (d->host.ksmd_cpu_ns >= 0)
		metric(f, "ksmd_cpu_seconds_total", "counter", "CPU time of the ksmd thread since boot.",
		       (double)d->host.ksmd_cpu_ns / 1e9);
	if (d->host.cow_ksm >= 0) {
		metric(f, "cow_ksm_total", "counter", "Copy-on-write breaks of KSM pages since boot (vmstat cow_ksm).",
		       (double)d->host.cow_ksm);
		metric(f, "cow_ksm_per_second", "gauge", "cow_ksm rate over the last cycle.", d->cow_rate);
	}
	metric(f, "cow_ksm_alarm", "gauge", "1 while the cow_ksm rate exceeds SAMEPAGE_COW_ALARM_PER_SEC.",
	       d->cow_alarm);
	metric(f, "swap_warning", "gauge", "1 while swap is smaller than guest memory + host use - RAM (RHEL's rule).",
	       d->swap_warning);
	metric(f, "guests", "gauge", "QEMU processes found.", d->host.nguests);
	metric(f, "committed_bytes", "gauge", "Memory committed to guests: the sum of the QEMU processes' RSS.",
	       (double)d->host.mem.committed_kib * 1024);
	metric(f, "mem_available_bytes", "gauge", "MemAvailable.", (double)d->host.mem.mem_available_kib * 1024);
	metric(f, "numa_nodes", "gauge", "NUMA nodes of the host.", d->host.numa_nodes);
	fprintf(f, "# HELP samepage_ksm KSM's counters and tunables as /sys/kernel/mm/ksm shows them (general_profit is signed, bytes).\n"
		   "# TYPE samepage_ksm gauge\n");
	for (int i = 0; i < REAL_KSM__COUNT; i++) {
		if (d->state.present[i])
			fprintf(f, "samepage_ksm{file=\"%s\"} %lld\n", real_ksm_name(i), (long long)d->state.v[i]);
	}
	fprintf(f, "# HELP samepage_decisions_total Changes samepaged made, by kind.\n# TYPE samepage_decisions_total counter\n");
	for (int i = 0; i < RD__COUNT; i++)
		fprintf(f, "samepage_decisions_total{kind=\"%s\"} %llu\n", decision_names[i],
			(unsigned long long)d->decisions[i]);
	fprintf(f, "# HELP samepage_refusals_total Steps samepaged did not take, by reason.\n# TYPE samepage_refusals_total counter\n");
	for (int i = 0; i < RR__COUNT; i++)
		fprintf(f, "samepage_refusals_total{reason=\"%s\"} %llu\n", refusal_names[i],
			(unsigned long long)d->refusals[i]);
	if (d->host.nguests)
		fprintf(f, "# HELP samepage_guest_ksm_merging_pages Pages of each QEMU process merged by KSM (ksm_stat).\n"
			   "# TYPE samepage_guest_ksm_merging_pages gauge\n");
	for (uint32_t i = 0; i < d->host.nguests && i < REAL_HOST_MAX_GUESTS; i++) {
		const struct real_guest *g = &d->host.guests[i];

		if (g->ksm_merging_pages < 0)
			continue;
		label_escape(esc, sizeof(esc), g->comm);
		fprintf(f, "samepage_guest_ksm_merging_pages{pid=\"%d\",comm=\"%s\"} %lld\n", (int)g->pid, esc,
			(long long)g->ksm_merging_pages);
	}
	metric(f, "cycles_total", "counter", "Decision cycles run.", (double)d->cycles);
	return atomic_file_commit(&af, err);
}
