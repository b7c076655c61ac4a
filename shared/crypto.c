/* crypto.c: see crypto.h. */
#include "crypto.h"

#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define KEYFILE_MAX_TEXT 4096

void fv_crypto_init(void) {
    if (sodium_init() < 0) FV_DIE("libsodium failed to initialise");
}

void fv_hex(char *out, const uint8_t *in, size_t n) { sodium_bin2hex(out, 2 * n + 1, in, n); }

static int valid_name(const char *s) {
    if (!*s) return 0;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || *s == '-')) return 0;
    return 1;
}

int fv_keyfile_write(const char *path, const char *kind, const fv_keyfield *fields, int nfields,
                     int secret, fv_err *e) {
    FV_ASSERT(valid_name(kind) && nfields >= 0 && nfields <= FV_KEYFILE_MAX_FIELDS);
    char *text = fv_malloc(KEYFILE_MAX_TEXT);
    int n = snprintf(text, KEYFILE_MAX_TEXT, "# fedvim key file%s\n%s %d\nkind %s\n",
                     secret ? " (SECRET: keep it mode 0600, never share it)" : "", FV_KEYFILE_MAGIC,
                     FV_KEYFILE_VERSION, kind);
    for (int i = 0; i < nfields; i++) {
        FV_ASSERT(valid_name(fields[i].name) && fields[i].len <= FV_KEYFILE_MAX_BYTES);
        char hex[2 * FV_KEYFILE_MAX_BYTES + 1];
        fv_hex(hex, fields[i].data, fields[i].len);
        n += snprintf(text + n, KEYFILE_MAX_TEXT - (size_t)n, "%s %s\n", fields[i].name, hex);
        FV_ASSERT(n < KEYFILE_MAX_TEXT);
    }
    int rc = fv_write_file_atomic_mode(path, text, (size_t)n, secret ? 0600 : 0644, e);
    sodium_memzero(text, KEYFILE_MAX_TEXT);
    free(text);
    return rc;
}

/* Next line of text[*pos..len) without its newline, with trailing whitespace and '\r' removed.
 * Returns 0 at the end. */
static int next_line(const char *text, size_t len, size_t *pos, const char **line, size_t *ll) {
    if (*pos >= len) return 0;
    size_t s = *pos, i = s;
    while (i < len && text[i] != '\n') i++;
    *pos = i < len ? i + 1 : i;
    size_t end = i;
    while (end > s && (text[end - 1] == ' ' || text[end - 1] == '\t' || text[end - 1] == '\r')) end--;
    *line = text + s;
    *ll = end - s;
    return 1;
}

