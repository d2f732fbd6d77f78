/*
 * nats.c - the NATS driver: core publish/subscribe through nats.c (libnats),
 * and JetStream as an option.
 *
 * Core NATS is fire-and-forget: a subject is the topic, a message reaches
 * whoever subscribes at that moment, and nothing is stored.  That is what
 * most NATS deployments measure, so it is the default.  With
 * IOTLAT_NATS_JETSTREAM=true the driver instead makes sure a stream captures
 * each topic, publishes with JetStream (asynchronously by default: the
 * library tracks the acknowledgements in the background and the driver
 * counts the failed ones) and consumes with an ordered push consumer, which
 * sees every stored message exactly once and in order, even across a server
 * restart.
 *
 * nats.c delivers messages and connection events on its own threads.  The
 * ABI wants both on the caller's thread, so messages go through the shared
 * drv_inbox (stamped when the library hands them over) and events through a
 * small queue here; poll(), publish() and flush() hand queued events to the
 * host.
 *
 * Latency: nats.c buffers publishes and lets its flusher thread write them
 * in batches, which on this machine turned a p50 of 105 us into 680 us.
 * IOTLAT_NATS_SEND_ASAP (default true) writes every publish at once.
 *
 * The library keeps global state and threads: the last instance closed tears
 * it down and waits for those threads, and libnats itself stays mapped after
 * the host's dlclose() (see pin_libnats), so unloading the driver is safe.
 *
 * Options (IOTLAT_NATS_*): see nats_options below and README.md.
 */
#include "drvutil.h"
#include "iotlat_driver.h"

#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <nats/nats.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_TOPICS 16
#define MAX_BATCH 4096  /* messages per poll() before returning to the loop */
#define MAX_EVENTS 8    /* connection events queued between two polls */
#define MAX_SERVERS 16  /* URLs in IOTLAT_NATS_URL */
#define CLOSE_WAIT_MS 3000
/* An ordered consumer notices that a server restart lost its consumer by the
 * missing idle heartbeats, and recreates it; a 1 s heartbeat (the library's
 * default is 5 s) makes that take seconds, not tens of seconds. */
#define JS_HEARTBEAT_NS 1000000000LL

typedef struct ninst ninst;

typedef struct nsub {
    ninst *n;
    char *topic;
    iotlat_msg_fn fn;
    void *ud;
    natsSubscription *sub;
    int complete; /* the library will not call us for it again (under mu) */
} nsub;

typedef struct nevent {
    int type;
    char detail[256];
} nevent;

struct ninst {
    const iotlat_host *host;
    natsOptions *opts;
    natsConnection *nc;
    jsCtx *js;
    drv_inbox inbox;
    int inbox_ok;
    int lib;   /* holds a reference on the library */
    int roles;
    char where[256]; /* the server URLs without credentials, for messages */

    /* JetStream settings. */
    int jetstream;
    int js_sync;        /* wait for each publish's ack inside publish() */
    int js_deliver_all; /* the consumer starts at the stream's first message */
    int js_memory;      /* new streams are kept in memory, not on disk */
    long js_max_age_s;
    long js_max_pending;
    long js_timeout_ms; /* ack and API answer timeout */
    long max_pending;
    long connect_timeout_ms;
    int auth;           /* 0 none, 1 user/password, 2 token: for messages */
    int tls, client_cert;
    char user[256];     /* not a secret: named in authorization errors */
    char stream[200];   /* IOTLAT_NATS_STREAM, or "" to derive one per topic */
    jsPubOptions pubopts;
    char *ensured[MAX_TOPICS]; /* topics whose stream is known to exist */
    int nensured;
    const char *last_ensured;  /* fast path: the topic publish() saw last */
    int64_t ensure_retry_us;   /* after a failed ensure, not before this */
    char ensure_err[256];

    nsub subs[MAX_TOPICS];
    int nsubs;

    /* Shared with the library's threads. */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    nevent events[MAX_EVENTS];
    int nevents;            /* written under mu, read atomically */
    int closed_cb;          /* the connection's closed callback ran */
    char async_err[256];    /* last asynchronous error, for the next report */
    char js_ack_err[256];   /* last failed JetStream ack */
    /* Atomics: read on the hot path without the lock. */
    int attention;          /* something above needs the caller's thread */
    int connected;
    uint64_t async_errors;
    uint64_t js_ack_failed;

    /* Caller's thread only. */
    int down;               /* DISCONNECTED reported, RECONNECTED not yet */
    uint64_t async_errors_seen, js_ack_failed_seen, inbox_dropped_seen;
    int64_t dropped_seen;   /* messages nats.c dropped (slow consumer) */
    int64_t next_report_us;
};

/* Suffixes of the accepted IOTLAT_NATS_* variables (each also with _FILE). */
static const char *const nats_options[] = {
    "URL",          "USER",           "PASSWORD",       "TOKEN",
    "TLS_CA",       "TLS_CERT",       "TLS_KEY",        "TLS_SKIP_VERIFY",
    "SEND_ASAP",    "CONNECT_TIMEOUT", "RECONNECT_WAIT", "RECONNECT_BUF_SIZE",
    "PING_INTERVAL", "MAX_PENDING",   "JETSTREAM",      "STREAM",
    "STREAM_STORAGE", "STREAM_MAX_AGE", "JS_PUBLISH",   "JS_MAX_PENDING",
    "JS_TIMEOUT",   "JS_DELIVER",   NULL};

/* ---- the library's global state ---- */

static pthread_mutex_t lib_mu = PTHREAD_MUTEX_INITIALIZER;
static int lib_refs;

static int lib_acquire(char *errbuf, size_t errlen)
{
    natsStatus s = NATS_OK;
    pthread_mutex_lock(&lib_mu);
    if (lib_refs == 0)
        s = nats_Open(-1);
    if (s == NATS_OK)
        lib_refs++;
    pthread_mutex_unlock(&lib_mu);
    if (s != NATS_OK) {
        snprintf(errbuf, errlen, "cannot initialise nats.c: %s", natsStatus_GetText(s));
        return IOTLAT_EIO;
    }
    return 0;
}

/* The last user closes the library and waits for its threads to end: after
 * that no library thread can call into the driver, which the host may then
 * unload. */
static void lib_release(void)
{
    pthread_mutex_lock(&lib_mu);
    if (--lib_refs == 0)
        nats_CloseAndWait(CLOSE_WAIT_MS);
    pthread_mutex_unlock(&lib_mu);
}

/* The library's description of the last error on this thread, or the
 * status's generic text. */
static const char *last_error(natsStatus s)
{
    natsStatus ls;
    const char *t = nats_GetLastError(&ls);
    if (!t || !*t)
        return natsStatus_GetText(s);
    /* Drop the "(conn.c:2088): " source location the library prepends. */
    const char *close = t[0] == '(' ? strstr(t, "): ") : NULL;
    return close ? close + 3 : t;
}

/* ---- events from the library's threads ---- */

static void wake(ninst *n)
{
    uint64_t one = 1;
    __atomic_store_n(&n->attention, 1, __ATOMIC_RELEASE);
    /* Wake a poll() waiting on the inbox, so the event is reported now. */
    if (n->inbox_ok) {
        ssize_t w = write(n->inbox.efd, &one, sizeof one);
        (void)w;
    }
}

