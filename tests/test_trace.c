/* test_trace.c: heterogeneous clients without processes (docs/heterogeneity.md):
 *  - the trace parser (shared/fl/trace.h): a valid trace with comments, blank lines and CRLF reads
 *    back its speeds and intervals; every bad input is refused with the file, the line and the
 *    field named (missing header, garbage, a negative speed, off before on, overlapping intervals,
 *    a client without a record, out of order or out of range, two speeds for one client, a wrong
 *    field count, an empty file); the availability queries on a hand-made trace;
 *  - the generator: the same seed gives the same text, another seed another; a client's records do
 *    not depend on the number of clients; 2,000 clients, sigma 0.5, median 100: the mean of log
 *    speed is ln 100 within 0.05 (its standard error is 0.011) and its standard deviation 0.5 within
 *    0.04; with mean on 100 s and off 50 s over 20,000 s the available share is 2/3 within 0.02 and
 *    the mean on-interval (those ending before the horizon) 100 s within 5%;
 *  - a hand-computed synchronous round (shared/fl/vclock.h): which clients are sampled (the
 *    available ones), which straggle past the deadline or go offline, when each leaves, when the
 *    round ends; the next round starting at a time when one client is away; a round waiting for
 *    the first available client; the trace's end is an error naming the trace;
 *  - a hand-computed FedBuff schedule: events, times, versions and a lost update at the deadline;
 *  - FedBuff's arithmetic (shared/fl/fedbuff.h): the staleness weights and one hand-computed server
 *    step (exact in binary floating point, compared bitwise);
 *  - the config keys: refusals naming the key (deadline, comm_seconds and async without a trace, a
 *    bad mode, async with a robust aggregator, a server optimizer, kept optimizer state or an
 *    attack, a trace with DP, out-of-range values), and the resolved
 *    text: without the keys it holds none of them; with them it reads back to the same config. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fl/config.h"
#include "fl/fedbuff.h"
#include "fl/trace.h"
#include "fl/vclock.h"
#include "fl_harness.h"

static const char *HDR = "client,speed,on,off\n";

/* Parse text as "t.csv" for n clients: must fail with a message holding n1 and n2 (n2 may be NULL). */
static void bad(const char *body, int n, const char *n1, const char *n2) {
    char text[1024];
    snprintf(text, sizeof text, "%s", body);
    fv_trace t;
    fv_err e = {{0}};
    int rc = fv_trace_parse(&t, "t.csv", text, strlen(text), n, &e);
    if (rc == 0 || !strstr(e.msg, n1) || (n2 && !strstr(e.msg, n2))) {
        print_error("input:\n%s\nmessage: %s\nwanted: %s / %s\n", body, e.msg, n1, n2 ? n2 : "");
        if (rc == 0) fv_trace_free(&t);
        fail();
    }
}

