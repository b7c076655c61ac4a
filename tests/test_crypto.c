/* test_crypto.c: key files (format, permissions, every error), the modes of the atomic writes
 * they go through (fv_write_file_atomic_mode in fv_common), identities, allow-lists, signatures
 * (tampering, wrong tag, wrong key). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "crypto.h"

static char dir[64];

static int setup(void **state) {
    (void)state;
    snprintf(dir, sizeof dir, "/tmp/fv_test_crypto_XXXXXX");
    assert_non_null(mkdtemp(dir));
    fv_crypto_init();
    return 0;
}

static int teardown(void **state) {
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    return system(cmd) == 0 ? 0 : -1;
}

static void put(const char *path, const char *text, mode_t mode) {
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    chmod(path, mode);
}

static void expect_parse_error(const char *text, const char *frag) {
    uint8_t a[4], b[8];
    fv_keyfield f[2] = {{"alpha", a, 4}, {"beta", b, 8}};
    fv_err e = {{0}};
    if (fv_keyfile_parse("k", text, strlen(text), "test-kind", f, 2, &e) == 0) fail_msg("accepted:\n%s", text);
    if (!strstr(e.msg, frag)) fail_msg("'%s' lacks '%s'", e.msg, frag);
}

static void test_keyfile_roundtrip_and_errors(void **state) {
    (void)state;
    char path[128];
    snprintf(path, sizeof path, "%s/k.key", dir);
    uint8_t a[4] = {1, 2, 3, 4}, b[8] = {9, 8, 7, 6, 5, 4, 3, 255};
    fv_keyfield w[2] = {{"alpha", a, 4}, {"beta", b, 8}};
    fv_err e = {{0}};
    assert_int_equal(fv_keyfile_write(path, "test-kind", w, 2, 1, &e), 0);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    uint8_t ra[4], rb[8];
    fv_keyfield r[2] = {{"beta", rb, 8}, {"alpha", ra, 4}};
    assert_int_equal(fv_keyfile_read(path, "test-kind", r, 2, 1, &e), 0);
    assert_memory_equal(ra, a, 4);
    assert_memory_equal(rb, b, 8);
    /* a secret readable by others is refused */
    chmod(path, 0644);
    assert_int_equal(fv_keyfile_read(path, "test-kind", r, 2, 1, &e), -1);
    assert_non_null(strstr(e.msg, "chmod 600"));

    expect_parse_error("hello 1\n", "not a fedvim key file");
    expect_parse_error("fedvim-key 2\nkind test-kind\n", "version '2' is not supported");
    expect_parse_error("fedvim-key 1\nkind other\nalpha 01020304\n", "holds a 'other' key");
    expect_parse_error("fedvim-key 1\nkind test-kind\nalpha 01020304\n", "'beta' is missing");
    expect_parse_error("fedvim-key 1\nkind test-kind\nalpha 0102030\nbeta 0000000000000000\n", "8 hex digits");
    expect_parse_error("fedvim-key 1\nkind test-kind\nalpha 0102030z\nbeta 0000000000000000\n", "not valid hex");
    expect_parse_error("fedvim-key 1\nkind test-kind\nalpha 01020304\nalpha 01020304\n", "given twice");
    expect_parse_error("fedvim-key 1\nkind test-kind\ngamma 01\n", "unknown field 'gamma'");
    expect_parse_error("", "empty");
    expect_parse_error("# only a comment\nfedvim-key 1\n", "'kind' line is missing");
}

static mode_t mode_of(const char *path) {
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    return st.st_mode & 07777;
}

/* Files in dir whose name contains ".tmp." (left-over temporaries of an atomic write). */
static int temporaries(void) {
    DIR *d = opendir(dir);
    assert_non_null(d);
    int n = 0;
    for (struct dirent *de; (de = readdir(d));) n += strstr(de->d_name, ".tmp.") != NULL;
    closedir(d);
    return n;
}

