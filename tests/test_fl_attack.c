/* test_fl_attack.c: the coordinator's passive attacker ([attack]) in real federated runs through
 * the fedvim binary ($FEDVIM_BIN: coordinator and worker processes over CURVE on localhost),
 * on the synthetic set (no files needed):
 *  - gan at round 1 on client 0: attacks.jsonl holds the attack's figures, round 1's metrics
 *    line holds the headline ("attack": {...}) and round 2's none, the PNG grid exists, and the
 *    final model is bitwise the model of the same run without the attack; a resume of the
 *    finished run re-runs nothing (attacks.jsonl unchanged);
 *  - dlg on a client holding one image (dlg_lenet, plain SGD, one step): the iDLG label is right
 *    and the reconstruction is recorded in both files;
 *  - invert on LeNet-5, a client of two images (one SGD step of batch 2): the run's step, batch and
 *    epochs reach the attack, its figures are in both files, the grid is a PNG; with
 *    VisualMixer it is measured against the victim's mixed images too (the simulator's key
 *    file, evaluation only), and the chain (reassembly of the reconstructions, and the learned
 *    inverter trained in the attack on held-out images the attacker mixed) reports every step's
 *    figures, its reassembly ceiling undoing the mixing;
 *  - [attack] config errors (bad kind, client, rounds, target, dlg without its model, gan
 *    without held-out images) name file, line and key, the attack's own rules (held-out images,
 *    dlg's model, plain SGD, one epoch) also through `fedvim run`, and a client not sampled in an attacked
 *    round stops the run before round 1 with a message naming [attack] client, and so does a
 *    bad [attack] settings value of any kind.
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
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "attack_api.h"
#include "fl/config.h"
#include "fv_common.h"

#include "fl_harness.h"

static fh_ctx H; /* this test program's scratch folder and binary */

static const char *GAN_BASE = "[data]\ndataset = synthetic\ntrain_size = 400\ntest_size = 200\n"
                              "[model]\nname = lenet5\n"
                              "[training]\nlr = 0.05\nbatch_size = 16\n"
                              "[fl]\nclients = 2\nrounds = 2\nworkers = 2\nseed = 3\nworker_timeout = 120\n";

static void test_gan_in_run(void **state) {
    (void)state;
    assert_int_equal(fh_run_exp(&H, "plain", GAN_BASE, NULL), 0);
    assert_int_equal(fh_run_exp(&H, "gan", GAN_BASE,
                             "[attack]\nkind = gan\nrounds = 1\nclient = 0\ntarget = 1\n"
                             "settings = steps=20,batch=8,samples=8,refs=8,oracle_epochs=1,nz=16,ch1=8,ch2=4"),
                     0);
    /* the attack reads copies: the training and the final model are the run's without it */
    char a[80], b[80];
    fh_params_hash(&H, "plain", a);
    fh_params_hash(&H, "gan", b);
    assert_string_equal(a, b);
    char p[256];
    fh_path(&H, p, sizeof p, "results/gan/attacks.jsonl");
    char *at = fh_slurp(p);
    assert_non_null(at);
    assert_int_equal(fh_count_lines(at), 1);
    assert_true(fh_json_num(at, "round") == 1 && fh_json_num(at, "client") == 0);
    assert_non_null(strstr(at, "\"kind\":\"gan\""));
    assert_non_null(strstr(at, "\"status\":\"ok\""));
    assert_non_null(strstr(at, "\"discriminator_source\":\"the client's upload\""));
    double rec = fh_json_num(at, "recognisability"), ssim = fh_json_num(at, "ssim_best_median");
    assert_true(rec >= 0 && rec <= 1);
    assert_true(ssim > -1 && ssim <= 1);
    assert_true(fh_json_num(at, "target_class") == 1);
    /* the headline in round 1's metrics line equals the full record's figures; round 2 has none */
    fh_path(&H, p, sizeof p, "results/gan/metrics.jsonl");
    char *m = fh_slurp(p);
    assert_non_null(m);
    assert_int_equal(fh_count_lines(m), 2);
    char *l1 = fh_line(m, 0), *l2 = fh_line(m, 1);
    const char *h = strstr(l1, "\"attack\":{");
    assert_non_null(h);
    assert_true(fh_json_num(h, "recognisability") == rec);
    assert_true(fh_json_num(h, "ssim_best_median") == ssim);
    assert_non_null(strstr(h, "\"grid\":\"attacks/r1_c0_gan_grid.png\""));
    assert_null(strstr(l2, "\"attack\""));
    free(l1);
    free(l2);
    /* the grid is a PNG */
    fh_path(&H, p, sizeof p, "results/gan/attacks/r1_c0_gan_grid.png");
    char *png = fh_slurp(p);
    assert_non_null(png);
    assert_memory_equal(png, "\x89PNG\r\n\x1a\n", 8);
    free(png);
    /* a resume after the last checkpoint (summary.json gone, as if the coordinator died before
     * writing it) attacks nothing again: round 1 completed before it */
    char dir[256], out[256];
    fh_path(&H, dir, sizeof dir, "results/gan");
    fh_path(&H, out, sizeof out, "gan_resume.out");
    fh_path(&H, p, sizeof p, "results/gan/summary.json");
    assert_int_equal(unlink(p), 0);
    assert_int_equal(fh_run(&H, out, 120, "run", "--resume", dir, "--quiet", (const char *)NULL), 0);
    fh_path(&H, p, sizeof p, "results/gan/attacks.jsonl");
    char *again = fh_slurp(p);
    assert_string_equal(again, at);
    free(again);
    free(at);
    free(m);
}

