#!/usr/bin/env bash
# Round-trip mode with the binary envelope: the publisher reads the
# transformer's output itself and measures the whole trip on its own clock.
. "$(dirname "$0")/lib.sh"
P1=$(free_port); P2=$(free_port)

start tra env IOTLAT_ZEROMQ_CONNECT=tcp://127.0.0.1:$P1 IOTLAT_ZEROMQ_BIND=tcp://127.0.0.1:$P2 \
    IOTLAT_IN_TOPIC=req IOTLAT_OUT_TOPIC=resp IOTLAT_REPORT_JSON=$WORK/tra.json \
    "$BIN/iotlat-transformer"
start pub env IOTLAT_ZEROMQ_BIND=tcp://127.0.0.1:$P1 IOTLAT_ZEROMQ_CONNECT=tcp://127.0.0.1:$P2 \
    IOTLAT_TOPIC=req IOTLAT_RETURN_TOPIC=resp IOTLAT_ENCODING=binary \
    IOTLAT_PAYLOAD='raw-bytes-{{seq}}' IOTLAT_DEVICES=20 IOTLAT_RATE=250 IOTLAT_DURATION=2s \
    IOTLAT_REPORT_JSON=$WORK/pub.json "$BIN/iotlat-publisher"
wait_for pub
wait_for tra
cat "$WORK/pub.out"
check \
    "pub['sent'] == 10000 and pub['send_failed'] == 0" \
    "pub['round_trip']['received_unique'] == 10000 and pub['round_trip']['lost'] == 0" \
    "pub['round_trip']['accounting']['balanced'] and pub['round_trip']['publishers_ended']" \
    "pub['round_trip']['malformed'] == 0" \
    "0 < pub['round_trip']['latency_us']['min'] <= pub['round_trip']['latency_us']['max']" \
    "pub['round_trip']['latency_us']['negative'] == 0" \
    "len(pub['round_trip']['hops']) == 2" \
    "tra['forwarded'] == 10020"
