/* cmd_obfuscate.c: `fedvim obfuscate`: the baseline obfuscations of obfuscate.h (Gaussian noise,
 * InstaHide) and the experimental window allocation of vmix_alloc.h (uniform windows of any size,
 * keyed from --seed) applied to a data set and written in MNIST's IDX layout, like `fedvim mix`, so that
 * `fedvim train --data-dir OUT`, `fedvim vfe --data-dir OUT` and `fedvim attack dlg --data-dir OUT`
 * read it; and `fedvim obfuscate train`, central training against InstaHide's soft labels.
 * Output folder: {train,t10k}-{images-idx3,labels-idx1}-ubyte, preview.png (originals above their
 * obfuscated versions), and for InstaHide {train,t10k}-soft-labels.fvsl (the mixed labels; the IDX
 * label of a mixed image is the class with the largest coefficient).
 * Not here: the obfuscations themselves (shared/vmix/obfuscate.c), VisualMixer (`fedvim mix`).
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cmds.h"
#include "data/data.h"
#include "flags.h"
#include "io/json.h"
#include "nn/layers.h"
#include "metrics.h"
#include "nn/models.h"
#include "vmix/obfuscate.h"
#include "nn/optim.h"
#include "io/png_io.h"
#include "nn/train.h"
#include "nn/train_soft.h"
#include "vmix/vmix_alloc.h"
#include "vmix_cli.h"

#define TEST_SEED_OFFSET 0x5eed7e57u /* the test split draws from seed + this: never the train streams */

static int write_preview(const char *path, const fv_dataset *orig, const fv_dataset *obf, int count, fv_err *e) {
    int n = count < orig->n ? count : orig->n;
    if (n < 1) return 0;
    const uint8_t **imgs = fv_malloc((size_t)2 * n * sizeof *imgs);
    size_t per = (size_t)orig->c * orig->h * orig->w;
    for (int i = 0; i < n; i++) { /* first row: originals; second row: obfuscated */
        imgs[i] = orig->x + i * per;
        imgs[n + i] = obf->x + i * per;
    }
    int rc = fv_png_grid(path, imgs, 2 * n, orig->c, orig->h, orig->w, n, e);
    free(imgs);
    return rc;
}

/* SSIM of the first n images of a against b, on [0, 1] pixels: mean, min, max into the JSON. */
static int ssim_json(fv_json *j, const fv_dataset *a, const fv_dataset *b, int n, fv_err *e) {
    if (n > a->n) n = a->n;
    if (n < 1) return 0;
    size_t per = (size_t)a->c * a->h * a->w;
    float *fa = fv_malloc(per * sizeof(float)), *fb = fv_malloc(per * sizeof(float));
    double sum = 0, mn = INFINITY, mx = -INFINITY;
    int rc = 0;
    for (int i = 0; i < n && rc == 0; i++) {
        for (size_t p = 0; p < per; p++) {
            fa[p] = a->x[i * per + p] / 255.0f;
            fb[p] = b->x[i * per + p] / 255.0f;
        }
        double s;
        rc = fv_ssim(&s, fa, fb, a->c, a->h, a->w, e);
        sum += s;
        mn = s < mn ? s : mn;
        mx = s > mx ? s : mx;
    }
    free(fa);
    free(fb);
    if (rc) return -1;
    fv_json_obj_begin(j, "ssim_to_original");
    fv_json_int(j, "images", n);
    fv_json_num(j, "mean", sum / n);
    fv_json_num(j, "min", mn);
    fv_json_num(j, "max", mx);
    fv_json_obj_end(j);
    return 0;
}

/* Obfuscate d into out (same shape and labels; out->x fresh). soft: InstaHide's labels (or NULL
 * for noise; caller frees). */
