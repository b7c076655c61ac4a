/* cmd_report.c: `fedvim report RESULTS_DIR... --out DIR`: a Markdown report (report.md) with the
 * tables, gnuplot plots and image links of the results found under the folders (see report.h).
 * Not here: the gathering and writing (cli/report.c). */
#include <stdio.h>

#include "cmds.h"
#include "flags.h"
#include "report.h"

#define MAX_DIRS 256

int fv_cmd_report(int argc, char **argv) {
    const char *out = NULL;
    int no_plots = 0;
    fv_flag flags[] = {
        {"out", FV_FLAG_STRING, &out, "output folder for report.md, the plots and their scripts (required)", 0, 0},
        {"no-plots", FV_FLAG_BOOL, &no_plots, "write the .gp scripts and .dat files but do not run gnuplot", 0, 0},
    };
    const char *pos[MAX_DIRS];
    int npos = 0;
    fv_err e = {{0}};
    int r = fv_flags_parse("report", "RESULTS_DIR... --out DIR [flags]", flags, 2, argc, argv, pos, MAX_DIRS, &npos,
                           &e);
    if (r == 1) return 0;
    if (r < 0) {
        fprintf(stderr, "%s\n", e.msg);
        return 2;
    }
    if (!out || npos < 1) {
        fprintf(stderr, "fedvim report: give one or more results folders and --out DIR\n");
        return 2;
    }
    fv_report *rep = fv_report_new();
    int total = 0;
    for (int i = 0; i < npos; i++) {
        int n = fv_report_add_dir(rep, pos[i], &e);
        if (n < 0) {
            fprintf(stderr, "fedvim report: %s\n", e.msg);
            fv_report_destroy(&rep);
            return 1;
        }
        if (n == 0) fprintf(stderr, "fedvim report: %s: no metrics.jsonl, CSV, ROC JSON or PNG found\n", pos[i]);
        total += n;
    }
    int rc = fv_report_write(rep, out, !no_plots, &e);
    fv_report_destroy(&rep);
    if (rc) {
        fprintf(stderr, "fedvim report: %s\n", e.msg);
        return 1;
    }
    fprintf(stderr, "fedvim report: %d items, wrote %s/report.md\n", total, out);
    return 0;
}
