/*
 * test_promexp.c - the Prometheus exposition: how histogram slots map to
 * `le` buckets, the escaping of label values and help texts, the number
 * format, and the shape of a rendered exposition (families grouped, one
 * TYPE each, the topic cap, the _all series).
 *
 * The bucket mapping is what makes Prometheus' histogram_quantile() agree
 * with the plotter's own exact percentiles, so it is checked against the
 * raw values: every bucket counts exactly the values whose histogram slot
 * lies at or below its bound, which is exact wherever the bound is a slot
 * edge and off by at most the one straddling slot elsewhere.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "histogram.h"
#include "promexp.h"
#include "rollup.h"

static uint64_t rng_next(uint64_t *s)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* Log-uniform values from 1 us to 2 minutes: every bucket gets some. */
static int64_t rng_latency(uint64_t *s)
{
    double u = (double)(rng_next(s) >> 11) / 9007199254740992.0;
    return (int64_t)llround(exp(u * log(120e6)));
}

static il_hist *hist_new(void)
{
    il_hist *h = malloc(sizeof *h);
    assert_non_null(h);
    il_hist_init(h);
    return h;
}

/* Render into a string the caller frees. */
static char *render_text(const il_rollup *r, const il_prom_self *self)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    assert_non_null(f);
    il_prom_render(f, r, self);
    assert_int_equal(fclose(f), 0);
    return buf;
}

/* ---- buckets ------------------------------------------------------------- */

static void test_bucket_table(void **state)
{
    (void)state;
    assert_int_equal(il_prom_bucket_us[0], 50);
    assert_int_equal(il_prom_bucket_us[IL_PROM_NBUCKETS - 1], 60000000);
    for (int k = 1; k < IL_PROM_NBUCKETS; k++) {
        double step = (double)il_prom_bucket_us[k] / (double)il_prom_bucket_us[k - 1];
        /* Log-spaced: every step is about a tenth of a decade. */
        assert_true(step > 1.19 && step < 1.33);
    }
}

/* Up to 2047 us every microsecond is its own slot: every bound is exact. */
static void test_bucket_exact_below_2048(void **state)
{
    (void)state;
    for (int64_t le = 0; le < 2048; le++)
        assert_int_equal(il_prom_slot_limit(le), (size_t)le + 1);
    il_hist *h = hist_new();
    for (int k = 0; k < IL_PROM_NBUCKETS && il_prom_bucket_us[k] < 2048; k++) {
        int64_t le = il_prom_bucket_us[k];
        il_hist_init(h);
        il_hist_record(h, le);     /* on the bound: in */
        il_hist_record(h, le + 1); /* just above: out */
        uint64_t cum[IL_PROM_NBUCKETS];
        il_prom_buckets(h, cum);
        assert_int_equal(cum[k], 1);
        if (k > 0)
            assert_int_equal(cum[k - 1], 0);
    }
    free(h);
}

/* Above 2047 us a bound that is not a slot edge leaves its straddling slot
 * to the next bucket: 2500 us sits in the slot 2500..2501. */
static void test_bucket_straddling_slot(void **state)
{
    (void)state;
    assert_int_equal(il_hist_lowest_equivalent(2500), 2500);
    assert_int_equal(il_hist_highest_equivalent(2500), 2501);
    int k2500 = -1;
    for (int k = 0; k < IL_PROM_NBUCKETS; k++)
        if (il_prom_bucket_us[k] == 2500)
            k2500 = k;
    assert_true(k2500 > 0);
    il_hist *h = hist_new();
    il_hist_record(h, 2499); /* slot 2498..2499: at or below 2500 */
    il_hist_record(h, 2500); /* slot 2500..2501: might be above, so next bucket */
    uint64_t cum[IL_PROM_NBUCKETS];
    il_prom_buckets(h, cum);
    assert_int_equal(cum[k2500], 1);
    assert_int_equal(cum[k2500 + 1], 2);
    free(h);
}

/* Against raw values: a bucket never counts a value above its bound, counts
 * every value whose slot ends at or below it, and is exact where the bound
 * ends a slot. */
static void test_bucket_against_raw_values(void **state)
{
    (void)state;
    enum { N = 200000 };
    int64_t *v = malloc(N * sizeof *v);
    il_hist *h = hist_new();
    uint64_t seed = 42, cum[IL_PROM_NBUCKETS];
    assert_non_null(v);
    for (int i = 0; i < N; i++) {
        v[i] = rng_latency(&seed);
        il_hist_record(h, v[i]);
    }
    il_prom_buckets(h, cum);
    int exact_bounds = 0;
    for (int k = 0; k < IL_PROM_NBUCKETS; k++) {
        int64_t le = il_prom_bucket_us[k];
        uint64_t at_or_below = 0, sure = 0;
        for (int i = 0; i < N; i++) {
            at_or_below += v[i] <= le;
            sure += il_hist_highest_equivalent(v[i]) <= le;
        }
        assert_int_equal(cum[k], sure);
        assert_true(cum[k] <= at_or_below);
        if (il_hist_highest_equivalent(le) == le) {
            assert_int_equal(cum[k], at_or_below);
            exact_bounds++;
        } else {
            /* Only the one slot holding the bound is missing. */
            uint64_t straddling = 0;
            for (int i = 0; i < N; i++)
                straddling += il_hist_lowest_equivalent(v[i]) == il_hist_lowest_equivalent(le) &&
                              v[i] <= le;
            assert_int_equal(at_or_below - cum[k], straddling);
        }
        if (k > 0)
            assert_true(cum[k] >= cum[k - 1]);
    }
    /* Every bound up to 2 ms; above, slots are 2^k us wide and end on an odd
     * value, so the round bounds fall inside one. */
    assert_int_equal(exact_bounds, 17);
    free(v);
    free(h);
}

