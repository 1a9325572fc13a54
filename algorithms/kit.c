/*
 * kit.c - implements the merge algorithms' shared kit (kit.h) and
 * algo_check(), the contract check every driver runs before create().
 *
 * Partitions.  A small map (sp_map.h) takes the full 64-bit key domain <<
 * 32 | node to a dense id, so no two pairs can ever share an id, however
 * many domains or nodes there are (packing both into 32 bits, as the
 * algorithms once did, made domains 0 and 65536, or nodes 0 and 256,
 * collide).
 */
#include <stdlib.h>
#include <string.h>

#include "algorithm.h"
#include "kit.h"
#include "sp_bigmem.h"

/* ---- partitions ------------------------------------------------------------ */

int kit_parts_init(struct kit_parts *t)
{
	memset(t, 0, sizeof(*t));
	return 0;
}

void kit_parts_release(struct kit_parts *t)
{
	sp_map_release(&t->id1);
	memset(t, 0, sizeof(*t));
}

int kit_part_id(struct kit_parts *t, uint32_t domain, uint32_t node, bool across, uint32_t *out)
{
	uint64_t key = (uint64_t)domain << 32 | (across ? KIT_ANY_NODE : node);
	uint32_t *id1, id;
	int rc;

	if (t->n && key == t->last_key) {
		*out = t->last_id;
		return 0;
	}
	id1 = sp_map_find(&t->id1, key);
	if (id1) {
		id = *id1 - 1;
	} else {
		if (t->n >= UINT32_MAX - 1)
			return SP_ELIMIT;
		rc = sp_map_set(&t->id1, key, t->n + 1);
		if (rc < 0)
			return rc;
		id = t->n++;
	}
	t->last_key = key;
	t->last_id = *out = id;
	return 0;
}

void *kit_grow(void *arr, size_t elem, uint64_t n, uint64_t need)
{
	char *a;

	if (need <= n || need > SIZE_MAX / elem)
		return NULL;
	a = realloc(arr, need * elem);
	if (a)
		memset(a + n * elem, 0, (need - n) * elem);
	return a;
}

/* ---- hash chains -------------------------------------------------------- */

int kit_hash_init(struct kit_hash *h, uint64_t entries)
{
	uint64_t mask = 1023;

	while (mask < entries && mask < UINT32_MAX / 2)
		mask = mask * 2 + 1;
	h->mask = (uint32_t)mask;
	h->shift = 0;
	h->borrowed = 0;
	h->head = sp_hot_calloc((size_t)mask + 1, sizeof(*h->head)); /* every bucket, every pass */
	return h->head ? 0 : SP_ENOMEM;
}

void kit_hash_release(struct kit_hash *h)
{
	if (h->head && !h->borrowed)
		sp_hot_free(h->head, ((size_t)h->mask + 1) << h->shift, sizeof(*h->head));
	h->head = NULL;
}

void kit_hash_clear(struct kit_hash *h)
{
	if (!h->shift) {
		memset(h->head, 0, ((size_t)h->mask + 1) * sizeof(*h->head));
		return;
	}
	for (size_t b = 0; b <= h->mask; b++)
		h->head[b << h->shift] = 0;
}

int kit_hash_pair(struct kit_hash *a, struct kit_hash *b)
{
	size_t n = (size_t)a->mask + 1;
	uint32_t *two;

	if (a->mask != b->mask || a->shift || b->shift)
		return SP_EINVAL;
	two = sp_hot_calloc(2 * n, sizeof(*two));
	if (!two)
		return SP_ENOMEM;
	kit_hash_release(a);
	kit_hash_release(b);
	a->head = two;
	b->head = two + 1;
	a->shift = b->shift = 1;
	b->borrowed = 1;
	return 0;
}

void kit_hash_insert(struct kit_hash *h, struct kit_entry *e, uint32_t i, uint32_t csum,
		     uint32_t part)
{
	kit_chain_insert(h, (char *)(e + 1), sizeof(*e), i, csum, part);
}

void kit_hash_remove(struct kit_hash *h, struct kit_entry *e, uint32_t i)
{
	kit_chain_remove(h, (char *)(e + 1), sizeof(*e), i);
}

/* ---- per-page unstable sets ------------------------------------------------- */

