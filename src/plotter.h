/*
 * plotter.h - iotlat-plotter: follow a run's results in Redis and show them
 * to Prometheus (/metrics), to the Elastic stack (NDJSON and _bulk) and as a
 * picture (gnuplot).
 *
 * The measuring binaries only write per-second records; everything a person
 * looks at is derived here, so that a dashboard can be added or changed
 * without touching what measures.  This file wires the parts together:
 * results.h reads, rollup.h merges, promexp.h and metricsrv.h serve, elk.h
 * and esbulk.h write documents, pngplot.h draws.
 */
#ifndef IL_PLOTTER_H
#define IL_PLOTTER_H

#include "config.h"

/* Run until SIGINT / SIGTERM (or, with IOTLAT_PLOTTER_ONCE, until the run's
 * records are read).  Returns the exit status: 0, 1 (runtime failure, e.g.
 * documents Elasticsearch never took) or 2 (configuration). */
int il_plotter_run(const il_config *c);

/* IOTLAT_PLOTTER_TOPICS as a number: -1 for all, 0 for none. */
long il_plotter_topics_cap(const char *v);

#endif
