/*
 * kvfile.c - implements kvfile.h: a KEY=VALUE file reader that accepts what
 * a shell would read from a ksmtuned.conf-style file with no expansion.
 *
 * Invariant: after sim_kv_load() succeeds, every entry's key is a valid
 * identifier and its value is the unquoted text; on failure nothing is kept.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kvfile.h"

void sim_kv_release(struct sim_kv_file *f)
{
	for (size_t i = 0; i < f->n; i++) {
		free(f->kv[i].key);
		free(f->kv[i].value);
	}
	free(f->kv);
	free(f->path);
	memset(f, 0, sizeof(*f));
}

const struct sim_kv *sim_kv_get(const struct sim_kv_file *f, const char *key)
{
	for (size_t i = f->n; i-- > 0;) {
		if (!strcmp(f->kv[i].key, key))
			return &f->kv[i];
	}
	return NULL;
}

/* Unquotes the value part of one line [s, end) into out (at least end - s + 1 bytes). */
static const char *unquote(const char *s, const char *end, char *out)
{
	char *o = out;

	while (s < end) {
		if (*s == '\'') {
			const char *q = memchr(s + 1, '\'', (size_t)(end - s - 1));

			if (!q)
				return "unterminated single quote";
			memcpy(o, s + 1, (size_t)(q - s - 1));
			o += q - s - 1;
			s = q + 1;
		} else if (*s == '"') {
			for (s++; s < end && *s != '"'; s++) {
				if (*s == '\\' && s + 1 < end && strchr("\"\\$`", s[1]))
					s++;
				else if (*s == '$' || *s == '`')
					return "shell expansion ('$' or '`') is not supported; quote it with '...'";
				*o++ = *s;
			}
			if (s == end)
				return "unterminated double quote";
			s++;
		} else if (isspace((unsigned char)*s)) {
			while (s < end && isspace((unsigned char)*s))
				s++;
			if (s < end && *s != '#')
				return "text after the value (quote a value with blanks)";
			break;
		} else if (*s == '$' || *s == '`') {
			return "shell expansion ('$' or '`') is not supported; quote it with '...'";
		} else if (*s == '\\' && s + 1 < end) {
			*o++ = s[1];
			s += 2;
		} else if (*s == ';' || *s == '|' || *s == '&' || *s == '(' || *s == ')' || *s == '<' ||
			   *s == '>') {
			return "shell syntax is not supported; quote the value";
		} else {
			*o++ = *s++;
		}
	}
	*o = '\0';
	return NULL;
}

static int add(struct sim_kv_file *f, size_t *cap, const char *key, size_t klen, char *value,
	       unsigned line)
{
	if (f->n == *cap) {
		size_t c = *cap ? *cap * 2 : 16;
		struct sim_kv *kv = realloc(f->kv, c * sizeof(*kv));

		if (!kv)
			return -1;
		f->kv = kv;
		*cap = c;
	}
	f->kv[f->n].key = strndup(key, klen);
	if (!f->kv[f->n].key)
		return -1;
	f->kv[f->n].value = value;
	f->kv[f->n].line = line;
	f->n++;
	return 0;
}

int sim_kv_parse(struct sim_kv_file *out, const char *name, const char *text, struct sp_err *err)
{
	size_t cap = 0;
	unsigned line = 0;
	const char *p = text;

	memset(out, 0, sizeof(*out));
	out->path = strdup(name);
	if (!out->path)
		return sp_err_set(err, SP_ENOMEM, "out of memory");
	while (*p) {
		const char *eol = strchr(p, '\n'), *s = p, *key, *why;
		char *value;
		size_t klen;

		if (!eol)
			eol = p + strlen(p);
		line++;
		p = *eol ? eol + 1 : eol;
		while (s < eol && isspace((unsigned char)*s))
			s++;
		if (s == eol || *s == '#')
			continue;
		if (eol - s > 7 && !strncmp(s, "export", 6) && (s[6] == ' ' || s[6] == '\t')) {
			for (s += 6; s < eol && isspace((unsigned char)*s);)
				s++;
		}
		key = s;
		if (!(isalpha((unsigned char)*s) || *s == '_'))
			goto bad_key;
		while (s < eol && (isalnum((unsigned char)*s) || *s == '_'))
			s++;
		if (s == eol || *s != '=')
			goto bad_key;
		klen = (size_t)(s - key);
		s++;
		value = malloc((size_t)(eol - s) + 1);
		if (!value) {
			sim_kv_release(out);
			return sp_err_set(err, SP_ENOMEM, "out of memory");
		}
		/* A trailing carriage return (a file edited elsewhere) is not part of the value. */
		why = unquote(s, eol > s && eol[-1] == '\r' ? eol - 1 : eol, value);
		if (why) {
			free(value);
			sp_err_set(err, SP_ECORRUPT, "%s:%u: %.*s: %s", name, line, (int)klen, key, why);
			sim_kv_release(out);
			return SP_ECORRUPT;
		}
		if (add(out, &cap, key, klen, value, line) < 0) {
			free(value);
			sim_kv_release(out);
			return sp_err_set(err, SP_ENOMEM, "out of memory");
		}
		continue;
bad_key:
		sp_err_set(err, SP_ECORRUPT, "%s:%u: expected KEY=VALUE, found '%.*s'", name, line,
			   (int)(eol - key > 60 ? 60 : eol - key), key);
		sim_kv_release(out);
		return SP_ECORRUPT;
	}
	return 0;
}

int sim_kv_load(struct sim_kv_file *out, const char *path, struct sp_err *err)
{
	FILE *f = fopen(path, "r");
	char *text = NULL;
	size_t len = 0, cap = 0, n;
	int rc;

	memset(out, 0, sizeof(*out));
	if (!f)
		return sp_err_set(err, SP_EIO, "%s: %s", path, strerror(errno));
	do {
		if (cap - len < 4096) {
			char *t;

			cap = cap ? cap * 2 : 8192;
			if (cap > (16u << 20)) {
				fclose(f);
				free(text);
				return sp_err_set(err, SP_ELIMIT, "%s: larger than 16 MiB", path);
			}
			t = realloc(text, cap);
			if (!t) {
				fclose(f);
				free(text);
				return sp_err_set(err, SP_ENOMEM, "out of memory");
			}
			text = t;
		}
		n = fread(text + len, 1, cap - len - 1, f);
		len += n;
	} while (n > 0);
	if (ferror(f)) {
		rc = sp_err_set(err, SP_EIO, "%s: read error", path);
		fclose(f);
		free(text);
		return rc;
	}
	fclose(f);
	if (memchr(text, '\0', len)) {
		free(text);
		return sp_err_set(err, SP_ECORRUPT, "%s: not a text file (NUL byte)", path);
	}
	text[len] = '\0';
	rc = sim_kv_parse(out, path, text, err);
	free(text);
	return rc;
}
