/* cmd_trace.c: `fedvim trace`: generate a client heterogeneity trace (shared/fl/trace.h,
 * docs/heterogeneity.md) for [fl] trace: log-normal compute speeds and on/off availability as
 * alternating exponential periods, deterministic in --seed. The file is written atomically and read
 * back through the trace parser before the command succeeds, so what it writes is what a run reads.
 * Not here: the virtual clock (shared/fl/vclock.h). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmds.h"
#include "flags.h"
#include "fl/trace.h"

int fv_cmd_trace(int argc, char **argv) {
    const char *out = NULL, *speed = "lognormal";
    int clients = 0, seed = 1;
    double sigma = 0.5, median = 100, mean_on = 3600, mean_off = 0, horizon = 1e6;
    fv_flag flags[] = {
        {"clients", FV_FLAG_INT, &clients, "number of clients (required; fl.clients of the runs)", 1, 1e6},
        {"speed", FV_FLAG_STRING, &speed, "speed distribution: lognormal (median x exp(sigma N(0,1))) or constant", 0, 0},
        {"sigma", FV_FLAG_FLOAT, &sigma, "log-normal sigma of the speeds", 0, 10},
        {"median", FV_FLAG_FLOAT, &median, "median speed, images per virtual second", 1e-6, 1e12},
        {"mean-on", FV_FLAG_FLOAT, &mean_on, "mean length of an available period, virtual seconds", 1e-6, 1e15},
        {"mean-off", FV_FLAG_FLOAT, &mean_off, "mean length of an unavailable period (0: always available)", 0, 1e15},
        {"horizon", FV_FLAG_FLOAT, &horizon, "virtual seconds covered (clients are unavailable after)", 1e-6, 1e15},
        {"seed", FV_FLAG_INT, &seed, "seed of every draw", 0, 2147483647},
        {"out", FV_FLAG_STRING, &out, "trace file to write (required)", 0, 0},
    };
    const char *pos[1];
    int npos;
    fv_err e = {{0}};
    int r = fv_flags_parse("trace", "--clients N --out FILE [flags]", flags, sizeof flags / sizeof flags[0], argc,
                           argv, pos, 0, &npos, &e);
    if (r == 1) return 0;
    if (r < 0) {
        fprintf(stderr, "%s\n", e.msg);
        return 2;
    }
    if (!out || clients < 1) {
        fprintf(stderr, "fedvim trace: --clients N and --out FILE are required\n");
        return 2;
    }
    if (strcmp(speed, "lognormal") != 0 && strcmp(speed, "constant") != 0) {
        fprintf(stderr, "fedvim trace: --speed: '%s' is not one of lognormal|constant\n", speed);
        return 2;
    }
    fv_trace_gen g = {clients, median, strcmp(speed, "constant") == 0 ? 0 : sigma, mean_on, mean_off, horizon,
                      (uint64_t)seed};
    char *text = fv_trace_generate(&g);
    fv_trace t;
    int rc = fv_trace_parse(&t, out, text, strlen(text), clients, &e);
    if (rc == 0) rc = fv_write_file_atomic(out, text, strlen(text), &e);
    free(text);
    if (rc != 0) {
        fprintf(stderr, "fedvim trace: %s\n", e.msg);
        return 1;
    }
    double logsum = 0, on = 0;
    for (int i = 0; i < clients; i++) {
        logsum += log(t.speed[i]);
        for (int k = t.first[i]; k < t.first[i + 1]; k++)
            on += (t.iv[k].off < horizon ? t.iv[k].off : horizon) - (t.iv[k].on < horizon ? t.iv[k].on : horizon);
    }
    fprintf(stderr, "trace: wrote %s: %d clients, %d on-intervals, geometric mean speed %.4g images/s, available "
            "%.1f%% of [0, %g)\n", out, clients, t.niv, exp(logsum / clients), 100 * on / (clients * horizon), horizon);
    fv_trace_free(&t);
    return 0;
}
