/*
 * test_payload.c - unit tests for message templates and datasets.
 *
 * Each placeholder is checked on its own against values that are easy to
 * predict (fixed device and sequence numbers, degenerate random ranges,
 * known timestamps), then the header's metro example is rendered many times
 * to check the shape of real messages.  Random output is checked for range
 * and coverage rather than exact values, except where determinism itself is
 * the property under test.  Error cases assert both the code and that the
 * message names the offending text, because a load-test user staring at a
 * failed start needs to know which placeholder or which file line is wrong.
 * Buffers are sized exactly with malloc so that AddressSanitizer catches any
 * write past the declared capacity.  Dataset fixtures are written to a fresh
 * mkdtemp directory so the tests never touch the source tree.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "payload.h"

static char tmpdir[256];
static char made[32][512];
static int nmade;

/* Write a fixture file into the temp dir and return its full path. */
static const char *fixture(const char *name, const char *content)
{
    assert_true(nmade < 32);
    char *path = made[nmade++];
    snprintf(path, sizeof made[0], "%s/%s", tmpdir, name);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(content, 1, strlen(content), f), strlen(content));
    assert_int_equal(fclose(f), 0);
    return path;
}

static il_payload *compile_ok(const char *tmpl, uint64_t seed)
{
    il_payload *p = NULL;
    char err[256] = "";
    int rc = il_payload_from_template(tmpl, seed, &p, err, sizeof err);
    if (rc != 0)
        fail_msg("template %s: rc %d: %s", tmpl, rc, err);
    assert_non_null(p);
    return p;
}

static il_payload *load_ok(const char *path)
{
    il_payload *p = NULL;
    char err[256] = "";
    int rc = il_payload_from_file(path, 1, &p, err, sizeof err);
    if (rc != 0)
        fail_msg("file %s: rc %d: %s", path, rc, err);
    assert_non_null(p);
    return p;
}

/* Render into a large buffer, NUL-terminate, and check the length bound. */
static const char *render(il_payload *p, uint32_t dev, uint64_t seq, int64_t t)
{
    static char out[8192];
    int n = il_payload_render(p, dev, seq, t, out, sizeof out - 1);
    assert_true(n >= 0);
    assert_true((size_t)n <= il_payload_max_len(p));
    out[n] = '\0';
    return out;
}

static void expect_render(const char *tmpl, uint32_t dev, uint64_t seq, int64_t t,
                          const char *want)
{
    il_payload *p = compile_ok(tmpl, 1);
    assert_string_equal(render(p, dev, seq, t), want);
    il_payload_free(p);
}

/* Template must fail with EINVAL and an errbuf containing every needle. */
static void expect_einval(const char *tmpl, const char *n1, const char *n2)
{
    il_payload *p = (il_payload *)1;
    char err[512] = "";
    int rc = il_payload_from_template(tmpl, 1, &p, err, sizeof err);
    if (rc != IL_PAYLOAD_EINVAL || !strstr(err, n1) || (n2 && !strstr(err, n2)))
        fail_msg("template %s: rc %d, err \"%s\", wanted \"%s\"", tmpl, rc, err, n1);
    assert_null(p);
}

static int is_hex(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!isxdigit((unsigned char)s[i]) || isupper((unsigned char)s[i]))
            return 0;
    return 1;
}

static void test_plain_literal(void **state)
{
    (void)state;
    il_payload *p = compile_ok("hello world", 1);
    assert_string_equal(render(p, 3, 4, 5), "hello world");
    assert_int_equal(il_payload_max_len(p), 11);
    assert_int_equal(il_payload_is_object(p), 0);
    il_payload_free(p);
    expect_render("", 0, 0, 0, "");
    expect_render("a { b } {x} }} {", 0, 0, 0, "a { b } {x} }} {");
    expect_render("a{{{{}}b", 0, 0, 0, "a{{b");
    expect_render("{\"x\":\"{{{{}}seq}}\"}", 0, 0, 0, "{\"x\":\"{{seq}}\"}");
}

