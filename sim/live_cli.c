/*
 * live_cli.c - implements the pieces shared by the live commands
 * (live_cli.h).  The signal handler uses only async-signal-safe calls:
 * real_ksm_restore_signal_safe() and real_mapcount_release_signal_safe().
 */
#define _GNU_SOURCE
#include "live_cli.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "host.h"
#include "live.h"
#include "trace.h"

const int cli_ksm_settable[] = {
	REAL_KSM_PAGES_TO_SCAN, REAL_KSM_SLEEP_MILLISECS, REAL_KSM_MERGE_ACROSS_NODES,
	REAL_KSM_USE_ZERO_PAGES, REAL_KSM_MAX_PAGE_SHARING, REAL_KSM_SMART_SCAN,
};
const size_t cli_ksm_nsettable = sizeof(cli_ksm_settable) / sizeof(cli_ksm_settable[0]);

volatile sig_atomic_t cli_stop;
/* What the handler restores: set before the handlers are installed, cleared after they are removed. */
static struct real_ksm_saved g_saved;
static bool g_have_saved;
static struct real_mapcount *g_mc; /* the run's hold on vm.max_map_count, or NULL */
static struct real_unshare_paths g_room; /* the handler's headroom check before its run=2 */

static void on_signal(int sig)
{
	int e = errno;

	if (g_have_saved) {
		/*
		 * Putting merge_across_nodes or max_page_sharing back needs run=2:
		 * only with the headroom for it, as every unmerge (else they
		 * wait for cli_guard_end, our pages freed, or stay as they are).
		 */
		g_saved.no_unmerge = !real_unshare_allows_signal_safe(&g_room);
		real_ksm_restore_signal_safe(&g_saved);
	}
	if (g_mc)
		real_mapcount_release_signal_safe(g_mc);
	errno = e;
	if (cli_stop) {
		signal(sig, SIG_DFL);
		raise(sig);
	}
	cli_stop = sig;
}

static void set_handlers(bool on)
{
	static const int sigs[] = { SIGINT, SIGTERM, SIGHUP };
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on ? on_signal : SIG_DFL;
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = 0; /* no SA_RESTART: a sleep ends at once */
	for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
		sigaction(sigs[i], &sa, NULL);
}

/*
 * real_unshare_check() on k's counters and cli_procfs()'s meminfo,
 * samepaged's default reserve, own_bytes of this run's memory on top.
 */
static int unshare_check(const struct real_ksm *k, int64_t own_bytes, const char *what, struct sp_err *err)
{
	struct real_ksm_state st;
	struct ctl_host mem;
	int rc = real_ksm_read(k, &st, err);

	if (rc == 0)
		rc = real_host_read_meminfo(cli_procfs(), &mem, err);
	if (rc == 0)
		rc = real_unshare_check(&st, &mem, -1, own_bytes, what, err);
	return rc;
}

int cli_guard_start(struct real_ksm *k, struct real_mapcount *mc, struct sp_err *err)
{
	cli_stop = 0;
	g_have_saved = false;
	if (k) {
		int rc = real_ksm_save(k, &g_saved, err);

		if (rc < 0)
			return rc;
		real_unshare_paths_init(&g_room, k->dir, cli_procfs(), -1);
		g_have_saved = true;
	}
	g_mc = mc;
	set_handlers(true);
	return 0;
}

int cli_guard_end(struct real_ksm *k, struct sp_err *err)
{
	int rc = 0;

	if (k && g_have_saved) {
		struct sp_err room = { 0 };
		int unmerged = 0;

		/* Our pages are freed by now: what is left merged is other processes'. */
		if (unshare_check(k, 0, "run=2 at the end", &room) == 0) {
			g_saved.no_unmerge = false; /* whatever a signal's handler found */
			unmerged = real_ksm_set(k, REAL_KSM_RUN, REAL_KSM_RUN_UNMERGE, err);
		} else {
			fprintf(stderr, "sim: note: %s; other processes' KSM pages stay merged\n", room.msg);
			g_saved.no_unmerge = true; /* nor does the restore unmerge them */
		}
		if (real_ksm_restore(&g_saved, err) < 0 || unmerged < 0)
			rc = -1;
	}
	if (g_mc && real_mapcount_release(g_mc, err) < 0)
		rc = -1;
	set_handlers(false);
	g_have_saved = false;
	g_mc = NULL;
	return rc;
}

