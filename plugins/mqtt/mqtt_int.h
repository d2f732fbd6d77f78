/*
 * mqtt_int.h - what the files of the MQTT driver share: the instance, one
 * broker connection, and the functions each file offers the others.
 *
 * The driver is split by concern: mqtt.c is the ABI surface (options, open,
 * publish, subscribe, poll, flush, close), conn.c owns the life of every
 * broker connection (the paced connect queue, reconnects, Paho's callbacks,
 * connection events), and nodelay.c sets TCP_NODELAY on the sockets Paho
 * opens, because Paho itself never does.
 *
 * Locking: everything a Paho thread, the connection manager thread and the
 * host's thread all touch lives under mq_inst.mu.  The hot path (publish)
 * takes no lock of ours: it reads the connection's handle, which is set once
 * before the connection is shared with any other thread.
 */
#ifndef IL_MQTT_INT_H
#define IL_MQTT_INT_H

#include "drvutil.h"
#include "iotlat_driver.h"

#include <MQTTAsync.h>
#include <pthread.h>
#include <stdint.h>

#define MQ_MAX_TOPICS 16
#define MQ_MAX_URIS 8
#define MQ_MAX_EVENTS 32
#define MQ_TEMPLATE_LEN 256
#define MQ_MAX_DEVICE 10000000L /* highest device id with its own connection */

/* Where a connection is in its life (mq_conn.state, under mq_inst.mu). */
enum mq_state {
    MQ_IDLE,       /* created, never asked to connect */
    MQ_QUEUED,     /* waiting in the manager's connect queue */
    MQ_CONNECTING, /* MQTTAsync_connect issued, no answer yet */
    MQ_UP,         /* connected */
    MQ_FAILED,     /* the last attempt failed; a retry may be queued */
    MQ_CLOSING     /* close() has begun: callbacks must not touch it */
};

typedef struct mq_inst mq_inst;

/* One MQTTAsync client: the shared connection or one device's own. */
typedef struct mq_conn {
    mq_inst *mi;
    MQTTAsync h;
    long dev; /* device id, or -1 for the shared connection */
    char client_id[MQ_TEMPLATE_LEN];
    char username[MQ_TEMPLATE_LEN]; /* "" when none */
    char password[MQ_TEMPLATE_LEN]; /* "" when none; never logged */
    int state;      /* enum mq_state */
    int ever_up;    /* has been connected once: later losses are outages */
    int down;       /* counted in mi->ndown */
    int queued;     /* linked in the connect queue */
    int backoff_ms; /* delay before the next retry after a failure */
    int64_t not_before; /* CLOCK_MONOTONIC us: earliest next attempt */
    int last_rc;        /* IOTLAT_E* code of the last failure */
    char last_err[384]; /* its sentence, for publish() and open() */
    char tls_err[200];  /* last OpenSSL error text Paho reported */
    int disconnected;   /* close(): our own disconnect completed */
    MQTTAsync_SSLOptions ssl;
    struct mq_conn *qnext;
} mq_conn;

typedef struct mq_sub {
    char *filter;
    iotlat_msg_fn fn;
    void *ud;
} mq_sub;

typedef struct mq_event {
    int type; /* IOTLAT_EVENT_* */
    char detail[256];
} mq_event;

struct mq_inst {
    const iotlat_host *host;
    int roles;

    /* Options, fixed after open(). */
    char url[512];                /* as given, for messages */
    char *uris[MQ_MAX_URIS];      /* the comma-separated list, split */
    int nuris;
    uint16_t ports[MQ_MAX_URIS];  /* broker ports: how nodelay.c knows our sockets */
    char where[300];              /* "host:port" of the first URI, for messages */
    int version;                  /* MQTTVERSION_3_1_1 or MQTTVERSION_5 */
    int qos;
    int clean;
    int per_device;
    int nodelay;
    int offline_buffer;
    long devices;                 /* per-device connections opened up front */
    long connect_rate;            /* connection attempts per second */
    long connect_timeout;         /* seconds */
    long keepalive;               /* seconds */
    long max_buffered;
    long max_inflight;            /* unacknowledged QoS 1/2 messages per connection */
    long session_expiry;          /* seconds, MQTT 5 persistent sessions */
    long reconnect_max_ms;
    long inbox_limit;
    int tls, tls_insecure;
    char tls_ca[512], tls_cert[512], tls_key[512];
    char client_id_t[MQ_TEMPLATE_LEN];
    char username_t[MQ_TEMPLATE_LEN];
    char password_t[MQ_TEMPLATE_LEN];
    char shared_name[24];         /* what %d means for the shared connection */
    char random_tag[12];          /* %r */

