/* test_report.c: the JSON reader (json_read.h: jansson under one strict policy) and the Markdown
 * report (report.h): results folders with a metrics.jsonl, a CSV, a ROC JSON and a PNG become report.md with tables, plot
 * data in x order, gnuplot PNGs (when gnuplot is installed) and relative image links; malformed
 * inputs and a missing gnuplot are clear errors; `fedvim report` through $FEDVIM_BIN; the frontier
 * of experiments/attacks/adaptive (accuracy cost against the best attack's SSIM, a series per data
 * set) and its rows' image grids, whose links must resolve from the report's folder, and a
 * missing grid is an error naming it. */
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fv_common.h"
#include "io/json_read.h"
#include "io/png_io.h"
#include "report.h"

static json_t *parse(const char *s, fv_err *e) { return fv_jr_parse(s, strlen(s), e); }

static void test_json_values(void **st) {
    (void)st;
    fv_err e = {{0}};
    json_t *v = parse(" {\"a\": [1, -2.5e2, 0.125], \"s\": \"x\\\"\\u00e9\\ud83d\\ude00\\n\", \"t\": true, "
                      "\"f\": false, \"z\": null, \"o\": {}, \"a2\": [], \"big\": 9007199254740993, "
                      "\"max\": 9223372036854775807, \"min\": -9223372036854775808} ", &e);
    if (!v) fail_msg("%s", e.msg);
    assert_true(json_is_object(v));
    const json_t *a = json_object_get(v, "a");
    assert_true(json_is_array(a));
    assert_int_equal(json_array_size(a), 3);
    assert_true(fv_jr_num(json_array_get(a, 1), 0) == -250.0);
    assert_true(fv_jr_num(json_array_get(a, 2), 0) == 0.125);
    assert_string_equal(json_string_value(json_object_get(v, "s")), "x\"\xc3\xa9\xf0\x9f\x98\x80\n");
    assert_true(json_is_true(json_object_get(v, "t")));
    assert_true(json_is_null(json_object_get(v, "z")));
    assert_int_equal(json_object_size(json_object_get(v, "o")), 0);
    /* integers are exact 64-bit values, never through a double (2^53 + 1 is not a double) */
    assert_true(json_integer_value(json_object_get(v, "big")) == 9007199254740993LL);
    assert_true(json_integer_value(json_object_get(v, "max")) == INT64_MAX);
    assert_true(json_integer_value(json_object_get(v, "min")) == INT64_MIN);
    assert_null(json_object_get(v, "missing"));
    assert_true(isnan(fv_jr_num(json_object_get(v, "missing"), NAN)));
    assert_true(fv_jr_num(json_object_get(v, "s"), 7) == 7); /* not a number: the default */
    assert_true(fv_jr_num(json_object_get(v, "t"), 7) == 7);
    assert_true(fv_jr_num(NULL, 7) == 7);
    json_decref(v);
    /* any value at the top, as RFC 8259 allows */
    assert_non_null(v = parse(" 12 ", &e));
    assert_true(fv_jr_num(v, 0) == 12);
    json_decref(v);
}

