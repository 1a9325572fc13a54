/*
 * pagehash.c - implements the page fingerprints of pagehash.h.
 *
 * Invariants: a zero-filled page always gets {0,0} and the zero flag; any
 * other page gets a non-{0,0} fingerprint (the one-in-2^128 hash of {0,0} is
 * bumped to {1,0}); a keyed hasher's secret comes from getrandom() and lives
 * only in memory, wiped on release.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <string.h>
#include <sys/random.h>
#include <xxhash.h>

#include "pagehash.h"

int trace_hasher_init(struct trace_hasher *h, bool keyed, struct sp_err *err)
{
	size_t got = 0;

	memset(h, 0, sizeof(*h));
	h->keyed = keyed;
	while (keyed && got < sizeof(h->secret)) {
		ssize_t n = getrandom(h->secret + got, sizeof(h->secret) - got, 0);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return sp_err_set(err, SP_EIO, "getrandom: %s", strerror(errno));
		got += (size_t)n;
	}
	return 0;
}

void trace_hasher_release(struct trace_hasher *h)
{
	volatile uint8_t *s = h->secret;

	for (size_t i = 0; i < sizeof(h->secret); i++)
		s[i] = 0;
}

bool trace_page_is_zero(const void *p, size_t len)
{
	const uint64_t *w = p;

	for (size_t i = 0; i < len / 8; i += 8) {
		if (w[i] | w[i + 1] | w[i + 2] | w[i + 3] | w[i + 4] | w[i + 5] | w[i + 6] | w[i + 7])
			return false;
	}
	return true;
}

struct sp_fp trace_page_fp(const struct trace_hasher *h, const void *p, size_t len, bool *zero)
{
	XXH128_hash_t x;
	struct sp_fp fp;

	*zero = trace_page_is_zero(p, len);
	if (*zero)
		return (struct sp_fp){ 0, 0 };
	x = h->keyed ? XXH3_128bits_withSecret(p, len, h->secret, sizeof(h->secret))
		     : XXH3_128bits(p, len);
	fp.lo = x.low64;
	fp.hi = x.high64;
	if (sp_fp_is_zero(fp))
		fp.lo = 1;
	return fp;
}
