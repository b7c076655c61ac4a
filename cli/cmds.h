/* cmds.h: every subcommand's entry point. Each returns the process exit status (0 success,
 * 1 failure with a message already printed, 2 usage error). */
#ifndef FV_CMDS_H
#define FV_CMDS_H
typedef int (*fv_cmd_fn)(int argc, char **argv);
int fv_cmd_train(int argc, char **argv);
int fv_cmd_distill(int argc, char **argv);
int fv_cmd_bench(int argc, char **argv);
int fv_cmd_vfe(int argc, char **argv);
int fv_cmd_bounds(int argc, char **argv);
int fv_cmd_mix(int argc, char **argv);
int fv_cmd_keygen(int argc, char **argv);
int fv_bench_mix(int argc, char **argv); /* `fedvim bench mix` (cli/bench_mix.c) */
int fv_bench_fl(int argc, char **argv); /* `fedvim bench fl` (cli/bench_fl.c) */
int fv_cmd_run(int argc, char **argv);
int fv_cmd_coordinator(int argc, char **argv);
int fv_cmd_worker(int argc, char **argv);
int fv_cmd_attack(int argc, char **argv);
int fv_cmd_obfuscate(int argc, char **argv);
int fv_cmd_report(int argc, char **argv);
int fv_cmd_trace(int argc, char **argv);
#endif
