/*
 * subscriber.h - the measuring end, and the receive loop it shares with the
 * transformer.
 *
 * The subscriber reads one topic, measures every message (measure.h), prints
 * progress once per interval, and ends when its duration is over, when every
 * publisher it has seen has sent its end markers (IOTLAT_STOP_AT_END), or on
 * SIGINT/SIGTERM, with a text report on stdout and a JSON report to
 * IOTLAT_REPORT_JSON.
 */
#ifndef IL_SUBSCRIBER_H
#define IL_SUBSCRIBER_H

#include "config.h"
#include "coord.h"
#include "driver.h"
#include "measure.h"

/* Run to completion; returns the process exit status. */
int il_subscriber_run(const il_config *c);

/* Poll `d` until the configured end (duration, publishers' end markers,
 * a signal, or `second` returning non-zero), printing `who`'s progress from
 * `m`.  Once per second (and once at the end) it calls second(ud, now)
 * before merging the second's histograms into the totals.  Installs SIGINT
 * and SIGTERM handlers.  Returns 0, or 1 if the driver failed. */
int il_receive_loop(const il_config *c, il_driver *d, il_meas *m, const char *who,
                    int64_t t_start, int (*second)(void *ud, int64_t now_us), void *ud);

#endif
