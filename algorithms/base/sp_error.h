/*
 * sp_error.h - error codes and the one-line error message shared by every
 * samepage module.
 *
 * Convention (after libgit2): a function returns 0 on success or a negative
 * SP_E* code, and, when the caller passes a non-NULL struct sp_err, fills it
 * with a single line that names the file, byte offset or record at fault.
 * The first error set wins: sp_err_set() never overwrites an earlier message,
 * so the innermost, most precise cause is what the user sees.  Library code
 * never prints and never exits.
 */
#ifndef SP_ERROR_H
#define SP_ERROR_H

#include <stddef.h>

enum sp_errcode {
	SP_OK = 0,
	SP_EINVAL = -1,    /* bad argument or option value */
	SP_ENOMEM = -2,    /* allocation failed */
	SP_EIO = -3,       /* read/write/open failed (errno in message) */
	SP_EMAGIC = -4,    /* not a samepage trace */
	SP_EVERSION = -5,  /* trace version this build cannot read */
	SP_ETRUNC = -6,    /* file ends before its END chunk */
	SP_ECORRUPT = -7,  /* checksum mismatch or inconsistent content */
	SP_ELIMIT = -8,    /* a count or size beyond the format's limits */
	SP_ECHANGED = -9,  /* merge refused: content differs now */
	SP_EDENIED = -10,  /* merge refused: different security domains */
	SP_ENOTSUP = -11,  /* feature missing (no KSM, no NUMA, not Linux) */
	SP_EPERM = -12,    /* missing privilege */
	SP_EPINNED = -13,  /* merge refused: the page is pinned (DMA, io_uring fixed buffers) */
	SP_EBUSY = -14,    /* held by another process (KSM driven by samepaged or another run) */
	SP_ENOROOM = -15,  /* refused: free memory + swap cannot take the worst-case unshare */
};

struct sp_err {
	int code;          /* the SP_E* code of the first error set, or 0 */
	char msg[320];     /* one line, no trailing newline */
};

/* Sets err (if non-NULL and still empty) and returns code. */
int sp_err_set(struct sp_err *err, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/*
 * Copies src into dst (len bytes, always terminated, truncated if need be)
 * with every byte a terminal could act on written as \xNN: C0 controls
 * (newline and ESC among them), DEL and C1 controls (raw, or UTF-8 encoded).
 * Returns the length written.  For any text from an input file that is shown
 * on a terminal; sp_err_set() applies it to every message.
 */
size_t sp_term_escape(char *dst, size_t len, const char *src);

/* Clears err for reuse. */
void sp_err_clear(struct sp_err *err);

/* A short name for a code: "corrupt", "truncated", ... */
const char *sp_strerror(int code);

#endif
