/*
 * test_rollup.c - the plotter's arithmetic: histograms of records merged
 * exactly per topic and across topics, totals that survive a subscriber
 * taking a topic over, the seconds of all topics closing only when no topic
 * can still add to them, and the cap on topics with series of their own.
 *
 * Every expectation is computed independently: reference histograms that
 * saw the same values directly, and hand-counted totals.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "histogram.h"
#include "rollup.h"

#define T0 1700000000000000LL /* a whole second, in us */
#define S 1000000LL

static uint64_t rng_next(uint64_t *s)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static il_hist *hist_new(void)
{
    il_hist *h = malloc(sizeof *h);
    assert_non_null(h);
    il_hist_init(h);
    return h;
}

static void assert_same(const il_hist *a, const il_hist *b)
{
    assert_int_equal(a->total, b->total);
    assert_true(a->min == b->min);
    assert_true(a->max == b->max);
    assert_int_equal(a->negative, b->negative);
    assert_memory_equal(a->counts, b->counts, sizeof a->counts);
}

static void feed(il_rollup *r, const char *topic, int64_t t_us, int64_t received,
                 int64_t lost, const il_hist *h)
{
    il_rollup_in in;
    memset(&in, 0, sizeof in);
    in.t_us = t_us;
    in.c.v[IL_C_RECEIVED] = in.c.v[IL_C_RECEIVED_UNIQUE] = received;
    in.c.v[IL_C_LOST] = lost;
    in.c.v[IL_C_EXPECTED] = received + lost;
    in.c.v[IL_C_DEVICES] = 10;
    for (int d = 0; d < IL_DISTS; d++)
        in.h[d] = h;
    long ti = il_rollup_topic_index(r, topic);
    assert_true(ti >= 0);
    il_rollup_feed(r, ti, &in);
}

/* What the sinks saw. */
typedef struct seen {
    int topic_docs, all_docs;
    int64_t all_t[64];
    uint32_t all_records[64];
    int64_t all_received[64];
    int64_t all_total[64];
    int64_t last_delta[IL_COUNTS];
} seen;

static void on_topic(void *ud, const il_rollup_topic *t, const il_rollup_in *in,
                     const il_counts *delta, int64_t window)
{
    (void)t, (void)in, (void)window;
    seen *s = ud;
    s->topic_docs++;
    memcpy(s->last_delta, delta->v, sizeof s->last_delta);
}

static void on_all(void *ud, const il_rollup_point *p, const il_hist *const h[IL_DISTS])
{
    seen *s = ud;
    assert_true(s->all_docs < 64);
    s->all_t[s->all_docs] = p->t_us;
    s->all_records[s->all_docs] = p->records;
    s->all_received[s->all_docs] = p->delta.v[IL_C_RECEIVED];
    s->all_total[s->all_docs] = p->total.v[IL_C_RECEIVED];
    /* The point's quantiles come from exactly the histograms handed over. */
    assert_int_equal(p->q[IL_DIST_LAT].count, h[IL_DIST_LAT]->total);
    s->all_docs++;
}

/* Three topics, six seconds each, random latencies: the run histograms of
 * each topic and of all topics equal histograms that saw the values
 * directly, and the quantiles are il_hist_percentile's. */
static void test_exact_merge(void **state)
{
    (void)state;
    il_rollup *r = il_rollup_new(-1, NULL);
    il_hist *ref_all = hist_new(), *ref[3], *sec = hist_new();
    uint64_t seed = 7;
    static const char *const names[3] = {"a", "b", "c"};
    for (int i = 0; i < 3; i++)
        ref[i] = hist_new();
    for (int s = 1; s <= 6; s++)
        for (int i = 0; i < 3; i++) {
            il_hist_init(sec);
            for (int k = 0; k < 500; k++) {
                int64_t v = (int64_t)(rng_next(&seed) % (1000u << (i * 4))) - 5;
                il_hist_record(sec, v);
                il_hist_record(ref[i], v);
                il_hist_record(ref_all, v);
            }
            feed(r, names[i], T0 + s * S + i * 1000, s * 500, 0, sec);
        }
    for (int i = 0; i < 3; i++)
        assert_same(r->topics[i]->run[IL_DIST_LAT], ref[i]);
    assert_same(r->run[IL_DIST_LAT], ref_all);
    assert_true(ref_all->negative > 0); /* negatives stay out of the quantiles */
    il_qsum q;
    il_qsum_of(&q, r->run[IL_DIST_LAT]);
    static const double pct[IL_NQ] = {50, 90, 99, 99.9, 100};
    for (int k = 0; k < IL_NQ; k++)
        assert_int_equal(q.q_us[k], il_hist_percentile(ref_all, pct[k]));
    assert_int_equal(q.count, ref_all->total);
    assert_int_equal(q.negative, ref_all->negative);
    il_counts tot;
    il_rollup_totals(r, &tot);
    assert_int_equal(tot.v[IL_C_RECEIVED], 3 * 3000);
    for (int i = 0; i < 3; i++)
        free(ref[i]);
    free(ref_all);
    free(sec);
    il_rollup_free(r);
}

