/*
 * mqtt.c - the MQTT driver (Eclipse Paho MQTT C, asynchronous client):
 * Mosquitto, RabbitMQ's MQTT plugin, EMQX, HiveMQ and any MQTT 3.1.1 or 5
 * broker.
 *
 * MQTT is the protocol of the devices iotlat emulates, so this driver can
 * also behave like a fleet of them: with IOTLAT_MQTT_CONNECTIONS=per-device
 * every device id (the `key` of publish()) gets its own client, client id
 * and credentials, connected up front or on its first message at a
 * controlled rate.  With the default, shared, one client carries everything.
 *
 * This file is the ABI surface: options, open/close, publish, subscribe,
 * poll and flush.  Connections live in conn.c, TCP_NODELAY in nodelay.c
 * (Paho never sets it; without it a 23-40 ms Nagle/delayed-ACK tail would be
 * reported as broker latency).
 *
 * Paho queues every outgoing message on its own send thread and delivers
 * inbound ones on its receive thread: publish() hands the message to Paho
 * (which copies it) and returns; inbound messages wait in the drv_inbox for
 * poll().
 */
#include "mqtt_int.h"

#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#define MAX_BATCH 4096 /* messages per poll() before returning to the loop */

static const char *const mqtt_options[] = {
    "URL",          "VERSION",        "QOS",           "CLEAN_SESSION", "CONNECTIONS",
    "DEVICES",      "CONNECT_RATE",   "CONNECT_TIMEOUT", "CLIENT_ID",   "USERNAME",
    "PASSWORD",     "KEEPALIVE",      "MAX_BUFFERED",  "OFFLINE_BUFFER", "SESSION_EXPIRY",
    "RECONNECT_MAX", "INBOX",         "TCP_NODELAY",   "MAX_INFLIGHT",   "TLS_CA",        "TLS_CERT",
    "TLS_KEY",      "TLS_INSECURE",   NULL};

static int instances; /* per process: keeps shared client ids apart */

/* Split IOTLAT_MQTT_URL into normalized Paho URIs (scheme://host:port),
 * the broker ports (for the TCP_NODELAY sweep) and "host:port" for
 * messages. */
static int parse_urls(mq_inst *mi, char *errbuf, size_t errlen)
{
    char list[sizeof mi->url], *save = NULL;
    int tls = -1;
    mq_fmt(list, sizeof list, "%s", mi->url);
    for (char *u = strtok_r(list, ",", &save); u; u = strtok_r(NULL, ",", &save)) {
        while (*u == ' ')
            u++;
        const char *scheme;
        int is_tls, def_port;
        char *rest;
        if (!strncasecmp(u, "tcp://", 6) || !strncasecmp(u, "mqtt://", 7)) {
            scheme = "tcp", is_tls = 0, def_port = 1883;
        } else if (!strncasecmp(u, "ssl://", 6) || !strncasecmp(u, "mqtts://", 8)) {
            scheme = "ssl", is_tls = 1, def_port = 8883;
        } else {
            mq_fmt(errbuf, errlen,
                     "IOTLAT_MQTT_URL='%s' is invalid: expected tcp://host:port or "
                     "ssl://host:port (mqtt:// and mqtts:// also accepted), comma-separated",
                     mi->url);
            return IOTLAT_EINVAL;
        }
        rest = strstr(u, "://") + 3;
        if (tls >= 0 && tls != is_tls) {
            mq_fmt(errbuf, errlen,
                     "IOTLAT_MQTT_URL='%s' is invalid: mixes TLS and plain TCP brokers",
                     mi->url);
            return IOTLAT_EINVAL;
        }
        tls = is_tls;
        if (mi->nuris == MQ_MAX_URIS) {
            mq_fmt(errbuf, errlen, "IOTLAT_MQTT_URL='%s' is invalid: more than %d brokers",
                     mi->url, MQ_MAX_URIS);
            return IOTLAT_EINVAL;
        }
        /* host, [v6 host], optional :port, nothing after */
        char host[256];
        long port = def_port;
        char *end = rest;
        if (*rest == '[') {
            end = strchr(rest, ']');
            if (!end)
                goto bad;
            end++;
        } else {
            end = rest + strcspn(rest, ":/");
        }
        if (end == rest || (size_t)(end - rest) >= sizeof host)
            goto bad;
        mq_fmt(host, sizeof host, "%.*s", (int)(end - rest), rest);
        if (*end == ':') {
            char *pe;
            port = strtol(end + 1, &pe, 10);
            if (pe == end + 1 || port < 1 || port > 65535)
                goto bad;
            end = pe;
        }
        if (*end == '/')
            end++;
        if (*end)
            goto bad;
        size_t need = strlen(scheme) + strlen(host) + 16;
        mi->uris[mi->nuris] = malloc(need);
        if (!mi->uris[mi->nuris]) {
            mq_fmt(errbuf, errlen, "out of memory");
            return IOTLAT_ENOMEM;
        }
        mq_fmt(mi->uris[mi->nuris], need, "%s://%s:%ld", scheme, host, port);
        mi->ports[mi->nuris] = (uint16_t)port;
        if (mi->nuris == 0)
            mq_fmt(mi->where, sizeof mi->where, "%s:%ld", host, port);
        mi->nuris++;
    }
    if (mi->nuris == 0)
        goto bad;
    mi->tls = tls;
    return 0;
bad:
    mq_fmt(errbuf, errlen,
             "IOTLAT_MQTT_URL='%s' is invalid: expected scheme://host[:port] with a "
             "port from 1 to 65535, comma-separated",
             mi->url);
    return IOTLAT_EINVAL;
}