static void test_json_errors(void **st) {
    (void)st;
    const struct {
        const char *text, *want;
    } bad[] = {{"[1,]", "unexpected token"}, {"{\"a\":1,}", "string or '}' expected"}, {"01", "invalid token"},
               {"1.", "invalid token"}, {"-", "invalid token"}, {"[1] x", "end of file expected"},
               {"\"abc", "premature end of input"}, {"\"a\tb\"", "control character"}, {"{'a':1}", "string or '}'"},
               {"nul", "invalid token"}, {"[1 2]", "']' expected"}, {"{\"a\" 1}", "':' expected"},
               {"\"\\ud800\"", "invalid Unicode"}, {"\"\\u0000\"", "\\u0000 is not allowed"},
               {"\"\\q\"", "invalid escape"}, {"", "end of file"}, {"NaN", "invalid token"}, {"1e", "invalid token"},
               {"{\"a\":1,\"a\":2}", "duplicate object key near '\"a\"'"},
               {"9223372036854775808", "too big integer"}, {"1e400", "real number overflow"},
               {"\"\xff\"", "unable to decode byte 0xff"}};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        fv_err e = {{0}};
        json_t *v = parse(bad[i].text, &e);
        if (v) fail_msg("accepted: %s", bad[i].text);
        if (!strstr(e.msg, "byte") || !strstr(e.msg, bad[i].want))
            fail_msg("%s: '%s' lacks 'byte' or '%s'", bad[i].text, e.msg, bad[i].want);
    }
    /* nesting is bounded (jansson: 2048 levels), not a stack overflow */
    enum { DEEP = 5000 };
    char *deep = malloc(2 * DEEP + 1);
    memset(deep, '[', DEEP);
    memset(deep + DEEP, ']', DEEP);
    deep[2 * DEEP] = 0;
    fv_err e = {{0}};
    assert_null(parse(deep, &e));
    assert_non_null(strstr(e.msg, "depth"));
    deep[5] = 0; /* truncated */
    assert_null(parse(deep, &e));
    free(deep);
}

static char ROOT[256];

static void write_text(const char *rel, const char *text) {
    char p[512];
    snprintf(p, sizeof p, "%s/%s", ROOT, rel);
    fv_err e = {{0}};
    assert_int_equal(fv_write_file_atomic(p, text, strlen(text), &e), 0);
}

static char *slurp(const char *rel) {
    char p[512];
    snprintf(p, sizeof p, "%s/%s", ROOT, rel);
    uint8_t *b = NULL;
    size_t n = 0;
    fv_err e = {{0}};
    if (fv_read_file(p, 1 << 24, &b, &n, &e)) return NULL;
    char *s = fv_malloc(n + 1);
    memcpy(s, b, n);
    s[n] = 0;
    free(b);
    return s;
}

static int exists(const char *rel) {
    char p[512];
    struct stat sb;
    snprintf(p, sizeof p, "%s/%s", ROOT, rel);
    return stat(p, &sb) == 0 && sb.st_size > 0;
}

static void make_results(void) {
    char p[512];
    fv_err e = {{0}};
    snprintf(p, sizeof p, "%s/res/run1", ROOT);
    assert_int_equal(fv_mkdirs(p, &e), 0);
    snprintf(p, sizeof p, "%s/res/grids", ROOT);
    assert_int_equal(fv_mkdirs(p, &e), 0);
    write_text("res/run1/metrics.jsonl", "{\"round\":1,\"test_accuracy\":0.5,\"test_accuracy_mixed\":0.4,"
                                         "\"vfe_clients\":0.55}\n{\"round\":2,\"test_accuracy\":0.75,"
                                         "\"test_accuracy_mixed\":0.7,\"vfe_clients\":0.56}\n");
    write_text("res/frontier.csv", "# {\"cpu\": \"test\"}\nid,family,vfe_mean,test_accuracy,dlg_ssim_orig\n"
                                   "b,uniform,0.8,0.85,0.3\na,uniform,0.55,0.92,0.69\nc,guided,0.61,0.89,\n"
                                   "d,none,,0.94,0.99\n");
    write_text("res/mia.json", "{\"attack\":\"mia\",\"loss\":{\"auc\":0.6,\"roc_fpr\":[0,0.5,1],"
                               "\"roc_tpr\":[0,0.7,1]}}");
    write_text("res/other.json", "not json at all");
    uint8_t px[16 * 16];
    memset(px, 200, sizeof px);
    snprintf(p, sizeof p, "%s/res/grids/g.png", ROOT);
    assert_int_equal(fv_png_write(p, px, 16, 16, 1, &e), 0);
}

static int have_gnuplot(void) { return system("command -v gnuplot >/dev/null 2>&1") == 0; }

