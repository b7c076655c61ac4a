/* test_fl_device.c: where federated workers train (`fedvim run --device`, `fedvim worker --device`).
 * A malformed device is a usage error naming the value; `cpu` trains as before; `cuda` trains on
 * the GPU where there is one, and otherwise stops before round 1 with a message that says no CUDA
 * device is available (never a crash or a hang); a list (`cuda:0,1`) places workers round-robin;
 * on a GPU, [fl] worker_slots gives the single slot's model; --tf32 is refused without a CUDA device and,
 * on a GPU, trains to the FP32 run's accuracy. The GPU training itself is checked by
 * test_cuda_net and scripts/gpu-check.sh. */
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

#include "cuda/net.h"
#include "fl_harness.h"

static fh_ctx H; /* this test program's scratch folder and binary */

static const char *BASE = "[data]\ndataset = synthetic\ntrain_size = 200\ntest_size = 50\n[model]\nname = tiny\n"
                          "[fl]\nclients = 2\nrounds = 1\nworkers = 2\n";

static int run_dev(const char *name, const char *device) {
    char ini[256], out[256], text[1024];
    fh_path(&H, ini, sizeof ini, "%s.ini", name);
    fh_path(&H, out, sizeof out, "%s.out", name);
    snprintf(text, sizeof text, "%s[output]\ndir = %s/results\n", BASE, H.root);
    fh_put(ini, text);
    return fh_run(&H, out, 120, "run", ini, "--quiet", "--overwrite", "--device", device, (const char *)NULL);
}

static void expect_output(const char *name, const char *want) {
    char out[256];
    fh_path(&H, out, sizeof out, "%s.out", name);
    char *t = fh_slurp(out);
    assert_non_null(t);
    if (!strstr(t, want)) fail_msg("%s.out lacks '%s':\n%s", name, want, t);
    free(t);
}

static void test_bad_device_is_a_usage_error(void **st) {
    (void)st;
    assert_int_equal(run_dev("bad", "gpu"), 2);
    expect_output("bad", "'gpu'");
}

static void test_cpu_device_trains(void **st) {
    (void)st;
    assert_int_equal(run_dev("cpu", "cpu"), 0);
}

static void test_cuda_device(void **st) {
    (void)st;
    int rc = run_dev("cuda", "cuda");
    if (fv_cuda_device_count() > 0) {
        assert_int_equal(rc, 0);
    } else {
        assert_int_not_equal(rc, 0);
        expect_output("cuda", fv_cuda_built() ? "no CUDA device is available" : "no CUDA backend");
    }
}

/* A device list places workers round-robin: worker 1 of "cuda:0,1" trains on GPU 1, which a
 * machine with fewer than two GPUs does not have, and the refusal names it. A repeated device is
 * a usage error. */
static void test_device_list(void **st) {
    (void)st;
    assert_int_equal(run_dev("dup", "cuda:0,0"), 2);
    expect_output("dup", "device 0 is listed twice");
    char ini[256], out[256], text[1024];
    fh_path(&H, ini, sizeof ini, "list.ini");
    fh_path(&H, out, sizeof out, "list.out");
    snprintf(text, sizeof text, "%s[output]\ndir = %s/results\n", BASE, H.root);
    fh_put(ini, text);
    int rc = fh_run(&H, out, 120, "run", ini, "--overwrite", "--device", "cuda:0,1", (const char *)NULL);
    expect_output("list", "worker local-0 trains on cuda:0");
    expect_output("list", "worker local-1 trains on cuda:1");
    if (fv_cuda_device_count() >= 2)
        assert_int_equal(rc, 0);
    else
        assert_int_not_equal(rc, 0);
}

/* [fl] worker_slots on a GPU: one worker trains four clients at once, each slot with its own
 * device model and stream, and the model is the one a single slot gives (the CUDA backend is
 * deterministic on one device: docs/cuda.md, "Numerics"). Skipped without a CUDA device. */
static void run_cuda_slots(const char *name, int slots) {
    char ini[256], out[256], text[1024];
    fh_path(&H, ini, sizeof ini, "%s.ini", name);
    fh_path(&H, out, sizeof out, "%s.out", name);
    snprintf(text, sizeof text, "[data]\ndataset = synthetic\ntrain_size = 1600\ntest_size = 200\n[model]\nname = "
             "lenet5\n[training]\nlocal_epochs = 2\n[fl]\nclients = 8\nrounds = 2\nworkers = 1\nworker_slots = %d\n"
             "[output]\ndir = %s/results\nname = %s\n", slots, H.root, name);
    fh_put(ini, text);
    assert_int_equal(fh_run(&H, out, 300, "run", ini, "--quiet", "--overwrite", "--device", "cuda", (const char *)NULL), 0);
}

