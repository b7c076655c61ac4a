/* cmd_distill.c: `fedvim distill`: knowledge distillation (Hinton et al. 2015) of a trained
 * teacher (a safetensors file from `fedvim train --save` or a federated run's model.safetensors)
 * into a student model of the zoo, on the student's data set: the teacher's eval-mode logits of
 * every training image are computed once, then the student trains on fv_kd_loss (loss_soft.h).
 * Mixed or plain data on either side is a matter of which folder each was trained on and which
 * folder --data-dir names (`fedvim mix` writes a mixed copy of a data set), so the paper's four
 * teacher/student combinations are four commands (experiments/distill/). Prints the teacher's and
 * the student's test accuracy, their top-1 agreement, and with --eval-data-dir both again on a
 * second test set (for example the plain one when the student learnt from mixed images).
 * --device cuda[:N] trains and evaluates the student on a CUDA device (fv_kd_cfg.device, the
 * trainer's fv_trainer_train_kd_batch); the teacher's logits are computed once on the CPU. */
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
#include "io/safetensors.h"
#include "nn/layers.h"
#include "nn/models.h"
#include "nn/optim.h"
#include "nn/train_soft.h"

/* The teacher: model `name` for d's shape and classes, weights from path. NULL with e set when
 * the model is unknown or the file does not hold exactly that model's tensors. */
static fv_net *load_teacher(const char *name, const char *path, const fv_dataset *d, fv_err *e) {
    fv_net *t = fv_model_new(name, (fv_shape){d->c, d->h, d->w}, d->classes, 1, e);
    if (!t) return NULL;
    if (fv_safetensors_load(path, t, e) != 0) {
        fv_net_destroy(&t);
        return NULL;
    }
    return t;
}

/* The model name a safetensors file records in its "model" metadata (written by fedvim train
 * --save and by federated runs), copied into out; "" when the file has none or cannot be read. */
static void model_of(const char *path, char *out, size_t len) {
    fv_err e = {{0}};
    out[0] = 0;
    fv_st_file *f = fv_st_read(path, &e);
    if (!f) return;
    const char *m = fv_st_meta(f, "model");
    if (m) snprintf(out, len, "%s", m);
    fv_st_file_destroy(&f);
}

/* fv_kd_fit's per-epoch report; ctx: the number of epochs. */
static void print_epoch(void *ctx, int ep, const fv_kd_result *r) {
    fprintf(stderr, "epoch %d/%d: distillation loss %.4f, train acc %.4f | test acc %.4f (teacher %.4f), agreement "
                    "with the teacher %.4f | %.1f s\n", ep, *(const int *)ctx, r->last.loss, r->last.accuracy,
            r->student_acc, r->teacher_acc, r->agreement, r->last.seconds);
}

