/*
 * test_idle.c - idle time is fast-forwarded (sim.h, run.c, README "Idle
 * time") with exactly the results of simulating it batch by batch: every
 * registered algorithm, on traces whose idle gaps are still short enough
 * to simulate (so both runs can be compared sample by sample), and a trace
 * whose idle gap (10^12 ms) is not.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "harness.h"
#include "tracebuild.h"

/* Every sample of a run, on the heap. */
struct series {
	size_t n, cap;
	uint64_t *t;
	struct metrics *m;
};

static int keep(void *arg, uint64_t t, const struct metrics *m)
{
	struct series *s = arg;

	if (s->n == s->cap) {
		size_t cap = s->cap ? 2 * s->cap : 1024;
		uint64_t *nt = realloc(s->t, cap * sizeof(*nt));
		struct metrics *nm = nt ? realloc(s->m, cap * sizeof(*nm)) : NULL;

		if (nt)
			s->t = nt;
		if (!nm)
			return 1;
		s->m = nm;
		s->cap = cap;
	}
	s->t[s->n] = t;
	s->m[s->n++] = *m;
	return 0;
}

static void series_free(struct series *s)
{
	free(s->t);
	free(s->m);
	memset(s, 0, sizeof(*s));
}

/*
 * Three guests of 160 pages: shared runs, zero pages, unique pages and a
 * few that change at every snapshot; snapshots at 0, 1 s and 2 s, then an
 * idle gap of gap_ms, a burst of writes (some undoing merges) and another
 * gap.  Contents from a fixed LCG, so the trace is the same every time.
 */
static void idle_trace(const char *path, uint64_t gap_ms)
{
	struct tb tb;
	uint64_t times[] = { 0, 1000, 2000, 2000 + gap_ms, 2500 + gap_ms, 2500 + 2 * gap_ms };
	uint64_t rng = 12345;

	tb_init(&tb, 3, 160);
	tb_open(&tb, path);
	for (size_t s = 0; s < sizeof(times) / sizeof(times[0]); s++) {
		tb_snap(&tb, times[s]);
		for (uint32_t g = 0; g < 3; g++) {
			for (uint64_t p = 0; p < 160; p++) {
				uint64_t c;

				rng = rng * 6364136223846793005ull + 1442695040888963407ull;
				if (s > 0 && p % 7 != 3 && !(s == 3 && p % 11 == 0))
					continue; /* unchanged */
				if (p < 40)
					c = p % 10 + 1;                 /* shared across pages and guests */
				else if (p < 60)
					c = 0;                          /* zero-filled */
				else if (p % 7 == 3)
					c = 1000 + (rng >> 40) % 50;    /* volatile, sometimes equal */
				else if (p < 100)
					c = 100 + p;                    /* shared across guests */
				else
					c = 10000 + g * 1000 + p;       /* unique */
				if (s == 3 && p % 11 == 0)
					c = 500 + g;                    /* writes that break merges */
				tb_page(&tb, g, p, c);
			}
		}
	}
	tb_commit(&tb);
}

static int run(const char *path, const struct algo_ops *a, const char *const *sets, bool no_skip,
	       struct series *s, struct sim_result *res)
{
	struct sim_config cfg;
	struct sp_err err = { 0 };
	int rc;

	sim_config_defaults(&cfg, a);
	for (; sets && *sets; sets++) {
		if (algo_param_index(a, *sets) < 0 && strchr(*sets, '=')) {
			char key[64];
			size_t len = (size_t)(strchr(*sets, '=') - *sets);

			snprintf(key, sizeof(key), "%.*s", (int)len, *sets);
			if (algo_param_index(a, key) < 0)
				continue; /* a parameter this algorithm does not have */
		}
		CU_ASSERT_EQUAL_FATAL(algo_params_set(a, &cfg.params, *sets, &err), 0);
	}
	cfg.no_skip = no_skip;
	cfg.sample_ms = 500;
	memset(s, 0, sizeof(*s));
	rc = sim_run(path, &cfg, keep, NULL, s, res, &err);
	if (rc != 0)
		fprintf(stderr, "%s: %s\n", a->name, err.msg);
	return rc;
}