/* Values above the tracked hour count only in +Inf (the total). */
static void test_bucket_overflow(void **state)
{
    (void)state;
    il_hist *h = hist_new();
    il_hist_record(h, 120000000);     /* 2 minutes: above 60 s */
    il_hist_record(h, 7200000000LL); /* 2 hours: above the histogram's range */
    uint64_t cum[IL_PROM_NBUCKETS];
    il_prom_buckets(h, cum);
    assert_int_equal(cum[IL_PROM_NBUCKETS - 1], 0);
    assert_int_equal(h->total, 2);
    free(h);
}

/* ---- text format -------------------------------------------------------- */

static char *to_string(void (*fn)(FILE *, const char *), const char *in)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    fn(f, in);
    fclose(f);
    return buf;
}

static void test_escaping(void **state)
{
    (void)state;
    char *s = to_string(il_prom_label_value, "a\\b\"c\nd\te");
    assert_string_equal(s, "a\\\\b\\\"c\\nd\te");
    free(s);
    /* HELP escapes backslash and line feed, and leaves quotes alone. */
    s = to_string(il_prom_help_text, "say \"x\\y\"\nnext");
    assert_string_equal(s, "say \"x\\\\y\"\\nnext");
    free(s);
    s = to_string(il_prom_label_value, "plain.topic/1 ü");
    assert_string_equal(s, "plain.topic/1 ü");
    free(s);
}

static char *number(double v)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    il_prom_number(f, v);
    fclose(f);
    return buf;
}

static void test_numbers(void **state)
{
    (void)state;
    static const struct {
        double v;
        const char *text;
    } cases[] = {{5e-05, "5e-05"}, {0.000125, "0.000125"}, {0.1, "0.1"},  {60, "60"},
                 {0, "0"},         {1.6e-05, "1.6e-05"},   {0.00094, "0.00094"},
                 {123456, "123456"}, {1e6, "1e+06"},
                 {1795455649.022896, "1.795455649022896e+09"}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *s = number(cases[i].v);
        assert_string_equal(s, cases[i].text);
        free(s);
    }
    char *s = number(NAN);
    assert_string_equal(s, "NaN");
    free(s);
    s = number(INFINITY);
    assert_string_equal(s, "+Inf");
    free(s);
    s = number(-INFINITY);
    assert_string_equal(s, "-Inf");
    free(s);
    /* Shortest, yet it reads back exactly. */
    s = number(1795455649.022896);
    assert_true(strtod(s, NULL) == 1795455649.022896);
    free(s);
}

/* ---- a whole exposition ------------------------------------------------- */

static void feed(il_rollup *r, const char *topic, int64_t t_us, int64_t received,
                 const il_hist *lat)
{
    il_rollup_in in;
    memset(&in, 0, sizeof in);
    in.t_us = t_us;
    in.c.v[IL_C_RECEIVED] = in.c.v[IL_C_RECEIVED_UNIQUE] = in.c.v[IL_C_EXPECTED] = received;
    in.h[IL_DIST_LAT] = lat;
    in.h[IL_DIST_SVC] = lat;
    in.h[IL_DIST_LAG] = lat;
    il_rollup_feed(r, il_rollup_topic_index(r, topic), &in);
}

/* Lines of metric `name` (samples, not comments), counted. */
static int count_lines(const char *text, const char *prefix)
{
    int n = 0;
    size_t pl = strlen(prefix);
    for (const char *p = text; *p;) {
        if (strncmp(p, prefix, pl) == 0)
            n++;
        p = strchr(p, '\n');
        if (!p)
            break;
        p++;
    }
    return n;
}

