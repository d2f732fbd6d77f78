/*
 * kafka.c - the Kafka driver, on librdkafka.
 *
 * Kafka is the broker most iPaaS and stream-processing stacks sit on, so a
 * latency test has to drive it the way production clients do: a producer
 * that batches for about a millisecond (linger.ms=0 collapses throughput,
 * larger values are pure added latency), keyed by device id so that each
 * device's messages land in one partition and keep their order, and a
 * balanced consumer group on the other side, so subscriber replicas split
 * the partitions the way a scaled-out consumer would.
 *
 * librdkafka serves every callback (delivery reports, errors, logs,
 * rebalances) from the application's own poll calls, and the consumer hands
 * out messages through rd_kafka_consumer_poll(), so nothing here runs on a
 * library thread: poll() stamps each message as consumer_poll() returns it
 * and calls the host at once.  The consumer queue's wake-up is an eventfd,
 * which fd() hands to the host's event loop.
 *
 * Starting positions.  With auto.offset.reset=latest, librdkafka resolves
 * "latest" lazily, some time after the group assigned a partition, so
 * messages published in between are skipped and a latency test would
 * report a loss that is only a start-up race.  The rebalance callback
 * therefore resolves the start itself: the group's committed offset if
 * there is one, else the partition's end offset queried right there, and
 * assigns explicit offsets; subscribe() returns once that is done.  When
 * partitions move to another group member, the revoking member commits its
 * exact position (or its untouched start offset), so the new owner resumes
 * where it stopped and the group together receives every message once.  A
 * member also remembers its own positions in what it gave up, so getting a
 * partition back after a refused commit, or after being expelled from a
 * group of its own during an outage, resumes there instead of at the end.
 *
 * Connection state.  librdkafka never fails on an unreachable bootstrap
 * list, so open() asks for cluster metadata within
 * IOTLAT_KAFKA_CONNECT_TIMEOUT_MS and fails with IOTLAT_ECONNECT naming the
 * brokers and librdkafka's last connection error.  Later, "all brokers
 * down" on the producer or the consumer is a disconnect; the reconnect is
 * the first message that handle then delivers (producer) or newly fetches
 * (consumer), or a new partition assignment.  A single broker's
 * transport error is not an outage of the client (the others still serve),
 * and librdkafka reports it before "all brokers down" when it is one.
 *
 * Options (IOTLAT_KAFKA_*): see kafka_options below and README.md.  Any
 * librdkafka property passes through as IOTLAT_KAFKA_PROP_<NAME> (upper
 * case, dots written as underscores) or in the list IOTLAT_KAFKA_PROPS.
 */
#include "drvutil.h"
#include "iotlat_driver.h"

#include <librdkafka/rdkafka.h>

#include <ctype.h>
#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

#define PREFIX "IOTLAT_KAFKA_"
#define PROP_PREFIX "IOTLAT_KAFKA_PROP_"
#define MAX_TOPICS 16
#define MAX_BATCH 4096       /* messages per poll() before returning to the loop */
#define HELD_LIMIT 1000000   /* messages kept while subscribe() waits for the group */
#define OFFSET_TIMEOUT_MS 5000 /* committed-offset and end-offset queries */
#define CLOSE_TIMEOUT_MS 5000  /* leaving the group at close */
#define DOWN_PRODUCER 1
#define DOWN_CONSUMER 2

/* Fixed option names (after IOTLAT_KAFKA_).  PROP_* names are accepted on
 * top of these: open() adds the ones present in the environment. */
static const char *const kafka_options[] = {
    "BROKERS",     "PARTITIONS", "REPLICATION",   "GROUP",
    "ACKS",        "LINGER_MS",  "OFFSET_RESET",  "CONNECT_TIMEOUT_MS",
    "JOIN_TIMEOUT_MS", "SASL_USERNAME", "SASL_PASSWORD", "PROPS",
    NULL};

typedef struct kprop {
    char *name;        /* librdkafka property name */
    char *value;       /* may be a secret: never logged */
    char source[96];   /* the variable it came from, for error messages */
} kprop;

typedef struct ptopic { /* producer topic handle cache */
    char *name;
    rd_kafka_topic_t *rkt;
} ptopic;

typedef struct ksub { /* a subscription */
    char *name;
    const rd_kafka_topic_t *rkt; /* learned from the first message */
    iotlat_msg_fn fn;
    void *ud;
    int missing_warned;
} ksub;

typedef struct kinst {
    const iotlat_host *host;
    rd_kafka_t *prod, *cons;
    rd_kafka_queue_t *cq; /* consumer queue, wakes efd */
    int efd;              /* eventfd: readable when poll() may deliver */
    char brokers[1024];
    long partitions, replication, connect_timeout_ms, join_timeout_ms;
    int reset_earliest;
    int shared_group; /* IOTLAT_KAFKA_GROUP given: commits matter */
    char group[256];

    ptopic ptopics[MAX_TOPICS];
    int nptopics;
    ksub subs[MAX_TOPICS];
    int nsubs;
    rd_kafka_topic_partition_list_t *starts; /* assigned partitions, start offsets */
    rd_kafka_topic_partition_list_t *known;  /* our positions in partitions we gave up */
    unsigned assign_gen;                     /* rebalance assignments seen */
    drv_inbox held;                          /* received while subscribe() waited */
    int held_ok;

    /* Connection state and counters, touched only on the caller's thread
     * (every librdkafka callback is served from our poll calls). */
    int opened;    /* open() finished: connection errors are events now */
    int down;      /* DOWN_* bits: handles that lost every broker */
    size_t stale;  /* consumer messages queued before its outage began */
    int last_err_code;
    char last_err[256];      /* last error from librdkafka, for messages */
    char last_conn_err[256]; /* last transport/resolve error */
    time_t last_warn_time;
    int last_warn_code;
    unsigned long long delivered, failed;
    char first_fail[256];
} kinst;

/* ---- small helpers ---- */

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The producer and the consumer connect on their own, so each has its own
 * outage: the instance is disconnected while either is, and each recovers
 * only on evidence from its own connections.  When the consumer loses its
 * brokers, messages fetched before that may still be queued (librdkafka
 * serves the error first): those prove nothing, so they are counted off
 * before a received message counts as a reconnect. */
static void set_down(kinst *k, int which, const char *why)
{
    if ((k->down & which) || !k->opened)
        return;
    if (which == DOWN_CONSUMER)
        k->stale = k->cq ? rd_kafka_queue_length(k->cq) : 0;
    if (!k->down)
        k->host->event(k->host->host_ud, IOTLAT_EVENT_DISCONNECTED, why);
    k->down |= which;
}

static void set_up(kinst *k, int which, const char *how)
{
    if (!(k->down & which))
        return;
    k->down &= ~which;
    if (!k->down)
        k->host->event(k->host->host_ud, IOTLAT_EVENT_RECONNECTED, how);
}

/* Property names that carry secrets: their values never reach a message. */
static int is_secret(const char *name)
{
    static const char *const words[] = {"password", "secret", "pem", "jaas",
                                        "oauthbearer.config", "token", "credential",
                                        NULL};
    for (int i = 0; words[i]; i++)
        if (strcasestr(name, words[i]))
            return 1;
    return 0;
}

/* ---- librdkafka callbacks (all served from our own poll calls) ---- */

