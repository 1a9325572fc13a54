/*
 * test_conformance.c - every registered algorithm (algo_at()) over shared
 * traces, checked at every sample against the backend's ground truth.  One
 * test per property, each looping over all algorithms, traces and two
 * configurations (the defaults; and merge_across_nodes=0, use_zero_pages=1
 * and a faster scan where the algorithm has those parameters).
 *
 * The driver replays the trace itself (not sim_run()) so it can look at the
 * memory between records: before each record it notes whether the page was
 * merged by the algorithm (tracked from the merge calls the algorithm made
 * through a wrapper backend), so COW breaks are counted independently of the
 * backend's own counter.  The wrapper also checks every compare and merge
 * for a security-domain crossing before passing it on.
 *
 * The savings bound.  oracle_saving = present pages - distinct non-zero
 * contents per domain: every zero page counts as saved, since all may map
 * the zero page.  What the memory really saves (mappers - 1 summed over the
 * shared frames, plus every page on the zero page, including those a huge
 * page split put there) can never exceed it: a frame's mappers all hold one
 * content of one domain.  So for an algorithm whose counters are exact,
 * pages_sharing + ksm_zero_pages <= oracle_saving at every sample, with no
 * slack.  ksm reports COW breaks with the kernel's lag (ksm.c, Notes): its
 * pages_sharing may exceed the truth by the broken pages it has not visited
 * again, each of them a COW break, so for it the bound is oracle_saving +
 * (its pages_sharing - the true sharing), and that lag is itself bounded by
 * cow_breaks.  The omniscient oracle merges nothing in the backend; its own
 * count is checked against the bound.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "algorithm.h"
#include "gen.h"
#include "harness.h"
#include "sim.h"
#include "tracebuild.h"

#define NS_PER_MS 1000000ull
#define NEVER UINT64_MAX
#define MAX_SAMPLES 512

/* Algorithms whose pages_sharing lags COW breaks by design (documented in their Notes). */
static bool lags_cow(const char *name)
{
	return strcmp(name, "ksm") == 0;
}

/* ---- a wrapper backend that checks domains and tracks merged pages ------ */

struct wrap {
	struct backend in;
	struct backend_ops ops;
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

	w->in.ops->page_info(w->in.impl, p, &i);
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

#define FWD(name, ret, args, call) \
	static ret w_##name args { struct wrap *w = wrap_of(impl); return w->in.ops->name call; }

FWD(npages, uint64_t, (void *impl), (w->in.impl))
FWD(nnodes, uint32_t, (void *impl), (w->in.impl))
FWD(nguests, uint32_t, (void *impl), (w->in.impl))
FWD(page_size, uint32_t, (void *impl), (w->in.impl))
FWD(zero_checksum, uint32_t, (void *impl), (w->in.impl))
FWD(checksum, uint32_t, (void *impl, bk_page p), (w->in.impl, p))
FWD(frame_mappers, uint32_t, (void *impl, bk_frame f), (w->in.impl, f))
FWD(frame_node, uint32_t, (void *impl, bk_frame f), (w->in.impl, f))
FWD(content, struct sp_fp, (void *impl, bk_page p), (w->in.impl, p))

static void w_page_info(void *impl, bk_page p, struct bk_page_info *out)
{
	struct wrap *w = wrap_of(impl);

	w->in.ops->page_info(w->in.impl, p, out);
}

static void w_account(void *impl, enum bk_cost what, uint64_t n)
{
	struct wrap *w = wrap_of(impl);

	w->in.ops->account(w->in.impl, what, n);
}

static int w_compare(void *impl, bk_page a, bk_page b)
{
	struct wrap *w = wrap_of(impl);

	if (dom(w, a) != dom(w, b))
		w->cross_compares++;
	return w->in.ops->compare(w->in.impl, a, b);
}

static int w_compare_frame(void *impl, bk_page a, bk_frame f)
{
	struct wrap *w = wrap_of(impl);

	if (fdom_differs(w, f, dom(w, a)))
		w->cross_compares++;
	return w->in.ops->compare_frame(w->in.impl, a, f);
}

static int w_merge_pages(void *impl, bk_page p, bk_page keep, bk_frame *out)
{
	struct wrap *w = wrap_of(impl);
	bk_frame f = 0;
	int rc;

	if (dom(w, p) != dom(w, keep))
		w->cross_merges++;
	rc = w->in.ops->merge_pages(w->in.impl, p, keep, &f);
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
	rc = w->in.ops->merge_frame(w->in.impl, p, f);
	if (rc == SP_EDENIED)
		w->denied++;
	if (rc == 0)
		w->merged[p] = 1;
	return rc;
}

static int w_merge_zero(void *impl, bk_page p)
{
	struct wrap *w = wrap_of(impl);
	int rc = w->in.ops->merge_zero(w->in.impl, p);

	if (rc == 0)
		w->merged[p] = 1;
	return rc;
}

static int w_unmerge(void *impl, bk_page p)
{
	struct wrap *w = wrap_of(impl);
	int rc = w->in.ops->unmerge(w->in.impl, p);

	if (rc == 0)
		w->merged[p] = 0;
	return rc;
}

static void wrap_init(struct wrap *w, struct backend in)
{
	memset(w, 0, sizeof(*w));
	w->in = in;
	w->ops = *in.ops;
	w->ops.npages = w_npages;
	w->ops.nnodes = w_nnodes;
	w->ops.nguests = w_nguests;
	w->ops.page_size = w_page_size;
	w->ops.zero_checksum = w_zero_checksum;
	w->ops.page_info = w_page_info;
	w->ops.checksum = w_checksum;
	w->ops.compare = w_compare;
	w->ops.compare_frame = w_compare_frame;
	w->ops.merge_pages = w_merge_pages;
	w->ops.merge_frame = w_merge_frame;
	w->ops.merge_zero = w_merge_zero;
	w->ops.unmerge = w_unmerge;
	w->ops.frame_mappers = w_frame_mappers;
	w->ops.frame_node = w_frame_node;
	w->ops.account = w_account;
	w->ops.content = in.ops->content ? w_content : NULL;
	w->ops.checksum_uncounted = NULL; /* as the simulator offers today */
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
			 struct sim_mem *mem, void *st, const struct algo_params *prm)
{
	struct sim_cost cost;
	struct metrics m;
	struct truth t;
	int64_t saved, bound;
	int across = algo_param_index(a, "merge_across_nodes");

