/*
 * test_ksm_sysfs.c - tests real/ksm_sysfs.h: every KSM tunable survives a
 * save -> change -> restore round trip (through real_ksm_restore() and from a
 * signal handler), and the counters parse.
 *
 * Tests on the live /sys/kernel/mm/ksm skip (with the reason) when there is
 * no KSM, we are not root, or another process (samepaged, a live command)
 * has claimed the directory.  They only use non-fatal assertions between
 * save and restore, so the restore runs whatever failed; ctest runs them
 * under RESOURCE_LOCK ksm_sysfs so no other test changes KSM meanwhile.
 */
#include <stdio.h>
#include <string.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "ksm_sysfs.h"

static void print_err(const char *what, const struct sp_err *err)
{
	if (err->code)
		printf("%s: %s\n", what, err->msg);
}

/* A value different from v that the kernel accepts for tunable f. */
static int64_t other_value(int f, int64_t v)
{
	switch (f) {
	case REAL_KSM_RUN:
		return v == REAL_KSM_RUN_MERGE ? REAL_KSM_RUN_STOP : REAL_KSM_RUN_MERGE;
	case REAL_KSM_MERGE_ACROSS_NODES:
	case REAL_KSM_USE_ZERO_PAGES:
	case REAL_KSM_SMART_SCAN:
		return !v;
	case REAL_KSM_ADVISOR_MAX_CPU:
		return v >= 100 ? v - 1 : v + 1;
	default:
		return v + 1;
	}
}

/*
 * Changes every tunable present (advisor_mode last, so pages_to_scan can be
 * set first), checks that each changed, restores, checks each is as found.
 * merge_across_nodes and max_page_sharing are left alone while the host has
 * KSM pages (changing them would unmerge the host's pages).
 */
static void roundtrip(const struct real_ksm *k, bool via_signal);

static struct real_ksm_saved *signal_saved;

static void restore_on_signal(int sig)
{
	(void)sig;
	real_ksm_restore_signal_safe(signal_saved);
}

