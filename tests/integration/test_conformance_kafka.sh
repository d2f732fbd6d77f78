#!/usr/bin/env bash
# The shared driver conformance suite, run against the Kafka driver on
# librdkafka's mock cluster (see tests/conformance/servers/kafka.sh).
exec bash "$(dirname "$0")/../conformance/conformance.sh" kafka
