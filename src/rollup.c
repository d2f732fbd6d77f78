/*
 * rollup.c - merging per-second records into run, topic and all-topic views
 * (see rollup.h).
 *
 * The seconds of all topics are kept in a small ring of open bins keyed by
 * the calendar second a record ends in.  Records reach the plotter a poll
 * interval or more after they were written, and each subscriber's second
 * has its own phase, so a bin is only closed when no topic that is still
 * writing can add to it; closing is what makes "the last second of all
 * topics" a real second and not a mix of whatever arrived last.
 */
#include "rollup.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *const il_count_names[IL_COUNTS] = {
    "received", "received_unique", "lost",     "duplicates", "reordered",
    "malformed", "stale",          "expected", "devices"};
const char *const il_dist_names[IL_DISTS] = {"latency", "service_latency", "send_lag"};
const double il_quantiles[IL_NQ] = {0.5, 0.9, 0.99, 0.999, 1.0};
/* The same quantiles in percent, so that ranks are computed with the very
 * expression il_hist_percentile uses and the numbers match the subscriber's
 * report to the microsecond. */
static const double percents[IL_NQ] = {50, 90, 99, 99.9, 100};

#define US_PER_S 1000000

void il_qsum_of(il_qsum *out, const il_hist *h)
{
    memset(out, 0, sizeof *out);
    if (!h)
        return;
    out->count = h->total;
    out->negative = h->negative;
    out->sum_us = h->sum;
    if (!h->total)
        return;
    out->min_us = h->min;
    /* One walk for every quantile: the ranks ascend with the quantiles. */
    uint64_t rank[IL_NQ];
    for (int k = 0; k < IL_NQ; k++) {
        double r = ceil(percents[k] / 100.0 * (double)h->total);
        rank[k] = r < 1.0 ? 1 : (r >= (double)h->total ? h->total : (uint64_t)r);
    }
    uint64_t seen = 0;
    int k = 0;
    for (size_t i = 0; i < IL_HIST_COUNTS && k < IL_NQ; i++) {
        seen += h->counts[i];
        while (k < IL_NQ && (seen >= rank[k] || i == IL_HIST_COUNTS - 1)) {
            int64_t v = il_hist_highest_equivalent(il_hist_value_at_index(i));
            out->q_us[k++] = v < h->max ? v : h->max;
        }
    }
    /* p100 is the maximum itself, as il_hist_percentile has it. */
    out->q_us[IL_NQ - 1] = h->max;
}

static int64_t sec_of(int64_t t_us)
{
    /* A record covers the second that ends at t_us: (t - 1 s, t]. */
    return t_us > 0 ? (t_us + US_PER_S - 1) / US_PER_S : 0;
}

static il_hist *hist_new(void)
{
    il_hist *h = malloc(sizeof *h);
    if (h)
        il_hist_init(h);
    return h;
}

il_rollup *il_rollup_new(long max_exported, const il_rollup_sink *sink)
{
    il_rollup *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    r->max_exported = max_exported;
    if (sink)
        r->sink = *sink;
    for (int d = 0; d < IL_DISTS; d++) {
        if (!(r->run[d] = hist_new()))
            goto oom;
        for (int b = 0; b < IL_ROLLUP_BINS; b++)
            if (!(r->bins[b].h[d] = hist_new()))
                goto oom;
    }
    return r;
oom:
    il_rollup_free(r);
    return NULL;
}

void il_rollup_free(il_rollup *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->ntopics; i++) {
        for (int d = 0; d < IL_DISTS; d++)
            free(r->topics[i]->run[d]);
        free(r->topics[i]);
    }
    free(r->topics);
    for (int d = 0; d < IL_DISTS; d++) {
        free(r->run[d]);
        for (int b = 0; b < IL_ROLLUP_BINS; b++)
            free(r->bins[b].h[d]);
    }
    free(r->series);
    free(r);
}

