/* test_fl_obfuscation.c: [obfuscation] (shared/vmix/defence.h through fv_exp_client_obfuscate),
 * a baseline defence the federation trains behind instead of VisualMixer:
 *  - config refusals: an unknown kind, window 0, a negative sigma, and kind = shuffle together
 *    with [visualmixer] enabled = true are errors naming the key;
 *  - a small real federated run (4 clients of two synthetic images, LeNet-5, one SGD step per
 *    round, 2 rounds, two worker processes) with kind = shuffle and the invert attack: the
 *    clients' key drives the draws (the same key folder reproduces the model bitwise, a fresh
 *    one gives another, neither is plain FL's), and the attack's "mixed" figures are measured
 *    against the victim's shard re-made by fv_exp_client_obfuscate from the run's key file: the
 *    SSIM of those images to the originals is the attack's ssim_mixed_to_original_median;
 *  - the same with kind = noise: it trains and the attack reports figures against the noised
 *    images.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/partition.h"
#include "fl/config.h"
#include "fl/experiment.h"
#include "fv_common.h"
#include "metrics.h"
#include "vmix/vmix_key.h"

#include "fl_harness.h"

static fh_ctx H;

static void test_config_refusals(void **state) {
    (void)state;
    fh_expect_config_error(FH_SYNTH_INI, "[obfuscation]\nkind = blur", "obfuscation", "kind");
    fh_expect_config_error(FH_SYNTH_INI, "[obfuscation]\nkind = shuffle\nwindow = 0", "obfuscation", "window");
    fh_expect_config_error(FH_SYNTH_INI, "[obfuscation]\nkind = noise\nsigma = -0.5", "obfuscation", "sigma");
    fh_expect_config_error(FH_SYNTH_INI, "[obfuscation]\nkind = shuffle\n[visualmixer]\nenabled = true",
                           "[obfuscation] kind", "visualmixer");
}

static const char *DATA = "dataset = synthetic\ntrain_size = 8\ntest_size = 50";
static const char *FL = "clients = 4\nrounds = 2\nworkers = 2\nseed = 5\nworker_timeout = 120";
static const char *TRAIN = "optimizer = sgd\nlr = 0.1\nbatch_size = 2";

/* The SSIMs (median over the victim's images) of its shard as fv_exp_client_obfuscate makes it from
 * the key file of results/<name>, against the originals. */
static double remade_ssim_median(const char *name, int victim) {
    char p[512];
    fh_path(&H, p, sizeof p, "%s.ini", name);
    fv_config cfg;
    fv_err e = {{0}};
    fv_config_defaults(&cfg);
    if (fv_config_load(&cfg, p, &e) != 0) fail_msg("%s", e.msg);
    fv_dataset train, shard, made;
    fv_partition part;
    if (fv_exp_load_data(&cfg, NULL, 1, &train, &e) != 0 || fv_exp_partition(&cfg, &train, &part, &e) != 0)
        fail_msg("%s", e.msg);
    const int n = fv_partition_size(&part, victim);
    const int *idx = fv_partition_indices(&part, victim);
    const size_t isz = (size_t)train.c * train.h * train.w;
    shard = train;
    shard.n = n;
    shard.x = fv_malloc(isz * (size_t)n);
    shard.y = fv_malloc((size_t)n);
    for (int i = 0; i < n; i++) {
        memcpy(shard.x + isz * i, train.x + isz * (size_t)idx[i], isz);
        shard.y[i] = train.y[idx[i]];
    }
    uint8_t master[FV_VMIX_KEY_BYTES];
    fh_path(&H, p, sizeof p, "results/%s/keys/clients.vmix.key", name);
    if (fv_vmix_key_load(p, master, &e) != 0 || fv_exp_client_obfuscate(&cfg, &shard, victim, master, &made, &e) != 0)
        fail_msg("%s", e.msg);
    assert_true(memcmp(made.x, shard.x, isz * (size_t)n) != 0); /* the defence moved the pixels */
    float *a = fv_malloc(sizeof(float) * isz), *b = fv_malloc(sizeof(float) * isz);
    double s[16];
    assert_true(n >= 1 && n <= 16);
    for (int i = 0; i < n; i++) {
        for (size_t k = 0; k < isz; k++) {
            a[k] = made.x[isz * i + k] / 255.0f;
            b[k] = shard.x[isz * i + k] / 255.0f;
        }
        if (fv_ssim(&s[i], a, b, train.c, train.h, train.w, &e) != 0) fail_msg("%s", e.msg);
    }
    for (int i = 1; i < n; i++) /* sort (n is tiny) */
        for (int j = i; j > 0 && s[j] < s[j - 1]; j--) {
            double t = s[j];
            s[j] = s[j - 1];
            s[j - 1] = t;
        }
    const double med = n % 2 ? s[n / 2] : 0.5 * (s[n / 2 - 1] + s[n / 2]);
    free(a);
    free(b);
    fv_dataset_free(&made);
    fv_dataset_free(&shard);
    fv_dataset_free(&train);
    fv_partition_free(&part);
    return med;
}

