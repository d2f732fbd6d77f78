/*
 * zeromq.c - the ZeroMQ driver: brokerless PUB/SUB, iotlat's embedded default.
 *
 * ZeroMQ needs no server, so a latency test runs anywhere with nothing to
 * install.  The publishing side binds an XPUB socket (an XPUB rather than a
 * PUB because it lets us see subscriptions arrive: a PUB socket silently drops
 * whatever it sends before a subscriber has connected, so wait_ready() waits
 * until the expected number of subscribers is there).  The subscribing side
 * connects a SUB socket to one or more endpoints; ZeroMQ retries the connect
 * on its own, so start order does not matter.
 *
 * Framing: "multipart" sends [topic][payload] as two frames, the ZeroMQ
 * convention any client understands; "prefix" sends one frame
 * "topic\0payload", which halves the per-message work at the highest rates.
 * The subscription prefix matches topics by prefix, so received topics are
 * compared exactly before delivery.
 *
 * Options (IOTLAT_ZEROMQ_*): BIND, CONNECT, SNDHWM, RCVHWM, FRAMING,
 * WAIT_SUBSCRIBERS, IO_THREADS; see zmq_options below and the README.
 */
#include "drvutil.h"
#include "iotlat_driver.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#define MAX_TOPICS 16
#define MAX_BATCH 4096 /* messages per poll() before returning to the loop */

typedef struct sub_topic {
    char *name;
    size_t len;
    iotlat_msg_fn fn;
    void *ud;
} sub_topic;

typedef struct zinst {
    const iotlat_host *host;
    void *ctx;
    void *pub;  /* XPUB, bound */
    void *sub;  /* SUB, connected */
    int prefix_framing;
    long wait_subscribers;
    long subscriptions; /* current subscribe - unsubscribe count on pub */
    char *scratch;      /* prefix framing: topic\0payload */
    size_t scratch_cap;
    sub_topic topics[MAX_TOPICS];
    int ntopics;
    zmq_msg_t msg;
    void *mon;       /* PAIR socket receiving the SUB socket's events */
    int connected;   /* endpoints currently connected */
    int default_connect; /* connect the default endpoint at first subscribe */
    int ever_connected;
} zinst;


static const char *const zmq_options[] = {"BIND",   "CONNECT",          "SNDHWM",
                                          "RCVHWM", "FRAMING",          "WAIT_SUBSCRIBERS",
                                          "IO_THREADS", "NODROP", NULL};

static void zclose(void *p)
{
    zinst *z = p;
    for (int i = 0; i < z->ntopics; i++)
        free(z->topics[i].name);
    if (z->pub)
        zmq_close(z->pub);
    if (z->sub)
        zmq_close(z->sub);
    if (z->mon)
        zmq_close(z->mon);
    zmq_msg_close(&z->msg);
    if (z->ctx)
        zmq_ctx_term(z->ctx);
    free(z->scratch);
    free(z);
}

/* Apply fn to each comma-separated endpoint. */
static int each_endpoint(void *sock, char *list, int bind, char *errbuf, size_t errlen)
{
    char *save = NULL;
    for (char *ep = strtok_r(list, ",", &save); ep; ep = strtok_r(NULL, ",", &save)) {
        int rc = bind ? zmq_bind(sock, ep) : zmq_connect(sock, ep);
        if (rc != 0) {
            snprintf(errbuf, errlen, "IOTLAT_ZEROMQ_%s='%s': cannot %s: %s",
                     bind ? "BIND" : "CONNECT", ep, bind ? "bind" : "connect",
                     zmq_strerror(errno));
            return bind && errno == EADDRINUSE ? IOTLAT_ECONNECT : IOTLAT_EINVAL;
        }
    }
    return 0;
}