static void test_parse(void **state) {
    (void)state;
    const char *good = "# a comment\r\nclient,speed,on,off\r\n\r\n0,2.5,0,10\r\n0,2.5,12,inf\r\n# more\n1,4,5,6\n";
    fv_trace t;
    fv_err e = {{0}};
    assert_int_equal(fv_trace_parse(&t, "t.csv", good, strlen(good), 2, &e), 0);
    assert_int_equal(t.n, 2);
    assert_int_equal(t.niv, 3);
    assert_true(t.speed[0] == 2.5 && t.speed[1] == 4);
    /* availability: client 0 on [0, 10) and [12, inf); client 1 on [5, 6) */
    assert_true(fv_trace_avail_until(&t, 0, 0) == 10);
    assert_true(fv_trace_avail_until(&t, 0, 9.5) == 10);
    assert_true(fv_trace_avail_until(&t, 0, 10) == -1); /* [on, off): off itself is away */
    assert_true(fv_trace_avail_until(&t, 0, 11) == -1);
    assert_true(isinf(fv_trace_avail_until(&t, 0, 1e9)));
    assert_true(fv_trace_next_on(&t, 0, 10.5) == 12);
    assert_true(fv_trace_next_on(&t, 0, 3) == 3);
    assert_true(fv_trace_next_on(&t, 1, 0) == 5);
    assert_true(isinf(fv_trace_next_on(&t, 1, 6)));
    fv_trace_free(&t);

    bad("0,1,0,inf\n", 1, "t.csv:1", "expected the header");
    bad("", 1, "t.csv", "no header");
    bad("# only a comment\nclient,speed,on,off\n", 1, "t.csv", "client 0 has no record");
    char b[512];
    snprintf(b, sizeof b, "%s0,abc,0,inf\n", HDR);
    bad(b, 1, "t.csv:2: speed", "'abc'");
    snprintf(b, sizeof b, "%s0,-3,0,inf\n", HDR);
    bad(b, 1, "t.csv:2: speed", "not > 0");
    snprintf(b, sizeof b, "%s0,0,0,inf\n", HDR);
    bad(b, 1, "t.csv:2: speed", "not > 0");
    snprintf(b, sizeof b, "%s0,1,-1,inf\n", HDR);
    bad(b, 1, "t.csv:2: on", "negative");
    snprintf(b, sizeof b, "%s0,1,5,5\n", HDR);
    bad(b, 1, "t.csv:2: off", "not after on");
    snprintf(b, sizeof b, "%s0,1,0,nan\n", HDR);
    bad(b, 1, "t.csv:2: off", "'nan'");
    snprintf(b, sizeof b, "%s0,1,0,10\n0,1,5,20\n", HDR);
    bad(b, 1, "t.csv:3: on", "overlaps");
    snprintf(b, sizeof b, "%s0,1,0,10\n0,1,10,20\n", HDR);
    bad(b, 1, "t.csv:3: on", "touches");
    snprintf(b, sizeof b, "%s0,1,0,10\n0,2,20,30\n", HDR);
    bad(b, 1, "t.csv:3: speed", "one speed per client");
    snprintf(b, sizeof b, "%s0,1,0,inf\n1,1,0,inf\n", HDR);
    bad(b, 3, "t.csv", "client 2 has no record");
    snprintf(b, sizeof b, "%s0,1,0,inf\n2,1,0,inf\n", HDR);
    bad(b, 3, "t.csv:3: client", "client 1 has no record");
    snprintf(b, sizeof b, "%s1,1,0,inf\n", HDR);
    bad(b, 2, "t.csv:2: client", "client 0 has no record");
    snprintf(b, sizeof b, "%s0,1,0,inf\n5,1,0,inf\n", HDR);
    bad(b, 3, "t.csv:3: client", "there are 3 clients");
    snprintf(b, sizeof b, "%s0.5,1,0,inf\n", HDR);
    bad(b, 1, "t.csv:2: client", "not a client id");
    snprintf(b, sizeof b, "%s0,1,0\n", HDR);
    bad(b, 1, "t.csv:2", "3 fields, expected 4");
    snprintf(b, sizeof b, "%s0,1,0,inf,7\n", HDR);
    bad(b, 1, "t.csv:2", "more than 4 fields");
    snprintf(b, sizeof b, "%s0,,0,inf\n", HDR);
    bad(b, 1, "t.csv:2: speed", "empty");
    bad("client,speed,on,off\n0,1,0,inf\n\x01", 1, "t.csv:3", "1 field, expected 4");
    /* a file that does not exist names its path */
    assert_int_equal(fv_trace_load(&t, "/nonexistent/t.csv", 1, &e), -1);
    assert_non_null(strstr(e.msg, "/nonexistent/t.csv"));
}

