/*
 * cow_write.c - what the first write to a merged page costs the writer
 * (bench/README.md, issue 15): the same write timed after the live backend
 * merged the page with COW events and write tracking (`sim real replay`'s
 * way: the tracking userfaultfd's asynchronous write protection, resolved by
 * the kernel, then its COW copy), with COW events alone (a write-protect
 * fault the backend's thread answers, then the kernel's COW copy), without
 * them (the kernel's COW copy only, as with --cow-poll), and after the
 * kernel's KSM merged it.
 *
 *   cow_write track|events|poll|ksm [PAIRS]   (root; ksm writes /sys/kernel/mm/ksm
 *                                              and restores it: run it under the lock)
 *
 * Pages i and PAIRS + i hold the same content and are merged; then every page
 * is written once (one byte, in page order) and each write is timed.
 * Prints the median, p99 and max in microseconds.
 */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "live.h"
#include "sp_util.h"

#define PS 4096u

static int cmp_d(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static void fill(uint8_t *m, uint32_t pairs)
{
	for (uint32_t i = 0; i < 2 * pairs; i++) {
		uint64_t v = (i % pairs) * 0x9e3779b97f4a7c15ull + 1;

		for (uint32_t o = 0; o < PS; o += 8)
			memcpy(m + (size_t)i * PS + o, &v, 8);
	}
}

/* Times one first write per page; returns the number of samples. */
static uint32_t time_writes(uint8_t *m, uint32_t n, double *us)
{
	for (uint32_t i = 0; i < n; i++) {
		volatile uint8_t *b = m + (size_t)i * PS + 64;
		uint64_t t0 = sp_mono_ns();

		*b = (uint8_t)(*b ^ 0x5a);
		us[i] = (double)(sp_mono_ns() - t0) / 1e3;
	}
	return n;
}

static int sysfs_rw(const char *name, char *old, const char *val)
{
	char path[128];
	FILE *f;

	snprintf(path, sizeof(path), "/sys/kernel/mm/ksm/%s", name);
	if (old) {
		if (!(f = fopen(path, "r")) || !fgets(old, 32, f))
			return -1;
		fclose(f);
		old[strcspn(old, "\n")] = 0;
	}
	if (val) {
		if (!(f = fopen(path, "w")))
			return -1;
		fputs(val, f);
		if (fclose(f) != 0)
			return -1;
	}
	return 0;
}

static long sysfs_num(const char *name)
{
	char v[32];

	return sysfs_rw(name, v, NULL) < 0 ? -1 : atol(v);
}

/* Merges with the kernel's KSM (tunables restored before the writes). */
static int merge_ksm(uint8_t *m, uint32_t pairs)
{
	char run[32], pts[32], slp[32];
	int ok = 0;

	if (sysfs_rw("run", run, NULL) < 0 || sysfs_rw("pages_to_scan", pts, NULL) < 0 ||
	    sysfs_rw("sleep_millisecs", slp, NULL) < 0 ||
	    madvise(m, (size_t)2 * pairs * PS, MADV_MERGEABLE) < 0)
		return -1;
	sysfs_rw("pages_to_scan", NULL, "5000");
	sysfs_rw("sleep_millisecs", NULL, "10");
	sysfs_rw("run", NULL, "1");
	for (int t = 0; t < 600 && !ok; t++) {
		usleep(100000);
		ok = sysfs_num("pages_sharing") >= (long)pairs;
	}
	sysfs_rw("run", NULL, "0"); /* stops ksmd; its merged pages stay merged */
	sysfs_rw("pages_to_scan", NULL, pts);
	sysfs_rw("sleep_millisecs", NULL, slp);
	sysfs_rw("run", NULL, run);
	return ok ? 0 : -1;
}

/* Merges with the live backend; *Lp freed by the caller. */
static int merge_live(uint8_t *m, uint32_t pairs, bool track, bool events, struct real_live **Lp)
{
	struct real_live_region r = { m, (uint64_t)2 * pairs * PS, 0, 0, -1 };
	struct real_live_config lc = { NULL, false, 0, track, events, REAL_LIVE_PROTECT_BY_RUN, REAL_LIVE_FREEZE_MOVE };
	struct sp_err err = { 0 };
	struct backend b;
	bk_frame f;

	if (real_live_new(Lp, &r, 1, &lc, &err) < 0) {
		fprintf(stderr, "cow_write: %s\n", err.msg);
		return -1;
	}
	b = real_live_backend(*Lp);
	for (uint32_t i = 0; i < pairs; i++) {
		if (b.ops->merge_pages(*Lp, pairs + i, i, &f) < 0)
			return -1;
	}
	return real_live_poll(*Lp, 0, NULL, NULL) < 0 ? -1 : 0; /* remaps the runs (and arms them) */
}

int main(int argc, char **argv)
{
	uint32_t pairs = argc > 2 ? (uint32_t)atoi(argv[2]) : 4096, n;
	struct real_live *L = NULL;
	struct real_live_stats st = { 0 };
	uint8_t *m;
	double *us;
	int rc;

	if (argc < 2 || (strcmp(argv[1], "track") && strcmp(argv[1], "events") && strcmp(argv[1], "poll") &&
			 strcmp(argv[1], "ksm")) ||
	    pairs == 0) {
		fprintf(stderr, "usage: cow_write track|events|poll|ksm [PAIRS]\n");
		return 2;
	}
	m = mmap(NULL, (size_t)2 * pairs * PS, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	us = calloc(2 * (size_t)pairs, sizeof(*us));
	if (m == MAP_FAILED || !us)
		return 1;
	fill(m, pairs);
	if (!strcmp(argv[1], "ksm"))
		rc = merge_ksm(m, pairs);
	else
		rc = merge_live(m, pairs, !strcmp(argv[1], "track"), strcmp(argv[1], "poll") != 0, &L);
	if (rc < 0) {
		fprintf(stderr, "cow_write: merging failed\n");
		return 1;
	}
	n = time_writes(m, 2 * pairs, us);
	if (L) {
		int found = real_live_poll(L, 2 * (uint64_t)pairs, NULL, NULL);

		real_live_stats(L, &st);
		printf("COW breaks found %d, write faults answered %llu\n", found,
		       (unsigned long long)st.cow_events_seen);
		real_live_free(L);
	} else {
		madvise(m, (size_t)2 * pairs * PS, MADV_UNMERGEABLE);
	}
	qsort(us, n, sizeof(*us), cmp_d);
	printf("%s: %u first writes, median %.2f us, p99 %.2f us, max %.1f us\n", argv[1], n,
	       us[n / 2], us[(size_t)n * 99 / 100], us[n - 1]);
	return 0;
}
