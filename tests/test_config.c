/* test_config.c: the experiment config: defaults, parsing, every kind of error naming
 * file:line and the key, --set overrides, cross-key checks (and none of an attack's: those are
 * attacks/attack_api.h's), the key-error formatter, the resolved text reading back
 * to the identical config, and choice keys tied to their C enums; the aggregation rule's keys
 * (choices, ranges, the combinations refused, written only for a robust rule); issue 17's
 * hardening (a file that sets no key, text after a section header, values of unused keys checked,
 * the UTF-8 text rule). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fl/config.h"

static int parse(fv_config *c, const char *text, fv_err *e) {
    fv_config_defaults(c);
    return fv_config_parse(c, "exp.ini", text, strlen(text), e);
}

/* Parsing `text` must fail with a message containing every one of the given fragments. */
static void expect_error(const char *text, const char *frag1, const char *frag2) {
    fv_config c;
    fv_err e = {{0}};
    int rc = parse(&c, text, &e);
    if (rc == 0) fail_msg("accepted bad config:\n%s", text);
    if (!strstr(e.msg, frag1) || (frag2 && !strstr(e.msg, frag2)))
        fail_msg("message '%s' lacks '%s' / '%s'", e.msg, frag1, frag2 ? frag2 : "");
}

static void test_defaults_valid(void **state) {
    (void)state;
    fv_config c;
    fv_err e = {{0}};
    fv_config_defaults(&c);
    if (fv_config_check(&c, &e) != 0) fail_msg("defaults rejected: %s", e.msg);
    assert_string_equal(c.dataset, "mnist");
    assert_int_equal(c.rounds, 10);
    assert_int_equal(c.security, 1);
    assert_int_equal(c.partition, FV_PART_IID);
    assert_int_equal(fv_config_clients_per_round(&c), 10);
    assert_true(c.vmix_d_star == FV_CFG_AUTO); /* d* relative to the shard by default */
    assert_true(c.vmix_d_rel == FV_VMIX_DREL_DEF);
    assert_true(c.vmix_vfe_target == FV_VMIX_TARGET_DEF && c.vmix_trials == FV_VMIX_TRIALS_DEF);
}

static void test_parse_good(void **state) {
    (void)state;
    fv_config c;
    fv_err e = {{0}};
    const char *t = "; comment\n[fl]\nrounds = 7\nfraction = 0.35\nclients = 20\nseed = 123456789012\n"
                    "[partition]\nscheme = dirichlet\nalpha = 0.1\n[training]\noptimizer = stadam\n"
                    "nesterov = yes\n[data]\ndataset = synthetic\n";
    if (parse(&c, t, &e) != 0) fail_msg("%s", e.msg);
    assert_int_equal(c.rounds, 7);
    assert_true(c.fraction == 0.35);
    assert_int_equal(c.clients, 20);
    assert_true(c.seed == 123456789012LL);
    assert_int_equal(c.partition, FV_PART_DIRICHLET);
    assert_true(c.alpha == 0.1);
    assert_int_equal(c.optimizer, FV_OPT_STADAM);
    assert_int_equal(c.nesterov, 1);
    assert_string_equal(c.dataset, "synthetic");
    assert_int_equal(fv_config_clients_per_round(&c), 7); /* floor(0.35 * 20) */
}