static void on_error(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
    kinst *k = opaque;
    k->last_err_code = err;
    snprintf(k->last_err, sizeof k->last_err, "%s", reason);
    switch (err) {
    case RD_KAFKA_RESP_ERR__TRANSPORT:
    case RD_KAFKA_RESP_ERR__RESOLVE:
        /* One broker's connection; "all brokers down" follows when it is
         * the client's whole cluster. */
        snprintf(k->last_conn_err, sizeof k->last_conn_err, "%s", reason);
        k->host->log(k->host->host_ud, IOTLAT_LOG_DEBUG, "%s", reason);
        return;
    case RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN: {
        char why[400];
        if (k->last_conn_err[0])
            snprintf(why, sizeof why, "%s: %s", reason, k->last_conn_err);
        else
            snprintf(why, sizeof why, "%s", reason);
        set_down(k, rk == k->cons ? DOWN_CONSUMER : DOWN_PRODUCER, why);
        return;
    }
    case RD_KAFKA_RESP_ERR__FATAL: {
        char fatal[256];
        rd_kafka_fatal_error(rk, fatal, sizeof fatal);
        k->host->log(k->host->host_ud, IOTLAT_LOG_ERROR, "fatal error: %s", fatal);
        return;
    }
    default:
        break;
    }
    /* Anything else (authentication, TLS, broker-side errors) is worth a
     * line, but librdkafka may repeat it every retry; during open() it
     * becomes part of open()'s own error message instead. */
    if (!k->opened)
        return;
    time_t now = time(NULL);
    if (err != k->last_warn_code || now - k->last_warn_time >= 10) {
        k->host->log(k->host->host_ud, IOTLAT_LOG_WARN, "%s (%s)", reason,
                     rd_kafka_err2name(err));
        k->last_warn_code = err;
        k->last_warn_time = now;
    }
}

static void on_log(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    kinst *k = rd_kafka_opaque(rk);
    int lvl;
    if (!k)
        return;
    /* Connection failures also arrive through on_error, which decides what
     * they mean; configuration notes (e.g. a consumer property given to the
     * producer) are informational, and so is librdkafka's own commit when
     * partitions are unassigned: hand_over() has already committed
     * them (and warned if it could not). */
    if (strcmp(fac, "FAIL") == 0 || level >= 6)
        lvl = IOTLAT_LOG_DEBUG;
    else if (strcmp(fac, "CONFWARN") == 0 || strcmp(fac, "COMMITFAIL") == 0 || level == 5)
        lvl = IOTLAT_LOG_INFO;
    else
        lvl = IOTLAT_LOG_WARN;
    k->host->log(k->host->host_ud, lvl, "librdkafka %s: %s", fac, buf);
}

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    kinst *k = opaque;
    (void)rk;
    if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
        k->delivered++;
        if (k->down)
            set_up(k, DOWN_PRODUCER, "message delivered");
        return;
    }
    /* publish() returned 0 for this one: the subscriber will count it lost
     * through the sequence gap; we count it here so the log says why. */
    if (k->failed++ == 0)
        snprintf(k->first_fail, sizeof k->first_fail, "%s [%d]: %s",
                 m->rkt ? rd_kafka_topic_name(m->rkt) : "?", (int)m->partition,
                 rd_kafka_err2str(m->err));
}

/* Start offsets for newly assigned partitions (see the file comment). */
static void resolve_starts(kinst *k, rd_kafka_t *rk, rd_kafka_topic_partition_list_t *parts)
{
    for (int i = 0; i < parts->cnt; i++)
        parts->elems[i].offset = RD_KAFKA_OFFSET_INVALID;
    if (k->shared_group) {
        rd_kafka_resp_err_t err = rd_kafka_committed(rk, parts, OFFSET_TIMEOUT_MS);
        if (err)
            k->host->log(k->host->host_ud, IOTLAT_LOG_WARN,
                         "group %s: cannot read committed offsets: %s", k->group,
                         rd_kafka_err2str(err));
    }
    /* A partition we held before and get back: resume from our own position
     * if the group's commit is older or missing (its commit may have been
     * refused during the rebalance, and a group of our own never commits).
     * Re-reading what another member consumed meanwhile is a duplicate the
     * subscriber counts; starting at the end would be a silent loss. */
    for (int i = 0; k->known && i < parts->cnt; i++) {
        rd_kafka_topic_partition_t *p = &parts->elems[i];
        rd_kafka_topic_partition_t *kn =
            rd_kafka_topic_partition_list_find(k->known, p->topic, p->partition);
        if (kn && kn->offset > p->offset)
            p->offset = kn->offset;
    }
    rd_kafka_topic_partition_list_t *q = rd_kafka_topic_partition_list_new(parts->cnt);
    for (int i = 0; i < parts->cnt; i++) {
        rd_kafka_topic_partition_t *p = &parts->elems[i];
        if (p->offset >= 0)
            continue;
        if (k->reset_earliest)
            p->offset = RD_KAFKA_OFFSET_BEGINNING; /* nothing published can slip by */
        else
            /* ListOffsets with timestamp -1 asks for the end offset. */
            rd_kafka_topic_partition_list_add(q, p->topic, p->partition)->offset =
                RD_KAFKA_OFFSET_END;
    }
    if (q->cnt > 0) {
        rd_kafka_resp_err_t err = rd_kafka_offsets_for_times(rk, q, OFFSET_TIMEOUT_MS);
        int lazy = 0;
        for (int i = 0; i < q->cnt; i++) {
            rd_kafka_topic_partition_t *r = &q->elems[i];
            rd_kafka_topic_partition_t *p =
                rd_kafka_topic_partition_list_find(parts, r->topic, r->partition);
            if (!p)
                continue;
            if (!err && !r->err && r->offset >= 0) {
                p->offset = r->offset;
            } else {
                p->offset = RD_KAFKA_OFFSET_END; /* librdkafka resolves it later */
                lazy++;
            }
        }
        if (lazy)
            k->host->log(k->host->host_ud, IOTLAT_LOG_WARN,
                         "could not query the end offset of %d partition(s) (%s): "
                         "messages published just now may be missed",
                         lazy, rd_kafka_err2str(err ? err : q->elems[0].err));
    }
    rd_kafka_topic_partition_list_destroy(q);
}

/* Before partitions move to another member: remember and commit exactly
 * where we are, so the next owner neither skips nor repeats a message. */
static void hand_over(kinst *k, rd_kafka_t *rk, const rd_kafka_topic_partition_list_t *parts)
{
    rd_kafka_topic_partition_list_t *c = rd_kafka_topic_partition_list_copy(parts);
    rd_kafka_position(rk, c);
    rd_kafka_topic_partition_list_t *out = rd_kafka_topic_partition_list_new(c->cnt);
    for (int i = 0; i < c->cnt; i++) {
        rd_kafka_topic_partition_t *p = &c->elems[i];
        int64_t off = p->err ? RD_KAFKA_OFFSET_INVALID : p->offset;
        if (off < 0 && k->starts) {
            /* Nothing consumed since the assignment: the start offset still
             * marks everything that has not been seen. */
            rd_kafka_topic_partition_t *s =
                rd_kafka_topic_partition_list_find(k->starts, p->topic, p->partition);
            if (s)
                off = s->offset;
        }
        if (off < 0)
            continue;
        rd_kafka_topic_partition_list_add(out, p->topic, p->partition)->offset = off;
        if (!k->known)
            k->known = rd_kafka_topic_partition_list_new(parts->cnt);
        rd_kafka_topic_partition_t *kn =
            rd_kafka_topic_partition_list_find(k->known, p->topic, p->partition);
        if (!kn)
            kn = rd_kafka_topic_partition_list_add(k->known, p->topic, p->partition);
        kn->offset = off;
    }
    /* A lost assignment (the group expelled us) cannot commit any more. */
    if (out->cnt > 0 && k->shared_group && !rd_kafka_assignment_lost(rk)) {
        rd_kafka_resp_err_t err = rd_kafka_commit(rk, out, 0 /* synchronous */);
        if (err)
            k->host->log(k->host->host_ud, IOTLAT_LOG_WARN,
                         "group %s: cannot commit positions before handing over %d "
                         "partition(s): %s",
                         k->group, out->cnt, rd_kafka_err2str(err));
    }
    rd_kafka_topic_partition_list_destroy(out);
    rd_kafka_topic_partition_list_destroy(c);
}

