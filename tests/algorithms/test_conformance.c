/*
 * test_conformance.c - every registered algorithm (algo_at()) over shared
 * traces, checked at every sample against the backend's ground truth.  One
 * test per property, each looping over all algorithms, traces and two
 * configurations (the defaults; and merge_across_nodes=0, use_zero_pages=1
 * and a faster scan where the algorithm has those parameters).
 *
 * The algorithms run through sim_run(), as `sim run` runs them, with its
 * observer hooks: the backend hook wraps the simulated backend in a checking
 * wrapper (and, for the fault test, the fault-injecting backend of
 * faultbk.h below it), and the record hook looks at the memory before each
 * record: it notes whether the page was merged by the algorithm (tracked
 * from the merge calls the algorithm made through the wrapper), so COW
 * breaks are counted independently of the backend's own counter.  The
 * wrapper also checks every compare and merge for a security-domain
 * crossing before passing it on.  No algorithm is named: what differs
 * between them is read from their capability flags.
 *
 * The savings bound.  oracle_saving = present pages - distinct non-zero
 * contents per domain: every zero page counts as saved, since all may map
 * the zero page.  What the memory really saves (mappers - 1 summed over the
 * shared frames, plus every page on the zero page, including those a huge
 * page split put there) can never exceed it: a frame's mappers all hold one
 * content of one domain.  So for an algorithm whose counters are exact,
 * pages_sharing + ksm_zero_pages <= oracle_saving at every sample, with no
 * slack.  An ALGO_CAP_LAZY_COW algorithm (ksm) reports COW breaks with the
 * kernel's lag: its pages_sharing may exceed the truth by the broken pages
 * it has not visited again, each of them a COW break, so for it the bound is
 * oracle_saving + (its pages_sharing - the true sharing), and that lag is
 * itself bounded by cow_breaks.  The omniscient oracle merges nothing in the backend; its own
 * count is checked against the bound.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "algorithm.h"
#include "faultbk.h"
#include "gen.h"
#include "harness.h"
#include "passbk.h"
#include "sim.h"
#include "tracebuild.h"

#define MAX_SAMPLES 512

/* ---- a wrapper backend that checks domains and tracks merged pages ------ */

struct wrap {
	struct passbk pb;      /* first: the wrapped backend, forwarded where not checked */
	uint8_t *merged;       /* per page: mapped a shared frame or the zero page by the algorithm */
	uint32_t *fdom;        /* per frame slot: domain + 1 of the frame, 0 unknown */
	uint32_t fcap;
	int64_t cross_compares, cross_merges, denied;
};

static struct wrap *wrap_of(void *impl)
{
	return impl;
}

static uint32_t dom(struct wrap *w, bk_page p)
{
	struct bk_page_info i;

	w->pb.in.ops->page_info(w->pb.in.impl, p, &i);
	return i.domain;
}

static void fdom_set(struct wrap *w, bk_frame f, uint32_t d)
{
	uint32_t s = (uint32_t)f;

	if (s >= w->fcap) {
		uint32_t cap = s * 2 + 16;
		uint32_t *n = realloc(w->fdom, cap * sizeof(*n));

		CU_ASSERT_PTR_NOT_NULL_FATAL(n);
		memset(n + w->fcap, 0, (cap - w->fcap) * sizeof(*n));
		w->fdom = n;
		w->fcap = cap;
	}
	w->fdom[s] = d + 1;
}

static bool fdom_differs(struct wrap *w, bk_frame f, uint32_t d)
{
	uint32_t s = (uint32_t)f;

	return f != BK_ZERO_FRAME && s < w->fcap && w->fdom[s] && w->fdom[s] != d + 1;
}

static int w_compare(void *impl, bk_page a, bk_page b)
{
	struct wrap *w = wrap_of(impl);

	if (dom(w, a) != dom(w, b))
		w->cross_compares++;
	return w->pb.in.ops->compare(w->pb.in.impl, a, b);
}

static int w_compare_frame(void *impl, bk_page a, bk_frame f)
{
	struct wrap *w = wrap_of(impl);

	if (fdom_differs(w, f, dom(w, a)))
		w->cross_compares++;
	return w->pb.in.ops->compare_frame(w->pb.in.impl, a, f);
}