static void queue_event(ninst *n, int type, const char *detail)
{
    pthread_mutex_lock(&n->mu);
    /* A full queue keeps the latest event: the state it leaves is right. */
    int i = n->nevents < MAX_EVENTS ? n->nevents : MAX_EVENTS - 1;
    n->events[i].type = type;
    snprintf(n->events[i].detail, sizeof n->events[i].detail, "%s", detail);
    __atomic_store_n(&n->nevents, i + 1, __ATOMIC_RELEASE);
    pthread_mutex_unlock(&n->mu);
    wake(n);
}

static void on_disconnected(natsConnection *nc, void *closure)
{
    ninst *n = closure;
    const char *err = NULL;
    char why[512];
    __atomic_store_n(&n->connected, 0, __ATOMIC_RELEASE);
    natsConnection_GetLastError(nc, &err);
    snprintf(why, sizeof why, "connection to %s lost%s%s", n->where,
             err && *err ? ": " : "", err && *err ? err : "");
    queue_event(n, IOTLAT_EVENT_DISCONNECTED, why);
}

static void on_reconnected(natsConnection *nc, void *closure)
{
    ninst *n = closure;
    char url[256] = "", why[512];
    __atomic_store_n(&n->connected, 1, __ATOMIC_RELEASE);
    natsConnection_GetConnectedUrl(nc, url, sizeof url);
    /* The URL the library reports carries no credentials. */
    snprintf(why, sizeof why, "reconnected to %s", url[0] ? url : n->where);
    queue_event(n, IOTLAT_EVENT_RECONNECTED, why);
}

static void on_closed(natsConnection *nc, void *closure)
{
    ninst *n = closure;
    (void)nc;
    pthread_mutex_lock(&n->mu);
    n->closed_cb = 1;
    pthread_cond_broadcast(&n->cv);
    pthread_mutex_unlock(&n->mu);
}

/* Slow consumers, missed JetStream heartbeats and the like: counted here,
 * reported once a second from the caller's thread. */
static void on_async_error(natsConnection *nc, natsSubscription *sub, natsStatus err,
                           void *closure)
{
    ninst *n = closure;
    const char *txt = NULL;
    const char *subject = sub ? natsSubscription_GetSubject(sub) : NULL;
    natsConnection_GetLastError(nc, &txt);
    pthread_mutex_lock(&n->mu);
    snprintf(n->async_err, sizeof n->async_err, "%s%s%s%s%s", natsStatus_GetText(err),
             txt && *txt ? ": " : "", txt && *txt ? txt : "",
             subject ? " on the subscription to " : "", subject ? subject : "");
    pthread_mutex_unlock(&n->mu);
    __atomic_add_fetch(&n->async_errors, 1, __ATOMIC_RELAXED);
    __atomic_store_n(&n->attention, 1, __ATOMIC_RELEASE);
}

/* A JetStream publish was refused or its ack timed out (async mode). */
static void on_js_ack_error(jsCtx *js, jsPubAckErr *pae, void *closure)
{
    ninst *n = closure;
    (void)js;
    pthread_mutex_lock(&n->mu);
    snprintf(n->js_ack_err, sizeof n->js_ack_err, "%s",
             pae->ErrText && *pae->ErrText ? pae->ErrText : natsStatus_GetText(pae->Err));
    pthread_mutex_unlock(&n->mu);
    __atomic_add_fetch(&n->js_ack_failed, 1, __ATOMIC_RELAXED);
    __atomic_store_n(&n->attention, 1, __ATOMIC_RELEASE);
    /* The library destroys pae->Msg when we return: we do not resend. */
}

static void on_sub_complete(void *closure)
{
    nsub *s = closure;
    pthread_mutex_lock(&s->n->mu);
    s->complete = 1;
    pthread_cond_broadcast(&s->n->cv);
    pthread_mutex_unlock(&s->n->mu);
}

/* Library thread: copy the message into the inbox, stamped now. */
static void on_msg(natsConnection *nc, natsSubscription *sub, natsMsg *msg, void *closure)
{
    nsub *s = closure;
    int64_t t = s->n->host->now_us();
    const char *subject = natsMsg_GetSubject(msg);
    (void)nc, (void)sub;
    /* A full inbox counts the drop; poll() reports it. */
    drv_inbox_push(&s->n->inbox, (int)(s - s->n->subs), subject ? subject : s->topic,
                   natsMsg_GetData(msg), (size_t)natsMsg_GetDataLength(msg), t);
    natsMsg_Destroy(msg);
}

/* ---- the caller's thread: events and problem reports ---- */

static void report_problems(ninst *n, int64_t now)
{
    char err[256];
    uint64_t ae = __atomic_load_n(&n->async_errors, __ATOMIC_RELAXED);
    uint64_t jf = __atomic_load_n(&n->js_ack_failed, __ATOMIC_RELAXED);
    uint64_t idrop = __atomic_load_n(&n->inbox.dropped, __ATOMIC_RELAXED);
    int64_t ldrop = 0;

    for (int i = 0; i < n->nsubs; i++) {
        int64_t d = 0;
        if (natsSubscription_GetDropped(n->subs[i].sub, &d) == NATS_OK)
            ldrop += d;
    }
    if (ae != n->async_errors_seen) {
        pthread_mutex_lock(&n->mu);
        snprintf(err, sizeof err, "%s", n->async_err);
        pthread_mutex_unlock(&n->mu);
        n->host->log(n->host->host_ud, IOTLAT_LOG_WARN,
                     "%llu asynchronous error(s) from nats.c, the last: %s",
                     (unsigned long long)(ae - n->async_errors_seen), err);
        n->async_errors_seen = ae;
    }
    if (jf != n->js_ack_failed_seen) {
        pthread_mutex_lock(&n->mu);
        snprintf(err, sizeof err, "%s", n->js_ack_err);
        pthread_mutex_unlock(&n->mu);
        n->host->log(n->host->host_ud, IOTLAT_LOG_WARN,
                     "%llu JetStream publish(es) not acknowledged (%llu in all), the "
                     "last: %s",
                     (unsigned long long)(jf - n->js_ack_failed_seen),
                     (unsigned long long)jf, err);
        n->js_ack_failed_seen = jf;
    }
    if (idrop != n->inbox_dropped_seen || ldrop > n->dropped_seen) {
        n->host->log(n->host->host_ud, IOTLAT_LOG_WARN,
                     "receiver falling behind: %llu message(s) dropped by nats.c, %llu by "
                     "the driver's queue (IOTLAT_NATS_MAX_PENDING)",
                     (unsigned long long)ldrop, (unsigned long long)idrop);
        n->inbox_dropped_seen = idrop;
        n->dropped_seen = ldrop;
    }
    n->next_report_us = now + 1000000;
}

static int ensure_stream(ninst *n, const char *topic, char *used, size_t usedlen,
                         char *errbuf, size_t errlen);

/* After a reconnect the server may have come back without our streams (a
 * memory stream does not survive a restart): make sure the subscribed
 * topics have theirs again, and have publish() check its topics anew. */
static void reensure_streams(ninst *n)
{
    char used[256], err[512];
    for (int i = 0; i < n->nsubs; i++)
        if (ensure_stream(n, n->subs[i].topic, used, sizeof used, err, sizeof err))
            n->host->log(n->host->host_ud, IOTLAT_LOG_WARN, "after reconnecting: %s", err);
    for (int i = 0; i < n->nensured; i++)
        free(n->ensured[i]);
    n->nensured = 0;
    n->last_ensured = NULL;
    n->ensure_retry_us = 0;
}

