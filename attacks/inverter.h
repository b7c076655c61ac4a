/* inverter.h: the learned inverter, an adaptive attack on VisualMixer (docs/attacks.md, "Learned
 * inverter"). Threat model: the defence and its settings (VisualMixer's window bounds, unit and
 * mode; uniform any-size windows; Gaussian noise's sigma; InstaHide's k) are public; only the
 * victim's key / seed is secret. The attacker defends images it owns with keys of its own, trains
 * an image-to-image network on the pairs (defended, original), and applies it to the victim's
 * defended images.
 *
 * The network is a small U-Net-like encoder-decoder built from the graph's ops (net.h): two
 * levels of (3x3 conv, ReLU) x 2 with 2x2 max pooling, a bottleneck, nearest-neighbour 2x
 * upsampling, a 3x3 conv and a residual ADD of the encoder's features at the same resolution
 * (U-Net's skips, by addition instead of concatenation), and a final linear 3x3 conv to the
 * image's channels. Widths are `width`, 2 width and 4 width. The head is linear in training and
 * clamped to [0, 1] (the images' range) only when applied: a sigmoid head trained with Adam
 * saturated at 0 within a few steps on MNIST's mostly black images and never recovered (its
 * gradient vanishes there), while the linear head trains. It is built here rather than in the model table (models.h)
 * because that table's contract is a classifier (images to class logits, trained with
 * fv_softmax_xent by train.h and federated by the workers); this maps images to images and is
 * trained with the pixel loss of nn/loss_pixel.h by its own loop below, through the device-neutral
 * trainer (nn/trainer.h), so it trains on the CPU or a CUDA device.
 *
 * Images are float CHW in [0, 1] (no data-set normalisation): input and target are on the same
 * scale as the metrics (attacks/metrics.h).
 * Not here: the run with data loading, victim mixing and reporting (attack_run.h,
 * fv_inverter_run), the defences themselves (shared/vmix/defence.h and the modules it names).
 */
#ifndef FV_INVERTER_H
#define FV_INVERTER_H
#include <stdint.h>

#include "data/data.h"
#include "fv_common.h"
#include "nn/loss_pixel.h"
#include "nn/net.h"
#include "vmix/defence.h"
#include "vmix/obfuscate.h"
#include "vmix/vmix.h"

/* The defence the inverter is trained against (and the victim's images went through): the shared
 * defences of vmix/defence.h, the code the federated workers train behind. All of its settings
 * are public; only the victim's key / seed is secret. The names below are the attacks' older
 * spellings of defence.h's, kept so the attack code reads as before. */
typedef fv_defence_kind fv_inverter_defence;
#define FV_INV_DEF_NONE FV_DEFENCE_NONE
#define FV_INV_DEF_VMIX FV_DEFENCE_VMIX
#define FV_INV_DEF_SHUFFLE FV_DEFENCE_SHUFFLE
#define FV_INV_DEF_NOISE FV_DEFENCE_NOISE
#define FV_INV_DEF_INSTAHIDE FV_DEFENCE_INSTAHIDE

/* fv_defence_name and fv_defence_parse under the attacks' names. */
static inline const char *fv_inverter_defence_name(fv_inverter_defence d) { return fv_defence_name(d); }
FV_MUST_USE static inline int fv_inverter_defence_parse(const char *s, fv_inverter_defence *d, fv_err *e) {
    return fv_defence_parse(s, d, e);
}

typedef struct {
    int width;            /* channels of the first level (then 2x, 4x); default 16 */
    int epochs;           /* passes over the attacker's images; default 3 */
    int batch;            /* minibatch; default 32 */
    float lr;             /* Adam step; default 1e-3 */
    fv_pixel_loss_kind loss; /* default MSE */
    fv_defence_cfg def;   /* the victim's (public) defence: train on (defend(x), x) */
    uint8_t key[FV_VMIX_KEY_BYTES]; /* the attacker's own secret (never the victim's) */
    int remix;            /* 1: fresh keys / noise each epoch (stream 2 + epoch; default); 0: one */
    uint64_t seed;        /* network initialisation and batch order */
    int device;           /* where training runs: -1 the CPU (default), N >= 0 CUDA device N
                             (fv_device_parse's number; nn/trainer.h) */
    int verbose;          /* progress on stderr */
} fv_inverter_cfg;

/* Defaults as listed above; def.vp is fv_vmix_params_default's; key all zero (set it). */
fv_inverter_cfg fv_inverter_defaults(void);

/* Check cfg for images of c x h x w. Errors name the setting: width in [1, 256], epochs >= 0,
 * batch >= 1, lr finite and > 0, the defence's settings (fv_defence_check), h and w multiples
 * of 4 (two pooling levels) and the mixing bounds against h x w. c = h = w = 0: the shape is not
 * known yet (before the data is read), so only the settings that do not depend on it are
 * checked. Returns 0 or -1 with e set. */
FV_MUST_USE int fv_inverter_check(const fv_inverter_cfg *cfg, int c, int h, int w, fv_err *e);

/* The inverter network for c x h x w images, initialised from seed. Caller owns (fv_net_destroy).
 * Returns NULL with e set when h or w is not a multiple of 4 or width is outside [1, 256]. */
fv_net *fv_inverter_net_new(int c, int h, int w, int width, uint64_t seed, fv_err *e);

typedef struct {
    int epochs;
    float loss[64];       /* mean training loss of the first 64 epochs */
    float final_loss;     /* of the last epoch */
    long pairs;           /* training pairs seen in all */
    double seconds;       /* training wall time (mixing included) */
} fv_inverter_stats;

/* Train net (from fv_inverter_net_new, for own's image shape) on the attacker's images own (all
 * of them): each epoch defends them with the attacker's key (cfg->def, fv_defence_apply),
 * shuffles, and takes Adam steps on the pixel loss between net(defended) and the original,
 * through a trainer on cfg->device (fv_trainer_train_pixel_batch: on the CPU the same calls, and
 * bits, as before the trainer; on CUDA the same steps up to rounding). The trained parameters
 * end in net->params either way. st may be NULL. Returns 0, or -1 with e set (bad cfg, an empty
 * data set, a defence error, a device that does not exist or a build without CUDA asked for one).
 * Deterministic for a fixed seed and thread count (and, on CUDA, GPU model). */
FV_MUST_USE int fv_inverter_train(fv_net *net, const fv_dataset *own, const fv_inverter_cfg *cfg, fv_inverter_stats *st,
                                  fv_err *e);

/* out[n, c*h*w] = net(in[n, c*h*w]) clamped to [0, 1], in eval mode, batch by batch (batch >= 1),
 * on `device` (-1: the CPU, the same bits as before the trainer; N >= 0: CUDA device N, which
 * gets a copy of net's parameters). Returns 0, or -1 with e set (no such device, a build without
 * CUDA). */
FV_MUST_USE int fv_inverter_apply(fv_net *net, float *out, const float *in, int n, int batch, int device, fv_err *e);

#endif
