/* server_kd.h: the server-side student of a federated run ([distill] in the config; knowledge
 * distillation, Hinton et al. 2015): after the last round the coordinator distils the final global
 * model (the teacher, which the clients trained on their private, possibly mixed, images) into a
 * student of the zoo trained on public images only, so a user can measure the paper's "protect the
 * teacher's data" setting inside one run. The public images are loaded and checked when the run
 * is set up (fv_server_kd_prepare: a missing folder or a slice that overlaps the clients' images is
 * an error before any round), and the distillation (fv_kd_fit, nn/train_soft.h) runs on its own
 * thread while the coordinator keeps answering the workers. Results: student.safetensors in the
 * results folder and the summary's "distill" object (fv_server_kd_json).
 * Not here: the loss and the training loop (nn/train_soft.h), `fedvim distill` (cli/).
 */
#ifndef FV_SERVER_KD_H
#define FV_SERVER_KD_H
#include "data/data.h"
#include "fl/config.h"
#include "fv_common.h"
#include "io/json.h"
#include "nn/net.h"
#include "nn/train_soft.h"

typedef struct {
    int on;                 /* [distill] student is set */
    fv_dataset pub;         /* the public training images */
    int first;              /* their first index in the public split (synthetic: 0, its own draw) */
    char folder[4096];      /* where they came from ("" for synthetic) */
    int done;               /* the student is trained and saved */
    fv_kd_result test;      /* teacher and student on the run's test images */
    fv_kd_result mixed;     /* ... and on the mixed test images (has_mixed) */
    int has_mixed;
    size_t student_params;
    int device;             /* where the teacher's logits and the student run ([distill] device; -1 the CPU) */
} fv_server_kd;

/* Load and check the public images of c's [distill] into k (zeroed first; k->on = 0 and nothing
 * loaded when no student is configured). The run's folder is data_dir (the coordinator's
 * override), or data.dir when data_dir is NULL. The public split is data.dataset's training split
 * from [distill] dir (empty: the run's folder), images [first, first + images); when that folder is
 * the run's own (same real path) the slice must start at or past data.train_size, so no client
 * image is public; the images must have the shape and classes of run (the run's test set).
 * Returns 0; -1 with e naming the [distill] key and what is wrong. */
FV_MUST_USE int fv_server_kd_prepare(const fv_config *c, const char *data_dir, const fv_dataset *run,
                                     fv_server_kd *k, fv_err *e);

/* Distil teacher (the final global model, eval mode; not changed) into a fresh student
 * ([distill] student, seeded by fl.seed) on k's public images with [distill]'s recipe, evaluate
 * both on test (and on mixed when not NULL) with norm, and save dir/student.safetensors. The
 * training runs on a thread of its own; tick(ctx) is called meanwhile (fv_thread_run). Returns 0;
 * -1 with e set (a diverged loss, an unwritable file). */
FV_MUST_USE int fv_server_kd_run(const fv_config *c, fv_server_kd *k, fv_net *teacher, const fv_dataset *test,
                                 const fv_dataset *mixed, fv_norm norm, const char *dir, void (*tick)(void *),
                                 void *ctx, fv_err *e);

/* The summary's "distill" object of a finished k (nothing when !k->done). */
void fv_server_kd_json(const fv_config *c, const fv_server_kd *k, fv_json *j);

/* Release k's images. */
void fv_server_kd_free(fv_server_kd *k);

#endif