/* Whether the two runs agree on every sample and every result but the fast-forward's own. */
static bool same_run(const struct series *x, const struct sim_result *rx, const struct series *y,
		     const struct sim_result *ry, const char *what)
{
	struct sim_result a = *rx, b = *ry;

	a.skipped_ns = b.skipped_ns = 0;
	a.skipped_cycles = b.skipped_cycles = 0;
	if (x->n != y->n) {
		fprintf(stderr, "%s: %zu samples against %zu\n", what, x->n, y->n);
		return false;
	}
	for (size_t i = 0; i < x->n; i++) {
		if (x->t[i] != y->t[i] || memcmp(&x->m[i], &y->m[i], sizeof(x->m[i]))) {
			for (int k = 0; k < METRICS_COUNT; k++)
				if (metrics_get(&x->m[i], k) != metrics_get(&y->m[i], k))
					fprintf(stderr, "%s: at %llu ms %s %lld against %lld\n", what,
						(unsigned long long)x->t[i], metrics_names[k],
						(long long)metrics_get(&x->m[i], k),
						(long long)metrics_get(&y->m[i], k));
			return false;
		}
	}
	if (memcmp(&a, &b, sizeof(a))) {
		fprintf(stderr, "%s: results differ\n", what);
		return false;
	}
	return true;
}

/*
 * Settings each algorithm is run with (a key it lacks is left out): the
 * defaults, and ksm's smart_scan off, zero pages, chains of 2 (their prune
 * times), write tracking, an old kernel's pages_scanned and no tick rounding.
 */
static const char *const variants[][4] = {
	{ NULL },
	{ "smart_scan=0", NULL },
	{ "use_zero_pages=1", "max_page_sharing=2", NULL },
	{ "max_page_sharing=3", "stable_node_chains_prune_millisecs=300", "write_tracking=1", NULL },
	{ "tick_hz=0", "pages_to_scan=37", "sleep_millisecs=7", NULL },
};

SP_TEST(every_algorithm_skips_exactly)
{
	char path[512];

	sp_test_path(path, sizeof(path), "idle.sptrace");
	idle_trace(path, 240000); /* 4 minutes idle, twice */
	for (size_t i = 0; i < algo_count(); i++) {
		const struct algo_ops *a = algo_at(i);
		bool can = (a->version >= 3 && a->repeat) || (a->caps & ALGO_CAP_OMNISCIENT);

		for (size_t v = 0; v < sizeof(variants) / sizeof(variants[0]); v++) {
			struct series s, n;
			struct sim_result rs, rn;
			char what[128];

			snprintf(what, sizeof(what), "%s variant %zu", a->name, v);
			CU_ASSERT_EQUAL_FATAL(run(path, a, variants[v], false, &s, &rs), 0);
			CU_ASSERT_EQUAL_FATAL(run(path, a, variants[v], true, &n, &rn), 0);
			CU_ASSERT(same_run(&s, &rs, &n, &rn, what));
			CU_ASSERT_EQUAL(rn.skipped_ns, 0);
			/* the run does fast-forward (over 200 s of the 8 idle minutes) where it can */
			if (can && rs.skipped_ns < 200000ull * 1000000ull)
				fprintf(stderr, "%s: only %llu ms skipped\n", what,
					(unsigned long long)(rs.skipped_ns / 1000000));
			CU_ASSERT(!can || rs.skipped_ns >= 200000ull * 1000000ull);
			CU_ASSERT(can || rs.skipped_ns == 0);
			series_free(&s);
			series_free(&n);
		}
	}
}

SP_TEST(old_kernels_skip_exactly)
{
	static const char *const kernels[] = { "6.1", "6.6", "6.8", "6.12" };
	const struct algo_ops *a = algo_find("ksm");
	char path[512];

	sp_test_path(path, sizeof(path), "idle-k.sptrace");
	idle_trace(path, 90000);
	for (size_t i = 0; i < sizeof(kernels) / sizeof(kernels[0]); i++) {
		struct sim_config cfg;
		struct series s, n;
		struct sim_result rs, rn;
		struct sp_err err = { 0 };

		sim_config_defaults(&cfg, a);
		CU_ASSERT_EQUAL_FATAL(algo_kernel_parse(&cfg.kernel, kernels[i], &err), 0);
		memset(&s, 0, sizeof(s));
		memset(&n, 0, sizeof(n));
		CU_ASSERT_EQUAL_FATAL(sim_run(path, &cfg, keep, NULL, &s, &rs, &err), 0);
		cfg.no_skip = true;
		CU_ASSERT_EQUAL_FATAL(sim_run(path, &cfg, keep, NULL, &n, &rn, &err), 0);
		CU_ASSERT(same_run(&s, &rs, &n, &rn, kernels[i]));
		CU_ASSERT(rs.skipped_ns > 0);
		series_free(&s);
		series_free(&n);
	}
}

