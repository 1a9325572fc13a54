/*
 * metrics.c - names and indexed access for struct metrics.
 */
#include "metrics.h"

const char *const metrics_names[METRICS_COUNT] = {
#define METRICS_X_NAME(name, doc) #name,
	METRICS_FIELDS(METRICS_X_NAME)
#undef METRICS_X_NAME
};

int64_t metrics_get(const struct metrics *m, int i)
{
	const int64_t *v = (const int64_t *)m; /* struct of int64_t only */

	return (i >= 0 && i < METRICS_COUNT) ? v[i] : 0;
}
