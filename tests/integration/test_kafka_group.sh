#!/usr/bin/env bash
# Kafka consumer groups: two subscribers in one group split a 6-partition
# topic between them, and together receive every message exactly once;
# the publisher keys by device, so each device stays in one partition (one
# subscriber sees all of it, in order).  Then one member leaves mid-run:
# it commits its exact positions, the other takes over all partitions from
# there, and the two together still receive every message exactly once.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/../conformance/servers/kafka.sh"
export IOTLAT_DRIVER=kafka IOTLAT_PROGRESS=0 IOTLAT_LOG_LEVEL=info
trap 'rc=$?; srv_stop >/dev/null 2>&1 || true; (exit $rc); cleanup' EXIT
srv_start -t grp:6 -t hand:6

# wait_log NAME PATTERN SECONDS: until NAME's stderr shows PATTERN.
wait_log() {
    local i
    for i in $(seq $(($3 * 10))); do
        grep -q "$2" "$WORK/$1.err" 2>/dev/null && return 0
        sleep 0.1
    done
    echo "$1: no '$2' within $3 s:"; cat "$WORK/$1.err"; return 1
}
# The mock holds a rebalance of a running group for session.timeout.ms - 1 s
# (45 s by default) and, when a follower's SyncGroup arrives after the
# leader's, fails it and rebalances again: a short session timeout bounds
# both.  subscribe() returns once the member has its partitions, so the
# publisher starts when both members logged "subscribed".

echo "== two members of one group split the partitions"
GROUP_ENV="IOTLAT_KAFKA_GROUP=g1.$RANDOM IOTLAT_KAFKA_PROP_SESSION_TIMEOUT_MS=6000 IOTLAT_KAFKA_PROP_HEARTBEAT_INTERVAL_MS=500"
for s in subA subB; do
    start $s env $(sub_env) $GROUP_ENV IOTLAT_TOPIC=grp IOTLAT_DURATION=8s \
        IOTLAT_REPORT_JSON=$WORK/$s.json "$BIN/iotlat-subscriber"
done
wait_log subA "subscribed to" 20; wait_log subB "subscribed to" 20
start pub env $(pub_env) IOTLAT_TOPIC=grp IOTLAT_DEVICES=30 IOTLAT_RATE=100 IOTLAT_DURATION=3s \
    IOTLAT_REPORT_JSON=$WORK/pub.json "$BIN/iotlat-publisher"
wait_for pub; wait_for subA; wait_for subB
cat "$WORK/subA.out" "$WORK/subB.out"
grep -h "assigned" "$WORK/subA.err" "$WORK/subB.err"
check "pub['sent'] == 9000 and pub['send_failed'] == 0" \
      "subA['received_unique'] > 0 and subB['received_unique'] > 0" \
      "subA['received_unique'] + subB['received_unique'] == pub['sent']" \
      "subA['duplicates'] == 0 and subB['duplicates'] == 0" \
      "subA['lost'] == 0 and subB['lost'] == 0" \
      "subA['reordered'] == 0 and subB['reordered'] == 0" \
      "subA['devices'] + subB['devices'] == 30" \
      "subA['malformed'] == 0 and subB['malformed'] == 0"
for s in subA subB; do
    grep -q "assigned 3 partition(s)" "$WORK/$s.err" ||
        { echo "$s was not assigned 3 of the 6 partitions:"; cat "$WORK/$s.err"; exit 1; }
done
rm -f "$WORK"/*.json

echo "== a member leaves mid-run: its partitions are handed over exactly"
# The leaving member commits its exact positions before it leaves; the
# other one takes all 6 partitions and resumes there.  The remaining member
# may re-read its own partitions from its start commit (the mock refuses
# commits while a group rebalances, see README): those are duplicates it
# detects itself, so only its received_unique counts.
GROUP_ENV="IOTLAT_KAFKA_GROUP=g2.$RANDOM IOTLAT_KAFKA_PROP_SESSION_TIMEOUT_MS=6000 IOTLAT_KAFKA_PROP_HEARTBEAT_INTERVAL_MS=500"
start subA env $(sub_env) $GROUP_ENV IOTLAT_TOPIC=hand IOTLAT_DURATION=5s \
    IOTLAT_REPORT_JSON=$WORK/subA.json "$BIN/iotlat-subscriber"
start subB env $(sub_env) $GROUP_ENV IOTLAT_TOPIC=hand IOTLAT_DURATION=16s \
    IOTLAT_REPORT_JSON=$WORK/subB.json "$BIN/iotlat-subscriber"
wait_log subA "subscribed to" 20; wait_log subB "subscribed to" 20
start pub env $(pub_env) IOTLAT_TOPIC=hand IOTLAT_DEVICES=30 IOTLAT_RATE=100 IOTLAT_DURATION=8s \
    IOTLAT_REPORT_JSON=$WORK/pub.json "$BIN/iotlat-publisher"
wait_for pub; wait_for subA; wait_for subB
grep -h "assigned\|commit" "$WORK/subA.err" "$WORK/subB.err"
check "pub['sent'] == 24000 and pub['send_failed'] == 0" \
      "subA['received_unique'] > 0 and subB['received_unique'] > 0" \
      "subA['received_unique'] + subB['received_unique'] == pub['sent']" \
      "subA['duplicates'] == 0 and subA['malformed'] + subB['malformed'] == 0"
grep -q "assigned 6 partition(s)" "$WORK/subB.err" ||
    { echo "subB did not take over all 6 partitions:"; cat "$WORK/subB.err"; exit 1; }
srv_stop
echo "kafka group: passed"