static int check_template(mq_inst *mi, const char *key, const char *tmpl, int secret,
                          char *errbuf, size_t errlen)
{
    char out[MQ_TEMPLATE_LEN];
    int rc = mq_expand(mi, tmpl, 0, out, sizeof out);
    if (rc == 0)
        return 0;
    if (secret)
        mq_fmt(errbuf, errlen,
                 "IOTLAT_MQTT_%s is invalid: %s (accepted escapes: %%d device id, %%p "
                 "process id, %%h host name, %%r random per process, %%%% a literal %%)",
                 key, rc == -1 ? "it contains an unknown %-escape" : "it is too long");
    else
        mq_fmt(errbuf, errlen,
                 "IOTLAT_MQTT_%s='%s' is invalid: %s (accepted escapes: %%d device id, %%p "
                 "process id, %%h host name, %%r random per process, %%%% a literal %%)",
                 key, tmpl, rc == -1 ? "unknown %-escape" : "too long");
    return IOTLAT_EINVAL;
}

static int check_file(const char *key, const char *path, char *errbuf, size_t errlen)
{
    if (!path[0] || access(path, R_OK) == 0)
        return 0;
    mq_fmt(errbuf, errlen, "IOTLAT_MQTT_%s='%s' cannot be read: %m", key, path);
    return IOTLAT_EINVAL;
}

