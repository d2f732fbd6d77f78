/*
 * results.h - following a run's results in Redis, for the plotter.
 *
 * The subscribers write (store.h) one stream entry per second per topic
 * under iotlat:<run>:rec:<topic> and list the topics in iotlat:<run>:index;
 * the coordination hashes say which driver carried a topic and how well the
 * publisher's and the subscriber's clocks are known.  This reader polls the
 * index, reads each stream from the last entry it consumed (XRANGE, in
 * batches), and decodes entries on demand, so the plotter follows a run as
 * it happens or reads a finished one, and resumes where it was after Redis
 * went away.
 *
 * Entries are fetched and consumed separately: the plotter fetches a batch
 * of every topic, feeds them in time order, and consumes only what it fed;
 * the rest is fetched again with the next batch.  That keeps the merge of
 * topics in time order without holding a whole run in memory.
 *
 * Memory: the reader owns its connection, topic list and fetched replies;
 * il_results_close frees them.  One thread.
 */
#ifndef IL_RESULTS_H
#define IL_RESULTS_H

#include "rollup.h"

#include <stddef.h>
#include <stdint.h>

#define IL_RESULTS_EINVAL -1 /* bad URL (errbuf says why) or out of memory */
#define IL_RESULTS_EAUTH -2  /* Redis refused the credentials */
#define IL_RESULTS_EDOWN -3  /* Redis unreachable now; later calls reconnect */

typedef struct il_results il_results;

/* What coordination left about a topic (store.h: topic, meta hashes). */
typedef struct il_topic_meta {
    char driver[64];       /* "" when unknown */
    int64_t pub_error_us;  /* the publisher's clock error bound, -1 unknown */
    int64_t sub_error_us;  /* the subscriber's, -1 unknown */
} il_topic_meta;

/* Parse url (IOTLAT_REDIS_URL) and connect.  Redis being down is not an
 * error here (il_results_connected() says 0 and later calls retry); a bad
 * URL is IL_RESULTS_EINVAL, refused credentials IL_RESULTS_EAUTH, each with
 * errbuf filled (never with the password). */
int il_results_open(il_results **out, const char *url, const char *run, char *errbuf,
                    size_t errlen);
void il_results_close(il_results *r);

int il_results_connected(const il_results *r);
uint64_t il_results_errors(const il_results *r);        /* failed commands */
uint64_t il_results_decode_errors(const il_results *r); /* bad histograms */

/* Read the index: topics not seen before are appended, in name order among
 * those found together.  Returns the number of topics, or IL_RESULTS_EDOWN. */
long il_results_refresh(il_results *r);
size_t il_results_ntopics(const il_results *r);
const char *il_results_topic(const il_results *r, size_t i);

/* Fetch up to max entries of topic i that follow the last consumed one
 * (replacing what was fetched before).  Returns how many, or
 * IL_RESULTS_EDOWN. */
long il_results_fetch(il_results *r, size_t i, size_t max);
/* End time (t_us) of fetched entry k of topic i. */
int64_t il_results_t(const il_results *r, size_t i, size_t k);
/* Decode fetched entry k of topic i.  The histograms point into the
 * reader's scratch space, valid until the next call; one that is missing or
 * does not decode is NULL (and counted). */
void il_results_decode(il_results *r, size_t i, size_t k, il_rollup_in *in);
/* The first n fetched entries of topic i are done with: the next fetch
 * starts after them. */
void il_results_consume(il_results *r, size_t i, size_t n);

/* Look up a topic's driver and clock error bounds.  Returns 0 (fields that
 * are not known yet stay "" / -1) or IL_RESULTS_EDOWN. */
int il_results_meta(il_results *r, const char *topic, il_topic_meta *m);

#endif
