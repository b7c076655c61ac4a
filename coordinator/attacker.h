/* attacker.h: the coordinator's honest-but-curious side ([attack] in the config). At the
 * configured rounds it keeps the victim client's accepted upload and the global model that client
 * started from, runs the attack through attacks/attack_api.h (the one interface from coordinator/
 * to attacks/), and records what it found:
 *   attacks.jsonl   one object per attack run: round, client, kind, status ("ok" or "failed" with
 *                   "error", or "skipped" with "reason" when the client's update never arrived),
 *                   seconds, and "result" (the attack's own JSON object);
 *   attacks/        the attack's image grids, named r<round>_c<client>_...;
 * and hands the coordinator the headline figures for that round's metrics.jsonl line.
 * gan_active (a participating client attacks, Hitaj's fake-class injection): "client" is the
 * attacker; at its rounds the attacker replays the generator that client's worker trained (same
 * recipe, seed and discriminator: the global model the client received) and judges it as gan,
 * with the other clients' images as the victims' originals. The model then has classes + 1
 * outputs; test accuracy stays the argmax over all of them (a real image called fake is an error).
 * attacks.jsonl is rewritten atomically after each attack; on resume, lines of rounds after the
 * checkpoint are dropped (such a round runs again, its attack too); a fresh run starts empty.
 * The attack reads copies only: the global model and the training are exactly those of a run
 * without it. It runs in its own thread while the coordinator keeps answering heartbeats (an
 * attack may take longer than the workers' patience with a silent server).
 * Not here: the attacks (attacks/), when a round runs (coordinator.c).
 */
#ifndef FV_ATTACKER_H
#define FV_ATTACKER_H
#include <stddef.h>

#include "fl/config.h"
#include "data/data.h"
#include "fv_common.h"
#include "data/partition.h"
#include "vmix/vmix.h"

typedef struct fv_attacker fv_attacker;

typedef struct {
    const fv_config *cfg;      /* checked; attack.kind != none */
    const char *dir;           /* results folder */
    const char *data_dir;      /* overrides data.dir (NULL: the config's) */
    int resume, start_round;   /* rounds completed before this run */
    fv_dataset *train;         /* the training set as the clients hold it: moved in (zeroed) */
    fv_partition *part;        /* its partition: moved in (zeroed) */
    const fv_dataset *test;    /* borrowed; outlives the attacker */
    fv_norm norm;
    const fv_vmix_params *vp;  /* the federation's mixing (copied), NULL without VisualMixer */
    size_t n_params;
    int threads;               /* compute threads of the attack */
    const char *client_keys;   /* evaluation only (NULL: none): the clients' VisualMixer key file,
                                  which a simulator holds; with it dlg and invert also measure
                                  their reconstructions against the images the victim trained on
                                  (its shard mixed with its own key). The attacks never read it. */
} fv_attacker_opts;

/* Keep the data the evaluation needs (the training set plus held-out images: the split's images
 * beyond data.train_size, or a third synthetic split), check what can be checked before round 1
 * (each attacked round samples the client; gan: the client holds the target class; dlg: one
 * batch of at most 8 images), and prepare attacks.jsonl. Returns NULL with e naming the [attack]
 * key at fault. Caller owns. */
FV_MUST_USE fv_attacker *fv_attacker_new(const fv_attacker_opts *o, fv_err *e);

/* Whether the upload of client in round is attacked. */
int fv_attacker_wants(const fv_attacker *a, int round, int client);

/* Keep copies of an accepted upload and of the global model it started from ([n_params] each). */
void fv_attacker_capture(fv_attacker *a, int round, const float *upload, const float *global);

/* [secagg]: keep the round's aggregate (global + the survivors' mean delta) and the global model it
 * started from, and the survivors' ids clients[0..n) (ascending). With [secagg] attacker = cohort,
 * invert takes it for one local step over the union of their images (at most
 * FV_INVERT_MAX_IMAGES), reconstructs them all and is measured against them; otherwise for the
 * victim's own update. */
void fv_attacker_capture_sum(fv_attacker *a, int round, const float *aggregate, const float *global,
                             const int *clients, int n);

/* After round's updates are in: when round is attacked, run the attack (calling idle(ctx)
 * repeatedly until it finishes), record it in attacks.jsonl and return the headline object for
 * the metrics line (caller frees); NULL when round is not attacked. A failed attack or an
 * unwritable attacks.jsonl is logged through log(lctx, line) and recorded, never fatal. */
char *fv_attacker_round(fv_attacker *a, int round, void (*idle)(void *ctx), void *ctx,
                        void (*log)(void *lctx, const char *line), void *lctx);

/* Accepts NULL; sets *a to NULL. */
void fv_attacker_destroy(fv_attacker **a);

#endif
