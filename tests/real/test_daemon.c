/*
 * test_daemon.c - samepaged's engine (real/daemon.c) on fake /proc and /sys
 * trees: ksmtuned's decisions worked out by hand from the script, the
 * host's files read as the kernel writes them, and every safety path (no
 * KSM, a counter absent on an old kernel, EBUSY on a NUMA switch, a
 * headroom refusal) with its metric.
 */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "daemon.h"
#include "harness.h"

#define S 1000000000ull

struct fake {
	char root[512], sys[600], proc[600], ksm[700];
	char log[4096];
};

static void put(const char *dir, const char *name, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void put(const char *dir, const char *name, const char *fmt, ...)
{
	char path[1024];
	va_list ap;
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "w");
	CU_ASSERT_PTR_NOT_NULL_FATAL(f);
	va_start(ap, fmt);
	vfprintf(f, fmt, ap);
	va_end(ap);
	fclose(f);
}

static int64_t get(const struct fake *fk, const char *name)
{
	char path[1024];
	long long v = -1;
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", fk->ksm, name);
	f = fopen(path, "r");
	CU_ASSERT_PTR_NOT_NULL_FATAL(f);
	CU_ASSERT_EQUAL(fscanf(f, "%lld", &v), 1);
	fclose(f);
	return v;
}

static void mkdirs(const char *path)
{
	char buf[1024];

	snprintf(buf, sizeof(buf), "%s", path);
	for (char *p = buf + 1; *p; p++) {
		if (*p == '/') {
			*p = '\0';
			mkdir(buf, 0755);
			*p = '/';
		}
	}
	mkdir(buf, 0755);
}

/* meminfo in KiB: total, free (MemFree; Buffers 0, Cached 0), available, swap. */
static void meminfo(struct fake *fk, int64_t total, int64_t mfree, int64_t avail, int64_t swap)
{
	put(fk->proc, "meminfo",
	    "MemTotal:       %lld kB\nMemFree:        %lld kB\nMemAvailable:   %lld kB\n"
	    "Buffers:               0 kB\nCached:                0 kB\nSwapTotal:      %lld kB\n"
	    "SwapFree:       %lld kB\n",
	    (long long)total, (long long)mfree, (long long)avail, (long long)swap, (long long)swap);
}

static void guest(struct fake *fk, int pid, const char *comm, int64_t rss_kib)
{
	char dir[800];

	snprintf(dir, sizeof(dir), "%s/%d", fk->proc, pid);
	mkdirs(dir);
	put(dir, "comm", "%s\n", comm);
	put(dir, "status", "Name:\t%s\nVmSize:\t99999999 kB\nVmRSS:\t%lld kB\n", comm, (long long)rss_kib);
}

/* A host with KSM stopped at the kernel's defaults (Linux 6.8 files, no smart_scan if old). */
static void fake_init(struct fake *fk, const char *name, bool old_kernel)
{
	static const char *const tun[] = { "run=0", "pages_to_scan=100", "sleep_millisecs=20",
					   "merge_across_nodes=1", "use_zero_pages=0", "max_page_sharing=256",
					   "stable_node_chains_prune_millisecs=2000", "pages_shared=0",
					   "pages_sharing=0", "pages_unshared=0", "pages_volatile=0",
					   "full_scans=0", "stable_node_chains=0", "stable_node_dups=0", NULL };
	static const char *const recent[] = { "smart_scan=1", "pages_scanned=0", "pages_skipped=0",
					      "ksm_zero_pages=0", "general_profit=0", NULL };

	memset(fk, 0, sizeof(*fk));
	sp_test_path(fk->root, sizeof(fk->root), name);
	snprintf(fk->sys, sizeof(fk->sys), "%s/sys", fk->root);
	snprintf(fk->proc, sizeof(fk->proc), "%s/proc", fk->root);
	snprintf(fk->ksm, sizeof(fk->ksm), "%s/kernel/mm/ksm", fk->sys);
	mkdirs(fk->ksm);
	mkdirs(fk->proc);
	for (const char *const *t = tun; *t; t++) {
		char k[64];

		snprintf(k, sizeof(k), "%.*s", (int)(strchr(*t, '=') - *t), *t);
		put(fk->ksm, k, "%s\n", strchr(*t, '=') + 1);
	}
	for (const char *const *t = recent; !old_kernel && *t; t++) {
		char k[64];

		snprintf(k, sizeof(k), "%.*s", (int)(strchr(*t, '=') - *t), *t);
		put(fk->ksm, k, "%s\n", strchr(*t, '=') + 1);
	}
	if (!old_kernel)
		put(fk->proc, "vmstat", "nr_free_pages 100\ncow_ksm 7\n");
	else
		put(fk->proc, "vmstat", "nr_free_pages 100\n");
	guest(fk, 2, "kthreadd", 0);
	{
		char dir[800];

		snprintf(dir, sizeof(dir), "%s/31", fk->proc);
		mkdirs(dir);
		put(dir, "comm", "ksmd\n");
		put(dir, "stat", "31 (ksmd) S 2 0 0 0 -1 2129984 0 0 0 0 300 200 0 0 25 5 1 0 100 0 0\n");
	}
	guest(fk, 500, "bash", 5000000); /* not a guest: its RSS does not count */
}

