/*
 * harness.h - a thin layer over CUnit so that every test is its own ctest
 * entry.  A test file declares tests with SP_TEST(name) { ... }; CMake finds
 * the names in the source (tests/CMakeLists.txt) and runs `binary name` for
 * each.  SP_SKIP("reason") ends a test as skipped: the binary exits 77 and
 * ctest reports the test as skipped, with the reason printed.
 */
#ifndef SP_TEST_HARNESS_H
#define SP_TEST_HARNESS_H

#include <CUnit/CUnit.h>
#include <stdint.h>

typedef void (*sp_test_fn)(void);

void sp_test_register(const char *name, sp_test_fn fn);
void sp_test_skip(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* A scratch directory, created once per process, removed at exit. */
const char *sp_test_tmpdir(void);
/* tmpdir/name into buf. */
const char *sp_test_path(char *buf, size_t len, const char *name);
/* Seed for randomised tests: SP_TEST_SEED if set, else time; printed. */
uint64_t sp_test_seed(void);
/*
 * Does a read fault of fresh anonymous memory map the kernel's shared zero
 * page?  Linux does, but some kernels allocate a private zeroed page instead
 * (seen on a Firecracker guest kernel, 6.18.44-fc): tests that count on the
 * zero page ask, and assert the kernel's own behaviour.  Reads
 * /proc/self/pagemap (bit 56, "exclusively mapped", needs no privilege).
 */
int sp_test_read_maps_zero_page(void);

#define SP_TEST(name)                                                                   \
	static void test_##name(void);                                                  \
	__attribute__((constructor)) static void register_##name(void)                 \
	{                                                                               \
		sp_test_register(#name, test_##name);                                   \
	}                                                                               \
	static void test_##name(void)

#define SP_SKIP(...)                      \
	do {                              \
		sp_test_skip(__VA_ARGS__); \
		return;                   \
	} while (0)

#endif