static void roundtrip(const struct real_ksm *k, bool via_signal)
{
	struct real_ksm_state orig, changed, after;
	struct real_ksm_settings s, adv;
	struct real_ksm_saved saved;
	struct sp_err err = { 0 };
	bool busy;
	int rc;

	CU_ASSERT_EQUAL_FATAL(real_ksm_read(k, &orig, &err), 0);
	CU_ASSERT_EQUAL_FATAL(real_ksm_save(k, &saved, &err), 0);
	/* merged zero pages count too: switching the two below needs run=2, which would unshare them */
	busy = orig.v[REAL_KSM_PAGES_SHARED] > 0 || orig.v[REAL_KSM_KSM_ZERO_PAGES] > 0 ||
	       orig.v[REAL_KSM_RUN] == REAL_KSM_RUN_MERGE;

	memset(&s, 0, sizeof(s));
	memset(&adv, 0, sizeof(adv));
	for (int f = 0; f < REAL_KSM_TUNABLES; f++) {
		if (!orig.present[f] || f == REAL_KSM_ADVISOR_MODE)
			continue;
		if (busy && (f == REAL_KSM_MERGE_ACROSS_NODES || f == REAL_KSM_MAX_PAGE_SHARING))
			continue;
		s.set[f] = true;
		s.v[f] = other_value(f, orig.v[f]);
	}
	if (orig.present[REAL_KSM_ADVISOR_MODE]) {
		/* pages_to_scan is refused under the advisor: turn it off first */
		s.set[REAL_KSM_ADVISOR_MODE] = true;
		s.v[REAL_KSM_ADVISOR_MODE] = REAL_KSM_ADVISOR_NONE;
	}
	rc = real_ksm_apply(k, &s, &err);
	print_err("apply", &err);
	CU_ASSERT_EQUAL(rc, 0);
	if (orig.present[REAL_KSM_ADVISOR_MODE]) {
		adv.set[REAL_KSM_ADVISOR_MODE] = true;
		adv.v[REAL_KSM_ADVISOR_MODE] = REAL_KSM_ADVISOR_SCAN_TIME;
		sp_err_clear(&err);
		rc = real_ksm_apply(k, &adv, &err);
		print_err("apply advisor", &err);
		CU_ASSERT_EQUAL(rc, 0);
	}
	sp_err_clear(&err);
	CU_ASSERT_EQUAL(real_ksm_read(k, &changed, &err), 0);
	for (int f = 0; f < REAL_KSM_TUNABLES; f++) {
		if (s.set[f] && f != REAL_KSM_ADVISOR_MODE &&
		    !(f == REAL_KSM_PAGES_TO_SCAN && adv.set[REAL_KSM_ADVISOR_MODE])) {
			if (changed.v[f] != s.v[f])
				printf("%s: wrote %lld, reads %lld\n", real_ksm_name(f), (long long)s.v[f],
				       (long long)changed.v[f]);
			CU_ASSERT_EQUAL(changed.v[f], s.v[f]);
		}
	}
	if (adv.set[REAL_KSM_ADVISOR_MODE])
		CU_ASSERT_EQUAL(changed.v[REAL_KSM_ADVISOR_MODE], REAL_KSM_ADVISOR_SCAN_TIME);

	/* Restore, whatever happened above. */
	if (via_signal) {
		struct sigaction sa, old;

		memset(&sa, 0, sizeof(sa));
		sa.sa_handler = restore_on_signal;
		sigemptyset(&sa.sa_mask);
		signal_saved = &saved;
		sigaction(SIGUSR1, &sa, &old);
		raise(SIGUSR1);
		sigaction(SIGUSR1, &old, NULL);
		CU_ASSERT_EQUAL(saved.failed_file, -1);
	}
	sp_err_clear(&err);
	rc = real_ksm_restore(&saved, &err); /* a second restore is harmless, and the safety net */
	print_err("restore", &err);
	CU_ASSERT_EQUAL(rc, 0);

	sp_err_clear(&err);
	CU_ASSERT_EQUAL_FATAL(real_ksm_read(k, &after, &err), 0);
	for (int f = 0; f < REAL_KSM_TUNABLES; f++) {
		/* Under the advisor, pages_to_scan is the advisor's: not restorable. */
		if (f == REAL_KSM_PAGES_TO_SCAN && orig.v[REAL_KSM_ADVISOR_MODE] != REAL_KSM_ADVISOR_NONE)
			continue;
		CU_ASSERT_EQUAL(after.present[f], orig.present[f]);
		if (after.v[f] != orig.v[f])
			printf("%s: found %lld, left %lld\n", real_ksm_name(f), (long long)orig.v[f],
			       (long long)after.v[f]);
		CU_ASSERT_EQUAL(after.v[f], orig.v[f]);
	}
}

/*
 * The live roundtrips write the host's KSM, so they claim its directory
 * first as every writer does (real_ksm_claim): beside samepaged or a live
 * command they skip, naming the holder, instead of overwriting its
 * tunables.  False with the reason in why when they cannot run.
 */
static bool claimed_roundtrip(bool via_signal, struct sp_err *why)
{
	struct real_ksm k;
	int fd = -1;

	if (real_ksm_open(&k, NULL, true, why) < 0 || real_ksm_claim(k.dir, &fd, why) < 0)
		return false;
	roundtrip(&k, via_signal);
	close(fd);
	return true;
}

SP_TEST(roundtrip_restores_every_tunable)
{
	struct sp_err err = { 0 };

	if (!claimed_roundtrip(false, &err))
		SP_SKIP("%s", err.msg);
}

SP_TEST(roundtrip_restores_from_signal_handler)
{
	struct sp_err err = { 0 };

	if (!claimed_roundtrip(true, &err))
		SP_SKIP("%s", err.msg);
}