static void test_errors_name_line_and_key(void **state) {
    (void)state;
    expect_error("[fl]\nrounds = 5\nroundz = 3\n", "exp.ini:3", "[fl] roundz: unknown key");
    expect_error("[fl]\nrounds = ten\n", "exp.ini:2: [fl] rounds", "expected an integer, got 'ten'");
    expect_error("[fl]\nrounds = 0\n", "exp.ini:2: [fl] rounds", "out of range");
    expect_error("[fl]\nfraction = 1.5\n", "exp.ini:2: [fl] fraction", "out of range");
    expect_error("[fl]\nfraction = nan\n", "[fl] fraction", "expected a number");
    expect_error("[fl]\nrounds = 5 apples\n", "[fl] rounds", "expected an integer");
    expect_error("\n\n[flx]\nrounds = 5\n", "exp.ini:4", "unknown section [flx]");
    expect_error("rounds = 5\n", "exp.ini:1", "outside any [section]");
    expect_error("[fl]\nrounds = 5\nrounds = 6\n", "exp.ini:3", "set twice (first on line 2");
    expect_error("[fl]\nrounds = 5\n  clients = 4\n", "exp.ini:3", "set twice");
    expect_error("[fl]\nrounds\n", "exp.ini:2", "syntax error");
    expect_error("[partition]\nscheme = random\n", "[partition] scheme", "not one of iid|dirichlet|shards");
    expect_error("[visualmixer]\nd_star = automatic\n", "[visualmixer] d_star", "expected a number or auto");
    expect_error("[visualmixer]\nd_star = -1\n", "[visualmixer] d_star", "out of range");
    expect_error("[visualmixer]\nd_star_relative = 0\n", "[visualmixer] d_star_relative", "out of range");
    expect_error("[security]\nenabled = maybe\n", "[security] enabled", "expected true or false");
    expect_error("[output]\nname = a\x01" "b\n", "[output] name", "control characters");
    char longline[600];
    memset(longline, 'x', sizeof longline);
    memcpy(longline, "[fl]\nrounds = 1", 15);
    longline[sizeof longline - 2] = '\n';
    longline[sizeof longline - 1] = 0;
    expect_error(longline, "exp.ini:2", "line too long");
}

static void test_set_override(void **state) {
    (void)state;
    fv_config c;
    fv_err e = {{0}};
    assert_int_equal(parse(&c, "[fl]\nrounds = 5\n", &e), 0);
    assert_int_equal(fv_config_set(&c, "fl.rounds=50", &e), 0);
    assert_int_equal(c.rounds, 50);
    assert_int_equal(fv_config_set(&c, "training.optimizer=adam", &e), 0);
    assert_int_equal(c.optimizer, FV_OPT_ADAM);
    assert_int_equal(fv_config_set(&c, "fl.rounds=-1", &e), -1);
    assert_non_null(strstr(e.msg, "--set fl.rounds=-1: [fl] rounds"));
    assert_int_equal(fv_config_set(&c, "fl.nope=1", &e), -1);
    assert_non_null(strstr(e.msg, "unknown key"));
    assert_int_equal(fv_config_set(&c, "rounds=1", &e), -1);
    assert_non_null(strstr(e.msg, "section.key=value"));
    assert_int_equal(fv_config_set(&c, "x.rounds=1", &e), -1);
    assert_non_null(strstr(e.msg, "unknown section"));
}

static void test_check_cross_keys(void **state) {
    (void)state;
    fv_config c;
    fv_err e = {{0}};
    assert_int_equal(parse(&c, "[fl]\nclients = 10\nfraction = 0.2\nmin_clients = 3\n", &e), 0);
    assert_int_equal(fv_config_check(&c, &e), -1);
    assert_non_null(strstr(e.msg, "exp.ini:4: [fl] min_clients"));
    assert_non_null(strstr(e.msg, "2 clients sampled per round"));
    assert_int_equal(parse(&c, "[model]\nname = resnet9000\n", &e), 0);
    assert_int_equal(fv_config_check(&c, &e), -1);
    assert_non_null(strstr(e.msg, "unknown model 'resnet9000'"));
    assert_int_equal(parse(&c, "[data]\ndataset = synthetic\nsynthetic_shape = 3x32\n", &e), 0);
    assert_int_equal(fv_config_check(&c, &e), -1);
    assert_non_null(strstr(e.msg, "synthetic_shape"));
    assert_int_equal(parse(&c, "[output]\nname = ../x\n", &e), 0);
    assert_int_equal(fv_config_check(&c, &e), -1);
    assert_int_equal(parse(&c, "[fl]\nheartbeat = 5\nworker_timeout = 8\n", &e), 0);
    assert_int_equal(fv_config_check(&c, &e), -1);
    assert_non_null(strstr(e.msg, "worker_timeout"));
}

