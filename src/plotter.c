/*
 * plotter.c - the plotter's loop (see plotter.h).
 *
 * Every IOTLAT_PLOTTER_INTERVAL: read the index, then read the topics'
 * streams in rounds.  A round fetches a batch of every topic and feeds, in
 * time order, only the records no topic with more unread records can
 * precede (those up to the earliest end of a full batch); the rest is
 * fetched again next round.  So records of all topics reach the rollup in
 * time order whether the plotter follows a live run or reads a finished
 * one, and the seconds of all topics are complete when they close.  After
 * the rounds the exposition text is rendered once for the HTTP thread.
 */
#include "plotter.h"

#include "clock.h"
#include "elk.h"
#include "esbulk.h"
#include "log.h"
#include "metricsrv.h"
#include "pngplot.h"
#include "promexp.h"
#include "report.h"
#include "results.h"
#include "rollup.h"
#include "runctl.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define ROUND_BUDGET 4096      /* entries fetched per round over all topics */
#define POLL_BUDGET_US 2000000 /* a poll yields to rendering after this long */
#define META_RETRY_US 5000000  /* first wait before looking up missing metadata again */

typedef struct plotter {
    const il_config *c;
    il_results *res;
    il_rollup *roll;
    FILE *ndjson;
    uint64_t ndjson_docs;
    int ndjson_failed;
    il_esbulk *es;
    il_metricsrv *srv;
    long *map;          /* reader topic -> rollup topic */
    int64_t *meta_next; /* per reader topic: next metadata lookup (0: done) */
    int64_t *meta_wait; /* and the wait before the one after */
    size_t nmap, cap_map;
    uint64_t polls;
} plotter;

long il_plotter_topics_cap(const char *v)
{
    if (!v || strcmp(v, "all") == 0)
        return -1;
    if (strcmp(v, "none") == 0)
        return 0;
    int64_t n;
    return il_parse_int(v, &n) == 0 && n > 0 ? (long)n : -1;
}

/* ---- documents ------------------------------------------------------------- */

static void put_doc(plotter *p, const il_elk_in *in)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&buf, &len);
    if (!m)
        return;
    il_elk_write(m, in);
    if (fclose(m) != 0) {
        free(buf);
        return;
    }
    if (p->ndjson) {
        if (fwrite(buf, 1, len, p->ndjson) != len || fputc('\n', p->ndjson) == EOF) {
            if (!p->ndjson_failed)
                il_log(IL_LOG_ERROR, "IOTLAT_PLOTTER_NDJSON='%s': cannot write (disk full?)",
                       p->c->plotter_ndjson);
            p->ndjson_failed = 1;
        } else {
            p->ndjson_docs++;
        }
    }
    if (p->es) {
        char id[IL_ELK_ID_LEN];
        il_elk_id(in->run, in->topic, in->t_us, id);
        il_esbulk_add(p->es, id, buf, len);
    }
    free(buf);
}

static void on_topic_second(void *ud, const il_rollup_topic *t, const il_rollup_in *in,
                            const il_counts *delta, int64_t window_us)
{
    plotter *p = ud;
    il_counts total;
    if (!p->ndjson && !p->es)
        return;
    il_rollup_topic_totals(t, &total);
    il_elk_in d = {.run = p->c->run_id,
                   .topic = t->name,
                   .driver = t->driver,
                   .t_us = in->t_us,
                   .window_us = window_us,
                   .delta = delta,
                   .total = &total,
                   .h = in->h,
                   .clock_bound_us = t->clock_bound_us};
    put_doc(p, &d);
}

static void on_all_second(void *ud, const il_rollup_point *pt, const il_hist *const h[IL_DISTS])
{
    plotter *p = ud;
    if (!p->ndjson && !p->es)
        return;
    il_elk_in d = {.run = p->c->run_id,
                   .topic = "_all",
                   .driver = il_rollup_driver(p->roll),
                   .t_us = pt->t_us,
                   .window_us = 1000000,
                   .delta = &pt->delta,
                   .total = &pt->total,
                   .h = h,
                   .clock_bound_us = il_rollup_clock_bound(p->roll),
                   .records = pt->records};
    put_doc(p, &d);
}

/* ---- reading ------------------------------------------------------------------ */

