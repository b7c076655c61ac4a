/* report.c: see report.h. */
#define _GNU_SOURCE
#include "report.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "io/json_read.h"

extern char **environ;

#define MAX_DEPTH 4
#define MAX_COLS 64
#define MAX_TABLE_ROWS 100

typedef struct {
    char *path;      /* as found (under the folder given) */
    char *caption;   /* the first '#' comment line, or NULL */
    int ncols, nrows;
    char **head;     /* ncols */
    char ***cells;   /* nrows x ncols (missing trailing fields: "") */
} csv_table;

typedef struct {
    char *name;
    int n;
    double *round, *acc, *acc_mixed, *vfe; /* NAN where absent */
} fl_run;

typedef struct {
    char *label;
    int n;
    double *fpr, *tpr;
    double auc; /* NAN when absent */
} roc_curve;

struct fv_report {
    csv_table *tables;
    int ntables;
    fl_run *runs;
    int nruns;
    roc_curve *rocs;
    int nrocs;
    char **images; /* absolute paths */
    int nimages;
};

/* A growable array append: *arr has *n items of size sz. */
static void *append(void *arr, int *n, size_t sz) {
    arr = realloc(arr, sz * (size_t)(*n + 1));
    FV_ASSERT(arr);
    memset((char *)arr + sz * (size_t)*n, 0, sz);
    (*n)++;
    return arr;
}

fv_report *fv_report_new(void) {
    fv_report *r = fv_malloc(sizeof *r);
    memset(r, 0, sizeof *r);
    return r;
}

void fv_report_destroy(fv_report **rp) {
    if (!rp || !*rp) return;
    fv_report *r = *rp;
    for (int t = 0; t < r->ntables; t++) {
        csv_table *c = &r->tables[t];
        for (int i = 0; i < c->nrows; i++) {
            for (int j = 0; j < c->ncols; j++) free(c->cells[i][j]);
            free(c->cells[i]);
        }
        for (int j = 0; j < c->ncols; j++) free(c->head[j]);
        free(c->cells);
        free(c->head);
        free(c->path);
        free(c->caption);
    }
    for (int i = 0; i < r->nruns; i++) {
        free(r->runs[i].name);
        free(r->runs[i].round);
        free(r->runs[i].acc);
        free(r->runs[i].acc_mixed);
        free(r->runs[i].vfe);
    }
    for (int i = 0; i < r->nrocs; i++) {
        free(r->rocs[i].label);
        free(r->rocs[i].fpr);
        free(r->rocs[i].tpr);
    }
    for (int i = 0; i < r->nimages; i++) free(r->images[i]);
    free(r->tables);
    free(r->runs);
    free(r->rocs);
    free(r->images);
    free(r);
    *rp = NULL;
}

static int ends_with(const char *s, const char *suf) {
    size_t a = strlen(s), b = strlen(suf);
    return a >= b && strcmp(s + a - b, suf) == 0;
}

/* Split line (modified in place) at commas into at most MAX_COLS fields. */
static int split_csv(char *line, char **f) {
    int n = 0;
    char *s = line;
    for (;;) {
        char *c = strchr(s, ',');
        if (n == MAX_COLS) return MAX_COLS + 1;
        f[n++] = s;
        if (!c) break;
        *c = 0;
        s = c + 1;
    }
    return n;
}