static void capture(void *arg, int level, const char *msg)
{
	struct fake *fk = arg;
	size_t n = strlen(fk->log);

	(void)level;
	snprintf(fk->log + n, sizeof(fk->log) - n, "%s\n", msg);
}

static int conf_from(struct real_daemon_conf *c, struct fake *fk, const char *text)
{
	char path[800];
	struct sp_err err = { 0 };
	int rc;

	snprintf(path, sizeof(path), "%s/samepaged.conf", fk->root);
	put(fk->root, "samepaged.conf", "%s", text);
	rc = real_daemon_conf_load(c, path, &err);
	if (rc < 0)
		snprintf(fk->log, sizeof(fk->log), "%s", err.msg);
	return rc;
}

/* An engine on the fake tree with the configuration text, not started; metrics to ROOT/m.prom. */
static void prepare(struct real_daemon *d, struct fake *fk, const char *conf)
{
	memset(d, 0, sizeof(*d));
	CU_ASSERT_EQUAL_FATAL(conf_from(&d->conf, fk, conf), 0);
	snprintf(d->conf.metrics, sizeof(d->conf.metrics), "%s/m.prom", fk->root);
	d->sysfs = fk->sys;
	d->procfs = fk->proc;
	d->log = capture;
	d->log_arg = fk;
}

static void start(struct real_daemon *d, struct fake *fk, const char *conf)
{
	struct sp_err err = { 0 };

	prepare(d, fk, conf);
	if (real_daemon_start(d, 1000 * S, &err) < 0)
		printf("\nstart: %s\n", err.msg);
	CU_ASSERT_EQUAL_FATAL(err.code, 0);
}

/* The metrics file of the last cycle, into text. */
static void read_metrics(const struct fake *fk, char *text, size_t len)
{
	char path[800];
	FILE *f;
	size_t n;

	snprintf(path, sizeof(path), "%s/m.prom", fk->root);
	f = fopen(path, "r");
	CU_ASSERT_PTR_NOT_NULL_FATAL(f);
	n = fread(text, 1, len - 1, f);
	text[n] = '\0';
	fclose(f);
}

static void cycle_at(struct real_daemon *d, uint64_t t, bool force)
{
	struct sp_err err = { 0 };
	uint64_t next;

	CU_ASSERT_EQUAL_FATAL(real_daemon_cycle(d, 1000 * S + t, force, &next, &err), 0);
}

/* A cycle t ns after start, as the policy's clock runs. */
static void cycle(struct real_daemon *d, uint64_t t)
{
	cycle_at(d, t, false);
}

SP_TEST(ksmtuned_starts_with_boost_and_the_sleep_formula)
{
	/*
	 * MemTotal 8 GiB = 8388608 KiB: thres = 8388608 x 20 / 100 = 1677721.
	 * Guests: 3000000 + 4000000 KiB RSS = 7000000 committed; 7000000 +
	 * 1677721 >= 8388608, so KSM runs.  free = MemFree 1000000 < thres:
	 * boost from 0 to 300.  sleep = 10 x 16 x 1024 x 1024 / 8388608 = 20.
	 * samepaged starts KSM as the ksm service does; ksmtuned's first
	 * adjustment comes one interval later, as the script's.
	 */
	struct fake fk;
	struct real_daemon d;
	struct sp_err err = { 0 };

	fake_init(&fk, "boost", false);
	meminfo(&fk, 8388608, 1000000, 1200000, 0);
	guest(&fk, 1000, "qemu-system-x86", 3000000);
	guest(&fk, 1001, "qemu-kvm", 4000000);
	start(&d, &fk, "# ksmtuned.conf as shipped\nKSM_MONITOR_INTERVAL=60\n");
	CU_ASSERT_EQUAL(get(&fk, "run"), 1);
	CU_ASSERT_EQUAL(d.decisions[RD_START], 1);
	cycle(&d, 0);
	CU_ASSERT_EQUAL(d.host.mem.committed_kib, 7000000);
	CU_ASSERT_EQUAL(get(&fk, "pages_to_scan"), 100); /* the script sleeps first */
	cycle(&d, 30 * S);
	CU_ASSERT_EQUAL(get(&fk, "pages_to_scan"), 100);
	cycle(&d, 60 * S);
	CU_ASSERT_EQUAL(get(&fk, "run"), 1);
	CU_ASSERT_EQUAL(get(&fk, "pages_to_scan"), 300);
	CU_ASSERT_EQUAL(get(&fk, "sleep_millisecs"), 20);
	/* Within the interval nothing changes; at 120 s another boost: 600. */
	cycle(&d, 90 * S);
	CU_ASSERT_EQUAL(get(&fk, "pages_to_scan"), 300);
	cycle(&d, 120 * S);
	CU_ASSERT_EQUAL(get(&fk, "pages_to_scan"), 600);
	/* Memory freed by merging: free 2000000 > thres: decay by 50, to 550. */
	meminfo(&fk, 8388608, 2000000, 2200000, 0);
	cycle(&d, 180 * S);
	CU_ASSERT_EQUAL(get(&fk, "pages_to_scan"), 550);
	CU_ASSERT_EQUAL(d.decisions[RD_PAGES_TO_SCAN], 3);
	CU_ASSERT_EQUAL(d.decisions[RD_SLEEP_MILLISECS], 0); /* 20 already: nothing written */
	CU_ASSERT_EQUAL(d.decisions[RD_START], 1);
	CU_ASSERT_EQUAL(real_daemon_stop(&d, &err), 0);
	CU_ASSERT_EQUAL(get(&fk, "run"), 1); /* SAMEPAGE_ON_EXIT=keep */
}

