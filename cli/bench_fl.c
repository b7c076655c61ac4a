/* bench_fl.c: `fedvim bench fl`: what federated learning costs beyond the clients' own work.
 *
 *  - Per-round overhead, from real runs of this binary (`fedvim run`: coordinator, worker
 *    processes, CURVE, signed updates, checks, ordered FedAvg, checkpoint): overhead = round time
 *    (without evaluation) minus the critical path of client work, i.e. the busiest worker's
 *    summed local training (with one client per worker: the slowest client's training time).
 *    Scenarios: LeNet-5 with 10 workers and one client each, with security on and off; ResNet-20
 *    with 100 virtual clients served by 4 workers. The goal is overhead <= 5% of round time.
 *  - Aggregation throughput: the FedAvg accumulation (acc += w * x, double accumulator) in GB/s of
 *    update bytes consumed, next to memcpy of the same bytes, single-threaded and with every
 *    thread.
 * Data: MNIST for LeNet-5 when present (else synthetic 1x28x28), synthetic 3x32x32 for ResNet-20.
 * Not here: training speed itself (`fedvim bench train`).
 */
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fl/aggregate.h"
#include "cmds.h"
#include "flags.h"
#include "fv_common.h"
#include "io/json.h"

typedef struct {
    const char *label;
    double round_s, busy_s, overhead_s, eval_s, client_max_s;
    int rounds;
    uint64_t bytes_up, bytes_down;
    int ok;
} scenario;

static double num_after(const char *s, const char *key) {
    char pat[64];
    snprintf(pat, sizeof pat, "\"%s\":", key);
    const char *p = strstr(s, pat);
    return p ? strtod(p + strlen(pat), NULL) : NAN;
}

/* Run `fedvim run cfg --quiet` (this binary) and average its rounds, skipping round 1 (workers
 * warm up: first model transfer, first allocations) when there are more. */
static int run_scenario(const char *dir, const char *name, const char *ini, scenario *sc, fv_err *e) {
    char cfgp[1200], outp[1200], mp[1200];
    snprintf(cfgp, sizeof cfgp, "%s/%s.ini", dir, name);
    snprintf(outp, sizeof outp, "%s/%s.out", dir, name);
    if (fv_write_file_atomic(cfgp, ini, strlen(ini), e) != 0) return -1;
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) return fv_err_set(e, "cannot fork");
    if (pid == 0) {
        if (!freopen(outp, "w", stdout) || !freopen(outp, "a", stderr)) _exit(126);
        execl("/proc/self/exe", "fedvim", "run", cfgp, "--quiet", "--overwrite", (char *)NULL);
        _exit(127);
    }
    int st;
    waitpid(pid, &st, 0);
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) return fv_err_set(e, "scenario %s failed: see %s", name, outp);
    snprintf(mp, sizeof mp, "%s/results/%s/metrics.jsonl", dir, name);
    uint8_t *buf;
    size_t len;
    if (fv_read_file(mp, 1 << 24, &buf, &len, e) != 0) return -1;
    char *text = fv_realloc(buf, len + 1);
    text[len] = 0;
    int n = 0, total = 0;
    for (char *l = text; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL) total++;
    int skip = total > 1 ? 1 : 0, k = 0;
    memset(sc, 0, sizeof *sc);
    for (char *l = text; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL, k++) {
        if (k < skip) continue;
        double eval = num_after(l, "eval_seconds");
        sc->round_s += num_after(l, "seconds") - eval;
        sc->busy_s += num_after(l, "worker_busy_max");
        sc->overhead_s += num_after(l, "overhead_seconds");
        sc->client_max_s += num_after(l, "client_seconds_max");
        sc->eval_s += eval;
        sc->bytes_up += (uint64_t)num_after(l, "bytes_up");
        sc->bytes_down += (uint64_t)num_after(l, "bytes_down");
        n++;
    }
    free(text);
    if (n == 0) return fv_err_set(e, "scenario %s wrote no rounds", name);
    sc->round_s /= n;
    sc->busy_s /= n;
    sc->overhead_s /= n;
    sc->client_max_s /= n;
    sc->eval_s /= n;
    sc->bytes_up /= (uint64_t)n;
    sc->bytes_down /= (uint64_t)n;
    sc->rounds = n;
    sc->ok = 1;
    return 0;
}

/* Seconds per call of fn over `bytes`, best of `reps` after one warm-up. */
static double best_of(int reps, void (*fn)(void *), void *arg) {
    fn(arg);
    double best = INFINITY;
    for (int r = 0; r < reps; r++) {
        double t0 = fv_now();
        fn(arg);
        double t = fv_now() - t0;
        if (t < best) best = t;
    }
    return best;
}