/* Hand queued events to the host and, at most once a second, log what the
 * library's threads counted. */
static void attend(ninst *n)
{
    nevent ev[MAX_EVENTS];
    int nev = 0;
    __atomic_store_n(&n->attention, 0, __ATOMIC_RELEASE);
    /* The lock only when there are events: a report waiting for its second
     * must not cost a lock per publish. */
    if (__atomic_load_n(&n->nevents, __ATOMIC_ACQUIRE) > 0) {
        pthread_mutex_lock(&n->mu);
        nev = n->nevents;
        memcpy(ev, n->events, (size_t)nev * sizeof ev[0]);
        __atomic_store_n(&n->nevents, 0, __ATOMIC_RELEASE);
        pthread_mutex_unlock(&n->mu);
    }
    for (int i = 0; i < nev; i++) {
        /* One DISCONNECTED per outage, one RECONNECTED to end it. */
        if (ev[i].type == IOTLAT_EVENT_DISCONNECTED && !n->down) {
            n->down = 1;
            n->host->event(n->host->host_ud, IOTLAT_EVENT_DISCONNECTED, ev[i].detail);
        } else if (ev[i].type == IOTLAT_EVENT_RECONNECTED && n->down) {
            n->down = 0;
            n->host->event(n->host->host_ud, IOTLAT_EVENT_RECONNECTED, ev[i].detail);
            if (n->jetstream)
                reensure_streams(n);
        }
    }
    int64_t now = n->host->now_us();
    if (now >= n->next_report_us)
        report_problems(n, now);
    else if (__atomic_load_n(&n->async_errors, __ATOMIC_RELAXED) != n->async_errors_seen ||
             __atomic_load_n(&n->js_ack_failed, __ATOMIC_RELAXED) != n->js_ack_failed_seen)
        __atomic_store_n(&n->attention, 1, __ATOMIC_RELEASE); /* report later */
}

static inline void maybe_attend(ninst *n)
{
    if (__atomic_load_n(&n->attention, __ATOMIC_ACQUIRE))
        attend(n);
}

/* ---- options ---- */

/* Copy the URL list into n->where with any user:password@ removed. */
static void redact_urls(const char *urls, char *out, size_t len)
{
    size_t o = 0;
    const char *p = urls;
    while (*p && o + 1 < len) {
        const char *end = strchr(p, ',');
        size_t l = end ? (size_t)(end - p) : strlen(p);
        const char *host = p, *scheme = strstr(p, "://");
        if (scheme && (size_t)(scheme - p) < l)
            host = scheme + 3;
        const char *at = memchr(host, '@', l - (size_t)(host - p));
        int n = at ? snprintf(out + o, len - o, "%s%.*s%.*s", o ? "," : "",
                              (int)(host - p), p, (int)(l - (size_t)(at + 1 - p)), at + 1)
                   : snprintf(out + o, len - o, "%s%.*s", o ? "," : "", (int)l, p);
        if (n < 0 || (size_t)n >= len - o)
            break;
        o += (size_t)n;
        p += l;
        if (*p == ',')
            p++;
    }
}

static int set_servers(ninst *n, char *urls, char *errbuf, size_t errlen)
{
    const char *list[MAX_SERVERS];
    int count = 0;
    char *save = NULL;
    for (char *u = strtok_r(urls, ",", &save); u; u = strtok_r(NULL, ",", &save)) {
        while (*u == ' ')
            u++;
        if (!*u)
            continue;
        if (count == MAX_SERVERS) {
            snprintf(errbuf, errlen, "IOTLAT_NATS_URL='%s' is invalid: more than %d URLs",
                     n->where, MAX_SERVERS);
            return IOTLAT_EINVAL;
        }
        list[count++] = u;
    }
    if (count == 0) {
        snprintf(errbuf, errlen,
                 "IOTLAT_NATS_URL='' is invalid: expected nats://host:port (or a "
                 "comma-separated list)");
        return IOTLAT_EINVAL;
    }
    natsStatus s = natsOptions_SetServers(n->opts, list, count);
    if (s != NATS_OK) {
        snprintf(errbuf, errlen,
                 "IOTLAT_NATS_URL='%s' is invalid: %s (expected nats://host:port, "
                 "tls://host:port, or a comma-separated list)",
                 n->where, last_error(s));
        return IOTLAT_EINVAL;
    }
    return 0;
}

/* nats.c's own message for a missing file ends in "(null)". */
static int readable(const char *var, int set, const char *path, char *errbuf, size_t errlen)
{
    if (set && access(path, R_OK) != 0) {
        snprintf(errbuf, errlen, "%s='%s' is invalid: cannot read it: %s", var, path,
                 strerror(errno));
        return IOTLAT_EINVAL;
    }
    return 0;
}

/* Read every option and configure n->opts.  Secrets are read into local
 * buffers and wiped after nats.c copied them. */