SP_TEST(ksmtuned_decays_to_the_floor_and_stops_when_memory_is_plentiful)
{
	/*
	 * 16 GiB host, thres_coef 10: thres = 16777216 x 10 / 100 = 1677721.
	 * Guests 15500000 KiB: 15500000 + 1677721 >= 16777216: run.  free
	 * 5000000 > thres: decay from 0 -> -50, clamped to npages_min 64.
	 * sleep = max(10, 10 x 16777216 / 16777216 = 10) = 10.  Then a guest
	 * exits (8000000 committed): 8000000 + 1677721 < 16777216 and free >
	 * thres: stop, tunables left as they are.  A retune (SIGUSR1) decides
	 * at once, without waiting for the interval.
	 */
	struct fake fk;
	struct real_daemon d;
	struct sp_err err = { 0 };

	fake_init(&fk, "decay", false);
	meminfo(&fk, 16777216, 5000000, 5000000, 1000000);
	guest(&fk, 1000, "qemu-system-x86", 8000000);
	guest(&fk, 1001, "qemu:vm2", 7500000);
	start(&d, &fk, "KSM_THRES_COEF=10\nSAMEPAGE_ON_EXIT=stop\n");
	cycle(&d, 0);
	cycle(&d, 60 * S);
	CU_ASSERT_EQUAL(get(&fk, "run"), 1);
	CU_ASSERT_EQUAL(get(&fk, "pages_to_scan"), 64);
	CU_ASSERT_EQUAL(get(&fk, "sleep_millisecs"), 10);
	guest(&fk, 1001, "bash", 7000000); /* pid reused by a non-guest */
	cycle_at(&d, 61 * S, true);
	CU_ASSERT_EQUAL(d.host.mem.committed_kib, 8000000);
	CU_ASSERT_EQUAL(get(&fk, "run"), 0);
	CU_ASSERT_EQUAL(get(&fk, "pages_to_scan"), 64);
	CU_ASSERT_EQUAL(d.decisions[RD_STOP], 1);
	CU_ASSERT_PTR_NOT_NULL(strstr(fk.log, "stop KSM (run=0)"));
	CU_ASSERT_EQUAL(real_daemon_stop(&d, &err), 0);
}

SP_TEST(dry_run_writes_nothing)
{
	struct fake fk;
	struct real_daemon d;
	struct sp_err err = { 0 };

	fake_init(&fk, "dry", false);
	meminfo(&fk, 8388608, 1000000, 1200000, 0);
	guest(&fk, 1000, "kvm", 8000000);
	prepare(&d, &fk, "SAMEPAGE_MERGE_ACROSS_NODES=0\n");
	d.dry_run = true;
	CU_ASSERT_EQUAL_FATAL(real_daemon_start(&d, 0, &err), 0);
	cycle_at(&d, 0, true); /* as --once: decide now */
	CU_ASSERT_EQUAL(get(&fk, "run"), 0);
	CU_ASSERT_EQUAL(get(&fk, "pages_to_scan"), 100);
	CU_ASSERT_EQUAL(get(&fk, "merge_across_nodes"), 1);
	CU_ASSERT_PTR_NOT_NULL(strstr(fk.log, "would set pages_to_scan: 100 -> 300"));
	CU_ASSERT_PTR_NOT_NULL(strstr(fk.log, "would unmerge everything and set merge_across_nodes=0"));
	real_daemon_stop(&d, &err);
}

SP_TEST(no_ksm_is_unavailable)
{
	struct fake fk;
	struct real_daemon d;
	struct sp_err err = { 0 };
	char path[800];

	fake_init(&fk, "noksm", false);
	meminfo(&fk, 8388608, 1000000, 1200000, 0);
	snprintf(path, sizeof(path), "rm -rf '%s'", fk.ksm);
	CU_ASSERT_EQUAL_FATAL(system(path), 0);
	memset(&d, 0, sizeof(d));
	CU_ASSERT_EQUAL_FATAL(real_daemon_conf_load(&d.conf, NULL, &err), 0);
	d.sysfs = fk.sys;
	d.procfs = fk.proc;
	CU_ASSERT_EQUAL(real_daemon_start(&d, 0, &err), SP_ENOTSUP);
	CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "no KSM"));
}

