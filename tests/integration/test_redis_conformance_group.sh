#!/usr/bin/env bash
# The shared conformance suite with the Redis driver in streams mode and a
# consumer group (XREADGROUP + XACK): case 4 checks that the group is created
# again after a restart that lost it (NOGROUP / MKSTREAM).
export REDIS_EXTRA_ENV="IOTLAT_REDIS_MODE=streams IOTLAT_REDIS_GROUP=conformance"
exec bash "$(dirname "$0")/../conformance/conformance.sh" redis
