/*
 * faultbk.h - a fault-injecting backend for tests, in the spirit of SQLite's
 * src/test_pcache.c: a seeded wrapper around any backend that refuses
 * merges the way a real backend may (faultbk.c).
 *
 * Each merge call (merge_pages, merge_frame, merge_zero) is refused, before
 * it reaches the backend below and so with nothing changed, with
 * probability rate, by one of:
 *   SP_ECHANGED  the content changed between the compare and the merge
 *                (merge_frame: the frame went stale, its last mapper gone);
 *   SP_ELIMIT    a resource limit (the live backend's vm.max_map_count);
 *   SP_ENOMEM    a new shared frame could not be allocated (merge_pages).
 * Everything else is passed through unchanged, so the state an algorithm
 * sees stays the truth and its counters must stay exact.
 */
#ifndef SP_TEST_FAULTBK_H
#define SP_TEST_FAULTBK_H

#include <stdint.h>

#include "backend.h"
#include "passbk.h"

enum faultbk_kind { FAULT_CHANGED, FAULT_STALE, FAULT_LIMIT, FAULT_NOMEM, FAULT__COUNT };

struct faultbk {
	struct passbk pb;                  /* first: the wrapped backend, forwarded */
	uint64_t rng;
	double rate;                       /* probability that a merge call is refused */
	uint64_t calls;                    /* merge calls seen */
	uint64_t injected[FAULT__COUNT];   /* refusals made, by kind */
};

/* Wraps in; seed fixes the sequence of refusals. */
void faultbk_init(struct faultbk *f, struct backend in, uint64_t seed, double rate);
struct backend faultbk_backend(struct faultbk *f);
uint64_t faultbk_total(const struct faultbk *f);

#endif
