/*
 * iotlat_driver.h - the broker driver ABI.  This is the only header a driver
 * needs, in or out of the iotlat tree.
 *
 * A driver is a shared object loaded with dlopen(RTLD_NOW | RTLD_LOCAL).  It
 * exports exactly one symbol, IOTLAT_DRIVER_ENTRY_NAME, a function that gets
 * the ABI version the host speaks and a table of host services, and returns
 * a pointer to its own constant function table (or NULL with a reason in
 * errbuf).  Drivers never link against host symbols: everything the host
 * offers comes through iotlat_host.
 *
 * Versioning follows the Mosquitto plugin habit: the host passes the major
 * and minor it speaks; a driver built for another major refuses (returns
 * NULL).  Both tables start with their ABI major/minor and their own size,
 * and end with reserved slots, so a minor release can append functions
 * without breaking older drivers: the host checks `size` before touching a
 * field added after 1.0.
 *
 * Errors are negative IOTLAT_E* codes; every function that can fail takes a
 * caller-supplied errbuf and writes one human-readable sentence naming the
 * offending value into it.
 *
 * Threading: the host calls a driver instance from one thread at a time.
 * Message callbacks are invoked only from inside poll(), on the caller's
 * thread; a driver whose client library delivers on its own threads queues
 * the messages and hands them over in poll().
 *
 * Options: a driver reads its options from environment variables with its
 * prefix, IOTLAT_<NAME>_* (e.g. IOTLAT_MQTT_URL).  An unknown variable with
 * the prefix is an error (IOTLAT_EINVAL naming it), never silently ignored.
 * A variable ending in _FILE holds a path whose content (trailing newline
 * removed) is the value; that is how secrets arrive from Kubernetes.
 *
 * Building one out of tree:
 *   cc -std=c11 -fPIC -shared -I/path/to/iotlat/src mydriver.c -o mydriver.so
 *   IOTLAT_DRIVER=./mydriver.so iotlat-subscriber ...
 */
#ifndef IOTLAT_DRIVER_H
#define IOTLAT_DRIVER_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define IOTLAT_DRIVER_ABI_MAJOR 1
#define IOTLAT_DRIVER_ABI_MINOR 1
#define IOTLAT_DRIVER_ENTRY_NAME "iotlat_driver_entry"

/* Error codes.  0 is success. */
#define IOTLAT_EINVAL -22     /* bad option or argument */
#define IOTLAT_ECONNECT -111  /* broker unreachable or refused us */
#define IOTLAT_EAUTH -13      /* credentials rejected */
#define IOTLAT_EAGAIN -11     /* would block / queue full: try again later */
#define IOTLAT_ENOMEM -12
#define IOTLAT_EIO -5         /* any other failure of the client library */
#define IOTLAT_ECLOSED -32    /* connection lost, driver is reconnecting */

/* Roles a driver instance is opened for (bit mask). */
#define IOTLAT_ROLE_PUBLISH 0x1   /* will call publish() */
#define IOTLAT_ROLE_SUBSCRIBE 0x2 /* will call subscribe() and poll() */

/* Log levels for iotlat_host.log. */
#define IOTLAT_LOG_ERROR 0
#define IOTLAT_LOG_WARN 1
#define IOTLAT_LOG_INFO 2
#define IOTLAT_LOG_DEBUG 3

/* Connection events reported through iotlat_host.event. */
#define IOTLAT_EVENT_DISCONNECTED 1 /* lost the broker; detail says why */
#define IOTLAT_EVENT_RECONNECTED 2  /* back; messages may have been lost */

/* Message delivery: called from inside poll() for every message received on
 * a subscribed topic.  `data` is valid only during the call.  `t_recv_us` is
 * the receive time the driver measured as close to the wire as it can (host
 * clock, CLOCK_REALTIME us), or 0 to let the host stamp it. */
typedef void (*iotlat_msg_fn)(void *ud, const char *topic, const void *data,
                              size_t len, int64_t t_recv_us);

typedef struct iotlat_host {
    uint16_t abi_major;
    uint16_t abi_minor;
    uint32_t size; /* sizeof(iotlat_host) as the host built it */
    /* printf-style log line, prefixed by the host with the driver's name. */
    void (*log)(void *host_ud, int level, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));
    /* CLOCK_REALTIME in us since the Unix epoch: the clock of every stamp. */
    int64_t (*now_us)(void);
    /* Connection state changes; the host turns them into outage windows. */
    void (*event)(void *host_ud, int event, const char *detail);
    void *host_ud; /* first argument of every function here */
    /* Read option variable `var` (full name, e.g. "IOTLAT_MQTT_PASSWORD"),
     * or the file named by `var`_FILE.  Returns 1 and copies the value
     * (NUL-terminated, trailing newline removed) into out; 0 when neither is
     * set; IOTLAT_EINVAL with errbuf filled when the file cannot be read or
     * the value does not fit. */
    int (*option)(void *host_ud, const char *var, char *out, size_t outlen,
                  char *errbuf, size_t errlen);
    /* Reject unknown options: every environment variable starting with
     * `prefix` (e.g. "IOTLAT_MQTT_") must be in the NULL-terminated list
     * `known` (suffixes after the prefix; "X" also allows "X_FILE").
     * Returns 0, or IOTLAT_EINVAL naming the first unknown variable and the
     * accepted ones. */
    int (*check_options)(void *host_ud, const char *prefix,
                         const char *const *known, char *errbuf,
                         size_t errlen);
    void *reserved[8];
} iotlat_host;

