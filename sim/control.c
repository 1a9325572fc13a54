/*
 * control.c - the registry of control policies (from controllers.def) and
 * their parameter parsing, which reuses the algorithms' through a view.
 */
#include <string.h>

#include "control.h"

#define CTL(n) extern const struct ctl_ops ctl_##n;
#include "controllers.def"
#undef CTL

static const struct ctl_ops *const registry[] = {
#define CTL(n) &ctl_##n,
#include "controllers.def"
#undef CTL
};

size_t ctl_count(void)
{
	return sizeof(registry) / sizeof(registry[0]);
}

const struct ctl_ops *ctl_at(size_t i)
{
	return i < ctl_count() ? registry[i] : NULL;
}

const struct ctl_ops *ctl_find(const char *name)
{
	for (size_t i = 0; i < ctl_count(); i++) {
		if (strcmp(registry[i]->name, name) == 0)
			return registry[i];
	}
	return NULL;
}

/* An algo_ops that only carries the policy's name and parameter table. */
static struct algo_ops view(const struct ctl_ops *c)
{
	struct algo_ops v;

	memset(&v, 0, sizeof(v));
	v.name = c->name;
	v.params = c->params;
	v.nparams = c->nparams;
	return v;
}

void ctl_params_defaults(const struct ctl_ops *c, struct algo_params *out)
{
	struct algo_ops v = view(c);

	algo_params_defaults(&v, out);
}

int ctl_params_set(const struct ctl_ops *c, struct algo_params *out, const char *kv,
		   struct sp_err *err)
{
	struct algo_ops v = view(c);

	return algo_params_set(&v, out, kv, err);
}

bool ctl_is_text_param(const struct ctl_ops *c, const char *name)
{
	if (c->version < 2 || !c->text_params)
		return false;
	for (const char *const *t = c->text_params; *t; t++) {
		if (!strcmp(*t, name))
			return true;
	}
	return false;
}