static void lookup_meta(plotter *p, size_t ri, int64_t now)
{
    il_rollup_topic *t = p->roll->topics[p->map[ri]];
    il_topic_meta m;
    if (!p->meta_next[ri] || now < p->meta_next[ri])
        return;
    if (il_results_meta(p->res, t->name, &m))
        return;
    if (m.driver[0])
        snprintf(t->driver, sizeof t->driver, "%s", m.driver);
    if (m.pub_error_us >= 0 && m.sub_error_us >= 0)
        t->clock_bound_us = m.pub_error_us + m.sub_error_us;
    /* Both are written once, at start: once known, never asked again.  A
     * publisher without Redis never tells its clock: ask less and less
     * often (up to once a minute). */
    if (t->driver[0] && t->clock_bound_us >= 0) {
        p->meta_next[ri] = 0;
    } else {
        p->meta_wait[ri] = p->meta_wait[ri] ? p->meta_wait[ri] * 2 : META_RETRY_US;
        if (p->meta_wait[ri] > 60000000)
            p->meta_wait[ri] = 60000000;
        p->meta_next[ri] = now + p->meta_wait[ri];
    }
}

/* Make sure every reader topic has a rollup topic; 0 or -1 (memory). */
static int map_topics(plotter *p, int64_t now)
{
    size_t n = il_results_ntopics(p->res);
    if (n > p->cap_map) {
        size_t cap = n * 2;
        long *map = realloc(p->map, cap * sizeof *map);
        if (!map)
            return -1;
        p->map = map;
        int64_t *mn = realloc(p->meta_next, cap * sizeof *mn);
        if (!mn)
            return -1;
        p->meta_next = mn;
        int64_t *mw = realloc(p->meta_wait, cap * sizeof *mw);
        if (!mw)
            return -1;
        p->meta_wait = mw;
        p->cap_map = cap;
    }
    for (; p->nmap < n; p->nmap++) {
        const char *name = il_results_topic(p->res, p->nmap);
        long ti = il_rollup_topic_index(p->roll, name);
        if (ti < 0)
            return -1;
        p->map[p->nmap] = ti;
        p->meta_next[p->nmap] = now;
        p->meta_wait[p->nmap] = 0;
        if (p->roll->topics[ti]->exported)
            il_log(IL_LOG_INFO, "following topic %s", name);
        else if (p->roll->max_exported > 0 && p->roll->ntopics == (size_t)p->roll->max_exported + 1)
            il_log(IL_LOG_INFO,
                   "more than %ld topics: topic %s and later ones are only in the totals "
                   "(topic=\"_all\"), see IOTLAT_PLOTTER_TOPICS",
                   p->roll->max_exported, name);
    }
    return 0;
}

typedef struct pending_rec {
    int64_t t;
    size_t topic, k;
} pending_rec;

static int by_time(const void *a, const void *b)
{
    const pending_rec *x = a, *y = b;
    if (x->t != y->t)
        return x->t < y->t ? -1 : 1;
    if (x->topic != y->topic)
        return x->topic < y->topic ? -1 : 1;
    return x->k < y->k ? -1 : x->k > y->k;
}

/* One round (see the top of the file).  Returns 1 if some topic has more
 * records, 0 if all are read, or IL_RESULTS_EDOWN. */
static int round_once(plotter *p)
{
    size_t n = p->nmap;
    if (!n)
        return 0;
    size_t batch = ROUND_BUDGET / n;
    if (batch < 2)
        batch = 2;
    if (batch > 256)
        batch = 256;
    size_t *got = calloc(n, sizeof *got);
    size_t *take = calloc(n, sizeof *take);
    pending_rec *recs = NULL;
    int rc = 0;
    if (!got || !take)
        goto out;
    int64_t horizon = INT64_MAX;
    size_t total = 0;
    for (size_t i = 0; i < n; i++) {
        long g = il_results_fetch(p->res, i, batch);
        if (g < 0) {
            rc = IL_RESULTS_EDOWN;
            goto out;
        }
        got[i] = (size_t)g;
        total += got[i];
        /* A full batch: this topic has more, later records, so nothing
         * after its last fetched one can be fed yet. */
        if (got[i] == batch) {
            int64_t t = il_results_t(p->res, i, got[i] - 1);
            if (t < horizon)
                horizon = t;
        }
    }
    recs = malloc((total ? total : 1) * sizeof *recs);
    if (!recs)
        goto out;
    size_t nr = 0;
    for (size_t i = 0; i < n; i++) {
        /* Records of a topic are in time order: feed a prefix of them. */
        while (take[i] < got[i] && il_results_t(p->res, i, take[i]) <= horizon) {
            recs[nr++] = (pending_rec){il_results_t(p->res, i, take[i]), i, take[i]};
            take[i]++;
        }
        p->roll->topics[p->map[i]]->pending = got[i] == batch;
        if (got[i] == batch)
            rc = 1;
    }
    qsort(recs, nr, sizeof *recs, by_time);
    for (size_t j = 0; j < nr; j++) {
        il_rollup_in in;
        il_results_decode(p->res, recs[j].topic, recs[j].k, &in);
        il_rollup_feed(p->roll, p->map[recs[j].topic], &in);
    }
    for (size_t i = 0; i < n; i++)
        il_results_consume(p->res, i, take[i]);
    il_rollup_settle(p->roll, il_now_us(), 0);
out:
    free(recs);
    free(got);
    free(take);
    return rc;
}