/* While another process drives the host's KSM (a child claims it here), a roundtrip writes nothing. */
SP_TEST(roundtrip_leaves_a_claimed_ksm_alone)
{
	struct real_ksm k;
	struct sp_err err = { 0 };
	int p[2], st;
	char ok = 0;
	pid_t child;

	if (real_ksm_open(&k, NULL, true, &err) < 0)
		SP_SKIP("%s", err.msg);
	CU_ASSERT_EQUAL_FATAL(pipe(p), 0);
	child = fork();
	CU_ASSERT_FATAL(child >= 0);
	if (child == 0) {
		int fd;

		close(p[0]);
		ok = real_ksm_claim(k.dir, &fd, NULL) == 0;
		if (write(p[1], &ok, 1) != 1)
			_exit(1);
		pause(); /* holds the claim until killed */
		_exit(0);
	}
	close(p[1]);
	CU_ASSERT_EQUAL(read(p[0], &ok, 1), 1);
	close(p[0]);
	if (ok) {
		CU_ASSERT_FALSE(claimed_roundtrip(false, &err));
		printf("%s\n", err.msg);
		CU_ASSERT_EQUAL(err.code, SP_EBUSY);
	}
	kill(child, SIGKILL);
	CU_ASSERT_EQUAL(waitpid(child, &st, 0), child);
	if (!ok)
		SP_SKIP("the KSM directory is claimed by another process already");
}

SP_TEST(counters_parse)
{
	struct real_ksm k;
	struct real_ksm_state st;
	struct metrics m;
	struct sp_err err = { 0 };
	pid_t pid;
	int64_t cpu, cow;

	if (real_ksm_open(&k, NULL, false, &err) < 0)
		SP_SKIP("%s", err.msg);
	CU_ASSERT_EQUAL_FATAL(real_ksm_read(&k, &st, &err), 0);
	for (int f = 0; f < REAL_KSM__COUNT; f++) {
		/* everything but advisor, smart_scan, merge_across_nodes exists since 4.x */
		bool optional = f == REAL_KSM_SMART_SCAN || f == REAL_KSM_MERGE_ACROSS_NODES ||
				(f >= REAL_KSM_ADVISOR_MODE && f <= REAL_KSM_ADVISOR_TARGET_SCAN_TIME) ||
				f == REAL_KSM_KSM_ZERO_PAGES || f == REAL_KSM_GENERAL_PROFIT;

		if (!optional && !st.present[f])
			printf("missing: %s\n", real_ksm_name(f));
		CU_ASSERT(optional || st.present[f]);
		if (f != REAL_KSM_GENERAL_PROFIT)
			CU_ASSERT(st.v[f] >= 0);
	}
	CU_ASSERT(st.v[REAL_KSM_RUN] <= 2);
	CU_ASSERT(st.v[REAL_KSM_MAX_PAGE_SHARING] >= 2);
	memset(&m, 0, sizeof(m));
	real_ksm_metrics(&st, &st, &m);
	CU_ASSERT_EQUAL(m.pages_sharing, st.v[REAL_KSM_PAGES_SHARING]);
	CU_ASSERT_EQUAL(m.pages_shared, st.v[REAL_KSM_PAGES_SHARED]);
	CU_ASSERT_EQUAL(m.general_profit, st.v[REAL_KSM_GENERAL_PROFIT]);
	CU_ASSERT_EQUAL(m.full_scans, 0); /* relative to itself */
	real_ksm_metrics(&st, NULL, &m);
	CU_ASSERT_EQUAL(m.full_scans, st.v[REAL_KSM_FULL_SCANS]);

	CU_ASSERT_EQUAL_FATAL(real_ksmd_pid(&pid, &err), 0);
	CU_ASSERT(pid > 0);
	CU_ASSERT_EQUAL(real_proc_cpu_ns(pid, &cpu, &err), 0);
	CU_ASSERT(cpu >= 0);
	CU_ASSERT_EQUAL(real_vmstat_cow_ksm(&cow, &err), 0);
	CU_ASSERT(cow >= 0);
	print_err("counters", &err);
}

SP_TEST(names_and_defaults)
{
	CU_ASSERT_STRING_EQUAL(real_ksm_name(REAL_KSM_PAGES_TO_SCAN), "pages_to_scan");
	CU_ASSERT_EQUAL(real_ksm_lookup("max_page_sharing"), REAL_KSM_MAX_PAGE_SHARING);
	CU_ASSERT_EQUAL(real_ksm_lookup("general_profit"), REAL_KSM_GENERAL_PROFIT);
	CU_ASSERT_EQUAL(real_ksm_lookup("nonsense"), -1);
	CU_ASSERT_PTR_NULL(real_ksm_name(REAL_KSM__COUNT));
	CU_ASSERT_EQUAL(real_ksm_default(REAL_KSM_PAGES_TO_SCAN), 100);
	CU_ASSERT_EQUAL(real_ksm_default(REAL_KSM_SLEEP_MILLISECS), 20);
	CU_ASSERT_EQUAL(real_ksm_default(REAL_KSM_MAX_PAGE_SHARING), 256);
}