SP_TEST(old_kernel_files_absent_are_skipped)
{
	/* Before 6.7: no smart_scan, pages_scanned, ksm_zero_pages, general_profit; no cow_ksm. */
	struct fake fk;
	struct real_daemon d;
	struct sp_err err = { 0 };
	char text[8192];

	fake_init(&fk, "old", true);
	meminfo(&fk, 8388608, 1000000, 1200000, 0);
	guest(&fk, 1000, "qemu-system-aarch64", 8000000);
	start(&d, &fk, "SAMEPAGE_SMART_SCAN=1\n");
	cycle(&d, 0);
	CU_ASSERT_EQUAL(get(&fk, "run"), 1);
	CU_ASSERT_EQUAL(d.host.cow_ksm, -1);
	read_metrics(&fk, text, sizeof(text));
	CU_ASSERT_PTR_NOT_NULL(strstr(text, "samepage_ksm{file=\"pages_sharing\"} 0\n"));
	CU_ASSERT_PTR_NULL(strstr(text, "file=\"smart_scan\""));
	CU_ASSERT_PTR_NULL(strstr(text, "samepage_cow_ksm_total"));
	CU_ASSERT_PTR_NOT_NULL(strstr(text, "samepage_info{policy=\"ksmtuned\""));
	CU_ASSERT_PTR_NOT_NULL(strstr(text, "samepage_decisions_total{kind=\"start\"} 1\n"));
	real_daemon_stop(&d, &err);
}

static int busy_write(const struct real_ksm *k, int file, int64_t v, struct sp_err *err)
{
	/* The kernel answers EBUSY to merge_across_nodes while KSM pages exist. */
	if (file == REAL_KSM_MERGE_ACROSS_NODES)
		return sp_err_set(err, SP_EIO, "the kernel refused merge_across_nodes=%lld while KSM pages exist (%s)",
				  (long long)v, strerror(EBUSY));
	return real_ksm_set(k, file, v, err);
}

SP_TEST(numa_switch_follows_the_safe_sequence)
{
	/*
	 * Two nodes, SAMEPAGE_MERGE_ACROSS_NODES=auto: 0.  KSM runs with no KSM
	 * page left (pages_shared 0): stop, write 0, restore run=1.
	 */
	struct fake fk;
	struct real_daemon d;
	struct sp_err err = { 0 };
	char node[800];

	fake_init(&fk, "numa", false);
	meminfo(&fk, 8388608, 1000000, 4000000, 0);
	snprintf(node, sizeof(node), "%s/devices/system/node/node0", fk.sys);
	mkdirs(node);
	snprintf(node, sizeof(node), "%s/devices/system/node/node1", fk.sys);
	mkdirs(node);
	put(fk.ksm, "run", "1\n");
	start(&d, &fk, "SAMEPAGE_MERGE_ACROSS_NODES=auto\n");
	CU_ASSERT_EQUAL(d.host.numa_nodes, 2);
	CU_ASSERT_EQUAL(get(&fk, "merge_across_nodes"), 0);
	CU_ASSERT_EQUAL(get(&fk, "run"), 1);
	CU_ASSERT_EQUAL(d.decisions[RD_NUMA_SWITCH], 1);
	real_daemon_stop(&d, &err);
}

SP_TEST(numa_switch_ebusy_is_a_refusal)
{
	struct fake fk;
	struct real_daemon d;
	struct sp_err err = { 0 };
	char text[8192];

	fake_init(&fk, "busy", false);
	meminfo(&fk, 8388608, 1000000, 4000000, 0);
	put(fk.ksm, "run", "1\n");
	prepare(&d, &fk, "SAMEPAGE_MERGE_ACROSS_NODES=0\n");
	d.write = busy_write;
	CU_ASSERT_EQUAL_FATAL(real_daemon_start(&d, 0, &err), 0);
	CU_ASSERT_EQUAL(get(&fk, "merge_across_nodes"), 1);
	CU_ASSERT_EQUAL(get(&fk, "run"), 1); /* restored */
	CU_ASSERT_EQUAL(d.refusals[RR_BUSY], 1);
	CU_ASSERT_EQUAL(d.decisions[RD_NUMA_SWITCH], 0);
	CU_ASSERT_PTR_NOT_NULL(strstr(fk.log, "the kernel refused merge_across_nodes=0 (KSM pages exist)"));
	cycle(&d, 0);
	read_metrics(&fk, text, sizeof(text));
	CU_ASSERT_PTR_NOT_NULL(strstr(text, "samepage_refusals_total{reason=\"busy\"} 1\n"));
	real_daemon_stop(&d, &err);
}

