/* test_fl_active.c: the ACTIVE GAN attacker ([attack] kind = gan_active, Hitaj's fake-class
 * injection) in real federated runs through the fedvim binary ($FEDVIM_BIN: coordinator and two
 * worker processes over CURVE on localhost, signed updates), on the synthetic set:
 *  - the shared model has classes + 1 outputs (LeNet-5: one more row of fc3, 84 + 1 parameters);
 *  - the attacking client's worker injects G's samples labelled fake only at the attacker's rounds:
 *    with rounds = 2, round 1's training is bitwise that of a run where the attacker never acts
 *    (same train loss and accuracy in round 1's metrics line), round 2's differs;
 *  - attacks.jsonl holds one "ok" record per attacked round with the replayed generator's figures,
 *    the round's metrics line holds the same headline, and the PNG grid exists;
 *  - config errors (target, client, rounds, unknown setting) name file, line and key; a good
 *    gan_active section with empty rounds acts in every round.
 * Kept small so it runs in seconds, under ASan too. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "attack_api.h"
#include "fl/config.h"
#include "fv_common.h"

#include "fl_harness.h"

static fh_ctx H; /* this test program's scratch folder and binary */

static double summary_num(const char *name, const char *key) {
    char p[256];
    fh_path(&H, p, sizeof p, "results/%s/summary.json", name);
    char *s = fh_slurp(p);
    assert_non_null(s);
    double v = fh_json_num(s, key);
    free(s);
    return v;
}

/* the number right after "key": in line i of results/name/metrics.jsonl */
static double metric(const char *name, int i, const char *key) {
    char p[256];
    fh_path(&H, p, sizeof p, "results/%s/metrics.jsonl", name);
    char *m = fh_slurp(p);
    assert_non_null(m);
    char *l = fh_line(m, i);
    assert_non_null(l);
    double v = fh_json_num(l, key);
    free(l);
    free(m);
    return v;
}

static const char *BASE = "[data]\ndataset = synthetic\ntrain_size = 400\ntest_size = 200\n"
                          "[model]\nname = lenet5\n"
                          "[training]\nlr = 0.05\nbatch_size = 16\n"
                          "[fl]\nclients = 2\nrounds = 2\nworkers = 2\nseed = 3\nworker_timeout = 120\n"
                          "[security]\nenabled = true\n";
#define GEN "settings = steps=20,batch=8,samples=8,refs=8,oracle_epochs=1,nz=16,ch1=8,ch2=4,fake=32"

