/*
 * publisher.h - the device emulator: N devices x R msg/s on one event loop.
 *
 * Runs the open-loop schedule (scheduler.h) on a libuv loop, stamps each
 * message's envelope with its intended and actual send times, hands it to
 * the driver, and ends every device's stream with a fin marker.  In
 * round-trip mode it also reads the final topic and measures the whole trip
 * on its own clock, which needs no clock sync between hosts.
 */
#ifndef IL_PUBLISHER_H
#define IL_PUBLISHER_H

#include "config.h"

/* Run to completion; returns the process exit status (0, 1 on a runtime
 * failure, 2 on a configuration error, with the reason printed). */
int il_publisher_run(const il_config *c);

#endif