static void describe_parts(const rd_kafka_topic_partition_list_t *parts, char *buf,
                           size_t len)
{
    size_t n = 0;
    buf[0] = '\0';
    for (int i = 0; i < parts->cnt && n < len; i++) {
        const rd_kafka_topic_partition_t *p = &parts->elems[i];
        if (i == 0 || strcmp(p->topic, parts->elems[i - 1].topic) != 0)
            n += (size_t)snprintf(buf + n, len - n, "%s%s[%d", i ? "] " : "", p->topic,
                                  (int)p->partition);
        else
            n += (size_t)snprintf(buf + n, len - n, ",%d", (int)p->partition);
    }
    if (parts->cnt && n < len)
        snprintf(buf + n, len - n, "]");
}

static void on_rebalance(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                         rd_kafka_topic_partition_list_t *parts, void *opaque)
{
    kinst *k = opaque;
    int coop = strcmp(rd_kafka_rebalance_protocol(rk), "COOPERATIVE") == 0;
    char what[512];
    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
        resolve_starts(k, rk, parts);
        if (coop) {
            rd_kafka_error_t *e = rd_kafka_incremental_assign(rk, parts);
            if (e) {
                k->host->log(k->host->host_ud, IOTLAT_LOG_WARN, "incremental assign: %s",
                             rd_kafka_error_string(e));
                rd_kafka_error_destroy(e);
            }
        } else {
            rd_kafka_assign(rk, parts);
        }
        if (!coop || !k->starts) {
            if (k->starts)
                rd_kafka_topic_partition_list_destroy(k->starts);
            k->starts = rd_kafka_topic_partition_list_copy(parts);
        } else {
            for (int i = 0; i < parts->cnt; i++)
                rd_kafka_topic_partition_list_add(k->starts, parts->elems[i].topic,
                                                  parts->elems[i].partition)
                    ->offset = parts->elems[i].offset;
        }
        /* Record where this member starts at once: should it vanish, or
         * fail to commit when it hands the partitions over (a broker may
         * refuse commits while the group rebalances), the next owner
         * resumes here rather than at the end of the partition. */
        if (k->shared_group && parts->cnt > 0) {
            rd_kafka_topic_partition_list_t *c = rd_kafka_topic_partition_list_new(parts->cnt);
            for (int i = 0; i < parts->cnt; i++)
                if (parts->elems[i].offset >= 0)
                    rd_kafka_topic_partition_list_add(c, parts->elems[i].topic,
                                                      parts->elems[i].partition)
                        ->offset = parts->elems[i].offset;
            if (c->cnt > 0)
                rd_kafka_commit(rk, c, 1 /* asynchronous */);
            rd_kafka_topic_partition_list_destroy(c);
        }
        k->assign_gen++;
        describe_parts(parts, what, sizeof what);
        k->host->log(k->host->host_ud, IOTLAT_LOG_INFO, "group %s: assigned %d partition(s)%s%s",
                     k->group, parts->cnt, parts->cnt ? ": " : "", what);
        set_up(k, DOWN_CONSUMER, "partitions assigned");
    } else if (err == RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS) {
        if (parts->cnt > 0)
            hand_over(k, rk, parts);
        if (coop) {
            rd_kafka_error_t *e = rd_kafka_incremental_unassign(rk, parts);
            if (e)
                rd_kafka_error_destroy(e);
            if (k->starts)
                for (int i = 0; i < parts->cnt; i++)
                    rd_kafka_topic_partition_list_del(k->starts, parts->elems[i].topic,
                                                      parts->elems[i].partition);
        } else {
            rd_kafka_assign(rk, NULL);
            if (k->starts)
                rd_kafka_topic_partition_list_destroy(k->starts);
            k->starts = NULL;
        }
        k->host->log(k->host->host_ud, IOTLAT_LOG_DEBUG, "group %s: revoked %d partition(s)",
                     k->group, parts->cnt);
    } else {
        k->host->log(k->host->host_ud, IOTLAT_LOG_WARN, "group %s: rebalance failed: %s",
                     k->group, rd_kafka_err2str(err));
        rd_kafka_assign(rk, NULL);
        if (k->starts)
            rd_kafka_topic_partition_list_destroy(k->starts);
        k->starts = NULL;
    }
}

/* ---- options ---- */

static void free_props(kprop *props, int n)
{
    for (int i = 0; i < n; i++) {
        if (props[i].value) {
            memset(props[i].value, 0, strlen(props[i].value));
            free(props[i].value);
        }
        free(props[i].name);
    }
    free(props);
}

static int add_prop(kprop **props, int *n, const char *name, size_t nlen,
                    const char *value, const char *source)
{
    kprop *np = realloc(*props, sizeof **props * (size_t)(*n + 1));
    if (!np)
        return IOTLAT_ENOMEM;
    *props = np;
    kprop *p = &np[*n];
    p->name = strndup(name, nlen);
    p->value = strdup(value);
    snprintf(p->source, sizeof p->source, "%s", source);
    if (!p->name || !p->value) {
        free(p->name);
        free(p->value);
        return IOTLAT_ENOMEM;
    }
    (*n)++;
    return 0;
}

/* IOTLAT_KAFKA_PROPS="a.b=c,d.e=f": a piece without '=' belongs to the
 * previous value, so a list-valued property such as
 * "bootstrap.servers=h1:9092,h2:9092" needs no escaping. */
static int parse_props_list(const char *list, kprop **props, int *n, char *errbuf,
                            size_t errlen)
{
    char *copy = strdup(list);
    if (!copy)
        return IOTLAT_ENOMEM;
    int rc = 0;
    char *save = NULL, *name = NULL;
    size_t cap = strlen(list) + 1;
    char *value = malloc(cap);
    if (!value) {
        free(copy);
        return IOTLAT_ENOMEM;
    }
    value[0] = '\0';
    for (char *piece = strtok_r(copy, ",", &save);; piece = strtok_r(NULL, ",", &save)) {
        char *eq = piece ? strchr(piece, '=') : NULL;
        if (piece && !eq) {
            if (!name) {
                snprintf(errbuf, errlen,
                         PREFIX "PROPS: '%.64s' is invalid: expected "
                                "property=value[,property=value...]",
                         piece);
                rc = IOTLAT_EINVAL;
                break;
            }
            strcat(value, ",");
            strcat(value, piece);
            continue;
        }
        if (name) {
            char *end = name + strlen(name);
            while (end > name && isspace((unsigned char)end[-1]))
                *--end = '\0';
            char source[96];
            snprintf(source, sizeof source, PREFIX "PROPS entry %.48s", name);
            if ((rc = add_prop(props, n, name, strlen(name), value, source)))
                break;
            name = NULL;
        }
        if (!piece)
            break;
        *eq = '\0';
        name = piece;
        while (isspace((unsigned char)*name))
            name++;
        if (!*name) {
            snprintf(errbuf, errlen,
                     PREFIX "PROPS: an entry has no property name: expected "
                            "property=value[,property=value...]");
            rc = IOTLAT_EINVAL;
            break;
        }
        snprintf(value, cap, "%s", eq + 1);
    }
    memset(value, 0, cap);
    memset(copy, 0, strlen(list));
    free(value);
    free(copy);
    return rc;
}

