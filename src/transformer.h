/*
 * transformer.h - a stand-in for the iPaaS or stream processor under test.
 *
 * Reads IOTLAT_IN_TOPIC, stamps each message's envelope with its receive
 * time (a hop stamp, so the subscriber can split the latency per hop), can
 * replace the body with an action template (the "open the gate" answer to a
 * check-in), and publishes to IOTLAT_OUT_TOPIC.  It measures what it
 * receives like a subscriber would, so loss before the hop is visible too.
 */
#ifndef IL_TRANSFORMER_H
#define IL_TRANSFORMER_H

#include "config.h"

/* Run to completion; returns the process exit status. */
int il_transformer_run(const il_config *c);

#endif
