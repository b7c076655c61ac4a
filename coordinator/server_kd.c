/* server_kd.c: see server_kd.h. */
#include "server_kd.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cuda/net.h"
#include "data/synthetic.h"
#include "fv_thread.h"
#include "io/safetensors.h"
#include "nn/layers.h"
#include "nn/models.h"

/* The folders a and b name the same directory (by real path; by text when either cannot be
 * resolved). */
static int same_folder(const char *a, const char *b) {
    char ra[PATH_MAX], rb[PATH_MAX];
    if (realpath(a, ra) && realpath(b, rb)) return strcmp(ra, rb) == 0;
    return strcmp(a, b) == 0;
}

static int prepare_synthetic(const fv_config *c, fv_server_kd *k, fv_err *e) {
    int ch, h, w;
    if (fv_config_synthetic_shape(c->synthetic_shape, &ch, &h, &w) != 0)
        return fv_err_set(e, "[data] synthetic_shape '%s' is not CxHxW", c->synthetic_shape);
    /* split 2: a draw of its own, independent of the clients' (0) and test (1) images */
    fv_synthetic_make(&k->pub, c->kd_images, ch, h, w, c->synthetic_classes, (uint64_t)c->seed, 2);
    return 0;
}

/* The public slice of a named data set into k (k->on set by the caller). */
static int load_public(const fv_config *c, const char *data_dir, fv_server_kd *k, fv_err *e) {
    char run_folder[4096];
    const char *run_dir = data_dir ? data_dir : c->data_dir[0] ? c->data_dir : NULL;
    if (fv_dataset_folder(c->dataset, c->kd_dir[0] ? c->kd_dir : run_dir, k->folder, sizeof k->folder, e) != 0 ||
        fv_dataset_folder(c->dataset, run_dir, run_folder, sizeof run_folder, e) != 0)
        return -1;
    if (fv_dataset_load(c->dataset, k->folder, 1, &k->pub, e) != 0) {
        fv_err inner = *e;
        return fv_err_set(e, "[distill] dir: the public data: %s", inner.msg);
    }
    const int split = k->pub.n;
    if (c->kd_first >= split) {
        fv_server_kd_free(k);
        return fv_err_set(e, "[distill] first = %d, but the training split of %s holds %d images", c->kd_first,
                          k->folder, split);
    }
    const int n = c->kd_images ? c->kd_images : split - c->kd_first;
    if (n > split - c->kd_first) {
        fv_server_kd_free(k);
        return fv_err_set(e, "[distill] images = %d from first = %d is past the end of %s's training split (%d "
                             "images)", c->kd_images, c->kd_first, k->folder, split);
    }
    if (same_folder(k->folder, run_folder)) {
        const int clients_hold = c->train_size ? c->train_size : split;
        if (c->kd_first < clients_hold) {
            fv_server_kd_free(k);
            return fv_err_set(e, "[distill] first = %d: %s is the run's own data folder and its images 0..%d are the "
                                 "clients' (data.train_size); the public images must start at %d or later, or come "
                                 "from another [distill] dir", c->kd_first, k->folder, clients_hold - 1, clients_hold);
        }
    }
    k->first = c->kd_first;
    fv_dataset_range(&k->pub, c->kd_first, n);
    return 0;
}

int fv_server_kd_prepare(const fv_config *c, const char *data_dir, const fv_dataset *run, fv_server_kd *k, fv_err *e) {
    memset(k, 0, sizeof *k);
    if (!c->kd_student[0]) return 0;
    k->on = 1;
    /* the device first: a machine without it fails before any image is read (config.c checked the spelling) */
    if (fv_device_parse(c->kd_device, &k->device, e) != 0 || fv_device_check(k->device, e) != 0) {
        fv_err_prefix(e, "[distill] device = %s: ", c->kd_device);
        k->on = 0;
        return -1;
    }
    if (strcmp(c->dataset, "synthetic") == 0) return prepare_synthetic(c, k, e);
    if (load_public(c, data_dir, k, e) != 0) return -1;
    if (k->pub.c != run->c || k->pub.h != run->h || k->pub.w != run->w || k->pub.classes != run->classes) {
        fv_err_set(e, "[distill] dir: the public images of %s are %dx%dx%d with %d classes, the run's %dx%dx%d with %d",
                   k->folder, k->pub.c, k->pub.h, k->pub.w, k->pub.classes, run->c, run->h, run->w, run->classes);
        fv_server_kd_free(k);
        return -1;
    }
    return 0;
}

typedef struct {
    const fv_config *c;
    fv_server_kd *k;
    fv_net *teacher, *student;
    const fv_dataset *test, *mixed;
    fv_norm norm;
    fv_err e;
} kd_job;