SP_TEST(missing_ksm_is_enotsup)
{
	struct real_ksm k;
	struct sp_err err = { 0 };

	CU_ASSERT_EQUAL(real_ksm_open(&k, "/nonexistent/ksm", false, &err), SP_ENOTSUP);
	CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "this kernel has no KSM"));
}

/* The same logic on a directory of plain files: needs neither root nor KSM. */
SP_TEST(fake_dir_roundtrip)
{
	char dir[512], path[700];
	struct real_ksm k;
	struct real_ksm_saved saved;
	struct real_ksm_state before, after;
	struct real_ksm_settings s;
	struct sp_err err = { 0 };

	sp_test_path(dir, sizeof(dir), "ksm");
	CU_ASSERT_EQUAL_FATAL(mkdir(dir, 0755), 0);
	for (int f = 0; f < REAL_KSM__COUNT; f++) {
		FILE *fp;

		if (f == REAL_KSM_SMART_SCAN)
			continue; /* an older kernel: absent */
		snprintf(path, sizeof(path), "%s/%s", dir, real_ksm_name(f));
		fp = fopen(path, "w");
		CU_ASSERT_PTR_NOT_NULL_FATAL(fp);
		if (f == REAL_KSM_ADVISOR_MODE)
			fputs("[none] scan-time\n", fp);
		else if (f == REAL_KSM_GENERAL_PROFIT)
			fputs("-4096\n", fp);
		else
			fprintf(fp, "%lld\n", (long long)real_ksm_default(f) + 3);
		fclose(fp);
	}
	CU_ASSERT_EQUAL_FATAL(real_ksm_open(&k, dir, true, &err), 0);
	CU_ASSERT_EQUAL_FATAL(real_ksm_read(&k, &before, &err), 0);
	CU_ASSERT_FALSE(before.present[REAL_KSM_SMART_SCAN]);
	CU_ASSERT_EQUAL(before.v[REAL_KSM_GENERAL_PROFIT], -4096);
	CU_ASSERT_EQUAL(before.v[REAL_KSM_PAGES_TO_SCAN], 103);
	CU_ASSERT_EQUAL_FATAL(real_ksm_save(&k, &saved, &err), 0);

	memset(&s, 0, sizeof(s));
	s.set[REAL_KSM_PAGES_TO_SCAN] = true;
	s.v[REAL_KSM_PAGES_TO_SCAN] = 5000;
	s.set[REAL_KSM_MAX_PAGE_SHARING] = true;
	s.v[REAL_KSM_MAX_PAGE_SHARING] = 17;
	s.set[REAL_KSM_ADVISOR_MODE] = true;
	s.v[REAL_KSM_ADVISOR_MODE] = REAL_KSM_ADVISOR_NONE;
	s.set[REAL_KSM_SMART_SCAN] = true; /* absent here, wanted at its default: skipped */
	s.v[REAL_KSM_SMART_SCAN] = 1;
	CU_ASSERT_EQUAL(real_ksm_apply(&k, &s, &err), 0);
	print_err("apply", &err);
	{
		struct real_ksm_settings t;
		struct sp_err e = { 0 };

		memset(&t, 0, sizeof(t));
		t.set[REAL_KSM_SMART_SCAN] = true; /* absent, wanted off: an error */
		t.v[REAL_KSM_SMART_SCAN] = 0;
		CU_ASSERT_EQUAL(real_ksm_apply(&k, &t, &e), SP_ENOTSUP);
		CU_ASSERT_PTR_NOT_NULL(strstr(e.msg, "smart_scan"));
	}
	CU_ASSERT_EQUAL(real_ksm_read(&k, &after, &err), 0);
	CU_ASSERT_EQUAL(after.v[REAL_KSM_PAGES_TO_SCAN], 5000);
	CU_ASSERT_EQUAL(after.v[REAL_KSM_MAX_PAGE_SHARING], 17);
	/* max_page_sharing changed: run went to 2 and back */
	CU_ASSERT_EQUAL(after.v[REAL_KSM_RUN], before.v[REAL_KSM_RUN]);

	CU_ASSERT_EQUAL(real_ksm_restore(&saved, &err), 0);
	print_err("restore", &err);
	CU_ASSERT_EQUAL(real_ksm_read(&k, &after, &err), 0);
	for (int f = 0; f < REAL_KSM__COUNT; f++)
		CU_ASSERT_EQUAL(after.v[f], before.v[f]);
}

