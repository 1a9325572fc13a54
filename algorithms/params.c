/*
 * params.c - parameter defaults, "key=value" parsing with range checks, and
 * formatting, for any algorithm's parameter table.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "algorithm.h"
#include "kernel.h"

void algo_params_defaults(const struct algo_ops *a, struct algo_params *out)
{
	memset(out, 0, sizeof(*out));
	for (uint32_t i = 0; i < a->nparams && i < ALGO_MAX_PARAMS; i++)
		out->v[i] = a->params[i].def;
}

int algo_param_index(const struct algo_ops *a, const char *name)
{
	for (uint32_t i = 0; i < a->nparams; i++) {
		if (strcmp(a->params[i].name, name) == 0)
			return (int)i;
	}
	return -1;
}

static void list_keys(const struct algo_ops *a, char *buf, size_t len)
{
	size_t off = 0;

	buf[0] = '\0';
	for (uint32_t i = 0; i < a->nparams && off < len; i++) {
		int n = snprintf(buf + off, len - off, "%s%s", i ? ", " : "", a->params[i].name);

		if (n < 0)
			break;
		off += (size_t)n;
	}
	if (a->nparams == 0)
		snprintf(buf, len, "(none)");
}

int algo_params_set(const struct algo_ops *a, struct algo_params *out, const char *kv,
		    struct sp_err *err)
{
	const char *eq = strchr(kv, '=');
	char key[64], keys[256], *end;
	const struct algo_param *p;
	double v;
	int idx;

	if (!eq || eq == kv || (size_t)(eq - kv) >= sizeof(key))
		return sp_err_set(err, SP_EINVAL, "--set '%s': expected key=value", kv);
	memcpy(key, kv, (size_t)(eq - kv));
	key[eq - kv] = '\0';
	idx = algo_param_index(a, key);
	if (idx < 0) {
		list_keys(a, keys, sizeof(keys));
		return sp_err_set(err, SP_EINVAL, "algorithm '%s' has no parameter '%s'; valid: %s",
				  a->name, key, keys);
	}
	p = &a->params[idx];
	errno = 0;
	v = strtod(eq + 1, &end);
	if (eq[1] == '\0' || *end != '\0' || errno || !isfinite(v))
		return sp_err_set(err, SP_EINVAL, "%s.%s: '%s' is not a number", a->name, key, eq + 1);
	if (p->integer && v != floor(v))
		return sp_err_set(err, SP_EINVAL, "%s.%s: '%s' must be an integer", a->name, key,
				  eq + 1);
	if (v < p->min || v > p->max)
		return sp_err_set(err, SP_EINVAL, "%s.%s=%s is out of range [%g, %g]", a->name, key,
				  eq + 1, p->min, p->max);
	out->v[idx] = v;
	out->given |= 1u << idx;
	return 0;
}

void algo_params_format_for(const struct algo_kernel *k, const struct algo_ops *a,
			    const struct algo_params *p, char *buf, size_t len)
{
	size_t off = 0;

	if (len)
		buf[0] = '\0';
	for (uint32_t i = 0; i < a->nparams && off < len; i++) {
		int n;

		if (k && !algo_kernel_offers(k, a->params[i].name, NULL, 0))
			continue;
		n = snprintf(buf + off, len - off, "%s%s=%g", off ? " " : "", a->params[i].name, p->v[i]);
		if (n < 0)
			break;
		off += (size_t)n;
	}
}

void algo_params_format(const struct algo_ops *a, const struct algo_params *p, char *buf,
			size_t len)
{
	algo_params_format_for(NULL, a, p, buf, len);
}
