#!/usr/bin/env bash
# The shared driver conformance suite, run against the Redis driver
# (pub/sub mode) and Debian's redis-server.
exec bash "$(dirname "$0")/../conformance/conformance.sh" redis