static int w_merge_pages(void *impl, bk_page p, bk_page keep, bk_frame *out)
{
	struct wrap *w = wrap_of(impl);
	bk_frame f = 0;
	int rc;

	if (dom(w, p) != dom(w, keep))
		w->cross_merges++;
	rc = w->pb.in.ops->merge_pages(w->pb.in.impl, p, keep, &f);
	if (rc == SP_EDENIED)
		w->denied++;
	if (rc == 0) {
		fdom_set(w, f, dom(w, keep));
		w->merged[p] = w->merged[keep] = 1;
		if (out)
			*out = f;
	}
	return rc;
}

static int w_merge_frame(void *impl, bk_page p, bk_frame f)
{
	struct wrap *w = wrap_of(impl);
	int rc;

	if (fdom_differs(w, f, dom(w, p)))
		w->cross_merges++;
	rc = w->pb.in.ops->merge_frame(w->pb.in.impl, p, f);
	if (rc == SP_EDENIED)
		w->denied++;
	if (rc == 0)
		w->merged[p] = 1;
	return rc;
}

static int w_merge_zero(void *impl, bk_page p)
{
	struct wrap *w = wrap_of(impl);
	int rc = w->pb.in.ops->merge_zero(w->pb.in.impl, p);

	if (rc == 0)
		w->merged[p] = 1;
	return rc;
}

static int w_unmerge(void *impl, bk_page p)
{
	struct wrap *w = wrap_of(impl);
	int rc = w->pb.in.ops->unmerge(w->pb.in.impl, p);

	if (rc == 0)
		w->merged[p] = 0;
	return rc;
}

static void wrap_init(struct wrap *w, struct backend in)
{
	memset(w, 0, sizeof(*w));
	passbk_init(&w->pb, in);
	w->pb.ops.compare = w_compare;
	w->pb.ops.compare_frame = w_compare_frame;
	w->pb.ops.merge_pages = w_merge_pages;
	w->pb.ops.merge_frame = w_merge_frame;
	w->pb.ops.merge_zero = w_merge_zero;
	w->pb.ops.unmerge = w_unmerge;
	w->merged = calloc(in.ops->npages(in.impl) + 1, 1);
	CU_ASSERT_PTR_NOT_NULL_FATAL(w->merged);
}

/* ---- the driver ---------------------------------------------------------- */

struct outcome {
	size_t n;
	struct metrics m[MAX_SAMPLES];
	/* violations, summed over the samples */
	int64_t over_oracle, truth_over_oracle, sharing_mismatch, negative, remote, cross_frames;
	int64_t cross_compares, cross_merges, denied;
	int64_t cow_expected, cow_seen, cow_mismatch;
	int64_t max_saved;
};

struct truth {
	int64_t frames, sharing, on_zero, cross_domain_frames, cross_node_mappers;
};

/* Walks the backend's frames: one pass over the pages, frames by slot. */
static void walk(struct backend bk, struct truth *t)
{
	uint64_t n = bk.ops->npages(bk.impl);
	uint32_t cap = 0;
	uint32_t *mappers = NULL, *domp1 = NULL;
	struct bk_page_info info;

	memset(t, 0, sizeof(*t));
	for (bk_page p = 0; p < n; p++) {
		uint32_t s;

		bk.ops->page_info(bk.impl, p, &info);
		if (!info.present || info.frame == BK_NO_FRAME)
			continue;
		if (info.frame == BK_ZERO_FRAME) {
			t->on_zero++;
			continue;
		}
		s = (uint32_t)info.frame;
		if (s >= cap) {
			uint32_t nc = s * 2 + 16;

			mappers = realloc(mappers, nc * sizeof(*mappers));
			domp1 = realloc(domp1, nc * sizeof(*domp1));
			CU_ASSERT_FATAL(mappers && domp1);
			memset(mappers + cap, 0, (nc - cap) * sizeof(*mappers));
			memset(domp1 + cap, 0, (nc - cap) * sizeof(*domp1));
			cap = nc;
		}
		if (mappers[s]++ == 0) {
			t->frames++;
			domp1[s] = info.domain + 1;
		} else {
			t->sharing++;
			if (domp1[s] != info.domain + 1)
				t->cross_domain_frames++;
		}
		if (bk.ops->frame_node(bk.impl, info.frame) != info.node)
			t->cross_node_mappers++;
	}
	free(mappers);
	free(domp1);
}

