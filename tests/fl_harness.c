/* fl_harness.c: see fl_harness.h. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "attack_api.h"
#include "fl/config.h"
#include "fl_harness.h"
#include "fv_common.h"

int fh_init(fh_ctx *c, const char *name) {
    c->bin = getenv("FEDVIM_BIN");
    if (!c->bin || access(c->bin, X_OK) != 0) {
        fprintf(stderr, "skipped: FEDVIM_BIN does not name the built fedvim binary\n");
        return 77;
    }
    snprintf(c->root, sizeof c->root, "/tmp/fv_%.20s_XXXXXX", name);
    return mkdtemp(c->root) ? 0 : -1;
}

void fh_cleanup(fh_ctx *c) {
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", c->root);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", c->root);
}

void fh_path(const fh_ctx *c, char *out, size_t cap, const char *fmt, ...) {
    int n = snprintf(out, cap, "%s/", c->root);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(out + n, cap - (size_t)n, fmt, ap);
    va_end(ap);
}

void fh_put(const char *p, const char *text) {
    FILE *f = fopen(p, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

char *fh_slurp(const char *p) {
    uint8_t *d = NULL;
    size_t len = 0;
    fv_err e;
    if (fv_read_file(p, 64u << 20, &d, &len, &e) != 0) return NULL;
    char *s = realloc(d, len + 1);
    s[len] = 0;
    return s;
}

char *fh_line(const char *text, int i) {
    const char *p = text;
    for (int k = 0; k < i && p; k++) {
        p = strchr(p, '\n');
        if (p) p++;
    }
    if (!p || !*p) return NULL;
    const char *nl = strchr(p, '\n');
    size_t l = nl ? (size_t)(nl - p) : strlen(p);
    char *s = malloc(l + 1);
    memcpy(s, p, l);
    s[l] = 0;
    return s;
}

int fh_count_lines(const char *text) {
    int n = 0;
    for (const char *c = text; c && *c; c++) n += *c == '\n';
    return n;
}

double fh_json_num(const char *json, const char *key) {
    char pat[96];
    snprintf(pat, sizeof pat, "\"%s\":", key);
    const char *p = json ? strstr(json, pat) : NULL;
    return p ? strtod(p + strlen(pat), NULL) : NAN;
}

int fh_run(const fh_ctx *c, const char *out, double timeout, ...) {
    const char *argv[32];
    int n = 0;
    argv[n++] = c->bin;
    va_list ap;
    va_start(ap, timeout);
    const char *a;
    while ((a = va_arg(ap, const char *)) && n < 31) argv[n++] = a;
    va_end(ap);
    argv[n] = NULL;
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int fd = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        dup2(fd, 1);
        dup2(fd, 2);
        close(fd);
        execv(c->bin, (char *const *)argv);
        _exit(127);
    }
    double end = fv_now() + timeout;
    for (;;) {
        int st;
        if (waitpid(pid, &st, WNOHANG) == pid) {
            int rc = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
            if (rc != 0) {
                char *t = fh_slurp(out);
                print_message("fedvim exited %d:\n%s\n", rc, t ? t : "");
                free(t);
            }
            return rc;
        }
        if (fv_now() > end) {
            kill(pid, SIGKILL);
            waitpid(pid, &st, 0);
            fail_msg("fedvim did not finish within %.0f s", timeout);
        }
        usleep(5000);
    }
}

int fh_run_exp(const fh_ctx *c, const char *name, const char *base, const char *extra) {
    char p[256], out[256], text[4096];
    fh_path(c, p, sizeof p, "%s.ini", name);
    fh_path(c, out, sizeof out, "%s.out", name);
    snprintf(text, sizeof text, "%s\n[output]\ndir = %s/results\n%s\n", base, c->root, extra ? extra : "");
    fh_put(p, text);
    return fh_run(c, out, 300, "run", p, "--quiet", "--overwrite", (const char *)NULL);
}

void fh_expect_config_error(const char *base_ini, const char *extra, const char *n1, const char *n2) {
    char text[4096];
    const int len = snprintf(text, sizeof text, "%s%s\n", base_ini, extra);
    if (len < 0 || (size_t)len >= sizeof text) fail_msg("config text of %d bytes does not fit: %.60s", len, extra);
    fv_config c;
    fv_config_defaults(&c);
    fv_err e = {{0}};
    int rc = fv_config_parse(&c, "t.ini", text, strlen(text), &e);
    if (rc == 0) rc = fv_config_check(&c, &e);
    if (rc == 0) rc = fv_attack_check_config(&c, &e); /* as every entry point that runs one */
    if (rc == 0) fail_msg("accepted: %s", extra);
    if (!strstr(e.msg, n1) || (n2 && !strstr(e.msg, n2)))
        fail_msg("for %s: message '%s' lacks '%s' / '%s'", extra, e.msg, n1, n2 ? n2 : "");
}
