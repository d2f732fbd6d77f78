/*
 * results.c - the plotter's reader of results in Redis (see results.h).
 *
 * A synchronous hiredis connection of its own: the plotter makes a handful
 * of commands per topic per poll, and a blocking round trip keeps the code
 * plain.  Any failed command drops the connection; the next call reconnects
 * (at most once per call), so a Redis restart costs a poll or two and the
 * streams are read on from the last consumed entry.
 */
#include "results.h"

#include "log.h"
#include "store.h"

#include <hiredis/hiredis.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct rtopic {
    char *name;
    int consumed;          /* an entry was consumed: last_* are valid */
    uint64_t last_ms, last_seq;
    redisReply *fetched;   /* the last XRANGE reply, or NULL */
    size_t nfetched;
    int64_t *t;            /* t_us of each fetched entry */
} rtopic;

struct il_results {
    il_redis_url url;
    char prefix[320];
    redisContext *ctx;
    int auth_failed;
    uint64_t errors, decode_errors;
    rtopic *topics;
    size_t ntopics, cap;
    il_hist *scratch[IL_DISTS];
};

static void drop(il_results *r, const char *why)
{
    if (r->ctx) {
        il_log(IL_LOG_WARN, "results store %s:%d: %s", r->url.host, r->url.port, why);
        redisFree(r->ctx);
        r->ctx = NULL;
    }
    r->errors++;
}

/* argv command; NULL (connection dropped) on failure.  Error replies are
 * returned to the caller. */
static redisReply *cmd(il_results *r, int argc, const char **argv)
{
    size_t lens[16];
    if (!r->ctx)
        return NULL;
    for (int i = 0; i < argc; i++)
        lens[i] = strlen(argv[i]);
    redisReply *rep = redisCommandArgv(r->ctx, argc, argv, lens);
    if (!rep)
        drop(r, r->ctx->errstr[0] ? r->ctx->errstr : "connection lost");
    return rep;
}

static int connect_now(il_results *r, char *errbuf, size_t errlen)
{
    if (r->ctx)
        return 0;
    struct timeval tv = {.tv_sec = 1, .tv_usec = 0};
    r->ctx = redisConnectWithTimeout(r->url.host, r->url.port, tv);
    if (!r->ctx || r->ctx->err) {
        snprintf(errbuf, errlen, "cannot connect to %s:%d: %s", r->url.host, r->url.port,
                 r->ctx ? r->ctx->errstr : "out of memory");
        if (r->ctx)
            redisFree(r->ctx);
        r->ctx = NULL;
        r->errors++;
        return IL_RESULTS_EDOWN;
    }
    redisSetTimeout(r->ctx, (struct timeval){.tv_sec = 5, .tv_usec = 0});
    if (r->url.password[0]) {
        const char *a[3] = {"AUTH", r->url.user[0] ? r->url.user : r->url.password,
                            r->url.password};
        redisReply *rep = cmd(r, r->url.user[0] ? 3 : 2, a);
        if (!rep)
            return IL_RESULTS_EDOWN;
        int bad = rep->type == REDIS_REPLY_ERROR;
        if (bad)
            snprintf(errbuf, errlen, "Redis at %s:%d refused the credentials: %s",
                     r->url.host, r->url.port, rep->str);
        freeReplyObject(rep);
        if (bad) {
            redisFree(r->ctx);
            r->ctx = NULL;
            return IL_RESULTS_EAUTH;
        }
    }
    if (r->url.db) {
        char db[16];
        snprintf(db, sizeof db, "%d", r->url.db);
        const char *a[2] = {"SELECT", db};
        redisReply *rep = cmd(r, 2, a);
        if (!rep)
            return IL_RESULTS_EDOWN;
        freeReplyObject(rep);
    }
    return 0;
}