int fv_keyfile_parse(const char *name, const char *text, size_t len, const char *kind,
                     fv_keyfield *fields, int nfields, fv_err *e) {
    FV_ASSERT(nfields >= 0 && nfields <= FV_KEYFILE_MAX_FIELDS);
    int seen[FV_KEYFILE_MAX_FIELDS] = {0};
    int state = 0; /* 0: want magic, 1: want kind, 2: fields */
    size_t pos = 0;
    int lineno = 0;
    const char *line;
    size_t ll;
    while (next_line(text, len, &pos, &line, &ll)) {
        lineno++;
        if (ll == 0 || line[0] == '#') continue;
        if (memchr(line, '\0', ll)) return fv_err_set(e, "%s:%d: NUL byte in a key file", name, lineno);
        /* split "word rest" */
        size_t w = 0;
        while (w < ll && line[w] != ' ' && line[w] != '\t') w++;
        size_t v = w;
        while (v < ll && (line[v] == ' ' || line[v] == '\t')) v++;
        const char *val = line + v;
        size_t vl = ll - v;
        if (state == 0) {
            size_t ml = strlen(FV_KEYFILE_MAGIC);
            if (w != ml || memcmp(line, FV_KEYFILE_MAGIC, ml) != 0)
                return fv_err_set(e, "%s:%d: not a fedvim key file (expected a '%s %d' line)", name,
                                  lineno, FV_KEYFILE_MAGIC, FV_KEYFILE_VERSION);
            if (vl != 1 || val[0] != '0' + FV_KEYFILE_VERSION)
                return fv_err_set(e,
                                  "%s:%d: key file version '%.*s' is not supported (this fedvim reads "
                                  "version %d; regenerate the key with this fedvim)",
                                  name, lineno, (int)(vl > 16 ? 16 : vl), val, FV_KEYFILE_VERSION);
            state = 1;
            continue;
        }
        if (state == 1) {
            if (w != 4 || memcmp(line, "kind", 4) != 0)
                return fv_err_set(e, "%s:%d: expected 'kind %s'", name, lineno, kind);
            if (vl != strlen(kind) || memcmp(val, kind, vl) != 0)
                return fv_err_set(e, "%s:%d: this key file holds a '%.*s' key, expected '%s'", name,
                                  lineno, (int)(vl > 40 ? 40 : vl), val, kind);
            state = 2;
            continue;
        }
        int f = -1;
        for (int i = 0; i < nfields; i++)
            if (strlen(fields[i].name) == w && memcmp(fields[i].name, line, w) == 0) f = i;
        if (f < 0)
            return fv_err_set(e, "%s:%d: unknown field '%.*s' in a '%s' key file", name, lineno,
                              (int)(w > 40 ? 40 : w), line, kind);
        if (seen[f]) return fv_err_set(e, "%s:%d: field '%s' given twice", name, lineno, fields[f].name);
        if (vl != 2 * fields[f].len)
            return fv_err_set(e, "%s:%d: field '%s' must be %zu hex digits, found %zu", name, lineno,
                              fields[f].name, 2 * fields[f].len, vl);
        size_t got = 0;
        if (sodium_hex2bin(fields[f].data, fields[f].len, val, vl, NULL, &got, NULL) != 0 ||
            got != fields[f].len)
            return fv_err_set(e, "%s:%d: field '%s' is not valid hex", name, lineno, fields[f].name);
        seen[f] = 1;
    }
    if (state == 0)
        return fv_err_set(e, "%s: empty, not a fedvim key file (expected '%s %d')", name,
                          FV_KEYFILE_MAGIC, FV_KEYFILE_VERSION);
    if (state == 1) return fv_err_set(e, "%s: the 'kind' line is missing", name);
    for (int i = 0; i < nfields; i++)
        if (!seen[i]) return fv_err_set(e, "%s: field '%s' is missing", name, fields[i].name);
    return 0;
}

int fv_keyfile_read(const char *path, const char *kind, fv_keyfield *fields, int nfields,
                    int secret, fv_err *e) {
    if (secret) {
        struct stat st;
        if (stat(path, &st) != 0) return fv_err_set(e, "cannot open key file %s: %s", path, strerror(errno));
        if (st.st_mode & 077)
            return fv_err_set(e,
                              "key file %s is readable by others (mode %03o); a secret key must be "
                              "private: chmod 600 %s",
                              path, (unsigned)(st.st_mode & 0777), path);
    }
    uint8_t *text = NULL;
    size_t len = 0;
    if (fv_read_file(path, KEYFILE_MAX_TEXT, &text, &len, e) != 0) return -1;
    int rc = fv_keyfile_parse(path, (const char *)text, len, kind, fields, nfields, e);
    sodium_memzero(text, len);
    free(text);
    return rc;
}

/* ---- identities ---- */

void fv_identity_generate(fv_identity *id) {
    fv_crypto_init();
    crypto_box_keypair(id->pub.curve_pk, id->curve_sk);
    crypto_sign_keypair(id->pub.sign_pk, id->sign_sk);
}

void fv_identity_wipe(fv_identity *id) {
    if (id) sodium_memzero(id, sizeof *id);
}

void fv_pubid_format(char *out, size_t cap, const fv_public_id *pub) {
    FV_ASSERT(cap >= FV_PUBID_STR_LEN + 1);
    char a[65], b[65];
    fv_hex(a, pub->curve_pk, 32);
    fv_hex(b, pub->sign_pk, 32);
    snprintf(out, cap, "fvid1:%s:%s", a, b);
}