static int read_options(mq_inst *mi, char *errbuf, size_t errlen)
{
    static const char *const versions[] = {"3.1.1", "5", NULL};
    static const char *const modes[] = {"shared", "per-device", NULL};
    drv_opts o = {mi->host, "IOTLAT_MQTT_", errbuf, errlen};
    long qos;
    int version, mode, rc, ca_set, cert_set, key_set, insecure_set;
    if ((rc = drv_opt_str(&o, "URL", "tcp://127.0.0.1:1883", mi->url, sizeof mi->url,
                          NULL)) ||
        (rc = drv_opt_enum(&o, "VERSION", "3.1.1", versions, &version)) ||
        (rc = drv_opt_long(&o, "QOS", 1, 0, 2, &qos)) ||
        (rc = drv_opt_bool(&o, "CLEAN_SESSION", 1, &mi->clean)) ||
        (rc = drv_opt_enum(&o, "CONNECTIONS", "shared", modes, &mode)) ||
        (rc = drv_opt_long(&o, "DEVICES", 0, 0, MQ_MAX_DEVICE, &mi->devices)) ||
        (rc = drv_opt_long(&o, "CONNECT_RATE", 500, 1, 1000000, &mi->connect_rate)) ||
        (rc = drv_opt_long(&o, "CONNECT_TIMEOUT", 10, 1, 3600, &mi->connect_timeout)) ||
        (rc = drv_opt_str(&o, "CLIENT_ID", "iotlat-%h-%p-%d", mi->client_id_t,
                          sizeof mi->client_id_t, NULL)) ||
        (rc = drv_opt_str(&o, "USERNAME", "", mi->username_t, sizeof mi->username_t,
                          NULL)) ||
        (rc = drv_opt_str(&o, "PASSWORD", "", mi->password_t, sizeof mi->password_t,
                          NULL)) ||
        (rc = drv_opt_long(&o, "KEEPALIVE", 30, 0, 65535, &mi->keepalive)) ||
        (rc = drv_opt_long(&o, "MAX_BUFFERED", 100000, 1, 100000000, &mi->max_buffered)) ||
        (rc = drv_opt_long(&o, "MAX_INFLIGHT", 0, 1, 65535, &mi->max_inflight)) ||
        (rc = drv_opt_bool(&o, "OFFLINE_BUFFER", 0, &mi->offline_buffer)) ||
        (rc = drv_opt_long(&o, "SESSION_EXPIRY", 300, 0, 4294967295L, &mi->session_expiry)) ||
        (rc = drv_opt_long(&o, "RECONNECT_MAX", 500, 100, 600000, &mi->reconnect_max_ms)) ||
        (rc = drv_opt_long(&o, "INBOX", 1000000, 1000, 100000000, &mi->inbox_limit)) ||
        (rc = drv_opt_bool(&o, "TCP_NODELAY", 1, &mi->nodelay)) ||
        (rc = drv_opt_str(&o, "TLS_CA", "", mi->tls_ca, sizeof mi->tls_ca, &ca_set)) ||
        (rc = drv_opt_str(&o, "TLS_CERT", "", mi->tls_cert, sizeof mi->tls_cert, &cert_set)) ||
        (rc = drv_opt_str(&o, "TLS_KEY", "", mi->tls_key, sizeof mi->tls_key, &key_set)) ||
        (rc = drv_opt_bool(&o, "TLS_INSECURE", 0, &mi->tls_insecure)))
        return rc;
    /* TLS_INSECURE's own "set" flag: only to tell the user it needs ssl:// */
    char tmp[8];
    insecure_set = mi->host->option(mi->host->host_ud, "IOTLAT_MQTT_TLS_INSECURE", tmp,
                                    sizeof tmp, errbuf, errlen) == 1;
    mi->qos = (int)qos;
    mi->version = version == 1 ? MQTTVERSION_5 : MQTTVERSION_3_1_1;
    /* Unset: Paho's 65535, except for QoS 2 over MQTT 3.1.1, which has no
     * way to learn the broker's limit: Mosquitto acknowledges, then drops,
     * QoS 2 messages beyond its max_inflight_messages (20 by default), so a
     * burst would show up as broker loss that is really a client setting.
     * MQTT 5 brokers announce their limit (Receive Maximum). */
    if (mi->max_inflight == 0)
        mi->max_inflight = mi->qos == 2 && mi->version != MQTTVERSION_5 ? 20 : 65535;
    mi->per_device = mode == 1;
    if ((rc = parse_urls(mi, errbuf, errlen)))
        return rc;
    if (!mi->tls && (ca_set || cert_set || key_set || insecure_set)) {
        mq_fmt(errbuf, errlen,
                 "IOTLAT_MQTT_TLS_* options are set but IOTLAT_MQTT_URL='%s' is not a TLS "
                 "URL: use ssl://host:port",
                 mi->url);
        return IOTLAT_EINVAL;
    }
    if (key_set && !cert_set) {
        mq_fmt(errbuf, errlen,
                 "IOTLAT_MQTT_TLS_KEY is set without IOTLAT_MQTT_TLS_CERT: a client key "
                 "needs its certificate");
        return IOTLAT_EINVAL;
    }
    if ((rc = check_file("TLS_CA", mi->tls_ca, errbuf, errlen)) ||
        (rc = check_file("TLS_CERT", mi->tls_cert, errbuf, errlen)) ||
        (rc = check_file("TLS_KEY", mi->tls_key, errbuf, errlen)) ||
        (rc = check_template(mi, "CLIENT_ID", mi->client_id_t, 0, errbuf, errlen)) ||
        (rc = check_template(mi, "USERNAME", mi->username_t, 0, errbuf, errlen)) ||
        (rc = check_template(mi, "PASSWORD", mi->password_t, 1, errbuf, errlen)))
        return rc;
    if (!mi->client_id_t[0]) {
        mq_fmt(errbuf, errlen,
                 "IOTLAT_MQTT_CLIENT_ID='' is invalid: every connection needs a client id "
                 "(default iotlat-%%h-%%p-%%d)");
        return IOTLAT_EINVAL;
    }
    if (mi->password_t[0] && !mi->username_t[0]) {
        mq_fmt(errbuf, errlen,
                 "IOTLAT_MQTT_PASSWORD is set without IOTLAT_MQTT_USERNAME: MQTT sends a "
                 "password only with a user name");
        return IOTLAT_EINVAL;
    }
    return 0;
}