/* Reconnect if needed before a command; logs once per failure streak. */
static int ready(il_results *r)
{
    char err[512];
    if (r->ctx)
        return 0;
    int rc = connect_now(r, err, sizeof err);
    if (rc == IL_RESULTS_EAUTH)
        il_log(IL_LOG_ERROR, "%s", err);
    return rc;
}

int il_results_open(il_results **out, const char *url, const char *run, char *errbuf,
                    size_t errlen)
{
    char why[256];
    il_results *r = calloc(1, sizeof *r);
    if (!r) {
        snprintf(errbuf, errlen, "out of memory");
        return IL_RESULTS_EINVAL;
    }
    if (il_redis_url_parse(url, &r->url, why, sizeof why)) {
        snprintf(errbuf, errlen, "IOTLAT_REDIS_URL is invalid: %s", why);
        free(r);
        return IL_RESULTS_EINVAL;
    }
    snprintf(r->prefix, sizeof r->prefix, "iotlat:%s:", run);
    for (int d = 0; d < IL_DISTS; d++)
        if (!(r->scratch[d] = malloc(sizeof(il_hist)))) {
            il_results_close(r);
            snprintf(errbuf, errlen, "out of memory");
            return IL_RESULTS_EINVAL;
        }
    int rc = connect_now(r, errbuf, errlen);
    if (rc == IL_RESULTS_EAUTH) {
        il_results_close(r);
        return rc;
    }
    if (rc)
        il_log(IL_LOG_WARN, "%s: will keep trying", errbuf);
    *out = r;
    return 0;
}

static void release_fetched(rtopic *t)
{
    if (t->fetched)
        freeReplyObject(t->fetched);
    t->fetched = NULL;
    t->nfetched = 0;
    free(t->t);
    t->t = NULL;
}

void il_results_close(il_results *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->ntopics; i++) {
        release_fetched(&r->topics[i]);
        free(r->topics[i].name);
    }
    free(r->topics);
    for (int d = 0; d < IL_DISTS; d++)
        free(r->scratch[d]);
    if (r->ctx)
        redisFree(r->ctx);
    free(r);
}

int il_results_connected(const il_results *r) { return r->ctx != NULL; }
uint64_t il_results_errors(const il_results *r) { return r->errors; }
uint64_t il_results_decode_errors(const il_results *r) { return r->decode_errors; }
size_t il_results_ntopics(const il_results *r) { return r->ntopics; }
const char *il_results_topic(const il_results *r, size_t i) { return r->topics[i].name; }

static int by_name(const void *a, const void *b)
{
    const redisReply *x = *(redisReply *const *)a, *y = *(redisReply *const *)b;
    return strcmp(x->str, y->str);
}

long il_results_refresh(il_results *r)
{
    char key[400];
    if (ready(r))
        return IL_RESULTS_EDOWN;
    snprintf(key, sizeof key, "%sindex", r->prefix);
    const char *a[2] = {"SMEMBERS", key};
    redisReply *rep = cmd(r, 2, a);
    if (!rep)
        return IL_RESULTS_EDOWN;
    if (rep->type == REDIS_REPLY_ARRAY && rep->elements) {
        qsort(rep->element, rep->elements, sizeof rep->element[0], by_name);
        for (size_t e = 0; e < rep->elements; e++) {
            const redisReply *m = rep->element[e];
            size_t i;
            if (m->type != REDIS_REPLY_STRING)
                continue;
            for (i = 0; i < r->ntopics; i++)
                if (strcmp(r->topics[i].name, m->str) == 0)
                    break;
            if (i < r->ntopics)
                continue;
            if (r->ntopics == r->cap) {
                size_t cap = r->cap ? 2 * r->cap : 16;
                rtopic *t = realloc(r->topics, cap * sizeof *t);
                if (!t)
                    break;
                r->topics = t;
                r->cap = cap;
            }
            rtopic *t = &r->topics[r->ntopics];
            memset(t, 0, sizeof *t);
            if (!(t->name = strdup(m->str)))
                break;
            r->ntopics++;
        }
    }
    freeReplyObject(rep);
    return (long)r->ntopics;
}