/* The accepted option names: the fixed ones plus every PROP_* suffix present
 * in the environment (an X_FILE form is accepted by check_options for X). */
static const char **option_names(void)
{
    size_t nfixed = sizeof kafka_options / sizeof kafka_options[0] - 1, n = 0;
    for (char **e = environ; *e; e++)
        if (strncmp(*e, PROP_PREFIX, strlen(PROP_PREFIX)) == 0)
            n++;
    const char **names = calloc(nfixed + n + 1, sizeof *names);
    if (!names)
        return NULL;
    memcpy(names, kafka_options, nfixed * sizeof *names);
    size_t i = nfixed;
    for (char **e = environ; *e && i < nfixed + n; e++) {
        if (strncmp(*e, PROP_PREFIX, strlen(PROP_PREFIX)) != 0)
            continue;
        const char *eq = strchr(*e, '=');
        size_t len = eq ? (size_t)(eq - *e) : strlen(*e);
        char *s = strndup(*e + strlen(PREFIX), len - strlen(PREFIX));
        if (!s)
            break;
        names[i++] = s;
    }
    return names;
}

static void free_option_names(const char **names)
{
    size_t nfixed = sizeof kafka_options / sizeof kafka_options[0] - 1;
    if (!names)
        return;
    for (size_t i = nfixed; names[i]; i++)
        free((char *)names[i]);
    free(names);
}

/* IOTLAT_KAFKA_PROP_<NAME>[_FILE]=value -> property name.lower-cased with
 * underscores as dots.  The _FILE form goes through the host's option
 * service, which reads the file. */
static int collect_env_props(const iotlat_host *host, kprop **props, int *n, char *errbuf,
                             size_t errlen)
{
    size_t plen = strlen(PROP_PREFIX);
    for (char **e = environ; *e; e++) {
        if (strncmp(*e, PROP_PREFIX, plen) != 0)
            continue;
        const char *eq = strchr(*e, '=');
        size_t len = eq ? (size_t)(eq - *e) : strlen(*e);
        char var[256];
        if (len >= sizeof var) {
            snprintf(errbuf, errlen, "%.64s...: variable name too long", *e);
            return IOTLAT_EINVAL;
        }
        memcpy(var, *e, len);
        var[len] = '\0';
        if (len > 5 && strcmp(var + len - 5, "_FILE") == 0) {
            /* X_FILE is read as X; skip it when X itself is also set, as the
             * host's option service reads X in that case. */
            var[len - 5] = '\0';
            if (getenv(var))
                continue;
        }
        if (strlen(var) == plen) {
            snprintf(errbuf, errlen, "%s: a property name must follow %s", *e, PROP_PREFIX);
            return IOTLAT_EINVAL;
        }
        char *value = malloc(65536);
        if (!value)
            return IOTLAT_ENOMEM;
        int r = host->option(host->host_ud, var, value, 65536, errbuf, errlen);
        if (r < 0) {
            free(value);
            return IOTLAT_EINVAL;
        }
        char name[256];
        size_t i;
        for (i = 0; var[plen + i] && i < sizeof name - 1; i++) {
            char c = var[plen + i];
            name[i] = c == '_' ? '.' : (char)tolower((unsigned char)c);
        }
        name[i] = '\0';
        int rc = r == 1 ? add_prop(props, n, name, i, value, var) : 0;
        memset(value, 0, 65536);
        free(value);
        if (rc)
            return rc;
    }
    return 0;
}

static int conf_set(rd_kafka_conf_t *conf, const char *name, const char *value,
                    const char *source, char *errbuf, size_t errlen)
{
    char err[512];
    if (rd_kafka_conf_set(conf, name, value, err, sizeof err) == RD_KAFKA_CONF_OK)
        return 0;
    if (is_secret(name))
        snprintf(errbuf, errlen, "%s: librdkafka refused property %s (value hidden)",
                 source, name);
    else
        snprintf(errbuf, errlen, "%s='%s' is invalid: %s", source, value, err);
    return IOTLAT_EINVAL;
}

typedef struct kconfig {
    char acks[8];
    char linger[32];
    char username[256];
    char password[1024];
    int have_user, have_password;
    kprop *props;
    int nprops;
} kconfig;

/* A configuration for one handle: our defaults, the fixed options, then
 * the pass-through properties (which therefore win). */
static rd_kafka_conf_t *make_conf(kinst *k, const kconfig *c, int consumer, char *errbuf,
                                  size_t errlen, int *rc)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    struct {
        const char *name, *value, *source;
    } base[] = {
        {"bootstrap.servers", k->brokers, PREFIX "BROKERS"},
        {"client.id", "iotlat", "driver default"},
        /* librdkafka leaves Nagle on; with pipelined requests it would hold
         * a small request back until the previous one is acknowledged. */
        {"socket.nagle.disable", "true", "driver default"},
        /* Logs are served from our poll calls, on the host's thread. */
        {"log.queue", "true", "driver default"},
    };
    for (size_t i = 0; i < sizeof base / sizeof base[0]; i++)
        if ((*rc = conf_set(conf, base[i].name, base[i].value, base[i].source, errbuf,
                            errlen)))
            goto fail;
    if (consumer) {
        if ((*rc = conf_set(conf, "group.id", k->group, PREFIX "GROUP", errbuf, errlen)) ||
            (*rc = conf_set(conf, "auto.offset.reset",
                            k->reset_earliest ? "earliest" : "latest",
                            PREFIX "OFFSET_RESET", errbuf, errlen)) ||
            /* Like the Java consumer: a missing topic is created by the
             * broker if its auto.create.topics.enable allows it, instead of
             * the subscription waiting for it. */
            (*rc = conf_set(conf, "allow.auto.create.topics", "true", "driver default",
                            errbuf, errlen)))
            goto fail;
        /* A group of our own is never resumed: its commits would only
         * litter the broker's offsets topic. */
        if (!k->shared_group &&
            (*rc = conf_set(conf, "enable.auto.commit", "false", "driver default", errbuf,
                            errlen)))
            goto fail;
        rd_kafka_conf_set_rebalance_cb(conf, on_rebalance);
    } else {
        if ((*rc = conf_set(conf, "acks", c->acks, PREFIX "ACKS", errbuf, errlen)) ||
            (*rc = conf_set(conf, "linger.ms", c->linger, PREFIX "LINGER_MS", errbuf,
                            errlen)))
            goto fail;
        rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
    }
    if (c->have_user && (*rc = conf_set(conf, "sasl.username", c->username,
                                        PREFIX "SASL_USERNAME", errbuf, errlen)))
        goto fail;
    if (c->have_password && (*rc = conf_set(conf, "sasl.password", c->password,
                                            PREFIX "SASL_PASSWORD", errbuf, errlen)))
        goto fail;
    for (int i = 0; i < c->nprops; i++)
        if ((*rc = conf_set(conf, c->props[i].name, c->props[i].value, c->props[i].source,
                            errbuf, errlen)))
            goto fail;
    rd_kafka_conf_set_error_cb(conf, on_error);
    rd_kafka_conf_set_log_cb(conf, on_log);
    rd_kafka_conf_set_opaque(conf, k);
    return conf;