static int configure(ninst *n, char *errbuf, size_t errlen)
{
    drv_opts o = {n->host, "IOTLAT_NATS_", errbuf, errlen};
    char urls[2048], user[256], password[512], token[1024];
    char ca[1024], cert[1024], key[1024], stream[256];
    int user_set, pw_set, token_set, ca_set, cert_set, key_set, stream_set;
    int skip_verify, send_asap;
    long reconnect_wait, reconnect_buf, ping_interval;
    int storage, js_publish, js_deliver;
    static const char *const storages[] = {"file", "memory", NULL};
    static const char *const publishes[] = {"async", "sync", NULL};
    static const char *const delivers[] = {"new", "all", NULL};
    natsStatus s = NATS_OK;
    int rc;

    if ((rc = drv_opt_str(&o, "URL", "nats://127.0.0.1:4222", urls, sizeof urls, NULL)) ||
        (rc = drv_opt_str(&o, "USER", NULL, user, sizeof user, &user_set)) ||
        (rc = drv_opt_str(&o, "PASSWORD", NULL, password, sizeof password, &pw_set)) ||
        (rc = drv_opt_str(&o, "TOKEN", NULL, token, sizeof token, &token_set)) ||
        (rc = drv_opt_str(&o, "TLS_CA", NULL, ca, sizeof ca, &ca_set)) ||
        (rc = drv_opt_str(&o, "TLS_CERT", NULL, cert, sizeof cert, &cert_set)) ||
        (rc = drv_opt_str(&o, "TLS_KEY", NULL, key, sizeof key, &key_set)) ||
        (rc = drv_opt_bool(&o, "TLS_SKIP_VERIFY", 0, &skip_verify)) ||
        (rc = drv_opt_bool(&o, "SEND_ASAP", 1, &send_asap)) ||
        (rc = drv_opt_long(&o, "CONNECT_TIMEOUT", 2000, 1, 600000, &n->connect_timeout_ms)) ||
        (rc = drv_opt_long(&o, "RECONNECT_WAIT", 250, 1, 600000, &reconnect_wait)) ||
        (rc = drv_opt_long(&o, "RECONNECT_BUF_SIZE", 8L << 20, 1, INT_MAX, &reconnect_buf)) ||
        (rc = drv_opt_long(&o, "PING_INTERVAL", 5000, 10, 3600000, &ping_interval)) ||
        (rc = drv_opt_long(&o, "MAX_PENDING", 1000000, 1, 100000000, &n->max_pending)) ||
        (rc = drv_opt_bool(&o, "JETSTREAM", 0, &n->jetstream)) ||
        (rc = drv_opt_str(&o, "STREAM", NULL, stream, sizeof stream, &stream_set)) ||
        (rc = drv_opt_enum(&o, "STREAM_STORAGE", "file", storages, &storage)) ||
        (rc = drv_opt_long(&o, "STREAM_MAX_AGE", 3600, 0, 100L * 365 * 86400,
                           &n->js_max_age_s)) ||
        (rc = drv_opt_enum(&o, "JS_PUBLISH", "async", publishes, &js_publish)) ||
        (rc = drv_opt_long(&o, "JS_MAX_PENDING", 65536, 1, 100000000, &n->js_max_pending)) ||
        (rc = drv_opt_long(&o, "JS_TIMEOUT", 5000, 1, 600000, &n->js_timeout_ms)) ||
        (rc = drv_opt_enum(&o, "JS_DELIVER", "new", delivers, &js_deliver)))
        goto out;

    redact_urls(urls, n->where, sizeof n->where);
    if (user_set != pw_set) {
        snprintf(errbuf, errlen, "%s is set but %s is not: give both (or IOTLAT_NATS_TOKEN)",
                 user_set ? "IOTLAT_NATS_USER" : "IOTLAT_NATS_PASSWORD",
                 user_set ? "IOTLAT_NATS_PASSWORD" : "IOTLAT_NATS_USER");
        rc = IOTLAT_EINVAL;
        goto out;
    }
    if (user_set && token_set) {
        snprintf(errbuf, errlen,
                 "IOTLAT_NATS_TOKEN and IOTLAT_NATS_USER are both set: a NATS server "
                 "takes one or the other");
        rc = IOTLAT_EINVAL;
        goto out;
    }
    if (cert_set != key_set) {
        snprintf(errbuf, errlen,
                 "%s is set but %s is not: a client certificate needs its key",
                 cert_set ? "IOTLAT_NATS_TLS_CERT" : "IOTLAT_NATS_TLS_KEY",
                 cert_set ? "IOTLAT_NATS_TLS_KEY" : "IOTLAT_NATS_TLS_CERT");
        rc = IOTLAT_EINVAL;
        goto out;
    }
    if (stream_set) {
        /* The server refuses these in stream names. */
        if (!stream[0] || strpbrk(stream, ".*> \t/\\") || strlen(stream) >= sizeof n->stream) {
            snprintf(errbuf, errlen,
                     "IOTLAT_NATS_STREAM='%s' is invalid: expected a stream name of 1 to "
                     "%zu characters without '.', '*', '>', '/', '\\' or spaces",
                     stream, sizeof n->stream - 1);
            rc = IOTLAT_EINVAL;
            goto out;
        }
        memcpy(n->stream, stream, strlen(stream) + 1);
    }
    n->js_memory = storage == 1;
    n->js_sync = js_publish == 1;
    n->js_deliver_all = js_deliver == 1;

    s = natsOptions_Create(&n->opts);
    if (s != NATS_OK) {
        snprintf(errbuf, errlen, "natsOptions_Create: %s", last_error(s));
        rc = IOTLAT_ENOMEM;
        goto out;
    }
    if ((rc = set_servers(n, urls, errbuf, errlen)))
        goto out;
    char name[64];
    snprintf(name, sizeof name, "iotlat-%ld", (long)getpid());
    s = natsOptions_SetName(n->opts, name);
    if (s == NATS_OK)
        s = natsOptions_SetNoRandomize(n->opts, true);
    if (s == NATS_OK)
        s = natsOptions_SetTimeout(n->opts, n->connect_timeout_ms);
    if (s == NATS_OK)
        s = natsOptions_SetSendAsap(n->opts, send_asap);
    /* Reconnect forever, quickly: an outage is something to measure, and the
     * host reports its window. */
    if (s == NATS_OK)
        s = natsOptions_SetAllowReconnect(n->opts, true);
    if (s == NATS_OK)
        s = natsOptions_SetMaxReconnect(n->opts, -1);
    if (s == NATS_OK)
        s = natsOptions_SetReconnectWait(n->opts, reconnect_wait);
    if (s == NATS_OK)
        s = natsOptions_SetReconnectJitter(n->opts, reconnect_wait / 5, reconnect_wait / 5);
    if (s == NATS_OK)
        s = natsOptions_SetReconnectBufSize(n->opts, (int)reconnect_buf);
    /* A dead peer without a TCP reset (a partition, a paused VM) is noticed
     * after two unanswered pings. */
    if (s == NATS_OK)
        s = natsOptions_SetPingInterval(n->opts, ping_interval);
    if (s == NATS_OK)
        s = natsOptions_SetMaxPingsOut(n->opts, 2);
    if (s == NATS_OK)
        s = natsOptions_SetMaxPendingMsgs(n->opts, (int)n->max_pending);
    /* A request in flight when the connection drops fails at once instead
     * of waiting out its timeout (JetStream sync publishes, API calls). */
    if (s == NATS_OK)
        s = natsOptions_SetFailRequestsOnDisconnect(n->opts, true);
    if (s == NATS_OK)
        s = natsOptions_SetDisconnectedCB(n->opts, on_disconnected, n);
    if (s == NATS_OK)
        s = natsOptions_SetReconnectedCB(n->opts, on_reconnected, n);
    if (s == NATS_OK)
        s = natsOptions_SetClosedCB(n->opts, on_closed, n);
    if (s == NATS_OK)
        s = natsOptions_SetErrorHandler(n->opts, on_async_error, n);
    if (s != NATS_OK) {
        snprintf(errbuf, errlen, "cannot set nats.c options: %s", last_error(s));
        rc = IOTLAT_EINVAL;
        goto out;
    }
    if (user_set && (s = natsOptions_SetUserInfo(n->opts, user, password)) != NATS_OK) {
        snprintf(errbuf, errlen, "IOTLAT_NATS_USER='%s': %s", user, last_error(s));
        rc = IOTLAT_EINVAL;
        goto out;
    }
    if (token_set && (s = natsOptions_SetToken(n->opts, token)) != NATS_OK) {
        snprintf(errbuf, errlen, "IOTLAT_NATS_TOKEN: %s", natsStatus_GetText(s));
        rc = IOTLAT_EINVAL;
        goto out;
    }
    /* nats.c 3.4 does not turn TLS on for a tls:// URL by itself. */
    n->client_cert = cert_set;
    n->tls = ca_set || cert_set || skip_verify || strstr(n->where, "tls://") != NULL;
    if (n->tls) {
        if ((s = natsOptions_SetSecure(n->opts, true)) != NATS_OK) {
            snprintf(errbuf, errlen, "TLS is not available in this nats.c: %s",
                     last_error(s));
            rc = IOTLAT_EINVAL;
            goto out;
        }
    }
    if ((rc = readable("IOTLAT_NATS_TLS_CA", ca_set, ca, errbuf, errlen)) ||
        (rc = readable("IOTLAT_NATS_TLS_CERT", cert_set, cert, errbuf, errlen)) ||
        (rc = readable("IOTLAT_NATS_TLS_KEY", key_set, key, errbuf, errlen)))
        goto out;
    if (ca_set && (s = natsOptions_LoadCATrustedCertificates(n->opts, ca)) != NATS_OK) {
        snprintf(errbuf, errlen,
                 "IOTLAT_NATS_TLS_CA='%s' is invalid: cannot load CA certificates: %s", ca,
                 last_error(s));
        rc = IOTLAT_EINVAL;
        goto out;
    }
    if (cert_set && (s = natsOptions_LoadCertificatesChain(n->opts, cert, key)) != NATS_OK) {
        snprintf(errbuf, errlen,
                 "IOTLAT_NATS_TLS_CERT='%s' / IOTLAT_NATS_TLS_KEY='%s' are invalid: "
                 "cannot load the certificate and key: %s",
                 cert, key, last_error(s));
        rc = IOTLAT_EINVAL;
        goto out;
    }
    if (skip_verify && (s = natsOptions_SkipServerVerification(n->opts, true)) != NATS_OK) {
        snprintf(errbuf, errlen, "IOTLAT_NATS_TLS_SKIP_VERIFY: %s", last_error(s));
        rc = IOTLAT_EINVAL;
        goto out;
    }
    jsPubOptions_Init(&n->pubopts);
    n->pubopts.MaxWait = n->js_timeout_ms;
    n->auth = user_set ? 1 : token_set ? 2 : 0;
    snprintf(n->user, sizeof n->user, "%s", user);
    rc = 0;
out:
    /* nats.c keeps its own copies of the secrets. */
    explicit_bzero(password, sizeof password);
    explicit_bzero(token, sizeof token);
    return rc;
}

