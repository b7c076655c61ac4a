/* oracle.h: the independent oracle classifier behind "recognisability" (docs/attacks.md,
 * section 5.3): a model trained on clean held-out data that no client holds, used only to judge
 * whether an attack's images show the class the attacker aimed at. Trained once and cached as a
 * safetensors file whose metadata records what it was trained on, so a stale cache (other model,
 * data, shape or recipe) is retrained instead of silently reused.
 * Not here: the attacks themselves, the metrics of attacks/metrics.h.
 */
#ifndef FV_ORACLE_H
#define FV_ORACLE_H
#include <stdint.h>

#include "data/data.h"
#include "fv_common.h"
#include "nn/net.h"

typedef struct {
    const char *model; /* a shared/nn/models.h name (default "fedavg_cnn": a different architecture
                          from the usual victim, LeNet-5) */
    int epochs;        /* default 3 */
    int batch;         /* default 64 */
    float lr;          /* Adam step (default 1e-3) */
    uint64_t seed;
    const char *data_tag; /* describes the training images (e.g. "mnist-test[5000:10000]"), stored
                             in the cache's metadata */
    int device;        /* where fv_oracle_train trains: -1 the CPU (default), N >= 0 CUDA device N
                          (nn/trainer.h; not part of the cache's identity) */
} fv_oracle_cfg;

fv_oracle_cfg fv_oracle_defaults(void);

/* Train an oracle on d's images idx[0..n) (idx NULL: all of d) normalised with norm, through a
 * trainer (nn/trainer.h) on cfg->device: on the CPU the same calls, and bits, as fv_train_epoch
 * with an Adam fv_opt; on CUDA the same batches, rounding apart. *acc (may be NULL) receives its
 * training accuracy in the last epoch. Returns the model (on the host; caller owns) or NULL with e
 * set (bad recipe, unknown model, no such device, a build without CUDA asked for one). */
FV_MUST_USE fv_net *fv_oracle_train(const fv_oracle_cfg *cfg, const fv_dataset *d, const int *idx, int n, fv_norm norm,
                        double *acc, fv_err *e);

/* The cached oracle at cache_path if its metadata matches (model, shape, classes, epochs, seed,
 * data_tag), else a freshly trained one, saved there (cache_path may be NULL: no cache).
 * *trained (may be NULL) says which. Returns the model or NULL with e set. */
FV_MUST_USE fv_net *fv_oracle_get(const char *cache_path, const fv_oracle_cfg *cfg, const fv_dataset *d, const int *idx, int n,
                      fv_norm norm, int *trained, fv_err *e);

/* Classify n images imgs[n, c, h, w] with pixel values in [0, 1] (normalised with norm inside):
 * pred[n] (may be NULL) the oracle's class, p_target[n] (may be NULL) its probability of target.
 * Returns the fraction assigned to target (the recognisability). */
double fv_oracle_recognise(fv_net *oracle, const float *imgs, int n, fv_norm norm, int target, int *pred,
                           float *p_target);

#endif