fail:
    rd_kafka_conf_destroy(conf);
    return NULL;
}

/* ---- open / close ---- */

static void kclose(void *p)
{
    kinst *k = p;
    if (k->cons) {
        /* Leave the group (revoking, and committing for a shared group) but
         * never hang on an unreachable coordinator. */
        int closed = 0;
        if (k->opened && !(k->down & DOWN_CONSUMER) && k->nsubs > 0) {
            rd_kafka_queue_t *q = rd_kafka_queue_new(k->cons);
            rd_kafka_error_t *e = rd_kafka_consumer_close_queue(k->cons, q);
            if (e) {
                rd_kafka_error_destroy(e);
            } else {
                /* The queue hands out events, not callbacks: the revoke
                 * arrives as a REBALANCE event and goes through the same
                 * rebalance code (commit, unassign). */
                int64_t deadline = mono_ms() + CLOSE_TIMEOUT_MS;
                while (!(closed = rd_kafka_consumer_closed(k->cons)) &&
                       mono_ms() < deadline) {
                    rd_kafka_event_t *ev = rd_kafka_queue_poll(q, 100);
                    if (ev && rd_kafka_event_type(ev) == RD_KAFKA_EVENT_REBALANCE)
                        on_rebalance(k->cons, rd_kafka_event_error(ev),
                                     rd_kafka_event_topic_partition_list(ev), k);
                    if (ev)
                        rd_kafka_event_destroy(ev);
                }
            }
            rd_kafka_queue_destroy(q);
        }
        if (k->cq) {
            rd_kafka_queue_io_event_enable(k->cq, -1, NULL, 0);
            rd_kafka_queue_destroy(k->cq);
        }
        rd_kafka_destroy_flags(k->cons, closed ? 0 : RD_KAFKA_DESTROY_F_NO_CONSUMER_CLOSE);
    }
    if (k->prod) {
        /* What is still queued now will not be delivered: purge it so the
         * delivery reports count it, and say so once. */
        rd_kafka_purge(k->prod, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
        rd_kafka_flush(k->prod, 1000);
        for (int i = 0; i < k->nptopics; i++)
            rd_kafka_topic_destroy(k->ptopics[i].rkt);
        if (k->failed)
            k->host->log(k->host->host_ud, IOTLAT_LOG_WARN,
                         "%llu message(s) delivered, %llu failed after publish "
                         "(subscribers count them lost); first failure: %s",
                         k->delivered, k->failed, k->first_fail);
        else if (k->opened)
            k->host->log(k->host->host_ud, IOTLAT_LOG_INFO, "%llu message(s) delivered",
                         k->delivered);
        rd_kafka_destroy(k->prod);
    }
    for (int i = 0; i < k->nptopics; i++)
        free(k->ptopics[i].name);
    for (int i = 0; i < k->nsubs; i++)
        free(k->subs[i].name);
    if (k->starts)
        rd_kafka_topic_partition_list_destroy(k->starts);
    if (k->known)
        rd_kafka_topic_partition_list_destroy(k->known);
    if (k->held_ok)
        drv_inbox_free(&k->held);
    if (k->efd >= 0)
        close(k->efd);
    free(k);
}

/* Ask the cluster for its broker list: the one way to learn that the
 * bootstrap servers answer.  Returns 0 or IOTLAT_ECONNECT / IOTLAT_EAUTH. */
static int check_connect(kinst *k, rd_kafka_t *rk, char *errbuf, size_t errlen)
{
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_resp_err_t err =
        rd_kafka_metadata(rk, 0, NULL, &md, (int)k->connect_timeout_ms);
    if (!err) {
        k->host->log(k->host->host_ud, IOTLAT_LOG_DEBUG, "cluster has %d broker(s)",
                     md->broker_cnt);
        rd_kafka_metadata_destroy(md);
        return 0;
    }
    /* Serve the error callbacks queued meanwhile: they hold the reason. */
    rd_kafka_poll(rk, 0);
    int auth = k->last_err_code == RD_KAFKA_RESP_ERR__AUTHENTICATION ||
               k->last_err_code == RD_KAFKA_RESP_ERR_SASL_AUTHENTICATION_FAILED ||
               k->last_err_code == RD_KAFKA_RESP_ERR__SSL;
    const char *why = auth && k->last_err[0] ? k->last_err
                      : k->last_conn_err[0]  ? k->last_conn_err
                      : k->last_err[0]       ? k->last_err
                                             : rd_kafka_err2str(err);
    /* "127.0.0.1:9092/bootstrap: Connect to ipv4#127.0.0.1:9092 failed:
     * Connection refused (after 0ms in state CONNECT)" -> the middle part. */
    const char *sp = strchr(why, ' '), *colon = strstr(why, ": ");
    if (colon && sp && colon < sp)
        why = colon + 2;
    const char *after = strstr(why, " (after ");
    int wlen = after ? (int)(after - why) : (int)strlen(why);
    snprintf(errbuf, errlen,
             "cannot connect to %s: %.*s (no answer within %ld ms; IOTLAT_KAFKA_BROKERS)",
             k->brokers, wlen, why, k->connect_timeout_ms);
    return auth ? IOTLAT_EAUTH : IOTLAT_ECONNECT;
}

static int read_options(kinst *k, kconfig *c, drv_opts *o)
{
    static const char *const acks[] = {"0", "1", "all", "-1", NULL};
    static const char *const resets[] = {"latest", "earliest", NULL};
    int rc, ack, reset, set;
    char props[8192];

    if ((rc = drv_opt_str(o, "BROKERS", "127.0.0.1:9092", k->brokers, sizeof k->brokers,
                          NULL)) ||
        (rc = drv_opt_long(o, "PARTITIONS", 0, 0, 1000000, &k->partitions)) ||
        (rc = drv_opt_long(o, "REPLICATION", -1, -1, 1000, &k->replication)) ||
        (rc = drv_opt_enum(o, "ACKS", "1", acks, &ack)) ||
        (rc = drv_opt_enum(o, "OFFSET_RESET", "latest", resets, &reset)) ||
        (rc = drv_opt_long(o, "CONNECT_TIMEOUT_MS", 5000, 100, 600000,
                           &k->connect_timeout_ms)) ||
        (rc = drv_opt_long(o, "JOIN_TIMEOUT_MS", 10000, 0, 600000, &k->join_timeout_ms)) ||
        (rc = drv_opt_str(o, "LINGER_MS", "1", c->linger, sizeof c->linger, NULL)) ||
        (rc = drv_opt_str(o, "GROUP", NULL, k->group, sizeof k->group, &set)))
        return rc;
    if (k->replication == 0) {
        snprintf(o->errbuf, o->errlen,
                 PREFIX "REPLICATION='0' is invalid: expected -1 (the broker's default) "
                        "or 1 to 1000");
        return IOTLAT_EINVAL;
    }
    if (!k->brokers[0]) {
        snprintf(o->errbuf, o->errlen,
                 PREFIX "BROKERS='' is invalid: expected host:port[,host:port...]");
        return IOTLAT_EINVAL;
    }
    char *end;
    errno = 0;
    double linger = strtod(c->linger, &end);
    if (errno || end == c->linger || *end || linger < 0 || linger > 900000) {
        snprintf(o->errbuf, o->errlen,
                 PREFIX "LINGER_MS='%s' is invalid: expected milliseconds from 0 to 900000 "
                        "(fractions allowed, e.g. 0.5)",
                 c->linger);
        return IOTLAT_EINVAL;
    }
    snprintf(c->acks, sizeof c->acks, "%s", ack == 0 ? "0" : ack == 1 ? "1" : "all");
    k->reset_earliest = reset == 1;
    k->shared_group = set && k->group[0];
    if (!k->shared_group) {
        /* Every subscriber process gets every message unless told to share. */
        char host[64] = "host";
        unsigned rnd = 0;
        FILE *f = fopen("/dev/urandom", "rb");
        if (f) {
            if (fread(&rnd, sizeof rnd, 1, f) != 1)
                rnd = 0;
            fclose(f);
        }
        if (!rnd)
            rnd = (unsigned)mono_ms() ^ (unsigned)getpid();
        gethostname(host, sizeof host);
        host[sizeof host - 1] = '\0';
        snprintf(k->group, sizeof k->group, "iotlat-%s-%d-%08x", host, (int)getpid(), rnd);
    }
    if ((rc = drv_opt_str(o, "SASL_USERNAME", NULL, c->username, sizeof c->username,
                          &c->have_user)) ||
        (rc = drv_opt_str(o, "SASL_PASSWORD", NULL, c->password, sizeof c->password,
                          &c->have_password)) ||
        (rc = drv_opt_str(o, "PROPS", NULL, props, sizeof props, &set)))
        return rc;
    if (set && props[0] &&
        (rc = parse_props_list(props, &c->props, &c->nprops, o->errbuf, o->errlen)))
        return rc;
    memset(props, 0, sizeof props);
    return collect_env_props(k->host, &c->props, &c->nprops, o->errbuf, o->errlen);
}

static int kopen(const iotlat_host *host, int roles, void **out, char *errbuf,
                 size_t errlen)
{
    drv_opts o = {host, PREFIX, errbuf, errlen};
    kconfig c;
    int rc;

    const char **names = option_names();
    if (!names)
        return IOTLAT_ENOMEM;
    rc = host->check_options(host->host_ud, PREFIX, names, errbuf, errlen);
    free_option_names(names);
    if (rc) {
        size_t n = strlen(errbuf);
        if (n < errlen)
            snprintf(errbuf + n, errlen - n, " " PROP_PREFIX "<librdkafka property>");
        return rc;
    }

    kinst *k = calloc(1, sizeof *k);
    if (!k)
        return IOTLAT_ENOMEM;
    k->host = host;
    k->efd = -1;
    memset(&c, 0, sizeof c);
    if ((rc = read_options(k, &c, &o)))
        goto fail;
    if (c.nprops > 0) {
        char list[512];
        size_t n = 0;
        list[0] = '\0';
        for (int i = 0; i < c.nprops && n < sizeof list; i++)
            n += (size_t)snprintf(list + n, sizeof list - n, "%s%s", i ? ", " : "",
                                  c.props[i].name);
        host->log(host->host_ud, IOTLAT_LOG_DEBUG, "librdkafka properties passed through: %s",
                  list);
    }

    if (roles & IOTLAT_ROLE_PUBLISH) {
        rd_kafka_conf_t *conf = make_conf(k, &c, 0, errbuf, errlen, &rc);
        if (!conf)
            goto fail;
        char err[512];
        k->prod = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err);
        if (!k->prod) {
            rd_kafka_conf_destroy(conf);
            snprintf(errbuf, errlen, "cannot create the producer: %s", err);
            rc = IOTLAT_EINVAL; /* librdkafka refuses inconsistent settings here */
            goto fail;
        }
        rd_kafka_set_log_queue(k->prod, NULL);
    }
    if (roles & IOTLAT_ROLE_SUBSCRIBE) {
        rd_kafka_conf_t *conf = make_conf(k, &c, 1, errbuf, errlen, &rc);
        if (!conf)
            goto fail;
        char err[512];
        k->cons = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof err);
        if (!k->cons) {
            rd_kafka_conf_destroy(conf);
            snprintf(errbuf, errlen, "cannot create the consumer: %s", err);
            rc = IOTLAT_EINVAL;
            goto fail;
        }
        rd_kafka_set_log_queue(k->cons, NULL);
    }
    /* One check is enough: both handles use the same bootstrap list. */
    if ((rc = check_connect(k, k->cons ? k->cons : k->prod, errbuf, errlen)))
        goto fail;
    if (k->cons) {
        /* Errors, logs and rebalances now come out of consumer_poll(), and
         * the consumer queue wakes the eventfd that fd() returns. */
        rd_kafka_poll_set_consumer(k->cons);
        if ((rc = drv_inbox_init(&k->held, HELD_LIMIT))) {
            snprintf(errbuf, errlen, "cannot create an eventfd");
            goto fail;
        }
        k->held_ok = 1;
        k->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
        k->cq = rd_kafka_queue_get_consumer(k->cons);
        if (k->efd >= 0 && k->cq) {
            static const uint64_t one = 1;
            rd_kafka_queue_io_event_enable(k->cq, k->efd, &one, sizeof one);
        }
    }
    k->opened = 1;
    host->log(host->host_ud, IOTLAT_LOG_INFO, "connected to %s%s%s", k->brokers,
              k->cons ? ", consumer group " : "", k->cons ? k->group : "");
    memset(c.password, 0, sizeof c.password);
    free_props(c.props, c.nprops);
    *out = k;
    return 0;
