/*
 * fuzz_kv.c - libFuzzer harness for the KEY=VALUE reader (sim/kvfile.c) that
 * reads plan files and samepaged's configuration: any text parses to a list
 * or to an error naming its line.
 */
#include "fuzz_common.h"
#include "kvfile.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = malloc(size + 1);
	struct sim_kv_file f;
	struct sp_err err = { 0 };

	if (!text)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';
	if (sim_kv_parse(&f, "fuzz.conf", text, &err) == 0) {
		(void)sim_kv_get(&f, "KSM_MONITOR_INTERVAL");
		sim_kv_release(&f);
	}
	free(text);
	return 0;
}