/* One poll.  Returns 1 if records are left for the next one (the budget
 * ran out), 0 when caught up, or IL_RESULTS_EDOWN. */
static int poll_once(plotter *p)
{
    int64_t start = il_now_us();
    p->polls++;
    if (il_results_refresh(p->res) < 0)
        return IL_RESULTS_EDOWN;
    if (map_topics(p, start)) {
        il_log(IL_LOG_ERROR, "out of memory for topics");
        return IL_RESULTS_EDOWN;
    }
    for (size_t i = 0; i < p->nmap; i++)
        lookup_meta(p, i, start);
    int rc;
    while ((rc = round_once(p)) == 1 && il_now_us() - start < POLL_BUDGET_US &&
           !il_runctl_stop_requested())
        ;
    for (size_t i = 0; i < p->nmap && rc == 0; i++)
        p->roll->topics[p->map[i]]->pending = 0;
    il_rollup_settle(p->roll, il_now_us(), 0);
    return rc;
}

/* ---- output ----------------------------------------------------------------- */

static void self_stats(plotter *p, il_prom_self *s)
{
    memset(s, 0, sizeof *s);
    s->run = p->c->run_id;
    s->redis_up = il_results_connected(p->res);
    s->polls = p->polls;
    s->redis_errors = il_results_errors(p->res);
    s->decode_errors = il_results_decode_errors(p->res);
    s->ndjson = p->ndjson != NULL;
    s->ndjson_docs = p->ndjson_docs;
    if (p->es) {
        il_esbulk_stats st;
        il_esbulk_stats_get(p->es, &st);
        s->es = 1;
        s->es_sent = st.sent;
        s->es_queued = st.queued;
        s->es_dropped = st.dropped;
        s->es_rejected = st.rejected;
        s->es_failures = st.failures;
    }
}

static void render(plotter *p)
{
    il_prom_self self;
    char *buf = NULL;
    size_t len = 0;
    if (!p->srv)
        return;
    self_stats(p, &self);
    FILE *m = open_memstream(&buf, &len);
    if (!m)
        return;
    il_prom_render(m, p->roll, &self);
    if (fclose(m) == 0)
        il_metricsrv_set(p->srv, buf, len);
    free(buf);
}

static void progress(plotter *p)
{
    char a[24], b[24];
    il_qsum run;
    il_qsum_of(&run, p->roll->run[IL_DIST_LAT]);
    const il_qsum *last = &p->roll->last.q[IL_DIST_LAT];
    fprintf(stderr, "[plot] topics %zu  records %llu  p99 last %s  run %s  redis %s",
            p->roll->ntopics, (unsigned long long)p->roll->records,
            last->count ? il_fmt_us(last->q_us[2], a, sizeof a) : "-",
            run.count ? il_fmt_us(run.q_us[2], b, sizeof b) : "-",
            il_results_connected(p->res) ? "up" : "DOWN");
    if (p->es) {
        il_esbulk_stats st;
        il_esbulk_stats_get(p->es, &st);
        fprintf(stderr, "  es sent %llu queued %llu failed requests %llu",
                (unsigned long long)st.sent, (unsigned long long)st.queued,
                (unsigned long long)st.failures);
    }
    fputc('\n', stderr);
}

static void sleep_until(int64_t t_us)
{
    while (!il_runctl_stop_requested()) {
        int64_t left = t_us - il_now_us();
        if (left <= 0)
            return;
        usleep((useconds_t)(left > 100000 ? 100000 : left));
    }
}