fail:
    memset(c.password, 0, sizeof c.password);
    free_props(c.props, c.nprops);
    kclose(k);
    return rc;
}

/* ---- topics ---- */

/* Make sure `topic` exists before anyone relies on it: look it up in the
 * full topic list (a request for the topic alone could make the broker
 * auto-create it with its default partition count) and create it with
 * IOTLAT_KAFKA_PARTITIONS if asked to.  Sets *exists. */
static void ensure_topic(kinst *k, rd_kafka_t *rk, const char *topic, int *exists)
{
    const struct rd_kafka_metadata *md = NULL;
    *exists = 0;
    rd_kafka_resp_err_t err = rd_kafka_metadata(rk, 1, NULL, &md, (int)k->connect_timeout_ms);
    if (err) {
        k->host->log(k->host->host_ud, IOTLAT_LOG_WARN,
                     "cannot list topics to check '%s': %s", topic, rd_kafka_err2str(err));
        return;
    }
    for (int i = 0; i < md->topic_cnt; i++) {
        if (strcmp(md->topics[i].topic, topic) == 0 && !md->topics[i].err &&
            md->topics[i].partition_cnt > 0) {
            *exists = 1;
            if (k->partitions > 0 && md->topics[i].partition_cnt != k->partitions)
                k->host->log(k->host->host_ud, IOTLAT_LOG_INFO,
                             "topic %s exists with %d partitions (IOTLAT_KAFKA_PARTITIONS="
                             "%ld applies only when creating it)",
                             topic, md->topics[i].partition_cnt, k->partitions);
        }
    }
    rd_kafka_metadata_destroy(md);
    if (*exists || k->partitions <= 0)
        return;

    char err_s[512];
    rd_kafka_NewTopic_t *nt = rd_kafka_NewTopic_new(topic, (int)k->partitions,
                                                    (int)k->replication, err_s, sizeof err_s);
    if (!nt) {
        k->host->log(k->host->host_ud, IOTLAT_LOG_WARN, "cannot create topic %s: %s", topic,
                     err_s);
        return;
    }
    rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
    rd_kafka_AdminOptions_t *opt = rd_kafka_AdminOptions_new(rk, RD_KAFKA_ADMIN_OP_CREATETOPICS);
    rd_kafka_AdminOptions_set_request_timeout(opt, (int)k->connect_timeout_ms, NULL, 0);
    rd_kafka_CreateTopics(rk, &nt, 1, opt, q);
    /* The admin request enforces its own timeout; the extra second only
     * covers the result's trip back through the queue. */
    rd_kafka_event_t *ev = rd_kafka_queue_poll(q, (int)k->connect_timeout_ms + 1000);
    const char *why = "no answer (the broker may not support CreateTopics)";
    int code = RD_KAFKA_RESP_ERR__TIMED_OUT;
    if (ev) {
        code = rd_kafka_event_error(ev);
        why = rd_kafka_event_error_string(ev);
        const rd_kafka_CreateTopics_result_t *res = rd_kafka_event_CreateTopics_result(ev);
        size_t n = 0;
        const rd_kafka_topic_result_t **tr =
            res ? rd_kafka_CreateTopics_result_topics(res, &n) : NULL;
        if (!code && n > 0) {
            code = rd_kafka_topic_result_error(tr[0]);
            why = rd_kafka_topic_result_error_string(tr[0]);
        }
    }
    if (code == RD_KAFKA_RESP_ERR_NO_ERROR || code == RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS) {
        *exists = 1;
        if (!code)
            k->host->log(k->host->host_ud, IOTLAT_LOG_INFO,
                         "created topic %s with %ld partitions", topic, k->partitions);
    } else {
        k->host->log(k->host->host_ud, IOTLAT_LOG_WARN,
                     "cannot create topic %s with %ld partitions: %s; relying on the "
                     "broker's auto-creation",
                     topic, k->partitions, why ? why : rd_kafka_err2str(code));
    }
    if (ev)
        rd_kafka_event_destroy(ev);
    rd_kafka_AdminOptions_destroy(opt);
    rd_kafka_queue_destroy(q);
    rd_kafka_NewTopic_destroy(nt);
}