/* The attack line of results/<name>: status ok, figures against the trained ("mixed") images,
 * whose baseline matches the victim's shard re-made from the key file. */
static void check_attack(const char *name) {
    char p[256];
    fh_path(&H, p, sizeof p, "results/%s/attacks.jsonl", name);
    char *at = fh_slurp(p);
    assert_non_null(at);
    assert_non_null(strstr(at, "\"status\":\"ok\""));
    const double sm = fh_json_num(at, "ssim_mixed_median"), base = fh_json_num(at, "ssim_mixed_to_original_median");
    assert_true(sm > -1 && sm <= 1);
    assert_true(base > -1 && base < 1);
    const double mine = remade_ssim_median(name, 1);
    if (fabs(mine - base) > 1e-6) fail_msg("%s: the attack's mixed images are at SSIM %.9g, the re-made shard at %.9g",
                                           name, base, mine);
    free(at);
}

static void test_shuffle_and_noise_runs(void **state) {
    (void)state;
    const char *atk = "[attack]\nkind = invert\nrounds = 2\nclient = 1\nsettings = iters=20\n";
    char extra[512], kd[256], h_plain[128], h1[128], h2[128], h3[128];
    fh_config(&H, "plain", DATA, FL, TRAIN, "[model]\nname = lenet5\n[output]\nname = plain");
    snprintf(extra, sizeof extra, "[model]\nname = lenet5\n[obfuscation]\nkind = shuffle\nwindow = 4\n%s[output]\nname = sh1",
             atk);
    fh_config(&H, "sh1", DATA, FL, TRAIN, extra);
    fh_config(&H, "sh2", DATA, FL, TRAIN, "[model]\nname = lenet5\n[obfuscation]\nkind = shuffle\nwindow = 4\n[output]\nname = sh2");
    fh_config(&H, "sh3", DATA, FL, TRAIN, "[model]\nname = lenet5\n[obfuscation]\nkind = shuffle\nwindow = 4\n[output]\nname = sh3");
    snprintf(extra, sizeof extra, "[model]\nname = lenet5\n[obfuscation]\nkind = noise\nsigma = 0.25\n%s[output]\nname = nz",
             atk);
    fh_config(&H, "nz", DATA, FL, TRAIN, extra);
    fh_path(&H, kd, sizeof kd, "keys");
    assert_int_equal(fh_run_cfg(&H, "plain", 120, NULL, NULL), 0);
    assert_int_equal(fh_run_cfg(&H, "sh1", 120, "--keys", kd), 0);
    assert_int_equal(fh_run_cfg(&H, "sh2", 120, "--keys", kd), 0);
    assert_int_equal(fh_run_cfg(&H, "sh3", 120, NULL, NULL), 0);
    assert_int_equal(fh_run_cfg(&H, "nz", 120, NULL, NULL), 0);
    fh_model_hash(&H, "plain", h_plain, sizeof h_plain);
    fh_model_hash(&H, "sh1", h1, sizeof h1);
    fh_model_hash(&H, "sh2", h2, sizeof h2);
    fh_model_hash(&H, "sh3", h3, sizeof h3);
    assert_string_equal(h1, h2);               /* the key drives the draws (the attack only reads) */
    assert_string_not_equal(h1, h3);           /* another key, other windows' permutations */
    assert_string_not_equal(h1, h_plain);      /* the clients trained on shuffled images */
    check_attack("sh1");
    char h_nz[128];
    fh_model_hash(&H, "nz", h_nz, sizeof h_nz);
    assert_string_not_equal(h_nz, h_plain);
    check_attack("nz");
}

static int setup(void **state) {
    if (fh_init(&H, "test_fl_obfuscation") != 0) return -1;
    return fh_group_setup(state);
}

static int teardown(void **state) {
    (void)state;
    fh_cleanup(&H);
    return 0;
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_config_refusals),
        cmocka_unit_test(test_shuffle_and_noise_runs),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