/* ---- connecting ---- */

/* Connect a plain TCP socket to the first server URL to learn why nats.c
 * could not: "Connection refused", "no answer within 2000 ms", a name that
 * does not resolve.  Returns 0 with the cause in out, or -1 if the TCP
 * connection works (the problem is elsewhere). */
static int probe_first_url(const ninst *n, char *out, size_t len)
{
    char host[256], port[16] = "4222";
    const char *u = n->where, *p = strstr(u, "://");
    p = p ? p + 3 : u;
    size_t l = strcspn(p, ",/");
    if (l >= sizeof host)
        return -1;
    memcpy(host, p, l);
    host[l] = '\0';
    char *colon = strrchr(host, ':');
    if (host[0] == '[') { /* [v6]:port */
        char *rb = strchr(host, ']');
        if (!rb)
            return -1;
        if (rb[1] == ':')
            snprintf(port, sizeof port, "%s", rb + 2);
        *rb = '\0';
        memmove(host, host + 1, strlen(host));
    } else if (colon) {
        snprintf(port, sizeof port, "%s", colon + 1);
        *colon = '\0';
    }
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *ai = NULL;
    int gai = getaddrinfo(host, port, &hints, &ai);
    if (gai != 0) {
        snprintf(out, len, "cannot resolve '%.100s': %s", host, gai_strerror(gai));
        return 0;
    }
    int rc = -1, err = 0;
    int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd >= 0) {
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0) {
            rc = -1;
        } else if (errno != EINPROGRESS) {
            err = errno;
        } else {
            struct pollfd pf = {.fd = fd, .events = POLLOUT};
            socklen_t el = sizeof err;
            if (poll(&pf, 1, (int)n->connect_timeout_ms) <= 0) {
                snprintf(out, len, "no answer within %ld ms", n->connect_timeout_ms);
                rc = 0;
            } else if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el) != 0) {
                err = errno;
            }
        }
        close(fd);
    }
    if (err) {
        snprintf(out, len, "%s", strerror(err));
        rc = 0;
    }
    freeaddrinfo(ai);
    return rc;
}

static int connect_error(ninst *n, natsStatus s, char *errbuf, size_t errlen)
{
    const char *why = last_error(s);
    switch (s) {
    case NATS_CONNECTION_AUTH_FAILED:
    case NATS_NOT_PERMITTED:
        if (n->auth == 1)
            snprintf(errbuf, errlen,
                     "cannot connect to %s: authorization failed for user '%s' (%s): check "
                     "IOTLAT_NATS_USER and IOTLAT_NATS_PASSWORD",
                     n->where, n->user, why);
        else if (n->auth == 2)
            snprintf(errbuf, errlen,
                     "cannot connect to %s: authorization failed: the server rejected "
                     "IOTLAT_NATS_TOKEN (%s)",
                     n->where, why);
        else
            snprintf(errbuf, errlen,
                     "cannot connect to %s: authorization failed (%s): the server wants "
                     "credentials: set IOTLAT_NATS_USER and IOTLAT_NATS_PASSWORD, or "
                     "IOTLAT_NATS_TOKEN",
                     n->where, why);
        return IOTLAT_EAUTH;
    case NATS_SECURE_CONNECTION_REQUIRED:
        snprintf(errbuf, errlen,
                 "cannot connect to %s: the server requires TLS: set IOTLAT_NATS_TLS_CA "
                 "(or use a tls:// URL)",
                 n->where);
        return IOTLAT_ECONNECT;
    case NATS_SECURE_CONNECTION_WANTED:
        snprintf(errbuf, errlen,
                 "cannot connect to %s: TLS is configured (IOTLAT_NATS_TLS_* or tls://) "
                 "but the server does not offer it",
                 n->where);
        return IOTLAT_ECONNECT;
    case NATS_SSL_ERROR:
        snprintf(errbuf, errlen, "cannot connect to %s: TLS handshake failed: %s", n->where,
                 why);
        return IOTLAT_ECONNECT;
    case NATS_PROTOCOL_ERROR:
    case NATS_IO_ERROR:
        /* A server that wants a client certificate completes the TLS
         * handshake and then hangs up: all nats.c sees is an empty read. */
        if (n->tls && !n->client_cert) {
            snprintf(errbuf, errlen,
                     "cannot connect to %s: the server closed the connection after the TLS "
                     "handshake (%s): does it require a client certificate "
                     "(IOTLAT_NATS_TLS_CERT, IOTLAT_NATS_TLS_KEY)?",
                     n->where, why);
            return IOTLAT_ECONNECT;
        }
        snprintf(errbuf, errlen, "cannot connect to %s: %s", n->where, why);
        return IOTLAT_ECONNECT;
    case NATS_TIMEOUT:
        snprintf(errbuf, errlen,
                 "cannot connect to %s: no answer within %ld ms (IOTLAT_NATS_CONNECT_TIMEOUT)",
                 n->where, n->connect_timeout_ms);
        return IOTLAT_ECONNECT;
    case NATS_NO_SERVER: {
        /* nats.c only says "No server available"; ask the socket why. */
        char cause[160];
        if (probe_first_url(n, cause, sizeof cause) == 0) {
            snprintf(errbuf, errlen, "cannot connect to %s: %s", n->where, cause);
            return IOTLAT_ECONNECT;
        }
    }
        /* fall through */
    default:
        snprintf(errbuf, errlen, "cannot connect to %s: %s", n->where, why);
        return IOTLAT_ECONNECT;
    }
}

/* ---- JetStream streams ---- */

/* NATS subject matching: '*' is one token, '>' one or more to the end. */
static int subject_matches(const char *pat, const char *subj)
{
    for (;;) {
        const char *pe = strchr(pat, '.'), *se = strchr(subj, '.');
        size_t pl = pe ? (size_t)(pe - pat) : strlen(pat);
        size_t sl = se ? (size_t)(se - subj) : strlen(subj);
        if (pl == 1 && pat[0] == '>')
            return sl > 0;
        if (!(pl == 1 && pat[0] == '*') && (pl != sl || memcmp(pat, subj, pl) != 0))
            return 0;
        if (!pe || !se)
            return !pe && !se;
        pat = pe + 1;
        subj = se + 1;
    }
}

