/*
 * cost.c - the CPU cost model: nanoseconds per counted operation, and the
 * host's costs file that `sim calibrate --save` writes.
 *
 * The defaults (sim_cost_defaults) are `sim calibrate`'s medians on the
 * development machine, quiet (Debian 12, kernel 6.18, 2 cores;
 * bench/README.md, "bench_cost.sh", third round, gives the runs and the
 * load): what ksmd pays to visit a page it has nothing to do with, a checksum (XXH64 of 4 KiB), a full 4 KiB
 * compare, a tree step (one node, its early-exit memcmp and cache misses), a
 * merge beyond those, a page's first visit beyond a visit (its rmap item
 * allocated), a write to a merged page (the copy), and the extra of touching
 * a page idle 50 ms ... 5 s (seven classes), a batch that reads pages
 * after a sleep, beyond its pages' costs, and a visit per ms since the
 * page's last visit (its rmap item, page table and struct page idle),
 * once for a revisit idle at all, a batch's wake-up after a sleep, and an
 * unstable tree level read idle (its compare stops early: not a page read).
 * They are only as
 * good as the machine was idle: measure your own host with
 * `sim calibrate --save`, and every simulating command uses its costs.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "atomic_file.h"
#include "kvfile.h"
#include "sim.h"

static const char *const cost_names[BK_COST__COUNT] = {
	[BK_COST_VISIT] = "visit",
	[BK_COST_CHECKSUM] = "checksum",
	[BK_COST_COMPARE] = "compare",
	[BK_COST_TREE_STEP] = "tree_step",
	[BK_COST_MERGE] = "merge",
	[BK_COST_COW_BREAK] = "cow_break",
	[BK_COST_FIRST_VISIT] = "first_visit",
	[BK_COST_IDLE_50MS] = "idle_50ms",
	[BK_COST_IDLE_100MS] = "idle_100ms",
	[BK_COST_IDLE_200MS] = "idle_200ms",
	[BK_COST_IDLE_500MS] = "idle_500ms",
	[BK_COST_IDLE_1S] = "idle_1s",
	[BK_COST_IDLE_2S] = "idle_2s",
	[BK_COST_IDLE_5S] = "idle_5s",
	[BK_COST_BATCH_READ] = "batch_read",
	[BK_COST_VISIT_IDLE] = "visit_idle",
	[BK_COST_VISIT_COLD] = "visit_cold",
	[BK_COST_BATCH_WAKE] = "batch_wake",
	[BK_COST_TREE_IDLE] = "tree_idle",
};

#define COST_NAMES \
	"visit, checksum, compare, tree_step, merge, cow_break, first_visit, idle_50ms, idle_100ms, " \
	"idle_200ms, idle_500ms, idle_1s, idle_2s, idle_5s, batch_read, " \
	"visit_idle, visit_cold, batch_wake, tree_idle"

const char *sim_cost_name(enum bk_cost k)
{
	return (unsigned)k < BK_COST__COUNT ? cost_names[k] : "?";
}

void sim_cost_defaults(struct sim_cost *c)
{
	/*
	 * medians of three `sim calibrate` runs on a quiet machine, 2026-11-29
	 * 21:24-21:26 UTC, load 0.17-0.33 (bench/README.md "bench_cost.sh",
	 * third round): hot costs (the tree step on 4096 pages scanned without
	 * sleeping; the checksum as userspace times XXH64 over 256 MiB).  The
	 * first visit measured 0, 0 and 94: ksmd's first scan cost no more than
	 * a visit and a checksum here.
	 */
	c->ns[BK_COST_VISIT] = 125;
	c->ns[BK_COST_CHECKSUM] = 1075;
	c->ns[BK_COST_COMPARE] = 695;
	c->ns[BK_COST_TREE_STEP] = 40;
	c->ns[BK_COST_MERGE] = 1530;
	c->ns[BK_COST_COW_BREAK] = 3370;
	c->ns[BK_COST_FIRST_VISIT] = 0;
	/*
	 * Reading a page idle 50 ms ... 5 s costs a bare-metal host (where KSM
	 * hosts' guests run) little beyond a hot read; on the development VM
	 * it cost 1-2 us at 0.1 s and 9-17 us at 5 s, drifting by 2x within
	 * the hour (bench/README.md "bench_cost.sh"): no default fits every
	 * host, so 0 unless measured: `sim calibrate --save` measures the
	 * host's.
	 */
	for (int k = BK_COST_IDLE_50MS; k <= BK_COST_IDLE_5S; k++)
		c->ns[k] = 0;
	/*
	 * The same for a batch that reads pages after a sleep: 0.1-0.3 ms on
	 * the development VM, as unsteady; 0 unless `sim calibrate` measured it.
	 */
	c->ns[BK_COST_BATCH_READ] = 0;
	/*
	 * And for each ms a visited page's rmap item, page table and struct page
	 * lay idle: 0.2-0.3 ns on the development VM (a visit idle 4 s: ~1 us,
	 * eight visits), as host-dependent; 0 unless measured.
	 */
	c->ns[BK_COST_VISIT_IDLE] = 0;
	/*
	 * and once for a revisit idle 35 ms or more, and a batch's wake-up after
	 * a sleep (issue 13, eighth round): 0 unless measured.
	 */
	c->ns[BK_COST_VISIT_COLD] = 0;
	c->ns[BK_COST_BATCH_WAKE] = 0;
	/*
	 * and for an unstable tree level read idle 35 ms or more (issue 13,
	 * tenth round): 0 unless measured, like the idle classes it was part of.
	 */
	c->ns[BK_COST_TREE_IDLE] = 0;
}

