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
