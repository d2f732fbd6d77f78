/*
 * store.h - Redis as the rendezvous and the non-volatile results store.
 *
 * Hundreds of replicas started with one environment must pair up 1-1-1
 * (publisher -> transformer -> subscriber) without a coordinator, and their
 * results must survive the processes.  Redis does both:
 *
 *   <p> = "iotlat:<run>:"
 *   <p>stage:<stage>          ZSET  topics advertised in a stage
 *                                   ("publisher", "transformer"), score =
 *                                   advertise time (ms)
 *   <p>topic:<stage>:<topic>  HASH  what was advertised: endpoint, driver,
 *                                   publisher id, host, devices, rate
 *   <p>lease:<stage>:<topic>  STRING  claimer id, with a PX expiry: the lease
 *   <p>done:<stage>           SET   topics whose stream ended; not claimable
 *   <p>rec:<topic>            STREAM one entry per second per topic (counts,
 *                                   loss counters, serialized histograms)
 *   <p>index                  SET   topics that have result records
 *   <p>final:<topic>          HASH  the publisher's final counts
 *   <p>meta:<role>:<id>       HASH  run metadata (config without secrets,
 *                                   driver, version, host, start, end,
 *                                   clock offset and its error bound)
 *
 * Claims are atomic Lua scripts: a claimer takes the oldest advertised topic
 * that is neither leased nor done, with SET NX PX, and renews its lease (every
 * third of it, at most once a second) with
 * a compare-and-PEXPIRE script; a claimer that dies stops renewing and its
 * topic returns to the pool when the lease expires.  There is no
 * check-then-set race anywhere.
 *
 * Records are written once per second per topic (one XADD; the key's expiry
 * is refreshed once a minute), never per message.  When Redis is
 * unreachable, records are queued in memory (bounded by IOTLAT_REDIS_BUFFER)
 * and written, in order, once it is back; the time spent unreachable is
 * accumulated for the report.
 *
 * Memory: il_store owns its connection and buffer; il_store_close frees
 * them.  Calls are made from one thread.
 */
#ifndef IL_STORE_H
#define IL_STORE_H

#include "histogram.h"

#include <stddef.h>
#include <stdint.h>

struct il_config;

#define IL_STORE_EINVAL -1  /* bad URL or arguments; errbuf says which */
#define IL_STORE_EDOWN -2   /* Redis unreachable (now) */
#define IL_STORE_EAUTH -3   /* Redis refused the credentials */
#define IL_STORE_EREPLY -4  /* unexpected reply (error text in errbuf) */

typedef struct il_store il_store;

/* Parsed IOTLAT_REDIS_URL: redis://[[user]:password@]host[:port][/db]. */
typedef struct il_redis_url {
    char host[256];
    int port;
    int db;
    char user[128];
    char password[512];
} il_redis_url;

/* Returns 0 or IL_STORE_EINVAL with errbuf naming the problem (never the
 * password). */
int il_redis_url_parse(const char *url, il_redis_url *out, char *errbuf, size_t errlen);

/* Connect for `role` ("publisher", ...) with instance id `id`.  A Redis that
 * is down at start is not an error for the caller that can buffer: the
 * store is returned disconnected (il_store_connected() == 0) and reconnects
 * on later calls.  Wrong credentials are fatal (IL_STORE_EAUTH). */
int il_store_open(il_store **out, const struct il_config *c, const char *role,
                  const char *id, char *errbuf, size_t errlen);
void il_store_close(il_store *s);

int il_store_connected(il_store *s);
/* Try to (re)connect now if disconnected and the backoff allows; flushes
 * buffered records once connected.  Returns 1 if connected. */
int il_store_poll(il_store *s);
/* Time Redis was unreachable so far (us), and the number of outages. */
int64_t il_store_outage_us(const il_store *s);
uint64_t il_store_outages(const il_store *s);
/* Records queued because Redis was unreachable, and records dropped because
 * the queue was full. */
size_t il_store_buffered(const il_store *s);
uint64_t il_store_dropped(const il_store *s);

/* Estimate this host's clock offset to the Redis server's TIME from
 * `samples` round trips, keeping the one with the lowest round trip:
 * server_time = local_time + offset, within +-error.  Returns 0 or
 * IL_STORE_EDOWN. */
int il_store_clock(il_store *s, int samples, int64_t *offset_us, int64_t *error_us);

/* Advertise `topic` in `stage`, with fields (NULL-terminated key, value
 * pairs).  Returns 0 or an error. */
int il_store_advertise(il_store *s, const char *stage, const char *topic,
                       const char *const *fields);
/* Claim the oldest free topic of `stage`.  Returns 1 and fills topic (and
 * endpoint, "" if none was advertised), 0 if none is free, or an error. */
int il_store_claim(il_store *s, const char *stage, char *topic, size_t tlen,
                   char *endpoint, size_t elen);
/* Set fields of an advertised topic (NULL-terminated key, value pairs). */
int il_store_topic_set(il_store *s, const char *stage, const char *topic,
                       const char *const *fields);
/* Read one advertised field of a topic; 1 found, 0 missing, or an error. */
int il_store_topic_field(il_store *s, const char *stage, const char *topic,
                         const char *field, char *out, size_t len);
/* Renew the lease on topic; 1 if still ours, 0 if lost, or an error. */
int il_store_renew(il_store *s, const char *stage, const char *topic);
/* Give a claimed topic back (done = 1: its stream has ended, never hand it
 * out again). */
int il_store_release(il_store *s, const char *stage, const char *topic, int done);
/* Lease duration in us (IOTLAT_LEASE). */
int64_t il_store_lease_us(const il_store *s);

/* One per-second result record of a topic. */
typedef struct il_record {
    int64_t t_us; /* end of the second it covers */
    uint64_t received, received_unique, lost, duplicates, reordered, malformed,
        stale, expected;  /* running totals */
    uint64_t devices;
    const il_hist *lat; /* this second's distributions (may be NULL) */
    const il_hist *svc;
    const il_hist *lag;
} il_record;

/* Write (or queue, when Redis is unreachable) a record.  Returns 0, or
 * IL_STORE_EDOWN when it was queued, or an error when it was dropped. */
int il_store_record(il_store *s, const char *topic, const il_record *r);

/* Last record time of a topic written by anyone (0 if none). */
int64_t il_store_last_record_us(il_store *s, const char *topic);

/* Hash fields under <p>final:<topic> / <p>meta:<role>:<id>
 * (NULL-terminated key, value pairs). */
int il_store_final(il_store *s, const char *topic, const char *const *fields);
int il_store_meta(il_store *s, const char *const *fields);

/* Read one field of <p>final:<topic>; 1 found, 0 missing, or an error. */
int il_store_get_final(il_store *s, const char *topic, const char *field, char *out,
                       size_t len);

/* Count of write commands this store issued (for the tests' bound). */
uint64_t il_store_writes(const il_store *s);

#endif
