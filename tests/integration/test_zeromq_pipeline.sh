#!/usr/bin/env bash
# publisher -> transformer -> subscriber over ZeroMQ on loopback for a few
# seconds: every message is accounted for, none is lost, latencies are
# positive, and the per-hop split adds up.
. "$(dirname "$0")/lib.sh"
P1=$(free_port); P2=$(free_port)

start sub env IOTLAT_ZEROMQ_CONNECT=tcp://127.0.0.1:$P2 IOTLAT_TOPIC=checkin.out \
    IOTLAT_REPORT_JSON=$WORK/sub.json IOTLAT_DURATION=60s "$BIN/iotlat-subscriber"
start tra env IOTLAT_ZEROMQ_CONNECT=tcp://127.0.0.1:$P1 IOTLAT_ZEROMQ_BIND=tcp://127.0.0.1:$P2 \
    IOTLAT_IN_TOPIC=checkin IOTLAT_OUT_TOPIC=checkin.out \
    IOTLAT_ACTION='{"Gate":{"Open":true,"Device":{{device}}}}' \
    IOTLAT_REPORT_JSON=$WORK/tra.json IOTLAT_DURATION=60s "$BIN/iotlat-transformer"
start pub env IOTLAT_ZEROMQ_BIND=tcp://127.0.0.1:$P1 IOTLAT_TOPIC=checkin \
    IOTLAT_DEVICES=50 IOTLAT_RATE=200 IOTLAT_DURATION=3s \
    IOTLAT_PAYLOAD='{"Metro":{"CheckIn":{"Token":"{{hex:16}}","Station":{{rand:1:50}}}}}' \
    IOTLAT_REPORT_JSON=$WORK/pub.json "$BIN/iotlat-publisher"
wait_for pub
wait_for tra
wait_for sub
cat "$WORK/sub.out"
check \
    "pub['scheduled'] == 30000 and pub['sent'] == 30000 and pub['send_failed'] == 0" \
    "pub['fin_sent'] == 50" \
    "tra['forwarded'] == 30050 and tra['input']['lost'] == 0" \
    "sub['received'] == 30000 and sub['received_unique'] == 30000" \
    "sub['lost'] == 0 and sub['duplicates'] == 0 and sub['malformed'] == 0" \
    "sub['expected'] == pub['scheduled']" \
    "sub['accounting']['balanced'] and sub['accounting']['tail_known']" \
    "sub['publishers_ended'] and sub['devices'] == 50 and sub['devices_with_fin'] == 50" \
    "sub['latency_us']['count'] == 30000 and sub['latency_us']['negative'] == 0" \
    "0 < sub['latency_us']['min'] <= sub['latency_us']['p50'] <= sub['latency_us']['p99'] <= sub['latency_us']['max']" \
    "sub['service_latency_us']['p50'] <= sub['latency_us']['p50']" \
    "[h['segment'] for h in sub['hops']] == ['publisher->hop1', 'hop1->subscriber']" \
    "all(h['latency_us']['count'] == 30000 for h in sub['hops'])" \
    "sub['config']['topic'] == 'checkin.out' and sub['driver'] == 'zeromq'"