static void test_is_object(void **state)
{
    (void)state;
    static const struct { const char *t; int obj; } cases[] = {
        {"{\"a\":1}", 1}, {" \n{\"a\":{{seq}}}\r\n", 1}, {"{}", 1},
        {"{{seq}}", 0}, {"[1]", 0}, {"{", 0}, {"", 0}, {"{\"a\":1} x", 0},
        {"{{device}}{\"a\":1}", 0}, {"{\"a\":1}{{seq}}", 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        il_payload *p = compile_ok(cases[i].t, 1);
        if (il_payload_is_object(p) != cases[i].obj)
            fail_msg("is_object(%s) != %d", cases[i].t, cases[i].obj);
        il_payload_free(p);
    }
}

static void test_device_seq(void **state)
{
    (void)state;
    const char *t = "{{device}}/{{device1}}/{{seq}}";
    expect_render(t, 0, 0, 0, "0/1/0");
    expect_render(t, 41, 17, 0, "41/42/17");
    expect_render(t, UINT32_MAX, UINT64_MAX, 0,
                  "4294967295/4294967296/18446744073709551615");
}

static void test_rand(void **state)
{
    (void)state;
    int count[6] = {0};
    il_payload *p = compile_ok("{{rand:1:6}}", 7);
    for (int i = 0; i < 60000; i++) {
        long v = strtol(render(p, 0, 0, 0), NULL, 10);
        assert_in_range(v, 1, 6);
        count[v - 1]++;
    }
    for (int i = 0; i < 6; i++)
        assert_in_range(count[i], 9000, 11000);
    il_payload_free(p);

    p = compile_ok("{{rand:-5:-1}}", 7);
    int seen = 0;
    for (int i = 0; i < 1000; i++) {
        long v = strtol(render(p, 0, 0, 0), NULL, 10);
        assert_true(v >= -5 && v <= -1);
        seen |= 1 << (v + 5);
    }
    assert_int_equal(seen, 0x1f);
    il_payload_free(p);

    expect_render("{{rand:7:7}}", 0, 0, 0, "7");
    expect_render("{{rand:-9223372036854775808:-9223372036854775808}}", 0, 0, 0,
                  "-9223372036854775808");
    expect_render("{{rand:9223372036854775807:9223372036854775807}}", 0, 0, 0,
                  "9223372036854775807");

    /* The full int64 range: every output parses back, and both halves of
     * the range turn up about equally often. */
    p = compile_ok("{{rand:-9223372036854775808:9223372036854775807}}", 3);
    int neg = 0;
    for (int i = 0; i < 10000; i++) {
        const char *s = render(p, 0, 0, 0);
        char *end;
        errno = 0;
        long long v = strtoll(s, &end, 10);
        assert_int_equal(errno, 0);
        assert_int_equal(*end, '\0');
        neg += v < 0;
    }
    assert_in_range(neg, 4500, 5500);
    il_payload_free(p);

    /* The two topmost values, where a naive B - A + 1 would overflow. */
    p = compile_ok("{{rand:9223372036854775806:9223372036854775807}}", 3);
    int hi = 0;
    for (int i = 0; i < 1000; i++) {
        const char *s = render(p, 0, 0, 0);
        assert_true(!strcmp(s, "9223372036854775806") ||
                    !strcmp(s, "9223372036854775807"));
        hi += s[18] == '7';
    }
    assert_in_range(hi, 400, 600);
    il_payload_free(p);
}

static void test_randf(void **state)
{
    (void)state;
    il_payload *p = compile_ok("{{randf:0.1:0.3}}", 5);
    int lo_seen = 0;
    for (int i = 0; i < 20000; i++) {
        const char *s = render(p, 0, 0, 0);
        assert_int_equal(strlen(s), 5);
        assert_true(s[0] == '0' && s[1] == '.');
        double v = strtod(s, NULL);
        assert_true(v >= 0.1 - 1e-9 && v < 0.3 - 1e-9);
        lo_seen |= !strcmp(s, "0.100");
    }
    assert_true(lo_seen);
    il_payload_free(p);

    p = compile_ok("{{randf:-1:1}}", 5);
    int neg = 0;
    for (int i = 0; i < 2000; i++) {
        const char *s = render(p, 0, 0, 0);
        double v = strtod(s, NULL);
        assert_true(v >= -1.0 && v < 1.0);
        const char *dot = strchr(s, '.');
        assert_non_null(dot);
        assert_int_equal(strlen(dot), 4);
        neg += s[0] == '-';
    }
    assert_in_range(neg, 800, 1200);
    il_payload_free(p);

    expect_render("{{randf:2.5:2.5}}", 0, 0, 0, "2.500");
    expect_render("{{randf:-0.25:-0.25}}", 0, 0, 0, "-0.250");
    expect_render("{{randf:7:7.001}}", 0, 0, 0, "7.000");
}

static void test_choice(void **state)
{
    (void)state;
    il_payload *p = compile_ok("{{choice:red|green|blue}}", 9);
    int count[3] = {0};
    for (int i = 0; i < 3000; i++) {
        const char *s = render(p, 0, 0, 0);
        int k = !strcmp(s, "red") ? 0 : !strcmp(s, "green") ? 1 : !strcmp(s, "blue") ? 2 : -1;
        assert_true(k >= 0);
        count[k]++;
    }
    for (int i = 0; i < 3; i++)
        assert_in_range(count[i], 850, 1150);
    assert_int_equal(il_payload_max_len(p), 5);
    il_payload_free(p);
    expect_render("<{{choice:solo}}>", 0, 0, 0, "<solo>");
}

static void test_hex(void **state)
{
    (void)state;
    static const size_t ns[] = {1, 15, 16, 17, 33, 64};
    for (size_t i = 0; i < sizeof ns / sizeof ns[0]; i++) {
        char t[32], prev[80] = "";
        snprintf(t, sizeof t, "{{hex:%zu}}", ns[i]);
        il_payload *p = compile_ok(t, 11);
        int changed = 0;
        for (int k = 0; k < 50; k++) {
            const char *s = render(p, 0, 0, 0);
            assert_int_equal(strlen(s), ns[i]);
            assert_true(is_hex(s, ns[i]));
            changed += strcmp(s, prev) != 0;
            strcpy(prev, s);
        }
        assert_true(changed > 25);
        il_payload_free(p);
    }
}

static void test_now(void **state)
{
    (void)state;
    static const struct { int64_t t; const char *want; } cases[] = {
        {0, "1970-01-01T00:00:00.000000Z"},
        {1700000000123456LL, "2023-11-14T22:13:20.123456Z"},
        {-1, "1969-12-31T23:59:59.999999Z"},
        {951782400000000LL, "2000-02-29T00:00:00.000000Z"},
        {253402300799999999LL, "9999-12-31T23:59:59.999999Z"},
        {253402300800000000LL, "+10000-01-01T00:00:00.000000Z"},
        {-62167219200000000LL, "0000-01-01T00:00:00.000000Z"},
        {-62167219200000001LL, "-0001-12-31T23:59:59.999999Z"},
        {INT64_MAX, "+294247-01-10T04:00:54.775807Z"},
        {INT64_MIN, "-290308-12-21T19:59:05.224192Z"},
    };
    il_payload *p = compile_ok("{{now}}", 1);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        assert_string_equal(render(p, 0, 0, cases[i].t), cases[i].want);

    /* Against the C library over years 1..9999. */
    srand(12345);
    for (int i = 0; i < 20000; i++) {
        int64_t lo = -62135596800LL, span = 253402300799LL - lo;
        uint64_t r = ((uint64_t)rand() << 40) ^ ((uint64_t)rand() << 20) ^ (uint64_t)rand();
        int64_t sec = lo + (int64_t)(r % (uint64_t)span);
        int64_t us = rand() % 1000000;
        time_t tt = (time_t)sec;
        struct tm tm;
        assert_non_null(gmtime_r(&tt, &tm));
        char want[64];
        snprintf(want, sizeof want, "%04d-%02d-%02dT%02d:%02d:%02d.%06dZ",
                 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
                 tm.tm_min, tm.tm_sec, (int)us);
        assert_string_equal(render(p, 0, 0, sec * 1000000 + us), want);
    }
    il_payload_free(p);
}

/* The header's example; checks the exact shape of every rendering. */
static const char metro[] =
    "{\"Metro\":{\"CheckIn\":{\"Token\":\"{{hex:16}}\",\"Station\":{{rand:1:50}},"
    "\"Device\":\"gate-{{device}}\"}}}";

static void test_metro(void **state)
{
    (void)state;
    il_payload *p = compile_ok(metro, 2024);
    assert_int_equal(il_payload_is_object(p), 1);
    static const char head[] = "{\"Metro\":{\"CheckIn\":{\"Token\":\"";
    unsigned seen_lo = 0, seen_hi = 0;
    for (uint32_t i = 0; i < 10000; i++) {
        uint32_t dev = i % 97;
        const char *s = render(p, dev, i, 0);
        assert_memory_equal(s, head, sizeof head - 1);
        s += sizeof head - 1;
        assert_true(is_hex(s, 16));
        s += 16;
        assert_memory_equal(s, "\",\"Station\":", 12);
        s += 12;
        char *end;
        long st = strtol(s, &end, 10);
        assert_true(isdigit((unsigned char)*s) && (*s != '0'));
        assert_in_range(st, 1, 50);
        seen_lo += st == 1, seen_hi += st == 50;
        char tail[64];
        snprintf(tail, sizeof tail, ",\"Device\":\"gate-%u\"}}}", dev);
        assert_string_equal(end, tail);
    }
    assert_true(seen_lo > 0 && seen_hi > 0);
    il_payload_free(p);
}

static void test_determinism(void **state)
{
    (void)state;
    const char *t = "{{rand:0:1000000}} {{hex:8}} {{randf:0:1}} {{choice:a|b|c}}";
    il_payload *a = compile_ok(t, 42), *b = compile_ok(t, 42), *c = compile_ok(t, 43);
    il_payload *z1 = compile_ok(t, 0), *z2 = compile_ok(t, 0);
    int differ = 0;
    for (int i = 0; i < 1000; i++) {
        char ra[128];
        strcpy(ra, render(a, 1, (uint64_t)i, 0));
        assert_string_equal(ra, render(b, 1, (uint64_t)i, 0));
        differ += strcmp(ra, render(c, 1, (uint64_t)i, 0)) != 0;
        strcpy(ra, render(z1, 1, (uint64_t)i, 0));
        assert_string_equal(ra, render(z2, 1, (uint64_t)i, 0));
    }
    assert_true(differ > 990);
    il_payload_free(a), il_payload_free(b), il_payload_free(c);
    il_payload_free(z1), il_payload_free(z2);
}

static void test_errors(void **state)
{
    (void)state;
    expect_einval("{{foo}}", "unknown placeholder \"{{foo}}\" at offset 0", "accepted:");
    expect_einval("{\"a\":{{foo}}}", "\"{{foo}}\" at offset 5", "template");
    expect_einval("abc {{seq", "unterminated", "\"{{seq\" at offset 4");
    expect_einval("{{", "unterminated", "offset 0");
    expect_einval("{{}}", "\"{{}}\"", "unknown");
    expect_einval("{{ seq }}", "\"{{ seq }}\"", NULL);
    expect_einval("{{rand:5:1}}", "\"{{rand:5:1}}\"", "A <= B");
    expect_einval("{{rand:a:5}}", "\"{{rand:a:5}}\"", NULL);
    expect_einval("{{rand:1.5:2}}", "\"{{rand:1.5:2}}\"", NULL);
    expect_einval("{{rand:1}}", "\"{{rand:1}}\"", NULL);
    expect_einval("{{rand:1:2:3}}", "\"{{rand:1:2:3}}\"", NULL);
    expect_einval("{{rand:0:9223372036854775808}}", "\"{{rand:0:9223372036854775808}}\"", NULL);
    expect_einval("{{rand:-9223372036854775809:0}}", "\"{{rand:-9223372036854775809:0}}\"", NULL);
    expect_einval("{{randf:2:1}}", "\"{{randf:2:1}}\"", NULL);
    expect_einval("{{randf:x:1}}", "\"{{randf:x:1}}\"", NULL);
    expect_einval("{{randf:1e3:2e3}}", "\"{{randf:1e3:2e3}}\"", NULL);
    expect_einval("{{randf:1.:2}}", "\"{{randf:1.:2}}\"", NULL);
    expect_einval("{{randf:0:1000000000000000}}", "\"{{randf:0:1000000000000000}}\"", NULL);
    expect_einval("{{hex:0}}", "\"{{hex:0}}\"", "1..64");
    expect_einval("{{hex:65}}", "\"{{hex:65}}\"", "1..64");
    expect_einval("{{hex:}}", "\"{{hex:}}\"", NULL);
    expect_einval("{{hex:-1}}", "\"{{hex:-1}}\"", NULL);
    expect_einval("{{choice:}}", "\"{{choice:}}\"", "choice");
    expect_einval("{{choice:a||b}}", "\"{{choice:a||b}}\"", NULL);
    expect_einval("{{choice:a|}}", "\"{{choice:a|}}\"", NULL);
    expect_einval("ok {{seq}} then {{bad}}", "\"{{bad}}\" at offset 16", NULL);

    /* Tiny or missing error buffers are respected. */
    il_payload *p = NULL;
    char tiny[8];
    memset(tiny, 'x', sizeof tiny);
    assert_int_equal(il_payload_from_template("{{foo}}", 1, &p, tiny, 5), IL_PAYLOAD_EINVAL);
    assert_int_equal(tiny[4], '\0');
    assert_int_equal(tiny[5], 'x');
    assert_int_equal(il_payload_from_template("{{foo}}", 1, &p, NULL, 0), IL_PAYLOAD_EINVAL);
    assert_null(p);
}

/* Every capacity below the rendered length must give ENOSPC without writing
 * outside an exactly sized heap buffer; the exact length must succeed. */
static void test_enospc(void **state)
{
    (void)state;
    const char *t = "{{hex:10}}-{{device}}-{{seq}}-{{now}}-{{rand:10:99}}-"
                    "{{randf:1:9}}-{{choice:ab|cd}}-{{{{}}-{{device1}}";
    il_payload *p = compile_ok(t, 1);
    int len = (int)strlen(render(p, 12, 345, 1700000000000000LL));
    for (int cap = 0; cap <= len; cap++) {
        char *buf = malloc(cap ? (size_t)cap : 1);
        assert_non_null(buf);
        int rc = il_payload_render(p, 12, 345, 1700000000000000LL, buf, (size_t)cap);
        assert_int_equal(rc, cap < len ? IL_PAYLOAD_ENOSPC : len);
        free(buf);
    }
    il_payload_free(p);
}

static void test_ndjson(void **state)
{
    (void)state;
    const char *path = fixture("replay.ndjson",
                               "{\"i\":0,\"d\":{{device}},\"s\":{{seq}}}\n"
                               "\n   \t\n"
                               "  {\"i\":1}\r\n"
                               "{\"i\":2,\"r\":{{rand:5:5}},\"c\":\"{{choice:x}}\"}");
    il_payload *p = load_ok(path);
    assert_int_equal(il_payload_is_object(p), 1);
    const char *want[3] = {NULL, "{\"i\":1}", "{\"i\":2,\"r\":5,\"c\":\"x\"}"};
    for (uint32_t dev = 0; dev < 5; dev++) {
        for (uint64_t seq = 0; seq < 7; seq++) {
            const char *s = render(p, dev, seq, 0);
            size_t k = (dev + seq) % 3;
            if (k == 0) {
                char w[64];
                snprintf(w, sizeof w, "{\"i\":0,\"d\":%u,\"s\":%" PRIu64 "}", dev, seq);
                assert_string_equal(s, w);
            } else {
                assert_string_equal(s, want[k]);
            }
        }
    }
    /* Near the top of the sequence space the line index must still be the
     * true (dev + seq) mod n. */
    assert_string_equal(render(p, 2, UINT64_MAX, 0), want[(2 + UINT64_MAX % 3) % 3]);
    il_payload_free(p);

    p = load_ok(fixture("one.jsonl", "{\"only\":true}\n"));
    assert_string_equal(render(p, 9, 9, 0), "{\"only\":true}");
    assert_int_equal(il_payload_max_len(p), 13);
    il_payload_free(p);
}

static void expect_file_error(const char *path, int code, const char *n1, const char *n2)
{
    il_payload *p = (il_payload *)1;
    char err[512] = "";
    int rc = il_payload_from_file(path, 1, &p, err, sizeof err);
    if (rc != code || !strstr(err, n1) || (n2 && !strstr(err, n2)))
        fail_msg("%s: rc %d, err \"%s\", wanted \"%s\"", path, rc, err, n1);
    assert_null(p);
}

static void test_ndjson_errors(void **state)
{
    (void)state;
    expect_file_error(fixture("bad1.ndjson", "{\"a\":1}\n\n[1,2]\n"),
                      IL_PAYLOAD_EINVAL, "bad1.ndjson:3:", "JSON object");
    expect_file_error(fixture("bad2.ndjson", "{\"a\":1}\n{\"a\":{{nope}}}\n"),
                      IL_PAYLOAD_EINVAL, "bad2.ndjson:2:", "\"{{nope}}\"");
    expect_file_error(fixture("bad3.jsonl", "{\"a\":1}\n{{seq}}\n"),
                      IL_PAYLOAD_EINVAL, "bad3.jsonl:2:", NULL);
    expect_file_error(fixture("bad4.ndjson", "{\"a\":1\n"),
                      IL_PAYLOAD_EINVAL, "bad4.ndjson:1:", NULL);
    expect_file_error(fixture("empty.ndjson", ""), IL_PAYLOAD_EINVAL, "empty.ndjson", "no lines");
    expect_file_error(fixture("blank.ndjson", "\n  \r\n\n"), IL_PAYLOAD_EINVAL, "blank.ndjson", NULL);
}

static void test_csv(void **state)
{
    (void)state;
    const char *path = fixture("rows.csv",
        "name,code,price,note,neg,exp,empty\r\n"
        "\"Smith, John\",007,12.5,\"said \"\"hi\"\"\",-3,1e5,\r\n"
        "\r\n"
        "plain,0,-0.5,\"multi\nline\",-01,1.e5,\"\"\r\n"
        "back\\slash,\"1\",0.0,tab\there,-0,2E-3,x");
    il_payload *p = load_ok(path);
    assert_int_equal(il_payload_is_object(p), 1);
    assert_string_equal(render(p, 0, 0, 0),
        "{\"name\":\"Smith, John\",\"code\":\"007\",\"price\":12.5,"
        "\"note\":\"said \\\"hi\\\"\",\"neg\":-3,\"exp\":1e5,\"empty\":\"\"}");
    assert_string_equal(render(p, 0, 1, 0),
        "{\"name\":\"plain\",\"code\":0,\"price\":-0.5,"
        "\"note\":\"multi\\u000aline\",\"neg\":\"-01\",\"exp\":\"1.e5\",\"empty\":\"\"}");
    assert_string_equal(render(p, 1, 1, 0),
        "{\"name\":\"back\\\\slash\",\"code\":1,\"price\":0.0,"
        "\"note\":\"tab\\u0009here\",\"neg\":-0,\"exp\":2E-3,\"empty\":\"x\"}");
    assert_string_equal(render(p, 2, 1, 0), render(p, 0, 0, 0));
    il_payload_free(p);

    /* Placeholders inside CSV values are expanded (inside JSON strings). */
    p = load_ok(fixture("ph.csv", "id,val\n1,dev-{{device}}\n2,{{seq}}\n"));
    assert_string_equal(render(p, 4, 0, 0), "{\"id\":1,\"val\":\"dev-4\"}");
    assert_string_equal(render(p, 4, 9, 0), "{\"id\":2,\"val\":\"9\"}");
    il_payload_free(p);
}

static void test_csv_errors(void **state)
{
    (void)state;
    expect_file_error(fixture("count.csv", "a,b,c\n1,2,3\n4,5\n"),
                      IL_PAYLOAD_EINVAL, "count.csv:3:", "2 fields but the header has 3");
    /* Line numbers count the newline inside a quoted field and CRLFs. */
    expect_file_error(fixture("count2.csv", "a,b\r\n\"x\ny\",2\r\n1,2,3\r\n"),
                      IL_PAYLOAD_EINVAL, "count2.csv:4:", "3 fields");
    expect_file_error(fixture("quote.csv", "a,b\n1,2\n\"open,3\n"),
                      IL_PAYLOAD_EINVAL, "quote.csv:3:", "unterminated");
    expect_file_error(fixture("after.csv", "a,b\n\"x\"y,2\n"),
                      IL_PAYLOAD_EINVAL, "after.csv:2:", NULL);
    expect_file_error(fixture("head.csv", "a,b\r\n"), IL_PAYLOAD_EINVAL, "head.csv", "no data rows");
    expect_file_error(fixture("nothing.csv", ""), IL_PAYLOAD_EINVAL, "nothing.csv", NULL);
    expect_file_error(fixture("ph_bad.csv", "a\n{{zzz}}\n"),
                      IL_PAYLOAD_EINVAL, "ph_bad.csv:2:", "{{zzz}}");
}

static void test_files(void **state)
{
    (void)state;
    char missing[600];
    snprintf(missing, sizeof missing, "%s/does-not-exist.csv", tmpdir);
    expect_file_error(missing, IL_PAYLOAD_EIO, missing, NULL);

    il_payload *p = load_ok(fixture("body.tmpl", "{\"a\":{{seq}}}\r\n\n"));
    assert_string_equal(render(p, 0, 7, 0), "{\"a\":7}");
    assert_int_equal(il_payload_is_object(p), 1);
    il_payload_free(p);
    p = load_ok(fixture("plain.txt", "just text\n"));
    assert_string_equal(render(p, 0, 7, 0), "just text");
    assert_int_equal(il_payload_is_object(p), 0);
    il_payload_free(p);
    expect_file_error(fixture("bad.txt", "x {{what}}\n"), IL_PAYLOAD_EINVAL, "bad.txt",
                      "\"{{what}}\" at offset 2");

    /* A sparse file just over the limit is refused without reading it. */
    char *big = made[nmade++];
    snprintf(big, sizeof made[0], "%s/big.ndjson", tmpdir);
    FILE *f = fopen(big, "wb");
    assert_non_null(f);
    fclose(f);
    assert_int_equal(truncate(big, (65L << 20)), 0);
    expect_file_error(big, IL_PAYLOAD_EIO, "big.ndjson", "68157440 bytes");
}

/* max_len must bound every rendering, so a buffer of exactly max_len bytes
 * always suffices, whatever the device, sequence, time and random draws. */
static void test_max_len_random(void **state)
{
    (void)state;
    static const char *pieces[] = {
        "{\"k\":", "}", "x", "", "{{device}}", "{{device1}}", "{{seq}}", "{{now}}",
        "{{rand:-9223372036854775808:9223372036854775807}}", "{{rand:-5:5}}",
        "{{rand:0:9}}", "{{randf:-999999999999999.999:999999999999999.999}}",
        "{{randf:-0.5:0.5}}", "{{choice:a|bbbb|cc}}", "{{hex:64}}", "{{hex:3}}",
        "{{{{}}",
    };
    const size_t np = sizeof pieces / sizeof pieces[0];
    srand(777);
    for (int round = 0; round < 300; round++) {
        char t[1024] = "";
        int k = 1 + rand() % 8;
        for (int i = 0; i < k; i++)
            strcat(t, pieces[(size_t)rand() % np]);
        il_payload *p = compile_ok(t, (uint64_t)round);
        size_t max = il_payload_max_len(p);
        char *buf = malloc(max ? max : 1);
        assert_non_null(buf);
        for (int i = 0; i < 200; i++) {
            uint32_t dev = i == 0 ? UINT32_MAX : (uint32_t)rand() * 2654435761u;
            uint64_t seq = i == 1 ? UINT64_MAX : ((uint64_t)rand() << 33) ^ (uint64_t)rand();
            int64_t tu = i == 2 ? INT64_MIN : i == 3 ? INT64_MAX
                       : (int64_t)(((uint64_t)rand() << 42) ^ ((uint64_t)rand() << 21) ^ (uint64_t)rand());
            int n = il_payload_render(p, dev, seq, tu, buf, max);
            if (n < 0 || (size_t)n > max)
                fail_msg("template %s: render %d, max_len %zu", t, n, max);
        }
        free(buf);
        il_payload_free(p);
    }
}

int main(void)
{
    snprintf(tmpdir, sizeof tmpdir, "%s/test_payload.XXXXXX",
             getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plain_literal),
        cmocka_unit_test(test_is_object),
        cmocka_unit_test(test_device_seq),
        cmocka_unit_test(test_rand),
        cmocka_unit_test(test_randf),
        cmocka_unit_test(test_choice),
        cmocka_unit_test(test_hex),
        cmocka_unit_test(test_now),
        cmocka_unit_test(test_metro),
        cmocka_unit_test(test_determinism),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_enospc),
        cmocka_unit_test(test_ndjson),
        cmocka_unit_test(test_ndjson_errors),
        cmocka_unit_test(test_csv),
        cmocka_unit_test(test_csv_errors),
        cmocka_unit_test(test_files),
        cmocka_unit_test(test_max_len_random),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    for (int i = 0; i < nmade; i++)
        unlink(made[i]);
    rmdir(tmpdir);
    return rc;
}