static int obfuscate(fv_dataset *out, float **soft, const fv_dataset *d, const char *method, double sigma,
                     const fv_instahide_cfg *ic, int ws, uint64_t seed, int split, fv_err *e) {
    size_t bytes = (size_t)d->n * d->c * d->h * d->w;
    *out = *d;
    out->x = fv_malloc(bytes ? bytes : 1);
    out->y = fv_malloc(d->n ? (size_t)d->n : 1);
    memcpy(out->y, d->y, (size_t)d->n);
    *soft = NULL;
    if (strcmp(method, "noise") == 0) {
        if (fv_obf_noise(out->x, d, sigma, seed, e) == 0) return 0;
    } else if (strcmp(method, "shuffle") == 0) {
        size_t isz = (size_t)d->c * d->h * d->w;
        int bad = 0;
#pragma omp parallel for schedule(static) reduction(| : bad)
        for (int i = 0; i < d->n; i++) {
            uint8_t key[FV_VMIX_ALLOC_KEY_BYTES];
            fv_err ei = {{0}};
            fv_vmix_alloc_seed_key(key, seed, split, (uint64_t)i);
            bad |= fv_vmix_alloc_uniform(out->x + i * isz, d->x + i * isz, d->c, d->h, d->w, ws, key, &ei) != 0;
        }
        if (!bad) return 0;
        fv_err_set(e, "shuffle: --ws must be >= 1 (got %d)", ws);
    } else {
        *soft = fv_malloc((size_t)(d->n ? d->n : 1) * d->classes * sizeof(float));
        if (fv_obf_instahide(out->x, *soft, NULL, NULL, d, ic, seed, e) == 0) {
            for (int i = 0; i < d->n; i++) { /* IDX label: the largest coefficient's class */
                const float *s = *soft + (size_t)i * d->classes;
                int a = 0;
                for (int c = 1; c < d->classes; c++)
                    if (s[c] > s[a]) a = c;
                out->y[i] = (uint8_t)a;
            }
            return 0;
        }
        free(*soft);
        *soft = NULL;
    }
    fv_dataset_free(out);
    return -1;
}

static int cmd_train_soft(int argc, char **argv);

