/*
 * daemon.h - samepaged's engine: its configuration, and the decision cycle
 * that runs a control policy (sim/ctl_*.c, the very code `sim run
 * --controller` runs) against the host's kernel KSM, with the safety checks
 * and the exports (Prometheus textfile, CSV in sim's columns).
 *
 * The library never prints: every log line goes through conf->log.
 *
 * Safety rule: nothing is unmerged blind.  Before anything that unmerges
 * (run=2, a merge_across_nodes or max_page_sharing change, ON_EXIT=unmerge)
 *   worst-case unshare = (pages_sharing + ksm_zero_pages) x page size
 *   headroom           = MemAvailable + SwapFree - reserve
 * must satisfy headroom >= worst-case unshare, else the step is refused,
 * logged, and counted in samepage_refusals_total{reason="headroom"}.
 */
#ifndef SP_REAL_DAEMON_H
#define SP_REAL_DAEMON_H

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>

#include "control.h"
#include "host.h"
#include "kernel.h"
#include "ksm_sysfs.h"
#include "metrics.h"
#include "sp_error.h"

#define REAL_DAEMON_CONF "/etc/samepaged.conf"

enum real_on_exit { REAL_ON_EXIT_KEEP, REAL_ON_EXIT_STOP, REAL_ON_EXIT_UNMERGE };

/* Log levels of conf->log. */
enum { REAL_LOG_ERR, REAL_LOG_WARN, REAL_LOG_INFO, REAL_LOG_DEBUG };

struct real_daemon_conf {
	char path[PATH_MAX];              /* the file read ("" if none) */
	const struct ctl_ops *policy;     /* SAMEPAGE_POLICY (default ksmtuned) */
	struct algo_params params[8];     /* every registered policy's parameters, by ctl_at() index */
	char plan[PATH_MAX];              /* SAMEPAGE_PLAN (default: path) */
	int merge_across_nodes;           /* -2 leave alone, -1 auto, 0, 1 */
	int use_zero_pages;               /* -1 leave alone */
	int smart_scan;                   /* -1 leave alone */
	int64_t max_page_sharing;         /* -1 leave alone */
	enum real_on_exit on_exit;        /* SAMEPAGE_ON_EXIT */
	int64_t reserve_mib;              /* SAMEPAGE_RESERVE_MIB; -1: 5% of MemTotal */
	double cow_alarm_per_s;           /* SAMEPAGE_COW_ALARM_PER_SEC (default 1000) */
	double poll_s;                    /* SAMEPAGE_POLL_SEC: counter poll for after_batch policies (default 5) */
	double unmerge_timeout_s;         /* SAMEPAGE_UNMERGE_TIMEOUT_SEC (default 120) */
	char metrics[PATH_MAX];           /* SAMEPAGE_METRICS ("" none) */
	char csv[PATH_MAX];               /* SAMEPAGE_CSV ("" none) */
	char logfile[PATH_MAX];           /* LOGFILE ("" none) */
	bool debug;                       /* DEBUG non-empty */
};

/*
 * Reads a configuration: ksmtuned's keys (KSM_MONITOR_INTERVAL, KSM_SLEEP_MSEC,
 * KSM_NPAGES_BOOST, KSM_NPAGES_DECAY, KSM_NPAGES_MIN, KSM_NPAGES_MAX,
 * KSM_THRES_COEF, KSM_THRES_CONST, LOGFILE, DEBUG), samepage's (SAMEPAGE_*),
 * and SAMEPAGE_<POLICY>_<PARAM> for any policy parameter (a parameter named
 * POLICY_x may also be spelt SAMEPAGE_POLICY_X), plus a plan's PLAN_FORMAT,
 * PLAN_SOURCE and STEP lines (read by the plan policy).  path NULL: the
 * defaults.  SP_ECORRUPT "PATH:LINE: ..." for an unknown key or a bad value.
 */
int real_daemon_conf_load(struct real_daemon_conf *out, const char *path, struct sp_err *err);
/* Writes the effective configuration (every key, after defaults) as a loadable file. */
void real_daemon_conf_print(const struct real_daemon_conf *c, FILE *f);

/* Decision kinds and refusal reasons, as metric labels. */
enum real_decision { RD_START, RD_STOP, RD_PAGES_TO_SCAN, RD_SLEEP_MILLISECS, RD_OTHER_TUNABLE,
		     RD_UNMERGE, RD_NUMA_SWITCH, RD__COUNT };
enum real_refusal { RR_HEADROOM, RR_BUSY, RR_TIMEOUT, RR_WRITE, RR__COUNT };

/*
 * Where the engine reads and writes when it is not a host's /proc and /sys
 * (samepaged --simulate: the simulator).  read() fills the host, the KSM
 * files (present[] false for a file the kernel lacks) and, if it has them,
 * the whole metrics (*have_m true; else real_daemon_metrics() derives them
 * from the files); write() sets one tunable as the kernel's sysfs would
 * (run=2 may fail, as the kernel's unmerge may; EBUSY: message says "busy").
 * Time does not pass inside a cycle: an unmerge is not waited for.
 */
struct real_daemon_io {
	int (*read)(void *arg, struct real_host *host, struct real_ksm_state *state, struct metrics *m,
		    bool *have_m, struct sp_err *err);
	int (*write)(void *arg, int file, int64_t value, struct sp_err *err);
	void *arg;
};

/*
 * The running kernel: under the default procfs (/proc) uname, as
 * algo_kernel_running(); under another (a fake tree) PROCFS/sys/kernel/osrelease.
 * 0, or SP_ENOTSUP (unknown: missing file, or a version the table does not
 * cover) with the reason; *release gets the text read ("" if none).
 */
