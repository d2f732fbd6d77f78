/*
 * test_histogram.c - unit tests for the log-linear latency histogram.
 *
 * The histogram is the source of every number iotlat reports, so these tests
 * hold it to a reference: percentiles are compared against a sorted copy of
 * the same samples, merging against a single histogram that saw both
 * streams, and the wire format against truncation, every single-bit flip and
 * hand-built blobs that carry a valid checksum but a corrupt body.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "histogram.h"

/* ---- helpers ---------------------------------------------------------- */

/* splitmix64: a fixed, platform-independent stream for reproducible data. */
static uint64_t rng_next(uint64_t *s)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static double rng_unit(uint64_t *s) { return (double)(rng_next(s) >> 11) / 9007199254740992.0; }

/* Log-uniform between lo and hi microseconds. */
static int64_t rng_loguniform(uint64_t *s, double lo, double hi)
{
    int64_t v = llround(exp(log(lo) + rng_unit(s) * (log(hi) - log(lo))));
    return v < (int64_t)lo ? (int64_t)lo : v;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static il_hist *hist_new(void)
{
    il_hist *h = malloc(sizeof *h);
    assert_non_null(h);
    il_hist_init(h);
    return h;
}

static void assert_empty(const il_hist *h)
{
    assert_int_equal(h->total, 0);
    assert_true(h->min == INT64_MAX);
    assert_int_equal(h->max, 0);
    assert_true(h->sum == 0.0);
    assert_int_equal(h->negative, 0);
    assert_int_equal(h->min_negative, 0);
    assert_int_equal(h->overflow, 0);
    for (size_t i = 0; i < IL_HIST_COUNTS; i++)
        if (h->counts[i])
            fail_msg("counts[%zu] = %llu", i, (unsigned long long)h->counts[i]);
}

static void assert_same(const il_hist *a, const il_hist *b)
{
    assert_int_equal(a->total, b->total);
    assert_true(a->min == b->min);
    assert_true(a->max == b->max);
    assert_true(a->sum == b->sum);
    assert_int_equal(a->negative, b->negative);
    assert_true(a->min_negative == b->min_negative);
    assert_int_equal(a->overflow, b->overflow);
    assert_memory_equal(a->counts, b->counts, sizeof a->counts);
}

/* Encodes into a fresh heap buffer of exactly the needed size. */
static uint8_t *encode(const il_hist *h, size_t *len)
{
    size_t n = il_hist_encode(h, NULL, 0);
    assert_true(n > 0 && n <= il_hist_encode_bound());
    uint8_t *buf = malloc(n);
    assert_non_null(buf);
    assert_int_equal(il_hist_encode(h, buf, n), n);
    *len = n;
    return buf;
}

static void assert_roundtrip(const il_hist *h)
{
    size_t n;
    uint8_t *buf = encode(h, &n);
    il_hist *d = hist_new();
    il_hist_record(d, 77); /* decode must overwrite, not add */
    assert_int_equal(il_hist_decode(d, buf, n), 0);
    assert_same(h, d);
    free(d);
    free(buf);
}

/* A second, bitwise CRC-32 so the tests can forge blobs with valid checksums. */
static uint32_t test_crc32(const uint8_t *p, size_t n)
{
    uint32_t c = 0xFFFFFFFFu;
    for (size_t i = 0; i < n; i++) {
        c ^= p[i];
        for (int k = 0; k < 8; k++)
            c = (c >> 1) ^ (0xEDB88320u & (0 - (c & 1)));
    }
    return ~c;
}

static void reseal(uint8_t *buf, size_t len)
{
    uint32_t c = test_crc32(buf, len - 4);
    for (int i = 0; i < 4; i++)
        buf[len - 4 + i] = (uint8_t)(c >> (8 * i));
}

/* ---- geometry --------------------------------------------------------- */

static void check_geometry(int64_t v)
{
    int64_t lo = il_hist_lowest_equivalent(v), hi = il_hist_highest_equivalent(v);
    size_t idx = il_hist_index_of(v);
    assert_true(lo <= v && v <= hi);
    assert_true(idx < IL_HIST_COUNTS);
    assert_true(il_hist_value_at_index(idx) == lo);
    assert_int_equal(il_hist_index_of(lo), idx);
    assert_int_equal(il_hist_index_of(hi), idx);
    if (lo > 0)
        assert_int_equal(il_hist_index_of(lo - 1), idx - 1);
    if (hi < IL_HIST_HIGHEST) /* above it everything shares the top slot */
        assert_int_equal(il_hist_index_of(hi + 1), idx + 1);
    /* 3 significant digits: a slot is never wider than 1/1000 of its values. */
    if (v >= 1000)
        assert_true((double)(hi - lo + 1) / (double)v <= 1.0 / 1000.0);
    if (v < IL_HIST_SUB_BUCKETS)
        assert_true(lo == v && hi == v);
}

static void test_geometry(void **state)
{
    (void)state;
    for (int64_t v = 0; v < 10000; v++)
        check_geometry(v);
    for (int k = 11; k < 32; k++)
        for (int64_t d = -2; d <= 2; d++)
            check_geometry(((int64_t)1 << k) + d);
    for (double v = 10000; v < (double)IL_HIST_HIGHEST; v *= 1.0007)
        check_geometry((int64_t)v);
    check_geometry(IL_HIST_HIGHEST);

    /* Every reachable index maps back to itself, and indices are in value
     * order with no gaps.  Values above the range are clamped into the top
     * slot, so the counters past it (up to 2^32 - 1) are never used. */
    size_t top = il_hist_index_of(IL_HIST_HIGHEST);
    assert_true(top < IL_HIST_COUNTS);
    assert_true(IL_HIST_COUNTS - top < IL_HIST_SUB_HALF);
    for (size_t i = 0; i < IL_HIST_COUNTS; i++) {
        int64_t v = il_hist_value_at_index(i);
        assert_int_equal(il_hist_index_of(v), i <= top ? i : top);
        if (i > 0 && i <= top)
            assert_true(il_hist_highest_equivalent(il_hist_value_at_index(i - 1)) + 1 == v);
    }
    assert_true(il_hist_value_at_index(IL_HIST_COUNTS - 1) + (1 << 21) - 1 == (int64_t)UINT32_MAX);
    assert_int_equal(il_hist_index_of(INT64_MAX), il_hist_index_of(IL_HIST_HIGHEST));
    assert_int_equal(il_hist_index_of(-5), 0);
    assert_true(il_hist_value_at_index(IL_HIST_COUNTS + 5) == il_hist_value_at_index(IL_HIST_COUNTS - 1));
}

/* ---- recording and percentiles ---------------------------------------- */

static void test_empty(void **state)
{
    (void)state;
    il_hist *h = hist_new();
    assert_empty(h);
    assert_int_equal(il_hist_percentile(h, 50), 0);
    assert_int_equal(il_hist_percentile(h, 100), 0);
    assert_true(il_hist_mean(h) == 0.0);
    il_hist_record_n(h, 123, 0); /* zero occurrences change nothing */
    il_hist_record_n(h, -123, 0);
    assert_empty(h);
    free(h);
}

static void test_percentiles_random(void **state)
{
    (void)state;
    enum { N = 200000 };
    int64_t *v = malloc(N * sizeof *v);
    assert_non_null(v);
    il_hist *h = hist_new();
    uint64_t seed = 42;
    double sum = 0;
    for (int i = 0; i < N; i++) {
        v[i] = rng_loguniform(&seed, 1, 1e7);
        sum += (double)v[i];
        il_hist_record(h, v[i]);
    }
    qsort(v, N, sizeof *v, cmp_i64);

    assert_int_equal(h->total, N);
    assert_true(h->min == v[0]);
    assert_true(h->max == v[N - 1]);
    assert_true(fabs(il_hist_mean(h) - sum / N) <= 1e-9 * (sum / N));

    static const double ps[] = {0, 1, 50, 90, 99, 99.9, 99.99, 100};
    for (size_t k = 0; k < sizeof ps / sizeof ps[0]; k++) {
        double r = ceil(ps[k] / 100.0 * N);
        size_t rank = r < 1 ? 1 : (size_t)r;
        int64_t want = v[rank - 1], got = il_hist_percentile(h, ps[k]);
        double err = fabs((double)(got - want)) / (double)want;
        if (err > 1.0 / 1000.0)
            fail_msg("p%g: got %lld want %lld", ps[k], (long long)got, (long long)want);
    }
    assert_true(il_hist_percentile(h, 0) == v[0]);
    assert_true(il_hist_percentile(h, 100) == v[N - 1]);
    assert_true(il_hist_percentile(h, -3) == v[0]);
    assert_true(il_hist_percentile(h, 250) == v[N - 1]);
    assert_true(il_hist_percentile(h, NAN) == v[0]);
    free(h);
    free(v);
}

static void test_single_value(void **state)
{
    (void)state;
    il_hist *h = hist_new();
    il_hist_record(h, 123457);
    /* The slot is wider than one, but clamping to [min, max] is exact. */
    assert_true(il_hist_percentile(h, 0) == 123457);
    assert_true(il_hist_percentile(h, 50) == 123457);
    assert_true(il_hist_percentile(h, 100) == 123457);
    assert_true(il_hist_mean(h) == 123457.0);
    free(h);
}

static void test_zero_and_negative(void **state)
{
    (void)state;
    il_hist *h = hist_new();
    il_hist_record(h, 0);
    il_hist_record(h, 0);
    il_hist_record(h, -5);
    il_hist_record(h, -300);
    il_hist_record_n(h, -7, 10);
    assert_int_equal(h->total, 2);
    assert_int_equal(h->counts[0], 2);
    assert_int_equal(h->min, 0);
    assert_int_equal(h->max, 0);
    assert_int_equal(h->negative, 12);
    assert_true(h->min_negative == -300);
    assert_true(h->sum == 0.0);
    assert_int_equal(il_hist_percentile(h, 50), 0);

    /* Negatives only: the distribution stays empty. */
    il_hist *n = hist_new();
    il_hist_record(n, -1);
    assert_int_equal(n->total, 0);
    assert_true(n->min == INT64_MAX);
    assert_int_equal(il_hist_percentile(n, 99), 0);
    assert_true(il_hist_mean(n) == 0.0);
    free(n);
    free(h);
}

static void test_overflow(void **state)
{
    (void)state;
    il_hist *h = hist_new();
    int64_t huge = IL_HIST_HIGHEST * 10;
    il_hist_record(h, 1000);
    il_hist_record(h, huge);
    il_hist_record(h, IL_HIST_HIGHEST + 1);
    il_hist_record(h, IL_HIST_HIGHEST); /* at the limit: not an overflow */
    assert_int_equal(h->total, 4);
    assert_int_equal(h->overflow, 2);
    assert_true(h->max == huge);
    assert_int_equal(h->counts[il_hist_index_of(IL_HIST_HIGHEST)], 3);
    assert_true(il_hist_percentile(h, 100) == huge);
    int64_t p50 = il_hist_percentile(h, 50);
    assert_true(p50 >= IL_HIST_HIGHEST && p50 <= huge);
    assert_true(h->sum == 1000.0 + (double)huge + (double)(IL_HIST_HIGHEST + 1) +
                              (double)IL_HIST_HIGHEST);
    free(h);
}

/* ---- merging ---------------------------------------------------------- */

static void fill_stream(il_hist *a, il_hist *both, uint64_t seed, int n)
{
    for (int i = 0; i < n; i++) {
        int64_t v = rng_loguniform(&seed, 1, 1e7);
        uint64_t r = rng_next(&seed) % 100;
        if (r == 0)
            v = -v; /* a little clock skew */
        else if (r == 1)
            v = IL_HIST_HIGHEST + v; /* and a few stragglers past the range */
        il_hist_record(a, v);
        il_hist_record(both, v);
    }
}

static void test_merge(void **state)
{
    (void)state;
    il_hist *a = hist_new(), *b = hist_new(), *both = hist_new(), *m = hist_new();
    fill_stream(a, both, 1, 50000);
    fill_stream(b, both, 2, 30000);

    /* Integer microseconds sum exactly in a double, so even `sum` matches. */
    il_hist_merge(m, a);
    il_hist_merge(m, b);
    assert_same(m, both);
    static const double ps[] = {0, 1, 50, 90, 99, 99.9, 99.99, 100};
    for (size_t k = 0; k < sizeof ps / sizeof ps[0]; k++)
        assert_true(il_hist_percentile(m, ps[k]) == il_hist_percentile(both, ps[k]));
    assert_true(il_hist_mean(m) == il_hist_mean(both));

    /* Merging an empty histogram is the identity, in either direction. */
    il_hist *e = hist_new();
    il_hist_merge(a, e);
    il_hist_merge(e, b);
    assert_same(e, b);
    il_hist_init(e);
    il_hist_merge(m, e);
    assert_same(m, both);
    free(a);
    free(b);
    free(both);
    free(m);
    free(e);
}

/* ---- serialization ---------------------------------------------------- */

static void test_crc_is_ieee(void **state)
{
    (void)state;
    assert_int_equal(test_crc32((const uint8_t *)"123456789", 9), 0xCBF43926u);
    il_hist *h = hist_new();
    il_hist_record(h, 4242);
    size_t n;
    uint8_t *buf = encode(h, &n);
    uint32_t c = test_crc32(buf, n - 4);
    assert_memory_equal(buf, "IHG\x01", 4);
    assert_int_equal(buf[n - 4] | buf[n - 3] << 8 | buf[n - 2] << 16 | (uint32_t)buf[n - 1] << 24, c);
    free(buf);
    free(h);
}

static void test_roundtrip(void **state)
{
    (void)state;
    il_hist *h = hist_new();
    assert_roundtrip(h); /* empty */

    il_hist_record(h, 5000);
    assert_roundtrip(h); /* one value */

    il_hist_init(h);
    il_hist_record(h, 0);
    il_hist_record(h, IL_HIST_HIGHEST); /* first and last counter */
    assert_roundtrip(h);

    il_hist_init(h);
    il_hist_record(h, -9);
    assert_roundtrip(h); /* negatives only */

    il_hist *both = hist_new();
    fill_stream(h, both, 7, 100000); /* random, with negatives and overflow */
    assert_true(h->negative > 0 && h->overflow > 0);
    assert_roundtrip(h);

    /* Counters at 2^63 and above need the 65-bit zig-zag token. */
    il_hist_init(h);
    il_hist_record_n(h, 10, UINT64_MAX - 5);
    il_hist_record_n(h, 20, 3);
    assert_roundtrip(h);
    il_hist_init(h);
    il_hist_record_n(h, 2000000, (uint64_t)1 << 63);
    assert_roundtrip(h);

    /* Every counter non-zero: the densest histogram stays within the bound. */
    il_hist_init(h);
    for (size_t i = 0; i < IL_HIST_COUNTS; i++)
        il_hist_record_n(h, il_hist_value_at_index(i), ((uint64_t)1 << 48) + i);
    assert_roundtrip(h);
    free(both);
    free(h);
}

static void test_encode_small_buffer(void **state)
{
    (void)state;
    il_hist *h = hist_new();
    uint64_t seed = 3;
    for (int i = 0; i < 1000; i++)
        il_hist_record(h, rng_loguniform(&seed, 100, 1e6));
    size_t need = il_hist_encode(h, NULL, 0);
    uint8_t *buf = malloc(need + 16);
    assert_non_null(buf);
    for (size_t cap = 0; cap < need; cap += 1 + cap / 4) {
        memset(buf, 0xAA, need + 16);
        assert_int_equal(il_hist_encode(h, buf, cap), need);
        for (size_t i = 0; i < need + 16; i++)
            assert_int_equal(buf[i], 0xAA); /* nothing written */
    }
    memset(buf, 0xAA, need + 16);
    assert_int_equal(il_hist_encode(h, buf, need + 16), need);
    assert_int_equal(buf[need], 0xAA);
    free(buf);
    free(h);
}

static void test_encoded_size(void **state)
{
    (void)state;
    il_hist *h = hist_new();
    uint64_t seed = 11;
    for (int i = 0; i < 10000; i++)
        il_hist_record(h, 1000 + (int64_t)(rng_next(&seed) % 9001));
    size_t n = il_hist_encode(h, NULL, 0);
    print_message("      10k values in 1..10 ms encode to %zu bytes\n", n);
    assert_true(n < 4096);
    il_hist_init(h);
    assert_true(il_hist_encode(h, NULL, 0) < 64);
    free(h);
}

/* A histogram with some spread, negatives and overflow, as a blob. */
static uint8_t *sample_blob(size_t *len)
{
    il_hist *h = hist_new(), *both = hist_new();
    fill_stream(h, both, 5, 300);
    uint8_t *buf = encode(h, len);
    free(h);
    free(both);
    return buf;
}

static void test_decode_truncated(void **state)
{
    (void)state;
    size_t n;
    uint8_t *blob = sample_blob(&n);
    il_hist *h = hist_new();
    assert_int_equal(il_hist_decode(h, blob, n), 0);
    for (size_t len = 0; len < n; len++) {
        /* A fresh allocation of exactly `len` bytes lets ASan catch overreads. */
        uint8_t *t = malloc(len ? len : 1);
        assert_non_null(t);
        memcpy(t, blob, len);
        il_hist_record(h, 1);
        assert_int_equal(il_hist_decode(h, t, len), IL_HIST_EFORMAT);
        assert_empty(h);
        free(t);
    }
    assert_int_equal(il_hist_decode(h, NULL, 0), IL_HIST_EFORMAT);
    free(h);
    free(blob);
}

/*
 * The CRC alone rejects the truncations above, so the parser never sees them.
 * Here every prefix of the body gets a fresh, valid CRC: the parser itself
 * must then notice the cut (a split varint, or counters short of the total)
 * without reading past the end of the exact-size allocation.
 */
static void test_decode_truncated_resealed(void **state)
{
    (void)state;
    size_t n;
    uint8_t *blob = sample_blob(&n);
    il_hist *h = hist_new();
    for (size_t body = 0; body < n - 4; body++) {
        uint8_t *t = malloc(body + 4);
        assert_non_null(t);
        memcpy(t, blob, body);
        reseal(t, body + 4);
        assert_int_equal(il_hist_decode(h, t, body + 4), IL_HIST_EFORMAT);
        assert_empty(h);
        free(t);
    }
    free(h);
    free(blob);
}

static void test_decode_bitflips(void **state)
{
    (void)state;
    size_t n;
    uint8_t *blob = sample_blob(&n);
    il_hist *h = hist_new();
    for (size_t i = 0; i < n; i++) {
        for (int bit = 0; bit < 8; bit++) {
            blob[i] ^= (uint8_t)(1u << bit);
            il_hist_record(h, 1);
            assert_int_equal(il_hist_decode(h, blob, n), IL_HIST_EFORMAT);
            assert_empty(h);
            blob[i] ^= (uint8_t)(1u << bit);
        }
    }
    assert_int_equal(il_hist_decode(h, blob, n), 0);
    free(h);
    free(blob);
}

static void test_decode_bad_magic_version(void **state)
{
    (void)state;
    size_t n;
    uint8_t *blob = sample_blob(&n);
    il_hist *h = hist_new();
    /* Resealed, so it is the magic/version check, not the CRC, that fires. */
    static const struct { size_t at; uint8_t v; } bad[] = {
        {0, 'X'}, {1, 'h'}, {2, 0}, {3, 0}, {3, 2}, {3, 0xFF},
    };
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        uint8_t save = blob[bad[k].at];
        blob[bad[k].at] = bad[k].v;
        reseal(blob, n);
        assert_int_equal(il_hist_decode(h, blob, n), IL_HIST_EFORMAT);
        assert_empty(h);
        blob[bad[k].at] = save;
    }
    reseal(blob, n);
    assert_int_equal(il_hist_decode(h, blob, n), 0);
    free(h);
    free(blob);
}