typedef struct {
    double *acc;
    float *x, *dst;
    size_t n;
} agg_arg;

static void do_axpy(void *p) {
    agg_arg *a = p;
    fv_agg_axpy(a->acc, a->x, 1.5, a->n);
}

static void do_memcpy(void *p) {
    agg_arg *a = p;
    memcpy(a->dst, a->x, a->n * sizeof(float));
}

int fv_bench_fl(int argc, char **argv) {
    int rounds = 4, json = 0, keep = 0, quick = 0, agg_mb = 256;
    const char *data_dir = NULL;
    fv_flag flags[] = {
        {"rounds", FV_FLAG_INT, &rounds, "rounds per scenario (the first is a warm-up and not counted)", 2, 1000},
        {"agg-mb", FV_FLAG_INT, &agg_mb, "update size for the aggregation throughput (MB)", 1, 16384},
        {"quick", FV_FLAG_BOOL, &quick, "smaller client shards (a fast smoke of the benchmark)", 0, 0},
        {"data", FV_FLAG_STRING, &data_dir, "MNIST folder for LeNet-5 (default: the standard place; synthetic if absent)", 0, 0},
        {"keep", FV_FLAG_BOOL, &keep, "keep the temporary results folder", 0, 0},
        {"json", FV_FLAG_BOOL, &json, "print one JSON object last on stdout", 0, 0},
    };
    const char *pos[1];
    int npos;
    fv_err e = {{0}};
    int r = fv_flags_parse("bench fl", "[flags]", flags, sizeof flags / sizeof flags[0], argc, argv, pos, 0, &npos, &e);
    if (r == 1) return 0;
    if (r < 0) {
        fprintf(stderr, "%s\n", e.msg);
        return 2;
    }
    char dir[] = "/tmp/fedvim_bench_fl_XXXXXX";
    if (!mkdtemp(dir)) {
        fprintf(stderr, "fedvim bench fl: cannot create a temporary folder\n");
        return 1;
    }
    /* MNIST when present */
    char mn[1200];
    const char *env = getenv("FEDVIM_DATA");
    if (data_dir) snprintf(mn, sizeof mn, "%s/train-images-idx3-ubyte", data_dir);
    else snprintf(mn, sizeof mn, "%s/mnist/train-images-idx3-ubyte", env ? env : "data");
    char mngz[1300];
    snprintf(mngz, sizeof mngz, "%s.gz", mn);
    int mnist = access(mn, R_OK) == 0 || access(mngz, R_OK) == 0;
    char lenet_data[1400];
    int per_client = quick ? 200 : 1200;
    if (mnist) {
        char d[1200];
        if (data_dir) snprintf(d, sizeof d, "%s", data_dir);
        else snprintf(d, sizeof d, "%s/mnist", env ? env : "data");
        snprintf(lenet_data, sizeof lenet_data, "dataset = mnist\ndir = %s\ntrain_size = %d\ntest_size = 1000\n", d,
                 10 * per_client);
    } else {
        snprintf(lenet_data, sizeof lenet_data, "dataset = synthetic\ntrain_size = %d\ntest_size = 1000\n",
                 10 * per_client);
    }
    int res_per = quick ? 8 : 32;
    char ini[3][4096];
    const char *common = "[training]\noptimizer = sgd\nlr = 0.05\nmomentum = 0.9\nbatch_size = 32\n";
    snprintf(ini[0], sizeof ini[0],
             "[data]\n%s[model]\nname = lenet5\n%s[fl]\nclients = 10\nworkers = 10\nrounds = %d\neval_every = %d\n"
             "tasks_per_worker = 1\n[output]\ndir = %s/results\n",
             lenet_data, common, rounds, rounds, dir);
    if (snprintf(ini[1], sizeof ini[1], "%s[security]\nenabled = false\n", ini[0]) >= (int)sizeof ini[1])
        FV_DIE("bench config too long");
    snprintf(ini[2], sizeof ini[2],
             "[data]\ndataset = synthetic\nsynthetic_shape = 3x32x32\ntrain_size = %d\ntest_size = 500\n"
             "[model]\nname = resnet20\n%s[fl]\nclients = 100\nworkers = 4\nrounds = %d\neval_every = %d\n"
             "[output]\ndir = %s/results\n",
             100 * res_per, common, rounds, rounds, dir);
    const char *names[3] = {"lenet5_10w", "lenet5_10w_insecure", "resnet20_100c"};
    const char *labels[3] = {"LeNet-5, 10 workers x 1 client, CURVE + signatures",
                             "LeNet-5, 10 workers x 1 client, security off",
                             "ResNet-20, 100 virtual clients on 4 workers"};
    scenario sc[3];
    int status = 0;
    for (int i = 0; i < 3; i++) {
        fprintf(stderr, "bench fl: %s (%d rounds)...\n", labels[i], rounds);
        if (run_scenario(dir, names[i], ini[i], &sc[i], &e) != 0) {
            fprintf(stderr, "fedvim bench fl: %s\n", e.msg);
            status = 1;
            sc[i].ok = 0;
        }
        sc[i].label = labels[i];
    }
    /* aggregation throughput */
    size_t n = (size_t)agg_mb * (1u << 20) / sizeof(float);
    agg_arg a = {fv_calloc(n, sizeof(double)), fv_malloc(n * sizeof(float)), fv_malloc(n * sizeof(float)), n};
    for (size_t i = 0; i < n; i++) a.x[i] = (float)(i % 1000) * 1e-3f;
    int maxt = omp_get_max_threads();
    double gb = (double)n * sizeof(float) / 1e9, t_axpy[2], t_copy[2];
    for (int k = 0; k < 2; k++) {
        omp_set_num_threads(k == 0 ? 1 : maxt);
        t_axpy[k] = best_of(5, do_axpy, &a);
        t_copy[k] = best_of(5, do_memcpy, &a);
    }
    omp_set_num_threads(maxt);
    free(a.acc);
    free(a.x);
    free(a.dst);

    printf("fedvim bench fl (%s data for LeNet-5; rounds after the first, evaluation excluded)\n",
           mnist ? "MNIST" : "synthetic");
    printf("%-52s %9s %9s %9s %8s %10s\n", "scenario", "round s", "work s", "overhead", "share", "MB/round");
    for (int i = 0; i < 3; i++) {
        if (!sc[i].ok) {
            printf("%-52s failed\n", sc[i].label);
            continue;
        }
        printf("%-52s %9.3f %9.3f %9.3f %7.2f%% %10.2f\n", sc[i].label, sc[i].round_s, sc[i].busy_s,
               sc[i].overhead_s, 100 * sc[i].overhead_s / sc[i].round_s,
               (double)(sc[i].bytes_up + sc[i].bytes_down) / 1e6);
    }
    printf("(work = the busiest worker's local training; overhead = round - work; goal <= 5%%)\n");
    printf("aggregation of %.0f MB: %.2f GB/s (1 thread), %.2f GB/s (%d threads); memcpy of the same bytes: "
           "%.2f GB/s, %.2f GB/s\n",
           gb * 1e3, gb / t_axpy[0], gb / t_axpy[1], maxt, gb / t_copy[0], gb / t_copy[1]);
    if (json) {
        fv_json j;
        fv_json_begin(&j);
        fv_json_str(&j, "bench", "fl");
        fv_json_str(&j, "lenet_data", mnist ? "mnist" : "synthetic");
        for (int i = 0; i < 3; i++) {
            fv_json_obj_begin(&j, names[i]);
            fv_json_bool(&j, "ok", sc[i].ok);
            if (sc[i].ok) {
                fv_json_num(&j, "round_seconds", sc[i].round_s);
                fv_json_num(&j, "work_seconds", sc[i].busy_s);
                fv_json_num(&j, "overhead_seconds", sc[i].overhead_s);
                fv_json_num(&j, "overhead_share", sc[i].overhead_s / sc[i].round_s);
                fv_json_num(&j, "client_seconds_max", sc[i].client_max_s);
                fv_json_int(&j, "bytes_per_round", (int64_t)(sc[i].bytes_up + sc[i].bytes_down));
                fv_json_int(&j, "rounds_measured", sc[i].rounds);
            }
            fv_json_obj_end(&j);
        }
        fv_json_obj_begin(&j, "aggregation");
        fv_json_num(&j, "bytes", gb * 1e9);
        fv_json_num(&j, "gbps_1_thread", gb / t_axpy[0]);
        fv_json_num(&j, "gbps_all_threads", gb / t_axpy[1]);
        fv_json_int(&j, "threads", maxt);
        fv_json_num(&j, "memcpy_gbps_1_thread", gb / t_copy[0]);
        fv_json_num(&j, "memcpy_gbps_all_threads", gb / t_copy[1]);
        fv_json_obj_end(&j);
        printf("%s\n", fv_json_end(&j));
        fv_json_free(&j);
    }
    if (!keep) {
        char cmd[128];
        snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
        if (system(cmd) != 0) fprintf(stderr, "bench fl: could not remove %s\n", dir);
    } else {
        fprintf(stderr, "bench fl: results kept in %s\n", dir);
    }
    return status;
}