/* The config layer knows no attack: what a kind needs of other sections (dlg: its model, plain
 * SGD, one epoch; gan: held-out images) is fv_attack_check_config's rule, not fv_config_check's.
 * The key-error formatter it exports names where the key was set: file:line, --set, default. */
static void test_key_error_and_no_attack_rules(void **state) {
    (void)state;
    fv_config c;
    fv_err e = {{0}};
    assert_int_equal(parse(&c, "[attack]\nkind = dlg\n[training]\nlocal_epochs = 3\nmomentum = 0.9\n", &e), 0);
    assert_int_equal(fv_config_check(&c, &e), 0);
    assert_int_equal(parse(&c, "[data]\ndataset = mnist\n[attack]\nkind = gan\n", &e), 0);
    assert_int_equal(fv_config_check(&c, &e), 0);
    assert_int_equal(fv_config_set(&c, "model.name=tiny", &e), 0);
    assert_int_equal(fv_config_key_error(&c, &e, "data", "dataset", "bad %s %d", "x", 7), -1);
    assert_string_equal(e.msg, "exp.ini:2: [data] dataset: bad x 7");
    assert_int_equal(fv_config_key_error(&c, &e, "model", "name", "no"), -1);
    assert_string_equal(e.msg, "--set: [model] name: no");
    assert_int_equal(fv_config_key_error(&c, &e, "fl", "rounds", "no"), -1);
    assert_string_equal(e.msg, "default: [fl] rounds: no");
}

/* Everything except the bookkeeping of where keys were set. */
static int same_values(const fv_config *a, const fv_config *b) {
    return memcmp(a, b, offsetof(fv_config, origin_line)) == 0;
}

static void test_resolved_roundtrip(void **state) {
    (void)state;
    fv_config a, b;
    fv_err e = {{0}};
    assert_int_equal(parse(&a, "[training]\nlr = 0.1\nweight_decay = 3e-4\n[fl]\nfraction = 0.3333333333333333\n"
                               "seed = 9007199254740991\n[output]\nname = run one\n", &e), 0);
    char *text = fv_config_write(&a);
    fv_config_defaults(&b);
    b.rounds = 999; /* must be overwritten: the resolved text lists every key */
    if (fv_config_parse(&b, "resolved", text, strlen(text), &e) != 0) fail_msg("%s\n%s", e.msg, text);
    assert_true(same_values(&a, &b));
    assert_non_null(strstr(text, "lr = 0.1\n"));  /* shortest exact form */
    assert_non_null(strstr(text, "weight_decay = 0.0003\n"));
    char *again = fv_config_write(&b);
    assert_string_equal(text, again);
    assert_non_null(strstr(text, "d_star = auto\n")); /* the keyword round-trips, not its marker */
    free(text);
    free(again);
    assert_int_equal(parse(&a, "[visualmixer]\nd_star = 12.5\n", &e), 0);
    assert_true(a.vmix_d_star == 12.5);
    text = fv_config_write(&a);
    assert_non_null(strstr(text, "d_star = 12.5\n"));
    free(text);
}

/* Regression (fuzz_text found it): a string value written tightly ("dir=...") up to inih's line
 * length was accepted, but the resolved config writes "dir = ..." and could not read it back.
 * Every accepted length must round-trip; a refused one is refused for its length. */
