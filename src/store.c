/*
 * store.c - the Redis rendezvous and results store (see store.h).
 *
 * One synchronous hiredis connection with short timeouts: every call here is
 * made at most a few times per second (claims, lease renewals, one record
 * per second), never per message, so a blocking round trip of a few hundred
 * microseconds is fine and keeps the code obvious.  A failed call marks the
 * store disconnected; reconnection is attempted with a backoff from the
 * calls that follow, and queued records are written first once it works.
 */
#include "store.h"

#include "clock.h"
#include "config.h"
#include "log.h"

#include <errno.h>
#include <hiredis/hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#define RECONNECT_US 500000      /* wait between reconnect attempts */
#define EXPIRE_REFRESH_US 60000000 /* refresh a record key's expiry this often */
#define MAX_TOPICS 64            /* topics whose record keys we track */
#define STREAM_MAXLEN "200000"   /* records kept per topic at most */

/* A queued command: argc strings in one block. */
typedef struct qcmd {
    struct qcmd *next;
    int argc;
    size_t *lens;
    char **argv;
} qcmd;

typedef struct topic_state {
    char name[256];
    int64_t expire_at_us; /* when the key's expiry was last refreshed */
} topic_state;

struct il_store {
    il_redis_url url;
    char prefix[300];
    char id[128];
    char role[32];
    redisContext *ctx;
    int64_t lease_us, retention_us;
    size_t buffer_max, buffered;
    uint64_t dropped, outages, writes;
    int64_t outage_start_us, outage_total_us;
    int64_t next_attempt_us;
    int down; /* 1 while unreachable after having been asked to connect */
    qcmd *qhead, *qtail;
    topic_state topics[MAX_TOPICS];
    int ntopics;
    char err[256];
};

/* ---- URL ------------------------------------------------------------- */

int il_redis_url_parse(const char *url, il_redis_url *u, char *errbuf, size_t errlen)
{
    const char *p = url, *at, *hp;
    memset(u, 0, sizeof *u);
    u->port = 6379;
    if (strncmp(p, "redis://", 8) != 0) {
        snprintf(errbuf, errlen, "expected redis://[[user]:password@]host[:port][/db]");
        return IL_STORE_EINVAL;
    }
    p += 8;
    at = strrchr(p, '@');
    if (at) {
        const char *colon = memchr(p, ':', (size_t)(at - p));
        if (!colon || (size_t)(colon - p) >= sizeof u->user ||
            (size_t)(at - colon - 1) >= sizeof u->password) {
            snprintf(errbuf, errlen,
                     "the credentials part must be [user]:password (no password shown)");
            return IL_STORE_EINVAL;
        }
        memcpy(u->user, p, (size_t)(colon - p));
        memcpy(u->password, colon + 1, (size_t)(at - colon - 1));
        p = at + 1;
    }
    hp = p;
    size_t hl = strcspn(hp, ":/");
    if (hl == 0 || hl >= sizeof u->host) {
        snprintf(errbuf, errlen, "missing or too long host name");
        return IL_STORE_EINVAL;
    }
    memcpy(u->host, hp, hl);
    p = hp + hl;
    if (*p == ':') {
        char *end;
        long port = strtol(p + 1, &end, 10);
        if (end == p + 1 || port < 1 || port > 65535 || (*end && *end != '/')) {
            snprintf(errbuf, errlen, "the port must be a number from 1 to 65535");
            return IL_STORE_EINVAL;
        }
        u->port = (int)port;
        p = end;
    }
    if (*p == '/' && p[1]) {
        char *end;
        long db = strtol(p + 1, &end, 10);
        if (end == p + 1 || *end || db < 0 || db > 1000000) {
            snprintf(errbuf, errlen, "the database must be a number after '/'");
            return IL_STORE_EINVAL;
        }
        u->db = (int)db;
    } else if (*p && strcmp(p, "/") != 0) {
        snprintf(errbuf, errlen, "unexpected text after the host");
        return IL_STORE_EINVAL;
    }
    return 0;
}

/* ---- connection ------------------------------------------------------- */

static void went_down(il_store *s, const char *reason)
{
    /* The reason often is the context's own errstr: copy it before the
     * context is freed. */
    char why[128];
    snprintf(why, sizeof why, "%s", reason);
    if (s->ctx) {
        redisFree(s->ctx);
        s->ctx = NULL;
    }
    if (!s->down) {
        s->down = 1;
        s->outages++;
        s->outage_start_us = il_now_us();
        il_log(IL_LOG_WARN, "results store %s:%d unreachable (%s): buffering records",
               s->url.host, s->url.port, why);
    }
    s->next_attempt_us = il_now_us() + RECONNECT_US;
}