static int read_csv(fv_report *r, const char *path, fv_err *e) {
    uint8_t *buf = NULL;
    size_t len = 0;
    if (fv_read_file(path, (size_t)64 << 20, &buf, &len, e)) return -1;
    char *text = fv_malloc(len + 1);
    memcpy(text, buf, len);
    text[len] = 0;
    free(buf);
    csv_table c = {0};
    c.path = strdup(path);
    int rc = 0, lineno = 0;
    char *save = NULL;
    for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        lineno++;
        size_t L = strlen(line);
        if (L && line[L - 1] == '\r') line[--L] = 0;
        if (L == 0) continue;
        if (line[0] == '#') {
            if (!c.caption) c.caption = strdup(line + 1 + (line[1] == ' '));
            continue;
        }
        char *f[MAX_COLS + 1];
        int n = split_csv(line, f);
        if (n > MAX_COLS) {
            rc = fv_err_set(e, "%s: line %d: more than %d columns", path, lineno, MAX_COLS);
            break;
        }
        if (!c.head) {
            c.ncols = n;
            c.head = fv_malloc(sizeof(char *) * (size_t)n);
            for (int j = 0; j < n; j++) c.head[j] = strdup(f[j]);
            continue;
        }
        if (n > c.ncols) {
            rc = fv_err_set(e, "%s: line %d has %d fields, the header %d", path, lineno, n, c.ncols);
            break;
        }
        c.cells = append(c.cells, &c.nrows, sizeof(char **));
        char **row = fv_malloc(sizeof(char *) * (size_t)c.ncols);
        for (int j = 0; j < c.ncols; j++) row[j] = strdup(j < n ? f[j] : "");
        c.cells[c.nrows - 1] = row;
    }
    free(text);
    r->tables = append(r->tables, &r->ntables, sizeof(csv_table));
    r->tables[r->ntables - 1] = c; /* owned by r even on failure, so destroy frees it */
    if (rc == 0 && !c.head) {
        free(c.path);
        memset(&r->tables[r->ntables - 1], 0, sizeof c);
        r->ntables--;
        return 0; /* an empty CSV: nothing to report */
    }
    return rc ? -1 : 1;
}

static double num_or_nan(const json_t *v) { return fv_jr_num(v, NAN); }

static int read_metrics(fv_report *r, const char *path, const char *name, fv_err *e) {
    uint8_t *buf = NULL;
    size_t len = 0;
    if (fv_read_file(path, (size_t)256 << 20, &buf, &len, e)) return -1;
    r->runs = append(r->runs, &r->nruns, sizeof(fl_run));
    fl_run *run = &r->runs[r->nruns - 1];
    run->name = strdup(name);
    int rc = 0, lineno = 0;
    size_t st = 0;
    while (st < len && rc == 0) {
        size_t en = st;
        while (en < len && buf[en] != '\n') en++;
        lineno++;
        if (en > st) {
            json_t *v = fv_jr_parse((const char *)buf + st, en - st, e);
            if (!v) {
                rc = fv_err_prefix(e, "%s: line %d: ", path, lineno);
            } else if (!json_object_get(v, "round")) {
                rc = fv_err_set(e, "%s: line %d: no \"round\": not a fedvim run metrics file", path, lineno);
            } else {
                int k = run->n;
                int n2 = k;
                run->round = append(run->round, &n2, sizeof(double));
                n2 = k;
                run->acc = append(run->acc, &n2, sizeof(double));
                n2 = k;
                run->acc_mixed = append(run->acc_mixed, &n2, sizeof(double));
                n2 = k;
                run->vfe = append(run->vfe, &n2, sizeof(double));
                run->round[k] = num_or_nan(json_object_get(v, "round"));
                run->acc[k] = num_or_nan(json_object_get(v, "test_accuracy"));
                run->acc_mixed[k] = num_or_nan(json_object_get(v, "test_accuracy_mixed"));
                run->vfe[k] = num_or_nan(json_object_get(v, "vfe_clients"));
                run->n++;
            }
            json_decref(v);
        }
        st = en + 1;
    }
    free(buf);
    return rc ? -1 : 1;
}

/* A numeric array's values into a fresh double array; -1 if not an array of numbers. */
static int num_array(const json_t *a, double **out) {
    if (!json_is_array(a) || json_array_size(a) > INT_MAX) return -1;
    size_t n = json_array_size(a), i;
    double *v = fv_malloc(sizeof(double) * (n ? n : 1));
    const json_t *x;
    json_array_foreach(a, i, x) {
        if (!json_is_number(x)) {
            free(v);
            return -1;
        }
        v[i] = json_number_value(x);
    }
    *out = v;
    return (int)n;
}