/*
 * Sets one operation's cost from "name" and the text of its value; 0, or
 * SP_EINVAL with what is wrong in msg (the caller adds where).
 */
/* Sets operation `name` to `value` ns: the operation's number, or SP_EINVAL with msg. */
static int cost_set(struct sim_cost *c, const char *name, const char *value, char *msg, size_t len)
{
	char *end;
	double v;
	int k;

	for (k = 0; k < BK_COST__COUNT && strcmp(cost_names[k], name) != 0; k++)
		;
	if (k == BK_COST__COUNT)
		return snprintf(msg, len, "unknown operation '%s'; valid: " COST_NAMES, name), SP_EINVAL;
	errno = 0;
	v = strtod(value, &end);
	if (value[0] == '\0' || *end || errno || !(v >= 0 && v <= 1e9))
		return snprintf(msg, len, "%s=%s is not a time in ns (0..1e9)", name, value), SP_EINVAL;
	c->ns[k] = v;
	return k;
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
	char *copy = strdup(spec), *save = NULL, *tok, msg[256];
	int rc = 0;

	if (!copy)
		return sp_err_set(err, SP_ENOMEM, "out of memory");
	for (tok = strtok_r(copy, ",", &save); tok && rc == 0; tok = strtok_r(NULL, ",", &save)) {
		char *eq = strchr(tok, '=');

		if (!eq) {
			rc = sp_err_set(err, SP_EINVAL, "--cost: '%s' is not name=ns", tok);
			break;
		}
		*eq = '\0';
		if (cost_set(c, tok, eq + 1, msg, sizeof(msg)) < 0)
			rc = sp_err_set(err, SP_EINVAL, "--cost: %s", msg);
	}
	free(copy);
	return rc;
}

int sim_cost_load(struct sim_cost *c, const char *path, bool set[BK_COST__COUNT],
		  struct sp_err *err)
{
	struct sim_kv_file f;
	struct sim_cost next = *c;
	char msg[256];
	int rc = sim_kv_load(&f, path, err);

	if (rc < 0)
		return rc;
	if (set)
		memset(set, 0, BK_COST__COUNT * sizeof(*set));
	for (size_t i = 0; i < f.n && rc == 0; i++) {
		int k = cost_set(&next, f.kv[i].key, f.kv[i].value, msg, sizeof(msg));

		if (k < 0)
			rc = sp_err_set(err, SP_ECORRUPT, "%s:%u: %s", path, f.kv[i].line, msg);
		else if (set)
			set[k] = true;
	}
	sim_kv_release(&f);
	if (rc == 0)
		*c = next;
	return rc;
}

int sim_cost_save(const struct sim_cost *c, const bool *which, const char *note, const char *path,
		  struct sp_err *err)
{
	struct atomic_file af;
	int rc = atomic_file_open(&af, path, 0644, err);

	if (rc < 0)
		return rc;
	fputs("# The CPU cost model of this host, ns per operation (sim calibrate --save).\n"
	      "# Used by sim run, compare, sweep, plan and validate unless --cost says otherwise.\n",
	      af.f);
	if (note && note[0]) {
		const char *line = note;

		while (*line) {
			size_t n = strcspn(line, "\n");

			fprintf(af.f, "# %.*s\n", (int)n, line);
			line += n + (line[n] == '\n');
		}
	}
	for (int k = 0; k < BK_COST__COUNT; k++) {
		if (!which || which[k])
			fprintf(af.f, "%s=%.10g\n", cost_names[k], c->ns[k]); /* visit_idle is ~0.3 */
	}
	return atomic_file_commit(&af, err);
}