static int zopen(const iotlat_host *host, int roles, void **out, char *errbuf,
                 size_t errlen)
{
    char bind[512], connect[512];
    int connect_set = 0, nodrop = 1;
    long sndhwm, rcvhwm, io_threads, wait_subs;
    int rc, zero = 0, one = 1;

    static const char *const framings[] = {"multipart", "prefix", NULL};
    drv_opts o = {host, "IOTLAT_ZEROMQ_", errbuf, errlen};
    int framing;

    rc = host->check_options(host->host_ud, o.prefix, zmq_options, errbuf, errlen);
    if (rc)
        return rc;
    if ((rc = drv_opt_str(&o, "BIND", "tcp://127.0.0.1:5556", bind, sizeof bind, NULL)) ||
        (rc = drv_opt_str(&o, "CONNECT", "tcp://127.0.0.1:5556", connect, sizeof connect,
                          &connect_set)) ||
        (rc = drv_opt_enum(&o, "FRAMING", "multipart", framings, &framing)) ||
        (rc = drv_opt_long(&o, "SNDHWM", 1000000, 0, 1000000000, &sndhwm)) ||
        (rc = drv_opt_long(&o, "RCVHWM", 1000000, 0, 1000000000, &rcvhwm)) ||
        (rc = drv_opt_long(&o, "IO_THREADS", 1, 1, 64, &io_threads)) ||
        (rc = drv_opt_long(&o, "WAIT_SUBSCRIBERS", 1, 0, 1000000, &wait_subs)) ||
        (rc = drv_opt_bool(&o, "NODROP", 1, &nodrop)))
        return rc;

    zinst *z = calloc(1, sizeof *z);
    if (!z)
        return IOTLAT_ENOMEM;
    z->host = host;
    z->prefix_framing = framing == 1;
    z->wait_subscribers = wait_subs;
    zmq_msg_init(&z->msg);
    z->ctx = zmq_ctx_new();
    if (!z->ctx) {
        snprintf(errbuf, errlen, "zmq_ctx_new failed: %s", zmq_strerror(errno));
        zclose(z);
        return IOTLAT_EIO;
    }
    zmq_ctx_set(z->ctx, ZMQ_IO_THREADS, (int)io_threads);

    if (roles & IOTLAT_ROLE_PUBLISH) {
        int hwm = (int)sndhwm, linger = 2000;
        z->pub = zmq_socket(z->ctx, ZMQ_XPUB);
        zmq_setsockopt(z->pub, ZMQ_SNDHWM, &hwm, sizeof hwm);
        zmq_setsockopt(z->pub, ZMQ_LINGER, &linger, sizeof linger);
        /* Verbose: every subscriber's subscription reaches us, not only the
         * first one per topic, so wait_ready() can count subscribers. */
        zmq_setsockopt(z->pub, ZMQ_XPUB_VERBOSE, &one, sizeof one);
        /* With a full queue, fail the send (counted by the publisher as a
         * send failure) instead of dropping it silently after reporting
         * success: what the publisher calls sent was really sent. */
        if (nodrop)
            zmq_setsockopt(z->pub, ZMQ_XPUB_NODROP, &one, sizeof one);
        if ((rc = each_endpoint(z->pub, bind, 1, errbuf, errlen))) {
            zclose(z);
            return rc;
        }
    }
    if (roles & IOTLAT_ROLE_SUBSCRIBE) {
        int hwm = (int)rcvhwm;
        z->sub = zmq_socket(z->ctx, ZMQ_SUB);
        zmq_setsockopt(z->sub, ZMQ_RCVHWM, &hwm, sizeof hwm);
        zmq_setsockopt(z->sub, ZMQ_LINGER, &zero, sizeof zero);
        /* A connection lost and regained is an outage the report must show:
         * watch the SUB socket's connection events. */
        char addr[64];
        snprintf(addr, sizeof addr, "inproc://iotlat-monitor-%p", (void *)z);
        if (zmq_socket_monitor(z->sub, addr,
                               ZMQ_EVENT_CONNECTED | ZMQ_EVENT_DISCONNECTED) == 0) {
            z->mon = zmq_socket(z->ctx, ZMQ_PAIR);
            zmq_setsockopt(z->mon, ZMQ_LINGER, &zero, sizeof zero);
            if (zmq_connect(z->mon, addr) != 0) {
                zmq_close(z->mon);
                z->mon = NULL;
            }
        }
        /* The default endpoint is only used if nothing is attached before
         * the first subscribe (an endpoint discovered through Redis). */
        if (!connect_set)
            z->default_connect = 1;
        else if ((rc = each_endpoint(z->sub, connect, 0, errbuf, errlen))) {
            zclose(z);
            return rc;
        }
    }
    *out = z;
    return 0;
}

