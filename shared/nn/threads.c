/* threads.c: fv_set_threads, the one knob for the threads the layer kernels use.
 *
 * The kernels split their work over OpenMP threads themselves (a conv gives each thread a range
 * of images and runs its GEMMs there), so OpenBLAS is set to one thread: two thread pools on the
 * same cores, each spinning while the other works, cost more than they bring (on a 2-core box a
 * LeNet conv pass got slower, not faster, with both pools at 2 threads).
 * These are process-wide settings of libgomp and OpenBLAS; this file keeps no state.
 */
#include <cblas.h>
#include <omp.h>

#include "fv_common.h"
#include "nn/layers.h"

void fv_set_threads(int n) {
    FV_ASSERT(n >= 1);
    omp_set_num_threads(n);
    openblas_set_num_threads(1);
}
