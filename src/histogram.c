/*
 * histogram.c - HDR-style log-linear latency histogram (see histogram.h).
 *
 * A load test is judged by its tail latencies, and a tail percentile can only
 * be computed from the whole distribution, merged exactly across subscriber
 * processes and reporting intervals.  Keeping every sample is too expensive
 * and averaging per-process percentiles is wrong, so latencies are counted in
 * a fixed log-linear array: 2048 linear sub-buckets for 0..2047 us, then each
 * further power of two split into 1024 equal slots, which keeps every slot
 * narrower than 1/1024 of the values it holds (3 significant digits) while
 * 23552 counters cover 1 us .. 1 hour.  This file holds the O(1) recording
 * path, the percentile walk, exact merging and a compact, checksummed and
 * defensively parsed wire format for shipping histograms through Redis.
 */
#include "histogram.h"

#include <math.h>
#include <string.h>

#define SUB_MASK ((uint64_t)IL_HIST_SUB_BUCKETS - 1)
#define VERSION 1
#define HEADER_LEN 4 /* "IHG" and the version byte */
#define VARINT_MAX 10 /* bytes of a LEB128 varint holding up to 70 bits */
#define CRC_LEN 4

/*
 * Bucket of a clamped, non-negative value.  OR-ing in the sub-bucket mask
 * makes every value below 2048 land in bucket 0 and keeps the argument of
 * __builtin_clzll non-zero, so the whole computation is one count-leading-
 * zeros and a subtraction with no branch.
 */
static inline unsigned bucket_of(uint64_t v)
{
    return 63u - (unsigned)__builtin_clzll(v | SUB_MASK) - IL_HIST_SUB_HALF_MAG;
}

/* Values above the tracked range share the top counter; negatives are not
 * part of the distribution, so geometry queries treat them as 0. */
static inline uint64_t clamp_value(int64_t v)
{
    if (v < 0)
        return 0;
    return v > IL_HIST_HIGHEST ? (uint64_t)IL_HIST_HIGHEST : (uint64_t)v;
}

/*
 * ((bucket + 1) << 10) + (sub - 1024) simplifies to (bucket << 10) + sub: in
 * bucket 0 the sub-bucket is the value itself, and above it the sub-bucket
 * always has its top bit (1024) set, which the simplification absorbs.
 */
static inline size_t index_clamped(uint64_t v)
{
    unsigned b = bucket_of(v);
    return ((size_t)b << IL_HIST_SUB_HALF_MAG) + (size_t)(v >> b);
}

void il_hist_init(il_hist *h)
{
    memset(h, 0, sizeof *h);
    h->min = INT64_MAX;
}

size_t il_hist_index_of(int64_t value_us)
{
    return index_clamped(clamp_value(value_us));
}

int64_t il_hist_lowest_equivalent(int64_t value_us)
{
    uint64_t v = clamp_value(value_us);
    unsigned b = bucket_of(v);
    return (int64_t)((v >> b) << b);
}

int64_t il_hist_highest_equivalent(int64_t value_us)
{
    uint64_t v = clamp_value(value_us);
    unsigned b = bucket_of(v);
    return (int64_t)((((v >> b) + 1) << b) - 1);
}

int64_t il_hist_value_at_index(size_t index)
{
    /* Indices 0..2047 are bucket 0 (the value itself); above that every 1024
     * indices form the next bucket, whose sub-buckets run 1024..2047. */
    if (index >= IL_HIST_COUNTS)
        index = IL_HIST_COUNTS - 1;
    size_t q = index >> IL_HIST_SUB_HALF_MAG;
    unsigned b = q ? (unsigned)(q - 1) : 0;
    uint64_t sub = index - ((size_t)b << IL_HIST_SUB_HALF_MAG);
    return (int64_t)(sub << b);
}

/*
 * The hot path.  Everything except the (rare, well-predicted) negative and
 * zero-count tests compiles to conditional moves, so recording costs a few
 * nanoseconds and never touches anything but the struct itself.
 */
