/* cmd_bench.c: `fedvim bench train|mix|fl`. `bench train` times training steps of a model the
 * way the PyTorch reference benchmark does (docs/cuda.md, "The GPU machines"; LeNet-5: MNIST,
 * Adam 1e-3, one pass over 12,000 images after a warm-up; ResNet-20 and others: random 32x32x3
 * batches, SGD 0.1 momentum 0.9), so the figures compare side by side. Training runs through a
 * trainer (nn/trainer.h) on the CPU or the --device; --batch and --threads take the ranges of
 * [training] batch_size and threads from the config schema. On the CPU, --conv picks the conv
 * path (nn/net.h, fv_net_set_conv: auto, blas or dnnl; default: FEDVIM_CPU_CONV, else auto), so the
 * im2col + OpenBLAS path and oneDNN time side by side. Benchmarks are never timed tests. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmds.h"
#include "cuda/net.h"
#include "data/data.h"
#include "fl/config.h"
#include "flags.h"
#include "io/json.h"
#include "nn/layers.h"
#include "nn/models.h"
#include "nn/optim.h"
#include "nn/trainer.h"

/* Prints the per-node time of the timed steps (prof: fv_trainer_profile_times, net.h's
 * fv_net_profile layout) to f, one row per node (forward and backward milliseconds per step,
 * share of the wall time), then the zeroing of gradient buffers and what no node covers (loss,
 * optimizer step, batch assembly; on the CPU OpenMP fork and join between nodes, on a GPU the
 * host's wait for each step). `cuda`: the times are a GPU's (conv nodes then name no CPU path).
 * Returns the same rows as a JSON array (malloc'd). */
static char *layer_profile(const fv_net *net, const double *prof, int cuda, long steps, double secs, FILE *f) {
    const int nn = net->n_nodes;
    const double per = 1e3 / (double)steps, wall = secs * per;
    double nodes = 0.0;
    for (int i = 0; i < 2 * nn; i++) nodes += prof[i];
    fprintf(f, "bench train: per step (ms; %ld steps), by node:\n  %4s  %-9s  %-20s  %-10s  %9s  %9s  %6s\n",
            steps, "node", "op", "tensors", "output", "forward", "backward", "share");
    size_t cap = 256, len = 0;
    char *arr = fv_malloc(cap);
    arr[len++] = '[';
    for (int i = 1; i < nn; i++) {
        const fv_shape o = net->nodes[i].oshape;
        const double fw = prof[i] * per, bw = prof[nn + i] * per;
        char pre[96], shape[48];
        const char *name = fv_net_node_prefix(net, i, pre, sizeof pre);
        /* on the CPU a conv node names its path: conv:blas (im2col + OpenBLAS) or conv:dnnl (oneDNN) */
        const int conv = net->nodes[i].op == FV_OP_CONV2D && !cuda;
        const char *path = fv_net_node_dnnl(net, i) ? "dnnl" : "blas";
        char op[24];
        snprintf(op, sizeof op, conv ? "conv:%s" : "%s", conv ? path : fv_net_op_name(net, i));
        snprintf(shape, sizeof shape, "%dx%dx%d", o.c, o.h, o.w);
        fprintf(f, "  %4d  %-9s  %-20s  %-10s  %9.4f  %9.4f  %5.1f%%\n", i, op, name ? name : "-", shape, fw, bw,
                100.0 * (fw + bw) / wall);
        fv_json j;
        fv_json_begin(&j);
        fv_json_int(&j, "node", i);
        fv_json_str(&j, "op", fv_net_op_name(net, i));
        if (name) fv_json_str(&j, "tensors", name);
        fv_json_str(&j, "output", shape);
        fv_json_num(&j, "forward_ms", fw);
        fv_json_num(&j, "backward_ms", bw);
        if (conv) fv_json_str(&j, "conv_path", path);
        const char *obj = fv_json_end(&j);
        size_t k = strlen(obj);
        while (len + k + 3 > cap) arr = fv_realloc(arr, cap *= 2);
        if (i > 1) arr[len++] = ',';
        memcpy(arr + len, obj, k);
        len += k;
        fv_json_free(&j);
    }
    arr[len++] = ']';
    arr[len] = '\0';
    const double zero = prof[nn] * per, other = wall - nodes * per;
    fprintf(f, "  %4s  %-42s  %9s  %9.4f  %5.1f%%\n", "", "zeroing gradient buffers", "", zero, 100.0 * zero / wall);
    fprintf(f, "  %4s  %-42s  %9.4f  %9s  %5.1f%%\n", "", "other (loss, optimizer, batches)", other, "",
            100.0 * other / wall);
    fprintf(f, "  %4s  %-42s  %9.4f\n", "", "whole step", wall);
    return arr;
}