    /* Connection manager: a thread that starts connects at connect_rate and
     * sweeps sockets for TCP_NODELAY. */
    pthread_mutex_t mu;
    pthread_cond_t wake;    /* manager: queue or sweep request changed */
    pthread_cond_t changed; /* waiters: some connection changed state */
    pthread_t manager;
    int manager_started;
    int stop;
    int opened;             /* open() finished: failures retry instead of failing it */
    mq_conn *qhead, *qtail;
    int64_t next_slot;      /* monotonic us of the next allowed connect */
    int sweep_pending;
    int64_t last_sweep;
    long nup, ndown;
    long nodelay_set;       /* sockets set by the last sweeps (for the log) */

    mq_conn *shared;        /* publishing in shared mode, and every subscription */
    mq_conn **devs;         /* per-device connections, indexed by device id */
    long ndevs;

    mq_sub subs[MQ_MAX_TOPICS];
    int nsubs;
    int sub_waiting;        /* subscribe(): SUBACK outcome, under mu */
    int sub_rc;
    char sub_err[256];

    drv_inbox inbox;
    int inbox_ready;
    uint64_t dropped_seen;

    mq_event events[MQ_MAX_EVENTS]; /* under mu; delivered on the host's thread */
    int nevents;
    int events_pending;             /* atomic hint for the hot path */
};

/* ---- conn.c ---- */

/* Start and stop the manager thread.  Return 0 or IOTLAT_EIO. */
int mq_manager_start(mq_inst *mi, char *errbuf, size_t errlen);
void mq_manager_stop(mq_inst *mi);
/* Create a connection (Paho client, callbacks, credentials) for device
 * `dev` (-1: the shared one).  Returns it, or NULL with errbuf filled. */
mq_conn *mq_conn_new(mq_inst *mi, long dev, char *errbuf, size_t errlen);
/* Queue a connect attempt after delay_ms; caller holds mi->mu. */
void mq_conn_queue(mq_conn *c, int delay_ms);
/* Wait until every connection in conns[0..n) is up, one has failed, or the
 * deadline (monotonic us) passes.  Returns 0, or a negative code with the
 * reason in errbuf. */
int mq_conn_wait_up(mq_inst *mi, mq_conn **conns, long n, int64_t deadline,
                    char *errbuf, size_t errlen);
/* Disconnect and destroy every connection, then free them. */
void mq_conns_close(mq_inst *mi);
/* Hand queued connection events to the host (host thread only). */
void mq_deliver_events(mq_inst *mi);
/* Describe why c cannot send right now (after Paho said "disconnected"). */
int mq_conn_why_down(mq_conn *c, char *errbuf, size_t errlen);
/* Expand a %-template (%d %p %h %r %%) for device `dev` (-1: shared). */
int mq_expand(const mq_inst *mi, const char *tmpl, long dev, char *out, size_t len);
int64_t mq_mono_us(void);
/* MQTT topic filter matching ('+' one level, '#' the rest). */
int mq_match_topic(const char *filter, const char *topic);
/* snprintf for messages: truncation is fine, they are sentences for people
 * (and, unlike snprintf, it does not make -Wformat-truncation guess at
 * every buffer). */
void mq_fmt(char *buf, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* ---- nodelay.c ---- */

/* Set TCP_NODELAY on every TCP socket of this process whose peer port is
 * one of ports[0..nports).  Returns how many sockets to those ports now have
 * it set (whether by this call or before). */
long mq_nodelay_sweep(const uint16_t *ports, int nports);

#endif
