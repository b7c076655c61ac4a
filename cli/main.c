/* main.c: the fedvim command. It only dispatches to subcommands (cmd_*.c); it is the one place
 * that knows every role. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cmds.h"

typedef struct {
    const char *name;
    fv_cmd_fn fn;
    const char *what;
} fv_cmd;

static const fv_cmd CMDS[] = {
    {"train", fv_cmd_train, "train a model centrally on one data set"},
    {"distill", fv_cmd_distill, "knowledge distillation of a trained teacher into a student model"},
    {"bench", fv_cmd_bench, "benchmarks: train, mix, fl"},
    {"vfe", fv_cmd_vfe, "Visual Feature Entropy of PNG files or a data set"},
    {"bounds", fv_cmd_bounds, "VisualMixer window-size bounds WS_min / WS_max"},
    {"mix", fv_cmd_mix, "VisualMixer a data set or PNG files with a client key"},
    {"keygen", fv_cmd_keygen, "create a VisualMixer client secret key file"},
    {"run", fv_cmd_run, "run federated experiments on this machine (coordinator + worker processes)"},
    {"coordinator", fv_cmd_coordinator, "the federated server of a multi-host run"},
    {"worker", fv_cmd_worker, "serve a coordinator's clients (multi-host runs)"},
    {"attack", fv_cmd_attack, "built-in privacy attacks: gan, dlg, invert, mia, reassemble, recognise, inverter"},
    {"obfuscate", fv_cmd_obfuscate, "baseline obfuscations (Gaussian noise, InstaHide) of a data set"},
    {"trace", fv_cmd_trace, "generate a client speed and availability trace for [fl] trace"},
    {"report", fv_cmd_report, "Markdown report (tables, gnuplot plots, image links) of results folders"},
};

static void usage(FILE *f) {
    fprintf(f, "usage: fedvim <command> [flags]   (fedvim <command> --help for its flags)\n\ncommands:\n");
    for (size_t i = 0; i < sizeof CMDS / sizeof CMDS[0]; i++) fprintf(f, "  %-12s %s\n", CMDS[i].name, CMDS[i].what);
}

/* How idle OpenMP threads wait between parallel regions. libgomp's default spins for about 300,000
 * iterations before sleeping: on a machine whose cores are shared (other processes, other fedvim
 * workers) the spinning threads stall each other (`fedvim train --threads 2` measured 15x slower
 * than one thread under load). OMP_WAIT_POLICY=PASSIVE (sleep at once) fixes that but pays a
 * futex wake-up per region: LeNet-5 training at 2 threads ran 1.43x slower than spinning on an
 * idle 2-core machine (22,200 against 31,700 images/s). A short spin, GOMP_SPINCOUNT=10000, kept
 * both: 31,700 idle, and 7,300-7,500 beside two busy processes where PASSIVE gave 7,000-8,000 and
 * the default 3,400-4,900 (`bench train --model lenet5 --threads 2`, 2-core AMD EPYC, 2026-11-26).
 * libgomp reads these once, when it is loaded, so when the user has chosen neither, fedvim sets
 * GOMP_SPINCOUNT and re-executes itself once. (GOMP_SPINCOUNT is libgomp's: GCC's -fopenmp.) */
static void bounded_openmp_spin(char **argv) {
    if (getenv("OMP_WAIT_POLICY") || getenv("GOMP_SPINCOUNT")) return;
    if (setenv("GOMP_SPINCOUNT", "10000", 1) != 0) return;
    execv("/proc/self/exe", argv);
    /* exec failed (no /proc): run on with the default policy */
}

int main(int argc, char **argv) {
    bounded_openmp_spin(argv);
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "help") == 0) {
        usage(stdout);
        return 0;
    }
    if (strcmp(argv[1], "--version") == 0) {
        printf("fedvim %s\n", FEDVIM_VERSION);
        return 0;
    }
    for (size_t i = 0; i < sizeof CMDS / sizeof CMDS[0]; i++)
        if (strcmp(argv[1], CMDS[i].name) == 0) return CMDS[i].fn(argc - 1, argv + 1);
    fprintf(stderr, "fedvim: unknown command '%s'\n", argv[1]);
    usage(stderr);
    return 2;
}