int kit_unstable_init(struct kit_unstable *u, struct kit_unode *nodes, size_t stride,
		      uint64_t entries)
{
	memset(u, 0, sizeof(*u));
	u->nodes = (char *)nodes;
	u->stride = stride;
	u->cur = 1;
	return kit_hash_init(&u->hash, entries);
}

void kit_unstable_release(struct kit_unstable *u)
{
	kit_hash_release(&u->hash);
	memset(u, 0, sizeof(*u));
}

void kit_unstable_reset(struct kit_unstable *u)
{
	kit_hash_clear(&u->hash);
	u->cur = kit_gen_add(u->cur, 1);
	u->linked = 0;
}

/* ---- the stable table ------------------------------------------------------ */

int kit_stable_init(struct kit_stable *s, uint64_t npages, uint64_t entries)
{
	memset(s, 0, sizeof(*s));
	s->cap = 1024;
	s->used = 1; /* entry 0 means none */
	s->npages = npages;
	s->frame = sp_big_calloc(s->cap, sizeof(*s->frame));
	s->live = sp_big_calloc(s->cap, sizeof(*s->live));
	s->key = sp_big_calloc(s->cap, sizeof(*s->key));
	s->of_page = sp_hot_calloc(npages + 1, sizeof(*s->of_page));
	if (!s->frame || !s->live || !s->key || !s->of_page || kit_hash_init(&s->hash, entries) < 0) {
		kit_stable_release(s);
		return SP_ENOMEM;
	}
	return 0;
}

void kit_stable_release(struct kit_stable *s)
{
	sp_big_free(s->frame, s->cap, sizeof(*s->frame));
	sp_big_free(s->live, s->cap, sizeof(*s->live));
	sp_big_free(s->key, s->cap, sizeof(*s->key));
	sp_hot_free(s->of_page, s->npages + 1, sizeof(*s->of_page));
	kit_hash_release(&s->hash);
	memset(s, 0, sizeof(*s));
}

static int stable_grow(struct kit_stable *s)
{
	uint32_t cap = s->cap * 2;
	bk_frame *f;
	uint32_t *l;
	struct kit_entry *k;

	if (cap <= s->cap)
		return SP_ENOMEM;
	/* All three grow, or none: the arrays' common capacity frees them. */
	f = sp_big_calloc(cap, sizeof(*f));
	l = sp_big_calloc(cap, sizeof(*l));
	k = sp_big_calloc(cap, sizeof(*k));
	if (!f || !l || !k) {
		sp_big_free(f, cap, sizeof(*f));
		sp_big_free(l, cap, sizeof(*l));
		sp_big_free(k, cap, sizeof(*k));
		return SP_ENOMEM;
	}
	memcpy(f, s->frame, s->cap * sizeof(*f));
	memcpy(l, s->live, s->cap * sizeof(*l));
	memcpy(k, s->key, s->cap * sizeof(*k));
	sp_big_free(s->frame, s->cap, sizeof(*f));
	sp_big_free(s->live, s->cap, sizeof(*l));
	sp_big_free(s->key, s->cap, sizeof(*k));
	s->frame = f;
	s->live = l;
	s->key = k;
	s->cap = cap;
	return 0;
}

int kit_stable_add(struct kit_stable *s, bk_frame f, uint32_t csum, uint32_t part, uint32_t *out)
{
	uint32_t i;

	if (s->free_head) {
		i = s->free_head;
		s->free_head = s->key[i].next;
	} else {
		if (s->used == s->cap && stable_grow(s) < 0)
			return SP_ENOMEM;
		i = s->used++;
	}
	s->frame[i] = f;
	s->live[i] = 0;
	kit_hash_insert(&s->hash, s->key, i, csum, part);
	*out = i;
	return 0;
}

void kit_stable_attach(struct kit_stable *s, bk_page p, uint32_t i)
{
	if (s->live[i]++)
		s->sharing++;
	else
		s->shared++;
	s->of_page[p] = i;
}

uint32_t kit_stable_detach(struct kit_stable *s, bk_page p)
{
	uint32_t i = s->of_page[p];

	s->of_page[p] = 0;
	if (--s->live[i]) {
		s->sharing--;
		return i;
	}
	s->shared--;
	kit_hash_remove(&s->hash, s->key, i);
	s->key[i].next = s->free_head;
	s->free_head = i;
	return i;
}

/* ---- the EBUSY rule ---------------------------------------------------------- */

