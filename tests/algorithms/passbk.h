/*
 * passbk.h - a pass-through backend for tests: every member forwards to the
 * backend it wraps (passbk.c).  A test wrapper embeds struct passbk as its
 * first member, calls passbk_init() and replaces the members it watches or
 * changes (the checks of test_conformance.c, the faults of faultbk.h, the
 * counting rig of rig.h); the impl its members receive is the wrapper.
 */
#ifndef SP_TEST_PASSBK_H
#define SP_TEST_PASSBK_H

#include "backend.h"

struct passbk {
	struct backend in;      /* the backend wrapped */
	struct backend_ops ops; /* what the wrapper offers: in's, forwarded, until replaced */
};

/* content and checksum_uncounted stay NULL when in has none. */
void passbk_init(struct passbk *w, struct backend in);

static inline struct backend passbk_backend(struct passbk *w)
{
	struct backend b = { &w->ops, w };

	return b;
}

#endif
