/* test_cli_benchtrain.c: `fedvim bench train` as a user runs it: one JSON object with the rate, and
 * the OpenMP wait setting it ran under. fedvim bounds idle threads' spin (GOMP_SPINCOUNT=10000,
 * cli/main.c) unless the user chose OMP_WAIT_POLICY or GOMP_SPINCOUNT; either choice is kept.
 * With --layers: one timing row per node, consistent with the step time, in the table and the
 * JSON, on the CPU and (with a GPU; else the clean refusal) on --device cuda. A --data-dir without MNIST is an error, not random data, and
 * so is one given to a model that reads no data.
 * (Not named *_bench: CI's ASan pass leaves those out.) */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fl_harness.h"

static fh_ctx H;

/* Runs a small CPU benchmark with the environment as it stands; returns its JSON text (caller
 * frees). */
static char *bench(const char *name) {
    char out[256];
    fh_path(&H, out, sizeof out, "%s.out", name);
    assert_int_equal(fh_run(&H, out, 120, "bench", "train", "--model", "tiny", "--batch", "16", "--images", "64",
                            "--threads", "2", "--json", (const char *)NULL),
                     0);
    char *t = fh_slurp(out);
    assert_non_null(t);
    const double ips = fh_json_num(t, "images_per_second");
    if (!(ips > 0.0)) fail_msg("%s: no rate in:\n%s", name, t);
    return t;
}

static void expect_openmp(const char *name, const char *want) {
    char *t = bench(name);
    char pat[128];
    snprintf(pat, sizeof pat, "\"openmp\":\"%s\"", want);
    if (!strstr(t, pat)) fail_msg("%s: expected %s in:\n%s", name, pat, t);
    free(t);
}

static void test_openmp_default_and_overrides(void **st) {
    (void)st;
    /* ctest sets OMP_WAIT_POLICY=PASSIVE for the whole suite; this test sets its own */
    unsetenv("OMP_WAIT_POLICY");
    unsetenv("GOMP_SPINCOUNT");
    expect_openmp("default", "GOMP_SPINCOUNT=10000");
    setenv("OMP_WAIT_POLICY", "PASSIVE", 1);
    expect_openmp("passive", "OMP_WAIT_POLICY=PASSIVE");
    unsetenv("OMP_WAIT_POLICY");
    setenv("GOMP_SPINCOUNT", "500", 1);
    expect_openmp("spin", "GOMP_SPINCOUNT=500");
    setenv("OMP_WAIT_POLICY", "PASSIVE", 1);
    unsetenv("GOMP_SPINCOUNT");
}

/* The --layers output of LeNet-5, 4 steps of 16, in the file `out`: a row per node after the
 * input (12), named as the state dict names them, whose times add up to no more than the measured
 * step; the table on stderr ends with the step. */
static void check_layers(const char *out) {
    char *t = fh_slurp(out);
    assert_non_null(t);
    const char *j = strstr(t, "{\"bench\"");
    if (!j) fail_msg("no JSON object in:\n%s", t);
    const double step = fh_json_num(j, "step_ms"), steps = fh_json_num(j, "steps");
    const double secs = fh_json_num(j, "seconds"), zero = fh_json_num(j, "zero_grad_ms");
    assert_true(steps == 4.0); /* 64 images in batches of 16 */
    /* step_ms is the wall time per step: 1e-6 relative (both are printed to 9 digits) */
    if (!(fabs(step - secs * 1e3 / steps) <= 1e-6 * step)) fail_msg("step_ms %g, seconds %g", step, secs);
    int rows = 0;
    double sum = zero;
    for (const char *p = strstr(j, "\"layers\":["); p && (p = strstr(p, "{\"node\":")); p++, rows++) {
        sum += fh_json_num(p, "forward_ms") + fh_json_num(p, "backward_ms");
        assert_int_equal((int)fh_json_num(p, "node"), rows + 1);
    }
    assert_int_equal(rows, 12);
    if (!(sum > 0.0 && sum <= step)) fail_msg("node times add up to %g ms of a %g ms step", sum, step);
    assert_non_null(strstr(j, "{\"node\":1,\"op\":\"conv2d\",\"tensors\":\"conv1\",\"output\":\"6x28x28\""));
    assert_non_null(strstr(j, "\"op\":\"relu\",\"output\":\"6x28x28\"")); /* no tensors key */
    assert_non_null(strstr(j, "\"tensors\":\"fc3\",\"output\":\"10x1x1\""));
    assert_non_null(strstr(t, "whole step"));
    free(t);
}

/* --layers on the CPU (wall time per node) and on a GPU (event time per node); without a GPU the
 * CUDA run is the device's clear refusal, not an empty table. */
static void test_layers_profile(void **st) {
    (void)st;
    char out[256];
    fh_path(&H, out, sizeof out, "layers.out");
    assert_int_equal(fh_run(&H, out, 120, "bench", "train", "--model", "lenet5", "--batch", "16", "--images",
                            "64", "--threads", "2", "--layers", "--json", (const char *)NULL),
                     0);
    check_layers(out);
    fh_path(&H, out, sizeof out, "layers_cuda.out");
    const int rc = fh_run(&H, out, 120, "bench", "train", "--model", "lenet5", "--batch", "16", "--images", "64",
                          "--device", "cuda", "--layers", "--json", (const char *)NULL);
    if (rc == 0) {
        check_layers(out);
    } else {
        assert_int_equal(rc, 1);
        char *t = fh_slurp(out);
        if (!strstr(t, "--device cuda")) fail_msg("no error naming --device cuda in:\n%s", t);
        assert_null(strstr(t, "images_per_second"));
        free(t);
    }

    /* a --data-dir that does not hold MNIST is an error naming it, not a silent switch to random
     * images (regression: it used to time random data and say so only in the JSON) */
    fh_path(&H, out, sizeof out, "baddir.out");
    assert_int_equal(fh_run(&H, out, 60, "bench", "train", "--model", "lenet5", "--data-dir",
                            "/nonexistent/mnist", "--json", (const char *)NULL),
                     2);
    char *t = fh_slurp(out);
    if (!strstr(t, "--data-dir /nonexistent/mnist")) fail_msg("no error naming the folder in:\n%s", t);
    assert_null(strstr(t, "images_per_second"));
    free(t);
    /* and a --data-dir that no model would read is refused, not ignored */
    fh_path(&H, out, sizeof out, "dir_resnet.out");
    assert_int_equal(fh_run(&H, out, 60, "bench", "train", "--model", "resnet20", "--data-dir", "/tmp",
                            (const char *)NULL),
                     2);
    t = fh_slurp(out);
    if (!strstr(t, "--data-dir is read for --model lenet5 only")) fail_msg("no such error in:\n%s", t);
    free(t);
}

int main(void) {
    const int r = fh_init(&H, "cli_benchtrain");
    if (r == 77) {
        fprintf(stderr, "test_cli_benchtrain: FEDVIM_BIN is not set to the fedvim binary: skipped\n");
        return 77;
    }
    if (r != 0) return 1;
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_openmp_default_and_overrides),
                                       cmocka_unit_test(test_layers_profile)};
    const int rc = cmocka_run_group_tests_name("cli_benchtrain", tests, NULL, NULL);
    fh_cleanup(&H);
    return rc != 0 ? 1 : 0;
}