/* ---- hand-built blobs with valid CRCs --------------------------------- */

typedef struct {
    uint8_t b[256];
    size_t n;
} blob;

static void b_byte(blob *b, uint8_t x) { b->b[b->n++] = x; }

static void b_u64(blob *b, uint64_t v)
{
    while (v >= 0x80) {
        b_byte(b, (uint8_t)(v | 0x80));
        v >>= 7;
    }
    b_byte(b, (uint8_t)v);
}

static void b_i64(blob *b, int64_t v) { b_u64(b, ((uint64_t)v << 1) ^ (0 - ((uint64_t)v >> 63))); }

typedef struct {
    uint64_t lowest, highest, sig, ncounts, total;
    int64_t min, max;
    double sum;
    uint64_t negative;
    int64_t min_negative;
    uint64_t overflow;
    const char *tokens; /* raw token bytes */
    size_t ntokens;
} fields;

/* One value 100 recorded once: a run of 100 zeros (token 199), then count 1. */
static const fields valid = {1, 3600000000u, 3, IL_HIST_COUNTS, 1, 100, 100, 100.0, 0, 0, 0,
                             "\xC7\x01\x02", 3};

static void build(blob *b, const fields *f)
{
    b->n = 0;
    memcpy(b->b, "IHG\x01", 4);
    b->n = 4;
    b_u64(b, f->lowest);
    b_u64(b, f->highest);
    b_u64(b, f->sig);
    b_u64(b, f->ncounts);
    b_u64(b, f->total);
    b_i64(b, f->min);
    b_i64(b, f->max);
    uint64_t bits;
    memcpy(&bits, &f->sum, 8);
    for (int i = 0; i < 8; i++)
        b_byte(b, (uint8_t)(bits >> (8 * i)));
    b_u64(b, f->negative);
    b_i64(b, f->min_negative);
    b_u64(b, f->overflow);
    memcpy(b->b + b->n, f->tokens, f->ntokens);
    b->n += f->ntokens + 4;
    reseal(b->b, b->n);
}

