/* dp.h: the pieces of DP-FedAvg (McMahan et al. 2018, "Learning Differentially Private Recurrent
 * Language Models") that know no role: clipping a client's update delta to an L2 bound, the
 * Gaussian noise of the aggregate drawn from a deterministic stream, and a Renyi-DP accountant
 * for the sampled Gaussian mechanism.
 *
 * Accountant: for integer orders alpha = 2..FV_DP_MAX_ORDER the RDP of one round of the sampled
 * Gaussian mechanism with sampling rate q and noise multiplier z is (Mironov, Talwar, Zhang 2019,
 * "Renyi Differential Privacy of the Sampled Gaussian Mechanism", integer-alpha expansion)
 *     rdp(alpha) = log( sum_{k=0..alpha} C(alpha,k) (1-q)^(alpha-k) q^k exp((k^2-k)/(2 z^2)) ) / (alpha-1),
 * evaluated in log space. T rounds compose additively, and
 *     eps(delta) = min_alpha rdp(alpha) T + log(1/delta) / (alpha - 1).
 * The bound assumes Poisson sampling of clients with rate q (as McMahan et al. do); fedvim samples
 * a fixed-size set of m = q K clients each round, the usual approximation. Not here: the
 * tighter eps conversions (Balle et al. 2020), fractional orders, the aggregation itself
 * (aggregate.h).
 */
#ifndef FV_DP_H
#define FV_DP_H
#include <stddef.h>
#include <stdint.h>

#define FV_DP_MAX_ORDER 64

/* RDP of one round at integer order alpha (2 <= alpha <= FV_DP_MAX_ORDER), sampling rate
 * 0 <= q <= 1, noise multiplier z > 0. Returns +inf when z == 0 and q > 0, 0 when q == 0. */
double fv_dp_rdp(double q, double z, int alpha);

/* Epsilon after T >= 0 rounds at delta in (0, 1): the minimum over alpha = 2..FV_DP_MAX_ORDER of
 * rdp(alpha) T + log(1/delta) / (alpha - 1). *best_alpha (may be NULL) gets the minimising order.
 * Returns +inf when z == 0 and q > 0 and T > 0 (no privacy). */
double fv_dp_epsilon(double q, double z, long T, double delta, int *best_alpha);

/* Clip in place: d[n] *= min(1, clip / ||d||_2). Returns ||d||_2 before clipping (double
 * accumulation, index order: deterministic). clip > 0. */
double fv_dp_clip(float *d, size_t n, double clip);

/* out[i] += sigma * N(0, 1) for i < n, the normals drawn in index order from the stream
 * fv_rng_seed2(seed, stream) (fv_rng_normal, in double). The same (seed, stream) always adds the
 * same noise. */
void fv_dp_add_noise(double *out, size_t n, double sigma, uint64_t seed, uint64_t stream);

#endif
