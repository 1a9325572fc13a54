/*
 * test_record.c - the live recorder (traces/record.c) on child processes
 * with known page contents: recorded and exported with `sim trace export`,
 * the trace shows exactly the child's fingerprint equalities, zero pages and
 * absent pages; a child that exits mid-recording gives a clean shorter
 * trace; a missing pid or missing privilege gives the right error.  Needs
 * root (pagemap frame numbers, /proc/kpageflags): skipped otherwise.
 */
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "pagehash.h"
#include "record.h"
#include "trace.h"

#define NPAGES 64

/* Content class of page i of the child's region: what the test expects. */
enum { C_A, C_B, C_ZERO, C_UNTOUCHED, C_READONLY, C_UNIQUE };

static int page_class(int i)
{
	if (i < 10) return C_A;        /* 10 equal pages */
	if (i < 20) return C_B;        /* 10 other equal pages */
	if (i < 30) return C_ZERO;     /* written, zero-filled */
	if (i < 40) return C_UNTOUCHED;/* never touched: absent */
	if (i < 48) return C_READONLY; /* only read: the zero page, absent (or a private zeroed page) */
	return C_UNIQUE;               /* distinct contents */
}

/* What page i holds: a page only read holds zeros. */
static int content_class(int i)
{
	return page_class(i) == C_READONLY ? C_ZERO : page_class(i);
}

struct child {
	pid_t pid;
	uintptr_t region;
};

/* Forks a child that fills NPAGES pages as page_class() says, reports the address, then waits
 * (or exits after exit_ms, when not 0). */
static struct child spawn(int exit_ms)
{
	struct child c = { 0 };
	int fd[2];

