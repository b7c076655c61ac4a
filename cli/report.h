/* report.h: the Markdown report of `fedvim report`: it gathers the results folders of
 * experiments (metrics.jsonl of `fedvim run`, CSV tables of experiments/, JSON results that carry
 * ROC points, PNG image grids), and writes report.md with the tables, gnuplot plots (a .dat data
 * file and a .gp script per plot, rendered to PNG by running gnuplot), and links to the grids.
 * Plots made: accuracy per round (every metrics.jsonl; clean and mixed test images); from CSV
 * tables, test accuracy against VFE and against DLG SSIM (columns vfe_mean / dlg_ssim_orig and
 * test_accuracy), VFE against window size (ws, vfe_mean), accuracy and loss per round
 * (round, test_accuracy / train_loss), series split by the first of the columns family,
 * strategy, method, optimizer, setting; the privacy-utility frontier under the strongest attack
 * (attack_ssim, cost_points: one point per row, a series per dataset, dashed lines at SSIM 0.3
 * and 2 points; experiments/attacks/adaptive); ROC curves from any JSON object holding the arrays
 * roc_fpr and roc_tpr (top level or one level down). A CSV column "grid" (an image path relative
 * to the CSV) puts each row's image under the table's plots; a missing one is an error.
 * Not here: computing any figure (the experiments did), reading images, styling beyond gnuplot's
 * defaults.
 */
#ifndef FV_REPORT_H
#define FV_REPORT_H
#include "fv_common.h"

typedef struct fv_report fv_report;

/* A new empty report (caller owns: fv_report_destroy). */
fv_report *fv_report_new(void);
void fv_report_destroy(fv_report **r); /* accepts NULL; clears *r */

/* Gather the results under dir (the folder and its subfolders, 4 levels deep; symbolic links
 * are not followed). Returns the number of items found (metrics.jsonl, CSV, ROC JSON, PNG), or
 * -1 with e naming the file that could not be read or parsed (a malformed metrics line, a CSV
 * whose row has more fields than its header). */
FV_MUST_USE int fv_report_add_dir(fv_report *r, const char *dir, fv_err *e);

/* Write out_dir/report.md and one .dat and .gp per plot; if plots is 1, run gnuplot on each
 * script to make the PNGs (a missing gnuplot is an error that says how to install it or to pass
 * --no-plots). out_dir is created if needed. Returns 0 or -1 with e set; report.md is written
 * atomically. */
FV_MUST_USE int fv_report_write(const fv_report *r, const char *out_dir, int plots, fv_err *e);

/* Path of `to` relative to the folder `from_dir` (both made absolute with realpath; `to` must
 * exist). Writes at most n bytes to out. Returns 0 or -1 with e set. Exposed for tests. */
FV_MUST_USE int fv_report_relpath(char *out, size_t n, const char *from_dir, const char *to, fv_err *e);

#endif