static void test_dlg_in_run(void **state) {
    (void)state;
    /* 8 clients of one image, one full-batch SGD step each: the upload is global - lr * gradient */
    const char *base = "[data]\ndataset = synthetic\ntrain_size = 8\ntest_size = 50\n"
                       "[model]\nname = dlg_lenet\n"
                       "[training]\noptimizer = sgd\nlr = 0.1\nbatch_size = 8\n"
                       "[fl]\nclients = 8\nrounds = 2\nworkers = 2\nseed = 5\nworker_timeout = 120\n";
    assert_int_equal(fh_run_exp(&H, "dlg", base, "[attack]\nkind = dlg\nrounds = 2\nclient = 3\nsettings = iters=40"), 0);
    char p[256];
    fh_path(&H, p, sizeof p, "results/dlg/attacks.jsonl");
    char *at = fh_slurp(p);
    assert_non_null(at);
    assert_int_equal(fh_count_lines(at), 1);
    assert_non_null(strstr(at, "\"status\":\"ok\""));
    assert_true(fh_json_num(at, "round") == 2 && fh_json_num(at, "client") == 3);
    /* the run's step size reached the attack: the gradient it inverted is the client's */
    assert_true(fh_json_num(at, "client_lr") == 0.1);
    /* iDLG's label rule is exact for one image under cross-entropy with sigmoid activations */
    assert_true(fh_json_num(at, "label_accuracy") == 1);
    free(at);
    fh_path(&H, p, sizeof p, "results/dlg/metrics.jsonl");
    char *m = fh_slurp(p);
    char *l1 = fh_line(m, 0), *l2 = fh_line(m, 1);
    assert_null(strstr(l1, "\"attack\""));
    const char *h = strstr(l2, "\"attack\":{");
    assert_non_null(h);
    assert_true(fh_json_num(h, "label_accuracy") == 1);
    double s = fh_json_num(h, "ssim_original_mean");
    assert_true(s > -1 && s <= 1);
    free(l1);
    free(l2);
    free(m);
}