	CU_ASSERT_FATAL(pipe(fd) == 0);
	c.pid = fork();
	CU_ASSERT_FATAL(c.pid >= 0);
	if (c.pid == 0) {
		long ps = sysconf(_SC_PAGESIZE);
		uint8_t *p = mmap(NULL, NPAGES * ps, PROT_READ | PROT_WRITE,
				  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		volatile uint8_t sink = 0;
		uintptr_t a = (uintptr_t)p;

		prctl(PR_SET_PDEATHSIG, SIGKILL); /* never outlive a failed test */
		if (p == MAP_FAILED)
			_exit(1);
		madvise(p, NPAGES * ps, MADV_NOHUGEPAGE);
		for (int i = 0; i < NPAGES; i++) {
			uint8_t *pg = p + (size_t)i * ps;

			switch (page_class(i)) {
			case C_A: memset(pg, 0xaa, ps); break;
			case C_B: memset(pg, 0xbb, ps); pg[100] = 1; break;
			case C_ZERO: pg[0] = 1; pg[0] = 0; break;
			case C_UNTOUCHED: break;
			case C_READONLY: sink += pg[0]; break;
			default: memset(pg, i, ps); break;
			}
		}
		(void)sink;
		if (write(fd[1], &a, sizeof(a)) != sizeof(a))
			_exit(1);
		if (exit_ms) {
			usleep((useconds_t)exit_ms * 1000);
			_exit(0);
		}
		for (;;)
			pause();
	}
	close(fd[1]);
	CU_ASSERT_FATAL(read(fd[0], &c.region, sizeof(c.region)) == sizeof(c.region));
	close(fd[0]);
	return c;
}

static void reap(struct child *c)
{
	kill(c->pid, SIGKILL);
	waitpid(c->pid, NULL, 0);
}

static bool have_privilege(void)
{
	return geteuid() == 0 && access("/proc/kpageflags", R_OK) == 0;
}

/* Trace page number of the child's page i. */
static uint64_t page_of(const struct trace_rec_target *t, uintptr_t va)
{
	long ps = sysconf(_SC_PAGESIZE);

	for (uint32_t s = 0; s < t->nseg; s++) {
		if (va >= t->seg[s].va && va < t->seg[s].va + t->seg[s].pages * (uint64_t)ps)
			return t->seg[s].first_page + (va - t->seg[s].va) / (uint64_t)ps;
	}
	CU_FAIL_FATAL("child region not in any recorded segment");
	return 0;
}

struct row {
	bool seen;
	char fp[64];
	int zero;
};

SP_TEST(known_contents_exported)
{
	char path[512], csv[512], cmd[2048], line[512];
	struct trace_rec_target t;
	struct trace_rec_opts o = { .interval_ms = 50, .count = 2, .unkeyed = false, .mode = 0600 };
	struct trace_rec_result res;
	struct sp_err err = { 0 };
	struct row rows[NPAGES];
	struct child c;
	struct stat st;
	uint64_t first;
	long ps = sysconf(_SC_PAGESIZE);
	int zero_page;
	FILE *f;

	if (!have_privilege())
		SP_SKIP("recording needs root (pagemap PFNs, /proc/kpageflags)");
	c = spawn(0);
	CU_ASSERT_EQUAL_FATAL(trace_rec_target_process(&t, c.pid, &err), 0);
	first = page_of(&t, c.region);
	sp_test_path(path, sizeof(path), "known.sptrace");
	CU_ASSERT_EQUAL(trace_record(path, &t, 1, &o, &res, &err), 0);
	reap(&c);
	if (err.msg[0])
		printf("error: %s\n", err.msg);
	CU_ASSERT_EQUAL_FATAL(res.snapshots, 2);
	CU_ASSERT_FALSE(res.target_exited);
	CU_ASSERT_EQUAL_FATAL(stat(path, &st), 0);
	CU_ASSERT_EQUAL(st.st_mode & 0777, 0600);
	{
		struct trace_reader *r;

		CU_ASSERT_EQUAL_FATAL(trace_reader_open(&r, path, &err), 0);
		CU_ASSERT(trace_reader_header(r)->flags & TRACE_F_KEYED);
		CU_ASSERT(trace_reader_header(r)->flags & TRACE_F_FUZZY);
		CU_ASSERT_EQUAL(trace_reader_header(r)->fp_algo, TRACE_FP_XXH3_128);
		trace_reader_close(r);
	}

	sp_test_path(csv, sizeof(csv), "known.csv");
	snprintf(cmd, sizeof(cmd), "'%s' trace export '%s' --csv '%s'", SP_SIM_PATH, path, csv);
	CU_ASSERT_EQUAL_FATAL(system(cmd), 0);
	memset(rows, 0, sizeof(rows));
	f = fopen(csv, "r");
	CU_ASSERT_PTR_NOT_NULL_FATAL(f);
	while (fgets(line, sizeof(line), f)) {
		unsigned snap, zero, node, huge;
		unsigned long long tms, page;
		char guest[300], fp[64];

		if (sscanf(line, "%u,%llu,%299[^,],%llu,%63[^,],%u,%u,%u", &snap, &tms, guest, &page, fp,
			   &zero, &node, &huge) != 8 || snap != 1)
			continue;
		if (page < first || page >= first + NPAGES)
			continue;
		rows[page - first].seen = true;
		snprintf(rows[page - first].fp, sizeof(rows[0].fp), "%s", fp);
		rows[page - first].zero = (int)zero;
		CU_ASSERT_EQUAL(huge, 0);
	}
	fclose(f);
	zero_page = sp_test_read_maps_zero_page();
	for (int i = 0; i < NPAGES; i++) {
		int k = page_class(i);

		/* Only read: absent on the zero page; else a private zeroed page, recorded as zero. */
		if (k == C_UNTOUCHED || (k == C_READONLY && zero_page)) {
			CU_ASSERT_FALSE(rows[i].seen);
			continue;
		}
		CU_ASSERT_TRUE_FATAL(rows[i].seen);
		CU_ASSERT_EQUAL(rows[i].zero, k == C_ZERO || k == C_READONLY);
		for (int j = 0; j < i; j++) {
			if (!rows[j].seen)
				continue;
			/* equal fingerprints exactly for equal contents */
			bool same = content_class(i) == content_class(j) && k != C_UNIQUE;

			if (same != !strcmp(rows[i].fp, rows[j].fp))
				printf("pages %d and %d: classes %d %d, fp %s %s\n", i, j, k,
				       page_class(j), rows[i].fp, rows[j].fp);
			CU_ASSERT_EQUAL(same, !strcmp(rows[i].fp, rows[j].fp));
		}
	}
	(void)ps;
}

/* Unkeyed fingerprints are plain XXH3-128 and so the same in two traces; keyed ones differ. */
SP_TEST(salt_keys_fingerprints)
{
	char p1[512], p2[512], p3[512];
	struct trace_rec_target t;
	struct trace_rec_opts o = { .interval_ms = 10, .count = 1, .mode = 0600 };
	struct trace_rec_result res;
	struct sp_err err = { 0 };
	struct child c;
	struct sp_fp fp[3];
	const char *paths[3];
	uint64_t first;

	if (!have_privilege())
		SP_SKIP("recording needs root (pagemap PFNs, /proc/kpageflags)");
	c = spawn(0);
	CU_ASSERT_EQUAL_FATAL(trace_rec_target_process(&t, c.pid, &err), 0);
	first = page_of(&t, c.region);
	paths[0] = sp_test_path(p1, sizeof(p1), "k1.sptrace");
	paths[1] = sp_test_path(p2, sizeof(p2), "k2.sptrace");
	paths[2] = sp_test_path(p3, sizeof(p3), "u1.sptrace");
	CU_ASSERT_EQUAL(trace_record(p1, &t, 1, &o, &res, &err), 0);
	CU_ASSERT_EQUAL(trace_record(p2, &t, 1, &o, &res, &err), 0);
	o.unkeyed = true;
	CU_ASSERT_EQUAL(trace_record(p3, &t, 1, &o, &res, &err), 0);
	reap(&c);
	for (int i = 0; i < 3; i++) {
		struct trace_reader *r;
		struct trace_snapshot s;
		struct trace_record rec;

		fp[i] = (struct sp_fp){ 0, 0 };
		CU_ASSERT_EQUAL_FATAL(trace_reader_open(&r, paths[i], &err), 0);
		CU_ASSERT_EQUAL(!!(trace_reader_header(r)->flags & TRACE_F_KEYED), i < 2);
		CU_ASSERT_EQUAL_FATAL(trace_reader_next_snapshot(r, &s, &err), 1);
		while (trace_reader_next_record(r, &rec, &err) == 1) {
			if (rec.page == first) /* page 0: all 0xaa */
				fp[i] = rec.fp;
		}
		trace_reader_close(r);
	}
	CU_ASSERT_FALSE(sp_fp_is_zero(fp[0]));
	CU_ASSERT_FALSE(sp_fp_eq(fp[0], fp[1]));
	{
		long ps = sysconf(_SC_PAGESIZE);
		uint8_t *buf = malloc((size_t)ps);
		struct trace_hasher h;
		bool zero;

		memset(buf, 0xaa, (size_t)ps);
		CU_ASSERT_EQUAL(trace_hasher_init(&h, false, &err), 0);
		CU_ASSERT(sp_fp_eq(fp[2], trace_page_fp(&h, buf, (size_t)ps, &zero)));
		free(buf);
	}
}

SP_TEST(exit_mid_recording)
{
	char path[512];
	struct trace_rec_target t;
	struct trace_rec_opts o = { .interval_ms = 100, .count = 100, .mode = 0600 };
	struct trace_rec_result res;
	struct sp_err err = { 0 };
	uint32_t snaps;
	uint64_t records;
	struct child c;

	if (!have_privilege())
		SP_SKIP("recording needs root (pagemap PFNs, /proc/kpageflags)");
	c = spawn(450);
	CU_ASSERT_EQUAL_FATAL(trace_rec_target_process(&t, c.pid, &err), 0);
	sp_test_path(path, sizeof(path), "exit.sptrace");
	CU_ASSERT_EQUAL(trace_record(path, &t, 1, &o, &res, &err), 0);
	if (err.msg[0])
		printf("error: %s\n", err.msg);
	waitpid(c.pid, NULL, 0);
	CU_ASSERT_TRUE(res.target_exited);
	CU_ASSERT(res.snapshots >= 2 && res.snapshots <= 6);
	CU_ASSERT_EQUAL(trace_check(path, &snaps, &records, &err), 0);
	CU_ASSERT_EQUAL(snaps, res.snapshots);
	printf("child exited after %u whole snapshots\n", snaps);
}

SP_TEST(exit_before_first_snapshot_writes_nothing)
{
	char path[512];
	struct trace_rec_target t;
	struct trace_rec_opts o = { .interval_ms = 100, .count = 5, .mode = 0600 };
	struct trace_rec_result res;
	struct sp_err err = { 0 };
	struct child c;

	if (!have_privilege())
		SP_SKIP("recording needs root (pagemap PFNs, /proc/kpageflags)");
	c = spawn(50); /* long enough to be found alive on a loaded machine (1 ms was not) */
	CU_ASSERT_EQUAL_FATAL(trace_rec_target_process(&t, c.pid, &err), 0);
	usleep(300000); /* the child is a zombie now: its memory is gone */
	sp_test_path(path, sizeof(path), "none.sptrace");
	CU_ASSERT(trace_record(path, &t, 1, &o, &res, &err) < 0);
	printf("error: %s\n", err.msg);
	CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "no trace written"));
	CU_ASSERT_EQUAL(access(path, F_OK), -1);
	waitpid(c.pid, NULL, 0);
}

