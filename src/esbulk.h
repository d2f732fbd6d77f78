/*
 * esbulk.h - documents to Elasticsearch's _bulk API, none lost on the way.
 *
 * Elasticsearch is down for a rolling restart, answers 429 when its queues
 * are full, or accepts a request while refusing some of its documents.  A
 * load test's results must survive all of that, and the plotter must keep
 * reading Redis meanwhile, so documents go into a bounded queue that a
 * thread of its own sends in batches with libcurl: a document leaves the
 * queue only once Elasticsearch has it (201, or 409 because an earlier
 * attempt already stored it under the same _id) or refused it for good (a
 * 4xx on the document, e.g. a mapping error: counted as rejected and
 * logged).  Failed requests and documents answered 429 or 5xx stay queued
 * and are retried with a doubling backoff (0.5 s up to 30 s).  A full queue
 * keeps the older documents and drops and counts the newer ones, as the
 * subscriber's Redis buffer does.
 *
 * Memory: the client owns its queue, thread and curl handle; il_esbulk_close
 * frees them.  il_esbulk_add and il_esbulk_stats may be called from any
 * thread.
 */
#ifndef IL_ESBULK_H
#define IL_ESBULK_H

#include <stddef.h>
#include <stdint.h>

#define IL_ESBULK_EINVAL -1 /* bad URL or index, or out of memory */
#define IL_ESBULK_EFULL -2  /* queue full: the document was dropped */

typedef struct il_esbulk il_esbulk;

typedef struct il_esbulk_stats {
    uint64_t sent;      /* documents Elasticsearch has */
    uint64_t queued;    /* documents waiting */
    uint64_t dropped;   /* documents dropped because the queue was full */
    uint64_t rejected;  /* documents refused for good */
    uint64_t failures;  /* requests that failed as a whole (then retried) */
    uint64_t retried;   /* documents answered 429/5xx inside a 200 */
    uint64_t requests;  /* requests made */
} il_esbulk_stats;

/* url: http(s)://[user:password@]host[:port][/path] of Elasticsearch (the
 * request goes to <url>/_bulk); index: where documents go (with the create
 * action, so a data stream works too).  Starts the sender thread.  Returns
 * 0 or IL_ESBULK_EINVAL with errbuf filled (never with the password). */
int il_esbulk_open(il_esbulk **out, const char *url, const char *index, size_t queue_max,
                   char *errbuf, size_t errlen);

/* Queue one document (copied) under _id `id`.  Returns 0, or IL_ESBULK_EFULL
 * when the queue is full and the document was dropped (and counted). */
int il_esbulk_add(il_esbulk *b, const char *id, const char *doc, size_t len);

/* Send what is queued now rather than waiting for a full batch. */
void il_esbulk_kick(il_esbulk *b);

void il_esbulk_stats_get(il_esbulk *b, il_esbulk_stats *st);

/* Keep trying to deliver what is queued for up to timeout_us, then stop the
 * thread and free everything.  Returns the number of documents that were
 * still undelivered (and are lost). */
uint64_t il_esbulk_close(il_esbulk *b, int64_t timeout_us);

#endif