/* ---- receive ---- */

static int deliver(kinst *k, rd_kafka_message_t *m, int64_t t_recv)
{
    if (m->err) {
        if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF)
            return 0;
        const char *t = m->rkt ? rd_kafka_topic_name(m->rkt) : NULL;
        if (m->err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART ||
            m->err == RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC) {
            for (int i = 0; t && i < k->nsubs; i++)
                if (strcmp(k->subs[i].name, t) == 0 && !k->subs[i].missing_warned++)
                    k->host->log(k->host->host_ud, IOTLAT_LOG_WARN,
                                 "topic %s does not exist (yet): waiting for it", t);
            return 0;
        }
        on_error(k->cons, m->err, rd_kafka_message_errstr(m), k);
        return 0;
    }
    if (k->down & DOWN_CONSUMER) {
        if (k->stale > 0)
            k->stale--;
        else
            set_up(k, DOWN_CONSUMER, "message received");
    }
    /* The topic handle is compared first: it is the same object for every
     * message of a topic, so the name is compared only on a change. */
    for (int i = 0; i < k->nsubs; i++) {
        ksub *s = &k->subs[i];
        if (s->rkt == m->rkt || strcmp(s->name, rd_kafka_topic_name(m->rkt)) == 0) {
            s->rkt = m->rkt;
            s->fn(s->ud, s->name, m->payload, m->len, t_recv);
            return 1;
        }
    }
    return 0;
}

static void deliver_held(void *ud, int tag, const char *topic, const void *data, size_t len,
                         int64_t t_recv)
{
    kinst *k = ud;
    (void)topic;
    if (tag >= 0 && tag < k->nsubs)
        k->subs[tag].fn(k->subs[tag].ud, k->subs[tag].name, data, len, t_recv);
}

/* subscribe() waits for the group: anything that arrives meanwhile is kept
 * (already stamped) for the next poll(). */
static void hold(kinst *k, rd_kafka_message_t *m, int64_t t_recv)
{
    if (m->err) {
        deliver(k, m, t_recv); /* logs it */
        return;
    }
    const char *t = rd_kafka_topic_name(m->rkt);
    for (int i = 0; i < k->nsubs; i++)
        if (strcmp(k->subs[i].name, t) == 0) {
            if (drv_inbox_push(&k->held, i, t, m->payload, m->len, t_recv) != 0)
                k->host->log(k->host->host_ud, IOTLAT_LOG_WARN,
                             "message dropped while joining the group (out of memory)");
            return;
        }
}

static int ksubscribe(void *p, const char *topic, iotlat_msg_fn fn, void *ud, char *errbuf,
                      size_t errlen)
{
    kinst *k = p;
    if (!k->cons) {
        snprintf(errbuf, errlen, "subscribe('%s'): driver not opened for subscribing", topic);
        return IOTLAT_EINVAL;
    }
    if (k->nsubs == MAX_TOPICS) {
        snprintf(errbuf, errlen, "subscribe('%s'): more than %d topics", topic, MAX_TOPICS);
        return IOTLAT_EINVAL;
    }
    int exists;
    ensure_topic(k, k->cons, topic, &exists);

    ksub *s = &k->subs[k->nsubs];
    memset(s, 0, sizeof *s);
    s->name = strdup(topic);
    if (!s->name)
        return IOTLAT_ENOMEM;
    s->fn = fn;
    s->ud = ud;
    k->nsubs++;
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(k->nsubs);
    for (int i = 0; i < k->nsubs; i++)
        rd_kafka_topic_partition_list_add(l, k->subs[i].name, RD_KAFKA_PARTITION_UA);
    rd_kafka_resp_err_t err = rd_kafka_subscribe(k->cons, l);
    rd_kafka_topic_partition_list_destroy(l);
    if (err) {
        free(s->name);
        k->nsubs--;
        snprintf(errbuf, errlen, "subscribe('%s'): %s", topic, rd_kafka_err2str(err));
        return IOTLAT_EIO;
    }

    /* Wait until the group assigned partitions and their start offsets are
     * fixed: from then on nothing published is missed. */
    unsigned gen = k->assign_gen;
    int64_t deadline = mono_ms() + k->join_timeout_ms;
    for (;;) {
        if (k->assign_gen != gen) {
            int mine = 0;
            for (int i = 0; k->starts && i < k->starts->cnt; i++)
                mine += strcmp(k->starts->elems[i].topic, topic) == 0;
            /* An empty share is final only for a topic that exists (more
             * members than partitions); for a missing one, wait until the
             * broker has created it and the group rebalanced. */
            if (mine > 0 || exists)
                break;
            gen = k->assign_gen;
        }
        int64_t left = deadline - mono_ms();
        if (left <= 0) {
            k->host->log(k->host->host_ud, IOTLAT_LOG_WARN,
                         "group %s: no partitions of %s assigned within %ld ms "
                         "(IOTLAT_KAFKA_JOIN_TIMEOUT_MS); continuing, messages published "
                         "before the assignment may be missed",
                         k->group, topic, k->join_timeout_ms);
            break;
        }
        rd_kafka_message_t *m = rd_kafka_consumer_poll(k->cons, left < 100 ? (int)left : 100);
        if (m) {
            hold(k, m, k->host->now_us());
            rd_kafka_message_destroy(m);
        }
    }
    if (k->held.count && k->efd >= 0) {
        uint64_t one = 1;
        ssize_t w = write(k->efd, &one, sizeof one);
        (void)w;
    }
    return 0;
}