static void check_sample(struct outcome *o, const struct algo_ops *a, struct backend bk,
			 const struct metrics *mp, const struct algo_params *prm)
{
	struct metrics m = *mp;
	struct truth t;
	int64_t saved, bound;
	int across = algo_param_index(a, "merge_across_nodes");

	walk(bk, &t);
	if (o->n < MAX_SAMPLES)
		o->m[o->n++] = m;
	for (int i = 0; i < METRICS_COUNT; i++) {
		/* general_profit is negative by definition while little is merged. */
		if (strcmp(metrics_names[i], "general_profit") != 0 && metrics_get(&m, i) < 0) {
			fprintf(stderr, "%s: %s = %lld < 0\n", a->name, metrics_names[i],
				(long long)metrics_get(&m, i));
			o->negative++;
		}
	}
	saved = metrics_saved(&m);
	if (saved > o->max_saved)
		o->max_saved = saved;
	/* What memory really saves can never beat the oracle. */
	if (t.sharing + t.on_zero > m.oracle_saving)
		o->truth_over_oracle++;
	bound = m.oracle_saving;
	if (!(a->caps & ALGO_CAP_OMNISCIENT)) {
		bool exact = !(a->caps & ALGO_CAP_LAZY_COW);

		if (exact && (m.pages_sharing != t.sharing || m.pages_shared != t.frames ||
			      m.ksm_zero_pages != t.on_zero - m.thp_zero_pages)) {
			fprintf(stderr, "%s: shared %lld/%lld sharing %lld/%lld zero %lld/%lld (algo/truth)\n",
				a->name, (long long)m.pages_shared, (long long)t.frames,
				(long long)m.pages_sharing, (long long)t.sharing,
				(long long)m.ksm_zero_pages, (long long)(t.on_zero - m.thp_zero_pages));
			o->sharing_mismatch++;
		}
		if (!exact) {
			int64_t lag = m.pages_sharing - t.sharing;

			if (lag < 0 || lag > m.cow_breaks)
				o->sharing_mismatch++;
			bound += lag > 0 ? lag : 0;
		}
	}
	if (saved > bound) {
		fprintf(stderr, "%s: saved %lld > bound %lld (oracle %lld)\n", a->name,
			(long long)saved, (long long)bound, (long long)m.oracle_saving);
		o->over_oracle++;
	}
	if (across >= 0 && prm->v[across] == 0 && (m.remote_sharers != 0 || t.cross_node_mappers))
		o->remote++;
	o->cross_frames += t.cross_domain_frames;
}

/* One run: the hooks' and the sample callback's state. */
struct drive {
	const struct algo_ops *a;
	struct sim_config cfg;
	struct outcome *o;
	struct backend mem;   /* the simulated backend itself */
	struct wrap w;        /* what the algorithm sees */
	struct faultbk fault; /* between the two when fault_rate > 0 */
	double fault_rate;
	uint64_t fault_seed;
};

static struct backend hook_backend(void *arg, struct sim_mem *m, struct backend bk)
{
	struct drive *d = arg;

	(void)m;
	d->mem = bk;
	if (d->fault_rate > 0) {
		faultbk_init(&d->fault, bk, d->fault_seed, d->fault_rate);
		bk = faultbk_backend(&d->fault);
	}
	wrap_init(&d->w, bk);
	return passbk_backend(&d->w.pb);
}

/* Before a record: a page the algorithm merged that now changes owes a COW break. */
static void hook_record(void *arg, struct sim_mem *m, const struct trace_record *rec)
{
	struct drive *d = arg;
	bk_page p = sim_mem_page_index(m, rec->guest, rec->page);
	struct bk_page_info before;
	struct sp_fp old = d->mem.ops->content(d->mem.impl, p);
	bool changes;

	d->mem.ops->page_info(d->mem.impl, p, &before);
	changes = !before.present || !(rec->flags & TRACE_PRESENT) || !sp_fp_eq(old, rec->fp) ||
		  (bool)before.zero != (bool)(rec->flags & TRACE_ZERO);
	if (changes && d->w.merged[p]) {
		CU_ASSERT(before.frame != BK_NO_FRAME);
		if (before.present && (rec->flags & TRACE_PRESENT))
			d->o->cow_expected++;
		d->w.merged[p] = 0;
	}
}

static int on_sample(void *arg, uint64_t t_ms, const struct metrics *m)
{
	struct drive *d = arg;

	(void)t_ms;
	check_sample(d->o, d->a, d->mem, m, &d->cfg.params);
	d->o->cow_seen = m->cow_breaks;
	return 0;
}

