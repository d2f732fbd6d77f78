/*
 * conn.c - the life of every broker connection of the MQTT driver.
 *
 * A driver instance holds one shared connection, one connection per
 * emulated device, or both (per-device publishing plus a shared connection
 * for subscriptions).  Every connect attempt, first or retry, goes through
 * one queue that a manager thread drains at IOTLAT_MQTT_CONNECT_RATE
 * attempts per second, so thousands of devices, or thousands of reconnects
 * after a broker restart, ramp up instead of storming the broker.  That is
 * also why the driver reconnects by itself instead of using Paho's
 * automaticReconnect: Paho retries every client on its own timer, all at
 * once, on a whole-second granularity that would blur the outage windows
 * iotlat measures.
 *
 * Paho calls back on its own threads.  The callbacks here only change state
 * under the instance mutex, queue retries, and queue connection events;
 * the host hears about the events on its own thread (mq_deliver_events(),
 * called from publish, poll and flush), since the ABI promises the host one
 * thread at a time.  Inbound messages are stamped with the host clock the
 * moment Paho hands them over, copied into the drv_inbox, and freed.
 *
 * The manager thread also runs the TCP_NODELAY sweeps (nodelay.c) after
 * connections come up, coalescing the requests of a burst of connects into
 * one sweep.
 */
#include "mqtt_int.h"

#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define RETRY_FIRST_MS 200  /* first retry after a failed attempt */
#define SWEEP_GAP_US 5000   /* at most one TCP_NODELAY sweep per 5 ms */
#define PROBE_TIMEOUT_MS 2000

int64_t mq_mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

void mq_fmt(char *buf, size_t len, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, len, fmt, ap);
    va_end(ap);
}

static void abs_deadline(int64_t mono_us, struct timespec *ts)
{
    ts->tv_sec = (time_t)(mono_us / 1000000);
    ts->tv_nsec = (long)(mono_us % 1000000) * 1000;
}

int mq_expand(const mq_inst *mi, const char *tmpl, long dev, char *out, size_t len)
{
    size_t n = 0;
    char piece[300];
    for (const char *p = tmpl; *p; p++) {
        const char *add = piece;
        if (*p != '%') {
            piece[0] = *p;
            piece[1] = '\0';
        } else {
            switch (p[1]) {
            case 'd':
                if (dev >= 0)
                    mq_fmt(piece, sizeof piece, "%ld", dev);
                else
                    add = mi->shared_name;
                break;
            case 'p':
                mq_fmt(piece, sizeof piece, "%ld", (long)getpid());
                break;
            case 'h':
                if (gethostname(piece, sizeof piece - 1) != 0)
                    mq_fmt(piece, sizeof piece, "localhost");
                piece[sizeof piece - 1] = '\0';
                break;
            case 'r':
                add = mi->random_tag;
                break;
            case '%':
                add = "%";
                break;
            default:
                return -1; /* unknown escape */
            }
            p++;
        }
        size_t al = strlen(add);
        if (n + al >= len)
            return -2;
        memcpy(out + n, add, al);
        n += al;
    }
    out[n] = '\0';
    return 0;
}

/* ---- connection events, delivered on the host's thread ---- */

__attribute__((format(printf, 3, 4))) static void push_event(mq_inst *mi, int type,
                                                             const char *fmt, ...)
{
    /* Caller holds mi->mu.  Only transitions are queued, so a full queue
     * (the host stopped polling) keeps the oldest and replaces the last. */
    int i = mi->nevents < MQ_MAX_EVENTS ? mi->nevents++ : MQ_MAX_EVENTS - 1;
    va_list ap;
    mi->events[i].type = type;
    va_start(ap, fmt);
    vsnprintf(mi->events[i].detail, sizeof mi->events[i].detail, fmt, ap);
    va_end(ap);
    __atomic_store_n(&mi->events_pending, 1, __ATOMIC_RELEASE);
}