int fv_cmd_obfuscate(int argc, char **argv) {
    if (argc >= 2 && strcmp(argv[1], "train") == 0) return cmd_train_soft(argc - 1, argv + 1);
    const char *method = NULL, *dataset = "mnist", *data_dir = NULL, *split = "both", *out = NULL;
    double sigma = -1, upper = -1;
    int k = 2, ws = 0, seed = 1, limit = 0, test_limit = 0, preview = 16, ssim_images = 100, no_flip = 0, json = 0,
        threads = 0;
    fv_flag flags[] = {
        {"method", FV_FLAG_STRING, &method,
         "noise (Gaussian, --sigma), instahide (--k) or shuffle (uniform windows of any size --ws; experiment keys "
         "from --seed) (required)", 0, 0},
        {"sigma", FV_FLAG_FLOAT, &sigma, "noise: standard deviation on [0, 1] pixels (required for noise)", 0, 0},
        {"ws", FV_FLAG_INT, &ws, "shuffle: window size (any integer >= 1; uniform windows, see vmix_alloc.h)", 1, 4096},
        {"k", FV_FLAG_INT, &k, "instahide: images per mixture (the private image and k - 1 others of the set)", 1,
         FV_OBF_INSTAHIDE_KMAX},
        {"upper", FV_FLAG_FLOAT, &upper, "instahide: bound on every coefficient (default 0.65; 1 for k = 1)", 0, 0},
        {"no-sign-flip", FV_FLAG_BOOL, &no_flip, "instahide: mix only, no random pixel signs (ablation)", 0, 0},
        {"dataset", FV_FLAG_STRING, &dataset, "data set: mnist, fashion, cmnist, cifar10", 0, 0},
        {"data-dir", FV_FLAG_STRING, &data_dir, "folder with the data set's files (default: its standard place)", 0, 0},
        {"split", FV_FLAG_STRING, &split, "train, test or both", 0, 0},
        {"limit", FV_FLAG_INT, &limit, "only the first N training images (0: all)", 0, 100000000},
        {"test-limit", FV_FLAG_INT, &test_limit, "only the first N test images (0: all)", 0, 100000000},
        {"seed", FV_FLAG_INT, &seed, "seed of the noise / mixtures (the test split uses its own streams)", 0,
         2147483647},
        {"out", FV_FLAG_STRING, &out, "output folder (required)", 0, 0},
        {"preview", FV_FLAG_INT, &preview, "images in preview.png (0: none)", 0, 64},
        {"ssim-images", FV_FLAG_INT, &ssim_images, "SSIM to the original over the first N images of each split", 0,
         100000000},
        {"threads", FV_FLAG_INT, &threads, "threads (0: all cores; output does not depend on it)", 0, 1024},
        {"json", FV_FLAG_BOOL, &json, "print one JSON object last on stdout", 0, 0},
    };
    const int nf = sizeof flags / sizeof flags[0];
    const char *pos[1];
    int npos;
    fv_err e = {{0}};
    int r = fv_flags_parse("obfuscate", "--method noise|instahide|shuffle --out DIR [flags]\n"
                                        "       fedvim obfuscate train --data-dir DIR [flags]   (soft-label training)",
                           flags, nf, argc, argv, pos, 0, &npos, &e);
    if (r == 1) return 0;
    if (r < 0) {
        fprintf(stderr, "%s\n", e.msg);
        return 2;
    }
    if (!method || (strcmp(method, "noise") != 0 && strcmp(method, "instahide") != 0 && strcmp(method, "shuffle") != 0)) {
        fprintf(stderr, "fedvim obfuscate: --method must be noise, instahide or shuffle%s%s\n", method ? ", not " : "",
                method ? method : "");
        return 2;
    }
    if (!out) {
        fprintf(stderr, "fedvim obfuscate: --out DIR is required\n");
        return 2;
    }
    int noise = strcmp(method, "noise") == 0;
    if (noise && !(sigma >= 0.0 && sigma <= 1e6)) {
        fprintf(stderr, "fedvim obfuscate: --method noise needs --sigma S with 0 <= S (pixels on [0, 1])\n");
        return 2;
    }
    if (strcmp(method, "shuffle") == 0 && ws < 1) {
        fprintf(stderr, "fedvim obfuscate: --method shuffle needs --ws N (window size >= 1)\n");
        return 2;
    }
    if (!noise && sigma >= 0.0) {
        fprintf(stderr, "fedvim obfuscate: --sigma applies to --method noise only\n");
        return 2;
    }
    fv_instahide_cfg ic = fv_instahide_defaults(k);
    if (upper >= 0) ic.upper = upper;
    ic.sign_flip = !no_flip;
    int do_train = strcmp(split, "train") == 0 || strcmp(split, "both") == 0;
    int do_test = strcmp(split, "test") == 0 || strcmp(split, "both") == 0;
    if (!do_train && !do_test) {
        fprintf(stderr, "fedvim obfuscate: --split must be train, test or both, not %s\n", split);
        return 2;
    }
    if (threads > 0) fv_set_threads(threads);
    if (fv_mkdirs(out, &e)) {
        fprintf(stderr, "fedvim obfuscate: --out %s: %s\n", out, e.msg);
        return 1;
    }
    fv_json j;
    fv_json_begin(&j);
    fv_json_str(&j, "method", method);
    if (noise) {
        fv_json_num(&j, "sigma", sigma);
    } else if (strcmp(method, "shuffle") == 0) {
        fv_json_int(&j, "ws", ws);
        fv_json_str(&j, "keys", "experiment keys from --seed (vmix_alloc.h)");
    } else {
        fv_json_int(&j, "k", k);
        fv_json_num(&j, "upper", ic.upper);
        fv_json_bool(&j, "sign_flip", ic.sign_flip);
        fv_json_str(&j, "mixing_pool", "private set (the same split)");
    }
    fv_json_str(&j, "dataset", dataset);
    fv_json_int(&j, "seed", seed);
    int rc = 0;
    double t0 = fv_now();
    for (int s = 0; s < 2 && rc == 0; s++) {
        int train = s == 0;
        if (train ? !do_train : !do_test) continue;
        const char *name = train ? "train" : "t10k";
        fv_dataset d = {0}, o = {0};
        float *soft = NULL;
        uint64_t sd = (uint64_t)seed + (train ? 0 : TEST_SEED_OFFSET);
        if (fv_vmixcli_load_dataset(&d, dataset, data_dir, train, train ? limit : test_limit, &e) ||
            obfuscate(&o, &soft, &d, method, sigma, &ic, ws, sd, train ? 0 : 1, &e) || fv_mnist_write(out, train, &o, &e)) {
            rc = -1;
        } else {
            char path[4096];
            snprintf(path, sizeof path, "%s/%s-soft-labels.fvsl", out, name);
            if (soft) {
                rc = fv_soft_labels_write(path, soft, o.n, o.classes, &e);
            } else if (unlink(path) != 0 && errno != ENOENT) { /* never leave stale labels beside new images */
                rc = fv_err_set(&e, "%s: cannot remove the stale soft-label file: %s", path, strerror(errno));
            }
            if (rc == 0 && preview > 0 && !train) {
                snprintf(path, sizeof path, "%s/preview.png", out);
                rc = write_preview(path, &d, &o, preview, &e);
            }
            if (rc == 0) {
                fv_json_obj_begin(&j, train ? "train" : "test");
                fv_json_int(&j, "images", o.n);
                if (ssim_json(&j, &d, &o, ssim_images, &e)) rc = -1;
                fv_json_obj_end(&j);
            }
            if (rc == 0 && !train && ssim_json(&j, &d, &o, ssim_images, &e)) rc = -1; /* top level: the test split's */
        }
        free(soft);
        fv_dataset_free(&d);
        fv_dataset_free(&o);
    }
    if (rc != 0) {
        fprintf(stderr, "fedvim obfuscate: %s\n", e.msg);
        fv_json_free(&j);
        return 1;
    }
    fv_json_num(&j, "seconds", fv_now() - t0);
    fv_json_str(&j, "out", out);
    fprintf(stderr, "fedvim obfuscate: %s written to %s (%.1f s)\n", method, out, fv_now() - t0);
    if (json) printf("%s\n", fv_json_end(&j));
    fv_json_free(&j);
    return 0;
}