static void test_report_end_to_end(void **st) {
    (void)st;
    make_results();
    fv_report *r = fv_report_new();
    fv_err e = {{0}};
    char p[512], out[512];
    snprintf(p, sizeof p, "%s/res", ROOT);
    snprintf(out, sizeof out, "%s/out", ROOT);
    assert_int_equal(fv_report_add_dir(r, p, &e), 4); /* metrics, CSV, one ROC, one PNG */
    int plots = have_gnuplot();
    if (!plots) fprintf(stderr, "test_report: gnuplot not installed: PNG rendering not checked\n");
    assert_int_equal(fv_report_write(r, out, plots, &e), 0);
    fv_report_destroy(&r);
    assert_null(r);
    char *md = slurp("out/report.md");
    assert_non_null(md);
    assert_non_null(strstr(md, "| run1 | 2 | 0.7500 | 0.7000 | 0.7500 | 0.5600 |"));
    assert_non_null(strstr(md, "| id | family | vfe_mean | test_accuracy | dlg_ssim_orig |"));
    assert_non_null(strstr(md, "| a | uniform | 0.55 | 0.92 | 0.69 |"));
    assert_non_null(strstr(md, "![Test accuracy against measured VFE](t00_acc_vs_vfe.png)"));
    assert_non_null(strstr(md, "(t00_acc_vs_dlg_ssim.png)"));
    assert_non_null(strstr(md, "| mia.json: loss | 3 | 0.6000 |"));
    assert_non_null(strstr(md, "[../res/grids/g.png](../res/grids/g.png)"));
    assert_non_null(strstr(md, "Machine and run: `{\"cpu\": \"test\"}`"));
    free(md);
    /* points in x order per series; the row without a VFE is left out of the VFE plot */
    char *dat = slurp("out/t00_acc_vs_vfe.dat");
    assert_non_null(dat);
    const char *a = strstr(dat, "0.55 0.92"), *b = strstr(dat, "0.8 0.85"), *g = strstr(dat, "0.61 0.89");
    assert_true(a && b && g && a < b && b < g);
    assert_null(strstr(dat, "0.94"));
    free(dat);
    char *gp = slurp("out/roc.gp");
    assert_non_null(strstr(gp, "'roc.dat' index 0"));
    free(gp);
    assert_true(exists("out/fl_accuracy_per_round.gp") && exists("out/fl_accuracy_per_round.dat"));
    if (plots) {
        assert_true(exists("out/fl_accuracy_per_round.png"));
        assert_true(exists("out/t00_acc_vs_vfe.png"));
        assert_true(exists("out/roc.png"));
    }
}

