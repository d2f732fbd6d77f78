/*
 * drvutil.h - small pieces every broker driver needs, compiled into each
 * plugin (plugins/common/ is not a driver itself).
 *
 * Options: every driver reads IOTLAT_<NAME>_<KEY> through the host's option
 * service (which also honours <VAR>_FILE for secrets) and reports a bad value
 * with the same sentence shape: variable, value, what is accepted.
 *
 * Inbox: client libraries such as nats.c, Paho and librdkafka deliver on
 * their own threads, but the ABI promises message callbacks only from inside
 * poll().  The inbox is a mutex-protected queue that the library threads push
 * copies into (stamping the receive time at once, so the queueing does not
 * count as broker latency) and that poll() drains; an eventfd signals it, so
 * the driver's fd() works with an event loop.  Pushing allocates one block
 * per message; the queue is bounded and counts what it had to drop.
 */
#ifndef IL_DRVUTIL_H
#define IL_DRVUTIL_H

#include "iotlat_driver.h"

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

/* ---- options ---- */

typedef struct drv_opts {
    const iotlat_host *host;
    const char *prefix; /* "IOTLAT_MQTT_" */
    char *errbuf;
    size_t errlen;
} drv_opts;

/* Each returns 0 (value or default stored) or IOTLAT_EINVAL with errbuf
 * filled naming the variable, the value and what is accepted.  *set (may be
 * NULL) tells whether the variable was given. */
int drv_opt_str(drv_opts *o, const char *key, const char *def, char *out, size_t len,
                int *set);
int drv_opt_long(drv_opts *o, const char *key, long def, long min, long max, long *out);
int drv_opt_bool(drv_opts *o, const char *key, int def, int *out);
/* One of the NULL-terminated choices; stores its index. */
int drv_opt_enum(drv_opts *o, const char *key, const char *def,
                 const char *const *choices, int *out);

/* ---- inbox ---- */

typedef struct drv_msg drv_msg;

typedef struct drv_inbox {
    pthread_mutex_t mu;
    drv_msg *head, *tail;
    size_t count, limit;
    uint64_t dropped; /* pushes refused because the inbox was full */
    int efd;          /* eventfd, readable while messages are queued */
} drv_inbox;

/* Returns 0 or IOTLAT_ENOMEM/IOTLAT_EIO.  limit = most queued messages. */
int drv_inbox_init(drv_inbox *q, size_t limit);
void drv_inbox_free(drv_inbox *q);
/* Copy a message in (any thread).  Returns 0, or -1 if full or out of memory
 * (counted in dropped).  `tag` is opaque to the inbox (e.g. subscription
 * index). */
int drv_inbox_push(drv_inbox *q, int tag, const char *topic, const void *data,
                   size_t len, int64_t t_recv);
/* Deliver up to max queued messages, waiting up to timeout_ms for the first.
 * Calls fn(ud, tag, topic, data, len, t_recv) for each, outside the lock.
 * Returns the number delivered. */
int drv_inbox_drain(drv_inbox *q, int timeout_ms, int max,
                    void (*fn)(void *ud, int tag, const char *topic, const void *data,
                               size_t len, int64_t t_recv),
                    void *ud);

#endif