/* A subscriber takes the topic over: its totals start from 0 again, and the
 * totals shown keep growing (lost is a gauge and may fall in between). */
static void test_takeover_keeps_totals(void **state)
{
    (void)state;
    seen s = {0};
    il_rollup_sink sink = {on_topic, NULL, &s};
    il_rollup *r = il_rollup_new(-1, &sink);
    feed(r, "t", T0 + 1 * S, 100, 5, NULL);
    feed(r, "t", T0 + 2 * S, 200, 3, NULL); /* a gap filled: lost falls */
    il_counts c;
    il_rollup_topic_totals(r->topics[0], &c);
    assert_int_equal(c.v[IL_C_RECEIVED], 200);
    assert_int_equal(c.v[IL_C_LOST], 3);
    feed(r, "t", T0 + 15 * S, 40, 1, NULL); /* another subscriber, from 0 */
    /* Its first record's change: what it counted, on the same devices. */
    assert_int_equal(s.last_delta[IL_C_RECEIVED], 40);
    assert_int_equal(s.last_delta[IL_C_DEVICES], 0);
    feed(r, "t", T0 + 16 * S, 90, 1, NULL);
    assert_int_equal(s.last_delta[IL_C_RECEIVED], 50);
    il_rollup_topic_totals(r->topics[0], &c);
    assert_int_equal(c.v[IL_C_RECEIVED], 290);
    assert_int_equal(c.v[IL_C_LOST], 4);
    assert_int_equal(c.v[IL_C_DEVICES], 10); /* the same devices, not 20 */
    assert_int_equal(r->topics[0]->segments, 2);
    il_rollup_free(r);
}

/* Two topics whose seconds end at different phases: a second of all topics
 * closes once both moved past it, with both records in it. */
static void test_seconds_close_when_all_moved_past(void **state)
{
    (void)state;
    seen s = {0};
    il_rollup_sink sink = {on_topic, on_all, &s};
    il_rollup *r = il_rollup_new(-1, &sink);
    il_hist *h = hist_new();
    il_hist_record(h, 100);
    for (int sec = 1; sec <= 5; sec++) {
        feed(r, "early", T0 + (sec - 1) * S + 200000, sec * 10, 0, h); /* ends .2 in */
        feed(r, "late", T0 + (sec - 1) * S + 700000, sec * 10, 0, h);  /* ends .7 in */
        il_rollup_settle(r, T0 + sec * S, 0);
    }
    assert_int_equal(s.topic_docs, 10);
    /* Seconds 1..4 are closed (both topics have a record ending in the
     * second after); 5 waits for the next records. */
    assert_int_equal(s.all_docs, 4);
    for (int i = 0; i < 4; i++) {
        assert_int_equal(s.all_t[i], T0 + (i + 1) * S);
        assert_int_equal(s.all_records[i], 2);
        assert_int_equal(s.all_received[i], 20);
        assert_int_equal(s.all_total[i], 20 * (i + 1));
    }
    assert_int_equal(r->last.t_us, T0 + 4 * S);
    assert_int_equal(r->last.q[IL_DIST_LAT].count, 2);
    assert_int_equal(r->nseries, 4);
    /* The end closes the rest. */
    il_rollup_settle(r, T0 + 6 * S, 1);
    assert_int_equal(s.all_docs, 5);
    assert_int_equal(r->late, 0);
    free(h);
    il_rollup_free(r);
}

/* A topic with unread records holds the seconds it has not reached; an
 * idle topic does not; a record for a closed second is late, yet counted in
 * the run. */