void mq_deliver_events(mq_inst *mi)
{
    mq_event ev[MQ_MAX_EVENTS];
    int n;
    pthread_mutex_lock(&mi->mu);
    n = mi->nevents;
    memcpy(ev, mi->events, (size_t)n * sizeof ev[0]);
    mi->nevents = 0;
    __atomic_store_n(&mi->events_pending, 0, __ATOMIC_RELAXED);
    pthread_mutex_unlock(&mi->mu);
    for (int i = 0; i < n; i++)
        mi->host->event(mi->host->host_ud, ev[i].type, ev[i].detail);
}

/* ---- the connect queue ---- */

void mq_conn_queue(mq_conn *c, int delay_ms)
{
    mq_inst *mi = c->mi;
    if (c->queued || mi->stop)
        return;
    c->not_before = mq_mono_us() + (int64_t)delay_ms * 1000;
    c->queued = 1;
    c->qnext = NULL;
    if (c->state != MQ_FAILED)
        c->state = MQ_QUEUED;
    /* Ordered by not_before.  Almost every insert lands at the tail (the
     * delays are equal or growing), so the walk is short. */
    if (!mi->qtail || mi->qtail->not_before <= c->not_before) {
        if (mi->qtail)
            mi->qtail->qnext = c;
        else
            mi->qhead = c;
        mi->qtail = c;
    } else if (mi->qhead->not_before > c->not_before) {
        c->qnext = mi->qhead;
        mi->qhead = c;
    } else {
        mq_conn *p = mi->qhead;
        while (p->qnext && p->qnext->not_before <= c->not_before)
            p = p->qnext;
        c->qnext = p->qnext;
        p->qnext = c;
    }
    pthread_cond_signal(&mi->wake);
}

static void retry_later(mq_conn *c)
{
    mq_inst *mi = c->mi;
    if (!mi->opened || mi->stop || c->state == MQ_CLOSING)
        return;
    c->backoff_ms = c->backoff_ms ? c->backoff_ms * 2 : RETRY_FIRST_MS;
    if (c->backoff_ms > mi->reconnect_max_ms)
        c->backoff_ms = (int)mi->reconnect_max_ms;
    mq_conn_queue(c, c->backoff_ms);
}

/* ---- Paho callbacks (Paho's threads) ---- */

int mq_match_topic(const char *filter, const char *topic)
{
    /* MQTT filter matching: '+' is one level, '#' the rest (including the
     * parent level); wildcards never match a topic starting with '$'. */
    if (topic[0] == '$' && (filter[0] == '+' || filter[0] == '#'))
        return 0;
    while (*filter) {
        if (filter[0] == '#')
            return 1;
        if (filter[0] == '+') {
            while (*topic && *topic != '/')
                topic++;
            filter++;
        } else {
            while (*filter && *filter != '/' && *filter == *topic)
                filter++, topic++;
            if (*filter != '/' && *filter != '\0')
                return 0;
            if (*topic != '/' && *topic != '\0')
                return 0;
        }
        if (*filter == '\0')
            return *topic == '\0';
        if (*topic == '\0')
            return strcmp(filter, "/#") == 0;
        filter++, topic++; /* both at '/' */
    }
    return *topic == '\0';
}

static int on_message(void *ctx, char *topic, int topic_len, MQTTAsync_message *m)
{
    mq_conn *c = ctx;
    mq_inst *mi = c->mi;
    int64_t t_recv = mi->host->now_us(); /* first: Paho's queueing is not broker latency */
    int n = __atomic_load_n(&mi->nsubs, __ATOMIC_ACQUIRE);
    int tag = -1;
    (void)topic_len; /* Paho NUL-terminates the topic */
    for (int i = 0; i < n && tag < 0; i++)
        if (strcmp(mi->subs[i].filter, topic) == 0)
            tag = i;
    for (int i = 0; i < n && tag < 0; i++)
        if (mq_match_topic(mi->subs[i].filter, topic))
            tag = i;
    /* No match yet is normal with a persistent session: the broker sends
     * what it queued for us right after CONNACK, before subscribe() is
     * called.  Tag -1 asks poll() to match it again then. */
    if (mi->inbox_ready)
        drv_inbox_push(&mi->inbox, tag, topic, m->payload,
                       m->payloadlen > 0 ? (size_t)m->payloadlen : 0, t_recv);
    MQTTAsync_freeMessage(&m);
    MQTTAsync_free(topic);
    return 1;
}

