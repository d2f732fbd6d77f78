/*
 * promexp.h - a run's rollup in the Prometheus text exposition format 0.0.4.
 *
 * Grafana reads iotlat through Prometheus, so the plotter exposes what a
 * latency dashboard needs: the end-to-end latency as a histogram with fixed
 * log-spaced buckets (which Prometheus can aggregate across topics and
 * replicas and turn into a heatmap), exact percentiles of the merged
 * histograms as summaries (which it cannot compute itself), the loss
 * counters with the types their behaviour allows, and the clock-offset bound
 * that says whether cross-host numbers can be trusted.  Rendering is kept
 * apart from serving (metricsrv.h) so that the format is tested without a
 * socket.
 *
 * Bucket mapping: the iotlat histogram counts values in slots of 1 us up to
 * 2047 us and slots 2^k us wide above (each narrower than 1/1024 of the
 * values in it).  A slot is counted in the first Prometheus bucket whose
 * upper bound `le` is at or above the slot's highest value, so a bucket never
 * claims a value below its bound that might have been above it.  Where a
 * bound falls on a slot edge (every bound up to 2047 us) the cumulative
 * count is exact; elsewhere the values of the one slot that straddles the
 * bound (less than 0.1 % of the bound wide) are counted in the next bucket.
 */
#ifndef IL_PROMEXP_H
#define IL_PROMEXP_H

#include "histogram.h"
#include "rollup.h"

#include <stdint.h>
#include <stdio.h>

/* Bucket upper bounds: the Renard R10 series (1, 1.25, 1.6, 2, 2.5, 3.2, 4,
 * 5, 6.3, 8 per decade, steps of about 26 %) from 50 us to 50 s, then 60 s;
 * +Inf follows. */
#define IL_PROM_NBUCKETS 62
extern const int64_t il_prom_bucket_us[IL_PROM_NBUCKETS];

/* cum[k] = values in h whose slot lies entirely at or below bucket k's
 * bound (cumulative, as `le` buckets are).  The +Inf bucket is h->total. */
void il_prom_buckets(const il_hist *h, uint64_t cum[IL_PROM_NBUCKETS]);

/* Number of h's slots (from the lowest) that belong to buckets up to
 * `le_us`: the mapping above, exposed for tests. */
size_t il_prom_slot_limit(int64_t le_us);

/* A label value between the quotes: backslash, double quote and line feed
 * escaped as \\, \" and \n. */
void il_prom_label_value(FILE *f, const char *v);
/* A # HELP text: backslash and line feed escaped. */
void il_prom_help_text(FILE *f, const char *v);
/* A sample value: the shortest decimal that reads back as v (Go's
 * strconv 'g' form, e.g. 5e-05, 0.000125), NaN, +Inf or -Inf. */
void il_prom_number(FILE *f, double v);

/* What the plotter reports about itself. */
typedef struct il_prom_self {
    const char *run;
    int redis_up;
    uint64_t polls, redis_errors, decode_errors;
    int ndjson;     /* writing NDJSON documents */
    uint64_t ndjson_docs;
    int es;         /* posting to Elasticsearch */
    uint64_t es_sent, es_queued, es_dropped, es_rejected, es_failures;
} il_prom_self;

/* Write the whole exposition: the series of all topics (topic="_all") and
 * of each exported topic, then the plotter's own.  Never fails; a write
 * error shows in ferror(f). */
void il_prom_render(FILE *f, const il_rollup *r, const il_prom_self *self);

#endif