static void test_invert_in_run(void **state) {
    (void)state;
    /* 4 clients of two images, one plain-SGD step of batch 2 per round: the engine replays it
     * exactly. (That an attack reads copies only, leaving training bitwise as without it, is
     * test_gan_in_run's check: the attacker's plumbing is the same for every kind.) */
    const char *base = "[data]\ndataset = synthetic\ntrain_size = 8\ntest_size = 50\n"
                       "[model]\nname = lenet5\n"
                       "[training]\noptimizer = sgd\nlr = 0.1\nbatch_size = 2\n"
                       "[fl]\nclients = 4\nrounds = 2\nworkers = 2\nseed = 5\nworker_timeout = 120\n";
    assert_int_equal(fh_run_exp(&H, "inv", base, "[attack]\nkind = invert\nrounds = 2\nclient = 1\nsettings = iters=20"),
                     0);
    char p[256];
    fh_path(&H, p, sizeof p, "results/inv/attacks.jsonl");
    char *at = fh_slurp(p);
    assert_non_null(at);
    assert_int_equal(fh_count_lines(at), 1);
    assert_non_null(strstr(at, "\"kind\":\"invert\""));
    assert_non_null(strstr(at, "\"status\":\"ok\""));
    assert_true(fh_json_num(at, "round") == 2 && fh_json_num(at, "client") == 1);
    /* the run's local training reached the attack: step, batch, epochs, and the client's 2 images */
    assert_true(fabs(fh_json_num(at, "client_lr") - 0.1) < 1e-8); /* the engine's float32 step */
    assert_true(fh_json_num(at, "local_batch") == 2 && fh_json_num(at, "local_epochs") == 1);
    assert_true(fh_json_num(at, "batch") == 2 && fh_json_num(at, "local_steps") == 1);
    assert_true(fh_json_num(at, "iters") == 20);
    assert_non_null(strstr(at, "\"update_model_exact\":true"));
    double la = fh_json_num(at, "label_accuracy"), ss = fh_json_num(at, "ssim_original_median");
    assert_true(la >= 0 && la <= 1);
    assert_true(ss > -1 && ss <= 1);
    free(at);
    fh_path(&H, p, sizeof p, "results/inv/metrics.jsonl");
    char *m = fh_slurp(p);
    assert_non_null(m);
    char *l1 = fh_line(m, 0), *l2 = fh_line(m, 1);
    assert_null(strstr(l1, "\"attack\""));
    const char *h = strstr(l2, "\"attack\":{");
    assert_non_null(h);
    assert_true(fh_json_num(h, "ssim_original_median") == ss);
    assert_non_null(strstr(h, "\"grid\":\"attacks/r2_c1_invert_grid.png\""));
    free(l1);
    free(l2);
    free(m);
    fh_path(&H, p, sizeof p, "results/inv/attacks/r2_c1_invert_grid.png");
    char *png = fh_slurp(p);
    assert_non_null(png);
    assert_memory_equal(png, "\x89PNG\r\n\x1a\n", 8);
    free(png);
    /* with VisualMixer, `fedvim run` (a simulator: it holds the clients' key file) lets the
     * evaluation re-make the victim's mixed shard: figures against the mixed images too. The
     * clients' key is fixed (a run keeps a key file it finds): with a fresh random key each run
     * the true-map margin checked below ranged 0.08-0.33 over 38 keys, and CI once drew one
     * under its 0.1; this key gives 0.31 */
    fh_path(&H, p, sizeof p, "results/inv_vmix");
    assert_int_equal(mkdir(p, 0700), 0);
    fh_path(&H, p, sizeof p, "results/inv_vmix/keys");
    assert_int_equal(mkdir(p, 0700), 0);
    fh_path(&H, p, sizeof p, "results/inv_vmix/keys/clients.vmix.key");
    fh_put(p, "# fedvim key file (SECRET: keep it mode 0600, never share it)\nfedvim-key 1\nkind vmix-secret\n"
              "secret f994eb7b05e8597fa7f172266ccb6242026ac46d2b318a8f5c4c2b7e11cc38fc\n");
    assert_int_equal(chmod(p, 0600), 0);
    assert_int_equal(fh_run_exp(&H, "inv_vmix", base,
                                "[visualmixer]\nenabled = true\n"
                                "[attack]\nkind = invert\nrounds = 2\nclient = 1\n"
                                "settings = iters=20,inverter_epochs=1,inverter_images=8"),
                     0);
    fh_path(&H, p, sizeof p, "results/inv_vmix/attacks.jsonl");
    at = fh_slurp(p);
    assert_non_null(at);
    assert_non_null(strstr(at, "\"status\":\"ok\""));
    double sm = fh_json_num(at, "ssim_mixed_median"), sm0 = fh_json_num(at, "ssim_mixed_to_original_median");
    const double ss_vmix = fh_json_num(at, "ssim_original_median");
    assert_true(sm > -1 && sm <= 1);
    assert_true(sm0 > -1 && sm0 < 1); /* the mixing moved the images */
    assert_non_null(strstr(at, "rows: original, mixed, reconstruction, reassembled with the estimated map, "
                               "reassembled with the true map"));
    /* the chain: every step's figures present and SSIMs on [-1, 1]; the first step is the
     * inversion's own figure; the true map explains both mixed images (each is its original
     * rearranged inside the map's windows), and its ceiling (the true mixed images reassembled with
     * the true map) moves them back towards the originals: SSIM to the originals at least 0.1 above
     * the mixed images' own (0.31 with this key on these noise-like synthetic images; on
     * MNIST see experiments/attacks/invert_fl) */
    const char *ch = strstr(at, "\"chain\":{");
    assert_non_null(ch);
    const double agree = fh_json_num(ch, "map_agreement_median");
    assert_true(agree >= 0 && agree <= 1);
    const char *steps[] = {"recovered", "reassembled_estimated_map", "reassembled_true_map",
                           "mixed_reassembled_true_map"};
    double to_orig[4];
    for (int k = 0; k < 4; k++) {
        char key[64];
        snprintf(key, sizeof key, "\"%s\":{", steps[k]);
        const char *st = strstr(ch, key);
        assert_non_null(st);
        to_orig[k] = fh_json_num(st, "ssim_original_median");
        const double to_mix = fh_json_num(st, "ssim_mixed_median");
        assert_true(to_orig[k] >= -1 && to_orig[k] <= 1);
        assert_true(to_mix >= -1 && to_mix <= 1);
        assert_non_null(strstr(st, "\"psnr_original_median\":"));
        assert_non_null(strstr(st, "\"psnr_mixed_median\":"));
    }
    assert_true(fabs(to_orig[0] - ss_vmix) < 1e-6);
    assert_true(fh_json_num(ch, "true_maps_explain_mixing") == 2);
    assert_true(to_orig[3] > sm0 + 0.1);
    /* the learned inverter (issue 15) trained in the attack on the 8 held-out images the attacker
     * mixed itself, applied to the reconstructions and to the mixed images: both steps present */
    const char *iv = strstr(at, "\"inverter\":{\"images\":8,\"epochs\":1,");
    assert_non_null(iv);
    for (int k = 0; k < 2; k++) {
        const char *st = strstr(ch, k ? "\"mixed_inverter\":{" : "\"inverter\":{");
        assert_non_null(st);
        const double v = fh_json_num(st, "ssim_original_median");
        assert_true(v >= -1 && v <= 1);
    }
    free(at);
}