/* A secret key file is 0600 and its public line 0644 whatever the umask (the write gives exactly
 * the mode asked for); a plain atomic write follows the umask; a failed write names the file and
 * leaves no temporary file behind. */
static void test_atomic_write_modes(void **state) {
    (void)state;
    char path[128], pub[140], plain[128], bad[160];
    snprintf(path, sizeof path, "%s/modes.key", dir);
    snprintf(pub, sizeof pub, "%s.pub", path);
    snprintf(plain, sizeof plain, "%s/plain.txt", dir);
    snprintf(bad, sizeof bad, "%s/no-such-folder/x.key", dir);
    fv_err e = {{0}};
    fv_identity id;
    fv_identity_generate(&id);
    mode_t old = umask(0);
    put(path, "an older, world-readable file\n", 0666);
    assert_int_equal(fv_identity_save(path, &id, &e), 0);
    assert_int_equal(mode_of(path), 0600); /* not 0666 & ~umask: replaced by a 0600 file */
    assert_int_equal(mode_of(pub), 0644);
    umask(077);
    assert_int_equal(fv_identity_save(path, &id, &e), 0);
    assert_int_equal(mode_of(path), 0600);
    assert_int_equal(mode_of(pub), 0644); /* exact: the umask does not clear the public bits */
    assert_int_equal(fv_write_file_atomic(plain, "x", 1, &e), 0);
    assert_int_equal(mode_of(plain), 0600); /* 0644 less the umask 077 */
    umask(022);
    assert_int_equal(fv_write_file_atomic(plain, "y", 1, &e), 0);
    assert_int_equal(mode_of(plain), 0644);
    umask(old);
    assert_int_equal(fv_identity_save(bad, &id, &e), -1);
    assert_non_null(strstr(e.msg, "no-such-folder/x.key"));
    assert_int_equal(fv_write_file_atomic_mode(bad, "z", 1, 0600, &e), -1);
    assert_non_null(strstr(e.msg, "no-such-folder/x.key"));
    assert_int_equal(temporaries(), 0);
    fv_identity back;
    assert_int_equal(fv_identity_load(path, &back, &e), 0);
    fv_identity_wipe(&id);
    fv_identity_wipe(&back);
}

static void test_identity(void **state) {
    (void)state;
    char path[128], pub[140];
    snprintf(path, sizeof path, "%s/worker.key", dir);
    snprintf(pub, sizeof pub, "%s.pub", path);
    fv_identity id, back;
    fv_identity_generate(&id);
    fv_err e = {{0}};
    assert_int_equal(fv_identity_save(path, &id, &e), 0);
    assert_int_equal(fv_identity_load(path, &back, &e), 0);
    assert_memory_equal(&id, &back, sizeof id);
    fv_public_id p;
    assert_int_equal(fv_pubid_load(pub, &p, &e), 0);
    assert_memory_equal(&p, &id.pub, sizeof p);
    /* a key file whose public half does not match its secret half is refused */
    fv_identity other;
    fv_identity_generate(&other);
    fv_keyfield f[4] = {{"curve-public", other.pub.curve_pk, 32}, {"curve-secret", id.curve_sk, 32},
                        {"sign-public", id.pub.sign_pk, 32}, {"sign-secret", id.sign_sk, 64}};
    assert_int_equal(fv_keyfile_write(path, "identity-secret", f, 4, 1, &e), 0);
    assert_int_equal(fv_identity_load(path, &back, &e), -1);
    assert_non_null(strstr(e.msg, "does not belong"));
    /* a public file is not a secret identity */
    assert_int_equal(fv_identity_load(pub, &back, &e), -1);
    fv_identity_wipe(&id);
    uint8_t zero[sizeof id] = {0};
    assert_memory_equal(&id, zero, sizeof id);
}