static void resubscribe(mq_conn *c)
{
    mq_inst *mi = c->mi;
    int n = __atomic_load_n(&mi->nsubs, __ATOMIC_ACQUIRE);
    char *topics[MQ_MAX_TOPICS];
    int qos[MQ_MAX_TOPICS];
    if (n == 0)
        return;
    for (int i = 0; i < n; i++) {
        topics[i] = mi->subs[i].filter;
        qos[i] = mi->qos;
    }
    /* A failure here shows up as missing messages and, for the host, as
     * lost sequence numbers: there is nobody to return an error to. */
    MQTTAsync_subscribeMany(c->h, n, topics, qos, NULL);
}

static void conn_up(mq_conn *c)
{
    mq_inst *mi = c->mi;
    int resub;
    pthread_mutex_lock(&mi->mu);
    if (c->state == MQ_CLOSING || mi->stop) {
        pthread_mutex_unlock(&mi->mu);
        return;
    }
    resub = c->ever_up && c == mi->shared;
    c->state = MQ_UP;
    c->ever_up = 1;
    c->backoff_ms = 0;
    c->last_rc = 0;
    c->last_err[0] = '\0';
    mi->nup++;
    if (c->down) {
        c->down = 0;
        if (--mi->ndown == 0)
            push_event(mi, IOTLAT_EVENT_RECONNECTED, "reconnected to %s", mi->where);
    }
    if (mi->nodelay) {
        mi->sweep_pending = 1;
        pthread_cond_signal(&mi->wake);
    }
    pthread_cond_broadcast(&mi->changed);
    pthread_mutex_unlock(&mi->mu);
    /* The session may be clean (the broker forgot our subscriptions) or
     * expired; subscribing again is required in the first case and
     * harmless otherwise. */
    if (resub)
        resubscribe(c);
}

static void on_connect_ok(void *ctx, MQTTAsync_successData *r)
{
    (void)r;
    conn_up(ctx);
}

static void on_connect_ok5(void *ctx, MQTTAsync_successData5 *r)
{
    (void)r;
    conn_up(ctx);
}

static const char *connack_text(int version, int code)
{
    if (version == MQTTVERSION_5)
        return MQTTReasonCode_toString((enum MQTTReasonCodes)code);
    switch (code) {
    case 1: return "unacceptable protocol version";
    case 2: return "client identifier rejected";
    case 3: return "server unavailable";
    case 4: return "bad user name or password";
    case 5: return "not authorized";
    default: return "refused";
    }
}

static int is_auth_refusal(int version, int code)
{
    if (version == MQTTVERSION_5)
        return code == MQTTREASONCODE_BAD_USER_NAME_OR_PASSWORD ||
               code == MQTTREASONCODE_NOT_AUTHORIZED ||
               code == MQTTREASONCODE_BAD_AUTHENTICATION_METHOD;
    return code == 4 || code == 5;
}

/* A connect attempt failed.  `code` > 0 is the broker's CONNACK refusal;
 * anything else is a network, TLS or timeout failure that open() explains
 * further with a probe of its own. */
static void conn_failed(mq_conn *c, int code, const char *msg)
{
    mq_inst *mi = c->mi;
    char who[48] = "";
    if (c->dev >= 0)
        mq_fmt(who, sizeof who, "device %ld: ", c->dev);
    pthread_mutex_lock(&mi->mu);
    if (c->state == MQ_CLOSING) {
        pthread_mutex_unlock(&mi->mu);
        return;
    }
    if (code > 0 && is_auth_refusal(mi->version, code)) {
        c->last_rc = IOTLAT_EAUTH;
        if (c->username[0])
            mq_fmt(c->last_err, sizeof c->last_err,
                     "%sthe broker at %s refused the credentials of user '%s': %s "
                     "(CONNACK code %d)",
                     who, mi->url, c->username, connack_text(mi->version, code), code);
        else
            mq_fmt(c->last_err, sizeof c->last_err,
                     "%sthe broker at %s refused a connection without credentials: %s "
                     "(CONNACK code %d); set IOTLAT_MQTT_USERNAME and "
                     "IOTLAT_MQTT_PASSWORD",
                     who, mi->url, connack_text(mi->version, code), code);
    } else if (code > 0) {
        c->last_rc = IOTLAT_ECONNECT;
        mq_fmt(c->last_err, sizeof c->last_err,
                 "%sthe broker at %s refused the connection of client id '%s': %s "
                 "(CONNACK code %d)",
                 who, mi->url, c->client_id, connack_text(mi->version, code), code);
    } else {
        c->last_rc = IOTLAT_ECONNECT;
        mq_fmt(c->last_err, sizeof c->last_err, "%scannot connect to %s: %s%s%s", who,
                 mi->where, msg ? msg : "connect failed", c->tls_err[0] ? ": " : "",
                 c->tls_err);
    }
    c->state = MQ_FAILED;
    retry_later(c);
    pthread_cond_broadcast(&mi->changed);
    pthread_mutex_unlock(&mi->mu);
}