static void test_generate(void **state) {
    (void)state;
    fv_trace_gen g = {2000, 100, 0.5, 100, 50, 20000, 11};
    char *a = fv_trace_generate(&g), *b = fv_trace_generate(&g);
    assert_string_equal(a, b);
    free(b);
    g.seed = 12;
    b = fv_trace_generate(&g);
    assert_string_not_equal(a, b);
    free(b);
    g.seed = 11;
    fv_trace t;
    fv_err e = {{0}};
    assert_int_equal(fv_trace_parse(&t, "gen", a, strlen(a), 2000, &e), 0);
    double s1 = 0, s2 = 0, on = 0, len = 0;
    int nlen = 0;
    for (int i = 0; i < t.n; i++) {
        double l = log(t.speed[i]);
        s1 += l;
        s2 += l * l;
        for (int k = t.first[i]; k < t.first[i + 1]; k++) {
            const double hi = t.iv[k].off < g.horizon ? t.iv[k].off : g.horizon;
            on += hi - t.iv[k].on;
            if (t.iv[k].off < g.horizon) {
                len += t.iv[k].off - t.iv[k].on;
                nlen++;
            }
        }
    }
    const double mean = s1 / t.n, sd = sqrt(s2 / t.n - mean * mean), share = on / (t.n * g.horizon);
    print_message("log speed mean %.4f (ln 100 = %.4f) sd %.4f; available %.4f; mean on %.2f s over %d\n", mean,
                  log(100), sd, share, len / nlen, nlen);
    assert_true(fabs(mean - log(100)) < 0.05);
    assert_true(fabs(sd - 0.5) < 0.04);
    assert_true(fabs(share - 2.0 / 3) < 0.02);
    assert_true(fabs(len / nlen - 100) < 5);
    fv_trace_free(&t);
    /* a client's records do not depend on the number of clients: 5 clients are a prefix of 2,000 */
    g.clients = 5;
    b = fv_trace_generate(&g);
    assert_int_equal(strncmp(a, b, strlen(b)), 0);
    free(b);
    free(a);
    /* mean_off = 0: always available, one record each; sigma 0: every speed the median */
    fv_trace_gen c = {3, 7, 0, 10, 0, 100, 1};
    a = fv_trace_generate(&c);
    assert_string_equal(a, "client,speed,on,off\n0,7,0,inf\n1,7,0,inf\n2,7,0,inf\n");
    free(a);
}

/* A config of n clients with the hetero keys given as INI lines (checked). */
static void config(fv_config *c, int n, const char *fl) {
    char text[1024];
    snprintf(text, sizeof text, "[fl]\nclients = %d\ntrace = t.csv\n%s", n, fl);
    fv_config_defaults(c);
    fv_err e = {{0}};
    if (fv_config_parse(c, "t.ini", text, strlen(text), &e) != 0 || fv_config_check(c, &e) != 0) {
        print_error("%s\n", e.msg);
        fail();
    }
}

