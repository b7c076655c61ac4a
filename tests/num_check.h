/* num_check.h: what the numeric tests (the CUDA-against-CPU tests above all) share: the error
 * measures, so each test states its tolerances against one definition, and the fixtures that
 * several of them set up the same way.
 * Not here: tolerances (each test states its own), assertions.
 */
#ifndef FV_NUM_CHECK_H
#define FV_NUM_CHECK_H
#include <stddef.h>

#include "nn/net.h"
#include "rng.h"

/* max |a - ref| / max |ref| over n floats, in double (a NaN in a gives NaN); -1 when max |ref| is
 * below min_ref (an all-zero reference checks nothing: the caller decides what to do then). With
 * min_ref 0 an all-zero reference gives NaN, which fails any "<= tolerance" check. */
double tc_normwise(const float *a, const float *ref, size_t n, double min_ref);

/* Batch-norm running statistics away from PyTorch's 0 / 1 (so a batch-norm prior is not
 * trivially small): for each batch-norm node in order, each channel's running mean drawn
 * 0.3 N(0, 1) and running variance 0.5 + U(0, 1), from r. */
void tc_bn_running_stats(fv_net *net, fv_rng *r);

#endif
