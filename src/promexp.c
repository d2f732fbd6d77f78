/*
 * promexp.c - Prometheus text exposition of a rollup (see promexp.h).
 *
 * Metric types follow what the numbers do, because Prometheus functions
 * depend on it: totals that only grow are counters (rate() works, a reset is
 * understood), lost messages are a gauge (a gap that fills lowers it), the
 * latency is a histogram (histogram_quantile() and heatmaps over any set of
 * topics), and the exact percentiles are summaries: promtool rejects a
 * `quantile` label on anything else, and a summary is exactly "quantiles of
 * a window with its sum and count".  Their `window` label says which window:
 * "last" (the last complete second: the topic's last record, or the newest
 * second every topic has moved past) or "run" (everything so far).
 */
#include "promexp.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

const int64_t il_prom_bucket_us[IL_PROM_NBUCKETS] = {
    50,       63,       80,       100,      125,      160,      200,      250,
    320,      400,      500,      630,      800,      1000,     1250,     1600,
    2000,     2500,     3200,     4000,     5000,     6300,     8000,     10000,
    12500,    16000,    20000,    25000,    32000,    40000,    50000,    63000,
    80000,    100000,   125000,   160000,   200000,   250000,   320000,   400000,
    500000,   630000,   800000,   1000000,  1250000,  1600000,  2000000,  2500000,
    3200000,  4000000,  5000000,  6300000,  8000000,  10000000, 12500000, 16000000,
    20000000, 25000000, 32000000, 40000000, 50000000, 60000000};

size_t il_prom_slot_limit(int64_t le_us)
{
    if (le_us < 0)
        return 0;
    /* The slot holding le_us belongs to this bucket only if it ends there. */
    size_t i = il_hist_index_of(le_us);
    return il_hist_highest_equivalent(le_us) <= le_us ? i + 1 : i;
}

void il_prom_buckets(const il_hist *h, uint64_t cum[IL_PROM_NBUCKETS])
{
    uint64_t seen = 0;
    size_t i = 0;
    for (int k = 0; k < IL_PROM_NBUCKETS; k++) {
        size_t lim = il_prom_slot_limit(il_prom_bucket_us[k]);
        while (i < lim)
            seen += h->counts[i++];
        cum[k] = seen;
    }
}

void il_prom_label_value(FILE *f, const char *v)
{
    for (; v && *v; v++) {
        if (*v == '\\')
            fputs("\\\\", f);
        else if (*v == '"')
            fputs("\\\"", f);
        else if (*v == '\n')
            fputs("\\n", f);
        else
            fputc(*v, f);
    }
}

void il_prom_help_text(FILE *f, const char *v)
{
    for (; v && *v; v++) {
        if (*v == '\\')
            fputs("\\\\", f);
        else if (*v == '\n')
            fputs("\\n", f);
        else
            fputc(*v, f);
    }
}

/* The shortest decimal that reads back as v, laid out as Go's
 * strconv.FormatFloat(v, 'g', -1, 64) does (exponent form below 1e-4 and
 * from 1e6 on), which is what Prometheus' own clients print; or NaN, +Inf,
 * -Inf. */
static const char *fmt_number(char *buf, size_t len, double v)
{
    if (isnan(v))
        return "NaN";
    if (isinf(v))
        return v > 0 ? "+Inf" : "-Inf";
    int digits = 17;
    for (int p = 1; p <= 17; p++) {
        snprintf(buf, len, "%.*e", p - 1, v);
        if (strtod(buf, NULL) == v) {
            digits = p;
            break;
        }
    }
    const char *e = strchr(buf, 'e');
    int exp = e ? atoi(e + 1) : 0;
    if (v != 0 && (exp < -4 || exp >= 6))
        return buf; /* already the exponent form with the shortest digits */
    int decimals = digits - 1 - exp;
    snprintf(buf, len, "%.*f", decimals > 0 ? decimals : 0, v);
    return buf;
}

void il_prom_number(FILE *f, double v)
{
    char buf[40];
    fputs(fmt_number(buf, sizeof buf, v), f);
}

/* ---- series --------------------------------------------------------------- */

typedef struct series {
    const char *run, *driver, *topic;
} series;

