/*
 * test_envelope.c - unit tests for the measurement envelope (envelope.c).
 *
 * The envelope is the one piece of every message the subscriber must read
 * correctly, and it reads it from untrusted input at high rates, so these
 * tests check three things: that both encodings carry every field through
 * unchanged, that the user's payload is copied byte for byte, and that no
 * malformed, truncated or randomly mutated input can crash the decoder or
 * make it read past the given length.  Every decode goes through a buffer
 * malloc'd to the message's exact size so that AddressSanitizer reports any
 * over-read.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "envelope.h"

#define BUF 4096

/* Decodes a copy of msg held in an exactly sized heap buffer.  body_off is
 * the body's offset into the message (the pointer itself dies with the
 * copy). */
static int dec(const void *msg, size_t len, il_env *e, size_t *body_off,
               size_t *body_len)
{
    static const uint8_t none[1];
    uint8_t *buf = malloc(len);
    const uint8_t *b = NULL;
    size_t bl = 0;
    int rc;
    if (len)
        memcpy(buf, msg, len);
    rc = il_env_decode(len ? buf : none, len, e, &b, &bl);
    if (rc == 0 && body_off)
        *body_off = (size_t)(b - (len ? buf : none));
    if (rc == 0 && body_len)
        *body_len = bl;
    free(buf);
    return rc;
}

static int decs(const char *msg, il_env *e)
{
    return dec(msg, strlen(msg), e, NULL, NULL);
}

/* Adds a hop to a copy of msg held in an exactly sized heap buffer. */
static int hop(const void *msg, size_t len, int64_t t, const char *nb,
               size_t nbl, uint8_t *out, size_t cap)
{
    uint8_t *buf = malloc(len ? len : 1);
    int rc;
    if (len)
        memcpy(buf, msg, len);
    rc = il_env_add_hop(buf, len, t, nb, nbl, out, cap);
    free(buf);
    return rc;
}

static void assert_env_equal(const il_env *a, const il_env *b)
{
    assert_int_equal(a->pub, b->pub);
    assert_int_equal(a->dev, b->dev);
    assert_true(a->seq == b->seq);
    assert_true(a->t_intended == b->t_intended);
    assert_true(a->t_sent == b->t_sent);
    assert_int_equal(a->flags, b->flags);
    assert_int_equal(a->devices, b->devices);
    assert_int_equal(a->nhops, b->nhops);
    for (uint32_t i = 0; i < a->nhops; i++)
        assert_true(a->t_hop[i] == b->t_hop[i]);
}

/* A set of envelopes covering hop counts, fin markers and extreme values.
 * Devices stay within the binary format's 24 bits. */
static il_env sample(int k)
{
    il_env e = {7, 42, 17, 1700000000000000, 1700000000000012, 0, 0, 0, {0}};
    switch (k) {
    case 1:
        e.nhops = 3;
        e.t_hop[0] = 1700000000000100, e.t_hop[1] = 1700000000000200;
        e.t_hop[2] = 1700000000000300;
        break;
    case 2:
        e.nhops = IL_ENV_MAX_HOPS;
        for (int i = 0; i < IL_ENV_MAX_HOPS; i++)
            e.t_hop[i] = i % 2 ? INT64_MAX - i : INT64_MIN + i;
        break;
    case 3:
        e.flags = IL_ENV_FIN, e.devices = 1000, e.seq = 123456;
        break;
    case 4:
        e.pub = UINT32_MAX, e.dev = UINT32_MAX, e.seq = UINT64_MAX;
        e.t_intended = INT64_MIN, e.t_sent = INT64_MAX;
        e.nhops = 2, e.t_hop[0] = -1, e.t_hop[1] = 0;
        break;
    case 5:
        memset(&e, 0, sizeof e);
        break;
    case 6:
        e.flags = IL_ENV_FIN, e.devices = 0xFFFFFF, e.seq = 0;
        e.t_intended = -1, e.t_sent = -86400000000LL;
        e.nhops = 1, e.t_hop[0] = -5;
        break;
    }
    return e;
}
#define NSAMPLES 7

/* The envelope text written independently with snprintf, to check the
 * encoder's own integer formatting. */
static size_t expect_env(const il_env *e, char *w)
{
    size_t n = (size_t)sprintf(
        w,
        "{\"iotlat\":{\"v\":1,\"pub\":%" PRIu32 ",\"dev\":%" PRIu32
        ",\"seq\":%" PRIu64 ",\"t_intended\":%" PRId64 ",\"t_sent\":%" PRId64,
        e->pub, e->dev, e->seq, e->t_intended, e->t_sent);
    for (uint32_t i = 0; i < e->nhops; i++)
        n += (size_t)sprintf(w + n, "%s%" PRId64, i ? "," : ",\"t_hop\":[",
                             e->t_hop[i]);
    if (e->nhops)
        w[n++] = ']';
    if (e->flags & IL_ENV_FIN)
        n += (size_t)sprintf(w + n, ",\"fin\":true,\"devices\":%" PRIu32,
                             e->devices);
    w[n++] = '}';
    w[n] = 0;
    return n;
}

static const char *bodies[] = {
    "",
    "{}",
    " \n{ \t}\n",
    "{\"a\":1}",
    "{ \"a\" :1 ,\n\t\"b\":{} }  ",
    "\n{\"Metro\":{\"CheckIn\":{\"Token\":\"a1\",\"Station\":12}}, \"x\" : "
    "[1, -2.5e3, null, true, \"s\\\"q\\\\\", {\"iotlat\":{\"v\":9}}],"
    "\"u\":\"\\u00e9\xc3\xa9\"}\n",
};
#define NBODIES (sizeof bodies / sizeof *bodies)

