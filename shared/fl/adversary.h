/* adversary.h: simulated malicious clients ([adversary] in the experiment config), the one place
 * that says who is malicious and what a malicious client does to its data and to its upload.
 * Workers apply it (a malicious client is trained by a real worker process, like any other);
 * the coordinator uses the same rules only to measure the attack (how many malicious updates a
 * round aggregated, the backdoor's success rate on triggered test images). The server's defence
 * (robust aggregation, update norm bounds) knows nothing of this module.
 *
 * Who: [adversary] clients (an ascending id list) or, when it is empty, the first
 * round(fraction x fl.clients) ids of a permutation drawn from fl.seed (stream "advers").
 * A malicious client is malicious in every round it is sampled.
 *
 * What (kinds; Delta = trained upload - global model, over the trainable coordinates only: the
 * batch-norm buffers of every upload are the honest ones):
 *  - sign_flip: upload = global - scale x Delta (scale auto: 1).
 *  - scale: upload = global + scale x Delta (scale auto: 10), model-replacement style boosting.
 *  - noise: upload = global + N(0, noise_std^2) per coordinate (the training is thrown away), the
 *    noise drawn from (fl.seed, round, client): a run and its resumption send the same bits.
 *  - huge: every trainable coordinate of the upload is huge_value (finite: 3e38 by default).
 *  - label_flip: the client trains on its images with label y replaced by classes - 1 - y; the
 *    upload is then global + scale x Delta (scale auto: 1, plain data poisoning).
 *  - backdoor (BadNets-style): round(poison_fraction x n) of the client's n images (a fixed
 *    choice per client, from fl.seed) carry the trigger and the label `target`; upload as
 *    label_flip. The trigger is a trigger_size x trigger_size checkerboard (pixel 255 where row +
 *    column is even, 0 elsewhere, every channel) one pixel in from the image's bottom-right corner.
 *    The attack's success rate is the share of test images of another class that the model
 *    classifies as `target` once they carry the trigger.
 * Data poisoning happens before VisualMixer: a malicious client mixes its poisoned images with its
 * own key like any client, and the backdoor is measured on triggered test images mixed with the
 * test key as well (the coordinator's mixed evaluation).
 * Not here: the config keys' syntax and ranges (fl/config.c), the defences (fl/aggregate.h, the
 * coordinator's update checks).
 */
#ifndef FV_ADVERSARY_H
#define FV_ADVERSARY_H
#include <stddef.h>
#include <stdint.h>

#include "data/data.h"
#include "fl/config.h"
#include "fv_common.h"

/* The malicious clients: mask[0..fl.clients) set to 1 for each, 0 for the others; returns their
 * number (0 with [adversary] kind = none). c must have passed fv_config_check. */
int fv_adv_mask(const fv_config *c, uint8_t *mask);

/* The factor on Delta for kinds that use one: [adversary] scale, or its kind's value for auto. */
double fv_adv_scale(const fv_config *c);

/* Whether the kind changes the client's training data (label_flip, backdoor). */
int fv_adv_poisons_data(const fv_config *c);

/* Check that the trigger and the target fit a data set of this shape and class count. Returns 0,
 * or -1 with e naming the [adversary] key (trigger_size against the image, target against the
 * classes). Kinds without a trigger or target always pass. */
FV_MUST_USE int fv_adv_check_data(const fv_config *c, const fv_dataset *d, fv_err *e);

/* Stamp the trigger on one image (c x h x w bytes, NCHW). The image must hold the trigger
 * (fv_adv_check_data). */
void fv_adv_stamp(const fv_config *c, uint8_t *img, int ch, int h, int w);

/* Poison a malicious client's own copy of its images in place (label_flip: every label;
 * backdoor: its fixed poisoned subset stamped and relabelled). d holds the client's n images in
 * partition order. Other kinds leave d unchanged. */
void fv_adv_poison(const fv_config *c, int client, fv_dataset *d);

/* Turn a malicious client's trained parameters into its upload, in place: params[0..n_train)
 * from global[0..n_train) by the kind's rule (above); params[n_train..) untouched. Deterministic
 * in (fl.seed, round, client). */
void fv_adv_forge(const fv_config *c, int round, int client, const float *global, float *params, size_t n_train);

/* The backdoor test set: every image of test whose label is not `target`, triggered and
 * labelled `target` (so a model's accuracy on it is the attack's success rate). Returns 0 with
 * *out filled (caller frees with fv_dataset_free), or -1 with e set when no test image qualifies
 * or the trigger does not fit. */
FV_MUST_USE int fv_adv_backdoor_set(const fv_config *c, const fv_dataset *test, fv_dataset *out, fv_err *e);

#endif