SP_TEST(unmerge_waits_for_pages_shared_with_a_timeout)
{
	/* pages_shared stays 5 on the fake tree: run=2 is written, then the switch is abandoned. */
	struct fake fk;
	struct real_daemon d;
	struct sp_err err = { 0 };

	fake_init(&fk, "timeout", false);
	meminfo(&fk, 8388608, 1000000, 4000000, 0);
	put(fk.ksm, "run", "1\n");
	put(fk.ksm, "pages_shared", "5\n");
	put(fk.ksm, "pages_sharing", "10\n");
	start(&d, &fk, "SAMEPAGE_MAX_PAGE_SHARING=512\nSAMEPAGE_UNMERGE_TIMEOUT_SEC=0.2\n");
	CU_ASSERT_EQUAL(get(&fk, "max_page_sharing"), 256);
	CU_ASSERT_EQUAL(get(&fk, "run"), 1);
	CU_ASSERT_EQUAL(d.refusals[RR_TIMEOUT], 1);
	CU_ASSERT_EQUAL(d.decisions[RD_UNMERGE], 1);
	real_daemon_stop(&d, &err);
}

/*
 * The signal handler's copy of the check (the live commands' restore on
 * SIGINT) decides as the daemon's at the boundary: 1,000,000 pages sharing
 * + 1000 zero pages = 4,100,096,000 bytes; reserve 429,496,729; MemAvailable
 * + SwapFree of 4,423,431 KiB leave 4,100,096,615 bytes (allowed), 1 KiB less
 * 4,100,095,591 (refused).  ksm_zero_pages absent counts 0; pages_sharing
 * absent or not a number, or meminfo absent, refuses.
 */
SP_TEST(signal_safe_headroom_decides_as_the_daemon)
{
	struct fake fk;
	struct real_daemon d;
	struct real_unshare_paths p;
	struct sp_err err = { 0 };
	char path[800];

	fake_init(&fk, "sigroom", false);
	put(fk.ksm, "pages_sharing", "1000000\n");
	put(fk.ksm, "ksm_zero_pages", "1000\n");
	real_unshare_paths_init(&p, fk.ksm, fk.proc, -1);
	for (int ok = 0; ok <= 1; ok++) {
		meminfo(&fk, 8388608, 1000, 4423430 + ok, 0);
		start(&d, &fk, "");
		CU_ASSERT_EQUAL(real_daemon_worst_unshare(&d), 1001000ll * 4096);
		CU_ASSERT_EQUAL(real_daemon_headroom(&d), (4423430ll + ok) * 1024 - 429496729);
		CU_ASSERT_EQUAL(real_daemon_headroom(&d) >= real_daemon_worst_unshare(&d), ok);
		CU_ASSERT_EQUAL(real_unshare_allows_signal_safe(&p), ok);
		real_daemon_stop(&d, &err);
	}
	snprintf(path, sizeof(path), "%s/ksm_zero_pages", fk.ksm);
	unlink(path);
	meminfo(&fk, 8388608, 1000, 4419431, 0); /* 4,000 KiB less: enough without the zero pages */
	CU_ASSERT_TRUE(real_unshare_allows_signal_safe(&p));
	meminfo(&fk, 8388608, 1000, 4419430, 0);
	CU_ASSERT_FALSE(real_unshare_allows_signal_safe(&p));
	meminfo(&fk, 8388608, 1000, 4419431, 0);
	CU_ASSERT_TRUE(real_unshare_allows_signal_safe(&p));
	put(fk.ksm, "pages_sharing", "x\n");
	CU_ASSERT_FALSE(real_unshare_allows_signal_safe(&p));
	snprintf(path, sizeof(path), "%s/pages_sharing", fk.ksm);
	unlink(path);
	CU_ASSERT_FALSE(real_unshare_allows_signal_safe(&p));
	put(fk.ksm, "pages_sharing", "0\n");
	CU_ASSERT_TRUE(real_unshare_allows_signal_safe(&p));
	snprintf(path, sizeof(path), "%s/meminfo", fk.proc);
	unlink(path);
	CU_ASSERT_FALSE(real_unshare_allows_signal_safe(&p));
}

SP_TEST(headroom_refusal_keeps_pages_merged)
{
	/*
	 * 1,000,000 pages sharing = 4,096,000,000 bytes to unshare.  Headroom:
	 * MemAvailable 2000000 KiB + SwapFree 1000000 KiB - reserve 5% of
	 * 8388608 KiB (429496729 bytes) = 2642503271 bytes < worst case:
	 * neither the NUMA switch nor ON_EXIT=unmerge may run.
	 */
	struct fake fk;
	struct real_daemon d;
	struct sp_err err = { 0 };

	fake_init(&fk, "headroom", false);
	meminfo(&fk, 8388608, 1000000, 2000000, 1000000);
	put(fk.ksm, "run", "1\n");
	put(fk.ksm, "pages_shared", "1000\n");
	put(fk.ksm, "pages_sharing", "1000000\n");
	start(&d, &fk, "SAMEPAGE_MERGE_ACROSS_NODES=0\nSAMEPAGE_ON_EXIT=unmerge\n");
	CU_ASSERT_EQUAL(real_daemon_worst_unshare(&d), 4096000000ll);
	CU_ASSERT_EQUAL(real_daemon_headroom(&d), 3000000ll * 1024 - 8388608ll * 1024 / 20);
	CU_ASSERT_EQUAL(get(&fk, "merge_across_nodes"), 1);
	CU_ASSERT_EQUAL(get(&fk, "run"), 1);
	CU_ASSERT_EQUAL(d.refusals[RR_HEADROOM], 1);
	CU_ASSERT_PTR_NOT_NULL(strstr(fk.log, "refused merge_across_nodes"));
	CU_ASSERT_EQUAL(real_daemon_stop(&d, &err), 0);
	CU_ASSERT_EQUAL(d.refusals[RR_HEADROOM], 2);
	CU_ASSERT_EQUAL(get(&fk, "run"), 0); /* stopped instead of unmerged */
	/* With the headroom (swap grows), the unmerge at exit goes ahead. */
	fake_init(&fk, "headroom2", false);
	meminfo(&fk, 8388608, 1000000, 2000000, 4000000);
	put(fk.ksm, "run", "1\n");
	put(fk.ksm, "pages_sharing", "1000000\n");
	start(&d, &fk, "SAMEPAGE_ON_EXIT=unmerge\n");
	CU_ASSERT_EQUAL(real_daemon_stop(&d, &err), 0);
	CU_ASSERT_EQUAL(get(&fk, "run"), 2);
	CU_ASSERT_EQUAL(d.refusals[RR_HEADROOM], 0);
}