int fv_cmd_distill(int argc, char **argv) {
    const char *teacher_path = NULL, *teacher_model = NULL, *student = "lenet5", *dataset = "mnist",
               *data_dir = NULL, *eval_dir = NULL, *optimizer = "adam", *save = NULL, *device = "cpu";
    int epochs = 1, batch = 64, seed = 1, threads = 2, json = 0, limit = 0, test_limit = 0;
    double lr = -1, T = 4, alpha = 0.9;
    const fv_config_bounds r_batch = fv_config_range("training.batch_size"), r_lr = fv_config_range("training.lr"),
                           r_thr = fv_config_range("training.threads"), r_lim = fv_config_range("data.train_size"),
                           r_tlim = fv_config_range("data.test_size");
    char student_help[256] = "student model: ";
    fv_model_list(student_help + strlen(student_help), sizeof student_help - strlen(student_help));
    fv_flag flags[] = {
        {"teacher", FV_FLAG_STRING, &teacher_path, "the trained teacher's safetensors file (required)", 0, 0},
        {"teacher-model", FV_FLAG_STRING, &teacher_model, "the teacher's model (default: the file's \"model\" metadata)", 0, 0},
        {"student", FV_FLAG_STRING, &student, student_help, 0, 0},
        {"dataset", FV_FLAG_STRING, &dataset, "data set: mnist, fashion, cmnist (Colored MNIST), cifar10", 0, 0},
        {"data-dir", FV_FLAG_STRING, &data_dir, "the student's data (plain or a `fedvim mix` output; default: the data set's standard place)", 0, 0},
        {"eval-data-dir", FV_FLAG_STRING, &eval_dir, "also report both models' accuracy on this folder's test split", 0, 0},
        {"temperature", FV_FLAG_FLOAT, &T, "softmax temperature T of the soft targets", 0.05, 100},
        {"alpha", FV_FLAG_FLOAT, &alpha, "weight of the soft (teacher) term; 1 - alpha weighs the labels", 0, 1},
        {"epochs", FV_FLAG_INT, &epochs, "training epochs of the student", 1, 10000},
        {"batch", FV_FLAG_INT, &batch, "minibatch size", r_batch.lo, r_batch.hi},
        {"optimizer", FV_FLAG_STRING, &optimizer, "sgd, adam or stadam", 0, 0},
        {"lr", FV_FLAG_FLOAT, &lr, "learning rate (default: the optimizer's)", r_lr.lo, r_lr.hi},
        {"seed", FV_FLAG_INT, &seed, "seed of the student's initialisation, data order and dropout", 0, 2147483647},
        {"threads", FV_FLAG_INT, &threads, "CPU threads", r_thr.lo, r_thr.hi},
        {"limit", FV_FLAG_INT, &limit, "use only the first N training images (0: all)", r_lim.lo, r_lim.hi},
        {"test-limit", FV_FLAG_INT, &test_limit, "use only the first N test images (0: all)", r_tlim.lo, r_tlim.hi},
        {"save", FV_FLAG_STRING, &save, "write the student to this safetensors file", 0, 0},
        {"device", FV_FLAG_STRING, &device, "cpu, or cuda[:N]: train and evaluate the student on CUDA device N (a CUDA build; the teacher's logits stay on the CPU)", 0, 0},
        {"json", FV_FLAG_BOOL, &json, "print one JSON summary object last on stdout", 0, 0},
    };
    const int nf = sizeof flags / sizeof flags[0];
    const char *pos[1];
    int npos;
    fv_err e = {{0}};
    int r = fv_flags_parse("distill", "--teacher FILE [flags]", flags, nf, argc, argv, pos, 0, &npos, &e);
    if (r == 1) return 0;
    if (r < 0) {
        fprintf(stderr, "%s\n", e.msg);
        return 2;
    }
    if (!teacher_path) {
        fprintf(stderr, "fedvim distill: --teacher FILE is required (a model from fedvim train --save)\n");
        return 2;
    }
    if (access(teacher_path, R_OK) != 0) {
        fprintf(stderr, "fedvim distill: --teacher %s: cannot read the file\n", teacher_path);
        return 2;
    }
    char recorded[64];
    model_of(teacher_path, recorded, sizeof recorded);
    if (!teacher_model) {
        if (!recorded[0]) {
            fprintf(stderr, "fedvim distill: --teacher %s records no model name; give --teacher-model\n", teacher_path);
            return 2;
        }
        teacher_model = recorded;
    }
    int dev = -1;
    if (fv_device_parse(device, &dev, &e) != 0) {
        fprintf(stderr, "fedvim distill: %s\n", e.msg);
        return 2;
    }
    fv_opt_kind kind;
    if (fv_opt_parse_kind(optimizer, &kind, &e) != 0) {
        fprintf(stderr, "fedvim distill: --optimizer: %s\n", e.msg);
        return 2;
    }
    fv_opt_cfg oc = fv_opt_defaults(kind);
    if (lr > 0) oc.lr = (float)lr;
    if (fv_opt_cfg_check(&oc, &e) != 0) {
        fprintf(stderr, "fedvim distill: %s\n", e.msg);
        return 2;
    }
    if (fv_device_check(dev, &e) != 0) { /* before the data load and the teacher's logits */
        fprintf(stderr, "fedvim distill: --device %s: %s\n", device, e.msg);
        return 2;
    }
    fv_set_threads(threads);
    fv_dataset tr = {0}, te = {0}, te2 = {0};
    fv_net *tnet = NULL, *snet = NULL;
    int rc = 1;
    if (fv_dataset_load(dataset, data_dir, 1, &tr, &e) != 0 || fv_dataset_load(dataset, data_dir, 0, &te, &e) != 0 ||
        (eval_dir && fv_dataset_load(dataset, eval_dir, 0, &te2, &e) != 0)) {
        fprintf(stderr, "fedvim distill: %s\n", e.msg);
        goto out;
    }
    if (limit > 0 && limit < tr.n) fv_dataset_truncate(&tr, limit);
    if (test_limit > 0 && test_limit < te.n) fv_dataset_truncate(&te, test_limit);
    if (eval_dir && test_limit > 0 && test_limit < te2.n) fv_dataset_truncate(&te2, test_limit);
    if (!(tnet = load_teacher(teacher_model, teacher_path, &tr, &e))) {
        fprintf(stderr, "fedvim distill: --teacher %s (model %s): %s\n", teacher_path, teacher_model, e.msg);
        rc = 2;
        goto out;
    }
    if (!(snet = fv_model_new(student, (fv_shape){tr.c, tr.h, tr.w}, tr.classes, (uint64_t)seed, &e))) {
        fprintf(stderr, "fedvim distill: --student: %s\n", e.msg);
        rc = 2;
        goto out;
    }
    fv_net_seed_dropout(snet, (uint64_t)seed * 7919u + 17u);
    const fv_kd_cfg kc = {.opt = oc, .T = (float)T, .alpha = (float)alpha, .epochs = epochs, .batch = batch,
                          .seed = (uint64_t)seed, .norm = fv_norm_for(dataset), .device = dev};
    fprintf(stderr, "fedvim distill: teacher %s (%s, %zu parameters), student %s (%zu parameters) on %s (%d train "
                    "images, %d test images), T %g, alpha %g, %s lr %g, batch %d, %d threads, student on %s\n",
            teacher_model, teacher_path, tnet->n_train, student, snet->n_train, dataset, tr.n, te.n, T, alpha,
            fv_opt_kind_name(kind), oc.lr, batch, threads, device);
    fv_kd_result res;
    if (fv_kd_fit(tnet, snet, &tr, &te, &kc, print_epoch, &epochs, &res, &e) != 0) {
        fprintf(stderr, "fedvim distill: %s\n", e.msg);
        goto out;
    }
    fv_kd_result res2 = {0};
    if (eval_dir) {
        fv_kd_compare(tnet, snet, &te2, kc.norm, &res2);
        fprintf(stderr, "on %s: teacher %.4f, student %.4f, agreement %.4f\n", eval_dir, res2.teacher_acc,
                res2.student_acc, res2.agreement);
    }
    rc = 0;
    if (save) {
        char seedbuf[32];
        snprintf(seedbuf, sizeof seedbuf, "%d", seed);
        const char *meta[] = {"model", student, "dataset", dataset, "seed", seedbuf, "teacher", teacher_path};
        if (fv_safetensors_save(save, snet, meta, 4, &e) != 0) {
            fprintf(stderr, "fedvim distill: %s\n", e.msg);
            rc = 1;
        }
    }
    if (json) {
        fv_json j;
        fv_json_begin(&j);
        fv_json_str(&j, "teacher", teacher_path);
        fv_json_str(&j, "teacher_model", teacher_model);
        fv_json_str(&j, "student", student);
        fv_json_str(&j, "dataset", dataset);
        fv_json_str(&j, "data_dir", data_dir ? data_dir : "");
        fv_json_num(&j, "temperature", T);
        fv_json_num(&j, "alpha", alpha);
        fv_json_int(&j, "epochs", epochs);
        fv_json_int(&j, "batch", batch);
        fv_json_str(&j, "optimizer", fv_opt_kind_name(kind));
        fv_json_num(&j, "lr", oc.lr);
        fv_json_int(&j, "seed", seed);
        fv_json_int(&j, "threads", threads);
        fv_json_str(&j, "device", device);
        fv_json_int(&j, "train_images", tr.n);
        fv_json_int(&j, "test_images", te.n);
        fv_json_num(&j, "teacher_test_accuracy", res.teacher_acc);
        fv_json_num(&j, "student_test_accuracy", res.student_acc);
        fv_json_num(&j, "agreement", res.agreement);
        fv_json_num(&j, "distill_loss", res.last.loss);
        fv_json_num(&j, "seconds", res.seconds);
        if (eval_dir) {
            fv_json_str(&j, "eval_data_dir", eval_dir);
            fv_json_num(&j, "eval_teacher_accuracy", res2.teacher_acc);
            fv_json_num(&j, "eval_student_accuracy", res2.student_acc);
            fv_json_num(&j, "eval_agreement", res2.agreement);
        }
        if (save) fv_json_str(&j, "saved", save);
        printf("%s\n", fv_json_end(&j));
        fv_json_free(&j);
    }
out:
    fv_net_destroy(&tnet);
    fv_net_destroy(&snet);
    fv_dataset_free(&tr);
    fv_dataset_free(&te);
    fv_dataset_free(&te2);
    return rc;
}
