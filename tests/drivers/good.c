/*
 * good.c - a minimal valid driver: an in-memory loopback.  It breaks nothing;
 * it is the control case that proves the loader accepts a correct table and
 * that a message round-trips through open/subscribe/publish/poll.  publish()
 * copies the message into a queue, poll() hands every queued message to the
 * subscribers of exactly the same topic (messages nobody subscribed to are
 * dropped).  open() exercises the host option services: it rejects unknown
 * IOTLAT_GOOD_* variables through host->check_options and reads
 * IOTLAT_GOOD_GREETING (or IOTLAT_GOOD_GREETING_FILE) through host->option;
 * when a greeting is set it is queued as a message on topic "greeting", so a
 * test can see the value the driver read.
 */
/* strdup is POSIX: say so, since an out-of-tree build may use plain -std=c11. */
#ifndef _GNU_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif
#include "iotlat_driver.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_SUBS 8
#define MAX_QUEUE 64

typedef struct msg {
    char *topic;
    void *data;
    size_t len;
} msg;

typedef struct sub {
    char *topic;
    iotlat_msg_fn fn;
    void *ud;
} sub;

typedef struct inst {
    const iotlat_host *host;
    sub subs[MAX_SUBS];
    int nsubs;
    msg queue[MAX_QUEUE];
    int nqueued;
} inst;

static const char *const good_options[] = {"GREETING", NULL};

static int enqueue(inst *g, const char *topic, const void *data, size_t len,
                   char *errbuf, size_t errlen)
{
    msg *m;
    if (g->nqueued == MAX_QUEUE) {
        snprintf(errbuf, errlen, "good driver queue is full (%d messages)", MAX_QUEUE);
        return IOTLAT_EAGAIN;
    }
    m = &g->queue[g->nqueued];
    m->topic = strdup(topic);
    m->data = malloc(len ? len : 1);
    if (!m->topic || !m->data) {
        free(m->topic);
        free(m->data);
        snprintf(errbuf, errlen, "good driver: out of memory");
        return IOTLAT_ENOMEM;
    }
    if (len)
        memcpy(m->data, data, len);
    m->len = len;
    g->nqueued++;
    return 0;
}

static void good_close(void *p)
{
    inst *g = p;
    for (int i = 0; i < g->nsubs; i++)
        free(g->subs[i].topic);
    for (int i = 0; i < g->nqueued; i++) {
        free(g->queue[i].topic);
        free(g->queue[i].data);
    }
    free(g);
}

static int good_open(const iotlat_host *host, int roles, void **out, char *errbuf,
                     size_t errlen)
{
    char greeting[64];
    int rc;
    (void)roles;
    rc = host->check_options(host->host_ud, "IOTLAT_GOOD_", good_options, errbuf,
                             errlen);
    if (rc)
        return rc;
    rc = host->option(host->host_ud, "IOTLAT_GOOD_GREETING", greeting,
                      sizeof greeting, errbuf, errlen);
    if (rc < 0)
        return rc;
    inst *g = calloc(1, sizeof *g);
    if (!g) {
        snprintf(errbuf, errlen, "good driver: out of memory");
        return IOTLAT_ENOMEM;
    }
    g->host = host;
    if (rc == 1) {
        int e = enqueue(g, "greeting", greeting, strlen(greeting), errbuf, errlen);
        if (e) {
            good_close(g);
            return e;
        }
    }
    *out = g;
    return 0;
}

static int good_subscribe(void *p, const char *topic, iotlat_msg_fn fn, void *ud,
                          char *errbuf, size_t errlen)
{
    inst *g = p;
    if (g->nsubs == MAX_SUBS) {
        snprintf(errbuf, errlen, "good driver: more than %d subscriptions", MAX_SUBS);
        return IOTLAT_EINVAL;
    }
    g->subs[g->nsubs].topic = strdup(topic);
    if (!g->subs[g->nsubs].topic) {
        snprintf(errbuf, errlen, "good driver: out of memory");
        return IOTLAT_ENOMEM;
    }
    g->subs[g->nsubs].fn = fn;
    g->subs[g->nsubs].ud = ud;
    g->nsubs++;
    return 0;
}

static int good_publish(void *p, const char *topic, const char *key, const void *data,
                        size_t len, char *errbuf, size_t errlen)
{
    (void)key;
    return enqueue(p, topic, data, len, errbuf, errlen);
}

static int good_poll(void *p, int timeout_ms, char *errbuf, size_t errlen)
{
    inst *g = p;
    int delivered = 0;
    (void)timeout_ms, (void)errbuf, (void)errlen;
    for (int i = 0; i < g->nqueued; i++) {
        msg *m = &g->queue[i];
        for (int s = 0; s < g->nsubs; s++) {
            if (strcmp(g->subs[s].topic, m->topic) == 0) {
                g->subs[s].fn(g->subs[s].ud, m->topic, m->data, m->len,
                              g->host->now_us());
                delivered++;
            }
        }
        free(m->topic);
        free(m->data);
    }
    g->nqueued = 0;
    return delivered;
}

static int good_flush(void *p, int timeout_ms, char *errbuf, size_t errlen)
{
    (void)p, (void)timeout_ms, (void)errbuf, (void)errlen;
    return 0;
}

static const iotlat_driver table = {
    .abi_major = IOTLAT_DRIVER_ABI_MAJOR,
    .abi_minor = IOTLAT_DRIVER_ABI_MINOR,
    .size = sizeof(iotlat_driver),
    .name = "good",
    .version = "good test driver 1.0",
    .open = good_open,
    .subscribe = good_subscribe,
    .publish = good_publish,
    .poll = good_poll,
    .fd = NULL,
    .wait_ready = NULL,
    .flush = good_flush,
    .close = good_close,
};

const iotlat_driver *IOTLAT_DRIVER_ENTRY(uint16_t major, uint16_t minor,
                                          const iotlat_host *host, char *errbuf,
                                          size_t errlen)
{
    (void)minor, (void)host;
    if (major != IOTLAT_DRIVER_ABI_MAJOR) {
        snprintf(errbuf, errlen, "good driver supports ABI major %d only, host has %u",
                 IOTLAT_DRIVER_ABI_MAJOR, (unsigned)major);
        return NULL;
    }
    return &table;
}