/* `fedvim obfuscate train`: like `fedvim train`, but the training targets are the soft labels
 * written beside the IDX files; evaluation on the clean test split of --dataset (Huang et al.
 * test InstaHide's models on clean images), or on --test-dir's test split. */
static int cmd_train_soft(int argc, char **argv) {
    const char *model = "lenet5", *dataset = "mnist", *data_dir = NULL, *test_dir = NULL, *optimizer = "adam";
    int epochs = 1, batch = 64, seed = 1, threads = 2, json = 0, limit = 0, test_limit = 0;
    double lr = -1;
    char model_help[256] = "model: ";
    fv_model_list(model_help + strlen(model_help), sizeof model_help - strlen(model_help));
    fv_flag flags[] = {
        {"data-dir", FV_FLAG_STRING, &data_dir, "folder written by fedvim obfuscate --method instahide (required)", 0,
         0},
        {"model", FV_FLAG_STRING, &model, model_help, 0, 0},
        {"dataset", FV_FLAG_STRING, &dataset, "the data set obfuscated (normalisation, clean test split)", 0, 0},
        {"test-dir", FV_FLAG_STRING, &test_dir, "folder of the test split (default: the data set's standard place)",
         0, 0},
        {"epochs", FV_FLAG_INT, &epochs, "training epochs", 1, 10000},
        {"batch", FV_FLAG_INT, &batch, "minibatch size", 1, 65536},
        {"optimizer", FV_FLAG_STRING, &optimizer, "sgd, adam or stadam", 0, 0},
        {"lr", FV_FLAG_FLOAT, &lr, "learning rate (default: 0.01 for sgd, 1e-3 otherwise)", 0, 0},
        {"seed", FV_FLAG_INT, &seed, "seed for initialisation and data order", 0, 2147483647},
        {"threads", FV_FLAG_INT, &threads, "CPU threads", 1, 1024},
        {"limit", FV_FLAG_INT, &limit, "use only the first N training images (0: all)", 0, 100000000},
        {"test-limit", FV_FLAG_INT, &test_limit, "use only the first N test images (0: all)", 0, 100000000},
        {"json", FV_FLAG_BOOL, &json, "print one JSON summary object last on stdout", 0, 0},
    };
    const int nf = sizeof flags / sizeof flags[0];
    const char *pos[1];
    int npos;
    fv_err e = {{0}};
    int r = fv_flags_parse("obfuscate train", "--data-dir DIR [flags]", flags, nf, argc, argv, pos, 0, &npos, &e);
    if (r == 1) return 0;
    if (r < 0) {
        fprintf(stderr, "%s\n", e.msg);
        return 2;
    }
    if (!data_dir) {
        fprintf(stderr, "fedvim obfuscate train: --data-dir DIR is required\n");
        return 2;
    }
    fv_opt_kind kind;
    if (fv_opt_parse_kind(optimizer, &kind, &e) != 0) {
        fprintf(stderr, "fedvim obfuscate train: --optimizer: %s\n", e.msg);
        return 2;
    }
    fv_set_threads(threads);
    fv_dataset tr = {0}, te = {0};
    float *soft = NULL;
    int sn = 0, sk = 0;
    char path[4096];
    snprintf(path, sizeof path, "%s/train-soft-labels.fvsl", data_dir);
    if (fv_vmixcli_load_dataset(&tr, dataset, data_dir, 1, 0, &e) ||
        fv_vmixcli_load_dataset(&te, dataset, test_dir, 0, test_limit, &e) ||
        fv_soft_labels_read(path, &soft, &sn, &sk, &e)) {
        fprintf(stderr, "fedvim obfuscate train: %s\n", e.msg);
        fv_dataset_free(&tr);
        fv_dataset_free(&te);
        return 1;
    }
    /* The obfuscated test split beside the training images (labels: the largest coefficient's
     * class), when present: accuracy on it is reported too. */
    fv_dataset te2 = {0};
    fv_err e2 = {{0}};
    int have_enc = fv_vmixcli_load_dataset(&te2, dataset, data_dir, 0, test_limit, &e2) == 0;
    if (sn != tr.n || sk != tr.classes) {
        fprintf(stderr, "fedvim obfuscate train: %s holds %d x %d labels but %s has %d images of %d classes\n", path,
                sn, sk, data_dir, tr.n, tr.classes);
        free(soft);
        fv_dataset_free(&tr);
        fv_dataset_free(&te);
        fv_dataset_free(&te2);
        return 1;
    }
    if (limit > 0 && limit < tr.n) fv_dataset_truncate(&tr, limit);
    fv_net *net = fv_model_new(model, (fv_shape){tr.c, tr.h, tr.w}, tr.classes, (uint64_t)seed, &e);
    if (!net) {
        fprintf(stderr, "fedvim obfuscate train: %s\n", e.msg);
        free(soft);
        fv_dataset_free(&tr);
        fv_dataset_free(&te);
        fv_dataset_free(&te2);
        return 2;
    }
    fv_net_seed_dropout(net, (uint64_t)seed * 7919u + 17u);
    fv_opt_cfg oc = fv_opt_defaults(kind);
    if (lr > 0) oc.lr = (float)lr;
    fv_opt *opt = fv_opt_new(&oc, net->n_train);
    fv_norm norm = fv_norm_for(dataset);
    fv_rng rng;
    fv_rng_seed2(&rng, (uint64_t)seed, 1);
    fprintf(stderr, "fedvim obfuscate train: %s on %s with soft labels (%d train, %d test images), %s lr %g\n",
            model, data_dir, tr.n, te.n, fv_opt_kind_name(kind), oc.lr);
    double secs = 0, tl = 0, ta = 0;
    long images = 0;
    fv_eval_stats ev = {0}, ev2 = {0};
    for (int ep = 1; ep <= epochs; ep++) {
        fv_epoch_stats st = fv_train_epoch_soft(net, opt, &tr, soft, sk, batch, norm, &rng, NULL, NULL);
        secs += st.seconds;
        images += st.images;
        tl = st.loss;
        ta = st.accuracy;
        ev = fv_evaluate(net, &te, NULL, te.n, 500, norm);
        if (have_enc) ev2 = fv_evaluate(net, &te2, NULL, te2.n, 500, norm);
        fprintf(stderr, "epoch %d/%d: train loss %.4f acc %.4f | test loss %.4f acc %.4f | obfuscated test acc %s%.4f | "
                        "%.1f s\n", ep, epochs, st.loss, st.accuracy, ev.loss, ev.accuracy, have_enc ? "" : "(none) ",
                have_enc ? ev2.accuracy : 0.0, st.seconds);
        if (!isfinite(st.loss)) {
            fprintf(stderr, "fedvim obfuscate train: the training loss diverged (non-finite); try a smaller --lr\n");
            break;
        }
    }
    if (json) {
        fv_json j;
        fv_json_begin(&j);
        fv_json_str(&j, "model", model);
        fv_json_str(&j, "data_dir", data_dir);
        fv_json_str(&j, "labels", "soft");
        fv_json_str(&j, "optimizer", fv_opt_kind_name(kind));
        fv_json_int(&j, "epochs", epochs);
        fv_json_int(&j, "batch", batch);
        fv_json_int(&j, "seed", seed);
        fv_json_int(&j, "train_images", tr.n);
        fv_json_num(&j, "train_loss", tl);
        fv_json_num(&j, "train_accuracy", ta);
        fv_json_num(&j, "test_accuracy", ev.accuracy);
        fv_json_num(&j, "test_loss", ev.loss);
        fv_json_str(&j, "test_images", test_dir ? "test split of --test-dir" : "clean test split of --dataset");
        if (have_enc) {
            fv_json_num(&j, "test_accuracy_obfuscated", ev2.accuracy); /* against the largest coefficient's class */
            fv_json_int(&j, "test_images_obfuscated", te2.n);
        }
        fv_json_num(&j, "images_per_second", images / (secs + 1e-12));
        fv_json_num(&j, "seconds", secs);
        printf("%s\n", fv_json_end(&j));
        fv_json_free(&j);
    }
    fv_opt_destroy(&opt);
    fv_net_destroy(&net);
    free(soft);
    fv_dataset_free(&tr);
    fv_dataset_free(&te);
    fv_dataset_free(&te2);
    return 0;
}
