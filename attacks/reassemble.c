/* reassemble.c: see reassemble.h. Energies are exact integers (squared differences of 8-bit
 * values); a swap's change is computed from the two units' borders only. */
#include "reassemble.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "rng.h"

fv_reasm_cfg fv_reasm_defaults(void) {
    fv_reasm_cfg c;
    memset(&c, 0, sizeof c);
    c.unit = 1;
    c.mode = FV_VMIX_SPATIAL_CHROMATIC;
    c.greedy = 1;
    c.anneal = 200000;
    c.t_end = 1e-3;
    c.seed = 1;
    return c;
}

typedef struct {
    int x, y, w, h;
} rect;

typedef struct {
    int first, count; /* slots[first .. first + count) hold interchangeable units */
} group;

/* The planes searched together (one channel, or all channels in spatial mode). */
typedef struct {
    uint8_t *pl[4];
    int nc, W, H;
} planes;

static int64_t sq(int a, int b) { return (int64_t)(a - b) * (a - b); }

static int64_t tv_planes(const planes *p) {
    int64_t s = 0;
    for (int c = 0; c < p->nc; c++) {
        const uint8_t *q = p->pl[c];
        for (int y = 0; y < p->H; y++)
            for (int x = 0; x < p->W; x++) {
                int v = q[y * p->W + x];
                if (x + 1 < p->W) s += sq(v, q[y * p->W + x + 1]);
                if (y + 1 < p->H) s += sq(v, q[(y + 1) * p->W + x]);
            }
    }
    return s;
}

double fv_reasm_tv(const uint8_t *img, int c, int h, int w) {
    planes p = {{0}, 1, w, h};
    int64_t s = 0;
    for (int k = 0; k < c; k++) {
        p.pl[0] = (uint8_t *)img + (size_t)k * h * w;
        s += tv_planes(&p);
    }
    return (double)s / (255.0 * 255.0);
}

static int inside(const rect *r, int x, int y) { return r && x >= r->x && x < r->x + r->w && y >= r->y && y < r->y + r->h; }

/* Sum of the squared differences across the border of a, leaving out neighbours inside ex. */
static int64_t border(const planes *p, rect a, const rect *ex) {
    int64_t s = 0;
    const int W = p->W, H = p->H;
    for (int c = 0; c < p->nc; c++) {
        const uint8_t *q = p->pl[c];
        for (int x = a.x; x < a.x + a.w; x++) {
            if (a.y > 0 && !inside(ex, x, a.y - 1)) s += sq(q[a.y * W + x], q[(a.y - 1) * W + x]);
            int yb = a.y + a.h - 1;
            if (yb + 1 < H && !inside(ex, x, yb + 1)) s += sq(q[yb * W + x], q[(yb + 1) * W + x]);
        }
        for (int y = a.y; y < a.y + a.h; y++) {
            if (a.x > 0 && !inside(ex, a.x - 1, y)) s += sq(q[y * W + a.x], q[y * W + a.x - 1]);
            int xr = a.x + a.w - 1;
            if (xr + 1 < W && !inside(ex, xr + 1, y)) s += sq(q[y * W + xr], q[y * W + xr + 1]);
        }
    }
    return s;
}

static void swap_units(const planes *p, rect a, rect b) {
    for (int c = 0; c < p->nc; c++) {
        uint8_t *q = p->pl[c];
        for (int y = 0; y < a.h; y++)
            for (int x = 0; x < a.w; x++) {
                uint8_t *u = &q[(a.y + y) * p->W + a.x + x], *v = &q[(b.y + y) * p->W + b.x + x], t = *u;
                *u = *v;
                *v = t;
            }
    }
}

/* Energy change if units a and b swapped contents. */
static int64_t swap_delta(const planes *p, rect a, rect b) {
    int64_t before = border(p, a, NULL) + border(p, b, &a);
    swap_units(p, a, b);
    int64_t after = border(p, a, NULL) + border(p, b, &a);
    swap_units(p, a, b);
    return after - before;
}