/* "1700000000000-3" -> (ms, seq); 0 or -1. */
static int parse_id(const char *s, uint64_t *ms, uint64_t *seq)
{
    char *end;
    *ms = strtoull(s, &end, 10);
    if (*end != '-')
        return -1;
    *seq = strtoull(end + 1, &end, 10);
    return *end ? -1 : 0;
}

static const redisReply *field(const redisReply *entry, const char *name)
{
    const redisReply *f = entry->element[1];
    for (size_t i = 0; i + 1 < f->elements; i += 2)
        if (f->element[i]->type == REDIS_REPLY_STRING && strcmp(f->element[i]->str, name) == 0)
            return f->element[i + 1];
    return NULL;
}

static int entry_ok(const redisReply *e)
{
    return e->type == REDIS_REPLY_ARRAY && e->elements == 2 &&
           e->element[0]->type == REDIS_REPLY_STRING &&
           e->element[1]->type == REDIS_REPLY_ARRAY;
}

long il_results_fetch(il_results *r, size_t i, size_t max)
{
    rtopic *t = &r->topics[i];
    char key[600], start[64], count[24];
    release_fetched(t);
    if (ready(r))
        return IL_RESULTS_EDOWN;
    snprintf(key, sizeof key, "%srec:%s", r->prefix, t->name);
    /* The id right after the last consumed one: XRANGE's start is
     * inclusive, and "(" exclusive ranges need Redis 6.2. */
    if (t->consumed)
        snprintf(start, sizeof start, "%" PRIu64 "-%" PRIu64, t->last_ms, t->last_seq + 1);
    else
        snprintf(start, sizeof start, "-");
    snprintf(count, sizeof count, "%zu", max);
    const char *a[6] = {"XRANGE", key, start, "+", "COUNT", count};
    redisReply *rep = cmd(r, 6, a);
    if (!rep)
        return IL_RESULTS_EDOWN;
    if (rep->type != REDIS_REPLY_ARRAY) {
        /* WRONGTYPE or the like: nothing we can read, and not an outage. */
        if (rep->type == REDIS_REPLY_ERROR)
            il_log(IL_LOG_WARN, "results store: XRANGE %s: %s", key, rep->str);
        freeReplyObject(rep);
        return 0;
    }
    t->fetched = rep;
    t->nfetched = rep->elements;
    t->t = calloc(t->nfetched ? t->nfetched : 1, sizeof *t->t);
    if (!t->t) {
        release_fetched(t);
        return 0;
    }
    for (size_t k = 0; k < t->nfetched; k++) {
        const redisReply *e = rep->element[k];
        const redisReply *v = entry_ok(e) ? field(e, "t_us") : NULL;
        t->t[k] = v && v->type == REDIS_REPLY_STRING ? strtoll(v->str, NULL, 10) : 0;
    }
    return (long)t->nfetched;
}

int64_t il_results_t(const il_results *r, size_t i, size_t k)
{
    return r->topics[i].t[k];
}

void il_results_decode(il_results *r, size_t i, size_t k, il_rollup_in *in)
{
    static const char *const hnames[IL_DISTS] = {"latency", "service_latency", "send_lag"};
    const redisReply *e = r->topics[i].fetched->element[k];
    memset(in, 0, sizeof *in);
    in->t_us = r->topics[i].t[k];
    if (!entry_ok(e))
        return;
    for (int c = 0; c < IL_COUNTS; c++) {
        const redisReply *v = field(e, il_count_names[c]);
        if (v && v->type == REDIS_REPLY_STRING)
            in->c.v[c] = (int64_t)strtoull(v->str, NULL, 10);
    }
    for (int d = 0; d < IL_DISTS; d++) {
        const redisReply *v = field(e, hnames[d]);
        if (!v || v->type != REDIS_REPLY_STRING)
            continue;
        if (il_hist_decode(r->scratch[d], (const uint8_t *)v->str, v->len) == 0)
            in->h[d] = r->scratch[d];
        else
            r->decode_errors++;
    }
}