static void test_cuda_slots(void **st) {
    (void)st;
    if (fv_cuda_device_count() < 1) {
        print_message("no CUDA device: worker slots on a GPU not checked here (scripts/gpu-check.sh runs this)\n");
        return;
    }
    run_cuda_slots("slots1", 1);
    run_cuda_slots("slots4", 4);
    const double gap = fh_model_gap(&H, "slots1", "slots4");
    print_message("cuda, 4 slots against 1: largest parameter difference %g\n", gap);
    assert_true(gap == 0.0);
}

/* --tf32 is an explicit opt-in that only a CUDA device can honour: without --device cuda every
 * command refuses it (usage error, naming the flag); on a GPU, training with it reports it in the
 * JSON (and the convolution path says "TF32 allowed") and reaches the FP32 run's accuracy within
 * 2 points on the same seed and data (TF32 rounds products to 10 mantissa bits: the runs differ
 * by rounding, not by what they learn). */
static void test_tf32(void **st) {
    (void)st;
    char ini[256], out[256], text[512];
    fh_path(&H, ini, sizeof ini, "tf32.ini");
    fh_path(&H, out, sizeof out, "tf32.out");
    snprintf(text, sizeof text, "%s[output]\ndir = %s/results\n", BASE, H.root);
    fh_put(ini, text);
    assert_int_equal(fh_run(&H, out, 60, "run", ini, "--quiet", "--tf32", (const char *)NULL), 2);
    expect_output("tf32", "--tf32 needs --device cuda");
    assert_int_equal(fh_run(&H, out, 60, "train", "--tf32", "--limit", "64", (const char *)NULL), 2);
    expect_output("tf32", "--tf32 needs --device cuda");
    assert_int_equal(fh_run(&H, out, 60, "bench", "train", "--tf32", (const char *)NULL), 2);
    expect_output("tf32", "--tf32 needs --device cuda");
    if (fv_cuda_device_count() < 1) {
        print_message("no CUDA device: TF32 training not checked here (scripts/gpu-check.sh runs this)\n");
        return;
    }
    double acc[2];
    for (int k = 0; k < 2; k++) {
        char o[256];
        fh_path(&H, o, sizeof o, "tf32_train_%d.out", k);
        assert_int_equal(fh_run(&H, o, 300, "train", "--device", "cuda", "--model", "lenet5", "--limit", "6000",
                                "--test-limit", "2000", "--epochs", "1", "--seed", "1", "--json",
                                k ? "--tf32" : (const char *)NULL, (const char *)NULL), 0);
        char *t = fh_slurp(o);
        assert_non_null(t);
        const char *last = strrchr(t, '{');
        assert_non_null(last);
        assert_non_null(strstr(last, k ? "\"tf32\":true" : "\"tf32\":false"));
        acc[k] = fh_json_num(last, "test_accuracy");
        free(t);
    }
    print_message("cuda LeNet-5, one epoch on 6,000 images: FP32 %.4f, TF32 %.4f\n", acc[0], acc[1]);
    assert_true(acc[0] > 0.8 && fabs(acc[1] - acc[0]) <= 0.02);
    char o[256];
    fh_path(&H, o, sizeof o, "tf32_bench.out");
    assert_int_equal(fh_run(&H, o, 300, "bench", "train", "--device", "cuda", "--model", "resnet20", "--batch", "128",
                            "--images", "1024", "--tf32", "--json", (const char *)NULL), 0);
    assert_true(fh_contains(o, "TF32 allowed"));
}

static int setup(void **state) {
    (void)state;
    signal(SIGPIPE, SIG_IGN);
    return fh_init(&H, "test_fl_device") == 0 ? 0 : -1;
}

static int teardown(void **state) {
    (void)state;
    fh_cleanup(&H);
    return 0;
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bad_device_is_a_usage_error),
        cmocka_unit_test(test_cpu_device_trains),
        cmocka_unit_test(test_cuda_device),
        cmocka_unit_test(test_device_list),
        cmocka_unit_test(test_cuda_slots),
        cmocka_unit_test(test_tf32),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
