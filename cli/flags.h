/* flags.h: the command-line flag parser every subcommand uses, so that `fedvim <cmd> --help`
 * always lists every flag with its default, and every bad value gets an error naming the flag.
 * Not here: any subcommand logic.
 */
#ifndef FV_FLAGS_H
#define FV_FLAGS_H
#include "fv_common.h"

typedef enum { FV_FLAG_BOOL, FV_FLAG_INT, FV_FLAG_FLOAT, FV_FLAG_STRING } fv_flag_type;

typedef struct {
    const char *name;   /* without the leading "--" */
    fv_flag_type type;
    void *dst;          /* int * (BOOL, INT), double * (FLOAT), const char ** (STRING) */
    const char *help;
    double lo, hi;      /* inclusive range for INT and FLOAT (ignored when lo == hi == 0) */
} fv_flag;

/* Parse argv[1..argc) against flags[0..n). "--name value" and "--name=value" are accepted; a BOOL
 * flag takes no value. Positional arguments are collected into pos (at most maxpos; *npos set).
 * Returns 0; 1 when --help was given (help already printed to stdout); -1 with e naming the flag
 * on an unknown flag, a missing value, a bad number or an out-of-range value. */
FV_MUST_USE int fv_flags_parse(const char *cmd, const char *usage, const fv_flag *flags, int n, int argc,
                   char **argv, const char **pos, int maxpos, int *npos, fv_err *e);

/* Print "usage" and the flag table to f, each flag with its default (a FLOAT default below the
 * flag's range is a "not given" marker and is not shown). */
void fv_flags_help(FILE *f, const char *cmd, const char *usage, const fv_flag *flags, int n);

#endif