static void test_long_string_roundtrip(void **state) {
    (void)state;
    char text[600], val[FV_CFG_STR + 8];
    int longest = 0;
    for (int l = 1; l < FV_CFG_STR; l++) {
        memset(val, 'a', (size_t)l);
        val[l] = 0;
        snprintf(text, sizeof text, "[data]\ndir=%s\n", val);
        fv_config a, b;
        fv_err e = {{0}};
        if (parse(&a, text, &e) != 0) {
            if (!strstr(e.msg, "[data] dir: the value is") && !strstr(e.msg, "line too long"))
                fail_msg("length %d: %s", l, e.msg);
            continue;
        }
        longest = l;
        char *w = fv_config_write(&a);
        fv_config_defaults(&b);
        if (fv_config_parse(&b, "resolved", w, strlen(w), &e) != 0) fail_msg("length %d: %s", l, e.msg);
        assert_string_equal(b.data_dir, val);
        free(w);
    }
    assert_true(longest >= 100); /* inih's buffer is 200 bytes in Debian's build */
}

static void test_load_file(void **state) {
    (void)state;
    char path[] = "/tmp/fv_test_config_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    const char *t = "[fl]\nrounds = 3\n[fl]\nbogus = 1\n";
    assert_int_equal(write(fd, t, strlen(t)), (long)strlen(t));
    close(fd);
    fv_config c;
    fv_err e = {{0}};
    fv_config_defaults(&c);
    assert_int_equal(fv_config_load(&c, path, &e), -1);
    char want[64];
    snprintf(want, sizeof want, "%s:4: [fl] bogus", path);
    assert_non_null(strstr(e.msg, want));
    unlink(path);
    assert_int_equal(fv_config_load(&c, "/nonexistent/x.ini", &e), -1);
    assert_non_null(strstr(e.msg, "/nonexistent/x.ini"));
}

/* key=word must store value; the resolved text writes the word back. */
static void expect_choice(const char *key, const char *word, int value, size_t off) {
    fv_config c;
    fv_err e = {{0}};
    char a[128];
    fv_config_defaults(&c);
    snprintf(a, sizeof a, "%s=%s", key, word);
    if (fv_config_set(&c, a, &e) != 0) fail_msg("%s: %s", a, e.msg);
    int got;
    memcpy(&got, (const char *)&c + off, sizeof got);
    if (got != value) fail_msg("%s stored %d, the enum says %d", a, got, value);
    if (value == FV_ATTACK_NONE && strcmp(key, "attack.kind") == 0) return; /* [attack] is not written */
    char line[128];
    snprintf(line, sizeof line, "\n%s = %s\n", strchr(key, '.') + 1, word);
    char *w = fv_config_write(&c);
    if (!strstr(w, line)) fail_msg("the resolved text lacks '%s'", line + 1);
    free(w);
}

#define CHOICE(key, word, value, member) \
    expect_choice(key, word, (int)(value), offsetof(fv_config, member))

/* Every choice key's words map to their C enum values; where the enum's module names its values
 * (optim.h, vmix.h, vmix_bounds.h), the config uses the same words. */