static void on_connect_fail(void *ctx, MQTTAsync_failureData *r)
{
    conn_failed(ctx, r ? r->code : -1, r ? r->message : NULL);
}

static void on_connect_fail5(void *ctx, MQTTAsync_failureData5 *r)
{
    /* Paho 1.3 puts a refusing CONNACK's reason code in `code` and leaves
     * reasonCode at 0; take whichever is set. */
    int code = r ? (r->reasonCode >= 0x80 ? (int)r->reasonCode : r->code) : -1;
    conn_failed(ctx, code, r ? r->message : NULL);
}

static void conn_lost(mq_conn *c, const char *cause)
{
    mq_inst *mi = c->mi;
    pthread_mutex_lock(&mi->mu);
    if (c->state != MQ_UP) {
        pthread_mutex_unlock(&mi->mu);
        return;
    }
    c->state = MQ_FAILED;
    mi->nup--;
    c->last_rc = IOTLAT_ECLOSED;
    mq_fmt(c->last_err, sizeof c->last_err, "connection to %s lost%s%s; reconnecting",
             mi->where, cause && *cause ? ": " : "", cause ? cause : "");
    if (!c->down) {
        c->down = 1;
        if (mi->ndown++ == 0) {
            if (c->dev >= 0)
                push_event(mi, IOTLAT_EVENT_DISCONNECTED, "device %ld's connection to %s lost%s%s",
                           c->dev, mi->where, cause && *cause ? ": " : "", cause ? cause : "");
            else
                push_event(mi, IOTLAT_EVENT_DISCONNECTED, "connection to %s lost%s%s",
                           mi->where, cause && *cause ? ": " : "", cause ? cause : "");
        }
    }
    /* The first retry goes at once: a broker that restarts is back soonest
     * for the client that asks first. */
    c->backoff_ms = 0;
    if (!mi->stop)
        mq_conn_queue(c, 0);
    pthread_mutex_unlock(&mi->mu);
}

static void on_lost(void *ctx, char *cause)
{
    conn_lost(ctx, cause);
}

static void on_disconnected5(void *ctx, MQTTProperties *props, enum MQTTReasonCodes rc)
{
    char why[128];
    (void)props;
    mq_fmt(why, sizeof why, "the broker sent DISCONNECT: %s", MQTTReasonCode_toString(rc));
    conn_lost(ctx, why);
}

static int on_tls_error(const char *str, size_t len, void *ctx)
{
    mq_conn *c = ctx;
    /* OpenSSL's error lines are "thread:error:code:library:function:reason:
     * file:line:data" (1.1 and 3.0 alike): keep the reason. */
    char line[512];
    mq_fmt(line, sizeof line, "%.*s", (int)len, str);
    line[strcspn(line, "\r\n")] = '\0';
    const char *why = line;
    for (int field = 0; field < 5 && why; field++) {
        why = strchr(why, ':');
        why = why ? why + 1 : NULL;
    }
    if (why && *why)
        mq_fmt(c->tls_err, sizeof c->tls_err, "%.*s", (int)strcspn(why, ":"), why);
    else
        mq_fmt(c->tls_err, sizeof c->tls_err, "%s", line);
    return 0;
}

/* ---- creating and connecting ---- */

