/*
 * mutate_trace.c - writes random mutants of a trace for the mutation test
 * (tests/cli/mutation.sh): bit flips, truncations and splices (a range of
 * the file, or of a second file, copied over or into another place), each
 * written twice over when asked - as mutated, and with every chunk's
 * checksum recomputed so that the mutation reaches the parsers behind it.
 *
 *   mutate_trace SEED COUNT IN [DONOR] OUTDIR
 * writes OUTDIR/m-<i>.sptrace for i in 0..COUNT-1 and prints one line per
 * mutant: its name and what was done (to reproduce a finding).
 */
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "sp_util.h"

static uint8_t *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	uint8_t *buf;
	long n;

	if (!f || fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) < 0) {
		perror(path);
		exit(1);
	}
	rewind(f);
	buf = malloc((size_t)n + 1);
	if (!buf || fread(buf, 1, (size_t)n, f) != (size_t)n) {
		perror(path);
		exit(1);
	}
	fclose(f);
	*len = (size_t)n;
	return buf;
}

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* Recomputes the checksum of every whole chunk after the magic and version. */
static void fix_checksums(uint8_t *b, size_t len)
{
	size_t off = 12;

	while (off + 8 <= len) {
		uint64_t len_payload = get32(b + off + 4), sum;

		if (off + 8 + len_payload + 8 > len)
			break;
		sum = XXH64(b + off, 8 + len_payload, 0);
		for (int i = 0; i < 8; i++)
			b[off + 8 + len_payload + i] = (uint8_t)(sum >> (8 * i));
		off += 8 + len_payload + 8;
	}
}

int main(int argc, char **argv)
{
	uint64_t rng, count;
	uint8_t *in, *donor, *out;
	size_t len, dlen;
	const char *dir;

	if (argc != 5 && argc != 6) {
		fprintf(stderr, "usage: mutate_trace SEED COUNT IN [DONOR] OUTDIR\n");
		return 2;
	}
	rng = strtoull(argv[1], NULL, 10);
	count = strtoull(argv[2], NULL, 10);
	in = slurp(argv[3], &len);
	donor = argc == 6 ? slurp(argv[4], &dlen) : in;
	if (argc == 5)
		dlen = len;
	dir = argv[argc - 1];
	out = malloc(len + dlen + 16);
	if (!out || len < 16)
		return 1;
	for (uint64_t i = 0; i < count; i++) {
		uint64_t r = sp_splitmix64(&rng);
		size_t n = len, a, b, c;
		char what[160], path[4096];
		bool fix = (r >> 8) & 1;
		FILE *f;

		memcpy(out, in, len);
		switch (r % 4) {
		case 0: /* flips */
		case 3: {
			int k = 1 + (int)(sp_splitmix64(&rng) % 8);

			for (int j = 0; j < k; j++) {
				a = 8 + sp_splitmix64(&rng) % (len - 8);
				out[a] ^= (uint8_t)(1u << (sp_splitmix64(&rng) % 8));
			}
			snprintf(what, sizeof(what), "%d bit flips", k);
			break;
		}
		case 1: /* truncation */
			n = 12 + sp_splitmix64(&rng) % (len - 12);
			snprintf(what, sizeof(what), "truncated to %zu bytes", n);
			break;
		default: { /* splice: donor[a, a+c) over or into out at b */
			bool insert = sp_splitmix64(&rng) & 1;

			c = 1 + sp_splitmix64(&rng) % 64;
			a = sp_splitmix64(&rng) % (dlen - (c < dlen ? c : dlen - 1));
			if (a + c > dlen)
				c = dlen - a;
			b = 12 + sp_splitmix64(&rng) % (len - 12);
			if (insert) {
				memmove(out + b + c, out + b, len - b);
				memcpy(out + b, donor + a, c);
				n = len + c;
			} else {
				if (b + c > len)
					c = len - b;
				memcpy(out + b, donor + a, c);
			}
			snprintf(what, sizeof(what), "splice %s: %zu bytes from %zu at %zu",
				 insert ? "inserted" : "over", c, a, b);
			break;
		}
		}
		if (fix)
			fix_checksums(out, n);
		snprintf(path, sizeof(path), "%s/m-%" PRIu64 ".sptrace", dir, i);
		f = fopen(path, "wb");
		if (!f || fwrite(out, 1, n, f) != n || fclose(f) != 0) {
			perror(path);
			return 1;
		}
		printf("m-%" PRIu64 " %s%s\n", i, what, fix ? ", checksums fixed" : "");
	}
	free(out);
	if (donor != in)
		free(donor);
	free(in);
	return 0;
}
