/*
 * example.c - samepage-example: the samepage library (real/samepage.h) in a
 * few lines.  Allocates three 16 MiB regions whose pages hold only 64
 * different contents, registers them, lets the engine (the ksm algorithm,
 * scanning fast) merge them, prints what was saved, then writes to some
 * merged pages and shows the copy-on-write breaks and that every byte is
 * where it was written.  Needs root (userfaultfd write protection).
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "samepage.h"

#define REGIONS 3
#define REGION_BYTES (16u << 20)
#define CONTENTS 64
#define WRITES 1000

static void fill(uint8_t *page, unsigned content)
{
	for (unsigned i = 0; i < 4096; i++)
		page[i] = (uint8_t)(content * 31 + i * 7);
}

static void pause_ms(unsigned ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000 };

	nanosleep(&ts, NULL);
}

static int wait_settled(struct samepage *sp, struct samepage_stats *st, struct sp_err *err)
{
	int64_t last = -1;

	for (int i = 0; i < 100; i++) { /* at most 10 s */
		pause_ms(100);
		if (samepage_read(sp, st, err) < 0)
			return -1;
		if (st->m.pages_sharing == last && st->m.full_scans >= 3)
			return 0;
		last = st->m.pages_sharing;
	}
	return 0;
}

int main(void)
{
	struct samepage *sp;
	struct samepage_stats st;
	struct sp_err err = { 0 };
	uint8_t *r[REGIONS];
	size_t pages = REGION_BYTES / 4096;
	unsigned seed = 12345, bad = 0;

	for (int g = 0; g < REGIONS; g++) {
		r[g] = mmap(NULL, REGION_BYTES, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (r[g] == MAP_FAILED) {
			perror("mmap");
			return 1;
		}
		for (size_t p = 0; p < pages; p++)
			fill(r[g] + p * 4096, (unsigned)((p * 2654435761u + (unsigned)g) % CONTENTS));
	}
	if (samepage_new(&sp, &err) < 0)
		goto fail;
	for (int g = 0; g < REGIONS; g++) {
		if (samepage_register(sp, r[g], REGION_BYTES, -1, 0, &err) < 0)
			goto fail;
	}
	if (samepage_set(sp, "pages_to_scan=20000", &err) < 0 ||
	    samepage_set(sp, "sleep_millisecs=10", &err) < 0 || samepage_start(sp, &err) < 0)
		goto fail;
	printf("registered %d x %u MiB = %zu pages holding %d different contents\n", REGIONS,
	       REGION_BYTES >> 20, pages * REGIONS, CONTENTS);
	if (wait_settled(sp, &st, &err) < 0)
		goto fail;
	printf("merged:  pages_shared %lld  pages_sharing %lld (saved %.1f MiB)  resident %.1f MiB of %u MiB\n",
	       (long long)st.m.pages_shared, (long long)st.m.pages_sharing,
	       (double)st.m.pages_sharing * 4096 / (1 << 20),
	       (double)st.measured_rss_bytes / (1 << 20), REGIONS * (REGION_BYTES >> 20));
	printf("         %lld merges, engine CPU %.3f s\n", (long long)st.m.merges,
	       (double)st.cpu_ns / 1e9);

	/* Write to some merged pages: each gets its own copy, the others stay. */
	for (int i = 0; i < WRITES; i++) {
		int g = (int)(rand_r(&seed) % REGIONS);
		size_t p = (size_t)rand_r(&seed) % pages;

		memset(r[g] + p * 4096, 0xA5, 64);
	}
	pause_ms(1500);
	if (samepage_read(sp, &st, &err) < 0)
		goto fail;
	printf("after %d writes: cow_breaks %lld  pages_sharing %lld  resident %.1f MiB\n", WRITES,
	       (long long)st.m.cow_breaks, (long long)st.m.pages_sharing,
	       (double)st.measured_rss_bytes / (1 << 20));
	if (samepage_stop(sp, true, &err) < 0)
		goto fail;
	/* Check every byte: written heads are 0xA5, the rest the original content. */
	seed = 12345;
	for (int i = 0; i < WRITES; i++) {
		int g = (int)(rand_r(&seed) % REGIONS);
		size_t p = (size_t)rand_r(&seed) % pages;

		for (int k = 0; k < 64; k++)
			bad += r[g][p * 4096 + (size_t)k] != 0xA5;
	}
	for (int g = 0; g < REGIONS; g++) {
		for (size_t p = 0; p < pages; p++) {
			uint8_t want[4096];

			fill(want, (unsigned)((p * 2654435761u + (unsigned)g) % CONTENTS));
			bad += memcmp(r[g] + p * 4096 + 64, want + 64, 4096 - 64) != 0;
		}
	}
	printf("integrity: %s\n", bad ? "FAILED" : "every byte as written");
	samepage_free(sp);
	return bad ? 1 : 0;
fail:
	fprintf(stderr, "samepage-example: %s\n", err.msg);
	return err.code == SP_EPERM || err.code == SP_ENOTSUP ? 4 : 1;
}
