/* test_store.c: the client-state versions of the coordinator's results folder (coordinator/store.h),
 * in a scratch folder, 3 clients of one-float states (exact compares: floats are stored as is):
 *  - a version written during round r is pending: the newest committed one is what a load gives,
 *    r's checkpoint commits it and deletes the version it replaces;
 *  - a rolled-back round's versions are discarded (files gone, the committed ones stay the newest,
 *    a client without one before has none), so the next checkpoint commits only its own round's;
 *  - a reopened store resumes with the committed versions, and a version newer than the checkpoint
 *    (a round that died before it) is deleted.
 * The server state in checkpoints is tested in test_server_opt.c, the coordinator's use end to end
 * in test_fl_faults.c (opt_state = keep with a rolled-back round) and test_fl_scaffold.c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fv_common.h"
#include "store.h"

static char dir[] = "/tmp/fv_store_XXXXXX";

static int exists(int client, int round) {
    char p[128];
    snprintf(p, sizeof p, "%s/client_state/c%d_r%d.safetensors", dir, client, round);
    return access(p, F_OK) == 0;
}

static void save(fv_store *s, int client, int round, float v) {
    fv_err e = {{0}};
    assert_int_equal(fv_store_client_state_save(s, client, round, &v, 1, (uint64_t)round, &e), 0);
}

/* The client's committed state must be v with `steps` (v NAN: it has none). */
static void committed(fv_store *s, int client, float v, uint64_t steps) {
    fv_err e = {{0}};
    float *st = NULL;
    size_t n = 0;
    uint64_t k = 0;
    int rc = fv_store_client_state_load(s, client, &st, &n, &k, &e);
    if (isnan(v)) {
        assert_int_equal(rc, 1);
        return;
    }
    assert_int_equal(rc, 0);
    assert_int_equal(n, 1);
    assert_true(st[0] == v);
    assert_true(k == steps);
    free(st);
}

static void checkpoint(fv_store *s, int round) {
    fv_err e = {{0}};
    const float params[2] = {1, 2};
    const uint8_t ch[FV_HASH_BYTES] = {7};
    assert_int_equal(fv_store_checkpoint(s, round, params, 2, NULL, 0, ch, &e), 0);
}

static void test_pending_commit_discard_resume(void **state) {
    (void)state;
    const float none = NAN;
    fv_err e = {{0}};
    assert_non_null(mkdtemp(dir));
    fv_store *s = fv_store_open(dir, 3, &e);
    assert_non_null(s);
    /* round 1: pending until its checkpoint */
    save(s, 0, 1, 1.0f);
    save(s, 1, 1, 2.0f);
    committed(s, 0, none, 0);
    checkpoint(s, 1);
    committed(s, 0, 1.0f, 1);
    committed(s, 1, 2.0f, 1);
    /* round 2 rolled back: its versions go, nothing else moves */
    save(s, 0, 2, 10.0f);
    save(s, 2, 2, 20.0f);
    assert_true(exists(0, 2) && exists(2, 2));
    assert_int_equal(fv_store_client_state_discard(s, &e), 0);
    assert_false(exists(0, 2) || exists(2, 2));
    assert_true(exists(0, 1) && exists(1, 1));
    committed(s, 0, 1.0f, 1);
    committed(s, 2, none, 0);
    assert_int_equal(fv_store_client_state_discard(s, &e), 0); /* nothing pending: nothing to do */
    /* round 3 commits its own version only */
    save(s, 1, 3, 3.0f);
    checkpoint(s, 3);
    committed(s, 0, 1.0f, 1);
    committed(s, 1, 3.0f, 3);
    committed(s, 2, none, 0);
    assert_false(exists(1, 1)); /* replaced */
    /* round 4 dies before its checkpoint: resume deletes its version */
    save(s, 2, 4, 40.0f);
    fv_store_close(&s);
    s = fv_store_open(dir, 3, &e);
    assert_non_null(s);
    int round = 0;
    float p[2];
    const uint8_t ch[FV_HASH_BYTES] = {7};
    assert_int_equal(fv_store_resume(s, &round, p, 2, NULL, 0, ch, &e), 0);
    assert_int_equal(round, 3);
    assert_false(exists(2, 4));
    committed(s, 0, 1.0f, 1);
    committed(s, 1, 3.0f, 3);
    committed(s, 2, none, 0);
    fv_store_close(&s);
    char cmd[64];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_pending_commit_discard_resume)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
