/*
 * harness.c - runs one named test (or all) of a test binary under CUnit.
 * Exit: 0 all passed, 1 a failure, 77 skipped (ctest SKIP_RETURN_CODE).
 */
#define _GNU_SOURCE
#include "harness.h"

#include <CUnit/Basic.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define MAX_TESTS 256

static struct {
	const char *name;
	sp_test_fn fn;
} tests[MAX_TESTS];
static int ntests;
static int skipped;
static char tmpdir[256];

void sp_test_register(const char *name, sp_test_fn fn)
{
	if (ntests < MAX_TESTS) {
		tests[ntests].name = name;
		tests[ntests].fn = fn;
		ntests++;
	}
}

void sp_test_skip(const char *fmt, ...)
{
	va_list ap;

	fputs("SKIPPED: ", stdout);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	fputc('\n', stdout);
	fflush(stdout);
	skipped++;
}

static void cleanup(void)
{
	if (tmpdir[0]) {
		char cmd[300];

		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
		if (system(cmd) != 0)
			fprintf(stderr, "warning: could not remove %s\n", tmpdir);
	}
}

const char *sp_test_tmpdir(void)
{
	if (!tmpdir[0]) {
		snprintf(tmpdir, sizeof(tmpdir), "%s/sptest-XXXXXX",
			 getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
		if (!mkdtemp(tmpdir)) {
			perror("mkdtemp");
			exit(2);
		}
		atexit(cleanup);
	}
	return tmpdir;
}

const char *sp_test_path(char *buf, size_t len, const char *name)
{
	snprintf(buf, len, "%s/%s", sp_test_tmpdir(), name);
	return buf;
}

uint64_t sp_test_seed(void)
{
	const char *s = getenv("SP_TEST_SEED");
	uint64_t seed = s ? strtoull(s, NULL, 10) : (uint64_t)time(NULL) ^ (uint64_t)getpid();

	printf("seed %llu (rerun with SP_TEST_SEED=%llu)\n", (unsigned long long)seed,
	       (unsigned long long)seed);
	return seed;
}

int sp_test_read_maps_zero_page(void)
{
	long ps = sysconf(_SC_PAGESIZE);
	volatile uint8_t *z = mmap(NULL, (size_t)ps, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	uint64_t e = 0;
	int fd, shared;

	CU_ASSERT_FATAL((void *)z != MAP_FAILED);
	(void)z[0];
	fd = open("/proc/self/pagemap", O_RDONLY);
	CU_ASSERT_FATAL(fd >= 0);
	CU_ASSERT_FATAL(pread(fd, &e, sizeof(e), (off_t)((uintptr_t)z / (uintptr_t)ps * sizeof(e))) ==
			(ssize_t)sizeof(e));
	close(fd);
	munmap((void *)z, (size_t)ps);
	shared = (e >> 63 & 1) && !(e >> 56 & 1); /* present, not exclusively mapped */
	if (!shared)
		printf("this kernel maps a private page on a read fault, not the shared zero page\n");
	return shared;
}

int main(int argc, char **argv)
{
	CU_pSuite suite;
	unsigned failed;
	int added = 0;

	if (argc > 1 && !strcmp(argv[1], "--list")) {
		for (int i = 0; i < ntests; i++)
			puts(tests[i].name);
		return 0;
	}
	if (CU_initialize_registry() != CUE_SUCCESS)
		return 2;
	suite = CU_add_suite(argv[0], NULL, NULL);
	for (int i = 0; i < ntests; i++) {
		if (argc > 1 && strcmp(argv[1], tests[i].name) != 0)
			continue;
		CU_add_test(suite, tests[i].name, tests[i].fn);
		added++;
	}
	if (!added) {
		fprintf(stderr, "no test named '%s'\n", argc > 1 ? argv[1] : "");
		CU_cleanup_registry();
		return 2;
	}
	CU_basic_set_mode(CU_BRM_VERBOSE);
	CU_basic_run_tests();
	failed = CU_get_number_of_failures() + CU_get_number_of_tests_failed();
	CU_cleanup_registry();
	if (failed)
		return 1;
	return (skipped && skipped == added) ? 77 : 0;
}