static void test_sync_round(void **state) {
    (void)state;
    /* 100 images each, 1 epoch, comm 2 s, deadline 25 s:
     *   0: speed 10, always on      d = 12   done at 12
     *   1: speed 5,  always on      d = 22   done at 22
     *   2: speed 20, on [0, 6)      d = 7    offline at 6, back at 40
     *   3: speed 1,  always on      d = 102  straggler, leaves at 25
     *   4: speed 10, on [30, inf)   not available at 0
     *   5: speed 4, on [0, 30)      d = 27   min(30, 27) = 27 > 25: straggler (not offline) */
    const char *text = "client,speed,on,off\n0,10,0,inf\n1,5,0,inf\n2,20,0,6\n2,20,40,inf\n3,1,0,inf\n"
                       "4,10,30,inf\n5,4,0,30\n";
    fv_trace t;
    fv_err e = {{0}};
    assert_int_equal(fv_trace_parse(&t, "t.csv", text, strlen(text), 6, &e), 0);
    fv_config c;
    config(&c, 6, "fraction = 1\ndeadline = 25\ncomm_seconds = 2\n");
    const int n[6] = {100, 100, 100, 100, 100, 100};
    fv_vc_round p;
    fv_vc_round_init(&p, fv_config_clients_per_round(&c));
    assert_int_equal(fv_vclock_plan(&c, &t, n, 1, 0, &p, &e), 0);
    assert_int_equal(p.n, 5);
    const int want_c[5] = {0, 1, 2, 3, 5};
    const fv_vc_fate want_f[5] = {FV_VC_DONE, FV_VC_DONE, FV_VC_OFFLINE, FV_VC_STRAGGLER, FV_VC_STRAGGLER};
    const double want_l[5] = {12, 22, 6, 25, 25};
    for (int s = 0; s < 5; s++) {
        assert_int_equal(p.client[s], want_c[s]);
        assert_int_equal(p.fate[s], want_f[s]);
        assert_true(p.leave[s] == want_l[s]);
    }
    assert_true(p.start == 0 && p.end == 25);
    /* round 2 at 25: client 2 is away (back at 40), client 4 not yet on (30) */
    assert_int_equal(fv_vclock_plan(&c, &t, n, 2, 25, &p, &e), 0);
    assert_int_equal(p.n, 4);
    assert_true(p.client[0] == 0 && p.client[1] == 1 && p.client[2] == 3 && p.client[3] == 5);
    assert_int_equal(p.fate[3], FV_VC_OFFLINE); /* 5 leaves at 30 < 25 + 27 and 30 <= 25 + 25 */
    assert_true(p.leave[3] == 30);
    assert_true(p.end == 50); /* client 3 straggles until 25 + 25 */
    /* without a deadline the round waits for the slowest: client 3 at 102 */
    fv_config c2;
    config(&c2, 6, "fraction = 1\ncomm_seconds = 2\n");
    assert_int_equal(fv_vclock_plan(&c2, &t, n, 1, 0, &p, &e), 0);
    assert_true(p.end == 102 && p.fate[3] == FV_VC_DONE && p.leave[3] == 102);
    assert_true(p.fate[2] == FV_VC_OFFLINE && p.leave[2] == 6 && p.fate[4] == FV_VC_DONE && p.leave[4] == 27);
    /* fraction 0.5: 3 of the 5 available, drawn from the seed (the same again) */
    fv_config c3;
    config(&c3, 6, "fraction = 0.5\n");
    assert_int_equal(fv_vclock_plan(&c3, &t, n, 1, 0, &p, &e), 0);
    int first[3];
    memcpy(first, p.client, sizeof first);
    assert_int_equal(p.n, 3);
    assert_true(first[0] < first[1] && first[1] < first[2] && first[0] != 4 && first[1] != 4 && first[2] != 4);
    assert_int_equal(fv_vclock_plan(&c3, &t, n, 1, 0, &p, &e), 0);
    assert_memory_equal(first, p.client, sizeof first);
    fv_vc_round_free(&p);
    fv_trace_free(&t);

    /* one client, away until 50: the round waits for it; after its interval the trace ends */
    const char *late = "client,speed,on,off\n0,10,50,100\n";
    assert_int_equal(fv_trace_parse(&t, "late.csv", late, strlen(late), 1, &e), 0);
    fv_config c4;
    config(&c4, 1, "");
    fv_vc_round_init(&p, 1);
    const int n1[1] = {100};
    assert_int_equal(fv_vclock_plan(&c4, &t, n1, 1, 0, &p, &e), 0);
    assert_true(p.n == 1 && p.start == 50 && p.end == 60 && p.fate[0] == FV_VC_DONE);
    assert_int_equal(fv_vclock_plan(&c4, &t, n1, 7, 100, &p, &e), -1);
    assert_non_null(strstr(e.msg, "round 7"));
    assert_non_null(strstr(e.msg, "t.csv ends")); /* the config's trace path */
    fv_vc_round_free(&p);
    fv_trace_free(&t);
}

/* The next event must be (kind, client, time, version). */
static void expect(fv_fb_sched *s, fv_fb_kind kind, int client, double time, long version) {
    fv_fb_event ev;
    fv_err e = {{0}};
    assert_int_equal(fv_fb_sched_next(s, &ev, &e), 0);
    if (ev.kind != kind || ev.client != client || ev.time != time || ev.version != version) {
        print_error("event kind %d client %d time %g version %ld; wanted %d %d %g %ld\n", ev.kind, ev.client, ev.time,
                    ev.version, kind, client, time, version);
        fail();
    }
}

