/* num_check.c: see num_check.h. */
#include "num_check.h"

#include <math.h>

double tc_normwise(const float *a, const float *ref, size_t n, double min_ref) {
    double num = 0.0, den = 0.0;
    for (size_t i = 0; i < n; i++) {
        const double d = fabs((double)a[i] - (double)ref[i]);
        if (d > num || d != d) num = d;
        if (fabs((double)ref[i]) > den) den = fabs((double)ref[i]);
    }
    return den >= min_ref ? num / den : -1.0;
}