static void free_inst(mq_inst *mi)
{
    for (int i = 0; i < mi->nsubs; i++)
        free(mi->subs[i].filter);
    for (int i = 0; i < mi->nuris; i++)
        free(mi->uris[i]);
    if (mi->inbox_ready)
        drv_inbox_free(&mi->inbox);
    free(mi->devs);
    pthread_mutex_destroy(&mi->mu);
    pthread_cond_destroy(&mi->wake);
    pthread_cond_destroy(&mi->changed);
    memset(mi->password_t, 0, sizeof mi->password_t);
    free(mi);
}

static void mq_close(void *p)
{
    mq_inst *mi = p;
    mq_manager_stop(mi);
    mq_conns_close(mi);
    free_inst(mi);
}

/* Make room for device ids up to `dev` (host thread only). */
static int grow_devs(mq_inst *mi, long dev)
{
    if (dev < mi->ndevs)
        return 0;
    long n = mi->ndevs ? mi->ndevs : 64;
    while (n <= dev)
        n *= 2;
    if (n > MQ_MAX_DEVICE + 1)
        n = MQ_MAX_DEVICE + 1;
    mq_conn **d = realloc(mi->devs, (size_t)n * sizeof *d);
    if (!d)
        return IOTLAT_ENOMEM;
    memset(d + mi->ndevs, 0, (size_t)(n - mi->ndevs) * sizeof *d);
    /* conn.c reads devs[] under mu while closing; the host thread is the
     * only writer and never runs concurrently with close. */
    pthread_mutex_lock(&mi->mu);
    mi->devs = d;
    mi->ndevs = n;
    pthread_mutex_unlock(&mi->mu);
    return 0;
}

/* Many devices need many descriptors: raise the soft limit to the hard one
 * rather than fail at the 1025th connection. */
static void raise_fd_limit(mq_inst *mi)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rlim_t old = rl.rlim_cur;
        rl.rlim_cur = rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) == 0)
            mi->host->log(mi->host->host_ud, IOTLAT_LOG_DEBUG,
                          "per-device connections: open file limit raised from %llu to %llu",
                          (unsigned long long)old, (unsigned long long)rl.rlim_cur);
    }
}