/* What the encoder must write after the envelope for a given body. */
static const char *body_rest(const char *b, char *sep)
{
    const char *p = strchr(b, '{');
    *sep = 0;
    if (!p)
        return "}";
    for (p++; *p == ' ' || *p == '\n' || *p == '\t'; p++)
        ;
    if (*p == '}')
        return "}";
    *sep = ',';
    return strchr(b, '{') + 1;
}

static void test_json_roundtrip(void **state)
{
    (void)state;
    for (int k = 0; k < NSAMPLES; k++) {
        for (size_t b = 0; b < NBODIES; b++) {
            il_env in = sample(k), out;
            uint8_t msg[BUF];
            char want[BUF], sep;
            size_t n = expect_env(&in, want), off = 99, bl = 0;
            const char *rest = body_rest(bodies[b], &sep);
            int len = il_env_encode(IL_ENC_JSON, &in, bodies[b],
                                    strlen(bodies[b]), msg, sizeof msg);

            if (sep)
                want[n++] = sep;
            strcpy(want + n, rest);
            assert_int_equal(len, strlen(want));
            assert_memory_equal(msg, want, (size_t)len);
            assert_int_equal(dec(msg, (size_t)len, &out, &off, &bl), 0);
            assert_env_equal(&in, &out);
            assert_int_equal(off, 0);
            assert_int_equal(bl, len);
        }
    }
    /* A NULL body is the same as an empty one; devices beyond 24 bits are
     * fine in JSON. */
    il_env in = sample(3), out;
    uint8_t msg[BUF];
    in.devices = UINT32_MAX;
    int len = il_env_encode(IL_ENC_JSON, &in, NULL, 0, msg, sizeof msg);
    assert_true(len > 0 && msg[len - 1] == '}' && msg[len - 2] == '}');
    assert_int_equal(dec(msg, (size_t)len, &out, NULL, NULL), 0);
    assert_env_equal(&in, &out);
}

static void test_json_encode_errors(void **state)
{
    il_env e = sample(0);
    uint8_t msg[BUF];
    (void)state;
    assert_int_equal(il_env_encode(IL_ENC_JSON, &e, "[1]", 3, msg, BUF),
                     IL_ENV_EMALFORMED);
    assert_int_equal(il_env_encode(IL_ENC_JSON, &e, "x{}", 3, msg, BUF),
                     IL_ENV_EMALFORMED);
    assert_int_equal(il_env_encode(IL_ENC_JSON, &e, " {", 2, msg, BUF),
                     IL_ENV_EMALFORMED);
    e.nhops = IL_ENV_MAX_HOPS + 1;
    assert_int_equal(il_env_encode(IL_ENC_JSON, &e, "{}", 2, msg, BUF),
                     IL_ENV_EMALFORMED);
    assert_int_equal(il_env_encode(IL_ENC_BINARY, &e, "", 0, msg, BUF),
                     IL_ENV_EMALFORMED);
    e = sample(3);
    e.devices = 0x1000000;
    assert_int_equal(il_env_encode(IL_ENC_BINARY, &e, "", 0, msg, BUF),
                     IL_ENV_EMALFORMED);
}

static void test_binary_roundtrip(void **state)
{
    uint8_t body[300];
    (void)state;
    for (size_t i = 0; i < sizeof body; i++)
        body[i] = (uint8_t)(i * 7);
    for (int k = 0; k < NSAMPLES; k++) {
        for (size_t bl = 0; bl <= sizeof body; bl += 150) {
            il_env in = sample(k), out;
            uint8_t msg[BUF];
            size_t off = 0, olen = 0, hl = IL_ENV_BIN_HEADER + 8 * in.nhops;
            int len = il_env_encode(IL_ENC_BINARY, &in, (const char *)body,
                                    bl, msg, sizeof msg);

            assert_int_equal(len, hl + bl);
            assert_int_equal(dec(msg, (size_t)len, &out, &off, &olen), 0);
            assert_env_equal(&in, &out);
            assert_int_equal(off, hl);
            assert_int_equal(olen, bl);
            assert_memory_equal(msg + off, body, bl);
        }
    }
    /* The byte order is little-endian whatever the host's. */
    il_env e = {0x01020304, 0x0a0b0c0d, 0x1122334455667788ULL, -2, 3,
                IL_ENV_FIN, 0x050607, 1, {0x0102030405060708LL}};
    uint8_t msg[64];
    static const uint8_t want[48] = {
        'I', 'L', 1, 1, 1, 0x07, 0x06, 0x05,
        0x04, 0x03, 0x02, 0x01, 0x0d, 0x0c, 0x0b, 0x0a,
        0x88, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11,
        0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        3, 0, 0, 0, 0, 0, 0, 0,
        0x08, 0x07, 0x06, 0x05, 0x04, 0x03, 0x02, 0x01};
    assert_int_equal(il_env_encode(IL_ENC_BINARY, &e, NULL, 0, msg, 64), 48);
    assert_memory_equal(msg, want, 48);
}

