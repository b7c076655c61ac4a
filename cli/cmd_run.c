/* cmd_run.c: `fedvim run EXP.ini [EXP2.ini ...]`: run federated experiments on this machine. For
 * each config it resolves the config into its results folder, creates the run's keys, starts the
 * coordinator in this process and fl.workers worker processes (this same fedvim binary, `fedvim
 * worker`, each with its own key and a log file under logs/), shows progress per round, and ends
 * with the summary; several configs end with a comparison table (accuracy per round, the final
 * gap, the measured VFE). `--resume DIR` continues a stopped run from its last completed round.
 * fl.workers is capped by what the machine lets this user start (check_workers_cap).
 * Not here: the coordinator and worker logic (coordinator/, worker/).
 */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cmds.h"
#include "fl/config.h"
#include "coordinator.h"
#include "cuda/net.h"
#include "fl_cli.h"
#include "flags.h"

#define MAX_CONFIGS 16
/* What one worker process costs the machine (workers_cap): tasks of the launching user beyond its
 * training.threads (the main thread is one of them; ZeroMQ adds an I/O and a reaper thread), and
 * descriptors of the coordinator (its connection); the coordinator keeps FD_RESERVE descriptors for
 * itself (logs, data files, ZeroMQ's own) beyond those already open. */
#define WORKER_EXTRA_TASKS 2
#define WORKER_FDS 1
#define FD_RESERVE 64

/* Ctrl-C: stop the run cleanly (workers told, files consistent) instead of dying mid-round. */
static volatile sig_atomic_t interrupted;
static void on_sigint(int sig) {
    (void)sig;
    interrupted = 1;
}

typedef struct {
    pid_t *pid;
    int *status; /* -1 running, else the wait status */
    int n;
    const char *dir;
    fv_coord *c;
} workers;

/* Start worker i: this binary's `worker` subcommand, stdout and stderr into dir/logs/. */
static pid_t spawn_worker(const char *dir, const char *endpoint, int i, int vmix, int security, const char *data_dir,
                          const char *device, fv_err *e) {
    char key[1200], skey[1200], ckey[1200], logp[1200], name[32];
    snprintf(key, sizeof key, "%s/keys/worker-%d.key", dir, i);
    snprintf(skey, sizeof skey, "%s/keys/coordinator.key.pub", dir);
    snprintf(ckey, sizeof ckey, "%s/keys/clients.vmix.key", dir);
    snprintf(logp, sizeof logp, "%s/logs/worker-%d.log", dir, i);
    snprintf(name, sizeof name, "local-%d", i);
    const char *argv[24];
    int a = 0;
    argv[a++] = "fedvim";
    argv[a++] = "worker";
    argv[a++] = "--connect";
    argv[a++] = endpoint;
    argv[a++] = "--name";
    argv[a++] = name;
    if (security) {
        argv[a++] = "--key";
        argv[a++] = key;
        argv[a++] = "--server-key";
        argv[a++] = skey;
    } else {
        argv[a++] = "--insecure";
    }
    if (vmix) {
        argv[a++] = "--client-keys";
        argv[a++] = ckey;
    }
    if (data_dir) {
        argv[a++] = "--data";
        argv[a++] = data_dir;
    }
    if (device) {
        argv[a++] = "--device";
        argv[a++] = device;
    }
    argv[a] = NULL;
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        fv_err_set(e, "cannot start worker %d: %s", i, strerror(errno));
        return -1;
    }
    if (pid == 0) {
        /* a worker dies with its launcher: no orphan keeps a core busy */
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        int fd = open(logp, O_WRONLY | O_CREAT | O_APPEND, 0644);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
            close(fd);
        }
        execv("/proc/self/exe", (char *const *)argv);
        fprintf(stderr, "cannot exec /proc/self/exe: %s\n", strerror(errno));
        _exit(127);
    }
    return pid;
}

/* Descriptors this process has open now (-1 when /proc/self/fd cannot be read). */
static long open_fds(void) {
    DIR *d = opendir("/proc/self/fd");
    if (!d) return -1;
    long n = 0;
    struct dirent *de;
    while ((de = readdir(d)))
        if (de->d_name[0] != '.') n++;
    closedir(d);
    return n - 1; /* the listing's own descriptor */
}

/* The rule for how many workers `fedvim run` may start: each costs training.threads +
 * WORKER_EXTRA_TASKS tasks against RLIMIT_NPROC (ulimit -u; threads count there on Linux) and
 * WORKER_FDS descriptors of the coordinator against RLIMIT_NOFILE (ulimit -n), beyond the
 * descriptors open now and FD_RESERVE. Returns 0 when fl.workers fits both, else -1 with e naming
 * the limit, its value and the most workers it allows. */