static int bench_train(int argc, char **argv) {
    const char *model = "lenet5", *device = "cpu", *data_dir = NULL, *conv = NULL;
    int batch = 64, threads = 2, images = 0, json = 0, seed = 0, graphs = 1, layers = 0, tf32 = 0, fuse = 0, blocked = 0;
    const fv_config_bounds r_batch = fv_config_range("training.batch_size"),
                           r_thr = fv_config_range("training.threads");
    fv_flag flags[] = {
        {"model", FV_FLAG_STRING, &model, "model to train (see fedvim train --help)", 0, 0},
        {"batch", FV_FLAG_INT, &batch, "minibatch size", r_batch.lo, r_batch.hi},
        {"threads", FV_FLAG_INT, &threads, "CPU threads", r_thr.lo, r_thr.hi},
        {"device", FV_FLAG_STRING, &device, "cpu, or cuda[:N] in a CUDA build", 0, 0},
        {"images", FV_FLAG_INT, &images, "images to time (default: 12000 for lenet5, 20 batches otherwise)", 0, 100000000},
        {"data-dir", FV_FLAG_STRING, &data_dir, "MNIST folder, --model lenet5 only (default: the standard place, and random data if MNIST is not there)", 0, 0},
        {"seed", FV_FLAG_INT, &seed, "seed", 0, 2147483647},
        {"tf32", FV_FLAG_BOOL, &tf32, "with --device cuda: allow TF32 tensor cores for FP32 products (faster on Ampere and later, about 1e-3 relative error per product; off by default, recorded in --json)", 0, 0},
        {"graphs", FV_FLAG_INT, &graphs, "--device cuda: 1 replays each full batch's step as a CUDA graph, 0 launches every kernel (what the graphs save in launch overhead)", 0, 1},
        {"blocked", FV_FLAG_INT, &blocked, "CPU: activations between oneDNN convs kept in its blocked layout: 1 on, -1 off, 0 the default (FEDVIM_CPU_BLOCKED=0 or 1, else on)", -1, 1},
        {"fuse", FV_FLAG_INT, &fuse, "batch norm / add + ReLU fusion (the same bits either way): 1 on, -1 off, 0 the default (CPU on; --device cuda off unless FEDVIM_CUDA_FUSE=1)", -1, 1},
        {"conv", FV_FLAG_STRING, &conv, "CPU conv path: auto (per layer shape), blas (im2col + OpenBLAS) or dnnl (oneDNN); default: FEDVIM_CPU_CONV, else auto", 0, 0},
        {"layers", FV_FLAG_BOOL, &layers, "also time every node's forward and backward and print where a step's time goes (CPU: wall time; --device cuda: GPU time between events, steps uncaptured and one at a time, so images/s drops)", 0, 0},
        {"json", FV_FLAG_BOOL, &json, "print one JSON object last on stdout", 0, 0},
    };
    const char *pos[1];
    int npos;
    fv_err e = {{0}};
    int r = fv_flags_parse("bench train", "[flags]", flags, sizeof flags / sizeof flags[0], argc, argv, pos, 0, &npos, &e);
    if (r == 1) return 0;
    if (r < 0) {
        fprintf(stderr, "%s\n", e.msg);
        return 2;
    }
    int dev = -1;
    if (fv_device_parse(device, &dev, &e) != 0) {
        fprintf(stderr, "fedvim bench train: %s\n", e.msg);
        return 2;
    }
    fv_conv_path conv_path = FV_CONV_AUTO;
    if (conv && fv_conv_path_parse(conv, &conv_path, &e) != 0) {
        fprintf(stderr, "fedvim bench train: --conv: %s\n", e.msg);
        return 2;
    }
    if (conv && dev >= 0) {
        fprintf(stderr, "fedvim bench train: --conv picks the CPU conv path; it cannot be used with --device %s\n",
                device);
        return 2;
    }
    if (tf32 && dev < 0) {
        fprintf(stderr, "fedvim bench train: --tf32 needs --device cuda[:N]: the CPU has no TF32\n");
        return 2;
    }
    int is_lenet = strcmp(model, "lenet5") == 0;
    if (data_dir && !is_lenet) { /* the other models time random 32x32x3 batches, like the reference */
        fprintf(stderr, "fedvim bench train: --data-dir is read for --model lenet5 only (%s trains on random "
                        "images)\n", model);
        return 2;
    }
    fv_set_threads(threads);
    fv_dataset d = {0};
    const char *source = "random";
    if (is_lenet && fv_dataset_load("mnist", data_dir, 1, &d, &e) == 0) {
        source = "mnist";
    } else if (is_lenet && data_dir) { /* asked for this folder: not silently random data */
        fprintf(stderr, "fedvim bench train: --data-dir %s: %s\n", data_dir, e.msg);
        return 2;
    }
    if (strcmp(source, "mnist") == 0) {
        fv_dataset_truncate(&d, d.n < 12000 ? d.n : 12000);
    } else {
        /* Random images of the shape the reference uses: 1x28x28 for LeNet-5, 3x32x32 otherwise. */
        int c = is_lenet ? 1 : 3, hw = is_lenet ? 28 : 32, n = batch * 4;
        d.n = n;
        d.c = c;
        d.h = d.w = hw;
        d.classes = 10;
        d.x = fv_malloc((size_t)n * c * hw * hw);
        d.y = fv_malloc((size_t)n);
        fv_rng g;
        fv_rng_seed(&g, 1);
        for (size_t i = 0; i < (size_t)n * c * hw * hw; i++) d.x[i] = (uint8_t)fv_rng_below(&g, 256);
        for (int i = 0; i < n; i++) d.y[i] = (uint8_t)fv_rng_below(&g, 10);
    }
    fv_net *net = fv_model_new(model, (fv_shape){d.c, d.h, d.w}, d.classes, (uint64_t)seed, &e);
    if (!net) {
        fprintf(stderr, "fedvim bench train: %s\n", e.msg);
        fv_dataset_free(&d);
        return 2;
    }
    if (conv && fv_net_set_conv(net, conv_path, &e) != 0) {
        fprintf(stderr, "fedvim bench train: --conv %s: %s\n", conv, e.msg);
        fv_net_destroy(&net);
        fv_dataset_free(&d);
        return 2;
    }
    int n_conv = 0, n_dnnl = 0;
    for (int i = 0; i < net->n_nodes; i++) {
        n_conv += net->nodes[i].op == FV_OP_CONV2D;
        n_dnnl += fv_net_node_dnnl(net, i);
    }
    fv_opt_cfg oc = fv_opt_defaults(is_lenet ? FV_OPT_ADAM : FV_OPT_SGD);
    if (!is_lenet) {
        oc.lr = 0.1f;
        oc.momentum = 0.9f;
    }
    const fv_trainer_cfg tc = {.device = dev, .max_batch = batch, .opt = oc, .eager = !graphs, .tf32 = tf32, .fuse = fuse, .blocked = blocked,
                               .norm = fv_norm_for(strcmp(source, "mnist") == 0 ? "mnist" : "random")};
    fv_rng rng;
    fv_rng_seed(&rng, 2);
    int total = images ? images : (is_lenet ? d.n : 20 * batch);
    /* the data set's shards: all of d first, so that a device buffer (and the CUDA graph that reads
     * it) outlives the warm-up's smaller shard; every shard is the first n images of d, and with
     * --device cuda it is staged before the clock starts; each epoch ends with a device sync, so
     * the clock covers all the work */
    int *first = fv_malloc((size_t)d.n * sizeof(int));
    for (int i = 0; i < d.n; i++) first[i] = i;
    fv_trainer *trainer = fv_trainer_new(net, &tc, &e);
    fv_trainer_shard *sh = trainer ? fv_trainer_shard_new(trainer) : NULL;
    if (!trainer || fv_trainer_shard_load(sh, &d, NULL, 0, &e) != 0 ||
        fv_trainer_shard_load(sh, &d, first, d.n < 10 * batch ? d.n : 10 * batch, &e) != 0) {
        fprintf(stderr, "fedvim bench train: --device %s: %s\n", device, e.msg);
        fv_trainer_shard_destroy(&sh);
        fv_trainer_destroy(&trainer);
        free(first);
        fv_net_destroy(&net);
        fv_dataset_free(&d);
        return 1;
    }
    const fv_trainer_info where = fv_trainer_info_get(trainer);
    n_dnnl = 0; /* the trainer's layout plan may have moved convs to oneDNN */
    for (int i = 1; i < net->n_nodes; i++) n_dnnl += fv_net_node_dnnl(net, i);
    /* warm-up: ten batches, as the reference does (on the GPU this also captures the step's graph) */
    fv_trainer_train_epoch(trainer, sh, batch, &rng, 0, NULL, NULL, NULL, NULL);
    int rc = 0;
    if (fv_trainer_shard_load(sh, &d, first, total < d.n ? total : d.n, &e) != 0) {
        fprintf(stderr, "fedvim bench train: %s\n", e.msg);
        total = 0, rc = 1;
    }
    if (layers) fv_trainer_profile(trainer, 1); /* after the warm-up: only the timed steps count */
    double t0 = fv_now();
    long done = 0, steps = 0;
    while (done < total) {
        int n = total - done < d.n ? total - (int)done : d.n;
        if (fv_trainer_shard_size(sh) != n && fv_trainer_shard_load(sh, &d, first, n, &e) != 0) {
            fprintf(stderr, "fedvim bench train: %s\n", e.msg);
            rc = 1;
            break;
        }
        fv_trainer_train_epoch(trainer, sh, batch, &rng, 0, NULL, NULL, NULL, NULL);
        done += n;
        steps += (n + batch - 1) / batch;
    }
    double secs = fv_now() - t0, ips = done / secs;
    const double *times = layers ? fv_trainer_profile_times(trainer) : NULL;
    char *prof = times && rc == 0 && steps > 0 ? layer_profile(net, times, where.cuda, steps, secs, stderr) : NULL;
    fprintf(stderr, "bench train: %s batch %d on %s, %s: %.0f images/s (%ld images, %.2f s)\n", model, batch, source,
            where.where, ips, done, secs);
    if (!where.cuda)
        fprintf(stderr, "bench train: convolutions %s: %d of %d through oneDNN, the rest im2col + OpenBLAS; %d ReLUs "
                        "fused with their batch norm or add; %d activations kept in oneDNN's blocked layout\n",
                fv_conv_path_name(net->conv_path), n_dnnl, n_conv, where.relu_fused, where.blocked);
    if (where.cuda) {
        const fv_trainer_info info = fv_trainer_info_get(trainer);
        fprintf(stderr, "bench train: convolutions %s; %ld steps as CUDA-graph replays, %ld uncaptured, %ld "
                        "captures, %.1f MiB on the device\n",
                info.conv, info.graph_steps, info.eager_steps, info.captures, info.device_bytes / 1048576.0);
    }
    if (json && rc == 0) {
        fv_json j;
        fv_json_begin(&j);
        fv_json_str(&j, "bench", "train");
        fv_json_str(&j, "model", model);
        fv_json_str(&j, "device", device);
        fv_json_str(&j, "device_name", where.where);
        if (where.cuda) {
            fv_json_str(&j, "convolutions", fv_trainer_info_get(trainer).conv);
            fv_json_int(&j, "graphs", graphs);
            fv_json_bool(&j, "tf32", fv_trainer_info_get(trainer).tf32);
        }
        if (!where.cuda) {
            fv_json_str(&j, "cpu_conv", fv_conv_path_name(net->conv_path));
            fv_json_int(&j, "cpu_conv_dnnl_nodes", n_dnnl);
            fv_json_int(&j, "conv_nodes", n_conv);
            fv_json_int(&j, "blocked", where.blocked);
        }
        fv_json_int(&j, "relu_fused", fv_trainer_info_get(trainer).relu_fused);
        fv_json_str(&j, "data", source);
        fv_json_int(&j, "batch", batch);
        fv_json_int(&j, "threads", threads);
        {   /* how idle OpenMP threads waited (cli/main.c sets the bounded spin unless told) */
            const char *wp = getenv("OMP_WAIT_POLICY"), *sc = getenv("GOMP_SPINCOUNT");
            char omp[160];
            snprintf(omp, sizeof omp, "%s%s%s%s%s", wp ? "OMP_WAIT_POLICY=" : "", wp ? wp : "", wp && sc ? " " : "",
                     sc ? "GOMP_SPINCOUNT=" : "", sc ? sc : "");
            fv_json_str(&j, "openmp", omp[0] ? omp : "libgomp default");
        }
        fv_json_int(&j, "images", done);
        fv_json_num(&j, "seconds", secs);
        fv_json_num(&j, "images_per_second", ips);
        if (prof) {
            fv_json_int(&j, "steps", steps);
            fv_json_num(&j, "step_ms", secs * 1e3 / (double)steps);
            fv_json_num(&j, "zero_grad_ms", times[net->n_nodes] * 1e3 / (double)steps);
            fv_json_raw(&j, "layers", prof);
        }
        printf("%s\n", fv_json_end(&j));
        fv_json_free(&j);
    }
    free(prof);
    fv_trainer_shard_destroy(&sh);
    fv_trainer_destroy(&trainer);
    free(first);
    fv_net_destroy(&net);
    fv_dataset_free(&d);
    return rc;
}

