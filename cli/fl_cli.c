/* fl_cli.c: see fl_cli.h. */
#include "fl_cli.h"

#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "attack_api.h"
#include "vmix/vmix_key.h"

int fv_flcli_take_sets(int *argc, char **argv, const char **sets, int *nsets, fv_err *e) {
    int out = 1;
    *nsets = 0;
    for (int i = 1; i < *argc; i++) {
        const char *a = argv[i], *v = NULL;
        if (strcmp(a, "--set") == 0) {
            if (i + 1 >= *argc) return fv_err_set(e, "--set needs section.key=value");
            v = argv[++i];
        } else if (strncmp(a, "--set=", 6) == 0) {
            v = a + 6;
        } else {
            argv[out++] = argv[i];
            continue;
        }
        if (*nsets >= FV_FLCLI_MAX_SETS) return fv_err_set(e, "more than %d --set flags", FV_FLCLI_MAX_SETS);
        sets[(*nsets)++] = v;
    }
    *argc = out;
    return 0;
}

static int exists(const char *dir, const char *name) {
    char p[1200];
    if (snprintf(p, sizeof p, "%s/%s", dir, name) >= (int)sizeof p) return 0;
    return access(p, F_OK) == 0;
}

static void remove_in(const char *dir, const char *name) {
    char p[1200];
    if (snprintf(p, sizeof p, "%s/%s", dir, name) < (int)sizeof p) unlink(p);
}

/* Remove the files of an earlier run (never the keys, never anything we did not write). */
static void clear_results(const char *dir) {
    static const char *const files[] = {"metrics.jsonl", "checkpoint.safetensors", "summary.json",
                                        "model.safetensors", "coordinator.log", "config.resolved.ini",
                                        "attacks.jsonl"};
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) remove_in(dir, files[i]);
    const char *subs[] = {"client_state", "logs", "attacks"};
    for (int s = 0; s < 3; s++) {
        char p[1200];
        snprintf(p, sizeof p, "%s/%s", dir, subs[s]);
        DIR *d = opendir(p);
        if (!d) continue;
        struct dirent *de;
        while ((de = readdir(d)))
            if (de->d_name[0] != '.') remove_in(p, de->d_name);
        closedir(d);
    }
}

int fv_flcli_prepare(const char *config_path, const char *const *sets, int nsets, int overwrite,
                     fv_config *cfg, char *dir, size_t dir_cap, char **text, fv_err *e) {
    fv_config_defaults(cfg);
    if (fv_config_load(cfg, config_path, e) != 0) return -1;
    for (int i = 0; i < nsets; i++)
        if (fv_config_set(cfg, sets[i], e) != 0) return -1;
    if (!*cfg->name) {
        const char *b = strrchr(config_path, '/');
        b = b ? b + 1 : config_path;
        size_t l = strlen(b);
        if (l > 4 && strcmp(b + l - 4, ".ini") == 0) l -= 4;
        if (l == 0 || l >= sizeof cfg->name) return fv_err_set(e, "%s: cannot derive a results name; set [output] name", config_path);
        memcpy(cfg->name, b, l);
        cfg->name[l] = 0;
    }
    if (fv_config_check(cfg, e) != 0 || fv_attack_check_config(cfg, e) != 0) return -1;
    int n = snprintf(dir, dir_cap, "%s/%s", cfg->out_dir, cfg->name);
    if (n < 0 || (size_t)n >= dir_cap) return fv_err_set(e, "results path %s/%s is too long", cfg->out_dir, cfg->name);
    if (exists(dir, "checkpoint.safetensors") || exists(dir, "metrics.jsonl") || exists(dir, "summary.json")) {
        if (!overwrite)
            return fv_err_set(e,
                              "%s already holds results: continue it with --resume %s, start over with "
                              "--overwrite, or pick another name with --set output.name=NAME",
                              dir, dir);
        clear_results(dir);
    }
    if (fv_mkdirs(dir, e) != 0) return -1;
    *text = fv_config_write(cfg);
    char p[1200];
    snprintf(p, sizeof p, "%s/config.resolved.ini", dir);
    if (fv_write_file_atomic(p, *text, strlen(*text), e) != 0) {
        free(*text);
        *text = NULL;
        return -1;
    }
    return 0;
}

int fv_flcli_reopen(const char *dir, fv_config *cfg, char **text, fv_err *e) {
    char p[1200];
    snprintf(p, sizeof p, "%s/config.resolved.ini", dir);
    fv_config_defaults(cfg);
    if (access(p, F_OK) != 0)
        return fv_err_set(e, "%s is not a fedvim results folder (no config.resolved.ini)", dir);
    if (fv_config_load(cfg, p, e) != 0 || fv_config_check(cfg, e) != 0 || fv_attack_check_config(cfg, e) != 0)
        return -1;
    *text = fv_config_write(cfg);
    /* the config must be exactly what ran: the checkpoint's hash is over this text */
    uint8_t *raw = NULL;
    size_t len = 0;
    if (fv_read_file(p, 1 << 20, &raw, &len, e) != 0) {
        free(*text);
        return -1;
    }
    int same = len == strlen(*text) && memcmp(raw, *text, len) == 0;
    free(raw);
    if (!same) {
        free(*text);
        *text = NULL;
        return fv_err_set(e, "%s was edited after the run started; resuming needs the config as it ran", p);
    }
    return exists(dir, "summary.json") ? 1 : 0;
}