/* A small adaptive-attack table: two data sets, grids beside the CSV's folder (as run.py writes). */
static void test_report_frontier(void **st) {
    (void)st;
    char p[512], out[512];
    fv_err e = {{0}};
    snprintf(p, sizeof p, "%s/adv/grids/mnist_vm4", ROOT);
    assert_int_equal(fv_mkdirs(p, &e), 0);
    snprintf(p, sizeof p, "%s/adv/results", ROOT);
    assert_int_equal(fv_mkdirs(p, &e), 0);
    uint8_t px[8 * 8 * 3];
    memset(px, 90, sizeof px);
    snprintf(p, sizeof p, "%s/adv/grids/mnist_vm4/inverter_grid.png", ROOT);
    assert_int_equal(fv_png_write(p, px, 8, 8, 3, &e), 0);
    write_text("adv/results/adaptive.csv", "# {\"cpu\": \"test\"}\ndataset,cell,family,attack_ssim,cost_points,grid\n"
                                           "mnist,mnist_vm4,VisualMixer,0.86,2.9,../grids/mnist_vm4/inverter_grid.png\n"
                                           "mnist,mnist_vm2,VisualMixer,0.95,0.3,\n"
                                           "cmnist,cmnist_ih2,InstaHide,0.12,21,\n"
                                           "cmnist,cmnist_vm8,VisualMixer,0.4,,\n");
    fv_report *r = fv_report_new();
    snprintf(p, sizeof p, "%s/adv/results", ROOT);
    snprintf(out, sizeof out, "%s/advout/sub", ROOT);
    assert_int_equal(fv_report_add_dir(r, p, &e), 1);
    const int plots = have_gnuplot();
    if (fv_report_write(r, out, plots, &e)) fail_msg("%s", e.msg);
    fv_report_destroy(&r);
    char *md = slurp("advout/sub/report.md");
    assert_non_null(md);
    assert_non_null(strstr(md, "![Accuracy cost against the strongest attack's SSIM](t00_cost_vs_attack_ssim.png)"));
    const char *want = "| mnist / mnist_vm4 | ![../grids/mnist_vm4/inverter_grid.png](../../adv/grids/mnist_vm4/inverter_grid.png) |";
    if (!strstr(md, want)) fail_msg("no grid row '%s' in:\n%s", want, md);
    /* every image link of the report resolves from its folder */
    int links = 0;
    for (const char *q = strstr(md, "]("); q; q = strstr(q + 2, "](")) {
        const char *end = strchr(q + 2, ')');
        assert_non_null(end);
        char rel[200], full[256];
        assert_true(end - q - 2 < (long)sizeof rel);
        snprintf(rel, sizeof rel, "%.*s", (int)(end - q - 2), q + 2);
        snprintf(full, sizeof full, "advout/sub/%s", rel);
        if (!plots && strncmp(rel, "t00_", 4) == 0) continue; /* plot PNGs exist only with gnuplot */
        if (!exists(full)) fail_msg("report link %s does not resolve", rel);
        links++;
    }
    assert_true(links >= (plots ? 2 : 1)); /* the chart (with gnuplot) and the grid beside it */
    free(md);
    /* one point per row with both figures, a series per data set, no joining lines */
    char *dat = slurp("advout/sub/t00_cost_vs_attack_ssim.dat");
    assert_non_null(dat);
    const char *s0 = strstr(dat, "# series 0: mnist"), *s1 = strstr(dat, "# series 1: cmnist");
    assert_true(s0 && s1 && s0 < s1);
    const char *a = strstr(dat, "0.86 2.9"), *b = strstr(dat, "0.95 0.3"), *c = strstr(dat, "0.12 21");
    assert_true(a && b && c && a < b && b < s1 && s1 < c);
    assert_null(strstr(dat, "0.4 "));
    free(dat);
    char *gp = slurp("advout/sub/t00_cost_vs_attack_ssim.gp");
    assert_non_null(gp);
    assert_non_null(strstr(gp, "with points pt 7"));
    assert_non_null(strstr(gp, "set logscale y"));
    free(gp);
    if (plots) assert_true(exists("advout/sub/t00_cost_vs_attack_ssim.png"));
    /* a grid the CSV names but that is gone: an error naming it, not a broken link */
    write_text("adv/results/adaptive.csv", "dataset,cell,attack_ssim,cost_points,grid\n"
                                           "mnist,mnist_vm8,0.5,19,../grids/mnist_vm8/inverter_grid.png\n");
    r = fv_report_new();
    assert_int_equal(fv_report_add_dir(r, p, &e), 1);
    snprintf(out, sizeof out, "%s/advout2", ROOT);
    assert_int_equal(fv_report_write(r, out, 0, &e), -1);
    if (!strstr(e.msg, "adaptive.csv: row 1: its grid image") || !strstr(e.msg, "mnist_vm8/inverter_grid.png is missing"))
        fail_msg("unclear error: %s", e.msg);
    fv_report_destroy(&r);
}

