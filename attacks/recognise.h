/* recognise.h: the adaptive recogniser attack on VisualMixer (docs/attacks.md section
 * "Recogniser trained on mixed images"; issue 15). Threat model: the mixing algorithm and its
 * settings (window bounds, unit, mode) are public; only the victim's key is secret. The attacker
 * mixes its own public images, each with a fresh key of its own, at the victim's settings, and
 * trains a zoo classifier (shared/nn/models.h, through the oracle's recipe of attacks/oracle.h)
 * to predict a hidden attribute from a mixed image; then it classifies the victim's images,
 * mixed with the victim's secret key.
 *
 * Attributes:
 *   label  the digit (the public label: a reference row, what the recognisability oracle measures)
 *   fg     Colored MNIST's foreground colour, quantised: each channel into `bins` equal levels of
 *          0..255, class = sum_ch level_ch * bins^ch (bins 2: the 8 octants of the RGB cube)
 *   bg     the background colour, quantised the same way
 * Colours come from fv_cmnist_colours (shared/data/data.h), the draw that made the images.
 * Chance is the majority-class rate of the attribute on the victim's images (the accuracy of the
 * best constant guess), computed from the data, never assumed.
 *
 * Training (fv_oracle_train) and evaluation run through the device-neutral trainer (nn/trainer.h),
 * on the CPU or the CUDA device of cfg.device.
 * Not here: the mixing (shared/vmix/vmix.h), the training loop (nn/train.h, used through
 * fv_oracle_train), flag parsing (cli/cmd_attack.c).
 */
#ifndef FV_RECOGNISE_H
#define FV_RECOGNISE_H
#include <stdint.h>

#include "attack_run.h"
#include "data/data.h"
#include "fv_common.h"
#include "io/json.h"
#include "vmix/vmix.h"

typedef enum {
    FV_RECOG_LABEL = 0,
    FV_RECOG_FG = 1,
    FV_RECOG_BG = 2,
} fv_recog_attr;
#define FV_RECOG_ATTRS 3
#define FV_RECOG_BINS_MIN 2
#define FV_RECOG_BINS_MAX 6 /* 6^3 = 216 classes still fit a uint8 label */

/* "label", "fg", "bg". */
const char *fv_recog_attr_name(fv_recog_attr a);

/* Parse a comma-separated list of attribute names ("fg,bg,label"; "all": the three) into
 * on[FV_RECOG_ATTRS] (1 for each named). Returns 0, or -1 with e naming the unknown word or an
 * empty list. */
FV_MUST_USE int fv_recog_attr_parse(const char *s, int on[FV_RECOG_ATTRS], fv_err *e);

/* The class of colour rgb[3] (0..255 each) with `bins` levels per channel (see the header
 * comment). bins in [FV_RECOG_BINS_MIN, FV_RECOG_BINS_MAX] (else programmer error, abort). */
int fv_recog_colour_class(const int rgb[3], int bins);

/* Number of classes of attribute a: bins^3 for colours, d's classes for the label. */
int fv_recog_classes(fv_recog_attr a, int bins, const fv_dataset *d);

/* Attribute a of images first .. first + n of d into y[n]. For colours d must be a Colored MNIST
 * split drawn with cmnist_seed (FV_CMNIST_SEED_TRAIN / _TEST): 3 channels, and the top-left pixel
 * of (nearly) every image must be its drawn background colour (MNIST's borders are blank), else
 * the images are not what the draw made (a pre-coloured or mixed folder) and it is an error.
 * Returns 0, or -1 with e naming the problem. */
FV_MUST_USE int fv_recog_attributes(uint8_t *y, const fv_dataset *d, int first, int n, fv_recog_attr a, int bins,
                                    uint64_t cmnist_seed, fv_err *e);

/* The histogram rule, a recogniser without training: per channel, the background value is the
 * most frequent value of that channel over the whole image (the lowest on ties) and the foreground
 * value is the value present that lies farthest from it (the nearer to 0 on ties). Both depend
 * only on each channel's multiset of values over the image, which VisualMixer leaves unchanged in
 * every mode (it permutes values within windows, per channel or all channels alike). img is CHW
 * with 3 channels of h*w. Writes fg[3] and bg[3]. */
void fv_recog_histogram_colours(const uint8_t *img, int h, int w, int fg[3], int bg[3]);

/* The majority-class rate of y[n] (labels below k), n >= 1: the chance level. *cls (may be NULL)
 * receives the majority class (the lowest on ties). */
double fv_recog_majority(const uint8_t *y, int n, int k, int *cls);

typedef struct {
    fv_data_src src;
    int attacker_from;   /* the attacker's own images: training split [attacker_from, + attacker_images) */
    int attacker_images;
    int victim_first;    /* the victim's images: test split [victim_first, + victim_images) */
    int victim_images;
    fv_vmix_params vp;   /* the victim's (public) mixing settings, used by the attacker too */
    int attrs[FV_RECOG_ATTRS]; /* which attributes are attacked; all 0: every one the data set has */
    int bins;            /* colour levels per channel (default 2: octants) */
    const char *model;   /* recogniser architecture (default "lenet5") */
    int epochs, batch;   /* default 3, 64 */
    float lr;            /* Adam step (default 3e-3: on 4,000 images, 3 epochs, it beats 1e-3) */
    uint64_t seed;       /* model initialisation, data order, simulation keys */
    int device;          /* where the recogniser trains and is evaluated: -1 the CPU (default), N >= 0
                            CUDA device N (nn/trainer.h; the CPU's figures are the same bits as
                            before the trainer) */
    int verbose;
} fv_recog_run_cfg;

fv_recog_run_cfg fv_recog_run_defaults(void);

/* Check cfg against itself and the model list (no data read): 0, or -1 with e naming the bad
 * setting (empty ranges, bins, recipe, mixing parameters' form, a colour attribute asked of a data
 * set other than cmnist, unknown model). */
FV_MUST_USE int fv_recog_run_check(const fv_recog_run_cfg *cfg, fv_err *e);

typedef struct {
    int on;
    int classes;
    double chance;          /* majority-class rate on the victim's images */
    double train_accuracy;  /* the recogniser on the attacker's mixed images, last epoch */
    double victim_mixed;    /* accuracy on the victim's mixed images: the attack */
    double victim_unmixed;  /* the same recogniser on the victim's originals: the control */
    double hist_mixed;      /* colours only: the histogram rule's class accuracy on the mixed images */
    double hist_exact;      /* colours only: the fraction of mixed images whose colour it gets exactly */
    double seconds;
} fv_recog_result;

/* Run the attack (checks first): load the data, mix the attacker's images (attacker key) and
 * the victim's (victim key), train one recogniser per attribute, measure. res[FV_RECOG_ATTRS]
 * (may be NULL) receives the figures, indexed by fv_recog_attr (on = 0 for those not run); j the
 * same as JSON, and a table goes to stderr. Returns 0, or -1 with e set (data out of range,
 * images that do not follow the Colored MNIST draw, bad mixing parameters for the image size, a
 * device that does not exist or a build without CUDA asked for one). */
FV_MUST_USE int fv_recog_run(const fv_recog_run_cfg *cfg, fv_recog_result *res, fv_json *j, fv_err *e);

#endif
