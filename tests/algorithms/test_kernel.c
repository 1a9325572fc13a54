/*
 * test_kernel.c - the version table and the --kernel parser: each version
 * gets exactly the behaviours of the rows up to it, uname strings of the
 * distributions read as their version, overrides set one behaviour on its
 * own, and bad input is refused with a message naming it.
 */
#include <string.h>

#include "harness.h"
#include "kernel.h"

static struct algo_kernel parsed(const char *spec)
{
	struct algo_kernel k;
	struct sp_err err = { 0 };

	CU_ASSERT_EQUAL(algo_kernel_parse(&k, spec, &err), 0);
	if (err.code)
		CU_FAIL(err.msg);
	return k;
}

SP_TEST(versions_get_the_rows_up_to_them)
{
	struct algo_kernel k;

	k = parsed("5.14");
	CU_ASSERT_EQUAL(k.features, 0u);
	k = parsed("6.1");
	CU_ASSERT_EQUAL(k.features, 0u);
	k = parsed("6.4");
	CU_ASSERT_EQUAL(k.features, (uint32_t)AK_GENERAL_PROFIT);
	k = parsed("6.6");
	CU_ASSERT_EQUAL(k.features, (uint32_t)(AK_GENERAL_PROFIT | AK_KSM_ZERO_PAGES |
					       AK_PAGES_SCANNED));
	k = parsed("6.8");
	CU_ASSERT(algo_kernel_has(&k, AK_SMART_SCAN | AK_ADVISOR | AK_PAGES_SCANNED));
	CU_ASSERT(!algo_kernel_has(&k, AK_PAGES_SCANNED_PER_VISIT));
	CU_ASSERT(!algo_kernel_has(&k, AK_CHECKSUM_FIRST));
	k = parsed("6.10");
	CU_ASSERT(algo_kernel_has(&k, AK_PAGES_SCANNED_PER_VISIT));
	CU_ASSERT(!algo_kernel_has(&k, AK_CHECKSUM_FIRST));
	k = parsed("6.11");
	CU_ASSERT(algo_kernel_has(&k, AK_CHECKSUM_FIRST));
	CU_ASSERT(!algo_kernel_has(&k, AK_THP_ZERO_REMAP));
	k = parsed("6.12");
	CU_ASSERT(algo_kernel_has(&k, AK_THP_ZERO_REMAP));
	/* Every row has a commit and a distinct bit; the newest has them all. */
	uint32_t all = 0;

	for (size_t i = 0; i < algo_kernel_rows; i++) {
		CU_ASSERT(strlen(algo_kernel_table[i].commit) >= 12);
		CU_ASSERT_EQUAL(all & algo_kernel_table[i].feature, 0u);
		all |= algo_kernel_table[i].feature;
	}
	algo_kernel_newest(&k);
	CU_ASSERT_EQUAL(k.features, all);
	CU_ASSERT_EQUAL(parsed("7.3").features, all);
}

SP_TEST(uname_releases_read_as_their_version)
{
	struct algo_kernel k;
	struct sp_err err = { 0 };

	k = parsed("6.1.0-28-amd64");
	CU_ASSERT_EQUAL(k.major, 6);
	CU_ASSERT_EQUAL(k.minor, 1);
	k = parsed("5.14.0-427.13.1.el9_4.x86_64");
	CU_ASSERT_EQUAL(k.minor, 14);
	CU_ASSERT_EQUAL(k.features, 0u);
	k = parsed("6.8.0-45-generic");
	CU_ASSERT(algo_kernel_has(&k, AK_ADVISOR));
	/* This machine's kernel reads as a supported version. */
	CU_ASSERT_EQUAL(algo_kernel_running(&k, &err), 0);
	CU_ASSERT(k.major >= 5);
}

SP_TEST(overrides_set_one_behaviour)
{
	struct algo_kernel k;
	char buf[128];

	k = parsed("6.6,checksum_first=1,ksm_zero_pages=0");
	CU_ASSERT(algo_kernel_has(&k, AK_CHECKSUM_FIRST));
	CU_ASSERT(!algo_kernel_has(&k, AK_KSM_ZERO_PAGES));
	CU_ASSERT(algo_kernel_has(&k, AK_PAGES_SCANNED));
	algo_kernel_format(&k, buf, sizeof(buf));
	CU_ASSERT_STRING_EQUAL(buf, "6.6,ksm_zero_pages=0,checksum_first=1");
	/* The formatted form parses back to the same kernel. */
	struct algo_kernel again = parsed(buf);

	CU_ASSERT_EQUAL(again.features, k.features);
	k = parsed("5.14.0-427.el9.x86_64,smart_scan=1");
	CU_ASSERT_EQUAL(k.features, (uint32_t)AK_SMART_SCAN);
	algo_kernel_format(&k, buf, sizeof(buf));
	CU_ASSERT_STRING_EQUAL(buf, "5.14,smart_scan=1");
	k = parsed("6.10");
	algo_kernel_describe(&k, buf, sizeof(buf));
	CU_ASSERT_STRING_EQUAL(buf, "6.10 (without checksum_first, thp_zero_remap)");
	algo_kernel_newest(&k);
	algo_kernel_describe(&k, buf, sizeof(buf));
	CU_ASSERT_STRING_EQUAL(buf, "6.18");
}

SP_TEST(counters_the_kernel_lacks_are_named)
{
	struct algo_kernel k = parsed("6.1");
	char buf[256] = "";

	CU_ASSERT(algo_kernel_offers(&k, "pages_sharing", buf, sizeof(buf)));
	CU_ASSERT(!algo_kernel_offers(&k, "pages_skipped", buf, sizeof(buf)));
	CU_ASSERT_PTR_NOT_NULL(strstr(buf, "Linux 6.1 has no pages_skipped"));
	CU_ASSERT_PTR_NOT_NULL(strstr(buf, "6.7"));
	CU_ASSERT_PTR_NOT_NULL(strstr(buf, "5e924ff54d08"));
	CU_ASSERT(!algo_kernel_offers(&k, "general_profit", buf, sizeof(buf)));
	CU_ASSERT(!algo_kernel_offers(&k, "smart_scan", buf, sizeof(buf)));
	k = parsed("6.6");
	CU_ASSERT(algo_kernel_offers(&k, "pages_scanned", buf, sizeof(buf)));
	CU_ASSERT(algo_kernel_offers(&k, "ksm_zero_pages", buf, sizeof(buf)));
	CU_ASSERT(!algo_kernel_offers(&k, "pages_skipped", buf, sizeof(buf)));
}

SP_TEST(bad_specs_are_refused_with_the_token)
{
	struct algo_kernel k;
	struct {
		const char *spec, *msg;
	} bad[] = {
		{ "", "expected a version" },
		{ "six", "expected a version" },
		{ "6", "expected MAJOR.MINOR" },
		{ "6.x", "expected MAJOR.MINOR" },
		{ "6.1x", "unexpected 'x'" },
		{ "4.19", "covers Linux 5.14" },
		{ "6.1,smart_scan", "is not behaviour=0" },
		{ "6.1,smart_scan=2", "is not behaviour=0" },
		{ "6.1,turbo=1", "no behaviour 'turbo'" },
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct sp_err err = { 0 };

		CU_ASSERT_EQUAL(algo_kernel_parse(&k, bad[i].spec, &err), SP_EINVAL);
		if (!strstr(err.msg, bad[i].msg))
			CU_FAIL(err.msg);
	}
}