static void test_fedbuff_schedule(void **state) {
    (void)state;
    /* 3 clients always on, 10 images, durations 1, 2 and 10 s; concurrency 3, deadline 5 */
    const char *text = "client,speed,on,off\n0,10,0,inf\n1,5,0,inf\n2,1,0,inf\n";
    fv_trace t;
    fv_err e = {{0}};
    assert_int_equal(fv_trace_parse(&t, "t.csv", text, strlen(text), 3, &e), 0);
    fv_config c;
    config(&c, 3, "mode = async\nconcurrency = 3\nbuffer_size = 2\ndeadline = 5\n");
    const int n[3] = {10, 10, 10};
    fv_fb_sched *s = fv_fb_sched_new(&c, &t, n);
    int seen = 0;
    for (int i = 0; i < 3; i++) { /* all three start at 0, in the seed's order */
        fv_fb_event ev;
        assert_int_equal(fv_fb_sched_next(s, &ev, &e), 0);
        assert_true(ev.kind == FV_FB_DISPATCH && ev.time == 0 && ev.version == 0);
        assert_int_equal(ev.fate, ev.client == 2 ? FV_VC_STRAGGLER : FV_VC_DONE);
        seen |= 1 << ev.client;
    }
    assert_int_equal(seen, 7);
    expect(s, FV_FB_ARRIVE, 0, 1, 0);
    expect(s, FV_FB_DISPATCH, 0, 1, 0); /* the only idle client: the one that just arrived */
    expect(s, FV_FB_ARRIVE, 1, 2, 0);   /* tie at 2 with client 0: the earlier dispatch first */
    fv_fb_sched_step(s);                /* 2 buffered: the server steps to version 1 */
    expect(s, FV_FB_DISPATCH, 1, 2, 1);
    expect(s, FV_FB_ARRIVE, 0, 2, 0); /* staleness 1 */
    expect(s, FV_FB_DISPATCH, 0, 2, 1);
    expect(s, FV_FB_ARRIVE, 0, 3, 1);
    fv_fb_sched_step(s);
    expect(s, FV_FB_DISPATCH, 0, 3, 2);
    expect(s, FV_FB_ARRIVE, 1, 4, 1); /* tie at 4 with client 0: client 1 was dispatched earlier */
    expect(s, FV_FB_DISPATCH, 1, 4, 2);
    expect(s, FV_FB_ARRIVE, 0, 4, 2);
    expect(s, FV_FB_DISPATCH, 0, 4, 2);
    expect(s, FV_FB_LOST, 2, 5, 0);     /* the straggler at its deadline 0 + 5, before client 0's arrival at 5 */
    expect(s, FV_FB_DISPATCH, 2, 5, 2); /* a free slot first: the only idle client starts again */
    expect(s, FV_FB_ARRIVE, 0, 5, 2);
    assert_true(fv_fb_sched_now(s) == 5 && fv_fb_sched_version(s) == 2);
    fv_fb_sched_free(&s);
    fv_trace_free(&t);
}