/* The parameters: the defaults, then each "key=value" of sets the algorithm has. */
static void set_params(struct drive *d, const char *const *sets)
{
	struct sp_err err = { 0 };

	for (; sets && *sets; sets++) {
		char key[64];
		const char *eq = strchr(*sets, '=');

		snprintf(key, sizeof(key), "%.*s", (int)(eq - *sets), *sets);
		if (algo_param_index(d->a, key) >= 0)
			CU_ASSERT_EQUAL_FATAL(algo_params_set(d->a, &d->cfg.params, *sets, &err), 0);
	}
}

/*
 * Runs path through algorithm a (parameters: the defaults and sets) with
 * sim_run(); fault_rate > 0 puts the fault-injecting backend under the
 * algorithm.  Returns sim_run()'s result; *fault (if given) gets the
 * injector's counts.
 */
static int drive_ex(const char *path, const struct algo_ops *a, const char *const *sets,
		    uint64_t seed, double fault_rate, struct outcome *o, struct faultbk *fault,
		    struct sp_err *err)
{
	struct drive *d = calloc(1, sizeof(*d));
	struct sim_hooks hooks = { hook_backend, hook_record, d };
	struct sim_result res;
	int rc;

	CU_ASSERT_PTR_NOT_NULL_FATAL(d);
	memset(o, 0, sizeof(*o));
	d->a = a;
	d->o = o;
	d->fault_rate = fault_rate;
	d->fault_seed = seed * 7919 + 17;
	sim_config_defaults(&d->cfg, a);
	set_params(d, sets);
	d->cfg.seed = seed;
	d->cfg.tail_ms = 20000;
	d->cfg.sample_ms = 250;
	d->cfg.hooks = &hooks;
	rc = sim_run(path, &d->cfg, on_sample, NULL, d, &res, err);
	o->cow_mismatch = o->cow_expected != o->cow_seen;
	o->cross_compares = d->w.cross_compares;
	o->cross_merges = d->w.cross_merges;
	o->denied = d->w.denied;
	if (fault)
		*fault = d->fault;
	free(d->w.merged);
	free(d->w.fdom);
	free(d);
	return rc;
}

/* A run that must complete. */
static void drive(const char *path, const struct algo_ops *a, const char *const *sets,
		  uint64_t seed, struct outcome *o)
{
	struct sp_err err = { 0 };

	if (drive_ex(path, a, sets, seed, 0, o, NULL, &err) != 0)
		fprintf(stderr, "%s: %s\n", a->name, err.msg);
	CU_ASSERT_EQUAL_FATAL(err.code, 0);
}

/* ---- the shared traces ----------------------------------------------------- */

static const char *gen_trace(void)
{
	static char path[512];
	struct trace_gen_params g;
	struct sp_err err = { 0 };

	if (path[0])
		return path;
	sp_test_path(path, sizeof(path), "conformance_gen.sptrace");
	trace_gen_defaults(&g);
	g.guests = 4;
	g.pages = 1024; /* two huge-page regions per guest */
	g.snapshots = 5;
	g.interval_ms = 2000;
	g.shared_fraction = 0.6;
	g.zero_fraction = 0.1;
	g.write_rate = 0.5;
	g.volatile_fraction = 0.2;
	g.huge_fraction = 0.5;
	g.nodes = 2;
	g.domains = 2;
	g.seed = 7;
	if (trace_gen_write(&g, path, NULL, NULL, &err) != 0)
		fprintf(stderr, "gen: %s\n", err.msg);
	CU_ASSERT_EQUAL_FATAL(err.code, 0);
	return path;
}

static void put(struct tb *tb, uint32_t g, uint64_t page, uint64_t c)
{
	struct trace_record rec = { .guest = g, .page = page, .fp = tb_fp(c) };

	rec.flags = TRACE_PRESENT | (c ? 0 : TRACE_ZERO);
	rec.node = tb->h.guests[g].node;
	CU_ASSERT_EQUAL_FATAL(trace_writer_record(tb->w, &rec, &tb->err), 0);
}

/*
 * Four guests of 64 pages on the given domains and nodes, all holding the
 * same contents, so every page has twins in the other domains and on the
 * other nodes; a quarter zero pages; every snapshot rewrites a few pages
 * (some merged by then) and unmaps and remaps others.
 */