static void family(FILE *f, const char *name, const char *type, const char *help)
{
    fprintf(f, "# HELP %s ", name);
    il_prom_help_text(f, help);
    fprintf(f, "\n# TYPE %s %s\n", name, type);
}

/* name{run="..",driver="..",topic=".."<extra>} */
static void labels(FILE *f, const char *name, const char *suffix, const series *s,
                   const char *extra_name, const char *extra_value)
{
    fprintf(f, "%s%s{run=\"", name, suffix);
    il_prom_label_value(f, s->run);
    fputs("\",driver=\"", f);
    il_prom_label_value(f, s->driver);
    fputs("\",topic=\"", f);
    il_prom_label_value(f, s->topic);
    fputc('"', f);
    if (extra_name) {
        fprintf(f, ",%s=\"", extra_name);
        il_prom_label_value(f, extra_value);
        fputc('"', f);
    }
}

static void histogram(FILE *f, const char *name, const series *s, const il_hist *h)
{
    uint64_t cum[IL_PROM_NBUCKETS];
    char le[40];
    il_prom_buckets(h, cum);
    for (int k = 0; k < IL_PROM_NBUCKETS; k++) {
        labels(f, name, "_bucket", s, NULL, NULL);
        /* The bound through the same formatter as values, so le="5e-05"
         * is what a Go client would print. */
        fprintf(f, ",le=\"%s\"} %llu\n",
                fmt_number(le, sizeof le, (double)il_prom_bucket_us[k] / 1e6),
                (unsigned long long)cum[k]);
    }
    labels(f, name, "_bucket", s, NULL, NULL);
    fprintf(f, ",le=\"+Inf\"} %llu\n", (unsigned long long)h->total);
    labels(f, name, "_sum", s, NULL, NULL);
    fputs("} ", f);
    il_prom_number(f, h->sum / 1e6);
    fputc('\n', f);
    labels(f, name, "_count", s, NULL, NULL);
    fprintf(f, "} %llu\n", (unsigned long long)h->total);
}

/* Quantiles of one window with its sum and count; NaN while it is empty,
 * as an empty summary has it. */
static void summary(FILE *f, const char *name, const series *s, const char *window,
                    const il_qsum *q)
{
    char qs[16];
    for (int k = 0; k < IL_NQ; k++) {
        snprintf(qs, sizeof qs, "%g", il_quantiles[k]);
        labels(f, name, "", s, "window", window);
        fprintf(f, ",quantile=\"%s\"} ", qs);
        il_prom_number(f, q->count ? (double)q->q_us[k] / 1e6 : NAN);
        fputc('\n', f);
    }
    labels(f, name, "_sum", s, "window", window);
    fputs("} ", f);
    il_prom_number(f, q->sum_us / 1e6);
    fputc('\n', f);
    labels(f, name, "_count", s, "window", window);
    fprintf(f, "} %llu\n", (unsigned long long)q->count);
}

static void sample_int(FILE *f, const char *name, const series *s, int64_t v)
{
    labels(f, name, "", s, NULL, NULL);
    fprintf(f, "} %lld\n", (long long)v);
}

static const char *driver_of(const il_rollup_topic *t)
{
    return t->driver[0] ? t->driver : "unknown";
}

/* The counters and gauges taken from the records' running totals. */
static const struct {
    int idx;
    const char *name, *type, *help;
} count_metrics[] = {
    {IL_C_RECEIVED, "iotlat_messages_received_total", "counter",
     "Messages received, duplicates included."},
    {IL_C_RECEIVED_UNIQUE, "iotlat_messages_received_unique_total", "counter",
     "Distinct messages received."},
    {IL_C_LOST, "iotlat_messages_lost", "gauge",
     "Messages missing now (open sequence gaps, and the tail once known); a gap "
     "that fills later lowers it, so it is a gauge."},
    {IL_C_DUPLICATES, "iotlat_messages_duplicates_total", "counter",
     "Messages received more than once."},
    {IL_C_REORDERED, "iotlat_messages_reordered_total", "counter",
     "Messages that arrived after a later one of the same device."},
    {IL_C_MALFORMED, "iotlat_messages_malformed_total", "counter",
     "Messages without a readable envelope."},
    {IL_C_STALE, "iotlat_messages_stale_total", "counter",
     "Messages too old for the sequence window to classify."},
    {IL_C_EXPECTED, "iotlat_messages_expected", "gauge",
     "Messages the publishers sent as far as known (received_unique + lost)."},
    {IL_C_DEVICES, "iotlat_devices", "gauge", "Devices seen."},
};