static int mq_open(const iotlat_host *host, int roles, void **out, char *errbuf,
                   size_t errlen)
{
    int rc = host->check_options(host->host_ud, "IOTLAT_MQTT_", mqtt_options, errbuf, errlen);
    if (rc)
        return rc;
    mq_inst *mi = calloc(1, sizeof *mi);
    if (!mi) {
        mq_fmt(errbuf, errlen, "out of memory");
        return IOTLAT_ENOMEM;
    }
    mi->host = host;
    mi->roles = roles;
    pthread_mutex_init(&mi->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&mi->wake, &ca);
    pthread_cond_init(&mi->changed, &ca);
    pthread_condattr_destroy(&ca);

    int nth = __atomic_fetch_add(&instances, 1, __ATOMIC_RELAXED);
    const char *role = (roles & IOTLAT_ROLE_PUBLISH) && (roles & IOTLAT_ROLE_SUBSCRIBE)
                           ? "pubsub"
                       : (roles & IOTLAT_ROLE_PUBLISH) ? "pub"
                                                        : "sub";
    if (nth)
        mq_fmt(mi->shared_name, sizeof mi->shared_name, "%s-%d", role, nth);
    else
        mq_fmt(mi->shared_name, sizeof mi->shared_name, "%s", role);
    uint32_t r;
    if (getrandom(&r, sizeof r, 0) != sizeof r)
        r = (uint32_t)getpid() * 2654435761u ^ (uint32_t)time(NULL);
    mq_fmt(mi->random_tag, sizeof mi->random_tag, "%08x", r);

    if ((rc = read_options(mi, errbuf, errlen))) {
        free_inst(mi);
        return rc;
    }
    if (roles & IOTLAT_ROLE_SUBSCRIBE) {
        if (drv_inbox_init(&mi->inbox, (size_t)mi->inbox_limit) != 0) {
            mq_fmt(errbuf, errlen, "cannot create the inbox eventfd: %m");
            free_inst(mi);
            return IOTLAT_EIO;
        }
        mi->inbox_ready = 1;
    }
    int devices = mi->per_device && (roles & IOTLAT_ROLE_PUBLISH);
    if (devices)
        raise_fd_limit(mi);
    if ((rc = mq_manager_start(mi, errbuf, errlen)))
        goto fail;

    /* The shared connection carries everything in shared mode, and the
     * subscriptions in per-device mode. */
    if (!devices || (roles & IOTLAT_ROLE_SUBSCRIBE)) {
        mi->shared = mq_conn_new(mi, -1, errbuf, errlen);
        if (!mi->shared) {
            rc = IOTLAT_EIO;
            goto fail;
        }
        pthread_mutex_lock(&mi->mu);
        mq_conn_queue(mi->shared, 0);
        pthread_mutex_unlock(&mi->mu);
        rc = mq_conn_wait_up(mi, &mi->shared, 1,
                             mq_mono_us() + (mi->connect_timeout + 1) * 1000000, errbuf,
                             errlen);
        if (rc)
            goto fail;
    }
    if (devices && mi->devices > 0) {
        if ((rc = grow_devs(mi, mi->devices - 1))) {
            mq_fmt(errbuf, errlen, "out of memory for %ld device connections", mi->devices);
            goto fail;
        }
        for (long d = 0; d < mi->devices; d++) {
            mi->devs[d] = mq_conn_new(mi, d, errbuf, errlen);
            if (!mi->devs[d]) {
                rc = IOTLAT_EIO;
                goto fail;
            }
        }
        pthread_mutex_lock(&mi->mu);
        for (long d = 0; d < mi->devices; d++)
            mq_conn_queue(mi->devs[d], 0);
        pthread_mutex_unlock(&mi->mu);
        /* The ramp takes devices / rate seconds; the timeout is for the
         * last connection on top of that. */
        int64_t ramp_us = mi->devices * 1000000 / mi->connect_rate;
        rc = mq_conn_wait_up(mi, mi->devs, mi->devices,
                             mq_mono_us() + ramp_us + (mi->connect_timeout + 1) * 1000000,
                             errbuf, errlen);
        if (rc)
            goto fail;
    }
    pthread_mutex_lock(&mi->mu);
    mi->opened = 1;
    mi->sweep_pending = 0;
    pthread_mutex_unlock(&mi->mu);
    /* Set TCP_NODELAY before the first message, here on the host's thread;
     * later connections are handled by the manager's sweeps. */
    long nd = mi->nodelay ? mq_nodelay_sweep(mi->ports, mi->nuris) : 0;
    char conns[96] = "one shared connection";
    if (devices && mi->devices)
        mq_fmt(conns, sizeof conns, "%ld device connections", mi->devices);
    else if (devices)
        mq_fmt(conns, sizeof conns, "device connections opened on first publish");
    host->log(host->host_ud, IOTLAT_LOG_INFO,
              "connected to %s: MQTT %s, QoS %d, %s session, %s%s, TCP_NODELAY %s on %ld "
              "sockets",
              mi->url, mi->version == MQTTVERSION_5 ? "5" : "3.1.1", mi->qos,
              mi->clean ? "clean" : "persistent", conns,
              devices && (roles & IOTLAT_ROLE_SUBSCRIBE) ? " plus a shared one for subscribing"
                                                         : "",
              mi->nodelay ? "set" : "not set", nd);
    *out = mi;
    return 0;
fail:
    mq_close(mi);
    return rc;
}

/* ---- publish ---- */

static mq_conn *device_conn(mq_inst *mi, const char *key, int *rc, char *errbuf,
                            size_t errlen)
{
    long dev = 0;
    const char *k = key;
    if (!k || !*k)
        goto bad;
    for (; *k; k++) {
        if (*k < '0' || *k > '9' || dev > MQ_MAX_DEVICE)
            goto bad;
        dev = dev * 10 + (*k - '0');
    }
    if (dev > MQ_MAX_DEVICE)
        goto bad;
    if (dev < mi->ndevs && mi->devs[dev])
        return mi->devs[dev];
    /* A device seen for the first time: create its client and queue its
     * connect; the manager ramps these at IOTLAT_MQTT_CONNECT_RATE. */
    if ((*rc = grow_devs(mi, dev))) {
        mq_fmt(errbuf, errlen, "out of memory for device %ld", dev);
        return NULL;
    }
    mq_conn *c = mq_conn_new(mi, dev, errbuf, errlen);
    if (!c) {
        *rc = IOTLAT_EIO;
        return NULL;
    }
    pthread_mutex_lock(&mi->mu);
    mi->devs[dev] = c;
    mq_conn_queue(c, 0);
    pthread_mutex_unlock(&mi->mu);
    return c;
bad:
    mq_fmt(errbuf, errlen,
             "per-device connections need the device id as key: got '%s', expected a "
             "decimal number up to %ld",
             key ? key : "(null)", MQ_MAX_DEVICE);
    *rc = IOTLAT_EINVAL;
    return NULL;
}

