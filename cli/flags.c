/* flags.c: see flags.h. */
#include "flags.h"

#include <string.h>

void fv_flags_help(FILE *f, const char *cmd, const char *usage, const fv_flag *flags, int n) {
    fprintf(f, "usage: fedvim %s %s\n\nflags:\n", cmd, usage);
    for (int i = 0; i < n; i++) {
        const fv_flag *fl = &flags[i];
        char left[64];
        const char *arg = fl->type == FV_FLAG_BOOL ? "" : fl->type == FV_FLAG_INT ? " N"
                          : fl->type == FV_FLAG_FLOAT ? " X" : " S";
        snprintf(left, sizeof left, "--%s%s", fl->name, arg);
        fprintf(f, "  %-24s %s", left, fl->help);
        switch (fl->type) {
        case FV_FLAG_INT: fprintf(f, " (default %d)", *(int *)fl->dst); break;
        case FV_FLAG_FLOAT:
            /* a default below the accepted range means "not given" (the help text says what then) */
            if (!(fl->lo < fl->hi && *(double *)fl->dst < fl->lo)) fprintf(f, " (default %g)", *(double *)fl->dst);
            break;
        case FV_FLAG_STRING:
            if (*(const char **)fl->dst) fprintf(f, " (default %s)", *(const char **)fl->dst);
            break;
        case FV_FLAG_BOOL: break;
        }
        fputc('\n', f);
    }
    fprintf(f, "  %-24s %s\n", "--help", "print this help and exit");
}

int fv_flags_parse(const char *cmd, const char *usage, const fv_flag *flags, int n, int argc,
                   char **argv, const char **pos, int maxpos, int *npos, fv_err *e) {
    *npos = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            fv_flags_help(stdout, cmd, usage, flags, n);
            return 1;
        }
        if (strncmp(a, "--", 2) != 0 || a[2] == 0) {
            if (*npos >= maxpos) return fv_err_set(e, "fedvim %s: unexpected argument '%s'", cmd, a);
            pos[(*npos)++] = a;
            continue;
        }
        const char *name = a + 2, *eq = strchr(name, '=');
        size_t nl = eq ? (size_t)(eq - name) : strlen(name);
        const fv_flag *fl = NULL;
        for (int j = 0; j < n; j++)
            if (strlen(flags[j].name) == nl && strncmp(flags[j].name, name, nl) == 0) fl = &flags[j];
        if (!fl) return fv_err_set(e, "fedvim %s: unknown flag '--%.*s' (see fedvim %s --help)", cmd, (int)nl, name, cmd);
        if (fl->type == FV_FLAG_BOOL) {
            if (eq) return fv_err_set(e, "fedvim %s: --%s takes no value", cmd, fl->name);
            *(int *)fl->dst = 1;
            continue;
        }
        const char *val = eq ? eq + 1 : (i + 1 < argc ? argv[++i] : NULL);
        if (!val) return fv_err_set(e, "fedvim %s: --%s needs a value", cmd, fl->name);
        char fname[80];
        snprintf(fname, sizeof fname, "--%s", fl->name);
        int ranged = !(fl->lo == 0 && fl->hi == 0);
        if (fl->type == FV_FLAG_INT) {
            long v;
            if (fv_parse_int(fname, val, ranged ? (long)fl->lo : -2147483647L,
                             ranged ? (long)fl->hi : 2147483647L, &v, e) != 0)
                return fv_err_prefix(e, "fedvim %s: ", cmd);
            *(int *)fl->dst = (int)v;
        } else if (fl->type == FV_FLAG_FLOAT) {
            double v;
            if (fv_parse_float(fname, val, ranged ? fl->lo : -1e300, ranged ? fl->hi : 1e300, &v, e) != 0)
                return fv_err_prefix(e, "fedvim %s: ", cmd);
            *(double *)fl->dst = v;
        } else {
            *(const char **)fl->dst = val;
        }
    }
    return 0;
}
