/*
 * test_kit.c - the algorithms' shared kit (kit.h): partitions never merge,
 * hash chains, the stable table, the EBUSY rule and algo_check(); and every
 * algorithm that honours merge_across_nodes keeping apart the partitions
 * that the old packed keys made collide.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "algorithm.h"
#include "harness.h"
#include "kit.h"
#include "tracebuild.h"

#define NDOMAINS 70000u
#define NNODES 1024u /* the format's node range; the test uses >= 300 of them */

struct seen {
	uint8_t *bit; /* (domain, node) pairs given an id, NDOMAINS x NNODES bits */
	uint64_t *pair;
	uint32_t *id;
	size_t n, cap;
};

/* Asks the table for (d, n): a new pair must get the next id, a known one an old id. */
static void ask(struct kit_parts *t, struct seen *s, uint32_t d, uint32_t node)
{
	uint64_t k = (uint64_t)d * NNODES + node;
	uint32_t before = t->n, id = UINT32_MAX;
	bool known = s->bit[k / 8] & (1u << (k % 8));

	CU_ASSERT_EQUAL_FATAL(kit_part_id(t, d, node, false, &id), 0);
	if (known) {
		CU_ASSERT_EQUAL(t->n, before);
		CU_ASSERT(id < before);
		return;
	}
	CU_ASSERT_EQUAL_FATAL(id, before); /* a fresh id: no earlier pair has it */
	CU_ASSERT_EQUAL(t->n, before + 1);
	s->bit[k / 8] |= (uint8_t)(1u << (k % 8));
	if (s->n == s->cap) {
		s->cap = s->cap ? s->cap * 2 : 1024;
		s->pair = realloc(s->pair, s->cap * sizeof(*s->pair));
		s->id = realloc(s->id, s->cap * sizeof(*s->id));
		CU_ASSERT_FATAL(s->pair && s->id);
	}
	s->pair[s->n] = k;
	s->id[s->n++] = id;
}

SP_TEST(partitions_never_merge)
{
	/* The pairs the old packed keys merged, among >= 300 nodes and >= 70,000 domains. */
	static const uint32_t special[] = { 0, 1, 255, 256, 65535, 65536, 65537, NDOMAINS - 1 };
	struct kit_parts t;
	struct seen s = { 0 };
	uint32_t id, id2;

	s.bit = calloc((size_t)NDOMAINS * NNODES / 8 + 1, 1);
	CU_ASSERT_PTR_NOT_NULL_FATAL(s.bit);
	CU_ASSERT_EQUAL_FATAL(kit_parts_init(&t), 0);
	for (uint32_t d = 0; d < NDOMAINS; d++) {
		ask(&t, &s, d, d % 300);
		ask(&t, &s, d, (d * 7 + 256) % 300);
		ask(&t, &s, d, 256 + d % 768);
	}
	for (size_t i = 0; i < sizeof(special) / sizeof(special[0]); i++) {
		for (uint32_t node = 0; node < NNODES; node++)
			ask(&t, &s, special[i], node);
	}
	CU_ASSERT(t.n > 3 * 60000);
	/* Asked again in another order, every pair keeps its id. */
	for (size_t i = s.n; i-- > 0;) {
		CU_ASSERT_EQUAL_FATAL(kit_part_id(&t, (uint32_t)(s.pair[i] / NNODES),
						  (uint32_t)(s.pair[i] % NNODES), false, &id), 0);
		CU_ASSERT_EQUAL_FATAL(id, s.id[i]);
	}
	CU_ASSERT_EQUAL(t.n, s.n);
	/* Across nodes: one partition per domain whatever the node, none shared with a pair. */
	CU_ASSERT_EQUAL(kit_part_id(&t, 65536, 0, true, &id), 0);
	CU_ASSERT_EQUAL(kit_part_id(&t, 65536, 299, true, &id2), 0);
	CU_ASSERT_EQUAL(id, id2);
	CU_ASSERT_EQUAL(id, s.n);
	CU_ASSERT_EQUAL(kit_part_id(&t, 0, 0, true, &id2), 0);
	CU_ASSERT_NOT_EQUAL(id, id2);
	CU_ASSERT_EQUAL(t.n, s.n + 2);
	kit_parts_release(&t);
	free(s.bit);
	free(s.pair);
	free(s.id);
}