static int mq_publish(void *p, const char *topic, const char *key, const void *data,
                      size_t len, char *errbuf, size_t errlen)
{
    mq_inst *mi = p;
    mq_conn *c = mi->shared;
    int rc;
    if (__atomic_load_n(&mi->events_pending, __ATOMIC_RELAXED))
        mq_deliver_events(mi);
    if (!(mi->roles & IOTLAT_ROLE_PUBLISH)) {
        mq_fmt(errbuf, errlen, "publish('%s'): driver not opened for publishing", topic);
        return IOTLAT_EINVAL;
    }
    if (mi->per_device && !(c = device_conn(mi, key, &rc, errbuf, errlen)))
        return rc;
    if (len > 268435455) { /* MQTT's largest remaining length */
        mq_fmt(errbuf, errlen, "publish('%s'): %zu bytes is more than MQTT allows", topic,
                 len);
        return IOTLAT_EINVAL;
    }
    MQTTAsync_message m = MQTTAsync_message_initializer;
    m.payload = (void *)data; /* Paho copies it */
    m.payloadlen = (int)len;
    m.qos = mi->qos;
    rc = MQTTAsync_sendMessage(c->h, topic, &m, NULL);
    switch (rc) {
    case MQTTASYNC_SUCCESS:
        return 0;
    case MQTTASYNC_DISCONNECTED:
        return mq_conn_why_down(c, errbuf, errlen);
    case MQTTASYNC_MAX_BUFFERED_MESSAGES:
        mq_fmt(errbuf, errlen,
                 "Paho's queue of IOTLAT_MQTT_MAX_BUFFERED=%ld messages is full: the broker "
                 "at %s is not keeping up",
                 mi->max_buffered, mi->where);
        return IOTLAT_EAGAIN;
    case MQTTASYNC_BAD_UTF8_STRING:
    case MQTTASYNC_TOPICNAME_TRUNCATED:
        mq_fmt(errbuf, errlen, "publish('%s'): not a valid MQTT topic name: %s", topic,
                 MQTTAsync_strerror(rc));
        return IOTLAT_EINVAL;
    default:
        mq_fmt(errbuf, errlen, "publish('%s') to %s failed: %s", topic, mi->where,
                 MQTTAsync_strerror(rc));
        return IOTLAT_EIO;
    }
}

/* ---- subscribe ---- */

static void sub_done(mq_inst *mi, int rc, const char *why)
{
    pthread_mutex_lock(&mi->mu);
    mi->sub_rc = rc;
    mq_fmt(mi->sub_err, sizeof mi->sub_err, "%s", why ? why : "");
    mi->sub_waiting = 0;
    pthread_cond_broadcast(&mi->changed);
    pthread_mutex_unlock(&mi->mu);
}

static void on_sub_ok(void *ctx, MQTTAsync_successData *r)
{
    if (r && r->alt.qos >= 0x80)
        sub_done(ctx, IOTLAT_EAUTH, "the broker refused the subscription (SUBACK 0x80)");
    else
        sub_done(ctx, 0, NULL);
}

static void on_sub_fail(void *ctx, MQTTAsync_failureData *r)
{
    char why[200];
    if (r && r->code == 0x80)
        mq_fmt(why, sizeof why, "the broker refused the subscription (SUBACK 0x80)");
    else
        mq_fmt(why, sizeof why, "subscribe failed: %s",
                 r && r->message ? r->message : MQTTAsync_strerror(r ? r->code : -1));
    sub_done(ctx, IOTLAT_EIO, why);
}

static void on_sub_ok5(void *ctx, MQTTAsync_successData5 *r)
{
    char why[200];
    if (r && r->reasonCode >= 0x80) {
        mq_fmt(why, sizeof why, "the broker refused the subscription: %s",
                 MQTTReasonCode_toString(r->reasonCode));
        sub_done(ctx, IOTLAT_EAUTH, why);
    } else {
        sub_done(ctx, 0, NULL);
    }
}

static void on_sub_fail5(void *ctx, MQTTAsync_failureData5 *r)
{
    char why[200];
    int code = r ? (r->reasonCode >= 0x80 ? (int)r->reasonCode : r->code) : -1;
    if (code >= 0x80)
        mq_fmt(why, sizeof why, "the broker refused the subscription: %s",
                 MQTTReasonCode_toString((enum MQTTReasonCodes)code));
    else
        mq_fmt(why, sizeof why, "subscribe failed: %s",
                 r && r->message ? r->message : MQTTAsync_strerror(code));
    sub_done(ctx, code >= 0x80 ? IOTLAT_EAUTH : IOTLAT_EIO, why);
}

