#!/usr/bin/env bash
# Kafka driver benchmark on librdkafka's mock cluster (figures only, no
# pass/fail): the publisher's top rate through the driver next to a bare
# librdkafka producer loop with the same settings (tests/kafka_mock/
# kafka_raw.c), then end-to-end latency at 10k msg/s.  The mock answers
# empty fetches only after fetch.wait.max.ms (consumers ask for 1 ms here)
# and returns one producer batch per partition per fetch, so at 10k msg/s
# with linger.ms=1 its consumers fall behind and the tail grows: the
# latencies are the client path on loopback through the mock, not what a
# real broker would show.
#   IL_BIN_DIR=$PWD/bin IL_PLUGIN_DIR=$PWD/plugins bash tests/bench/driver_kafka.sh
. "$(dirname "$0")/../integration/lib.sh"
. "$(dirname "$0")/../conformance/servers/kafka.sh"
export IOTLAT_DRIVER=kafka IOTLAT_PROGRESS=0 IOTLAT_LOG_LEVEL=warn
trap 'rc=$?; srv_stop >/dev/null 2>&1 || true; (exit $rc); cleanup' EXIT
N=${BENCH_KAFKA_MESSAGES:-500000}
cc -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -O2 \
    "$KAFKA_ROOT/tests/kafka_mock/kafka_raw.c" -lrdkafka -o "$WORK/kafka_raw"
srv_start -t raw:6 -t thr:6 -t lat:6

echo "== throughput, 100-byte messages, 6 partitions, 1000 keys"
"$WORK/kafka_raw" "$IOTLAT_KAFKA_BROKERS" raw "$N" 100
# 1000 devices asking for far more than the driver can take: the achieved
# rate is the publisher's ceiling (its send lag grows, which is expected).
env IOTLAT_TOPIC=thr IOTLAT_DEVICES=1000 IOTLAT_RATE=1000 IOTLAT_DURATION=3s \
    IOTLAT_ENCODING=binary IOTLAT_PAYLOAD="$(printf 'x%.0s' $(seq 60))" \
    IOTLAT_REPORT_JSON="$WORK/thr.json" "$BIN/iotlat-publisher" >/dev/null
python3 - "$WORK/thr.json" <<'PY'
import json, sys
p = json.load(open(sys.argv[1]))
print(f"iotlat publisher (binary envelope): {p['sent']} messages at "
      f"{p['achieved_rate']:.0f} msg/s; send failed {p['send_failed']} (producer queue full)")
PY

echo "== latency at 10k msg/s (100 devices x 100 msg/s, 5 s)"
start sub env IOTLAT_KAFKA_PROP_FETCH_WAIT_MAX_MS=1 IOTLAT_TOPIC=lat IOTLAT_DURATION=30s \
    IOTLAT_REPORT_JSON="$WORK/sub.json" "$BIN/iotlat-subscriber"
for i in $(seq 200); do grep -q "subscribed to" "$WORK/sub.err" 2>/dev/null && break; sleep 0.1; done
start pub env IOTLAT_TOPIC=lat IOTLAT_DEVICES=100 IOTLAT_RATE=100 IOTLAT_DURATION=5s \
    IOTLAT_REPORT_JSON="$WORK/pub.json" "$BIN/iotlat-publisher"
wait_for pub; wait_for sub
python3 - "$WORK/sub.json" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
l, v = s['latency_us'], s['service_latency_us']
print(f"received {s['received_unique']}, lost {s['lost']}: "
      f"latency p50 {l['p50']} us, p99 {l['p99']} us, p99.9 {l['p999']} us, max {l['max']} us; "
      f"from send p50 {v['p50']} us, p99 {v['p99']} us")
PY
srv_stop
