/*
 * ksm_guest.c - the in-guest half of the kernel proof (tests/real/ksm_proof.sh
 * boots it, statically linked, as the job of a QEMU guest running a Debian
 * kernel): it materialises a trace's pages in this process (real/materialize.h:
 * one MADV_MERGEABLE region per trace guest, at ascending addresses in trace
 * order, so ksmd visits the pages in the order the ksm model scans them), sets
 * the guest kernel's KSM tunables, starts ksmd and prints the kernel's KSM
 * counters after every full scan:
 *
 *   ksm_guest TRACE --scans N [--snapshot-scans K] [--set name=value]... [--timeout-s S]
 *
 * Snapshot 0 is in memory before ksmd starts; snapshot i >= 1 is applied right
 * after full scan i*K (what `sim run --scans N --snapshot-scans K` does).  At
 * the end of each full scan ksmd is stopped (run=0) while the counters are
 * read and a snapshot applied, then started again: the kernel ends a batch at
 * the end of a full scan and then sleeps sleep_millisecs, so with the poll
 * below (every 1 ms) the stop lands in that sleep and the counters are those
 * of the full scan exactly; a stop that came too late is detected (full_scans
 * moved on) and fails the run.  Stopping keeps every rmap item, tree and the
 * cursor (run_store() only sets ksm_run), so the scan goes on unchanged.
 *
 * Output, on stdout (the serial console):
 *   KSM-GUEST BEGIN <uname -r> <present pages> <AnonHugePages kB in /proc/meminfo>
 *   KSM-CSV,full_scans,<every counter file this kernel has>   (the header)
 *   KSM-CSV,<scan>,<values>                                   (one per full scan)
 *   KSM-GUEST DONE | KSM-GUEST FAIL: <reason>
 * full_scans, pages_scanned and pages_skipped are counted from the start.
 * Exit 0, 1 on failure, 2 on a usage error.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <time.h>

#include "ksm_sysfs.h"
#include "materialize.h"
#include "trace.h"

struct opts {
	const char *trace;
	uint64_t scans, snapshot_scans, timeout_s;
	struct real_ksm_settings set;
};

static int fail(const char *what, const struct sp_err *err)
{
	printf("KSM-GUEST FAIL: %s%s%s\n", what, err ? ": " : "", err ? err->msg : "");
	fflush(stdout);
	return 1;
}

static int parse(struct opts *o, int argc, char **argv)
{
	o->timeout_s = 600;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (a[0] != '-') {
			o->trace = a;
			continue;
		}
		if (!v)
			return -1;
		i++;
		if (!strcmp(a, "--scans")) {
			o->scans = strtoull(v, NULL, 10);
		} else if (!strcmp(a, "--snapshot-scans")) {
			o->snapshot_scans = strtoull(v, NULL, 10);
		} else if (!strcmp(a, "--timeout-s")) {
			o->timeout_s = strtoull(v, NULL, 10);
		} else if (!strcmp(a, "--set")) {
			const char *eq = strchr(v, '=');
			char name[64];
			int f;

			if (!eq || (size_t)(eq - v) >= sizeof(name))
				return -1;
			memcpy(name, v, (size_t)(eq - v));
			name[eq - v] = '\0';
			f = real_ksm_lookup(name);
			if (f < 0 || f >= REAL_KSM_TUNABLES || f == REAL_KSM_RUN) {
				fprintf(stderr, "ksm_guest: --set %s: not a KSM tunable (run is ours)\n", v);
				return -1;
			}
			o->set.set[f] = true;
			o->set.v[f] = strtoll(eq + 1, NULL, 10);
		} else {
			return -1;
		}
	}
	return o->trace && o->scans ? 0 : -1;
}

/* AnonHugePages of /proc/meminfo (kB), or -1: whether the trace's huge pages are huge here. */
static long long anon_huge_kib(void)
{
	FILE *f = fopen("/proc/meminfo", "r");
	char line[128];
	long long v = -1;

	while (f && fgets(line, sizeof(line), f)) {
		if (sscanf(line, "AnonHugePages: %lld", &v) == 1)
			break;
	}
	if (f)
		fclose(f);
	return v;
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static bool cumulative(int f)
{
	return f == REAL_KSM_FULL_SCANS || f == REAL_KSM_PAGES_SCANNED || f == REAL_KSM_PAGES_SKIPPED;
}

/* full_scans, then every other counter this kernel has: the header, or the values. */
static void print_row(const struct real_ksm_state *s, const struct real_ksm_state *base,
		      bool header)
{
	if (header)
		fputs("KSM-CSV,full_scans", stdout);
	else
		printf("KSM-CSV,%lld",
		       (long long)(s->v[REAL_KSM_FULL_SCANS] - base->v[REAL_KSM_FULL_SCANS]));
	for (int f = REAL_KSM_PAGES_SHARED; f < REAL_KSM__COUNT; f++) {
		if (f == REAL_KSM_FULL_SCANS || !s->present[f])
			continue;
		if (header)
			printf(",%s", real_ksm_name(f));
		else
			printf(",%lld", (long long)(s->v[f] - (cumulative(f) ? base->v[f] : 0)));
	}
	putchar('\n');
	fflush(stdout);
}

int main(int argc, char **argv)
{
	struct opts o;
	struct sp_err err = { 0 };
	struct real_ksm k;
	struct real_ksm_state base, st;
	struct trace_reader *r = NULL;
	struct trace_snapshot snap;
	struct real_mat *m = NULL;
	struct utsname u;
	uint64_t snaps = 0;
	int64_t fs;
	double deadline;
	int rc, more;

	memset(&o, 0, sizeof(o));
	if (parse(&o, argc, argv) < 0) {
		fprintf(stderr, "usage: ksm_guest TRACE --scans N [--snapshot-scans K] "
				"[--set name=value]... [--timeout-s S]\n");
		return 2;
	}
	if (real_ksm_open(&k, NULL, true, &err) < 0)
		return fail("KSM", &err);
	if (real_ksm_set(&k, REAL_KSM_RUN, REAL_KSM_RUN_STOP, &err) < 0 ||
	    real_ksm_apply(&k, &o.set, &err) < 0)
		return fail("tunables", &err);
	if (trace_reader_open(&r, o.trace, &err) < 0 ||
	    real_mat_new(&m, trace_reader_header(r), REAL_MAT_MERGEABLE, &err) < 0)
		return fail("trace", &err);
	more = trace_reader_next_snapshot(r, &snap, &err);
	if (more <= 0 || real_mat_snapshot(m, r, NULL, NULL, &err) < 0)
		return fail("snapshot 0", more < 0 ? &err : NULL);
	snaps = 1;
	more = trace_reader_next_snapshot(r, &snap, &err);
	if (more < 0 || real_ksm_read(&k, &base, &err) < 0)
		return fail("reading", &err);
	uname(&u);
	printf("KSM-GUEST BEGIN %s %llu %lld\n", u.release,
	       (unsigned long long)real_mat_present_pages(m), anon_huge_kib());
	print_row(&base, &base, true);
	deadline = now_s() + (double)o.timeout_s;
	for (uint64_t n = 0; n < o.scans;) {
		if (real_ksm_set(&k, REAL_KSM_RUN, REAL_KSM_RUN_MERGE, &err) < 0)
			return fail("run=1", &err);
		do {
			struct timespec ms = { 0, 1000000 };

			if (now_s() > deadline)
				return fail("timeout waiting for a full scan", NULL);
			nanosleep(&ms, NULL);
			if (real_ksm_get(&k, REAL_KSM_FULL_SCANS, &fs, &err) < 0)
				return fail("full_scans", &err);
		} while (fs - base.v[REAL_KSM_FULL_SCANS] <= (int64_t)n);
		if (real_ksm_set(&k, REAL_KSM_RUN, REAL_KSM_RUN_STOP, &err) < 0 ||
		    real_ksm_read(&k, &st, &err) < 0)
			return fail("run=0", &err);
		n++;
		if (st.v[REAL_KSM_FULL_SCANS] - base.v[REAL_KSM_FULL_SCANS] != (int64_t)n) {
			printf("KSM-GUEST FAIL: ksmd went on to full scan %lld before it was stopped "
			       "after scan %llu\n",
			       (long long)(st.v[REAL_KSM_FULL_SCANS] - base.v[REAL_KSM_FULL_SCANS]),
			       (unsigned long long)n);
			return 1;
		}
		print_row(&st, &base, false);
		if (more > 0 && o.snapshot_scans && n == snaps * o.snapshot_scans) {
			rc = real_mat_snapshot(m, r, NULL, NULL, &err);
			if (rc == 0)
				more = trace_reader_next_snapshot(r, &snap, &err);
			if (rc < 0 || more < 0)
				return fail("applying a snapshot", &err);
			snaps++;
		}
	}
	printf("KSM-GUEST DONE %llu snapshots applied\n", (unsigned long long)snaps);
	fflush(stdout);
	real_mat_free(m);
	trace_reader_close(r);
	return 0;
}