static int check_workers_cap(const fv_config *cfg, fv_err *e) {
    struct rlimit rl;
    const long per_worker = cfg->threads + WORKER_EXTRA_TASKS;
    if (getrlimit(RLIMIT_NPROC, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY &&
        (rlim_t)cfg->workers * (rlim_t)per_worker > rl.rlim_cur)
        return fv_config_key_error(cfg, e, "fl", "workers",
                                   "%d worker processes need %ld tasks (%ld each: training.threads %d + %d), "
                                   "more than RLIMIT_NPROC (ulimit -u) = %llu allows: at most %llu workers here",
                                   cfg->workers, cfg->workers * per_worker, per_worker, cfg->threads,
                                   WORKER_EXTRA_TASKS, (unsigned long long)rl.rlim_cur,
                                   (unsigned long long)(rl.rlim_cur / (rlim_t)per_worker));
    long used = open_fds();
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY && used >= 0) {
        const long need = (long)cfg->workers * WORKER_FDS + used + FD_RESERVE;
        if ((rlim_t)need > rl.rlim_cur) {
            long room = (long)rl.rlim_cur - used - FD_RESERVE;
            return fv_config_key_error(cfg, e, "fl", "workers",
                                       "%d worker processes need %ld file descriptors in the coordinator (%d each, "
                                       "%ld open, %d kept in reserve), more than RLIMIT_NOFILE (ulimit -n) = %llu "
                                       "allows: at most %ld workers here",
                                       cfg->workers, need, WORKER_FDS, used, FD_RESERVE,
                                       (unsigned long long)rl.rlim_cur, room > 0 ? room / WORKER_FDS : 0);
        }
    }
    return 0;
}

/* Reap workers that exited; stop the run when none is left. */
static int should_stop(void *ctx, char *why, size_t cap) {
    workers *ws = ctx;
    if (interrupted) {
        snprintf(why, cap, "interrupted");
        return 1;
    }
    int running = 0;
    for (int i = 0; i < ws->n; i++) {
        if (ws->status[i] == -1) {
            int st;
            pid_t r = waitpid(ws->pid[i], &st, WNOHANG);
            if (r == ws->pid[i]) {
                ws->status[i] = st;
                fv_coord_worker_exited(ws->c, (long)ws->pid[i]);
                fprintf(stderr, "run: worker %d exited (%s %d); its log is %s/logs/worker-%d.log\n", i,
                        WIFEXITED(st) ? "status" : "signal", WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st),
                        ws->dir, i);
            }
        }
        running += ws->status[i] == -1;
    }
    if (running > 0) return 0;
    snprintf(why, cap, "all %d worker processes exited (see %s/logs/)", ws->n, ws->dir);
    return 1;
}

/* Wait for the workers (they were told to shut down), then make sure none is left. */
static void reap_all(workers *ws) {
    double end = fv_now() + 10;
    for (;;) {
        int running = 0;
        for (int i = 0; i < ws->n; i++)
            if (ws->status[i] == -1) {
                int st;
                if (waitpid(ws->pid[i], &st, WNOHANG) == ws->pid[i]) ws->status[i] = st;
                else running++;
            }
        if (!running) return;
        if (fv_now() > end) break;
        usleep(20000);
    }
    for (int sig = 0; sig < 2; sig++) {
        for (int i = 0; i < ws->n; i++)
            if (ws->status[i] == -1) kill(ws->pid[i], sig ? SIGKILL : SIGTERM);
        double until = fv_now() + 2;
        while (fv_now() < until) {
            int running = 0;
            for (int i = 0; i < ws->n; i++)
                if (ws->status[i] == -1) {
                    int st;
                    if (waitpid(ws->pid[i], &st, WNOHANG) == ws->pid[i]) ws->status[i] = st;
                    else running++;
                }
            if (!running) return;
            usleep(20000);
        }
    }
}

typedef struct {
    char name[FV_CFG_STR];
    double *acc, *acc_mixed;
    int rounds, vmix;
    double vfe_clients, vfe_test, vfe_clean;
    char *summary;
} run_result;

/* One experiment from its config (or its results folder). Returns 0 or -1 with e set. */
/* With --keys DIR, RESULTS/keys becomes a link to DIR (made private), so that a resumed run finds
 * the same keys. A results folder that already has keys of its own keeps them. */