static int kpoll(void *p, int timeout_ms, char *errbuf, size_t errlen)
{
    kinst *k = p;
    int n = 0, polled = 0;
    (void)errbuf, (void)errlen;
    if (k->efd >= 0) {
        uint64_t v;
        ssize_t r = read(k->efd, &v, sizeof v);
        (void)r;
    }
    if (k->prod)
        rd_kafka_poll(k->prod, 0); /* delivery reports, errors, logs */
    if (!k->cons) {
        if (k->prod && timeout_ms > 0)
            rd_kafka_poll(k->prod, timeout_ms);
        return 0;
    }
    if (k->held.count)
        n += drv_inbox_drain(&k->held, 0, MAX_BATCH, deliver_held, k);
    while (polled < MAX_BATCH) {
        rd_kafka_message_t *m =
            rd_kafka_consumer_poll(k->cons, polled == 0 && n == 0 ? timeout_ms : 0);
        if (!m)
            break;
        int64_t t_recv = k->host->now_us();
        polled++;
        n += deliver(k, m, t_recv);
        rd_kafka_message_destroy(m);
    }
    if (polled >= MAX_BATCH && k->efd >= 0) {
        /* We stopped early: keep the fd readable for what is still queued. */
        uint64_t one = 1;
        ssize_t w = write(k->efd, &one, sizeof one);
        (void)w;
    }
    return n;
}

static int kfd(void *p)
{
    kinst *k = p;
    return k->efd;
}

/* ---- publish ---- */

static rd_kafka_topic_t *producer_topic(kinst *k, const char *topic)
{
    for (int i = 0; i < k->nptopics; i++)
        if (k->ptopics[i].name == topic || strcmp(k->ptopics[i].name, topic) == 0)
            return k->ptopics[i].rkt;
    if (k->nptopics == MAX_TOPICS)
        return NULL;
    ptopic *t = &k->ptopics[k->nptopics];
    t->name = strdup(topic);
    if (!t->name)
        return NULL;
    t->rkt = rd_kafka_topic_new(k->prod, topic, NULL);
    if (!t->rkt) {
        free(t->name);
        return NULL;
    }
    k->nptopics++;
    return t->rkt;
}

static int kpublish(void *p, const char *topic, const char *key, const void *data,
                    size_t len, char *errbuf, size_t errlen)
{
    kinst *k = p;
    if (!k->prod) {
        snprintf(errbuf, errlen, "publish('%s'): driver not opened for publishing", topic);
        return IOTLAT_EINVAL;
    }
    rd_kafka_topic_t *rkt = producer_topic(k, topic);
    if (!rkt) {
        snprintf(errbuf, errlen, "publish('%s'): more than %d topics, or out of memory",
                 topic, MAX_TOPICS);
        return IOTLAT_EINVAL;
    }
    /* Serving delivery reports here frees queue space and keeps the
     * counters current even when the host never calls poll(). */
    rd_kafka_poll(k->prod, 0);
    rd_kafka_resp_err_t err = rd_kafka_producev(
        k->prod, RD_KAFKA_V_RKT(rkt), RD_KAFKA_V_KEY(key, key ? strlen(key) : 0),
        RD_KAFKA_V_VALUE((void *)data, len), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
        RD_KAFKA_V_END);
    if (err == RD_KAFKA_RESP_ERR_NO_ERROR)
        return 0;
    if (err == RD_KAFKA_RESP_ERR__QUEUE_FULL) {
        snprintf(errbuf, errlen,
                 "producer queue full (%d messages waiting; see queue.buffering.max.messages)",
                 rd_kafka_outq_len(k->prod));
        return IOTLAT_EAGAIN;
    }
    snprintf(errbuf, errlen, "produce to %s: %s", topic, rd_kafka_err2str(err));
    return err == RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE ? IOTLAT_EINVAL : IOTLAT_EIO;
}

static int kwait_ready(void *p, const char *topic, int timeout_ms, char *errbuf,
                       size_t errlen)
{
    kinst *k = p;
    int exists;
    if (!k->prod)
        return 0;
    ensure_topic(k, k->prod, topic, &exists);
    /* Fetch the topic's leaders now (a producer's request also lets the
     * broker auto-create it), so the first messages do not wait for it. */
    rd_kafka_topic_t *rkt = producer_topic(k, topic);
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_resp_err_t err =
        rkt ? rd_kafka_metadata(k->prod, 0, rkt, &md, timeout_ms) : RD_KAFKA_RESP_ERR__FAIL;
    int parts = !err && md->topic_cnt == 1 && !md->topics[0].err
                    ? md->topics[0].partition_cnt
                    : 0;
    if (md)
        rd_kafka_metadata_destroy(md);
    if (parts > 0) {
        k->host->log(k->host->host_ud, IOTLAT_LOG_INFO, "topic %s has %d partition(s)", topic,
                     parts);
        return 0;
    }
    snprintf(errbuf, errlen, "topic %s is not available within %d ms: %s", topic, timeout_ms,
             err ? rd_kafka_err2str(err) : "it has no partitions (yet)");
    return IOTLAT_EAGAIN;
}

static int kflush(void *p, int timeout_ms, char *errbuf, size_t errlen)
{
    kinst *k = p;
    if (!k->prod)
        return 0;
    if (rd_kafka_flush(k->prod, timeout_ms) == RD_KAFKA_RESP_ERR_NO_ERROR)
        return 0;
    snprintf(errbuf, errlen, "%d message(s) still queued for Kafka after %d ms",
             rd_kafka_outq_len(k->prod), timeout_ms);
    return IOTLAT_EAGAIN;
}

static char version[64];

static const iotlat_driver table = {
    .abi_major = IOTLAT_DRIVER_ABI_MAJOR,
    .abi_minor = IOTLAT_DRIVER_ABI_MINOR,
    .size = sizeof(iotlat_driver),
    .name = "kafka",
    .version = version,
    .open = kopen,
    .subscribe = ksubscribe,
    .publish = kpublish,
    .poll = kpoll,
    .fd = kfd,
    .wait_ready = kwait_ready,
    .flush = kflush,
    .close = kclose,
};

/* librdkafka keeps process-wide state that outlives every handle (its
 * one-time global init, OpenSSL and SASL contexts).  When the host
 * dlclose()s this driver, librdkafka would be unmapped with it: that state
 * becomes unreachable (LeakSanitizer reports it as leaked) and exit-time
 * handlers could point into unmapped code.  Pinning librdkafka in memory
 * once keeps it loaded for the life of the process. */
static void pin_librdkafka(void)
{
    static int pinned;
    Dl_info info;
    if (pinned)
        return;
    if (dladdr((void *)rd_kafka_version, &info) && info.dli_fname &&
        dlopen(info.dli_fname, RTLD_NOW | RTLD_NOLOAD | RTLD_NODELETE))
        pinned = 1; /* the handle is kept on purpose: never closed */
}

const iotlat_driver *IOTLAT_DRIVER_ENTRY(uint16_t major, uint16_t minor,
                                          const iotlat_host *host, char *errbuf,
                                          size_t errlen)
{
    (void)minor, (void)host;
    pin_librdkafka();
    if (major != IOTLAT_DRIVER_ABI_MAJOR) {
        snprintf(errbuf, errlen, "kafka driver supports ABI major %d only, host has %u",
                 IOTLAT_DRIVER_ABI_MAJOR, major);
        return NULL;
    }
    snprintf(version, sizeof version, "kafka driver 1.0, librdkafka %s",
             rd_kafka_version_str());
    return &table;
}
