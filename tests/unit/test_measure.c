/*
 * test_measure.c - the receiving end's per-message work: malformed input is
 * counted and never fatal, messages from the future are counted, duplicates
 * do not enter the latency distribution, end markers close the books, hop
 * stamps split the latency, and intervals merge exactly into the total.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "envelope.h"
#include "measure.h"

#include <stdlib.h>
#include <string.h>

static int enc(il_encoding e, const il_env *env, uint8_t *out, size_t cap)
{
    int n = il_env_encode(e, env, "{\"x\":1}", 7, out, cap);
    assert_true(n > 0);
    return n;
}

static void test_stream_with_loss_dup_and_fin(void **state)
{
    (void)state;
    il_meas *m = il_meas_new();
    uint8_t buf[512];
    assert_non_null(m);
    /* Device 0 of publisher 9 sends seq 0..9; 3 is lost, 5 arrives twice. */
    for (uint64_t s = 0; s < 10; s++) {
        if (s == 3)
            continue;
        il_env e = {.pub = 9, .dev = 0, .seq = s, .t_intended = 1000, .t_sent = 1010};
        int n = enc(s & 1 ? IL_ENC_BINARY : IL_ENC_JSON, &e, buf, sizeof buf);
        il_meas_message(m, buf, (size_t)n, 1100);
        if (s == 5)
            il_meas_message(m, buf, (size_t)n, 1200);
    }
    assert_false(il_meas_all_ended(m));
    il_env fin = {.pub = 9, .dev = 0, .seq = 12, .flags = IL_ENV_FIN, .devices = 1};
    int n = enc(IL_ENC_JSON, &fin, buf, sizeof buf);
    il_meas_message(m, buf, (size_t)n, 1300);
    il_meas_message(m, buf, (size_t)n, 1301); /* a repeated marker */
    assert_true(il_meas_all_ended(m));
    assert_int_equal(m->all_ended_us, 1300);
    il_meas_roll(m);
    const il_seq_totals *t = &m->seq.t;
    assert_int_equal(t->received, 10);
    assert_int_equal(t->received_unique, 9);
    assert_int_equal(t->duplicates, 1);
    assert_int_equal(t->lost, 3); /* seq 3, and the tail 10, 11 */
    assert_int_equal(t->expected, 12);
    assert_int_equal(t->expected, t->received_unique + t->lost);
    /* The duplicate is not a second latency sample. */
    assert_int_equal(m->lat.total.total, 9);
    assert_int_equal(il_hist_percentile(&m->lat.total, 50), 100);
    assert_int_equal(il_hist_percentile(&m->svc.total, 50), 90);
    assert_int_equal(il_hist_percentile(&m->lag.total, 50), 10);
    il_meas_free(m);
}

static void test_malformed_is_counted(void **state)
{
    (void)state;
    il_meas *m = il_meas_new();
    const char *bad[] = {"", "{", "not json", "{\"iotlat\":{\"v\":2}}", "IL\x01",
                         "{\"iotlat\":{\"v\":1,\"pub\":1,\"dev\":1,\"seq\":-1,"
                         "\"t_intended\":1,\"t_sent\":1}}",
                         "{\"lastUpdated\":\"2024-02-30T00:00:00\"}"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        il_meas_message(m, bad[i], strlen(bad[i]), 5);
    /* Random bytes: counted, never a crash. */
    uint8_t junk[64];
    uint64_t x = 88172645463325252ULL;
    for (int r = 0; r < 10000; r++) {
        for (size_t i = 0; i < sizeof junk; i++) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            junk[i] = (uint8_t)x;
        }
        il_meas_message(m, junk, (size_t)(x % sizeof junk), 5);
    }
    assert_int_equal(m->malformed, 7 + 10000);
    assert_int_equal(m->seq.t.received, 0);
    assert_int_equal(m->lat.cur.total, 0);
    il_meas_free(m);
}

static void test_future_and_seed_messages(void **state)
{
    (void)state;
    il_meas *m = il_meas_new();
    uint8_t buf[256];
    /* Sent "after" it was received: clock skew, counted as negative. */
    il_env e = {.pub = 1, .dev = 0, .seq = 0, .t_intended = 5000, .t_sent = 5000};
    int n = enc(IL_ENC_BINARY, &e, buf, sizeof buf);
    il_meas_message(m, buf, (size_t)n, 4000);
    assert_int_equal(m->lat.cur.negative, 1);
    assert_int_equal(m->lat.cur.min_negative, -1000);
    assert_int_equal(m->seq.t.received_unique, 1);
    /* The old tool's format: latency only. */
    const char *seed = "{\"lastUpdated\":\"1970-01-01T00:00:01.000000Z\",\"v\":3}";
    il_meas_message(m, seed, strlen(seed), 1000250);
    assert_int_equal(m->untracked, 1);
    assert_int_equal(m->lat.cur.total, 1);
    assert_int_equal(m->lat.cur.max, 250);
    il_meas_free(m);
}

static void test_hops_and_intervals(void **state)
{
    (void)state;
    il_meas *m = il_meas_new();
    uint8_t a[256], b[256];
    for (int i = 0; i < 100; i++) {
        il_env e = {.pub = 2, .dev = (uint32_t)(i % 4), .seq = (uint64_t)(i / 4),
                    .t_intended = 10000, .t_sent = 10010};
        int n = enc(IL_ENC_JSON, &e, a, sizeof a);
        int k = il_env_add_hop(a, (size_t)n, 10050, NULL, 0, b, sizeof b);
        assert_true(k > 0);
        il_meas_message(m, b, (size_t)k, 10100 + i);
        if (i == 49)
            il_meas_roll(m); /* an interval boundary in the middle */
    }
    il_meas_roll(m);
    assert_int_equal(m->max_hops, 1);
    assert_int_equal(m->seg[0].total.total, 100);
    assert_int_equal(il_hist_percentile(&m->seg[0].total, 50), 40); /* 10050 - 10010 */
    assert_int_equal(m->seg[1].total.min, 50);                      /* 10100 - 10050 */
    assert_int_equal(m->seg[1].total.max, 149);
    assert_int_equal(m->lat.total.total, 100);
    assert_int_equal(m->lat.total.min, 100);
    assert_int_equal(m->lat.total.max, 199);
    assert_int_equal(m->lat.cur.total, 0);
    il_meas_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_stream_with_loss_dup_and_fin),
        cmocka_unit_test(test_malformed_is_counted),
        cmocka_unit_test(test_future_and_seed_messages),
        cmocka_unit_test(test_hops_and_intervals),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