static void test_report_errors(void **st) {
    (void)st;
    fv_err e = {{0}};
    char p[512];
    fv_report *r = fv_report_new();
    snprintf(p, sizeof p, "%s/nonexistent", ROOT);
    assert_int_equal(fv_report_add_dir(r, p, &e), -1);
    assert_non_null(strstr(e.msg, "not a folder"));
    snprintf(p, sizeof p, "%s/bad1", ROOT);
    assert_int_equal(fv_mkdirs(p, &e), 0);
    write_text("bad1/metrics.jsonl", "{\"round\":1}\n{\"round\":2,}\n");
    assert_int_equal(fv_report_add_dir(r, p, &e), -1);
    assert_non_null(strstr(e.msg, "metrics.jsonl: line 2"));
    snprintf(p, sizeof p, "%s/bad2", ROOT);
    assert_int_equal(fv_mkdirs(p, &e), 0);
    write_text("bad2/t.csv", "a,b\n1,2,3\n");
    assert_int_equal(fv_report_add_dir(r, p, &e), -1);
    assert_non_null(strstr(e.msg, "line 2 has 3 fields"));
    fv_report_destroy(&r);
    /* gnuplot missing from PATH: a clear error saying what to install */
    r = fv_report_new();
    snprintf(p, sizeof p, "%s/res", ROOT);
    assert_true(fv_report_add_dir(r, p, &e) > 0);
    char *old = getenv("PATH") ? strdup(getenv("PATH")) : NULL;
    setenv("PATH", "/nonexistent-fedvim-test", 1);
    snprintf(p, sizeof p, "%s/out2", ROOT);
    int rc = fv_report_write(r, p, 1, &e);
    if (old) {
        setenv("PATH", old, 1);
        free(old);
    }
    assert_int_equal(rc, -1);
    assert_non_null(strstr(e.msg, "gnuplot-nox"));
    fv_report_destroy(&r);
}

static void test_relpath(void **st) {
    (void)st;
    char a[512], b[512], out[512];
    fv_err e = {{0}};
    snprintf(a, sizeof a, "%s/x/y", ROOT);
    snprintf(b, sizeof b, "%s/x/z", ROOT);
    assert_int_equal(fv_mkdirs(a, &e), 0);
    assert_int_equal(fv_mkdirs(b, &e), 0);
    write_text("x/z/f.png", "p");
    write_text("x/y/g.png", "p");
    snprintf(b, sizeof b, "%s/x/z/f.png", ROOT);
    assert_int_equal(fv_report_relpath(out, sizeof out, a, b, &e), 0);
    assert_string_equal(out, "../z/f.png");
    snprintf(b, sizeof b, "%s/x/y/g.png", ROOT);
    assert_int_equal(fv_report_relpath(out, sizeof out, a, b, &e), 0);
    assert_string_equal(out, "g.png");
    snprintf(b, sizeof b, "%s/x/y", ROOT);
    assert_int_equal(fv_report_relpath(out, sizeof out, a, b, &e), 0);
    assert_string_equal(out, ".");
    snprintf(b, sizeof b, "%s/x/zz.png", ROOT); /* missing */
    assert_int_equal(fv_report_relpath(out, sizeof out, a, b, &e), -1);
}

static void test_cli(void **st) {
    (void)st;
    const char *bin = getenv("FEDVIM_BIN");
    if (!bin || access(bin, X_OK) != 0) {
        fprintf(stderr, "test_report: FEDVIM_BIN not set: CLI part skipped\n");
        skip();
    }
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "%s report --out %s/cli 2>/dev/null", bin, ROOT); /* no folder */
    assert_int_equal(WEXITSTATUS(system(cmd)), 2);
    snprintf(cmd, sizeof cmd, "%s report %s/nonexistent --out %s/cli 2>/dev/null", bin, ROOT, ROOT);
    assert_int_equal(WEXITSTATUS(system(cmd)), 1);
    snprintf(cmd, sizeof cmd, "%s report %s/res --out %s/cli --no-plots 2>/dev/null", bin, ROOT, ROOT);
    assert_int_equal(WEXITSTATUS(system(cmd)), 0);
    assert_true(exists("cli/report.md") && exists("cli/roc.gp") && !exists("cli/roc.png"));
}

int main(void) {
    snprintf(ROOT, sizeof ROOT, "/tmp/test_report_%d", (int)getpid());
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_json_values), cmocka_unit_test(test_json_errors),
        cmocka_unit_test(test_report_end_to_end), cmocka_unit_test(test_report_frontier),
        cmocka_unit_test(test_report_errors),
        cmocka_unit_test(test_relpath), cmocka_unit_test(test_cli),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    char cmd[512];
    snprintf(cmd, sizeof cmd, "rm -rf %s", ROOT);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", ROOT);
    return rc;
}