SP_TEST(alarms_swap_and_cow_rate)
{
	/*
	 * Swap rule: committed 7000000 + host use (8388608 - 1000000 available -
	 * 7000000 committed = 388608) - 8388608 RAM = -1000000: no warning.  A
	 * guest grows to 10000000: 10000000 + 0 - 8388608 = 1611392 > swap 0:
	 * warning.  cow_ksm 7 -> 2007 in 1 s: 2000/s > 1000/s: alarm.
	 */
	struct fake fk;
	struct real_daemon d;
	struct sp_err err = { 0 };

	fake_init(&fk, "alarms", false);
	meminfo(&fk, 8388608, 800000, 1000000, 0);
	guest(&fk, 1000, "qemu-system-x86", 7000000);
	start(&d, &fk, "");
	cycle(&d, 0);
	CU_ASSERT_FALSE(d.swap_warning);
	CU_ASSERT_FALSE(d.cow_alarm);
	guest(&fk, 1000, "qemu-system-x86", 10000000);
	put(fk.proc, "vmstat", "cow_ksm 2007\n");
	cycle(&d, 1 * S);
	CU_ASSERT_TRUE(d.swap_warning);
	CU_ASSERT_TRUE(d.cow_alarm);
	CU_ASSERT_DOUBLE_EQUAL(d.cow_rate, 2000, 1e-6);
	real_daemon_stop(&d, &err);
}

SP_TEST(config_errors_name_the_line)
{
	struct fake fk;
	struct real_daemon_conf c;

	fake_init(&fk, "conf", false);
	CU_ASSERT_EQUAL(conf_from(&c, &fk, "KSM_NPAGES_MAX=1250\nKSM_THRES_COEF=abc\n"), SP_ECORRUPT);
	CU_ASSERT_PTR_NOT_NULL(strstr(fk.log, "samepaged.conf:2: KSM_THRES_COEF=abc"));
	CU_ASSERT_EQUAL(conf_from(&c, &fk, "\nSAMEPAGE_POLICI=ksmtuned\n"), SP_ECORRUPT);
	CU_ASSERT_PTR_NOT_NULL(strstr(fk.log, "samepaged.conf:2: unknown key SAMEPAGE_POLICI"));
	CU_ASSERT_EQUAL(conf_from(&c, &fk, "SAMEPAGE_ON_EXIT=sometimes\n"), SP_ECORRUPT);
	CU_ASSERT_PTR_NOT_NULL(strstr(fk.log, "expected keep, stop or unmerge"));
	CU_ASSERT_EQUAL(conf_from(&c, &fk, "KSM_THRES_COEF=101\n"), SP_ECORRUPT);
	CU_ASSERT_PTR_NOT_NULL(strstr(fk.log, "out of range"));
	/* The generic policy keys, both spellings of a prefixed parameter. */
	CU_ASSERT_EQUAL_FATAL(conf_from(&c, &fk, "SAMEPAGE_POLICY=advisor\nSAMEPAGE_ADVISOR_TARGET_SCAN_TIME=100\n"
					"SAMEPAGE_ADVISOR_ADVISOR_MAX_CPU=20\nSAMEPAGE_KSMTUNED_NPAGES_MAX=2000\n"), 0);
	CU_ASSERT_STRING_EQUAL(c.policy->name, "advisor");
	{
		size_t a = 0, k = 0;

		while (strcmp(ctl_at(a)->name, "advisor"))
			a++;
		while (strcmp(ctl_at(k)->name, "ksmtuned"))
			k++;
		CU_ASSERT_EQUAL(c.params[a].v[algo_param_index(&(struct algo_ops){ .params = ctl_at(a)->params, .nparams = ctl_at(a)->nparams }, "advisor_target_scan_time")], 100);
		CU_ASSERT_EQUAL(c.params[a].v[algo_param_index(&(struct algo_ops){ .params = ctl_at(a)->params, .nparams = ctl_at(a)->nparams }, "advisor_max_cpu")], 20);
		CU_ASSERT_EQUAL(c.params[k].v[algo_param_index(&(struct algo_ops){ .params = ctl_at(k)->params, .nparams = ctl_at(k)->nparams }, "npages_max")], 2000);
	}
}