int kit_refuse_while_shared(const char *algo, const char *param, int64_t shared,
			    struct sp_err *err)
{
	if (shared <= 0)
		return 0;
	return sp_err_set(err, SP_EINVAL,
			  "%s: %s cannot change while %lld shared frames exist (the kernel answers EBUSY)",
			  algo, param, (long long)shared);
}

/* ---- the contract check ------------------------------------------------------ */

static int check_params(const struct algo_ops *a, struct sp_err *err)
{
	if (a->nparams > ALGO_MAX_PARAMS || (a->nparams && !a->params))
		return sp_err_set(err, SP_EINVAL, "algorithm '%s': %u parameters (at most %d, with a table)",
				  a->name, a->nparams, ALGO_MAX_PARAMS);
	for (uint32_t i = 0; i < a->nparams; i++) {
		const struct algo_param *p = &a->params[i];

		if (!p->name || !p->name[0] || !(p->min <= p->def && p->def <= p->max))
			return sp_err_set(err, SP_EINVAL,
					  "algorithm '%s': parameter %u has no name or a default outside its range",
					  a->name, i);
	}
	return 0;
}

int algo_check(const struct algo_ops *a, struct sp_err *err)
{
	const char *missing = NULL;

	if (!a)
		return sp_err_set(err, SP_EINVAL, "no algorithm");
	if (!a->name || !a->name[0])
		return sp_err_set(err, SP_EINVAL, "an algorithm without a name");
	if (a->version < 1 || a->version > ALGO_OPS_VERSION)
		return sp_err_set(err, SP_EINVAL, "algorithm '%s': contract version %u (this build knows 1..%d)",
				  a->name, a->version, ALGO_OPS_VERSION);
	if (!a->create)
		missing = "create";
	else if (!a->destroy)
		missing = "destroy";
	else if (!a->batch)
		missing = "batch";
	else if (!a->page_changed)
		missing = "page_changed";
	else if (!a->metrics)
		missing = "metrics";
	else if (a->version >= 3 && !a->repeat != !a->skip)
		missing = a->repeat ? "skip" : "repeat"; /* both or neither */
	if (missing)
		return sp_err_set(err, SP_EINVAL, "algorithm '%s' does not implement the contract: no %s()",
				  a->name, missing);
	return check_params(a, err);
}

/* ---- idle fast-forward: a scanner's repeating cycle ------------------------- */

void kit_cycle_init(struct kit_cycle *c, uint32_t span)
{
	memset(c, 0, sizeof(*c));
	c->last_scan = -1;
	c->power = 1;
	c->span = span;
}

enum kit_cycle_do kit_cycle_step(struct kit_cycle *c, int64_t full_scans, const int64_t *sig,
				 uint64_t changes, uint64_t now_ns, uint64_t idle_ns,
				 uint32_t cycle_scans)
{
	uint64_t scan_ns = now_ns - c->scan_end_ns;

	if (c->last_scan == full_scans)
		return KIT_CYCLE_NOTHING; /* not the end of a scan */
	c->last_scan = full_scans;
	c->scan_end_ns = now_ns;
	if (memcmp(sig, c->sig, sizeof(c->sig)) || changes != c->changes) {
		memcpy(c->sig, sig, sizeof(c->sig)); /* still converging: no copy */
		c->changes = changes;
		c->have = false;
		c->power = 1;
		c->quiet = 0;
		return KIT_CYCLE_NOTHING;
	}
	if (!c->have) {
		if (++c->quiet < 2) /* one quiet scan may be chance */
			return KIT_CYCLE_NOTHING;
		if (scan_ns && idle_ns / (2 * (uint64_t)cycle_scans + 2) < scan_ns)
			return KIT_CYCLE_NOTHING; /* too little idle left to skip a cycle */
		return KIT_CYCLE_COPY;
	}
	c->scans++;
	return KIT_CYCLE_COMPARE;
}

void kit_cycle_copied(struct kit_cycle *c, bool ok)
{
	c->have = ok;
	c->scans = 0;
}

bool kit_cycle_missed(struct kit_cycle *c)
{
	if (c->scans < c->power)
		return false;
	if (c->power < c->span)
		c->power *= 2;
	return true;
}

void kit_cycle_forget(struct kit_cycle *c, int64_t full_scans)
{
	c->have = false;
	c->last_scan = full_scans;
	memset(c->sig, 0, sizeof(c->sig));
	c->quiet = 0;
	c->power = 1;
}
