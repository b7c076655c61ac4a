/* cmd_train.c: `fedvim train`: central training of one model on one data set, with a progress bar
 * on a terminal, one line per epoch, an optional safetensors checkpoint and a --json summary.
 * Training runs through a trainer (nn/trainer.h) on the CPU or the --device. The flags that set
 * what a config key sets (--lr is [training] lr, ...) take that key's range from the config
 * schema (fv_config_range), so both accept the same values. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cmds.h"
#include "cuda/net.h"
#include "data/data.h"
#include "fl/config.h"
#include "flags.h"
#include "io/json.h"
#include "nn/layers.h"
#include "nn/models.h"
#include "nn/optim.h"
#include "io/safetensors.h"
#include "nn/trainer.h"

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

/* --lr's value when the flag is not given (below its range, so --help shows no default): the
 * optimizer's own default then applies. */
#define LR_NOT_GIVEN (-1.0)

int fv_cmd_train(int argc, char **argv) {
    const char *model = "lenet5", *dataset = "mnist", *data_dir = NULL, *optimizer = "adam", *save = NULL,
               *schedule = "constant", *device = "cpu";
    int epochs = 1, batch = 64, seed = 1, threads = 2, json = 0, limit = 0, test_limit = 0, nesterov = 0, tf32 = 0;
    double lr = LR_NOT_GIVEN, momentum = 0.9, wd = 0, mu = 0, warmup = 0;
    const fv_config_bounds r_batch = fv_config_range("training.batch_size"),
                           r_lr = fv_config_range("training.lr"),
                           r_mom = fv_config_range("training.momentum"),
                           r_wd = fv_config_range("training.weight_decay"),
                           r_mu = fv_config_range("training.stadam_mu"),
                           r_thr = fv_config_range("training.threads"),
                           r_lim = fv_config_range("data.train_size"),
                           r_tlim = fv_config_range("data.test_size");
    char lr_help[96];
    snprintf(lr_help, sizeof lr_help, "learning rate (default: %g for sgd, %g otherwise)",
             (double)fv_opt_defaults(FV_OPT_SGD).lr, (double)fv_opt_defaults(FV_OPT_ADAM).lr);
    char model_help[256] = "model: ";
    fv_model_list(model_help + strlen(model_help), sizeof model_help - strlen(model_help));
    fv_flag flags[] = {
        {"model", FV_FLAG_STRING, &model, model_help, 0, 0},
        {"dataset", FV_FLAG_STRING, &dataset, "data set: mnist, fashion, cmnist (Colored MNIST), cifar10", 0, 0},
        {"data-dir", FV_FLAG_STRING, &data_dir, "folder with the data set's files (default: its standard place)", 0, 0},
        {"epochs", FV_FLAG_INT, &epochs, "training epochs", 1, 10000},
        {"batch", FV_FLAG_INT, &batch, "minibatch size", r_batch.lo, r_batch.hi},
        {"optimizer", FV_FLAG_STRING, &optimizer, "sgd, adam or stadam", 0, 0},
        {"lr", FV_FLAG_FLOAT, &lr, lr_help, r_lr.lo, r_lr.hi},
        {"momentum", FV_FLAG_FLOAT, &momentum, "SGD momentum", r_mom.lo, r_mom.hi},
        {"nesterov", FV_FLAG_BOOL, &nesterov, "SGD with Nesterov momentum", 0, 0},
        {"schedule", FV_FLAG_STRING, &schedule, "learning-rate schedule over the whole run: cosine (decay to 0) or constant", 0, 0},
        {"warmup-epochs", FV_FLAG_FLOAT, &warmup, "linear learning-rate warm-up over this many epochs (fractions allowed; it multiplies the schedule; 0: none)", 0, 10000},
        {"wd", FV_FLAG_FLOAT, &wd, "weight decay", r_wd.lo, r_wd.hi},
        {"mu", FV_FLAG_FLOAT, &mu, "ST-Adam update momentum", r_mu.lo, r_mu.hi},
        {"seed", FV_FLAG_INT, &seed, "seed for initialisation, data order and dropout", 0, 2147483647},
        {"threads", FV_FLAG_INT, &threads, "CPU threads", r_thr.lo, r_thr.hi},
        {"device", FV_FLAG_STRING, &device, "cpu, or cuda[:N]: train on CUDA device N (a CUDA build)", 0, 0},
        {"tf32", FV_FLAG_BOOL, &tf32, "with --device cuda: allow TF32 tensor cores for FP32 products (faster on Ampere and later, about 1e-3 relative error per product; off by default, recorded in --json)", 0, 0},
        {"limit", FV_FLAG_INT, &limit, "use only the first N training images (0: all)", r_lim.lo, r_lim.hi},
        {"test-limit", FV_FLAG_INT, &test_limit, "use only the first N test images (0: all)", r_tlim.lo, r_tlim.hi},
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
    if (tf32 && dev < 0) {
        fprintf(stderr, "fedvim train: --tf32 needs --device cuda[:N]: the CPU has no TF32\n");
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
    fv_opt_cfg oc = fv_opt_defaults(kind);
    if (lr != LR_NOT_GIVEN) oc.lr = (float)lr;
    oc.momentum = (float)momentum;
    oc.nesterov = nesterov;
    oc.wd = (float)wd;
    oc.mu = (float)mu;
    if (fv_opt_cfg_check(&oc, &e) != 0) { /* e.g. --nesterov without momentum */
        fprintf(stderr, "fedvim train: %s\n", e.msg);
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
    const long steps_per_epoch = (tr.n + batch - 1) / batch;
    if (strcmp(schedule, "cosine") == 0) oc.decay_steps = (long)epochs * steps_per_epoch;
    oc.warmup_steps = (long)ceil(warmup * (double)steps_per_epoch);
    /* the trainer holds the model, its optimizer and both data sets (on the GPU with --device cuda)
     * for the run */
    const fv_trainer_cfg tc = {.device = dev, .max_batch = batch, .opt = oc, .norm = fv_norm_for(dataset), .tf32 = tf32};
    int rc = 0;
    fv_trainer *trainer = fv_trainer_new(net, &tc, &e);
    fv_trainer_shard *str = trainer ? fv_trainer_shard_new(trainer) : NULL;
    fv_trainer_shard *ste = trainer ? fv_trainer_shard_new(trainer) : NULL;
    if (!trainer || fv_trainer_shard_load(str, &tr, NULL, 0, &e) != 0 ||
        fv_trainer_shard_load(ste, &te, NULL, 0, &e) != 0) {
        fprintf(stderr, "fedvim train: --device %s: %s\n", device, e.msg);
        rc = 1;
        goto out;
    }
    const fv_trainer_info where = fv_trainer_info_get(trainer);
    fv_rng rng;
    fv_rng_seed2(&rng, (uint64_t)seed, 1);
    fprintf(stderr, "fedvim train: %s on %s (%d train, %d test images, %dx%dx%d), %zu parameters, %s lr %g, "
                    "batch %d, %s\n",
            model, dataset, tr.n, te.n, tr.c, tr.h, tr.w, net->n_train, fv_opt_kind_name(kind), oc.lr, batch,
            where.where);
    progress_ctx pc = {isatty(2), fv_now(), 0, 0, epochs};
    double train_seconds = 0, last_train_loss = 0, last_train_acc = 0;
    long images = 0;
    fv_eval_stats ev = {0};
    double *ep_acc = fv_calloc((size_t)epochs, sizeof *ep_acc), *ep_loss = fv_calloc((size_t)epochs, sizeof *ep_loss);
    int ep_done = 0;
    for (int ep = 1; ep <= epochs; ep++) {
        pc.epoch = ep;
        pc.t0 = fv_now();
        fv_epoch_stats st = fv_trainer_train_epoch(trainer, str, batch, &rng, 0.0f, NULL, NULL, progress, &pc);
        if (pc.tty) fputc('\n', stderr);
        train_seconds += st.seconds;
        images += st.images;
        last_train_loss = st.loss;
        last_train_acc = st.accuracy;
        ev = fv_trainer_evaluate(trainer, ste, 500);
        ep_acc[ep_done] = ev.accuracy, ep_loss[ep_done] = ev.loss, ep_done++;
        fprintf(stderr, "epoch %d/%d: train loss %.4f acc %.4f | test loss %.4f acc %.4f | %.1f s, %.0f img/s\n", ep,
                epochs, st.loss, st.accuracy, ev.loss, ev.accuracy, st.seconds, st.images / (st.seconds + 1e-12));
        if (!isfinite(st.loss)) {
            fprintf(stderr, "fedvim train: the training loss diverged (non-finite); try a smaller --lr\n");
            break;
        }
    }
    fv_trainer_get_params(trainer, net->params); /* the trained model, for --save */
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
        fv_json_num(&j, "warmup_epochs", warmup);
        fv_json_int(&j, "threads", threads);
        fv_json_str(&j, "device", device);
        fv_json_bool(&j, "tf32", tf32);
        if (dev < 0) { /* what decides the CPU's bits beside seed and threads */
            fv_json_str(&j, "cpu_conv", fv_conv_path_name(net->conv_path));
            fv_json_int(&j, "cpu_blocked", where.blocked);
        }
        fv_json_int(&j, "seed", seed);
        fv_json_int(&j, "parameters", (int64_t)net->n_train);
        fv_json_int(&j, "train_images", tr.n);
        fv_json_num(&j, "train_loss", last_train_loss);
        fv_json_num(&j, "train_accuracy", last_train_acc);
        fv_json_num(&j, "test_accuracy", ev.accuracy);
        fv_json_num(&j, "test_loss", ev.loss);
        fv_json_num_array(&j, "epoch_test_accuracy", ep_acc, (size_t)ep_done);
        fv_json_num_array(&j, "epoch_test_loss", ep_loss, (size_t)ep_done);
        fv_json_num(&j, "images_per_second", images / (train_seconds + 1e-12));
        fv_json_num(&j, "seconds", train_seconds);
        if (save) fv_json_str(&j, "saved", save);
        printf("%s\n", fv_json_end(&j));
        fv_json_free(&j);
    }
    free(ep_acc);
    free(ep_loss);
out:
    fv_trainer_shard_destroy(&str);
    fv_trainer_shard_destroy(&ste);
    fv_trainer_destroy(&trainer);
    fv_net_destroy(&net);
    fv_dataset_free(&tr);
    fv_dataset_free(&te);
    return rc;
}