typedef struct {
    const char *name;
    int (*fn)(int, char **);
    const char *what;
} bench_entry;

static const bench_entry BENCHES[] = {
    {"train", bench_train, "training throughput of one model (images/s)"},
    {"fl", fv_bench_fl, "federated overhead per round and aggregation throughput against memcpy"},
    {"mix", fv_bench_mix, "VisualMixer throughput per core at 28x28x1, 32x32x3, 224x224x3, against memcpy"},
};

int fv_cmd_bench(int argc, char **argv) {
    size_t nb = sizeof BENCHES / sizeof BENCHES[0];
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        FILE *f = argc < 2 ? stderr : stdout;
        fprintf(f, "usage: fedvim bench <what> [flags]   (fedvim bench <what> --help)\n\nbenchmarks:\n");
        for (size_t i = 0; i < nb; i++) fprintf(f, "  %-8s %s\n", BENCHES[i].name, BENCHES[i].what);
        return argc < 2 ? 2 : 0;
    }
    for (size_t i = 0; i < nb; i++)
        if (strcmp(argv[1], BENCHES[i].name) == 0) return BENCHES[i].fn(argc - 1, argv + 1);
    fprintf(stderr, "fedvim bench: unknown benchmark '%s' (see fedvim bench --help)\n", argv[1]);
    return 2;
}
