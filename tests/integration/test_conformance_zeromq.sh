#!/usr/bin/env bash
# The shared driver conformance suite, run against the ZeroMQ driver.
exec bash "$(dirname "$0")/../conformance/conformance.sh" zeromq
