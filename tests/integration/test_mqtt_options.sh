#!/usr/bin/env bash
# The MQTT driver's option checks: every bad value stops the program at
# start with exit status 2 and one line naming the variable, the value and
# what is accepted (a password is named, never shown); an unreachable
# broker fails with exit status 1 and the kernel's reason, in per-device
# mode too.  No broker is needed: nothing listens on the port used.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/lib.sh"
export IOTLAT_DRIVER=mqtt IOTLAT_PROGRESS=0 IOTLAT_TOPIC=x IOTLAT_DURATION=1s
DOWN=$(free_port)
export IOTLAT_MQTT_URL=tcp://127.0.0.1:$DOWN
fails=0

# expect STATUS TEXT KEY=VALUE... : the subscriber exits with STATUS and a
# single-line error containing TEXT.
expect() {
    local want=$1 text=$2 rc=0; shift 2
    env "$@" timeout 30 "$BIN/iotlat-subscriber" >"$WORK/out" 2>&1 || rc=$?
    if [ $rc -eq "$want" ] && grep -qF -- "$text" "$WORK/out" && [ "$(wc -l <"$WORK/out")" -eq 1 ]; then
        echo "ok   $* -> $rc"
    else
        echo "FAIL $* -> $rc, expected $want and '$text':"; cat "$WORK/out"; fails=$((fails + 1))
    fi
}
expect 2 "IOTLAT_MQTT_QOS='3' is invalid: expected an integer from 0 to 2" IOTLAT_MQTT_QOS=3
expect 2 "IOTLAT_MQTT_VERSION='4' is invalid: expected 3.1.1, 5" IOTLAT_MQTT_VERSION=4
expect 2 "IOTLAT_MQTT_CONNECTIONS='each' is invalid: expected shared, per-device" \
    IOTLAT_MQTT_CONNECTIONS=each
expect 2 "IOTLAT_MQTT_URL='http://h:1' is invalid" IOTLAT_MQTT_URL=http://h:1
expect 2 "IOTLAT_MQTT_URL='tcp://h:99999' is invalid" IOTLAT_MQTT_URL=tcp://h:99999
expect 2 "mixes TLS and plain TCP" IOTLAT_MQTT_URL=tcp://a:1,ssl://b:2
expect 2 "IOTLAT_MQTT_CONNECT_RATE='0' is invalid" IOTLAT_MQTT_CONNECT_RATE=0
expect 2 "IOTLAT_MQTT_CLEAN_SESSION='maybe' is invalid" IOTLAT_MQTT_CLEAN_SESSION=maybe
expect 2 "IOTLAT_MQTT_CLIENT_ID='dev-%x' is invalid: unknown %-escape" \
    IOTLAT_MQTT_CLIENT_ID=dev-%x
expect 2 "IOTLAT_MQTT_PASSWORD is invalid: it contains an unknown %-escape" \
    IOTLAT_MQTT_USERNAME=u IOTLAT_MQTT_PASSWORD=secret%zz
expect 2 "IOTLAT_MQTT_PASSWORD is set without IOTLAT_MQTT_USERNAME" IOTLAT_MQTT_PASSWORD=p
expect 2 "IOTLAT_MQTT_TLS_CA='/nonexistent/ca.pem' cannot be read" \
    IOTLAT_MQTT_URL=ssl://127.0.0.1:$DOWN IOTLAT_MQTT_TLS_CA=/nonexistent/ca.pem
expect 2 "is not a TLS URL" IOTLAT_MQTT_TLS_INSECURE=true
expect 2 "unknown option IOTLAT_MQTT_QOS_LEVEL" IOTLAT_MQTT_QOS_LEVEL=1
expect 1 "cannot connect to 127.0.0.1:$DOWN: Connection refused"
expect 1 "cannot connect to no-such-host.invalid:1883" IOTLAT_MQTT_URL=tcp://no-such-host.invalid
if grep -q "secret" "$WORK/out"; then echo "FAIL the password leaked"; fails=$((fails + 1)); fi

echo "== per-device publisher, broker down"
rc=0
env IOTLAT_MQTT_CONNECTIONS=per-device IOTLAT_MQTT_DEVICES=3 IOTLAT_DEVICES=3 \
    timeout 30 "$BIN/iotlat-publisher" >"$WORK/out" 2>&1 || rc=$?
if [ $rc -eq 1 ] && grep -qF "cannot connect to 127.0.0.1:$DOWN: Connection refused" "$WORK/out"; then
    echo "ok   exit 1: $(cat "$WORK/out")"
else
    echo "FAIL exit $rc:"; cat "$WORK/out"; fails=$((fails + 1))
fi
[ $fails -eq 0 ] || { echo "test_mqtt_options: $fails failed"; exit 1; }
echo "test_mqtt_options: passed"
