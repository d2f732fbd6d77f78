/*
 * elk.h - one ECS JSON document per topic per second, for Elasticsearch and
 * Kibana.
 *
 * Teams that keep their observability in the Elastic stack want the load
 * test's results next to the logs of the system under test, with the field
 * names of the Elastic Common Schema so that Kibana's time pickers and
 * generic dashboards work: @timestamp, event.* (dataset "iotlat.latency",
 * start, end, duration in nanoseconds: the window the document covers) and
 * the measurements under iotlat.* (run, topic, driver, the second's counts,
 * running totals, and each distribution's count, min, p50, p90, p99, p99.9,
 * max and mean in microseconds: iotlat.latency.p99_us, ...).  event.id is
 * derived from run, topic and time, so a document sent twice (a retried
 * _bulk request, Logstash re-reading a file) is stored once.
 *
 * Documents are written to a FILE (the NDJSON file Filebeat tails, or a
 * memory stream for the _bulk queue); nothing here does I/O of its own.
 */
#ifndef IL_ELK_H
#define IL_ELK_H

#include "histogram.h"
#include "rollup.h"

#include <stdint.h>
#include <stdio.h>

#define IL_ELK_DATASET "iotlat.latency"
#define IL_ELK_ID_LEN 40 /* bytes of an id, with the terminating zero */

typedef struct il_elk_in {
    const char *run, *topic, *driver; /* driver may be "" (unknown) */
    int64_t t_us;                     /* end of the window */
    int64_t window_us;                /* its length, normally 1 s */
    const il_counts *delta;           /* change over the window */
    const il_counts *total;           /* running totals at its end */
    const il_hist *const *h;          /* IL_DISTS histograms, any NULL */
    int64_t clock_bound_us;           /* -1 = unknown */
    uint32_t records;                 /* records merged (all topics), 0 = one */
} il_elk_in;

/* The document id of (run, topic, t_us): 16 hex digits of a 64-bit FNV-1a
 * hash of run and topic, '-', and t_us.  out must hold IL_ELK_ID_LEN. */
void il_elk_id(const char *run, const char *topic, int64_t t_us, char *out);

/* Write one document as a single line of JSON, without the line feed. */
void il_elk_write(FILE *f, const il_elk_in *d);

#endif