int cli_guard_finish(struct real_ksm *k, int rc, const struct sp_err *run_err, bool *restore_failed)
{
	struct sp_err err2 = { 0 };

	if (cli_guard_end(k, &err2) < 0) {
		fprintf(stderr, "sim: warning: %s\n", err2.msg);
		*restore_failed = true;
	}
	if (cli_stop) {
		fprintf(stderr, "sim: interrupted; settings %s\n",
			*restore_failed ? "NOT all restored (see above)" : "restored");
		return 128 + (int)cli_stop;
	}
	return rc < 0 ? cli_fail(run_err) : EXIT_OK;
}

void cli_sleep_until(uint64_t t_ns)
{
	struct timespec ts = { (time_t)(t_ns / 1000000000ull), (long)(t_ns % 1000000000ull) };

	while (!cli_stop && clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
		;
}

int cli_trace_prescan(const char *path, uint64_t *last_ms, uint64_t *snapshots, uint64_t *pages,
		      uint32_t *page_size, struct sp_err *err)
{
	struct trace_reader *r;
	struct trace_snapshot s;
	int rc;

	*last_ms = *snapshots = 0;
	rc = trace_reader_open(&r, path, err);
	if (rc < 0)
		return rc;
	*pages = trace_header_total_pages(trace_reader_header(r));
	*page_size = trace_reader_header(r)->page_size;
	while ((rc = trace_reader_next_snapshot(r, &s, err)) > 0) {
		*last_ms = s.time_ms;
		(*snapshots)++;
	}
	trace_reader_close(r);
	if (rc == 0 && *snapshots == 0)
		rc = sp_err_set(err, SP_ECORRUPT, "%s: the trace has no snapshot", path);
	return rc;
}

const char *cli_sysfs(void)
{
	const char *v = getenv("SAMEPAGE_SYSFS");

	return v && *v ? v : "/sys";
}

const char *cli_procfs(void)
{
	const char *v = getenv("SAMEPAGE_PROCFS");

	return v && *v ? v : "/proc";
}

static int refuse_other_ksm_users(bool allow)
{
	pid_t others[8];
	int n = allow ? 0 : real_ksm_other_users(getpid(), others, 8);

	if (n <= 0)
		return EXIT_OK;
	fprintf(stderr, "sim: %d other process%s (pid %ld%s) %s KSM-mergeable memory, which the kernel's "
		"counters would include; stop %s or pass --allow-others\n",
		n, n > 1 ? "es" : "", (long)others[0], n > 1 ? ", ..." : "", n > 1 ? "have" : "has",
		n > 1 ? "them" : "it");
	return EXIT_UNAVAILABLE;
}

int cli_ksm_take(struct real_ksm *k, bool allow_others, int64_t own_bytes, const char *hint)
{
	static int fd = -1; /* the claim, held until exit */
	struct sp_err err = { 0 };
	char dir[512];
	int rc;

	snprintf(dir, sizeof(dir), "%s/kernel/mm/ksm", cli_sysfs());
	if ((rc = real_ksm_open(k, dir, true, &err)) < 0) {
		fprintf(stderr, "sim: %s%s\n", err.msg, hint ? hint : "");
		return cli_exit_code(rc);
	}
	if (fd < 0 && real_ksm_claim(k->dir, &fd, &err) < 0)
		return cli_fail(&err);
	/* The kernel's counters are system-wide: another mergeable process would count too. */
	if ((rc = refuse_other_ksm_users(allow_others)) != EXIT_OK)
		return rc;
	/*
	 * The run=2 at the start unmerges every KSM page on the host, other
	 * processes' too, and this run's own memory comes on top of theirs.
	 */
	if (unshare_check(k, own_bytes, "run=2 at the start (it unmerges every KSM page on the host)", &err) < 0)
		return cli_fail(&err);
	return EXIT_OK;
}
