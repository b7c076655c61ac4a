/* data.c: see data.h. IDX (raw or gzip) reader and raw writer, MNIST and CIFAR-10 loaders, the Colored-MNIST generator,
 * float conversion and the by-name loader with default locations.
 * Not here: partitioning among clients, augmentation, obfuscation.
 */
#include "data/data.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

#include "rng.h"

/* Largest IDX payload or CIFAR-10 total we accept (2 GiB): more is a damaged header, not data. */
#define FV_DATA_MAX_BYTES ((uint64_t)1 << 31)
/* Deflate cannot expand data by more than about 1032x: a gzip file that claims more than this
 * per compressed byte is truncated or lying, and we refuse it before allocating. */
#define FV_GZ_MAX_RATIO 1040u
#define FV_CIFAR_RECORD (1 + 3 * 32 * 32)
/* Colored MNIST: minimum Euclidean RGB distance between foreground and background colours. */
#define FV_CMNIST_MIN_DIST 160

void fv_dataset_free(fv_dataset *d) {
    if (!d) return;
    free(d->x);
    free(d->y);
    memset(d, 0, sizeof *d);
}

/* ---------------------------------------------------------------------------------------------
 * IDX
 */

static const char *idx_type_name(unsigned t) {
    switch (t) {
    case 0x08: return "unsigned byte";
    case 0x09: return "signed byte";
    case 0x0B: return "short";
    case 0x0C: return "int";
    case 0x0D: return "float";
    case 0x0E: return "double";
    default: return "unknown type";
    }
}

/* Validate the 4 magic bytes; sets *nd. */
static int idx_check_magic(const char *path, const uint8_t m[4], int *nd, fv_err *e) {
    if (m[0] != 0 || m[1] != 0)
        return fv_err_set(e, "%s: not an IDX file (first bytes %02x %02x %02x %02x, expected 00 00 08 0N)", path,
                          m[0], m[1], m[2], m[3]);
    if (m[2] != 0x08)
        return fv_err_set(e, "%s: IDX element type 0x%02x (%s) is not supported: only unsigned bytes (0x08)", path,
                          m[2], idx_type_name(m[2]));
    if (m[3] < 1 || m[3] > 4)
        return fv_err_set(e, "%s: IDX file declares %d dimensions; 1 to 4 are supported", path, m[3]);
    *nd = m[3];
    return 0;
}