static int ensure_identity(const char *path, fv_identity *id, fv_err *e) {
    if (access(path, F_OK) == 0) return fv_identity_load(path, id, e);
    fv_identity_generate(id);
    return fv_identity_save(path, id, e);
}

int fv_flcli_local_keys(const char *dir, int nworkers, int vmix, fv_err *e) {
    char kd[1100], p[1200];
    snprintf(kd, sizeof kd, "%s/keys", dir);
    if (fv_mkdirs(kd, e) != 0) return -1;
    if (chmod(kd, 0700) != 0) return fv_err_set(e, "cannot make %s private: %s", kd, strerror(errno));
    fv_identity id;
    snprintf(p, sizeof p, "%s/coordinator.key", kd);
    if (ensure_identity(p, &id, e) != 0) return -1;
    fv_identity_wipe(&id);
    size_t cap = (size_t)nworkers * (FV_PUBID_STR_LEN + 32) + 64, len = 0;
    char *allow = fv_malloc(cap);
    len += (size_t)snprintf(allow, cap, "# workers admitted by the coordinator of this run\n");
    for (int i = 0; i < nworkers; i++) {
        snprintf(p, sizeof p, "%s/worker-%d.key", kd, i);
        if (ensure_identity(p, &id, e) != 0) {
            free(allow);
            return -1;
        }
        char line[FV_PUBID_STR_LEN + 1];
        fv_pubid_format(line, sizeof line, &id.pub);
        fv_identity_wipe(&id);
        len += (size_t)snprintf(allow + len, cap - len, "%s worker-%d\n", line, i);
    }
    snprintf(p, sizeof p, "%s/allow.txt", kd);
    int rc = fv_write_file_atomic(p, allow, len, e);
    free(allow);
    if (rc != 0) return -1;
    if (vmix) {
        const char *names[2] = {"clients.vmix.key", "eval.vmix.key"};
        for (int i = 0; i < 2; i++) {
            snprintf(p, sizeof p, "%s/%s", kd, names[i]);
            if (access(p, F_OK) != 0 && fv_vmix_key_generate(p, 0, e) != 0) return -1;
        }
    }
    return 0;
}

void fv_flcli_print_summary(FILE *f, const char *s) {
    /* the summary is flat JSON written by the coordinator: show key: value, one per line */
    fprintf(f, "summary:\n  ");
    int depth = 0, in_str = 0;
    for (const char *p = s; *p; p++) {
        char ch = *p;
        if (in_str) {
            if (ch == '\\' && p[1]) {
                fputc(p[1], f);
                p++;
            } else if (ch == '"') {
                in_str = 0;
            } else {
                fputc(ch, f);
            }
            continue;
        }
        if (ch == '"') in_str = 1;
        else if (ch == '{') {
            if (depth++ > 0) fputs("{ ", f);
        } else if (ch == '}') {
            if (--depth > 0) fputs(" }", f);
        } else if (ch == ',') fputs(depth == 1 ? "\n  " : ", ", f);
        else if (ch == ':') fputs(": ", f);
        else fputc(ch, f);
    }
    fputc('\n', f);
}

static void pct(char *out, size_t cap, double v) {
    if (isfinite(v)) snprintf(out, cap, "%.2f%%", 100 * v);
    else snprintf(out, cap, "-");
}

void fv_flcli_print_comparison(FILE *f, const fv_flcli_result *r, int n) {
    int rounds = 0;
    for (int i = 0; i < n; i++)
        if (r[i].rounds > rounds) rounds = r[i].rounds;
    fprintf(f, "\ntest accuracy per round (clean%s):\n%-7s", "; mixed test images in brackets for VisualMixer runs", "round");
    for (int i = 0; i < n; i++) fprintf(f, "  %24s", r[i].name);
    fputc('\n', f);
    for (int k = 0; k < rounds; k++) {
        fprintf(f, "%-7d", k + 1);
        for (int i = 0; i < n; i++) {
            char a[32] = "", b[32] = "", cell[80];
            if (k < r[i].rounds) {
                pct(a, sizeof a, r[i].acc[k]);
                if (r[i].vmix) {
                    pct(b, sizeof b, r[i].acc_mixed[k]);
                    snprintf(cell, sizeof cell, "%s [%s]", a, b);
                } else {
                    snprintf(cell, sizeof cell, "%s", a);
                }
            } else {
                snprintf(cell, sizeof cell, " ");
            }
            fprintf(f, "  %24s", cell);
        }
        fputc('\n', f);
    }
    if (n > 1 && r[0].rounds > 0) {
        double base = r[0].acc[r[0].rounds - 1];
        for (int i = 1; i < n; i++) {
            if (r[i].rounds == 0) continue;
            double last = r[i].acc[r[i].rounds - 1];
            double lastm = r[i].vmix ? r[i].acc_mixed[r[i].rounds - 1] : NAN;
            fprintf(f, "final gap %s vs %s: %+.2f points clean", r[i].name, r[0].name, 100 * (last - base));
            if (isfinite(lastm)) fprintf(f, ", %+.2f points on mixed test images", 100 * (lastm - base));
            fputc('\n', f);
        }
    }
    for (int i = 0; i < n; i++)
        if (r[i].vmix)
            fprintf(f, "measured VFE of %s: %.3f on the clients' mixed shards, %.3f on the mixed test images, "
                       "%.3f on the same test images unmixed (higher: less visual structure left)\n",
                    r[i].name, r[i].vfe_clients, r[i].vfe_test, r[i].vfe_clean);
}
