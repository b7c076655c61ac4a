/* vmix_defaults.h: the one source of VisualMixer's documented defaults and accepted ranges
 * (docs/visualmixer.md sections 3-4 and 7). The experiment config's [visualmixer] schema
 * (shared/fl/config.c: default strings and ranges), the flags of `fedvim bounds` and `fedvim mix`
 * (cli/vmix_cli.c), fv_vmix_params_default (vmix.h), fv_dp_cfg_default and
 * fv_vmix_bounds_cfg_default (vmix_bounds.h) all take their values from here.
 *
 * Every value is a plain literal so that config.c can also write it as its default text
 * (stringification): no parentheses, no expressions. _LO / _HI are inclusive.
 * Not here: what the values mean (vmix.h, vmix_bounds.h), how they are checked together
 * (fv_vmix_bounds_compute, fv_vmix_params_check).
 */
#ifndef FV_VMIX_DEFAULTS_H
#define FV_VMIX_DEFAULTS_H

/* privacy target V* (in units of lambda) giving WS_min */
#define FV_VMIX_TARGET_DEF 0.5
#define FV_VMIX_TARGET_LO 1e-9
#define FV_VMIX_TARGET_HI 100
/* V* is reached with probability 1 - alpha (alpha above 0.5 would aim below the median) */
#define FV_VMIX_ALPHA_DEF 0.05
#define FV_VMIX_ALPHA_LO 1e-9
#define FV_VMIX_ALPHA_HI 0.5
/* VFE scale lambda */
#define FV_VMIX_LAMBDA_DEF 1
#define FV_VMIX_LAMBDA_LO 1e-9
#define FV_VMIX_LAMBDA_HI 1e9
/* VFE block size B */
#define FV_VMIX_BLOCK_DEF 8
#define FV_VMIX_BLOCK_LO 1
#define FV_VMIX_BLOCK_HI 65535
/* shuffle unit u x u (1: pixel level); a power of two, and WS_min >= u */
#define FV_VMIX_UNIT_DEF 1
#define FV_VMIX_UNIT_LO 1
#define FV_VMIX_UNIT_HI 4096
/* absolute d*: given or not (then the relative one applies); no default value */
#define FV_VMIX_DMAX_LO 0
#define FV_VMIX_DMAX_HI 1e9
/* d* relative to d_p of the whole image, used when no absolute d* is given. 0.55 is the middle of
 * [0.48, 0.62), the ratios that select WS_max = 4 on MNIST, Fashion-MNIST and Colored MNIST
 * (d_p in standardised units: MNIST 9.3 / 14.0 / 19.4, Fashion-MNIST 5.3 / 9.7 / 15.6, Colored
 * MNIST 5.0 / 8.5 / 12.0 at WS 4 / 8 / whole image, so no absolute d* selects the same WS_max on
 * all three), the window size the measured d* sweeps (experiments/vmix/results/dstar_sweep*.csv)
 * accept on MNIST and Fashion-MNIST within 2.5 points of unmixed accuracy (docs/visualmixer.md
 * section 7). */
#define FV_VMIX_DREL_DEF 0.55
#define FV_VMIX_DREL_LO 1e-6
#define FV_VMIX_DREL_HI 1
/* WS_max Monte Carlo: quantile p of the output deviation (below 0.5 it would accept a typical
 * deviation larger than d*) */
#define FV_VMIX_P_DEF 0.95
#define FV_VMIX_P_LO 0.5
#define FV_VMIX_P_HI 0.999999
/* WS_max Monte Carlo: trials per window size (fewer than 10 make the p-quantile noise) */
#define FV_VMIX_TRIALS_DEF 2000
#define FV_VMIX_TRIALS_LO 10
#define FV_VMIX_TRIALS_HI 10000000
/* WS_max model: convolution kernel CK and max-pool PK (stride PK) */
#define FV_VMIX_KERNEL_DEF 3
#define FV_VMIX_POOL_DEF 2
#define FV_VMIX_LAYER_LO 1
#define FV_VMIX_LAYER_HI 64
/* WS_max Monte Carlo seed of `fedvim bounds` / `fedvim mix` (a federated run derives its own) */
#define FV_VMIX_SEED_DEF 1

#endif