/* Validate big-endian dims; sets dims[] and *bytes = prod(dims) (bounded, no overflow). */
static int idx_check_dims(const char *path, const uint8_t *raw, int nd, int dims[4], uint64_t *bytes, fv_err *e) {
    uint64_t prod = 1;
    for (int i = 0; i < nd; i++) {
        const uint8_t *p = raw + 4 * i;
        uint32_t v = (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
        if (v == 0) return fv_err_set(e, "%s: IDX dimension %d is 0", path, i);
        if (v > FV_DATA_MAX_BYTES)
            return fv_err_set(e, "%s: IDX dimension %d is %u, beyond any plausible data set (header damaged?)",
                              path, i, v);
        prod *= v; /* both factors <= 2^31 before the check below, so no overflow */
        if (prod > FV_DATA_MAX_BYTES)
            return fv_err_set(e, "%s: IDX dimensions promise more than %llu bytes (limit 2 GiB; header damaged?)",
                              path, (unsigned long long)FV_DATA_MAX_BYTES);
        dims[i] = (int)v;
    }
    for (int i = nd; i < 4; i++) dims[i] = 0;
    *bytes = prod;
    return 0;
}

static int idx_read_raw(FILE *f, const char *path, uint8_t **data, int dims[4], int *ndim, fv_err *e) {
    uint8_t hdr[4 + 16];
    size_t got = fread(hdr, 1, 4, f);
    if (got < 4) return fv_err_set(e, "%s: too short for an IDX header (%zu bytes)", path, got);
    int nd;
    if (idx_check_magic(path, hdr, &nd, e)) return -1;
    got = fread(hdr + 4, 1, 4 * (size_t)nd, f);
    if (got < 4 * (size_t)nd) return fv_err_set(e, "%s: truncated IDX header (%d dimensions declared)", path, nd);
    uint64_t bytes;
    if (idx_check_dims(path, hdr + 4, nd, dims, &bytes, e)) return -1;
    uint64_t off = 4 + 4 * (uint64_t)nd;
    struct stat st;
    if (fstat(fileno(f), &st) == 0 && S_ISREG(st.st_mode)) {
        uint64_t size = (uint64_t)st.st_size;
        if (size < off + bytes)
            return fv_err_set(e, "%s: truncated: the header promises %llu data bytes, the file holds %llu", path,
                              (unsigned long long)bytes, (unsigned long long)(size - off));
        if (size > off + bytes)
            return fv_err_set(e, "%s: %llu unexpected bytes after the %llu data bytes the header promises", path,
                              (unsigned long long)(size - off - bytes), (unsigned long long)bytes);
    }
    uint8_t *buf = fv_malloc((size_t)bytes);
    got = fread(buf, 1, (size_t)bytes, f);
    if (got < bytes) {
        free(buf);
        if (ferror(f)) return fv_err_set(e, "%s: read error: %s", path, strerror(errno));
        return fv_err_set(e, "%s: truncated: the header promises %llu data bytes, the file holds %zu", path,
                          (unsigned long long)bytes, got);
    }
    if (fgetc(f) != EOF) {
        free(buf);
        return fv_err_set(e, "%s: unexpected bytes after the %llu data bytes the header promises", path,
                          (unsigned long long)bytes);
    }
    *data = buf;
    *ndim = nd;
    return 0;
}

/* A gzip source held in memory; members may be concatenated (as gzip allows), anything else after
 * the last member is an error. */
typedef struct {
    z_stream z;
    const char *path;
    int ended; /* the current member reached its end (trailer and CRC checked) */
} gz_src;

/* Inflate up to n bytes into out; *got says how many came. Stops short only at the true end of the
 * input. Returns 0 or -1 (corrupt, truncated, trailing garbage). */
static int gz_pull(gz_src *s, uint8_t *out, size_t n, size_t *got, fv_err *e) {
    *got = 0;
    while (*got < n) {
        if (s->ended) {
            if (s->z.avail_in == 0) return 0;
            if (s->z.avail_in >= 2 && s->z.next_in[0] == 0x1f && s->z.next_in[1] == 0x8b) {
                if (inflateReset(&s->z) != Z_OK) FV_DIE("inflateReset failed");
                s->ended = 0;
            } else {
                return fv_err_set(e, "%s: %u bytes of trailing garbage after the gzip data", s->path,
                                  s->z.avail_in);
            }
        }
        size_t want = n - *got;
        s->z.next_out = out + *got;
        s->z.avail_out = want > (1u << 30) ? (1u << 30) : (uInt)want;
        uInt before = s->z.avail_out;
        int r = inflate(&s->z, Z_NO_FLUSH);
        *got += before - s->z.avail_out;
        if (r == Z_STREAM_END) {
            s->ended = 1;
        } else if (r == Z_OK) {
            continue;
        } else if (r == Z_BUF_ERROR && s->z.avail_in == 0) {
            return fv_err_set(e, "%s: gzip data is truncated (unexpected end of file)", s->path);
        } else if (r == Z_MEM_ERROR) {
            FV_DIE("out of memory in zlib inflate");
        } else {
            return fv_err_set(e, "%s: corrupt gzip data: %s", s->path, s->z.msg ? s->z.msg : zError(r));
        }
    }
    return 0;
}

static int idx_read_gz(const char *path, uint8_t **data, int dims[4], int *ndim, fv_err *e) {
    uint8_t *file = NULL;
    size_t flen = 0;
    if (fv_read_file(path, (size_t)FV_DATA_MAX_BYTES, &file, &flen, e)) return -1;
    gz_src s;
    memset(&s, 0, sizeof s);
    s.path = path;
    s.z.next_in = file;
    s.z.avail_in = (uInt)flen; /* flen < 2^31 */
    if (inflateInit2(&s.z, 16 + MAX_WBITS) != Z_OK) FV_DIE("inflateInit2 failed");
    uint8_t *buf = NULL;
    uint8_t hdr[4 + 16];
    size_t got;
    int nd;
    uint64_t bytes;
    if (gz_pull(&s, hdr, 4, &got, e)) goto fail;
    if (got < 4) {
        fv_err_set(e, "%s: too short for an IDX header (%zu bytes after decompression)", path, got);
        goto fail;
    }
    if (idx_check_magic(path, hdr, &nd, e)) goto fail;
    if (gz_pull(&s, hdr + 4, 4 * (size_t)nd, &got, e)) goto fail;
    if (got < 4 * (size_t)nd) {
        fv_err_set(e, "%s: truncated IDX header (%d dimensions declared)", path, nd);
        goto fail;
    }
    if (idx_check_dims(path, hdr + 4, nd, dims, &bytes, e)) goto fail;
    if (bytes > (uint64_t)flen * FV_GZ_MAX_RATIO + 4096) {
        fv_err_set(e, "%s: truncated: the header promises %llu data bytes, more than %zu compressed bytes can hold",
                   path, (unsigned long long)bytes, flen);
        goto fail;
    }
    buf = fv_malloc((size_t)bytes);
    if (gz_pull(&s, buf, (size_t)bytes, &got, e)) goto fail;
    if (got < bytes) {
        fv_err_set(e, "%s: truncated: the header promises %llu data bytes, the file holds %zu", path,
                   (unsigned long long)bytes, got);
        goto fail;
    }
    uint8_t extra;
    if (gz_pull(&s, &extra, 1, &got, e)) goto fail; /* also reaches the end: CRC and length checked */
    if (got) {
        fv_err_set(e, "%s: unexpected bytes after the %llu data bytes the header promises", path,
                   (unsigned long long)bytes);
        goto fail;
    }
    inflateEnd(&s.z);
    free(file);
    *data = buf;
    *ndim = nd;
    return 0;
fail:
    inflateEnd(&s.z);
    free(file);
    free(buf);
    return -1;
}

int fv_idx_read(const char *path, uint8_t **data, int dims[4], int *ndim, fv_err *e) {
    FILE *f = fopen(path, "rb");
    if (!f) return fv_err_set(e, "cannot open %s: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fileno(f), &st) == 0 && S_ISDIR(st.st_mode)) {
        fclose(f);
        return fv_err_set(e, "%s is a folder, not an IDX file", path);
    }
    uint8_t m[2];
    size_t got = fread(m, 1, 2, f);
    if (got == 2 && m[0] == 0x1f && m[1] == 0x8b) {
        fclose(f);
        return idx_read_gz(path, data, dims, ndim, e);
    }
    rewind(f);
    int r = idx_read_raw(f, path, data, dims, ndim, e);
    fclose(f);
    return r;
}

int fv_idx_write(const char *path, const uint8_t *data, const int *dims, int ndim, fv_err *e) {
    FV_ASSERT(ndim >= 1 && ndim <= 4 && dims);
    uint64_t n = 1;
    for (int i = 0; i < ndim; i++) {
        if (dims[i] <= 0)
            return fv_err_set(e, "writing %s: IDX dimension %d is %d (must be positive)", path, i, dims[i]);
        n *= (uint64_t)dims[i]; /* <= 2^31 before each step (checked below), so no overflow */
        if (n > FV_DATA_MAX_BYTES)
            return fv_err_set(e, "writing %s: IDX payload over %llu bytes (the limit fv_idx_read accepts)", path,
                              (unsigned long long)FV_DATA_MAX_BYTES);
    }
    FV_ASSERT(data);
    size_t len = 4 + 4 * (size_t)ndim + (size_t)n;
    uint8_t *buf = fv_malloc(len);
    buf[0] = buf[1] = 0;
    buf[2] = 0x08; /* unsigned bytes */
    buf[3] = (uint8_t)ndim;
    for (int i = 0; i < ndim; i++) {
        uint32_t d = (uint32_t)dims[i];
        buf[4 + 4 * i] = (uint8_t)(d >> 24);
        buf[5 + 4 * i] = (uint8_t)(d >> 16);
        buf[6 + 4 * i] = (uint8_t)(d >> 8);
        buf[7 + 4 * i] = (uint8_t)d;
    }
    memcpy(buf + 4 + 4 * ndim, data, (size_t)n);
    int rc = fv_write_file_atomic(path, buf, len, e);
    free(buf);
    return rc;
}

/* ---------------------------------------------------------------------------------------------
 * MNIST layout
 */

/* out = dir/name; -1 with e set if it does not fit. */
static int join_path(char *out, size_t cap, const char *dir, const char *name, fv_err *e) {
    int n = snprintf(out, cap, "%s/%s", dir, name);
    if (n < 0 || (size_t)n >= cap) return fv_err_set(e, "path %s/%s is too long", dir, name);
    return 0;
}

static int file_exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

/* dir/base, or dir/base.gz when only that exists. Returns 0, or -1 naming both candidates. */
static int find_raw_or_gz(const char *dir, const char *base, char *out, size_t cap, fv_err *e) {
    char gz[256];
    snprintf(gz, sizeof gz, "%s.gz", base);
    if (join_path(out, cap, dir, base, e)) return -1;
    if (file_exists(out)) return 0;
    if (join_path(out, cap, dir, gz, e)) return -1;
    if (file_exists(out)) return 0;
    return fv_err_set(e, "missing %s/%s (neither it nor %s.gz exists)", dir, base, base);
}

int fv_mnist_load(const char *dir, int train, fv_dataset *out, fv_err *e) {
    const char *split = train ? "train" : "t10k";
    char ipath[4096], lpath[4096], base[64];
    snprintf(base, sizeof base, "%s-images-idx3-ubyte", split);
    if (find_raw_or_gz(dir, base, ipath, sizeof ipath, e)) return -1;
    snprintf(base, sizeof base, "%s-labels-idx1-ubyte", split);
    if (find_raw_or_gz(dir, base, lpath, sizeof lpath, e)) return -1;

    uint8_t *x = NULL, *y = NULL;
    int idims[4], ldims[4], ind, lnd;
    if (fv_idx_read(ipath, &x, idims, &ind, e)) return -1;
    /* 3 dimensions (count, rows, columns) as MNIST, or 4 (count, channels, rows, columns) as
     * `fedvim mix` and `fedvim obfuscate` write for colour data. */
    if (ind != 3 && !(ind == 4 && idims[1] >= 1 && idims[1] <= 4)) {
        free(x);
        return fv_err_set(e, "%s: image file has %d dimensions%s, expected 3 (count, rows, columns) or 4 (count, "
                             "channels 1-4, rows, columns)", ipath, ind, ind == 4 ? " with more than 4 channels" : "");
    }
    if (fv_idx_read(lpath, &y, ldims, &lnd, e)) {
        free(x);
        return -1;
    }
    if (lnd != 1) {
        free(x);
        free(y);
        return fv_err_set(e, "%s: label file has %d dimensions, expected 1", lpath, lnd);
    }
    if (idims[0] != ldims[0]) {
        free(x);
        free(y);
        return fv_err_set(e, "%s holds %d images but %s holds %d labels", ipath, idims[0], lpath, ldims[0]);
    }
    for (int i = 0; i < ldims[0]; i++) {
        if (y[i] >= 10) {
            int v = y[i];
            free(x);
            free(y);
            return fv_err_set(e, "%s: label %d at index %d is out of range [0, 10)", lpath, v, i);
        }
    }
    memset(out, 0, sizeof *out);
    out->n = idims[0];
    out->c = ind == 4 ? idims[1] : 1;
    out->h = idims[ind - 2];
    out->w = idims[ind - 1];
    out->classes = 10;
    out->x = x;
    out->y = y;
    return 0;
}

int fv_mnist_write(const char *dir, int train, const fv_dataset *d, fv_err *e) {
    const char *split = train ? "train" : "t10k";
    char path[4096], base[64];
    int dims4[4] = {d->n, d->c, d->h, d->w}, dims3[3] = {d->n, d->h, d->w};
    snprintf(base, sizeof base, "%s-images-idx3-ubyte", split);
    if (join_path(path, sizeof path, dir, base, e) ||
        fv_idx_write(path, d->x, d->c == 1 ? dims3 : dims4, d->c == 1 ? 3 : 4, e))
        return -1;
    snprintf(base, sizeof base, "%s-labels-idx1-ubyte", split);
    if (join_path(path, sizeof path, dir, base, e)) return -1;
    return fv_idx_write(path, d->y, &d->n, 1, e);
}

/* ---------------------------------------------------------------------------------------------
 * CIFAR-10 binary
 */

int fv_cifar10_load(const char *const *paths, int npaths, fv_dataset *out, fv_err *e) {
    FV_ASSERT(npaths > 0);
    uint64_t total = 0;
    for (int i = 0; i < npaths; i++) {
        struct stat st;
        if (stat(paths[i], &st) != 0) return fv_err_set(e, "cannot open %s: %s", paths[i], strerror(errno));
        if (!S_ISREG(st.st_mode)) return fv_err_set(e, "%s is not a regular file", paths[i]);
        uint64_t size = (uint64_t)st.st_size;
        if (size == 0 || size % FV_CIFAR_RECORD != 0)
            return fv_err_set(e, "%s: size %llu is not a positive multiple of the CIFAR-10 record size %d "
                                 "(1 label byte + 3072 pixel bytes)",
                              paths[i], (unsigned long long)size, FV_CIFAR_RECORD);
        total += size;
        if (total > FV_DATA_MAX_BYTES)
            return fv_err_set(e, "%s: CIFAR-10 files together exceed the 2 GiB limit", paths[i]);
    }
    int n = (int)(total / FV_CIFAR_RECORD);
    uint8_t *x = fv_malloc((size_t)n * (FV_CIFAR_RECORD - 1));
    uint8_t *y = fv_malloc((size_t)n);
    uint8_t *rec = fv_malloc(FV_CIFAR_RECORD);
    int k = 0;
    for (int i = 0; i < npaths; i++) {
        FILE *f = fopen(paths[i], "rb");
        if (!f) {
            fv_err_set(e, "cannot open %s: %s", paths[i], strerror(errno));
            goto fail;
        }
        for (int r = 0;; r++) {
            size_t got = fread(rec, 1, FV_CIFAR_RECORD, f);
            if (got == 0 && feof(f)) break;
            if (got < FV_CIFAR_RECORD || k == n) {
                fv_err_set(e, "%s: changed size while being read (record %d)", paths[i], r);
                fclose(f);
                goto fail;
            }
            if (rec[0] >= 10) {
                fv_err_set(e, "%s: label %d of record %d is out of range [0, 10)", paths[i], rec[0], r);
                fclose(f);
                goto fail;
            }
            y[k] = rec[0];
            memcpy(x + (size_t)k * (FV_CIFAR_RECORD - 1), rec + 1, FV_CIFAR_RECORD - 1);
            k++;
        }
        int bad = ferror(f);
        fclose(f);
        if (bad) {
            fv_err_set(e, "%s: read error", paths[i]);
            goto fail;
        }
    }
    if (k != n) {
        fv_err_set(e, "%s: CIFAR-10 files changed size while being read", paths[npaths - 1]);
        goto fail;
    }
    free(rec);
    memset(out, 0, sizeof *out);
    out->n = n;
    out->c = 3;
    out->h = 32;
    out->w = 32;
    out->classes = 10;
    out->x = x;
    out->y = y;
    return 0;
fail:
    free(rec);
    free(x);
    free(y);
    return -1;
}

#define FV_CIFAR_HINT                                                                              \
    "download cifar-10-binary.tar.gz from https://www.cs.toronto.edu/~kriz/cifar.html and extract " \
    "its data_batch_{1..5}.bin and test_batch.bin there"

int fv_cifar10_load_dir(const char *dir, int train, fv_dataset *out, fv_err *e) {
    /* Accept the folder itself, or the cifar-10-batches-bin/ folder the official archive creates. */
    const char *first = train ? "data_batch_1.bin" : "test_batch.bin";
    char sub[4096], probe[4096];
    const char *base = dir;
    if (join_path(probe, sizeof probe, dir, first, e)) return -1;
    if (!file_exists(probe)) {
        if (join_path(sub, sizeof sub, dir, "cifar-10-batches-bin", e)) return -1;
        if (join_path(probe, sizeof probe, sub, first, e)) return -1;
        if (!file_exists(probe))
            return fv_err_set(e, "CIFAR-10 not found: missing %s/%s: " FV_CIFAR_HINT, dir, first);
        base = sub;
    }
    char paths[5][4096], name[32];
    const char *pp[5];
    int np = train ? 5 : 1;
    for (int i = 0; i < np; i++) {
        if (train)
            snprintf(name, sizeof name, "data_batch_%d.bin", i + 1);
        else
            snprintf(name, sizeof name, "test_batch.bin");
        if (join_path(paths[i], sizeof paths[i], base, name, e)) return -1;
        if (!file_exists(paths[i])) return fv_err_set(e, "CIFAR-10 incomplete: missing %s: " FV_CIFAR_HINT, paths[i]);
        pp[i] = paths[i];
    }
    return fv_cifar10_load(pp, np, out, e);
}

/* ---------------------------------------------------------------------------------------------
 * Colored MNIST
 */

static int rgb_dist2(const int a[3], const int b[3]) {
    int d = 0;
    for (int i = 0; i < 3; i++) d += (a[i] - b[i]) * (a[i] - b[i]);
    return d;
}

/* Foreground and background colours of image `index`: uniform in the RGB cube, redrawn until they
 * are at least FV_CMNIST_MIN_DIST apart (about half of all pairs pass; after 64 misses, which
 * never happens in practice, the background is the far corner from the foreground). */
void fv_cmnist_colours(uint64_t seed, uint64_t index, int fg[3], int bg[3]) {
    fv_rng r;
    fv_rng_seed2(&r, seed, index);
    for (int t = 0; t < 64; t++) {
        for (int i = 0; i < 3; i++) fg[i] = (int)fv_rng_below(&r, 256);
        for (int i = 0; i < 3; i++) bg[i] = (int)fv_rng_below(&r, 256);
        if (rgb_dist2(fg, bg) >= FV_CMNIST_MIN_DIST * FV_CMNIST_MIN_DIST) return;
    }
    for (int i = 0; i < 3; i++) bg[i] = fg[i] < 128 ? 255 : 0;
}

void fv_cmnist_make(const fv_dataset *grey, uint64_t seed, fv_dataset *out) {
    FV_ASSERT(grey && out && grey->c == 1 && grey->n >= 0);
    size_t hw = (size_t)grey->h * (size_t)grey->w;
    fv_dataset d = {.n = grey->n, .c = 3, .h = grey->h, .w = grey->w, .classes = grey->classes};
    d.x = fv_malloc((size_t)d.n * 3 * hw);
    d.y = fv_malloc((size_t)d.n);
    if (d.n) memcpy(d.y, grey->y, (size_t)d.n);
#pragma omp parallel for schedule(static) if (d.n > 256)
    for (int i = 0; i < d.n; i++) {
        int fg[3], bg[3];
        fv_cmnist_colours(seed, (uint64_t)i, fg, bg);
        const uint8_t *src = grey->x + (size_t)i * hw;
        uint8_t *dst = d.x + (size_t)i * 3 * hw;
        for (int ch = 0; ch < 3; ch++) {
            uint8_t lut[256];
            for (int v = 0; v < 256; v++) lut[v] = (uint8_t)((bg[ch] * (255 - v) + fg[ch] * v + 127) / 255);
            uint8_t *o = dst + (size_t)ch * hw;
            for (size_t p = 0; p < hw; p++) o[p] = lut[src[p]];
        }
    }
    *out = d;
}

/* ---------------------------------------------------------------------------------------------
 * Normalisation and batches
 */

static fv_norm norm_fill(const float *mean, const float *std, int c) {
    fv_norm n;
    for (int i = 0; i < 4; i++) {
        n.mean[i] = mean[i < c ? i : c - 1];
        n.std[i] = std[i < c ? i : c - 1];
    }
    return n;
}

fv_norm fv_norm_for(const char *dataset) {
    if (dataset && strcmp(dataset, "mnist") == 0) return norm_fill((const float[]){0.1307f}, (const float[]){0.3081f}, 1);
    if (dataset && strcmp(dataset, "fashion") == 0)
        return norm_fill((const float[]){0.2860f}, (const float[]){0.3530f}, 1);
    if (dataset && strcmp(dataset, "cifar10") == 0) /* channel statistics of the training split */
        return norm_fill((const float[]){0.4914f, 0.4822f, 0.4465f}, (const float[]){0.2470f, 0.2435f, 0.2616f}, 3);
    if (dataset && strcmp(dataset, "cmnist") == 0) /* random colours: map [0, 1] to [-1, 1] */
        return norm_fill((const float[]){0.5f}, (const float[]){0.5f}, 1);
    return norm_fill((const float[]){0.0f}, (const float[]){1.0f}, 1);
}

void fv_dataset_to_float(const fv_dataset *d, const int *idx, int start, int count, fv_norm norm, float *out) {
    FV_ASSERT(d && out && count >= 0 && d->c >= 1 && d->c <= 4);
    if (!idx) FV_ASSERT(start >= 0 && start <= d->n - count);
    const size_t hw = (size_t)d->h * (size_t)d->w, img = (size_t)d->c * hw;
    float lut[4][256];
    for (int ch = 0; ch < d->c; ch++) {
        FV_ASSERT(norm.std[ch] > 0.0f);
        for (int v = 0; v < 256; v++) lut[ch][v] = ((float)v / 255.0f - norm.mean[ch]) / norm.std[ch];
    }
#pragma omp parallel for schedule(static) if ((size_t)count * img > (1u << 16))
    for (int k = 0; k < count; k++) {
        int i = idx ? idx[k] : start + k;
        FV_ASSERT(i >= 0 && i < d->n);
        const uint8_t *src = d->x + (size_t)i * img;
        float *dst = out + (size_t)k * img;
        for (int ch = 0; ch < d->c; ch++)
            for (size_t p = 0; p < hw; p++) dst[ch * hw + p] = lut[ch][src[ch * hw + p]];
    }
}

void fv_dataset_labels(const fv_dataset *d, const int *idx, int start, int count, int *out) {
    FV_ASSERT(d && out && count >= 0);
    if (!idx) FV_ASSERT(start >= 0 && start <= d->n - count);
    for (int k = 0; k < count; k++) {
        int i = idx ? idx[k] : start + k;
        FV_ASSERT(i >= 0 && i < d->n);
        out[k] = d->y[i];
    }
}

void fv_dataset_truncate(fv_dataset *d, int n) {
    FV_ASSERT(d && n >= 0 && n <= d->n);
    d->n = n;
}

void fv_dataset_range(fv_dataset *d, int first, int n) {
    FV_ASSERT(d && first >= 0 && n >= 0 && first <= d->n - n);
    const size_t isz = (size_t)d->c * d->h * d->w;
    if (first > 0 && n > 0) {
        memmove(d->x, d->x + (size_t)first * isz, (size_t)n * isz);
        memmove(d->y, d->y + first, (size_t)n);
    }
    d->n = n;
}

/* ---------------------------------------------------------------------------------------------
 * By name
 */

/* Default folder for a data set: $FEDVIM_DATA/<sub> when FEDVIM_DATA is set, else ./data/<sub>. */
static int default_dir(const char *sub, char *out, size_t cap, fv_err *e) {
    const char *root = getenv("FEDVIM_DATA");
    return join_path(out, cap, root && *root ? root : "data", sub, e);
}

/* out = dir, or -1 if it does not fit. */
static int copy_path(char *out, size_t cap, const char *dir, fv_err *e) {
    int n = snprintf(out, cap, "%s", dir);
    if (n < 0 || (size_t)n >= cap) return fv_err_set(e, "path %s is too long", dir);
    return 0;
}

static int dir_exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

/* Which MNIST-layout files of the split are missing (neither raw nor .gz): their names, comma
 * separated, in what. Returns how many are missing. */
static int mnist_missing(const char *dir, int train, char *what, size_t cap) {
    const char *split = train ? "train" : "t10k";
    const char *kinds[2] = {"images-idx3-ubyte", "labels-idx1-ubyte"};
    char p[4096], b[64];
    int miss = 0;
    what[0] = 0;
    for (int i = 0; i < 2; i++) {
        snprintf(b, sizeof b, "%s-%s", split, kinds[i]);
        if (find_raw_or_gz(dir, b, p, sizeof p, NULL) == 0) continue;
        size_t l = strlen(what);
        snprintf(what + l, cap - l, "%s%s/%s[.gz]", miss ? ", " : "", dir, b);
        miss++;
    }
    return miss;
}

int fv_dataset_folder(const char *name, const char *dir, char *out, size_t cap, fv_err *e) {
    const char *sub = !name ? NULL
                      : strcmp(name, "mnist") == 0 || strcmp(name, "cmnist") == 0 ? "mnist"
                      : strcmp(name, "fashion") == 0 || strcmp(name, "cifar10") == 0 ? name
                                                                                       : NULL;
    if (!sub) return fv_err_set(e, "unknown data set '%s' (known: mnist, fashion, cmnist, cifar10)", name ? name : "");
    if (dir) return copy_path(out, cap, dir, e);
    if (default_dir(sub, out, cap, e) != 0) return -1;
    if (strcmp(sub, "fashion") == 0 && !dir_exists(out)) snprintf(out, cap, "%s", "/usr/share/datasets/fashion-mnist");
    return 0;
}

int fv_dataset_load(const char *name, const char *dir, int train, fv_dataset *out, fv_err *e) {
    char path[4096];
    memset(out, 0, sizeof *out);
    if (!name) return fv_err_set(e, "no data set name given (known: mnist, fashion, cmnist, cifar10)");
    if (fv_dataset_folder(name, dir, path, sizeof path, e) != 0) return -1;
    if (strcmp(name, "mnist") == 0 || strcmp(name, "cmnist") == 0) {
        char what[2 * 4096 + 64];
        if (mnist_missing(path, train, what, sizeof what))
            return fv_err_set(e, "MNIST (%s split) not found: missing %s; run scripts/setup.sh (it downloads MNIST "
                                 "into data/mnist), or set FEDVIM_DATA to a folder whose mnist/ holds the IDX files",
                              train ? "train" : "test", what);
        if (strcmp(name, "mnist") == 0) return fv_mnist_load(path, train, out, e);
        fv_dataset grey;
        if (fv_mnist_load(path, train, &grey, e)) return -1;
        if (grey.c == 3) { /* already coloured (a mixed or obfuscated Colored MNIST): as it is */
            *out = grey;
            return 0;
        }
        if (grey.c != 1) {
            int c = grey.c;
            fv_dataset_free(&grey);
            return fv_err_set(e, "%s: cmnist needs grey MNIST (1 channel) or coloured images (3), not %d channels", path, c);
        }
        fv_cmnist_make(&grey, train ? FV_CMNIST_SEED_TRAIN : FV_CMNIST_SEED_TEST, out);
        fv_dataset_free(&grey);
        return 0;
    }
    if (strcmp(name, "fashion") == 0) {
        char what[2 * 4096 + 64];
        if (mnist_missing(path, train, what, sizeof what))
            return fv_err_set(e, "Fashion-MNIST (%s split) not found: missing %s; install the Debian package "
                                 "dataset-fashion-mnist (scripts/setup.sh does), or put its four IDX files in "
                                 "$FEDVIM_DATA/fashion",
                              train ? "train" : "test", what);
        return fv_mnist_load(path, train, out, e);
    }
    return fv_cifar10_load_dir(path, train, out, e); /* cifar10: fv_dataset_folder knows no other name */
}
