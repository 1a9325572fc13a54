/*
 * cli_parse.c - implements the table-driven command-line parser
 * (cli_parse.h): one pass over argv that looks every option up in the
 * command's tables, converts and range-checks its value by type and stores
 * it at the field's offset; then the required options and the count of
 * positional arguments are checked.  The help is generated from the same
 * tables.
 *
 * Invariants: the parser reads argv and writes only into opts and err; on
 * an error, opts may be partly filled (the caller exits), err holds one
 * line that names the option and the value, escaped for a terminal
 * (sp_term_escape): an argument cannot make the message act on a terminal.
 */
#include "cli_parse.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "sp_error.h"

static int fail(struct cli_err *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int fail(struct cli_err *err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
	va_end(ap);
	return CLI_EUSAGE;
}

bool cli_parse_u64(const char *s, uint64_t *out)
{
	uint64_t v = 0;

	if (!s || !*s)
		return false;
	for (; *s; s++) {
		if (*s < '0' || *s > '9')
			return false;
		if (v > (UINT64_MAX - (uint64_t)(*s - '0')) / 10)
			return false;
		v = v * 10 + (uint64_t)(*s - '0');
	}
	*out = v;
	return true;
}

/* [-]digits[.digits][(e|E)[+-]digits] or [-].digits...: what strtod reads, minus the rest. */
static bool decimal_syntax(const char *s)
{
	size_t digits = 0;

	if (*s == '-')
		s++;
	for (; *s >= '0' && *s <= '9'; s++)
		digits++;
	if (*s == '.')
		for (s++; *s >= '0' && *s <= '9'; s++)
			digits++;
	if (!digits)
		return false;
	if (*s == 'e' || *s == 'E') {
		s++;
		if (*s == '+' || *s == '-')
			s++;
		if (*s < '0' || *s > '9')
			return false;
		while (*s >= '0' && *s <= '9')
			s++;
	}
	return *s == '\0';
}

bool cli_parse_double(const char *s, double *out)
{
	char *end;
	double v;

	if (!s || !decimal_syntax(s))
		return false;
	errno = 0;
	v = strtod(s, &end);
	if (errno || *end || !isfinite(v))
		return false;
	*out = v;
	return true;
}

static void *field(void *opts, const struct cli_opt *o)
{
	return (char *)opts + o->offset;
}

static int bad_value(const struct cli_opt *o, const char *v, struct cli_err *err, const char *why)
{
	if (why)
		return fail(err, "invalid value '%s' for --%s (%s)", v, o->name, why);
	return fail(err, "invalid value '%s' for --%s", v, o->name);
}

static int set_u64(const struct cli_opt *o, const char *v, uint64_t *out, struct cli_err *err)
{
	uint64_t max = o->max ? o->max : UINT64_MAX;
	char why[96];

	if (o->type == CLI_U32 && max > UINT32_MAX)
		max = UINT32_MAX;
	if (!cli_parse_u64(v, out))
		return bad_value(o, v, err, "a non-negative decimal integer");
	if (*out < o->min || *out > max) {
		snprintf(why, sizeof(why), "must be %" PRIu64 " to %" PRIu64, o->min, max);
		return bad_value(o, v, err, why);
	}
	return CLI_OK;
}

static int set_double(const struct cli_opt *o, const char *v, double *out, struct cli_err *err)
{
	char why[96];

	if (!cli_parse_double(v, out))
		return bad_value(o, v, err, "a decimal number");
	if ((o->dmin != 0 || o->dmax != 0) && (*out < o->dmin || *out > o->dmax)) {
		snprintf(why, sizeof(why), "must be %g to %g", o->dmin, o->dmax);
		return bad_value(o, v, err, why);
	}
	return CLI_OK;
}

static int set_enum(const struct cli_opt *o, const char *v, int *out, struct cli_err *err)
{
	char valid[256] = "";
	size_t len = 0;

	for (int i = 0; o->choices[i]; i++) {
		if (!strcmp(o->choices[i], v)) {
			*out = i;
			return CLI_OK;
		}
		len += (size_t)snprintf(valid + len, len < sizeof(valid) ? sizeof(valid) - len : 0,
					"%s%s", i ? ", " : "", o->choices[i]);
	}
	return fail(err, "unknown --%s '%s' (valid: %s)", o->name, v, valid);
}

static int too_many(const struct cli_opt *o, size_t n, struct cli_err *err)
{
	return fail(err, "more than %zu --%s options", n, o->name);
}

/* Converts and stores one option's value (NULL for a flag). */
static int store(const struct cli_opt *o, const char *v, void *opts, struct cli_err *err)
{
	size_t cap = o->max_count && o->max_count < CLI_LIST_MAX ? o->max_count : CLI_LIST_MAX;
	uint64_t u;
	int rc = CLI_OK;

	switch (o->type) {
	case CLI_FLAG:
		*(bool *)field(opts, o) = true;
		return CLI_OK;
	case CLI_U64:
		rc = set_u64(o, v, field(opts, o), err);
		break;
	case CLI_U32:
		rc = set_u64(o, v, &u, err);
		if (rc == CLI_OK)
			*(uint32_t *)field(opts, o) = (uint32_t)u;
		break;
	case CLI_DOUBLE:
		rc = set_double(o, v, field(opts, o), err);
		break;
	case CLI_PATH:
		if (!*v)
			return bad_value(o, v, err, "an empty path");
		/* fall through */
	case CLI_STRING:
		*(const char **)field(opts, o) = v;
		break;
	case CLI_ENUM:
		rc = set_enum(o, v, field(opts, o), err);
		break;
	case CLI_LIST: {
		struct cli_list *l = field(opts, o);

		if (l->n >= cap)
			return too_many(o, cap, err);
		l->v[l->n++] = v;
		break;
	}
	case CLI_U64_LIST: {
		struct cli_u64_list *l = field(opts, o);

		if (l->n >= cap)
			return too_many(o, cap, err);
		rc = set_u64(o, v, &u, err);
		if (rc == CLI_OK)
			l->v[l->n++] = u;
		break;
	}
	case CLI_FN:
		break;
	}
	if (rc == CLI_OK && o->fn && o->fn(opts, v, err->msg, sizeof(err->msg)) < 0)
		rc = CLI_EUSAGE;
	return rc;
}

static const struct cli_opt *const *tables(const struct cli_spec *s, const struct cli_opt *out[3])
{
	int n = 0;

	if (s->opts)
		out[n++] = s->opts;
	if (s->opts2)
		out[n++] = s->opts2;
	out[n] = NULL;
	return out;
}

/* One parse: where it is in argv, and which options were given. */
struct state {
	const struct cli_spec *s;
	int argc;
	char **argv;
	int i;
	void *opts;
	struct cli_err *err;
	size_t nargs;
	const struct cli_opt *seen[64];
	size_t nseen;
};

static int given(struct state *st, const struct cli_opt *o, const char *v)
{
	if (st->nseen < sizeof(st->seen) / sizeof(st->seen[0]))
		st->seen[st->nseen++] = o;
	return store(o, v, st->opts, st->err);
}

static const struct cli_opt *find_short(const struct cli_spec *s, char c)
{
	const struct cli_opt *t[3];

	for (const struct cli_opt *const *tab = tables(s, t); *tab; tab++)
		for (const struct cli_opt *o = *tab; o->name; o++)
			if (o->short_name == c)
				return o;
	return NULL;
}

/* The option named by name[0..len): exact, else the one option it abbreviates. */
static const struct cli_opt *find_long(const struct cli_spec *s, const char *name, size_t len,
				       struct cli_err *err)
{
	const struct cli_opt *t[3], *hit = NULL;
	int prefixes = 0;
	char others[256] = "";
	size_t ol = 0;

	for (const struct cli_opt *const *tab = tables(s, t); *tab; tab++) {
		for (const struct cli_opt *o = *tab; o->name; o++) {
			if (strncmp(o->name, name, len))
				continue;
			if (!o->name[len])
				return o;
			hit = o;
			prefixes++;
			ol += (size_t)snprintf(others + ol, ol < sizeof(others) ? sizeof(others) - ol : 0,
					       "%s--%s", ol ? ", " : "", o->name);
		}
	}
	if (prefixes == 1 && len > 0)
		return hit;
	if (prefixes > 1 && len > 0)
		fail(err, "option '--%.*s' is ambiguous (%s)", (int)len, name, others);
	else
		fail(err, "unknown option '--%.*s'", (int)len, name);
	return NULL;
}

static bool takes_value(const struct cli_opt *o)
{
	return o->type != CLI_FLAG;
}

/* The value after an option that needs one: the next argument, unless absent or a long option. */
static const char *next_value(struct state *st)
{
	const char *v;

	if (st->i + 1 >= st->argc)
		return NULL;
	v = st->argv[st->i + 1];
	if (v[0] == '-' && v[1] == '-' && ((v[2] >= 'a' && v[2] <= 'z') || (v[2] >= 'A' && v[2] <= 'Z')))
		return NULL;
	st->i++;
	return v;
}

static int needs_value(const struct cli_opt *o, struct cli_err *err)
{
	return fail(err, "option --%s needs a value", o->name);
}

static int parse_long(struct state *st)
{
	const char *arg = st->argv[st->i] + 2, *eq = strchr(arg, '=');
	size_t len = eq ? (size_t)(eq - arg) : strlen(arg);
	const struct cli_opt *o = find_long(st->s, arg, len, st->err);
	const char *v = NULL;

	if (!o)
		return CLI_EUSAGE;
	if (!takes_value(o)) {
		if (eq)
			return fail(st->err, "option --%s takes no value", o->name);
	} else if (eq) {
		v = eq + 1;
	} else if (!(v = next_value(st))) {
		return needs_value(o, st->err);
	}
	return given(st, o, v);
}

static int parse_short(struct state *st)
{
	for (const char *p = st->argv[st->i] + 1; *p; p++) {
		const struct cli_opt *o = find_short(st->s, *p);
		const char *v;

		if (!o)
			return fail(st->err, "unknown option '-%c'", *p);
		if (!takes_value(o)) {
			if (given(st, o, NULL) < 0)
				return CLI_EUSAGE;
			continue;
		}
		v = p[1] ? p + 1 : next_value(st);
		if (!v)
			return needs_value(o, st->err);
		return given(st, o, v);
	}
	return CLI_OK;
}

static int positional(struct state *st, const char *arg)
{
	const struct cli_spec *s = st->s;

	struct cli_list *l = (struct cli_list *)((char *)st->opts + s->args_offset);

	if (st->nargs >= s->max_args)
		return fail(st->err, "unexpected argument '%s'", arg);
	st->nargs++;
	if (s->arg_fn)
		return s->arg_fn(st->opts, arg, st->err->msg, sizeof(st->err->msg)) < 0 ? CLI_EUSAGE : CLI_OK;
	if (l->n >= CLI_LIST_MAX)
		return fail(st->err, "more than %d %s arguments", CLI_LIST_MAX, s->args_name ? s->args_name : "");
	l->v[l->n++] = arg;
	return CLI_OK;
}

static bool wants_help(int argc, char **argv)
{
	for (int i = 1; i < argc && strcmp(argv[i], "--"); i++)
		if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h"))
			return true;
	return false;
}

static int check_required(const struct state *st)
{
	const struct cli_opt *t[3];

	for (const struct cli_opt *const *tab = tables(st->s, t); *tab; tab++) {
		for (const struct cli_opt *o = *tab; o->name; o++) {
			bool seen = false;

			for (size_t k = 0; k < st->nseen; k++)
				seen |= st->seen[k] == o;
			if (o->required && !seen)
				return fail(st->err, "--%s%s%s is required", o->name,
					    takes_value(o) ? " " : "",
					    takes_value(o) && o->metavar ? o->metavar : "");
		}
	}
	return CLI_OK;
}

/* An error quotes argv (and the callbacks' messages may): escaped, one line, inert on a terminal. */
static int escape_error(struct cli_err *err, int rc)
{
	char raw[sizeof(err->msg)];

	if (rc != CLI_EUSAGE)
		return rc;
	memcpy(raw, err->msg, sizeof(raw));
	raw[sizeof(raw) - 1] = '\0';
	sp_term_escape(err->msg, sizeof(err->msg), raw);
	return rc;
}

int cli_parse(const struct cli_spec *s, int argc, char **argv, void *opts, struct cli_err *err)
{
	struct state st = { .s = s, .argc = argc, .argv = argv, .opts = opts, .err = err };
	bool only_args = false;
	int rc = CLI_OK;

	err->msg[0] = '\0';
	if (wants_help(argc, argv))
		return CLI_HELP;
	for (st.i = 1; st.i < argc && rc == CLI_OK; st.i++) {
		const char *a = argv[st.i];

		if (only_args || a[0] != '-' || !a[1])
			rc = positional(&st, a);
		else if (!strcmp(a, "--"))
			only_args = true;
		else if (a[1] == '-')
			rc = parse_long(&st);
		else
			rc = parse_short(&st);
	}
	if (rc == CLI_OK)
		rc = check_required(&st);
	if (rc == CLI_OK && st.nargs < s->min_args)
		rc = fail(err, "missing %s", s->args_name ? s->args_name : "argument");
	return escape_error(err, rc);
}

/* ---- help ---------------------------------------------------------------- */

static void show_value(const struct cli_opt *o, const void *opts, char *buf, size_t len)
{
	const void *f;

	buf[0] = '\0';
	if (o->show) {
		o->show(buf, len);
		return;
	}
	if (!opts) /* no options struct (sim list --help): no defaults to show */
		return;
	f = (const char *)opts + o->offset;
	switch (o->type) {
	case CLI_U64: snprintf(buf, len, "%" PRIu64, *(const uint64_t *)f); break;
	case CLI_U32: snprintf(buf, len, "%" PRIu32, *(const uint32_t *)f); break;
	case CLI_DOUBLE: snprintf(buf, len, "%g", *(const double *)f); break;
	case CLI_STRING:
	case CLI_PATH: snprintf(buf, len, "%s", *(const char *const *)f ? *(const char *const *)f : ""); break;
	case CLI_ENUM: snprintf(buf, len, "%s", o->choices[*(const int *)f]); break;
	case CLI_FLAG: snprintf(buf, len, "%s", *(const bool *)f ? "on" : "off"); break;
	default: break;
	}
}

/* Writes text with "{}" replaced by dflt and every '\n' followed by indent spaces. */
static void put_text(FILE *f, const char *text, const char *dflt, int indent)
{
	for (const char *p = text; *p; p++) {
		if (p[0] == '{' && p[1] == '}') {
			fputs(dflt, f);
			p++;
		} else if (*p == '\n') {
			fprintf(f, "\n%*s", indent, "");
		} else {
			fputc(*p, f);
		}
	}
}

static int opt_label(const struct cli_opt *o, char *buf, size_t len)
{
	char sh[8] = "";

	if (o->short_name)
		snprintf(sh, sizeof(sh), "-%c, ", o->short_name);
	return snprintf(buf, len, "%s--%s%s%s", sh, o->name, takes_value(o) ? " " : "",
			takes_value(o) ? (o->metavar ? o->metavar : "VALUE") : "");
}

static void help_opt(const struct cli_opt *o, const void *opts, int col, FILE *f)
{
	char label[128], dflt[512];
	int w = opt_label(o, label, sizeof(label));

	fprintf(f, "  %s", label);
	if (w + 2 > col)
		fputs("  ", f);
	else
		fprintf(f, "%*s", col - w, "");
	show_value(o, opts, dflt, sizeof(dflt));
	put_text(f, o->help ? o->help : "", dflt, col + 2);
	fputc('\n', f);
}

void cli_help(const struct cli_spec *s, const void *opts, FILE *f)
{
	const struct cli_opt *t[3];
	const struct cli_opt help = { .name = "help", .short_name = 'h', .type = CLI_FLAG,
				      .help = "show this help" };
	int col = 0, usage_indent;

	usage_indent = (int)strlen("usage: ") + (int)strlen(s->prog) + 1 +
		       (s->name ? (int)strlen(s->name) + 1 : 0);
	fprintf(f, "usage: %s%s%s", s->prog, s->name ? " " : "", s->name ? s->name : "");
	if (!s->usage || s->usage[0])
		fputc(' ', f);
	put_text(f, s->usage ? s->usage : "[options]", "", usage_indent);
	fputs("\n", f);
	if (s->about) {
		fputs("\n", f);
		put_text(f, s->about, "", 0);
		fputs("\n", f);
	}
	for (const struct cli_opt *const *tab = tables(s, t); *tab; tab++) {
		for (const struct cli_opt *o = *tab; o->name; o++) {
			char label[128];
			int w = opt_label(o, label, sizeof(label));

			if (w + 2 > col && w + 2 <= 22)
				col = w + 2;
		}
	}
	if (col < 12)
		col = 12;
	fputs("\n", f);
	for (const struct cli_opt *const *tab = tables(s, t); *tab; tab++)
		for (const struct cli_opt *o = *tab; o->name; o++)
			help_opt(o, opts, col, f);
	help_opt(&help, NULL, col, f);
	if (s->notes) {
		fputs("\n", f);
		put_text(f, s->notes, "", 0);
		fputs("\n", f);
	}
}

/* ---- multi-command programs ----------------------------------------------- */

const struct cli_command *cli_command_find(const struct cli_command *t, const char *name)
{
	for (; t->name; t++)
		if (!strcmp(t->name, name))
			return t;
	return NULL;
}

void cli_command_names(const struct cli_command *t, char *buf, size_t len)
{
	size_t o = 0;

	if (len)
		buf[0] = '\0';
	for (const struct cli_command *c = t; c->name && o < len; c++)
		o += (size_t)snprintf(buf + o, len - o, "%s%s", c == t ? "" : ", ", c->name);
}

void cli_command_list(const struct cli_command *t, const char *indent, int width, FILE *f)
{
	for (; t->name; t++)
		fprintf(f, "%s%-*s %s\n", indent, width, t->name, t->summary ? t->summary : "");
}