static int mq_subscribe(void *p, const char *topic, iotlat_msg_fn fn, void *ud,
                        char *errbuf, size_t errlen)
{
    mq_inst *mi = p;
    if (!mi->inbox_ready || !mi->shared) {
        mq_fmt(errbuf, errlen, "subscribe('%s'): driver not opened for subscribing", topic);
        return IOTLAT_EINVAL;
    }
    if (mi->nsubs == MQ_MAX_TOPICS) {
        mq_fmt(errbuf, errlen, "subscribe('%s'): more than %d topics", topic,
                 MQ_MAX_TOPICS);
        return IOTLAT_EINVAL;
    }
    mq_sub *s = &mi->subs[mi->nsubs];
    s->filter = strdup(topic);
    if (!s->filter) {
        mq_fmt(errbuf, errlen, "out of memory");
        return IOTLAT_ENOMEM;
    }
    s->fn = fn;
    s->ud = ud;
    pthread_mutex_lock(&mi->mu);
    /* Published before the SUBSCRIBE goes out, so a reconnect in between
     * subscribes it too, and the first message already finds it. */
    __atomic_store_n(&mi->nsubs, mi->nsubs + 1, __ATOMIC_RELEASE);
    mi->sub_waiting = 1;
    mi->sub_rc = 0;
    pthread_mutex_unlock(&mi->mu);

    MQTTAsync_responseOptions ro = MQTTAsync_responseOptions_initializer;
    ro.context = mi;
    if (mi->version == MQTTVERSION_5) {
        ro.onSuccess5 = on_sub_ok5;
        ro.onFailure5 = on_sub_fail5;
    } else {
        ro.onSuccess = on_sub_ok;
        ro.onFailure = on_sub_fail;
    }
    int rc = MQTTAsync_subscribe(mi->shared->h, topic, mi->qos, &ro);
    if (rc == MQTTASYNC_DISCONNECTED) {
        /* Kept: the reconnect subscribes it. */
        mi->host->log(mi->host->host_ud, IOTLAT_LOG_WARN,
                      "subscribe('%s'): not connected to %s now; subscribing on reconnect",
                      topic, mi->where);
        return 0;
    }
    if (rc != MQTTASYNC_SUCCESS) {
        mq_fmt(errbuf, errlen, "subscribe('%s') at %s failed: %s", topic, mi->where,
                 MQTTAsync_strerror(rc));
        return rc == MQTTASYNC_BAD_UTF8_STRING ? IOTLAT_EINVAL : IOTLAT_EIO;
    }
    /* Wait for the SUBACK, so that messages published after subscribe()
     * returns are delivered. */
    int64_t deadline = mq_mono_us() + mi->connect_timeout * 1000000;
    struct timespec ts = {.tv_sec = (time_t)(deadline / 1000000),
                          .tv_nsec = (long)(deadline % 1000000) * 1000};
    pthread_mutex_lock(&mi->mu);
    while (mi->sub_waiting && mq_mono_us() < deadline)
        pthread_cond_timedwait(&mi->changed, &mi->mu, &ts);
    int waiting = mi->sub_waiting;
    rc = mi->sub_rc;
    if (rc)
        mq_fmt(errbuf, errlen, "subscribe('%s') at %s: %s", topic, mi->url, mi->sub_err);
    mi->sub_waiting = 0;
    pthread_mutex_unlock(&mi->mu);
    if (waiting) {
        mq_fmt(errbuf, errlen, "subscribe('%s'): no SUBACK from %s within %ld s", topic,
                 mi->where, mi->connect_timeout);
        return IOTLAT_EIO;
    }
    return rc;
}

/* ---- poll, fd, flush ---- */

static void deliver(void *ud, int tag, const char *topic, const void *data, size_t len,
                    int64_t t_recv)
{
    mq_inst *mi = ud;
    if (tag < 0) { /* arrived before its subscribe() (persistent session) */
        for (int i = 0; i < mi->nsubs && tag < 0; i++)
            if (strcmp(mi->subs[i].filter, topic) == 0 ||
                mq_match_topic(mi->subs[i].filter, topic))
                tag = i;
        if (tag < 0)
            return;
    }
    mq_sub *s = &mi->subs[tag];
    s->fn(s->ud, topic, data, len, t_recv);
}