SP_TEST(hash_chains_and_stable_table)
{
	struct kit_hash h;
	struct kit_entry e[8] = { { 0 } };
	struct kit_stable st;
	uint32_t i, j, n = 0;

	CU_ASSERT_EQUAL_FATAL(kit_hash_init(&h, 10), 0);
	CU_ASSERT_EQUAL(h.mask, 1023u);
	for (i = 1; i < 8; i++)
		kit_hash_insert(&h, e, i, i % 2 ? 5 : 6, 1);
	for (i = kit_hash_first(&h, 5, 1); i; i = e[i].next)
		n += e[i].csum == 5 && e[i].part == 1;
	CU_ASSERT_EQUAL(n, 4u);
	CU_ASSERT_EQUAL(e[7].prev, KIT_FIRST); /* the last inserted heads its chain */
	CU_ASSERT_EQUAL(e[5].prev, 7u);
	kit_hash_remove(&h, e, 7); /* the head of its chain */
	CU_ASSERT_EQUAL(e[7].prev, 0u); /* out of any chain */
	CU_ASSERT_EQUAL(e[5].prev, KIT_FIRST); /* the new head */
	CU_ASSERT_EQUAL(kit_hash_first(&h, 5, 1), 5u);
	kit_hash_remove(&h, e, 3); /* a middle one */
	CU_ASSERT_EQUAL(e[5].next, 1u);
	CU_ASSERT_EQUAL(e[1].prev, 5u);
	n = 0;
	for (i = kit_hash_first(&h, 5, 1); i; i = e[i].next)
		n += e[i].csum == 5;
	CU_ASSERT_EQUAL(n, 2u);
	kit_hash_clear(&h);
	CU_ASSERT_EQUAL(kit_hash_first(&h, 5, 1), 0u);
	kit_hash_release(&h);

	CU_ASSERT_EQUAL_FATAL(kit_stable_init(&st, 4000, 4000), 0);
	for (bk_page p = 0; p < 3000; p++) {
		if (p % 3 == 0)
			CU_ASSERT_EQUAL_FATAL(kit_stable_add(&st, 100 + p, (uint32_t)p, 9, &j), 0);
		kit_stable_attach(&st, p, j);
	}
	CU_ASSERT_EQUAL(st.shared, 1000);
	CU_ASSERT_EQUAL(st.sharing, 2000);
	for (bk_page p = 0; p < 3000; p += 3) {
		kit_stable_detach(&st, p + 1);
		i = kit_stable_detach(&st, p + 2);
		CU_ASSERT(st.live[i] == 1);
	}
	CU_ASSERT_EQUAL(st.shared, 1000);
	CU_ASSERT_EQUAL(st.sharing, 0);
	i = kit_stable_detach(&st, 0);
	CU_ASSERT_EQUAL(st.live[i], 0u);
	CU_ASSERT_EQUAL(kit_hash_first(&st.hash, 0, 9) == i, false); /* out of its chain */
	CU_ASSERT_EQUAL(kit_stable_add(&st, 7, 1, 1, &j), 0);
	CU_ASSERT_EQUAL(j, i); /* the freed entry is reused */
	kit_stable_release(&st);
}

/*
 * The unstable set over nodes inside a caller's larger per-page records (a
 * stride past the node): members and linked nodes counted through inserts,
 * removes and a reset, the chains found again, the records' own field never
 * written.
 */
SP_TEST(unstable_set_in_callers_records)
{
	enum { NP = 64 };
	struct rec {
		struct kit_unode un;
		uint32_t own; /* the caller's */
	} r[NP];
	struct kit_unstable u;
	uint32_t q1, part = 0, n = 0;

	memset(r, 0, sizeof(r));
	for (bk_page p = 0; p < NP; p++)
		r[p].own = 0xabc0000u + (uint32_t)p;
	CU_ASSERT_EQUAL_FATAL(kit_unstable_init(&u, &r[0].un, sizeof(r[0]), NP), 0);
	for (bk_page p = 0; p < NP; p += 2)
		kit_unstable_insert(&u, p, p % 4 ? 7 : 8, (uint32_t)p % 3);
	CU_ASSERT_EQUAL(u.members, NP / 2);
	CU_ASSERT_EQUAL(u.linked, (uint64_t)NP / 2);
	CU_ASSERT(kit_unstable_member(&u, 2) && !kit_unstable_member(&u, 3));
	for (q1 = kit_hash_first(&u.hash, 7, 2); q1; q1 = r[q1 - 1].un.key.next)
		n += r[q1 - 1].un.key.csum == 7 && r[q1 - 1].un.key.part == 2;
	CU_ASSERT_EQUAL(n, 6u); /* p = 2 mod 12: 2, 14, 26, 38, 50, 62 */
	CU_ASSERT(kit_unstable_remove(&u, 14, &part)); /* linked now: its partition told */
	CU_ASSERT_EQUAL(part, 14u % 3);
	CU_ASSERT(!kit_unstable_remove(&u, 14, &part)); /* not a member any more */
	CU_ASSERT(!kit_unstable_remove(&u, 15, NULL));  /* never one */
	CU_ASSERT_EQUAL(u.members, NP / 2 - 1);
	n = 0;
	for (q1 = kit_hash_first(&u.hash, 7, 2); q1; q1 = r[q1 - 1].un.key.next)
		n += q1 - 1 != 14;
	CU_ASSERT_EQUAL(n, 5u);
	kit_unstable_reset(&u); /* a new generation: nothing linked, every member counted */
	CU_ASSERT_EQUAL(kit_hash_first(&u.hash, 7, 2), 0u);
	CU_ASSERT_EQUAL(u.linked, 0u);
	CU_ASSERT_EQUAL(u.members, NP / 2 - 1);
	CU_ASSERT(!kit_unstable_remove(&u, 2, NULL)); /* a member of the old one: unlinked already */
	CU_ASSERT_EQUAL(u.members, NP / 2 - 2);
	kit_unstable_insert(&u, 3, 7, 2);
	CU_ASSERT_EQUAL(kit_hash_first(&u.hash, 7, 2), 4u);
	CU_ASSERT_EQUAL(r[3].un.gen, u.cur);
	n = 0;
	for (bk_page p = 0; p < NP; p++)
		n += r[p].own != 0xabc0000u + (uint32_t)p;
	CU_ASSERT_EQUAL(n, 0u);
	kit_unstable_release(&u);
}

