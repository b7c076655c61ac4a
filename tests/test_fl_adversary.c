/* test_fl_adversary.c: [adversary] end to end: malicious clients trained by real worker processes
 * (`fedvim run`, 2 workers, security on), against the server's aggregation rules. Each case runs
 * the same small synthetic experiment (5 clients, all sampled, 3 rounds, the tiny model; client
 * 2 malicious); the figures quoted were measured on it and the runs are deterministic:
 *  - huge values (3e38, finite) with FedAvg: every round's aggregate is unsound and rolled back
 *    (the model never moves: accuracy of the initial model, 5.25%), the rounds count one
 *    malicious update each; with median the run is unharmed (92.75%, the clean run 91.0%): no
 *    roll-back, accuracy within 5 points of the clean median run;
 *  - backdoor: FedAvg lets it in (success 39.4% on triggered test images, against 7.2% for the
 *    same run whose malicious client poisons nothing), Multi-Krum keeps it out (0.3%); the
 *    per-round metrics and summary.json report it; with VisualMixer the mixed figure is
 *    reported too (45.3% / 46.7%). */
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

#define BASE                                                                                                     \
    "[data]\ndataset = synthetic\ntrain_size = 1600\ntest_size = 400\n[fl]\nclients = 5\nrounds = 3\nworkers = " \
    "2\nkrum_f = 1\nmultikrum_m = 2\n[training]\nlr = 0.05\n[model]\nname = tiny\n"

/* Run BASE + extra as `name`; return summary.json (caller frees) and, when metrics is not NULL,
 * metrics.jsonl. */
static char *run(const fh_ctx *c, const char *name, const char *extra, char **metrics) {
    assert_int_equal(fh_run_exp(c, name, BASE, extra), 0);
    char p[256];
    fh_path(c, p, sizeof p, "results/%s/summary.json", name);
    char *s = fh_slurp(p);
    assert_non_null(s);
    if (metrics) {
        fh_path(c, p, sizeof p, "results/%s/metrics.jsonl", name);
        *metrics = fh_slurp(p);
        assert_non_null(*metrics);
        assert_int_equal(fh_count_lines(*metrics), 3);
    }
    return s;
}

static void test_huge_values(void **state) {
    (void)state;
    fh_ctx c;
    int rc = fh_init(&c, "adv_huge");
    if (rc == 77) skip();
    assert_int_equal(rc, 0);
    char *m = NULL;
    char *s = run(&c, "avg", "[adversary]\nkind = huge\nclients = 2\n", &m);
    assert_true(fh_json_num(s, "rolled_back") == 3);
    assert_true(fh_json_num(s, "test_accuracy") < 0.2); /* the initial model's */
    assert_true(fh_json_num(s, "malicious_clients") == 1);
    for (int i = 0; i < 3; i++) {
        char *l = fh_line(m, i);
        assert_true(fh_json_num(l, "malicious") == 1);
        free(l);
    }
    free(s);
    free(m);
    char *clean = run(&c, "clean", "[fl]\naggregator = median\n", NULL);
    s = run(&c, "med", "[fl]\naggregator = median\n[adversary]\nkind = huge\nclients = 2\n", &m);
    assert_true(fh_json_num(s, "rolled_back") == 0);
    assert_true(fh_json_num(s, "test_accuracy") > fh_json_num(clean, "test_accuracy") - 0.05);
    assert_non_null(strstr(m, "\"malicious\":1"));
    free(s);
    free(m);
    free(clean);
    fh_cleanup(&c);
}

static void test_backdoor(void **state) {
    (void)state;
    fh_ctx c;
    int rc = fh_init(&c, "adv_bd");
    if (rc == 77) skip();
    assert_int_equal(rc, 0);
    const char *adv = "[adversary]\nkind = backdoor\nclients = 2\ntarget = 1\n";
    char extra[256];
    snprintf(extra, sizeof extra, "%spoison_fraction = 0\n", adv);
    char *base = run(&c, "base", extra, NULL);
    char *m = NULL;
    char *s = run(&c, "avg", adv, &m);
    double b0 = fh_json_num(base, "backdoor_success"), b1 = fh_json_num(s, "backdoor_success");
    assert_true(b0 < 0.15);
    assert_true(b1 > 0.25 && b1 > b0 + 0.2);
    char *last = fh_line(m, 2);
    assert_true(fh_json_num(last, "backdoor_success") == b1); /* the last round's model is the final one */
    free(last);
    free(m);
    free(s);
    snprintf(extra, sizeof extra, "[fl]\naggregator = multikrum\n%s", adv);
    s = run(&c, "mkrum", extra, NULL);
    assert_true(fh_json_num(s, "backdoor_success") < 0.1);
    free(s);
    snprintf(extra, sizeof extra, "%s[visualmixer]\nenabled = true\n", adv);
    s = run(&c, "vmix", extra, NULL);
    assert_true(fh_json_num(s, "backdoor_success_mixed") > 0.25);
    free(s);
    free(base);
    fh_cleanup(&c);
}

int main(void) {
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_huge_values), cmocka_unit_test(test_backdoor)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