/* Order groups by the raster position of their first slot (insertion sort: few groups), so the
 * greedy phase places units with the windows above and to the left already arranged. */
static void sort_groups(group *g, int ng, const rect *slots) {
    for (int i = 1; i < ng; i++) {
        group v = g[i];
        rect rv = slots[v.first];
        int j = i;
        while (j > 0) {
            rect rj = slots[g[j - 1].first];
            if (rj.y < rv.y || (rj.y == rv.y && rj.x <= rv.x)) break;
            g[j] = g[j - 1];
            j--;
        }
        g[j] = v;
    }
}

/* Slots and groups of the window map, following vmix.c's unit layout. Returns the group count. */
static int build_slots(const fv_vmix_window *win, int nwin, int u, rect **slots_out, group **groups_out) {
    int ns = 0, ng = 0;
    for (int k = 0; k < nwin; k++) ns += (win[k].w / u) * (win[k].h / u) + win[k].h / u + win[k].w / u;
    rect *s = fv_malloc(sizeof(rect) * (size_t)(ns + 1));
    group *g = fv_malloc(sizeof(group) * (size_t)(3 * nwin + 1));
    ns = 0;
    for (int k = 0; k < nwin; k++) {
        int x0 = win[k].x, y0 = win[k].y, ww = win[k].w, hh = win[k].h;
        int nux = ww / u, nuy = hh / u, rx = ww % u, ry = hh % u;
        int first = ns;
        for (int i = 0; i < nux * nuy; i++) s[ns++] = (rect){x0 + (i % nux) * u, y0 + (i / nux) * u, u, u};
        if (ns - first >= 2) g[ng++] = (group){first, ns - first};
        else ns = first;
        first = ns;
        if (rx)
            for (int i = 0; i < nuy; i++) s[ns++] = (rect){x0 + nux * u, y0 + i * u, rx, u};
        if (ns - first >= 2) g[ng++] = (group){first, ns - first};
        else ns = first;
        first = ns;
        if (ry)
            for (int i = 0; i < nux; i++) s[ns++] = (rect){x0 + i * u, y0 + nuy * u, u, ry};
        if (ns - first >= 2) g[ng++] = (group){first, ns - first};
        else ns = first;
    }
    sort_groups(g, ng, s);
    *slots_out = s;
    *groups_out = g;
    return ng;
}

double fv_reasm_search_bits(const fv_vmix_window *win, int nwin, int unit, int c, fv_vmix_mode mode) {
    double bits = 0;
    for (int k = 0; k < nwin; k++) {
        int nux = win[k].w / unit, nuy = win[k].h / unit;
        int counts[3] = {nux * nuy, win[k].w % unit ? nuy : 0, win[k].h % unit ? nux : 0};
        for (int g = 0; g < 3; g++)
            if (counts[g] >= 2) bits += lgamma(counts[g] + 1.0) / log(2.0);
    }
    return mode == FV_VMIX_SPATIAL_CHROMATIC ? bits * c : bits;
}

/* Greedy placement of one group: slot by slot in raster order, the remaining unit whose border
 * to already-known pixels (outside the group's unfilled slots) is cheapest. */
