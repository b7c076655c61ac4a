/* test_fl.c: the federated system end to end on localhost, through the fedvim binary
 * ($FEDVIM_BIN): real coordinator and worker processes talking CURVE over TCP.
 *  - LeNet-5, 4 workers, 3 rounds: accuracy rises, on the synthetic set (every machine) and on an
 *    MNIST subset when $FEDVIM_DATA/mnist exists, each against a bar measured on that data;
 *  - the same config and seed give the bitwise same model with 1 or 4 worker processes (with
 *    Adam state kept per client and FedProx on, the hardest case);
 *  - 1,000 virtual clients on 8 worker processes;
 *  - VisualMixer per client: mixed and clean test accuracy, VFE, same model for any process
 *    count, and a worker without the clients' key refuses to serve;
 *  - config errors through the CLI name file, line and key; fl.workers capped by RLIMIT_NPROC and
 *    RLIMIT_NOFILE.
 * Not here: a killed worker, outsider attacks and resume (test_fl_faults.c); insiders with a valid
 * key (test_fl_insider.c, test_fl_peers.c).
 * Timeouts are generous so the suite also passes under ASan on 2 cores. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "fl_harness.h"

/* The scratch folder all cases share (their runs have distinct names). */
static fh_ctx C;

static int setup(void **state) {
    if (fh_init(&C, "test_fl") != 0) return -1;
    return fh_group_setup(state);
}

static int teardown(void **state) {
    (void)state;
    fh_cleanup(&C);
    return 0;
}

/* LeNet-5 federated for 3 rounds on `data` (a [data] section body): accuracy rises and ends above
 * `bar`. Each data set has its own bar, measured on it with margin: the run is deterministic, the
 * margin absorbs other CPUs' rounding. */
static void lenet_accuracy_rises(const char *name, const char *data, double bar) {
    fh_config(&C, name, data, "clients = 8\nrounds = 3\nworkers = 4", "optimizer = sgd\nlr = 0.05\nmomentum = 0.9",
           "[model]\nname = lenet5");
    assert_int_equal(fh_run_cfg(&C, name, 600, NULL, NULL), 0);
    char p[256], rel[128];
    snprintf(rel, sizeof rel, "results/%s/metrics.jsonl", name);
    fh_path(&C, p, sizeof p, rel);
    char *m = fh_slurp(p);
    assert_non_null(m);
    double acc[3];
    const char *l = m;
    for (int r = 0; r < 3; r++) {
        acc[r] = fh_json_num(l, "test_accuracy");
        assert_true(fh_json_num(l, "round") == r + 1);
        assert_true(fh_json_num(l, "clients") == 8);
        assert_true(fh_json_num(l, "bytes_up") > 8 * 61706 * 4); /* eight LeNet-5 updates */
        l = strchr(l, '\n') + 1;
    }
    free(m);
    print_message("accuracy per round: %.4f %.4f %.4f (bar %.2f)\n", acc[0], acc[1], acc[2], bar);
    /* rises, and ends well above chance (10 classes) */
    assert_true(acc[2] > acc[0]);
    if (!(acc[2] > bar)) fail_msg("%s: final accuracy %.4f <= %.2f", name, acc[2], bar);
    snprintf(rel, sizeof rel, "results/%s/model.safetensors", name);
    fh_path(&C, p, sizeof p, rel);
    assert_int_equal(access(p, R_OK), 0);
    snprintf(rel, sizeof rel, "results/%s/config.resolved.ini", name);
    fh_path(&C, p, sizeof p, rel);
    assert_true(fh_contains(p, "name = lenet5"));
}

/* On an MNIST subset of 8,000 images (measured: 0.563 0.827 0.918): bar 0.85. Skipped without
 * MNIST (scripts/setup.sh fetches it). */
static void test_lenet_accuracy_rises(void **state) {
    (void)state;
    const char *data = getenv("FEDVIM_DATA");
    char mn[512];
    snprintf(mn, sizeof mn, "%s/mnist/train-images-idx3-ubyte", data ? data : "data");
    char gz[520];
    snprintf(gz, sizeof gz, "%s.gz", mn);
    if (access(mn, R_OK) != 0 && access(gz, R_OK) != 0) {
        print_message("skipped: no MNIST under %s (the synthetic case still runs)\n", data ? data : "data");
        return;
    }
    char d[600];
    snprintf(d, sizeof d, "dataset = mnist\ndir = %s/mnist\ntrain_size = 8000\ntest_size = 1000", data ? data : "data");
    lenet_accuracy_rises("lenet", d, 0.85);
}

