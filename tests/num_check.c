/* num_check.c: see num_check.h. */
#include "num_check.h"

#include <math.h>

void tc_bn_running_stats(fv_net *net, fv_rng *r) {
    for (int i = 1; i < net->n_nodes; i++)
        if (net->nodes[i].op == FV_OP_BATCHNORM)
            for (int c = 0; c < net->nodes[i].ishape.c; c++) {
                net->params[net->nodes[i].rm_off + c] = (float)(0.3 * fv_rng_normal(r));
                net->params[net->nodes[i].rv_off + c] = (float)(0.5 + fv_rng_uniform(r));
            }
}

double tc_normwise(const float *a, const float *ref, size_t n, double min_ref) {
    double num = 0.0, den = 0.0;
    for (size_t i = 0; i < n; i++) {
        const double d = fabs((double)a[i] - (double)ref[i]);
        if (d > num || d != d) num = d;
        if (fabs((double)ref[i]) > den) den = fabs((double)ref[i]);
    }
    return den >= min_ref ? num / den : -1.0;
}
