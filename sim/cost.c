/*
 * cost.c - the CPU cost model: nanoseconds per counted operation.
 *
 * The defaults were measured by `sim calibrate` on the development machine
 * (Debian 12, kernel 6.18, 2 cores; three runs on 2 x 65536 pages, medians
 * rounded): ksmd pays ~430 ns to visit a page it has nothing to do with, a
 * checksum (XXH64 of 4 KiB) ~600 ns, a full 4 KiB compare ~600 ns, a tree
 * step (one node, its early-exit memcmp and cache misses) ~400 ns, a merge
 * ~1550 ns beyond those, and a write to a merged page ~3900 ns to copy it.
 * Together they give ksmd's measured 120k-150k unique pages per CPU-second.
 * Measure your own host with `sim calibrate` and pass the result with
 * --cost visit=...,checksum=....
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sim.h"

static const char *const cost_names[BK_COST__COUNT] = {
	[BK_COST_VISIT] = "visit",
	[BK_COST_CHECKSUM] = "checksum",
	[BK_COST_COMPARE] = "compare",
	[BK_COST_TREE_STEP] = "tree_step",
	[BK_COST_MERGE] = "merge",
	[BK_COST_COW_BREAK] = "cow_break",
};

const char *sim_cost_name(enum bk_cost k)
{
	return (unsigned)k < BK_COST__COUNT ? cost_names[k] : "?";
}

void sim_cost_defaults(struct sim_cost *c)
{
	c->ns[BK_COST_VISIT] = 430;
	c->ns[BK_COST_CHECKSUM] = 600;
	c->ns[BK_COST_COMPARE] = 600;
	c->ns[BK_COST_TREE_STEP] = 400;
	c->ns[BK_COST_MERGE] = 1550;
	c->ns[BK_COST_COW_BREAK] = 3900;
}

double sim_cost_scanner_ns(const struct sim_cost *c, const uint64_t *counts)
{
	double ns = 0;

	for (int k = 0; k < BK_COST__COUNT; k++) {
		if (k != BK_COST_COW_BREAK) /* a COW break is the writer's time, not the scanner's */
			ns += c->ns[k] * (double)counts[k];
	}
	return ns;
}

int sim_cost_parse(struct sim_cost *c, const char *spec, struct sp_err *err)
{
	char *copy = strdup(spec), *save = NULL, *tok;
	int rc = 0;

	if (!copy)
		return sp_err_set(err, SP_ENOMEM, "out of memory");
	for (tok = strtok_r(copy, ",", &save); tok && rc == 0; tok = strtok_r(NULL, ",", &save)) {
		char *eq = strchr(tok, '='), *end;
		double v;
		int k;

		if (!eq) {
			rc = sp_err_set(err, SP_EINVAL, "--cost: '%s' is not name=ns", tok);
			break;
		}
		*eq = '\0';
		for (k = 0; k < BK_COST__COUNT && strcmp(cost_names[k], tok) != 0; k++)
			;
		if (k == BK_COST__COUNT) {
			rc = sp_err_set(err, SP_EINVAL,
					"--cost: unknown operation '%s'; valid: visit, checksum, compare, tree_step, merge, cow_break",
					tok);
			break;
		}
		errno = 0;
		v = strtod(eq + 1, &end);
		if (eq[1] == '\0' || *end || errno || !(v >= 0 && v <= 1e9))
			rc = sp_err_set(err, SP_EINVAL, "--cost: %s=%s is not a time in ns (0..1e9)", tok,
					eq + 1);
		else
			c->ns[k] = v;
	}
	free(copy);
	return rc;
}