/* On the synthetic set, which every machine has (measured: 0.497 0.694 0.814): bar 0.70. The MNIST
 * bar (0.85) used to be applied here too and failed on machines without MNIST. */
static void test_lenet_accuracy_rises_synthetic(void **state) {
    (void)state;
    lenet_accuracy_rises("lenet_syn", "dataset = synthetic\ntrain_size = 4000\ntest_size = 1000", 0.70);
}

static void test_same_model_any_process_count(void **state) {
    (void)state;
    const char *tr = "optimizer = adam\nlr = 0.002\nopt_state = keep\nprox_mu = 0.01\nbatch_size = 16";
    fh_config(&C, "det1", FH_SYN_DATA, "clients = 10\nfraction = 0.5\nrounds = 3\nworkers = 1\ntasks_per_worker = 1", tr,
           "[model]\nname = tiny\n[output]\nname = det");
    fh_config(&C, "det4", FH_SYN_DATA, "clients = 10\nfraction = 0.5\nrounds = 3\nworkers = 4\ntasks_per_worker = 3", tr,
           "[model]\nname = tiny\n[output]\nname = det_b");
    assert_int_equal(fh_run_cfg(&C, "det1", 300, NULL, NULL), 0);
    assert_int_equal(fh_run_cfg(&C, "det4", 300, NULL, NULL), 0);
    char a[128], b[128], pa[256], pb[256];
    fh_model_hash(&C, "det", a, sizeof a);
    fh_model_hash(&C, "det_b", b, sizeof b);
    assert_string_equal(a, b);
    fh_path(&C, pa, sizeof pa, "results/det/model.safetensors");
    fh_path(&C, pb, sizeof pb, "results/det_b/model.safetensors");
    assert_true(fh_same_file(pa, pb));
}

/* VisualMixer inside FL: mixed and clean test accuracy and the measured VFE are reported, mixing
 * is keyed per client so the model is still the same for any process count, and a worker without
 * the clients' key refuses to serve (the coordinator never needs that key). */