SP_TEST(missing_pid_and_privilege)
{
	struct trace_rec_target t;
	struct sp_err err = { 0 };
	pid_t pid;
	int status;

	CU_ASSERT_EQUAL(trace_rec_target_process(&t, 0x3ffffff0, &err), SP_EINVAL);
	CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "no such process"));
	if (geteuid() != 0)
		SP_SKIP("dropping privileges needs root");
	/* An unprivileged user cannot record pid 1. */
	pid = fork();
	CU_ASSERT_FATAL(pid >= 0);
	if (pid == 0) {
		struct sp_err e = { 0 };

		if (setgid(65534) < 0 || setuid(65534) < 0)
			_exit(2);
		_exit(trace_rec_target_process(&t, 1, &e) == SP_EPERM ? 0 : 1);
	}
	CU_ASSERT_EQUAL(waitpid(pid, &status, 0), pid);
	CU_ASSERT(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

SP_TEST(qemu_mem_option)
{
	uint64_t b;

	CU_ASSERT(trace_rec_parse_qemu_mem("512", &b) == 0 && b == 512ull << 20);
	CU_ASSERT(trace_rec_parse_qemu_mem("2G", &b) == 0 && b == 2ull << 30);
	CU_ASSERT(trace_rec_parse_qemu_mem("size=1024M,slots=2,maxmem=4G", &b) == 0 && b == 1ull << 30);
	CU_ASSERT(trace_rec_parse_qemu_mem("768MB", &b) == 0 && b == 768ull << 20);
	CU_ASSERT(trace_rec_parse_qemu_mem("lots", &b) < 0);
	CU_ASSERT(trace_rec_parse_qemu_mem("12Q", &b) < 0);
}