static inline void record(il_hist *h, int64_t v, uint64_t n)
{
    if (v < 0) {
        h->negative += n;
        if (v < h->min_negative)
            h->min_negative = v;
        return;
    }
    uint64_t over = v > IL_HIST_HIGHEST;
    uint64_t c = over ? (uint64_t)IL_HIST_HIGHEST : (uint64_t)v;
    h->counts[index_clamped(c)] += n;
    h->overflow += over ? n : 0;
    h->total += n;
    h->sum += (double)v * (double)n;
    h->min = v < h->min ? v : h->min;
    h->max = v > h->max ? v : h->max;
}

void il_hist_record(il_hist *h, int64_t value_us)
{
    record(h, value_us, 1);
}

void il_hist_record_n(il_hist *h, int64_t value_us, uint64_t n)
{
    /* Zero occurrences must not move min/max, or an empty histogram would
     * report a minimum it never saw. */
    if (n)
        record(h, value_us, n);
}

void il_hist_merge(il_hist *dst, const il_hist *src)
{
    for (size_t i = 0; i < IL_HIST_COUNTS; i++)
        dst->counts[i] += src->counts[i];
    dst->total += src->total;
    dst->sum += src->sum;
    dst->negative += src->negative;
    dst->overflow += src->overflow;
    if (src->min < dst->min)
        dst->min = src->min;
    if (src->max > dst->max)
        dst->max = src->max;
    if (src->min_negative < dst->min_negative)
        dst->min_negative = src->min_negative;
}

int64_t il_hist_percentile(const il_hist *h, double p)
{
    if (h->total == 0)
        return 0;
    /* Written so that NaN falls into the first branch. */
    if (!(p > 0.0))
        return h->min;
    if (p >= 100.0)
        return h->max;
    double r = ceil(p / 100.0 * (double)h->total);
    uint64_t rank = r < 1.0 ? 1 : (r >= (double)h->total ? h->total : (uint64_t)r);
    uint64_t seen = 0;
    size_t i = 0;
    for (; i < IL_HIST_COUNTS - 1; i++) {
        seen += h->counts[i];
        if (seen >= rank)
            break;
    }
    /* The slot holds a recorded value, so its upper edge is never below min,
     * but it may exceed max; clamping makes p -> 100 converge on max. */
    int64_t v = il_hist_highest_equivalent(il_hist_value_at_index(i));
    return v < h->max ? v : h->max;
}

double il_hist_mean(const il_hist *h)
{
    return h->total ? h->sum / (double)h->total : 0.0;
}

/* ---- serialization ---------------------------------------------------- */

/*
 * CRC-32 (IEEE 802.3, reflected polynomial 0xEDB88320), four bits at a time
 * from a 16-entry table: small enough to write down, fast enough for blobs of
 * a few kilobytes, and with no lazily built table to race on.
 */
static uint32_t crc32_ieee(const uint8_t *p, size_t n)
{
    static const uint32_t t[16] = {
        0x00000000, 0x1DB71064, 0x3B6E20C8, 0x26D930AC, 0x76DC4190, 0x6B6B51F4,
        0x4DB26158, 0x5005713C, 0xEDB88320, 0xF00F9344, 0xD6D6A3E8, 0xCB61B38C,
        0x9B64C2B0, 0x86D3D2D4, 0xA00AE278, 0xBDBDF21C,
    };
    uint32_t c = 0xFFFFFFFFu;
    for (size_t i = 0; i < n; i++) {
        c ^= p[i];
        c = (c >> 4) ^ t[c & 15];
        c = (c >> 4) ^ t[c & 15];
    }
    return c ^ 0xFFFFFFFFu;
}

/*
 * The encoder runs twice, first without a buffer to measure and then for
 * real, so that a too-small buffer is never partly overwritten.
 */
typedef struct {
    uint8_t *buf; /* NULL while measuring */
    size_t len;
} writer;

static void put_byte(writer *w, uint8_t b)
{
    if (w->buf)
        w->buf[w->len] = b;
    w->len++;
}

/*
 * Unsigned LEB128 of a 65-bit number (lo plus bit 64 in hi).  Counter tokens
 * are zig-zag encoded, which doubles them, and a counter may legitimately
 * reach 2^64-1 through record_n or merging; the 65th bit keeps that exact.
 */
