#!/usr/bin/env bash
# A driver built out of tree with nothing but the public header works: copy
# iotlat_driver.h and the test loopback driver into an empty directory, build
# the .so there with the README's command line, and run the publisher in
# round-trip mode through it (the loopback delivers in-process).
. "$(dirname "$0")/lib.sh"
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
mkdir -p "$WORK/ext"
cp "$ROOT/src/iotlat_driver.h" "$ROOT/tests/drivers/good.c" "$WORK/ext/"
(cd "$WORK/ext" && cc -std=c11 -Wall -Wextra -Werror -fPIC -shared -I. good.c -o good.so)
start pub env IOTLAT_DRIVER="$WORK/ext/good.so" IOTLAT_TOPIC=loop IOTLAT_RETURN_TOPIC=loop \
    IOTLAT_DEVICES=5 IOTLAT_RATE=100 IOTLAT_DURATION=1s IOTLAT_PROGRESS=0 \
    IOTLAT_REPORT_JSON=$WORK/pub.json "$BIN/iotlat-publisher"
wait_for pub
check \
    "pub['driver'] == 'good' and pub['sent'] == 500" \
    "pub['round_trip']['received_unique'] == 500 and pub['round_trip']['lost'] == 0" \
    "pub['round_trip']['publishers_ended']"
# The same driver refuses an option it does not know.
rc=0; IOTLAT_DRIVER="$WORK/ext/good.so" IOTLAT_GOOD_COLOUR=red "$BIN/iotlat-subscriber" \
    >"$WORK/bad.out" 2>&1 || rc=$?
cat "$WORK/bad.out"
[ $rc -eq 2 ] && grep -q IOTLAT_GOOD_COLOUR "$WORK/bad.out"