/* Run one command; NULL when the connection failed (store marked down). */
static redisReply *command(il_store *s, int argc, const char **argv, const size_t *lens)
{
    if (!s->ctx)
        return NULL;
    redisReply *r = redisCommandArgv(s->ctx, argc, argv, lens);
    if (!r) {
        went_down(s, s->ctx && s->ctx->errstr[0] ? s->ctx->errstr : "connection lost");
        return NULL;
    }
    return r;
}

/* AUTH and SELECT on a fresh connection.  Returns 0, IL_STORE_EAUTH or
 * IL_STORE_EDOWN. */
static int handshake(il_store *s)
{
    redisReply *r;
    if (s->url.password[0]) {
        const char *argv[3] = {"AUTH", s->url.user[0] ? s->url.user : s->url.password,
                               s->url.password};
        size_t lens[3] = {4, strlen(argv[1]), strlen(s->url.password)};
        r = command(s, s->url.user[0] ? 3 : 2, argv, lens);
        if (!r)
            return IL_STORE_EDOWN;
        int bad = r->type == REDIS_REPLY_ERROR;
        if (bad)
            snprintf(s->err, sizeof s->err, "%s", r->str);
        freeReplyObject(r);
        if (bad)
            return IL_STORE_EAUTH;
    }
    if (s->url.db) {
        char db[16];
        snprintf(db, sizeof db, "%d", s->url.db);
        const char *argv[2] = {"SELECT", db};
        size_t lens[2] = {6, strlen(db)};
        r = command(s, 2, argv, lens);
        if (!r)
            return IL_STORE_EDOWN;
        freeReplyObject(r);
    }
    return 0;
}

static int flush_queue(il_store *s);

static int try_connect(il_store *s)
{
    struct timeval tv = {.tv_sec = 1, .tv_usec = 0};
    if (s->ctx)
        return 0;
    if (il_now_us() < s->next_attempt_us)
        return IL_STORE_EDOWN;
    s->ctx = redisConnectWithTimeout(s->url.host, s->url.port, tv);
    if (!s->ctx || s->ctx->err) {
        went_down(s, s->ctx ? s->ctx->errstr : "out of memory");
        return IL_STORE_EDOWN;
    }
    redisSetTimeout(s->ctx, (struct timeval){.tv_sec = 2, .tv_usec = 0});
    int rc = handshake(s);
    if (rc) {
        if (rc == IL_STORE_EAUTH && s->ctx) {
            redisFree(s->ctx);
            s->ctx = NULL;
        }
        return rc;
    }
    if (s->down) {
        int64_t now = il_now_us();
        s->outage_total_us += now - s->outage_start_us;
        s->down = 0;
        /* Record keys may have expired or been lost with the server: make
         * sure the index and expiries are set again. */
        for (int i = 0; i < s->ntopics; i++)
            s->topics[i].expire_at_us = 0;
        il_log(IL_LOG_WARN, "results store %s:%d reachable again after %.1f s; writing %zu "
                            "buffered records",
               s->url.host, s->url.port, (double)(now - s->outage_start_us) / 1e6,
               s->buffered);
    }
    flush_queue(s);
    return 0;
}

int il_store_open(il_store **out, const il_config *c, const char *role, const char *id,
                  char *errbuf, size_t errlen)
{
    il_store *s = calloc(1, sizeof *s);
    if (!s) {
        snprintf(errbuf, errlen, "out of memory");
        return IL_STORE_EINVAL;
    }
    char why[256];
    if (il_redis_url_parse(c->redis_url, &s->url, why, sizeof why)) {
        snprintf(errbuf, errlen, "IOTLAT_REDIS_URL is invalid: %s", why);
        free(s);
        return IL_STORE_EINVAL;
    }
    snprintf(s->prefix, sizeof s->prefix, "iotlat:%s:", c->run_id);
    snprintf(s->id, sizeof s->id, "%s", id);
    snprintf(s->role, sizeof s->role, "%s", role);
    s->lease_us = c->lease_us;
    s->retention_us = c->retention_us;
    s->buffer_max = (size_t)c->redis_buffer;
    int rc = try_connect(s);
    if (rc == IL_STORE_EAUTH) {
        snprintf(errbuf, errlen,
                 "IOTLAT_REDIS_URL: %s:%d refused the credentials (%s)", s->url.host,
                 s->url.port, s->err);
        il_store_close(s);
        return rc;
    }
    *out = s;
    return 0;
}

