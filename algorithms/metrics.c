/*
 * metrics.c - names and indexed access for struct metrics, and the
 * time-series CSV every writer shares.
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

int metrics_csv_header(FILE *f, bool tunables)
{
	return metrics_csv_header_shown(f, tunables, NULL);
}

int metrics_csv_row(FILE *f, uint64_t time_ms, const struct metrics *m,
		    const struct metrics_tunables *tu)
{
	return metrics_csv_row_shown(f, time_ms, m, tu, NULL);
}

int metrics_csv_header_shown(FILE *f, bool tunables, const bool *shown)
{
	fputs("time_ms", f);
	for (int i = 0; i < METRICS_COUNT; i++) {
		if (!shown || shown[i])
			fprintf(f, ",%s", metrics_names[i]);
	}
	if (tunables)
		fputs(",run,pages_to_scan,sleep_millisecs", f);
	return fputc('\n', f) == EOF ? EOF : 0;
}

int metrics_csv_row_shown(FILE *f, uint64_t time_ms, const struct metrics *m,
			  const struct metrics_tunables *tu, const bool *shown)
{
	fprintf(f, "%llu", (unsigned long long)time_ms);
	for (int i = 0; i < METRICS_COUNT; i++) {
		if (!shown || shown[i])
			fprintf(f, ",%lld", (long long)metrics_get(m, i));
	}
	if (tu)
		fprintf(f, ",%lld,%lld,%lld", (long long)tu->run, (long long)tu->pages_to_scan,
			(long long)tu->sleep_millisecs);
	return fputc('\n', f) == EOF ? EOF : 0;
}