/* Envelopes a user payload built to mislead a careless scanner. */
static void test_envelope_position(void **state)
{
#define ENV "{\"v\":1,\"pub\":1,\"dev\":2,\"seq\":3,\"t_intended\":10," \
            "\"t_sent\":20}"
    static const char *msgs[] = {
        "{\"iotlat\":" ENV "}",
        "{\"a\":1,\"iotlat\":" ENV "}",
        "{\"a\":{\"iotlat\":{\"v\":1,\"pub\":9}},\"iotlat\":" ENV ",\"z\":0}",
        "\r\n\t {\n  \"user\": {\"iotlat\": {\"v\":2}},\n"
        "  \"s\": \"he said \\\"iotlat\\\":{\\\"v\\\":1}\",\n"
        "  \"iotlat\" : {\n\t\"t_sent\" : 20 ,\"seq\":3,\"v\":1,\"dev\":2,"
        "\"pub\":1,\"t_intended\":10, \"extra\":{\"k\":[1,{\"v\":9}]},"
        "\"fin\":false\n }\n}\n \t",
        "{\"arr\":[{\"iotlat\":1},\"iotlat\",[],{},[[]]],\"\\u0069otlat\":5,"
        "\"iotlat\":" ENV ",\"z\":\"\\u0041\\\\\\/\\b\\f\\n\\r\\t\"}",
        "{\"lastUpdated\":\"2019-03-14T12:34:56\",\"iotlat\":" ENV "}",
        "{\"lastUpdated\":\"not a date\",\"iotlat\":" ENV "}",
        "{\"iotlat\":" ENV ",\"iotlat\":{\"stale\":true}}",
        "{\"iotlat\":" ENV ",\"n\":[-0,0.5,1E+3,-1e-3,12.2e2,true,false,null]}",
        /* devices means something on fin markers only */
        ("{\"iotlat\":{\"v\":1,\"pub\":1,\"dev\":2,\"seq\":3,\"t_intended\":10,"
         "\"t_sent\":20,\"devices\":5,\"fin\":false}}"),
    };
    (void)state;
    for (size_t i = 0; i < sizeof msgs / sizeof *msgs; i++) {
        il_env e;
        assert_int_equal(decs(msgs[i], &e), 0);
        assert_int_equal(e.pub, 1);
        assert_int_equal(e.dev, 2);
        assert_true(e.seq == 3 && e.t_intended == 10 && e.t_sent == 20);
        assert_int_equal(e.flags, 0);
        assert_int_equal(e.nhops, 0);
        assert_int_equal(e.devices, 0);
    }
}

static int64_t utc(int y, int mo, int d, int h, int mi, int s)
{
    struct tm tm = {0};
    tm.tm_year = y - 1900, tm.tm_mon = mo - 1, tm.tm_mday = d;
    tm.tm_hour = h, tm.tm_min = mi, tm.tm_sec = s;
    return (int64_t)timegm(&tm);
}

static void test_seed(void **state)
{
    const int64_t base = utc(2019, 3, 14, 12, 34, 56) * 1000000;
    static const struct {
        const char *msg;
        int64_t delta; /* from base */
    } cases[] = {
        {"{\"lastUpdated\":\"2019-03-14T12:34:56.123456\",\"x\":1}", 123456},
        {"{\"lastUpdated\":\"2019-03-14T12:34:56.123456Z\"}", 123456},
        {"{\"lastUpdated\":\"2019-03-14T12:34:56.123456+02:00\"}",
         123456 - 7200000000LL},
        {"{\"lastUpdated\":\"2019-03-14T12:34:56-05:30\"}", 19800000000LL},
        {"{\"lastUpdated\":\"2019-03-14 12:34:56.5\"}", 500000},
        {"{\"lastUpdated\":\"2019-03-14T12:34:56.123456789\"}", 123456},
        {"{\"lastUpdated\":\"2019-03-14T12:34:56.000001\"}", 1},
        {" { \"x\" : {\"lastUpdated\":\"bogus\"} , \"lastUpdated\" : "
         "\"2019-03-14T12:34:56\" } ", 0},
        {"{\"lastUpdated\":7,\"lastUpdated\":\"2019-03-14T12:34:56\"}", 0},
    };
    (void)state;
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        il_env e;
        size_t off = 1, bl = 0;
        assert_int_equal(dec(cases[i].msg, strlen(cases[i].msg), &e, &off,
                             &bl), 0);
        assert_int_equal(e.flags, IL_ENV_SEED);
        assert_true(e.t_intended == base + cases[i].delta);
        assert_true(e.t_sent == e.t_intended);
        assert_true(e.pub == 0 && e.dev == 0 && e.seq == 0 && e.nhops == 0);
        assert_int_equal(off, 0);
        assert_int_equal(bl, strlen(cases[i].msg));
    }
    /* The exact example of the brief, with the expected value spelled out
     * as a number checked by hand: 1552566896 s is 2019-03-14 12:34:56. */
    il_env e;
    assert_int_equal(decs("{\"lastUpdated\":\"2019-03-14T12:34:56.123456\","
                          "\"x\":1}", &e), 0);
    assert_true(e.t_intended == 1552566896123456LL);
}

