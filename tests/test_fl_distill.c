/* test_fl_distill.c: the server-side student of a federated run ([distill], coordinator/server_kd.h)
 * through the fedvim binary ($FEDVIM_BIN: coordinator and worker processes over CURVE on localhost),
 * on the synthetic set (10 classes, chance 10%) with the tiny model as teacher:
 *  - the student (lenet5, its own public draw of 1,000 images, alpha 1: the teacher's soft targets
 *    are its only signal) learns the final global model: agreement with the teacher > 0.6 and test
 *    accuracy > 0.35 (chance 0.1) after 3 epochs (measured: teacher 0.53, student 0.55, agreement
 *    0.76; a student that learnt nothing agrees about 0.1); student.safetensors holds a lenet5,
 *    and summary.json's "distill" object records the recipe;
 *  - the distillation changes nothing of the federated training: the params_hash equals that of
 *    the same run without [distill]; and the student is deterministic (two runs, same bytes);
 *  - a run stopped during its distillation (no summary.json yet) distils again on --resume, to
 *    the same student;
 *  - with VisualMixer on, the student is also evaluated on the mixed test images;
 *  - config errors name the key: an unknown student, synthetic data without [distill] images, a
 *    public slice that overlaps the clients' images in the run's own folder, gan_active, a device
 *    that is not cpu|cuda[:N]; a device the machine lacks stops the run before round 1.
 * A few seconds in all. */
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

#include "fl_harness.h"
#include "fv_common.h"
#include "io/safetensors.h"

static fh_ctx H;

static const char *BASE = "[data]\ndataset = synthetic\ntrain_size = 1200\ntest_size = 400\n"
                          "[model]\nname = tiny\n"
                          "[fl]\nclients = 6\nrounds = 3\nworkers = 2\nseed = 5\nworker_timeout = 120\n"
                          "round_timeout = 120\n[training]\nlr = 0.05\n";

static const char *KD = "[distill]\nstudent = lenet5\nimages = 1000\nepochs = 3\nlr = 0.002\nalpha = 1\n";

/* The number after "key": inside summary.json's "distill" object of run `name`. */
static double kd_num(const char *name, const char *key) {
    char *s = fh_results_file(&H, name, "summary.json");
    assert_non_null(s);
    const char *d = strstr(s, "\"distill\":");
    assert_non_null(d);
    double v = fh_json_num(d, key);
    free(s);
    return v;
}

static void test_student_learns_and_training_unchanged(void **state) {
    (void)state;
    assert_int_equal(fh_run_exp(&H, "kd_a", BASE, KD), 0);
    assert_int_equal(fh_run_exp(&H, "kd_b", BASE, KD), 0);
    assert_int_equal(fh_run_exp(&H, "plain", BASE, ""), 0);
    const double acc = kd_num("kd_a", "student_test_accuracy"), agree = kd_num("kd_a", "agreement"),
                 tacc = kd_num("kd_a", "teacher_test_accuracy");
    print_message("teacher %.3f, student %.3f, agreement %.3f\n", tacc, acc, agree);
    assert_true(acc > 0.35);
    assert_true(agree > 0.6);
    assert_true(fabs(tacc - fh_final_accuracy(&H, "kd_a")) < 1e-9); /* the teacher is the final model */
    assert_true(kd_num("kd_a", "public_images") == 1000);
    assert_true(kd_num("kd_a", "epochs") == 3);
    /* the training is that of the run without a student, bit for bit */
    char a[65], b[65];
    fh_params_hash(&H, "kd_a", a);
    fh_params_hash(&H, "plain", b);
    assert_string_equal(a, b);
    /* the student: a lenet5 file, the same bytes from two runs */
    char pa[256], pb[256];
    fh_path(&H, pa, sizeof pa, "results/kd_a/student.safetensors");
    fh_path(&H, pb, sizeof pb, "results/kd_b/student.safetensors");
    assert_true(fh_same_file(pa, pb));
    fv_err e = {{0}};
    fv_st_file *f = fv_st_read(pa, &e);
    assert_non_null(f);
    assert_string_equal(fv_st_meta(f, "model"), "lenet5");
    fv_st_file_destroy(&f);
    char *plain = fh_results_file(&H, "plain", "summary.json");
    assert_null(strstr(plain, "\"distill\""));
    free(plain);
    fh_path(&H, pa, sizeof pa, "results/plain/student.safetensors");
    char *none = fh_slurp(pa);
    assert_null(none);
    /* a stop during the distillation (summary.json not yet written): --resume distils again, to
     * the same student */
    char sum[256], rdir[256], out[256];
    fh_path(&H, sum, sizeof sum, "results/kd_b/summary.json");
    fh_path(&H, pb, sizeof pb, "results/kd_b/student.safetensors");
    assert_int_equal(unlink(sum), 0);
    assert_int_equal(unlink(pb), 0);
    fh_path(&H, rdir, sizeof rdir, "results/kd_b");
    fh_path(&H, out, sizeof out, "kd_b_resume.out");
    assert_int_equal(fh_run(&H, out, 300, "run", "--resume", rdir, "--quiet", (const char *)NULL), 0);
    fh_path(&H, pa, sizeof pa, "results/kd_a/student.safetensors");
    assert_true(fh_same_file(pa, pb));
    assert_true(kd_num("kd_b", "agreement") == agree);
}

