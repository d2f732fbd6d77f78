#!/usr/bin/env bash
# The NATS driver with IOTLAT_NATS_JETSTREAM=true against a real nats-server
# with JetStream (store in $WORK), checked through the server's monitoring
# endpoint (/jsz):
#  1. the subscriber creates the topic's stream (IOTLAT_<topic>), the
#     publisher publishes asynchronously with acks, every message arrives,
#     the stream holds them all, and the ephemeral consumer is gone after
#     the subscriber exits;
#  2. what JetStream adds: a subscriber started after the publisher ended
#     replays the stream (IOTLAT_NATS_JS_DELIVER=all) and gets everything;
#  3. one named stream (IOTLAT_NATS_STREAM) in memory for both topics of a
#     transformer hop, with synchronous publishes: the driver adds the
#     second subject to the existing stream;
#  4. JetStream asked of a server without it: a clear error at start.
# The outage case (kill -9, restart) runs in test_nats_jetstream_conformance.sh.
. "$(dirname "$0")/lib.sh"
command -v nats-server >/dev/null || { echo "nats-server is not installed"; exit 1; }
export IOTLAT_DRIVER=nats IOTLAT_PROGRESS=0 IOTLAT_NATS_JETSTREAM=true
P=$(free_port)
M=$(free_port)
nats-server -a 127.0.0.1 -p "$P" -m "$M" -js -sd "$WORK/js" >"$WORK/nats-server.log" 2>&1 &
SRV_PID=$!
PIDS+=($SRV_PID)
for _ in $(seq 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$P") 2>/dev/null && break
    sleep 0.1
done
export IOTLAT_NATS_URL=nats://127.0.0.1:$P

# Save the server's view of every stream as $WORK/jsz.json, loaded by check
# as `jsz`: {stream name: {"messages", "subjects", "storage", "consumers"}}.
jsz() {
    python3 - "http://127.0.0.1:$M/jsz?streams=true&config=true&consumers=true" \
        >"$WORK/jsz.json" <<'PY'
import json, sys, urllib.request
d = json.load(urllib.request.urlopen(sys.argv[1], timeout=5))
out = {}
for a in d.get('account_details', []):
    for s in a.get('stream_detail', []):
        out[s['name']] = {'messages': s['state']['messages'],
                          'subjects': s['config']['subjects'],
                          'storage': s['config']['storage'],
                          'consumers': s['state'].get('consumer_count', 0)}
print(json.dumps(out))
PY
}

echo "== 1: stream created, async publish, ordered consumer"
T=js1.$RANDOM
S=IOTLAT_${T//./_}
start sub env IOTLAT_TOPIC=$T IOTLAT_DURATION=30s IOTLAT_REPORT_JSON=$WORK/sub.json \
    "$BIN/iotlat-subscriber"
sleep 1
start pub env IOTLAT_TOPIC=$T IOTLAT_DEVICES=20 IOTLAT_RATE=100 IOTLAT_DURATION=2s \
    IOTLAT_REPORT_JSON=$WORK/pub.json "$BIN/iotlat-publisher"
wait_for pub; wait_for sub
cat "$WORK/sub.err"
grep -q "created JetStream stream $S (file storage) for subject $T" "$WORK/sub.err"
jsz
check "pub['sent'] == 4000 and pub['send_failed'] == 0" \
      "sub['received_unique'] == 4000 and sub['lost'] == 0 and sub['duplicates'] == 0" \
      "sub['accounting']['balanced'] and sub['publishers_ended']" \
      "jsz['$S']['subjects'] == ['$T'] and jsz['$S']['storage'] == 'file'" \
      "jsz['$S']['messages'] == 4020" \
      "jsz['$S']['consumers'] == 0"
rm -f "$WORK"/*.json

echo "== 2: a late subscriber replays the stream"
start sub env IOTLAT_TOPIC=$T IOTLAT_NATS_JS_DELIVER=all IOTLAT_DURATION=30s \
    IOTLAT_REPORT_JSON=$WORK/sub.json "$BIN/iotlat-subscriber"
wait_for sub
check "sub['received_unique'] == 4000 and sub['lost'] == 0 and sub['duplicates'] == 0" \
      "sub['devices'] == 20 and sub['publishers_ended'] and sub['accounting']['balanced']"
rm -f "$WORK"/*.json

echo "== 3: one named stream in memory, sync publishes, through a transformer"
T=js3.$RANDOM
S=SHARED_$RANDOM
start sub env IOTLAT_TOPIC=$T.out IOTLAT_NATS_STREAM=$S IOTLAT_NATS_STREAM_STORAGE=memory \
    IOTLAT_DURATION=30s IOTLAT_REPORT_JSON=$WORK/sub.json "$BIN/iotlat-subscriber"
sleep 0.5
start tra env IOTLAT_IN_TOPIC=$T IOTLAT_OUT_TOPIC=$T.out IOTLAT_NATS_STREAM=$S \
    IOTLAT_NATS_JS_PUBLISH=sync IOTLAT_DURATION=30s IOTLAT_REPORT_JSON=$WORK/tra.json \
    "$BIN/iotlat-transformer"
sleep 1
start pub env IOTLAT_TOPIC=$T IOTLAT_NATS_STREAM=$S IOTLAT_NATS_JS_PUBLISH=sync \
    IOTLAT_DEVICES=10 IOTLAT_RATE=50 IOTLAT_DURATION=2s IOTLAT_REPORT_JSON=$WORK/pub.json \
    "$BIN/iotlat-publisher"
wait_for pub; wait_for tra; wait_for sub
cat "$WORK/tra.err"
jsz
check "pub['sent'] == 1000 and pub['send_failed'] == 0" \
      "tra['forwarded'] == 1010" \
      "sub['received_unique'] == 1000 and sub['lost'] == 0 and sub['accounting']['balanced']" \
      "sorted(jsz['$S']['subjects']) == sorted(['$T', '$T.out'])" \
      "jsz['$S']['storage'] == 'memory' and jsz['$S']['messages'] == 2020"
rm -f "$WORK"/*.json

echo "== 4: JetStream asked of a server without it"
P2=$(free_port)
nats-server -a 127.0.0.1 -p "$P2" >>"$WORK/nats-server2.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$P2") 2>/dev/null && break; sleep 0.1; done
rc=0
IOTLAT_NATS_URL=nats://127.0.0.1:$P2 IOTLAT_TOPIC=x IOTLAT_DURATION=5s timeout 30 \
    "$BIN/iotlat-subscriber" >"$WORK/nojs.out" 2>&1 || rc=$?
cat "$WORK/nojs.out"
[ $rc -ne 0 ] && [ $rc -ne 124 ] || { echo "expected a failure exit, got $rc"; exit 1; }
grep -q "is JetStream enabled" "$WORK/nojs.out"
echo "nats JetStream: passed"