long il_rollup_topic_index(il_rollup *r, const char *name)
{
    for (size_t i = 0; i < r->ntopics; i++)
        if (strcmp(r->topics[i]->name, name) == 0)
            return (long)i;
    if (r->ntopics == r->cap_topics) {
        size_t cap = r->cap_topics ? 2 * r->cap_topics : 16;
        il_rollup_topic **t = realloc(r->topics, cap * sizeof *t);
        if (!t)
            return -1;
        r->topics = t;
        r->cap_topics = cap;
    }
    il_rollup_topic *t = calloc(1, sizeof *t);
    if (!t)
        return -1;
    snprintf(t->name, sizeof t->name, "%s", name);
    t->clock_bound_us = -1;
    /* A topic named like the series of all topics would make those series
     * twice, and Prometheus refuses a scrape with duplicates: it only
     * counts in the totals. */
    if (strcmp(name, "_all") != 0 && (r->max_exported < 0 || r->nexported < r->max_exported)) {
        int ok = 1;
        for (int d = 0; d < IL_DISTS; d++)
            ok &= (t->run[d] = hist_new()) != NULL;
        if (!ok) {
            for (int d = 0; d < IL_DISTS; d++)
                free(t->run[d]);
            free(t);
            return -1;
        }
        t->exported = 1;
        r->nexported++;
    }
    r->topics[r->ntopics] = t;
    return (long)r->ntopics++;
}

const char *il_rollup_driver(const il_rollup *r)
{
    const char *d = NULL;
    for (size_t i = 0; i < r->ntopics; i++) {
        const char *td = r->topics[i]->driver;
        if (!td[0])
            continue;
        if (d && strcmp(d, td) != 0)
            return "mixed";
        d = td;
    }
    return d ? d : "unknown";
}

int64_t il_rollup_clock_bound(const il_rollup *r)
{
    int64_t worst = -1;
    for (size_t i = 0; i < r->ntopics; i++)
        if (r->topics[i]->clock_bound_us > worst)
            worst = r->topics[i]->clock_bound_us;
    return worst;
}

void il_rollup_topic_totals(const il_rollup_topic *t, il_counts *out)
{
    for (int k = 0; k < IL_COUNTS; k++)
        out->v[k] = t->base.v[k] + t->cur.v[k];
}

void il_rollup_totals(const il_rollup *r, il_counts *out)
{
    memset(out, 0, sizeof *out);
    for (size_t i = 0; i < r->ntopics; i++) {
        il_counts c;
        il_rollup_topic_totals(r->topics[i], &c);
        for (int k = 0; k < IL_COUNTS; k++)
            out->v[k] += c.v[k];
    }
}

/* Close bin b: it becomes the newest completed second and a point of the
 * series. */
static void complete(il_rollup *r, il_rollup_bin *b)
{
    il_rollup_point p;
    memset(&p, 0, sizeof p);
    p.t_us = b->sec * US_PER_S;
    p.records = b->records;
    p.delta = b->delta;
    for (int k = 0; k < IL_COUNTS; k++)
        r->closed.v[k] += b->delta.v[k];
    p.total = r->closed;
    for (int d = 0; d < IL_DISTS; d++)
        il_qsum_of(&p.q[d], b->h[d]);
    if (r->nseries == r->cap_series) {
        size_t cap = r->cap_series ? 2 * r->cap_series : 256;
        il_rollup_point *s = realloc(r->series, cap * sizeof *s);
        if (s) {
            r->series = s;
            r->cap_series = cap;
        }
    }
    if (r->nseries < r->cap_series)
        r->series[r->nseries++] = p;
    r->last = p;
    if (r->sink.all_second)
        r->sink.all_second(r->sink.ud, &p, (const il_hist *const *)b->h);
    if (b->sec > r->done_sec)
        r->done_sec = b->sec;
    b->sec = 0;
    b->records = 0;
    memset(&b->delta, 0, sizeof b->delta);
    for (int d = 0; d < IL_DISTS; d++)
        il_hist_init(b->h[d]);
}

/* The open bin with the smallest second, or NULL. */
static il_rollup_bin *oldest_bin(il_rollup *r)
{
    il_rollup_bin *o = NULL;
    for (int i = 0; i < IL_ROLLUP_BINS; i++)
        if (r->bins[i].sec && (!o || r->bins[i].sec < o->sec))
            o = &r->bins[i];
    return o;
}

/* The bin of second `sec`, or NULL when the record is late: that second is
 * complete, or it is IL_ROLLUP_BINS or more behind the newest open one.
 * Open seconds always span fewer than IL_ROLLUP_BINS, so each has a slot
 * of its own; a second that far ahead of the oldest open one closes it (a
 * topic that many seconds behind is idle by any measure). */