	sim_cost_defaults(&cost);
	memset(&m, 0, sizeof(m));
	a->metrics(st, &m);
	sim_mem_metrics(mem, &cost, &m);
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
		bool exact = !lags_cow(a->name);

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

/* Replays path through algorithm a with the given "key=value" sets (unknown keys skipped). */
static void drive(const char *path, const struct algo_ops *a, const char *const *sets,
		  uint64_t seed, uint64_t tail_ms, uint64_t sample_ms, struct outcome *o)
{
	struct trace_reader *r;
	struct trace_snapshot snap;
	struct trace_record rec;
	struct sp_err err = { 0 };
	struct algo_params prm;
	struct algo_env env = { 0 };
	struct sim_mem *mem;
	struct backend bk;
	struct wrap w;
	void *st = NULL;
	uint64_t wake = 0, next_sample = 0, t_snap, end = NEVER;
	bool have;
	int rc;

	memset(o, 0, sizeof(*o));
	algo_params_defaults(a, &prm);
	for (; sets && *sets; sets++) {
		char key[64];
		const char *eq = strchr(*sets, '=');

		snprintf(key, sizeof(key), "%.*s", (int)(eq - *sets), *sets);
		if (algo_param_index(a, key) >= 0)
			CU_ASSERT_EQUAL_FATAL(algo_params_set(a, &prm, *sets, &err), 0);
	}
	CU_ASSERT_EQUAL_FATAL(trace_reader_open(&r, path, &err), 0);
	CU_ASSERT_EQUAL_FATAL(sim_mem_new(&mem, trace_reader_header(r), &err), 0);
	bk = sim_mem_backend(mem);
	wrap_init(&w, bk);
	env.bk.ops = &w.ops;
	env.bk.impl = &w;
	env.seed = seed;
	if (a->create(&st, &prm, &env, &err) != 0)
		fprintf(stderr, "%s: %s\n", a->name, err.msg);
	CU_ASSERT_PTR_NOT_NULL_FATAL(st);
	rc = trace_reader_next_snapshot(r, &snap, &err);
	CU_ASSERT_EQUAL_FATAL(rc, 1);
	have = true;
	for (;;) {
		uint64_t t;

		t_snap = have ? snap.time_ms * NS_PER_MS : NEVER;
		t = t_snap < wake ? t_snap : wake;
		if (next_sample < t)
			t = next_sample;
		if (t == NEVER || t > end)
			break;
		if (t == t_snap) {
			while ((rc = trace_reader_next_record(r, &rec, &err)) > 0) {
				bk_page p = sim_mem_page_index(mem, rec.guest, rec.page);
				struct bk_page_info before;
				struct sp_fp old = bk.ops->content(bk.impl, p);
				uint32_t what;
				bool notify, changes;

				bk.ops->page_info(bk.impl, p, &before);
				changes = !before.present || !(rec.flags & TRACE_PRESENT) ||
					  !sp_fp_eq(old, rec.fp) ||
					  (bool)before.zero != (bool)(rec.flags & TRACE_ZERO);
				if (changes && w.merged[p]) {
					CU_ASSERT(before.frame != BK_NO_FRAME);
					if (before.present && (rec.flags & TRACE_PRESENT))
						o->cow_expected++;
					w.merged[p] = 0;
				}
				CU_ASSERT_EQUAL_FATAL(sim_mem_apply(mem, &rec, &p, &what, &notify, &err), 0);
				if (what && ((a->caps & ALGO_CAP_OMNISCIENT) || notify))
					CU_ASSERT_EQUAL_FATAL(a->page_changed(st, p, what), 0);
			}
			CU_ASSERT_EQUAL_FATAL(rc, 0);
			rc = trace_reader_next_snapshot(r, &snap, &err);
			CU_ASSERT_FATAL(rc >= 0);
			if (rc == 0) {
				have = false;
				end = t + tail_ms * NS_PER_MS;
			}
		} else if (t == wake) {
			uint64_t sleep = 0;

			CU_ASSERT_EQUAL_FATAL(a->batch(st, t, &sleep), 0);
			wake = sleep == ALGO_SLEEP_FOREVER ? NEVER : t + (sleep ? sleep : NS_PER_MS);
		} else {
			check_sample(o, a, bk, mem, st, &prm);
			next_sample += sample_ms * NS_PER_MS;
		}
	}
	{
		struct metrics m;
		struct sim_cost cost;

		sim_cost_defaults(&cost);
		memset(&m, 0, sizeof(m));
		sim_mem_metrics(mem, &cost, &m);
		o->cow_seen = m.cow_breaks;
		o->cow_mismatch = o->cow_expected != o->cow_seen;
	}
	o->cross_compares = w.cross_compares;
	o->cross_merges = w.cross_merges;
	o->denied = w.denied;
	a->destroy(st);
	free(w.merged);
	free(w.fdom);
	sim_mem_free(mem);
	trace_reader_close(r);
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
 * Four guests of 64 pages: guests 0 and 1 in domain 0 (nodes 0, 1), guests
 * 2 and 3 in domain 1 (nodes 0, 1), all holding the same contents, so every
 * page has twins in the other domain and on the other node; a quarter zero
 * pages; every snapshot rewrites a few pages (some merged by then) and
 * unmaps and remaps others.
 */
static const char *hand_trace(void)
{
	static char path[512];
	struct tb tb;

	if (path[0])
		return path;
	sp_test_path(path, sizeof(path), "conformance_hand.sptrace");
	tb_init(&tb, 4, 64);
	for (uint32_t g = 0; g < 4; g++) {
		tb.h.guests[g].node = (uint16_t)(g % 2);
		tb.h.guests[g].domain = g / 2;
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
	return path;
}

static const char *const fast_sets[] = {
	"merge_across_nodes=0", "use_zero_pages=1", "pages_to_scan=1000", "share_scan_vm=5000",
	"share_scan_total=20000", NULL,
};

/* Runs every algorithm over both traces with both configurations; fn checks one outcome. */
typedef void (*check_fn)(const struct algo_ops *a, const char *what, const struct outcome *o);

static void each(check_fn fn)
{
	const char *traces[] = { gen_trace(), hand_trace() };
	struct outcome *o = malloc(sizeof(*o));

	CU_ASSERT_PTR_NOT_NULL_FATAL(o);
	for (size_t i = 0; i < algo_count(); i++) {
		const struct algo_ops *a = algo_at(i);

		for (int t = 0; t < 2; t++) {
			for (int c = 0; c < 2; c++) {
				char what[128];

				snprintf(what, sizeof(what), "%s trace %d config %s", a->name, t,
					 c ? "fast" : "defaults");
				drive(traces[t], a, c ? fast_sets : NULL, 1, 20000, 250, o);
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

		drive(gen_trace(), a, fast_sets, 3, 20000, 250, x);
		drive(gen_trace(), a, fast_sets, 3, 20000, 250, y);
		CU_ASSERT_EQUAL(x->n, y->n);
		report(x->n == y->n && memcmp(x->m, y->m, x->n * sizeof(x->m[0])) == 0, a->name,
		       "same seed, same series");
		if (strcmp(a->name, "esx") == 0) {
			/* Random sampling: another seed, another series. */
			drive(gen_trace(), a, fast_sets, 4, 20000, 250, y);
			report(x->n != y->n || memcmp(x->m, y->m, x->n * sizeof(x->m[0])) != 0,
			       a->name, "another seed, another series");
		}
	}
	free(x);
	free(y);
}