static void four_guests(const char *path, const uint32_t *domain, const uint16_t *node)
{
	struct tb tb;

	tb_init(&tb, 4, 64);
	for (uint32_t g = 0; g < 4; g++) {
		tb.h.guests[g].node = node[g];
		tb.h.guests[g].domain = domain[g];
	}
	tb_open(&tb, path);
	for (uint64_t s = 0; s < 6; s++) {
		tb_snap(&tb, s * 1500);
		for (uint32_t g = 0; g < 4; g++) {
			for (uint64_t i = 0; i < 64; i++) {
				uint64_t c = i % 4 == 0 ? 0 : 1 + i % 12;

				if (s == 0)
					put(&tb, g, i, c);
				else if ((i + s + g) % 9 == 0)
					put(&tb, g, i, 1000 + s * 100 + i); /* a write */
				else if ((i + s) % 13 == 0)
					put(&tb, g, i, c); /* back to the shared content */
				else if (s == 3 && i % 17 == 1)
					tb_absent(&tb, g, i);
			}
		}
	}
	tb_commit(&tb);
}

/* Guests 0 and 1 in domain 0 (nodes 0, 1), guests 2 and 3 in domain 1 (nodes 0, 1). */
static const char *hand_trace(void)
{
	static const uint32_t domain[4] = { 0, 0, 1, 1 };
	static const uint16_t node[4] = { 0, 1, 0, 1 };
	static char path[512];

	if (!path[0]) {
		sp_test_path(path, sizeof(path), "conformance_hand.sptrace");
		four_guests(path, domain, node);
	}
	return path;
}

/*
 * Partitions that packed keys made collide: (domain 0, node 0) with
 * (domain 0, node 256) under domain << 8 | node & 0xff, and with (domain
 * 65536, node 0) under domain << 16 ^ node; (domain 1, node 0) beside them.
 */
static const char *collide_trace(void)
{
	static const uint32_t domain[4] = { 0, 0, 65536, 1 };
	static const uint16_t node[4] = { 0, 256, 0, 0 };
	static char path[512];

	if (!path[0]) {
		sp_test_path(path, sizeof(path), "conformance_collide.sptrace");
		four_guests(path, domain, node);
	}
	return path;
}

static const char *const fast_sets[] = {
	"merge_across_nodes=0", "use_zero_pages=1", "pages_to_scan=1000", "share_scan_vm=5000",
	"share_scan_total=20000", NULL,
};

/* Runs every algorithm over the traces with both configurations; fn checks one outcome. */
typedef void (*check_fn)(const struct algo_ops *a, const char *what, const struct outcome *o);

static void each(check_fn fn)
{
	const char *traces[] = { gen_trace(), hand_trace(), collide_trace() };
	struct outcome *o = malloc(sizeof(*o));

	CU_ASSERT_PTR_NOT_NULL_FATAL(o);
	for (size_t i = 0; i < algo_count(); i++) {
		const struct algo_ops *a = algo_at(i);

		for (int t = 0; t < 3; t++) {
			for (int c = 0; c < 2; c++) {
				char what[128];

				snprintf(what, sizeof(what), "%s trace %d config %s", a->name, t,
					 c ? "fast" : "defaults");
				drive(traces[t], a, c ? fast_sets : NULL, 1, o);
				fn(a, what, o);
			}
		}
	}
	free(o);
}

static void report(bool ok, const char *what, const char *prop)
{
	if (!ok)
		fprintf(stderr, "FAIL %s: %s\n", what, prop);
	CU_ASSERT(ok);
}

/* ---- the properties -------------------------------------------------------- */

static void chk_oracle(const struct algo_ops *a, const char *what, const struct outcome *o)
{
	(void)a;
	report(o->over_oracle == 0 && o->truth_over_oracle == 0, what,
	       "savings within the oracle bound");
	report(o->sharing_mismatch == 0, what, "pages_sharing/pages_shared match the frames");
}

SP_TEST(savings_never_exceed_oracle)
{
	each(chk_oracle);
}

static void chk_domains(const struct algo_ops *a, const char *what, const struct outcome *o)
{
	(void)a;
	report(o->cross_frames == 0, what, "no frame mapped from two domains");
	report(o->cross_merges == 0 && o->denied == 0, what, "no merge attempted across domains");
	report(o->cross_compares == 0, what, "no compare across domains");
}

SP_TEST(no_merge_across_domains)
{
	each(chk_domains);
}

static void chk_nodes(const struct algo_ops *a, const char *what, const struct outcome *o)
{
	(void)a;
	report(o->remote == 0, what, "remote_sharers == 0 with merge_across_nodes=0");
}

SP_TEST(no_merge_across_nodes_when_forbidden)
{
	each(chk_nodes);
}

static void chk_negative(const struct algo_ops *a, const char *what, const struct outcome *o)
{
	(void)a;
	report(o->negative == 0, what, "no counter negative");
}