int il_plotter_run(const il_config *c)
{
    plotter p;
    char err[512];
    int rc = 0;
    memset(&p, 0, sizeof p);
    p.c = c;
    il_runctl_install();
    if (!c->redis_url) {
        fprintf(stderr,
                "%s: error: IOTLAT_REDIS_URL='' is invalid: the plotter reads the results "
                "from Redis: expected redis://[[user]:password@]host[:port][/db] (e.g. "
                "redis://127.0.0.1:6379)\n",
                c->program);
        return IL_CONFIG_EXIT_USAGE;
    }
    if (c->plotter_png && !il_pngplot_available()) {
        fprintf(stderr,
                "%s: error: IOTLAT_PLOTTER_PNG='%s' is invalid: gnuplot is not installed: "
                "expected gnuplot on PATH (Debian package gnuplot-nox)\n",
                c->program, c->plotter_png);
        return IL_CONFIG_EXIT_USAGE;
    }
    il_rollup_sink sink = {on_topic_second, on_all_second, &p};
    if (!(p.roll = il_rollup_new(il_plotter_topics_cap(c->plotter_topics), &sink))) {
        il_log(IL_LOG_ERROR, "out of memory");
        return 1;
    }
    int r;
    /* The endpoint and the outputs first: a setting that cannot work stops
     * the plotter before it says anything about Redis. */
    if (!c->plotter_once && strcmp(c->plotter_listen, "none") != 0) {
        r = il_metricsrv_start(&p.srv, c->plotter_listen, err, sizeof err);
        if (r) {
            fprintf(stderr, "%s: error: IOTLAT_PLOTTER_LISTEN='%s': %s%s\n", c->program,
                    c->plotter_listen, err,
                    r == IL_METRICSRV_EADDR
                        ? ": expected host:port of an address of this machine, or none"
                        : "");
            rc = r == IL_METRICSRV_EADDR ? IL_CONFIG_EXIT_USAGE : 1;
            goto out;
        }
    }
    if (c->plotter_ndjson) {
        p.ndjson = strcmp(c->plotter_ndjson, "-") == 0 ? stdout : fopen(c->plotter_ndjson, "a");
        if (!p.ndjson) {
            il_log(IL_LOG_ERROR, "IOTLAT_PLOTTER_NDJSON='%s': cannot open: %s",
                   c->plotter_ndjson, strerror(errno));
            rc = 1;
            goto out;
        }
    }
    if (c->plotter_es_url &&
        il_esbulk_open(&p.es, c->plotter_es_url, c->plotter_es_index,
                       (size_t)c->plotter_es_queue, err, sizeof err)) {
        il_log(IL_LOG_ERROR, "IOTLAT_PLOTTER_ES_URL: %s", err);
        rc = 1;
        goto out;
    }
    r = il_results_open(&p.res, c->redis_url, c->run_id, err, sizeof err);
    if (r) {
        il_log(IL_LOG_ERROR, "%s", err);
        rc = r == IL_RESULTS_EINVAL || r == IL_RESULTS_EAUTH ? IL_CONFIG_EXIT_USAGE : 1;
        goto out;
    }
    if (p.srv)
        il_log(IL_LOG_INFO, "serving Prometheus metrics at http://%s/metrics",
               c->plotter_listen);
    if (c->plotter_once)
        il_log(IL_LOG_INFO, "reading run %s from Redis once", c->run_id);
    else
        il_log(IL_LOG_INFO, "reading run %s from %s every %.3g s", c->run_id,
               il_results_connected(p.res) ? "Redis" : "Redis (not reachable yet)",
               (double)c->plotter_interval_us / 1e6);

    int64_t next_progress = il_now_us() + c->progress_us;
    for (;;) {
        int64_t t0 = il_now_us();
        int pr = poll_once(&p);
        /* Every poll: the plotter's own counters change even when the run
         * does not. */
        render(&p);
        if (p.ndjson)
            fflush(p.ndjson);
        if (p.es)
            il_esbulk_kick(p.es);
        if (c->progress_us > 0 && il_now_us() >= next_progress) {
            progress(&p);
            next_progress = il_now_us() + c->progress_us;
        }
        if (c->plotter_once && pr != 1) {
            if (pr < 0) {
                il_log(IL_LOG_ERROR, "cannot read the results of run %s from Redis",
                       c->run_id);
                rc = 1;
            }
            break;
        }
        if (il_runctl_stop_requested())
            break;
        if (pr != 1) /* caught up (or Redis down): wait for the next interval */
            sleep_until(t0 + c->plotter_interval_us);
    }
    il_rollup_settle(p.roll, il_now_us(), 1);
    render(&p);
    if (p.roll->ntopics == 0)
        il_log(IL_LOG_WARN, "run %s has no result records in Redis (iotlat:%s:index is empty)",
               c->run_id, c->run_id);
    if (c->plotter_png && p.roll->records) {
        char png[4300];
        if (il_pngplot_render(p.roll, c->plotter_png, c->run_id, png, sizeof png, err,
                              sizeof err)) {
            il_log(IL_LOG_ERROR, "IOTLAT_PLOTTER_PNG='%s': %s", c->plotter_png, err);
            rc = 1;
        } else {
            il_log(IL_LOG_INFO, "wrote %s", png);
        }
    }
out:
    if (p.ndjson && p.ndjson != stdout)
        fclose(p.ndjson);
    else if (p.ndjson)
        fflush(stdout);
    if (p.es) {
        uint64_t left = il_esbulk_close(p.es, c->grace_us);
        if (left) {
            il_log(IL_LOG_ERROR,
                   "%llu document(s) not accepted by Elasticsearch within IOTLAT_GRACE: "
                   "they are lost (the NDJSON file, if any, has them)",
                   (unsigned long long)left);
            rc = 1;
        }
    }
    il_metricsrv_stop(p.srv);
    il_results_close(p.res);
    il_rollup_free(p.roll);
    free(p.map);
    free(p.meta_next);
    free(p.meta_wait);
    return rc;
}
