/* test_fl_slots.c: [fl] worker_slots, several clients trained at once inside one worker process
 * (worker.h; shared/fv_thread.h's fv_pool), through the fedvim binary with real coordinator and
 * worker processes. Slots change where clients train, never what they compute, so each case
 * compares a run with slots bitwise (params_hash, the model file) against the same config run
 * one client at a time:
 *  - synchronous FedAvg with Adam state kept per client and FedProx on (each slot's own optimizer
 *    state and model copy), 2 workers of 3 slots against 1 worker of 1;
 *  - VisualMixer with SCAFFOLD (slot threads share the mixing cache; each slot's own control
 *    buffers), 1 worker of 4 slots against 1 of 1;
 *  - FedBuff (mode = async): tasks of different global models in flight at one worker at once
 *    (each slot copies its own model when it takes a task);
 *  - worker_slots out of range is refused, naming the key.
 * Timeouts are generous so the suite also passes under ASan on 2 cores. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fl_harness.h"

static fh_ctx H;

static const char *SYN = "[data]\ndataset = synthetic\ntrain_size = 1200\ntest_size = 300\n"
                         "[model]\nname = tiny\n";

static void same_hash(const char *a, const char *b) {
    char ha[65], hb[65];
    fh_params_hash(&H, a, ha);
    fh_params_hash(&H, b, hb);
    assert_string_equal(ha, hb);
}

/* The most slots any worker of run `name` had busy at once, from the line each worker with
 * several slots logs when it stops (results/<name>/logs/worker-<i>.log); 0 when none says. */
static int busy_peak(const char *name) {
    int peak = 0;
    for (int i = 0; i < 8; i++) {
        char rel[256], path[512];
        snprintf(rel, sizeof rel, "results/%s/logs/worker-%d.log", name, i);
        fh_path(&H, path, sizeof path, "%s", rel);
        char *t = fh_slurp(path);
        if (!t) continue;
        const char *at = strstr(t, "at most ");
        int k = 0;
        if (at && sscanf(at, "at most %d at once", &k) == 1 && k > peak) peak = k;
        free(t);
    }
    return peak;
}

static void test_sync_adam_keep_prox(void **state) {
    (void)state;
    const char *tr = "[training]\nlocal_epochs = 2\noptimizer = adam\nlr = 0.002\nopt_state = keep\nprox_mu = 0.01\nbatch_size = 16\n";
    char base[512];
    snprintf(base, sizeof base, "[data]\ndataset = synthetic\ntrain_size = 1200\ntest_size = 300\n[model]\nname = "
             "lenet5\n%s[fl]\nclients = 10\nfraction = 0.6\nrounds = 3\nseed = 4\n", tr);
    assert_int_equal(fh_run_exp(&H, "sync1", base, "[fl]\nworkers = 1\ntasks_per_worker = 1\n"), 0);
    assert_int_equal(fh_run_exp(&H, "sync6", base, "[fl]\nworkers = 2\nworker_slots = 3\ntasks_per_worker = 2\n"), 0);
    same_hash("sync1", "sync6");
    /* the slots really overlapped: each worker is sent 3 of a round's 6 clients in one burst, and
     * lenet5 on 120 images takes longer than the burst */
    print_message("sync: at most %d clients trained at once per worker\n", busy_peak("sync6"));
    assert_true(busy_peak("sync6") >= 2);
    char pa[256], pb[256];
    fh_path(&H, pa, sizeof pa, "results/sync1/model.safetensors");
    fh_path(&H, pb, sizeof pb, "results/sync6/model.safetensors");
    assert_true(fh_same_file(pa, pb));
}

static void test_visualmixer_scaffold(void **state) {
    (void)state;
    char kd[256];
    fh_path(&H, kd, sizeof kd, "vmkeys");
    /* both runs use one key folder: the same keys reproduce a VisualMixer run */
    fh_config(&H, "vm1", "dataset = synthetic\ntrain_size = 1200\ntest_size = 300",
              "clients = 6\nrounds = 2\nseed = 2\naggregator = scaffold\nworkers = 1", "lr = 0.05\nbatch_size = 16",
              "[model]\nname = tiny\n[visualmixer]\nenabled = true\ntrials = 100\n[output]\nname = vm1");
    fh_config(&H, "vm4", "dataset = synthetic\ntrain_size = 1200\ntest_size = 300",
              "clients = 6\nrounds = 2\nseed = 2\naggregator = scaffold\nworkers = 1\nworker_slots = 4",
              "lr = 0.05\nbatch_size = 16",
              "[model]\nname = tiny\n[visualmixer]\nenabled = true\ntrials = 100\n[output]\nname = vm4");
    assert_int_equal(fh_run_cfg(&H, "vm1", 300, "--keys", kd), 0);
    assert_int_equal(fh_run_cfg(&H, "vm4", 300, "--keys", kd), 0);
    same_hash("vm1", "vm4");
}

/* FedBuff's tasks carry the global model of the step they were issued at: with 3 slots and
 * concurrency 4, one worker trains updates of different models at once. */
static void test_fedbuff(void **state) {
    (void)state;
    char tr[256], base[1024];
    fh_path(&H, tr, sizeof tr, "async.csv");
    fh_put(tr, "client,speed,on,off\n0,100,0,inf\n1,50,0,inf\n2,20,0,inf\n3,10,0,inf\n4,100,5,inf\n5,25,0,inf\n");
    snprintf(base, sizeof base, "%s[training]\nlr = 0.05\nbatch_size = 16\n"
             "[fl]\nclients = 6\nrounds = 5\nseed = 5\ntrace = %s\nmode = async\nbuffer_size = 2\n"
             "concurrency = 4\nworker_timeout = 120\nround_timeout = 120\n", SYN, tr);
    assert_int_equal(fh_run_exp(&H, "fb1", base, "[fl]\nworkers = 1\n"), 0);
    assert_int_equal(fh_run_exp(&H, "fb3", base, "[fl]\nworkers = 1\nworker_slots = 3\n"), 0);
    same_hash("fb1", "fb3");
}

static void test_config_refusals(void **state) {
    (void)state;
    fh_expect_config_error(FH_SYNTH_INI, "[fl]\nworker_slots = 0", "worker_slots", NULL);
    fh_expect_config_error(FH_SYNTH_INI, "[fl]\nworker_slots = 65", "worker_slots", NULL);
}

int main(void) {
    if (fh_init(&H, "fl_slots") != 0) return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_config_refusals),
        cmocka_unit_test(test_sync_adam_keep_prox),
        cmocka_unit_test(test_visualmixer_scaffold),
        cmocka_unit_test(test_fedbuff),
    };
    int rc = cmocka_run_group_tests(tests, fh_group_setup, NULL);
    fh_cleanup(&H);
    return rc;
}