SP_TEST(counters_never_negative)
{
	each(chk_negative);
}

static void chk_cow(const struct algo_ops *a, const char *what, const struct outcome *o)
{
	if (o->cow_mismatch)
		fprintf(stderr, "%s: %lld writes to merged pages, backend counted %lld COW breaks\n",
			what, (long long)o->cow_expected, (long long)o->cow_seen);
	report(!o->cow_mismatch, what, "COW breaks == writes to merged pages");
	/* Every scanner must merge something on these traces, or the checks above prove nothing. */
	if (a->caps & ALGO_CAP_SCANNER)
		report(o->max_saved > 0, what, "saves something");
}

SP_TEST(cow_breaks_equal_writes_to_merged_pages)
{
	each(chk_cow);
}

SP_TEST(same_seed_same_output)
{
	struct outcome *x = malloc(sizeof(*x)), *y = malloc(sizeof(*y));

	CU_ASSERT_PTR_NOT_NULL_FATAL(x && y);
	for (size_t i = 0; i < algo_count(); i++) {
		const struct algo_ops *a = algo_at(i);

		drive(gen_trace(), a, fast_sets, 3, x);
		drive(gen_trace(), a, fast_sets, 3, y);
		CU_ASSERT_EQUAL(x->n, y->n);
		report(x->n == y->n && memcmp(x->m, y->m, x->n * sizeof(x->m[0])) == 0, a->name,
		       "same seed, same series");
		if (a->caps & ALGO_CAP_SEEDED) {
			/* Random sampling: another seed, another series. */
			drive(gen_trace(), a, fast_sets, 4, y);
			report(x->n != y->n || memcmp(x->m, y->m, x->n * sizeof(x->m[0])) != 0,
			       a->name, "another seed, another series");
		}
	}
	free(x);
	free(y);
}

/*
 * Every algorithm over the fault-injecting backend (faultbk.h): a fifth of
 * its merge calls refused with a changed or stale page, a resource limit or
 * a failed frame allocation.  The run completes or ends with a clean error,
 * and every property above still holds: the counters match the frames, the
 * savings stay within the oracle's bound, nothing crosses a domain or a
 * forbidden node, COW breaks equal writes to merged pages.  Under the
 * sanitizer build (the default test run's second half) ASan also checks that
 * nothing leaks on these paths.
 */
SP_TEST(faults_end_cleanly)
{
	const char *traces[] = { gen_trace(), hand_trace() };
	struct outcome *o = malloc(sizeof(*o));
	struct faultbk *f = malloc(sizeof(*f));
	uint64_t kinds[FAULT__COUNT] = { 0 };

	CU_ASSERT_PTR_NOT_NULL_FATAL(o && f);
	for (size_t i = 0; i < algo_count(); i++) {
		const struct algo_ops *a = algo_at(i);

		for (int t = 0; t < 2; t++) {
			for (uint64_t seed = 1; seed <= 2; seed++) {
				struct sp_err err = { 0 };
				char what[128];
				int rc = drive_ex(traces[t], a, fast_sets, seed, 0.2, o, f, &err);

				snprintf(what, sizeof(what), "%s trace %d seed %llu with faults", a->name,
					 t, (unsigned long long)seed);
				if (rc != 0) {
					fprintf(stderr, "%s: ended with: %s\n", what, err.msg);
					report(rc < 0 && err.code == rc && err.msg[0], what, "a clean error");
				}
				report(o->over_oracle == 0 && o->truth_over_oracle == 0 &&
				       o->sharing_mismatch == 0, what, "counters match the frames");
				report(o->negative == 0, what, "no counter negative");
				report(o->cross_frames == 0 && o->cross_merges == 0 && o->denied == 0 &&
				       o->cross_compares == 0 && o->remote == 0, what,
				       "no sharing across domains or forbidden nodes");
				report(!o->cow_mismatch, what, "COW breaks == writes to merged pages");
				if (a->caps & ALGO_CAP_SCANNER) {
					report(faultbk_total(f) > 0, what, "faults were injected");
					report(o->max_saved > 0, what, "saves something all the same");
				}
				for (int k = 0; k < FAULT__COUNT; k++)
					kinds[k] += f->injected[k];
			}
		}
	}
	for (int k = 0; k < FAULT__COUNT; k++)
		report(kinds[k] > 0, "all algorithms", "every kind of fault injected");
	free(o);
	free(f);
}