static void test_active_in_run(void **state) {
    (void)state;
    assert_int_equal(fh_run_exp(&H, "plain", BASE, NULL), 0);
    /* the attacker (client 1) acts in round 2 only, then in every round (rounds empty) */
    assert_int_equal(fh_run_exp(&H, "late", BASE, "[attack]\nkind = gan_active\nrounds = 2\nclient = 1\ntarget = 2\n" GEN), 0);
    {
        /* not quiet: the attacking worker's log line is checked below */
        char ini[256], out[256], text[4096];
        fh_path(&H, ini, sizeof ini, "all.ini");
        fh_path(&H, out, sizeof out, "all.out");
        snprintf(text, sizeof text, "%s\n[output]\ndir = %s/results\n%s\n", BASE, H.root,
                 "[attack]\nkind = gan_active\nclient = 1\ntarget = 2\n" GEN);
        fh_put(ini, text);
        assert_int_equal(fh_run(&H, out, 300, "run", ini, "--overwrite", (const char *)NULL), 0);
    }
    /* one more output: LeNet-5's last layer is 84 wide */
    double np = summary_num("plain", "n_params"), na = summary_num("all", "n_params");
    assert_true(np > 0);
    assert_true(na - np == 85);
    assert_true(summary_num("late", "n_params") == na);
    /* round 1: the all-rounds attacker trained on G's fake images, the late one did not */
    double late1 = metric("late", 0, "train_loss"), all1 = metric("all", 0, "train_loss");
    assert_true(isfinite(late1) && isfinite(all1));
    assert_true(late1 != all1);
    char p[256];
    fh_path(&H, p, sizeof p, "results/late/attacks.jsonl");
    char *at = fh_slurp(p);
    assert_non_null(at);
    assert_int_equal(fh_count_lines(at), 1);
    assert_true(fh_json_num(at, "round") == 2 && fh_json_num(at, "client") == 1);
    free(at);
    fh_path(&H, p, sizeof p, "results/all/attacks.jsonl");
    at = fh_slurp(p);
    assert_non_null(at);
    assert_int_equal(fh_count_lines(at), 2);
    for (int r = 0; r < 2; r++) {
        char *l = fh_line(at, r);
        assert_true(fh_json_num(l, "round") == r + 1 && fh_json_num(l, "client") == 1);
        assert_non_null(strstr(l, "\"kind\":\"gan_active\""));
        assert_non_null(strstr(l, "\"status\":\"ok\""));
        assert_non_null(
            strstr(l, "\"discriminator_source\":\"the global model the attacking client trained against\""));
        double rec = fh_json_num(l, "recognisability"), ssim = fh_json_num(l, "ssim_best_median");
        assert_true(rec >= 0 && rec <= 1);
        assert_true(ssim > -1 && ssim <= 1);
        assert_true(fh_json_num(l, "target_class") == 2);
        /* the coordinator replayed the very generator the attacking worker trained and injected
         * (same recipe, seed and discriminator, one thread): D's mean target probability on G's
         * last batch is the same number, to the last printed digit */
        char wl[160];
        fh_path(&H, wl, sizeof wl, "results/all/logs/worker-0.log");
        char *w0 = fh_slurp(wl);
        fh_path(&H, wl, sizeof wl, "results/all/logs/worker-1.log");
        char *w1 = fh_slurp(wl);
        char needle[96];
        snprintf(needle, sizeof needle, "round %d: client 1 (gan_active attacker) adds 32 generated images", r + 1);
        const char *wline = w0 ? strstr(w0, needle) : NULL;
        if (!wline && w1) wline = strstr(w1, needle);
        if (!wline) fail_msg("no worker log line '%s'", needle);
        assert_true(fh_json_num(wline, "fake_class") == 10);
        assert_true(fh_json_num(wline, "p_target") == fh_json_num(l, "p_target"));
        free(w0);
        free(w1);
        /* the metrics line of that round carries the same headline */
        fh_path(&H, p, sizeof p, "results/all/metrics.jsonl");
        char *m = fh_slurp(p);
        char *ml = fh_line(m, r);
        const char *h = strstr(ml, "\"attack\":{");
        assert_non_null(h);
        assert_non_null(strstr(h, "\"kind\":\"gan_active\""));
        assert_true(fh_json_num(h, "recognisability") == rec);
        assert_true(fh_json_num(h, "ssim_best_median") == ssim);
        char grid[96];
        snprintf(grid, sizeof grid, "\"grid\":\"attacks/r%d_c1_gan_grid.png\"", r + 1);
        assert_non_null(strstr(h, grid));
        free(ml);
        free(m);
        fh_path(&H, p, sizeof p, "results/all/attacks/r%d_c1_gan_grid.png", r + 1);
        char *png = fh_slurp(p);
        assert_non_null(png);
        assert_memory_equal(png, "\x89PNG\r\n\x1a\n", 8);
        free(png);
        free(l);
    }
    free(at);
}