int fv_pubid_parse(const char *s, size_t len, fv_public_id *pub, const char *what, fv_err *e) {
    if (len != FV_PUBID_STR_LEN || memcmp(s, "fvid1:", 6) != 0 || s[70] != ':')
        return fv_err_set(e, "%s: not a fedvim public identity (expected fvid1:<64 hex>:<64 hex>)", what);
    size_t got = 0;
    if (sodium_hex2bin(pub->curve_pk, 32, s + 6, 64, NULL, &got, NULL) != 0 || got != 32)
        return fv_err_set(e, "%s: the CURVE key is not valid hex", what);
    if (sodium_hex2bin(pub->sign_pk, 32, s + 71, 64, NULL, &got, NULL) != 0 || got != 32)
        return fv_err_set(e, "%s: the signing key is not valid hex", what);
    return 0;
}

int fv_identity_save(const char *path, const fv_identity *id, fv_err *e) {
    fv_keyfield f[4] = {
        {"curve-public", (uint8_t *)id->pub.curve_pk, 32},
        {"curve-secret", (uint8_t *)id->curve_sk, 32},
        {"sign-public", (uint8_t *)id->pub.sign_pk, 32},
        {"sign-secret", (uint8_t *)id->sign_sk, 64},
    };
    if (fv_keyfile_write(path, "identity-secret", f, 4, 1, e) != 0) return -1;
    char line[FV_PUBID_STR_LEN + 96];
    fv_pubid_format(line, sizeof line, &id->pub);
    size_t n = strlen(line);
    line[n++] = '\n';
    size_t pl = strlen(path);
    char *pubpath = fv_malloc(pl + 5);
    snprintf(pubpath, pl + 5, "%s.pub", path);
    int rc = fv_write_file_atomic_mode(pubpath, line, n, 0644, e);
    free(pubpath);
    return rc;
}

int fv_identity_load(const char *path, fv_identity *id, fv_err *e) {
    fv_keyfield f[4] = {
        {"curve-public", id->pub.curve_pk, 32},
        {"curve-secret", id->curve_sk, 32},
        {"sign-public", id->pub.sign_pk, 32},
        {"sign-secret", id->sign_sk, 64},
    };
    fv_crypto_init();
    if (fv_keyfile_read(path, "identity-secret", f, 4, 1, e) != 0) {
        fv_identity_wipe(id);
        return -1;
    }
    uint8_t pk[32];
    if (crypto_scalarmult_base(pk, id->curve_sk) != 0 || !fv_ct_equal(pk, id->pub.curve_pk, 32)) {
        fv_identity_wipe(id);
        return fv_err_set(e, "%s: curve-public does not belong to curve-secret (damaged key file)", path);
    }
    if (crypto_sign_ed25519_sk_to_pk(pk, id->sign_sk) != 0 || !fv_ct_equal(pk, id->pub.sign_pk, 32)) {
        fv_identity_wipe(id);
        return fv_err_set(e, "%s: sign-public does not belong to sign-secret (damaged key file)", path);
    }
    return 0;
}

int fv_pubid_load(const char *path, fv_public_id *pub, fv_err *e) {
    uint8_t *text = NULL;
    size_t len = 0;
    if (fv_read_file(path, KEYFILE_MAX_TEXT, &text, &len, e) != 0) return -1;
    size_t pos = 0;
    const char *line;
    size_t ll;
    int rc = fv_err_set(e, "%s: no fvid1 line found", path);
    while (next_line((const char *)text, len, &pos, &line, &ll)) {
        if (ll == 0 || line[0] == '#') continue;
        size_t w = 0;
        while (w < ll && line[w] != ' ' && line[w] != '\t') w++;
        rc = fv_pubid_parse(line, w, pub, path, e);
        break;
    }
    free(text);
    return rc;
}

