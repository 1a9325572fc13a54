/*
 * sp_error.c - implements the first-error-wins message of sp_error.h.
 */
#include "sp_error.h"

#include <stdarg.h>
#include <stdio.h>

size_t sp_term_escape(char *dst, size_t len, const char *src)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *s = (const unsigned char *)src;
	size_t o = 0;

	if (len == 0)
		return 0;
	for (; *s; s++) {
		/* C0 controls, DEL, and C1 controls (raw, or UTF-8 encoded as C2 80..9F) */
		size_t n = (*s < 0x20 || *s == 0x7f || (*s >= 0x80 && *s <= 0x9f)) ? 1
			   : (*s == 0xc2 && s[1] >= 0x80 && s[1] <= 0x9f)          ? 2
										 : 0;

		if (n == 0) {
			if (o + 1 >= len)
				break;
			dst[o++] = (char)*s;
			continue;
		}
		if (*s >= 0x80 && *s <= 0x9f && n == 1) {
			/* a continuation byte of a multi-byte character other than C2: keep it */
			const unsigned char *lead = s;

			while (lead > (const unsigned char *)src && lead[-1] >= 0x80 && lead[-1] <= 0xbf)
				lead--;
			if (lead > (const unsigned char *)src && lead[-1] >= 0xc3 && lead[-1] <= 0xf4) {
				if (o + 1 >= len)
					break;
				dst[o++] = (char)*s;
				continue;
			}
		}
		if (o + 4 * n >= len)
			break;
		for (size_t k = 0; k < n; k++) {
			dst[o++] = '\\';
			dst[o++] = 'x';
			dst[o++] = hex[s[k] >> 4];
			dst[o++] = hex[s[k] & 15];
		}
		s += n - 1;
	}
	dst[o] = '\0';
	return o;
}

int sp_err_set(struct sp_err *err, int code, const char *fmt, ...)
{
	if (err && err->code == 0) {
		char raw[sizeof(err->msg)];
		va_list ap;

		va_start(ap, fmt);
		vsnprintf(raw, sizeof(raw), fmt, ap);
		va_end(ap);
		/* Messages quote names and text from input files: one line, safe for a terminal. */
		sp_term_escape(err->msg, sizeof(err->msg), raw);
		err->code = code;
	}
	return code;
}

void sp_err_clear(struct sp_err *err)
{
	if (err) {
		err->code = 0;
		err->msg[0] = '\0';
	}
}

const char *sp_strerror(int code)
{
	switch (code) {
	case SP_OK: return "ok";
	case SP_EINVAL: return "invalid argument";
	case SP_ENOMEM: return "out of memory";
	case SP_EIO: return "I/O error";
	case SP_EMAGIC: return "not a samepage trace";
	case SP_EVERSION: return "unsupported version";
	case SP_ETRUNC: return "truncated";
	case SP_ECORRUPT: return "corrupt";
	case SP_ELIMIT: return "beyond format limits";
	case SP_ECHANGED: return "content changed";
	case SP_EDENIED: return "denied by security domain";
	case SP_ENOTSUP: return "not supported here";
	case SP_EPERM: return "permission denied";
	case SP_EPINNED: return "page pinned";
	case SP_EBUSY: return "busy";
	case SP_ENOROOM: return "no headroom to unmerge";
	}
	return "unknown error";
}