mq_conn *mq_conn_new(mq_inst *mi, long dev, char *errbuf, size_t errlen)
{
    mq_conn *c = calloc(1, sizeof *c);
    int rc;
    if (!c) {
        mq_fmt(errbuf, errlen, "out of memory");
        return NULL;
    }
    c->mi = mi;
    c->dev = dev;
    /* The templates were checked by open(): only a too long result can
     * fail here (a long device id). */
    if (mq_expand(mi, mi->client_id_t, dev, c->client_id, sizeof c->client_id) ||
        mq_expand(mi, mi->username_t, dev, c->username, sizeof c->username) ||
        mq_expand(mi, mi->password_t, dev, c->password, sizeof c->password)) {
        mq_fmt(errbuf, errlen,
                 "the client id, user name or password for %s%ld is longer than %d bytes",
                 dev >= 0 ? "device " : "connection ", dev >= 0 ? dev : 0,
                 MQ_TEMPLATE_LEN - 1);
        free(c);
        return NULL;
    }

    MQTTAsync_createOptions co = MQTTAsync_createOptions_initializer;
    co.MQTTVersion = mi->version;
    co.maxBufferedMessages = (int)mi->max_buffered;
    co.sendWhileDisconnected = mi->offline_buffer;
    co.allowDisconnectedSendAtAnyTime = mi->offline_buffer;
    rc = MQTTAsync_createWithOptions(&c->h, mi->uris[0], c->client_id,
                                     MQTTCLIENT_PERSISTENCE_NONE, NULL, &co);
    if (rc != MQTTASYNC_SUCCESS) {
        mq_fmt(errbuf, errlen, "cannot create an MQTT client for %s (client id '%s'): %s",
                 mi->url, c->client_id, MQTTAsync_strerror(rc));
        free(c);
        return NULL;
    }
    MQTTAsync_setCallbacks(c->h, c, on_lost, on_message, NULL);
    if (mi->version == MQTTVERSION_5)
        MQTTAsync_setDisconnected(c->h, c, on_disconnected5);
    if (mi->tls) {
        MQTTAsync_SSLOptions ssl = MQTTAsync_SSLOptions_initializer;
        ssl.trustStore = mi->tls_ca[0] ? mi->tls_ca : NULL;
        ssl.keyStore = mi->tls_cert[0] ? mi->tls_cert : NULL;
        ssl.privateKey = mi->tls_key[0] ? mi->tls_key : NULL;
        ssl.enableServerCertAuth = !mi->tls_insecure;
        ssl.verify = !mi->tls_insecure; /* host name check */
        ssl.ssl_error_cb = on_tls_error;
        ssl.ssl_error_context = c;
        c->ssl = ssl;
    }
    c->state = MQ_IDLE;
    return c;
}

/* Issue the connect (manager thread, without the lock). */
static void start_connect(mq_conn *c)
{
    mq_inst *mi = c->mi;
    MQTTAsync_connectOptions o = MQTTAsync_connectOptions_initializer;
    MQTTAsync_connectOptions o5 = MQTTAsync_connectOptions_initializer5;
    MQTTProperties props = MQTTProperties_initializer;
    if (mi->version == MQTTVERSION_5) {
        o = o5;
        o.cleanstart = mi->clean;
        o.onSuccess5 = on_connect_ok5;
        o.onFailure5 = on_connect_fail5;
        if (!mi->clean) {
            /* Without a session expiry an MQTT 5 session ends with the
             * connection, clean start or not. */
            MQTTProperty p = {.identifier = MQTTPROPERTY_CODE_SESSION_EXPIRY_INTERVAL};
            p.value.integer4 = (unsigned int)mi->session_expiry;
            MQTTProperties_add(&props, &p);
            o.connectProperties = &props;
        }
    } else {
        o.cleansession = mi->clean;
        o.onSuccess = on_connect_ok;
        o.onFailure = on_connect_fail;
    }
    o.MQTTVersion = mi->version;
    o.keepAliveInterval = (int)mi->keepalive;
    o.maxInflight = (int)mi->max_inflight;
    o.connectTimeout = (int)mi->connect_timeout;
    o.automaticReconnect = 0; /* see the top of this file */
    o.username = c->username[0] ? c->username : NULL;
    o.password = c->password[0] ? c->password : NULL;
    o.ssl = mi->tls ? &c->ssl : NULL;
    o.context = c;
    if (mi->nuris > 1) {
        o.serverURIcount = mi->nuris;
        o.serverURIs = mi->uris;
    }
    c->tls_err[0] = '\0';
    int rc = MQTTAsync_connect(c->h, &o);
    MQTTProperties_free(&props);
    if (rc != MQTTASYNC_SUCCESS)
        conn_failed(c, -1, MQTTAsync_strerror(rc));
}

