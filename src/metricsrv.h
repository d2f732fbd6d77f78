/*
 * metricsrv.h - the plotter's HTTP endpoint: GET /metrics for Prometheus.
 *
 * Prometheus pulls; the plotter must answer a scrape at any moment while it
 * is busy reading Redis.  libmicrohttpd serves from its own thread a copy of
 * the last exposition text the plotter rendered, so a scrape never waits for
 * a poll and never sees half of one.
 *
 * Memory: the server owns its copy of the text; il_metricsrv_stop frees it
 * and everything else.  il_metricsrv_set may be called from any one thread
 * while the server runs.
 */
#ifndef IL_METRICSRV_H
#define IL_METRICSRV_H

#include <stddef.h>

#define IL_METRICSRV_EADDR -1  /* the address is malformed or does not resolve */
#define IL_METRICSRV_EBIND -2  /* the address cannot be listened on (in use?) */
#define IL_METRICSRV_ESTART -3 /* libmicrohttpd did not start, or no memory */

typedef struct il_metricsrv il_metricsrv;

/* Listen on `listen` ("host:port" or "[v6]:port") and serve.  Returns 0,
 * or an error above with errbuf naming the address and the reason. */
int il_metricsrv_start(il_metricsrv **out, const char *listen, char *errbuf, size_t errlen);

/* Serve `text` (copied) from now on.  Until the first call /metrics answers
 * 503: nothing has been read yet. */
void il_metricsrv_set(il_metricsrv *m, const char *text, size_t len);

/* Scrapes answered so far. */
unsigned long il_metricsrv_scrapes(il_metricsrv *m);

void il_metricsrv_stop(il_metricsrv *m);

#endif
