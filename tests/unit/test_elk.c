/*
 * test_elk.c - the ECS documents: valid JSON whatever the topic is called,
 * the ECS fields Kibana relies on with their units (event.duration in
 * nanoseconds, @timestamp in UTC), the numbers of the second, and ids that
 * are the same for the same (run, topic, second) and differ otherwise.
 *
 * Documents are parsed back with cJSON, a parser independent of the code
 * that wrote them.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "elk.h"
#include "histogram.h"
#include "rollup.h"

static char *write_doc(const il_elk_in *in)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    assert_non_null(f);
    il_elk_write(f, in);
    assert_int_equal(fclose(f), 0);
    assert_null(strchr(buf, '\n')); /* one line: NDJSON */
    return buf;
}

static const cJSON *path(const cJSON *root, const char *dotted)
{
    char key[128];
    const cJSON *o = root;
    while (o && *dotted) {
        size_t n = strcspn(dotted, ".");
        /* "@timestamp" and "event.duration" style paths; keys have no dots. */
        snprintf(key, sizeof key, "%.*s", (int)n, dotted);
        o = cJSON_GetObjectItemCaseSensitive(o, key);
        dotted += n + (dotted[n] == '.');
    }
    return o;
}

static double num(const cJSON *root, const char *p)
{
    const cJSON *o = path(root, p);
    if (!cJSON_IsNumber(o))
        fail_msg("%s is not a number", p);
    return o->valuedouble;
}

static void test_document(void **state)
{
    (void)state;
    il_hist *lat = malloc(sizeof *lat);
    il_hist_init(lat);
    for (int i = 1; i <= 1000; i++)
        il_hist_record(lat, i);
    il_hist_record(lat, -3);
    il_counts delta = {{0}}, total = {{0}};
    delta.v[IL_C_RECEIVED] = 1000;
    delta.v[IL_C_LOST] = -2; /* a gap filled this second */
    total.v[IL_C_RECEIVED] = 5000;
    total.v[IL_C_LOST] = 7;
    total.v[IL_C_DEVICES] = 10;
    const il_hist *h[IL_DISTS] = {lat, NULL, lat};
    il_elk_in in = {.run = "mec-01",
                    .topic = "metro \"gate\"\\\n1",
                    .driver = "mqtt",
                    .t_us = 1700000000123456LL,
                    .window_us = 999000,
                    .delta = &delta,
                    .total = &total,
                    .h = h,
                    .clock_bound_us = 42};
    char *doc = write_doc(&in);
    cJSON *root = cJSON_Parse(doc);
    if (!root)
        fail_msg("not JSON: %s", doc);
    assert_string_equal(cJSON_GetStringValue(path(root, "@timestamp")),
                        "2023-11-14T22:13:20.123456Z");
    assert_string_equal(cJSON_GetStringValue(path(root, "event.dataset")), IL_ELK_DATASET);
    assert_string_equal(cJSON_GetStringValue(path(root, "event.kind")), "metric");
    assert_string_equal(cJSON_GetStringValue(path(root, "event.start")),
                        "2023-11-14T22:13:19.124456Z");
    assert_true(num(root, "event.duration") == 999000000.0); /* ns */
    assert_string_equal(cJSON_GetStringValue(path(root, "iotlat.topic")), in.topic);
    assert_string_equal(cJSON_GetStringValue(path(root, "iotlat.run")), "mec-01");
    assert_string_equal(cJSON_GetStringValue(path(root, "iotlat.driver")), "mqtt");
    assert_true(num(root, "iotlat.received") == 1000);
    assert_true(num(root, "iotlat.lost") == -2);
    assert_true(num(root, "iotlat.total.received") == 5000);
    assert_true(num(root, "iotlat.total.lost") == 7);
    assert_true(num(root, "iotlat.devices") == 10);
    assert_true(num(root, "iotlat.latency.count") == 1000);
    assert_true(num(root, "iotlat.latency.negative") == 1);
    assert_true(num(root, "iotlat.latency.p50_us") == (double)il_hist_percentile(lat, 50));
    assert_true(num(root, "iotlat.latency.p99_us") == (double)il_hist_percentile(lat, 99));
    assert_true(num(root, "iotlat.latency.p999_us") == (double)il_hist_percentile(lat, 99.9));
    assert_true(num(root, "iotlat.latency.max_us") == 1000);
    assert_true(num(root, "iotlat.latency.min_us") == 1);
    assert_true(num(root, "iotlat.latency.mean_us") == 500.5);
    assert_true(num(root, "iotlat.clock_bound_us") == 42);
    /* No service latency in this record: a count of 0 and no percentiles
     * that Kibana would average as zeros. */
    assert_true(num(root, "iotlat.service_latency.count") == 0);
    assert_null(path(root, "iotlat.service_latency.p50_us"));
    char id[IL_ELK_ID_LEN];
    il_elk_id(in.run, in.topic, in.t_us, id);
    assert_string_equal(cJSON_GetStringValue(path(root, "event.id")), id);
    cJSON_Delete(root);
    free(doc);
    free(lat);
}

static void test_unknown_driver_and_bound(void **state)
{
    (void)state;
    il_counts z = {{0}};
    il_elk_in in = {.run = "r", .topic = "_all", .driver = "", .t_us = 1000000,
                    .window_us = 1000000, .delta = &z, .total = &z, .h = NULL,
                    .clock_bound_us = -1, .records = 3};
    char *doc = write_doc(&in);
    cJSON *root = cJSON_Parse(doc);
    assert_non_null(root);
    assert_string_equal(cJSON_GetStringValue(path(root, "iotlat.driver")), "unknown");
    assert_null(path(root, "iotlat.clock_bound_us"));
    assert_true(num(root, "iotlat.records") == 3);
    assert_true(num(root, "iotlat.latency.count") == 0);
    cJSON_Delete(root);
    free(doc);
}

static void test_ids(void **state)
{
    (void)state;
    char a[IL_ELK_ID_LEN], b[IL_ELK_ID_LEN];
    il_elk_id("run", "topic", 5, a);
    il_elk_id("run", "topic", 5, b);
    assert_string_equal(a, b);
    il_elk_id("run", "topic", 6, b);
    assert_string_not_equal(a, b);
    /* The separator keeps run and topic apart. */
    il_elk_id("ab", "c", 5, a);
    il_elk_id("a", "bc", 5, b);
    assert_string_not_equal(a, b);
    il_elk_id("a", "b", INT64_MAX, a);
    assert_true(strlen(a) < IL_ELK_ID_LEN);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_document),
        cmocka_unit_test(test_unknown_driver_and_bound),
        cmocka_unit_test(test_ids),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