static void test_student_on_mixed_test_images(void **state) {
    (void)state;
    char extra[512];
    snprintf(extra, sizeof extra, "%s[visualmixer]\nenabled = true\n", KD);
    assert_int_equal(fh_run_exp(&H, "kd_vmix", BASE, extra), 0);
    const double m = kd_num("kd_vmix", "student_test_accuracy_mixed"), t = kd_num("kd_vmix", "teacher_test_accuracy_mixed");
    print_message("mixed test images: teacher %.3f, student %.3f\n", t, m);
    assert_true(isfinite(m) && m >= 0 && m <= 1);
    char *s = fh_results_file(&H, "kd_vmix", "summary.json");
    assert_non_null(s);
    assert_true(fabs(t - fh_json_num(s, "test_accuracy_mixed")) < 1e-9); /* the teacher is the final model */
    free(s);
}

/* [distill] device names a device no machine has (cuda:1000 parses; fv_device_check refuses it
 * in every build): the run stops before round 1 with exit 1 and an error naming the key and the
 * device, and leaves no metrics. The recipe's device is recorded in summary.json ("cpu" here). */
static void test_device(void **state) {
    (void)state;
    assert_int_equal(fh_run_exp(&H, "kd_dev", BASE, "[distill]\nstudent = lenet5\nimages = 100\ndevice = cuda:1000\n"), 1);
    assert_true(fh_out_has(&H, "kd_dev", "[distill] device = cuda:1000"));
    assert_false(fh_file_has(&H, "results/kd_dev/metrics.jsonl", "round"));
    assert_int_equal(fh_run_exp(&H, "kd_cpu", BASE, "[distill]\nstudent = tiny\nimages = 100\ndevice = cpu\n"), 0);
    char *s = fh_results_file(&H, "kd_cpu", "summary.json");
    assert_non_null(s);
    assert_non_null(strstr(s, "\"device\":\"cpu\""));
    free(s);
}

static void test_config_errors(void **state) {
    (void)state;
    fh_expect_config_error(FH_SYNTH_INI, "[distill]\nstudent = nope\nimages = 10", "student", "nope");
    fh_expect_config_error(FH_SYNTH_INI, "[distill]\nstudent = lenet5", "[distill]", "images");
    /* the run's own folder: the clients hold the whole split, or the slice starts inside theirs */
    fh_expect_config_error("[data]\ndataset = mnist\n", "[distill]\nstudent = lenet5", "first", "train_size");
    fh_expect_config_error("[data]\ndataset = mnist\ntrain_size = 5000\n", "[distill]\nstudent = lenet5\nfirst = 4999",
                           "first", "5000");
    fh_expect_config_error(FH_SYNTH_INI,
                           "[attack]\nkind = gan_active\n[data]\ntest_size = 100\n[distill]\nstudent = tiny\nimages = 10",
                           "[distill]", "gan_active");
    fh_expect_config_error(FH_SYNTH_INI, "[distill]\nstudent = tiny\nimages = 10\ntemperature = 0", "temperature", NULL);
    fh_expect_config_error(FH_SYNTH_INI, "[distill]\nstudent = tiny\nimages = 10\ndevice = gpu", "device", "gpu");
}

int main(void) {
    int rc = fh_init(&H, "fl_distill");
    if (rc) return rc;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_config_errors),
        cmocka_unit_test(test_device),
        cmocka_unit_test(test_student_learns_and_training_unchanged),
        cmocka_unit_test(test_student_on_mixed_test_images),
    };
    rc = cmocka_run_group_tests(tests, fh_group_setup, NULL);
    fh_cleanup(&H);
    return rc;
}
