/*
 * summary.c - the estimate of distinct contents a version-2 trace's summary
 * holds (FORMAT.md: SUMM), shared by the writer, the reader's check and sim's
 * layout pass, so that all three compute it alike.
 *
 * Distinct (fingerprint, domain) pairs of the present non-zero records are
 * estimated by HyperLogLog (Flajolet et al. 2007: 2^14 one-byte registers,
 * each the most leading zeros seen among the hashes that fall in it;
 * standard error 1.04 / sqrt(2^14) = 0.8%): sim sizes its content-id table
 * with it once instead of doubling it (bench/README.md, issue 14).
 */
#include <math.h>
#include <stdlib.h>

#include "chunk.h"
#include "trace.h"

/* A 64-bit hash of (fp, domain): the fingerprint is a hash already, mixed so any bits serve. */
uint64_t trace_pair_hash(struct sp_fp fp, uint32_t domain)
{
	uint64_t h = fp.hi ^ ((fp.lo ^ domain) * 0x9e3779b97f4a7c15ULL);

	h ^= h >> 33; /* MurmurHash3's 64-bit finaliser */
	h *= 0xff51afd7ed558ccdULL;
	h ^= h >> 33;
	h *= 0xc4ceb9fe1a85ec53ULL;
	return h ^ (h >> 33);
}

/* The estimate of the distinct hashes added; linear counting while small (as the paper). */
uint64_t trace_hll_count(const uint8_t *reg)
{
	double m = TRACE_HLL_REGS, z = 0, e;
	unsigned empty = 0;

	for (unsigned j = 0; j < TRACE_HLL_REGS; j++) {
		z += ldexp(1.0, -reg[j]);
		empty += reg[j] == 0;
	}
	e = 0.7213 / (1 + 1.079 / m) * m * m / z;
	if (e <= 2.5 * m && empty)
		e = m * log(m / empty);
	return (uint64_t)llround(e);
}

int trace_wholes_init(struct trace_wholes *c, uint32_t nguests)
{
	c->snap_pages = calloc(nguests ? nguests : 1, sizeof(*c->snap_pages));
	c->touched = calloc(nguests ? nguests : 1, sizeof(*c->touched));
	c->complete = calloc(nguests ? nguests : 1, 1);
	c->n = 0;
	if (c->snap_pages && c->touched && c->complete)
		return 0;
	trace_wholes_free(c);
	return -1;
}

void trace_wholes_free(struct trace_wholes *c)
{
	free(c->snap_pages);
	free(c->touched);
	free(c->complete);
	c->snap_pages = NULL;
	c->touched = NULL;
	c->complete = NULL;
}

void trace_wholes_end(struct trace_wholes *c, const struct trace_header *h)
{
	for (uint32_t i = 0; i < c->n; i++) {
		uint32_t g = c->touched[i];

		if (c->snap_pages[g] == h->guests[g].pages)
			c->complete[g] = 1;
		c->snap_pages[g] = 0;
	}
	c->n = 0;
}
