/*
 * test_scheduler.c - the open-loop schedule: intended times, device phases,
 * per-device counts, and that lateness never shifts the schedule (it shows
 * up as send lag instead).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "scheduler.h"

#include <stdlib.h>

static void test_intended_times(void **state)
{
    (void)state;
    il_sched s;
    /* 4 devices x 10 msg/s for 1 s: one message every 25 ms. */
    il_sched_init(&s, 4, 10, 1000000, 1000000000);
    assert_int_equal(s.per_device, 10);
    assert_int_equal(s.total, 40);
    uint32_t dev = 0;
    uint64_t seq = 0;
    int64_t t = 0;
    for (uint64_t g = 0; g < 40; g++) {
        int64_t due = 1000000000 + (int64_t)g * 25000;
        assert_int_equal(il_sched_next_time(&s), due);
        assert_int_equal(il_sched_due(&s, due - 1, &dev, &seq, &t), 0);
        assert_int_equal(il_sched_due(&s, due, &dev, &seq, &t), 1);
        assert_int_equal(dev, g % 4);
        assert_int_equal(seq, g / 4);
        assert_int_equal(t, due);
        /* Device d's own schedule: start + seq * interval + d * interval / N. */
        assert_int_equal(t, 1000000000 + (int64_t)seq * 100000 + dev * 25000);
    }
    assert_true(il_sched_done(&s));
    assert_int_equal(il_sched_next_time(&s), INT64_MAX);
    assert_int_equal(il_sched_due(&s, INT64_MAX - 1, &dev, &seq, &t), 0);
}

static void test_late_sender_keeps_schedule(void **state)
{
    (void)state;
    il_sched s;
    il_sched_init(&s, 10, 1000, 1000000, 0); /* 10 k msg/s, 100 us apart */
    uint32_t dev = 0;
    uint64_t seq = 0;
    int64_t t = 0;
    /* The sender stalls for 5 ms: everything due is still sent, each with its
     * original intended time, so the lag grows linearly back in time. */
    int64_t now = 5000;
    int n = 0;
    int64_t max_lag = 0, min_lag = INT64_MAX;
    while (il_sched_due(&s, now, &dev, &seq, &t)) {
        assert_int_equal(t, (int64_t)n * 100);
        int64_t lag = now - t;
        if (lag > max_lag)
            max_lag = lag;
        if (lag < min_lag)
            min_lag = lag;
        n++;
    }
    assert_int_equal(n, 51); /* 0 .. 5000 us inclusive */
    assert_int_equal(max_lag, 5000);
    assert_int_equal(min_lag, 0);
    /* After catching up, the next message is on the original grid. */
    assert_int_equal(il_sched_next_time(&s), 5100);
}

static void test_fractional_and_large_rates(void **state)
{
    (void)state;
    il_sched s;
    /* 0.5 msg/s for 10 s: 5 messages per device, 2 s apart. */
    il_sched_init(&s, 3, 0.5, 10000000, 0);
    assert_int_equal(s.per_device, 5);
    assert_int_equal(il_sched_time(&s, 3), 2000000); /* device 0, seq 1 */
    /* 3 msg/s for 1 s: 333333.33 us interval, no drift over many messages. */
    il_sched_init(&s, 1, 3, 1000000000, 0); /* 1000 s */
    assert_int_equal(s.per_device, 3000);
    assert_int_equal(il_sched_time(&s, 2999), 999666666);
    /* 1 M devices x 1 msg/s for 1 h fits and stays exact at the end. */
    il_sched_init(&s, 1000000, 1, 3600000000LL, 1700000000000000LL);
    assert_int_equal(s.total, 3600000000ULL);
    assert_int_equal(il_sched_time(&s, s.total - 1), 1700000000000000LL + 3599999999LL);
    /* A duration shorter than one interval still sends one message each. */
    il_sched_init(&s, 2, 1, 100000, 0);
    assert_int_equal(s.per_device, 1);
    assert_int_equal(s.total, 2);
}

static void test_devices_spread_evenly(void **state)
{
    (void)state;
    il_sched s;
    il_sched_init(&s, 100, 100, 1000000, 0); /* 10 k msg/s */
    /* Within any 10 ms window each device sends exactly once. */
    int seen[100] = {0};
    uint32_t dev = 0;
    uint64_t seq = 0;
    int64_t t = 0;
    while (il_sched_due(&s, 9999, &dev, &seq, &t)) {
        assert_true(dev < 100);
        seen[dev]++;
    }
    for (int d = 0; d < 100; d++)
        assert_int_equal(seen[d], 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_intended_times),
        cmocka_unit_test(test_late_sender_keeps_schedule),
        cmocka_unit_test(test_fractional_and_large_rates),
        cmocka_unit_test(test_devices_spread_evenly),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
