#!/usr/bin/env bash
# Loss is detected and accounted exactly: the subscriber joins a second after
# the publisher started (ZeroMQ drops what nobody subscribed to), so each
# device's first messages are missing.  Every scheduled message must be
# either received or counted lost.
. "$(dirname "$0")/lib.sh"
P1=$(free_port)

start pub env IOTLAT_ZEROMQ_BIND=tcp://127.0.0.1:$P1 IOTLAT_WAIT_READY=0 \
    IOTLAT_DEVICES=40 IOTLAT_RATE=100 IOTLAT_DURATION=3s \
    IOTLAT_REPORT_JSON=$WORK/pub.json "$BIN/iotlat-publisher"
sleep 1
start sub env IOTLAT_ZEROMQ_CONNECT=tcp://127.0.0.1:$P1 \
    IOTLAT_REPORT_JSON=$WORK/sub.json IOTLAT_DURATION=60s "$BIN/iotlat-subscriber"
wait_for pub
wait_for sub
cat "$WORK/sub.out"
check \
    "pub['sent'] == 12000" \
    "sub['lost'] > 0 and sub['received_unique'] > 0" \
    "sub['received_unique'] + sub['lost'] == pub['scheduled']" \
    "sub['expected'] == pub['scheduled'] and sub['accounting']['balanced']" \
    "sub['devices'] == 40 and sub['devices_with_fin'] == 40" \
    "sub['latency_us']['count'] == sub['received_unique']"