static int try_roc(fv_report *r, const json_t *o, const char *label) {
    double *f = NULL, *t = NULL;
    int nf = num_array(json_object_get(o, "roc_fpr"), &f), nt = num_array(json_object_get(o, "roc_tpr"), &t);
    if (nf < 2 || nf != nt) {
        free(f);
        free(t);
        return 0;
    }
    r->rocs = append(r->rocs, &r->nrocs, sizeof(roc_curve));
    roc_curve *c = &r->rocs[r->nrocs - 1];
    c->label = strdup(label);
    c->n = nf;
    c->fpr = f;
    c->tpr = t;
    c->auc = num_or_nan(json_object_get(o, "auc"));
    return 1;
}

static int read_json(fv_report *r, const char *path, const char *label, fv_err *e) {
    uint8_t *buf = NULL;
    size_t len = 0;
    if (fv_read_file(path, (size_t)256 << 20, &buf, &len, e)) return -1;
    fv_err ignore = {{0}};
    json_t *v = fv_jr_parse((const char *)buf, len, &ignore); /* not every .json is ours: skip quietly */
    free(buf);
    if (!v) return 0;
    int found = try_roc(r, v, label);
    const char *key;
    json_t *item;
    json_object_foreach(v, key, item) {
        char l[PATH_MAX + 256];
        snprintf(l, sizeof l, "%s: %s", label, key);
        found += try_roc(r, item, l);
    }
    json_decref(v);
    return found;
}

static int scan(fv_report *r, const char *dir, const char *rel, int depth, fv_err *e) {
    DIR *d = opendir(dir);
    if (!d) return fv_err_set(e, "%s: cannot open the folder: %s", dir, strerror(errno));
    struct dirent *de;
    char **names = NULL;
    int nn = 0;
    while ((de = readdir(d))) {
        if (de->d_name[0] == '.') continue;
        names = append(names, &nn, sizeof(char *));
        names[nn - 1] = strdup(de->d_name);
    }
    closedir(d);
    /* sorted, so the report does not depend on the file system's order */
    for (int i = 1; i < nn; i++)
        for (int j = i; j > 0 && strcmp(names[j - 1], names[j]) > 0; j--) {
            char *t = names[j];
            names[j] = names[j - 1];
            names[j - 1] = t;
        }
    int found = 0, rc = 0;
    for (int i = 0; i < nn && rc >= 0; i++) {
        char path[PATH_MAX], sub[PATH_MAX];
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        snprintf(sub, sizeof sub, "%s%s%s", rel, *rel ? "/" : "", names[i]);
        struct stat sb;
        if (lstat(path, &sb) != 0) continue;
        if (S_ISDIR(sb.st_mode)) {
            if (depth < MAX_DEPTH) rc = scan(r, path, sub, depth + 1, e);
        } else if (!S_ISREG(sb.st_mode)) {
            continue;
        } else if (strcmp(names[i], "metrics.jsonl") == 0) {
            rc = read_metrics(r, path, *rel ? rel : ".", e);
        } else if (ends_with(names[i], ".csv")) {
            rc = read_csv(r, path, e);
        } else if (ends_with(names[i], ".json")) {
            rc = read_json(r, path, sub, e);
        } else if (ends_with(names[i], ".png")) {
            char abs[PATH_MAX];
            if (!realpath(path, abs)) continue;
            r->images = append(r->images, &r->nimages, sizeof(char *));
            r->images[r->nimages - 1] = strdup(abs);
            rc = 1;
        } else {
            rc = 0;
        }
        if (rc > 0) found += rc;
    }
    for (int i = 0; i < nn; i++) free(names[i]);
    free(names);
    return rc < 0 ? -1 : found;
}

int fv_report_add_dir(fv_report *r, const char *dir, fv_err *e) {
    struct stat sb;
    if (stat(dir, &sb) != 0 || !S_ISDIR(sb.st_mode)) return fv_err_set(e, "%s: not a folder", dir);
    return scan(r, dir, "", 0, e);
}