/* IOTLAT_NATS_STREAM, or one stream per topic: "IOTLAT_" and the topic with
 * what stream names cannot hold replaced by '_'. */
static void stream_for(const ninst *n, const char *topic, char *out, size_t len)
{
    size_t o;
    if (n->stream[0]) {
        snprintf(out, len, "%s", n->stream);
        return;
    }
    o = (size_t)snprintf(out, len, "IOTLAT_");
    for (const char *p = topic; *p && o + 1 < len; p++) {
        char c = *p;
        int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                 c == '-' || c == '_';
        out[o++] = ok ? c : '_';
    }
    out[o] = '\0';
}

static int js_error(ninst *n, natsStatus s, const char *what, char *errbuf, size_t errlen)
{
    if (s == NATS_NO_RESPONDERS || s == NATS_TIMEOUT)
        snprintf(errbuf, errlen,
                 "%s: JetStream did not answer on %s (%s): is JetStream enabled "
                 "(nats-server -js)?",
                 what, n->where, natsStatus_GetText(s));
    else
        snprintf(errbuf, errlen, "%s: %s", what, last_error(s));
    return IOTLAT_EIO;
}

/* Make sure a stream captures `topic`: create the stream, or add the subject
 * to it.  When another stream already captures the subject, that one is
 * used and *used is set to "" (the library finds it by subject). */
static int ensure_stream(ninst *n, const char *topic, char *used, size_t usedlen,
                         char *errbuf, size_t errlen)
{
    char what[512];
    stream_for(n, topic, used, usedlen);
    snprintf(what, sizeof what, "JetStream stream '%s' for subject '%s'", used, topic);
    for (int attempt = 0; attempt < 3; attempt++) {
        jsStreamInfo *si = NULL;
        jsErrCode ec = 0;
        natsStatus s = js_GetStreamInfo(&si, n->js, used, NULL, &ec);
        if (s == NATS_OK) {
            jsStreamConfig *c = si->Config;
            int covered = 0;
            for (int i = 0; i < c->SubjectsLen && !covered; i++)
                covered = subject_matches(c->Subjects[i], topic);
            if (!covered) {
                const char **subjects = calloc((size_t)c->SubjectsLen + 1, sizeof *subjects);
                if (!subjects) {
                    jsStreamInfo_Destroy(si);
                    return IOTLAT_ENOMEM;
                }
                for (int i = 0; i < c->SubjectsLen; i++)
                    subjects[i] = c->Subjects[i];
                subjects[c->SubjectsLen] = topic;
                jsStreamConfig cfg = *c;
                cfg.Subjects = subjects;
                cfg.SubjectsLen = c->SubjectsLen + 1;
                s = js_UpdateStream(NULL, n->js, &cfg, NULL, &ec);
                free(subjects);
                if (s == NATS_OK) {
                    n->host->log(n->host->host_ud, IOTLAT_LOG_INFO,
                                 "added subject %s to JetStream stream %s", topic, used);
                } else if (ec == JSStreamSubjectOverlapErr) {
                    n->host->log(n->host->host_ud, IOTLAT_LOG_INFO,
                                 "subject %s belongs to another JetStream stream: using it",
                                 topic);
                    used[0] = '\0';
                } else {
                    jsStreamInfo_Destroy(si);
                    snprintf(what, sizeof what,
                             "cannot add subject '%s' to JetStream stream '%s'", topic, used);
                    return js_error(n, s, what, errbuf, errlen);
                }
            }
            jsStreamInfo_Destroy(si);
            return 0;
        }
        if (s != NATS_NOT_FOUND && ec != JSStreamNotFoundErr)
            return js_error(n, s, what, errbuf, errlen);

        jsStreamConfig cfg;
        jsStreamConfig_Init(&cfg);
        cfg.Name = used;
        cfg.Subjects = &topic;
        cfg.SubjectsLen = 1;
        cfg.Storage = n->js_memory ? js_MemoryStorage : js_FileStorage;
        cfg.MaxAge = (int64_t)n->js_max_age_s * 1000000000LL;
        ec = 0;
        s = js_AddStream(NULL, n->js, &cfg, NULL, &ec);
        if (s == NATS_OK) {
            n->host->log(n->host->host_ud, IOTLAT_LOG_INFO,
                         "created JetStream stream %s (%s storage) for subject %s", used,
                         n->js_memory ? "memory" : "file", topic);
            return 0;
        }
        if (ec == JSStreamSubjectOverlapErr) {
            n->host->log(n->host->host_ud, IOTLAT_LOG_INFO,
                         "subject %s belongs to another JetStream stream: using it", topic);
            used[0] = '\0';
            return 0;
        }
        if (ec != JSStreamNameExistErr)
            return js_error(n, s, what, errbuf, errlen);
        /* Another process created it meanwhile: look again. */
    }
    snprintf(errbuf, errlen, "%s: the stream keeps changing under us", what);
    return IOTLAT_EIO;
}

/* publish(): the stream of `topic` is ensured once (and, after a failure,
 * tried again at most once a second rather than on every message). */
static int ensure_topic(ninst *n, const char *topic, char *errbuf, size_t errlen)
{
    char used[256];
    for (int i = 0; i < n->nensured; i++) {
        if (strcmp(n->ensured[i], topic) == 0) {
            n->last_ensured = n->ensured[i];
            return 0;
        }
    }
    int64_t now = n->host->now_us();
    if (now < n->ensure_retry_us) {
        snprintf(errbuf, errlen, "%s", n->ensure_err);
        return IOTLAT_EIO;
    }
    int rc = ensure_stream(n, topic, used, sizeof used, errbuf, errlen);
    if (rc) {
        n->ensure_retry_us = now + 1000000;
        snprintf(n->ensure_err, sizeof n->ensure_err, "%s", errbuf);
        return rc;
    }
    if (n->nensured < MAX_TOPICS) {
        char *t = strdup(topic);
        if (!t)
            return IOTLAT_ENOMEM;
        n->ensured[n->nensured++] = t;
        n->last_ensured = t;
    }
    return 0;
}

/* ---- the driver ---- */

static void nclose(void *p)
{
    ninst *n = p;
    if (n->nc) {
        /* Ephemeral JetStream consumers are deleted on the server while it
         * is there to hear it (one request each). */
        if (n->js && natsConnection_Status(n->nc) == NATS_CONN_STATUS_CONNECTED)
            for (int i = 0; i < n->nsubs; i++)
                natsSubscription_Unsubscribe(n->subs[i].sub);
        natsConnection_Close(n->nc);
        /* The closed callback and each subscription's completion callback
         * come after the last event and message callback: once they have
         * run, nothing calls into n any more. */
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += CLOSE_WAIT_MS / 1000;
        pthread_mutex_lock(&n->mu);
        for (;;) {
            int pending = !n->closed_cb;
            for (int i = 0; i < n->nsubs; i++)
                pending |= !n->subs[i].complete;
            if (!pending || pthread_cond_timedwait(&n->cv, &n->mu, &until) != 0)
                break;
        }
        pthread_mutex_unlock(&n->mu);
    }
    for (int i = 0; i < n->nsubs; i++) {
        natsSubscription_Destroy(n->subs[i].sub);
        free(n->subs[i].topic);
    }
    jsCtx_Destroy(n->js);
    natsConnection_Destroy(n->nc);
    natsOptions_Destroy(n->opts);
    if (n->lib)
        lib_release();
    if (n->inbox_ok)
        drv_inbox_free(&n->inbox);
    for (int i = 0; i < n->nensured; i++)
        free(n->ensured[i]);
    pthread_cond_destroy(&n->cv);
    pthread_mutex_destroy(&n->mu);
    free(n);
}

