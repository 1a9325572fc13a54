/*
 * fuzz_trace.c - libFuzzer harness for the trace reader on every path a
 * command takes it: trace check (trace_check), info/export (the streaming
 * reader, snapshot by snapshot), compare/sweep (trace_mem_load and a replay
 * from memory), run (sim_run: the checking pass, the layout, the replay)
 * with the ksm model and spread writes.  Any crash, sanitizer report, leak
 * or hang is a finding; an error return is the expected answer to garbage.
 */
#include "fuzz_common.h"
#include "sim.h"
#include "trace.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char path[256];
	struct sp_err err = { 0 };
	struct trace_reader *r;
	struct trace_mem *tm;
	int rc;

	fuzz_spill("in.sptrace", data, size, path, sizeof(path));
	(void)trace_check(path, NULL, NULL, &err);
	sp_err_clear(&err);
	if (trace_reader_open(&r, path, &err) == 0) {
		struct trace_snapshot s;
		struct trace_record rec;

		while ((rc = trace_reader_next_snapshot(r, &s, &err)) > 0)
			while ((rc = trace_reader_next_record(r, &rec, &err)) > 0)
				;
		trace_reader_close(r);
	}
	sp_err_clear(&err);
	if (trace_mem_load(&tm, path, NULL, NULL, &err) == 0) {
		struct trace_mem_cursor c;
		struct trace_source src;
		struct sim_config cfg;
		struct sim_layout lay;
		struct sim_result res;

		trace_mem_cursor_init(&c, tm);
		src = trace_mem_source(&c);
		int ok = sim_layout_scan(&lay, &src, &err) == 0;

		trace_mem_cursor_release(&c);
		if (ok) {
			sim_config_defaults(&cfg, algo_find("zero"));
			cfg.duration_ms = 5000;
			cfg.layout = &lay;
			trace_mem_cursor_init(&c, tm);
			src = trace_mem_source(&c);
			(void)sim_run_source(&src, &cfg, NULL, NULL, NULL, &res, &err);
			trace_mem_cursor_release(&c);
			sim_layout_release(&lay);
		}
		trace_mem_free(tm);
	}
	{
		struct sim_config cfg;
		struct sim_result res;

		sim_config_defaults(&cfg, algo_find("ksm"));
		cfg.duration_ms = 5000;
		cfg.spread_writes = size & 1;
		sp_err_clear(&err);
		(void)sim_run(path, &cfg, NULL, NULL, NULL, &res, &err);
	}
	return 0;
}
