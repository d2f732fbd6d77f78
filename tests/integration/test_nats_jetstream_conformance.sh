#!/usr/bin/env bash
# The shared driver conformance suite through JetStream: nats-server -js with
# its store in the test's directory, and IOTLAT_NATS_JETSTREAM=true for every
# role (see tests/conformance/servers/nats.sh).  Case 4 kills the server
# with SIGKILL mid-run: the ordered consumer must pick up again after the
# restart and the accounting must still balance.
NATS_CONF_JETSTREAM=1 exec bash "$(dirname "$0")/../conformance/conformance.sh" nats
