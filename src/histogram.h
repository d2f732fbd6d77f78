/*
 * histogram.h - HDR-style log-linear latency histogram.
 *
 * Latency percentiles are only meaningful when they come from the full
 * distribution, and distributions recorded in different processes or seconds
 * must merge exactly.  This histogram covers 1 us .. 1 hour with 3
 * significant decimal digits in a fixed array of counters: recording is a
 * couple of shifts and an increment (O(1), no allocation), two histograms of
 * the same shape add counter by counter, and the serialized form is a small
 * versioned, checksummed run-length blob fit for a Redis value.
 *
 * Values are microseconds.  Negative values (a message "from the future",
 * i.e. clock skew between hosts) are never folded into the distribution: they
 * are counted in `negative` and the most negative one is kept in
 * `min_negative`.  Values above the highest trackable value are counted in
 * the top bucket and in `overflow`, so nothing recorded is ever lost.
 */
#ifndef IL_HISTOGRAM_H
#define IL_HISTOGRAM_H

#include <stddef.h>
#include <stdint.h>

#define IL_HIST_LOWEST 1LL                   /* 1 us */
#define IL_HIST_HIGHEST 3600000000LL         /* 1 hour in us */
#define IL_HIST_SIGDIGITS 3                  /* bucket width <= 1/1024 of value */
#define IL_HIST_SUB_BUCKETS 2048             /* 2^ceil(log2(2 * 10^3)) */
#define IL_HIST_SUB_HALF 1024
#define IL_HIST_SUB_HALF_MAG 10              /* log2(IL_HIST_SUB_HALF) */
#define IL_HIST_BUCKETS 22                   /* 2048 << 21 > 3.6e9 */
#define IL_HIST_COUNTS ((IL_HIST_BUCKETS + 1) * IL_HIST_SUB_HALF) /* 23552 */

/* Error codes (negative, as every function in this project returns). */
#define IL_HIST_EFORMAT -1 /* blob is truncated, corrupt or of another version */

typedef struct il_hist {
    uint64_t total;        /* values recorded in counts[] (incl. overflow) */
    int64_t min;           /* smallest recorded value >= 0, INT64_MAX if none */
    int64_t max;           /* largest recorded value (unclamped) */
    double sum;            /* sum of recorded values >= 0, for the mean */
    uint64_t negative;     /* values < 0: counted, not in counts[] */
    int64_t min_negative;  /* most negative value seen, 0 if none */
    uint64_t overflow;     /* values > IL_HIST_HIGHEST, counted in top bucket */
    uint64_t counts[IL_HIST_COUNTS];
} il_hist;

/* Reset to empty.  The struct is plain memory: no close is needed. */
void il_hist_init(il_hist *h);

/* Record one value (us).  O(1), allocation-free, never fails. */
void il_hist_record(il_hist *h, int64_t value_us);

/* Record `n` occurrences of a value. */
void il_hist_record_n(il_hist *h, int64_t value_us, uint64_t n);

/* Add every counter of `src` into `dst`.  Exact: the result is identical to
 * having recorded both streams into one histogram. */
void il_hist_merge(il_hist *dst, const il_hist *src);

/* Value at percentile p (0..100) over the non-negative values: the highest
 * value equivalent to the bucket holding the p-th ranked value, clamped to
 * [min, max] so that p0 == min and p100 == max exactly.  0 if empty. */
int64_t il_hist_percentile(const il_hist *h, double p);

/* Mean of non-negative values; 0 if empty. */
double il_hist_mean(const il_hist *h);

/* Bucket geometry, exposed for exporters (Prometheus buckets) and tests. */
size_t il_hist_index_of(int64_t value_us);
int64_t il_hist_lowest_equivalent(int64_t value_us);
int64_t il_hist_highest_equivalent(int64_t value_us);
/* Lowest value that maps to counts[index]. */
int64_t il_hist_value_at_index(size_t index);

/* Serialize into buf.  Returns the byte length written, or the length that
 * would be needed if cap is too small (nothing is written then).  The blob
 * holds a magic, a format version, the shape, the scalar fields, the counters
 * as zig-zag varints with zero runs collapsed, and a CRC-32 trailer. */
size_t il_hist_encode(const il_hist *h, uint8_t *buf, size_t cap);

/* Upper bound of il_hist_encode's output for any histogram. */
size_t il_hist_encode_bound(void);

/* Decode a blob into h (overwriting it).  Returns 0, or IL_HIST_EFORMAT when
 * the blob is truncated, has a bad magic, version, shape or checksum, runs
 * past the counter array, or its counters do not add up to its total; h is
 * left empty on error. */
int il_hist_decode(il_hist *h, const uint8_t *buf, size_t len);

#endif