static void test_iso8601(void **state)
{
    char buf[32];
    int64_t t;
    uint64_t x = 88172645463325252ULL;
    const int64_t lo = utc(0, 1, 1, 0, 0, 0) * 1000000;
    const int64_t hi = utc(10000, 1, 1, 0, 0, 0) * 1000000;
    const int64_t day1896 = utc(1896, 1, 1, 0, 0, 0) * 1000000;
    (void)state;
    /* Times over the whole range, checked against gmtime_r. */
    for (int i = 0; i < 200000; i++) {
        int64_t us;
        time_t s;
        struct tm tm;
        char want[64];

        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        if (i < 16) /* the first and last microseconds of the range */
            us = i < 8 ? lo + i : hi - 1 - (i - 8);
        else if (i < 100000) /* every day from 1896 to 2169 */
            us = day1896 + (i - 16) * 86400000000LL +
                 (int64_t)(x % 86400000000ULL);
        else
            us = lo + (int64_t)(x % (uint64_t)(hi - lo));
        s = (time_t)(us >= 0 ? us / 1000000 : (us - 999999) / 1000000);
        gmtime_r(&s, &tm);
        snprintf(want, sizeof want, "%04d-%02d-%02dT%02d:%02d:%02d.%06dZ",
                 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
                 tm.tm_min, tm.tm_sec, (int)(us - (int64_t)s * 1000000));
        assert_int_equal(il_env_format_iso8601(us, buf, 28), 27);
        assert_string_equal(buf, want);
        assert_int_equal(il_env_parse_iso8601(buf, 27, &t), 0);
        assert_true(t == us);
    }
    assert_int_equal(il_env_format_iso8601(-1, buf, sizeof buf), 27);
    assert_string_equal(buf, "1969-12-31T23:59:59.999999Z");
    assert_int_equal(il_env_format_iso8601(0, buf, 27), IL_ENV_ENOSPC);
    assert_int_equal(il_env_format_iso8601(lo - 1, buf, 32), IL_ENV_EMALFORMED);
    assert_int_equal(il_env_format_iso8601(hi, buf, 32), IL_ENV_EMALFORMED);
    assert_int_equal(il_env_format_iso8601(INT64_MIN, buf, 32),
                     IL_ENV_EMALFORMED);
    assert_int_equal(il_env_format_iso8601(INT64_MAX, buf, 32),
                     IL_ENV_EMALFORMED);

    static const struct {
        const char *s;
        int64_t want; /* s since the epoch, or -1 for a rejected text */
    } cases[] = {
        {"2000-02-29T00:00:00", 951782400},
        {"2024-02-29T23:59:59Z", 1709251199},
        {"1900-03-01T00:00:00Z", -2203891200},
        {"2016-12-31T23:59:60Z", 1483228800}, /* leap second */
        {"1970-01-01T00:00:00+00:00", 0},
        {"1970-01-01T00:00:00-23:59", 86340},
        {"1900-02-29T00:00:00", -1},
        {"2023-02-29T00:00:00", -1},
        {"2019-02-30T00:00:00", -1},
        {"2019-04-31T00:00:00", -1},
        {"2019-13-01T00:00:00", -1},
        {"2019-00-01T00:00:00", -1},
        {"2019-01-00T00:00:00", -1},
        {"2019-01-01T24:00:00", -1},
        {"2019-01-01T00:60:00", -1},
        {"2019-01-01T00:00:61", -1},
        {"2019-01-01t00:00:00", -1},
        {"2019-01-01T00:00:00.", -1},
        {"2019-01-01T00:00:00.1234567890", -1},
        {"2019-01-01T00:00:00+2:00", -1},
        {"2019-01-01T00:00:00+24:00", -1},
        {"2019-01-01T00:00:00+01:60", -1},
        {"2019-01-01T00:00:00+0100", -1},
        {"2019-01-01T00:00:00Z ", -1},
        {"2019-01-01T00:00:00ZZ", -1},
        {"2019-01-01", -1},
        {"2019-1-01T00:00:00", -1},
        {"-019-01-01T00:00:00", -1},
        {"2019-01-01T00:00:0x", -1},
        {"", -1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        int rc = il_env_parse_iso8601(cases[i].s, strlen(cases[i].s), &t);
        if (cases[i].want == -1) {
            assert_int_equal(rc, IL_ENV_EMALFORMED);
        } else {
            assert_int_equal(rc, 0);
            assert_true(t == cases[i].want * 1000000);
        }
    }
}

static void test_malformed(void **state)
{
#define E(x) "{\"iotlat\":{" x "}}"
#define OK "\"v\":1,\"pub\":1,\"dev\":2,\"seq\":3,\"t_intended\":10," \
           "\"t_sent\":20"
    static const struct {
        const char *s;
        size_t len; /* 0: strlen */
    } cases[] = {
        {"", 0}, {" \n", 0}, {"{", 0}, {"{}", 0}, {"[]", 0}, {"null", 0},
        {"\"iotlat\"", 0}, {E(""), 0},
        {E("\"pub\":1,\"dev\":2,\"seq\":3,\"t_intended\":10,\"t_sent\":20"), 0},
        {E("\"v\":1,\"dev\":2,\"seq\":3,\"t_intended\":10,\"t_sent\":20"), 0},
        {E("\"v\":1,\"pub\":1,\"seq\":3,\"t_intended\":10,\"t_sent\":20"), 0},
        {E("\"v\":1,\"pub\":1,\"dev\":2,\"t_intended\":10,\"t_sent\":20"), 0},
        {E("\"v\":1,\"pub\":1,\"dev\":2,\"seq\":3,\"t_sent\":20"), 0},
        {E("\"v\":1,\"pub\":1,\"dev\":2,\"seq\":3,\"t_intended\":10"), 0},
        {E(OK ",\"v\":1"), 0},                         /* duplicate field */
        {"{\"iotlat\":{\"v\":2,\"pub\":1,\"dev\":2,\"seq\":3,"
         "\"t_intended\":10,\"t_sent\":20}}", 0},
        {"{\"iotlat\":{\"v\":0,\"pub\":1,\"dev\":2,\"seq\":3,"
         "\"t_intended\":10,\"t_sent\":20}}", 0},
        {"{\"iotlat\":{\"v\":\"1\",\"pub\":1,\"dev\":2,\"seq\":3,"
         "\"t_intended\":10,\"t_sent\":20}}", 0},
        {"{\"iotlat\":{\"v\":1,\"pub\":\"1\",\"dev\":2,\"seq\":3,"
         "\"t_intended\":10,\"t_sent\":20}}", 0},
        {"{\"iotlat\":{\"v\":1,\"pub\":-1,\"dev\":2,\"seq\":3,"
         "\"t_intended\":10,\"t_sent\":20}}", 0},
        {"{\"iotlat\":{\"v\":1,\"pub\":4294967296,\"dev\":2,\"seq\":3,"
         "\"t_intended\":10,\"t_sent\":20}}", 0},
        {"{\"iotlat\":{\"v\":1,\"pub\":1,\"dev\":1e3,\"seq\":3,"
         "\"t_intended\":10,\"t_sent\":20}}", 0},
        {"{\"iotlat\":{\"v\":1,\"pub\":1,\"dev\":2,"
         "\"seq\":18446744073709551616,\"t_intended\":10,\"t_sent\":20}}", 0},
        {"{\"iotlat\":{\"v\":1,\"pub\":1,\"dev\":2,"
         "\"seq\":100000000000000000000,\"t_intended\":10,\"t_sent\":20}}", 0},
        {"{\"iotlat\":{\"v\":1,\"pub\":1,\"dev\":2,\"seq\":3.0,"
         "\"t_intended\":10,\"t_sent\":20}}", 0},
        {"{\"iotlat\":{\"v\":1,\"pub\":1,\"dev\":2,\"seq\":03,"
         "\"t_intended\":10,\"t_sent\":20}}", 0},
        {"{\"iotlat\":{\"v\":1,\"pub\":1,\"dev\":2,\"seq\":-0,"
         "\"t_intended\":10,\"t_sent\":20}}", 0},
        {"{\"iotlat\":{\"v\":1,\"pub\":1,\"dev\":2,\"seq\":3,"
         "\"t_intended\":10,\"t_sent\":9223372036854775808}}", 0},
        {"{\"iotlat\":{\"v\":1,\"pub\":1,\"dev\":2,\"seq\":3,"
         "\"t_intended\":-9223372036854775809,\"t_sent\":20}}", 0},
        {"{\"iotlat\":{\"v\":1,\"pub\":1,\"dev\":2,\"seq\":3,"
         "\"t_intended\":+10,\"t_sent\":20}}", 0},
        {"{\"iotlat\":{\"v\":1,\"pub\":1,\"dev\":2,\"seq\":3,"
         "\"t_intended\":10,\"t_sent\":null}}", 0},
        {E(OK ",\"t_hop\":[1,2,3,4,5,6,7,8,9]"), 0},
        {E(OK ",\"t_hop\":5"), 0},
        {E(OK ",\"t_hop\":[1.5]"), 0},
        {E(OK ",\"t_hop\":[1,]"), 0},
        {E(OK ",\"t_hop\":[,1]"), 0},
        {E(OK ",\"t_hop\":[1"), 0},
        {E(OK ",\"fin\":1"), 0},
        {E(OK ",\"fin\":\"true\""), 0},
        {E(OK ",\"fin\":truex"), 0},
        {E(OK ",\"devices\":-1"), 0},
        {E(OK ",\"devices\":4294967296"), 0},
        {E(OK ","), 0},                                /* trailing comma */
        {E(OK ",\"x\":[1,2}"), 0},
        {E(OK ",\"x\"1"), 0},
        {E(OK ",\"x\""), 0},
        {"{\"iotlat\":5}", 0},
        {"{\"iotlat\":null}", 0},
        {"{\"iotlat\":[" OK "]}", 0},
        {"{\"iotlat\":[" OK "}}", 0},
        {"{\"iotlat\":{" OK "}} x", 0},
        {"{\"iotlat\":{" OK "}}{}", 0},
        {"{\"iotlat\":{" OK "}}\0", sizeof("{\"iotlat\":{" OK "}}")},
        {"{\"iotlat\":{" OK "},}", 0},
        {"{\"iotlat\":{" OK "} \"a\":1}", 0},
        {"{\"iotlat\":{" OK "},\"a\":}", 0},
        {"{\"iotlat\":{" OK "},\"a\" 1}", 0},
        {"{\"iotlat\":{" OK "},a:1}", 0},
        {"{\"iotlat\":{" OK "},\"a\":\"unterminated}", 0},
        {"{\"iotlat\":{" OK "},\"a\":\"bad \\x escape\"}", 0},
        {"{\"iotlat\":{" OK "},\"a\":\"bad \\u12G4\"}", 0},
        {"{\"iotlat\":{" OK "},\"a\":\"\\u123\"}", 0},
        {"{\"iotlat\":{" OK "},\"a\":\"tab\there\"}", 0},
        {"{\"iotlat\":{" OK "},\"a\":-}", 0},
        {"{\"iotlat\":{" OK "},\"a\":1.}", 0},
        {"{\"iotlat\":{" OK "},\"a\":1e}", 0},
        {"{\"iotlat\":{" OK "},\"a\":.5}", 0},
        {"{\"iotlat\":{" OK "},\"a\":+1}", 0},
        {"{\"iotlat\":{" OK "},\"a\":01}", 0},
        {"{\"iotlat\":{" OK "},\"a\":tru}", 0},
        {"{\"iotlat\":{" OK "},\"a\":nul}", 0},
        {"{\"iotlat\":{" OK "},\"a\":[1 2]}", 0},
        {"{\"iotlat\":{" OK "},\"a\":{\"b\"}}", 0},
        {"{\"iotlat\":{" OK "},\"a\":{1:2}}", 0},
        {"{\"x\":1}", 0},
        {"{\"lastUpdated\":\"2019-02-30T12:34:56.123456\"}", 0},
        {"{\"lastUpdated\":\"2019-03-14T25:34:56\"}", 0},
        {"{\"lastUpdated\":\"2019-03-14T12:34:56+02\"}", 0},
        {"{\"lastUpdated\":\"2019\\u002d03-14T12:34:56\"}", 0},
        {"{\"lastUpdated\":1552566896}", 0},
        {"IL\x02", 0}, /* wrong binary version: read as JSON, which it is not */
        {"garbage", 0},
    };
    il_env e;

    (void)state;
    assert_true(sizeof cases / sizeof *cases >= 30);
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        size_t len = cases[i].len ? cases[i].len : strlen(cases[i].s);
        if (dec(cases[i].s, len, &e, NULL, NULL) != IL_ENV_EMALFORMED)
            fail_msg("case %zu accepted: %s", i, cases[i].s);
    }

    /* Deep nesting: as the whole message, and inside a user value, where
     * 64 levels are fine and 10000 are refused without recursing. */
    char *deep = malloc(100000);
    memset(deep, '[', 10000);
    assert_int_equal(dec(deep, 10000, &e, NULL, NULL), IL_ENV_EMALFORMED);
    for (int depth = 64; depth <= 10000; depth += 10000 - 64) {
        size_t n = (size_t)sprintf(deep, "{\"a\":");
        for (int i = 0; i < depth; i++) { /* objects and arrays in turn */
            if (i % 2)
                deep[n++] = '[';
            else
                n += (size_t)sprintf(deep + n, "{\"k\":");
        }
        for (int i = depth - 1; i >= 0; i--)
            deep[n++] = i % 2 ? ']' : '}';
        n += (size_t)sprintf(deep + n, ",\"iotlat\":{" OK "}}");
        assert_int_equal(dec(deep, n, &e, NULL, NULL),
                         depth == 64 ? 0 : IL_ENV_EMALFORMED);
    }
    for (int depth = 64; depth <= 65; depth++) { /* arrays only */
        size_t n = (size_t)sprintf(deep, "{\"a\":");
        memset(deep + n, '[', (size_t)depth);
        memset(deep + n + depth, ']', (size_t)depth);
        n += 2 * (size_t)depth;
        n += (size_t)sprintf(deep + n, ",\"iotlat\":{" OK "}}");
        assert_int_equal(dec(deep, n, &e, NULL, NULL),
                         depth == 64 ? 0 : IL_ENV_EMALFORMED);
    }
    free(deep);

    /* Binary headers that break one rule each. */
    uint8_t msg[BUF];
    char payload[72] = "a payload long enough for eight more hop stamps";
    il_env s = sample(1);
    int len = il_env_encode(IL_ENC_BINARY, &s, payload, sizeof payload, msg,
                            BUF);
    assert_true(len > 0);
    assert_int_equal(dec(msg, (size_t)len, &e, NULL, NULL), 0);
    for (int rule = 0; rule < 7; rule++) {
        uint8_t m[BUF];
        size_t n = (size_t)len;
        memcpy(m, msg, n);
        switch (rule) {
        case 0: m[4] = 9; break;              /* too many hops, long enough */
        case 1: m[4] = 8; n = IL_ENV_BIN_HEADER + 8 * 8 - 1; break;
        case 2: m[5] = 1; break;              /* devices without fin */
        case 3: m[7] = 1; break;
        case 4: m[3] = 0x80; break;           /* unknown flag */
        case 5: m[3] = 0x02; break;
        case 6: n = IL_ENV_BIN_HEADER - 1; break;
        }
        assert_int_equal(dec(m, n, &e, NULL, NULL), IL_ENV_EMALFORMED);
    }
}