static int zsubscribe(void *p, const char *topic, iotlat_msg_fn fn, void *ud,
                      char *errbuf, size_t errlen)
{
    zinst *z = p;
    if (!z->sub) {
        snprintf(errbuf, errlen, "subscribe('%s'): driver not opened for subscribing",
                 topic);
        return IOTLAT_EINVAL;
    }
    if (z->ntopics == MAX_TOPICS) {
        snprintf(errbuf, errlen, "subscribe('%s'): more than %d topics", topic,
                 MAX_TOPICS);
        return IOTLAT_EINVAL;
    }
    if (z->default_connect) {
        char def[] = "tcp://127.0.0.1:5556";
        z->default_connect = 0;
        int rc = each_endpoint(z->sub, def, 0, errbuf, errlen);
        if (rc)
            return rc;
    }
    sub_topic *t = &z->topics[z->ntopics];
    t->len = strlen(topic);
    t->name = strdup(topic);
    if (!t->name)
        return IOTLAT_ENOMEM;
    t->fn = fn;
    t->ud = ud;
    /* Prefix framing subscribes to "topic\0" so that "a" does not also
     * receive "ab"; multipart filtering is finished in deliver(). */
    zmq_setsockopt(z->sub, ZMQ_SUBSCRIBE, topic, t->len + (size_t)z->prefix_framing);
    z->ntopics++;
    return 0;
}