static int mq_poll(void *p, int timeout_ms, char *errbuf, size_t errlen)
{
    mq_inst *mi = p;
    (void)errbuf, (void)errlen;
    if (__atomic_load_n(&mi->events_pending, __ATOMIC_RELAXED))
        mq_deliver_events(mi);
    if (!mi->inbox_ready) {
        if (timeout_ms > 0) {
            struct timespec ts = {timeout_ms / 1000, (long)(timeout_ms % 1000) * 1000000};
            nanosleep(&ts, NULL);
        }
        return 0;
    }
    uint64_t dropped = __atomic_load_n(&mi->inbox.dropped, __ATOMIC_RELAXED);
    if (dropped != mi->dropped_seen) {
        mi->host->log(mi->host->host_ud, IOTLAT_LOG_WARN,
                      "%llu messages dropped so far: the inbox of IOTLAT_MQTT_INBOX=%ld "
                      "messages was full",
                      (unsigned long long)dropped, mi->inbox_limit);
        mi->dropped_seen = dropped;
    }
    return drv_inbox_drain(&mi->inbox, timeout_ms, MAX_BATCH, deliver, mi);
}

static int mq_fd(void *p)
{
    mq_inst *mi = p;
    return mi->inbox_ready ? mi->inbox.efd : -1;
}

/* Messages Paho still holds for one connection (queued, or QoS 1/2 not yet
 * acknowledged). */
static int pending(mq_conn *c)
{
    MQTTAsync_token *tokens = NULL;
    int n = 0;
    if (!c || MQTTAsync_getPendingTokens(c->h, &tokens) != MQTTASYNC_SUCCESS || !tokens)
        return 0;
    while (tokens[n] != -1)
        n++;
    MQTTAsync_free(tokens);
    return n;
}

static int mq_flush(void *p, int timeout_ms, char *errbuf, size_t errlen)
{
    mq_inst *mi = p;
    int64_t deadline = mq_mono_us() + (int64_t)timeout_ms * 1000;
    long first = 0; /* connections before this one were seen empty */
    if (__atomic_load_n(&mi->events_pending, __ATOMIC_RELAXED))
        mq_deliver_events(mi);
    for (;;) {
        long left = 0;
        if (first == 0)
            left = pending(mi->shared);
        for (long i = first; i < mi->ndevs && !left; i++) {
            left = pending(mi->devs[i]);
            if (!left)
                first = i + 1;
        }
        if (!left)
            return 0;
        if (mq_mono_us() >= deadline) {
            mq_fmt(errbuf, errlen,
                     "messages still queued in Paho or unacknowledged by %s after %d ms",
                     mi->where, timeout_ms);
            return IOTLAT_EAGAIN;
        }
        struct timespec ts = {0, 2000000};
        nanosleep(&ts, NULL);
    }
}

static char version[96];

static const iotlat_driver table = {
    .abi_major = IOTLAT_DRIVER_ABI_MAJOR,
    .abi_minor = IOTLAT_DRIVER_ABI_MINOR,
    .size = sizeof(iotlat_driver),
    .name = "mqtt",
    .version = version,
    .open = mq_open,
    .subscribe = mq_subscribe,
    .publish = mq_publish,
    .poll = mq_poll,
    .fd = mq_fd,
    .wait_ready = NULL,
    .flush = mq_flush,
    .close = mq_close,
};

const iotlat_driver *IOTLAT_DRIVER_ENTRY(uint16_t major, uint16_t minor,
                                          const iotlat_host *host, char *errbuf,
                                          size_t errlen)
{
    (void)minor, (void)host;
    if (major != IOTLAT_DRIVER_ABI_MAJOR) {
        mq_fmt(errbuf, errlen, "mqtt driver supports ABI major %d only, host has %u",
                 IOTLAT_DRIVER_ABI_MAJOR, major);
        return NULL;
    }
    /* Paho's send and receive threads outlive the last client by up to a
     * moment, and run code of libpaho: if the host dlclose()s us and with us
     * libpaho, a thread still finishing would jump into unmapped memory.
     * Pin this object (and so libpaho) for the life of the process. */
    Dl_info info;
    if (dladdr((void *)&table, &info) && info.dli_fname)
        dlopen(info.dli_fname, RTLD_NOW | RTLD_NOLOAD | RTLD_NODELETE);
    const char *paho = "?";
    for (MQTTAsync_nameValue *v = MQTTAsync_getVersionInfo(); v && v->name; v++)
        if (strcmp(v->name, "Version") == 0)
            paho = v->value;
    mq_fmt(version, sizeof version, "mqtt driver 1.0, Paho MQTT C %s", paho);
    return &table;
}
