#!/usr/bin/env bash
# The shared conformance suite again, with the Redis driver in streams mode
# and plain XREAD: case 4 checks that a reader resumes after a kill -9 and
# restart (continuing after the last entry it delivered).
export REDIS_EXTRA_ENV="IOTLAT_REDIS_MODE=streams"
exec bash "$(dirname "$0")/../conformance/conformance.sh" redis