static void test_choices_typed(void **state) {
    (void)state;
    for (fv_opt_kind k = FV_OPT_SGD; k <= FV_OPT_STADAM; k++) CHOICE("training.optimizer", fv_opt_kind_name(k), k, optimizer);
    for (fv_vmix_mode m = FV_VMIX_SPATIAL_CHROMATIC; m <= FV_VMIX_SPATIAL; m++)
        CHOICE("visualmixer.mode", fv_vmix_mode_name(m), m, vmix_mode);
    for (fv_vmix_conflict k = FV_VMIX_CONFLICT_ERROR; k <= FV_VMIX_CONFLICT_UTILITY; k++)
        CHOICE("visualmixer.conflict", fv_vmix_conflict_name(k), k, vmix_conflict);
    for (fv_attack_kind k = FV_ATTACK_NONE; k <= FV_ATTACK_GAN_ACTIVE; k++)
        CHOICE("attack.kind", fv_config_attack_kind_name(k), k, attack_kind);
    CHOICE("partition.scheme", "iid", FV_PART_IID, partition);
    CHOICE("partition.scheme", "dirichlet", FV_PART_DIRICHLET, partition);
    CHOICE("partition.scheme", "shards", FV_PART_SHARDS, partition);
    CHOICE("training.opt_state", "reset", FV_OPTSTATE_RESET, opt_state);
    CHOICE("training.opt_state", "keep", FV_OPTSTATE_KEEP, opt_state);
    assert_string_equal(fv_config_attack_kind_name(FV_ATTACK_GAN_ACTIVE), "gan_active");
    /* an unknown word lists the table's words */
    fv_config c;
    fv_err e = {{0}};
    fv_config_defaults(&c);
    assert_int_equal(fv_config_set(&c, "training.optimizer=lbfgs", &e), -1);
    assert_non_null(strstr(e.msg, "'lbfgs' is not one of sgd|adam|stadam"));
    assert_int_equal(fv_config_set(&c, "data.dataset=imagenet", &e), -1);
    assert_non_null(strstr(e.msg, "not one of mnist|fashion|cmnist|cifar10|synthetic"));
    /* a flag offering a key's choices reads them from the same table */
    int v = -1;
    assert_int_equal(fv_config_choice_value("partition", "scheme", "shards", &v, &e), 0);
    assert_int_equal(v, FV_PART_SHARDS);
    assert_int_equal(fv_config_choice_value("partition", "scheme", "uniform", &v, &e), -1);
    assert_non_null(strstr(e.msg, "'uniform' is not one of iid|dirichlet|shards"));
    /* --help-config lists every choice key's words */
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    assert_non_null(f);
    fv_config_print_schema(f);
    fclose(f);
    const char *lists[] = {"one of mnist|fashion|cmnist|cifar10|synthetic", "one of iid|dirichlet|shards",
                           "one of sgd|adam|stadam", "one of reset|keep", "one of spatial+chromatic|spatial",
                           "one of error|privacy|utility", "one of none|gan|dlg|mia|gan_active"};
    for (size_t i = 0; i < sizeof lists / sizeof lists[0]; i++)
        if (!strstr(buf, lists[i])) fail_msg("--help-config lacks '%s'", lists[i]);
    free(buf);
}

/* Parsing `text` succeeds but fv_config_check refuses it, naming every given fragment. */
static void expect_check_error(const char *text, const char *frag1, const char *frag2) {
    fv_config c;
    fv_err e = {{0}};
    if (parse(&c, text, &e) != 0) fail_msg("parse failed: %s\n%s", e.msg, text);
    if (fv_config_check(&c, &e) == 0) fail_msg("check accepted:\n%s", text);
    if (!strstr(e.msg, frag1) || (frag2 && !strstr(e.msg, frag2)))
        fail_msg("message '%s' lacks '%s' / '%s'", e.msg, frag1, frag2 ? frag2 : "");
}

static void expect_check_ok(const char *text) {
    fv_config c;
    fv_err e = {{0}};
    if (parse(&c, text, &e) != 0) fail_msg("parse failed: %s\n%s", e.msg, text);
    if (fv_config_check(&c, &e) != 0) fail_msg("check refused: %s\n%s", e.msg, text);
}

/* [fl] aggregator: its words and enum values, the parameters' ranges, the combinations refused
 * (DP with a robust rule, Krum with clients per round <= 2f + 2, Multi-Krum averaging more than
 * the clients per round less f, a trim that trims nothing or leaves nothing), and the resolved
 * text (the keys only for a robust rule, so a FedAvg run resolves as before they existed). */