SP_TEST(a_gap_of_ten_to_the_twelve_ms_completes)
{
	static const char *const algos[] = { "ksm", "zero", "oracle", "cmd" };
	char late[512], soon[512];

	sp_test_path(late, sizeof(late), "late.sptrace");
	sp_test_path(soon, sizeof(soon), "soon.sptrace");
	tb_two_snapshots(late, 1000000000000ull); /* 10^12 ms: 31 years */
	tb_two_snapshots(soon, 100000);
	for (size_t i = 0; i < sizeof(algos) / sizeof(algos[0]); i++) {
		const struct algo_ops *a = algo_find(algos[i]);
		struct series sl, ss;
		struct sim_result rl, rs;
		time_t t0 = time(NULL);

		if (!a || !((a->version >= 3 && a->repeat) || (a->caps & ALGO_CAP_OMNISCIENT)))
			continue; /* batch by batch: still refused up front (test_harden) */
		CU_ASSERT_EQUAL_FATAL(run(late, a, NULL, false, &sl, &rl), 0);
		CU_ASSERT(time(NULL) - t0 < 30);
		CU_ASSERT_EQUAL_FATAL(run(soon, a, NULL, false, &ss, &rs), 0);
		/* the same steady state as after a short gap, at the end of 31 years */
		CU_ASSERT_EQUAL(rl.end_ms, 1000000000000ull + 60000);
		CU_ASSERT_EQUAL(rl.last.pages_sharing, rs.last.pages_sharing);
		CU_ASSERT_EQUAL(rl.last.pages_shared, rs.last.pages_shared);
		CU_ASSERT_EQUAL(metrics_saved(&rl.last), metrics_saved(&rs.last));
		CU_ASSERT(strcmp(a->name, "zero") == 0 || rl.last.pages_sharing > 0);
		CU_ASSERT(rl.last.full_scans >= rs.last.full_scans);
		if (a->caps & ALGO_CAP_SCANNER) {
			/* a scan of 32 pages about every 24 ms for 31 years, and its CPU time */
			CU_ASSERT(rl.last.full_scans > 1000000000ll);
			CU_ASSERT(rl.last.cpu_ns > 1000 * rs.last.cpu_ns);
		}
		/* the CSV's rows: the idle span thinned to SIM_SKIP_ROWS, and the rest */
		CU_ASSERT(sl.n <= 2 * SIM_SKIP_ROWS + 1000);
		CU_ASSERT_EQUAL(sl.t[sl.n - 1], rl.end_ms);
		for (size_t k = 1; k < sl.n; k++)
			CU_ASSERT_FATAL(sl.t[k] > sl.t[k - 1]);
		series_free(&sl);
		series_free(&ss);
	}
}

SP_TEST(the_clock_saturates_at_its_end)
{
	char path[512];
	struct series s;
	struct sim_result r;
	const struct algo_ops *a = algo_find("ksm");
	time_t t0 = time(NULL);

	sp_test_path(path, sizeof(path), "edge.sptrace");
	tb_two_snapshots(path, SIM_MAX_MS - 60000); /* the run ends at the clock's very end */
	CU_ASSERT_EQUAL_FATAL(run(path, a, NULL, false, &s, &r), 0);
	CU_ASSERT_EQUAL(r.end_ms, SIM_MAX_MS / 500 * 500); /* the last sample (every 500 ms) */
	CU_ASSERT(time(NULL) - t0 < 30);
	CU_ASSERT(r.last.full_scans > 0 && r.last.cpu_ns > 0 && r.last.pages_sharing > 0);
	for (size_t k = 1; k < s.n; k++) {
		CU_ASSERT_FATAL(s.t[k] > s.t[k - 1]); /* never wrapped */
		CU_ASSERT_FATAL(s.m[k].full_scans >= s.m[k - 1].full_scans);
		CU_ASSERT_FATAL(s.m[k].cpu_ns >= s.m[k - 1].cpu_ns);
	}
	series_free(&s);
}

SP_TEST(a_controller_simulates_every_batch)
{
	char path[512];
	struct sim_config cfg;
	struct sim_result r;
	struct sp_err err = { 0 };

	sp_test_path(path, sizeof(path), "ctl.sptrace");
	idle_trace(path, 60000);
	sim_config_defaults(&cfg, algo_find("ksm"));
	cfg.ctl = ctl_find("ksmtuned");
	CU_ASSERT_PTR_NOT_NULL_FATAL(cfg.ctl);
	ctl_params_defaults(cfg.ctl, &cfg.ctl_params);
	CU_ASSERT_EQUAL_FATAL(sim_ctl_set(&cfg, "monitor_interval=10", &err), 0);
	CU_ASSERT_FALSE(sim_can_skip(&cfg));
	CU_ASSERT_EQUAL_FATAL(sim_run(path, &cfg, NULL, NULL, NULL, &r, &err), 0);
	CU_ASSERT_EQUAL(r.skipped_ns, 0);
	/* and a 10^12 ms gap under a policy is still refused up front, with its estimate */
	tb_two_snapshots(path, 1000000000000ull);
	sp_err_clear(&err);
	CU_ASSERT_EQUAL(sim_run(path, &cfg, NULL, NULL, NULL, &r, &err), SP_ELIMIT);
	CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "samples"));
}