static void *manager(void *p)
{
    mq_inst *mi = p;
    int64_t interval = 1000000 / mi->connect_rate;
    pthread_mutex_lock(&mi->mu);
    while (!mi->stop) {
        int64_t now = mq_mono_us(), wake = INT64_MAX;
        if (mi->sweep_pending) {
            if (now - mi->last_sweep >= SWEEP_GAP_US) {
                mi->sweep_pending = 0;
                pthread_mutex_unlock(&mi->mu);
                long n = mq_nodelay_sweep(mi->ports, mi->nuris);
                pthread_mutex_lock(&mi->mu);
                mi->nodelay_set = n;
                mi->last_sweep = mq_mono_us();
                continue;
            }
            wake = mi->last_sweep + SWEEP_GAP_US;
        }
        mq_conn *c = mi->qhead;
        if (c) {
            int64_t t = c->not_before > mi->next_slot ? c->not_before : mi->next_slot;
            if (t <= now) {
                mi->qhead = c->qnext;
                if (!mi->qhead)
                    mi->qtail = NULL;
                c->qnext = NULL;
                c->queued = 0;
                if (c->state == MQ_CLOSING || c->state == MQ_UP)
                    continue;
                c->state = MQ_CONNECTING;
                mi->next_slot = (mi->next_slot > now ? mi->next_slot : now) + interval;
                pthread_mutex_unlock(&mi->mu);
                start_connect(c);
                pthread_mutex_lock(&mi->mu);
                continue;
            }
            if (t < wake)
                wake = t;
        }
        if (wake == INT64_MAX) {
            pthread_cond_wait(&mi->wake, &mi->mu);
        } else {
            struct timespec ts;
            abs_deadline(wake, &ts);
            pthread_cond_timedwait(&mi->wake, &mi->mu, &ts);
        }
    }
    pthread_mutex_unlock(&mi->mu);
    return NULL;
}

int mq_manager_start(mq_inst *mi, char *errbuf, size_t errlen)
{
    int rc = pthread_create(&mi->manager, NULL, manager, mi);
    if (rc) {
        mq_fmt(errbuf, errlen, "cannot start the connection thread: %s", strerror(rc));
        return IOTLAT_EIO;
    }
    mi->manager_started = 1;
    return 0;
}

void mq_manager_stop(mq_inst *mi)
{
    pthread_mutex_lock(&mi->mu);
    mi->stop = 1;
    pthread_cond_signal(&mi->wake);
    pthread_mutex_unlock(&mi->mu);
    if (mi->manager_started)
        pthread_join(mi->manager, NULL);
    mi->manager_started = 0;
}

/* ---- open(): waiting for connections, explaining failures ---- */

/* Connect to host:port ourselves to learn what the kernel says (refused,
 * unreachable, unknown host), which Paho does not pass on. */
static int probe(const mq_inst *mi, char *why, size_t len)
{
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *ai = NULL;
    char port[16];
    const char *u = mi->uris[0], *h = strstr(u, "://");
    char host[256];
    h = h ? h + 3 : u;
    const char *colon = strrchr(h, ':');
    if (!colon)
        return 0;
    mq_fmt(port, sizeof port, "%s", colon + 1);
    if (h[0] == '[')
        mq_fmt(host, sizeof host, "%.*s", (int)(colon - h - 2), h + 1);
    else
        mq_fmt(host, sizeof host, "%.*s", (int)(colon - h), h);
    int rc = getaddrinfo(host, port, &hints, &ai);
    if (rc) {
        mq_fmt(why, len, "%s", gai_strerror(rc));
        return -1;
    }
    int err = ETIMEDOUT;
    int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd >= 0) {
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0) {
            err = 0;
        } else if (errno == EINPROGRESS) {
            struct pollfd pf = {.fd = fd, .events = POLLOUT};
            if (poll(&pf, 1, PROBE_TIMEOUT_MS) == 1) {
                socklen_t sl = sizeof err;
                getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &sl);
            }
        } else {
            err = errno;
        }
        close(fd);
    } else {
        err = errno;
    }
    freeaddrinfo(ai);
    if (err) {
        mq_fmt(why, len, "%s", strerror(err));
        return -1;
    }
    return 0;
}