static il_rollup_bin *bin_for(il_rollup *r, int64_t sec)
{
    int64_t newest = 0;
    for (int i = 0; i < IL_ROLLUP_BINS; i++)
        if (r->bins[i].sec > newest)
            newest = r->bins[i].sec;
    if (sec <= r->done_sec || (newest && sec <= newest - IL_ROLLUP_BINS))
        return NULL;
    il_rollup_bin *o;
    while ((o = oldest_bin(r)) && o->sec <= sec - IL_ROLLUP_BINS)
        complete(r, o);
    il_rollup_bin *b = &r->bins[sec % IL_ROLLUP_BINS];
    b->sec = sec; /* free, or already this second's */
    return b;
}

void il_rollup_feed(il_rollup *r, long ti, const il_rollup_in *in)
{
    il_rollup_topic *t = r->topics[ti];
    il_counts delta;
    int restart = 0;
    /* Every running total but lost only grows while one subscriber writes
     * the topic; one that went down means another one took over. */
    for (int k = 0; k < IL_COUNTS && t->records; k++)
        if (k != IL_C_LOST && in->c.v[k] < t->cur.v[k])
            restart = 1;
    int64_t devices_before = t->cur.v[IL_C_DEVICES];
    if (restart) {
        for (int k = 0; k < IL_COUNTS; k++)
            if (k != IL_C_DEVICES) /* the same devices, seen again */
                t->base.v[k] += t->cur.v[k];
        memset(&t->cur, 0, sizeof t->cur);
        t->segments++;
    }
    if (!t->records)
        t->segments = 1;
    for (int k = 0; k < IL_COUNTS; k++)
        delta.v[k] = in->c.v[k] - t->cur.v[k];
    delta.v[IL_C_DEVICES] = in->c.v[IL_C_DEVICES] - devices_before;
    t->cur = in->c;
    for (int d = 0; d < IL_DISTS; d++) {
        il_qsum_of(&t->last[d], in->h[d]);
        if (!in->h[d])
            continue;
        if (t->run[d])
            il_hist_merge(t->run[d], in->h[d]);
        il_hist_merge(r->run[d], in->h[d]);
    }
    il_rollup_bin *b = bin_for(r, sec_of(in->t_us));
    if (!b) {
        r->late++;
        for (int k = 0; k < IL_COUNTS; k++)
            r->closed.v[k] += delta.v[k];
    } else {
        b->records++;
        for (int k = 0; k < IL_COUNTS; k++)
            b->delta.v[k] += delta.v[k];
        for (int d = 0; d < IL_DISTS; d++)
            if (in->h[d])
                il_hist_merge(b->h[d], in->h[d]);
    }
    /* The window a record covers is nominally a second; the gap to the
     * previous record says what it really was. */
    int64_t window = US_PER_S;
    if (t->records && in->t_us > t->last_t_us && in->t_us - t->last_t_us < 10 * US_PER_S)
        window = in->t_us - t->last_t_us;
    if (!t->records)
        t->first_t_us = in->t_us;
    if (in->t_us > t->last_t_us)
        t->last_t_us = in->t_us;
    t->records++;
    r->records++;
    if (in->t_us > r->newest_t_us)
        r->newest_t_us = in->t_us;
    if (r->sink.topic_second)
        r->sink.topic_second(r->sink.ud, t, in, &delta, window);
}

/* Can no topic add to second `sec` any more? */
static int closed(const il_rollup *r, int64_t sec, int64_t now_us)
{
    int64_t end = sec * US_PER_S;
    int all_idle = now_us - r->newest_t_us > IL_ROLLUP_IDLE_US;
    for (size_t i = 0; i < r->ntopics; i++) {
        const il_rollup_topic *t = r->topics[i];
        if (t->last_t_us >= end)
            continue; /* moved past it; its records come in order */
        if (t->pending)
            return 0; /* has unread records that may belong to it */
        if (all_idle || t->last_t_us < r->newest_t_us - IL_ROLLUP_IDLE_US)
            continue;
        return 0;
    }
    return 1;
}

void il_rollup_settle(il_rollup *r, int64_t now_us, int final)
{
    il_rollup_bin *b;
    while ((b = oldest_bin(r)) && (final || closed(r, b->sec, now_us)))
        complete(r, b);
}