/* A few valid messages of each encoding to cut up and mutate. */
static size_t corpus(int k, uint8_t *msg)
{
    static const char *json[] = {
        "{\"iotlat\":{\"v\":1,\"pub\":7,\"dev\":42,\"seq\":17,"
        "\"t_intended\":1700000000000000,\"t_sent\":1700000000000012,"
        "\"t_hop\":[1700000000000100,-5],\"fin\":true,\"devices\":3},"
        "\"Metro\":{\"CheckIn\":{\"Token\":\"a1\",\"Station\":12}}}",
        " {\"a\" : [1, 2.5e-3, {\"b\":\"c\\\"\\u00e9\"}], \"iotlat\": {\"seq\":"
        "18446744073709551615,\"v\":1,\"pub\":4294967295,\"dev\":0,"
        "\"t_intended\":-9223372036854775808,\"t_sent\":9223372036854775807,"
        "\"x\":{\"y\":[null,true,false]}} ,\"z\":{}}\n",
        "{\"lastUpdated\":\"2019-03-14T12:34:56.123456+02:00\",\"x\":[1]}",
    };
    if (k < 3) {
        memcpy(msg, json[k], strlen(json[k]));
        return strlen(json[k]);
    }
    il_env e = sample(k == 3 ? 2 : 3);
    return (size_t)il_env_encode(IL_ENC_BINARY, &e, "payload", k == 3 ? 7 : 0,
                                 msg, BUF);
}
#define NCORPUS 5