static void greedy_group(const planes *p, const rect *slots, group g, uint8_t *unknown, uint8_t *pool,
                         uint8_t *used) {
    const int W = p->W, H = p->H, nc = p->nc;
    const int uw = slots[g.first].w, uh = slots[g.first].h, usz = uw * uh;
    /* copy the units out (pool[k][c][usz]) and mark their pixels unknown */
    for (int k = 0; k < g.count; k++) {
        rect r = slots[g.first + k];
        for (int c = 0; c < nc; c++)
            for (int y = 0; y < uh; y++)
                for (int x = 0; x < uw; x++) {
                    pool[((size_t)k * nc + c) * usz + y * uw + x] = p->pl[c][(r.y + y) * W + r.x + x];
                    unknown[(r.y + y) * W + r.x + x] = 1;
                }
        used[k] = 0;
    }
    static const int dx[4] = {1, -1, 0, 0}, dy[4] = {0, 0, 1, -1};
    for (int k = 0; k < g.count; k++) {
        rect r = slots[g.first + k];
        int best = -1;
        int64_t best_cost = 0;
        for (int j = 0; j < g.count; j++) {
            if (used[j]) continue;
            int64_t cost = 0;
            for (int c = 0; c < nc; c++) {
                const uint8_t *src = pool + ((size_t)j * nc + c) * usz;
                for (int y = 0; y < uh; y++)
                    for (int x = 0; x < uw; x++) {
                        if (y > 0 && y < uh - 1 && x > 0 && x < uw - 1) continue; /* interior */
                        int gx = r.x + x, gy = r.y + y;
                        for (int d = 0; d < 4; d++) {
                            int nx = gx + dx[d], ny = gy + dy[d];
                            if (nx < 0 || ny < 0 || nx >= W || ny >= H) continue;
                            if (nx >= r.x && nx < r.x + uw && ny >= r.y && ny < r.y + uh) continue;
                            if (unknown[ny * W + nx]) continue;
                            cost += sq(src[y * uw + x], p->pl[c][ny * W + nx]);
                        }
                    }
            }
            if (best < 0 || cost < best_cost) {
                best = j;
                best_cost = cost;
            }
        }
        used[best] = 1;
        for (int c = 0; c < nc; c++) {
            const uint8_t *src = pool + ((size_t)best * nc + c) * usz;
            for (int y = 0; y < uh; y++) memcpy(&p->pl[c][(r.y + y) * W + r.x], src + y * uw, (size_t)uw);
        }
        for (int y = 0; y < uh; y++) memset(&unknown[(r.y + y) * W + r.x], 0, (size_t)uw);
    }
}

/* Swap descent: sweeps over all pairs of each group while a sweep improves. */
static void descend(const planes *p, const rect *slots, const group *g, int ng, long max_pairs) {
    long pairs = 0;
    for (int improved = 1; improved && pairs < max_pairs;) {
        improved = 0;
        for (int k = 0; k < ng; k++)
            for (int i = 0; i < g[k].count; i++)
                for (int j = i + 1; j < g[k].count; j++) {
                    rect a = slots[g[k].first + i], b = slots[g[k].first + j];
                    pairs++;
                    if (swap_delta(p, a, b) < 0) {
                        swap_units(p, a, b);
                        improved = 1;
                    }
                }
    }
}

static void copy_planes(uint8_t *dst, const planes *p) {
    size_t hw = (size_t)p->W * p->H;
    for (int c = 0; c < p->nc; c++) memcpy(dst + c * hw, p->pl[c], hw);
}

static void restore_planes(const planes *p, const uint8_t *src) {
    size_t hw = (size_t)p->W * p->H;
    for (int c = 0; c < p->nc; c++) memcpy(p->pl[c], src + c * hw, hw);
}