int real_daemon_kernel(const char *procfs, struct algo_kernel *out, char *release, size_t len,
		       struct sp_err *err);

struct real_daemon {
	struct real_daemon_conf conf;
	const char *procfs, *sysfs;       /* roots (not owned) */
	bool dry_run;
	void (*log)(void *arg, int level, const char *msg);
	void *log_arg;
	/* Writes one tunable; real_ksm_set() unless a test replaces it. */
	int (*write)(const struct real_ksm *k, int file, int64_t value, struct sp_err *err);
	/* Another world than /proc and /sys (NULL: them); then kernel and kernel_known are the caller's. */
	const struct real_daemon_io *io;
	/*
	 * Driven (the simulator): the io's scan batches call real_daemon_batch(),
	 * so a cycle neither polls nor runs the policy's after_batch().
	 */
	bool driven;
	/*
	 * The kernel (real_daemon_kernel() at start, unless io), its features
	 * corrected by the files present (a backport shows as an override);
	 * kernel_known false: version unknown, the files alone decide.
	 */
	struct algo_kernel kernel;
	bool kernel_known;
	char kernel_release[96];

	/* below: state, owned by the engine */
	struct real_ksm ksm;
	struct real_ksm_state base, state; /* counters at start; now */
	bool absent[REAL_KSM__COUNT];     /* files missing at start: never read or written again */
	struct metrics given;             /* the io's metrics (have_given) */
	bool have_given;
	struct real_host host;
	struct ctl_env env;
	void *policy_st;
	uint64_t start_ns;                /* monotonic time at start */
	uint64_t now_ns;                  /* since start, at the last cycle */
	uint64_t next_tick_ns;            /* the policy's next tick, since start */
	uint64_t policy_start_ns;         /* when the policy was created, since start */
	uint64_t ticks;                   /* ticks of this policy so far */
	int64_t base_ksmd_cpu_ns, base_cow_ksm;
	int64_t prev_cow_ksm;             /* at the previous cycle, for the rate */
	uint64_t prev_cycle_ns;
	double cow_rate;                  /* cow_ksm per second over the last cycle */
	bool cow_alarm, swap_warning;
	uint64_t decisions[RD__COUNT];
	uint64_t refusals[RR__COUNT];
	uint64_t cycles;
	bool csv_header_done, csv_failed;
	/*
	 * SAMEPAGE_CSV appends across restarts: rows continue the file's time
	 * axis (csv_t0_ms: its last time plus the wall-clock gap since it was
	 * last written) and its cumulative columns (csv_base: their last values).
	 */
	uint64_t csv_t0_ms;
	struct metrics csv_base;
};

/*
 * Opens the KSM directory under sysfs (SP_ENOTSUP: no KSM; SP_EPERM:
 * read-only, unless dry_run), reads the host, applies the configured
 * merge_across_nodes / use_zero_pages / smart_scan / max_page_sharing (the
 * unmerging ones through the checked path), starts KSM (run=1, as the ksm
 * service does and as the simulator starts: the policy adjusts from there)
 * and creates the policy.
 * d->conf, procfs, sysfs, dry_run, log must be set; d->write may be.
 */
int real_daemon_start(struct real_daemon *d, uint64_t now_ns, struct sp_err *err);
/*
 * One cycle at now_ns (monotonic): read the host and the counters, run the
 * policy if due (force: now, as SIGUSR1's retune; a policy that has not
 * ticked yet gets its first tick and, at once, a second one, so that a
 * policy whose first tick only starts waiting - ksmtuned's first sleep -
 * decides now), check the alarms, write the metrics file and a CSV row.  *next_ns: monotonic time of the next
 * cycle.
 */
int real_daemon_cycle(struct real_daemon *d, uint64_t now_ns, bool force, uint64_t *next_ns,
		      struct sp_err *err);
/*
 * Driven mode: after a scan batch at now_ns (the io's clock), read and give
 * the policy its after_batch().  Policy errors are logged, not returned.
 */
int real_daemon_batch(struct real_daemon *d, uint64_t now_ns, struct sp_err *err);
/*
 * The engine as a control policy of the simulator (samepaged --simulate):
 * sim_run() with cfg.ctl = &real_daemon_sim_ctl and cfg.ctl_ctx = a struct
 * real_daemon with conf, log (and kernel: the simulated one, kernel_known)
 * set and not started.  Its create() starts the engine on the simulated
 * world (real_daemon_io over the simulator's ctl_env), every tick runs
 * real_daemon_cycle(), every batch real_daemon_batch(), destroy() applies
 * SAMEPAGE_ON_EXIT (real_daemon_stop).  The engine struct is left with its
 * counters for the caller.  See daemon_sim.c.
 */
extern const struct ctl_ops real_daemon_sim_ctl;
/* A new configuration (SIGHUP): the policy is recreated; on error the old one stays. */
int real_daemon_reload(struct real_daemon *d, const struct real_daemon_conf *c, struct sp_err *err);
/* Leaves KSM as SAMEPAGE_ON_EXIT says (unmerge only if the headroom allows) and frees. */
int real_daemon_stop(struct real_daemon *d, struct sp_err *err);

/* The counters as struct metrics since start (cpu_ns: ksmd's, cow_breaks: cow_ksm). */
void real_daemon_metrics(const struct real_daemon *d, struct metrics *out);
/* Worst-case unshare and headroom in bytes, now. */
int64_t real_daemon_worst_unshare(const struct real_daemon *d);
int64_t real_daemon_headroom(const struct real_daemon *d);
/* Writes the Prometheus textfile to path (temporary file + rename). */
int real_daemon_write_metrics(const struct real_daemon *d, const char *path, struct sp_err *err);

#endif
