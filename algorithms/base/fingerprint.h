/*
 * fingerprint.h - the 128-bit page content fingerprint.
 *
 * A trace stores, for every present page, a 128-bit fingerprint of its 4 KiB
 * of content (XXH3-128 of the bytes, keyed by a per-trace salt when recorded
 * from live memory; drawn at random by the synthetic generator).  Equal
 * fingerprints stand for equal content; with 2^24 pages on a host the chance
 * of one false match is about 2^-80.  Zero-filled pages carry the reserved
 * fingerprint {0, 0}, so "is zero" is a flag, not a hash comparison.
 */
#ifndef SP_FINGERPRINT_H
#define SP_FINGERPRINT_H

#include <stdbool.h>
#include <stdint.h>

struct sp_fp {
	uint64_t lo;
	uint64_t hi;
};

static inline bool sp_fp_eq(struct sp_fp a, struct sp_fp b)
{
	return a.lo == b.lo && a.hi == b.hi;
}

/* Total order on content: what the kernel's memcmp() order is to ksmd. */
static inline int sp_fp_cmp(struct sp_fp a, struct sp_fp b)
{
	if (a.hi != b.hi)
		return a.hi < b.hi ? -1 : 1;
	if (a.lo != b.lo)
		return a.lo < b.lo ? -1 : 1;
	return 0;
}

static inline bool sp_fp_is_zero(struct sp_fp a)
{
	return a.lo == 0 && a.hi == 0;
}

/*
 * The 32-bit "cheap checksum" a scanner sees (the kernel's xxhash32 of the
 * page): derived from the fingerprint so equal content gives equal checksums.
 */
static inline uint32_t sp_fp_checksum(struct sp_fp a)
{
	/* The constant keeps a zero page's checksum non-zero, as xxhash's is. */
	uint64_t x = (a.lo ^ (a.hi * 0x9e3779b97f4a7c15ULL) ^ 0x2545f4914f6cdd1dULL) *
		     0xff51afd7ed558ccdULL;

	return (uint32_t)(x ^ (x >> 32));
}

#endif
