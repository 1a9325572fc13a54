/*
 * cost.c - the CPU cost model: nanoseconds per counted operation.
 *
 * The defaults are derived from what ksmd measured on the development
 * machine (KSM-FACTS.md: 124k-146k pages per CPU-second when every page is
 * unique, 365k-400k when 90% are copies; about 3 us per merge): a visit of an
 * unmerged page costs a page-table walk and rmap lookup, a checksum is an
 * xxhash of 4 KiB, a tree step is one early-exit memcmp with a cache miss.
 * `sim calibrate` (see the KSM model) measures them on real memory; pass
 * measured values with --cost visit=...,checksum=....
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
	c->ns[BK_COST_VISIT] = 1500;
	c->ns[BK_COST_CHECKSUM] = 600;
	c->ns[BK_COST_COMPARE] = 250;
	c->ns[BK_COST_TREE_STEP] = 150;
	c->ns[BK_COST_MERGE] = 3000;
	c->ns[BK_COST_COW_BREAK] = 3500;
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
