/* crypto.h: fedvim's keys and signatures, on libsodium.
 *
 *  - Key files: one text format for every key fedvim stores, with a magic and version line
 *    ("fedvim-key 1"), a kind line, then named hex fields. Secret files are written atomically with
 *    mode 0600 and refused when group or others can read them. The same reader serves every kind
 *    (worker identities here, VisualMixer client secrets in vmix).
 *  - Identities: a peer (coordinator or worker) has two independent key pairs: a CURVE (X25519)
 *    pair for ZeroMQ's transport encryption and an Ed25519 pair for signing updates. Keys are
 *    never reused across the two protocols. The public half is one line, "fvid1:<curve>:<sign>"
 *    (hex), so an allow-list is simply these lines, one per worker (cat keys/NAME.pub >> allow.txt).
 *  - Signing: Ed25519 detached signatures over a domain tag plus the message; hashes are
 *    BLAKE2b-256. Verification results must be checked (FV_MUST_USE).
 * Not here: sockets and the ZAP handler (transport.h), message layout (wire.h).
 */
#ifndef FV_CRYPTO_H
#define FV_CRYPTO_H
#include <stddef.h>
#include <stdint.h>

#include "fv_common.h"

#define FV_CURVE_KEY_BYTES 32
#define FV_SIGN_PK_BYTES 32
#define FV_SIGN_SK_BYTES 64
#define FV_SIG_BYTES 64
#define FV_HASH_BYTES 32

#define FV_KEYFILE_MAGIC "fedvim-key"
#define FV_KEYFILE_VERSION 1
#define FV_KEYFILE_MAX_FIELDS 8
#define FV_KEYFILE_MAX_BYTES 128 /* longest field value, in bytes */

/* Initialise libsodium (idempotent, thread-safe). Aborts if the library cannot start. */
void fv_crypto_init(void);

/* ---- key files ---- */

typedef struct {
    const char *name;  /* field name: [a-z0-9-]+ */
    uint8_t *data;     /* write: the bytes to store; read: filled (FV_KEYFILE_MAX_BYTES room) */
    size_t len;        /* write: byte count; read: expected byte count (exact) */
} fv_keyfield;

/* Write a key file of `kind` ([a-z0-9-]+) with the given fields, atomically. `secret` != 0 gives
 * mode 0600, otherwise 0644. Returns 0 or -1 with e naming the file. */
FV_MUST_USE int fv_keyfile_write(const char *path, const char *kind, const fv_keyfield *fields, int nfields,
                     int secret, fv_err *e);

/* Read a key file that must be of `kind` and hold exactly the listed fields with exactly the
 * listed lengths (any order). `secret` != 0 also refuses a file readable by group or others.
 * Errors name the file, the line and what is wrong (bad magic, unsupported version, wrong kind,
 * missing/duplicate/unknown field, bad hex, wrong length). Returns 0 or -1. The caller should
 * sodium_memzero secret fields when done. */
FV_MUST_USE int fv_keyfile_read(const char *path, const char *kind, fv_keyfield *fields, int nfields,
                    int secret, fv_err *e);

/* Parse key-file text held in memory (what fv_keyfile_read does after reading; exposed for the
 * fuzzer and tests). `name` labels errors. */
FV_MUST_USE int fv_keyfile_parse(const char *name, const char *text, size_t len, const char *kind,
                     fv_keyfield *fields, int nfields, fv_err *e);

/* ---- identities ---- */

typedef struct {
    uint8_t curve_pk[FV_CURVE_KEY_BYTES];
    uint8_t sign_pk[FV_SIGN_PK_BYTES];
} fv_public_id;

typedef struct {
    fv_public_id pub;
    uint8_t curve_sk[FV_CURVE_KEY_BYTES];
    uint8_t sign_sk[FV_SIGN_SK_BYTES];
} fv_identity;

#define FV_PUBID_STR_LEN (6 + 64 + 1 + 64) /* "fvid1:" hex ":" hex, without the NUL */

/* A fresh identity from libsodium's CSPRNG. */
void fv_identity_generate(fv_identity *id);

/* Wipe the secret halves (sodium_memzero). Accepts NULL. */
void fv_identity_wipe(fv_identity *id);

/* Save the secret identity to `path` (kind "identity-secret", mode 0600) and its public line to
 * `path`.pub. Returns 0 or -1 with e set. */
FV_MUST_USE int fv_identity_save(const char *path, const fv_identity *id, fv_err *e);

/* Load a secret identity saved by fv_identity_save; checks that the public halves match the
 * secret halves. Returns 0 or -1 with e set. */
FV_MUST_USE int fv_identity_load(const char *path, fv_identity *id, fv_err *e);

/* "fvid1:<64 hex curve pk>:<64 hex sign pk>" into out (at least FV_PUBID_STR_LEN + 1 bytes). */
void fv_pubid_format(char *out, size_t cap, const fv_public_id *pub);

/* Parse the public-identity line format. Returns 0 or -1 with e set (`what` names the source). */
FV_MUST_USE int fv_pubid_parse(const char *s, size_t len, fv_public_id *pub, const char *what, fv_err *e);

/* Read a public identity file (its first non-comment line is the fvid1 line). */
FV_MUST_USE int fv_pubid_load(const char *path, fv_public_id *pub, fv_err *e);

/* An allow-list: public identities, each with an optional label (rest of its line). */
typedef struct {
    int n;
    fv_public_id *ids;
    char **labels; /* n strings, "" when absent */
} fv_allowlist;

/* Load an allow-list file: one fvid1 line per entry, optionally followed by whitespace and a
 * label; blank lines and lines starting with '#' are ignored. Duplicate entries and bad lines are
 * errors naming the file and the line. At most max_entries. Returns 0 or -1. */
FV_MUST_USE int fv_allowlist_load(const char *path, int max_entries, fv_allowlist *al, fv_err *e);
/* Add one identity (copying it). */
void fv_allowlist_add(fv_allowlist *al, const fv_public_id *pub, const char *label);
/* Index of the entry whose CURVE key is curve_pk, or -1. Constant time per comparison. */
int fv_allowlist_find_curve(const fv_allowlist *al, const uint8_t curve_pk[FV_CURVE_KEY_BYTES]);
void fv_allowlist_free(fv_allowlist *al);

/* ---- hashing and signatures ---- */

/* BLAKE2b-256 of data[0..len). */
void fv_hash(uint8_t out[FV_HASH_BYTES], const void *data, size_t len);

/* Ed25519 detached signature over tag || msg, where tag is a NUL-terminated domain separator
 * (its bytes, without the NUL, are prepended). */
void fv_sign(uint8_t sig[FV_SIG_BYTES], const char *tag, const void *msg, size_t len,
             const uint8_t sk[FV_SIGN_SK_BYTES]);

/* Verify sig over tag || msg with pk. Returns 0 when valid, -1 otherwise. */
FV_MUST_USE int fv_verify(const uint8_t sig[FV_SIG_BYTES], const char *tag, const void *msg, size_t len,
              const uint8_t pk[FV_SIGN_PK_BYTES]);

/* Constant-time equality of two n-byte buffers: 1 when equal. */
FV_MUST_USE int fv_ct_equal(const void *a, const void *b, size_t n);

/* Random bytes from libsodium's CSPRNG (for session ids and secrets, never for simulation). */
void fv_random_bytes(void *out, size_t n);

/* Hex without separators (lower case) into out (2n+1 bytes). */
void fv_hex(char *out, const uint8_t *in, size_t n);

#endif