int mq_conn_wait_up(mq_inst *mi, mq_conn **conns, long n, int64_t deadline,
                    char *errbuf, size_t errlen)
{
    long next = 0, up = 0;
    mq_conn *failed = NULL;
    struct timespec ts;
    abs_deadline(deadline, &ts);
    pthread_mutex_lock(&mi->mu);
    for (;;) {
        /* Connections come up roughly in queue order: skip the prefix that
         * is up instead of rescanning it at every wake-up. */
        long before = next;
        while (next < n && conns[next]->state == MQ_UP)
            next++;
        /* While connections keep coming up the wait goes on: a ramp slower
         * than IOTLAT_MQTT_CONNECT_RATE (Paho connects more slowly than
         * asked at thousands of devices) is not a failure; only
         * IOTLAT_MQTT_CONNECT_TIMEOUT without any progress is. */
        if (next > before && mq_mono_us() + mi->connect_timeout * 1000000 > deadline) {
            deadline = mq_mono_us() + mi->connect_timeout * 1000000;
            abs_deadline(deadline, &ts);
        }
        for (long i = next; i < n && !failed; i++)
            if (conns[i]->state == MQ_FAILED)
                failed = conns[i];
        if (failed || next == n || mq_mono_us() >= deadline)
            break;
        pthread_cond_timedwait(&mi->changed, &mi->mu, &ts);
    }
    for (long i = 0; i < n; i++)
        up += conns[i]->state == MQ_UP;
    pthread_mutex_unlock(&mi->mu);
    if (next == n)
        return 0;
    if (failed) {
        char why[200];
        int rc = failed->last_rc ? failed->last_rc : IOTLAT_ECONNECT;
        /* A refusal by the broker speaks for itself; a network failure gets
         * the kernel's reason from a probe of our own. */
        if (rc == IOTLAT_ECONNECT && strstr(failed->last_err, "cannot connect")) {
            if (probe(mi, why, sizeof why) != 0)
                mq_fmt(errbuf, errlen, "cannot connect to %s: %s", mi->where, why);
            else if (mi->tls && failed->tls_err[0])
                mq_fmt(errbuf, errlen,
                       "cannot connect to %s: TLS handshake or MQTT CONNECT failed: %s",
                       mi->url, failed->tls_err);
            else if (mi->tls)
                mq_fmt(errbuf, errlen,
                       "cannot connect to %s: TLS handshake or MQTT CONNECT failed%s",
                       mi->url,
                       mi->tls_cert[0] ? ""
                                       : " (if the broker requires a client certificate, "
                                         "set IOTLAT_MQTT_TLS_CERT and IOTLAT_MQTT_TLS_KEY)");
            else
                mq_fmt(errbuf, errlen, "%s", failed->last_err);
        } else {
            mq_fmt(errbuf, errlen, "%s", failed->last_err);
        }
        return rc;
    }
    if (n == 1 && conns[0]->dev < 0)
        mq_fmt(errbuf, errlen,
                 "cannot connect to %s: no answer within %ld s (IOTLAT_MQTT_CONNECT_TIMEOUT)",
                 mi->url, mi->connect_timeout);
    else
        mq_fmt(errbuf, errlen,
                 "only %ld of %ld connections to %s were established in time "
                 "(IOTLAT_MQTT_CONNECT_RATE=%ld per second, IOTLAT_MQTT_CONNECT_TIMEOUT=%ld s)",
                 up, n, mi->url, mi->connect_rate, mi->connect_timeout);
    return IOTLAT_ECONNECT;
}