static void test_config(void **state) {
    (void)state;
    /* lines: 1 [data], 2 dataset, 3 [fl], 4 clients, 5 rounds, 6 [training], 7 lr, 8 [attack], 9.. */
    fh_expect_config_error(FH_SYNTH_INI, "[attack]\nkind = gan_activ", "t.ini:9: [attack] kind", "gan_active");
    fh_expect_config_error(FH_SYNTH_INI, "[attack]\nkind = gan_active\nclient = 4", "t.ini:10: [attack] client", "0..3");
    fh_expect_config_error(FH_SYNTH_INI, "[attack]\nkind = gan_active\nrounds = 6", "t.ini:10: [attack] rounds", "[1, 5]");
    fh_expect_config_error(FH_SYNTH_INI, "[attack]\nkind = gan_active\nrounds = 3,2", "t.ini:10: [attack] rounds", "ascending");
    fh_expect_config_error(FH_SYNTH_INI, "[attack]\nkind = gan_active\ntarget = 10", "t.ini:10: [attack] target", "10 classes");
    /* on a named data set the oracle needs images beyond train_size */
    char text[512];
    snprintf(text, sizeof text, "[data]\ndataset = mnist\n[attack]\nkind = gan_active\n");
    fv_config c;
    fv_config_defaults(&c);
    fv_err e = {{0}};
    assert_int_equal(fv_config_parse(&c, "m.ini", text, strlen(text), &e), 0);
    assert_int_equal(fv_config_check(&c, &e), 0); /* the attack's rule, not the config's */
    assert_int_equal(fv_attack_check_config(&c, &e), -1);
    assert_non_null(strstr(e.msg, "default: [data] train_size"));
    assert_non_null(strstr(e.msg, "gan_active"));
    /* empty rounds: every round, from the first; the section resolves and reads back */
    snprintf(text, sizeof text, "[attack]\nkind = gan_active\nclient = 1\ntarget = 3\n[fl]\nrounds = 4\n"
                                "clients = 3\n[data]\ndataset = synthetic\n");
    fv_config_defaults(&c);
    assert_int_equal(fv_config_parse(&c, "g.ini", text, strlen(text), &e), 0);
    assert_int_equal(fv_config_check(&c, &e), 0);
    assert_int_equal(fv_attack_check_config(&c, &e), 0);
    int rs[4];
    assert_int_equal(fv_config_round_list(&c, rs, 4), 0); /* the config lists none: the attack decides */
    assert_int_equal(fv_attack_rounds(&c, rs, 4), 4);
    for (int i = 0; i < 4; i++) assert_int_equal(rs[i], i + 1);
    assert_int_equal(fv_attack_rounds(&c, rs, 3), -1); /* more rounds than the caller holds */
    /* the fake class is the attack's rule: one more output under gan_active only */
    assert_int_equal(fv_attack_model_classes(FV_ATTACK_GAN_ACTIVE, 10), 11);
    for (fv_attack_kind k = FV_ATTACK_NONE; k < FV_ATTACK_GAN_ACTIVE; k++)
        assert_int_equal(fv_attack_model_classes(k, 10), 10);
    char *w = fv_config_write(&c);
    assert_non_null(strstr(w, "kind = gan_active\n"));
    fv_config back;
    fv_config_defaults(&back);
    assert_int_equal(fv_config_parse(&back, "w.ini", w, strlen(w), &e), 0);
    assert_int_equal(back.attack_kind, FV_ATTACK_GAN_ACTIVE);
    free(w);
}

static void test_bad_setting_in_run(void **state) {
    (void)state;
    /* an unknown generator setting stops the run before round 1, naming the key (the attacking
     * worker would otherwise fail on it mid-run) */
    assert_int_not_equal(fh_run_exp(&H, "badset", BASE, "[attack]\nkind = gan_active\nclient = 0\nsettings = stepz=3"), 0);
    assert_true(fh_out_has(&H, "badset", "[attack] settings: gan_active settings: unknown key 'stepz'"));
    char p[256];
    fh_path(&H, p, sizeof p, "results/badset/metrics.jsonl");
    assert_int_not_equal(access(p, F_OK), 0);
}

static int setup(void **state) {
    (void)state;
    signal(SIGPIPE, SIG_IGN);
    return fh_init(&H, "test_fl_active") == 0 ? 0 : -1;
}

static int teardown(void **state) {
    (void)state;
    fh_cleanup(&H);
    return 0;
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_config),
        cmocka_unit_test(test_active_in_run),
        cmocka_unit_test(test_bad_setting_in_run),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
