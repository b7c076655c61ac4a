/* fv_common.h: error handling, checked allocation and small helpers used by every module.
 *
 * Two error tiers (see the style notes):
 *  - programmer errors and allocation/BLAS/CUDA failures abort with file:line (FV_ASSERT,
 *    fv_malloc), in release builds too;
 *  - anything a user or a peer can cause returns -1 with a message in a caller-supplied
 *    fv_err that names the input and what is wrong (fv_err_set).
 * This file deliberately holds no global state.
 */
#ifndef FV_COMMON_H
#define FV_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define FV_ERR_MAX 512

/* On every function that can fail (returns -1 or NULL with an fv_err set, or a verification
 * verdict): ignoring the result is a compile error under -Werror. */
#define FV_MUST_USE __attribute__((warn_unused_result))

/* A user-facing error message. Functions that can fail on bad input take an fv_err * (may be
 * NULL when the caller does not care) and fill it before returning -1. */
typedef struct {
    char msg[FV_ERR_MAX];
} fv_err;

/* Format a message into e (if e is not NULL). Always returns -1 so callers can
 * `return fv_err_set(e, "...")`. */
int fv_err_set(fv_err *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Prefix an existing message with more context ("reading foo.ini: " + old message). Returns -1. */
int fv_err_prefix(fv_err *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Abort with file:line and a message. Never returns. */
void fv_die_at(const char *file, int line, const char *fmt, ...)
    __attribute__((noreturn, format(printf, 3, 4)));

#define FV_DIE(...) fv_die_at(__FILE__, __LINE__, __VA_ARGS__)
/* An invariant that stays checked in release builds. */
#define FV_ASSERT(cond)                                                                   \
    do {                                                                                  \
        if (!(cond)) fv_die_at(__FILE__, __LINE__, "assertion failed: %s", #cond);         \
    } while (0)

/* Allocation that aborts on failure (an allocation failure is not a user error). Memory from
 * fv_malloc/fv_calloc is 64-byte aligned and released with free(). */
void *fv_malloc_at(const char *file, int line, size_t bytes);
void *fv_calloc_at(const char *file, int line, size_t count, size_t size);
void *fv_realloc_at(const char *file, int line, void *p, size_t bytes);
char *fv_strdup_at(const char *file, int line, const char *s);
#define fv_malloc(b) fv_malloc_at(__FILE__, __LINE__, (b))
#define fv_calloc(n, s) fv_calloc_at(__FILE__, __LINE__, (n), (s))
#define fv_realloc(p, b) fv_realloc_at(__FILE__, __LINE__, (p), (b))
#define fv_strdup(s) fv_strdup_at(__FILE__, __LINE__, (s))

/* Monotonic wall clock in seconds. */
double fv_now(void);

/* Write `len` bytes to `path` atomically: a temporary file in the same folder, fsync, rename.
 * A crash never leaves a partial file under `path`, and a failure leaves no temporary file. The
 * file gets mode 0644 less the umask. Returns 0, or -1 with e naming the file and the problem. */
FV_MUST_USE int fv_write_file_atomic(const char *path, const void *data, size_t len, fv_err *e);

/* The same with exactly `mode` (e.g. 0600 for a secret; the umask does not apply): the temporary
 * file has that mode from its creation, so the contents are never readable more widely, not even
 * for a moment. mode above 07777 is a programmer error. */
FV_MUST_USE int fv_write_file_atomic_mode(const char *path, const void *data, size_t len, unsigned mode,
                                          fv_err *e);

/* Read a whole file (at most max_bytes) into a fresh buffer (caller frees). Returns 0 or -1. */
FV_MUST_USE int fv_read_file(const char *path, size_t max_bytes, uint8_t **data, size_t *len, fv_err *e);

/* mkdir -p. Returns 0 or -1 with e set. */
FV_MUST_USE int fv_mkdirs(const char *path, fv_err *e);

/* Parse helpers for command-line values: strict, whole-string, range-checked. They name the flag
 * in the error. Return 0 or -1. */
FV_MUST_USE int fv_parse_int(const char *flag, const char *s, long lo, long hi, long *out, fv_err *e);
FV_MUST_USE int fv_parse_float(const char *flag, const char *s, double lo, double hi, double *out, fv_err *e);

#endif