void il_store_close(il_store *s)
{
    if (!s)
        return;
    if (s->ctx)
        flush_queue(s);
    while (s->qhead) {
        qcmd *q = s->qhead;
        s->qhead = q->next;
        free(q);
    }
    if (s->ctx)
        redisFree(s->ctx);
    free(s);
}

int il_store_connected(il_store *s) { return s->ctx != NULL; }

int il_store_poll(il_store *s)
{
    if (!s->ctx)
        try_connect(s);
    else if (s->qhead)
        flush_queue(s);
    return s->ctx != NULL;
}

int64_t il_store_outage_us(const il_store *s)
{
    return s->outage_total_us + (s->down ? il_now_us() - s->outage_start_us : 0);
}
uint64_t il_store_outages(const il_store *s) { return s->outages; }
size_t il_store_buffered(const il_store *s) { return s->buffered; }
uint64_t il_store_dropped(const il_store *s) { return s->dropped; }
uint64_t il_store_writes(const il_store *s) { return s->writes; }
int64_t il_store_lease_us(const il_store *s) { return s->lease_us; }

/* Run a command expecting no interesting reply; 0 or an error. */
static int run(il_store *s, int argc, const char **argv, const size_t *lens, int write)
{
    if (try_connect(s))
        return IL_STORE_EDOWN;
    redisReply *r = command(s, argc, argv, lens);
    if (!r)
        return IL_STORE_EDOWN;
    int rc = r->type == REDIS_REPLY_ERROR ? IL_STORE_EREPLY : 0;
    if (rc)
        il_log(IL_LOG_WARN, "results store: %s: %s", argv[0], r->str);
    freeReplyObject(r);
    if (write)
        s->writes++;
    return rc;
}

static size_t key(const il_store *s, char *out, size_t len, const char *a, const char *b,
                  const char *c)
{
    return (size_t)snprintf(out, len, "%s%s%s%s%s%s", s->prefix, a, b ? ":" : "",
                            b ? b : "", c ? ":" : "", c ? c : "");
}

/* ---- clock ------------------------------------------------------------ */

int il_store_clock(il_store *s, int samples, int64_t *offset_us, int64_t *error_us)
{
    int64_t best_rtt = INT64_MAX;
    if (try_connect(s))
        return IL_STORE_EDOWN;
    for (int i = 0; i < samples; i++) {
        const char *argv[1] = {"TIME"};
        size_t lens[1] = {4};
        int64_t t0 = il_now_us();
        redisReply *r = command(s, 1, argv, lens);
        int64_t t1 = il_now_us();
        if (!r)
            return IL_STORE_EDOWN;
        if (r->type == REDIS_REPLY_ARRAY && r->elements == 2) {
            int64_t server = strtoll(r->element[0]->str, NULL, 10) * 1000000 +
                             strtoll(r->element[1]->str, NULL, 10);
            /* The server read its clock somewhere inside [t0, t1]; the
             * midpoint is off by at most half the round trip. */
            if (t1 - t0 < best_rtt) {
                best_rtt = t1 - t0;
                *offset_us = server - (t0 + t1) / 2;
                *error_us = (t1 - t0 + 1) / 2 + 1; /* +1: TIME has us resolution */
            }
        }
        freeReplyObject(r);
    }
    return best_rtt == INT64_MAX ? IL_STORE_EREPLY : 0;
}

/* ---- advertise and claim ---------------------------------------------- */

static int hset(il_store *s, const char *k, const char *const *fields)
{
    const char *argv[64];
    size_t lens[64];
    int n = 0;
    argv[n++] = "HSET";
    argv[n++] = k;
    for (const char *const *f = fields; f[0] && f[1] && n < 62; f += 2) {
        argv[n++] = f[0];
        argv[n++] = f[1];
    }
    for (int i = 0; i < n; i++)
        lens[i] = strlen(argv[i]);
    if (n == 2)
        return 0;
    int rc = run(s, n, argv, lens, 1);
    if (rc == 0 && s->retention_us > 0) {
        char ms[32];
        snprintf(ms, sizeof ms, "%lld", (long long)(s->retention_us / 1000));
        const char *ex[3] = {"PEXPIRE", k, ms};
        size_t el[3] = {7, strlen(k), strlen(ms)};
        rc = run(s, 3, ex, el, 1);
    }
    return rc;
}

