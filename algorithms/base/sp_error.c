/*
 * sp_error.c - implements the first-error-wins message of sp_error.h.
 */
#include "sp_error.h"

#include <stdarg.h>
#include <stdio.h>

int sp_err_set(struct sp_err *err, int code, const char *fmt, ...)
{
	if (err && err->code == 0) {
		va_list ap;

		va_start(ap, fmt);
		vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
		va_end(ap);
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
	}
	return "unknown error";
}