static const struct {
    int dist;
    const char *name, *help;
} quantile_metrics[] = {
    {IL_DIST_LAT, "iotlat_e2e_latency_quantile_seconds",
     "End-to-end latency from the intended send time, exact quantiles of the merged "
     "histograms; window=last: the last complete second, window=run: the whole run."},
    {IL_DIST_SVC, "iotlat_service_latency_quantile_seconds",
     "Latency from the actual send time (service latency), exact quantiles; windows as "
     "for iotlat_e2e_latency_quantile_seconds."},
    {IL_DIST_LAG, "iotlat_send_lag_quantile_seconds",
     "How late the publishers sent after the schedule said (send lag), exact "
     "quantiles; windows as for iotlat_e2e_latency_quantile_seconds."},
};

void il_prom_render(FILE *f, const il_rollup *r, const il_prom_self *self)
{
    series all = {self->run, il_rollup_driver(r), "_all"};
    il_counts totals;
    il_qsum q;

    family(f, "iotlat_e2e_latency_seconds", "histogram",
           "End-to-end latency from the intended send time (coordinated-omission "
           "free), whole run; log-spaced buckets from 50us to 60s.");
    histogram(f, "iotlat_e2e_latency_seconds", &all, r->run[IL_DIST_LAT]);
    for (size_t i = 0; i < r->ntopics; i++) {
        const il_rollup_topic *t = r->topics[i];
        if (!t->exported)
            continue;
        series s = {self->run, driver_of(t), t->name};
        histogram(f, "iotlat_e2e_latency_seconds", &s, t->run[IL_DIST_LAT]);
    }

    for (size_t m = 0; m < sizeof quantile_metrics / sizeof quantile_metrics[0]; m++) {
        int d = quantile_metrics[m].dist;
        const char *name = quantile_metrics[m].name;
        family(f, name, "summary", quantile_metrics[m].help);
        summary(f, name, &all, "last", &r->last.q[d]);
        il_qsum_of(&q, r->run[d]);
        summary(f, name, &all, "run", &q);
        for (size_t i = 0; i < r->ntopics; i++) {
            const il_rollup_topic *t = r->topics[i];
            if (!t->exported)
                continue;
            series s = {self->run, driver_of(t), t->name};
            summary(f, name, &s, "last", &t->last[d]);
            il_qsum_of(&q, t->run[d]);
            summary(f, name, &s, "run", &q);
        }
    }

    family(f, "iotlat_e2e_latency_negative_total", "counter",
           "Messages received before their intended send time (clock skew between "
           "hosts); counted, never folded into the latency.");
    sample_int(f, "iotlat_e2e_latency_negative_total", &all,
               (int64_t)r->run[IL_DIST_LAT]->negative);
    for (size_t i = 0; i < r->ntopics; i++) {
        const il_rollup_topic *t = r->topics[i];
        series s = {self->run, driver_of(t), t->name};
        if (t->exported)
            sample_int(f, "iotlat_e2e_latency_negative_total", &s,
                       (int64_t)t->run[IL_DIST_LAT]->negative);
    }

    il_rollup_totals(r, &totals);
    for (size_t m = 0; m < sizeof count_metrics / sizeof count_metrics[0]; m++) {
        const char *name = count_metrics[m].name;
        int k = count_metrics[m].idx;
        family(f, name, count_metrics[m].type, count_metrics[m].help);
        sample_int(f, name, &all, totals.v[k]);
        for (size_t i = 0; i < r->ntopics; i++) {
            const il_rollup_topic *t = r->topics[i];
            if (!t->exported)
                continue;
            il_counts c;
            il_rollup_topic_totals(t, &c);
            series s = {self->run, driver_of(t), t->name};
            sample_int(f, name, &s, c.v[k]);
        }
    }

    /* The error bound of publisher + subscriber clock offsets: latencies
     * between hosts are good to +- this.  All topics: the worst known. */
    int64_t worst = il_rollup_clock_bound(r);
    family(f, "iotlat_clock_offset_bound_seconds", "gauge",
           "Bound of the clock-offset error between publisher and subscriber (their "
           "offsets to the Redis clock); cross-host latencies are good to +- this. "
           "Absent while unknown.");
    if (worst >= 0) {
        labels(f, "iotlat_clock_offset_bound_seconds", "", &all, NULL, NULL);
        fputs("} ", f);
        il_prom_number(f, (double)worst / 1e6);
        fputc('\n', f);
    }
    for (size_t i = 0; i < r->ntopics; i++) {
        const il_rollup_topic *t = r->topics[i];
        if (!t->exported || t->clock_bound_us < 0)
            continue;
        series s = {self->run, driver_of(t), t->name};
        labels(f, "iotlat_clock_offset_bound_seconds", "", &s, NULL, NULL);
        fputs("} ", f);
        il_prom_number(f, (double)t->clock_bound_us / 1e6);
        fputc('\n', f);
    }

    family(f, "iotlat_last_record_timestamp_seconds", "gauge",
           "End of the newest per-second record (Unix time): how current the data is.");
    if (r->newest_t_us) {
        labels(f, "iotlat_last_record_timestamp_seconds", "", &all, NULL, NULL);
        fputs("} ", f);
        il_prom_number(f, (double)r->newest_t_us / 1e6);
        fputc('\n', f);
    }
    for (size_t i = 0; i < r->ntopics; i++) {
        const il_rollup_topic *t = r->topics[i];
        if (!t->exported || !t->records)
            continue;
        series s = {self->run, driver_of(t), t->name};
        labels(f, "iotlat_last_record_timestamp_seconds", "", &s, NULL, NULL);
        fputs("} ", f);
        il_prom_number(f, (double)t->last_t_us / 1e6);
        fputc('\n', f);
    }

    /* The plotter's own health, labelled by run only. */
    const struct {
        const char *name, *type, *help;
        uint64_t v;
        int shown;
    } own[] = {
        {"iotlat_topics", "gauge", "Topics with result records in the run.", r->ntopics, 1},
        {"iotlat_plotter_redis_up", "gauge", "1 while the plotter can read Redis.",
         (uint64_t)self->redis_up, 1},
        {"iotlat_plotter_polls_total", "counter", "Reads of the results store.", self->polls,
         1},
        {"iotlat_plotter_redis_errors_total", "counter",
         "Failed reads of the results store.", self->redis_errors, 1},
        {"iotlat_plotter_records_total", "counter", "Per-second records read.", r->records,
         1},
        {"iotlat_plotter_late_records_total", "counter",
         "Records that arrived after their second of all topics was complete (counted "
         "everywhere but in that second).",
         r->late, 1},
        {"iotlat_plotter_decode_errors_total", "counter",
         "Histograms in records that did not decode.", self->decode_errors, 1},
        {"iotlat_plotter_ndjson_documents_total", "counter", "Documents written as NDJSON.",
         self->ndjson_docs, self->ndjson},
        {"iotlat_plotter_es_documents_sent_total", "counter",
         "Documents Elasticsearch accepted.", self->es_sent, self->es},
        {"iotlat_plotter_es_documents_queued", "gauge",
         "Documents waiting to be accepted by Elasticsearch.", self->es_queued, self->es},
        {"iotlat_plotter_es_documents_dropped_total", "counter",
         "Documents dropped because the queue was full.", self->es_dropped, self->es},
        {"iotlat_plotter_es_documents_rejected_total", "counter",
         "Documents Elasticsearch refused for good (e.g. a mapping error).",
         self->es_rejected, self->es},
        {"iotlat_plotter_es_request_failures_total", "counter",
         "_bulk requests that failed and were retried.", self->es_failures, self->es},
    };
    for (size_t i = 0; i < sizeof own / sizeof own[0]; i++) {
        if (!own[i].shown)
            continue;
        family(f, own[i].name, own[i].type, own[i].help);
        fprintf(f, "%s{run=\"", own[i].name);
        il_prom_label_value(f, self->run);
        fprintf(f, "\"} %llu\n", (unsigned long long)own[i].v);
    }
}