int fv_report_relpath(char *out, size_t n, const char *from_dir, const char *to, fv_err *e) {
    char a[PATH_MAX], b[PATH_MAX];
    if (!realpath(from_dir, a)) return fv_err_set(e, "%s: %s", from_dir, strerror(errno));
    if (!realpath(to, b)) return fv_err_set(e, "%s: %s", to, strerror(errno));
    size_t common = 0, i = 0;
    for (; a[i] && a[i] == b[i]; i++)
        if (a[i] == '/') common = i;
    if (!a[i] && (b[i] == '/' || !b[i])) common = i; /* a is a prefix folder of b */
    size_t len = 0;
    out[0] = 0;
    for (const char *p = a + common; *p; p++) /* one "../" per component of a after the common part */
        if (*p == '/') len += (size_t)snprintf(out + len, len < n ? n - len : 0, "../");
    const char *rest = b + common + (b[common] == '/');
    len += (size_t)snprintf(out + len, len < n ? n - len : 0, "%s", *rest ? rest : ".");
    if (len >= n) return fv_err_set(e, "relative path of %s too long", to);
    return 0;
}

/* ---- plots ---- */

typedef struct {
    const char *label;
    int n;
    double *x, *y; /* caller's or owned: see plot() */
} series;

static void gp_quote(FILE *f, const char *s) { /* gnuplot double-quoted string */
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"' || *s == '\\') fputc('\\', f);
        if (*s == '_') fputs("\\\\", f); /* enhanced-text mode: show underscores literally */
        fputc(*s, f);
    }
    fputc('"', f);
}