static int link_keys(const char *dir, const char *keys_dir, fv_err *e) {
    char link[1200], target[PATH_MAX], cur[PATH_MAX];
    snprintf(link, sizeof link, "%s/keys", dir);
    if (fv_mkdirs(keys_dir, e) != 0) return -1;
    if (chmod(keys_dir, 0700) != 0) return fv_err_set(e, "cannot make %s private: %s", keys_dir, strerror(errno));
    if (!realpath(keys_dir, target)) return fv_err_set(e, "--keys %s: %s", keys_dir, strerror(errno));
    ssize_t n = readlink(link, cur, sizeof cur - 1);
    if (n >= 0) {
        cur[n] = 0;
        if (strcmp(cur, target) == 0) return 0;
        unlink(link);
    } else if (access(link, F_OK) == 0) {
        return fv_err_set(e, "%s already has keys of its own; --keys cannot replace them (use another output.name)",
                          dir);
    }
    if (symlink(target, link) != 0) return fv_err_set(e, "cannot link %s to %s: %s", link, target, strerror(errno));
    return 0;
}

/* Where the workers train: the --device list, parsed once (n = 0: no --device, the workers'
 * default, the CPU). */
typedef struct {
    int dev[FV_MAX_DEVICES]; /* -1: cpu */
    int n;
} device_list;

/* The --device of worker i: NULL without a list, else entry i mod n, round-robin ("cuda:0,1"
 * puts workers 0, 2, ... on GPU 0 and 1, 3, ... on GPU 1). */
static const char *worker_device(const device_list *dl, int i, char *buf, size_t n) {
    if (dl->n < 1) return NULL;
    int d = dl->dev[i % dl->n];
    if (d < 0) return "cpu";
    snprintf(buf, n, "cuda:%d", d);
    return buf;
}