static void test_visualmixer(void **state) {
    (void)state;
    const char *d = "dataset = synthetic\ntrain_size = 1200\ntest_size = 300";
    const char *tr = "optimizer = stadam\nlr = 0.002";
    fh_config(&C, "vm1", d, "clients = 6\nrounds = 2\nworkers = 1", tr,
           "[model]\nname = lenet5\n[visualmixer]\nenabled = true\ntrials = 200\n[output]\nname = vm_a");
    fh_config(&C, "vm3", d, "clients = 6\nrounds = 2\nworkers = 3", tr,
           "[model]\nname = lenet5\n[visualmixer]\nenabled = true\ntrials = 200\n[output]\nname = vm_b");
    /* the same keys (and config) reproduce a VisualMixer run: both runs use one key folder */
    char kd[256];
    fh_path(&C, kd, sizeof kd, "vmkeys");
    assert_int_equal(fh_run_cfg(&C, "vm1", 600, "--keys", kd), 0);
    assert_int_equal(fh_run_cfg(&C, "vm3", 600, "--keys", kd), 0);
    char a[128], b[128], p[256];
    fh_model_hash(&C, "vm_a", a, sizeof a);
    fh_model_hash(&C, "vm_b", b, sizeof b);
    assert_string_equal(a, b);
    fh_path(&C, p, sizeof p, "results/vm_a/metrics.jsonl");
    char *m = fh_slurp(p);
    double am = fh_json_num(m, "test_accuracy_mixed"), vc = fh_json_num(m, "vfe_clients");
    free(m);
    assert_true(am >= 0 && am <= 1);
    assert_true(vc > 0);
    fh_path(&C, p, sizeof p, "results/vm_a/summary.json");
    char *s = fh_slurp(p);
    double vt = fh_json_num(s, "vfe_test"), vclean = fh_json_num(s, "vfe_test_clean");
    /* the default d* = auto is reported as the number it became for the test images */
    double dstar = fh_json_num(s, "test_d_star");
    free(s);
    assert_true(dstar > 0 && isfinite(dstar));
    print_message("VFE: clients' shards %.3f, mixed test %.3f, clean test %.3f\n", vc, vt, vclean);
    assert_true(vt > vclean); /* mixing destroys visual structure: VFE rises */

    /* multi-host style: the coordinator has only the evaluation key; a worker without the
     * clients' key cannot serve, and the coordinator stops with its reason */
    const char *ws[] = {"nokey"};
    fh_keys(&C, ws, 1, NULL);
    char cfgp[256], key[256], allow[256], ek[256], out[256], ep[256], wout[256], kout[256];
    fh_path(&C, ek, sizeof ek, "eval.vmix.key");
    fh_path(&C, kout, sizeof kout, "eval.keygen.out");
    assert_int_equal(fh_wait(fh_spawn(&C, kout, "keygen", "--out", ek, "--force", (const char *)NULL), 30), 0);
    fh_path(&C, cfgp, sizeof cfgp, "vm1.ini");
    fh_path(&C, key, sizeof key, "coord.key");
    fh_path(&C, allow, sizeof allow, "allow.txt");
    fh_path(&C, out, sizeof out, "vm_nokey.out");
    pid_t coord = fh_spawn(&C, out, "coordinator", cfgp, "--bind", "tcp://127.0.0.1:*", "--key", key, "--allow", allow,
                        "--eval-key", ek, "--overwrite", "--set", "output.name=vm_nokey", (const char *)NULL);
    fh_endpoint_of(out, ep, sizeof ep);
    fh_path(&C, wout, sizeof wout, "nokey.out");
    pid_t w = fh_worker(&C, ep, "nokey", wout);
    assert_int_equal(fh_wait(coord, 120), 1);
    assert_int_equal(fh_wait(w, 60), 1);
    assert_true(fh_contains(out, "no client key file"));
}

/* Config errors reach the user naming file, line and key; --set overrides any key. */
static void test_cli_config_errors(void **state) {
    (void)state;
    char p[256], out[256];
    fh_path(&C, p, sizeof p, "bad.ini");
    fh_path(&C, out, sizeof out, "bad.out");
    fh_put(p, "[fl]\nrounds = 2\nroundz = 3\n");
    assert_int_equal(fh_wait(fh_spawn(&C, out, "run", p, (const char *)NULL), 60), 1);
    char want[300];
    snprintf(want, sizeof want, "%s:3: [fl] roundz: unknown key", p);
    assert_true(fh_contains(out, want));
    fh_put(p, "[fl]\nrounds = 2\n[data]\ndataset = synthetic\n");
    assert_int_equal(fh_wait(fh_spawn(&C, out, "run", p, "--set", "fl.rounds=zero", (const char *)NULL), 60), 1);
    assert_true(fh_contains(out, "--set fl.rounds=zero: [fl] rounds: expected an integer, got 'zero'"));
    assert_int_equal(fh_wait(fh_spawn(&C, out, "run", p, "--set", "fl.clients=0", (const char *)NULL), 60), 1);
    assert_true(fh_contains(out, "[fl] clients: 0 is out of range"));
    /* a good override: the resolved config records it */
    char od[256];
    fh_path(&C, od, sizeof od, "results");
    char dirset[300];
    snprintf(dirset, sizeof dirset, "output.dir=%s", od);
    assert_int_equal(fh_wait(fh_spawn(&C, out, "run", p, "--set", "fl.rounds=1", "--set", dirset, "--set", "model.name=tiny",
                                     "--set", "data.train_size=400", "--set", "data.test_size=100", "--set", "fl.workers=1",
                                     "--quiet", "--overwrite", (const char *)NULL), 120), 0);
    fh_path(&C, p, sizeof p, "results/bad/config.resolved.ini");
    assert_true(fh_contains(p, "rounds = 1\n"));
    assert_true(fh_contains(p, "name = tiny\n"));
    /* an empty experiment file is an error naming it */
    fh_path(&C, p, sizeof p, "empty.ini");
    fh_put(p, "; nothing here\n");
    assert_int_equal(fh_wait(fh_spawn(&C, out, "run", p, (const char *)NULL), 60), 1);
    snprintf(want, sizeof want, "%s: sets no key", p);
    assert_true(fh_contains(out, want));
}