/* Run `gnuplot script` in folder dir (the script names its .dat and .png relative to it). */
static int run_gnuplot(const char *dir, const char *script, fv_err *e) {
    pid_t pid;
    char *argv[] = {"gnuplot", (char *)script, NULL};
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addchdir_np(&fa, dir);
    int err = posix_spawnp(&pid, "gnuplot", &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    if (err == ENOENT)
        return fv_err_set(e, "gnuplot not found on PATH: install it (Debian: apt-get install gnuplot-nox) or "
                             "pass --no-plots (the .gp scripts and .dat files are written either way)");
    if (err) return fv_err_set(e, "cannot start gnuplot for %s: %s", script, strerror(err));
    int st;
    while (waitpid(pid, &st, 0) < 0)
        if (errno != EINTR) return fv_err_set(e, "waiting for gnuplot: %s", strerror(errno));
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
        return fv_err_set(e, "gnuplot failed on %s (exit %d): see its message above", script,
                          WIFEXITED(st) ? WEXITSTATUS(st) : -1);
    return 0;
}

/* Write out/name.dat and out/name.gp (and run gnuplot for out/name.png when plots). Points of
 * each series are drawn in x order, joined by lines unless points. extra: more gnuplot commands
 * before plot (may be NULL); diag: add the line y = x. */
static int plot(const char *out, const char *name, const char *title, const char *xl, const char *yl,
                const series *s, int ns, const char *extra, int diag, int points, int plots, fv_err *e) {
    char dat[PATH_MAX], gp[PATH_MAX], png[PATH_MAX];
    snprintf(dat, sizeof dat, "%s/%s.dat", out, name);
    snprintf(gp, sizeof gp, "%s/%s.gp", out, name);
    snprintf(png, sizeof png, "%s/%s.png", out, name);
    size_t cap = 4096, len = 0;
    char *b = fv_malloc(cap);
#define EMIT(...)                                                                     \
    do {                                                                              \
        int m_ = snprintf(b + len, cap - len, __VA_ARGS__);                           \
        if ((size_t)m_ >= cap - len) {                                                \
            cap = cap * 2 + (size_t)m_;                                               \
            b = realloc(b, cap);                                                      \
            FV_ASSERT(b);                                                             \
            snprintf(b + len, cap - len, __VA_ARGS__);                                \
        }                                                                             \
        len += (size_t)m_;                                                            \
    } while (0)
    for (int k = 0; k < ns; k++) {
        int *ord = fv_malloc(sizeof(int) * (size_t)(s[k].n ? s[k].n : 1));
        for (int i = 0; i < s[k].n; i++) ord[i] = i;
        for (int i = 1; i < s[k].n; i++)
            for (int j = i; j > 0 && s[k].x[ord[j - 1]] > s[k].x[ord[j]]; j--) {
                int t = ord[j];
                ord[j] = ord[j - 1];
                ord[j - 1] = t;
            }
        EMIT("# series %d: %s\n", k, s[k].label);
        for (int i = 0; i < s[k].n; i++) EMIT("%.9g %.9g\n", s[k].x[ord[i]], s[k].y[ord[i]]);
        EMIT("\n\n");
        free(ord);
    }
    int rc = fv_write_file_atomic(dat, b, len, e);
    free(b);
    if (rc) return -1;
    char *gtext = NULL;
    size_t glen = 0;
    FILE *f = open_memstream(&gtext, &glen);
    FV_ASSERT(f);
    fprintf(f, "# %s: made by fedvim report; run `gnuplot %s.gp` in this folder to redraw %s.png\n", name, name,
            name);
    fprintf(f, "set terminal png size 900,600\nset output '%s.png'\nset title ", name);
    gp_quote(f, title);
    fprintf(f, "\nset xlabel ");
    gp_quote(f, xl);
    fprintf(f, "\nset ylabel ");
    gp_quote(f, yl);
    fprintf(f, "\nset grid\nset key outside right\n%s\nplot ", extra ? extra : "");
    for (int k = 0; k < ns; k++) {
        fprintf(f, "%s'%s.dat' index %d with %s pt 7 title ", k ? ", \\\n     " : "", name, k,
                points ? "points" : "linespoints");
        gp_quote(f, s[k].label);
    }
    if (diag) fprintf(f, "%sx with lines dt 2 lc rgb 'gray' title 'chance'", ns ? ", \\\n     " : "");
    fprintf(f, "\n");
    fclose(f);
    rc = fv_write_file_atomic(gp, gtext, glen, e);
    free(gtext);
    if (rc) return -1;
    if (!plots) return 0;
    char script[PATH_MAX];
    snprintf(script, sizeof script, "%s.gp", name);
    if (run_gnuplot(out, script, e)) return -1;
    struct stat sb;
    if (stat(png, &sb) != 0 || sb.st_size == 0) return fv_err_set(e, "gnuplot ran %s but wrote no %s", gp, png);
    return 0;
}

static int col(const csv_table *c, const char *name) {
    for (int j = 0; j < c->ncols; j++)
        if (strcmp(c->head[j], name) == 0) return j;
    return -1;
}

static int parse_num(const char *s, double *v) {
    char *end;
    if (!*s) return -1;
    *v = strtod(s, &end);
    return *end || !isfinite(*v) ? -1 : 0;
}

/* Series of (x, y) from a table, split by its group column (group, or when NULL the first of
 * family, strategy, method, optimizer, setting it has). Returns the count (owned arrays). */
static int table_series(const csv_table *c, int xc, int yc, const char *group, series **out) {
    static const char *groups[] = {"family", "strategy", "method", "optimizer", "setting", NULL};
    int gc = group ? col(c, group) : -1;
    for (int g = 0; !group && groups[g] && gc < 0; g++) gc = col(c, groups[g]);
    series *s = NULL;
    int ns = 0;
    for (int i = 0; i < c->nrows; i++) {
        double x, y;
        if (parse_num(c->cells[i][xc], &x) || parse_num(c->cells[i][yc], &y)) continue;
        const char *label = gc >= 0 ? c->cells[i][gc] : "all";
        int k = 0;
        while (k < ns && strcmp(s[k].label, label) != 0) k++;
        if (k == ns) s = append(s, &ns, sizeof(series));
        s[k].label = label;
        int n2 = s[k].n;
        s[k].x = append(s[k].x, &n2, sizeof(double));
        n2 = s[k].n;
        s[k].y = append(s[k].y, &n2, sizeof(double));
        s[k].x[s[k].n] = x;
        s[k].y[s[k].n] = y;
        s[k].n++;
    }
    *out = s;
    return ns;
}

static void free_series(series *s, int ns) {
    for (int k = 0; k < ns; k++) {
        free(s[k].x);
        free(s[k].y);
    }
    free(s);
}

static void md_escape(FILE *f, const char *s) {
    for (; *s; s++) {
        if (*s == '|') fputc('\\', f);
        fputc(*s, f);
    }
}

/* The plots drawn from any CSV table with both columns x and y. group: the series column (NULL:
 * table_series's default list); points: no joining lines; extra: gnuplot commands (or NULL). */
static const struct {
    const char *x, *y, *slug, *title, *xl, *yl, *group;
    int points;
    const char *extra;
} CSV_PLOTS[] = {
    {"vfe_mean", "test_accuracy", "acc_vs_vfe", "Test accuracy against measured VFE", "VFE of the training images",
     "test accuracy", NULL, 0, NULL},
    {"dlg_ssim_orig", "test_accuracy", "acc_vs_dlg_ssim", "Test accuracy against DLG's SSIM to the original",
     "DLG reconstruction SSIM to the original (lower: more private)", "test accuracy", NULL, 0, NULL},
    {"ws", "vfe_mean", "vfe_vs_ws", "VFE against window size", "window size WS", "VFE", NULL, 0, "set logscale x 2"},
    {"round", "test_accuracy", "acc_per_round", "Test accuracy per round", "round", "test accuracy", NULL, 0, NULL},
    {"round", "train_loss", "loss_per_round", "Training loss per round", "round", "training loss", NULL, 0, NULL},
    /* the privacy-utility frontier with the strongest attack on the privacy axis
     * (experiments/attacks/adaptive): one point per setting; dashed lines at SSIM 0.3 and 2 points */
    {"attack_ssim", "cost_points", "cost_vs_attack_ssim", "Accuracy cost against the strongest attack's SSIM",
     "median SSIM of the best attack's output to the original (lower: more private)",
     "accuracy cost (points, log scale)", "dataset", 1,
     "set logscale y\nset xrange [0:1]\nset arrow from 0.3, graph 0 to 0.3, graph 1 nohead dt 2 lc rgb 'gray'\n"
     "set arrow from graph 0, first 2 to graph 1, first 2 nohead dt 2 lc rgb 'gray'"},
};

/* Under a table with a "grid" column (an image path relative to the CSV's folder), the image of
 * each row that names one, labelled by the row's first two fields: the image grids beside the
 * plots. A named image that does not exist is an error naming the CSV, the row and the path. */
static int grid_rows(FILE *f, const csv_table *c, int gc, const char *out_dir, fv_err *e) {
    char dir[PATH_MAX];
    snprintf(dir, sizeof dir, "%s", c->path);
    char *slash = strrchr(dir, '/');
    if (slash) *slash = 0;
    else snprintf(dir, sizeof dir, ".");
    int any = 0;
    for (int i = 0; i < c->nrows; i++) {
        const char *g = c->cells[i][gc];
        if (!*g) continue;
        char path[PATH_MAX], rel[PATH_MAX];
        struct stat sb;
        if (snprintf(path, sizeof path, "%s/%s", dir, g) >= (int)sizeof path || stat(path, &sb) != 0 ||
            !S_ISREG(sb.st_mode))
            return fv_err_set(e, "%s: row %d: its grid image %s is missing", c->path, i + 1, path);
        if (fv_report_relpath(rel, sizeof rel, out_dir, path, e)) return -1;
        if (!any) fprintf(f, "Image grids of the rows (column `grid`):\n\n| row | grid |\n| --- | --- |\n");
        any = 1;
        fprintf(f, "| ");
        for (int j = 0; j < 2 && j < c->ncols; j++) {
            if (j) fprintf(f, " / ");
            md_escape(f, c->cells[i][j]);
        }
        fprintf(f, " | ![%s](%s) |\n", g, rel);
    }
    if (any) fprintf(f, "\n");
    return 0;
}

int fv_report_write(const fv_report *r, const char *out_dir, int plots, fv_err *e) {
    if (fv_mkdirs(out_dir, e)) return -1;
    char *md = NULL;
    size_t mdlen = 0;
    FILE *f = open_memstream(&md, &mdlen);
    FV_ASSERT(f);
    int rc = 0;
    fprintf(f, "# fedvim report\n\n");
    fprintf(f, "%d federated runs, %d tables, %d ROC curves, %d images. Plots: gnuplot scripts (`*.gp`) and "
               "data (`*.dat`) beside this file.\n\n",
            r->nruns, r->ntables, r->nrocs, r->nimages);
    if (r->nruns) {
        fprintf(f, "## Federated runs: accuracy per round\n\n");
        series *s = NULL;
        int ns = 0;
        for (int i = 0; i < r->nruns; i++)
            for (int m = 0; m < 2; m++) {
                const double *y = m ? r->runs[i].acc_mixed : r->runs[i].acc;
                int have = 0;
                for (int k = 0; k < r->runs[i].n; k++) have += !isnan(y[k]);
                if (!have) continue;
                s = append(s, &ns, sizeof(series));
                series *c = &s[ns - 1];
                char lab[512];
                snprintf(lab, sizeof lab, "%s%s", r->runs[i].name, m ? " (mixed test images)" : "");
                c->label = strdup(lab);
                c->x = fv_malloc(sizeof(double) * (size_t)have);
                c->y = fv_malloc(sizeof(double) * (size_t)have);
                for (int k = 0; k < r->runs[i].n; k++)
                    if (!isnan(y[k])) {
                        c->x[c->n] = r->runs[i].round[k];
                        c->y[c->n++] = y[k];
                    }
            }
        rc = plot(out_dir, "fl_accuracy_per_round", "Test accuracy per round (fedvim run)", "round", "test accuracy",
                  s, ns, "set yrange [0:1]", 0, 0, plots, e);
        for (int k = 0; k < ns; k++) free((char *)s[k].label);
        free_series(s, ns);
        fprintf(f, "![accuracy per round](fl_accuracy_per_round.png)\n\n");
        fprintf(f, "| run | rounds | final accuracy | final accuracy (mixed test) | best accuracy | VFE of the clients' "
                   "mixed data |\n| --- | ---: | ---: | ---: | ---: | ---: |\n");
        for (int i = 0; i < r->nruns; i++) {
            const fl_run *u = &r->runs[i];
            double best = NAN, fin = NAN, finm = NAN, vfe = NAN;
            for (int k = 0; k < u->n; k++) {
                if (!isnan(u->acc[k])) fin = u->acc[k];
                if (!isnan(u->acc_mixed[k])) finm = u->acc_mixed[k];
                if (!isnan(u->vfe[k])) vfe = u->vfe[k];
                if (!isnan(u->acc[k]) && (isnan(best) || u->acc[k] > best)) best = u->acc[k];
            }
            fprintf(f, "| ");
            md_escape(f, u->name);
            fprintf(f, " | %d |", u->n);
            const double v[4] = {fin, finm, best, vfe};
            for (int q = 0; q < 4; q++) isnan(v[q]) ? fprintf(f, " - |") : fprintf(f, " %.4f |", v[q]);
            fprintf(f, "\n");
        }
        fprintf(f, "\n");
    }
    for (int t = 0; t < r->ntables && rc == 0; t++) {
        const csv_table *c = &r->tables[t];
        fprintf(f, "## %s\n\n", c->path);
        if (c->caption) {
            fprintf(f, "Machine and run: `");
            md_escape(f, c->caption);
            fprintf(f, "`\n\n");
        }
        for (size_t p = 0; p < sizeof CSV_PLOTS / sizeof CSV_PLOTS[0] && rc == 0; p++) {
            int xc = col(c, CSV_PLOTS[p].x), yc = col(c, CSV_PLOTS[p].y);
            if (xc < 0 || yc < 0) continue;
            series *s = NULL;
            int ns = table_series(c, xc, yc, CSV_PLOTS[p].group, &s);
            if (ns) {
                char name[128];
                snprintf(name, sizeof name, "t%02d_%s", t, CSV_PLOTS[p].slug);
                rc = plot(out_dir, name, CSV_PLOTS[p].title, CSV_PLOTS[p].xl, CSV_PLOTS[p].yl, s, ns, CSV_PLOTS[p].extra,
                          0, CSV_PLOTS[p].points, plots, e);
                fprintf(f, "![%s](%s.png)\n\n", CSV_PLOTS[p].title, name);
            }
            free_series(s, ns);
        }
        if (rc == 0 && col(c, "grid") >= 0) rc = grid_rows(f, c, col(c, "grid"), out_dir, e);
        fprintf(f, "|");
        for (int j = 0; j < c->ncols; j++) {
            fprintf(f, " ");
            md_escape(f, c->head[j]);
            fprintf(f, " |");
        }
        fprintf(f, "\n|");
        for (int j = 0; j < c->ncols; j++) fprintf(f, " --- |");
        fprintf(f, "\n");
        for (int i = 0; i < c->nrows && i < MAX_TABLE_ROWS; i++) {
            fprintf(f, "|");
            for (int j = 0; j < c->ncols; j++) {
                double v;
                fprintf(f, " ");
                if (parse_num(c->cells[i][j], &v) == 0 && strchr(c->cells[i][j], '.') && fabs(v) < 1e6)
                    fprintf(f, "%.4g", v); /* 4 significant digits for the eye; the CSV keeps all */
                else
                    md_escape(f, c->cells[i][j]);
                fprintf(f, " |");
            }
            fprintf(f, "\n");
        }
        if (c->nrows > MAX_TABLE_ROWS) fprintf(f, "\n(%d more rows in the CSV)\n", c->nrows - MAX_TABLE_ROWS);
        fprintf(f, "\n");
    }
    if (r->nrocs && rc == 0) {
        fprintf(f, "## Membership inference: ROC curves\n\n");
        series *s = fv_malloc(sizeof(series) * (size_t)r->nrocs);
        for (int i = 0; i < r->nrocs; i++) s[i] = (series){r->rocs[i].label, r->rocs[i].n, r->rocs[i].fpr, r->rocs[i].tpr};
        rc = plot(out_dir, "roc", "ROC curves (membership inference)", "false positive rate", "true positive rate",
                  s, r->nrocs, "set xrange [0:1]\nset yrange [0:1]", 1, 0, plots, e);
        free(s);
        fprintf(f, "![ROC curves](roc.png)\n\n| curve | points | AUC |\n| --- | ---: | ---: |\n");
        for (int i = 0; i < r->nrocs; i++) {
            fprintf(f, "| ");
            md_escape(f, r->rocs[i].label);
            isnan(r->rocs[i].auc) ? fprintf(f, " | %d | - |\n", r->rocs[i].n)
                                  : fprintf(f, " | %d | %.4f |\n", r->rocs[i].n, r->rocs[i].auc);
        }
        fprintf(f, "\n");
    }
    if (r->nimages && rc == 0) {
        fprintf(f, "## Image grids\n\n");
        for (int i = 0; i < r->nimages && rc == 0; i++) {
            char rel[PATH_MAX];
            rc = fv_report_relpath(rel, sizeof rel, out_dir, r->images[i], e);
            if (rc == 0) fprintf(f, "- [%s](%s)\n", rel, rel);
        }
        fprintf(f, "\n");
    }
    fclose(f);
    if (rc == 0) {
        char path[PATH_MAX];
        snprintf(path, sizeof path, "%s/report.md", out_dir);
        rc = fv_write_file_atomic(path, md, mdlen, e);
    }
    free(md);
    return rc ? -1 : 0;
}