/* Simulated annealing over random same-group swaps; the planes end at the best state seen. */
static void anneal(const planes *p, const rect *slots, const group *g, int ng, const fv_reasm_cfg *cfg,
                   fv_rng *rng, uint8_t *best_copy, fv_reasm_stats *st) {
    long total = 0;
    for (int k = 0; k < ng; k++) total += g[k].count;
    if (total == 0 || cfg->anneal <= 0) return;
    /* pick a group with probability proportional to its size */
    long *cum = fv_malloc(sizeof(long) * ng);
    long acc = 0;
    for (int k = 0; k < ng; k++) cum[k] = acc += g[k].count;
#define PICK(a, b)                                                                   \
    do {                                                                             \
        long r_ = (long)fv_rng_below(rng, (uint64_t)total);                          \
        int lo_ = 0, hi_ = ng - 1;                                                   \
        while (lo_ < hi_) {                                                          \
            int mid_ = (lo_ + hi_) / 2;                                              \
            if (cum[mid_] > r_) hi_ = mid_;                                          \
            else lo_ = mid_ + 1;                                                     \
        }                                                                            \
        int i_ = (int)fv_rng_below(rng, (uint64_t)g[lo_].count);                     \
        int j_ = (int)fv_rng_below(rng, (uint64_t)g[lo_].count - 1);                 \
        if (j_ >= i_) j_++;                                                          \
        a = slots[g[lo_].first + i_];                                                \
        b = slots[g[lo_].first + j_];                                                \
    } while (0)
    /* initial temperature: the mean size of an uphill move from the start */
    double up = 0;
    int nup = 0;
    for (int t = 0; t < 500; t++) {
        rect a, b;
        PICK(a, b);
        int64_t d = swap_delta(p, a, b);
        if (d > 0) {
            up += (double)d;
            nup++;
        }
    }
    double t0 = nup ? up / nup : 1.0, t1 = t0 * cfg->t_end;
    int64_t e = tv_planes(p), best = e;
    copy_planes(best_copy, p);
    double lr = log(t1 / t0);
    for (long s = 0; s < cfg->anneal; s++) {
        double temp = t0 * exp(lr * (double)s / (double)cfg->anneal);
        rect a, b;
        PICK(a, b);
        int64_t d = swap_delta(p, a, b);
        st->proposals++;
        if (d <= 0 || fv_rng_uniform_d(rng) < exp(-(double)d / temp)) {
            swap_units(p, a, b);
            e += d;
            st->accepted++;
            if (e < best) {
                best = e;
                copy_planes(best_copy, p);
            }
        }
    }
#undef PICK
    restore_planes(p, best_copy);
    free(cum);
}

int fv_reasm_image(uint8_t *out, fv_reasm_stats *st, const uint8_t *mixed, int c, int h, int w,
                   const fv_vmix_window *win, int nwin, const fv_reasm_cfg *cfg, fv_err *e) {
    memset(st, 0, sizeof *st);
    if (c < 1 || c > 4 || h < 1 || w < 1) return fv_err_set(e, "reassemble: bad image shape %dx%dx%d", c, h, w);
    if (cfg->unit < 1) return fv_err_set(e, "reassemble: unit %d must be >= 1", cfg->unit);
    if (cfg->anneal < 0) return fv_err_set(e, "reassemble: annealing budget %ld must be >= 0", cfg->anneal);
    if (!(cfg->t_end > 0 && cfg->t_end <= 1)) return fv_err_set(e, "reassemble: t_end %g must be in (0, 1]", cfg->t_end);
    uint8_t *cover = fv_calloc((size_t)h * w, 1);
    for (int k = 0; k < nwin; k++) {
        const fv_vmix_window *q = &win[k];
        if (q->w < 1 || q->h < 1 || q->x < 0 || q->y < 0 || q->x + q->w > w || q->y + q->h > h) {
            free(cover);
            return fv_err_set(e, "reassemble: window %d (%d,%d %dx%d) leaves the %dx%d image", k, q->x, q->y, q->w,
                              q->h, w, h);
        }
        for (int y = q->y; y < q->y + q->h; y++)
            for (int x = q->x; x < q->x + q->w; x++)
                if (cover[y * w + x]++) {
                    free(cover);
                    return fv_err_set(e, "reassemble: window %d overlaps another window at (%d,%d)", k, x, y);
                }
    }
    double t0 = fv_now();
    size_t hw = (size_t)h * w;
    memcpy(out, mixed, (size_t)c * hw);
    st->tv_mixed = fv_reasm_tv(mixed, c, h, w);
    st->search_bits = fv_reasm_search_bits(win, nwin, cfg->unit, c, cfg->mode);
    rect *slots;
    group *g;
    int ng = build_slots(win, nwin, cfg->unit, &slots, &g);
    int maxcount = 1;
    for (int k = 0; k < ng; k++) maxcount = g[k].count > maxcount ? g[k].count : maxcount;
    uint8_t *pool = fv_malloc((size_t)maxcount * cfg->unit * cfg->unit * c);
    uint8_t *used = fv_malloc((size_t)maxcount);
    uint8_t *best = fv_malloc((size_t)c * hw);
    fv_rng rng;
    fv_rng_seed(&rng, cfg->seed);
    int sets = cfg->mode == FV_VMIX_SPATIAL_CHROMATIC ? c : 1;
    int64_t greedy_sum = 0;
    for (int s = 0; s < sets; s++) {
        planes p = {{0}, sets == 1 ? c : 1, w, h};
        for (int k = 0; k < p.nc; k++) p.pl[k] = out + (size_t)(sets == 1 ? k : s) * hw;
        if (cfg->greedy) {
            memset(cover, 0, hw); /* reused as the "unknown" mask */
            for (int k = 0; k < ng; k++) greedy_group(&p, slots, g[k], cover, pool, used);
            descend(&p, slots, g, ng, 50L * 1000 * 1000);
        }
        greedy_sum += tv_planes(&p);
        anneal(&p, slots, g, ng, cfg, &rng, best, st);
    }
    st->tv_greedy = (double)greedy_sum / (255.0 * 255.0);
    st->tv_final = fv_reasm_tv(out, c, h, w);
    st->seconds = fv_now() - t0;
    free(best);
    free(used);
    free(pool);
    free(g);
    free(slots);
    free(cover);
    return 0;
}