static int kd_job_run(void *arg) {
    kd_job *j = arg;
    const fv_config *c = j->c;
    fv_set_threads(c->threads); /* OpenMP's thread count is per thread */
    fv_opt_cfg oc = fv_opt_defaults(c->kd_optimizer);
    oc.lr = (float)c->kd_lr;
    const fv_kd_cfg kc = {.opt = oc, .T = (float)c->kd_temperature, .alpha = (float)c->kd_alpha,
                          .epochs = c->kd_epochs, .batch = c->kd_batch, .seed = (uint64_t)c->seed, .norm = j->norm,
                          .device = j->k->device};
    if (fv_kd_fit(j->teacher, j->student, &j->k->pub, j->test, &kc, NULL, NULL, &j->k->test, &j->e) != 0) return -1;
    if (j->mixed) fv_kd_compare(j->teacher, j->student, j->mixed, j->norm, &j->k->mixed);
    return 0;
}

int fv_server_kd_run(const fv_config *c, fv_server_kd *k, fv_net *teacher, const fv_dataset *test,
                     const fv_dataset *mixed, fv_norm norm, const char *dir, void (*tick)(void *), void *ctx,
                     fv_err *e) {
    FV_ASSERT(k->on);
    const fv_dataset *p = &k->pub;
    const int outputs = (int)fv_shape_size(fv_net_output_shape(teacher));
    kd_job j = {c, k, NULL, NULL, test, mixed, norm, {{0}}};
    /* the job trains on copies: the coordinator's thread keeps the global model */
    j.teacher = fv_model_new(c->model, (fv_shape){p->c, p->h, p->w}, outputs, (uint64_t)c->seed, e);
    if (!j.teacher) return -1;
    FV_ASSERT(j.teacher->n_params == teacher->n_params); /* same model, same shape (fv_server_kd_prepare) */
    memcpy(j.teacher->params, teacher->params, sizeof(float) * teacher->n_params);
    j.student = fv_model_new(c->kd_student, (fv_shape){p->c, p->h, p->w}, outputs, (uint64_t)c->seed, e);
    if (!j.student) {
        fv_net_destroy(&j.teacher);
        fv_err inner = *e;
        return fv_err_set(e, "[distill] student = %s: %s", c->kd_student, inner.msg);
    }
    fv_net_seed_dropout(j.student, (uint64_t)c->seed * 7919u + 17u);
    int rc = fv_thread_run(kd_job_run, &j, tick, ctx, 0);
    if (rc != 0) fv_err_set(e, "[distill]: %s", j.e.msg);
    if (rc == 0) {
        char path[4200], seed[32];
        snprintf(path, sizeof path, "%s/student.safetensors", dir);
        snprintf(seed, sizeof seed, "%lld", (long long)c->seed);
        const char *meta[] = {"model", c->kd_student, "dataset", c->dataset, "seed", seed, "teacher", "model.safetensors"};
        rc = fv_safetensors_save(path, j.student, meta, 4, e);
    }
    if (rc == 0) {
        k->done = 1;
        k->has_mixed = mixed != NULL;
        k->student_params = j.student->n_train;
    }
    fv_net_destroy(&j.teacher);
    fv_net_destroy(&j.student);
    return rc;
}

void fv_server_kd_json(const fv_config *c, const fv_server_kd *k, fv_json *j) {
    if (!k->done) return;
    fv_json_obj_begin(j, "distill");
    fv_json_str(j, "student", c->kd_student);
    fv_json_int(j, "student_params", (int64_t)k->student_params);
    fv_json_str(j, "public_folder", k->folder);
    fv_json_int(j, "public_first", k->first);
    fv_json_int(j, "public_images", k->pub.n);
    fv_json_int(j, "epochs", c->kd_epochs);
    fv_json_num(j, "temperature", c->kd_temperature);
    fv_json_num(j, "alpha", c->kd_alpha);
    char dev[16];
    fv_json_str(j, "device", fv_device_name(k->device, dev, sizeof dev));
    fv_json_num(j, "teacher_test_accuracy", k->test.teacher_acc);
    fv_json_num(j, "student_test_accuracy", k->test.student_acc);
    fv_json_num(j, "agreement", k->test.agreement);
    if (k->has_mixed) {
        fv_json_num(j, "teacher_test_accuracy_mixed", k->mixed.teacher_acc);
        fv_json_num(j, "student_test_accuracy_mixed", k->mixed.student_acc);
        fv_json_num(j, "agreement_mixed", k->mixed.agreement);
    }
    fv_json_num(j, "distill_loss", k->test.last.loss);
    fv_json_num(j, "seconds", k->test.seconds);
    fv_json_obj_end(j);
}

void fv_server_kd_free(fv_server_kd *k) { fv_dataset_free(&k->pub); }