int il_store_advertise(il_store *s, const char *stage, const char *topic,
                       const char *const *fields)
{
    char k[600], zk[600], score[32];
    key(s, k, sizeof k, "topic", stage, topic);
    key(s, zk, sizeof zk, "stage", stage, NULL);
    int rc = hset(s, k, fields);
    if (rc)
        return rc;
    snprintf(score, sizeof score, "%lld", (long long)(il_now_us() / 1000));
    /* NX keeps the first advertise time, so a restarted publisher of the same
     * topic keeps its place in the queue. */
    const char *argv[5] = {"ZADD", zk, "NX", score, topic};
    size_t lens[5] = {4, strlen(zk), 2, strlen(score), strlen(topic)};
    return run(s, 5, argv, lens, 1);
}

/* Claims the oldest topic of the stage that is neither done nor leased.  The
 * script runs atomically, so checking EXISTS before the SET is race-free,
 * and a spare that polls for a free topic only reads.  The lease keys are
 * derived from ARGV, which is fine on a single Redis (the results store is
 * never a cluster here). */
static const char claim_lua[] =
    "local topics = redis.call('ZRANGE', KEYS[1], 0, -1)\n"
    "for _, t in ipairs(topics) do\n"
    "  if redis.call('SISMEMBER', KEYS[2], t) == 0 and\n"
    "     redis.call('EXISTS', ARGV[1] .. t) == 0 then\n"
    "    redis.call('SET', ARGV[1] .. t, ARGV[2], 'PX', ARGV[3])\n"
    "    return t\n"
    "  end\n"
    "end\n"
    "return false\n";

static const char renew_lua[] =
    "if redis.call('GET', KEYS[1]) == ARGV[1] then\n"
    "  return redis.call('PEXPIRE', KEYS[1], ARGV[2])\n"
    "end\n"
    "return 0\n";

static const char release_lua[] =
    "if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end\n"
    "if ARGV[2] == '1' then redis.call('SADD', KEYS[2], ARGV[3]) end\n"
    "return 1\n";

int il_store_claim(il_store *s, const char *stage, char *topic, size_t tlen,
                   char *endpoint, size_t elen)
{
    char zk[600], dk[600], lp[600], ms[32];
    key(s, zk, sizeof zk, "stage", stage, NULL);
    key(s, dk, sizeof dk, "done", stage, NULL);
    size_t n = key(s, lp, sizeof lp, "lease", stage, NULL);
    if (n + 1 < sizeof lp)
        strcat(lp, ":");
    snprintf(ms, sizeof ms, "%lld", (long long)(s->lease_us / 1000));
    const char *argv[] = {"EVAL", claim_lua, "2", zk, dk, lp, s->id, ms};
    size_t lens[8];
    for (int i = 0; i < 8; i++)
        lens[i] = strlen(argv[i]);
    if (try_connect(s))
        return IL_STORE_EDOWN;
    redisReply *r = command(s, 8, argv, lens);
    if (!r)
        return IL_STORE_EDOWN;
    int rc = 0;
    if (r->type == REDIS_REPLY_STRING) {
        snprintf(topic, tlen, "%s", r->str);
        s->writes++; /* only a successful claim writes anything */
        rc = 1;
    } else if (r->type == REDIS_REPLY_ERROR) {
        il_log(IL_LOG_WARN, "results store: claim: %s", r->str);
        rc = IL_STORE_EREPLY;
    }
    freeReplyObject(r);
    endpoint[0] = '\0';
    if (rc == 1 && il_store_topic_field(s, stage, topic, "endpoint", endpoint, elen) != 1)
        endpoint[0] = '\0';
    return rc;
}

int il_store_renew(il_store *s, const char *stage, const char *topic)
{
    char lk[600], ms[32];
    key(s, lk, sizeof lk, "lease", stage, topic);
    snprintf(ms, sizeof ms, "%lld", (long long)(s->lease_us / 1000));
    const char *argv[] = {"EVAL", renew_lua, "1", lk, s->id, ms};
    size_t lens[6];
    for (int i = 0; i < 6; i++)
        lens[i] = strlen(argv[i]);
    if (try_connect(s))
        return IL_STORE_EDOWN;
    redisReply *r = command(s, 6, argv, lens);
    if (!r)
        return IL_STORE_EDOWN;
    s->writes++;
    int rc = r->type == REDIS_REPLY_INTEGER ? r->integer == 1 : IL_STORE_EREPLY;
    freeReplyObject(r);
    return rc;
}