/* ---- the window map unknown: re-deriving Algorithm 1's map from a reassembly ---- */

/* The map in which every full ws_max tile is one window and so is every clipped edge tile: the
 * coarsest map Algorithm 1 can have drawn, so every true window lies inside one of its windows.
 * Returns the window count. */
static int coarse_map(fv_vmix_window *win, int h, int w, int ws_max) {
    int n = 0;
    for (int y = 0; y < h; y += ws_max)
        for (int x = 0; x < w; x += ws_max)
            win[n++] = (fv_vmix_window){x, y, w - x < ws_max ? w - x : ws_max, h - y < ws_max ? h - y : ws_max};
    return n;
}

static int same_map(const fv_vmix_window *a, int na, const fv_vmix_window *b, int nb) {
    return na == nb && memcmp(a, b, sizeof *a * (size_t)na) == 0;
}

int fv_reasm_estimate_map(fv_vmix_window *win, int *nwin, uint8_t *out, int *rounds, const uint8_t *mixed, int c,
                          int h, int w, const fv_vmix_params *vp, int iters, const fv_reasm_cfg *cfg, fv_err *e) {
    fv_vmix_params p = *vp;
    p.verify = 0;
    if (fv_vmix_params_check(&p, h, w, e)) return fv_err_prefix(e, "reassemble: ");
    if (iters < 1) return fv_err_set(e, "reassemble: %d map iterations (need >= 1)", iters);
    if (c < 1 || c > 4) return fv_err_set(e, "reassemble: bad image shape %dx%dx%d", c, h, w);
    size_t isz = (size_t)c * h * w;
    uint8_t *rec = fv_malloc(isz * 2), *scratch = rec + isz;
    fv_vmix_work *work = fv_vmix_work_new();
    static const uint8_t ANY_KEY[FV_VMIX_KEY_BYTES] = {0}; /* the map does not depend on the key */
    fv_reasm_stats st;
    int n = coarse_map(win, h, w, p.ws_max), rc = -1, r = 0;
    if (fv_reasm_image(rec, &st, mixed, c, h, w, win, n, cfg, e)) goto out;
    for (r = 1; r <= iters; r++) {
        fv_vmix_result res;
        if (fv_vmix_image(scratch, &res, work, rec, c, h, w, ANY_KEY, &p, e)) goto out;
        int stable = r > 1 && same_map(win, n, res.windows, res.nwindows);
        n = res.nwindows;
        memcpy(win, res.windows, sizeof *win * (size_t)n);
        if (stable) break;
        if (fv_reasm_image(rec, &st, mixed, c, h, w, win, n, cfg, e)) goto out;
    }
    *nwin = n;
    if (rounds) *rounds = r > iters ? iters : r;
    if (out) memcpy(out, rec, isz);
    rc = 0;
out:
    fv_vmix_work_destroy(&work);
    free(rec);
    return rc;
}