static void test_allowlist(void **state) {
    (void)state;
    fv_identity a, b;
    fv_identity_generate(&a);
    fv_identity_generate(&b);
    char la[FV_PUBID_STR_LEN + 1], lb[FV_PUBID_STR_LEN + 1], text[1024], path[128];
    fv_pubid_format(la, sizeof la, &a.pub);
    fv_pubid_format(lb, sizeof lb, &b.pub);
    snprintf(path, sizeof path, "%s/allow.txt", dir);
    snprintf(text, sizeof text, "# workers\n\n%s worker-a on host1\n  %s\n", la, lb);
    put(path, text, 0644);
    fv_allowlist al;
    fv_err e = {{0}};
    assert_int_equal(fv_allowlist_load(path, 100, &al, &e), 0);
    assert_int_equal(al.n, 2);
    assert_string_equal(al.labels[0], "worker-a on host1");
    assert_string_equal(al.labels[1], "");
    assert_int_equal(fv_allowlist_find_curve(&al, b.pub.curve_pk), 1);
    assert_int_equal(fv_allowlist_find_curve(&al, a.pub.curve_pk), 0);
    fv_identity c;
    fv_identity_generate(&c);
    assert_int_equal(fv_allowlist_find_curve(&al, c.pub.curve_pk), -1);
    fv_allowlist_free(&al);
    assert_int_equal(fv_allowlist_load(path, 1, &al, &e), -1);
    assert_non_null(strstr(e.msg, "more than 1"));
    snprintf(text, sizeof text, "%s\n%s\n", la, la);
    put(path, text, 0644);
    assert_int_equal(fv_allowlist_load(path, 100, &al, &e), -1);
    assert_non_null(strstr(e.msg, ":2: this key is already listed"));
    la[10] = 'g';
    snprintf(text, sizeof text, "%s\n", la);
    put(path, text, 0644);
    assert_int_equal(fv_allowlist_load(path, 100, &al, &e), -1);
    assert_non_null(strstr(e.msg, ":1: the CURVE key is not valid hex"));
    put(path, "# nothing\n", 0644);
    assert_int_equal(fv_allowlist_load(path, 100, &al, &e), -1);
    assert_non_null(strstr(e.msg, "empty"));
}

static void test_sign_verify(void **state) {
    (void)state;
    fv_identity a, b;
    fv_identity_generate(&a);
    fv_identity_generate(&b);
    uint8_t msg[1000], sig[FV_SIG_BYTES];
    for (int i = 0; i < 1000; i++) msg[i] = (uint8_t)(i * 7);
    fv_sign(sig, "tag-1", msg, sizeof msg, a.sign_sk);
    assert_int_equal(fv_verify(sig, "tag-1", msg, sizeof msg, a.pub.sign_pk), 0);
    assert_int_equal(fv_verify(sig, "tag-2", msg, sizeof msg, a.pub.sign_pk), -1); /* domain */
    assert_int_equal(fv_verify(sig, "tag-1", msg, sizeof msg, b.pub.sign_pk), -1); /* wrong key */
    assert_int_equal(fv_verify(sig, "tag-1", msg, sizeof msg - 1, a.pub.sign_pk), -1);
    for (int bit = 0; bit < 8; bit++) {
        msg[500] ^= (uint8_t)(1 << bit);
        assert_int_equal(fv_verify(sig, "tag-1", msg, sizeof msg, a.pub.sign_pk), -1);
        msg[500] ^= (uint8_t)(1 << bit);
    }
    sig[3] ^= 1;
    assert_int_equal(fv_verify(sig, "tag-1", msg, sizeof msg, a.pub.sign_pk), -1);
    uint8_t h1[FV_HASH_BYTES], h2[FV_HASH_BYTES];
    fv_hash(h1, msg, sizeof msg);
    fv_hash(h2, msg, sizeof msg);
    assert_memory_equal(h1, h2, FV_HASH_BYTES);
    msg[0] ^= 1;
    fv_hash(h2, msg, sizeof msg);
    assert_false(fv_ct_equal(h1, h2, FV_HASH_BYTES));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_keyfile_roundtrip_and_errors),
        cmocka_unit_test(test_identity),
        cmocka_unit_test(test_atomic_write_modes),
        cmocka_unit_test(test_allowlist),
        cmocka_unit_test(test_sign_verify),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