static void put_varint65(writer *w, uint64_t lo, unsigned hi)
{
    for (int i = 0; i < VARINT_MAX - 1; i++) {
        if (!hi && lo < 0x80) {
            put_byte(w, (uint8_t)lo);
            return;
        }
        put_byte(w, (uint8_t)(lo | 0x80));
        lo >>= 7;
    }
    put_byte(w, (uint8_t)(lo | (uint64_t)hi << 1)); /* lo is one bit here */
}

static void put_u64(writer *w, uint64_t v) { put_varint65(w, v, 0); }

/* Fixed-width little-endian, for the raw double and the CRC. */
static void put_le(writer *w, uint64_t v, int nbytes)
{
    for (int i = 0; i < nbytes; i++)
        put_byte(w, (uint8_t)(v >> (8 * i)));
}

/* Zig-zag maps small magnitudes of either sign to small varints. */
static void put_i64(writer *w, int64_t v)
{
    uint64_t u = (uint64_t)v;
    put_u64(w, (u << 1) ^ (0 - (u >> 63)));
}

static void encode_into(const il_hist *h, writer *w)
{
    static const uint8_t header[HEADER_LEN] = {'I', 'H', 'G', VERSION};
    for (int i = 0; i < HEADER_LEN; i++)
        put_byte(w, header[i]);
    put_u64(w, IL_HIST_LOWEST);
    put_u64(w, IL_HIST_HIGHEST);
    put_u64(w, IL_HIST_SIGDIGITS);
    put_u64(w, IL_HIST_COUNTS);
    put_u64(w, h->total);
    put_i64(w, h->min);
    put_i64(w, h->max);
    uint64_t bits;
    memcpy(&bits, &h->sum, sizeof bits);
    put_le(w, bits, 8);
    put_u64(w, h->negative);
    put_i64(w, h->min_negative);
    put_u64(w, h->overflow);

    /* Counters up to the last non-zero one; the decoder zero-fills the rest.
     * A count c is the token 2c, a run of n zeros the token 2n-1 (zig-zag of
     * c and of -n), so latency distributions, which occupy a narrow band of
     * the range, shrink to a few kilobytes. */
    size_t end = IL_HIST_COUNTS;
    while (end > 0 && h->counts[end - 1] == 0)
        end--;
    for (size_t i = 0; i < end;) {
        uint64_t c = h->counts[i];
        if (c) {
            put_varint65(w, c << 1, (unsigned)(c >> 63));
            i++;
            continue;
        }
        size_t run = 1;
        while (h->counts[i + run] == 0) /* stops at end - 1, which is non-zero */
            run++;
        put_u64(w, 2 * (uint64_t)run - 1);
        i += run;
    }
    put_le(w, w->buf ? crc32_ieee(w->buf, w->len) : 0, CRC_LEN);
}

size_t il_hist_encode(const il_hist *h, uint8_t *buf, size_t cap)
{
    writer w = {NULL, 0};
    encode_into(h, &w);
    if (w.len > cap || !buf)
        return w.len;
    size_t need = w.len;
    w = (writer){buf, 0};
    encode_into(h, &w);
    return need;
}

size_t il_hist_encode_bound(void)
{
    /* Header, four shape and six scalar varints, the raw double, at most one
     * maximal varint per counter (a zero run is never longer than the
     * counters it replaces) and the CRC. */
    return HEADER_LEN + 10 * VARINT_MAX + 8 + (size_t)IL_HIST_COUNTS * VARINT_MAX + CRC_LEN;
}

/*
 * Reads a canonical LEB128 varint of at most 65 bits.  Every byte is checked
 * against `end` before it is read, shifts stay below 64, and overlong forms
 * (a trailing zero byte, an eleventh byte, bits past 65) are rejected so that
 * each value has exactly one encoding.
 */