static int run_one(const char *config_path, const char *resume_dir, const char *const *sets, int nsets,
                   int overwrite, int quiet, const char *data_dir, const device_list *devices, const char *keys_dir, run_result *res,
                   fv_err *e) {
    fv_config cfg;
    char dir[1024];
    char *text = NULL;
    int done = 0;
    if (resume_dir) {
        int r = fv_flcli_reopen(resume_dir, &cfg, &text, e);
        if (r < 0) return -1;
        done = r == 1;
        snprintf(dir, sizeof dir, "%s", resume_dir);
    } else if (fv_flcli_prepare(config_path, sets, nsets, overwrite, &cfg, dir, sizeof dir, &text, e) != 0) {
        return -1;
    }
    snprintf(res->name, sizeof res->name, "%s", cfg.name);
    if (done) {
        free(text);
        return fv_err_set(e, "%s already completed all its rounds (see its summary.json)", dir);
    }
    if (check_workers_cap(&cfg, e) != 0) {
        free(text);
        return -1;
    }
    if (keys_dir && !resume_dir && link_keys(dir, keys_dir, e) != 0) {
        free(text);
        return -1;
    }
    char logs[1100];
    snprintf(logs, sizeof logs, "%s/logs", dir);
    if (fv_mkdirs(logs, e) != 0 || (cfg.security && fv_flcli_local_keys(dir, cfg.workers, fv_config_client_keyed(&cfg), e) != 0)) {
        free(text);
        return -1;
    }
    if (!cfg.security && fv_config_client_keyed(&cfg) && fv_flcli_local_keys(dir, 0, 1, e) != 0) {
        free(text);
        return -1;
    }
    fv_identity id;
    fv_allowlist allow = {0};
    char p[1200], evk[1200];
    if (cfg.security) {
        snprintf(p, sizeof p, "%s/keys/coordinator.key", dir);
        if (fv_identity_load(p, &id, e) != 0) {
            free(text);
            return -1;
        }
        snprintf(p, sizeof p, "%s/keys/allow.txt", dir);
        if (fv_allowlist_load(p, 100000, &allow, e) != 0) {
            fv_identity_wipe(&id);
            free(text);
            return -1;
        }
    }
    snprintf(evk, sizeof evk, "%s/keys/eval.vmix.key", dir);
    char clik[1200]; /* the simulator holds the clients' keys: the attacker's evaluation may use them */
    snprintf(clik, sizeof clik, "%s/keys/clients.vmix.key", dir);
    fv_coord_opts o = {
        .cfg = &cfg,
        .config_text = text,
        .bind = "tcp://127.0.0.1:*",
        .id = cfg.security ? &id : NULL,
        .allow = cfg.security ? &allow : NULL,
        .dir = dir,
        .resume = resume_dir != NULL,
        .eval_key = cfg.vmix ? evk : NULL,
        .data_dir = data_dir,
        .client_keys = fv_config_client_keyed(&cfg) ? clik : NULL,
        .threads = 1,
        .quiet = quiet,
    };
    if (!quiet)
        fprintf(stderr, "run: %s: %d rounds, %d clients (%d per round), %s on %s, %d worker processes%s -> %s\n",
                cfg.name, cfg.rounds, cfg.clients, fv_config_clients_per_round(&cfg), cfg.model, cfg.dataset,
                cfg.workers, cfg.vmix ? ", VisualMixer on" : "", dir);
    fv_coord *c = fv_coord_new(&o, e);
    fv_identity_wipe(&id);
    fv_allowlist_free(&allow);
    if (!c) {
        free(text);
        return -1;
    }
    workers ws = {fv_calloc((size_t)cfg.workers, sizeof(pid_t)), fv_malloc((size_t)cfg.workers * sizeof(int)), 0, dir, c};
    int rc = 0;
    for (int i = 0; i < cfg.workers; i++) {
        char wdev[32];
        const char *wd = worker_device(devices, i, wdev, sizeof wdev);
        if (wd && !quiet) fprintf(stderr, "run: worker local-%d trains on %s\n", i, wd);
        pid_t pid = spawn_worker(dir, fv_coord_endpoint(c), i, fv_config_client_keyed(&cfg), cfg.security, data_dir, wd, e);
        if (pid < 0) {
            rc = -1;
            break;
        }
        ws.pid[ws.n] = pid;
        ws.status[ws.n++] = -1;
    }
    if (rc == 0) {
        fv_coord_set_stop(c, should_stop, &ws);
        rc = fv_coord_run(c, e);
    }
    reap_all(&ws);
    if (rc == 0) {
        const double *acc, *accm;
        int n;
        fv_coord_history(c, &acc, &accm, &n);
        res->rounds = n;
        res->acc = fv_malloc((size_t)(n ? n : 1) * sizeof(double));
        res->acc_mixed = fv_malloc((size_t)(n ? n : 1) * sizeof(double));
        memcpy(res->acc, acc, (size_t)n * sizeof(double));
        memcpy(res->acc_mixed, accm, (size_t)n * sizeof(double));
        res->vmix = cfg.vmix;
        fv_coord_vfe(c, &res->vfe_clients, &res->vfe_test, &res->vfe_clean);
        res->summary = fv_strdup(fv_coord_summary(c));
    }
    fv_coord_destroy(&c);
    free(ws.pid);
    free(ws.status);
    free(text);
    if (rc != 0) {
        char ck[1200];
        snprintf(ck, sizeof ck, "%s/checkpoint.safetensors", dir);
        if (access(ck, F_OK) == 0) {
            char msg[FV_ERR_MAX];
            snprintf(msg, sizeof msg, "%s", e->msg);
            fv_err_set(e, "%.300s; continue with: fedvim run --resume %.180s", msg, dir);
        }
    }
    return rc;
}

