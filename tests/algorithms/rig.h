/*
 * rig.h - one algorithm on a sim_mem backend, driven by hand (rig.c).
 */
#ifndef SP_TEST_RIG_H
#define SP_TEST_RIG_H

#include <stdbool.h>
#include <stdint.h>

#include "harness.h"
#include "passbk.h"
#include "sim.h"
#include "tracebuild.h"

struct rig {
	struct passbk pb;        /* first: the wrapper's ops count per page, optional uncounted checksum */
	struct tb tb; /* only its header is used */
	struct sim_mem *mem;
	struct backend in;       /* the simulated backend */
	const struct algo_ops *a;
	void *st;
	uint64_t now;
	struct sim_cost cost;
	bool offer_uncounted;    /* offer checksum_uncounted() to the algorithm */
	const char *kernel;      /* --kernel spec for rig_start (NULL: the newest) */
	struct algo_kernel k;
	bool offer_written;      /* offer written() (write tracking) to the algorithm */
	bool measure_cost;       /* the backend says cost_measured, as live memory's does */
	bool offer_unheard;      /* offer unheard_changes() (the pass-through offers none) */
	uint64_t written_calls, written_clean; /* written() calls, and "not written" answers */
	uint64_t *info_calls;    /* page_info() per page since start */
	uint64_t *hash_calls;    /* checksum() + checksum_uncounted() per page */
	int64_t last_hashed;     /* page of the last checksum call */
	uint64_t uncounted;
};

/* nguests guests of pages pages; edit r->tb.h.guests, r->offer_* and r->kernel before rig_start. */
void rig_init(struct rig *r, const char *algo, uint32_t nguests, uint64_t pages);
/* Creates the backend and the algorithm; sets: NULL-terminated "key=value" list. */
void rig_start(struct rig *r, const char *const *sets);
/* Applies one page's new state (content 0: zero page) and tells the algorithm as sim_run would. */
void rig_record(struct rig *r, uint32_t g, uint64_t page, uint64_t content, bool present);
void rig_write(struct rig *r, uint32_t g, uint64_t page, uint64_t content);
/* rig_write() of a page that is part of a transparent huge page. */
void rig_write_huge(struct rig *r, uint32_t g, uint64_t page, uint64_t content);
void rig_metrics(struct rig *r, struct metrics *m);
/* One batch at r->now; the clock then moves by the sleep plus 1 ms.  Returns the sleep. */
uint64_t rig_batch(struct rig *r);
void rig_free(struct rig *r);

#endif