static int zpublish(void *p, const char *topic, const char *key, const void *data,
                    size_t len, char *errbuf, size_t errlen)
{
    zinst *z = p;
    size_t tl = strlen(topic);
    (void)key;
    if (!z->pub) {
        snprintf(errbuf, errlen, "publish('%s'): driver not opened for publishing",
                 topic);
        return IOTLAT_EINVAL;
    }
    if (z->prefix_framing) {
        size_t need = tl + 1 + len;
        if (need > z->scratch_cap) {
            char *n = realloc(z->scratch, need * 2);
            if (!n)
                return IOTLAT_ENOMEM;
            z->scratch = n;
            z->scratch_cap = need * 2;
        }
        memcpy(z->scratch, topic, tl + 1);
        memcpy(z->scratch + tl + 1, data, len);
        if (zmq_send(z->pub, z->scratch, need, ZMQ_DONTWAIT) < 0)
            goto fail;
        return 0;
    }
    if (zmq_send(z->pub, topic, tl, ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0 ||
        zmq_send(z->pub, data, len, ZMQ_DONTWAIT) < 0)
        goto fail;
    return 0;
fail:
    snprintf(errbuf, errlen, "zmq_send('%s'): %s", topic, zmq_strerror(errno));
    return errno == EAGAIN ? IOTLAT_EAGAIN : IOTLAT_EIO;
}

static void deliver(zinst *z, const char *topic, size_t tlen, const void *data,
                    size_t len, int64_t t_recv)
{
    for (int i = 0; i < z->ntopics; i++) {
        sub_topic *t = &z->topics[i];
        if (t->len == tlen && memcmp(t->name, topic, tlen) == 0) {
            t->fn(t->ud, t->name, data, len, t_recv);
            return;
        }
    }
}

/* Count subscriptions arriving on the XPUB socket (never blocks). */
static void drain_subscriptions(zinst *z)
{
    char buf[256];
    int n;
    while (z->pub && (n = zmq_recv(z->pub, buf, sizeof buf, ZMQ_DONTWAIT)) > 0) {
        if (buf[0] == 1)
            z->subscriptions++;
        else if (buf[0] == 0)
            z->subscriptions--;
    }
}

/* Receive one message (all frames) without waiting; 1 if delivered or
 * skipped, 0 if nothing was there. */
static int recv_one(zinst *z)
{
    char topic[256];
    int more;
    size_t more_len = sizeof more;
    int64_t t_recv;

    if (z->prefix_framing) {
        if (zmq_msg_recv(&z->msg, z->sub, ZMQ_DONTWAIT) < 0)
            return 0;
        t_recv = z->host->now_us();
        const char *d = zmq_msg_data(&z->msg);
        size_t len = zmq_msg_size(&z->msg);
        const char *nul = memchr(d, '\0', len);
        if (nul)
            deliver(z, d, (size_t)(nul - d), nul + 1, len - (size_t)(nul - d) - 1,
                    t_recv);
        return 1;
    }
    int tl = zmq_recv(z->sub, topic, sizeof topic, ZMQ_DONTWAIT);
    if (tl < 0)
        return 0;
    zmq_getsockopt(z->sub, ZMQ_RCVMORE, &more, &more_len);
    if (!more)
        return 1; /* a single-frame message from someone else: not ours */
    if (zmq_msg_recv(&z->msg, z->sub, 0) < 0)
        return 1;
    t_recv = z->host->now_us();
    /* Drop any further frames: our messages have exactly two. */
    zmq_getsockopt(z->sub, ZMQ_RCVMORE, &more, &more_len);
    if (more) {
        zmq_msg_t extra;
        zmq_msg_init(&extra);
        while (more && zmq_msg_recv(&extra, z->sub, 0) >= 0)
            zmq_getsockopt(z->sub, ZMQ_RCVMORE, &more, &more_len);
        zmq_msg_close(&extra);
        return 1;
    }
    if ((size_t)tl <= sizeof topic)
        deliver(z, topic, (size_t)tl, zmq_msg_data(&z->msg), zmq_msg_size(&z->msg),
                t_recv);
    return 1;
}

/* Turn the monitor's events into host connection events. */
static void drain_monitor(zinst *z)
{
    zmq_msg_t ev, ep;
    while (z->mon) {
        zmq_msg_init(&ev);
        if (zmq_msg_recv(&ev, z->mon, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(&ev);
            return;
        }
        uint16_t event = 0;
        if (zmq_msg_size(&ev) >= 2)
            memcpy(&event, zmq_msg_data(&ev), 2);
        zmq_msg_close(&ev);
        zmq_msg_init(&ep);
        zmq_msg_recv(&ep, z->mon, 0); /* the endpoint frame */
        char where[160];
        snprintf(where, sizeof where, "%.*s", (int)zmq_msg_size(&ep),
                 (const char *)zmq_msg_data(&ep));
        zmq_msg_close(&ep);
        if (event == ZMQ_EVENT_CONNECTED) {
            z->connected++;
            if (z->ever_connected)
                z->host->event(z->host->host_ud, IOTLAT_EVENT_RECONNECTED, where);
            z->ever_connected = 1;
        } else if (event == ZMQ_EVENT_DISCONNECTED) {
            if (z->connected > 0)
                z->connected--;
            char why[200];
            snprintf(why, sizeof why, "connection to %s lost", where);
            z->host->event(z->host->host_ud, IOTLAT_EVENT_DISCONNECTED, why);
        }
    }
}

static int zpoll(void *p, int timeout_ms, char *errbuf, size_t errlen)
{
    zinst *z = p;
    int n = 0;
    (void)errbuf, (void)errlen;
    drain_subscriptions(z);
    drain_monitor(z);
    if (!z->sub)
        return 0;
    if (!recv_one(z)) {
        if (timeout_ms == 0)
            return 0;
        zmq_pollitem_t it = {.socket = z->sub, .events = ZMQ_POLLIN};
        if (zmq_poll(&it, 1, timeout_ms) <= 0)
            return 0;
        if (!recv_one(z))
            return 0;
    }
    n = 1;
    while (n < MAX_BATCH && recv_one(z))
        n++;
    return n;
}

static int zfd(void *p)
{
    zinst *z = p;
    int fd = -1;
    size_t len = sizeof fd;
    if (z->sub && zmq_getsockopt(z->sub, ZMQ_FD, &fd, &len) == 0)
        return fd;
    return -1;
}

static int zwait_ready(void *p, const char *topic, int timeout_ms, char *errbuf,
                       size_t errlen)
{
    zinst *z = p;
    (void)topic;
    if (!z->pub)
        return 0;
    zmq_pollitem_t it = {.socket = z->pub, .events = ZMQ_POLLIN};
    long waited = 0;
    drain_subscriptions(z);
    while (z->subscriptions < z->wait_subscribers && waited < timeout_ms) {
        zmq_poll(&it, 1, 50);
        waited += 50;
        drain_subscriptions(z);
    }
    if (z->subscriptions < z->wait_subscribers) {
        snprintf(errbuf, errlen,
                 "only %ld of IOTLAT_ZEROMQ_WAIT_SUBSCRIBERS=%ld subscribers "
                 "connected within %d ms",
                 z->subscriptions, z->wait_subscribers, timeout_ms);
        return IOTLAT_EAGAIN;
    }
    return 0;
}

static int zflush(void *p, int timeout_ms, char *errbuf, size_t errlen)
{
    /* ZeroMQ hands messages to its I/O thread at once; the socket's linger
     * period at close sends what is still queued. */
    (void)p, (void)timeout_ms, (void)errbuf, (void)errlen;
    return 0;
}

static int zendpoint(void *p, char *buf, size_t len)
{
    zinst *z = p;
    size_t l = len;
    if (!z->pub || zmq_getsockopt(z->pub, ZMQ_LAST_ENDPOINT, buf, &l) != 0)
        return IOTLAT_EINVAL;
    return 0;
}

static int zattach(void *p, const char *endpoint, char *errbuf, size_t errlen)
{
    zinst *z = p;
    if (!z->sub) {
        snprintf(errbuf, errlen, "attach('%s'): driver not opened for subscribing",
                 endpoint);
        return IOTLAT_EINVAL;
    }
    z->default_connect = 0;
    if (zmq_connect(z->sub, endpoint) != 0) {
        snprintf(errbuf, errlen, "cannot connect to advertised endpoint '%s': %s", endpoint,
                 zmq_strerror(errno));
        return IOTLAT_EINVAL;
    }
    return 0;
}

static char version[64];

static const iotlat_driver table = {
    .abi_major = IOTLAT_DRIVER_ABI_MAJOR,
    .abi_minor = IOTLAT_DRIVER_ABI_MINOR,
    .size = sizeof(iotlat_driver),
    .name = "zeromq",
    .version = version,
    .open = zopen,
    .subscribe = zsubscribe,
    .publish = zpublish,
    .poll = zpoll,
    .fd = zfd,
    .wait_ready = zwait_ready,
    .flush = zflush,
    .close = zclose,
    .endpoint = zendpoint,
    .attach = zattach,
};

const iotlat_driver *IOTLAT_DRIVER_ENTRY(uint16_t major, uint16_t minor,
                                          const iotlat_host *host, char *errbuf,
                                          size_t errlen)
{
    int a, b, c;
    (void)minor, (void)host;
    if (major != IOTLAT_DRIVER_ABI_MAJOR) {
        snprintf(errbuf, errlen, "zeromq driver supports ABI major %d only, host has %u",
                 IOTLAT_DRIVER_ABI_MAJOR, major);
        return NULL;
    }
    zmq_version(&a, &b, &c);
    snprintf(version, sizeof version, "zeromq driver 1.0, libzmq %d.%d.%d", a, b, c);
    return &table;
}
