#!/usr/bin/env bash
# The shared driver conformance suite, run against the NATS driver (core
# publish/subscribe) and Debian's nats-server.
exec bash "$(dirname "$0")/../conformance/conformance.sh" nats
