/*
 * pngplot.h - a picture of a run without Grafana: gnuplot renders the
 * latency percentiles over time and the latency distribution to PNG.
 *
 * A report attached to a ticket or a pull request, or a run on a laptop,
 * should not need a Prometheus and a Grafana to be looked at.  The plotter
 * writes the numbers as plain data files beside the picture (so they can be
 * plotted again differently), a gnuplot script that reads them, and runs
 * gnuplot (Debian gnuplot-nox) on it:
 *
 *   <dir>/<run>-timeline.dat      per completed second of all topics:
 *                                 seconds since the first, messages, and
 *                                 p50 p90 p99 p99.9 max of the end-to-end
 *                                 latency, p99 of the service latency (ms)
 *   <dir>/<run>-distribution.dat  1/(1-p), percentile, end-to-end and
 *                                 service latency (ms) at that percentile
 *   <dir>/<run>-latency.gp        the gnuplot script
 *   <dir>/<run>-latency.png       the picture: both plots, one above the other
 *
 * The run id is used in file names with every character other than letters,
 * digits, '.', '-' and '_' replaced by '_'.
 */
#ifndef IL_PNGPLOT_H
#define IL_PNGPLOT_H

#include "rollup.h"

#include <stddef.h>

#define IL_PNGPLOT_EIO -1      /* a file could not be written (errbuf says which) */
#define IL_PNGPLOT_EGNUPLOT -2 /* gnuplot is missing or failed */
#define IL_PNGPLOT_EEMPTY -3   /* nothing to plot yet */

/* Render the run's picture into dir (created if missing).  On success the
 * picture's path is written to png (if not NULL).  Returns 0 or an error
 * above with errbuf filled. */
int il_pngplot_render(const il_rollup *r, const char *dir, const char *run, char *png,
                      size_t pnglen, char *errbuf, size_t errlen);

/* 1 when a gnuplot executable is on PATH. */
int il_pngplot_available(void);

#endif
