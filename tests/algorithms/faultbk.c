/*
 * faultbk.c - implements the fault-injecting backend of faultbk.h: a
 * pass-through backend (passbk.h) whose merge calls draw from a splitmix64
 * stream and refuse with the drawn fault.
 */
#include <string.h>

#include "faultbk.h"
#include "sp_error.h"
#include "sp_util.h"

static struct faultbk *fb(void *impl) { return impl; }

/* 0: go ahead; else the refusal drawn among the kinds allowed (a bit each). */
static int draw(struct faultbk *f, unsigned allowed)
{
	static const int code[FAULT__COUNT] = { SP_ECHANGED, SP_ECHANGED, SP_ELIMIT, SP_ENOMEM };
	uint64_t x = sp_splitmix64(&f->rng);
	unsigned n = 0, k, pick;

	f->calls++;
	if ((double)(x >> 11) / 9007199254740992.0 >= f->rate)
		return 0;
	for (k = 0; k < FAULT__COUNT; k++)
		n += (allowed >> k) & 1u;
	pick = (unsigned)(sp_splitmix64(&f->rng) % n);
	for (k = 0; k < FAULT__COUNT; k++) {
		if (((allowed >> k) & 1u) && pick-- == 0)
			break;
	}
	f->injected[k]++;
	return code[k];
}

#define KIND(k) (1u << (k))

static int f_merge_pages(void *impl, bk_page p, bk_page keep, bk_frame *out)
{
	struct faultbk *f = fb(impl);
	int rc = draw(f, KIND(FAULT_CHANGED) | KIND(FAULT_LIMIT) | KIND(FAULT_NOMEM));

	return rc ? rc : f->pb.in.ops->merge_pages(f->pb.in.impl, p, keep, out);
}

static int f_merge_frame(void *impl, bk_page p, bk_frame fr)
{
	struct faultbk *f = fb(impl);
	int rc = draw(f, KIND(FAULT_CHANGED) | KIND(FAULT_STALE) | KIND(FAULT_LIMIT));

	return rc ? rc : f->pb.in.ops->merge_frame(f->pb.in.impl, p, fr);
}

static int f_merge_zero(void *impl, bk_page p)
{
	struct faultbk *f = fb(impl);
	int rc = draw(f, KIND(FAULT_CHANGED) | KIND(FAULT_LIMIT));

	return rc ? rc : f->pb.in.ops->merge_zero(f->pb.in.impl, p);
}

void faultbk_init(struct faultbk *f, struct backend in, uint64_t seed, double rate)
{
	memset(f, 0, sizeof(*f));
	passbk_init(&f->pb, in);
	f->rng = seed;
	f->rate = rate;
	f->pb.ops.merge_pages = f_merge_pages;
	f->pb.ops.merge_frame = f_merge_frame;
	f->pb.ops.merge_zero = f_merge_zero;
}

struct backend faultbk_backend(struct faultbk *f)
{
	return passbk_backend(&f->pb);
}

uint64_t faultbk_total(const struct faultbk *f)
{
	uint64_t n = 0;

	for (int k = 0; k < FAULT__COUNT; k++)
		n += f->injected[k];
	return n;
}