static int nopen(const iotlat_host *host, int roles, void **out, char *errbuf,
                 size_t errlen)
{
    natsStatus s;
    int rc = host->check_options(host->host_ud, "IOTLAT_NATS_", nats_options, errbuf, errlen);
    if (rc)
        return rc;
    ninst *n = calloc(1, sizeof *n);
    if (!n)
        return IOTLAT_ENOMEM;
    n->host = host;
    n->roles = roles;
    pthread_mutex_init(&n->mu, NULL);
    pthread_cond_init(&n->cv, NULL);
    if ((rc = lib_acquire(errbuf, errlen)))
        goto fail;
    n->lib = 1;
    if ((rc = configure(n, errbuf, errlen)))
        goto fail;
    if ((rc = drv_inbox_init(&n->inbox, (size_t)n->max_pending))) {
        snprintf(errbuf, errlen, "cannot create the receive queue");
        goto fail;
    }
    n->inbox_ok = 1;
    /* No retry on the first connect: a broker that is not there is a
     * configuration error to report now, not an outage to wait out. */
    s = natsConnection_Connect(&n->nc, n->opts);
    if (s != NATS_OK) {
        n->nc = NULL;
        rc = connect_error(n, s, errbuf, errlen);
        goto fail;
    }
    n->connected = 1;
    if (n->jetstream) {
        jsOptions jo;
        jsOptions_Init(&jo);
        jo.Wait = n->js_timeout_ms;
        jo.PublishAsync.MaxPending = n->js_max_pending;
        jo.PublishAsync.ErrHandler = on_js_ack_error;
        jo.PublishAsync.ErrHandlerClosure = n;
        /* At JS_MAX_PENDING outstanding acks, publish() waits this long for
         * one to come back, then fails with IOTLAT_EAGAIN. */
        jo.PublishAsync.StallWait = 10;
        s = natsConnection_JetStream(&n->js, n->nc, &jo);
        if (s != NATS_OK) {
            n->js = NULL;
            snprintf(errbuf, errlen, "cannot create a JetStream context: %s", last_error(s));
            rc = IOTLAT_EIO;
            goto fail;
        }
        /* Find out now whether the server has JetStream at all. */
        jsAccountInfo *ai = NULL;
        jsErrCode ec = 0;
        s = js_GetAccountInfo(&ai, n->js, NULL, &ec);
        if (s != NATS_OK) {
            rc = js_error(n, s, "IOTLAT_NATS_JETSTREAM=true", errbuf, errlen);
            goto fail;
        }
        jsAccountInfo_Destroy(ai);
    }
    *out = n;
    return 0;
fail:
    nclose(n);
    return rc;
}

static void deliver(void *ud, int tag, const char *topic, const void *data, size_t len,
                    int64_t t_recv)
{
    ninst *n = ud;
    nsub *s = &n->subs[tag];
    s->fn(s->ud, topic, data, len, t_recv);
}

static int nsubscribe(void *p, const char *topic, iotlat_msg_fn fn, void *ud,
                      char *errbuf, size_t errlen)
{
    ninst *n = p;
    natsStatus st;
    maybe_attend(n);
    if (!(n->roles & IOTLAT_ROLE_SUBSCRIBE)) {
        snprintf(errbuf, errlen, "subscribe('%s'): driver not opened for subscribing", topic);
        return IOTLAT_EINVAL;
    }
    if (n->nsubs == MAX_TOPICS) {
        snprintf(errbuf, errlen, "subscribe('%s'): more than %d topics", topic, MAX_TOPICS);
        return IOTLAT_EINVAL;
    }
    nsub *s = &n->subs[n->nsubs];
    memset(s, 0, sizeof *s);
    s->n = n;
    s->fn = fn;
    s->ud = ud;
    s->topic = strdup(topic);
    if (!s->topic)
        return IOTLAT_ENOMEM;
    if (!n->jetstream) {
        st = natsConnection_Subscribe(&s->sub, n->nc, topic, on_msg, s);
    } else {
        char stream[256];
        int rc = ensure_stream(n, topic, stream, sizeof stream, errbuf, errlen);
        if (rc) {
            free(s->topic);
            return rc;
        }
        /* An ordered push consumer: no acks, flow control and heartbeats,
         * and when it notices a gap (a server restart lost the consumer) it
         * recreates itself from the last stream sequence it saw. */
        jsSubOptions so;
        jsErrCode ec = 0;
        jsSubOptions_Init(&so);
        so.Stream = stream[0] ? stream : NULL;
        so.Ordered = true;
        so.Config.DeliverPolicy = n->js_deliver_all ? js_DeliverAll : js_DeliverNew;
        so.Config.Heartbeat = JS_HEARTBEAT_NS;
        st = js_Subscribe(&s->sub, n->js, topic, on_msg, s, NULL, &so, &ec);
    }
    if (st != NATS_OK) {
        snprintf(errbuf, errlen, "cannot subscribe to '%s'%s: %s", topic,
                 n->jetstream ? " with JetStream" : "", last_error(st));
        free(s->topic);
        s->sub = NULL;
        return st == NATS_INVALID_SUBJECT ? IOTLAT_EINVAL : IOTLAT_EIO;
    }
    if (natsSubscription_SetOnCompleteCB(s->sub, on_sub_complete, s) != NATS_OK)
        s->complete = 1; /* cannot wait for it; the library close waits */
    n->nsubs++;
    /* The server has the subscription when this returns, so a publisher
     * started next does not publish into the void. */
    natsConnection_FlushTimeout(n->nc, 2000);
    return 0;
}

static int publish_error(ninst *n, const char *topic, natsStatus s, size_t len,
                         char *errbuf, size_t errlen)
{
    switch (s) {
    case NATS_INSUFFICIENT_BUFFER:
        snprintf(errbuf, errlen,
                 "publish('%s'): the connection to %s is down and the reconnect buffer "
                 "(IOTLAT_NATS_RECONNECT_BUF_SIZE) is full",
                 topic, n->where);
        return IOTLAT_EAGAIN;
    case NATS_CONNECTION_CLOSED:
    case NATS_CONNECTION_DISCONNECTED:
        snprintf(errbuf, errlen, "publish('%s'): the connection to %s is down", topic,
                 n->where);
        return IOTLAT_ECLOSED;
    case NATS_IO_ERROR:
        snprintf(errbuf, errlen, "publish('%s'): the connection to %s broke (%s)", topic,
                 n->where, last_error(s));
        return IOTLAT_ECLOSED;
    case NATS_TIMEOUT:
        if (n->js_sync)
            snprintf(errbuf, errlen, "publish('%s'): no JetStream ack within %ld ms", topic,
                     n->js_timeout_ms);
        else
            snprintf(errbuf, errlen,
                     "publish('%s'): %ld JetStream acks outstanding "
                     "(IOTLAT_NATS_JS_MAX_PENDING)",
                     topic, n->js_max_pending);
        return IOTLAT_EAGAIN;
    case NATS_MAX_PAYLOAD:
        snprintf(errbuf, errlen,
                 "publish('%s'): %zu bytes exceed the server's max_payload of %lld", topic,
                 len, (long long)natsConnection_GetMaxPayload(n->nc));
        return IOTLAT_EIO;
    case NATS_INVALID_SUBJECT:
        snprintf(errbuf, errlen, "publish('%s'): not a valid NATS subject", topic);
        return IOTLAT_EINVAL;
    default:
        snprintf(errbuf, errlen, "publish('%s'): %s", topic, last_error(s));
        return IOTLAT_EIO;
    }
}

