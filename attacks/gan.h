/* gan.h: the GAN leakage attacker (Hitaj, Ateniese, Perez-Cruz, CCS 2017), as
 * docs/attacks.md section 1 describes.
 *
 * Passive (server side): the victim's uploaded model is a FIXED discriminator D; a generator G
 * (dense to ch1 x h/4 x w/4, [batch norm,] ReLU, then twice nearest-neighbour upsampling x2 +
 * 3x3 convolution, [batch norm,] ReLU between and a sigmoid at the end; Adam) is trained so that D(G(z)) is classified as the
 * target class: minimise the cross-entropy of that label over batches of noise z ~ N(0, I).
 * Optional extras, off by default and logged when on: a total-variation prior on G's images, an
 * image-norm prior, a diversity term (minus the mean squared distance between neighbouring
 * samples of a batch), and random jitter (shifts) of G's images before D.
 *
 * Active (Hitaj's original, as a participating client): the attacker's local update also trains
 * on G's samples labelled with an extra "fake" class, so the shared model (classes + 1 outputs)
 * is pushed to separate class c from what G produces, and the victim reveals more of class c.
 *
 * The generator is built from two shared/nn/net.h graphs (dense part, convolutional part) chained
 * through their input gradients, since net.h has no reshape node.
 * Not here: the oracle classifier (oracle.h), image metrics (attacks/metrics.h), the federated
 * rounds (coordinator/, worker/).
 */
#ifndef FV_GAN_H
#define FV_GAN_H
#include <stdint.h>

#include "data/data.h"
#include "fv_common.h"
#include "nn/net.h"

typedef struct {
    int nz;       /* noise dimension (default 100) */
    int ch1, ch2; /* channels after the dense layer and after the first convolution (128, 64) */
    int bn;       /* 1: batch norm after the dense layer and the first convolution (DCGAN habit;
                     default 1). Samples are drawn with the running statistics. */
} fv_gen_arch;

fv_gen_arch fv_gen_arch_default(void);

typedef struct fv_gan fv_gan;

/* A generator for images of shape img (c 1..4, h and w multiples of 4, >= 8). Caller owns the
 * result (fv_gan_destroy). Returns NULL with e set for an impossible shape or architecture. */
FV_MUST_USE fv_gan *fv_gan_new(fv_shape img, const fv_gen_arch *a, uint64_t seed, fv_err *e);
void fv_gan_destroy(fv_gan **g);

typedef struct {
    int target;      /* class c the attacker aims at */
    int steps;       /* generator steps (default 1000) */
    int batch;       /* noise samples per step (default 64) */
    float lr;        /* Adam step (default 1e-3) */
    float tv;        /* weight of the total-variation prior, per image (0: off) */
    float diversity; /* weight of the diversity term (0: off) */
    float l2;        /* weight of an image-norm prior: mean over pixels of the normalised image
                        squared ((x - mean) / std)^2, pulling pixels toward the data mean
                        (Mahendran & Vedaldi's alpha-norm prior with alpha 2; 0: off) */
    int jitter;      /* each sample is shifted by a random offset in [-jitter, jitter]^2 (zero
                        fill) before D, a standard model-inversion prior (0: off) */
    fv_norm norm;    /* D's input normalisation: G's [0, 1] images are normalised before D */
    uint64_t seed;   /* noise stream */
    int verbose;     /* progress to stderr every 100 steps */
} fv_gan_cfg;

fv_gan_cfg fv_gan_cfg_default(void);

typedef struct {
    double ce;       /* mean cross-entropy over the last 10% of the steps */
    double p_target; /* D's mean probability of the target class on the last batch */
    double d_hits;   /* fraction of the last batch D assigns to the target */
    double seconds;
    int steps;
} fv_gan_stats;

/* Train G against D for cfg->steps steps. D's parameters are not changed (its gradients buffer
 * is overwritten; batch-norm running statistics, if any, are restored after every step since
 * backward needs batch statistics there). D must output more than cfg->target classes and take
 * G's image shape. Returns 0, or -1 with e set. */
FV_MUST_USE int fv_gan_train(fv_gan *g, fv_net *D, const fv_gan_cfg *cfg, fv_gan_stats *st, fv_err *e);

/* n samples out[n, c, h, w] in [0, 1] from noise drawn with seed (G in evaluation mode). */
void fv_gan_sample(fv_gan *g, float *out, int n, uint64_t seed);

/* A one-line description of G and of what is on (TV prior, diversity) for logs: writes buf. */
void fv_gan_describe(const fv_gan *g, const fv_gan_cfg *cfg, char *buf, size_t len);

/* ---- active attacker (Hitaj's fake-class injection) ---- */

typedef struct {
    int fake_class;   /* the extra label: classes of the shared model - 1 */
    int n_fake;       /* generated samples added to the attacker's local data (default: as many
                         as its own images) */
    int epochs;       /* local epochs */
    int batch;        /* local batch size */
    float lr;         /* local SGD step */
    fv_norm norm;
    uint64_t seed;
} fv_gan_active_cfg;

/* The attacker's local update in one round: on entry `shared` holds the current global model
 * (its last output is the fake class). G is first trained against it (gcfg; steps may be small),
 * then `shared` is trained for cfg->epochs on the attacker's own images own[idx[0..n)] plus
 * cfg->n_fake samples of G labelled fake_class. On return shared->params is the upload.
 * Returns 0 or -1 with e set. */
FV_MUST_USE int fv_gan_active_round(fv_gan *g, fv_net *shared, const fv_dataset *own, const int *idx, int n,
                        const fv_gan_cfg *gcfg, const fv_gan_active_cfg *cfg, fv_gan_stats *st, fv_err *e);

#endif