void il_results_consume(il_results *r, size_t i, size_t n)
{
    rtopic *t = &r->topics[i];
    if (n > t->nfetched)
        n = t->nfetched;
    if (n) {
        const redisReply *e = t->fetched->element[n - 1];
        uint64_t ms, seq;
        if (entry_ok(e) && parse_id(e->element[0]->str, &ms, &seq) == 0) {
            t->last_ms = ms;
            t->last_seq = seq;
            t->consumed = 1;
        }
    }
    release_fetched(t);
}

/* ---- metadata ------------------------------------------------------------ */

/* HMGET key f... into out[] (empty strings for missing fields).  0 or
 * IL_RESULTS_EDOWN. */
static int hmget(il_results *r, const char *key, int n, const char *const *fields,
                 char out[][256])
{
    const char *a[12];
    a[0] = "HMGET";
    a[1] = key;
    for (int i = 0; i < n; i++) {
        a[2 + i] = fields[i];
        out[i][0] = '\0';
    }
    redisReply *rep = cmd(r, 2 + n, a);
    if (!rep)
        return IL_RESULTS_EDOWN;
    if (rep->type == REDIS_REPLY_ARRAY)
        for (size_t i = 0; i < rep->elements && i < (size_t)n; i++)
            if (rep->element[i]->type == REDIS_REPLY_STRING)
                snprintf(out[i], 256, "%s", rep->element[i]->str);
    freeReplyObject(rep);
    return 0;
}

static int64_t num_or_unknown(const char *s)
{
    char *end;
    if (!s[0])
        return -1;
    long long v = strtoll(s, &end, 10);
    return *end || v < 0 ? -1 : v;
}

int il_results_meta(il_results *r, const char *topic, il_topic_meta *m)
{
    char key[700], v[4][256], t[4][256], sub[256], source[256];
    static const char *const fields[4] = {"driver", "ready", "source", "clock_error_us"};
    memset(m, 0, sizeof *m);
    m->pub_error_us = m->sub_error_us = -1;
    if (ready(r))
        return IL_RESULTS_EDOWN;
    /* A transformer's output topic (stage transformer) names its source,
     * the publisher's topic; a publisher's own topic is in stage
     * publisher.  Whichever stage the subscriber read from holds its id in
     * "ready". */
    snprintf(key, sizeof key, "%stopic:transformer:%s", r->prefix, topic);
    if (hmget(r, key, 4, fields, t))
        return IL_RESULTS_EDOWN;
    snprintf(key, sizeof key, "%stopic:publisher:%s", r->prefix, topic);
    if (hmget(r, key, 4, fields, v))
        return IL_RESULTS_EDOWN;
    snprintf(m->driver, sizeof m->driver, "%.63s", t[0][0] ? t[0] : v[0]);
    snprintf(sub, sizeof sub, "%s", t[1][0] ? t[1] : v[1]);
    snprintf(source, sizeof source, "%s", t[2][0] ? t[2] : topic);
    if (strcmp(source, topic) == 0) {
        m->pub_error_us = num_or_unknown(v[3]);
    } else {
        snprintf(key, sizeof key, "%stopic:publisher:%s", r->prefix, source);
        if (hmget(r, key, 4, fields, v))
            return IL_RESULTS_EDOWN;
        m->pub_error_us = num_or_unknown(v[3]);
    }
    if (sub[0]) {
        static const char *const sf[2] = {"clock_error_us", "driver"};
        snprintf(key, sizeof key, "%smeta:subscriber:%s", r->prefix, sub);
        if (hmget(r, key, 2, sf, v))
            return IL_RESULTS_EDOWN;
        m->sub_error_us = num_or_unknown(v[0]);
        if (!m->driver[0])
            snprintf(m->driver, sizeof m->driver, "%.63s", v[1]);
    }
    return 0;
}
