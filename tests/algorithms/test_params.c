/*
 * test_params.c - the registry and parameter parsing: every algorithm
 * honours the contract's shape; key=value is checked against name, type
 * and range with messages that list what is valid.
 */
#include <string.h>

#include "algorithm.h"
#include "harness.h"

SP_TEST(registry_is_well_formed)
{
	CU_ASSERT(algo_count() >= 2);
	for (size_t i = 0; i < algo_count(); i++) {
		const struct algo_ops *a = algo_at(i);

		CU_ASSERT_EQUAL(a->version, ALGO_OPS_VERSION);
		CU_ASSERT(a->name && a->description && strlen(a->description) > 10);
		CU_ASSERT(a->create && a->destroy && a->batch && a->page_changed && a->metrics);
		CU_ASSERT(a->nparams <= ALGO_MAX_PARAMS);
		CU_ASSERT_PTR_EQUAL(algo_find(a->name), a);
		for (uint32_t k = 0; k < a->nparams; k++) {
			CU_ASSERT(a->params[k].min <= a->params[k].def);
			CU_ASSERT(a->params[k].def <= a->params[k].max);
			CU_ASSERT_EQUAL(algo_param_index(a, a->params[k].name), (int)k);
		}
	}
	CU_ASSERT_PTR_NULL(algo_find("nonesuch"));
	CU_ASSERT_PTR_NULL(algo_at(algo_count()));
}

SP_TEST(set_checks_name_type_range)
{
	const struct algo_ops *z = algo_find("zero");
	struct algo_params p;
	struct sp_err err = { 0 };
	char buf[256];

	CU_ASSERT_PTR_NOT_NULL_FATAL(z);
	algo_params_defaults(z, &p);
	CU_ASSERT_EQUAL(algo_params_set(z, &p, "pages_to_scan=500", &err), 0);
	CU_ASSERT_EQUAL(p.v[algo_param_index(z, "pages_to_scan")], 500);
	CU_ASSERT_EQUAL(algo_params_set(z, &p, "bogus=1", &err), SP_EINVAL);
	CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "valid: pages_to_scan, sleep_millisecs"));
	sp_err_clear(&err);
	CU_ASSERT_EQUAL(algo_params_set(z, &p, "pages_to_scan=0", &err), SP_EINVAL);
	CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "out of range"));
	sp_err_clear(&err);
	CU_ASSERT_EQUAL(algo_params_set(z, &p, "pages_to_scan=1.5", &err), SP_EINVAL);
	CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "integer"));
	sp_err_clear(&err);
	CU_ASSERT_EQUAL(algo_params_set(z, &p, "pages_to_scan=abc", &err), SP_EINVAL);
	sp_err_clear(&err);
	CU_ASSERT_EQUAL(algo_params_set(z, &p, "pages_to_scan", &err), SP_EINVAL);
	sp_err_clear(&err);
	CU_ASSERT_EQUAL(algo_params_set(z, &p, "pages_to_scan=", &err), SP_EINVAL);
	CU_ASSERT_EQUAL(p.v[algo_param_index(z, "pages_to_scan")], 500); /* unchanged by failures */
	algo_params_format(z, &p, buf, sizeof(buf));
	CU_ASSERT_STRING_EQUAL(buf, "pages_to_scan=500 sleep_millisecs=20");
}