int fv_allowlist_load(const char *path, int max_entries, fv_allowlist *al, fv_err *e) {
    memset(al, 0, sizeof *al);
    uint8_t *text = NULL;
    size_t len = 0;
    if (fv_read_file(path, (size_t)max_entries * 512 + 4096, &text, &len, e) != 0) return -1;
    size_t pos = 0;
    const char *line;
    size_t ll;
    int lineno = 0;
    while (next_line((const char *)text, len, &pos, &line, &ll)) {
        lineno++;
        size_t s = 0;
        while (s < ll && (line[s] == ' ' || line[s] == '\t')) s++;
        if (s == ll || line[s] == '#') continue;
        size_t w = s;
        while (w < ll && line[w] != ' ' && line[w] != '\t') w++;
        char what[600];
        snprintf(what, sizeof what, "%s:%d", path, lineno);
        fv_public_id pub;
        if (fv_pubid_parse(line + s, w - s, &pub, what, e) != 0) goto fail;
        size_t l = w;
        while (l < ll && (line[l] == ' ' || line[l] == '\t')) l++;
        char label[128];
        size_t lab = ll - l < sizeof label - 1 ? ll - l : sizeof label - 1;
        memcpy(label, line + l, lab);
        label[lab] = 0;
        for (int i = 0; i < al->n; i++)
            if (fv_ct_equal(al->ids[i].curve_pk, pub.curve_pk, 32) ||
                fv_ct_equal(al->ids[i].sign_pk, pub.sign_pk, 32)) {
                fv_err_set(e, "%s: this key is already listed (entry %d)", what, i + 1);
                goto fail;
            }
        if (al->n >= max_entries) {
            fv_err_set(e, "%s: more than %d entries", what, max_entries);
            goto fail;
        }
        fv_allowlist_add(al, &pub, label);
    }
    free(text);
    if (al->n == 0) return fv_err_set(e, "%s: the allow-list is empty (no fvid1 lines)", path);
    return 0;
fail:
    free(text);
    fv_allowlist_free(al);
    return -1;
}

void fv_allowlist_add(fv_allowlist *al, const fv_public_id *pub, const char *label) {
    al->ids = fv_realloc(al->ids, (size_t)(al->n + 1) * sizeof *al->ids);
    al->labels = fv_realloc(al->labels, (size_t)(al->n + 1) * sizeof *al->labels);
    al->ids[al->n] = *pub;
    al->labels[al->n] = fv_strdup(label ? label : "");
    al->n++;
}

int fv_allowlist_find_curve(const fv_allowlist *al, const uint8_t curve_pk[FV_CURVE_KEY_BYTES]) {
    int found = -1;
    for (int i = 0; i < al->n; i++)
        if (fv_ct_equal(al->ids[i].curve_pk, curve_pk, 32)) found = i;
    return found;
}

void fv_allowlist_free(fv_allowlist *al) {
    if (!al) return;
    for (int i = 0; i < al->n; i++) free(al->labels[i]);
    free(al->labels);
    free(al->ids);
    memset(al, 0, sizeof *al);
}

/* ---- hashing and signatures ---- */

void fv_hash(uint8_t out[FV_HASH_BYTES], const void *data, size_t len) {
    crypto_generichash(out, FV_HASH_BYTES, data, len, NULL, 0);
}

/* Ed25519 signs the message itself; to sign tag || msg without copying a large msg we sign the
 * BLAKE2b-512 of (tag length, tag, msg): a fixed, domain-separated digest. */
static void sign_digest(uint8_t d[64], const char *tag, const void *msg, size_t len) {
    crypto_generichash_state st;
    uint8_t tl = (uint8_t)strlen(tag);
    FV_ASSERT(strlen(tag) < 256);
    crypto_generichash_init(&st, NULL, 0, 64);
    crypto_generichash_update(&st, &tl, 1);
    crypto_generichash_update(&st, (const uint8_t *)tag, tl);
    crypto_generichash_update(&st, msg, len);
    crypto_generichash_final(&st, d, 64);
}

void fv_sign(uint8_t sig[FV_SIG_BYTES], const char *tag, const void *msg, size_t len,
             const uint8_t sk[FV_SIGN_SK_BYTES]) {
    uint8_t d[64];
    sign_digest(d, tag, msg, len);
    crypto_sign_detached(sig, NULL, d, sizeof d, sk);
}

int fv_verify(const uint8_t sig[FV_SIG_BYTES], const char *tag, const void *msg, size_t len,
              const uint8_t pk[FV_SIGN_PK_BYTES]) {
    uint8_t d[64];
    sign_digest(d, tag, msg, len);
    return crypto_sign_verify_detached(sig, d, sizeof d, pk) == 0 ? 0 : -1;
}

int fv_ct_equal(const void *a, const void *b, size_t n) { return sodium_memcmp(a, b, n) == 0; }

void fv_random_bytes(void *out, size_t n) {
    fv_crypto_init();
    randombytes_buf(out, n);
}