static void test_config_errors(void **state) {
    (void)state;
    /* lines: 1 [data], 2 dataset, 3 [fl], 4 clients, 5 rounds, 6 [training], 7 lr, 8 [attack], 9.. */
    fh_expect_config_error(FH_SYNTH_INI, "[attack]\nkind = fgsm", "t.ini:9: [attack] kind", "none|gan|dlg|mia");
    fh_expect_config_error(FH_SYNTH_INI, "[attack]\nkind = gan\nclient = 4", "t.ini:10: [attack] client", "0..3");
    fh_expect_config_error(FH_SYNTH_INI, "[attack]\nkind = gan\nclient = -1", "t.ini:10: [attack] client", "out of range");
    fh_expect_config_error(FH_SYNTH_INI, "[attack]\nkind = gan\nrounds = 6", "t.ini:10: [attack] rounds", "[1, 5]");
    fh_expect_config_error(FH_SYNTH_INI, "[attack]\nkind = gan\nrounds = 0", "t.ini:10: [attack] rounds", "[1, 5]");
    fh_expect_config_error(FH_SYNTH_INI, "[attack]\nkind = gan\nrounds = 2,x", "t.ini:10: [attack] rounds", "list of rounds");
    fh_expect_config_error(FH_SYNTH_INI, "[attack]\nkind = gan\nrounds = 3,2", "t.ini:10: [attack] rounds", "ascending");
    fh_expect_config_error(FH_SYNTH_INI, "[attack]\nkind = gan\nrounds = 3,3", "t.ini:10: [attack] rounds", "once");
    fh_expect_config_error(FH_SYNTH_INI, "[attack]\nkind = gan\ntarget = 10", "t.ini:10: [attack] target", "10 classes");
    fh_expect_config_error(FH_SYNTH_INI, "[attack]\nkind = gan\nsettings = a;b", "t.ini:10: [attack] settings", NULL);
    fh_expect_config_error(FH_SYNTH_INI, "[attack]\nkind = gan\nvictim = 1", "t.ini:10: [attack] victim: unknown key", NULL);
    fh_expect_config_error(FH_SYNTH_INI, "[attack]\nkind = dlg", "[model] name", "dlg_lenet");
    fh_expect_config_error(FH_SYNTH_INI, "[model]\nname = dlg_lenet\n[attack]\nkind = dlg\n[training]\nmomentum = 0.9",
                        "[training] optimizer", "plain SGD");
    fh_expect_config_error(FH_SYNTH_INI, "[model]\nname = dlg_lenet\n[attack]\nkind = dlg\n[training]\nlocal_epochs = 2",
                        "t.ini:13: [training] local_epochs", "one local step");
    fh_expect_config_error(FH_SYNTH_INI, "[attack]\nkind = invert\n[training]\nmomentum = 0.9",
                        "[training] optimizer", "plain SGD");
    fh_expect_config_error(FH_SYNTH_INI, "[attack]\nkind = invert\n[fl]\naggregator = scaffold",
                        "[fl] aggregator", "control variates");
    /* gan on a named data set needs images beyond train_size */
    char text[512];
    snprintf(text, sizeof text, "[data]\ndataset = mnist\n[attack]\nkind = gan\n");
    fv_config c;
    fv_config_defaults(&c);
    fv_err e = {{0}};
    assert_int_equal(fv_config_parse(&c, "m.ini", text, strlen(text), &e), 0);
    assert_int_equal(fv_config_check(&c, &e), 0); /* the attack's rule, not the config's */
    assert_int_equal(fv_attack_check_config(&c, &e), -1);
    assert_non_null(strstr(e.msg, "default: [data] train_size"));
    /* a good section is accepted, resolves and reads back; without an attack it is not written */
    snprintf(text, sizeof text, "[fl]\nrounds = 9\n[attack]\nkind = mia\nrounds = 3, 9\nclient = 2\n"
                                "settings = shadows=2,epochs=1\n[data]\ndataset = synthetic\n");
    fv_config_defaults(&c);
    assert_int_equal(fv_config_parse(&c, "g.ini", text, strlen(text), &e), 0);
    assert_int_equal(fv_config_check(&c, &e), 0);
    assert_int_equal(fv_attack_check_config(&c, &e), 0);
    int rs[9];
    assert_int_equal(fv_attack_rounds(&c, rs, 9), 2);
    assert_true(rs[0] == 3 && rs[1] == 9);
    char *w = fv_config_write(&c);
    assert_non_null(strstr(w, "[attack]\nkind = mia\nrounds = 3, 9\nclient = 2\n"));
    fv_config back;
    fv_config_defaults(&back);
    assert_int_equal(fv_config_parse(&back, "w.ini", w, strlen(w), &e), 0);
    assert_int_equal(back.attack_kind, FV_ATTACK_MIA);
    assert_string_equal(back.attack_settings, "shadows=2,epochs=1");
    free(w);
    fv_config_defaults(&c);
    w = fv_config_write(&c);
    assert_null(strstr(w, "[attack]"));
    free(w);
    snprintf(text, sizeof text, "[attack]\nkind = gan\n[fl]\nrounds = 7\n[data]\ndataset = synthetic\n");
    fv_config_defaults(&c);
    assert_int_equal(fv_config_parse(&c, "g.ini", text, strlen(text), &e), 0);
    assert_int_equal(fv_attack_rounds(&c, rs, 9), 1);
    assert_int_equal(rs[0], 7); /* empty: the last round */
}

