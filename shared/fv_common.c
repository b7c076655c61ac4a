/* fv_common.c: see fv_common.h. */
#include "fv_common.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

int fv_err_set(fv_err *e, const char *fmt, ...) {
    if (e) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(e->msg, sizeof e->msg, fmt, ap);
        va_end(ap);
    }
    return -1;
}

int fv_err_prefix(fv_err *e, const char *fmt, ...) {
    if (e) {
        char pre[FV_ERR_MAX], old[FV_ERR_MAX];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(pre, sizeof pre, fmt, ap);
        va_end(ap);
        memcpy(old, e->msg, sizeof old);
        size_t pl = strnlen(pre, sizeof pre - 1), ol = strnlen(old, sizeof old - 1);
        if (pl + ol > sizeof e->msg - 1) ol = sizeof e->msg - 1 - pl;
        memcpy(e->msg, pre, pl);
        memcpy(e->msg + pl, old, ol);
        e->msg[pl + ol] = 0;
    }
    return -1;
}

void fv_die_at(const char *file, int line, const char *fmt, ...) {
    va_list ap;
    fprintf(stderr, "fedvim: fatal: %s:%d: ", file, line);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    abort();
}

void *fv_malloc_at(const char *file, int line, size_t bytes) {
    void *p = NULL;
    size_t n = bytes ? (bytes + 63) / 64 * 64 : 64;
    if (posix_memalign(&p, 64, n) != 0 || !p) fv_die_at(file, line, "out of memory (%zu bytes)", bytes);
    return p;
}

void *fv_calloc_at(const char *file, int line, size_t count, size_t size) {
    if (size && count > SIZE_MAX / size) fv_die_at(file, line, "allocation size overflow");
    void *p = fv_malloc_at(file, line, count * size);
    memset(p, 0, count * size);
    return p;
}

void *fv_realloc_at(const char *file, int line, void *p, size_t bytes) {
    void *q = realloc(p, bytes ? bytes : 1);
    if (!q) fv_die_at(file, line, "out of memory (%zu bytes)", bytes);
    return q;
}

char *fv_strdup_at(const char *file, int line, const char *s) {
    size_t n = strlen(s) + 1;
    char *d = fv_malloc_at(file, line, n);
    memcpy(d, s, n);
    return d;
}

double fv_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* The one atomic write: a temporary file beside path (path.tmp.<pid>, created fresh with O_EXCL so
 * that nothing planted under that name is followed), fsync, rename. exact != 0: fchmod to mode, so
 * the umask cannot clear bits the caller asked for; the temporary file has the mode from its
 * creation on, so a secret is never readable by others, not even for a moment. */
static int write_atomic(const char *path, const void *data, size_t len, mode_t mode, int exact, fv_err *e) {
    size_t pl = strlen(path);
    char *tmp = fv_malloc(pl + 32);
    snprintf(tmp, pl + 32, "%s.tmp.%ld", path, (long)getpid());
    unlink(tmp);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL, mode);
    if (fd < 0) {
        fv_err_set(e, "cannot create %s: %s", tmp, strerror(errno));
        free(tmp);
        return -1;
    }
    if (exact && fchmod(fd, mode) != 0) {
        fv_err_set(e, "cannot set the mode of %s: %s", tmp, strerror(errno));
        goto fail;
    }
    const uint8_t *p = data;
    size_t left = len;
    while (left > 0) {
        ssize_t w = write(fd, p, left);
        if (w < 0) {
            if (errno == EINTR) continue;
            fv_err_set(e, "cannot write %s: %s", tmp, strerror(errno));
            goto fail;
        }
        p += w;
        left -= (size_t)w;
    }
    if (fsync(fd) != 0) {
        fv_err_set(e, "cannot flush %s: %s", tmp, strerror(errno));
        goto fail;
    }
    if (close(fd) != 0) {
        fd = -1;
        fv_err_set(e, "cannot flush %s: %s", tmp, strerror(errno));
        goto fail;
    }
    fd = -1;
    if (rename(tmp, path) != 0) {
        fv_err_set(e, "cannot rename %s to %s: %s", tmp, path, strerror(errno));
        goto fail;
    }
    free(tmp);
    return 0;
fail:
    if (fd >= 0) close(fd);
    unlink(tmp);
    free(tmp);
    return -1;
}

int fv_write_file_atomic(const char *path, const void *data, size_t len, fv_err *e) {
    return write_atomic(path, data, len, 0644, 0, e);
}

int fv_write_file_atomic_mode(const char *path, const void *data, size_t len, unsigned mode, fv_err *e) {
    FV_ASSERT(mode <= 07777);
    return write_atomic(path, data, len, (mode_t)mode, 1, e);
}

int fv_read_file(const char *path, size_t max_bytes, uint8_t **data, size_t *len, fv_err *e) {
    FILE *f = fopen(path, "rb");
    if (!f) return fv_err_set(e, "cannot open %s: %s", path, strerror(errno));
    size_t cap = 1 << 16, n = 0;
    uint8_t *buf = fv_malloc(cap);
    for (;;) {
        if (n == cap) {
            if (cap >= max_bytes) {
                free(buf);
                fclose(f);
                return fv_err_set(e, "%s is larger than the limit of %zu bytes", path, max_bytes);
            }
            cap = cap * 2 > max_bytes ? max_bytes : cap * 2;
            buf = fv_realloc(buf, cap);
        }
        size_t r = fread(buf + n, 1, cap - n, f);
        n += r;
        if (r == 0) break;
    }
    if (ferror(f)) {
        free(buf);
        fclose(f);
        return fv_err_set(e, "cannot read %s: %s", path, strerror(errno));
    }
    fclose(f);
    *data = buf;
    *len = n;
    return 0;
}

int fv_mkdirs(const char *path, fv_err *e) {
    char *p = fv_strdup(path);
    for (char *s = p + 1; *s; s++) {
        if (*s != '/') continue;
        *s = 0;
        if (mkdir(p, 0755) != 0 && errno != EEXIST) {
            fv_err_set(e, "cannot create folder %s: %s", p, strerror(errno));
            free(p);
            return -1;
        }
        *s = '/';
    }
    if (mkdir(p, 0755) != 0 && errno != EEXIST) {
        fv_err_set(e, "cannot create folder %s: %s", p, strerror(errno));
        free(p);
        return -1;
    }
    free(p);
    return 0;
}

int fv_parse_int(const char *flag, const char *s, long lo, long hi, long *out, fv_err *e) {
    if (!s || !*s) return fv_err_set(e, "%s needs a value", flag);
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || *end) return fv_err_set(e, "%s: '%s' is not an integer", flag, s);
    if (v < lo || v > hi) return fv_err_set(e, "%s: %ld is out of range [%ld, %ld]", flag, v, lo, hi);
    *out = v;
    return 0;
}

int fv_parse_float(const char *flag, const char *s, double lo, double hi, double *out, fv_err *e) {
    if (!s || !*s) return fv_err_set(e, "%s needs a value", flag);
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || *end || !isfinite(v)) return fv_err_set(e, "%s: '%s' is not a finite number", flag, s);
    if (v < lo || v > hi) return fv_err_set(e, "%s: %g is out of range [%g, %g]", flag, v, lo, hi);
    *out = v;
    return 0;
}