static int decode_fields(const fields *f)
{
    blob b;
    build(&b, f);
    il_hist *h = hist_new();
    int rc = il_hist_decode(h, b.b, b.n);
    if (rc)
        assert_empty(h);
    else
        assert_true(il_hist_percentile(h, 50) == f->max);
    free(h);
    return rc;
}

/* Sets the raw token bytes of `f` from a string literal. */
#define TOK(s) (f.tokens = (s), f.ntokens = sizeof(s) - 1)

static void test_decode_forged(void **state)
{
    (void)state;
    /* The baseline is accepted, and matches what the encoder writes. */
    assert_int_equal(decode_fields(&valid), 0);
    {
        blob b;
        build(&b, &valid);
        il_hist *h = hist_new();
        il_hist_record(h, 100);
        uint8_t out[64];
        assert_int_equal(il_hist_encode(h, out, sizeof out), b.n);
        assert_memory_equal(out, b.b, b.n);
        free(h);
    }
    fields f;
#define REJECT(...)                                                   \
    do {                                                               \
        f = valid;                                                     \
        __VA_ARGS__;                                                   \
        assert_int_equal(decode_fields(&f), IL_HIST_EFORMAT);          \
    } while (0)
    /* Shape mismatch. */
    REJECT(f.lowest = 2);
    REJECT(f.highest = 3600000001u);
    REJECT(f.sig = 2);
    REJECT(f.ncounts = IL_HIST_COUNTS + 1);
    /* Counters disagree with total. */
    REJECT(f.total = 2);
    REJECT(f.total = 0);
    /* Scalars inconsistent. */
    REJECT(f.min = 101);
    REJECT(f.min = -1);
    REJECT(f.sum = NAN);
    REJECT(f.sum = -1.0);
    REJECT(f.negative = 1);
    REJECT(f.min_negative = -4);
    REJECT(f.min_negative = 4; f.negative = 1);
    REJECT(f.overflow = 1);
    /* Token stream problems. */
    REJECT(TOK("\xC7\x01\x00"));                 /* zero count token */
    REJECT(TOK("\xC7\x01\x82"));                 /* truncated varint */
    REJECT(TOK("\xC7\x81\x00\x02"));             /* overlong varint */
    REJECT(TOK("\x82\x80\x80\x80\x80\x80\x80\x80\x80\x80\x01")); /* 11 bytes */
    REJECT(TOK("\x80\x80\x80\x80\x80\x80\x80\x80\x80\x04")); /* > 65 bits */
    REJECT(TOK("\xFF\xFF\xFF\xFF\xFF\xFF\xFF\xFF\xFF\x01")); /* huge run */
    REJECT(TOK("\xFF\xEF\x02\x02"));             /* run of 23552 then a count */
    REJECT(TOK("\x81\xF0\x02"));                 /* run of 23553 zeros */
    /* A run that exactly fills the array is fine (if nothing follows). */
    f = valid;
    f.total = 0;
    f.min = INT64_MAX;
    f.max = 0;
    f.sum = 0;
    TOK("\xFF\xEF\x02");
    assert_int_equal(decode_fields(&f), 0);
    /* An empty histogram must look empty. */
    REJECT(f.total = 0; f.min = INT64_MAX; f.max = 1; TOK(""));
    REJECT(f.total = 0; f.min = 5; f.max = 0; TOK(""));
    /* Counters summing past 2^64 are caught rather than wrapped. */
    REJECT(f.total = 1; TOK("\xFE\xFF\xFF\xFF\xFF\xFF\xFF\xFF\xFF\x03\x04"));
#undef REJECT
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_geometry),
        cmocka_unit_test(test_empty),
        cmocka_unit_test(test_percentiles_random),
        cmocka_unit_test(test_single_value),
        cmocka_unit_test(test_zero_and_negative),
        cmocka_unit_test(test_overflow),
        cmocka_unit_test(test_merge),
        cmocka_unit_test(test_crc_is_ieee),
        cmocka_unit_test(test_roundtrip),
        cmocka_unit_test(test_encode_small_buffer),
        cmocka_unit_test(test_encoded_size),
        cmocka_unit_test(test_decode_truncated),
        cmocka_unit_test(test_decode_truncated_resealed),
        cmocka_unit_test(test_decode_bitflips),
        cmocka_unit_test(test_decode_bad_magic_version),
        cmocka_unit_test(test_decode_forged),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