static void test_aggregator_keys(void **state) {
    (void)state;
    const char *words[] = {"fedavg", "median", "trimmed_mean", "krum", "multikrum", "clip", "centered_clip"};
    const fv_aggregator kinds[] = {FV_AGGREGATOR_FEDAVG,    FV_AGGREGATOR_MEDIAN, FV_AGGREGATOR_TRIMMED_MEAN,
                                   FV_AGGREGATOR_KRUM,      FV_AGGREGATOR_MULTIKRUM, FV_AGGREGATOR_CLIP,
                                   FV_AGGREGATOR_CENTERED_CLIP};
    fv_config c, back;
    fv_err e = {{0}};
    for (size_t i = 0; i < sizeof words / sizeof words[0]; i++) {
        char a[64];
        snprintf(a, sizeof a, "fl.aggregator=%s", words[i]);
        fv_config_defaults(&c);
        assert_int_equal(fv_config_set(&c, a, &e), 0);
        assert_int_equal(c.aggregator, kinds[i]);
        char *w = fv_config_write(&c);
        char line[64];
        snprintf(line, sizeof line, "\naggregator = %s\n", words[i]);
        assert_true((strstr(w, line) != NULL) == (kinds[i] != FV_AGGREGATOR_FEDAVG));
        assert_true((strstr(w, "\nkrum_f = ") != NULL) == (kinds[i] != FV_AGGREGATOR_FEDAVG));
        fv_config_defaults(&back);
        if (fv_config_parse(&back, "resolved", w, strlen(w), &e) != 0) fail_msg("%s\n%s", e.msg, w);
        assert_true(same_values(&c, &back));
        free(w);
    }
    /* the parameters round-trip */
    assert_int_equal(parse(&c, "[fl]\naggregator = clip\nclip_norm = 0.25\ntrim_fraction = 0.3\nkrum_f = 2\n"
                               "multikrum_m = 5\n", &e), 0);
    char *w = fv_config_write(&c);
    fv_config_defaults(&back);
    assert_int_equal(fv_config_parse(&back, "resolved", w, strlen(w), &e), 0);
    assert_true(same_values(&c, &back) && back.clip_norm == 0.25 && back.trim_fraction == 0.3 && back.krum_f == 2 &&
                back.multikrum_m == 5);
    free(w);
    /* ranges and words */
    expect_error("[fl]\naggregator = bulyan\n", "exp.ini:2: [fl] aggregator",
                 "not one of fedavg|median|trimmed_mean|krum|multikrum|clip|centered_clip");
    expect_error("[fl]\ntrim_fraction = 0.6\n", "[fl] trim_fraction", "out of range [0, 0.5]");
    expect_error("[fl]\nclip_norm = 0\n", "[fl] clip_norm", "out of range");
    expect_error("[fl]\nkrum_f = -1\n", "[fl] krum_f", "out of range");
    expect_error("[fl]\nmultikrum_m = 0\n", "[fl] multikrum_m", "out of range");
    /* combinations */
    expect_check_error("[fl]\naggregator = median\n[dp]\nenabled = true\n", "exp.ini:2: [fl] aggregator", "[dp]");
    expect_check_error("[fl]\nclients = 4\naggregator = krum\n", "default: [fl] krum_f",
                       "more than 2f + 2 = 4 clients per round, the round samples 4");
    expect_check_error("[fl]\nclients = 20\nfraction = 0.3\naggregator = multikrum\nkrum_f = 2\n", "[fl] krum_f",
                       "2f + 2 = 6");
    expect_check_ok("[fl]\nclients = 5\naggregator = krum\n"); /* 5 > 2 * 1 + 2 */
    expect_check_ok("[fl]\nclients = 20\nfraction = 0.35\naggregator = multikrum\nkrum_f = 2\nmultikrum_m = 5\n");
    expect_check_error("[fl]\nclients = 7\naggregator = multikrum\nmultikrum_m = 7\n", "exp.ini:4: [fl] multikrum_m",
                       "at most 6");
    expect_check_error("[fl]\naggregator = trimmed_mean\ntrim_fraction = 0.05\n", "exp.ini:3: [fl] trim_fraction",
                       "trims no update");
    expect_check_error("[fl]\naggregator = trimmed_mean\ntrim_fraction = 0.5\n", "[fl] trim_fraction",
                       "leaves nothing");
    expect_check_ok("[fl]\nclients = 9\naggregator = trimmed_mean\ntrim_fraction = 0.5\n"); /* 4 + 4 of 9 */
    expect_check_ok("[fl]\naggregator = trimmed_mean\n");                                   /* 1 of 10 per side */
    expect_check_ok("[fl]\nclients = 100\naggregator = trimmed_mean\ntrim_fraction = 0.29\n"); /* floor(29 - ulp) */
    assert_int_equal(fv_config_trim_count(0.29, 100), 29);
    assert_int_equal(fv_config_krum_min(1), 5);
    /* the robust rules' keys are unchecked under fedavg, and DP with fedavg is DP-FedAvg */
    expect_check_ok("[fl]\nclients = 2\nkrum_f = 5\n[dp]\nenabled = true\n");
    /* --help-config lists the rules and the parameters */
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    assert_non_null(f);
    fv_config_print_schema(f);
    fclose(f);
    const char *want[] = {"one of fedavg|median|trimmed_mean|krum|multikrum|clip|centered_clip", "trim_fraction", "krum_f",
                          "multikrum_m", "clip_norm"};
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
        if (!strstr(buf, want[i])) fail_msg("--help-config lacks '%s'", want[i]);
    free(buf);
}