typedef struct iotlat_driver iotlat_driver;

struct iotlat_driver {
    uint16_t abi_major;
    uint16_t abi_minor;
    uint32_t size;       /* sizeof(iotlat_driver) as the driver built it */
    const char *name;    /* short name, also the option prefix: "zeromq" */
    const char *version; /* driver and client library version, for reports */

    /* Create an instance for `roles`, reading IOTLAT_<NAME>_* options and
     * connecting.  On success returns 0 and sets *inst; the host must call
     * close() once on it.  On failure returns a negative code, writes why
     * into errbuf, and *inst is untouched (nothing to close). */
    int (*open)(const iotlat_host *host, int roles, void **inst, char *errbuf,
                size_t errlen);

    /* Subscribe to `topic`; messages arrive through fn(ud, ...) in poll().
     * The topic string is copied. */
    int (*subscribe)(void *inst, const char *topic, iotlat_msg_fn fn, void *ud,
                     char *errbuf, size_t errlen);

    /* Hand one message to the client library.  `key` (may be NULL) is a
     * routing/partition key: messages with equal keys keep their order.
     * Must not block for long; IOTLAT_EAGAIN means the message was not taken
     * (the host counts it as a send failure).  data is copied or sent before
     * return. */
    int (*publish)(void *inst, const char *topic, const char *key,
                   const void *data, size_t len, char *errbuf, size_t errlen);

    /* Deliver pending messages, waiting up to timeout_ms (0: do not wait)
     * for the first one.  Returns the number delivered (>= 0) or a negative
     * error. */
    int (*poll)(void *inst, int timeout_ms, char *errbuf, size_t errlen);

    /* Optional (may be NULL): a file descriptor that becomes readable when
     * poll() may have something to deliver, for event-loop integration.
     * Returns the fd or -1 if the driver has none. */
    int (*fd)(void *inst);

    /* Optional (may be NULL): wait up to timeout_ms until the path to
     * `topic`'s subscribers is ready (brokerless transports need to see the
     * subscribers connect before the first message, or it is dropped).
     * Returns 0 when ready, IOTLAT_EAGAIN on timeout. */
    int (*wait_ready)(void *inst, const char *topic, int timeout_ms,
                      char *errbuf, size_t errlen);

    /* Send everything still queued, waiting up to timeout_ms.  Returns 0, or
     * IOTLAT_EAGAIN when messages were still queued at the deadline. */
    int (*flush)(void *inst, int timeout_ms, char *errbuf, size_t errlen);

    /* Release the instance.  Never fails; inst is invalid afterwards. */
    void (*close)(void *inst);

    /* Since ABI 1.1 (the host checks abi_minor before using these; both may
     * be NULL).  Brokerless drivers only: */
    /* Write the endpoint the publishing side is bound to (e.g.
     * "tcp://0.0.0.0:40123" after binding port 0) into buf, for others to
     * discover through Redis.  Returns 0, or IOTLAT_EINVAL if there is none. */
    int (*endpoint)(void *inst, char *buf, size_t len);
    /* Add an endpoint for the subscribing side to read from, discovered at
     * run time (e.g. a publisher's advertised endpoint).  Returns 0 or an
     * error with errbuf filled. */
    int (*attach)(void *inst, const char *endpoint, char *errbuf, size_t errlen);

    void *reserved[6]; /* must be NULL */
};

/* The single exported entry point.  Returns the driver's table, or NULL with
 * a reason in errbuf (e.g. the host's major is not one it supports). */
typedef const iotlat_driver *(*iotlat_driver_entry_fn)(
    uint16_t host_abi_major, uint16_t host_abi_minor, const iotlat_host *host,
    char *errbuf, size_t errlen);

#define IOTLAT_DRIVER_ENTRY iotlat_driver_entry
const iotlat_driver *IOTLAT_DRIVER_ENTRY(uint16_t host_abi_major,
                                          uint16_t host_abi_minor,
                                          const iotlat_host *host,
                                          char *errbuf, size_t errlen);

#ifdef __cplusplus
}
#endif
#endif