static int get_varint65(const uint8_t **pp, const uint8_t *end, uint64_t *lo, unsigned *hi)
{
    const uint8_t *p = *pp;
    uint64_t v = 0;
    for (int i = 0; i < VARINT_MAX - 1; i++) {
        if (p == end)
            return -1;
        uint8_t b = *p++;
        v |= (uint64_t)(b & 0x7f) << (7 * i);
        if (!(b & 0x80)) {
            if (b == 0 && i > 0)
                return -1;
            *lo = v;
            *hi = 0;
            *pp = p;
            return 0;
        }
    }
    /* The tenth byte carries bit 63 and bit 64 and must end the varint. */
    if (p == end || *p == 0 || *p > 3)
        return -1;
    *lo = v | (uint64_t)(*p & 1) << 63;
    *hi = *p >> 1;
    *pp = p + 1;
    return 0;
}

static int get_u64(const uint8_t **pp, const uint8_t *end, uint64_t *v)
{
    unsigned hi;
    return get_varint65(pp, end, v, &hi) || hi ? -1 : 0;
}

static int get_i64(const uint8_t **pp, const uint8_t *end, int64_t *v)
{
    uint64_t u;
    if (get_u64(pp, end, &u))
        return -1;
    u = (u >> 1) ^ (0 - (u & 1));
    memcpy(v, &u, sizeof *v); /* two's complement reinterpretation, no UB */
    return 0;
}

static uint64_t get_le(const uint8_t *p, int nbytes)
{
    uint64_t v = 0;
    for (int i = 0; i < nbytes; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}

static int expect_u64(const uint8_t **pp, const uint8_t *end, uint64_t want)
{
    uint64_t v;
    return get_u64(pp, end, &v) || v != want ? -1 : 0;
}

/* Parses the CRC-verified body [p, end) into h, which starts out empty. */
static int decode_body(il_hist *h, const uint8_t *p, const uint8_t *end)
{
    if (expect_u64(&p, end, IL_HIST_LOWEST) || expect_u64(&p, end, IL_HIST_HIGHEST) ||
        expect_u64(&p, end, IL_HIST_SIGDIGITS) || expect_u64(&p, end, IL_HIST_COUNTS))
        return -1;
    if (get_u64(&p, end, &h->total) || get_i64(&p, end, &h->min) || get_i64(&p, end, &h->max))
        return -1;
    if (end - p < 8)
        return -1;
    uint64_t bits = get_le(p, 8);
    memcpy(&h->sum, &bits, sizeof bits);
    p += 8;
    if (get_u64(&p, end, &h->negative) || get_i64(&p, end, &h->min_negative) ||
        get_u64(&p, end, &h->overflow))
        return -1;

    uint64_t total = 0;
    size_t i = 0;
    while (p < end) {
        uint64_t lo;
        unsigned hi;
        if (get_varint65(&p, end, &lo, &hi))
            return -1;
        if (lo & 1) {
            /* A zero run; comparing before adding keeps i from wrapping. */
            if (hi || (lo >> 1) >= IL_HIST_COUNTS - i)
                return -1;
            i += (size_t)(lo >> 1) + 1;
        } else {
            uint64_t c = lo >> 1 | (uint64_t)hi << 63;
            if (c == 0 || i >= IL_HIST_COUNTS || __builtin_add_overflow(total, c, &total))
                return -1;
            h->counts[i++] = c;
        }
    }

    /* The scalars must agree with the counters and with each other, so that
     * a decoded histogram keeps every invariant a recorded one has. */
    if (total != h->total || h->overflow > h->counts[il_hist_index_of(IL_HIST_HIGHEST)])
        return -1;
    if (h->total ? h->min < 0 || h->min > h->max : h->min != INT64_MAX || h->max != 0)
        return -1;
    if (!isfinite(h->sum) || h->sum < 0.0)
        return -1;
    if (h->min_negative > 0 || (h->negative == 0) != (h->min_negative == 0))
        return -1;
    return 0;
}

int il_hist_decode(il_hist *h, const uint8_t *buf, size_t len)
{
    il_hist_init(h);
    if (!buf || len < HEADER_LEN + CRC_LEN || memcmp(buf, "IHG", 3) || buf[3] != VERSION)
        return IL_HIST_EFORMAT;
    size_t body = len - CRC_LEN;
    if (crc32_ieee(buf, body) != get_le(buf + body, CRC_LEN) ||
        decode_body(h, buf + HEADER_LEN, buf + body)) {
        il_hist_init(h);
        return IL_HIST_EFORMAT;
    }
    return 0;
}