static void test_pending_idle_and_late(void **state)
{
    (void)state;
    seen s = {0};
    il_rollup_sink sink = {NULL, on_all, &s};
    il_rollup *r = il_rollup_new(-1, &sink);
    il_hist *h = hist_new();
    il_hist_record(h, 100);
    feed(r, "a", T0 + 1 * S, 1, 0, h);
    feed(r, "b", T0 + 1 * S, 1, 0, h);
    feed(r, "a", T0 + 2 * S, 2, 0, h);
    r->topics[1]->pending = 1; /* b has more to read */
    il_rollup_settle(r, T0 + 2 * S, 0);
    assert_int_equal(s.all_docs, 1); /* second 1 only */
    r->topics[1]->pending = 0;
    /* a goes on for 5 more seconds, b is silent: idle after 3 s behind. */
    for (int sec = 3; sec <= 7; sec++) {
        feed(r, "a", T0 + sec * S, sec, 0, h);
        il_rollup_settle(r, T0 + sec * S, 0);
    }
    assert_true(s.all_docs >= 4);
    int64_t closed = r->last.t_us;
    assert_true(closed >= T0 + 4 * S);
    /* b's record for second 2 arrives now: late, but in the run. */
    uint64_t before = r->run[IL_DIST_LAT]->total;
    feed(r, "b", T0 + 2 * S, 2, 0, h);
    assert_int_equal(r->late, 1);
    assert_int_equal(r->run[IL_DIST_LAT]->total, before + 1);
    /* Everything idle by the clock: all open seconds close. */
    il_rollup_settle(r, T0 + 30 * S, 0);
    assert_int_equal(r->last.t_us, T0 + 7 * S);
    free(h);
    il_rollup_free(r);
}

/* Records far ahead of the open seconds close the oldest ones: the ring is
 * bounded whatever the readers do. */
static void test_ring_bounded(void **state)
{
    (void)state;
    seen s = {0};
    il_rollup_sink sink = {NULL, on_all, &s};
    il_rollup *r = il_rollup_new(-1, &sink);
    feed(r, "a", T0 + 1 * S, 1, 0, NULL);
    feed(r, "b", T0 + 100 * S, 1, 0, NULL);
    assert_int_equal(s.all_docs, 1);
    assert_int_equal(s.all_t[0], T0 + 1 * S);
    feed(r, "a", T0 + 2 * S, 2, 0, NULL); /* behind a closed second: late */
    assert_int_equal(r->late, 1);
    il_rollup_free(r);
}

/* Only the first N topics get histograms of their own. */
static void test_topic_cap(void **state)
{
    (void)state;
    il_rollup *r = il_rollup_new(2, NULL);
    il_hist *h = hist_new();
    il_hist_record(h, 5);
    feed(r, "t1", T0 + S, 1, 0, h);
    feed(r, "t2", T0 + S, 1, 0, h);
    feed(r, "t3", T0 + S, 1, 0, h);
    assert_true(r->topics[0]->exported && r->topics[1]->exported);
    assert_false(r->topics[2]->exported);
    assert_null(r->topics[2]->run[IL_DIST_LAT]);
    assert_int_equal(r->run[IL_DIST_LAT]->total, 3); /* all still in the totals */
    assert_int_equal(r->topics[2]->last[IL_DIST_LAT].count, 1);
    /* A topic called like the series of all topics has none of its own. */
    il_rollup *all = il_rollup_new(-1, NULL);
    feed(all, "_all", T0 + S, 1, 0, h);
    assert_false(all->topics[0]->exported);
    il_rollup_free(all);
    il_rollup *none = il_rollup_new(0, NULL);
    feed(none, "t1", T0 + S, 1, 0, h);
    assert_false(none->topics[0]->exported);
    free(h);
    il_rollup_free(none);
    il_rollup_free(r);
}

static void test_driver_and_clock(void **state)
{
    (void)state;
    il_rollup *r = il_rollup_new(-1, NULL);
    assert_string_equal(il_rollup_driver(r), "unknown");
    assert_int_equal(il_rollup_clock_bound(r), -1);
    il_rollup_topic_index(r, "a");
    il_rollup_topic_index(r, "b");
    strcpy(r->topics[0]->driver, "nats");
    assert_string_equal(il_rollup_driver(r), "nats");
    strcpy(r->topics[1]->driver, "kafka");
    assert_string_equal(il_rollup_driver(r), "mixed");
    r->topics[0]->clock_bound_us = 30;
    r->topics[1]->clock_bound_us = 900;
    assert_int_equal(il_rollup_clock_bound(r), 900);
    il_rollup_free(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_exact_merge),
        cmocka_unit_test(test_takeover_keeps_totals),
        cmocka_unit_test(test_seconds_close_when_all_moved_past),
        cmocka_unit_test(test_pending_idle_and_late),
        cmocka_unit_test(test_ring_bounded),
        cmocka_unit_test(test_topic_cap),
        cmocka_unit_test(test_driver_and_clock),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
