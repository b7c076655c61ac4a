/* reassemble.h: the reassembly attack on VisualMixer-mixed images (docs/attacks.md
 * section 4, the paper's shredder / jigsaw experiments). The attacker knows the mixing algorithm
 * and, worst case, the exact window map and unit size, but not the key. Within each window it
 * searches for the arrangement of the window's units that minimises the image's total variation
 * (sum of squared differences of horizontally and vertically adjacent pixels): first greedily
 * (each slot, in raster order, takes the remaining unit that fits its already-known neighbours
 * best; then pairwise swaps while any swap lowers the total variation), then by simulated
 * annealing with a bounded budget of proposals, keeping the best arrangement seen.
 *
 * Units follow shared/vmix/vmix.h exactly: in a window of w x h with unit u, full u x u units are
 * interchangeable, and so are the units of the right strip (w mod u wide) and those of the
 * bottom strip (h mod u high); the corner unit stays. In spatial+chromatic mode every channel is
 * arranged independently (the total variation is a sum over channels, so the searches separate);
 * in spatial mode one arrangement moves all channels.
 *
 * Not here: the mixing itself (shared/vmix/vmix.h) and the image metrics (attacks/metrics.h).
 */
#ifndef FV_REASSEMBLE_H
#define FV_REASSEMBLE_H
#include <stdint.h>

#include "fv_common.h"
#include "vmix/vmix.h"

typedef struct {
    int unit;            /* shuffle unit u (1: pixels), as used by the mixer */
    fv_vmix_mode mode;
    int greedy;          /* 1: greedy placement and swap descent first (default 1) */
    long anneal;         /* annealing proposals per channel (per image in spatial mode); 0: none.
                            default 200000 */
    double t_end;        /* final temperature as a fraction of the initial one (default 1e-3) */
    uint64_t seed;
} fv_reasm_cfg;

fv_reasm_cfg fv_reasm_defaults(void);

typedef struct {
    double tv_mixed;     /* total variation of the input, pixels on [0, 1] */
    double tv_greedy;    /* after the greedy phase (= tv_mixed if off) */
    double tv_final;     /* of the output */
    long proposals;      /* annealing proposals made */
    long accepted;       /* of which accepted */
    double search_bits;  /* sum over windows (and channels) of log2(n!) */
    double seconds;
} fv_reasm_stats;

/* Total variation of a CHW uint8 image on the [0, 1] scale. */
double fv_reasm_tv(const uint8_t *img, int c, int h, int w);

/* The brute-force search space: sum over windows and unit groups of log2(n!), times c in
 * spatial+chromatic mode (one arrangement per channel). */
double fv_reasm_search_bits(const fv_vmix_window *win, int nwin, int unit, int c, fv_vmix_mode mode);

/* Reassemble mixed[c*h*w] into out[c*h*w] (may not alias) given the window map win[nwin].
 * Returns 0, or -1 with e set when a window leaves the image, windows overlap, or the unit or
 * configuration is invalid. Deterministic in cfg->seed. */
FV_MUST_USE int fv_reasm_image(uint8_t *out, fv_reasm_stats *st, const uint8_t *mixed, int c, int h, int w,
                   const fv_vmix_window *win, int nwin, const fv_reasm_cfg *cfg, fv_err *e);

/* The window map unknown: estimate the map Algorithm 1 (vmix.h) drew for mixed[c*h*w] knowing
 * only the public settings vp (bounds, unit, mode; verify is ignored). Algorithm 1's map is a
 * public function of the original pixels, and every window lies inside one ws_max tile of a fixed
 * grid. So: reassemble with the coarsest map (each tile one window: the original arrangement is
 * among those searched), run Algorithm 1 on that reassembly to get a map (any key: the map does
 * not depend on it), reassemble with that map, and repeat until the map is stable or after iters
 * rounds. win must hold h*w windows; *nwin receives the count; out (may be NULL) the last
 * reassembly; rounds (may be NULL) the rounds made. Costs up to iters + 1 reassemblies with cfg.
 * Returns 0, or -1 with e set (bad settings, iters < 1, bad shape or cfg). */
FV_MUST_USE int fv_reasm_estimate_map(fv_vmix_window *win, int *nwin, uint8_t *out, int *rounds, const uint8_t *mixed,
                                      int c, int h, int w, const fv_vmix_params *vp, int iters,
                                      const fv_reasm_cfg *cfg, fv_err *e);

#endif