static void test_fedbuff_arithmetic(void **state) {
    (void)state;
    assert_true(fv_fedbuff_weight(FV_STALE_SQRT, 0) == 1);
    assert_true(fv_fedbuff_weight(FV_STALE_SQRT, 3) == 0.5);
    assert_true(fv_fedbuff_weight(FV_STALE_INVERSE, 3) == 0.25);
    assert_true(fv_fedbuff_weight(FV_STALE_CONSTANT, 7) == 1);
    assert_true(fabs(fv_fedbuff_weight(FV_STALE_SQRT, 1) - 1 / sqrt(2.0)) < 1e-15);
    /* two updates from x0 = (1, -2): d1 = (2, 4) fresh (w 1), d2 = (4, -8) 3 steps stale (w 0.5);
     * sum = (4, 0); lr 0.5, K 2: x = x + 0.5 x sum / 2 = (2, -2) */
    const float base[2] = {1, -2}, up1[2] = {3, 2}, up2[2] = {5, -10};
    float d[2], x[2] = {1, -2};
    double sum[2] = {0, 0};
    fv_fedbuff_delta(d, up1, base, 2);
    assert_true(d[0] == 2 && d[1] == 4);
    fv_fedbuff_add(sum, d, fv_fedbuff_weight(FV_STALE_SQRT, 0), 2);
    fv_fedbuff_delta(d, up2, base, 2);
    fv_fedbuff_add(sum, d, fv_fedbuff_weight(FV_STALE_SQRT, 3), 2);
    assert_true(sum[0] == 4 && sum[1] == 0);
    fv_fedbuff_apply(x, sum, 0.5, 2, 2);
    assert_true(x[0] == 2 && x[1] == -2);
}

static void test_config_keys(void **state) {
    (void)state;
    const char *B = "[fl]\nclients = 10\n";
    fh_expect_config_error(B, "deadline = 5", "[fl] deadline", "needs [fl] trace");
    fh_expect_config_error(B, "comm_seconds = 1", "[fl] comm_seconds", "needs [fl] trace");
    fh_expect_config_error(B, "mode = async", "[fl] mode", "needs [fl] trace");
    fh_expect_config_error(B, "mode = asink", "[fl] mode", "sync|async");
    fh_expect_config_error(B, "deadline = -1", "[fl] deadline", "out of range");
    fh_expect_config_error(B, "staleness = quadratic", "[fl] staleness", "sqrt|inverse|constant");
    fh_expect_config_error(B, "buffer_size = 0", "[fl] buffer_size", "out of range");
    const char *T = "[fl]\nclients = 10\ntrace = t.csv\n";
    fh_expect_config_error(T, "mode = async\naggregator = median", "[fl] aggregator", "mode = async");
    fh_expect_config_error(T, "mode = async\nserver_opt = fedadam", "[fl] server_opt", "mode = async");
    fh_expect_config_error(T, "mode = async\n[training]\nopt_state = keep\nmomentum = 0.9", "[training] opt_state",
                           "mode = async");
    fh_expect_config_error(T, "mode = async\n[attack]\nkind = mia", "[attack] kind", "mode = async");
    fh_expect_config_error(T, "[dp]\nenabled = true", "[fl] trace", "[dp]");
    /* the resolved text: no hetero key by default; set, they read back to the same values */
    fv_config c, d;
    fv_config_defaults(&c);
    char *w = fv_config_write(&c);
    assert_null(strstr(w, "trace"));
    assert_null(strstr(w, "deadline"));
    assert_null(strstr(w, "\nmode = sync"));
    assert_null(strstr(w, "buffer_size"));
    free(w);
    config(&c, 10, "mode = async\nbuffer_size = 3\nconcurrency = 4\nstaleness = inverse\nserver_lr = 0.7\n"
                   "deadline = 12.5\ncomm_seconds = 0.25\n");
    w = fv_config_write(&c);
    fv_config_defaults(&d);
    fv_err e = {{0}};
    assert_int_equal(fv_config_parse(&d, "w.ini", w, strlen(w), &e), 0);
    assert_string_equal(d.trace, "t.csv");
    assert_true(d.mode == FV_MODE_ASYNC && d.buffer_size == 3 && d.concurrency == 4 &&
                d.staleness == FV_STALE_INVERSE && d.server_lr == 0.7 && d.deadline == 12.5 && d.comm_seconds == 0.25);
    free(w);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse),           cmocka_unit_test(test_generate),
        cmocka_unit_test(test_sync_round),      cmocka_unit_test(test_fedbuff_schedule),
        cmocka_unit_test(test_fedbuff_arithmetic), cmocka_unit_test(test_config_keys),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