static void test_truncation(void **state)
{
    (void)state;
    for (int k = 0; k < NCORPUS; k++) {
        uint8_t msg[BUF], out[BUF];
        il_env e;
        size_t len = corpus(k, msg);
        assert_int_equal(dec(msg, len, &e, NULL, NULL), 0);
        for (size_t n = 0; n < len; n++) {
            int rc = dec(msg, n, &e, NULL, NULL);
            assert_true(rc == 0 || rc == IL_ENV_EMALFORMED);
            /* Only the trailing whitespace of JSON or the binary payload
             * may be cut off and still leave a valid message. */
            if (rc == 0)
                assert_true(k >= 3 ? n >= len - (k == 3 ? 7 : 0)
                                   : msg[n] == '\n');
            rc = hop(msg, n, 1, NULL, 0, out, sizeof out);
            assert_true(rc > 0 || rc == IL_ENV_EMALFORMED);
        }
    }
}

static uint64_t rng = 0x9E3779B97F4A7C15ULL;

static uint64_t next(void)
{
    rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
    return rng;
}

/* Random edits of valid messages, biased towards JSON's structural
 * characters, must never crash; whatever still decodes must survive a hop
 * stamp and a re-encoding with all its fields intact. */
static void test_mutations(void **state)
{
    static const char interesting[] = "{}[]\":,\\ 0123456789-+.eEtrufalsn\n";
    int ok = 0;
    (void)state;
    for (int iter = 0; iter < 100000; iter++) {
        uint8_t msg[BUF], out[BUF];
        size_t len = corpus((int)(next() % NCORPUS), msg);
        il_env e, h;
        int edits = 1 + (int)(next() % 4);

        for (int j = 0; j < edits && len > 0; j++) {
            size_t at = next() % len;
            switch (next() % 5) {
            case 0: msg[at] ^= (uint8_t)(1u << (next() % 8)); break;
            case 1: msg[at] = (uint8_t)interesting[next() %
                                                   (sizeof interesting - 1)];
                    break;
            case 2: memmove(msg + at, msg + at + 1, len - at - 1), len--;
                    break;
            case 3: memmove(msg + at + 1, msg + at, len - at), len++;
                    msg[at] = (uint8_t)interesting[next() %
                                                   (sizeof interesting - 1)];
                    break;
            case 4: len = at; break;
            }
        }
        if (dec(msg, len, &e, NULL, NULL) != 0) {
            assert_int_equal(hop(msg, len, 5, NULL, 0, out, BUF),
                             IL_ENV_EMALFORMED);
            continue;
        }
        ok++;
        assert_true(e.nhops <= IL_ENV_MAX_HOPS);
        int n = hop(msg, len, 5, NULL, 0, out, BUF);
        if ((e.flags & IL_ENV_SEED) || e.nhops == IL_ENV_MAX_HOPS) {
            assert_int_equal(n, IL_ENV_EMALFORMED);
            continue;
        }
        assert_true(n > 0);
        assert_int_equal(dec(out, (size_t)n, &h, NULL, NULL), 0);
        e.t_hop[e.nhops++] = 5;
        assert_env_equal(&e, &h);
    }
    print_message("%d of 100000 mutants still decoded\n", ok);
}

