/*
 * rollup.h - a run's per-second result records merged into what the plotter
 * shows: per topic and across all topics, for the whole run and for the last
 * complete second.
 *
 * Subscribers write one record per second per topic (store.h): running
 * totals and the histograms of that second.  Dashboards want totals that
 * only grow, percentiles of the whole run and of "now", and the same for
 * every topic together.  Percentiles can only come from merged histograms,
 * so this file merges: each record into its topic's run histograms, into
 * the run histograms of all topics, and into the calendar second it ends in,
 * which is complete once every topic still writing has moved past it.  It
 * talks to nobody (no Redis, no HTTP), so the plotter's arithmetic is tested
 * on its own.
 *
 * Running totals restart at 0 when another subscriber takes a topic over
 * (store.h: claims and leases); a record whose monotonic totals went down
 * starts a new segment, and the finished segment's totals are kept as a
 * base, so the totals shown here never go down (lost excepted: a gap that
 * fills lowers it, which is why it is a gauge).
 *
 * Memory: the rollup owns its topics and histograms; il_rollup_free frees
 * them.  A topic with its own series costs three histograms (about 0.6 MB),
 * the rollup itself about 27.  Not thread-safe: one thread feeds and reads.
 */
#ifndef IL_ROLLUP_H
#define IL_ROLLUP_H

#include "histogram.h"

#include <stddef.h>
#include <stdint.h>

/* Running totals of a record, in the order and with the names of the
 * record's fields in Redis. */
enum {
    IL_C_RECEIVED,
    IL_C_RECEIVED_UNIQUE,
    IL_C_LOST,
    IL_C_DUPLICATES,
    IL_C_REORDERED,
    IL_C_MALFORMED,
    IL_C_STALE,
    IL_C_EXPECTED,
    IL_C_DEVICES,
    IL_COUNTS
};
extern const char *const il_count_names[IL_COUNTS];

typedef struct il_counts {
    int64_t v[IL_COUNTS];
} il_counts;

/* The three distributions of a record. */
enum { IL_DIST_LAT, IL_DIST_SVC, IL_DIST_LAG, IL_DISTS };
extern const char *const il_dist_names[IL_DISTS]; /* latency, service_latency, send_lag */

/* The quantiles every window reports: 0.5, 0.9, 0.99, 0.999 and 1 (max). */
#define IL_NQ 5
extern const double il_quantiles[IL_NQ];

/* One distribution over a window, reduced to what is shown. */
typedef struct il_qsum {
    uint64_t count;    /* values >= 0 */
    uint64_t negative; /* values < 0 (clock skew), not in the quantiles */
    double sum_us;
    int64_t min_us;
    int64_t q_us[IL_NQ]; /* meaningful when count > 0 */
} il_qsum;

/* Reduce h (NULL = empty) in one walk over its counters. */
void il_qsum_of(il_qsum *out, const il_hist *h);

/* One record as fed in: its end time, running totals and histograms (any
 * may be NULL when the record had none or it did not decode). */
typedef struct il_rollup_in {
    int64_t t_us;
    il_counts c;
    const il_hist *h[IL_DISTS];
} il_rollup_in;

typedef struct il_rollup_topic {
    char name[256];
    char driver[64];        /* "" until known */
    int64_t clock_bound_us; /* publisher + subscriber clock error, -1 unknown */
    int exported;           /* has its own series (within the topic cap) */
    il_hist *run[IL_DISTS]; /* whole run; NULL unless exported */
    il_qsum last[IL_DISTS]; /* the last record's second */
    il_counts base;         /* totals of finished segments */
    il_counts cur;          /* the current writer's running totals */
    int64_t first_t_us, last_t_us;
    uint64_t records, segments;
    int pending; /* the reader knows of records not fed yet */
} il_rollup_topic;

/* A completed second of all topics together. */
typedef struct il_rollup_point {
    int64_t t_us; /* end of the second */
    uint32_t records;
    il_counts delta; /* change over the second, all topics */
    il_counts total; /* totals of the records in this and earlier seconds */
    il_qsum q[IL_DISTS];
} il_rollup_point;

/* Called back as records are fed and seconds complete; any may be NULL.
 * Pointers are valid during the call only. */
typedef struct il_rollup_sink {
    /* A topic's record: delta = its change from the previous record. */
    void (*topic_second)(void *ud, const il_rollup_topic *t, const il_rollup_in *in,
                         const il_counts *delta, int64_t window_us);
    /* A second of all topics: the merged histograms of the records that
     * ended in it. */
    void (*all_second)(void *ud, const il_rollup_point *p, const il_hist *const h[IL_DISTS]);
    void *ud;
} il_rollup_sink;

#define IL_ROLLUP_BINS 8 /* seconds of all topics open at once */

typedef struct il_rollup_bin {
    int64_t sec; /* 0 = free */
    uint32_t records;
    il_counts delta;
    il_hist *h[IL_DISTS];
} il_rollup_bin;

typedef struct il_rollup {
    long max_exported; /* topics with their own series; -1 = all */
    long nexported;
    il_rollup_topic **topics;
    size_t ntopics, cap_topics;
    il_hist *run[IL_DISTS];     /* all topics, whole run */
    il_rollup_point last;       /* newest completed second (t_us 0: none yet) */
    il_rollup_point *series;    /* every completed second, oldest first */
    size_t nseries, cap_series;
    il_rollup_bin bins[IL_ROLLUP_BINS];
    il_counts closed;    /* totals of the completed seconds and late records */
    int64_t done_sec;    /* seconds up to this one are complete */
    int64_t newest_t_us; /* newest record fed */
    uint64_t records;    /* records fed */
    uint64_t late;       /* records for seconds already complete */
    il_rollup_sink sink;
} il_rollup;

/* How long a topic may stay behind the newest record (or the clock) before
 * the seconds of all topics stop waiting for it. */
#define IL_ROLLUP_IDLE_US 3000000

/* max_exported: topics that get their own histograms, in the order they are
 * first seen; -1 = all.  Returns NULL when out of memory. */
il_rollup *il_rollup_new(long max_exported, const il_rollup_sink *sink);
void il_rollup_free(il_rollup *r);

/* Index of topic `name`, added on first sight; -1 when out of memory. */
long il_rollup_topic_index(il_rollup *r, const char *name);

/* Feed one record of topic `ti`.  Records of different topics should come
 * in time order (the reader merges them); a record for a second already
 * completed still counts everywhere but in that second, and in `late`. */
void il_rollup_feed(il_rollup *r, long ti, const il_rollup_in *in);

/* Complete the seconds that no topic can add to any more: every topic has
 * moved past them, is idle (IL_ROLLUP_IDLE_US behind the newest record), or
 * the clock `now_us` is that far past the newest record; a topic marked
 * pending holds seconds it has not reached.  final = 1 completes every open
 * second (the end). */
void il_rollup_settle(il_rollup *r, int64_t now_us, int final);

/* The driver of all topics: theirs if they agree, "mixed" if not,
 * "unknown" while none is known. */
const char *il_rollup_driver(const il_rollup *r);

/* The worst known clock-offset bound of all topics, -1 if none is known. */
int64_t il_rollup_clock_bound(const il_rollup *r);

/* Totals of a topic (base + current segment), and of all topics. */
void il_rollup_topic_totals(const il_rollup_topic *t, il_counts *out);
void il_rollup_totals(const il_rollup *r, il_counts *out);

#endif
