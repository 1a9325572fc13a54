/*
 * registry.c - the table of built-in merge algorithms, generated from
 * registry.def (one line per algorithm).
 */
#include <string.h>

#include "algorithm.h"

#define ALGO(n) extern const struct algo_ops algo_##n;
#include "registry.def"
#undef ALGO

static const struct algo_ops *const registry[] = {
#define ALGO(n) &algo_##n,
#include "registry.def"
#undef ALGO
};

size_t algo_count(void)
{
	return sizeof(registry) / sizeof(registry[0]);
}

const struct algo_ops *algo_at(size_t i)
{
	return i < algo_count() ? registry[i] : NULL;
}

const struct algo_ops *algo_find(const char *name)
{
	for (size_t i = 0; i < algo_count(); i++) {
		if (strcmp(registry[i]->name, name) == 0)
			return registry[i];
	}
	return NULL;
}