int il_store_release(il_store *s, const char *stage, const char *topic, int done)
{
    char lk[600], dk[600];
    key(s, lk, sizeof lk, "lease", stage, topic);
    key(s, dk, sizeof dk, "done", stage, NULL);
    const char *argv[] = {"EVAL", release_lua, "2", lk, dk, s->id, done ? "1" : "0", topic};
    size_t lens[8];
    for (int i = 0; i < 8; i++)
        lens[i] = strlen(argv[i]);
    return run(s, 8, argv, lens, 1);
}

/* ---- records ------------------------------------------------------------ */

static qcmd *qcmd_new(int argc, const char **argv, const size_t *lens)
{
    size_t total = 0;
    for (int i = 0; i < argc; i++)
        total += lens[i];
    qcmd *q = malloc(sizeof *q + (size_t)argc * (sizeof(char *) + sizeof(size_t)) + total);
    if (!q)
        return NULL;
    q->next = NULL;
    q->argc = argc;
    q->argv = (char **)(q + 1);
    q->lens = (size_t *)(q->argv + argc);
    char *data = (char *)(q->lens + argc);
    for (int i = 0; i < argc; i++) {
        q->argv[i] = data;
        q->lens[i] = lens[i];
        memcpy(data, argv[i], lens[i]);
        data += lens[i];
    }
    return q;
}

static int flush_queue(il_store *s)
{
    while (s->qhead && s->ctx) {
        qcmd *q = s->qhead;
        redisReply *r = command(s, q->argc, (const char **)q->argv, q->lens);
        if (!r)
            return IL_STORE_EDOWN;
        freeReplyObject(r);
        s->writes++;
        s->qhead = q->next;
        if (!s->qhead)
            s->qtail = NULL;
        s->buffered--;
        free(q);
    }
    return 0;
}

static topic_state *topic_of(il_store *s, const char *topic)
{
    for (int i = 0; i < s->ntopics; i++)
        if (strcmp(s->topics[i].name, topic) == 0)
            return &s->topics[i];
    if (s->ntopics == MAX_TOPICS)
        return NULL;
    topic_state *t = &s->topics[s->ntopics++];
    snprintf(t->name, sizeof t->name, "%s", topic);
    t->expire_at_us = 0;
    return t;
}

int il_store_record(il_store *s, const char *topic, const il_record *r)
{
    char rk[600], num[10][24];
    uint8_t *blob[3] = {NULL, NULL, NULL};
    size_t blen[3] = {0, 0, 0};
    const il_hist *h[3] = {r->lat, r->svc, r->lag};
    const char *argv[40];
    size_t lens[40];
    int n = 0;

    key(s, rk, sizeof rk, "rec", topic, NULL);
    argv[n++] = "XADD";
    argv[n++] = rk;
    argv[n++] = "MAXLEN";
    argv[n++] = "~";
    argv[n++] = STREAM_MAXLEN;
    argv[n++] = "*";
    const char *names[] = {"t_us",     "received", "received_unique", "lost", "duplicates",
                           "reordered", "malformed", "stale",          "expected", "devices"};
    uint64_t vals[] = {(uint64_t)r->t_us, r->received, r->received_unique, r->lost,
                       r->duplicates,     r->reordered, r->malformed,      r->stale,
                       r->expected,       r->devices};
    for (int i = 0; i < 10; i++) {
        snprintf(num[i], sizeof num[i], i == 0 ? "%lld" : "%llu",
                 i == 0 ? (unsigned long long)(long long)r->t_us
                        : (unsigned long long)vals[i]);
        argv[n++] = names[i];
        argv[n++] = num[i];
    }
    for (int i = 0; i < n; i++)
        lens[i] = strlen(argv[i]);
    /* The histograms are binary (strlen would stop at a zero byte, or run
     * past the end), so their lengths are set here. */
    static const char *hnames[] = {"latency", "service_latency", "send_lag"};
    for (int i = 0; i < 3; i++) {
        if (!h[i])
            continue;
        size_t need = il_hist_encode(h[i], NULL, 0);
        blob[i] = malloc(need);
        if (!blob[i])
            continue;
        blen[i] = il_hist_encode(h[i], blob[i], need);
        argv[n] = hnames[i];
        lens[n++] = strlen(hnames[i]);
        argv[n] = (const char *)blob[i];
        lens[n++] = blen[i];
    }

    int rc;
    topic_state *t = topic_of(s, topic);
    if (try_connect(s) == 0 && !s->qhead) {
        rc = run(s, n, argv, lens, 1);
        if (rc == 0 && t && il_now_us() >= t->expire_at_us) {
            /* Once a minute, not every second: the expiry only has to stay
             * ahead of the retention, and the index only needs the topic
             * once per connection. */
            char ms[32], ik[600];
            snprintf(ms, sizeof ms, "%lld", (long long)(s->retention_us / 1000));
            const char *ex[3] = {"PEXPIRE", rk, ms};
            size_t el[3] = {7, strlen(rk), strlen(ms)};
            run(s, 3, ex, el, 1);
            key(s, ik, sizeof ik, "index", NULL, NULL);
            const char *ad[3] = {"SADD", ik, topic};
            size_t al[3] = {4, strlen(ik), strlen(topic)};
            run(s, 3, ad, al, 1);
            const char *ix[3] = {"PEXPIRE", ik, ms};
            size_t xl[3] = {7, strlen(ik), strlen(ms)};
            run(s, 3, ix, xl, 1);
            t->expire_at_us = il_now_us() + EXPIRE_REFRESH_US;
        }
        if (rc != IL_STORE_EDOWN)
            goto out;
    }
    /* Unreachable (or older records still queued, which must go first). */
    if (s->buffered >= s->buffer_max) {
        s->dropped++;
        rc = IL_STORE_EINVAL;
        goto out;
    }
    qcmd *q = qcmd_new(n, argv, lens);
    if (!q) {
        s->dropped++;
        rc = IL_STORE_EINVAL;
        goto out;
    }
    if (s->qtail)
        s->qtail->next = q;
    else
        s->qhead = q;
    s->qtail = q;
    s->buffered++;
    rc = IL_STORE_EDOWN;
out:
    for (int i = 0; i < 3; i++)
        free(blob[i]);
    return rc;
}