/*
 * One driver of a KSM directory at a time: a second claim (another open file
 * description, as another process's) is refused naming the holder, until
 * the first lets go.  On a scratch directory: needs neither root nor KSM.
 */
SP_TEST(claim_is_one_at_a_time)
{
	char dir[512], want[64];
	struct sp_err err = { 0 };
	int a = -1, b = -1;

	sp_test_path(dir, sizeof(dir), "claimed");
	CU_ASSERT_EQUAL_FATAL(mkdir(dir, 0755), 0);
	CU_ASSERT_EQUAL_FATAL(real_ksm_claim(dir, &a, &err), 0);
	CU_ASSERT(a >= 0);
	CU_ASSERT_EQUAL(real_ksm_claim(dir, &b, &err), SP_EBUSY);
	CU_ASSERT_EQUAL(b, -1);
	printf("%s\n", err.msg);
	snprintf(want, sizeof(want), "(pid %ld, test_ksm_sysfs)", (long)getpid());
	CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, want));
	CU_ASSERT_PTR_NULL(strchr(err.msg, '\n'));
	close(a);
	sp_err_clear(&err);
	CU_ASSERT_EQUAL(real_ksm_claim(dir, &b, &err), 0);
	close(b);
	CU_ASSERT_EQUAL(real_ksm_claim("/nonexistent/ksm", &b, &err), SP_ENOTSUP);
}

/*
 * The holder named is the process that holds the claim now: samepaged
 * claims, then daemonize() forks and the parent exits, and /proc/locks
 * still lists the parent's pid (dead, or another process's later).  Here a
 * child claims, forks a grandchild that keeps the descriptor, and exits.
 */
SP_TEST(claim_names_the_holder_after_a_fork)
{
	char dir[512], want[64];
	struct sp_err err = { 0 };
	int p[2], b = -1, st;
	pid_t child, holder = 0;

	sp_test_path(dir, sizeof(dir), "forked");
	CU_ASSERT_EQUAL_FATAL(mkdir(dir, 0755), 0);
	CU_ASSERT_EQUAL_FATAL(pipe(p), 0);
	child = fork();
	CU_ASSERT_FATAL(child >= 0);
	if (child == 0) {
		int a;
		pid_t g;

		close(p[0]);
		if (real_ksm_claim(dir, &a, &err) < 0)
			_exit(1);
		g = fork(); /* as daemonize(): the parent exits, the child keeps the lock */
		if (g < 0)
			_exit(1);
		if (g > 0)
			_exit(0);
		g = getpid();
		if (write(p[1], &g, sizeof(g)) != (ssize_t)sizeof(g))
			_exit(1);
		close(p[1]);
		pause(); /* until killed */
		_exit(0);
	}
	close(p[1]);
	CU_ASSERT_EQUAL(waitpid(child, &st, 0), child);
	CU_ASSERT(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	CU_ASSERT_EQUAL_FATAL(read(p[0], &holder, sizeof(holder)), (ssize_t)sizeof(holder));
	close(p[0]);
	CU_ASSERT_EQUAL(real_ksm_claim(dir, &b, &err), SP_EBUSY);
	printf("%s\n", err.msg);
	snprintf(want, sizeof(want), "(pid %ld, ", (long)holder);
	CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, want));
	kill(holder, SIGKILL);
	for (int i = 0; i < 1000 && kill(holder, 0) == 0; i++)
		nanosleep(&(struct timespec){ 0, 1000000 }, NULL); /* reaped by init */
	sp_err_clear(&err);
	CU_ASSERT_EQUAL(real_ksm_claim(dir, &b, &err), 0);
	if (b >= 0)
		close(b);
}