int mq_conn_why_down(mq_conn *c, char *errbuf, size_t errlen)
{
    mq_inst *mi = c->mi;
    int rc;
    /* The host logs each distinct send error once: with thousands of
     * devices, only a refusal (a configuration error worth naming the
     * device for) carries the device id. */
    pthread_mutex_lock(&mi->mu);
    if (c->last_rc == IOTLAT_EAUTH || (c->last_rc && c->dev < 0 && !c->ever_up)) {
        mq_fmt(errbuf, errlen, "%s", c->last_err);
        rc = c->last_rc;
    } else if (!c->ever_up && c->dev >= 0) {
        mq_fmt(errbuf, errlen,
                 "device connections to %s are still opening (they open on first publish "
                 "unless IOTLAT_MQTT_DEVICES opens them up front)",
                 mi->where);
        rc = IOTLAT_EAGAIN;
    } else {
        mq_fmt(errbuf, errlen, "connection to %s lost; reconnecting", mi->where);
        rc = IOTLAT_ECLOSED;
    }
    pthread_mutex_unlock(&mi->mu);
    return rc;
}

/* ---- close ---- */

static void on_disc_done(void *ctx, MQTTAsync_successData *r)
{
    mq_conn *c = ctx;
    (void)r;
    pthread_mutex_lock(&c->mi->mu);
    c->disconnected = 1;
    pthread_cond_broadcast(&c->mi->changed);
    pthread_mutex_unlock(&c->mi->mu);
}

static void on_disc_fail(void *ctx, MQTTAsync_failureData *r)
{
    (void)r;
    on_disc_done(ctx, NULL);
}

static void on_disc_done5(void *ctx, MQTTAsync_successData5 *r)
{
    (void)r;
    on_disc_done(ctx, NULL);
}

static void on_disc_fail5(void *ctx, MQTTAsync_failureData5 *r)
{
    (void)r;
    on_disc_done(ctx, NULL);
}

static void close_list(mq_inst *mi, mq_conn **cs, long n)
{
    /* Disconnect everything first and wait (bounded) for the broker to see
     * it, then destroy: after a completed disconnect Paho calls nothing of
     * ours any more, so freeing is safe. */
    for (long i = 0; i < n; i++) {
        mq_conn *c = cs[i];
        if (!c)
            continue;
        MQTTAsync_disconnectOptions d = MQTTAsync_disconnectOptions_initializer;
        MQTTAsync_disconnectOptions d5 = MQTTAsync_disconnectOptions_initializer5;
        if (mi->version == MQTTVERSION_5) {
            d = d5;
            d.onSuccess5 = on_disc_done5;
            d.onFailure5 = on_disc_fail5;
        } else {
            d.onSuccess = on_disc_done;
            d.onFailure = on_disc_fail;
        }
        d.context = c;
        d.timeout = 100;
        if (MQTTAsync_disconnect(c->h, &d) != MQTTASYNC_SUCCESS) {
            pthread_mutex_lock(&mi->mu);
            c->disconnected = 1;
            pthread_mutex_unlock(&mi->mu);
        }
    }
    int64_t deadline = mq_mono_us() + 3000000;
    struct timespec ts;
    abs_deadline(deadline, &ts);
    pthread_mutex_lock(&mi->mu);
    for (long i = 0; i < n; i++) {
        while (cs[i] && !cs[i]->disconnected && mq_mono_us() < deadline)
            pthread_cond_timedwait(&mi->changed, &mi->mu, &ts);
    }
    pthread_mutex_unlock(&mi->mu);
    for (long i = 0; i < n; i++) {
        mq_conn *c = cs[i];
        if (!c)
            continue;
        MQTTAsync_destroy(&c->h);
        memset(c->password, 0, sizeof c->password);
        free(c);
        cs[i] = NULL;
    }
}

void mq_conns_close(mq_inst *mi)
{
    pthread_mutex_lock(&mi->mu);
    if (mi->shared)
        mi->shared->state = MQ_CLOSING;
    for (long i = 0; i < mi->ndevs; i++)
        if (mi->devs[i])
            mi->devs[i]->state = MQ_CLOSING;
    pthread_mutex_unlock(&mi->mu);
    if (mi->ndevs)
        close_list(mi, mi->devs, mi->ndevs);
    if (mi->shared)
        close_list(mi, &mi->shared, 1);
}