SP_TEST(ebusy_rule_and_contract_check)
{
	struct sp_err err = { 0 };
	struct algo_ops bad;

	CU_ASSERT_EQUAL(kit_refuse_while_shared("x", "merge_across_nodes", 0, &err), 0);
	CU_ASSERT_EQUAL(kit_refuse_while_shared("x", "merge_across_nodes", 3, &err), SP_EINVAL);
	CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "merge_across_nodes"));
	for (size_t i = 0; i < algo_count(); i++) {
		sp_err_clear(&err);
		CU_ASSERT_EQUAL(algo_check(algo_at(i), &err), 0);
	}
	CU_ASSERT_EQUAL(algo_check(NULL, &err), SP_EINVAL);
	bad = *algo_at(0);
	bad.batch = NULL;
	sp_err_clear(&err);
	CU_ASSERT_EQUAL(algo_check(&bad, &err), SP_EINVAL);
	CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "batch"));
	bad = *algo_at(0);
	bad.version = ALGO_OPS_VERSION + 1;
	CU_ASSERT_EQUAL(algo_check(&bad, &err), SP_EINVAL);
}

/*
 * Four guests that the old keys merged pairwise: (domain 0, node 0) and
 * (domain 0, node 256) shared domain << 8 | node & 0xff; (domain 0, node 0)
 * and (domain 65536, node 0) shared domain << 16 ^ node.  Each guest holds
 * contents 1..8 twice, the same in every guest, so with merge_across_nodes=0
 * exactly 8 pages per guest can be saved: 32 in all.
 */
SP_TEST(colliding_partitions_stay_apart)
{
	static const uint32_t dom[4] = { 0, 0, 65536, 1 };
	static const uint16_t node[4] = { 0, 256, 0, 0 };
	static const char *const sets[] = {
		"merge_across_nodes=0", "pages_to_scan=1000", "share_scan_vm=5000",
		"share_scan_total=20000", NULL,
	};
	char path[512];
	struct tb tb;

	sp_test_path(path, sizeof(path), "collide.sptrace");
	tb_init(&tb, 4, 16);
	for (uint32_t g = 0; g < 4; g++) {
		tb.h.guests[g].domain = dom[g];
		tb.h.guests[g].node = node[g];
	}
	tb_open(&tb, path);
	tb_snap(&tb, 0);
	for (uint32_t g = 0; g < 4; g++) {
		for (uint64_t i = 0; i < 16; i++)
			tb_page_ex(&tb, g, i, 1 + i % 8, 0, node[g]);
	}
	tb_commit(&tb);
	for (size_t i = 0; i < algo_count(); i++) {
		const struct algo_ops *a = algo_at(i);
		struct sim_config cfg;
		struct tb_series *s;
		const char *const *set = sets;
		char one[64];

		if (!(a->caps & ALGO_CAP_NODES))
			continue;
		tb_config(&cfg, a->name, NULL);
		for (; *set; set++) {
			struct sp_err err = { 0 };

			snprintf(one, sizeof(one), "%.*s", (int)(strchr(*set, '=') - *set), *set);
			if (algo_param_index(a, one) >= 0)
				CU_ASSERT_EQUAL_FATAL(algo_params_set(a, &cfg.params, *set, &err), 0);
		}
		cfg.duration_ms = 120000;
		s = tb_run(path, &cfg);
		if (s->m[s->n - 1].pages_sharing != 32)
			fprintf(stderr, "%s: pages_sharing %lld, expected 32\n", a->name,
				(long long)s->m[s->n - 1].pages_sharing);
		CU_ASSERT_EQUAL(s->m[s->n - 1].pages_sharing, 32);
		CU_ASSERT_EQUAL(s->m[s->n - 1].remote_sharers, 0);
		free(s);
	}
}
