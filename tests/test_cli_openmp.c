/* test_cli_openmp.c: `fedvim bench train` as a user runs it: one JSON object with the rate, and the
 * OpenMP wait setting it ran under. fedvim bounds idle threads' spin (GOMP_SPINCOUNT=10000,
 * cli/main.c) unless the user chose OMP_WAIT_POLICY or GOMP_SPINCOUNT; either choice is kept. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fl_harness.h"

static fh_ctx H;

/* Runs a small CPU benchmark with the environment as it stands; returns its JSON text (caller
 * frees). */
static char *bench(const char *name) {
    char out[256];
    fh_path(&H, out, sizeof out, "%s.out", name);
    assert_int_equal(fh_run(&H, out, 120, "bench", "train", "--model", "tiny", "--batch", "16", "--images", "64",
                            "--threads", "2", "--json", (const char *)NULL),
                     0);
    char *t = fh_slurp(out);
    assert_non_null(t);
    const double ips = fh_json_num(t, "images_per_second");
    if (!(ips > 0.0)) fail_msg("%s: no rate in:\n%s", name, t);
    return t;
}

static void expect_openmp(const char *name, const char *want) {
    char *t = bench(name);
    char pat[128];
    snprintf(pat, sizeof pat, "\"openmp\":\"%s\"", want);
    if (!strstr(t, pat)) fail_msg("%s: expected %s in:\n%s", name, pat, t);
    free(t);
}

static void test_openmp_default_and_overrides(void **st) {
    (void)st;
    /* ctest sets OMP_WAIT_POLICY=PASSIVE for the whole suite; this test sets its own */
    unsetenv("OMP_WAIT_POLICY");
    unsetenv("GOMP_SPINCOUNT");
    expect_openmp("default", "GOMP_SPINCOUNT=10000");
    setenv("OMP_WAIT_POLICY", "PASSIVE", 1);
    expect_openmp("passive", "OMP_WAIT_POLICY=PASSIVE");
    unsetenv("OMP_WAIT_POLICY");
    setenv("GOMP_SPINCOUNT", "500", 1);
    expect_openmp("spin", "GOMP_SPINCOUNT=500");
    setenv("OMP_WAIT_POLICY", "PASSIVE", 1);
    unsetenv("GOMP_SPINCOUNT");
}

int main(void) {
    const int r = fh_init(&H, "cli_openmp");
    if (r == 77) {
        fprintf(stderr, "test_cli_openmp: FEDVIM_BIN is not set to the fedvim binary: skipped\n");
        return 77;
    }
    if (r != 0) return 1;
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_openmp_default_and_overrides)};
    const int rc = cmocka_run_group_tests_name("cli_openmp", tests, NULL, NULL);
    fh_cleanup(&H);
    return rc != 0 ? 1 : 0;
}