#define INNER(x) "{\"v\":1,\"pub\":1,\"dev\":2,\"seq\":3,\"t_intended\":10," \
    "\"t_sent\":20" x "}"
#define ENVJ(x) "{\"iotlat\":" INNER(x)
#define HOP30 ",\"t_hop\":[30]"

static void test_add_hop_json(void **state)
{
    static const struct {
        const char *in, *new_body, *want;
    } cases[] = {
        /* The envelope first, last, in the middle, alone. */
        {ENVJ("") ",\"a\" : [1,2] ,\"b\":\"x\\\"}\"}\n", NULL,
         ENVJ(HOP30) ",\"a\" : [1,2] ,\"b\":\"x\\\"}\"}\n"},
        {"{ \"a\":1 , \"iotlat\":{\"t_sent\":20,\"seq\":3,\"v\":1,\"dev\":2,"
         "\"pub\":1,\"t_intended\":10,\"t_hop\":[] } , \"b\":2 }", NULL,
         ENVJ(HOP30) ", \"a\":1 , \"b\":2 }"},
        {"{\"a\":{\"iotlat\":1},\n\"iotlat\":" INNER("") "}", NULL,
         ENVJ(HOP30) ",\"a\":{\"iotlat\":1}}"},
        {"{\"iotlat\":" INNER(",\"t_hop\":[1,2],\"fin\":true,\"devices\":5")
         "}", NULL,
         ENVJ(",\"t_hop\":[1,2,30],\"fin\":true,\"devices\":5") "}"},
        /* Unknown envelope keys have nowhere to go; a second "iotlat" is
         * user data. */
        {"{\"iotlat\":" INNER(",\"future\":[1]") "}", NULL, ENVJ(HOP30) "}"},
        {ENVJ("") ",\"iotlat\":{\"old\":1}}", NULL,
         ENVJ(HOP30) ",\"iotlat\":{\"old\":1}}"},
        /* A new body replaces the user keys. */
        {ENVJ("") ",\"a\":1}", "{\"x\":2}", ENVJ(HOP30) ",\"x\":2}"},
        {ENVJ("") ",\"a\":1}", " {\n}", ENVJ(HOP30) "}"},
        {ENVJ("") ",\"a\":1}", "", ENVJ(HOP30) "}"},
        {ENVJ("") "}", "{\"x\":{\"iotlat\":2}}",
         ENVJ(HOP30) ",\"x\":{\"iotlat\":2}}"},
    };
    uint8_t out[BUF];
    il_env e;

    (void)state;
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        const char *nb = cases[i].new_body;
        int n = hop(cases[i].in, strlen(cases[i].in), 30, nb,
                    nb ? strlen(nb) : 0, out, sizeof out);
        assert_int_equal(n, strlen(cases[i].want));
        assert_memory_equal(out, cases[i].want, (size_t)n);
        assert_int_equal(dec(out, (size_t)n, &e, NULL, NULL), 0);
        assert_int_equal(e.t_hop[e.nhops - 1], 30);
    }

    /* Hop stamps accumulate up to IL_ENV_MAX_HOPS and not beyond. */
    uint8_t msg[BUF];
    const char *start = ENVJ("") ",\"k\":\"v\"}";
    size_t len = strlen(start);
    memcpy(msg, start, len);
    for (int i = 0; i < IL_ENV_MAX_HOPS; i++) {
        int n = hop(msg, len, 100 + i, NULL, 0, out, sizeof out);
        assert_true(n > 0);
        memcpy(msg, out, (size_t)n);
        len = (size_t)n;
        assert_int_equal(dec(msg, len, &e, NULL, NULL), 0);
        assert_int_equal(e.nhops, i + 1);
        assert_int_equal(e.t_hop[i], 100 + i);
        assert_memory_equal(msg + len - 9, ",\"k\":\"v\"}", 9);
    }
    assert_int_equal(hop(msg, len, 1, NULL, 0, out, BUF), IL_ENV_EMALFORMED);

    /* Bodies that are not objects, and the seed format, are refused. */
    assert_int_equal(hop(start, strlen(start), 1, "[1]", 3, out, BUF),
                     IL_ENV_EMALFORMED);
    start = "{\"lastUpdated\":\"2019-03-14T12:34:56\"}";
    assert_int_equal(hop(start, strlen(start), 1, NULL, 0, out, BUF),
                     IL_ENV_EMALFORMED);
    assert_int_equal(hop(start, strlen(start), 1, "{}", 2, out, BUF),
                     IL_ENV_EMALFORMED);
    assert_int_equal(il_env_add_hop(NULL, 0, 1, NULL, 0, out, BUF),
                     IL_ENV_EMALFORMED);
}

