/* num_check.h: the error measures that the numeric tests (the CUDA-against-CPU tests above all)
 * share, so each test states its tolerances against one definition.
 * Not here: tolerances (each test states its own), assertions.
 */
#ifndef FV_NUM_CHECK_H
#define FV_NUM_CHECK_H
#include <stddef.h>

/* max |a - ref| / max |ref| over n floats, in double (a NaN in a gives NaN); -1 when max |ref| is
 * below min_ref (an all-zero reference checks nothing: the caller decides what to do then). With
 * min_ref 0 an all-zero reference gives NaN, which fails any "<= tolerance" check. */
double tc_normwise(const float *a, const float *ref, size_t n, double min_ref);

#endif