static int npublish(void *p, const char *topic, const char *key, const void *data,
                    size_t len, char *errbuf, size_t errlen)
{
    ninst *n = p;
    natsStatus s;
    /* NATS keeps the order of one subject on one connection; there is no
     * partition to choose, so the device key has no use here. */
    (void)key;
    maybe_attend(n);
    if (!(n->roles & IOTLAT_ROLE_PUBLISH)) {
        snprintf(errbuf, errlen, "publish('%s'): driver not opened for publishing", topic);
        return IOTLAT_EINVAL;
    }
    if (len > INT_MAX)
        return publish_error(n, topic, NATS_MAX_PAYLOAD, len, errbuf, errlen);
    if (!n->jetstream) {
        s = natsConnection_Publish(n->nc, topic, data, (int)len);
    } else {
        if (!n->last_ensured || strcmp(n->last_ensured, topic) != 0) {
            int rc = ensure_topic(n, topic, errbuf, errlen);
            if (rc)
                return rc;
        }
        if (!n->js_sync) {
            s = js_PublishAsync(n->js, topic, data, (int)len, &n->pubopts);
        } else if (!__atomic_load_n(&n->connected, __ATOMIC_ACQUIRE)) {
            /* A request made now would only wait out its timeout. */
            s = NATS_CONNECTION_DISCONNECTED;
        } else {
            jsErrCode ec = 0;
            s = js_Publish(NULL, n->js, topic, data, (int)len, &n->pubopts, &ec);
        }
    }
    return s == NATS_OK ? 0 : publish_error(n, topic, s, len, errbuf, errlen);
}

static int npoll(void *p, int timeout_ms, char *errbuf, size_t errlen)
{
    ninst *n = p;
    (void)errbuf, (void)errlen;
    maybe_attend(n);
    int got = drv_inbox_drain(&n->inbox, timeout_ms, MAX_BATCH, deliver, n);
    maybe_attend(n);
    int64_t now = n->host->now_us();
    if (now >= n->next_report_us)
        report_problems(n, now);
    return got;
}

static int nfd(void *p)
{
    ninst *n = p;
    return n->inbox.efd;
}

/* Core NATS cannot see its subscribers, so "ready" means the server
 * answered a ping; with JetStream it also means the topic's stream exists,
 * so the first publish does not pay for creating it. */
static int nwait_ready(void *p, const char *topic, int timeout_ms, char *errbuf,
                       size_t errlen)
{
    ninst *n = p;
    maybe_attend(n);
    if (n->jetstream) {
        int rc = ensure_topic(n, topic, errbuf, errlen);
        if (rc)
            return rc;
    }
    natsStatus s = natsConnection_FlushTimeout(n->nc, timeout_ms > 0 ? timeout_ms : 1);
    if (s != NATS_OK) {
        snprintf(errbuf, errlen, "%s did not answer a ping within %d ms: %s", n->where,
                 timeout_ms, last_error(s));
        return IOTLAT_EAGAIN;
    }
    return 0;
}

/* Core NATS: a ping round trip proves the server has read everything sent
 * before it.  JetStream async: wait for every outstanding ack, and report
 * the publishes that were never acknowledged. */
static int nflush(void *p, int timeout_ms, char *errbuf, size_t errlen)
{
    ninst *n = p;
    natsStatus s;
    int rc = 0;
    int wait = timeout_ms > 0 ? timeout_ms : 1;
    maybe_attend(n);
    if (n->js && !n->js_sync) {
        jsPubOptions po;
        jsPubOptions_Init(&po);
        po.MaxWait = wait;
        s = js_PublishAsyncComplete(n->js, &po);
        if (s != NATS_OK) {
            snprintf(errbuf, errlen,
                     "JetStream acks still outstanding after %d ms (%s)", wait,
                     natsStatus_GetText(s));
            rc = IOTLAT_EAGAIN;
        }
    } else {
        s = natsConnection_FlushTimeout(n->nc, wait);
        if (s != NATS_OK) {
            snprintf(errbuf, errlen,
                     "%s did not confirm receipt within %d ms, messages may be lost: %s",
                     n->where, wait, last_error(s));
            rc = IOTLAT_EAGAIN;
        }
    }
    maybe_attend(n);
    uint64_t failed = __atomic_load_n(&n->js_ack_failed, __ATOMIC_RELAXED);
    if (rc == 0 && failed > 0) {
        char last[256];
        pthread_mutex_lock(&n->mu);
        snprintf(last, sizeof last, "%s", n->js_ack_err);
        pthread_mutex_unlock(&n->mu);
        snprintf(errbuf, errlen,
                 "%llu JetStream publish(es) were never acknowledged (the last: %s); they "
                 "were counted as sent, the subscriber's loss count is the truth",
                 (unsigned long long)failed, last);
        rc = IOTLAT_EIO;
    }
    return rc;
}

static char version[96];

static const iotlat_driver table = {
    .abi_major = IOTLAT_DRIVER_ABI_MAJOR,
    .abi_minor = IOTLAT_DRIVER_ABI_MINOR,
    .size = sizeof(iotlat_driver),
    .name = "nats",
    .version = version,
    .open = nopen,
    .subscribe = nsubscribe,
    .publish = npublish,
    .poll = npoll,
    .fd = nfd,
    .wait_ready = nwait_ready,
    .flush = nflush,
    .close = nclose,
};

/* Keep libnats mapped after the host unloads this driver.  OpenSSL's exit
 * handler (in libcrypto, which stays loaded) still reaches into state that
 * libnats registered, and crashes the process at exit if libnats is gone;
 * nats.c is not written to be unloaded.  Its threads are stopped by
 * lib_release() either way. */
static void pin_libnats(void)
{
    Dl_info info;
    if (dladdr((void *)(uintptr_t)&nats_GetVersion, &info) && info.dli_fname)
        dlopen(info.dli_fname, RTLD_NOW | RTLD_NOLOAD | RTLD_NODELETE);
}

const iotlat_driver *IOTLAT_DRIVER_ENTRY(uint16_t major, uint16_t minor,
                                          const iotlat_host *host, char *errbuf,
                                          size_t errlen)
{
    (void)minor, (void)host;
    if (major != IOTLAT_DRIVER_ABI_MAJOR) {
        snprintf(errbuf, errlen, "nats driver supports ABI major %d only, host has %u",
                 IOTLAT_DRIVER_ABI_MAJOR, major);
        return NULL;
    }
    pin_libnats();
    snprintf(version, sizeof version, "nats driver 1.0, nats.c %s", nats_GetVersion());
    return &table;
}
