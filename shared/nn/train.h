/* train.h: local training and evaluation loops over an fv_dataset: one epoch of minibatch
 * training with a given optimizer, and evaluation (loss, accuracy). Used by `fedvim train`, by
 * the worker for each client's local epochs, and by experiments and attacks.
 * Deterministic: the data order comes from the caller's fv_rng; for a fixed thread count the
 * result is bitwise reproducible.
 * Not here: federated logic (worker/, coordinator/), obfuscation (vmix.h).
 */
#ifndef FV_TRAIN_H
#define FV_TRAIN_H
#include "data/data.h"
#include "nn/net.h"
#include "nn/optim.h"
#include "rng.h"

/* Optional progress callback: called after each batch with (done images, total images, running
 * mean loss). May be NULL. */
typedef void (*fv_progress_fn)(void *ctx, long done, long total, double loss);

typedef struct {
    double loss;     /* mean training loss over the epoch */
    double accuracy; /* training accuracy over the epoch (on the fly, train mode) */
    long images;
    double seconds;
} fv_epoch_stats;

/* One epoch over the images idx[0..n) of d (idx NULL: all of d, n = d->n), shuffled with rng,
 * in batches of `batch` (the last batch may be smaller), normalised with norm.
 * If prox_mu > 0 and prox_ref is not NULL, FedProx's proximal term (mu/2)||w - ref||^2 is added
 * to the trainable parameters' gradients. If corr is not NULL (n_train floats), it is added to
 * the trainable parameters' gradients of every step (SCAFFOLD's correction c - c_i,
 * fl/scaffold.h), after the proximal term and before the optimizer step. Returns the epoch's
 * statistics. */
fv_epoch_stats fv_train_epoch(fv_net *net, fv_opt *opt, const fv_dataset *d, const int *idx, int n,
                              int batch, fv_norm norm, fv_rng *rng, float prox_mu,
                              const float *prox_ref, const float *corr, fv_progress_fn progress, void *ctx);

typedef struct {
    double loss;
    double accuracy;
    long images;
} fv_eval_stats;

/* Evaluate on images idx[0..n) of d (idx NULL: all of d) in eval mode, batches of `batch`. */
fv_eval_stats fv_evaluate(fv_net *net, const fv_dataset *d, const int *idx, int n, int batch,
                          fv_norm norm);

/* Per-example losses and logit margins (log p_y - log sum_{j!=y} p_j) in eval mode, for
 * membership inference: loss[n], margin[n] (either may be NULL). */
void fv_per_example(fv_net *net, const fv_dataset *d, const int *idx, int n, int batch, fv_norm norm,
                    float *loss, float *margin);

#endif
