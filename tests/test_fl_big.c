/* test_fl_big.c: a model of over 50 MB works through the whole federated stack (issue 4: "Models
 * of at least 50 MB work"): fedavg_cnn on 1x84x84 synthetic images has 14,508,426 parameters
 * (58 MB as float32). Two workers, CURVE and signed updates on, two rounds.
 * Checks the parameter count, the bytes that crossed the wire (at least one model
 * per client per round each way), and that the saved model is the full size. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fl_harness.h"

static fh_ctx H; /* this test program's scratch folder and binary */

static const char *BASE = "[data]\ndataset = synthetic\nsynthetic_shape = 1x84x84\ntrain_size = 64\n"
                          "test_size = 32\n[model]\nname = fedavg_cnn\n[training]\noptimizer = sgd\nlr = 0.01\n"
                          "batch_size = 16\n[fl]\nclients = 2\nfraction = 1\nrounds = 2\nworkers = 2\nseed = 1\n";

static void test_fifty_megabyte_model(void **st) {
    (void)st;
    assert_int_equal(fh_run_exp(&H, "big", BASE, NULL), 0);
    char p[256];
    fh_path(&H, p, sizeof p, "results/big/summary.json");
    char *s = fh_slurp(p);
    assert_non_null(s);
    const double n = fh_json_num(s, "n_params"), model_bytes = 4.0 * n;
    assert_true(n == 14508426.0);
    assert_true(model_bytes >= 50e6);
    /* 2 rounds x 2 clients, a whole model each way each time */
    assert_true(fh_json_num(s, "bytes_up") >= 4 * model_bytes);
    assert_true(fh_json_num(s, "bytes_down") >= 4 * model_bytes);
    assert_true(fh_json_num(s, "rejected") == 0 && fh_json_num(s, "dropped") == 0);
    free(s);
    fh_path(&H, p, sizeof p, "results/big/metrics.jsonl");
    char *m = fh_slurp(p);
    assert_int_equal(fh_count_lines(m), 2);
    free(m);
    struct stat sb;
    fh_path(&H, p, sizeof p, "results/big/model.safetensors");
    assert_int_equal(stat(p, &sb), 0);
    assert_true((double)sb.st_size >= model_bytes);
}

static int setup(void **state) {
    (void)state;
    signal(SIGPIPE, SIG_IGN);
    return fh_init(&H, "test_fl_big") == 0 ? 0 : -1;
}

static int teardown(void **state) {
    (void)state;
    fh_cleanup(&H);
    return 0;
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fifty_megabyte_model),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