static void test_unsampled_client(void **state) {
    (void)state;
    /* with 4 clients and fraction 0.5, some client is not sampled in round 1: find it through the
     * coordinator's own refusal, which must come before any round runs */
    const char *base = "[data]\ndataset = synthetic\ntrain_size = 200\ntest_size = 50\n"
                       "[model]\nname = tiny\n[training]\nlr = 0.05\n"
                       "[fl]\nclients = 4\nfraction = 0.5\nrounds = 1\nworkers = 1\nseed = 1\n";
    int refused = 0;
    for (int k = 0; k < 4; k++) {
        char att[256], name[32], p[256];
        snprintf(att, sizeof att, "[attack]\nkind = gan\nclient = %d\nsettings = steps=1,samples=1,refs=1", k);
        snprintf(name, sizeof name, "uns%d", k);
        char ini[256], out[256], text[2048];
        fh_path(&H, ini, sizeof ini, "%s.ini", name);
        fh_path(&H, out, sizeof out, "%s.out", name);
        snprintf(text, sizeof text, "%s\n[output]\ndir = %s/results\n%s\n", base, H.root, att);
        fh_put(ini, text);
        pid_t pid = fork();
        if (pid == 0) {
            int fd = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0644);
            dup2(fd, 1);
            dup2(fd, 2);
            close(fd);
            execl(H.bin, H.bin, "run", ini, "--quiet", "--overwrite", (char *)NULL);
            _exit(127);
        }
        int st;
        waitpid(pid, &st, 0);
        char *t = fh_slurp(out);
        if (WIFEXITED(st) && WEXITSTATUS(st) != 0 && t && strstr(t, "[attack] client: client") &&
            strstr(t, "is not sampled in round 1")) {
            refused++;
            fh_path(&H, p, sizeof p, "results/%s/metrics.jsonl", name);
            assert_int_not_equal(access(p, F_OK), 0); /* refused before round 1 */
        } else if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
            fail_msg("client %d: unexpected failure:\n%s", k, t ? t : "");
        }
        free(t);
    }
    assert_int_equal(refused, 2); /* 2 of the 4 clients sit out round 1 */
}

