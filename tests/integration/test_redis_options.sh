#!/usr/bin/env bash
# The Redis driver's options: an unknown IOTLAT_REDIS_* variable and every
# kind of bad value stop the program at start (exit 2) with one line naming
# the variable, the value and what is accepted - before any connection is
# tried, so no server is needed.  IOTLAT_REDIS_URL (the core's results
# store) is not mistaken for an unknown driver option.
. "$(dirname "$0")/lib.sh"
export IOTLAT_DRIVER=redis IOTLAT_PROGRESS=0 IOTLAT_TOPIC=opt IOTLAT_DURATION=1s
DOWN=$(free_port)

# bad WANT_RC TEXT VAR=VALUE... : the subscriber exits WANT_RC quickly with
# TEXT in its one-line error.
bad() {
    local want=$1 text=$2 rc=0; shift 2
    env IOTLAT_REDIS_PORT=$DOWN "$@" timeout 20 "$BIN/iotlat-subscriber" >"$WORK/o.out" 2>&1 || rc=$?
    cat "$WORK/o.out"
    [ $rc -eq "$want" ] || { echo "expected exit $want, got $rc for: $*"; exit 1; }
    grep -qF -- "$text" "$WORK/o.out" || { echo "message lacks '$text' for: $*"; exit 1; }
    [ "$(wc -l <"$WORK/o.out")" -le 2 ] || { echo "expected one clear line for: $*"; exit 1; }
}

bad 2 "unknown option IOTLAT_REDIS_BOGUS" IOTLAT_REDIS_BOGUS=1
bad 2 "IOTLAT_REDIS_MODE='kafka' is invalid: expected pubsub, streams" IOTLAT_REDIS_MODE=kafka
bad 2 "IOTLAT_REDIS_PORT='99999' is invalid" IOTLAT_REDIS_PORT=99999
bad 2 "IOTLAT_REDIS_PIPELINE='0' is invalid" IOTLAT_REDIS_PIPELINE=0
bad 2 "IOTLAT_REDIS_BLOCK_MS='soon' is invalid" IOTLAT_REDIS_BLOCK_MS=soon
bad 2 "IOTLAT_REDIS_GROUP='g' needs IOTLAT_REDIS_MODE=streams" IOTLAT_REDIS_GROUP=g
bad 2 "IOTLAT_REDIS_CONSUMER='c' needs IOTLAT_REDIS_GROUP" IOTLAT_REDIS_MODE=streams IOTLAT_REDIS_CONSUMER=c
bad 2 "IOTLAT_REDIS_USER='u' needs IOTLAT_REDIS_PASSWORD" IOTLAT_REDIS_USER=u
bad 2 "IOTLAT_REDIS_PASSWORD_FILE" IOTLAT_REDIS_PASSWORD_FILE=$WORK/no-such-file
# Valid options get as far as connecting.
bad 1 "cannot connect to 127.0.0.1:$DOWN" IOTLAT_REDIS_MODE=streams IOTLAT_REDIS_GROUP=g \
    IOTLAT_REDIS_CONSUMER=c
# IOTLAT_REDIS_URL belongs to the core (which may log about its results store
# being unreachable): the driver ignores it instead of calling it unknown.
rc=0
env IOTLAT_REDIS_PORT=$DOWN IOTLAT_REDIS_URL=redis://127.0.0.1:$DOWN/0 timeout 20 \
    "$BIN/iotlat-subscriber" >"$WORK/o.out" 2>&1 || rc=$?
cat "$WORK/o.out"
[ $rc -eq 1 ] || { echo "IOTLAT_REDIS_URL: expected exit 1, got $rc"; exit 1; }
grep -qF "driver redis: cannot connect to 127.0.0.1:$DOWN" "$WORK/o.out" || { echo "IOTLAT_REDIS_URL: no connect error"; exit 1; }
if grep -q "unknown option" "$WORK/o.out"; then echo "IOTLAT_REDIS_URL taken for a driver option"; exit 1; fi
# An unresolvable host fails as quickly, naming it.
bad 1 "cannot connect to no-such-host.invalid:$DOWN" IOTLAT_REDIS_HOST=no-such-host.invalid
echo "redis options: passed"
