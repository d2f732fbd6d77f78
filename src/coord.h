/*
 * coord.h - what each binary does with the Redis store (store.h): who
 * advertises, who claims, lease renewal, per-second records, run metadata
 * and the clock offset.
 *
 * Kept apart from the binaries' logic so that without IOTLAT_REDIS_URL none
 * of it runs and every binary behaves as a standalone tool.
 */
#ifndef IL_COORD_H
#define IL_COORD_H

#include "config.h"
#include "driver.h"
#include "measure.h"
#include "store.h"

typedef struct il_coord {
    il_store *store;   /* NULL when standalone */
    const il_config *c;
    const char *role;
    char id[96];        /* instance id: publisher id, or host-pid */
    char host[256];
    const char *stage;  /* stage claimed from, or NULL */
    char topic[256];    /* claimed topic */
    char endpoint[512]; /* its advertised endpoint ("" if none) */
    int claimed;
    int64_t next_renew_us;
    int64_t next_record_us;
    int lease_lost;
    int64_t clock_offset_us, clock_error_us; /* to the Redis server's clock */
    int clock_known;
    int64_t takeover_prev_us; /* previous claimer's last record, 0 if none */
} il_coord;

/* Open the store when IOTLAT_REDIS_URL is set (else co->store stays NULL
 * and every other call is a no-op).  Estimates the clock offset and writes
 * the run metadata.  Returns 0, or the exit status to stop with (2 for bad
 * URL or rejected credentials). */
int il_coord_open(il_coord *co, const il_config *c, const char *role, const char *id);
void il_coord_close(il_coord *co);

/* Publisher / transformer: advertise `topic` in `stage`, with the driver's
 * bound endpoint rewritten to IOTLAT_ADVERTISE_HOST (or $POD_IP, or the
 * host name) when it is brokerless. */
int il_coord_advertise(il_coord *co, il_driver *d, const char *stage, const char *topic,
                       const char *source_topic);

/* Transformer / subscriber: wait for a free topic in `stage` (until the
 * duration, a signal, or forever).  Returns 1 when claimed (co->topic,
 * co->endpoint), 0 when stopped first. */
int il_coord_claim(il_coord *co, const char *stage);

/* Once per second from the receive loop: renew the lease when due, retry an
 * unreachable store, and (subscriber) write the second's record of `topic`
 * from m's current interval.  Returns 1 when the lease was lost (the caller
 * stops), else 0. */
int il_coord_second(il_coord *co, il_meas *m, const char *topic, int64_t now_us);

/* A reader says it is subscribed to `topic` of `stage` (its claimed topic,
 * or the topic it was given), so the writer upstream can start. */
void il_coord_mark_ready(il_coord *co, const char *stage, const char *topic);
/* A writer waits (up to timeout_us, or a signal) until a reader marked
 * `topic` of `stage` ready: with Redis, replicas start in any order and the
 * first messages are not lost to a chain that is not up yet.  Returns 1
 * when ready, 0 on timeout. */
int il_coord_wait_ready(il_coord *co, const char *stage, const char *topic,
                        int64_t timeout_us);

/* Give the claim back; done = 1 when the stream ended. */
void il_coord_release(il_coord *co, int done);

/* Publisher: its final counts, so subscribers can settle tail loss. */
void il_coord_final(il_coord *co, const char *topic, uint32_t pub_id, uint64_t devices,
                    uint64_t per_device, uint64_t scheduled, uint64_t sent,
                    uint64_t send_failed);

/* Subscriber: close the books of devices that sent no end marker using the
 * publisher's final counts in Redis (source_topic: the publisher's topic). */
void il_coord_settle_tail(il_coord *co, il_meas *m, const char *source_topic);

/* The run metadata's end time, and the report's "store" and "clock" members
 * (each followed by a comma). */
void il_coord_end(il_coord *co);
void il_coord_report_json(il_coord *co, FILE *f);
void il_coord_report_text(il_coord *co, FILE *f);

#endif