/* Counts the occurrences of needle in hay. */
static int count_of(const char *hay, const char *needle)
{
	int n = 0;

	for (const char *p = strstr(hay, needle); p; p = strstr(p + 1, needle))
		n++;
	return n;
}

static void osrelease(struct fake *fk, const char *release)
{
	char dir[800];

	snprintf(dir, sizeof(dir), "%s/sys/kernel", fk->proc);
	mkdirs(dir);
	put(dir, "osrelease", "%s\n", release);
}

SP_TEST(old_kernel_is_detected_and_what_it_lacks_is_left_alone)
{
	/*
	 * Linux 6.1 (Debian 12): no smart_scan, pages_skipped, pages_scanned,
	 * ksm_zero_pages, general_profit.  The version comes from
	 * PROCFS/sys/kernel/osrelease; SAMEPAGE_SMART_SCAN is said not applied
	 * once, and a smart_scan file appearing later is still not read.
	 */
	struct fake fk;
	struct real_daemon d;
	struct sp_err err = { 0 };
	char text[8192];

	fake_init(&fk, "k61", true);
	osrelease(&fk, "6.1.0-28-amd64");
	meminfo(&fk, 8388608, 1000000, 1200000, 0);
	guest(&fk, 1000, "qemu-system-x86", 8000000);
	start(&d, &fk, "SAMEPAGE_SMART_SCAN=0\n");
	CU_ASSERT_TRUE(d.kernel_known);
	CU_ASSERT_EQUAL(d.kernel.major, 6);
	CU_ASSERT_EQUAL(d.kernel.minor, 1);
	CU_ASSERT_EQUAL(d.kernel.overridden, 0); /* the files agree with the version */
	CU_ASSERT_TRUE(d.absent[REAL_KSM_SMART_SCAN]);
	CU_ASSERT_TRUE(d.absent[REAL_KSM_PAGES_SCANNED]);
	CU_ASSERT_TRUE(d.absent[REAL_KSM_KSM_ZERO_PAGES]);
	CU_ASSERT_FALSE(d.absent[REAL_KSM_PAGES_SHARING]);
	CU_ASSERT_PTR_NOT_NULL(strstr(fk.log, "SAMEPAGE_SMART_SCAN=0 not applied: Linux 6.1 has no smart_scan (added in 6.7"));
	CU_ASSERT_PTR_NOT_NULL(strstr(fk.log, "kernel: Linux 6.1 (without general_profit, ksm_zero_pages, pages_scanned, smart_scan"));
	put(fk.ksm, "smart_scan", "1\n");
	cycle(&d, 0);
	cycle(&d, 60 * S);
	cycle(&d, 120 * S);
	CU_ASSERT_FALSE(d.state.present[REAL_KSM_SMART_SCAN]);
	CU_ASSERT_EQUAL(get(&fk, "smart_scan"), 1); /* never written */
	CU_ASSERT_EQUAL(count_of(fk.log, "not applied"), 1);
	CU_ASSERT_PTR_NULL(strstr(fk.log, "error"));
	read_metrics(&fk, text, sizeof(text));
	CU_ASSERT_PTR_NOT_NULL(strstr(text, "dry_run=\"0\",kernel=\"6.1\",kernel_release=\"6.1.0-28-amd64\"} 1\n"));
	CU_ASSERT_PTR_NULL(strstr(text, "file=\"smart_scan\""));
	CU_ASSERT_PTR_NULL(strstr(text, "file=\"pages_scanned\""));
	CU_ASSERT_PTR_NULL(strstr(text, "file=\"ksm_zero_pages\""));
	real_daemon_stop(&d, &err);
}

SP_TEST(backported_files_show_as_overrides_of_the_version)
{
	/* RHEL 9's 5.14 with this tree's newer files: each found file is a backport. */
	struct fake fk;
	struct real_daemon d;
	struct sp_err err = { 0 };
	char text[8192], ver[200];

	fake_init(&fk, "k514", false);
	osrelease(&fk, "5.14.0-427.el9.x86_64");
	meminfo(&fk, 8388608, 1000000, 1200000, 0);
	start(&d, &fk, "SAMEPAGE_SMART_SCAN=0\n");
	CU_ASSERT_TRUE(d.kernel_known);
	CU_ASSERT_TRUE(algo_kernel_has(&d.kernel, AK_SMART_SCAN));
	CU_ASSERT_TRUE(algo_kernel_has(&d.kernel, AK_KSM_ZERO_PAGES));
	CU_ASSERT_FALSE(algo_kernel_has(&d.kernel, AK_ADVISOR));
	algo_kernel_format(&d.kernel, ver, sizeof(ver));
	CU_ASSERT_PTR_NOT_NULL(strstr(ver, "5.14,"));
	CU_ASSERT_PTR_NOT_NULL(strstr(ver, "smart_scan=1"));
	CU_ASSERT_EQUAL(get(&fk, "smart_scan"), 0); /* applied: the file is there */
	cycle(&d, 0);
	read_metrics(&fk, text, sizeof(text));
	CU_ASSERT_PTR_NOT_NULL(strstr(text, "kernel=\"5.14,"));
	CU_ASSERT_PTR_NOT_NULL(strstr(text, "kernel_release=\"5.14.0-427.el9.x86_64\""));
	real_daemon_stop(&d, &err);
}

