/* threads.c: fv_set_threads, the one knob for the two thread pools the kernels use (OpenMP loops
 * and OpenBLAS GEMMs). Both are process-wide settings of those libraries; this file keeps no state.
 */
#include <cblas.h>
#undef I /* cblas.h pulls in <complex.h>, whose I clashes with our sizes */
#include <omp.h>

#include "fv_common.h"
#include "layers.h"

void fv_set_threads(int n) {
    FV_ASSERT(n >= 1);
    omp_set_num_threads(n);
    openblas_set_num_threads(n);
}