static void test_add_hop_binary(void **state)
{
    uint8_t msg[BUF], out[BUF];
    size_t off = 0, bl = 0, len;
    il_env in = sample(3), e;
    (void)state;
    len = (size_t)il_env_encode(IL_ENC_BINARY, &in, "payload", 7, msg, BUF);
    for (int i = 0; i < IL_ENV_MAX_HOPS; i++) {
        int n = hop(msg, len, -100 - i, NULL, 0, out, sizeof out);
        assert_int_equal(n, len + 8);
        memcpy(msg, out, (size_t)n);
        len = (size_t)n;
        assert_int_equal(dec(msg, len, &e, &off, &bl), 0);
        in.t_hop[in.nhops++] = -100 - i;
        assert_env_equal(&in, &e);
        assert_int_equal(bl, 7);
        assert_memory_equal(msg + off, "payload", 7);
    }
    assert_int_equal(hop(msg, len, 1, NULL, 0, out, BUF), IL_ENV_EMALFORMED);

    in = sample(0);
    len = (size_t)il_env_encode(IL_ENC_BINARY, &in, "payload", 7, msg, BUF);
    int n = hop(msg, len, 9, "NEW", 3, out, BUF);
    assert_int_equal(n, IL_ENV_BIN_HEADER + 8 + 3);
    assert_int_equal(dec(out, (size_t)n, &e, &off, &bl), 0);
    assert_int_equal(e.nhops, 1);
    assert_int_equal(e.t_hop[0], 9);
    assert_int_equal(bl, 3);
    assert_memory_equal(out + off, "NEW", 3);
    n = hop(msg, len, 9, "", 0, out, BUF);
    assert_int_equal(n, IL_ENV_BIN_HEADER + 8);
}

/* Every capacity short of the needed one gives IL_ENV_ENOSPC, and the exact
 * one works; outputs are exactly sized heap buffers so that ASan would see
 * a write past the end. */
static void test_enospc(void **state)
{
    il_env e = sample(4);
    const char *body = "{\"Metro\":{\"CheckIn\":{\"Token\":\"a1\"}}}";
    const char *json = ENVJ("") ",\"a\":[1,2,3]}";
    uint8_t bin[BUF];
    int binlen = il_env_encode(IL_ENC_BINARY, &e, body, strlen(body), bin,
                               BUF);
    (void)state;
    assert_true(binlen > 0);
    for (int kind = 0; kind < 4; kind++) {
        uint8_t big[BUF];
        int need = 0, rc = 0;
        switch (kind) {
        case 0: need = il_env_encode(IL_ENC_JSON, &e, body, strlen(body),
                                     big, BUF); break;
        case 1: need = il_env_encode(IL_ENC_BINARY, &e, body, strlen(body),
                                     big, BUF); break;
        case 2: need = il_env_add_hop((const uint8_t *)json, strlen(json), 5,
                                      NULL, 0, big, BUF); break;
        case 3: need = il_env_add_hop(bin, (size_t)binlen, 5, NULL, 0, big,
                                      BUF); break;
        }
        assert_true(need > 0);
        for (int cap = 0; cap <= need; cap++) {
            uint8_t *out = malloc(cap ? (size_t)cap : 1);
            switch (kind) {
            case 0: rc = il_env_encode(IL_ENC_JSON, &e, body, strlen(body),
                                       out, (size_t)cap); break;
            case 1: rc = il_env_encode(IL_ENC_BINARY, &e, body, strlen(body),
                                       out, (size_t)cap); break;
            case 2: rc = il_env_add_hop((const uint8_t *)json, strlen(json),
                                        5, NULL, 0, out, (size_t)cap); break;
            case 3: rc = il_env_add_hop(bin, (size_t)binlen, 5, NULL, 0, out,
                                        (size_t)cap); break;
            }
            assert_int_equal(rc, cap < need ? IL_ENV_ENOSPC : need);
            if (rc > 0)
                assert_memory_equal(out, big, (size_t)rc);
            free(out);
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_json_roundtrip),
        cmocka_unit_test(test_json_encode_errors),
        cmocka_unit_test(test_binary_roundtrip),
        cmocka_unit_test(test_envelope_position),
        cmocka_unit_test(test_seed),
        cmocka_unit_test(test_iso8601),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_truncation),
        cmocka_unit_test(test_mutations),
        cmocka_unit_test(test_add_hop_json),
        cmocka_unit_test(test_add_hop_binary),
        cmocka_unit_test(test_enospc),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