/* Issue 17's hardening: a file that sets no key, text after a section header, values of keys the
 * run does not use, and text that is not UTF-8 are all errors naming the file, line or key. */
static void test_empty_and_header_junk(void **state) {
    (void)state;
    expect_error("", "exp.ini: sets no key", "empty");
    expect_error("; only a comment\n# and another\n\n   \n", "exp.ini: sets no key", NULL);
    expect_error("[fl]\n; a section and nothing in it\n", "exp.ini: sets no key", NULL);
    expect_error("[fl] junk\nrounds = 5\n", "exp.ini:1: text after the section header [fl]: 'junk'", NULL);
    expect_error("[fl]\nrounds = 5\n[training]x = 1\nlr = 0.1\n", "exp.ini:3: text after the section header [training]",
                 "'x = 1'");
    expect_error("\xef\xbb\xbf[fl]]\nrounds = 5\n", "exp.ini:1", "']'"); /* after a BOM too */
    fv_config c;
    fv_err e = {{0}};
    if (parse(&c, "[fl] ; the federation\nrounds = 5\n[output]\t\r\nname = x\r\n", &e) != 0) fail_msg("%s", e.msg);
    assert_int_equal(c.rounds, 5);
    /* a file on disk says its path */
    char path[] = "/tmp/fv_test_config_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "; nothing\n", 10), 10);
    close(fd);
    fv_config_defaults(&c);
    assert_int_equal(fv_config_load(&c, path, &e), -1);
    assert_non_null(strstr(e.msg, path));
    assert_non_null(strstr(e.msg, "sets no key"));
    unlink(path);
}

static void test_unused_keys_checked(void **state) {
    (void)state;
    /* [attack] with kind = none: its values are still checked */
    expect_check_error("[attack]\nrounds = 3,x\n", "exp.ini:2: [attack] rounds", "not a list of rounds");
    expect_check_error("[fl]\nrounds = 5\n[attack]\nrounds = 9\n", "[attack] rounds", "out of range [1, 5]");
    expect_check_error("[fl]\nclients = 4\n[attack]\nclient = 4\n", "exp.ini:4: [attack] client", "ids 0..3");
    expect_check_error("[data]\ndataset = synthetic\nsynthetic_classes = 3\n[attack]\ntarget = 3\n", "[attack] target",
                       "3 classes");
    /* synthetic_shape with another data set */
    expect_check_error("[data]\ndataset = mnist\nsynthetic_shape = 3x32\n", "exp.ini:3: [data] synthetic_shape",
                       "CxHxW");
    expect_check_ok("[fl]\nrounds = 5\n[attack]\nrounds = 2,5\nclient = 3\n");
    /* the resolved text reads back exactly, keys of sections it leaves out included */
    fv_config a, b;
    fv_err e = {{0}};
    assert_int_equal(parse(&a, "[fl]\nrounds = 5\nkrum_f = 2\n[attack]\nrounds = 2,5\nclient = 3\n[dp]\nclip = 0.5\n", &e), 0);
    char *text = fv_config_write(&a);
    fv_config_defaults(&b);
    if (fv_config_parse(&b, "resolved", text, strlen(text), &e) != 0) fail_msg("%s\n%s", e.msg, text);
    assert_true(same_values(&a, &b));
    assert_string_equal(b.attack_rounds, "2,5");
    assert_true(b.dp_clip == 0.5 && b.krum_f == 2 && b.attack_kind == FV_ATTACK_NONE && !b.dp);
    assert_null(strstr(text, "kind = ")); /* the defaults of a left-out section stay out */
    assert_null(strstr(text, "noise_multiplier"));
    free(text);
    /* and a config at its defaults resolves as before: no [attack], no [dp], no robust keys */
    fv_config_defaults(&a);
    text = fv_config_write(&a);
    assert_null(strstr(text, "[attack]"));
    assert_null(strstr(text, "[dp]"));
    assert_null(strstr(text, "krum_f"));
    free(text);
}

