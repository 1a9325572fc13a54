/*
 * fuzz_elf.c - libFuzzer harness for the QEMU ELF core importer: the
 * validation of trace_elf_open and a whole import into a trace, which is
 * then checked (an importer must never write a trace its reader refuses).
 */
#include "fuzz_common.h"
#include "import_elf.h"
#include "trace.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char in[256], out[256];
	struct sp_err err = { 0 };
	struct trace_elf e;
	struct trace_import_input input;
	struct trace_import_opts o = { .interval_ms = 1000, .unkeyed = true, .mode = 0600 };

	fuzz_spill("in.core", data, size, in, sizeof(in));
	fuzz_path("out.sptrace", out, sizeof(out));
	if (trace_elf_open(&e, in, &err) == 0)
		trace_elf_close(&e);
	input.path = in;
	input.guest = "g";
	sp_err_clear(&err);
	unlink(out);
	if (trace_import_qemu_elf(out, &input, 1, &o, &err) == 0) {
		sp_err_clear(&err);
		if (trace_check(out, NULL, NULL, &err) != 0) {
			fprintf(stderr, "the importer wrote a trace its reader refuses: %s\n", err.msg);
			abort();
		}
	}
	return 0;
}