static void test_render(void **state)
{
    (void)state;
    il_rollup *r = il_rollup_new(1, NULL); /* one topic gets its own series */
    il_hist *h = hist_new();
    assert_non_null(r);
    for (int i = 1; i <= 100; i++)
        il_hist_record(h, i * 10); /* 10 us .. 1 ms */
    feed(r, "we\"ird\\topic\nname", 1000000000000000LL, 100, h);
    feed(r, "second", 1000000000000000LL + 1000, 100, h);
    strcpy(r->topics[0]->driver, "zeromq");
    strcpy(r->topics[1]->driver, "zeromq");
    r->topics[0]->clock_bound_us = 40;
    il_rollup_settle(r, 1000000000000000LL + 10000000, 1);
    il_prom_self self = {.run = "run-1", .redis_up = 1, .polls = 3};
    char *text = render_text(r, &self);

    /* The escaped topic is there; the topic past the cap is not. */
    assert_non_null(strstr(text, "topic=\"we\\\"ird\\\\topic\\nname\""));
    assert_null(strstr(text, "topic=\"second\""));
    /* All topics: both records in the totals and the histogram. */
    assert_non_null(strstr(text, "iotlat_messages_received_total{run=\"run-1\",driver=\"zeromq\","
                                 "topic=\"_all\"} 200\n"));
    assert_non_null(strstr(text, "iotlat_e2e_latency_seconds_count{run=\"run-1\","
                                 "driver=\"zeromq\",topic=\"_all\"} 200\n"));
    assert_non_null(strstr(text, "iotlat_e2e_latency_seconds_bucket{run=\"run-1\","
                                 "driver=\"zeromq\",topic=\"_all\",le=\"+Inf\"} 200\n"));
    /* 10..50 us: 5 values per record at or below le=5e-05. */
    assert_non_null(strstr(text, "iotlat_e2e_latency_seconds_bucket{run=\"run-1\","
                                 "driver=\"zeromq\",topic=\"_all\",le=\"5e-05\"} 10\n"));
    /* Exact quantiles: p99 of 10..1000 us is 990 us, p100 is 1 ms. */
    assert_non_null(strstr(text, "iotlat_e2e_latency_quantile_seconds{run=\"run-1\","
                                 "driver=\"zeromq\",topic=\"_all\",window=\"run\","
                                 "quantile=\"0.99\"} 0.00099\n"));
    assert_non_null(strstr(text, "quantile=\"1\"} 0.001\n"));
    /* Lost is a gauge, the rest of the totals counters. */
    assert_non_null(strstr(text, "# TYPE iotlat_messages_lost gauge\n"));
    assert_non_null(strstr(text, "# TYPE iotlat_messages_received_total counter\n"));
    assert_non_null(strstr(text, "# TYPE iotlat_e2e_latency_seconds histogram\n"));
    assert_non_null(strstr(text, "# TYPE iotlat_e2e_latency_quantile_seconds summary\n"));
    assert_non_null(strstr(text, "iotlat_clock_offset_bound_seconds{run=\"run-1\","
                                 "driver=\"zeromq\",topic=\"_all\"} 4e-05\n"));
    assert_non_null(strstr(text, "iotlat_topics{run=\"run-1\"} 2\n"));
    /* 62 bounds + +Inf, for _all and the one exported topic. */
    assert_int_equal(count_lines(text, "iotlat_e2e_latency_seconds_bucket{"),
                     2 * (IL_PROM_NBUCKETS + 1));
    /* Each family is announced once and its samples follow it without
     * another family in between (the text format requires it). */
    char seen[64][128];
    int nseen = 0;
    char current[128] = "";
    for (char *line = text; *line;) {
        char *nl = strchr(line, '\n');
        assert_non_null(nl);
        *nl = '\0';
        if (strncmp(line, "# TYPE ", 7) == 0) {
            sscanf(line + 7, "%127s", current);
            for (int i = 0; i < nseen; i++)
                if (strcmp(seen[i], current) == 0)
                    fail_msg("family %s announced twice", current);
            assert_true(nseen < 64);
            strcpy(seen[nseen++], current);
        } else if (line[0] != '#') {
            assert_true(current[0]);
            assert_int_equal(strncmp(line, current, strlen(current)), 0);
        }
        line = nl + 1;
    }
    free(text);
    free(h);
    il_rollup_free(r);
}

/* Without records: quantiles are NaN (an empty summary), no bound is shown. */
static void test_render_empty(void **state)
{
    (void)state;
    il_rollup *r = il_rollup_new(-1, NULL);
    il_prom_self self = {.run = "empty"};
    char *text = render_text(r, &self);
    assert_non_null(strstr(text, "window=\"last\",quantile=\"0.5\"} NaN\n"));
    assert_null(strstr(text, "iotlat_clock_offset_bound_seconds{"));
    assert_non_null(strstr(text, "driver=\"unknown\",topic=\"_all\""));
    assert_null(strstr(text, "iotlat_plotter_es_"));
    free(text);
    il_rollup_free(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bucket_table),
        cmocka_unit_test(test_bucket_exact_below_2048),
        cmocka_unit_test(test_bucket_straddling_slot),
        cmocka_unit_test(test_bucket_against_raw_values),
        cmocka_unit_test(test_bucket_overflow),
        cmocka_unit_test(test_escaping),
        cmocka_unit_test(test_numbers),
        cmocka_unit_test(test_render),
        cmocka_unit_test(test_render_empty),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