/* Regression: a bad [attack] settings value used to surface only when the attack ran, rounds
 * into the experiment (gan_active excepted); every kind's settings are now checked before round
 * 1, and the run stops with the key named. */
static void test_settings_checked_before_round1(void **state) {
    (void)state;
    const char *base = "[data]\ndataset = synthetic\ntrain_size = 200\ntest_size = 50\n"
                       "[model]\nname = tiny\n[training]\nlr = 0.05\n"
                       "[fl]\nclients = 2\nrounds = 3\nworkers = 1\nseed = 1\n";
    const char *dlg_base = "[data]\ndataset = synthetic\ntrain_size = 2\ntest_size = 50\n"
                           "[model]\nname = dlg_lenet\n[training]\noptimizer = sgd\nlr = 0.1\nbatch_size = 8\n"
                           "[fl]\nclients = 2\nrounds = 3\nworkers = 1\nseed = 1\n";
    struct {
        const char *name, *base, *attack, *want;
    } cases[] = {
        {"bad_mia", base, "[attack]\nkind = mia\nrounds = 3\nsettings = shadows=1", "mia setting shadows"},
        {"bad_gan", base, "[attack]\nkind = gan\nrounds = 3\nsettings = steps=many", "gan setting steps"},
        {"bad_gan_key", base, "[attack]\nkind = gan\nrounds = 3\nsettings = fake=3", "unknown key 'fake'"},
        {"bad_dlg", dlg_base, "[attack]\nkind = dlg\nrounds = 3\nsettings = optimizer=sgd", "optimizer 'sgd'"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        assert_int_not_equal(fh_run_exp(&H, cases[i].name, cases[i].base, cases[i].attack), 0);
        char p[256];
        fh_path(&H, p, sizeof p, "%s.out", cases[i].name);
        char *t = fh_slurp(p);
        assert_non_null(t);
        if (!strstr(t, "[attack] settings") || !strstr(t, cases[i].want))
            fail_msg("%s: output lacks '[attack] settings' / '%s':\n%s", cases[i].name, cases[i].want, t);
        free(t);
        /* stopped before any round: no metrics line */
        fh_path(&H, p, sizeof p, "results/%s/metrics.jsonl", cases[i].name);
        char *m = fh_slurp(p);
        if (m) assert_int_equal(fh_count_lines(m), 0);
        free(m);
    }
}

/* Regression (the attack's rules moved out of the config layer into fv_attack_check_config):
 * `fedvim run` still refuses each of them before anything runs, with the message naming
 * file:line and the offending key as before. */
static void test_attack_rules_refused_by_run(void **state) {
    (void)state;
    /* fh_run_exp writes base, a blank line, "[output]\ndir = ...", then extra: extra starts 4
     * lines after base (line 6 after a base of 2 lines, line 11 after FH_SYNTH_INI's 7) */
    struct {
        const char *name, *base, *extra, *want1, *want2;
    } cases[] = {
        {"heldout_gan", "[data]\ndataset = mnist\n", "[attack]\nkind = gan\n[data]\ntrain_size = 0",
         "heldout_gan.ini:9: [data] train_size", "no held-out images for [attack] kind = gan"},
        {"heldout_mia", "[data]\ndataset = mnist\n", "[attack]\nkind = mia\n[data]\ntrain_size = 0",
         "heldout_mia.ini:9: [data] train_size", "no held-out images for [attack] kind = mia"},
        {"heldout_active", "[data]\ndataset = mnist\n", "[attack]\nkind = gan_active\n[data]\ntrain_size = 0",
         "heldout_active.ini:9: [data] train_size", "no held-out images for [attack] kind = gan_active"},
        {"dlg_model", FH_SYNTH_INI, "[model]\nname = lenet5\n[attack]\nkind = dlg",
         "dlg_model.ini:12: [model] name", "'lenet5': [attack] kind = dlg models the sigmoid LeNet dlg_lenet"},
        {"dlg_sgd", FH_SYNTH_INI, "[model]\nname = dlg_lenet\n[attack]\nkind = dlg\n[training]\nmomentum = 0.9",
         "default: [training] optimizer", "[attack] kind = dlg needs plain SGD"},
        {"dlg_epochs", FH_SYNTH_INI, "[model]\nname = dlg_lenet\n[attack]\nkind = dlg\n[training]\nlocal_epochs = 2",
         "dlg_epochs.ini:16: [training] local_epochs", "2: [attack] kind = dlg needs one local step"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        assert_int_not_equal(fh_run_exp(&H, cases[i].name, cases[i].base, cases[i].extra), 0);
        char p[256];
        fh_path(&H, p, sizeof p, "%s.out", cases[i].name);
        char *t = fh_slurp(p);
        assert_non_null(t);
        if (!strstr(t, cases[i].want1) || !strstr(t, cases[i].want2))
            fail_msg("%s: output lacks '%s' / '%s':\n%s", cases[i].name, cases[i].want1, cases[i].want2, t);
        free(t);
        /* refused while resolving: no results folder was made */
        fh_path(&H, p, sizeof p, "results/%s", cases[i].name);
        assert_int_not_equal(access(p, F_OK), 0);
    }
}

static int setup(void **state) {
    (void)state;
    signal(SIGPIPE, SIG_IGN);
    return fh_init(&H, "test_fl_attack") == 0 ? 0 : -1;
}

static int teardown(void **state) {
    (void)state;
    fh_cleanup(&H);
    return 0;
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_config_errors),
        cmocka_unit_test(test_attack_rules_refused_by_run),
        cmocka_unit_test(test_gan_in_run),
        cmocka_unit_test(test_dlg_in_run),
        cmocka_unit_test(test_invert_in_run),
        cmocka_unit_test(test_unsampled_client),
        cmocka_unit_test(test_settings_checked_before_round1),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