/* fl.workers is capped by what the machine lets `fedvim run` start (the limits are lowered for
 * the child only: fork inherits them, and no worker is started). */
static void test_workers_cap(void **state) {
    (void)state;
    char p[256], out[256], od[256], dirset[300];
    fh_path(&C, p, sizeof p, "cap.ini");
    fh_path(&C, out, sizeof out, "cap.out");
    fh_path(&C, od, sizeof od, "results");
    snprintf(dirset, sizeof dirset, "output.dir=%s", od);
    fh_put(p, "[data]\ndataset = synthetic\n[fl]\nclients = 4\nrounds = 1\nworkers = 200\n");
    struct rlimit old, low;
    assert_int_equal(getrlimit(RLIMIT_NOFILE, &old), 0);
    low = old;
    low.rlim_cur = 128;
    assert_int_equal(setrlimit(RLIMIT_NOFILE, &low), 0);
    pid_t pid = fh_spawn(&C, out, "run", p, "--set", dirset, "--quiet", (const char *)NULL);
    assert_int_equal(setrlimit(RLIMIT_NOFILE, &old), 0);
    assert_int_equal(fh_wait(pid, 60), 1);
    char want[300];
    snprintf(want, sizeof want, "%s:6: [fl] workers: 200 worker processes need", p);
    assert_true(fh_contains(out, want));
    assert_true(fh_contains(out, "RLIMIT_NOFILE (ulimit -n) = 128 allows: at most"));
    /* processes: 4096 workers of 2 threads need 4 tasks each; a limit of 10000 (or the hard one) is short */
    assert_int_equal(getrlimit(RLIMIT_NPROC, &old), 0);
    low = old;
    low.rlim_cur = old.rlim_max < 10000 ? old.rlim_max : 10000;
    assert_int_equal(setrlimit(RLIMIT_NPROC, &low), 0);
    pid = fh_spawn(&C, out, "run", p, "--set", dirset, "--set", "fl.workers=4096", "--set", "training.threads=2", "--quiet",
                (const char *)NULL);
    assert_int_equal(setrlimit(RLIMIT_NPROC, &old), 0);
    assert_int_equal(fh_wait(pid, 60), 1);
    assert_true(fh_contains(out, "--set: [fl] workers: 4096 worker processes need 16384 tasks (4 each: training.threads 2 + 2)"));
    snprintf(want, sizeof want, "RLIMIT_NPROC (ulimit -u) = %llu allows: at most %llu workers",
             (unsigned long long)low.rlim_cur, (unsigned long long)low.rlim_cur / 4);
    assert_true(fh_contains(out, want));
    fh_path(&C, p, sizeof p, "results/cap/logs");
    assert_int_not_equal(access(p, F_OK), 0); /* refused before anything was set up */
}

static void test_thousand_virtual_clients(void **state) {
    (void)state;
    fh_config(&C, "v1000", "dataset = synthetic\nsynthetic_shape = 1x8x8\ntrain_size = 10000\ntest_size = 500",
           "clients = 1000\nfraction = 0.1\nrounds = 2\nworkers = 8", "lr = 0.1\nbatch_size = 10",
           "[model]\nname = tiny");
    assert_int_equal(fh_run_cfg(&C, "v1000", 600, NULL, NULL), 0);
    char p[256];
    fh_path(&C, p, sizeof p, "results/v1000/metrics.jsonl");
    char *m = fh_slurp(p);
    assert_non_null(m);
    assert_true(fh_json_num(m, "clients") == 100);
    assert_true(fh_json_num(strchr(m, '\n') + 1, "clients") == 100);
    assert_true(fh_json_num(m, "dropped") == 0);
    free(m);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lenet_accuracy_rises), cmocka_unit_test(test_lenet_accuracy_rises_synthetic),
        cmocka_unit_test(test_same_model_any_process_count),
        cmocka_unit_test(test_thousand_virtual_clients),
        cmocka_unit_test(test_cli_config_errors),
        cmocka_unit_test(test_workers_cap),
        cmocka_unit_test(test_visualmixer),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
