/*
 * pagehash.h - fingerprints of page contents for recorded and imported
 * traces: XXH3-128 of the bytes, keyed by default with a random per-trace
 * secret that is never stored (so equality inside one trace is kept, but
 * nobody can test a trace for a page of known content), unkeyed on request.
 * Zero-filled pages get the reserved fingerprint {0, 0} and the ZERO flag.
 */
#ifndef SP_PAGEHASH_H
#define SP_PAGEHASH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "fingerprint.h"
#include "sp_error.h"

#define TRACE_HASH_SECRET 192 /* bytes of secret (XXH3 needs at least 136) */

struct trace_hasher {
	bool keyed;
	uint8_t secret[TRACE_HASH_SECRET];
};

/* keyed: draw a fresh secret with getrandom(); else plain XXH3-128. */
int trace_hasher_init(struct trace_hasher *h, bool keyed, struct sp_err *err);
/* Wipes the secret. */
void trace_hasher_release(struct trace_hasher *h);
/* true iff len bytes at p are all zero (len a multiple of 64). */
bool trace_page_is_zero(const void *p, size_t len);
/*
 * Fingerprint of a page: sets *zero and returns {0,0} for a zero-filled page;
 * else the (keyed) XXH3-128, never {0,0}.
 */
struct sp_fp trace_page_fp(const struct trace_hasher *h, const void *p, size_t len, bool *zero);

#endif