/* The CSV's lines into lines[] (at most max), their count. */
static int csv_lines(const char *path, char lines[][1024], int max)
{
	FILE *f = fopen(path, "r");
	int n = 0;

	CU_ASSERT_PTR_NOT_NULL_FATAL(f);
	while (n < max && fgets(lines[n], 1024, f))
		n++;
	fclose(f);
	return n;
}

static long long csv_col(const char *line, int col)
{
	const char *p = line;

	for (int i = 0; i < col; i++)
		p = strchr(p, ',') + 1;
	return strtoll(p, NULL, 10);
}

SP_TEST(csv_is_continued_across_restarts)
{
	/*
	 * Two daemon runs on one SAMEPAGE_CSV: one header, every row kept, time
	 * and the cumulative columns (full_scans: column 5) going on from the
	 * first run's last row.  A last line cut short is cut off; a foreign
	 * file is left alone.
	 */
	struct fake fk;
	struct real_daemon d;
	struct sp_err err = { 0 };
	char path[800], conf[1000], lines[16][1024];
	int n;

	fake_init(&fk, "csvcont", false);
	meminfo(&fk, 8388608, 1000000, 1200000, 0);
	snprintf(path, sizeof(path), "%s/series.csv", fk.root);
	snprintf(conf, sizeof(conf), "SAMEPAGE_CSV=%s\n", path);
	put(fk.ksm, "full_scans", "10\n");
	fk.log[0] = '\0';
	start(&d, &fk, conf);
	cycle(&d, 0);
	put(fk.ksm, "full_scans", "13\n");
	cycle(&d, 5 * S);
	real_daemon_stop(&d, &err);
	n = csv_lines(path, lines, 16);
	CU_ASSERT_EQUAL_FATAL(n, 3);
	CU_ASSERT_EQUAL(csv_col(lines[1], 0), 0);
	CU_ASSERT_EQUAL(csv_col(lines[2], 0), 5000);
	CU_ASSERT_EQUAL(csv_col(lines[2], 5), 3); /* full_scans since the start */
	/* The kernel's counter went on meanwhile (10 -> 20); the daemon restarts. */
	put(fk.ksm, "full_scans", "20\n");
	fk.log[0] = '\0';
	start(&d, &fk, conf);
	put(fk.ksm, "full_scans", "21\n");
	cycle(&d, 0);
	real_daemon_stop(&d, &err);
	n = csv_lines(path, lines, 16);
	CU_ASSERT_EQUAL_FATAL(n, 4);
	CU_ASSERT_EQUAL(strncmp(lines[0], "time_ms,", 8), 0);
	CU_ASSERT_EQUAL(count_of(lines[3], "time_ms"), 0);
	CU_ASSERT_TRUE(csv_col(lines[3], 0) > 5000); /* time goes on */
	CU_ASSERT_EQUAL(csv_col(lines[3], 5), 3 + 1); /* 3 before, 1 since the restart */
	CU_ASSERT_PTR_NOT_NULL(strstr(fk.log, "continuing its series at time_ms"));
	/* A row cut short by a crash is cut off, then the series goes on. */
	{
		FILE *f = fopen(path, "a");

		CU_ASSERT_PTR_NOT_NULL_FATAL(f);
		fputs("99999,1,2", f);
		fclose(f);
	}
	fk.log[0] = '\0';
	start(&d, &fk, conf);
	cycle(&d, 0);
	real_daemon_stop(&d, &err);
	n = csv_lines(path, lines, 16);
	CU_ASSERT_EQUAL_FATAL(n, 5);
	CU_ASSERT_PTR_NULL(strstr(lines[4], "99999,1,2"));
	CU_ASSERT_TRUE(csv_col(lines[4], 0) > csv_col(lines[3], 0));
	CU_ASSERT_PTR_NOT_NULL(strstr(fk.log, "cut off an incomplete last line"));
	/* Another program's file: left as it was, no rows, one error line. */
	put(fk.root, "series.csv", "a,b,c\n1,2,3\n");
	fk.log[0] = '\0';
	start(&d, &fk, conf);
	cycle(&d, 0);
	cycle(&d, 5 * S);
	real_daemon_stop(&d, &err);
	n = csv_lines(path, lines, 16);
	CU_ASSERT_EQUAL(n, 2);
	CU_ASSERT_STRING_EQUAL(lines[1], "1,2,3\n");
	CU_ASSERT_EQUAL(count_of(fk.log, "first line is not samepaged's header"), 1);
}