int fv_cmd_run(int argc, char **argv) {
    const char *resume = NULL, *data_dir = NULL, *keys_dir = NULL, *device = NULL;
    int json = 0, quiet = 0, overwrite = 0, help_config = 0, tf32 = 0;
    fv_flag flags[] = {
        {"resume", FV_FLAG_STRING, &resume, "continue the stopped run in this results folder", 0, 0},
        {"overwrite", FV_FLAG_BOOL, &overwrite, "replace the results of an earlier run of the same name", 0, 0},
        {"data", FV_FLAG_STRING, &data_dir, "data folder (overrides data.dir for coordinator and workers)", 0, 0},
        {"device", FV_FLAG_STRING, &device, "where the workers train: cpu (default), cuda[:N] (all on device N) or cuda:N,M,... (worker i on the i-th listed device, round-robin); CUDA needs a CUDA build", 0, 0},
        {"tf32", FV_FLAG_BOOL, &tf32, "with --device cuda: the workers allow TF32 tensor cores for FP32 products (sets training.tf32 = true, recorded in config.resolved.ini; off by default)", 0, 0},
        {"keys", FV_FLAG_STRING, &keys_dir,
         "key folder to use (created when missing) instead of a fresh one per run: the same keys and "
         "config reproduce a VisualMixer run bitwise", 0, 0},
        {"json", FV_FLAG_BOOL, &json, "print the summary as one JSON object last on stdout", 0, 0},
        {"quiet", FV_FLAG_BOOL, &quiet, "no progress lines", 0, 0},
        {"help-config", FV_FLAG_BOOL, &help_config, "list every config key with its default, range and meaning", 0, 0},
    };
    const char *usage = "EXP.ini [EXP2.ini ...] [--set section.key=value ...] [flags]\n"
                        "       fedvim run --resume RESULTS_DIR [flags]\n"
                        "(--set section.key=value overrides any key of the config; repeatable)";
    const char *sets[FV_FLCLI_MAX_SETS];
    int nsets = 0;
    fv_err e = {{0}};
    if (fv_flcli_take_sets(&argc, argv, sets, &nsets, &e) != 0) {
        fprintf(stderr, "fedvim run: %s\n", e.msg);
        return 2;
    }
    const char *pos[MAX_CONFIGS];
    int npos = 0;
    int r = fv_flags_parse("run", usage, flags, sizeof flags / sizeof flags[0], argc, argv, pos, MAX_CONFIGS, &npos, &e);
    if (r == 1) return 0;
    if (r < 0) {
        fprintf(stderr, "%s\n", e.msg);
        return 2;
    }
    device_list devices = {.n = 0};
    if (device && fv_device_list_parse(device, devices.dev, FV_MAX_DEVICES, &devices.n, &e) != 0) {
        fprintf(stderr, "fedvim run: %s\n", e.msg);
        return 2;
    }
    if (help_config) {
        fv_config_print_schema(stdout);
        return 0;
    }
    if (tf32) { /* an explicit opt-in: only where it means something, and only for a new run */
        int cuda = 0;
        for (int i = 0; i < devices.n; i++) cuda |= devices.dev[i] >= 0;
        if (!cuda || resume) {
            fprintf(stderr, "fedvim run: --tf32 %s\n", resume ? "cannot change a resumed run (its config keeps training.tf32)"
                                                             : "needs --device cuda[:N]: the CPU has no TF32");
            return 2;
        }
        if (nsets == FV_FLCLI_MAX_SETS) {
            fprintf(stderr, "fedvim run: too many --set with --tf32 (at most %d)\n", FV_FLCLI_MAX_SETS - 1);
            return 2;
        }
        sets[nsets++] = "training.tf32=true";
    }
    if (resume && (npos > 0 || nsets > 0)) {
        fprintf(stderr, "fedvim run: --resume takes no config and no --set: the run continues exactly as it started\n");
        return 2;
    }
    if (!resume && npos == 0) {
        fv_flags_help(stderr, "run", usage, flags, sizeof flags / sizeof flags[0]);
        return 2;
    }
    int n = resume ? 1 : npos;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigint;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    run_result res[MAX_CONFIGS];
    memset(res, 0, sizeof res);
    int status = 0, ok = 0;
    for (int i = 0; i < n && !interrupted; i++) {
        if (run_one(resume ? NULL : pos[i], resume, sets, nsets, overwrite, quiet, data_dir, &devices, keys_dir, &res[i], &e) !=
            0) {
            fprintf(stderr, "fedvim run: %s%s%s\n", res[i].name[0] ? res[i].name : "", res[i].name[0] ? ": " : "", e.msg);
            status = 1;
            continue;
        }
        ok++;
        if (!quiet && !json) fv_flcli_print_summary(stderr, res[i].summary);
    }
    if (n > 1 || (ok == 1 && !quiet)) {
        fv_flcli_result cr[MAX_CONFIGS];
        int k = 0;
        for (int i = 0; i < n; i++)
            if (res[i].summary)
                cr[k++] = (fv_flcli_result){res[i].name, res[i].acc, res[i].acc_mixed, res[i].rounds, res[i].vmix,
                                            res[i].vfe_clients, res[i].vfe_test, res[i].vfe_clean};
        if (k > 0) fv_flcli_print_comparison(json ? stderr : stdout, cr, k);
    }
    if (json) {
        if (n == 1 && res[0].summary) {
            printf("%s\n", res[0].summary);
        } else {
            printf("{\"runs\":[");
            int first = 1;
            for (int i = 0; i < n; i++)
                if (res[i].summary) {
                    printf("%s%s", first ? "" : ",", res[i].summary);
                    first = 0;
                }
            printf("]}\n");
        }
    }
    for (int i = 0; i < n; i++) {
        free(res[i].acc);
        free(res[i].acc_mixed);
        free(res[i].summary);
    }
    return status;
}