int64_t il_store_last_record_us(il_store *s, const char *topic)
{
    char rk[600];
    key(s, rk, sizeof rk, "rec", topic, NULL);
    const char *argv[6] = {"XREVRANGE", rk, "+", "-", "COUNT", "1"};
    size_t lens[6];
    for (int i = 0; i < 6; i++)
        lens[i] = strlen(argv[i]);
    if (try_connect(s))
        return 0;
    redisReply *r = command(s, 6, argv, lens);
    int64_t t = 0;
    if (r && r->type == REDIS_REPLY_ARRAY && r->elements == 1) {
        redisReply *e = r->element[0];
        if (e->type == REDIS_REPLY_ARRAY && e->elements == 2) {
            redisReply *f = e->element[1];
            for (size_t i = 0; i + 1 < f->elements; i += 2)
                if (f->element[i]->type == REDIS_REPLY_STRING &&
                    strcmp(f->element[i]->str, "t_us") == 0)
                    t = strtoll(f->element[i + 1]->str, NULL, 10);
        }
    }
    if (r)
        freeReplyObject(r);
    return t;
}

int il_store_final(il_store *s, const char *topic, const char *const *fields)
{
    char k[600];
    key(s, k, sizeof k, "final", topic, NULL);
    return hset(s, k, fields);
}

int il_store_meta(il_store *s, const char *const *fields)
{
    char k[600];
    key(s, k, sizeof k, "meta", s->role, s->id);
    return hset(s, k, fields);
}

static int hget(il_store *s, const char *k, const char *field, char *out, size_t len)
{
    const char *argv[3] = {"HGET", k, field};
    size_t lens[3] = {4, strlen(k), strlen(field)};
    if (try_connect(s))
        return IL_STORE_EDOWN;
    redisReply *r = command(s, 3, argv, lens);
    if (!r)
        return IL_STORE_EDOWN;
    int rc = 0;
    if (r->type == REDIS_REPLY_STRING) {
        snprintf(out, len, "%s", r->str);
        rc = 1;
    }
    freeReplyObject(r);
    return rc;
}

int il_store_topic_set(il_store *s, const char *stage, const char *topic,
                       const char *const *fields)
{
    char k[600];
    key(s, k, sizeof k, "topic", stage, topic);
    return hset(s, k, fields);
}

int il_store_topic_field(il_store *s, const char *stage, const char *topic,
                         const char *field, char *out, size_t len)
{
    char k[600];
    key(s, k, sizeof k, "topic", stage, topic);
    return hget(s, k, field, out, len);
}

int il_store_get_final(il_store *s, const char *topic, const char *field, char *out,
                       size_t len)
{
    char k[600];
    key(s, k, sizeof k, "final", topic, NULL);
    return hget(s, k, field, out, len);
}