static void test_text_utf8(void **state) {
    (void)state;
    fv_err e = {{0}};
    assert_int_equal(fv_config_text_check("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x99\x82 plain", &e), 0);
    assert_int_equal(fv_config_text_check("", &e), 0);
    const struct {
        const char *s, *msg;
    } bad[] = {
        {"a\xff", "invalid UTF-8 at byte 1"},       {"ab\xc0\xaf", "invalid UTF-8 at byte 2"}, /* overlong '/' */
        {"\xe0\x80\xaf", "invalid UTF-8 at byte 0"}, {"\xed\xa0\x80", "invalid UTF-8 at byte 0"}, /* surrogate */
        {"\xf4\x90\x80\x80", "invalid UTF-8"},     {"x\xe2\x82", "invalid UTF-8 at byte 1"},  /* cut short */
        {"\x80", "invalid UTF-8 at byte 0"},         {"a\tb", "control character 0x09 at byte 1"},
        {"\x7f", "control character 0x7f"},          {"a\xc2\x85", "control character U+0085 at byte 1"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        if (fv_config_text_check(bad[i].s, &e) == 0) fail_msg("accepted bad text #%zu", i);
        if (!strstr(e.msg, bad[i].msg)) fail_msg("#%zu: '%s' lacks '%s'", i, e.msg, bad[i].msg);
    }
    /* in a config file: the key and line are named */
    expect_error("[output]\nname = run\xff\n", "exp.ini:2: [output] name", "invalid UTF-8 at byte 3");
    expect_error("[data]\ndir = \xc2\x9b[31m\n", "exp.ini:2: [data] dir", "control character U+009B");
    fv_config c;
    assert_int_equal(parse(&c, "[output]\nname = caf\xc3\xa9\n", &e), 0);
    assert_int_equal(fv_config_check(&c, &e), 0);
    /* a name set outside the parser (derived from the file's name) is checked too */
    snprintf(c.name, sizeof c.name, "exp\xfe");
    assert_int_equal(fv_config_check(&c, &e), -1);
    assert_non_null(strstr(e.msg, "[output] name: invalid UTF-8 at byte 3"));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults_valid),      cmocka_unit_test(test_parse_good),
        cmocka_unit_test(test_errors_name_line_and_key), cmocka_unit_test(test_set_override),
        cmocka_unit_test(test_check_cross_keys),
        cmocka_unit_test(test_key_error_and_no_attack_rules),    cmocka_unit_test(test_resolved_roundtrip),
        cmocka_unit_test(test_load_file),           cmocka_unit_test(test_choices_typed),
        cmocka_unit_test(test_aggregator_keys),     cmocka_unit_test(test_empty_and_header_junk),
        cmocka_unit_test(test_unused_keys_checked), cmocka_unit_test(test_text_utf8),
        cmocka_unit_test(test_long_string_roundtrip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
