/* cmd_train.c: `fedvim train`: central training of one model on one data set, with a progress bar
 * on a terminal, one line per epoch, an optional safetensors checkpoint and a --json summary. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cmds.h"
#include "cuda/net.h"
#include "data/data.h"
#include "flags.h"
#include "io/json.h"
#include "nn/layers.h"
#include "nn/models.h"
#include "nn/optim.h"
#include "io/safetensors.h"
#include "nn/train.h"

typedef struct {
    int tty;
    double t0, last;
    int epoch, epochs;
} progress_ctx;

static void progress(void *p, long done, long total, double loss) {
    progress_ctx *c = p;
    if (!c->tty) return;
    double now = fv_now();
    if (done != total && now - c->last < 0.1) return;
    c->last = now;
    int width = 30, fill = (int)(width * done / (total ? total : 1));
    fprintf(stderr, "\repoch %d/%d [", c->epoch, c->epochs);
    for (int i = 0; i < width; i++) fputc(i < fill ? '#' : '.', stderr);
    fprintf(stderr, "] %ld/%ld loss %.4f %.0f img/s ", done, total, loss, done / (now - c->t0 + 1e-9));
    fflush(stderr);
}

int fv_cmd_train(int argc, char **argv) {
    const char *model = "lenet5", *dataset = "mnist", *data_dir = NULL, *optimizer = "adam", *save = NULL,
               *schedule = "constant", *device = "cpu";
    int epochs = 1, batch = 64, seed = 1, threads = 2, json = 0, limit = 0, test_limit = 0, nesterov = 0;
    double lr = -1, momentum = 0.9, wd = 0, mu = 0;
    fv_flag flags[] = {
        {"model", FV_FLAG_STRING, &model, "model: lenet5, fedavg_cnn, vgg11, resnet20, mobilenet, dlg_lenet, tiny", 0, 0},
        {"dataset", FV_FLAG_STRING, &dataset, "data set: mnist, fashion, cmnist (Colored MNIST), cifar10", 0, 0},
        {"data-dir", FV_FLAG_STRING, &data_dir, "folder with the data set's files (default: its standard place)", 0, 0},
        {"epochs", FV_FLAG_INT, &epochs, "training epochs", 1, 10000},
        {"batch", FV_FLAG_INT, &batch, "minibatch size", 1, 65536},
        {"optimizer", FV_FLAG_STRING, &optimizer, "sgd, adam or stadam", 0, 0},
        {"lr", FV_FLAG_FLOAT, &lr, "learning rate (default: 0.01 for sgd, 1e-3 otherwise)", 0, 0},
        {"momentum", FV_FLAG_FLOAT, &momentum, "SGD momentum", 0, 1},
        {"nesterov", FV_FLAG_BOOL, &nesterov, "SGD with Nesterov momentum", 0, 0},
        {"schedule", FV_FLAG_STRING, &schedule, "learning-rate schedule over the whole run: cosine (decay to 0) or constant", 0, 0},
        {"wd", FV_FLAG_FLOAT, &wd, "weight decay", 0, 1},
        {"mu", FV_FLAG_FLOAT, &mu, "ST-Adam update momentum", 0, 1},
        {"seed", FV_FLAG_INT, &seed, "seed for initialisation, data order and dropout", 0, 2147483647},
        {"threads", FV_FLAG_INT, &threads, "CPU threads", 1, 1024},
        {"device", FV_FLAG_STRING, &device, "cpu, or cuda[:N]: train on CUDA device N (a CUDA build)", 0, 0},
        {"limit", FV_FLAG_INT, &limit, "use only the first N training images (0: all)", 0, 100000000},
        {"test-limit", FV_FLAG_INT, &test_limit, "use only the first N test images (0: all)", 0, 100000000},
        {"save", FV_FLAG_STRING, &save, "write the trained model to this safetensors file", 0, 0},
        {"json", FV_FLAG_BOOL, &json, "print one JSON summary object last on stdout", 0, 0},
    };
    const int nf = sizeof flags / sizeof flags[0];
    const char *pos[1];
    int npos;
    fv_err e = {{0}};
    int r = fv_flags_parse("train", "[flags]", flags, nf, argc, argv, pos, 0, &npos, &e);
    if (r == 1) return 0;
    if (r < 0) {
        fprintf(stderr, "%s\n", e.msg);
        return 2;
    }
    int dev = -1;
    if (fv_device_parse(device, &dev, &e) != 0) {
        fprintf(stderr, "fedvim train: %s\n", e.msg);
        return 2;
    }
    fv_opt_kind kind;
    if (fv_opt_parse_kind(optimizer, &kind, &e) != 0) {
        fprintf(stderr, "fedvim train: --optimizer: %s\n", e.msg);
        return 2;
    }
    if (strcmp(schedule, "cosine") != 0 && strcmp(schedule, "constant") != 0) {
        fprintf(stderr, "fedvim train: --schedule: '%s' is not cosine or constant\n", schedule);
        return 2;
    }
    fv_set_threads(threads);
    fv_dataset tr = {0}, te = {0};
    if (fv_dataset_load(dataset, data_dir, 1, &tr, &e) != 0 || fv_dataset_load(dataset, data_dir, 0, &te, &e) != 0) {
        fprintf(stderr, "fedvim train: %s\n", e.msg);
        fv_dataset_free(&tr);
        return 1;
    }
    if (limit > 0 && limit < tr.n) fv_dataset_truncate(&tr, limit);
    if (test_limit > 0 && test_limit < te.n) fv_dataset_truncate(&te, test_limit);
    fv_net *net = fv_model_new(model, (fv_shape){tr.c, tr.h, tr.w}, tr.classes, (uint64_t)seed, &e);
    if (!net) {
        fprintf(stderr, "fedvim train: %s\n", e.msg);
        fv_dataset_free(&tr);
        fv_dataset_free(&te);
        return 2;
    }
    fv_net_seed_dropout(net, (uint64_t)seed * 7919u + 17u);
    fv_opt_cfg oc = fv_opt_defaults(kind);
    if (lr > 0) oc.lr = (float)lr;
    oc.momentum = (float)momentum;
    oc.nesterov = nesterov;
    oc.wd = (float)wd;
    oc.mu = (float)mu;
    if (strcmp(schedule, "cosine") == 0) oc.decay_steps = (long)epochs * ((tr.n + batch - 1) / batch);
    fv_opt *opt = fv_opt_new(&oc, net->n_train);
    fv_norm norm = fv_norm_for(dataset);
    /* --device cuda: the model, its optimizer and both data sets live on the GPU for the run */
    fv_cuda_net *cn = NULL;
    fv_cuda_shard *ctr = NULL, *cte = NULL;
    char where[320];
    snprintf(where, sizeof where, "%d threads", threads);
    if (dev >= 0) {
        cn = fv_cuda_net_new(net, dev, batch, &e);
        if (cn) {
            fv_cuda_net_set_opt(cn, &oc);
            ctr = fv_cuda_shard_new(cn);
            cte = fv_cuda_shard_new(cn);
        }
        if (!cn || fv_cuda_shard_load(ctr, &tr, NULL, 0, &e) != 0 || fv_cuda_shard_load(cte, &te, NULL, 0, &e) != 0) {
            fprintf(stderr, "fedvim train: --device %s: %s\n", device, e.msg);
            fv_cuda_shard_destroy(&ctr);
            fv_cuda_shard_destroy(&cte);
            fv_cuda_net_destroy(&cn);
            fv_opt_destroy(&opt);
            fv_net_destroy(&net);
            fv_dataset_free(&tr);
            fv_dataset_free(&te);
            return 1;
        }
        fv_cuda_net_describe(cn, where, sizeof where);
    }
    fv_rng rng;
    fv_rng_seed2(&rng, (uint64_t)seed, 1);
    fprintf(stderr, "fedvim train: %s on %s (%d train, %d test images, %dx%dx%d), %zu parameters, %s lr %g, "
                    "batch %d, %s\n",
            model, dataset, tr.n, te.n, tr.c, tr.h, tr.w, net->n_train, fv_opt_kind_name(kind), oc.lr, batch, where);
    progress_ctx pc = {isatty(2), fv_now(), 0, 0, epochs};
    double train_seconds = 0, last_train_loss = 0, last_train_acc = 0;
    long images = 0;
    fv_eval_stats ev = {0};
    for (int ep = 1; ep <= epochs; ep++) {
        pc.epoch = ep;
        pc.t0 = fv_now();
        fv_epoch_stats st = cn ? fv_cuda_train_epoch(cn, ctr, batch, norm, &rng, 0.0f, NULL, progress, &pc)
                               : fv_train_epoch(net, opt, &tr, NULL, tr.n, batch, norm, &rng, 0.0f, NULL, progress, &pc);
        if (pc.tty) fputc('\n', stderr);
        train_seconds += st.seconds;
        images += st.images;
        last_train_loss = st.loss;
        last_train_acc = st.accuracy;
        ev = cn ? fv_cuda_evaluate(cn, cte, 500, norm) : fv_evaluate(net, &te, NULL, te.n, 500, norm);
        fprintf(stderr, "epoch %d/%d: train loss %.4f acc %.4f | test loss %.4f acc %.4f | %.1f s, %.0f img/s\n", ep,
                epochs, st.loss, st.accuracy, ev.loss, ev.accuracy, st.seconds, st.images / (st.seconds + 1e-12));
        if (!isfinite(st.loss)) {
            fprintf(stderr, "fedvim train: the training loss diverged (non-finite); try a smaller --lr\n");
            break;
        }
    }
    int rc = 0;
    if (cn) fv_cuda_net_get_params(cn, net->params); /* the trained model, for --save */
    if (save) {
        char seedbuf[32], epbuf[32];
        snprintf(seedbuf, sizeof seedbuf, "%d", seed);
        snprintf(epbuf, sizeof epbuf, "%d", epochs);
        const char *meta[] = {"model", model, "dataset", dataset, "seed", seedbuf, "epochs", epbuf};
        if (fv_safetensors_save(save, net, meta, 4, &e) != 0) {
            fprintf(stderr, "fedvim train: %s\n", e.msg);
            rc = 1;
        } else {
            fprintf(stderr, "saved %s\n", save);
        }
    }
    if (json) {
        fv_json j;
        fv_json_begin(&j);
        fv_json_str(&j, "model", model);
        fv_json_str(&j, "dataset", dataset);
        fv_json_str(&j, "optimizer", fv_opt_kind_name(kind));
        fv_json_int(&j, "epochs", epochs);
        fv_json_int(&j, "batch", batch);
        fv_json_str(&j, "schedule", schedule);
        fv_json_int(&j, "threads", threads);
        fv_json_str(&j, "device", device);
        fv_json_int(&j, "seed", seed);
        fv_json_int(&j, "parameters", (int64_t)net->n_train);
        fv_json_int(&j, "train_images", tr.n);
        fv_json_num(&j, "train_loss", last_train_loss);
        fv_json_num(&j, "train_accuracy", last_train_acc);
        fv_json_num(&j, "test_accuracy", ev.accuracy);
        fv_json_num(&j, "test_loss", ev.loss);
        fv_json_num(&j, "images_per_second", images / (train_seconds + 1e-12));
        fv_json_num(&j, "seconds", train_seconds);
        if (save) fv_json_str(&j, "saved", save);
        printf("%s\n", fv_json_end(&j));
        fv_json_free(&j);
    }
    fv_cuda_shard_destroy(&ctr);
    fv_cuda_shard_destroy(&cte);
    fv_cuda_net_destroy(&cn);
    fv_opt_destroy(&opt);
    fv_net_destroy(&net);
    fv_dataset_free(&tr);
    fv_dataset_free(&te);
    return rc;
}
